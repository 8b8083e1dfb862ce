#!/usr/bin/python3
"""nfs_csi.py — CSI scenarios of volumed's nfs driver (tests/integ/test_nfs.sh).

Reuses the CO of csi_client.py (same stubs, same CSI class) against a
volumed whose config has an nfs backend "main", and checks on the server
side (the export directory of the private nfs-ganesha) what CSI did:

    PYTHONPATH=STUBS /usr/bin/python3 nfs_csi.py --endpoint unix:///T/csi.sock \
        --node NODE --dir T --state-dir T/state --server-dir EXPORT/volumes SCENARIO

Scenarios:
  lifecycle  CreateVolume {"driver":"nfs","backend":"main"} (multi-node
             multi-writer), idempotent repeat, ListVolumes, ControllerPublish,
             NodeStage, NodePublish on two targets (both see each other's
             writes), the bytes on the server, NodeGetVolumeStats, then
             everything undone and DeleteVolume (twice): the directory on the
             server is gone, nothing mounted under T/csi.
  errors     CreateVolume with an unknown backend is refused naming it.
Prints "ok: ..." per check; "FAIL: [scenario] ..." on stderr and status 1.
"""
import argparse
import os
import sys
import time

import grpc

import csi_client as cc
from csi_client import Fail, check, eq, ok, mount_cap, pb

MNMW = pb.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
PARAMS = {"driver": "nfs", "backend": "main"}


def server_path(args, vol):
    return os.path.join(args.server_dir, vol)


def find_on_server(args, vol, fname):
    """Paths under the volume's server-side directory named fname."""
    res = []
    for root, _dirs, files in os.walk(server_path(args, vol)):
        if fname in files:
            res.append(os.path.join(root, fname))
    return res


def sc_lifecycle(c, args):
    vol = "csi-nfs-1"
    cap = mount_cap(mode=MNMW)
    v = c.create(vol, 0, cap, PARAMS)
    eq(vol, v.volume_id, "volume_id")
    v2 = c.create(vol, 0, cap, PARAMS, what="CreateVolume again (idempotent)")
    eq(vol, v2.volume_id, "volume_id of the repeated CreateVolume")
    # A network volume is usable on every node: no topology pins its pods.
    eq([], [dict(t.segments) for t in v.accessible_topology], "accessible_topology of an nfs volume")
    ok("CreateVolume nfs/main, twice; no accessible_topology (any node)")
    check(os.path.isdir(server_path(args, vol)),
          f"no directory {server_path(args, vol)} on the server after CreateVolume")
    ok(f"the volume's directory exists on the server: {server_path(args, vol)}")
    names = {e.volume.volume_id for e in c.list_all()[0]}
    check(vol in names, f"ListVolumes does not list {vol}: {sorted(names)[:20]}")
    ok("ListVolumes lists it")

    staging = c.staging(vol)
    t1, t2 = c.target(vol), c.target(vol + "-b")
    c.cpublish(vol, cap)
    c.stage(vol, staging, cap)
    c.stage(vol, staging, cap)
    c.publish(vol, staging, t1, cap)
    c.publish(vol, staging, t1, cap)
    eq(1, len(cc.mounts_at(t1)), f"mounts on {t1} after NodePublish twice")
    c.publish(vol, staging, t2, cap)
    ok("ControllerPublish, NodeStage twice, NodePublish on two targets")

    data = "written through CSI target one\n"
    cc.write_file(os.path.join(t1, "one.txt"), data)
    eq(data, cc.read_file(os.path.join(t2, "one.txt")), "target two reads target one's file")
    cc.write_file(os.path.join(t2, "two.txt"), "two\n")
    eq("two\n", cc.read_file(os.path.join(t1, "two.txt")), "target one reads target two's file")
    ok("the two targets see each other's writes")
    found = find_on_server(args, vol, "one.txt")
    eq(1, len(found), f"one.txt under {server_path(args, vol)} on the server")
    eq(data, cc.read_file(found[0]), f"bytes of {found[0]} on the server")
    ok(f"the bytes are on the server: {found[0]}")

    r = c.call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(volume_id=vol,
                                                                   volume_path=t1))
    units = {pb.VolumeUsage.Unit.Name(u.unit): u for u in r.usage}
    check("BYTES" in units and units["BYTES"].total > 0,
          f"NodeGetVolumeStats without a BYTES total: {cc.fmt(r)}")
    check(not r.volume_condition.abnormal, f"condition: {r.volume_condition.message}")
    ok(f"NodeGetVolumeStats: bytes total {units['BYTES'].total}, normal")

    c.fails(cc.SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=vol),
            "DeleteVolume while published")

    for t in (t1, t2):
        c.unpublish(vol, t)
        check(not cc.mounted(t) and not os.path.exists(t), f"NodeUnpublish left {t}")
    c.unstage(vol, staging)
    c.unstage(vol, staging)
    check(not cc.mounted(staging), f"{staging} still mounted after NodeUnstage")
    c.cunpublish(vol)
    ok("NodeUnpublish both, NodeUnstage twice, ControllerUnpublish")
    check(os.path.isdir(server_path(args, vol)), "unstaging removed the data on the server")

    c.delete(vol)
    check(cc.wait_for(lambda: not os.path.exists(server_path(args, vol)), 5),
          f"{server_path(args, vol)} still on the server after DeleteVolume")
    c.delete(vol)
    c.undo.clear()
    ok("DeleteVolume twice: the directory is gone from the server")
    left = cc.mounts_under(c.csidir)
    check(not left, f"mounts left under {c.csidir}: {left}")
    names = {e.volume.volume_id for e in c.list_all()[0]}
    check(vol not in names, f"ListVolumes still lists {vol}")
    ok("nothing left mounted, ListVolumes no longer lists it")


