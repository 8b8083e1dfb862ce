/* local.c — the `local` driver: volumes on this host's disk.
 *
 * A volume without a size is a directory, <state_dir>/local/<name>/data,
 * bound into containers as it is. A sized volume is a sparse image file,
 * <state_dir>/local/<name>/disk.img, formatted ext4 or xfs and loop-mounted
 * on <state_dir>/local/<name>/mnt while staged.
 *
 * Threads: the core serializes ops on one volume; different volumes share
 * nothing here but the settings, read-only after init. No locks. */
#include "driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../volumed/mount.h"
#include "../volumed/names.h"

#define LOCAL_OPTIONS "size, fstype"
#define LOCAL_FSTYPES "ext4, xfs"
#define LOCAL_SIZE_MAX (64ULL << 40)

/* The filesystems a sized volume may have, with mkfs' smallest size. */
static const struct local_fs {
	const char *name;
	uint64_t min_size;
} local_fs[] = {
	{ "ext4", 16ULL << 20 },
	{ "xfs", 300ULL << 20 },
};

struct local {
	char *root;                  /* <state_dir>/local */
	const char *default_fstype;  /* a local_fs name */
};

/* A volume's spec, read back: size 0 is a directory volume. */
struct local_spec {
	uint64_t size;
	const char *fstype;          /* a local_fs name; NULL for directories */
};

static const struct local_fs *local_fs_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof(local_fs) / sizeof(local_fs[0]); i++)
		if (strcmp(local_fs[i].name, name) == 0)
			return &local_fs[i];
	return NULL;
}

static int local_fs_get(const char *what, const json_t *value, const struct local_fs **ret_fs,
			struct vd_err *err)
{
	const struct local_fs *fs = local_fs_find(json_string_value(value));
	if (!fs)
		return vd_err_set(err, -EINVAL, "%s '%.40s' is not supported by driver local; "
				  "accepted: " LOCAL_FSTYPES, what,
				  json_is_string(value) ? json_string_value(value) : "(not a string)");
	*ret_fs = fs;
	return 0;
}

/* ---- paths ----------------------------------------------------------- */

/* The core validates names; this re-checks what keeps paths inside root.
 * what: "volume name" or "snapshot id". */
static int local_name_check(const char *what, const char *name, struct vd_err *err)
{
	if (!name || !*name || name[0] == '.' || strchr(name, '/') || strlen(name) > VD_NAME_MAX)
		return vd_err_set(err, -EINVAL, "%s '%.60s' is not usable by driver local; "
				  "allowed: " VD_NAME_RULE, what, name ? name : "");
	return 0;
}

/* "<root>/<name>" or "<root>/<name>/<leaf>" into buf (PATH_MAX bytes). */
static int local_path(const struct local *l, const char *name, const char *leaf, char *buf,
		      struct vd_err *err)
{
	int r = local_name_check("volume name", name, err);
	if (r < 0)
		return r;
	int n = snprintf(buf, PATH_MAX, "%s/%s%s%s", l->root, name, leaf ? "/" : "",
			 leaf ? leaf : "");
	if (n < 0 || n >= PATH_MAX)
		return vd_err_set(err, -ENAMETOOLONG, "path of volume %s is longer than %d bytes",
				  name, PATH_MAX - 1);
	return 0;
}

/* mkdir that accepts an existing directory (not a symlink to one). */
static int mkdir_dir(const char *path, mode_t mode, struct vd_err *err)
{
	struct stat st;
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return vd_err_set(err, -errno, "create directory %s: %s", path, strerror(errno));
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return vd_err_set(err, -ENOTDIR, "%s exists and is not a directory", path);
	return 0;
}

static int fsync_dir(const char *path, struct vd_err *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vd_err_set(err, -e, "fsync directory %s: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

/* ---- removal: no symlink followed, no mount crossed -------------------- */

/* A directory being emptied, remembered to climb back to its parent. */
struct rm_frame {
	dev_t parent_dev;
	ino_t parent_ino;
	char *name;
};

struct rm_walk {
	const char *top;          /* the tree's path, for messages */
	dev_t dev;                /* the tree's filesystem */
	struct rm_frame *stack;
	size_t depth, cap;
};

/* Removes name in dirfd: 0 when gone (or absent), 1 when it is a non-empty
 * directory, <0 on error. */
static int rm_entry(const struct rm_walk *w, int dirfd, const char *name, struct vd_err *err)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno == EISDIR && (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT))
		return 0;
	if (errno == ENOTEMPTY || errno == EEXIST)
		return 1;
	return vd_err_set(err, -errno, "remove %s (in %s): %s%s", name, w->top, strerror(errno),
			  errno == EBUSY ? " (a mount point: unmount it first)" : "");
}

/* Removes what it can in the directory fd; 1 with *ret_sub set when a
 * non-empty subdirectory must be entered first, 0 when fd is empty. */
static int rm_dir_entries(const struct rm_walk *w, int fd, char **ret_sub, struct vd_err *err)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return vd_err_set(err, -e, "read directory in %s: %s", w->top, strerror(e));
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = rm_entry(w, fd, de->d_name, err);
		if (r == 1 && !(*ret_sub = strdup(de->d_name)))
			r = vd_err_set(err, -ENOMEM, "remove %s: out of memory", w->top);
	}
	if (r == 0 && errno != 0)
		r = vd_err_set(err, -errno, "read directory in %s: %s", w->top, strerror(errno));
	closedir(d);
	return r;
}

