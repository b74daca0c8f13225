#!/usr/bin/env bats
# suite: serial (asserts how long a send's time-outs take)
# The real Baileys service's limits (providers.md §1): its JSON body limit
# (413 with an HTML page, WA_BAILEYS_MAX_BODY), captions it drops on audio,
# media whose MIME type is not its type's, INTERNAL_SECRET required, and
# timeouts that outlast its own 30 s while readiness stays quick.
# Against the real test provider; wa-broadcast against a real PostgreSQL.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

IL=972501234567

# "102872" as the messages write it: "102,872".
commas() { printf '%s' "$1" | rev | sed 's/[0-9]\{3\}/&,/g; s/,$//' | rev; }

# media JSON for --media: TYPE PATH [EXTRA JSON MEMBERS]
media() { printf '{"type":"%s","path":"%s"%s}' "$1" "$2" "${3:+,$3}"; }

# The byte count a request for this --media would have: WA_BAILEYS_MAX_BODY=1
# refuses every body locally and names its size.
body_bytes() {
	WA_BAILEYS_MAX_BODY=1 wa-send --provider baileys --business 1 --to +$IL --media "$1" 2>/dev/null |
		jq -r '.error.message' | sed -n 's/.* a \([0-9,]*\)-byte request.*/\1/p' | tr -d ,
}

# --- the body limit ------------------------------------------------------------

@test "413 from the service: permanent, names the bytes sent and what to do, one attempt, nothing delivered" {
	head -c 80000 /dev/urandom >"$BATS_TEST_TMPDIR/photo.jpg"
	provider_control '{"baileys_body_limit":102400}'
	# our own check raised above the service's, so the request goes out
	export WA_BAILEYS_MAX_BODY=1M
	send_run --provider baileys --business 1 --to +$IL --media "$(media image "$BATS_TEST_TMPDIR/photo.jpg")"
	assert_failure 1
	[ "$(provider_count)" -eq 1 ]
	req=$(provider_sends)
	assert_equal "$(jq -r .status <<<"$req")" 413
	bytes=$(jq -r .body_bytes <<<"$req")
	[ "$bytes" -gt 102400 ]
	assert_equal "$(jq -r '.error.code + " " + .error.class + " " + (.error.http_status|tostring) + " " + (.attempts|tostring)' <<<"$output")" \
		"body_too_large permanent 413 1"
	assert_equal "$(jq -r .error.message <<<"$output")" \
		"the Baileys service refused a $(commas "$bytes")-byte request: its JSON body limit (express.json limit) is lower than the media; raise it in the service or send a link through Meta"
	assert_equal "$(provider_stats sends) $(provider_stats delivered)" "0 0"
	# what the service answered: express's HTML page, not JSON
	head -c 102401 /dev/zero | tr '\0' x | jq -Rc '{to: "972501234567@s.whatsapp.net", type: "text", text: ., tenantId: "business_1"}' >"$BATS_TEST_TMPDIR/big.json"
	run curl -sS -o "$BATS_TEST_TMPDIR/page" -w '%{http_code} %{content_type}' -H 'Content-Type: application/json' \
		-H "X-Internal-Secret: $INTERNAL_SECRET" --data-binary @"$BATS_TEST_TMPDIR/big.json" "$PROVIDER_URL/send"
	assert_output "413 text/html; charset=utf-8"
	grep -q '^<!DOCTYPE html>' "$BATS_TEST_TMPDIR/page"
	grep -q 'PayloadTooLargeError: request entity too large' "$BATS_TEST_TMPDIR/page"
	: >"$PROVIDER_LOG"
	# a broadcast's policy retries more, but not this
	send_run --provider baileys --business 1 --context broadcast --to +$IL --media "$(media image "$BATS_TEST_TMPDIR/photo.jpg")"
	assert_failure 1
	assert_equal "$(jq -r '.error.code + " " + (.attempts|tostring)' <<<"$output")" "body_too_large 1"
	[ "$(provider_count)" -eq 1 ]
}

