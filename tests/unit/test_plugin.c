/* test_plugin.c — the Docker volume plugin protocol over a real core (a
 * temporary state directory, directory volumes): every endpoint as dockerd
 * calls it, reference-counted mounts, and the answers to bad requests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../docker-plugin/plugin.h"
#include "../../volumed/log.h"
#include "../../volumed/names.h"
#include "../support/fixture.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int setup(void **state)
{
	*state = vd_test_core_new("vd-plugin", "test");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	vd_test_core_free(*state);
	return 0;
}

/* One request through the handler; returns the parsed reply. */
static json_t *call_full(struct vd_test_core *f, const char *method, const char *path,
			 const char *body, int too_large, int *ret_status)
{
	struct vd_http_request req = {
		.method = method, .path = path, .body = body, .body_len = strlen(body),
		.too_large = too_large, .max_body = VD_PLUGIN_MAX_BODY,
	};
	struct vd_http_response resp = { 200, NULL, NULL };
	vd_plugin_handle(f->core, &req, &resp);
	assert_non_null(resp.body);
	json_t *reply = json_loads(resp.body, 0, NULL);
	if (!json_is_object(reply))
		fail_msg("%s %s: reply is not a JSON object: %s", method, path, resp.body);
	free(resp.body);
	*ret_status = resp.status;
	return reply;
}

static const char *err_of(const json_t *reply)
{
	return json_string_value(json_object_get(reply, "Err"));
}

/* A successful call: 200 and, for VolumeDriver endpoints, "Err": "". */
static json_t *ok(struct vd_test_core *f, const char *path, const char *body)
{
	int status;
	json_t *reply = call_full(f, "POST", path, body, 0, &status);
	const char *e = err_of(reply);
	if (status != 200 || (e && *e))
		fail_msg("%s %s: status %d, Err \"%s\"", path, body, status, e ? e : "");
	if (strncmp(path, "/VolumeDriver.", 14) == 0 && strcmp(path, "/VolumeDriver.Capabilities"))
		assert_non_null(e);
	return reply;
}

/* A refused call: the status, a non-empty Err containing want (if any). */
static void refused_with(struct vd_test_core *f, const char *method, const char *path,
			 const char *body, int too_large, int want_status, const char *want)
{
	int status;
	json_t *reply = call_full(f, method, path, body, too_large, &status);
	const char *e = err_of(reply);
	if (!e || !*e)
		fail_msg("%s %s %s: no Err", method, path, body);
	if (status != want_status)
		fail_msg("%s %s %s: status %d, want %d (Err \"%s\")", method, path, body, status,
			 want_status, e);
	if (want && !strstr(e, want))
		fail_msg("%s %s %s: Err \"%s\" lacks \"%s\"", method, path, body, e, want);
	json_decref(reply);
}

static void refused(struct vd_test_core *f, const char *path, const char *body, int want_status,
		    const char *want)
{
	refused_with(f, "POST", path, body, 0, want_status, want);
}

static void ok_drop(struct vd_test_core *f, const char *path, const char *body)
{
	json_decref(ok(f, path, body));
}

static const char *str_at(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	if (!s)
		fail_msg("no string %s", key);
	return s;
}

static void test_activate_capabilities(void **state)
{
	struct vd_test_core *f = *state;
	const char *bodies[] = { "", "{}", "{}\n", "null", " " };
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_t *r = ok(f, "/Plugin.Activate", bodies[i]);
		json_t *impl = json_object_get(r, "Implements");
		assert_int_equal(json_array_size(impl), 1);
		assert_string_equal(json_string_value(json_array_get(impl, 0)), "VolumeDriver");
		json_decref(r);

		r = ok(f, "/VolumeDriver.Capabilities", bodies[i]);
		assert_string_equal(str_at(json_object_get(r, "Capabilities"), "Scope"), "local");
		json_decref(r);
	}
}

