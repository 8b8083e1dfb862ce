/* iscsi_tgt.c — the `tgt` provisioner (see iscsi_tgt.h).
 *
 * Order of steps, so that a crash at any point is finished by sync:
 *   create: record -> sparse image -> LUN;
 *   remove: record marked removing -> LUN deleted -> image zeroed (wipe)
 *           and unlinked -> record deleted.
 * A record without its image is an interrupted create (the image is made
 * again, empty); a record marked removing is finished. */
#include "iscsi_tgt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../volumed/log.h"
#include "../volumed/mount.h"
#include "../volumed/store.h"

#define TGTADM_TIMEOUT_SEC 30
#define SHOW_MAX (16u << 20)
#define ARGV_MAX 24
#define WIPE_CHUNK (1u << 20)
/* Raised from tgt's defaults (8 KiB segments, 256 KiB bursts): ~2x writes. */
static const char *const tuned_params[] = { "MaxRecvDataSegmentLength",
	"MaxXmitDataSegmentLength", "MaxBurstLength", "FirstBurstLength" };
#define TUNED_VALUE "1048576"

struct vd_tgt_pool {
	const struct vd_iscsi_backend *b;
	char *dir;
	struct vd_store *records;
	pthread_mutex_t lock;
	char ctl_socket[64];      /* tgtd's control socket: a new inode is a new tgtd */
	char ctl_port[16], tid[16];
	int synced;
	ino_t synced_ino;          /* of the socket then; inode numbers are reused, */
	struct timespec synced_ctime;   /* so its change time too */
};

/* ---- tgtadm -------------------------------------------------------------- */

/* What a failed tgtadm said, as an errno: tgtd down, exists, not found. */
static int tgtadm_errno(const char *msg)
{
	if (strstr(msg, "already exists"))
		return -EEXIST;
	if (strstr(msg, "can't find"))
		return -ENOENT;
	if (strstr(msg, "tgt daemon") || strstr(msg, "not connected") || strstr(msg, "connect"))
		return -ECONNREFUSED;
	if (strstr(msg, "in use") || strstr(msg, "busy"))
		return -EBUSY;
	return -EIO;
}

/* tgtadm -C PORT --lld iscsi ARGS... (NULL-terminated); with out, its
 * output is returned. -EEXIST / -ENOENT come back without touching err
 * (callers decide whether they matter). Secrets in ARGS never reach err:
 * messages quote tgtadm's output, not its argv. */
static int tgtadm(struct vd_tgt_pool *p, char **out, struct vd_err *err, ...)
{
	char *argv[ARGV_MAX];
	size_t n = 0;
	argv[n++] = p->b->tgtadm;
	argv[n++] = "-C";
	argv[n++] = p->ctl_port;
	argv[n++] = "--lld";
	argv[n++] = "iscsi";
	va_list ap;
	va_start(ap, err);
	char *a;
	while ((a = va_arg(ap, char *)) && n < ARGV_MAX - 1)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;

	struct vd_err e = VD_ERR_INIT;
	size_t len;
	int r = out ? vd_run_capture(argv, TGTADM_TIMEOUT_SEC, SHOW_MAX, out, &len, &e)
		    : vd_run(argv, TGTADM_TIMEOUT_SEC, &e);
	if (r == 0)
		return 0;
	r = r == -EIO ? tgtadm_errno(vd_err_msg(&e)) : r;
	if (r == -EEXIST || r == -ENOENT)
		return r;
	if (r == -ECONNREFUSED)
		return vd_err_set(err, r, "iscsi backend %s: tgtd does not answer on control port %s "
				  "(is it running? %s)", p->b->name, p->ctl_port, vd_err_msg(&e));
	return vd_err_set(err, r, "iscsi backend %s: %s", p->b->name, vd_err_msg(&e));
}

static int tgt_show(struct vd_tgt_pool *p, struct vd_tgt_show *ret, struct vd_err *err)
{
	char *text = NULL;
	int r = tgtadm(p, &text, err, "--op", "show", "--mode", "target", NULL);
	if (r == 0)
		r = vd_tgt_show_parse(text, strlen(text), ret, err);
	free(text);
	return r;
}

