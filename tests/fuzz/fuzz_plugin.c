/* fuzz_plugin.c — the whole Docker plugin handler on arbitrary bodies.
 *
 * The first byte picks the endpoint (and, on its high bit, a GET instead
 * of a POST); the rest is the body. Requests reach a real core on a
 * private state directory, made on the first input and removed at exit,
 * so parsing, the core's checks and the replies are all exercised.
 * Directory volumes only: a body asking for a sized volume (an image
 * file, mkfs, a loop mount) is skipped. Single-threaded. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../docker-plugin/plugin.h"
#include "../../volumed/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const paths[] = {
	"/Plugin.Activate", "/VolumeDriver.Capabilities", "/VolumeDriver.Create",
	"/VolumeDriver.Remove", "/VolumeDriver.Mount", "/VolumeDriver.Unmount",
	"/VolumeDriver.Path", "/VolumeDriver.Get", "/VolumeDriver.List",
	"/VolumeDriver.Unknown",
};

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
	snprintf(state_dir, sizeof(state_dir), "/tmp/vd-fuzz-plugin-XXXXXX");
	struct vd_core_config cfg = { .state_dir = mkdtemp(state_dir), .node_id = "fuzz" };
	if (!cfg.state_dir || vd_core_open(&cfg, &core, &err) < 0) {
		fprintf(stderr, "fuzz_plugin: cannot open a core: %s\n", err.msg);
		abort();
	}
	atexit(cleanup);
	return core;
}

/* 1 when the body asks for a sized volume (decoded as the handler will). */
static int wants_sized_volume(const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	json_t *opts = json_object_get(root, "Opts");
	int sized = json_object_get(opts, "size") != NULL;
	json_decref(root);
	return sized;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > VD_PLUGIN_MAX_BODY)
		return 0;
	char *body = malloc(size);   /* NUL-terminated copy of data[1..] */
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	if (!wants_sized_volume(body, size - 1)) {
		struct vd_http_request req = {
			.method = data[0] & 0x80 ? "GET" : "POST",
			.path = paths[(data[0] & 0x7f) % (sizeof(paths) / sizeof(paths[0]))],
			.body = body,
			.body_len = size - 1,
			.too_large = data[0] == 0x7f,
			.max_body = VD_PLUGIN_MAX_BODY,
		};
		struct vd_http_response resp = { 200, NULL, NULL };
		vd_plugin_handle(core_get(), &req, &resp);
		/* Every answer is a JSON object. */
		json_t *reply = resp.body ? json_loads(resp.body, 0, NULL) : NULL;
		if (!json_is_object(reply))
			abort();
		json_decref(reply);
		free(resp.body);
	}
	free(body);
	return 0;
}
