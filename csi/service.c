/* service.c — the CSI services' shared machinery (see service.h).
 *
 * Threads: reply allocations are kept on a thread-local list, so each
 * worker thread builds and frees its own replies without locks. */
#include "service.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../volumed/log.h"

/* ---- reply allocations ---------------------------------------------------- */

struct reply_alloc {
	struct reply_alloc *next;
	max_align_t data[];
};

static _Thread_local struct reply_alloc *reply_allocs;

void *vd_csi_alloc(size_t size)
{
	struct reply_alloc *a = calloc(1, sizeof(*a) + size);
	if (!a)
		abort();   /* replies are small; out of memory here is fatal */
	a->next = reply_allocs;
	reply_allocs = a;
	return a->data;
}

char *vd_csi_strdup(const char *s)
{
	size_t len = strlen(s ? s : "");
	char *copy = vd_csi_alloc(len + 1);
	memcpy(copy, s ? s : "", len);
	return copy;
}

ProtobufCMessage *vd_csi_message(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = vd_csi_alloc(desc->sizeof_message);
	desc->message_init(m);
	return m;
}

static void reply_allocs_free(void)
{
	while (reply_allocs) {
		struct reply_alloc *a = reply_allocs;
		reply_allocs = a->next;
		free(a);
	}
}

/* ---- calls ----------------------------------------------------------------- */

int vd_csi_missing(const char *field, struct vd_err *err)
{
	vd_err_set(err, -EINVAL, "%s is required", field);
	return VD_GRPC_INVALID_ARGUMENT;
}

