/* http.c — the HTTP/1.1 server on a unix socket shared by the Docker
 * plugin and the REST API (libmicrohttpd).
 *
 * We bind the socket ourselves (usock.c: replacing a stale one, refusing a
 * live one) and hand it to libmicrohttpd, which serves each connection on its
 * own thread, so handlers may block (mkfs takes seconds). Each request's
 * body is collected into a per-request buffer up to max_body; a larger one
 * is dropped and the handler is told so (too_large) to answer 413 in its
 * own protocol. Threads: libmicrohttpd's listener plus one per connection;
 * the server object is read-only while serving, so there are no locks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "http.h"
#include "log.h"
#include "usock.h"

#define HTTP_CONNECTION_TIMEOUT_S 60
#define HTTP_CONNECTION_LIMIT 128
#define HTTP_LISTEN_BACKLOG 64

struct vd_http_server {
	struct MHD_Daemon *mhd;
	struct vd_usock sock;    /* libmicrohttpd owns sock.fd once started */
	size_t max_body;
	vd_http_handler handler;
	void *userdata;
};

/* One request's upload state (libmicrohttpd's con_cls). */
struct http_body {
	char *buf;               /* NUL-terminated, NULL while empty */
	size_t len;
	size_t cap;
	int too_large;
};

static void body_free(struct http_body *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

/* Appends data, or drops everything once the limit is passed. */
static int body_append(struct http_body *b, size_t max_body, const char *data, size_t len)
{
	if (b->too_large)
		return 0;
	if (len > max_body - b->len) {
		free(b->buf);
		b->buf = NULL;
		b->len = b->cap = 0;
		b->too_large = 1;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + len + 1)
			cap *= 2;
		if (cap > max_body + 1)
			cap = max_body + 1;
		char *bigger = realloc(b->buf, cap);
		if (!bigger)
			return -ENOMEM;
		b->buf = bigger;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return 0;
}

/* 1 when the request announces a body larger than max_body. */
static int declared_too_large(struct MHD_Connection *conn, size_t max_body)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!s)
		return 0;
	errno = 0;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s)
		return 0;   /* libmicrohttpd itself rejects a malformed length */
	return errno == ERANGE || n > max_body;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct vd_http_response *resp)
{
	size_t len = resp->body ? strlen(resp->body) : 0;
	struct MHD_Response *r;
	if (len)
		r = MHD_create_response_from_buffer(len, resp->body, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r || !len)
		free(resp->body);
	if (!r)
		return MHD_NO;
	unsigned status = resp->status >= 100 && resp->status <= 599 ? (unsigned)resp->status : 500;
	enum MHD_Result ret = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
			resp->content_type ? resp->content_type : "application/json");
	if (ret == MHD_YES)
		ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result dispatch(struct vd_http_server *srv, struct MHD_Connection *conn,
				const char *url, const char *method, const struct http_body *b)
{
	struct vd_http_request req = {
		.method = method,
		.path = url,
		.body = b->buf ? b->buf : "",
		.body_len = b->len,
		.too_large = b->too_large,
		.max_body = srv->max_body,
	};
	struct vd_http_response resp = { .status = 200, .body = NULL, .content_type = NULL };
	srv->handler(srv->userdata, &req, &resp);
	return send_response(conn, &resp);
}

/* Called once at the headers, once per body chunk, once at the end. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct vd_http_server *srv = cls;
	struct http_body *b = *con_cls;
	(void)version;

	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		if (!declared_too_large(conn, srv->max_body))
			return MHD_YES;
		/* Answer before the body is sent; libmicrohttpd then
		 * discards it and closes the connection. */
		b->too_large = 1;
		return dispatch(srv, conn, url, method, b);
	}
	if (*upload_data_size) {
		if (body_append(b, srv->max_body, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return dispatch(srv, conn, url, method, b);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	body_free(*con_cls);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	vd_log(VD_LOG_DEBUG, "http: %s", line);
}

int vd_http_listen_unix(const char *path, mode_t mode, size_t max_body,
			vd_http_handler handler, void *userdata,
			struct vd_http_server **ret_server, struct vd_err *err)
{
	if (!path || !handler || !ret_server)
		return vd_err_set(err, -EINVAL, "http server: a socket path and a handler are required");
	struct vd_http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return vd_err_set(err, -ENOMEM, "out of memory");
	srv->max_body = max_body;
	srv->handler = handler;
	srv->userdata = userdata;
	int r = vd_usock_listen(path, mode, HTTP_LISTEN_BACKLOG, &srv->sock, err);
	if (r < 0) {
		free(srv);
		return r;
	}

	srv->mhd = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, srv->sock.fd,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTION_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	if (!srv->mhd) {
		r = vd_err_set(err, -EIO, "cannot start the HTTP server on %s", path);
		vd_usock_close(&srv->sock);
		free(srv);
		return r;
	}
	*ret_server = srv;
	return 0;
}

void vd_http_stop(struct vd_http_server *server)
{
	if (!server)
		return;
	/* Joins every connection thread and closes the listening socket. */
	MHD_stop_daemon(server->mhd);
	vd_usock_unlink(&server->sock);
	free(server);
}

void vd_http_reply_json(struct vd_http_response *resp, int status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	free(resp->body);
	resp->status = text ? status : 500;
	resp->body = text;
}
