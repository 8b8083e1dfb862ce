/* grpc.c — unary gRPC over HTTP/2 (nghttp2) on a unix socket.
 *
 * Threads:
 * - the accept thread polls the listening socket and a stop eventfd; it
 *   starts one detached thread per connection (at most max_connections);
 * - a connection thread owns its nghttp2 session and socket (non-blocking):
 *   it polls the socket and its wake eventfd, feeds what it reads to the
 *   session, writes what the session produces (at most one bounded buffer
 *   pending, so a peer that stops reading stalls only its own connection),
 *   answers requests that fail validation, expires deadlines, and submits
 *   the results the workers post back;
 * - worker threads (a pool grown on demand up to max_workers) run the
 *   handlers of complete requests, then post each finished job onto its
 *   connection's done list and wake the connection thread.
 * Only the connection thread touches its session and its streams; workers
 * see a job (request bytes in, response bytes out) and nothing else.
 *
 * Locks (never nested):
 * - srv->lock: the connection list and count, the job queue and the
 *   worker set (conds: conns_gone, work);
 * - conn->lock: the connection's reference count, closed flag, done list
 *   and each of its jobs' cancelled flag.
 * A connection is freed by whoever drops its last reference: its thread,
 * or a worker finishing a job for it after it closed.
 *
 * A stream goes RECV (headers and body arriving) -> RUNNING (its job is
 * queued or running) -> ANSWERED (a response is submitted). Validation
 * failures found at the headers or while the body arrives answer at once
 * with Trailers-Only and, the request still open, RST_STREAM(NO_ERROR)
 * after it (RFC 9113 8.1), so nothing more of it is buffered. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpc.h"
#include "grpc_frame.h"
#include "../volumed/log.h"
#include "../volumed/usock.h"

#define GRPC_DEFAULT_MAX_MESSAGE (4u << 20)
#define GRPC_DEFAULT_MAX_STREAMS 256
#define GRPC_DEFAULT_MAX_CONNECTIONS 64
#define GRPC_DEFAULT_MAX_WORKERS 16
#define GRPC_DEFAULT_IDLE_TIMEOUT_MS 600000
#define GRPC_DEFAULT_SOCKET_MODE 0600
#define GRPC_LISTEN_BACKLOG 64
#define GRPC_STOP_GRACE_MS 1000      /* to flush GOAWAY at stop */
#define GRPC_ACCEPT_BACKOFF_MS 100   /* after EMFILE and the like */
#define GRPC_READ_CHUNK 16384
#define GRPC_OUT_BATCH 65536         /* bytes gathered from the session per write */
#define GRPC_PATH_SHOWN 128          /* bytes of an unknown path kept for the message */
#define GRPC_FEED_CHUNK 4096

/* What a server serves; read-only while serving. */
struct grpc_service {
	struct vd_grpc_method *methods;
	size_t n_methods;
	void *userdata;
	struct vd_grpc_limits limits;  /* defaults filled in */
	char *method_list;             /* "/a/B, /a/C", for UNIMPLEMENTED */
};

struct conn;

/* One handler call, between a connection and the workers. */
struct job {
	struct job *next;              /* srv queue, then conn->done */
	struct conn *conn;             /* holds a reference */
	int32_t stream_id;
	vd_grpc_handler handler;
	uint8_t *body;                 /* the request body; msg points into it */
	const uint8_t *msg;
	size_t msg_len;
	int cancelled;                 /* conn->lock: nobody waits for the result */
	int status;                    /* the result, set by job_run */
	uint8_t *resp;
	size_t resp_len;
	struct vd_err err;
};

enum stream_state { ST_RECV, ST_RUNNING, ST_ANSWERED };

struct stream {
	struct stream *prev, *next;    /* conn->streams */
	int32_t id;
	enum stream_state state;
	int req_done;                  /* END_STREAM received */
	int is_post, ctype_ok, timeout_bad, has_timeout;
	const struct vd_grpc_method *method;
	char path[GRPC_PATH_SHOWN];    /* when the method is unknown */
	char timeout_text[16];         /* when grpc-timeout is malformed */
	uint64_t timeout_ms;
	double deadline;               /* vd_now_ms() clock; 0: none */
	uint8_t *body;
	size_t body_len, body_cap;
	struct job *job;               /* while RUNNING */
	uint8_t prefix[VD_GRPC_PREFIX_LEN];  /* response: prefix, resp, trailers */
	uint8_t *resp;
	size_t resp_len, sent;
};

struct conn {
	const struct grpc_service *svc;
	struct vd_grpc_server *srv;    /* NULL in memory (vd_grpc_session_feed) */
	int sync;                      /* in memory: handlers run inline */
	nghttp2_session *session;
	int fd, wake_fd;
	struct stream *streams;
	uint8_t *out;                  /* bytes from the session not yet written: */
	size_t out_cap, out_len, out_off;  /* out[out_off..out_len) */
	size_t buffered;               /* request bytes held by its streams */
	double last_io;
	double stop_by;                /* stopping: give up flushing then */
	struct conn *prev, *next;      /* srv->conns, under srv->lock */
	pthread_mutex_t lock;
	unsigned refs;
	int closed;
	struct job *done;
};

