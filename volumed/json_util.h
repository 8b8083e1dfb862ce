/* json_util.h — small helpers over jansson shared by the parsers. Pure. */
#ifndef VD_JSON_UTIL_H
#define VD_JSON_UTIL_H

#include <jansson.h>

/* "an object", "a string", "an integer", ..., for error messages. */
const char *vd_json_type_name(const json_t *value);

#endif
