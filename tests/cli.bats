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
