#!/usr/bin/env bats
# What a broadcast does when Meta's answer means more than "this recipient
# failed": the account cannot send (fatal), the template cannot be used by
# anyone (pause after the first), the number is over its throughput (the
# pace drops for every worker), the recipient is messaged too often (wait
# for them alone), a Retry-After longer than a run waits (queued for later).

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

# meta_bcast N ARGS...: a Meta business and a broadcast to N numbers.
meta_bcast() {
	PROVIDER_KIND=meta bc_new "$@"
}

# meta_tpl N ARGS...: the same, a template broadcast (promo, he).
meta_tpl() {
	local n=$1
	shift
	BIZ=$(bc_business meta)
	BID=$(bc_numbers "$n" | bc_create --business "$BIZ" --template promo --language he "$@")
}

rows_with() { # ID STATUS CODE CLASS: how many rows have them
	psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1
		AND status = '$2' AND error_code = '$3' AND error_class = '$4'"
}

@test "meta: an account that cannot send stops the run: paused with the reason, nobody failed, exit 69" {
	for c in 131042:payment_issue 133010:number_not_registered 131045:registration_error 3:capability_denied; do
		: >"$PROVIDER_LOG"
		meta_bcast 6
		provider_control "{\"rules\":[{\"to\":\"*\",\"fault\":\"meta:${c%%:*}\"}]}"
		wb run --parallel 1 "$BID"
		assert_equal "$c: $status" "$c: 69"
		assert_equal "$c: $(bc_col "$BID" status)" "$c: paused"
		[[ "$(bc_col "$BID" pause_reason)" == "${c#*:}: "* ]] || fail "$c: pause reason $(bc_col "$BID" pause_reason)"
		# one request, and it went back to the queue with the rest
		assert_equal "$c: $(provider_count) $(bc_state "$BID")" "$c: 1 6 0 0 0 0"
		bc_consistent "$BID"
	done
}

