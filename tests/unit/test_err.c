/* test_err.c — the error object and the errno -> protocol mapping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../volumed/err.h"

static void test_set_and_prefix(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_err_set(&err, -EINVAL, "size %s is bad", "x"), -EINVAL);
	assert_string_equal(vd_err_msg(&err), "size x is bad");
	vd_err_prefix(&err, "volume %s", "v1");
	assert_string_equal(vd_err_msg(&err), "volume v1: size x is bad");
	assert_int_equal(err.code, -EINVAL);
	vd_err_clear(&err);
	assert_string_equal(vd_err_msg(&err), "");
	assert_int_equal(vd_err_set(NULL, -ENOENT, "ignored"), -ENOENT);
}

static void test_msg_falls_back_to_strerror(void **state)
{
	(void)state;
	struct vd_err err = { .code = -ENOENT, .msg = "" };
	assert_string_equal(vd_err_msg(&err), strerror(ENOENT));
}

static void test_long_message_truncated(void **state)
{
	(void)state;
	struct vd_err err = VD_ERR_INIT;
	char big[2000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vd_err_set(&err, -EINVAL, "%s", big);
	assert_int_equal(strlen(err.msg), VD_ERR_MSG_MAX - 1);
}

static void test_mapping(void **state)
{
	(void)state;
	assert_int_equal(vd_errno_http_status(0), 200);
	assert_int_equal(vd_errno_http_status(-EINVAL), 400);
	assert_int_equal(vd_errno_http_status(-ENOENT), 404);
	assert_int_equal(vd_errno_http_status(-EEXIST), 409);
	assert_int_equal(vd_errno_http_status(-EBUSY), 409);
	assert_int_equal(vd_errno_http_status(-EIO), 500);
	assert_int_equal(vd_errno_grpc_status(0), 0);
	assert_int_equal(vd_errno_grpc_status(-EINVAL), 3);
	assert_int_equal(vd_errno_grpc_status(-ENOENT), 5);
	assert_int_equal(vd_errno_grpc_status(-EEXIST), 6);
	assert_int_equal(vd_errno_grpc_status(-EBUSY), 9);
	assert_int_equal(vd_errno_grpc_status(-EOPNOTSUPP), 12);
	assert_int_equal(vd_errno_grpc_status(-EIO), 13);
	assert_string_equal(vd_errno_kind(-ENOENT), "not-found");
	assert_string_equal(vd_errno_kind(-EIO), "internal");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_and_prefix),
		cmocka_unit_test(test_msg_falls_back_to_strerror),
		cmocka_unit_test(test_long_message_truncated),
		cmocka_unit_test(test_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