@test "WA_BAILEYS_MAX_BODY: by default 80 kB of media fails before any request, with the same advice" {
	head -c 80000 /dev/urandom >"$BATS_TEST_TMPDIR/photo.jpg"
	send_run --provider baileys --business 1 --to +$IL --media "$(media image "$BATS_TEST_TMPDIR/photo.jpg")"
	assert_failure 1
	assert_equal "$(jq -r '.error.code + " " + .error.class + " " + (.attempts|tostring)' <<<"$output")" \
		"body_too_large permanent 0"
	[[ "$(jq -r .error.message <<<"$output")" == "the Baileys service would refuse a "*"-byte request: its JSON body limit (express.json limit, WA_BAILEYS_MAX_BODY=102,400) is lower than the media; raise it in the service or send a link through Meta" ]]
	assert_equal "$(provider_stats requests)" 0
	assert_equal "$(jq -c 'select(.api != "control")' "$PROVIDER_LOG")" ""
}

@test "WA_BAILEYS_MAX_BODY: a body exactly at the limit is sent, one byte over is not" {
	head -c 70000 /dev/urandom >"$BATS_TEST_TMPDIR/photo.jpg"
	m=$(media image "$BATS_TEST_TMPDIR/photo.jpg")
	n=$(body_bytes "$m")
	[ "$n" -gt 90000 ] && [ "$n" -lt 102400 ]
	WA_BAILEYS_MAX_BODY=$((n - 1)) send_run --provider baileys --business 1 --to +$IL --media "$m"
	assert_failure 1
	assert_equal "$(jq -r .error.code <<<"$output")" body_too_large
	assert_equal "$(provider_stats requests)" 0
	# the default (102400) lets it through too, and the service takes it
	provider_control '{"baileys_body_limit":102400}'
	for limit in "$n" ""; do
		WA_BAILEYS_MAX_BODY=$limit send_run --provider baileys --business 1 --to +$IL --media "$m"
		assert_success
		assert_equal "$(jq -r .status <<<"$output")" sent
	done
	assert_equal "$(provider_sends | jq -r '.status, .body_bytes' | paste -sd' ')" "200 $n 200 $n"
}

@test "WA_BAILEYS_MAX_BODY: k and M suffixes, 0 for none; a bad value is exit 78 naming it, nothing sent" {
	head -c 3000 /dev/urandom >"$BATS_TEST_TMPDIR/photo.jpg"
	m=$(media image "$BATS_TEST_TMPDIR/photo.jpg")
	WA_BAILEYS_MAX_BODY=2k send_run --provider baileys --business 1 --to +$IL --media "$m"
	assert_failure 1
	[[ "$(jq -r .error.message <<<"$output")" == *"WA_BAILEYS_MAX_BODY=2,048)"* ]]
	for v in 1M 5kb 0; do
		WA_BAILEYS_MAX_BODY=$v send_run --provider baileys --business 1 --to +$IL --media "$m"
		assert_success
	done
	[ "$(provider_count)" -eq 3 ]
	: >"$PROVIDER_LOG"
	for v in 10x -5 1.5M 2G 99999999999; do
		WA_BAILEYS_MAX_BODY=$v send_run --provider baileys --business 1 --to +$IL --text hi
		assert_failure 78
		[[ "$stderr" == *"WA_BAILEYS_MAX_BODY: not a size in bytes"* ]] || fail "$v: $stderr"
	done
	# from the config file too, with its name
	cfg=$BATS_TEST_TMPDIR/wa.conf
	echo "WA_BAILEYS_MAX_BODY=lots" >"$cfg"
	chmod 600 "$cfg"
	send_run --config "$cfg" --provider baileys --business 1 --to +$IL --text hi
	assert_failure 78
	[[ "$stderr" == *"WA_BAILEYS_MAX_BODY"* ]]
	[ "$(provider_count)" -eq 0 ]
}

# --- what the service would lose ------------------------------------------------

