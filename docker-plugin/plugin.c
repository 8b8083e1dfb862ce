/* plugin.c — the Docker volume plugin protocol translated onto the core.
 *
 * dockerd POSTs a small JSON object to /Plugin.Activate or
 * /VolumeDriver.<Op>; we check the request (endpoint, method, size), parse
 * the fields the endpoint reads (load_body, parse_args: no I/O, fuzzed
 * with the whole handler), call the core and answer in the protocol's shape.
 * Replies but Activate's and Capabilities' carry "Err": "" on success.
 * A refusal is {"Err": message}: the core's message with status 200 (as
 * dockerd expects), or why the request itself was wrong with 400, 404,
 * 405 or 413. No storage logic here.
 *
 * Threads: a vd_http_handler, called from many connection threads at once.
 * It keeps no state, so it takes no lock; the core serializes calls on one
 * volume. */
#include "plugin.h"
#include "../volumed/json_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../volumed/log.h"
#include "../volumed/names.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MOUNT_ID_MAX 255

/* The fields an endpoint reads from its body. */
enum {
	ARG_NAME = 1 << 0,   /* "Name": required, a valid volume name */
	ARG_ID = 1 << 1,     /* "ID": required, the mount's id */
	ARG_OPTS = 1 << 2,   /* "Opts": optional, null or {string: string} */
};

struct plugin_args {
	const char *name;     /* borrowed from the parsed body */
	const char *id;
	const json_t *opts;   /* NULL when absent or null */
};

/* Fills reply on success; returns 0 or a negative errno with err set. */
typedef int (*endpoint_fn)(struct vd_core *core, const struct plugin_args *a,
			   json_t *reply, struct vd_err *err);

struct endpoint {
	const char *path;
	const char *op;       /* for the log */
	unsigned args;
	int has_err;          /* the reply carries "Err" */
	endpoint_fn fn;
	/* Or: writes the whole reply body as JSON text itself. */
	int (*text_fn)(struct vd_core *core, char **ret_body, struct vd_err *err);
};

/* Sets key to a new string; -ENOMEM when it cannot be built. */
static int set_string(json_t *obj, const char *key, const char *value, struct vd_err *err)
{
	if (json_object_set_new(obj, key, json_string(value ? value : "")) < 0)
		return vd_err_set(err, -ENOMEM, "cannot build the reply field %s", key);
	return 0;
}

static int set_new(json_t *obj, const char *key, json_t *value, struct vd_err *err)
{
	if (json_object_set_new(obj, key, value) < 0)
		return vd_err_set(err, -ENOMEM, "cannot build the reply field %s", key);
	return 0;
}

static const char *view_string(const json_t *view, const char *key)
{
	const char *s = json_string_value(json_object_get(view, key));
	return s ? s : "";
}

/* A core view as the protocol's Volume: Name, Mountpoint, CreatedAt and
 * Status. NULL when out of memory. */
static json_t *volume_from_view(const json_t *view)
{
	json_t *v = json_pack("{s:s,s:s}", "Name", view_string(view, "name"),
			      "Mountpoint", view_string(view, "mountpoint"));
	if (!v)
		return NULL;
	const char *created = json_string_value(json_object_get(view, "created_at"));
	if (created && json_object_set_new(v, "CreatedAt", json_string(created)) < 0)
		goto fail;
	json_t *status = json_object_get(view, "status");
	if (json_is_object(status) &&
	    json_object_set_new(v, "Status", json_deep_copy(status)) < 0)
		goto fail;
	return v;
fail:
	json_decref(v);
	return NULL;
}

static int do_activate(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		       struct vd_err *err)
{
	(void)core;
	(void)a;
	return set_new(reply, "Implements", json_pack("[s]", "VolumeDriver"), err);
}

static int do_capabilities(struct vd_core *core, const struct plugin_args *a, json_t *reply,
			   struct vd_err *err)
{
	(void)core;
	(void)a;
	return set_new(reply, "Capabilities", json_pack("{s:s}", "Scope", "local"), err);
}

