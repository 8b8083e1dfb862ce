/* nfsfs.c — the FUSE operations of volumed-nfs-fuse over libnfs (NFSv3).
 *
 * Role: maps each libfuse3 high-level operation onto libnfs's async API and
 * waits for the reply with our own poll loop, so that every request has a
 * hard deadline (libnfs 4.0's sync calls have none we can rely on, and a
 * context whose reconnects failed stays dead forever: we drop and remake
 * it). See nfsfs.h for the model.
 *
 * Threads and locks: FUSE worker threads call the operations concurrently.
 * fs->lock (+ fs->cond) guards the pool's busy flags only; a borrowed
 * struct conn is touched by its borrower alone, including (re)connecting.
 * File handles (struct nfsfh, in a struct handle in fi->fh) belong to no
 * context: any context can use them, and the kernel serialises writes on
 * an inode, so libnfs's per-handle offset is never raced on in practice.
 *
 * Semantics worth knowing:
 * - getattr/chmod/chown/utimens act on the path itself (lstat, lchmod...):
 *   FUSE asks about the inode, never about a symlink's target.
 * - create: O_EXCL is an NFSv3 EXCLUSIVE create (atomic on the server);
 *   without it an UNCHECKED create (an existing file is opened as is).
 * - O_APPEND: the write goes to the server's current size (GETATTR then
 *   WRITE, atomic against local writers only, as on any NFSv3 client) and
 *   the open uses direct_io so the page cache never guesses the offset.
 * - rename: RENAME_NOREPLACE and RENAME_EXCHANGE return EINVAL: NFSv3 has
 *   no atomic form of either (tools such as mv fall back).
 * - fsync is an NFSv3 COMMIT; flush does nothing (every write already went
 *   to the server as an UNSTABLE WRITE and is visible to other clients);
 *   fsyncdir does nothing (NFSv3 directory operations are synchronous).
 * - Writes are UNSTABLE: should the server restart between a WRITE and the
 *   COMMIT, data the server had not yet written is lost, as with any NFSv3
 *   client that does not track write verifiers (libnfs 4.0 does not). */
#include "nfsfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

#include "../../volumed/log.h"
#include "nfs_url.h"

#define NFSFS_PATH_MAX (PATH_MAX + NFS_URL_PATH_MAX)
#define POLL_SLICE_MS 100
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define MAX_CHUNKS 64
#define MAX_GROUPS 16   /* AUTH_SYS carries at most 16 supplementary groups */

/* Credentials of the caller, as sent in AUTH_SYS. */
struct cred {
	uint32_t uid, gid, ngroups;
	uint32_t groups[MAX_GROUPS];
};

struct conn {
	struct nfs_context *nfs;   /* NULL: not connected, connect on borrow */
	struct cred cred;          /* what its AUTH carries; valid when has_cred */
	int has_cred;
	int busy;
	int id;
	int ever_connected;
	int connecting;            /* in conn_connect: failures are logged there */
};

struct nfsfs {
	struct nfs_url_parts url;
	char lib_url[NFS_URL_MAX + 64];
	char display[NFS_URL_MAX + 16];
	char server[NFS_URL_HOST_MAX];
	char export[NFS_URL_PATH_MAX];
	char inner[NFS_URL_PATH_MAX];
	int timeout_ms, retries, nconns;
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* a conn became free */
	struct conn conns[NFSFS_MAX_CONNS];
	_Atomic unsigned long n_requests, n_reconnects, n_lost, n_timeouts, n_eio;
	_Atomic int down;           /* last connect failed: log recovery once */
	_Atomic long fail_log_sec;  /* last second a failed request was logged */
	_Atomic unsigned long fail_unlogged;
};

/* An open file: the libnfs handle and how it was opened. */
struct handle {
	struct nfsfh *fh;
	int append;
};

/* ---------------------------------------------------------------- time */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- calls */

enum call_kind { CALL_NONE, CALL_STAT, CALL_FH, CALL_DIR, CALL_READ, CALL_LINK, CALL_STATVFS };

/* One outstanding libnfs async call; lives on the waiter's stack. */
struct call {
	int done;
	int status;
	enum call_kind kind;
	void *out;
	size_t outlen;
};

static void call_init(struct call *c, enum call_kind kind, void *out, size_t outlen)
{
	c->done = 0;
	c->status = -EIO;
	c->kind = kind;
	c->out = out;
	c->outlen = outlen;
}

static void call_cb(int status, struct nfs_context *nfs, void *data, void *private_data)
{
	(void)nfs;
	struct call *c = private_data;
	c->status = status;
	if (status >= 0 && data) {
		switch (c->kind) {
		case CALL_STAT:
			memcpy(c->out, data, sizeof(struct nfs_stat_64));
			break;
		case CALL_FH:
			*(struct nfsfh **)c->out = data;
			break;
		case CALL_DIR:
			*(struct nfsdir **)c->out = data;
			break;
		case CALL_READ:
			memcpy(c->out, data, (size_t)status < c->outlen ? (size_t)status : c->outlen);
			break;
		case CALL_LINK:
			snprintf(c->out, c->outlen, "%s", (const char *)data);
			break;
		case CALL_STATVFS:
			memcpy(c->out, data, sizeof(struct nfs_statvfs_64));
			break;
		case CALL_NONE:
			break;
		}
	}
	c->done = 1;
}

/* Errors that say the connection, not the server's answer, failed. libnfs
 * reports RPC-level failure as -EFAULT, a cancelled or timed-out call as
 * -EINTR; our own wait loop adds -ETIMEDOUT and -ENOTCONN. */
static int is_transport(int rc)
{
	switch (-rc) {
	case EFAULT: case EINTR: case ETIMEDOUT: case ENOTCONN: case ECONNREFUSED:
	case ECONNRESET: case ECONNABORTED: case EPIPE: case EHOSTUNREACH:
	case ENETUNREACH: case ENETDOWN: case ESHUTDOWN:
		return 1;
	default:
		return 0;
	}
}

