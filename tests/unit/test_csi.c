/* test_csi.c — the CSI services' translation onto the core, called through
 * their method table with encoded requests, as the gRPC server calls them:
 * error codes, idempotency, pagination, capabilities per controller scope. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../csi/service.h"
#include "../support/fixture.h"

struct fixture {
	struct vd_test_core t;
	struct vd_grpc_method *methods;
	size_t n;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || vd_test_core_open(&f->t, "vd-csi", "node-a") < 0)
		return -1;
	f->methods = vd_csi_methods(VD_CSI_SCOPE_CLUSTER, &f->n);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->methods);
	vd_test_core_close(&f->t);
	free(f);
	return 0;
}

/* Calls method with rq; returns the gRPC code, and the reply unpacked with
 * reply_desc (caller frees) in *ret_reply when OK. */
static int call(const struct vd_grpc_method *methods, size_t n, struct vd_core *core,
		const char *path, const ProtobufCMessage *rq,
		const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret_reply)
{
	uint8_t buf[4096], *out = NULL;
	size_t len = protobuf_c_message_pack(rq, buf), out_len = 0;
	struct vd_err err = VD_ERR_INIT;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(methods[i].path, path) != 0)
			continue;
		int code = methods[i].handler(core, buf, len, &out, &out_len, &err);
		if (code < 0)
			code = vd_errno_grpc_status(code);
		if (code == 0 && ret_reply) {
			*ret_reply = protobuf_c_message_unpack(reply_desc, NULL, out_len, out);
			assert_non_null(*ret_reply);
		}
		free(out);
		return code;
	}
	fail_msg("no method %s", path);
	return -1;
}

#define CALL(f, path, rq, desc, ret) call((f)->methods, (f)->n, (f)->t.core, path, &(rq).base, desc, ret)

static Csi__V1__VolumeCapability mount_cap(Csi__V1__VolumeCapability__MountVolume *mount,
					   Csi__V1__VolumeCapability__AccessMode *mode)
{
	Csi__V1__VolumeCapability cap = CSI__V1__VOLUME_CAPABILITY__INIT;
	mode->mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER;
	cap.access_mode = mode;
	cap.access_type_case = CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT;
	cap.mount = mount;
	return cap;
}

static int create(struct fixture *f, const char *name, int64_t required, int64_t limit)
{
	Csi__V1__VolumeCapability__MountVolume mount = CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
	Csi__V1__VolumeCapability__AccessMode mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
	Csi__V1__VolumeCapability cap = mount_cap(&mount, &mode), *caps[] = { &cap };
	Csi__V1__CapacityRange range = CSI__V1__CAPACITY_RANGE__INIT;
	Csi__V1__CreateVolumeRequest rq = CSI__V1__CREATE_VOLUME_REQUEST__INIT;
	rq.name = (char *)name;
	rq.n_volume_capabilities = 1;
	rq.volume_capabilities = caps;
	range.required_bytes = required;
	range.limit_bytes = limit;
	if (required || limit)
		rq.capacity_range = &range;
	ProtobufCMessage *reply = NULL;
	int code = CALL(f, "/csi.v1.Controller/CreateVolume", rq,
			&csi__v1__create_volume_response__descriptor, &reply);
	if (reply) {
		Csi__V1__CreateVolumeResponse *r = (Csi__V1__CreateVolumeResponse *)reply;
		assert_string_equal(r->volume->volume_id, name);
		assert_int_equal(r->volume->n_accessible_topology, 1);
		assert_string_equal(r->volume->accessible_topology[0]->segments[0]->value, "node-a");
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	return code;
}

static void test_identity(void **state)
{
	struct fixture *f = *state;
	Csi__V1__GetPluginInfoRequest rq = CSI__V1__GET_PLUGIN_INFO_REQUEST__INIT;
	ProtobufCMessage *reply;
	assert_int_equal(CALL(f, "/csi.v1.Identity/GetPluginInfo", rq,
			      &csi__v1__get_plugin_info_response__descriptor, &reply), 0);
	assert_string_equal(((Csi__V1__GetPluginInfoResponse *)reply)->name, VD_CSI_PLUGIN_NAME);
	protobuf_c_message_free_unpacked(reply, NULL);
}

static void test_create_codes(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(create(f, "pvc-1", 0, 0), VD_GRPC_OK);
	assert_int_equal(create(f, "pvc-1", 0, 0), VD_GRPC_OK);              /* idempotent */
	assert_int_equal(create(f, "pvc-1", 64 << 20, 0), VD_GRPC_ALREADY_EXISTS);
	assert_int_equal(create(f, "", 0, 0), VD_GRPC_INVALID_ARGUMENT);
	assert_int_equal(create(f, "../x", 0, 0), VD_GRPC_INVALID_ARGUMENT);
	assert_int_equal(create(f, "pvc-2", 64 << 20, 32 << 20), VD_GRPC_OUT_OF_RANGE);

	Csi__V1__DeleteVolumeRequest del = CSI__V1__DELETE_VOLUME_REQUEST__INIT;
	del.volume_id = "never-was";
	assert_int_equal(CALL(f, "/csi.v1.Controller/DeleteVolume", del, NULL, NULL), VD_GRPC_OK);
	del.volume_id = "pvc-1";
	assert_int_equal(CALL(f, "/csi.v1.Controller/DeleteVolume", del, NULL, NULL), VD_GRPC_OK);
	assert_int_equal(CALL(f, "/csi.v1.Controller/DeleteVolume", del, NULL, NULL), VD_GRPC_OK);
}

static void test_publish_codes(void **state)
{
	struct fixture *f = *state;
	Csi__V1__VolumeCapability__MountVolume mount = CSI__V1__VOLUME_CAPABILITY__MOUNT_VOLUME__INIT;
	Csi__V1__VolumeCapability__AccessMode mode = CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__INIT;
	Csi__V1__VolumeCapability cap = mount_cap(&mount, &mode);
	Csi__V1__ControllerPublishVolumeRequest rq = CSI__V1__CONTROLLER_PUBLISH_VOLUME_REQUEST__INIT;
	assert_int_equal(create(f, "pub", 0, 0), VD_GRPC_OK);
	rq.volume_id = "pub";
	rq.node_id = "node-b";
	rq.volume_capability = &cap;
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerPublishVolume", rq, NULL, NULL),
			 VD_GRPC_NOT_FOUND);
	rq.node_id = "node-a";
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerPublishVolume", rq, NULL, NULL), 0);
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerPublishVolume", rq, NULL, NULL), 0);
	rq.volume_id = "nope";
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerPublishVolume", rq, NULL, NULL),
			 VD_GRPC_NOT_FOUND);

	Csi__V1__DeleteVolumeRequest del = CSI__V1__DELETE_VOLUME_REQUEST__INIT;
	del.volume_id = "pub";
	assert_int_equal(CALL(f, "/csi.v1.Controller/DeleteVolume", del, NULL, NULL),
			 VD_GRPC_FAILED_PRECONDITION);
	Csi__V1__ControllerUnpublishVolumeRequest un = CSI__V1__CONTROLLER_UNPUBLISH_VOLUME_REQUEST__INIT;
	un.volume_id = "pub";
	un.node_id = "node-a";
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerUnpublishVolume", un, NULL, NULL), 0);
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerUnpublishVolume", un, NULL, NULL), 0);
	assert_int_equal(CALL(f, "/csi.v1.Controller/DeleteVolume", del, NULL, NULL), 0);
}

