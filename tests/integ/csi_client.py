#!/usr/bin/python3
"""csi_client.py — a CSI container orchestrator for the integration tests.

Drives volumed's CSI endpoint (csi.v1 over gRPC on a unix socket) the way
kubelet and the external provisioner/attacher/resizer/snapshotter do, with
real mounts, and asserts on every answer. One scenario per invocation:

    PYTHONPATH=STUBS /usr/bin/python3 csi_client.py --endpoint unix:///T/csi.sock \
        --node NODE --dir T --state-dir T/state SCENARIO [ARGS...]

STUBS holds csi_pb2.py and csi_pb2_grpc.py (tests/integ/csi_stubs.sh).
Staging and target paths live under T/csi. Each scenario prints a line per
check passed and, on the first failure, "FAIL: [scenario] what was expected,
what came back" on stderr and exits 1. Every scenario leaves nothing
mounted under T/csi or the volumed state directory and deletes the volumes
it created, unless it is one half of a pair the shell script completes
(docker-*, restart-*).

Scenarios: identity create delete controller-publish validate list lifecycle
block mount-flags mount-group publish-incompatible snapshots expand-ext4-online
expand-ext4-restage expand-xfs-online docker-check NAME
csi-create-for-docker NAME docker-wrote NAME delete-busy NAME concurrency [N]
restart-setup restart-check.
"""
import argparse
import errno
import os
import stat
import subprocess
import sys
import threading
import time

import grpc

import csi_pb2 as pb
import csi_pb2_grpc as rpc

TIMEOUT = 60            # seconds per RPC: nothing here should come close
MiB = 1 << 20
TOPOLOGY_KEY = "topology.volumed.csi.io/node"
PLUGIN_NAME = "volumed.csi.io"
SNW = pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
ROX = pb.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY
SC = grpc.StatusCode

SCENARIO = "setup"


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def ok(msg):
    print(f"  ok: {msg}", flush=True)


def eq(expected, got, what):
    check(expected == got, f"{what}: expected {expected!r}, got {got!r}")


# ------------------------------------------------------------------ capabilities

def mount_cap(fs_type="", flags=(), group="", mode=SNW):
    return pb.VolumeCapability(
        mount=pb.VolumeCapability.MountVolume(fs_type=fs_type, mount_flags=list(flags),
                                              volume_mount_group=group),
        access_mode=pb.VolumeCapability.AccessMode(mode=mode))


def block_cap(mode=SNW):
    return pb.VolumeCapability(block=pb.VolumeCapability.BlockVolume(),
                               access_mode=pb.VolumeCapability.AccessMode(mode=mode))


# ------------------------------------------------------------------ the client

