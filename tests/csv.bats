#!/usr/bin/env bats
# CSV in: an Excel export read as records (common/record/csv.c) by
# wa-broadcast create, wa-normalize and wa-send, against a real PostgreSQL
# and the test provider.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

# A file in the test's folder: csv NAME PRINTF-FORMAT [ARG]...
csv() {
	local f=$BATS_TEST_TMPDIR/$1
	shift
	# shellcheck disable=SC2059
	printf "$@" >"$f"
	echo "$f"
}

recips() {
	psql_q "SELECT string_agg(phone || ' ' || status || ' ' || coalesce(fields::text, '-'), E'\n' ORDER BY id)
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = ${1:-1}"
}

@test "csv: Excel's four cases: Hebrew name with a dashed number, number first, quoted comma, ';'" {
	biz=$(bc_business)
	f=$(csv heb.csv 'name,phone\nדנה כהן,050-123-4567\n')
	wb create --business "$biz" --text 'hi {{name}}' --region IL "$f"
	assert_success
	assert_output '{"broadcast_id":1,"total":1,"invalid":0,"duplicates":0,"opted_out":0}'
	assert_equal "$(recips 1)" '+972501234567 queued {"name": "דנה כהן"}'

	f=$(csv first.csv 'phone,name\n0501234567,Dana\n')
	wb create --business "$biz" --text hi --region IL "$f"
	assert_success
	assert_equal "$(recips 2)" '+972501234567 queued {"name": "Dana"}'

	f=$(csv quoted.csv 'name,phone\n"Levi, Ron",+972521234567\n')
	wb create --business "$biz" --text hi --region IL "$f"
	assert_success
	assert_equal "$(recips 3)" '+972521234567 queued {"name": "Levi, Ron"}'

	# ';' in the header: two columns, the number from "phone" only.
	f=$(csv semi.csv 'phone;other\n0501234567;0521234567\n')
	wb create --business "$biz" --text hi --region IL "$f"
	assert_success
	assert_equal "$(recips 4)" '+972501234567 queued {"other": "0521234567"}'
	bc_consistent 4
}

@test "csv: {{name}} from a column reaches the provider" {
	biz=$(bc_business)
	f=$(csv list.csv 'name,phone\nדנה,0501234567\n"Levi, Ron",0521234567\n')
	BID=$(bc_create --business "$biz" --text 'שלום {{name}}' --region IL "$f")
	wb run "$BID"
	assert_success
	run jq -r 'select(.path == "/send") | .body.to + " " + .body.text' "$PROVIDER_LOG"
	assert_output --partial '972501234567@s.whatsapp.net שלום דנה'
	assert_output --partial '972521234567@s.whatsapp.net שלום Levi, Ron'
	assert_equal "$(bc_sent "$BID")" 2
}

@test "csv: a UTF-8 BOM and CRLF line ends; tab delimiter; Hebrew header טלפון" {
	biz=$(bc_business)
	f=$(csv bom.csv '\xef\xbb\xbfname,phone\r\nDana,0501234567\r\n\r\nRon,0521234567\r\n')
	wb create --business "$biz" --text hi --region IL "$f"
	assert_success
	# the BOM is not part of the first column's name, CR not of the last value
	assert_equal "$(recips 1)" '+972501234567 queued {"name": "Dana"}
+972521234567 queued {"name": "Ron"}'

	f=$(csv tab.csv 'name\tטלפון\tcity\nDana\t050-123-4567\tHaifa, north\n')
	wb create --business "$biz" --text hi --region IL "$f"
	assert_success
	# the number column is not stored as a field; the others are
	assert_equal "$(recips 2)" '+972501234567 queued {"city": "Haifa, north", "name": "Dana"}'
}

@test "csv: --field names the column; a --field not in the header refuses the file" {
	biz=$(bc_business)
	f=$(csv field.csv 'name,home,cell_no\nDana,0501234567,0521234567\n')
	wb create --business "$biz" --text hi --region IL --field cell_no "$f"
	assert_success
	assert_equal "$(recips 1)" '+972521234567 queued {"home": "0501234567", "name": "Dana"}'
	wb create --business "$biz" --text hi --region IL --field nope "$f"
	assert_equal "$status" 65
	assert_equal "$stderr" "wa-broadcast: error: $f: no column \"nope\" in the header row (name, home, cell_no)"
}

