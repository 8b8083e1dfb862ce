#!/usr/bin/env bash
# test_iscsi_client.sh — drivers/iscsi_client.c (volumed's own short iSCSI
# sessions) through tests/tools/iscsi_client_check, against a real tgtd on
# loopback: SendTargets discovery, REPORT LUNS + INQUIRY + READ CAPACITY
# against the backing files, persistent reservation state before and while
# a real data-path helper (volumed-iscsi-fuse --pr-key) holds the LUN,
# fencing that helper, zeroing (checked in the backing file, with the
# throughput), CHAP (one-way and mutual; the secret never shown), missing
# targets and LUNs (ENOENT), and the bound on every wait: a closed port, a
# listener that accepts and never answers, one whose SYNs are dropped
# (full backlog) and a target frozen in the middle of a command.
#
# Environment: BUILD as for every integ test.
source "$(dirname "$0")/lib.sh"

CHECK=$VD_BIN/tests/iscsi_client_check
HELPER=$VD_BIN/bin/volumed-iscsi-fuse
[[ -x $CHECK ]] || fail "no $CHECK (make $BUILD/tests/iscsi_client_check, or make integ)"
[[ -x $HELPER ]] || fail "no $HELPER (make all)"
command -v tgtd >/dev/null || fail "tgtd not installed (tgt)"
command -v fusermount3 >/dev/null || fail "fusermount3 not installed (fuse3)"
[[ -c /dev/fuse ]] || fail "no /dev/fuse"

HLOG=$VD_LOG         # helpers' log: shown on failure, checked for sanitizer reports
TIMEOUT_MS=1500      # the bound asked of the client in the timing scenarios
MARGIN_MS=700        # what a failing call may take beyond it
IQN1=iqn.2026-01.io.volumed:client-$VD_ID-a
IQN2=iqn.2026-01.io.volumed:client-$VD_ID-b
IQN3=iqn.2026-01.io.volumed:client-$VD_ID-chap
LUN1=$T/lun1.img     # 64 MiB, IQN1 LUN 1
LUN2=$T/lun2.img     # 32 MiB, IQN2 LUN 3
LUN3=$T/lun3.img     # 256 MiB sparse, IQN3 LUN 1 (CHAP)

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# chk ARGS...: runs the check tool; OUT = stdout, ERR = stderr, RC; fails on
# a sanitizer report.
chk() {
	"$CHECK" "$@" >"$T/chk.out" 2>"$T/chk.err"
	RC=$?
	OUT=$(cat "$T/chk.out")
	ERR=$(cat "$T/chk.err")
	if grep -qE 'Sanitizer|runtime error:' "$T/chk.err"; then
		fail "sanitizer report from: iscsi_client_check $*
$ERR"
	fi
	return 0
}

chk_ok() {
	chk "$@"
	((RC == 0)) || fail "iscsi_client_check $* failed (status $RC): $ERR"
}

# chk_err ERRNAME ARGS...: must fail with ERRNAME, one line on stderr.
chk_err() {
	local want=$1
	shift
	chk "$@"
	((RC == 1)) || fail "iscsi_client_check $* should have failed (status $RC): $OUT $ERR"
	[[ $(grep -c . <<<"$ERR") == 1 ]] || fail "expected one error line from $*, got: $ERR"
	assert_match "$ERR" "^error: $want ms=[0-9]+: " "error of: $*"
	log "  $* -> ${ERR#error: }"
}

# err_ms: the ms= the tool measured around its call.
err_ms() { sed -nE 's/^error: [A-Z0-9?]+ ms=([0-9]+):.*/\1/p' <<<"$ERR"; }

# helper_start MP URL [ARGS...] (as in test_iscsi_fuse.sh): READY, HPID.
helper_start() {
	local mp=$1 url=$2 fd i
	shift 2
	mkdir -p "$mp"
	: >"$T/ready"
	exec {fd}>"$T/ready"
	"$HELPER" --url "$url" --mountpoint "$mp" --log "$HLOG" --ready-fd "$fd" \
		--timeout-ms 3000 "$@" </dev/null
	exec {fd}>&-
	for ((i = 0; i < 100; i++)); do
		grep -q . "$T/ready" && break
		sleep 0.1
	done
	READY=$(cat "$T/ready")
	HPID=""
	if [[ $READY =~ ^ok\ ([0-9]+)$ ]]; then
		HPID=${BASH_REMATCH[1]}
		iscsi_helper_track "$HPID"
	fi
	return 0
}

