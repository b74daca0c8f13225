#!/usr/bin/env bats
# Hostile input against every program that writes to the database: every
# SQL statement is parameterized, so quotes, backslashes, dollar quotes,
# Hebrew, emoji, JSON \u0000 and 10 MB fields are either stored byte for
# byte or refused with one clear error (the record failed with its reason
# where the program writes records), and the database stays whole: every
# table there, counts as expected, nothing half-written. The limits (line
# length, column sizes, Meta's text, media size, migration files) are each
# tested just under and just over.

load lib/common
load lib/pg
load lib/provider
load lib/bcast

# Values to store, none longer than 63 bytes (the error_code column) and
# none with a newline (providers' messages are cut to one line).
HOSTILE=(
	"x'); DROP TABLE business; --"
	"\\'"
	"E'\\x00'"
	'C:\new\table\\ "q" \u0000 %s %n'
	'$$ $q$ $1 :name ? ;'
	'שלום עולם'
	'😀 👍🏽 ‏x‏ ✓ 中文'
)

setup_file() {
	bc_setup_file
	# The schema every test's database starts with (pg_dump's \restrict
	# lines carry a random key: not schema).
	pg_dump --schema-only "$(pg_url wa_template)" | grep -v '^\\\(un\)\?restrict' |
		md5sum >"$BATS_FILE_TMPDIR/schema.md5"
	# A provider that answers whatever a test tells it to: the test
	# provider's fault answers are fixed, these are hostile. Serves one
	# connection at a time; GET (the pre-flight) is always "ready"; a POST
	# answers DIR/reply.<digits of its "to"> (first line the HTTP status,
	# the rest the body), else DIR/reply, and is logged in DIR/sends.
	cat >"$BATS_FILE_TMPDIR/fake.pl" <<'EOF'
use strict; use warnings; use IO::Socket::INET;
my ($dir) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
    Listen => 64, ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
$SIG{TERM} = sub { exit 0 };
open my $pf, '>', "$dir/port.tmp" or die "$dir: $!";
print $pf $srv->sockport;
close $pf;
rename "$dir/port.tmp", "$dir/port";
sub slurp { my $f = shift; open my $h, '<:raw', $f or return undef; local $/; my $s = <$h>; $s }
while (my $c = $srv->accept) {
	binmode $c;
	local $/ = "\r\n";
	my $line = <$c> // next;
	my ($method) = split ' ', $line;
	my ($len, $expect) = (0, 0);
	while (defined(my $h = <$c>)) {
		last if $h eq "\r\n";
		$len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
		$expect = 1 if $h =~ /^Expect:\s*100-continue/i;
	}
	print $c "HTTP/1.1 100 Continue\r\n\r\n" if $expect;
	my $body = '';
	while (length($body) < $len) {
		read($c, $body, $len - length($body), length($body)) or last;
	}
	my ($status, $resp) = (200, '{"connected":true,"authPaired":true,"canSend":true,'
	    . '"sessionState":"connected","verified_name":"Fake"}');
	if ($method ne 'GET') {
		my ($to) = $body =~ /"to":"(\d+)/;
		my $r = (defined $to ? slurp("$dir/reply.$to") : undef) // slurp("$dir/reply") // "500\n{}";
		($status, $resp) = split /\n/, $r, 2;
		open my $log, '>>', "$dir/sends" or die;
		print $log ($to // '-'), "\n";
		close $log;
	}
	print $c "HTTP/1.1 $status Fake\r\nContent-Type: application/json\r\n"
	    . "Content-Length: " . length($resp) . "\r\nConnection: close\r\n\r\n" . $resp;
	close $c;
}
EOF
}

teardown_file() { bc_teardown_file; }

setup() {
	bc_setup
	FAKE_PID=
	HJ=$(jq -cn '$ARGS.positional' --args "${HOSTILE[@]}")
}

teardown() {
	fake_stop
	canary_check
}

# --- helpers -----------------------------------------------------------------

# same_text QUERY VALUE: the one text QUERY selects is VALUE, byte for byte.
same_text() {
	local got want
	want=$(printf '%s' "$2" | md5sum | cut -c1-32)
	got=$(psql_q "SELECT coalesce(md5(v::text), 'NULL') FROM ($1) AS s(v)")
	[ "$got" = "$want" ] ||
		fail "[$1] gave [$(psql_q "$1" | head -c 400)], want [$(printf '%s' "$2" | head -c 400)]"
}

# same_json QUERY JSON: the texts QUERY selects (a column v, in the order of
# a column o) are the strings of the JSON array, character for character:
# jq renders both sides alike, and PostgreSQL holds valid UTF-8 only.
same_json() {
	local got want
	got=$(psql_q "SELECT coalesce(json_agg(v ORDER BY o), '[]') FROM ($1) AS s(v, o)" | jq -c .)
	want=$(jq -c . <<<"$2")
	[ "$got" = "$want" ] || fail "[$1] gave $got, want $want"
}

# The database is whole: its schema as created, and $1 businesses.
db_intact() {
	local sum
	sum=$(pg_dump --schema-only "$DATABASE_URL" | grep -v '^\\\(un\)\?restrict' | md5sum)
	[ "$sum" = "$(cat "$BATS_FILE_TMPDIR/schema.md5")" ] || fail "the schema changed"
	assert_equal "$(psql_q "SELECT count(*) || ' ' || min(name) FROM business")" "$1 shop"
}

count() {
	psql_q "SELECT count(*) FROM $1"
}

# A record of exactly $2 bytes (the newline not counted) for number $1,
# padded with JSON-escaped quotes, backslashes, dollars, Hebrew and emoji.
sized_record() {
	local LC_ALL=C
	local head="{\"phone\":\"$1\",\"pad\":\"" tail='"}' n k
	local unit='x\u0027); DROP TABLE business; -- \\ \" $$ שלום 😀 '
	n=$(($2 - ${#head} - ${#tail}))
	k=$((n / ${#unit}))
	printf '%s' "$head"
	yes "$unit" | head -n "$k" | tr -d '\n'
	head -c $((n - k * ${#unit})) /dev/zero | tr '\0' x
	printf '%s\n' "$tail"
}

# The exported records of broadcast $1, answered as wa-send would by the jq
# program $2 (given $h, the hostile values, and the record's index $k).
results() {
	wa-broadcast export "$1" >"$BATS_TEST_TMPDIR/exported"
	jq -cn --argjson h "$HJ" "[inputs] | to_entries[] | .key as \$k | .value + ($2)" \
		"$BATS_TEST_TMPDIR/exported" >"$BATS_TEST_TMPDIR/results"
}

fake_start() {
	FAKE_DIR=$BATS_TEST_TMPDIR/fake
	mkdir -p "$FAKE_DIR"
	perl "$BATS_FILE_TMPDIR/fake.pl" "$FAKE_DIR" 2>"$FAKE_DIR/stderr" 3>&- &
	FAKE_PID=$!
	wait_port_file "$FAKE_DIR/port" "$FAKE_PID" || fail "the fake provider did not start: $(cat "$FAKE_DIR/stderr")"
	BAILEYS_BASE_URL=http://127.0.0.1:$(cat "$FAKE_DIR/port")
	META_WA_BASE_URL=$BAILEYS_BASE_URL
	export BAILEYS_BASE_URL META_WA_BASE_URL
}

fake_stop() {
	[ -n "${FAKE_PID:-}" ] || return 0
	kill "$FAKE_PID" 2>/dev/null || true
	wait "$FAKE_PID" 2>/dev/null || true
	FAKE_PID=
}

# fake_reply DIGITS STATUS BODY: the fake's answer to a send to DIGITS.
fake_reply() {
	printf '%s\n%s' "$2" "$3" >"$FAKE_DIR/reply.$1"
}

# --- the source ----------------------------------------------------------------

@test "source: every SQL statement is a constant, values go as parameters" {
	# Statements are string literals (or literal macros), static const
	# arrays of them, or the sql parameter of a wrapper whose callers are
	# checked too; only a migration's own file runs as it is. No SQL is
	# built with a formatting call. (Checked on a broken sample first, so
	# the check itself is known to bite.)
	cat >"$BATS_TEST_TMPDIR/sqlcheck.pl" <<'EOF'
use strict; use warnings;
my @runners = qw(PQexec PQexecParams PQprepare PQsendQuery PQsendQueryParams
    PQsendPrepare bc_q bc_qp bc_cmd bc_send bc_copy_in wa_db_copy_in exec
    simple query_int);
my @formats = qw(snprintf sprintf vsnprintf asprintf bc_buf_fmt bc_buf_str
    bc_buf_add strcat strcpy);
my $bad = 0;
for my $f (@ARGV) {
	open my $h, '<', $f or die "$f: $!";
	local $/;
	my $src = <$h>;
	# comments out (their newlines kept), string literals kept
	$src =~ s{("(?:\\.|[^"\\])*")|/\*.*?\*/|//[^\n]*}{defined $1 ? $1 : join("", $& =~ /\n/g) || " "}gse;
	my %const = map { $_ => 1 } $src =~ /static\s+const\s+char\s+(\w+)\s*\[\s*\]\s*=/g;
	my %param = map { $_ => 1 } $src =~ /\(\s*[^()]*?const\s+char\s*\*\s*(sql)\b/g;
	while ($src =~ /\b(\w+)\s*\(/g) {
		my ($fn, $start) = ($1, pos($src));
		next unless grep { $_ eq $fn } @runners, @formats;
		my ($depth, $i, $cur) = (1, $start, '');
		my @args;
		while ($depth > 0 && $i < length $src) {
			my $c = substr($src, $i, 1);
			if ($c eq '"') {
				substr($src, $i) =~ /^("(?:\\.|[^"\\])*")/;
				$cur .= $1;
				$i += length $1;
				next;
			}
			$depth++ if $c eq '(';
			$depth-- if $c eq ')';
			if ($depth == 1 && $c eq ',') { push @args, $cur; $cur = ''; }
			elsif ($depth > 0) { $cur .= $c; }
			$i++;
		}
		push @args, $cur;
		s/^\s+|\s+$//g for @args;
		my $line = 1 + (substr($src, 0, $start) =~ tr/\n//);
		if (grep { $_ eq $fn } @formats) {
			my $lits = join ' ', map { /"((?:\\.|[^"\\])*)"/g } @args;
			if ($lits =~ /\b(SELECT|INSERT|UPDATE|DELETE|WHERE|VALUES)\b/) {
				print "$f:$line: $fn builds SQL text\n";
				$bad = 1;
			}
			next;
		}
		# a definition, not a call
		next if @args < 2 || $args[0] =~ /^(const\s+)?(struct\s+)?\w+\s*\*/;
		my $sql = $args[$fn =~ /Prepare$|^PQprepare$/ ? 2 : 1] // '';
		next if $fn =~ /^PQ(exec|sendQuery)$/ && $sql eq 'm->sql' && $f =~ /migrate\.c$/;
		# literals, literal macros, constants, or COND ? A : B of such
		my $t = $sql;
		$t =~ s/"(?:\\.|[^"\\])*"/ /g;
		$t =~ s/\bTS\(\s*\)/ /g;
		$t =~ s/^[^?]*\?(.*):(.*)$/$1 $2/s;
		my @words = $t =~ /([A-Za-z_][\w>-]*)/g;
		my @ok = grep { /^[A-Z][A-Z0-9_]*$/ || $const{$_} || $param{$_} } @words;
		(my $rest = $t) =~ s/[A-Za-z_][\w>-]*|[()\s]//g;
		if (@ok != @words || $rest ne '') {
			print "$f:$line: $fn runs SQL that is not a constant: $sql\n";
			$bad = 1;
		}
	}
}
exit $bad;
EOF
	cat >"$BATS_TEST_TMPDIR/bad.c" <<'EOF'
static void f(struct bc_db *d, const char *name, long long id) {
	char q[256];
	snprintf(q, sizeof q, "SELECT id FROM business WHERE name = '%s'", name);
	bc_q(d, q, 0, NULL);
	PQexec(d->conn, q);
	bc_cmd(d, id ? q : "BEGIN", 0, NULL);
	bc_buf_fmt(&b, "UPDATE x SET y = %lld", id);
}
EOF
	run perl "$BATS_TEST_TMPDIR/sqlcheck.pl" "$BATS_TEST_TMPDIR/bad.c"
	assert_equal "$status" 1
	assert_equal "$(wc -l <<<"$output")" 5
	run perl "$BATS_TEST_TMPDIR/sqlcheck.pl" "$WA_ROOT"/common/*/*.c "$WA_ROOT"/common/*/*/*.c "$WA_ROOT"/common/*/*.cc "$WA_ROOT"/cmd/*.c
	assert_success
	assert_output ""
	# and the one simple-query call is the migration's
	assert_equal "$(cat "$WA_ROOT"/common/*/*.c "$WA_ROOT"/common/*/*/*.c "$WA_ROOT"/cmd/*.c | grep -Ec 'PQ(exec|sendQuery)\(')" 1
}

# --- wa-broadcast create ---------------------------------------------------

@test "create: quotes, backslashes, \$\$, Hebrew, emoji in --text, --name, --idempotency-key: stored byte for byte" {
	biz=$(bc_business)
	values=("${HOSTILE[@]}" $'two\nlines\tand a tab\r' '{{name|a}} {{ x | b }} {{1}}')
	for idx in "${!values[@]}"; do
		v=${values[$idx]}
		wb create --business "$biz" --text "$v" --name "$v" --idempotency-key "$idx$v" < <(bc_numbers 1)
		assert_success
		assert_equal "$(jq -r .broadcast_id <<<"$output")" $((idx + 1))
		# the same key again finds that broadcast and stores nothing
		wb create --business "$biz" --text other --idempotency-key "$idx$v" < <(bc_numbers 3)
		assert_success
		assert_output "{\"broadcast_id\":$((idx + 1)),\"existing\":true}"
	done
	vj=$(jq -cn '$ARGS.positional' --args "${values[@]}")
	same_json "SELECT message_text, id FROM whatsapp_broadcasts" "$vj"
	same_json "SELECT name, id FROM whatsapp_broadcasts" "$vj"
	same_json "SELECT idempotency_key, id FROM whatsapp_broadcasts" \
		"$(jq -c 'to_entries | map("\(.key)\(.value)")' <<<"$vj")"
	# and back out through status, as JSON
	wb status --all
	assert_success
	assert_equal "$(jq -sc 'map(.name)' <<<"$output")" "$vj"
	assert_equal "$(count whatsapp_broadcasts) $(count whatsapp_broadcast_recipients)" \
		"${#values[@]} ${#values[@]}"
	db_intact 1
}

@test "create: hostile template names, parameters and media captions are stored and sent as given" {
	biz=$(bc_business meta)
	for v in "${HOSTILE[@]}"; do
		wb create --business "$biz" --template "$v" --language he \
			--params "$(jq -cn --arg v "$v" '[$v, "2nd"]')" < <(bc_numbers 1)
		assert_success
		wb create --business "$biz" \
			--media "$(jq -cn --arg v "$v" '{type: "image", url: "https://example.com/a.jpg", caption: $v}')" \
			< <(bc_numbers 1 972510000000)
		assert_success
	done
	same_json "SELECT template_name, id FROM whatsapp_broadcasts WHERE message_type = 'template'" "$HJ"
	same_json "SELECT template_params->0->'parameters'->0->>'text', id FROM whatsapp_broadcasts
		WHERE message_type = 'template'" "$HJ"
	same_json "SELECT media->>'caption', id FROM whatsapp_broadcasts WHERE message_type = 'media'" "$HJ"
	wb run --all --no-progress
	assert_success
	assert_equal "$(bc_sent 1) $(count "whatsapp_broadcast_recipients WHERE status = 'sent'")" \
		"1 $((2 * ${#HOSTILE[@]}))"
	# what reached the provider is what was given
	sorted=$(jq -c sort <<<"$HJ")
	assert_equal "$(provider_sends | jq -sc '[.[].body.template.name // empty] | sort')" "$sorted"
	assert_equal "$(provider_sends | jq -sc '[.[].body.template.components[0].parameters[0].text // empty] | sort')" "$sorted"
	assert_equal "$(provider_sends | jq -sc '[.[].body.image.caption // empty] | sort')" "$sorted"
	db_intact 1
}

@test "create: a --text as long as argv carries (128 KiB) is stored, and sent, byte for byte" {
	# A single argument is at most 128 KiB (MAX_ARG_STRLEN): no 10 MB text
	# can reach --text; 10 MB fields are tested where they can arrive.
	local LC_ALL=C
	unit="x'); DROP TABLE business; -- \\' \$\$ E'\\x00' שלום 😀 "
	text=
	while [ $((${#text} + ${#unit})) -lt 131000 ]; do
		text+=$unit
	done
	LC_ALL=C.UTF-8
	biz=$(bc_business)
	for id in 1 2; do
		wb create --business "$biz" --text "$text" < <(bc_numbers 1)
		assert_success
		same_text "SELECT message_text FROM whatsapp_broadcasts WHERE id = $id" "$text"
	done
	# the request that would go out holds it whole (to a Baileys service
	# whose express.json limit was raised: the default 100 kB is less)
	export WA_BAILEYS_MAX_BODY=0
	run --separate-stderr bash -c 'wa-broadcast export 1 | wa-send --dry-run --context broadcast'
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
	assert_success
	assert_equal "$(jq -j .request.body.text <<<"$output" | md5sum)" "$(printf '%s' "$text" | md5sum)"
	# and it goes out whole (the provider logs its length only)
	wb run --no-progress 2
	assert_success
	assert_equal "$(provider_sends | jq -r .body.text)" "<$(printf '%s' "$text" | wc -c) bytes>"
	db_intact 1
}

@test "create: backslashes, tabs, line ends, \\N and \\. in fields, keys and cells are stored byte for byte" {
	# Recipients reach the database as COPY text, where a backslash, a tab
	# and a line end mean something: every value must come back as given.
	biz=$(bc_business)
	vals=("${HOSTILE[@]}" '\N' '\.' '\\.' $'a\tb' $'two\nlines' $'cr\r\n' $'\t\\N\t' $'שלום\t"q" \\')
	# each value as a good recipient's fields (nested too), and as the
	# number of a bad one, stored failed with it as its key
	jq -cn '$ARGS.positional | to_entries[] |
		({phone: "+97250123\(4500 + .key)", name: .value, note: {v: .value, list: [.value]}},
		 {phone: .value})' --args "${vals[@]}" >"$BATS_TEST_TMPDIR/in.jsonl"
	wb create --business "$biz" --text 'hi {{name}}' "$BATS_TEST_TMPDIR/in.jsonl"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.total, .invalid, .duplicates]' <<<"$output")" "[$((2 * ${#vals[@]})),${#vals[@]},0]"
	vj=$(jq -cn '$ARGS.positional' --args "${vals[@]}")
	same_json "SELECT fields->>'name', id FROM whatsapp_broadcast_recipients WHERE status = 'queued'" "$vj"
	same_json "SELECT fields->'note'->>'v', id FROM whatsapp_broadcast_recipients WHERE status = 'queued'" "$vj"
	same_json "SELECT fields->'note'->'list'->>0, id FROM whatsapp_broadcast_recipients WHERE status = 'queued'" "$vj"
	same_json "SELECT phone, id FROM whatsapp_broadcast_recipients WHERE status = 'failed'" "$vj"
	# a second list: the same again are duplicates, the keys compare equal
	wb create --business "$biz" --text 'hi {{name}}' "$BATS_TEST_TMPDIR/in.jsonl" "$BATS_TEST_TMPDIR/in.jsonl"
	assert_equal "$(jq -c '[.total, .invalid, .duplicates]' <<<"$output")" "[$((2 * ${#vals[@]})),${#vals[@]},$((2 * ${#vals[@]}))]"
	# CSV cells with tabs, CR LF and backslashes, quoted as Excel does
	printf 'name,phone,note\r\n"a\tb\\N",0501234567,"\\."\r\n"two\r\nlines\\",0501234568,"x\ty\\\\"\r\n' \
		>"$BATS_TEST_TMPDIR/in.csv"
	wb create --business "$biz" --region IL --text 'hi {{name}}' "$BATS_TEST_TMPDIR/in.csv"
	assert_success
	same_json "SELECT fields->>'name', id FROM whatsapp_broadcast_recipients WHERE broadcast_id = 3" \
		"$(jq -cn '["a\tb\\N", "two\r\nlines\\"]')"
	same_json "SELECT fields->>'note', id FROM whatsapp_broadcast_recipients WHERE broadcast_id = 3" \
		"$(jq -cn '["\\.", "x\ty\\\\"]')"
	bc_consistent 1
	bc_consistent 2
	bc_consistent 3
	db_intact 1
}

@test "create: JSON \\u0000 in a recipient's field fails that recipient; nothing is stored cut short" {
	biz=$(bc_business)
	printf '%s\n' '{"phone":"+972501234567\u0000junk"}' '{"phone":"+972501234568","name":"Dana\u0000evil"}' \
		'+972501234569' >"$BATS_TEST_TMPDIR/in"
	wb create --business "$biz" --text 'hi {{name|you}}' "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_equal "$(jq -c '[.total, .invalid]' <<<"$output")" "[3,2]"
	assert_equal "$(psql_q "SELECT string_agg(phone, ',') FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" \
		"+972501234569"
	assert_equal "$(count "whatsapp_broadcast_recipients WHERE status = 'failed' AND error_class = 'permanent'
		AND (error_message ILIKE '%NUL%' OR error_message LIKE '%\\u0000%')")" 2
	assert_equal "$(grep -cE 'NUL|\\u0000' <<<"$stderr")" 2
	db_intact 1
}

@test "create: --params or --media holding \\u0000 is a usage error naming it; nothing stored" {
	biz=$(bc_business meta)
	wb create --business "$biz" --template t --language en --params '["a\u0000b"]' < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--params"* && "$stderr" =~ NUL|\\u0000 ]] || fail "unclear: $stderr"
	wb create --business "$biz" --media '{"type":"image","url":"https://example.com/a.jpg","caption":"a\u0000b"}' < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--media"* && "$stderr" =~ NUL|\\u0000 ]] || fail "unclear: $stderr"
	assert_equal "$(count whatsapp_broadcasts) $(count whatsapp_broadcast_recipients)" "0 0"
	db_intact 1
}

@test "create: a record line of 1 MiB is read, one byte more fails that recipient naming the limit; a 10 MB field under --max-line" {
	biz=$(bc_business)
	# Its 1 MiB is in a field of its own (stored, so over the fields'
	# bound): read whole, it fails by that bound, not by the line's.
	{ sized_record +972501234567 1048576; sized_record +972501234568 1048577; echo +972501234566; } >"$BATS_TEST_TMPDIR/in"
	assert_equal "$(head -1 "$BATS_TEST_TMPDIR/in" | wc -c)" 1048577
	wb create --business "$biz" --text hi "$BATS_TEST_TMPDIR/in"
	assert_equal "$status" 1
	assert_output '{"broadcast_id":1,"total":3,"invalid":2,"duplicates":0,"opted_out":0}'
	assert_equal "$(psql_q "SELECT phone FROM whatsapp_broadcast_recipients WHERE status = 'queued'")" +972501234566
	assert_equal "$(psql_q "SELECT error_code || ' ' || error_class || ': ' ||
		regexp_replace(error_message, '[0-9]+ bytes of', 'N bytes of')
		FROM whatsapp_broadcast_recipients WHERE status = 'failed' ORDER BY id")" \
		$'fields_too_large permanent: the record\'s fields take N bytes of JSON, more than 16384\nline_too_long permanent: line longer than 1048576 bytes'
	[[ "$stderr" == *"in:2: line_too_long: line longer than 1048576 bytes"* ]] || fail "$stderr"
	# with room for the line, a 10 MB field is read whole; stored, it
	# would pass the fields' bound
	sized_record +972501234569 10485760 >"$BATS_TEST_TMPDIR/big"
	wb create --business "$biz" --text hi --max-line 16777216 "$BATS_TEST_TMPDIR/big"
	assert_equal "$status" 1
	assert_output '{"broadcast_id":2,"total":1,"invalid":1,"duplicates":0,"opted_out":0}'
	assert_equal "$(bc_state 2)" "0 0 0 1 0"
	[[ "$stderr" == *"big:1: fields_too_large"* ]] || fail "$stderr"
	wb create --business "$biz" --text hi --max-line 63 </dev/null
	assert_equal "$status" 64
	[[ "$stderr" == *"--max-line: not a size from 64 to 1073741824"* ]]
	assert_equal "$(count whatsapp_broadcasts)" 2
	db_intact 1
}

@test "create: each text option at its column's limit is stored, one character more is a usage error naming it" {
	biz=$(bc_business meta)
	c255=$(printf 'ש%.0s' $(seq 255))    # 255 characters, 510 bytes
	e255=$(printf '😀%.0s' $(seq 255))   # 255 characters, 1020 bytes
	n=0
	for opt in --name --idempotency-key; do
		for v in "$c255" "$e255"; do
			wb create --business "$biz" --text hi "$opt" "$v" < <(bc_numbers 1)
			assert_success
			n=$((n + 1))
			col=${opt#--}
			same_text "SELECT ${col//-/_} FROM whatsapp_broadcasts WHERE id = $n" "$v"
			wb create --business "$biz" --text hi "$opt" "${v}x" < <(bc_numbers 1)
			assert_equal "$status" 64
			[[ "$stderr" == *"$opt: longer than 255 characters"* ]] || fail "$opt: $stderr"
		done
	done
	wb create --business "$biz" --template "$e255" --language abcdefghijklmnop < <(bc_numbers 1)
	assert_success
	n=$((n + 1))
	same_text "SELECT template_name FROM whatsapp_broadcasts WHERE id = $n" "$e255"
	same_text "SELECT template_language FROM whatsapp_broadcasts WHERE id = $n" abcdefghijklmnop
	wb create --business "$biz" --template "${e255}x" --language en < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--template: longer than 255 characters"* ]]
	wb create --business "$biz" --template t --language abcdefghijklmnopq < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--language: longer than 16 characters"* ]]
	wb create --business "$biz" --text hi --name $'bad \xff byte' < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--name: not UTF-8 text"* ]]
	wb create --business "$biz" --text hi --region "${HOSTILE[0]}" < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--region: unknown region code"* ]]
	wb create --business "${HOSTILE[0]}" --text hi < <(bc_numbers 1)
	assert_equal "$status" 64
	[[ "$stderr" == *"--business: not a business id"* ]]
	assert_equal "$(count whatsapp_broadcasts)" "$n"
	db_intact 1
}

# --- wa-broadcast mark -----------------------------------------------------

@test "mark: hostile message ids, error codes and messages from the sender are stored byte for byte" {
	n=${#HOSTILE[@]}
	bc_new $((2 * n))
	results "$BID" 'if $k < ($h | length) then {status: "sent", attempts: 1, message_id: $h[$k]}
		else {status: "failed", attempts: 1, error: {code: $h[$k - ($h | length)],
		class: "permanent", message: $h[$k - ($h | length)]}} end'
	wb mark "$BID" "$BATS_TEST_TMPDIR/results"
	# permanent failures: nothing a retry could mend, the broadcast is done
	assert_success
	assert_equal "$(jq -r .status <<<"$output")" completed
	r="FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID"
	same_json "SELECT message_id, id $r AND status = 'sent'" "$HJ"
	same_json "SELECT error_code, id $r AND status = 'failed'" "$HJ"
	same_json "SELECT error_message, id $r AND status = 'failed'" "$HJ"
	assert_equal "$(bc_state "$BID")" "0 0 $n $n 0"
	bc_consistent "$BID"
	db_intact 1
}

@test "mark: JSON \\u0000 in a result is refused, never stored cut short" {
	bc_new 3
	results "$BID" 'if $k == 0 then {status: "sent", attempts: 1, message_id: "wamid.ok"} else {} end'
	# hand-written: jq would not make these
	sed -i -e '2s/}$/,"status":"failed","attempts":1,"error":{"code":"x","class":"permanent","message":"a\\u0000DROP"}}/' \
		-e '3s/}$/,"status":"sent","attempts":1,"message_id":"wamid.A\\u0000B"}/' "$BATS_TEST_TMPDIR/results"
	grep -c 'u0000' "$BATS_TEST_TMPDIR/results" | grep -qx 2
	wb mark "$BID" "$BATS_TEST_TMPDIR/results"
	# one sent, two for review: partial, exit 1
	assert_equal "$status" 1
	assert_equal "$(grep -cE 'NUL|\\u0000' <<<"$stderr")" 2
	assert_equal "$(count "whatsapp_broadcast_recipients WHERE message_id = 'wamid.A' OR error_message = 'a'")" 0
	# refused results: handed over, no usable answer: left for review
	assert_equal "$(psql_q "SELECT string_agg(status || '/' || coalesce(error_code, '-'), ' ' ORDER BY id)
		FROM whatsapp_broadcast_recipients")" "sent/- failed/no_result failed/no_result"
	bc_consistent "$BID"
	db_intact 1
}

@test "mark: a result line over --max-line is refused naming the limit" {
	bc_new 2
	yes 'שלוםשלוםשלום' | tr -d '\n' | head -c 10485760 >"$BATS_TEST_TMPDIR/msg"
	wa-broadcast export "$BID" >"$BATS_TEST_TMPDIR/exported"
	jq -cn --rawfile m "$BATS_TEST_TMPDIR/msg" '[inputs] | to_entries[] | .value + (if .key == 0
		then {status: "sent", attempts: 1, message_id: "wamid.ok"}
		else {status: "failed", attempts: 1, error: {code: "rejected", class: "permanent", message: $m}} end)' \
		"$BATS_TEST_TMPDIR/exported" >"$BATS_TEST_TMPDIR/results"
	wb mark "$BID" "$BATS_TEST_TMPDIR/results"
	# one sent, one for review: partial, exit 1
	assert_equal "$status" 1
	[[ "$stderr" == *"results:2: "*"line longer than 1048576 bytes"* ]] || fail "unclear: $stderr"
	# the one refused is settled for review, not left in flight
	assert_equal "$(bc_state "$BID")" "0 0 1 1 0"
	assert_equal "$(psql_q "SELECT error_code FROM whatsapp_broadcast_recipients WHERE status = 'failed'")" no_result
	bc_consistent "$BID"
	db_intact 1
}

@test "mark: a 10 MB error message under --max-line is stored cut at a character boundary" {
	bc_new 1
	yes 'שלוםשלוםשלום' | tr -d '\n' | head -c 10485760 >"$BATS_TEST_TMPDIR/msg"
	wa-broadcast export "$BID" >"$BATS_TEST_TMPDIR/exported"
	jq -cn --rawfile m "$BATS_TEST_TMPDIR/msg" 'input + {status: "failed", attempts: 1,
		error: {code: "rejected", class: "permanent", message: $m}}' \
		"$BATS_TEST_TMPDIR/exported" >"$BATS_TEST_TMPDIR/results"
	wb mark --max-line 33554432 "$BID" "$BATS_TEST_TMPDIR/results"
	# its only recipient failed: the broadcast failed, exit 1
	assert_equal "$status" 1
	# a prefix of what was said, whole characters only (no U+FFFD)
	assert_equal "$(psql_q "SELECT length(error_message) >= 100, octet_length(error_message) <= 255,
		error_message = left(repeat('שלום', 200), length(error_message))
		FROM whatsapp_broadcast_recipients")" "t|t|t"
	db_intact 1
}

# --- wa-broadcast run: what providers answer -----------------------------------

@test "run: hostile ids and error messages from Baileys and Meta are stored as given" {
	fake_start
	n=${#HOSTILE[@]}
	# Baileys: an id each, a 400 with the value as its error, a 500
	# send_failed with it; Meta: an id each, an error with the value as
	# message and details. (Recipient k is 9725000000kk for Baileys,
	# 9725100000kk for Meta; ids in a new database count from 1.)
	jq -r --argjson n "$n" '. as $h | $h | to_entries[] | .key as $k | .value as $v |
		"\(972500000000 + $k)\t200\t\({ok: true, messageId: $v, status: "sent"} | tojson)",
		"\(972500000000 + $n + $k)\t400\t\({error: $v} | tojson)",
		"\(972500000000 + 2 * $n + $k)\t500\t\({error: "send_failed", message: $v} | tojson)",
		"\(972510000000 + $k)\t400\t\({error: {message: $v, type: "OAuthException", code: 131026,
			error_data: {details: $v}}} | tojson)",
		"\(972510000000 + $n + $k)\t200\t\({messaging_product: "whatsapp", messages: [{id: $v}]} | tojson)"' \
		<<<"$HJ" | while IFS=$'\t' read -r to st body; do fake_reply "$to" "$st" "$body"; done
	# 10 MB answers: only their start is read, and that is no JSON
	big=$(yes 'x'"'"'); DROP TABLE business; -- \\ $$ שלום' | tr -d '\n' | head -c 10485760 | jq -Rs .)
	fake_reply $((972500000000 + 3 * n)) 500 "{\"error\":\"send_failed\",\"message\":$big}"
	fake_reply $((972500000000 + 3 * n + 1)) 200 "{\"ok\":true,\"messageId\":$big}"
	bc_new $((3 * n + 2))
	wb run --no-progress "$BID"
	assert_equal "$status" 1
	assert_equal "$(wc -l <"$FAKE_DIR/sends")" $((3 * n + 2))
	r="FROM whatsapp_broadcast_recipients WHERE broadcast_id = $BID"
	same_json "SELECT message_id, id $r AND id <= $n" "$HJ"
	same_json "SELECT error_message, id $r AND id > $n AND id <= $((2 * n))" "$HJ"
	same_json "SELECT error_message, id $r AND id > $((2 * n)) AND id <= $((3 * n))" \
		"$(jq -c 'map("send_failed: " + .)' <<<"$HJ")"
	same_json "SELECT error_code || '/' || error_class || ': ' || error_message, id $r AND id > $((3 * n))" \
		'["server_error/ambiguous: Baileys failed (HTTP 500); it may have sent",
		  "bad_response/ambiguous: Baileys answered 200 without a messageId"]'
	assert_equal "$(psql_q "SELECT string_agg(DISTINCT coalesce(error_code, '-') || '/' || coalesce(error_class, '-'), ' ')
		$r AND id <= $((3 * n))")" "-/- bad_request/permanent send_failed/ambiguous"
	bc_consistent "$BID"
	m=$(bc_business meta)
	id=$(bc_numbers $((2 * n)) 972510000000 | bc_create --business "$m" --text hi)
	wb run --no-progress "$id"
	assert_success
	r="FROM whatsapp_broadcast_recipients WHERE broadcast_id = $id"
	first=$(psql_q "SELECT min(id) $r")
	same_json "SELECT error_code || ': ' || error_message, id $r AND id < $((first + n))" \
		"$(jq -c 'map("undeliverable: " + . + ": " + .)' <<<"$HJ")"
	same_json "SELECT message_id, id $r AND id >= $((first + n))" "$HJ"
	bc_consistent "$id"
	db_intact 2
}

@test "run: a provider message over 255 bytes is stored cut at a character boundary" {
	fake_start
	fake_reply 972500000000 500 "$(jq -cn --arg m "x$(printf 'ש%.0s' $(seq 300))" '{error: "send_failed", message: $m}')"
	bc_new 1
	wb run --no-progress "$BID"
	assert_equal "$status" 1
	assert_equal "$(psql_q "SELECT error_code, length(error_message) >= 100, octet_length(error_message) <= 255,
		error_message = 'send_failed: x' || repeat('ש', length(error_message) - 14)
		FROM whatsapp_broadcast_recipients")" "send_failed|t|t|t"
	db_intact 1
}

@test "pipeline: a provider message over 255 bytes: wa-send writes valid UTF-8, mark records it" {
	fake_start
	fake_reply 972500000000 500 "$(jq -cn --arg m "x$(printf 'ש%.0s' $(seq 300))" '{error: "send_failed", message: $m}')"
	bc_new 1
	wa-broadcast export "$BID" | wa-send --context broadcast >"$BATS_TEST_TMPDIR/sent" 2>/dev/null || true
	run iconv -f UTF-8 -t UTF-8 "$BATS_TEST_TMPDIR/sent"
	assert_success
	wb mark "$BID" "$BATS_TEST_TMPDIR/sent"
	# its only recipient failed (ambiguous: it may have gone out): exit 1
	assert_equal "$status" 1
	assert_equal "$(psql_q "SELECT status, error_code, error_class, error_message = 'send_failed: x' ||
		repeat('ש', length(error_message) - 14) FROM whatsapp_broadcast_recipients")" "failed|send_failed|ambiguous|t"
	db_intact 1
}

# --- limits on what is sent ------------------------------------------------------

@test "run: Meta's 4096 characters go out; one more fails each recipient naming the limit, nothing sent" {
	biz=$(bc_business meta)
	t4096=$(printf '😀%.0s' $(seq 4096))
	a=$(bc_numbers 2 | bc_create --business "$biz" --text "$t4096")
	b=$(bc_numbers 2 972510000000 | bc_create --business "$biz" --text "${t4096}x")
	wb run --no-progress "$a"
	assert_success
	assert_equal "$(provider_sends | jq -r '.body.text.body | length' | sort -u)" 4096
	wb run --no-progress "$b"
	assert_equal "$status" 1
	assert_equal "$(bc_state "$b") $(bc_col "$b" status)" "0 0 0 2 0 failed"
	assert_equal "$(psql_q "SELECT DISTINCT error_code || ' ' || error_class || ': ' || error_message
		FROM whatsapp_broadcast_recipients WHERE broadcast_id = $b")" \
		"text_too_long permanent: text longer than Meta's 4096 characters"
	assert_equal "$(provider_stats sends)" 2
	bc_consistent "$b"
	db_intact 1
}

@test "run: media over the 16 MB (100 MB document) cap fails each recipient naming it, nothing sent; exactly at it goes" {
	biz=$(bc_business)
	d=$BATS_TEST_TMPDIR
	truncate -s $((16 * 1024 * 1024 + 1)) "$d/over.jpg"
	truncate -s $((100 * 1024 * 1024 + 1)) "$d/over.pdf"
	a=$(bc_numbers 2 | bc_create --business "$biz" --media "{\"type\":\"image\",\"path\":\"$d/over.jpg\"}")
	b=$(bc_numbers 1 | bc_create --business "$biz" --media "{\"type\":\"document\",\"path\":\"$d/over.pdf\"}")
	wb run --no-progress "$a" "$b"
	assert_equal "$status" 1
	assert_equal "$(bc_state "$a") $(bc_col "$a" status)" "0 0 0 2 0 failed"
	assert_equal "$(psql_q "SELECT DISTINCT broadcast_id || ' ' || error_code || ' ' || error_class || ': ' || error_message
		FROM whatsapp_broadcast_recipients ORDER BY 1")" \
		"$a media_too_large permanent: $d/over.jpg: 16777217 bytes, over the 16 MB limit for image
$b media_too_large permanent: $d/over.pdf: 104857601 bytes, over the 100 MB limit for document"
	assert_equal "$(provider_stats sends)" 0
	bc_consistent "$a"
	# exactly at the cap: read and built (a dry run shows it), and sent
	# by a service whose express.json limit was raised
	export WA_BAILEYS_MAX_BODY=0
	head -c $((16 * 1024 * 1024)) /dev/urandom >"$d/at.jpg"
	run --separate-stderr wa-send --dry-run --business "$biz" --to +972500000000 \
		--media "{\"type\":\"image\",\"path\":\"$d/at.jpg\"}"
	printf '%s\n%s\n' "$output" "$stderr" >>"$BATS_FILE_TMPDIR/outputs"
	assert_success
	assert_equal "$(jq -r .request.body.media.data <<<"$output")" "<base64 of 16777216 bytes>"
	c=$(bc_numbers 1 | bc_create --business "$biz" --media "{\"type\":\"image\",\"path\":\"$d/at.jpg\"}")
	wb run --no-progress "$c"
	assert_success
	assert_equal "$(provider_stats sends) $(provider_sends | jq -r .body.media.data)" "1 <22369624 bytes>"
	db_intact 1
}

# --- control --------------------------------------------------------------------

@test "cancel, pause, resume, retry, run, export, status, mark: hostile ids are usage errors; a hostile --reason is stored as given" {
	bc_new 1
	for v in "${HOSTILE[0]}" "${HOSTILE[4]}" "1 OR 1=1" "1; DROP TABLE business" ""; do
		for c in cancel pause resume retry run export status mark; do
			wb "$c" "$v" </dev/null
			assert_equal "$status" 64
			[[ "$stderr" == *"$c: not a broadcast id"* ]] || fail "$c [$v]: $stderr"
		done
	done
	for v in "${HOSTILE[@]}" $'two\nlines'; do
		wb pause --reason "$v" "$BID"
		assert_success
		same_text "SELECT pause_reason FROM whatsapp_broadcasts WHERE id = $BID" "$v"
		assert_equal "$(jq -j .pause_reason <<<"$output")" "$v"
		wb resume "$BID"
		assert_success
	done
	wb pause --reason $'\xff\xfe' "$BID"
	assert_equal "$status" 64
	[[ "$stderr" == *"--reason: not UTF-8 text"* ]]
	assert_equal "$(bc_state "$BID") $(bc_col "$BID" status)" "1 0 0 0 0 queued"
	db_intact 1
}

# --- wa-migrate -------------------------------------------------------------------

mig_dir() {
	MIG=$BATS_TEST_TMPDIR/mig
	mkdir -p "$MIG"
	cp "$WA_ROOT"/migrations/*.sql "$MIG"
	NMIG=$(ls "$MIG" | wc -l)
	MDB=$(pg_new_db)
}

@test "wa-migrate: a migration named with a quote or other odd characters is refused before anything runs" {
	mig_dir
	for name in "0099_x'y" '0099_a;b' '0099_a b' '0099_$$' '0099_a\b' '0099_שלום' '0099_a"b'; do
		printf 'CREATE TABLE evil (x int);\n' >"$MIG/$name.sql"
		run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
		assert_equal "$status" 65
		[[ "$stderr" == *"$MIG/$name.sql: not a migration name"* ]] || fail "$name: $stderr"
		rm "$MIG/$name.sql"
	done
	# nothing ran: not even schema_migrations was made
	assert_equal "$(psql_q "SELECT to_regclass('schema_migrations') IS NULL AND to_regclass('evil') IS NULL" "$MDB")" t
}

@test "wa-migrate: hostile SQL and a 10 MB value are the migration's own; its name and checksum row is stored exactly" {
	mig_dir
	f=$MIG/0099_robert-Tables_drop--.sql
	{
		echo "-- x'); DROP TABLE business; -- \\' \$\$ שלום 😀"
		echo 'CREATE TABLE hostile (id int PRIMARY KEY, v text);'
		for idx in "${!HOSTILE[@]}"; do
			printf 'INSERT INTO hostile VALUES (%d, $h$%s$h$);\n' "$idx" "${HOSTILE[$idx]}"
		done
		printf "INSERT INTO hostile VALUES (100, E'back\\\\\\\\slash \\\\' quote');\n"
		printf 'INSERT INTO hostile VALUES (101, $h$'
		yes "x'); DROP TABLE business; -- \\ \$\$ שלום" | tr -d '\n' | head -c 10485760
		printf '$h$);\n'
	} >"$f"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_success
	assert_equal "$(psql_q "SELECT name || ' ' || checksum FROM schema_migrations WHERE version = 99" "$MDB")" \
		"robert-Tables_drop-- $(sha256sum "$f" | cut -c1-64)"
	for idx in "${!HOSTILE[@]}"; do
		DATABASE_URL=$MDB same_text "SELECT v FROM hostile WHERE id = $idx" "${HOSTILE[$idx]}"
	done
	DATABASE_URL=$MDB same_text "SELECT v FROM hostile WHERE id = 100" "back\\slash ' quote"
	assert_equal "$(psql_q "SELECT md5(v) FROM hostile WHERE id = 101" "$MDB")" \
		"$(yes "x'); DROP TABLE business; -- \\ \$\$ שלום" | tr -d '\n' | head -c 10485760 | md5sum | cut -c1-32)"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG" status
	assert_success
	assert_equal "$(tail -1 <<<"$output" | jq -c '[.version, .name, .state]')" '[99,"robert-Tables_drop--","applied"]'
	assert_equal "$(psql_q "SELECT count(*) FROM business" "$MDB")" 0
}

@test "wa-migrate: a NUL byte, invalid UTF-8, or a failure half way: refused, nothing of it applied" {
	mig_dir
	wa-migrate -q --db "$MDB" --dir "$MIG"
	printf 'CREATE TABLE a (x int);\n-- \0\n' >"$MIG/0099_nul.sql"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_equal "$status" 65
	[[ "$stderr" == *"0099_nul.sql: holds a NUL byte: not SQL text"* ]] || fail "$stderr"
	rm "$MIG/0099_nul.sql"
	printf "CREATE TABLE b (x text DEFAULT 'caf\xe9');\n" >"$MIG/0099_latin1.sql"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_equal "$status" 65
	[[ "$stderr" == *"0099_latin1.sql"*"invalid byte sequence for encoding \"UTF8\""* ]] || fail "$stderr"
	rm "$MIG/0099_latin1.sql"
	printf 'CREATE TABLE c (x int);\nINSERT INTO c VALUES (1);\nSELECT * FROM "x'"'"'); DROP TABLE business; --";\n' \
		>"$MIG/0099_half.sql"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_equal "$status" 65
	[[ "$stderr" == *"0099_half.sql:3: relation \"x'); DROP TABLE business; --\" does not exist"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT count(*), max(version) FROM schema_migrations" "$MDB")" "$NMIG|$NMIG"
	assert_equal "$(psql_q "SELECT coalesce(to_regclass('a'), to_regclass('b'), to_regclass('c')) IS NULL
		AND to_regclass('business') IS NOT NULL" "$MDB")" t
}

@test "wa-migrate: a name of 127 characters is stored exactly, 128 is refused naming the limit" {
	mig_dir
	n127=$(printf 'n%.0s' $(seq 126))x
	printf 'SELECT 1;\n' >"$MIG/0098_$n127.sql"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_success
	assert_equal "$(psql_q "SELECT name FROM schema_migrations WHERE version = 98" "$MDB")" "$n127"
	printf 'SELECT 1;\n' >"$MIG/0099_${n127}y.sql"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_equal "$status" 65
	[[ "$stderr" == *"0099_${n127}y.sql"*127* ]] || fail "does not name the limit: $stderr"
	assert_equal "$(psql_q "SELECT max(version) FROM schema_migrations" "$MDB")" 98
}

@test "wa-migrate: a migration file of 64 MiB is applied, one byte more is refused naming the limit" {
	mig_dir
	# a comment of exactly 64 MiB in all: -- xxx...x\n
	{ printf -- '-- '; head -c $((64 * 1024 * 1024 - 4)) /dev/zero | tr '\0' x; printf '\n'; } >"$MIG/0098_at.sql"
	assert_equal "$(wc -c <"$MIG/0098_at.sql")" 67108864
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_success
	{ printf -- '-- '; head -c $((64 * 1024 * 1024 - 3)) /dev/zero | tr '\0' x; printf '\n'; } >"$MIG/0099_over.sql"
	run --separate-stderr wa-migrate --db "$MDB" --dir "$MIG"
	assert_equal "$status" 65
	[[ "$stderr" == *"0099_over.sql: larger than 67108864 bytes"* ]] || fail "$stderr"
	assert_equal "$(psql_q "SELECT max(version) FROM schema_migrations" "$MDB")" 98
}
