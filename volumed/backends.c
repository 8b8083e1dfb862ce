/* backends.c — initialises every registered driver once at start.
 * Immutable afterwards, so lookups need no lock. */
#include "backends.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct vd_backends {
	size_t count;
	struct vd_backend list[];
};

static int settings_check(const json_t *settings, struct vd_err *err)
{
	const char *key;
	json_t *value;
	if (!settings)
		return 0;
	if (!json_is_object(settings))
		return vd_err_set(err, -EINVAL, "drivers: expected an object of driver settings");
	json_object_foreach((json_t *)settings, key, value) {
		if (!vd_driver_find(key))
			return vd_err_set(err, -EINVAL, "drivers.%s: unknown driver; available: %s",
					  key, vd_driver_names());
		if (!json_is_object(value))
			return vd_err_set(err, -EINVAL, "drivers.%s: expected an object", key);
	}
	return 0;
}

int vd_backends_open(const char *state_dir, const char *node_id, int agent, const json_t *settings,
		     struct vd_backends **ret_backends, struct vd_err *err)
{
	int r = settings_check(settings, err);
	if (r < 0)
		return r;
	size_t n = 0;
	while (vd_drivers[n])
		n++;
	struct vd_backends *b = calloc(1, sizeof(*b) + n * sizeof(b->list[0]));
	if (!b)
		return vd_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct vd_driver_ops *ops = vd_drivers[i];
		struct vd_driver_env env = {
			.state_dir = state_dir,
			.node_id = node_id,
			.agent = agent,
			.settings = settings ? json_object_get(settings, ops->name) : NULL,
		};
		b->list[i].ops = ops;
		if (ops->init && (r = ops->init(&env, &b->list[i].priv, err)) < 0) {
			vd_err_prefix(err, "driver %s", ops->name);
			vd_backends_free(b);
			return r;
		}
		b->count = i + 1;
	}
	*ret_backends = b;
	return 0;
}

void vd_backends_free(struct vd_backends *backends)
{
	if (!backends)
		return;
	for (size_t i = 0; i < backends->count; i++)
		if (backends->list[i].ops->fini)
			backends->list[i].ops->fini(backends->list[i].priv);
	free(backends);
}

const struct vd_backend *vd_backend_find(const struct vd_backends *backends, const char *name)
{
	for (size_t i = 0; name && i < backends->count; i++)
		if (strcmp(backends->list[i].ops->name, name) == 0)
			return &backends->list[i];
	return NULL;
}

int vd_backend_get(const struct vd_backends *backends, const char *name,
		   const struct vd_backend **ret_backend, struct vd_err *err)
{
	const struct vd_backend *b = vd_backend_find(backends, name);
	if (!b)
		return vd_err_set(err, -EINVAL, "unknown driver '%.40s'; available: %s",
				  name ? name : "", vd_driver_names());
	*ret_backend = b;
	return 0;
}
