#!/usr/bin/env bats
# suite: serial (asserts the waits between retries and how requests spread)
# wa-send: error classes, the one retry policy, fatal stop, --parallel and
# --rate, each counted and timed at the test provider (its request log:
# "t" is when a request arrived, in ms; "attempt" counts per recipient).

setup_file() { load lib/common; load lib/provider; provider_setup_file; }
teardown_file() { load lib/common; load lib/provider; provider_teardown_file; }
setup() { load lib/common; load lib/provider; provider_setup; }
teardown() { canary_check; }

IL=972501234567

# fault PROVIDER FAULT CODE CLASS HTTP ATTEMPTS [wa-send options]: every send
# gets FAULT; the record must fail with CODE/CLASS/HTTP after ATTEMPTS
# sends, counted at the provider.
fault() {
	local prov=$1 f=$2 code=$3 class=$4 http=$5 n=$6 want=1
	shift 6
	provider_reset >/dev/null
	: >"$PROVIDER_LOG"
	provider_control "{\"retry_after\":0,\"rules\":[{\"to\":\"*\",\"fault\":\"$f\"}]}"
	send_run --provider "$prov" --business 1 --to +972501234567 --text hi "$@"
	[ "$class" = fatal ] && want=69
	[ "$status" -eq "$want" ] || fail "$prov $f: exit $status, not $want: $stderr"
	got=$(jq -r '[.status, .error.code, .error.class, (.error.http_status|tostring), (.attempts|tostring)] | join(" ")' <<<"$output")
	assert_equal "$prov $f: $got" "$prov $f: failed $code $class $http $n"
	assert_equal "$prov $f: sends $(provider_count)" "$prov $f: sends $n"
}

# blackhole_start: a loopback port whose connects never complete
# (tests/tools/blackhole); its pid in bh, its URL in url.
blackhole_start() {
	"$WA_TESTS/blackhole" >"$BATS_TEST_TMPDIR/bh.port" &
	bh=$!
	wait_port_file "$BATS_TEST_TMPDIR/bh.port" "$bh" || fail "blackhole did not start"
	url=http://127.0.0.1:$(cat "$BATS_TEST_TMPDIR/bh.port")
}

@test "baileys: every error class, attempts counted at the provider (chat)" {
	fault baileys http_400 bad_request permanent 400 1
	fault baileys http_429 rate_limited retryable 429 2
	fault baileys baileys_500 send_failed ambiguous 500 1
	assert_equal "$(jq -r .error.provider_code <<<"$output")" send_failed
	fault baileys http_500 server_error ambiguous 500 1
	fault baileys not_connected not_connected fatal 503 1
	fault baileys token_rejected unauthorized fatal 401 1
}

@test "meta: every code of the table in its class, attempts counted (chat)" {
	fault meta meta:131026 undeliverable permanent 400 1
	assert_equal "$(jq -c '.error | [.provider_code, .message]' <<<"$output")" '[131026,"Message undeliverable: Injected fault"]'
	fault meta meta:131047 window_closed permanent 400 1
	fault meta meta:131049 not_delivered permanent 400 1
	fault meta meta:100 bad_parameter permanent 400 1
	fault meta meta:131008 bad_parameter permanent 400 1
	fault meta meta:131009 bad_parameter permanent 400 1
	fault meta meta:1 temporary_error retryable 400 2
	fault meta http_500 temporary_error retryable 500 2
	fault meta meta:4 app_rate_limit retryable 429 2
	fault meta meta:80007 rate_limit retryable 429 2
	fault meta meta:130429 throughput_limit retryable 429 2
	# no second try: the pair limit wants 6 s, more than a person waits
	fault meta meta:131056 pair_rate_limit retryable 400 1
	fault meta http_429_bare rate_limited retryable 429 2
	fault meta meta:131057 account_upgrading retryable 400 2
	fault meta meta:190 token_rejected fatal 401 1
	fault meta meta:10 permission_denied fatal 403 1
	fault meta meta:200 permission_denied fatal 403 1
	fault meta meta:131031 account_locked fatal 400 1
	fault meta meta:368 policy_blocked fatal 400 1
	fault meta meta:131048 spam_rate_limit fatal 400 1
	fault meta meta:131042 payment_issue fatal 400 1
	fault meta meta:133010 number_not_registered fatal 400 1
	fault meta meta:131045 registration_error fatal 400 1
	fault meta meta:3 capability_denied fatal 400 1
	# a one-off send: the template's errors stay the record's
	fault meta meta:132001 template_missing permanent 400 1
	fault meta meta:132015 template_paused permanent 400 1
	fault meta meta:132016 template_disabled permanent 400 1
	fault meta meta:132000 template_params permanent 400 1
	fault meta meta:132012 template_params permanent 400 1
	fault meta meta:131021 recipient_is_sender permanent 400 1
	fault meta meta:131050 marketing_opted_out permanent 400 1
	fault meta meta:131051 unsupported_type permanent 400 1
	fault meta meta:131052 media_download_failed permanent 400 1
	fault meta meta:131053 media_upload_failed permanent 400 1
	fault meta meta:132005 template_text_too_long permanent 400 1
	fault meta meta:132007 template_policy permanent 400 1
	fault meta meta:135000 generic_user_error permanent 400 1
}

