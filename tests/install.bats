#!/usr/bin/env bats
# suite: serial (make install rebuilds, for PREFIX=/usr, the programs the other files run)
# make install / uninstall into a temporary DESTDIR.

setup_file() {
	load lib/common
	export DEST="$BATS_FILE_TMPDIR/dest"
	make -s -C "$WA_ROOT" B="${WA_BIN%/bin}" install DESTDIR="$DEST" PREFIX=/usr >/dev/null
	load lib/pg
	pg_setup_file
}

teardown_file() {
	load lib/common
	load lib/pg
	pg_teardown_file
}

setup() {
	load lib/common
	load lib/pg
}

@test "install puts binaries, man pages and migrations under DESTDIR/PREFIX" {
	for p in $(wa_programs); do
		[ -x "$DEST/usr/bin/$p" ] || fail "no $p"
		[ -f "$DEST/usr/share/man/man1/$p.1" ] || fail "no $p.1"
		[ -f "$DEST/usr/share/bash-completion/completions/$p" ] || fail "no completion for $p"
	done
	[ -f "$DEST/usr/share/man/man7/wa.7" ]
	n=$(ls "$WA_ROOT"/migrations/*.sql 2>/dev/null | wc -l)
	assert_equal "$(ls "$DEST"/usr/share/wa/migrations/*.sql 2>/dev/null | wc -l)" "$n"
}

@test "the installed programs run" {
	for p in $(wa_programs); do
		run "$DEST/usr/bin/$p" --version
		assert_success
		assert_output --partial "$p (wa)"
	done
	run "$DEST/usr/bin/wa-normalize" <<<'+972501234567'
	assert_success
	assert_output --partial '"jid":"972501234567@s.whatsapp.net"'
}

@test "man -l renders each installed page" {
	for m in "$DEST"/usr/share/man/man*/*; do
		run env MANWIDTH=80 man -l "$m"
		assert_success
		[ "${#lines[@]}" -gt 10 ] || fail "$m rendered to almost nothing"
	done
}

@test "the installed wa-migrate applies the installed migrations to a real database" {
	# Run from outside the source tree, so nothing there is found by accident.
	cd "$BATS_TEST_TMPDIR"
	url=$(pg_new_db)
	run_split "$DEST/usr/bin/wa-migrate" --db "$url" --dir "$DEST/usr/share/wa/migrations" up
	assert_success
	n=$(ls "$WA_ROOT"/migrations/*.sql | wc -l)
	assert_equal "$(psql_q 'SELECT count(*) FROM schema_migrations' "$url")" "$n"
	run_split "$DEST/usr/bin/wa-migrate" --db "$url" --dir "$DEST/usr/share/wa/migrations" status
	assert_success
	assert_equal "$(grep -c '"state":"applied"' <<<"$output")" "$n"
	# The installed wa-broadcast accepts the schema the installed migrations made.
	run_split env DATABASE_URL="$url" "$DEST/usr/bin/wa-broadcast" list
	assert_success
}

@test "the installed wa-migrate looks for migrations under PREFIX without --dir" {
	# The tree was built for /usr/local first: install for /usr must rebuild
	# what carries the folder, or the program looks where nothing is.
	cd "$BATS_TEST_TMPDIR"
	run_split "$DEST/usr/bin/wa-migrate" --db "postgresql://u@127.0.0.1:1/x" status
	assert_failure 78
	[[ $stderr == *"/usr/share/wa/migrations: No such file or directory"* ]] || fail "stderr: $stderr"
	run "$DEST/usr/bin/wa-migrate" --help
	assert_output --partial "/usr/share/wa/migrations)"
}

@test "install puts the example config and the systemd units in share/wa" {
	local d=$DEST/usr/share/wa
	cmp "$WA_ROOT/scripts/wa.conf.example" "$d/wa.conf.example"
	cmp "$WA_ROOT/scripts/systemd/wa-broadcast.timer" "$d/systemd/wa-broadcast.timer"
	# The service runs the program where this install put it (PREFIX=/usr).
	run grep '^ExecStart=' "$d/systemd/wa-broadcast.service"
	assert_output 'ExecStart=/usr/bin/wa-broadcast run --all --no-progress --config /etc/wa/wa.conf'
	[ -x "$DEST/usr/bin/wa-broadcast" ]
	diff <(sed 's|^ExecStart=/usr/local/bin/|ExecStart=/usr/bin/|' \
		"$WA_ROOT/scripts/systemd/wa-broadcast.service") "$d/systemd/wa-broadcast.service"
	# The example holds no secret: readable by all, so it cannot be used as
	# it is (a program refuses a config file others can read).
	assert_equal "$(stat -c %a "$d/wa.conf.example" "$d/systemd/wa-broadcast.service" \
		"$d/systemd/wa-broadcast.timer" | sort -u)" 644
	run_split "$DEST/usr/bin/wa-send" --config "$d/wa.conf.example" --provider meta \
		--to +972501234567 --text hi --dry-run
	assert_failure 78
}

@test "README's commands copy them: the config at mode 600, which the programs accept" {
	# README's install blocks, for PREFIX=/usr in DEST and an /etc of our own.
	local etc=$BATS_TEST_TMPDIR/etc cmds n=0
	cmds=$(awk '/^```/ { inb = !inb; ins = inb && $0 == "```install"; next }
		ins' "$WA_ROOT/README.md")
	[ -n "$cmds" ] || fail "no install block in README"
	while IFS= read -r cmd; do
		cmd=${cmd//\/usr\/local\/share\/wa/$DEST/usr/share/wa}
		cmd=${cmd//\/etc\//$etc/}
		run bash -c "$cmd"
		assert_success
		n=$((n + 1))
	done <<<"$cmds"
	assert_equal "$n" 2
	assert_equal "$(stat -c %a "$etc/wa/wa.conf")" 600
	cmp "$DEST/usr/share/wa/wa.conf.example" "$etc/wa/wa.conf"
	cmp "$DEST/usr/share/wa/systemd/wa-broadcast.service" "$etc/systemd/system/wa-broadcast.service"
	cmp "$DEST/usr/share/wa/systemd/wa-broadcast.timer" "$etc/systemd/system/wa-broadcast.timer"
	run_split env -u INTERNAL_SECRET -u META_WA_ACCESS_TOKEN "$DEST/usr/bin/wa-send" \
		--config "$etc/wa/wa.conf" --provider meta --to 050-123-4567 --text hi --dry-run
	assert_success
	assert_output --partial '"url":"https://graph.facebook.com/v21.0/106540352242922/messages"'
}

@test "uninstall removes everything install put there" {
	make -s -C "$WA_ROOT" B="${WA_BIN%/bin}" uninstall DESTDIR="$DEST" PREFIX=/usr >/dev/null
	run find "$DEST" -type f
	assert_output ""
}
