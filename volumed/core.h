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

#include <stdint.h>

#include "access.h"
#include "err.h"

struct vd_core;

struct vd_core_config {
	const char *state_dir;         /* created if missing */
	const char *node_id;           /* this node's name */
	const json_t *drivers;         /* {"local": {...settings}}, or NULL */
	const char *default_driver;    /* NULL: "local" */
	/* cluster: a node agent of the controller at controller_url (https),
	 * or ("" / NULL) the controller itself */
	const char *controller_url;
	const char *token;             /* bearer token for controller_url */
	const char *ca_file;           /* CA of the controller's certificate, or NULL */
	int lease_ms;                  /* node lease (0: 10000) */
	int move_wait_ms;              /* how long a move waits for the old node (0: no wait) */
	int preempt;                   /* moves take volumes from busy nodes by default */
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

/* Like create, with the content of the snapshot `snapshot` or of the
 * volume `volume` (one of them non-NULL). Idempotent for the same source. */
int vd_core_create_from(struct vd_core *core, const char *name, const char *driver,
			const json_t *opts, const char *snapshot, const char *volume,
			struct vd_err *err);

/* Removes a volume and its storage. Mounted: -EBUSY naming who holds it. */
int vd_core_remove(struct vd_core *core, const char *name, struct vd_err *err);

/* Mounts the volume on this node for mount_id (a Docker mount ID, a CSI
 * target path, "volctl"...). Reference-counted by id and persistent:
 * the same id twice counts once. ret_path is malloc'd. */
int vd_core_mount(struct vd_core *core, const char *name, const char *mount_id,
		  char **ret_path, struct vd_err *err);

/* Like mount, with options: access mode, block device, and a target path
 * the volume is also bound on (CSI staging and target paths). */
int vd_core_mount_ex(struct vd_core *core, const char *name, const char *mount_id,
		     const struct vd_mount_opts *opts, char **ret_path, struct vd_err *err);

/* Drops mount_id's reference (unbinding its target, if any); the last one
 * unmounts. Unknown id: 0. */
int vd_core_unmount(struct vd_core *core, const char *name, const char *mount_id,
		    struct vd_err *err);

/* Controller: makes the volume available to node_id (CSI's
 * ControllerPublishVolume). -ENOENT for an unknown volume or node; -EBUSY
 * naming the node whose use excludes this one. Idempotent. */
int vd_core_publish(struct vd_core *core, const char *name, const char *node_id,
		    enum vd_access access, struct vd_err *err);
/* Undoes publish; -EBUSY while node_id still mounts it. Idempotent. */
int vd_core_unpublish(struct vd_core *core, const char *name, const char *node_id,
		      struct vd_err *err);
/* This node's id, and whether node_id is a node the controller knows. */
/* 1 when driver's volumes (NULL: the default driver's) live on the node that
 * made them and can be used nowhere else; 0 for network drivers, and for a
 * driver that does not exist. */
int vd_core_driver_node_local(const struct vd_core *core, const char *driver);
const char *vd_core_node_id(const struct vd_core *core);
int vd_core_node_known(const struct vd_core *core, const char *node_id);

/* Grows a volume's storage to at least new_size bytes (and its file system
 * where it is mounted here); ret_size is the size after; ret_node_pending
 * is set when the mounted file system could not grow yet and
 * vd_core_node_expand must follow. */
int vd_core_expand(struct vd_core *core, const char *name, uint64_t new_size,
		   uint64_t *ret_size, int *ret_node_pending, struct vd_err *err);
/* Node side: grows the mounted file system to fill its storage. */
int vd_core_node_expand(struct vd_core *core, const char *name, struct vd_err *err);

/* Snapshots: {"name","source_volume","driver","size_bytes","created_at"}. */
int vd_core_snapshot_create(struct vd_core *core, const char *name, const char *source,
			    json_t **ret_snapshot, struct vd_err *err);
int vd_core_snapshot_delete(struct vd_core *core, const char *name, struct vd_err *err);
int vd_core_snapshot_get(struct vd_core *core, const char *name, json_t **ret_snapshot,
			 struct vd_err *err);
int vd_core_snapshot_list(struct vd_core *core, json_t **ret_snapshots, struct vd_err *err);

/* Bytes available for new volumes of driver (NULL: the default) with the
 * options opts (may be NULL; e.g. the backend they name). */
int vd_core_capacity(struct vd_core *core, const char *driver, const json_t *opts,
		     uint64_t *ret_bytes, struct vd_err *err);

struct vd_volume_stats {
	uint64_t bytes_total, bytes_used, bytes_available;
	uint64_t inodes_total, inodes_used, inodes_free;   /* 0 for block devices */
	int block;           /* the path is a block device */
	int abnormal;        /* the volume's mount is gone or unreadable */
	char message[200];   /* why, when abnormal */
};
/* Usage of the volume at path, where it is mounted on this node. -ENOENT
 * when the volume or path is unknown or path is not where it is mounted. */
int vd_core_volume_stats(struct vd_core *core, const char *name, const char *path,
			 struct vd_volume_stats *ret_stats, struct vd_err *err);

/* A volume's view: {"name","driver","created_at","mountpoint","options",
 * "status":{"driver","size","size_bytes","fstype","mounted","refs",
 * "mount_ids","attachments","node"},"capacity_bytes"}. mountpoint is the volume's stable
 * path on this node, whether mounted now or not (status.mounted says).
 * New reference owned by the caller. */
int vd_core_inspect(struct vd_core *core, const char *name, json_t **ret_view,
		    struct vd_err *err);
/* The same plus the driver's live facts from the backend (iscsi: the
 * reservation holder and registered keys), for `volctl inspect`. Blocks. */
int vd_core_inspect_live(struct vd_core *core, const char *name, json_t **ret_view,
			 struct vd_err *err);

/* What a listing needs of a volume; borrowed for the duration of a visit. */
struct vd_volume_brief {
	const char *name;
	const char *driver;
	const char *created_at;
	const char *mountpoint;   /* as in the view */
	uint64_t capacity_bytes;  /* 0: unlimited */
	const json_t *attachments; /* {node_id: {"since","access"}} */
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

/* The metrics only the core knows: its gauges (volumes by driver and
 * attachments on the controller, mounts and references here, helper
 * processes), version, start time and resident memory. */
struct vd_metrics_snapshot;
int vd_core_metrics(struct vd_core *core, struct vd_metrics_snapshot *s, struct vd_err *err);
/* 0 when serving: the state directory takes a new file and, on a node
 * agent, the controller answered within the lease; otherwise why not. */
int vd_core_health(struct vd_core *core, struct vd_err *err);

/* ---- the cluster (the controller's side of node agents' calls) ----
 * On a node agent, nodes and move are asked of the controller; the others
 * answer -EOPNOTSUPP. */

/* A node's heartbeat: {"refused": [...]} in, {"requests","lease_ms"} out. */
int vd_core_heartbeat(struct vd_core *core, const char *node_id, const json_t *report,
		      json_t **ret_reply, struct vd_err *err);
/* [{"id","state","last_heartbeat_ms","registered_at","attached":[names]}] */
int vd_core_nodes(struct vd_core *core, json_t **ret_nodes, struct vd_err *err);
/* node_id uses the volume (access "single", "multi", "readonly"; NULL:
 * single), moving it from another node when it must (see catalog.h). */
int vd_core_attach(struct vd_core *core, const char *name, const char *node_id,
		   const char *access, int force, json_t **ret_doc, struct vd_err *err);
int vd_core_detach(struct vd_core *core, const char *name, const char *node_id,
		   struct vd_err *err);
/* The catalog's document(s): what a node agent needs to stage a volume. */
int vd_core_document(struct vd_core *core, const char *name, json_t **ret_doc,
		     struct vd_err *err);
int vd_core_documents(struct vd_core *core, json_t **ret_docs, struct vd_err *err);
/* The names of the volumes attached to node_id. */
int vd_core_attached(struct vd_core *core, const char *node_id, json_t **ret_names,
		     struct vd_err *err);
/* Create for node home (a node-local volume lives there; NULL: here). */
int vd_core_create_at(struct vd_core *core, const char *name, const char *driver,
		      const json_t *opts, const char *home, struct vd_err *err);
/* Moves the volume to node `to` (which mounts it); force: its current
 * node lets go even while in use. Blocks until done or timed out. */
int vd_core_move(struct vd_core *core, const char *name, const char *to, int force,
		 struct vd_err *err);

#endif