@test "transport: no answer after the request was written is ambiguous, never resent" {
	fault baileys timeout timeout ambiguous null 1 --timeout 0.4
	fault baileys drop connection_lost ambiguous null 1
	fault meta timeout timeout ambiguous null 1 --timeout 0.4
	fault meta drop connection_lost ambiguous null 1
}

@test "a connection dropped on a reused keep-alive connection is not resent behind our back" {
	provider_control "{\"rules\":[{\"to\":\"$IL\",\"fault\":\"drop\"}]}"
	send_run --business 1 --text hi <<'EOF'
{"to":"+972521234567"}
{"to":"+972501234567"}
EOF
	assert_failure 1
	assert_equal "$(jq -r '.status + " " + (.error.class // "")' <<<"$output" | paste -sd,)" "sent ,failed ambiguous"
	[ "$(provider_count $IL)" -eq 1 ]
}

@test "the service dies after taking the request: ambiguous, once; libcurl's resend to the closed port is not a connect failure" {
	# A provider of this test's own: the crash ends it. The first record
	# leaves a kept-alive connection, which libcurl would silently resend
	# the second on, and when that reconnect is refused, nothing but the
	# new socket shows the request already went out.
	provider_start "$BATS_TEST_TMPDIR/own"
	local pid=$PROVIDER_PID
	provider_control "{\"rules\":[{\"to\":\"$IL\",\"fault\":\"crash\"}]}"
	BAILEYS_BASE_URL=$PROVIDER_URL send_run --business 1 --text hi <<'EOF'
{"to":"+972521234567"}
{"to":"+972501234567"}
EOF
	wait "$pid" || true
	assert_failure 1
	assert_equal "$(jq -r '[.status, .error.code // "-", .error.class // "-", (.attempts|tostring)] | join(" ")' <<<"$output" | paste -sd,)" \
		"sent - - 1,failed connection_lost ambiguous 1"
	[[ $stderr == *"connection closed after the request was sent (not sent again)"* ]] || fail "$stderr"
	assert_equal "$(provider_count $IL)" 1
}

@test "connection refused: both chat tries, then fatal (the provider cannot be reached), exit 69" {
	BAILEYS_BASE_URL=http://127.0.0.1:$(closed_port) send_run --business 1 --to +972501234567 --text hi
	assert_failure 69
	assert_equal "$(jq -r '[.error.code, .error.class, (.attempts|tostring)] | join(" ")' <<<"$output")" \
		"connect_failed fatal 2"
	[[ "$(jq -r .error.message <<<"$output")" == *"(2 tries: the provider cannot be reached)" ]] || fail "$output"
}

@test "the provider down: the run stops at the first message that cannot reach it, not after every record" {
	# 200 records, 4 at a time: each would take 3 tries over ~4 s; a run
	# that tried them all would last minutes and write 200 failures.
	seq 200 | awk '{ printf "{\"to\":\"+9725012%05d\"}\n", $1 }' >"$BATS_TEST_TMPDIR/in.jsonl"
	BAILEYS_BASE_URL=http://127.0.0.1:$(closed_port) send_run --business 1 --text hi \
		--context broadcast --parallel 4 "$BATS_TEST_TMPDIR/in.jsonl"
	assert_failure 69
	[ "${#lines[@]}" -ge 1 ] && [ "${#lines[@]}" -le 4 ] || fail "${#lines[@]} records written: $output"
	assert_equal "$(jq -r '[.error.code, .error.class, (.attempts|tostring)] | join(" ")' <<<"${lines[0]}")" \
		"connect_failed fatal 3"
	[[ $stderr == *"wa-send: error: stopping: connect_failed: nothing more will be sent"* ]] || fail "$stderr"
}

