/* iscsi_tgt.h — the `tgt` provisioner of the iscsi driver: volumes as LUNs
 * of one target of a tgt daemon (tgtd) running beside the controller,
 * each backed by a sparse file in the pool directory.
 *
 * The pool directory is the truth: records/ (a crash-safe store, one
 * record per volume: name, spec, LUN) and lun-<N>.img. tgtd keeps its
 * configuration in memory only, so sync rebuilds it from the records
 * (target, its 1 MiB segment and burst lengths, LUNs, CHAP account, ACL)
 * whenever tgtd is new: at start and after every restart of tgtd, which
 * changed() notices from its control socket without running anything.
 *
 * tgtadm runs with an argv array, never a shell. Threads: calls are
 * serialised by the pool's own mutex. */
#ifndef VD_ISCSI_TGT_H
#define VD_ISCSI_TGT_H

#include <jansson.h>
#include <stdint.h>

#include "../volumed/err.h"
#include "iscsi_meta.h"

struct vd_tgt_pool;

/* Opens (creating) the pool directory; does not contact tgtd. */
int vd_tgt_pool_open(const struct vd_iscsi_backend *backend, const char *pool_dir,
		     struct vd_tgt_pool **ret, struct vd_err *err);
void vd_tgt_pool_close(struct vd_tgt_pool *pool);

/* 1 when tgtd's control socket is not the one the last successful sync
 * saw (tgtd restarted, or never synced), else 0. One stat(2). */
int vd_tgt_pool_changed(struct vd_tgt_pool *pool);

/* Makes tgtd's target match the records; finishes interrupted creates
 * and removals. Idempotent. */
int vd_tgt_pool_sync(struct vd_tgt_pool *pool, struct vd_err *err);

/* Creates volume name (spec as parse_options made it): record, sparse
 * image, LUN. Idempotent: the same name and spec again is 0; another
 * spec is -EEXIST. ret_location is the driver's data for the volume. */
int vd_tgt_pool_create(struct vd_tgt_pool *pool, const char *name, const json_t *spec,
		       json_t **ret_location, struct vd_err *err);

/* Removes the LUN, (wipe: zeroes the image's data first), the image and
 * the record. Absent: 0. A LUN still in use by an initiator: -EBUSY. */
int vd_tgt_pool_remove(struct vd_tgt_pool *pool, const char *name, struct vd_err *err);

/* Bytes left for new volumes: pool_size minus the volumes' sizes when
 * pool_size is set, else the free space of the pool's file system. */
int vd_tgt_pool_capacity(struct vd_tgt_pool *pool, uint64_t *ret_bytes, struct vd_err *err);

/* fn(name, spec, location, userdata) per volume (not those being
 * removed); a non-zero return stops the walk. */
int vd_tgt_pool_foreach(struct vd_tgt_pool *pool,
			int (*fn)(const char *name, const json_t *spec, const json_t *location,
				  void *userdata),
			void *userdata, struct vd_err *err);

#endif
