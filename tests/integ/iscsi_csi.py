#!/usr/bin/python3
"""iscsi_csi.py — CSI scenarios of volumed's iscsi driver (tests/integ/test_iscsi.sh).

Reuses the CO of csi_client.py (same stubs, same CSI class) against a
volumed whose config has the iscsi backends of test_iscsi.sh ("pool": tgt
provisioner with pool_size 3Gi, its images in --pool-dir; "fixed": static,
LUNs of 32 and 64 MiB), and checks in the pool's images (the files tgtd
serves) what CSI did:

    PYTHONPATH=STUBS /usr/bin/python3 iscsi_csi.py --endpoint unix:///T/csi.sock \\
        --node NODE --dir T --state-dir T/state --pool-dir T/pool \\
        --volctl BUILD/bin/volctl --api-socket T/api.sock SCENARIO

Scenarios:
  mount   CreateVolume {"driver":"iscsi"} with a capacity_range (twice:
          idempotent; another size: ALREADY_EXISTS), with a "size" parameter
          instead; ListVolumes; ControllerPublish, NodeStage and NodePublish
          (twice each), a file written and read, the reservation held,
          NodeGetVolumeStats; everything undone (twice): no mount, loop
          device or helper left, e2fsck -fn of the image clean, the file's
          bytes in it (debugfs); DeleteVolume twice: image and record gone.
  block   a block volume: the target is a block device, the loop device over
          the helper's lun/disk; 1 MiB written with O_DIRECT and read back,
          the same bytes in the pool image at that offset; undone, deleted.
  errors  unknown backend, size under the minimum, fs_type btrfs: refused
          naming what is wrong, nothing created. GetCapacity of the default
          backend (pool_size less the volumes) and of the static backend
          "fixed" (its free LUNs).
Prints "ok: ..." per check; "FAIL: [scenario] ..." on stderr and status 1.
"""
import argparse
import json
import mmap
import os
import stat
import subprocess
import sys
import time

import grpc

import csi_client as cc
from csi_client import Fail, check, eq, ok, mount_cap, block_cap, pb

MiB = 1 << 20
GiB = 1 << 30
PARAMS = {"driver": "iscsi"}
POOL_SIZE = 3 * GiB           # test_iscsi.sh's pool backend
FIXED_LUNS = 32 * MiB + 64 * MiB