static void conn_kill(struct nfsfs *fs, struct conn *c, const char *why)
{
	if (!c->nfs)
		return;
	/* Cancels what is queued: the callbacks run now, with an error,
	 * while the waiters' call structs are still alive. */
	nfs_destroy_context(c->nfs);
	c->nfs = NULL;
	c->has_cred = 0;
	if (c->connecting)
		return;
	atomic_fetch_add(&fs->n_lost, 1);
	vd_log(VD_LOG_WARN, "event=nfs-conn-dropped conn=%d reason=\"%s\"", c->id, why);
}

/* Runs c's context until the n calls are done or the deadline passes.
 * Returns 0 (each call's status is in it) or a transport error, in which
 * case the context was destroyed (and the calls completed with errors). */
static int conn_wait(struct nfsfs *fs, struct conn *c, struct call *calls, int n, double deadline)
{
	for (;;) {
		int pending = 0;
		for (int i = 0; i < n; i++)
			pending += !calls[i].done;
		if (!pending)
			return 0;
		double left = deadline - now_ms();
		if (left <= 0) {
			atomic_fetch_add(&fs->n_timeouts, 1);
			conn_kill(fs, c, "request timed out");
			return -ETIMEDOUT;
		}
		struct pollfd pfd = { .fd = nfs_get_fd(c->nfs), .events = (short)nfs_which_events(c->nfs) };
		int slice = left < POLL_SLICE_MS ? (int)left + 1 : POLL_SLICE_MS;
		int r = poll(&pfd, 1, slice);
		if (r < 0 && errno != EINTR) {
			conn_kill(fs, c, "poll failed");
			return -ENOTCONN;
		}
		/* revents 0 also runs libnfs's own timeout scan. */
		if (nfs_service(c->nfs, r > 0 ? pfd.revents : 0) < 0) {
			char why[160];
			snprintf(why, sizeof(why), "%s", nfs_get_error(c->nfs));
			for (char *p = why; *p; p++)
				if (*p == '"' || *p == '\n')
					*p = '\'';
			conn_kill(fs, c, why);
			return -ENOTCONN;
		}
	}
}

/* One call issued with `queued` (the async function's return value). */
static int call_run(struct nfsfs *fs, struct conn *c, struct call *call, int queued,
		    double deadline)
{
	if (queued != 0) {
		conn_kill(fs, c, "cannot queue a request");
		return -ENOTCONN;
	}
	int rc = conn_wait(fs, c, call, 1, deadline);
	return rc < 0 ? rc : call->status;
}

/* ---------------------------------------------------------------- pool */

static int conn_connect(struct nfsfs *fs, struct conn *c, double deadline)
{
	struct nfs_context *nfs = nfs_init_context();
	if (!nfs)
		return -ENOMEM;
	/* libnfs's own parser applies the query (ports...) to the context. */
	struct nfs_url *u = nfs_parse_url_dir(nfs, fs->lib_url);
	if (!u) {
		nfs_destroy_context(nfs);
		return -EINVAL;
	}
	nfs_destroy_url(u);
	int t = (fs->timeout_ms + 999) / 1000 * 1000;  /* libnfs: whole seconds */
	nfs_set_timeout(nfs, t);
	nfs_set_autoreconnect(nfs, fs->retries);
	nfs_set_dircache(nfs, 0);   /* other clients change directories too */
	nfs_umask(nfs, 0);          /* FUSE already applied the caller's umask */
	c->nfs = nfs;
	c->has_cred = 0;
	struct call call;
	call_init(&call, CALL_NONE, NULL, 0);
	c->connecting = 1;
	int rc = call_run(fs, c, &call, nfs_mount_async(nfs, fs->server, fs->export, call_cb, &call),
			  deadline);
	c->connecting = 0;
	if (rc < 0) {
		if (c->nfs) {
			nfs_destroy_context(c->nfs);
			c->nfs = NULL;
		}
		if (!atomic_exchange(&fs->down, 1))
			vd_log(VD_LOG_WARN, "event=nfs-connect-failed conn=%d server=%s export=%s err=%d "
			       "note=\"logged once until a connect succeeds\"", c->id, fs->server,
			       fs->export, -rc);
		return rc;   /* a refused MOUNT (-EACCES...) is told apart */
	}
	if (c->ever_connected)
		atomic_fetch_add(&fs->n_reconnects, 1);
	c->ever_connected = 1;
	if (atomic_exchange(&fs->down, 0))
		vd_log(VD_LOG_INFO, "event=nfs-reconnected conn=%d server=%s", c->id, fs->server);
	return 0;
}

/* Borrows a connection, preferring a connected one; waits at most until
 * the deadline. */
static int conn_borrow(struct nfsfs *fs, double deadline, struct conn **ret)
{
	struct timespec abs;
	double wall = deadline - now_ms();
	clock_gettime(CLOCK_MONOTONIC, &abs);
	if (wall < 0)
		wall = 0;
	abs.tv_sec += (time_t)(wall / 1000);
	abs.tv_nsec += (long)((wall - (double)(long)(wall / 1000) * 1000) * 1e6);
	if (abs.tv_nsec >= 1000000000L) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&fs->lock);
	for (;;) {
		struct conn *pick = NULL;
		for (int i = 0; i < fs->nconns; i++) {
			struct conn *c = &fs->conns[i];
			if (c->busy)
				continue;
			if (c->nfs) {
				pick = c;
				break;
			}
			if (!pick)
				pick = c;
		}
		if (pick) {
			pick->busy = 1;
			pthread_mutex_unlock(&fs->lock);
			*ret = pick;
			return 0;
		}
		int rc = pthread_cond_timedwait(&fs->cond, &fs->lock, &abs);
		if (rc == ETIMEDOUT) {
			pthread_mutex_unlock(&fs->lock);
			return -ETIMEDOUT;
		}
	}
}

