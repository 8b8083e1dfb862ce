/* test_config.c — defaults, config file keys, environment and flags; the
 * cluster keys (listen, TLS files, token file, controller URL, CA, lease
 * and move wait), the rules between them and the token file's checks. */
#include <errno.h>
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
	assert_int_equal(cfg.log_format, VD_LOG_TEXT);
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
	expect_rejected("{\"log_format\":\"xml\"}", "text, json");
	expect_rejected("{\"log_format\":1}", "log_format");
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

/* An empty VOLUMED_CONFIG or --config "" names no file (a managed plugin's
 * settable variable cannot be absent, only empty); a missing file fails. */
static void test_empty_config_path(void **state)
{
	(void)state;
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	setenv("VOLUMED_CONFIG", "", 1);
	char *argv[] = { "volumed", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 1, argv, &err), 0);
	assert_string_equal(cfg.state_dir, VD_DEFAULT_STATE_DIR);
	vd_config_clear(&cfg);
	char *argv2[] = { "volumed", "--config", "", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv2, &err), 0);
	vd_config_clear(&cfg);
	setenv("VOLUMED_CONFIG", "/nonexistent/volumed.json", 1);
	assert_int_equal(vd_config_from_args(&cfg, 1, argv, &err), -EINVAL);
	assert_non_null(strstr(vd_err_msg(&err), "/nonexistent/volumed.json"));
	vd_config_clear(&cfg);
	unsetenv("VOLUMED_CONFIG");
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

/* log_format from each layer: file, then environment, then flag. */
static void test_log_format(void **state)
{
	(void)state;
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	vd_config_defaults(&cfg);
	assert_int_equal(load_json(&cfg, "{\"log_format\":\"json\"}", &err), 0);
	assert_int_equal(cfg.log_format, VD_LOG_JSON);
	vd_config_clear(&cfg);
	char *argv1[] = { "volumed", NULL };
	setenv("VOLUMED_LOG_FORMAT", "json", 1);
	assert_int_equal(vd_config_from_args(&cfg, 1, argv1, &err), 0);
	assert_int_equal(cfg.log_format, VD_LOG_JSON);
	vd_config_clear(&cfg);
	char *argv2[] = { "volumed", "--log-format", "text", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv2, &err), 0);
	assert_int_equal(cfg.log_format, VD_LOG_TEXT);   /* the flag wins */
	vd_config_clear(&cfg);
	setenv("VOLUMED_LOG_FORMAT", "yaml", 1);
	assert_int_equal(vd_config_from_args(&cfg, 1, argv1, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "VOLUMED_LOG_FORMAT log_format"));
	vd_config_clear(&cfg);
	unsetenv("VOLUMED_LOG_FORMAT");
	char *argv3[] = { "volumed", "--log-format", "Json", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv3, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "flag log_format: 'Json' is not one of text, json"));
	vd_config_clear(&cfg);
}

/* ---- cluster keys ---- */

#define TOKEN "0123456789abcdef-token"

static void test_cluster_defaults(void **state)
{
	(void)state;
	struct vd_config cfg;
	vd_config_defaults(&cfg);
	assert_string_equal(cfg.listen, "");
	assert_string_equal(cfg.tls_cert, "");
	assert_string_equal(cfg.tls_key, "");
	assert_string_equal(cfg.token_file, "");
	assert_string_equal(cfg.controller_url, "");
	assert_string_equal(cfg.ca_file, "");
	assert_null(cfg.token);
	assert_int_equal(cfg.lease_ms, 10000);
	assert_int_equal(cfg.move_wait_ms, 30000);
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_config_finish(&cfg, &err), 0);   /* nothing asked: fine */
	assert_null(cfg.token);
	vd_config_clear(&cfg);
	assert_null(cfg.listen);
}

