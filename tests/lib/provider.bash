# The test provider for a bats file (owner: send).
#
#   setup_file()    { load lib/common; load lib/provider; provider_setup_file; }
#   teardown_file() { load lib/common; load lib/provider; provider_teardown_file; }
#   setup()         { load lib/common; load lib/provider; provider_setup; }
#   teardown()      { load lib/provider; canary_check; }
#
# One wa-testprovider per file, on a free loopback port, with canary
# secrets in the environment: INTERNAL_SECRET, META_WA_ACCESS_TOKEN (the
# provider checks them, the programs must never print them). provider_setup
# resets its faults and counters and empties its log before each test.
#
#   PROVIDER_PID, PROVIDER_PORT, PROVIDER_URL, PROVIDER_LOG
#   provider_start DIR [ARGS...]  start one more (sets the variables above)
#   provider_stop                 stop the one in PROVIDER_PID, by its PID
#   provider_control JSON         POST /_control (faults, latency, states)
#   provider_reset                POST /_reset
#   provider_stats [FIELD]        GET /_stats, or one field of it
#   provider_sends [DIGITS]       the log's send requests (to DIGITS)
#   provider_count [DIGITS]       how many of them
#   provider_wait_count N         wait (bounded) until the log holds N sends
#   closed_port                   a loopback port nothing listens on (for
#                                 "connection refused"; never assume one)
#   send_run ARGS...              run_split wa-send ARGS, output kept for
#                                 the canary check
#   canary_check                  fail if a canary secret was ever printed

bats_require_minimum_version 1.5.0

CANARY_SECRET=canary-secret-7f3a9c
CANARY_TOKEN=canary-token-EAAG5xQz
TEST_PNID=1062375849

provider_start() {
	local dir=$1
	shift
	mkdir -p "$dir"
	rm -f "$dir/port"
	PROVIDER_LOG=$dir/requests.jsonl
	"$WA_TESTS/wa-testprovider" --port-file "$dir/port" --log "$PROVIDER_LOG" \
		--quiet "$@" >"$dir/stdout" 2>"$dir/stderr" 3>&- &
	PROVIDER_PID=$!
	wait_port_file "$dir/port" "$PROVIDER_PID" || { cat "$dir/stderr" >&2; return 1; }
	PROVIDER_PORT=$(cat "$dir/port")
	PROVIDER_URL=http://127.0.0.1:$PROVIDER_PORT
	export PROVIDER_PID PROVIDER_PORT PROVIDER_URL PROVIDER_LOG
}

provider_stop() {
	[ -n "${PROVIDER_PID:-}" ] || return 0
	kill "$PROVIDER_PID" 2>/dev/null || true
	wait "$PROVIDER_PID" 2>/dev/null || true
	PROVIDER_PID=
}

provider_setup_file() {
	export INTERNAL_SECRET=$CANARY_SECRET META_WA_ACCESS_TOKEN=$CANARY_TOKEN
	export META_WA_PHONE_NUMBER_ID=$TEST_PNID
	provider_start "$BATS_FILE_TMPDIR/provider"
	echo "$PROVIDER_PID" >"$BATS_FILE_TMPDIR/provider.pid"
	: >"$BATS_FILE_TMPDIR/outputs"
}

provider_teardown_file() {
	PROVIDER_PID=$(cat "$BATS_FILE_TMPDIR/provider.pid" 2>/dev/null)
	provider_stop
}

# Before each test: the file's provider, clean, and the programs pointed at
# it (lib/common unsets nothing of ours, but a test may change these).
provider_setup() {
	export INTERNAL_SECRET=$CANARY_SECRET META_WA_ACCESS_TOKEN=$CANARY_TOKEN
	export META_WA_PHONE_NUMBER_ID=$TEST_PNID
	unset META_WA_API_VERSION WA_CONNECT_TIMEOUT WA_TIMEOUT WA_MEDIA_TIMEOUT
	PROVIDER_PORT=$(cat "$BATS_FILE_TMPDIR/provider/port")
	PROVIDER_URL=http://127.0.0.1:$PROVIDER_PORT
	PROVIDER_LOG=$BATS_FILE_TMPDIR/provider/requests.jsonl
	export BAILEYS_BASE_URL=$PROVIDER_URL META_WA_BASE_URL=$PROVIDER_URL
	provider_reset >/dev/null
	: >"$PROVIDER_LOG"
}

provider_control() {
	curl -sS --fail-with-body -X POST -H 'Content-Type: application/json' \
		--data "$1" "$PROVIDER_URL/_control" >/dev/null
}

provider_reset() {
	curl -sS --fail-with-body -X POST "$PROVIDER_URL/_reset"
}

provider_stats() {
	if [ $# -gt 0 ]; then
		curl -sS --fail-with-body "$PROVIDER_URL/_stats" | jq -r ".$1"
	else
		curl -sS --fail-with-body "$PROVIDER_URL/_stats"
	fi
}

provider_sends() {
	if [ $# -gt 0 ]; then
		jq -c --arg d "$1" 'select(.to_digits == $d and (.path == "/send" or (.path | endswith("/messages"))))' "$PROVIDER_LOG"
	else
		jq -c 'select(.path == "/send" or (.path | endswith("/messages")))' "$PROVIDER_LOG"
	fi
}

provider_count() {
	provider_sends "$@" | wc -l
}

provider_wait_count() {
	local i
	for i in $(seq 1 200); do
		[ "$(provider_count)" -ge "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

closed_port() {
	local p
	for p in $(shuf -i 20000-32000 -n 100); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# (run --separate-stderr: lib/common's run_split folds stderr into output.)
send_run() {
	run --separate-stderr wa-send "$@"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
}

# A canary secret in anything a program printed is a leak.
canary_check() {
	local f=$BATS_FILE_TMPDIR/outputs
	if grep -qF -e "$CANARY_SECRET" -e "$CANARY_TOKEN" "$f" 2>/dev/null; then
		echo "a canary secret was printed:" >&2
		grep -nF -e "$CANARY_SECRET" -e "$CANARY_TOKEN" "$f" >&2
		return 1
	fi
	if [ -n "${output:-}${stderr:-}" ] &&
	    printf '%s\n%s' "${output:-}" "${stderr:-}" | grep -qF -e "$CANARY_SECRET" -e "$CANARY_TOKEN"; then
		echo "a canary secret was printed by the last command" >&2
		return 1
	fi
}
