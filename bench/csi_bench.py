#!/usr/bin/python3
"""csi_bench.py — round trips to volumed's CSI endpoint (csi.v1 over gRPC).

One gRPC channel (one HTTP/2 connection on the unix socket), each call
after the previous answer, so the figures measure the daemon plus the
Python gRPC client's own per-call cost (about 0.1-0.2 ms here), not a
client's start-up.

    PYTHONPATH=STUBS csi_bench.py --endpoint unix:///PATH --node ID --dir DIR OP N

    create N      N CreateVolume of directory volumes csib-c-1..N (then
                  deleted, untimed)
    publish N     one directory volume, ControllerPublish'ed and staged once;
                  N NodePublishVolume (a bind mount of the staged volume onto
                  DIR/pub) each followed by an untimed NodeUnpublishVolume
    list N        N ListVolumes (no max_entries: every volume in one answer);
                  also reports parse_us, the median time the Python client
                  spends decoding one answer (part of the round trip)
    probe N       N Probe: the floor of a round trip through this client
    lifecycle N   N times, on a new directory volume: CreateVolume,
                  ControllerPublish, NodeStage, NodePublish, NodeUnpublish,
                  NodeUnstage, ControllerUnpublish, DeleteVolume, timed whole

Prints one line like bench/plugin_rtt: op, n, median/p90/p99/min/max in
microseconds, errors, and for list the entries of the last answer. STUBS
holds csi_pb2.py and csi_pb2_grpc.py (tests/integ/csi_stubs.sh). Exit
status 1 when any call failed.
"""
import argparse
import os
import sys
import time

import grpc

import csi_pb2 as pb
import csi_pb2_grpc as rpc

TIMEOUT = 120
SNW = pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
CAP = pb.VolumeCapability(mount=pb.VolumeCapability.MountVolume(),
                          access_mode=pb.VolumeCapability.AccessMode(mode=SNW))


def pct(v, p):
    i = int(p * (len(v) - 1) + 0.5)
    return v[min(i, len(v) - 1)]


def report(op, times_ns, errors, extra=""):
    t = sorted(x / 1000.0 for x in times_ns)
    print(f"op={op} n={len(t)} median_us={pct(t, 0.5):.1f} p90_us={pct(t, 0.9):.1f} "
          f"p99_us={pct(t, 0.99):.1f} min_us={t[0]:.1f} max_us={t[-1]:.1f} "
          f"errors={errors}{extra}", flush=True)


