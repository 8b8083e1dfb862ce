/* test_nfs.c — the nfs driver's pure half: settings (with the key path in
 * every error), backend URLs, volume options and specs, metadata records;
 * and, through the ops table, that init touches no network, that describe
 * and spec_size read a spec, and that an unreachable server fails an
 * operation within the backend's timeout instead of hanging. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../drivers/driver.h"
#include "../../drivers/nfs_meta.h"
#include "../support/fixture.h"

#define URL1 "nfs://127.0.0.1/srv/export/vols?nfsport=2049&mountport=20048"

static struct vd_nfs_settings *settings_ok(const char *text)
{
	json_error_t jerr;
	json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
	if (text && !j)
		fail_msg("bad test JSON: %s", jerr.text);
	struct vd_nfs_settings *s = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_nfs_settings_parse(j, &s, &err);
	json_decref(j);
	if (r < 0)
		fail_msg("settings %s: %s", text, err.msg);
	return s;
}

/* Expects the settings refused with -EINVAL and a message containing want. */
static void settings_bad(const char *text, const char *want)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	struct vd_nfs_settings *s = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_nfs_settings_parse(j, &s, &err);
	json_decref(j);
	if (r != -EINVAL || !strstr(err.msg, want))
		fail_msg("settings %s: got %d '%s', want -EINVAL with '%s'", text, r, err.msg, want);
	assert_null(s);
}

static void test_settings(void **state)
{
	(void)state;
	struct vd_nfs_settings *s = settings_ok(NULL);
	assert_int_equal(s->count, 0);
	assert_null(s->default_backend);
	vd_nfs_settings_free(s);

	s = settings_ok("{\"backends\": {\"main\": {\"url\": \"" URL1 "\"}}}");
	assert_int_equal(s->count, 1);
	const struct vd_nfs_backend *b = s->default_backend;
	assert_non_null(b);   /* the only backend */
	assert_string_equal(b->name, "main");
	assert_string_equal(b->u.server, "127.0.0.1");
	assert_string_equal(b->u.path, "/srv/export/vols");
	assert_int_equal(b->u.nfsport, 2049);
	assert_int_equal(b->u.mountport, 20048);
	assert_int_equal(b->mode, VD_NFS_AUTO);
	assert_int_equal(b->timeout_ms, VD_NFS_TIMEOUT_DEFAULT);
	assert_string_equal(b->mount_options, VD_NFS_MOUNT_OPTIONS_DEFAULT);
	assert_string_equal(b->url, URL1);
	vd_nfs_settings_free(s);

	s = settings_ok("{\"backends\": {"
			"\"a\": {\"url\": \"nfs://h1//x//y/\", \"mode\": \"kernel\", "
			"\"timeout_ms\": 2500, \"mount_options\": \"vers=3,soft,timeo=100\"},"
			"\"b\": {\"url\": \"nfs://[::1]/e\", \"mode\": \"fuse\"}},"
			"\"default_backend\": \"b\", \"helper\": \"/opt/vd/volumed-nfs-fuse\"}");
	assert_int_equal(s->count, 2);
	assert_string_equal(s->default_backend->name, "b");
	assert_string_equal(s->helper, "/opt/vd/volumed-nfs-fuse");
	b = vd_nfs_backend_find(s, "a");
	assert_non_null(b);
	assert_string_equal(b->u.path, "/x/y");
	assert_string_equal(b->url, "nfs://h1/x/y");
	assert_int_equal(b->mode, VD_NFS_KERNEL);
	assert_int_equal(b->timeout_ms, 2500);
	assert_string_equal(b->mount_options, "vers=3,soft,timeo=100");
	b = vd_nfs_backend_find(s, "b");
	assert_string_equal(b->u.server, "::1");
	assert_string_equal(b->url, "nfs://[::1]/e");
	assert_int_equal(b->mode, VD_NFS_FUSE);
	assert_null(vd_nfs_backend_find(s, "c"));
	char names[64];
	vd_nfs_backend_names(s, names, sizeof(names));
	assert_string_equal(names, "a, b");
	vd_nfs_settings_free(s);

	/* Two backends and no default: none chosen. */
	s = settings_ok("{\"backends\": {\"a\": {\"url\": \"nfs://h/a\"}, "
			"\"b\": {\"url\": \"nfs://h/b\"}}}");
	assert_null(s->default_backend);
	vd_nfs_settings_free(s);
}

