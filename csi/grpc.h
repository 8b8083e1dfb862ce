/* grpc.h — a unary-only gRPC server over HTTP/2 (nghttp2) on a unix socket.
 *
 * The transport under the CSI services, knowing nothing of CSI: a method is
 * a path ("/csi.v1.Identity/Probe") and a handler taking the request
 * message's bytes and returning the response message's bytes; protobuf
 * (de)serialization is the caller's. HTTP/2 with prior knowledge only (no
 * TLS, no h2c upgrade), as gRPC clients speak on unix sockets.
 *
 * Threads: one accept thread; one thread per connection owning its nghttp2
 * session (reads, writes, deadlines, answers); a bounded pool of worker
 * threads running handlers, so the streams of one connection run
 * concurrently and a slow handler never holds up a fast one. Handlers must
 * be thread-safe and may block.
 *
 * Wire behaviour (see grpc.c for the details):
 * - a request is exactly one length-prefixed message; compression is
 *   refused (UNIMPLEMENTED), a message over max_message is refused
 *   (RESOURCE_EXHAUSTED) as soon as its prefix or its bytes arrive, a
 *   missing, truncated or second message is INTERNAL (as grpc-java and
 *   grpc-go answer a unary cardinality violation);
 * - an unknown path is UNIMPLEMENTED and lists the implemented ones;
 * - a non-POST request is HTTP 405 (grpc-status INTERNAL), a content-type
 *   not starting with application/grpc is HTTP 415 (INVALID_ARGUMENT);
 * - grpc-timeout is honoured: past the deadline the call is answered
 *   DEADLINE_EXCEEDED; a handler still running goes on and its result is
 *   discarded; a malformed grpc-timeout is INVALID_ARGUMENT;
 * - errors found before a response message use a Trailers-Only response;
 * - malformed HTTP/2 ends the connection with GOAWAY; a connection without
 *   traffic or running calls for idle_timeout_ms is closed, as is one whose
 *   peer stops reading for that long. */
#ifndef VD_GRPC_H
#define VD_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../volumed/err.h"

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum vd_grpc_status {
	VD_GRPC_OK = 0,
	VD_GRPC_CANCELLED = 1,
	VD_GRPC_UNKNOWN = 2,
	VD_GRPC_INVALID_ARGUMENT = 3,
	VD_GRPC_DEADLINE_EXCEEDED = 4,
	VD_GRPC_NOT_FOUND = 5,
	VD_GRPC_ALREADY_EXISTS = 6,
	VD_GRPC_PERMISSION_DENIED = 7,
	VD_GRPC_RESOURCE_EXHAUSTED = 8,
	VD_GRPC_FAILED_PRECONDITION = 9,
	VD_GRPC_ABORTED = 10,
	VD_GRPC_OUT_OF_RANGE = 11,
	VD_GRPC_UNIMPLEMENTED = 12,
	VD_GRPC_INTERNAL = 13,
	VD_GRPC_UNAVAILABLE = 14,
	VD_GRPC_DATA_LOSS = 15,
	VD_GRPC_UNAUTHENTICATED = 16,
};

/* A method handler: the request message in (req_len may be 0, req is then
 * still a valid pointer), the response message out as malloc'd bytes
 * (*ret_resp may stay NULL for an empty message). Returns VD_GRPC_OK, a
 * gRPC status code (> 0) with the message in err, or a negative errno
 * (mapped with vd_errno_grpc_status()). On failure *ret_resp is ignored
 * (freed if set). Runs on a worker thread; may block; must be thread-safe. */
typedef int (*vd_grpc_handler)(void *userdata, const uint8_t *req, size_t req_len,
			       uint8_t **ret_resp, size_t *ret_len, struct vd_err *err);

struct vd_grpc_method {
	const char *path;          /* "/csi.v1.Identity/Probe"; must outlive the server */
	vd_grpc_handler handler;
};

/* Zero fields take the defaults shown. Request bodies are buffered up to
 * one message each, so a connection holds at most about
 * max_streams * max_message bytes of requests. */
struct vd_grpc_limits {
	size_t max_message;        /* bytes of one message, request or response: 4 MiB */
	unsigned max_streams;      /* concurrent streams per connection (SETTINGS): 256 */
	unsigned max_connections;  /* more are accepted and closed at once: 64 */
	unsigned max_workers;      /* handler threads, server-wide: 16 */
	unsigned idle_timeout_ms;  /* see above: 600000 (10 minutes) */
	mode_t socket_mode;        /* of the socket file: 0600 */
};

struct vd_grpc_server;

/* Binds path (parent directory created, a stale socket replaced, a live one
 * refused: usock.h) and serves methods (copied; their paths are not) with
 * userdata passed to every handler. limits NULL: all defaults. */
int vd_grpc_listen_unix(const char *path, const struct vd_grpc_method *methods,
			size_t n_methods, void *userdata, const struct vd_grpc_limits *limits,
			struct vd_grpc_server **ret_server, struct vd_err *err);

/* Stops accepting, ends every connection (GOAWAY, at most one second to
 * flush), waits for running handlers to return, unlinks the socket and
 * frees the server. NULL: no-op. */
void vd_grpc_stop(struct vd_grpc_server *server);

/* For the fuzzer: runs one server connection in memory over data, the
 * bytes a client sent (preface, frames), with handlers run synchronously
 * on the calling thread and deadlines ignored; what the server writes is
 * discarded. Returns 0, or -EPROTO when the session ended in a fatal
 * error (bad preface, ...), -ENOMEM. */
int vd_grpc_session_feed(const struct vd_grpc_method *methods, size_t n_methods,
			 void *userdata, const struct vd_grpc_limits *limits,
			 const uint8_t *data, size_t len);

#endif
