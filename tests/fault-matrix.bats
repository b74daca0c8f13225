#!/usr/bin/env bats
# The fault matrix: wa-broadcast run against the test provider, for both
# providers, under each fault (a share of 500s, timeouts after the request
# was read, dropped connections, 429 with Retry-After, a fatal outcome
# mid-run, very slow answers). For each, checked recipient by recipient
# against the provider's request log:
#
#   - every recipient ends sent, failed or cancelled, or in an explicit
#     review state: failed with error_class 'ambiguous' (it may have gone
#     out), or, after a fatal outcome, queued in a broadcast paused with the
#     reason;
#   - the HTTP sends the provider saw for a recipient equal the attempts
#     recorded for it and never exceed the broadcast policy's 3;
#   - nobody receives the message twice, and a recipient the provider may
#     have delivered to is never recorded as certainly not sent;
#   - a recipient recorded sent has the message id the provider answered;
#   - the broadcast's counters equal its rows, and the status record and
#     the summary line say the same.
#
# Each test adds its row to the matrix; the last test prints it (fd 3, so
# it shows in the bats output) and checks that every row is there and its
# test passed.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

FM_N=200         # recipients per broadcast
FM_PARALLEL=16   # sends in flight
FM_ATTEMPTS=3    # the broadcast policy's attempts
FM_AFTER=60      # the mid-run faults start after this many sends

# fm_run PROVIDER CONTROL: a broadcast of FM_N recipients for a business of
# PROVIDER, the provider's faults set to CONTROL (POST /_control), then
# wa-broadcast run --parallel FM_PARALLEL. Sets BID, BIZ, FM_PROV, RUN_RC,
# RUN_OUT, RUN_ERR.
fm_run() {
	FM_PROV=$1
	PROVIDER_KIND=$1 bc_new "$FM_N"
	provider_control "$2"
	wb run --parallel "$FM_PARALLEL" "$BID"
	RUN_RC=$status RUN_OUT=$output RUN_ERR=$stderr
}

# fm_count SQL-CONDITION: recipients of BID that match it.
fm_count() {
	psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND ($1)"
}

# fm_log JQ-FILTER: apply a jq filter (given the send requests, slurped)
# to the provider's log.
fm_log() {
	provider_sends | jq -s -r "$1"
}

# fm_faulted FAULT...: recipients that got one of these faults at least once.
fm_faulted() {
	local f
	f=$(printf '"%s",' "$@")
	fm_log "[.[] | select(.fault | IN(${f%,})) | .to_digits] | unique | length"
}

# fm_violations [queued-ok]: every broken guarantee, one line each (none
# when all hold). The recipients' rows are joined with the provider's log
# by number. With queued-ok, a queued row is a review state (the broadcast
# was paused by a fatal outcome).
fm_violations() {
	local q=${1:+true}
	psql_q "SELECT json_build_object('d', substr(phone, 2), 'st', status,
		'cls', error_class, 'code', error_code, 'att', attempts,
		'mid', message_id, 'claimed', claimed_by IS NOT NULL OR sending_since IS NOT NULL)
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID" >"$BATS_TEST_TMPDIR/rows.jsonl"
	provider_sends >"$BATS_TEST_TMPDIR/sends.jsonl"
	jq -n -r --argjson max "$FM_ATTEMPTS" --argjson qok "${q:-false}" \
		--slurpfile rows "$BATS_TEST_TMPDIR/rows.jsonl" \
		--slurpfile sends "$BATS_TEST_TMPDIR/sends.jsonl" '
		($sends | group_by(.to_digits) | map({key: .[0].to_digits, value: {
			n: length,
			del: (map(select(.delivered)) | length),
			mids: [.[] | select(.status == 200 and .message_id != null) | .message_id]}})
		 | from_entries) as $p
		| ($rows | map({key: .d, value: true}) | from_entries) as $known
		| ($p | keys[] | select($known[.] | not) | "\(.): sent to, but not a recipient"),
		  ($rows[] | . as $r | ($p[$r.d] // {n: 0, del: 0, mids: []}) as $x
		  | (if ($r.st | IN("sent", "failed", "cancelled")) or ($qok and $r.st == "queued")
		     then empty else "\($r.d): left \($r.st)" end),
		    (if $r.claimed then "\($r.d): still claimed" else empty end),
		    (if $r.att != $x.n then "\($r.d): \($r.att) attempts recorded, \($x.n) sends at the provider" else empty end),
		    (if $x.n > $max then "\($r.d): \($x.n) sends, the policy allows \($max)" else empty end),
		    (if $x.del > 1 then "\($r.d): delivered \($x.del) times" else empty end),
		    (if $r.st == "sent" and $x.mids != [$r.mid]
		     then "\($r.d): recorded sent as \($r.mid), the provider answered \($x.mids)" else empty end),
		    (if $x.del > 0 and $r.st != "sent" and ($r.st != "failed" or $r.cls != "ambiguous")
		     then "\($r.d): may have been delivered, recorded \($r.st) \($r.cls) \($r.code)" else empty end),
		    (if $r.st == "failed" and ($r.cls == null or $r.code == null)
		     then "\($r.d): failed without a class or code" else empty end))'
}