static void test_cluster_json(void **state)
{
	(void)state;
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	vd_config_defaults(&cfg);
	int r = load_json(&cfg, "{\"listen\":\"0.0.0.0:8443\",\"tls_cert\":\"/etc/v/c.pem\","
			  "\"tls_key\":\"/etc/v/k.pem\",\"token_file\":\"/etc/v/token\","
			  "\"controller_url\":\"https://ctl.example:8443/\",\"ca_file\":\"/etc/v/ca.pem\","
			  "\"lease_ms\":1000,\"move_wait_ms\":0}", &err);
	if (r < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.listen, "0.0.0.0:8443");
	assert_string_equal(cfg.tls_cert, "/etc/v/c.pem");
	assert_string_equal(cfg.tls_key, "/etc/v/k.pem");
	assert_string_equal(cfg.token_file, "/etc/v/token");
	assert_string_equal(cfg.controller_url, "https://ctl.example:8443");   /* '/' dropped */
	assert_string_equal(cfg.ca_file, "/etc/v/ca.pem");
	assert_int_equal(cfg.lease_ms, 1000);
	assert_int_equal(cfg.move_wait_ms, 0);
	assert_int_equal(load_json(&cfg, "{\"listen\":\"[::]:1\",\"lease_ms\":600000,"
				   "\"move_wait_ms\":600000,\"controller_url\":\"https://[fd00::1]:443\"}",
				   &err), 0);
	assert_string_equal(cfg.listen, "[::]:1");
	assert_string_equal(cfg.controller_url, "https://[fd00::1]:443");
	assert_int_equal(cfg.lease_ms, 600000);
	assert_int_equal(cfg.move_wait_ms, 600000);
	/* "" turns them off again. */
	assert_int_equal(load_json(&cfg, "{\"listen\":\"\",\"controller_url\":\"\"}", &err), 0);
	assert_string_equal(cfg.listen, "");
	assert_string_equal(cfg.controller_url, "");
	vd_config_clear(&cfg);
}

static void test_cluster_json_rejects(void **state)
{
	(void)state;
	expect_rejected("{\"listen\":\"8443\"}", "listen");
	expect_rejected("{\"listen\":\"8443\"}", "HOST:PORT");
	expect_rejected("{\"listen\":\"127.0.0.1:0\"}", "port 0");
	expect_rejected("{\"listen\":\"127.0.0.1:99999\"}", "0..65535");
	expect_rejected("{\"listen\":\"::1:8443\"}", "brackets");
	expect_rejected("{\"listen\":7}", "listen: expected a string");
	expect_rejected("{\"tls_cert\":\"cert.pem\"}", "tls_cert: 'cert.pem' is not an absolute");
	expect_rejected("{\"tls_key\":\"key.pem\"}", "tls_key");
	expect_rejected("{\"token_file\":\"token\"}", "token_file");
	expect_rejected("{\"ca_file\":\"ca.pem\"}", "ca_file");
	expect_rejected("{\"controller_url\":\"http://ctl:8443\"}", "only https:// is accepted");
	expect_rejected("{\"controller_url\":\"http://ctl:8443\"}", "controller_url");
	expect_rejected("{\"controller_url\":\"ctl:8443\"}", "not https://HOST:PORT");
	expect_rejected("{\"controller_url\":\"https://ctl\"}", "controller_url");
	expect_rejected("{\"controller_url\":\"https://ctl:8443/v1\"}", "no path");
	expect_rejected("{\"controller_url\":\"https://u@ctl:8443\"}", "no path");
	expect_rejected("{\"controller_url\":\"https://ctl:0\"}", "port 0");
	expect_rejected("{\"lease_ms\":999}", "lease_ms: 999 is out of range; allowed 1000..600000");
	expect_rejected("{\"lease_ms\":600001}", "lease_ms");
	expect_rejected("{\"lease_ms\":\"5000\"}", "lease_ms: expected a whole number");
	expect_rejected("{\"lease_ms\":1.5}", "lease_ms");
	expect_rejected("{\"move_wait_ms\":-1}", "move_wait_ms: -1 is out of range; allowed 0..600000");
	expect_rejected("{\"move_wait_ms\":99999999999}", "move_wait_ms");
	expect_rejected("{\"move_wait_ms\":null}", "move_wait_ms");
	expect_rejected("{\"bogus\":1}", "move_wait_ms");   /* the allowed keys are listed */
}

