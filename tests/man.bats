#!/usr/bin/env bats
# Manual pages: present for every program, lint-clean, true to --help.

setup() { load lib/common; }

# Long options a --help text lists: "--name".
help_opts() { "$1" --help | grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' | sed 's/^[ ,]*//' | sort -u; }
# Long options a man page documents: ".Fl Fl name" (also inside .It lines).
man_opts() { grep -oE 'Fl Fl [a-z][a-z0-9-]*' "$1" | sed 's/^Fl Fl /--/' | sort -u; }

@test "every program has a man page, and so has wa(7)" {
	for p in $(wa_programs); do
		[ -f "$WA_ROOT/man/$p.1" ] || fail "no man/$p.1"
	done
	[ -f "$WA_ROOT/man/wa.7" ]
}

@test "every man page is clean under groff -mdoc -ww" {
	for m in "$WA_ROOT"/man/*.[1-8]; do
		run groff -mdoc -ww -z "$m"
		assert_success
		assert_output ""
	done
}

@test "every option --help lists is in the man page, and the other way round" {
	for p in $(wa_programs); do
		h=$(help_opts "$p")
		m=$(man_opts "$WA_ROOT/man/$p.1")
		[ -n "$h" ] || fail "$p --help lists no options"
		missing=$(comm -23 <(echo "$h") <(echo "$m"))
		extra=$(comm -13 <(echo "$h") <(echo "$m"))
		[ -z "$missing" ] || fail "$p: in --help, not in man/$p.1: $missing"
		[ -z "$extra" ] || fail "$p: in man/$p.1, not in --help: $extra"
	done
}

@test "every man page documents the shared exit codes" {
	for m in "$WA_ROOT"/man/*.[1-8]; do
		grep -q '^\.Sh EXIT STATUS' "$m" || fail "$m: no EXIT STATUS"
		for code in 0 1 64 65 69 70 74 75 78; do
			grep -qx "\.It $code" "$m" || fail "$m: exit code $code not documented"
		done
	done
}

@test "wa(7) shows Meta's codes exactly as the one table in meta.c classifies them" {
	# each row of the table: { code, "name", WA_CLASS_X, ...
	table=$(sed -n '/} meta_codes\[\] = {/,/^};/p' "$WA_ROOT/common/send/provider/meta.c" |
		sed -nE 's/^[[:space:]]*\{ ([0-9]+), "([a-z_]+)", WA_CLASS_([A-Z]+),.*/\1 \2 \3/p' |
		tr 'A-Z' 'a-z' | sort)
	[ "$(wc -l <<<"$table")" -ge 30 ] || fail "could not read the table: $table"
	# each entry of the page: ".It CODE" then ".Li name , class..."
	page=$(sed -n '/^\.Sh META ERROR CODES/,/^\.Sh /p' "$WA_ROOT/man/wa.7" |
		awk '/^\.It [0-9]+$/ { c = $2; next }
		     c && /^\.Li / { sub(/;.*/, ""); sub(/:.*/, ""); print c, $2, $4; c = "" }' | sort)
	assert_equal "$page" "$table"
}
