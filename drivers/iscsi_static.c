/* iscsi_static.c — the `static` provisioner (see iscsi_static.h).
 *
 * A claim is the store document {"record": <volume record>, "ready": bool,
 * "removing": bool}: written before the LUN's first MiB is zeroed (ready
 * false), so an interrupted create zeroes again when repeated; marked
 * removing before a wipe, so an interrupted removal is finished by the
 * next one. */
#include "iscsi_static.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../volumed/log.h"
#include "../volumed/store.h"

#define CLEAR_BYTES (1024u * 1024u)   /* zeroed at claim: where file systems keep their superblock */
#define CANDIDATES_MAX 4096

struct vd_static_claims {
	struct vd_store *store;
	pthread_mutex_t lock;          /* serialises claims across backends */
};

struct vd_static_pool {
	const struct vd_iscsi_backend *b;
	const struct vd_iscsi_settings *set;
	struct vd_iscsi_peer peer;
	struct vd_store *claims;       /* shared, see vd_static_claims */
	pthread_mutex_t *lock;
};

struct candidate {
	char *target;
	int lun;
	uint64_t size;
};

struct candidates {
	struct candidate *list;
	size_t count;
	struct vd_static_pool *p;
	const char *target;            /* while listing one target's LUNs */
};

static void candidates_free(struct candidates *c)
{
	for (size_t i = 0; i < c->count; i++)
		free(c->list[i].target);
	free(c->list);
	c->list = NULL;
	c->count = 0;
}

static int candidate_add(struct candidates *c, const char *target, int lun, uint64_t size)
{
	if (c->count >= CANDIDATES_MAX)
		return 1;   /* enough: stop the walk */
	struct candidate *bigger = realloc(c->list, (c->count + 1) * sizeof(*bigger));
	if (!bigger)
		return -ENOMEM;
	c->list = bigger;
	c->list[c->count] = (struct candidate){ strdup(target), lun, size };
	if (!c->list[c->count].target)
		return -ENOMEM;
	c->count++;
	return 0;
}

static int lun_found(const struct vd_iscsi_lun_info *info, void *userdata)
{
	struct candidates *c = userdata;
	return info->is_disk && info->size ? candidate_add(c, c->target, info->lun, info->size) : 0;
}

static int target_luns(struct candidates *c, const char *target, struct vd_err *err)
{
	c->target = target;
	int r = vd_iscsi_list_luns(&c->p->peer, target, lun_found, c, err);
	return r == 1 ? 0 : r;
}

/* 1 when iqn is the target of one of this node's tgt backends: its LUNs
 * are that backend's volumes, never free LUNs of a pool. */
static int tgt_owned(const struct vd_static_pool *p, const char *iqn)
{
	for (size_t i = 0; i < p->set->count; i++) {
		const struct vd_iscsi_backend *b = &p->set->backends[i];
		if (b->provisioner == VD_ISCSI_TGT && b->target && strcmp(b->target, iqn) == 0)
			return 1;
	}
	return 0;
}

static int target_found(const char *iqn, const char *portal, void *userdata)
{
	struct candidates *c = userdata;
	(void)portal;
	if (tgt_owned(c->p, iqn))
		return 0;
	struct vd_err e = VD_ERR_INIT;
	int r = target_luns(c, iqn, &e);
	if (r < 0)   /* one target we cannot read does not hide the others */
		vd_log(VD_LOG_WARN, "iscsi backend %s: target %s: %s", c->p->b->name, iqn,
		       vd_err_msg(&e));
	return r == -ENOMEM ? r : 0;
}

