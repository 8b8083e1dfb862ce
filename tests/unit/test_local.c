/* test_local.c — the local driver: settings, options, and the volume life
 * cycle of directory and image volumes in a temporary state directory;
 * expansion, snapshots, clones and block access on real loop mounts (root).
 * The teardown unmounts and detaches whatever a failed assertion left. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../drivers/driver.h"
#include "../../volumed/mount.h"
#include "../support/fixture.h"

static struct vd_test_driver *fixture_new(const char *settings_json)
{
	struct vd_test_driver *f = vd_test_driver_new("local", "vd-local", settings_json);
	assert_non_null(f);
	return f;
}

static int setup(void **state)
{
	*state = fixture_new(NULL);
	return 0;
}

/* Detaches the loop devices block access left on the volumes' images. */
static void detach_images(const char *dir)
{
	char pattern[PATH_MAX];
	glob_t g;
	snprintf(pattern, sizeof(pattern), "%s/local/*/disk.img", dir);
	if (glob(pattern, 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		vd_mount_loop_detach(g.gl_pathv[i], NULL);
	globfree(&g);
}

/* Unmounts what a failed assertion left, detaches its loop devices, then
 * deletes the tree. */
static int teardown(void **state)
{
	struct vd_test_driver *f = *state;
	vd_test_unmount_under(f->dir);
	detach_images(f->dir);
	vd_test_driver_free(f);
	return 0;
}

static int can_mount(void)
{
	return geteuid() == 0 && access("/dev/loop-control", F_OK) == 0;
}

static int exists(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* ---- registry and settings -------------------------------------------------- */

static void test_registry(void **state)
{
	(void)state;
	assert_non_null(vd_driver_find("local"));
	assert_string_equal(vd_driver_find("local")->name, "local");
	assert_null(vd_driver_find("nope"));
	assert_null(vd_driver_find(NULL));
	assert_non_null(strstr(vd_driver_names(), "local"));
	assert_ptr_equal(vd_drivers[0], vd_driver_find("local"));
}

static void expect_init_error(const char *settings_json, const char *want)
{
	char dir[64];
	assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "vd-local"), 0);
	json_t *settings = json_loads(settings_json, 0, NULL);
	struct vd_driver_env env = { .state_dir = dir, .settings = settings };
	struct vd_err err = VD_ERR_INIT;
	void *priv = NULL;
	assert_int_equal(vd_driver_find("local")->init(&env, &priv, &err), -EINVAL);
	json_decref(settings);
	if (!strstr(err.msg, want))
		fail_msg("settings %s: message '%s' lacks '%s'", settings_json, err.msg, want);
	assert_null(priv);
	vd_test_rmtree(dir);
}

static void test_settings(void **state)
{
	(void)state;
	expect_init_error("{\"fstype\": \"ext4\"}", "accepted: default_fstype");
	expect_init_error("{\"default_fstype\": \"btrfs\"}", "accepted: ext4, xfs");
	expect_init_error("{\"default_fstype\": 4}", "accepted: ext4, xfs");
	expect_init_error("[]", "default_fstype");

	struct vd_test_driver *f = fixture_new("{\"default_fstype\": \"xfs\"}");
	json_t *opts = json_pack("{s:s}", "size", "1Gi"), *spec = NULL;
	assert_int_equal(f->ops->parse_options(f->priv, opts, &spec, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(spec, "fstype")), "xfs");
	assert_true(exists(f->dir, "local"));
	json_decref(opts);
	json_decref(spec);
	void *s = f;
	teardown(&s);
}

/* ---- options ---------------------------------------------------------------- */

static int parse(void *priv, const char *opts_json, json_t **ret_spec, struct vd_err *err)
{
	json_t *opts = opts_json ? json_loads(opts_json, 0, NULL) : NULL;
	if (opts_json)
		assert_non_null(opts);
	int r = vd_driver_find("local")->parse_options(priv, opts, ret_spec, err);
	json_decref(opts);
	return r;
}

static void expect_spec(void *priv, const char *opts_json, const char *want_json)
{
	json_t *spec = NULL, *want = json_loads(want_json, 0, NULL);
	struct vd_err err = VD_ERR_INIT;
	if (parse(priv, opts_json, &spec, &err) < 0)
		fail_msg("options %s: %s", opts_json ? opts_json : "NULL", err.msg);
	if (!json_equal(spec, want)) {
		char *got = json_dumps(spec, JSON_COMPACT);
		fail_msg("options %s: spec %s, expected %s", opts_json, got, want_json);
	}
	json_decref(spec);
	json_decref(want);
}

static void expect_option_error(void *priv, const char *opts_json, const char *want)
{
	json_t *spec = NULL;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(parse(priv, opts_json, &spec, &err), -EINVAL);
	assert_null(spec);
	if (!strstr(err.msg, want))
		fail_msg("options %s: message '%s' lacks '%s'", opts_json, err.msg, want);
}

static void test_parse_options(void **state)
{
	struct vd_test_driver *f = *state;
	void *p = f->priv;
	expect_spec(p, NULL, "{}");
	expect_spec(p, "{}", "{}");
	expect_spec(p, "{\"size\": \"64Mi\"}", "{\"size_bytes\": 67108864, \"fstype\": \"ext4\"}");
	expect_spec(p, "{\"size\": \"64MiB\"}", "{\"size_bytes\": 67108864, \"fstype\": \"ext4\"}");
	expect_spec(p, "{\"size\": \"1G\", \"fstype\": \"xfs\"}",
		    "{\"size_bytes\": 1000000000, \"fstype\": \"xfs\"}");
	expect_spec(p, "{\"fstype\": \"ext4\", \"size\": \"16777216\"}",
		    "{\"size_bytes\": 16777216, \"fstype\": \"ext4\"}");
	expect_spec(p, "{\"size\": \"64Ti\"}", "{\"size_bytes\": 70368744177664, \"fstype\": \"ext4\"}");

	expect_option_error(p, "{\"sise\": \"1G\"}", "unknown option 'sise' for driver local; "
			    "accepted: size, fstype");
	expect_option_error(p, "{\"size\": \"1G\", \"type\": \"tmpfs\"}", "accepted: size, fstype");
	expect_option_error(p, "[\"size\"]", "accepted keys: size, fstype");
	expect_option_error(p, "{\"size\": 1000000000}", "must be a string");
	expect_option_error(p, "{\"size\": \"1G\", \"fstype\": true}", "must be a string");
	expect_option_error(p, "{\"fstype\": \"ext4\"}", "fstype needs size");
	expect_option_error(p, "{\"size\": \"1G\", \"fstype\": \"btrfs\"}",
			    "'btrfs' is not supported by driver local; accepted: ext4, xfs");
	expect_option_error(p, "{\"size\": \"10X\"}", "option size: ");
	expect_option_error(p, "{\"size\": \"10X\"}", "Ki");   /* the units allowed */
	expect_option_error(p, "{\"size\": \"\"}", "option size: ");
	expect_option_error(p, "{\"size\": \"1Mi\"}", "size 1Mi is too small for ext4; "
			    "allowed: 16Mi to 64Ti");
	expect_option_error(p, "{\"size\": \"0\"}", "too small");
	expect_option_error(p, "{\"size\": \"299Mi\", \"fstype\": \"xfs\"}",
			    "too small for xfs; allowed: 300Mi to 64Ti");
	expect_option_error(p, "{\"size\": \"65Ti\"}", "too large for ext4; allowed: 16Mi to 64Ti");
}

/* ---- directory volumes ------------------------------------------------------ */

static json_t *spec_of(void *priv, const char *opts_json)
{
	json_t *spec = NULL;
	struct vd_err err = VD_ERR_INIT;
	if (parse(priv, opts_json, &spec, &err) < 0)
		fail_msg("options %s: %s", opts_json, err.msg);
	return spec;
}

static void test_directory_volume(void **state)
{
	struct vd_test_driver *f = *state;
	const struct vd_driver_ops *ops = f->ops;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{}"), *data = (json_t *)1;
	char *path = NULL, want[PATH_MAX], outside[PATH_MAX];

	assert_int_equal(ops->create(f->priv, "v1", spec, &data, &err), 0);
	assert_null(data);
	assert_int_equal(ops->create(f->priv, "v1", spec, &data, &err), 0);   /* idempotent */
	assert_true(exists(f->dir, "local/v1/data"));

	snprintf(want, sizeof(want), "%s/local/v1/data", f->dir);
	char *mp = ops->mountpoint(f->priv, "v1", spec, NULL);
	assert_string_equal(mp, want);
	free(mp);
	assert_int_equal(ops->stage(f->priv, "v1", spec, NULL, &path, &err), 0);
	assert_string_equal(path, want);
	assert_int_equal(ops->is_staged(f->priv, "v1", spec, NULL, &err), 1);
	assert_int_equal(ops->unstage(f->priv, "v1", spec, NULL, &err), 0);
	assert_int_equal(ops->unstage(f->priv, "v1", spec, NULL, &err), 0);

	json_t *status = json_object();
	ops->describe(f->priv, spec, NULL, status);
	assert_string_equal(json_string_value(json_object_get(status, "type")), "directory");
	json_decref(status);

	/* Contents, including a symlink out of the volume: removal must not follow it. */
	char sub[PATH_MAX + 16], file[PATH_MAX + 32], link[PATH_MAX + 32];
	snprintf(outside, sizeof(outside), "%s/outside", f->dir);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(file, sizeof(file), "%s/keep", outside);
	write_file(file, "keep me");
	snprintf(sub, sizeof(sub), "%s/a", path);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(file, sizeof(file), "%s/a/f", path);
	write_file(file, "x");
	snprintf(link, sizeof(link), "%s/a/to-outside", path);
	assert_int_equal(symlink(outside, link), 0);
	snprintf(link, sizeof(link), "%s/dangling", path);
	assert_int_equal(symlink("/no/such/target", link), 0);

	assert_int_equal(ops->remove(f->priv, "v1", spec, NULL, &err), 0);
	assert_false(exists(f->dir, "local/v1"));
	assert_true(exists(f->dir, "outside/keep"));
	assert_int_equal(ops->is_staged(f->priv, "v1", spec, NULL, &err), 0);
	assert_int_equal(ops->remove(f->priv, "v1", spec, NULL, &err), 0);   /* absent: 0 */

	/* Stage recreates a directory that went missing. */
	free(path);
	path = NULL;
	assert_int_equal(ops->stage(f->priv, "v1", spec, NULL, &path, &err), 0);
	assert_true(exists(f->dir, "local/v1/data"));
	assert_int_equal(ops->remove(f->priv, "v1", spec, NULL, &err), 0);
	free(path);
	json_decref(spec);
}

/* A tree deeper than the fd limit is removed with one fd at a time. */
static void test_remove_deep_tree(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{}"), *data = NULL;
	char *path = NULL;
	assert_int_equal(f->ops->create(f->priv, "deep", spec, &data, &err), 0);
	assert_int_equal(f->ops->stage(f->priv, "deep", spec, NULL, &path, &err), 0);

	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		int fd2 = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		assert_true(fd2 >= 0);
		close(fd2);
		fd2 = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(fd2 >= 0);
		close(fd);
		fd = fd2;
	}
	close(fd);
	assert_int_equal(f->ops->remove(f->priv, "deep", spec, NULL, &err), 0);
	assert_false(exists(f->dir, "local/deep"));
	free(path);
	json_decref(spec);
}