/* Enters subdirectory sub of *fd (taking sub); refuses to cross a mount. */
static int rm_descend(struct rm_walk *w, int *fd, char *sub, struct vd_err *err)
{
	struct stat here, st;
	if (w->depth == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct rm_frame *bigger = realloc(w->stack, cap * sizeof(*bigger));
		if (!bigger) {
			free(sub);
			return vd_err_set(err, -ENOMEM, "remove %s: out of memory", w->top);
		}
		w->stack = bigger;
		w->cap = cap;
	}
	int child = openat(*fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = 0;
	if (child < 0 || fstat(*fd, &here) < 0 || fstat(child, &st) < 0)
		r = vd_err_set(err, -errno, "open %s (in %s): %s", sub, w->top, strerror(errno));
	else if (st.st_dev != w->dev)
		r = vd_err_set(err, -EBUSY, "%s (in %s) is a mount point; unmount it first", sub,
			       w->top);
	if (r < 0) {
		if (child >= 0)
			close(child);
		free(sub);
		return r;
	}
	w->stack[w->depth++] = (struct rm_frame){ here.st_dev, here.st_ino, sub };
	close(*fd);
	*fd = child;
	return 0;
}

/* Climbs from the emptied *fd to its parent, checking it is still the one
 * entered from, and removes the emptied directory. */
static int rm_ascend(struct rm_walk *w, int *fd, struct vd_err *err)
{
	struct rm_frame f = w->stack[--w->depth];
	struct stat st;
	int up = openat(*fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;
	if (up < 0 || fstat(up, &st) < 0)
		r = vd_err_set(err, -errno, "open parent of %s (in %s): %s", f.name, w->top,
			       strerror(errno));
	else if (st.st_dev != f.parent_dev || st.st_ino != f.parent_ino)
		r = vd_err_set(err, -ESTALE, "remove %s: %s was moved during the removal; retry",
			       w->top, f.name);
	if (r < 0) {
		if (up >= 0)
			close(up);
		free(f.name);
		return r;
	}
	close(*fd);
	*fd = up;
	r = rm_entry(w, up, f.name, err);   /* 1: refilled meanwhile; rescanned next */
	free(f.name);
	return r < 0 ? r : 0;
}

/* Empties the directory fd (closed here) depth first, holding one fd and a
 * stack of names rather than one fd per level. */
static int rm_walk_tree(struct rm_walk *w, int fd, struct vd_err *err)
{
	int r;
	for (;;) {
		char *sub = NULL;
		r = rm_dir_entries(w, fd, &sub, err);
		if (r == 1)
			r = rm_descend(w, &fd, sub, err);
		else if (r == 0 && w->depth > 0)
			r = rm_ascend(w, &fd, err);
		else
			break;
		if (r < 0)
			break;
	}
	close(fd);
	while (w->depth > 0)
		free(w->stack[--w->depth].name);
	free(w->stack);
	return r;
}

/* Removes parent/name and everything below it. Absent is 0. */
static int rm_tree(const char *parent, const char *name, const char *top, struct vd_err *err)
{
	struct rm_walk w = { .top = top };
	int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT ? 0 : vd_err_set(err, -errno, "open %s: %s", parent,
							   strerror(errno));
	int r = rm_entry(&w, pfd, name, err);
	if (r == 1) {
		struct stat st;
		int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = vd_err_set(err, -errno, "open %s: %s", top, strerror(errno));
			if (fd >= 0)
				close(fd);
		} else {
			w.dev = st.st_dev;
			r = rm_walk_tree(&w, fd, err);
		}
		if (r == 0 && rm_entry(&w, pfd, name, err) == 1)
			r = vd_err_set(err, -ENOTEMPTY, "remove %s: files were added during the "
				       "removal; retry", top);
	}
	close(pfd);
	return r;
}

/* ---- specs and options ---------------------------------------------- */

static int spec_read(const json_t *spec, struct local_spec *ret, struct vd_err *err)
{
	const json_t *size = json_object_get(spec, "size_bytes");
	const struct local_fs *fs;
	if (spec && !json_is_object(spec))
		return vd_err_set(err, -EINVAL, "volume spec for driver local is not a JSON object");
	if (!size) {
		*ret = (struct local_spec){ 0, NULL };
		return 0;
	}
	if (!json_is_integer(size) || json_integer_value(size) <= 0)
		return vd_err_set(err, -EINVAL, "volume spec: size_bytes must be a positive integer");
	int r = local_fs_get("volume spec: fstype", json_object_get(spec, "fstype"), &fs, err);
	if (r < 0)
		return r;
	*ret = (struct local_spec){ (uint64_t)json_integer_value(size), fs->name };
	return 0;
}

static int size_check(uint64_t size, const struct local_fs *fs, struct vd_err *err)
{
	char have[32], min[32], max[32];
	if (size >= fs->min_size && size <= LOCAL_SIZE_MAX)
		return 0;
	vd_size_format(size, have, sizeof(have));
	vd_size_format(fs->min_size, min, sizeof(min));
	vd_size_format(LOCAL_SIZE_MAX, max, sizeof(max));
	return vd_err_set(err, -EINVAL, "size %s is too %s for %s; allowed: %s to %s", have,
			  size < fs->min_size ? "small" : "large", fs->name, min, max);
}

static int local_parse_options(void *priv, const json_t *opts, json_t **ret_spec,
			       struct vd_err *err)
{
	const struct local *l = priv;
	const json_t *size_opt = NULL, *fstype_opt = NULL;
	const char *key;
	json_t *value;

	if (opts && !json_is_object(opts))
		return vd_err_set(err, -EINVAL, "options for driver local must be a JSON object; "
				  "accepted keys: " LOCAL_OPTIONS);
	json_object_foreach((json_t *)opts, key, value) {
		if (strcmp(key, "size") == 0)
			size_opt = value;
		else if (strcmp(key, "fstype") == 0)
			fstype_opt = value;
		else
			return vd_err_set(err, -EINVAL, "unknown option '%.40s' for driver local; "
					  "accepted: " LOCAL_OPTIONS, key);
		if (!json_is_string(value))
			return vd_err_set(err, -EINVAL, "option '%s' for driver local must be a string, "
					  "like \"%s\"", key, value == size_opt ? "10GiB" : "ext4");
	}
	if (!size_opt && fstype_opt)
		return vd_err_set(err, -EINVAL, "option fstype needs size: a volume without size is "
				  "a plain directory, with size an image formatted " LOCAL_FSTYPES);
	json_t *spec;
	if (!size_opt) {
		spec = json_object();
	} else {
		const struct local_fs *fs = local_fs_find(l->default_fstype);
		uint64_t size;
		int r = fstype_opt ? local_fs_get("fstype", fstype_opt, &fs, err) : 0;
		if (r == 0 && (r = vd_size_parse(json_string_value(size_opt), &size, err)) < 0)
			vd_err_prefix(err, "option size");
		if (r == 0)
			r = size_check(size, fs, err);
		if (r < 0)
			return r;
		spec = json_pack("{s:I,s:s}", "size_bytes", (json_int_t)size, "fstype", fs->name);
	}
	if (!spec)
		return vd_err_set(err, -ENOMEM, "driver local: out of memory");
	*ret_spec = spec;
	return 0;
}

/* ---- the volume ops ----------------------------------------------------- */

/* 1 when img is there already, made by an earlier call with the same size;
 * 0 when it is absent and a leftover tmp was cleared for a new attempt. */
static int image_begin(const char *img, const char *tmp, const struct local_spec *ls,
		       struct vd_err *err)
{
	struct stat st;
	if (lstat(img, &st) == 0) {
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == ls->size)
			return 1;
		return vd_err_set(err, -EEXIST, "%s exists with %lld bytes but the volume needs a "
				  "%llu-byte image; remove the volume first", img,
				  (long long)st.st_size, (unsigned long long)ls->size);
	}
	if (errno != ENOENT)
		return vd_err_set(err, -errno, "%s: %s", img, strerror(errno));
	if (unlink(tmp) < 0 && errno != ENOENT)
		return vd_err_set(err, -errno, "remove leftover %s: %s", tmp, strerror(errno));
	return 0;
}