static int pack_reply(const ProtobufCMessage *reply, uint8_t **ret, size_t *ret_len,
		      struct vd_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(reply);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return vd_err_set(err, -ENOMEM, "out of memory packing the reply");
	protobuf_c_message_pack(reply, buf);
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* The volume or snapshot an RPC is about, for the log. */
static const char *request_subject(const ProtobufCMessage *rq)
{
	static const char *const fields[] = { "volume_id", "name", "snapshot_id",
					      "source_volume_id" };
	for (size_t i = 0; rq && i < sizeof(fields) / sizeof(fields[0]); i++) {
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field_by_name(rq->descriptor, fields[i]);
		if (f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
			const char *v = *(char *const *)((const char *)rq + f->offset);
			if (v && *v)
				return v;
		}
	}
	return NULL;
}

int vd_csi_call(struct vd_core *core, const ProtobufCMessageDescriptor *desc, vd_csi_fn fn,
		const char *op, const uint8_t *req, size_t len, uint8_t **ret, size_t *ret_len,
		struct vd_err *err)
{
	double start = vd_now_ms();
	ProtobufCMessage *rq = protobuf_c_message_unpack(desc, NULL, len, req);
	ProtobufCMessage *reply = NULL;
	int code;
	if (!rq) {
		vd_err_set(err, -EINVAL, "the request is not a valid %s message", desc->name);
		code = VD_GRPC_INVALID_ARGUMENT;
	} else {
		code = fn(core, rq, &reply, err);
		if (code == 0 && reply)
			code = pack_reply(reply, ret, ret_len, err);
	}
	vd_log_op("csi", op, request_subject(rq), vd_now_ms() - start,
		  code < 0 ? code : code > 0 ? -EPROTO : 0, vd_err_msg(err));
	reply_allocs_free();
	if (rq)
		protobuf_c_message_free_unpacked(rq, NULL);
	return code;
}

int vd_csi_scope_parse(const char *s, enum vd_csi_scope *ret)
{
	if (strcmp(s, "cluster") == 0)
		*ret = VD_CSI_SCOPE_CLUSTER;
	else if (strcmp(s, "node") == 0)
		*ret = VD_CSI_SCOPE_NODE;
	else
		return -EINVAL;
	return 0;
}

struct vd_grpc_method *vd_csi_methods(enum vd_csi_scope scope, size_t *ret_count)
{
	size_t n = vd_csi_identity_count + vd_csi_controller_count + vd_csi_node_count;
	struct vd_grpc_method *all = calloc(n, sizeof(*all));
	if (!all)
		return NULL;
	memcpy(all, vd_csi_identity_methods, vd_csi_identity_count * sizeof(*all));
	memcpy(all + vd_csi_identity_count, vd_csi_controller_methods,
	       vd_csi_controller_count * sizeof(*all));
	memcpy(all + vd_csi_identity_count + vd_csi_controller_count, vd_csi_node_methods,
	       vd_csi_node_count * sizeof(*all));
	for (size_t i = 0; scope == VD_CSI_SCOPE_NODE && i < n; i++)
		if (strcmp(all[i].path, vd_csi_controller_node_scope.path) == 0)
			all[i] = vd_csi_controller_node_scope;
	*ret_count = n;
	return all;
}

/* ---- capabilities and topology --------------------------------------------- */

int vd_csi_capability(const Csi__V1__VolumeCapability *cap, enum vd_access *ret_access,
		      int *ret_block, struct vd_err *err)
{
	if (!cap)
		return vd_csi_missing("volume_capability", err);
	if (!cap->access_mode)
		return vd_csi_missing("volume_capability.access_mode", err);
	switch (cap->access_mode->mode) {
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_WRITER:
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_SINGLE_WRITER:
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_MULTI_WRITER:
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__MULTI_NODE_SINGLE_WRITER:
		*ret_access = VD_ACCESS_SINGLE;
		break;
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__SINGLE_NODE_READER_ONLY:
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__MULTI_NODE_READER_ONLY:
		*ret_access = VD_ACCESS_READONLY;
		break;
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_MODE__MODE__MULTI_NODE_MULTI_WRITER:
		*ret_access = VD_ACCESS_MULTI;
		break;
	default:
		vd_err_set(err, -EINVAL, "access mode %d is not supported; supported: the "
			   "SINGLE_NODE_* and MULTI_NODE_* modes", (int)cap->access_mode->mode);
		return VD_GRPC_INVALID_ARGUMENT;
	}
	switch (cap->access_type_case) {
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_BLOCK:
		*ret_block = 1;
		return 0;
	case CSI__V1__VOLUME_CAPABILITY__ACCESS_TYPE_MOUNT:
		*ret_block = 0;
		return 0;
	default:
		vd_err_set(err, -EINVAL, "volume_capability needs an access type: mount or block");
		return VD_GRPC_INVALID_ARGUMENT;
	}
}

Csi__V1__Topology *vd_csi_topology(const char *node_id)
{
	Csi__V1__Topology *t = (Csi__V1__Topology *)vd_csi_message(&csi__v1__topology__descriptor);
	Csi__V1__Topology__SegmentsEntry *e = (Csi__V1__Topology__SegmentsEntry *)vd_csi_message(
		&csi__v1__topology__segments_entry__descriptor);
	e->key = VD_CSI_TOPOLOGY_KEY;
	e->value = vd_csi_strdup(node_id);
	t->n_segments = 1;
	t->segments = vd_csi_alloc(sizeof(*t->segments));
	t->segments[0] = e;
	return t;
}

Csi__V1__Volume *vd_csi_volume(const char *name, const char *driver, uint64_t capacity,
			       const char *node_id)
{
	Csi__V1__Volume *v = (Csi__V1__Volume *)vd_csi_message(&csi__v1__volume__descriptor);
	v->volume_id = vd_csi_strdup(name);
	v->capacity_bytes = (int64_t)capacity;
	Csi__V1__Volume__VolumeContextEntry *e = (Csi__V1__Volume__VolumeContextEntry *)
		vd_csi_message(&csi__v1__volume__volume_context_entry__descriptor);
	e->key = "driver";
	e->value = vd_csi_strdup(driver);
	v->n_volume_context = 1;
	v->volume_context = vd_csi_alloc(sizeof(*v->volume_context));
	v->volume_context[0] = e;
	if (!node_id)
		return v;   /* accessible from every node */
	v->n_accessible_topology = 1;
	v->accessible_topology = vd_csi_alloc(sizeof(*v->accessible_topology));
	v->accessible_topology[0] = vd_csi_topology(node_id);
	return v;
}
