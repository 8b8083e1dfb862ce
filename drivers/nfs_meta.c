/* nfs_meta.c — the nfs driver's settings, URLs, options, specs and
 * metadata records: parsers and builders, nothing else.
 *
 * Pure: no I/O, no global state, no locks; thread-safe. */
#include "nfs_meta.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../volumed/json_util.h"
#include "../volumed/names.h"

#define SETTINGS_KEYS "backends, default_backend, helper"
#define BACKEND_KEYS "url, mode, timeout_ms, mount_options"
#define URL_RULE "nfs://HOST/EXPORT/DIR[?nfsport=N&mountport=N]"
/* The URL arguments libnfs 4.0 understands. */
#define URL_ARGS "nfsport, mountport, version, uid, gid, tcp-syncnt, readahead, " \
	"pagecache, dircache, auto-traverse-mounts, autoreconnect, if, debug"
#define UID_MAX_VALUE 4294967294LL   /* (uid_t)-1 means "unchanged" */
#define SIZE_MAX_VALUE ((uint64_t)INT64_MAX)

static const char *const mode_names[] = { "auto", "kernel", "fuse" };

const char *vd_nfs_mode_name(enum vd_nfs_mode mode)
{
	return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

/* ---- URLs ------------------------------------------------------------ */

void vd_nfs_url_clear(struct vd_nfs_url *url)
{
	if (!url)
		return;
	free(url->server);
	free(url->path);
	free(url->query);
	*url = (struct vd_nfs_url){ 0 };
}

static int host_char_ok(char c)
{
	return isascii((unsigned char)c) && (isalnum((unsigned char)c) || c == '.' || c == '-' ||
					     c == '_');
}

/* The authority part, [start, end): a host name, an IPv4 address or a
 * bracketed IPv6 address. No user, no port (libnfs takes ports as args). */
static int url_server(const char *s, size_t n, const char *what, char **ret, struct vd_err *err)
{
	if (memchr(s, '@', n))
		return vd_err_set(err, -EINVAL, "%s: credentials (user@) are not supported in NFS "
				  "URLs; expected " URL_RULE, what);
	const char *host = s;
	size_t len = n;
	if (n >= 2 && s[0] == '[') {
		if (s[n - 1] != ']')
			return vd_err_set(err, -EINVAL, "%s: a port after the host is not supported; "
					  "pin ports with ?nfsport=N&mountport=N", what);
		host = s + 1;
		len = n - 2;
		for (size_t i = 0; i < len; i++)
			if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.')
				return vd_err_set(err, -EINVAL, "%s: '%.*s' is not an IPv6 address",
						  what, (int)n, s);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (s[i] == ':')
				return vd_err_set(err, -EINVAL, "%s: a port after the host is not "
						  "supported; pin ports with ?nfsport=N&mountport=N",
						  what);
			if (!host_char_ok(s[i]))
				return vd_err_set(err, -EINVAL, "%s: the host has '%c'; expected "
						  URL_RULE, what, isprint((unsigned char)s[i]) ?
						  s[i] : '?');
		}
	}
	if (len == 0 || len > 253)
		return vd_err_set(err, -EINVAL, "%s: no host; expected " URL_RULE, what);
	if (!(*ret = strndup(host, len)))
		return vd_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

/* The path [s, s+n): absolute, without "." or ".." components, with
 * repeated and trailing slashes removed. */
static int url_path(const char *s, size_t n, const char *what, char **ret, struct vd_err *err)
{
	char *out = malloc(n + 2);
	size_t o = 0;
	if (!out)
		return vd_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n;) {
		while (i < n && s[i] == '/')
			i++;
		size_t start = i;
		while (i < n && s[i] != '/')
			i++;
		size_t len = i - start;
		if (len == 0)
			break;
		if ((len == 1 && s[start] == '.') || (len == 2 && s[start] == '.' && s[start + 1] == '.')) {
			free(out);
			return vd_err_set(err, -EINVAL, "%s: the path has a '%.*s' component; give "
					  "the directory's real path", what, (int)len, s + start);
		}
		for (size_t k = start; k < i; k++) {
			unsigned char c = (unsigned char)s[k];
			if (c < 0x20 || c == 0x7f || c == '%' || c == '\\') {
				free(out);
				return vd_err_set(err, -EINVAL, "%s: the path has %s; escapes and "
						  "control characters are not supported", what,
						  c == '%' ? "'%'" : c == '\\' ? "'\\'" :
						  "a control character");
			}
		}
		out[o++] = '/';
		memcpy(out + o, s + start, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	*ret = out;
	return 0;
}

static int port_parse(const char *v, size_t n, unsigned *ret)
{
	unsigned long x = 0;
	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	if (x == 0 || x > 65535)
		return -1;
	*ret = (unsigned)x;
	return 0;
}

static int url_arg_known(const char *k, size_t n)
{
	static const char *const known[] = {
		"nfsport", "mountport", "version", "uid", "gid", "tcp-syncnt", "readahead",
		"pagecache", "dircache", "auto-traverse-mounts", "autoreconnect", "if", "debug",
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == n && memcmp(known[i], k, n) == 0)
			return 1;
	return 0;
}

/* The query: key=value pairs joined by '&', keys libnfs knows, ports valid,
 * version 3 only (libnfs 4.0's v4 cannot write more than ~3.8 KiB a call). */
static int url_query(const char *q, const char *what, struct vd_nfs_url *u, struct vd_err *err)
{
	const char *p = q;
	while (*p) {
		const char *end = strchr(p, '&');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		if (!eq || eq == p)
			return vd_err_set(err, -EINVAL, "%s: URL argument '%.*s' is not key=value",
					  what, (int)(n > 40 ? 40 : n), p);
		size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
		const char *v = eq + 1;
		if (!url_arg_known(p, klen))
			return vd_err_set(err, -EINVAL, "%s: unknown URL argument '%.*s'; accepted: "
					  URL_ARGS, what, (int)(klen > 40 ? 40 : klen), p);
		for (size_t i = 0; i < vlen; i++)
			if (!isascii((unsigned char)v[i]) || !(isalnum((unsigned char)v[i]) ||
							      v[i] == '-' || v[i] == '.'))
				return vd_err_set(err, -EINVAL, "%s: URL argument '%.*s' has a bad "
						  "value", what, (int)klen, p);
		if (klen == 7 && memcmp(p, "nfsport", 7) == 0 && port_parse(v, vlen, &u->nfsport) < 0)
			return vd_err_set(err, -EINVAL, "%s: nfsport '%.*s' is not a port (1-65535)",
					  what, (int)(vlen > 20 ? 20 : vlen), v);
		if (klen == 9 && memcmp(p, "mountport", 9) == 0 &&
		    port_parse(v, vlen, &u->mountport) < 0)
			return vd_err_set(err, -EINVAL, "%s: mountport '%.*s' is not a port (1-65535)",
					  what, (int)(vlen > 20 ? 20 : vlen), v);
		if (klen == 7 && memcmp(p, "version", 7) == 0 && !(vlen == 1 && v[0] == '3'))
			return vd_err_set(err, -EINVAL, "%s: version '%.*s' is not supported; the "
					  "driver speaks NFSv3 (version=3)", what,
					  (int)(vlen > 20 ? 20 : vlen), v);
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

int vd_nfs_url_parse(const char *url, const char *what, struct vd_nfs_url *ret_url,
		     struct vd_err *err)
{
	struct vd_nfs_url u = { 0 };
	if (!url || strncmp(url, "nfs://", 6) != 0)
		return vd_err_set(err, -EINVAL, "%s: '%.60s' is not an NFS URL; expected " URL_RULE,
				  what, url ? url : "");
	if (strlen(url) > 2048)
		return vd_err_set(err, -EINVAL, "%s: the URL is longer than 2048 bytes", what);
	const char *s = url + 6;
	const char *q = strchr(s, '?');
	const char *slash = strchr(s, '/');
	if (q && slash && q < slash)
		slash = NULL;
	if (!slash)
		return vd_err_set(err, -EINVAL, "%s: '%.60s' has no export path; expected "
				  URL_RULE, what, url);
	if (strchr(s, '#'))
		return vd_err_set(err, -EINVAL, "%s: fragments (#) are not supported", what);
	int r = url_server(s, (size_t)(slash - s), what, &u.server, err);
	if (r == 0)
		r = url_path(slash, q ? (size_t)(q - slash) : strlen(slash), what, &u.path, err);
	if (r == 0 && q && q[1]) {
		r = url_query(q + 1, what, &u, err);
		if (r == 0 && !(u.query = strdup(q + 1)))
			r = vd_err_set(err, -ENOMEM, "out of memory");
	}
	if (r < 0) {
		vd_nfs_url_clear(&u);
		return r;
	}
	*ret_url = u;
	return 0;
}

char *vd_nfs_url_join(const struct vd_nfs_url *url, const char *sub)
{
	char *out = NULL;
	int v6 = strchr(url->server, ':') != NULL;
	int root = strcmp(url->path, "/") == 0;
	if (asprintf(&out, "nfs://%s%s%s%s%s%s%s%s", v6 ? "[" : "", url->server, v6 ? "]" : "",
		     root && sub ? "" : url->path, sub ? "/" : "", sub ? sub : "",
		     url->query ? "?" : "", url->query ? url->query : "") < 0)
		return NULL;
	return out;
}

/* ---- settings -------------------------------------------------------- */

static void backend_clear(struct vd_nfs_backend *b)
{
	free(b->name);
	free(b->url);
	vd_nfs_url_clear(&b->u);
	free(b->mount_options);
}

void vd_nfs_settings_free(struct vd_nfs_settings *settings)
{
	if (!settings)
		return;
	for (size_t i = 0; i < settings->count; i++)
		backend_clear(&settings->backends[i]);
	free(settings->backends);
	free(settings->helper);
	free(settings);
}

const struct vd_nfs_backend *vd_nfs_backend_find(const struct vd_nfs_settings *settings,
						 const char *name)
{
	for (size_t i = 0; settings && name && i < settings->count; i++)
		if (strcmp(settings->backends[i].name, name) == 0)
			return &settings->backends[i];
	return NULL;
}

void vd_nfs_backend_names(const struct vd_nfs_settings *settings, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; settings && i < settings->count && o < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", settings->backends[i].name);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (!settings || settings->count == 0)
		snprintf(buf, len, "(none configured)");
}

/* Backend names become directory names on this host: the volume rule. */
static int backend_name_check(const char *name, struct vd_err *err)
{
	struct vd_err why = VD_ERR_INIT;
	if (vd_name_check(name, &why) == 0 && strlen(name) <= 64)
		return 0;
	return vd_err_set(err, -EINVAL, "drivers.nfs.backends: backend name '%.40s' is not "
			  "usable; allowed: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name);
}

static int mount_options_check(const char *what, const char *s, struct vd_err *err)
{
	if (!*s || strlen(s) > 1024)
		return vd_err_set(err, -EINVAL, "%s: expected a comma-separated list of mount "
				  "options like \"" VD_NFS_MOUNT_OPTIONS_DEFAULT "\"", what);
	for (const char *p = s; *p; p++) {
		if (isascii((unsigned char)*p) && (isalnum((unsigned char)*p) ||
						   strchr("=,._:/-+", *p)))
			continue;
		return vd_err_set(err, -EINVAL, "%s: '%.60s' has '%c'; allowed: letters, digits "
				  "and = , . _ : / - +", what, s, isprint((unsigned char)*p) ? *p : '?');
	}
	if (strstr(s, ",,") || s[0] == ',' || s[strlen(s) - 1] == ',')
		return vd_err_set(err, -EINVAL, "%s: '%.60s' has an empty option", what, s);
	if (strncmp(s, "addr=", 5) == 0 || strstr(s, ",addr="))
		return vd_err_set(err, -EINVAL, "%s: addr= is set by the driver from the URL's "
				  "host", what);
	return 0;
}

static int backend_parse(const char *name, const json_t *obj, struct vd_nfs_backend *b,
			 struct vd_err *err)
{
	char what[128];
	const char *key;
	json_t *value;
	int r = backend_name_check(name, err);
	if (r < 0)
		return r;
	if (!(b->name = strdup(name)))
		return vd_err_set(err, -ENOMEM, "out of memory");
	b->mode = VD_NFS_AUTO;
	b->timeout_ms = VD_NFS_TIMEOUT_DEFAULT;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "drivers.nfs.backends.%s: expected an object with "
				  "keys " BACKEND_KEYS ", got %s", name, vd_json_type_name(obj));
	json_object_foreach((json_t *)obj, key, value) {
		snprintf(what, sizeof(what), "drivers.nfs.backends.%s.%.40s", name, key);
		if (strcmp(key, "url") == 0) {
			if (!json_is_string(value))
				return vd_err_set(err, -EINVAL, "%s: expected a string like \""
						  URL_RULE "\", got %s", what,
						  vd_json_type_name(value));
			r = vd_nfs_url_parse(json_string_value(value), what, &b->u, err);
			if (r < 0)
				return r;
		} else if (strcmp(key, "mode") == 0) {
			const char *m = json_string_value(value);
			size_t i = 0;
			while (m && i < 3 && strcmp(m, mode_names[i]) != 0)
				i++;
			if (!m || i == 3)
				return vd_err_set(err, -EINVAL, "%s: '%.40s' is not one of " VD_NFS_MODES,
						  what, m ? m : vd_json_type_name(value));
			b->mode = (enum vd_nfs_mode)i;
		} else if (strcmp(key, "timeout_ms") == 0) {
			json_int_t t = json_is_integer(value) ? json_integer_value(value) : -1;
			if (t < VD_NFS_TIMEOUT_MIN || t > VD_NFS_TIMEOUT_MAX)
				return vd_err_set(err, -EINVAL, "%s: expected an integer from %d to %d "
						  "(milliseconds)", what, VD_NFS_TIMEOUT_MIN,
						  VD_NFS_TIMEOUT_MAX);
			b->timeout_ms = (int)t;
		} else if (strcmp(key, "mount_options") == 0) {
			if (!json_is_string(value))
				return vd_err_set(err, -EINVAL, "%s: expected a string like \""
						  VD_NFS_MOUNT_OPTIONS_DEFAULT "\", got %s", what,
						  vd_json_type_name(value));
			r = mount_options_check(what, json_string_value(value), err);
			if (r < 0)
				return r;
			if (!(b->mount_options = strdup(json_string_value(value))))
				return vd_err_set(err, -ENOMEM, "out of memory");
		} else {
			return vd_err_set(err, -EINVAL, "%s: unknown key; accepted: " BACKEND_KEYS,
					  what);
		}
	}
	if (!b->u.server)
		return vd_err_set(err, -EINVAL, "drivers.nfs.backends.%s.url: missing; expected "
				  "\"" URL_RULE "\"", name);
	if (!b->mount_options && !(b->mount_options = strdup(VD_NFS_MOUNT_OPTIONS_DEFAULT)))
		return vd_err_set(err, -ENOMEM, "out of memory");
	if (!(b->url = vd_nfs_url_join(&b->u, NULL)))
		return vd_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

static int settings_backends(const json_t *obj, struct vd_nfs_settings *s, struct vd_err *err)
{
	const char *key;
	json_t *value;
	if (!json_is_object(obj))
		return vd_err_set(err, -EINVAL, "drivers.nfs.backends: expected an object of named "
				  "backends, got %s", vd_json_type_name(obj));
	size_t n = json_object_size(obj);
	if (n == 0)
		return 0;
	if (!(s->backends = calloc(n, sizeof(*s->backends))))
		return vd_err_set(err, -ENOMEM, "out of memory");
	json_object_foreach((json_t *)obj, key, value) {
		int r = backend_parse(key, value, &s->backends[s->count++], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int vd_nfs_settings_parse(const json_t *settings, struct vd_nfs_settings **ret_settings,
			  struct vd_err *err)
{
	struct vd_nfs_settings *s = calloc(1, sizeof(*s));
	const json_t *def = NULL;
	const char *key;
	json_t *value;
	int r = 0;
	if (!s)
		return vd_err_set(err, -ENOMEM, "out of memory");
	if (settings && !json_is_object(settings))
		r = vd_err_set(err, -EINVAL, "drivers.nfs: expected an object with keys "
			       SETTINGS_KEYS);
	json_object_foreach((json_t *)settings, key, value) {
		if (r < 0)
			break;
		if (strcmp(key, "backends") == 0) {
			r = settings_backends(value, s, err);
		} else if (strcmp(key, "default_backend") == 0) {
			def = value;
			if (!json_is_string(def))
				r = vd_err_set(err, -EINVAL, "drivers.nfs.default_backend: expected a "
					       "backend's name, got %s", vd_json_type_name(def));
		} else if (strcmp(key, "helper") == 0) {
			const char *h = json_string_value(value);
			if (!h || h[0] != '/')
				r = vd_err_set(err, -EINVAL, "drivers.nfs.helper: expected the absolute "
					       "path of volumed-nfs-fuse");
			else if (!(s->helper = strdup(h)))
				r = vd_err_set(err, -ENOMEM, "out of memory");
		} else {
			r = vd_err_set(err, -EINVAL, "drivers.nfs.%.40s: unknown key; accepted: "
				       SETTINGS_KEYS, key);
		}
	}
	if (r == 0 && def) {
		char names[256];
		s->default_backend = vd_nfs_backend_find(s, json_string_value(def));
		vd_nfs_backend_names(s, names, sizeof(names));
		if (!s->default_backend)
			r = vd_err_set(err, -EINVAL, "drivers.nfs.default_backend: '%.40s' is not a "
				       "backend; configured: %s", json_string_value(def), names);
	} else if (r == 0 && s->count == 1) {
		s->default_backend = &s->backends[0];
	}
	if (r < 0) {
		vd_nfs_settings_free(s);
		return r;
	}
	*ret_settings = s;
	return 0;
}

/* ---- options and specs ------------------------------------------------ */

int vd_nfs_name_check(const char *name, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r < 0)
		return r;
	if (strstr(name, VD_NFS_RECORD_SUFFIX))
		return vd_err_set(err, -EINVAL, "volume name '%.60s' contains '" VD_NFS_RECORD_SUFFIX
				  "', which driver nfs keeps for its records", name);
	return 0;
}

/* A decimal id (uid, gid) into *ret. */
static int id_parse(const char *key, const char *s, int64_t *ret, struct vd_err *err)
{
	int64_t v = 0;
	size_t i = 0;
	for (; s[i] && isdigit((unsigned char)s[i]) && i < 11; i++)
		v = v * 10 + (s[i] - '0');
	if (i == 0 || s[i] || v > UID_MAX_VALUE)
		return vd_err_set(err, -EINVAL, "option %s '%.40s' is not a number from 0 to %lld",
				  key, s, UID_MAX_VALUE);
	*ret = v;
	return 0;
}

/* Octal permissions, "0770" or "770", at most 07777. */
static int mode_parse(const char *s, int64_t *ret, struct vd_err *err)
{
	int64_t v = 0;
	size_t i = 0;
	for (; s[i] >= '0' && s[i] <= '7' && i < 6; i++)
		v = v * 8 + (s[i] - '0');
	if (i == 0 || s[i] || v > 07777)
		return vd_err_set(err, -EINVAL, "option mode '%.40s' is not octal permissions like "
				  "0770 or 770", s);
	*ret = v;
	return 0;
}

static json_t *int_or_null(int64_t v)
{
	return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *spec_build(const char *backend, uint64_t size, int64_t uid, int64_t gid,
			  int64_t mode)
{
	return json_pack("{s:s,s:I,s:o,s:o,s:o}", "backend", backend, "size_bytes",
			 (json_int_t)size, "uid", int_or_null(uid), "gid", int_or_null(gid),
			 "mode", int_or_null(mode));
}

int vd_nfs_parse_options(const struct vd_nfs_settings *settings, const json_t *opts,
			 json_t **ret_spec, struct vd_err *err)
{
	const struct vd_nfs_backend *b = settings ? settings->default_backend : NULL;
	uint64_t size = 0;
	int64_t uid = -1, gid = -1, mode = -1;
	const char *key;
	json_t *value;
	char names[256];
	int r = 0;

	vd_nfs_backend_names(settings, names, sizeof(names));
	if (opts && !json_is_object(opts))
		return vd_err_set(err, -EINVAL, "options for driver nfs must be a JSON object; "
				  "accepted keys: " VD_NFS_OPTIONS);
	json_object_foreach((json_t *)opts, key, value) {
		const char *v = json_string_value(value);
		int known = strcmp(key, "backend") == 0 || strcmp(key, "size") == 0 ||
			    strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0 ||
			    strcmp(key, "mode") == 0;
		if (!known)
			return vd_err_set(err, -EINVAL, "unknown option '%.40s' for driver nfs; "
					  "accepted: " VD_NFS_OPTIONS, key);
		if (!v)
			return vd_err_set(err, -EINVAL, "option '%s' for driver nfs must be a string",
					  key);
		if (strcmp(key, "backend") == 0) {
			if (!(b = vd_nfs_backend_find(settings, v)))
				return vd_err_set(err, -EINVAL, "option backend '%.40s' is not a "
						  "configured nfs backend; configured: %s", v, names);
		} else if (strcmp(key, "size") == 0) {
			if ((r = vd_size_parse(v, &size, err)) < 0) {
				vd_err_prefix(err, "option size");
				return r;
			}
			if (size == 0 || size > SIZE_MAX_VALUE)
				return vd_err_set(err, -EINVAL, "option size '%.40s' must be more "
						  "than 0 and less than 8 EiB", v);
		} else if (strcmp(key, "uid") == 0) {
			r = id_parse("uid", v, &uid, err);
		} else if (strcmp(key, "gid") == 0) {
			r = id_parse("gid", v, &gid, err);
		} else {
			r = mode_parse(v, &mode, err);
		}
		if (r < 0)
			return r;
	}
	if (!b && (!settings || settings->count == 0))
		return vd_err_set(err, -EINVAL, "driver nfs has no backends; configure one under "
				  "drivers.nfs.backends in the config file");
	if (!b)
		return vd_err_set(err, -EINVAL, "option backend is required (no default_backend "
				  "is configured); configured backends: %s", names);
	json_t *spec = spec_build(b->name, size, uid, gid, mode);
	if (!spec)
		return vd_err_set(err, -ENOMEM, "driver nfs: out of memory");
	*ret_spec = spec;
	return 0;
}

/* -1 for null, else an integer in [0, max]. */
static int spec_int(const json_t *spec, const char *key, int64_t max, int64_t *ret,
		    struct vd_err *err)
{
	const json_t *v = json_object_get(spec, key);
	if (!v || json_is_null(v)) {
		*ret = -1;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return vd_err_set(err, -EINVAL, "volume spec: %s must be null or an integer from 0 "
				  "to %" PRId64, key, max);
	*ret = json_integer_value(v);
	return 0;
}

int vd_nfs_spec_read(const json_t *spec, struct vd_nfs_spec *ret, struct vd_err *err)
{
	struct vd_nfs_spec s;
	const char *key;
	json_t *value;
	int64_t size;
	if (!json_is_object(spec))
		return vd_err_set(err, -EINVAL, "volume spec for driver nfs is not a JSON object");
	json_object_foreach((json_t *)spec, key, value) {
		if (strcmp(key, "backend") && strcmp(key, "size_bytes") && strcmp(key, "uid") &&
		    strcmp(key, "gid") && strcmp(key, "mode"))
			return vd_err_set(err, -EINVAL, "volume spec for driver nfs has unknown key "
					  "'%.40s'", key);
	}
	s.backend = json_string_value(json_object_get(spec, "backend"));
	if (!s.backend || backend_name_check(s.backend, NULL) < 0)
		return vd_err_set(err, -EINVAL, "volume spec: backend must be a backend's name");
	int r = spec_int(spec, "size_bytes", INT64_MAX, &size, err);
	if (r == 0)
		r = spec_int(spec, "uid", UID_MAX_VALUE, &s.uid, err);
	if (r == 0)
		r = spec_int(spec, "gid", UID_MAX_VALUE, &s.gid, err);
	if (r == 0)
		r = spec_int(spec, "mode", 07777, &s.mode, err);
	if (r < 0)
		return r;
	s.size = size < 0 ? 0 : (uint64_t)size;
	*ret = s;
	return 0;
}

json_t *vd_nfs_spec_options(const struct vd_nfs_spec *spec)
{
	char buf[32];
	json_t *o = json_pack("{s:s}", "backend", spec->backend);
	if (!o)
		return NULL;
	int bad = 0;
	if (spec->size) {
		vd_size_format(spec->size, buf, sizeof(buf));
		bad |= json_object_set_new(o, "size", json_string(buf));
	}
	if (spec->uid >= 0) {
		snprintf(buf, sizeof(buf), "%" PRId64, spec->uid);
		bad |= json_object_set_new(o, "uid", json_string(buf));
	}
	if (spec->gid >= 0) {
		snprintf(buf, sizeof(buf), "%" PRId64, spec->gid);
		bad |= json_object_set_new(o, "gid", json_string(buf));
	}
	if (spec->mode >= 0) {
		snprintf(buf, sizeof(buf), "%04" PRIo64, (uint64_t)spec->mode);
		bad |= json_object_set_new(o, "mode", json_string(buf));
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- records ---------------------------------------------------------- */

json_t *vd_nfs_record_new(const char *name, const json_t *spec, const char *created_at)
{
	struct vd_nfs_spec s;
	if (vd_nfs_spec_read(spec, &s, NULL) < 0)
		return NULL;
	json_t *options = vd_nfs_spec_options(&s);
	if (!options)
		return NULL;
	return json_pack("{s:s,s:o,s:O,s:s}", "name", name, "options", options, "spec",
			 (json_t *)spec, "created_at", created_at);
}

static int record_options_check(const json_t *options, struct vd_err *err)
{
	const char *key;
	json_t *value;
	if (!json_is_object(options))
		return vd_err_set(err, -EINVAL, "record: options must be an object");
	json_object_foreach((json_t *)options, key, value) {
		if (!json_is_string(value))
			return vd_err_set(err, -EINVAL, "record: option '%.40s' must be a string",
					  key);
	}
	return 0;
}

int vd_nfs_record_parse(const char *buf, size_t len, json_t **ret_record, struct vd_err *err)
{
	json_error_t jerr;
	struct vd_nfs_spec s;
	const char *key;
	json_t *value;
	if (len > VD_NFS_RECORD_MAX)
		return vd_err_set(err, -EINVAL, "record is larger than %d bytes", VD_NFS_RECORD_MAX);
	json_t *rec = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!rec)
		return vd_err_set(err, -EINVAL, "record is not JSON: %s (line %d)", jerr.text,
				  jerr.line);
	int r = 0;
	if (!json_is_object(rec))
		r = vd_err_set(err, -EINVAL, "record is not a JSON object");
	json_object_foreach(rec, key, value) {
		if (r == 0 && strcmp(key, "name") && strcmp(key, "options") && strcmp(key, "spec") &&
		    strcmp(key, "created_at"))
			r = vd_err_set(err, -EINVAL, "record has unknown key '%.40s'", key);
	}
	const char *name = json_string_value(json_object_get(rec, "name"));
	if (r == 0 && !name)
		r = vd_err_set(err, -EINVAL, "record: name must be a string");
	if (r == 0 && (r = vd_nfs_name_check(name, err)) < 0)
		vd_err_prefix(err, "record");
	if (r == 0)
		r = record_options_check(json_object_get(rec, "options"), err);
	if (r == 0 && (r = vd_nfs_spec_read(json_object_get(rec, "spec"), &s, err)) < 0)
		vd_err_prefix(err, "record");
	if (r == 0 && !json_is_string(json_object_get(rec, "created_at")))
		r = vd_err_set(err, -EINVAL, "record: created_at must be a string");
	if (r < 0) {
		json_decref(rec);
		return r;
	}
	*ret_record = rec;
	return 0;
}
