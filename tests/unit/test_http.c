/* test_http.c — the unix-socket HTTP server: body delivery, the body
 * limit, stale and live sockets, the socket's mode and removal, and
 * handlers running in parallel; the HTTPS server on TCP: the bearer token
 * check (401 without calling the handler), TLS, its start-up errors; and
 * the pure helpers (host:port, the token comparison). A libcurl client
 * talks to a small echo handler. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../../volumed/http.h"
#include "../support/fixture.h"
#include "../support/tls_test.h"

#define MAX_BODY 64

struct fixture {
	char dir[64];
	char sock[128];
	struct vd_http_server *server;
};

/* Echoes the request; answers 413 itself when the body was too large. */
static void echo_handler(void *userdata, const struct vd_http_request *req,
			 struct vd_http_response *resp)
{
	(void)userdata;
	if (req->too_large) {
		vd_http_reply_json(resp, 413, json_pack("{s:s,s:I}", "error", "too large",
							"limit", (json_int_t)req->max_body));
		return;
	}
	vd_http_reply_json(resp, 200, json_pack("{s:s,s:s,s:s%}", "method", req->method,
						"path", req->path, "body", req->body,
						req->body_len));
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vd_test_mkdtemp(f->dir, sizeof(f->dir), "vd-http"), 0);
	snprintf(f->sock, sizeof(f->sock), "%s/run/sub/test.sock", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vd_http_stop(f->server);
	vd_test_rmtree(f->dir);
	free(f);
	return 0;
}

static void start(struct fixture *f, size_t max_body, vd_http_handler handler)
{
	struct vd_err err = VD_ERR_INIT;
	int r = vd_http_listen_unix(f->sock, 0660, max_body, handler, NULL, &f->server, &err);
	if (r < 0)
		fail_msg("listen: %d %s", r, err.msg);
}

struct buf {
	char data[4096];
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	struct buf *b = userdata;
	size_t len = size * n;
	if (len > sizeof(b->data) - 1 - b->len)
		len = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return size * n;
}

/* One request over the socket; returns the status, fills out. */
static long request(const char *sock, const char *method, const char *url,
		    const char *body, size_t body_len, struct buf *out)
{
	CURL *c = curl_easy_init();
	assert_non_null(c);
	out->len = 0;
	out->data[0] = '\0';
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK)
		fail_msg("curl %s %s: %s", method, url, curl_easy_strerror(rc));
	return status;
}

static json_t *parse(const struct buf *b)
{
	json_t *j = json_loadb(b->data, b->len, 0, NULL);
	if (!j)
		fail_msg("not JSON: %s", b->data);
	return j;
}

static void test_body_delivery(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	start(f, MAX_BODY, echo_handler);

	assert_int_equal(request(f->sock, "POST", "http://localhost/Some.Path?x=1&y=2",
				 "{\"Name\":\"v\"}", 12, &out), 200);
	json_t *j = parse(&out);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/Some.Path");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"Name\":\"v\"}");
	json_decref(j);

	/* No body: "" */
	assert_int_equal(request(f->sock, "GET", "http://localhost/v1/status", NULL, 0, &out), 200);
	j = parse(&out);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "GET");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "");
	json_decref(j);

	/* Exactly the limit is accepted. */
	char body[MAX_BODY + 1];
	memset(body, 'b', MAX_BODY);
	body[MAX_BODY] = '\0';
	assert_int_equal(request(f->sock, "POST", "http://localhost/x", body, MAX_BODY, &out), 200);
	j = parse(&out);
	assert_string_equal(json_string_value(json_object_get(j, "body")), body);
	json_decref(j);
}

static void test_keepalive_many(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	start(f, MAX_BODY, echo_handler);
	for (int i = 0; i < 50; i++)
		assert_int_equal(request(f->sock, "POST", "http://localhost/n", "{}", 2, &out), 200);
}

