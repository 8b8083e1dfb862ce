/* test_json_util.c — JSON type names and the JSON text writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../volumed/json_util.h"

static void test_type_names(void **state)
{
	(void)state;
	json_t *values[] = { json_object(), json_array(), json_string("x"), json_integer(1),
			     json_real(1.5), json_true(), json_null() };
	const char *names[] = { "an object", "an array", "a string", "an integer", "a number",
				"a boolean", "null" };
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		assert_string_equal(vd_json_type_name(values[i]), names[i]);
		json_decref(values[i]);
	}
}

/* Whatever the writer produces parses back to the same string. */
static void roundtrip(const char *s)
{
	struct vd_json_text t = { 0 };
	vd_json_text_raw(&t, "[");
	vd_json_text_string(&t, s);
	vd_json_text_raw(&t, "]");
	char *text = vd_json_text_take(&t);
	assert_non_null(text);
	json_error_t jerr;
	json_t *doc = json_loads(text, 0, &jerr);
	if (!doc)
		fail_msg("'%s' does not parse: %s", text, jerr.text);
	assert_string_equal(json_string_value(json_array_get(doc, 0)), s);
	json_decref(doc);
	free(text);
	assert_null(t.data);
}

static void test_text_escapes(void **state)
{
	(void)state;
	roundtrip("");
	roundtrip("plain/path/v1");
	roundtrip("quote\" backslash\\ tab\t newline\n bell\x07 del\x7f");
	roundtrip("ünïcödé");
}

static void test_text_grows(void **state)
{
	(void)state;
	struct vd_json_text t = { 0 };
	char chunk[1000];
	memset(chunk, 'x', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\0';
	for (int i = 0; i < 100; i++)
		vd_json_text_raw(&t, chunk);
	assert_int_equal(t.len, 100 * 999);
	char *text = vd_json_text_take(&t);
	assert_int_equal(strlen(text), 100 * 999);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_text_escapes),
		cmocka_unit_test(test_text_grows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
