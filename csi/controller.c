/* controller.c — the CSI Controller service: volumes, their publication to
 * nodes, snapshots, expansion, translated onto the core. Volume ids and
 * snapshot ids are volumed names, so Docker and CSI share one catalog.
 * Stateless: the core keeps everything. */
#define _XOPEN_SOURCE 700
#include "service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "../volumed/names.h"

#define MSG(type, desc) ((type *)vd_csi_message(&(desc)))
#define K8S_PREFIX "csi.storage.k8s.io/"
#define TOKEN_PREFIX "after:"

/* ---- requests to core calls ------------------------------------------------ */

/* StorageClass parameters to volumed options: "driver" picks the driver,
 * the orchestrator's own keys are left out, the rest are driver options. */
static int params_to_opts(struct vd_csi_kv *const *kv, size_t n, const char **ret_driver,
			  json_t *opts, struct vd_err *err)
{
	*ret_driver = NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(kv[i]->key, K8S_PREFIX, strlen(K8S_PREFIX)) == 0)
			continue;
		if (strcmp(kv[i]->key, "driver") == 0)
			*ret_driver = kv[i]->value;
		else if (json_object_set_new(opts, kv[i]->key, json_string(kv[i]->value)) < 0)
			return vd_err_set(err, -EINVAL, "parameter '%.60s' is not valid UTF-8",
					  kv[i]->key);
	}
	return 0;
}

/* The size asked for: required, else the limit, else none (unlimited). */
static int capacity_size(const Csi__V1__CapacityRange *range, uint64_t *ret, struct vd_err *err)
{
	*ret = 0;
	if (!range)
		return 0;
	if (range->required_bytes < 0 || range->limit_bytes < 0 ||
	    (range->limit_bytes && range->required_bytes > range->limit_bytes)) {
		vd_err_set(err, -ERANGE, "capacity range %" PRId64 "..%" PRId64 " cannot be met",
			   range->required_bytes, range->limit_bytes);
		return VD_GRPC_OUT_OF_RANGE;
	}
	*ret = (uint64_t)(range->required_bytes ? range->required_bytes : range->limit_bytes);
	return 0;
}

/* Every capability must be one the plugin supports; the first mount's
 * fs_type, if any, chooses the file system. */
static int capabilities_check(Csi__V1__VolumeCapability *const *caps, size_t n,
			      const char **ret_fstype, int *ret_block, struct vd_err *err)
{
	enum vd_access access;
	int block = 0, any_block = 0;
	*ret_fstype = NULL;
	if (n == 0)
		return vd_csi_missing("volume_capabilities", err);
	for (size_t i = 0; i < n; i++) {
		int code = vd_csi_capability(caps[i], &access, &block, err);
		if (code)
			return code;
		any_block |= block;
		if (!block && caps[i]->mount->fs_type && *caps[i]->mount->fs_type && !*ret_fstype)
			*ret_fstype = caps[i]->mount->fs_type;
	}
	*ret_block = any_block;
	return 0;
}

/* The topology asked for must include this node (local volumes stay on it). */
static int topology_check(const Csi__V1__TopologyRequirement *req, const char *node_id,
			  struct vd_err *err)
{
	if (!req || req->n_requisite == 0)
		return 0;
	for (size_t i = 0; i < req->n_requisite; i++) {
		struct vd_csi_kv *const *seg = VD_CSI_KV(req->requisite[i]->segments);
		for (size_t j = 0; j < req->requisite[i]->n_segments; j++)
			if (strcmp(seg[j]->key, VD_CSI_TOPOLOGY_KEY) == 0 &&
			    strcmp(seg[j]->value, node_id) == 0)
				return 0;
	}
	vd_err_set(err, -ENOSPC, "the requisite topology does not include node %s, the only "
		   "node this volumed serves", node_id);
	return VD_GRPC_RESOURCE_EXHAUSTED;
}

