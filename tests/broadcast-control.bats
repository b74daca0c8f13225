#!/usr/bin/env bats
# suite: serial (asserts how soon a run stops after pause or cancel)
# An operator's hands on a broadcast: cancel in each state, pause and
# resume, a fatal outcome mid-run, retry of failed and ambiguous
# recipients, status and list.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
# A worker or provider a test left running when it failed (their pids in
# KEEP_PID).
teardown() {
	local p
	for p in ${KEEP_PID:-}; do
		kill -9 "$p" 2>/dev/null || true
	done
	canary_check
}

@test "status: an unknown ID is 65 and the others are shown; a database error is 70, not bad input" {
	bc_new 2
	wb status "$BID" 999999
	assert_equal "$status" 65
	assert_equal "$(jq -r .broadcast_id <<<"$output")" "$BID"
	[[ "$stderr" == *"broadcast 999999: no such broadcast"* ]] || fail "$stderr"
	# A role that may read the broadcasts but not their recipients.
	psql_q "DROP ROLE IF EXISTS wa_watcher; CREATE ROLE wa_watcher LOGIN;
		GRANT SELECT ON schema_migrations, whatsapp_broadcasts TO wa_watcher" >/dev/null
	DATABASE_URL=${DATABASE_URL/postgres@/wa_watcher@} wb status "$BID" 999999
	psql_q "DROP OWNED BY wa_watcher; DROP ROLE wa_watcher" >/dev/null
	assert_equal "$status" 70
	[[ "$stderr" == *"permission denied"* ]] || fail "$stderr"
	[[ "$stderr" == *"no such broadcast"* ]] || fail "$stderr"
}

@test "cancel a queued broadcast: every recipient cancelled and counted, nothing sent" {
	bc_new 5
	wb cancel "$BID"
	assert_success
	assert_equal "$(jq -r '.status + " " + (.cancelled|tostring)' <<<"$output")" "cancelled 5"
	assert_equal "$(bc_state "$BID")" "0 0 0 0 5"
	bc_consistent "$BID"
	wb run "$BID"
	assert_success
	assert_equal "$(provider_stats sends)" 0
	# Cancelling twice is no error; retrying a cancelled one is refused.
	wb cancel "$BID"
	assert_success
	wb retry "$BID"
	assert_equal "$status" 65
}

@test "cancel a running broadcast: noticed within a second, sends in flight finish, the rest cancelled" {
	bc_new 40
	provider_control '{"latency_ms":150}'
	bc_bg run run --parallel 2 "$BID"
	bc_wait_sql "SELECT count(*) >= 4 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" t
	wb cancel "$BID"
	assert_success
	t0=$(date +%s%N)
	bc_bg_wait "$BG_PID" 10
	t1=$(date +%s%N)
	assert_equal "$BG_RC" 0
	[ $(( (t1 - t0) / 1000000 )) -lt 2500 ] || fail "run took $(( (t1 - t0) / 1000000 )) ms to stop"
	assert_equal "$(bc_col "$BID" status)" cancelled
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $f" "0 0 0"
	assert_equal $((s + c)) 40
	[ "$c" -gt 0 ]
	# Nothing went out that is not recorded as sent, nobody twice.
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "$s 0"
	bc_consistent "$BID"
	grep -q "status=cancelled" "$BATS_TEST_TMPDIR/run.err"
}

@test "cancel a paused broadcast; a finished one cannot be cancelled" {
	bc_new 3
	wb pause "$BID"
	assert_success
	wb cancel "$BID"
	assert_success
	assert_equal "$(bc_col "$BID" status) $(bc_state "$BID")" "cancelled 0 0 0 0 3"
	bc_new 2
	wb run "$BID"
	wb cancel "$BID"
	assert_equal "$status" 65
	[[ "$stderr" == *"is completed: nothing left to cancel"* ]]
}

