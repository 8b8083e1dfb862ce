/* test_helper_proc.c — where volumed finds its FUSE helpers
 * (vd_helper_path_for): beside its executable, else ../libexec/volumed/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../drivers/helper_proc.h"

struct tree {
	char root[64];
	char exe[128];
};

static void touch(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* root/sbin/volumed and an empty root/libexec/volumed/. */
static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char path[160];
	snprintf(t->root, sizeof(t->root), "/tmp/vd-helper-path-XXXXXX");
	if (!mkdtemp(t->root))
		return -1;
	snprintf(path, sizeof(path), "%s/sbin", t->root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/libexec", t->root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/libexec/volumed", t->root);
	mkdir(path, 0755);
	snprintf(t->exe, sizeof(t->exe), "%s/sbin/volumed", t->root);
	touch(t->exe, 0755);
	*state = t;
	return 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	const char *leaves[] = { "sbin/volumed", "sbin/volumed-nfs-fuse",
				 "libexec/volumed/volumed-nfs-fuse", "libexec/volumed",
				 "libexec", "sbin", "" };
	char path[160];
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", t->root, leaves[i]);
		if (unlink(path) < 0)
			rmdir(path);
	}
	free(t);
	return 0;
}

static void expect_path(const struct tree *t, const char *want_leaf)
{
	char want[160];
	char *got = vd_helper_path_for(t->exe, "volumed-nfs-fuse");
	snprintf(want, sizeof(want), "%s/%s", t->root, want_leaf);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* None installed: the path beside volumed, which the start error names. */
static void test_neither(void **state)
{
	expect_path(*state, "sbin/volumed-nfs-fuse");
}

/* make install: sbin/volumed finds libexec/volumed/volumed-nfs-fuse. */
static void test_libexec(void **state)
{
	struct tree *t = *state;
	char path[160];
	snprintf(path, sizeof(path), "%s/libexec/volumed/volumed-nfs-fuse", t->root);
	touch(path, 0755);
	expect_path(t, "sbin/../libexec/volumed/volumed-nfs-fuse");
}

/* A helper beside volumed (a build tree) wins over the libexec one. */
static void test_beside_wins(void **state)
{
	struct tree *t = *state;
	char path[160];
	snprintf(path, sizeof(path), "%s/libexec/volumed/volumed-nfs-fuse", t->root);
	touch(path, 0755);
	snprintf(path, sizeof(path), "%s/sbin/volumed-nfs-fuse", t->root);
	touch(path, 0755);
	expect_path(t, "sbin/volumed-nfs-fuse");
}

/* A file that is not executable is not a helper. */
static void test_not_executable(void **state)
{
	struct tree *t = *state;
	char path[160];
	snprintf(path, sizeof(path), "%s/libexec/volumed/volumed-nfs-fuse", t->root);
	touch(path, 0644);   /* even root passes X_OK only with an x bit set */
	expect_path(t, "sbin/volumed-nfs-fuse");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_neither, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_libexec, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_beside_wins, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_not_executable, tree_setup, tree_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