static json_t *view_get(struct vd_core *core, const char *name, int *ret_code,
			struct vd_err *err)
{
	json_t *view = NULL;
	*ret_code = vd_core_inspect(core, name, &view, err);
	return *ret_code < 0 ? NULL : view;
}

/* Where a volume can be used: a node-local one on this node only, a
 * network one anywhere (no topology), so that its pods may move. */
static const char *volume_node(struct vd_core *core, const char *driver)
{
	return vd_core_driver_node_local(core, driver) ? vd_core_node_id(core) : NULL;
}

static Csi__V1__Volume *volume_of_view(struct vd_core *core, const json_t *view)
{
	const char *driver = json_string_value(json_object_get(view, "driver"));
	return vd_csi_volume(json_string_value(json_object_get(view, "name")), driver,
			     (uint64_t)json_integer_value(json_object_get(view, "capacity_bytes")),
			     volume_node(core, driver));
}

/* ---- CreateVolume / DeleteVolume ------------------------------------------ */

struct create_args {
	const char *driver;
	json_t *opts;
	const char *snapshot, *volume;
};

static int create_args_read(struct vd_core *core, const Csi__V1__CreateVolumeRequest *rq,
			    struct create_args *a, struct vd_err *err)
{
	const char *fstype;
	uint64_t size;
	int block;
	int code = capabilities_check(rq->volume_capabilities, rq->n_volume_capabilities, &fstype,
				      &block, err);
	if (code || (code = capacity_size(rq->capacity_range, &size, err)))
		return code;
	if ((code = params_to_opts(VD_CSI_KV(rq->parameters), rq->n_parameters, &a->driver,
				   a->opts, err)) < 0)
		return code;
	if (volume_node(core, a->driver) &&
	    (code = topology_check(rq->accessibility_requirements, vd_core_node_id(core), err)))
		return code;
	if (size) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%" PRIu64, size);
		json_object_set_new(a->opts, "size", json_string(buf));
	}
	if (fstype && !json_object_get(a->opts, "fstype"))
		json_object_set_new(a->opts, "fstype", json_string(fstype));
	if (block && !size)
		return vd_err_set(err, -EINVAL, "block access needs a capacity_range (a sized "
				  "volume)"), VD_GRPC_INVALID_ARGUMENT;
	const Csi__V1__VolumeContentSource *src = rq->volume_content_source;
	if (src && src->type_case == CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_SNAPSHOT)
		a->snapshot = src->snapshot->snapshot_id;
	else if (src && src->type_case == CSI__V1__VOLUME_CONTENT_SOURCE__TYPE_VOLUME)
		a->volume = src->volume->volume_id;
	return 0;
}

/* A create the core refused for its size is OUT_OF_RANGE; a source that
 * does not exist is NOT_FOUND. */
static int create_code(int r, const struct create_args *a)
{
	if (r == -ERANGE)
		return VD_GRPC_OUT_OF_RANGE;
	if (r == -ENOENT && (a->snapshot || a->volume))
		return VD_GRPC_NOT_FOUND;
	return r;
}

VD_CSI_RPC(create_volume, Csi__V1__CreateVolumeRequest, csi__v1__create_volume_request__descriptor)
static int create_volume(struct vd_core *core, const Csi__V1__CreateVolumeRequest *rq,
			 ProtobufCMessage **ret_reply, struct vd_err *err)
{
	struct create_args a = { .opts = json_object() };
	if (!rq->name || !*rq->name) {
		json_decref(a.opts);
		return vd_csi_missing("name", err);
	}
	int code = create_args_read(core, rq, &a, err);
	if (code == 0) {
		int r = a.snapshot || a.volume
			? vd_core_create_from(core, rq->name, a.driver, a.opts, a.snapshot,
					      a.volume, err)
			: vd_core_create(core, rq->name, a.driver, a.opts, err);
		code = create_code(r, &a);
	}
	json_decref(a.opts);
	json_t *view = code ? NULL : view_get(core, rq->name, &code, err);
	if (!view)
		return code;
	Csi__V1__CreateVolumeResponse *resp = MSG(Csi__V1__CreateVolumeResponse,
						  csi__v1__create_volume_response__descriptor);
	resp->volume = volume_of_view(core, view);
	resp->volume->content_source = rq->volume_content_source;
	json_decref(view);
	*ret_reply = &resp->base;
	return 0;
}

