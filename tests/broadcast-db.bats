#!/usr/bin/env bats
# suite: serial (keepalive timers and how soon a lost database is noticed)
# The database going away under a running broadcast: reconnect with
# backoff, record what finished meanwhile, go on; or, when it stays away,
# exit 75 having lost nothing, and the next run finishes the job.

setup_file() {
	load lib/common
	load lib/pg
	load lib/provider
	load lib/bcast
	bc_setup_file
}

teardown_file() {
	load lib/common
	load lib/pg
	load lib/provider
	load lib/bcast
	# A test that failed half-way may have left the server down.
	pg_up >/dev/null 2>&1 || true
	bc_teardown_file
}

setup() {
	load lib/common
	load lib/pg
	load lib/provider
	load lib/bcast
	bc_setup
}

teardown() {
	load lib/provider
	canary_check
}

@test "PostgreSQL restarted mid-run: the run reconnects and finishes, each recipient once" {
	bc_new 300
	provider_control '{"latency_ms":40}'
	bc_bg run run --parallel 8 "$BID"
	provider_wait_count 40
	pg_restart
	bc_bg_wait "$BG_PID" 60
	assert_equal "$BG_RC" 0
	grep -q "database connection lost" "$BATS_TEST_TMPDIR/run.err"
	grep -q "database back, going on" "$BATS_TEST_TMPDIR/run.err"
	grep -q "total=300 sent=300 failed=0 status=completed" "$BATS_TEST_TMPDIR/run.err"
	assert_equal "$(bc_state "$BID")" "0 0 300 0 0"
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "300 0"
	bc_consistent "$BID"
}

@test "the database stays away past --db-wait: exit 75, nothing lost; the next run finishes" {
	bc_new 200
	provider_control '{"latency_ms":40}'
	bc_bg run run --parallel 8 --db-wait 2 "$BID"
	provider_wait_count 40
	t0=$(date +%s)
	pg_down
	bc_bg_wait "$BG_PID" 30
	t1=$(date +%s)
	pg_up
	assert_equal "$BG_RC" 75
	[ $((t1 - t0)) -le 10 ] || fail "gave up after $((t1 - t0)) s with --db-wait 2"
	grep -q "database unavailable for 2 s" "$BATS_TEST_TMPDIR/run.err"
	# What it could not record, it said (message ids for the reviewer).
	lost=$(grep -c "not recorded (database unavailable)" "$BATS_TEST_TMPDIR/run.err" || true)
	[ "$lost" -le 8 ] || fail "$lost outcomes unrecorded with 8 in flight"
	provider_control '{}'
	wb run --parallel 8 "$BID"
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $c $((s + f))" "0 0 0 200"
	# Nobody twice; only sends in flight when it went away are for review.
	assert_equal "$(provider_stats duplicates)" 0
	d=$(provider_stats delivered)
	[ "$d" -ge "$s" ] && [ "$d" -le $((s + f)) ] || fail "delivered $d, sent $s, for review $f"
	[ "$f" -le 8 ] || fail "$f for review, more than 8 in flight"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'failed' AND error_class = 'ambiguous'")" "$f"
	bc_consistent "$BID"
}

@test "the database stays away while sends are in flight: they are named, dropped cleanly, and reviewed on the next run" {
	bc_new 20
	provider_control '{"latency_ms":4000}'
	bc_bg run run --parallel 4 --db-wait 1 "$BID"
	provider_wait_count 4
	pg_down
	bc_bg_wait "$BG_PID" 30
	pg_up
	# 75, not a sanitizer's 99: the dropped requests' memory is freed.
	assert_equal "$BG_RC" 75
	grep -q "broadcast_id=$BID: 4 sends still in flight, their outcome unknown" \
		"$BATS_TEST_TMPDIR/run.err" || fail "$(cat "$BATS_TEST_TMPDIR/run.err")"
	provider_control '{}'
	wb run --parallel 4 "$BID"
	assert_equal "$(bc_state "$BID")" "0 0 16 4 0"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'failed' AND error_class = 'ambiguous'")" 4
	assert_equal "$(provider_stats duplicates)" 0
	bc_consistent "$BID"
}

