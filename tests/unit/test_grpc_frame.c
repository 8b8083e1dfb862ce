/* test_grpc_frame.c — the byte-level gRPC pieces: message prefix, unary
 * body check, grpc-timeout, grpc-message percent-encoding, status names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../csi/grpc_frame.h"

static void test_prefix(void **state)
{
	(void)state;
	uint8_t p[VD_GRPC_PREFIX_LEN];
	int compressed;
	uint32_t len;
	vd_grpc_prefix_encode(p, 0, 0x01020304);
	assert_memory_equal(p, "\x00\x01\x02\x03\x04", 5);
	assert_int_equal(vd_grpc_prefix_decode(p, &compressed, &len), 0);
	assert_int_equal(compressed, 0);
	assert_int_equal(len, 0x01020304);

	vd_grpc_prefix_encode(p, 1, UINT32_MAX);
	assert_memory_equal(p, "\x01\xff\xff\xff\xff", 5);
	assert_int_equal(vd_grpc_prefix_decode(p, &compressed, &len), 0);
	assert_int_equal(compressed, 1);
	assert_true(len == UINT32_MAX);

	p[0] = 2;
	assert_int_equal(vd_grpc_prefix_decode(p, &compressed, &len), -EINVAL);
}

/* body_check on a literal body; returns the status, the reason in why. */
static int check(const char *body, size_t len, size_t max, int complete,
		 const uint8_t **msg, size_t *msg_len, char *why, size_t why_size)
{
	struct vd_err err = VD_ERR_INIT;
	int r = vd_grpc_body_check((const uint8_t *)body, len, max, complete, msg, msg_len, &err);
	snprintf(why, why_size, "%s", err.msg);
	return r;
}