static void conn_return(struct nfsfs *fs, struct conn *c)
{
	pthread_mutex_lock(&fs->lock);
	c->busy = 0;
	pthread_cond_signal(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

static void cred_of_caller(struct cred *cr)
{
	memset(cr, 0, sizeof(*cr));
	struct fuse_context *fc = fuse_get_context();
	cr->uid = (uint32_t)fc->uid;
	cr->gid = (uint32_t)fc->gid;
	gid_t list[64];
	int n = fuse_getgroups(64, list);
	if (n > 64)
		n = 64;
	for (int i = 0; i < n && cr->ngroups < MAX_GROUPS; i++)
		if ((uint32_t)list[i] != cr->gid)
			cr->groups[cr->ngroups++] = (uint32_t)list[i];
}

static void conn_set_cred(struct conn *c, const struct cred *cr)
{
	if (c->has_cred && memcmp(&c->cred, cr, sizeof(*cr)) == 0)
		return;
	struct AUTH *auth = libnfs_authunix_create("volumed-nfs", cr->uid, cr->gid, cr->ngroups,
						   (uint32_t *)cr->groups);
	if (!auth)
		return;   /* keeps the previous credentials; the server decides */
	rpc_set_auth(nfs_get_rpc_context(c->nfs), auth);
	c->cred = *cr;
	c->has_cred = 1;
}

/* ---------------------------------------------------------------- requests */

typedef int (*op_fn)(struct nfsfs *fs, struct conn *c, double deadline, void *arg);

/* At most one line a second about failed requests, during an outage. */
static void log_request_failed(struct nfsfs *fs, const char *op, int attempts, int err,
			       const char *why)
{
	long sec = (long)(now_ms() / 1000);
	long last = atomic_load(&fs->fail_log_sec);
	if (last == sec || !atomic_compare_exchange_strong(&fs->fail_log_sec, &last, sec)) {
		atomic_fetch_add(&fs->fail_unlogged, 1);
		return;
	}
	vd_log(VD_LOG_WARN, "event=nfs-request-failed op=%s attempts=%d err=%d result=EIO "
	       "reason=\"%s\" not_logged_since_last=%lu", op, attempts, err, why,
	       atomic_exchange(&fs->fail_unlogged, 0));
}

enum { NOT_IDEMPOTENT = 0, IDEMPOTENT = 1 };

/* Runs fn on a borrowed connection with the caller's credentials, within
 * the request's deadline; see nfsfs.h for the retry rules. */
static int run_op(const char *name, op_fn fn, void *arg, int idempotent)
{
	struct nfsfs *fs = fuse_get_context()->private_data;
	struct cred cr;
	cred_of_caller(&cr);
	atomic_fetch_add(&fs->n_requests, 1);
	double deadline = now_ms() + fs->timeout_ms;
	double backoff = BACKOFF_FIRST_MS;
	for (int attempt = 0;; attempt++) {
		struct conn *c;
		int rc = conn_borrow(fs, deadline, &c);
		if (rc < 0) {
			atomic_fetch_add(&fs->n_timeouts, 1);
			log_request_failed(fs, name, attempt + 1, ETIMEDOUT,
					   "no connection free within the timeout");
			break;
		}
		int sent = 0;
		if (!c->nfs) {
			rc = conn_connect(fs, c, deadline);
			if (rc < 0 && !is_transport(rc))
				rc = -ENOTCONN;   /* a refused MOUNT: the same here */
		}
		if (rc == 0) {
			conn_set_cred(c, &cr);
			sent = 1;
			rc = fn(fs, c, deadline, arg);
			if (is_transport(rc))
				conn_kill(fs, c, "request failed on the connection");
		}
		conn_return(fs, c);
		if (!is_transport(rc))
			return rc;
		double wait = backoff;
		if ((sent && !idempotent) || attempt >= fs->retries || now_ms() + wait >= deadline) {
			log_request_failed(fs, name, attempt + 1, -rc,
					   sent && !idempotent ? "connection lost, not retried: not idempotent"
					   : "connection lost, retries or time exhausted");
			break;
		}
		sleep_ms(wait);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	atomic_fetch_add(&fs->n_eio, 1);
	return -EIO;
}

static struct nfsfs *this_fs(void)
{
	return fuse_get_context()->private_data;
}

/* The volume's path on the export for a FUSE path ("/" or "/a/b"). */
static int full_path(const char *path, char *buf, size_t len)
{
	const struct nfsfs *fs = this_fs();
	int n;
	if (fs->inner[0])
		n = snprintf(buf, len, "%s%s", fs->inner, strcmp(path, "/") == 0 ? "" : path);
	else
		n = snprintf(buf, len, "%s", path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct handle *handle_of(const struct fuse_file_info *fi)
{
	return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

static void stat_from_nfs(const struct nfs_stat_64 *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)n->nfs_dev;
	st->st_ino = (ino_t)n->nfs_ino;
	st->st_mode = (mode_t)n->nfs_mode;
	st->st_nlink = (nlink_t)n->nfs_nlink;
	st->st_uid = (uid_t)n->nfs_uid;
	st->st_gid = (gid_t)n->nfs_gid;
	st->st_rdev = (dev_t)n->nfs_rdev;
	st->st_size = (off_t)n->nfs_size;
	st->st_blksize = (blksize_t)(n->nfs_blksize ? n->nfs_blksize : 4096);
	st->st_blocks = (blkcnt_t)n->nfs_blocks;
	st->st_atim.tv_sec = (time_t)n->nfs_atime;
	st->st_atim.tv_nsec = (long)n->nfs_atime_nsec;
	st->st_mtim.tv_sec = (time_t)n->nfs_mtime;
	st->st_mtim.tv_nsec = (long)n->nfs_mtime_nsec;
	st->st_ctim.tv_sec = (time_t)n->nfs_ctime;
	st->st_ctim.tv_nsec = (long)n->nfs_ctime_nsec;
}

/* ---- getattr */

struct stat_arg {
	const char *path;
	struct nfsfh *fh;
	struct nfs_stat_64 st;
};

static int do_stat(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct stat_arg *a = arg;
	struct call call;
	call_init(&call, CALL_STAT, &a->st, sizeof(a->st));
	if (a->fh)
		return call_run(fs, c, &call, nfs_fstat64_async(c->nfs, a->fh, call_cb, &call),
				deadline);
	return call_run(fs, c, &call, nfs_lstat64_async(c->nfs, a->path, call_cb, &call), deadline);
}

static int nfsfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	struct handle *h = handle_of(fi);
	struct stat_arg a = { .path = p, .fh = h ? h->fh : NULL };
	rc = run_op("getattr", do_stat, &a, IDEMPOTENT);
	if (rc < 0)
		return rc;
	stat_from_nfs(&a.st, st);
	return 0;
}

/* ---- simple path operations */

enum path_op { P_UNLINK, P_RMDIR, P_MKDIR, P_RENAME, P_LINK, P_SYMLINK, P_CHMOD, P_CHOWN,
	       P_TRUNCATE, P_ACCESS, P_MKNOD };

struct path_arg {
	enum path_op op;
	const char *path, *path2;
	struct nfsfh *fh;
	int mode, uid, gid, dev;
	uint64_t size;
};

static int do_path(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct path_arg *a = arg;
	struct nfs_context *n = c->nfs;
	struct call call;
	int q = -1;
	call_init(&call, CALL_NONE, NULL, 0);
	switch (a->op) {
	case P_UNLINK: q = nfs_unlink_async(n, a->path, call_cb, &call); break;
	case P_RMDIR: q = nfs_rmdir_async(n, a->path, call_cb, &call); break;
	case P_MKDIR: q = nfs_mkdir2_async(n, a->path, a->mode, call_cb, &call); break;
	case P_RENAME: q = nfs_rename_async(n, a->path, a->path2, call_cb, &call); break;
	case P_LINK: q = nfs_link_async(n, a->path, a->path2, call_cb, &call); break;
	/* symlink: path is the target (link content, not ours to prefix). */
	case P_SYMLINK: q = nfs_symlink_async(n, a->path, a->path2, call_cb, &call); break;
	case P_CHMOD:
		q = a->fh ? nfs_fchmod_async(n, a->fh, a->mode, call_cb, &call)
			  : nfs_lchmod_async(n, a->path, a->mode, call_cb, &call);
		break;
	case P_CHOWN:
		q = a->fh ? nfs_fchown_async(n, a->fh, a->uid, a->gid, call_cb, &call)
			  : nfs_lchown_async(n, a->path, a->uid, a->gid, call_cb, &call);
		break;
	case P_TRUNCATE:
		q = a->fh ? nfs_ftruncate_async(n, a->fh, a->size, call_cb, &call)
			  : nfs_truncate_async(n, a->path, a->size, call_cb, &call);
		break;
	case P_ACCESS: q = nfs_access_async(n, a->path, a->mode, call_cb, &call); break;
	case P_MKNOD: q = nfs_mknod_async(n, a->path, a->mode, a->dev, call_cb, &call); break;
	}
	return call_run(fs, c, &call, q, deadline);
}

static int path_op(const char *name, struct path_arg *a, const char *path, int idempotent)
{
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	a->path = p;
	return run_op(name, do_path, a, idempotent);
}

static int path2_op(const char *name, struct path_arg *a, const char *from, const char *to)
{
	char p[NFSFS_PATH_MAX], p2[NFSFS_PATH_MAX];
	int rc = full_path(from, p, sizeof(p));
	if (rc == 0)
		rc = full_path(to, p2, sizeof(p2));
	if (rc < 0)
		return rc;
	a->path = p;
	a->path2 = p2;
	return run_op(name, do_path, a, NOT_IDEMPOTENT);
}

static int nfsfs_unlink(const char *path)
{
	struct path_arg a = { .op = P_UNLINK };
	return path_op("unlink", &a, path, NOT_IDEMPOTENT);
}

static int nfsfs_rmdir(const char *path)
{
	struct path_arg a = { .op = P_RMDIR };
	return path_op("rmdir", &a, path, NOT_IDEMPOTENT);
}

static int nfsfs_mkdir(const char *path, mode_t mode)
{
	struct path_arg a = { .op = P_MKDIR, .mode = (int)(mode & 07777) };
	return path_op("mkdir", &a, path, NOT_IDEMPOTENT);
}

static int nfsfs_mknod(const char *path, mode_t mode, dev_t dev)
{
	struct path_arg a = { .op = P_MKNOD, .mode = (int)mode, .dev = (int)dev };
	return path_op("mknod", &a, path, NOT_IDEMPOTENT);
}

static int nfsfs_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags)
		return -EINVAL;   /* NOREPLACE / EXCHANGE: not atomic on NFSv3 */
	struct path_arg a = { .op = P_RENAME };
	return path2_op("rename", &a, from, to);
}

static int nfsfs_link(const char *from, const char *to)
{
	struct path_arg a = { .op = P_LINK };
	return path2_op("link", &a, from, to);
}

static int nfsfs_symlink(const char *target, const char *linkpath)
{
	char p[NFSFS_PATH_MAX];
	int rc = full_path(linkpath, p, sizeof(p));
	if (rc < 0)
		return rc;
	struct path_arg a = { .op = P_SYMLINK, .path = target, .path2 = p };
	return run_op("symlink", do_path, &a, NOT_IDEMPOTENT);
}

static int nfsfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct path_arg a = { .op = P_CHMOD, .mode = (int)(mode & 07777), .fh = h ? h->fh : NULL };
	return path_op("chmod", &a, path, IDEMPOTENT);
}

static int nfsfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct path_arg a = { .op = P_CHOWN, .uid = (int)uid, .gid = (int)gid,
			      .fh = h ? h->fh : NULL };
	return path_op("chown", &a, path, IDEMPOTENT);
}