/* Formats a fresh image next to the final one and renames it into place,
 * so a crash never leaves a half-formatted disk.img. */
static int create_image(const char *dir, const struct local_spec *ls, struct vd_err *err)
{
	char img[PATH_MAX], tmp[PATH_MAX];
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	if (snprintf(tmp, sizeof(tmp), "%s/disk.img.tmp", dir) >= (int)sizeof(tmp))
		return vd_err_set(err, -ENAMETOOLONG, "path %s/disk.img.tmp is too long", dir);

	int r = image_begin(img, tmp, ls, err);
	if (r != 0)
		return r < 0 ? r : 0;
	r = vd_mount_make_sparse(tmp, ls->size, err);
	if (r < 0)
		return r;
	r = vd_mount_mkfs(tmp, ls->fstype, err);
	if (r == 0 && rename(tmp, img) < 0)
		r = vd_err_set(err, -errno, "rename %s to %s: %s", tmp, img, strerror(errno));
	if (r == 0)
		r = fsync_dir(dir, err);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int local_create(void *priv, const char *name, const json_t *spec, json_t **ret_data,
			struct vd_err *err)
{
	const struct local *l = priv;
	struct local_spec ls;
	char dir[PATH_MAX], data[PATH_MAX];
	int r = spec_read(spec, &ls, err);
	if (r == 0)
		r = local_path(l, name, NULL, dir, err);
	if (r == 0)
		r = local_path(l, name, "data", data, err);
	if (r == 0)
		r = mkdir_dir(dir, 0755, err);
	if (r == 0 && ls.size == 0)
		r = mkdir_dir(data, 0755, err);
	else if (r == 0)
		r = create_image(dir, &ls, err);
	if (r == 0)
		r = fsync_dir(l->root, err);
	if (r < 0)
		return r;
	*ret_data = NULL;
	return 0;
}

static int local_remove(void *priv, const char *name, const json_t *spec, const json_t *data,
			struct vd_err *err)
{
	const struct local *l = priv;
	char dir[PATH_MAX], mnt[PATH_MAX];
	(void)spec;   /* whatever the kind, the volume's directory goes */
	(void)data;
	int r = local_path(l, name, NULL, dir, err);
	if (r == 0)
		r = local_path(l, name, "mnt", mnt, err);
	if (r == 0)
		r = vd_mount_is_mounted(mnt, err);
	if (r == 1)
		return vd_err_set(err, -EBUSY, "volume %s is mounted on %s; unstage it before "
				  "removing it", name, mnt);
	if (r == 0)
		r = rm_tree(l->root, name, dir, err);
	return r;
}

/* ---- growing ------------------------------------------------------------ */

/* Present while the image is larger than its file system: written before the
 * image grows, removed once the file system has grown (online, by expand or
 * node_expand, or by the next stage), so a crash between the two is healed. */
#define GROW_MARKER "grow-pending"
#define LOOP_GONE_MS 5000   /* an autoclear loop device goes after its last unmount */

static int grow_mark(const struct local *l, const char *name, struct vd_err *err)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int r = local_path(l, name, GROW_MARKER, path, err);
	if (r == 0)
		r = local_path(l, name, NULL, dir, err);
	if (r < 0)
		return r;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return vd_err_set(err, -errno, "create %s: %s", path, strerror(errno));
	close(fd);
	return fsync_dir(dir, err);
}

/* Grows the file system of the image mounted on mnt, or with mnt NULL of
 * the unmounted image (ext4 only: else 0, the marker kept for the mount),
 * and clears the marker. */
static int grow_now(const struct local *l, const char *name, const struct local_spec *ls,
		    const char *img, const char *mnt, struct vd_err *err)
{
	char marker[PATH_MAX];
	int r = local_path(l, name, GROW_MARKER, marker, err);
	if (r == 0 && !mnt) {
		struct vd_err why = VD_ERR_INIT;
		vd_mount_loop_wait_gone(img, LOOP_GONE_MS);   /* the last unstage's device */
		r = vd_mount_grow_offline(img, ls->fstype, &why);
		if (r == -EOPNOTSUPP || r == -EBUSY)
			return 0;   /* xfs, or a device in use: grown once mounted */
		if (r < 0)
			vd_err_set(err, r, "%s", why.msg);
	} else if (r == 0) {
		r = vd_mount_grow(img, mnt, ls->fstype, err);
	}
	if (r == 0 && unlink(marker) < 0 && errno != ENOENT)
		r = vd_err_set(err, -errno, "remove %s: %s", marker, strerror(errno));
	if (r < 0)
		vd_err_prefix(err, "volume %s: grow the file system", name);
	return r;
}

/* At stage, before the mount (mnt NULL) and after: grows the file system
 * when an expand or a larger clone left the marker. Without it (the common
 * case) no program runs. */
