# Common set-up for every bats file (owner: core). Puts the built programs
# first on PATH: WA_BIN and WA_TESTS are set by `make test`.
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

WA_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
: "${WA_BIN:=$WA_ROOT/build/release/bin}"
: "${WA_TESTS:=$WA_ROOT/build/release/tests}"
export WA_BIN WA_TESTS WA_ROOT
PATH="$WA_BIN:$PATH"
export LC_ALL=C.UTF-8

# Programs must not depend on the caller's environment.
unset WA_DEFAULT_REGION WA_PROVIDER WA_CONFIG DATABASE_URL PGHOST PGDATABASE \
	PGSERVICE PGHOSTADDR PGPORT PGUSER

# The programs this tree builds.
wa_programs() {
	local f
	for f in "$WA_ROOT"/cmd/wa-*.c; do
		f=${f##*/}
		echo "${f%.c}"
	done
}

# run a command with stdout and stderr kept apart: $output is stdout,
# $stderr the diagnostics.
run_split() {
	run --separate-stderr "$@"
}

# wait_port_file FILE PID: until the server PID has written its port to
# FILE (10 s at most); 1 if it died or never did.
wait_port_file() {
	local i
	for i in $(seq 1 200); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$1" ]
}
