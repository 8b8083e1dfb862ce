/* test_apiclient.c — the API client against the real stack: the http
 * server and the REST API handler on a temporary unix socket over a real
 * core (directory volumes). Every call, the server's errors as errno +
 * message, names checked before any request, and transport failures
 * (no server, a server that never answers); and the same over HTTPS on TCP
 * with the bearer token: the right one works, a wrong one is -EKEYREJECTED
 * "refused the token", an unknown CA fails verification. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../volumed/api.h"
#include "../../volumed/apiclient.h"
#include "../support/fixture.h"
#include "../support/tls_test.h"

struct fixture {
	struct vd_test_core t;
	char sock[128];
	struct vd_http_server *server;
	struct vd_api_client *client;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct vd_err err = VD_ERR_INIT;
	assert_non_null(f);
	assert_int_equal(vd_test_core_open(&f->t, "vd-apiclient", "test"), 0);
	snprintf(f->sock, sizeof(f->sock), "%s/api.sock", f->t.dir);
	if (vd_http_listen_unix(f->sock, 0600, VD_API_MAX_BODY, vd_api_handle, f->t.core,
				&f->server, &err) < 0)
		fail_msg("vd_http_listen_unix: %s", err.msg);
	struct vd_api_client_config ccfg = { .unix_socket = f->sock };
	if (vd_api_client_new(&ccfg, &f->client, &err) < 0)
		fail_msg("vd_api_client_new: %s", err.msg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vd_api_client_free(f->client);
	vd_http_stop(f->server);
	vd_test_core_close(&f->t);
	free(f);
	return 0;
}

#define CLIENT(state) (((struct fixture *)*(state))->client)

/* A call expected to succeed. */
#define OK(call) do { \
		struct vd_err err_ = VD_ERR_INIT; \
		int r_ = (call); \
		if (r_ < 0) \
			fail_msg("%s: %d %s", #call, r_, err_.msg); \
	} while (0)

/* A call expected to fail with code and a message containing frag; the
 * call's err argument must be &err_. */
#define FAILS(code, frag, call) do { \
		struct vd_err err_ = VD_ERR_INIT; \
		int r_ = (call); \
		if (r_ != (code) || !strstr(err_.msg, frag)) \
			fail_msg("%s: %d \"%s\" (want %d \"%s\")", #call, r_, err_.msg, \
				 (code), frag); \
	} while (0)

static void test_status(void **state)
{
	json_t *status = NULL;
	OK(vd_api_status(CLIENT(state), &status, &err_));
	assert_string_equal(json_string_value(json_object_get(status, "node_id")), "test");
	json_decref(status);
	OK(vd_api_status(CLIENT(state), NULL, &err_));
}

static void test_volume_lifecycle(void **state)
{
	struct vd_api_client *c = CLIENT(state);
	json_t *view = NULL, *reply = NULL;
	OK(vd_api_create(c, "v1", NULL, NULL, &view, &err_));
	assert_string_equal(json_string_value(json_object_get(view, "name")), "v1");
	json_decref(view);
	OK(vd_api_create(c, "v1", "local", NULL, NULL, &err_));   /* idempotent */
	json_t *opts = json_pack("{s:s}", "size", "64Mi");
	FAILS(-EEXIST, "", vd_api_create(c, "v1", NULL, opts, NULL, &err_));
	json_decref(opts);

	OK(vd_api_list(c, &reply, &err_));
	assert_int_equal(json_array_size(json_object_get(reply, "volumes")), 1);
	json_decref(reply);

	OK(vd_api_mount(c, "v1", NULL, &reply, &err_));
	const char *mp = json_string_value(json_object_get(reply, "mountpoint"));
	assert_non_null(mp);
	assert_int_equal(access(mp, F_OK), 0);
	json_decref(reply);
	OK(vd_api_mount(c, "v1", "job-7", NULL, &err_));
	OK(vd_api_inspect(c, "v1", &view, &err_));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(view, "status"),
							    "refs")), 2);
	json_decref(view);

	FAILS(-EBUSY, "", vd_api_remove(c, "v1", NULL, &err_));
	OK(vd_api_unmount(c, "v1", "job-7", NULL, &err_));
	OK(vd_api_unmount(c, "v1", NULL, &reply, &err_));
	assert_int_equal(json_object_size(reply), 0);
	json_decref(reply);
	OK(vd_api_remove(c, "v1", NULL, &err_));
	FAILS(-ENOENT, "v1", vd_api_inspect(c, "v1", NULL, &err_));
}

static void test_server_errors(void **state)
{
	struct vd_api_client *c = CLIENT(state);
	json_t *bad = json_pack("{s:i}", "size", 5);
	FAILS(-EINVAL, "options.size", vd_api_create(c, "v2", NULL, bad, NULL, &err_));
	json_decref(bad);
	FAILS(-ENOENT, "no route", vd_api_request(c, "GET", "/v1/nothing", NULL, NULL, &err_));
	FAILS(-EOPNOTSUPP, "allowed: GET, POST",
	      vd_api_request(c, "PUT", "/v1/volumes", NULL, NULL, &err_));
	FAILS(-EINVAL, "'/'", vd_api_request(c, "GET", "v1/status", NULL, NULL, &err_));

	/* A body over the server's limit is 413, "too-large". */
	char *big = malloc(VD_API_MAX_BODY + 1);
	assert_non_null(big);
	memset(big, 'x', VD_API_MAX_BODY);
	big[VD_API_MAX_BODY] = '\0';
	json_t *opts = json_pack("{s:s}", "size", big);
	FAILS(-EFBIG, "larger", vd_api_create(c, "v3", NULL, opts, NULL, &err_));
	json_decref(opts);
	free(big);
}

