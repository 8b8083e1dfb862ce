/* node.c — the node agent (see node.h).
 *
 * Order of durable steps, so that a crash anywhere is repaired on open:
 *   mount:   controller attach -> driver stage -> record with the id
 *   unmount: record without the id -> (last) driver unstage ->
 *            controller detach -> record deleted
 * Locks: the docset's named lock per volume, held across the whole call. */
#include "node.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bind.h"
#include "docset.h"
#include "log.h"
#include "metrics.h"
#include "mount.h"
#include "names.h"

struct vd_node {
	char *node_id;
	char *lease_file;        /* a node agent's lease, or NULL */
	const struct vd_backends *backends;
	struct vd_controller ctl;
	struct vd_docset *records;
	atomic_int owed;         /* a release or detach failed: vd_node_settle retries */
	pthread_mutex_t owed_lock;
	json_t *owed_detach;     /* [name]: attaches that failed after perhaps being made */
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

static int record_is_block(const json_t *record)
{
	return strcmp(vd_doc_str(record, "mode"), "block") == 0;
}

/* The driver's data for a stage: a single writer's data path on a node
 * agent also gets the node's lease ("lease_file"), to stop by itself. */
static json_t *stage_data(const struct vd_node *node, const json_t *doc, int single)
{
	json_t *data = json_object_get(doc, "data");
	if (!node->lease_file || !single)
		return json_incref(data);
	json_t *copy = json_is_object(data) ? json_deep_copy(data) : json_object();
	if (copy)
		json_object_set_new(copy, "lease_file", json_string(node->lease_file));
	return copy;
}

/* Makes the volume usable here: a mounted file system, or a block device. */
static int stage(struct vd_node *node, const char *name, const json_t *doc, int block,
		 int single, char **ret_path, struct vd_err *err)
{
	const struct vd_backend *b;
	const json_t *spec = json_object_get(doc, "spec");
	int r = record_backend(node, doc, &b, err);
	if (r < 0)
		return r;
	if (block && !b->ops->block_attach)
		return vd_err_set(err, -EOPNOTSUPP, "driver %s has no block access", b->ops->name);
	json_t *data = stage_data(node, doc, single);
	if (!data && json_object_get(doc, "data"))
		return vd_err_set(err, -ENOMEM, "out of memory");
	r = block ? b->ops->block_attach(b->priv, name, spec, data, ret_path, err)
		  : b->ops->stage(b->priv, name, spec, data, ret_path, err);
	json_decref(data);
	return vd_metrics_backend(b->ops->name, r);
}

/* 1 when a forced release covered the record's mountpoint (covers_put). */
static int record_covered(const json_t *record)
{
	return json_is_true(json_object_get(record, "released")) && !record_is_block(record);
}

/* 1 when the record's volume is attached for a single writer. */
static int record_single(const json_t *record)
{
	const char *access = json_string_value(json_object_get(record, "access"));
	return !access || strcmp(access, "single") == 0;
}

static int unstage(struct vd_node *node, const char *name, const json_t *doc, int block,
		   struct vd_err *err)
{
	const struct vd_backend *b;
	const json_t *spec = json_object_get(doc, "spec"), *data = json_object_get(doc, "data");
	int r = record_backend(node, doc, &b, err);
	if (r < 0)
		return r;
	if (block && b->ops->block_detach)
		return vd_metrics_backend(b->ops->name, b->ops->block_detach(b->priv, name, spec,
									       data, err));
	return vd_metrics_backend(b->ops->name, b->ops->unstage(b->priv, name, spec, data, err));
}

/* Undoes a first stage whose record could not be written. */
static void release_quietly(struct vd_node *node, const char *name, const json_t *doc, int block)
{
	struct vd_err ignored = VD_ERR_INIT;
	if (unstage(node, name, doc, block, &ignored) == 0)
		node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, &ignored);
}

static const char *const access_names[] = { "single", "multi", "readonly" };

/* The record keeps the driver's data without the controller's one-time
 * "fence" (a later restage must never take a volume over by itself). */
static json_t *record_new(const char *name, const json_t *doc, const char *path, int block,
			  enum vd_access access)
{
	json_t *data = json_deep_copy(json_object_get(doc, "data"));
	if (json_is_object(data))
		json_object_del(data, "fence");
	return json_pack("{s:s, s:s, s:O, s:o, s:s, s:s, s:s, s:[], s:{}, s:I}", "volume", name,
			 "driver", vd_doc_str(doc, "driver"), "spec", json_object_get(doc, "spec"),
			 "data", data ? data : json_null(), "path", path, "mode",
			 block ? "block" : "fs", "access", access_names[access], "mount_ids",
			 "binds", "revision", (json_int_t)0);
}

