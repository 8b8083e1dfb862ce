/* docset.c — documents in a store, mirrored in memory (see docset.h).
 *
 * Locks: `named` per name, taken by callers around a change; `map_lock`
 * (rwlock) around the map only. Order: named lock, then map_lock. */
#include "docset.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

struct vd_docset {
	struct vd_store *store;
	struct vd_locks *named;
	pthread_rwlock_t map_lock;
	json_t *map;  /* name -> published document */
	vd_docset_load_fn load;
	void *load_userdata;
};

const char *vd_doc_str(const json_t *doc, const char *key)
{
	const char *s = json_string_value(json_object_get(doc, key));
	return s ? s : "";
}

json_t *vd_doc_edit(const json_t *doc)
{
	return json_deep_copy(doc);
}

static uint64_t doc_rev(const json_t *doc)
{
	return (uint64_t)json_integer_value(json_object_get(doc, "revision"));
}

/* Published documents are immutable, so all their empty objects can be
 * one shared object: about a third of a small document's memory. */
static json_t *shared_empty;
static pthread_once_t shared_empty_once = PTHREAD_ONCE_INIT;

static void shared_empty_make(void)
{
	shared_empty = json_object();
}

static void share_empty_members(json_t *doc)
{
	const char *key;
	json_t *value;
	void *tmp;
	pthread_once(&shared_empty_once, shared_empty_make);
	json_object_foreach_safe(doc, tmp, key, value) {
		if (value == shared_empty || !json_is_object(value))
			continue;
		if (json_object_size(value) == 0 && shared_empty)
			json_object_set(doc, key, shared_empty);
		else
			share_empty_members(value);
	}
}

static void map_set(struct vd_docset *set, const char *name, json_t *doc)
{
	if (doc)
		share_empty_members(doc);
	pthread_rwlock_wrlock(&set->map_lock);
	if (doc)
		json_object_set(set->map, name, doc);
	else
		json_object_del(set->map, name);
	pthread_rwlock_unlock(&set->map_lock);
}

static int load_one(const char *key, json_t *doc, uint64_t rev, void *userdata)
{
	struct vd_docset *set = userdata;
	json_object_set_new(doc, "revision", json_integer((json_int_t)rev));
	int r = set->load ? set->load(set, key, doc, set->load_userdata) : 1;
	if (r == 1)
		map_set(set, key, doc);
	return r < 0 ? r : 0;
}

int vd_docset_open(const char *dir, vd_docset_load_fn load, void *userdata,
		   struct vd_docset **ret_set, struct vd_err *err)
{
	struct vd_docset *set = calloc(1, sizeof(*set));
	if (!set)
		return vd_err_set(err, -ENOMEM, "out of memory");
	pthread_rwlock_init(&set->map_lock, NULL);
	set->map = json_object();
	set->named = vd_locks_new();
	set->load = load;
	set->load_userdata = userdata;
	int r = -ENOMEM;
	if (!set->map || !set->named) {
		vd_err_set(err, r, "out of memory");
		goto fail;
	}
	if ((r = vd_store_open(dir, &set->store, err)) < 0)
		goto fail;
	if ((r = vd_store_foreach(set->store, load_one, set, err)) < 0)
		goto fail;
	*ret_set = set;
	return 0;
fail:
	vd_docset_free(set);
	return r;
}

void vd_docset_free(struct vd_docset *set)
{
	if (!set)
		return;
	vd_store_free(set->store);
	vd_locks_free(set->named);
	json_decref(set->map);
	pthread_rwlock_destroy(&set->map_lock);
	free(set);
}

struct vd_lock *vd_docset_lock(struct vd_docset *set, const char *name)
{
	return vd_lock_acquire(set->named, name);
}

void vd_docset_unlock(struct vd_docset *set, struct vd_lock *lock)
{
	vd_lock_release(set->named, lock);
}

json_t *vd_docset_get(struct vd_docset *set, const char *name)
{
	pthread_rwlock_rdlock(&set->map_lock);
	json_t *doc = json_incref(json_object_get(set->map, name));
	pthread_rwlock_unlock(&set->map_lock);
	return doc;
}

int vd_docset_put(struct vd_docset *set, const char *name, json_t *doc, int publish,
		  struct vd_err *err)
{
	uint64_t rev;
	int r = vd_store_put(set->store, name, doc, doc_rev(doc), &rev, err);
	if (r < 0)
		return r;
	json_object_set_new(doc, "revision", json_integer((json_int_t)rev));
	map_set(set, name, publish ? doc : NULL);
	return 0;
}

int vd_docset_delete(struct vd_docset *set, const char *name, const json_t *doc,
		     struct vd_err *err)
{
	int r = vd_store_delete(set->store, name, doc_rev(doc), err);
	if (r < 0 && r != -ENOENT)
		return r;
	map_set(set, name, NULL);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int vd_docset_list(struct vd_docset *set, json_t **ret_docs, struct vd_err *err)
{
	pthread_rwlock_rdlock(&set->map_lock);
	size_t n = json_object_size(set->map), i = 0;
	const char **names = malloc((n ? n : 1) * sizeof(*names));
	json_t *docs = json_array();
	const char *key;
	json_t *value;
	if (names && docs) {
		json_object_foreach(set->map, key, value)
			names[i++] = key;
		qsort(names, n, sizeof(*names), name_cmp);
		for (i = 0; i < n; i++)
			json_array_append(docs, json_object_get(set->map, names[i]));
	}
	pthread_rwlock_unlock(&set->map_lock);
	free(names);
	if (!names || !docs || json_array_size(docs) != n) {
		json_decref(docs);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	*ret_docs = docs;
	return 0;
}

size_t vd_docset_count(struct vd_docset *set)
{
	pthread_rwlock_rdlock(&set->map_lock);
	size_t n = json_object_size(set->map);
	pthread_rwlock_unlock(&set->map_lock);
	return n;
}