@test "pause a running broadcast, resume it, run it again: each recipient exactly once" {
	bc_new 40
	provider_control '{"latency_ms":100}'
	bc_bg run run --parallel 2 "$BID"
	bc_wait_sql "SELECT count(*) >= 4 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" t
	wb pause --reason "wrong link in the text" "$BID"
	assert_success
	bc_bg_wait "$BG_PID" 10
	assert_equal "$BG_RC" 0
	grep -q "status=paused" "$BATS_TEST_TMPDIR/run.err"
	assert_equal "$(bc_col "$BID" "status || ': ' || pause_reason")" "paused: wrong link in the text"
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$p $f $c" "0 0 0"
	[ "$q" -gt 0 ]
	# Paused: run does not start it.
	wb run "$BID"
	assert_equal "$status" 69
	[[ "$stderr" == *"not started: paused (wrong link in the text)"* ]]
	wb resume "$BID"
	assert_success
	assert_equal "$(bc_col "$BID" "status || coalesce(pause_reason, '')")" queued
	provider_control '{}'
	wb run --parallel 4 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 40 0 0"
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "40 0"
	bc_consistent "$BID"
}

@test "fatal mid-run (Meta token rejected): paused with the reason, nobody failed, exit 69; resume carries on" {
	PROVIDER_KIND=meta bc_new 12
	provider_control '{"after":5,"after_fault":"token_rejected"}'
	wb run --parallel 1 "$BID"
	assert_equal "$status" 69
	assert_equal "$(bc_col "$BID" status)" paused
	[[ "$(bc_col "$BID" pause_reason)" == *"190"* || "$(bc_col "$BID" pause_reason)" == *"token"* ]] ||
		fail "pause reason: $(bc_col "$BID" pause_reason)"
	[[ "$stderr" == *"status=paused"* ]]
	assert_equal "$(bc_state "$BID")" "7 0 5 0 0"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE claimed_by IS NOT NULL OR sending_since IS NOT NULL")" 0
	bc_consistent "$BID"
	provider_control '{}'
	wb resume "$BID"
	wb run --parallel 3 "$BID"
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 12 0 0"
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "12 0"
	bc_consistent "$BID"
}

@test "fatal mid-run (Baileys asks for a QR scan): paused, the claims given back" {
	bc_new 10
	provider_control '{"after":3,"after_fault":"not_connected"}'
	wb run --parallel 2 "$BID"
	assert_equal "$status" 69
	assert_equal "$(bc_col "$BID" status)" paused
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$p $f $c $((q + s))" "0 0 0 10"
	assert_equal "$s" 3
	provider_control '{}'
	wa-broadcast resume "$BID" >/dev/null
	wb run "$BID"
	assert_success
	assert_equal "$(bc_sent "$BID") $(provider_stats duplicates)" "10 0"
}

