/* nodes.c — the controller's registry of node agents (see nodes.h). */
#include "nodes.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "names.h"
#include "store.h"

struct entry {
	char *id;
	double last_ms;          /* vd_now_ms() of the last heartbeat */
	char registered_at[40];
	json_t *requests;        /* [{"op","volume","force"}] not yet handed over */
	json_t *refusals;        /* {volume: reason} */
	json_t *done;            /* {volume: true}: mounts it reported done */
	int dead_logged;
};

struct vd_nodes {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct vd_store *store;
	int lease_ms;
	struct entry *list;
	size_t count;
};

static struct entry *find(struct vd_nodes *n, const char *id)
{
	for (size_t i = 0; i < n->count; i++)
		if (strcmp(n->list[i].id, id) == 0)
			return &n->list[i];
	return NULL;
}

static struct entry *add(struct vd_nodes *n, const char *id, const char *registered_at)
{
	struct entry *bigger = realloc(n->list, (n->count + 1) * sizeof(*bigger));
	if (!bigger)
		return NULL;
	n->list = bigger;
	struct entry *e = &n->list[n->count];
	*e = (struct entry){ .id = strdup(id), .last_ms = vd_now_ms(),
			     .requests = json_array(), .refusals = json_object(),
			     .done = json_object() };
	snprintf(e->registered_at, sizeof(e->registered_at), "%s", registered_at);
	if (!e->id || !e->requests || !e->refusals || !e->done) {
		free(e->id);
		json_decref(e->requests);
		json_decref(e->refusals);
		json_decref(e->done);
		return NULL;
	}
	n->count++;
	return e;
}

/* Known nodes from the store: each starts with a fresh lease. */
static int load_one(const char *key, json_t *doc, uint64_t rev, void *userdata)
{
	struct vd_nodes *n = userdata;
	(void)rev;
	const char *since = json_string_value(json_object_get(doc, "registered_at"));
	if (!find(n, key) && !add(n, key, since ? since : ""))
		return -ENOMEM;
	return 0;
}

int vd_nodes_open(const char *state_dir, int lease_ms, struct vd_nodes **ret,
		  struct vd_err *err)
{
	char dir[PATH_MAX];
	struct vd_nodes *n = calloc(1, sizeof(*n));
	if (!n)
		return vd_err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&n->changed, &attr);
	pthread_condattr_destroy(&attr);
	n->lease_ms = lease_ms;
	snprintf(dir, sizeof(dir), "%s/nodes", state_dir);
	int r = vd_store_open(dir, &n->store, err);
	if (r == 0)
		r = vd_store_foreach(n->store, load_one, n, err);
	if (r < 0) {
		vd_nodes_free(n);
		return r == -ENOMEM ? vd_err_set(err, r, "out of memory") : r;
	}
	*ret = n;
	return 0;
}

void vd_nodes_free(struct vd_nodes *nodes)
{
	if (!nodes)
		return;
	for (size_t i = 0; i < nodes->count; i++) {
		free(nodes->list[i].id);
		json_decref(nodes->list[i].requests);
		json_decref(nodes->list[i].refusals);
		json_decref(nodes->list[i].done);
	}
	free(nodes->list);
	vd_store_free(nodes->store);
	pthread_cond_destroy(&nodes->changed);
	pthread_mutex_destroy(&nodes->lock);
	free(nodes);
}

int vd_nodes_lease_ms(const struct vd_nodes *nodes)
{
	return nodes->lease_ms;
}

/* A new node: persisted before it is known, so a restart remembers it. */
static struct entry *register_node(struct vd_nodes *n, const char *id, struct vd_err *err)
{
	char now[40];
	vd_time_rfc3339(now, sizeof(now));
	json_t *doc = json_pack("{s:s, s:s}", "id", id, "registered_at", now);
	int r = doc ? vd_store_put(n->store, id, doc, 0, NULL, err)
		    : vd_err_set(err, -ENOMEM, "out of memory");
	json_decref(doc);
	if (r < 0 && r != -EEXIST)
		return NULL;
	struct entry *e = add(n, id, now);
	if (!e)
		vd_err_set(err, -ENOMEM, "out of memory");
	else
		vd_log(VD_LOG_INFO, "nodes: node %s registered", id);
	return e;
}