class CSI:
    def __init__(self, endpoint, node, tdir, state):
        self.channel = grpc.insecure_channel(endpoint)
        self.identity = rpc.IdentityStub(self.channel)
        self.controller = rpc.ControllerStub(self.channel)
        self.node_svc = rpc.NodeStub(self.channel)
        self.node = node
        self.tdir = tdir
        self.state = state
        self.csidir = os.path.join(tdir, "csi")
        # What to undo when a scenario fails half-way, so that the next one
        # starts clean: (method, request), run in reverse, errors ignored.
        self.undo = []
        os.makedirs(os.path.join(self.csidir, "stage"), exist_ok=True)
        os.makedirs(os.path.join(self.csidir, "pub"), exist_ok=True)

    def rollback(self):
        """Best effort after a failure: undoes what the scenario did."""
        for method, req in reversed(self.undo):
            try:
                self._stub(method)(req, timeout=TIMEOUT)
            except grpc.RpcError as e:
                print(f"  cleanup: {method} {fmt(req)}: {e.code().name}: {e.details()}",
                      file=sys.stderr)
        self.undo.clear()

    def _stub(self, method):
        for s in (self.identity, self.controller, self.node_svc):
            if hasattr(s, method):
                return getattr(s, method)
        raise AttributeError(method)

    def call(self, method, req, what=None):
        """The reply; any error fails the scenario naming the RPC."""
        try:
            return self._stub(method)(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            raise Fail(f"{what or method}: {method} failed: {e.code().name}: {e.details()}\n"
                       f"  request: {fmt(req)}")

    def fails(self, code, method, req, what, contains=()):
        """The call must fail with code (a grpc.StatusCode); details returned."""
        try:
            r = self._stub(method)(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            check(e.code() == code, f"{what}: {method} expected {code.name}, got "
                  f"{e.code().name}: {e.details()}\n  request: {fmt(req)}")
            d = e.details() or ""
            for c in contains:
                check(c in d, f"{what}: {method} {code.name} message should name "
                      f"{c!r}: {d!r}")
            ok(f"{what} -> {code.name}: {d}")
            return d
        raise Fail(f"{what}: {method} expected {code.name}, got success: {fmt(r)}\n"
                   f"  request: {fmt(req)}")

    # ---- paths
    def staging(self, name):
        p = os.path.join(self.csidir, "stage", name)
        os.makedirs(p, exist_ok=True)   # kubelet creates the staging directory
        return p

    def target(self, name):
        return os.path.join(self.csidir, "pub", name)   # the plugin creates it

    def image(self, vol):
        return os.path.join(self.state, "local", vol, "disk.img")

    # ---- controller shortcuts
    def create(self, name, size=0, cap=None, params=None, source=None, what="CreateVolume"):
        req = pb.CreateVolumeRequest(name=name, volume_capabilities=[cap or mount_cap()],
                                     parameters=params or {})
        if size:
            req.capacity_range.required_bytes = size
        if source is not None:
            req.volume_content_source.CopyFrom(source)
        v = self.call("CreateVolume", req, what).volume
        self.undo.append(("DeleteVolume", pb.DeleteVolumeRequest(volume_id=name)))
        return v

    def delete(self, vol):
        self.call("DeleteVolume", pb.DeleteVolumeRequest(volume_id=vol))

    def cpublish(self, vol, cap=None, readonly=False):
        self.undo.append(("ControllerUnpublishVolume", pb.ControllerUnpublishVolumeRequest(
            volume_id=vol, node_id=self.node)))
        return self.call("ControllerPublishVolume", pb.ControllerPublishVolumeRequest(
            volume_id=vol, node_id=self.node, volume_capability=cap or mount_cap(),
            readonly=readonly))

    def cunpublish(self, vol):
        self.call("ControllerUnpublishVolume", pb.ControllerUnpublishVolumeRequest(
            volume_id=vol, node_id=self.node))

    def stage(self, vol, staging, cap=None):
        self.undo.append(("NodeUnstageVolume", pb.NodeUnstageVolumeRequest(
            volume_id=vol, staging_target_path=staging)))
        self.call("NodeStageVolume", pb.NodeStageVolumeRequest(
            volume_id=vol, staging_target_path=staging, volume_capability=cap or mount_cap()))

    def unstage(self, vol, staging):
        self.call("NodeUnstageVolume", pb.NodeUnstageVolumeRequest(
            volume_id=vol, staging_target_path=staging))

    def publish(self, vol, staging, target, cap=None, readonly=False):
        self.undo.append(("NodeUnpublishVolume", pb.NodeUnpublishVolumeRequest(
            volume_id=vol, target_path=target)))
        self.call("NodePublishVolume", pb.NodePublishVolumeRequest(
            volume_id=vol, staging_target_path=staging, target_path=target,
            volume_capability=cap or mount_cap(), readonly=readonly))

    def unpublish(self, vol, target):
        self.call("NodeUnpublishVolume", pb.NodeUnpublishVolumeRequest(
            volume_id=vol, target_path=target))

    def list_all(self, page=0):
        """Every volume, following next_token; entries as returned."""
        entries, token, pages = [], "", 0
        while True:
            r = self.call("ListVolumes", pb.ListVolumesRequest(max_entries=page,
                                                                starting_token=token))
            pages += 1
            check(pages < 100000, "ListVolumes: next_token never ends")
            entries.extend(r.entries)
            if not r.next_token:
                return entries, pages
            check(page == 0 or len(r.entries) == page,
                  f"ListVolumes: a page with a next_token holds {len(r.entries)} entries, "
                  f"max_entries {page}")
            token = r.next_token

    def attach_all(self, vol, cap=None, tag=None):
        """ControllerPublish + NodeStage + NodePublish; returns (staging, target)."""
        tag = tag or vol
        staging, target = self.staging(tag), self.target(tag)
        self.cpublish(vol, cap)
        self.stage(vol, staging, cap)
        self.publish(vol, staging, target, cap)
        return staging, target

    def detach_all(self, vol, staging, target):
        self.unpublish(vol, target)
        self.unstage(vol, staging)
        self.cunpublish(vol)
        check(not os.path.exists(target), f"NodeUnpublish left the target {target}")
        check(not mounted(staging), f"NodeUnstage left {staging} mounted")


def fmt(msg):
    s = str(msg).replace("\n", " ").strip()
    return s[:400] + ("..." if len(s) > 400 else "")


# ------------------------------------------------------------------ mounts, loops

def _unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and len(s[i + 1:i + 4]) == 3 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo():
    """[(mount point, per-mount options, fstype, source, major:minor)]"""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a = line.split()
            sep = a.index("-")
            res.append((_unescape(a[4]), a[5].split(","), a[sep + 1], _unescape(a[sep + 2]), a[2]))
    return res


def mounts_at(path):
    return [m for m in mountinfo() if m[0] == path]


def mounted(path):
    return bool(mounts_at(path))


def mounts_under(*dirs):
    return [m[0] for m in mountinfo() if any(m[0] == d or m[0].startswith(d + "/") for d in dirs)]


def loops_for(backing):
    out = subprocess.run(["losetup", "-n", "-l", "-O", "NAME,BACK-FILE"], capture_output=True,
                         text=True).stdout
    return [ln.split(None, 1)[0] for ln in out.splitlines()
            if len(ln.split(None, 1)) == 2 and ln.split(None, 1)[1].strip() == backing]


def wait_for(cond, seconds=5.0):
    deadline = time.time() + seconds
    while not cond():
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def write_file(path, data):
    with open(path, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_file(path):
    with open(path) as f:
        return f.read()


def assert_clean(c, vols=()):
    """Nothing mounted under the CSI dir or the state dir, no loop device left
    for vols' images, and the volumes gone."""
    left = mounts_under(c.csidir, c.state)
    check(not left, f"mounts left behind: {left}")
    for v in vols:
        check(not loops_for(c.image(v)), f"loop device still bound to {c.image(v)}: "
              f"{loops_for(c.image(v))}")
    names = {e.volume.volume_id for e in c.list_all()[0]}
    stale = sorted(set(vols) & names)
    check(not stale, f"volumes not deleted: {stale}")
    ok(f"nothing left mounted under {c.csidir} or {c.state}; volumes {list(vols)} gone")


# ------------------------------------------------------------------ scenarios

def sc_identity(c, args):
    r = c.call("GetPluginInfo", pb.GetPluginInfoRequest())
    eq(PLUGIN_NAME, r.name, "GetPluginInfo name")
    check(r.vendor_version and r.vendor_version[0].isdigit(),
          f"GetPluginInfo vendor_version should be a version, got {r.vendor_version!r}")
    ok(f"GetPluginInfo: {r.name} {r.vendor_version}")

    r = c.call("GetPluginCapabilities", pb.GetPluginCapabilitiesRequest())
    services = {pb.PluginCapability.Service.Type.Name(x.service.type)
                for x in r.capabilities if x.HasField("service")}
    expansion = {pb.PluginCapability.VolumeExpansion.Type.Name(x.volume_expansion.type)
                 for x in r.capabilities if x.HasField("volume_expansion")}
    for s in ("CONTROLLER_SERVICE", "VOLUME_ACCESSIBILITY_CONSTRAINTS"):
        check(s in services, f"GetPluginCapabilities lacks service {s}: {fmt(r)}")
    eq({"ONLINE"}, expansion, "GetPluginCapabilities volume expansion")
    ok(f"GetPluginCapabilities: {sorted(services)} + expansion {sorted(expansion)}")

    r = c.call("Probe", pb.ProbeRequest())
    check(r.HasField("ready") and r.ready.value, f"Probe: expected ready=true, got {fmt(r)}")
    ok("Probe: ready")

    r = c.call("NodeGetInfo", pb.NodeGetInfoRequest())
    eq(c.node, r.node_id, "NodeGetInfo node_id")
    eq({TOPOLOGY_KEY: c.node}, dict(r.accessible_topology.segments),
       "NodeGetInfo accessible_topology")
    ok(f"NodeGetInfo: {r.node_id}, topology {dict(r.accessible_topology.segments)}")

    r = c.call("NodeGetCapabilities", pb.NodeGetCapabilitiesRequest())
    got = {pb.NodeServiceCapability.RPC.Type.Name(x.rpc.type) for x in r.capabilities}
    want = {"STAGE_UNSTAGE_VOLUME", "GET_VOLUME_STATS", "EXPAND_VOLUME", "VOLUME_CONDITION",
            "SINGLE_NODE_MULTI_WRITER", "VOLUME_MOUNT_GROUP"}
    eq(want, got, "NodeGetCapabilities")
    ok(f"NodeGetCapabilities: {sorted(got)}")


def sc_create(c, args):
    topo = {TOPOLOGY_KEY: c.node}
    v = c.create("cv-sized", 32 * MiB, mount_cap("ext4"))
    eq("cv-sized", v.volume_id, "sized volume id")
    eq(32 * MiB, v.capacity_bytes, "sized volume capacity_bytes")
    eq([topo], [dict(t.segments) for t in v.accessible_topology], "accessible_topology")
    eq("local", v.volume_context.get("driver"), "volume_context driver")
    ok(f"CreateVolume sized: {v.volume_id} {v.capacity_bytes} bytes on {topo}")
    check(os.path.isfile(c.image("cv-sized")), f"no image {c.image('cv-sized')}")
    eq(32 * MiB, os.path.getsize(c.image("cv-sized")), "size of the volume's image file")

    v2 = c.create("cv-sized", 32 * MiB, mount_cap("ext4"), what="repeat CreateVolume")
    eq((v.volume_id, v.capacity_bytes), (v2.volume_id, v2.capacity_bytes),
       "idempotent CreateVolume (same name, same capacity)")
    ok("CreateVolume repeated: same volume")

    v = c.create("cv-dir")
    eq(0, v.capacity_bytes, "directory volume capacity_bytes (unlimited)")
    eq([topo], [dict(t.segments) for t in v.accessible_topology], "directory accessible_topology")
    v2 = c.create("cv-dir", what="repeat CreateVolume of a directory volume")
    eq(v.volume_id, v2.volume_id, "idempotent directory CreateVolume")
    ok("CreateVolume directory: capacity 0, repeat returns it")

    v = c.create("cv-params", 20 * MiB, params={
        "driver": "local", "fstype": "ext4", "csi.storage.k8s.io/pvc/name": "claim1",
        "csi.storage.k8s.io/pvc/namespace": "default", "csi.storage.k8s.io/pv/name": "pv-1"})
    eq(20 * MiB, v.capacity_bytes, "capacity with StorageClass parameters")
    ok("CreateVolume with driver/fstype and csi.storage.k8s.io/* parameters (ignored)")

    req = pb.CreateVolumeRequest(name="cv-sized", volume_capabilities=[mount_cap("ext4")])
    req.capacity_range.required_bytes = 48 * MiB
    c.fails(SC.ALREADY_EXISTS, "CreateVolume", req, "same name, other capacity")
    eq(32 * MiB, os.path.getsize(c.image("cv-sized")), "image size after the refused re-create")
    c.fails(SC.ALREADY_EXISTS, "CreateVolume", pb.CreateVolumeRequest(
        name="cv-dir", volume_capabilities=[mount_cap()], capacity_range=pb.CapacityRange(
            required_bytes=32 * MiB)), "directory volume re-created with a capacity")

    c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(
        volume_capabilities=[mount_cap()]), "missing name", contains=("name",))
    c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(name="cv-nocaps"),
            "missing volume_capabilities", contains=("volume_capabilities",))
    c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(
        name="cv-nomode", volume_capabilities=[pb.VolumeCapability(
            mount=pb.VolumeCapability.MountVolume())]), "capability without access_mode",
        contains=("access_mode",))
    req = pb.CreateVolumeRequest(name="cv-range", volume_capabilities=[mount_cap()])
    req.capacity_range.required_bytes = 64 * MiB
    req.capacity_range.limit_bytes = 32 * MiB
    c.fails(SC.OUT_OF_RANGE, "CreateVolume", req, "limit_bytes < required_bytes")
    c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(
        name="cv-bogus", volume_capabilities=[mount_cap()], parameters={"bogus": "1"}),
        "unknown parameter", contains=("bogus", "size", "fstype"))
    c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(
        name="cv-btrfs", volume_capabilities=[mount_cap("btrfs")],
        capacity_range=pb.CapacityRange(required_bytes=32 * MiB)),
        "unsupported fs_type", contains=("btrfs", "ext4", "xfs"))
    c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(
        name="cv-blockdir", volume_capabilities=[block_cap()]),
        "block capability without a capacity", contains=("capacity",))

    other = pb.TopologyRequirement(requisite=[pb.Topology(segments={TOPOLOGY_KEY: "elsewhere"})])
    c.fails(SC.RESOURCE_EXHAUSTED, "CreateVolume", pb.CreateVolumeRequest(
        name="cv-topo", volume_capabilities=[mount_cap()], accessibility_requirements=other),
        "requisite topology of another node", contains=(c.node,))
    mine = pb.TopologyRequirement(
        requisite=[pb.Topology(segments={TOPOLOGY_KEY: "elsewhere"}),
                   pb.Topology(segments={TOPOLOGY_KEY: c.node})],
        preferred=[pb.Topology(segments={TOPOLOGY_KEY: c.node})])
    v = c.call("CreateVolume", pb.CreateVolumeRequest(
        name="cv-topo", volume_capabilities=[mount_cap()], accessibility_requirements=mine)).volume
    eq([topo], [dict(t.segments) for t in v.accessible_topology],
       "accessible_topology when the requisite includes this node")
    ok("CreateVolume with a requisite topology that includes this node")

    names = [n for n in os.listdir(os.path.join(c.state, "local"))]
    for bad in ("../x", "a/b", ".hidden", "-dash", "x" * 256, "sp ace", "..", "/abs"):
        c.fails(SC.INVALID_ARGUMENT, "CreateVolume", pb.CreateVolumeRequest(
            name=bad, volume_capabilities=[mount_cap()]), f"volume name {bad[:20]!r}")
    eq(sorted(names), sorted(os.listdir(os.path.join(c.state, "local"))),
       "volume directories after refused names")
    check(not os.path.exists(os.path.join(c.state, "x")), "'../x' created a path")

    for v in ("cv-sized", "cv-dir", "cv-params", "cv-topo"):
        c.delete(v)
    assert_clean(c, ("cv-sized", "cv-dir", "cv-params", "cv-topo"))