VD_CSI_RPC(delete_volume, Csi__V1__DeleteVolumeRequest, csi__v1__delete_volume_request__descriptor)
static int delete_volume(struct vd_core *core, const Csi__V1__DeleteVolumeRequest *rq,
			 ProtobufCMessage **ret_reply, struct vd_err *err)
{
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	int r = vd_core_remove(core, rq->volume_id, err);
	if (r == -ENOENT)
		r = 0;   /* already gone: deleted, as far as the caller is concerned */
	if (r < 0)
		return r;
	*ret_reply = vd_csi_message(&csi__v1__delete_volume_response__descriptor);
	return 0;
}

/* ---- publication ------------------------------------------------------------ */

VD_CSI_RPC(controller_publish, Csi__V1__ControllerPublishVolumeRequest,
	   csi__v1__controller_publish_volume_request__descriptor)
static int controller_publish(struct vd_core *core,
			      const Csi__V1__ControllerPublishVolumeRequest *rq,
			      ProtobufCMessage **ret_reply, struct vd_err *err)
{
	enum vd_access access;
	int block, code;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	if (!rq->node_id || !*rq->node_id)
		return vd_csi_missing("node_id", err);
	if ((code = vd_csi_capability(rq->volume_capability, &access, &block, err)))
		return code;
	json_t *view = view_get(core, rq->volume_id, &code, err);
	json_decref(view);
	if (!view)
		return code;
	if (rq->readonly && access == VD_ACCESS_SINGLE)
		access = VD_ACCESS_READONLY;
	int r = vd_core_publish(core, rq->volume_id, rq->node_id, access, err);
	if (r < 0)
		return r == -EBUSY ? VD_GRPC_FAILED_PRECONDITION : r;
	*ret_reply = vd_csi_message(&csi__v1__controller_publish_volume_response__descriptor);
	return 0;
}

VD_CSI_RPC(controller_unpublish, Csi__V1__ControllerUnpublishVolumeRequest,
	   csi__v1__controller_unpublish_volume_request__descriptor)
static int controller_unpublish(struct vd_core *core,
				const Csi__V1__ControllerUnpublishVolumeRequest *rq,
				ProtobufCMessage **ret_reply, struct vd_err *err)
{
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	/* No node: every node. A volume or node that does not exist is, as
	 * the spec allows, safely unpublished already. */
	const char *node = rq->node_id && *rq->node_id ? rq->node_id : vd_core_node_id(core);
	int r = vd_core_node_known(core, node) ? vd_core_unpublish(core, rq->volume_id, node, err)
					       : 0;
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		return r == -EBUSY ? VD_GRPC_FAILED_PRECONDITION : r;
	*ret_reply = vd_csi_message(&csi__v1__controller_unpublish_volume_response__descriptor);
	return 0;
}

/* ---- validation, listing, capacity -------------------------------------------- */

/* Whether a volume can be used with cap: block needs a sized volume, and
 * a mount's fs_type must be the volume's. NULL when it can. */
static const char *capability_mismatch(const json_t *view, const Csi__V1__VolumeCapability *cap)
{
	const json_t *status = json_object_get(view, "status");
	const char *fstype = json_string_value(json_object_get(status, "fstype"));
	if (cap->access_type_case == CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK)
		return json_integer_value(json_object_get(view, "capacity_bytes")) > 0
			? NULL : "block access needs a sized volume";
	if (cap->mount->fs_type && *cap->mount->fs_type &&
	    (!fstype || strcmp(fstype, cap->mount->fs_type) != 0))
		return "the volume has another file system";
	return NULL;
}

