/* iscsi_meta.c — the iscsi driver's settings, options, specs, records,
 * reservation keys and IQNs, and the parser of tgtadm's target listing:
 * parsers and builders, nothing else.
 *
 * Pure: no I/O, no global state, no locks; thread-safe. CHAP values never
 * reach an error message. */
#include "iscsi_meta.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../volumed/json_util.h"
#include "../volumed/names.h"

#define MIB (1024ULL * 1024)
/* Largest volume size: sizes are JSON integers (int64), MiB multiples. */
#define SIZE_LIMIT ((uint64_t)INT64_MAX / MIB * MIB)
#define SIZE_RULE "a size from 16Mi to 8 EiB like \"10G\" or \"512Mi\", or an integer of bytes"
#define IQN_MAX 223
#define IQN_PREFIX "iqn.2026-01.io.volumed:"
#define IQN_CHARS "abcdefghijklmnopqrstuvwxyz0123456789.-:"
#define IQN_RULE "an IQN like iqn.2026-01.com.example:name ([a-z0-9.-:], at most 223 bytes)"
#define PORTAL_RULE "HOST, HOST:PORT or [IPv6]:PORT"
#define KEY_RULE "1 to 16 hex digits, 0x optional, not 0"
#define CHAP_KEYS "username, password, target_username, target_password"
#define BACKEND_NAME_MAX 64
#define PATH_LEN_MAX 4095
#define STATIC_TARGETS_MAX 4096
#define TGT_TARGETS_MAX 4096
#define TGT_LIST_MAX 65536   /* LUNs, accounts, ACL entries, sessions per target */

static const char *const mode_names[] = { "auto", "kernel", "fuse" };
static const char *const provisioner_names[] = { "tgt", "static" };
static const char *const fstype_names[] = { "ext4", "xfs" };
static const char *const option_keys[] = { "backend", "size", "fstype", "wipe", "preempt" };
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Index of s in names[0..n), or -1. */
static int name_index(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

const char *vd_iscsi_mode_name(enum vd_iscsi_mode mode)
{
	return (unsigned)mode < COUNT(mode_names) ? mode_names[mode] : "?";
}

const char *vd_iscsi_provisioner_name(enum vd_iscsi_provisioner p)
{
	return (unsigned)p < COUNT(provisioner_names) ? provisioner_names[p] : "?";
}

static int oom(struct vd_err *err)
{
	return vd_err_set(err, -ENOMEM, "out of memory");
}

static int dup_to(char **dst, const char *s, size_t n, struct vd_err *err)
{
	return (*dst = strndup(s, n)) ? 0 : oom(err);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* No control characters (ASCII 0-31, 127). */
static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* Decimal digits [s, s+n) into *ret, at most max. */
static int dec_parse(const char *s, size_t n, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]) || v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* ---- reservation keys and IQNs ---------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t vd_iscsi_key_from_node(const char *node_id)
{
	uint64_t h = fnv1a(fnv1a(0xcbf29ce484222325ULL, "volumed:"), node_id ? node_id : "");
	return h ? h : 1;
}

void vd_iscsi_key_format(uint64_t key, char *buf, size_t len)
{
	snprintf(buf, len, "0x%016" PRIx64, key);
}

int vd_iscsi_key_parse(const char *s, uint64_t *ret, struct vd_err *err)
{
	const char *p = s ? s : "";
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	size_t n = strspn(p, "0123456789abcdefABCDEF");
	if (n == 0 || n > 16 || p[n])
		return vd_err_set(err, -EINVAL, "reservation key '%.40s' is not " KEY_RULE, s ? s : "");
	uint64_t key = strtoull(p, NULL, 16);
	if (key == 0)
		return vd_err_set(err, -EINVAL, "reservation key '%.40s' is 0; expected " KEY_RULE, s);
	*ret = key;
	return 0;
}

int vd_iscsi_iqn_valid(const char *s)
{
	size_t len = s ? strnlen(s, IQN_MAX + 1) : 0;
	if (len < 13 || len > IQN_MAX || strncmp(s, "iqn.", 4) != 0)
		return 0;
	for (size_t i = 4; i < 8; i++)
		if (!is_digit(s[i]))
			return 0;
	if (s[8] != '-' || !is_digit(s[9]) || !is_digit(s[10]) || s[11] != '.')
		return 0;
	int month = (s[9] - '0') * 10 + (s[10] - '0');
	return month >= 1 && month <= 12 && strspn(s + 12, IQN_CHARS) == len - 12;
}

static char iqn_char(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c - 'A' + 'a');
	return c && strchr(IQN_CHARS, c) ? c : '-';
}

/* IQN_PREFIX + id in IQN characters, cut at IQN_MAX bytes (and len). */
static void iqn_from_id(const char *id, char *buf, size_t len)
{
	if (len == 0)
		return;
	size_t o = 0, max = len - 1 < IQN_MAX ? len - 1 : IQN_MAX;
	for (const char *p = IQN_PREFIX; *p && o < max; p++)
		buf[o++] = *p;
	for (const char *p = id; *p && o < max; p++)
		buf[o++] = iqn_char(*p);
	buf[o] = '\0';
}

void vd_iscsi_initiator_from_node(const char *node_id, char *buf, size_t len)
{
	iqn_from_id(node_id && *node_id ? node_id : "node", buf, len);
}

/* ---- settings: value checkers ------------------------------------------ */

static int string_setting(const char *what, const json_t *v, const char *rule, const char **ret,
			  struct vd_err *err)
{
	if (!json_is_string(v))
		return vd_err_set(err, -EINVAL, "%s: expected %s, got %s", what, rule,
				  vd_json_type_name(v));
	*ret = json_string_value(v);
	return 0;
}

static int int_setting(const char *what, const json_t *v, int min, int max, const char *unit,
		       int *ret, struct vd_err *err)
{
	json_int_t i = json_is_integer(v) ? json_integer_value(v) : (json_int_t)min - 1;
	if (i < min || i > max)
		return vd_err_set(err, -EINVAL, "%s: expected an integer from %d to %d%s", what, min,
				  max, unit);
	*ret = (int)i;
	return 0;
}

static int bool_setting(const char *what, const json_t *v, int *ret, struct vd_err *err)
{
	if (!json_is_boolean(v))
		return vd_err_set(err, -EINVAL, "%s: expected true or false, got %s", what,
				  vd_json_type_name(v));
	*ret = json_is_true(v);
	return 0;
}