static int grow_pending(const struct local *l, const char *name, const struct local_spec *ls,
			const char *img, const char *mnt, struct vd_err *err)
{
	char marker[PATH_MAX];
	struct stat st;
	int r = local_path(l, name, GROW_MARKER, marker, err);
	if (r < 0)
		return r;
	if (lstat(marker, &st) < 0)
		return errno == ENOENT ? 0 : vd_err_set(err, -errno, "%s: %s", marker,
							 strerror(errno));
	return grow_now(l, name, ls, img, mnt, err);
}

/* Grows a mounted file system now if the marker says so; otherwise only a
 * loop device attached for block access learns the new size, and the
 * marker waits for stage. */
static int grow_if_staged(const struct local *l, const char *name, const struct local_spec *ls,
			  const char *img, const char *mnt, struct vd_err *err)
{
	int r = vd_mount_is_mounted(mnt, err);
	if (r < 0)
		return r;
	return r ? grow_pending(l, name, ls, img, mnt, err)
		 : vd_mount_grow(img, NULL, ls->fstype, err);
}

/* Grows the image file to size bytes (sparse); never shrinks it. */
static int image_grow(const char *img, uint64_t size, struct vd_err *err)
{
	struct stat st;
	int fd = open(img, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return vd_err_set(err, -errno, "open image %s: %s", img, strerror(errno));
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = vd_err_set(err, -errno, "stat %s: %s", img, strerror(errno));
	else if ((uint64_t)st.st_size < size && ftruncate(fd, (off_t)size) < 0)
		r = vd_err_set(err, -errno, "grow %s to %llu bytes: %s", img,
			       (unsigned long long)size, strerror(errno));
	else if (fsync(fd) < 0)
		r = vd_err_set(err, -errno, "fsync %s: %s", img, strerror(errno));
	close(fd);
	return r;
}

/* The path stage returns, and the image behind it for sized volumes. */
static int stage_paths(const struct local *l, const char *name, const json_t *spec,
		       struct local_spec *ls, char *path, char *img, struct vd_err *err)
{
	int r = spec_read(spec, ls, err);
	if (r == 0)
		r = local_path(l, name, ls->size ? "mnt" : "data", path, err);
	if (r == 0 && img)
		r = local_path(l, name, "disk.img", img, err);
	return r;
}

static int local_stage(void *priv, const char *name, const json_t *spec, const json_t *data,
		       char **ret_path, struct vd_err *err)
{
	const struct local *l = priv;
	struct local_spec ls;
	char path[PATH_MAX], img[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	(void)data;
	int r = stage_paths(l, name, spec, &ls, path, img, err);
	if (r == 0)
		r = local_path(l, name, NULL, dir, err);
	if (r == 0 && ls.size == 0) {
		r = mkdir_dir(dir, 0755, err);
		if (r == 0)
			r = mkdir_dir(path, 0755, err);
	} else if (r == 0 && lstat(img, &st) < 0) {
		r = vd_err_set(err, -errno, "volume %s: image %s: %s; create the volume again", name,
			       img, strerror(errno));
	} else if (r == 0) {
		r = grow_pending(l, name, &ls, img, NULL, err);   /* ext4: before mounting */
		if (r == 0)
			r = vd_mount_image(img, path, ls.fstype, err);
		if (r == 0)
			r = grow_pending(l, name, &ls, img, path, err);
	}
	if (r < 0)
		return r;
	char *copy = strdup(path);
	if (!copy)
		return vd_err_set(err, -ENOMEM, "driver local: out of memory");
	*ret_path = copy;
	return 0;
}

static int local_unstage(void *priv, const char *name, const json_t *spec, const json_t *data,
			 struct vd_err *err)
{
	struct local_spec ls;
	char path[PATH_MAX];
	(void)data;
	int r = stage_paths(priv, name, spec, &ls, path, NULL, err);
	if (r < 0 || ls.size == 0)
		return r;
	return vd_mount_unmount(path, err);
}

static int local_is_staged(void *priv, const char *name, const json_t *spec, const json_t *data,
			   struct vd_err *err)
{
	struct local_spec ls;
	char path[PATH_MAX];
	struct stat st;
	(void)data;
	int r = stage_paths(priv, name, spec, &ls, path, NULL, err);
	if (r < 0)
		return r;
	if (ls.size)
		return vd_mount_is_mounted(path, err);
	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode);
	return errno == ENOENT ? 0 : vd_err_set(err, -errno, "%s: %s", path, strerror(errno));
}

static char *local_mountpoint(void *priv, const char *name, const json_t *spec,
			      const json_t *data)
{
	struct local_spec ls;
	char path[PATH_MAX];
	(void)data;
	return stage_paths(priv, name, spec, &ls, path, NULL, NULL) < 0 ? NULL : strdup(path);
}

static void local_describe(void *priv, const json_t *spec, const json_t *data, json_t *status)
{
	struct local_spec ls;
	char size[32];
	(void)priv;
	(void)data;
	if (!status || spec_read(spec, &ls, NULL) < 0)
		return;
	if (ls.size == 0) {
		json_object_set_new(status, "type", json_string("directory"));
		return;
	}
	vd_size_format(ls.size, size, sizeof(size));
	json_object_set_new(status, "type", json_string("image"));
	json_object_set_new(status, "size", json_string(size));
	json_object_set_new(status, "size_bytes", json_integer((json_int_t)ls.size));
	json_object_set_new(status, "fstype", json_string(ls.fstype));
}

/* ---- size and expansion ---------------------------------------------------- */

static uint64_t local_spec_size(void *priv, const json_t *spec)
{
	struct local_spec ls;
	(void)priv;
	return spec_read(spec, &ls, NULL) < 0 ? 0 : ls.size;
}

static int local_expand(void *priv, const char *name, const json_t *spec, const json_t *data,
			uint64_t new_size, json_t **ret_spec, int *ret_node_pending,
			struct vd_err *err)
{
	int pending = 0;
	const struct local *l = priv;
	struct local_spec ls;
	char mnt[PATH_MAX], img[PATH_MAX], have[32], max[32];
	(void)data;
	int r = stage_paths(l, name, spec, &ls, mnt, img, err);
	if (r < 0)
		return r;
	if (ls.size == 0)
		return vd_err_set(err, -EINVAL, "volume %s cannot be expanded: directory "
				  "volumes have no size; only volumes created with a size can grow",
				  name);
	if (new_size > LOCAL_SIZE_MAX) {
		vd_size_format(new_size, have, sizeof(have));
		vd_size_format(LOCAL_SIZE_MAX, max, sizeof(max));
		return vd_err_set(err, -ERANGE, "volume %s: new size %s is larger than the maximum "
				  "%s", name, have, max);
	}
	uint64_t size = ls.size;
	if (new_size > ls.size) {
		size = (new_size + 4095) & ~(uint64_t)4095;   /* <= the maximum, a multiple */
		r = grow_mark(l, name, err);
		if (r == 0)
			r = image_grow(img, size, err);
		if (r == 0)
			r = grow_if_staged(l, name, &ls, img, mnt, err);
		if (r == -EPERM) {
			vd_err_clear(err);   /* not allowed online (see vd_mount_grow): */
			r = 0;               /* node_expand, or the next stage, grows it */
			pending = 1;
		}
		if (r < 0)
			return r;
	}
	json_t *out = json_pack("{s:I,s:s}", "size_bytes", (json_int_t)size, "fstype", ls.fstype);
	if (!out)
		return vd_err_set(err, -ENOMEM, "driver local: out of memory");
	*ret_spec = out;
	*ret_node_pending = pending;
	return 0;
}

static int local_node_expand(void *priv, const char *name, const json_t *spec,
			     const json_t *data, struct vd_err *err)
{
	struct local_spec ls;
	char mnt[PATH_MAX], img[PATH_MAX];
	(void)data;
	int r = stage_paths(priv, name, spec, &ls, mnt, img, err);
	if (r < 0 || ls.size == 0)
		return r;   /* a directory has nothing to grow */
	return grow_if_staged(priv, name, &ls, img, mnt, err);
}

/* ---- copies: snapshots and clones ------------------------------------------ */

/* Snapshots: <root>/.snapshots/<id>/ holding snapshot.json (the source
 * volume's name and spec) and its content, disk.img or data/, as a volume
 * does. They are built in .tmp-<id> and renamed into place when complete. */
#define SNAP_DIR ".snapshots"
#define SNAP_META "snapshot.json"
#define SNAP_TMP ".tmp-"

/* What a copy reads: a volume's or a snapshot's content. */
struct local_content {
	struct local_spec ls;
	char path[PATH_MAX];          /* its disk.img, or its data directory */
	char mnt[PATH_MAX];           /* a volume's mount point (frozen for the copy) or "" */
	char what[VD_NAME_MAX + 16];  /* "volume x" or "snapshot x", for messages */
};

static const char *content_leaf(const struct local_spec *ls)
{
	return ls->size ? "disk.img" : "data";
}

static const char *kind_of(const struct local_spec *ls)
{
	return ls->size ? "a sized image" : "a directory";
}

/* "<root>/.snapshots", or "<root>/.snapshots/<prefix><id>[/<leaf>]". */
static int snap_path(const struct local *l, const char *prefix, const char *id,
		     const char *leaf, char *buf, struct vd_err *err)
{
	int r = id ? local_name_check("snapshot id", id, err) : 0;
	if (r < 0)
		return r;
	int n = snprintf(buf, PATH_MAX, "%s/" SNAP_DIR "%s%s%s%s%s", l->root, id ? "/" : "",
			 id ? prefix : "", id ? id : "", leaf ? "/" : "", leaf ? leaf : "");
	if (n < 0 || n >= PATH_MAX)
		return vd_err_set(err, -ENAMETOOLONG, "path of snapshot %s is longer than %d bytes",
				  id ? id : "", PATH_MAX - 1);
	return 0;
}

static int content_of_volume(const struct local *l, const char *name, const json_t *spec,
			     struct local_content *c, struct vd_err *err)
{
	int r = spec_read(spec, &c->ls, err);
	if (r == 0)
		r = local_path(l, name, content_leaf(&c->ls), c->path, err);
	if (r == 0)
		r = local_path(l, name, "mnt", c->mnt, err);
	if (r < 0)
		return r;
	snprintf(c->what, sizeof(c->what), "volume %s", name);
	return 0;
}

/* Reads a complete snapshot's snapshot.json: -ENOENT when there is none. */
static int snap_meta_read(const struct local *l, const char *id, json_t **ret_meta,
			  struct vd_err *err)
{
	char path[PATH_MAX];
	json_error_t jerr;
	int r = snap_path(l, "", id, SNAP_META, path, err);
	if (r < 0)
		return r;
	if (access(path, F_OK) < 0)
		return vd_err_set(err, errno == ENOENT ? -ENOENT : -errno, "snapshot %s%s: %s", id,
				  errno == ENOENT ? " does not exist" : "", strerror(errno));
	json_t *meta = json_load_file(path, 0, &jerr);
	if (!json_is_object(meta)) {
		json_decref(meta);
		return vd_err_set(err, -EIO, "snapshot %s: %s is unreadable: %s", id, path,
				  jerr.text);
	}
	*ret_meta = meta;
	return 0;
}

static int content_of_snapshot(const struct local *l, const char *id, struct local_content *c,
			       struct vd_err *err)
{
	json_t *meta = NULL;
	int r = snap_meta_read(l, id, &meta, err);
	if (r == 0 && (r = spec_read(json_object_get(meta, "spec"), &c->ls, err)) < 0)
		vd_err_prefix(err, "snapshot %s", id);
	json_decref(meta);   /* ls holds no pointer into it */
	if (r == 0)
		r = snap_path(l, "", id, content_leaf(&c->ls), c->path, err);
	if (r < 0)
		return r;
	c->mnt[0] = '\0';
	snprintf(c->what, sizeof(c->what), "snapshot %s", id);
	return 0;
}

/* Freezes the file system mounted on mnt, if it is: *ret_fd is the frozen
 * directory's fd, -1 when nothing was frozen. */
static int freeze(const char *mnt, int *ret_fd, struct vd_err *err)
{
	*ret_fd = -1;
	int r = *mnt ? vd_mount_is_mounted(mnt, err) : 0;
	if (r <= 0)
		return r;
	int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, FIFREEZE, 0) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return vd_err_set(err, -e, "freeze %s for a consistent copy: %s", mnt, strerror(e));
	}
	*ret_fd = fd;
	return 0;
}

