/* iscsi.c — the `iscsi` driver: block volumes on iSCSI targets, formatted
 * and mounted on the node that uses them, fenced with SCSI-3 persistent
 * reservations.
 *
 * Control plane: per backend, a provisioner — tgt (iscsi_tgt.c: LUNs on a
 * tgtd beside the controller) or static (iscsi_static.c: a pool of LUNs
 * that exist already). The driver's data for a volume is its location
 * {"portal","target","lun"}.
 *
 * Node side: volumed-iscsi-fuse serves the LUN as the file
 * <state_dir>/iscsi/<backend>/<name>/lun/disk (this machine's kernels have
 * no iSCSI initiator); a loop device with direct I/O goes over it; the
 * first use formats it (ext4 or xfs), every use mounts it on .../mnt.
 * Block access hands out the loop device. The helper registers the node's
 * reservation key and holds a Write Exclusive reservation: another node's
 * helper gets "reserved by key K" and fails, unless the volume was made
 * with preempt=true, which fences K (its writes then fail with RESERVATION
 * CONFLICT). Helpers run detached and are adopted after a restart.
 *
 * A watcher thread checks once a second whether a tgtd was restarted (its
 * control socket is new) and rebuilds its configuration from the records.
 *
 * Threads: the core serialises ops on one volume; pools guard themselves;
 * the settings are read-only after init. */
#include "driver.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../volumed/log.h"
#include "../volumed/mount.h"
#include "helper_proc.h"
#include "iscsi_client.h"
#include "iscsi_meta.h"
#include "iscsi_static.h"
#include "iscsi_tgt.h"

#define HELPER_NAME "volumed-iscsi-fuse"
#define WATCH_PERIOD_MS 1000
#define LOOP_GONE_MS 5000        /* after an unmount, the autoclear loop device goes */
#define SECRET_TEXT_MAX 1100
#define HELPER_IO_KB 1024        /* the helper's largest FUSE request (max_write/max_read) */

struct pool {
	const struct vd_iscsi_backend *b;
	struct vd_tgt_pool *tgt;        /* one of the two */
	struct vd_static_pool *fixed;
	struct vd_iscsi_peer peer;      /* for the control-plane client */
	char last_error[256];           /* the watcher logs a failure once */
};

struct iscsi_drv {
	char *root;                     /* <state_dir>/iscsi */
	struct vd_iscsi_settings *set;
	char *helper;
	char initiator[256];
	uint64_t key;                   /* this node's reservation key */
	char key_text[24];
	struct pool *pools;             /* one per backend, same order */
	struct vd_static_claims *claims;   /* of every static backend (NULL: none) */
	pthread_t watcher;
	int watching;
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;
	int stopping;
};

/* ---- small helpers ------------------------------------------------------- */

static int path_of(char *buf, struct vd_err *err, const char *root, const char *backend,
		   const char *name, const char *leaf)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s/%s%s%s", root, backend, name, leaf ? "/" : "",
			 leaf ? leaf : "");
	if (n < 0 || n >= PATH_MAX)
		return vd_err_set(err, -ENAMETOOLONG, "path for volume %s is too long", name);
	return 0;
}

static int mkdir_p(const char *path, struct vd_err *err)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return vd_err_set(err, -errno, "create %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return vd_err_set(err, -errno, "create %s: %s", tmp, strerror(errno));
	return 0;
}

static struct pool *pool_of(struct iscsi_drv *d, const char *backend)
{
	for (size_t i = 0; backend && i < d->set->count; i++)
		if (strcmp(d->set->backends[i].name, backend) == 0)
			return &d->pools[i];
	return NULL;
}

/* The spec read and its backend's pool. */
static int volume_get(struct iscsi_drv *d, const json_t *spec, struct vd_iscsi_spec *s,
		      struct pool **ret, struct vd_err *err)
{
	int r = vd_iscsi_spec_read(spec, s, err);
	if (r < 0)
		return r;
	*ret = pool_of(d, s->backend);
	if (!*ret) {
		char names[256];
		vd_iscsi_backend_names(d->set, names, sizeof(names));
		return vd_err_set(err, -ENOENT, "iscsi backend '%s' is not configured here "
				  "(configured: %s)", s->backend, *names ? names : "none");
	}
	return 0;
}