static int nfsfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (size < 0)
		return -EINVAL;
	struct handle *h = handle_of(fi);
	struct path_arg a = { .op = P_TRUNCATE, .size = (uint64_t)size, .fh = h ? h->fh : NULL };
	return path_op("truncate", &a, path, IDEMPOTENT);
}

static int nfsfs_access(const char *path, int mask)
{
	if (mask == F_OK) {
		struct stat st;
		return nfsfs_getattr(path, &st, NULL);
	}
	struct path_arg a = { .op = P_ACCESS, .mode = mask };
	return path_op("access", &a, path, IDEMPOTENT);
}

/* ---- utimens */

struct utimens_arg {
	const char *path;
	struct timespec ts[2];
};

static int do_utimens(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct utimens_arg *a = arg;
	struct timeval tv[2];
	int need_stat = a->ts[0].tv_nsec == UTIME_OMIT || a->ts[1].tv_nsec == UTIME_OMIT;
	if (a->ts[0].tv_nsec == UTIME_NOW && a->ts[1].tv_nsec == UTIME_NOW) {
		struct call call;
		call_init(&call, CALL_NONE, NULL, 0);
		/* NULL: both set to the server's time. */
		return call_run(fs, c, &call, nfs_lutimes_async(c->nfs, a->path, NULL, call_cb, &call),
				deadline);
	}
	struct nfs_stat_64 st;
	if (need_stat) {
		/* NFSv3 could leave a time alone, libnfs cannot: read it back. */
		struct call call;
		call_init(&call, CALL_STAT, &st, sizeof(st));
		int rc = call_run(fs, c, &call, nfs_lstat64_async(c->nfs, a->path, call_cb, &call),
				  deadline);
		if (rc < 0)
			return rc;
	}
	struct timeval now;
	gettimeofday(&now, NULL);
	for (int i = 0; i < 2; i++) {
		if (a->ts[i].tv_nsec == UTIME_NOW) {
			tv[i] = now;
		} else if (a->ts[i].tv_nsec == UTIME_OMIT) {
			tv[i].tv_sec = (time_t)(i == 0 ? st.nfs_atime : st.nfs_mtime);
			tv[i].tv_usec = (suseconds_t)((i == 0 ? st.nfs_atime_nsec : st.nfs_mtime_nsec) / 1000);
		} else {
			tv[i].tv_sec = a->ts[i].tv_sec;
			tv[i].tv_usec = a->ts[i].tv_nsec / 1000;
		}
	}
	struct call call;
	call_init(&call, CALL_NONE, NULL, 0);
	return call_run(fs, c, &call, nfs_lutimes_async(c->nfs, a->path, tv, call_cb, &call),
			deadline);
}