static int thaw(int fd, const char *mnt, struct vd_err *err)
{
	if (fd < 0)
		return 0;
	int r = 0;
	if (ioctl(fd, FITHAW, 0) < 0)
		r = vd_err_set(err, -errno, "thaw %s: %s; it stays read-only until "
			       "`fsfreeze --unfreeze %s`", mnt, strerror(errno), mnt);
	close(fd);
	return r;
}

/* Copies in to out keeping holes: the data extents only, then the size. */
static int copy_sparse(int in, int out, const char *src, struct vd_err *err)
{
	struct stat st;
	if (fstat(in, &st) < 0)
		return vd_err_set(err, -errno, "stat %s: %s", src, strerror(errno));
	off_t pos = 0;
	while (pos < st.st_size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;   /* a hole up to the end */
		off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return vd_err_set(err, -errno, "find data in %s: %s", src, strerror(errno));
		off_t off_in = data, off_out = data;
		while (off_in < hole) {
			ssize_t n = copy_file_range(in, &off_in, out, &off_out,
						    (size_t)(hole - off_in), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return vd_err_set(err, -errno, "copy %s: %s", src, strerror(errno));
			if (n == 0)
				return vd_err_set(err, -EIO, "copy %s: it shrank meanwhile", src);
		}
		pos = hole;
	}
	if (ftruncate(out, st.st_size) < 0)
		return vd_err_set(err, -errno, "size the copy of %s: %s", src, strerror(errno));
	return 0;
}

/* Copies image src into the new file dst: a reflink where the file system
 * has them, else a sparse copy. A file system mounted on mnt is frozen
 * meanwhile, and always thawed. dst is durable when this returns 0. */
static int copy_image(const char *src, const char *dst, const char *mnt, struct vd_err *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return vd_err_set(err, -errno, "open %s: %s", src, strerror(errno));
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return vd_err_set(err, -e, "create %s: %s", dst, strerror(e));
	}
	int frozen;
	int r = freeze(mnt, &frozen, err);
	if (r == 0 && ioctl(out, FICLONE, in) < 0)
		r = copy_sparse(in, out, src, err);
	int t = thaw(frozen, mnt, r < 0 ? NULL : err);
	if (r == 0)
		r = t;
	if (r == 0 && fsync(out) < 0)
		r = vd_err_set(err, -errno, "fsync %s: %s", dst, strerror(errno));
	close(in);
	close(out);
	if (r < 0)
		unlink(dst);
	return r;
}

