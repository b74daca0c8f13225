#!/usr/bin/env bats
# The command-line contract every program shares.

setup() { load lib/common; }

@test "every program: --help prints usage on stdout and exits 0" {
	for p in $(wa_programs); do
		run_split "$p" --help
		assert_success
		assert_output --partial "Usage: $p"
		assert_output --partial "Exit status"
		[ -z "$stderr" ] || fail "$p --help wrote to stderr: $stderr"
	done
}

@test "every program: --version prints name and version, exits 0" {
	for p in $(wa_programs); do
		run_split "$p" --version
		assert_success
		assert_output --regexp "^$p \(wa\) [0-9]+\.[0-9]+\.[0-9]+$"
	done
}

@test "every program: a bad option is one line naming it, with a hint, exit 64" {
	for p in $(wa_programs); do
		run_split "$p" --no-such-option
		assert_equal "$status" 64
		assert_equal "$output" ""
		assert_equal "$stderr" "$p: error: --no-such-option: unknown option; try '$p --help'"
	done
}

@test "every program: a closed stdout is reported, exit 74" {
	# --help into a pipe that is already closed: /dev/full gives ENOSPC.
	for p in $(wa_programs); do
		run_split "$p" --help
		run bash -c "'$p' --help >/dev/full"
		assert_equal "$status" 74
		assert_output --partial "$p: error: cannot write standard output"
	done
}

# The test that starts a PostgreSQL stops it, whatever happened.
teardown() {
	if [ -n "${PGDIR:-}" ]; then
		load lib/pg
		pg_teardown_file
	fi
}

# subcommands PROGRAM: the commands its --help lists under "Commands:".
subcommands() {
	"$1" --help | awk '/^Commands:/ { c = 1; next } c && /^$/ { c = 0 } c && /^  [a-z]/ { print $1 }'
}

