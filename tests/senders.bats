#!/usr/bin/env bats
# Per-business senders: a business's own provider settings, from the
# config file (KEY.<business-id>) or, for the non-secret ones, from its
# business row (migration 0013), which wins over the file. A business with
# nothing of its own sends with the global settings. Each sender's
# requests are checked at the provider: a second test provider holds the
# businesses' own credentials and accepts no other.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

# The second provider's credentials: canaries too, never to be printed.
OWN_TOKEN=canary-own-token-Zq81
OWN_SECRET=canary-own-secret-4b2e
OWN_PNID=2093847561

setup_file() {
	bc_setup_file
	local pid=$PROVIDER_PID port=$PROVIDER_PORT url=$PROVIDER_URL log=$PROVIDER_LOG
	META_WA_ACCESS_TOKEN=$OWN_TOKEN INTERNAL_SECRET=$OWN_SECRET \
		META_WA_PHONE_NUMBER_ID=$OWN_PNID provider_start "$BATS_FILE_TMPDIR/own"
	echo "$PROVIDER_PID" >"$BATS_FILE_TMPDIR/own.pid"
	PROVIDER_PID=$pid PROVIDER_PORT=$port PROVIDER_URL=$url PROVIDER_LOG=$log
}

teardown_file() {
	PROVIDER_PID=$(cat "$BATS_FILE_TMPDIR/own.pid" 2>/dev/null)
	provider_stop
	bc_teardown_file
}

setup() {
	bc_setup
	OWN_URL=http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/own/port")
	OWN_LOG=$BATS_FILE_TMPDIR/own/requests.jsonl
	curl -sS --fail-with-body -X POST "$OWN_URL/_reset" >/dev/null
	: >"$OWN_LOG"
	CFG=$BATS_TEST_TMPDIR/wa.conf
	: >"$CFG"
	chmod 600 "$CFG"
}

teardown() {
	canary_check
	if grep -qF -e "$OWN_TOKEN" -e "$OWN_SECRET" "$BATS_FILE_TMPDIR/outputs"; then
		echo "a business's own secret was printed" >&2
		return 1
	fi
}

# sends LOG: each send request of that provider's log as
# "tenant-or-number auth", sorted.
sends() {
	jq -r 'select(.path == "/send" or (.path | endswith("/messages")))
		| "\(.tenant // .phone_number_id) \(.auth)"' "$1" | sort
}

@test "config file: a business's own Meta token and number are used for its sends; a business without falls back to the global ones" {
	own=$(bc_business meta)
	other=$(bc_business meta)
	cat >"$CFG" <<EOF
META_WA_ACCESS_TOKEN.$own=$OWN_TOKEN
META_WA_PHONE_NUMBER_ID.$own=$OWN_PNID
META_WA_BASE_URL.$own=$OWN_URL
EOF
	WA_PROVIDER=meta send_run --config "$CFG" --parallel 4 --text hi <<EOF
{"to":"+972501234501","business_id":$own}
{"to":"+972501234502","business_id":$other}
{"to":"+972501234503","business_id":$own}
{"to":"+972501234504","business_id":$other}
{"to":"+972501234505"}
EOF
	assert_success
	assert_equal "$(jq -sr 'map(.status) | unique | join(",")' <<<"$output")" sent
	# Each provider accepts only its own token and number: "ok" is proof.
	assert_equal "$(sends "$OWN_LOG")" "$OWN_PNID ok
$OWN_PNID ok"
	assert_equal "$(sends "$PROVIDER_LOG")" "$TEST_PNID ok
$TEST_PNID ok
$TEST_PNID ok"
	assert_equal "$(jq -r '.to_digits' "$OWN_LOG" | sort | tr '\n' ' ')" "972501234501 972501234503 "
}

@test "a business with a token of its own never sends with another's, even on the same provider" {
	own=$(bc_business meta)
	other=$(bc_business meta)
	# Only the token is its own: same provider, same number. The
	# provider knows the global token only, so the business's sends are
	# refused there (auth bad), and the other's are not.
	echo "META_WA_ACCESS_TOKEN.$own=$OWN_TOKEN" >"$CFG"
	send_run --config "$CFG" --text hi <<EOF
{"to":"+972501234502","business_id":$other}
{"to":"+972501234501","business_id":$own}
{"to":"+972501234503","business_id":$other}
EOF
	# A rejected token stops the run (token_rejected is fatal): the
	# business's one send went with its own token, never the global one.
	assert_equal "$status" 69
	assert_equal "$(jq -r 'select(.path | endswith("/messages")) | "\(.to_digits) \(.auth)"' "$PROVIDER_LOG")" \
		"972501234502 ok
972501234501 bad"
	assert_equal "$(jq -sr 'map(.status + ":" + (.error.code // "")) | join(",")' <<<"$output")" \
		"sent:,failed:token_rejected"
	# With its own provider it is accepted, and the global token is never
	# seen there.
	echo "META_WA_BASE_URL.$own=$OWN_URL" >>"$CFG"
	echo "META_WA_PHONE_NUMBER_ID.$own=$OWN_PNID" >>"$CFG"
	send_run --config "$CFG" --text hi --to +972501234509 --business "$own"
	assert_success
	assert_equal "$(sends "$OWN_LOG")" "$OWN_PNID ok"
}