# fm_check LABEL [queued-ok]: the guarantees every cell of the matrix must
# keep; adds the row to the matrix first, so a failing cell shows there.
# Sets S F R Q (sent, failed not for review, for review, queued).
fm_check() {
	local label=$1 qok=${2:-} v st rec maxs dups maxd faults
	read -r Q P S F C R st <<<"$(psql_q "SELECT
		count(*) FILTER (WHERE status = 'queued') || ' ' ||
		count(*) FILTER (WHERE status = 'processing') || ' ' ||
		count(*) FILTER (WHERE status = 'sent') || ' ' ||
		count(*) FILTER (WHERE status = 'failed') || ' ' ||
		count(*) FILTER (WHERE status = 'cancelled') || ' ' ||
		count(*) FILTER (WHERE status = 'failed' AND error_class = 'ambiguous') || ' ' ||
		(SELECT status FROM whatsapp_broadcasts WHERE id = $BID)
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID")"
	F=$((F - R))
	read -r maxs dups maxd faults <<<"$(provider_stats |
		jq -r '"\(.max_attempts_per_recipient) \(.duplicates) \(.max_per_recipient) \(.faults)"')"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$BATS_TEST_NUMBER" "$FM_PROV" "$label" "$FM_N" "$S" "$F" "$R" "$Q" "$st" \
		"$maxs" "$dups" "$faults/$RUN_RC" >>"$BATS_FILE_TMPDIR/matrix"
	v=$(fm_violations "$qok")
	[ -z "$v" ] || fail "$(printf '%s\n' "$v" | head -20)"
	assert_equal "$((S + F + R + Q + C)) $P" "$FM_N 0"
	[ "$maxs" -le "$FM_ATTEMPTS" ] || fail "$maxs sends to one recipient"
	assert_equal "duplicates $dups max_per_recipient $maxd" "duplicates 0 max_per_recipient 1"
	bc_consistent "$BID"
	# The run's status record and summary line say what the rows say.
	rec=$(jq -r '[.status, .sent, .failed, .ambiguous, .queued] | map(tostring) | join(" ")' <<<"$RUN_OUT")
	assert_equal "$rec" "$st $S $((F + R)) $R $Q"
	[[ "$RUN_ERR" == *"[WA_BROADCAST] broadcast_id=$BID total=$FM_N sent=$S failed=$((F + R)) status=$st"* ]] ||
		fail "summary line: $RUN_ERR"
	# Nothing to retry: completed, exit 0; something a retry could mend:
	# partial, exit 1 (a paused broadcast is checked by its test).
	if [ -z "$qok" ]; then
		if [ $((F + R)) -eq 0 ]; then
			assert_equal "$st $RUN_RC" "completed 0"
		else
			assert_equal "$st $RUN_RC" "partial 1"
		fi
	fi
}

# fm_pass: the cell's test got to its end.
fm_pass() {
	echo "$BATS_TEST_NUMBER" >>"$BATS_FILE_TMPDIR/passed"
}

# fm_min_gap: the shortest time, in ms, between two sends to one recipient
# (none: 999999).
fm_min_gap() {
	fm_log 'group_by(.to_digits) | map(sort_by(.attempt) | [.[1:], .[:-1]] | transpose
		| map(.[0].t - .[1].t)) | add | min // 999999'
}

# --- a share of 500s ----------------------------------------------------------

@test "baileys, a share of 500s: each one ambiguous, for review, never resent" {
	# Both of Baileys' 500s: send_failed (the service's own timeout, may
	# have been delivered) and a bare internal error.
	fm_run baileys '{"rates":{"baileys_500":0.1,"http_500":0.1}}'
	fm_check "500s 20% (send_failed, internal)"
	hit=$(fm_faulted baileys_500 http_500)
	[ "$hit" -gt 10 ] || fail "only $hit recipients got a 500"
	assert_equal "review $R failed $F sent $S" "review $hit failed 0 sent $((FM_N - hit))"
	assert_equal "$(fm_count "status = 'failed' AND attempts = 1 AND error_code IN ('send_failed', 'server_error')")" "$hit"
	fm_pass
}

