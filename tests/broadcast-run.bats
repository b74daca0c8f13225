#!/usr/bin/env bats
# suite: serial (asserts the pace --rate gives, within bounds)
# wa-broadcast run against a real PostgreSQL and the test provider:
# pre-flight, routing, the one retry policy, continue on error, counters,
# the cursor, --rate.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

@test "run: every recipient sent once, counters and cursor right, summary line and record" {
	bc_new 25
	wb run --parallel 4 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 25 0 0"
	bc_consistent "$BID"
	assert_equal "$(provider_stats sends) $(provider_stats duplicates)" "25 0"
	assert_equal "$(bc_col "$BID" "status || ' ' || last_processed_recipient_id")" \
		"completed $(psql_q "SELECT max(id) FROM whatsapp_broadcast_recipients")"
	[[ "$stderr" == *"[WA_BROADCAST] broadcast_id=$BID total=25 sent=25 failed=0 status=completed"* ]]
	assert_equal "$(jq -r '.status + " " + (.sent|tostring) + " " + (.queued|tostring)' <<<"$output")" "completed 25 0"
	# Each row knows its message id and that it took one attempt.
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE message_id IS NOT NULL AND attempts = 1 AND sent_at IS NOT NULL")" 25
}

@test "run -v: a line per recipient in the operators' format" {
	bc_new 3
	wb -v run "$BID"
	assert_success
	[[ "$stderr" == *"[WA_SEND] broadcast_id=$BID to=972500000000 status=sent"* ]]
	assert_equal "$(grep -c '^\[WA_SEND\] broadcast_id=' <<<"$stderr")" 3
}

@test "run: Baileys gets the JID and tenant, Meta gets digits: routing by the business row" {
	bc_new 2
	b1=$BID
	PROVIDER_KIND=meta bc_new 2
	b2=$BID
	wb run "$b1" "$b2"
	assert_success
	run jq -r 'select(.method == "POST") | .api + " " + .path + " " + (.tenant // "-") + " " + .to' "$PROVIDER_LOG"
	assert_line "baileys /send business_1 972500000000@s.whatsapp.net"
	assert_line "meta /v21.0/$TEST_PNID/messages - 972500000000"
	assert_equal "$(jq -s '[.[] | select(.method == "POST")] | length' "$PROVIDER_LOG")" 4
	bc_consistent "$b1"
	bc_consistent "$b2"
}

@test "run: the provider not ready: stays queued, nobody touched, exit 69" {
	bc_new 5
	provider_control '{"baileys_state":"waiting_qr"}'
	wb run "$BID"
	assert_equal "$status" 69
	[[ "$stderr" == *"[WA_BROADCAST] broadcast_id=$BID not started: "*"scan the QR code"* ]]
	assert_equal "$(bc_col "$BID" status)" queued
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'queued' AND claimed_by IS NULL AND attempts = 0")" 5
	assert_equal "$(provider_stats sends)" 0
	# One status request, the pre-flight, and nothing else.
	assert_equal "$(jq -s '[.[] | select(.path | startswith("/_") | not)] | length' "$PROVIDER_LOG")" 1
}

@test "run: Meta's token rejected at pre-flight: not started, exit 69" {
	PROVIDER_KIND=meta bc_new 3
	export META_WA_ACCESS_TOKEN=wrong-token
	wb run "$BID"
	assert_equal "$status" 69
	[[ "$stderr" == *"not started: Meta refused"* ]]
	assert_equal "$(bc_col "$BID" status) $(provider_stats sends)" "queued 0"
}

@test "run: a retryable failure is retried by the one policy, at most 3 sends" {
	bc_new 4
	# Baileys' 429 is retryable (certainly not sent).
	provider_control '{"rules":[{"to":"972500000001","fault":"http_429","times":2},
		{"to":"972500000002","fault":"http_429"}]}'
	wb run --parallel 4 "$BID"
	assert_equal "$status" 1
	assert_equal "$(provider_count 972500000000) $(provider_count 972500000001) $(provider_count 972500000002)" "1 3 3"
	assert_equal "$(psql_q "SELECT status || ' ' || attempts || ' ' || coalesce(error_class, '-') FROM whatsapp_broadcast_recipients ORDER BY id")" \
		"sent 1 -
sent 3 -
failed 3 retryable
sent 1 -"
	assert_equal "$(bc_col "$BID" status)" partial
	bc_consistent "$BID"
}

