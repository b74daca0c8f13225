#!/usr/bin/env bats
# make demo's script: the whole job end to end, and nothing left behind,
# whether it finishes, is interrupted, or is asked to keep its servers.

setup() {
	load lib/common
	export B=${WA_BIN%/bin}
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
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
	# Nobody got anything twice.
	assert_output --regexp '"duplicates":0,'
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

@test "KEEP=1 demo: servers stay up, and the printed commands reach and stop them" {
	KEEP=1 "$WA_ROOT/scripts/demo" >"$BATS_TEST_TMPDIR/out" 2>&1 ||
		fail "demo failed: $(cat "$BATS_TEST_TMPDIR/out")"
	demo_parts "$BATS_TEST_TMPDIR/out"
	kill -0 "$PG_PID"
	kill -0 "$PROV_PID"
	url=$(sed -n "s/^   export DATABASE_URL='\(.*\)'$/\1/p" "$BATS_TEST_TMPDIR/out")
	run psql -X -At "$url" -c 'SELECT count(*) FROM whatsapp_broadcasts'
	assert_output 2
	stop=$(sed -n '/^ to stop them:$/{n;p}' "$BATS_TEST_TMPDIR/out")
	[ -n "$stop" ]
	eval "$stop"
	gone
}