def inspect(args, vol):
    """volctl --json inspect VOL as a dict (None when it fails)."""
    r = subprocess.run([args.volctl, "--api-socket", args.api_socket, "--json", "inspect", vol],
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else None


def image_of(args, vol):
    v = inspect(args, vol)
    check(v is not None, f"volctl inspect {vol} failed")
    return os.path.join(args.pool_dir, f"lun-{v['status']['lun']}.img"), v


def node_dir(args, vol, backend="pool"):
    return os.path.join(args.state_dir, "iscsi", backend, vol)


def helpers_for(path):
    """volumed-iscsi-fuse pids whose command line names path."""
    res = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/comm") as f:
                if not f.read().startswith("volumed-iscsi"):
                    continue
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    res.append(int(p))
        except OSError:
            pass
    return res


def node_clean(args, vol, backend="pool"):
    d = node_dir(args, vol, backend)
    return (not cc.mounted(os.path.join(d, "mnt")) and not cc.mounted(os.path.join(d, "lun"))
            and not cc.loops_for(os.path.join(d, "lun", "disk"))
            and not helpers_for(os.path.join(d, "lun")))


def node_state(args, vol, backend="pool"):
    d = node_dir(args, vol, backend)
    return (f"mounts {cc.mounts_under(d)}, loops {cc.loops_for(os.path.join(d, 'lun', 'disk'))}, "
            f"helpers {helpers_for(os.path.join(d, 'lun'))}")


def fsck_clean(img):
    r = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    check(r.returncode == 0, f"e2fsck -fn {img}: status {r.returncode}\n{r.stdout[-1500:]}{r.stderr}")
    return r.stdout.strip().splitlines()[-1]


def img_cat(img, path):
    return subprocess.run(["debugfs", "-R", f"cat {path}", img], capture_output=True).stdout


# ------------------------------------------------------------------ scenarios

def sc_mount(c, args):
    vol = "csi-i1"
    cap = mount_cap()
    v = c.create(vol, 48 * MiB, cap, PARAMS)
    eq(vol, v.volume_id, "volume_id")
    eq(48 * MiB, v.capacity_bytes, "capacity_bytes")
    eq("iscsi", v.volume_context.get("driver"), "volume_context driver")
    v2 = c.create(vol, 48 * MiB, cap, PARAMS, what="CreateVolume again (idempotent)")
    eq(48 * MiB, v2.capacity_bytes, "capacity_bytes of the repeated CreateVolume")
    req = pb.CreateVolumeRequest(name=vol, volume_capabilities=[cap], parameters=PARAMS)
    req.capacity_range.required_bytes = 64 * MiB
    c.fails(cc.SC.ALREADY_EXISTS, "CreateVolume", req, "same name, another capacity")
    img, info = image_of(args, vol)
    check(os.path.isfile(img), f"no image {img} after CreateVolume")
    eq(48 * MiB, os.stat(img).st_size, f"size of {img}")
    check(os.path.isfile(os.path.join(args.pool_dir, "records", vol)), "no record in the pool")
    ok(f"CreateVolume 48 MiB twice, other size refused; LUN {info['status']['lun']} -> {img}")

    v3 = c.create("csi-i2", 0, cap, {"driver": "iscsi", "size": "40Mi"},
                  what="CreateVolume with a size parameter")
    eq(40 * MiB, v3.capacity_bytes, "capacity_bytes from the size parameter")
    img2, _ = image_of(args, "csi-i2")
    names = {e.volume.volume_id for e in c.list_all()[0]}
    check({vol, "csi-i2"} <= names, f"ListVolumes does not list both: {sorted(names)}")
    c.delete("csi-i2")
    check(not os.path.exists(img2), f"{img2} still there after DeleteVolume")
    ok("CreateVolume with parameters.size 40Mi, listed, deleted (image gone)")

    staging, target = c.staging(vol), c.target(vol)
    c.cpublish(vol, cap)
    c.stage(vol, staging, cap)
    c.stage(vol, staging, cap)
    c.publish(vol, staging, target, cap)
    c.publish(vol, staging, target, cap)
    eq(1, len(cc.mounts_at(target)), f"mounts on {target} after NodePublish twice")
    eq("ext4", cc.mounts_at(target)[0][2], f"file system on {target}")
    data = "written through CSI " * 200 + "\n"
    cc.write_file(os.path.join(target, "csi.txt"), data)
    eq(data, cc.read_file(os.path.join(target, "csi.txt")), "read back")
    st = inspect(args, vol)["status"]
    res = st.get("reservation") or {}
    check(res.get("held_by_this_node") is True and res.get("holder") == st["node_reservation_key"],
          f"reservation while published: {res}")
    eq(1, len(helpers_for(os.path.join(node_dir(args, vol), "lun"))), "helpers serving the LUN")
    ok(f"ControllerPublish, NodeStage twice, NodePublish twice; written; reserved by {res['holder']}")

    r = c.call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(volume_id=vol,
                                                                   volume_path=target))
    units = {pb.VolumeUsage.Unit.Name(u.unit): u for u in r.usage}
    check("BYTES" in units and 0 < units["BYTES"].total <= 48 * MiB,
          f"NodeGetVolumeStats: {cc.fmt(r)}")
    ok(f"NodeGetVolumeStats: {units['BYTES'].total} bytes total, {units['BYTES'].used} used")
    c.fails(cc.SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=vol),
            "DeleteVolume while published")

    c.unpublish(vol, target)
    c.unpublish(vol, target)
    check(not cc.mounted(target) and not os.path.exists(target), f"NodeUnpublish left {target}")
    c.unstage(vol, staging)
    c.unstage(vol, staging)
    check(not cc.mounted(staging), f"{staging} still mounted after NodeUnstage")
    c.cunpublish(vol)
    check(cc.wait_for(lambda: node_clean(args, vol), 10),
          f"left on the node after NodeUnstage: {node_state(args, vol)}")
    ok("NodeUnpublish, NodeUnstage (twice each), ControllerUnpublish: no mount, loop or helper left")
    line = fsck_clean(img)
    eq(data.encode(), img_cat(img, "/csi.txt"), "csi.txt read from the image with debugfs")
    ok(f"e2fsck -fn clean ({line}); the file's bytes are in the image")

    c.delete(vol)
    check(not os.path.exists(img), f"{img} still there after DeleteVolume")
    check(not os.path.exists(os.path.join(args.pool_dir, "records", vol)), "record left")
    c.delete(vol)
    c.undo.clear()
    names = {e.volume.volume_id for e in c.list_all()[0]}
    check(vol not in names, f"ListVolumes still lists {vol}")
    left = cc.mounts_under(c.csidir)
    check(not left, f"mounts left under {c.csidir}: {left}")
    ok("DeleteVolume twice: image and record gone, not listed")