@test "proxy variables are honoured as libcurl reads them (http_proxy, ALL_PROXY, no_proxy)" {
	p=$(closed_port)
	# The proxy named is a closed port: the send goes there, not to the provider.
	http_proxy=http://127.0.0.1:$p send_run --business 1 --to +972501234567 --text hi
	assert_failure 69
	assert_equal "$(jq -r '.error.code' <<<"$output")" connect_failed
	[[ "$(jq -r '.error.message' <<<"$output")" == *"port $p"* ]] || fail "$output"
	ALL_PROXY=http://127.0.0.1:$p send_run --business 1 --to +972501234567 --text hi
	assert_failure 69
	[[ "$(jq -r '.error.message' <<<"$output")" == *"port $p"* ]] || fail "$output"
	assert_equal "$(provider_count)" 0
	# no_proxy naming the provider's host: straight to it.
	http_proxy=http://127.0.0.1:$p no_proxy=127.0.0.1 send_run --business 1 --to +972501234567 --text hi
	assert_success
	assert_equal "$(provider_count)" 1
}

@test "a connect that never completes: connect_timeout after the set seconds, both tries, then fatal, for both providers" {
	blackhole_start
	# The environment sets it for Baileys, the option for Meta; either way
	# libcurl gives up after about 1 s, not the default 3 s.
	BAILEYS_BASE_URL=$url WA_CONNECT_TIMEOUT=1 send_run --provider baileys --business 1 --to +972501234567 --text hi
	assert_failure 69
	assert_equal "$(jq -r '[.error.code, .error.class, (.attempts|tostring)] | join(" ")' <<<"$output")" \
		"connect_timeout fatal 2"
	[[ "$(jq -r .error.message <<<"$output")" =~ after\ 1[0-9]{3}\ ms ]] || fail "not 1 s: $output"
	META_WA_BASE_URL=$url send_run --provider meta --connect-timeout 1 --to +972501234567 --text hi
	kill "$bh"
	wait "$bh" || true
	assert_failure 69
	assert_equal "$(jq -r '[.error.code, .error.class, (.attempts|tostring)] | join(" ")' <<<"$output")" \
		"connect_timeout fatal 2"
	[[ "$(jq -r .error.message <<<"$output")" =~ after\ 1[0-9]{3}\ ms ]] || fail "not 1 s: $output"
	# Nothing reached the provider.
	[ "$(provider_count)" -eq 0 ]
}

@test "no secret in the process list while a send is in flight" {
	blackhole_start
	for prov in baileys meta; do
		BAILEYS_BASE_URL=$url META_WA_BASE_URL=$url wa-send --provider $prov --business 1 \
			--connect-timeout 5 --to +972501234567 --text hi >/dev/null 2>&1 &
		pid=$!
		# Once exec'd it sits in its connect for 5 s: look at it then.
		for i in $(seq 1 100); do
			ps -ww -o args= -p "$pid" >"$BATS_TEST_TMPDIR/ps" || true
			grep -q "^wa-send " "$BATS_TEST_TMPDIR/ps" && break
			sleep 0.05
		done
		ps -eww -o args= >>"$BATS_TEST_TMPDIR/ps"
		kill "$pid"
		wait "$pid" || true
		grep -q "wa-send --provider $prov" "$BATS_TEST_TMPDIR/ps" || fail "ps did not see wa-send"
		! grep -qF -e "$CANARY_SECRET" -e "$CANARY_TOKEN" "$BATS_TEST_TMPDIR/ps" ||
			fail "a secret in ps: $(grep -F -e "$CANARY_SECRET" -e "$CANARY_TOKEN" "$BATS_TEST_TMPDIR/ps")"
	done
	kill "$bh"
	wait "$bh" || true
}

@test "--retry-ambiguous retries what may have gone out; --retries N sets the attempts" {
	fault baileys baileys_500 send_failed ambiguous 500 2 --retry-ambiguous
	fault baileys http_429 rate_limited retryable 429 1 --retries 0
	fault baileys http_429 rate_limited retryable 429 3 --retries 2
	fault meta meta:131026 undeliverable permanent 400 1 --retries 3
}

@test "broadcast: 3 attempts, about 1 s then 3 s apart" {
	fault baileys http_429 rate_limited retryable 429 3 --context broadcast
	t=($(provider_sends | jq -r .t))
	gap1=$((t[1] - t[0])) gap2=$((t[2] - t[1]))
	[ "$gap1" -ge 780 ] && [ "$gap1" -le 1500 ] || fail "first wait ${gap1} ms"
	[ "$gap2" -ge 2380 ] && [ "$gap2" -le 4000 ] || fail "second wait ${gap2} ms"
	# lead waits like chat: 2 attempts
	fault meta meta:130429 throughput_limit retryable 429 2 --context lead
}

