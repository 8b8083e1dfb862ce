/* api.c — the REST API: routes method + path onto the core and the core's
 * answers back into JSON (see api.h for the routes). No storage logic.
 *
 * Threads: a vd_http_handler, called from the http server's connection
 * threads at once. It keeps no state of its own, so it takes no lock; the
 * core serializes calls on one volume. */
#include "api.h"
#include "json_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "names.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define VOLUMES_PREFIX "/v1/volumes/"
#define NODES_PREFIX "/v1/nodes/"
#define ROUTES_HELP "GET /metrics, GET /healthz, GET /v1/status, GET|POST /v1/volumes, GET|DELETE /v1/volumes/NAME, " \
	"POST /v1/volumes/NAME/mount, POST /v1/volumes/NAME/unmount, " \
	"POST /v1/volumes/NAME/move, GET /v1/nodes; between nodes and the controller: " \
	"POST /v1/volumes/NAME/attach|detach, GET /v1/volumes/NAME/document, " \
	"GET /v1/documents, POST /v1/nodes/NODE/heartbeat, GET /v1/nodes/NODE/attached"

/* One request on its way through: what the route handlers read and set. */
struct call {
	struct vd_core *core;
	const char *name;   /* the volume: from the path, or create's body */
	json_t *body;       /* the parsed body object, or NULL when empty */
	json_t *reply;      /* set by the handler on success */
	char *text;         /* or a text/plain body (malloc'd) */
	const char *content_type;   /* of text; NULL: text/plain */
	int status;         /* 200 unless the handler says otherwise */
};

typedef int (*route_fn)(struct call *c, struct vd_err *err);

struct route_op {
	const char *method;
	const char *op;     /* for the log */
	route_fn fn;
};

struct route {
	const char *pattern;  /* for messages */
	bool has_name;        /* a NAME after prefix */
	const char *prefix;   /* NULL: VOLUMES_PREFIX */
	const char *action;   /* "mount" in /v1/volumes/NAME/mount, else NULL */
	const char *allowed;  /* for 405 messages */
	struct route_op ops[2];
};

/* Body field schema: the keys a route accepts and their types. */
struct field {
	const char *key;
	json_type type;
	bool required;
};

static const char *want_type_name(json_type type)
{
	return type == JSON_OBJECT ? "an object" : type == JSON_TRUE ? "a boolean"
		: type == JSON_ARRAY ? "an array" : type == JSON_INTEGER ? "an integer"
		: "a string";
}

/* JSON_TRUE in a schema stands for either boolean. */
static bool type_ok(const json_t *v, json_type want)
{
	return json_typeof(v) == want || (want == JSON_TRUE && json_is_boolean(v));
}

static const struct field *field_find(const struct field *fields, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

/* Unknown keys, wrong types and missing required keys are -EINVAL naming
 * the field and what it must be. A null value counts as absent. */
static int fields_check(const json_t *body, const struct field *fields, size_t n,
			const char *allowed, struct vd_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)body, key, v) {
		const struct field *f = field_find(fields, n, key);
		if (!f)
			return vd_err_set(err, -EINVAL, "unknown field '%.64s' in the request body; "
					  "allowed: %s", key, allowed);
		if (!json_is_null(v) && !type_ok(v, f->type))
			return vd_err_set(err, -EINVAL, "field '%s' must be %s, got %s",
					  key, want_type_name(f->type), vd_json_type_name(v));
	}
	for (size_t i = 0; i < n; i++) {
		v = body ? json_object_get(body, fields[i].key) : NULL;
		if (fields[i].required && (!v || json_is_null(v)))
			return vd_err_set(err, -EINVAL, "field '%s' (%s) is required",
					  fields[i].key, want_type_name(fields[i].type));
	}
	return 0;
}

static const char *body_string(const struct call *c, const char *key)
{
	return c->body ? json_string_value(json_object_get(c->body, key)) : NULL;
}

static int options_check(const json_t *opts, struct vd_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)opts, key, v)
		if (!json_is_string(v))
			return vd_err_set(err, -EINVAL, "field 'options.%.64s' must be a string, "
					  "got %s", key, vd_json_type_name(v));
	return 0;
}

