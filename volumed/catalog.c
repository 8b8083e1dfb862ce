/* catalog.c — the controller's volume catalog (see catalog.h).
 *
 * Locks: the docset's named lock serializes every change to one volume and
 * is held across the driver call and the store write; readers use the
 * published documents without it. */
#include "catalog.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docset.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "nodes.h"

struct vd_catalog {
	const struct vd_backends *backends;
	struct vd_docset *docs;
	/* cluster (vd_catalog_cluster); nodes NULL: one node, no moves */
	struct vd_nodes *nodes;
	char *self_node;
	int move_wait_ms;
	int preempt_default;
};

/* Where a node-local volume's storage is: "home", NULL for the others. */
static const char *home_of(const json_t *doc)
{
	return json_string_value(json_object_get(doc, "home"));
}

/* 1 when the storage is another node's to provision and remove. */
static int elsewhere(const struct vd_catalog *c, const json_t *doc)
{
	const char *home = home_of(doc);
	return home && c->self_node && strcmp(home, c->self_node) != 0;
}

static int storage_remove(struct vd_catalog *c, const char *name, const json_t *doc,
			  struct vd_err *err)
{
	const struct vd_backend *b;
	if (elsewhere(c, doc))
		return 0;   /* its node removes it (it asked for this) */
	int r = vd_backend_get(c->backends, vd_doc_str(doc, "driver"), &b, err);
	if (r < 0)
		return r;
	return b->ops->remove(b->priv, name, json_object_get(doc, "spec"),
			      json_object_get(doc, "data"), err);
}

/* On open: a document a crash left "creating" never answered its caller,
 * one left "deleting" was asked to go: both are removed. */
static int load_one(struct vd_docset *set, const char *name, json_t *doc, void *userdata)
{
	struct vd_catalog *c = userdata;
	struct vd_err err = VD_ERR_INIT;
	const char *state = vd_doc_str(doc, "state");
	if (strcmp(state, "ready") == 0)
		return 1;
	if (storage_remove(c, name, doc, &err) < 0 || vd_docset_delete(set, name, doc, &err) < 0) {
		vd_log(VD_LOG_ERROR, "catalog volume=%s state=%s: cannot finish: %s", name, state,
		       vd_err_msg(&err));
		json_object_set_new(doc, "state", json_string("ready"));
		return 1;
	}
	vd_log(VD_LOG_INFO, "catalog volume=%s: finished interrupted %s", name, state);
	return 0;
}

static json_t *doc_new(const char *name, const char *driver, const json_t *opts,
		       json_t *spec, const struct vd_source *src);

struct import {
	struct vd_catalog *c;
	const struct vd_backend *b;
	unsigned count;
};

/* A volume the backend holds that the catalog does not know: adopt it. */
static int import_one(const char *name, const json_t *options, const json_t *spec,
		      const json_t *data, void *userdata)
{
	struct import *im = userdata;
	struct vd_err err = VD_ERR_INIT;
	if (vd_name_check(name, NULL) < 0)
		return 0;
	struct vd_lock *lock = vd_docset_lock(im->c->docs, name);
	json_t *doc = vd_docset_get(im->c->docs, name);
	if (!doc && (doc = doc_new(name, im->b->ops->name, options, json_deep_copy(spec), NULL))) {
		json_object_set_new(doc, "data", data ? json_deep_copy(data) : json_null());
		json_object_set_new(doc, "state", json_string("ready"));
		if (vd_docset_put(im->c->docs, name, doc, 1, &err) == 0)
			im->count++;
		else
			vd_log(VD_LOG_ERROR, "catalog volume=%s: cannot adopt: %s", name,
			       vd_err_msg(&err));
	}
	json_decref(doc);
	vd_docset_unlock(im->c->docs, lock);
	return 0;
}

/* Drivers whose backend is the truth (a shared export) hand back the
 * volumes a controller that lost its state would otherwise forget. */