/* One of names[0..n) (listed in list) into *ret. */
static int enum_setting(const char *what, const json_t *v, const char *const *names, size_t n,
			const char *list, int *ret, struct vd_err *err)
{
	const char *s = NULL;
	int r = string_setting(what, v, list, &s, err);
	if (r < 0)
		return r;
	if ((*ret = name_index(s, names, n)) < 0)
		return vd_err_set(err, -EINVAL, "%s: '%.40s' is not one of %s", what, s, list);
	return 0;
}

/* A size string or a JSON integer of bytes, VD_ISCSI_SIZE_MIN..SIZE_LIMIT. */
static int size_setting(const char *what, const json_t *v, uint64_t *ret, struct vd_err *err)
{
	uint64_t size = 0;
	if (json_is_integer(v) && json_integer_value(v) > 0)
		size = (uint64_t)json_integer_value(v);
	else if (json_is_string(v))
		vd_size_parse(json_string_value(v), &size, NULL);   /* size stays 0 on failure */
	if (size < VD_ISCSI_SIZE_MIN || size > SIZE_LIMIT)
		return vd_err_set(err, -EINVAL, "%s: expected " SIZE_RULE, what);
	*ret = size;
	return 0;
}

/* An absolute path without control characters or ".." components. */
static int path_ok(const char *s)
{
	size_t len = strnlen(s, PATH_LEN_MAX + 1);
	if (s[0] != '/' || len > PATH_LEN_MAX)
		return 0;
	if (!printable(s))
		return 0;
	for (const char *p = s; (p = strstr(p, "/..")); p += 3)
		if (p[3] == '/' || p[3] == '\0')
			return 0;
	return 1;
}

static int path_setting(const char *what, const json_t *v, char **ret, struct vd_err *err)
{
	const char *s = NULL;
	int r = string_setting(what, v, "an absolute path", &s, err);
	if (r == 0 && !path_ok(s))
		r = vd_err_set(err, -EINVAL, "%s: '%.60s' is not an absolute path without control "
			       "characters or '..' components", what, s);
	return r < 0 ? r : dup_to(ret, s, strlen(s), err);
}

static int iqn_setting(const char *what, const json_t *v, char **ret, struct vd_err *err)
{
	const char *s = NULL;
	int r = string_setting(what, v, IQN_RULE, &s, err);
	if (r == 0 && !vd_iscsi_iqn_valid(s))
		r = vd_err_set(err, -EINVAL, "%s: '%.60s' is not " IQN_RULE, what, s);
	return r < 0 ? r : dup_to(ret, s, strlen(s), err);
}

/* ---- settings: portals ----------------------------------------------- */

static int host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' ||
	       c == '-' || c == '_';
}

static int v6_ok(const char *s, size_t n)
{
	size_t colons = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':')
			colons++;
		else if (!isxdigit((unsigned char)s[i]) && s[i] != '.')
			return 0;
	}
	return colons >= 2 && n <= 45;
}

/* The length of the host that starts s (inside the brackets for IPv6)
 * and, in *rest, what follows it. */
static int portal_host(const char *what, const char *s, size_t *ret_len, const char **rest,
		       struct vd_err *err)
{
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || !v6_ok(s + 1, (size_t)(end - s - 1)))
			return vd_err_set(err, -EINVAL, "%s: '%.60s' has no IPv6 address in "
					  "brackets; expected " PORTAL_RULE, what, s);
		*ret_len = (size_t)(end - s - 1);
		*rest = end + 1;
		return 0;
	}
	size_t n = strcspn(s, ":");
	if (s[n] == ':' && strchr(s + n + 1, ':'))
		return vd_err_set(err, -EINVAL, "%s: '%.60s': an IPv6 address needs brackets; "
				  "expected " PORTAL_RULE, what, s);
	for (size_t i = 0; i < n; i++)
		if (!host_char_ok(s[i]))
			return vd_err_set(err, -EINVAL, "%s: the host has '%c'; allowed: letters, "
					  "digits, '.', '-', '_'; expected " PORTAL_RULE, what,
					  isprint((unsigned char)s[i]) ? s[i] : '?');
	if (n == 0 || n > 253)
		return vd_err_set(err, -EINVAL, "%s: the host is empty or longer than 253 bytes; "
				  "expected " PORTAL_RULE, what);
	*ret_len = n;
	*rest = s + n;
	return 0;
}

/* "host", "host:port", "[v6]" or "[v6]:port" -> with the port, always. */
static int portal_parse(const char *what, const char *s, char **ret, struct vd_err *err)
{
	const char *rest = s;
	size_t hlen = 0;
	uint64_t port = VD_ISCSI_PORT_DEFAULT;
	if (strchr(s, '@'))   /* user:password@host: never echoed */
		return vd_err_set(err, -EINVAL, "%s: credentials do not belong in the portal (use "
				  "chap); expected " PORTAL_RULE, what);
	if (strstr(s, "://"))
		return vd_err_set(err, -EINVAL, "%s: '%.60s' is a URL; expected " PORTAL_RULE, what,
				  s);
	int r = portal_host(what, s, &hlen, &rest, err);
	if (r < 0)
		return r;
	if (*rest && (rest[0] != ':' || dec_parse(rest + 1, strlen(rest + 1), 65535, &port) < 0 ||
		      port == 0))
		return vd_err_set(err, -EINVAL, "%s: '%.60s' has a bad port; expected " PORTAL_RULE
				  " with PORT from 1 to 65535", what, s);
	int v6 = s[0] == '[';
	if (asprintf(ret, "%s%.*s%s:%u", v6 ? "[" : "", (int)hlen, s + v6, v6 ? "]" : "",
		     (unsigned)port) < 0) {
		*ret = NULL;
		return oom(err);
	}
	return 0;
}

/* ---- settings: CHAP ----------------------------------------------------- */

static void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void chap_clear(struct vd_iscsi_chap *c)
{
	free(c->username);
	secret_free(c->password);
	free(c->target_username);
	secret_free(c->target_password);
	*c = (struct vd_iscsi_chap){ 0 };
}

/* A user name (1-255 printable, no spaces) or, secret, a password (1-255
 * printable). Its value is never put in a message. */
static int chap_value(const char *what, const json_t *v, int secret, char **ret,
		      struct vd_err *err)
{
	const char *s = json_string_value(v);
	size_t len = s ? strnlen(s, VD_ISCSI_SECRET_MAX + 1) : 0;
	int ok = len >= 1 && len <= VD_ISCSI_SECRET_MAX;
	for (size_t i = 0; ok && i < len; i++)
		ok = s[i] > (secret ? 0x1f : 0x20) && s[i] < 0x7f;
	if (!ok)
		return vd_err_set(err, -EINVAL, "%s: expected a string of 1 to %d printable ASCII "
				  "characters%s", what, VD_ISCSI_SECRET_MAX,
				  secret ? "" : " without spaces");
	return dup_to(ret, s, len, err);
}

