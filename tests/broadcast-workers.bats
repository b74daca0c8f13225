#!/usr/bin/env bats
# suite: serial (kills workers at chosen moments; asserts a shared --rate and how soon they stop)
# Several workers, overlapping cron runs, kill -9 and SIGTERM: nobody lost,
# nobody sent twice, the in-flight sends of a killed worker left for
# review, --rate shared through PostgreSQL.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
# A worker a test left running when it failed (its pid in KEEP_PID).
teardown() {
	if [ -n "${KEEP_PID:-}" ]; then
		kill -9 "$KEEP_PID" 2>/dev/null || true
	fi
	canary_check
}

@test "three workers on one broadcast share it: nobody twice, nobody lost" {
	bc_new 600
	provider_control '{"latency_ms":30}'
	bc_bg w1 run -v --parallel 8 "$BID"
	p1=$BG_PID
	bc_bg w2 run -v --parallel 8 "$BID"
	p2=$BG_PID
	bc_bg w3 run -v --parallel 8 "$BID"
	p3=$BG_PID
	bc_bg_wait "$p1" 60
	r1=$BG_RC
	bc_bg_wait "$p2" 60
	r2=$BG_RC
	bc_bg_wait "$p3" 60
	assert_equal "$r1 $r2 $BG_RC" "0 0 0"
	assert_equal "$(bc_state "$BID")" "0 0 600 0 0"
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates) $(provider_stats max_per_recipient)" "600 0 1"
	assert_equal "$(bc_col "$BID" status)" completed
	bc_consistent "$BID"
	# Each worker did a share: its own per-recipient lines (-v), at least
	# one each, adding up to the total, no recipient in two workers' lines.
	total=0
	for w in w1 w2 w3; do
		grep '^\[WA_SEND\] ' "$BATS_TEST_TMPDIR/$w.err" >"$BATS_TEST_TMPDIR/$w.sends" || true
		n=$(grep -c "^\[WA_SEND\] broadcast_id=$BID to=97250[0-9]\{7\} status=sent$" "$BATS_TEST_TMPDIR/$w.sends" || true)
		assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/$w.sends")" "$n"
		[ "$n" -ge 1 ] || fail "$w sent nobody: $(cat "$BATS_TEST_TMPDIR/$w.err")"
		total=$((total + n))
	done
	assert_equal "$total" 600
	sed 's/.* to=\([0-9]*\) .*/\1/' "$BATS_TEST_TMPDIR"/w[123].sends | sort >"$BATS_TEST_TMPDIR/all.to"
	assert_equal "$(uniq -d "$BATS_TEST_TMPDIR/all.to")" ""
	assert_equal "$(cat "$BATS_TEST_TMPDIR/all.to")" "$(bc_numbers 600 | tr -d + | sort)"
	[ "$(psql_q "SELECT count(DISTINCT claimed_by) FROM whatsapp_broadcast_recipients")" -eq 0 ]
}

@test "two overlapping run --all (cron) share the work instead of doubling it" {
	bc_new 150
	b1=$BID
	BC_FIRST=972510000000 bc_new 150
	b2=$BID
	provider_control '{"latency_ms":5}'
	bc_bg a run --all --parallel 4
	pa=$BG_PID
	bc_bg b run --all --parallel 4
	bc_bg_wait "$pa" 60
	ra=$BG_RC
	bc_bg_wait "$BG_PID" 60
	assert_equal "$ra $BG_RC" "0 0"
	assert_equal "$(bc_col "$b1" status) $(bc_col "$b2" status)" "completed completed"
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "300 0"
	bc_consistent "$b1"
	bc_consistent "$b2"
}

@test "kill -9 mid-run, run again: nobody lost, nobody twice, in-flight sends left for review" {
	bc_new 200
	provider_control '{"latency_ms":400}'
	bc_bg run run --parallel 8 "$BID"
	provider_wait_count 20
	# Some sends are in flight now (each takes 400 ms).
	bc_wait_sql "SELECT count(*) > 0 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND sending_since IS NOT NULL" t
	kill -9 "$BG_PID"
	bc_bg_wait "$BG_PID" 5
	provider_control '{}'
	# The next run recovers the dead worker's claims at once.
	t0=$(date +%s)
	wb run --parallel 8 "$BID"
	t1=$(date +%s)
	[ $((t1 - t0)) -lt 20 ] || fail "the second run took $((t1 - t0)) s"
	[[ "$stderr" == *"recovered claims of stopped workers"* ]] || fail "$stderr"
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $c $((s + f))" "0 0 0 200"
	# Failed ones are exactly the sends in flight at the kill, marked
	# ambiguous, at most --parallel of them, and none was sent again.
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'failed' AND error_class = 'ambiguous' AND error_code = 'interrupted'")" "$f"
	[ "$f" -le 8 ] || fail "$f left for review, more than the 8 in flight"
	assert_equal "$(provider_stats duplicates) $(provider_stats max_per_recipient)" "0 1"
	for d in $(psql_q "SELECT substr(phone, 2) FROM whatsapp_broadcast_recipients WHERE status = 'failed'"); do
		assert_equal "$(provider_count "$d")" 1
	done
	# Every send the provider answered before the kill is recorded once.
	assert_equal "$(provider_stats delivered)" "$((s + f))"
	bc_consistent "$BID"
	assert_equal "$(bc_col "$BID" status)" partial
	# Only an explicit retry sends them again.
	wb retry --ambiguous "$BID"
	assert_equal "$(jq .requeued <<<"$output")" "$f"
}

