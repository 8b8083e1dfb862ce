#!/usr/bin/env bash
# docker-plugin-rootfs.sh BUILD OUT — the directory of volumed's managed
# Docker plugin: OUT/config.json (docker-plugin/config.json) and OUT/rootfs
# with volumed, volctl, the FUSE helpers, the tools volumed runs (mkfs,
# fsck, resize, cp, tgtadm), every shared library they load (found with ldd)
# and the dynamic loader. No image, no registry: the files are this host's.
# Then: docker plugin create volumed:VERSION OUT.
set -euo pipefail

if (($# != 2)); then
	echo "usage: $0 BUILD-DIR OUT-DIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$1
out=$2
rootfs=$out/rootfs

# The project's programs (the helpers are found beside volumed).
programs=(volumed volctl volumed-nfs-fuse volumed-iscsi-fuse)
# The tools volumed and its drivers run; tgtadm and fusermount3 only when
# installed (the iscsi tgt provisioner, a FUSE unmount fallback).
tools=(mkfs.ext4 debugfs e2fsck resize2fs mkfs.xfs xfs_growfs cp)
optional_tools=(tgtadm fusermount3)

for p in "${programs[@]}"; do
	[[ -x $build/bin/$p ]] || { echo "$0: no $build/bin/$p (run make all)" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$rootfs"/{usr/bin,usr/sbin,etc/volumed,tmp,dev,proc,sys,run/docker/plugins,var/lib/volumed}
chmod 1777 "$rootfs/tmp"
cp "$src/docker-plugin/config.json" "$out/config.json"

# put FILE DEST: FILE (symlinks followed) at rootfs/DEST.
put() {
	mkdir -p "$rootfs/$(dirname "$2")"
	cp -L "$1" "$rootfs/$2"
}

# The shared libraries and loader of an ELF file, one path a line.
libs_of() {
	ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

elves=()
for p in "${programs[@]}"; do
	put "$build/bin/$p" "/usr/bin/$p"
	elves+=("$build/bin/$p")
done

# which TOOL: its path in the sbin and bin directories, or nothing.
which_tool() {
	PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$1" || true
}

for t in "${tools[@]}" "${optional_tools[@]}"; do
	path=$(which_tool "$t")
	if [[ -z $path ]]; then
		case " ${tools[*]} " in
		*" $t "*) echo "$0: $t not installed (scripts/deps.sh build)" >&2; exit 1 ;;
		esac
		continue
	fi
	case $path in
	*/sbin/*) put "$path" "/usr/sbin/$t" ;;
	*) put "$path" "/usr/bin/$t" ;;
	esac
	elves+=("$path")
done

for e in "${elves[@]}"; do
	while read -r lib; do
		[[ -e $rootfs$lib ]] || put "$lib" "$lib"
	done < <(libs_of "$e")
done

# mke2fs reads its defaults from /etc/mke2fs.conf; TLS to a controller
# verifies against the system's CAs unless VOLUMED_CA_FILE names others.
[[ -f /etc/mke2fs.conf ]] && put /etc/mke2fs.conf /etc/mke2fs.conf
[[ -f /etc/ssl/certs/ca-certificates.crt ]] &&
	put /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Targets of the files dockerd binds in with the host network.
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
echo 'root:x:0:0:root:/:/usr/bin/volumed' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

echo "$out: $(find "$rootfs" -type f | wc -l) files, $(du -sh "$rootfs" | cut -f1)"
