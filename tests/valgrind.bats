#!/usr/bin/env bats
# Valgrind clean on the main paths: every program's main path runs under
# memcheck (leak check full; definite and indirect leaks are errors) and must
# exit as it does without valgrind, with valgrind reporting nothing at all.
#
# Library-internal leaks are suppressed in tests/fixtures/valgrind.supp (only
# libphonenumber's singleton, "possibly lost"); nothing of ours is.
#
# On the sanitizer build (make check-asan, B=build/asan) the programs carry
# AddressSanitizer, which cannot run under valgrind: make check-asan leaves
# this file out, and run by hand on that build every test here skips.
# That loses nothing: the same tests run and count on the release pass of
# `make check` (make test), and the sanitizer pass has LeakSanitizer on.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

asan_build() {
	ldd "$WA_BIN/wa-send" 2>/dev/null | grep -q libasan
}

setup_file() {
	asan_build && return 0
	command -v valgrind >/dev/null ||
		{ echo "valgrind is not installed (scripts/install-deps installs it)" >&2; return 1; }
	bc_setup_file
	# The programs under valgrind, each with its own log (%p: one per
	# process, so a pipeline's three are told apart).
	cat >"$BATS_FILE_TMPDIR/vg" <<'EOF'
#!/bin/sh
exec valgrind --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --track-fds=no -q \
	--suppressions="$WA_ROOT/tests/fixtures/valgrind.supp" \
	--log-file="$VG_LOGS/vg.%p.log" "$@"
EOF
	chmod +x "$BATS_FILE_TMPDIR/vg"
}

teardown_file() {
	asan_build && return 0
	bc_teardown_file
}

setup() {
	if asan_build; then
		skip "AddressSanitizer build: valgrind cannot run it (these run on the release build)"
	fi
	bc_setup
	VG_LOGS=$BATS_TEST_TMPDIR/vglogs
	mkdir -p "$VG_LOGS"
	export VG_LOGS
	PATH="$BATS_FILE_TMPDIR:$PATH"
}

teardown() { canary_check; }

# What valgrind said, in every log that is not empty.
vg_said() {
	local f
	for f in "$VG_LOGS"/vg.*.log; do
		[ -s "$f" ] && printf '%s:\n%s\n' "$f" "$(cat "$f")"
	done
	return 0
}

# Exactly $1 programs ran under valgrind, and it said nothing about any.
vg_clean() {
	local said n
	said=$(vg_said)
	[ -z "$said" ] || fail "valgrind reported:"$'\n'"$said"
	n=$(find "$VG_LOGS" -name 'vg.*.log' | wc -l)
	[ "$n" -eq "$1" ] || fail "$n programs ran under valgrind, want $1"
}

# run, stdout and stderr apart, kept for the canary check; valgrind's own
# exit status (99) fails at once, with what it said.
vrun() {
	run --separate-stderr "$@"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
	[ "$status" -ne 99 ] || fail "valgrind found errors (exit 99):"$'\n'"$(vg_said)"
}

@test "valgrind: wa-normalize over the demo contacts" {
	# Its first 250 lines: every kind of address in it, bad ones too
	# (valgrind is slow; the other 750 are more of the same).
	head -n 250 "$WA_ROOT/scripts/demo-contacts.jsonl" >"$BATS_TEST_TMPDIR/sample"
	vrun vg wa-normalize --region IL "$BATS_TEST_TMPDIR/sample"
	# The sample holds a few bad numbers on purpose: exit 1, a record each.
	assert_equal "$status" 1
	assert_equal "$(wc -l <<<"$output")" 250
	assert_equal "$(jq -r .status <<<"$output" | grep -c failed)" "$(grep -c 'wa-normalize: error: ' <<<"$stderr")"
	[ "$(jq -r 'select(.jid != null) | .jid' <<<"$output" | wc -l)" -gt 200 ]
	vg_clean 1
}

@test "valgrind: wa-send to Baileys and Meta, --parallel 4, with faults and a retry" {
	b=$(bc_business baileys)
	m=$(bc_business meta)
	provider_control '{"retry_after":0,"rules":[{"to":"972500000001","fault":"http_400"},
		{"to":"972500000002","fault":"baileys_500"},{"to":"972500000003","fault":"meta:131026"},
		{"to":"972500000004","fault":"http_429","times":1}]}'
	for i in 0 1 2 3 4 5 6 7; do
		biz=$b
		[ $((i % 2)) -eq 1 ] && biz=$m
		printf '{"to":"+97250000000%d","business_id":%d,"name":"n%d"}\n' "$i" "$biz" "$i"
	done >"$BATS_TEST_TMPDIR/in"
	echo '{"to":"not a number"}' >>"$BATS_TEST_TMPDIR/in"
	vrun vg wa-send --parallel 4 --text 'Shalom {{name}}' "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_equal "$(jq -r .status <<<"$output" | sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd' ')" \
		"failed=4 sent=5"
	assert_equal "$(jq -r 'select(.status == "failed") | .error.code' <<<"$output" | sort | paste -sd' ')" \
		"bad_parameter invalid_phone send_failed undeliverable"
	# the 429 was retried and went out on the second attempt
	assert_equal "$(jq -r 'select(.to == "+972500000004") | "\(.status) \(.attempts) \(.provider)"' <<<"$output")" \
		"sent 2 baileys"
	assert_equal "$(provider_stats sends)" 9
	vg_clean 1
}

