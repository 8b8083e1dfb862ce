# volumed — one non-recursive Makefile. `make run`, `make test`, `make bench`,
# `make SANITIZE=1 test` (ASan + UBSan), `make fuzz` (libFuzzer, clang).

CC      ?= cc
PKGS    := libmicrohttpd jansson libcurl libprotobuf-c libnghttp2 libnfs libiscsi
BUILD   := build$(if $(SANITIZE),-san)

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	-Wformat=2 -Wno-format-nonliteral -Wno-format-truncation -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wundef -fno-common -g -O2 -pthread -MMD -MP
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS  += $(CFLAGS_BASE) $(if $(SANITIZE),$(SAN_FLAGS)) -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += -pthread $(if $(SANITIZE),$(SAN_FLAGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# The core library: everything but the two programs' mains and the client.
CLIENT_SRCS := volumed/volctl.c volumed/apiclient.c volumed/progress.c
CLIENT_ONLY := volumed/volctl.c
MAIN_SRCS   := volumed/main.c
CORE_SRCS   := $(filter-out $(CLIENT_ONLY) $(MAIN_SRCS),$(wildcard volumed/*.c)) \
	$(wildcard drivers/*.c) $(wildcard docker-plugin/*.c) $(wildcard csi/*.c) \
	drivers/fuse/nfs_url.c
COMMON_SRCS := volumed/err.c volumed/log.c volumed/names.c

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

# Generated protobuf code (protoc-c), built fresh into $(BUILD)/gen and never
# checked in: csi/csi.proto -> $(GEN)/csi/csi.pb-c.{c,h} (#include
# "csi/csi.pb-c.h"; types Csi__V1__*), plus the two well-known types it
# imports, from libprotobuf-dev's copies, -> $(GEN)/google/protobuf/*.pb-c.*.
# Every object waits (order-only) for the headers, so `make -jN` from a clean
# tree works; the -MMD .d files then track real header use for rebuilds.
GEN         := $(BUILD)/gen
PROTOC_C    ?= protoc-c
PROTO_INC   ?= /usr/include
GEN_WKT     := wrappers timestamp
GEN_SRCS    := $(GEN)/csi/csi.pb-c.c $(patsubst %,$(GEN)/google/protobuf/%.pb-c.c,$(GEN_WKT))
GEN_HDRS    := $(GEN_SRCS:.c=.h)
GEN_OBJS    := $(GEN_SRCS:.c=.o)

CORE_OBJS := $(call obj,$(CORE_SRCS)) $(GEN_OBJS)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/replay_%,$(FUZZ_SRCS))

PROGRAMS := $(BUILD)/bin/volumed $(BUILD)/bin/volctl $(BUILD)/bin/volumed-nfs-fuse \
	$(BUILD)/bin/volumed-iscsi-fuse

.PHONY: all deps deps-test deps-fuzz run test unit fuzz-replay integ integ-cluster bench fuzz clean \
	docker-plugin install uninstall
all: $(PROGRAMS)

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh build test
deps-fuzz:
	@scripts/deps.sh build test fuzz

Q := $(if $(V),,@)

$(BUILD)/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# One protoc-c run writes both the .c and the .h (grouped pattern targets).
$(GEN)/csi/%.pb-c.c $(GEN)/csi/%.pb-c.h: csi/%.proto
	@mkdir -p $(GEN)
	@$(if $(Q),echo "  PROTOC  $<")
	$(Q)$(PROTOC_C) -I. -I$(PROTO_INC) --c_out=$(GEN) $<

$(GEN)/google/protobuf/%.pb-c.c $(GEN)/google/protobuf/%.pb-c.h: $(PROTO_INC)/google/protobuf/%.proto
	@mkdir -p $(GEN)
	@$(if $(Q),echo "  PROTOC  $<")
	$(Q)$(PROTOC_C) -I$(PROTO_INC) --c_out=$(GEN) $<

# protoc-c 1.4 output builds clean under the project's full flag set; should
# another version trip a warning, relax it here (for $(GEN) only), e.g.
# GEN_CFLAGS_EXTRA=-Wno-error.
GEN_CFLAGS_EXTRA ?=
$(GEN)/%.o: $(GEN)/%.c | $(GEN_HDRS)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(GEN_CFLAGS_EXTRA) -c -o $@ $<

.SECONDARY: $(GEN_SRCS) $(GEN_HDRS)

$(BUILD)/libvolumed.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bin/volumed: $(call obj,$(MAIN_SRCS)) $(BUILD)/libvolumed.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/volctl: $(call obj,$(CLIENT_SRCS) $(COMMON_SRCS) volumed/cli.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# volumed-nfs-fuse, the userspace NFS data path (drivers/fuse/nfs_*.c): its
# own libraries (libfuse3, libnfs), so volumed itself links neither. Only the
# pure URL parser is also in libvolumed.a (unit tests, fuzzing).
NFS_FUSE_PKGS := fuse3 libnfs
NFS_FUSE_SRCS := drivers/fuse/nfs_fuse.c drivers/fuse/nfsfs.c drivers/fuse/nfs_url.c \
	drivers/fuse/helper.c drivers/fuse/lease_guard.c
$(BUILD)/drivers/fuse/nfs%.o $(BUILD)/drivers/fuse/helper.o $(BUILD)/drivers/fuse/lease_guard.o: CFLAGS += $(shell pkg-config --cflags $(NFS_FUSE_PKGS) 2>/dev/null)

$(BUILD)/bin/volumed-nfs-fuse: $(call obj,$(NFS_FUSE_SRCS) volumed/err.c volumed/log.c volumed/lease.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(NFS_FUSE_PKGS) 2>/dev/null)

# volumed-iscsi-fuse, the userspace iSCSI data path (drivers/fuse/iscsi*.c):
# one file "disk" over a LUN, through libfuse3 and libiscsi.
ISCSI_FUSE_PKGS := fuse3 libiscsi
ISCSI_FUSE_SRCS := drivers/fuse/iscsi_fuse.c drivers/fuse/iscsifs.c drivers/fuse/helper.c \
	drivers/fuse/lease_guard.c
$(BUILD)/drivers/fuse/iscsi%.o: CFLAGS += $(shell pkg-config --cflags $(ISCSI_FUSE_PKGS) 2>/dev/null)

$(BUILD)/bin/volumed-iscsi-fuse: $(call obj,$(ISCSI_FUSE_SRCS) volumed/err.c volumed/log.c volumed/lease.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(ISCSI_FUSE_PKGS) 2>/dev/null)

# Shared test scaffolding (tests/support/fixture.h), in every test and replay binary.
TEST_SUPPORT_OBJS := $(BUILD)/tests/support/fixture.o

$(BUILD)/tests/test_apiclient: $(BUILD)/tests/unit/test_apiclient.o $(call obj,volumed/apiclient.c) \
		$(TEST_SUPPORT_OBJS) $(BUILD)/libvolumed.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(TEST_SUPPORT_OBJS) $(BUILD)/libvolumed.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Fuzz targets replayed over their corpus and every crash input found so far.
$(BUILD)/tests/replay_%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay.o $(TEST_SUPPORT_OBJS) \
		$(BUILD)/libvolumed.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---- tests/tools/iscsi_client_check: a CLI over drivers/iscsi_client.h for
# tests/integ/test_iscsi_client.sh (built by `make integ`). Linked with the
# few objects it uses, so it builds while unrelated core files are in flux.
ISCSI_CLIENT_CHECK := $(BUILD)/tests/iscsi_client_check
$(ISCSI_CLIENT_CHECK): $(call obj,tests/tools/iscsi_client_check.c drivers/iscsi_client.c \
		volumed/err.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
integ: $(ISCSI_CLIENT_CHECK)
# ---- end iscsi_client_check

# Each entry point installs what is missing first, then builds in a new make
# so that pkg-config's flags are read after the packages exist.
run: deps
	@$(MAKE) --no-print-directory all
	exec $(BUILD)/bin/volumed

# The managed Docker plugin's directory, $(BUILD)/docker-plugin (config.json,
# rootfs/ from this build's programs and the host's libraries and tools);
# then `docker plugin create volumed:VERSION` on the dockerd of DOCKER_HOST
# when one answers (CREATE=0: the directory only; docs/docker-plugin.md).
VERSION     := $(shell sed -n 's/.*define VD_VERSION "\(.*\)".*/\1/p' volumed/core.h)
PLUGIN_NAME ?= volumed
docker-plugin: deps
	@$(MAKE) --no-print-directory all
	@scripts/docker-plugin-rootfs.sh $(BUILD) $(BUILD)/docker-plugin
	@if [ "$(CREATE)" = 0 ]; then echo "plugin directory: $(BUILD)/docker-plugin"; \
	elif docker info >/dev/null 2>&1; then \
		echo "docker plugin create $(PLUGIN_NAME):$(VERSION) $(BUILD)/docker-plugin"; \
		docker plugin create $(PLUGIN_NAME):$(VERSION) $(BUILD)/docker-plugin; \
	else echo "no dockerd answers (DOCKER_HOST); later: docker plugin create" \
		"$(PLUGIN_NAME):$(VERSION) $(BUILD)/docker-plugin"; fi

unit: $(UNIT_BINS)
	@tests/unit/run.sh $(UNIT_BINS)

fuzz-replay: $(REPLAY_BINS)
	@tests/fuzz/replay.sh $(BUILD)

integ: all
	@BUILD=$(BUILD) tests/integ/run.sh

# The multi-node scenarios alone (part of `make integ` too).
integ-cluster: all $(ISCSI_CLIENT_CHECK)
	@BUILD=$(BUILD) tests/integ/run.sh tests/integ/test_cluster.sh

test: deps-test
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(REPLAY_BINS)
	@$(MAKE) --no-print-directory unit fuzz-replay integ

bench: deps-test
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bench/run.sh

# libFuzzer builds (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 30
fuzz: deps-fuzz
	@BUILD=$(BUILD) tests/fuzz/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-san build-fuzz

# ---- make install / make uninstall (docs/install.md): PREFIX (default
# /usr/local) and DESTDIR. volumed and volctl go to PREFIX/sbin, the FUSE
# helpers to PREFIX/libexec/volumed (where an installed volumed looks: its
# ../libexec/volumed/); @SBINDIR@, @LIBEXECDIR@ and @VERSION@ in the unit
# and man pages are filled in for this PREFIX. Installs what $(BUILD) holds.
PREFIX         ?= /usr/local
SBINDIR        := $(PREFIX)/sbin
LIBEXECDIR     := $(PREFIX)/libexec/volumed
MANDIR         ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
VD_VERSION_TEXT := $(shell sed -n 's/^\#define VD_VERSION "\(.*\)"/\1/p' volumed/core.h)
DIST_SUBST = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
	-e 's|@VERSION@|$(VD_VERSION_TEXT)|g'
INSTALLED := $(SBINDIR)/volumed $(SBINDIR)/volctl $(LIBEXECDIR)/volumed-nfs-fuse \
	$(LIBEXECDIR)/volumed-iscsi-fuse $(MANDIR)/man8/volumed.8 $(MANDIR)/man8/volctl.8 \
	$(MANDIR)/man5/volumed.conf.5 $(SYSTEMDUNITDIR)/volumed.service $(BASHCOMPDIR)/volctl

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(BUILD)/bin/volumed $(BUILD)/bin/volctl $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(BUILD)/bin/volumed-nfs-fuse $(BUILD)/bin/volumed-iscsi-fuse \
		$(DESTDIR)$(LIBEXECDIR)/
	set -e; for f in man8/volumed.8 man8/volctl.8 man5/volumed.conf.5; do \
		$(DIST_SUBST) dist/man/$${f#*/} >$(DESTDIR)$(MANDIR)/$$f; \
		chmod 0644 $(DESTDIR)$(MANDIR)/$$f; done
	$(DIST_SUBST) dist/systemd/volumed.service >$(DESTDIR)$(SYSTEMDUNITDIR)/volumed.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/volumed.service
	install -m 0644 dist/bash-completion/volctl $(DESTDIR)$(BASHCOMPDIR)/volctl

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
