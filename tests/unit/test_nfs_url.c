/* test_nfs_url.c — volumed-nfs-fuse's URL parser (drivers/fuse/nfs_url.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../drivers/fuse/nfs_url.h"

static void test_parse_forms(void **state)
{
	(void)state;
	struct nfs_url_parts u;
	struct vd_err err = VD_ERR_INIT;

	assert_int_equal(nfs_url_parse("nfs://srv/export/vol", &u, &err), 0);
	assert_string_equal(u.host, "srv");
	assert_int_equal(u.port, 0);
	assert_int_equal(u.mountport, 0);
	assert_string_equal(u.path, "/export/vol");
	assert_string_equal(u.query, "");

	assert_int_equal(nfs_url_parse("nfs://10.0.0.1:2049/a//b/?nfsport=2049&mountport=20048", &u,
				       &err), 0);
	assert_string_equal(u.host, "10.0.0.1");
	assert_int_equal(u.port, 2049);
	assert_int_equal(u.port_in_host, 1);
	assert_int_equal(u.mountport, 20048);
	assert_string_equal(u.path, "/a/b");

	assert_int_equal(nfs_url_parse("nfs://[fd00::1]:20490/x?version=3&tcp-syncnt=2&"
				       "auto-traverse-mounts=0", &u, &err), 0);
	assert_string_equal(u.host, "[fd00::1]");
	assert_int_equal(u.port, 20490);
	assert_string_equal(u.query, "version=3&tcp-syncnt=2&auto-traverse-mounts=0");

	assert_int_equal(nfs_url_parse("nfs://h/", &u, &err), 0);
	assert_string_equal(u.path, "/");
	assert_int_equal(nfs_url_parse("nfs://my-host.example/e/v,1:x@y=z", &u, &err), 0);
	assert_string_equal(u.path, "/e/v,1:x@y=z");
}

static void test_parse_refusals(void **state)
{
	(void)state;
	static const struct { const char *url, *why; } bad[] = {
		{ "", "nfs://" },
		{ "http://h/x", "nfs://" },
		{ "nfs:/h/x", "nfs://" },
		{ "nfs://", "no host" },
		{ "nfs:///x", "no host" },
		{ "nfs://h", "no path" },
		{ "nfs://h?nfsport=1", "no path" },
		{ "nfs://h:0/x", "bad port" },
		{ "nfs://h:65536/x", "bad port" },
		{ "nfs://h:x/x", "bad port" },
		{ "nfs://h:/x", "bad port" },
		{ "nfs://h_x/x", "bad byte" },
		{ "nfs://[fd00::1/x", "without ']'" },
		{ "nfs://[]/x", "empty IPv6" },
		{ "nfs://[::1]x/y", "junk after" },
		{ "nfs://h/a/../b", "'..'" },
		{ "nfs://h/a/./b", "'.'" },
		{ "nfs://h/..", "'..'" },
		{ "nfs://h/a b", "not allowed" },
		{ "nfs://h/a%2fb", "not allowed" },
		{ "nfs://h/a#b", "not allowed" },
		{ "nfs://h/a\\b", "not allowed" },
		{ "nfs://h/a\nb", "not allowed" },
		{ "nfs://h/a\xc3\xa9", "not allowed" },
		{ "nfs://h/a;b", "bad byte" },
		{ "nfs://h/a$b", "bad byte" },
		{ "nfs://h/x?uid=0", "unknown query key" },
		{ "nfs://h/x?autoreconnect=-1", "unknown query key" },
		{ "nfs://h/x?nfsport=1&nfsport=1", "twice" },
		{ "nfs://h/x?nfsport", "key=value" },
		{ "nfs://h/x?nfsport=", "key=value" },
		{ "nfs://h/x?=1", "key=value" },
		{ "nfs://h/x?nfsport=1&&mountport=2", "empty item" },
		{ "nfs://h/x?", "" },   /* an empty query is fine: checked below */
		{ "nfs://h/x?nfsport=99999", "bad nfsport" },
		{ "nfs://h/x?mountport=-1", "bad mountport" },
		{ "nfs://h/x?version=4", "version=3" },
		{ "nfs://h/x?tcp-syncnt=0", "tcp-syncnt" },
		{ "nfs://h/x?auto-traverse-mounts=2", "0 or 1" },
		{ "nfs://h:2049/x?nfsport=2050", "but nfsport" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nfs_url_parts u;
		struct vd_err err = VD_ERR_INIT;
		int rc = nfs_url_parse(bad[i].url, &u, &err);
		if (!bad[i].why[0]) {
			assert_int_equal(rc, 0);
			continue;
		}
		if (rc != -EINVAL || !strstr(err.msg, bad[i].why))
			fail_msg("url '%s': rc %d, message '%s', expected '%s'", bad[i].url, rc,
				 err.msg, bad[i].why);
	}
	struct nfs_url_parts u;
	assert_int_equal(nfs_url_parse(NULL, &u, NULL), -EINVAL);
	char longurl[NFS_URL_MAX + 16];
	memcpy(longurl, "nfs://h/", 8);
	memset(longurl + 8, 'a', sizeof(longurl) - 9);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(nfs_url_parse(longurl, &u, NULL), -EINVAL);
}