@test "kill -9: the dead worker's claims are recovered as soon as the next worker starts, not when it drains" {
	bc_new 300
	provider_control '{"latency_ms":400}'
	bc_bg dead run --parallel 8 "$BID"
	provider_wait_count 10
	bc_wait_sql "SELECT count(*) > 0 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND sending_since IS NOT NULL" t
	kill -9 "$BG_PID"
	bc_bg_wait "$BG_PID" 5
	# What the dead worker held: claimed_by is its key.
	key=$(psql_q "SELECT DISTINCT claimed_by FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'processing'")
	[[ "$key" =~ ^[0-9]+$ ]] || fail "claimed_by of the dead worker: '$key'"
	held=$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by = $key AND status = 'processing'")
	inflight=$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by = $key AND status = 'processing' AND sending_since IS NOT NULL")
	[ "$inflight" -ge 1 ] && [ "$inflight" -le 8 ] && [ "$held" -gt "$inflight" ] ||
		fail "held $held, in flight $inflight"
	sent0=$(bc_sent "$BID")
	# A new worker paced at 2/s: 300 recipients would take it minutes.
	provider_control '{}'
	bc_bg slow run --rate 2 --parallel 1 "$BID"
	KEEP_PID=$BG_PID
	t0=$(date +%s)
	bc_wait_sql "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by = $key AND status = 'processing'" 0 5
	t1=$(date +%s)
	kill -0 "$BG_PID" || fail "the new worker is gone: $(cat "$BATS_TEST_TMPDIR/slow.err")"
	[ "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'queued'")" -ge 200 ] ||
		fail "the queue is nearly drained: $(bc_state "$BID")"
	[ $(( $(bc_sent "$BID") - sent0 )) -le $(( (t1 - t0 + 1) * 2 + 2 )) ] || fail "the new worker was not paced"
	# Claims not yet sending queued again, the ones in flight left for review.
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by = $key AND status = 'failed' AND error_class = 'ambiguous' AND error_code = 'interrupted'")" "$inflight"
	for i in $(seq 1 100); do
		grep -q "recovered claims" "$BATS_TEST_TMPDIR/slow.err" && break
		sleep 0.05
	done
	grep -q "\[WA_BROADCAST\] broadcast_id=$BID recovered claims of stopped workers: $((held - inflight)) queued again, $inflight in flight marked ambiguous for review" \
		"$BATS_TEST_TMPDIR/slow.err" || fail "$(cat "$BATS_TEST_TMPDIR/slow.err")"
	kill -TERM "$BG_PID"
	bc_bg_wait "$BG_PID" 10
	KEEP_PID=
	# (counters are checked once it has stopped, below: a send it records
	# between bc_consistent's two queries would look like a mismatch)
	assert_equal "$BG_RC" 75
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'processing'") $(provider_stats duplicates)" "0 0"
	bc_consistent "$BID"
}

@test "kill -9 of several workers at random moments, run again: counters add up, nobody twice" {
	bc_new 400
	provider_control '{"latency_ms":30}'
	for round in 1 2 3; do
		bc_bg "x$round" run --parallel 8 "$BID"
		pa=$BG_PID
		bc_bg "y$round" run --parallel 8 "$BID"
		pb=$BG_PID
		sleep 0.$((RANDOM % 5 + 3))
		kill -9 "$pa" "$pb" 2>/dev/null || true
		bc_bg_wait "$pa" 5
		bc_bg_wait "$pb" 5
	done
	wb run --parallel 8 "$BID"
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $c $((s + f))" "0 0 0 400"
	assert_equal "$(provider_stats duplicates)" 0
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'failed' AND error_code <> 'interrupted'")" 0
	[ "$f" -le 48 ] || fail "$f for review after 6 kills of workers with 8 in flight"
	bc_consistent "$BID"
}

