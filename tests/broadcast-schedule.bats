#!/usr/bin/env bats
# Schedules and sending windows: create --at, reschedule, cancel of a
# scheduled broadcast, --window and --skip-days (per broadcast and per
# business), a window closing mid-run and opening again, and the zone's
# daylight-saving change. The clock is driven by WA_NOW (wa_clock.h),
# never by sleeping.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

setup_file() { bc_setup_file; }
teardown_file() { bc_teardown_file; }
setup() { bc_setup; export WA_TZ=UTC; }
teardown() {
	local p
	for p in ${KEEP_PID:-}; do
		kill -9 "$p" 2>/dev/null || true
	done
	canary_check
}

# The Unix time of an ISO 8601 time with its offset.
epoch() { date -d "$1" +%s; }

@test "create --at: scheduled until then, run --all leaves it alone, then runs it when due; status shows when" {
	WA_NOW=2026-12-08T08:00:00+02:00 bc_new 3 --at '2026-12-08 09:00' --tz Asia/Jerusalem
	assert_equal "$(bc_col "$BID" status)" scheduled
	assert_equal "$(bc_col "$BID" "extract(epoch FROM scheduled_at)::bigint")" \
		"$(epoch 2026-12-08T07:00:00Z)"
	WA_NOW=2026-12-08T08:30:00+02:00 wb status "$BID"
	assert_success
	assert_equal "$(jq -r '.status + " " + .scheduled_at + " " + .time_zone' <<<"$output")" \
		"scheduled 2026-12-08T09:00:00+02:00 Asia/Jerusalem"
	WA_NOW=2026-12-08T08:59:00+02:00 wb run --all
	assert_success
	assert_equal "$(provider_stats sends)" 0
	assert_equal "$(bc_col "$BID" status)" scheduled
	# run ID before its time: not started, 75 (run again then).
	WA_NOW=2026-12-08T08:59:00+02:00 wb run "$BID"
	assert_equal "$status" 75
	[[ "$stderr" == *"scheduled for 2026-12-08T09:00:00+02:00"* ]] || fail "$stderr"
	assert_equal "$(provider_stats sends)" 0
	WA_NOW=2026-12-08T07:00:01Z wb run --all
	assert_success
	assert_equal "$(bc_col "$BID" status)" completed
	assert_equal "$(bc_state "$BID")" "0 0 3 0 0"
	assert_equal "$(provider_stats sends)" 3
}

@test "--at with an offset, and a time already past: queued at once" {
	WA_NOW=2026-12-08T05:00:00Z bc_new 2 --at 2026-12-08T12:00:00+05:30
	assert_equal "$(bc_col "$BID" "extract(epoch FROM scheduled_at)::bigint")" \
		"$(epoch 2026-12-08T06:30:00Z)"
	assert_equal "$(bc_col "$BID" status)" scheduled
	BIZ2=$BIZ
	out=$(bc_numbers 1 972510000000 |
		WA_NOW=2026-12-08T08:00:00Z wa-broadcast create --business "$BIZ2" --text Hi --at '2026-12-08 07:00')
	assert_equal "$(jq -r .scheduled_at <<<"$out")" 2026-12-08T07:00:00+00:00
	assert_equal "$(bc_col "$(jq -r .broadcast_id <<<"$out")" status)" queued
}

@test "reschedule moves a scheduled broadcast, --at now queues it; cancel works on a scheduled one" {
	export WA_NOW=2026-12-08T08:00:00+02:00
	bc_new 3 --at '2026-12-08 09:00' --tz Asia/Jerusalem
	wb reschedule "$BID" --at '2026-12-09 10:30'
	assert_success
	assert_equal "$(jq -r '.status + " " + .scheduled_at' <<<"$output")" \
		"scheduled 2026-12-09T10:30:00+02:00"
	WA_NOW=2026-12-08T09:00:01+02:00 wb run --all
	assert_success
	assert_equal "$(provider_stats sends)" 0
	wb reschedule "$BID" --at now
	assert_success
	assert_equal "$(jq -r .status <<<"$output")" queued
	wb run --all
	assert_success
	assert_equal "$(bc_col "$BID" status)" completed
	# A finished one is not rescheduled.
	wb reschedule "$BID" --at '2026-12-10 09:00'
	assert_equal "$status" 65
	[[ "$stderr" == *"is completed"* ]] || fail "$stderr"
	wb reschedule "$BID"
	assert_equal "$status" 64

	BC_FIRST=972520000000 bc_new 4 --at '2026-12-20 09:00'
	wb cancel "$BID"
	assert_success
	assert_equal "$(jq -r '.status + " " + (.cancelled|tostring)' <<<"$output")" "cancelled 4"
	WA_NOW=2026-12-21T09:00:00Z wb run --all
	assert_success
	assert_equal "$(bc_state "$BID")" "0 0 0 0 4"
	assert_equal "$(provider_stats sends)" 3
}

