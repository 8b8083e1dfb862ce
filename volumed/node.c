/* node.c — the node agent (see node.h).
 *
 * Order of durable steps, so that a crash anywhere is repaired on open:
 *   mount:   controller attach -> driver stage -> record with the id
 *   unmount: record without the id -> (last) driver unstage ->
 *            controller detach -> record deleted
 * Locks: the docset's named lock per volume, held across the whole call. */
#include "node.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docset.h"
#include "log.h"
#include "names.h"

struct vd_node {
	char *node_id;
	const struct vd_backends *backends;
	struct vd_controller ctl;
	struct vd_docset *records;
};

static int mount_id_check(const char *id, struct vd_err *err)
{
	size_t len = id ? strnlen(id, VD_MOUNT_ID_MAX + 1) : 0;
	if (len == 0 || len > VD_MOUNT_ID_MAX)
		return vd_err_set(err, -EINVAL, "mount ID must be 1 to %d printable characters",
				  VD_MOUNT_ID_MAX);
	for (size_t i = 0; i < len; i++)
		if (!isprint((unsigned char)id[i]) || (unsigned char)id[i] >= 0x80)
			return vd_err_set(err, -EINVAL,
					  "mount ID has a non-printable byte at position %zu; "
					  "allowed: printable ASCII", i + 1);
	return 0;
}

static ssize_t id_index(const json_t *record, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(record, "mount_ids"), i, v)
		if (strcmp(json_string_value(v), id) == 0)
			return (ssize_t)i;
	return -1;
}

static int record_backend(struct vd_node *node, const json_t *record,
			  const struct vd_backend **ret, struct vd_err *err)
{
	return vd_backend_get(node->backends, vd_doc_str(record, "driver"), ret, err);
}

static int stage(struct vd_node *node, const char *name, const json_t *doc, char **ret_path,
		 struct vd_err *err)
{
	const struct vd_backend *b;
	int r = record_backend(node, doc, &b, err);
	if (r < 0)
		return r;
	return b->ops->stage(b->priv, name, json_object_get(doc, "spec"),
			     json_object_get(doc, "data"), ret_path, err);
}

static int unstage(struct vd_node *node, const char *name, const json_t *doc, struct vd_err *err)
{
	const struct vd_backend *b;
	int r = record_backend(node, doc, &b, err);
	if (r < 0)
		return r;
	return b->ops->unstage(b->priv, name, json_object_get(doc, "spec"),
			       json_object_get(doc, "data"), err);
}

/* Undoes a first stage whose record could not be written. */
static void release_quietly(struct vd_node *node, const char *name, const json_t *doc)
{
	struct vd_err ignored = VD_ERR_INIT;
	if (unstage(node, name, doc, &ignored) == 0)
		node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, &ignored);
}

static json_t *record_new(const char *name, const json_t *doc, const char *path)
{
	return json_pack("{s:s, s:s, s:O, s:O, s:s, s:[], s:I}", "volume", name, "driver",
			 vd_doc_str(doc, "driver"), "spec", json_object_get(doc, "spec"), "data",
			 json_object_get(doc, "data"), "path", path, "mount_ids", "revision",
			 (json_int_t)0);
}

/* The first reference on this node: attach, stage, write the record. */
static int mount_first(struct vd_node *node, const char *name, const char *id,
		       char **ret_path, struct vd_err *err)
{
	json_t *doc;
	char *path = NULL;
	int r = node->ctl.ops->attach(node->ctl.ctl, name, node->node_id, &doc, err);
	if (r < 0)
		return r;
	if ((r = stage(node, name, doc, &path, err)) < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, &ignored);
		goto out;
	}
	json_t *record = record_new(name, doc, path);
	if (!record || json_array_append_new(json_object_get(record, "mount_ids"),
					     json_string(id)) < 0)
		r = vd_err_set(err, -ENOMEM, "out of memory");
	else
		r = vd_docset_put(node->records, name, record, 1, err);
	json_decref(record);
	if (r < 0) {
		release_quietly(node, name, doc);
		goto out;
	}
	*ret_path = path;
	path = NULL;
out:
	free(path);
	json_decref(doc);
	return r;
}

/* Another reference to a volume already staged here. */
static int mount_again(struct vd_node *node, const char *name, const json_t *published,
		       const char *id, char **ret_path, struct vd_err *err)
{
	char *path = NULL;
	int r = stage(node, name, published, &path, err);  /* repairs a lost mount */
	if (r < 0)
		return r;
	if (id_index(published, id) < 0) {
		json_t *record = vd_doc_edit(published);
		json_array_append_new(json_object_get(record, "mount_ids"), json_string(id));
		r = vd_docset_put(node->records, name, record, 1, err);
		json_decref(record);
	}
	if (r < 0) {
		free(path);
		return r;
	}
	*ret_path = path;
	return 0;
}

