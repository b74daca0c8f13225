#!/usr/bin/env bats
# Crash loop (a long test: `make check-long`, not `make check`).
#
# A 20,000-recipient broadcast with two workers, each killed with SIGKILL
# at 20 random moments and restarted, while the provider answers some sends
# 429 (a certain non-delivery: the recipient waits for its next try): none
# lost, no duplicate delivery (as the test provider recorded it), counters
# add up, and the number left for review no more than the sends that were
# in flight at the kills, as the database and the provider's own log tell.
#
# Reproduce one run: CRASH_SEED=N make check-long (the seed fixes the kill
# delays; the moments they land on still depend on the machine's timing).
# CRASH_PARALLEL, CRASH_LATENCY_MS, CRASH_KILLS and CRASH_429 (the share of
# sends answered 429 during the kills) change the shape.
#
# This file lives in tests/long/, one level below tests/: lib/common takes
# WA_ROOT (and the default WA_BIN) from the file's parent folder, so both
# are set for the tree's root here.

: "${WA_BIN:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build/release/bin}"
: "${WA_TESTS:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build/release/tests}"
load ../lib/common
WA_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
export WA_ROOT
load ../lib/pg
load ../lib/provider
load ../lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() {
	bc_setup
	WPID=()
}
teardown() {
	# A failed test may leave workers running: stop the ones it started
	# (WPID holds only the current, not yet reaped, incarnations).
	local p
	for p in "${WPID[@]}"; do
		[ -n "$p" ] || continue
		{ kill -9 "$p" && wait "$p"; } 2>/dev/null || true
	done
	db_close
	canary_check
}

N=20000
KILLS=${CRASH_KILLS:-20}       # per worker
PAR=${CRASH_PARALLEL:-8}       # --parallel of each worker
LAT=${CRASH_LATENCY_MS:-10}    # the provider's latency per send
R429=${CRASH_429:-0.03}        # sends answered 429 while the kills go on
# How long after its answer a send's outcome may still wait to be recorded
# (a worker records outcomes within 50 ms, or before its next sends): a
# send answered that recently is still in flight for the database.
SLACK_MS=250
# Why 10 ms: every kill must land while the broadcast is still being sent.
# At 2-5 ms two workers send about 2,000 a second and the broadcast all but
# ran out (2,500 queued) before the 40th kill; 10 ms caps them at 1,600 a
# second (8 x 2 / 10 ms) and leaves about 8,000 queued at the last kill,
# while sends are still in flight at almost every moment.

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

# The driver's queries go through one psql session (a coprocess): a psql
# started per query costs tens of ms, hundreds on a loaded machine, and
# the kills must all land while the broadcast is still being sent.
db_open() {
	coproc DBQ { exec psql -XAtq -v ON_ERROR_STOP=0 "$DATABASE_URL" 2>&1 3>&-; }
}
db_close() {
	[ -n "${DBQ_PID:-}" ] || return 0
	exec {DBQ[1]}>&-
	wait "$DBQ_PID" 2>/dev/null || true
}
# dbq SQL: its rows (psql -At); else the error, and status 1.
dbq() {
	local line out=
	printf '%s;\n\\echo __crash_loop_end__\n' "$1" >&"${DBQ[1]}" || {
		echo "the driver's psql is gone"
		return 1
	}
	while IFS= read -r -t 30 line <&"${DBQ[0]}"; do
		if [ "$line" = __crash_loop_end__ ]; then
			printf '%s' "$out"
			[[ "$out" != *ERROR:* ]]
			return
		fi
		out+=$line$'\n'
	done
	echo "no answer from the driver's psql to: $1 ($out)"
	return 1
}