VD_CSI_RPC(validate_capabilities, Csi__V1__ValidateVolumeCapabilitiesRequest,
	   csi__v1__validate_volume_capabilities_request__descriptor)
static int validate_capabilities(struct vd_core *core,
				 const Csi__V1__ValidateVolumeCapabilitiesRequest *rq,
				 ProtobufCMessage **ret_reply, struct vd_err *err)
{
	const char *fstype, *why = NULL;
	int block, code;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	if ((code = capabilities_check(rq->volume_capabilities, rq->n_volume_capabilities, &fstype,
				       &block, err)))
		return code;
	json_t *view = view_get(core, rq->volume_id, &code, err);
	if (!view)
		return code;
	for (size_t i = 0; i < rq->n_volume_capabilities && !why; i++)
		why = capability_mismatch(view, rq->volume_capabilities[i]);
	json_decref(view);
	Csi__V1__ValidateVolumeCapabilitiesResponse *resp = MSG(
		Csi__V1__ValidateVolumeCapabilitiesResponse,
		csi__v1__validate_volume_capabilities_response__descriptor);
	if (why) {
		resp->message = (char *)why;
	} else {
		resp->confirmed = MSG(Csi__V1__ValidateVolumeCapabilitiesResponse__Confirmed,
				      csi__v1__validate_volume_capabilities_response__confirmed__descriptor);
		resp->confirmed->n_volume_capabilities = rq->n_volume_capabilities;
		resp->confirmed->volume_capabilities = rq->volume_capabilities;
	}
	*ret_reply = &resp->base;
	return 0;
}

/* Page tokens are "after:NAME": the next page starts after that name, so
 * volumes created or deleted meanwhile never shift a page. */
static int token_read(const char *token, const char **ret_after, struct vd_err *err)
{
	*ret_after = NULL;
	if (!token || !*token)
		return 0;
	if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 ||
	    vd_name_check(token + strlen(TOKEN_PREFIX), NULL) < 0) {
		vd_err_set(err, -EINVAL, "starting_token '%.60s' was not issued by this plugin", token);
		return VD_GRPC_ABORTED;
	}
	*ret_after = token + strlen(TOKEN_PREFIX);
	return 0;
}

static char *token_make(const char *name)
{
	size_t len = strlen(TOKEN_PREFIX) + strlen(name) + 1;
	char *t = vd_csi_alloc(len);
	snprintf(t, len, TOKEN_PREFIX "%s", name);
	return t;
}

static char **attachment_nodes(const json_t *attachments, size_t *ret_n)
{
	const char *node;
	json_t *v;
	size_t i = 0;
	char **nodes = vd_csi_alloc((json_object_size(attachments) + 1) * sizeof(*nodes));
	json_object_foreach((json_t *)attachments, node, v)
		nodes[i++] = vd_csi_strdup(node);
	*ret_n = i;
	return nodes;
}

struct list_page {
	struct vd_core *core;
	const char *after;
	size_t cap, n;        /* entries room, entries used */
	Csi__V1__ListVolumesResponse *resp;
};

static int list_visit(const struct vd_volume_brief *v, void *userdata)
{
	struct list_page *p = userdata;
	if (p->after && strcmp(v->name, p->after) <= 0)
		return 0;
	if (p->n == p->cap) {
		p->resp->next_token = token_make(p->resp->entries[p->n - 1]->volume->volume_id);
		return 1;
	}
	Csi__V1__ListVolumesResponse__Entry *e = MSG(Csi__V1__ListVolumesResponse__Entry,
						     csi__v1__list_volumes_response__entry__descriptor);
	e->volume = vd_csi_volume(v->name, v->driver, v->capacity_bytes,
				  volume_node(p->core, v->driver));
	e->status = MSG(Csi__V1__ListVolumesResponse__VolumeStatus,
			csi__v1__list_volumes_response__volume_status__descriptor);
	e->status->published_node_ids = attachment_nodes(v->attachments,
							 &e->status->n_published_node_ids);
	p->resp->entries[p->n++] = e;
	return 0;
}

