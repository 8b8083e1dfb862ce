/* fuzz_api.c — the whole REST API handler on arbitrary requests.
 *
 * Input: "METHOD PATH" up to the first newline, then the body. Requests
 * reach a real core on a private state directory, made on the first input
 * and removed at exit, so routing, name checks, body parsing, the core's
 * checks and the replies are all exercised. Directory volumes only: a body
 * asking for a sized volume (an image file, mkfs, a loop mount) is
 * skipped. Every answer must be a JSON object, and an error one carries
 * "error" and "kind" strings. Single-threaded. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../volumed/api.h"
#include "../../volumed/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char state_dir[64];
static struct vd_core *core;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	vd_core_free(core);
	nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static struct vd_core *core_get(void)
{
	struct vd_err err = VD_ERR_INIT;
	if (core)
		return core;
	vd_log_set_level(VD_LOG_ERROR);
	snprintf(state_dir, sizeof(state_dir), "/tmp/vd-fuzz-api-XXXXXX");
	struct vd_core_config cfg = { .state_dir = mkdtemp(state_dir), .node_id = "fuzz" };
	if (!cfg.state_dir || vd_core_open(&cfg, &core, &err) < 0) {
		fprintf(stderr, "fuzz_api: cannot open a core: %s\n", err.msg);
		abort();
	}
	atexit(cleanup);
	return core;
}

/* 1 when the body asks for a sized volume (decoded as the handler will). */
static int wants_sized_volume(const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	int sized = json_object_get(json_object_get(root, "options"), "size") != NULL;
	json_decref(root);
	return sized;
}

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
	if (!wants_sized_volume(body, body_len)) {
		struct vd_http_request req = {
			.method = copy,
			.path = path,
			.body = body,
			.body_len = body_len,
			.max_body = VD_API_MAX_BODY,
		};
		struct vd_http_response resp = { 200, NULL, NULL };
		vd_api_handle(core_get(), &req, &resp);
		reply_check(&resp);
		free(resp.body);
	}
	free(copy);
	return 0;
}
