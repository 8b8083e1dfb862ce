/* fuzz_csi.c — CSI requests on arbitrary bytes: the first byte picks a
 * method, the rest is its request message, decoded and handled against a
 * real core on a private state directory. Methods that mount, unmount or
 * remove paths given in the request, or that format disks, are left out,
 * so the fuzzer never touches the host outside its directory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../csi/service.h"
#include "../../volumed/log.h"
#include "../support/fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const safe_paths[] = {
	"/csi.v1.Identity/GetPluginInfo",
	"/csi.v1.Identity/GetPluginCapabilities",
	"/csi.v1.Identity/Probe",
	"/csi.v1.Controller/CreateVolume",
	"/csi.v1.Controller/DeleteVolume",
	"/csi.v1.Controller/ControllerPublishVolume",
	"/csi.v1.Controller/ControllerUnpublishVolume",
	"/csi.v1.Controller/ValidateVolumeCapabilities",
	"/csi.v1.Controller/ListVolumes",
	"/csi.v1.Controller/GetCapacity",
	"/csi.v1.Controller/ControllerGetCapabilities",
	"/csi.v1.Controller/DeleteSnapshot",
	"/csi.v1.Controller/ListSnapshots",
	"/csi.v1.Controller/ControllerGetVolume",
	"/csi.v1.Node/NodeGetVolumeStats",
	"/csi.v1.Node/NodeGetCapabilities",
	"/csi.v1.Node/NodeGetInfo",
};
#define N_SAFE (sizeof(safe_paths) / sizeof(safe_paths[0]))

/* CreateVolume makes a directory volume only: a capacity would format an
 * image, a content source would copy one. */
static int create_is_cheap(const uint8_t *req, size_t len)
{
	Csi__V1__CreateVolumeRequest *rq = csi__v1__create_volume_request__unpack(NULL, len, req);
	int cheap = !rq || (!rq->capacity_range && !rq->volume_content_source);
	if (rq)
		csi__v1__create_volume_request__free_unpacked(rq, NULL);
	return cheap;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vd_grpc_method *methods;
	static size_t n;
	struct vd_core *core = vd_test_core_shared("vd-fuzz-csi");
	if (!methods) {
		vd_log_set_level(VD_LOG_ERROR);
		methods = vd_csi_methods(VD_CSI_SCOPE_CLUSTER, &n);
	}
	if (size == 0)
		return 0;
	const char *path = safe_paths[data[0] % N_SAFE];
	const uint8_t *req = data + 1;
	size_t len = size - 1;
	if (strcmp(path, "/csi.v1.Controller/CreateVolume") == 0 && !create_is_cheap(req, len))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(methods[i].path, path) != 0)
			continue;
		uint8_t *out = NULL;
		size_t out_len = 0;
		struct vd_err err = VD_ERR_INIT;
		methods[i].handler(core, req, len, &out, &out_len, &err);
		free(out);
	}
	return 0;
}