@test "meta, a share of 500s: retried under the policy, at most 3 sends" {
	# Meta's 5xx is "not accepted, retry later" (providers.md §2).
	fm_run meta '{"rates":{"http_500":0.25}}'
	fm_check "500s 25%"
	retried=$(fm_log '[group_by(.to_digits)[] | select(length > 1)] | length')
	[ "$retried" -gt 10 ] || fail "only $retried recipients were retried"
	# Failed exactly those whose every attempt got a 500, after 3 sends.
	gaveup=$(fm_log "[group_by(.to_digits)[] | select(length == $FM_ATTEMPTS and all(.fault == \"http_500\"))] | length")
	assert_equal "review $R failed $F" "review 0 failed $gaveup"
	assert_equal "$(fm_count "status = 'failed' AND (attempts <> 3 OR error_class <> 'retryable' OR error_code <> 'temporary_error')")" 0
	assert_equal "$S" "$((FM_N - gaveup))"
	fm_pass
}

# --- timeouts after the request was read ------------------------------------

# fm_ambiguous PROVIDER FAULT LABEL CODE: a 10% share of FAULT, each one
# an outcome that may have gone out: left for review after one send.
fm_ambiguous() {
	fm_run "$1" "{\"rates\":{\"$2\":0.1}}"
	fm_check "$3"
	hit=$(fm_faulted "$2")
	[ "$hit" -gt 5 ] || fail "only $hit $2 faults"
	assert_equal "review $R failed $F sent $S" "review $hit failed 0 sent $((FM_N - hit))"
	assert_equal "$(fm_count "status = 'failed' AND attempts = 1 AND error_code = '$4'")" "$hit"
}

fm_timeout() {
	export WA_TIMEOUT=1
	fm_ambiguous "$1" timeout "timeout 10% (WA_TIMEOUT=1)" timeout
}

@test "baileys, timeouts after the request was read: ambiguous, for review, never resent" {
	fm_timeout baileys
	fm_pass
}

@test "meta, timeouts after the request was read: ambiguous, for review, never resent" {
	fm_timeout meta
	fm_pass
}

# --- dropped connections ------------------------------------------------------

fm_drop() {
	fm_ambiguous "$1" drop "connection dropped 10%" connection_lost
}

@test "baileys, dropped connections: ambiguous, for review, never resent" {
	fm_drop baileys
	fm_pass
}

@test "meta, dropped connections: ambiguous, for review, never resent" {
	fm_drop meta
	fm_pass
}

# --- 429 with Retry-After ------------------------------------------------------

fm_429() {
	fm_run "$1" '{"retry_after":1,"rates":{"http_429":0.3}}'
	fm_check "429 30%, Retry-After 1"
	retried=$(fm_log '[group_by(.to_digits)[] | select(length > 1)] | length')
	[ "$retried" -gt 20 ] || fail "only $retried recipients were retried"
	gaveup=$(fm_log "[group_by(.to_digits)[] | select(length == $FM_ATTEMPTS and all(.fault == \"http_429\"))] | length")
	assert_equal "review $R failed $F sent $S" "review 0 failed $gaveup sent $((FM_N - gaveup))"
	assert_equal "$(fm_count "status = 'failed' AND (attempts <> 3 OR error_class <> 'retryable' OR error_code <> '$2')")" 0
	# Retry-After honoured: no retry within a second of the last try (the
	# policy's own first wait alone may be as short as 0.8 s).
	gap=$(fm_min_gap)
	[ "$gap" -ge 995 ] || fail "a retry came $gap ms after a 429 with Retry-After 1"
}

@test "baileys, 429 with Retry-After: retried after it, at most 3 sends" {
	fm_429 baileys rate_limited
	fm_pass
}

@test "meta, 429 with Retry-After: retried after it, at most 3 sends" {
	fm_429 meta throughput_limit
	fm_pass
}

# --- a fatal outcome mid-run ---------------------------------------------------