static int nfsfs_utimens(const char *path, const struct timespec ts[2], struct fuse_file_info *fi)
{
	(void)fi;
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	struct utimens_arg a = { .path = p };
	if (ts) {
		a.ts[0] = ts[0];
		a.ts[1] = ts[1];
	} else {
		a.ts[0].tv_nsec = a.ts[1].tv_nsec = UTIME_NOW;
	}
	if (a.ts[0].tv_nsec == UTIME_OMIT && a.ts[1].tv_nsec == UTIME_OMIT)
		return 0;
	return run_op("utimens", do_utimens, &a, IDEMPOTENT);
}

/* ---- readlink */

struct readlink_arg {
	const char *path;
	char *buf;
	size_t size;
};

static int do_readlink(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct readlink_arg *a = arg;
	struct call call;
	call_init(&call, CALL_LINK, a->buf, a->size);
	return call_run(fs, c, &call, nfs_readlink_async(c->nfs, a->path, call_cb, &call), deadline);
}

static int nfsfs_readlink(const char *path, char *buf, size_t size)
{
	if (size == 0)
		return -EINVAL;
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	buf[0] = '\0';
	struct readlink_arg a = { .path = p, .buf = buf, .size = size };
	rc = run_op("readlink", do_readlink, &a, IDEMPOTENT);
	return rc < 0 ? rc : 0;
}

/* ---- statfs */

struct statfs_arg {
	const char *path;
	struct nfs_statvfs_64 sv;
};

static int do_statfs(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct statfs_arg *a = arg;
	struct call call;
	call_init(&call, CALL_STATVFS, &a->sv, sizeof(a->sv));
	return call_run(fs, c, &call, nfs_statvfs64_async(c->nfs, a->path, call_cb, &call), deadline);
}

static int nfsfs_statfs(const char *path, struct statvfs *st)
{
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	struct statfs_arg a = { .path = p };
	rc = run_op("statfs", do_statfs, &a, IDEMPOTENT);
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->f_bsize = (unsigned long)a.sv.f_bsize;
	st->f_frsize = (unsigned long)a.sv.f_frsize;
	st->f_blocks = (fsblkcnt_t)a.sv.f_blocks;
	st->f_bfree = (fsblkcnt_t)a.sv.f_bfree;
	st->f_bavail = (fsblkcnt_t)a.sv.f_bavail;
	st->f_files = (fsfilcnt_t)a.sv.f_files;
	st->f_ffree = (fsfilcnt_t)a.sv.f_ffree;
	st->f_favail = (fsfilcnt_t)a.sv.f_favail;
	st->f_fsid = (unsigned long)a.sv.f_fsid;
	st->f_namemax = (unsigned long)(a.sv.f_namemax ? a.sv.f_namemax : 255);
	return 0;
}

/* ---- readdir */

struct readdir_arg {
	const char *path;
	void *buf;
	fuse_fill_dir_t filler;
	int plus;
};

