/* test_csi_proto.c — csi/csi.proto as compiled by protoc-c: field numbers and
 * types are the CSI v1 wire format (known bytes), messages survive a
 * pack/unpack round trip, and bytes written by another implementation (the
 * Python stubs from tests/integ/csi_stubs.sh) decode to what was meant and
 * re-encode byte for byte. No threads, no I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csi/csi.pb-c.h"

/* Packs any message into a fresh buffer; the caller frees it. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *ret_len)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), len);
	*ret_len = len;
	return buf;
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
}

/* GetPluginInfoResponse{name: "a"}: field 1, wire type 2 -> tag 0x0a. */
static void test_known_bytes_plugin_info(void **state)
{
	(void)state;
	Csi__V1__GetPluginInfoResponse m = CSI__V1__GET_PLUGIN_INFO_RESPONSE__INIT;
	m.name = "a";
	size_t len;
	uint8_t *buf = pack(&m.base, &len);
	static const uint8_t want[] = { 0x0a, 0x01, 0x61 };
	assert_bytes(buf, len, want, sizeof(want));
	free(buf);

	/* And vendor_version is field 2 (tag 0x12). */
	m.name = "";
	m.vendor_version = "1";
	buf = pack(&m.base, &len);
	static const uint8_t want2[] = { 0x12, 0x01, 0x31 };
	assert_bytes(buf, len, want2, sizeof(want2));
	free(buf);
}

/* NodeGetInfoResponse{node_id:"n", max_volumes_per_node:3,
 * accessible_topology:{segments:{"zone":"z1"}}}: fields 1, 2 (varint), 3; a
 * map entry is a nested message with key = 1, value = 2. */
static void test_node_get_info_topology(void **state)
{
	(void)state;
	Csi__V1__Topology__SegmentsEntry seg = CSI__V1__TOPOLOGY__SEGMENTS_ENTRY__INIT;
	Csi__V1__Topology__SegmentsEntry *segs[] = { &seg };
	Csi__V1__Topology topo = CSI__V1__TOPOLOGY__INIT;
	Csi__V1__NodeGetInfoResponse m = CSI__V1__NODE_GET_INFO_RESPONSE__INIT;
	seg.key = "zone";
	seg.value = "z1";
	topo.n_segments = 1;
	topo.segments = segs;
	m.node_id = "n";
	m.max_volumes_per_node = 3;
	m.accessible_topology = &topo;

	size_t len;
	uint8_t *buf = pack(&m.base, &len);
	static const uint8_t want[] = {
		0x0a, 0x01, 'n',                /* node_id = 1 */
		0x10, 0x03,                     /* max_volumes_per_node = 2 */
		0x1a, 0x0c,                     /* accessible_topology = 3 */
		0x0a, 0x0a,                     /*   segments = 1 (entry) */
		0x0a, 0x04, 'z', 'o', 'n', 'e', /*     key */
		0x12, 0x02, 'z', '1',           /*     value */
	};
	assert_bytes(buf, len, want, sizeof(want));

	Csi__V1__NodeGetInfoResponse *u = csi__v1__node_get_info_response__unpack(NULL, len, buf);
	assert_non_null(u);
	assert_string_equal(u->node_id, "n");
	assert_int_equal(u->max_volumes_per_node, 3);
	assert_non_null(u->accessible_topology);
	assert_int_equal(u->accessible_topology->n_segments, 1);
	assert_string_equal(u->accessible_topology->segments[0]->key, "zone");
	assert_string_equal(u->accessible_topology->segments[0]->value, "z1");
	csi__v1__node_get_info_response__free_unpacked(u, NULL);
	free(buf);
}

/* CreateVolumeRequest with capacity, two parameters, a mount capability with
 * flags and an access mode: pack, unpack, compare field by field. */