static void test_settings_errors(void **state)
{
	(void)state;
	settings_bad("[]", "drivers.nfs: expected an object");
	settings_bad("{\"colour\": 1}", "drivers.nfs.colour: unknown key; accepted: backends, "
		     "default_backend, helper");
	settings_bad("{\"backends\": []}", "drivers.nfs.backends: expected an object");
	settings_bad("{\"backends\": {\"main\": 3}}", "drivers.nfs.backends.main: expected an "
		     "object");
	settings_bad("{\"backends\": {\"main\": {}}}", "drivers.nfs.backends.main.url: missing");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", \"mode\": \"x\"}}}",
		     "drivers.nfs.backends.main.mode: 'x' is not one of auto, kernel, fuse");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", \"mode\": 1}}}",
		     "drivers.nfs.backends.main.mode: 'an integer' is not one of");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", \"timeout_ms\": 5}}}",
		     "drivers.nfs.backends.main.timeout_ms: expected an integer from 1000");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", \"timeout_ms\": \"9\"}}}",
		     "drivers.nfs.backends.main.timeout_ms");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", \"speed\": 1}}}",
		     "drivers.nfs.backends.main.speed: unknown key; accepted: url, mode, "
		     "timeout_ms, mount_options");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", "
		     "\"mount_options\": \"vers=3;rm -rf\"}}}",
		     "drivers.nfs.backends.main.mount_options: 'vers=3;rm -rf' has ';'");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", "
		     "\"mount_options\": \"hard,,soft\"}}}", "has an empty option");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\", "
		     "\"mount_options\": \"addr=1.2.3.4\"}}}", "addr= is set by the driver");
	settings_bad("{\"backends\": {\"main\": {\"url\": 7}}}",
		     "drivers.nfs.backends.main.url: expected a string");
	settings_bad("{\"backends\": {\"../x\": {\"url\": \"nfs://h/e\"}}}",
		     "backend name '../x' is not usable");
	settings_bad("{\"backends\": {\"main\": {\"url\": \"nfs://h/e\"}}, "
		     "\"default_backend\": \"other\"}",
		     "drivers.nfs.default_backend: 'other' is not a backend; configured: main");
	settings_bad("{\"default_backend\": 3}", "drivers.nfs.default_backend: expected");
	settings_bad("{\"helper\": \"relative/path\"}", "drivers.nfs.helper: expected the "
		     "absolute path");
}

static void url_bad(const char *url, const char *want)
{
	struct vd_nfs_url u = { 0 };
	struct vd_err err = VD_ERR_INIT;
	int r = vd_nfs_url_parse(url, "k", &u, &err);
	if (r != -EINVAL || !strstr(err.msg, want))
		fail_msg("url %s: got %d '%s', want -EINVAL with '%s'", url, r, err.msg, want);
	assert_null(u.server);
}

static void test_urls(void **state)
{
	(void)state;
	struct vd_nfs_url u;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_nfs_url_parse("nfs://server.example.com/", "k", &u, &err), 0);
	assert_string_equal(u.server, "server.example.com");
	assert_string_equal(u.path, "/");
	assert_null(u.query);
	char *joined = vd_nfs_url_join(&u, "v1");
	assert_string_equal(joined, "nfs://server.example.com/v1");
	free(joined);
	vd_nfs_url_clear(&u);

	assert_int_equal(vd_nfs_url_parse("nfs://h/e/d?version=3&uid=0&nfsport=1", "k", &u,
					  &err), 0);
	assert_string_equal(u.query, "version=3&uid=0&nfsport=1");
	assert_int_equal(u.nfsport, 1);
	assert_int_equal(u.mountport, 0);
	joined = vd_nfs_url_join(&u, "v1");
	assert_string_equal(joined, "nfs://h/e/d/v1?version=3&uid=0&nfsport=1");
	free(joined);
	vd_nfs_url_clear(&u);

	url_bad("http://h/e", "is not an NFS URL");
	url_bad("nfs://h", "has no export path");
	url_bad("nfs://h?nfsport=1", "has no export path");
	url_bad("nfs:///e", "no host");
	url_bad("nfs://user:pw@h/e", "credentials (user@) are not supported");
	url_bad("nfs://h:2049/e", "a port after the host is not supported");
	url_bad("nfs://[::1]:2049/e", "a port after the host");
	url_bad("nfs://h/e/../etc", "has a '..' component");
	url_bad("nfs://h/e/./x", "has a '.' component");
	url_bad("nfs://h/e%20x", "has '%'");
	url_bad("nfs://h/e?nfsport=0", "nfsport '0' is not a port");
	url_bad("nfs://h/e?mountport=70000", "mountport '70000' is not a port");
	url_bad("nfs://h/e?version=4", "version '4' is not supported");
	url_bad("nfs://h/e?colour=red", "unknown URL argument 'colour'");
	url_bad("nfs://h/e?nfsport", "is not key=value");
	url_bad("nfs://h/e?uid=1;x", "has a bad value");
	url_bad("nfs://h/e#frag", "fragments");
	url_bad("nfs://h o/e", "the host has ' '");
}

