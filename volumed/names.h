/* names.h — volume names, option pairs and sizes: the small parsers every
 * front-end shares. Pure functions, no I/O, no locks. */
#ifndef VD_NAMES_H
#define VD_NAMES_H

#include <stdint.h>
#include <stddef.h>

#include "err.h"

#define VD_NAME_MAX 255
#define VD_NAME_RULE "[A-Za-z0-9][A-Za-z0-9_.-]{0,254}"

/* 0 when name matches VD_NAME_RULE; -EINVAL with a message otherwise. */
int vd_name_check(const char *name, struct vd_err *err);

/* Sizes: digits with an optional unit K M G T (powers of 1000) or
 * Ki Mi Gi Ti (powers of 1024); a trailing "B" is allowed ("64MiB").
 * No unit means bytes. Overflow and empty strings are -EINVAL. */
int vd_size_parse(const char *s, uint64_t *ret_bytes, struct vd_err *err);

/* Human form of a byte count, exact when possible: 67108864 -> "64Mi". */
void vd_size_format(uint64_t bytes, char *buf, size_t len);

/* Splits "key=value" in place-free fashion: key and value are copied into
 * key (keylen) and value (vallen). -EINVAL when '=' is missing or the key
 * is empty or not [a-z0-9_.-]+. */
int vd_opt_pair_parse(const char *pair, char *key, size_t keylen,
		      char *value, size_t vallen, struct vd_err *err);

#endif
