#!/usr/bin/env bats
# wa-broadcast create: recipients in, normalized as wa-normalize does,
# invalid and duplicate ones counted, everything in one transaction.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

@test "create: stores a queued broadcast and prints its record" {
	biz=$(bc_business)
	wb create --business "$biz" --text "Shalom" --name spring < <(bc_numbers 3)
	assert_success
	assert_output '{"broadcast_id":1,"total":3,"invalid":0,"duplicates":0,"opted_out":0}'
	assert_equal "$(bc_col 1 "status || ' ' || message_type || ' ' || message_text || ' ' || name || ' ' || provider")" \
		"queued text Shalom spring baileys"
	assert_equal "$(bc_state 1)" "3 0 0 0 0"
	assert_equal "$(psql_q "SELECT phone || ' ' || jid || ' ' || business_id FROM whatsapp_broadcast_recipients ORDER BY id LIMIT 1")" \
		"+972500000000 972500000000@s.whatsapp.net $biz"
	bc_consistent 1
}

@test "create: invalid numbers are stored failed with the reason and counted; exit 1" {
	biz=$(bc_business)
	wb create --business "$biz" --text hi --region IL < <(printf '%s\n' 0501234567 'not a number' \
		'{"name":"no phone here"}' '120363@g.us' '{broken json' +972501234568)
	assert_equal "$status" 1
	assert_output '{"broadcast_id":1,"total":6,"invalid":4,"duplicates":0,"opted_out":0}'
	assert_equal "$(bc_state 1)" "2 0 0 4 0"
	run psql_q "SELECT error_code || ' ' || error_class FROM whatsapp_broadcast_recipients WHERE status = 'failed' ORDER BY id"
	assert_output "invalid_phone permanent
missing_phone permanent
unsupported_jid permanent
bad_json permanent"
	# The reason, for operators, and one warning line per bad record.
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'failed' AND error_message <> ''")" 4
	assert_equal "$(grep -c 'warning: <stdin>:' <<<"$stderr")" 4
	assert_equal "$(bc_col 1 "failed_count || ' ' || processed_count || ' ' || total_recipients")" "4 4 6"
	bc_consistent 1
}

@test "create: the same number twice is stored once and counted as a duplicate" {
	biz=$(bc_business)
	wb create --business "$biz" --text hi --region IL < <(printf '%s\n' +972501234567 0501234567 \
		'972501234567@s.whatsapp.net' '{"phone":"050-123-4567"}' +972501234568 +972501234568)
	assert_success
	assert_output '{"broadcast_id":1,"total":2,"invalid":0,"duplicates":4,"opted_out":0}'
	assert_equal "$(psql_q "SELECT string_agg(phone, ',' ORDER BY id) FROM whatsapp_broadcast_recipients")" \
		"+972501234567,+972501234568"
	bc_consistent 1
}

@test "create: numbers are normalized exactly as wa-normalize does" {
	biz=$(bc_business)
	printf '%s\n' '050-123-4567' '+1 (415) 555-0123' 'whatsapp:+447911123456' \
		'972501234569@c.us' '{"to":"03-555-1234","lead_id":42}' '12345678901234@lid' >"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text hi --region IL "$BATS_TEST_TMPDIR/in"
	assert_success
	want=$(wa-normalize --region IL "$BATS_TEST_TMPDIR/in" | jq -r '(.phone // .jid) + " " + .jid')
	got=$(psql_q "SELECT phone || ' ' || jid FROM whatsapp_broadcast_recipients ORDER BY id")
	assert_equal "$got" "$want"
	assert_equal "$(psql_q "SELECT lead_id FROM whatsapp_broadcast_recipients WHERE lead_id IS NOT NULL")" 42
	assert_equal "$(bc_col 1 region)" IL
}

@test "create: --field takes the number from another field" {
	biz=$(bc_business)
	wb create --business "$biz" --text hi --field mobile < <(echo '{"to":"nope","mobile":"+972501234567"}')
	assert_success
	assert_equal "$(psql_q "SELECT phone FROM whatsapp_broadcast_recipients")" "+972501234567"
}