/* Removal never crosses into a filesystem mounted inside the volume. */
static void test_remove_refuses_mount_inside(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{}"), *data = NULL;
	char *path = NULL, sub[PATH_MAX + 8], file[PATH_MAX + 16];
	if (geteuid() != 0)
		skip();
	assert_int_equal(f->ops->create(f->priv, "m", spec, &data, &err), 0);
	assert_int_equal(f->ops->stage(f->priv, "m", spec, NULL, &path, &err), 0);
	snprintf(sub, sizeof(sub), "%s/sub", path);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(mount("tmpfs", sub, "tmpfs", 0, "size=1m"), 0);
	snprintf(file, sizeof(file), "%s/precious", sub);
	write_file(file, "x");

	assert_int_equal(f->ops->remove(f->priv, "m", spec, NULL, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "mount point"));
	assert_int_equal(access(file, F_OK), 0);

	assert_int_equal(umount2(sub, 0), 0);
	assert_int_equal(f->ops->remove(f->priv, "m", spec, NULL, &err), 0);
	free(path);
	json_decref(spec);
}

static void test_names_refused(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{}"), *data = NULL;
	char *path = NULL;
	const char *bad[] = { "..", ".hidden", "a/b", "../escape", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(f->ops->create(f->priv, bad[i], spec, &data, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "allowed"));
		assert_int_equal(f->ops->remove(f->priv, bad[i], spec, NULL, &err), -EINVAL);
		assert_int_equal(f->ops->stage(f->priv, bad[i], spec, NULL, &path, &err), -EINVAL);
		assert_null(f->ops->mountpoint(f->priv, bad[i], spec, NULL));
	}
	assert_int_equal(f->ops->create(f->priv, NULL, spec, &data, &err), -EINVAL);
	json_t *bad_spec = json_pack("{s:s}", "size_bytes", "big");
	assert_int_equal(f->ops->create(f->priv, "ok", bad_spec, &data, &err), -EINVAL);
	json_decref(bad_spec);
	assert_false(exists(f->dir, "escape"));
	json_decref(spec);
}

