#!/usr/bin/env bats
# The tools on the old system's database: built from
# tests/fixtures/old-schema.sql plus a broadcast written the old way,
# adopted with `wa-migrate baseline 2` and `wa-migrate up` (README,
# "Adopting an existing database"), then read and run by wa-broadcast
# against the test provider. One cluster and one provider for the file, a
# fresh old database per test.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() {
	pg_setup_file
	provider_setup_file
}

teardown_file() {
	provider_teardown_file
	pg_teardown_file
}

setup() {
	provider_setup
	DATABASE_URL=$(pg_new_db)
	export DATABASE_URL
	psql -XAtq -v ON_ERROR_STOP=1 "$DATABASE_URL" \
		-f "$WA_ROOT/tests/fixtures/old-schema.sql" >/dev/null
	LAST=$(ls "$WA_ROOT/migrations" | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -1)
}

teardown() { canary_check; }

# The numbers of the old-style broadcast: four queued, and the second one
# already sent by the old system.
QUEUED=(+972541000001 +972541000003 +972541000004 +972541000005)
SENT=+972541000002

# A broadcast as the old system wrote it, old columns only, interrupted
# after sending one recipient (status running, counters right for the one
# sent); its id in OLD_BID. Run before wa-migrate: the old schema.
old_broadcast() {
	OLD_BID=$(psql_q "INSERT INTO whatsapp_broadcasts (business_id, name,
		provider, message_type, message_text, audience_filter, status,
		total_recipients, sent_count, failed_count, cancelled_count,
		processed_count, created_at, started_at, idempotency_key,
		cancel_requested)
	VALUES (1, 'Old weekend offer', 'baileys', 'text', 'Shalom! Weekend offer',
		'{\"tags\":[\"weekend\"]}', '${1:-running}', 5, 1, 0, 0, 1,
		'2025-09-01 10:00', '2025-09-01 10:01', 'idem-old-weekend', false)
	RETURNING id")
	psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id,
		business_id, phone, lead_id, status, message_id, created_at, sent_at)
	VALUES ($OLD_BID, 1, '${QUEUED[0]}', 501, 'queued', NULL, '2025-09-01 10:00', NULL),
		($OLD_BID, 1, '$SENT', 502, 'sent', '3EB0OLDSENT0001', '2025-09-01 10:00', '2025-09-01 10:01:05'),
		($OLD_BID, 1, '${QUEUED[1]}', NULL, 'queued', NULL, '2025-09-01 10:00', NULL),
		($OLD_BID, 1, '${QUEUED[2]}', 504, 'queued', NULL, '2025-09-01 10:00', NULL),
		($OLD_BID, 1, '${QUEUED[3]}', 505, 'queued', NULL, '2025-09-01 10:00', NULL)"
}

# As the README says: baseline 2 (no cursor column yet), then up.
adopt() {
	assert_equal "$(psql_q "SELECT count(*) FROM information_schema.columns WHERE column_name = 'last_processed_recipient_id'")" 0
	run_split wa-migrate baseline 2
	assert_success
	run_split wa-migrate up
	assert_success
	assert_equal "$(psql_q "SELECT max(version), count(*) FROM schema_migrations")" "$LAST|$LAST"
}

# Every old column of every row except those of broadcast $1.
others() {
	psql_q "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM
		(SELECT id, status, total_recipients, sent_count, failed_count,
			cancelled_count, processed_count, started_at, completed_at
		FROM whatsapp_broadcasts WHERE id <> $1) t;
	SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM
		(SELECT id, broadcast_id, phone, status, error_message, message_id,
			sent_at, delivered_at
		FROM whatsapp_broadcast_recipients WHERE broadcast_id <> $1) t"
}

# The old sent row's old columns.
sent_row() {
	psql_q "SELECT id, status, message_id, sent_at, lead_id, created_at
		FROM whatsapp_broadcast_recipients
		WHERE broadcast_id = $OLD_BID AND phone = '$SENT'"
}

@test "status on the adopted old database: the old rows' counts" {
	old_broadcast
	adopt
	wb status "$OLD_BID"
	assert_success
	assert_equal "$(wc -l <<<"$output")" 1
	assert_equal "$(jq -c '[.broadcast_id, .business_id, .name, .status, .total, .queued, .processing, .sent, .failed, .ambiguous, .cancelled, .processed, .last_processed_recipient_id]' <<<"$output")" \
		"[$OLD_BID,1,\"Old weekend offer\",\"running\",5,4,0,1,0,0,0,1,0]"
	assert_equal "$(jq -r '.created_at + " " + .started_at + " " + (.completed_at // "-")' <<<"$output")" \
		"2025-09-01T10:00:00 2025-09-01T10:01:00 -"
	# An old broadcast of the fixture: its 350 rows, queued and processing
	# counted from the rows, whatever state they were left in.
	wb status 3
	assert_success
	assert_equal "$(jq -c '[.status, .total, .queued, .processing, .cancelled, .processed]' <<<"$output")" \
		"[\"running\",350,$(psql_q "SELECT count(*) FILTER (WHERE status = 'queued') || ',' || count(*) FILTER (WHERE status = 'processing') || ',' || count(*) FILTER (WHERE status = 'cancelled') || ',' || count(*) FILTER (WHERE status <> 'queued') FROM whatsapp_broadcast_recipients WHERE broadcast_id = 3")]"
	# Every broadcast, old and new-style: a record each.
	wb status --all
	assert_success
	assert_equal "$(wc -l <<<"$output")" 13
	# Reading changed nothing.
	assert_equal "$(bc_state "$OLD_BID")" "4 0 1 0 0"
}