/* NFSv3 ftype3 (NF3REG = 1 ... NF3FIFO = 7) to S_IF* bits. */
static mode_t type_bits(uint32_t type)
{
	static const mode_t map[] = { 0, S_IFREG, S_IFDIR, S_IFBLK, S_IFCHR, S_IFLNK, S_IFSOCK,
				      S_IFIFO };
	return type < sizeof(map) / sizeof(map[0]) ? map[type] : 0;
}

static int do_readdir(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct readdir_arg *a = arg;
	struct nfsdir *dir = NULL;
	struct call call;
	call_init(&call, CALL_DIR, &dir, sizeof(dir));
	int rc = call_run(fs, c, &call, nfs_opendir_async(c->nfs, a->path, call_cb, &call), deadline);
	if (rc < 0)
		return rc;
	int dot = 0, dotdot = 0;
	struct nfsdirent *e;
	while ((e = nfs_readdir(c->nfs, dir)) != NULL) {
		struct stat st;
		memset(&st, 0, sizeof(st));
		st.st_ino = (ino_t)e->inode;
		st.st_mode = type_bits(e->type) | (mode_t)(e->mode & 07777);
		enum fuse_fill_dir_flags ff = 0;
		int special = strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0;
		dot |= strcmp(e->name, ".") == 0;
		dotdot |= strcmp(e->name, "..") == 0;
		if (a->plus && !special && type_bits(e->type)) {
			st.st_nlink = e->nlink;
			st.st_uid = e->uid;
			st.st_gid = e->gid;
			st.st_size = (off_t)e->size;
			st.st_rdev = (dev_t)e->rdev;
			st.st_blksize = (blksize_t)(e->blksize ? e->blksize : 4096);
			st.st_blocks = (blkcnt_t)e->blocks;
			st.st_atim.tv_sec = e->atime.tv_sec;
			st.st_atim.tv_nsec = (long)e->atime_nsec;
			st.st_mtim.tv_sec = e->mtime.tv_sec;
			st.st_mtim.tv_nsec = (long)e->mtime_nsec;
			st.st_ctim.tv_sec = e->ctime.tv_sec;
			st.st_ctim.tv_nsec = (long)e->ctime_nsec;
			ff = FUSE_FILL_DIR_PLUS;
		}
		if (a->filler(a->buf, e->name, &st, 0, ff))
			break;
	}
	nfs_closedir(c->nfs, dir);
	struct stat st;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR;
	if (!dot)
		a->filler(a->buf, ".", &st, 0, 0);
	if (!dotdot)
		a->filler(a->buf, "..", &st, 0, 0);
	return 0;
}

static int nfsfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
			 struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	/* The filler may run again on a retry: only when opendir failed, so
	 * before any entry was added. */
	struct readdir_arg a = { .path = p, .buf = buf, .filler = filler,
				 .plus = (flags & FUSE_READDIR_PLUS) != 0 };
	return run_op("readdir", do_readdir, &a, IDEMPOTENT);
}

/* ---- open, create, release */

struct open_arg {
	const char *path;
	int flags, mode, create;
	struct nfsfh *fh;
};

static int do_open(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct open_arg *a = arg;
	struct call call;
	call_init(&call, CALL_FH, &a->fh, sizeof(a->fh));
	if (a->create)
		return call_run(fs, c, &call, nfs_create_async(c->nfs, a->path, a->flags, a->mode,
							       call_cb, &call), deadline);
	return call_run(fs, c, &call, nfs_open_async(c->nfs, a->path, a->flags, call_cb, &call),
			deadline);
}

/* The open(2) flags libnfs understands; O_DSYNC is made O_SYNC (FILE_SYNC
 * writes), O_APPEND is ours to handle (see the header). */
static int nfs_open_flags(int flags, int create)
{
	int f = flags & O_ACCMODE;
	if (flags & (O_SYNC | O_DSYNC))
		f |= O_SYNC;
	if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY)
		f |= O_TRUNC;
	if (create && (flags & O_EXCL))
		f |= O_EXCL;
	return f;
}

static int open_common(const char *path, mode_t mode, struct fuse_file_info *fi, int create)
{
	char p[NFSFS_PATH_MAX];
	int rc = full_path(path, p, sizeof(p));
	if (rc < 0)
		return rc;
	struct handle *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	struct open_arg a = { .path = p, .flags = nfs_open_flags(fi->flags, create),
			      .mode = (int)(mode & 07777), .create = create };
	/* An exclusive create that may have reached the server must not be
	 * retried: the retry would fail with EEXIST on our own file. An
	 * UNCHECKED create or an open can be. */
	int idem = create && (a.flags & O_EXCL) ? NOT_IDEMPOTENT : IDEMPOTENT;
	rc = run_op(create ? "create" : "open", do_open, &a, idem);
	if (rc < 0) {
		free(h);
		return rc;
	}
	h->fh = a.fh;
	h->append = (fi->flags & O_APPEND) != 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	if (h->append || (fi->flags & O_DIRECT))
		fi->direct_io = 1;
	return 0;
}

static int nfsfs_open(const char *path, struct fuse_file_info *fi)
{
	return open_common(path, 0, fi, 0);
}

static int nfsfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_common(path, mode, fi, 1);
}

/* libnfs 4.0 exports this (libnfs-private.h) but does not declare it: it
 * frees a handle without a server round trip. */
void nfs_free_nfsfh(struct nfsfh *nfsfh);

struct close_arg {
	struct nfsfh *fh;
	int handed;   /* nfs_close_async took the handle: libnfs frees it */
};

static int do_close(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct close_arg *a = arg;
	struct call call;
	call_init(&call, CALL_NONE, NULL, 0);
	/* For a handle that was written to, libnfs sends a COMMIT first. */
	int q = nfs_close_async(c->nfs, a->fh, call_cb, &call);
	if (q == 0)
		a->handed = 1;
	return call_run(fs, c, &call, q, deadline);
}

