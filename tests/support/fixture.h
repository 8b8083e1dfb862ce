/* fixture.h — scaffolding shared by the unit tests and the fuzz targets:
 * temporary state directories, a real core on one, and the cleanup that
 * unmounts what a failed test left and removes the tree without ever
 * crossing into a mount.
 *
 * No cmocka: fuzz targets use it too. Failures print what went wrong on
 * stderr and return a negative errno (or NULL), so a unit test asserts on
 * the result and a fuzz target aborts. Not thread-safe; call it from the
 * test's main thread. */
#ifndef VD_TEST_FIXTURE_H
#define VD_TEST_FIXTURE_H

#include <stddef.h>

#include <jansson.h>

#include "../../drivers/driver.h"
#include "../../volumed/core.h"

/* A core on its own temporary state directory. */
struct vd_test_core {
	char dir[64];
	struct vd_core *core;
};

/* One driver initialised on its own temporary state directory. */
struct vd_test_driver {
	char dir[64];
	const struct vd_driver_ops *ops;
	void *priv;
};

/* Initialises driver name with settings (JSON text, or NULL) on a new
 * "/tmp/<prefix>-XXXXXX"; NULL, with the reason on stderr, on failure. */
struct vd_test_driver *vd_test_driver_new(const char *name, const char *prefix,
					  const char *settings_json);
/* Finalises the driver, removes the tree (never crossing a mount), frees. */
void vd_test_driver_free(struct vd_test_driver *t);

/* Makes a fresh directory "/tmp/<prefix>-XXXXXX" into dir (size bytes). */
int vd_test_mkdtemp(char *dir, size_t size, const char *prefix);

/* Makes t->dir and opens a core there as node node_id. On failure nothing
 * is left behind and the message names the step and the core's error. */
int vd_test_core_open(struct vd_test_core *t, const char *prefix, const char *node_id);

/* Frees the core and opens a new one on the same directory (a restart). */
int vd_test_core_reopen(struct vd_test_core *t, const char *node_id);

/* Frees the core, unmounts whatever is left below t->dir, removes the tree.
 * Safe on a zeroed or already closed t. */
void vd_test_core_close(struct vd_test_core *t);

/* The same on the heap, for cmocka's void **state: NULL on failure. */
struct vd_test_core *vd_test_core_new(const char *prefix, const char *node_id);
void vd_test_core_free(struct vd_test_core *t);

/* One core for the whole process, opened on the first call (node "fuzz")
 * and closed and removed at exit; aborts when it cannot be opened. Quiets
 * the log to errors. For fuzz targets. */
struct vd_core *vd_test_core_shared(const char *prefix);

/* Removes dir and everything below it, never following a symlink nor
 * crossing a mount point (what lies beyond one stays). */
void vd_test_rmtree(const char *dir);

/* Unmounts (lazily, the deepest first) every mount at or below dir, as
 * listed by /proc/self/mountinfo: what a failed test left mounted. */
void vd_test_unmount_under(const char *dir);

/* 1 when a JSON request body asks for a sized volume: an object whose
 * member opts_key ("options" for the REST API, "Opts" for the Docker
 * plugin) has a "size". Such a volume needs mkfs and a loop mount. */
int vd_test_wants_sized_volume(const char *body, size_t len, const char *opts_key);

#endif
