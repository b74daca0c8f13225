#!/usr/bin/env bats
# wa-normalize: every rule of the foundation issue, run on the built binary.

setup() { load lib/common; }

norm() { run_split wa-normalize "$@"; }

@test "a national number in a region becomes E.164 and a JID" {
	norm --region IL <<<'{"to":"050-123-4567"}'
	assert_success
	assert_output '{"to":"050-123-4567","phone":"+972501234567","jid":"972501234567@s.whatsapp.net","region":"IL","valid":true,"source":"to"}'
}

@test "region comes from WA_DEFAULT_REGION when --region is absent" {
	WA_DEFAULT_REGION=il norm <<<'{"to":"050-123-4567"}'
	assert_success
	assert_output --partial '"phone":"+972501234567"'
}

@test "--region wins over WA_DEFAULT_REGION" {
	WA_DEFAULT_REGION=US norm --region IL <<<'0501234567'
	assert_output --partial '"phone":"+972501234567"'
}

@test "mixed real-world formats all read the same number" {
	norm --region IL < <(printf '%s\n' '+972 50-123-4567' '(050) 123.4567' '00972501234567' \
		'whatsapp:+972501234567' '972501234567@c.us' '972501234567@s.whatsapp.net' \
		'+972-50-123-4567' '050 123 4567' '972501234567:12@s.whatsapp.net')
	assert_success
	assert_equal "$(grep -c '"jid":"972501234567@s.whatsapp.net"' <<<"$output")" 9
}

@test "plain lines become records with the number in \"to\"" {
	norm --region IL <<<'050-123-4567'
	assert_output '{"to":"050-123-4567","phone":"+972501234567","jid":"972501234567@s.whatsapp.net","region":"IL","valid":true,"source":"to"}'
}

@test "with no region, a number without + is international, country code first" {
	norm < <(printf '972501234567\n14155550123\n0501234567\n')
	assert_failure 1
	assert_line --index 0 --partial '"phone":"+972501234567"'
	assert_line --index 1 --partial '"phone":"+14155550123"'
	assert_line --index 2 --partial '"code":"invalid_phone"'
}

@test "the number comes from the first present of to, phone, jid; source names it" {
	norm < <(printf '%s\n' '{"phone":"+972501234567","jid":"x"}' '{"jid":"972501234567@c.us"}' \
		'{"to":"","phone":"+972501234567"}')
	assert_success
	assert_line --index 0 --partial '"source":"phone"'
	assert_line --index 1 '{"jid":"972501234567@s.whatsapp.net","phone":"+972501234567","region":"IL","valid":true,"source":"jid"}'
	assert_line --index 2 --partial '"source":"phone"'
}

@test "--field takes the number from another field" {
	norm --field mobile --region IL <<<'{"name":"Dana","mobile":"054-765-4321","to":"x"}'
	assert_success
	assert_output '{"name":"Dana","mobile":"054-765-4321","to":"x","phone":"+972547654321","jid":"972547654321@s.whatsapp.net","region":"IL","valid":true,"source":"mobile"}'
}

@test "a JSON number is read as a number" {
	norm <<<'{"phone":972501234567}'
	assert_success
	assert_output --partial '"phone":"+972501234567"'
}

@test "fields the record came with pass through, in order" {
	norm <<<'{"z":1,"name":"שלום","to":"+972501234567","nested":{"a":[1,2.50,true,null]},"lead_id":7}'
	assert_success
	assert_output '{"z":1,"name":"שלום","to":"+972501234567","nested":{"a":[1,2.50,true,null]},"lead_id":7,"phone":"+972501234567","jid":"972501234567@s.whatsapp.net","region":"IL","valid":true,"source":"to"}'
}

@test "@lid passes unchanged with phone null" {
	norm <<<'{"to":"123456789012345@lid"}'
	assert_success
	assert_output '{"to":"123456789012345@lid","phone":null,"jid":"123456789012345@lid","region":null,"valid":null,"source":"to"}'
}

@test "groups, broadcast lists, status and channels fail with unsupported_jid" {
	norm < <(printf '%s\n' '120363025246125486@g.us' '1234@broadcast' 'status@broadcast' \
		'120363123456789@newsletter' '972501234567@example.com')
	assert_failure 1
	assert_equal "$(grep -c '"code":"unsupported_jid"' <<<"$output")" 5
	assert_equal "$(wc -l <<<"$stderr")" 5
}

@test "a possible but not valid number passes with valid:false; --strict fails it" {
	# +972 59 is a mobile-length number in a range Israel has not allocated.
	norm <<<'+972591234567'
	assert_success
	assert_output --partial '"phone":"+972591234567"'
	assert_output --partial '"valid":false'
	norm --strict <<<'+972591234567'
	assert_failure 1
	assert_output --partial '"code":"invalid_phone"'
}

@test "numbers of the wrong length or country fail with invalid_phone" {
	norm < <(printf '%s\n' '+97250123' '+9725012345678901' '+999123456789' 'hello' '+')
	assert_failure 1
	assert_equal "$(grep -c '"code":"invalid_phone"' <<<"$output")" 5
	assert_equal "$(wc -l <<<"$output")" 5
}

@test "a record with no number fails with missing_phone and keeps its fields" {
	norm <<<'{"name":"Dana"}'
	assert_failure 1
	assert_output '{"name":"Dana","status":"failed","error":{"code":"missing_phone","message":"no number: none of to, phone, jid"}}'
	assert_equal "$stderr" 'wa-normalize: error: <stdin>:1: missing_phone: no number: none of to, phone, jid'
}

