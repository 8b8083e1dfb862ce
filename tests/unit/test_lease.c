/* test_lease.c — the node's lease file (volumed/lease.c): its parser on
 * good and bad text, a write read back, what "holds" means (this boot, not
 * yet over); and (as root) the read-only cover a forced release puts over
 * a mountpoint (volumed/mount.c): idempotent, refusing writes, removed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../volumed/lease.h"
#include "../../volumed/mount.h"
#include "../support/fixture.h"

#define BOOT "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

static int parse(const char *text, struct vd_lease *l, struct vd_err *err)
{
	return vd_lease_parse(text, strlen(text), l, err);
}

static void test_parse_good(void **state)
{
	(void)state;
	struct vd_lease l;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(parse("volumed-lease 1 " BOOT " 123456789\n", &l, &err), 0);
	assert_string_equal(l.boot_id, BOOT);
	assert_int_equal(l.until_ms, 123456789);
	assert_int_equal(parse("volumed-lease 1 " BOOT " 0\n", &l, &err), 0);
	assert_int_equal(l.until_ms, 0);
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const struct { const char *text, *why; } cases[] = {
		{ "", "does not begin" },
		{ "volumed-lease 2 " BOOT " 1\n", "does not begin" },
		{ "volumed-lease 1 " BOOT "\n", "no boot id" },
		{ "volumed-lease 1 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f 1\n", "no boot id" },
		{ "volumed-lease 1 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1fg 1\n", "no boot id" },
		{ "volumed-lease 1 0f1e2d3c+4b5a-6978-8796-a5b4c3d2e1f0 1\n", "no boot id" },
		{ "volumed-lease 1 " BOOT " \n", "digits and a newline" },
		{ "volumed-lease 1 " BOOT " 12\n\n", "digits and a newline" },
		{ "volumed-lease 1 " BOOT " 12", "digits and a newline" },
		{ "volumed-lease 1 " BOOT " -12\n", "digits and a newline" },
		{ "volumed-lease 1 " BOOT " 12x\n", "digits and a newline" },
		{ "volumed-lease 1 " BOOT " 99999999999999999999\n", "out of range" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vd_lease l;
		struct vd_err err = VD_ERR_INIT;
		assert_int_equal(parse(cases[i].text, &l, &err), -EINVAL);
		if (!strstr(vd_err_msg(&err), cases[i].why))
			fail_msg("case %zu: '%s' lacks '%s'", i, vd_err_msg(&err), cases[i].why);
	}
}

static void test_holds(void **state)
{
	(void)state;
	struct vd_lease l = { .boot_id = BOOT, .until_ms = 1000 };
	assert_true(vd_lease_holds(&l, BOOT, 999));
	assert_false(vd_lease_holds(&l, BOOT, 1000));
	assert_false(vd_lease_holds(&l, "00000000-0000-0000-0000-000000000000", 10));
}

static void test_write_read(void **state)
{
	(void)state;
	char dir[64], path[128], boot[VD_LEASE_BOOT_ID_LEN + 1];
	struct vd_err err = VD_ERR_INIT;
	struct vd_lease l;
	assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "lease"), 0);
	snprintf(path, sizeof(path), "%s/lease", dir);
	assert_int_equal(vd_lease_read(path, &l, &err), -ENOENT);
	assert_int_equal(vd_lease_boot_id(boot, &err), 0);
	long long now = vd_lease_now_ms();
	assert_int_equal(vd_lease_write(path, now + 3000, &err), 0);
	assert_int_equal(vd_lease_read(path, &l, &err), 0);
	assert_string_equal(l.boot_id, boot);
	assert_int_equal(l.until_ms, now + 3000);
	assert_true(vd_lease_holds(&l, boot, vd_lease_now_ms()));
	assert_false(vd_lease_holds(&l, boot, now + 3000));
	/* renewed in place; no temporary file left */
	assert_int_equal(vd_lease_write(path, now - 1, &err), 0);
	assert_int_equal(vd_lease_read(path, &l, &err), 0);
	assert_false(vd_lease_holds(&l, boot, vd_lease_now_ms()));
	char tmp[140];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	assert_int_equal(access(tmp, F_OK), -1);
	/* a file that is not a lease */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("garbage\n", f);
	fclose(f);
	assert_int_equal(vd_lease_read(path, &l, &err), -EINVAL);
	vd_test_rmtree(dir);
}

static void test_cover(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char dir[64], mnt[128], file[160], type[64];
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "cover"), 0);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	snprintf(file, sizeof(file), "%s/by-name", mnt);
	assert_int_equal(mkdir(mnt, 0755), 0);
	assert_int_equal(vd_mount_uncover(mnt, &err), 0);   /* none: nothing to do */
	assert_int_equal(vd_mount_cover(mnt, &err), 0);
	assert_int_equal(vd_mount_cover(mnt, &err), 0);     /* idempotent: one cover */
	assert_int_equal(vd_mount_fstype(mnt, type, sizeof(type), &err), 0);
	assert_string_equal(type, "tmpfs");
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	int e = errno;
	assert_int_equal(fd, -1);
	assert_int_equal(e, EROFS);
	assert_int_equal(vd_mount_uncover(mnt, &err), 0);
	assert_int_equal(vd_mount_is_mounted(mnt, &err), 0);
	/* the cover was one mount: the directory below is bare again */
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	/* not a directory, or gone: nothing to cover */
	assert_int_equal(vd_mount_cover(file, &err), 0);
	assert_int_equal(vd_mount_is_mounted(file, &err), 0);
	snprintf(file, sizeof(file), "%s/absent", dir);
	assert_int_equal(vd_mount_cover(file, &err), 0);
	vd_test_unmount_under(dir);
	vd_test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_holds),
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_cover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