/* Copies the directory tree src to the new dst (files, links, modes,
 * owners, times; nothing below a mount point) and flushes it to disk. */
static int copy_tree(const char *src, const char *dst, struct vd_err *err)
{
	char *const cp[] = { "cp", "-a", "--reflink=auto", "--one-file-system", "--",
			     (char *)src, (char *)dst, NULL };
	int r = vd_run(cp, 0, err);   /* as long as the data takes */
	if (r < 0)
		return r;
	int fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0)
		r = vd_err_set(err, -errno, "flush the copy %s: %s", dst, strerror(errno));
	if (fd >= 0)
		close(fd);
	return r;
}

static int copy_content(const struct local_content *src, const char *dst, struct vd_err *err)
{
	int r = src->ls.size ? copy_image(src->path, dst, src->mnt, err)
			     : copy_tree(src->path, dst, err);
	if (r < 0)
		vd_err_prefix(err, "copy %s", src->what);
	return r;
}

/* Bytes a directory tree occupies on disk (nftw has no user pointer). */
static _Thread_local uint64_t tree_bytes_sum;

static int tree_bytes_add(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)type;
	(void)ftw;
	tree_bytes_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* The size of a content: its image's size, or the bytes its tree uses. */
static int content_bytes(const struct local_content *c, uint64_t *ret, struct vd_err *err)
{
	struct stat st;
	if (c->ls.size) {
		if (stat(c->path, &st) < 0)
			return vd_err_set(err, -errno, "%s: %s", c->path, strerror(errno));
		*ret = (uint64_t)st.st_size;
		return 0;
	}
	tree_bytes_sum = 0;
	if (nftw(c->path, tree_bytes_add, 16, FTW_PHYS | FTW_MOUNT) != 0)
		return vd_err_set(err, -errno, "measure %s: %s", c->path, strerror(errno));
	*ret = tree_bytes_sum;
	return 0;
}