@test "valgrind: wa-send --dry-run builds text, media and template requests" {
	b=$(bc_business baileys)
	m=$(bc_business meta)
	printf 'GIF89a-tiny' >"$BATS_TEST_TMPDIR/pic.gif"
	cat >"$BATS_TEST_TMPDIR/in" <<EOF
{"to":"+972500000001","business_id":$b,"text":"hi {{name}}","name":"Dana"}
{"to":"+972500000002","business_id":$b,"media":{"type":"image","path":"$BATS_TEST_TMPDIR/pic.gif","caption":"c"}}
{"to":"+972500000003","business_id":$m,"template":{"name":"promo","language":"he","components":[{"type":"body","parameters":[{"type":"text","text":"{{name}}"}]}]},"name":"Avi"}
EOF
	vrun vg wa-send --dry-run "$BATS_TEST_TMPDIR/in"
	assert_success
	assert_equal "$(jq -r .provider <<<"$output" | paste -sd' ')" "baileys baileys meta"
	assert_equal "$(sed -n 1p <<<"$output" | jq -r .request.body.text)" "hi Dana"
	assert_equal "$(sed -n 2p <<<"$output" | jq -r .request.body.media.data)" "<base64 of 11 bytes>"
	assert_equal "$(sed -n 3p <<<"$output" | jq -r '.request.body.template.components[0].parameters[0].text')" Avi
	assert_equal "$(sed -n 3p <<<"$output" | jq -r .request.headers.Authorization)" "Bearer ***"
	assert_equal "$(provider_stats sends)" 0
	vg_clean 1
}

@test "valgrind: wa-broadcast create, run with faults, status, recipients" {
	biz=$(bc_business baileys)
	{ bc_numbers 24; echo 'not a number'; echo '{"name":"no phone"}'; } >"$BATS_TEST_TMPDIR/list"
	vrun vg wa-broadcast create --business "$biz" --name spring --text 'Shalom {{name|friend}}' "$BATS_TEST_TMPDIR/list"
	assert_equal "$status" 1
	assert_equal "$output" '{"broadcast_id":1,"total":26,"invalid":2,"duplicates":0,"opted_out":0}'
	provider_control '{"rules":[{"to":"972500000003","fault":"http_400"},{"to":"972500000005","fault":"baileys_500"}]}'
	vrun vg wa-broadcast run --parallel 4 --no-progress 1
	assert_equal "$status" 1
	assert_equal "$(bc_state 1)" "0 0 22 4 0"
	bc_consistent 1
	vrun vg wa-broadcast status 1
	assert_success
	assert_equal "$(jq -c '[.status, .sent, .failed, .ambiguous]' <<<"$output")" '["partial",22,4,1]'
	# The senders of every broadcast of a business, and the list.
	vrun vg wa-broadcast status --all --business "$biz"
	assert_success
	assert_equal "$(jq -c '[.broadcast_id, .sender, .sender_rate]' <<<"$output")" "[1,\"baileys:$biz\",0]"
	vrun vg wa-broadcast list
	assert_success
	assert_equal "$(jq -c '[.broadcast_id, .sender, .eta_seconds]' <<<"$output")" "[1,\"baileys:$biz\",0]"
	# The table on a terminal.
	run script -qec "vg wa-broadcast status --all" /dev/null
	assert_success
	assert_line --regexp "^ +1 +$biz +baileys:$biz +partial +22/26 +4 "
	vrun vg wa-broadcast recipients --status failed --format csv 1
	assert_success
	assert_equal "$(wc -l <<<"$output")" 5
	vrun vg wa-broadcast recipients --class ambiguous 1
	assert_equal "$(jq -r .phone <<<"$output")" +972500000005
	vg_clean 8
}

