/* test_grpc.c — the gRPC server over a real unix socket: unary calls with
 * trailers, error statuses (unknown method, oversize, compressed,
 * truncated, bad headers, bad grpc-timeout), deadlines, 50 concurrent
 * streams on one connection, several connections and the connection limit,
 * a peer that sends garbage, one that stops reading, the idle time-out,
 * stale/live sockets, and stop. The client is a small nghttp2 client
 * (HTTP/2 with prior knowledge) written here. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "../../csi/grpc.h"
#include "../../csi/grpc_frame.h"
#include "../../volumed/log.h"
#include "../support/fixture.h"

#define CLIENT_TIMEOUT_MS 10000

/* ---- handlers ----------------------------------------------------------- */

static atomic_int slow_ms = 1000;      /* how long the Slow handler sleeps */
static atomic_int slow_finished;       /* Slow handlers that returned */

static int echo_handler(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
			size_t *ret_len, struct vd_err *err)
{
	(void)userdata;
	(void)err;
	uint8_t *resp = malloc(len ? len : 1);
	if (!resp)
		return -ENOMEM;
	memcpy(resp, req, len);
	*ret_resp = resp;
	*ret_len = len;
	return VD_GRPC_OK;
}

static int slow_handler(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
			size_t *ret_len, struct vd_err *err)
{
	poll(NULL, 0, atomic_load(&slow_ms));
	int r = echo_handler(userdata, req, len, ret_resp, ret_len, err);
	atomic_fetch_add(&slow_finished, 1);
	return r;
}

/* Fails with the status named by the request's first byte. */
static int fail_handler(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
			size_t *ret_len, struct vd_err *err)
{
	(void)userdata;
	(void)ret_resp;
	(void)ret_len;
	int code = len ? req[0] : VD_GRPC_UNKNOWN;
	vd_err_set(err, -EIO, "volume \"v1\" not found: 100%% sure\n\xc3\xa9t\xc3\xa9");
	return code;
}

/* A negative errno, mapped by the server. */
static int errno_handler(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
			 size_t *ret_len, struct vd_err *err)
{
	(void)userdata;
	(void)req;
	(void)len;
	(void)ret_resp;
	(void)ret_len;
	return vd_err_set(err, -ENOENT, "no such volume");
}