int vd_node_mount(struct vd_node *node, const char *name, const char *mount_id,
		  char **ret_path, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0 || (r = mount_id_check(mount_id, err)) < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(node->records, name);
	json_t *record = vd_docset_get(node->records, name);
	if (record)
		r = mount_again(node, name, record, mount_id, ret_path, err);
	else
		r = mount_first(node, name, mount_id, ret_path, err);
	json_decref(record);
	vd_docset_unlock(node->records, lock);
	return r;
}

/* No reference left: unstage, detach, forget. The record (with no ids)
 * stays until all three succeed, so a restart finishes the job. */
static int release(struct vd_node *node, const char *name, const json_t *record,
		   struct vd_err *err)
{
	int r = unstage(node, name, record, err);
	if (r == 0)
		r = node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, err);
	if (r == 0)
		r = vd_docset_delete(node->records, name, record, err);
	return r;
}

static int unmount_locked(struct vd_node *node, const char *name, const char *id,
			  struct vd_err *err)
{
	json_t *published = vd_docset_get(node->records, name);
	ssize_t index = published ? id_index(published, id) : -1;
	if (index < 0) {
		vd_log(VD_LOG_DEBUG, "node volume=%s: unmount of unknown id ignored", name);
		json_decref(published);
		return 0;
	}
	json_t *record = vd_doc_edit(published);
	json_decref(published);
	json_t *ids = json_object_get(record, "mount_ids");
	json_array_remove(ids, (size_t)index);
	int r = vd_docset_put(node->records, name, record, 1, err);
	if (r == 0 && json_array_size(ids) == 0)
		r = release(node, name, record, err);
	json_decref(record);
	return r;
}

int vd_node_unmount(struct vd_node *node, const char *name, const char *mount_id,
		    struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0 || (r = mount_id_check(mount_id, err)) < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(node->records, name);
	r = unmount_locked(node, name, mount_id, err);
	vd_docset_unlock(node->records, lock);
	return r;
}

/* A record after a restart: still referenced -> staged again if needed;
 * unreferenced -> released. */
static void reconcile_record(struct vd_node *node, const json_t *record)
{
	const char *name = vd_doc_str(record, "volume");
	struct vd_err err = VD_ERR_INIT;
	size_t refs = json_array_size(json_object_get(record, "mount_ids"));
	char *path = NULL;
	int r = refs ? stage(node, name, record, &path, &err) : release(node, name, record, &err);
	if (r < 0)
		vd_log(VD_LOG_ERROR, "node volume=%s refs=%zu: reconcile failed: %s", name, refs,
		       vd_err_msg(&err));
	else
		vd_log(VD_LOG_INFO, "node volume=%s refs=%zu: reconciled%s%s", name, refs,
		       path ? " at " : "", path ? path : "");
	free(path);
}

/* Attached by the controller but without a record: a crash came between
 * attach/stage and the record; nothing references it, so release it. */
static void reconcile_orphan(struct vd_node *node, const char *name)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *doc;
	int r = node->ctl.ops->get(node->ctl.ctl, name, &doc, &err);
	if (r == 0) {
		r = unstage(node, name, doc, &err);
		json_decref(doc);
	}
	if (r == 0)
		r = node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, &err);
	if (r < 0)
		vd_log(VD_LOG_ERROR, "node volume=%s: cannot release orphan: %s", name,
		       vd_err_msg(&err));
	else
		vd_log(VD_LOG_INFO, "node volume=%s: released orphan attachment", name);
}

static int reconcile(struct vd_node *node, struct vd_err *err)
{
	json_t *records, *names, *v;
	size_t i;
	int r = vd_docset_list(node->records, &records, err);
	if (r < 0)
		return r;
	json_array_foreach(records, i, v)
		reconcile_record(node, v);
	json_decref(records);
	if ((r = node->ctl.ops->attached(node->ctl.ctl, node->node_id, &names, err)) < 0)
		return r;
	json_array_foreach(names, i, v) {
		const char *name = json_string_value(v);
		json_t *record = vd_docset_get(node->records, name);
		if (!record)
			reconcile_orphan(node, name);
		json_decref(record);
	}
	json_decref(names);
	return 0;
}

int vd_node_open(const char *state_dir, const char *node_id, const struct vd_backends *backends,
		 struct vd_controller controller, struct vd_node **ret_node, struct vd_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/node", state_dir);
	struct vd_node *node = calloc(1, sizeof(*node));
	if (!node || !(node->node_id = strdup(node_id))) {
		free(node);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	node->backends = backends;
	node->ctl = controller;
	int r = vd_docset_open(dir, NULL, NULL, &node->records, err);
	if (r == 0)
		r = reconcile(node, err);
	if (r < 0) {
		vd_node_free(node);
		return r;
	}
	*ret_node = node;
	return 0;
}

void vd_node_free(struct vd_node *node)
{
	if (!node)
		return;
	vd_docset_free(node->records);
	free(node->node_id);
	free(node);
}

json_t *vd_node_record(struct vd_node *node, const char *name)
{
	return vd_docset_get(node->records, name);
}

size_t vd_node_mounted_count(struct vd_node *node)
{
	return vd_docset_count(node->records);
}

const char *vd_node_id(const struct vd_node *node)
{
	return node->node_id;
}
