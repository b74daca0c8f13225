#!/usr/bin/env bats
# wa-migrate and the schema, against a real PostgreSQL (scripts/pg-tmp):
# one cluster for the file, a fresh database per test.

# Every program that uses the database: one entry per command line to try,
# each run with DATABASE_URL set and a record on standard input. The last
# test runs each against a database one migration behind and checks it
# refuses (exit 78) having changed nothing. A program in cmd/ that is in
# neither list fails that test, so a new one cannot be forgotten; an entry
# whose program is not built fails it too. Extend it as programs grow.
DB_PROGRAMS=(
	"wa-send"
	"wa-send --context broadcast"
	"wa-broadcast create --business 1 --text hello"
	"wa-broadcast run --all"
	"wa-broadcast status --all"
	"wa-broadcast list"
	"wa-broadcast cancel 1"
	"wa-broadcast export 1"
	"wa-broadcast mark 1"
	"wa-broadcast preview 1"
	"wa-broadcast pause 1"
	"wa-broadcast pause --reason checking 1"
	"wa-broadcast resume 1"
	"wa-broadcast retry 1"
	"wa-broadcast retry --ambiguous 1"
)
# Programs that never open the database (wa-migrate is the one that
# changes it, and everything else in this file tests it).
NO_DB_PROGRAMS=(wa-normalize wa-migrate)

setup_file() {
	load lib/common
	load lib/pg
	pg_setup_file
}

teardown_file() {
	load lib/common
	load lib/pg
	pg_teardown_file
}

setup() {
	load lib/common
	load lib/pg
	DATABASE_URL=$(pg_new_db)
	export DATABASE_URL
	MIGS=("$WA_ROOT"/migrations/[0-9]*_*.sql)
	NMIG=${#MIGS[@]}
	LAST=$(ls "$WA_ROOT/migrations" | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -1)
}

# Background processes of a test that failed half-way must not outlive it.
teardown() {
	local p
	for p in ${BG_PIDS:-}; do
		kill "$p" 2>/dev/null || true
	done
}

# A folder holding copies of the first $1 migrations (all when no $1).
mig_copy() {
	local dir=$BATS_TEST_TMPDIR/mig n=0 f
	mkdir -p "$dir"
	for f in "${MIGS[@]}"; do
		[ -n "${1:-}" ] && [ "$n" -ge "$1" ] && break
		cp "$f" "$dir/"
		n=$((n + 1))
	done
	echo "$dir"
}

applied() { psql_q "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations"; }

# Row counts and checksums of every old column of the old tables.
old_data() {
	psql_q "
	SELECT 'business ' || count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id))
	FROM (SELECT id, name, whatsapp_provider FROM business) t;
	SELECT 'broadcasts ' || count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id))
	FROM (SELECT id, business_id, name, provider, message_type, template_id,
		template_name, message_text, audience_filter::text, status,
		total_recipients, sent_count, failed_count, created_at, started_at,
		completed_at, idempotency_key, stopped_at, cancel_requested,
		cancelled_count, processed_count FROM whatsapp_broadcasts) t;
	SELECT 'recipients ' || count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id))
	FROM (SELECT id, broadcast_id, business_id, phone, lead_id, status,
		error_message, message_id, created_at, sent_at, delivered_at
		FROM whatsapp_broadcast_recipients) t;"
}

# The shape of the broadcast tables: columns with types and defaults, and
# indexes and constraints.
shape() {
	psql_q "
	SELECT table_name || '.' || column_name || ' ' || data_type || ' ' ||
		coalesce(character_maximum_length::text, '-') || ' ' ||
		coalesce(column_default, '-') || ' ' || is_nullable
	FROM information_schema.columns
	WHERE table_name IN ('whatsapp_broadcasts', 'whatsapp_broadcast_recipients',
		'wa_send_pacing')
	ORDER BY table_name, column_name;
	SELECT indexdef FROM pg_indexes
	WHERE tablename IN ('whatsapp_broadcasts', 'whatsapp_broadcast_recipients',
		'wa_send_pacing') ORDER BY 1;
	SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
	WHERE conrelid IN ('whatsapp_broadcasts'::regclass,
		'whatsapp_broadcast_recipients'::regclass) ORDER BY 1;"
}

# pg_dump without the random \restrict key lines newer pg_dumps print.
dump() { pg_dump "$@" "$DATABASE_URL" | sed '/^\\\(un\)\{0,1\}restrict /d'; }