@test "csv: a short and a long row are invalid with their line; the rest are stored" {
	biz=$(bc_business)
	f=$(csv rows.csv 'name,phone\nA,0501234567\nB,0501234568,extra\n\nC\n"two\nlines",0501234569\nD,0501234570\n')
	wb create --business "$biz" --text hi --region IL "$f"
	assert_equal "$status" 1
	assert_output '{"broadcast_id":1,"total":5,"invalid":2,"duplicates":0,"opted_out":0}'
	run psql_q "SELECT phone || ' ' || error_code || ' ' || error_message FROM whatsapp_broadcast_recipients
		WHERE status = 'failed' ORDER BY id"
	assert_output "${f:0:20}:3 bad_row line 3: 3 cells, the header has 2
${f:0:20}:5 bad_row line 5: 1 cell, the header has 2"
	assert_equal "$(psql_q "SELECT string_agg(phone, ',' ORDER BY id) FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" \
		'+972501234567,+972501234569,+972501234570'
	# a cell over two lines keeps its line end
	assert_equal "$(psql_q "SELECT fields->>'name' FROM whatsapp_broadcast_recipients WHERE phone = '+972501234569'")" 'two
lines'
	bc_consistent 1
}

@test "csv: Excel's UTF-16 export is refused (exit 65), nothing stored" {
	biz=$(bc_business)
	f=$BATS_TEST_TMPDIR/unicode.csv
	printf 'name,phone\nDana,0501234567\n' | iconv -f UTF-8 -t UTF-16 >"$f"
	wb create --business "$biz" --text hi --region IL "$f"
	assert_equal "$status" 65
	assert_equal "$stderr" "wa-broadcast: error: $f: UTF-16 text, which is not read: save the file from Excel as \"CSV UTF-8\""
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 0
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients")" 0
	# without a byte order mark: the NUL bytes tell
	printf 'name,phone\n' | iconv -f UTF-8 -t UTF-16LE >"$f"
	wb create --business "$biz" --text hi "$f"
	assert_equal "$status" 65
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 0
}

@test "csv: a first row of data, not names, is refused with what to do" {
	biz=$(bc_business)
	f=$(csv headless.csv '0501234567,Dana\n')
	wb create --business "$biz" --text hi "$f"
	assert_equal "$status" 65
	assert_equal "$stderr" "wa-broadcast: error: $f: line 1 holds data ('0501234567'), not the names of the columns: add a header row such as name,phone"
}

@test "csv: --format csv reads standard input; --format jsonl reads a .csv file as lines" {
	biz=$(bc_business)
	wb create --business "$biz" --text hi --region IL --format csv < <(printf 'mobile,name\n0501234567,Dana\n')
	assert_success
	assert_equal "$(recips 1)" '+972501234567 queued {"name": "Dana"}'
	# without it, standard input is records: the header line is no number
	wb create --business "$biz" --text hi --region IL < <(printf 'mobile,name\n0501234567,Dana\n')
	assert_equal "$status" 1
	assert_output '{"broadcast_id":2,"total":2,"invalid":2,"duplicates":0,"opted_out":0}'
	f=$(csv lines.csv '+972501234567\n{"to":"0521234567","name":"Ron"}\n')
	wb create --business "$biz" --text hi --region IL --format jsonl "$f"
	assert_success
	assert_equal "$(recips 3)" '+972501234567 queued -
+972521234567 queued {"name": "Ron"}'
	wb create --business "$biz" --text hi --format xml "$f"
	assert_equal "$status" 64
	assert_equal "$stderr" "wa-broadcast: error: --format: 'xml' is not jsonl or csv; try 'wa-broadcast create --help'"
}

@test "csv: wa-normalize writes each row as a record, the number from its column" {
	f=$(csv n.csv 'name;נייד\nדנה כהן;050-123-4567\nRon\n')
	run --separate-stderr wa-normalize --region IL "$f"
	assert_equal "$status" 1
	assert_equal "${lines[0]}" '{"name":"דנה כהן","נייד":"050-123-4567","phone":"+972501234567","jid":"972501234567@s.whatsapp.net","region":"IL","valid":true,"source":"נייד"}'
	assert_equal "${lines[1]}" '{"raw":"Ron","status":"failed","error":{"code":"bad_row","message":"line 3: 1 cell, the header has 2"}}'
	assert_equal "$stderr" "wa-normalize: error: $f:3: bad_row: line 3: 1 cell, the header has 2"
	printf 'name,phone\nx,1\n' | iconv -t UTF-16 >"$BATS_TEST_TMPDIR/u.csv"
	run --separate-stderr wa-normalize "$BATS_TEST_TMPDIR/u.csv"
	assert_equal "$status" 65
	assert_output ''
}

@test "csv: wa-send sends each row, {{name}} from its column" {
	biz=$(bc_business)
	f=$(csv s.csv 'Phone,name\n0501234567,Dana\n0521234567,"Levi, Ron"\n')
	send_run --business "$biz" --region IL --text 'hi {{name}}' "$f"
	assert_success
	run jq -r 'select(.path == "/send") | .body.to + " " + .body.text' "$PROVIDER_LOG"
	assert_output '972501234567@s.whatsapp.net hi Dana
972521234567@s.whatsapp.net hi Levi, Ron'
	send_run --business "$biz" --text hi --format csv < <(printf 'name\nDana\n')
	assert_equal "$status" 65
	assert_equal "$(provider_count)" 2
}
