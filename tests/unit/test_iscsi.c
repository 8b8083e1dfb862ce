/* test_iscsi.c — the iscsi driver through its ops table, without a target:
 * init touches no network and refuses what this build cannot do, the pure
 * ops read a spec, and a tgtd or portal that is not there fails a create,
 * a stage or a probe within the backend's timeout, with a message naming
 * it, and leaves nothing behind. (The real target: tests/integ/test_iscsi.sh.) */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../drivers/driver.h"
#include "../../drivers/iscsi_meta.h"
#include "../support/fixture.h"

/* A control port and a portal where nothing listens (port 1: privileged,
 * unused on test machines). */
#define NO_TGTD_PORT 32001
#define DEAD_PORTAL "127.0.0.1:1"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static struct vd_test_driver *driver_new(const char *settings)
{
	struct vd_test_driver *t = vd_test_driver_new("iscsi", "vd-iscsi", settings);
	if (!t)
		fail_msg("iscsi driver init failed with %s", settings ? settings : "no settings");
	return t;
}

static json_t *spec_of(struct vd_test_driver *t, const char *opts_json)
{
	json_t *opts = opts_json ? json_loads(opts_json, 0, NULL) : NULL;
	json_t *spec = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = t->ops->parse_options(t->priv, opts, &spec, &err);
	json_decref(opts);
	if (r < 0)
		fail_msg("options %s: %s", opts_json ? opts_json : "null", err.msg);
	return spec;
}

static void test_registry(void **state)
{
	(void)state;
	const struct vd_driver_ops *ops = vd_driver_find("iscsi");
	assert_non_null(ops);
	assert_int_equal(ops->multi_node, 0);   /* one writer: fenced by reservations */
	assert_non_null(ops->stage);
	assert_non_null(ops->block_attach);
	assert_non_null(ops->probe);
	assert_non_null(ops->discover);
	assert_non_null(strstr(vd_driver_names(), "iscsi"));

	struct vd_test_driver *t = driver_new(NULL);
	json_t *spec = NULL;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(t->ops->parse_options(t->priv, NULL, &spec, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "drivers.iscsi.backends"));
	vd_test_driver_free(t);
}

static void test_init_refusals(void **state)
{
	(void)state;
	const struct vd_driver_ops *ops = vd_driver_find("iscsi");
	struct {
		const char *settings, *want;
	} cases[] = {
		{ "{\"backends\": {\"b\": {\"provisioner\": \"tgt\", \"portal\": \"127.0.0.1\", "
		  "\"mode\": \"kernel\"}}}", "kernel initiator" },
		{ "{\"backends\": {\"b\": {\"provisioner\": \"nope\"}}}", "drivers.iscsi.backends.b" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dir[PATH_MAX];
		assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "vd-iscsi-init"), 0);
		json_t *settings = json_loads(cases[i].settings, 0, NULL);
		struct vd_driver_env env = { .state_dir = dir, .node_id = "n1", .settings = settings };
		struct vd_err err = VD_ERR_INIT;
		void *priv = NULL;
		assert_true(ops->init(&env, &priv, &err) < 0);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("init with %s: '%s' lacks '%s'", cases[i].settings, err.msg,
				 cases[i].want);
		json_decref(settings);
		vd_test_rmtree(dir);
	}
}