static int reply_new(struct call *c, json_t *reply, int status)
{
	if (!reply)
		return -ENOMEM;
	c->reply = reply;
	c->status = status;
	return 0;
}

static int route_status(struct call *c, struct vd_err *err)
{
	json_t *status;
	int r = vd_core_status(c->core, &status, err);
	return r < 0 ? r : reply_new(c, status, 200);
}

/* The Prometheus exposition of the metrics, as of now. */
static int route_metrics(struct call *c, struct vd_err *err)
{
	struct vd_metrics_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return vd_err_set(err, -ENOMEM, "out of memory");
	vd_metrics_collect(s);
	int r = vd_core_metrics(c->core, s, err);
	if (r == 0 && !(c->text = vd_metrics_format(s)))
		r = vd_err_set(err, -ENOMEM, "out of memory");
	c->content_type = VD_METRICS_CONTENT_TYPE;
	free(s);
	return r;
}

/* 200 "ok", or 503 and why not, one line of text either way. */
static int route_healthz(struct call *c, struct vd_err *err)
{
	struct vd_err why = VD_ERR_INIT;
	int r = vd_core_health(c->core, &why);
	c->status = r < 0 ? 503 : 200;
	if (asprintf(&c->text, "%s\n", r < 0 ? vd_err_msg(&why) : "ok") < 0) {
		c->text = NULL;
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int route_list(struct call *c, struct vd_err *err)
{
	json_t *views;
	int r = vd_core_list(c->core, &views, err);
	return r < 0 ? r : reply_new(c, json_pack("{s:o}", "volumes", views), 200);
}

static int route_create(struct call *c, struct vd_err *err)
{
	static const struct field fields[] = {
		{ "name", JSON_STRING, true },
		{ "driver", JSON_STRING, false },
		{ "options", JSON_OBJECT, false },
		{ "home", JSON_STRING, false },
	};
	int r = fields_check(c->body, fields, ARRAY_SIZE(fields), "name (string), driver (string), "
			     "options (object of strings), home (string: a node)", err);
	if (r < 0)
		return r;
	const char *name = body_string(c, "name");
	r = vd_name_check(name, err);
	if (r < 0)
		return r;
	c->name = name;
	json_t *opts = json_object_get(c->body, "options");
	if (json_is_null(opts))
		opts = NULL;
	r = opts ? options_check(opts, err) : 0;
	if (r < 0)
		return r;
	r = vd_core_create_at(c->core, name, body_string(c, "driver"), opts, body_string(c, "home"),
			      err);
	if (r < 0)
		return r;
	json_t *view;
	r = vd_core_inspect(c->core, name, &view, err);
	return r < 0 ? r : reply_new(c, view, 201);
}

static int route_inspect(struct call *c, struct vd_err *err)
{
	json_t *view;
	int r = vd_core_inspect_live(c->core, c->name, &view, err);
	return r < 0 ? r : reply_new(c, view, 200);
}

static int route_remove(struct call *c, struct vd_err *err)
{
	int r = vd_core_remove(c->core, c->name, err);
	return r < 0 ? r : reply_new(c, json_object(), 200);
}

/* The optional {"id"} of mount and unmount; the core checks its value. */
static int mount_id_get(const struct call *c, const char **ret_id, struct vd_err *err)
{
	static const struct field fields[] = { { "id", JSON_STRING, false } };
	int r = c->body ? fields_check(c->body, fields, ARRAY_SIZE(fields), "id (string)", err) : 0;
	if (r < 0)
		return r;
	const char *id = body_string(c, "id");
	*ret_id = id ? id : VD_API_DEFAULT_MOUNT_ID;
	return 0;
}

static int route_mount(struct call *c, struct vd_err *err)
{
	const char *id;
	int r = mount_id_get(c, &id, err);
	if (r < 0)
		return r;
	char *path;
	r = vd_core_mount(c->core, c->name, id, &path, err);
	if (r < 0)
		return r;
	json_t *reply = json_pack("{s:s}", "mountpoint", path);
	free(path);
	return reply_new(c, reply, 200);
}

static int route_unmount(struct call *c, struct vd_err *err)
{
	const char *id;
	int r = mount_id_get(c, &id, err);
	if (r < 0)
		return r;
	r = vd_core_unmount(c->core, c->name, id, err);
	return r < 0 ? r : reply_new(c, json_object(), 200);
}

static int route_move(struct call *c, struct vd_err *err)
{
	static const struct field fields[] = { { "to", JSON_STRING, true },
					       { "force", JSON_TRUE, false } };
	int r = fields_check(c->body, fields, ARRAY_SIZE(fields), "to (string: a node), force "
			     "(boolean)", err);
	if (r == 0)
		r = vd_core_move(c->core, c->name, body_string(c, "to"),
				 json_is_true(json_object_get(c->body, "force")), err);
	json_t *view;
	if (r == 0)
		r = vd_core_inspect(c->core, c->name, &view, err);
	return r < 0 ? r : reply_new(c, view, 200);
}

static int route_nodes(struct call *c, struct vd_err *err)
{
	json_t *nodes;
	int r = vd_core_nodes(c->core, &nodes, err);
	return r < 0 ? r : reply_new(c, json_pack("{s:o}", "nodes", nodes), 200);
}

static int route_attach(struct call *c, struct vd_err *err)
{
	static const struct field fields[] = { { "node", JSON_STRING, true },
					       { "access", JSON_STRING, false },
					       { "force", JSON_TRUE, false } };
	json_t *doc;
	int r = fields_check(c->body, fields, ARRAY_SIZE(fields), "node (string), access "
			     "(single, multi, readonly), force (boolean)", err);
	if (r == 0)
		r = vd_core_attach(c->core, c->name, body_string(c, "node"), body_string(c, "access"),
				   json_is_true(json_object_get(c->body, "force")), &doc, err);
	return r < 0 ? r : reply_new(c, json_pack("{s:o}", "document", doc), 200);
}

static int route_detach(struct call *c, struct vd_err *err)
{
	static const struct field fields[] = { { "node", JSON_STRING, true } };
	int r = fields_check(c->body, fields, ARRAY_SIZE(fields), "node (string)", err);
	if (r == 0)
		r = vd_core_detach(c->core, c->name, body_string(c, "node"), err);
	return r < 0 ? r : reply_new(c, json_object(), 200);
}

static int route_document(struct call *c, struct vd_err *err)
{
	json_t *doc;
	int r = vd_core_document(c->core, c->name, &doc, err);
	return r < 0 ? r : reply_new(c, json_pack("{s:o}", "document", doc), 200);
}

static int route_documents(struct call *c, struct vd_err *err)
{
	json_t *docs;
	int r = vd_core_documents(c->core, &docs, err);
	return r < 0 ? r : reply_new(c, json_pack("{s:o}", "documents", docs), 200);
}

static int route_heartbeat(struct call *c, struct vd_err *err)
{
	static const struct field fields[] = { { "refused", JSON_ARRAY, false },
					       { "done", JSON_ARRAY, false },
					       { "lease_ms", JSON_INTEGER, false } };
	json_t *reply;
	int r = c->body ? fields_check(c->body, fields, ARRAY_SIZE(fields), "refused (array), "
				       "done (array), lease_ms (integer)", err) : 0;
	if (r == 0)
		r = vd_core_heartbeat(c->core, c->name, c->body, &reply, err);
	return r < 0 ? r : reply_new(c, reply, 200);
}

static int route_attached(struct call *c, struct vd_err *err)
{
	json_t *names;
	int r = vd_core_attached(c->core, c->name, &names, err);
	return r < 0 ? r : reply_new(c, json_pack("{s:o}", "volumes", names), 200);
}

static const struct route routes[] = {
	{ "/metrics", false, NULL, NULL, "GET", { { "GET", "metrics", route_metrics } } },
	{ "/healthz", false, NULL, NULL, "GET", { { "GET", "healthz", route_healthz } } },
	{ "/v1/status", false, NULL, NULL, "GET", { { "GET", "status", route_status } } },
	{ "/v1/volumes", false, NULL, NULL, "GET, POST",
	  { { "GET", "list", route_list }, { "POST", "create", route_create } } },
	{ "/v1/volumes/NAME", true, NULL, NULL, "GET, DELETE",
	  { { "GET", "inspect", route_inspect }, { "DELETE", "remove", route_remove } } },
	{ "/v1/volumes/NAME/mount", true, NULL, "mount", "POST",
	  { { "POST", "mount", route_mount } } },
	{ "/v1/volumes/NAME/unmount", true, NULL, "unmount", "POST",
	  { { "POST", "unmount", route_unmount } } },
	{ "/v1/volumes/NAME/move", true, NULL, "move", "POST", { { "POST", "move", route_move } } },
	{ "/v1/volumes/NAME/attach", true, NULL, "attach", "POST",
	  { { "POST", "attach", route_attach } } },
	{ "/v1/volumes/NAME/detach", true, NULL, "detach", "POST",
	  { { "POST", "detach", route_detach } } },
	{ "/v1/volumes/NAME/document", true, NULL, "document", "GET",
	  { { "GET", "document", route_document } } },
	{ "/v1/documents", false, NULL, NULL, "GET", { { "GET", "documents", route_documents } } },
	{ "/v1/nodes", false, NULL, NULL, "GET", { { "GET", "nodes", route_nodes } } },
	{ "/v1/nodes/NODE/heartbeat", true, NODES_PREFIX, "heartbeat", "POST",
	  { { "POST", "heartbeat", route_heartbeat } } },
	{ "/v1/nodes/NODE/attached", true, NODES_PREFIX, "attached", "GET",
	  { { "GET", "attached", route_attached } } },
};

/* Does path match r? For routes with a NAME, *ret_name is a malloc'd copy
 * of it (possibly invalid: checked by the caller). */
static bool route_match(const struct route *r, const char *path, char **ret_name)
{
	if (!r->has_name)
		return strcmp(path, r->pattern) == 0;
	const char *prefix = r->prefix ? r->prefix : VOLUMES_PREFIX;
	if (strncmp(path, prefix, strlen(prefix)) != 0)
		return false;
	const char *rest = path + strlen(prefix);
	size_t len = strlen(rest);
	if (r->action) {
		size_t alen = strlen(r->action);
		if (len <= alen || rest[len - alen - 1] != '/' ||
		    strcmp(rest + len - alen, r->action) != 0)
			return false;
		len -= alen + 1;
	} else if (strchr(rest, '/')) {
		return false;
	}
	*ret_name = strndup(rest, len);
	return true;
}

/* The NAME in a path: '%' gets its own hint, the rest is vd_name_check's. */
static int path_name_check(const char *name, struct vd_err *err)
{
	const char *pct = strchr(name, '%');
	if (pct)
		return vd_err_set(err, -EINVAL, "volume name has '%%' at position %zu: names "
				  "in paths are never URL-encoded; allowed: %s",
				  (size_t)(pct - name) + 1, VD_NAME_RULE);
	return vd_name_check(name, err);
}

static int route_unknown(const struct vd_http_request *req, struct vd_err *err)
{
	bool in_volumes = strncmp(req->path, VOLUMES_PREFIX, strlen(VOLUMES_PREFIX)) == 0;
	return vd_err_set(err, -ENOENT, "no route for %.16s %.128s%s; routes: " ROUTES_HELP,
			  req->method, req->path,
			  in_volumes ? " (a volume NAME cannot contain '/')" : "");
}

static const struct route_op *route_op_find(const struct route *r, const char *method)
{
	for (size_t i = 0; i < ARRAY_SIZE(r->ops); i++)
		if (r->ops[i].method && strcmp(r->ops[i].method, method) == 0)
			return &r->ops[i];
	return NULL;
}

/* Empty body: *ret_body NULL. Otherwise it must be one JSON object. */
static int body_parse(const struct vd_http_request *req, json_t **ret_body, struct vd_err *err)
{
	if (req->body_len == 0 || !req->body) {
		*ret_body = NULL;
		return 0;
	}
	json_error_t jerr;
	json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return vd_err_set(err, -EINVAL, "request body is not valid JSON (%s at line %d, "
				  "column %d); expected a JSON object", jerr.text, jerr.line,
				  jerr.column);
	if (!json_is_object(body)) {
		int r = vd_err_set(err, -EINVAL, "request body is %s; expected a JSON object",
				   vd_json_type_name(body));
		json_decref(body);
		return r;
	}
	*ret_body = body;
	return 0;
}

/* The message as a JSON string. It may quote request bytes (a method, a
 * path, a JSON parser's excerpt) that are not UTF-8: those become '?'. */
static json_t *message_string(const char *msg)
{
	json_t *s = json_string(msg);
	if (s)
		return s;
	char clean[VD_ERR_MSG_MAX];
	size_t i = 0;
	for (; msg[i] && i + 1 < sizeof(clean); i++)
		clean[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
	clean[i] = '\0';
	return json_string(clean);
}

static void reply_error(struct vd_http_response *resp, int status, int rc,
			const struct vd_err *err)
{
	vd_http_reply_json(resp, status ? status : vd_errno_http_status(rc),
			   json_pack("{s:o, s:s}", "error", message_string(vd_err_msg(err)),
				     "kind", vd_errno_kind(rc)));
}

/* Finds the route and checks NAME and method; *ret_status is the HTTP
 * status of a failure when it is not the errno's own (405). */
static int route_resolve(const struct vd_http_request *req, const struct route_op **ret_op,
			 char **ret_name, int *ret_status, struct vd_err *err)
{
	const struct route *r = NULL;
	char *name = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(routes) && !r; i++)
		if (route_match(&routes[i], req->path, &name))
			r = &routes[i];
	if (!r)
		return route_unknown(req, err);
	if (r->has_name && !name)
		return vd_err_set(err, -ENOMEM, "out of memory");
	int rc = name ? path_name_check(name, err) : 0;
	const struct route_op *op = rc < 0 ? NULL : route_op_find(r, req->method);
	if (rc == 0 && !op) {
		*ret_status = 405;
		rc = vd_err_set(err, -EOPNOTSUPP, "method %.16s is not allowed on %s; allowed: %s",
				req->method, r->pattern, r->allowed);
	}
	if (rc < 0) {
		free(name);
		return rc;
	}
	*ret_op = op;
	*ret_name = name;
	return 0;
}

static bool op_quiet(const char *op)
{
	return strcmp(op, "heartbeat") == 0 || strcmp(op, "metrics") == 0 ||
	       strcmp(op, "healthz") == 0;
}

/* Hands text (malloc'd) to the response. */
static void reply_text(struct vd_http_response *resp, int status, const char *content_type,
		       char *text)
{
	free(resp->body);
	resp->status = status;
	resp->body = text;
	resp->content_type = content_type ? content_type : "text/plain; charset=utf-8";
}

void vd_api_handle(void *core, const struct vd_http_request *req,
		   struct vd_http_response *resp)
{
	double t0 = vd_now_ms();
	struct vd_err err = VD_ERR_INIT;
	struct call c = { .core = core, .status = 200 };
	const struct route_op *op = NULL;
	char *name = NULL;
	int status = 0;
	int rc = route_resolve(req, &op, &name, &status, &err);
	c.name = name;
	if (rc == 0 && req->too_large)
		rc = vd_err_set(&err, -EFBIG, "request body is larger than the %zu bytes allowed",
				req->max_body);
	if (rc == 0 && strcmp(op->method, "POST") == 0)
		rc = body_parse(req, &c.body, &err);
	if (rc == 0)
		rc = op->fn(&c, &err);
	/* c.name is set only once checked, so the log never shows a bad one;
	 * the frequent polls (heartbeats, scrapes) are logged only when they fail. */
	if (rc < 0 || !op || !op_quiet(op->op))
		vd_log_op("api", op ? op->op : "route", c.name, vd_now_ms() - t0, rc,
			  vd_err_msg(&err));
	if (rc < 0) {
		free(c.text);
		reply_error(resp, status, rc, &err);
	} else if (c.text) {
		reply_text(resp, c.status, c.content_type, c.text);
	} else {
		vd_http_reply_json(resp, c.status, c.reply);
	}
	json_decref(c.body);
	free(name);
}
