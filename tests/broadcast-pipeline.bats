#!/usr/bin/env bats
# The pipeline form: wa-broadcast export ID | wa-send --context broadcast |
# wa-broadcast mark ID, with the same rows and counters as run; its
# claims, leases and window; a fatal outcome and a dying sender in it.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

# The pipeline on broadcast $1, wa-send with the remaining arguments;
# status is mark's, $stderr everything the three said.
pipeline() {
	local id=$1
	shift
	run --separate-stderr bash -c 'wa-broadcast export "$0" | wa-send --context broadcast "$@" |
		wa-broadcast mark "$0"' "$id" "$@"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
}

# Each recipient's outcome, by number: what run and the pipeline must agree on.
outcomes() {
	psql_q "SELECT phone || ' ' || status || ' ' || attempts || ' ' || coalesce(error_class, '-')
		|| ' ' || (message_id IS NOT NULL) FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $1 ORDER BY phone"
}

counters() {
	bc_col "$1" "status || ' ' || total_recipients || ' ' || sent_count || ' ' || failed_count
		|| ' ' || processed_count || ' ' || (last_processed_recipient_id > 0)"
}

@test "pipeline: the same rows and counters as run" {
	faults='{"rules":[{"to":"972500000003","fault":"http_429","times":2},
		{"to":"972500000005","fault":"baileys_500","times":1},
		{"to":"972500000007","fault":"http_400"}]}'
	bc_new 20
	a=$BID
	provider_control "$faults"
	wb run --parallel 4 "$a"
	assert_equal "$status" 1
	by_run=$(provider_stats delivered)
	provider_reset >/dev/null
	: >"$PROVIDER_LOG"
	bc_new 20
	b=$BID
	provider_control "$faults"
	pipeline "$b" --parallel 4
	assert_equal "$status" 1
	[[ "$stderr" == *"[WA_BROADCAST] broadcast_id=$b total=20 sent=18 failed=2 status=partial"* ]]
	assert_equal "$(jq -r .status <<<"$output")" partial
	assert_equal "$(outcomes "$b")" "$(outcomes "$a")"
	assert_equal "$(counters "$b")" "$(counters "$a")"
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "$by_run 0"
	bc_consistent "$b"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by IS NOT NULL OR sending_since IS NOT NULL")" 0
}

@test "pipeline: export writes records wa-send reads, with the claim and the message" {
	bc_new 2
	wb export "$BID"
	assert_success
	assert_equal "$(head -1 <<<"$output" | jq -c '[.broadcast_id, .business_id, .phone, .jid, .text, (.claim < 0), (.idempotency_key | length)]')" \
		"[$BID,$BIZ,\"+972500000000\",\"972500000000@s.whatsapp.net\",\"Hello\",true,36]"
	assert_equal "$(bc_state "$BID")" "0 2 0 0 0"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE sending_since IS NOT NULL")" 2
	# Marking the results from a file works as well as from a pipe.
	wa-send --context broadcast <<<"$output" >"$BATS_TEST_TMPDIR/results"
	wb mark "$BID" "$BATS_TEST_TMPDIR/results"
	assert_success
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "0 0 2 0 0 completed"
	# A second report of the same results changes nothing.
	wb mark "$BID" "$BATS_TEST_TMPDIR/results"
	assert_success
	bc_consistent "$BID"
	assert_equal "$(bc_col "$BID" sent_count)" 2
}

@test "pipeline: a fatal outcome pauses the broadcast, gives back the rest, exit 69; resume and run finish" {
	PROVIDER_KIND=meta bc_new 15
	provider_control '{"after":4,"after_fault":"token_rejected"}'
	pipeline "$BID"
	assert_equal "$status" 69
	assert_equal "$(bc_col "$BID" status)" paused
	[[ "$stderr" == *"status=paused"* ]]
	assert_equal "$(bc_state "$BID")" "11 0 4 0 0"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by IS NOT NULL OR sending_since IS NOT NULL")" 0
	provider_control '{}'
	wa-broadcast resume "$BID" >/dev/null
	pipeline "$BID"
	assert_success
	assert_equal "$(bc_state "$BID") $(provider_stats duplicates)" "0 0 15 0 0 0"
	bc_consistent "$BID"
}

@test "pipeline: the provider cannot be reached: stopped, not paused, nobody failed, no attempt spent" {
	bc_new 6
	# export finds the provider ready; wa-send then finds nothing there.
	run --separate-stderr bash -c 'wa-broadcast export "$0" |
		BAILEYS_BASE_URL=http://127.0.0.1:$1 wa-send --context broadcast --parallel 2 |
		wa-broadcast mark "$0"' "$BID" "$(closed_port)"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
	assert_equal "$status" 69
	assert_equal "$(bc_col "$BID" status) $(bc_col "$BID" "coalesce(pause_reason, '-')")" "running -"
	[[ $stderr == *"status=running reason=connect_failed: "*"(3 tries: the provider cannot be reached)"* ]] ||
		fail "$stderr"
	[[ $stderr == *"broadcast_id=$BID stopped: the provider cannot be reached; not paused, the next run carries on"* ]] ||
		fail "$stderr"
	assert_equal "$(bc_state "$BID")" "6 0 0 0 0"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $BID AND (attempts > 0 OR claimed_by IS NOT NULL)")" 0
	pipeline "$BID"
	assert_success
	assert_equal "$(bc_state "$BID") $(provider_stats duplicates)" "0 0 6 0 0 0"
	bc_consistent "$BID"
}