static void test_pure_ops(void **state)
{
	(void)state;
	struct vd_test_driver *t = driver_new(
		"{\"backends\": {\"pool\": {\"provisioner\": \"tgt\", \"portal\": \"127.0.0.1\", "
		"\"control_port\": 32001}}, \"reservation_key\": \"0xabc\"}");
	json_t *spec = spec_of(t, "{\"size\": \"320Mi\", \"fstype\": \"xfs\", \"preempt\": \"true\"}");
	assert_int_equal(t->ops->spec_size(t->priv, spec), 320 << 20);
	json_t *data = vd_iscsi_location_new("127.0.0.1:3260", "iqn.2026-01.io.volumed:pool", 7);
	json_t *status = json_object();
	t->ops->describe(t->priv, spec, data, status);
	assert_string_equal(json_string_value(json_object_get(status, "provisioner")), "tgt");
	assert_string_equal(json_string_value(json_object_get(status, "fstype")), "xfs");
	assert_int_equal(json_integer_value(json_object_get(status, "lun")), 7);
	assert_true(json_is_true(json_object_get(status, "preempt")));
	assert_string_equal(json_string_value(json_object_get(status, "node_reservation_key")),
			    "0x0000000000000abc");
	char *mp = t->ops->mountpoint(t->priv, "v1", spec, data);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/iscsi/pool/v1/mnt", t->dir);
	assert_string_equal(mp, want);
	free(mp);
	json_decref(status);
	json_decref(data);
	json_decref(spec);
	vd_test_driver_free(t);
}

static int count_one(const char *name, const json_t *options, const json_t *spec,
		     const json_t *data, void *userdata)
{
	(void)name;
	(void)options;
	(void)spec;
	(void)data;
	++*(int *)userdata;
	return 0;
}

/* No tgtd on the control port: the create fails naming it, quickly, and
 * leaves no record and no image (a later tgtd must not grow a volume
 * nobody created). */
static void test_create_without_tgtd(void **state)
{
	(void)state;
	struct vd_test_driver *t = driver_new(
		"{\"backends\": {\"pool\": {\"provisioner\": \"tgt\", \"portal\": \"127.0.0.1\", "
		"\"control_port\": 32001}}}");
	json_t *spec = spec_of(t, "{\"size\": \"32Mi\"}");
	json_t *data = NULL;
	struct vd_err err = VD_ERR_INIT;
	double t0 = now_ms();
	int r = t->ops->create(t->priv, "v1", spec, &data, &err);
	assert_true(r < 0);
	assert_true(now_ms() - t0 < 30000);
	if (!strstr(err.msg, "tgtd") || !strstr(err.msg, "32001"))
		fail_msg("create without tgtd: '%s' should name tgtd and its control port", err.msg);
	char img[PATH_MAX];
	snprintf(img, sizeof(img), "%s/iscsi-pool/pool/lun-1.img", t->dir);
	struct stat st;
	assert_int_equal(stat(img, &st), -1);
	int seen = 0;
	assert_int_equal(t->ops->discover(t->priv, count_one, &seen, &err), 0);
	assert_int_equal(seen, 0);
	json_decref(spec);
	vd_test_driver_free(t);
}

/* A portal where nothing listens: stage and probe fail within the bound. */
static void test_dead_portal_bounded(void **state)
{
	(void)state;
	struct vd_test_driver *t = driver_new(
		"{\"backends\": {\"s\": {\"provisioner\": \"static\", \"portal\": \"" DEAD_PORTAL "\", "
		"\"timeout_ms\": 1000, \"targets\": [{\"target\": \"iqn.2026-01.io.volumed:x\", "
		"\"luns\": [1]}]}}}");
	json_t *spec = spec_of(t, "{\"size\": \"32Mi\"}");
	json_t *data = vd_iscsi_location_new(DEAD_PORTAL, "iqn.2026-01.io.volumed:x", 1);
	json_t *out = NULL, *status = json_object();
	struct vd_err err = VD_ERR_INIT;
	double t0 = now_ms();
	assert_true(t->ops->create(t->priv, "v1", spec, &out, &err) < 0);
	assert_true(now_ms() - t0 < 10000);
	t0 = now_ms();
	assert_true(t->ops->probe(t->priv, "v1", spec, data, status, &err) < 0);
	assert_true(now_ms() - t0 < 10000);
	json_decref(status);
	json_decref(data);
	json_decref(spec);
	vd_test_driver_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_init_refusals),
		cmocka_unit_test(test_pure_ops),
		cmocka_unit_test(test_create_without_tgtd),
		cmocka_unit_test(test_dead_portal_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