/* ---- image volumes ---------------------------------------------------------- */

static void test_image_volume(void **state)
{
	struct vd_test_driver *f = *state;
	const struct vd_driver_ops *ops = f->ops;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{\"size\": \"64Mi\"}"), *data = NULL;
	char *path = NULL, *again = NULL, want[PATH_MAX], img[PATH_MAX];
	struct stat st;
	if (!can_mount())
		skip();

	assert_int_equal(ops->create(f->priv, "img", spec, &data, &err), 0);
	assert_null(data);
	snprintf(img, sizeof(img), "%s/local/img/disk.img", f->dir);
	assert_int_equal(stat(img, &st), 0);
	assert_int_equal(st.st_size, 64LL << 20);
	assert_false(exists(f->dir, "local/img/disk.img.tmp"));
	time_t mtime = st.st_mtime;
	long mtime_ns = st.st_mtim.tv_nsec;
	assert_int_equal(ops->create(f->priv, "img", spec, &data, &err), 0);   /* reused */
	assert_int_equal(stat(img, &st), 0);
	assert_true(st.st_mtime == mtime && st.st_mtim.tv_nsec == mtime_ns);

	snprintf(want, sizeof(want), "%s/local/img/mnt", f->dir);
	assert_int_equal(ops->is_staged(f->priv, "img", spec, NULL, &err), 0);
	assert_int_equal(ops->stage(f->priv, "img", spec, NULL, &path, &err), 0);
	assert_string_equal(path, want);
	assert_int_equal(ops->stage(f->priv, "img", spec, NULL, &again, &err), 0);
	assert_string_equal(again, want);
	assert_int_equal(ops->is_staged(f->priv, "img", spec, NULL, &err), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, 0);

	char file[PATH_MAX + 8];
	snprintf(file, sizeof(file), "%s/hello", path);
	write_file(file, "world");

	assert_int_equal(ops->remove(f->priv, "img", spec, NULL, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "unstage"));
	assert_int_equal(stat(img, &st), 0);

	assert_int_equal(ops->unstage(f->priv, "img", spec, NULL, &err), 0);
	assert_int_equal(ops->is_staged(f->priv, "img", spec, NULL, &err), 0);
	assert_int_equal(ops->unstage(f->priv, "img", spec, NULL, &err), 0);
	assert_int_equal(access(file, F_OK), -1);   /* the data lives in the image */

	/* The data survives an unstage/stage cycle. */
	free(again);
	again = NULL;
	assert_int_equal(ops->stage(f->priv, "img", spec, NULL, &again, &err), 0);
	assert_int_equal(access(file, F_OK), 0);
	assert_int_equal(ops->unstage(f->priv, "img", spec, NULL, &err), 0);

	json_t *status = json_object();
	ops->describe(f->priv, spec, NULL, status);
	assert_string_equal(json_string_value(json_object_get(status, "type")), "image");
	assert_string_equal(json_string_value(json_object_get(status, "size")), "64Mi");
	assert_int_equal(json_integer_value(json_object_get(status, "size_bytes")), 64LL << 20);
	assert_string_equal(json_string_value(json_object_get(status, "fstype")), "ext4");
	json_decref(status);

	assert_int_equal(ops->remove(f->priv, "img", spec, NULL, &err), 0);
	assert_false(exists(f->dir, "local/img"));
	assert_int_equal(ops->remove(f->priv, "img", spec, NULL, &err), 0);
	assert_int_equal(ops->stage(f->priv, "img", spec, NULL, &again, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "create the volume again"));
	free(path);
	free(again);
	json_decref(spec);
}