static void test_create_volume_round_trip(void **state)
{
	(void)state;
	Csi__V1__CapacityRange cap = CSI__V1__CAPACITY_RANGE__INIT;
	cap.required_bytes = INT64_C(5) << 30;
	cap.limit_bytes = INT64_C(10) << 30;

	char *flags[] = { "noatime", "nodev" };
	Csi__V1__VolumeCapability__MountVolume mnt = CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
	mnt.fs_type = "xfs";
	mnt.n_mount_flags = 2;
	mnt.mount_flags = flags;
	Csi__V1__VolumeCapability__AccessMode am = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
	am.mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_SINGLE_WRITER;
	Csi__V1__VolumeCapability vc = CSI__V1__VOLUME_CAPABILITY__INIT;
	vc.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT;
	vc.mount = &mnt;
	vc.access_mode = &am;
	Csi__V1__VolumeCapability *vcs[] = { &vc };

	Csi__V1__CreateVolumeRequest__ParametersEntry p1 = CSI__V1__CREATE_VOLUME_REQUEST__PARAMETERS_ENTRY__INIT;
	Csi__V1__CreateVolumeRequest__ParametersEntry p2 = CSI__V1__CREATE_VOLUME_REQUEST__PARAMETERS_ENTRY__INIT;
	p1.key = "driver";
	p1.value = "nfs";
	p2.key = "export";
	p2.value = "/srv/vol";
	Csi__V1__CreateVolumeRequest__ParametersEntry *params[] = { &p1, &p2 };

	Csi__V1__CreateVolumeRequest m = CSI__V1__CREATE_VOLUME_REQUEST__INIT;
	m.name = "pvc-0d5f";
	m.capacity_range = &cap;
	m.n_volume_capabilities = 1;
	m.volume_capabilities = vcs;
	m.n_parameters = 2;
	m.parameters = params;

	size_t len;
	uint8_t *buf = pack(&m.base, &len);
	assert_int_equal(buf[0], 0x0a); /* name is field 1, length-delimited */

	Csi__V1__CreateVolumeRequest *u = csi__v1__create_volume_request__unpack(NULL, len, buf);
	assert_non_null(u);
	assert_string_equal(u->name, "pvc-0d5f");
	assert_non_null(u->capacity_range);
	assert_true(u->capacity_range->required_bytes == INT64_C(5) << 30);
	assert_true(u->capacity_range->limit_bytes == INT64_C(10) << 30);
	assert_int_equal(u->n_volume_capabilities, 1);
	const Csi__V1__VolumeCapability *uvc = u->volume_capabilities[0];
	assert_int_equal(uvc->access_type_case, CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT);
	assert_string_equal(uvc->mount->fs_type, "xfs");
	assert_int_equal(uvc->mount->n_mount_flags, 2);
	assert_string_equal(uvc->mount->mount_flags[0], "noatime");
	assert_string_equal(uvc->mount->mount_flags[1], "nodev");
	assert_string_equal(uvc->mount->volume_mount_group, "");
	assert_non_null(uvc->access_mode);
	assert_int_equal(uvc->access_mode->mode, 6);
	assert_int_equal(u->n_parameters, 2);
	assert_string_equal(u->parameters[0]->key, "driver");
	assert_string_equal(u->parameters[0]->value, "nfs");
	assert_string_equal(u->parameters[1]->key, "export");
	assert_string_equal(u->parameters[1]->value, "/srv/vol");
	assert_int_equal(u->n_secrets, 0);
	assert_null(u->volume_content_source);
	assert_null(u->accessibility_requirements);

	/* Re-encoding what we decoded gives the same bytes. */
	size_t len2;
	uint8_t *buf2 = pack(&u->base, &len2);
	assert_bytes(buf2, len2, buf, len);
	free(buf2);
	csi__v1__create_volume_request__free_unpacked(u, NULL);
	free(buf);
}

