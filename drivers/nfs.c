/* nfs.c — the `nfs` driver: volumes that live on an existing NFS server.
 *
 * Control plane (controller side) through libnfs, NFSv3: each backend is a
 * directory on an export, nfs://host/export/sub/dir. A volume is the
 * subdirectory <dir>/<name>/ and, beside it, its metadata record
 * <dir>/<name>.volumed.json; the record's presence is the volume's
 * existence. It is written under a unique hidden temporary name with
 * O_EXCL and linked into place last (link fails on an existing record, so
 * two controllers racing cannot overwrite each other; rename is the
 * fallback where a server has no hard links). Removal renames the record
 * aside first, so a crash never leaves a visible half volume.
 *
 * Node side: the volume directory mounted on
 * <state_dir>/nfs/<backend>/<name>/mnt, by the kernel (mount(2), type nfs)
 * or by the FUSE helper volumed-nfs-fuse, which runs detached and is
 * adopted again after a restart of volumed.
 *
 * Network: init never touches it. Every operation opens its own libnfs
 * context (a connection) with the backend's bounded RPC timeout and no
 * automatic reconnection, and closes it before returning.
 *
 * Threads: ops on different volumes run concurrently and share only the
 * settings (read-only after init) and the cache of which export holds each
 * backend's directory, guarded by a mutex. libnfs contexts are never
 * shared between threads. */
#include "driver.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "../volumed/mount.h"
#include "../volumed/names.h"
#include "helper_proc.h"
#include "nfs_meta.h"

#define HELPER_NAME "volumed-nfs-fuse"
#define TMP_TAG ".tmp."
#define ASIDE_TAG ".removing."
/* Deepest directory tree remove descends (libnfs paths are bounded too). */
#define RM_DEPTH_MAX 256


struct nfs_drv {
	char *root;                        /* <state_dir>/nfs */
	struct vd_nfs_settings *set;
	char *helper;                      /* the FUSE helper's path */
	int kernel_nfs;                    /* /proc/filesystems lists nfs */
	pthread_mutex_t lock;              /* guards exports */
	char **exports;                    /* per backend: the export found, or NULL */
};

/* ---- small helpers ----------------------------------------------------- */

