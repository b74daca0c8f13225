#!/usr/bin/env bats
# make demo's script: the whole job end to end, and nothing left behind,
# whether it finishes, is interrupted, or is asked to keep its servers.

setup() {
	load lib/common
	export B=${WA_BIN%/bin}
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
}

# A kept demo whose test failed is stopped all the same (its servers would
# hold bats' output open, and bats would wait for them).
teardown() {
	[ -z "${STOP:-}" ] || eval "$STOP" 2>/dev/null || true
}

# The pids and folder the demo announced in $1 (its output).
demo_parts() {
	PG_PID=$(sed -n 's/^\[demo\] database .*(postgres pid \([0-9]*\))$/\1/p' "$1")
	PROV_PID=$(sed -n 's/^\[demo\] provider .*(pid \([0-9]*\))$/\1/p' "$1")
	WORK=$(sed -n 's/^\[demo\] working in //p' "$1")
	[ -n "$PG_PID" ] && [ -n "$PROV_PID" ] && [ -n "$WORK" ] ||
		fail "the demo did not announce its parts: $(cat "$1")"
}

# Both servers ended (a process that has just removed its pid file may take
# a moment more to exit: wait for that, bounded) and no folder left.
gone() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$PG_PID" 2>/dev/null || kill -0 "$PROV_PID" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$PG_PID" 2>/dev/null || fail "postgres $PG_PID still runs"
	! kill -0 "$PROV_PID" 2>/dev/null || fail "provider $PROV_PID still runs"
	[ ! -e "$WORK" ] || fail "$WORK is left behind"
	[ -z "$(ls -A "$TMPDIR")" ] || fail "left in TMPDIR: $(ls -A "$TMPDIR")"
}

@test "demo: broadcast with faults, pipeline form, summary and counts; nothing left" {
	"$WA_ROOT/scripts/demo" >"$BATS_TEST_TMPDIR/out" 2>&1 ||
		fail "demo failed: $(cat "$BATS_TEST_TMPDIR/out")"
	run cat "$BATS_TEST_TMPDIR/out"
	demo_parts "$BATS_TEST_TMPDIR/out"
	# 1000 contacts: 930 distinct recipients, 12 of them invalid.
	assert_line '{"broadcast_id":1,"total":930,"invalid":12,"duplicates":70,"opted_out":0}'
	# The operators' summary line; 12 invalid + 2 HTTP 400 + 2 rate-limited
	# every time + 3 that may have gone out.
	assert_line '[WA_BROADCAST] broadcast_id=1 total=930 sent=911 failed=19 status=partial'
	assert_line --regexp '^ +failed +ambiguous +3$'
	assert_line --regexp '^ +failed +permanent +14$'
	assert_line --regexp '^ +failed +retryable +2$'
	assert_line --regexp '^ +sent +- +911$'
	assert_line '[WA_BROADCAST] broadcast_id=2 total=25 sent=25 failed=0 status=completed'
	# The end, in numbers: nobody got anything twice.
	assert_line '   1000 contacts in: 930 recipients, 70 duplicates dropped'
	assert_line '   broadcast 1: 911 sent, 19 failed: 14 permanent (12 of them invalid numbers), 2 retryable, 3 ambiguous'
	assert_line '   broadcast 2 (the pipeline form): 25 sent, 0 failed'
	assert_line --regexp '^   the provider took [0-9]+ sends for 943 recipients; 0 got a message twice$'
	# Where the failures went and what to do next, for this broadcast.
	assert_line '   wa-broadcast recipients 1 --status failed'
	assert_line '   wa-broadcast recipients 1 --class ambiguous --format csv > to-call.csv'
	assert_line '   wa-broadcast retry 1 --ambiguous'
	# The build and the migrations do not bury it: the end is short.
	n=$(sed -n '/^== what happened$/,$p' "$BATS_TEST_TMPDIR/out" | wc -l)
	[ "$n" -le 20 ] || fail "the end is $n lines"
	refute_output --partial '"applied_at"'
	gone
}

@test "demo: Ctrl-C mid-run stops the servers and removes the temp folder" {
	# Its own process group, as a terminal gives it, and SIGINT at its default
	# even when this suite runs in the background (where it is ignored).
	set -m
	env --default-signal=INT "$WA_ROOT/scripts/demo" >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	set +m
	for i in $(seq 1 600); do
		grep -q '^== wa-broadcast run' "$BATS_TEST_TMPDIR/out" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	grep -q '^== wa-broadcast run' "$BATS_TEST_TMPDIR/out" ||
		fail "the demo never reached the run: $(cat "$BATS_TEST_TMPDIR/out")"
	kill -INT -- "-$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 130
	grep -q 'interrupted: cleaning up' "$BATS_TEST_TMPDIR/out"
	demo_parts "$BATS_TEST_TMPDIR/out"
	gone
}

@test "KEEP=1 demo: servers stay up, README's examples run against them as shown, the printed commands stop them" {
	KEEP=1 "$WA_ROOT/scripts/demo" >"$BATS_TEST_TMPDIR/out" 2>&1 ||
		fail "demo failed: $(cat "$BATS_TEST_TMPDIR/out")"
	demo_parts "$BATS_TEST_TMPDIR/out"
	STOP=$(sed -n '/^ to stop them:$/{n;p}' "$BATS_TEST_TMPDIR/out")
	kill -0 "$PG_PID"
	kill -0 "$PROV_PID"
	url=$(sed -n "s/^   DATABASE_URL='\([^']*\)' .* wa-broadcast status --all$/\1/p" "$BATS_TEST_TMPDIR/out")
	run psql -X -At "$url" -c 'SELECT count(*) FROM whatsapp_broadcasts'
	assert_output 2
	# What it says to paste, pasted into a shell with none of it set, then
	# README's first examples: their ids are README's, both providers answer.
	paste=$(sed -n '/paste into a shell:$/,/^ to stop them:$/p' "$BATS_TEST_TMPDIR/out" | sed -n 's/^   //p')
	[[ $paste == *"export PATH="* && $paste == *WA_DEFAULT_REGION=IL* ]] || fail "$paste"
	run env -i HOME="$HOME" PATH=/usr/bin:/bin bash -c "$paste
		printf '%s\n' 050-123-4567 '+44 7911 123456' 'not a number' > contacts.txt
		wa-broadcast create --business 1 --text hi contacts.txt 2>/dev/null
		wa-broadcast run 1 2>/dev/null | jq -c '{status, sent, failed}'
		wa-send status --provider meta | jq -c '{provider, ready}'
		wa-send status --business 1 | jq -c '{provider, ready}'"
	assert_success
	assert_output '{"broadcast_id":1,"total":3,"invalid":1,"duplicates":0,"opted_out":0}
{"status":"completed","sent":2,"failed":1}
{"provider":"meta","ready":true}
{"provider":"baileys","ready":true}'
	[ -n "$STOP" ]
	eval "$STOP"
	STOP=
	gone
}