/* What the node reports: refusals to release, kept until the next ask. */
static void take_report(struct entry *e, const json_t *report)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(report, "refused"), i, v) {
		const char *vol = json_string_value(json_object_get(v, "volume"));
		const char *why = json_string_value(json_object_get(v, "reason"));
		if (vol && vd_name_check(vol, NULL) == 0)
			json_object_set_new(e->refusals, vol, json_string(why ? why : "in use"));
	}
	json_array_foreach(json_object_get(report, "done"), i, v) {
		const char *vol = json_string_value(json_object_get(v, "volume"));
		if (vol && vd_name_check(vol, NULL) == 0)
			json_object_set_new(e->done, vol, json_true());
	}
}

/* Each entry of the report's list key: {"volume": NAME} (and for
 * refusals an optional string "reason"); anything else is refused. */
static int report_list_check(const json_t *report, const char *key, struct vd_err *err)
{
	size_t i;
	json_t *v;
	const json_t *list = json_object_get(report, key);
	if (list && !json_is_array(list))
		return vd_err_set(err, -EINVAL, "heartbeat: '%s' must be an array", key);
	json_array_foreach(list, i, v) {
		const char *vol = json_string_value(json_object_get(v, "volume"));
		const json_t *why = json_object_get(v, "reason");
		if (!json_is_object(v) || !vol || (why && !json_is_string(why)))
			return vd_err_set(err, -EINVAL, "heartbeat: %s[%zu] must be {\"volume\": "
					  "NAME%s}", key, i, strcmp(key, "refused") == 0
					  ? ", \"reason\": TEXT" : "");
		if (vd_name_check(vol, err) < 0)
			return vd_err_prefix(err, "heartbeat: %s[%zu]", key, i);
	}
	return 0;
}

int vd_nodes_heartbeat(struct vd_nodes *nodes, const char *node_id, const json_t *report,
		       json_t **ret_requests, struct vd_err *err)
{
	int r = vd_name_check(node_id, err);
	if (r < 0)
		return vd_err_prefix(err, "node id");
	/* A node that would fence itself later than this controller counts it
	 * dead could still write to a volume moved away: refused, loudly. */
	const json_t *given = json_object_get(report, "lease_ms");
	json_int_t its = json_integer_value(given);
	if (given && (!json_is_integer(given) || its < 1))
		return vd_err_set(err, -EINVAL, "node %s: lease_ms must be a whole number of "
				  "milliseconds, 1 or more", node_id);
	if ((r = report_list_check(report, "refused", err)) < 0 ||
	    (r = report_list_check(report, "done", err)) < 0)
		return r;
	if (its > nodes->lease_ms)
		return vd_err_set(err, -EINVAL, "node %s has lease_ms %lld, longer than the "
				  "controller's %d: it could still write after the controller "
				  "moved its volumes; give every node the same lease_ms", node_id,
				  (long long)its, nodes->lease_ms);
	pthread_mutex_lock(&nodes->lock);
	struct entry *e = find(nodes, node_id);
	if (!e)
		e = register_node(nodes, node_id, err);
	if (e) {
		if (e->dead_logged)
			vd_log(VD_LOG_INFO, "nodes: node %s is back", node_id);
		e->dead_logged = 0;
		e->last_ms = vd_now_ms();
		take_report(e, report);
		if (ret_requests) {
			*ret_requests = e->requests;
			e->requests = json_array();
		}
		pthread_cond_broadcast(&nodes->changed);
	}
	pthread_mutex_unlock(&nodes->lock);
	return e ? 0 : vd_err_msg(err)[0] ? -EIO : vd_err_set(err, -ENOMEM, "out of memory");
}

static enum vd_node_state state_of(struct vd_nodes *n, struct entry *e)
{
	double age = vd_now_ms() - e->last_ms;
	if (age < n->lease_ms / 2.0)
		return VD_NODE_ALIVE;
	if (age < n->lease_ms)
		return VD_NODE_SUSPECT;
	if (!e->dead_logged)
		vd_log(VD_LOG_WARN, "nodes: node %s is dead (no heartbeat for %.0f ms, lease %d ms)",
		       e->id, age, n->lease_ms);
	e->dead_logged = 1;
	return VD_NODE_DEAD;
}

enum vd_node_state vd_nodes_state(struct vd_nodes *nodes, const char *node_id)
{
	pthread_mutex_lock(&nodes->lock);
	struct entry *e = find(nodes, node_id);
	enum vd_node_state s = e ? state_of(nodes, e) : VD_NODE_DEAD;
	pthread_mutex_unlock(&nodes->lock);
	return s;
}