@test "pause and resume a scheduled broadcast: it goes back to waiting for its time" {
	export WA_NOW=2026-12-08T08:00:00Z
	bc_new 2 --at '2026-12-08 09:00'
	wb pause "$BID"
	assert_success
	assert_equal "$(bc_col "$BID" status)" paused
	wb resume "$BID"
	assert_success
	assert_equal "$(bc_col "$BID" status)" scheduled
}

@test "bad --at, --tz, --window and --skip-days: 64 before anything is stored" {
	BIZ=$(bc_business)
	local args
	for args in "--at tomorrow" "--at 2026-02-30_09:00" "--tz Mars/Olympus" "--tz ../etc" \
		"--window 20:00-09:00" "--window 9-17" "--window xyz_09:00-10:00" \
		"--window 5" "--skip-days someday" "--skip-days sun-sat"; do
		# shellcheck disable=SC2086
		run --separate-stderr wa-broadcast create --business "$BIZ" --text Hi ${args//_/ } </dev/null
		assert_equal "$status" 64
		[[ "$stderr" == *"${args%% *}"* ]] || fail "$args: $stderr"
	done
	# The hour the clocks skip does not exist in the zone.
	run --separate-stderr wa-broadcast create --business "$BIZ" --text Hi \
		--tz Asia/Jerusalem --at '2027-03-26 02:30' </dev/null
	assert_equal "$status" 64
	[[ "$stderr" == *"does not exist in Asia/Jerusalem"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT count(*) FROM whatsapp_broadcasts")" 0
	# export's and mark's --window N (results outstanding) is theirs still.
	run --separate-stderr wa-broadcast export --window abc 1
	assert_equal "$status" 64
	[[ "$stderr" == *"--window: not a number"* ]] || fail "$stderr"
	run --separate-stderr wa-broadcast status --window 09:00-10:00
	assert_equal "$status" 64
	[[ "$stderr" == *"--window does not apply"* ]] || fail "$stderr"
}

@test "--at in local time across the daylight-saving changes of Asia/Jerusalem" {
	BIZ=$(bc_business)
	local at want id
	export WA_NOW=2027-01-01T00:00:00Z
	# Summer time from Friday 2027-03-26 02:00, winter time from Sunday
	# 2027-10-31 02:00: 09:00 local is 07:00 UTC in winter, 06:00 in summer.
	for at in "2027-03-25 09:00=2027-03-25T07:00:00Z" "2027-03-26 09:00=2027-03-26T06:00:00Z" \
		"2027-10-30 09:00=2027-10-30T06:00:00Z" "2027-10-31 09:00=2027-10-31T07:00:00Z"; do
		want=${at#*=}
		id=$(bc_numbers 1 972530000000 | bc_create --business "$BIZ" --text Hi \
			--tz Asia/Jerusalem --at "${at%=*}")
		assert_equal "$(bc_col "$id" "extract(epoch FROM scheduled_at)::bigint")" "$(epoch "$want")"
	done
	# WA_TZ is the default zone.
	id=$(WA_TZ=Asia/Jerusalem bc_numbers 1 972530000000 | WA_TZ=Asia/Jerusalem \
		bc_create --business "$BIZ" --text Hi --at "2027-03-26 09:00")
	assert_equal "$(bc_col "$id" "extract(epoch FROM scheduled_at)::bigint")" \
		"$(epoch 2027-03-26T06:00:00Z)"
}

@test "a window 09:00-20:00 opens at 09:00 local on both sides of the change (07:00 UTC, then 06:00 UTC)" {
	bc_new 2 --window 09:00-20:00 --tz Asia/Jerusalem
	# Wednesday night, winter time: it opens Thursday at 07:00 UTC.
	WA_NOW=2027-03-24T20:30:00+02:00 wb status "$BID"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2027-03-25T09:00:00+02:00
	# Thursday night: it opens Friday, after 02:00 summer time, at 06:00 UTC.
	WA_NOW=2027-03-25T18:30:00Z wb status "$BID"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2027-03-26T09:00:00+03:00
	WA_NOW=2027-03-26T05:59:00Z wb run --all
	assert_success
	assert_equal "$(provider_stats sends)" 0
	assert_equal "$(bc_col "$BID" status)" queued
	WA_NOW=2027-03-26T06:00:00Z wb run --all
	assert_success
	assert_equal "$(bc_col "$BID" status)" completed
	# October: Saturday night in summer time, Sunday after the change.
	WA_NOW=2027-10-30T21:00:00+03:00 wb status "$BID"
	assert_equal "$(jq -r 'has("waiting_for_window")' <<<"$output")" false
	BC_FIRST=972540000000 bc_new 1 --window 09:00-20:00 --tz Asia/Jerusalem
	WA_NOW=2027-10-30T21:00:00+03:00 wb status "$BID"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2027-10-31T09:00:00+02:00
	WA_NOW=2027-10-31T06:30:00Z wb run --all
	assert_equal "$(bc_col "$BID" status)" queued
	WA_NOW=2027-10-31T07:00:00Z wb run --all
	assert_equal "$(bc_col "$BID" status)" completed
}

@test "--skip-days and a Friday cut-off: the next opening skips the closed days" {
	bc_new 2 --tz Asia/Jerusalem --window '09:00-20:00,fri 09:00-14:00' --skip-days sat
	# 2026-12-11 is a Friday: open at 13:00, closed from 14:00 to Sunday 09:00.
	WA_NOW=2026-12-11T13:00:00+02:00 wb status "$BID"
	assert_equal "$(jq -r '.window + "|" + .skip_days + "|" + (has("waiting_for_window")|tostring)' \
		<<<"$output")" "09:00-20:00,fri 09:00-14:00|sat|false"
	WA_NOW=2026-12-11T14:00:00+02:00 wb status "$BID"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2026-12-13T09:00:00+02:00
	WA_NOW=2026-12-12T12:00:00+02:00 wb run --all
	assert_equal "$(provider_stats sends)" 0
	# Thursday at 20:00 sharp it has closed; Friday at 09:00 it opens.
	WA_NOW=2026-12-10T20:00:00+02:00 wb status "$BID"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2026-12-11T09:00:00+02:00
	# Skip-days alone: whole days.
	BC_FIRST=972550000000 bc_new 1 --tz Asia/Jerusalem --skip-days fri-sat
	WA_NOW=2026-12-11T10:00:00+02:00 wb status "$BID"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2026-12-13T00:00:00+02:00
}

@test "a window closing mid-run: sends stop, the broadcast stays running; opening again, they carry on" {
	bc_new 8 --window 09:00-20:00 --tz Asia/Jerusalem
	provider_control '{"latency_ms":1000}'
	# Four seconds before it closes, a send a second: some go, not all.
	WA_NOW=2026-12-08T19:59:56+02:00 wb run --all --parallel 1
	assert_success
	[[ "$stderr" == *"waiting_for_window"*"2026-12-09T09:00:00+02:00"* ]] || fail "$stderr"
	assert_equal "$(bc_col "$BID" status)" running
	local sent
	sent=$(bc_sent "$BID")
	[ "$sent" -ge 1 ] && [ "$sent" -lt 8 ] || fail "sent $sent"
	assert_equal "$(bc_state "$BID")" "$((8 - sent)) 0 $sent 0 0"
	bc_consistent "$BID"
	WA_NOW=2026-12-08T23:00:00+02:00 wb status "$BID"
	assert_equal "$(jq -r '.status + " " + .waiting_for_window' <<<"$output")" \
		"running 2026-12-09T09:00:00+02:00"
	# At night: run --all passes it by, run ID says it waits (75).
	WA_NOW=2026-12-09T03:00:00+02:00 wb run --all
	assert_success
	WA_NOW=2026-12-09T03:00:00+02:00 wb run "$BID"
	assert_equal "$status" 75
	[[ "$stderr" == *"waiting_for_window: outside its sending window until 2026-12-09T09:00:00+02:00"* ]] ||
		fail "$stderr"
	assert_equal "$(jq -r .waiting_for_window <<<"$output")" 2026-12-09T09:00:00+02:00
	assert_equal "$(bc_sent "$BID")" "$sent"
	provider_control '{"latency_ms":0}'
	WA_NOW=2026-12-09T09:00:00+02:00 wb run --all
	assert_success
	assert_equal "$(bc_col "$BID" status)" completed
	assert_equal "$(bc_state "$BID")" "0 0 8 0 0"
	# Each sent once.
	assert_equal "$(provider_stats sends)" 8
}

@test "a business's window applies to its broadcasts without one; run --all moves on to the others" {
	local biz closed
	biz=$(bc_business)
	psql_q "INSERT INTO wa_business_schedule (business_id, time_zone, send_window, skip_days)
		VALUES ($biz, 'Asia/Jerusalem', '09:00-20:00', 'sat')" >/dev/null
	closed=$(bc_numbers 2 | bc_create --business "$biz" --text Hi)
	BC_FIRST=972560000000 bc_new 3
	local open=$BID
	export WA_NOW=2026-12-08T22:00:00+02:00
	wb status "$closed"
	assert_equal "$(jq -r '.window + " " + .time_zone + " " + .waiting_for_window' <<<"$output")" \
		"09:00-20:00 Asia/Jerusalem 2026-12-09T09:00:00+02:00"
	wb run --all
	assert_success
	assert_equal "$(bc_col "$closed" status)" queued
	assert_equal "$(bc_state "$closed")" "2 0 0 0 0"
	assert_equal "$(bc_col "$open" status)" completed
	# The business's zone is the default of --at too.
	id=$(bc_numbers 1 972570000000 | bc_create --business "$biz" --text Hi --at '2026-12-10 09:00')
	assert_equal "$(bc_col "$id" "extract(epoch FROM scheduled_at)::bigint")" "$(epoch 2026-12-10T07:00:00Z)"
}

@test "export outside the window or before the time: 75, nothing claimed; inside it, the pipeline sends" {
	bc_new 2 --window 09:00-20:00 --tz Asia/Jerusalem
	WA_NOW=2026-12-08T21:00:00+02:00 wb export "$BID"
	assert_equal "$status" 75
	assert_output ""
	[[ "$stderr" == *"waiting_for_window"*"2026-12-09T09:00:00+02:00"* ]] || fail "$stderr"
	assert_equal "$(bc_state "$BID")" "2 0 0 0 0"
	BC_FIRST=972580000000 WA_NOW=2026-12-08T08:00:00Z bc_new 2 --at '2026-12-08 09:00'
	WA_NOW=2026-12-08T08:30:00Z wb export "$BID"
	assert_equal "$status" 75
	assert_output ""
	export WA_NOW=2026-12-08T09:00:00Z
	run bash -c "wa-broadcast export $BID | wa-send --context broadcast | wa-broadcast mark $BID"
	assert_success
	assert_equal "$(bc_col "$BID" status)" completed
}

@test "status on a terminal: the table shows when it is scheduled and when its window opens" {
	export WA_NOW=2026-12-08T21:00:00+02:00
	bc_new 1 --window 09:00-20:00 --tz Asia/Jerusalem
	run script -qec "wa-broadcast status $BID" /dev/null
	assert_success
	assert_line --regexp '^id .* status .* note +name'
	assert_line --regexp " queued .* opens 2026-12-09T09:00\+02:00"
	bc_new 1 --at 2026-12-10T10:00:00+02:00 --tz Asia/Jerusalem
	run script -qec "wa-broadcast status $BID" /dev/null
	assert_success
	assert_line --regexp " scheduled .* at 2026-12-10T10:00\+02:00"
}