static void test_too_large(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	char body[4096];
	start(f, MAX_BODY, echo_handler);

	memset(body, 'x', sizeof(body));
	/* Content-Length over the limit, small and large. */
	assert_int_equal(request(f->sock, "POST", "http://localhost/x", body, MAX_BODY + 1, &out), 413);
	json_t *j = parse(&out);
	assert_int_equal(json_integer_value(json_object_get(j, "limit")), MAX_BODY);
	json_decref(j);
	assert_int_equal(request(f->sock, "POST", "http://localhost/x", body, sizeof(body), &out), 413);
	assert_null(strstr(out.data, "xxxx"));
	/* The server still serves afterwards. */
	assert_int_equal(request(f->sock, "POST", "http://localhost/x", "{}", 2, &out), 200);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void write_all(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len) {
		ssize_t n = write(fd, s, len);
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* A chunked body has no Content-Length: it is dropped while it streams. */
static void test_too_large_chunked(void **state)
{
	struct fixture *f = *state;
	char chunk[64 + 16], resp[1024];
	start(f, MAX_BODY, echo_handler);

	int fd = raw_connect(f->sock);
	write_all(fd, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 4; i++) {
		snprintf(chunk, sizeof(chunk), "20\r\n%032d\r\n", i);
		write_all(fd, chunk);
	}
	write_all(fd, "0\r\n\r\n");
	ssize_t n = read(fd, resp, sizeof(resp) - 1);
	assert_true(n > 12);
	resp[n] = '\0';
	assert_memory_equal(resp, "HTTP/1.1 413", 12);
	close(fd);
}

static void test_socket_mode_and_stop(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char parent[128];
	int fds = count_fds();

	start(f, MAX_BODY, echo_handler);
	assert_int_equal(lstat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	snprintf(parent, sizeof(parent), "%s/run/sub", f->dir);
	assert_int_equal(stat(parent, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);

	vd_http_stop(f->server);
	f->server = NULL;
	assert_int_equal(lstat(f->sock, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(count_fds(), fds);   /* the listening socket is closed */
	vd_http_stop(NULL);
}

static void test_stale_socket_replaced(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	char parent[128];

	/* A socket bound and closed without anyone listening: stale. */
	snprintf(parent, sizeof(parent), "%s/run", f->dir);
	assert_int_equal(mkdir(parent, 0755), 0);
	snprintf(parent, sizeof(parent), "%s/run/sub", f->dir);
	assert_int_equal(mkdir(parent, 0755), 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", f->sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);

	start(f, MAX_BODY, echo_handler);
	assert_int_equal(request(f->sock, "POST", "http://localhost/x", "{}", 2, &out), 200);
}

static void test_live_socket_refused(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_http_server *second = NULL;
	struct buf out;

	start(f, MAX_BODY, echo_handler);
	assert_int_equal(vd_http_listen_unix(f->sock, 0660, MAX_BODY, echo_handler, NULL,
					     &second, &err), -EADDRINUSE);
	assert_null(second);
	assert_non_null(strstr(err.msg, "another volumed is serving"));
	assert_non_null(strstr(err.msg, f->sock));
	/* The first server is untouched. */
	assert_int_equal(request(f->sock, "POST", "http://localhost/x", "{}", 2, &out), 200);
}

static void test_not_a_socket_refused(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_http_server *server = NULL;
	char path[160];

	snprintf(path, sizeof(path), "%s/plain", f->dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(vd_http_listen_unix(path, 0660, MAX_BODY, echo_handler, NULL,
					     &server, &err), -EEXIST);
	assert_null(server);
	assert_non_null(strstr(err.msg, "not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	vd_err_clear(&err);
	assert_int_equal(vd_http_listen_unix(longpath, 0660, MAX_BODY, echo_handler, NULL,
					     &server, &err), -ENAMETOOLONG);
	assert_non_null(strstr(err.msg, "allowed"));
}

/* "/wait" blocks until "/release" arrives on another connection: only
 * one thread per connection lets both run. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void gate_handler(void *userdata, const struct vd_http_request *req,
			 struct vd_http_response *resp)
{
	int ok = 1;
	pthread_mutex_lock(&gate_lock);
	if (strcmp(req->path, "/release") == 0) {
		gate_open = 1;
		pthread_cond_broadcast(&gate_cond);
	} else {
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 10;
		while (!gate_open && ok)
			ok = pthread_cond_timedwait(&gate_cond, &gate_lock, &deadline) == 0;
	}
	pthread_mutex_unlock(&gate_lock);
	echo_handler(userdata, req, resp);
	if (!ok)
		resp->status = 504;
}

struct waiter {
	const char *sock;
	long status;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	struct buf out;
	w->status = request(w->sock, "POST", "http://localhost/wait", "{}", 2, &out);
	return NULL;
}

static void test_handlers_run_in_parallel(void **state)
{
	struct fixture *f = *state;
	struct buf out;
	pthread_t t;
	struct waiter w = { f->sock, 0 };

	start(f, MAX_BODY, gate_handler);
	assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
	usleep(100 * 1000);
	assert_int_equal(request(f->sock, "POST", "http://localhost/release", "{}", 2, &out), 200);
	pthread_join(t, NULL);
	assert_int_equal(w.status, 200);
}

static void test_reply_json(void **state)
{
	(void)state;
	struct vd_http_response resp = { 200, NULL, NULL };
	vd_http_reply_json(&resp, 201, json_pack("{s:s}", "a", "b"));
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.body, "{\"a\":\"b\"}");
	vd_http_reply_json(&resp, 200, NULL);   /* replaces, frees the old body */
	assert_int_equal(resp.status, 500);
	assert_null(resp.body);
}

/* ---- HTTPS on TCP ---- */

#define TOKEN "s3cret-token-0123456789abcdef"

static int handler_calls;   /* echo calls, for "the handler never ran" */

static void counting_handler(void *userdata, const struct vd_http_request *req,
			     struct vd_http_response *resp)
{
	__atomic_add_fetch(&handler_calls, 1, __ATOMIC_SEQ_CST);
	echo_handler(userdata, req, resp);
}

static int calls(void)
{
	return __atomic_load_n(&handler_calls, __ATOMIC_SEQ_CST);
}

struct tls_fixture {
	char dir[64];
	struct vd_test_tls tls;
	struct vd_http_server *server;
	char base[64];     /* https://127.0.0.1:PORT */
};

static int tls_setup(void **state)
{
	struct tls_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vd_test_mkdtemp(f->dir, sizeof(f->dir), "vd-https"), 0);
	assert_int_equal(vd_test_tls_write(f->dir, &f->tls), 0);
	*state = f;
	return 0;
}

static int tls_teardown(void **state)
{
	struct tls_fixture *f = *state;
	vd_http_stop(f->server);
	vd_test_rmtree(f->dir);
	free(f);
	return 0;
}

static void tls_start(struct tls_fixture *f, const char *addr)
{
	struct vd_err err = VD_ERR_INIT;
	int r = vd_http_listen_tcp(addr, f->tls.cert, f->tls.key, TOKEN, MAX_BODY,
				   counting_handler, NULL, &f->server, &err);
	if (r < 0)
		fail_msg("listen tcp %s: %d %s", addr, r, err.msg);
	assert_true(vd_http_port(f->server) > 0);
	snprintf(f->base, sizeof(f->base), "https://%s:%u",
		 addr[0] == '[' ? "[::1]" : "127.0.0.1", vd_http_port(f->server));
}

static size_t collect_header(char *p, size_t size, size_t n, void *userdata)
{
	return collect(p, size, n, userdata);
}

/* One HTTPS request; auth is the Authorization header's value (NULL: none).
 * Returns the status (0 when no answer: *ret_rc says why); out gets the
 * body and hdrs (may be NULL) the response headers. */
static long tls_request(const char *url, const char *ca, const char *auth, const char *method,
			const char *body, size_t body_len, struct buf *out, struct buf *hdrs,
			CURLcode *ret_rc)
{
	char header[256];
	struct curl_slist *hl = NULL;
	struct buf ignored;
	CURL *c = curl_easy_init();
	assert_non_null(c);
	out->len = 0;
	out->data[0] = '\0';
	if (!hdrs)
		hdrs = &ignored;
	hdrs->len = 0;
	hdrs->data[0] = '\0';
	if (auth) {
		snprintf(header, sizeof(header), "Authorization: %s", auth);
		hl = curl_slist_append(hl, header);
	}
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	if (ret_rc)
		*ret_rc = rc;
	else if (rc != CURLE_OK)
		fail_msg("curl %s %s: %s", method, url, curl_easy_strerror(rc));
	return rc == CURLE_OK ? status : 0;
}

/* The request is refused with 401, the JSON error and WWW-Authenticate,
 * and the handler does not run. */
static void expect_401(struct tls_fixture *f, const char *auth, const char *method,
		       const char *body)
{
	char url[128];
	struct buf out, hdrs;
	int before = calls();
	snprintf(url, sizeof(url), "%s/v1/volumes", f->base);
	long status = tls_request(url, f->tls.ca, auth, method, body, body ? strlen(body) : 0,
				  &out, &hdrs, NULL);
	if (status != 401)
		fail_msg("auth \"%s\": status %ld, want 401: %s", auth ? auth : "(none)", status,
			 out.data);
	json_t *j = parse(&out);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "missing or invalid bearer token");
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "unauthorized");
	json_decref(j);
	if (!strcasestr(hdrs.data, "\nWWW-Authenticate: Bearer"))
		fail_msg("no WWW-Authenticate: Bearer in:\n%s", hdrs.data);
	assert_int_equal(calls(), before);
	assert_null(strstr(out.data, TOKEN));
	assert_null(strstr(hdrs.data, TOKEN));
}

static void test_https_token(void **state)
{
	struct tls_fixture *f = *state;
	struct buf out;
	char url[128];
	tls_start(f, "127.0.0.1:0");
	snprintf(url, sizeof(url), "%s/v1/volumes?all=1", f->base);

	int before = calls();
	assert_int_equal(tls_request(url, f->tls.ca, "Bearer " TOKEN, "GET", NULL, 0, &out, NULL,
				     NULL), 200);
	json_t *j = parse(&out);
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/v1/volumes");
	json_decref(j);
	assert_int_equal(tls_request(url, f->tls.ca, "bearer  " TOKEN, "POST", "{\"a\":1}", 7,
				     &out, NULL, NULL), 200);
	j = parse(&out);
	assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"a\":1}");
	json_decref(j);
	assert_int_equal(calls(), before + 2);

	expect_401(f, NULL, "GET", NULL);
	expect_401(f, NULL, "POST", "{\"name\":\"v\"}");
	expect_401(f, "Bearer", "GET", NULL);
	expect_401(f, "Bearer ", "GET", NULL);
	expect_401(f, "Bearer wrong-token-0123456789abcde", "POST", "{\"name\":\"v\"}");
	expect_401(f, "Bearer " TOKEN "x", "GET", NULL);
	expect_401(f, "Bearer s3cret", "GET", NULL);
	expect_401(f, "Basic dXNlcjpzM2NyZXQtdG9rZW4tMDEyMzQ1Njc4OWFiY2RlZg==", "GET", NULL);
	expect_401(f, TOKEN, "DELETE", NULL);
	expect_401(f, "Token " TOKEN, "GET", NULL);

	/* A body over the limit: 401 first without a token, 413 with one. */
	char big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_401(f, NULL, "POST", big);
	before = calls();
	assert_int_equal(tls_request(url, f->tls.ca, "Bearer " TOKEN, "POST", big, strlen(big),
				     &out, NULL, NULL), 413);
	assert_int_equal(calls(), before + 1);
	/* Still serving. */
	assert_int_equal(tls_request(url, f->tls.ca, "Bearer " TOKEN, "GET", NULL, 0, &out, NULL,
				     NULL), 200);
}

static void test_https_transport(void **state)
{
	struct tls_fixture *f = *state;
	struct buf out;
	char url[128];
	CURLcode rc;
	tls_start(f, "127.0.0.1:0");
	unsigned port = vd_http_port(f->server);

	/* Plain HTTP to the TLS port gets no HTTP answer. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/volumes", port);
	int before = calls();
	assert_int_equal(tls_request(url, f->tls.ca, "Bearer " TOKEN, "GET", NULL, 0, &out, NULL,
				     &rc), 0);
	assert_int_not_equal(rc, CURLE_OK);
	/* Without our CA the certificate does not verify. */
	snprintf(url, sizeof(url), "%s/v1/volumes", f->base);
	assert_int_equal(tls_request(url, "/nonexistent-ca.pem", "Bearer " TOKEN, "GET", NULL, 0,
				     &out, NULL, &rc), 0);
	assert_int_not_equal(rc, CURLE_OK);
	assert_int_equal(calls(), before);

	/* The unix-socket server has no port; stop closes the TCP socket. */
	vd_http_stop(f->server);
	f->server = NULL;
	assert_int_equal(tls_request(url, f->tls.ca, "Bearer " TOKEN, "GET", NULL, 0, &out, NULL,
				     &rc), 0);
	assert_int_equal(rc, CURLE_COULDNT_CONNECT);
	assert_int_equal(vd_http_port(NULL), 0);
}

static void test_https_ipv6(void **state)
{
	struct tls_fixture *f = *state;
	struct buf out;
	char url[128];
	struct vd_err err = VD_ERR_INIT;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int have_v6 = fd >= 0 && bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0;
	if (fd >= 0)
		close(fd);
	if (!have_v6) {
		skip();
		return;
	}
	int r = vd_http_listen_tcp("[::1]:0", f->tls.cert, f->tls.key, TOKEN, MAX_BODY,
				   counting_handler, NULL, &f->server, &err);
	if (r < 0)
		fail_msg("listen [::1]:0: %s", err.msg);
	snprintf(url, sizeof(url), "https://[::1]:%u/x", vd_http_port(f->server));
	assert_int_equal(tls_request(url, f->tls.ca, "Bearer " TOKEN, "GET", NULL, 0, &out, NULL,
				     NULL), 200);
}

/* vd_http_listen_tcp fails with code and a message containing frag. */
static void expect_listen_fails(const char *addr, const char *cert, const char *key,
				const char *token, int code, const char *frag)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_http_server *server = NULL;
	int r = vd_http_listen_tcp(addr, cert, key, token, MAX_BODY, counting_handler, NULL,
				   &server, &err);
	if (r != code || !strstr(err.msg, frag))
		fail_msg("listen %s: %d \"%s\" (want %d \"%s\")", addr, r, err.msg, code, frag);
	assert_null(server);
	if (token && token[0])
		assert_null(strstr(err.msg, token));
}

static void test_https_start_errors(void **state)
{
	struct tls_fixture *f = *state;
	char missing[128], notpem[128], encrypted[128];
	int fds = count_fds();
	snprintf(missing, sizeof(missing), "%s/missing.pem", f->dir);
	snprintf(notpem, sizeof(notpem), "%s/not.pem", f->dir);
	snprintf(encrypted, sizeof(encrypted), "%s/enc.pem", f->dir);
	assert_int_equal(vd_test_tls_write_file(notpem, "hello\n"), 0);
	assert_int_equal(vd_test_tls_write_file(encrypted, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
						"AAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0);

	expect_listen_fails("127.0.0.1:0", missing, f->tls.key, TOKEN, -ENOENT, "tls_cert");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, missing, TOKEN, -ENOENT, "tls_key");
	expect_listen_fails("127.0.0.1:0", notpem, f->tls.key, TOKEN, -EINVAL, "not PEM");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, notpem, TOKEN, -EINVAL, "not PEM");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, f->dir, TOKEN, -EINVAL, "regular file");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, encrypted, TOKEN, -EINVAL, "encrypted");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, f->tls.other_key, TOKEN, -EIO,
			    "matching certificate and key");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, f->tls.key, "", -EINVAL, "token");
	expect_listen_fails("127.0.0.1:0", f->tls.cert, f->tls.key, NULL, -EINVAL, "token");
	expect_listen_fails("127.0.0.1", f->tls.cert, f->tls.key, TOKEN, -EINVAL, "PORT");
	expect_listen_fails("192.0.2.1:0", f->tls.cert, f->tls.key, TOKEN, -EADDRNOTAVAIL,
			    "cannot listen on 192.0.2.1:0");

	/* A port in use. */
	tls_start(f, "127.0.0.1:0");
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", vd_http_port(f->server));
	expect_listen_fails(addr, f->tls.cert, f->tls.key, TOKEN, -EADDRINUSE, addr);
	vd_http_stop(f->server);
	f->server = NULL;
	assert_int_equal(count_fds(), fds);   /* nothing leaked by the failures */
}