/* Every disk LUN of the pool: the configured ones, or all discovered. */
static int candidates_list(struct vd_static_pool *p, struct candidates *c, struct vd_err *err)
{
	*c = (struct candidates){ .p = p };
	int r = 0;
	if (!p->b->target_count)
		r = vd_iscsi_discover_targets(&p->peer, target_found, c, err);
	for (size_t i = 0; r == 0 && i < p->b->target_count; i++) {
		const struct vd_iscsi_static_target *t = &p->b->targets[i];
		if (!t->luns) {
			r = target_luns(c, t->iqn, err);
			continue;
		}
		for (size_t k = 0; r == 0 && k < t->lun_count; k++) {
			struct vd_iscsi_lun_info info;
			r = vd_iscsi_lun_info(&p->peer, t->iqn, t->luns[k], &info, err);
			if (r == 0 && info.is_disk && info.size)
				r = candidate_add(c, t->iqn, t->luns[k], info.size);
		}
	}
	if (r == 1)
		r = 0;
	if (r < 0)
		candidates_free(c);
	return r == -ENOMEM ? vd_err_set(err, r, "out of memory") : r;
}

/* ---- claims --------------------------------------------------------------- */

static const json_t *rec_of(const json_t *doc)
{
	return json_object_get(doc, "record");
}

struct taken {
	const char *target;
	int lun;
	const char *by;
};

static int taken_fn(const char *name, json_t *doc, uint64_t rev, void *userdata)
{
	struct taken *t = userdata;
	(void)rev;
	const json_t *rec = rec_of(doc);
	if (json_integer_value(json_object_get(rec, "lun")) == t->lun &&
	    json_string_value(json_object_get(rec, "target")) &&
	    strcmp(json_string_value(json_object_get(rec, "target")), t->target) == 0) {
		t->by = name;
		return 1;
	}
	return 0;
}

static int is_taken(struct vd_static_pool *p, const struct candidate *c)
{
	struct taken t = { c->target, c->lun, NULL };
	return vd_store_foreach(p->claims, taken_fn, &t, NULL) == 1;
}

/* The smallest free candidate of at least size bytes; NULL with the
 * largest free size in *ret_largest otherwise. */
static const struct candidate *pick(struct vd_static_pool *p, const struct candidates *c,
				    uint64_t size, uint64_t *ret_largest)
{
	const struct candidate *best = NULL;
	*ret_largest = 0;
	for (size_t i = 0; i < c->count; i++) {
		const struct candidate *k = &c->list[i];
		if (is_taken(p, k))
			continue;
		if (k->size > *ret_largest)
			*ret_largest = k->size;
		if (k->size >= size && (!best || k->size < best->size))
			best = k;
	}
	return best;
}

static int claim_put(struct vd_static_pool *p, const char *name, const json_t *spec,
		     const struct candidate *k, struct vd_err *err)
{
	char now[40];
	vd_time_rfc3339(now, sizeof(now));
	struct vd_iscsi_location loc = { .portal = p->b->portal, .target = k->target, .lun = k->lun };
	json_t *rec = vd_iscsi_record_new(name, spec, &loc, now);
	json_t *doc = rec ? json_pack("{s:o, s:b, s:b, s:I}", "record", rec, "ready", 0,
				      "removing", 0, "lun_size", (json_int_t)k->size) : NULL;
	int r = doc ? vd_store_put(p->claims, name, doc, 0, NULL, err)
		    : vd_err_set(err, -ENOMEM, "out of memory");
	json_decref(doc);
	return r;
}

/* A new claim: a free LUN recorded for name (not ready yet). */
static int claim_new(struct vd_static_pool *p, const char *name, const json_t *spec,
		     struct vd_err *err)
{
	struct candidates c;
	uint64_t largest, size = (uint64_t)json_integer_value(json_object_get(spec, "size"));
	int r = candidates_list(p, &c, err);
	if (r < 0)
		return r;
	const struct candidate *k = pick(p, &c, size, &largest);
	if (!k)
		r = vd_err_set(err, -ENOSPC, "iscsi backend %s: no free LUN of %llu bytes or more "
			       "(%zu LUNs in the pool; the largest free one has %llu bytes)",
			       p->b->name, (unsigned long long)size, c.count,
			       (unsigned long long)largest);
	else
		r = claim_put(p, name, spec, k, err);
	candidates_free(&c);
	return r;
}

