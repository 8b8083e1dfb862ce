/* test_nodes.c — the controller's node registry: a heartbeat registers a
 * node, its lease makes it alive, suspect, dead; registrations survive a
 * restart (with a fresh lease); requests are handed over once; refusals
 * reported by a node are kept until the next ask; bad node ids refused. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../volumed/log.h"
#include "../../volumed/nodes.h"
#include "../support/fixture.h"

#define LEASE_MS 300

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct vd_nodes *open_in(const char *dir)
{
	struct vd_nodes *n = NULL;
	struct vd_err err = VD_ERR_INIT;
	if (vd_nodes_open(dir, LEASE_MS, &n, &err) < 0)
		fail_msg("open: %s", err.msg);
	return n;
}

static void beat(struct vd_nodes *n, const char *id, const char *report, json_t **ret)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *r = report ? json_loads(report, 0, NULL) : NULL;
	if (vd_nodes_heartbeat(n, id, r, ret, &err) < 0)
		fail_msg("heartbeat %s: %s", id, err.msg);
	json_decref(r);
}

static void test_lease(void **state)
{
	(void)state;
	char dir[PATH_MAX];
	assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "vd-nodes"), 0);
	struct vd_nodes *n = open_in(dir);
	assert_int_equal(vd_nodes_state(n, "a"), VD_NODE_DEAD);   /* unknown */
	beat(n, "a", NULL, NULL);
	assert_int_equal(vd_nodes_state(n, "a"), VD_NODE_ALIVE);
	sleep_ms(LEASE_MS / 2 + 30);
	assert_int_equal(vd_nodes_state(n, "a"), VD_NODE_SUSPECT);
	sleep_ms(LEASE_MS / 2 + 30);
	assert_int_equal(vd_nodes_state(n, "a"), VD_NODE_DEAD);
	beat(n, "a", NULL, NULL);
	assert_int_equal(vd_nodes_state(n, "a"), VD_NODE_ALIVE);

	json_t *list;
	struct vd_err err = VD_ERR_INIT;
	beat(n, "b", NULL, NULL);
	assert_int_equal(vd_nodes_list(n, &list, &err), 0);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "a");
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "state")),
			    "alive");
	json_decref(list);
	vd_nodes_free(n);

	/* A restart knows both, each with a fresh lease. */
	n = open_in(dir);
	assert_true(vd_nodes_known(n, "a") && vd_nodes_known(n, "b"));
	assert_int_equal(vd_nodes_state(n, "b"), VD_NODE_ALIVE);
	vd_nodes_free(n);
	vd_test_rmtree(dir);
}

static void test_requests(void **state)
{
	(void)state;
	char dir[PATH_MAX], why[128];
	assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "vd-nodes"), 0);
	struct vd_nodes *n = open_in(dir);
	json_t *req = NULL;
	beat(n, "a", NULL, NULL);
	vd_nodes_ask(n, "a", "release", "v1", 0);
	vd_nodes_ask(n, "a", "release", "v1", 0);   /* once */
	vd_nodes_ask(n, "a", "mount", "v2", 0);
	beat(n, "a", NULL, &req);
	assert_int_equal(json_array_size(req), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(req, 0), "op")),
			    "release");
	json_decref(req);
	beat(n, "a", "{\"refused\": [{\"volume\": \"v1\", \"reason\": \"2 mounts use it\"}]}", &req);
	assert_int_equal(json_array_size(req), 0);   /* handed over once */
	json_decref(req);
	assert_non_null(vd_nodes_refusal(n, "a", "v1", why, sizeof(why)));
	assert_string_equal(why, "2 mounts use it");
	vd_nodes_ask(n, "a", "release", "v1", 1);   /* a new ask clears the old answer */
	assert_null(vd_nodes_refusal(n, "a", "v1", why, sizeof(why)));

	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_nodes_heartbeat(n, "../x", NULL, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "node id"));

	/* a node that would fence itself after the controller's lease */
	json_t *longer = json_pack("{s:i}", "lease_ms", LEASE_MS + 1);
	vd_err_clear(&err);
	assert_int_equal(vd_nodes_heartbeat(n, "late", longer, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "give every node the same lease_ms"));
	assert_int_equal(vd_nodes_state(n, "late"), VD_NODE_DEAD);   /* not registered */
	json_decref(longer);
	static const struct { const char *report, *why; } bad[] = {
		{ "{\"lease_ms\": -5}", "1 or more" },
		{ "{\"refused\": [{\"volume\": 5}]}", "refused[0] must be" },
		{ "{\"done\": [1]}", "done[0] must be" },
		{ "{\"done\": {}}", "'done' must be an array" },
		{ "{\"refused\": [{\"volume\": \"v\", \"reason\": 7}]}", "refused[0] must be" },
		{ "{\"refused\": [{\"volume\": \"../x\"}]}", "refused[0]" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *r = json_loads(bad[i].report, 0, NULL);
		vd_err_clear(&err);
		assert_int_equal(vd_nodes_heartbeat(n, "late", r, NULL, &err), -EINVAL);
		if (!strstr(err.msg, bad[i].why))
			fail_msg("%s: '%s' lacks '%s'", bad[i].report, err.msg, bad[i].why);
		json_decref(r);
	}
	assert_int_equal(vd_nodes_state(n, "late"), VD_NODE_DEAD);   /* nothing recorded */
	beat(n, "late", "{\"lease_ms\": 1}", NULL);   /* shorter: fences earlier, fine */
	assert_int_equal(vd_nodes_state(n, "late"), VD_NODE_ALIVE);
	vd_nodes_free(n);
	vd_test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_requests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
