/* snapshots.c — the snapshot catalog (see snapshots.h). */
#include "snapshots.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docset.h"
#include "log.h"
#include "names.h"

struct vd_snapshots {
	const struct vd_backends *backends;
	struct vd_catalog *catalog;
	struct vd_docset *docs;
};

static int snap_backend(const struct vd_snapshots *s, const json_t *doc,
			const struct vd_backend **ret, struct vd_err *err)
{
	int r = vd_backend_get(s->backends, vd_doc_str(doc, "driver"), ret, err);
	if (r == 0 && (!(*ret)->ops->snapshot_create || !(*ret)->ops->snapshot_delete))
		return vd_err_set(err, -EOPNOTSUPP, "driver %s has no snapshots", (*ret)->ops->name);
	return r;
}

static int storage_delete(struct vd_snapshots *s, const char *name, const json_t *doc,
			  struct vd_err *err)
{
	const struct vd_backend *b;
	int r = snap_backend(s, doc, &b, err);
	return r < 0 ? r : b->ops->snapshot_delete(b->priv, name, err);
}

/* A snapshot a crash left "creating" never answered its caller: delete it. */
static int load_one(struct vd_docset *set, const char *name, json_t *doc, void *userdata)
{
	struct vd_err err = VD_ERR_INIT;
	if (strcmp(vd_doc_str(doc, "state"), "ready") == 0)
		return 1;
	if (storage_delete(userdata, name, doc, &err) < 0 ||
	    vd_docset_delete(set, name, doc, &err) < 0)
		vd_log(VD_LOG_ERROR, "snapshot %s: cannot delete an interrupted snapshot: %s", name,
		       vd_err_msg(&err));
	return 0;
}

int vd_snapshots_open(const char *state_dir, const struct vd_backends *backends,
		      struct vd_catalog *catalog, struct vd_snapshots **ret, struct vd_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/snapshots", state_dir);
	struct vd_snapshots *s = calloc(1, sizeof(*s));
	if (!s)
		return vd_err_set(err, -ENOMEM, "out of memory");
	s->backends = backends;
	s->catalog = catalog;
	int r = vd_docset_open(dir, load_one, s, &s->docs, err);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void vd_snapshots_free(struct vd_snapshots *snaps)
{
	if (!snaps)
		return;
	vd_docset_free(snaps->docs);
	free(snaps);
}

struct snap_job {
	struct vd_snapshots *s;
	const char *name;
	json_t *doc;         /* the snapshot's document, "creating" */
	struct vd_err *err;
};

/* Under the source volume's lock: copy it, then publish the snapshot. */
static int snap_copy(const json_t *volume, void *userdata)
{
	struct snap_job *job = userdata;
	const struct vd_backend *b;
	uint64_t bytes = 0;
	json_object_set_new(job->doc, "driver", json_string(vd_doc_str(volume, "driver")));
	int r = snap_backend(job->s, job->doc, &b, job->err);
	if (r == 0)
		r = vd_docset_put(job->s->docs, job->name, job->doc, 0, job->err);
	if (r < 0)
		return r;
	r = b->ops->snapshot_create(b->priv, vd_doc_str(volume, "name"),
				    json_object_get(volume, "spec"), json_object_get(volume, "data"),
				    job->name, &bytes, job->err);
	if (r == 0) {
		json_object_set_new(job->doc, "size_bytes", json_integer((json_int_t)bytes));
		json_object_set_new(job->doc, "state", json_string("ready"));
		r = vd_docset_put(job->s->docs, job->name, job->doc, 1, job->err);
	}
	if (r < 0) {
		struct vd_err ignored = VD_ERR_INIT;
		b->ops->snapshot_delete(b->priv, job->name, &ignored);
		vd_docset_delete(job->s->docs, job->name, job->doc, &ignored);
	}
	return r;
}

static int create_locked(struct vd_snapshots *s, const char *name, const char *source,
			 json_t **ret_doc, struct vd_err *err)
{
	json_t *doc = vd_docset_get(s->docs, name);
	if (doc && strcmp(vd_doc_str(doc, "source_volume"), source) != 0) {
		int r = vd_err_set(err, -EEXIST, "snapshot %s already exists, of volume %s", name,
				   vd_doc_str(doc, "source_volume"));
		json_decref(doc);
		return r;
	}
	if (!doc) {
		char created[32];
		vd_time_rfc3339(created, sizeof(created));
		doc = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I}", "name", name,
				"source_volume", source, "driver", "", "size_bytes", (json_int_t)0,
				"created_at", created, "state", "creating", "revision",
				(json_int_t)0);
		struct snap_job job = { s, name, doc, err };
		int r = doc ? vd_catalog_with_volume(s->catalog, source, snap_copy, &job, err)
			    : vd_err_set(err, -ENOMEM, "out of memory");
		if (r < 0) {
			json_decref(doc);
			return r;
		}
	}
	if (ret_doc)
		*ret_doc = doc;
	else
		json_decref(doc);
	return 0;
}

int vd_snapshots_create(struct vd_snapshots *snaps, const char *name, const char *source,
			json_t **ret_doc, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return vd_err_prefix(err, "snapshot name");
	if ((r = vd_name_check(source, err)) < 0)
		return vd_err_prefix(err, "source volume");
	struct vd_lock *lock = vd_docset_lock(snaps->docs, name);
	r = create_locked(snaps, name, source, ret_doc, err);
	vd_docset_unlock(snaps->docs, lock);
	return r;
}

int vd_snapshots_delete(struct vd_snapshots *snaps, const char *name, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return vd_err_prefix(err, "snapshot name");
	struct vd_lock *lock = vd_docset_lock(snaps->docs, name);
	json_t *doc = vd_docset_get(snaps->docs, name);
	if (doc && (r = storage_delete(snaps, name, doc, err)) == 0)
		r = vd_docset_delete(snaps->docs, name, doc, err);
	json_decref(doc);
	vd_docset_unlock(snaps->docs, lock);
	return r;
}

int vd_snapshots_get(struct vd_snapshots *snaps, const char *name, json_t **ret_doc,
		     struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return vd_err_prefix(err, "snapshot name");
	json_t *doc = vd_docset_get(snaps->docs, name);
	if (!doc)
		return vd_err_set(err, -ENOENT, "no snapshot named %s", name);
	*ret_doc = doc;
	return 0;
}

int vd_snapshots_list(struct vd_snapshots *snaps, json_t **ret_docs, struct vd_err *err)
{
	return vd_docset_list(snaps->docs, ret_docs, err);
}
