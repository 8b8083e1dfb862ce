/* http.h — a small HTTP/1.1 server on a unix socket (libmicrohttpd).
 *
 * Shared by the Docker plugin and the REST API: it collects the request
 * body (up to a limit) and hands method, path and body to one handler that
 * returns a status and a JSON body. A body over the limit is dropped and
 * the handler is called with too_large set, so it answers 413 in its own
 * protocol's error shape. Threads: one thread per connection, so handlers
 * may block; the handler must be thread-safe. */
#ifndef VD_HTTP_H
#define VD_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "err.h"

struct vd_http_request {
	const char *method;   /* "GET", "POST", ... */
	const char *path;     /* "/VolumeDriver.Create", "/v1/volumes/x" (no query) */
	const char *body;     /* NUL-terminated; "" when none */
	size_t body_len;
	int too_large;        /* 1: the body exceeded max_body and was dropped
			       * (body ""); answer 413 without acting */
	size_t max_body;      /* the server's limit, for that message */
};

struct vd_http_response {
	int status;           /* HTTP status, 200 unless set */
	char *body;           /* malloc'd JSON text, owned by the server after return */
	const char *content_type; /* NULL: "application/json" */
};

typedef void (*vd_http_handler)(void *userdata, const struct vd_http_request *req,
				struct vd_http_response *resp);

struct vd_http_server;

/* Binds path (replacing a stale socket, creating the parent directory),
 * sets its mode, and starts serving. max_body bounds request bodies. */
int vd_http_listen_unix(const char *path, mode_t mode, size_t max_body,
			vd_http_handler handler, void *userdata,
			struct vd_http_server **ret_server, struct vd_err *err);

/* Stops serving, waits for running handlers, unlinks the socket. NULL: no-op. */
void vd_http_stop(struct vd_http_server *server);

/* Sets resp to status + JSON text of obj (stealing the reference). obj
 * NULL or unserializable (out of memory): 500 with an empty body. */
void vd_http_reply_json(struct vd_http_response *resp, int status, json_t *obj);

#endif