# fm_fatal PROVIDER FAULT LABEL CODE: every send after the first FM_AFTER
# gets FAULT (fatal). The run pauses the broadcast with the reason and
# exits 69; exactly the first FM_AFTER are sent, nobody is failed, the rest
# are queued for resume. Then the fault clears, resume, run: everyone sent,
# nobody twice (a second row of the matrix).
fm_fatal() {
	fm_run "$1" "{\"after\":$FM_AFTER,\"after_fault\":\"$2\"}"
	fm_check "$3 after $FM_AFTER sends" queued-ok
	assert_equal "$RUN_RC $(bc_col "$BID" status)" "69 paused"
	[[ "$(bc_col "$BID" pause_reason)" == "$4:"* ]] || fail "pause reason: $(bc_col "$BID" pause_reason)"
	[[ "$RUN_ERR" == *"status=paused reason=$4:"* ]] || fail "summary line: $RUN_ERR"
	assert_equal "sent $S failed $F review $R queued $Q" \
		"sent $FM_AFTER failed 0 review 0 queued $((FM_N - FM_AFTER))"
	assert_equal "$(provider_stats delivered)" "$FM_AFTER"
	hit=$(fm_faulted "$2")
	[ "$hit" -ge 1 ] && [ "$hit" -le "$FM_PARALLEL" ] || fail "$hit sends got $2, --parallel is $FM_PARALLEL"
	# The ones that met the fault keep their spent attempt.
	assert_equal "$(fm_count "status = 'queued' AND attempts = 1")" "$hit"
	# Resume once the provider is back: everyone sent, nobody twice.
	provider_control '{}'
	wb resume "$BID"
	assert_success
	wb run --parallel "$FM_PARALLEL" "$BID"
	RUN_RC=$status RUN_OUT=$output RUN_ERR=$stderr
	fm_check "  then resumed, the fault gone"
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "0 0 $FM_N 0 0 completed"
	assert_equal "$(provider_stats delivered) $(provider_stats max_attempts_per_recipient)" "$FM_N 2"
}

@test "baileys, 503 not connected mid-run: paused with the reason, the rest queued; resume finishes, nobody twice" {
	fm_fatal baileys not_connected "503 not connected" not_connected
	fm_pass
}

@test "baileys, secret rejected (401) mid-run: paused with the reason, the rest queued; resume finishes" {
	fm_fatal baileys token_rejected "401 secret rejected" unauthorized
	fm_pass
}

@test "meta, token rejected mid-run: paused with the reason, the rest queued; resume finishes, nobody twice" {
	fm_fatal meta token_rejected "401 token rejected (190)" token_rejected
	fm_pass
}

# --- very slow answers -----------------------------------------------------------

fm_slow() {
	export WA_TIMEOUT=2
	# 0.5 s answers (well within the timeout) and a few 3.5 s ones (past it).
	fm_run "$1" '{"rates":{"slow:500":0.4,"slow:3500":0.05}}'
	fm_check "slow: 0.5 s 40%, 3.5 s 5% (WA_TIMEOUT=2)"
	slow=$(fm_faulted slow:500)
	over=$(fm_faulted slow:3500)
	[ "$slow" -gt 40 ] && [ "$over" -gt 2 ] || fail "$slow slow answers, $over past the timeout"
	# Slow but in time: sent; past the timeout: no answer, for review.
	assert_equal "review $R failed $F sent $S" "review $over failed 0 sent $((FM_N - over))"
	assert_equal "$(fm_count "status = 'failed' AND attempts = 1 AND error_code = 'timeout'")" "$over"
	# One send each: a slow answer is no reason to send again.
	assert_equal "$(provider_stats sends)" "$FM_N"
}

@test "baileys, very slow answers: in time sent, past the timeout ambiguous" {
	fm_slow baileys
	fm_pass
}

@test "meta, very slow answers: in time sent, past the timeout ambiguous" {
	fm_slow meta
	fm_pass
}

# --- the matrix --------------------------------------------------------------------

@test "the fault matrix: every cell there and kept its guarantees" {
	local m=$BATS_FILE_TMPDIR/matrix
	[ -s "$m" ] || fail "no rows: run the whole file"
	{
		echo
		printf '%-8s %-44s %5s %5s %6s %6s %6s %-9s %9s %5s %-12s %s\n' \
			provider fault recips sent failed review queued status 'sends/rcp' dups 'faults/exit' check
		sort -s -n -k1,1 "$m" | while IFS=$'\t' read -r n prov label total sent failed review queued st max dups fx; do
			if grep -qx "$n" "$BATS_FILE_TMPDIR/passed" 2>/dev/null; then ok=ok; else ok=FAILED; fi
			printf '%-8s %-44s %5s %5s %6s %6s %6s %-9s %9s %5s %-12s %s\n' \
				"$prov" "$label" "$total" "$sent" "$failed" "$review" "$queued" "$st" "$max" "$dups" "$fx" "$ok"
		done
		echo "(failed: not for review; review: failed, error_class ambiguous; queued: left for resume" \
			"in a broadcast paused by a fatal outcome; sends/rcp: most HTTP sends to one recipient," \
			"policy 3; dups: recipients delivered to twice; faults: injected by the provider)"
	} >&3
	# Rows from every test above, each of which passed.
	assert_equal "$(cut -f1 "$m" | sort -un | wc -l)" $((BATS_TEST_NUMBER - 1))
	assert_equal "$(sort -un "$BATS_FILE_TMPDIR/passed" 2>/dev/null | wc -l)" $((BATS_TEST_NUMBER - 1))
	assert_equal "$(cut -f2 "$m" | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')" "baileys=9 meta=7"
}