# A running worker stopped by signal $1 (TERM or INT): the sends in flight
# finish and are recorded, its claims go back, exit 75 within seconds, and
# the next run finishes with nobody sent twice.
signal_stop() {
	bc_new 100
	provider_control '{"latency_ms":300}'
	bc_bg run run --parallel 8 "$BID"
	provider_wait_count 10
	# Sends are in flight now (each takes 300 ms).
	bc_wait_sql "SELECT count(*) > 0 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND sending_since IS NOT NULL" t
	n0=$(provider_count)
	t0=$(date +%s%N)
	kill -"$1" "$BG_PID"
	bc_bg_wait "$BG_PID" 10
	t1=$(date +%s%N)
	assert_equal "$BG_RC" 75
	[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] || fail "stopped after $(( (t1 - t0) / 1000000 )) ms"
	grep -q "\[WA_BROADCAST\] broadcast_id=$BID total=100 .* status=running" "$BATS_TEST_TMPDIR/run.err" ||
		fail "$(cat "$BATS_TEST_TMPDIR/run.err")"
	read -r q p s f c <<<"$(bc_state "$BID")"
	# Nobody left processing, nobody failed or marked ambiguous: the sends
	# in flight were answered and recorded as sent.
	assert_equal "$p $f $c" "0 0 0"
	[ "$s" -ge "$n0" ] || fail "$s recorded sent, $n0 had gone out before the signal"
	[ "$q" -gt 0 ] || fail "nothing left queued: the signal came too late to prove anything"
	assert_equal "$(provider_stats delivered)" "$s"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by IS NOT NULL OR sending_since IS NOT NULL")" 0
	assert_equal "$(bc_col "$BID" status)" running
	bc_consistent "$BID"
	provider_control '{}'
	wb run --parallel 8 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID") $(provider_stats delivered) $(provider_stats duplicates) $(provider_stats max_per_recipient)" "0 0 100 0 0 100 0 1"
	assert_equal "$(bc_col "$BID" status)" completed
	bc_consistent "$BID"
}

@test "SIGTERM: sends in flight finish and are recorded, claims given back, exit 75 within seconds" {
	signal_stop TERM
}

@test "SIGINT: the same as SIGTERM" {
	signal_stop INT
}

@test "a recipient handed back while it waited for a retry keeps its spent attempts: 3 sends in all" {
	bc_new 30
	provider_control '{"latency_ms":100,"rules":[{"to":"972500000000","fault":"http_429"}]}'
	bc_bg run run --parallel 2 "$BID"
	provider_wait_count 1
	for i in $(seq 1 100); do
		[ "$(provider_count 972500000000)" -ge 1 ] && break
		sleep 0.05
	done
	kill -TERM "$BG_PID"
	bc_bg_wait "$BG_PID" 10
	assert_equal "$BG_RC" 75
	assert_equal "$(psql_q "SELECT status || ' ' || (attempts = $(provider_count 972500000000)) FROM whatsapp_broadcast_recipients WHERE phone = '+972500000000'")" "queued true"
	provider_control '{"rules":[{"to":"972500000000","fault":"http_429"}]}'
	wb run --parallel 2 "$BID"
	assert_equal "$status" 1
	assert_equal "$(provider_count 972500000000)" 3
	assert_equal "$(psql_q "SELECT status || ' ' || attempts || ' ' || error_class FROM whatsapp_broadcast_recipients WHERE phone = '+972500000000'")" "failed 3 retryable"
	bc_consistent "$BID"
}

@test "kill -9 while a recipient waits between tries after a 429: it goes back to the queue, not for review" {
	bc_new 3
	# 972500000000's first try is refused (429, certainly not delivered)
	# and it waits 20 s for the next; the worker dies meanwhile.
	provider_control '{"retry_after":20,"rules":[{"to":"972500000000","fault":"http_429","times":1}]}'
	bc_bg run run --parallel 1 "$BID"
	KEEP_PID=$BG_PID
	local i st=
	for i in $(seq 1 200); do
		st=$(psql_q "SELECT status || ' ' || (sending_since IS NULL) FROM whatsapp_broadcast_recipients
			WHERE broadcast_id = $BID AND phone = '+972500000000'")
		[ "$st" = "processing true" ] && [ "$(bc_col "$BID" sent_count)" = 2 ] && break
		sleep 0.05
	done
	assert_equal "$st $(bc_col "$BID" sent_count)" "processing true 2"
	kill -9 "$BG_PID"
	wait "$BG_PID" || true
	KEEP_PID=
	wb run "$BID"
	assert_success
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "0 0 3 0 0 completed"
	assert_equal "$(provider_count 972500000000)" 2
	bc_consistent "$BID"
}

@test "--rate holds across workers: the database paces them together" {
	bc_new 60
	bc_bg r1 run --rate 20 --parallel 4 "$BID"
	p1=$BG_PID
	bc_bg r2 run --rate 20 --parallel 4 "$BID"
	p2=$BG_PID
	bc_bg r3 run --rate 20 --parallel 4 "$BID"
	bc_bg_wait "$p1" 30
	bc_bg_wait "$p2" 30
	bc_bg_wait "$BG_PID" 30
	assert_equal "$(bc_sent "$BID") $(provider_stats duplicates)" "60 0"
	# 60 sends at 20/s over three workers: about 3 s, not 1.
	span=$(jq -s '[.[] | select(.method == "POST" and .path == "/send") | .t] | (max - min)' "$PROVIDER_LOG")
	[ "$span" -ge 2700 ] || fail "60 sends in $span ms: the rate was not shared"
	[ "$span" -le 5000 ] || fail "60 sends in $span ms"
}
