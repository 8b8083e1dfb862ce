/* test_mount.c — mountinfo parsing, vd_run, sparse files, and (as root) a
 * real image: mkfs, loop mount, ENOSPC, unmount, loop device released;
 * loop devices kept for block access, and growing an image's ext4.
 * Fixtures unmount and detach whatever a failed assertion left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <linux/loop.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../volumed/mount.h"
#include "../support/fixture.h"

/* ---- mountinfo parsing ---------------------------------------------------- */

#define MAX_SEEN 8

struct seen {
	int count;
	char mount_point[MAX_SEEN][256];
	char fstype[MAX_SEEN][64];
	char source[MAX_SEEN][256];
	unsigned major[MAX_SEEN], minor[MAX_SEEN];
	int stop_at;   /* return 7 on this entry (1-based), 0: never */
};

static int collect(const struct vd_mountinfo_entry *e, void *userdata)
{
	struct seen *s = userdata;
	if (s->count < MAX_SEEN) {
		snprintf(s->mount_point[s->count], sizeof(s->mount_point[0]), "%s", e->mount_point);
		snprintf(s->fstype[s->count], sizeof(s->fstype[0]), "%s", e->fstype);
		snprintf(s->source[s->count], sizeof(s->source[0]), "%s", e->source);
		s->major[s->count] = e->major;
		s->minor[s->count] = e->minor;
	}
	s->count++;
	return s->stop_at == s->count ? 7 : 0;
}

static int parse(const char *text, struct seen *s, struct vd_err *err)
{
	memset(s, 0, sizeof(*s));
	return vd_mountinfo_parse(text, strlen(text), collect, s, err);
}

static void test_mountinfo_fields(void **state)
{
	(void)state;
	struct seen s;
	struct vd_err err = VD_ERR_INIT;
	const char *text =
		"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		"90 27 7:3 / /var/lib/x rw,relatime shared:50 master:2 propagate_from:3 - xfs /dev/loop3 rw\n";
	assert_int_equal(parse(text, &s, &err), 0);
	assert_int_equal(s.count, 3);
	assert_string_equal(s.mount_point[0], "/");
	assert_string_equal(s.fstype[0], "ext4");
	assert_string_equal(s.source[0], "/dev/vda");
	assert_int_equal(s.major[0], 254);
	assert_int_equal(s.minor[0], 0);
	assert_string_equal(s.mount_point[1], "/sys/fs/cgroup/unified");
	assert_string_equal(s.fstype[1], "cgroup2");
	assert_string_equal(s.mount_point[2], "/var/lib/x");
	assert_string_equal(s.source[2], "/dev/loop3");
	assert_int_equal(s.major[2], 7);
	assert_int_equal(s.minor[2], 3);
}

static void test_mountinfo_escapes(void **state)
{
	(void)state;
	struct seen s;
	const char *text =
		"50 27 0:40 / /mnt/a\\040b\\011c\\012d\\134e rw - tmpfs my\\040disk rw\n"
		"51 27 0:41 / /mnt/odd\\x\\08\\ rw - tmpfs  rw\n"        /* empty source */
		"52 27 0:42 /sub\\040dir /mnt/root\\040kept rw - fuse.sshfs user@host:/ rw";
	assert_int_equal(parse(text, &s, NULL), 0);
	assert_int_equal(s.count, 3);
	assert_string_equal(s.mount_point[0], "/mnt/a b\tc\nd\\e");
	assert_string_equal(s.source[0], "my disk");
	assert_string_equal(s.mount_point[1], "/mnt/odd\\x\\08\\");
	assert_string_equal(s.source[1], "");
	assert_string_equal(s.mount_point[2], "/mnt/root kept");
	assert_string_equal(s.fstype[2], "fuse.sshfs");
}

