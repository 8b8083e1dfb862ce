#!/usr/bin/env bash
# test_install.sh — make install / make uninstall with PREFIX and DESTDIR:
# exactly the listed files with their modes, from the tests' own build (no
# rebuild); the man pages render without a warning and name every flag,
# command and config key the programs know; the systemd unit verifies;
# the bash completion completes commands and volume names. Then an
# installed volumed (PREFIX/sbin) serves an NFS volume through its
# installed helper (PREFIX/libexec/volumed), and the installed volctl
# shows its progress line under a pseudo-terminal and nothing in a script.
source "$(dirname "$0")/lib.sh"

ROOT=$T/root      # make install DESTDIR=$ROOT PREFIX=/usr
P=$T/prefix       # make install PREFIX=$P, to run and to verify in place
MAKE_ARGS=(-C "$VD_ROOT" --no-print-directory "BUILD=$BUILD")
[[ $(basename "$VD_BIN") == build-san ]] && MAKE_ARGS+=(SANITIZE=1)

EXPECTED="644 usr/lib/systemd/system/volumed.service
755 usr/libexec/volumed/volumed-iscsi-fuse
755 usr/libexec/volumed/volumed-nfs-fuse
755 usr/sbin/volctl
755 usr/sbin/volumed
644 usr/share/bash-completion/completions/volctl
644 usr/share/man/man5/volumed.conf.5
644 usr/share/man/man8/volctl.8
644 usr/share/man/man8/volumed.8"

# installed DIR: "MODE PATH" of every non-directory under DIR, sorted.
installed() {
	(cd "$1" && find . ! -type d -printf '%m %P\n' | LC_ALL=C sort -k2)
}

bin_stamps() {
	stat -c '%n %Y %s' "$VD_BIN"/bin/volumed "$VD_BIN"/bin/volctl "$VD_BIN"/bin/volumed-*-fuse
}

scenario "make install DESTDIR PREFIX=/usr: exactly the listed files, from the build as it is"
before=$(bin_stamps)
assert_ok make "${MAKE_ARGS[@]}" install DESTDIR="$ROOT" PREFIX=/usr
assert_eq "$before" "$(bin_stamps)" "the build's programs after make install (nothing rebuilt)"
assert_eq "$EXPECTED" "$(installed "$ROOT")" "files and modes under DESTDIR"
assert_eq "" "$(find "$ROOT" -type d ! -perm 755)" "directories not mode 755"
for b in sbin/volumed sbin/volctl libexec/volumed/volumed-nfs-fuse libexec/volumed/volumed-iscsi-fuse; do
	cmp -s "$VD_BIN/bin/$(basename "$b")" "$ROOT/usr/$b" || fail "$ROOT/usr/$b differs from $VD_BIN/bin/$(basename "$b")"
done
assert_eq "" "$(grep -rl '@[A-Z]*@' "$ROOT/usr/share" "$ROOT/usr/lib" 2>&1)" "files with an unfilled @VAR@"
unit=$ROOT/usr/lib/systemd/system/volumed.service
assert_eq "ExecStart=/usr/sbin/volumed" "$(grep '^ExecStart=' "$unit")" "the unit's ExecStart"
assert_eq "KillMode=process" "$(grep '^KillMode=' "$unit")" "the unit's KillMode (helpers outlive restarts)"
# Any of these gives the unit its own mount namespace: mounts would not reach dockerd.
assert_eq "" "$(grep -E '^(Protect(System|Home|KernelTunables|ControlGroups)|Private(Tmp|Devices|Mounts)|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|MountFlags)=' "$unit")" \
	"namespace settings in the unit"

scenario "the man pages render without warnings and document every flag, command and key"
for page in man8/volumed.8 man8/volctl.8 man5/volumed.conf.5; do
	f=$ROOT/usr/share/man/$page
	assert_eq "" "$(MANWIDTH=80 man -l --warnings=w "$f" 2>&1 >/dev/null)" "man -l --warnings=w $page"
	assert_eq "" "$(groff -man -ww -z "$f" 2>&1)" "groff -man -ww -z $page"
