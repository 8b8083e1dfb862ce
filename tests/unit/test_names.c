/* test_names.c — volume names, sizes and option pairs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../volumed/names.h"

static void test_name_valid(void **state)
{
	(void)state;
	const char *ok[] = { "a", "A9", "vol_1.data-x", "0", "a..b" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(vd_name_check(ok[i], NULL), 0);
	char longest[VD_NAME_MAX + 1];
	memset(longest, 'x', VD_NAME_MAX);
	longest[VD_NAME_MAX] = '\0';
	assert_int_equal(vd_name_check(longest, NULL), 0);
}

static void test_name_invalid(void **state)
{
	(void)state;
	const char *bad[] = { "", ".hidden", "-x", "_x", "../etc", "a/b", "a b", "a\nb", "é", "a%2f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vd_err err = VD_ERR_INIT;
		assert_int_equal(vd_name_check(bad[i], &err), -EINVAL);
		assert_non_null(strstr(err.msg, VD_NAME_RULE));
	}
	assert_int_equal(vd_name_check(NULL, NULL), -EINVAL);
	char toolong[VD_NAME_MAX + 2];
	memset(toolong, 'x', VD_NAME_MAX + 1);
	toolong[VD_NAME_MAX + 1] = '\0';
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_name_check(toolong, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than 255"));
}

static void test_size_units(void **state)
{
	(void)state;
	struct { const char *s; uint64_t bytes; } cases[] = {
		{ "1024", 1024 }, { "64M", 64000000 }, { "64Mi", 64ULL << 20 },
		{ "64MiB", 64ULL << 20 }, { "1G", 1000000000 }, { "2Gi", 2ULL << 30 },
		{ "1Ti", 1ULL << 40 }, { "3K", 3000 }, { "3k", 3000 }, { "5Ki", 5120 },
		{ "7B", 7 }, { "10MB", 10000000 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 0;
		assert_int_equal(vd_size_parse(cases[i].s, &v, NULL), 0);
		assert_int_equal(v, cases[i].bytes);
	}
}

static void test_size_invalid(void **state)
{
	(void)state;
	const char *bad[] = { "", "M", "-1", "1.5G", "12X", "64 M", "99999999999999999999",
			      "18446744073709551615Ki", "1Mii", " 1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vd_err err = VD_ERR_INIT;
		uint64_t v = 42;
		assert_int_equal(vd_size_parse(bad[i], &v, &err), -EINVAL);
		assert_int_equal(v, 42);
		assert_true(err.msg[0] != '\0');
	}
	struct vd_err err = VD_ERR_INIT;
	uint64_t v;
	vd_size_parse("12X", &v, &err);
	assert_non_null(strstr(err.msg, "Ki Mi Gi Ti"));
}

static void test_size_format(void **state)
{
	(void)state;
	char buf[32];
	vd_size_format(64ULL << 20, buf, sizeof(buf));
	assert_string_equal(buf, "64Mi");
	vd_size_format(3ULL << 40, buf, sizeof(buf));
	assert_string_equal(buf, "3Ti");
	vd_size_format(1000, buf, sizeof(buf));
	assert_string_equal(buf, "1000");
	vd_size_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "0");
}

static void test_opt_pairs(void **state)
{
	(void)state;
	char k[32], v[64];
	assert_int_equal(vd_opt_pair_parse("size=64Mi", k, sizeof(k), v, sizeof(v), NULL), 0);
	assert_string_equal(k, "size");
	assert_string_equal(v, "64Mi");
	assert_int_equal(vd_opt_pair_parse("a=b=c", k, sizeof(k), v, sizeof(v), NULL), 0);
	assert_string_equal(v, "b=c");
	assert_int_equal(vd_opt_pair_parse("empty=", k, sizeof(k), v, sizeof(v), NULL), 0);
	assert_string_equal(v, "");
	const char *bad[] = { "novalue", "=x", "Key=x", "a b=c", "k;rm=x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vd_opt_pair_parse(bad[i], k, sizeof(k), v, sizeof(v), NULL), -EINVAL);
	char longkey[64];
	memset(longkey, 'a', 40);
	strcpy(longkey + 40, "=1");
	assert_int_equal(vd_opt_pair_parse(longkey, k, sizeof(k), v, sizeof(v), NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),  cmocka_unit_test(test_name_invalid),
		cmocka_unit_test(test_size_units),  cmocka_unit_test(test_size_invalid),
		cmocka_unit_test(test_size_format), cmocka_unit_test(test_opt_pairs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