/* ---- control plane --------------------------------------------------------- */

static int iscsi_create_op(void *priv, const char *name, const json_t *spec, json_t **ret_data,
			   struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct pool *p;
	int r = volume_get(d, spec, &s, &p, err);
	if (r < 0)
		return r;
	return p->tgt ? vd_tgt_pool_create(p->tgt, name, spec, ret_data, err)
		: vd_static_pool_create(p->fixed, name, spec, ret_data, err);
}

/* A volume some node uses holds a reservation on its LUN: refuse to delete it, whoever asks. A LUN that is gone, or a target
 * that is down (the removal then fails on its own), is no user. */
static int in_use_check(const struct iscsi_drv *d, struct pool *p, const char *name,
			const json_t *data, struct vd_err *err)
{
	struct vd_iscsi_location loc;
	struct vd_iscsi_pr_state pr;
	struct vd_err e = VD_ERR_INIT;
	if (!data || vd_iscsi_location_read(data, &loc, NULL) < 0)
		return 0;
	int r = vd_iscsi_pr_read(&p->peer, loc.target, loc.lun, &pr, &e);
	if (r == -ENOENT || r == -ECONNREFUSED || r == -EHOSTUNREACH)
		return 0;
	if (r < 0)
		return vd_err_set(err, r, "volume %s: cannot tell whether a node uses it: %s", name,
				  vd_err_msg(&e));
	/* A stale registration alone holds nothing; our own key, with the core
	 * knowing of no mount here, is a reservation a dead session left. */
	if (!pr.reserved || pr.holder == d->key)
		return 0;
	char key[24];
	vd_iscsi_key_format(pr.holder, key, sizeof(key));
	return vd_err_set(err, -EBUSY, "volume %s is in use by a node (reservation key %s); "
			  "unmount it there first", name, key);
}

static int iscsi_remove_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			   struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct pool *p;
	int r = volume_get(d, spec, &s, &p, err);
	if (r == 0)
		r = in_use_check(d, p, name, data, err);
	if (r < 0)
		return r;
	return p->tgt ? vd_tgt_pool_remove(p->tgt, name, err)
		: vd_static_pool_remove(p->fixed, name, err);
}

static int iscsi_capacity_op(void *priv, const json_t *opts, uint64_t *ret_bytes,
			     struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	const char *name = json_string_value(json_object_get(opts, "backend"));
	const struct vd_iscsi_backend *b = name ? vd_iscsi_backend_find(d->set, name)
		: d->set->default_backend;
	struct pool *p = b ? pool_of(d, b->name) : NULL;
	if (!p) {
		char names[256];
		vd_iscsi_backend_names(d->set, names, sizeof(names));
		return vd_err_set(err, -EINVAL, "option backend: %s%.40s%s; configured: %s",
				  name ? "'" : "", name ? name : "no default backend", name ?
				  "' is not an iscsi backend" : "", *names ? names : "none");
	}
	return p->tgt ? vd_tgt_pool_capacity(p->tgt, ret_bytes, err)
		: vd_static_pool_capacity(p->fixed, ret_bytes, err);
}

struct discover_walk {
	int (*fn)(const char *name, const json_t *options, const json_t *spec,
		  const json_t *data, void *userdata);
	void *userdata;
};

static int discover_one(const char *name, const json_t *spec, const json_t *location,
			void *userdata)
{
	struct discover_walk *w = userdata;
	struct vd_iscsi_spec s;
	if (vd_iscsi_spec_read(spec, &s, NULL) < 0)
		return 0;
	json_t *options = vd_iscsi_spec_options(&s);
	int r = options ? w->fn(name, options, spec, location, w->userdata) : -ENOMEM;
	json_decref(options);
	return r;
}

static int iscsi_discover_op(void *priv,
			     int (*fn)(const char *name, const json_t *options, const json_t *spec,
				       const json_t *data, void *userdata),
			     void *userdata, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct discover_walk w = { fn, userdata };
	int r = 0;
	for (size_t i = 0; r == 0 && i < d->set->count; i++) {
		struct pool *p = &d->pools[i];
		r = p->tgt ? vd_tgt_pool_foreach(p->tgt, discover_one, &w, err)
			: vd_static_pool_foreach(p->fixed, discover_one, &w, err);
	}
	return r;
}