static void test_mountinfo_blank_and_stop(void **state)
{
	(void)state;
	struct seen s;
	assert_int_equal(parse("", &s, NULL), 0);
	assert_int_equal(s.count, 0);
	assert_int_equal(parse("\n\n", &s, NULL), 0);
	assert_int_equal(s.count, 0);

	const char *three = "1 0 0:1 / /a rw - t s o\n2 0 0:1 / /b rw - t s o\n3 0 0:1 / /c rw - t s o\n";
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(vd_mountinfo_parse(three, strlen(three), collect, &s, NULL), 7);
	assert_int_equal(s.count, 2);
	/* len bounds the text: the third line is never seen. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(vd_mountinfo_parse(three, 48, collect, &s, NULL), 0);
	assert_int_equal(s.count, 2);
}

static void expect_malformed(const char *text, const char *why)
{
	struct seen s;
	struct vd_err err = VD_ERR_INIT;
	int r = parse(text, &s, &err);
	if (r != -EINVAL)
		fail_msg("'%s' parsed with %d, expected -EINVAL", text, r);
	assert_int_equal(err.code, -EINVAL);
	if (!strstr(err.msg, why) || !strstr(err.msg, "FSTYPE SOURCE"))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.msg, why);
}

static void test_mountinfo_malformed(void **state)
{
	(void)state;
	expect_malformed("27 1 254:0 / /", "line 1");
	expect_malformed("ok\n", "fewer than 6 fields");
	expect_malformed("27 1 254:0 / / rw shared:1 ext4 /dev/vda rw", "no '-' separator");
	expect_malformed("27 1 254:0 / / rw - ext4 /dev/vda", "not exactly 3 fields");
	expect_malformed("27 1 254:0 / / rw - ext4 /dev/vda rw extra", "not exactly 3 fields");
	expect_malformed("27 1 254:0 / / rw - ext4 /dev/vda rw ", "not exactly 3 fields");
	expect_malformed("x7 1 254:0 / / rw - ext4 /dev/vda rw", "mount id");
	expect_malformed("27  254:0 / / rw - ext4 /dev/vda rw", "mount id");
	expect_malformed("27 1 254 / / rw - ext4 /dev/vda rw", "MAJOR:MINOR");
	expect_malformed("27 1 254:x / / rw - ext4 /dev/vda rw", "MAJOR:MINOR");
	expect_malformed("27 1 99999999999:0 / / rw - ext4 /dev/vda rw", "MAJOR:MINOR");
	expect_malformed("27 1 254:0 / rel rw - ext4 /dev/vda rw", "absolute");
	expect_malformed("27 1 254:0 / / rw -  /dev/vda rw", "empty filesystem type");
	expect_malformed("27 1 254:0 / /a\\000b rw - ext4 /dev/vda rw", "NUL");
	expect_malformed("1 0 0:1 / /a rw - t s o\n\n2 0 0:1 / /b rw - t s\n", "line 3");

	static const char nul[] = "27 1 254:0 / /a\0b rw - ext4 /dev/vda rw";
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_mountinfo_parse(nul, sizeof(nul) - 1, collect, &(struct seen){ 0 },
					    &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void test_is_mounted(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_mount_is_mounted("/", &err), 1);
	assert_int_equal(vd_mount_is_mounted("/proc", &err), 1);
	assert_int_equal(vd_mount_is_mounted("/proc/", &err), 1);
	assert_int_equal(vd_mount_is_mounted("/proc/self", &err), 0);
	assert_int_equal(vd_mount_is_mounted("/no/such/dir", &err), 0);
	assert_int_equal(vd_mount_is_mounted("", &err), 0);
}

/* ---- vd_run ------------------------------------------------------------------ */

static int count_fds(void)
{
	glob_t g;
	if (glob("/proc/self/fd/*", 0, NULL, &g) != 0)
		return -1;
	int n = (int)g.gl_pathc;
	globfree(&g);
	return n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_run_ok(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	int fds = count_fds();
	char *const ok[] = { "true", NULL };
	assert_int_equal(vd_run(ok, 10, &err), 0);
	assert_int_equal(err.code, 0);
	/* stdin is /dev/null: cat ends at once. */
	char *const cat[] = { "cat", NULL };
	assert_int_equal(vd_run(cat, 10, &err), 0);
	/* Only fds 0-2 reach the child. */
	char *const fd3[] = { "sh", "-c", "test ! -e /proc/self/fd/3 || exit 9", NULL };
	int leak = open("/dev/null", O_RDONLY);   /* no O_CLOEXEC on purpose */
	assert_true(leak >= 3);
	assert_int_equal(vd_run(fd3, 10, &err), 0);
	close(leak);
	assert_int_equal(count_fds(), fds);
}

static void test_run_failure_output(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	/* The first line (often the reason) and the last three are quoted. */
	char *const argv[] = { "sh", "-c", "echo; echo reason; echo usage1; echo usage2 >&2; "
			       "echo usage3; echo usage4; exit 3", NULL };
	assert_int_equal(vd_run(argv, 10, &err), -EIO);
	assert_string_equal(err.msg, "sh failed with exit status 3: reason ... usage2 usage3 usage4");
	/* Short output is quoted once. */
	char *const two[] = { "sh", "-c", "echo one; echo two >&2; exit 1", NULL };
	assert_int_equal(vd_run(two, 10, &err), -EIO);
	assert_string_equal(err.msg, "sh failed with exit status 1: one two");
	char *const none[] = { "false", NULL };
	assert_int_equal(vd_run(none, 10, &err), -EIO);
	assert_string_equal(err.msg, "false failed with exit status 1: (no output)");
}

static void test_run_bounded_output(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	char *const argv[] = { "sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x; echo; "
			       "echo the-end; exit 1", NULL };
	assert_int_equal(vd_run(argv, 30, &err), -EIO);
	assert_non_null(strstr(err.msg, ": xxxxxxxx"));
	assert_non_null(strstr(err.msg, "xxxx ... xxxx"));
	assert_non_null(strstr(err.msg, "xxxx the-end"));
	assert_true(strlen(err.msg) < VD_ERR_MSG_MAX - 1);   /* not cut short */
}

static void test_run_signal_and_missing(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	char *const killed[] = { "sh", "-c", "kill -9 $$", NULL };
	assert_int_equal(vd_run(killed, 10, &err), -EIO);
	assert_non_null(strstr(err.msg, "signal 9"));

	char *const missing[] = { "volumed-no-such-program", NULL };
	assert_int_equal(vd_run(missing, 10, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "volumed-no-such-program"));

	char *const empty[] = { NULL };
	assert_int_equal(vd_run(empty, 10, &err), -EINVAL);
}

static void test_run_timeout(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	char *const argv[] = { "sh", "-c", "echo started; exec sleep 30", NULL };
	double t0 = now_s();
	assert_int_equal(vd_run(argv, 1, &err), -ETIMEDOUT);
	double took = now_s() - t0;
	assert_true(took >= 0.9 && took < 5);
	assert_non_null(strstr(err.msg, "within 1 s"));
	assert_non_null(strstr(err.msg, "started"));
}

/* A background grandchild keeps the pipe open; the exit still ends the wait. */
static void test_run_grandchild(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	char *const argv[] = { "sh", "-c", "sleep 3 & exit 0", NULL };
	double t0 = now_s();
	assert_int_equal(vd_run(argv, 10, &err), 0);
	assert_true(now_s() - t0 < 2);
}

/* ---- files and mkfs ------------------------------------------------------- */

struct fixture {
	char dir[64];
	char image[96];
	char target[96];
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (vd_test_mkdtemp(f->dir, sizeof(f->dir), "vd-mount") < 0) {
		free(f);
		return -1;
	}
	snprintf(f->image, sizeof(f->image), "%s/disk.img", f->dir);
	snprintf(f->target, sizeof(f->target), "%s/mnt", f->dir);
	*state = f;
	return 0;
}

/* How many loop devices path backs; the first as "loopN" in buf. */
static int loop_of(const char *path, char *buf, size_t len)
{
	glob_t g;
	int found = 0;
	if (glob("/sys/block/loop*/loop/backing_file", 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char backing[PATH_MAX] = "";
		FILE *fp = fopen(g.gl_pathv[i], "re");
		if (!fp)
			continue;
		if (fgets(backing, sizeof(backing), fp))
			backing[strcspn(backing, "\n")] = '\0';
		fclose(fp);
		if (strcmp(backing, path) == 0) {
			/* "/sys/block/loopN/loop/backing_file" -> "loopN" */
			const char *name = g.gl_pathv[i] + strlen("/sys/block/");
			if (!found++)
				snprintf(buf, len, "%.*s", (int)strcspn(name, "/"), name);
		}
	}
	globfree(&g);
	return found;
}

/* Waits up to 3 s for the image to have no loop device. */
static int loop_released(const char *path)
{
	char dev[32];
	for (int i = 0; i < 300; i++) {
		if (!loop_of(path, dev, sizeof(dev)))
			return 1;
		usleep(10000);
	}
	return 0;
}

/* Detaches every loop device backed by a file under dir. */
static void detach_loops_under(const char *dir)
{
	glob_t g;
	if (glob("/sys/block/loop*/loop/backing_file", 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char backing[PATH_MAX] = "", dev[64];
		FILE *fp = fopen(g.gl_pathv[i], "re");
		if (!fp)
			continue;
		if (!fgets(backing, sizeof(backing), fp))
			backing[0] = '\0';
		fclose(fp);
		if (strncmp(backing, dir, strlen(dir)) != 0)
			continue;
		const char *name = g.gl_pathv[i] + strlen("/sys/block/");
		snprintf(dev, sizeof(dev), "/dev/%.*s", (int)strcspn(name, "/"), name);
		int fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			ioctl(fd, LOOP_CLR_FD);
			close(fd);
		}
	}
	globfree(&g);
}

/* Whatever a failed assertion left: mounts, loop devices, files. */
static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	vd_test_unmount_under(f->dir);
	detach_loops_under(f->dir);
	vd_test_rmtree(f->dir);
	free(f);
	return 0;
}

static void test_make_sparse(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	struct stat st;
	assert_int_equal(vd_mount_make_sparse(f->image, 1ULL << 30, &err), 0);
	assert_int_equal(stat(f->image, &st), 0);
	assert_int_equal(st.st_size, 1LL << 30);
	assert_true(st.st_blocks < 64);   /* sparse: nothing written */
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(vd_mount_make_sparse(f->image, 4096, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "must not exist"));
	assert_int_equal(stat(f->image, &st), 0);
	assert_int_equal(st.st_size, 1LL << 30);   /* untouched */

	char missing[128];
	snprintf(missing, sizeof(missing), "%s/no/such", f->dir);
	assert_int_equal(vd_mount_make_sparse(missing, 4096, &err), -ENOENT);
}

static void test_mkfs_rejects_fstype(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_mount_mkfs("/nonexistent", "btrfs", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "btrfs"));
	assert_non_null(strstr(err.msg, "ext4, xfs"));
	assert_int_equal(vd_mount_mkfs("/nonexistent", NULL, &err), -EINVAL);
}

static void test_mkfs_fails_with_output(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	/* Far too small for xfs: mkfs.xfs refuses and says why. */
	assert_int_equal(vd_mount_make_sparse(f->image, 1 << 20, &err), 0);
	assert_int_equal(vd_mount_mkfs(f->image, "xfs", &err), -EIO);
	assert_non_null(strstr(err.msg, "mkfs.xfs failed with exit status"));
}

/* ---- real mounts (root) ---------------------------------------------------- */

static int can_mount(void)
{
	return geteuid() == 0 && access("/dev/loop-control", F_OK) == 0;
}

static void fill_until_enospc(const char *dir, uint64_t limit)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/fill", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	static char block[1 << 16];
	memset(block, 'v', sizeof(block));
	uint64_t written = 0;
	int e = 0;
	while (written <= limit) {
		ssize_t n = write(fd, block, sizeof(block));
		if (n < 0) {
			e = errno;
			break;
		}
		written += (uint64_t)n;
	}
	if (e == 0 && fsync(fd) < 0)
		e = errno;
	close(fd);
	assert_int_equal(e, ENOSPC);
	assert_true(written > limit / 4);   /* most of the disk was usable */
}

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;
	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