def sc_delete(c, args):
    c.call("DeleteVolume", pb.DeleteVolumeRequest(volume_id="no-such-volume"))
    ok("DeleteVolume of an unknown id: OK")
    c.fails(SC.INVALID_ARGUMENT, "DeleteVolume", pb.DeleteVolumeRequest(), "missing volume_id",
            contains=("volume_id",))
    c.create("dv-1", 16 * MiB, mount_cap("ext4"))
    c.delete("dv-1")
    check(not os.path.exists(os.path.join(c.state, "local", "dv-1")),
          "DeleteVolume left the volume's directory")
    c.delete("dv-1")
    ok("DeleteVolume twice: OK both times, storage removed")

    c.create("dv-busy", 16 * MiB, mount_cap("ext4"))
    c.cpublish("dv-busy")
    c.fails(SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id="dv-busy"),
            "DeleteVolume while controller-published")
    staging = c.staging("dv-busy")
    c.stage("dv-busy", staging)
    c.fails(SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id="dv-busy"),
            "DeleteVolume while staged")
    target = c.target("dv-busy")
    c.publish("dv-busy", staging, target)
    c.fails(SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id="dv-busy"),
            "DeleteVolume while node-published")
    check(mounted(target) and mounted(staging), "a refused DeleteVolume unmounted the volume")
    c.detach_all("dv-busy", staging, target)
    c.delete("dv-busy")
    assert_clean(c, ("dv-1", "dv-busy"))


def sc_controller_publish(c, args):
    c.create("cp-1", 16 * MiB, mount_cap("ext4"))
    r = c.cpublish("cp-1")
    r2 = c.cpublish("cp-1")
    eq(dict(r.publish_context), dict(r2.publish_context), "publish_context of a repeat")
    ok("ControllerPublishVolume for this node, twice: OK")
    c.fails(SC.NOT_FOUND, "ControllerPublishVolume", pb.ControllerPublishVolumeRequest(
        volume_id="no-such-volume", node_id=c.node, volume_capability=mount_cap()),
        "unknown volume")
    c.fails(SC.NOT_FOUND, "ControllerPublishVolume", pb.ControllerPublishVolumeRequest(
        volume_id="cp-1", node_id="no-such-node", volume_capability=mount_cap()),
        "unknown node", contains=("no-such-node",))
    c.fails(SC.INVALID_ARGUMENT, "ControllerPublishVolume", pb.ControllerPublishVolumeRequest(
        volume_id="cp-1", volume_capability=mount_cap()), "missing node_id",
        contains=("node_id",))
    c.fails(SC.INVALID_ARGUMENT, "ControllerPublishVolume", pb.ControllerPublishVolumeRequest(
        volume_id="cp-1", node_id=c.node), "missing volume_capability",
        contains=("volume_capability",))
    r = c.call("ControllerGetVolume", pb.ControllerGetVolumeRequest(volume_id="cp-1"))
    eq([c.node], list(r.status.published_node_ids), "published_node_ids after the publish")

    # Staged on the node: the controller must not detach under it.
    staging = c.staging("cp-1")
    c.stage("cp-1", staging)
    c.fails(SC.FAILED_PRECONDITION, "ControllerUnpublishVolume",
            pb.ControllerUnpublishVolumeRequest(volume_id="cp-1", node_id=c.node),
            "ControllerUnpublish while the node has it staged")
    c.unstage("cp-1", staging)

    c.cunpublish("cp-1")
    c.cunpublish("cp-1")
    ok("ControllerUnpublishVolume twice: OK")
    r = c.call("ControllerGetVolume", pb.ControllerGetVolumeRequest(volume_id="cp-1"))
    eq([], list(r.status.published_node_ids), "published_node_ids after the unpublish")
    c.call("ControllerUnpublishVolume", pb.ControllerUnpublishVolumeRequest(
        volume_id="no-such-volume", node_id=c.node))
    c.call("ControllerUnpublishVolume", pb.ControllerUnpublishVolumeRequest(
        volume_id="cp-1", node_id="no-such-node"))
    ok("ControllerUnpublishVolume of an unknown volume / node: OK")
    c.delete("cp-1")
    assert_clean(c, ("cp-1",))


def sc_validate(c, args):
    c.create("vv-dir")
    c.create("vv-ext4", 16 * MiB, mount_cap("ext4"))

    def validate(vol, caps):
        return c.call("ValidateVolumeCapabilities", pb.ValidateVolumeCapabilitiesRequest(
            volume_id=vol, volume_capabilities=caps))

    for vol, caps, what in (("vv-dir", [mount_cap()], "mount on a directory volume"),
                            ("vv-ext4", [mount_cap("ext4")], "mount ext4 on an ext4 volume"),
                            ("vv-ext4", [mount_cap()], "mount, no fs_type, on an ext4 volume"),
                            ("vv-ext4", [block_cap()], "block on a sized volume"),
                            ("vv-ext4", [mount_cap("ext4", mode=ROX)], "read-only many")):
        r = validate(vol, caps)
        check(r.HasField("confirmed"), f"ValidateVolumeCapabilities {what}: not confirmed: "
              f"{r.message!r}")
        eq(len(caps), len(r.confirmed.volume_capabilities), f"{what}: confirmed capabilities")
        ok(f"ValidateVolumeCapabilities confirmed: {what}")
    for vol, caps, what in (("vv-dir", [block_cap()], "block on a directory volume"),
                            ("vv-ext4", [mount_cap("xfs")], "xfs on an ext4 volume"),
                            ("vv-ext4", [mount_cap("ext4"), mount_cap("xfs")],
                             "ext4 and xfs on an ext4 volume")):
        r = validate(vol, caps)
        check(not r.HasField("confirmed"), f"ValidateVolumeCapabilities {what}: confirmed, "
              f"expected not")
        check(r.message, f"ValidateVolumeCapabilities {what}: not confirmed but no message")
        ok(f"ValidateVolumeCapabilities not confirmed: {what}: {r.message}")
    c.fails(SC.NOT_FOUND, "ValidateVolumeCapabilities", pb.ValidateVolumeCapabilitiesRequest(
        volume_id="no-such-volume", volume_capabilities=[mount_cap()]), "unknown volume")
    c.fails(SC.INVALID_ARGUMENT, "ValidateVolumeCapabilities",
            pb.ValidateVolumeCapabilitiesRequest(volume_id="vv-dir"), "no capabilities")
    c.delete("vv-dir")
    c.delete("vv-ext4")
    assert_clean(c, ("vv-dir", "vv-ext4"))


CONTROLLER_CAPS = {
    "CREATE_DELETE_VOLUME", "PUBLISH_UNPUBLISH_VOLUME", "LIST_VOLUMES", "GET_CAPACITY",
    "CREATE_DELETE_SNAPSHOT", "LIST_SNAPSHOTS", "CLONE_VOLUME", "PUBLISH_READONLY",
    "EXPAND_VOLUME", "LIST_VOLUMES_PUBLISHED_NODES", "VOLUME_CONDITION", "GET_VOLUME",
    "SINGLE_NODE_MULTI_WRITER",
}


