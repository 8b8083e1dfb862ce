/* backends.h — the live drivers: each registered driver initialised with
 * its settings from the config. Read-only after open; thread-safe. */
#ifndef VD_BACKENDS_H
#define VD_BACKENDS_H

#include <jansson.h>

#include "../drivers/driver.h"
#include "err.h"

struct vd_backend {
	const struct vd_driver_ops *ops;
	void *priv;
};

struct vd_backends;

/* settings: {"local": {...}, ...}; unknown driver names are refused. */
int vd_backends_open(const char *state_dir, const char *node_id, int agent, const json_t *settings,
		     struct vd_backends **ret_backends, struct vd_err *err);
void vd_backends_free(struct vd_backends *backends);

/* The backend called name, or NULL. */
const struct vd_backend *vd_backend_find(const struct vd_backends *backends, const char *name);
/* Like find, with -EINVAL naming the drivers available when missing. */
int vd_backend_get(const struct vd_backends *backends, const char *name,
		   const struct vd_backend **ret_backend, struct vd_err *err);

#endif
