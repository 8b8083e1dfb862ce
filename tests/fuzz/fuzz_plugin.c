/* fuzz_plugin.c — the whole Docker plugin handler on arbitrary bodies.
 *
 * The first byte picks the endpoint (and, on its high bit, a GET instead
 * of a POST); the rest is the body. Requests reach a real core on a
 * private state directory, made on the first input and removed at exit,
 * so parsing, the core's checks and the replies are all exercised.
 * Directory volumes only: a body asking for a sized volume (an image
 * file, mkfs, a loop mount) is skipped. Single-threaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../docker-plugin/plugin.h"
#include "../support/fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const paths[] = {
	"/Plugin.Activate", "/VolumeDriver.Capabilities", "/VolumeDriver.Create",
	"/VolumeDriver.Remove", "/VolumeDriver.Mount", "/VolumeDriver.Unmount",
	"/VolumeDriver.Path", "/VolumeDriver.Get", "/VolumeDriver.List",
	"/VolumeDriver.Unknown",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > VD_PLUGIN_MAX_BODY)
		return 0;
	char *body = malloc(size);   /* NUL-terminated copy of data[1..] */
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	if (!vd_test_wants_sized_volume(body, size - 1, "Opts")) {
		struct vd_http_request req = {
			.method = data[0] & 0x80 ? "GET" : "POST",
			.path = paths[(data[0] & 0x7f) % (sizeof(paths) / sizeof(paths[0]))],
			.body = body,
			.body_len = size - 1,
			.too_large = data[0] == 0x7f,
			.max_body = VD_PLUGIN_MAX_BODY,
		};
		struct vd_http_response resp = { 200, NULL, NULL };
		vd_plugin_handle(vd_test_core_shared("vd-fuzz-plugin"), &req, &resp);
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