static void check_mounted_on_loop(const struct fixture *f)
{
	char dev[32], want[48];
	assert_int_equal(vd_mount_is_mounted(f->target, NULL), 1);
	assert_true(loop_of(f->image, dev, sizeof(dev)));
	snprintf(want, sizeof(want), "/sys/block/%s/loop/autoclear", dev);
	FILE *fp = fopen(want, "re");
	assert_non_null(fp);
	assert_int_equal(fgetc(fp), '1');
	fclose(fp);
}

static void test_image_ext4(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	const uint64_t size = 32ULL << 20;
	if (!can_mount())
		skip();
	assert_int_equal(vd_mount_make_sparse(f->image, size, &err), 0);
	assert_int_equal(vd_mount_mkfs(f->image, "ext4", &err), 0);
	assert_int_equal(vd_mount_image(f->image, f->target, "ext4", &err), 0);
	check_mounted_on_loop(f);
	struct stat st;
	assert_int_equal(stat(f->target, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, 0);
	assert_true(dir_is_empty(f->target));   /* no lost+found: Docker copies into it */

	/* Idempotent: mounted already is 0, and no second loop device. */
	assert_int_equal(vd_mount_image(f->image, f->target, "ext4", &err), 0);

	fill_until_enospc(f->target, size);

	/* Busy while a file in it is open. */
	char path[160];
	snprintf(path, sizeof(path), "%s/fill", f->target);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(vd_mount_unmount(f->target, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "busy"));
	close(fd);

	assert_int_equal(vd_mount_unmount(f->target, &err), 0);
	assert_int_equal(vd_mount_is_mounted(f->target, NULL), 0);
	assert_true(loop_released(f->image));
	assert_int_equal(vd_mount_unmount(f->target, &err), 0);   /* not mounted: 0 */

	/* The data survived: mount again and find the file. */
	assert_int_equal(vd_mount_image(f->image, f->target, "ext4", &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal(vd_mount_unmount(f->target, &err), 0);
	assert_true(loop_released(f->image));
}

/* The host mount removed by hand while a bind mount (a container's) still
 * holds the file system: mounting again reuses the same loop device. */
static void test_image_reuses_live_loop(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	char bind[160], dev1[32], dev2[32], path[200];
	if (!can_mount())
		skip();
	snprintf(bind, sizeof(bind), "%s/bind", f->dir);
	assert_int_equal(mkdir(bind, 0755), 0);
	assert_int_equal(vd_mount_make_sparse(f->image, 32ULL << 20, &err), 0);
	assert_int_equal(vd_mount_mkfs(f->image, "ext4", &err), 0);
	assert_int_equal(vd_mount_image(f->image, f->target, "ext4", &err), 0);
	assert_true(loop_of(f->image, dev1, sizeof(dev1)));
	assert_int_equal(mount(f->target, bind, NULL, MS_BIND, NULL), 0);
	assert_int_equal(umount2(f->target, 0), 0);
	assert_int_equal(vd_mount_image(f->image, f->target, "ext4", &err), 0);
	assert_int_equal(loop_of(f->image, dev2, sizeof(dev2)), 1);
	assert_string_equal(dev1, dev2);
	/* One file system: a file written through one path shows in the other. */
	snprintf(path, sizeof(path), "%s/shared", bind);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/shared", f->target);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(umount2(bind, 0), 0);
	assert_int_equal(vd_mount_unmount(f->target, &err), 0);
	assert_true(loop_released(f->image));
}

static void test_image_xfs(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	if (!can_mount())
		skip();
	assert_int_equal(vd_mount_make_sparse(f->image, 300ULL << 20, &err), 0);
	assert_int_equal(vd_mount_mkfs(f->image, "xfs", &err), 0);
	assert_int_equal(vd_mount_image(f->image, f->target, "xfs", &err), 0);
	check_mounted_on_loop(f);
	assert_int_equal(vd_mount_unmount(f->target, &err), 0);
	assert_true(loop_released(f->image));
}

/* A mount that fails leaves no loop device behind. */
static void test_image_mount_fails(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	if (!can_mount())
		skip();
	assert_int_equal(vd_mount_make_sparse(f->image, 16ULL << 20, &err), 0);   /* no fs */
	int r = vd_mount_image(f->image, f->target, "ext4", &err);
	assert_true(r < 0);
	assert_non_null(strstr(err.msg, f->image));
	assert_int_equal(vd_mount_is_mounted(f->target, NULL), 0);
	assert_true(loop_released(f->image));

	char missing[128];
	snprintf(missing, sizeof(missing), "%s/absent.img", f->dir);
	assert_int_equal(vd_mount_image(missing, f->target, "ext4", &err), -ENOENT);
}

struct mount_job {
	char image[128], target[128], dev[32];
	int r;
	struct vd_err err;
};

static void *mount_job_run(void *arg)
{
	struct mount_job *j = arg;
	j->r = vd_mount_image(j->image, j->target, "ext4", &j->err);
	return NULL;
}

/* Parallel mounts race for the same free loop device; all must succeed. */
static void test_image_concurrent(void **state)
{
	struct fixture *f = *state;
	struct mount_job jobs[6];
	pthread_t threads[6];
	const int n = 6;
	if (!can_mount())
		skip();
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < n; i++) {
		snprintf(jobs[i].image, sizeof(jobs[i].image), "%s/disk%d.img", f->dir, i);
		snprintf(jobs[i].target, sizeof(jobs[i].target), "%s/mnt%d", f->dir, i);
		assert_int_equal(vd_mount_make_sparse(jobs[i].image, 16ULL << 20, NULL), 0);
		assert_int_equal(vd_mount_mkfs(jobs[i].image, "ext4", NULL), 0);
	}
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, mount_job_run, &jobs[i]), 0);
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < n; i++) {
		if (jobs[i].r != 0)
			fail_msg("mount %d: %s", i, jobs[i].err.msg);
		assert_int_equal(vd_mount_is_mounted(jobs[i].target, NULL), 1);
		assert_true(loop_of(jobs[i].image, jobs[i].dev, sizeof(jobs[i].dev)));
		for (int k = 0; k < i; k++)
			assert_string_not_equal(jobs[i].dev, jobs[k].dev);
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(vd_mount_unmount(jobs[i].target, NULL), 0);
		assert_true(loop_released(jobs[i].image));
	}
}