# Poll (bounded) until SQL returns want.
wait_for() {
	local i
	for i in $(seq 200); do
		[ "$(psql_q "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	fail "timed out waiting for: $1 = $2 (last: $(psql_q "$1"))"
}

@test "--help, --version, and a bad option or command (exit 64 with a hint)" {
	run_split wa-migrate --help
	assert_success
	assert_output --partial "Usage: wa-migrate"
	assert_output --partial "baseline VERSION"
	run_split wa-migrate --version
	assert_success
	assert_output --regexp '^wa-migrate \(wa\) [0-9]+\.[0-9]+\.[0-9]+$'
	for args in "--frobnicate" "sideways" "baseline" "baseline x" "status extra" \
		"status --dry-run" "--dir="; do
		# shellcheck disable=SC2086
		run_split wa-migrate $args
		assert_equal "$status" 64
		assert_equal "$output" ""
		[[ $stderr == *"wa-migrate: error: "* ]] || fail "$args: $stderr"
		[[ $stderr =~ \;\ try\ \'wa-migrate\ ([a-z]+\ )?--help\'$ ]] || fail "$args: $stderr"
	done
}

@test "a fresh database: every migration applied, every table created" {
	run_split wa-migrate
	assert_success
	assert_equal "${#lines[@]}" "$NMIG"
	assert_line --index 0 --regexp '^\{"version":1,"name":"business","state":"applied","applied_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"\}$'
	[[ $stderr == *"applied $NMIG migrations; schema at version $LAST"* ]] || fail "$stderr"
	for t in business whatsapp_broadcasts whatsapp_broadcast_recipients \
		wa_send_pacing wa_optouts schema_migrations; do
		assert_equal "$(psql_q "SELECT to_regclass('$t') IS NOT NULL")" t
	done
	assert_equal "$(psql_q "SELECT count(*), max(version) FROM schema_migrations")" "$NMIG|$LAST"
	# What the new tools need is there, with its defaults.
	psql_q "INSERT INTO business (name) VALUES ('b');
		INSERT INTO whatsapp_broadcasts (business_id) VALUES (1);
		INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone)
		VALUES (1, 1, '+972501234567')"
	assert_equal "$(psql_q "SELECT whatsapp_provider FROM business")" baileys
	assert_equal "$(psql_q "SELECT status, last_processed_recipient_id, cancel_requested FROM whatsapp_broadcasts")" "pending|0|f"
	assert_equal "$(psql_q "SELECT status, attempts, claimed_by IS NULL, updated_at IS NOT NULL FROM whatsapp_broadcast_recipients")" "queued|0|t|t"
	run psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone) VALUES (1, 1, '+972501234567')"
	assert_failure
	assert_output --partial "whatsapp_broadcast_recipients_broadcast_phone_key"
	run psql_q "UPDATE whatsapp_broadcast_recipients SET error_class = 'maybe'"
	assert_failure
	run psql_q "UPDATE whatsapp_broadcasts SET status = 'canceled'"
	assert_failure
}

@test "re-running is a no-op" {
	wa-migrate -q
	before=$(psql_q "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1")
	run_split wa-migrate
	assert_success
	assert_output ""
	[[ $stderr == *"nothing to apply; schema at version $LAST"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1")" "$before"
	run_split wa-migrate -q up
	assert_success
	assert_equal "$stderr" ""
}

@test "status: a record per migration, pending then applied; a table on a terminal" {
	run_split wa-migrate status
	assert_success
	assert_equal "${#lines[@]}" "$NMIG"
	assert_line --index 0 '{"version":1,"name":"business","state":"pending","applied_at":null}'
	assert_equal "$(psql_q "SELECT to_regclass('schema_migrations') IS NULL")" t
	wa-migrate -q
	run_split wa-migrate status
	assert_success
	assert_equal "$(grep -c '"state":"applied","applied_at":"20' <<<"$output")" "$NMIG"
	assert_line --index "$((NMIG - 1))" --regexp "^\\{\"version\":$LAST,"
	# A terminal gets an aligned table instead.
	run script -qec "wa-migrate status" /dev/null
	assert_success
	assert_line --index 0 --regexp '^VERSION  NAME +STATE +APPLIED AT'
	assert_line --index 1 --regexp '^      1  business +applied  20[0-9-]+T[0-9:]+Z'
}

@test "the migrations folder: --dir, WA_MIGRATIONS_DIR, else the source tree's" {
	dir=$(mig_copy 2)
	run_split wa-migrate --dir "$dir" status
	assert_equal "${#lines[@]}" 2
	WA_MIGRATIONS_DIR=$dir run_split wa-migrate status
	assert_equal "${#lines[@]}" 2
	# Found from the binary's build tree, wherever it is run from.
	cd /
	run_split wa-migrate status
	assert_success
	assert_equal "${#lines[@]}" "$NMIG"
	run_split wa-migrate --dir "$BATS_TEST_TMPDIR/none" status
	assert_equal "$status" 78
	[[ $stderr == *"none: No such file or directory"* ]] || fail "$stderr"
	mkdir "$BATS_TEST_TMPDIR/empty"
	run_split wa-migrate --dir "$BATS_TEST_TMPDIR/empty"
	assert_equal "$status" 78
	[[ $stderr == *"no migrations"* ]] || fail "$stderr"
	echo 'SELECT 1;' >"$dir/3-bad-name.sql"
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	[[ $stderr == *"3-bad-name.sql: not a migration name"* ]] || fail "$stderr"
	rm "$dir/3-bad-name.sql"
	cp "$dir/0002_whatsapp_broadcasts.sql" "$dir/02_again.sql"
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	[[ $stderr == *"both are version 2"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT to_regclass('schema_migrations') IS NULL")" t
}

@test "--dry-run: prints what would run, changes nothing" {
	run_split wa-migrate --dry-run
	assert_success
	assert_equal "${#lines[@]}" "$NMIG"
	assert_line --index 0 '{"version":1,"name":"business","state":"pending","applied_at":null}'
	[[ $stderr == *"dry run: would apply $NMIG migrations"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0
	# baseline's dry run checks the database as baseline does: an empty
	# one lacks what migrations 1 and 2 make.
	run_split wa-migrate --dry-run baseline 2
	assert_equal "$status" 65
	assert_equal "${#lines[@]}" 0
	assert_equal "$(psql_q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0
	load_old
	run_split wa-migrate --dry-run baseline 2
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_line --index 1 '{"version":2,"name":"whatsapp_broadcasts","state":"pending","applied_at":null}'
	assert_equal "$(psql_q "SELECT to_regclass('schema_migrations') IS NULL")" t
}

# The old system's database: tables full of rows, no schema_migrations.
load_old() {
	psql -XAtq -v ON_ERROR_STOP=1 "$DATABASE_URL" -f "$WA_ROOT/tests/fixtures/old-schema.sql" >/dev/null
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients")" 4200
	assert_equal "$(psql_q "SELECT count(DISTINCT status) FROM whatsapp_broadcast_recipients")" 6
	assert_equal "$(psql_q "SELECT count(DISTINCT status) FROM whatsapp_broadcasts")" 8
}

@test "the old database without the cursor: baseline 2, up; nothing lost, cursor 0" {
	load_old
	assert_equal "$(psql_q "SELECT count(*) FROM information_schema.columns WHERE column_name = 'last_processed_recipient_id'")" 0
	before=$(old_data)
	other=$(psql_q "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM (SELECT id, email, phone, timezone, created_at FROM business) t")
	run_split wa-migrate baseline 2
	assert_success
	assert_equal "${#lines[@]}" 2
	assert_equal "$(applied)" "1,2"
	run_split wa-migrate up
	assert_success
	assert_equal "${#lines[@]}" "$((NMIG - 2))"
	assert_equal "$(old_data)" "$before"
	assert_equal "$(psql_q "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM (SELECT id, email, phone, timezone, created_at FROM business) t")" "$other"
	assert_equal "$(psql_q "SELECT count(*), count(*) FILTER (WHERE last_processed_recipient_id = 0) FROM whatsapp_broadcasts")" "12|12"
	assert_equal "$(psql_q "SELECT column_default FROM information_schema.columns WHERE column_name = 'last_processed_recipient_id'")" 0
	assert_equal "$(psql_q "SELECT count(*) FILTER (WHERE attempts = 0 AND claimed_by IS NULL AND updated_at IS NULL) FROM whatsapp_broadcast_recipients")" 4200
	assert_equal "$(applied)" "$(seq -s, 1 "$LAST")"
	# Same shape as a database the migrations made from nothing.
	adopted=$(shape)
	fresh=$(pg_new_db)
	DATABASE_URL=$fresh wa-migrate -q
	assert_equal "$(DATABASE_URL=$fresh shape)" "$adopted"
}

@test "the old database with the cursor (its migration 108): baseline 3 or 2, up; nothing lost" {
	for n in 3 2; do
		DATABASE_URL=$(pg_new_db)
		load_old
		psql_q "ALTER TABLE whatsapp_broadcasts ADD COLUMN last_processed_recipient_id INTEGER DEFAULT 0;
			UPDATE whatsapp_broadcasts SET last_processed_recipient_id = id * 7 WHERE id % 2 = 0"
		before=$(old_data)
		cursors=$(psql_q "SELECT string_agg(last_processed_recipient_id::text, ',' ORDER BY id) FROM whatsapp_broadcasts")
		run_split wa-migrate baseline "$n"
		assert_success
		run_split wa-migrate
		assert_success
		assert_equal "$(old_data)" "$before"
		assert_equal "$(psql_q "SELECT string_agg(last_processed_recipient_id::text, ',' ORDER BY id) FROM whatsapp_broadcasts")" "$cursors"
		assert_equal "$(applied)" "$(seq -s, 1 "$LAST")"
	done
}

@test "baseline refuses a database that lacks what it would record, naming it; nothing recorded" {
	# The old database without the cursor column, adopted as if it had it.
	load_old
	before=$(old_data)
	schema=$(dump --schema-only -T schema_migrations)
	run_split wa-migrate baseline 3
	assert_equal "$status" 65
	[[ $stderr == *"wa-migrate: error: baseline 3: the database lacks column whatsapp_broadcasts.last_processed_recipient_id, which the migrations up to 3 make: nothing recorded"* ]] ||
		fail "$stderr"
	assert_equal "${#lines[@]}" 0
	assert_equal "$(old_data)" "$before"
	[ "$(dump --schema-only -T schema_migrations)" = "$schema" ] || fail "the schema changed"
	assert_equal "$(psql_q "SELECT count(*) FROM schema_migrations")" 0
	# The right version goes through, and up brings the cursor.
	run_split wa-migrate baseline 2
	assert_success
	run_split wa-migrate
	assert_success
	assert_equal "$(old_data)" "$before"
	assert_equal "$(applied)" "$(seq -s, 1 "$LAST")"
	# The wrong database: an empty one has none of the tables.
	DATABASE_URL=$(pg_new_db)
	run_split wa-migrate baseline 2
	assert_equal "$status" 65
	[[ $stderr == *"lacks table business, table whatsapp_broadcast_recipients, table whatsapp_broadcasts, which"* ]] ||
		fail "$stderr"
	assert_equal "$(psql_q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")" 0
	assert_equal "$(psql_q "SELECT count(*) FROM schema_migrations")" 0
}

@test "the old database with a number twice in a broadcast: refused with a count and a hint, nothing lost" {
	load_old
	psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone, status)
		SELECT broadcast_id, business_id, phone, 'sent' FROM whatsapp_broadcast_recipients
		WHERE id IN (5, 6, 700)"
	before=$(old_data)
	wa-migrate -q baseline 2
	run_split wa-migrate
	assert_equal "$status" 65
	[[ $stderr == *"0004_recipient_unique.sql:12: whatsapp_broadcast_recipients: 3 (broadcast_id, phone) pairs are in more than one row (3 rows too many)"* ]] || fail "$stderr"
	[[ $stderr == *"hint: list them with SELECT"* ]] || fail "$stderr"
	assert_equal "$(old_data)" "$before"
	assert_equal "$(applied)" "1,2,3"
	# The operator removes the extra rows; then it goes through.
	psql_q "DELETE FROM whatsapp_broadcast_recipients WHERE id > 4200"
	run_split wa-migrate
	assert_success
	assert_equal "$(applied)" "$(seq -s, 1 "$LAST")"
}

@test "two wa-migrate up at once: one waits for the other, nothing runs twice, both exit 0" {
	local fifo=$BATS_TEST_TMPDIR/hold db hold
	# A session holds wa-migrate's lock, so that both runs surely meet.
	mkfifo "$fifo"
	psql -XAtq "$DATABASE_URL" <"$fifo" >/dev/null 2>&1 3>&- &
	holder=$!
	BG_PIDS=$holder
	exec {hold}>"$fifo"
	echo "SELECT pg_advisory_lock(2002865479, 1);" >&"$hold"
	db="locktype = 'advisory' AND classid = 2002865479 AND objid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
	wait_for "SELECT count(*) FROM pg_locks WHERE $db AND granted" 1
	# (Not inheriting the FIFO's write end: closing ours must end psql.)
	wa-migrate >"$BATS_TEST_TMPDIR/a.out" 2>"$BATS_TEST_TMPDIR/a.err" 3>&- {hold}>&- &
	a=$!
	wa-migrate >"$BATS_TEST_TMPDIR/b.out" 2>"$BATS_TEST_TMPDIR/b.err" 3>&- {hold}>&- &
	b=$!
	BG_PIDS="$holder $a $b"
	wait_for "SELECT count(*) FROM pg_locks WHERE $db AND NOT granted" 2
	exec {hold}>&- # psql reads the end of its input and goes: so does the lock
	sa=0 sb=0
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	wait "$holder"
	assert_equal "$sa $sb" "0 0"
	grep -q "another wa-migrate is running; waiting for it" "$BATS_TEST_TMPDIR/a.err"
	grep -q "another wa-migrate is running; waiting for it" "$BATS_TEST_TMPDIR/b.err"
	# One applied everything, the other found nothing to do.
	assert_equal "$(cat "$BATS_TEST_TMPDIR/a.out" "$BATS_TEST_TMPDIR/b.out" | grep -c '"state":"applied"')" "$NMIG"
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/?.err | grep -c "nothing to apply")" 1
	assert_equal "$(psql_q "SELECT count(*), count(DISTINCT version) FROM schema_migrations")" "$NMIG|$NMIG"
}

@test "a migration changed after it was applied: refused by name, nothing applied, exit 65" {
	dir=$(mig_copy)
	wa-migrate -q --dir "$dir"
	echo "-- an innocent-looking edit" >>"$dir/0002_whatsapp_broadcasts.sql"
	printf 'CREATE TABLE later_one (id int);\n' >"$dir/9001_later.sql"
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	[[ $stderr == *"wa-migrate: error: $dir/0002_whatsapp_broadcasts.sql: changed since it was applied"* ]] || fail "$stderr"
	[[ $stderr == *"nothing was applied"* ]] || fail "$stderr"
	assert_equal "$(applied)" "$(seq -s, 1 "$LAST")"
	assert_equal "$(psql_q "SELECT to_regclass('later_one') IS NULL")" t
	run_split wa-migrate --dir "$dir" status
	assert_success
	assert_line --index 1 --regexp '^\{"version":2,"name":"whatsapp_broadcasts","state":"changed","applied_at":"20'
	assert_line --index "$NMIG" '{"version":9001,"name":"later","state":"pending","applied_at":null}'
	# The database ahead of the files: refused too.
	rm "$dir/0002_whatsapp_broadcasts.sql"
	cp "$WA_ROOT/migrations/0002_whatsapp_broadcasts.sql" "$dir/"
	wa-migrate -q --dir "$dir"
	run_split wa-migrate
	assert_equal "$status" 65
	[[ $stderr == *"the database has migration 9001 (later), which is not in "*"migrations: is this wa older than the database?"* ]] || fail "$stderr"
}

@test "a broken migration: rolled back whole, the ones before stay, FILE:LINE: message, exit 65" {
	dir=$(mig_copy 2)
	cat >"$dir/0003_broken.sql" <<-'EOF'
	-- Looks fine, is not: the table is created, then line 5 fails.
	CREATE TABLE broken_a (id int);
	INSERT INTO broken_a VALUES (1);
	-- ünïcödé before the error must not shift the line
	SELECT * FROM no_such_table;
	CREATE TABLE broken_b (id int);
	EOF
	printf 'CREATE TABLE after_broken (id int);\n' >"$dir/0004_after.sql"
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	assert_line --index 0 --partial '"version":1,'
	assert_line --index 1 --partial '"version":2,'
	assert_equal "${#lines[@]}" 2
	[[ $stderr == *"wa-migrate: error: $dir/0003_broken.sql:5: relation \"no_such_table\" does not exist"* ]] || fail "$stderr"
	assert_equal "$(applied)" "1,2"
	assert_equal "$(psql_q "SELECT to_regclass('business') IS NOT NULL, to_regclass('broken_a') IS NULL, to_regclass('broken_b') IS NULL, to_regclass('after_broken') IS NULL")" "t|t|t|t"
	# A migration that commits on its own is refused too.
	printf 'CREATE TABLE sneaky (id int);\nCOMMIT;\n' >"$dir/0003_broken.sql"
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	[[ $stderr == *"0003_broken.sql: ends the transaction itself"* ]] || fail "$stderr"
	assert_equal "$(applied)" "1,2"
}

@test "an error raised while a statement runs names the line that statement starts on" {
	dir=$(mig_copy 2)
	# Semicolons in comments, strings, quoted names and dollar-quoted
	# bodies, and empty statements, do not end or count as statements.
	cat >"$dir/0003_runtime.sql" <<-'EOF'
	/* a comment; with a semicolon /* nested; */ still a comment; */
	CREATE TABLE rt (id int PRIMARY KEY, note text);
	INSERT INTO rt VALUES (1, 'a;b''c;'), (2, E'd\';e');
	CREATE FUNCTION rt_f() RETURNS int LANGUAGE plpgsql AS $body$
	BEGIN
	RETURN 1; -- ;
	END;
	$body$;
	-- a comment; here
	;;
	SELECT "odd;name" FROM (SELECT 1 AS "odd;name") s;
	INSERT INTO rt
	VALUES (1, 'again');
	EOF
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	[[ $stderr == *"0003_runtime.sql:12: duplicate key value violates unique constraint \"rt_pkey\""* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT to_regclass('rt') IS NULL")" t
	# A DO block's RAISE: the line of the DO.
	printf 'CREATE TABLE rt2 (id int);\n\nDO $$\nBEGIN\n  RAISE EXCEPTION %s;\nEND\n$$;\n' \
		"'not today; sorry'" >"$dir/0003_runtime.sql"
	run_split wa-migrate --dir "$dir"
	assert_equal "$status" 65
	[[ $stderr == *"0003_runtime.sql:3: not today; sorry"* ]] || fail "$stderr"
	assert_equal "$(applied)" "1,2"
}

@test "baseline VERSION must be one of the migrations" {
	run_split wa-migrate baseline 999
	assert_equal "$status" 64
	[[ $stderr == *"has no migration 999 (it has 1 to $LAST)"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT to_regclass('schema_migrations') IS NULL")" t
}

@test "a schema_migrations table of another tool: refused, nothing changed, exit 78" {
	psql_q "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
		INSERT INTO schema_migrations VALUES (20240101, false)"
	run_split wa-migrate
	assert_equal "$status" 78
	[[ $stderr == *"a table schema_migrations exists but is not wa-migrate's"* ]] || fail "$stderr"
	run_split wa-migrate status
	assert_equal "$status" 78
	assert_equal "$(psql_q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 1
	assert_equal "$(psql_q "SELECT version FROM schema_migrations")" 20240101
}

@test "run from the top of the source tree, errors name migrations/NNNN_x.sql" {
	cd "$WA_ROOT"
	psql_q "CREATE TABLE business (id int)"
	run_split wa-migrate
	assert_equal "$status" 65
	[[ $stderr == "wa-migrate: error: migrations/0001_business.sql:6: relation \"business\" already exists"* ]] || fail "$stderr"
}

@test "the server down: exit 69 and a clear message" {
	pg_down
	run_split wa-migrate
	pg_up
	assert_equal "$status" 69
	[[ $stderr == *"wa-migrate: error: cannot connect to the database: connection to server at \"127.0.0.1\", port "*"failed: Connection refused"* ]] || fail "$stderr"
	run_split wa-migrate status --db "postgresql://postgres@127.0.0.1:1/wa"
	assert_equal "$status" 69
}

# standby_start DIR [CONF]: a pg-tmp cluster in DIR that is up but not
# accepting connections, the state a server is in while it starts up (a
# standby with nothing to recover from). CONF: more postgresql.conf lines.
standby_start() {
	local data
	mkdir "$1"
	"$WA_ROOT/scripts/pg-tmp" start "$1" >/dev/null
	"$WA_ROOT/scripts/pg-tmp" down "$1"
	data=$(pg_datadir "$1")
	touch "$data/standby.signal"
	printf 'hot_standby = off\n%s\n' "${2:-}" >>"$data/postgresql.conf"
	[ "$(id -u)" -ne 0 ] || chown postgres "$data/standby.signal"
	"$WA_ROOT/scripts/pg-tmp" up "$1"
}

@test "a server not accepting connections yet (SQLSTATE 57P03): exit 75" {
	local d=$BATS_TEST_TMPDIR/standby
	standby_start "$d"
	run_split wa-migrate status --db "$(cat "$d/url")"
	"$WA_ROOT/scripts/pg-tmp" stop "$d"
	assert_equal "$status" 75
	[[ $stderr == *"the database system is not accepting connections"* ]] || fail "$stderr"
}

@test "a server speaking German that is not accepting connections yet: exit 75 all the same" {
	# The server's messages follow its lc_messages (initdb takes the
	# system's language); only English texts can be matched, so the exit
	# code must not depend on them. The locale is built for this server
	# alone (LOCPATH), readable by the postgres user.
	local d=$BATS_TEST_TMPDIR/german loc
	loc=$(mktemp -d /tmp/wa-locale.XXXXXX)
	chmod 755 "$loc"
	localedef -c -i de_DE -f UTF-8 "$loc/de_DE.UTF-8" >/dev/null 2>&1 || true
	[ -d "$loc/de_DE.UTF-8" ] || { rm -rf "$loc"; fail "localedef made no de_DE.UTF-8"; }
	chmod -R a+rX "$loc"
	LOCPATH=$loc standby_start "$d" "lc_messages = 'de_DE.UTF-8'"
	run_split wa-migrate status --db "$(cat "$d/url")"
	# And a database that does not exist, on the same German server once
	# it takes connections: the server is there, so not "starting up".
	rm "$(pg_datadir "$d")/standby.signal"
	"$WA_ROOT/scripts/pg-tmp" down "$d"
	LOCPATH=$loc "$WA_ROOT/scripts/pg-tmp" up "$d"
	# It ends recovery before it takes connections: wait for that (bounded),
	# or the answer below is still "not accepting connections".
	local i
	for i in $(seq 200); do
		psql -XAtq "postgresql://postgres@127.0.0.1:$(cat "$d/port")/postgres" -c 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.05
	done
	local st2 err2
	err2=$(wa-migrate status --db "postgresql://postgres@127.0.0.1:$(cat "$d/port")/nope" 2>&1 >/dev/null) && st2=0 || st2=$?
	"$WA_ROOT/scripts/pg-tmp" stop "$d"
	rm -rf "$loc"
	assert_equal "$status" 75
	[[ $stderr == *"Datenbanksystem nimmt keine Verbindungen an"* ]] || fail "not the German message: $stderr"
	[[ $stderr != *"not accepting connections"* ]] || fail "$stderr"
	[[ $err2 == *"existiert nicht"* ]] || fail "not the German message: $err2"
	[ "$st2" -ne 75 ] || fail "a missing database taken for a server starting up: $err2"
}

@test "a malformed URL: exit 78, and the password never shown" {
	for url in 'postgresql://wa:s3cr%zzet@127.0.0.1/wa' \
		'postgresql://wa:s3cret@127.0.0.1:5432/wa?no_such_option=1' \
		'postgresql://wa:s3cret@127.0.0.1:port/wa' 'not a url at all'; do
		run_split wa-migrate --db "$url"
		assert_equal "$status" 78
		[[ $stderr == *"wa-migrate: error: "* ]] || fail "$url: $stderr"
		[[ $stderr != *s3cr* ]] || fail "$url: password shown: $stderr"
		DATABASE_URL=$url run_split wa-migrate status
		assert_equal "$status" 78
		[[ $stderr != *s3cr* ]] || fail "$url: password shown: $stderr"
	done
	[[ $stderr == *"DATABASE_URL: malformed connection string"* ]] || fail "$stderr"
	# A wrong password for a real server: shown masked, never in clear.
	run_split wa-migrate --db "postgresql://nobody:s3cret@127.0.0.1:$(cat "$PGDIR/port")/wa"
	assert_equal "$status" 78
	[[ $stderr == *"--db holds a password"* ]] || fail "$stderr"
	[[ $stderr != *s3cret* ]] || fail "password shown: $stderr"
}

@test "every program that uses the database refuses a schema one migration behind, changing nothing" {
	local p entry prev=$((LAST - 1)) input='{"to":"+972501234567","text":"hello","business_id":1}'
	for p in $(wa_programs); do
		[[ " ${NO_DB_PROGRAMS[*]} " == *" $p "* ]] && continue
		printf '%s\n' "${DB_PROGRAMS[@]}" | grep -q "^$p\( \|\$\)" ||
			fail "$p: add it to DB_PROGRAMS (with arguments that reach its schema check) or to NO_DB_PROGRAMS in tests/migrate.bats"
	done
	wa-migrate -q --dir "$(mig_copy "$((NMIG - 1))")"
	psql_q "INSERT INTO business (name) VALUES ('b');
		INSERT INTO whatsapp_broadcasts (business_id, status) VALUES (1, 'queued');
		INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone)
		VALUES (1, 1, '+972501234567')"
	assert_equal "$(psql_q "SELECT max(version) FROM schema_migrations")" "$prev"
	schema=$(dump --schema-only)
	data=$(dump --data-only)
	[[ $schema == *"CREATE TABLE public.whatsapp_broadcast_recipients"* ]] || fail "pg_dump: $schema"
	[[ $data == *"+972501234567"* ]] || fail "pg_dump: $data"
	for entry in "${DB_PROGRAMS[@]}"; do
		p=${entry%% *}
		[ -x "$WA_BIN/$p" ] || fail "$p is in DB_PROGRAMS but $WA_BIN/$p is not built"
		# shellcheck disable=SC2086
		run_split $entry <<<"$input"
		[ "$status" -eq 78 ] || fail "$entry: exit $status, not 78: $stderr"
		[[ $stderr == *"$p: error: database schema is at $prev, this version needs $LAST: run wa-migrate"* ]] ||
			fail "$entry: $stderr"
		[ "$(dump --schema-only)" = "$schema" ] || fail "$entry changed the schema"
		[ "$(dump --data-only)" = "$data" ] || fail "$entry changed data"
	done
}

# Which of two databases wa-migrate applied the migrations to: "a", "b",
# "ab" or "" (none).
migrated() {
	local x out=
	for x in "$@"; do
		if [ "$(psql_q "SELECT to_regclass('schema_migrations') IS NOT NULL" "${!x}")" = t ]; then
			out+=${x,,}
		fi
	done
	echo "$out"
}

@test "the connection: --db, then DATABASE_URL, then libpq's PG* variables and service file" {
	local port
	port=$(cat "$PGDIR/port")
	A=$(pg_new_db "${BATS_TEST_NUMBER}_a$RANDOM")
	B=$(pg_new_db "${BATS_TEST_NUMBER}_b$RANDOM")
	bname=${B##*/}
	# Every source set, each naming another database: --db wins.
	DATABASE_URL=$A PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=$bname \
		run_split wa-migrate --db "$B"
	assert_success
	assert_equal "$(migrated A B)" b
	# --db over DATABASE_URL alone.
	A=$(pg_new_db "${BATS_TEST_NUMBER}_c$RANDOM")
	B=$(pg_new_db "${BATS_TEST_NUMBER}_d$RANDOM")
	DATABASE_URL=$A run_split wa-migrate --db "$B"
	assert_success
	assert_equal "$(migrated A B)" b
	# DATABASE_URL over the PG* variables.
	A=$(pg_new_db "${BATS_TEST_NUMBER}_e$RANDOM")
	B=$(pg_new_db "${BATS_TEST_NUMBER}_f$RANDOM")
	bname=${B##*/}
	DATABASE_URL=$A PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=$bname \
		run_split wa-migrate
	assert_success
	assert_equal "$(migrated A B)" a
	# Neither: the PG* variables (status reads that database, up migrates it).
	unset DATABASE_URL
	PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=$bname \
		run_split wa-migrate status
	assert_success
	assert_line --index 0 '{"version":1,"name":"business","state":"pending","applied_at":null}'
	PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=$bname \
		run_split wa-migrate
	assert_success
	assert_equal "$(migrated A B)" ab
	assert_equal "$(psql_q "SELECT max(version) FROM schema_migrations" "$B")" "$LAST"
	# A service file: PGSERVICEFILE and PGSERVICE.
	A=$(pg_new_db "${BATS_TEST_NUMBER}_g$RANDOM")
	B=$(pg_new_db "${BATS_TEST_NUMBER}_h$RANDOM")
	cat >"$BATS_TEST_TMPDIR/pg_service.conf" <<-EOF
	[wa_other]
	host=127.0.0.1
	port=$port
	user=postgres
	dbname=${A##*/}

	[wa_test]
	host=127.0.0.1
	port=$port
	user=postgres
	dbname=${B##*/}
	EOF
	PGSERVICEFILE=$BATS_TEST_TMPDIR/pg_service.conf PGSERVICE=wa_test \
		run_split wa-migrate
	assert_success
	assert_equal "$(migrated A B)" b
	# DATABASE_URL over a service too.
	B=$(pg_new_db "${BATS_TEST_NUMBER}_i$RANDOM")
	DATABASE_URL=$B PGSERVICEFILE=$BATS_TEST_TMPDIR/pg_service.conf PGSERVICE=wa_other \
		run_split wa-migrate
	assert_success
	assert_equal "$(migrated A B)" b
}

@test "--dir wins over WA_MIGRATIONS_DIR, which wins over the default folder" {
	local a=$BATS_TEST_TMPDIR/mig_a b=$BATS_TEST_TMPDIR/mig_b
	mkdir "$a" "$b"
	printf 'CREATE TABLE from_dir_a (id int);\n' >"$a/0001_from_a.sql"
	printf 'CREATE TABLE from_dir_b (id int);\n' >"$b/0001_from_b.sql"
	WA_MIGRATIONS_DIR=$a run_split wa-migrate --dir "$b"
	assert_success
	assert_line --index 0 --partial '"version":1,"name":"from_b","state":"applied"'
	assert_equal "$(psql_q "SELECT to_regclass('from_dir_b') IS NOT NULL, to_regclass('from_dir_a') IS NULL, to_regclass('business') IS NULL")" "t|t|t"
	assert_equal "$(psql_q "SELECT version || ' ' || name FROM schema_migrations")" "1 from_b"
	# WA_MIGRATIONS_DIR alone, run from the source tree: it wins over
	# migrations/.
	DATABASE_URL=$(pg_new_db)
	cd "$WA_ROOT"
	WA_MIGRATIONS_DIR=$a run_split wa-migrate
	assert_success
	assert_equal "$(psql_q "SELECT to_regclass('from_dir_a') IS NOT NULL, to_regclass('from_dir_b') IS NULL, to_regclass('business') IS NULL")" "t|t|t"
	assert_equal "$(psql_q "SELECT version || ' ' || name FROM schema_migrations")" "1 from_a"
}

@test "the recipients' status check: an unknown status is refused by PostgreSQL" {
	wa-migrate -q
	psql_q "INSERT INTO business (name) VALUES ('b');
		INSERT INTO whatsapp_broadcasts (business_id) VALUES (1)"
	run psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone, status)
		VALUES (1, 1, '+972501234567', 'bounced')"
	assert_failure
	assert_output --partial 'new row for relation "whatsapp_broadcast_recipients" violates check constraint "whatsapp_broadcast_recipients_status_check"'
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients")" 0
	# An UPDATE to an unknown value too, and a case-changed known one.
	i=1000
	for s in queued processing sent delivered failed cancelled; do
		psql_q "INSERT INTO whatsapp_broadcast_recipients (broadcast_id, business_id, phone, status)
			VALUES (1, 1, '+97250123$((i++))', '$s')"
	done
	assert_equal "$(psql_q "SELECT count(DISTINCT status) FROM whatsapp_broadcast_recipients")" 6
	for s in Sent canceled ''; do
		run psql_q "UPDATE whatsapp_broadcast_recipients SET status = '$s' WHERE status = 'queued'"
		assert_failure
		assert_output --partial whatsapp_broadcast_recipients_status_check
	done
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" 1
}

# PID is running: it exists and is not a zombie (a process that has exited
# but that init has not yet reaped: pg_ctl's postmaster is init's child).
running() {
	kill -0 "$1" 2>/dev/null || return 1
	[ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

@test "scripts/pg-tmp stop: the folder is gone and its postmaster is not running" {
	local d=$BATS_TEST_TMPDIR/cluster data home pid url p
	mkdir "$d"
	run "$WA_ROOT/scripts/pg-tmp" start "$d"
	assert_success
	url=$(cat "$d/url")
	assert_output "DATABASE_URL=$url"
	data=$(pg_datadir "$d")
	home=${data%/data}
	pid=$(head -1 "$data/postmaster.pid")
	[[ $pid =~ ^[0-9]+$ ]] || fail "postmaster.pid: $pid"
	running "$pid" || fail "postmaster $pid is not running after start"
	assert_equal "$(psql_q "SELECT 1" "$url")" 1
	# Its backends: the postmaster's children.
	kids=$(cat "/proc/$pid/task/$pid/children")
	[ -n "$kids" ] || fail "postmaster $pid has no children"
	run "$WA_ROOT/scripts/pg-tmp" stop "$d"
	assert_success
	assert_output ""
	[ ! -e "$d" ] || fail "$d is still there"
	[ ! -e "$home" ] || fail "$home is still there"
	! running "$pid" || fail "postmaster $pid still running after stop"
	for p in $kids; do
		! running "$p" || fail "postmaster child $p still running after stop"
	done
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$data"; then
			fail "a process still names $data: ${p#/proc/} $(tr '\0' ' ' <"$p/cmdline")"
		fi
	done
	run psql_q "SELECT 1" "$url"
	assert_failure
}