static void test_same_port_twice_is_fine(void **state)
{
	(void)state;
	struct nfs_url_parts u;
	assert_int_equal(nfs_url_parse("nfs://h:2049/x?nfsport=2049", &u, NULL), 0);
	assert_int_equal(u.port, 2049);
}

static void test_libnfs_and_display(void **state)
{
	(void)state;
	struct nfs_url_parts u;
	char buf[NFS_URL_MAX + 64];
	assert_int_equal(nfs_url_parse("nfs://h:20490/e//v/?mountport=20480&version=3", &u, NULL), 0);
	assert_int_equal(nfs_url_libnfs(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nfs://h/e/v?nfsport=20490&mountport=20480&version=3");
	assert_int_equal(nfs_url_display(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nfs://h:20490/e/v");

	assert_int_equal(nfs_url_parse("nfs://h/e?nfsport=1&mountport=2", &u, NULL), 0);
	assert_int_equal(nfs_url_display(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nfs://h/e");
	assert_int_equal(nfs_url_libnfs(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nfs://h/e?nfsport=1&mountport=2");

	assert_int_equal(nfs_url_parse("nfs://h/e", &u, NULL), 0);
	assert_int_equal(nfs_url_libnfs(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "nfs://h/e");
	assert_int_equal(nfs_url_libnfs(&u, buf, 5), -ENAMETOOLONG);
	assert_int_equal(nfs_url_display(&u, buf, 5), -ENAMETOOLONG);
}

static void test_opt_escape(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(nfs_url_opt_escape("volumed-nfs:nfs://h/a,b\\c", out, sizeof(out)), 0);
	assert_string_equal(out, "volumed-nfs:nfs://h/a\\,b\\\\c");
	assert_int_equal(nfs_url_opt_escape("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(nfs_url_opt_escape("abc", out, 4), 0);
	assert_int_equal(nfs_url_opt_escape("abcd", out, 4), -ENAMETOOLONG);
	assert_int_equal(nfs_url_opt_escape("ab,", out, 4), -ENAMETOOLONG);
	assert_int_equal(nfs_url_opt_escape("a", out, 0), -ENAMETOOLONG);
}

static void test_parse_long(void **state)
{
	(void)state;
	long v = 0;
	assert_int_equal(nfs_url_parse_long("10000", 1000, 3600000, &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(nfs_url_parse_long("0", 0, 5, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(nfs_url_parse_long("-3", -5, 5, &v), 0);
	assert_int_equal(v, -3);
	assert_int_equal(nfs_url_parse_long("-3", 0, 5, &v), -EINVAL);
	assert_int_equal(nfs_url_parse_long("999", 1000, 2000, &v), -ERANGE);
	assert_int_equal(nfs_url_parse_long("99999999999999999999999", 0, 5, &v), -ERANGE);
	const char *bad[] = { "", " 1", "1 ", "+1", "1x", "0x10", "1.5", "-", NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(nfs_url_parse_long(bad[i], -10, 10, &v), -EINVAL);
	assert_int_equal(nfs_url_parse_long(NULL, 0, 1, &v), -EINVAL);
}

static void test_split(void **state)
{
	(void)state;
	char e[64], in[64];
	static const char *const want[][2] = {
		{ "/a/b/c", "" }, { "/a/b", "/c" }, { "/a", "/b/c" }, { "/", "/a/b/c" },
	};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(nfs_url_split("/a/b/c", i, e, sizeof(e), in, sizeof(in)), 1);
		assert_string_equal(e, want[i][0]);
		assert_string_equal(in, want[i][1]);
	}
	assert_int_equal(nfs_url_split("/a/b/c", 4, e, sizeof(e), in, sizeof(in)), 0);
	assert_int_equal(nfs_url_split("/a/b/c", -1, e, sizeof(e), in, sizeof(in)), 0);
	assert_int_equal(nfs_url_split("/", 0, e, sizeof(e), in, sizeof(in)), 1);
	assert_string_equal(e, "/");
	assert_string_equal(in, "");
	assert_int_equal(nfs_url_split("/", 1, e, sizeof(e), in, sizeof(in)), 0);
	assert_int_equal(nfs_url_split("/abc", 0, e, 3, in, sizeof(in)), -ENAMETOOLONG);
	assert_int_equal(nfs_url_split("/abc", 1, e, sizeof(e), in, 3), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_same_port_twice_is_fine),
		cmocka_unit_test(test_libnfs_and_display),
		cmocka_unit_test(test_opt_escape),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