/* Block access: a loop device without autoclear stays attached with no
 * mount and no open fd; detach releases it. */
static void test_loop_attach_detach(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	char dev[32], again[32], name[32], path[64];
	if (!can_mount())
		skip();
	assert_int_equal(vd_mount_make_sparse(f->image, 16ULL << 20, &err), 0);
	assert_int_equal(vd_mount_loop_detach(f->image, &err), 0);   /* none: 0 */
	assert_int_equal(vd_mount_loop_attach(f->image, dev, sizeof(dev), &err), 0);
	assert_int_equal(vd_mount_loop_attach(f->image, again, sizeof(again), &err), 0);
	assert_string_equal(dev, again);
	assert_int_equal(loop_of(f->image, name, sizeof(name)), 1);
	assert_string_equal(dev + strlen("/dev/"), name);
	snprintf(path, sizeof(path), "/sys/block/%s/loop/autoclear", name);
	FILE *fp = fopen(path, "re");
	assert_non_null(fp);
	assert_int_equal(fgetc(fp), '0');
	fclose(fp);

	/* In use: not grown offline. */
	assert_int_equal(vd_mount_grow_offline(f->image, "ext4", &err), -EBUSY);
	assert_int_equal(vd_mount_loop_detach(f->image, &err), 0);
	assert_true(loop_released(f->image));
	assert_int_equal(vd_mount_loop_detach(f->image, &err), 0);

	char missing[128];
	snprintf(missing, sizeof(missing), "%s/absent.img", f->dir);
	assert_int_equal(vd_mount_loop_detach(missing, &err), 0);
	assert_int_equal(vd_mount_loop_attach(missing, dev, sizeof(dev), &err), -ENOENT);
}

