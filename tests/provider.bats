#!/usr/bin/env bats
# suite: serial (asserts the test provider's latency and shutdown times)
# The test provider itself (tests/provider/wa-testprovider.c): both
# contracts, the faults, the control API and the request log.  Everything
# else in the suite trusts it, so each test here checks something that
# would break if the provider did.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

# Canary secrets: they must reach neither the log nor stderr nor a reply.
SECRET=prov-canary-secret-5b0e1d
TOKEN=prov-canary-token-EAAQz7
PNID=106540352242922
J='Content-Type: application/json'

: "${WA_TESTS:=$(cd "$BATS_TEST_DIRNAME/.." && pwd)/build/release/tests}"
export WA_TESTS

# start_provider DIR [ARGS...]: run one provider with the canary secrets,
# wait (bounded) for its port file; sets SP_PID and SP_URL.
start_provider() {
	local dir=$1 i
	shift
	mkdir -p "$dir"
	rm -f "$dir/port"
	INTERNAL_SECRET=$SECRET META_WA_ACCESS_TOKEN=$TOKEN META_WA_PHONE_NUMBER_ID=$PNID \
		"$WA_TESTS/wa-testprovider" --port-file "$dir/port" --log "$dir/log" "$@" \
		>"$dir/stdout" 2>"$dir/stderr" 3>&- &
	SP_PID=$!
	for i in $(seq 1 200); do
		[ -s "$dir/port" ] && break
		kill -0 "$SP_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! [ -s "$dir/port" ]; then
		cat "$dir/stderr" >&2
		return 1
	fi
	SP_URL=http://127.0.0.1:$(cat "$dir/port")
}

# stop_provider PID DIR: SIGTERM, wait; it must exit 0 with no sanitizer
# report and without printing a secret.
stop_provider() {
	local pid=$1 dir=$2 rc=0
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ] || grep -q 'Sanitizer' "$dir/stderr"; then
		cat "$dir/stderr" >&2
		echo "provider exited $rc" >&2
		return 1
	fi
	! grep -qF -e "$SECRET" -e "$TOKEN" "$dir/stderr" "$dir/stdout"
}

setup_file() {
	start_provider "$BATS_FILE_TMPDIR/p" --seed 7 --quiet
	echo "$SP_PID" >"$BATS_FILE_TMPDIR/pid"
	export URL=$SP_URL LOG=$BATS_FILE_TMPDIR/p/log
}

teardown_file() {
	stop_provider "$(cat "$BATS_FILE_TMPDIR/pid")" "$BATS_FILE_TMPDIR/p"
}

setup() {
	curl -sS --fail-with-body -X POST "$URL/_reset" >/dev/null
	: >"$LOG"
}

# Every test: no canary secret in the log.
teardown() {
	if grep -qF -e "$SECRET" -e "$TOKEN" "$LOG"; then
		echo "a secret reached the log" >&2
		return 1
	fi
}

control() {
	curl -sS --fail-with-body -X POST -H "$J" --data "$1" "$URL/_control" >/dev/null
}

