/* node.c — the CSI Node service: staging and publishing volumes on this
 * host, their usage, expansion, and who this node is. A staged or
 * published path is a mount ID of the core's node agent ("csi-stage:PATH",
 * "csi-publish:PATH"), so its reference survives restarts like Docker's.
 * Stateless: the core keeps everything. */
#include "service.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../volumed/bind.h"

#define MSG(type, desc) ((type *)vd_csi_message(&(desc)))

static int path_arg(const char *path, const char *field, struct vd_err *err)
{
	if (!path || !*path)
		return vd_csi_missing(field, err);
	if (path[0] != '/' || strlen(path) > PATH_MAX - 32) {
		vd_err_set(err, -EINVAL, "%s '%.80s' must be an absolute path", field, path);
		return VD_GRPC_INVALID_ARGUMENT;
	}
	return 0;
}

static void mount_id(char *buf, size_t len, const char *what, const char *path)
{
	snprintf(buf, len, "csi-%s:%s", what, path);
}

/* The capability as mount options: access, block, flags, read-only,
 * fsGroup. */
static int mount_opts_read(const Csi__V1__VolumeCapability *cap, struct vd_mount_opts *o,
			   struct vd_err *err)
{
	int code = vd_csi_capability(cap, &o->access, &o->block, err);
	if (code || o->block)
		return code;
	const Csi__V1__VolumeCapability__MountVolume *m = cap->mount;
	int readonly = 0;
	if (vd_bind_flags_parse((const char *const *)m->mount_flags, m->n_mount_flags, &o->flags,
				&readonly, err) < 0)
		return VD_GRPC_INVALID_ARGUMENT;
	o->readonly |= readonly;
	if (m->volume_mount_group && *m->volume_mount_group) {
		char *end;
		long gid = strtol(m->volume_mount_group, &end, 10);
		if (*end || gid < 0 || gid > 0x7fffffffL) {
			vd_err_set(err, -EINVAL, "volume_mount_group '%.40s' must be a numeric group id",
				   m->volume_mount_group);
			return VD_GRPC_INVALID_ARGUMENT;
		}
		o->set_group = 1;
		o->group = (unsigned)gid;
	}
	return 0;
}

static int mount_code(int r)
{
	return r == -EBUSY ? VD_GRPC_FAILED_PRECONDITION : r;
}

VD_CSI_RPC(node_stage, Csi__V1__NodeStageVolumeRequest, csi__v1__node_stage_volume_request__descriptor)
static int node_stage(struct vd_core *core, const Csi__V1__NodeStageVolumeRequest *rq,
		      ProtobufCMessage **ret_reply, struct vd_err *err)
{
	struct vd_mount_opts o = { 0 };
	char id[PATH_MAX], *path = NULL;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int code = path_arg(rq->staging_target_path, "staging_target_path", err);
	if (code || (code = mount_opts_read(rq->volume_capability, &o, err)))
		return code;
	/* A block volume is staged as a device; publish binds the device. */
	o.target = o.block ? NULL : rq->staging_target_path;
	mount_id(id, sizeof(id), "stage", rq->staging_target_path);
	int r = vd_core_mount_ex(core, rq->volume_id, id, &o, &path, err);
	free(path);
	if (r < 0)
		return mount_code(r);
	*ret_reply = vd_csi_message(&csi__v1__node_stage_volume_response__descriptor);
	return 0;
}

VD_CSI_RPC(node_unstage, Csi__V1__NodeUnstageVolumeRequest,
	   csi__v1__node_unstage_volume_request__descriptor)
static int node_unstage(struct vd_core *core, const Csi__V1__NodeUnstageVolumeRequest *rq,
			ProtobufCMessage **ret_reply, struct vd_err *err)
{
	char id[PATH_MAX];
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int code = path_arg(rq->staging_target_path, "staging_target_path", err);
	if (code)
		return code;
	mount_id(id, sizeof(id), "stage", rq->staging_target_path);
	int r = vd_core_unmount(core, rq->volume_id, id, err);
	if (r < 0)
		return r;
	*ret_reply = vd_csi_message(&csi__v1__node_unstage_volume_response__descriptor);
	return 0;
}