static int do_create(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		     struct vd_err *err)
{
	(void)reply;
	return vd_core_create(core, a->name, NULL, a->opts, err);
}

static int do_remove(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		     struct vd_err *err)
{
	(void)reply;
	return vd_core_remove(core, a->name, err);
}

static int do_mount(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		    struct vd_err *err)
{
	char *path = NULL;
	int r = vd_core_mount(core, a->name, a->id, &path, err);
	if (r < 0)
		return r;
	r = set_string(reply, "Mountpoint", path, err);
	free(path);
	return r;
}

static int do_unmount(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		      struct vd_err *err)
{
	(void)reply;
	return vd_core_unmount(core, a->name, a->id, err);
}

static int do_path(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		   struct vd_err *err)
{
	json_t *view = NULL;
	int r = vd_core_inspect(core, a->name, &view, err);
	if (r < 0)
		return r;
	r = set_string(reply, "Mountpoint", view_string(view, "mountpoint"), err);
	json_decref(view);
	return r;
}

static int do_get(struct vd_core *core, const struct plugin_args *a, json_t *reply,
		  struct vd_err *err)
{
	json_t *view = NULL;
	int r = vd_core_inspect(core, a->name, &view, err);
	if (r < 0)
		return r;
	r = set_new(reply, "Volume", volume_from_view(view), err);
	json_decref(view);
	return r;
}

/* List can carry thousands of volumes: its reply is written as text
 * straight from the catalog, with no tree of JSON values in between. */
static int list_visit(const struct vd_volume_brief *v, void *userdata)
{
	struct vd_json_text *t = userdata;
	vd_json_text_raw(t, t->data[t->len - 1] == '[' ? "{\"Name\":" : ",{\"Name\":");
	vd_json_text_string(t, v->name);
	vd_json_text_raw(t, ",\"Mountpoint\":");
	vd_json_text_string(t, v->mountpoint);
	vd_json_text_raw(t, ",\"CreatedAt\":");
	vd_json_text_string(t, v->created_at);
	vd_json_text_raw(t, "}");
	return t->failed ? -ENOMEM : 0;
}

static int do_list_text(struct vd_core *core, char **ret_body, struct vd_err *err)
{
	struct vd_json_text t = { 0 };
	vd_json_text_raw(&t, "{\"Volumes\":[");
	int r = t.failed ? -ENOMEM : vd_core_foreach(core, list_visit, &t, err);
	vd_json_text_raw(&t, "],\"Err\":\"\"}");
	char *body = vd_json_text_take(&t);
	if (r == 0 && !body)
		r = -ENOMEM;
	if (r < 0) {
		free(body);
		return r == -ENOMEM ? vd_err_set(err, r, "cannot build the volume list") : r;
	}
	*ret_body = body;
	return 0;
}

static const struct endpoint endpoints[] = {
	{ "/Plugin.Activate", "activate", 0, 0, do_activate, NULL },
	{ "/VolumeDriver.Capabilities", "capabilities", 0, 0, do_capabilities, NULL },
	{ "/VolumeDriver.Create", "create", ARG_NAME | ARG_OPTS, 1, do_create, NULL },
	{ "/VolumeDriver.Remove", "remove", ARG_NAME, 1, do_remove, NULL },
	{ "/VolumeDriver.Mount", "mount", ARG_NAME | ARG_ID, 1, do_mount, NULL },
	{ "/VolumeDriver.Unmount", "unmount", ARG_NAME | ARG_ID, 1, do_unmount, NULL },
	{ "/VolumeDriver.Path", "path", ARG_NAME, 1, do_path, NULL },
	{ "/VolumeDriver.Get", "get", ARG_NAME, 1, do_get, NULL },
	{ "/VolumeDriver.List", "list", 0, 1, NULL, do_list_text },
};

static const struct endpoint *endpoint_find(const char *path)
{
	for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++)
		if (path && strcmp(path, endpoints[i].path) == 0)
			return &endpoints[i];
	return NULL;
}