double vd_nodes_age_ms(struct vd_nodes *nodes, const char *node_id)
{
	pthread_mutex_lock(&nodes->lock);
	struct entry *e = find(nodes, node_id);
	double age = e ? vd_now_ms() - e->last_ms : -1;
	pthread_mutex_unlock(&nodes->lock);
	return age;
}

int vd_nodes_known(struct vd_nodes *nodes, const char *node_id)
{
	pthread_mutex_lock(&nodes->lock);
	int known = find(nodes, node_id) != NULL;
	pthread_mutex_unlock(&nodes->lock);
	return known;
}

const char *vd_node_state_name(enum vd_node_state state)
{
	return state == VD_NODE_ALIVE ? "alive" : state == VD_NODE_SUSPECT ? "suspect" : "dead";
}

static int by_id(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "id")),
		      json_string_value(json_object_get(*(json_t *const *)b, "id")));
}

int vd_nodes_list(struct vd_nodes *nodes, json_t **ret, struct vd_err *err)
{
	pthread_mutex_lock(&nodes->lock);
	json_t **items = calloc(nodes->count + 1, sizeof(*items));
	for (size_t i = 0; items && i < nodes->count; i++) {
		struct entry *e = &nodes->list[i];
		items[i] = json_pack("{s:s, s:s, s:I, s:s}", "id", e->id, "state",
				     vd_node_state_name(state_of(nodes, e)), "last_heartbeat_ms",
				     (json_int_t)(vd_now_ms() - e->last_ms), "registered_at",
				     e->registered_at);
	}
	size_t count = nodes->count;
	pthread_mutex_unlock(&nodes->lock);
	json_t *list = json_array();
	if (!items || !list) {
		free(items);
		json_decref(list);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	qsort(items, count, sizeof(*items), by_id);
	for (size_t i = 0; i < count; i++)
		json_array_append_new(list, items[i]);
	free(items);
	*ret = list;
	return 0;
}

void vd_nodes_ask(struct vd_nodes *nodes, const char *node_id, const char *op,
		  const char *volume, int force)
{
	size_t i;
	json_t *v;
	pthread_mutex_lock(&nodes->lock);
	struct entry *e = find(nodes, node_id);
	int pending = 0;
	if (e) {
		json_array_foreach(e->requests, i, v)
			pending |= strcmp(json_string_value(json_object_get(v, "volume")), volume) == 0 &&
				   strcmp(json_string_value(json_object_get(v, "op")), op) == 0 &&
				   json_is_true(json_object_get(v, "force")) == !!force;
		if (!pending) {
			json_object_del(e->refusals, volume);   /* a new ask gets a new answer */
			json_object_del(e->done, volume);
			json_array_append_new(e->requests, json_pack("{s:s, s:s, s:b}", "op", op,
								     "volume", volume, "force",
								     force));
		}
	}
	pthread_mutex_unlock(&nodes->lock);
}

const char *vd_nodes_refusal(struct vd_nodes *nodes, const char *node_id, const char *volume,
			     char *buf, size_t len)
{
	const char *out = NULL;
	pthread_mutex_lock(&nodes->lock);
	struct entry *e = find(nodes, node_id);
	const char *why = e ? json_string_value(json_object_get(e->refusals, volume)) : NULL;
	if (why) {
		snprintf(buf, len, "%s", why);
		out = buf;
	}
	pthread_mutex_unlock(&nodes->lock);
	return out;
}

int vd_nodes_done(struct vd_nodes *nodes, const char *node_id, const char *volume)
{
	pthread_mutex_lock(&nodes->lock);
	struct entry *e = find(nodes, node_id);
	int done = e && json_object_get(e->done, volume) != NULL;
	pthread_mutex_unlock(&nodes->lock);
	return done;
}

void vd_nodes_signal(struct vd_nodes *nodes)
{
	pthread_mutex_lock(&nodes->lock);
	pthread_cond_broadcast(&nodes->changed);
	pthread_mutex_unlock(&nodes->lock);
}

void vd_nodes_wait(struct vd_nodes *nodes, double deadline_ms)
{
	double left = deadline_ms - vd_now_ms();
	if (left <= 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long ns = (long long)ts.tv_nsec + (long long)(left * 1e6);
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	pthread_mutex_lock(&nodes->lock);
	pthread_cond_timedwait(&nodes->changed, &nodes->lock, &ts);
	pthread_mutex_unlock(&nodes->lock);
}