VD_CSI_RPC(list_volumes, Csi__V1__ListVolumesRequest, csi__v1__list_volumes_request__descriptor)
static int list_volumes(struct vd_core *core, const Csi__V1__ListVolumesRequest *rq,
			ProtobufCMessage **ret_reply, struct vd_err *err)
{
	struct list_page p = { .core = core };
	json_t *status = NULL;
	if (rq->max_entries < 0)
		return vd_err_set(err, -EINVAL, "max_entries must not be negative"),
		       VD_GRPC_INVALID_ARGUMENT;
	int code = token_read(rq->starting_token, &p.after, err);
	if (code || (code = vd_core_status(core, &status, err)) < 0)
		return code;
	size_t total = (size_t)json_integer_value(json_object_get(status, "volumes"));
	json_decref(status);
	/* Room for max_entries, or for every volume (and one created while we
	 * walk; more than that and the caller gets a next_token). */
	size_t max = (size_t)rq->max_entries;
	p.cap = max && max <= total ? max : total + 1;
	p.resp = MSG(Csi__V1__ListVolumesResponse, csi__v1__list_volumes_response__descriptor);
	p.resp->entries = vd_csi_alloc(p.cap * sizeof(*p.resp->entries));
	code = vd_core_foreach(core, list_visit, &p, err);
	if (code < 0)
		return code;
	p.resp->n_entries = p.n;
	*ret_reply = &p.resp->base;
	return 0;
}

VD_CSI_RPC(get_capacity, Csi__V1__GetCapacityRequest, csi__v1__get_capacity_request__descriptor)
static int get_capacity(struct vd_core *core, const Csi__V1__GetCapacityRequest *rq,
			ProtobufCMessage **ret_reply, struct vd_err *err)
{
	const char *driver;
	uint64_t bytes = 0;
	json_t *opts = json_object();
	int r = params_to_opts(VD_CSI_KV(rq->parameters), rq->n_parameters, &driver, opts, err);
	const Csi__V1__Topology *t = rq->accessible_topology;
	int elsewhere = 0;
	for (size_t i = 0; t && i < t->n_segments; i++)
		if (strcmp(t->segments[i]->key, VD_CSI_TOPOLOGY_KEY) == 0 &&
		    strcmp(t->segments[i]->value, vd_core_node_id(core)) != 0)
			elsewhere = 1;
	if (r == 0 && !elsewhere)
		r = vd_core_capacity(core, driver, json_object_size(opts) ? opts : NULL, &bytes, err);
	json_decref(opts);
	if (r < 0)
		return r;
	Csi__V1__GetCapacityResponse *resp = MSG(Csi__V1__GetCapacityResponse,
						 csi__v1__get_capacity_response__descriptor);
	resp->available_capacity = (int64_t)bytes;
	*ret_reply = &resp->base;
	return 0;
}

static const Csi__V1__ControllerServiceCapability__RPC__Type controller_caps[] = {
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CREATE_DELETE_VOLUME,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__PUBLISH_UNPUBLISH_VOLUME,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_VOLUMES,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__GET_CAPACITY,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CREATE_DELETE_SNAPSHOT,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_SNAPSHOTS,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__CLONE_VOLUME,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__PUBLISH_READONLY,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__LIST_VOLUMES_PUBLISHED_NODES,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__VOLUME_CONDITION,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__GET_VOLUME,
	CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__SINGLE_NODE_MULTI_WRITER,
};

/* Capabilities whose calls come from a single cluster-wide sidecar, which
 * a per-node controller (it knows only its own node's volumes) leaves out. */
