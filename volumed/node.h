/* node.h — the node agent: mounts on this host and their reference counts.
 *
 * One record per volume mounted here (<state>/node), persisted before any
 * answer: {"volume","driver","spec","data","path","mount_ids":[...]}. The
 * record carries what unmounting needs, so a node can release a volume
 * without its controller. On open the records are reconciled with the live
 * mounts: volumes still referenced are staged again if their mount went
 * away; volumes no longer referenced, or attached to this node by the
 * controller without a record (a crash between the two), are released.
 *
 * Threads: thread-safe; calls on one volume serialize on its named lock
 * (taken before the controller's own lock for that volume). */
#ifndef VD_NODE_H
#define VD_NODE_H

#include <jansson.h>

#include "backends.h"
#include "access.h"
#include "controller.h"
#include "err.h"

#define VD_MOUNT_ID_MAX 1024
/* The mount id of a volume a move placed on this node: not a user (a later
 * move takes it without force); `volctl unmount NAME --id move` drops it. */
#define VD_MOVE_MOUNT_ID "move"

struct vd_node;

/* lease_file: a node agent's lease (see lease.h), handed to the data path
 * of single-writer volumes; NULL when the controller is in this process. */
int vd_node_open(const char *state_dir, const char *node_id, const char *lease_file,
		 const struct vd_backends *backends, struct vd_controller controller,
		 struct vd_node **ret_node, struct vd_err *err);
void vd_node_free(struct vd_node *node);

/* Stages the volume (first reference: attach with opts->access, then a
 * mounted file system or, with opts->block, a block device) and records
 * mount_id; with opts->target, also binds the volume there. Idempotent per
 * id. opts NULL: a file system for a single writer, no bind. ret_path (the
 * volume's path or device) is malloc'd. */
int vd_node_mount(struct vd_node *node, const char *name, const char *mount_id,
		  const struct vd_mount_opts *opts, char **ret_path, struct vd_err *err);
/* Unbinds mount_id's target, if any, and drops mount_id; the last reference
 * unstages and detaches. Unknown: 0. */
int vd_node_unmount(struct vd_node *node, const char *name, const char *mount_id,
		    struct vd_err *err);

/* A shared read-only reference to name's record, or NULL when not mounted. */
json_t *vd_node_record(struct vd_node *node, const char *name);

/* The controller asks this node to let the volume go: unmounted and
 * detached when nothing here uses it; -EBUSY naming the users otherwise,
 * unless force: then its data path is cut (users get EIO), its mountpoints
 * covered read-only, and its record kept ("released") until the users
 * unmount. */
int vd_node_release(struct vd_node *node, const char *name, int force, struct vd_err *err);
/* Self-fencing (no lease): cuts the data path of every single-writer
 * volume staged here and marks it fenced. Returns how many. */
int vd_node_fence_single(struct vd_node *node, struct vd_err *err);
/* Retries the releases and detaches that failed (the controller was away),
 * and detaches what an attach that failed in transit may have made; cheap
 * when there is nothing to do. The agent calls it after each heartbeat. */
void vd_node_settle(struct vd_node *node);
/* How many volumes are mounted here. */
size_t vd_node_mounted_count(struct vd_node *node);
/* How many references (mount IDs) the volumes mounted here have. */
size_t vd_node_refs_count(struct vd_node *node);
const char *vd_node_id(const struct vd_node *node);

#endif