static int target_make(struct vd_tgt_pool *p, struct vd_err *err)
{
	int r = tgtadm(p, NULL, err, "--op", "new", "--mode", "target", "--tid", p->tid, "-T",
		       p->b->target, NULL);
	for (size_t i = 0; r == 0 && i < sizeof(tuned_params) / sizeof(tuned_params[0]); i++)
		r = tgtadm(p, NULL, err, "--op", "update", "--mode", "target", "--tid", p->tid,
			   "--name", tuned_params[i], "--value", TUNED_VALUE, NULL);
	if (r == 0)
		vd_log(VD_LOG_INFO, "iscsi backend %s: created target %s (tid %s) in tgtd",
		       p->b->name, p->b->target, p->tid);
	return r == -EEXIST ? 0 : r;
}

static int has(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

/* One CHAP account (tgtd-wide), bound to our target. */
static int account_bind(struct vd_tgt_pool *p, const char *user, const char *password,
			int outgoing, struct vd_err *err)
{
	int r = tgtadm(p, NULL, err, "--op", "new", "--mode", "account", "--user", user,
		       "--password", password, NULL);
	if (r == 0 || r == -EEXIST)
		r = outgoing ? tgtadm(p, NULL, err, "--op", "bind", "--mode", "account", "--tid",
				      p->tid, "--user", user, "--outgoing", NULL)
			: tgtadm(p, NULL, err, "--op", "bind", "--mode", "account", "--tid", p->tid,
				 "--user", user, NULL);
	if (r == -EEXIST || r == -ENOENT)
		r = r == -EEXIST ? 0 : vd_err_set(err, r, "iscsi backend %s: cannot bind CHAP "
						  "account %s", p->b->name, user);
	return r;
}

static int access_sync(struct vd_tgt_pool *p, const struct vd_tgt_target *t, struct vd_err *err)
{
	const struct vd_iscsi_chap *c = &p->b->chap;
	int r = 0;
	if (c->username && !has(t->accounts, t->account_count, c->username))
		r = account_bind(p, c->username, c->password, 0, err);
	if (r == 0 && c->target_username && !has(t->outgoing, t->outgoing_count, c->target_username))
		r = account_bind(p, c->target_username, c->target_password, 1, err);
	if (r == 0 && t->acl_count == 0)
		r = tgtadm(p, NULL, err, "--op", "bind", "--mode", "target", "--tid", p->tid, "-I",
			   "ALL", NULL);
	return r == -EEXIST ? 0 : r;
}

/* ---- records and images ------------------------------------------------- */

static int image_path(const struct vd_tgt_pool *p, int lun, char *buf)
{
	int n = snprintf(buf, PATH_MAX, "%s/lun-%d.img", p->dir, lun);
	return n > 0 && n < PATH_MAX ? 0 : -ENAMETOOLONG;
}

static const json_t *rec_of(const json_t *doc)
{
	return json_object_get(doc, "record");
}

static int rec_lun(const json_t *doc)
{
	return (int)json_integer_value(json_object_get(rec_of(doc), "lun"));
}

static uint64_t rec_size(const json_t *doc)
{
	return (uint64_t)json_integer_value(json_object_get(json_object_get(rec_of(doc), "spec"),
							    "size"));
}

static int rec_removing(const json_t *doc)
{
	return json_is_true(json_object_get(doc, "removing"));
}

/* The sparse image of size bytes; an existing one of that size is kept. */
static int image_ensure(struct vd_tgt_pool *p, int lun, uint64_t size, struct vd_err *err)
{
	char path[PATH_MAX];
	struct stat st;
	if (image_path(p, lun, path) < 0)
		return vd_err_set(err, -ENAMETOOLONG, "iscsi pool %s: path too long", p->dir);
	if (lstat(path, &st) == 0) {
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size >= size)
			return 0;
		return vd_err_set(err, -EEXIST, "iscsi pool %s: %s exists and is not a %llu-byte "
				  "image", p->dir, path, (unsigned long long)size);
	}
	return vd_mount_make_sparse(path, size, err);
}

