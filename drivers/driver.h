/* driver.h — the driver ops table: the one contract every backend implements.
 *
 * A driver owns one kind of backend and knows nothing of Docker or CSI. The
 * core calls it with the volume's name, its spec (canonical options, made by
 * parse_options) and its data (what create returned, persisted by the core).
 * Every op returns 0 or a negative errno and puts the detail into err.
 * Optional ops may be NULL: the core then answers -EOPNOTSUPP.
 *
 * Threads: the core serializes all ops on one volume (per-volume lock);
 * ops on different volumes run concurrently, so a driver guards any state
 * it shares between volumes. Ownership: ret_* outputs are new references /
 * malloc'd strings owned by the caller, set only on success. */
#ifndef VD_DRIVER_H
#define VD_DRIVER_H

#include <jansson.h>
#include <stdint.h>

#include "../volumed/err.h"

struct vd_driver_env {
	const char *state_dir;   /* the daemon's state directory */
	const char *node_id;     /* this node's id */
	int agent;               /* 1: a node agent of a remote controller, which
	                            provisions (a driver only stages here) */
	const json_t *settings;  /* the driver's object in the config, or NULL */
};

struct vd_driver_ops {
	const char *name;
	/* 1 when a volume can be used from several nodes at once (a network
	 * file system): multi-writer access modes are then allowed. */
	int multi_node;
	/* 1 when a volume's storage is on the node that made it (a directory, an
	 * image file): it is provisioned there and used nowhere else. */
	int node_local;
	/* 1 when the storage itself can shut a node out (iSCSI reservations):
	 * a dead node's volume moves at once, fenced by the new node's stage
	 * (its data then has "fence": true). Otherwise a move from a dead node
	 * waits out the old node's lease, by which time it fenced itself. */
	int storage_fence;

	/* Reads settings; blocks (may create directories). Optional. */
	int (*init)(const struct vd_driver_env *env, void **ret_priv, struct vd_err *err);
	void (*fini)(void *priv);

	/* Checks user options (a JSON object of string values, or NULL) and
	 * returns the canonical spec. Pure, no I/O. Unknown keys are refused
	 * with the list of accepted ones. Required. */
	int (*parse_options)(void *priv, const json_t *opts, json_t **ret_spec,
			     struct vd_err *err);

	/* Provisions the backing storage. Blocks. Idempotent: a leftover from
	 * an interrupted create is reused or replaced. ret_data may be set to
	 * NULL when the driver keeps no data. Required. */
	int (*create)(void *priv, const char *name, const json_t *spec,
		      json_t **ret_data, struct vd_err *err);

	/* Destroys the backing storage. Blocks. Idempotent: absent is 0. Required. */
	int (*remove)(void *priv, const char *name, const json_t *spec,
		      const json_t *data, struct vd_err *err);

	/* Node side: makes the volume usable on this host and returns the
	 * path containers bind (stable for a volume). Blocks. Idempotent:
	 * already staged returns the same path. Required. On a node agent, a
	 * single writer's data has "lease_file": the node's lease (lease.h),
	 * which a data path that outlives volumed must obey. */
	int (*stage)(void *priv, const char *name, const json_t *spec,
		     const json_t *data, char **ret_path, struct vd_err *err);

	/* Node side: undoes stage. Blocks. Idempotent. Required. */
	int (*unstage)(void *priv, const char *name, const json_t *spec,
		       const json_t *data, struct vd_err *err);

	/* Node side: stops every write of this host to the volume at once
	 * (self-fencing, a forced release): its data path is cut, users get
	 * EIO; unstage still follows. Blocks briefly. Optional (a driver with
	 * nothing to cut: node-local storage). */
	int (*fence)(void *priv, const char *name, const json_t *spec, const json_t *data,
		     struct vd_err *err);

	/* Node side: 1 when staged on this host, 0 when not, <0 on error.
	 * Used when reconciling after a restart. Optional. */
	int (*is_staged)(void *priv, const char *name, const json_t *spec,
			 const json_t *data, struct vd_err *err);