@test "the provider gone mid-run: stopped, not paused, nobody failed for it, no attempt spent; back on its port, the next run finishes" {
	bc_new 30
	# A provider of this test's own, to stop and start again on its port.
	provider_start "$BATS_TEST_TMPDIR/gone"
	local port=$PROVIDER_PORT p
	KEEP_PID=$PROVIDER_PID
	# One send at a time, paced: the provider is seldom mid-answer when it
	# stops (a send cut there may have gone out: failed, ambiguous).
	BAILEYS_BASE_URL=$PROVIDER_URL bc_bg a run --parallel 1 --rate 20 "$BID"
	KEEP_PID="$KEEP_PID $BG_PID"
	provider_wait_count 8
	provider_stop
	bc_bg_wait "$BG_PID" 60
	assert_equal "$BG_RC" 69
	# Left for the next run (cron's run --all), not paused: a provider
	# away is most often back by itself.
	assert_equal "$(bc_col "$BID" status) $(bc_col "$BID" "coalesce(pause_reason, '-')")" "running -"
	grep -q "status=running reason=connect_failed: .*(3 tries: the provider cannot be reached)" \
		"$BATS_TEST_TMPDIR/a.err" || fail "$(cat "$BATS_TEST_TMPDIR/a.err")"
	grep -q "broadcast_id=$BID stopped: the provider cannot be reached; not paused, the next run carries on" \
		"$BATS_TEST_TMPDIR/a.err" || fail "$(cat "$BATS_TEST_TMPDIR/a.err")"
	# Nobody failed because the provider was away, and the recipient that
	# found it away goes back with its attempts unspent.
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $BID AND (status = 'processing' OR claimed_by IS NOT NULL
		OR (status = 'failed' AND error_class <> 'ambiguous')
		OR (status = 'queued' AND attempts > 0))")" 0 || fail "$(psql_q "SELECT status, attempts, error_code, count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID GROUP BY 1,2,3")"
	read -r q p s f c <<<"$(bc_state "$BID")"
	[ "$f" -le 1 ] && [ "$s" -ge 7 ] && [ "$q" -gt 0 ] || fail "state $q $p $s $f $c"
	bc_consistent "$BID"
	# Still away: the next run does not start, touches nobody. (run --all,
	# as from cron, takes running broadcasts as well: tested apart.)
	BAILEYS_BASE_URL=http://127.0.0.1:$port wb run "$BID"
	assert_equal "$status" 69
	[[ $stderr == *"broadcast_id=$BID not started: Baileys unreachable"* ]] || fail "$stderr"
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "$q $p $s $f $c running"
	provider_start "$BATS_TEST_TMPDIR/back" --port "$port"
	KEEP_PID="$KEEP_PID $PROVIDER_PID"
	BAILEYS_BASE_URL=$PROVIDER_URL wb run --parallel 4 "$BID"
	provider_stop
	assert_equal "$status" "$((f > 0 ? 1 : 0))"
	assert_equal "$(bc_state "$BID")" "0 0 $((30 - f)) $f 0"
	# Each recipient reached the provider once, across both lives of it.
	assert_equal "$(cat "$BATS_TEST_TMPDIR/gone/requests.jsonl" "$BATS_TEST_TMPDIR/back/requests.jsonl" |
		jq -r 'select(.path == "/send") | .to_digits' | sort | uniq -d | wc -l)" 0
	bc_consistent "$BID"
}

@test "the service dies after taking a send: that recipient is ambiguous, never sent again; the run stops, the next one finishes" {
	bc_new 6
	provider_start "$BATS_TEST_TMPDIR/gone"
	local port=$PROVIDER_PORT
	KEEP_PID=$PROVIDER_PID
	provider_control '{"rules":[{"to":"972500000003","fault":"crash"}]}'
	BAILEYS_BASE_URL=$PROVIDER_URL wb run --parallel 1 "$BID"
	assert_equal "$status" 69
	assert_equal "$(bc_col "$BID" status) $(bc_state "$BID")" "running 2 0 3 1 0"
	assert_equal "$(psql_q "SELECT status || ' ' || error_class || ' ' || attempts
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'failed'")" \
		"failed ambiguous 1"
	provider_start "$BATS_TEST_TMPDIR/back" --port "$port"
	KEEP_PID="$KEEP_PID $PROVIDER_PID"
	BAILEYS_BASE_URL=$PROVIDER_URL wb run --parallel 2 "$BID"
	provider_stop
	assert_equal "$status" 1
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "0 0 5 1 0 partial"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/gone/requests.jsonl" "$BATS_TEST_TMPDIR/back/requests.jsonl" |
		jq -r 'select(.path == "/send") | .to_digits' | sort | uniq -c | awk '{ print $1 }' | sort -u)" 1
	bc_consistent "$BID"
}