/* ---- node side: the LUN through the helper ------------------------------- */

struct node_paths {
	char dir[PATH_MAX];      /* helper.log, helper.pid */
	char lun[PATH_MAX];      /* the helper's FUSE mount */
	char disk[PATH_MAX];     /* lun/disk */
	char mnt[PATH_MAX];      /* the file system */
};

static int node_paths(const struct iscsi_drv *d, const struct pool *p, const char *name,
		      struct node_paths *np, struct vd_err *err)
{
	int r = path_of(np->dir, err, d->root, p->b->name, name, NULL);
	if (r == 0)
		r = path_of(np->lun, err, d->root, p->b->name, name, "lun");
	if (r == 0)
		r = path_of(np->disk, err, d->root, p->b->name, name, "lun/disk");
	if (r == 0)
		r = path_of(np->mnt, err, d->root, p->b->name, name, "mnt");
	return r;
}

/* What every node-side op starts with: the spec, its pool, the paths. */
static int node_volume(struct iscsi_drv *d, const char *name, const json_t *spec,
		       struct vd_iscsi_spec *s, struct pool **ret_pool, struct node_paths *np,
		       struct vd_err *err)
{
	int r = volume_get(d, spec, s, ret_pool, err);
	return r < 0 ? r : node_paths(d, *ret_pool, name, np, err);
}

/* "USER\nPASSWORD\n[TARGET-USER\nTARGET-PASSWORD\n]" for the helper. */
static const char *chap_text(const struct vd_iscsi_chap *c, char *buf, size_t len)
{
	if (!c->username)
		return NULL;
	int n = snprintf(buf, len, "%s\n%s\n", c->username, c->password);
	if (c->target_username && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "%s\n%s\n", c->target_username,
			 c->target_password);
	return buf;
}

/* The key in "... reserved by key 0x..." (the helper's refusal), or 0. */
static uint64_t holder_in(const char *msg)
{
	const char *k = strstr(msg, "reserved by key 0x");
	return k ? strtoull(k + 18, NULL, 16) : 0;
}

static int helper_run(struct iscsi_drv *d, struct pool *p, const struct vd_iscsi_location *loc,
		      const struct node_paths *np, const json_t *data, uint64_t preempt,
		      struct vd_err *err)
{
	char url[1024], what[300], victim[24], secret[SECRET_TEXT_MAX];
	snprintf(url, sizeof(url), "iscsi://%s/%s/%d", loc->portal, loc->target, loc->lun);
	snprintf(what, sizeof(what), "iscsi backend %s", p->b->name);
	vd_iscsi_key_format(preempt, victim, sizeof(victim));
	char *args[] = { "--url", url, "--pr-key", d->key_text, "--initiator", d->initiator,
			 preempt ? "--preempt" : NULL, victim, NULL };
	struct vd_helper_run run = { .program = d->helper, .what = what, .dir = np->dir,
				     .mnt = np->lun, .timeout_ms = p->b->timeout_ms, .args = args,
				     .secret = chap_text(&p->b->chap, secret, sizeof(secret)),
				     .lease_file = json_string_value(json_object_get(data, "lease_file")) };
	int r = vd_helper_start(&run, err);
	explicit_bzero(secret, sizeof(secret));
	return r;
}

/* The helper serving the LUN, started (or adopted) with the node's key.
 * Held by another node: preempted when the volume allows it, else -EBUSY. */