@test "audio: a caption, given or the record's text, is refused before any request; audio alone goes" {
	head -c 2000 /dev/urandom >"$BATS_TEST_TMPDIR/voice.ogg"
	a=$BATS_TEST_TMPDIR/voice.ogg
	send_run --provider baileys --business 1 <<EOF
{"to":"+$IL","media":{"type":"audio","path":"$a","caption":"listen"}}
{"to":"+$IL","text":"listen to this","media":{"type":"audio","path":"$a"}}
{"to":"+$IL","media":{"type":"audio","path":"$a"}}
{"to":"+$IL","media":{"type":"image","path":"$a","mimetype":"image/jpeg","caption":"an image keeps it"}}
EOF
	assert_failure 1
	assert_equal "$(jq -r '.status + " " + (.error.code // "-") + " " + (.error.class // "-") + " " + (.attempts|tostring)' <<<"$output" | paste -sd,)" \
		"failed caption_on_audio permanent 0,failed caption_on_audio permanent 0,sent - - 1,sent - - 1"
	[[ "$(head -1 <<<"$output" | jq -r .error.message)" == *"drops captions on audio"* ]]
	assert_equal "$(provider_sends | jq -r '.body.type + " " + (.body.caption // "-")' | paste -sd,)" \
		"audio -,image an image keeps it"
	[ "$(provider_count)" -eq 2 ]
}

@test "media type and MIME type must agree: image with a PDF is refused naming both; image/jpeg and a PDF document go" {
	head -c 2000 /dev/urandom >"$BATS_TEST_TMPDIR/scan.pdf"
	head -c 2000 /dev/urandom >"$BATS_TEST_TMPDIR/photo.jpg"
	p=$BATS_TEST_TMPDIR/scan.pdf j=$BATS_TEST_TMPDIR/photo.jpg
	send_run --provider baileys --business 1 <<EOF
{"to":"+$IL","media":{"type":"image","path":"$p"}}
{"to":"+$IL","media":{"type":"image","path":"$j","mimetype":"application/pdf"}}
{"to":"+$IL","media":{"type":"video","path":"$j"}}
{"to":"+$IL","media":{"type":"image","path":"$j"}}
{"to":"+$IL","media":{"type":"document","path":"$p"}}
{"to":"+$IL","media":{"type":"document","path":"$j"}}
EOF
	assert_failure 1
	assert_equal "$(jq -r '.status + " " + (.error.code // "-") + " " + (.error.class // "-")' <<<"$output" | paste -sd,)" \
		"failed media_type_mismatch permanent,failed media_type_mismatch permanent,failed media_type_mismatch permanent,sent - -,sent - -,sent - -"
	[[ "$(sed -n 1p <<<"$output" | jq -r .error.message)" == "media.type image does not go with MIME type application/pdf (from scan.pdf)"* ]]
	[[ "$(sed -n 2p <<<"$output" | jq -r .error.message)" == "media.type image does not go with MIME type application/pdf:"* ]]
	[[ "$(sed -n 3p <<<"$output" | jq -r .error.message)" == "media.type video does not go with MIME type image/jpeg"* ]]
	assert_equal "$(provider_sends | jq -r '.body.type + " " + .body.media.mimetype' | paste -sd,)" \
		"image image/jpeg,document application/pdf,document image/jpeg"
}

# --- INTERNAL_SECRET --------------------------------------------------------------

@test "INTERNAL_SECRET unset: wa-send and wa-send status exit 78 naming it; nothing is sent" {
	unset INTERNAL_SECRET
	send_run --provider baileys --business 1 --to +$IL --text hi
	assert_failure 78
	assert_equal "$(jq -r '.error.code + " " + .error.class + " " + .error.message' <<<"$output")" \
		"not_configured fatal Baileys is not configured: INTERNAL_SECRET is not set"
	[[ "$stderr" == *"INTERNAL_SECRET is not set"* ]]
	send_run status --business 1 --provider baileys
	assert_failure 78
	assert_equal "$(jq -r '.ready|tostring' <<<"$output") $(jq -r .reason <<<"$output")" "false INTERNAL_SECRET is not set"
	# a dry run needs it too, as Meta's does its token
	send_run --dry-run --provider baileys --business 1 --to +$IL --text hi
	assert_failure 78
	assert_equal "$(provider_stats requests)" 0
	# set again, the same message goes (Meta never needed it)
	INTERNAL_SECRET=$CANARY_SECRET send_run --provider baileys --business 1 --to +$IL --text hi
	assert_success
	send_run --provider meta --to +$IL --text hi
	assert_success
	assert_equal "$(provider_sends | jq -r .auth | paste -sd' ')" "ok ok"
}