@test "retry: failed recipients again on demand; ambiguous ones only with --ambiguous" {
	bc_new 4
	provider_control '{"rules":[{"to":"972500000001","fault":"http_429","times":3},{"to":"972500000002","fault":"baileys_500","times":1}]}'
	wb run --parallel 4 "$BID"
	assert_equal "$status" 1
	assert_equal "$(bc_col "$BID" status)" partial
	wb retry "$BID"
	assert_success
	assert_equal "$(jq .requeued <<<"$output")" 1
	assert_equal "$(psql_q "SELECT phone FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" "+972500000001"
	bc_consistent "$BID"
	wb run "$BID"
	assert_equal "$status" 1
	assert_equal "$(provider_count 972500000001) $(provider_count 972500000002)" "4 1"
	assert_equal "$(psql_q "SELECT phone || ' ' || error_class FROM whatsapp_broadcast_recipients WHERE status = 'failed'")" "+972500000002 ambiguous"
	wb retry --ambiguous "$BID"
	assert_success
	wb run "$BID"
	assert_success
	assert_equal "$(bc_col "$BID" status) $(bc_state "$BID")" "completed 0 0 4 0 0"
	assert_equal "$(provider_count 972500000002)" 2
	bc_consistent "$BID"
}

@test "status: a record per broadcast with the counts per state, rate and ETA; list" {
	bc_new 3
	b1=$BID
	biz1=$BIZ
	bc_new 2
	b2=$BID
	wa-broadcast run "$b1" >/dev/null 2>&1
	wb status "$b1" "$b2"
	assert_success
	assert_equal "$(wc -l <<<"$output")" 2
	assert_equal "$(head -1 <<<"$output" | jq -c '[.broadcast_id, .status, .total, .sent, .queued, .processing, .failed, .ambiguous, .cancelled, .processed, (.rate >= 0), .eta_seconds]')" \
		"[$b1,\"completed\",3,3,0,0,0,0,0,3,true,0]"
	assert_equal "$(tail -1 <<<"$output" | jq -c '[.status, .queued, .eta_seconds]')" '["queued",2,null]'
	wb status --all
	assert_equal "$(wc -l <<<"$output")" 2
	wb status 999
	assert_equal "$status" 65
	wb list --business "$biz1"
	assert_success
	assert_equal "$(jq -c '[.broadcast_id, .status, .total, .sent]' <<<"$output")" "[$b1,\"completed\",3,3]"
	wb list
	assert_equal "$(wc -l <<<"$output")" 2
}

# Every line of a table no wider than 100 columns, a character one column.
bc_fits_100() {
	local line
	while IFS= read -r line; do
		line=${line%$'\r'}
		[ "$(LC_ALL=C.UTF-8 bash -c 'echo ${#1}' _ "$line")" -le 100 ] ||
			fail "wider than 100 columns: $line"
	done <<<"$1"
}

@test "status and list: an aligned table on a terminal, within 100 columns, with the sender, its rate, the ETA and why it is paused" {
	name='מבצע חנוכה לכל הלקוחות הקבועים של החנות ברחבי הארץ, עם הנחה מיוחדת של עשרים אחוז'
	bc_new 2 --name "$name"
	reason='waiting for the owner to approve the new template and the price list'
	wb pause --reason "$reason" "$BID"
	assert_success
	run script -qec "wa-broadcast status $BID" /dev/null
	assert_success
	assert_line --regexp '^id +business +sender +status +sent/total +failed +rate/s +eta +note +name'
	assert_line --regexp "^ +$BID +$BIZ +baileys:$BIZ +paused +0/2 +0 +0\.0 +- +waiting for the owner"
	bc_fits_100 "$output"
	# Cut at a character, marked; the record keeps it whole.
	assert_line --partial "waiting for the owner…  מבצע חנוכ…"
	refute_line --partial "עשרים אחוז"
	wb status "$BID"
	assert_equal "$(jq -r '.name, .pause_reason' <<<"$output")" "$name"$'\n'"$reason"
	run script -qec "wa-broadcast list" /dev/null
	assert_success
	assert_line --regexp '^id +business +sender +status +sent/total +failed +rate/s +eta +note +name'
	assert_line --regexp "^ +$BID +$BIZ +baileys:$BIZ +paused +0/2 +0 +0\.0 +- +waiting for the owner"
	bc_fits_100 "$output"
}