/* Bytes from the Python stubs (tests/integ/csi_stubs.sh OUTDIR; then in
 * OUTDIR, /usr/bin/python3, `import csi_pb2 as c`):
 *
 *   c.CreateVolumeRequest(name="pvc-1",
 *     capacity_range=c.CapacityRange(required_bytes=1<<30),
 *     volume_capabilities=[c.VolumeCapability(
 *       mount=c.VolumeCapability.MountVolume(fs_type="ext4",
 *                                            mount_flags=["noatime"]),
 *       access_mode=c.VolumeCapability.AccessMode(
 *         mode=c.VolumeCapability.AccessMode.SINGLE_NODE_MULTI_WRITER))],
 *     parameters={"driver": "local"},
 *     accessibility_requirements=c.TopologyRequirement(
 *       requisite=[c.Topology(segments={"zone": "z1"})])
 *   ).SerializeToString()
 */
static const uint8_t py_create_volume[] = {
	0x0a, 0x05, 0x70, 0x76, 0x63, 0x2d, 0x31, 0x12, 0x06, 0x08, 0x80, 0x80, 0x80, 0x80, 0x04, 0x1a,
	0x15, 0x12, 0x0f, 0x0a, 0x04, 0x65, 0x78, 0x74, 0x34, 0x12, 0x07, 0x6e, 0x6f, 0x61, 0x74, 0x69,
	0x6d, 0x65, 0x1a, 0x02, 0x08, 0x07, 0x22, 0x0f, 0x0a, 0x06, 0x64, 0x72, 0x69, 0x76, 0x65, 0x72,
	0x12, 0x05, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x3a, 0x0e, 0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x04, 0x7a,
	0x6f, 0x6e, 0x65, 0x12, 0x02, 0x7a, 0x31,
};

static void test_python_create_volume(void **state)
{
	(void)state;
	Csi__V1__CreateVolumeRequest *u =
		csi__v1__create_volume_request__unpack(NULL, sizeof(py_create_volume), py_create_volume);
	assert_non_null(u);
	assert_string_equal(u->name, "pvc-1");
	assert_true(u->capacity_range->required_bytes == INT64_C(1) << 30);
	assert_true(u->capacity_range->limit_bytes == 0);
	assert_int_equal(u->n_volume_capabilities, 1);
	const Csi__V1__VolumeCapability *vc = u->volume_capabilities[0];
	assert_int_equal(vc->access_type_case, CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT);
	assert_string_equal(vc->mount->fs_type, "ext4");
	assert_int_equal(vc->mount->n_mount_flags, 1);
	assert_string_equal(vc->mount->mount_flags[0], "noatime");
	assert_int_equal(vc->access_mode->mode, CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_MULTI_WRITER);
	assert_int_equal(u->n_parameters, 1);
	assert_string_equal(u->parameters[0]->key, "driver");
	assert_string_equal(u->parameters[0]->value, "local");
	assert_non_null(u->accessibility_requirements);
	assert_int_equal(u->accessibility_requirements->n_requisite, 1);
	assert_int_equal(u->accessibility_requirements->n_preferred, 0);
	const Csi__V1__Topology *t = u->accessibility_requirements->requisite[0];
	assert_int_equal(t->n_segments, 1);
	assert_string_equal(t->segments[0]->key, "zone");
	assert_string_equal(t->segments[0]->value, "z1");

	size_t len;
	uint8_t *buf = pack(&u->base, &len);
	assert_bytes(buf, len, py_create_volume, sizeof(py_create_volume));
	free(buf);
	csi__v1__create_volume_request__free_unpacked(u, NULL);
}

/* The imported well-known types, also from Python:
 *   c.ProbeResponse(ready=wrappers_pb2.BoolValue(value=True))
 *   c.Snapshot(snapshot_id="s1", source_volume_id="v1",
 *     creation_time=timestamp_pb2.Timestamp(seconds=1700000000, nanos=5),
 *     ready_to_use=True)
 */
