#!/usr/bin/env bats
# wa-send: requests, records, configuration, dry run, pre-flight.
# Everything against the real test provider (tests/lib/provider.bash).

setup_file() { load lib/common; load lib/provider; provider_setup_file; }
teardown_file() { load lib/common; load lib/provider; provider_teardown_file; }
setup() { load lib/common; load lib/provider; provider_setup; }
teardown() { canary_check; }

IL=972501234567
IL2=972521234567

# --- the exact requests ------------------------------------------------------

@test "baileys: POST /send with the JID, tenant, secret and idempotency key" {
	send_run --business 4 <<<'{"to":"+972501234567","text":"Shalom","idempotency_key":"k-1"}'
	assert_success
	[ "$(provider_count)" -eq 1 ]
	req=$(provider_sends)
	assert_equal "$(jq -r .method <<<"$req") $(jq -r .path <<<"$req")" "POST /send"
	assert_equal "$(jq -r .auth <<<"$req")" ok
	assert_equal "$(jq -r .content_type <<<"$req")" application/json
	assert_equal "$(jq -c .body <<<"$req")" \
		'{"to":"972501234567@s.whatsapp.net","type":"text","text":"Shalom","idempotencyKey":"k-1","tenantId":"business_4"}'
	# the record: input fields first, then the result
	assert_equal "$(jq -c 'del(.message_id, .duration_ms)' <<<"$output")" \
		'{"to":"+972501234567","text":"Shalom","idempotency_key":"k-1","phone":"+972501234567","jid":"972501234567@s.whatsapp.net","region":"IL","valid":true,"source":"to","status":"sent","provider":"baileys","attempts":1}'
	assert_equal "$(jq -r .message_id <<<"$output")" "$(jq -r .message_id <<<"$req")"
	[ "$(jq -r .duration_ms <<<"$output")" -ge 0 ]
}