static void test_create_get_list_path(void **state)
{
	struct vd_test_core *f = *state;

	ok_drop(f, "/VolumeDriver.Create", "{\"Name\":\"vol-b\",\"Opts\":null}");
	ok_drop(f, "/VolumeDriver.Create", "{\"Name\":\"vol-a\"}");
	ok_drop(f, "/VolumeDriver.Create", "{\"Name\":\"vol.c_1\",\"Opts\":{}}");
	/* The same again is idempotent; unknown top-level fields are ignored. */
	ok_drop(f, "/VolumeDriver.Create", "{\"Name\":\"vol-a\",\"Opts\":null,\"Extra\":1}");

	json_t *r = ok(f, "/VolumeDriver.Get", "{\"Name\":\"vol-a\"}");
	json_t *v = json_object_get(r, "Volume");
	assert_string_equal(str_at(v, "Name"), "vol-a");
	str_at(v, "Mountpoint");   /* "" or where it would be mounted: the core's view */
	assert_true(strlen(str_at(v, "CreatedAt")) >= 20);  /* RFC 3339 */
	assert_true(json_is_object(json_object_get(v, "Status")));
	json_decref(r);

	r = ok(f, "/VolumeDriver.List", "{}");
	json_t *vols = json_object_get(r, "Volumes");
	assert_int_equal(json_array_size(vols), 3);
	assert_string_equal(str_at(json_array_get(vols, 0), "Name"), "vol-a");
	assert_string_equal(str_at(json_array_get(vols, 1), "Name"), "vol-b");
	assert_string_equal(str_at(json_array_get(vols, 2), "Name"), "vol.c_1");
	assert_non_null(json_object_get(json_array_get(vols, 0), "Mountpoint"));
	assert_non_null(json_object_get(json_array_get(vols, 0), "CreatedAt"));
	json_decref(r);

	r = ok(f, "/VolumeDriver.Path", "{\"Name\":\"vol-b\"}");
	str_at(r, "Mountpoint");
	json_decref(r);

	/* An empty list is an empty array. */
	ok_drop(f, "/VolumeDriver.Remove", "{\"Name\":\"vol-a\"}");
	ok_drop(f, "/VolumeDriver.Remove", "{\"Name\":\"vol-b\"}");
	ok_drop(f, "/VolumeDriver.Remove", "{\"Name\":\"vol.c_1\"}");
	r = ok(f, "/VolumeDriver.List", "");
	assert_int_equal(json_array_size(json_object_get(r, "Volumes")), 0);
	assert_true(json_is_array(json_object_get(r, "Volumes")));
	json_decref(r);
}

/* Options pass through to the driver: a sized volume, created once. */
static void test_create_with_options(void **state)
{
	struct vd_test_core *f = *state;
	const char *body = "{\"Name\":\"sized\",\"Opts\":{\"size\":\"16Mi\",\"fstype\":\"ext4\"}}";

	ok_drop(f, "/VolumeDriver.Create", body);
	ok_drop(f, "/VolumeDriver.Create", body);   /* idempotent */
	json_t *r = ok(f, "/VolumeDriver.Get", "{\"Name\":\"sized\"}");
	json_t *status = json_object_get(json_object_get(r, "Volume"), "Status");
	assert_string_equal(str_at(status, "size"), "16Mi");
	assert_string_equal(str_at(status, "fstype"), "ext4");
	json_decref(r);
	/* The same name with other options: the core's refusal, as Err. */
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"sized\",\"Opts\":{\"size\":\"32Mi\"}}",
		200, "sized");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"sized\"}", 200, NULL);
	ok_drop(f, "/VolumeDriver.Remove", "{\"Name\":\"sized\"}");
}

static int refs_of(struct vd_test_core *f, const char *body)
{
	json_t *r = ok(f, "/VolumeDriver.Get", body);
	json_t *refs = json_object_get(json_object_get(json_object_get(r, "Volume"), "Status"), "refs");
	assert_true(json_is_integer(refs));
	int n = (int)json_integer_value(refs);
	json_decref(r);
	return n;
}