@test "create: template and media messages are stored for the sends" {
	biz=$(bc_business meta)
	wb create --business "$biz" --template spring_sale --language en_US --params '["Dana","20%"]' < <(bc_numbers 1)
	assert_success
	assert_equal "$(bc_col 1 "message_type || ' ' || template_name || ' ' || template_language || ' ' || provider")" \
		"template spring_sale en_US meta"
	assert_equal "$(bc_col 1 "template_params::text")" \
		'[{"type": "body", "parameters": [{"text": "Dana", "type": "text"}, {"text": "20%", "type": "text"}]}]'
	wb create --business "$biz" --media '{"type":"image","url":"https://example.com/a.jpg","caption":"New"}' < <(bc_numbers 1)
	assert_success
	assert_equal "$(bc_col 2 "message_type || ' ' || (media->>'url')")" "media https://example.com/a.jpg"
}

@test "create: a bad message is a usage error and stores nothing" {
	biz=$(bc_business)
	for args in "--text hi --template t --language en" "--template t" "--language en --text hi" \
		"--media {\"type\":\"sticker\",\"url\":\"x\"}" "--template t --language en --params {}" ""; do
		# shellcheck disable=SC2086
		wb create --business "$biz" $args < <(bc_numbers 1)
		assert_equal "$status" 64
		assert_output ""
	done
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 0
}

@test "create: an unknown business stores nothing, exit 65" {
	wb create --business 999 --text hi < <(bc_numbers 2)
	assert_equal "$status" 65
	assert_output ""
	[[ "$stderr" == *"business 999: no such business"* ]]
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 0
}

@test "create: all or nothing: an unreadable file stores nothing, exit 74" {
	biz=$(bc_business)
	bc_numbers 5 >"$BATS_TEST_TMPDIR/a"
	wb create --business "$biz" --text hi "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/missing"
	assert_equal "$status" 74
	[[ "$stderr" == *"missing: No such file or directory"* ]]
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts") $(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients")" "0 0"
}

@test "create: --idempotency-key creates once, a repeat stores nothing" {
	biz=$(bc_business)
	wb create --business "$biz" --text hi --idempotency-key cron-2026-11-28 < <(bc_numbers 4)
	assert_success
	wb create --business "$biz" --text hi --idempotency-key cron-2026-11-28 < <(bc_numbers 9)
	assert_success
	assert_output '{"broadcast_id":1,"existing":true}'
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts") $(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients")" "1 4"
}

@test "create: SQL-looking text and odd bytes are stored as data" {
	biz=$(bc_business)
	text="Robert'); DROP TABLE business; -- \\ \"quoted\" ✓"
	wb create --business "$biz" --text "$text" --name "x'y" < <(printf '%s\n' "+972501234567" "'; DELETE FROM business; --")
	assert_equal "$status" 1
	assert_equal "$(bc_col 1 message_text)" "$text"
	assert_equal "$(psql_q "SELECT count(*) FROM business")" 1
	assert_equal "$(psql_q "SELECT phone FROM whatsapp_broadcast_recipients WHERE status = 'failed'")" "'; DELETE FROM business; --"
}

@test "create: hostile input is stored as failed recipients, never breaks the transaction" {
	biz=$(bc_business)
	long=$(printf 'é%.0s' $(seq 1 40))
	printf '%s\n' "$long" $'\xff\xfe+97250\x00123' '123456789012345678901234567890@lid' \
		'{"phone":"+972501234567","lead_id":99999999999}' "$(head -c 2000000 /dev/zero | tr '\0' x)" >"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text hi "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.total, .invalid]' <<<"$output")" "[5,4]"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'failed' AND length(phone) <= 32")" 4
	# A lead id that is no INTEGER is left out, the recipient kept.
	assert_equal "$(psql_q "SELECT phone || ' ' || coalesce(lead_id::text, '-') FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" "+972501234567 -"
	wb create --business "$biz" --text $'bad \xff byte' < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--text: not UTF-8"* ]]
	wb create --business "$biz" --text hi --name "$(printf 'n%.0s' $(seq 1 300))" < <(bc_numbers 1)
	assert_equal "$status" 64
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 1
}

@test "create: a long list streams in with flat memory" {
	biz=$(bc_business)
	bc_numbers 40000 >"$BATS_TEST_TMPDIR/big"
	run /usr/bin/time -f '%M' -o "$BATS_TEST_TMPDIR/rss" wa-broadcast create --business "$biz" --text hi "$BATS_TEST_TMPDIR/big"
	assert_success
	assert_output '{"broadcast_id":1,"total":40000,"invalid":0,"duplicates":0,"opted_out":0}'
	rss=$(cat "$BATS_TEST_TMPDIR/rss")
	# Under AddressSanitizer memory is its shadow's and quarantine's.
	if ! ldd "$(command -v wa-broadcast)" | grep -q libasan; then
		[ "$rss" -lt 30720 ] || fail "peak RSS $rss KB"
	fi
	bc_consistent 1
}