def sc_list(c, args):
    names = [f"lv-{i}" for i in range(7)]
    for i, n in enumerate(names):
        c.create(n, 16 * MiB if i % 2 else 0, mount_cap("ext4" if i % 2 else ""))
    before = [e.volume.volume_id for e in c.list_all()[0]]
    entries, pages = c.list_all(page=3)
    got = [e.volume.volume_id for e in entries]
    for n in names:
        eq(1, got.count(n), f"times {n} appears across the pages of 3")
    eq(len(got), len(set(got)), "volumes listed more than once across pages")
    eq(sorted(before), sorted(got), "paged listing vs one-page listing")
    eq((len(got) + 2) // 3, pages, "number of pages of 3")
    caps = {e.volume.volume_id: e.volume.capacity_bytes for e in entries}
    eq([0, 16 * MiB] * 3 + [0], [caps[n] for n in names], "capacity_bytes in ListVolumes")
    ok(f"ListVolumes max_entries=3: {len(got)} volumes in {pages} pages, each once")

    r = c.call("ListVolumes", pb.ListVolumesRequest(max_entries=1))
    eq(1, len(r.entries), "ListVolumes max_entries=1")
    check(r.next_token, "ListVolumes max_entries=1 with 7 volumes: no next_token")
    c.fails(SC.ABORTED, "ListVolumes", pb.ListVolumesRequest(starting_token="not-a-token"),
            "bad starting_token")
    c.fails(SC.ABORTED, "ListVolumes", pb.ListVolumesRequest(starting_token="after:../x"),
            "forged starting_token")
    c.fails(SC.INVALID_ARGUMENT, "ListVolumes", pb.ListVolumesRequest(max_entries=-1),
            "negative max_entries")

    c.cpublish("lv-1")
    pub = {e.volume.volume_id: list(e.status.published_node_ids) for e in c.list_all()[0]}
    eq([c.node], pub["lv-1"], "ListVolumes published_node_ids of a published volume")
    eq([], pub["lv-2"], "ListVolumes published_node_ids of an unpublished volume")
    ok(f"ListVolumes published_node_ids: lv-1 -> {pub['lv-1']}")

    r = c.call("ControllerGetVolume", pb.ControllerGetVolumeRequest(volume_id="lv-1"))
    eq("lv-1", r.volume.volume_id, "ControllerGetVolume volume_id")
    eq(16 * MiB, r.volume.capacity_bytes, "ControllerGetVolume capacity_bytes")
    eq([c.node], list(r.status.published_node_ids), "ControllerGetVolume published_node_ids")
    check(r.status.HasField("volume_condition") and not r.status.volume_condition.abnormal,
          f"ControllerGetVolume volume_condition: {fmt(r.status)}")
    ok("ControllerGetVolume: capacity, published node, condition normal")
    c.fails(SC.NOT_FOUND, "ControllerGetVolume",
            pb.ControllerGetVolumeRequest(volume_id="no-such-volume"), "unknown volume")
    c.cunpublish("lv-1")

    r = c.call("GetCapacity", pb.GetCapacityRequest())
    check(r.available_capacity > 0, f"GetCapacity: {r.available_capacity}")
    r2 = c.call("GetCapacity", pb.GetCapacityRequest(
        volume_capabilities=[mount_cap("ext4")], parameters={"fstype": "ext4"},
        accessible_topology=pb.Topology(segments={TOPOLOGY_KEY: c.node})))
    check(r2.available_capacity > 0, f"GetCapacity for this node: {r2.available_capacity}")
    r3 = c.call("GetCapacity", pb.GetCapacityRequest(
        accessible_topology=pb.Topology(segments={TOPOLOGY_KEY: "elsewhere"})))
    eq(0, r3.available_capacity, "GetCapacity for another node's topology")
    ok(f"GetCapacity: {r.available_capacity} bytes here, 0 elsewhere")

    r = c.call("ControllerGetCapabilities", pb.ControllerGetCapabilitiesRequest())
    got = {pb.ControllerServiceCapability.RPC.Type.Name(x.rpc.type) for x in r.capabilities}
    eq(CONTROLLER_CAPS, got, "ControllerGetCapabilities")
    ok(f"ControllerGetCapabilities: {len(got)} capabilities")

    for n in names:
        c.delete(n)
    assert_clean(c, names)


def statvfs_bytes(path):
    s = os.statvfs(path)
    return s.f_blocks * s.f_frsize


def sc_lifecycle(c, args):
    vol = "lc-1"
    cap = mount_cap("ext4")
    c.create(vol, 64 * MiB, cap)
    c.cpublish(vol, cap)
    c.cpublish(vol, cap)
    staging, target, target_ro = c.staging(vol), c.target(vol), c.target(vol + "-ro")

    c.stage(vol, staging, cap)
    c.stage(vol, staging, cap)
    eq(1, len(mounts_at(staging)), f"mounts on {staging} after NodeStage twice")
    eq("ext4", mounts_at(staging)[-1][2], "file system on the staging path")
    loops = loops_for(c.image(vol))
    eq(1, len(loops), f"loop devices bound to {c.image(vol)}")
    ok(f"NodeStageVolume twice: {staging} mounted once (ext4 on {loops[0]})")

    check(not os.path.exists(target), "target exists before NodePublish")
    c.publish(vol, staging, target, cap)
    c.publish(vol, staging, target, cap)
    eq(1, len(mounts_at(target)), f"mounts on {target} after NodePublish twice")
    check(os.path.isdir(target), "target is not a directory")
    ok(f"NodePublishVolume twice: {target} mounted once")

    write_file(os.path.join(target, "hello.txt"), "written through the target\n")
    eq("written through the target\n", read_file(os.path.join(target, "hello.txt")),
       "file read back through the target")
    eq("written through the target\n", read_file(os.path.join(staging, "hello.txt")),
       "file read through the staging path")
    ok("a file written through the target reads back (and through the staging path)")

    c.fails(SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=vol),
            "DeleteVolume while staged and published")

    r = c.call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(volume_id=vol,
                                                                   volume_path=target))
    units = {pb.VolumeUsage.Unit.Name(u.unit): u for u in r.usage}
    eq({"BYTES", "INODES"}, set(units), "NodeGetVolumeStats units")
    b, i = units["BYTES"], units["INODES"]
    check(0 < b.total <= 64 * MiB and b.total > 40 * MiB, f"bytes total {b.total} for 64 MiB")
    check(b.used > 0 and 0 < b.available <= b.total and b.used + b.available <= b.total,
          f"bytes used {b.used} available {b.available} total {b.total}")
    sv = os.statvfs(target)
    eq(sv.f_blocks * sv.f_frsize, b.total, "bytes total vs statvfs of the target")
    check(i.total > 0 and i.used >= 2 and i.available > 0 and i.used + i.available <= i.total,
          f"inodes total {i.total} used {i.used} free {i.available}")
    check(r.HasField("volume_condition") and not r.volume_condition.abnormal,
          f"volume_condition: {fmt(r.volume_condition)}")
    ok(f"NodeGetVolumeStats: bytes {b.used}/{b.total}, inodes {i.used}/{i.total}, normal")
    c.fails(SC.NOT_FOUND, "NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(
        volume_id=vol, volume_path=c.target("nowhere")), "stats for a path it is not on")
    c.fails(SC.NOT_FOUND, "NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(
        volume_id="no-such-volume", volume_path=target), "stats of an unknown volume")

    c.publish(vol, staging, target_ro, cap, readonly=True)
    c.publish(vol, staging, target_ro, cap, readonly=True)
    eq(1, len(mounts_at(target_ro)), f"mounts on {target_ro}")
    check("ro" in mounts_at(target_ro)[-1][1], f"{target_ro} not read-only in mountinfo: "
          f"{mounts_at(target_ro)[-1][1]}")
    eq("written through the target\n", read_file(os.path.join(target_ro, "hello.txt")),
       "file read through the read-only target")
    try:
        write_file(os.path.join(target_ro, "nope.txt"), "x")
        raise Fail(f"writing into the read-only target {target_ro} succeeded")
    except OSError as e:
        eq(errno.EROFS, e.errno, f"errno writing into the read-only target ({e})")
    write_file(os.path.join(target, "still-rw.txt"), "rw\n")
    ok("NodePublishVolume read-only to a second target: reads work, writes fail with EROFS, "
       "the first target stays writable")

    for t in (target, target_ro):
        c.unpublish(vol, t)
        check(not mounted(t), f"{t} still mounted after NodeUnpublish")
        check(not os.path.exists(t), f"NodeUnpublish did not remove the target {t}")
        c.unpublish(vol, t)
    ok("NodeUnpublishVolume of both targets, twice each: unmounted and removed")
    check(mounted(staging), "unpublishing the targets unmounted the staging path")

    c.unstage(vol, staging)
    check(not mounted(staging), f"{staging} still mounted after NodeUnstage")
    c.unstage(vol, staging)
    check(wait_for(lambda: not loops_for(c.image(vol))),
          f"loop device still bound after NodeUnstage: {loops_for(c.image(vol))}")
    ok("NodeUnstageVolume twice: unmounted, loop device released")

    c.cunpublish(vol)
    c.cunpublish(vol)
    c.delete(vol)
    check(not os.path.exists(os.path.join(c.state, "local", vol)), "volume storage left")
    c.delete(vol)
    ok("ControllerUnpublishVolume twice, DeleteVolume twice")
    left = mounts_under(c.csidir, c.state)
    check(not left, f"mounts left under the test dir: {left}")
    assert_clean(c, (vol,))


