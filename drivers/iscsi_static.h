/* iscsi_static.h — the `static` provisioner of the iscsi driver: a pool of
 * LUNs that already exist on any target, listed in the configuration
 * (portal + target IQN + LUNs) or found by discovery (SendTargets, REPORT
 * LUNS, INQUIRY, READ CAPACITY). A volume claims the smallest free disk
 * LUN at least as large as its size.
 *
 * Claims are records in one crash-safe store under the state directory
 * shared by every static backend of the node (name -> backend, target,
 * LUN), so two backends that see the same LUN never both claim it.
 * Discovery leaves out the targets of the node's tgt backends. A new claim's first MiB is zeroed, so an old
 * file system on a reused LUN is never mounted as the new volume's; with
 * wipe, removal zeroes the whole LUN before it returns to the pool.
 *
 * Threads: calls are serialised by the pool's own mutex. */
#ifndef VD_ISCSI_STATIC_H
#define VD_ISCSI_STATIC_H

#include <jansson.h>
#include <stdint.h>

#include "../volumed/err.h"
#include "iscsi_client.h"
#include "iscsi_meta.h"

struct vd_static_pool;
struct vd_static_claims;

/* The claims of every static backend, in dir. */
int vd_static_claims_open(const char *dir, struct vd_static_claims **ret, struct vd_err *err);
void vd_static_claims_close(struct vd_static_claims *claims);

/* peer is copied (its strings must outlive the pool), claims and set are
 * borrowed (set: to leave the tgt backends' targets out of discovery).
 * No network here. */
int vd_static_pool_open(const struct vd_iscsi_backend *backend,
			const struct vd_iscsi_settings *set, struct vd_static_claims *claims,
			const struct vd_iscsi_peer *peer, struct vd_static_pool **ret,
			struct vd_err *err);
void vd_static_pool_close(struct vd_static_pool *pool);

/* Claims a LUN for name. Idempotent (same spec: the same claim). No free
 * LUN large enough: -ENOSPC naming the largest free one. */
int vd_static_pool_create(struct vd_static_pool *pool, const char *name, const json_t *spec,
			  json_t **ret_location, struct vd_err *err);
/* Returns the LUN to the pool (wiped first when the spec says wipe). */
int vd_static_pool_remove(struct vd_static_pool *pool, const char *name, struct vd_err *err);
/* The bytes of the free LUNs. */
int vd_static_pool_capacity(struct vd_static_pool *pool, uint64_t *ret_bytes,
			    struct vd_err *err);
int vd_static_pool_foreach(struct vd_static_pool *pool,
			   int (*fn)(const char *name, const json_t *spec, const json_t *location,
				     void *userdata),
			   void *userdata, struct vd_err *err);

#endif
