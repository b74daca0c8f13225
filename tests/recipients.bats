#!/usr/bin/env bats
# wa-broadcast recipients: who of a broadcast was sent, who failed and why,
# a record (or a CSV row) per recipient as its row holds it; filters by
# status and error class; memory flat on a long list. And status's most
# frequent errors.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

# The rows of broadcast $1 (with SQL condition $2) as recipients should
# show them: one JSON object a line, keys sorted, in id order.
rc_rows() {
	psql_q "SELECT json_build_object('recipient_id', id, 'phone', phone,
		'jid', jid, 'lead_id', lead_id, 'status', status,
		'class', error_class, 'code', error_code, 'reason', error_message,
		'attempts', attempts, 'message_id', message_id,
		'created_at', to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'),
		'sent_at', to_char(sent_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'),
		'delivered_at', to_char(delivered_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'),
		'updated_at', to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'),
		'fields', fields)
		FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $1 AND (${2:-true}) ORDER BY id" | jq -c -S .
}

# A broadcast of five: 0 sent with fields that need quoting (a comma, a
# quote, a newline, Hebrew), 1 ambiguous (Baileys' 500), 2 permanent (a
# 400), 3 sent, and a number that is none (failed at create). Sets BID.
rc_run() {
	BIZ=$(bc_business)
	cat >"$BATS_TEST_TMPDIR/in.jsonl" <<-'EOF'
	{"to":"+972500000000","name":"דנה כהן","note":"Levi, Ron said \"hi\"\nthen left","lead_id":7}
	{"to":"+972500000001","name":"Ron"}
	{"to":"+972500000002","name":"Dana"}
	{"to":"+972500000003","name":"a,b"}
	{"to":"12","name":"nobody"}
	EOF
	BID=$(bc_create --business "$BIZ" --text 'Hi {{name}}' "$BATS_TEST_TMPDIR/in.jsonl")
	provider_control '{"rules":[{"to":"972500000001","fault":"baileys_500"},{"to":"972500000002","fault":"http_400"}]}'
	wb run "$BID"
	assert_equal "$status" 1
	assert_equal "$(bc_state "$BID")" "0 0 2 3 0"
}

@test "recipients: a record per recipient, as its row holds it (jsonl, the default)" {
	rc_run
	wb recipients "$BID"
	assert_success
	assert_equal "$(jq -c -S . <<<"$output")" "$(rc_rows "$BID")"
	# What an operator reads off it: who, why, and the fields as stored.
	assert_equal "$(jq -r 'select(.status == "failed") | [.phone, .class, .code] | join(" ")' <<<"$output")" \
		"+972500000001 ambiguous send_failed
+972500000002 permanent bad_request
12 permanent invalid_phone"
	assert_equal "$(jq -r 'select(.lead_id == 7) | .fields.name + "|" + .fields.note' <<<"$output")" \
		"דנה כהן|Levi, Ron said \"hi\"
then left"
	assert_equal "$(jq -r 'select(.status == "sent") | (.message_id != null and .sent_at != null and .attempts == 1)' <<<"$output" | sort -u)" true
	# Explicitly jsonl: the same.
	wb recipients --format jsonl "$BID"
	assert_equal "$(jq -c -S . <<<"$output")" "$(rc_rows "$BID")"
}

@test "recipients: --status and --class keep only those, together or apart" {
	rc_run
	wb recipients --status failed "$BID"
	assert_success
	assert_equal "$(jq -c -S . <<<"$output")" "$(rc_rows "$BID" "status = 'failed'")"
	assert_equal "$(wc -l <<<"$output")" 3
	wb recipients --status sent "$BID"
	assert_equal "$(jq -r .phone <<<"$output")" "+972500000000
+972500000003"
	wb recipients --class ambiguous "$BID"
	assert_success
	assert_equal "$(jq -c -S . <<<"$output")" "$(rc_rows "$BID" "error_class = 'ambiguous'")"
	assert_equal "$(jq -r .phone <<<"$output")" "+972500000001"
	wb recipients --class permanent --status failed "$BID"
	assert_equal "$(jq -r .phone <<<"$output")" "+972500000002
12"
	# None of them: no line, success.
	wb recipients --status queued "$BID"
	assert_success
	assert_output ""
	wb recipients --class fatal "$BID"
	assert_success
	assert_output ""
	# A row the old system marked delivered counts as sent.
	psql_q "UPDATE whatsapp_broadcast_recipients SET status = 'delivered', delivered_at = now()
		WHERE broadcast_id = $BID AND phone = '+972500000003'" >/dev/null
	wb recipients --status sent "$BID"
	assert_equal "$(jq -r '.phone + " " + .status + " " + (.delivered_at != null | tostring)' <<<"$output")" \
		"+972500000000 sent false
+972500000003 delivered true"
	# Queued and processing ones too.
	bc_new 3
	psql_q "UPDATE whatsapp_broadcast_recipients SET status = 'processing'
		WHERE broadcast_id = $BID AND phone = '+972500000001'" >/dev/null
	wb recipients --status queued "$BID"
	assert_equal "$(jq -r .phone <<<"$output")" "+972500000000
+972500000002"
	wb recipients --status processing "$BID"
	assert_equal "$(jq -c -S . <<<"$output")" "$(rc_rows "$BID" "status = 'processing'")"
}

@test "recipients --format csv: RFC 4180 with a header, read back equal to the rows" {
	rc_run
	# A reason holding a comma, a quote, a newline and Hebrew, as a
	# provider may answer.
	psql_q "UPDATE whatsapp_broadcast_recipients SET error_message = E'לא נשלח, \"busy\"\nagain'
		WHERE broadcast_id = $BID AND phone = '+972500000002'" >/dev/null
	wb recipients --format csv "$BID"
	assert_success
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/out.csv"
	rc_rows "$BID" >"$BATS_TEST_TMPDIR/rows.jsonl"
	# Such cells quoted, their quotes doubled; fields as their JSON text.
	[[ "$output" == *',"לא נשלח, ""busy""'$'\n''again",'* ]] || fail "$output"
	[[ "$output" == *',"{""name"":""דנה כהן"",""note"":""Levi, Ron said \""hi\""\nthen left""}"'$'\r'* ]] || fail "$output"
	python3 - "$BATS_TEST_TMPDIR/out.csv" "$BATS_TEST_TMPDIR/rows.jsonl" <<-'EOF'
	import csv, json, sys
	with open(sys.argv[1], newline='', encoding='utf-8') as f:
	    got = list(csv.reader(f))
	want = [json.loads(l) for l in open(sys.argv[2], encoding='utf-8')]
	cols = ["recipient_id", "phone", "jid", "lead_id", "status", "class", "code",
	        "reason", "attempts", "message_id", "created_at", "sent_at",
	        "delivered_at", "updated_at", "fields"]
	assert got[0] == cols, got[0]
	assert len(got) == len(want) + 1, (len(got), len(want))
	for row, w in zip(got[1:], want):
	    for c, cell in zip(cols, row):
	        v = w[c]
	        if c == "fields":
	            assert (json.loads(cell) if cell else None) == v, (c, cell, v)
	        else:
	            assert cell == ("" if v is None else str(v)), (c, cell, v)
	fields = [json.loads(r[14]) for r in got[1:] if r[14]]
	assert {"name": "דנה כהן", "note": "Levi, Ron said \"hi\"\nthen left"} in fields, fields
	assert 'לא נשלח, "busy"\nagain' in [r[7] for r in got], got
	EOF
	# Rows end in CRLF; a newline inside a quoted cell stays as it was.
	assert_equal "$(grep -c $'\r$' "$BATS_TEST_TMPDIR/out.csv") $(wc -l <"$BATS_TEST_TMPDIR/out.csv")" "6 7"
	# The ambiguous ones, to call: a header and one row.
	wb recipients "$BID" --class ambiguous --format csv
	assert_equal "$(wc -l <<<"$output")" 2
	assert_equal "$(sed -n 2p <<<"$output" | cut -d, -f2,5,6)" "+972500000001,failed,ambiguous"
	# Nobody to list: the header alone.
	wb recipients "$BID" --class fatal --format csv
	assert_success
	assert_output "recipient_id,phone,jid,lead_id,status,class,code,reason,attempts,message_id,created_at,sent_at,delivered_at,updated_at,fields"$'\r'
}

@test "recipients: an unknown ID is 65; a bad --status, --class or --format is a usage error naming it" {
	bc_new 1
	wb recipients 999999
	assert_equal "$status" 65
	assert_output ""
	[[ "$stderr" == *"broadcast 999999: no such broadcast"* ]] || fail "$stderr"
	wb recipients --format csv 999999
	assert_equal "$status" 65
	assert_output ""
	wb recipients --status done "$BID"
	assert_equal "$status" 64
	[[ "$stderr" == *"--status: not one of sent, failed, cancelled, queued, processing: 'done'"* ]] || fail "$stderr"
	wb recipients --class nope "$BID"
	assert_equal "$status" 64
	[[ "$stderr" == *"--class: not one of ambiguous, retryable, permanent, fatal: 'nope'"* ]] || fail "$stderr"
	wb recipients --format xml "$BID"
	assert_equal "$status" 64
	[[ "$stderr" == *"--format"* ]] || fail "$stderr"
	# Checked before the database is asked: no database, still 64.
	DATABASE_URL=postgresql:///nowhere?host=/nonexistent wb recipients --status done "$BID"
	assert_equal "$status" 64
	wb recipients
	assert_equal "$status" 64
	wb recipients x
	assert_equal "$status" 64
	# Options of recipients only.
	wb status --class ambiguous "$BID"
	assert_equal "$status" 64
}

@test "recipients on a terminal: a table; with --format, the records" {
	rc_run
	run script -qec "wa-broadcast recipients $BID" /dev/null
	assert_success
	assert_line --regexp '^recipient_id +phone +status +class +code +attempts +sent_at +reason'
	assert_line --regexp "^ *[0-9]+ +\+972500000001 +failed +ambiguous +send_failed +1 "
	run script -qec "wa-broadcast recipients --format jsonl $BID" /dev/null
	assert_success
	assert_equal "$(tr -d '\r' <<<"$output" | jq -s length)" 5
}

@test "status: the five most frequent errors, in the record and under the table on a terminal" {
	bc_new 21
	# Six codes, 6 to 1 rows each: the sixth is left out.
	psql_q "UPDATE whatsapp_broadcast_recipients r SET status = 'failed',
		error_code = c.code, error_class = c.class
		FROM (SELECT id, CASE WHEN n < 6 THEN 'timeout' WHEN n < 11 THEN 'undeliverable'
			WHEN n < 15 THEN 'bad_request' WHEN n < 18 THEN 'rate_limited'
			WHEN n < 20 THEN 'invalid_phone' ELSE 'zzz' END AS code,
			CASE WHEN n < 6 THEN 'ambiguous' WHEN n < 15 THEN 'permanent'
			WHEN n < 18 THEN 'retryable' ELSE 'permanent' END AS class
			FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n
				FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID) s) c
		WHERE r.id = c.id" >/dev/null
	wb status "$BID"
	assert_success
	assert_equal "$(jq -c .errors <<<"$output")" \
		'[{"code":"timeout","class":"ambiguous","count":6},{"code":"undeliverable","class":"permanent","count":5},{"code":"bad_request","class":"permanent","count":4},{"code":"rate_limited","class":"retryable","count":3},{"code":"invalid_phone","class":"permanent","count":2}]'
	run script -qec "wa-broadcast status $BID" /dev/null
	assert_success
	assert_line --regexp '^id +business +sender +status'
	assert_line --partial "broadcast $BID, most frequent errors:"
	assert_line --regexp '^code +class +count'
	assert_line --regexp '^timeout +ambiguous +6'
	assert_line --regexp '^invalid_phone +permanent +2'
	refute_line --partial zzz
	# None failed: an empty list, and no errors under the table.
	bc_new 2
	wb status "$BID"
	assert_equal "$(jq -c .errors <<<"$output")" '[]'
	run script -qec "wa-broadcast status $BID" /dev/null
	refute_line --partial "most frequent errors"
}