static void test_split_hostport(void **state)
{
	(void)state;
	char host[256];
	unsigned port = 1;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_http_split_hostport("127.0.0.1:8443", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8443);
	assert_int_equal(vd_http_split_hostport("[::1]:0", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(vd_http_split_hostport("[fe80::1:2]:65535", host, sizeof(host), &port,
						&err), 0);
	assert_string_equal(host, "fe80::1:2");
	assert_int_equal(port, 65535);
	assert_int_equal(vd_http_split_hostport("ctl-1.example.com:443", host, sizeof(host), &port,
						&err), 0);
	assert_string_equal(host, "ctl-1.example.com");

	static const struct { const char *in, *frag; } bad[] = {
		{ "", "empty" },
		{ "127.0.0.1", "no :PORT" },
		{ ":8443", "no host" },
		{ "::1:8443", "brackets" },
		{ "[::1]8443", "followed by :PORT" },
		{ "[::1", "followed by :PORT" },
		{ "[not-v6]:1", "not an IPv6 address" },
		{ "[]:1", "no host" },
		{ "host:", "port" },
		{ "host:65536", "0..65535" },
		{ "host:123456", "0..65535" },
		{ "host:-1", "0..65535" },
		{ "host:80x", "0..65535" },
		{ "ho st:80", "letters, digits" },
		{ "h/x:80", "letters, digits" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vd_err_clear(&err);
		if (vd_http_split_hostport(bad[i].in, host, sizeof(host), &port, &err) != -EINVAL ||
		    !strstr(err.msg, bad[i].frag))
			fail_msg("'%s': \"%s\" (want \"%s\")", bad[i].in, err.msg, bad[i].frag);
	}
	char small[4];
	assert_int_equal(vd_http_split_hostport("abcdef:1", small, sizeof(small), &port, &err),
			 -EINVAL);
}

static void test_bearer_ok(void **state)
{
	(void)state;
	assert_true(vd_http_bearer_ok("Bearer " TOKEN, TOKEN));
	assert_true(vd_http_bearer_ok("bearer " TOKEN, TOKEN));
	assert_true(vd_http_bearer_ok("BEARER   " TOKEN, TOKEN));
	assert_false(vd_http_bearer_ok(NULL, TOKEN));
	assert_false(vd_http_bearer_ok("", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer ", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer" TOKEN, TOKEN));
	assert_false(vd_http_bearer_ok("Bearer " TOKEN " ", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer " TOKEN "x", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer s3cret-token-0123456789abcde", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer S3cret-token-0123456789abcdef", TOKEN));
	assert_false(vd_http_bearer_ok("Bearer s3cret-token-0123456789abcdeF", TOKEN));
	assert_false(vd_http_bearer_ok("Basic " TOKEN, TOKEN));
	assert_false(vd_http_bearer_ok("Bearers " TOKEN, TOKEN));
	assert_false(vd_http_bearer_ok(TOKEN, TOKEN));
	/* No token configured matches nothing, not even an empty one. */
	assert_false(vd_http_bearer_ok("Bearer ", ""));
	assert_false(vd_http_bearer_ok("Bearer x", NULL));
	/* The 401 kind. */
	assert_string_equal(vd_errno_kind(-EKEYREJECTED), "unauthorized");
	assert_int_equal(vd_errno_http_status(-EKEYREJECTED), 401);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_body_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_mode_and_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_socket_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_socket_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handlers_run_in_parallel, setup, teardown),
		cmocka_unit_test(test_reply_json),
		cmocka_unit_test_setup_teardown(test_https_token, tls_setup, tls_teardown),
		cmocka_unit_test_setup_teardown(test_https_transport, tls_setup, tls_teardown),
		cmocka_unit_test_setup_teardown(test_https_ipv6, tls_setup, tls_teardown),
		cmocka_unit_test_setup_teardown(test_https_start_errors, tls_setup, tls_teardown),
		cmocka_unit_test(test_split_hostport),
		cmocka_unit_test(test_bearer_ok),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return failed;
}