static const struct vd_grpc_method methods[] = {
	{ "/x.Y/Echo", echo_handler },
	{ "/x.Y/Slow", slow_handler },
	{ "/x.Y/Fail", fail_handler },
	{ "/x.Y/Errno", errno_handler },
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

/* ---- the test client ------------------------------------------------------ */

struct call {
	/* request */
	const char *path;
	const char *method;            /* NULL: POST */
	const char *content_type;      /* NULL: application/grpc */
	const char *timeout;           /* grpc-timeout, NULL: none */
	uint8_t *body;                 /* raw body, prefix included */
	size_t body_len, sent;
	int32_t id;
	/* response */
	int http_status;
	int grpc_status;               /* -1: none */
	char message[1024];            /* decoded grpc-message */
	int header_blocks;             /* 1: Trailers-Only */
	uint8_t *data;
	size_t data_len;
	int closed;
	uint32_t rst;                  /* RST_STREAM / close error code */
	double closed_at;
};

struct client {
	int fd;
	nghttp2_session *session;
	size_t open;
};

static void call_init_raw(struct call *c, const char *path, const void *body, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->path = path;
	c->grpc_status = -1;
	c->body = malloc(len ? len : 1);
	assert_non_null(c->body);
	memcpy(c->body, body, len);
	c->body_len = len;
}

/* A call carrying one well-formed message. */
static void call_init(struct call *c, const char *path, const void *msg, size_t len)
{
	uint8_t *body = malloc(len + VD_GRPC_PREFIX_LEN);
	assert_non_null(body);
	vd_grpc_prefix_encode(body, 0, (uint32_t)len);
	memcpy(body + VD_GRPC_PREFIX_LEN, msg, len);
	call_init_raw(c, path, body, len + VD_GRPC_PREFIX_LEN);
	free(body);
}

static void call_free(struct call *c)
{
	free(c->body);
	free(c->data);
	c->body = c->data = NULL;
}

/* The response message: exactly one, uncompressed. */
static void assert_response(const struct call *c, const void *msg, size_t len)
{
	int compressed;
	uint32_t n;
	assert_int_equal(c->http_status, 200);
	assert_int_equal(c->grpc_status, VD_GRPC_OK);
	assert_int_equal(c->header_blocks, 2);
	assert_int_equal(c->data_len, len + VD_GRPC_PREFIX_LEN);
	assert_int_equal(vd_grpc_prefix_decode(c->data, &compressed, &n), 0);
	assert_int_equal(compressed, 0);
	assert_int_equal(n, len);
	if (len)
		assert_memory_equal(c->data + VD_GRPC_PREFIX_LEN, msg, len);
}

/* A Trailers-Only error answer whose message contains want. */
static void assert_error(const struct call *c, int status, const char *want)
{
	if (c->grpc_status != status)
		fprintf(stderr, "expected %s, got %d: %s\n", vd_grpc_status_name(status),
			c->grpc_status, c->message);
	assert_int_equal(c->grpc_status, status);
	assert_int_equal(c->header_blocks, 1);
	assert_int_equal(c->data_len, 0);
	if (want && !strstr(c->message, want)) {
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", c->message, want);
		fail();
	}
}

static ssize_t on_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
			    size_t length, uint32_t *data_flags, nghttp2_data_source *source,
			    void *user_data)
{
	struct call *c = source->ptr;
	(void)session;
	(void)stream_id;
	(void)user_data;
	size_t n = c->body_len - c->sent < length ? c->body_len - c->sent : length;
	memcpy(buf, c->body + c->sent, n);
	c->sent += n;
	if (c->sent == c->body_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user_data)
{
	(void)flags;
	(void)user_data;
	struct call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!c)
		return 0;
	char v[1024];
	snprintf(v, sizeof(v), "%.*s", (int)valuelen, (const char *)value);
	if (namelen == 7 && memcmp(name, ":status", 7) == 0)
		c->http_status = atoi(v);
	else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
		c->grpc_status = atoi(v);
	else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
		vd_grpc_percent_decode(v, strlen(v), c->message, sizeof(c->message));
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	(void)user_data;
	struct call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (c && frame->hd.type == NGHTTP2_HEADERS)
		c->header_blocks++;
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
			 const uint8_t *data, size_t len, void *user_data)
{
	(void)flags;
	(void)user_data;
	struct call *c = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!c)
		return 0;
	uint8_t *bigger = realloc(c->data, c->data_len + len);
	assert_non_null(bigger);
	c->data = bigger;
	memcpy(c->data + c->data_len, data, len);
	c->data_len += len;
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
			   void *user_data)
{
	struct client *cl = user_data;
	struct call *c = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!c)
		return 0;
	c->closed = 1;
	c->rst = error_code;
	c->closed_at = vd_now_ms();
	cl->open--;
	return 0;
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

/* Connects; window: SETTINGS_INITIAL_WINDOW_SIZE (0: the default). */
static void client_open(struct client *cl, const char *path, uint32_t window)
{
	nghttp2_session_callbacks *cb;
	memset(cl, 0, sizeof(*cl));
	cl->fd = raw_connect(path);
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	assert_int_equal(nghttp2_session_client_new(&cl->session, cb, cl), 0);
	nghttp2_session_callbacks_del(cb);
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window } };
	assert_int_equal(nghttp2_submit_settings(cl->session, NGHTTP2_FLAG_NONE, iv, window ? 1 : 0), 0);
	if (window)
		assert_int_equal(nghttp2_session_set_local_window_size(cl->session, NGHTTP2_FLAG_NONE,
								       0, (int32_t)window), 0);
}

static void client_close(struct client *cl)
{
	nghttp2_session_del(cl->session);
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
}

