# wa: small C programs that send WhatsApp messages and run broadcasts.
#
#   make            build into $(B)
#   make check      install what is missing, build, check the layering of
#                   includes, lint the man pages, run every test file
#                   (several at once), each file's time at the end
#   make check-all  what check leaves out, for contributors and CI: the long
#                   tests, wa-send's under ThreadSanitizer, and every file
#                   again under AddressSanitizer + UBSan
#   make demo       the main job, on a throw-away database and test provider
#   make bench      timing targets (never part of check)
#   make install    PREFIX=/usr/local DESTDIR=
#   V=1             show the commands of the build (else one short line each)

VERSION  = 0.1.0
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/wa
COMPDIR ?= $(PREFIX)/share/bash-completion/completions

# Build directory: the sanitizer build lives beside the normal one.
B       ?= build/release
SAN     ?=
WERROR  ?=

PKGS     = libcurl yajl libpq
# Asked once per make run (empty before scripts/install-deps has run).
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libmicrohttpd 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
MHD_LIBS   := $(shell pkg-config --libs libmicrohttpd yajl 2>/dev/null)
CC      ?= cc
CXX     ?= c++
AR      ?= ar
# Sanitizer builds optimize less, so reports point at the right line.
ifneq ($(SAN),)
OPT     ?= -O1 -g -fno-omit-frame-pointer
else
OPT     ?= -O2 -g
endif
CFLAGS  ?= $(OPT)
CXXFLAGS ?= $(OPT)

override CPPFLAGS += -Icommon -D_GNU_SOURCE \
	-DWA_VERSION='"$(VERSION)"' -DWA_DATADIR='"$(DATADIR)"'
override CFLAGS   += -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter \
	-Wformat=2 $(WERROR) $(SAN) -MMD -MP $(PKG_CFLAGS)
override CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter \
	$(WERROR) $(SAN) -MMD -MP
override LDFLAGS  += $(SAN)
# libphonenumber and what it stands on (protobuf, ICU, abseil) are linked
# statically: resolving their C++ symbols at start-up pages in some 4 MB of
# shared-library tables, more than wa-normalize's whole working set, and
# every call into them goes through the PLT. Debian ships the archives with
# the -dev packages; PHONE_LIBS=-lphonenumber links the shared library.
PHONE_DEPS := $(filter -lprotobuf -licu% -labsl_%,$(shell pkg-config --static \
	--libs protobuf icu-i18n absl_hash absl_raw_hash_set absl_strings \
	absl_throw_delegate 2>/dev/null))
PHONE_LIBS ?= -Wl,-Bstatic -Wl,--start-group -lphonenumber $(PHONE_DEPS) \
	-Wl,--end-group -Wl,-Bdynamic -lz -lpthread -lrt
# libcsv (common/record/csv.c) ships no pkg-config file.
CSV_LIBS ?= -lcsv
LDLIBS   = $(PKG_LIBS) $(CSV_LIBS) $(PHONE_LIBS) -lstdc++ -lm

# A quiet build: a short line a target ("CC  build/…/x.o"), the commands
# themselves with V=1, nothing at all with V=0.
V ?=
ifeq ($(V),1)
Q =
show =
else ifeq ($(V),0)
Q = @
show =
else
Q = @
show = printf '  %-4s %s\n' $(1) '$@';
endif