static void test_image_xfs(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{\"size\": \"300Mi\", \"fstype\": \"xfs\"}"), *data = NULL;
	char *path = NULL;
	if (!can_mount())
		skip();
	assert_int_equal(f->ops->create(f->priv, "x", spec, &data, &err), 0);
	assert_int_equal(f->ops->stage(f->priv, "x", spec, NULL, &path, &err), 0);
	assert_int_equal(f->ops->is_staged(f->priv, "x", spec, NULL, &err), 1);
	assert_int_equal(f->ops->unstage(f->priv, "x", spec, NULL, &err), 0);
	assert_int_equal(f->ops->remove(f->priv, "x", spec, NULL, &err), 0);
	free(path);
	json_decref(spec);
}

/* A leftover temporary image is replaced; a final image of the wrong size
 * is refused rather than reused. */
static void test_image_leftovers(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{\"size\": \"16Mi\"}"), *data = NULL;
	char dir[PATH_MAX], tmp[PATH_MAX + 16], img[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/local/left", f->dir);
	snprintf(tmp, sizeof(tmp), "%s/disk.img.tmp", dir);
	snprintf(img, sizeof(img), "%s/disk.img", dir);

	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(tmp, "half-formatted");
	assert_int_equal(f->ops->create(f->priv, "left", spec, &data, &err), 0);
	assert_false(exists(dir, "disk.img.tmp"));
	assert_int_equal(f->ops->remove(f->priv, "left", spec, NULL, &err), 0);

	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(img, "wrong size");
	assert_int_equal(f->ops->create(f->priv, "left", spec, &data, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "remove the volume first"));
	assert_int_equal(f->ops->remove(f->priv, "left", spec, NULL, &err), 0);
	json_decref(spec);
}

/* ---- expansion, snapshots, clones, block access, capacity ------------------ */

static void ok(int r, const struct vd_err *err, const char *what)
{
	if (r != 0)
		fail_msg("%s: %d: %s", what, r, err->msg);
}

static void expect_error(int r, int want, const struct vd_err *err, const char *text)
{
	if (r != want || !strstr(err->msg, text))
		fail_msg("got %d '%s', expected %d with '%s'", r, err->msg, want, text);
}

/* The size of the file system mounted on path, as df shows it. */
static uint64_t fs_size(const char *path)
{
	struct statvfs sv;
	assert_int_equal(statvfs(path, &sv), 0);
	return (uint64_t)sv.f_blocks * sv.f_frsize;
}

static uint64_t file_size(const char *dir, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void expect_file(const char *dir, const char *rel, const char *want)
{
	char path[PATH_MAX], buf[256] = "";
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	if (strcmp(buf, want) != 0)
		fail_msg("%s holds '%s', expected '%s'", path, buf, want);
}

static void put_file(const char *dir, const char *rel, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	write_file(path, text);
}

/* Creates and stages a volume; returns its path (caller frees). */
static char *make_staged(struct vd_test_driver *f, const char *name, const json_t *spec)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *data = NULL;
	char *path = NULL;
	ok(f->ops->create(f->priv, name, spec, &data, &err), &err, "create");
	ok(f->ops->stage(f->priv, name, spec, NULL, &path, &err), &err, "stage");
	return path;
}

/* 1 when the kernel lets this process grow a mounted ext4. */
static int can_resize_online(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	return syscall(SYS_capget, &hdr, data) == 0 &&
	       (data[CAP_SYS_RESOURCE / 32].effective & (1u << (CAP_SYS_RESOURCE % 32)));
}

/* Expands a staged volume from its size to `to`: the file system grows
 * online, or (a mounted ext4 without CAP_SYS_RESOURCE) at the next stage. */
static void expand_mounted(struct vd_test_driver *f, const char *opts, uint64_t to, int online)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, opts), *grown = NULL, *same = NULL;
	char *path = make_staged(f, "g", spec);
	uint64_t before = fs_size(path), from = file_size(f->dir, "local/g/disk.img");
	put_file(path, "keep", "kept");

	int pending = -1;
	ok(f->ops->expand(f->priv, "g", spec, NULL, to, &grown, &pending, &err), &err, "expand");
	assert_int_equal(pending, !online);
	assert_int_equal(json_integer_value(json_object_get(grown, "size_bytes")), to);
	assert_string_equal(json_string_value(json_object_get(grown, "fstype")),
			    json_string_value(json_object_get(spec, "fstype")));
	assert_int_equal(file_size(f->dir, "local/g/disk.img"), to);
	if (!online) {
		assert_true(exists(f->dir, "local/g/grow-pending"));
		expect_error(f->ops->node_expand(f->priv, "g", grown, NULL, &err), -EPERM, &err,
			     "CAP_SYS_RESOURCE");
		ok(f->ops->unstage(f->priv, "g", grown, NULL, &err), &err, "unstage");
		free(path);
		ok(f->ops->stage(f->priv, "g", grown, NULL, &path, &err), &err, "stage");
	}
	if (fs_size(path) < before + (to - from) * 3 / 4)
		fail_msg("file system of %llu bytes after expand to %llu (was %llu)",
			 (unsigned long long)fs_size(path), (unsigned long long)to,
			 (unsigned long long)before);
	assert_false(exists(f->dir, "local/g/grow-pending"));
	expect_file(path, "keep", "kept");
	ok(f->ops->node_expand(f->priv, "g", grown, NULL, &err), &err, "node_expand");

	/* The same or a smaller size: nothing done, the spec as it was. */
	ok(f->ops->expand(f->priv, "g", grown, NULL, to - (4 << 20), &same, &pending, &err), &err, "shrink");
	assert_true(json_equal(same, grown));
	assert_int_equal(file_size(f->dir, "local/g/disk.img"), to);

	ok(f->ops->unstage(f->priv, "g", grown, NULL, &err), &err, "unstage");
	ok(f->ops->remove(f->priv, "g", grown, NULL, &err), &err, "remove");
	free(path);
	json_decref(same);
	json_decref(grown);
	json_decref(spec);
}