static int nfsfs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = handle_of(fi);
	if (!h)
		return 0;
	/* NFSv3 has no CLOSE: libnfs COMMITs what was written and frees the
	 * handle. Without a connection we free it here; no retry once libnfs
	 * has it (it frees it even when the COMMIT fails). */
	struct close_arg a = { .fh = h->fh };
	run_op("release", do_close, &a, NOT_IDEMPOTENT);
	if (!a.handed)
		nfs_free_nfsfh(h->fh);
	free(h);
	fi->fh = 0;
	return 0;
}

static int nfsfs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;
}

/* ---- read, write, fsync */

struct rw_arg {
	struct handle *h;
	char *buf;
	size_t size;
	off_t off;
	ssize_t result;
};

static int do_read(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct rw_arg *a = arg;
	uint64_t max = nfs_get_readmax(c->nfs);
	if (max == 0 || max > (1u << 20))
		max = 1u << 20;
	size_t n = (a->size + max - 1) / max;
	if (n > MAX_CHUNKS)
		n = MAX_CHUNKS;
	struct call calls[MAX_CHUNKS];
	for (size_t i = 0; i < n; i++) {
		size_t len = a->size - i * max < max ? a->size - i * max : max;
		call_init(&calls[i], CALL_READ, a->buf + i * max, len);
		if (nfs_pread_async(c->nfs, a->h->fh, (uint64_t)a->off + i * max, len, call_cb,
				    &calls[i]) != 0) {
			conn_kill(fs, c, "cannot queue a read");
			return -ENOTCONN;
		}
	}
	int rc = conn_wait(fs, c, calls, (int)n, deadline);
	if (rc < 0)
		return rc;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (calls[i].status < 0)
			return total ? (a->result = (ssize_t)total, 0) : calls[i].status;
		total += (size_t)calls[i].status;
		if ((size_t)calls[i].status < calls[i].outlen)
			break;   /* end of file */
	}
	a->result = (ssize_t)total;
	return 0;
}

static int nfsfs_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = handle_of(fi);
	if (!h)
		return -EBADF;
	if (size == 0)
		return 0;
	if (size > (size_t)MAX_CHUNKS << 20)
		size = (size_t)MAX_CHUNKS << 20;
	struct rw_arg a = { .h = h, .buf = buf, .size = size, .off = off };
	int rc = run_op("read", do_read, &a, IDEMPOTENT);
	return rc < 0 ? rc : (int)a.result;
}

static int do_write(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct rw_arg *a = arg;
	uint64_t off = (uint64_t)a->off;
	if (a->h->append) {
		struct nfs_stat_64 st;
		struct call call;
		call_init(&call, CALL_STAT, &st, sizeof(st));
		int rc = call_run(fs, c, &call, nfs_fstat64_async(c->nfs, a->h->fh, call_cb, &call),
				  deadline);
		if (rc < 0)
			return rc;
		off = st.nfs_size;
	}
	uint64_t max = nfs_get_writemax(c->nfs);
	if (max == 0 || max > (1u << 20))
		max = 1u << 20;
	size_t n = (a->size + max - 1) / max;
	if (n > MAX_CHUNKS)
		n = MAX_CHUNKS;
	struct call calls[MAX_CHUNKS];
	for (size_t i = 0; i < n; i++) {
		size_t len = a->size - i * max < max ? a->size - i * max : max;
		call_init(&calls[i], CALL_NONE, NULL, len);
		if (nfs_pwrite_async(c->nfs, a->h->fh, off + i * max, len, a->buf + i * max,
				     call_cb, &calls[i]) != 0) {
			conn_kill(fs, c, "cannot queue a write");
			return -ENOTCONN;
		}
	}
	int rc = conn_wait(fs, c, calls, (int)n, deadline);
	if (rc < 0)
		return rc;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (calls[i].status < 0)
			return total ? (a->result = (ssize_t)total, 0) : calls[i].status;
		total += (size_t)calls[i].status;
		if ((size_t)calls[i].status < calls[i].outlen)
			break;
	}
	a->result = (ssize_t)total;
	return 0;
}

static int nfsfs_write(const char *path, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = handle_of(fi);
	if (!h)
		return -EBADF;
	if (size == 0)
		return 0;
	if (size > (size_t)MAX_CHUNKS << 20)
		size = (size_t)MAX_CHUNKS << 20;
	struct rw_arg a = { .h = h, .buf = (char *)buf, .size = size, .off = off };
	/* A WRITE at an offset is idempotent; an append is not. */
	int rc = run_op("write", do_write, &a, h->append ? NOT_IDEMPOTENT : IDEMPOTENT);
	return rc < 0 ? rc : (int)a.result;
}

static int do_fsync(struct nfsfs *fs, struct conn *c, double deadline, void *arg)
{
	struct handle *h = arg;
	struct call call;
	call_init(&call, CALL_NONE, NULL, 0);
	return call_run(fs, c, &call, nfs_fsync_async(c->nfs, h->fh, call_cb, &call), deadline);
}

static int nfsfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	struct handle *h = handle_of(fi);
	if (!h)
		return 0;
	return run_op("fsync", do_fsync, h, IDEMPOTENT);
}

static int nfsfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0;
}

/* ---- init */