# help_opts PROGRAM [COMMAND]: the long options a --help lists.
help_longs() { "$@" --help | grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' | sed 's/^[ ,]*//' | sort -u; }

@test "every program: an unknown short option is named too, one line, exit 64" {
	for p in $(wa_programs); do
		run_split "$p" -Z
		assert_equal "$status" 64
		assert_equal "$output" ""
		assert_equal "$stderr" "$p: error: -Z: unknown option; try '$p --help'"
	done
	# after a subcommand, the hint names its help
	run_split wa-broadcast run --frobnicate 1
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: --frobnicate: unknown option; try 'wa-broadcast run --help'"
	run_split wa-send --parallel
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-send: error: --parallel: needs a value (N); try 'wa-send --help'"
	run_split wa-migrate --dry-run=yes
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-migrate: error: --dry-run: takes no value; try 'wa-migrate --help'"
}

@test "an option the subcommand does not take is named with the subcommand, exit 64" {
	run_split wa-broadcast create --business 1 --text hi --parallel 4
	assert_equal "$status" 64
	assert_equal "$output" ""
	assert_equal "$stderr" "wa-broadcast: error: create: --parallel does not apply; try 'wa-broadcast create --help'"
	# wherever the option stands
	run_split wa-broadcast --reason x cancel 1
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: cancel: --reason does not apply; try 'wa-broadcast cancel --help'"
	run_split wa-send status --rate 5
	assert_equal "$status" 64
	assert_equal "$output" ""
	assert_equal "$stderr" "wa-send: error: status: --rate does not apply; try 'wa-send status --help'"
	run_split wa-migrate status --dry-run
	assert_equal "$status" 64
	assert_equal "$output" ""
	assert_equal "$stderr" "wa-migrate: error: status: --dry-run does not apply; try 'wa-migrate status --help'"
}

@test "each subcommand's --help shows its own options, on stdout, exit 0" {
	for p in wa-broadcast wa-send wa-migrate; do
		all=$(help_longs "$p")
		for c in $(subcommands "$p"); do
			run_split "$p" "$c" --help
			assert_success
			assert_equal "$stderr" ""
			assert_line --index 0 --regexp "^Usage: $p \[OPTION\]\.\.\. $c( |$)"
			assert_output --partial "--help"
			# a subset of what the program accepts
			extra=$(comm -13 <(echo "$all") <(help_longs "$p" "$c"))
			[ -z "$extra" ] || fail "$p $c --help lists unknown options: $extra"
		done
	done
	run_split wa-broadcast create --help
	assert_output --partial "--text"
	assert_output --partial "--business"
	refute_output --partial "--parallel"
	refute_output --partial "--reason"
	run_split wa-broadcast run --help
	assert_output --partial "--parallel"
	assert_output --partial "--rate"
	refute_output --partial "--text"
	run_split wa-broadcast preview --help
	assert_output --partial "-n, --count N"
	assert_output --partial "--config"
	refute_output --partial "--parallel"
	run_split wa-send status --help
	assert_output --partial "--business"
	assert_output --partial "--provider"
	refute_output --partial "--parallel"
	refute_output --partial "--text"
	run_split wa-migrate status --help
	refute_output --partial "--dry-run"
	run_split wa-migrate baseline --help
	assert_output --partial "--dry-run"
	# the top-level help stays the overview: every command, every option
	run_split wa-broadcast --help
	assert_output --partial "preview ID [-n N]"
	assert_output --partial "--parallel"
	assert_output --partial "--text"
}

@test "one helper words every range error: ints, decimals and seconds alike" {
	run_split wa-send --parallel 0
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-send: error: --parallel: not a number from 1 to 1024: '0'; try 'wa-send --help'"
	run_split wa-broadcast run --parallel x 1
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: --parallel: not a number from 1 to 1024: 'x'; try 'wa-broadcast run --help'"
	run_split wa-send --rate 0
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-send: error: --rate: not a number from 0.001 to 100000: '0'; try 'wa-send --help'"
	run_split wa-broadcast run --rate nan 1
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: --rate: not a number from 0.001 to 100000: 'nan'; try 'wa-broadcast run --help'"
	run_split wa-send --timeout 1e9
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-send: error: --timeout: not a number of seconds from 0.001 to 86400: '1e9'; try 'wa-send --help'"
	run_split wa-broadcast run --db-wait ' 5' 1
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: --db-wait: not a number of seconds from 0 to 86400: ' 5'; try 'wa-broadcast run --help'"
	run_split wa-broadcast preview -n 0 1
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: --count: not a number from 1 to 1000000: '0'; try 'wa-broadcast preview --help'"
	run_split wa-normalize --max-line 63
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-normalize: error: --max-line: not a size from 64 to 1073741824: '63'; try 'wa-normalize --help'"
}

@test "wa-normalize reads WA_DEFAULT_REGION from --config or WA_CONFIG" {
	cfg=$BATS_TEST_TMPDIR/wa.conf
	echo 'WA_DEFAULT_REGION=IL' >"$cfg"
	chmod 600 "$cfg"
	run_split wa-normalize --config "$cfg" <<<'050-123-4567'
	assert_success
	assert_equal "$(jq -r .phone <<<"$output")" +972501234567
	run_split wa-normalize -c "$cfg" <<<'050-123-4567'
	assert_equal "$(jq -r .phone <<<"$output")" +972501234567
	WA_CONFIG=$cfg run_split wa-normalize <<<'050-123-4567'
	assert_equal "$(jq -r .phone <<<"$output")" +972501234567
	# the file wins over the environment; --region over both
	WA_DEFAULT_REGION=GB run_split wa-normalize --config "$cfg" <<<'050-123-4567'
	assert_equal "$(jq -r .region <<<"$output")" IL
	run_split wa-normalize --config "$cfg" --region GB <<<'07911 123456'
	assert_equal "$(jq -r .phone <<<"$output")" +447911123456
	# a file others can read is refused
	chmod 644 "$cfg"
	run_split wa-normalize --config "$cfg" <<<'050-123-4567'
	assert_equal "$status" 78
	assert_equal "$output" ""
}

@test "wa-migrate reads DATABASE_URL from --config or WA_CONFIG" {
	load lib/pg
	pg_setup_file
	url=$DATABASE_URL
	unset DATABASE_URL
	cfg=$BATS_TEST_TMPDIR/wa.conf
	echo "DATABASE_URL=$url" >"$cfg"
	chmod 600 "$cfg"
	run_split wa-migrate -q --config "$cfg" --dir "$WA_ROOT/migrations"
	assert_success
	nmig=$(ls "$WA_ROOT"/migrations/[0-9]*_*.sql | wc -l)
	assert_equal "$(psql_q "SELECT count(*) FROM schema_migrations" "$url")" "$nmig"
	WA_CONFIG=$cfg run_split wa-migrate status --dir "$WA_ROOT/migrations"
	assert_success
	assert_equal "${#lines[@]}" "$nmig"
	assert_equal "$(jq -r .state <<<"${lines[0]}")" applied
	# --db wins over the file
	run_split wa-migrate -c "$cfg" --db "postgresql://postgres@127.0.0.1:1/wa" status
	assert_equal "$status" 69
	chmod 644 "$cfg"
	run_split wa-migrate --config "$cfg" status
	assert_equal "$status" 78
	assert_output ""
}

@test "a short option means one thing across all four programs" {
	declare -A long_of where
	for p in $(wa_programs); do
		for c in "" $(subcommands "$p"); do
			# shellcheck disable=SC2086
			while read -r l name; do
				if [ -n "${long_of[$l]:-}" ] && [ "${long_of[$l]}" != "$name" ]; then
					fail "-$l is ${long_of[$l]} in ${where[$l]} but $name in $p $c"
				fi
				long_of[$l]=$name
				where[$l]="$p $c"
			done < <("$p" $c --help | sed -nE 's/^  -([a-zA-Z]), (--[a-z][a-z0-9-]*).*/\1 \2/p')
		done
	done
	# the letters that meant two things are gone where they meant the other
	for args in "wa-send -t 1" "wa-send -c chat" "wa-send -n" "wa-broadcast -p 4 run 1"; do
		# shellcheck disable=SC2086
		run_split $args
		assert_equal "$status" 64
		[[ $stderr == *": unknown option; try '"* ]] || fail "$args: $stderr"
	done
}
