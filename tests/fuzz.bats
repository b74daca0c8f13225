#!/usr/bin/env bats
# The fuzz harnesses (tests/fuzz/) replayed over their committed corpus and
# the inputs that once broke them, in whatever build make test runs (under
# AddressSanitizer + UBSan in check-asan). make fuzz is what grows them.

setup() {
	load lib/common
	fuzz=$WA_ROOT/tests/fuzz
}

# The harnesses: one per tests/fuzz/fuzz-NAME.c.
harnesses() {
	local f
	for f in "$fuzz"/fuzz-*.c; do
		f=${f##*/fuzz-}
		echo "${f%.c}"
	done
}

# Files a replay of DIR runs (it skips dot files).
count() {
	find "$1" -maxdepth 1 -type f ! -name '.*' | wc -l
}

# replay NAME DIR...: every input in each DIR runs, and none fails a check,
# crashes or leaks.
replay() {
	local name=$1 d n=0
	shift
	for d in "$@"; do
		n=$((n + $(count "$d")))
	done
	(( n > 0 ))
	run_split "$WA_TESTS/fuzz-$name" "$@"
	assert_success
	assert_output "fuzz-$name: $n inputs"
	assert_equal "$stderr" ''
}

@test "there are harnesses, each with a corpus and a replay program" {
	local names
	names=$(harnesses)
	assert_equal "$(echo $names)" 'baileys csv meta norm reader render'
	for h in $names; do
		[ -x "$WA_TESTS/fuzz-$h" ]
		(( $(count "$fuzz/corpus/$h") >= 10 ))
	done
}

@test "the record reader survives its corpus" {
	replay reader "$fuzz/corpus/reader"
}

@test "the record reader passes every input it once failed on" {
	replay reader "$fuzz/regress/reader"
}

@test "normalization survives its corpus" {
	replay norm "$fuzz/corpus/norm"
}

@test "normalization passes every input it once failed on" {
	replay norm "$fuzz/regress/norm"
}

@test "the Baileys answer parser survives its corpus" {
	replay baileys "$fuzz/corpus/baileys"
}

@test "the Baileys answer parser passes every input it once failed on" {
	replay baileys "$fuzz/regress/baileys"
}

@test "the Meta answer parser survives its corpus" {
	replay meta "$fuzz/corpus/meta"
}

@test "the Meta answer parser passes every input it once failed on" {
	replay meta "$fuzz/regress/meta"
}

@test "a replay runs files and directories named, and refuses a missing one" {
	local f
	f=$(find "$fuzz/corpus/meta" -maxdepth 1 -type f ! -name '.*' | head -n 1)
	run_split "$WA_TESTS/fuzz-meta" "$f" "$f" "$fuzz/corpus/meta"
	assert_success
	assert_output "fuzz-meta: $(( $(count "$fuzz/corpus/meta") + 2 )) inputs"
	run_split "$WA_TESTS/fuzz-meta" "$fuzz/corpus/meta/no such file"
	assert_failure 2
	assert_output ''
	run_split "$WA_TESTS/fuzz-meta"
	assert_failure 64
}

@test "the placeholder renderer survives its corpus" {
	replay render "$fuzz/corpus/render"
}

@test "the placeholder renderer passes every input it once failed on" {
	replay render "$fuzz/regress/render"
}