static const struct vd_mount_opts default_opts = { .access = VD_ACCESS_SINGLE };

/* Adds id (and its bind target) to a private copy of a record. */
static int record_add_id(json_t *record, const char *id, const struct vd_mount_opts *o)
{
	if (json_array_append_new(json_object_get(record, "mount_ids"), json_string(id)) < 0)
		return -ENOMEM;
	if (!o->target)
		return 0;
	json_t *binds = json_object_get(record, "binds");
	if (!binds) {
		binds = json_object();
		json_object_set_new(record, "binds", binds);
	}
	return json_object_set_new(binds, id, json_pack("{s:s, s:b, s:I}", "target", o->target,
							"readonly", o->readonly, "flags",
							(json_int_t)o->flags)) < 0 ? -ENOMEM : 0;
}

/* An attach that failed in transit (the controller died, or did not
 * answer in time) may have been made: a detach is owed unless the volume
 * is mounted here by then (vd_node_settle). */
static void detach_owe(struct vd_node *node, const char *name)
{
	pthread_mutex_lock(&node->owed_lock);
	json_array_append_new(node->owed_detach, json_string(name));
	pthread_mutex_unlock(&node->owed_lock);
	atomic_store(&node->owed, 1);
}

/* The first reference on this node: attach, stage, write the record. */
static int mount_first(struct vd_node *node, const char *name, const char *id,
		       const struct vd_mount_opts *o, char **ret_path, struct vd_err *err)
{
	json_t *doc, *record = NULL;
	char *path = NULL;
	int r = node->ctl.ops->attach(node->ctl.ctl, name, node->node_id, o->access, o->force, &doc,
				      err);
	if (r == -EIO || r == -ETIMEDOUT)
		detach_owe(node, name);
	if (r < 0)
		return r;
	if ((r = stage(node, name, doc, o->block, o->access == VD_ACCESS_SINGLE, &path, err)) < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, &ignored);
		goto out;
	}
	record = record_new(name, doc, path, o->block, o->access);
	if (!record || record_add_id(record, id, o) < 0)
		r = vd_err_set(err, -ENOMEM, "out of memory");
	else
		r = vd_docset_put(node->records, name, record, 1, err);
	if (r < 0) {
		release_quietly(node, name, doc, o->block);
		goto out;
	}
	*ret_path = path;
	path = NULL;
out:
	json_decref(record);
	free(path);
	json_decref(doc);
	return r;
}

/* -EEXIST when id is already bound with other options than o asks. */
static int bind_same(const json_t *record, const char *name, const char *id,
		     const struct vd_mount_opts *o, struct vd_err *err)
{
	const json_t *bind = json_object_get(json_object_get(record, "binds"), id);
	if (!bind || !o->target)
		return 0;
	if (strcmp(vd_doc_str(bind, "target"), o->target) == 0 &&
	    json_is_true(json_object_get(bind, "readonly")) == !!o->readonly &&
	    (unsigned long)json_integer_value(json_object_get(bind, "flags")) == o->flags)
		return 0;
	return vd_err_set(err, -EEXIST, "volume %s is already published at %s with other options "
			  "(read-only or mount flags); unpublish it there first", name, o->target);
}

/* A fenced volume is used here again: the controller must give it back
 * (it may have moved) before the data path is started again. */
static int reattach(struct vd_node *node, const char *name, const json_t *record,
		    const struct vd_mount_opts *o, json_t **ret_doc, struct vd_err *err)
{
	int r = node->ctl.ops->attach(node->ctl.ctl, name, node->node_id, o->access, o->force,
				      ret_doc, err);
	if (r < 0)
		return r;
	json_t *edit = vd_doc_edit(record);
	if (!edit)
		r = vd_err_set(err, -ENOMEM, "out of memory");
	else if (record_covered(record))
		r = vd_mount_uncover(vd_doc_str(record, "path"), err);
	if (r == 0) {
		json_object_del(edit, "fenced");
		json_object_del(edit, "released");
		json_object_del(edit, "detach_owed");
		r = vd_docset_put(node->records, name, edit, 1, err);
	}
	json_decref(edit);
	if (r < 0) {
		json_decref(*ret_doc);
		*ret_doc = NULL;
	}
	return r;
}