static int path_fmt(char *buf, size_t len, struct vd_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int path_fmt(char *buf, size_t len, struct vd_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return vd_err_set(err, -ENAMETOOLONG, "path longer than %zu bytes", len - 1);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* A unique suffix for temporary names: host, pid and 64 random bits. */
static void unique_tag(char *buf, size_t len)
{
	char host[65] = "host";
	uint64_t rnd = 0;
	if (gethostname(host, sizeof(host) - 1) < 0)
		strcpy(host, "host");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (*p == '/' || *p == '.')
			*p = '-';
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	snprintf(buf, len, "%s.%d.%016" PRIx64, host, (int)getpid(), rnd);
}

static int mkdir_p(const char *path, mode_t mode, struct vd_err *err)
{
	char tmp[PATH_MAX];
	if (path_fmt(tmp, sizeof(tmp), err, "%s", path) < 0)
		return -ENAMETOOLONG;
	for (char *p = tmp + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return vd_err_set(err, -errno, "create directory %s: %s", tmp, strerror(errno));
		*p = c;
		if (!c)
			break;
	}
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return vd_err_set(err, -ENOTDIR, "%s is not a directory", path);
	return 0;
}

static const struct vd_nfs_backend *backend_get(const struct nfs_drv *d, const char *name,
						struct vd_err *err)
{
	char names[256];
	const struct vd_nfs_backend *b = vd_nfs_backend_find(d->set, name);
	if (b)
		return b;
	vd_nfs_backend_names(d->set, names, sizeof(names));
	vd_err_set(err, -EINVAL, "nfs backend '%.40s' is not configured on this host; "
		   "configured: %s", name ? name : "", names);
	return NULL;
}

/* The spec's backend, checked; the name checked for paths. */
static int volume_get(const struct nfs_drv *d, const char *name, const json_t *spec,
		      struct vd_nfs_spec *ret_spec, const struct vd_nfs_backend **ret_b,
		      struct vd_err *err)
{
	int r = vd_nfs_name_check(name, err);
	if (r == 0)
		r = vd_nfs_spec_read(spec, ret_spec, err);
	if (r < 0)
		return r;
	*ret_b = backend_get(d, ret_spec->backend, err);
	return *ret_b ? 0 : -EINVAL;
}

static enum vd_nfs_mode datapath_of(const struct nfs_drv *d, const struct vd_nfs_backend *b)
{
	if (b->mode != VD_NFS_AUTO)
		return b->mode;
	return d->kernel_nfs ? VD_NFS_KERNEL : VD_NFS_FUSE;
}

/* ---- connections ------------------------------------------------------- */

struct conn {
	struct nfs_context *nfs;
	const struct vd_nfs_backend *b;
	char export[PATH_MAX];   /* the export mounted */
	char dir[PATH_MAX];      /* the backend's directory in it: "" or "/sub/dir" */
};

/* Sets err from a failed libnfs call: "backend B: <what>: <libnfs error>". */
static int conn_fail(const struct conn *c, int r, struct vd_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int conn_fail(const struct conn *c, int r, struct vd_err *err, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *why = c->nfs ? nfs_get_error(c->nfs) : NULL;
	if (r >= 0)
		r = -EIO;
	if (why && (strstr(why, "imeout") || strstr(why, "timed out")))
		r = -ETIMEDOUT;
	if (why && strstr(why, "nfs_service failed"))   /* all libnfs 4.0 says of it */
		return vd_err_set(err, r == -EIO ? -ECONNREFUSED : r, "nfs backend %s: %s: cannot "
				  "reach the server (connection refused or lost; is it up, and "
				  "are the ports in %s right?)", c->b->name, what, c->b->url);
	return vd_err_set(err, r, "nfs backend %s: %s: %s", c->b->name, what,
			  why && *why ? why : strerror(-r));
}

/* A new context mounted on export, with the backend's bounds. */
static int conn_try(struct conn *c, const char *export, struct vd_err *err)
{
	const struct vd_nfs_backend *b = c->b;
	c->nfs = nfs_init_context();
	if (!c->nfs)
		return vd_err_set(err, -ENOMEM, "nfs backend %s: cannot create an NFS context",
				  b->name);
	/* libnfs counts RPC timeouts in whole seconds. */
	nfs_set_timeout(c->nfs, (b->timeout_ms + 999) / 1000 * 1000);
	nfs_set_autoreconnect(c->nfs, 0);
	nfs_set_dircache(c->nfs, 0);
	/* For the URL's arguments (ports, uid, ...), which it sets on the context. */
	struct nfs_url *u = nfs_parse_url_dir(c->nfs, b->url);
	if (!u)
		return conn_fail(c, -EINVAL, err, "URL %s", b->url);
	nfs_destroy_url(u);
	int r = nfs_mount(c->nfs, b->u.server, export);
	if (r < 0)
		return conn_fail(c, r, err, "mount %s:%s", b->u.server, export);
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->nfs)
		nfs_destroy_context(c->nfs);
	c->nfs = NULL;
}

/* "Not exported" as servers say it: ganesha EACCES, others ENOENT. */
static int not_exported(int r)
{
	return r == -EACCES || r == -ENOENT || r == -ENOTDIR;
}

/* Connects to the export holding the backend's directory: the shortest
 * mountable prefix of its path, found top-down once and remembered (every
 * controller finds the same one, so the paths in volume data agree; the
 * directory itself may not exist yet). */
static int conn_open(struct nfs_drv *d, const struct vd_nfs_backend *b, struct conn *c,
		     struct vd_err *err)
{
	size_t idx = (size_t)(b - d->set->backends);
	const char *path = b->u.path;
	size_t plen = strlen(path), len = 1;
	char cand[PATH_MAX] = "";
	int r;
	*c = (struct conn){ .b = b };
	pthread_mutex_lock(&d->lock);
	if (d->exports[idx])
		snprintf(cand, sizeof(cand), "%s", d->exports[idx]);
	pthread_mutex_unlock(&d->lock);
	if (*cand) {
		r = conn_try(c, cand, err);
		if (r == 0)
			goto found;
		conn_close(c);
		if (!not_exported(r))
			return r;
		vd_err_clear(err);   /* exported no longer: look again */
	}
	for (;;) {
		snprintf(cand, sizeof(cand), "%.*s", (int)len, path);
		r = conn_try(c, cand, err);
		if (r == 0)
			break;
		conn_close(c);
		if (!not_exported(r) || len >= plen)
			return r;
		vd_err_clear(err);
		const char *next = strchr(path + len + (len > 1), '/');
		len = next ? (size_t)(next - path) : plen;
	}
found:;
	size_t elen = strcmp(cand, "/") == 0 ? 0 : strlen(cand);
	snprintf(c->export, sizeof(c->export), "%s", cand);
	snprintf(c->dir, sizeof(c->dir), "%s", plen == 1 ? "" : path + elen);
	pthread_mutex_lock(&d->lock);
	if (!d->exports[idx] || strcmp(d->exports[idx], cand) != 0) {
		char *copy = strdup(cand);
		if (copy) {
			free(d->exports[idx]);
			d->exports[idx] = copy;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* The backend directory's entry leaf, as a path in the export. */
static int conn_path(const struct conn *c, const char *leaf, char *buf, struct vd_err *err)
{
	if (!leaf)
		return path_fmt(buf, PATH_MAX, err, "%s", *c->dir ? c->dir : "/");
	return path_fmt(buf, PATH_MAX, err, "%s/%s", c->dir, leaf);
}

/* The backend directory, created if missing (component by component). */
static int conn_mkdir_base(struct conn *c, struct vd_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", c->dir);
	for (char *p = path + 1; *path; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char ch = *p;
		*p = '\0';
		int r = nfs_mkdir(c->nfs, path);
		if (r < 0 && r != -EEXIST)
			return conn_fail(c, r, err, "create directory %s in export %s", path,
					 c->export);
		*p = ch;
		if (!ch)
			break;
	}
	return 0;
}

/* 1 a directory, 0 absent, -ENOTDIR something else. */
static int conn_is_dir(struct conn *c, const char *path, struct vd_err *err)
{
	struct nfs_stat_64 st;
	int r = nfs_lstat64(c->nfs, path, &st);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return conn_fail(c, r, err, "stat %s", path);
	if (!S_ISDIR(st.nfs_mode))
		return vd_err_set(err, -ENOTDIR, "nfs backend %s: %s in export %s exists and is "
				  "not a directory", c->b->name, path, c->export);
	return 1;
}

/* ---- records ------------------------------------------------------------ */

static int record_leaf(const char *name, char *buf, struct vd_err *err)
{
	return path_fmt(buf, PATH_MAX, err, "%s" VD_NFS_RECORD_SUFFIX, name);
}

/* Reads and parses the record at path; -ENOENT (with no message) when absent. */
static int record_read(struct conn *c, const char *path, json_t **ret, struct vd_err *err)
{
	struct nfsfh *fh = NULL;
	int r = nfs_open(c->nfs, path, O_RDONLY, &fh);
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return conn_fail(c, r, err, "open %s", path);
	char *buf = malloc(VD_NFS_RECORD_MAX + 1);
	size_t n = 0;
	if (!buf)
		r = vd_err_set(err, -ENOMEM, "out of memory");
	while (r >= 0 && n <= VD_NFS_RECORD_MAX) {
		r = nfs_read(c->nfs, fh, VD_NFS_RECORD_MAX + 1 - n, buf + n);
		if (r < 0)
			conn_fail(c, r, err, "read %s", path);
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	nfs_close(c->nfs, fh);
	if (r >= 0 && (r = vd_nfs_record_parse(buf, n, ret, err)) < 0) {
		vd_err_prefix(err, "nfs backend %s: %s in export %s is damaged", c->b->name, path,
			      c->export);
		r = -EIO;
		if (err)
			err->code = r;
	}
	free(buf);
	return r < 0 ? r : 0;
}

/* 1 when the record of name exists with a spec equal to want (the backend
 * name aside: one directory may be known under two names), 0 when absent,
 * -EEXIST when it differs. */
static int record_check(struct conn *c, const char *name, const struct vd_nfs_spec *want,
			const char *path, struct vd_err *err)
{
	json_t *rec = NULL;
	struct vd_nfs_spec have;
	int r = record_read(c, path, &rec, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	const char *rname = json_string_value(json_object_get(rec, "name"));
	vd_nfs_spec_read(json_object_get(rec, "spec"), &have, NULL);   /* checked by the parser */
	if (strcmp(rname, name) != 0) {
		r = vd_err_set(err, -EIO, "nfs backend %s: record %s names volume '%.60s'",
			       c->b->name, path, rname);
	} else if (have.size == want->size && have.uid == want->uid && have.gid == want->gid &&
		   have.mode == want->mode) {
		r = 1;
	} else {
		char *opts = json_dumps(json_object_get(rec, "options"), JSON_COMPACT | JSON_SORT_KEYS);
		r = vd_err_set(err, -EEXIST, "volume %s already exists on nfs backend %s with "
			       "options %s; remove it first or use the same options", name,
			       c->b->name, opts ? opts : "(unknown)");
		free(opts);
	}
	json_decref(rec);
	return r;
}

/* Writes text into the new file path (O_EXCL), flushed to the server. */
static int file_write_new(struct conn *c, const char *path, const char *text,
			  struct vd_err *err)
{
	struct nfsfh *fh = NULL;
	size_t len = strlen(text), off = 0;
	int r = nfs_create(c->nfs, path, O_WRONLY | O_CREAT | O_EXCL, 0644, &fh);
	if (r < 0)
		return conn_fail(c, r, err, "create %s", path);
	while (r >= 0 && off < len) {
		r = nfs_write(c->nfs, fh, len - off, text + off);
		if (r < 0)
			conn_fail(c, r, err, "write %s", path);
		else if (r == 0)
			r = vd_err_set(err, -EIO, "nfs backend %s: write %s: no progress",
				       c->b->name, path);
		else
			off += (size_t)r;
	}
	if (r >= 0 && (r = nfs_fsync(c->nfs, fh)) < 0)
		conn_fail(c, r, err, "flush %s", path);
	int rc = nfs_close(c->nfs, fh);
	if (r >= 0 && rc < 0)
		r = conn_fail(c, rc, err, "close %s", path);
	if (r < 0)
		nfs_unlink(c->nfs, path);
	return r < 0 ? r : 0;
}

/* ---- removal through libnfs, no symlink followed ------------------------- */

struct name_list {
	char **names;
	unsigned char *is_dir;
	size_t count, cap;
};

static void name_list_free(struct name_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	free(l->is_dir);
	*l = (struct name_list){ 0 };
}

static int name_list_add(struct name_list *l, const char *name, int is_dir)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **n = realloc(l->names, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->names = n;
		unsigned char *d = realloc(l->is_dir, cap);
		if (!d)
			return -ENOMEM;
		l->is_dir = d;
		l->cap = cap;
	}
	if (!(l->names[l->count] = strdup(name)))
		return -ENOMEM;
	l->is_dir[l->count++] = (unsigned char)is_dir;
	return 0;
}

/* The entries of directory path (not . and ..), read whole before any
 * change; with prefix, only names starting with it. -ENOENT when absent. */
static int dir_list(struct conn *c, const char *path, const char *prefix, struct name_list *ret,
		    struct vd_err *err)
{
	struct nfsdir *dir = NULL;
	struct nfsdirent *de;
	int r = nfs_opendir(c->nfs, path, &dir);
	*ret = (struct name_list){ 0 };
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return conn_fail(c, r, err, "list %s", path);
	while (r == 0 && (de = nfs_readdir(c->nfs, dir))) {
		if (strcmp(de->name, ".") == 0 || strcmp(de->name, "..") == 0)
			continue;
		if (prefix && strncmp(de->name, prefix, strlen(prefix)) != 0)
			continue;
		if (name_list_add(ret, de->name, de->type == NF3DIR) < 0)
			r = vd_err_set(err, -ENOMEM, "out of memory");
	}
	nfs_closedir(c->nfs, dir);
	if (r < 0)
		name_list_free(ret);
	return r;
}

/* Removes path and everything below it: directories are entered (READDIR
 * says what is one; a symlink is unlinked, never followed). Absent is 0. */
static int rm_tree(struct conn *c, const char *path, int depth, struct vd_err *err)
{
	struct name_list l = { 0 };
	char sub[PATH_MAX];
	if (depth > RM_DEPTH_MAX)
		return vd_err_set(err, -ELOOP, "nfs backend %s: %s is nested deeper than %d "
				  "directories; remove it by hand", c->b->name, path, RM_DEPTH_MAX);
	int r = dir_list(c, path, NULL, &l, err);
	if (r == -ENOENT)
		return 0;
	if (r == -ENOTDIR) {   /* a file or a symlink where the directory was */
		vd_err_clear(err);
		r = nfs_unlink(c->nfs, path);
		return r < 0 && r != -ENOENT ? conn_fail(c, r, err, "remove %s", path) : 0;
	}
	for (size_t i = 0; r == 0 && i < l.count; i++) {
		r = path_fmt(sub, sizeof(sub), err, "%s/%s", path, l.names[i]);
		if (r < 0)
			break;
		if (l.is_dir[i]) {
			r = rm_tree(c, sub, depth + 1, err);
			continue;
		}
		r = nfs_unlink(c->nfs, sub);
		if (r == -EISDIR)   /* became a directory meanwhile */
			r = rm_tree(c, sub, depth + 1, err);
		else if (r < 0 && r != -ENOENT)
			conn_fail(c, r, err, "remove %s", sub);
		else
			r = 0;
	}
	name_list_free(&l);
	if (r < 0)
		return r;
	r = nfs_rmdir(c->nfs, path);
	if (r < 0 && r != -ENOENT)
		return conn_fail(c, r, err, "remove directory %s%s", path,
				 r == -ENOTEMPTY || r == -EEXIST ? " (files were added during the "
				 "removal; retry)" : "");
	return 0;
}

/* Removes the entries of the base directory named ".<name>.volumed.json<tag>*":
 * temporary records (TMP_TAG) or records set aside by a removal (ASIDE_TAG).
 * ret_count: how many there were. */
static int leftovers_remove(struct conn *c, const char *name, const char *tag, size_t *ret_count,
			    struct vd_err *err)
{
	char base[PATH_MAX], prefix[PATH_MAX], path[PATH_MAX];
	struct name_list l = { 0 };
	int r = conn_path(c, NULL, base, err);
	if (r == 0)
		r = path_fmt(prefix, sizeof(prefix), err, ".%s" VD_NFS_RECORD_SUFFIX "%s", name, tag);
	if (r == 0)
		r = dir_list(c, base, prefix, &l, err);
	if (r == -ENOENT) {
		*ret_count = 0;
		return 0;
	}
	if (r < 0)
		return r;
	*ret_count = l.count;
	for (size_t i = 0; r == 0 && i < l.count; i++) {
		r = conn_path(c, l.names[i], path, err);
		if (r == 0 && (r = nfs_unlink(c->nfs, path)) < 0 && r != -ENOENT)
			conn_fail(c, r, err, "remove %s", path);
		else
			r = r == -ENOENT ? 0 : r;
	}
	name_list_free(&l);
	return r;
}

/* ---- controller side ----------------------------------------------------- */

/* {"url": the volume directory's URL, "path": its path in the export,
 * "export": the export}. */
static json_t *volume_data(const struct conn *c, const char *name)
{
	char *url = vd_nfs_url_join(&c->b->u, name);
	char rel[PATH_MAX];
	snprintf(rel, sizeof(rel), "%s%s%s", *c->dir ? c->dir + 1 : "", *c->dir ? "/" : "", name);
	json_t *data = url ? json_pack("{s:s,s:s,s:s}", "url", url, "path", rel, "export",
				       c->export) : NULL;
	free(url);
	return data;
}

/* After a removal that was interrupted (records set aside remain), the
 * directory it left must go before a new volume of that name is made. */
static int finish_interrupted_removal(struct conn *c, const char *name, const char *vol,
				      struct vd_err *err)
{
	char base[PATH_MAX], prefix[PATH_MAX];
	struct name_list l = { 0 };
	int r = conn_path(c, NULL, base, err);
	if (r == 0)
		r = path_fmt(prefix, sizeof(prefix), err, ".%s" VD_NFS_RECORD_SUFFIX ASIDE_TAG, name);
	if (r == 0)
		r = dir_list(c, base, prefix, &l, err);
	if (r < 0)
		return r;
	size_t n = l.count;
	name_list_free(&l);
	if (n == 0)
		return 0;
	r = rm_tree(c, vol, 0, err);
	if (r == 0)
		r = leftovers_remove(c, name, ASIDE_TAG, &n, err);
	return r;
}

/* Makes the volume's root directory (reusing one left by an interrupted
 * create) and gives it the spec's owner and permissions. */
static int volume_root(struct conn *c, const char *vol, const struct vd_nfs_spec *s,
		       struct vd_err *err)
{
	int r = nfs_mkdir2(c->nfs, vol, s->mode >= 0 ? (int)s->mode : 0755);
	if (r == -EEXIST)
		r = conn_is_dir(c, vol, err) < 0 ? -ENOTDIR : 0;
	else if (r < 0)
		return conn_fail(c, r, err, "create directory %s", vol);
	if (r < 0)
		return r;
	if ((s->uid >= 0 || s->gid >= 0) &&
	    (r = nfs_chown(c->nfs, vol, s->uid >= 0 ? (int)s->uid : -1,
			   s->gid >= 0 ? (int)s->gid : -1)) < 0)
		return conn_fail(c, r, err, "chown %s to %" PRId64 ":%" PRId64 "%s", vol, s->uid,
				 s->gid, r == -EPERM ? " (does the export squash root?)" : "");
	if (s->mode >= 0 && (r = nfs_chmod(c->nfs, vol, (int)s->mode)) < 0)
		return conn_fail(c, r, err, "chmod %s to %04" PRIo64, vol, (uint64_t)s->mode);
	return 0;
}

static int nfs_create_op(void *priv, const char *name, const json_t *spec, json_t **ret_data,
			 struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	struct vd_nfs_spec s;
	struct conn c = { 0 };
	char leaf[PATH_MAX], rec[PATH_MAX], vol[PATH_MAX], tmp[PATH_MAX], tag[128];
	char created[32];
	int r = volume_get(d, name, spec, &s, &b, err);
	if (r == 0)
		r = record_leaf(name, leaf, err);
	if (r == 0)
		r = conn_open(d, b, &c, err);
	if (r < 0)
		return r;
	unique_tag(tag, sizeof(tag));
	r = conn_path(&c, leaf, rec, err);
	if (r == 0)
		r = conn_path(&c, name, vol, err);
	if (r == 0)
		r = path_fmt(tmp, sizeof(tmp), err, "%s/.%s" TMP_TAG "%s", c.dir, leaf, tag);
	if (r == 0)
		r = conn_mkdir_base(&c, err);
	if (r == 0)
		r = record_check(&c, name, &s, rec, err);
	if (r == 1) {   /* made by an earlier call: repair the root if it went */
		r = conn_is_dir(&c, vol, err);
		if (r == 0)
			r = volume_root(&c, vol, &s, err);
		goto done;
	}
	if (r == 0)
		r = finish_interrupted_removal(&c, name, vol, err);
	if (r < 0)
		goto done;

	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *record = vd_nfs_record_new(name, spec, created);
	char *text = record ? json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(record);
	if (!text) {
		r = vd_err_set(err, -ENOMEM, "driver nfs: out of memory");
		goto done;
	}
	r = file_write_new(&c, tmp, text, err);
	free(text);
	if (r < 0)
		goto done;
	r = volume_root(&c, vol, &s, err);
	if (r == 0 && (r = nfs_link(c.nfs, tmp, rec)) < 0) {
		if (r == -EEXIST) {   /* another controller made it meanwhile */
			r = record_check(&c, name, &s, rec, err);
			r = r == 1 ? 0 : r < 0 ? r : vd_err_set(err, -EAGAIN, "volume %s: its "
								"record came and went during the "
								"create; retry", name);
		}
		else if (r == -EOPNOTSUPP || r == -ENOTSUP || r == -ENOSYS)
			r = (r = nfs_rename(c.nfs, tmp, rec)) < 0 ?
				conn_fail(&c, r, err, "rename %s to %s", tmp, rec) : 0;
		else
			conn_fail(&c, r, err, "link %s to %s", tmp, rec);
	}
	nfs_unlink(c.nfs, tmp);   /* gone already after a rename */
done:
	if (r >= 0) {
		json_t *data = volume_data(&c, name);
		r = data ? 0 : vd_err_set(err, -ENOMEM, "driver nfs: out of memory");
		if (data)
			*ret_data = data;
	}
	conn_close(&c);
	return r < 0 ? r : 0;
}

static int mnt_path(const struct nfs_drv *d, const struct vd_nfs_backend *b, const char *name,
		    const char *leaf, char *buf, struct vd_err *err)
{
	return path_fmt(buf, PATH_MAX, err, "%s/%s/%s%s%s", d->root, b->name, name,
			leaf ? "/" : "", leaf ? leaf : "");
}

/* The node side's start: the volume's backend, its directory on this node
 * (helper.log, helper.pid) and its mount point. */
static int node_paths(const struct nfs_drv *d, const char *name, const json_t *spec,
		      const struct vd_nfs_backend **ret_b, char *dir, char *mnt,
		      struct vd_err *err)
{
	struct vd_nfs_spec s;
	int r = volume_get(d, name, spec, &s, ret_b, err);
	if (r == 0)
		r = mnt_path(d, *ret_b, name, NULL, dir, err);
	if (r == 0)
		r = mnt_path(d, *ret_b, name, "mnt", mnt, err);
	return r;
}

/* This host's directory of the volume (not mounted: checked), best effort. */
static void node_dir_remove(const struct nfs_drv *d, const struct vd_nfs_backend *b,
			    const char *name)
{
	static const char *const leaves[] = { "helper.log", "helper.pid", "helper.pid.tmp" };
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
		if (mnt_path(d, b, name, leaves[i], path, NULL) == 0)
			unlink(path);
	if (mnt_path(d, b, name, "mnt", path, NULL) == 0)
		rmdir(path);
	if (mnt_path(d, b, name, NULL, path, NULL) == 0)
		rmdir(path);
}

static int nfs_remove_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			 struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	struct vd_nfs_spec s;
	struct conn c = { 0 };
	char leaf[PATH_MAX], base[PATH_MAX], rec[PATH_MAX], vol[PATH_MAX], aside[PATH_MAX];
	char mnt[PATH_MAX], tag[128];
	size_t n;
	(void)data;
	int r = volume_get(d, name, spec, &s, &b, err);
	if (r == 0)
		r = mnt_path(d, b, name, "mnt", mnt, err);
	if (r == 0 && (r = vd_mount_is_mounted(mnt, err)) == 1)
		return vd_err_set(err, -EBUSY, "volume %s is mounted on %s on this host; unstage it "
				  "before removing it", name, mnt);
	if (r == 0)
		r = record_leaf(name, leaf, err);
	if (r == 0)
		r = conn_open(d, b, &c, err);
	if (r < 0)
		return r;
	unique_tag(tag, sizeof(tag));
	r = conn_path(&c, NULL, base, err);
	if (r == 0)
		r = conn_path(&c, leaf, rec, err);
	if (r == 0)
		r = conn_path(&c, name, vol, err);
	if (r == 0)
		r = path_fmt(aside, sizeof(aside), err, "%s/.%s" ASIDE_TAG "%s", c.dir, leaf, tag);
	if (r == 0 && (r = conn_is_dir(&c, base, err)) == 0)
		goto done;   /* no directory, no volume */
	if (r > 0 && (r = nfs_rename(c.nfs, rec, aside)) < 0 && r != -ENOENT)
		conn_fail(&c, r, err, "set aside %s", rec);
	else if (r > 0 || r == -ENOENT)
		r = 0;
	if (r == 0)
		r = rm_tree(&c, vol, 0, err);
	if (r == 0)
		r = leftovers_remove(&c, name, ASIDE_TAG, &n, err);
	if (r == 0)
		r = leftovers_remove(&c, name, TMP_TAG, &n, err);
done:
	conn_close(&c);
	if (r >= 0)
		node_dir_remove(d, b, name);
	return r < 0 ? r : 0;
}

/* Lists the records of one backend. */
static int discover_backend(struct nfs_drv *d, const struct vd_nfs_backend *b,
			    int (*fn)(const char *, const json_t *, const json_t *, const json_t *,
				      void *),
			    void *userdata, struct vd_err *err)
{
	struct conn c;
	struct name_list l = { 0 };
	char base[PATH_MAX], path[PATH_MAX], name[PATH_MAX];
	size_t suffix = strlen(VD_NFS_RECORD_SUFFIX);
	int r = conn_open(d, b, &c, err);
	if (r < 0)
		return r;
	r = conn_path(&c, NULL, base, err);
	if (r == 0)
		r = dir_list(&c, base, NULL, &l, err);
	if (r == -ENOENT) {
		vd_err_clear(err);
		r = 0;
	}
	for (size_t i = 0; r == 0 && i < l.count; i++) {
		const char *e = l.names[i];
		size_t len = strlen(e);
		json_t *rec = NULL;
		struct vd_err why = VD_ERR_INIT;
		if (e[0] == '.' || l.is_dir[i] || len <= suffix || len - suffix >= sizeof(name) ||
		    strcmp(e + len - suffix, VD_NFS_RECORD_SUFFIX) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - suffix), e);
		if (vd_nfs_name_check(name, NULL) < 0 || conn_path(&c, e, path, err) < 0)
			continue;
		r = record_read(&c, path, &rec, &why);
		if (r == -ENOENT || r == -EIO) {   /* removed meanwhile, or not ours */
			r = 0;
			continue;
		}
		if (r < 0) {
			vd_err_set(err, r, "%s", why.msg);
			break;
		}
		const char *rname = json_string_value(json_object_get(rec, "name"));
		if (strcmp(rname, name) == 0) {
			/* Found in this backend, whatever name it had when made. */
			json_t *spec = json_deep_copy(json_object_get(rec, "spec"));
			json_t *options = json_deep_copy(json_object_get(rec, "options"));
			json_t *data = volume_data(&c, name);
			if (!spec || !options || !data ||
			    json_object_set_new(spec, "backend", json_string(b->name)) < 0 ||
			    json_object_set_new(options, "backend", json_string(b->name)) < 0)
				r = vd_err_set(err, -ENOMEM, "out of memory");
			else if (fn(name, options, spec, data, userdata) != 0)
				r = 1;
			json_decref(spec);
			json_decref(options);
			json_decref(data);
		}
		json_decref(rec);
	}
	name_list_free(&l);
	conn_close(&c);
	return r;
}

static int nfs_discover_op(void *priv,
			   int (*fn)(const char *name, const json_t *options, const json_t *spec,
				     const json_t *data, void *userdata),
			   void *userdata, struct vd_err *err)
{
	struct nfs_drv *d = priv;
	int first = 0;
	for (size_t i = 0; i < d->set->count; i++) {
		const struct vd_nfs_backend *b = &d->set->backends[i];
		int dup = 0;
		for (size_t k = 0; k < i; k++)   /* one directory under two names: once */
			dup |= strcmp(d->set->backends[k].url, b->url) == 0;
		if (dup)
			continue;
		struct vd_err e = VD_ERR_INIT;
		int r = discover_backend(d, b, fn, userdata, &e);
		if (r == 1)
			return 0;   /* fn stopped the walk */
		if (r < 0 && first == 0) {   /* the others are still listed */
			first = r;
			vd_err_set(err, r, "%s", e.msg);
		}
	}
	return first;
}

static int nfs_capacity_op(void *priv, const json_t *opts, uint64_t *ret_bytes,
			   struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const char *name = json_string_value(json_object_get(opts, "backend"));
	const struct vd_nfs_backend *b = name ? vd_nfs_backend_find(d->set, name)
		: d->set->default_backend;
	if (name && !b)
		return vd_err_set(err, -EINVAL, "option backend: '%.40s' is not a configured nfs "
				  "backend", name);
	struct nfs_statvfs_64 sv;
	struct conn c;
	char base[PATH_MAX];
	if (!b)
		return vd_err_set(err, -EOPNOTSUPP, "driver nfs has %s; capacity is that of "
				  "default_backend", d->set->count ? "no default_backend" :
				  "no backends configured");
	int r = conn_open(d, b, &c, err);
	if (r < 0)
		return r;
	r = conn_path(&c, NULL, base, err);
	if (r == 0 && (r = nfs_statvfs64(c.nfs, base, &sv)) == -ENOENT)
		r = nfs_statvfs64(c.nfs, "/", &sv);   /* the directory is made at the first create */
	if (r < 0)
		conn_fail(&c, r, err, "statvfs %s", base);
	else
		*ret_bytes = sv.f_bavail * sv.f_frsize;
	conn_close(&c);
	return r < 0 ? r : 0;
}

/* ---- node side: mounts ------------------------------------------------- */

/* "[addr]" or "addr" of the server's first address. */
static int resolve(const char *host, char *buf, size_t len, struct vd_err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int e = getaddrinfo(host, NULL, &hints, &res);
	if (e != 0)
		return vd_err_set(err, -EHOSTUNREACH, "resolve NFS server %s: %s", host,
				  gai_strerror(e));
	const void *a = res->ai_family == AF_INET6 ?
		(const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr :
		(const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
	const char *ok = inet_ntop(res->ai_family, a, buf, (socklen_t)len);
	freeaddrinfo(res);
	if (!ok)
		return vd_err_set(err, -EINVAL, "resolve NFS server %s: %s", host, strerror(errno));
	return 0;
}

static int kernel_mount(const struct vd_nfs_backend *b, const char *name, const char *mnt,
			struct vd_err *err)
{
	char addr[INET6_ADDRSTRLEN], source[PATH_MAX], opts[2048], ports[64] = "";
	int r = resolve(b->u.server, addr, sizeof(addr), err);
	if (r < 0)
		return r;
	int v6 = strchr(b->u.server, ':') != NULL;
	r = path_fmt(source, sizeof(source), err, "%s%s%s:%s%s%s", v6 ? "[" : "", b->u.server,
		     v6 ? "]" : "", strcmp(b->u.path, "/") == 0 ? "" : b->u.path, "/", name);
	if (b->u.nfsport)
		snprintf(ports, sizeof(ports), ",port=%u", b->u.nfsport);
	if (b->u.mountport)
		snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports), ",mountport=%u",
			 b->u.mountport);
	if (r == 0)
		r = path_fmt(opts, sizeof(opts), err, "addr=%s,vers=3,proto=tcp,mountproto=tcp,"
			     "mountaddr=%s%s,%s", addr, addr, ports, b->mount_options);
	if (r < 0)
		return r;
	if (mount(source, mnt, "nfs", 0, opts) < 0)
		return vd_err_set(err, -errno, "nfs backend %s: mount %s on %s (%s): %s%s", b->name,
				  source, mnt, opts, strerror(errno), errno == ENODEV ?
				  " (this kernel has no NFS client: set the backend's mode to fuse)"
				  : "");
	return 0;
}

static int helper_spawn(const struct nfs_drv *d, const struct vd_nfs_backend *b,
			const char *url, const json_t *data, const char *dir, const char *mnt,
			struct vd_err *err)
{
	char what[300];
	char *const args[] = { "--url", (char *)url, NULL };
	snprintf(what, sizeof(what), "nfs backend %s", b->name);
	struct vd_helper_run run = { .program = d->helper, .what = what, .dir = dir, .mnt = mnt,
				     .timeout_ms = b->timeout_ms, .args = args,
				     .lease_file = json_string_value(json_object_get(data, "lease_file")) };
	return vd_helper_start(&run, err);
}

/* The volume directory's URL: from the data create returned, or rebuilt. */
static char *volume_url(const struct vd_nfs_backend *b, const char *name, const json_t *data)
{
	const char *url = json_string_value(json_object_get(data, "url"));
	return url ? strdup(url) : vd_nfs_url_join(&b->u, name);
}

static int nfs_stage_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			char **ret_path, struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	char dir[PATH_MAX], mnt[PATH_MAX];
	int r = node_paths(d, name, spec, &b, dir, mnt, err);
	if (r == 0)
		r = vd_helper_mount_state(mnt, err);
	if (r == 2) {   /* its helper died: clear the dead mount, mount again */
		umount2(mnt, MNT_DETACH);
		vd_helper_stop(dir, mnt);
		r = 0;
	} else if (r == 1) {
		goto done;   /* staged already, or adopted after a restart */
	}
	if (r == 0)   /* after clearing a dead mount, on which mkdir fails */
		r = mkdir_p(mnt, 0755, err);
	if (r < 0)
		return r;
	if (datapath_of(d, b) == VD_NFS_KERNEL) {
		r = kernel_mount(b, name, mnt, err);
	} else {
		char *url = volume_url(b, name, data);
		r = url ? helper_spawn(d, b, url, data, dir, mnt, err)
			: vd_err_set(err, -ENOMEM, "out of memory");
		free(url);
	}
	if (r < 0)
		return r;
done:;
	char *path = strdup(mnt);
	if (!path)
		return vd_err_set(err, -ENOMEM, "out of memory");
	*ret_path = path;
	return 0;
}

static int nfs_unstage_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			  struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	char dir[PATH_MAX], mnt[PATH_MAX];
	(void)data;
	int r = node_paths(d, name, spec, &b, dir, mnt, err);
	if (r == 0)
		r = vd_mount_is_mounted(mnt, err);
	if (r < 0)
		return r;
	if (r == 1 && umount2(mnt, 0) < 0 && errno != EINVAL && errno != ENOENT) {
		if (errno == EBUSY)
			return vd_err_set(err, -EBUSY, "volume %s is in use on %s (a process has "
					  "files open there); stop it first", name, mnt);
		/* A dead FUSE mount may refuse a plain unmount: detach it. */
		if (umount2(mnt, MNT_DETACH) < 0 && errno != EINVAL)
			return vd_err_set(err, -errno, "unmount %s: %s", mnt, strerror(errno));
	}
	vd_helper_stop(dir, mnt);
	return 0;
}

static int nfs_fence_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	char dir[PATH_MAX], mnt[PATH_MAX];
	(void)data;
	int r = node_paths(d, name, spec, &b, dir, mnt, err);
	if (r < 0)
		return r;
	vd_helper_kill(dir, mnt);   /* FUSE: no more requests reach the server */
	if (umount2(mnt, MNT_FORCE | MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return vd_err_set(err, -errno, "fence %s: unmount %s: %s", name, mnt, strerror(errno));
	return 0;
}

static int nfs_is_staged_op(void *priv, const char *name, const json_t *spec, const json_t *data,
			    struct vd_err *err)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	struct vd_nfs_spec s;
	char mnt[PATH_MAX];
	(void)data;
	int r = volume_get(d, name, spec, &s, &b, err);
	if (r == 0)
		r = mnt_path(d, b, name, "mnt", mnt, err);
	if (r == 0)
		r = vd_helper_mount_state(mnt, err);
	return r < 0 ? r : r == 1;
}

static char *nfs_mountpoint_op(void *priv, const char *name, const json_t *spec,
			       const json_t *data)
{
	struct nfs_drv *d = priv;
	const struct vd_nfs_backend *b;
	struct vd_nfs_spec s;
	char mnt[PATH_MAX];
	(void)data;
	if (volume_get(d, name, spec, &s, &b, NULL) < 0 || mnt_path(d, b, name, "mnt", mnt, NULL) < 0)
		return NULL;
	return strdup(mnt);
}

/* ---- pure ops ----------------------------------------------------------- */

static int nfs_parse_options_op(void *priv, const json_t *opts, json_t **ret_spec,
				struct vd_err *err)
{
	const struct nfs_drv *d = priv;
	return vd_nfs_parse_options(d->set, opts, ret_spec, err);
}

static void nfs_describe_op(void *priv, const json_t *spec, const json_t *data, json_t *status)
{
	const struct nfs_drv *d = priv;
	struct vd_nfs_spec s;
	char size[32];
	if (vd_nfs_spec_read(spec, &s, NULL) < 0)
		return;
	const struct vd_nfs_backend *b = vd_nfs_backend_find(d->set, s.backend);
	const char *url = json_string_value(json_object_get(data, "url"));
	char *built = !url && b ? vd_nfs_url_join(&b->u, NULL) : NULL;
	json_object_set_new(status, "type", json_string("nfs"));
	json_object_set_new(status, "backend", json_string(s.backend));
	if (url || built)   /* nfs URLs carry no credentials (refused in the settings) */
		json_object_set_new(status, "url", json_string(url ? url : built));
	json_object_set_new(status, "size_bytes", json_integer((json_int_t)s.size));
	if (s.size) {
		vd_size_format(s.size, size, sizeof(size));
		json_object_set_new(status, "size", json_string(size));
	}
	if (b)
		json_object_set_new(status, "datapath",
				    json_string(vd_nfs_mode_name(datapath_of(d, b))));
	free(built);
}

static uint64_t nfs_spec_size_op(void *priv, const json_t *spec)
{
	struct vd_nfs_spec s;
	(void)priv;
	return vd_nfs_spec_read(spec, &s, NULL) < 0 ? 0 : s.size;
}

/* ---- init --------------------------------------------------------------- */

static int kernel_has_nfs(void)
{
	char buf[8192];
	int fd = open("/proc/filesystems", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *fs = strrchr(line, '\t');
		if (strcmp(fs ? fs + 1 : line, "nfs") == 0)
			return 1;
	}
	return 0;
}

static void nfs_fini(void *priv)
{
	struct nfs_drv *d = priv;
	if (!d)
		return;
	for (size_t i = 0; d->exports && d->set && i < d->set->count; i++)
		free(d->exports[i]);
	free(d->exports);
	vd_nfs_settings_free(d->set);
	free(d->helper);
	free(d->root);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int nfs_init(const struct vd_driver_env *env, void **ret_priv, struct vd_err *err)
{
	struct nfs_drv *d = calloc(1, sizeof(*d));
	if (!d)
		return vd_err_set(err, -ENOMEM, "driver nfs: out of memory");
	pthread_mutex_init(&d->lock, NULL);
	int r = vd_nfs_settings_parse(env->settings, &d->set, err);
	if (r < 0)
		goto fail;
	if (!env->state_dir || asprintf(&d->root, "%s/nfs", env->state_dir) < 0) {
		d->root = NULL;
		r = vd_err_set(err, -EINVAL, "driver nfs needs a state directory");
		goto fail;
	}
	d->helper = d->set->helper ? strdup(d->set->helper) : vd_helper_default_path(HELPER_NAME);
	d->exports = calloc(d->set->count ? d->set->count : 1, sizeof(*d->exports));
	if (!d->helper || !d->exports) {
		r = vd_err_set(err, -ENOMEM, "driver nfs: out of memory");
		goto fail;
	}
	d->kernel_nfs = kernel_has_nfs();
	*ret_priv = d;
	return 0;
fail:
	nfs_fini(d);
	return r;
}

const struct vd_driver_ops vd_driver_nfs = {
	.name = "nfs",
	.multi_node = 1,
	.init = nfs_init,
	.fini = nfs_fini,
	.parse_options = nfs_parse_options_op,
	.create = nfs_create_op,
	.remove = nfs_remove_op,
	.stage = nfs_stage_op,
	.unstage = nfs_unstage_op,
	.is_staged = nfs_is_staged_op,
	.fence = nfs_fence_op,
	.mountpoint = nfs_mountpoint_op,
	.describe = nfs_describe_op,
	.spec_size = nfs_spec_size_op,
	.capacity = nfs_capacity_op,
	.discover = nfs_discover_op,
};