static int unknown_endpoint(const char *path, struct vd_err *err)
{
	char supported[512];
	size_t len = 0;
	for (size_t i = 0; i < ARRAY_SIZE(endpoints) && len < sizeof(supported); i++)
		len += (size_t)snprintf(supported + len, sizeof(supported) - len, "%s%s",
					i ? ", " : "", endpoints[i].path);
	return vd_err_set(err, -ENOENT, "unknown endpoint %.64s; supported: %s",
			  path ? path : "", supported);
}

/* The request's shape before its body: endpoint, method and size. Sets
 * *ret_status to the HTTP status of a refusal. */
static int check_request(const struct endpoint *ep, const struct vd_http_request *req,
			 int *ret_status, struct vd_err *err)
{
	if (!ep) {
		*ret_status = 404;
		return unknown_endpoint(req->path, err);
	}
	if (!req->method || strcmp(req->method, "POST") != 0) {
		*ret_status = 405;
		return vd_err_set(err, -EINVAL, "method %.16s is not allowed on %s; use POST",
				  req->method ? req->method : "", ep->path);
	}
	if (req->too_large) {
		*ret_status = 413;
		return vd_err_set(err, -EFBIG,
				  "request body larger than %zu bytes, the most a request may carry",
				  req->max_body);
	}
	return 0;
}

static int parse_name(const json_t *root, const char **ret_name, struct vd_err *err)
{
	const json_t *v = json_object_get(root, "Name");
	if (!v)
		return vd_err_set(err, -EINVAL, "Name is missing; expected a volume name matching %s",
				  VD_NAME_RULE);
	if (!json_is_string(v))
		return vd_err_set(err, -EINVAL, "Name is %s; expected a string matching %s",
				  vd_json_type_name(v), VD_NAME_RULE);
	int r = vd_name_check(json_string_value(v), err);
	if (r < 0)
		return r;
	*ret_name = json_string_value(v);
	return 0;
}

static int parse_id(const json_t *root, const char **ret_id, struct vd_err *err)
{
	static const char rule[] = "1 to 255 printable ASCII characters without spaces";
	const json_t *v = json_object_get(root, "ID");
	if (!v)
		return vd_err_set(err, -EINVAL, "ID is missing; expected the mount's id, %s", rule);
	if (!json_is_string(v))
		return vd_err_set(err, -EINVAL, "ID is %s; expected a string of %s", vd_json_type_name(v), rule);
	const char *id = json_string_value(v);
	size_t len = json_string_length(v);
	if (len == 0 || len > MOUNT_ID_MAX)
		return vd_err_set(err, -EINVAL, "ID is %zu characters long; expected %s", len, rule);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f)
			return vd_err_set(err, -EINVAL, "ID has byte 0x%02x at position %zu; expected %s",
					  (unsigned char)id[i], i + 1, rule);
	*ret_id = id;
	return 0;
}

static int parse_opts(const json_t *root, const json_t **ret_opts, struct vd_err *err)
{
	const json_t *opts = json_object_get(root, "Opts");
	const char *key;
	const json_t *value;
	if (!opts || json_is_null(opts)) {
		*ret_opts = NULL;
		return 0;
	}
	if (!json_is_object(opts))
		return vd_err_set(err, -EINVAL, "Opts is %s; expected null or an object of strings",
				  vd_json_type_name(opts));
	json_object_foreach((json_t *)opts, key, value)
		if (!json_is_string(value))
			return vd_err_set(err, -EINVAL,
					  "option \"%.64s\" is %s; option values must be strings (\"size\": \"64Mi\")",
					  key, vd_json_type_name(value));
	*ret_opts = opts;
	return 0;
}

static int body_is_blank(const struct vd_http_request *req)
{
	for (size_t i = 0; i < req->body_len; i++)
		if (!strchr(" \t\r\n", req->body[i]) || req->body[i] == '\0')
			return 0;
	return 1;
}