/* Another reference to a volume already staged here. */
static int mount_again(struct vd_node *node, const char *name, const json_t *published,
		       const char *id, const struct vd_mount_opts *o, char **ret_path,
		       struct vd_err *err)
{
	char *path = NULL;
	if (record_is_block(published) != !!o->block)
		return vd_err_set(err, -EBUSY, "volume %s is in use on this node as %s; it cannot "
				  "also be used as %s", name,
				  o->block ? "a file system" : "a block device",
				  o->block ? "a block device" : "a file system");
	int r = bind_same(published, name, id, o, err);
	if (r < 0)
		return r;
	json_t *given = NULL;   /* the controller's document, when it gave it back */
	if (json_is_true(json_object_get(published, "fenced")) &&
	    (r = reattach(node, name, published, o, &given, err)) < 0)
		return r;
	r = stage(node, name, given ? given : published, o->block, record_single(published), &path,
		  err);   /* repairs */
	json_t *current = given ? vd_docset_get(node->records, name) : json_incref((json_t *)published);
	json_decref(given);
	if (r == 0 && current && id_index(current, id) < 0) {
		json_t *record = vd_doc_edit(current);
		r = record && record_add_id(record, id, o) == 0
			? vd_docset_put(node->records, name, record, 1, err)
			: vd_err_set(err, -ENOMEM, "out of memory");
		json_decref(record);
	}
	json_decref(current);
	if (r < 0) {
		free(path);
		return r;
	}
	*ret_path = path;
	return 0;
}

/* The volume's root to group, setgid and group-writable, so a pod's
 * fsGroup can write (files keep their owners). */
static int group_give(const char *path, unsigned group, struct vd_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0 || chown(path, (uid_t)-1, (gid_t)group) < 0 ||
	    chmod(path, (st.st_mode & 07777) | S_ISGID | S_IRWXG) < 0)
		return vd_err_set(err, -errno, "give %s to group %u: %s", path, group,
				  strerror(errno));
	return 0;
}

