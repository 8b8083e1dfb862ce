/* fuzz_grpc.c — a client's byte stream (preface, frames, requests) into an
 * in-memory server connection, handlers run synchronously: echo, a failing
 * one, and one answering more than the message limit. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../csi/grpc.h"
#include "../../volumed/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int echo(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
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
	return 0;
}

static int fail(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
		size_t *ret_len, struct vd_err *err)
{
	(void)userdata;
	(void)ret_resp;
	(void)ret_len;
	vd_err_set(err, -EINVAL, "bad request of %zu bytes: %.*s", len,
		   (int)(len < 64 ? len : 64), (const char *)req);
	return len ? req[0] : 99;    /* any code, even out of range */
}

static int huge(void *userdata, const uint8_t *req, size_t len, uint8_t **ret_resp,
		size_t *ret_len, struct vd_err *err)
{
	(void)userdata;
	(void)req;
	(void)len;
	(void)err;
	*ret_resp = calloc(1, 2048);
	*ret_len = *ret_resp ? 2048 : 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct vd_grpc_method methods[] = {
		{ "/x.Y/Echo", echo }, { "/x.Y/Fail", fail }, { "/x.Y/Huge", huge },
	};
	static const struct vd_grpc_limits limits = { .max_message = 1024, .max_streams = 8 };
	vd_log_set_level(VD_LOG_ERROR);
	vd_grpc_session_feed(methods, 3, NULL, &limits, data, size);
	return 0;
}