static int location_of(const json_t *doc, json_t **ret, struct vd_err *err)
{
	const json_t *rec = rec_of(doc);
	*ret = vd_iscsi_location_new(json_string_value(json_object_get(rec, "portal")),
				     json_string_value(json_object_get(rec, "target")),
				     (int)json_integer_value(json_object_get(rec, "lun")));
	return *ret ? 0 : vd_err_set(err, -ENOMEM, "out of memory");
}

/* Zeroes the claimed LUN's first MiB, then marks the claim ready. */
static int claim_ready(struct vd_static_pool *p, const char *name, struct vd_err *err)
{
	json_t *doc;
	uint64_t rev;
	int r = vd_store_get(p->claims, name, &doc, &rev, err);
	if (r < 0 || json_is_true(json_object_get(doc, "ready"))) {
		json_decref(r == 0 ? doc : NULL);
		return r;
	}
	const json_t *rec = rec_of(doc);
	const char *target = json_string_value(json_object_get(rec, "target"));
	int lun = (int)json_integer_value(json_object_get(rec, "lun"));
	r = vd_iscsi_zero(&p->peer, target, lun, 0, CLEAR_BYTES, err);
	if (r == 0) {
		json_object_set_new(doc, "ready", json_true());
		r = vd_store_put(p->claims, name, doc, rev, NULL, err);
	}
	if (r == 0)
		vd_log(VD_LOG_INFO, "iscsi backend %s: volume %s claimed LUN %d of %s",
		       p->b->name, name, lun, target);
	json_decref(doc);
	return r;
}

static const char *claim_backend(const json_t *doc)
{
	return json_string_value(json_object_get(json_object_get(rec_of(doc), "spec"), "backend"));
}

static int create_locked(struct vd_static_pool *p, const char *name, const json_t *spec,
			 json_t **ret_location, struct vd_err *err)
{
	json_t *doc = NULL;
	int r = vd_store_get(p->claims, name, &doc, NULL, err);
	if (r == -ENOENT)
		r = claim_new(p, name, spec, err);
	else if (r == 0 && strcmp(claim_backend(doc) ? claim_backend(doc) : "", p->b->name) != 0)
		r = vd_err_set(err, -EEXIST, "volume %s has a LUN of iscsi backend %s already",
			       name, claim_backend(doc) ? claim_backend(doc) : "?");
	else if (r == 0 && json_is_true(json_object_get(doc, "removing")))
		r = vd_err_set(err, -EBUSY, "volume %s is being removed; try again", name);
	else if (r == 0 && !json_equal(json_object_get(rec_of(doc), "spec"), spec))
		r = vd_err_set(err, -EEXIST, "volume %s exists in iscsi pool %s with other options",
			       name, p->b->name);
	json_decref(doc);
	if (r == 0)
		r = claim_ready(p, name, err);
	if (r == 0)
		r = vd_store_get(p->claims, name, &doc, NULL, err);
	if (r == 0) {
		r = location_of(doc, ret_location, err);
		json_decref(doc);
	}
	return r;
}

int vd_static_pool_create(struct vd_static_pool *pool, const char *name, const json_t *spec,
			  json_t **ret_location, struct vd_err *err)
{
	pthread_mutex_lock(pool->lock);
	int r = create_locked(pool, name, spec, ret_location, err);
	pthread_mutex_unlock(pool->lock);
	return r;
}

