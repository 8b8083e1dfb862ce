/* err.c — the per-request error object and the errno mapping table.
 * No shared state; thread-safe. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vd_err_setv(struct vd_err *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return code;
}

int vd_err_set(struct vd_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vd_err_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int vd_err_prefix(struct vd_err *err, const char *fmt, ...)
{
	if (!err)
		return 0;
	char prefix[VD_ERR_MSG_MAX], old[VD_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(old, sizeof(old), "%s", vd_err_msg(err));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return err->code;
}

void vd_err_clear(struct vd_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

const char *vd_err_msg(const struct vd_err *err)
{
	if (!err)
		return "";
	if (err->msg[0])
		return err->msg;
	return err->code ? strerror(-err->code) : "";
}

/* The one table: errno -> REST status, gRPC status, stable kind word. */
struct errno_map {
	int code;
	int http;
	int grpc;
	const char *kind;
};

enum {
	GRPC_UNKNOWN = 2, GRPC_INVALID_ARGUMENT = 3, GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5, GRPC_ALREADY_EXISTS = 6, GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8, GRPC_FAILED_PRECONDITION = 9, GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11, GRPC_UNIMPLEMENTED = 12, GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14, GRPC_UNAUTHENTICATED = 16,
};

static const struct errno_map errno_table[] = {
	{ -EINVAL, 400, GRPC_INVALID_ARGUMENT, "invalid" },
	{ -ENAMETOOLONG, 400, GRPC_INVALID_ARGUMENT, "invalid" },
	{ -E2BIG, 400, GRPC_INVALID_ARGUMENT, "invalid" },
	{ -EFBIG, 413, GRPC_OUT_OF_RANGE, "too-large" },
	{ -ERANGE, 400, GRPC_OUT_OF_RANGE, "out-of-range" },
	{ -ENOENT, 404, GRPC_NOT_FOUND, "not-found" },
	{ -EEXIST, 409, GRPC_ALREADY_EXISTS, "exists" },
	{ -EBUSY, 409, GRPC_FAILED_PRECONDITION, "busy" },
	{ -ESTALE, 409, GRPC_ABORTED, "conflict" },
	{ -EAGAIN, 503, GRPC_UNAVAILABLE, "unavailable" },
	{ -ETIMEDOUT, 504, GRPC_DEADLINE_EXCEEDED, "timeout" },
	{ -EACCES, 403, GRPC_PERMISSION_DENIED, "denied" },
	{ -EPERM, 403, GRPC_PERMISSION_DENIED, "denied" },
	/* The caller did not prove who it is (no or a wrong bearer token),
	 * as opposed to "denied": known, but not allowed. */
	{ -EKEYREJECTED, 401, GRPC_UNAUTHENTICATED, "unauthorized" },
	{ -ENOSPC, 507, GRPC_RESOURCE_EXHAUSTED, "no-space" },
	{ -EOPNOTSUPP, 501, GRPC_UNIMPLEMENTED, "unsupported" },
	{ -ENOSYS, 501, GRPC_UNIMPLEMENTED, "unsupported" },
	{ -EHOSTUNREACH, 503, GRPC_UNAVAILABLE, "unavailable" },
	{ -ECONNREFUSED, 503, GRPC_UNAVAILABLE, "unavailable" },
	{ -ENOTCONN, 503, GRPC_UNAVAILABLE, "unavailable" },
};

static const struct errno_map *errno_lookup(int code)
{
	static const struct errno_map internal = { 0, 500, GRPC_INTERNAL, "internal" };
	for (size_t i = 0; i < sizeof(errno_table) / sizeof(errno_table[0]); i++)
		if (errno_table[i].code == code)
			return &errno_table[i];
	return &internal;
}

int vd_errno_http_status(int code)
{
	return code == 0 ? 200 : errno_lookup(code)->http;
}

int vd_errno_grpc_status(int code)
{
	return code == 0 ? 0 : errno_lookup(code)->grpc;
}

const char *vd_errno_kind(int code)
{
	return code == 0 ? "ok" : errno_lookup(code)->kind;
}