# The worker key (wa_worker_key_seq) whose advisory lock the session of
# the worker started as application_name $1 holds, or nothing yet.
key_of() {
	dbq "SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l
		JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
		AND a.application_name = '$1'
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# Start worker $1 (1 or 2), incarnation $2, and wait (bounded poll on SQL)
# until it holds its worker lock: WPID[$1], WAPP[$1], WKEY[$1].
start_worker() {
	local w=$1 app=cl-w$1-$2 i key=
	PGAPPNAME=$app wa-broadcast run --no-progress --parallel "$PAR" "$BID" \
		>"$BATS_TEST_TMPDIR/$app.out" 2>"$BATS_TEST_TMPDIR/$app.err" 3>&- &
	WPID[w]=$!
	WAPP[w]=$app
	for ((i = 0; i < 2000; i++)); do
		key=$(key_of "$app") || fail "$key"
		[ -n "$key" ] && break
		kill -0 "${WPID[w]}" 2>/dev/null ||
			fail "$app exited before it took its worker lock: $(cat "$BATS_TEST_TMPDIR/$app.err")"
		sleep 0.01
	done
	[ -n "$key" ] || fail "$app took no worker lock in 20 s"
	WKEY[w]=$key
}

# SIGKILL worker $1, reap it, wait until its session is gone, then record
# what it left (see the comment in the test) and start it again.
kill_worker() {
	local w=$1 pid=${WPID[$1]} key=${WKEY[$1]} app=${WAPP[$1]} rc=0 q inflight requeue
	kill -0 "$pid" 2>/dev/null ||
		fail "$app (pid $pid) ended before its kill: $(cat "$BATS_TEST_TMPDIR/$app.err")"
	# (stderr: not bash's "Killed" line)
	local killed_at
	killed_at=$(now_ms)
	{ kill -9 "$pid" && wait "$pid"; } 2>/dev/null || rc=$?
	WPID[w]=
	[ "$rc" -eq 137 ] || fail "$app: exit status $rc after SIGKILL, not 137"
	# Its backend may still be finishing the statement it was sent (and
	# commit it); the lock goes with the session. Poll (bounded) until
	# the lock is gone, then count.
	local i live=1 row
	for ((i = 0; i < 2000; i++)); do
		row=$(dbq "SELECT
			(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1
			 AND ((classid::bigint << 32) | objid::bigint) = $key) || ' ' ||
			count(*) FILTER (WHERE status = 'queued') || ' ' ||
			count(*) FILTER (WHERE claimed_by = $key AND ((status = 'processing'
			 AND sending_since IS NOT NULL) OR (status = 'failed'
			 AND error_code = 'interrupted'))) || ' ' ||
			count(*) FILTER (WHERE claimed_by = $key AND status = 'processing'
			 AND sending_since IS NULL)
			FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID") || fail "$row"
		read -r live q inflight requeue <<<"$row"
		[ "$live" = 0 ] && break
		sleep 0.01
	done
	[ "$live" = 0 ] || fail "$app (key $key): its session still holds the lock 20 s after SIGKILL"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$app" "$key" "$inflight" "$requeue" "$q" \
		"$(( $(now_ms) - T0 ))" "$killed_at" >>"$BATS_TEST_TMPDIR/kills.tsv"
	[ "$inflight" -le "$PAR" ] ||
		fail "$app (key $key): $inflight sends in flight at its kill, more than --parallel $PAR"
	# Every kill must land on a broadcast still being sent.
	[ "$q" -gt 0 ] || fail "kill of $app: nothing was queued any more (the broadcast ran out before the kills)"
	NK[w]=$(( NK[w] + 1 ))
	start_worker "$w" $(( NK[w] + 1 ))
	NEXT[w]=$(( $(now_ms) + RANDOM % 501 ))
}

@test "crash loop: 20,000 recipients, two workers each SIGKILLed 20 times and restarted" {
	local seed=${CRASH_SEED:-$(( $(date +%s) % 32768 ))}
	RANDOM=$seed
	T0=$(now_ms)
	bc_new "$N"
	db_open
	: >"$BATS_TEST_TMPDIR/kills.tsv"
	provider_control "{\"latency_ms\":$LAT,\"retry_after\":1,\"rates\":{\"http_429\":$R429}}"

	# The kill phase: each worker has its own schedule, a kill 0-500 ms
	# (from $RANDOM) after it took its worker lock (so from its start-up
	# recovery and first claim to the middle of its sends); the driver
	# takes whichever kill is due first. The timed kill is the fault being
	# injected; every wait for state is a bounded poll on SQL or a wait
	# for the process.
	declare -a WAPP WKEY NK NEXT
	NK=(0 0 0)
	start_worker 1 1
	NEXT[1]=$(( $(now_ms) + RANDOM % 501 ))
	start_worker 2 1
	NEXT[2]=$(( $(now_ms) + RANDOM % 501 ))
	local w d
	while [ "${NK[1]}" -lt "$KILLS" ] || [ "${NK[2]}" -lt "$KILLS" ]; do
		if [ "${NK[1]}" -ge "$KILLS" ]; then w=2
		elif [ "${NK[2]}" -ge "$KILLS" ]; then w=1
		elif [ "${NEXT[1]}" -le "${NEXT[2]}" ]; then w=1
		else w=2
		fi
		d=$(( NEXT[w] - $(now_ms) ))
		if [ "$d" -gt 0 ]; then
			sleep "$(( d / 1000 )).$(printf %03d $(( d % 1000 )))"
		fi
		kill_worker "$w"
	done
	local t_kills=$(( $(now_ms) - T0 ))
	# The rest without 429s, so the pace they halved creeps back.
	provider_control "{\"latency_ms\":$LAT}"

	# The last two incarnations run to the end (bounded).
	local i rc1=0 rc2=0
	for ((i = 0; i < 2400; i++)); do
		kill -0 "${WPID[1]}" 2>/dev/null || kill -0 "${WPID[2]}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${WPID[1]}" 2>/dev/null || kill -0 "${WPID[2]}" 2>/dev/null; then
		fail "workers still running 240 s after the last kill: $(bc_state "$BID")"
	fi
	wait "${WPID[1]}" || rc1=$?
	wait "${WPID[2]}" || rc2=$?
	WPID=()
	local t_end=$(( $(now_ms) - T0 ))
	cat "$BATS_TEST_TMPDIR"/*.out "$BATS_TEST_TMPDIR"/*.err >>"$BATS_FILE_TMPDIR/outputs"
	# 0 (done, or the other worker finishes it) or 1 (partial: some left
	# for review); anything else is an error of the worker.
	[[ "$rc1 $rc2" =~ ^[01]\ [01]$ ]] ||
		fail "last workers exited $rc1 $rc2: $(cat "$BATS_TEST_TMPDIR/${WAPP[1]}.err" "$BATS_TEST_TMPDIR/${WAPP[2]}.err")"
	if grep -h -e 'error' -e 'not recorded' "$BATS_TEST_TMPDIR"/cl-w*.err; then
		fail "a worker reported an error (above)"
	fi

	# None lost: every recipient is sent or left for review; nothing is
	# queued, claimed or failed for another reason (a 429 is retried).
	local q p s f c
	read -r q p s f c <<<"$(bc_state "$BID")"
	assert_equal "$q $p $c $((s + f))" "0 0 0 $N"
	local review other
	review=$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID
		AND status = 'failed' AND error_class = 'ambiguous' AND error_code = 'interrupted'")
	assert_equal "$review" "$f"
	other=$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID
		AND (claimed_by IS NOT NULL OR sending_since IS NOT NULL) AND status <> 'failed'")
	assert_equal "$other" 0

	# Counters add up: total, sent, failed, cancelled, processed equal the
	# rows; the cursor is the last recipient; the status says review.
	bc_consistent "$BID"
	assert_equal "$(bc_col "$BID" processed_count)" "$N"
	assert_equal "$(bc_col "$BID" last_processed_recipient_id)" \
		"$(psql_q "SELECT max(id) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID")"
	if [ "$review" -gt 0 ]; then
		assert_equal "$(bc_col "$BID" status)" partial
	else
		assert_equal "$(bc_col "$BID" status)" completed
	fi

	# Left for review, no more than the sends in flight. What is measured:
	# a send is in flight from the statement that marks its sending_since
	# (before_send, in the same statement that records the outcomes before
	# it: bc_record_mark) until the statement that records its outcome.
	# The provider can only have received a send in that window, so these
	# rows are a superset of the sends really in flight at the provider. At
	# each kill, once the dead worker's session is gone (its last statement
	# committed or not, nothing of it can change any more) the rows still
	# claimed by its key, sending_since set, with no outcome (or already
	# recovered as interrupted, which keeps the key) are its sends in
	# flight: kills.tsv column 3. Nobody else can record an outcome for a
	# claim of that key, so the review rows of each dead key must be
	# exactly that number (not just at most), and each at most --parallel
	# (checked at the kill). Hence review = sum of in flight <= kills x
	# --parallel.
	local want got inflight bound
	want=$(awk -F'\t' '$3 > 0 { print $2 "|" $3 }' "$BATS_TEST_TMPDIR/kills.tsv" | sort)
	got=$(psql_q "SELECT claimed_by || '|' || count(*) FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $BID AND status = 'failed' GROUP BY claimed_by" | sort)
	[ "$got" = "$want" ] ||
		fail "review rows per dead worker key (key|rows) $(echo $got), in flight at the kills $(echo $want); kills: $(cat "$BATS_TEST_TMPDIR/kills.tsv")"
	inflight=$(awk -F'\t' '{ n += $3 } END { print n + 0 }' "$BATS_TEST_TMPDIR/kills.tsv")
	bound=$(( 2 * KILLS * PAR ))
	[ "$review" -le "$inflight" ] || fail "$review left for review, $inflight in flight at the kills"
	[ "$inflight" -le "$bound" ] || fail "$inflight in flight at the kills, more than $bound"

	# From the provider's own log: no recipient waiting for its next try
	# was left for review. A send received at t and answered 429
	# (Retry-After: 1) is not tried again before t + 1 s: if its worker died
	# after the answer was in (and SLACK_MS for the worker to note it) and
	# before that, it was certainly not on the wire and must have gone back
	# to the queue. And there were such recipients at the kills (429s in
	# that span before a kill). wire: the sends the provider held at the
	# kills (received, not yet answered), its figure beside the database's
	# (which counts also those answered but not yet recorded).
	local T=$BATS_TEST_TMPDIR
	awk -F'\t' '{ print $2 "\t" $7 }' "$T/kills.tsv" >"$T/killed_at.tsv"
	psql_q "SELECT substr(phone, 2) || '	' || claimed_by FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $BID AND status = 'failed'" >"$T/review.tsv"
	local between waiting wire r429
	between=$(jq -rs --rawfile kt "$T/killed_at.tsv" --rawfile rv "$T/review.tsv" \
		--argjson lat "$LAT" --argjson slack "$SLACK_MS" '
		($kt | split("\n") | map(select(length > 0) | split("\t") | {(.[0]): (.[1] | tonumber)}) | add) as $kill
		| (map(select(.path == "/send")) | group_by(.to_digits)
		   | map({(.[0].to_digits): map({t, status})}) | add) as $by
		| [$rv | split("\n")[] | select(length > 0) | split("\t")
		   | . as [$d, $key] | $kill[$key] as $k
		   | (($by[$d] // []) | map(select(.t <= $k)) | max_by(.t)) as $last
		   | select($last != null and $last.status == 429
		       and $last.t + $lat + $slack < $k and $k < $last.t + 1000)
		   | "\($d) killed at \($k): \($by[$d] | map("\(.t) \(.status)") | join(", "))"]
		   | join("; ")' "$PROVIDER_LOG")
	[ -z "$between" ] || fail "left for review while waiting for their next try after a 429: $between"
	read -r waiting wire r429 <<<"$(jq -rs --rawfile kt "$T/killed_at.tsv" --argjson lat "$LAT" --argjson slack "$SLACK_MS" '
		($kt | split("\n") | map(select(length > 0) | split("\t")[1] | tonumber)) as $ks
		| map(select(.path == "/send")) as $s
		| ($s | map(select(.status == 429) | .t)) as $t429
		| ($s | map([.t, .t + (.delay_ms // 0)])) as $ts
		| "\([$ks[] as $k | $t429[] | select(. + $lat + $slack < $k and . + 1000 > $k)] | length)"
		+ " \([$ks[] as $k | $ts[] | select(.[0] <= $k and $k < .[1])] | length)"
		+ " \($t429 | length)"' "$PROVIDER_LOG")"
	[ "$r429" -gt 0 ] && [ "$waiting" -gt 0 ] ||
		fail "no recipient was waiting after a 429 at a kill (429s: $r429): the test tested nothing of that"

	# No duplicate delivery, as the provider recorded it, and its record
	# agrees with the rows: every sent recipient was delivered once (with
	# the message id stored), every delivery is a sent recipient or one
	# left for review; delivered = sent + the review rows that got out.
	assert_equal "$(provider_stats duplicates)" 0
	[ "$(provider_stats max_per_recipient)" -le 1 ] || fail "max_per_recipient $(provider_stats max_per_recipient)"
	jq -r 'select(.delivered == true and .path == "/send") | "\(.to_digits) \(.message_id)"' \
		"$PROVIDER_LOG" | sort >"$T/pm"
	cut -d ' ' -f 1 "$T/pm" >"$T/p"
	psql_q "SELECT substr(phone, 2) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" | sort >"$T/s"
	psql_q "SELECT substr(phone, 2) || ' ' || message_id FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" | sort >"$T/sm"
	psql_q "SELECT substr(phone, 2) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'failed'" | sort >"$T/r"
	local delivered reached
	delivered=$(provider_stats delivered)
	assert_equal "$(wc -l <"$T/p")" "$delivered"
	assert_equal "$(sort -u "$T/p" | wc -l)" "$delivered"
	assert_equal "$(comm -23 "$T/s" "$T/p" | wc -l)" 0      # sent, never delivered
	assert_equal "$(comm -23 "$T/sm" "$T/pm" | wc -l)" 0    # sent with another message id
	assert_equal "$(sort "$T/s" "$T/r" | comm -23 "$T/p" - | wc -l)" 0  # delivered, neither
	reached=$(comm -12 "$T/p" "$T/r" | wc -l)
	assert_equal "$delivered" "$(( s + reached ))"

	local maxk mink t_checks=$(( $(now_ms) - T0 - t_end ))
	maxk=$(awk -F'\t' '$3 > m { m = $3 } END { print m + 0 }' "$T/kills.tsv")
	mink=$(awk -F'\t' 'NR == 1 || $3 < m { m = $3 } END { print m + 0 }' "$T/kills.tsv")
	echo "# crash-loop: seed=$seed kills=$(wc -l <"$T/kills.tsv") (2 workers x $KILLS, --parallel $PAR, latency ${LAT} ms)" \
		"sent=$s review=$review (delivered by the provider: $reached)" \
		"in-flight at kills=$inflight (per kill $mink-$maxk; bound $bound)" \
		"requeued at kills=$(awk -F'\t' '{ n += $4 } END { print n + 0 }' "$T/kills.tsv")" \
		"429s=$r429 (429s answered in the second before a kill: $waiting; none of those left for review)" \
		"held by the provider at the kill moments (both workers)=$wire" \
		"queued at the last kill=$(tail -n 1 "$T/kills.tsv" | cut -f5)" \
		"provider requests=$(provider_stats requests) delivered=$delivered duplicates=0" \
		"kill phase ${t_kills} ms, run $(( t_end / 1000 )).$(printf %03d $(( t_end % 1000 ))) s," \
		"checks $(( t_checks / 1000 )).$(printf %03d $(( t_checks % 1000 ))) s" >&3
}