@test "Baileys: a business's own base URL and secret (the tenant's service)" {
	own=$(bc_business baileys)
	other=$(bc_business baileys)
	cat >"$CFG" <<EOF
BAILEYS_BASE_URL.$own=$OWN_URL
INTERNAL_SECRET.$own=$OWN_SECRET
EOF
	send_run --config "$CFG" --text hi <<EOF
{"to":"+972501234501","business_id":$own}
{"to":"+972501234502","business_id":$other}
EOF
	assert_success
	assert_equal "$(sends "$OWN_LOG")" "business_$own ok"
	assert_equal "$(sends "$PROVIDER_LOG")" "business_$other ok"
}

@test "the business row's number wins over the file's; a secret is never read from the database" {
	own=$(bc_business meta)
	psql_q "UPDATE business SET meta_phone_number_id = '$OWN_PNID' WHERE id = $own"
	cat >"$CFG" <<EOF
META_WA_ACCESS_TOKEN.$own=$OWN_TOKEN
META_WA_PHONE_NUMBER_ID.$own=1111111111
META_WA_BASE_URL.$own=$OWN_URL
EOF
	send_run --config "$CFG" --text hi --to +972501234501 --business "$own"
	assert_success
	assert_equal "$(sends "$OWN_LOG")" "$OWN_PNID ok"
	# The business table has no column for a secret: the migration adds
	# the non-secret settings only.
	assert_equal "$(psql_q "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns
		WHERE table_name = 'business' AND column_name NOT IN ('id', 'name', 'whatsapp_provider')")" \
		baileys_base_url,meta_phone_number_id,whatsapp_rate,whatsapp_shard
	# A Baileys base URL from the row, the secret from the file.
	b=$(bc_business baileys)
	psql_q "UPDATE business SET baileys_base_url = '$OWN_URL' WHERE id = $b"
	echo "INTERNAL_SECRET.$b=$OWN_SECRET" >>"$CFG"
	send_run --config "$CFG" --text hi --to +972501234502 --business "$b"
	assert_success
	assert_equal "$(sends "$OWN_LOG" | grep business_)" "business_$b ok"
}

@test "whatsapp_shard n picks BAILEYS_SHARD_<n>_URL (environment or file); a shard with no URL fails that business only" {
	a=$(bc_business baileys)
	b=$(bc_business baileys)
	c=$(bc_business baileys)
	d=$(bc_business baileys)
	psql_q "UPDATE business SET whatsapp_shard = 2 WHERE id IN ($a, $c)"
	psql_q "UPDATE business SET whatsapp_shard = 5 WHERE id = $b"
	# The row's base URL wins over its shard.
	psql_q "UPDATE business SET whatsapp_shard = 5, baileys_base_url = '$PROVIDER_URL' WHERE id = $d"
	cat >"$CFG" <<EOF
INTERNAL_SECRET.$a=$OWN_SECRET
INTERNAL_SECRET.$c=$OWN_SECRET
EOF
	BAILEYS_SHARD_2_URL=$OWN_URL send_run --config "$CFG" --text hi <<EOF
{"to":"+972501234501","business_id":$a}
{"to":"+972501234502","business_id":$b}
{"to":"+972501234503","business_id":$c}
{"to":"+972501234504","business_id":$d}
EOF
	assert_failure 1
	assert_equal "$(sends "$OWN_LOG" | tr '\n' ' ')" "business_$a ok business_$c ok "
	assert_equal "$(sends "$PROVIDER_LOG")" "business_$d ok"
	assert_equal "$(jq -sr 'map(.status + ":" + (.error.code // "")) | join(",")' <<<"$output")" \
		"sent:,failed:not_configured,sent:,sent:"
	[[ "$stderr" == *"business $b: its whatsapp_shard 5 has no BAILEYS_SHARD_5_URL"* ]] || fail "$stderr"
	# From the file, too.
	echo "BAILEYS_SHARD_2_URL=$OWN_URL" >>"$CFG"
	send_run --config "$CFG" --text hi --to +972501234505 --business "$a"
	assert_success
	assert_equal "$(jq -r 'select(.to_digits == "972501234505") | .auth' "$OWN_LOG")" ok
}

@test "status --business ID asks that business's own sender" {
	own=$(bc_business meta)
	other=$(bc_business meta)
	cat >"$CFG" <<EOF
META_WA_ACCESS_TOKEN.$own=$OWN_TOKEN
META_WA_PHONE_NUMBER_ID.$own=$OWN_PNID
META_WA_BASE_URL.$own=$OWN_URL
EOF
	send_run status --config "$CFG" --business "$own"
	assert_success
	assert_equal "$(jq -r '.ready' <<<"$output")" true
	assert_equal "$(jq -r 'select(.method == "GET") | "\(.path) \(.auth)"' "$OWN_LOG")" "/v21.0/$OWN_PNID ok"
	send_run status --config "$CFG" --business "$other"
	assert_success
	assert_equal "$(jq -r 'select(.method == "GET") | "\(.path) \(.auth)"' "$PROVIDER_LOG")" "/v21.0/$TEST_PNID ok"
}