@test "status and list: each broadcast's sender and the rate of all that sender's running broadcasts; --business filters" {
	bc_new 40
	b1=$BID biz1=$BIZ
	BID=$(bc_numbers 40 972510000000 | bc_create --business "$biz1" --text "Hi")
	b2=$BID
	bc_new 30
	b3=$BID biz3=$BIZ
	# Business 3 sends from its own Meta number.
	psql_q "UPDATE business SET whatsapp_provider = 'meta', meta_phone_number_id = '15550001'
		WHERE id = $biz3" >/dev/null
	# b1 sent 30 and b2 12 in the last minute; b3 18, from another sender.
	psql_q "UPDATE whatsapp_broadcasts SET status = 'running', started_at = now() - interval '2 minutes'" >/dev/null
	psql_q "UPDATE whatsapp_broadcast_recipients r SET status = 'sent', sent_at = now()
		FROM (SELECT id, broadcast_id, row_number() OVER (PARTITION BY broadcast_id ORDER BY id) AS n
			FROM whatsapp_broadcast_recipients) s
		WHERE r.id = s.id AND s.n <= CASE s.broadcast_id WHEN $b1 THEN 30 WHEN $b2 THEN 12 ELSE 18 END" >/dev/null
	psql_q "UPDATE whatsapp_broadcasts b SET sent_count = (SELECT count(*)
		FROM whatsapp_broadcast_recipients r WHERE r.broadcast_id = b.id AND r.status = 'sent')" >/dev/null
	wb status --all
	assert_success
	assert_equal "$(jq -c '[.broadcast_id, .sender, .sender_rate, .rate, .eta_seconds]' <<<"$output")" \
		"[$b1,\"baileys:$biz1\",0.7,0.5,20]"$'\n'"[$b2,\"baileys:$biz1\",0.7,0.2,140]"$'\n'"[$b3,\"meta:15550001\",0.3,0.3,40]"
	wb list
	assert_success
	assert_equal "$(jq -c '[.broadcast_id, .sender, .sender_rate, .rate, .eta_seconds]' <<<"$output")" \
		"[$b1,\"baileys:$biz1\",0.7,0.5,20]"$'\n'"[$b2,\"baileys:$biz1\",0.7,0.2,140]"$'\n'"[$b3,\"meta:15550001\",0.3,0.3,40]"
	# A paused one sends nothing: its sender goes at the other's rate.
	psql_q "UPDATE whatsapp_broadcasts SET status = 'paused' WHERE id = $b2" >/dev/null
	wb status "$b1"
	assert_equal "$(jq -c '[.sender_rate, .rate]' <<<"$output")" '[0.5,0.5]'
	run script -qec "wa-broadcast status --all" /dev/null
	assert_success
	assert_line --regexp "^ +$b1 +$biz1 +baileys:$biz1 +running +30/40 +0 +0\.5 +0:20 +- +-"
	assert_line --regexp "^ +$b3 +$biz3 +meta:15550001 +running +18/30 +0 +0\.3 +0:40 "
	# --business: only its broadcasts, with --all or without IDs.
	wb status --business "$biz1"
	assert_success
	assert_equal "$(jq -c .broadcast_id <<<"$output" | paste -sd,)" "$b1,$b2"
	wb status --all --business "$biz3"
	assert_equal "$(jq -c .broadcast_id <<<"$output")" "$b3"
	wb list --business "$biz3"
	assert_equal "$(jq -c .broadcast_id <<<"$output")" "$b3"
	# A business with no broadcasts (or none at all): nothing, as list.
	wb status --business 999999
	assert_success
	assert_output ""
	wb list --business 999999
	assert_success
	assert_output ""
	wb status --business "$biz1" "$b3"
	assert_equal "$status" 64
	[[ "$stderr" == *"IDs or --business, not both"* ]] || fail "$stderr"
}