/* The LUN in tgtd; one there already with our image is fine. */
static int lun_ensure(struct vd_tgt_pool *p, const struct vd_tgt_target *t, int lun,
		      struct vd_err *err)
{
	char path[PATH_MAX], num[16];
	if (image_path(p, lun, path) < 0)
		return vd_err_set(err, -ENAMETOOLONG, "iscsi pool %s: path too long", p->dir);
	for (size_t i = 0; t && i < t->lun_count; i++) {
		if (t->luns[i].lun != lun)
			continue;
		if (t->luns[i].backing && strcmp(t->luns[i].backing, path) == 0)
			return 0;
		return vd_err_set(err, -EEXIST, "iscsi backend %s: LUN %d of %s is backed by %s, "
				  "not by volumed's %s; remove it from tgtd", p->b->name, lun,
				  p->b->target, t->luns[i].backing ? t->luns[i].backing : "nothing",
				  path);
	}
	snprintf(num, sizeof(num), "%d", lun);
	int r = tgtadm(p, NULL, err, "--op", "new", "--mode", "logicalunit", "--tid", p->tid,
		       "--lun", num, "--backing-store", path, NULL);
	if (r == -ENOENT)
		return vd_err_set(err, -EIO, "iscsi backend %s: tgtd has no target tid %s to add "
				  "LUN %d to", p->b->name, p->tid, lun);
	return r == -EEXIST ? 0 : r;
}

static int lun_delete(struct vd_tgt_pool *p, int lun, struct vd_err *err)
{
	char num[16];
	snprintf(num, sizeof(num), "%d", lun);
	int r = tgtadm(p, NULL, err, "--op", "delete", "--mode", "logicalunit", "--tid", p->tid,
		       "--lun", num, NULL);
	if (r == -EBUSY || (r == -EIO && strstr(vd_err_msg(err), "session")))
		return vd_err_set(err, -EBUSY, "iscsi backend %s: LUN %d is in use by an "
				  "initiator; unmount the volume first", p->b->name, lun);
	return r == -ENOENT ? 0 : r;
}

/* Overwrites the data extents of fd with zeros (holes read as zeros). */
static int zero_extents(int fd, const char *path, struct vd_err *err)
{
	char *zero = calloc(1, WIPE_CHUNK);
	if (!zero)
		return vd_err_set(err, -ENOMEM, "out of memory");
	int r = 0;
	off_t pos = 0, end;
	while (r == 0 && (pos = lseek(fd, pos, SEEK_DATA)) >= 0) {
		end = lseek(fd, pos, SEEK_HOLE);
		for (; r == 0 && end > pos; pos += WIPE_CHUNK) {
			size_t n = end - pos < WIPE_CHUNK ? (size_t)(end - pos) : WIPE_CHUNK;
			if (pwrite(fd, zero, n, pos) != (ssize_t)n)
				r = vd_err_set(err, -errno, "wipe %s: %s", path, strerror(errno));
		}
		pos = end;
	}
	if (r == 0 && errno != ENXIO)
		r = vd_err_set(err, -errno, "wipe %s: %s", path, strerror(errno));
	if (r == 0 && fdatasync(fd) < 0)
		r = vd_err_set(err, -errno, "wipe %s: fsync: %s", path, strerror(errno));
	free(zero);
	return r;
}

static int image_remove(struct vd_tgt_pool *p, int lun, int wipe, struct vd_err *err)
{
	char path[PATH_MAX];
	if (image_path(p, lun, path) < 0)
		return vd_err_set(err, -ENAMETOOLONG, "iscsi pool %s: path too long", p->dir);
	if (wipe) {
		int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			int r = zero_extents(fd, path, err);
			close(fd);
			if (r < 0)
				return r;
		}
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return vd_err_set(err, -errno, "remove %s: %s", path, strerror(errno));
	return 0;
}