static int lun_attach(struct iscsi_drv *d, struct pool *p, const char *name,
		      const struct vd_iscsi_spec *s, const json_t *data,
		      const struct node_paths *np, struct vd_err *err)
{
	struct vd_iscsi_location loc;
	int r = vd_iscsi_location_read(data, &loc, err);
	if (r == 0)
		r = mkdir_p(np->lun, err);
	if (r == 0)
		r = mkdir_p(np->mnt, err);
	if (r == 0)
		r = vd_helper_mount_state(np->lun, err);
	if (r == 2) {   /* its helper died: clear what hangs on the dead mount */
		umount2(np->mnt, MNT_DETACH);
		vd_mount_loop_detach(np->disk, NULL);
		umount2(np->lun, MNT_DETACH);
		vd_helper_stop(np->dir, np->lun);
		r = 0;
	}
	if (r != 0)
		return r < 0 ? r : 0;   /* 1: attached already, or adopted */
	r = helper_run(d, p, &loc, np, data, 0, err);
	uint64_t holder = r == -EBUSY ? holder_in(vd_err_msg(err)) : 0;
	/* data "fence": the controller moved the volume from a dead node */
	int preempt = s->preempt || json_is_true(json_object_get(data, "fence"));
	if (r == -EBUSY && preempt && holder) {
		vd_log(VD_LOG_WARN, "iscsi: volume %s is held by reservation key 0x%016" PRIx64
		       "; preempting it (%s)", name, holder, s->preempt ? "the volume allows "
		       "preemption" : "the controller moved it here from a fenced node");
		vd_err_clear(err);
		r = helper_run(d, p, &loc, np, data, holder, err);
	} else if (r == -EBUSY) {
		r = vd_err_set(err, -EBUSY, "volume %s is in use by another node (reservation key "
			       "0x%016" PRIx64 "; this node's is %s); detach it there first, or "
			       "create the volume with -o preempt=true to allow taking it over",
			       name, holder, d->key_text);
	}
	return r;
}

/* Stops serving the LUN: the helper releases the reservation and exits. */
static int lun_detach(const struct node_paths *np, struct vd_err *err)
{
	vd_mount_loop_wait_gone(np->disk, LOOP_GONE_MS);
	/* Nothing of ours uses the LUN any more (the file system and the loop
	 * device are gone); a lingering reference only delays the helper's
	 * exit, so a busy or dead FUSE mount is detached lazily. */
	if (umount2(np->lun, 0) < 0 && errno != EINVAL && errno != ENOENT &&
	    umount2(np->lun, MNT_DETACH) < 0 && errno != EINVAL)
		return vd_err_set(err, -errno, "unmount %s: %s", np->lun, strerror(errno));
	vd_helper_stop(np->dir, np->lun);
	return 0;
}

static int iscsi_stage_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			  char **ret_path, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	int r = node_volume(d, name, spec, &s, &p, &np, err);
	if (r == 0)
		r = lun_attach(d, p, name, &s, data, &np, err);
	if (r < 0)
		return r;
	struct vd_image_mount m = { .fstype = s.fstype, .direct_io = 1, .format = 1,
				    .prezeroed = p->tgt != NULL, .max_io_kb = HELPER_IO_KB };
	r = vd_mount_image_ex(np.disk, np.mnt, &m, err);
	if (r < 0) {
		struct vd_err e = VD_ERR_INIT;
		lun_detach(&np, &e);   /* releases the reservation */
		return r;
	}
	if (!(*ret_path = strdup(np.mnt)))
		return vd_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int iscsi_unstage_op(void *priv, const char *name, const json_t *spec,
			    const json_t *data, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	(void)data;
	int r = node_volume(d, name, spec, &s, &p, &np, err);
	if (r == 0)
		r = vd_mount_unmount(np.mnt, err);
	if (r == -EBUSY)
		return vd_err_set(err, -EBUSY, "volume %s is in use on %s (a process has files "
				  "open there); stop it first", name, np.mnt);
	return r < 0 ? r : lun_detach(&np, err);
}

static int iscsi_fence_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			  struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	(void)data;
	int r = node_volume(d, name, spec, &s, &p, &np, err);
	if (r < 0)
		return r;
	vd_helper_kill(np.dir, np.lun);   /* the loop device's I/O fails from now on */
	return 0;
}

static int iscsi_is_staged_op(void *priv, const char *name, const json_t *spec,
			      const json_t *data, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	char dev[32];
	(void)data;
	int r = node_volume(d, name, spec, &s, &p, &np, err);
	if (r == 0)
		r = vd_helper_mount_state(np.lun, err);
	if (r != 1)
		return r < 0 ? r : 0;
	r = vd_mount_is_mounted(np.mnt, err);
	return r != 0 ? r : vd_mount_loop_find(np.disk, dev, sizeof(dev), err);
}

