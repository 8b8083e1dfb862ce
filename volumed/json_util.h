/* json_util.h — small helpers over jansson shared by the parsers. Pure. */
#ifndef VD_JSON_UTIL_H
#define VD_JSON_UTIL_H

#include <jansson.h>
#include <stddef.h>

/* "an object", "a string", "an integer", ..., for error messages. */
const char *vd_json_type_name(const json_t *value);

/* JSON text written straight into a growing buffer, for large replies
 * where building a jansson tree first would cost an allocation per value. */
struct vd_json_text {
	char *data;   /* malloc'd, NUL-terminated; NULL until the first write */
	size_t len, cap;
	int failed;   /* an allocation failed: data is incomplete */
};

void vd_json_text_raw(struct vd_json_text *t, const char *s);
/* s as a quoted JSON string, escaping quotes, backslashes and controls. */
void vd_json_text_string(struct vd_json_text *t, const char *s);
/* Hands over data (NULL if anything failed) and resets t. */
char *vd_json_text_take(struct vd_json_text *t);

#endif