/* Loads a non-blank body into *ret_root (NULL for a blank one). */
static int load_body(const struct vd_http_request *req, json_t **ret_root, struct vd_err *err)
{
	json_error_t jerr;
	json_t *root = NULL;
	if (!body_is_blank(req)) {
		root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
				  &jerr);
		if (!root)
			return vd_err_set(err, -EINVAL,
					  "request body is not valid JSON (%s at line %d column %d); expected a JSON object",
					  jerr.text, jerr.line, jerr.column);
	}
	*ret_root = root;
	return 0;
}

/* Reads the fields the endpoint wants into args, borrowing from root. An
 * endpoint that reads no field accepts an empty body, null or any object. */
static int parse_args(const json_t *root, unsigned want, struct plugin_args *args,
		      struct vd_err *err)
{
	int r = 0;
	if (want == 0 && (!root || json_is_null(root) || json_is_object(root)))
		return 0;
	if (!json_is_object(root))
		return vd_err_set(err, -EINVAL, "request body is %s; expected a JSON object with %s",
				  root ? vd_json_type_name(root) : "empty",
				  want & ARG_ID ? "Name and ID" : want ? "Name" : "no fields");
	if (want & ARG_NAME)
		r = parse_name(root, &args->name, err);
	if (r == 0 && (want & ARG_ID))
		r = parse_id(root, &args->id, err);
	if (r == 0 && (want & ARG_OPTS))
		r = parse_opts(root, &args->opts, err);
	return r;
}

/* The error's message, never empty. */
static const char *error_text(const struct vd_err *err, int rc)
{
	const char *msg = vd_err_msg(err);
	return *msg ? msg : strerror(-rc);
}

/* The error text as a JSON string, made ASCII if it is not valid UTF-8. */
static json_t *error_string(const struct vd_err *err, int rc)
{
	const char *msg = error_text(err, rc);
	char clean[VD_ERR_MSG_MAX];
	json_t *s = json_string(msg);
	if (s)
		return s;
	size_t i = 0;
	for (; msg[i] && i + 1 < sizeof(clean); i++)
		clean[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
	clean[i] = '\0';
	return json_string(clean);
}

/* Runs the endpoint: its reply, or NULL with *ret_rc < 0 and err set. */
static json_t *run(struct vd_core *core, const struct endpoint *ep,
		   const struct plugin_args *args, int *ret_rc, struct vd_err *err)
{
	json_t *reply = json_object();
	int r = reply ? ep->fn(core, args, reply, err)
		      : vd_err_set(err, -ENOMEM, "cannot build the reply");
	if (r == 0 && ep->has_err)
		r = set_string(reply, "Err", "", err);
	*ret_rc = r;
	if (r == 0)
		return reply;
	json_decref(reply);
	return NULL;
}

void vd_plugin_handle(void *core, const struct vd_http_request *req,
		      struct vd_http_response *resp)
{
	double start = vd_now_ms();
	struct vd_err err = VD_ERR_INIT;
	struct plugin_args args = { NULL, NULL, NULL };
	const struct endpoint *ep = endpoint_find(req->path);
	json_t *root = NULL, *reply = NULL;
	int status = 200;

	int rc = check_request(ep, req, &status, &err);
	if (rc == 0) {
		rc = load_body(req, &root, &err);
		if (rc == 0)
			rc = parse_args(root, ep->args, &args, &err);
		status = rc < 0 ? 400 : 200;
	}
	if (rc == 0 && ep->text_fn)
		rc = ep->text_fn(core, &resp->body, &err);
	else if (rc == 0)
		reply = run(core, ep, &args, &rc, &err);
	if (rc < 0)
		reply = json_pack("{s:o}", "Err", error_string(&err, rc));
	vd_log_op("docker", ep ? ep->op : "unknown", args.name, vd_now_ms() - start, rc,
		  rc < 0 ? error_text(&err, rc) : NULL);
	json_decref(root);
	if (reply || rc < 0)
		vd_http_reply_json(resp, status, reply);
	else
		resp->status = status;
}
