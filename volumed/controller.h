/* controller.h — what a node agent needs from the controller. In one
 * process the catalog implements it directly; in a cluster a REST client
 * to the remote controller does. Calls block; all are thread-safe. */
#ifndef VD_CONTROLLER_H
#define VD_CONTROLLER_H

#include <jansson.h>

#include "access.h"
#include "err.h"

struct vd_controller_ops {
	/* Records that node_id uses the volume and returns its document
	 * ({"name","driver","spec","data",...}). Idempotent per node (the
	 * first access recorded stays). When another node's use excludes this
	 * one, the volume moves (see catalog.h) or -EBUSY names that node;
	 * force asks the other node to let go even while in use. */
	int (*attach)(void *ctl, const char *name, const char *node_id, enum vd_access access,
		      int force, json_t **ret_doc, struct vd_err *err);
	/* Drops node_id's attachment. Idempotent: not attached is 0. */
	int (*detach)(void *ctl, const char *name, const char *node_id, struct vd_err *err);
	/* A shared read-only reference to the volume's document. */
	int (*get)(void *ctl, const char *name, json_t **ret_doc, struct vd_err *err);
	/* The names of the volumes attached to node_id: a JSON array. */
	int (*attached)(void *ctl, const char *node_id, json_t **ret_names, struct vd_err *err);
};

struct vd_controller {
	const struct vd_controller_ops *ops;
	void *ctl;
};

#endif
