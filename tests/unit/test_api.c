/* test_api.c — the REST API handler over a real core (a temporary state
 * directory, directory volumes): every route, reference-counted mounts by
 * id, and the answers to bad JSON, wrong types, bad names, unknown routes
 * and wrong methods. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../volumed/api.h"
#include "../../volumed/names.h"
#include "../support/fixture.h"

static int setup(void **state)
{
	*state = vd_test_core_new("vd-api", "test");
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	vd_test_core_free(*state);
	return 0;
}

/* One request; returns the status, *ret_doc the parsed reply body. */
static int call(void **state, const char *method, const char *path, const char *body,
		json_t **ret_doc)
{
	struct vd_test_core *f = *state;
	struct vd_http_request req = { .method = method, .path = path, .body = body ? body : "",
				       .body_len = body ? strlen(body) : 0 };
	struct vd_http_response resp = { .status = 200 };
	vd_api_handle(f->core, &req, &resp);
	assert_non_null(resp.body);
	json_error_t jerr;
	json_t *doc = json_loads(resp.body, 0, &jerr);
	if (!doc)
		fail_msg("%s %s: reply is not JSON: %s", method, path, resp.body);
	free(resp.body);
	*ret_doc = doc;
	return resp.status;
}

/* A request expected to fail with status and kind; the message must
 * contain each of the NULL-terminated fragments. */
static void expect_error(void **state, const char *method, const char *path, const char *body,
			 int status, const char *kind, ...)
{
	json_t *doc;
	int got = call(state, method, path, body, &doc);
	const char *msg = json_string_value(json_object_get(doc, "error"));
	if (got != status || !msg)
		fail_msg("%s %s %s: status %d (want %d), reply %s", method, path, body ? body : "",
			 got, status, json_dumps(doc, 0));
	assert_string_equal(json_string_value(json_object_get(doc, "kind")), kind);
	va_list ap;
	va_start(ap, kind);
	for (const char *frag; (frag = va_arg(ap, const char *));)
		if (!strstr(msg, frag))
			fail_msg("%s %s: message \"%s\" lacks \"%s\"", method, path, msg, frag);
	va_end(ap);
	json_decref(doc);
}

/* A request expected to succeed with status; returns the reply. */
static json_t *expect_ok(void **state, const char *method, const char *path, const char *body,
			 int status)
{
	json_t *doc;
	int got = call(state, method, path, body, &doc);
	if (got != status)
		fail_msg("%s %s %s: status %d (want %d), reply %s", method, path, body ? body : "",
			 got, status, json_dumps(doc, 0));
	return doc;
}

static void create(void **state, const char *name)
{
	char body[128];
	snprintf(body, sizeof(body), "{\"name\": \"%s\"}", name);
	json_decref(expect_ok(state, "POST", "/v1/volumes", body, 201));
}

static json_int_t refs_of(void **state, const char *path)
{
	json_t *view = expect_ok(state, "GET", path, NULL, 200);
	json_int_t refs = json_integer_value(json_object_get(json_object_get(view, "status"),
							     "refs"));
	json_decref(view);
	return refs;
}

static void test_status(void **state)
{
	json_t *doc = expect_ok(state, "GET", "/v1/status", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(doc, "node_id")), "test");
	assert_string_equal(json_string_value(json_object_get(doc, "version")), VD_VERSION);
	json_decref(doc);
}

static void test_create_returns_view(void **state)
{
	json_t *view = expect_ok(state, "POST", "/v1/volumes",
				 "{\"name\": \"v1\", \"driver\": \"local\", \"options\": {}}", 201);
	assert_string_equal(json_string_value(json_object_get(view, "name")), "v1");
	assert_string_equal(json_string_value(json_object_get(view, "driver")), "local");
	assert_true(json_is_object(json_object_get(view, "status")));
	json_decref(view);
	/* The same again is fine; null optional fields count as absent. */
	json_decref(expect_ok(state, "POST", "/v1/volumes",
			      "{\"name\": \"v1\", \"driver\": null, \"options\": null}", 201));
}

static void test_create_conflict(void **state)
{
	create(state, "v1");
	expect_error(state, "POST", "/v1/volumes",
		     "{\"name\": \"v1\", \"options\": {\"size\": \"64Mi\"}}", 409, "exists", NULL);
}