@test "run on the adopted old database: each queued recipient sent once, the old sent one untouched, counters right" {
	old_broadcast
	adopt
	before_sent=$(sent_row)
	before_others=$(others "$OLD_BID")
	bc_consistent "$OLD_BID"
	wb run "$OLD_BID"
	assert_success
	[[ "$stderr" == *"[WA_BROADCAST] broadcast_id=$OLD_BID total=5 sent=5 failed=0 status=completed"* ]] || fail "$stderr"
	# At the provider: the four queued, once each, and nothing else.
	assert_equal "$(provider_count)" 4
	for p in "${QUEUED[@]}"; do
		assert_equal "$(provider_count "${p#+}")" 1
	done
	assert_equal "$(provider_count "${SENT#+}")" 0
	assert_equal "$(provider_stats duplicates)" 0
	# Routed by the old business row (baileys), to the JID of the phone.
	run jq -r 'select(.method == "POST") | .api + " " + (.tenant // "-") + " " + .to' "$PROVIDER_LOG"
	assert_line "baileys business_1 ${QUEUED[0]#+}@s.whatsapp.net"
	# In the database: all five sent, the old one as it was.
	assert_equal "$(bc_state "$OLD_BID")" "0 0 5 0 0"
	assert_equal "$(sent_row)" "$before_sent"
	assert_equal "$(psql_q "SELECT attempts FROM whatsapp_broadcast_recipients WHERE broadcast_id = $OLD_BID AND phone = '$SENT'")" 0
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $OLD_BID AND phone <> '$SENT' AND attempts = 1 AND message_id IS NOT NULL AND sent_at IS NOT NULL")" 4
	bc_consistent "$OLD_BID"
	assert_equal "$(bc_col "$OLD_BID" "status || ' ' || total_recipients || ' ' || sent_count || ' ' || processed_count")" "completed 5 5 5"
	# The old system's other broadcasts: not touched.
	assert_equal "$(others "$OLD_BID")" "$before_others"
	# Running it again sends nothing more.
	wb run "$OLD_BID"
	assert_success
	assert_equal "$(provider_count)" 4
	bc_consistent "$OLD_BID"
}

@test "run on the adopted old database: counters the old system counted twice are corrected from the rows, once, and said" {
	old_broadcast
	# The old double count (providers.md §6): its one send counted twice.
	psql_q "UPDATE whatsapp_broadcasts SET sent_count = 2, processed_count = 2 WHERE id = $OLD_BID" >/dev/null
	adopt
	wb run "$OLD_BID"
	assert_success
	[[ "$stderr" == *"[WA_BROADCAST] broadcast_id=$OLD_BID counters corrected from the recipients' rows: sent_count 2>1, processed_count 2>1"* ]] || fail "$stderr"
	[[ "$stderr" == *"total=5 sent=5 failed=0 status=completed"* ]] || fail "$stderr"
	bc_consistent "$OLD_BID"
	assert_equal "$(provider_count)" 4
	# Right now: nothing to correct, nothing said.
	psql_q "UPDATE whatsapp_broadcasts SET status = 'running' WHERE id = $OLD_BID" >/dev/null
	wb run "$OLD_BID"
	assert_success
	[[ "$stderr" != *"corrected"* ]] || fail "$stderr"
	bc_consistent "$OLD_BID"
}

@test "run on the adopted old database: an old queued broadcast never started, the same" {
	old_broadcast queued
	psql_q "UPDATE whatsapp_broadcasts SET started_at = NULL WHERE id = $OLD_BID"
	adopt
	wb run "$OLD_BID"
	assert_success
	assert_equal "$(provider_count) $(provider_count "${SENT#+}") $(provider_stats duplicates)" "4 0 0"
	assert_equal "$(bc_state "$OLD_BID")" "0 0 5 0 0"
	bc_consistent "$OLD_BID"
	assert_equal "$(bc_col "$OLD_BID" "status || ' ' || (started_at IS NOT NULL) || ' ' || (completed_at IS NOT NULL)")" "completed true true"
}