# bsend DIGITS [CURL ARGS...]: a Baileys text send; prints the HTTP code.
bsend() {
	local to=$1
	shift
	curl -sS -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$@" -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data "{\"to\":\"$to@s.whatsapp.net\",\"type\":\"text\",\"text\":\"hi\",\"tenantId\":\"business_1\",\"idempotencyKey\":\"k-$to\"}" \
		"$URL/send"
}

# msend TO [CURL ARGS...]: a Meta text send; prints the HTTP code.
msend() {
	local to=$1
	shift
	curl -sS -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$@" -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data "{\"messaging_product\":\"whatsapp\",\"to\":\"$to\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}}" \
		"$URL/v21.0/$PNID/messages"
}

body() { cat "$BATS_TEST_TMPDIR/body"; }

# log_for DIGITS: the log lines of sends to that recipient.
log_for() { grep -F "\"to_digits\":\"$1\"" "$LOG" || true; }

@test "health: 200 ok" {
	run curl -sS -w ' %{http_code}' "$URL/health"
	assert_success
	assert_output 'ok 200'
}

@test "baileys status: connected with the secret, 401 without or with a wrong one" {
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" "$URL/whatsapp/business_1/status"
	assert_output --regexp '^\{"connected":true,"canSend":true,"authPaired":true,.*"sessionState":"connected".*\} 200$'
	run curl -sS -w ' %{http_code}' "$URL/whatsapp/business_1/status"
	assert_output '{"error":"unauthorized"} 401'
	run curl -sS -w ' %{http_code}' -H 'X-Internal-Secret: wrong' "$URL/whatsapp/business_1/status"
	assert_output '{"error":"unauthorized"} 401'
	run curl -sS -w ' %{http_code}' -X POST -H "X-Internal-Secret: $SECRET" "$URL/whatsapp/business_1/start"
	assert_output '{"ok":true,"state":"started"} 200'
}

@test "baileys send: 200 with a unique 3EB0 id; 401 on a bad secret; 400s name the field" {
	run bsend 972501234567
	assert_output 200
	run body
	assert_output --regexp '^\{"ok":true,"messageId":"3EB0[0-9A-F]{16}","status":"sent","duration_ms":[0-9]+\}$'
	first=$output
	bsend 972501234567 >/dev/null
	[ "$(body)" != "$first" ] || fail "the second send got the same message id"

	run bsend 972501234567 -H 'X-Internal-Secret: wrong'
	assert_output 401
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"type":"text","text":"hi","tenantId":"business_1"}' "$URL/send"
	assert_output '{"error":"Missing required field: to"} 400'
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"972501234567@s.whatsapp.net","type":"text","text":"hi"}' "$URL/send"
	assert_output '{"error":"Missing tenantId"} 400'
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"972501234567","type":"text","text":"hi","tenantId":"business_1"}' "$URL/send"
	assert_output --regexp ' 400$'
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"120363@g.us","type":"text","text":"hi","tenantId":"business_1"}' "$URL/send"
	assert_output --regexp ' 400$'
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"972501234567@s.whatsapp.net","type":"image","media":{"mimetype":"image/jpeg"},"tenantId":"business_1"}' "$URL/send"
	assert_output '{"error":"Missing required field: media.data"} 400'
	run curl -sS -o /dev/null -w '%{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"12345@lid","type":"image","media":{"data":"aGVsbG8=","mimetype":"image/jpeg"},"tenantId":"business_1"}' "$URL/send"
	assert_output 200
}

@test "baileys: a waiting_qr tenant reports canSend false and /send answers 503" {
	control '{"baileys_state":{"business_2":"waiting_qr"}}'
	run curl -sS -H "X-Internal-Secret: $SECRET" "$URL/whatsapp/business_2/status"
	assert_output --partial '"connected":false,"canSend":false'
	assert_output --partial '"hasQR":true'
	assert_output --partial '"sessionState":"waiting_qr"'
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"972501234567@s.whatsapp.net","type":"text","text":"hi","tenantId":"business_2"}' "$URL/send"
	assert_output '{"error":"WhatsApp not connected"} 503'
	# Other tenants still send.
	run bsend 972501234567
	assert_output 200
}

@test "meta send: 200 with contacts and a wamid; 190 on a bad token; 100 on a JID or + in to" {
	run msend 972501234567
	assert_output 200
	run body
	assert_output --regexp '^\{"messaging_product":"whatsapp","contacts":\[\{"input":"972501234567","wa_id":"972501234567"\}\],"messages":\[\{"id":"wamid\.[A-Za-z0-9]+"\}\]\}$'

	run msend 972501234567 -H 'Authorization: Bearer wrong'
	assert_output 401
	run body
	assert_output --regexp '"code":190,'
	assert_output --partial '"type":"OAuthException"'
	run curl -sS -o /dev/null -w '%{http_code}' -H "$J" --data '{}' "$URL/v21.0/$PNID/messages"
	assert_output 401

	run msend 972501234567@s.whatsapp.net
	assert_output 400
	run body
	assert_output --regexp '"code":100,'
	run msend +972501234567
	assert_output 400

	run curl -sS -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/v21.0/$PNID"
	assert_output "{\"verified_name\":\"Test Business\",\"display_phone_number\":\"+1 555 0100\",\"quality_rating\":\"GREEN\",\"id\":\"$PNID\"} 200"
	run curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$URL/v21.0/$PNID"
	assert_output 401
}