@test "run: a waiting retry does not hold up the other recipients" {
	bc_new 30
	provider_control '{"rules":[{"to":"972500000000","fault":"http_429","times":2}]}'
	wb run --parallel 2 "$BID"
	assert_success
	# Every other recipient was sent before the first one's third try.
	last_other=$(jq -s '[.[] | select(.method == "POST" and .to_digits != "972500000000")] | max_by(.seq) | .seq' "$PROVIDER_LOG")
	third=$(jq -s '[.[] | select(.to_digits == "972500000000")] | max_by(.seq) | .seq' "$PROVIDER_LOG")
	[ "$last_other" -lt "$third" ] || fail "others ended at $last_other, the retry at $third"
	assert_equal "$(provider_count 972500000000)" 3
}

@test "run: an ambiguous outcome is never retried; permanent ones fail; the rest go on" {
	bc_new 6
	provider_control '{"rules":[{"to":"972500000001","fault":"baileys_500"},{"to":"972500000003","fault":"http_400"}]}'
	wb run "$BID"
	assert_equal "$status" 1
	assert_equal "$(provider_count 972500000001) $(provider_count 972500000003)" "1 1"
	assert_equal "$(psql_q "SELECT error_class FROM whatsapp_broadcast_recipients WHERE status = 'failed' ORDER BY id")" \
		"ambiguous
permanent"
	assert_equal "$(bc_state "$BID")" "0 0 4 2 0"
	[[ "$stderr" == *"total=6 sent=4 failed=2 status=partial"* ]]
	bc_consistent "$BID"
}

@test "run: failures a retry cannot mend leave the broadcast completed; none sent is failed" {
	PROVIDER_KIND=meta bc_new 3
	provider_control '{"rules":[{"to":"972500000002","fault":"meta:131026"}]}'
	wb run "$BID"
	assert_equal "$status" 0
	assert_equal "$(bc_col "$BID" status)" completed
	assert_equal "$(psql_q "SELECT error_code || ' ' || error_class FROM whatsapp_broadcast_recipients WHERE status = 'failed'")" \
		"undeliverable permanent"
	PROVIDER_KIND=meta bc_new 2
	provider_control '{"rules":[{"to":"*","fault":"meta:131026"}]}'
	wb run "$BID"
	assert_equal "$status" 1
	assert_equal "$(bc_col "$BID" status)" failed
	bc_consistent "$BID"
}

@test "run: rows of the old system without a JID are normalized and sent" {
	biz=$(bc_business)
	bid=$(psql_q "INSERT INTO whatsapp_broadcasts (business_id, message_type, message_text, status, total_recipients)
		VALUES ($biz, 'text', 'old style', 'queued', 2) RETURNING id")
	psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone, status)
		VALUES ($bid, $biz, '+972501234567', 'queued'), ($bid, $biz, 'garbage', 'queued')"
	wb run "$bid"
	assert_equal "$status" 0
	assert_equal "$(provider_sends | jq -r .to)" "972501234567@s.whatsapp.net"
	assert_equal "$(bc_state "$bid")" "0 0 1 1 0"
	bc_consistent "$bid"
}

@test "run: a finished broadcast sends nothing more" {
	bc_new 3
	wb run "$BID"
	assert_success
	wb run "$BID"
	assert_success
	[[ "$stderr" == *"status=completed"* ]]
	assert_equal "$(provider_stats sends)" 3
}

@test "run: template and media reach the provider as stored" {
	biz=$(bc_business meta)
	bid=$(bc_create --business "$biz" --template promo --language he --params '["Dana"]' < <(bc_numbers 1))
	wb run "$bid"
	assert_success
	assert_equal "$(provider_sends | jq -c '.body.template | [.name, .language.code, .components[0].parameters[0].text]')" '["promo","he","Dana"]'
}

@test "run --rate: the sends are paced" {
	bc_new 12
	wb run --parallel 8 --rate 10 "$BID"
	assert_success
	# 12 sends at 10/s: the first goes at once, the last about 1.1 s later.
	span=$(jq -s '[.[] | select(.method == "POST") | .t] | (max - min)' "$PROVIDER_LOG")
	[ "$span" -ge 1000 ] || fail "12 sends in $span ms at --rate 10"
	[ "$span" -le 2500 ] || fail "12 sends took $span ms at --rate 10"
	assert_equal "$(psql_q "SELECT sender FROM wa_send_pacing")" "baileys:$BIZ"
}

@test "run --all: every queued or running broadcast, not paused or finished ones" {
	bc_new 2
	b1=$BID
	bc_new 2
	b2=$BID
	bc_new 2
	b3=$BID
	wa-broadcast pause "$b3" >/dev/null
	wb run --all
	assert_success
	assert_equal "$(bc_col "$b1" status) $(bc_col "$b2" status) $(bc_col "$b3" status)" "completed completed paused"
	assert_equal "$(provider_stats sends)" 4
	assert_equal "$(wc -l <<<"$output")" 2
}
