/* json_util.c — small helpers over jansson. Pure; thread-safe. */
#include "json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vd_json_type_name(const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

static void text_append(struct vd_json_text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *data = realloc(t->data, cap);
		if (!data) {
			t->failed = 1;
			return;
		}
		t->data = data;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

void vd_json_text_raw(struct vd_json_text *t, const char *s)
{
	text_append(t, s, strlen(s));
}

void vd_json_text_string(struct vd_json_text *t, const char *s)
{
	text_append(t, "\"", 1);
	for (const char *run = s;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		text_append(t, run, (size_t)(s - run));
		if (c == '\0')
			break;
		char esc[8];
		snprintf(esc, sizeof(esc), c == '"' || c == '\\' ? "\\%c" : "\\u%04x", c);
		text_append(t, esc, strlen(esc));
		run = s + 1;
	}
	text_append(t, "\"", 1);
}

char *vd_json_text_take(struct vd_json_text *t)
{
	char *data = t->failed ? NULL : t->data;
	if (t->failed)
		free(t->data);
	*t = (struct vd_json_text){ 0 };
	return data;
}