static const char *const two_backends =
	"{\"backends\": {\"main\": {\"url\": \"nfs://h/a\"}, \"spare\": {\"url\": \"nfs://h/b\"}},"
	" \"default_backend\": \"main\"}";

/* Parses options given as JSON text; returns the spec, or NULL with err. */
static json_t *options(const struct vd_nfs_settings *s, const char *text, struct vd_err *err)
{
	json_t *opts = text ? json_loads(text, 0, NULL) : NULL;
	json_t *spec = NULL;
	if (text)
		assert_non_null(opts);
	vd_err_clear(err);
	int r = vd_nfs_parse_options(s, opts, &spec, err);
	json_decref(opts);
	return r < 0 ? NULL : spec;
}

static void spec_is(json_t *spec, const char *want)
{
	assert_non_null(spec);
	json_t *w = json_loads(want, 0, NULL);
	assert_non_null(w);
	if (!json_equal(spec, w)) {
		char *have = json_dumps(spec, JSON_SORT_KEYS);
		fail_msg("spec %s, want %s", have, want);
	}
	json_decref(w);
	json_decref(spec);
}

static void options_bad(const struct vd_nfs_settings *s, const char *text, const char *want)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = options(s, text, &err);
	if (spec || err.code != -EINVAL || !strstr(err.msg, want))
		fail_msg("options %s: got '%s', want -EINVAL with '%s'", text, err.msg, want);
}

