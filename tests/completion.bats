#!/usr/bin/env bats
# Bash completion (scripts/wa-completion.bash) offers each program's
# subcommands and options, as its --help lists them.

setup() {
	load lib/common
	source "$WA_ROOT/scripts/wa-completion.bash"
}

# complete WORDS...: COMPREPLY for the last word, one a line, sorted.
complete_words() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	cd "$BATS_TEST_TMPDIR"
	_wa_complete
	printf '%s\n' "${COMPREPLY[@]}" | sort
}

@test "completion: subcommands of wa-broadcast, wa-migrate and wa-send" {
	run complete_words wa-broadcast ''
	for c in create run export mark preview status list cancel pause resume retry recipients optout reschedule; do
		assert_line "$c"
	done
	run complete_words wa-broadcast re
	assert_output "$(printf '%s\n' recipients reschedule resume retry)"
	run complete_words wa-migrate ''
	for c in up status baseline; do assert_line "$c"; done
	run complete_words wa-send st
	assert_output status
}

@test "completion: --tz completes the system's zone names, create's --window is its own" {
	run complete_words wa-broadcast create --tz Asia/Jerus
	assert_output Asia/Jerusalem
	run complete_words wa-broadcast create --skip-
	assert_output --skip-days
	run complete_words wa-broadcast create --win
	assert_output --window
	run complete_words wa-broadcast reschedule --
	assert_line --at
	assert_line --tz
}

@test "completion: options come from --help, values for --provider and --context" {
	run complete_words wa-send --para
	assert_equal "$output" --parallel
	run complete_words wa-broadcast --no-
	assert_equal "$output" --no-progress
	run complete_words wa-normalize --reg
	assert_equal "$output" --region
	run complete_words wa-send --provider ''
	assert_output "$(printf '%s\n' baileys meta)"
	run complete_words wa-send --context b
	assert_output broadcast
}

@test "completion: recipients' options and their values" {
	run complete_words wa-broadcast recipients --
	for o in --status --class --format; do assert_line -- "$o"; done
	refute_line -- --parallel
	run complete_words wa-broadcast recipients 1 --format ''
	assert_output "$(printf '%s\n' csv jsonl)"
	run complete_words wa-broadcast recipients 1 --class a
	assert_output ambiguous
	run complete_words wa-broadcast recipients 1 --status f
	assert_output failed
	# status of one business's broadcasts.
	run complete_words wa-broadcast status --bu
	assert_output --business
}

@test "completion: every program is registered" {
	for p in $(wa_programs); do
		run complete -p "$p"
		assert_success
		assert_output --partial '_wa_complete'
	done
}

@test "completion: after a subcommand, only its options" {
	run complete_words wa-broadcast create --par
	assert_output --partial --params
	refute_output --partial --parallel
	run complete_words wa-broadcast run --par
	assert_equal "$output" --parallel
	run complete_words wa-send status --dr
	assert_equal "$output" ""
	# optout's operations, then its options
	run complete_words wa-broadcast optout ''
	assert_output "$(printf '%s\n' add import list remove)"
	run complete_words wa-broadcast optout re
	assert_output remove
	run complete_words wa-broadcast optout add --so
	assert_output --source
}