/* 1 when snapshot id exists, complete, of volume name; 0 when absent. */
static int snap_exists(const struct local *l, const char *id, const char *name,
		       struct vd_err *err)
{
	json_t *meta = NULL;
	int r = snap_meta_read(l, id, &meta, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	const char *of = json_string_value(json_object_get(meta, "volume"));
	if (!of || strcmp(of, name) != 0)
		r = vd_err_set(err, -EEXIST, "snapshot %s exists already, of volume %s; choose "
			       "another id", id, of ? of : "(unknown)");
	else
		r = 1;
	json_decref(meta);
	return r;
}

static int snap_meta_write(const char *dir, const char *name, const json_t *spec,
			   struct vd_err *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/" SNAP_META, dir) >= (int)sizeof(path))
		return vd_err_set(err, -ENAMETOOLONG, "path %s/" SNAP_META " is too long", dir);
	json_t *meta = json_pack("{s:s,s:O}", "volume", name, "spec", (json_t *)spec);
	int fd = meta ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	int r = 0;
	if (!meta)
		r = vd_err_set(err, -ENOMEM, "driver local: out of memory");
	else if (fd < 0 || json_dumpfd(meta, fd, JSON_COMPACT) < 0 || fsync(fd) < 0)
		r = vd_err_set(err, errno ? -errno : -EIO, "write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	json_decref(meta);
	return r;
}

/* Copies the content into a fresh temporary directory and renames it to
 * the snapshot's name once complete. */
static int snap_build(const struct local *l, const char *name, const json_t *spec,
		      const char *id, const struct local_content *src, struct vd_err *err)
{
	char dir[PATH_MAX], tmp[PATH_MAX], leaf[PATH_MAX], final[PATH_MAX];
	char tmp_name[VD_NAME_MAX + 8];
	snprintf(tmp_name, sizeof(tmp_name), SNAP_TMP "%s", id);
	int r = snap_path(l, NULL, NULL, NULL, dir, err);
	if (r == 0)
		r = snap_path(l, SNAP_TMP, id, NULL, tmp, err);
	if (r == 0)
		r = snap_path(l, SNAP_TMP, id, content_leaf(&src->ls), leaf, err);
	if (r == 0)
		r = snap_path(l, "", id, NULL, final, err);
	if (r == 0)
		r = mkdir_dir(dir, 0700, err);
	if (r == 0)
		r = rm_tree(dir, tmp_name, tmp, err);   /* a leftover from a crash */
	if (r == 0 && mkdir(tmp, 0700) < 0)
		r = vd_err_set(err, -errno, "create %s: %s", tmp, strerror(errno));
	if (r < 0)
		return r;
	r = copy_content(src, leaf, err);
	if (r == 0)
		r = snap_meta_write(tmp, name, spec, err);
	if (r == 0)
		r = fsync_dir(tmp, err);
	if (r == 0 && rename(tmp, final) < 0)
		r = vd_err_set(err, -errno, "rename %s to %s: %s", tmp, final, strerror(errno));
	if (r == 0)
		return fsync_dir(dir, err);
	rm_tree(dir, tmp_name, tmp, NULL);
	return r;
}

static int local_snapshot_create(void *priv, const char *name, const json_t *spec,
				 const json_t *data, const char *snap_id, uint64_t *ret_bytes,
				 struct vd_err *err)
{
	const struct local *l = priv;
	struct local_content src, snap;
	(void)data;
	int r = content_of_volume(l, name, spec, &src, err);
	if (r == 0)
		r = snap_exists(l, snap_id, name, err);
	if (r == 0 && access(src.path, F_OK) < 0)
		r = vd_err_set(err, -errno, "volume %s: %s: %s", name, src.path, strerror(errno));
	if (r == 0)
		r = snap_build(l, name, spec, snap_id, &src, err);
	if (r >= 0)
		r = content_of_snapshot(l, snap_id, &snap, err);
	if (r == 0)
		r = content_bytes(&snap, ret_bytes, err);
	return r;
}

static int local_snapshot_delete(void *priv, const char *snap_id, struct vd_err *err)
{
	const struct local *l = priv;
	char dir[PATH_MAX], path[PATH_MAX];
	int r = snap_path(l, NULL, NULL, NULL, dir, err);
	if (r == 0)
		r = snap_path(l, "", snap_id, NULL, path, err);
	if (r == 0)
		r = rm_tree(dir, snap_id, path, err);
	if (r == 0 && access(dir, F_OK) == 0)
		r = fsync_dir(dir, err);   /* the removal is durable */
	return r;
}

/* A copy must be of the same kind and file system as its source, and not
 * smaller. */
static int content_fits(const struct local_content *src, const char *name,
			const struct local_spec *ls, struct vd_err *err)
{
	char want[32], have[32];
	if (!ls->size != !src->ls.size)
		return vd_err_set(err, -EINVAL, "volume %s would be %s but %s is %s; a copy must "
				  "be of the same kind as its source", name, kind_of(ls), src->what,
				  kind_of(&src->ls));
	if (ls->size && strcmp(ls->fstype, src->ls.fstype) != 0)
		return vd_err_set(err, -EINVAL, "volume %s would be %s but %s is %s; a copy must "
				  "have its source's fstype", name, ls->fstype, src->what,
				  src->ls.fstype);
	if (ls->size >= src->ls.size)
		return 0;
	vd_size_format(ls->size, want, sizeof(want));
	vd_size_format(src->ls.size, have, sizeof(have));
	return vd_err_set(err, -ERANGE, "volume %s would be %s but %s is %s; a copy may be "
			  "larger than its source, never smaller", name, want, src->what, have);
}

/* A clone's image: the source's copied, grown to the new size (its file
 * system then grows at the first stage), renamed into place when done. */
static int clone_image(const struct local *l, const char *name, const struct local_spec *ls,
		       const struct local_content *src, struct vd_err *err)
{
	char dir[PATH_MAX], img[PATH_MAX], tmp[PATH_MAX];
	int r = local_path(l, name, NULL, dir, err);
	if (r == 0)
		r = local_path(l, name, "disk.img", img, err);
	if (r == 0)
		r = local_path(l, name, "disk.img.tmp", tmp, err);
	if (r == 0)
		r = image_begin(img, tmp, ls, err);
	if (r != 0)
		return r < 0 ? r : 0;
	r = copy_content(src, tmp, err);
	if (r == 0 && ls->size > src->ls.size && (r = grow_mark(l, name, err)) == 0)
		r = image_grow(tmp, ls->size, err);
	if (r == 0 && rename(tmp, img) < 0)
		r = vd_err_set(err, -errno, "rename %s to %s: %s", tmp, img, strerror(errno));
	if (r == 0)
		r = fsync_dir(dir, err);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* A clone's data directory: copied beside, renamed into place when done. */
static int clone_tree(const struct local *l, const char *name, const struct local_content *src,
		      struct vd_err *err)
{
	char dir[PATH_MAX], data[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int r = local_path(l, name, NULL, dir, err);
	if (r == 0)
		r = local_path(l, name, "data", data, err);
	if (r == 0)
		r = local_path(l, name, "data.tmp", tmp, err);
	if (r < 0)
		return r;
	if (lstat(data, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;   /* made by an earlier call */
		return vd_err_set(err, -EEXIST, "%s exists and is not a directory; remove the "
				  "volume first", data);
	}
	r = rm_tree(dir, "data.tmp", tmp, err);   /* a leftover from a crash */
	if (r == 0)
		r = copy_content(src, tmp, err);
	if (r == 0 && rename(tmp, data) < 0)
		r = vd_err_set(err, -errno, "rename %s to %s: %s", tmp, data, strerror(errno));
	if (r == 0)
		r = fsync_dir(dir, err);
	if (r < 0)
		rm_tree(dir, "data.tmp", tmp, NULL);
	return r;
}

static int local_create_from(void *priv, const char *name, const json_t *spec,
			     const char *snap_id, const char *source_volume,
			     const json_t *source_spec, const json_t *source_data,
			     json_t **ret_data, struct vd_err *err)
{
	const struct local *l = priv;
	struct local_spec ls;
	struct local_content src;
	char dir[PATH_MAX];
	(void)source_data;
	if (!snap_id == !source_volume)
		return vd_err_set(err, -EINVAL, "volume %s: a copy needs exactly one source, a "
				  "snapshot or a volume", name ? name : "");
	int r = spec_read(spec, &ls, err);
	if (r == 0)
		r = local_path(l, name, NULL, dir, err);
	if (r == 0)
		r = snap_id ? content_of_snapshot(l, snap_id, &src, err)
			    : content_of_volume(l, source_volume, source_spec, &src, err);
	if (r == 0)
		r = content_fits(&src, name, &ls, err);
	if (r == 0)
		r = mkdir_dir(dir, 0755, err);
	if (r == 0)
		r = ls.size ? clone_image(l, name, &ls, &src, err) : clone_tree(l, name, &src, err);
	if (r == 0)
		r = fsync_dir(l->root, err);
	if (r < 0)
		return r;
	*ret_data = NULL;
	return 0;
}

/* ---- block access and capacity ------------------------------------------- */

static int local_block_attach(void *priv, const char *name, const json_t *spec,
			      const json_t *data, char **ret_device, struct vd_err *err)
{
	struct local_spec ls;
	char mnt[PATH_MAX], img[PATH_MAX], dev[32];
	struct stat st;
	(void)data;
	int r = stage_paths(priv, name, spec, &ls, mnt, img, err);
	if (r < 0)
		return r;
	if (ls.size == 0)
		return vd_err_set(err, -EOPNOTSUPP, "volume %s is a directory: block access needs "
				  "a sized volume", name);
	r = vd_mount_is_mounted(mnt, err);
	if (r == 1)
		return vd_err_set(err, -EBUSY, "volume %s is mounted as a file system on %s; "
				  "unstage it before block access", name, mnt);
	if (r == 0 && lstat(img, &st) < 0)
		r = vd_err_set(err, -errno, "volume %s: image %s: %s; create the volume again",
			       name, img, strerror(errno));
	if (r == 0)
		r = vd_mount_loop_attach(img, dev, sizeof(dev), err);
	if (r < 0)
		return r;
	char *copy = strdup(dev);
	if (!copy)
		return vd_err_set(err, -ENOMEM, "driver local: out of memory");
	*ret_device = copy;
	return 0;
}

static int local_block_detach(void *priv, const char *name, const json_t *spec,
			      const json_t *data, struct vd_err *err)
{
	struct local_spec ls;
	char mnt[PATH_MAX], img[PATH_MAX];
	(void)data;
	int r = stage_paths(priv, name, spec, &ls, mnt, img, err);
	if (r < 0 || ls.size == 0)
		return r;   /* a directory is never attached */
	return vd_mount_loop_detach(img, err);
}

static int local_capacity(void *priv, const json_t *opts, uint64_t *ret_bytes,
			  struct vd_err *err)
{
	(void)opts;   /* one pool: the state directory's file system */
	const struct local *l = priv;
	struct statvfs sv;
	if (statvfs(l->root, &sv) < 0)
		return vd_err_set(err, -errno, "statvfs %s: %s", l->root, strerror(errno));
	*ret_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

/* ---- init --------------------------------------------------------------- */

static int settings_read(const json_t *settings, const char **ret_fstype, struct vd_err *err)
{
	const struct local_fs *fs = &local_fs[0];
	const char *key;
	json_t *value;
	if (settings && !json_is_object(settings))
		return vd_err_set(err, -EINVAL, "settings must be a JSON object; accepted keys: "
				  "default_fstype");
	json_object_foreach((json_t *)settings, key, value) {
		if (strcmp(key, "default_fstype") != 0)
			return vd_err_set(err, -EINVAL, "unknown setting '%.40s' for driver local; "
					  "accepted: default_fstype", key);
		int r = local_fs_get("default_fstype", value, &fs, err);
		if (r < 0)
			return r;
	}
	*ret_fstype = fs->name;
	return 0;
}

static void local_fini(void *priv)
{
	struct local *l = priv;
	if (!l)
		return;
	free(l->root);
	free(l);
}

static int local_init(const struct vd_driver_env *env, void **ret_priv, struct vd_err *err)
{
	struct local *l = calloc(1, sizeof(*l));
	int r;
	if (!l)
		return vd_err_set(err, -ENOMEM, "driver local: out of memory");
	r = settings_read(env->settings, &l->default_fstype, err);
	if (r < 0)
		goto fail;
	if (!env->state_dir || asprintf(&l->root, "%s/local", env->state_dir) < 0) {
		l->root = NULL;
		r = vd_err_set(err, -EINVAL, "driver local needs a state directory");
		goto fail;
	}
	if (mkdir(env->state_dir, 0700) < 0 && errno != EEXIST) {
		r = vd_err_set(err, -errno, "create %s: %s", env->state_dir, strerror(errno));
		goto fail;
	}
	r = mkdir_dir(l->root, 0700, err);
	if (r < 0)
		goto fail;
	*ret_priv = l;
	return 0;
fail:
	local_fini(l);
	return r;
}

const struct vd_driver_ops vd_driver_local = {
	.name = "local",
	.node_local = 1,
	.init = local_init,
	.fini = local_fini,
	.parse_options = local_parse_options,
	.create = local_create,
	.remove = local_remove,
	.stage = local_stage,
	.unstage = local_unstage,
	.is_staged = local_is_staged,
	.mountpoint = local_mountpoint,
	.describe = local_describe,
	.spec_size = local_spec_size,
	.expand = local_expand,
	.node_expand = local_node_expand,
	.snapshot_create = local_snapshot_create,
	.snapshot_delete = local_snapshot_delete,
	.create_from = local_create_from,
	.block_attach = local_block_attach,
	.block_detach = local_block_detach,
	.capacity = local_capacity,
};