@test "recipients: 200,000 listed with memory flat, in jsonl and csv" {
	# Under AddressSanitizer memory is its shadow's and quarantine's: the
	# bound is the release build's; the sanitizers see fewer rows go by.
	n=200000 asan=
	if ldd "$(command -v wa-broadcast)" | grep -q libasan; then
		n=20000 asan=1
	fi
	bc_new 1
	psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone, jid, status, error_code, error_class, error_message, attempts, fields)
		SELECT $BID, $BIZ, '+9725' || lpad(g::text, 8, '0'), '9725' || lpad(g::text, 8, '0') || '@s.whatsapp.net',
			CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'sent' END,
			CASE WHEN g % 10 = 0 THEN 'timeout' END, CASE WHEN g % 10 = 0 THEN 'ambiguous' END,
			CASE WHEN g % 10 = 0 THEN 'no answer, may have been sent' END, 1,
			jsonb_build_object('name', 'לקוח ' || g, 'order', g)
		FROM generate_series(1, $n) g" >/dev/null
	for f in jsonl csv; do
		/usr/bin/time -o "$BATS_TEST_TMPDIR/rss" -f %M wa-broadcast recipients --format $f "$BID" >"$BATS_TEST_TMPDIR/out.$f"
		kb=$(tail -1 "$BATS_TEST_TMPDIR/rss")
		[ -n "$asan" ] || [ "$kb" -lt 30000 ] || fail "$f: peak RSS $kb KiB for $((n + 1)) recipients"
	done
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/out.jsonl")" $((n + 1))
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/out.csv")" $((n + 2))
	assert_equal "$(tail -1 "$BATS_TEST_TMPDIR/out.jsonl" | jq -r '.fields.name + " " + .code')" "לקוח $n timeout"
	wb recipients --class ambiguous "$BID"
	assert_success
	assert_equal "$(wc -l <<<"$output")" $((n / 10))
}