static void test_list_and_inspect(void **state)
{
	create(state, "b");
	create(state, "a");
	json_t *doc = expect_ok(state, "GET", "/v1/volumes", NULL, 200);
	json_t *views = json_object_get(doc, "volumes");
	assert_int_equal(json_array_size(views), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(views, 0), "name")),
			    "a");
	json_decref(doc);

	doc = expect_ok(state, "GET", "/v1/volumes/b", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(doc, "name")), "b");
	json_decref(doc);
}

static void test_unknown_volume(void **state)
{
	expect_error(state, "GET", "/v1/volumes/nope", NULL, 404, "not-found", "nope", NULL);
	expect_error(state, "DELETE", "/v1/volumes/nope", NULL, 404, "not-found", NULL);
	expect_error(state, "POST", "/v1/volumes/nope/mount", NULL, 404, "not-found", NULL);
}

static void test_mount_refs_and_remove(void **state)
{
	create(state, "v1");
	json_t *doc = expect_ok(state, "POST", "/v1/volumes/v1/mount", "{\"id\": \"a\"}", 200);
	const char *mp = json_string_value(json_object_get(doc, "mountpoint"));
	assert_non_null(mp);
	assert_true(mp[0] == '/');
	assert_int_equal(access(mp, F_OK), 0);
	/* No body: the default id; the same id twice counts once. */
	json_t *again = expect_ok(state, "POST", "/v1/volumes/v1/mount", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(again, "mountpoint")), mp);
	json_decref(again);
	json_decref(expect_ok(state, "POST", "/v1/volumes/v1/mount", "{}", 200));
	assert_int_equal(refs_of(state, "/v1/volumes/v1"), 2);

	json_t *view = expect_ok(state, "GET", "/v1/volumes/v1", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(view, "mountpoint")), mp);
	json_t *ids = json_object_get(json_object_get(view, "status"), "mount_ids");
	assert_int_equal(json_array_size(ids), 2);
	json_decref(view);
	json_decref(doc);

	expect_error(state, "DELETE", "/v1/volumes/v1", NULL, 409, "busy", NULL);

	json_t *empty = expect_ok(state, "POST", "/v1/volumes/v1/unmount", "{\"id\": \"a\"}", 200);
	assert_int_equal(json_object_size(empty), 0);
	json_decref(empty);
	assert_int_equal(refs_of(state, "/v1/volumes/v1"), 1);
	json_decref(expect_ok(state, "POST", "/v1/volumes/v1/unmount", "", 200));
	assert_int_equal(refs_of(state, "/v1/volumes/v1"), 0);

	empty = expect_ok(state, "DELETE", "/v1/volumes/v1", NULL, 200);
	assert_int_equal(json_object_size(empty), 0);
	json_decref(empty);
	expect_error(state, "GET", "/v1/volumes/v1", NULL, 404, "not-found", NULL);
}

static void test_bad_json(void **state)
{
	expect_error(state, "POST", "/v1/volumes", "{", 400, "invalid", "not valid JSON", NULL);
	expect_error(state, "POST", "/v1/volumes", "[1]", 400, "invalid", "an array",
		     "JSON object", NULL);
	expect_error(state, "POST", "/v1/volumes", "\"x\"", 400, "invalid", "JSON object", NULL);
	expect_error(state, "POST", "/v1/volumes", "{\"name\": \"a\", \"name\": \"b\"}", 400,
		     "invalid", "not valid JSON", NULL);
	expect_error(state, "POST", "/v1/volumes/v1/mount", "{\"id\": ", 400, "invalid",
		     "not valid JSON", NULL);
	expect_error(state, "POST", "/v1/volumes", NULL, 400, "invalid", "'name'",
		     "required", NULL);
}

static void test_wrong_types(void **state)
{
	expect_error(state, "POST", "/v1/volumes", "{\"name\": 5}", 400, "invalid",
		     "'name'", "a string", "an integer", NULL);
	expect_error(state, "POST", "/v1/volumes", "{\"name\": \"v\", \"driver\": []}", 400,
		     "invalid", "'driver'", "a string", "an array", NULL);
	expect_error(state, "POST", "/v1/volumes", "{\"name\": \"v\", \"options\": \"a=b\"}",
		     400, "invalid", "'options'", "an object", NULL);
	expect_error(state, "POST", "/v1/volumes",
		     "{\"name\": \"v\", \"options\": {\"size\": 64}}", 400, "invalid",
		     "options.size", "a string", NULL);
	expect_error(state, "POST", "/v1/volumes", "{\"name\": \"v\", \"opts\": {}}", 400,
		     "invalid", "unknown field", "opts", "options", NULL);
	create(state, "v1");
	expect_error(state, "POST", "/v1/volumes/v1/mount", "{\"id\": true}", 400, "invalid",
		     "'id'", "a string", "a boolean", NULL);
	expect_error(state, "POST", "/v1/volumes/v1/unmount", "{\"ID\": \"x\"}", 400, "invalid",
		     "unknown field", NULL);
	expect_error(state, "POST", "/v1/volumes/v1/mount", "{\"id\": \"\"}", 400, "invalid",
		     "mount ID", NULL);
	assert_int_equal(refs_of(state, "/v1/volumes/v1"), 0);
}

