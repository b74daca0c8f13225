#!/usr/bin/env bats
# Opt-outs: the numbers a business must not message (wa-broadcast optout),
# honoured by create, again by run and export when they claim a recipient
# (someone may opt out mid-broadcast), and by wa-send with a business.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
# A worker a test left running when it failed (its pid in KEEP_PID).
teardown() {
	local p
	for p in ${KEEP_PID:-}; do
		kill -9 "$p" 2>/dev/null || true
	done
	canary_check
}

# The opt-outs of business $1, "number source note" a line, by number.
optouts() {
	psql_q "SELECT number || ' ' || source || ' ' || coalesce(note, '-')
		FROM wa_optouts WHERE business_id = $1 ORDER BY number"
}

# "status error_code" of the recipient $2 of broadcast $1.
recipient() {
	psql_q "SELECT status || ' ' || coalesce(error_code, '-')
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1 AND phone = '$2'"
}

@test "optout add: national numbers normalized as create does, a second add keeps one row and says so" {
	biz=$(bc_business)
	wb optout add --business "$biz" --region IL 050-123-4567 +972521234567
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -c . <<<"${lines[0]}")" "{\"business_id\":$biz,\"number\":\"+972501234567\",\"optout\":\"added\"}"
	assert_equal "$(jq -r .optout <<<"${lines[1]}")" added
	wb optout add --business "$biz" --region IL --note "asked by phone" 0501234567
	assert_success
	assert_equal "$(jq -r '.number + " " + .optout' <<<"$output")" "+972501234567 existing"
	assert_equal "$(optouts "$biz")" "+972501234567 operator -
+972521234567 operator -"
	# WA_DEFAULT_REGION stands for --region, as for create.
	WA_DEFAULT_REGION=IL wb optout add --business "$biz" --source crm 053-000-0001
	assert_success
	assert_equal "$(psql_q "SELECT source FROM wa_optouts WHERE number = '+972530000001'")" crm
	# Another business's list is its own.
	other=$(bc_business)
	wb optout list --business "$other"
	assert_success
	assert_output ""
}

@test "optout add: a bad number is one error line with its position, the rest are added, exit 1" {
	biz=$(bc_business)
	wb optout add --business "$biz" +972501234567 not-a-number +972521234567
	assert_equal "$status" 1
	assert_equal "$(jq -r .number <<<"$output")" "+972501234567
+972521234567"
	[[ "$stderr" == *"argument 2: invalid_phone: 'not-a-number'"* ]] || fail "$stderr"
	assert_equal "$(grep -c error <<<"$stderr")" 1
	assert_equal "$(psql_q "SELECT count(*) FROM wa_optouts WHERE business_id = $biz")" 2
	# No such business, and usage.
	wb optout add --business 999999 +972501234567
	assert_equal "$status" 65
	[[ "$stderr" == *"business 999999: no such business"* ]] || fail "$stderr"
	wb optout add +972501234567
	assert_equal "$status" 64
	wb optout frob --business "$biz"
	assert_equal "$status" 64
	wb optout add --business "$biz"
	assert_equal "$status" 64
	wb optout remove --business "$biz" --note x +972501234567
	assert_equal "$status" 64
}