helper_stop() {
	local mp=$1 pid=$2 i
	fusermount3 -u "$mp" 2>/dev/null || umount "$mp"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "helper $pid did not exit after the unmount of $mp"
}

# write4k FILE: one direct, synchronous 4 KiB write at offset 0.
write4k() {
	dd if=/dev/zero of="$1" bs=4096 count=1 oflag=direct,dsync conv=notrunc status=none
}

# listener KIND: a local TCP listener on a free port, LPORT = its port.
# silent: accepts and never answers; full: a backlog already full (never
# accepts), so new SYNs are dropped as by an unreachable host.
listener() {
	: >"$T/lport"
	"$PY" - "$1" "$T/lport" <<-'EOF' >/dev/null 2>&1 &
	import socket, sys, time
	kind, out = sys.argv[1], sys.argv[2]
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	held = []
	if kind == "silent":
	    s.listen(16)
	else:
	    s.listen(0)
	    for _ in range(4):
	        c = socket.socket()
	        c.setblocking(False)
	        try:
	            c.connect(("127.0.0.1", port))
	        except BlockingIOError:
	            pass
	        held.append(c)
	        time.sleep(0.05)
	open(out, "w").write("%d\n" % port)
	while True:
	    if kind == "silent":
	        held.append(s.accept()[0])
	    else:
	        time.sleep(1)
	EOF
	local pid=$!
	VD_EXTRA_PIDS="${VD_EXTRA_PIDS:-} $pid"
	record "pid $pid"
	wait_until 5 grep -q . "$T/lport" || fail "the $1 listener did not start"
	LPORT=$(cat "$T/lport")
}

# bounded WHAT ERRNAME ARGS...: the call fails with ERRNAME within
# TIMEOUT_MS + MARGIN_MS (and, for ETIMEDOUT, not before TIMEOUT_MS).
bounded() {
	local what=$1 want=$2 s e
	shift 2
	s=$(now_ms)
	chk_err "$want" -t "$TIMEOUT_MS" "$@"
	e=$(now_ms)
	log "    $what: failed after $((e - s)) ms (tool: $(err_ms) ms; bound $TIMEOUT_MS ms)"
	((e - s <= TIMEOUT_MS + MARGIN_MS)) || fail "$what took $((e - s)) ms (bound $TIMEOUT_MS ms)"
	if [[ $want == ETIMEDOUT ]]; then
		(($(err_ms) >= TIMEOUT_MS - 50)) || fail "$what gave up early: $(err_ms) ms"
	fi
}

# ---------------------------------------------------------------- setup
scenario "tgtd on loopback: two targets, LUNs 64 MiB (lun 1) and 32 MiB (lun 3)"
iscsi_target_start
truncate -s 64M "$LUN1"
truncate -s 32M "$LUN2"
truncate -s 256M "$LUN3"
iscsi_target_add "$IQN1" "$LUN1" 1
iscsi_target_add "$IQN2" "$LUN2" 3
P=$ISCSI_PORTAL

scenario "discovery: SendTargets lists both targets at the portal"
chk_ok discover "$P"
log "  $(tr '\n' ';' <<<"$OUT")"
assert_contains "$OUT" "target $IQN1 $P" "discovery"
assert_contains "$OUT" "target $IQN2 $P" "discovery"
assert_eq 2 "$(grep -c '^target ' <<<"$OUT")" "number of targets discovered"

scenario "LUNs: REPORT LUNS + INQUIRY + READ CAPACITY 16 match the backing files"
chk_ok luns "$P" "$IQN1"
log "  $(tr '\n' ';' <<<"$OUT")"
assert_match "$(grep '^lun 0 ' <<<"$OUT")" '^lun 0 disk=0 size=0 ' "LUN 0 (tgt's controller)"
assert_match "$(grep '^lun 1 ' <<<"$OUT")" \
	"^lun 1 disk=1 size=$(stat -c %s "$LUN1") block_size=512 vendor=[^ ]+ product=[^ ]+$" "LUN 1"
chk_ok luns "$P" "$IQN2"
assert_match "$(grep '^lun 3 ' <<<"$OUT")" "^lun 3 disk=1 size=33554432 block_size=512 " "LUN 3"
assert_eq 2 "$(grep -c '^lun ' <<<"$OUT")" "LUNs of the second target"
chk_ok info "$P" "$IQN2" 3
assert_match "$OUT" '^lun 3 disk=1 size=33554432 block_size=512 ' "lun info"