static int cluster_only(Csi__V1__ControllerServiceCapability__RPC__Type t)
{
	return t == CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__PUBLISH_UNPUBLISH_VOLUME ||
	       t == CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__EXPAND_VOLUME ||
	       t == CSI__V1__CONTROLLER_SERVICE_CAPABILITY__RPC__TYPE__PUBLISH_READONLY;
}

static int capabilities_reply(int node_scope, ProtobufCMessage **ret_reply)
{
	size_t n = sizeof(controller_caps) / sizeof(controller_caps[0]);
	Csi__V1__ControllerGetCapabilitiesResponse *resp = MSG(
		Csi__V1__ControllerGetCapabilitiesResponse,
		csi__v1__controller_get_capabilities_response__descriptor);
	resp->capabilities = vd_csi_alloc(n * sizeof(*resp->capabilities));
	for (size_t i = 0; i < n; i++) {
		if (node_scope && cluster_only(controller_caps[i]))
			continue;
		Csi__V1__ControllerServiceCapability *c = MSG(
			Csi__V1__ControllerServiceCapability,
			csi__v1__controller_service_capability__descriptor);
		c->type_case = CSI__V1__CONTROLLER_SERVICE_CAPABILITY__TYPE_RPC;
		c->rpc = MSG(Csi__V1__ControllerServiceCapability__RPC,
			     csi__v1__controller_service_capability__rpc__descriptor);
		c->rpc->type = controller_caps[i];
		resp->capabilities[resp->n_capabilities++] = c;
	}
	*ret_reply = &resp->base;
	return 0;
}

VD_CSI_RPC(controller_capabilities, Csi__V1__ControllerGetCapabilitiesRequest,
	   csi__v1__controller_get_capabilities_request__descriptor)
static int controller_capabilities(struct vd_core *core,
				   const Csi__V1__ControllerGetCapabilitiesRequest *rq,
				   ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)core, (void)rq, (void)err;
	return capabilities_reply(0, ret_reply);
}

VD_CSI_RPC(controller_capabilities_node, Csi__V1__ControllerGetCapabilitiesRequest,
	   csi__v1__controller_get_capabilities_request__descriptor)
static int controller_capabilities_node(struct vd_core *core,
					const Csi__V1__ControllerGetCapabilitiesRequest *rq,
					ProtobufCMessage **ret_reply, struct vd_err *err)
{
	(void)core, (void)rq, (void)err;
	return capabilities_reply(1, ret_reply);
}

/* ControllerGetCapabilities of a per-node controller. */
const struct vd_grpc_method vd_csi_controller_node_scope = {
	"/csi.v1.Controller/ControllerGetCapabilities", rpc_controller_capabilities_node
};

/* ---- snapshots ----------------------------------------------------------------- */

static Google__Protobuf__Timestamp *timestamp_of(const char *rfc3339)
{
	struct tm tm = { 0 };
	Google__Protobuf__Timestamp *t = MSG(Google__Protobuf__Timestamp,
					     google__protobuf__timestamp__descriptor);
	if (rfc3339 && strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm))
		t->seconds = (int64_t)timegm(&tm);
	return t;
}

static Csi__V1__Snapshot *snapshot_of(const json_t *doc)
{
	Csi__V1__Snapshot *s = MSG(Csi__V1__Snapshot, csi__v1__snapshot__descriptor);
	s->snapshot_id = vd_csi_strdup(json_string_value(json_object_get(doc, "name")));
	s->source_volume_id = vd_csi_strdup(json_string_value(json_object_get(doc,
									      "source_volume")));
	s->size_bytes = json_integer_value(json_object_get(doc, "size_bytes"));
	s->creation_time = timestamp_of(json_string_value(json_object_get(doc, "created_at")));
	s->ready_to_use = 1;
	return s;
}

VD_CSI_RPC(create_snapshot, Csi__V1__CreateSnapshotRequest,
	   csi__v1__create_snapshot_request__descriptor)