@test "pipeline: the sender dies: its unanswered recipients are left for review, the rest go on" {
	bc_new 60
	provider_control '{"latency_ms":200}'
	wa-broadcast export --window 16 "$BID" 2>"$BATS_TEST_TMPDIR/export.err" | \
		{ wa-send --context broadcast --parallel 4 3>&- & echo $! >"$BATS_TEST_TMPDIR/send.pid"; wait; } | \
		wa-broadcast mark "$BID" >"$BATS_TEST_TMPDIR/mark.out" 2>"$BATS_TEST_TMPDIR/mark.err" &
	provider_wait_count 8
	kill -9 "$(cat "$BATS_TEST_TMPDIR/send.pid")"
	wait
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$p" 0
	[ "$f" -gt 0 ] && [ "$f" -le 16 ] || fail "$f left for review with a window of 16"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'failed' AND error_class = 'ambiguous' AND error_code = 'no_result'")" "$f"
	grep -q "got no result: marked ambiguous for review" "$BATS_TEST_TMPDIR/mark.err"
	bc_consistent "$BID"
	provider_control '{}'
	wb run --parallel 8 "$BID"
	assert_equal "$(bc_state "$BID" | cut -d' ' -f1,2) $(provider_stats duplicates)" "0 0 0"
	assert_equal "$(( $(bc_sent "$BID") + f ))" 60
}

@test "pipeline claims outlive export until their lease: run leaves them alone, then recovers them" {
	bc_new 6
	wb export --window 0 --lease 2 "$BID"
	assert_success
	echo "$output" >"$BATS_TEST_TMPDIR/exported"
	# Handed over, no mark yet: another worker must not send them.
	wb run "$BID"
	assert_success
	assert_equal "$(provider_stats sends) $(bc_state "$BID")" "0 0 6 0 0 0"
	# The lease runs out (2 s): handed over, so they may have gone: the
	# first run after that takes them back for review (bounded poll).
	for i in $(seq 1 100); do
		wb run "$BID"
		[ "$(bc_state "$BID")" = "0 0 0 6 0" ] && break
		sleep 0.1
	done
	assert_equal "$(provider_stats sends) $(bc_state "$BID")" "0 0 0 0 6 0"
	assert_equal "$(psql_q "SELECT DISTINCT error_code FROM whatsapp_broadcast_recipients")" interrupted
	bc_consistent "$BID"
}

@test "export --window: at most that many handed over without a result" {
	bc_new 30
	run timeout -s TERM 2 wa-broadcast export --window 5 "$BID"
	assert_equal "$(wc -l <<<"$output")" 5
	assert_equal "$(bc_state "$BID")" "25 5 0 0 0"
}

@test "export: not ready or paused: nothing claimed, exit 69" {
	bc_new 3
	provider_control '{"baileys_state":"waiting_qr"}'
	wb export "$BID"
	assert_equal "$status" 69
	assert_output ""
	[[ "$stderr" == *"[WA_BROADCAST] broadcast_id=$BID not started: "* ]]
	provider_control '{}'
	wa-broadcast pause "$BID" >/dev/null
	wb export "$BID"
	assert_equal "$status" 69
	assert_equal "$(bc_state "$BID")" "3 0 0 0 0"
}

@test "mark: records that are not this broadcast's results are refused, exit 65" {
	bc_new 2
	wb mark "$BID" < <(printf '%s\n' '{"recipient_id":1,"broadcast_id":999,"claim":-1,"status":"sent"}' 'not json' '{"status":"sent"}')
	assert_equal "$status" 65
	assert_equal "$(grep -c 'wa-broadcast: error: <stdin>:' <<<"$stderr")" 3
	assert_equal "$(bc_state "$BID")" "2 0 0 0 0"
}

@test "a pipeline killed whole: once mark holds its claims they are kept db-wait + 5 s, not export's lease" {
	bc_new 60
	provider_control '{"latency_ms":200}'
	d=$BATS_TEST_TMPDIR
	{ echo $BASHPID >"$d/x.pid"; exec wa-broadcast export --window 16 "$BID" 2>/dev/null; } 3>&- |
		{ echo $BASHPID >"$d/s.pid"; exec wa-send --context broadcast --parallel 4 2>/dev/null; } 3>&- |
		{ echo $BASHPID >"$d/m.pid"; exec wa-broadcast mark "$BID" >/dev/null 2>&1; } 3>&- &
	for i in $(seq 1 200); do
		[ "$(bc_sent "$BID")" -ge 20 ] && break
		sleep 0.05
	done
	# mark first: once wa-send is gone, mark would see the end of its
	# input and settle the claims; then export, which could give them back.
	kill -9 "$(cat "$d/m.pid")" "$(cat "$d/x.pid")" "$(cat "$d/s.pid")"
	wait || true
	# export's lease is 300 s; mark's hold, --db-wait (30) + 5 s, takes
	# its place: the claims are free well within a minute, not in five.
	left=$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'processing'")
	[ "$left" -gt 0 ] || fail "nothing left claimed"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'processing' AND claimed_until > now() + interval '35.5 seconds'")" 0
	# Until then nobody takes them; then (the clock moved on) the next run
	# does: handed over without a result, they are for review.
	provider_control '{}'
	wb run --parallel 8 "$BID"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'processing'")" "$left"
	psql_q "UPDATE whatsapp_broadcast_recipients SET claimed_until = now() WHERE status = 'processing'" >/dev/null
	wb run --parallel 8 "$BID"
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $c $((s + f)) $f" "0 0 0 60 $left"
	assert_equal "$(provider_stats duplicates)" 0
	bc_consistent "$BID"
}
