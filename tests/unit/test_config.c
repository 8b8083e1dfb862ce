/* test_config.c — defaults, config file keys, environment and flags. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../volumed/config.h"

static int load_json(struct vd_config *cfg, const char *text, struct vd_err *err)
{
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	int r = vd_config_apply_json(cfg, doc, err);
	json_decref(doc);
	return r;
}

static void test_defaults(void **state)
{
	(void)state;
	struct vd_config cfg;
	vd_config_defaults(&cfg);
	assert_string_equal(cfg.state_dir, VD_DEFAULT_STATE_DIR);
	assert_string_equal(cfg.docker_socket, VD_DEFAULT_DOCKER_SOCKET);
	assert_string_equal(cfg.api_socket, VD_DEFAULT_API_SOCKET);
	assert_string_equal(cfg.default_driver, "local");
	assert_true(cfg.node_id[0] != '\0');
	vd_config_clear(&cfg);
}

static void test_json_keys(void **state)
{
	(void)state;
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	vd_config_defaults(&cfg);
	assert_int_equal(load_json(&cfg, "{\"state_dir\":\"/srv/v\",\"node_id\":\"n1\","
				   "\"log_level\":\"debug\",\"docker_socket\":\"\","
				   "\"drivers\":{\"local\":{\"default_fstype\":\"xfs\"}}}", &err), 0);
	assert_string_equal(cfg.state_dir, "/srv/v");
	assert_string_equal(cfg.node_id, "n1");
	assert_string_equal(cfg.docker_socket, "");
	assert_int_equal(cfg.log_level, VD_LOG_DEBUG);
	assert_non_null(json_object_get(cfg.drivers, "local"));
	vd_config_clear(&cfg);
}

static void expect_rejected(const char *text, const char *needle)
{
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	vd_config_defaults(&cfg);
	assert_int_equal(load_json(&cfg, text, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' lacks '%s'", err.msg, needle);
	vd_config_clear(&cfg);
}

static void test_json_rejects(void **state)
{
	(void)state;
	expect_rejected("{\"state-dir\":\"/x\"}", "state-dir");
	expect_rejected("{\"state_dir\":\"relative\"}", "absolute");
	expect_rejected("{\"state_dir\":\"\"}", "state_dir");
	expect_rejected("{\"state_dir\":7}", "state_dir");
	expect_rejected("{\"log_level\":\"loud\"}", "log_level");
	expect_rejected("{\"node_id\":\"../n\"}", "node_id");
	expect_rejected("{\"drivers\":[]}", "drivers");
	expect_rejected("[]", "object");
}

static void test_precedence(void **state)
{
	(void)state;
	char path[] = "/tmp/volumed-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "{\"state_dir\":\"/from/file\",\"node_id\":\"filenode\","
			   "\"api_socket\":\"/file/api.sock\"}";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("VOLUMED_NODE_ID", "envnode", 1);
	char *argv[] = { "volumed", "--config", path, "--state-dir", "/from/flag", NULL };
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_config_from_args(&cfg, 5, argv, &err), 0);
	assert_string_equal(cfg.state_dir, "/from/flag");
	assert_string_equal(cfg.node_id, "envnode");
	assert_string_equal(cfg.api_socket, "/file/api.sock");
	vd_config_clear(&cfg);
	unsetenv("VOLUMED_NODE_ID");
	unlink(path);
}

static void test_bad_flags(void **state)
{
	(void)state;
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	char *argv1[] = { "volumed", "--bogus", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 2, argv1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--bogus"));
	vd_config_clear(&cfg);
	char *argv2[] = { "volumed", "--log-level", "chatty", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "log_level"));
	vd_config_clear(&cfg);
	char *argv3[] = { "volumed", "--config", "/nonexistent/volumed.json", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv3, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "/nonexistent/volumed.json"));
	vd_config_clear(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),   cmocka_unit_test(test_json_keys),
		cmocka_unit_test(test_json_rejects), cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_bad_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
