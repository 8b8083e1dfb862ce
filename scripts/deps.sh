#!/usr/bin/env bash
# Installs the Debian packages volumed needs, only those missing.
#   scripts/deps.sh build        to build and run
#   scripts/deps.sh build test   to run the tests and benchmarks too
#   scripts/deps.sh build test fuzz   and the libFuzzer builds
set -euo pipefail

build_pkgs=(gcc make pkg-config libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
	e2fsprogs xfsprogs util-linux
	libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
	libnfs-dev libfuse3-dev fuse3 libiscsi-dev)
test_pkgs=(libcmocka-dev docker.io busybox-static procps curl python3
	python3-grpcio python3-grpc-tools
	nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2 openssl man-db groff-base)
fuzz_pkgs=(clang libclang-rt-14-dev)

want=()
for set in "$@"; do
	case $set in
	build) want+=("${build_pkgs[@]}") ;;
	test) want+=("${test_pkgs[@]}") ;;
	fuzz) want+=("${fuzz_pkgs[@]}") ;;
	*) echo "deps.sh: unknown set '$set' (allowed: build, test, fuzz)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) != 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