@test "meta send: template and media by link are accepted, a 4097-char body is not" {
	run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data '{"messaging_product":"whatsapp","to":"972501234567","type":"template","template":{"name":"promo","language":{"code":"he"}}}' \
		"$URL/v21.0/$PNID/messages"
	assert_output 200
	run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data '{"messaging_product":"whatsapp","to":"972501234567","type":"template","template":{"name":"promo"}}' \
		"$URL/v21.0/$PNID/messages"
	assert_output 400
	run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data '{"messaging_product":"whatsapp","to":"972501234567","type":"image","image":{"link":"https://example.invalid/a.jpg"}}' \
		"$URL/v21.0/$PNID/messages"
	assert_output 200
	long=$(printf 'x%.0s' $(seq 1 4097))
	run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data "{\"messaging_product\":\"whatsapp\",\"to\":\"972501234567\",\"type\":\"text\",\"text\":{\"body\":\"$long\"}}" \
		"$URL/v21.0/$PNID/messages"
	assert_output 400
}

@test "rule with times=2: the first two sends to that recipient fail, the third succeeds" {
	control '{"rules":[{"to":"+972501111111","fault":"http_500","times":2}]}'
	run bsend 972501111111
	assert_output 500
	run bsend 972502222222
	assert_output 200
	run bsend 972501111111
	assert_output 500
	run bsend 972501111111
	assert_output 200
	run log_for 972501111111
	assert_line --index 0 --regexp '"attempt":1,.*"status":500,"fault":"http_500",.*"delivered":false'
	assert_line --index 1 --regexp '"attempt":2,.*"status":500,"fault":"http_500",.*"delivered":false'
	assert_line --index 2 --regexp '"attempt":3,.*"status":200,"fault":null,.*"delivered":true'
	run curl -sS "$URL/_control"
	assert_output --partial '"rules":[{"to":"972501111111","fault":"http_500","times":2,"used":2}]'
}

@test "after: sends past the first N get the fault; the pre-flight shows it too" {
	control '{"after":2,"after_fault":"not_connected"}'
	run curl -sS -H "X-Internal-Secret: $SECRET" "$URL/whatsapp/business_1/status"
	assert_output --partial '"canSend":true'
	codes=$(for d in 972500000001 972500000002 972500000003 972500000004; do bsend $d; echo -n ' '; done)
	assert_equal "$codes" '200 200 503 503 '
	run curl -sS -H "X-Internal-Secret: $SECRET" "$URL/whatsapp/business_1/status"
	assert_output --partial '"canSend":false'
	run msend 972500000005
	assert_output 401
	run body
	assert_output --partial '"code":190'
	run curl -sS "$URL/_stats"
	assert_output --partial '"sends":5,"delivered":2,'
}

@test "http_429 carries Retry-After (retry_after), Meta body code 130429" {
	control '{"retry_after":7,"rules":[{"to":"972501234567","fault":"http_429"}]}'
	run curl -sS -i -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data '{"messaging_product":"whatsapp","to":"972501234567","type":"text","text":{"body":"hi"}}' \
		"$URL/v21.0/$PNID/messages"
	assert_line --index 0 --regexp '^HTTP/1\.1 429 '
	assert_line --regexp '^Retry-After: 7'
	assert_output --partial '"code":130429'
	run curl -sS -i -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"972501234567@s.whatsapp.net","type":"text","text":"hi","tenantId":"business_1"}' "$URL/send"
	assert_line --index 0 --regexp '^HTTP/1\.1 429 '
	assert_line --regexp '^Retry-After: 7'
}