scenario "what does not exist: ENOENT; a closed port: ECONNREFUSED"
chk_err ENOENT info "$P" "$IQN1" 7
assert_contains "$ERR" "$IQN1 at $P has no LUN 7" "message for a missing LUN"
chk_err ENOENT pr "$P" "$IQN2" 1
chk_err ENOENT info "$P" "iqn.2026-01.io.volumed:no-such-target-$VD_ID" 1
assert_contains "$ERR" "login to iqn.2026-01.io.volumed:no-such-target-$VD_ID at $P: no such target" \
	"message for a missing target"
chk_err ENOENT luns "$P" "iqn.2026-01.io.volumed:no-such-target-$VD_ID"
listener silent
CLOSED=$LPORT
kill -KILL "${VD_EXTRA_PIDS##* }" 2>/dev/null
wait_until 5 nfs_port_free "$CLOSED" || fail "port $CLOSED still open"
chk_err ECONNREFUSED info "127.0.0.1:$CLOSED" "$IQN1" 1
assert_contains "$ERR" "login to $IQN1 at 127.0.0.1:$CLOSED: connection refused" "refused message"
chk_err ECONNREFUSED discover "127.0.0.1:$CLOSED"

scenario "reservations: none at first; a helper with --pr-key 0xa1 holds write-exclusive"
chk_ok pr "$P" "$IQN1" 1
assert_contains "$OUT" "keys 0" "keys before any helper"
assert_contains "$OUT" "reservation none" "reservation before any helper"
MA=$T/node-a MB=$T/node-b
URL1=iscsi://$P/$IQN1/1
helper_start "$MA" "$URL1" --pr-key 0xa1
[[ -n $HPID ]] || fail "helper A: '$READY'"
APID=$HPID
write4k "$MA/disk" || fail "helper A cannot write before the fence"
chk_ok pr "$P" "$IQN1" 1
log "  $(tr '\n' ';' <<<"$OUT")"
assert_contains "$OUT" "keys 1 0xa1" "keys while A holds the LUN"
assert_contains "$OUT" "reservation holder=0xa1 type=write-exclusive" "reservation while A holds it"

scenario "fence of a key that is not registered: nothing done"
chk_ok fence "$P" "$IQN1" 1 0xb2 0xdead
chk_ok pr "$P" "$IQN1" 1
assert_contains "$OUT" "keys 1 0xa1" "keys after a no-op fence"
assert_contains "$OUT" "reservation holder=0xa1 type=write-exclusive" "holder after a no-op fence"
write4k "$MA/disk" || fail "helper A cannot write after a no-op fence"

scenario "fence 0xa1 with own key 0xb2: A's key and reservation gone, the LUN left free"
chk_ok fence "$P" "$IQN1" 1 0xb2 0xa1
assert_eq fenced "$OUT" "fence output"
chk_ok pr "$P" "$IQN1" 1
log "  $(tr '\n' ';' <<<"$OUT")"
assert_contains "$OUT" "keys 0" "keys after the fence (0xa1 preempted, 0xb2 unregistered)"
assert_contains "$OUT" "reservation none" "reservation after the fence"
# The fence leaves no reservation (the next node's helper takes it), so a
# LUN without one would take anyone's writes: A's helper must treat UNIT
# ATTENTION 2A/03 (reservations preempted) as its fence, and stay fenced.
write4k "$MA/disk" 2>/dev/null && fail "fenced node A could write after the fence (the LUN is free)"
write4k "$MA/disk" 2>/dev/null && fail "fenced node A could write on its second try"
grep -q 'event=fenced reason="reservation preempted' "$HLOG" || fail "helper A logged no fence"
log "  ok: A's writes fail after the fence, before any node reserved the LUN"
grep -q 'event=unit-attention asc_ascq=0x2a03' "$HLOG" ||
	fail "helper A was not told of the preemption (no UNIT ATTENTION 2A/03 in its log)"
helper_start "$MB" "$URL1" --pr-key 0xb2
[[ -n $HPID ]] || fail "helper B could not take the fenced LUN: '$READY'"
BPID=$HPID
chk_ok pr "$P" "$IQN1" 1
assert_contains "$OUT" "reservation holder=0xb2 type=write-exclusive" "B's reservation"
s=$(now_ms)
write4k "$MA/disk" 2>"$T/a.err" && fail "fenced node A could still write once B held the LUN"
e=$(now_ms)
log "  A's write once B reserved: EIO after $((e - s)) ms ($(head -n 1 "$T/a.err"))"
((e - s <= 2000)) || fail "A's fenced write took $((e - s)) ms"
printf 'node-b' | dd of="$MB/disk" bs=512 seek=0 conv=notrunc,fsync status=none || fail "B cannot write"
assert_eq node-b "$(head -c 6 "$LUN1")" "B's write in the backing file"
helper_stop "$MA" "$APID"
helper_stop "$MB" "$BPID"
chk_ok pr "$P" "$IQN1" 1
assert_contains "$OUT" "reservation none" "after both helpers stopped"