def sc_errors(c, args):
    try:
        c._stub("CreateVolume")(pb.CreateVolumeRequest(
            name="csi-nfs-bad", volume_capabilities=[mount_cap(mode=MNMW)],
            parameters={"driver": "nfs", "backend": "nosuchbackend"}), timeout=cc.TIMEOUT)
    except grpc.RpcError as e:
        check(e.code() in (cc.SC.INVALID_ARGUMENT, cc.SC.NOT_FOUND),
              f"unknown backend: expected INVALID_ARGUMENT, got {e.code().name}: {e.details()}")
        check("nosuchbackend" in (e.details() or ""),
              f"unknown backend: the message should name it: {e.details()!r}")
        ok(f"unknown backend -> {e.code().name}: {e.details()}")
        check(not os.path.exists(server_path(args, "csi-nfs-bad")), "a directory was made anyway")
        return
    c.undo.append(("DeleteVolume", pb.DeleteVolumeRequest(volume_id="csi-nfs-bad")))
    raise Fail("CreateVolume with backend nosuchbackend succeeded")


SCENARIOS = {"lifecycle": sc_lifecycle, "errors": sc_errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--server-dir", required=True)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    c = cc.CSI(a.endpoint, a.node, a.dir, a.state_dir)
    try:
        grpc.channel_ready_future(c.channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        print(f"FAIL: [{a.scenario}] cannot connect to {a.endpoint} within 10 s", file=sys.stderr)
        return 1
    t0 = time.time()
    try:
        SCENARIOS[a.scenario](c, a)
    except Exception as e:   # noqa: BLE001 - every failure is reported the same way
        if isinstance(e, Fail):
            print(f"FAIL: [csi {a.scenario}] {e}", file=sys.stderr)
        else:
            import traceback
            print(f"FAIL: [csi {a.scenario}] unexpected {e!r}\n{traceback.format_exc()}",
                  file=sys.stderr)
        c.rollback()
        return 1
    finally:
        c.channel.close()
    print(f"  csi {a.scenario}: {time.time() - t0:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
