/* fuzz_api.c — the whole REST API handler on arbitrary requests.
 *
 * Input: "METHOD PATH" up to the first newline, then the body. Requests
 * reach a real core on a private state directory, made on the first input
 * and removed at exit, so routing, name checks, body parsing, the core's
 * checks and the replies are all exercised. Directory volumes only: a body
 * asking for a sized volume (an image file, mkfs, a loop mount) is
 * skipped. Every answer must be a JSON object, and an error one carries
 * "error" and "kind" strings. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../volumed/api.h"
#include "../support/fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reply_check(const struct vd_http_response *resp)
{
	json_t *reply = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
	if (!json_is_object(reply) || resp->status < 200 || resp->status > 599)
		abort();
	if (resp->status >= 300 &&
	    (!json_is_string(json_object_get(reply, "error")) ||
	     !json_is_string(json_object_get(reply, "kind"))))
		abort();
	json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > VD_API_MAX_BODY)
		return 0;
	char *copy = malloc(size + 1);   /* "METHOD\0PATH\0BODY\0" in place */
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *nl = memchr(copy, '\n', size);
	char *body = nl ? nl + 1 : copy + size;
	size_t body_len = (size_t)(copy + size - body);
	if (nl)
		*nl = '\0';
	char *sp = strchr(copy, ' ');
	char *path = sp ? sp + 1 : copy + strlen(copy);
	if (sp)
		*sp = '\0';
	if (!vd_test_wants_sized_volume(body, body_len, "options")) {
		struct vd_http_request req = {
			.method = copy,
			.path = path,
			.body = body,
			.body_len = body_len,
			.max_body = VD_API_MAX_BODY,
		};
		struct vd_http_response resp = { 200, NULL, NULL };
		vd_api_handle(vd_test_core_shared("vd-fuzz-api"), &req, &resp);
		reply_check(&resp);
		free(resp.body);
	}
	free(copy);
	return 0;
}