static int remove_locked(struct vd_static_pool *p, const char *name, struct vd_err *err)
{
	json_t *doc = NULL;
	uint64_t rev;
	int r = vd_store_get(p->claims, name, &doc, &rev, err);
	if (r == 0 && strcmp(claim_backend(doc) ? claim_backend(doc) : "", p->b->name) != 0)
		r = -ENOENT;   /* another backend's claim: not this volume */
	if (r == -ENOENT) {
		json_decref(doc);
		return 0;
	}
	const json_t *rec = r == 0 ? rec_of(doc) : NULL;
	int wipe = json_is_true(json_object_get(json_object_get(rec, "spec"), "wipe"));
	if (r == 0 && wipe && !json_is_true(json_object_get(doc, "removing"))) {
		json_object_set_new(doc, "removing", json_true());
		r = vd_store_put(p->claims, name, doc, rev, &rev, err);
	}
	if (r == 0 && wipe)
		r = vd_iscsi_zero(&p->peer, json_string_value(json_object_get(rec, "target")),
				  (int)json_integer_value(json_object_get(rec, "lun")), 0,
				  UINT64_MAX, err);
	if (r == 0)
		r = vd_store_delete(p->claims, name, rev, err);
	json_decref(doc);
	return r == -ENOENT ? 0 : r;
}

int vd_static_pool_remove(struct vd_static_pool *pool, const char *name, struct vd_err *err)
{
	pthread_mutex_lock(pool->lock);
	int r = remove_locked(pool, name, err);
	pthread_mutex_unlock(pool->lock);
	return r;
}

int vd_static_pool_capacity(struct vd_static_pool *pool, uint64_t *ret_bytes,
			    struct vd_err *err)
{
	struct candidates c;
	pthread_mutex_lock(pool->lock);
	int r = candidates_list(pool, &c, err);
	uint64_t free_bytes = 0;
	for (size_t i = 0; r == 0 && i < c.count; i++)
		if (!is_taken(pool, &c.list[i]))
			free_bytes += c.list[i].size;
	if (r == 0)
		candidates_free(&c);
	pthread_mutex_unlock(pool->lock);
	if (r == 0)
		*ret_bytes = free_bytes;
	return r;
}

struct foreach_walk {
	int (*fn)(const char *name, const json_t *spec, const json_t *location, void *userdata);
	void *userdata;
	const char *backend;
};

static int foreach_one(const char *name, json_t *doc, uint64_t rev, void *userdata)
{
	struct foreach_walk *w = userdata;
	json_t *loc;
	(void)rev;
	if (!json_is_true(json_object_get(doc, "ready")) ||
	    json_is_true(json_object_get(doc, "removing")) || !claim_backend(doc) ||
	    strcmp(claim_backend(doc), w->backend) != 0)
		return 0;
	if (location_of(doc, &loc, NULL) < 0)
		return -ENOMEM;
	int r = w->fn(name, json_object_get(rec_of(doc), "spec"), loc, w->userdata);
	json_decref(loc);
	return r;
}

int vd_static_pool_foreach(struct vd_static_pool *pool,
			   int (*fn)(const char *name, const json_t *spec, const json_t *location,
				     void *userdata),
			   void *userdata, struct vd_err *err)
{
	struct foreach_walk w = { fn, userdata, pool->b->name };
	return vd_store_foreach(pool->claims, foreach_one, &w, err);
}

int vd_static_claims_open(const char *dir, struct vd_static_claims **ret, struct vd_err *err)
{
	struct vd_static_claims *c = calloc(1, sizeof(*c));
	if (!c)
		return vd_err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	int r = vd_store_open(dir, &c->store, err);
	if (r < 0) {
		vd_static_claims_close(c);
		return r;
	}
	*ret = c;
	return 0;
}

void vd_static_claims_close(struct vd_static_claims *claims)
{
	if (!claims)
		return;
	vd_store_free(claims->store);
	pthread_mutex_destroy(&claims->lock);
	free(claims);
}

int vd_static_pool_open(const struct vd_iscsi_backend *backend,
			const struct vd_iscsi_settings *set, struct vd_static_claims *claims,
			const struct vd_iscsi_peer *peer, struct vd_static_pool **ret,
			struct vd_err *err)
{
	struct vd_static_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return vd_err_set(err, -ENOMEM, "out of memory");
	*p = (struct vd_static_pool){ .b = backend, .set = set, .peer = *peer,
				      .claims = claims->store, .lock = &claims->lock };
	*ret = p;
	return 0;
}

void vd_static_pool_close(struct vd_static_pool *pool)
{
	free(pool);
}
