#!/usr/bin/env bats
# Meta: what Meta would refuse is refused before any request (captions over
# 1,024 characters), what it offers is asked for (link previews), and what
# it says of an accepted message is kept (message_status). Everything
# against the real test provider (tests/lib/provider.bash), broadcasts in
# a database of their own per test (tests/lib/bcast.bash).

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

IL=972501234567
IL2=972521234567

# N copies of the character C.
repeat() { local s; printf -v s "%${1}s" ""; printf '%s' "${s// /$2}"; }

# An image record for Meta with caption $1, as JSON (jq escapes it).
image_rec() {
	jq -cn --arg c "$1" --arg to "${2:-+$IL}" \
		'{to:$to, media:{type:"image", url:"https://example.com/a.jpg", caption:$c}}'
}

# --- captions -----------------------------------------------------------------

@test "caption: 1,024 characters are sent, 1,025 refused with no request" {
	send_run --provider meta <<<"$(image_rec "$(repeat 1024 a)")"
	assert_success
	[ "$(provider_count)" -eq 1 ]
	assert_equal "$(provider_sends | jq -r '.body.image.caption | length')" 1024
	provider_reset >/dev/null
	: >"$PROVIDER_LOG"
	send_run --provider meta <<<"$(image_rec "$(repeat 1025 a)")"
	assert_failure 1
	assert_equal "$(jq -r '[.status, .error.code, .error.class, .attempts] | join(" ")' <<<"$output")" \
		"failed caption_too_long permanent 0"
	assert_equal "$(jq -r .error.message <<<"$output")" "caption longer than Meta's 1024 characters"
	[ "$(provider_count)" -eq 0 ]
	assert_equal "$(provider_stats requests)" 0
}

@test "caption: counted in characters, not bytes (Hebrew, two bytes each)" {
	# 1,024 letters are 2,048 bytes: still within the limit.
	send_run --provider meta <<<"$(image_rec "$(repeat 1024 ש)")"
	assert_success
	assert_equal "$(provider_sends | jq -r '.body.image.caption | length')" 1024
	: >"$PROVIDER_LOG"
	send_run --provider meta <<<"$(image_rec "$(repeat 1025 ש)")"
	assert_failure 1
	assert_equal "$(jq -r .error.code <<<"$output")" caption_too_long
	[ "$(provider_count)" -eq 0 ]
}

@test "caption: a record's own text as the caption is held to the same limit" {
	# The media has no caption: the record's text becomes it.
	jq -cn --arg a "$(repeat 1025 ש)" --arg b "$(repeat 1024 ש)" \
		'{type:"video", url:"https://example.com/v.mp4"} as $m |
		{to:"+972501234567", text:$a, media:$m}, {to:"+972521234567", text:$b, media:$m}' >"$BATS_TEST_TMPDIR/in"
	send_run --provider meta "$BATS_TEST_TMPDIR/in"
	assert_failure 1
	assert_equal "$(jq -r 'select(.to == "+972501234567") | .error.code' <<<"$output")" caption_too_long
	assert_equal "$(jq -r 'select(.to == "+972521234567") | .status' <<<"$output")" sent
	[ "$(provider_count $IL)" -eq 0 ]
	assert_equal "$(provider_sends $IL2 | jq -r '.body.video.caption | length')" 1024
}

@test "caption: a broadcast's caption rendered over the limit fails that recipient, unsent; the rest go" {
	biz=$(bc_business meta)
	jq -cn --arg a "$(repeat 1025 ש)" --arg b "$(repeat 1024 ש)" \
		'{to:"+972501234567", note:$a}, {to:"+972521234567", note:$b}' >"$BATS_TEST_TMPDIR/in"
	bid=$(bc_create --business "$biz" --media '{"type":"image","url":"https://example.com/a.jpg","caption":"{{note}}"}' \
		"$BATS_TEST_TMPDIR/in")
	wb run --no-progress "$bid"
	assert_equal "$(jq -c '[.status, .sent, .failed]' <<<"$output")" '["completed",1,1]'
	assert_equal "$(psql_q "SELECT phone || ' ' || status || ' ' || coalesce(error_code, '-') || ' ' || attempts
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $bid ORDER BY phone")" \
		$'+972501234567 failed caption_too_long 0\n+972521234567 sent - 1'
	[ "$(provider_count $IL)" -eq 0 ]
	[ "$(provider_count $IL2)" -eq 1 ]
}

@test "caption: audio carries none, so a long one is no reason to refuse it" {
	send_run --provider meta <<<"$(jq -cn --arg c "$(repeat 1025 a)" \
		'{to:"+972501234567", media:{type:"audio", url:"https://example.com/a.ogg", caption:$c}}')"
	assert_success
	assert_equal "$(provider_sends | jq -c .body.audio)" '{"link":"https://example.com/a.ogg"}'
}

# --- link previews ----------------------------------------------------------------

@test "preview_url: --preview-url asks Meta for it; without, the body is as it always was" {
	send_run --provider meta --preview-url --to +972501234567 --text 'see https://example.com'
	assert_success
	# preview_url a JSON true, before the body (jq keeps the order sent)
	assert_equal "$(provider_sends | jq -c .body)" \
		'{"messaging_product":"whatsapp","recipient_type":"individual","to":"972501234567","type":"text","text":{"preview_url":true,"body":"see https://example.com"}}'
	: >"$PROVIDER_LOG"
	send_run --provider meta --to +972501234567 --text 'see https://example.com'
	assert_success
	assert_equal "$(provider_sends | jq -c .body)" \
		'{"messaging_product":"whatsapp","recipient_type":"individual","to":"972501234567","type":"text","text":{"body":"see https://example.com"}}'
}