@test "Retry-After is honoured, and one beyond what the context waits is not waited for" {
	provider_control "{\"retry_after\":2,\"rules\":[{\"to\":\"$IL\",\"fault\":\"http_429\",\"times\":1}]}"
	send_run --business 1 --to +972501234567 --text hi
	assert_success
	assert_equal "$(jq -r .attempts <<<"$output")" 2
	t=($(provider_sends | jq -r .t))
	[ $((t[1] - t[0])) -ge 2000 ] || fail "waited $((t[1] - t[0])) ms, Retry-After said 2 s"
	provider_control "{\"retry_after\":5,\"rules\":[{\"to\":\"$IL\",\"fault\":\"meta:130429\"}]}"
	: >"$PROVIDER_LOG"
	send_run --provider meta --to +972501234567 --text hi
	assert_failure 1
	assert_equal "$(jq -r '.error.class + " " + (.attempts|tostring)' <<<"$output")" "retryable 1"
	[[ "$(jq -r .error.message <<<"$output")" == *"Retry-After 5 s"* ]]
	[ "$(provider_count)" -eq 1 ]
}

@test "while one message waits to retry, the others go on" {
	provider_control "{\"retry_after\":0,\"rules\":[{\"to\":\"$IL\",\"fault\":\"http_429\",\"times\":1}]}"
	send_run --business 1 --context broadcast --parallel 2 --text hi <<'EOF'
{"to":"+972501234567"}
{"to":"+972521234501"}
{"to":"+972521234502"}
{"to":"+972521234503"}
{"to":"+972521234504"}
EOF
	assert_success
	# the waiting one finishes last, and its retry came after all the others
	assert_equal "$(tail -1 <<<"$output" | jq -r '.jid + " " + (.attempts|tostring)')" "$IL@s.whatsapp.net 2"
	retry=$(provider_sends $IL | jq -r 'select(.attempt == 2) | .t')
	others=$(provider_sends | jq -r "select(.to_digits != \"$IL\") | .t" | sort -n | tail -1)
	[ "$others" -lt "$retry" ]
	[ "$(provider_count)" -eq 6 ]
}

@test "fatal: the record is written, nothing more is sent, exit 69" {
	provider_control '{"after":3,"after_fault":"not_connected"}'
	for i in $(seq 10 29); do echo "{\"to\":\"+9725212345$i\"}"; done >"$BATS_TEST_TMPDIR/in"
	send_run --business 1 --text hi "$BATS_TEST_TMPDIR/in"
	assert_failure 69
	assert_equal "$(jq -r '.status + ":" + (.error.class // "")' <<<"$output" | paste -sd,)" \
		"sent:,sent:,sent:,failed:fatal"
	[ "$(provider_count)" -eq 4 ]
	[[ "$stderr" == *"wa-send: error: stopping: not_connected: nothing more will be sent"* ]]
}

@test "fatal with --parallel: only the sends already in flight finish, each is written" {
	provider_control '{"latency_ms":50,"after":6,"after_fault":"token_rejected"}'
	for i in $(seq 10 49); do echo "{\"to\":\"+9725212345$i\"}"; done >"$BATS_TEST_TMPDIR/in"
	send_run --provider meta --parallel 4 --text hi "$BATS_TEST_TMPDIR/in"
	assert_failure 69
	sends=$(provider_count)
	[ "$sends" -ge 7 ] && [ "$sends" -le 10 ] || fail "$sends sends"
	# one record per send that was made, none for the records not reached
	[ "$(wc -l <<<"$output")" -eq "$sends" ]
	[ "$(jq -r 'select(.error.class == "fatal") | .jid' <<<"$output" | wc -l)" -ge 1 ]
}

