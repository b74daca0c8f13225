#!/usr/bin/env bats
# common/phone/phone.cc: the libphonenumber shim and its fast path for "+digits".

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
	: "${WA_TESTS:=$BATS_TEST_DIRNAME/../build/release/tests}"
	diff="$WA_TESTS/phone-diff"
}

@test "the fast path answers exactly as Parse, on every kind of input" {
	run "$diff"
	assert_success
	assert_line --regexp '^phone-diff: [0-9]+ inputs, [0-9]+ fast-path, 0 mismatches$'
	# a large share of the inputs is served without Parse...
	read -r n m < <(sed -n 's/^phone-diff: \([0-9]*\) inputs, \([0-9]*\) fast-path.*/\1 \2/p' <<<"$output")
	(( n > 30000 ))
	(( m * 100 >= n * 60 ))
	# ...and so is every region's example mobile number, as E.164
	read -r a b < <(sed -n 's/^phone-diff: mobile examples: \([0-9]*\) of \([0-9]*\) fast-path$/\1 \2/p' <<<"$output")
	(( b > 200 && a == b ))
	# ...with region and validity worked out by the shim for every calling
	# code, over many valid and many invalid numbers
	read -r own all < <(sed -n 's/^phone-diff: calling codes validated by the shim: \([0-9]*\) of \([0-9]*\)$/\1 \2/p' <<<"$output")
	(( all > 200 && own == all ))
	read -r v nv < <(sed -n 's/^phone-diff: fast-path answers: \([0-9]*\) valid, \([0-9]*\) not valid$/\1 \2/p' <<<"$output")
	(( v > 10000 && nv > 10000 ))
}

@test "the shim is safe to call from many threads at once" {
	run "$diff" -t
	assert_success
	assert_output 'phone-diff: 8 threads, 0 mismatches'
}

@test "typical international numbers take the fast path" {
	run "$diff" +972501234567 +12015550123 +5491123456789 +390612345678 \
		+80012345678 +8613812345678 +78123456789
	assert_success
	assert_output - <<-'EOF'
	+972501234567: +972501234567 IL valid=1 possible=1 (fast)
	+12015550123: +12015550123 US valid=1 possible=1 (fast)
	+5491123456789: +5491123456789 AR valid=1 possible=1 (fast)
	+390612345678: +390612345678 IT valid=1 possible=1 (fast)
	+80012345678: +80012345678 001 valid=1 possible=1 (fast)
	+8613812345678: +8613812345678 CN valid=1 possible=1 (fast)
	+78123456789: +78123456789 RU valid=1 possible=1 (fast)
	EOF
}

@test "a national prefix after the country code goes to Parse, which drops it" {
	run "$diff" +9720501234567 +112015550123 '+972 (0)50-123-4567'
	assert_success
	assert_output - <<-'EOF'
	+9720501234567: +972501234567 IL valid=1 possible=1 (parse)
	+112015550123: +12015550123 US valid=1 possible=1 (parse)
	+972 (0)50-123-4567: +972501234567 IL valid=1 possible=1 (parse)
	EOF
}

@test "separators in a + number take the fast path; an extension or letters do not" {
	run "$diff" '+972 50-123-4567' '+1 (201) 555.0123' '+1 201 555 0123 x12' \
		'+1 201 555 0123#' '+1-800-FLOWERS'
	assert_success
	assert_output - <<-'EOF'
	+972 50-123-4567: +972501234567 IL valid=1 possible=1 (fast)
	+1 (201) 555.0123: +12015550123 US valid=1 possible=1 (fast)
	+1 201 555 0123 x12: +12015550123 US valid=1 possible=1 (parse)
	+1 201 555 0123#: +1201555 - valid=0 possible=0 (parse)
	+1-800-FLOWERS: +18003569377 US valid=1 possible=1 (parse)
	EOF
}

@test "a number that parses but is not possible is returned with possible=0" {
	run "$diff" +97212
	assert_success
	assert_output '+97212: +97212 IL valid=0 possible=0 (fast)'
}

@test "failures say why" {
	run "$diff" +999123 0501234567 +9721 +9721234567890123456789 hello
	assert_success
	assert_output - <<-'EOF'
	+999123: error: invalid country calling code
	0501234567: error: no region to read a national number in
	+9721: error: too short
	+9721234567890123456789: error: too long
	hello: error: not a number
	EOF
}

@test "national numbers are read in the region, in any case" {
	run "$diff" -r il 0501234567 '(050) 123.4567'
	assert_success
	assert_output - <<-'EOF'
	0501234567: +972501234567 IL valid=1 possible=1 (parse)
	(050) 123.4567: +972501234567 IL valid=1 possible=1 (parse)
	EOF
	run "$diff" -r XX 0501234567
	assert_success
	assert_output '0501234567: error: unknown region: cannot read a national number'
}