@test "create: a list over several chunks: duplicates across them counted once, ids in input order; a failure after a chunk stores nothing" {
	biz=$(bc_business)
	wb optout add --business "$biz" +972500030000
	assert_success
	# 45,000 numbers go in more than one chunk; then a bad one, and the
	# first three again, found in the database by a later chunk.
	{ bc_numbers 45000; echo nope; bc_numbers 3; } >"$BATS_TEST_TMPDIR/big"
	wb create --business "$biz" --text hi "$BATS_TEST_TMPDIR/big"
	assert_equal "$status" 1
	assert_output '{"broadcast_id":1,"total":45001,"invalid":1,"duplicates":3,"opted_out":1}'
	assert_equal "$(psql_q "SELECT bool_and(phone = '+' || (972500000000 + n - 1)) || ' ' || count(*)
		FROM (SELECT phone, row_number() OVER (ORDER BY id) AS n FROM whatsapp_broadcast_recipients
		WHERE status <> 'failed') AS r")" "true 45000"
	assert_equal "$(psql_q "SELECT phone || ' ' || status || ' ' || error_code FROM whatsapp_broadcast_recipients
		WHERE status <> 'queued' ORDER BY id")" "+972500030000 cancelled opted_out
nope failed invalid_phone"
	bc_consistent 1
	# A file that cannot be read after chunks went in: nothing of it stays.
	wb create --business "$biz" --text hi "$BATS_TEST_TMPDIR/big" "$BATS_TEST_TMPDIR/missing"
	assert_equal "$status" 74
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts") $(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients")" "1 45001"
}

@test "commands without a database schema they know change nothing, exit 78" {
	old=$(pg_new_db)
	mkdir "$BATS_TEST_TMPDIR/mig"
	ls "$WA_ROOT"/migrations/*.sql | head -n -1 | xargs cp -t "$BATS_TEST_TMPDIR/mig"
	wa-migrate -q --db "$old" --dir "$BATS_TEST_TMPDIR/mig" >/dev/null
	# (pg_dump's \restrict lines carry a random key: not schema.)
	schema() { pg_dump --schema-only "$old" | grep -v '^\\\(un\)\?restrict' | md5sum; }
	before=$(schema)
	for args in "create --business 1 --text hi" "run --all" "status --all" "list" "cancel 1" \
		"pause 1" "resume 1" "retry 1" "export 1" "mark 1"; do
		# shellcheck disable=SC2086
		wb --db "$old" $args </dev/null
		assert_equal "$status" 78
		[[ "$stderr" == *"run wa-migrate"* ]] || fail "$args: $stderr"
	done
	assert_equal "$(schema)" "$before"
}

@test "usage: no command, an unknown one, a missing ID, an option of another command" {
	wb
	assert_equal "$status" 64
	wb frobnicate
	assert_equal "$status" 64
	wb cancel
	assert_equal "$status" 64
	wb run
	assert_equal "$status" 64
	wb run 1 --all
	assert_equal "$status" 64
	wb status --rate 5 1
	assert_equal "$status" 64
	[[ "$stderr" == *"does not apply"* ]]
	wb create --text hi
	assert_equal "$status" 64
	wb cancel abc
	assert_equal "$status" 64
}

@test "create: WA_DEFAULT_REGION of the --config file reads national numbers" {
	biz=$(bc_business)
	cfg=$BATS_TEST_TMPDIR/wa.conf
	echo 'WA_DEFAULT_REGION=IL' >"$cfg"
	chmod 600 "$cfg"
	wb create --business "$biz" --text hi -c "$cfg" <<<'050-123-4567'
	assert_success
	bid=$(jq -r .broadcast_id <<<"$output")
	assert_equal "$(psql_q "SELECT phone FROM whatsapp_broadcast_recipients WHERE broadcast_id = $bid")" +972501234567
	echo 'WA_DEFAULT_REGION=XX' >"$cfg"
	wb create --business "$biz" --text hi -c "$cfg" <<<'050-123-4567'
	assert_equal "$status" 78
	[[ $stderr == *"WA_DEFAULT_REGION: unknown region code 'XX'"* ]] || fail "$stderr"
}
