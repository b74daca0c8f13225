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
	# No header: the first column, ';' as Excel writes in some locales;
	# standard input.
	printf '+972550000003;Dana\n+972550000004;Ron\n' |
		wb optout import --business "$biz"
	assert_success
	assert_equal "$(jq -c '[.added, .existing, .invalid]' <<<"$output")" "[2,0,0]"
	assert_equal "$(psql_q "SELECT count(*) FROM wa_optouts WHERE business_id = $biz")" 6
}