def sc_block(c, args):
    vol, size = "csi-iblk", 32 * MiB
    cap = block_cap()
    v = c.create(vol, size, cap, PARAMS)
    eq(size, v.capacity_bytes, "block volume capacity")
    img, info = image_of(args, vol)
    staging, target = c.staging(vol), c.target(vol)
    c.cpublish(vol, cap)
    c.stage(vol, staging, cap)
    c.stage(vol, staging, cap)
    c.publish(vol, staging, target, cap)
    c.publish(vol, staging, target, cap)
    st = os.stat(target)
    check(stat.S_ISBLK(st.st_mode), f"{target} is not a block device (mode {oct(st.st_mode)})")
    disk = os.path.join(node_dir(args, vol), "lun", "disk")
    loops = cc.loops_for(disk)
    eq(1, len(loops), f"loop devices over {disk}")
    eq(os.stat(loops[0]).st_rdev, st.st_rdev, f"{target} device vs {loops[0]}")
    ok(f"block target {target} is {loops[0]}, the loop device over {disk}")

    data = os.urandom(MiB)
    off = 4 * MiB
    buf = mmap.mmap(-1, MiB)          # page aligned, for O_DIRECT
    buf.write(data)
    t0 = time.time()
    fd = os.open(target, os.O_RDWR | os.O_DIRECT)
    try:
        eq(size, os.lseek(fd, 0, os.SEEK_END), "size of the block device")
        eq(MiB, os.pwritev(fd, [buf], off), "O_DIRECT pwrite")
        os.fsync(fd)
    finally:
        os.close(fd)
    t1 = time.time()
    back = mmap.mmap(-1, MiB)
    fd = os.open(target, os.O_RDONLY | os.O_DIRECT)
    try:
        eq(MiB, os.preadv(fd, [back], off), "O_DIRECT pread")
    finally:
        os.close(fd)
    check(bytes(back) == data, "the bytes read back with O_DIRECT differ from those written")
    with open(img, "rb") as f:
        f.seek(off)
        check(f.read(MiB) == data, f"the bytes at 4 MiB of {img} differ from those written")
    ok(f"1 MiB O_DIRECT at 4 MiB: written+fsync in {(t1 - t0) * 1000:.0f} ms, read back, "
       f"the same bytes in {img}")

    r = c.call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(volume_id=vol,
                                                                   volume_path=target))
    units = {pb.VolumeUsage.Unit.Name(u.unit): u for u in r.usage}
    eq(size, units.get("BYTES").total if "BYTES" in units else None,
       "NodeGetVolumeStats bytes total of a block volume")

    c.unpublish(vol, target)
    c.unpublish(vol, target)
    check(not os.path.exists(target), f"NodeUnpublish left the block target {target}")
    c.unstage(vol, staging)
    c.unstage(vol, staging)
    c.cunpublish(vol)
    check(cc.wait_for(lambda: node_clean(args, vol), 10),
          f"left on the node after NodeUnstage: {node_state(args, vol)}")
    st = inspect(args, vol)["status"]
    check((st.get("reservation") or {}).get("holder") is None,
          f"reservation after NodeUnstage: {st.get('reservation')}")
    ok("NodeUnpublish/NodeUnstage (twice each): loop device, helper and reservation released")
    c.delete(vol)
    c.delete(vol)
    c.undo.clear()
    check(not os.path.exists(img), f"{img} still there after DeleteVolume")
    ok("DeleteVolume twice: the image is gone")