@test "meta:<code> answers that code with Meta's HTTP status" {
	control '{"rules":[{"to":"972500000001","fault":"meta:131026"},{"to":"972500000002","fault":"meta:10"},{"to":"972500000003","fault":"meta:80007"},{"to":"972500000004","fault":"token_rejected"}]}'
	run msend 972500000001
	assert_output 400
	run body
	assert_output --partial '"code":131026'
	run msend 972500000002
	assert_output 403
	run msend 972500000003
	assert_output 429
	run msend 972500000004
	assert_output 401
	run bsend 972500000001
	assert_output 400
	run bsend 972500000004
	assert_output 401
}

@test "drop: the connection closes with no reply (curl 52), counted as delivered" {
	control '{"rules":[{"to":"972503333333","fault":"drop","times":1}]}'
	run bsend 972503333333
	assert_equal "$status" 52
	run bsend 972503333333
	assert_output 200
	run log_for 972503333333
	assert_line --index 0 --regexp '"status":null,"fault":"drop",.*"delivered":true,"message_id":null'
	assert_line --index 1 --regexp '"status":200,.*"delivered":true'
	run curl -sS "$URL/_stats"
	assert_output --partial '"duplicates":1'
}

@test "timeout: no answer (curl --max-time 1 exits 28); other requests are not blocked" {
	control '{"rules":[{"to":"972504444444","fault":"timeout"}]}'
	curl -sS -o /dev/null --max-time 3 -H "X-Internal-Secret: $SECRET" -H "$J" \
		--data '{"to":"972504444444@s.whatsapp.net","type":"text","text":"hi","tenantId":"business_1"}' \
		"$URL/send" 2>/dev/null 3>&- &
	held=$!
	# While that one is held, the server answers others at once.
	run curl -sS --max-time 1 "$URL/health"
	assert_output ok
	run msend 972505555555 --max-time 1
	assert_output 200
	run bsend 972504444444 --max-time 1
	assert_equal "$status" 28
	rc=0
	wait "$held" || rc=$?
	assert_equal "$rc" 28
	run log_for 972504444444
	assert_line --index 0 --regexp '"status":null,"fault":"timeout",.*"delivered":true'
}

@test "rates: the same seed gives the same choice for the same recipients" {
	run_rates() {
		curl -sS -X POST "$URL/_reset" >/dev/null
		control '{"rates":{"http_500":0.5}}'
		for i in $(seq 10 29); do bsend 9725000000$i; echo -n ' '; done
	}
	a=$(run_rates)
	b=$(run_rates)
	assert_equal "$a" "$b"
	[[ $a == *500* && $a == *200* ]] || fail "rate 0.5 over 20 sends gave: $a"
	control '{"rates":{"http_500":0.5},"seed":8}'
	c=$(for i in $(seq 10 29); do bsend 9725000000$i; echo -n ' '; done)
	# Attempt 2 for each recipient, another seed: a different pattern.
	[ "$c" != "$a" ] || fail "seed and attempt did not change the draw"
}

@test "latency_ms delays each answer without serialising connections" {
	control '{"latency_ms":400}'
	start=$(date +%s%N)
	for i in 1 2 3 4 5 6; do curl -sS -o /dev/null "$URL/health" 3>&- & done
	wait
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$ms" -ge 400 ] || fail "6 requests with latency 400 took ${ms}ms"
	[ "$ms" -lt 1600 ] || fail "6 parallel requests took ${ms}ms: serialised?"
}