@test "valgrind: wa-broadcast export | wa-send | wa-broadcast mark" {
	PROVIDER_KIND=meta bc_new 12
	provider_control '{"rules":[{"to":"972500000002","fault":"meta:131026"}]}'
	run --separate-stderr bash -c 'vg wa-broadcast export "$0" | vg wa-send --context broadcast --parallel 4 |
		vg wa-broadcast mark "$0"; echo "${PIPESTATUS[*]}" >"$VG_LOGS/../pipestatus"' "$BID"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
	# Not on WhatsApp is a permanent failure: wa-send says 1, and the
	# broadcast is completed (nothing a retry could mend), mark says 0.
	assert_equal "$(cat "$BATS_TEST_TMPDIR/pipestatus")" "0 1 0"
	assert_equal "$(jq -c '[.status, .sent, .failed]' <<<"$output")" '["completed",11,1]'
	assert_equal "$(bc_state "$BID")" "0 0 11 1 0"
	bc_consistent "$BID"
	vg_clean 3
}

@test "valgrind: wa-broadcast optout add, import, list; create and run skip them; wa-send refuses one" {
	biz=$(bc_business baileys)
	vrun vg wa-broadcast optout add --business "$biz" --note STOP +972500000001 'not a number'
	assert_equal "$status" 1
	printf '\xef\xbb\xbfname;phone\r\n"Levi; Ron";+972500000002\r\nDana;bad\r\n' >"$BATS_TEST_TMPDIR/o.csv"
	vrun vg wa-broadcast optout import --business "$biz" "$BATS_TEST_TMPDIR/o.csv"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.added, .invalid]' <<<"$output")" '[1,1]'
	vrun vg wa-broadcast optout list --business "$biz"
	assert_success
	assert_equal "${#lines[@]}" 2
	bc_numbers 4 >"$BATS_TEST_TMPDIR/list"
	vrun vg wa-broadcast create --business "$biz" --text hi "$BATS_TEST_TMPDIR/list"
	assert_success
	assert_equal "$(jq -r .opted_out <<<"$output")" 2
	bid=$(jq -r .broadcast_id <<<"$output")
	# opted out after create: cancelled when run claims it
	vrun vg wa-broadcast optout add --business "$biz" +972500000003
	vrun vg wa-broadcast run --no-progress "$bid"
	assert_success
	assert_equal "$(bc_state "$bid")" "0 0 1 0 3"
	bc_consistent "$bid"
	vrun vg wa-send --provider baileys --business "$biz" --to +972500000001 --text hi
	assert_equal "$status" 1
	assert_equal "$(jq -r .error.code <<<"$output")" opted_out
	vg_clean 7
}

@test "valgrind: wa-broadcast create --at --window, status, run --all before and inside the window, reschedule" {
	biz=$(bc_business baileys)
	bc_numbers 4 >"$BATS_TEST_TMPDIR/list"
	export WA_NOW=2026-12-08T05:00:00Z
	vrun vg wa-broadcast create --business "$biz" --text Hi --tz Asia/Jerusalem --at '2026-12-08 08:00' \
		--window '09:00-20:00,fri 09:00-14:00' --skip-days sat "$BATS_TEST_TMPDIR/list"
	assert_success
	assert_equal "$(jq -r .scheduled_at <<<"$output")" 2026-12-08T08:00:00+02:00
	WA_NOW=2026-12-08T06:30:00Z vrun vg wa-broadcast status 1
	assert_equal "$(jq -r '.status + " " + .waiting_for_window' <<<"$output")" \
		"scheduled 2026-12-08T09:00:00+02:00"
	WA_NOW=2026-12-08T06:30:00Z vrun vg wa-broadcast run --all --no-progress
	assert_success
	assert_equal "$(bc_state 1)" "4 0 0 0 0"
	vrun vg wa-broadcast reschedule 1 --at '2026-12-08 09:30'
	assert_success
	WA_NOW=2026-12-08T07:30:00Z vrun vg wa-broadcast run --all --no-progress
	assert_success
	assert_equal "$(bc_state 1)" "0 0 4 0 0"
	vg_clean 5
}

@test "valgrind: wa-migrate up and status on a new database" {
	db=$(pg_new_db)
	n=$(ls "$WA_ROOT"/migrations/*.sql | wc -l)
	vrun vg wa-migrate --db "$db" --dir "$WA_ROOT/migrations"
	assert_success
	assert_equal "$(jq -r .state <<<"$output" | sort -u) $(wc -l <<<"$output")" "applied $n"
	vrun vg wa-migrate --db "$db" --dir "$WA_ROOT/migrations" status
	assert_success
	assert_equal "$(jq -r .state <<<"$output" | sort -u) $(wc -l <<<"$output")" "applied $n"
	assert_equal "$(psql_q "SELECT count(*) FROM schema_migrations" "$db")" "$n"
	vg_clean 2
}