def refused(c, args, name, params, cap, size, words, what):
    req = pb.CreateVolumeRequest(name=name, volume_capabilities=[cap], parameters=params)
    if size:
        req.capacity_range.required_bytes = size
    try:
        c._stub("CreateVolume")(req, timeout=cc.TIMEOUT)
    except grpc.RpcError as e:
        check(e.code() in (cc.SC.INVALID_ARGUMENT, cc.SC.OUT_OF_RANGE, cc.SC.NOT_FOUND),
              f"{what}: expected INVALID_ARGUMENT or OUT_OF_RANGE, got {e.code().name}: "
              f"{e.details()}")
        for w in words:
            check(w in (e.details() or ""), f"{what}: the message should name {w!r}: "
                  f"{e.details()!r}")
        check(inspect(args, name) is None, f"{what}: the volume {name} exists anyway")
        ok(f"{what} -> {e.code().name}: {e.details()}")
        return
    c.undo.append(("DeleteVolume", pb.DeleteVolumeRequest(volume_id=name)))
    raise Fail(f"{what}: CreateVolume succeeded")


def capacity(c, params):
    return c.call("GetCapacity", pb.GetCapacityRequest(
        volume_capabilities=[mount_cap()], parameters=params)).available_capacity


def sc_errors(c, args):
    imgs0 = sorted(f for f in os.listdir(args.pool_dir) if f.endswith(".img"))
    refused(c, args, "csi-ibad1", {"driver": "iscsi", "backend": "nosuchbackend"}, mount_cap(),
            32 * MiB, ["nosuchbackend"], "unknown backend")
    refused(c, args, "csi-ibad2", PARAMS, mount_cap(), 8 * MiB, ["size"],
            "capacity under the 16 MiB minimum")
    refused(c, args, "csi-ibad3", PARAMS, mount_cap(fs_type="btrfs"), 32 * MiB, ["btrfs"],
            "fs_type btrfs")
    refused(c, args, "csi-ibad4", {"driver": "iscsi", "colour": "blue"}, mount_cap(), 32 * MiB,
            ["colour"], "unknown parameter")
    eq(imgs0, sorted(f for f in os.listdir(args.pool_dir) if f.endswith(".img")),
       "images in the pool before and after the refusals")

    # pool_size less the sizes of the pool's volumes (none, unless an
    # earlier scenario failed and left some).
    used = 0
    for e in c.list_all()[0]:
        v = inspect(args, e.volume.volume_id)
        if v and v.get("driver") == "iscsi" and v["status"].get("backend") == "pool":
            used += v["status"]["size_bytes"]
    got = capacity(c, PARAMS)
    eq(POOL_SIZE - used, got, f"GetCapacity of the default backend (pool_size less {used} bytes "
       f"of volumes)")
    c.create("csi-icap", 100 * MiB, mount_cap(), PARAMS)
    eq(got - 100 * MiB, capacity(c, PARAMS), "GetCapacity with a 100 MiB volume more")
    c.delete("csi-icap")
    c.undo.clear()
    eq(got, capacity(c, PARAMS), "GetCapacity once that volume is deleted")
    ok(f"GetCapacity of the default backend: {got} (pool_size less {used}), 100 MiB less "
       f"with a 100 MiB volume, back after its DeleteVolume")
    got = capacity(c, {"driver": "iscsi", "backend": "fixed"})
    eq(FIXED_LUNS, got, "GetCapacity of backend fixed (its two free LUNs)")
    ok(f"GetCapacity of backend fixed: {got} (its two free LUNs)")


SCENARIOS = {"mount": sc_mount, "block": sc_block, "errors": sc_errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--pool-dir", required=True)
    ap.add_argument("--volctl", required=True)
    ap.add_argument("--api-socket", required=True)
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
