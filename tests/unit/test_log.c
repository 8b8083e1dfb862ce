/* test_log.c — JSON log lines: every string escaped, bytes that are not
 * UTF-8 replaced, an operation's structured fields, a line cut to fit
 * still one valid JSON object; the level and format names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "../../volumed/log.h"

/* The line as JSON; it must end in exactly one '\n'. */
static json_t *parse_line(const char *line, size_t len)
{
	assert_true(len > 2);
	assert_int_equal(line[len - 1], '\n');
	assert_null(memchr(line, '\n', len - 1));
	json_error_t jerr;
	json_t *doc = json_loadb(line, len, 0, &jerr);
	if (!doc)
		fail_msg("not JSON (%s): %.*s", jerr.text, (int)len, line);
	assert_true(json_is_object(doc));
	return doc;
}

static const char *str(json_t *doc, const char *key)
{
	const char *v = json_string_value(json_object_get(doc, key));
	if (!v)
		fail_msg("no string %s", key);
	return v;
}

static void test_plain_line(void **state)
{
	(void)state;
	char line[2048];
	size_t len = vd_log_json_line(line, sizeof(line), "2026-01-02T03:04:05.678Z", "info",
				      "api listening on /run/volumed/api.sock", NULL);
	json_t *doc = parse_line(line, len);
	assert_string_equal(str(doc, "ts"), "2026-01-02T03:04:05.678Z");
	assert_string_equal(str(doc, "level"), "info");
	assert_string_equal(str(doc, "msg"), "api listening on /run/volumed/api.sock");
	assert_int_equal(json_object_size(doc), 3);
	json_decref(doc);
}

static void test_escaping(void **state)
{
	(void)state;
	char line[2048];
	const char *nasty = "q\"uote b\\ack\nnew\rret\ttab \x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac";
	size_t len = vd_log_json_line(line, sizeof(line), "t", "warn", nasty, NULL);
	json_t *doc = parse_line(line, len);
	assert_string_equal(str(doc, "msg"), nasty);   /* round-trips exactly */
	json_decref(doc);
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	char line[2048];
	/* a lone continuation byte, 0xff, a cut sequence, an overlong '/', a
	 * surrogate, a code point past U+10FFFF */
	const char *bad = "a\x80" "b\xff" "c\xe2\x82" "d\xc0\xaf" "e\xed\xa0\x80" "f\xf4\x90\x80\x80";
	size_t len = vd_log_json_line(line, sizeof(line), "t", "info", bad, NULL);
	json_t *doc = parse_line(line, len);
	const char *msg = str(doc, "msg");
	assert_int_equal(msg[0], 'a');
	assert_int_equal(msg[1], '?');
	assert_int_equal(msg[2], 'b');
	assert_int_equal(msg[3], '?');
	for (const char *p = msg; *p; p++)
		assert_true((unsigned char)*p < 0x80);   /* every bad byte became '?' */
	assert_non_null(strstr(msg, "f????"));
	json_decref(doc);
}

static void test_op_fields(void **state)
{
	(void)state;
	char line[2048];
	struct vd_log_op_fields ok = { "api", "create", "v\"1", 1.5, NULL };
	size_t len = vd_log_json_line(line, sizeof(line), "t", "info", "api create ok", &ok);
	json_t *doc = parse_line(line, len);
	assert_string_equal(str(doc, "frontend"), "api");
	assert_string_equal(str(doc, "op"), "create");
	assert_string_equal(str(doc, "volume"), "v\"1");
	assert_true(json_real_value(json_object_get(doc, "ms")) == 1.5);
	assert_true(json_is_true(json_object_get(doc, "ok")));
	assert_null(json_object_get(doc, "err"));
	json_decref(doc);
	struct vd_log_op_fields bad = { "docker", "mount", "x", 0.25, "volume x: \"no\"\n" };
	len = vd_log_json_line(line, sizeof(line), "t", "warn", "docker mount failed", &bad);
	doc = parse_line(line, len);
	assert_string_equal(str(doc, "err"), "volume x: \"no\"\n");
	assert_null(json_object_get(doc, "ok"));
	json_decref(doc);
}

/* Cut anywhere, a line is still one object: here at every size, with a
 * message of two-byte escapes and multi-byte characters. */
static void test_cut_to_fit(void **state)
{
	(void)state;
	char msg[3000], line[512];
	size_t n = 0;
	while (n + 4 < sizeof(msg)) {
		msg[n++] = '"';
		msg[n++] = '\xc3';
		msg[n++] = '\xa9';
	}
	msg[n] = '\0';
	for (size_t cap = 64; cap <= sizeof(line); cap++) {
		struct vd_log_op_fields f = { "csi", "stage", msg, 3, msg };
		size_t len = vd_log_json_line(line, cap, "2026-01-02T03:04:05.678Z", "info", msg, &f);
		assert_true(len < cap);
		json_decref(parse_line(line, len));
	}
}

static void test_names(void **state)
{
	(void)state;
	enum vd_log_format f = VD_LOG_TEXT;
	assert_int_equal(vd_log_parse_format("json", &f), 0);
	assert_int_equal(f, VD_LOG_JSON);
	assert_int_equal(vd_log_parse_format("text", &f), 0);
	assert_int_equal(f, VD_LOG_TEXT);
	assert_int_equal(vd_log_parse_format("JSON", &f), -EINVAL);
	assert_int_equal(vd_log_parse_format(NULL, &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_line),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_op_fields),
		cmocka_unit_test(test_cut_to_fit),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