struct vd_grpc_server {
	struct grpc_service svc;
	struct vd_usock sock;
	int stop_fd;
	pthread_t accept_thread;
	atomic_int stopping;
	pthread_mutex_t lock;
	pthread_cond_t conns_gone;
	pthread_cond_t work;
	struct conn *conns;
	unsigned n_conns;
	struct job *queue_head, *queue_tail;
	unsigned n_queued;
	pthread_t *workers;
	unsigned n_workers, idle_workers;
	int pool_stopping;
};

/* ---- the service ---------------------------------------------------- */

static void service_free(struct grpc_service *svc)
{
	free(svc->methods);
	free(svc->method_list);
}

static void limits_fill(struct vd_grpc_limits *l, const struct vd_grpc_limits *given)
{
	static const struct vd_grpc_limits none;
	if (!given)
		given = &none;
	*l = *given;
	if (!l->max_message)
		l->max_message = GRPC_DEFAULT_MAX_MESSAGE;
	if (l->max_message > UINT32_MAX)
		l->max_message = UINT32_MAX;
	if (!l->max_streams)
		l->max_streams = GRPC_DEFAULT_MAX_STREAMS;
	if (!l->max_connections)
		l->max_connections = GRPC_DEFAULT_MAX_CONNECTIONS;
	if (!l->max_workers)
		l->max_workers = GRPC_DEFAULT_MAX_WORKERS;
	if (!l->idle_timeout_ms)
		l->idle_timeout_ms = GRPC_DEFAULT_IDLE_TIMEOUT_MS;
	if (!l->socket_mode)
		l->socket_mode = GRPC_DEFAULT_SOCKET_MODE;
}