static int chap_parse(const char *what, const json_t *obj, struct vd_iscsi_chap *c,
		      struct vd_err *err)
{
	static const char *const keys[] = { "username", "password", "target_username",
					     "target_password" };
	char **dst[] = { &c->username, &c->password, &c->target_username, &c->target_password };
	char sub[192];
	const char *key;
	json_t *value;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "%s: expected an object with keys " CHAP_KEYS
				  ", got %s", what, vd_json_type_name(obj));
	json_object_foreach((json_t *)obj, key, value) {
		int i = name_index(key, keys, COUNT(keys));
		snprintf(sub, sizeof(sub), "%s.%.40s", what, key);
		if (i < 0)
			return vd_err_set(err, -EINVAL, "%s: unknown key; accepted: " CHAP_KEYS, sub);
		int r = chap_value(sub, value, i % 2 /* the passwords */, dst[i], err);
		if (r < 0)
			return r;
	}
	if (!c->username != !c->password)
		return vd_err_set(err, -EINVAL, "%s: username and password go together", what);
	if (!c->target_username != !c->target_password)
		return vd_err_set(err, -EINVAL, "%s: target_username and target_password go "
				  "together", what);
	if (c->target_username && !c->username)
		return vd_err_set(err, -EINVAL, "%s: mutual CHAP (target_username, "
				  "target_password) needs username and password too", what);
	return 0;
}

/* ---- settings: static targets ------------------------------------------- */

static int static_luns(const char *what, const json_t *arr, struct vd_iscsi_static_target *t,
		       struct vd_err *err)
{
	unsigned char seen[VD_ISCSI_LUN_MAX / 8 + 1] = { 0 };
	size_t n = json_array_size(arr), i;
	json_t *v;
	if (!json_is_array(arr) || n == 0)
		return vd_err_set(err, -EINVAL, "%s: expected a non-empty array of LUN numbers "
				  "(omit luns for every disk LUN)", what);
	if (!(t->luns = calloc(n, sizeof(*t->luns))))
		return oom(err);
	json_array_foreach(arr, i, v) {
		json_int_t lun = json_is_integer(v) ? json_integer_value(v) : -1;
		if (lun < 0 || lun > VD_ISCSI_LUN_MAX)
			return vd_err_set(err, -EINVAL, "%s[%zu]: expected a LUN number from 0 to %d",
					  what, i, VD_ISCSI_LUN_MAX);
		if (seen[lun / 8] & (1u << (lun % 8)))
			return vd_err_set(err, -EINVAL, "%s: LUN %d is listed twice", what, (int)lun);
		seen[lun / 8] |= (unsigned char)(1u << (lun % 8));
		t->luns[t->lun_count++] = (int)lun;
	}
	return 0;
}

static int static_target(const char *what, const json_t *obj, struct vd_iscsi_static_target *t,
			 struct vd_err *err)
{
	char sub[192];
	const char *key;
	json_t *value;
	int r = 0;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "%s: expected an object {\"target\": IQN, \"luns\": "
				  "[N, ...]}, got %s", what, vd_json_type_name(obj));
	json_object_foreach((json_t *)obj, key, value) {
		snprintf(sub, sizeof(sub), "%s.%.40s", what, key);
		if (strcmp(key, "target") == 0)
			r = iqn_setting(sub, value, &t->iqn, err);
		else if (strcmp(key, "luns") == 0)
			r = static_luns(sub, value, t, err);
		else
			r = vd_err_set(err, -EINVAL, "%s: unknown key; accepted: target, luns", sub);
		if (r < 0)
			return r;
	}
	if (!t->iqn)
		return vd_err_set(err, -EINVAL, "%s.target: missing; expected " IQN_RULE, what);
	return 0;
}

static int static_targets(const char *what, const json_t *arr, struct vd_iscsi_backend *b,
			  struct vd_err *err)
{
	char sub[192];
	size_t n = json_array_size(arr), i;
	json_t *v;
	if (!json_is_array(arr) || n > STATIC_TARGETS_MAX)
		return vd_err_set(err, -EINVAL, "%s: expected an array of at most %d objects "
				  "{\"target\": IQN, \"luns\": [N, ...]}", what, STATIC_TARGETS_MAX);
	if (n && !(b->targets = calloc(n, sizeof(*b->targets))))
		return oom(err);
	json_array_foreach(arr, i, v) {
		struct vd_iscsi_static_target *t = &b->targets[b->target_count++];
		snprintf(sub, sizeof(sub), "%s[%zu]", what, i);
		int r = static_target(sub, v, t, err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < i; k++)
			if (strcmp(b->targets[k].iqn, t->iqn) == 0)
				return vd_err_set(err, -EINVAL, "%s: target %s is listed twice", what,
						  t->iqn);
	}
	return 0;
}

/* ---- settings: backends ----------------------------------------------- */

typedef int backend_key_fn(const char *what, const json_t *v, struct vd_iscsi_backend *b,
			   struct vd_err *err);

static int key_portal(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		      struct vd_err *err)
{
	const char *s = NULL;
	int r = string_setting(what, v, "a portal like \"10.0.0.5:3260\"", &s, err);
	return r < 0 ? r : portal_parse(what, s, &b->portal, err);
}

static int key_timeout(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		       struct vd_err *err)
{
	return int_setting(what, v, VD_ISCSI_TIMEOUT_MIN, VD_ISCSI_TIMEOUT_MAX, " (milliseconds)",
			   &b->timeout_ms, err);
}

static int key_mode(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		    struct vd_err *err)
{
	int i, r = enum_setting(what, v, mode_names, COUNT(mode_names), "auto, kernel, fuse", &i,
				err);
	if (r == 0)
		b->mode = (enum vd_iscsi_mode)i;
	return r;
}

static int key_fstype(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		      struct vd_err *err)
{
	int i, r = enum_setting(what, v, fstype_names, COUNT(fstype_names), VD_ISCSI_FSTYPES, &i,
				err);
	return r < 0 ? r : dup_to(&b->fstype, fstype_names[i], strlen(fstype_names[i]), err);
}

static int key_wipe(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		    struct vd_err *err)
{
	return bool_setting(what, v, &b->wipe, err);
}

static int key_max_volume_size(const char *what, const json_t *v, struct vd_iscsi_backend *b,
			       struct vd_err *err)
{
	return size_setting(what, v, &b->max_volume_size, err);
}