static void test_options(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_nfs_settings *s = settings_ok(two_backends);

	spec_is(options(s, NULL, &err),
		"{\"backend\":\"main\",\"size_bytes\":0,\"uid\":null,\"gid\":null,\"mode\":null}");
	spec_is(options(s, "{}", &err),
		"{\"backend\":\"main\",\"size_bytes\":0,\"uid\":null,\"gid\":null,\"mode\":null}");
	spec_is(options(s, "{\"backend\":\"spare\",\"size\":\"10GiB\",\"uid\":\"1000\","
			   "\"gid\":\"0\",\"mode\":\"0770\"}", &err),
		"{\"backend\":\"spare\",\"size_bytes\":10737418240,\"uid\":1000,\"gid\":0,"
		"\"mode\":504}");
	spec_is(options(s, "{\"mode\":\"770\"}", &err),
		"{\"backend\":\"main\",\"size_bytes\":0,\"uid\":null,\"gid\":null,\"mode\":504}");
	spec_is(options(s, "{\"mode\":\"1777\",\"uid\":\"4294967294\"}", &err),
		"{\"backend\":\"main\",\"size_bytes\":0,\"uid\":4294967294,\"gid\":null,"
		"\"mode\":1023}");

	options_bad(s, "{\"colour\":\"red\"}", "unknown option 'colour' for driver nfs; "
		    "accepted: backend, size, uid, gid, mode");
	options_bad(s, "{\"driver\":\"nfs\"}", "unknown option 'driver'");
	options_bad(s, "[1]", "must be a JSON object");
	options_bad(s, "{\"uid\":5}", "option 'uid' for driver nfs must be a string");
	options_bad(s, "{\"backend\":\"nope\"}", "option backend 'nope' is not a configured nfs "
		    "backend; configured: main, spare");
	options_bad(s, "{\"size\":\"lots\"}", "option size");
	options_bad(s, "{\"size\":\"0\"}", "must be more than 0");
	options_bad(s, "{\"uid\":\"-1\"}", "option uid '-1' is not a number");
	options_bad(s, "{\"uid\":\"4294967295\"}", "option uid '4294967295' is not a number");
	options_bad(s, "{\"gid\":\"abc\"}", "option gid 'abc' is not a number");
	options_bad(s, "{\"gid\":\"\"}", "option gid '' is not a number");
	options_bad(s, "{\"mode\":\"0778\"}", "option mode '0778' is not octal");
	options_bad(s, "{\"mode\":\"17777\"}", "option mode '17777' is not octal");
	options_bad(s, "{\"mode\":\"rwx\"}", "option mode 'rwx' is not octal");
	vd_nfs_settings_free(s);

	/* Two backends, no default: backend is required, and the list is given. */
	s = settings_ok("{\"backends\": {\"a\": {\"url\": \"nfs://h/a\"}, "
			"\"b\": {\"url\": \"nfs://h/b\"}}}");
	options_bad(s, "{}", "option backend is required (no default_backend is configured); "
		    "configured backends: a, b");
	spec_is(options(s, "{\"backend\":\"b\"}", &err),
		"{\"backend\":\"b\",\"size_bytes\":0,\"uid\":null,\"gid\":null,\"mode\":null}");
	vd_nfs_settings_free(s);

	s = settings_ok(NULL);
	options_bad(s, "{}", "driver nfs has no backends; configure one under "
		    "drivers.nfs.backends");
	vd_nfs_settings_free(s);
}

static void test_spec_and_options_round_trip(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	struct vd_nfs_settings *s = settings_ok(two_backends);
	const char *cases[] = {
		"{}",
		"{\"backend\":\"spare\",\"size\":\"1000001\",\"uid\":\"0\",\"gid\":\"65534\","
		"\"mode\":\"0\"}",
		"{\"size\":\"64Mi\",\"mode\":\"2775\"}",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *spec = options(s, cases[i], &err);
		struct vd_nfs_spec sp;
		assert_non_null(spec);
		assert_int_equal(vd_nfs_spec_read(spec, &sp, &err), 0);
		json_t *opts = vd_nfs_spec_options(&sp);
		assert_non_null(opts);
		json_t *again = NULL;
		assert_int_equal(vd_nfs_parse_options(s, opts, &again, &err), 0);
		assert_true(json_equal(spec, again));
		json_decref(again);
		json_decref(opts);
		json_decref(spec);
	}
	/* A spec read back refuses what parse_options never makes. */
	const char *bad[] = {
		"[]", "{}", "{\"backend\":3}", "{\"backend\":\"a\",\"size_bytes\":-1}",
		"{\"backend\":\"a\",\"mode\":4096}", "{\"backend\":\"a\",\"uid\":4294967295}",
		"{\"backend\":\"a\",\"extra\":1}", "{\"backend\":\"a\",\"gid\":\"1\"}",
		"{\"backend\":\"../a\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *spec = json_loads(bad[i], 0, NULL);
		struct vd_nfs_spec sp;
		assert_non_null(spec);
		if (vd_nfs_spec_read(spec, &sp, &err) != -EINVAL)
			fail_msg("spec %s was accepted", bad[i]);
		json_decref(spec);
	}
	vd_nfs_settings_free(s);
}

static void record_bad(const char *text, const char *want)
{
	json_t *rec = NULL;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_nfs_record_parse(text, strlen(text), &rec, &err);
	if (r != -EINVAL || !strstr(err.msg, want))
		fail_msg("record %s: got %d '%s', want -EINVAL with '%s'", text, r, err.msg, want);
	assert_null(rec);
}

#define SPEC_OK "{\"backend\":\"main\",\"size_bytes\":0,\"uid\":null,\"gid\":null,\"mode\":null}"

