#!/usr/bin/env bats
# {{field}} in every message, one renderer for every path: recipients'
# fields stored by create, handed back by export, rendered by run and by
# wa-send alike; fallbacks, broken placeholders, missing fields; preview.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

count() {
	psql_q "SELECT count(*) FROM $1"
}

# A second database made from the same template: the same ids come out of
# the same steps, so two paths can be compared request for request.
second_db() {
	local name=t${BATS_TEST_NUMBER}_b$RANDOM$RANDOM
	psql_q "CREATE DATABASE \"$name\" TEMPLATE wa_template" "$(pg_url postgres)" >/dev/null
	pg_url "$name"
}

# What the provider received, one line a request, ordered by recipient:
# the raw body's hash beside its parsed form (for the message on failure).
bodies() {
	provider_sends | jq -sc 'sort_by(.to_digits) | .[] | [.to_digits, .body_hash, .body]'
}

RECORDS='{"phone":"050-000-0001","name":"Dana","order":42,"code":"A1"}
{"phone":"050-000-0002","name":"","order":7,"code":"B2"}
{"phone":"050-000-0003","order":9,"code":"C3","note":"x"}'

# The same broadcast through run (in one database) and through the
# pipeline (in another), the provider's bodies compared byte for byte.
same_both_ways() {
	local kind=$1 db_a db_b
	shift
	db_a=$DATABASE_URL
	db_b=$(second_db)
	for db in "$db_a" "$db_b"; do
		DATABASE_URL=$db bc_business "$kind" >/dev/null
		DATABASE_URL=$db run wa-broadcast create --business 1 --region IL "$@" <<<"$RECORDS"
		assert_success
		assert_equal "$(jq -c '[.total, .invalid]' <<<"$output")" "[3,0]"
	done
	DATABASE_URL=$db_a wb run --no-progress 1
	assert_success
	by_run=$(bodies)
	[ "$(wc -l <<<"$by_run")" -eq 3 ] || fail "run sent: $by_run"
	: >"$PROVIDER_LOG"
	DATABASE_URL=$db_b run --separate-stderr bash -c \
		'wa-broadcast export 1 | wa-send --context broadcast | wa-broadcast mark 1'
	assert_success
	assert_equal "$(jq -r .status <<<"$output")" completed
	by_pipe=$(bodies)
	assert_equal "$by_pipe" "$by_run"
	# and the rows agree too
	q="SELECT string_agg(phone || ' ' || status || ' ' || attempts, ',' ORDER BY id) FROM whatsapp_broadcast_recipients"
	assert_equal "$(DATABASE_URL=$db_b psql_q "$q")" "$(DATABASE_URL=$db_a psql_q "$q")"
}

@test "run and pipeline: a text with fields and fallbacks reaches the provider byte for byte the same" {
	same_both_ways baileys --text 'שלום {{name|לקוח יקר}}, הזמנה {{ order }} {{code}} {{1}}'
	# rendered, not sent literally
	assert_equal "$(jq -r '.[2].text' <<<"$by_run")" $'שלום Dana, הזמנה 42 A1 {{1}}\nשלום לקוח יקר, הזמנה 7 B2 {{1}}\nשלום לקוח יקר, הזמנה 9 C3 {{1}}'
}

@test "run and pipeline: a template's parameters from fields and fallbacks, byte for byte the same" {
	same_both_ways meta --template promo --language he --params '["{{name|friend}}", "{{order}}", "fixed"]'
	assert_equal "$(jq -c '[.[2].template.components[0].parameters[].text]' <<<"$by_run")" \
		$'["Dana","42","fixed"]\n["friend","7","fixed"]\n["friend","9","fixed"]'
}

@test "run and pipeline: a media caption and link from fields, byte for byte the same" {
	same_both_ways meta --media '{"type":"image","url":"https://example.com/c/{{code}}.jpg","caption":"{{name|Hi}}: {{order}}"}'
	assert_equal "$(jq -c '[.[2].image.link, .[2].image.caption]' <<<"$by_run")" \
		$'["https://example.com/c/A1.jpg","Dana: 42"]\n["https://example.com/c/B2.jpg","Hi: 7"]\n["https://example.com/c/C3.jpg","Hi: 9"]'
}

@test "run and pipeline: a text asking Meta for a link preview, byte for byte the same" {
	same_both_ways meta --preview-url --text 'new at https://example.com/{{code}}'
	assert_equal "$(jq -c '.[2].text' <<<"$by_run")" \
		$'{"preview_url":true,"body":"new at https://example.com/A1"}\n{"preview_url":true,"body":"new at https://example.com/B2"}\n{"preview_url":true,"body":"new at https://example.com/C3"}'
}