static void import_discovered(struct vd_catalog *c)
{
	for (size_t i = 0; vd_drivers[i]; i++) {
		const struct vd_backend *b = vd_backend_find(c->backends, vd_drivers[i]->name);
		struct import im = { c, b, 0 };
		struct vd_err err = VD_ERR_INIT;
		if (!b || !b->ops->discover)
			continue;
		if (b->ops->discover(b->priv, import_one, &im, &err) < 0)
			vd_log(VD_LOG_WARN, "catalog driver=%s: cannot list its volumes: %s",
			       b->ops->name, vd_err_msg(&err));
		if (im.count)
			vd_log(VD_LOG_INFO, "catalog driver=%s: adopted %u volumes from the backend",
			       b->ops->name, im.count);
	}
}

int vd_catalog_open(const char *state_dir, const struct vd_backends *backends,
		    struct vd_catalog **ret_catalog, struct vd_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/catalog", state_dir);
	struct vd_catalog *c = calloc(1, sizeof(*c));
	if (!c)
		return vd_err_set(err, -ENOMEM, "out of memory");
	c->backends = backends;
	int r = vd_docset_open(dir, load_one, c, &c->docs, err);
	if (r < 0) {
		free(c);
		return r;
	}
	import_discovered(c);
	*ret_catalog = c;
	return 0;
}

void vd_catalog_free(struct vd_catalog *catalog)
{
	if (!catalog)
		return;
	vd_docset_free(catalog->docs);
	free(catalog->self_node);
	free(catalog);
}

static int check_same(const json_t *doc, const char *driver, const json_t *spec,
		      const char *name, struct vd_err *err)
{
	if (strcmp(vd_doc_str(doc, "driver"), driver) == 0 &&
	    json_equal(json_object_get(doc, "spec"), (json_t *)spec))
		return 0;
	char *have = json_dumps(json_object_get(doc, "options"), JSON_COMPACT | JSON_SORT_KEYS);
	vd_err_set(err, -EEXIST,
		   "volume %s already exists with driver %s and options %s; remove it first "
		   "or create it with the same driver and options",
		   name, vd_doc_str(doc, "driver"), have ? have : "{}");
	free(have);
	return -EEXIST;
}

static json_t *doc_new(const char *name, const char *driver, const json_t *opts,
		       json_t *spec, const struct vd_source *src)
{
	char created[32];
	vd_time_rfc3339(created, sizeof(created));
	json_t *doc = json_pack("{s:s, s:s, s:o, s:o, s:n, s:s, s:s, s:{}, s:I}", "name", name,
				"driver", driver, "options",
				opts ? json_deep_copy(opts) : json_object(), "spec", spec, "data",
				"created_at", created, "state", "creating", "attachments",
				"revision", (json_int_t)0);
	if (doc && src && src->snapshot)
		json_object_set_new(doc, "source", json_pack("{s:s}", "snapshot", src->snapshot));
	else if (doc && src && src->volume)
		json_object_set_new(doc, "source", json_pack("{s:s}", "volume", src->volume));
	return doc;
}

/* Provisions the storage of a "creating" document (empty, or from src). */
static int storage_create(struct vd_catalog *c, const struct vd_backend *b, const char *name,
			  json_t *doc, const struct vd_source *src, json_t **ret_data,
			  struct vd_err *err)
{
	const json_t *spec = json_object_get(doc, "spec");
	if (!src)
		return b->ops->create(b->priv, name, spec, ret_data, err);
	if (!b->ops->create_from)
		return vd_err_set(err, -EOPNOTSUPP, "driver %s cannot create a volume from a "
				  "snapshot or another volume", b->ops->name);
	if (src->snapshot)
		return b->ops->create_from(b->priv, name, spec, src->snapshot, NULL, NULL, NULL,
					   ret_data, err);
	json_t *source = vd_docset_get(c->docs, src->volume);
	if (!source)
		return vd_err_set(err, -ENOENT, "source volume %s does not exist", src->volume);
	int r = strcmp(vd_doc_str(source, "driver"), b->ops->name) != 0
		? vd_err_set(err, -EINVAL, "source volume %s has driver %s, not %s", src->volume,
			     vd_doc_str(source, "driver"), b->ops->name)
		: b->ops->create_from(b->priv, name, spec, NULL, src->volume,
				      json_object_get(source, "spec"),
				      json_object_get(source, "data"), ret_data, err);
	json_decref(source);
	return r;
}