/* Bad names never reach the server: "../status" would be a path. */
static void test_names_checked(void **state)
{
	struct vd_api_client *c = CLIENT(state);
	FAILS(-EINVAL, "'.'", vd_api_inspect(c, "../status", NULL, &err_));
	FAILS(-EINVAL, "'/'", vd_api_mount(c, "a/b", NULL, NULL, &err_));
	FAILS(-EINVAL, "empty", vd_api_create(c, "", NULL, NULL, NULL, &err_));
	FAILS(-EINVAL, "empty", vd_api_remove(c, NULL, NULL, &err_));
}

static void test_no_server(void **state)
{
	(void)state;
	struct vd_api_client *c;
	struct vd_err err = VD_ERR_INIT;
	struct vd_api_client_config cfg = { .unix_socket = "/nonexistent/volumed.sock" };
	assert_int_equal(vd_api_client_new(&cfg, &c, &err), 0);
	FAILS(-ECONNREFUSED, "cannot reach volumed at /nonexistent/volumed.sock: ",
	      vd_api_status(c, NULL, &err_));
	vd_api_client_free(c);
	vd_api_client_free(NULL);
}

/* A socket that accepts connections but never answers. */
static void test_timeout(void **state)
{
	struct fixture *f = *state;
	char path[160];
	snprintf(path, sizeof(path), "%s/mute.sock", f->t.dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);

	struct vd_api_client *c;
	struct vd_api_client_config cfg = { .unix_socket = path, .timeout_ms = 200 };
	assert_int_equal(vd_api_client_new(&cfg, &c, NULL), 0);
	FAILS(-ETIMEDOUT, "did not answer within 200 ms", vd_api_status(c, NULL, &err_));
	vd_api_client_free(c);
	close(fd);
}

#define TOKEN "apiclient-test-token-0123456789"

/* The same server over HTTPS on 127.0.0.1; url is its base URL. */
static struct vd_http_server *https_start(struct fixture *f, struct vd_test_tls *tls,
					  char *url, size_t len)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_http_server *server = NULL;
	assert_int_equal(vd_test_tls_write(f->t.dir, tls), 0);
	if (vd_http_listen_tcp("127.0.0.1:0", tls->cert, tls->key, TOKEN, VD_API_MAX_BODY,
			       vd_api_handle, f->t.core, &server, &err) < 0)
		fail_msg("vd_http_listen_tcp: %s", err.msg);
	snprintf(url, len, "https://127.0.0.1:%u", vd_http_port(server));
	return server;
}

static struct vd_api_client *https_client(const char *url, const char *token, const char *ca)
{
	struct vd_api_client *c = NULL;
	struct vd_err err = VD_ERR_INIT;
	struct vd_api_client_config cfg = { .base_url = url, .bearer_token = token, .ca_file = ca };
	if (vd_api_client_new(&cfg, &c, &err) < 0)
		fail_msg("vd_api_client_new: %s", err.msg);
	return c;
}

static void test_https(void **state)
{
	struct fixture *f = *state;
	struct vd_test_tls tls;
	char url[64];
	json_t *reply = NULL;
	struct vd_http_server *server = https_start(f, &tls, url, sizeof(url));

	struct vd_api_client *c = https_client(url, TOKEN, tls.ca);
	OK(vd_api_create(c, "tv1", NULL, NULL, NULL, &err_));
	OK(vd_api_list(c, &reply, &err_));
	assert_int_equal(json_array_size(json_object_get(reply, "volumes")), 1);
	json_decref(reply);
	OK(vd_api_inspect(c, "tv1", NULL, &err_));
	FAILS(-ENOENT, "nosuch", vd_api_inspect(c, "nosuch", NULL, &err_));
	vd_api_client_free(c);

	/* A wrong token, none, and a prefix of the right one: refused, and
	 * nothing is created. */
	char want[128];
	snprintf(want, sizeof(want), "volumed at %s refused the token: missing or invalid "
		 "bearer token", url);
	const char *bad[] = { "wrong-token-wrong-token-wrong-tok", NULL, "apiclient-test" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = https_client(url, bad[i], tls.ca);
		FAILS(-EKEYREJECTED, want, vd_api_create(c, "tv2", NULL, NULL, NULL, &err_));
		FAILS(-EKEYREJECTED, want, vd_api_list(c, NULL, &err_));
		vd_api_client_free(c);
	}
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_core_inspect(f->t.core, "tv2", &reply, &err), -ENOENT);

	/* Without our CA (the system's), the certificate does not verify. */
	c = https_client(url, TOKEN, NULL);
	FAILS(-EKEYREJECTED, "cannot verify the certificate of volumed at",
	      vd_api_list(c, NULL, &err_));
	vd_api_client_free(c);
	/* A CA file that does not exist. */
	c = https_client(url, TOKEN, "/nonexistent/ca.pem");
	FAILS(-EINVAL, "/nonexistent/ca.pem", vd_api_list(c, NULL, &err_));
	vd_api_client_free(c);
	/* Plain http:// to the TLS port gets no HTTP answer. */
	char plain[64];
	snprintf(plain, sizeof(plain), "http://%s", url + strlen("https://"));
	c = https_client(plain, TOKEN, NULL);
	FAILS(-EIO, "", vd_api_list(c, NULL, &err_));
	vd_api_client_free(c);

	vd_http_stop(server);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_status),
		T(test_volume_lifecycle),
		T(test_server_errors),
		T(test_names_checked),
		cmocka_unit_test(test_no_server),
		T(test_timeout),
		T(test_https),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
