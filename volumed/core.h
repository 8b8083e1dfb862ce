/* core.h — what the front-ends call: volumes, mounts and views.
 *
 * The core is the controller (catalog: volumes, attachments) and the node
 * agent (mounts and their reference counts) wired together in one process.
 * Front-ends (Docker plugin, REST API, later CSI) translate their protocol
 * into these calls and the returned negative errno + err back into theirs.
 *
 * Threads: every call is thread-safe. Calls on one volume serialize on a
 * per-volume lock; calls on different volumes run in parallel. */
#ifndef VD_CORE_H
#define VD_CORE_H

#include <jansson.h>

#include "err.h"

struct vd_core;

struct vd_core_config {
	const char *state_dir;         /* created if missing */
	const char *node_id;           /* this node's name */
	const json_t *drivers;         /* {"local": {...settings}}, or NULL */
	const char *default_driver;    /* NULL: "local" */
};

/* Opens the state, loads the catalog and reconciles this node's mount
 * records with the live mounts (remounting what Docker still holds). */
int vd_core_open(const struct vd_core_config *cfg, struct vd_core **ret_core,
		 struct vd_err *err);
/* Flushes nothing (every change is already durable) and frees; mounts stay. */
void vd_core_free(struct vd_core *core);

/* Creates a volume. driver NULL means the default; opts is a JSON object of
 * string values or NULL. Creating an existing volume with the same driver
 * and options is 0 (idempotent); with different ones -EEXIST. */
int vd_core_create(struct vd_core *core, const char *name, const char *driver,
		   const json_t *opts, struct vd_err *err);

/* Removes a volume and its storage. Mounted: -EBUSY naming who holds it. */
int vd_core_remove(struct vd_core *core, const char *name, struct vd_err *err);

/* Mounts the volume on this node for mount_id (a Docker mount ID, a CSI
 * target path, "volctl"...). Reference-counted by id and persistent:
 * the same id twice counts once. ret_path is malloc'd. */
int vd_core_mount(struct vd_core *core, const char *name, const char *mount_id,
		  char **ret_path, struct vd_err *err);

/* Drops mount_id's reference; the last one unmounts. Unknown id: 0. */
int vd_core_unmount(struct vd_core *core, const char *name, const char *mount_id,
		    struct vd_err *err);

/* A volume's view: {"name","driver","created_at","mountpoint","options",
 * "status":{"driver","size","size_bytes","fstype","mounted","refs",
 * "mount_ids","attachments","node"}}. mountpoint is the volume's stable
 * path on this node, whether mounted now or not (status.mounted says).
 * New reference owned by the caller. */
int vd_core_inspect(struct vd_core *core, const char *name, json_t **ret_view,
		    struct vd_err *err);

/* What a listing needs of a volume; borrowed for the duration of a visit. */
struct vd_volume_brief {
	const char *name;
	const char *driver;
	const char *created_at;
	const char *mountpoint;   /* as in the view */
};
typedef int (*vd_core_visit_fn)(const struct vd_volume_brief *brief, void *userdata);

/* Calls fn for every volume, sorted by name, without building views; a
 * non-zero return from fn stops the walk and is returned. */
int vd_core_foreach(struct vd_core *core, vd_core_visit_fn fn, void *userdata,
		    struct vd_err *err);

/* All volumes' views, sorted by name: a JSON array. */
int vd_core_list(struct vd_core *core, json_t **ret_views, struct vd_err *err);

/* The daemon's status: {"version","node_id","state_dir","volumes",
 * "mounted","drivers":[...],"uptime_s","rss_bytes"}. */
int vd_core_status(struct vd_core *core, json_t **ret_status, struct vd_err *err);

#define VD_VERSION "0.1.0"

#endif