static uint64_t fs_size(const char *path)
{
	struct statvfs sv;
	assert_int_equal(statvfs(path, &sv), 0);
	return (uint64_t)sv.f_blocks * sv.f_frsize;
}

/* An unmounted ext4 image grows to a larger file; xfs only mounted. */
static void test_grow(void **state)
{
	struct fixture *f = *state;
	struct vd_err err = VD_ERR_INIT;
	if (!can_mount())
		skip();
	assert_int_equal(vd_mount_make_sparse(f->image, 16ULL << 20, &err), 0);
	assert_int_equal(vd_mount_mkfs(f->image, "ext4", &err), 0);
	assert_int_equal(vd_mount_grow(f->image, NULL, "ext4", &err), 0);   /* no device */
	assert_int_equal(vd_mount_grow(f->image, f->target, "ext4", &err), -ENODEV);
	assert_int_equal(truncate(f->image, 48LL << 20), 0);
	if (vd_mount_grow_offline(f->image, "ext4", &err) != 0)
		fail_msg("grow: %s", err.msg);
	assert_int_equal(vd_mount_image(f->image, f->target, "ext4", &err), 0);
	assert_true(fs_size(f->target) > (40ULL << 20));
	assert_int_equal(vd_mount_unmount(f->target, &err), 0);
	assert_true(loop_released(f->image));

	assert_int_equal(vd_mount_grow_offline(f->image, "xfs", &err), -EOPNOTSUPP);
	assert_int_equal(vd_mount_grow_offline(f->image, "btrfs", &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo_fields),
		cmocka_unit_test(test_mountinfo_escapes),
		cmocka_unit_test(test_mountinfo_blank_and_stop),
		cmocka_unit_test(test_mountinfo_malformed),
		cmocka_unit_test(test_is_mounted),
		cmocka_unit_test(test_run_ok),
		cmocka_unit_test(test_run_failure_output),
		cmocka_unit_test(test_run_bounded_output),
		cmocka_unit_test(test_run_signal_and_missing),
		cmocka_unit_test(test_run_timeout),
		cmocka_unit_test(test_run_grandchild),
		cmocka_unit_test(test_mkfs_rejects_fstype),
		cmocka_unit_test_setup_teardown(test_make_sparse, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_mkfs_fails_with_output, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_image_ext4, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_image_reuses_live_loop, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_image_xfs, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_image_mount_fails, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_image_concurrent, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_loop_attach_detach, fixture_setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_grow, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