def sc_block(c, args):
    vol, size = "blk-1", 32 * MiB
    cap = block_cap()
    v = c.create(vol, size, cap)
    eq(size, v.capacity_bytes, "block volume capacity")
    staging, target = c.staging(vol), c.target(vol)
    c.cpublish(vol, cap)
    c.stage(vol, staging, cap)
    c.stage(vol, staging, cap)
    c.publish(vol, staging, target, cap)
    c.publish(vol, staging, target, cap)
    st = os.stat(target)
    check(stat.S_ISBLK(st.st_mode), f"{target} is not a block device (mode {oct(st.st_mode)})")
    loops = loops_for(c.image(vol))
    eq(1, len(loops), f"loop devices bound to {c.image(vol)}")
    eq(os.stat(loops[0]).st_rdev, st.st_rdev, f"{target} device vs {loops[0]}")
    eq(1, len(mounts_at(target)), f"bind mounts on {target}")
    fd = os.open(target, os.O_RDWR)
    try:
        eq(size, os.lseek(fd, 0, os.SEEK_END), "size of the block device")
        data = b"volumed block data \x00\xff" * 100
        os.pwrite(fd, data, 5 * MiB + 123)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(target, os.O_RDONLY)
    try:
        eq(data, os.pread(fd, len(data), 5 * MiB + 123), "bytes read back from the device")
    finally:
        os.close(fd)
    with open(c.image(vol), "rb") as f:
        f.seek(5 * MiB + 123)
        eq(data, f.read(len(data)), "bytes in the backing image")
    ok(f"block target {target}: S_ISBLK on {loops[0]}, {size} bytes, pwrite/pread at 5 MiB")

    r = c.call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(volume_id=vol,
                                                                   volume_path=target))
    units = {pb.VolumeUsage.Unit.Name(u.unit): u for u in r.usage}
    eq({"BYTES"}, set(units), "NodeGetVolumeStats units for a block volume")
    eq(size, units["BYTES"].total, "NodeGetVolumeStats bytes total for a block volume")
    ok("NodeGetVolumeStats on a block target: BYTES only, total = size")

    c.unpublish(vol, target)
    c.unpublish(vol, target)
    check(not os.path.exists(target), f"NodeUnpublish left the block target {target}")
    c.unstage(vol, staging)
    c.unstage(vol, staging)
    check(wait_for(lambda: not loops_for(c.image(vol))),
          f"loop device still bound after NodeUnstage: {loops_for(c.image(vol))}")
    ok("NodeUnpublish/NodeUnstage (twice each): target removed, loop device released")
    c.cunpublish(vol)
    c.delete(vol)
    assert_clean(c, (vol,))


def sc_mount_flags(c, args):
    vol = "mf-1"
    c.create(vol)
    staging, target = c.attach_all(vol)
    target2 = c.target(vol + "-flags")
    c.publish(vol, staging, target2, mount_cap(flags=["nosuid", "nodev"]))
    opts = mounts_at(target2)[-1][1]
    check("nosuid" in opts and "nodev" in opts,
          f"mount_flags nosuid,nodev not in the per-mount options of {target2}: {opts}")
    check("nosuid" not in mounts_at(target)[-1][1], "the flags leaked onto the other target")
    write_file(os.path.join(target2, "f"), "x")
    ok(f"NodePublish mount_flags [nosuid, nodev]: mountinfo shows {','.join(opts)}")
    target3 = c.target(vol + "-bad")
    c.fails(SC.INVALID_ARGUMENT, "NodePublishVolume", pb.NodePublishVolumeRequest(
        volume_id=vol, staging_target_path=staging, target_path=target3,
        volume_capability=mount_cap(flags=["nosuid", "no-such-flag"])),
        "unknown mount flag", contains=("no-such-flag",))
    check(not mounted(target3), f"{target3} mounted after a refused publish")
    c.fails(SC.INVALID_ARGUMENT, "NodePublishVolume", pb.NodePublishVolumeRequest(
        volume_id=vol, staging_target_path=staging, target_path="relative/target",
        volume_capability=mount_cap()), "relative target path")
    c.fails(SC.INVALID_ARGUMENT, "NodePublishVolume", pb.NodePublishVolumeRequest(
        volume_id=vol, staging_target_path=staging, target_path=target3),
        "missing volume_capability")
    c.fails(SC.NOT_FOUND, "NodePublishVolume", pb.NodePublishVolumeRequest(
        volume_id="no-such-volume", staging_target_path=staging, target_path=target3,
        volume_capability=mount_cap()), "unknown volume")
    check(not mounted(target3), f"{target3} mounted after refused publishes")
    c.unpublish(vol, target2)
    c.detach_all(vol, staging, target)
    for p in (target3,):
        if os.path.isdir(p):
            os.rmdir(p)
    c.delete(vol)
    assert_clean(c, (vol,))