@test "create stores every field but the address ones; export hands them back" {
	biz=$(bc_business)
	wb create --business "$biz" --region IL --text 'hi {{name}}' \
		<<<'{"to":"0500000001","name":"Dana","lead_id":5,"tags":["a","b"],"vip":true,"text":"not mine"}'
	assert_success
	assert_equal "$(psql_q "SELECT fields::text FROM whatsapp_broadcast_recipients")" \
		'{"vip": true, "name": "Dana", "tags": ["a", "b"]}'
	assert_equal "$(psql_q "SELECT lead_id FROM whatsapp_broadcast_recipients")" 5
	wb export 1
	assert_success
	assert_equal "$(jq -c '[.name, .tags, .vip, .lead_id, .text]' <<<"$output")" '["Dana",["a","b"],true,5,"hi {{name}}"]'
	# and a plain number has none
	wb create --business "$biz" --text hi < <(bc_numbers 1 972500000009)
	assert_equal "$(psql_q "SELECT fields IS NULL FROM whatsapp_broadcast_recipients WHERE broadcast_id = 2")" t
}

@test "create: a recipient whose fields pass 16 KiB of JSON is failed, naming the limit; the rest go on" {
	biz=$(bc_business)
	big=$(head -c 17000 /dev/zero | tr '\0' x)
	{ jq -cn --arg b "$big" '{phone: "+972500000001", note: $b}'
	  jq -cn --arg b "${big:0:16000}" '{phone: "+972500000002", note: $b}'; } >"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text hi "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.total, .invalid]' <<<"$output")" "[2,1]"
	assert_equal "$(psql_q "SELECT phone || ' ' || status || ' ' || coalesce(error_code, '-') FROM whatsapp_broadcast_recipients ORDER BY phone")" \
		$'+972500000001 failed fields_too_large\n+972500000002 queued -'
	[[ "$stderr" == *"fields_too_large"*"16384"* ]] || fail "unclear: $stderr"
}

@test "create: a recipient lacking a field the text needs (no fallback) is stored failed missing_field and never sent" {
	biz=$(bc_business)
	printf '%s\n' '{"phone":"+972500000001","name":"Dana"}' '{"phone":"+972500000002"}' \
		'{"phone":"+972500000003","name":null}' '{"phone":"+972500000004","name":{"first":"x"}}' >"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text 'hi {{name}}, {{phone}}' "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.total, .invalid]' <<<"$output")" "[4,3]"
	assert_equal "$(psql_q "SELECT string_agg(phone || ' ' || status || ' ' || coalesce(error_code, '-') || ' ' || coalesce(error_class, '-'), ',' ORDER BY phone) FROM whatsapp_broadcast_recipients")" \
		"+972500000001 queued - -,+972500000002 failed missing_field permanent,+972500000003 failed missing_field permanent,+972500000004 failed missing_field permanent"
	assert_equal "$(grep -c 'missing_field.*{{name}}' <<<"$stderr")" 3
	# (numbers failed at create leave it completed, as invalid ones do)
	wb run --no-progress 1
	assert_success
	assert_equal "$(provider_sends | jq -r .body.text)" "hi Dana, +972500000001"
	bc_consistent 1
}

@test "broken placeholders are refused before anything is stored or sent, naming the option" {
	biz=$(bc_business meta)
	for t in 'hi {{name' 'hi {{}}' 'hi {{ }} there' 'hi {{|x}}' 'hi {{name x}}' 'a {{b|c {{d}} }}'; do
		wb create --business "$biz" --text "$t" < <(bc_numbers 1)
		assert_equal "$status" 64
		[[ "$stderr" == *"--text: broken placeholder"* ]] || fail "unclear for '$t': $stderr"
		assert_equal "$(wc -l <<<"$stderr")" 1
	done
	wb create --business "$biz" --template t --language he --params '["{{name"]' < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--params: broken placeholder at byte 0"* ]] || fail "unclear: $stderr"
	wb create --business "$biz" --media '{"type":"image","url":"https://e.com/a.jpg","caption":"x {{y"}' < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--media: broken placeholder at byte 2"* ]] || fail "unclear: $stderr"
	assert_equal "$(count whatsapp_broadcasts) $(count whatsapp_broadcast_recipients)" "0 0"
	# wa-send refuses the option alike, and a record's own broken text fails that record
	send_run --business 1 --text 'hi {{name' --to +972500000001
	assert_equal "$status" 64
	[[ "$stderr" == *"--text: broken placeholder"* ]] || fail "unclear: $stderr"
	printf '%s\n' '{"to":"+972500000001","text":"hi {{name"}' '{"to":"+972500000002","text":"hi {{name|you}}"}' \
		>"$BATS_TEST_TMPDIR/in"
	send_run --business 1 "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_equal "$(jq -r '.error.code // .status' <<<"$output")" $'bad_placeholder\nsent'
	assert_equal "$(provider_sends | jq -r .body.text.body)" "hi you"
}