/* The last steps of a removal (the record is marked removing). */
static int remove_finish(struct vd_tgt_pool *p, const char *name, const json_t *doc,
			 uint64_t rev, struct vd_err *err)
{
	int lun = rec_lun(doc);
	int wipe = json_is_true(json_object_get(json_object_get(rec_of(doc), "spec"), "wipe"));
	int r = lun_delete(p, lun, err);
	if (r == 0)
		r = image_remove(p, lun, wipe, err);
	if (r == 0)
		r = vd_store_delete(p->records, name, rev, err);
	if (r == 0)
		vd_log(VD_LOG_INFO, "iscsi backend %s: removed volume %s (LUN %d%s)", p->b->name,
		       name, lun, wipe ? ", wiped" : "");
	return r == -ENOENT ? 0 : r;
}

/* ---- sync ----------------------------------------------------------------- */

struct sync_walk {
	struct vd_tgt_pool *p;
	const struct vd_tgt_target *t;
	int failures;
	struct vd_err *err;
};

static int sync_one(const char *name, json_t *doc, uint64_t rev, void *userdata)
{
	struct sync_walk *w = userdata;
	struct vd_err e = VD_ERR_INIT;
	int lun = rec_lun(doc);
	int r = rec_removing(doc) ? remove_finish(w->p, name, doc, rev, &e)
		: image_ensure(w->p, lun, rec_size(doc), &e);
	if (r == 0 && !rec_removing(doc))
		r = lun_ensure(w->p, w->t, lun, &e);
	if (r < 0) {
		vd_log(VD_LOG_ERROR, "iscsi backend %s: volume %s (LUN %d): %s", w->p->b->name,
		       name, lun, vd_err_msg(&e));
		if (w->failures++ == 0)
			vd_err_set(w->err, r, "volume %s: %s", name, vd_err_msg(&e));
	}
	return 0;
}

/* LUNs of our target backed by a pool image no record names: left by a
 * removal that stopped after deleting its record. */
struct lun_known {
	int lun, known;
};

static int lun_known_fn(const char *name, json_t *doc, uint64_t rev, void *userdata)
{
	struct lun_known *k = userdata;
	(void)name;
	(void)rev;
	if (rec_lun(doc) == k->lun)
		k->known = 1;
	return 0;
}

static void stray_luns_remove(struct vd_tgt_pool *p, const struct vd_tgt_target *t)
{
	size_t dirlen = strlen(p->dir);
	for (size_t i = 0; i < t->lun_count; i++) {
		const char *b = t->luns[i].backing;
		struct lun_known k = { .lun = t->luns[i].lun };
		if (k.lun == 0 || !b || strncmp(b, p->dir, dirlen) != 0 || b[dirlen] != '/')
			continue;
		vd_store_foreach(p->records, lun_known_fn, &k, NULL);
		struct vd_err e = VD_ERR_INIT;
		if (!k.known && lun_delete(p, k.lun, &e) == 0)
			vd_log(VD_LOG_INFO, "iscsi backend %s: removed stray LUN %d (%s)", p->b->name,
			       k.lun, b);
	}
}

/* The target in tgtd, made when missing; *ret points into show. */
static int target_find(struct vd_tgt_pool *p, struct vd_tgt_show *show,
		       const struct vd_tgt_target **ret, struct vd_err *err)
{
	const struct vd_tgt_target *t = vd_tgt_show_find(show, p->b->tid);
	int r = 0;
	if (!t) {
		r = target_make(p, err);
		vd_tgt_show_clear(show);
		if (r == 0)
			r = tgt_show(p, show, err);
		t = r == 0 ? vd_tgt_show_find(show, p->b->tid) : NULL;
		if (r == 0 && !t)
			r = vd_err_set(err, -EIO, "iscsi backend %s: tgtd does not list target %s "
				       "(tid %d) just created", p->b->name, p->b->target, p->b->tid);
	}
	if (r == 0 && strcmp(t->iqn, p->b->target) != 0)
		r = vd_err_set(err, -EEXIST, "iscsi backend %s: tid %d in tgtd is %s, not %s; set "
			       "another tid or remove that target", p->b->name, p->b->tid, t->iqn,
			       p->b->target);
	*ret = t;
	return r;
}