@test "a record that arrives failed passes through untouched" {
	in='{"to":"+972501234567","status":"failed","error":{"code":"x","message":"y"},"k":1}'
	norm <<<"$in"
	assert_failure 1
	assert_output "$in"
	assert_equal "$stderr" ""
}

@test "broken JSON, arrays and strings fail with bad_json, raw kept; the run goes on" {
	norm < <(printf '%s\n' '{"to":' '[1,2]' '"str"' '{"to":"+972501234567"} x' '+972501234567')
	assert_failure 1
	assert_equal "${#lines[@]}" 5
	assert_line --index 0 --partial '{"raw":"{\"to\":","status":"failed","error":{"code":"bad_json"'
	assert_line --index 1 --partial '{"raw":"[1,2]","status":"failed","error":{"code":"bad_json","message":"a JSON array, not an object"}}'
	assert_line --index 2 --partial '"code":"bad_json","message":"a JSON string, not an object"'
	assert_line --index 3 --partial '"code":"bad_json"'
	assert_line --index 4 --partial '"phone":"+972501234567"'
	assert_equal "$(grep -c '^wa-normalize: error: <stdin>:[1-4]: bad_json: ' <<<"$stderr")" 4
}

@test "invalid UTF-8 is bad_json, raw kept with replacement characters" {
	norm < <(printf '{"to":"\xff\xfe"}\n+972501234567\n')
	assert_failure 1
	assert_line --index 0 '{"raw":"{\"to\":\"��\"}","status":"failed","error":{"code":"bad_json","message":"lexical error: invalid bytes in UTF8 string."}}'
	assert_line --index 1 --partial '"valid":true'
}

@test "NUL bytes make a line bad_json without cutting the record short" {
	norm < <(printf '{"to":"+972501234567"}\0junk\n+972501234567\n')
	assert_failure 1
	assert_line --index 0 --partial '"code":"bad_json","message":"NUL byte in line"'
	assert_line --index 1 --partial '"valid":true'
}

@test "an over-long line is one error record, skipped; the run goes on" {
	norm < <(echo '+972501234567'; head -c 2000000 /dev/zero | tr '\0' 'x'; echo; echo '+972541234567')
	assert_failure 1
	assert_equal "${#lines[@]}" 3
	assert_line --index 1 '{"status":"failed","error":{"code":"line_too_long","message":"line longer than 1048576 bytes"}}'
	assert_line --index 2 --partial '"phone":"+972541234567"'
	norm --max-line 100 <<<"{\"to\":\"+972501234567\",\"pad\":\"$(printf '%0200d' 0)\"}"
	assert_failure 1
	assert_output --partial '"line_too_long"'
}

@test "empty lines and a last line without a newline are records too" {
	norm < <(printf '+972501234567\n\n   \n+972541234567')
	assert_failure 1
	assert_equal "${#lines[@]}" 4
	assert_line --index 1 --partial '"code":"missing_phone"'
	assert_line --index 2 --partial '"code":"missing_phone"'
	assert_line --index 3 --partial '"phone":"+972541234567"'
}

@test "CRLF line ends and a byte-order mark are not data" {
	norm < <(printf '\xef\xbb\xbf+972501234567\r\n{"to":"+972541234567"}\r\n')
	assert_success
	assert_line --index 0 --partial '"to":"+972501234567","phone"'
	assert_line --index 1 --partial '"phone":"+972541234567"'
}

@test "files are read in order; a missing one is an error and the rest go on" {
	echo '+972501234567' >"$BATS_TEST_TMPDIR/a"
	echo '+972541234567' >"$BATS_TEST_TMPDIR/b"
	norm "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/missing" "$BATS_TEST_TMPDIR/b"
	assert_equal "$status" 74
	assert_line --index 0 --partial '+972501234567'
	assert_line --index 1 --partial '+972541234567'
	assert_equal "$stderr" "wa-normalize: error: $BATS_TEST_TMPDIR/missing: No such file or directory"
}

@test "-v logs a line per record in the operators' format; stdout stays records" {
	norm -v --region IL <<<'{"to":"+972 50-123-4567"}'
	assert_success
	assert_equal "$stderr" '[WA-NORMALIZE] to=+972 50-123-4567 → jid=972501234567@s.whatsapp.net source=to'
	assert_output --partial '"jid":"972501234567@s.whatsapp.net"'
}

@test "quiet by default; -q still shows errors" {
	norm <<<'+972501234567'
	assert_equal "$stderr" ""
	norm -q <<<'nope'
	assert_failure 1
	assert_output --partial invalid_phone
	[[ "$stderr" == *"wa-normalize: error: <stdin>:1: invalid_phone"* ]]
}

@test "an unknown region is a usage error" {
	norm --region XX <<<'1'
	assert_equal "$status" 64
	assert_equal "$output" ""
	[[ "$stderr" == *"unknown region code 'XX'"* ]]
	WA_DEFAULT_REGION=QQ norm <<<'1'
	assert_equal "$status" 78
}

@test "one record out per line in, in order, for a large mixed input" {
	norm --region IL < <(for i in $(seq 1000 1999); do
		echo "+97250123$i"; echo "{\"to\":\"050-12$i\",\"i\":$i}"; echo "bad $i"
	done)
	assert_failure 1
	assert_equal "${#lines[@]}" 3000
	assert_line --index 2998 --partial '"to":"050-121999","i":1999'
	assert_equal "$(grep -c '"status":"failed"' <<<"$output")" 1000
}