@test "optout remove: the number goes; an absent one is no error; list is JSON lines" {
	biz=$(bc_business)
	wb optout add --business "$biz" --note "STOP by SMS" +972501234567 +972521234567
	assert_success
	wb optout list --business "$biz"
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$(jq -c '[.business_id, .number, .source, .note]' <<<"${lines[0]}")" "[$biz,\"+972501234567\",\"operator\",\"STOP by SMS\"]"
	jq -e '.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' <<<"${lines[0]}"
	wb optout remove --business "$biz" --region IL 0501234567 +972541111111
	assert_success
	assert_equal "$(jq -r '.number + " " + .optout' <<<"$output")" "+972501234567 removed
+972541111111 absent"
	assert_equal "$(optouts "$biz")" "+972521234567 operator STOP by SMS"
}

@test "optout list on a terminal is a table" {
	command -v script >/dev/null || skip "no script(1)"
	biz=$(bc_business)
	wb optout add --business "$biz" --note "by mail" +972501234567
	run script -qec "wa-broadcast optout list --business $biz" /dev/null
	assert_success
	assert_output --partial "number"
	assert_output --partial "created_at"
	assert_output --regexp '\+972501234567 +[0-9-]+T[0-9:]+Z +operator +by mail'
	refute_output --partial '{'
}

@test "optout import: numbers a line, and a CSV with a header naming the column; bad lines said, the rest imported" {
	biz=$(bc_business)
	printf '%s\n' 0501234567 '+972 52-123-4567' '' 'garbage' 0501234567 >"$BATS_TEST_TMPDIR/list.txt"
	wb optout import --business "$biz" --region IL "$BATS_TEST_TMPDIR/list.txt"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.added, .existing, .invalid]' <<<"$output")" "[2,1,1]"
	[[ "$stderr" == *"list.txt:4: invalid_phone: 'garbage'"* ]] || fail "$stderr"
	assert_equal "$(optouts "$biz")" "+972501234567 import -
+972521234567 import -"
	# Excel's export: a BOM, CRLF, a Hebrew header naming the column, a
	# quoted name holding the delimiter.
	printf '\xef\xbb\xbfשם,טלפון,הערה\r\n"Levi, Ron",053-000-0001,x\r\nדנה כהן,054-000-0002,\r\n' >"$BATS_TEST_TMPDIR/c.csv"
	wb optout import --business "$biz" --region IL --source crm --note "from the CRM" "$BATS_TEST_TMPDIR/c.csv"
	assert_success
	assert_equal "$(jq -c '[.added, .existing, .invalid]' <<<"$output")" "[2,0,0]"
	assert_equal "$(optouts "$biz" | grep crm)" "+972530000001 crm from the CRM
+972540000002 crm from the CRM"
	# The same reader as create's: ';' told from the header, --field names
	# the column, standard input with --format csv.
	printf 'mobile;tel\n+972550000003;x\n+972550000004;y\n+972550000003;z\n' >"$BATS_TEST_TMPDIR/s.csv"
	wb optout import --business "$biz" --format csv --field mobile <"$BATS_TEST_TMPDIR/s.csv"
	assert_success
	assert_equal "$(jq -c '[.added, .existing, .invalid]' <<<"$output")" "[2,1,0]"
	# No header: refused whole as create refuses it, nothing imported.
	printf '+972550000005;Dana\n+972550000006;Ron\n' >"$BATS_TEST_TMPDIR/n.csv"
	wb optout import --business "$biz" "$BATS_TEST_TMPDIR/n.csv"
	assert_equal "$status" 65
	[[ "$stderr" == *"n.csv"*"holds data"*"add a header row"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT count(*) FROM wa_optouts WHERE business_id = $biz")" 6
}

@test "create: an opted-out recipient is stored cancelled, opted_out, counted apart and not invalid; run never sends it" {
	biz=$(bc_business)
	wb optout add --business "$biz" +972500000001 +972500000003
	assert_success
	# A national number and a duplicate of an opted-out one, beside an
	# invalid one: each counted where it belongs.
	printf '%s\n' +972500000000 0500000001 +972500000002 +972500000003 +972500000003 nope >"$BATS_TEST_TMPDIR/list"
	wb create --business "$biz" --region IL --text "Hello" "$BATS_TEST_TMPDIR/list"
	assert_equal "$status" 1
	assert_equal "$(jq -c 'del(.broadcast_id)' <<<"$output")" '{"total":5,"invalid":1,"duplicates":1,"opted_out":2}'
	bid=$(jq -r .broadcast_id <<<"$output")
	assert_equal "$(recipient "$bid" +972500000001)" "cancelled opted_out"
	assert_equal "$(recipient "$bid" +972500000003)" "cancelled opted_out"
	assert_equal "$(recipient "$bid" nope)" "failed invalid_phone"
	assert_equal "$(bc_state "$bid")" "2 0 0 1 2"
	bc_consistent "$bid"
	wb run "$bid"
	assert_equal "$(bc_state "$bid")" "0 0 2 1 2"
	bc_consistent "$bid"
	assert_equal "$(provider_count 972500000001) $(provider_count 972500000003)" "0 0"
	assert_equal "$(provider_count 972500000000) $(provider_count 972500000002)" "1 1"
	# Another business's opt-outs do not apply.
	other=$(bc_business)
	b2=$(printf '+972500000001\n' | bc_create --business "$other" --text hi)
	assert_equal "$(recipient "$b2" +972500000001)" "queued -"
}

@test "run: a number opted out mid-run is cancelled opted_out when claimed, never sent, counters consistent" {
	bc_new 20
	provider_control '{"latency_ms":150}'
	bc_bg run run -v --parallel 1 --batch 2 "$BID"
	KEEP_PID=$BG_PID
	bc_wait_sql "SELECT count(*) >= 2 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" t
	# The last two are still queued: far behind a batch of 2.
	assert_equal "$(recipient "$BID" +972500000019)" "queued -"
	wb optout add --business "$BIZ" +972500000018 +972500000019
	assert_success
	bc_bg_wait "$BG_PID" 30
	assert_equal "$BG_RC" 0
	assert_equal "$(recipient "$BID" +972500000018)" "cancelled opted_out"
	assert_equal "$(recipient "$BID" +972500000019)" "cancelled opted_out"
	assert_equal "$(bc_state "$BID")" "0 0 18 0 2"
	assert_equal "$(bc_col "$BID" "status || ' ' || cancelled_count")" "completed 2"
	bc_consistent "$BID"
	assert_equal "$(provider_count 972500000018) $(provider_count 972500000019)" "0 0"
	assert_equal "$(provider_stats delivered)" 18
	grep -q "to=972500000019 status=cancelled error=opted_out" "$BATS_TEST_TMPDIR/run.err"
}

@test "export: a number opted out mid-pipeline is cancelled opted_out when claimed; wa-send never gets it" {
	bc_new 12
	provider_control '{"latency_ms":150}'
	# wa-send without a database: what skips the number is export's
	# own check (wa-send's would fail it instead of cancelling it).
	bash -c 'wa-broadcast export --window 1 "$0" | env -u DATABASE_URL wa-send --context broadcast |
		wa-broadcast mark "$0"' "$BID" >"$BATS_TEST_TMPDIR/pipe.out" 2>"$BATS_TEST_TMPDIR/pipe.err" &
	KEEP_PID=$!
	bc_wait_sql "SELECT count(*) >= 2 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID AND status = 'sent'" t
	assert_equal "$(recipient "$BID" +972500000011)" "queued -"
	wb optout add --business "$BIZ" +972500000011
	assert_success
	bc_bg_wait "$KEEP_PID" 30
	assert_equal "$BG_RC" 0
	assert_equal "$(recipient "$BID" +972500000011)" "cancelled opted_out"
	assert_equal "$(bc_state "$BID")" "0 0 11 0 1"
	assert_equal "$(bc_col "$BID" status)" completed
	bc_consistent "$BID"
	assert_equal "$(provider_count 972500000011)" 0
	assert_equal "$(provider_stats delivered)" 11
}

@test "pipeline: a number opted out after export wrote it is refused by wa-send (the record's business) and marked cancelled opted_out" {
	bc_new 3
	wa-broadcast export --window 0 "$BID" >"$BATS_TEST_TMPDIR/recs"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/recs")" 3
	wb optout add --business "$BIZ" +972500000001
	assert_success
	run --separate-stderr bash -c 'wa-send --context broadcast <"$1" | wa-broadcast mark "$0"' \
		"$BID" "$BATS_TEST_TMPDIR/recs"
	assert_success
	assert_equal "$(recipient "$BID" +972500000001)" "cancelled opted_out"
	assert_equal "$(psql_q "SELECT coalesce(error_class, '-') FROM whatsapp_broadcast_recipients WHERE phone = '+972500000001'")" -
	assert_equal "$(bc_state "$BID")" "0 0 2 0 1"
	assert_equal "$(bc_col "$BID" status)" completed
	bc_consistent "$BID"
	assert_equal "$(provider_count 972500000001)" 0
}

@test "wa-send --business: an opted-out number fails opted_out (permanent) with no request; --ignore-optout sends" {
	biz=$(bc_business)
	wb optout add --business "$biz" +972501234567
	send_run --business "$biz" --to 0501234567 --region IL --text hi
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.status, .error.code, .error.class]' <<<"$output")" '["failed","opted_out","permanent"]'
	assert_equal "$(provider_count)" 0
	# A record's own business_id, a forced provider (no routing lookup),
	# records beside it that are not opted out: those go.
	printf '{"to":"+972501234567","business_id":%s}\n{"to":"+972521234567","business_id":%s}\n' "$biz" "$biz" >"$BATS_TEST_TMPDIR/recs"
	send_run --provider baileys --text hi "$BATS_TEST_TMPDIR/recs"
	assert_equal "$status" 1
	assert_equal "$(jq -r '.to + " " + .status + " " + (.error.code // "-")' <<<"$output")" "+972501234567 failed opted_out
+972521234567 sent -"
	assert_equal "$(provider_count 972501234567) $(provider_count 972521234567)" "0 1"
	send_run --business "$biz" --to +972501234567 --text hi --ignore-optout
	assert_success
	assert_equal "$(jq -r .status <<<"$output")" sent
	assert_equal "$(provider_count 972501234567)" 1
}

@test "wa-send without a database: no opt-out check, no error" {
	biz=$(bc_business)
	wb optout add --business "$biz" +972501234567
	DATABASE_URL= send_run --business "$biz" --to +972501234567 --text hi
	assert_success
	assert_equal "$(jq -r .status <<<"$output")" sent
	assert_equal "$(provider_count 972501234567)" 1
	# Nor with DATABASE_URL unset: nothing tries to connect.
	(unset DATABASE_URL; send_run --to +972521234567 --text hi --business 5; assert_success)
}