def sc_publish_incompatible(c, args):
    """CSI: NodePublishVolume of a volume already published at target_path with
    another readonly flag or other mount flags is ALREADY_EXISTS; answering OK
    would leave a CO believing a read-write mount is read-only."""
    vol = "pi-1"
    cap = mount_cap("ext4")
    c.create(vol, 16 * MiB, cap)
    staging, target = c.attach_all(vol, cap)
    for what, req in (
            ("the same target, now readonly", pb.NodePublishVolumeRequest(
                volume_id=vol, staging_target_path=staging, target_path=target,
                volume_capability=cap, readonly=True)),
            ("the same target, now with mount_flags [noexec]", pb.NodePublishVolumeRequest(
                volume_id=vol, staging_target_path=staging, target_path=target,
                volume_capability=mount_cap("ext4", flags=["noexec"])))):
        try:
            c._stub("NodePublishVolume")(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            check(e.code() == SC.ALREADY_EXISTS, f"NodePublishVolume of {what}: expected "
                  f"ALREADY_EXISTS, got {e.code().name}: {e.details()}")
            ok(f"NodePublishVolume of {what} -> ALREADY_EXISTS: {e.details()}")
            continue
        raise Fail(f"NodePublishVolume of {what}: expected ALREADY_EXISTS (published there "
                   f"read-write without flags), got OK; the target's mount options stay "
                   f"{','.join(mounts_at(target)[-1][1])}")
    c.detach_all(vol, staging, target)
    c.delete(vol)
    assert_clean(c, (vol,))


def sc_mount_group(c, args):
    for vol, size in (("mg-dir", 0), ("mg-ext4", 16 * MiB)):
        cap = mount_cap("ext4" if size else "", group="1234")
        c.create(vol, size, mount_cap("ext4" if size else ""))
        staging, target = c.attach_all(vol, cap)
        st = os.stat(target)
        eq(1234, st.st_gid, f"{vol}: group of the volume root")
        check(st.st_mode & stat.S_ISGID, f"{vol}: volume root not setgid: {oct(st.st_mode)}")
        check(st.st_mode & stat.S_IWGRP, f"{vol}: volume root not group-writable: "
              f"{oct(st.st_mode)}")
        write_file(os.path.join(target, "f"), "x")
        eq(1234, os.stat(os.path.join(target, "f")).st_gid, f"{vol}: group of a new file")
        ok(f"{vol}: volume_mount_group 1234 -> root gid 1234, mode {oct(st.st_mode)}, "
           f"new files inherit it")
        c.detach_all(vol, staging, target)
        c.delete(vol)
    c.create("mg-bad")
    c.fails(SC.INVALID_ARGUMENT, "NodeStageVolume", pb.NodeStageVolumeRequest(
        volume_id="mg-bad", staging_target_path=c.staging("mg-bad"),
        volume_capability=mount_cap(group="wheel")), "non-numeric volume_mount_group")
    c.delete("mg-bad")
    assert_clean(c, ("mg-dir", "mg-ext4", "mg-bad"))


def snapshot_source(snap):
    return pb.VolumeContentSource(snapshot=pb.VolumeContentSource.SnapshotSource(
        snapshot_id=snap))


def volume_source(vol):
    return pb.VolumeContentSource(volume=pb.VolumeContentSource.VolumeSource(volume_id=vol))


def sc_snapshots(c, args):
    cap = mount_cap("ext4")
    src = "sn-src"
    c.create(src, 32 * MiB, cap)
    staging, target = c.attach_all(src, cap)
    write_file(os.path.join(target, "data.txt"), "snapshot me\n")

    try:
        r = c._stub("CreateSnapshot")(pb.CreateSnapshotRequest(
            name="sn-1", source_volume_id=src), timeout=TIMEOUT)
    except grpc.RpcError as e:
        if e.code() == SC.UNIMPLEMENTED:
            print(f"SKIP: CreateSnapshot is not implemented in this build: {e.details()}")
            c.detach_all(src, staging, target)
            c.delete(src)
            return
        raise Fail(f"CreateSnapshot sn-1 of a published volume: {e.code().name}: {e.details()}")
    s = r.snapshot
    eq(("sn-1", src, True), (s.snapshot_id, s.source_volume_id, s.ready_to_use),
       "CreateSnapshot id, source, ready_to_use")
    check(s.size_bytes > 0, f"snapshot size_bytes {s.size_bytes}")
    check(abs(s.creation_time.seconds - time.time()) < 120,
          f"snapshot creation_time {s.creation_time.seconds} is not now")
    ok(f"CreateSnapshot of a published volume: {s.snapshot_id}, {s.size_bytes} bytes")
    write_file(os.path.join(target, "data.txt"), "changed after the snapshot\n")

    s2 = c.call("CreateSnapshot", pb.CreateSnapshotRequest(name="sn-1", source_volume_id=src),
                "repeat CreateSnapshot").snapshot
    eq((s.snapshot_id, s.source_volume_id, s.size_bytes),
       (s2.snapshot_id, s2.source_volume_id, s2.size_bytes), "repeated CreateSnapshot")
    ok("CreateSnapshot repeated: same snapshot")
    c.create("sn-other")
    c.fails(SC.ALREADY_EXISTS, "CreateSnapshot", pb.CreateSnapshotRequest(
        name="sn-1", source_volume_id="sn-other"), "snapshot name reused for another source")
    c.fails(SC.NOT_FOUND, "CreateSnapshot", pb.CreateSnapshotRequest(
        name="sn-x", source_volume_id="no-such-volume"), "snapshot of an unknown volume")
    c.fails(SC.INVALID_ARGUMENT, "CreateSnapshot", pb.CreateSnapshotRequest(
        source_volume_id=src), "snapshot without a name", contains=("name",))
    c.call("CreateSnapshot", pb.CreateSnapshotRequest(name="sn-2", source_volume_id=src))
    c.call("CreateSnapshot", pb.CreateSnapshotRequest(name="sn-3", source_volume_id=src))
    c.call("CreateSnapshot", pb.CreateSnapshotRequest(name="sn-o1", source_volume_id="sn-other"))

    def ids(req):
        return [e.snapshot.snapshot_id for e in c.call("ListSnapshots", req).entries]

    eq(["sn-1", "sn-2", "sn-3"], sorted(ids(pb.ListSnapshotsRequest(source_volume_id=src))),
       "ListSnapshots by source")
    eq(["sn-o1"], ids(pb.ListSnapshotsRequest(source_volume_id="sn-other")),
       "ListSnapshots by the other source")
    eq(["sn-2"], ids(pb.ListSnapshotsRequest(snapshot_id="sn-2")), "ListSnapshots by id")
    eq([], ids(pb.ListSnapshotsRequest(snapshot_id="no-such-snapshot")),
       "ListSnapshots by an unknown id")
    got, token, pages = [], "", 0
    while True:
        r = c.call("ListSnapshots", pb.ListSnapshotsRequest(max_entries=2, starting_token=token))
        check(len(r.entries) <= 2, f"ListSnapshots page of {len(r.entries)} > max_entries 2")
        got += [e.snapshot.snapshot_id for e in r.entries]
        pages += 1
        check(pages < 50, "ListSnapshots next_token never ends")
        if not r.next_token:
            break
        token = r.next_token
    eq(sorted(set(got)), sorted(got), "ListSnapshots pages: a snapshot listed twice")
    check({"sn-1", "sn-2", "sn-3", "sn-o1"} <= set(got), f"ListSnapshots pages: {got}")
    c.fails(SC.ABORTED, "ListSnapshots", pb.ListSnapshotsRequest(starting_token="bogus"),
            "ListSnapshots bad starting_token")
    ok(f"ListSnapshots: by source, by id, {len(got)} snapshots in {pages} pages of 2")

    def check_content(vol, want, what):
        st, tg = c.attach_all(vol, cap)
        eq(want, read_file(os.path.join(tg, "data.txt")), what)
        c.detach_all(vol, st, tg)

    v = c.create("sn-restore", 32 * MiB, cap, source=snapshot_source("sn-1"))
    eq("sn-1", v.content_source.snapshot.snapshot_id, "content_source of the restored volume")
    check_content("sn-restore", "snapshot me\n", "data in the volume created from the snapshot")
    ok("CreateVolume from a snapshot has the data as of the snapshot")
    c.fails(SC.NOT_FOUND, "CreateVolume", pb.CreateVolumeRequest(
        name="sn-restore-x", volume_capabilities=[cap], capacity_range=pb.CapacityRange(
            required_bytes=32 * MiB), volume_content_source=snapshot_source("no-such-snapshot")),
        "CreateVolume from an unknown snapshot")

    v = c.create("sn-clone", 32 * MiB, cap, source=volume_source(src))
    eq(src, v.content_source.volume.volume_id, "content_source of the clone")
    check_content("sn-clone", "changed after the snapshot\n", "data in the clone")
    ok("CreateVolume cloned from a (published) volume has its current data")
    c.fails(SC.NOT_FOUND, "CreateVolume", pb.CreateVolumeRequest(
        name="sn-clone-x", volume_capabilities=[cap], capacity_range=pb.CapacityRange(
            required_bytes=32 * MiB), volume_content_source=volume_source(
            "no-such-volume")), "clone of an unknown volume")

    for s in ("sn-1", "sn-2", "sn-3", "sn-o1"):
        c.call("DeleteSnapshot", pb.DeleteSnapshotRequest(snapshot_id=s))
        c.call("DeleteSnapshot", pb.DeleteSnapshotRequest(snapshot_id=s))
    c.call("DeleteSnapshot", pb.DeleteSnapshotRequest(snapshot_id="no-such-snapshot"))
    eq([], ids(pb.ListSnapshotsRequest()), "snapshots after DeleteSnapshot")
    ok("DeleteSnapshot twice each and of an unknown id: OK; none left")

    c.detach_all(src, staging, target)
    for v in (src, "sn-other", "sn-restore", "sn-clone"):
        c.delete(v)
    assert_clean(c, (src, "sn-other", "sn-restore", "sn-clone"))


def cap_sys_resource():
    """Whether this process (and so volumed, started by the same root shell)
    holds CAP_SYS_RESOURCE, which the kernel wants for growing a mounted ext4."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 24)), line.split()[1]
    return True, "?"


def expand_online(c, vol, cap, staging, target, new_size, what):
    """ControllerExpandVolume of a published volume, then NodeExpandVolume as
    the CO would; returns (reply, statvfs before, after, how it went)."""
    before = statvfs_bytes(target)
    r = c.call("ControllerExpandVolume", pb.ControllerExpandVolumeRequest(
        volume_id=vol, capacity_range=pb.CapacityRange(required_bytes=new_size),
        volume_capability=cap))
    check(r.capacity_bytes >= new_size, f"{what}: ControllerExpandVolume capacity_bytes "
          f"{r.capacity_bytes} < {new_size}")
    eq(r.capacity_bytes, os.path.getsize(c.image(vol)), f"{what}: image size after the expansion")
    after_ctl = statvfs_bytes(target)
    nreq = pb.NodeExpandVolumeRequest(
        volume_id=vol, volume_path=target, staging_target_path=staging,
        capacity_range=pb.CapacityRange(required_bytes=new_size), volume_capability=cap)
    try:
        r2 = c._stub("NodeExpandVolume")(nreq, timeout=TIMEOUT)
        node = f"NodeExpandVolume OK (capacity {r2.capacity_bytes})"
        node_err = None
    except grpc.RpcError as e:
        node, node_err = f"NodeExpandVolume {e.code().name}: {e.details()}", e
    after = statvfs_bytes(target)
    return r, before, after_ctl, after, node, node_err


def sc_expand_ext4_online(c, args):
    cap = mount_cap("ext4")
    have_cap, capeff = cap_sys_resource()

    # ext4, published: grows online, or (without CAP_SYS_RESOURCE, when the
    # kernel refuses) the plugin must say the node still has work to do.
    vol = "ex-1"
    c.create(vol, 32 * MiB, cap)
    staging, target = c.attach_all(vol, cap)
    write_file(os.path.join(target, "keep.txt"), "kept\n")
    r, before, after_ctl, after, node, node_err = expand_online(
        c, vol, cap, staging, target, 96 * MiB, "ext4")
    print(f"  .. ext4 32 -> 96 MiB while published: statvfs {before} -> {after_ctl} after "
          f"ControllerExpandVolume (node_expansion_required={r.node_expansion_required}), "
          f"-> {after} after {node}; CAP_SYS_RESOURCE {'held' if have_cap else 'missing'} "
          f"(CapEff {capeff})", flush=True)
    if after > before + 48 * MiB:
        check(node_err is None, f"ext4 grew but {node}")
        ok(f"ext4 ControllerExpandVolume online 32 -> 96 MiB: statvfs {before} -> {after}")
    elif have_cap:
        raise Fail(f"ext4 online expansion: statvfs at the target {before} -> {after} bytes after "
                   f"ControllerExpandVolume to 96 MiB (capacity {r.capacity_bytes}, "
                   f"node_expansion_required={r.node_expansion_required}) and {node}")
    else:
        # Growing a mounted ext4 is impossible here; the reply must not claim
        # it is done: node_expansion_required, and NodeExpandVolume saying why.
        check(r.node_expansion_required,
              f"ext4 online expansion without CAP_SYS_RESOURCE (CapEff {capeff}): "
              f"ControllerExpandVolume to 96 MiB answered OK, capacity {r.capacity_bytes}, "
              f"node_expansion_required=false, but the mounted file system did not grow "
              f"(statvfs at the target {before} -> {after_ctl}); a CO now believes the volume "
              f"is {r.capacity_bytes} bytes. Expected node_expansion_required=true (the "
              f"growth is deferred) so the CO calls NodeExpandVolume, which answers: {node}")
        check(node_err is not None, f"ext4 did not grow but {node}")
        ok(f"ext4 online expansion deferred: node_expansion_required=true, {node}")
    r3 = c.call("ControllerExpandVolume", pb.ControllerExpandVolumeRequest(
        volume_id=vol, capacity_range=pb.CapacityRange(required_bytes=96 * MiB)),
        "repeat ControllerExpandVolume")
    eq(r.capacity_bytes, r3.capacity_bytes, "repeated expansion to the same size")
    g = c.call("ControllerGetVolume", pb.ControllerGetVolumeRequest(volume_id=vol))
    eq(r.capacity_bytes, g.volume.capacity_bytes, "ControllerGetVolume capacity after growing")

    # A smaller size must never shrink the volume: refused, or a no-op that
    # reports the current (larger) capacity.
    fs_now = statvfs_bytes(target)
    try:
        r4 = c._stub("ControllerExpandVolume")(pb.ControllerExpandVolumeRequest(
            volume_id=vol, capacity_range=pb.CapacityRange(required_bytes=16 * MiB)),
            timeout=TIMEOUT)
        check(r4.capacity_bytes >= r.capacity_bytes, f"ControllerExpandVolume to 16 MiB "
              f"answered capacity {r4.capacity_bytes} < {r.capacity_bytes}")
        how = f"OK, capacity stays {r4.capacity_bytes}"
    except grpc.RpcError as e:
        check(e.code() in (SC.OUT_OF_RANGE, SC.INVALID_ARGUMENT, SC.FAILED_PRECONDITION),
              f"ControllerExpandVolume to a smaller size: {e.code().name}: {e.details()}")
        how = f"{e.code().name}: {e.details()}"
    eq(r.capacity_bytes, os.path.getsize(c.image(vol)), "image size after a shrink request")
    eq(fs_now, statvfs_bytes(target), "statvfs after a shrink request")
    ok(f"no shrink: ControllerExpandVolume to 16 MiB -> {how}; sizes unchanged")
    c.detach_all(vol, staging, target)
    c.delete(vol)
    assert_clean(c, (vol,))


def sc_expand_ext4_restage(c, args):
    """The file system has its new size once staged again, whatever happened
    online; an unstaged volume grows at once (offline) or at its stage."""
    cap = mount_cap("ext4")
    vol = "ex-2"
    c.create(vol, 32 * MiB, cap)
    staging, target = c.attach_all(vol, cap)
    write_file(os.path.join(target, "keep.txt"), "kept\n")
    before = statvfs_bytes(target)
    r = c.call("ControllerExpandVolume", pb.ControllerExpandVolumeRequest(
        volume_id=vol, capacity_range=pb.CapacityRange(required_bytes=96 * MiB)))
    check(r.capacity_bytes >= 96 * MiB, f"capacity_bytes {r.capacity_bytes} < 96 MiB")
    c.unpublish(vol, target)
    c.unstage(vol, staging)
    c.stage(vol, staging, cap)
    c.publish(vol, staging, target, cap)
    restaged = statvfs_bytes(target)
    check(restaged > before + 48 * MiB, f"ext4 after unstage + stage: statvfs {restaged} bytes, "
          f"was {before} before growing 32 -> 96 MiB")
    eq("kept\n", read_file(os.path.join(target, "keep.txt")), "data after the expansion")
    ok(f"ext4 restaged after the expansion: statvfs {restaged} bytes, data kept")
    c.call("NodeExpandVolume", pb.NodeExpandVolumeRequest(volume_id=vol, volume_path=target),
           "NodeExpandVolume with nothing left to grow")
    ok("NodeExpandVolume with nothing to grow: OK")
    c.detach_all(vol, staging, target)

    # Not staged anywhere: grown offline; staged, it has the new size.
    r = c.call("ControllerExpandVolume", pb.ControllerExpandVolumeRequest(
        volume_id=vol, capacity_range=pb.CapacityRange(required_bytes=160 * MiB)))
    check(r.capacity_bytes >= 160 * MiB, f"capacity_bytes {r.capacity_bytes} < 160 MiB")
    staging, target = c.attach_all(vol, cap)
    grown = statvfs_bytes(target)
    check(grown > restaged + 48 * MiB, f"ext4 expanded 96 -> 160 MiB while not staged: statvfs "
          f"{restaged} -> {grown} once staged")
    eq("kept\n", read_file(os.path.join(target, "keep.txt")), "data after the offline expansion")
    ok(f"ext4 expanded 96 -> 160 MiB while not staged: statvfs {restaged} -> {grown} once staged")
    c.detach_all(vol, staging, target)

    c.create("ex-dir")
    try:
        c._stub("ControllerExpandVolume")(pb.ControllerExpandVolumeRequest(
            volume_id="ex-dir", capacity_range=pb.CapacityRange(required_bytes=64 * MiB)),
            timeout=TIMEOUT)
        raise Fail("ControllerExpandVolume of a directory volume succeeded")
    except grpc.RpcError as e:
        check(e.code() in (SC.INVALID_ARGUMENT, SC.UNIMPLEMENTED, SC.FAILED_PRECONDITION),
              f"ControllerExpandVolume of a directory volume: {e.code().name}: {e.details()}")
        ok(f"ControllerExpandVolume of a directory volume -> {e.code().name}: {e.details()}")
    c.fails(SC.NOT_FOUND, "ControllerExpandVolume", pb.ControllerExpandVolumeRequest(
        volume_id="no-such-volume", capacity_range=pb.CapacityRange(required_bytes=64 * MiB)),
        "expand an unknown volume")
    c.fails(SC.INVALID_ARGUMENT, "ControllerExpandVolume", pb.ControllerExpandVolumeRequest(
        volume_id=vol), "expand without a capacity_range", contains=("capacity_range",))
    c.delete(vol)
    c.delete("ex-dir")
    assert_clean(c, (vol, "ex-dir"))


def sc_expand_xfs_online(c, args):
    """xfs grows online with CAP_SYS_ADMIN alone (xfs_growfs)."""
    xcap = mount_cap("xfs")
    xvol = "ex-xfs"
    c.create(xvol, 320 * MiB, xcap)
    xst, xtg = c.attach_all(xvol, xcap)
    write_file(os.path.join(xtg, "keep.txt"), "kept\n")
    r, before, after_ctl, after, node, node_err = expand_online(
        c, xvol, xcap, xst, xtg, 512 * MiB, "xfs")
    check(after > before + 150 * MiB, f"xfs online expansion 320 -> 512 MiB: statvfs at the "
          f"target {before} -> {after_ctl} after ControllerExpandVolume "
          f"(node_expansion_required={r.node_expansion_required}), -> {after} after {node}")
    check(node_err is None, f"xfs grew but {node}")
    eq("kept\n", read_file(os.path.join(xtg, "keep.txt")), "xfs data after the expansion")
    ok(f"xfs ControllerExpandVolume online 320 -> 512 MiB: statvfs {before} -> {after_ctl}, "
       f"{node}")
    c.detach_all(xvol, xst, xtg)
    c.delete(xvol)
    assert_clean(c, (xvol,))


def sc_docker_check(c, args):
    """A volume made by `docker volume create`: listed by CSI, usable by CSI."""
    vol = args[0]
    listed = {e.volume.volume_id: e for e in c.list_all()[0]}
    check(vol in listed, f"docker-created volume {vol} not in ListVolumes: {sorted(listed)}")
    ok(f"ListVolumes shows the docker-created volume {vol}")
    staging, target = c.attach_all(vol)
    eq("from a container\n", read_file(os.path.join(target, "docker.txt")),
       "file a container wrote, read through the CSI target")
    write_file(os.path.join(target, "csi.txt"), "from csi\n")
    ok(f"{vol} staged and published by CSI; the container's file is there")
    c.detach_all(vol, staging, target)
    left = mounts_under(c.csidir)
    check(not left, f"mounts left: {left}")


def sc_csi_create_for_docker(c, args):
    c.create(args[0], 16 * MiB, mount_cap("ext4"))
    ok(f"CreateVolume {args[0]} (sized ext4) for docker")


def sc_delete_busy(c, args):
    """A volume a container holds: DeleteVolume and ControllerUnpublish refuse."""
    c.fails(SC.FAILED_PRECONDITION, "DeleteVolume", pb.DeleteVolumeRequest(volume_id=args[0]),
            f"DeleteVolume of {args[0]} while a container uses it")


def sc_docker_wrote(c, args):
    """The container wrote into a CSI-created volume: CSI sees the file."""
    vol = args[0]
    staging, target = c.attach_all(vol, mount_cap("ext4"))
    eq("written by docker\n", read_file(os.path.join(target, "from-docker.txt")),
       "file the container wrote into the CSI volume")
    ok(f"the container's file in {vol} reads back through CSI")
    c.detach_all(vol, staging, target)
    c.delete(vol)
    assert_clean(c, (vol,))


def sc_concurrency(c, args):
    n = int(args[0]) if args else 50
    barrier = threading.Barrier(n)
    errors, lists = [], []

    for i in range(n):
        c.undo.append(("DeleteVolume", pb.DeleteVolumeRequest(volume_id=f"cc-{i:02d}")))

    def worker(i):
        try:
            barrier.wait(timeout=30)
            v = c.controller.CreateVolume(pb.CreateVolumeRequest(
                name=f"cc-{i:02d}", volume_capabilities=[mount_cap()]), timeout=TIMEOUT)
            if v.volume.volume_id != f"cc-{i:02d}":
                errors.append(f"CreateVolume cc-{i:02d} answered {v.volume.volume_id}")
            r = c.controller.ListVolumes(pb.ListVolumesRequest(), timeout=TIMEOUT)
            lists.append(len(r.entries))
        except grpc.RpcError as e:
            errors.append(f"thread {i}: {e.code().name}: {e.details()}")
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {e!r}")

    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not any(t.is_alive() for t in threads), "threads still running after 120 s")
    check(not errors, f"{len(errors)} of {n} streams failed: " + "; ".join(errors[:5]))
    eq(n, len(lists), "ListVolumes answers")
    names = {e.volume.volume_id for e in c.list_all()[0]}
    want = {f"cc-{i:02d}" for i in range(n)}
    check(want <= names, f"missing after the concurrent creates: {sorted(want - names)}")
    ok(f"{n} concurrent CreateVolume + ListVolumes on one channel: all OK in "
       f"{time.time() - t0:.2f} s (lists saw {min(lists)}..{max(lists)} volumes)")

    errors.clear()

    def deleter(i):
        try:
            c.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=f"cc-{i:02d}"),
                                      timeout=TIMEOUT)
        except grpc.RpcError as e:
            errors.append(f"DeleteVolume cc-{i:02d}: {e.code().name}: {e.details()}")

    threads = [threading.Thread(target=deleter, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not errors, "; ".join(errors[:5]))
    assert_clean(c, sorted(want))


def sc_restart_setup(c, args):
    vol = "rs-1"
    cap = mount_cap("ext4")
    c.create(vol, 32 * MiB, cap)
    staging, target = c.attach_all(vol, cap)
    write_file(os.path.join(target, "before.txt"), "before the crash\n")
    ok(f"{vol} staged on {staging}, published on {target}, file written")


def sc_restart_check(c, args):
    vol = "rs-1"
    cap = mount_cap("ext4")
    staging, target = c.staging(vol), c.target(vol)
    eq(1, len(mounts_at(staging)), f"mounts on {staging} after the restart")
    eq(1, len(mounts_at(target)), f"mounts on {target} after the restart")
    eq(1, len(loops_for(c.image(vol))), "loop devices for the image after the restart")
    eq("before the crash\n", read_file(os.path.join(target, "before.txt")),
       "file after the restart")
    write_file(os.path.join(target, "after.txt"), "after\n")
    r = c.call("NodeGetVolumeStats", pb.NodeGetVolumeStatsRequest(volume_id=vol,
                                                                   volume_path=target))
    check(not r.volume_condition.abnormal, f"condition after the restart: "
          f"{r.volume_condition.message}")
    r = c.call("ControllerGetVolume", pb.ControllerGetVolumeRequest(volume_id=vol))
    eq([c.node], list(r.status.published_node_ids), "published_node_ids after the restart")
    ok("after kill -9 and restart: staging and target still mounted once, data intact, "
       "stats normal, still published")
    # A repeat of the node calls (kubelet retries after a plugin restart) is idempotent.
    c.stage(vol, staging, cap)
    c.publish(vol, staging, target, cap)
    eq(1, len(mounts_at(target)), f"mounts on {target} after a repeated NodePublish")
    c.unpublish(vol, target)
    check(not mounted(target) and not os.path.exists(target),
          f"NodeUnpublish after the restart left {target}")
    c.unstage(vol, staging)
    check(not mounted(staging), f"NodeUnstage after the restart left {staging} mounted")
    check(wait_for(lambda: not loops_for(c.image(vol))),
          f"loop device still bound after NodeUnstage: {loops_for(c.image(vol))}")
    c.cunpublish(vol)
    c.delete(vol)
    assert_clean(c, (vol,))
    ok("NodeUnpublish / NodeUnstage after the restart released the mounts and the loop device")


SCENARIOS = {
    "identity": sc_identity,
    "create": sc_create,
    "delete": sc_delete,
    "controller-publish": sc_controller_publish,
    "validate": sc_validate,
    "list": sc_list,
    "lifecycle": sc_lifecycle,
    "block": sc_block,
    "mount-flags": sc_mount_flags,
    "mount-group": sc_mount_group,
    "publish-incompatible": sc_publish_incompatible,
    "snapshots": sc_snapshots,
    "expand-ext4-online": sc_expand_ext4_online,
    "expand-ext4-restage": sc_expand_ext4_restage,
    "expand-xfs-online": sc_expand_xfs_online,
    "docker-check": sc_docker_check,
    "csi-create-for-docker": sc_csi_create_for_docker,
    "docker-wrote": sc_docker_wrote,
    "delete-busy": sc_delete_busy,
    "concurrency": sc_concurrency,
    "restart-setup": sc_restart_setup,
    "restart-check": sc_restart_check,
}


def main():
    global SCENARIO
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--no-rollback", action="store_true",
                    help="on failure, leave the volumes and mounts as they are")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    SCENARIO = a.scenario
    c = CSI(a.endpoint, a.node, a.dir, a.state_dir)
    try:
        grpc.channel_ready_future(c.channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        print(f"FAIL: [{SCENARIO}] cannot connect to {a.endpoint} within 10 s", file=sys.stderr)
        return 1
    try:
        SCENARIOS[a.scenario](c, a.args)
    except Exception as e:   # noqa: BLE001 - every failure is reported the same way
        if isinstance(e, Fail):
            print(f"FAIL: [{SCENARIO}] {e}", file=sys.stderr)
        else:
            import traceback
            print(f"FAIL: [{SCENARIO}] unexpected {e!r}\n{traceback.format_exc()}",
                  file=sys.stderr)
        if not a.no_rollback:
            c.rollback()
        return 1
    finally:
        c.channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
