#!/usr/bin/env bats
# Every example in README.md runs, and prints what README says it prints.
#
# A fenced block's info string says how it is checked:
#   sh        "$ " lines are commands ("> " lines continue one), the lines
#             after a command are its standard output ("…" matches
#             anything); a command shown without output must exit 0. The
#             blocks run in order in one shell-like sequence: one working
#             folder, one database (migrated, business 1 on Baileys), the
#             test provider standing in for Baileys and Meta.
#   sh old-db the same, on a database holding the old system's tables
#   make      each command runs (make targets as make -n)
#   config    the file, mode 600, drives a --dry-run; mode 644 is refused
#   crontab   each entry's command runs
#   systemd   each ExecStart= command runs
#   install   copies what make install put in share/wa (tests/install.bats
#             runs them); the config and systemd blocks are those files

setup_file() {
	load lib/common
	load lib/pg
	load lib/provider
	pg_setup_file
	provider_setup_file
	wa-migrate -q --dir "$WA_ROOT/migrations" >/dev/null
	psql_q "INSERT INTO business (name, whatsapp_provider) VALUES ('shop', 'baileys')" >/dev/null
	# Split README into blocks: $BLOCKS/N.info and $BLOCKS/N.body.
	export BLOCKS=$BATS_FILE_TMPDIR/blocks
	mkdir -p "$BLOCKS"
	awk -v d="$BLOCKS" '
		/^```/ {
			if (!inb) { inb = 1; n++; print substr($0, 4) > (d "/" n ".info")
				printf "" > (d "/" n ".body") }
			else inb = 0
			next
		}
		inb { print > (d "/" n ".body") }' "$WA_ROOT/README.md"
}

teardown_file() {
	load lib/common
	load lib/pg
	load lib/provider
	provider_teardown_file
	pg_teardown_file
}

setup() {
	load lib/common
	load lib/pg
	load lib/provider
	export INTERNAL_SECRET=$CANARY_SECRET META_WA_ACCESS_TOKEN=$CANARY_TOKEN
	export META_WA_PHONE_NUMBER_ID=$TEST_PNID
	PROVIDER_URL=http://127.0.0.1:$(cat "$BATS_FILE_TMPDIR/provider/port")
	export BAILEYS_BASE_URL=$PROVIDER_URL META_WA_BASE_URL=$PROVIDER_URL
	export WORK=$BATS_FILE_TMPDIR/work
	mkdir -p "$WORK"
}

blocks_of() {
	local f
	for f in "$BLOCKS"/*.info; do
		[ "$(cat "$f")" = "$1" ] && basename "$f" .info
	done | sort -n
}

# A config file with what the tests use, mode 600; its path on stdout.
test_config() {
	local f=$BATS_TEST_TMPDIR/wa.conf
	printf '%s\n' "BAILEYS_BASE_URL=$PROVIDER_URL" "INTERNAL_SECRET=$CANARY_SECRET" \
		"META_WA_BASE_URL=$PROVIDER_URL" "META_WA_ACCESS_TOKEN=$CANARY_TOKEN" \
		"META_WA_PHONE_NUMBER_ID=$TEST_PNID" >"$f"
	chmod 600 "$f"
	echo "$f"
}

# Does the actual line match the expected one, "…" matching anything?
line_matches() {
	local pat=$2
	pat=${pat//\\/\\\\}
	pat=${pat//\*/\\*}
	pat=${pat//\?/\\?}
	pat=${pat//\[/\\[}
	pat=${pat//…/*}
	[[ $1 == $pat ]]
}

# Run sh block N in $WORK, each command's output compared with README's.
run_sh_block() {
	local n=$1 dir=$BATS_TEST_TMPDIR/sh$1 k i
	mkdir -p "$dir"
	awk -v d="$dir" '
		/^\$ / { k++; cmd = 1; printf "%s\n", substr($0, 3) > (d "/cmd." k)
			printf "" > (d "/exp." k); next }
		/^> / && cmd { printf "%s\n", substr($0, 3) >> (d "/cmd." k); next }
		{ cmd = 0; print >> (d "/exp." k) }
		END { print k + 0 > (d "/count") }' "$BLOCKS/$n.body"
	{
		echo "cd '$WORK'"
		for k in $(seq 1 "$(cat "$dir/count")"); do
			echo "{"
			cat "$dir/cmd.$k"
			echo "} >'$dir/out.$k'; rc=\$?; echo \$rc >'$dir/rc.$k'; (exit \$rc)"
		done
	} >"$dir/script"
	PATH="$WA_BIN:$PATH" bash "$dir/script" 2>"$dir/stderr" </dev/null
	for k in $(seq 1 "$(cat "$dir/count")"); do
		local next=$((k + 1)) what="README block $n, \$ $(head -n 1 "$dir/cmd.$k")"
		if [ -s "$dir/exp.$k" ]; then
			mapfile -t want <"$dir/exp.$k"
			mapfile -t got <"$dir/out.$k"
			[ "${#want[@]}" -eq "${#got[@]}" ] ||
				fail "$what: printed $(cat "$dir/out.$k"), README shows $(cat "$dir/exp.$k"); stderr: $(cat "$dir/stderr")"
			for i in "${!want[@]}"; do
				line_matches "${got[i]}" "${want[i]}" ||
					fail "$what: printed '${got[i]}', README shows '${want[i]}'; stderr: $(cat "$dir/stderr")"
			done
		elif ! grep -qx 'echo \$?' "$dir/cmd.$next" 2>/dev/null; then
			[ "$(cat "$dir/rc.$k")" = 0 ] ||
				fail "$what: exit $(cat "$dir/rc.$k"); stderr: $(cat "$dir/stderr")"
		fi
	done
}

@test "README: every sh example runs and prints what README shows" {
	local n count=0
	export DATABASE_URL
	for n in $(blocks_of sh); do
		run_sh_block "$n"
		count=$((count + 1))
	done
	[ "$count" -ge 8 ] || fail "only $count sh examples found"
	canary_check
}

@test "README: adopting the old system's database (sh old-db)" {
	local n
	DATABASE_URL=$(pg_new_db)
	export DATABASE_URL
	psql_q "$(cat "$WA_ROOT/tests/fixtures/old-schema.sql")" >/dev/null
	n=$(blocks_of 'sh old-db')
	[ -n "$n" ]
	run_sh_block "$n"
	# The old rows are still there.
	[ "$(psql_q 'SELECT count(*) FROM whatsapp_broadcast_recipients')" -gt 0 ]
}

@test "README: the make and set-up commands exist and run" {
	local n line cmd
	for n in $(blocks_of make); do
		while IFS= read -r line; do
			cmd=${line%%#*}
			cmd=${cmd%"${cmd##*[![:space:]]}"}
			[ -n "$cmd" ] || continue
			case $cmd in
			make*) run make -n -C "$WA_ROOT" ${cmd#make} ;;
			scripts/*) [ -x "$WA_ROOT/${cmd%% *}" ] || fail "$cmd: no such script"
				run bash -n "$WA_ROOT/${cmd%% *}" ;;
			*) fail "README make block: cannot check '$cmd'" ;;
			esac
			assert_success
		done <"$BLOCKS/$n.body"
	done
}

@test "README: the config file example is accepted at mode 600 and refused at 644" {
	local n f=$BATS_TEST_TMPDIR/readme.conf
	n=$(blocks_of config | head -n 1)
	[ -n "$n" ]
	grep -v '^#' "$BLOCKS/$n.body" >"$f"
	chmod 600 "$f"
	unset INTERNAL_SECRET META_WA_ACCESS_TOKEN META_WA_PHONE_NUMBER_ID BAILEYS_BASE_URL META_WA_BASE_URL
	run_split wa-send --config "$f" --provider meta --to 050-123-4567 --text hi --dry-run
	assert_success
	assert_output --partial '"url":"https://graph.facebook.com/v21.0/106540352242922/messages"'
	refute_output --partial 'EAAG-your-system-user-token'
	run_split wa-send --config "$f" --provider baileys --business 1 --to 050-123-4567 --text hi --dry-run
	assert_success
	assert_output --partial '"url":"https://baileys.internal.example:3300/send"'
	refute_output --partial 'change-me'
	chmod 644 "$f"
	run_split wa-send --config "$f" --provider meta --to 050-123-4567 --text hi --dry-run
	assert_failure 78
}

@test "README: the per-business config example gives businesses 7 and 9 their own senders, the others the global one" {
	local n f=$BATS_TEST_TMPDIR/readme-biz.conf
	n=$(blocks_of config | sed -n 2p)
	[ -n "$n" ]
	{ printf "META_WA_ACCESS_TOKEN=EAAG-global-token\nMETA_WA_PHONE_NUMBER_ID=106540352242922\nWA_DEFAULT_REGION=IL\n"; cat "$BLOCKS/$n.body"; } >"$f"
	chmod 600 "$f"
	unset INTERNAL_SECRET META_WA_ACCESS_TOKEN META_WA_PHONE_NUMBER_ID BAILEYS_BASE_URL META_WA_BASE_URL
	run_split wa-send --config "$f" --provider meta --business 7 --to 050-123-4567 --text hi --dry-run
	assert_success
	assert_output --partial '"url":"https://graph.facebook.com/v21.0/106540352242977/messages"'
	refute_output --partial 'EAAG-business-7-token'
	run_split wa-send --config "$f" --provider meta --business 8 --to 050-123-4567 --text hi --dry-run
	assert_success
	assert_output --partial '"url":"https://graph.facebook.com/v21.0/106540352242922/messages"'
	run_split wa-send --config "$f" --provider baileys --business 9 --to 050-123-4567 --text hi --dry-run
	assert_success
	assert_output --partial '"url":"https://baileys-2.internal.example:3300/send"'
	refute_output --partial 'change-me-too'
}

@test "README: the config and systemd examples are the files make install installs" {
	local n
	n=$(blocks_of config | sed -n 1p)
	diff -u "$WA_ROOT/scripts/wa.conf.example" "$BLOCKS/$n.body" ||
		fail "README's config example is not scripts/wa.conf.example"
	n=$(blocks_of systemd)
	diff -u <(cat "$WA_ROOT/scripts/systemd/wa-broadcast.service"; echo;
		cat "$WA_ROOT/scripts/systemd/wa-broadcast.timer") "$BLOCKS/$n.body" ||
		fail "README's systemd example is not scripts/systemd/wa-broadcast.{service,timer}"
	[ "$(blocks_of install | wc -l)" -eq 2 ] || fail "README's install commands: $(blocks_of install)"
}

@test "README: the crontab and systemd commands run and finish a queued broadcast" {
	local n line cmd cfg id
	cfg=$(test_config)
	for kind in crontab systemd; do
		n=$(blocks_of "$kind")
		[ -n "$n" ] || fail "no $kind example"
		if [ "$kind" = crontab ]; then
			cmd=$(grep -v '^#' "$BLOCKS/$n.body" | awk 'NF { $1 = $2 = $3 = $4 = $5 = ""; print }')
		else
			cmd=$(sed -n 's/^ExecStart=//p' "$BLOCKS/$n.body")
		fi
		[ -n "$cmd" ]
		cmd=${cmd//\/etc\/wa\/wa.conf/$cfg}
		cmd=${cmd//\/usr\/local\/bin\//$WA_BIN/}
		id=$(echo +972501234567 | wa-broadcast create -q --business 1 --text hi | jq .broadcast_id)
		run_split env -u INTERNAL_SECRET -u BAILEYS_BASE_URL bash -c "$cmd"
		assert_success
		assert_equal "$(wa-broadcast status "$id" | jq -r .status)" completed
	done
}