@test "control: a bad config is refused and the old one kept; stats count duplicates" {
	control '{"latency_ms":5}'
	run curl -sS -w ' %{http_code}' -X POST --data '{"rules":[{"to":"1","fault":"no_such"}]}' "$URL/_control"
	assert_output --regexp ' 400$'
	run curl -sS -w ' %{http_code}' -X POST --data '{"rates":{"http_500":0.8,"drop":0.5}}' "$URL/_control"
	assert_output --regexp ' 400$'
	run curl -sS "$URL/_control"
	assert_output --partial '"latency_ms":5,'
	bsend 972506666666 >/dev/null
	bsend 972506666666 >/dev/null
	bsend 972507777777 >/dev/null
	run curl -sS "$URL/_stats"
	assert_output --partial '"sends":3,"delivered":3,"recipients":2,"max_per_recipient":2,"duplicates":1'
}

@test "log: one line per request, delivered right, media shortened, secrets never written" {
	data=$(head -c 3000 /dev/zero | base64 -w0)
	curl -sS -o /dev/null "$URL/health"
	bsend 972508888888 >/dev/null
	bsend 972508888888 -H 'X-Internal-Secret: wrong' >/dev/null
	msend 972509999999 -H 'Authorization: Bearer wrong' >/dev/null
	curl -sS -o /dev/null -H "X-Internal-Secret: $SECRET" -H "$J" --data \
		"{\"to\":\"972508888888@s.whatsapp.net\",\"type\":\"image\",\"media\":{\"data\":\"$data\",\"mimetype\":\"image/png\"},\"caption\":\"$SECRET\",\"tenantId\":\"business_1\"}" \
		"$URL/send"
	run cat "$LOG"
	assert_equal "${#lines[@]}" 5
	assert_line --index 0 --regexp '^\{"seq":[0-9]+,"t":[0-9]+,"method":"GET","path":"/health","api":"health",'
	assert_line --index 1 --regexp '"api":"baileys","tenant":"business_1",.*"to":"972508888888@s.whatsapp.net","to_digits":"972508888888","attempt":1,"auth":"ok","content_type":"application/json","expect":null,"idempotency_key":"k-972508888888","status":200,.*"delivered":true,"message_id":"3EB0'
	assert_line --index 2 --regexp '"attempt":2,"auth":"bad",.*"status":401,.*"delivered":false'
	assert_line --index 3 --regexp "\"api\":\"meta\",.*\"phone_number_id\":\"$PNID\",.*\"auth\":\"bad\",.*\"status\":401,.*\"delivered\":false"
	assert_line --index 4 --regexp '"data":"<4000 bytes>"'
	assert_line --index 4 --partial '"caption":"<redacted INTERNAL_SECRET>"'
	refute_output --partial "$SECRET"
	refute_output --partial "$TOKEN"
}

@test "a request body over 150 MiB is refused with 413" {
	run curl -sS -w ' %{http_code}' -H "X-Internal-Secret: $SECRET" -H "$J" \
		-H 'Content-Length: 157286401' --data 'x' --max-time 5 "$URL/send"
	assert_output '{"error":"Payload too large"} 413'
}

