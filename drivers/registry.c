/* registry.c — the drivers this build has, listed explicitly.
 *
 * Immutable: the array is constant and the names string is built once
 * (pthread_once), so every function here is thread-safe without a lock. */
#include "driver.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

extern const struct vd_driver_ops vd_driver_local;
extern const struct vd_driver_ops vd_driver_nfs;
extern const struct vd_driver_ops vd_driver_iscsi;

const struct vd_driver_ops *const vd_drivers[] = {
	&vd_driver_local,
	&vd_driver_nfs,
	&vd_driver_iscsi,
	NULL,
};

const struct vd_driver_ops *vd_driver_find(const char *name)
{
	for (size_t i = 0; name && vd_drivers[i]; i++)
		if (strcmp(vd_drivers[i]->name, name) == 0)
			return vd_drivers[i];
	return NULL;
}

static char driver_names[256];
static pthread_once_t driver_names_once = PTHREAD_ONCE_INIT;

static void driver_names_build(void)
{
	size_t len = 0;
	for (size_t i = 0; vd_drivers[i] && len < sizeof(driver_names); i++) {
		int n = snprintf(driver_names + len, sizeof(driver_names) - len, "%s%s",
				 i ? ", " : "", vd_drivers[i]->name);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

const char *vd_driver_names(void)
{
	pthread_once(&driver_names_once, driver_names_build);
	return driver_names;
}