static int key_chap(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		    struct vd_err *err)
{
	return chap_parse(what, v, &b->chap, err);
}

static int key_target(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		      struct vd_err *err)
{
	return iqn_setting(what, v, &b->target, err);
}

static int key_tid(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		   struct vd_err *err)
{
	return int_setting(what, v, 1, VD_ISCSI_TID_MAX, " (tgt target id)", &b->tid, err);
}

static int key_control_port(const char *what, const json_t *v, struct vd_iscsi_backend *b,
			    struct vd_err *err)
{
	return int_setting(what, v, 0, 32767, " (tgtd -C N)", &b->control_port, err);
}

/* A program name found on PATH (no '/'), or an absolute path. */
static int key_tgtadm(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		      struct vd_err *err)
{
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;
	int name_ok = n > 0 && n <= 255 && s[0] != '.' && s[0] != '-';
	for (size_t i = 0; name_ok && i < n; i++)
		name_ok = host_char_ok(s[i]) || s[i] == '+';
	if (!s || (!name_ok && !path_ok(s)))
		return vd_err_set(err, -EINVAL, "%s: expected a program name like \"tgtadm\" "
				  "([A-Za-z0-9._+-], no '/') or an absolute path", what);
	return dup_to(&b->tgtadm, s, n, err);
}

static int key_pool_dir(const char *what, const json_t *v, struct vd_iscsi_backend *b,
			struct vd_err *err)
{
	return path_setting(what, v, &b->pool_dir, err);
}

static int key_pool_size(const char *what, const json_t *v, struct vd_iscsi_backend *b,
			 struct vd_err *err)
{
	return size_setting(what, v, &b->pool_size, err);
}

static int key_targets(const char *what, const json_t *v, struct vd_iscsi_backend *b,
		       struct vd_err *err)
{
	return static_targets(what, v, b, err);
}

#define ANY_PROVISIONER (-1)
static const struct backend_key {
	const char *name;
	int only;               /* the provisioner the key belongs to, or ANY_PROVISIONER */
	backend_key_fn *parse;  /* NULL: read before the others */
} backend_keys[] = {
	{ "provisioner", ANY_PROVISIONER, NULL },
	{ "portal", ANY_PROVISIONER, key_portal },
	{ "timeout_ms", ANY_PROVISIONER, key_timeout },
	{ "mode", ANY_PROVISIONER, key_mode },
	{ "fstype", ANY_PROVISIONER, key_fstype },
	{ "wipe", ANY_PROVISIONER, key_wipe },
	{ "max_volume_size", ANY_PROVISIONER, key_max_volume_size },
	{ "chap", ANY_PROVISIONER, key_chap },
	{ "target", VD_ISCSI_TGT, key_target },
	{ "tid", VD_ISCSI_TGT, key_tid },
	{ "control_port", VD_ISCSI_TGT, key_control_port },
	{ "tgtadm", VD_ISCSI_TGT, key_tgtadm },
	{ "pool_dir", VD_ISCSI_TGT, key_pool_dir },
	{ "pool_size", VD_ISCSI_TGT, key_pool_size },
	{ "targets", VD_ISCSI_STATIC, key_targets },
};

static int backend_key(const char *name, const char *key, const json_t *v,
		       struct vd_iscsi_backend *b, struct vd_err *err)
{
	char what[160];
	const struct backend_key *k = NULL;
	snprintf(what, sizeof(what), "drivers.iscsi.backends.%s.%.40s", name, key);
	for (size_t i = 0; !k && i < COUNT(backend_keys); i++)
		if (strcmp(key, backend_keys[i].name) == 0)
			k = &backend_keys[i];
	if (!k)
		return vd_err_set(err, -EINVAL, "%s: unknown key; accepted: " VD_ISCSI_BACKEND_KEYS,
				  what);
	if (k->only != ANY_PROVISIONER && k->only != (int)b->provisioner)
		return vd_err_set(err, -EINVAL, "%s: belongs to provisioner %s; this backend's "
				  "provisioner is %s", what,
				  vd_iscsi_provisioner_name((enum vd_iscsi_provisioner)k->only),
				  vd_iscsi_provisioner_name(b->provisioner));
	return k->parse ? k->parse(what, v, b, err) : 0;
}

static void backend_clear(struct vd_iscsi_backend *b)
{
	free(b->name);
	free(b->portal);
	free(b->fstype);
	chap_clear(&b->chap);
	free(b->target);
	free(b->tgtadm);
	free(b->pool_dir);
	for (size_t i = 0; i < b->target_count; i++) {
		free(b->targets[i].iqn);
		free(b->targets[i].luns);
	}
	free(b->targets);
}

/* Backend names become file names and IQNs: the volume rule, 64 bytes. */
static int backend_name_check(const char *name, struct vd_err *err)
{
	if (vd_name_check(name, NULL) == 0 && strlen(name) <= BACKEND_NAME_MAX)
		return 0;
	return vd_err_set(err, -EINVAL, "drivers.iscsi.backends: backend name '%.40s' is not "
			  "usable; allowed: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name);
}

/* Defaults for what the backend's object left out. */
static int backend_defaults(struct vd_iscsi_backend *b, struct vd_err *err)
{
	char iqn[IQN_MAX + 1];
	if (!b->portal)
		return vd_err_set(err, -EINVAL, "drivers.iscsi.backends.%s.portal: missing; "
				  "expected " PORTAL_RULE, b->name);
	if (!b->fstype && dup_to(&b->fstype, "ext4", 4, err) < 0)
		return -ENOMEM;
	if (b->provisioner != VD_ISCSI_TGT)
		return 0;
	iqn_from_id(b->name, iqn, sizeof(iqn));
	if (!b->target && dup_to(&b->target, iqn, strlen(iqn), err) < 0)
		return -ENOMEM;
	if (!b->tgtadm && dup_to(&b->tgtadm, "tgtadm", 6, err) < 0)
		return -ENOMEM;
	return 0;
}

static int backend_parse(const char *name, const json_t *obj, struct vd_iscsi_backend *b,
			 struct vd_err *err)
{
	char what[160];
	const char *key;
	json_t *value;
	int p, r = backend_name_check(name, err);
	if (r < 0)
		return r;
	if (dup_to(&b->name, name, strlen(name), err) < 0)
		return -ENOMEM;
	b->timeout_ms = VD_ISCSI_TIMEOUT_DEFAULT;
	b->tid = 1;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "drivers.iscsi.backends.%s: expected an object with "
				  "keys " VD_ISCSI_BACKEND_KEYS ", got %s", name,
				  vd_json_type_name(obj));
	snprintf(what, sizeof(what), "drivers.iscsi.backends.%s.provisioner", name);
	if (!json_object_get(obj, "provisioner"))
		return vd_err_set(err, -EINVAL, "%s: missing; expected tgt or static", what);
	r = enum_setting(what, json_object_get(obj, "provisioner"), provisioner_names,
			 COUNT(provisioner_names), "tgt, static", &p, err);
	if (r < 0)
		return r;
	b->provisioner = (enum vd_iscsi_provisioner)p;
	json_object_foreach((json_t *)obj, key, value) {
		if ((r = backend_key(name, key, value, b, err)) < 0)
			return r;
	}
	return backend_defaults(b, err);
}