@test "baileys_body_limit: over it a Baileys POST gets express's 413 HTML page and nothing is sent; off by default; --baileys-body-limit" {
	# 100 bytes of text make a body of 184: under 200, over 150
	text=$(printf '%0100d' 0)
	b="{\"to\":\"972501234567@s.whatsapp.net\",\"type\":\"text\",\"text\":\"$text\",\"tenantId\":\"business_1\"}"
	post() { curl -sS -o "$BATS_TEST_TMPDIR/page" -w '%{http_code} %{content_type}' -H "X-Internal-Secret: $SECRET" -H "$J" --data "$b" "$1/send"; }
	assert_equal "$(post "$URL")" "200 application/json"
	control '{"baileys_body_limit":150}'
	run curl -sS "$URL/_control"
	assert_output --partial '"baileys_body_limit":150'
	assert_equal "$(post "$URL")" "413 text/html; charset=utf-8"
	grep -q '^<!DOCTYPE html>' "$BATS_TEST_TMPDIR/page"
	grep -q '<pre>PayloadTooLargeError: request entity too large' "$BATS_TEST_TMPDIR/page"
	# Meta's routes have no such limit
	run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "$J" \
		--data "{\"messaging_product\":\"whatsapp\",\"to\":\"972501234567\",\"type\":\"text\",\"text\":{\"body\":\"$text\"}}" \
		"$URL/v21.0/$PNID/messages"
	assert_output 200
	control '{"baileys_body_limit":200}'
	assert_equal "$(post "$URL")" "200 application/json"
	# one send went out under each limit, none over it
	run curl -sS "$URL/_stats"
	assert_output --partial '"delivered":3,'
	assert_equal "$(jq -r 'select(.path == "/send") | .status' "$LOG" | paste -sd' ')" "200 413 200"
	# the flag sets it for the process (a /_reset keeps it)
	start_provider "$BATS_TEST_TMPDIR/l" --baileys-body-limit 150
	pid=$SP_PID
	curl -sS -X POST "$SP_URL/_reset" >/dev/null
	code=$(post "$SP_URL")
	stop_provider "$pid" "$BATS_TEST_TMPDIR/l"
	assert_equal "$code" "413 text/html; charset=utf-8"
	run timeout 10 "$WA_TESTS/wa-testprovider" --baileys-body-limit x
	assert_equal "$status" 64
}

@test "command line: --fault flags, loopback only, usage errors exit 64" {
	start_provider "$BATS_TEST_TMPDIR/q" --fault 'http_500@972501234567x1' --fault 'not_connected+2'
	pid=$SP_PID
	u=$SP_URL
	codes=$(for d in 972501234567 972501234567 972500000001 972500000002; do
		curl -sS -o /dev/null -w '%{http_code} ' -H "X-Internal-Secret: $SECRET" -H "$J" \
			--data "{\"to\":\"$d@s.whatsapp.net\",\"type\":\"text\",\"text\":\"hi\",\"tenantId\":\"business_1\"}" "$u/send"
	done)
	stop_provider "$pid" "$BATS_TEST_TMPDIR/q"
	# 1st: the rule; 2nd: rule used up; 3rd: past "after 2"; 4th likewise.
	assert_equal "$codes" '500 200 503 503 '
	grep -qx 'port=[0-9]*' "$BATS_TEST_TMPDIR/q/stderr" || fail "no port= line on stderr"

	run timeout 10 "$WA_TESTS/wa-testprovider" --bind 0.0.0.0
	assert_equal "$status" 64
	assert_output --partial 'not a loopback address'
	run timeout 10 "$WA_TESTS/wa-testprovider" --fault nonsense
	assert_equal "$status" 64
	run timeout 10 "$WA_TESTS/wa-testprovider" --fault 'http_500:1.5'
	assert_equal "$status" 64
}

@test "SIGTERM ends the server within a second even while requests are held" {
	start_provider "$BATS_TEST_TMPDIR/s" --fault timeout
	pid=$SP_PID
	for d in 972500000001 972500000002 972500000003; do
		curl -sS -o /dev/null -H "X-Internal-Secret: $SECRET" -H "$J" --max-time 20 \
			--data "{\"to\":\"$d@s.whatsapp.net\",\"type\":\"text\",\"text\":\"hi\",\"tenantId\":\"business_1\"}" \
			"$SP_URL/send" 2>/dev/null 3>&- &
	done
	# Bounded wait until all three are held (logged before the hold).
	for i in $(seq 1 100); do
		[ "$(grep -c '"fault":"timeout"' "$BATS_TEST_TMPDIR/s/log" 2>/dev/null)" = 3 ] && break
		sleep 0.05
	done
	assert_equal "$(grep -c '"fault":"timeout"' "$BATS_TEST_TMPDIR/s/log")" 3
	start=$(date +%s%N)
	stop_provider "$pid" "$BATS_TEST_TMPDIR/s"
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	wait
	[ "$ms" -lt 1000 ] || fail "shutdown took ${ms}ms"
	[ ! -e "$BATS_TEST_TMPDIR/s/port" ] || fail "the port file was left behind"
}
