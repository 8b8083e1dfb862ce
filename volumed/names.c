/* names.c — volume names, option pairs and sizes. Pure; thread-safe. */
#include "names.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int name_char_ok(char c, int first)
{
	if (isascii((unsigned char)c) && isalnum((unsigned char)c))
		return 1;
	return !first && (c == '_' || c == '.' || c == '-');
}

int vd_name_check(const char *name, struct vd_err *err)
{
	if (!name || !*name)
		return vd_err_set(err, -EINVAL, "volume name is empty; allowed: %s", VD_NAME_RULE);
	size_t len = strnlen(name, VD_NAME_MAX + 1);
	if (len > VD_NAME_MAX)
		return vd_err_set(err, -EINVAL,
				  "volume name is longer than %d characters; allowed: %s",
				  VD_NAME_MAX, VD_NAME_RULE);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (name_char_ok(name[i], i == 0))
			continue;
		if (isprint(c) && c < 0x80)
			return vd_err_set(err, -EINVAL,
					  "volume name has '%c' at position %zu; allowed: %s",
					  c, i + 1, VD_NAME_RULE);
		return vd_err_set(err, -EINVAL,
				  "volume name has byte 0x%02x at position %zu; allowed: %s",
				  c, i + 1, VD_NAME_RULE);
	}
	return 0;
}

struct size_unit {
	const char *suffix;
	uint64_t factor;
};

/* Longest suffixes first so "Mi" wins over "M". */
static const struct size_unit size_units[] = {
	{ "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 }, { "TiB", 1ULL << 40 },
	{ "Ki", 1ULL << 10 },  { "Mi", 1ULL << 20 },  { "Gi", 1ULL << 30 },  { "Ti", 1ULL << 40 },
	{ "KB", 1000ULL },     { "MB", 1000000ULL },  { "GB", 1000000000ULL }, { "TB", 1000000000000ULL },
	{ "K", 1000ULL },      { "M", 1000000ULL },   { "G", 1000000000ULL }, { "T", 1000000000000ULL },
	{ "k", 1000ULL },      { "B", 1ULL },         { "", 1ULL },
};

#define SIZE_RULE "digits with an optional unit K M G T (x1000) or Ki Mi Gi Ti (x1024), e.g. 64Mi"

int vd_size_parse(const char *s, uint64_t *ret_bytes, struct vd_err *err)
{
	if (!s || !*s)
		return vd_err_set(err, -EINVAL, "size is empty; allowed: " SIZE_RULE);
	uint64_t value = 0;
	size_t i = 0;
	for (; isdigit((unsigned char)s[i]); i++) {
		uint64_t digit = (uint64_t)(s[i] - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return vd_err_set(err, -EINVAL, "size '%.40s' is too large", s);
		value = value * 10 + digit;
	}
	if (i == 0 || i > 20)
		return vd_err_set(err, -EINVAL, "size '%.40s' is not a number; allowed: " SIZE_RULE, s);
	for (size_t u = 0; u < sizeof(size_units) / sizeof(size_units[0]); u++) {
		if (strcmp(s + i, size_units[u].suffix) != 0)
			continue;
		if (value > UINT64_MAX / size_units[u].factor)
			return vd_err_set(err, -EINVAL, "size '%.40s' is too large", s);
		*ret_bytes = value * size_units[u].factor;
		return 0;
	}
	return vd_err_set(err, -EINVAL, "size '%.40s' has an unknown unit; allowed: " SIZE_RULE, s);
}

void vd_size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const binary[] = { "Ti", "Gi", "Mi", "Ki" };
	for (int i = 0; i < 4; i++) {
		uint64_t factor = 1ULL << (10 * (4 - i));
		if (bytes && bytes % factor == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", bytes / factor, binary[i]);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64, bytes);
}

static int opt_key_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int vd_opt_pair_parse(const char *pair, char *key, size_t keylen,
		      char *value, size_t vallen, struct vd_err *err)
{
	const char *eq = pair ? strchr(pair, '=') : NULL;
	if (!eq)
		return vd_err_set(err, -EINVAL, "option '%.60s' is not key=value", pair ? pair : "");
	size_t klen = (size_t)(eq - pair);
	if (klen == 0)
		return vd_err_set(err, -EINVAL, "option '%.60s' has an empty key", pair);
	if (klen >= keylen)
		return vd_err_set(err, -EINVAL, "option key '%.40s...' is longer than %zu characters",
				  pair, keylen - 1);
	for (size_t i = 0; i < klen; i++)
		if (!opt_key_char_ok(pair[i]))
			return vd_err_set(err, -EINVAL, "option key '%.*s' has a character outside [a-z0-9_.-]",
					  (int)(klen > 60 ? 60 : klen), pair);
	size_t vlen = strlen(eq + 1);
	if (vlen >= vallen)
		return vd_err_set(err, -EINVAL, "option '%.*s' has a value longer than %zu characters",
				  (int)klen, pair, vallen - 1);
	memcpy(key, pair, klen);
	key[klen] = '\0';
	memcpy(value, eq + 1, vlen + 1);
	return 0;
}