# common/ is one folder a layer (README, "The source"); every .c below it goes
# into libwa.a.
LIB_C    = $(sort $(wildcard common/*/*.c common/*/*/*.c))
LIB_CC   = $(sort $(wildcard common/*/*.cc))
LIB_OBJ  = $(LIB_C:%.c=$(B)/%.o) $(LIB_CC:%.cc=$(B)/%.o)
CMDS     = $(patsubst cmd/%.c,%,$(sort $(wildcard cmd/wa-*.c)))
BINS     = $(CMDS:%=$(B)/bin/%)
TOOLS_C  = $(sort $(wildcard tests/tools/*.c))
TOOLS    = $(TOOLS_C:tests/tools/%.c=$(B)/tests/%) $(B)/tests/wa-testprovider
MANS     = $(sort $(wildcard man/*.[1-8]))
MIGRATIONS = $(sort $(wildcard migrations/*.sql))
# The schema version this build needs: the number of the newest migration.
SCHEMA_VERSION := $(or $(shell ls migrations 2>/dev/null | sed -n 's/^0*\([0-9][0-9]*\)_.*\.sql$$/\1/p' | sort -n | tail -1),0)

all: $(BINS) $(TOOLS)

$(B)/libwa.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)$(call show,AR)$(AR) rcs $@ $(LIB_OBJ)

$(B)/common/%.o: common/%.c
	@mkdir -p $(@D)
	$(Q)$(call show,CC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/common/%.o: common/%.cc
	@mkdir -p $(@D)
	$(Q)$(call show,CXX)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

$(B)/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(Q)$(call show,CC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/bin/%: $(B)/cmd/%.o $(B)/libwa.a
	@mkdir -p $(@D)
	$(Q)$(call show,LD)$(CXX) $(LDFLAGS) -o $@ $< $(B)/libwa.a $(LDLIBS)

$(B)/tests/%.o: tests/tools/%.c
	@mkdir -p $(@D)
	$(Q)$(call show,CC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/tests/%: $(B)/tests/%.o $(B)/libwa.a
	$(Q)$(call show,LD)$(CXX) $(LDFLAGS) -o $@ $< $(B)/libwa.a $(LDLIBS)

$(B)/tests/wa-testprovider.o: tests/provider/wa-testprovider.c
	@mkdir -p $(@D)
	$(Q)$(call show,CC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/tests/wa-testprovider: $(B)/tests/wa-testprovider.o
	$(Q)$(call show,LD)$(CC) $(LDFLAGS) -o $@ $< $(MHD_LIBS) -lpthread

# db.o carries the schema version: rebuild it when migrations change.
$(B)/common/db/db.o: $(MIGRATIONS)
$(B)/common/db/db.o: override CPPFLAGS += -DWA_SCHEMA_VERSION=$(SCHEMA_VERSION)

# migrate.o and wa-migrate.o carry DATADIR (the installed migrations): the
# stamp changes, and they are rebuilt, only when DATADIR does, so that
# `make && make install PREFIX=/usr` looks where it installs.
$(B)/datadir.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' >$@
$(B)/common/db/migrate.o $(B)/cmd/wa-migrate.o: $(B)/datadir.stamp

# Objects are kept (not removed as intermediates), so a second make does
# nothing and does not relink.
.SECONDARY: $(CMDS:%=$(B)/cmd/%.o) $(TOOLS:%=%.o)
FORCE:

-include $(LIB_OBJ:.o=.d) $(BINS:$(B)/bin/%=$(B)/cmd/%.d) $(TOOLS:%=%.d)

# --- fuzzing ---------------------------------------------------------------
# libFuzzer harnesses, tests/fuzz/fuzz-NAME.c. `make all` links each with
# tests/fuzz/replay.c into $(B)/tests/fuzz-NAME, an ordinary program that
# tests/fuzz.bats runs over the committed corpus (so check-asan replays it
# under the sanitizers too). `make fuzz` builds them with clang and libFuzzer
# in build/fuzz, fuzzes each for FUZZ_SECONDS on FUZZ_JOBS processes and
# merges new inputs into tests/fuzz/corpus/NAME, to be committed.

FUZZ_NAMES   = $(patsubst tests/fuzz/fuzz-%.c,%,$(sort $(wildcard tests/fuzz/fuzz-*.c)))
FUZZ_REPLAY  = $(FUZZ_NAMES:%=$(B)/tests/fuzz-%)
FUZZ_B       = build/fuzz
FUZZ_SAN     = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1

all: $(FUZZ_REPLAY)

$(B)/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(Q)$(call show,CC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(FUZZ_REPLAY): $(B)/tests/fuzz-%: $(B)/tests/fuzz/fuzz-%.o $(B)/tests/fuzz/replay.o $(B)/libwa.a
	$(Q)$(call show,LD)$(CXX) $(LDFLAGS) -o $@ $(filter %.o,$^) $(B)/libwa.a $(LDLIBS)

# The libFuzzer programs, in a build made with SAN='$(FUZZ_SAN)'.
$(B)/fuzz/fuzz-%: $(B)/tests/fuzz/fuzz-%.o $(B)/libwa.a
	@mkdir -p $(@D)
	$(Q)$(call show,LD)$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/libwa.a $(LDLIBS)

fuzz-build: deps-test
	@$(MAKE) --no-print-directory B=$(FUZZ_B) CC=clang CXX=clang++ \
		SAN='$(FUZZ_SAN)' $(FUZZ_NAMES:%=$(FUZZ_B)/fuzz/fuzz-%)

fuzz: fuzz-build
	@nice -n 10 tests/fuzz/run $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_JOBS)

-include $(FUZZ_NAMES:%=$(B)/tests/fuzz/fuzz-%.d) $(B)/tests/fuzz/replay.d

.PHONY: fuzz fuzz-build

# --- tests -----------------------------------------------------------------

# What running needs (make demo); testing and benchmarks need more.
deps:
	@scripts/install-deps
deps-test:
	@scripts/install-deps --test
deps-bench:
	@scripts/install-deps --bench

# The suite on the normal build, several files at once (tests/tools/suite;
# JOBS at a time, twice the cores by default), then each file's time. What
# takes long or needs its own build is in check-all.
check: deps-test
	@$(MAKE) --no-print-directory WERROR=-Werror all
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory lint-man
	@$(MAKE) --no-print-directory test

# For contributors, and CI after check: the long tests, wa-send's under
# ThreadSanitizer, and the suite again under AddressSanitizer + UBSan.
check-all: deps-test
	@$(MAKE) --no-print-directory WERROR=-Werror all
	@$(MAKE) --no-print-directory check-long
	@$(MAKE) --no-print-directory check-tsan
	@$(MAKE) --no-print-directory check-asan

# wa-send's sending threads under ThreadSanitizer, on its own tests (the
# test provider and tools stay the normal build's); a report fails the test.
TSAN_B = build/tsan
check-tsan: all
	@$(MAKE) --no-print-directory B=$(TSAN_B) WERROR=-Werror \
		SAN=-fsanitize=thread $(CMDS:%=$(TSAN_B)/bin/%)
	@WA_BIN=$(CURDIR)/$(TSAN_B)/bin WA_TESTS=$(CURDIR)/$(B)/tests \
	TSAN_OPTIONS=halt_on_error=1:exitcode=99 \
		tests/tools/suite $(JOBS_FLAG) tests/send.bats tests/send-faults.bats \
		tests/send-route.bats

# valgrind cannot run sanitized programs: its file runs on the release pass.
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all
check-asan:
	@$(MAKE) --no-print-directory B=build/asan WERROR=-Werror SAN='$(ASAN_FLAGS)' \
		TEST_FILES='$(filter-out tests/valgrind.bats,$(wildcard tests/*.bats))' test

# --- long tests (check-long) -------------------------------------------------
# tests/long/: the crash loop and other long tests, on the normal build only
# (not under the sanitizers, whose pass is the files of tests/, which does
# not descend into tests/long). `make check-all` runs them. B may be
# relative or absolute.
check-long: all
	@WA_BIN=$(abspath $(B))/bin WA_TESTS=$(abspath $(B))/tests \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99 \
		tests/tools/suite -j 1 tests/long
# --- end of long tests ---------------------------------------------------------

# make test TEST_FILES="tests/x.bats tests/y.bats" JOBS=1
TEST_FILES = tests
JOBS ?=
JOBS_FLAG = $(if $(JOBS),-j $(JOBS))
test: all
	@WA_BIN=$(CURDIR)/$(B)/bin WA_TESTS=$(CURDIR)/$(B)/tests \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99 \
		tests/tools/suite $(JOBS_FLAG) $(TEST_FILES)

# Every #include in common/ and cmd/ follows the layers of common/: no
# cycle between folders, only the allowed arrows, private headers kept to
# their folder (see scripts/check-layers).
check-layers:
	@scripts/check-layers

lint-man:
	@for m in $(MANS); do \
		out=$$(LC_ALL=C.UTF-8 groff -mdoc -ww -z $$m 2>&1); \
		if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done; echo "man pages: $(words $(MANS)) clean under groff -mdoc -ww"

# The build says nothing unless something is wrong (V=1: every command).
demo: deps
	@echo "make demo: building into $(B)"
	@$(MAKE) --no-print-directory V=$(or $(V),0) all
	@B=$(B) scripts/demo

bench: deps-bench
	@$(MAKE) --no-print-directory all
	@B=$(B) scripts/bench

# --- install ---------------------------------------------------------------
# Beside the migrations, in DATADIR: an example config (README copies it to
# /etc/wa/wa.conf, mode 600) and the systemd service and timer, whose
# ExecStart= names the programs in BINDIR.

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DATADIR)/migrations
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	for m in $(MANS); do \
		s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	if [ -n "$(MIGRATIONS)" ]; then \
		install -m 644 $(MIGRATIONS) $(DESTDIR)$(DATADIR)/migrations; fi
	install -d $(DESTDIR)$(COMPDIR)
	for p in $(CMDS); do \
		install -m 644 scripts/wa-completion.bash $(DESTDIR)$(COMPDIR)/$$p; done
	install -d $(DESTDIR)$(DATADIR)/systemd
	install -m 644 scripts/wa.conf.example $(DESTDIR)$(DATADIR)
	install -m 644 scripts/systemd/wa-broadcast.timer $(DESTDIR)$(DATADIR)/systemd
	sed 's|/usr/local/bin/|$(BINDIR)/|' scripts/systemd/wa-broadcast.service \
		>$(DESTDIR)$(DATADIR)/systemd/wa-broadcast.service
	chmod 644 $(DESTDIR)$(DATADIR)/systemd/wa-broadcast.service

uninstall:
	rm -f $(CMDS:%=$(DESTDIR)$(BINDIR)/%)
	for m in $(MANS); do \
		s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m#man/}; done
	rm -rf $(DESTDIR)$(DATADIR)
	rm -f $(CMDS:%=$(DESTDIR)$(COMPDIR)/%)

clean:
	rm -rf build

.PHONY: all deps deps-test deps-bench check check-all check-asan check-tsan check-long check-layers test lint-man demo bench install uninstall clean FORCE