static void test_list_pages(void **state)
{
	struct fixture *f = *state;
	char name[16];
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "v%d", i);
		assert_int_equal(create(f, name, 0, 0), 0);
	}
	Csi__V1__ListVolumesRequest rq = CSI__V1__LIST_VOLUMES_REQUEST__INIT;
	char token[64] = "";
	int seen = 0, pages = 0;
	rq.max_entries = 3;
	do {
		ProtobufCMessage *reply;
		rq.starting_token = token;
		assert_int_equal(CALL(f, "/csi.v1.Controller/ListVolumes", rq,
				      &csi__v1__list_volumes_response__descriptor, &reply), 0);
		Csi__V1__ListVolumesResponse *r = (Csi__V1__ListVolumesResponse *)reply;
		assert_true(r->n_entries <= 3);
		for (size_t i = 0; i < r->n_entries; i++) {
			snprintf(name, sizeof(name), "v%d", seen++);
			assert_string_equal(r->entries[i]->volume->volume_id, name);
		}
		snprintf(token, sizeof(token), "%s", r->next_token);
		protobuf_c_message_free_unpacked(reply, NULL);
		pages++;
	} while (token[0]);
	assert_int_equal(seen, 7);
	assert_int_equal(pages, 3);
	rq.starting_token = "bogus";
	assert_int_equal(CALL(f, "/csi.v1.Controller/ListVolumes", rq, NULL, NULL), VD_GRPC_ABORTED);
	rq.starting_token = "";
	rq.max_entries = -1;
	assert_int_equal(CALL(f, "/csi.v1.Controller/ListVolumes", rq, NULL, NULL),
			 VD_GRPC_INVALID_ARGUMENT);
}

static size_t capability_count(struct fixture *f)
{
	Csi__V1__ControllerGetCapabilitiesRequest rq = CSI__V1__CONTROLLER_GET_CAPABILITIES_REQUEST__INIT;
	ProtobufCMessage *reply;
	assert_int_equal(CALL(f, "/csi.v1.Controller/ControllerGetCapabilities", rq,
			      &csi__v1__controller_get_capabilities_response__descriptor, &reply), 0);
	size_t n = ((Csi__V1__ControllerGetCapabilitiesResponse *)reply)->n_capabilities;
	protobuf_c_message_free_unpacked(reply, NULL);
	return n;
}

static void test_scope(void **state)
{
	struct fixture *f = *state;
	size_t cluster = capability_count(f);
	free(f->methods);
	f->methods = vd_csi_methods(VD_CSI_SCOPE_NODE, &f->n);
	assert_int_equal(capability_count(f), cluster - 3);
}

static void test_malformed_request(void **state)
{
	struct fixture *f = *state;
	static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f };
	uint8_t *out = NULL;
	size_t out_len;
	struct vd_err err = VD_ERR_INIT;
	for (size_t i = 0; i < f->n; i++) {
		int code = f->methods[i].handler(f->t.core, junk, sizeof(junk), &out, &out_len, &err);
		assert_int_equal(code, VD_GRPC_INVALID_ARGUMENT);
		assert_null(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_request, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
