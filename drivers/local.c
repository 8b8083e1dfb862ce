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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* The core validates names; this re-checks what keeps paths inside root. */
static int local_name_check(const char *name, struct vd_err *err)
{
	if (!name || !*name || name[0] == '.' || strchr(name, '/') || strlen(name) > VD_NAME_MAX)
		return vd_err_set(err, -EINVAL, "volume name '%.60s' is not usable by driver local; "
				  "allowed: " VD_NAME_RULE, name ? name : "");
	return 0;
}

/* "<root>/<name>" or "<root>/<name>/<leaf>" into buf (PATH_MAX bytes). */
static int local_path(const struct local *l, const char *name, const char *leaf, char *buf,
		      struct vd_err *err)
{
	int r = local_name_check(name, err);
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

/* Formats a fresh image next to the final one and renames it into place,
 * so a crash never leaves a half-formatted disk.img. */
static int create_image(const char *dir, const struct local_spec *ls, struct vd_err *err)
{
	char img[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	if (snprintf(tmp, sizeof(tmp), "%s/disk.img.tmp", dir) >= (int)sizeof(tmp))
		return vd_err_set(err, -ENAMETOOLONG, "path %s/disk.img.tmp is too long", dir);

	if (lstat(img, &st) == 0) {
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == ls->size)
			return 0;   /* made by an earlier create */
		return vd_err_set(err, -EEXIST, "%s exists with %lld bytes but the volume needs a "
				  "%llu-byte image; remove the volume first", img,
				  (long long)st.st_size, (unsigned long long)ls->size);
	}
	if (errno != ENOENT)
		return vd_err_set(err, -errno, "%s: %s", img, strerror(errno));
	if (unlink(tmp) < 0 && errno != ENOENT)
		return vd_err_set(err, -errno, "remove leftover %s: %s", tmp, strerror(errno));
	int r = vd_mount_make_sparse(tmp, ls->size, err);
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
		r = vd_mount_image(img, path, ls.fstype, err);
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
};
