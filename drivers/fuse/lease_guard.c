/* lease_guard.c — see lease_guard.h. */
#include "lease_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../../volumed/lease.h"
#include "../../volumed/log.h"

static const char *lease_path;             /* NULL: no lease, nothing guarded */
static char boot_id[VD_LEASE_BOOT_ID_LEN + 1];
static atomic_llong until_ms;             /* the last lease read */
static atomic_int expired;                /* sticky */
static pthread_mutex_t reread = PTHREAD_MUTEX_INITIALIZER;
static struct fuse_operations inner;      /* the file system's own entries */

int lease_guard_init(const char *path, char *why, size_t len)
{
	struct vd_err err = VD_ERR_INIT;
	struct vd_lease l;
	if (vd_lease_boot_id(boot_id, &err) < 0 || vd_lease_read(path, &l, &err) < 0) {
		snprintf(why, len, "%s", vd_err_msg(&err));
		return -1;
	}
	if (!vd_lease_holds(&l, boot_id, vd_lease_now_ms())) {
		snprintf(why, len, "the node's lease (%s) has run out: the controller has not "
			 "heard from this node lately", path);
		return -1;
	}
	lease_path = path;
	atomic_store(&until_ms, l.until_ms);
	return 0;
}

/* 1 while the lease holds; the first time it is found over, 0 for good. */
static int lease_holds(void)
{
	if (atomic_load(&expired))
		return 0;
	long long now = vd_lease_now_ms();
	if (now < atomic_load(&until_ms))
		return 1;
	pthread_mutex_lock(&reread);
	struct vd_lease l;
	struct vd_err err = VD_ERR_INIT;
	int ok = atomic_load(&expired) ? 0 : now < atomic_load(&until_ms) ? 1
		: vd_lease_read(lease_path, &l, &err) == 0 && vd_lease_holds(&l, boot_id, now);
	if (ok) {
		if (now >= atomic_load(&until_ms))
			atomic_store(&until_ms, l.until_ms);
	} else if (!atomic_exchange(&expired, 1)) {
		vd_log(VD_LOG_ERROR, "event=lease-expired lease=%s detail=\"%s\": changes to the "
		       "volume fail with EIO from now on", lease_path,
		       err.code ? vd_err_msg(&err) : "not renewed");
	}
	pthread_mutex_unlock(&reread);
	return ok;
}

#define GUARD(call) (lease_holds() ? (call) : -EIO)

static int g_mknod(const char *p, mode_t m, dev_t d) { return GUARD(inner.mknod(p, m, d)); }
static int g_mkdir(const char *p, mode_t m) { return GUARD(inner.mkdir(p, m)); }
static int g_unlink(const char *p) { return GUARD(inner.unlink(p)); }
static int g_rmdir(const char *p) { return GUARD(inner.rmdir(p)); }
static int g_symlink(const char *a, const char *b) { return GUARD(inner.symlink(a, b)); }
static int g_link(const char *a, const char *b) { return GUARD(inner.link(a, b)); }

static int g_rename(const char *a, const char *b, unsigned int f)
{
	return GUARD(inner.rename(a, b, f));
}

static int g_chmod(const char *p, mode_t m, struct fuse_file_info *fi)
{
	return GUARD(inner.chmod(p, m, fi));
}

static int g_chown(const char *p, uid_t u, gid_t g, struct fuse_file_info *fi)
{
	return GUARD(inner.chown(p, u, g, fi));
}

static int g_truncate(const char *p, off_t o, struct fuse_file_info *fi)
{
	return GUARD(inner.truncate(p, o, fi));
}

static int g_open(const char *p, struct fuse_file_info *fi)
{
	return fi->flags & O_TRUNC ? GUARD(inner.open(p, fi)) : inner.open(p, fi);
}

static int g_write(const char *p, const char *b, size_t s, off_t o, struct fuse_file_info *fi)
{
	return GUARD(inner.write(p, b, s, o, fi));
}

static int g_write_buf(const char *p, struct fuse_bufvec *b, off_t o, struct fuse_file_info *fi)
{
	return GUARD(inner.write_buf(p, b, o, fi));
}

static int g_fsync(const char *p, int d, struct fuse_file_info *fi)
{
	return GUARD(inner.fsync(p, d, fi));
}

static int g_create(const char *p, mode_t m, struct fuse_file_info *fi)
{
	return GUARD(inner.create(p, m, fi));
}

static int g_utimens(const char *p, const struct timespec tv[2], struct fuse_file_info *fi)
{
	return GUARD(inner.utimens(p, tv, fi));
}

static int g_fallocate(const char *p, int m, off_t o, off_t l, struct fuse_file_info *fi)
{
	return GUARD(inner.fallocate(p, m, o, l, fi));
}

static int g_setxattr(const char *p, const char *n, const char *v, size_t s, int f)
{
	return GUARD(inner.setxattr(p, n, v, s, f));
}

static int g_removexattr(const char *p, const char *n) { return GUARD(inner.removexattr(p, n)); }

static ssize_t g_copy_file_range(const char *pi, struct fuse_file_info *fi, off_t oi,
				 const char *po, struct fuse_file_info *fo, off_t oo, size_t s,
				 int f)
{
	return lease_holds() ? inner.copy_file_range(pi, fi, oi, po, fo, oo, s, f) : -EIO;
}

#define WRAP(op) do { if (ops->op) ops->op = g_##op; } while (0)

void lease_guard_wrap(struct fuse_operations *ops)
{
	if (!lease_path)
		return;
	inner = *ops;
	WRAP(mknod);
	WRAP(mkdir);
	WRAP(unlink);
	WRAP(rmdir);
	WRAP(symlink);
	WRAP(link);
	WRAP(rename);
	WRAP(chmod);
	WRAP(chown);
	WRAP(truncate);
	WRAP(open);
	WRAP(write);
	WRAP(write_buf);
	WRAP(fsync);
	WRAP(create);
	WRAP(utimens);
	WRAP(fallocate);
	WRAP(setxattr);
	WRAP(removexattr);
	WRAP(copy_file_range);
}