static void client_submit(struct client *cl, struct call *c)
{
	nghttp2_nv nva[] = {
		{ (uint8_t *)":method", (uint8_t *)(c->method ? c->method : "POST"), 7, 0, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0 },
		{ (uint8_t *)":path", (uint8_t *)c->path, 5, strlen(c->path), 0 },
		{ (uint8_t *)"content-type",
		  (uint8_t *)(c->content_type ? c->content_type : "application/grpc"), 12, 0, 0 },
		{ (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0 },
		{ (uint8_t *)"grpc-timeout", (uint8_t *)(c->timeout ? c->timeout : ""), 12, 0, 0 },
	};
	size_t n = sizeof(nva) / sizeof(nva[0]) - (c->timeout ? 0 : 1);
	for (size_t i = 0; i < n; i++)
		nva[i].valuelen = strlen((const char *)nva[i].value);
	nghttp2_data_provider dp = { .source.ptr = c, .read_callback = on_read_body };
	c->id = nghttp2_submit_request(cl->session, NULL, nva, n, &dp, c);
	assert_true(c->id > 0);
	cl->open++;
}

/* Writes what the session has queued (blocking socket). Returns 0 or -1. */
static int client_send(struct client *cl)
{
	const uint8_t *data;
	ssize_t n;
	while ((n = nghttp2_session_mem_send(cl->session, &data)) > 0) {
		for (ssize_t off = 0; off < n; ) {
			ssize_t w = send(cl->fd, data + off, (size_t)(n - off), MSG_NOSIGNAL);
			if (w <= 0)
				return -1;
			off += w;
		}
	}
	return n < 0 ? -1 : 0;
}

/* Runs until every submitted call is closed. Returns 0, or -1 when the
 * server closed the connection or nothing happened for too long. */
static int client_wait(struct client *cl)
{
	while (cl->open) {
		if (client_send(cl) < 0)
			return -1;
		struct pollfd pfd = { cl->fd, POLLIN, 0 };
		if (poll(&pfd, 1, CLIENT_TIMEOUT_MS) <= 0)
			return -1;
		uint8_t buf[16384];
		ssize_t n = read(cl->fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		if (nghttp2_session_mem_recv(cl->session, buf, (size_t)n) < 0)
			return -1;
	}
	return client_send(cl);
}

static int client_run(struct client *cl, struct call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		client_submit(cl, &calls[i]);
	return client_wait(cl);
}

/* One call on a fresh connection. */
static int call_once(const char *sock, struct call *c)
{
	struct client cl;
	client_open(&cl, sock, 0);
	int r = client_run(&cl, c, 1);
	client_close(&cl);
	return r;
}

/* ---- fixture -------------------------------------------------------------- */

struct fixture {
	char dir[64];
	char sock[128];
	struct vd_grpc_server *server;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vd_test_mkdtemp(f->dir, sizeof(f->dir), "vd-grpc"), 0);
	snprintf(f->sock, sizeof(f->sock), "%s/run/csi/csi.sock", f->dir);
	atomic_store(&slow_ms, 1000);
	atomic_store(&slow_finished, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vd_grpc_stop(f->server);
	vd_test_rmtree(f->dir);
	free(f);
	return 0;
}

static void start(struct fixture *f, const struct vd_grpc_limits *limits)
{
	struct vd_err err = VD_ERR_INIT;
	int r = vd_grpc_listen_unix(f->sock, methods, N_METHODS, NULL, limits, &f->server, &err);
	if (r < 0)
		fprintf(stderr, "listen: %s\n", err.msg);
	assert_int_equal(r, 0);
}

/* ---- tests --------------------------------------------------------------- */

static void test_unary_ok(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	struct call c[3];
	call_init(&c[0], "/x.Y/Echo", "hello", 5);
	call_init(&c[1], "/x.Y/Echo", "", 0);
	uint8_t *big = malloc(100000);
	assert_non_null(big);
	for (size_t i = 0; i < 100000; i++)
		big[i] = (uint8_t)(i * 7);
	call_init(&c[2], "/x.Y/Echo", big, 100000);
	struct client cl;
	client_open(&cl, f->sock, 0);
	assert_int_equal(client_run(&cl, c, 3), 0);
	assert_response(&c[0], "hello", 5);
	assert_string_equal(c[0].message, "");
	assert_int_equal(c[0].rst, NGHTTP2_NO_ERROR);
	assert_response(&c[1], "", 0);
	assert_response(&c[2], big, 100000);
	client_close(&cl);
	free(big);
	for (int i = 0; i < 3; i++)
		call_free(&c[i]);

	struct stat st;
	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_handler_errors(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	struct call c[3];
	uint8_t code = VD_GRPC_NOT_FOUND, odd = 99;
	call_init(&c[0], "/x.Y/Fail", &code, 1);
	call_init(&c[1], "/x.Y/Fail", &odd, 1);
	call_init(&c[2], "/x.Y/Errno", "", 0);
	struct client cl;
	client_open(&cl, f->sock, 0);
	assert_int_equal(client_run(&cl, c, 3), 0);
	/* The message survives percent-encoding: quotes, %, newline, UTF-8. */
	assert_error(&c[0], VD_GRPC_NOT_FOUND, NULL);
	assert_string_equal(c[0].message, "volume \"v1\" not found: 100% sure\n\xc3\xa9t\xc3\xa9");
	assert_error(&c[1], VD_GRPC_UNKNOWN, "not found");
	assert_error(&c[2], VD_GRPC_NOT_FOUND, "no such volume");
	client_close(&cl);
	for (int i = 0; i < 3; i++)
		call_free(&c[i]);
}

static void test_unknown_method(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	struct call c;
	call_init(&c, "/x.Y/Nope", "abc", 3);
	assert_int_equal(call_once(f->sock, &c), 0);
	assert_int_equal(c.http_status, 200);
	assert_error(&c, VD_GRPC_UNIMPLEMENTED, "unknown method /x.Y/Nope; this server "
		     "implements: /x.Y/Echo, /x.Y/Slow, /x.Y/Fail, /x.Y/Errno");
	call_free(&c);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	struct vd_grpc_limits limits = { .max_message = 1024 };
	start(f, &limits);
	uint8_t *big = calloc(1, 1 << 20);
	assert_non_null(big);
	struct call c[9];
	call_init(&c[0], "/x.Y/Echo", big, 1025);                  /* over the limit */
	vd_grpc_prefix_encode(big, 0, (1 << 20) - VD_GRPC_PREFIX_LEN);
	call_init_raw(&c[1], "/x.Y/Echo", big, 1 << 20);           /* a 1 MiB message */
	call_init_raw(&c[2], "/x.Y/Echo", "\1\0\0\0\3abc", 8);     /* compressed */
	call_init_raw(&c[3], "/x.Y/Echo", "\0\0\0\0\5abc", 8);     /* truncated */
	call_init_raw(&c[4], "/x.Y/Echo", "\0\0\0\0\1a\0\0\0\0\0", 11);  /* two messages */
	call_init_raw(&c[5], "/x.Y/Echo", "", 0);                  /* none */
	call_init(&c[6], "/x.Y/Echo", "abc", 3);
	c[6].content_type = "application/json";
	call_init(&c[7], "/x.Y/Echo", "abc", 3);
	c[7].method = "PUT";
	call_init(&c[8], "/x.Y/Echo", "abc", 3);
	c[8].timeout = "10 seconds";
	struct client cl;
	client_open(&cl, f->sock, 0);
	assert_int_equal(client_run(&cl, c, 9), 0);
	assert_error(&c[0], VD_GRPC_RESOURCE_EXHAUSTED, "message of 1025 bytes exceeds the limit of 1024");
	/* Refused by its prefix: most of the megabyte is never sent. */
	assert_error(&c[1], VD_GRPC_RESOURCE_EXHAUSTED, "message of 1048571 bytes");
	assert_true(c[1].sent < (1 << 20) / 2);
	assert_error(&c[2], VD_GRPC_UNIMPLEMENTED, "compression is not supported");
	assert_error(&c[3], VD_GRPC_INTERNAL, "truncated");
	assert_error(&c[4], VD_GRPC_INTERNAL, "exactly one message");
	assert_error(&c[5], VD_GRPC_INTERNAL, "no message");
	assert_int_equal(c[6].http_status, 415);
	assert_error(&c[6], VD_GRPC_INVALID_ARGUMENT, "content-type");
	assert_int_equal(c[7].http_status, 405);
	assert_error(&c[7], VD_GRPC_INTERNAL, "POST");
	assert_error(&c[8], VD_GRPC_INVALID_ARGUMENT, "grpc-timeout \"10 seconds\" is malformed");
	for (int i = 0; i < 9; i++)
		call_free(&c[i]);

	/* A well-formed prefix announcing a fitting message, then far more
	 * bytes: refused as they arrive, the stream reset, most never sent. */
	struct call more;
	vd_grpc_prefix_encode(big, 0, 1000);
	call_init_raw(&more, "/x.Y/Echo", big, 1 << 20);
	assert_int_equal(client_run(&cl, &more, 1), 0);
	assert_error(&more, VD_GRPC_INTERNAL, "exactly one message");
	assert_true(more.sent < (1 << 20) / 2);
	call_free(&more);

	/* The connection still serves. */
	struct call ok;
	call_init(&ok, "/x.Y/Echo", "still", 5);
	assert_int_equal(client_run(&cl, &ok, 1), 0);
	assert_response(&ok, "still", 5);
	call_free(&ok);
	client_close(&cl);
	free(big);
}

static void test_deadline(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	struct call c[3];
	call_init(&c[0], "/x.Y/Slow", "late", 4);
	c[0].timeout = "100m";
	call_init(&c[1], "/x.Y/Slow", "in time", 7);
	c[1].timeout = "5S";
	call_init(&c[2], "/x.Y/Echo", "zero", 4);
	c[2].timeout = "0n";
	atomic_store(&slow_ms, 400);
	struct client cl;
	client_open(&cl, f->sock, 0);
	double t0 = vd_now_ms();
	assert_int_equal(client_run(&cl, c, 3), 0);
	assert_error(&c[0], VD_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
	assert_true(c[0].closed_at - t0 >= 90);
	assert_true(c[0].closed_at - t0 < 350);
	assert_response(&c[1], "in time", 7);
	/* A zero timeout may still be answered in time; never hangs. */
	assert_true(c[2].grpc_status == VD_GRPC_OK || c[2].grpc_status == VD_GRPC_DEADLINE_EXCEEDED);
	client_close(&cl);
	for (int i = 0; i < 3; i++)
		call_free(&c[i]);
}

static void test_concurrent_streams(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	enum { N = 50 };
	struct call c[N];
	char msg[N][32];
	atomic_store(&slow_ms, 500);
	for (int i = 0; i < N; i++) {
		snprintf(msg[i], sizeof(msg[i]), "stream %d", i);
		call_init(&c[i], i == 0 ? "/x.Y/Slow" : "/x.Y/Echo", msg[i], strlen(msg[i]));
	}
	struct client cl;
	client_open(&cl, f->sock, 0);
	assert_int_equal(client_run(&cl, c, N), 0);
	for (int i = 0; i < N; i++) {
		assert_response(&c[i], msg[i], strlen(msg[i]));
		if (i)   /* the slow handler held up none of them */
			assert_true(c[i].closed_at < c[0].closed_at);
	}
	client_close(&cl);
	for (int i = 0; i < N; i++)
		call_free(&c[i]);
}

/* Sends what it has of the body and then waits: the stream stays open. */
static ssize_t on_read_partial(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
			       size_t length, uint32_t *data_flags, nghttp2_data_source *source,
			       void *user_data)
{
	struct call *c = source->ptr;
	(void)session, (void)stream_id, (void)user_data, (void)data_flags;
	size_t n = c->body_len - c->sent < length ? c->body_len - c->sent : length;
	if (n == 0)
		return NGHTTP2_ERR_DEFERRED;
	memcpy(buf, c->body + c->sent, n);
	c->sent += n;
	return (ssize_t)n;
}

/* Many streams that never finish their request cannot make one connection
 * hold more than a few messages' worth of memory. */
static void test_connection_buffer_budget(void **state)
{
	struct fixture *f = *state;
	const struct vd_grpc_limits limits = { .max_message = 1024 };
	enum { N = 8 };
	struct call c[N];
	uint8_t body[900];
	start(f, &limits);
	memset(body, 'x', sizeof(body));
	vd_grpc_prefix_encode(body, 0, 1000);   /* promises more than it sends */
	struct client cl;
	client_open(&cl, f->sock, 0);
	size_t refused = 0;
	for (int i = 0; i < N; i++) {
		call_init_raw(&c[i], "/x.Y/Echo", body, sizeof(body));
		nghttp2_nv nva[] = {
			{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
			{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
			{ (uint8_t *)":authority", (uint8_t *)"localhost", 10, 9, 0 },
			{ (uint8_t *)":path", (uint8_t *)"/x.Y/Echo", 5, 9, 0 },
			{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
		};
		nghttp2_data_provider dp = { .source.ptr = &c[i], .read_callback = on_read_partial };
		c[i].id = nghttp2_submit_request(cl.session, NULL, nva, 5, &dp, &c[i]);
		assert_true(c[i].id > 0);
	}
	/* Read until the streams past the budget are answered. */
	for (int rounds = 0; rounds < 50 && refused < N - 4; rounds++) {
		assert_int_equal(client_send(&cl), 0);
		struct pollfd pfd = { cl.fd, POLLIN, 0 };
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		uint8_t buf[16384];
		ssize_t n = read(cl.fd, buf, sizeof(buf));
		assert_true(n > 0);
		assert_true(nghttp2_session_mem_recv(cl.session, buf, (size_t)n) >= 0);
		refused = 0;
		for (int i = 0; i < N; i++)
			refused += c[i].grpc_status == VD_GRPC_RESOURCE_EXHAUSTED;
	}
	assert_int_equal(refused, N - 4);   /* 4 x 1 KiB buffers fit in 4 messages' worth */
	for (int i = 0; i < N; i++)
		if (c[i].grpc_status == VD_GRPC_RESOURCE_EXHAUSTED)
			assert_non_null(strstr(c[i].message, "unfinished requests"));
	client_close(&cl);
	for (int i = 0; i < N; i++)
		call_free(&c[i]);
}

struct conn_thread {
	const char *sock;
	int index;
	int failures;
};

static void *conn_thread_main(void *arg)
{
	struct conn_thread *t = arg;
	struct client cl;
	client_open(&cl, t->sock, 0);
	for (int i = 0; i < 10; i++) {
		char msg[32];
		struct call c;
		snprintf(msg, sizeof(msg), "conn %d call %d", t->index, i);
		call_init(&c, "/x.Y/Echo", msg, strlen(msg));
		if (client_run(&cl, &c, 1) < 0 || c.grpc_status != 0 ||
		    c.data_len != strlen(msg) + VD_GRPC_PREFIX_LEN ||
		    memcmp(c.data + VD_GRPC_PREFIX_LEN, msg, strlen(msg)) != 0)
			t->failures++;
		call_free(&c);
	}
	client_close(&cl);
	return NULL;
}

static void test_several_connections(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	enum { N = 8 };
	pthread_t threads[N];
	struct conn_thread t[N];
	for (int i = 0; i < N; i++) {
		t[i] = (struct conn_thread){ f->sock, i, 0 };
		assert_int_equal(pthread_create(&threads[i], NULL, conn_thread_main, &t[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(t[i].failures, 0);
	}
}

static void test_connection_limit(void **state)
{
	struct fixture *f = *state;
	struct vd_grpc_limits limits = { .max_connections = 2 };
	start(f, &limits);
	struct client cl[3];
	struct call c;
	for (int i = 0; i < 2; i++) {
		client_open(&cl[i], f->sock, 0);
		call_init(&c, "/x.Y/Echo", "x", 1);
		assert_int_equal(client_run(&cl[i], &c, 1), 0);
		call_free(&c);
	}
	/* The third is accepted and closed at once. */
	client_open(&cl[2], f->sock, 0);
	call_init(&c, "/x.Y/Echo", "x", 1);
	assert_int_equal(client_run(&cl[2], &c, 1), -1);
	call_free(&c);
	client_close(&cl[2]);

	/* Once one closes, a new one is served. */
	client_close(&cl[0]);
	int served = 0;
	for (int tries = 0; tries < 50 && !served; tries++) {
		call_init(&c, "/x.Y/Echo", "y", 1);
		served = call_once(f->sock, &c) == 0 && c.grpc_status == 0;
		call_free(&c);
		if (!served)
			poll(NULL, 0, 20);
	}
	assert_true(served);
	client_close(&cl[1]);
}

static void test_garbage_preface(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x01\x02\x03";
	int fd = raw_connect(f->sock);
	assert_int_equal(send(fd, garbage, sizeof(garbage), MSG_NOSIGNAL), (ssize_t)sizeof(garbage));
	/* The server writes at most its SETTINGS and a GOAWAY, then closes. */
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		assert_int_equal(poll(&pfd, 1, CLIENT_TIMEOUT_MS), 1);
		char buf[512];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
	}
	close(fd);

	/* A valid preface then a malformed frame (DATA on stream 0). */
	fd = raw_connect(f->sock);
	static const char bad_frame[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
		"\0\0\0\4\0\0\0\0\0"                 /* empty SETTINGS */
		"\0\0\3\0\0\0\0\0\0abc";             /* DATA, stream 0 */
	assert_int_equal(send(fd, bad_frame, sizeof(bad_frame) - 1, MSG_NOSIGNAL),
			 (ssize_t)sizeof(bad_frame) - 1);
	int saw_goaway = 0;
	uint8_t all[4096];
	size_t len = 0;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		assert_int_equal(poll(&pfd, 1, CLIENT_TIMEOUT_MS), 1);
		ssize_t n = read(fd, all + len, sizeof(all) - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	for (size_t off = 0; off + 9 <= len; off += 9 + ((size_t)all[off] << 16 | (size_t)all[off + 1] << 8 | all[off + 2]))
		saw_goaway |= all[off + 3] == NGHTTP2_GOAWAY;
	assert_true(saw_goaway);
	close(fd);

	struct call c;
	call_init(&c, "/x.Y/Echo", "fine", 4);
	assert_int_equal(call_once(f->sock, &c), 0);
	assert_response(&c, "fine", 4);
	call_free(&c);
}

/* A client with wide-open windows that asks for megabytes and never
 * reads: its connection stalls, the others do not, and stop still ends. */
static void test_client_not_reading(void **state)
{
	struct fixture *f = *state;
	start(f, NULL);
	enum { N = 8, SIZE = 1 << 20 };
	struct client stuck;
	struct call c[N];
	uint8_t *big = calloc(1, SIZE);
	assert_non_null(big);
	client_open(&stuck, f->sock, (1u << 31) - 1);
	for (int i = 0; i < N; i++) {
		call_init(&c[i], "/x.Y/Echo", big, SIZE);
		client_submit(&stuck, &c[i]);
	}
	assert_int_equal(client_send(&stuck), 0);

	struct call ok;
	call_init(&ok, "/x.Y/Echo", "other", 5);
	assert_int_equal(call_once(f->sock, &ok), 0);
	assert_response(&ok, "other", 5);
	call_free(&ok);

	double t0 = vd_now_ms();
	vd_grpc_stop(f->server);
	f->server = NULL;
	assert_true(vd_now_ms() - t0 < 3000);
	client_close(&stuck);
	for (int i = 0; i < N; i++)
		call_free(&c[i]);
	free(big);
}

static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct vd_grpc_limits limits = { .idle_timeout_ms = 200 };
	start(f, &limits);
	struct client cl;
	struct call c;
	client_open(&cl, f->sock, 0);
	call_init(&c, "/x.Y/Echo", "x", 1);
	assert_int_equal(client_run(&cl, &c, 1), 0);
	call_free(&c);
	/* Nothing more: the server says GOAWAY and closes. */
	double t0 = vd_now_ms();
	for (;;) {
		struct pollfd pfd = { cl.fd, POLLIN, 0 };
		assert_int_equal(poll(&pfd, 1, CLIENT_TIMEOUT_MS), 1);
		char buf[512];
		if (read(cl.fd, buf, sizeof(buf)) <= 0)
			break;
	}
	assert_true(vd_now_ms() - t0 < 2000);
	client_close(&cl);

	/* A running call is not idleness. */
	atomic_store(&slow_ms, 500);
	call_init(&c, "/x.Y/Slow", "slow", 4);
	assert_int_equal(call_once(f->sock, &c), 0);
	assert_response(&c, "slow", 4);
	call_free(&c);
}

static void test_sockets_and_stop(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_grpc_server *other = NULL;

	/* A stale socket (bound, never unlinked) is replaced. */
	char parent[160];
	snprintf(parent, sizeof(parent), "%s/run", f->dir);
	mkdir(parent, 0755);
	snprintf(parent, sizeof(parent), "%s/run/csi", f->dir);
	mkdir(parent, 0755);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", f->sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	start(f, NULL);

	/* A live one is refused. */
	assert_int_equal(vd_grpc_listen_unix(f->sock, methods, N_METHODS, NULL, NULL, &other, &err),
			 -EADDRINUSE);
	assert_null(other);

	/* Stop waits for a running handler, then unlinks. */
	struct client cl;
	struct call c;
	atomic_store(&slow_ms, 300);
	client_open(&cl, f->sock, 0);
	call_init(&c, "/x.Y/Slow", "x", 1);
	client_submit(&cl, &c);
	assert_int_equal(client_send(&cl), 0);
	poll(NULL, 0, 100);
	vd_grpc_stop(f->server);
	f->server = NULL;
	assert_int_equal(atomic_load(&slow_finished), 1);
	assert_int_equal(access(f->sock, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	client_close(&cl);
	call_free(&c);

	/* Bad arguments. */
	struct vd_grpc_method bad = { "no-slash", echo_handler };
	assert_int_equal(vd_grpc_listen_unix(f->sock, &bad, 1, NULL, NULL, &other, &err), -EINVAL);
	vd_grpc_stop(NULL);
}

int main(void)
{
	vd_log_set_level(getenv("VD_DEBUG") ? VD_LOG_DEBUG : VD_LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unary_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handler_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_buffer_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_preface, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_not_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sockets_and_stop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