static void test_records(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = json_loads("{\"backend\":\"main\",\"size_bytes\":1073741824,\"uid\":7,"
				  "\"gid\":null,\"mode\":493}", 0, NULL);
	json_t *rec = vd_nfs_record_new("v1", spec, "2024-01-02T03:04:05Z");
	assert_non_null(rec);
	char *text = json_dumps(rec, JSON_COMPACT);
	json_t *back = NULL;
	assert_int_equal(vd_nfs_record_parse(text, strlen(text), &back, &err), 0);
	assert_true(json_equal(rec, back));
	assert_string_equal(json_string_value(json_object_get(back, "name")), "v1");
	json_t *opts = json_object_get(back, "options");
	assert_string_equal(json_string_value(json_object_get(opts, "size")), "1Gi");
	assert_string_equal(json_string_value(json_object_get(opts, "uid")), "7");
	assert_string_equal(json_string_value(json_object_get(opts, "mode")), "0755");
	assert_string_equal(json_string_value(json_object_get(opts, "backend")), "main");
	assert_null(json_object_get(opts, "gid"));
	free(text);
	json_decref(back);
	json_decref(rec);
	json_decref(spec);

	/* A spec the driver would never make gives no record. */
	spec = json_loads("{\"backend\":\"main\",\"mode\":99999}", 0, NULL);
	assert_null(vd_nfs_record_new("v1", spec, "t"));
	json_decref(spec);

	record_bad("", "record is not JSON");
	record_bad("{\"name\":", "record is not JSON");
	record_bad("[]", "record is not a JSON object");
	record_bad("{\"name\":\"a\",\"name\":\"b\"}", "record is not JSON");   /* duplicate key */
	record_bad("{\"name\":\"v1\",\"options\":{},\"spec\":" SPEC_OK ",\"created_at\":\"t\","
		   "\"x\":1}", "record has unknown key 'x'");
	record_bad("{\"options\":{},\"spec\":" SPEC_OK ",\"created_at\":\"t\"}",
		   "record: name must be a string");
	record_bad("{\"name\":\"../etc\",\"options\":{},\"spec\":" SPEC_OK ",\"created_at\":\"t\"}",
		   "record: volume name has '.' at position 1");
	record_bad("{\"name\":\"a.volumed.json\",\"options\":{},\"spec\":" SPEC_OK ","
		   "\"created_at\":\"t\"}", "which driver nfs keeps for its records");
	record_bad("{\"name\":\"v1\",\"options\":[],\"spec\":" SPEC_OK ",\"created_at\":\"t\"}",
		   "record: options must be an object");
	record_bad("{\"name\":\"v1\",\"options\":{\"a\":1},\"spec\":" SPEC_OK ",\"created_at\":\"t\"}",
		   "record: option 'a' must be a string");
	record_bad("{\"name\":\"v1\",\"options\":{},\"spec\":{},\"created_at\":\"t\"}",
		   "record: volume spec: backend");
	record_bad("{\"name\":\"v1\",\"options\":{},\"spec\":" SPEC_OK "}",
		   "record: created_at must be a string");

	char *big = malloc(VD_NFS_RECORD_MAX + 2);
	memset(big, ' ', VD_NFS_RECORD_MAX + 1);
	big[VD_NFS_RECORD_MAX + 1] = '\0';
	record_bad(big, "larger than");
	free(big);
}

static void test_names(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_nfs_name_check("vol-1.data_x", &err), 0);
	assert_int_equal(vd_nfs_name_check("x.volumed.json", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "keeps for its records"));
	assert_int_equal(vd_nfs_name_check("a.volumed.json.b", &err), -EINVAL);
	assert_int_equal(vd_nfs_name_check(".hidden", &err), -EINVAL);
	assert_int_equal(vd_nfs_name_check("a/b", &err), -EINVAL);
}

/* ---- through the ops table ---------------------------------------------- */

static struct vd_test_driver *fixture_new(const char *settings_json)
{
	struct vd_test_driver *f = vd_test_driver_new("nfs", "vd-nfs", settings_json);
	assert_non_null(f);
	return f;
}