static void test_body_check(void **state)
{
	(void)state;
	const uint8_t *msg = NULL;
	size_t len = 99;
	char why[VD_ERR_MSG_MAX];

	/* One well-formed message, empty or not. */
	assert_int_equal(check("\0\0\0\0\3abc", 8, 16, 1, &msg, &len, why, sizeof(why)), VD_GRPC_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(msg, "abc", 3);
	assert_int_equal(check("\0\0\0\0\0", 5, 16, 1, &msg, &len, why, sizeof(why)), VD_GRPC_OK);
	assert_int_equal(len, 0);

	/* Incomplete but fine so far: OK, outputs untouched. */
	msg = NULL;
	len = 99;
	assert_int_equal(check("\0\0\0", 3, 16, 0, &msg, &len, why, sizeof(why)), VD_GRPC_OK);
	assert_int_equal(check("\0\0\0\0\3ab", 7, 16, 0, &msg, &len, why, sizeof(why)), VD_GRPC_OK);
	assert_null(msg);
	assert_int_equal(len, 99);

	/* Known from the prefix, before the end. */
	assert_int_equal(check("\1\0\0\0\3", 5, 16, 0, &msg, &len, why, sizeof(why)),
			 VD_GRPC_UNIMPLEMENTED);
	assert_string_equal(why, "compression is not supported");
	assert_int_equal(check("\0\0\0\0\21", 5, 16, 0, &msg, &len, why, sizeof(why)),
			 VD_GRPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(why, "17 bytes"));
	assert_non_null(strstr(why, "16 bytes"));
	assert_int_equal(check("\0\0\0\0\20", 5, 16, 0, &msg, &len, why, sizeof(why)), VD_GRPC_OK);
	assert_int_equal(check("\7\0\0\0\1", 5, 16, 0, &msg, &len, why, sizeof(why)),
			 VD_GRPC_INTERNAL);

	/* Cardinality and truncation: INTERNAL. */
	assert_int_equal(check("", 0, 16, 1, &msg, &len, why, sizeof(why)), VD_GRPC_INTERNAL);
	assert_non_null(strstr(why, "no message"));
	assert_int_equal(check("\0\0", 2, 16, 1, &msg, &len, why, sizeof(why)), VD_GRPC_INTERNAL);
	assert_non_null(strstr(why, "truncated"));
	assert_int_equal(check("\0\0\0\0\3ab", 7, 16, 1, &msg, &len, why, sizeof(why)),
			 VD_GRPC_INTERNAL);
	assert_non_null(strstr(why, "truncated"));
	assert_int_equal(check("\0\0\0\0\1a\0", 7, 16, 0, &msg, &len, why, sizeof(why)),
			 VD_GRPC_INTERNAL);
	assert_non_null(strstr(why, "exactly one message"));
	assert_int_equal(check("\0\0\0\0\1a\0\0\0\0\0", 11, 16, 1, &msg, &len, why, sizeof(why)),
			 VD_GRPC_INTERNAL);
}

static int timeout(const char *s, uint64_t *ms)
{
	return vd_grpc_timeout_parse(s, strlen(s), ms);
}

static void test_timeout(void **state)
{
	(void)state;
	uint64_t ms = 0;
	assert_int_equal(timeout("1H", &ms), 0);
	assert_true(ms == 3600000);
	assert_int_equal(timeout("2M", &ms), 0);
	assert_true(ms == 120000);
	assert_int_equal(timeout("30S", &ms), 0);
	assert_true(ms == 30000);
	assert_int_equal(timeout("250m", &ms), 0);
	assert_true(ms == 250);
	assert_int_equal(timeout("1500u", &ms), 0);
	assert_true(ms == 2);                      /* rounded up */
	assert_int_equal(timeout("1n", &ms), 0);
	assert_true(ms == 1);
	assert_int_equal(timeout("0m", &ms), 0);
	assert_true(ms == 0);
	assert_int_equal(timeout("99999999H", &ms), 0);
	assert_true(ms == 99999999ull * 3600000);
	assert_int_equal(timeout("99999999n", &ms), 0);
	assert_true(ms == 100);

	const char *bad[] = { "", "S", "10", "123456789S", "1s", "1x", "-1S", " 1S", "1 S",
			      "1.5S", "1SS" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(timeout(bad[i], &ms), -EINVAL);
	/* Not NUL-terminated: only len bytes are read. */
	assert_int_equal(vd_grpc_timeout_parse("5Sjunk", 2, &ms), 0);
	assert_true(ms == 5000);
}

static void test_percent(void **state)
{
	(void)state;
	char buf[64], back[64];
	assert_int_equal(vd_grpc_percent_encode("plain text: ok!", buf, sizeof(buf)), 15);
	assert_string_equal(buf, "plain text: ok!");
	assert_int_equal(vd_grpc_percent_encode("50% \xc3\xa9\n", buf, sizeof(buf)), 15);
	assert_string_equal(buf, "50%25 %C3%A9%0A");

	/* Truncation never splits an escape; the full length is returned. */
	assert_int_equal(vd_grpc_percent_encode("a\nb", buf, 3), 5);
	assert_string_equal(buf, "a");
	assert_int_equal(vd_grpc_percent_encode("a\nb", buf, 5), 5);
	assert_string_equal(buf, "a%0A");
	assert_int_equal(vd_grpc_percent_encode("abc", buf, 0), 3);

	const char *in = "d\xc3\xa9j\xc3\xa0 100% \t vu";
	vd_grpc_percent_encode(in, buf, sizeof(buf));
	assert_int_equal(vd_grpc_percent_decode(buf, strlen(buf), back, sizeof(back)), strlen(in));
	assert_string_equal(back, in);
	/* A lone or malformed escape is kept as is. */
	vd_grpc_percent_decode("100%", 4, back, sizeof(back));
	assert_string_equal(back, "100%");
	vd_grpc_percent_decode("%zz%4", 5, back, sizeof(back));
	assert_string_equal(back, "%zz%4");
	assert_int_equal(vd_grpc_percent_decode("%41%42%43", 9, back, 3), 3);
	assert_string_equal(back, "AB");
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(vd_grpc_status_name(VD_GRPC_OK), "OK");
	assert_string_equal(vd_grpc_status_name(VD_GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
	assert_string_equal(vd_grpc_status_name(VD_GRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
	assert_string_equal(vd_grpc_status_name(VD_GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(vd_grpc_status_name(17), "UNKNOWN");
	assert_string_equal(vd_grpc_status_name(-1), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_body_check),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_status_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
