#!/usr/bin/env bats
# suite: serial (timing)
# run --all over several businesses at once: every runnable broadcast is
# worked on together, each business's sender at its own --rate, the
# worker's --parallel shared among them. A pause of one stops only that one.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; }
teardown() { canary_check; }

# first_sends: each tenant's first send, in ms after the run's first send,
# one "tenant ms" a line.
first_sends() {
	jq -rs 'map(select(.path == "/send" or (.path | endswith("/messages"))))
		| (map(.t) | min) as $t0
		| group_by(.tenant // .phone_number_id)
		| map("\(.[0].tenant // .[0].phone_number_id) \((map(.t) | min) - $t0)")
		| .[]' "$PROVIDER_LOG"
}

# last_send TENANT: when that tenant's last send came, in ms after the
# run's first send.
last_send() {
	jq -rs --arg k "$1" 'map(select(.path == "/send" or (.path | endswith("/messages"))))
		| (map(.t) | min) as $t0
		| map(select((.tenant // .phone_number_id) == $k) | .t) | max - $t0' "$PROVIDER_LOG"
}

@test "ten businesses of 50 each at --rate 10: interleaved, every one starts at once, far faster than one after another" {
	local i bids=() t0 t1
	for i in $(seq 0 9); do
		BC_FIRST=$((972500000000 + i * 1000)) bc_new 50
		bids+=("$BID")
	done
	t0=$(date +%s%N)
	wb run --all --rate 10 --parallel 16
	t1=$(date +%s%N)
	assert_success
	for b in "${bids[@]}"; do
		assert_equal "$(bc_state "$b")" "0 0 50 0 0"
		bc_consistent "$b"
		grep -q "broadcast_id=$b total=50 sent=50 failed=0 status=completed" <<<"$stderr" ||
			fail "no summary line for $b"
	done
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "500 0"
	# Each business's first send within 2 s of the run's first.
	assert_equal "$(first_sends | wc -l)" 10
	first_sends | while read -r k ms; do
		[ "$ms" -lt 2000 ] || fail "tenant $k first sent after $ms ms"
	done
	# Sequentially it takes 50 s; together about 5 s.
	echo "10 x 50 at --rate 10: $(( (t1 - t0) / 1000000 )) ms" >&3
	[ $(( (t1 - t0) / 1000000 )) -lt 25000 ] || fail "took $(( (t1 - t0) / 1000000 )) ms"
	# The records on stdout: one per broadcast.
	assert_equal "$(jq -s length <<<"$output")" 10
}

@test "unequal sizes: four small broadcasts finish long before the big one, which keeps its rate" {
	local small=() big i
	BC_FIRST=972510000000 bc_new 300
	big=$BIZ
	for i in 0 1 2 3; do
		BC_FIRST=$((972520000000 + i * 1000)) bc_new 10
		small+=("$BIZ")
	done
	wb run --all --rate 50 --parallel 8
	assert_success
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "340 0"
	local end_big end
	end_big=$(last_send "business_$big")
	# 300 at 50/s: about 6 s, never less than 5.
	[ "$end_big" -ge 5000 ] || fail "the big one went too fast: $end_big ms"
	for b in "${small[@]}"; do
		end=$(last_send "business_$b")
		# 10 at 50/s: 0.2 s; well before half of the big one.
		[ "$end" -lt $((end_big / 2)) ] || fail "business $b ended at $end ms, the big one at $end_big ms"
	done
}

@test "pause one broadcast while others run: only it stops; the others complete" {
	local i bids=() paused
	provider_control '{"latency_ms":50}'
	for i in 0 1 2; do
		BC_FIRST=$((972530000000 + i * 1000)) bc_new 60
		bids+=("$BID")
	done
	paused=${bids[1]}
	bc_bg run run --all --rate 10 --parallel 6
	bc_wait_sql "SELECT count(*) >= 3 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $paused AND status = 'sent'" t
	wb pause --reason "wrong link" "$paused"
	assert_success
	bc_bg_wait "$BG_PID" 30
	assert_equal "$BG_RC" 0
	assert_equal "$(bc_col "$paused" "status || ': ' || pause_reason")" "paused: wrong link"
	read -r q p s f c <<<"$(bc_state "$paused")"
	assert_equal "$p $f $c" "0 0 0"
	[ "$q" -gt 0 ] && [ "$s" -lt 60 ]
	for b in "${bids[0]}" "${bids[2]}"; do
		assert_equal "$(bc_state "$b")" "0 0 60 0 0"
		bc_consistent "$b"
	done
	grep -q "broadcast_id=$paused total=60 sent=$s failed=0 status=paused" "$BATS_TEST_TMPDIR/run.err"
	assert_equal "$(provider_stats duplicates)" 0
}

@test "cancel one broadcast while others run: its rest cancelled, the others complete" {
	local i bids=() gone
	provider_control '{"latency_ms":50}'
	for i in 0 1 2; do
		BC_FIRST=$((972540000000 + i * 1000)) bc_new 60
		bids+=("$BID")
	done
	gone=${bids[0]}
	bc_bg run run --all --rate 10 --parallel 6
	bc_wait_sql "SELECT count(*) >= 3 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $gone AND status = 'sent'" t
	wb cancel "$gone"
	assert_success
	bc_bg_wait "$BG_PID" 30
	assert_equal "$BG_RC" 0
	assert_equal "$(bc_col "$gone" status)" cancelled
	read -r q p s f c <<<"$(bc_state "$gone")"
	assert_equal "$q $p $f" "0 0 0"
	[ "$c" -gt 0 ] && [ $((s + c)) -eq 60 ]
	for b in "${bids[1]}" "${bids[2]}"; do
		assert_equal "$(bc_state "$b")" "0 0 60 0 0"
		bc_consistent "$b"
	done
	assert_equal "$(provider_stats duplicates)" 0
}

@test "a fatal outcome of one business mid-run (its session asks for a QR scan): only its broadcast is paused, the others complete" {
	local i bids=() bizs=() bad
	provider_control '{"latency_ms":50}'
	for i in 0 1 2; do
		BC_FIRST=$((972550000000 + i * 1000)) bc_new 40
		bids+=("$BID")
		bizs+=("$BIZ")
	done
	bad=${bids[2]}
	bc_bg run run --all --rate 10 --parallel 6
	bc_wait_sql "SELECT count(*) >= 3 FROM whatsapp_broadcast_recipients WHERE broadcast_id = $bad AND status = 'sent'" t
	provider_control "{\"latency_ms\":50,\"baileys_state\":{\"business_${bizs[2]}\":\"waiting_qr\"}}"
	bc_bg_wait "$BG_PID" 30
	assert_equal "$BG_RC" 69
	assert_equal "$(bc_col "$bad" status)" paused
	[ -n "$(bc_col "$bad" pause_reason)" ]
	read -r q p s f c <<<"$(bc_state "$bad")"
	assert_equal "$p $f $c $((q + s))" "0 0 0 40"
	[ "$q" -gt 0 ]
	for b in "${bids[0]}" "${bids[1]}"; do
		assert_equal "$(bc_state "$b")" "0 0 40 0 0"
		bc_consistent "$b"
	done
	assert_equal "$(provider_stats duplicates)" 0
}

# span TENANT: ms from that tenant's first send to its last.
span() {
	jq -rs --arg k "$1" 'map(select(.path == "/send" and .tenant == $k) | .t)
		| max - min' "$PROVIDER_LOG"
}

@test "a business's own rate (its row's whatsapp_rate, the file's WA_RATE.<id>) paces its broadcasts, --rate caps it, the others go at --rate" {
	local slow capped filed plain cfg=$BATS_TEST_TMPDIR/wa.conf
	BC_FIRST=972560000000 bc_new 16; slow=$BIZ
	BC_FIRST=972561000000 bc_new 16; capped=$BIZ
	BC_FIRST=972562000000 bc_new 16; filed=$BIZ
	BC_FIRST=972563000000 bc_new 16; plain=$BIZ
	psql_q "UPDATE business SET whatsapp_rate = 5 WHERE id = $slow"
	psql_q "UPDATE business SET whatsapp_rate = 1000 WHERE id = $capped"
	# The row wins over the file: $slow's 5, not 1000.
	printf 'WA_RATE.%s=1000\nWA_RATE.%s=8\n' "$slow" "$filed" >"$cfg"
	chmod 600 "$cfg"
	wb --config "$cfg" run --all --rate 40 --parallel 8
	assert_success
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "64 0"
	local s_slow s_capped s_filed s_plain
	s_slow=$(span "business_$slow")
	s_capped=$(span "business_$capped")
	s_filed=$(span "business_$filed")
	s_plain=$(span "business_$plain")
	echo "16 each: row 5/s $s_slow ms, row 1000/s capped at 40 $s_capped ms, file 8/s $s_filed ms, --rate 40 $s_plain ms" >&3
	# 16 sends at 5/s span at least 3 s; at 8/s, about 1.9 s; at 40/s
	# (the cap, and --rate alone), under a second.
	[ "$s_slow" -ge 2800 ] || fail "whatsapp_rate 5: 16 sends in $s_slow ms"
	[ "$s_filed" -ge 1700 ] && [ "$s_filed" -lt "$s_slow" ] ||
		fail "WA_RATE.<id>=8: 16 sends in $s_filed ms (5/s took $s_slow ms)"
	[ "$s_capped" -ge 300 ] || fail "--rate 40 did not cap whatsapp_rate 1000: $s_capped ms"
	[ "$s_capped" -lt "$s_filed" ] && [ "$s_plain" -lt "$s_filed" ] ||
		fail "the 40/s ones were not faster: capped $s_capped, plain $s_plain, 8/s $s_filed ms"
}

@test "a business whose WA_RATE is not a rate: its broadcast stays queued (exit 78, named), the others go" {
	local bad good cfg=$BATS_TEST_TMPDIR/wa.conf
	BC_FIRST=972564000000 bc_new 5; bad=$BID; badbiz=$BIZ
	BC_FIRST=972565000000 bc_new 5; good=$BID
	printf 'WA_RATE.%s=fast\n' "$badbiz" >"$cfg"
	chmod 600 "$cfg"
	wb --config "$cfg" run --all --rate 40
	assert_equal "$status" 78
	grep -q "business $badbiz: WA_RATE 'fast' is not a rate" <<<"$stderr" || fail "$stderr"
	assert_equal "$(bc_state "$bad")" "5 0 0 0 0"
	assert_equal "$(bc_state "$good")" "0 0 5 0 0"
}

# on_wire TENANT MS [UNTIL]: the most of that tenant's sends the provider
# held at once (before UNTIL, ms since the run's first send), when each is
# held MS (its latency): for each send, how many of that tenant's came
# within MS before it.
on_wire() {
	jq -rs --arg k "$1" --argjson ms "$2" --argjson until "${3:-1e12}" '
		map(select(.path == "/send"))
		| (map(.t) | min) as $t0
		| [.[] | select(.tenant == $k and .t - $t0 < $until) | .t] | sort as $t
		| [range(0; $t | length) as $i
		   | [$t[0:$i + 1][] | select(. > $t[$i] - $ms)] | length] | max' "$PROVIDER_LOG"
}

@test "--parallel goes where it is used: three slow senders take what their pace needs, the fast one the rest" {
	local slow=() fast i
	provider_control '{"latency_ms":100}'
	for i in 0 1 2; do
		BC_FIRST=$((972570000000 + i * 1000)) bc_new 10
		slow+=("$BIZ")
		psql_q "UPDATE business SET whatsapp_rate = 4 WHERE id = $BIZ"
	done
	BC_FIRST=972579000000 bc_new 600
	fast=$BIZ
	wb run --all --parallel 16
	assert_success
	assert_equal "$(provider_stats delivered) $(provider_stats duplicates)" "630 0"
	local wire until b
	# While all four run: until the first of the slow ones ends.
	until=$(for b in "${slow[@]}"; do last_send "business_$b"; done | sort -n | head -n 1)
	wire=$(on_wire "business_$fast" 90 "$until")
	echo "the unpaced one's most sends on the wire at once in its first $until ms: $wire of 16 (equal slices: 4)" >&3
	# Equal slices would hold it to 4; the slow ones need about 2 each.
	[ "$until" -ge 1500 ] || fail "the slow ones ended after $until ms"
	[ "$wire" -ge 8 ] || fail "the unpaced broadcast had at most $wire sends on the wire"
	for b in "${slow[@]}"; do
		[ "$(on_wire "business_$b" 90)" -le 2 ] || fail "a slow one had $(on_wire "business_$b" 90) on the wire"
	done
}