@test "a 401 from /send, which the real service never answers, is not blamed on INTERNAL_SECRET; from status it is" {
	provider_control '{"rules":[{"to":"*","fault":"token_rejected"}]}'
	send_run --provider baileys --business 1 --to +$IL --text hi
	assert_failure 69
	assert_equal "$(jq -r '.error.code + " " + .error.class + " " + (.error.http_status|tostring)' <<<"$output")" "unauthorized fatal 401"
	[[ "$(jq -r .error.message <<<"$output")" == *"its /send checks no secret"* ]] || fail "$output"
	[[ "$(jq -r .error.message <<<"$output")" != *"rejected INTERNAL_SECRET"* ]]
	INTERNAL_SECRET=wrong-secret send_run status --provider baileys --business 1
	assert_failure 69
	assert_equal "$(jq -r .reason <<<"$output")" "Baileys rejected INTERNAL_SECRET (HTTP 401)"
}

@test "INTERNAL_SECRET unset: wa-broadcast run exits 78 naming it; nothing sent, every recipient still queued" {
	bc_new 3
	unset INTERNAL_SECRET
	wb run --no-progress "$BID"
	assert_equal "$status" 78
	[[ "$stderr" == *"INTERNAL_SECRET is not set"* ]] || fail "unclear: $stderr"
	assert_equal "$(provider_stats requests)" 0
	assert_equal "$(bc_state "$BID")" "3 0 0 0 0"
	bc_consistent "$BID"
}

# --- timeouts ------------------------------------------------------------------------

@test "send timeout: Baileys waits 35 s by default (its own is 30 s), Meta 25 s; WA_TIMEOUT and --timeout win" {
	send_run -vv --provider baileys --business 1 --to +$IL --text hi
	assert_success
	[[ "$stderr" == *"provider=baileys http=200 outcome=sent code=- elapsed_ms="*" timeout_ms=35000"* ]] || fail "$stderr"
	send_run -vv --provider meta --to +$IL --text hi
	assert_success
	[[ "$stderr" == *"provider=meta http=200 outcome=sent code=- elapsed_ms="*" timeout_ms=25000"* ]] || fail "$stderr"
	WA_TIMEOUT=12 send_run -vv --provider baileys --business 1 --to +$IL --text hi
	[[ "$stderr" == *"provider=baileys "*" timeout_ms=12000"* ]] || fail "$stderr"
	send_run -vv --timeout 40 --provider baileys --business 1 --to +$IL --text hi
	[[ "$stderr" == *"provider=baileys "*" timeout_ms=40000"* ]] || fail "$stderr"
	# and it applies: a service slower than WA_TIMEOUT=1 is a timeout after ~1 s
	provider_control '{"latency_ms":4000}'
	start=$(date +%s%N)
	WA_TIMEOUT=1 send_run --provider baileys --business 1 --to +$IL --text hi
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_failure 1
	assert_equal "$(jq -r '.error.code + " " + .error.class' <<<"$output")" "timeout ambiguous"
	[ "$elapsed" -lt 3500 ] || fail "took $elapsed ms"
}

@test "readiness: a status route that does not answer is given up after ~5 s, not the send timeout" {
	provider_control '{"latency_ms":30000}'
	start=$(date +%s%N)
	WA_TIMEOUT=60 send_run status --business 1 --provider baileys
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_failure 69
	[[ "$(jq -r .reason <<<"$output")" == "Baileys unreachable: "*"imed out"* ]] || fail "$output"
	[ "$elapsed" -ge 4500 ] && [ "$elapsed" -lt 8000 ] || fail "took $elapsed ms"
	# the broadcast's pre-flight alike: the broadcast waits, nothing sent
	bc_new 2
	start=$(date +%s%N)
	wb run --no-progress "$BID"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	[ "$elapsed" -lt 8000 ] || fail "took $elapsed ms"
	assert_equal "$status" 69
	assert_equal "$(provider_count)" 0
	assert_equal "$(bc_state "$BID")" "2 0 0 0 0"
}