static char *iscsi_mountpoint_op(void *priv, const char *name, const json_t *spec,
				 const json_t *data)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	(void)data;
	if (node_volume(d, name, spec, &s, &p, &np, NULL) < 0)
		return NULL;
	return strdup(np.mnt);
}

static int iscsi_block_attach_op(void *priv, const char *name, const json_t *spec,
				 const json_t *data, char **ret_device, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	char dev[32];
	int r = node_volume(d, name, spec, &s, &p, &np, err);
	if (r == 0)
		r = lun_attach(d, p, name, &s, data, &np, err);
	if (r == 0)
		r = vd_mount_loop_attach_ex(np.disk, 1, dev, sizeof(dev), err);
	if (r < 0)
		return r;
	vd_mount_loop_max_io(dev, HELPER_IO_KB);
	if (!(*ret_device = strdup(dev)))
		return vd_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int iscsi_block_detach_op(void *priv, const char *name, const json_t *spec,
				 const json_t *data, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct node_paths np;
	struct pool *p;
	(void)data;
	int r = node_volume(d, name, spec, &s, &p, &np, err);
	if (r == 0)
		r = vd_mount_loop_detach(np.disk, err);
	return r < 0 ? r : lun_detach(&np, err);
}

/* ---- pure ops and inspect --------------------------------------------------- */

static int iscsi_parse_options_op(void *priv, const json_t *opts, json_t **ret_spec,
				  struct vd_err *err)
{
	const struct iscsi_drv *d = priv;
	return vd_iscsi_parse_options(d->set, opts, ret_spec, err);
}

static void iscsi_describe_op(void *priv, const json_t *spec, const json_t *data,
			      json_t *status)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct vd_iscsi_location loc;
	if (vd_iscsi_spec_read(spec, &s, NULL) < 0)
		return;
	const struct vd_iscsi_backend *b = vd_iscsi_backend_find(d->set, s.backend);
	json_object_set_new(status, "type", json_string("iscsi"));
	json_object_set_new(status, "backend", json_string(s.backend));
	if (b)
		json_object_set_new(status, "provisioner",
				    json_string(vd_iscsi_provisioner_name(b->provisioner)));
	json_object_set_new(status, "size_bytes", json_integer((json_int_t)s.size));
	json_object_set_new(status, "fstype", json_string(s.fstype));
	json_object_set_new(status, "preempt", json_boolean(s.preempt));
	json_object_set_new(status, "wipe", json_boolean(s.wipe));
	if (vd_iscsi_location_read(data, &loc, NULL) == 0) {
		json_object_set_new(status, "portal", json_string(loc.portal));
		json_object_set_new(status, "target", json_string(loc.target));
		json_object_set_new(status, "lun", json_integer(loc.lun));
	}
	json_object_set_new(status, "node_reservation_key", json_string(d->key_text));
}

static uint64_t iscsi_spec_size_op(void *priv, const json_t *spec)
{
	struct vd_iscsi_spec s;
	(void)priv;
	return vd_iscsi_spec_read(spec, &s, NULL) < 0 ? 0 : s.size;
}

static json_t *pr_json(const struct vd_iscsi_pr_state *pr, uint64_t own)
{
	char text[24];
	json_t *keys = json_array(), *o = json_object();
	for (size_t i = 0; i < pr->key_count && i < VD_ISCSI_PR_KEYS_MAX; i++) {
		vd_iscsi_key_format(pr->keys[i], text, sizeof(text));
		json_array_append_new(keys, json_string(text));
	}
	json_object_set_new(o, "registered_keys", keys);
	json_object_set_new(o, "generation", json_integer(pr->generation));
	if (pr->reserved) {
		vd_iscsi_key_format(pr->holder, text, sizeof(text));
		json_object_set_new(o, "holder", json_string(text));
		json_object_set_new(o, "type", json_string(vd_iscsi_pr_type_name(pr->type)));
		json_object_set_new(o, "held_by_this_node", json_boolean(pr->holder == own));
	} else {
		json_object_set_new(o, "holder", json_null());
	}
	return o;
}

