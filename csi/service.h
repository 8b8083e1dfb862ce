/* service.h — what the CSI services share: the method table, request
 * decoding, reply encoding, and the translation of capabilities and
 * topology between CSI messages and the core. No storage logic here.
 *
 * Threads: every function is thread-safe; handlers run on the gRPC
 * server's worker threads with the struct vd_core * as userdata. */
#ifndef VD_CSI_SERVICE_H
#define VD_CSI_SERVICE_H

#include <protobuf-c/protobuf-c.h>

#include "csi/csi.pb-c.h"
#include "../volumed/core.h"
#include "grpc.h"

#define VD_CSI_PLUGIN_NAME "volumed.csi.io"
#define VD_CSI_TOPOLOGY_KEY "topology.volumed.csi.io/node"

/* The methods of the three services, for vd_grpc_listen_unix. */
extern const struct vd_grpc_method vd_csi_identity_methods[];
extern const size_t vd_csi_identity_count;
extern const struct vd_grpc_method vd_csi_controller_methods[];
extern const size_t vd_csi_controller_count;
extern const struct vd_grpc_method vd_csi_node_methods[];
extern const size_t vd_csi_node_count;

/* Where controller calls come from. "cluster": every controller call about a
 * volume reaches this volumed. "node": this volumed is one of many per-node
 * controllers, each knowing only its node's volumes (a Kubernetes
 * DaemonSet with per-node sidecars), so it does not advertise the calls a
 * single cluster-wide sidecar would send (attach and controller expansion). */
enum vd_csi_scope { VD_CSI_SCOPE_CLUSTER = 0, VD_CSI_SCOPE_NODE };
#define VD_CSI_SCOPES "cluster, node"
int vd_csi_scope_parse(const char *s, enum vd_csi_scope *ret);

extern const struct vd_grpc_method vd_csi_controller_node_scope;

/* Every method of every service, in one malloc'd array. */
struct vd_grpc_method *vd_csi_methods(enum vd_csi_scope scope, size_t *ret_count);

/* Defines the gRPC handler rpc_NAME around
 *   static int NAME(struct vd_core *core, const REQ *rq, ProtobufCMessage **ret_reply,
 *                   struct vd_err *err)
 * which fills a reply message (allocated with vd_csi_alloc, freed with
 * vd_csi_free_reply after packing) or returns a gRPC code / negative errno. */
#define VD_CSI_RPC(NAME, REQ, DESC)                                                        \
	static int NAME(struct vd_core *core, const REQ *rq, ProtobufCMessage **ret_reply,  \
			struct vd_err *err);                                                \
	static int rpc_##NAME(void *core, const uint8_t *req, size_t len, uint8_t **ret,    \
			      size_t *ret_len, struct vd_err *err)                          \
	{                                                                                   \
		return vd_csi_call(core, &(DESC), (vd_csi_fn)NAME, #NAME, req, len, ret,    \
				   ret_len, err);                                           \
	}

typedef int (*vd_csi_fn)(struct vd_core *core, const void *rq, ProtobufCMessage **ret_reply,
			 struct vd_err *err);

/* Decodes the request, runs fn, encodes its reply, frees both, logs. */
int vd_csi_call(struct vd_core *core, const ProtobufCMessageDescriptor *desc, vd_csi_fn fn,
		const char *op, const uint8_t *req, size_t len, uint8_t **ret, size_t *ret_len,
		struct vd_err *err);

/* Reply messages are built from allocations freed together after packing:
 * vd_csi_alloc hands out zeroed memory tied to the reply being built. */
void *vd_csi_alloc(size_t size);
char *vd_csi_strdup(const char *s);
/* A new message of descriptor's type, initialised. */
ProtobufCMessage *vd_csi_message(const ProtobufCMessageDescriptor *desc);

/* INVALID_ARGUMENT naming a missing field. */
int vd_csi_missing(const char *field, struct vd_err *err);

/* Checks a capability: an access mode this volume kind allows, mount or
 * block. Fills access and block. INVALID_ARGUMENT naming what is wrong. */
int vd_csi_capability(const Csi__V1__VolumeCapability *cap, enum vd_access *ret_access,
		      int *ret_block, struct vd_err *err);

/* {VD_CSI_TOPOLOGY_KEY: node_id}, allocated for the reply. */
Csi__V1__Topology *vd_csi_topology(const char *node_id);

/* The Volume message (allocated for the reply): its topology is node_id, or
 * none (usable on every node) when node_id is NULL. */
Csi__V1__Volume *vd_csi_volume(const char *name, const char *driver, uint64_t capacity,
			       const char *node_id);

/* A map entry of any CSI message: every generated map entry has this shape. */
struct vd_csi_kv {
	ProtobufCMessage base;
	char *key;
	char *value;
};
#define VD_CSI_KV(entries) ((struct vd_csi_kv *const *)(const void *)(entries))

#endif