VD_CSI_RPC(node_publish, Csi__V1__NodePublishVolumeRequest,
	   csi__v1__node_publish_volume_request__descriptor)
static int node_publish(struct vd_core *core, const Csi__V1__NodePublishVolumeRequest *rq,
			ProtobufCMessage **ret_reply, struct vd_err *err)
{
	struct vd_mount_opts o = { .readonly = rq->readonly };
	char id[PATH_MAX], *path = NULL;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int code = path_arg(rq->target_path, "target_path", err);
	if (code || (rq->staging_target_path && *rq->staging_target_path &&
		     (code = path_arg(rq->staging_target_path, "staging_target_path", err))) ||
	    (code = mount_opts_read(rq->volume_capability, &o, err)))
		return code;
	o.readonly |= rq->readonly;
	o.target = rq->target_path;
	mount_id(id, sizeof(id), "publish", rq->target_path);
	int r = vd_core_mount_ex(core, rq->volume_id, id, &o, &path, err);
	free(path);
	if (r < 0)
		return mount_code(r);
	*ret_reply = vd_csi_message(&csi__v1__node_publish_volume_response__descriptor);
	return 0;
}

VD_CSI_RPC(node_unpublish, Csi__V1__NodeUnpublishVolumeRequest,
	   csi__v1__node_unpublish_volume_request__descriptor)
static int node_unpublish(struct vd_core *core, const Csi__V1__NodeUnpublishVolumeRequest *rq,
			  ProtobufCMessage **ret_reply, struct vd_err *err)
{
	char id[PATH_MAX];
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int code = path_arg(rq->target_path, "target_path", err);
	if (code)
		return code;
	mount_id(id, sizeof(id), "publish", rq->target_path);
	int r = vd_core_unmount(core, rq->volume_id, id, err);
	if (r < 0)
		return r;
	/* The spec has the plugin remove the target it created at publish. */
	if (rmdir(rq->target_path) < 0 && errno == ENOTDIR)
		unlink(rq->target_path);
	*ret_reply = vd_csi_message(&csi__v1__node_unpublish_volume_response__descriptor);
	return 0;
}

static Csi__V1__VolumeUsage *usage(uint64_t total, uint64_t used, uint64_t available,
				   Csi__V1__VolumeUsage__Unit unit)
{
	Csi__V1__VolumeUsage *u = MSG(Csi__V1__VolumeUsage, csi__v1__volume_usage__descriptor);
	u->total = (int64_t)total;
	u->used = (int64_t)used;
	u->available = (int64_t)available;
	u->unit = unit;
	return u;
}

VD_CSI_RPC(node_stats, Csi__V1__NodeGetVolumeStatsRequest,
	   csi__v1__node_get_volume_stats_request__descriptor)
static int node_stats(struct vd_core *core, const Csi__V1__NodeGetVolumeStatsRequest *rq,
		      ProtobufCMessage **ret_reply, struct vd_err *err)
{
	struct vd_volume_stats st;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int code = path_arg(rq->volume_path, "volume_path", err);
	if (code)
		return code;
	int r = vd_core_volume_stats(core, rq->volume_id, rq->volume_path, &st, err);
	if (r < 0)
		return r;
	Csi__V1__NodeGetVolumeStatsResponse *resp = MSG(
		Csi__V1__NodeGetVolumeStatsResponse,
		csi__v1__node_get_volume_stats_response__descriptor);
	resp->usage = vd_csi_alloc(2 * sizeof(*resp->usage));
	resp->usage[resp->n_usage++] = usage(st.bytes_total, st.bytes_used, st.bytes_available,
					     CSI__V1__VOLUME_USAGE__UNIT__BYTES);
	if (!st.block)
		resp->usage[resp->n_usage++] = usage(st.inodes_total, st.inodes_used,
						     st.inodes_free,
						     CSI__V1__VOLUME_USAGE__UNIT__INODES);
	resp->volume_condition = MSG(Csi__V1__VolumeCondition,
				     csi__v1__volume_condition__descriptor);
	resp->volume_condition->abnormal = st.abnormal;
	resp->volume_condition->message = vd_csi_strdup(st.abnormal ? st.message : "");
	*ret_reply = &resp->base;
	return 0;
}

