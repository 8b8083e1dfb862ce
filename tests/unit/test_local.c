/* test_local.c — the local driver: settings, options, and the volume life
 * cycle of directory and image volumes in a temporary state directory.
 * The teardown unmounts whatever a failed assertion left mounted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../drivers/driver.h"
#include "../support/fixture.h"

struct fixture {
	char dir[64];
	const struct vd_driver_ops *ops;
	void *priv;
};

static struct fixture *fixture_new(const char *settings_json)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vd_test_mkdtemp(f->dir, sizeof(f->dir), "vd-local"), 0);
	f->ops = vd_driver_find("local");
	assert_non_null(f->ops);
	json_t *settings = settings_json ? json_loads(settings_json, 0, NULL) : NULL;
	struct vd_driver_env env = { f->dir, settings };
	struct vd_err err = VD_ERR_INIT;
	int r = f->ops->init(&env, &f->priv, &err);
	json_decref(settings);
	if (r < 0)
		fail_msg("init: %s", err.msg);
	return f;
}

static int setup(void **state)
{
	*state = fixture_new(NULL);
	return 0;
}

/* Unmounts what a failed assertion left, then deletes the tree. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	vd_test_unmount_under(f->dir);
	f->ops->fini(f->priv);
	vd_test_rmtree(f->dir);
	free(f);
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
	struct vd_driver_env env = { dir, settings };
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

	struct fixture *f = fixture_new("{\"default_fstype\": \"xfs\"}");
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	struct fixture *f = *state;
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