static int sync_locked(struct vd_tgt_pool *p, struct vd_err *err)
{
	struct stat st;
	int have_socket = stat(p->ctl_socket, &st) == 0;
	struct vd_tgt_show s = { 0 };
	const struct vd_tgt_target *t = NULL;
	int r = tgt_show(p, &s, err);
	if (r == 0)
		r = target_find(p, &s, &t, err);
	if (r == 0)
		r = access_sync(p, t, err);
	struct sync_walk w = { .p = p, .t = t, .err = err };
	if (r == 0)
		r = vd_store_foreach(p->records, sync_one, &w, NULL);
	if (r == 0) {
		stray_luns_remove(p, t);
		if (w.failures)
			r = vd_err_msg(err)[0] ? -EIO : vd_err_set(err, -EIO, "sync failed");
	}
	vd_tgt_show_clear(&s);
	if (r == 0 && have_socket) {
		p->synced = 1;
		p->synced_ino = st.st_ino;
		p->synced_ctime = st.st_ctim;
	}
	return r;
}

int vd_tgt_pool_sync(struct vd_tgt_pool *pool, struct vd_err *err)
{
	pthread_mutex_lock(&pool->lock);
	int r = sync_locked(pool, err);
	pthread_mutex_unlock(&pool->lock);
	return r;
}

static int changed_locked(const struct vd_tgt_pool *p)
{
	struct stat st;
	return !p->synced || stat(p->ctl_socket, &st) < 0 || st.st_ino != p->synced_ino ||
	       st.st_ctim.tv_sec != p->synced_ctime.tv_sec ||
	       st.st_ctim.tv_nsec != p->synced_ctime.tv_nsec;
}

int vd_tgt_pool_changed(struct vd_tgt_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	int changed = changed_locked(pool);
	pthread_mutex_unlock(&pool->lock);
	return changed;
}

/* ---- create / remove ------------------------------------------------------ */

struct lun_pick {
	unsigned char *used;      /* VD_ISCSI_LUN_MAX + 1 flags */
	uint64_t total;
};

static int lun_pick_fn(const char *name, json_t *doc, uint64_t rev, void *userdata)
{
	struct lun_pick *k = userdata;
	(void)name;
	(void)rev;
	int lun = rec_lun(doc);
	if (lun > 0 && lun <= VD_ISCSI_LUN_MAX)
		k->used[lun] = 1;
	k->total += rec_size(doc);
	return 0;
}

/* The lowest free LUN (1..), with the sum of the volumes' sizes. */
static int lun_pick(struct vd_tgt_pool *p, int *ret_lun, uint64_t *ret_total, struct vd_err *err)
{
	struct lun_pick k = { .used = calloc(VD_ISCSI_LUN_MAX + 1, 1) };
	if (!k.used)
		return vd_err_set(err, -ENOMEM, "out of memory");
	int r = vd_store_foreach(p->records, lun_pick_fn, &k, err);
	int lun = 1;
	while (lun <= VD_ISCSI_LUN_MAX && k.used[lun])
		lun++;
	free(k.used);
	if (r < 0)
		return r;
	if (lun > VD_ISCSI_LUN_MAX)
		return vd_err_set(err, -ENOSPC, "iscsi backend %s: all %d LUNs of %s are in use",
				  p->b->name, VD_ISCSI_LUN_MAX, p->b->target);
	*ret_lun = lun;
	*ret_total = k.total;
	return 0;
}

static json_t *location_of(const struct vd_tgt_pool *p, int lun)
{
	return vd_iscsi_location_new(p->b->portal, p->b->target, lun);
}

/* Image and LUN of a recorded volume (tgtd synced first when it is new). */
static int volume_ensure(struct vd_tgt_pool *p, int lun, uint64_t size, struct vd_err *err)
{
	int r = image_ensure(p, lun, size, err);
	if (r == 0 && changed_locked(p)) {
		struct vd_err e = VD_ERR_INIT;
		if (sync_locked(p, &e) == 0)
			return 0;   /* it made every recorded LUN, this one too */
		vd_log(VD_LOG_WARN, "%s", vd_err_msg(&e));   /* maybe another volume's trouble */
	}
	return r < 0 ? r : lun_ensure(p, NULL, lun, err);
}