	/* The path stage returns, without staging (for inspect). Required. */
	char *(*mountpoint)(void *priv, const char *name, const json_t *spec,
			    const json_t *data);

	/* Adds driver fields to a status object ("size", "fstype", ...). Pure.
	 * Optional. */
	void (*describe)(void *priv, const json_t *spec, const json_t *data,
			 json_t *status);

	/* ---- optional capabilities (NULL: -EOPNOTSUPP) ---- */

	/* The size in bytes of a spec (0: unlimited, e.g. a directory volume). */
	uint64_t (*spec_size)(void *priv, const json_t *spec);

	/* Controller side: grows the backing storage to new_size bytes (never
	 * shrinks: a smaller size is 0, nothing done) and returns the new
	 * spec. Where the volume is staged on this host, also grows its file
	 * system; ret_node_pending is set when that could not happen now and
	 * node_expand must follow. Blocks. Idempotent. */
	int (*expand)(void *priv, const char *name, const json_t *spec, const json_t *data,
		      uint64_t new_size, json_t **ret_spec, int *ret_node_pending,
		      struct vd_err *err);

	/* Node side: grows the staged file system to fill its storage. Blocks.
	 * Idempotent (nothing to grow is 0). */
	int (*node_expand)(void *priv, const char *name, const json_t *spec,
			   const json_t *data, struct vd_err *err);

	/* Copies the volume's content, consistently (a staged file system is
	 * frozen for the copy), into the snapshot snap_id. ret_bytes is the
	 * snapshot's size. Blocks. Idempotent per snap_id. */
	int (*snapshot_create)(void *priv, const char *name, const json_t *spec,
			       const json_t *data, const char *snap_id,
			       uint64_t *ret_bytes, struct vd_err *err);
	/* Deletes snapshot snap_id. Idempotent: absent is 0. */
	int (*snapshot_delete)(void *priv, const char *snap_id, struct vd_err *err);

	/* Like create, but the new volume starts with the content of snapshot
	 * snap_id (source_volume NULL) or of the volume source_volume (with its
	 * spec and data). The new spec may be larger than the source, never
	 * smaller. Blocks. Idempotent. */
	int (*create_from)(void *priv, const char *name, const json_t *spec,
			   const char *snap_id, const char *source_volume,
			   const json_t *source_spec, const json_t *source_data,
			   json_t **ret_data, struct vd_err *err);

	/* Node side, block access: attaches the volume as a block device
	 * (without mounting it) and returns the device path; detach undoes it.
	 * Blocks. Idempotent. */
	int (*block_attach)(void *priv, const char *name, const json_t *spec,
			    const json_t *data, char **ret_device, struct vd_err *err);
	int (*block_detach)(void *priv, const char *name, const json_t *spec,
			    const json_t *data, struct vd_err *err);

	/* Live facts from the backend for `volctl inspect` (e.g. who holds a
	 * reservation), added to status. Blocks, bounded by the backend's
	 * timeout. Optional; never on a hot path. */
	int (*probe)(void *priv, const char *name, const json_t *spec, const json_t *data,
		     json_t *status, struct vd_err *err);

	/* Bytes available for new volumes with the options opts (GetCapacity's
	 * parameters: an object of strings, or NULL), e.g. in the backend they
	 * name; options that only shape a volume (fstype...) are ignored.
	 * Optional. */
	int (*capacity)(void *priv, const json_t *opts, uint64_t *ret_bytes, struct vd_err *err);

	/* The volumes the backend itself holds, for a controller that lost
	 * its catalog (the backend is the truth): fn is called with each
	 * volume's name, options (as given at create), spec and data, all
	 * borrowed; a non-zero return stops the walk. Blocks. Optional. */
	int (*discover)(void *priv,
			int (*fn)(const char *name, const json_t *options, const json_t *spec,
				  const json_t *data, void *userdata),
			void *userdata, struct vd_err *err);
};

/* The registry: every driver this build has, listed explicitly. */
extern const struct vd_driver_ops *const vd_drivers[];
const struct vd_driver_ops *vd_driver_find(const char *name);
/* "local, nfs, iscsi": the names, for error messages. */
const char *vd_driver_names(void);

#endif