static void test_python_well_known_types(void **state)
{
	(void)state;
	static const uint8_t py_probe[] = { 0x0a, 0x02, 0x08, 0x01 };
	Csi__V1__ProbeResponse *p = csi__v1__probe_response__unpack(NULL, sizeof(py_probe), py_probe);
	assert_non_null(p);
	assert_non_null(p->ready);
	assert_true(p->ready->value);
	csi__v1__probe_response__free_unpacked(p, NULL);

	static const uint8_t py_snap[] = {
		0x12, 0x02, 0x73, 0x31, 0x1a, 0x02, 0x76, 0x31, 0x22, 0x08,
		0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06, 0x10, 0x05, 0x28, 0x01,
	};
	Csi__V1__Snapshot *s = csi__v1__snapshot__unpack(NULL, sizeof(py_snap), py_snap);
	assert_non_null(s);
	assert_true(s->size_bytes == 0);
	assert_string_equal(s->snapshot_id, "s1");
	assert_string_equal(s->source_volume_id, "v1");
	assert_non_null(s->creation_time);
	assert_true(s->creation_time->seconds == 1700000000);
	assert_int_equal(s->creation_time->nanos, 5);
	assert_true(s->ready_to_use);
	size_t len;
	uint8_t *buf = pack(&s->base, &len);
	assert_bytes(buf, len, py_snap, sizeof(py_snap));
	free(buf);
	csi__v1__snapshot__free_unpacked(s, NULL);
}

/* Truncated input is refused, not read past. */
static void test_truncated_rejected(void **state)
{
	(void)state;
	for (size_t n = 1; n < sizeof(py_create_volume); n++) {
		Csi__V1__CreateVolumeRequest *u =
			csi__v1__create_volume_request__unpack(NULL, n, py_create_volume);
		/* Some prefixes end on a field boundary and are valid messages. */
		if (u)
			csi__v1__create_volume_request__free_unpacked(u, NULL);
	}
	static const uint8_t bad[] = { 0x0a, 0x7f, 'x' }; /* length past the end */
	assert_null(csi__v1__create_volume_request__unpack(NULL, sizeof(bad), bad));
}

/* The enum values the core maps onto, against the spec's numbers. */
static void test_enum_values(void **state)
{
	(void)state;
	assert_int_equal(CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER, 1);
	assert_int_equal(CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__MULTI_NODE_MULTI_WRITER, 5);
	assert_int_equal(CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_SINGLE_WRITER, 6);
	assert_int_equal(CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_MULTI_WRITER, 7);
	assert_int_equal(CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__CONTROLLER_SERVICE, 1);
	assert_int_equal(CSI__V1__PLUGIN_CAPABILITY__SERVICE__TYPE__VOLUME_ACCESSIBILITY_CONSTRAINTS, 2);
	assert_int_equal(CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME, 9);
	assert_int_equal(CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__SINGLE_NODE_MULTI_WRITER, 13);
	assert_int_equal(CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__STAGE_UNSTAGE_VOLUME, 1);
	assert_int_equal(CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_MOUNT_GROUP, 6);
	assert_int_equal(CSI__V1__VOLUME_USAGE__UNIT__INODES, 2);
	/* Services the gRPC front-end dispatches on. */
	assert_string_equal(csi__v1__identity__descriptor.name, "csi.v1.Identity");
	assert_string_equal(csi__v1__controller__descriptor.name, "csi.v1.Controller");
	assert_string_equal(csi__v1__node__descriptor.name, "csi.v1.Node");
	assert_int_equal(csi__v1__identity__descriptor.n_methods, 3);
	assert_int_equal(csi__v1__controller__descriptor.n_methods, 13);
	assert_int_equal(csi__v1__node__descriptor.n_methods, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_bytes_plugin_info),
		cmocka_unit_test(test_node_get_info_topology),
		cmocka_unit_test(test_create_volume_round_trip),
		cmocka_unit_test(test_python_create_volume),
		cmocka_unit_test(test_python_well_known_types),
		cmocka_unit_test(test_truncated_rejected),
		cmocka_unit_test(test_enum_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