static int create_snapshot(struct vd_core *core, const Csi__V1__CreateSnapshotRequest *rq,
			   ProtobufCMessage **ret_reply, struct vd_err *err)
{
	json_t *doc = NULL;
	if (!rq->name || !*rq->name)
		return vd_csi_missing("name", err);
	if (!rq->source_volume_id || !*rq->source_volume_id)
		return vd_csi_missing("source_volume_id", err);
	int r = vd_core_snapshot_create(core, rq->name, rq->source_volume_id, &doc, err);
	if (r < 0)
		return r;
	Csi__V1__CreateSnapshotResponse *resp = MSG(Csi__V1__CreateSnapshotResponse,
						    csi__v1__create_snapshot_response__descriptor);
	resp->snapshot = snapshot_of(doc);
	json_decref(doc);
	*ret_reply = &resp->base;
	return 0;
}

VD_CSI_RPC(delete_snapshot, Csi__V1__DeleteSnapshotRequest,
	   csi__v1__delete_snapshot_request__descriptor)
static int delete_snapshot(struct vd_core *core, const Csi__V1__DeleteSnapshotRequest *rq,
			   ProtobufCMessage **ret_reply, struct vd_err *err)
{
	if (!rq->snapshot_id || !*rq->snapshot_id)
		return vd_csi_missing("snapshot_id", err);
	int r = vd_core_snapshot_delete(core, rq->snapshot_id, err);
	if (r == -EINVAL)
		r = 0;   /* an id we never issued names no snapshot: nothing to delete */
	if (r < 0)
		return r;
	*ret_reply = vd_csi_message(&csi__v1__delete_snapshot_response__descriptor);
	return 0;
}

static int snapshot_wanted(const json_t *doc, const Csi__V1__ListSnapshotsRequest *rq,
			   const char *after)
{
	const char *name = json_string_value(json_object_get(doc, "name"));
	const char *source = json_string_value(json_object_get(doc, "source_volume"));
	if (after && strcmp(name, after) <= 0)
		return 0;
	if (rq->snapshot_id && *rq->snapshot_id && strcmp(name, rq->snapshot_id) != 0)
		return 0;
	return !(rq->source_volume_id && *rq->source_volume_id &&
		 strcmp(source, rq->source_volume_id) != 0);
}

VD_CSI_RPC(list_snapshots, Csi__V1__ListSnapshotsRequest,
	   csi__v1__list_snapshots_request__descriptor)
static int list_snapshots(struct vd_core *core, const Csi__V1__ListSnapshotsRequest *rq,
			  ProtobufCMessage **ret_reply, struct vd_err *err)
{
	const char *after;
	json_t *docs, *doc;
	size_t i, n = 0;
	if (rq->max_entries < 0)
		return vd_err_set(err, -EINVAL, "max_entries must not be negative"),
		       VD_GRPC_INVALID_ARGUMENT;
	int code = token_read(rq->starting_token, &after, err);
	if (code || (code = vd_core_snapshot_list(core, &docs, err)) < 0)
		return code;
	Csi__V1__ListSnapshotsResponse *resp = MSG(Csi__V1__ListSnapshotsResponse,
						   csi__v1__list_snapshots_response__descriptor);
	resp->entries = vd_csi_alloc((json_array_size(docs) + 1) * sizeof(*resp->entries));
	json_array_foreach(docs, i, doc) {
		if (!snapshot_wanted(doc, rq, after))
			continue;
		if (rq->max_entries && n == (size_t)rq->max_entries) {
			resp->next_token = token_make(resp->entries[n - 1]->snapshot->snapshot_id);
			break;
		}
		resp->entries[n] = MSG(Csi__V1__ListSnapshotsResponse__Entry,
				       csi__v1__list_snapshots_response__entry__descriptor);
		resp->entries[n++]->snapshot = snapshot_of(doc);
	}
	json_decref(docs);
	resp->n_entries = n;
	*ret_reply = &resp->base;
	return 0;
}

/* ---- expansion and one volume ------------------------------------------------- */