@test "preview_url: a record's field wins over the option, either way; a bad one is refused" {
	cat >"$BATS_TEST_TMPDIR/in" <<'EOF'
{"to":"+972501234567","text":"a https://example.com","preview_url":false}
{"to":"+972521234567","text":"b https://example.com"}
{"to":"+972531234567","text":"c https://example.com","preview_url":"yes"}
EOF
	send_run --provider meta --preview-url "$BATS_TEST_TMPDIR/in"
	assert_failure 1
	assert_equal "$(provider_sends $IL | jq -c .body.text)" '{"body":"a https://example.com"}'
	assert_equal "$(provider_sends $IL2 | jq -c .body.text)" '{"preview_url":true,"body":"b https://example.com"}'
	assert_equal "$(jq -r 'select(.to == "+972531234567") | [.status, .error.code] | join(" ")' <<<"$output")" \
		"failed bad_preview_url"
	[ "$(provider_count)" -eq 2 ]
	: >"$PROVIDER_LOG"
	send_run --provider meta <<<'{"to":"+972501234567","text":"d https://example.com","preview_url":true}'
	assert_success
	assert_equal "$(provider_sends | jq -c .body.text)" '{"preview_url":true,"body":"d https://example.com"}'
}

@test "preview_url: Baileys has no such option and sends the text as ever" {
	send_run --provider baileys --business 1 --preview-url <<<'{"to":"+972501234567","text":"see https://example.com","idempotency_key":"k-1"}'
	assert_success
	assert_equal "$(provider_sends | jq -c .body)" \
		'{"to":"972501234567@s.whatsapp.net","type":"text","text":"see https://example.com","idempotencyKey":"k-1","tenantId":"business_1"}'
}

@test "preview_url: broadcast create --preview-url stores it, run sends it" {
	biz=$(bc_business meta)
	wb create --business "$biz" --preview-url --text 'new at https://example.com/{{code}}' \
		<<<$'{"to":"+972501234567","code":"a"}\n{"to":"+972521234567","code":"b"}'
	assert_success
	bid=$(jq -r .broadcast_id <<<"$output")
	assert_equal "$(bc_col "$bid" preview_url)" t
	# preview shows it
	wb preview "$bid"
	assert_success
	assert_equal "$(jq -sc 'map(.message.preview_url)' <<<"$output")" '[true,true]'
	wb run --no-progress "$bid"
	assert_success
	assert_equal "$(provider_sends | jq -sc 'sort_by(.to_digits) | map(.body.text)')" \
		'[{"preview_url":true,"body":"new at https://example.com/a"},{"preview_url":true,"body":"new at https://example.com/b"}]'
	# and one without it stores and sends none
	: >"$PROVIDER_LOG"
	bid=$(bc_create --business "$biz" --text 'plain https://example.com' <<<'+972531234567')
	assert_equal "$(bc_col "$bid" "coalesce(preview_url::text, 'null')")" null
	wb run --no-progress "$bid"
	assert_success
	assert_equal "$(provider_sends | jq -c .body.text)" '{"body":"plain https://example.com"}'
}

@test "preview_url: broadcast create refuses it without --text, storing nothing" {
	biz=$(bc_business meta)
	wb create --business "$biz" --preview-url --template promo --language he <<<'+972501234567'
	assert_failure 64
	[[ "$stderr" == *"--preview-url goes with --text"* ]]
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 0
}

# --- message_status -----------------------------------------------------------------

@test "message_status: kept in the result record, for both of Meta's values" {
	for ms in accepted held_for_quality_assessment; do
		provider_control "{\"message_status\":\"$ms\"}"
		send_run --provider meta --to +972501234567 --text hi
		assert_success
		assert_equal "$(jq -r '[.status, .message_status] | join(" ")' <<<"$output")" "sent $ms"
		# Beside the message id it describes.
		assert_equal "$(jq -r 'keys_unsorted | .[index("message_id") + 1]' <<<"$output")" message_status
	done
}

@test "message_status: absent when Meta gives none, and a record's old one goes" {
	send_run --provider meta <<<'{"to":"+972501234567","text":"hi","message_status":"stale"}'
	assert_success
	assert_equal "$(jq -r '[.status, has("message_status")] | join(" ")' <<<"$output")" "sent false"
	[[ "$(jq -r .message_id <<<"$output")" == wamid.* ]]
}

@test "message_status: never on a failure, nor from Baileys" {
	provider_control '{"message_status":"accepted","rules":[{"to":"972501234567","fault":"meta:131026"}]}'
	send_run --provider meta --to +972501234567 --text hi
	assert_failure 1
	assert_equal "$(jq -r '[.status, has("message_status")] | join(" ")' <<<"$output")" "failed false"
	send_run --provider baileys --business 1 --to +972521234567 --text hi
	assert_success
	assert_equal "$(jq -r '[.provider, has("message_status")] | join(" ")' <<<"$output")" "baileys false"
}