static void *nfsfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->max_write = 1u << 20;
	conn->max_read = 1u << 20;   /* must match the max_read mount option */
	conn->max_readahead = 1u << 20;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	cfg->use_ino = 1;          /* the server's file ids, so hard links show */
	cfg->readdir_ino = 1;
	cfg->auto_cache = 1;       /* drop cached pages when mtime/size changed */
	cfg->attr_timeout = 1.0;
	cfg->entry_timeout = 1.0;
	cfg->negative_timeout = 0; /* other clients create files too */
	cfg->hard_remove = 0;      /* unlinked-but-open files: .fuse_hidden, like NFS's .nfs */
	cfg->nullpath_ok = 0;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.init = nfsfs_init,
	.getattr = nfsfs_getattr,
	.readlink = nfsfs_readlink,
	.mknod = nfsfs_mknod,
	.mkdir = nfsfs_mkdir,
	.unlink = nfsfs_unlink,
	.rmdir = nfsfs_rmdir,
	.symlink = nfsfs_symlink,
	.rename = nfsfs_rename,
	.link = nfsfs_link,
	.chmod = nfsfs_chmod,
	.chown = nfsfs_chown,
	.truncate = nfsfs_truncate,
	.open = nfsfs_open,
	.read = nfsfs_read,
	.write = nfsfs_write,
	.statfs = nfsfs_statfs,
	.flush = nfsfs_flush,
	.release = nfsfs_release,
	.fsync = nfsfs_fsync,
	.readdir = nfsfs_readdir,
	.fsyncdir = nfsfs_fsyncdir,
	.access = nfsfs_access,
	.create = nfsfs_create,
	.utimens = nfsfs_utimens,
};

const struct fuse_operations *nfsfs_operations(void)
{
	return &ops;
}

/* ---------------------------------------------------------------- setup */

/* Mounts with conn 0, trying the longest export first; then checks the
 * volume directory. */
static int first_mount(struct nfsfs *fs, struct vd_err *err)
{
	struct conn *c = &fs->conns[0];
	int last = -ENOENT;
	for (int i = 0;; i++) {
		int r = nfs_url_split(fs->url.path, i, fs->export, sizeof(fs->export), fs->inner,
				      sizeof(fs->inner));
		if (r < 0)
			return vd_err_set(err, r, "url: path too long");
		if (r == 0)
			break;
		double deadline = now_ms() + fs->timeout_ms;
		int rc = conn_connect(fs, c, deadline);
		if (rc == 0) {
			if (!fs->inner[0])
				return 0;
			/* The server mounted a parent: the volume must be a directory in it. */
			struct nfs_stat_64 st;
			struct call call;
			call_init(&call, CALL_STAT, &st, sizeof(st));
			rc = call_run(fs, c, &call, nfs_stat64_async(c->nfs, fs->inner, call_cb, &call),
				      deadline);
			if (rc == 0 && (st.nfs_mode & S_IFMT) == S_IFDIR)
				return 0;
			if (c->nfs) {
				nfs_destroy_context(c->nfs);
				c->nfs = NULL;
			}
			if (rc == 0)
				return vd_err_set(err, -ENOTDIR, "%s is not a directory in export %s",
						  fs->inner, fs->export);
			if (!is_transport(rc))
				return vd_err_set(err, rc, "volume directory %s in export %s: %s",
						  fs->inner, fs->export, strerror(-rc));
		}
		last = rc;
		if (is_transport(rc))
			break;   /* the server is unreachable: shorter paths will not help */
		/* The MOUNT was refused: try the parent as the export. */
	}
	fs->export[0] = fs->inner[0] = '\0';
	if (is_transport(last))
		return vd_err_set(err, -EIO, "cannot reach the NFS server %s (error %d: %s)",
				  fs->url.host, -last, strerror(-last));
	return vd_err_set(err, last < 0 ? last : -EIO,
			  "the server %s refused to mount %s or any parent of it (%s)",
			  fs->url.host, fs->url.path, strerror(last < 0 ? -last : EIO));
}

int nfsfs_new(const struct nfsfs_config *cfg, struct nfsfs **ret, struct vd_err *err)
{
	if (cfg->timeout_ms < 1000)
		return vd_err_set(err, -EINVAL, "timeout %d ms: at least 1000", cfg->timeout_ms);
	if (cfg->retries < 0)
		return vd_err_set(err, -EINVAL, "retries %d: at least 0", cfg->retries);
	if (cfg->connections < 1 || cfg->connections > NFSFS_MAX_CONNS)
		return vd_err_set(err, -EINVAL, "connections %d: 1..%d", cfg->connections,
				  NFSFS_MAX_CONNS);
	struct nfsfs *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return vd_err_set(err, -ENOMEM, "out of memory");
	int rc = nfs_url_parse(cfg->url, &fs->url, err);
	if (rc < 0)
		goto fail_free;
	if (nfs_url_libnfs(&fs->url, fs->lib_url, sizeof(fs->lib_url)) < 0 ||
	    nfs_url_display(&fs->url, fs->display, sizeof(fs->display)) < 0) {
		rc = vd_err_set(err, -EINVAL, "url: too long");
		goto fail_free;
	}
	snprintf(fs->server, sizeof(fs->server), "%s", fs->url.host);
	fs->timeout_ms = cfg->timeout_ms;
	fs->retries = cfg->retries;
	fs->nconns = cfg->connections;
	for (int i = 0; i < fs->nconns; i++)
		fs->conns[i].id = i;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&fs->lock, NULL);
	rc = first_mount(fs, err);
	if (rc < 0)
		goto fail_sync;
	*ret = fs;
	return 0;

fail_sync:
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
fail_free:
	free(fs);
	return rc;
}

void nfsfs_free(struct nfsfs *fs)
{
	if (!fs)
		return;
	for (int i = 0; i < fs->nconns; i++)
		if (fs->conns[i].nfs)
			nfs_destroy_context(fs->conns[i].nfs);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->cond);
	free(fs);
}

const char *nfsfs_display_url(const struct nfsfs *fs)
{
	return fs->display;
}

const char *nfsfs_export(const struct nfsfs *fs)
{
	return fs->export;
}

const char *nfsfs_inner(const struct nfsfs *fs)
{
	return fs->inner;
}

void nfsfs_get_stats(struct nfsfs *fs, struct nfsfs_stats *ret)
{
	ret->requests = atomic_load(&fs->n_requests);
	ret->reconnects = atomic_load(&fs->n_reconnects);
	ret->conn_lost = atomic_load(&fs->n_lost);
	ret->timeouts = atomic_load(&fs->n_timeouts);
	ret->eio = atomic_load(&fs->n_eio);
}