VD_CSI_RPC(controller_expand, Csi__V1__ControllerExpandVolumeRequest,
	   csi__v1__controller_expand_volume_request__descriptor)
static int controller_expand(struct vd_core *core, const Csi__V1__ControllerExpandVolumeRequest *rq,
			     ProtobufCMessage **ret_reply, struct vd_err *err)
{
	uint64_t size, after = 0;
	int node_pending = 0;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	if (!rq->capacity_range)
		return vd_csi_missing("capacity_range", err);
	int code = capacity_size(rq->capacity_range, &size, err);
	if (code)
		return code;
	int r = vd_core_expand(core, rq->volume_id, size, &after, &node_pending, err);
	if (r < 0)
		return r == -ERANGE ? VD_GRPC_OUT_OF_RANGE : r;
	Csi__V1__ControllerExpandVolumeResponse *resp = MSG(
		Csi__V1__ControllerExpandVolumeResponse,
		csi__v1__controller_expand_volume_response__descriptor);
	resp->capacity_bytes = (int64_t)after;
	resp->node_expansion_required = node_pending;
	*ret_reply = &resp->base;
	return 0;
}

VD_CSI_RPC(controller_get_volume, Csi__V1__ControllerGetVolumeRequest,
	   csi__v1__controller_get_volume_request__descriptor)
static int controller_get_volume(struct vd_core *core, const Csi__V1__ControllerGetVolumeRequest *rq,
				 ProtobufCMessage **ret_reply, struct vd_err *err)
{
	int code;
	if (!rq->volume_id || !*rq->volume_id)
		return vd_csi_missing("volume_id", err);
	json_t *view = view_get(core, rq->volume_id, &code, err);
	if (!view)
		return code;
	Csi__V1__ControllerGetVolumeResponse *resp = MSG(
		Csi__V1__ControllerGetVolumeResponse,
		csi__v1__controller_get_volume_response__descriptor);
	resp->volume = volume_of_view(core, view);
	resp->status = MSG(Csi__V1__ControllerGetVolumeResponse__VolumeStatus,
			   csi__v1__controller_get_volume_response__volume_status__descriptor);
	resp->status->published_node_ids = attachment_nodes(
		json_object_get(json_object_get(view, "status"), "attachments"),
		&resp->status->n_published_node_ids);
	resp->status->volume_condition = MSG(Csi__V1__VolumeCondition,
					     csi__v1__volume_condition__descriptor);
	resp->status->volume_condition->message = "";
	json_decref(view);
	*ret_reply = &resp->base;
	return 0;
}

const struct vd_grpc_method vd_csi_controller_methods[] = {
	{ "/csi.v1.Controller/CreateVolume", rpc_create_volume },
	{ "/csi.v1.Controller/DeleteVolume", rpc_delete_volume },
	{ "/csi.v1.Controller/ControllerPublishVolume", rpc_controller_publish },
	{ "/csi.v1.Controller/ControllerUnpublishVolume", rpc_controller_unpublish },
	{ "/csi.v1.Controller/ValidateVolumeCapabilities", rpc_validate_capabilities },
	{ "/csi.v1.Controller/ListVolumes", rpc_list_volumes },
	{ "/csi.v1.Controller/GetCapacity", rpc_get_capacity },
	{ "/csi.v1.Controller/ControllerGetCapabilities", rpc_controller_capabilities },
	{ "/csi.v1.Controller/CreateSnapshot", rpc_create_snapshot },
	{ "/csi.v1.Controller/DeleteSnapshot", rpc_delete_snapshot },
	{ "/csi.v1.Controller/ListSnapshots", rpc_list_snapshots },
	{ "/csi.v1.Controller/ControllerExpandVolume", rpc_controller_expand },
	{ "/csi.v1.Controller/ControllerGetVolume", rpc_controller_get_volume },
};
const size_t vd_csi_controller_count = sizeof(vd_csi_controller_methods) /
				       sizeof(vd_csi_controller_methods[0]);