done
# man_text PAGE: the rendered page, wide, so no line breaks inside a word.
man_text() {
	MANWIDTH=200 man -l "$ROOT/usr/share/man/$1" 2>/dev/null
}
text=$(man_text man8/volumed.8)
assert_contains "$text" "/usr/libexec/volumed/volumed-nfs-fuse" "the helper's path for PREFIX=/usr in volumed(8)"
flags=$("$VOLUMED_BIN" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
[[ $(wc -l <<<"$flags") -ge 19 ]] || fail "volumed --help lists too few flags: $flags"
for f in $flags; do
	assert_contains "$text" "$f" "volumed(8) documents $f"
done
for v in $("$VOLUMED_BIN" --help | grep -oE '\b(VOLUMED_[A-Z_]+|CSI_ENDPOINT)\b' | sort -u); do
	assert_contains "$text" "$v" "volumed(8) documents $v"
done
text=$(man_text man8/volctl.8)
for f in $("$VOLCTL_BIN" --help | grep -oE -- '--[a-z][a-z-]+|VOLCTL_[A-Z_]+' | sort -u); do
	assert_contains "$text" "$f" "volctl(8) documents $f"
done
for c in create ls inspect rm mount unmount status nodes move; do
	assert_match "$text" $'\n'"       $c( |\$)" "volctl(8) has the command $c"
done
echo '{"no_such_key": 1}' >"$T/bad.json"
run "$VOLUMED_BIN" --config "$T/bad.json"
assert_eq 2 "$RC" "volumed's status for an unknown config key"
keys=$(sed -n 's/.*allowed: //p' <<<"$OUT" | tr -d ',')
[[ $(wc -w <<<"$keys") -ge 17 ]] || fail "no key list in: $OUT"
text=$(man_text man5/volumed.conf.5)
for k in $keys; do
	assert_match "$text" $'\n'"       $k( |"$'\n'")" "volumed.conf(5) has the key $k"
done

scenario "make install PREFIX=DIR: the unit verifies, its man pages found there"
assert_ok make "${MAKE_ARGS[@]}" install PREFIX="$P"
assert_eq "ExecStart=$P/sbin/volumed" "$(grep '^ExecStart=' "$P/lib/systemd/system/volumed.service")" "ExecStart for PREFIX=$P"
if command -v systemd-analyze >/dev/null; then
	# Documentation=man:... is looked up with man: MANPATH names ours.
	run env MANPATH="$P/share/man" systemd-analyze verify "$P/lib/systemd/system/volumed.service"
	assert_eq "0" "$RC" "systemd-analyze verify status (output: $OUT)"
	assert_eq "" "$OUT" "systemd-analyze verify output"
else
	skip "systemd-analyze is not installed: the unit is not verified"
fi

scenario "bash completion: commands, options, volume names from the daemon"
comp=$P/share/bash-completion/completions/volctl
assert_ok bash -n "$comp"
# complete WORD...: COMPREPLY, one a line, for the command line WORD... (the last is being completed).
complete_words() {
	COMP_SCRIPT=$comp bash --norc --noprofile -c 'source "$COMP_SCRIPT"
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _volctl
		printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}
assert_contains $'\n'"$(complete_words volctl "")"$'\n' $'\n'create$'\n' "completion of volctl <TAB>"
assert_eq "create" "$(complete_words volctl cr)" "completion of volctl cr<TAB>"
assert_contains "$(complete_words volctl --js)" "--json" "completion of a global option"
assert_contains "$(complete_words volctl create v -o si)" "size=" "completion of -o"
assert_eq "--id" "$(complete_words volctl mount v --i)" "completion of mount's --id"
# Without a daemon: no names, and not a word on the terminal.
run complete_words "$P/sbin/volctl" --api-socket "$T/none.sock" mount ""
assert_eq "0 " "$RC $OUT" "completing names with no daemon (status, output)"

scenario "an installed volumed finds its installed helper; volctl completes its volumes"
nfs_server_start
cat >"$T/volumed.json" <<JSON
{"drivers": {"nfs": {"backends": {"main": {"url": "$NFS_URL", "mode": "fuse",
  "timeout_ms": 5000}}}}}
JSON
VOLUMED_BIN=$P/sbin/volumed
VOLCTL_BIN=$P/sbin/volctl
volumed_start --config "$T/volumed.json"
assert_ok volctl create n1 -o driver=nfs -o backend=main
assert_ok volctl mount n1
mp=$OUT
assert_match "$(mount_fstype "$mp")" '^fuse' "file system of $mp"
helper=""
for p in /proc/[0-9]*; do
	[[ $(cat "$p/comm" 2>/dev/null) == volumed-nfs-fu* ]] || continue
	[[ $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) == *"$VD_STATE/"* ]] && helper=${p#/proc/}
done
[[ -n $helper ]] || fail "no volumed-nfs-fuse serving a mount under $VD_STATE"
record "pid $helper"
assert_eq "$P/libexec/volumed/volumed-nfs-fuse" "$(readlink -f "/proc/$helper/exe")" "the helper volumed ran"
echo data >"$mp/f" || fail "cannot write through the helper's mount $mp"
assert_eq "data" "$(cat "$NFS_EXPORT_DIR/n1/f" 2>&1)" "the file on the server"
assert_ok volctl create d1
got=$(complete_words "$P/sbin/volctl" --api-socket "$VD_API" rm "")
assert_eq $'d1\nn1' "$(sort <<<"$got")" "volume names completed for rm"
assert_eq "n1" "$(complete_words "$P/sbin/volctl" --api-socket="$VD_API" mount n)" "a name completed by prefix"
assert_ok volctl unmount n1
assert_ok volctl rm n1
assert_ok volctl rm d1

scenario "volctl progress: a line on a terminal for a slow create, nothing in a script"
# An 8 TiB ext4 image takes mkfs a second or more (a sparse file: ~110 MB written).
t0=$(date +%s%N)
"$VOLCTL_BIN" --api-socket "$VD_API" create big1 -o size=8Ti >"$T/out" 2>"$T/err"
rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "0" "$rc" "volctl create big1 status ($(cat "$T/err"))"
log "  create of an 8Ti ext4 volume took $ms ms"
((ms > 600)) || fail "create big1 took $ms ms: not slow enough to show that no progress is printed"
assert_eq "big1" "$(cat "$T/out")" "stdout of a create in a script"
assert_eq "" "$(cat "$T/err")" "stderr of a slow create in a script"
# on_pty ARGS...: runs the installed volctl under a pseudo-terminal (script(1)); OUT = what the terminal got.
on_pty() {
	local cmd
	cmd=$(printf '%q ' "$VOLCTL_BIN" --api-socket "$VD_API" "$@")
	script -qefc "$cmd" /dev/null </dev/null >"$T/pty"
	RC=$?
	OUT=$(cat "$T/pty")
}
on_pty create big2 -o size=8Ti
assert_eq "0" "$RC" "volctl create big2 under a pty"
assert_contains "$OUT" $'\r| creating big2 (8Ti) 0.' "the first progress line"
assert_contains "$OUT" $'\r/ creating big2 (8Ti) ' "a redrawn progress line"
assert_match "$OUT" $'\r +\rbig2\r?$' "the line erased, then the answer"
on_pty --quiet create big3 -o size=8Ti
assert_eq "0 big3" "$RC $(tr -d '\r' <<<"$OUT")" "volctl --quiet create under a pty"
on_pty --json rm big3
assert_not_contains "$OUT" "removing" "--json under a pty"
on_pty ls
assert_not_contains "$OUT" $'\r|' "a quick ls under a pty"
assert_ok volctl rm big1
assert_ok volctl rm big2
volumed_stop

scenario "make uninstall removes what make install put there"
assert_ok make "${MAKE_ARGS[@]}" uninstall DESTDIR="$ROOT" PREFIX=/usr
assert_eq "" "$(installed "$ROOT")" "files left under DESTDIR after uninstall"
assert_ok make "${MAKE_ARGS[@]}" uninstall PREFIX="$P"
assert_eq "" "$(installed "$P")" "files left under PREFIX after uninstall"

log "test_install: all scenarios passed"
