#!/usr/bin/env bash
# csi_stubs.sh OUTDIR — generates the Python gRPC stubs for csi/csi.proto
# (csi_pb2.py, csi_pb2_grpc.py) into OUTDIR, for integration tests that act
# as a CO. Needs python3-grpc-tools (scripts/deps.sh test). The imported
# well-known types (wrappers, timestamp) ship with python3-protobuf, so only
# csi.proto itself is generated. Use: PYTHONPATH=OUTDIR /usr/bin/python3 ...
set -euo pipefail

if (($# != 1)); then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3

mkdir -p "$out"
cd "$root"
"$py" -m grpc_tools.protoc -I csi -I /usr/include \
	--python_out="$out" --grpc_python_out="$out" csi/csi.proto
# Prove the stubs load (and that the imports resolve) before anyone uses them.
PYTHONPATH="$out" "$py" -c 'import csi_pb2, csi_pb2_grpc; csi_pb2_grpc.IdentityStub; csi_pb2_grpc.ControllerStub; csi_pb2_grpc.NodeStub'
