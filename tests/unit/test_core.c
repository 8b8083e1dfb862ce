/* test_core.c — the catalog and the node agent through the core API, on a
 * private state directory with directory volumes of the local driver:
 * lifecycle, reference counts, persistence across restarts, repair of
 * interrupted operations, and concurrency. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../volumed/core.h"
#include "../../volumed/store.h"
#include "../support/fixture.h"

#define NODE "node-a"

/* A daemon restart: frees the core (if open) and opens it again. */
static void core_restart(struct vd_test_core *f)
{
	assert_int_equal(vd_test_core_reopen(f, NODE), 0);
}

static int setup(void **state)
{
	*state = vd_test_core_new("vd-core", NODE);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	vd_test_core_free(*state);
	return 0;
}

static json_t *inspect(struct vd_test_core *f, const char *name)
{
	json_t *view = NULL;
	struct vd_err err = VD_ERR_INIT;
	if (vd_core_inspect(f->core, name, &view, &err) < 0)
		fail_msg("inspect %s: %s", name, vd_err_msg(&err));
	return view;
}

static json_int_t refs_of(struct vd_test_core *f, const char *name)
{
	json_t *view = inspect(f, name);
	json_int_t refs = json_integer_value(json_object_get(json_object_get(view, "status"), "refs"));
	json_decref(view);
	return refs;
}

static void must(int r, const struct vd_err *err)
{
	if (r < 0)
		fail_msg("unexpected error %d: %s", r, vd_err_msg(err));
}

static void test_create_inspect_list(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	must(vd_core_create(f->core, "v1", NULL, NULL, &err), &err);
	must(vd_core_create(f->core, "v1", NULL, NULL, &err), &err);  /* idempotent */
	must(vd_core_create(f->core, "v0", "local", NULL, &err), &err);
	json_t *view = inspect(f, "v1");
	assert_string_equal(json_string_value(json_object_get(view, "driver")), "local");
	assert_non_null(json_string_value(json_object_get(view, "created_at")));
	const char *mp = json_string_value(json_object_get(view, "mountpoint"));
	assert_non_null(strstr(mp, f->dir));
	assert_false(json_is_true(json_object_get(json_object_get(view, "status"), "mounted")));
	json_decref(view);
	json_t *list;
	must(vd_core_list(f->core, &list, &err), &err);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "v0");
	json_decref(list);
}

static void test_create_rejects(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_core_create(f->core, "../x", NULL, NULL, &err), -EINVAL);
	assert_int_equal(vd_core_create(f->core, "v", "nosuch", NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "local"));
	json_t *opts = json_pack("{s:s}", "colour", "blue");
	assert_int_equal(vd_core_create(f->core, "v", NULL, opts, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "size"));
	json_decref(opts);
	must(vd_core_create(f->core, "v", NULL, NULL, &err), &err);
	opts = json_pack("{s:s}", "size", "64Mi");
	assert_int_equal(vd_core_create(f->core, "v", NULL, opts, &err), -EEXIST);
	json_decref(opts);
	json_t *list;
	must(vd_core_list(f->core, &list, &err), &err);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	assert_int_equal(vd_core_remove(f->core, "nosuch", &err), -ENOENT);
	assert_int_equal(vd_core_inspect(f->core, "nosuch", &opts, &err), -ENOENT);
}