int vd_node_mount(struct vd_node *node, const char *name, const char *mount_id,
		  const struct vd_mount_opts *opts, char **ret_path, struct vd_err *err)
{
	const struct vd_mount_opts *o = opts ? opts : &default_opts;
	char *path = NULL;
	int r = vd_name_check(name, err);
	if (r < 0 || (r = mount_id_check(mount_id, err)) < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(node->records, name);
	json_t *record = vd_docset_get(node->records, name);
	if (record)
		r = mount_again(node, name, record, mount_id, o, &path, err);
	else
		r = mount_first(node, name, mount_id, o, &path, err);
	json_decref(record);
	if (r == 0 && o->set_group && !o->block)
		r = group_give(path, o->group, err);
	/* The record holds the id first: a failed bind is retried, or undone
	 * by the unmount of the same id. */
	if (r == 0 && o->target)
		r = vd_bind(path, o->target, o->block, o->readonly, o->flags, err);
	vd_docset_unlock(node->records, lock);
	if (r < 0) {
		free(path);
		return r;
	}
	*ret_path = path;
	return 0;
}

/* No reference left: unstage, detach, forget. The record (with no ids)
 * stays until all three succeed, so a restart finishes the job. */
static int release(struct vd_node *node, const char *name, const json_t *record,
		   struct vd_err *err)
{
	int r = record_covered(record) ? vd_mount_uncover(vd_doc_str(record, "path"), err) : 0;
	if (r == 0)
		r = unstage(node, name, record, record_is_block(record), err);
	if (r == 0)
		r = node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, err);
	if (r == 0)
		r = vd_docset_delete(node->records, name, record, err);
	if (r < 0)
		atomic_store(&node->owed, 1);
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
	const char *target = vd_doc_str(json_object_get(json_object_get(published, "binds"), id),
					"target");
	int r = *target ? vd_mount_unmount(target, err) : 0;
	if (r < 0) {
		json_decref(published);
		return r;
	}
	json_t *record = vd_doc_edit(published);
	json_decref(published);
	json_t *ids = json_object_get(record, "mount_ids");
	json_array_remove(ids, (size_t)index);
	json_object_del(json_object_get(record, "binds"), id);
	r = vd_docset_put(node->records, name, record, 1, err);
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
	int r = refs ? stage(node, name, record, record_is_block(record), record_single(record),
			    &path, &err)
		     : release(node, name, record, &err);
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
		r = unstage(node, name, doc, 0, &err);
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

static int fence_locked(struct vd_node *node, const char *name, const json_t *record,
			struct vd_err *err);

static int listed(const json_t *names, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return 1;
	return 0;
}

/* Still in use here, but the controller gave it to another node while
 * this one was down: never staged again here; its data path is cut. */
static void reconcile_moved(struct vd_node *node, const json_t *record)
{
	const char *name = vd_doc_str(record, "volume");
	struct vd_err err = VD_ERR_INIT;
	if (!json_is_true(json_object_get(record, "fenced")) &&
	    fence_locked(node, name, record, &err) < 0)
		vd_log(VD_LOG_ERROR, "node volume=%s: cannot fence: %s", name, vd_err_msg(&err));
	vd_log(VD_LOG_WARN, "node volume=%s: moved to another node while this one was away; "
	       "fenced here (its users get I/O errors until they unmount it)", name);
}

static void covers_put(const char *name, const json_t *record);

/* Taken away by force before the restart: still covered (a reboot took
 * the covers), the detach finished later if it is still owed. */
static void reconcile_released(struct vd_node *node, const json_t *record)
{
	const char *name = vd_doc_str(record, "volume");
	covers_put(name, record);
	if (json_is_true(json_object_get(record, "detach_owed")))
		atomic_store(&node->owed, 1);   /* the agent's first contact settles it */
	else if (json_array_size(json_object_get(record, "mount_ids")) == 0)
		atomic_store(&node->owed, 1);
}

static int reconcile(struct vd_node *node, struct vd_err *err)
{
	json_t *records, *names = NULL, *v;
	size_t i;
	struct vd_err e = VD_ERR_INIT;
	if (node->ctl.ops->attached(node->ctl.ctl, node->node_id, &names, &e) < 0) {
		/* the controller is away: mounts stay as they are, orphans wait */
		vd_log(VD_LOG_WARN, "node: cannot ask the controller what is attached here: %s",
		       vd_err_msg(&e));
		names = NULL;
	}
	int r = vd_docset_list(node->records, &records, err);
	if (r < 0) {
		json_decref(names);
		return r;
	}
	json_array_foreach(records, i, v) {
		if (json_is_true(json_object_get(v, "released")))
			reconcile_released(node, v);
		else if (names && json_array_size(json_object_get(v, "mount_ids")) &&
		    !listed(names, vd_doc_str(v, "volume")))
			reconcile_moved(node, v);
		else
			reconcile_record(node, v);
	}
	json_decref(records);
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

int vd_node_open(const char *state_dir, const char *node_id, const char *lease_file,
		 const struct vd_backends *backends, struct vd_controller controller,
		 struct vd_node **ret_node, struct vd_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/node", state_dir);
	struct vd_node *node = calloc(1, sizeof(*node));
	if (!node || !(node->node_id = strdup(node_id)) || !(node->owed_detach = json_array()) ||
	    (lease_file && !(node->lease_file = strdup(lease_file)))) {
		if (node) {
			free(node->node_id);
			json_decref(node->owed_detach);
		}
		free(node);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&node->owed_lock, NULL);
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
	json_decref(node->owed_detach);
	pthread_mutex_destroy(&node->owed_lock);
	free(node->lease_file);
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

size_t vd_node_refs_count(struct vd_node *node)
{
	json_t *records, *v;
	size_t i, n = 0;
	if (vd_docset_list(node->records, &records, NULL) < 0)
		return 0;
	json_array_foreach(records, i, v)
		n += json_array_size(json_object_get(v, "mount_ids"));
	json_decref(records);
	return n;
}

const char *vd_node_id(const struct vd_node *node)
{
	return node->node_id;
}

/* Cuts the data path of a staged volume (driver fence), marks the record
 * fenced: its users get EIO; a later mount asks the controller first. */
static int fence_locked(struct vd_node *node, const char *name, const json_t *record,
			struct vd_err *err)
{
	const struct vd_backend *b;
	int r = record_backend(node, record, &b, err);
	if (r == 0 && b->ops->fence)
		r = b->ops->fence(b->priv, name, json_object_get(record, "spec"),
				  json_object_get(record, "data"), err);
	json_t *edit = r == 0 ? vd_doc_edit(record) : NULL;
	if (r == 0 && !edit)
		r = vd_err_set(err, -ENOMEM, "out of memory");
	if (r == 0) {
		json_object_set_new(edit, "fenced", json_true());
		r = vd_docset_put(node->records, name, edit, 1, err);
		vd_metrics_fence(VD_FENCE_VOLUME);
	}
	json_decref(edit);
	return r;
}

/* Unmounts every bind of a record (lazily: users keep an unusable view). */
static void binds_detach(const json_t *record)
{
	const char *id;
	json_t *bind;
	json_object_foreach(json_object_get(record, "binds"), id, bind)
		umount2(vd_doc_str(bind, "target"), MNT_DETACH);
}

/* How many of the record's mount ids are users: a volume placed here by a
 * move (VD_MOVE_MOUNT_ID) is not in use until something else mounts it. */
static size_t record_users(const json_t *record)
{
	size_t i, n = 0;
	json_t *v;
	json_array_foreach(json_object_get(record, "mount_ids"), i, v)
		n += strcmp(json_string_value(v), VD_MOVE_MOUNT_ID) != 0;
	return n;
}

/* The controller's detach of a released volume; then the record no longer
 * owes it. A failure is retried by vd_node_settle. */
static int detach_owed(struct vd_node *node, const char *name, const json_t *record,
		       struct vd_err *err)
{
	int r = node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, err);
	json_t *edit = r == 0 && json_object_get(record, "detach_owed") ? vd_doc_edit(record) : NULL;
	if (edit) {
		json_object_del(edit, "detach_owed");
		r = vd_docset_put(node->records, name, edit, 1, err);
		json_decref(edit);
	}
	if (r < 0)
		atomic_store(&node->owed, 1);
	return r;
}

/* Read-only covers on the mountpoint and every bind target of a volume
 * taken away (see vd_mount_cover): nothing written there by name lands on
 * this node's own disk. */
static void covers_put(const char *name, const json_t *record)
{
	const char *id;
	json_t *bind;
	struct vd_err err = VD_ERR_INIT;
	if (record_is_block(record))
		return;
	if (vd_mount_cover(vd_doc_str(record, "path"), &err) < 0)
		vd_log(VD_LOG_WARN, "node volume=%s: %s", name, vd_err_msg(&err));
	json_object_foreach(json_object_get(record, "binds"), id, bind)
		if (vd_mount_cover(vd_doc_str(bind, "target"), &err) < 0)
			vd_log(VD_LOG_WARN, "node volume=%s: %s", name, vd_err_msg(&err));
}

/* Taken away while in use: the data path is cut (users get EIO), the
 * mounts detached lazily and covered; the record stays, "released", with
 * its users' ids until they unmount; the controller gets its detach. */
static int release_forced(struct vd_node *node, const char *name, const json_t *record,
			  size_t users, struct vd_err *err)
{
	vd_log(VD_LOG_WARN, "node volume=%s: released by force with %zu users; they get I/O "
	       "errors from now on", name, users);
	int r = fence_locked(node, name, record, err);
	json_t *fenced = r == 0 ? vd_docset_get(node->records, name) : NULL;
	if (!fenced)
		return r < 0 ? r : vd_err_set(err, -ENOENT, "volume %s: record gone", name);
	binds_detach(fenced);
	/* processes with files open there keep them (and get errors); the
	 * mount itself goes, so the unstage can finish */
	if (!record_is_block(fenced))
		umount2(vd_doc_str(fenced, "path"), MNT_DETACH);
	r = unstage(node, name, fenced, record_is_block(fenced), err);
	json_t *edit = r == 0 ? vd_doc_edit(fenced) : NULL;
	if (r == 0 && !edit)
		r = vd_err_set(err, -ENOMEM, "out of memory");
	if (r == 0) {
		json_object_set_new(edit, "released", json_true());
		json_object_set_new(edit, "detach_owed", json_true());
		r = vd_docset_put(node->records, name, edit, 1, err);
	}
	if (r == 0) {
		covers_put(name, edit);
		r = detach_owed(node, name, edit, err);
	}
	json_decref(edit);
	json_decref(fenced);
	return r;
}

/* Nothing uses it here (or only a move placed it): unmounted, detached. */
static int release_unused(struct vd_node *node, const char *name, const json_t *record,
			  struct vd_err *err)
{
	json_t *edit = vd_doc_edit(record);
	if (!edit)
		return vd_err_set(err, -ENOMEM, "out of memory");
	json_array_clear(json_object_get(edit, "mount_ids"));
	json_object_clear(json_object_get(edit, "binds"));
	int r = vd_docset_put(node->records, name, edit, 1, err);
	if (r == 0)
		r = release(node, name, edit, err);
	json_decref(edit);
	return r;
}

int vd_node_release(struct vd_node *node, const char *name, int force, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	struct vd_lock *lock = vd_docset_lock(node->records, name);
	json_t *record = vd_docset_get(node->records, name);
	size_t users = record ? record_users(record) : 0;
	if (!record)
		r = node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, err);
	else if (json_is_true(json_object_get(record, "released")))
		r = detach_owed(node, name, record, err);
	else if (users && !force)
		r = vd_err_set(err, -EBUSY, "%zu mount%s on node %s use it", users,
			       users == 1 ? "" : "s", node->node_id);
	else if (users)
		r = release_forced(node, name, record, users, err);
	else
		r = release_unused(node, name, record, err);
	json_decref(record);
	vd_docset_unlock(node->records, lock);
	return r;
}

/* Retries, under the volume's lock, what a failed release or detach left. */
static void settle_one(struct vd_node *node, const char *name)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_lock *lock = vd_docset_lock(node->records, name);
	json_t *record = vd_docset_get(node->records, name);
	int r = 0;
	if (record && json_is_true(json_object_get(record, "detach_owed")))
		r = detach_owed(node, name, record, &err);
	else if (record && json_array_size(json_object_get(record, "mount_ids")) == 0)
		r = release(node, name, record, &err);
	if (r < 0)
		vd_log(VD_LOG_DEBUG, "node volume=%s: release still pending: %s", name,
		       vd_err_msg(&err));
	else if (record)
		vd_log(VD_LOG_INFO, "node volume=%s: pending release finished", name);
	json_decref(record);
	vd_docset_unlock(node->records, lock);
}