static int record_put(struct vd_tgt_pool *p, const char *name, const json_t *spec, int lun,
		      struct vd_err *err)
{
	char now[40];
	vd_time_rfc3339(now, sizeof(now));
	struct vd_iscsi_location loc = { .portal = p->b->portal, .target = p->b->target, .lun = lun };
	json_t *rec = vd_iscsi_record_new(name, spec, &loc, now);
	json_t *doc = rec ? json_pack("{s:o, s:b}", "record", rec, "removing", 0) : NULL;
	int r = doc ? vd_store_put(p->records, name, doc, 0, NULL, err)
		    : vd_err_set(err, -ENOMEM, "out of memory");
	json_decref(doc);
	return r;
}

/* A new volume that could not be made: no record, no image stays behind
 * (the LUN was the last step, so it does not exist). */
static void create_undo(struct vd_tgt_pool *p, const char *name, int lun)
{
	struct vd_err e = VD_ERR_INIT;
	if (image_remove(p, lun, 0, &e) < 0 || vd_store_delete(p->records, name, 0, &e) < 0)
		vd_log(VD_LOG_WARN, "iscsi backend %s: undoing the create of %s: %s", p->b->name,
		       name, vd_err_msg(&e));
}

static int create_locked(struct vd_tgt_pool *p, const char *name, const json_t *spec,
			 json_t **ret_location, struct vd_err *err)
{
	json_t *doc = NULL;
	uint64_t rev, total, size = (uint64_t)json_integer_value(json_object_get(spec, "size"));
	int lun, r = vd_store_get(p->records, name, &doc, &rev, err);
	if (r == 0) {
		lun = rec_lun(doc);
		if (rec_removing(doc))
			r = vd_err_set(err, -EBUSY, "volume %s is being removed; try again", name);
		else if (!json_equal(json_object_get(rec_of(doc), "spec"), spec))
			r = vd_err_set(err, -EEXIST, "volume %s exists in iscsi pool %s with other "
				       "options", name, p->b->name);
		json_decref(doc);
	} else if (r == -ENOENT) {
		r = lun_pick(p, &lun, &total, err);
		if (r == 0 && p->b->pool_size && total + size > p->b->pool_size)
			r = vd_err_set(err, -ENOSPC, "iscsi backend %s: %llu bytes asked, %llu of the "
				       "pool's %llu left", p->b->name, (unsigned long long)size,
				       (unsigned long long)(p->b->pool_size > total ?
							    p->b->pool_size - total : 0),
				       (unsigned long long)p->b->pool_size);
		if (r == 0)
			r = record_put(p, name, spec, lun, err);
		if (r == 0 && (r = volume_ensure(p, lun, size, err)) < 0)
			create_undo(p, name, lun);
		if (r == 0)
			vd_log(VD_LOG_INFO, "iscsi backend %s: created volume %s (LUN %d, %llu "
			       "bytes)", p->b->name, name, lun, (unsigned long long)size);
	} else if (r == 0) {
		r = volume_ensure(p, lun, size, err);
	}
	if (r == 0 && !(*ret_location = location_of(p, lun)))
		r = vd_err_set(err, -ENOMEM, "out of memory");
	return r;
}

int vd_tgt_pool_create(struct vd_tgt_pool *pool, const char *name, const json_t *spec,
		       json_t **ret_location, struct vd_err *err)
{
	pthread_mutex_lock(&pool->lock);
	int r = create_locked(pool, name, spec, ret_location, err);
	pthread_mutex_unlock(&pool->lock);
	return r;
}

static int remove_locked(struct vd_tgt_pool *p, const char *name, struct vd_err *err)
{
	json_t *doc = NULL;
	uint64_t rev;
	int r = vd_store_get(p->records, name, &doc, &rev, err);
	if (r == -ENOENT)
		return 0;
	if (r == 0 && !rec_removing(doc)) {
		json_object_set_new(doc, "removing", json_true());
		r = vd_store_put(p->records, name, doc, rev, &rev, err);
	}
	if (r == 0 && changed_locked(p)) {
		struct vd_err e = VD_ERR_INIT;   /* the LUN may be gone with an old tgtd */
		if (sync_locked(p, &e) < 0)
			vd_log(VD_LOG_WARN, "iscsi backend %s: %s", p->b->name, vd_err_msg(&e));
	}
	if (r == 0)
		r = remove_finish(p, name, doc, rev, err);
	json_decref(doc);
	return r;
}

