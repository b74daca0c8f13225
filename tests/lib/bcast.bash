# Helpers for the wa-broadcast tests (owner: broadcast).
#
#   load lib/common; load lib/pg; load lib/provider; load lib/bcast  (at the top)
#   setup_file() { bc_setup_file; }   teardown_file() { bc_teardown_file; }
#   setup() { bc_setup; }             teardown() { canary_check; }
#
# One PostgreSQL cluster and one test provider per file. The migrations go
# once into a template database; each test gets a fresh database made from
# it (DATABASE_URL), so `run --all` sees only that test's broadcasts.
#
#   bc_business [PROVIDER]      add a business (baileys by default), print its id
#   bc_numbers N [FIRST]        N distinct E.164 numbers, one a line
#   bc_create ARGS...           wa-broadcast create ARGS; print the broadcast id
#   bc_new N [ARGS...]          a business and a text broadcast to N numbers
#                               (from BC_FIRST, default 972500000000);
#                               sets BID (broadcast) and BIZ (business)
#   wb ARGS...                  run wa-broadcast ARGS: $output is its
#                               stdout, $stderr its stderr (both kept for the
#                               canary check)
#   bc_col ID COLUMN            a column of the broadcast's row
#   bc_state ID                 "queued processing sent failed cancelled" rows
#   bc_consistent ID            fail unless the counters equal the rows
#   bc_delivered DIGITS         deliveries the provider made to DIGITS
#   bc_wait_sql SQL VALUE [S]   wait (bounded, S seconds, default 20) until
#                               SQL prints VALUE
#   bc_bg NAME ARGS...          start wa-broadcast ARGS in the background,
#                               stdout/stderr in $BATS_TEST_TMPDIR/NAME.out
#                               and .err; its pid in BG_PID
#   bc_bg_wait PID [S]          wait (bounded, default 30 s) for it to end;
#                               its exit status in BG_RC
#   bc_sent ID                  recipients of broadcast ID sent so far

# run --separate-stderr ($stderr apart from $output) needs bats 1.5.
bats_require_minimum_version 1.5.0

bc_setup_file() {
	pg_setup_file
	psql_q "CREATE DATABASE wa_template" "$(pg_url postgres)" >/dev/null
	wa-migrate -q --db "$(pg_url wa_template)" --dir "$WA_ROOT/migrations" >/dev/null
	provider_setup_file
}

bc_teardown_file() {
	provider_teardown_file
	pg_teardown_file
}

bc_setup() {
	local name=t${BATS_TEST_NUMBER:-0}_$RANDOM$RANDOM
	provider_setup
	psql_q "CREATE DATABASE \"$name\" TEMPLATE wa_template" "$(pg_url postgres)" >/dev/null
	DATABASE_URL=$(pg_url "$name")
	export DATABASE_URL
}

bc_business() {
	psql_q "INSERT INTO business (name, whatsapp_provider) VALUES ('shop', '${1:-baileys}') RETURNING id"
}

bc_numbers() {
	local n=$1 first=${2:-972500000000}
	seq "$first" $((first + n - 1)) | sed 's/^/+/'
}

wb() {
	run --separate-stderr wa-broadcast "$@"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
}

bc_create() {
	local out
	out=$(wa-broadcast create "$@") || [ $? -eq 1 ] || return 1
	jq -r .broadcast_id <<<"$out"
}

bc_new() {
	local n=$1
	shift
	BIZ=$(bc_business "${PROVIDER_KIND:-baileys}")
	BID=$(bc_numbers "$n" "${BC_FIRST:-972500000000}" | bc_create --business "$BIZ" --text "Hello" "$@")
	[ -n "$BID" ] && [ "$BID" != null ]
}

bc_col() {
	psql_q "SELECT $2 FROM whatsapp_broadcasts WHERE id = $1"
}

bc_state() {
	psql_q "SELECT count(*) FILTER (WHERE status = 'queued') || ' ' ||
		count(*) FILTER (WHERE status = 'processing') || ' ' ||
		count(*) FILTER (WHERE status = 'sent') || ' ' ||
		count(*) FILTER (WHERE status = 'failed') || ' ' ||
		count(*) FILTER (WHERE status = 'cancelled')
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1"
}

bc_consistent() {
	local got want
	got=$(psql_q "SELECT total_recipients || ' ' || sent_count || ' ' ||
		failed_count || ' ' || cancelled_count || ' ' || processed_count
		FROM whatsapp_broadcasts WHERE id = $1")
	want=$(psql_q "SELECT count(*) || ' ' ||
		count(*) FILTER (WHERE status IN ('sent', 'delivered')) || ' ' ||
		count(*) FILTER (WHERE status = 'failed') || ' ' ||
		count(*) FILTER (WHERE status = 'cancelled') || ' ' ||
		count(*) FILTER (WHERE status IN ('sent', 'delivered', 'failed', 'cancelled'))
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1")
	[ "$got" = "$want" ] || fail "broadcast $1: counters (total sent failed cancelled processed) $got, rows $want"
}

bc_delivered() {
	jq -s --arg d "$1" '[.[] | select(.to_digits == $d and .delivered == true)] | length' "$PROVIDER_LOG"
}

bc_wait_sql() {
	local i n=$(( ${3:-20} * 20 ))
	for ((i = 0; i < n; i++)); do
		[ "$(psql_q "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	fail "waited ${3:-20} s for [$1] to be $2, it is $(psql_q "$1")"
}

bc_bg() {
	local name=$1
	shift
	wa-broadcast "$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
	BG_PID=$!
}

bc_bg_wait() {
	local pid=$1 i n=$(( ${2:-30} * 20 ))
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid"
		fail "pid $pid still running after ${2:-30} s"
	fi
	BG_RC=0
	wait "$pid" || BG_RC=$?
	# 99 is the sanitizers' exit: show their report if the test then fails.
	if [ "$BG_RC" -eq 99 ]; then
		tail -n 60 "$BATS_TEST_TMPDIR"/*.err >&2
	fi
	cat "$BATS_TEST_TMPDIR"/*.out "$BATS_TEST_TMPDIR"/*.err >>"$BATS_FILE_TMPDIR/outputs" 2>/dev/null || true
}

bc_sent() {
	psql_q "SELECT count(*) FROM whatsapp_broadcast_recipients WHERE broadcast_id = $1 AND status = 'sent'"
}
