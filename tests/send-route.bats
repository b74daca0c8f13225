#!/usr/bin/env bats
# wa-send: the provider of each business, from a real business table
# (a throw-away PostgreSQL migrated by wa-migrate), looked up once per
# business per run.

setup_file() {
	load lib/common; load lib/pg; load lib/provider
	pg_setup_file
	provider_setup_file
	wa-migrate -q up >/dev/null
	psql_q "INSERT INTO business (id, name, whatsapp_provider) VALUES
		(1, 'uses baileys', 'baileys'), (2, 'uses meta', 'meta'),
		(3, 'says nothing', NULL), (4, 'odd', 'twilio')"
}
teardown_file() {
	load lib/common; load lib/pg; load lib/provider
	provider_teardown_file
	pg_teardown_file
}
setup() { load lib/common; load lib/pg; load lib/provider; provider_setup; }
teardown() { canary_check; }

# How many times the business table has been read (scans of any kind).
business_reads() {
	psql_q "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'business'"
}

@test "each business's messages go to its provider; unknown ones fail" {
	before=$(business_reads)
	WA_PROVIDER=meta send_run --text hi <<'EOF'
{"to":"+972501234501","business_id":1}
{"to":"+972501234502","business_id":2}
{"to":"+972501234503","business_id":3}
{"to":"+972501234599","business_id":99}
{"to":"+972501234504","business_id":4}
{"to":"+972501234511","business_id":1}
{"to":"+972501234512","business_id":"2"}
{"to":"+972501234513","business_id":3}
{"to":"+972501234598","business_id":99}
EOF
	assert_failure 1
	assert_equal "$(jq -r '"\(.business_id) \(.provider) \(.status) \(.error.code // "-")"' <<<"$output" | paste -sd,)" \
		"1 baileys sent -,2 meta sent -,3 meta sent -,99 null failed unknown_business,4 null failed unknown_provider,1 baileys sent -,2 meta sent -,3 meta sent -,99 null failed unknown_business"
	# where the provider saw them: business 1 on /send as its tenant, 2 and 3 on Meta
	assert_equal "$(provider_sends | jq -r '.api + ":" + (.tenant // .phone_number_id)' | sort | uniq -c | awk '{print $1, $2}' | paste -sd,)" \
		"2 baileys:business_1,4 meta:$TEST_PNID"
	# one lookup per business, not per message: 1, 2, 3, 99, 4
	[ $(( $(business_reads) - before )) -eq 5 ]
}

@test "a missing whatsapp_provider falls back to WA_PROVIDER, else baileys" {
	send_run --text hi <<<'{"to":"+972501234503","business_id":3}'
	assert_success
	assert_equal "$(jq -r .provider <<<"$output")" baileys
	assert_equal "$(provider_sends | jq -r .tenant)" business_3
}

@test "--provider wins over the business row, and needs no database for routing (opt-outs still do)" {
	url=postgresql://postgres@127.0.0.1:$(closed_port)/wa
	DATABASE_URL=$url send_run --provider baileys --ignore-optout --text hi <<<'{"to":"+972501234502","business_id":2}'
	assert_success
	assert_equal "$(jq -r .provider <<<"$output")" baileys
	assert_equal "$(provider_sends | jq -r .path)" /send
	# A business's opt-outs cannot be checked: nothing is sent, as when
	# routing loses the database.
	DATABASE_URL=$url send_run --provider baileys --text hi <<<'{"to":"+972501234503","business_id":2}'
	assert_equal "$status" 69
	assert_equal "$(jq -r .error.code <<<"$output")" database_unavailable
	assert_equal "$(provider_count 972501234503)" 0
}

@test "records without a business use WA_PROVIDER and are not looked up" {
	before=$(business_reads)
	WA_PROVIDER=meta send_run --to +972501234567 --text hi
	assert_success
	assert_equal "$(jq -r .provider <<<"$output")" meta
	[ "$(business_reads)" -eq "$before" ]
}

@test "status routes by the business row too" {
	send_run status --business 2
	assert_success
	assert_equal "$(jq -r .provider <<<"$output")" meta
	send_run status --business 99
	assert_failure 78
	[[ "$stderr" == *"unknown_business"* ]]
}

@test "a database that cannot be reached: one clear line, exit 69, nothing sent" {
	DATABASE_URL=postgresql://postgres@127.0.0.1:$(closed_port)/wa send_run --text hi <<<'{"to":"+972501234501","business_id":1}'
	assert_failure 69
	assert_output ""
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
	[[ "$stderr" == "wa-send: error: "* ]]
	[ "$(provider_count)" -eq 0 ]
}

@test "a database whose schema is out of date: exit 78, nothing sent" {
	url=$(pg_new_db)
	DATABASE_URL=$url send_run --text hi <<<'{"to":"+972501234501","business_id":1}'
	assert_failure 78
	[[ "$stderr" == *"wa-migrate"* ]]
	[ "$(provider_count)" -eq 0 ]
}

@test "the config file's DATABASE_URL is used like the environment's" {
	cfg=$BATS_TEST_TMPDIR/wa.conf
	echo "DATABASE_URL=$DATABASE_URL" >"$cfg"
	chmod 600 "$cfg"
	(unset DATABASE_URL; wa-send --config "$cfg" --text hi <<<'{"to":"+972501234502","business_id":2}' >"$BATS_TEST_TMPDIR/out")
	assert_equal "$(jq -r .provider "$BATS_TEST_TMPDIR/out")" meta
}