scenario "zero: a byte range rounded out to blocks, then clamped at the end"
dd if=/dev/urandom of="$LUN1" bs=1M count=64 conv=notrunc status=none
chk_ok zero "$P" "$IQN1" 1 1000 5000000
"$PY" - "$LUN1" <<-'EOF' || fail "zeroed range wrong in the backing file"
	import sys
	d = open(sys.argv[1], "rb").read()
	lo, hi = 1000 // 512 * 512, (1000 + 5000000 + 511) // 512 * 512
	assert d[lo:hi] == bytes(hi - lo), "not all zero"
	assert d[lo - 64:lo] != bytes(64) and d[hi:hi + 64] != bytes(64), "zeroed too much"
EOF
chk_ok zero "$P" "$IQN1" 1 67000000 999999999999
assert_eq 67108864 "$(stat -c %s "$LUN1")" "LUN file size after a clamped zero"
cmp -s <(tail -c $((67108864 - 67000000 / 512 * 512)) "$LUN1") \
	<(head -c $((67108864 - 67000000 / 512 * 512)) /dev/zero) || fail "the tail was not zeroed"
chk_ok zero "$P" "$IQN1" 1 0 67108864
cmp -s "$LUN1" <(head -c 67108864 /dev/zero) || fail "the whole LUN was not zeroed"