static void test_mount_refcounts(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	char *p1, *p2, *p3;
	must(vd_core_create(f->core, "shared", NULL, NULL, &err), &err);
	must(vd_core_mount(f->core, "shared", "id-1", &p1, &err), &err);
	must(vd_core_mount(f->core, "shared", "id-2", &p2, &err), &err);
	must(vd_core_mount(f->core, "shared", "id-2", &p3, &err), &err);  /* same id: once */
	assert_string_equal(p1, p2);
	assert_string_equal(p1, p3);
	struct stat st;
	assert_int_equal(stat(p1, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(p1), free(p2), free(p3);
	assert_int_equal(refs_of(f, "shared"), 2);
	assert_int_equal(vd_core_remove(f->core, "shared", &err), -EBUSY);
	assert_non_null(strstr(err.msg, "node-a"));
	must(vd_core_unmount(f->core, "shared", "id-1", &err), &err);
	must(vd_core_unmount(f->core, "shared", "id-1", &err), &err);  /* unknown id: 0 */
	assert_int_equal(refs_of(f, "shared"), 1);
	must(vd_core_unmount(f->core, "shared", "id-2", &err), &err);
	assert_int_equal(refs_of(f, "shared"), 0);
	must(vd_core_remove(f->core, "shared", &err), &err);
	assert_int_equal(vd_core_mount(f->core, "shared", "id-3", &p1, &err), -ENOENT);
	assert_int_equal(vd_core_mount(f->core, "x", "", &p1, &err), -EINVAL);
}

static void test_refs_survive_restart(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	char *p;
	must(vd_core_create(f->core, "kept", NULL, NULL, &err), &err);
	must(vd_core_mount(f->core, "kept", "id-1", &p, &err), &err);
	free(p);
	must(vd_core_mount(f->core, "kept", "id-2", &p, &err), &err);
	free(p);
	core_restart(f);
	assert_int_equal(refs_of(f, "kept"), 2);
	assert_int_equal(vd_core_remove(f->core, "kept", &err), -EBUSY);
	must(vd_core_unmount(f->core, "kept", "id-1", &err), &err);
	must(vd_core_unmount(f->core, "kept", "id-2", &err), &err);
	core_restart(f);
	assert_int_equal(refs_of(f, "kept"), 0);
	must(vd_core_remove(f->core, "kept", &err), &err);
}

/* A crash after the controller recorded the attachment but before the
 * node wrote its record: the restart releases the attachment. */
static void test_orphan_attachment_released(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	char *p, path[PATH_MAX];
	must(vd_core_create(f->core, "orphan", NULL, NULL, &err), &err);
	must(vd_core_mount(f->core, "orphan", "id-1", &p, &err), &err);
	free(p);
	vd_core_free(f->core);
	f->core = NULL;
	snprintf(path, sizeof(path), "%s/node/orphan", f->dir);
	assert_int_equal(unlink(path), 0);
	core_restart(f);
	assert_int_equal(refs_of(f, "orphan"), 0);
	must(vd_core_remove(f->core, "orphan", &err), &err);
}

/* A crash in the middle of a create or a remove is finished on restart. */
static void test_interrupted_create_rolled_back(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	char dir[PATH_MAX];
	struct vd_store *store;
	vd_core_free(f->core);
	f->core = NULL;
	snprintf(dir, sizeof(dir), "%s/catalog", f->dir);
	must(vd_store_open(dir, &store, &err), &err);
	json_t *doc = json_pack("{s:s, s:s, s:{}, s:{}, s:n, s:s, s:s, s:{}}", "name", "half",
				"driver", "local", "options", "spec", "data", "created_at",
				"2026-01-01T00:00:00Z", "state", "creating", "attachments");
	must(vd_store_put(store, "half", doc, 0, NULL, &err), &err);
	json_object_set_new(doc, "name", json_string("going"));
	json_object_set_new(doc, "state", json_string("deleting"));
	must(vd_store_put(store, "going", doc, 0, NULL, &err), &err);
	json_decref(doc);
	vd_store_free(store);
	core_restart(f);
	json_t *view;
	assert_int_equal(vd_core_inspect(f->core, "half", &view, &err), -ENOENT);
	assert_int_equal(vd_core_inspect(f->core, "going", &view, &err), -ENOENT);
	must(vd_core_create(f->core, "half", NULL, NULL, &err), &err);
}

struct worker {
	struct vd_test_core *f;
	int index;
	int rc;
};

static void *mount_worker(void *arg)
{
	struct worker *w = arg;
	char id[32], name[32], *p;
	struct vd_err err = VD_ERR_INIT;
	snprintf(id, sizeof(id), "id-%d", w->index);
	snprintf(name, sizeof(name), "own-%d", w->index);
	w->rc = vd_core_mount(w->f->core, "busy", id, &p, &err);
	if (w->rc == 0)
		free(p);
	if (w->rc == 0)
		w->rc = vd_core_create(w->f->core, name, NULL, NULL, &err);
	return NULL;
}

static void test_concurrent_mounts(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	enum { N = 16 };
	pthread_t threads[N];
	struct worker workers[N];
	must(vd_core_create(f->core, "busy", NULL, NULL, &err), &err);
	for (int i = 0; i < N; i++) {
		workers[i] = (struct worker){ .f = f, .index = i };
		pthread_create(&threads[i], NULL, mount_worker, &workers[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(workers[i].rc, 0);
	}
	assert_int_equal(refs_of(f, "busy"), N);
	core_restart(f);
	assert_int_equal(refs_of(f, "busy"), N);
	json_t *list;
	must(vd_core_list(f->core, &list, &err), &err);
	assert_int_equal(json_array_size(list), N + 1);
	json_decref(list);
}

static void test_status(void **state)
{
	struct vd_test_core *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *status;
	must(vd_core_create(f->core, "s1", NULL, NULL, &err), &err);
	must(vd_core_status(f->core, &status, &err), &err);
	assert_string_equal(json_string_value(json_object_get(status, "node_id")), "node-a");
	assert_int_equal(json_integer_value(json_object_get(status, "volumes")), 1);
	assert_true(json_integer_value(json_object_get(status, "rss_bytes")) > 0);
	json_decref(status);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_inspect_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_refcounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refs_survive_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphan_attachment_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_create_rolled_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_mounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