@test "a field holding quotes, newlines, RTL marks, emoji and {{x}} itself is inserted as it is, never expanded again" {
	biz=$(bc_business)
	v=$'"q" \\ back\nline2\t\u200f\u202bעברית\u202c 🎉 {{x}} {{name}} $$'
	jq -cn --arg v "$v" '{phone: "+972500000001", name: $v, x: "EXPANDED"}' >"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text '<{{name}}>' "$BATS_TEST_TMPDIR/in"
	assert_success
	wb run --no-progress 1
	assert_success
	assert_equal "$(provider_sends | jq -r .body.text)" "<$v>"
	# the same through wa-send from the record
	: >"$PROVIDER_LOG"
	send_run --business "$biz" --text '<{{name}}>' "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(provider_sends | jq -r .body.text)" "<$v>"
}

@test "fallbacks: used for an absent, null or empty field, not for a present one; spaces around are trimmed" {
	printf '%s\n' '{"to":"+972500000001","name":"Dana"}' '{"to":"+972500000002"}' \
		'{"to":"+972500000003","name":null}' '{"to":"+972500000004","name":""}' \
		'{"to":"+972500000005","name":12}' >"$BATS_TEST_TMPDIR/in"
	biz=$(bc_business)
	send_run --business "$biz" --text 'שלום {{ name | לקוח יקר }}!' "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(provider_sends | jq -sr 'sort_by(.to_digits) | .[].body.text')" \
		$'שלום Dana!\nשלום לקוח יקר!\nשלום לקוח יקר!\nשלום לקוח יקר!\nשלום 12!'
}

@test "preview: the first N messages rendered, claiming and changing nothing" {
	biz=$(bc_business)
	wb create --business "$biz" --region IL --text 'שלום {{name|לקוח}} #{{order}}' <<<"$RECORDS"
	assert_success
	snapshot() {
		psql_q "SELECT string_agg(row_to_json(r)::text, E'\n' ORDER BY id) FROM whatsapp_broadcast_recipients r"
		psql_q "SELECT row_to_json(b)::text FROM whatsapp_broadcasts b"
		psql_q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
	}
	before=$(snapshot)
	wb preview 1 --count 2
	assert_success
	assert_equal "$(wc -l <<<"$output")" 2
	assert_equal "$(jq -c '[.recipient_id, .phone, .jid, .provider, .message.type, .message.text]' <<<"$output")" \
		$'[1,"+972500000001","972500000001@s.whatsapp.net","baileys","text","שלום Dana #42"]\n[2,"+972500000002","972500000002@s.whatsapp.net","baileys","text","שלום לקוח #7"]'
	wb preview 1
	assert_equal "$(wc -l <<<"$output")" 3
	assert_equal "$(snapshot)" "$before"
	assert_equal "$(bc_state 1)" "3 0 0 0 0"
	assert_equal "$(provider_count)" 0
	# what preview showed is what run sends
	shown=$(jq -r .message.text <<<"$output")
	wb run --no-progress 1
	assert_success
	assert_equal "$(provider_sends | jq -sr 'sort_by(.to_digits) | .[].body.text')" "$shown"
	# an unknown broadcast is bad input
	wb preview 99
	assert_equal "$status" 65
}

@test "run: a stored recipient whose field went missing (an old row, a retry) fails missing_field instead of sending braces" {
	biz=$(bc_business)
	printf '%s\n' '{"phone":"+972500000001","name":"Dana"}' '{"phone":"+972500000002","name":"Avi"}' \
		>"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text 'hi {{name}}' "$BATS_TEST_TMPDIR/in"
	assert_success
	psql_q "UPDATE whatsapp_broadcast_recipients SET fields = NULL WHERE phone = '+972500000002'" >/dev/null
	# (a permanent failure leaves it completed, as an invalid number does)
	wb run --no-progress 1
	assert_success
	assert_equal "$(provider_sends | jq -r .body.text)" "hi Dana"
	assert_equal "$(psql_q "SELECT status || ' ' || error_code || ' ' || error_class FROM whatsapp_broadcast_recipients WHERE phone = '+972500000002'")" \
		"failed missing_field permanent"
	[[ "$stderr" == *"recipient_id=2: missing_field"* ]] || fail "unclear: $stderr"
	bc_consistent 1
}

@test "preview and export fill a JID the old system left out, as run does; a number that is none fails" {
	biz=$(bc_business)
	wb create --business "$biz" --text 'hi {{name|you}}' < <(bc_numbers 2)
	assert_success
	psql_q "UPDATE whatsapp_broadcast_recipients SET jid = NULL" >/dev/null
	psql_q "UPDATE whatsapp_broadcast_recipients SET phone = '12' WHERE id = 2" >/dev/null
	wb preview 1
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.jid, .message.text, .error.code]' <<<"$output")" \
		$'["972500000000@s.whatsapp.net","hi you",null]\n[null,null,"invalid_phone"]'
	wb export 1
	assert_success
	assert_equal "$(jq -c '[.jid, .text]' <<<"$output")" '["972500000000@s.whatsapp.net","hi {{name|you}}"]'
	assert_equal "$(psql_q "SELECT status || ' ' || error_code FROM whatsapp_broadcast_recipients WHERE id = 2")" "failed invalid_phone"
}