scenario "CHAP: right secret in, wrong secret out (EACCES), the secret never shown"
SECRET=Sekr1t-$VD_ID-pw
TSECRET=Tgt-$VD_ID-secret
iscsi_target_add "$IQN3" "$LUN3" 1
TID3=${#ISCSI_TARGETS[@]}
iscsi_tgtadm --lld iscsi --op new --mode account --user "vd$VD_ID" --password "$SECRET" ||
	fail "tgtadm account"
iscsi_tgtadm --lld iscsi --op bind --mode account --tid "$TID3" --user "vd$VD_ID" ||
	fail "tgtadm bind account"
chk_err EACCES info "$P" "$IQN3" 1
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=$SECRET chk_ok info "$P" "$IQN3" 1
assert_match "$OUT" '^lun 1 disk=1 size=268435456 ' "LUN over CHAP"
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=wrong-$SECRET chk_err EACCES info "$P" "$IQN3" 1
assert_contains "$ERR" "login to $IQN3 at $P: CHAP authentication failed" "CHAP failure message"
assert_not_contains "$OUT$ERR" "$SECRET" "output of a failed CHAP login"
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=wrong-$SECRET chk_err EACCES pr "$P" "$IQN3" 1
assert_not_contains "$OUT$ERR" "$SECRET" "output of a failed CHAP login"
# Mutual CHAP: the target proves itself with its own secret.
iscsi_tgtadm --lld iscsi --op new --mode account --user "tg$VD_ID" --password "$TSECRET" ||
	fail "tgtadm outgoing account"
iscsi_tgtadm --lld iscsi --op bind --mode account --tid "$TID3" --user "tg$VD_ID" --outgoing ||
	fail "tgtadm bind outgoing account"
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=$SECRET VD_CHECK_CHAP_TARGET_USER=tg$VD_ID \
	VD_CHECK_CHAP_TARGET_PASSWORD=$TSECRET chk_ok info "$P" "$IQN3" 1
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=$SECRET VD_CHECK_CHAP_TARGET_USER=tg$VD_ID \
	VD_CHECK_CHAP_TARGET_PASSWORD=not-$TSECRET chk_err EACCES info "$P" "$IQN3" 1
assert_contains "$ERR" "mutual CHAP failed" "mutual CHAP failure message"
assert_not_contains "$OUT$ERR" "$TSECRET" "output of a failed mutual CHAP login"
assert_not_contains "$OUT$ERR" "$SECRET" "output of a failed mutual CHAP login"

scenario "zero throughput: all 256 MiB of a LUN (WRITE SAME 16, 1 MiB per command)"
dd if=/dev/urandom of="$LUN3" bs=1M count=8 seek=100 conv=notrunc status=none
s=$(now_ms)
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=$SECRET VD_CHECK_CHAP_TARGET_USER=tg$VD_ID \
	VD_CHECK_CHAP_TARGET_PASSWORD=$TSECRET chk_ok zero "$P" "$IQN3" 1 0 268435456
e=$(now_ms)
ZERO_MBPS=$(awk -v ms=$((e - s)) 'BEGIN { printf "%.0f", 268.435456 / (ms / 1e3) }')
log "  zeroed 256 MiB in $((e - s)) ms: $ZERO_MBPS MB/s"
cmp -s "$LUN3" <(head -c 268435456 /dev/zero) || fail "the 256 MiB LUN was not zeroed"

scenario "bounded waits ($TIMEOUT_MS ms): a silent listener, dropped SYNs, a frozen target"
listener silent
SILENT=127.0.0.1:$LPORT
bounded "discovery, silent listener" ETIMEDOUT discover "$SILENT"
bounded "login, silent listener" ETIMEDOUT info "$SILENT" "$IQN1" 1
bounded "pr, silent listener" ETIMEDOUT pr "$SILENT" "$IQN1" 1
bounded "fence, silent listener" ETIMEDOUT fence "$SILENT" "$IQN1" 1 0xb2 0xa1
listener full
bounded "connect, dropped SYNs" ETIMEDOUT info "127.0.0.1:$LPORT" "$IQN1" 1
assert_contains "$ERR" "connect timed out" "connect timeout message"
bounded "connect, closed port" ECONNREFUSED pr "127.0.0.1:$CLOSED" "$IQN1" 1
# A target that stops answering in the middle of a command: tgtd frozen
# (SIGSTOP) while a zero of 256 MiB runs. Nothing may fail between the
# stop and the SIGCONT (cleanup talks to tgtd).
VD_CHECK_CHAP_USER=vd$VD_ID VD_CHECK_CHAP_PASSWORD=$SECRET VD_CHECK_CHAP_TARGET_USER=tg$VD_ID \
	VD_CHECK_CHAP_TARGET_PASSWORD=$TSECRET \
	"$CHECK" -t "$TIMEOUT_MS" zero "$P" "$IQN3" 1 0 268435456 >"$T/frozen.out" 2>"$T/frozen.err" &
ZPID=$!
sleep 0.15
kill -STOP "$ISCSI_PID"
s=$(now_ms)
wait "$ZPID"
zrc=$?
e=$(now_ms)
kill -CONT "$ISCSI_PID"
log "  zero with tgtd frozen: status $zrc after $((e - s)) ms: $(cat "$T/frozen.out" "$T/frozen.err")"
if ((zrc == 0)); then
	log "  (the zero finished before the freeze; not a timing result)"
else
	assert_match "$(cat "$T/frozen.err")" '^error: ETIMEDOUT ' "zero with the target frozen"
	assert_contains "$(cat "$T/frozen.err")" "no answer within $TIMEOUT_MS ms" "frozen message"
	((e - s <= TIMEOUT_MS + MARGIN_MS)) || fail "the frozen zero took $((e - s)) ms to fail"
fi
grep -qE 'Sanitizer|runtime error:' "$T/frozen.err" && fail "sanitizer report: $(cat "$T/frozen.err")"
chk_ok pr "$P" "$IQN1" 1   # tgtd answers again

scenario "a target that dies in the middle of a command: ENOTCONN at once, no retry"
"$CHECK" -t 5000 zero "$P" "$IQN1" 1 0 67108864 >"$T/died.out" 2>"$T/died.err" &
ZPID=$!
VD_EXTRA_PIDS="${VD_EXTRA_PIDS:-} $ZPID"
sleep 0.05
kill -KILL "$ISCSI_PID"
s=$(now_ms)
wait "$ZPID"
zrc=$?
e=$(now_ms)
log "  zero with tgtd killed: status $zrc after $((e - s)) ms: $(cat "$T/died.out" "$T/died.err")"
if ((zrc != 0)); then
	assert_match "$(cat "$T/died.err")" '^error: ENOTCONN ' "zero with the target gone"
	((e - s <= 1000)) || fail "the call took $((e - s)) ms to notice the dead target"
fi
grep -qE 'Sanitizer|runtime error:' "$T/died.err" && fail "sanitizer report: $(cat "$T/died.err")"
iscsi_target_restart
chk_ok info "$P" "$IQN1" 1

log "PASS: test_iscsi_client (zero $ZERO_MBPS MB/s)"