static void test_mount_refs_remove(void **state)
{
	struct vd_test_core *f = *state;
	const char *name = "{\"Name\":\"data\"}";
	struct stat st;
	char mountpoint[4096];

	ok_drop(f, "/VolumeDriver.Create", name);
	json_t *r = ok(f, "/VolumeDriver.Mount", "{\"Name\":\"data\",\"ID\":\"" ID_A "\"}");
	snprintf(mountpoint, sizeof(mountpoint), "%s", str_at(r, "Mountpoint"));
	json_decref(r);
	assert_true(mountpoint[0] == '/');
	assert_int_equal(stat(mountpoint, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	r = ok(f, "/VolumeDriver.Mount", "{\"Name\":\"data\",\"ID\":\"" ID_B "\"}");
	assert_string_equal(str_at(r, "Mountpoint"), mountpoint);
	json_decref(r);
	/* The same ID again counts once. */
	ok_drop(f, "/VolumeDriver.Mount", "{\"Name\":\"data\",\"ID\":\"" ID_B "\"}");
	assert_int_equal(refs_of(f, name), 2);

	r = ok(f, "/VolumeDriver.Path", name);
	assert_string_equal(str_at(r, "Mountpoint"), mountpoint);
	json_decref(r);
	r = ok(f, "/VolumeDriver.Get", name);
	assert_string_equal(str_at(json_object_get(r, "Volume"), "Mountpoint"), mountpoint);
	json_decref(r);

	/* Mounted: Remove is refused with 200 + Err. */
	refused(f, "/VolumeDriver.Remove", name, 200, NULL);
	ok_drop(f, "/VolumeDriver.Unmount", "{\"Name\":\"data\",\"ID\":\"" ID_A "\"}");
	assert_int_equal(refs_of(f, name), 1);
	refused(f, "/VolumeDriver.Remove", name, 200, NULL);
	ok_drop(f, "/VolumeDriver.Unmount", "{\"Name\":\"data\",\"ID\":\"" ID_B "\"}");
	assert_int_equal(refs_of(f, name), 0);
	/* An unknown ID is a no-op. */
	ok_drop(f, "/VolumeDriver.Unmount", "{\"Name\":\"data\",\"ID\":\"" ID_B "\"}");

	r = ok(f, "/VolumeDriver.Path", name);
	const char *after = str_at(r, "Mountpoint");
	assert_true(*after == '\0' || strcmp(after, mountpoint) == 0);
	json_decref(r);

	ok_drop(f, "/VolumeDriver.Remove", name);
	refused(f, "/VolumeDriver.Get", name, 200, "data");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"data\",\"ID\":\"" ID_A "\"}", 200, NULL);
	refused(f, "/VolumeDriver.Path", name, 200, NULL);
}

static void test_malformed_bodies(void **state)
{
	struct vd_test_core *f = *state;
	refused(f, "/VolumeDriver.Create", "{\"Name\":", 400, "not valid JSON");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"a\"} trailing", 400, "not valid JSON");
	refused(f, "/VolumeDriver.Create", "[\"a\"]", 400, "expected a JSON object");
	refused(f, "/VolumeDriver.Create", "\"a\"", 400, "expected a JSON object");
	refused(f, "/VolumeDriver.Get", "", 400, "Name");
	refused(f, "/VolumeDriver.Get", "null", 400, "Name");
	refused(f, "/VolumeDriver.Get", "{}", 400, "Name is missing");
	refused(f, "/VolumeDriver.Get", "{\"name\":\"a\"}", 400, "Name is missing");
	refused(f, "/VolumeDriver.Remove", "{\"Name\":5}", 400, "Name is an integer");
	refused(f, "/VolumeDriver.Remove", "{\"Name\":null}", 400, "Name is null");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"a\",\"Name\":\"b\"}", 400, "duplicate");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"a\\u0000b\"}", 400, "not valid JSON");
	refused(f, "/Plugin.Activate", "[]", 400, "expected a JSON object");
	refused(f, "/VolumeDriver.List", "{", 400, "not valid JSON");
	/* Invalid UTF-8 inside the body still gets a JSON reply. */
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"\xff\xfe\"}", 400, NULL);
}

static void test_bad_names(void **state)
{
	struct vd_test_core *f = *state;
	char body[512], name[257];
	const char *bad[] = { "../x", "", ".hidden", "a/b", "-x", "a b" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", bad[i]);
		refused(f, "/VolumeDriver.Create", body, 400, VD_NAME_RULE);
		refused(f, "/VolumeDriver.Get", body, 400, "allowed");
	}
	memset(name, 'n', 256);
	name[256] = '\0';
	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	refused(f, "/VolumeDriver.Create", body, 400, "255");
	name[255] = '\0';   /* exactly the limit is a valid name */
	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	refused(f, "/VolumeDriver.Get", body, 200, NULL);   /* valid, but no such volume */
}