/* ---- settings ------------------------------------------------------------ */

void vd_iscsi_settings_free(struct vd_iscsi_settings *settings)
{
	if (!settings)
		return;
	for (size_t i = 0; i < settings->count; i++)
		backend_clear(&settings->backends[i]);
	free(settings->backends);
	free(settings->helper);
	free(settings->initiator);
	free(settings);
}

const struct vd_iscsi_backend *vd_iscsi_backend_find(const struct vd_iscsi_settings *s,
						     const char *name)
{
	for (size_t i = 0; s && name && i < s->count; i++)
		if (strcmp(s->backends[i].name, name) == 0)
			return &s->backends[i];
	return NULL;
}

void vd_iscsi_backend_names(const struct vd_iscsi_settings *s, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; s && i < s->count && o < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", s->backends[i].name);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (!s || s->count == 0)
		snprintf(buf, len, "(none configured)");
}

static int settings_backends(const json_t *obj, struct vd_iscsi_settings *s, struct vd_err *err)
{
	const char *key;
	json_t *value;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "drivers.iscsi.backends: expected an object of "
				  "named backends, got %s", vd_json_type_name(obj));
	size_t n = json_object_size(obj);
	if (n && !(s->backends = calloc(n, sizeof(*s->backends))))
		return oom(err);
	json_object_foreach((json_t *)obj, key, value) {
		int r = backend_parse(key, value, &s->backends[s->count++], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int settings_key(const char *key, const json_t *v, struct vd_iscsi_settings *s,
			const json_t **def, struct vd_err *err)
{
	char what[80];
	const char *str = NULL;
	int r;
	snprintf(what, sizeof(what), "drivers.iscsi.%.40s", key);
	if (strcmp(key, "backends") == 0)
		return settings_backends(v, s, err);
	if (strcmp(key, "default_backend") == 0) {
		*def = v;
		return string_setting(what, v, "a backend's name", &str, err);
	}
	if (strcmp(key, "helper") == 0)
		return path_setting(what, v, &s->helper, err);
	if (strcmp(key, "initiator") == 0)
		return iqn_setting(what, v, &s->initiator, err);
	if (strcmp(key, "preempt") == 0)
		return bool_setting(what, v, &s->preempt, err);
	if (strcmp(key, "reservation_key") != 0)
		return vd_err_set(err, -EINVAL, "%s: unknown key; accepted: " VD_ISCSI_SETTINGS_KEYS,
				  what);
	r = string_setting(what, v, "a string of " KEY_RULE, &str, err);
	if (r == 0 && (r = vd_iscsi_key_parse(str, &s->reservation_key, err)) < 0)
		vd_err_prefix(err, "%s", what);
	return r;
}

static int settings_default(const json_t *def, struct vd_iscsi_settings *s, struct vd_err *err)
{
	char names[256];
	if (!def) {
		s->default_backend = s->count == 1 ? &s->backends[0] : NULL;
		return 0;
	}
	s->default_backend = vd_iscsi_backend_find(s, json_string_value(def));
	vd_iscsi_backend_names(s, names, sizeof(names));
	if (!s->default_backend)
		return vd_err_set(err, -EINVAL, "drivers.iscsi.default_backend: '%.40s' is not a "
				  "backend; configured: %s", json_string_value(def), names);
	return 0;
}

int vd_iscsi_settings_parse(const json_t *settings, struct vd_iscsi_settings **ret,
			    struct vd_err *err)
{
	struct vd_iscsi_settings *s = calloc(1, sizeof(*s));
	const json_t *def = NULL;
	const char *key;
	json_t *value;
	int r = 0;
	if (!s)
		return oom(err);
	if (settings && !json_is_object(settings))
		r = vd_err_set(err, -EINVAL, "drivers.iscsi: expected an object with keys "
			       VD_ISCSI_SETTINGS_KEYS);
	json_object_foreach((json_t *)settings, key, value) {
		if (r < 0)
			break;
		r = settings_key(key, value, s, &def, err);
	}
	if (r == 0)
		r = settings_default(def, s, err);
	if (r < 0) {
		vd_iscsi_settings_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

/* ---- options and specs --------------------------------------------------- */

static uint64_t round_up_mib(uint64_t size)
{
	return (size + MIB - 1) / MIB * MIB;
}

/* A string option, or NULL when not given. */
static const char *option(const json_t *opts, const char *key)
{
	return json_string_value(json_object_get(opts, key));
}

static int options_check(const json_t *opts, struct vd_err *err)
{
	const char *key;
	json_t *value;
	if (opts && !json_is_object(opts))
		return vd_err_set(err, -EINVAL, "options for driver iscsi must be a JSON object; "
				  "accepted keys: " VD_ISCSI_OPTIONS);
	json_object_foreach((json_t *)opts, key, value) {
		if (name_index(key, option_keys, COUNT(option_keys)) < 0)
			return vd_err_set(err, -EINVAL, "unknown option '%.40s' for driver iscsi; "
					  "accepted: " VD_ISCSI_OPTIONS, key);
		if (!json_is_string(value))
			return vd_err_set(err, -EINVAL, "option '%s' for driver iscsi must be a "
					  "string", key);
	}
	return 0;
}

static int options_backend(const struct vd_iscsi_settings *s, const char *name,
			   const struct vd_iscsi_backend **ret, struct vd_err *err)
{
	char names[256];
	vd_iscsi_backend_names(s, names, sizeof(names));
	if (!s || s->count == 0)
		return vd_err_set(err, -EINVAL, "driver iscsi has no backends: drivers.iscsi.backends "
				  "is empty; configure one in the config file");
	if (name && !(*ret = vd_iscsi_backend_find(s, name)))
		return vd_err_set(err, -EINVAL, "option backend '%.40s' is not a configured iscsi "
				  "backend; configured: %s", name, names);
	if (!name && !(*ret = s->default_backend))
		return vd_err_set(err, -EINVAL, "option backend is required (no default_backend "
				  "is configured); configured backends: %s", names);
	return 0;
}

/* Volumes are whole MiB, never smaller than asked: the largest is
 * max_volume_size rounded up likewise. */
static uint64_t size_limit(const struct vd_iscsi_backend *b)
{
	return b->max_volume_size ? round_up_mib(b->max_volume_size) : SIZE_LIMIT;
}

/* The size asked for, at least VD_ISCSI_SIZE_MIN, rounded up to whole MiB,
 * within the backend's limit. */
static int option_size(const struct vd_iscsi_backend *b, const char *v, uint64_t *ret,
		       struct vd_err *err)
{
	uint64_t size;
	int r = vd_size_parse(v, &size, err);
	if (r < 0) {
		vd_err_prefix(err, "option size");
		return r;
	}
	if (size < VD_ISCSI_SIZE_MIN || size > SIZE_LIMIT || round_up_mib(size) > size_limit(b)) {
		if (!b->max_volume_size)
			return vd_err_set(err, -EINVAL, "option size '%.40s' is out of range: "
					  "volumes of iscsi backend %s are from 16Mi to 8 EiB", v,
					  b->name);
		return vd_err_set(err, -EINVAL, "option size '%.40s' is out of range: volumes of "
				  "iscsi backend %s are from 16Mi to %" PRIu64 " bytes (its "
				  "max_volume_size)", v, b->name, b->max_volume_size);
	}
	*ret = round_up_mib(size);
	return 0;
}

static int option_bool(const char *key, const char *v, int *ret, struct vd_err *err)
{
	if (strcmp(v, "true") && strcmp(v, "false"))
		return vd_err_set(err, -EINVAL, "option %s '%.40s' must be true or false", key, v);
	*ret = strcmp(v, "true") == 0;
	return 0;
}

static json_t *spec_build(const char *backend, uint64_t size, const char *fstype, int wipe,
			  int preempt)
{
	return json_pack("{s:s,s:I,s:s,s:b,s:b}", "backend", backend, "size", (json_int_t)size,
			 "fstype", fstype, "wipe", wipe, "preempt", preempt);
}

int vd_iscsi_parse_options(const struct vd_iscsi_settings *s, const json_t *opts,
			   json_t **ret_spec, struct vd_err *err)
{
	const struct vd_iscsi_backend *b = NULL;
	const char *v;
	int r = options_check(opts, err);
	if (r == 0)
		r = options_backend(s, option(opts, "backend"), &b, err);
	if (r < 0)
		return r;
	/* No size: 1 GiB, or the backend's limit when lower. */
	uint64_t size = size_limit(b) < VD_ISCSI_SIZE_DEFAULT ? size_limit(b) :
			VD_ISCSI_SIZE_DEFAULT;
	const char *fstype = b->fstype;
	int wipe = b->wipe, preempt = s->preempt;
	if ((v = option(opts, "size")))
		r = option_size(b, v, &size, err);
	if (r == 0 && (v = option(opts, "fstype"))) {
		if (name_index(v, fstype_names, COUNT(fstype_names)) < 0)
			r = vd_err_set(err, -EINVAL, "option fstype '%.40s' is not one of "
				       VD_ISCSI_FSTYPES, v);
		fstype = v;
	}
	if (r == 0 && (v = option(opts, "wipe")))
		r = option_bool("wipe", v, &wipe, err);
	if (r == 0 && (v = option(opts, "preempt")))
		r = option_bool("preempt", v, &preempt, err);
	if (r == 0 && strcmp(fstype, "xfs") == 0 && size < VD_ISCSI_XFS_SIZE_MIN)
		r = vd_err_set(err, -EINVAL, "option size: xfs needs 300Mi or more (mkfs.xfs refuses "
			       "smaller devices); got %llu bytes", (unsigned long long)size);
	if (r < 0)
		return r;
	json_t *spec = spec_build(b->name, size, fstype, wipe, preempt);
	if (!spec)
		return vd_err_set(err, -ENOMEM, "driver iscsi: out of memory");
	*ret_spec = spec;
	return 0;
}

static int spec_bool(const json_t *spec, const char *key, int *ret, struct vd_err *err)
{
	const json_t *v = json_object_get(spec, key);
	if (!json_is_boolean(v))
		return vd_err_set(err, -EINVAL, "volume spec: %s must be true or false", key);
	*ret = json_is_true(v);
	return 0;
}

static int spec_fields(const json_t *spec, struct vd_iscsi_spec *s, struct vd_err *err)
{
	const json_t *size = json_object_get(spec, "size");
	json_int_t n = json_is_integer(size) ? json_integer_value(size) : -1;
	s->backend = json_string_value(json_object_get(spec, "backend"));
	s->fstype = json_string_value(json_object_get(spec, "fstype"));
	if (!s->backend || backend_name_check(s->backend, NULL) < 0)
		return vd_err_set(err, -EINVAL, "volume spec: backend must be a backend's name");
	if (n < (json_int_t)VD_ISCSI_SIZE_MIN || (uint64_t)n % MIB)
		return vd_err_set(err, -EINVAL, "volume spec: size must be an integer number of "
				  "bytes, a multiple of 1 MiB, at least 16 MiB");
	s->size = (uint64_t)n;
	if (name_index(s->fstype, fstype_names, COUNT(fstype_names)) < 0)
		return vd_err_set(err, -EINVAL, "volume spec: fstype must be one of " VD_ISCSI_FSTYPES);
	if (strcmp(s->fstype, "xfs") == 0 && s->size < VD_ISCSI_XFS_SIZE_MIN)
		return vd_err_set(err, -EINVAL, "volume spec: an xfs volume has 300 MiB or more");
	int r = spec_bool(spec, "wipe", &s->wipe, err);
	return r < 0 ? r : spec_bool(spec, "preempt", &s->preempt, err);
}

int vd_iscsi_spec_read(const json_t *spec, struct vd_iscsi_spec *ret, struct vd_err *err)
{
	struct vd_iscsi_spec s;
	const char *key;
	json_t *value;
	if (!json_is_object(spec))
		return vd_err_set(err, -EINVAL, "volume spec for driver iscsi is not a JSON object");
	json_object_foreach((json_t *)spec, key, value) {
		if (name_index(key, option_keys, COUNT(option_keys)) < 0)
			return vd_err_set(err, -EINVAL, "volume spec for driver iscsi has unknown key "
					  "'%.40s'", key);
	}
	int r = spec_fields(spec, &s, err);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

json_t *vd_iscsi_spec_options(const struct vd_iscsi_spec *spec)
{
	char size[32];
	snprintf(size, sizeof(size), "%" PRIu64, spec->size);
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "backend", spec->backend, "size", size,
			 "fstype", spec->fstype, "wipe", spec->wipe ? "true" : "false",
			 "preempt", spec->preempt ? "true" : "false");
}

/* ---- locations and records ---------------------------------------------- */

json_t *vd_iscsi_location_new(const char *portal, const char *target, int lun)
{
	return json_pack("{s:s,s:s,s:i}", "portal", portal, "target", target, "lun", lun);
}

/* Reads portal, target and lun; other keys are the caller's to check
 * (records carry more). */
int vd_iscsi_location_read(const json_t *obj, struct vd_iscsi_location *ret,
			   struct vd_err *err)
{
	struct vd_iscsi_location l;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "iscsi location is not a JSON object");
	const json_t *lun = json_object_get(obj, "lun");
	json_int_t n = json_is_integer(lun) ? json_integer_value(lun) : -1;
	l.portal = json_string_value(json_object_get(obj, "portal"));
	l.target = json_string_value(json_object_get(obj, "target"));
	if (!l.portal || !*l.portal || !printable(l.portal))
		return vd_err_set(err, -EINVAL, "iscsi location: portal must be a non-empty string "
				  "without control characters");
	if (!vd_iscsi_iqn_valid(l.target))
		return vd_err_set(err, -EINVAL, "iscsi location: target must be " IQN_RULE);
	if (n < 0 || n > VD_ISCSI_LUN_MAX)
		return vd_err_set(err, -EINVAL, "iscsi location: lun must be an integer from 0 to %d",
				  VD_ISCSI_LUN_MAX);
	l.lun = (int)n;
	*ret = l;
	return 0;
}

json_t *vd_iscsi_record_new(const char *name, const json_t *spec,
			    const struct vd_iscsi_location *loc, const char *created_at)
{
	return json_pack("{s:s,s:O,s:s,s:s,s:i,s:s}", "name", name, "spec", (json_t *)spec,
			 "portal", loc->portal, "target", loc->target, "lun", loc->lun,
			 "created_at", created_at);
}

static int record_check(const json_t *rec, struct vd_err *err)
{
	static const char *const keys[] = { "name", "spec", "portal", "target", "lun",
					     "created_at" };
	struct vd_iscsi_spec s;
	struct vd_iscsi_location l;
	const char *key, *created;
	json_t *value;
	int r;
	if (!json_is_object(rec))
		return vd_err_set(err, -EINVAL, "record is not a JSON object");
	json_object_foreach((json_t *)rec, key, value) {
		if (name_index(key, keys, COUNT(keys)) < 0)
			return vd_err_set(err, -EINVAL, "record has unknown key '%.40s'", key);
	}
	const char *name = json_string_value(json_object_get(rec, "name"));
	if (!name)
		return vd_err_set(err, -EINVAL, "record: name must be a string");
	if ((r = vd_name_check(name, err)) < 0 ||
	    (r = vd_iscsi_spec_read(json_object_get(rec, "spec"), &s, err)) < 0 ||
	    (r = vd_iscsi_location_read(rec, &l, err)) < 0) {
		vd_err_prefix(err, "record");
		return r;
	}
	created = json_string_value(json_object_get(rec, "created_at"));
	if (!created || !*created)
		return vd_err_set(err, -EINVAL, "record: created_at must be a non-empty string");
	return 0;
}

int vd_iscsi_record_parse(const char *buf, size_t len, json_t **ret_record,
			  struct vd_err *err)
{
	json_error_t jerr;
	if (len > VD_ISCSI_RECORD_MAX)
		return vd_err_set(err, -EINVAL, "record is larger than %d bytes", VD_ISCSI_RECORD_MAX);
	json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!rec)
		return vd_err_set(err, -EINVAL, "record is not JSON: %s (line %d)", jerr.text,
				  jerr.line);
	int r = record_check(rec, err);
	if (r < 0) {
		json_decref(rec);
		return r;
	}
	*ret_record = rec;
	return 0;
}

/* ---- tgtadm --op show --mode target -------------------------------------- */

enum tgt_section { SEC_NONE, SEC_OTHER, SEC_NEXUS, SEC_LUN, SEC_ACCOUNT, SEC_ACL };

struct tgt_parser {
	struct vd_tgt_show show;
	enum tgt_section section;
	size_t line;       /* 1-based number of the line being read */
};

/* Room for one more element in an array of count elements whose capacity
 * is count rounded up to a power of two: the array (maybe moved), or NULL
 * when out of memory. Amortised O(1) per element. */
static void *grow(void *array, size_t count, size_t size)
{
	if (count & (count - 1))
		return array;
	return realloc(array, (count ? count * 2 : 1) * size);
}

/* When [s, s+n) starts with prefix: the length of the rest, else -1. */
static long after(const char *s, size_t n, const char *prefix)
{
	size_t p = strlen(prefix);
	return n >= p && memcmp(s, prefix, p) == 0 ? (long)(n - p) : -1;
}

static int equals(const char *s, size_t n, const char *word)
{
	return after(s, n, word) == 0;
}

static int tgt_error(const struct tgt_parser *p, struct vd_err *err, const char *what,
		     const char *s, size_t n)
{
	return vd_err_set(err, -EINVAL, "tgtadm output line %zu: %s, got '%.*s'", p->line, what,
			  (int)(n > 60 ? 60 : n), s);
}

static struct vd_tgt_target *tgt_current(struct tgt_parser *p)
{
	return p->show.count ? &p->show.targets[p->show.count - 1] : NULL;
}

/* "Target N: IQN" */
static int tgt_target(struct tgt_parser *p, const char *s, size_t n, struct vd_err *err)
{
	const char *rule = "expected 'Target N: IQN'";
	long rest = after(s, n, "Target ");
	const char *num = s + 7, *colon = rest > 0 ? memchr(num, ':', (size_t)rest) : NULL;
	uint64_t tid;
	char *iqn;
	if (!colon || dec_parse(num, (size_t)(colon - num), INT32_MAX, &tid) < 0 || tid == 0 ||
	    (size_t)(colon - s) + 2 >= n || colon[1] != ' ')
		return tgt_error(p, err, rule, s, n);
	if (p->show.count >= TGT_TARGETS_MAX)
		return tgt_error(p, err, "more than 4096 targets", s, n);
	if (!(iqn = strndup(colon + 2, n - (size_t)(colon - s) - 2)))
		return oom(err);
	void *grown = grow(p->show.targets, p->show.count, sizeof(*p->show.targets));
	if (!grown) {
		free(iqn);
		return oom(err);
	}
	p->show.targets = grown;
	p->show.targets[p->show.count++] = (struct vd_tgt_target){ .tid = (int)tid, .iqn = iqn };
	p->section = SEC_NONE;
	return 0;
}

static void tgt_section(struct tgt_parser *p, const char *s, size_t n)
{
	p->section = equals(s, n, "LUN information:") ? SEC_LUN :
		     equals(s, n, "I_T nexus information:") ? SEC_NEXUS :
		     equals(s, n, "Account information:") ? SEC_ACCOUNT :
		     equals(s, n, "ACL information:") ? SEC_ACL : SEC_OTHER;
}

static int list_add(struct tgt_parser *p, char ***list, size_t *count, const char *s, size_t n,
		    struct vd_err *err)
{
	if (*count >= TGT_LIST_MAX)
		return tgt_error(p, err, "more than 65536 entries in a target's list", s, n);
	char *copy = strndup(s, n);
	void *grown = copy ? grow(*list, *count, sizeof(**list)) : NULL;
	if (!grown) {
		free(copy);
		return oom(err);
	}
	*list = grown;
	(*list)[(*count)++] = copy;
	return 0;
}

/* "LUN: N" */
static int tgt_lun(struct tgt_parser *p, struct vd_tgt_target *t, const char *s, size_t n,
		   struct vd_err *err)
{
	long rest = after(s, n, "LUN: ");
	uint64_t lun;
	if (rest < 0)
		return 0;
	if (dec_parse(s + 5, (size_t)rest, INT32_MAX, &lun) < 0)
		return tgt_error(p, err, "expected 'LUN: N'", s, n);
	if (t->lun_count >= TGT_LIST_MAX)
		return tgt_error(p, err, "more than 65536 LUNs in a target", s, n);
	void *grown = grow(t->luns, t->lun_count, sizeof(*t->luns));
	if (!grown)
		return oom(err);
	t->luns = grown;
	t->luns[t->lun_count++] = (struct vd_tgt_lun){ .lun = (int)lun };
	return 0;
}

/* A line one level into a section: a LUN, a session, an account, an ACL. */
static int tgt_item(struct tgt_parser *p, struct vd_tgt_target *t, const char *s, size_t n,
		    struct vd_err *err)
{
	long outgoing = (long)n - 11;   /* where "U (outgoing)" has its " (outgoing)" */
	switch (p->section) {
	case SEC_LUN:
		return tgt_lun(p, t, s, n, err);
	case SEC_NEXUS:
		if (after(s, n, "I_T nexus: ") < 0)
			return 0;
		if (t->nexus_count >= TGT_LIST_MAX)
			return tgt_error(p, err, "more than 65536 sessions in a target", s, n);
		t->nexus_count++;
		return 0;
	case SEC_ACCOUNT:
		if (outgoing > 0 && memcmp(s + outgoing, " (outgoing)", 11) == 0)
			return list_add(p, &t->outgoing, &t->outgoing_count, s, (size_t)outgoing,
					err);
		return list_add(p, &t->accounts, &t->account_count, s, n, err);
	case SEC_ACL:
		return list_add(p, &t->acls, &t->acl_count, s, n, err);
	default:
		return 0;
	}
}

/* A LUN's detail: its backing store path and its size. */
static int tgt_lun_detail(struct vd_tgt_lun *l, const char *s, size_t n, struct vd_err *err)
{
	long rest = after(s, n, "Backing store path: ");
	uint64_t mb;
	if (rest >= 0) {
		free(l->backing);
		l->backing = NULL;
		if (rest == 0 || equals(s + n - rest, (size_t)rest, "None"))
			return 0;
		return dup_to(&l->backing, s + n - rest, (size_t)rest, err);
	}
	rest = after(s, n, "Size: ");
	const char *num = s + 6, *end = rest > 0 ? memchr(num, ' ', (size_t)rest) : NULL;
	if (end && after(end, n - (size_t)(end - s), " MB") >= 0 &&
	    dec_parse(num, (size_t)(end - num), UINT64_MAX / 1000000, &mb) == 0)
		l->size = mb * 1000000;
	return 0;
}

static int tgt_line(struct tgt_parser *p, const char *line, size_t n, struct vd_err *err)
{
	size_t indent = 0;
	while (indent < n && line[indent] == ' ')
		indent++;
	const char *s = line + indent;
	size_t len = n - indent;
	struct vd_tgt_target *t = tgt_current(p);
	if (len == 0)
		return 0;
	if (memchr(line, '\0', n))
		return vd_err_set(err, -EINVAL, "tgtadm output line %zu has a NUL byte", p->line);
	if (indent == 0)
		return tgt_target(p, s, len, err);
	if (!t)
		return tgt_error(p, err, "expected 'Target N: IQN' first", s, len);
	if (indent == 4)
		tgt_section(p, s, len);
	else if (indent == 8)
		return tgt_item(p, t, s, len, err);
	else if (indent == 12 && p->section == SEC_LUN && t->lun_count)
		return tgt_lun_detail(&t->luns[t->lun_count - 1], s, len, err);
	return 0;
}

int vd_tgt_show_parse(const char *text, size_t len, struct vd_tgt_show *ret, struct vd_err *err)
{
	struct tgt_parser p = { .section = SEC_NONE };
	int r = 0;
	for (size_t off = 0; r == 0 && off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		p.line++;
		r = tgt_line(&p, text + off, n, err);
		off += n + 1;
	}
	if (r < 0) {
		vd_tgt_show_clear(&p.show);
		return r;
	}
	*ret = p.show;
	return 0;
}

static void strings_free(char **list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

void vd_tgt_show_clear(struct vd_tgt_show *show)
{
	if (!show)
		return;
	for (size_t i = 0; i < show->count; i++) {
		struct vd_tgt_target *t = &show->targets[i];
		free(t->iqn);
		for (size_t k = 0; k < t->lun_count; k++)
			free(t->luns[k].backing);
		free(t->luns);
		strings_free(t->accounts, t->account_count);
		strings_free(t->outgoing, t->outgoing_count);
		strings_free(t->acls, t->acl_count);
	}
	free(show->targets);
	*show = (struct vd_tgt_show){ 0 };
}

const struct vd_tgt_target *vd_tgt_show_find(const struct vd_tgt_show *show, int tid)
{
	for (size_t i = 0; show && i < show->count; i++)
		if (show->targets[i].tid == tid)
			return &show->targets[i];
	return NULL;
}