static void test_registry(void **state)
{
	(void)state;
	const struct vd_driver_ops *ops = vd_driver_find("nfs");
	assert_non_null(ops);
	assert_int_equal(ops->multi_node, 1);
	assert_non_null(ops->parse_options);
	assert_non_null(ops->create);
	assert_non_null(ops->remove);
	assert_non_null(ops->stage);
	assert_non_null(ops->unstage);
	assert_non_null(ops->mountpoint);
	assert_non_null(ops->discover);
	assert_non_null(ops->capacity);
	assert_non_null(strstr(vd_driver_names(), "nfs"));

	/* Without settings (most hosts): init works, options explain what is missing. */
	struct vd_test_driver *f = fixture_new(NULL);
	json_t *spec = NULL;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(f->ops->parse_options(f->priv, NULL, &spec, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no backends"));
	uint64_t bytes;
	assert_int_equal(f->ops->capacity(f->priv, NULL, &bytes, &err), -EOPNOTSUPP);
	vd_test_driver_free(f);

	/* Bad settings fail init with the key path. */
	json_t *settings = json_loads("{\"backends\": {\"m\": {\"url\": \"nfs://h/e\", "
				      "\"mode\": \"x\"}}}", 0, NULL);
	struct vd_driver_env env = { .state_dir = "/tmp", .settings = settings };
	void *priv = NULL;
	assert_int_equal(ops->init(&env, &priv, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "drivers.nfs.backends.m.mode: 'x' is not one of auto, "
			       "kernel, fuse"));
	json_decref(settings);
}

/* 127.0.0.1 port 1: nothing listens, so the connection is refused at once.
 * init must not have tried to connect (it succeeds); ops fail cleanly. */
static const char *const unreachable =
	"{\"backends\": {\"main\": {\"url\": \"nfs://127.0.0.1/e/vols?nfsport=1&mountport=1\","
	"\"mode\": \"fuse\", \"timeout_ms\": 1000}}}";

static void test_ops_offline(void **state)
{
	(void)state;
	struct vd_test_driver *f = fixture_new(unreachable);
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = NULL, *data = NULL;
	json_t *opts = json_pack("{s:s,s:s}", "size", "1Gi", "mode", "0750");
	assert_int_equal(f->ops->parse_options(f->priv, opts, &spec, &err), 0);
	json_decref(opts);
	assert_int_equal(f->ops->spec_size(f->priv, spec), 1073741824);

	json_t *status = json_object();
	f->ops->describe(f->priv, spec, NULL, status);
	assert_string_equal(json_string_value(json_object_get(status, "type")), "nfs");
	assert_string_equal(json_string_value(json_object_get(status, "backend")), "main");
	assert_string_equal(json_string_value(json_object_get(status, "url")),
			    "nfs://127.0.0.1/e/vols?nfsport=1&mountport=1");
	assert_string_equal(json_string_value(json_object_get(status, "size")), "1Gi");
	assert_int_equal(json_integer_value(json_object_get(status, "size_bytes")), 1073741824);
	assert_string_equal(json_string_value(json_object_get(status, "datapath")), "fuse");
	json_decref(status);

	char *mp = f->ops->mountpoint(f->priv, "v1", spec, NULL);
	char want[128];
	snprintf(want, sizeof(want), "%s/nfs/main/v1/mnt", f->dir);
	assert_string_equal(mp, want);
	free(mp);
	assert_null(f->ops->mountpoint(f->priv, "../v1", spec, NULL));
	assert_int_equal(f->ops->is_staged(f->priv, "v1", spec, NULL, &err), 0);
	assert_int_equal(f->ops->unstage(f->priv, "v1", spec, NULL, &err), 0);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = f->ops->create(f->priv, "v1", spec, &data, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(r < 0);
	assert_null(data);
	assert_non_null(strstr(err.msg, "nfs backend main"));
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	assert_true(f->ops->remove(f->priv, "v1", spec, NULL, &err) < 0);
	assert_int_equal(f->ops->create(f->priv, "x.volumed.json", spec, &data, &err), -EINVAL);

	/* A spec naming a backend this host does not have. */
	json_t *other = json_pack("{s:s,s:i}", "backend", "gone", "size_bytes", 0);
	assert_int_equal(f->ops->create(f->priv, "v1", other, &data, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "nfs backend 'gone' is not configured"));
	json_decref(other);
	json_decref(spec);
	vd_test_driver_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_settings_errors),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_spec_and_options_round_trip),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_ops_offline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