static int iscsi_probe_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			  json_t *status, struct vd_err *err)
{
	struct iscsi_drv *d = priv;
	struct vd_iscsi_spec s;
	struct vd_iscsi_location loc;
	struct vd_iscsi_pr_state pr;
	struct pool *p;
	(void)name;
	int r = volume_get(d, spec, &s, &p, err);
	if (r == 0)
		r = vd_iscsi_location_read(data, &loc, err);
	if (r == 0)
		r = vd_iscsi_pr_read(&p->peer, loc.target, loc.lun, &pr, err);
	if (r == 0)
		json_object_set_new(status, "reservation", pr_json(&pr, d->key));
	return r;
}

/* ---- the tgtd watcher -------------------------------------------------------- */

static void pool_sync(struct pool *p, int *ret_failed)
{
	struct vd_err err = VD_ERR_INIT;
	if (vd_tgt_pool_sync(p->tgt, &err) == 0) {
		if (p->last_error[0] || !*ret_failed)
			vd_log(VD_LOG_INFO, "iscsi backend %s: tgtd configuration rebuilt from the "
			       "records (target %s)", p->b->name, p->b->target);
		p->last_error[0] = '\0';
		return;
	}
	*ret_failed = 1;
	if (strcmp(p->last_error, vd_err_msg(&err)) != 0)   /* once per distinct failure */
		vd_log(VD_LOG_ERROR, "%s", vd_err_msg(&err));
	snprintf(p->last_error, sizeof(p->last_error), "%s", vd_err_msg(&err));
}