@test "--dry-run masks a business's own token and secret" {
	m=$(bc_business meta)
	b=$(bc_business baileys)
	cat >"$CFG" <<EOF
META_WA_ACCESS_TOKEN.$m=$OWN_TOKEN
INTERNAL_SECRET.$b=$OWN_SECRET
EOF
	send_run --config "$CFG" --dry-run --text hi <<EOF
{"to":"+972501234501","business_id":$m}
{"to":"+972501234502","business_id":$b}
EOF
	assert_success
	assert_equal "$(jq -r '.request.headers | (.Authorization // .["X-Internal-Secret"])' <<<"$output")" "Bearer ***
***"
}

@test "config file: KEY.<id> only for provider settings and business ids, errors name the line, never the value" {
	printf 'META_WA_ACCESS_TOKEN.x7=%s\n' "$OWN_TOKEN" >"$CFG"
	send_run --config "$CFG" --to +972501234567 --text hi
	assert_failure 78
	[[ "$stderr" == *"wa.conf:1: META_WA_ACCESS_TOKEN: '.x7' is not a business id"* ]] || fail "$stderr"
	printf '# per business\nWA_TIMEOUT.7=3\n' >"$CFG"
	send_run --config "$CFG" --to +972501234567 --text hi
	assert_failure 78
	[[ "$stderr" == *"wa.conf:2: WA_TIMEOUT cannot be set per business"* ]] || fail "$stderr"
	printf 'NO_SUCH_KEY.7=%s\n' "$OWN_SECRET" >"$CFG"
	send_run --config "$CFG" --to +972501234567 --text hi
	assert_failure 78
	[[ "$stderr" == *"wa.conf:1: unknown key 'NO_SUCH_KEY'"* ]] || fail "$stderr"
}

@test "broadcast: the pre-flight and the sends use the business's own sender; two businesses sharing a Meta number share its pace" {
	a=$(bc_business meta)
	b=$(bc_business meta)
	c=$(bc_business meta)
	# a and b send from the same number (a's from the file, b's from its
	# row); c from the global one.
	psql_q "UPDATE business SET meta_phone_number_id = '$OWN_PNID' WHERE id = $b"
	cat >"$CFG" <<EOF
META_WA_ACCESS_TOKEN.$a=$OWN_TOKEN
META_WA_PHONE_NUMBER_ID.$a=$OWN_PNID
META_WA_BASE_URL.$a=$OWN_URL
META_WA_ACCESS_TOKEN.$b=$OWN_TOKEN
META_WA_BASE_URL.$b=$OWN_URL
EOF
	ba=$(bc_numbers 10 972500000000 | bc_create --business "$a" --text Hello)
	bb=$(bc_numbers 10 972510000000 | bc_create --business "$b" --text Hello)
	bcid=$(bc_numbers 3 972520000000 | bc_create --business "$c" --text Hello)
	# Two workers at once, one per shared-number broadcast, at 10/s each:
	# one pace between them, so 20 sends take about 2 s, not 1.
	bc_bg wa --config "$CFG" run --parallel 4 --rate 10 "$ba"
	pa=$BG_PID
	bc_bg wb --config "$CFG" run --parallel 4 --rate 10 "$bb"
	pb=$BG_PID
	bc_bg_wait "$pa"
	assert_equal "$BG_RC" 0
	bc_bg_wait "$pb"
	assert_equal "$BG_RC" 0
	wb --config "$CFG" run --rate 10 "$bcid"
	assert_success
	assert_equal "$(bc_state "$ba")" "0 0 10 0 0"
	assert_equal "$(bc_state "$bb")" "0 0 10 0 0"
	assert_equal "$(bc_state "$bcid")" "0 0 3 0 0"
	# Every send of a and b at their number, with their token; the
	# pre-flight asked there too.
	assert_equal "$(sends "$OWN_LOG" | uniq -c | awk '{print $1, $2, $3}')" "20 $OWN_PNID ok"
	assert_equal "$(jq -r 'select(.method == "GET") | "\(.path) \(.auth)"' "$OWN_LOG" | sort -u)" "/v21.0/$OWN_PNID ok"
	assert_equal "$(sends "$PROVIDER_LOG" | uniq -c | awk '{print $1, $2, $3}')" "3 $TEST_PNID ok"
	# One pacing row per real sender.
	assert_equal "$(psql_q "SELECT string_agg(sender, ' ' ORDER BY sender) FROM wa_send_pacing")" \
		"meta:$TEST_PNID meta:$OWN_PNID"
	span=$(jq -s '[.[] | select(.method == "POST") | .t] | (max - min)' "$OWN_LOG")
	[ "$span" -ge 1700 ] || fail "20 sends of one number in $span ms at --rate 10 (the pace was not shared)"
	cat "$BATS_TEST_TMPDIR"/w[ab].out "$BATS_TEST_TMPDIR"/w[ab].err >>"$BATS_FILE_TMPDIR/outputs"
}