@test "meta: a template no one can use pauses a template broadcast after its first answer; the rest stay queued" {
	for c in 132001:template_missing 132015:template_paused 132016:template_disabled; do
		: >"$PROVIDER_LOG"
		meta_tpl 6
		provider_control "{\"rules\":[{\"to\":\"*\",\"fault\":\"meta:${c%%:*}\"}]}"
		wb run --parallel 1 "$BID"
		assert_equal "$c: $status" "$c: 69"
		assert_equal "$c: $(bc_col "$BID" status)" "$c: paused"
		[[ "$(bc_col "$BID" pause_reason)" == "${c#*:}: "* ]] || fail "$c: pause reason $(bc_col "$BID" pause_reason)"
		[[ "$stderr" == *"status=paused reason=${c#*:}"* ]] || fail "$stderr"
		# the recipient that got the answer failed, for good; the others
		# were never sent
		assert_equal "$c: $(provider_count) $(bc_state "$BID")" "$c: 1 5 0 0 1 0"
		assert_equal "$c: $(rows_with "$BID" failed "${c#*:}" permanent)" "$c: 1"
		bc_consistent "$BID"
	done
	# Fixed, resumed: the rest go.
	provider_control '{}'
	wb resume "$BID"
	wb run "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 5 1 0"
}

@test "meta: wrong parameters shared by everyone pause; parameters from each recipient's fields fail that recipient only" {
	meta_tpl 5 --params '["fixed"]'
	provider_control '{"rules":[{"to":"*","fault":"meta:132000"}]}'
	wb run --parallel 1 "$BID"
	assert_equal "$status" 69
	assert_equal "$(bc_col "$BID" status) $(provider_count) $(bc_state "$BID")" "paused 1 4 0 0 1 0"
	assert_equal "$(rows_with "$BID" failed template_params permanent)" 1

	: >"$PROVIDER_LOG"
	biz=$(bc_business meta)
	bid=$(printf '{"phone":"+97250000000%d","name":"n%d"}\n' 1 1 2 2 3 3 |
		bc_create --business "$biz" --template promo --language he --params '["{{name}}"]')
	provider_control '{"rules":[{"to":"*","fault":"meta:132012"}]}'
	wb run --parallel 1 "$bid"
	assert_equal "$status" 1
	assert_equal "$(bc_col "$bid" status) $(provider_count) $(bc_state "$bid")" "failed 3 0 0 0 3 0"
	assert_equal "$(rows_with "$bid" failed template_params permanent)" 3
	bc_consistent "$bid"
}

@test "pipeline: a template no one can use pauses the broadcast as run does; wa-send stops, exit 69" {
	meta_tpl 40
	provider_control '{"rules":[{"to":"*","fault":"meta:132016"}]}'
	wa-broadcast export --window 8 "$BID" 2>"$BATS_TEST_TMPDIR/export.err" |
		wa-send --context broadcast --parallel 1 2>"$BATS_TEST_TMPDIR/send.err" |
		wa-broadcast mark "$BID" >"$BATS_TEST_TMPDIR/mark.out" 2>"$BATS_TEST_TMPDIR/mark.err" && rc=0 || rc=$?
	assert_equal "$rc" 69
	grep -q "template_disabled: nothing more will be sent" "$BATS_TEST_TMPDIR/send.err" || fail "$(cat "$BATS_TEST_TMPDIR/send.err")"
	assert_equal "$(bc_col "$BID" status)" paused
	[[ "$(bc_col "$BID" pause_reason)" == "template_disabled: "* ]]
	# wa-send stopped at the first answer: one request, one recipient
	# failed, every other one back in the queue, none left claimed (mark
	# pauses before it gives the claims back; export claims nothing once
	# the broadcast is paused)
	assert_equal "$(provider_count) $(bc_state "$BID")" "1 39 0 0 1 0"
	bc_consistent "$BID"
}

@test "meta: the same template errors from a one-off wa-send stay the record's, and the run goes on" {
	provider_control '{"rules":[{"to":"*","fault":"meta:132001"}]}'
	send_run --provider meta --template '{"name":"promo","language":"he"}' <<'EOF'
{"to":"+972501234561"}
{"to":"+972501234562"}
{"to":"+972501234563"}
EOF
	assert_equal "$status" 1
	assert_equal "$(jq -r '.status + " " + .error.code + " " + .error.class + " " + (.error.halt // false | tostring)' <<<"$output" | sort -u)" \
		"failed template_missing permanent false"
	assert_equal "$(provider_count)" 3
}

@test "130429: besides the retry, the sender's pace halves for every worker" {
	meta_bcast 30
	provider_control '{"retry_after":0,"rules":[{"to":"972500000003","fault":"meta:130429","times":1}]}'
	wb -v run --parallel 4 --rate 50 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 30 0 0"
	assert_equal "$(provider_stats duplicates)" 0
	[[ "$stderr" == *"throttled by the provider: the pace halves"* ]] || fail "$stderr"
	# The shared pacing row says so: every worker reads it for its next block.
	assert_equal "$(psql_q "SELECT factor || ' ' || (throttled_at IS NOT NULL) FROM wa_send_pacing")" "0.5 true"
	# Each slot after the throttle is at least 1/25 s apart (50/s halved).
	t429=$(jq -s '[.[] | select(.status == 429) | .t] | min' "$PROVIDER_LOG")
	n=$(jq -s --argjson t "$t429" '[.[] | select(.path | endswith("/messages")) | select(.t > $t and .t <= $t + 400)] | length' "$PROVIDER_LOG")
	[ "$n" -le 14 ] || fail "$n sends within 400 ms of the 429 (the pace was not halved)"
}

@test "HTTP 429 without a code from Meta throttles too, and is retried" {
	meta_bcast 4
	provider_control '{"rules":[{"to":"972500000001","fault":"http_429_bare","times":2}]}'
	wb -v run --parallel 1 --rate 100 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 4 0 0"
	assert_equal "$(provider_count 972500000001)" 3
	[[ "$stderr" == *"throttled by the provider: the pace halves"* ]] || fail "$stderr"
	[ "$(psql_q "SELECT factor < 1 FROM wa_send_pacing")" = t ]
}

@test "131056: that recipient is tried again no sooner than 6 s later; the others go on at once" {
	meta_bcast 8
	provider_control '{"rules":[{"to":"972500000002","fault":"meta:131056","times":1}]}'
	wb run --parallel 2 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 8 0 0"
	read -r t1 t2 <<<"$(jq -s -r '[.[] | select(.to_digits == "972500000002") | .t] | sort | map(tostring) | join(" ")' "$PROVIDER_LOG")"
	[ $((t2 - t1)) -ge 5900 ] || fail "the second try came $((t2 - t1)) ms after the first"
	# Every other recipient was sent before that second try.
	last_other=$(jq -s '[.[] | select(.to_digits != "972500000002" and (.path | endswith("/messages"))) | .t] | max' "$PROVIDER_LOG")
	[ "$last_other" -lt "$t2" ] || fail "other recipients waited for the pair limit"
}

@test "a Retry-After longer than a run waits: the recipient stays queued for then, the run ends 75, a later run sends it" {
	meta_bcast 3
	provider_control '{"retry_after":120,"rules":[{"to":"972500000001","fault":"http_429","times":1}]}'
	wb run "$BID"
	assert_equal "$status" 75
	[[ "$stderr" == *"1 queued for later (the first in 1"*" s): the next run sends them"* ]] || fail "$stderr"
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "1 0 2 0 0 running"
	wait_s=$(psql_q "SELECT round(extract(epoch FROM next_attempt_at - now())) FROM whatsapp_broadcast_recipients WHERE status = 'queued'")
	[ "$wait_s" -ge 100 ] && [ "$wait_s" -le 120 ] || fail "next_attempt_at in $wait_s s"
	assert_equal "$(provider_count 972500000001)" 1
	# Its time comes (moved here, not waited for): the next run sends it.
	psql_q "UPDATE whatsapp_broadcast_recipients SET next_attempt_at = now() WHERE status = 'queued'" >/dev/null
	wb run "$BID"
	assert_success
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "0 0 3 0 0 completed"
}

@test "pipeline: a Retry-After longer than a run waits queues the recipient for then, as run does" {
	meta_bcast 3
	provider_control '{"retry_after":120,"rules":[{"to":"972500000001","fault":"http_429","times":1}]}'
	wa-broadcast export "$BID" 2>"$BATS_TEST_TMPDIR/export.err" |
		wa-send --context broadcast 2>/dev/null | tee "$BATS_TEST_TMPDIR/results" |
		wa-broadcast mark "$BID" >/dev/null 2>&1 && rc=0 || rc=$?
	# wa-send's record says when it may go again; mark keeps it queued
	assert_equal "$(jq -r 'select(.status == "failed") | [.error.class, .error.retry_after, .error.throttle] | map(tostring) | join(" ")' "$BATS_TEST_TMPDIR/results")" "retryable 120 true"
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "1 0 2 0 0 running"
	wait_s=$(psql_q "SELECT round(extract(epoch FROM next_attempt_at - now())) FROM whatsapp_broadcast_recipients WHERE status = 'queued'")
	[ "$wait_s" -ge 100 ] && [ "$wait_s" -le 120 ] || fail "next_attempt_at in $wait_s s"
	assert_equal "$(psql_q "SELECT attempts FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" 1
	bc_consistent "$BID"
}

@test "wa-send --rate: a 130429 halves its own pace too" {
	provider_control '{"retry_after":0,"rules":[{"to":"972500000002","fault":"meta:130429","times":1}]}'
	seq 972500000000 972500000029 | sed 's/.*/{"to":"+&"}/' >"$BATS_TEST_TMPDIR/in"
	send_run --provider meta --context broadcast --rate 20 --parallel 4 --text hi "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(provider_count)" 31
	t429=$(jq -s '[.[] | select(.status == 429) | .t] | min' "$PROVIDER_LOG")
	n=$(jq -s --argjson t "$t429" '[.[] | select(.path | endswith("/messages")) | select(.t > $t and .t <= $t + 500)] | length' "$PROVIDER_LOG")
	# 20/s would start 10 in half a second; halved, 5 (and the retry)
	[ "$n" -le 7 ] || fail "$n sends within 500 ms of the 429 (the pace was not halved)"
}