/* Provisions the storage of a "creating" document and publishes it ready. */
static int create_storage(struct vd_catalog *c, const struct vd_backend *b, const char *name,
			  json_t *doc, const struct vd_source *src, struct vd_err *err)
{
	json_t *data = NULL;
	int r = vd_metrics_backend(b->ops->name, storage_create(c, b, name, doc, src, &data, err));
	if (r < 0)
		return r;
	json_object_set_new(doc, "data", data ? data : json_null());
	json_object_set_new(doc, "state", json_string("ready"));
	if ((r = vd_docset_put(c->docs, name, doc, 1, err)) < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		b->ops->remove(b->priv, name, json_object_get(doc, "spec"), data, &ignored);
	}
	return r;
}

static int check_same_source(const json_t *doc, const struct vd_source *src, const char *name,
			     struct vd_err *err)
{
	const json_t *have = json_object_get(doc, "source");
	const char *snap = json_string_value(json_object_get(have, "snapshot"));
	const char *vol = json_string_value(json_object_get(have, "volume"));
	const char *want_snap = src ? src->snapshot : NULL, *want_vol = src ? src->volume : NULL;
	if ((!snap && !want_snap) || (snap && want_snap && strcmp(snap, want_snap) == 0)) {
		if ((!vol && !want_vol) || (vol && want_vol && strcmp(vol, want_vol) == 0))
			return 0;
	}
	return vd_err_set(err, -EEXIST, "volume %s already exists with another content source; "
			  "remove it first or use a new name", name);
}

static int check_same_home(const json_t *doc, const char *home, const char *name,
			   struct vd_err *err)
{
	const char *have = home_of(doc);
	if (!have || !home || strcmp(have, home) == 0)
		return 0;
	return vd_err_set(err, -EEXIST, "volume %s already exists on node %s", name, have);
}

static int create_locked(struct vd_catalog *c, const char *name, const struct vd_backend *b,
			 const json_t *opts, json_t *spec, const struct vd_source *src,
			 const char *home, struct vd_err *err)
{
	json_t *existing = vd_docset_get(c->docs, name);
	if (existing) {
		int r = check_same(existing, b->ops->name, spec, name, err);
		if (r == 0)
			r = check_same_source(existing, src, name, err);
		if (r == 0)
			r = check_same_home(existing, home, name, err);
		json_decref(existing);
		json_decref(spec);
		return r;
	}
	json_t *doc = doc_new(name, b->ops->name, opts, spec, src);
	if (!doc)
		return vd_err_set(err, -ENOMEM, "out of memory");
	if (b->ops->node_local && (home || c->self_node))
		json_object_set_new(doc, "home", json_string(home ? home : c->self_node));
	int r = vd_docset_put(c->docs, name, doc, 0, err);
	if (r == 0 && elsewhere(c, doc)) {   /* its node provisions it */
		json_object_set_new(doc, "state", json_string("ready"));
		r = vd_docset_put(c->docs, name, doc, 1, err);
	} else if (r == 0 && (r = create_storage(c, b, name, doc, src, err)) < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		vd_docset_delete(c->docs, name, doc, &ignored);
	}
	json_decref(doc);
	return r;
}

int vd_catalog_create_from(struct vd_catalog *catalog, const char *name, const char *driver,
			   const json_t *opts, const struct vd_source *src, struct vd_err *err)
{
	return vd_catalog_create_at(catalog, name, driver, opts, src, NULL, err);
}