@test "two workers through a restart: nobody twice, counters add up" {
	bc_new 400
	provider_control '{"latency_ms":30}'
	bc_bg a run --parallel 8 "$BID"
	pa=$BG_PID
	bc_bg b run --parallel 8 "$BID"
	provider_wait_count 60
	pg_restart
	bc_bg_wait "$pa" 60
	ra=$BG_RC
	bc_bg_wait "$BG_PID" 60
	rb=$BG_RC
	wb run "$BID"
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $c $((s + f))" "0 0 0 400"
	# Both finish. A restart ends every session, so the worker back first
	# may take the other's sends in flight as a dead worker's: ambiguous,
	# for review, never sent again; then the broadcast is partial (exit 1),
	# unless the other's real outcomes arrive later and complete it. Each
	# exit matches the summary that worker printed.
	for w in a:$ra b:$rb; do
		st=$(grep -o "total=400 .* status=[a-z]*" "$BATS_TEST_TMPDIR/${w%%:*}.err" | tail -n 1)
		case "${w#*:} $st" in
		"0 "*status=completed | "0 "*status=running | "1 "*status=partial) ;;
		*) fail "worker ${w%%:*}: exit ${w#*:} with summary '$st'" ;;
		esac
	done
	if [ "$f" -eq 0 ]; then
		assert_equal "$(bc_col "$BID" status)" completed
	fi
	assert_equal "$(provider_stats duplicates)" 0
	[ "$f" -le 16 ] || fail "$f for review"
	bc_consistent "$BID"
}

@test "no database at start: a clear error, exit 69, nothing sent" {
	bc_new 3
	pg_down
	wb run "$BID"
	pg_up
	assert_equal "$status" 69
	[[ "$stderr" == *"wa-broadcast: error: "*"connect"* ]] || fail "$stderr"
	assert_equal "$(provider_stats sends)" 0
}

@test "a worker's session is dropped within half a minute if its host dies (keepalives on both ends)" {
	# Its claims live as long as its session: the server's socket for it
	# must probe a silent peer after 10 s, not after the OS default of two
	# hours, and so must the worker's own. ss shows both sockets' timers.
	bc_new 100
	provider_control '{"latency_ms":200}'
	bc_bg run run --parallel 2 "$BID"
	provider_wait_count 2
	port=$(psql_q "SELECT client_port FROM pg_stat_activity WHERE application_name = 'wa-broadcast' AND client_port > 0 LIMIT 1")
	[ -n "$port" ] || fail "no wa-broadcast session over TCP"
	pgport=${DATABASE_URL##*:}
	pgport=${pgport%%/*}
	# ss shows the keepalive timer only on an idle socket (with data in
	# flight it shows the retransmit timer): freeze the worker so both ends
	# go quiet, and look until they have (a bounded wait, not a guess).
	kill -STOP "$BG_PID"
	for _ in $(seq 200); do
		server=$(ss -tnoH state established "( sport = :$pgport and dport = :$port )")
		client=$(ss -tnoH state established "( sport = :$port and dport = :$pgport )")
		[[ $server == *keepalive* && $client == *keepalive* ]] && break
		sleep 0.05
	done
	kill -CONT "$BG_PID"
	kill -TERM "$BG_PID"
	bc_bg_wait "$BG_PID" 30
	for t in "$server" "$client"; do
		[[ $t =~ timer:\(keepalive,([0-9.]+)(ms|sec|min) ]] || fail "no keepalive timer: $t"
		awk -v v="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[2]}" \
			'BEGIN { exit !(u != "min" && (u == "ms" ? v / 1000 : v) <= 10) }' ||
			fail "keepalive in ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}: $t"
	done
}

@test "pipeline: PostgreSQL restarted mid-run: mark reconnects and records every result; the pipeline again finishes" {
	bc_new 200
	provider_control '{"latency_ms":40}'
	wa-broadcast export --window 32 "$BID" 2>"$BATS_TEST_TMPDIR/export.err" 3>&- |
		wa-send --context broadcast --parallel 8 2>/dev/null 3>&- |
		wa-broadcast mark "$BID" >"$BATS_TEST_TMPDIR/mark.out" 2>"$BATS_TEST_TMPDIR/mark.err" 3>&- &
	pid=$!
	provider_wait_count 40
	pg_restart
	bc_bg_wait "$pid" 60
	grep -q "database connection lost" "$BATS_TEST_TMPDIR/mark.err" || fail "$(cat "$BATS_TEST_TMPDIR/mark.err")"
	grep -q "database back, going on" "$BATS_TEST_TMPDIR/mark.err"
	# Every result that reached mark was recorded: nothing left for review.
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status IN ('failed', 'processing')")" 0
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$(provider_stats delivered)" "$s"
	provider_control '{}'
	wa-broadcast export "$BID" 2>/dev/null | wa-send --context broadcast --parallel 8 2>/dev/null |
		wa-broadcast mark "$BID" >/dev/null 2>&1
	assert_equal "$(bc_state "$BID") $(provider_stats duplicates)" "0 0 200 0 0 0"
	bc_consistent "$BID"
}