static void test_bad_options(void **state)
{
	struct vd_test_core *f = *state;
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":{\"size\":5}}", 400,
		"\"size\" is an integer; option values must be strings");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":{\"x\":true}}", 400,
		"is a boolean");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":{\"x\":null}}", 400, "is null");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":[\"a\"]}", 400,
		"Opts is an array");
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":\"size=1\"}", 400,
		"Opts is a string");
	/* Unknown options reach the driver, which names the accepted ones. */
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":{\"bogus\":\"1\"}}", 200,
		"bogus");
	/* The "driver" option picks the driver; an unknown one is named with
	 * the drivers available. */
	refused(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":{\"driver\":\"nosuch\"}}",
		200, "available: local");
	/* Nothing was created. */
	json_t *r = ok(f, "/VolumeDriver.List", "{}");
	assert_int_equal(json_array_size(json_object_get(r, "Volumes")), 0);
	json_decref(r);
	ok_drop(f, "/VolumeDriver.Create", "{\"Name\":\"o\",\"Opts\":{\"driver\":\"local\"}}");
}

static void test_bad_ids(void **state)
{
	struct vd_test_core *f = *state;
	char body[1024], id[300];

	ok_drop(f, "/VolumeDriver.Create", "{\"Name\":\"m\"}");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"m\"}", 400, "ID is missing");
	refused(f, "/VolumeDriver.Unmount", "{\"Name\":\"m\"}", 400, "ID is missing");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"m\",\"ID\":\"\"}", 400, "0 characters");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"m\",\"ID\":7}", 400, "ID is an integer");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"m\",\"ID\":\"a b\"}", 400, "0x20");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"m\",\"ID\":\"a\\nb\"}", 400, "0x0a");
	refused(f, "/VolumeDriver.Mount", "{\"Name\":\"m\",\"ID\":\"\xc3\xa9\"}", 400, "0xc3");
	memset(id, 'i', 256);
	id[256] = '\0';
	snprintf(body, sizeof(body), "{\"Name\":\"m\",\"ID\":\"%s\"}", id);
	refused(f, "/VolumeDriver.Mount", body, 400, "256 characters");
	/* Name is checked before ID. */
	refused(f, "/VolumeDriver.Mount", "{\"ID\":\"x\"}", 400, "Name is missing");
	assert_int_equal(refs_of(f, "{\"Name\":\"m\"}"), 0);
	ok_drop(f, "/VolumeDriver.Remove", "{\"Name\":\"m\"}");
}

static void test_endpoint_method_size(void **state)
{
	struct vd_test_core *f = *state;
	refused(f, "/VolumeDriver.Frobnicate", "{}", 404, "supported: /Plugin.Activate");
	refused(f, "/VolumeDriver.Frobnicate", "{}", 404, "/VolumeDriver.List");
	refused(f, "/", "", 404, "unknown endpoint /");
	refused(f, "/volumedriver.create", "{\"Name\":\"a\"}", 404, "unknown endpoint");
	refused(f, "/VolumeDriver.Create?x=1", "{\"Name\":\"a\"}", 404, NULL);
	refused(f, "/\xff\xfe", "", 404, "unknown endpoint");
	refused_with(f, "GET", "/VolumeDriver.List", "", 0, 405, "use POST");
	refused_with(f, "DELETE", "/VolumeDriver.Remove", "{\"Name\":\"a\"}", 0, 405, "DELETE");
	refused_with(f, "POST", "/VolumeDriver.Create", "", 1, 413, "larger than 65536 bytes");
	json_t *r = ok(f, "/VolumeDriver.List", "{}");
	assert_int_equal(json_array_size(json_object_get(r, "Volumes")), 0);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_activate_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_get_list_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_with_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mount_refs_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_method_size, setup, teardown),
	};
	vd_log_set_level(VD_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