static void test_bad_names(void **state)
{
	expect_error(state, "GET", "/v1/volumes/-x", NULL, 400, "invalid", "'-'",
		     VD_NAME_RULE, NULL);
	expect_error(state, "GET", "/v1/volumes/a%2Fb", NULL, 400, "invalid", "'%'",
		     "URL-encoded", NULL);
	expect_error(state, "POST", "/v1/volumes/a/b/mount", NULL, 400, "invalid", "'/'", NULL);
	expect_error(state, "GET", "/v1/volumes/", NULL, 400, "invalid", "empty", NULL);
	expect_error(state, "POST", "/v1/volumes//unmount", NULL, 400, "invalid", "empty", NULL);
	expect_error(state, "POST", "/v1/volumes", "{\"name\": \"a b\"}", 400, "invalid",
		     "' '", NULL);
	char path[400] = "/v1/volumes/";
	memset(path + strlen(path), 'x', 300);
	expect_error(state, "GET", path, NULL, 400, "invalid", "longer", NULL);
	/* A bad name is refused before the method is looked at. */
	expect_error(state, "PUT", "/v1/volumes/-x", NULL, 400, "invalid", NULL);
}

static void test_unknown_route(void **state)
{
	expect_error(state, "GET", "/", NULL, 404, "not-found", "/v1/volumes/NAME/mount", NULL);
	expect_error(state, "GET", "/v2/volumes", NULL, 404, "not-found", "GET /v1/status", NULL);
	expect_error(state, "GET", "/v1/volumes/a/b", NULL, 404, "not-found",
		     "cannot contain '/'", NULL);
	expect_error(state, "POST", "/v1/volumes/a/snapshot", NULL, 404, "not-found", NULL);
	expect_error(state, "GET", "/v1/statusx", NULL, 404, "not-found", NULL);
}

static void test_wrong_method(void **state)
{
	expect_error(state, "PUT", "/v1/volumes", "{}", 405, "unsupported", "PUT",
		     "allowed: GET, POST", NULL);
	expect_error(state, "DELETE", "/v1/status", NULL, 405, "unsupported", "allowed: GET",
		     NULL);
	expect_error(state, "POST", "/v1/volumes/v1", NULL, 405, "unsupported",
		     "allowed: GET, DELETE", NULL);
	expect_error(state, "GET", "/v1/volumes/v1/mount", NULL, 405, "unsupported",
		     "allowed: POST", NULL);
	expect_error(state, "get", "/v1/volumes", NULL, 405, "unsupported", NULL);
}

/* GET and DELETE ignore a body; a body with a NUL is not JSON; a body
 * the server dropped for its size is 413 without acting. */
static void test_bodies(void **state)
{
	json_decref(expect_ok(state, "GET", "/v1/volumes", "not json", 200));
	struct vd_test_core *f = *state;
	struct vd_http_request big = { .method = "POST", .path = "/v1/volumes", .body = "",
				       .too_large = 1, .max_body = VD_API_MAX_BODY };
	struct vd_http_response big_resp = { .status = 200 };
	vd_api_handle(f->core, &big, &big_resp);
	assert_int_equal(big_resp.status, 413);
	assert_non_null(strstr(big_resp.body, "too-large"));
	free(big_resp.body);
	static const char body[] = "{\"name\":\"v\0x\"}";
	struct vd_http_request req = { .method = "POST", .path = "/v1/volumes", .body = body,
				       .body_len = sizeof(body) - 1 };
	struct vd_http_response resp = { .status = 200 };
	vd_api_handle(f->core, &req, &resp);
	assert_int_equal(resp.status, 400);
	free(resp.body);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_status),
		T(test_create_returns_view),
		T(test_create_conflict),
		T(test_list_and_inspect),
		T(test_unknown_volume),
		T(test_mount_refs_and_remove),
		T(test_bad_json),
		T(test_wrong_types),
		T(test_bad_names),
		T(test_unknown_route),
		T(test_wrong_method),
		T(test_bodies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