/* A temporary file with text and mode; path gets its name. */
static void temp_file(char *path, size_t len, const char *text, mode_t mode)
{
	snprintf(path, len, "/tmp/volumed-token-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_cluster_env_and_flags(void **state)
{
	(void)state;
	char token[64], cert[64], key[64];
	temp_file(token, sizeof(token), TOKEN "\n", 0600);
	temp_file(cert, sizeof(cert), "pem", 0600);
	temp_file(key, sizeof(key), "pem", 0600);
	setenv("VOLUMED_LISTEN", "127.0.0.1:1111", 1);
	setenv("VOLUMED_TLS_CERT", cert, 1);
	setenv("VOLUMED_TLS_KEY", key, 1);
	setenv("VOLUMED_TOKEN_FILE", token, 1);
	setenv("VOLUMED_CONTROLLER_URL", "https://env:1", 1);
	setenv("VOLUMED_CA_FILE", cert, 1);
	setenv("VOLUMED_LEASE_MS", "2000", 1);
	setenv("VOLUMED_MOVE_WAIT_MS", "3000", 1);
	char *argv[] = { "volumed", "--listen", "[::1]:2222", "--lease-ms", "4000",
			 "--controller-url=https://flag:2", NULL };
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_config_from_args(&cfg, 6, argv, &err);
	if (r != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(cfg.listen, "[::1]:2222");          /* flag over env */
	assert_string_equal(cfg.controller_url, "https://flag:2");
	assert_int_equal(cfg.lease_ms, 4000);
	assert_int_equal(cfg.move_wait_ms, 3000);               /* env */
	assert_string_equal(cfg.tls_cert, cert);
	assert_string_equal(cfg.tls_key, key);
	assert_string_equal(cfg.ca_file, cert);
	assert_string_equal(cfg.token_file, token);
	assert_string_equal(cfg.token, TOKEN);                  /* newline stripped */
	vd_config_clear(&cfg);
	assert_null(cfg.token);

	/* Bad values from the environment and flags name the key and the range. */
	setenv("VOLUMED_LEASE_MS", "soon", 1);
	r = vd_config_from_args(&cfg, 1, argv, &err);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, "VOLUMED_LEASE_MS lease_ms: 'soon' is not a whole number"));
	vd_config_clear(&cfg);
	setenv("VOLUMED_LEASE_MS", "2000", 1);
	char *argv2[] = { "volumed", "--move-wait-ms", "700000", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv2, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "flag move_wait_ms: 700000 is out of range; allowed 0..600000"));
	vd_config_clear(&cfg);
	char *argv3[] = { "volumed", "--lease-ms", "1e4", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv3, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "lease_ms"));
	vd_config_clear(&cfg);
	char *argv4[] = { "volumed", "--controller-url", "http://ctl:8443", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 3, argv4, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "flag controller_url"));
	assert_non_null(strstr(err.msg, "https://"));
	vd_config_clear(&cfg);

	const char *vars[] = { "VOLUMED_LISTEN", "VOLUMED_TLS_CERT", "VOLUMED_TLS_KEY",
			       "VOLUMED_TOKEN_FILE", "VOLUMED_CONTROLLER_URL", "VOLUMED_CA_FILE",
			       "VOLUMED_LEASE_MS", "VOLUMED_MOVE_WAIT_MS" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	unlink(token);
	unlink(cert);
	unlink(key);
}

/* vd_config_finish on cfg fails with -EINVAL and a message holding frag,
 * never the token. */
static void expect_finish_fails(struct vd_config *cfg, const char *frag)
{
	struct vd_err err = VD_ERR_INIT;
	int r = vd_config_finish(cfg, &err);
	if (r >= 0 || !strstr(err.msg, frag))
		fail_msg("finish: %d \"%s\" (want \"%s\")", r, err.msg, frag);
	assert_null(strstr(err.msg, TOKEN));
}

static void set(char **member, const char *value)
{
	free(*member);
	*member = strdup(value);
	assert_non_null(*member);
}

static void test_cluster_rules(void **state)
{
	(void)state;
	char token[64], cert[64];
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	temp_file(token, sizeof(token), TOKEN, 0600);
	temp_file(cert, sizeof(cert), "pem", 0600);
	vd_config_defaults(&cfg);

	set(&cfg.listen, "127.0.0.1:8443");
	expect_finish_fails(&cfg, "listen 127.0.0.1:8443 needs tls_cert and tls_key");
	set(&cfg.tls_cert, cert);
	expect_finish_fails(&cfg, "tls_key");
	set(&cfg.tls_key, cert);
	expect_finish_fails(&cfg, "needs token_file");
	set(&cfg.token_file, token);
	assert_int_equal(vd_config_finish(&cfg, &err), 0);
	assert_string_equal(cfg.token, TOKEN);
	assert_int_equal(vd_config_finish(&cfg, &err), 0);      /* again: no leak */

	set(&cfg.tls_key, "/nonexistent/key.pem");
	expect_finish_fails(&cfg, "tls_key /nonexistent/key.pem: No such file");
	set(&cfg.tls_key, cert);
	set(&cfg.ca_file, "/nonexistent/ca.pem");
	expect_finish_fails(&cfg, "ca_file");
	set(&cfg.ca_file, "");

	set(&cfg.listen, "");
	set(&cfg.token_file, "");
	set(&cfg.controller_url, "https://ctl:8443");
	expect_finish_fails(&cfg, "controller_url https://ctl:8443 needs token_file");
	set(&cfg.token_file, token);
	assert_int_equal(vd_config_finish(&cfg, &err), 0);
	vd_config_clear(&cfg);
	unlink(token);
	unlink(cert);
}