int vd_catalog_create_at(struct vd_catalog *catalog, const char *name, const char *driver,
			 const json_t *opts, const struct vd_source *src, const char *home,
			 struct vd_err *err)
{
	const struct vd_backend *b;
	json_t *spec = NULL;
	int r = vd_name_check(name, err);
	if (r < 0 || (r = vd_backend_get(catalog->backends, driver, &b, err)) < 0)
		return r;
	if (home && (r = vd_name_check(home, err)) < 0)
		return vd_err_prefix(err, "home node");
	if (home && !b->ops->node_local)
		home = NULL;   /* network storage has no home */
	if ((r = b->ops->parse_options(b->priv, opts, &spec, err)) < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(catalog->docs, name);
	r = create_locked(catalog, name, b, opts, spec, src, home, err);
	vd_docset_unlock(catalog->docs, lock);
	return r;
}

int vd_catalog_create(struct vd_catalog *catalog, const char *name, const char *driver,
		      const json_t *opts, struct vd_err *err)
{
	return vd_catalog_create_from(catalog, name, driver, opts, NULL, err);
}

static int not_found(const char *name, struct vd_err *err)
{
	return vd_err_set(err, -ENOENT, "no volume named %.255s", name);
}

/* Every attached node's id, joined by ", ". */
static void attachment_names(const json_t *doc, char *buf, size_t len)
{
	const char *node;
	json_t *value;
	size_t used = 0;
	buf[0] = '\0';
	json_object_foreach(json_object_get(doc, "attachments"), node, value) {
		int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", node);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
}

/* Marks the document "deleting" (hidden), removes the storage, deletes
 * the document; on failure the volume is published "ready" again. */
static int remove_storage(struct vd_catalog *c, const char *name, json_t *doc,
			  struct vd_err *err)
{
	json_object_set_new(doc, "state", json_string("deleting"));
	int r = vd_docset_put(c->docs, name, doc, 0, err);
	if (r < 0)
		return r;
	if ((r = storage_remove(c, name, doc, err)) == 0)
		r = vd_docset_delete(c->docs, name, doc, err);
	if (r < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		json_object_set_new(doc, "state", json_string("ready"));
		vd_docset_put(c->docs, name, doc, 1, &ignored);
	}
	return r;
}

static int remove_locked(struct vd_catalog *c, const char *name, struct vd_err *err)
{
	json_t *published = vd_docset_get(c->docs, name);
	if (!published)
		return not_found(name, err);
	int r;
	if (json_object_size(json_object_get(published, "attachments")) > 0) {
		char nodes[256];
		attachment_names(published, nodes, sizeof(nodes));
		r = vd_err_set(err, -EBUSY, "volume %s is in use on node %s; release it there first "
			       "(stop its containers, or unpublish it)", name, nodes);
	} else {
		json_t *doc = vd_doc_edit(published);
		r = doc ? remove_storage(c, name, doc, err) : vd_err_set(err, -ENOMEM, "out of memory");
		json_decref(doc);
	}
	json_decref(published);
	return r;
}

int vd_catalog_remove(struct vd_catalog *catalog, const char *name, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(catalog->docs, name);
	r = remove_locked(catalog, name, err);
	vd_docset_unlock(catalog->docs, lock);
	return r;
}

static int expand_locked(struct vd_catalog *c, const char *name, uint64_t new_size,
			 uint64_t *ret_size, int *ret_node_pending, struct vd_err *err)
{
	const struct vd_backend *b;
	json_t *spec = NULL, *published = vd_docset_get(c->docs, name);
	if (!published)
		return not_found(name, err);
	int r = vd_backend_get(c->backends, vd_doc_str(published, "driver"), &b, err);
	if (r == 0 && (!b->ops->expand || !b->ops->spec_size))
		r = vd_err_set(err, -EOPNOTSUPP, "driver %s cannot expand volumes", b->ops->name);
	if (r == 0)
		r = b->ops->expand(b->priv, name, json_object_get(published, "spec"),
				   json_object_get(published, "data"), new_size, &spec,
				   ret_node_pending, err);
	if (r == 0 && !json_equal(spec, json_object_get(published, "spec"))) {
		json_t *doc = vd_doc_edit(published);
		json_object_set(doc, "spec", spec);
		r = vd_docset_put(c->docs, name, doc, 1, err);
		json_decref(doc);
	}
	if (r == 0)
		*ret_size = b->ops->spec_size(b->priv, spec);
	json_decref(spec);
	json_decref(published);
	return r;
}

int vd_catalog_expand(struct vd_catalog *catalog, const char *name, uint64_t new_size,
		      uint64_t *ret_size, int *ret_node_pending, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(catalog->docs, name);
	r = expand_locked(catalog, name, new_size, ret_size, ret_node_pending, err);
	vd_docset_unlock(catalog->docs, lock);
	return r;
}

int vd_catalog_with_volume(struct vd_catalog *catalog, const char *name,
			   int (*fn)(const json_t *doc, void *userdata), void *userdata,
			   struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(catalog->docs, name);
	json_t *doc = vd_docset_get(catalog->docs, name);
	r = doc ? fn(doc, userdata) : not_found(name, err);
	json_decref(doc);
	vd_docset_unlock(catalog->docs, lock);
	return r;
}

int vd_catalog_get(struct vd_catalog *catalog, const char *name, json_t **ret_doc,
		   struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	json_t *doc = vd_docset_get(catalog->docs, name);
	if (!doc)
		return not_found(name, err);
	*ret_doc = doc;
	return 0;
}

int vd_catalog_list(struct vd_catalog *catalog, json_t **ret_docs, struct vd_err *err)
{
	return vd_docset_list(catalog->docs, ret_docs, err);
}

size_t vd_catalog_count(struct vd_catalog *catalog)
{
	return vd_docset_count(catalog->docs);
}

static const char *const access_names[] = { "single", "multi", "readonly" };

static const char *attachment_access(const json_t *attachment)
{
	const char *a = json_string_value(json_object_get(attachment, "access"));
	return a ? a : "single";
}

/* The node whose attachment excludes node_id's access, or NULL. */
static const char *conflicting_node(const json_t *doc, const char *node_id, enum vd_access access)
{
	const char *node;
	json_t *a;
	json_object_foreach(json_object_get(doc, "attachments"), node, a) {
		if (strcmp(node, node_id) == 0)
			continue;
		if (access == VD_ACCESS_SINGLE || strcmp(attachment_access(a), "single") == 0)
			return node;
	}
	return NULL;
}

/* -EINVAL when the driver or the volume's home rules node_id out. */
static int usable_here(const struct vd_backend *b, const json_t *doc, const char *name,
		       const char *node_id, enum vd_access access, struct vd_err *err)
{
	const char *home = json_string_value(json_object_get(doc, "home"));
	if (access == VD_ACCESS_MULTI && b && !b->ops->multi_node)
		return vd_err_set(err, -EINVAL, "volume %s (driver %s) lives on one node; "
				  "multi-node writer access needs a network driver such as nfs",
				  name, b->ops->name);
	if (home && strcmp(home, node_id) != 0)
		return vd_err_set(err, -EINVAL, "volume %s (driver %s) lives on node %s; it cannot "
				  "be used on node %s (use a network driver for volumes that "
				  "move)", name, b ? b->ops->name : "?", home, node_id);
	return 0;
}

/* What to do about node other holding what node_id asks for: 0 it is gone
 * (dead: take over, *ret_fence set when the storage fences it), -EAGAIN
 * wait (it was asked to let go), -EBUSY no. Caller holds name's lock. */
static int move_from(struct vd_catalog *c, const struct vd_backend *b, const json_t *doc,
		     const char *name, const char *other, int force, int *ret_fence,
		     int *asked, struct vd_err *err)
{
	char why[256];
	const char *pre = json_string_value(json_object_get(json_object_get(doc, "spec"), "preempt"));
	force |= c->preempt_default || json_is_true(json_object_get(json_object_get(doc, "spec"),
								       "preempt")) ||
		 (pre && strcmp(pre, "true") == 0);
	if (!c->nodes || strcmp(other, c->self_node) == 0)
		return vd_err_set(err, -EBUSY, "volume %s is in use on node %s; release it there "
				  "first (stop its containers, or unpublish it)", name, other);
	enum vd_node_state st = vd_nodes_state(c->nodes, other);
	double age = vd_nodes_age_ms(c->nodes, other), lease = vd_nodes_lease_ms(c->nodes);
	if (st == VD_NODE_DEAD && (b->ops->storage_fence || age < 0 || age >= lease * 1.5)) {
		*ret_fence = b->ops->storage_fence;
		vd_log(VD_LOG_WARN, "catalog volume=%s: node %s is dead (%.0f ms without a "
		       "heartbeat): moving the volume%s", name, other, age,
		       b->ops->storage_fence ? ", fenced at the storage" : " after its lease");
		return 0;
	}
	if (st == VD_NODE_DEAD)
		return -EAGAIN;   /* its agent fences itself by lease * 1.5 */
	/* asked once per attach, first: a new request drops the node's answer
	 * to an older one; then its answer to this one is awaited */
	if (!*asked)
		vd_nodes_ask(c->nodes, other, "release", name, force);
	*asked = 1;
	if (!force && vd_nodes_refusal(c->nodes, other, name, why, sizeof(why)))
		return vd_err_set(err, -EBUSY, "volume %s is in use on node %s (%s); stop its users "
				  "there, or move it with force (volctl move --force, or the "
				  "volume option preempt=true)", name, other, why);
	return -EAGAIN;
}

/* Publishes a copy of name's document with node_id's attachment set
 * (attach) or dropped (!attach); a dead holder's attachment is dropped
 * (moved). Caller holds name's lock. -EAGAIN with *ret_wait: wait for the
 * node named there to let go, then try again. */
static int attachment_change(struct vd_catalog *c, const char *name, const char *node_id,
			     int attach, enum vd_access access, int force, json_t **ret_doc,
			     char *ret_wait, int *asked, struct vd_err *err)
{
	json_t *doc = vd_docset_get(c->docs, name);
	if (!doc)
		return attach ? not_found(name, err) : 0;
	const struct vd_backend *b = vd_backend_find(c->backends, vd_doc_str(doc, "driver"));
	int present = json_object_get(json_object_get(doc, "attachments"), node_id) != NULL;
	int r = attach && !present ? usable_here(b, doc, name, node_id, access, err) : 0;
	int fence = 0;
	const char *other = r == 0 && attach && !present ? conflicting_node(doc, node_id, access)
		: NULL;
	char moved[256] = "";
	if (other && b && (r = move_from(c, b, doc, name, other, force, &fence, asked, err)) ==
	    -EAGAIN)
		snprintf(ret_wait, 256, "%s", other);
	else if (other && r == 0)
		snprintf(moved, sizeof(moved), "%s", other);
	/* The node that last detached cannot write any more (it unstaged, or
	 * was fenced, first); a reservation it may have left at the storage is
	 * stale, and another node's stage may take it over. */
	const char *last = json_string_value(json_object_get(doc, "last_holder"));
	if (r == 0 && attach && !present && last && strcmp(last, node_id) != 0 && b)
		fence |= b->ops->storage_fence;
	/* A node agent that gets a single-writer volume is its one holder by
	 * this catalog's word: a reservation its stage meets is stale (left by
	 * a node that let go or was fenced), so the stage may take it over. */
	if (r == 0 && attach && access == VD_ACCESS_SINGLE && b && b->ops->storage_fence &&
	    c->self_node && strcmp(node_id, c->self_node) != 0)
		fence = 1;
	if (r == 0 && (present != attach || *moved)) {
		char since[32];
		json_t *edit = vd_doc_edit(doc);
		json_decref(doc);
		doc = edit;
		if (!doc)
			return vd_err_set(err, -ENOMEM, "out of memory");
		json_t *attachments = json_object_get(doc, "attachments");
		vd_time_rfc3339(since, sizeof(since));
		if (*moved)
			json_object_del(attachments, moved);
		if (attach)
			json_object_del(doc, "last_holder");
		else if (b && b->ops->storage_fence)
			json_object_set_new(doc, "last_holder", json_string(node_id));
		if (attach)
			json_object_set_new(attachments, node_id,
					    json_pack("{s:s, s:s}", "since", since, "access",
						      access_names[access]));
		else
			json_object_del(attachments, node_id);
		r = vd_docset_put(c->docs, name, doc, 1, err);
	}
	if (r == 0 && attach && !present && (*moved || *asked))
		vd_metrics_move(*moved ? VD_MOVE_CRASH : force ? VD_MOVE_FORCED : VD_MOVE_GRACEFUL);
	if (r == 0 && ret_doc && fence) {   /* the new node's stage fences the old one */
		vd_metrics_fence(VD_FENCE_STORAGE);
		json_t *copy = json_deep_copy(doc);
		json_t *data = json_object_get(copy, "data");
		if (json_is_object(data))
			json_object_set_new(data, "fence", json_true());
		*ret_doc = copy;
	} else if (r == 0 && ret_doc) {
		*ret_doc = json_incref(doc);
	}
	json_decref(doc);
	return r;
}

static int ctl_change(void *ctl, const char *name, const char *node_id, int attach,
		      enum vd_access access, int force, json_t **ret_doc, char *ret_wait,
		      int *asked, struct vd_err *err)
{
	struct vd_catalog *c = ctl;
	struct vd_lock *lock = vd_docset_lock(c->docs, name);
	int r = attachment_change(c, name, node_id, attach, access, force, ret_doc, ret_wait,
				  asked, err);
	vd_docset_unlock(c->docs, lock);
	if (r == 0 && !attach && c->nodes)
		vd_nodes_signal(c->nodes);   /* a move may wait for this */
	return r;
}

/* Attaches, waiting (at most move_wait_ms) for another node to let go. */
static int ctl_attach(void *ctl, const char *name, const char *node_id, enum vd_access access,
		      int force, json_t **ret_doc, struct vd_err *err)
{
	struct vd_catalog *c = ctl;
	double deadline = vd_now_ms() + c->move_wait_ms;
	char other[256] = "";
	int asked = 0;
	for (;;) {
		int r = ctl_change(ctl, name, node_id, 1, access, force, ret_doc, other, &asked, err);
		if (r != -EAGAIN)
			return r;
		double now = vd_now_ms();
		if (now >= deadline)
			return vd_err_set(err, -EBUSY, "volume %s is still in use on node %s after "
					  "waiting %d ms for it to let go (node %s)", name, other,
					  c->move_wait_ms, vd_node_state_name(vd_nodes_state(c->nodes,
											      other)));
		vd_nodes_wait(c->nodes, now + 200 < deadline ? now + 200 : deadline);
	}
}

static int ctl_detach(void *ctl, const char *name, const char *node_id, struct vd_err *err)
{
	char unused[256];
	int asked = 0;
	return ctl_change(ctl, name, node_id, 0, VD_ACCESS_SINGLE, 0, NULL, unused, &asked, err);
}

static int ctl_attached(void *ctl, const char *node_id, json_t **ret_names, struct vd_err *err)
{
	struct vd_catalog *c = ctl;
	json_t *docs, *doc, *names = json_array();
	size_t i;
	int r = names ? vd_docset_list(c->docs, &docs, err) : -ENOMEM;
	if (r < 0) {
		json_decref(names);
		return r == -ENOMEM ? vd_err_set(err, r, "out of memory") : r;
	}
	json_array_foreach(docs, i, doc)
		if (json_object_get(json_object_get(doc, "attachments"), node_id))
			json_array_append_new(names, json_string(vd_doc_str(doc, "name")));
	json_decref(docs);
	*ret_names = names;
	return 0;
}

static int ctl_get(void *ctl, const char *name, json_t **ret_doc, struct vd_err *err)
{
	return vd_catalog_get(ctl, name, ret_doc, err);
}

static const struct vd_controller_ops catalog_controller_ops = {
	.get = ctl_get,
	.attach = ctl_attach,
	.detach = ctl_detach,
	.attached = ctl_attached,
};

struct vd_controller vd_catalog_controller(struct vd_catalog *catalog)
{
	return (struct vd_controller){ .ops = &catalog_controller_ops, .ctl = catalog };
}

void vd_catalog_cluster(struct vd_catalog *catalog, struct vd_nodes *nodes, const char *self_node,
			int move_wait_ms, int preempt_default)
{
	catalog->nodes = nodes;
	free(catalog->self_node);
	catalog->self_node = self_node ? strdup(self_node) : NULL;
	catalog->move_wait_ms = move_wait_ms;
	catalog->preempt_default = preempt_default;
}