@test "run --progress: a progress bar on stderr; none when stderr is not a terminal" {
	bc_new 30
	wb run --progress "$BID"
	assert_success
	[[ "$stderr" == *"sent 30 failed 0 / 30"* ]] || fail "no bar: $stderr"
	bc_new 3
	wb run "$BID"
	[[ "$stderr" != *"ETA"* ]]
}

@test "run on a terminal: a progress bar on stderr by default (sent, failed, total, rate, ETA); --no-progress: none" {
	bc_new 30
	# One permanent failure, so the bar has a failed count to show.
	provider_control '{"latency_ms":100,"rules":[{"to":"972500000000","fault":"http_400"}]}'
	# Only stderr on the terminal: stdout goes to a file.
	run script -qec "wa-broadcast run --parallel 2 $BID >$BATS_TEST_TMPDIR/bar.out" /dev/null
	# (A permanent failure leaves it completed: no retry could mend it.)
	assert_success
	assert_equal "$(bc_col "$BID" status)" completed
	# Redrawn in place: "\r\033[K" before each state of the bar.
	[[ "$output" == *$'\r\033[K'"$BID ["* ]] || fail "no bar: $output"
	bars=$(tr '\r' '\n' <<<"$output" | sed 's/\x1b\[K//g')
	# While it runs: sent and failed of the total, a rate above 0, an ETA.
	grep -Eq "^$BID \[#*-+\] sent ([0-9]|[12][0-9]) failed [01] / 30  [1-9][0-9]*/s  ETA [0-9]+:[0-5][0-9]" <<<"$bars" ||
		fail "no bar mid-run with a rate and an ETA: $bars"
	# At the end: all of it.
	grep -Eq "^$BID \[#{24}\] sent 29 failed 1 / 30  [1-9][0-9]*/s  ETA 0:00" <<<"$bars" ||
		fail "no final bar: $bars"
	assert_line --partial "[WA_BROADCAST] broadcast_id=$BID total=30 sent=29 failed=1 status=completed"
	# Nothing of it on stdout: the status record alone.
	assert_equal "$(jq -r .status "$BATS_TEST_TMPDIR/bar.out")" completed
	! grep -q "ETA" "$BATS_TEST_TMPDIR/bar.out"

	bc_new 30
	provider_control '{"latency_ms":100}'
	run script -qec "wa-broadcast run --no-progress --parallel 2 $BID >$BATS_TEST_TMPDIR/nobar.out" /dev/null
	assert_success
	# stderr is on the terminal (the summary line is there), the bar is not.
	assert_line --partial "[WA_BROADCAST] broadcast_id=$BID total=30 sent=30 failed=0 status=completed"
	[[ "$output" != *"ETA"* && "$output" != *$'\033[K'* && "$output" != *"/ 30 "* ]] ||
		fail "a bar with --no-progress: $output"
}

@test "status of a running broadcast: a rate above 0 and an ETA in seconds" {
	bc_new 60
	provider_control '{"latency_ms":200}'
	bc_bg run run --parallel 2 "$BID"
	KEEP_PID=$BG_PID
	bc_wait_sql "SELECT count(*) >= 6 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" t
	wb status "$BID"
	assert_success
	assert_equal "$(jq -c '[.status, (.rate > 0), (.eta_seconds | type), (.eta_seconds > 0), (.queued + .processing > 0)]' <<<"$output")" \
		'["running",true,"number",true,true]'
	# About 10/s (two at a time, 200 ms each) for what is left: not wildly off.
	jq -e '.eta_seconds <= 60 and .rate <= 60' <<<"$output" >/dev/null || fail "$output"
	kill -TERM "$BG_PID"
	bc_bg_wait "$BG_PID" 10
	KEEP_PID=
	assert_equal "$BG_RC" 75
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'processing'")" 0
	bc_consistent "$BID"
}