static int service_init(struct grpc_service *svc, const struct vd_grpc_method *methods,
			size_t n, void *userdata, const struct vd_grpc_limits *limits,
			struct vd_err *err)
{
	size_t list_len = 1;
	memset(svc, 0, sizeof(*svc));
	for (size_t i = 0; i < n; i++) {
		if (!methods[i].path || methods[i].path[0] != '/' || !methods[i].handler)
			return vd_err_set(err, -EINVAL, "grpc method %zu: a path starting with / "
					  "and a handler are required", i);
		list_len += strlen(methods[i].path) + 2;
	}
	svc->methods = calloc(n ? n : 1, sizeof(*methods));
	svc->method_list = malloc(list_len);
	if (!svc->methods || !svc->method_list) {
		service_free(svc);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	memcpy(svc->methods, methods, n * sizeof(*methods));
	svc->n_methods = n;
	svc->userdata = userdata;
	limits_fill(&svc->limits, limits);
	svc->method_list[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(svc->method_list, ", ");
		strcat(svc->method_list, methods[i].path);
	}
	return 0;
}

static const struct vd_grpc_method *service_find(const struct grpc_service *svc,
						 const uint8_t *path, size_t len)
{
	for (size_t i = 0; i < svc->n_methods; i++) {
		const char *p = svc->methods[i].path;
		if (strlen(p) == len && memcmp(p, path, len) == 0)
			return &svc->methods[i];
	}
	return NULL;
}

/* ---- connections: lifetime ------------------------------------------ */

static void job_free(struct job *j);

static struct conn *conn_new(const struct grpc_service *svc, struct vd_grpc_server *srv, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->svc = svc;
	c->srv = srv;
	c->sync = srv == NULL;
	c->fd = fd;
	c->wake_fd = -1;
	c->refs = 1;
	c->last_io = vd_now_ms();
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	if (!c->sync) {
		c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		c->out = malloc(GRPC_OUT_BATCH);
		c->out_cap = GRPC_OUT_BATCH;
		if (c->wake_fd < 0 || !c->out) {
			if (c->wake_fd >= 0)
				close(c->wake_fd);
			free(c->out);
			pthread_mutex_destroy(&c->lock);
			free(c);
			return NULL;
		}
	}
	return c;
}

static void conn_ref(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

static void conn_unref(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (!last)
		return;
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	free(c->out);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void stream_body_drop(struct conn *c, struct stream *s)
{
	c->buffered -= s->body_cap;
	free(s->body);
	s->body = NULL;
	s->body_len = s->body_cap = 0;
}

static void stream_free(struct stream *s)
{
	free(s->body);
	free(s->resp);
	free(s);
}

/* Marks the connection closed (workers drop their results from now on),
 * drops finished jobs, frees the session, the streams and the socket. */
static void conn_shutdown(struct conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->closed = 1;
	struct job *done = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	while (done) {
		struct job *next = done->next;
		job_free(done);
		done = next;
	}
	/* nghttp2_session_del calls no callback: the streams are ours to free. */
	nghttp2_session_del(c->session);
	c->session = NULL;
	while (c->streams) {
		struct stream *next = c->streams->next;
		stream_free(c->streams);
		c->streams = next;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* ---- jobs ------------------------------------------------------------ */

static struct job *job_new(struct conn *c, struct stream *s, const uint8_t *msg, size_t len)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	conn_ref(c);
	j->conn = c;
	j->stream_id = s->id;
	j->handler = s->method->handler;
	j->body = s->body;             /* the message lies inside it */
	j->msg = msg;
	j->msg_len = len;
	c->buffered -= s->body_cap;    /* the job holds it now (workers are bounded) */
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	return j;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->body);
	free(j->resp);
	if (j->conn)
		conn_unref(j->conn);
	free(j);
}

/* Runs the handler and normalizes its result into j->status/resp. */
static void job_run(const struct grpc_service *svc, struct job *j)
{
	uint8_t *resp = NULL;
	size_t len = 0;
	int r = j->handler(svc->userdata, j->msg, j->msg_len, &resp, &len, &j->err);
	if (r < 0)
		r = vd_errno_grpc_status(r);
	else if (r > VD_GRPC_UNAUTHENTICATED)
		r = VD_GRPC_UNKNOWN;
	if (r == VD_GRPC_OK && len > svc->limits.max_message) {
		vd_err_set(&j->err, -EMSGSIZE, "response of %zu bytes exceeds the limit of %zu bytes",
			   len, svc->limits.max_message);
		r = VD_GRPC_RESOURCE_EXHAUSTED;
	}
	if (r != VD_GRPC_OK || !resp) {
		free(resp);
		resp = NULL;
		len = 0;
	}
	j->status = r;
	j->resp = resp;
	j->resp_len = len;
}

/* Sets a queued or running job's result aside: it is dropped on return. */
static void job_cancel(struct job *j)
{
	pthread_mutex_lock(&j->conn->lock);
	j->cancelled = 1;
	pthread_mutex_unlock(&j->conn->lock);
}

/* On a worker: runs the job unless nobody waits, then posts it back. */
static void job_work(struct job *j)
{
	struct conn *c = j->conn;
	pthread_mutex_lock(&c->lock);
	int skip = j->cancelled || c->closed;
	pthread_mutex_unlock(&c->lock);
	if (!skip)
		job_run(c->svc, j);

	pthread_mutex_lock(&c->lock);
	int closed = c->closed;
	if (!closed) {
		j->next = c->done;
		c->done = j;
		if (eventfd_write(c->wake_fd, 1) < 0)
			vd_log(VD_LOG_DEBUG, "grpc: cannot wake a connection: %s", strerror(errno));
	}
	pthread_mutex_unlock(&c->lock);
	if (closed)
		job_free(j);
}

/* ---- the worker pool -------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct vd_grpc_server *srv = arg;
	pthread_mutex_lock(&srv->lock);
	for (;;) {
		while (!srv->queue_head && !srv->pool_stopping) {
			srv->idle_workers++;
			pthread_cond_wait(&srv->work, &srv->lock);
			srv->idle_workers--;
		}
		if (srv->pool_stopping)
			break;
		struct job *j = srv->queue_head;
		srv->queue_head = j->next;
		if (!srv->queue_head)
			srv->queue_tail = NULL;
		srv->n_queued--;
		pthread_mutex_unlock(&srv->lock);
		j->next = NULL;
		job_work(j);
		pthread_mutex_lock(&srv->lock);
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* Queues j, starting a worker when the idle ones cannot take it. */
static int pool_submit(struct vd_grpc_server *srv, struct job *j)
{
	int r = 0;
	pthread_mutex_lock(&srv->lock);
	if (srv->n_queued >= srv->idle_workers && srv->n_workers < srv->svc.limits.max_workers) {
		r = -pthread_create(&srv->workers[srv->n_workers], NULL, worker_main, srv);
		if (r == 0)
			srv->n_workers++;
	}
	if (r == 0 || srv->n_workers > 0) {
		r = 0;
		j->next = NULL;
		if (srv->queue_tail)
			srv->queue_tail->next = j;
		else
			srv->queue_head = j;
		srv->queue_tail = j;
		srv->n_queued++;
		pthread_cond_signal(&srv->work);
	}
	pthread_mutex_unlock(&srv->lock);
	return r;
}

/* Joins every worker (each finishes its handler) and drops queued jobs. */
static void pool_stop(struct vd_grpc_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->pool_stopping = 1;
	pthread_cond_broadcast(&srv->work);
	pthread_mutex_unlock(&srv->lock);
	for (unsigned i = 0; i < srv->n_workers; i++)
		pthread_join(srv->workers[i], NULL);
	while (srv->queue_head) {
		struct job *next = srv->queue_head->next;
		job_free(srv->queue_head);
		srv->queue_head = next;
	}
	srv->queue_tail = NULL;
}

/* ---- answering a stream ---------------------------------------------- */

static nghttp2_nv make_nv(const char *name, const char *value)
{
	nghttp2_nv nv = { (uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
			  NGHTTP2_NV_FLAG_NONE };
	return nv;
}

/* grpc-status and, when there is one, the percent-encoded grpc-message
 * appended to nva; returns the new count. Buffers are the caller's. */
static size_t status_nv(nghttp2_nv *nva, size_t n, int status, const char *msg,
			char code[12], char *enc, size_t enc_size)
{
	snprintf(code, 12, "%d", status);
	nva[n++] = make_nv("grpc-status", code);
	if (msg && msg[0]) {
		vd_grpc_percent_encode(msg, enc, enc_size);
		nva[n++] = make_nv("grpc-message", enc);
	}
	return n;
}

/* Answers with Trailers-Only: status and message in the response headers,
 * END_STREAM; http_status 200 unless the request was not gRPC at all. */
static void stream_fail(struct conn *c, struct stream *s, int http_status, int status,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void stream_fail(struct conn *c, struct stream *s, int http_status, int status,
			const char *fmt, ...)
{
	char msg[VD_ERR_MSG_MAX], enc[3 * VD_ERR_MSG_MAX], code[12], hs[12];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(hs, sizeof(hs), "%d", http_status);
	nghttp2_nv nva[4] = { make_nv(":status", hs), make_nv("content-type", "application/grpc") };
	size_t n = status_nv(nva, 2, status, msg, code, enc, sizeof(enc));

	if (s->job) {
		job_cancel(s->job);
		s->job = NULL;
	}
	stream_body_drop(c, s);
	s->state = ST_ANSWERED;
	vd_log(VD_LOG_DEBUG, "grpc: stream %d: %s: %s", s->id, vd_grpc_status_name(status), msg);
	if (nghttp2_submit_response(c->session, s->id, nva, n, NULL) != 0)
		nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
}

/* Serves prefix + message as DATA, then submits the trailers. */
static ssize_t on_read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
				size_t length, uint32_t *data_flags, nghttp2_data_source *source,
				void *user_data)
{
	struct stream *s = source->ptr;
	size_t total = VD_GRPC_PREFIX_LEN + s->resp_len, n = 0;
	(void)user_data;
	while (n < length && s->sent < total) {
		const uint8_t *from = s->sent < VD_GRPC_PREFIX_LEN ? s->prefix + s->sent
			: s->resp + (s->sent - VD_GRPC_PREFIX_LEN);
		size_t left = s->sent < VD_GRPC_PREFIX_LEN ? VD_GRPC_PREFIX_LEN - s->sent
			: total - s->sent;
		size_t chunk = left < length - n ? left : length - n;
		memcpy(buf + n, from, chunk);
		n += chunk;
		s->sent += chunk;
	}
	if (s->sent == total) {
		char code[12];
		nghttp2_nv nva[2];
		size_t nv = status_nv(nva, 0, VD_GRPC_OK, NULL, code, NULL, 0);
		*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(session, stream_id, nva, nv) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

/* Answers with the finished job's result. */
static void stream_answer(struct conn *c, struct stream *s, struct job *j)
{
	s->job = NULL;
	if (j->status != VD_GRPC_OK) {
		stream_fail(c, s, 200, j->status, "%s", vd_err_msg(&j->err));
		return;
	}
	s->resp = j->resp;
	s->resp_len = j->resp_len;
	j->resp = NULL;
	vd_grpc_prefix_encode(s->prefix, 0, (uint32_t)s->resp_len);
	s->state = ST_ANSWERED;
	nghttp2_nv nva[2] = { make_nv(":status", "200"), make_nv("content-type", "application/grpc") };
	nghttp2_data_provider dp = { .source.ptr = s, .read_callback = on_read_response };
	if (nghttp2_submit_response(c->session, s->id, nva, 2, &dp) != 0)
		nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id,
					  NGHTTP2_INTERNAL_ERROR);
}

/* Delivers a job posted back by a worker (or run inline), then frees it. */
static void job_deliver(struct conn *c, struct job *j)
{
	struct stream *s = nghttp2_session_get_stream_user_data(c->session, j->stream_id);
	if (s && s->job == j && s->state == ST_RUNNING)
		stream_answer(c, s, j);
	job_free(j);
}

/* ---- requests ---------------------------------------------------------- */

static int header_is(const uint8_t *name, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(name, want, len) == 0;
}

static void copy_shown(char *dst, size_t size, const uint8_t *src, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void stream_header(const struct grpc_service *svc, struct stream *s,
			  const uint8_t *name, size_t namelen, const uint8_t *value, size_t len)
{
	static const char grpc_type[] = "application/grpc";
	const size_t type_len = sizeof(grpc_type) - 1;
	if (header_is(name, namelen, ":method")) {
		s->is_post = header_is(value, len, "POST");
	} else if (header_is(name, namelen, ":path")) {
		s->method = service_find(svc, value, len);
		copy_shown(s->path, sizeof(s->path), value, len);
	} else if (header_is(name, namelen, "content-type")) {
		s->ctype_ok = len >= type_len && memcmp(value, grpc_type, type_len) == 0 &&
			(len == type_len || value[type_len] == '+' || value[type_len] == ';');
	} else if (header_is(name, namelen, "grpc-timeout")) {
		s->has_timeout = vd_grpc_timeout_parse((const char *)value, len, &s->timeout_ms) == 0;
		s->timeout_bad = !s->has_timeout;
		copy_shown(s->timeout_text, sizeof(s->timeout_text), value, len);
	}
}

/* The request headers are complete: refuse what cannot be served. */
static void stream_headers_done(struct conn *c, struct stream *s)
{
	if (!s->is_post)
		stream_fail(c, s, 405, VD_GRPC_INTERNAL, "gRPC requests use POST");
	else if (!s->ctype_ok)
		stream_fail(c, s, 415, VD_GRPC_INVALID_ARGUMENT,
			    "content-type must be application/grpc");
	else if (s->timeout_bad)
		stream_fail(c, s, 200, VD_GRPC_INVALID_ARGUMENT,
			    "grpc-timeout \"%s\" is malformed; 1 to 8 digits and a unit "
			    "H, M, S, m, u or n expected", s->timeout_text);
	else if (!s->method)
		stream_fail(c, s, 200, VD_GRPC_UNIMPLEMENTED,
			    "unknown method %s; this server implements: %s",
			    s->path, c->svc->method_list);
	else if (s->has_timeout && !c->sync)
		s->deadline = vd_now_ms() + (double)s->timeout_ms;
}

static void stream_dispatch(struct conn *c, struct stream *s, const uint8_t *msg, size_t len)
{
	struct job *j = job_new(c, s, msg, len);
	if (!j) {
		stream_fail(c, s, 200, VD_GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->job = j;
	s->state = ST_RUNNING;
	if (c->sync) {
		job_run(c->svc, j);
		job_deliver(c, j);
		return;
	}
	int r = pool_submit(c->srv, j);
	if (r < 0) {
		s->job = NULL;
		job_free(j);
		stream_fail(c, s, 200, VD_GRPC_UNAVAILABLE, "cannot start a worker thread: %s",
			    strerror(-r));
	}
}

/* END_STREAM: exactly one well-formed message, then the handler. */
static void stream_request_done(struct conn *c, struct stream *s)
{
	struct vd_err err = VD_ERR_INIT;
	const uint8_t *msg = NULL;
	size_t len = 0;
	if (s->state != ST_RECV)
		return;
	int status = vd_grpc_body_check(s->body, s->body_len, c->svc->limits.max_message, 1,
					&msg, &len, &err);
	if (status != VD_GRPC_OK)
		stream_fail(c, s, 200, status, "%s", err.msg);
	else
		stream_dispatch(c, s, msg, len);
}

/* Refuses the request (-1) when a body of len bytes, starting with the
 * bytes received so far, cannot be served. vd_grpc_body_check reads only
 * the prefix, so len may count bytes not buffered yet. */
static int stream_check(struct conn *c, struct stream *s, size_t len)
{
	struct vd_err err = VD_ERR_INIT;
	const uint8_t *msg;
	size_t msg_len;
	int status = vd_grpc_body_check(s->body, len, c->svc->limits.max_message, 0,
					&msg, &msg_len, &err);
	if (status == VD_GRPC_OK)
		return 0;
	stream_fail(c, s, 200, status, "%s", err.msg);
	return -1;
}

/* What one connection may hold of requests not yet complete: a few whole
 * messages, however many streams are open. */
#define CONN_BUFFER_MAX(c) (4 * ((c)->svc->limits.max_message + VD_GRPC_PREFIX_LEN))

/* Buffers request bytes, never more than one message and its prefix. */
static int stream_append(struct conn *c, struct stream *s, const uint8_t *data, size_t len)
{
	size_t limit = c->svc->limits.max_message + VD_GRPC_PREFIX_LEN;
	if (len > limit - s->body_len) {
		stream_fail(c, s, 200, VD_GRPC_RESOURCE_EXHAUSTED,
			    "request body of more than %zu bytes exceeds the message limit of "
			    "%zu bytes", s->body_len + len, c->svc->limits.max_message);
		return -1;
	}
	if (s->body_len + len > s->body_cap) {
		size_t cap = s->body_cap ? s->body_cap : 1024;
		while (cap < s->body_len + len)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		if (c->buffered + (cap - s->body_cap) > CONN_BUFFER_MAX(c)) {
			stream_fail(c, s, 200, VD_GRPC_RESOURCE_EXHAUSTED,
				    "this connection holds more than %zu bytes of unfinished "
				    "requests; send fewer at once", CONN_BUFFER_MAX(c));
			return -1;
		}
		uint8_t *bigger = realloc(s->body, cap);
		if (!bigger) {
			stream_fail(c, s, 200, VD_GRPC_RESOURCE_EXHAUSTED, "out of memory");
			return -1;
		}
		c->buffered += cap - s->body_cap;
		s->body = bigger;
		s->body_cap = cap;
	}
	memcpy(s->body + s->body_len, data, len);
	s->body_len += len;
	return 0;
}

/* The prefix first; then each chunk is checked against it before it is
 * buffered, so a message too large or a second one is refused at once. */
static void stream_body(struct conn *c, struct stream *s, const uint8_t *data, size_t len)
{
	if (s->body_len < VD_GRPC_PREFIX_LEN) {
		size_t n = VD_GRPC_PREFIX_LEN - s->body_len;
		if (n > len)
			n = len;
		if (stream_append(c, s, data, n) < 0 || stream_check(c, s, s->body_len) < 0)
			return;
		data += n;
		len -= n;
	}
	if (len && stream_check(c, s, s->body_len + len) == 0)
		stream_append(c, s, data, len);
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static struct stream *stream_of(struct conn *c, int32_t id)
{
	return nghttp2_session_get_stream_user_data(c->session, id);
}

static int is_request_headers(const nghttp2_frame *frame)
{
	return frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct conn *c = user_data;
	if (!is_request_headers(frame))
		return 0;
	struct stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s->id = frame->hd.stream_id;
	if (nghttp2_session_set_stream_user_data(session, s->id, s) != 0) {
		free(s);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame,
		     const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
		     uint8_t flags, void *user_data)
{
	struct conn *c = user_data;
	(void)session;
	(void)flags;
	struct stream *s = is_request_headers(frame) ? stream_of(c, frame->hd.stream_id) : NULL;
	if (s)
		stream_header(c->svc, s, name, namelen, value, valuelen);
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
			 const uint8_t *data, size_t len, void *user_data)
{
	struct conn *c = user_data;
	(void)session;
	(void)flags;
	struct stream *s = stream_of(c, stream_id);
	if (s && s->state == ST_RECV)
		stream_body(c, s, data, len);
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct conn *c = user_data;
	(void)session;
	struct stream *s = frame->hd.stream_id ? stream_of(c, frame->hd.stream_id) : NULL;
	if (!s)
		return 0;
	if (is_request_headers(frame) && s->state == ST_RECV)
		stream_headers_done(c, s);
	if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		s->req_done = 1;
		stream_request_done(c, s);
	}
	return 0;
}

/* After an early Trailers-Only answer, stop the rest of the request. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct conn *c = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct stream *s = stream_of(c, frame->hd.stream_id);
	if (s && !s->req_done)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
			   void *user_data)
{
	struct conn *c = user_data;
	(void)session;
	(void)error_code;
	struct stream *s = stream_of(c, stream_id);
	if (!s)
		return 0;
	if (s->job)
		job_cancel(s->job);
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	stream_body_drop(c, s);
	stream_free(s);
	return 0;
}

/* A server session with the callbacks above; SETTINGS submitted. */
static int conn_session_new(struct conn *c)
{
	nghttp2_session_callbacks *cb;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	int r = nghttp2_session_server_new(&c->session, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (r != 0)
		return -ENOMEM;
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->svc->limits.max_streams },
	};
	if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 1) != 0)
		return -ENOMEM;
	return 0;
}

/* Feeds received bytes to the session; a fatal error queues GOAWAY. */
static int conn_recv(struct conn *c, const uint8_t *data, size_t len)
{
	ssize_t r = nghttp2_session_mem_recv(c->session, data, len);
	if (r >= 0)
		return 0;
	vd_log(VD_LOG_DEBUG, "grpc: closing a connection: %s", nghttp2_strerror((int)r));
	nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
	return -EPROTO;
}

/* ---- the connection thread -------------------------------------------- */

/* Appends what the session has to send to c->out, up to about a batch. */
static int conn_gather(struct conn *c)
{
	while (c->out_len < GRPC_OUT_BATCH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->session, &data);
		if (n <= 0)
			return n < 0 ? -1 : 0;
		if ((size_t)n > c->out_cap - c->out_len) {
			uint8_t *bigger = realloc(c->out, c->out_len + (size_t)n);
			if (!bigger)
				return -1;
			c->out = bigger;
			c->out_cap = c->out_len + (size_t)n;
		}
		memcpy(c->out + c->out_len, data, (size_t)n);
		c->out_len += (size_t)n;
	}
	return 0;
}

/* Writes what the session has to send, never blocking: what the socket
 * does not take stays in c->out for POLLOUT. Returns 0 or -1 (closed). */
static int conn_flush(struct conn *c)
{
	for (;;) {
		if (c->out_off == c->out_len) {
			c->out_off = c->out_len = 0;
			if (conn_gather(c) < 0)
				return -1;
			if (c->out_len == 0)
				return 0;
		}
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->out_off += (size_t)w;
		c->last_io = vd_now_ms();
	}
}

static int conn_read(struct conn *c)
{
	uint8_t buf[GRPC_READ_CHUNK];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	c->last_io = vd_now_ms();
	if (conn_recv(c, buf, (size_t)n) < 0) {
		conn_flush(c);     /* the GOAWAY, if the peer takes it */
		return -1;
	}
	return 0;
}

/* Submits the results the workers posted. */
static void conn_collect(struct conn *c)
{
	eventfd_t v;
	(void)eventfd_read(c->wake_fd, &v);
	pthread_mutex_lock(&c->lock);
	struct job *j = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->lock);
	while (j) {
		struct job *next = j->next;
		job_deliver(c, j);
		j = next;
	}
}

/* Answers the calls whose deadline has passed. */
static void conn_expire(struct conn *c, double now)
{
	for (struct stream *s = c->streams; s; s = s->next)
		if (s->state != ST_ANSWERED && s->deadline && now >= s->deadline)
			stream_fail(c, s, 200, VD_GRPC_DEADLINE_EXCEEDED,
				    "deadline exceeded: no answer within %llu ms",
				    (unsigned long long)s->timeout_ms);
}

/* 1 when nothing moved for the idle time-out, neither the peer nor a
 * handler (a peer not reading our answers counts as idle): then GOAWAY. */
static int conn_idle(struct conn *c, double now)
{
	int busy = 0;
	for (const struct stream *s = c->streams; s && !busy; s = s->next)
		busy = s->state == ST_RUNNING;
	if (now - c->last_io < c->svc->limits.idle_timeout_ms || (busy && c->out_len == 0))
		return 0;
	vd_log(VD_LOG_DEBUG, "grpc: closing a connection idle or not reading for %u ms",
	       c->svc->limits.idle_timeout_ms);
	nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
	conn_flush(c);
	return 1;
}

/* Milliseconds until the next deadline, idle time-out or stop grace. */
static int conn_timeout(const struct conn *c, double now)
{
	double next = c->last_io + c->svc->limits.idle_timeout_ms;
	for (const struct stream *s = c->streams; s; s = s->next)
		if (s->state != ST_ANSWERED && s->deadline && s->deadline < next)
			next = s->deadline;
	if (c->stop_by && c->stop_by < next)
		next = c->stop_by;
	if (next <= now)
		return 0;
	return next - now > 3600000 ? 3600000 : (int)(next - now) + 1;
}

/* One turn of the connection loop; returns -1 when the connection ends. */
static int conn_step(struct conn *c)
{
	double now = vd_now_ms();
	if (atomic_load(&c->srv->stopping) && !c->stop_by) {
		nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
		c->stop_by = now + GRPC_STOP_GRACE_MS;
	}
	if (c->stop_by && now >= c->stop_by)
		return -1;
	if (conn_flush(c) < 0)
		return -1;
	int want_read = nghttp2_session_want_read(c->session);
	if (!c->out_len && !want_read && !nghttp2_session_want_write(c->session))
		return -1;
	if (conn_idle(c, now))
		return -1;
	struct pollfd pfd[2] = {
		{ c->fd, (short)((want_read ? POLLIN : 0) | (c->out_len ? POLLOUT : 0)), 0 },
		{ c->wake_fd, POLLIN, 0 },
	};
	if (poll(pfd, 2, conn_timeout(c, now)) < 0)
		return errno == EINTR ? 0 : -1;
	if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && conn_read(c) < 0)
		return -1;
	if (pfd[1].revents & POLLIN)
		conn_collect(c);
	conn_expire(c, vd_now_ms());
	return 0;
}

static void server_forget_conn(struct vd_grpc_server *srv, struct conn *c)
{
	pthread_mutex_lock(&srv->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	pthread_cond_broadcast(&srv->conns_gone);
	pthread_mutex_unlock(&srv->lock);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct vd_grpc_server *srv = c->srv;
	while (conn_step(c) == 0)
		;
	conn_shutdown(c);
	server_forget_conn(srv, c);   /* srv may be freed from here on */
	conn_unref(c);
	return NULL;
}

/* ---- accepting ---------------------------------------------------------- */

/* Registers and starts a connection on fd, or closes fd. */
static void conn_start(struct vd_grpc_server *srv, int fd)
{
	struct conn *c = conn_new(&srv->svc, srv, fd);
	if (!c || conn_session_new(c) < 0) {
		vd_log(VD_LOG_WARN, "grpc: out of memory for a new connection");
		goto fail;
	}
	pthread_mutex_lock(&srv->lock);
	int full = srv->n_conns >= srv->svc.limits.max_connections;
	if (!full) {
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->n_conns++;
	}
	pthread_mutex_unlock(&srv->lock);
	if (full) {
		vd_log(VD_LOG_WARN, "grpc: refusing a connection: %u connections already open",
		       srv->svc.limits.max_connections);
		goto fail;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (r == 0)
		return;
	vd_log(VD_LOG_WARN, "grpc: cannot start a connection thread: %s", strerror(r));
	server_forget_conn(srv, c);
fail:
	if (c) {
		conn_shutdown(c);
		conn_unref(c);
	} else {
		close(fd);
	}
}

static void *accept_main(void *arg)
{
	struct vd_grpc_server *srv = arg;
	for (;;) {
		struct pollfd pfd[2] = { { srv->sock.fd, POLLIN, 0 }, { srv->stop_fd, POLLIN, 0 } };
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		int fd = accept4(srv->sock.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			conn_start(srv, fd);
		} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			vd_log(VD_LOG_WARN, "grpc: accept on %s: %s", srv->sock.path, strerror(errno));
			poll(NULL, 0, GRPC_ACCEPT_BACKOFF_MS);
		}
	}
	return NULL;
}

/* ---- the server ---------------------------------------------------------- */

static void server_free(struct vd_grpc_server *srv)
{
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	pthread_cond_destroy(&srv->work);
	pthread_cond_destroy(&srv->conns_gone);
	pthread_mutex_destroy(&srv->lock);
	free(srv->workers);
	service_free(&srv->svc);
	free(srv);
}

int vd_grpc_listen_unix(const char *path, const struct vd_grpc_method *methods,
			size_t n_methods, void *userdata, const struct vd_grpc_limits *limits,
			struct vd_grpc_server **ret_server, struct vd_err *err)
{
	if (!path || (!methods && n_methods) || !ret_server)
		return vd_err_set(err, -EINVAL, "grpc server: a socket path and methods are required");
	struct vd_grpc_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return vd_err_set(err, -ENOMEM, "out of memory");
	int r = service_init(&srv->svc, methods, n_methods, userdata, limits, err);
	if (r < 0) {
		free(srv);
		return r;
	}
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->conns_gone, NULL);
	pthread_cond_init(&srv->work, NULL);
	srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv->workers = calloc(srv->svc.limits.max_workers, sizeof(*srv->workers));
	if (srv->stop_fd < 0 || !srv->workers) {
		r = vd_err_set(err, -ENOMEM, "grpc server: out of memory or file descriptors");
		goto fail;
	}
	r = vd_usock_listen(path, srv->svc.limits.socket_mode, GRPC_LISTEN_BACKLOG, &srv->sock, err);
	if (r < 0)
		goto fail;
	r = -pthread_create(&srv->accept_thread, NULL, accept_main, srv);
	if (r < 0) {
		vd_usock_close(&srv->sock);
		vd_err_set(err, r, "grpc server: cannot start a thread: %s", strerror(-r));
		goto fail;
	}
	*ret_server = srv;
	return 0;

fail:
	server_free(srv);
	return r;
}

void vd_grpc_stop(struct vd_grpc_server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->stopping, 1);
	eventfd_write(srv->stop_fd, 1);
	pthread_join(srv->accept_thread, NULL);
	vd_usock_close(&srv->sock);

	pthread_mutex_lock(&srv->lock);
	for (struct conn *c = srv->conns; c; c = c->next)
		eventfd_write(c->wake_fd, 1);
	while (srv->n_conns)
		pthread_cond_wait(&srv->conns_gone, &srv->lock);
	pthread_mutex_unlock(&srv->lock);

	pool_stop(srv);
	server_free(srv);
}

/* ---- in memory, for the fuzzer ---------------------------------------- */

static void conn_discard_output(struct conn *c)
{
	const uint8_t *data;
	while (nghttp2_session_mem_send(c->session, &data) > 0)
		;
}

int vd_grpc_session_feed(const struct vd_grpc_method *methods, size_t n_methods,
			 void *userdata, const struct vd_grpc_limits *limits,
			 const uint8_t *data, size_t len)
{
	struct grpc_service svc;
	int r = service_init(&svc, methods, n_methods, userdata, limits, NULL);
	if (r < 0)
		return r;
	struct conn *c = conn_new(&svc, NULL, -1);
	if (!c || conn_session_new(c) < 0) {
		r = -ENOMEM;
		goto out;
	}
	/* In chunks, answering between them, as a socket would deliver it. */
	for (size_t off = 0; off < len && r == 0; off += GRPC_FEED_CHUNK) {
		size_t n = len - off < GRPC_FEED_CHUNK ? len - off : GRPC_FEED_CHUNK;
		r = conn_recv(c, data + off, n);
		conn_discard_output(c);
	}
	conn_discard_output(c);
out:
	if (c) {
		conn_shutdown(c);
		conn_unref(c);
	}
	service_free(&svc);
	return r;
}