class Bench:
    def __init__(self, endpoint, node, tdir):
        self.channel = grpc.insecure_channel(endpoint)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.identity = rpc.IdentityStub(self.channel)
        self.ctl = rpc.ControllerStub(self.channel)
        self.node_svc = rpc.NodeStub(self.channel)
        self.node = node
        self.dir = tdir
        os.makedirs(os.path.join(tdir, "stage"), exist_ok=True)
        self.errors = 0

    def timed(self, fn, req):
        t0 = time.perf_counter_ns()
        try:
            r = fn(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            self.errors += 1
            if self.errors <= 5:
                print(f"csi_bench: {type(req).__name__}: {e.code().name}: {e.details()}",
                      file=sys.stderr)
            r = None
        return time.perf_counter_ns() - t0, r

    def must(self, fn, req):
        try:
            return fn(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            sys.exit(f"csi_bench: {type(req).__name__}: {e.code().name}: {e.details()}")

    # ---- the five steps around a publish, for publish and lifecycle
    def reqs(self, vol, staging, target):
        return [
            (self.ctl.ControllerPublishVolume, pb.ControllerPublishVolumeRequest(
                volume_id=vol, node_id=self.node, volume_capability=CAP)),
            (self.node_svc.NodeStageVolume, pb.NodeStageVolumeRequest(
                volume_id=vol, staging_target_path=staging, volume_capability=CAP)),
            (self.node_svc.NodePublishVolume, pb.NodePublishVolumeRequest(
                volume_id=vol, staging_target_path=staging, target_path=target,
                volume_capability=CAP)),
            (self.node_svc.NodeUnpublishVolume, pb.NodeUnpublishVolumeRequest(
                volume_id=vol, target_path=target)),
            (self.node_svc.NodeUnstageVolume, pb.NodeUnstageVolumeRequest(
                volume_id=vol, staging_target_path=staging)),
            (self.ctl.ControllerUnpublishVolume, pb.ControllerUnpublishVolumeRequest(
                volume_id=vol, node_id=self.node)),
        ]

    def create(self, n):
        times = []
        for i in range(1, n + 1):
            dt, _ = self.timed(self.ctl.CreateVolume, pb.CreateVolumeRequest(
                name=f"csib-c-{i}", volume_capabilities=[CAP]))
            times.append(dt)
        for i in range(1, n + 1):
            self.must(self.ctl.DeleteVolume, pb.DeleteVolumeRequest(volume_id=f"csib-c-{i}"))
        report("csi_create", times, self.errors)

    def publish(self, n):
        vol = "csib-p"
        staging = os.path.join(self.dir, "stage", vol)
        target = os.path.join(self.dir, "pub")
        os.makedirs(staging, exist_ok=True)
        self.must(self.ctl.CreateVolume, pb.CreateVolumeRequest(name=vol,
                                                                volume_capabilities=[CAP]))
        steps = self.reqs(vol, staging, target)
        for fn, req in steps[:2]:
            self.must(fn, req)
        times = []
        for _ in range(n):
            dt, _ = self.timed(*steps[2])
            times.append(dt)
            self.must(*steps[3])
        for fn, req in steps[4:]:
            self.must(fn, req)
        self.must(self.ctl.DeleteVolume, pb.DeleteVolumeRequest(volume_id=vol))
        report("csi_node_publish", times, self.errors)

    def list(self, n):
        times, parse, entries = [], [], 0
        for _ in range(n):
            dt, r = self.timed(self.ctl.ListVolumes, pb.ListVolumesRequest())
            times.append(dt)
            if r is not None:
                entries = len(r.entries)
                wire = r.SerializeToString()
                t0 = time.perf_counter_ns()
                pb.ListVolumesResponse.FromString(wire)
                parse.append(time.perf_counter_ns() - t0)
                if r.next_token:
                    self.errors += 1
                    print("csi_bench: ListVolumes without max_entries gave a next_token",
                          file=sys.stderr)
        parse.sort()
        extra = f" entries={entries} bytes={len(wire) if parse else 0}"
        if parse:
            extra += f" parse_us={pct(parse, 0.5) / 1000.0:.1f}"
        report("csi_list", times, self.errors, extra)

    def probe(self, n):
        times = [self.timed(self.identity.Probe, pb.ProbeRequest())[0] for _ in range(n)]
        report("csi_probe", times, self.errors)

    def lifecycle(self, n):
        times = []
        for i in range(1, n + 1):
            vol = f"csib-l-{i}"
            staging = os.path.join(self.dir, "stage", vol)
            target = os.path.join(self.dir, f"pub-{i}")
            os.makedirs(staging)   # kubelet makes the staging directory
            t0 = time.perf_counter_ns()
            errors = self.errors
            self.timed(self.ctl.CreateVolume, pb.CreateVolumeRequest(
                name=vol, volume_capabilities=[CAP]))
            for fn, req in self.reqs(vol, staging, target):
                self.timed(fn, req)
            self.timed(self.ctl.DeleteVolume, pb.DeleteVolumeRequest(volume_id=vol))
            times.append(time.perf_counter_ns() - t0)
            if self.errors == errors:
                os.rmdir(staging)
        report("csi_lifecycle", times, self.errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--dir", required=True, help="where staging and target paths go")
    ap.add_argument("op", choices=["create", "publish", "list", "lifecycle", "probe"])
    ap.add_argument("n", type=int)
    a = ap.parse_args()
    if a.n <= 0:
        sys.exit("csi_bench: N must be positive")
    b = Bench(a.endpoint, a.node, a.dir)
    getattr(b, a.op)(a.n)
    b.channel.close()
    return 1 if b.errors else 0


if __name__ == "__main__":
    sys.exit(main())