int vd_tgt_pool_remove(struct vd_tgt_pool *pool, const char *name, struct vd_err *err)
{
	pthread_mutex_lock(&pool->lock);
	int r = remove_locked(pool, name, err);
	pthread_mutex_unlock(&pool->lock);
	return r;
}

int vd_tgt_pool_capacity(struct vd_tgt_pool *pool, uint64_t *ret_bytes, struct vd_err *err)
{
	if (pool->b->pool_size) {
		int lun;
		uint64_t total = 0;
		pthread_mutex_lock(&pool->lock);
		int r = lun_pick(pool, &lun, &total, err);
		pthread_mutex_unlock(&pool->lock);
		if (r < 0 && r != -ENOSPC)
			return r;
		*ret_bytes = r == -ENOSPC || total >= pool->b->pool_size ? 0
			: pool->b->pool_size - total;
		return 0;
	}
	struct statvfs v;
	if (statvfs(pool->dir, &v) < 0)
		return vd_err_set(err, -errno, "statvfs %s: %s", pool->dir, strerror(errno));
	*ret_bytes = (uint64_t)v.f_bavail * v.f_frsize;
	return 0;
}

struct foreach_walk {
	int (*fn)(const char *name, const json_t *spec, const json_t *location, void *userdata);
	void *userdata;
	struct vd_tgt_pool *p;
};

static int foreach_one(const char *name, json_t *doc, uint64_t rev, void *userdata)
{
	struct foreach_walk *w = userdata;
	(void)rev;
	if (rec_removing(doc))
		return 0;
	json_t *loc = location_of(w->p, rec_lun(doc));
	int r = loc ? w->fn(name, json_object_get(rec_of(doc), "spec"), loc, w->userdata) : -ENOMEM;
	json_decref(loc);
	return r;
}

int vd_tgt_pool_foreach(struct vd_tgt_pool *pool,
			int (*fn)(const char *name, const json_t *spec, const json_t *location,
				  void *userdata),
			void *userdata, struct vd_err *err)
{
	struct foreach_walk w = { fn, userdata, pool };
	return vd_store_foreach(pool->records, foreach_one, &w, err);
}

int vd_tgt_pool_open(const struct vd_iscsi_backend *backend, const char *pool_dir,
		     struct vd_tgt_pool **ret, struct vd_err *err)
{
	struct vd_tgt_pool *p = calloc(1, sizeof(*p));
	char records[PATH_MAX];
	if (!p || !(p->dir = strdup(pool_dir))) {
		free(p);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	p->b = backend;
	pthread_mutex_init(&p->lock, NULL);
	snprintf(p->ctl_port, sizeof(p->ctl_port), "%d", backend->control_port);
	snprintf(p->tid, sizeof(p->tid), "%d", backend->tid);
	snprintf(p->ctl_socket, sizeof(p->ctl_socket), "/var/run/tgtd/socket.%d",
		 backend->control_port);
	int r = snprintf(records, sizeof(records), "%s/records", pool_dir) >= (int)sizeof(records)
		? vd_err_set(err, -ENAMETOOLONG, "pool directory %s: path too long", pool_dir) : 0;
	if (r == 0 && mkdir(pool_dir, 0700) < 0 && errno != EEXIST)
		r = vd_err_set(err, -errno, "create pool directory %s: %s", pool_dir, strerror(errno));
	if (r == 0)
		r = vd_store_open(records, &p->records, err);
	if (r < 0) {
		vd_tgt_pool_close(p);
		return r;
	}
	*ret = p;
	return 0;
}

void vd_tgt_pool_close(struct vd_tgt_pool *pool)
{
	if (!pool)
		return;
	vd_store_free(pool->records);
	pthread_mutex_destroy(&pool->lock);
	free(pool->dir);
	free(pool);
}
