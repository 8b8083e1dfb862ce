/* err.h — the per-request error object and the one errno mapping table.
 *
 * Functions return 0 or a negative errno; the human detail goes into a
 * struct vd_err owned by the caller (usually on its stack). No locking:
 * an error object belongs to one request. */
#ifndef VD_ERR_H
#define VD_ERR_H

#include <stdarg.h>

#define VD_ERR_MSG_MAX 512

struct vd_err {
	int code;                  /* negative errno, 0 when unset */
	char msg[VD_ERR_MSG_MAX];  /* what was wrong and what is allowed */
};

#define VD_ERR_INIT { 0, "" }

/* Sets err (if not NULL) and returns code, so callers can write
 * `return vd_err_set(err, -EINVAL, "size %s: ...", s);`. A message already
 * present is kept unless code differs from 0 and msg is empty. */
int vd_err_set(struct vd_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vd_err_setv(struct vd_err *err, int code, const char *fmt, va_list ap);

/* Prefixes the existing message with context: "volume x: <old message>". */
int vd_err_prefix(struct vd_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void vd_err_clear(struct vd_err *err);

/* The message for err, falling back to strerror(-code) when none was set. */
const char *vd_err_msg(const struct vd_err *err);

/* Mapping of a negative errno onto the front-ends' vocabularies. */
int vd_errno_http_status(int code);   /* REST API status: 400, 404, 409, ... */
int vd_errno_grpc_status(int code);   /* gRPC status code: 3 INVALID_ARGUMENT, ... */
const char *vd_errno_kind(int code);  /* short stable word: "invalid", "not-found", ... */

#endif