static void test_expand_mounted_ext4(void **state)
{
	if (!can_mount())
		skip();
	expand_mounted(*state, "{\"size\": \"16Mi\"}", 64ULL << 20, can_resize_online());
}

static void test_expand_mounted_xfs(void **state)
{
	if (!can_mount())
		skip();
	expand_mounted(*state, "{\"size\": \"300Mi\", \"fstype\": \"xfs\"}", 400ULL << 20, 1);
}

/* Not staged: the image grows now, the file system at the next stage. */
static void test_expand_unmounted(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{\"size\": \"16Mi\"}"), *grown = NULL, *data = NULL;
	char *path = NULL;
	struct stat st;
	if (!can_mount())
		skip();
	int pending = -1;
	ok(f->ops->create(f->priv, "u", spec, &data, &err), &err, "create");
	ok(f->ops->expand(f->priv, "u", spec, NULL, (48ULL << 20) + 1, &grown, &pending, &err), &err,
	   "expand");
	/* Rounded up to 4 KiB, still sparse, the grow left for stage. */
	assert_int_equal(json_integer_value(json_object_get(grown, "size_bytes")),
			 (48LL << 20) + 4096);
	assert_int_equal(file_size(f->dir, "local/u/disk.img"), (48ULL << 20) + 4096);
	char img[PATH_MAX];
	snprintf(img, sizeof(img), "%s/local/u/disk.img", f->dir);
	assert_int_equal(stat(img, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < (16ULL << 20));
	assert_true(exists(f->dir, "local/u/grow-pending"));
	ok(f->ops->node_expand(f->priv, "u", grown, NULL, &err), &err, "node_expand");
	assert_true(exists(f->dir, "local/u/grow-pending"));

	ok(f->ops->stage(f->priv, "u", grown, NULL, &path, &err), &err, "stage");
	assert_true(fs_size(path) > (40ULL << 20));
	assert_false(exists(f->dir, "local/u/grow-pending"));
	ok(f->ops->unstage(f->priv, "u", grown, NULL, &err), &err, "unstage");
	ok(f->ops->remove(f->priv, "u", grown, NULL, &err), &err, "remove");
	free(path);
	json_decref(grown);
	json_decref(spec);
}

static void test_expand_limits(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *dir = spec_of(f->priv, "{}"), *spec = spec_of(f->priv, "{\"size\": \"16Mi\"}");
	json_t *data = NULL, *out = NULL;
	assert_int_equal(f->ops->spec_size(f->priv, dir), 0);
	assert_int_equal(f->ops->spec_size(f->priv, spec), 16ULL << 20);

	int pending = -1;
	ok(f->ops->create(f->priv, "d", dir, &data, &err), &err, "create d");
	expect_error(f->ops->expand(f->priv, "d", dir, NULL, 1ULL << 30, &out, &pending, &err), -EINVAL,
		     &err, "directory volumes have no size");
	ok(f->ops->node_expand(f->priv, "d", dir, NULL, &err), &err, "node_expand d");

	ok(f->ops->create(f->priv, "s", spec, &data, &err), &err, "create s");
	expect_error(f->ops->expand(f->priv, "s", spec, NULL, 65ULL << 40, &out, &pending, &err), -ERANGE,
		     &err, "new size 65Ti is larger than the maximum 64Ti");
	assert_null(out);
	ok(f->ops->expand(f->priv, "s", spec, NULL, 8ULL << 20, &out, &pending, &err), &err, "no shrink");
	assert_true(json_equal(out, spec));
	assert_int_equal(file_size(f->dir, "local/s/disk.img"), 16ULL << 20);
	assert_false(exists(f->dir, "local/s/grow-pending"));
	json_decref(out);
	json_decref(dir);
	json_decref(spec);
}

/* A snapshot of a mounted volume (frozen for the copy) keeps the content
 * of that moment; volumes made from it start with it. */
static void test_snapshot_restore(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{\"size\": \"32Mi\"}"), *data = NULL;
	json_t *big = spec_of(f->priv, "{\"size\": \"64Mi\"}");
	uint64_t bytes = 0;
	struct stat st;
	if (!can_mount())
		skip();
	char *src = make_staged(f, "src", spec);
	put_file(src, "f", "v1");

	ok(f->ops->snapshot_create(f->priv, "src", spec, NULL, "s1", &bytes, &err), &err, "snap");
	assert_int_equal(bytes, 32ULL << 20);
	char img[PATH_MAX];
	snprintf(img, sizeof(img), "%s/local/.snapshots/s1/disk.img", f->dir);
	assert_int_equal(stat(img, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 < (16ULL << 20));   /* sparse */
	bytes = 0;
	ok(f->ops->snapshot_create(f->priv, "src", spec, NULL, "s1", &bytes, &err), &err, "again");
	assert_int_equal(bytes, 32ULL << 20);
	ok(f->ops->create(f->priv, "other", spec, &data, &err), &err, "create other");
	expect_error(f->ops->snapshot_create(f->priv, "other", spec, NULL, "s1", &bytes, &err),
		     -EEXIST, &err, "of volume src");
	expect_error(f->ops->snapshot_create(f->priv, "src", spec, NULL, ".x", &bytes, &err),
		     -EINVAL, &err, "snapshot id '.x'");
	put_file(src, "f", "v2");

	ok(f->ops->create_from(f->priv, "restored", spec, "s1", NULL, NULL, NULL, &data, &err),
	   &err, "create_from");
	ok(f->ops->create_from(f->priv, "restored", spec, "s1", NULL, NULL, NULL, &data, &err),
	   &err, "create_from again");
	char *path = NULL;
	ok(f->ops->stage(f->priv, "restored", spec, NULL, &path, &err), &err, "stage restored");
	expect_file(path, "f", "v1");
	expect_file(src, "f", "v2");
	ok(f->ops->unstage(f->priv, "restored", spec, NULL, &err), &err, "unstage restored");
	free(path);
	path = NULL;

	/* Larger than the snapshot: the file system grows at the first stage. */
	ok(f->ops->create_from(f->priv, "big", big, "s1", NULL, NULL, NULL, &data, &err), &err,
	   "create_from larger");
	assert_int_equal(file_size(f->dir, "local/big/disk.img"), 64ULL << 20);
	ok(f->ops->stage(f->priv, "big", big, NULL, &path, &err), &err, "stage big");
	assert_true(fs_size(path) > (48ULL << 20));
	expect_file(path, "f", "v1");
	ok(f->ops->unstage(f->priv, "big", big, NULL, &err), &err, "unstage big");
	free(path);

	json_t *small = spec_of(f->priv, "{\"size\": \"16Mi\"}"), *dir = spec_of(f->priv, "{}");
	json_t *xfs = spec_of(f->priv, "{\"size\": \"300Mi\", \"fstype\": \"xfs\"}");
	expect_error(f->ops->create_from(f->priv, "n", small, "s1", NULL, NULL, NULL, &data, &err),
		     -ERANGE, &err, "would be 16Mi but snapshot s1 is 32Mi");
	expect_error(f->ops->create_from(f->priv, "n", dir, "s1", NULL, NULL, NULL, &data, &err),
		     -EINVAL, &err, "would be a directory but snapshot s1 is a sized image");
	expect_error(f->ops->create_from(f->priv, "n", xfs, "s1", NULL, NULL, NULL, &data, &err),
		     -EINVAL, &err, "would be xfs but snapshot s1 is ext4");
	assert_false(exists(f->dir, "local/n/disk.img"));

	ok(f->ops->snapshot_delete(f->priv, "s1", &err), &err, "delete");
	assert_false(exists(f->dir, "local/.snapshots/s1"));
	ok(f->ops->snapshot_delete(f->priv, "s1", &err), &err, "delete again");
	expect_error(f->ops->create_from(f->priv, "n", spec, "s1", NULL, NULL, NULL, &data, &err),
		     -ENOENT, &err, "snapshot s1 does not exist");
	ok(f->ops->unstage(f->priv, "src", spec, NULL, &err), &err, "unstage src");
	free(src);
	json_decref(small);
	json_decref(dir);
	json_decref(xfs);
	json_decref(big);
	json_decref(spec);
}

/* A clone of a mounted volume; xfs clones mount beside their source. */
static void clone_mounted(struct vd_test_driver *f, const char *opts)
{
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, opts), *data = NULL;
	char *src = make_staged(f, "a", spec), *path = NULL;
	put_file(src, "f", "from a");
	ok(f->ops->create_from(f->priv, "b", spec, NULL, "a", spec, NULL, &data, &err), &err,
	   "clone");
	put_file(src, "f", "a changed");
	ok(f->ops->stage(f->priv, "b", spec, NULL, &path, &err), &err, "stage clone");
	expect_file(path, "f", "from a");
	put_file(path, "g", "only in b");
	assert_false(exists(src, "g"));
	ok(f->ops->unstage(f->priv, "b", spec, NULL, &err), &err, "unstage b");
	ok(f->ops->unstage(f->priv, "a", spec, NULL, &err), &err, "unstage a");
	free(src);
	free(path);
	json_decref(spec);
}

static void test_clone_ext4(void **state)
{
	if (!can_mount())
		skip();
	clone_mounted(*state, "{\"size\": \"16Mi\"}");
}

static void test_clone_xfs(void **state)
{
	if (!can_mount())
		skip();
	clone_mounted(*state, "{\"size\": \"300Mi\", \"fstype\": \"xfs\"}");
}

static void test_directory_snapshot_clone(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{}"), *sized = spec_of(f->priv, "{\"size\": \"16Mi\"}");
	json_t *data = NULL;
	char *src = make_staged(f, "d", spec), *path = NULL, sub[PATH_MAX + 8];
	uint64_t bytes = 0;
	struct stat st;
	snprintf(sub, sizeof(sub), "%s/sub", src);
	assert_int_equal(mkdir(sub, 0700), 0);
	put_file(src, "sub/f", "old");
	assert_int_equal(chmod(sub, 0710), 0);
	snprintf(sub, sizeof(sub), "%s/link", src);
	assert_int_equal(symlink("sub/f", sub), 0);

	ok(f->ops->snapshot_create(f->priv, "d", spec, NULL, "ds", &bytes, &err), &err, "snap");
	assert_true(bytes > 0);
	ok(f->ops->snapshot_create(f->priv, "d", spec, NULL, "ds", &bytes, &err), &err, "again");
	put_file(src, "sub/f", "new");

	ok(f->ops->create_from(f->priv, "r", spec, "ds", NULL, NULL, NULL, &data, &err), &err,
	   "restore");
	ok(f->ops->stage(f->priv, "r", spec, NULL, &path, &err), &err, "stage r");
	expect_file(path, "sub/f", "old");
	expect_file(path, "link", "old");
	snprintf(sub, sizeof(sub), "%s/sub", path);
	assert_int_equal(lstat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0710);
	snprintf(sub, sizeof(sub), "%s/link", path);
	assert_int_equal(lstat(sub, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	free(path);
	path = NULL;

	/* A clone copies the current content, and nothing mounted inside. */
	char mp[PATH_MAX + 8];
	snprintf(mp, sizeof(mp), "%s/mnt", src);
	int mounted = geteuid() == 0 && mkdir(mp, 0755) == 0 &&
		      mount("tmpfs", mp, "tmpfs", 0, "size=1m") == 0;
	if (mounted)
		put_file(mp, "beyond", "x");
	ok(f->ops->create_from(f->priv, "c", spec, NULL, "d", spec, NULL, &data, &err), &err,
	   "clone");
	if (mounted)
		assert_int_equal(umount2(mp, 0), 0);
	ok(f->ops->stage(f->priv, "c", spec, NULL, &path, &err), &err, "stage c");
	expect_file(path, "sub/f", "new");
	assert_false(exists(path, "mnt/beyond"));

	expect_error(f->ops->create_from(f->priv, "n", sized, "ds", NULL, NULL, NULL, &data, &err),
		     -EINVAL, &err, "would be a sized image but snapshot ds is a directory");
	ok(f->ops->snapshot_delete(f->priv, "ds", &err), &err, "delete");
	ok(f->ops->snapshot_delete(f->priv, "ds", &err), &err, "delete again");
	free(src);
	free(path);
	json_decref(sized);
	json_decref(spec);
}

static uint64_t device_size(const char *dev)
{
	uint64_t size = 0;
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ioctl(fd, BLKGETSIZE64, &size), 0);
	close(fd);
	return size;
}

/* 1 once dev no longer has a backing file (up to 3 s). */
static int device_released(const char *dev)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", dev + strlen("/dev/"));
	for (int i = 0; i < 300; i++) {
		if (access(path, F_OK) < 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void test_block_attach(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *spec = spec_of(f->priv, "{\"size\": \"16Mi\"}"), *dir = spec_of(f->priv, "{}");
	json_t *data = NULL, *grown = NULL;
	char *dev = NULL, *again = NULL, img[PATH_MAX];
	if (!can_mount())
		skip();
	char *path = make_staged(f, "b", spec);
	expect_error(f->ops->block_attach(f->priv, "b", spec, NULL, &dev, &err), -EBUSY, &err,
		     "unstage it before block access");
	ok(f->ops->unstage(f->priv, "b", spec, NULL, &err), &err, "unstage");

	ok(f->ops->block_attach(f->priv, "b", spec, NULL, &dev, &err), &err, "attach");
	assert_int_equal(strncmp(dev, "/dev/loop", 9), 0);
	ok(f->ops->block_attach(f->priv, "b", spec, NULL, &again, &err), &err, "attach again");
	assert_string_equal(again, dev);
	assert_int_equal(device_size(dev), 16ULL << 20);

	/* Writes through the device land in the image. */
	int fd = open(dev, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "block!", 6, 1 << 20), 6);
	assert_int_equal(fsync(fd), 0);
	close(fd);
	char buf[8] = "";
	snprintf(img, sizeof(img), "%s/local/b/disk.img", f->dir);
	fd = open(img, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 6, 1 << 20), 6);
	close(fd);
	assert_memory_equal(buf, "block!", 6);

	/* An expand reaches the attached device. */
	int pending = -1;
	ok(f->ops->expand(f->priv, "b", spec, NULL, 32ULL << 20, &grown, &pending, &err), &err, "expand");
	assert_int_equal(device_size(dev), 32ULL << 20);

	ok(f->ops->block_detach(f->priv, "b", grown, NULL, &err), &err, "detach");
	assert_true(device_released(dev));
	ok(f->ops->block_detach(f->priv, "b", grown, NULL, &err), &err, "detach again");

	ok(f->ops->create(f->priv, "dir", dir, &data, &err), &err, "create dir");
	expect_error(f->ops->block_attach(f->priv, "dir", dir, NULL, &again, &err), -EOPNOTSUPP,
		     &err, "block access needs a sized volume");
	free(path);
	free(dev);
	free(again);
	json_decref(grown);
	json_decref(dir);
	json_decref(spec);
}

static void test_capacity(void **state)
{
	struct vd_test_driver *f = *state;
	struct vd_err err = VD_ERR_INIT;
	uint64_t bytes = 0;
	ok(f->ops->capacity(f->priv, NULL, &bytes, &err), &err, "capacity");
	assert_true(bytes > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_settings),
		cmocka_unit_test_setup_teardown(test_parse_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_volume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_deep_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_refuses_mount_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_volume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_xfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_mounted_ext4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_mounted_xfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_unmounted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clone_ext4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clone_xfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_snapshot_clone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capacity, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