static void *watch(void *arg)
{
	struct iscsi_drv *d = arg;
	pthread_mutex_lock(&d->watch_lock);
	while (!d->stopping) {
		pthread_mutex_unlock(&d->watch_lock);
		for (size_t i = 0; i < d->set->count; i++) {
			int failed = 0;
			if (d->pools[i].tgt && vd_tgt_pool_changed(d->pools[i].tgt))
				pool_sync(&d->pools[i], &failed);
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WATCH_PERIOD_MS / 1000;
		pthread_mutex_lock(&d->watch_lock);
		if (!d->stopping)
			pthread_cond_timedwait(&d->watch_cond, &d->watch_lock, &until);
	}
	pthread_mutex_unlock(&d->watch_lock);
	return NULL;
}

/* ---- init ------------------------------------------------------------------- */

static void iscsi_fini(void *priv)
{
	struct iscsi_drv *d = priv;
	if (!d)
		return;
	if (d->watching) {
		pthread_mutex_lock(&d->watch_lock);
		d->stopping = 1;
		pthread_cond_signal(&d->watch_cond);
		pthread_mutex_unlock(&d->watch_lock);
		pthread_join(d->watcher, NULL);
	}
	for (size_t i = 0; d->pools && i < d->set->count; i++) {
		vd_tgt_pool_close(d->pools[i].tgt);
		vd_static_pool_close(d->pools[i].fixed);
	}
	free(d->pools);
	vd_static_claims_close(d->claims);
	vd_iscsi_settings_free(d->set);
	free(d->helper);
	free(d->root);
	pthread_mutex_destroy(&d->watch_lock);
	pthread_cond_destroy(&d->watch_cond);
	free(d);
}

static int pool_open(struct iscsi_drv *d, const char *state_dir, const struct vd_iscsi_backend *b,
		     struct pool *p, struct vd_err *err)
{
	char dir[PATH_MAX];
	p->b = b;
	p->peer = (struct vd_iscsi_peer){ .portal = b->portal, .initiator = d->initiator,
					  .chap = &b->chap, .timeout_ms = b->timeout_ms };
	if (b->mode == VD_ISCSI_KERNEL)
		return vd_err_set(err, -EOPNOTSUPP, "drivers.iscsi.backends.%s.mode: the kernel "
				  "initiator (open-iscsi) is not supported by this build; use "
				  "\"fuse\" or \"auto\"", b->name);
	if (b->provisioner == VD_ISCSI_STATIC)
		return vd_static_pool_open(b, d->set, d->claims, &p->peer, &p->fixed, err);
	int n = b->pool_dir ? snprintf(dir, sizeof(dir), "%s", b->pool_dir)
		: snprintf(dir, sizeof(dir), "%s/iscsi-pool/%s", state_dir, b->name);
	if (n < 0 || n >= (int)sizeof(dir))
		return vd_err_set(err, -ENAMETOOLONG, "iscsi backend %s: path too long", b->name);
	int r = b->pool_dir ? 0 : mkdir_p(dir, err);
	return r < 0 ? r : vd_tgt_pool_open(b, dir, &p->tgt, err);
}

/* The static backends' claims, one store for all (a LUN two backends see
 * is claimed once). */
static int claims_open(struct iscsi_drv *d, const char *state_dir, struct vd_err *err)
{
	char dir[PATH_MAX];
	int any = 0;
	for (size_t i = 0; i < d->set->count; i++)
		any |= d->set->backends[i].provisioner == VD_ISCSI_STATIC;
	if (!any)
		return 0;
	if (snprintf(dir, sizeof(dir), "%s/iscsi-claims", state_dir) >= (int)sizeof(dir))
		return vd_err_set(err, -ENAMETOOLONG, "state directory %s: path too long", state_dir);
	return vd_static_claims_open(dir, &d->claims, err);
}

static int iscsi_init(const struct vd_driver_env *env, void **ret_priv, struct vd_err *err)
{
	struct iscsi_drv *d = calloc(1, sizeof(*d));
	if (!d)
		return vd_err_set(err, -ENOMEM, "driver iscsi: out of memory");
	pthread_mutex_init(&d->watch_lock, NULL);
	pthread_cond_init(&d->watch_cond, NULL);
	const char *node = env->node_id ? env->node_id : "localhost";
	int r = vd_iscsi_settings_parse(env->settings, &d->set, err);
	if (r < 0)
		goto fail;
	if (!env->state_dir || asprintf(&d->root, "%s/iscsi", env->state_dir) < 0) {
		d->root = NULL;
		r = vd_err_set(err, -EINVAL, "driver iscsi needs a state directory");
		goto fail;
	}
	d->key = d->set->reservation_key ? d->set->reservation_key : vd_iscsi_key_from_node(node);
	vd_iscsi_key_format(d->key, d->key_text, sizeof(d->key_text));
	if (d->set->initiator)
		snprintf(d->initiator, sizeof(d->initiator), "%s", d->set->initiator);
	else
		vd_iscsi_initiator_from_node(node, d->initiator, sizeof(d->initiator));
	d->helper = d->set->helper ? strdup(d->set->helper) : vd_helper_default_path(HELPER_NAME);
	d->pools = calloc(d->set->count ? d->set->count : 1, sizeof(*d->pools));
	if (!d->helper || !d->pools) {
		r = vd_err_set(err, -ENOMEM, "driver iscsi: out of memory");
		goto fail;
	}
	int any_tgt = 0;
	r = claims_open(d, env->state_dir, err);
	for (size_t i = 0; i < d->set->count && r == 0; i++) {
		r = pool_open(d, env->state_dir, &d->set->backends[i], &d->pools[i], err);
		any_tgt |= d->pools[i].tgt != NULL;
	}
	if (r == 0 && any_tgt && !env->agent) {   /* tgtd is the controller's to rebuild */
		r = -pthread_create(&d->watcher, NULL, watch, d);
		d->watching = r == 0;
		if (r < 0)
			vd_err_set(err, r, "driver iscsi: cannot start the tgtd watcher: %s",
				   strerror(-r));
	}
	if (r < 0)
		goto fail;
	*ret_priv = d;
	return 0;
fail:
	iscsi_fini(d);
	return r;
}

const struct vd_driver_ops vd_driver_iscsi = {
	.name = "iscsi",
	.multi_node = 0,
	.storage_fence = 1,
	.init = iscsi_init,
	.fini = iscsi_fini,
	.parse_options = iscsi_parse_options_op,
	.create = iscsi_create_op,
	.remove = iscsi_remove_op,
	.stage = iscsi_stage_op,
	.unstage = iscsi_unstage_op,
	.is_staged = iscsi_is_staged_op,
	.fence = iscsi_fence_op,
	.mountpoint = iscsi_mountpoint_op,
	.describe = iscsi_describe_op,
	.spec_size = iscsi_spec_size_op,
	.block_attach = iscsi_block_attach_op,
	.block_detach = iscsi_block_detach_op,
	.probe = iscsi_probe_op,
	.capacity = iscsi_capacity_op,
	.discover = iscsi_discover_op,
};