VD_CSI_RPC(node_expand, Csi__V1__NodeExpandVolumeRequest,
	   csi__v1__node_expand_volume_request__descriptor)
static int node_expand(struct vd_core *core, const Csi__V1__NodeExpandVolumeRequest *rq,
		       ProtobufCMessage **ret_reply, struct vd_err *err)
{
	json_t *view = NULL;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int code = path_arg(rq->volume_path, "volume_path", err);
	if (code)
		return code;
	int r = vd_core_node_expand(core, rq->volume_id, err);
	if (r == 0)
		r = vd_core_inspect(core, rq->volume_id, &view, err);
	if (r < 0)
		return r;
	Csi__V1__NodeExpandVolumeResponse *resp = MSG(
		Csi__V1__NodeExpandVolumeResponse, csi__v1__node_expand_volume_response__descriptor);
	resp->capacity_bytes = json_integer_value(json_object_get(view, "capacity_bytes"));
	json_decref(view);
	*ret_reply = &resp->base;
	return 0;
}

static const Csi__V1__NodeServiceCapability__RPC__Type node_caps[] = {
	CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__STAGE_UNSTAGE_VOLUME,
	CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__GET_VOLUME_STATS,
	CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
	CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_CONDITION,
	CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__SINGLE_NODE_MULTI_WRITER,
	CSI__V1__NODE_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_MOUNT_GROUP,
};

VD_CSI_RPC(node_capabilities, Csi__V1__NodeGetCapabilitiesRequest,
	   csi__v1__node_get_capabilities_request__descriptor)
static int node_capabilities(struct vd_core *core, const Csi__V1__NodeGetCapabilitiesRequest *rq,
			     ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)core, (void)rq, (void)err;
	size_t n = sizeof(node_caps) / sizeof(node_caps[0]);
	Csi__V1__NodeGetCapabilitiesResponse *resp = MSG(
		Csi__V1__NodeGetCapabilitiesResponse,
		csi__v1__node_get_capabilities_response__descriptor);
	resp->n_capabilities = n;
	resp->capabilities = vd_csi_alloc(n * sizeof(*resp->capabilities));
	for (size_t i = 0; i < n; i++) {
		Csi__V1__NodeServiceCapability *c = MSG(Csi__V1__NodeServiceCapability,
							csi__v1__node_service_capability__descriptor);
		c->type_case = CSI__V1__NODE_SERVICE_CAPABILITY__TYPE_RPC;
		c->rpc = MSG(Csi__V1__NodeServiceCapability__RPC,
			     csi__v1__node_service_capability__rpc__descriptor);
		c->rpc->type = node_caps[i];
		resp->capabilities[i] = c;
	}
	*ret_reply = &resp->base;
	return 0;
}

VD_CSI_RPC(node_info, Csi__V1__NodeGetInfoRequest, csi__v1__node_get_info_request__descriptor)
static int node_info(struct vd_core *core, const Csi__V1__NodeGetInfoRequest *rq,
		     ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)rq, (void)err;
	Csi__V1__NodeGetInfoResponse *resp = MSG(Csi__V1__NodeGetInfoResponse,
						 csi__v1__node_get_info_response__descriptor);
	resp->node_id = vd_csi_strdup(vd_core_node_id(core));
	resp->accessible_topology = vd_csi_topology(vd_core_node_id(core));
	*ret_reply = &resp->base;
	return 0;
}

const struct vd_grpc_method vd_csi_node_methods[] = {
	{ "/csi.v1.Node/NodeStageVolume", rpc_node_stage },
	{ "/csi.v1.Node/NodeUnstageVolume", rpc_node_unstage },
	{ "/csi.v1.Node/NodePublishVolume", rpc_node_publish },
	{ "/csi.v1.Node/NodeUnpublishVolume", rpc_node_unpublish },
	{ "/csi.v1.Node/NodeGetVolumeStats", rpc_node_stats },
	{ "/csi.v1.Node/NodeExpandVolume", rpc_node_expand },
	{ "/csi.v1.Node/NodeGetCapabilities", rpc_node_capabilities },
	{ "/csi.v1.Node/NodeGetInfo", rpc_node_info },
};
const size_t vd_csi_node_count = sizeof(vd_csi_node_methods) / sizeof(vd_csi_node_methods[0]);
