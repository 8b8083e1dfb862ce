/* http.h — a small HTTP/1.1 server on a unix socket, or over HTTPS on TCP
 * with a bearer token (libmicrohttpd).
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

/* Serves over HTTPS on TCP: addr is "IPV4:PORT", "[IPV6]:PORT" or
 * "HOST:PORT" (port 0: any free one, see vd_http_port). cert_file and
 * key_file are PEM files (the key unencrypted), read into memory here.
 * Every request must carry "Authorization: Bearer <token>"; any other is
 * answered 401 {"error":"missing or invalid bearer token","kind":
 * "unauthorized"} with "WWW-Authenticate: Bearer", before its body is read
 * and without calling the handler. token (non-empty) is copied, and zeroed
 * when the server stops. -EOPNOTSUPP when libmicrohttpd lacks TLS. */
int vd_http_listen_tcp(const char *addr, const char *cert_file, const char *key_file,
		       const char *token, size_t max_body, vd_http_handler handler,
		       void *userdata, struct vd_http_server **ret_server, struct vd_err *err);

/* The TCP port a server listens on (the one picked for port 0); 0 for a
 * unix-socket server. */
unsigned vd_http_port(const struct vd_http_server *server);

/* Stops serving, waits for running handlers, unlinks the socket (if a unix
 * one). NULL: no-op. */
void vd_http_stop(struct vd_http_server *server);

/* Sets resp to status + JSON text of obj (stealing the reference). obj
 * NULL or unserializable (out of memory): 500 with an empty body. */
void vd_http_reply_json(struct vd_http_response *resp, int status, json_t *obj);

/* Pure helpers, exposed for config.c and the unit tests. */

/* Splits "IPV4:PORT", "[IPV6]:PORT" or "HOST:PORT" into host (without the
 * brackets; host_len bytes) and port (0..65535). -EINVAL saying what is
 * allowed. No I/O: a host name is checked for its syntax only. */
int vd_http_split_hostport(const char *s, char *host, size_t host_len, unsigned *ret_port,
			   struct vd_err *err);

/* 1 when authorization (an Authorization header's value, NULL when absent)
 * is "Bearer <token>" (the scheme in any case), else 0. The comparison
 * takes the same time whatever the given token holds. */
int vd_http_bearer_ok(const char *authorization, const char *token);

#define VD_HTTP_UNAUTHORIZED_MSG "missing or invalid bearer token"

#endif