/* vd_config_read_token fails with -EINVAL (or code) and frag. */
static void expect_token_refused(const char *text, int code, const char *frag)
{
	char path[64];
	char *token = NULL;
	struct vd_err err = VD_ERR_INIT;
	temp_file(path, sizeof(path), text, 0600);
	int r = vd_config_read_token(path, &token, NULL, &err);
	if (r != code || !strstr(err.msg, frag) || !strstr(err.msg, path))
		fail_msg("token \"%s\": %d \"%s\" (want %d \"%s\")", text, r, err.msg, code, frag);
	assert_null(token);
	if (strlen(text) > 4)
		assert_null(strstr(err.msg, text));
	unlink(path);
}

static void test_token_file(void **state)
{
	(void)state;
	char path[64], big[5000];
	char *token = NULL;
	int loose = -1;
	struct vd_err err = VD_ERR_INIT;

	temp_file(path, sizeof(path), TOKEN "\r\n\n", 0600);
	assert_int_equal(vd_config_read_token(path, &token, &loose, &err), 0);
	assert_string_equal(token, TOKEN);
	assert_int_equal(loose, 0);
	free(token);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(vd_config_read_token(path, &token, &loose, &err), 0);
	assert_int_equal(loose, 1);
	free(token);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(vd_config_read_token(path, &token, &loose, &err), 0);
	assert_int_equal(loose, 1);
	free(token);
	unlink(path);

	/* Exactly 16 characters is enough. */
	temp_file(path, sizeof(path), "0123456789abcdef", 0600);
	assert_int_equal(vd_config_read_token(path, &token, NULL, &err), 0);
	assert_string_equal(token, "0123456789abcdef");
	free(token);
	unlink(path);

	expect_token_refused("", -EINVAL, "empty");
	expect_token_refused("\n\n", -EINVAL, "empty");
	expect_token_refused("0123456789abcde\n", -EINVAL, "15 characters; at least 16");
	expect_token_refused("0123456789 abcdef-xyz", -EINVAL, "character 11");
	expect_token_refused("0123456789abcdef\nsecond-line-here", -EINVAL, "one line");
	expect_token_refused("0123456789abcdef\t", -EINVAL, "printable ASCII");
	expect_token_refused("0123456789abcdef\xc3\xa9", -EINVAL, "not ASCII");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_token_refused(big, -EINVAL, "larger than 4096 bytes");
	assert_int_equal(vd_config_read_token("/nonexistent/token", &token, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "token_file /nonexistent/token"));
	assert_int_equal(vd_config_read_token("/tmp", &token, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

/* Neither the usage text nor an error ever holds the token. */
static void test_token_never_shown(void **state)
{
	(void)state;
	char token[64];
	struct vd_config cfg;
	struct vd_err err = VD_ERR_INIT;
	temp_file(token, sizeof(token), TOKEN, 0644);
	char *argv[] = { "volumed", "--token-file", token, "--listen", "127.0.0.1:1", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 5, argv, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "tls_cert"));
	assert_null(strstr(err.msg, TOKEN));
	vd_config_clear(&cfg);
	char *argv2[] = { "volumed", "--token-file", token, "--lease-ms", "1", NULL };
	assert_int_equal(vd_config_from_args(&cfg, 5, argv2, &err), -EINVAL);
	assert_null(strstr(err.msg, TOKEN));
	vd_config_clear(&cfg);
	unlink(token);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),   cmocka_unit_test(test_json_keys),
		cmocka_unit_test(test_json_rejects), cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_bad_flags), cmocka_unit_test(test_log_format),
		cmocka_unit_test(test_empty_config_path),
		cmocka_unit_test(test_cluster_defaults), cmocka_unit_test(test_cluster_json),
		cmocka_unit_test(test_cluster_json_rejects),
		cmocka_unit_test(test_cluster_env_and_flags),
		cmocka_unit_test(test_cluster_rules), cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_token_never_shown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
