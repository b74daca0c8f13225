#!/usr/bin/env bats
# scripts/check-layers: the tree's includes follow the layers of common/,
# and the check fails, naming the file, on each kind of violation.

setup() {
	load lib/common
	T=$BATS_TEST_TMPDIR/tree
	# A small tree that passes: each folder's public header, the engine and
	# a provider with the table between them.
	mkfile common/base/wa_base.h
	mkfile common/record/wa_rec.h '"base/wa_base.h"'
	mkfile common/net/wa_http.h '"base/wa_base.h"'
	mkfile common/cfg/wa_cfg.h '"base/wa_base.h"'
	mkfile common/send/wa_send.h '"cfg/wa_cfg.h"'
	mkfile common/send/provider/provider.h '"send/wa_send.h"' '"net/wa_http.h"'
	mkfile common/send/provider/one.c '"provider.h"' '"record/wa_rec.h"'
	mkfile common/send/send.c '"send/provider/provider.h"' '"net/wa_http.h"'
	mkfile common/bcast/bc_int.h '"send/wa_send.h"'
	mkfile common/bcast/run.c '"bc_int.h"'
	mkfile cmd/wa-x.c '"bcast/wa_bcast.h"' '"send/wa_send.h"'
	mkfile common/bcast/wa_bcast.h
}

# mkfile PATH [INCLUDE...]: a file of the tree that includes each INCLUDE.
mkfile() {
	local f=$T/$1 i
	shift
	mkdir -p "${f%/*}"
	: >"$f"
	for i in "$@"; do
		printf '#include %s\n' "$i" >>"$f"
	done
}

@test "the tree's includes follow the layers" {
	run "$WA_ROOT/scripts/check-layers" "$WA_ROOT"
	assert_success
	assert_output --partial "the includes follow the layers"
}

@test "a small tree that follows the layers passes" {
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_success
}

@test "a cycle between folders fails, naming each file in it" {
	mkfile common/base/wa_base.h '"record/wa_rec.h"'
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_failure
	assert_output --partial 'common/base/wa_base.h:1: #include "record/wa_rec.h": in a cycle between folders: '
	assert_output --partial 'common/record/wa_rec.h:1: #include "base/wa_base.h": in a cycle between folders: '
}

@test "the engine's type header including the provider table closes a cycle" {
	mkfile common/send/wa_send.h '"cfg/wa_cfg.h"' '"send/provider/provider.h"'
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_failure
	assert_output --partial 'common/send/wa_send.h:2: #include "send/provider/provider.h": in a cycle between folders: '
	assert_output --partial 'common/send/provider/provider.h:1: #include "send/wa_send.h": in a cycle'
}

@test "an arrow the table does not allow fails, naming the file" {
	mkfile common/net/http.c '"net/wa_http.h"' '"send/wa_send.h"'
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_failure
	assert_output --partial 'common/net/http.c:2: #include "send/wa_send.h": net -> send is not an allowed arrow'
	refute_output --partial 'http.c:1:'
}

@test "a provider calling into the engine beyond its type header fails" {
	mkfile common/send/wa_queue.h
	mkfile common/send/provider/two.c '"provider.h"' '"send/wa_queue.h"'
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_failure
	assert_output --partial 'common/send/provider/two.c:2: #include "send/wa_queue.h": send/provider -> send is allowed to send/wa_send.h only'
}

@test "a private header used outside its folder fails, naming the file" {
	mkfile common/bcast/work.c '"bc_int.h"'
	mkfile cmd/wa-y.c '"bcast/bc_int.h"'
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_failure
	assert_output --partial 'cmd/wa-y.c:1: #include "bcast/bc_int.h": private header of bcast/ used from cmd/'
	refute_output --partial 'work.c'
}

@test "an include that names no file of the tree fails" {
	mkfile common/record/rec.c '"record/wa_rec.h"' '"recrod/wa_rec.h"'
	run "$WA_ROOT/scripts/check-layers" "$T"
	assert_failure
	assert_output --partial 'common/record/rec.c:2: #include "recrod/wa_rec.h": no such file'
}