@test "--parallel N: N sends really in flight at once, results keep their fields" {
	provider_control '{"latency_ms":200}'
	for i in $(seq 10 19); do echo "{\"to\":\"+9725212345$i\",\"n\":$i}"; done >"$BATS_TEST_TMPDIR/in"
	send_run --business 1 --parallel 10 --text hi "$BATS_TEST_TMPDIR/in"
	assert_success
	t=$(provider_sends | jq -r .t | sort -n)
	spread=$(( $(tail -1 <<<"$t") - $(head -1 <<<"$t") ))
	# all ten arrived before the first could be answered
	[ "$spread" -lt 200 ] || fail "requests spread over $spread ms"
	assert_equal "$(jq -r '"\(.n) \(.jid)"' <<<"$output" | sort)" \
		"$(seq 10 19 | awk '{print $1 " 9725212345" $1 "@s.whatsapp.net"}')"
	# one POST per message, and no status request before them
	[ "$(jq -c 'select(.api != "control")' "$PROVIDER_LOG" | wc -l)" -eq 10 ]
	# --parallel 1: one after the other, in input order
	: >"$PROVIDER_LOG"
	send_run --business 1 --text hi "$BATS_TEST_TMPDIR/in"
	assert_success
	t=($(provider_sends | jq -r .t))
	for i in 1 2 3; do [ $((t[i] - t[i - 1])) -ge 200 ] || fail "sequential sends overlapped"; done
	assert_equal "$(jq -r .n <<<"$output" | paste -sd,)" "$(seq 10 19 | paste -sd,)"
}

@test "--rate R: sends at least 1/R s apart, as the provider saw them" {
	for i in $(seq 10 15); do echo "{\"to\":\"+9725212345$i\"}"; done >"$BATS_TEST_TMPDIR/in"
	send_run --business 1 --parallel 4 --rate 5 --text hi "$BATS_TEST_TMPDIR/in"
	assert_success
	t=($(provider_sends | jq -r .t | sort -n))
	[ "${#t[@]}" -eq 6 ]
	for i in 1 2 3 4 5; do
		[ $((t[i] - t[i - 1])) -ge 170 ] || fail "gap $((t[i] - t[i - 1])) ms at $i"
	done
	[ $((t[5] - t[0])) -ge 950 ]
}

@test "--parallel 32 over several sending threads: every record written once and whole, -v lines whole" {
	cpus=$(nproc)
	for i in $(seq 1000 3999); do echo "{\"to\":\"+97252123$i\",\"n\":$i}"; done >"$BATS_TEST_TMPDIR/in"
	send_run -vv --business 1 --context broadcast --parallel 32 --text hi "$BATS_TEST_TMPDIR/in"
	assert_success
	want=$(( cpus < 4 ? cpus : 4 ))
	[[ $stderr == *"wa-send: $want sending thread"*", up to "*" sends in flight each"* ]] || fail "$(head -3 <<<"$stderr")"
	# 3,000 records, each a whole JSON object, each input once.
	assert_equal "$(jq -c . <<<"$output" | wc -l)" 3000
	assert_equal "$(jq -r .n <<<"$output" | sort -u | wc -l)" 3000
	assert_equal "$(jq -r 'select(.status == "sent") | .n' <<<"$output" | wc -l)" 3000
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "3000 0"
	# Each log line whole: the two per message, nothing run together.
	assert_equal "$(grep -c '^\[WA-SEND-SERVICE\] business_id=1 to=+97252123[0-9]\{4\} → jid=97252123[0-9]\{4\}@s.whatsapp.net source=to context=broadcast$' <<<"$stderr")" 3000
	assert_equal "$(grep -c '^\[WA_SEND\] to=97252123[0-9]\{4\} status=sent message_id=[^ ]* attempts=1$' <<<"$stderr")" 3000
}

@test "fatal with --parallel 16 over several threads: the other threads start nothing more" {
	# One rejection (the 41st number) and nothing wrong after it: only
	# the stop that reaches every thread keeps the rest from going out.
	provider_control '{"latency_ms":50,"rules":[{"to":"97252123140","fault":"token_rejected"}]}'
	for i in $(seq 100 499); do echo "{\"to\":\"+97252123$i\"}"; done >"$BATS_TEST_TMPDIR/in"
	send_run --provider meta --parallel 16 --text hi "$BATS_TEST_TMPDIR/in"
	assert_failure 69
	sends=$(provider_count)
	[ "$sends" -ge 41 ] || fail "$sends sends"
	[ "$(wc -l <<<"$output")" -eq "$sends" ]
	# No send starts once its answer is back (50 ms after it arrived; 100
	# ms more for the other threads to hear of it), where without the stop
	# the other threads would go on for a second more.
	tf=$(provider_sends 97252123140 | jq -r .t)
	late=$(provider_sends | jq -r --argjson tf "$tf" 'select(.t > $tf + 150) | .t' | wc -l)
	assert_equal "$late" 0
	assert_equal "$(jq -r 'select(.error.class == "fatal") | .jid' <<<"$output")" 97252123140@s.whatsapp.net
	assert_equal "$(grep -c 'stopping: token_rejected: nothing more will be sent' <<<"$stderr")" 1
}