/* The detach an attach that failed in transit may have left, unless the
 * volume is mounted here now; kept for the next try when it fails. */
static void settle_attach(struct vd_node *node, const char *name)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_lock *lock = vd_docset_lock(node->records, name);
	json_t *record = vd_docset_get(node->records, name);
	if (!record && node->ctl.ops->detach(node->ctl.ctl, name, node->node_id, &err) < 0) {
		vd_log(VD_LOG_DEBUG, "node volume=%s: detach still pending: %s", name,
		       vd_err_msg(&err));
		detach_owe(node, name);
	} else if (!record) {
		vd_log(VD_LOG_INFO, "node volume=%s: detached (its attach had failed in transit)",
		       name);
	}
	json_decref(record);
	vd_docset_unlock(node->records, lock);
}

void vd_node_settle(struct vd_node *node)
{
	json_t *records, *v, *names;
	size_t i;
	struct vd_err err = VD_ERR_INIT;
	if (!atomic_exchange(&node->owed, 0))
		return;
	pthread_mutex_lock(&node->owed_lock);
	names = node->owed_detach;
	node->owed_detach = json_array();
	pthread_mutex_unlock(&node->owed_lock);
	json_array_foreach(names, i, v)
		settle_attach(node, json_string_value(v));
	json_decref(names);
	if (vd_docset_list(node->records, &records, &err) < 0) {
		atomic_store(&node->owed, 1);
		return;
	}
	json_array_foreach(records, i, v)
		if (json_is_true(json_object_get(v, "detach_owed")) ||
		    json_array_size(json_object_get(v, "mount_ids")) == 0)
			settle_one(node, vd_doc_str(v, "volume"));
	json_decref(records);
}

int vd_node_fence_single(struct vd_node *node, struct vd_err *err)
{
	json_t *records, *v;
	size_t i;
	int r = vd_docset_list(node->records, &records, err), count = 0;
	if (r < 0)
		return r;
	json_array_foreach(records, i, v) {
		const char *name = vd_doc_str(v, "volume");
		const char *access = json_string_value(json_object_get(v, "access"));
		const struct vd_backend *b = NULL;
		/* a node-local volume is this node's alone: nobody to fence it from */
		if ((access && strcmp(access, "single") != 0) ||
		    json_is_true(json_object_get(v, "fenced")) ||
		    record_backend(node, v, &b, NULL) < 0 || b->ops->node_local)
			continue;
		struct vd_lock *lock = vd_docset_lock(node->records, name);
		json_t *current = vd_docset_get(node->records, name);
		struct vd_err e = VD_ERR_INIT;
		if (current && fence_locked(node, name, current, &e) == 0)
			count++;
		else if (current)
			vd_log(VD_LOG_ERROR, "node volume=%s: cannot fence: %s", name, vd_err_msg(&e));
		json_decref(current);
		vd_docset_unlock(node->records, lock);
	}
	json_decref(records);
	return count;
}