@test "result fields take the place of the record's own; an old error goes when sent" {
	send_run --business 1 <<<'{"a":1,"status":"queued","jid":"972501234567@s.whatsapp.net","error":{"x":1},"attempts":7,"text":"hi","status":"dup"}'
	assert_success
	# Written as it stands (not re-serialized by jq): same place, once.
	assert_equal "$(sed -E 's/"message_id":"[^"]+"/"message_id":"M"/; s/"duration_ms":[0-9]+/"duration_ms":0/' <<<"$output")" \
		'{"a":1,"status":"sent","jid":"972501234567@s.whatsapp.net","attempts":1,"text":"hi","provider":"baileys","message_id":"M","duration_ms":0}'
	provider_control '{"rules":[{"to":"*","fault":"http_400"}]}'
	send_run --business 1 <<<'{"jid":"972501234567@s.whatsapp.net","text":"hi","provider":"x","error":null}'
	assert_failure 1
	assert_equal "$(jq -r 'keys_unsorted | join(" ")' <<<"$output")" \
		"jid text provider error status message_id attempts duration_ms"
	assert_equal "$(jq -r '[.provider, .error.class, .status] | join(" ")' <<<"$output")" "baileys permanent failed"
}

@test "meta: POST /{version}/{id}/messages with digits, never a JID, and the token" {
	send_run --provider meta <<<'{"jid":"972501234567@s.whatsapp.net","text":"Hi"}'
	assert_success
	req=$(provider_sends)
	assert_equal "$(jq -r .path <<<"$req")" "/v21.0/$TEST_PNID/messages"
	assert_equal "$(jq -r .auth <<<"$req")" ok
	assert_equal "$(jq -c .body <<<"$req")" \
		'{"messaging_product":"whatsapp","recipient_type":"individual","to":"972501234567","type":"text","text":{"body":"Hi"}}'
	assert_equal "$(jq -r '.provider + " " + .status' <<<"$output")" "meta sent"
	[[ "$(jq -r .message_id <<<"$output")" == wamid.* ]]
}

@test "meta: META_WA_API_VERSION picks the path" {
	META_WA_API_VERSION=v19.0 send_run --provider meta --to +972501234567 --text x
	assert_success
	assert_equal "$(provider_sends | jq -r .path)" "/v19.0/$TEST_PNID/messages"
}

@test "meta: template and media-by-link bodies" {
	send_run --provider meta --template '{"name":"promo","language":"he","components":[{"type":"body","parameters":[{"type":"text","text":"{{name}}"}]}]}' <<'EOF'
{"to":"+972501234567","name":"Dana"}
{"to":"+972521234567","media":{"type":"image","url":"https://example.com/a.jpg","caption":"Look {{name}}"},"name":"Avi"}
EOF
	assert_success
	assert_equal "$(provider_sends $IL | jq -c .body.template)" \
		'{"name":"promo","language":{"code":"he"},"components":[{"type":"body","parameters":[{"type":"text","text":"Dana"}]}]}'
	assert_equal "$(provider_sends $IL2 | jq -c '[.body.type, .body.image]')" \
		'["image",{"link":"https://example.com/a.jpg","caption":"Look Avi"}]'
}

@test "baileys: media from a path goes as base64 with its mimetype and name" {
	printf 'GIF89a-tiny-picture' >"$BATS_TEST_TMPDIR/pic.gif"
	send_run --business 1 --to +972501234567 --media "{\"type\":\"image\",\"path\":\"$BATS_TEST_TMPDIR/pic.gif\",\"caption\":\"c\"}"
	assert_success
	body=$(provider_sends | jq -c .body)
	assert_equal "$(jq -r .type <<<"$body") $(jq -r .caption <<<"$body")" "image c"
	assert_equal "$(jq -r .media.data <<<"$body")" "$(base64 -w0 "$BATS_TEST_TMPDIR/pic.gif")"
	assert_equal "$(jq -r '.media.mimetype + " " + .media.filename' <<<"$body")" "image/gif pic.gif"
}

@test "baileys: a 2 MB media body goes without waiting for 100-continue" {
	head -c 2000000 /dev/urandom >"$BATS_TEST_TMPDIR/big.png"
	# a service whose express.json limit was raised (the default is 100 kB)
	export WA_BAILEYS_MAX_BODY=0
	send_run --business 1 --to +972501234567 --media "{\"type\":\"image\",\"path\":\"$BATS_TEST_TMPDIR/big.png\"}"
	assert_success
	# libcurl would add "Expect: 100-continue" to a body over 1 MB.
	assert_equal "$(provider_sends | jq -r '.expect')" null
	assert_equal "$(jq -r .status <<<"$output")" sent
}

@test "media that cannot go: too large, a URL to Baileys, a path to Meta: permanent, no HTTP" {
	truncate -s 17M "$BATS_TEST_TMPDIR/big.jpg"
	truncate -s 17M "$BATS_TEST_TMPDIR/big.pdf"
	# the caps, not the service's body limit (raised here)
	export WA_BAILEYS_MAX_BODY=0
	send_run --business 1 <<EOF
{"to":"+972501234567","media":{"type":"image","path":"$BATS_TEST_TMPDIR/big.jpg"}}
{"to":"+972501234567","media":{"type":"image","url":"https://example.com/a.jpg"}}
{"to":"+972501234567","media":{"type":"image","path":"$BATS_TEST_TMPDIR/missing.jpg"}}
{"to":"+972501234567","media":{"type":"document","path":"$BATS_TEST_TMPDIR/big.pdf"}}
EOF
	assert_failure 1
	assert_equal "$(jq -r '.error.code + " " + .error.class' <<<"$output" | head -3 | paste -sd,)" \
		"media_too_large permanent,unsupported permanent,media_unreadable permanent"
	# a 17 MB document is under the 100 MB cap
	assert_equal "$(sed -n 4p <<<"$output" | jq -r .status)" sent
	[ "$(provider_count)" -eq 1 ]
	send_run --provider meta --to +972501234567 --media "{\"type\":\"image\",\"path\":\"$BATS_TEST_TMPDIR/big.jpg\"}"
	assert_failure 1
	assert_equal "$(jq -r .error.code <<<"$output")" unsupported
	[ "$(provider_count)" -eq 1 ]
}

@test "@lid: Baileys gets the JID; Meta is a permanent failure without any HTTP" {
	send_run --business 2 --to 123456789012345@lid --text hi
	assert_success
	assert_equal "$(provider_sends | jq -r .body.to)" 123456789012345@lid
	send_run --provider meta --to 123456789012345@lid --text hi
	assert_failure 1
	assert_equal "$(jq -r '.status + " " + .error.code + " " + .error.class + " " + (.attempts|tostring)' <<<"$output")" \
		"failed unsupported_jid permanent 0"
	[ "$(provider_count)" -eq 1 ]
	[[ "$stderr" == *"wa-send: error: --to:1: "*"unsupported_jid (permanent)"* ]]
}

@test "records without jid are normalized exactly as wa-normalize does" {
	printf '%s\n' '{"to":"050-123-4567"}' '{"phone":"+44 20 7946 0958"}' '0521234567' >"$BATS_TEST_TMPDIR/in"
	run wa-normalize --region IL "$BATS_TEST_TMPDIR/in"
	want=$(jq -c '{phone,jid,region,valid,source}' <<<"$output")
	send_run --region IL --business 1 --text hi "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(jq -c '{phone,jid,region,valid,source}' <<<"$output")" "$want"
	assert_equal "$(provider_sends | jq -r .body.to | paste -sd,)" \
		"972501234567@s.whatsapp.net,442079460958@s.whatsapp.net,972521234567@s.whatsapp.net"
}

@test "bad numbers fail with their code and are not sent; the run goes on" {
	send_run --business 1 --text hi <<'EOF'
{"to":"123"}
{"to":"120363000000000000@g.us"}
{"to": broken
{"to":"+972501234567"}
EOF
	assert_failure 1
	assert_equal "$(jq -r '.error.code // .status' <<<"$output" | paste -sd,)" \
		"invalid_phone,unsupported_jid,bad_json,sent"
	assert_equal "$(jq -r '.error.class // empty' <<<"$output" | sort -u)" permanent
	[ "$(provider_count)" -eq 1 ]
	[ "$(grep -c 'wa-send: error: <stdin>:' <<<"$stderr")" -eq 3 ]
}

@test "{{field}}: replaced from the record; a missing field fails the record" {
	send_run --business 1 --text 'Shalom {{name}}, order {{ order }} {{1}}' <<'EOF'
{"to":"+972501234567","name":"Dana","order":42}
{"to":"+972521234567"}
EOF
	assert_failure 1
	assert_equal "$(provider_sends | jq -r .body.text)" "Shalom Dana, order 42 {{1}}"
	assert_equal "$(sed -n 2p <<<"$output" | jq -r '.error.code + " " + .error.class')" "missing_field permanent"
	[[ "$(sed -n 2p <<<"$output" | jq -r .error.message)" == *"{{name}}"* ]]
	[ "$(provider_count)" -eq 1 ]
}

@test "a record's own text, template, business_id win over the options" {
	send_run --business 1 --text default <<'EOF'
{"to":"+972501234567","text":"own","business_id":7}
{"to":"+972521234567"}
EOF
	assert_success
	assert_equal "$(provider_sends $IL | jq -r '.body.text + " " + .tenant')" "own business_7"
	assert_equal "$(provider_sends $IL2 | jq -r '.body.text + " " + .tenant')" "default business_1"
}

@test "records that arrive failed pass through untouched and are not sent" {
	line='{"to":"+972501234567","status":"failed","error":{"code":"invalid_phone","message":"x"},"z":1}'
	send_run --business 1 --text hi <<<"$line"
	assert_failure 1
	assert_equal "$output" "$line"
	[ "$(provider_count)" -eq 0 ]
}

@test "baileys without a business is a permanent missing_business" {
	send_run --to +972501234567 --text hi
	assert_failure 1
	assert_equal "$(jq -r .error.code <<<"$output")" missing_business
	[ "$(provider_count)" -eq 0 ]
}

@test "meta: text over 4096 characters fails before any HTTP" {
	long=$(head -c 4097 /dev/zero | tr '\0' 'a')
	send_run --provider meta --to +972501234567 --text "$long"
	assert_failure 1
	assert_equal "$(jq -r .error.code <<<"$output")" text_too_long
	[ "$(provider_count)" -eq 0 ]
}

@test "-v: the log lines operators grep for" {
	send_run -v --business 1 --context broadcast --to +972501234567 --text hi
	assert_success
	mid=$(jq -r .message_id <<<"$output")
	assert_equal "$stderr" "[WA-SEND-SERVICE] business_id=1 to=+972501234567 → jid=972501234567@s.whatsapp.net source=to context=broadcast
[WA_SEND] to=972501234567 status=sent message_id=$mid attempts=1"
}

@test "results stream: each is written before the next input arrives" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	wa-send --business 1 --text hi <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	exec 4>"$BATS_TEST_TMPDIR/in"
	echo '{"to":"+972501234567"}' >&4
	for i in $(seq 1 100); do
		[ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -ge 1 ] && break
		sleep 0.05
	done
	assert_equal "$(jq -r .status "$BATS_TEST_TMPDIR/out")" sent
	echo '{"to":"+972521234567"}' >&4
	exec 4>&-
	wait "$pid"
	assert_equal "$(jq -r .status "$BATS_TEST_TMPDIR/out" | paste -sd,)" sent,sent
}

# --- dry run -------------------------------------------------------------------

@test "--dry-run: the request printed with secrets masked, nothing sent" {
	send_run --dry-run --business 3 --to +972501234567 --text hi
	assert_success
	assert_equal "$(jq -c '.request | del(.body.idempotencyKey)' <<<"$output")" \
		"{\"method\":\"POST\",\"url\":\"$PROVIDER_URL/send\",\"headers\":{\"Content-Type\":\"application/json\",\"X-Internal-Secret\":\"***\"},\"body\":{\"to\":\"972501234567@s.whatsapp.net\",\"type\":\"text\",\"text\":\"hi\",\"tenantId\":\"business_3\"}}"
	# the key made for a message without one is a version 4 UUID
	assert_regex "$(jq -r .request.body.idempotencyKey <<<"$output")" \
		'^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
	send_run --dry-run --provider meta --to +972501234567 --text hi
	assert_success
	assert_equal "$(jq -r '.request.headers.Authorization' <<<"$output")" "Bearer ***"
	assert_equal "$(jq -r '.request.body.to' <<<"$output")" "972501234567"
	[ "$(provider_count)" -eq 0 ]
	[ "$(wc -l <"$PROVIDER_LOG")" -eq 0 ]
}

# --- configuration -------------------------------------------------------------

@test "config file: KEY=VALUE lines override the environment" {
	cfg=$BATS_TEST_TMPDIR/wa.conf
	cat >"$cfg" <<EOF
# the test provider, through the file
export BAILEYS_BASE_URL="$PROVIDER_URL"

WA_PROVIDER = meta
META_WA_API_VERSION='v20.0'
EOF
	chmod 600 "$cfg"
	BAILEYS_BASE_URL=http://127.0.0.1:$(closed_port) send_run --config "$cfg" --to +972501234567 --text hi
	assert_success
	assert_equal "$(provider_sends | jq -r .path)" "/v20.0/$TEST_PNID/messages"
	WA_CONFIG=$cfg send_run --provider baileys --business 1 --to +972501234567 --text hi
	assert_success
	[ "$(provider_count)" -eq 2 ]
}

@test "config file readable by group or others is refused, exit 78" {
	cfg=$BATS_TEST_TMPDIR/wa.conf
	echo "INTERNAL_SECRET=$CANARY_SECRET" >"$cfg"
	chmod 644 "$cfg"
	send_run --config "$cfg" --to +972501234567 --text hi
	assert_failure 78
	[[ "$stderr" == *"wa-send: error: $cfg: permissions 0644 are too open"* ]]
	chmod 640 "$cfg"
	WA_CONFIG=$cfg send_run --to +972501234567 --text hi
	assert_failure 78
	[ "$(provider_count)" -eq 0 ]
}

@test "config file: unknown keys and broken lines are errors with the line, never the value" {
	cfg=$BATS_TEST_TMPDIR/wa.conf
	printf 'META_WA_ACCESS_TOKEN="%s\n' "$CANARY_TOKEN" >"$cfg"
	chmod 600 "$cfg"
	send_run --config "$cfg" --to +972501234567 --text hi
	assert_failure 78
	assert_equal "$stderr" "wa-send: error: $cfg:1: META_WA_ACCESS_TOKEN: unbalanced quotes"
	echo 'BAILYES_BASE_URL=http://x' >"$cfg"
	send_run --config "$cfg" --to +972501234567 --text hi
	assert_failure 78
	assert_equal "$stderr" "wa-send: error: $cfg:1: unknown key 'BAILYES_BASE_URL'"
	send_run --config "$BATS_TEST_TMPDIR/none" --to +972501234567 --text hi
	assert_failure 78
}

@test "secrets never come from the command line" {
	send_run --token x --to +972501234567 --text hi
	assert_failure 64
	send_run --help
	refute_output --regexp -- '--[a-z-]*(token|secret|password|insecure)'
	refute_output --partial -- "-k,"
}

@test "a bad WA_PROVIDER or option value is refused before anything is sent" {
	WA_PROVIDER=twilio send_run --to +972501234567 --text hi
	assert_failure 78
	send_run --provider twilio --to +972501234567 --text hi
	assert_failure 64
	send_run --parallel 0 --to +972501234567 --text hi
	assert_failure 64
	send_run --to +972501234567 --text a --template '{}'
	assert_failure 64
	[ "$(provider_count)" -eq 0 ]
}

@test "TLS: a certificate nobody vouches for is refused, fatally; nothing turns that off" {
	cd "$BATS_TEST_TMPDIR"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem \
		-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
	port=$(closed_port)
	openssl s_server -accept "127.0.0.1:$port" -cert cert.pem -key key.pem -www -quiet \
		</dev/null >/dev/null 2>&1 3>&- &
	pid=$!
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.05
	done
	BAILEYS_BASE_URL=https://127.0.0.1:$port send_run --business 1 --to +972501234567 --text hi
	first=$status
	# what turns verification off elsewhere changes nothing here
	BAILEYS_BASE_URL=https://127.0.0.1:$port CURL_INSECURE=1 GIT_SSL_NO_VERIFY=1 \
		PYTHONHTTPSVERIFY=0 NODE_TLS_REJECT_UNAUTHORIZED=0 WA_INSECURE=1 \
		send_run --business 1 --to +972501234567 --text hi
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	assert_equal "$first $status" "69 69"
	assert_equal "$(jq -r '.error.code + " " + .error.class' <<<"$output")" "tls_error fatal"
	send_run --insecure --to +972501234567 --text hi
	assert_failure 64
	send_run -k --to +972501234567 --text hi
	assert_failure 64
}

# --- pre-flight ------------------------------------------------------------------

@test "status: baileys ready exits 0 with the service's answer" {
	send_run status --business 4
	assert_success
	assert_equal "$(jq -c '{provider,business_id,ready,reason}' <<<"$output")" \
		'{"provider":"baileys","business_id":4,"ready":true,"reason":"connected"}'
	assert_equal "$(jq -r .details.sessionState <<<"$output")" connected
	req=$(jq -c 'select(.method == "GET")' "$PROVIDER_LOG")
	assert_equal "$(jq -r '.path + " " + .auth' <<<"$req")" "/whatsapp/business_4/status ok"
}

@test "status: baileys waiting for a QR scan exits 69 with the reason" {
	provider_control '{"baileys_state":{"business_5":"waiting_qr"}}'
	send_run status --business 5
	assert_failure 69
	assert_equal "$(jq -r .ready <<<"$output")" false
	[[ "$stderr" == *"baileys not ready: not connected (sessionState=waiting_qr): scan the QR code"* ]]
	send_run status --business 4
	assert_success
}

@test "status: meta ready, token rejected, not configured, unreachable" {
	send_run status --provider meta
	assert_success
	assert_equal "$(jq -r .reason <<<"$output")" "Test Business"
	META_WA_ACCESS_TOKEN=wrong-token send_run status --provider meta
	assert_failure 69
	[[ "$stderr" == *"meta not ready: Meta refused (HTTP 401, code 190)"* ]]
	META_WA_ACCESS_TOKEN= send_run status --provider meta
	assert_failure 78
	[[ "$stderr" == *"META_WA_ACCESS_TOKEN is not set"* ]]
	BAILEYS_BASE_URL=http://127.0.0.1:$(closed_port) send_run status --business 1
	assert_failure 69
	[[ "$stderr" == *"baileys not ready: Baileys unreachable"* ]]
	send_run status
	assert_failure 78
}

# --- the whole file ----------------------------------------------------------------

@test "no canary secret in anything printed by this file, nor in the provider's log" {
	[ -s "$BATS_FILE_TMPDIR/outputs" ]
	run grep -cF -e "$CANARY_SECRET" -e "$CANARY_TOKEN" "$BATS_FILE_TMPDIR/outputs" "$PROVIDER_LOG"
	assert_output --partial ":0"
	refute_output --regexp ':[1-9]'
}
