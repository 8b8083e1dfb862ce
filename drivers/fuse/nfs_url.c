/* nfs_url.c — the volume URL of volumed-nfs-fuse (see nfs_url.h).
 *
 * Pure string work on caller-owned buffers: no I/O, no allocation, no
 * globals, so it is unit-tested and fuzzed on bytes alone. */
#include "nfs_url.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Bytes allowed in a path component: unreserved and a few sub-delims of
 * RFC 3986, nothing that libnfs, a shell or a mount option list treats
 * specially except ',' (escaped for FUSE by nfs_url_opt_escape). */
static int is_path_char(char c)
{
	return is_alnum(c) || strchr("-._~+=@:,", c) != NULL;
}

int nfs_url_parse_long(const char *s, long min, long max, long *ret)
{
	if (!s || !*s)
		return -EINVAL;
	const char *p = s;
	int neg = 0;
	if (*p == '-') {
		if (min >= 0)
			return -EINVAL;
		neg = 1;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	long v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		int d = *p - '0';
		if (v > (LONG_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* Parses the digits in [s, s + n) as a port, 1..65535. */
static int parse_port(const char *s, size_t n, int *ret)
{
	char buf[8];
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	long v;
	if (nfs_url_parse_long(buf, 1, 65535, &v) < 0)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int parse_host(const char *s, size_t n, struct nfs_url_parts *u, struct vd_err *err)
{
	size_t hlen = n;
	const char *colon = NULL;
	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return vd_err_set(err, -EINVAL, "url: '[' without ']' in the host");
		for (const char *p = s + 1; p < close; p++)
			if (!(is_alnum(*p) || *p == ':' || *p == '.'))
				return vd_err_set(err, -EINVAL,
						  "url: bad byte 0x%02x in the IPv6 address",
						  (unsigned char)*p);
		if (close == s + 1)
			return vd_err_set(err, -EINVAL, "url: empty IPv6 address");
		hlen = (size_t)(close - s) + 1;
		if (hlen < n) {
			if (s[hlen] != ':')
				return vd_err_set(err, -EINVAL, "url: junk after ']' in the host");
			colon = s + hlen;
		}
	} else {
		colon = memchr(s, ':', n);
		if (colon)
			hlen = (size_t)(colon - s);
		if (hlen == 0)
			return vd_err_set(err, -EINVAL, "url: no host (nfs://HOST/EXPORT/PATH)");
		for (size_t i = 0; i < hlen; i++)
			if (!(is_alnum(s[i]) || s[i] == '-' || s[i] == '.'))
				return vd_err_set(err, -EINVAL,
						  "url: bad byte 0x%02x in the host (allowed: "
						  "letters, digits, '-', '.', or [IPv6])",
						  (unsigned char)s[i]);
	}
	if (hlen >= sizeof(u->host))
		return vd_err_set(err, -EINVAL, "url: host longer than %zu bytes",
				  sizeof(u->host) - 1);
	memcpy(u->host, s, hlen);
	u->host[hlen] = '\0';
	if (colon) {
		size_t plen = n - (size_t)(colon + 1 - s);
		if (parse_port(colon + 1, plen, &u->port) < 0)
			return vd_err_set(err, -EINVAL, "url: bad port after the host (1..65535)");
		u->port_in_host = 1;
	}
	return 0;
}

static int parse_path(const char *s, size_t n, struct nfs_url_parts *u, struct vd_err *err)
{
	size_t o = 0;
	size_t i = 0;
	if (n == 0 || s[0] != '/')
		return vd_err_set(err, -EINVAL, "url: no path (nfs://HOST/EXPORT/PATH)");
	while (i < n) {
		while (i < n && s[i] == '/')
			i++;
		if (i == n)
			break;
		size_t start = i;
		while (i < n && s[i] != '/') {
			if (!is_path_char(s[i]))
				return vd_err_set(err, -EINVAL,
						  "url: bad byte 0x%02x in the path (allowed: "
						  "letters, digits, and -._~+=@:,)",
						  (unsigned char)s[i]);
			i++;
		}
		size_t clen = i - start;
		if ((clen == 1 && s[start] == '.') ||
		    (clen == 2 && s[start] == '.' && s[start + 1] == '.'))
			return vd_err_set(err, -EINVAL, "url: '.' and '..' are not allowed in the path");
		if (o + 1 + clen >= sizeof(u->path))
			return vd_err_set(err, -EINVAL, "url: path longer than %zu bytes",
					  sizeof(u->path) - 1);
		u->path[o++] = '/';
		memcpy(u->path + o, s + start, clen);
		o += clen;
	}
	if (o == 0)
		u->path[o++] = '/';
	u->path[o] = '\0';
	return 0;
}

static const char *const query_keys[] = {
	"nfsport", "mountport", "version", "tcp-syncnt", "auto-traverse-mounts",
};
#define N_QUERY_KEYS (sizeof(query_keys) / sizeof(query_keys[0]))

static int parse_query(const char *s, size_t n, struct nfs_url_parts *u, struct vd_err *err)
{
	int seen[N_QUERY_KEYS] = { 0 };
	size_t o = 0;
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		while (i < n && s[i] != '&')
			i++;
		const char *item = s + start;
		size_t ilen = i - start;
		if (i < n)
			i++;  /* the '&' */
		if (ilen == 0)
			return vd_err_set(err, -EINVAL, "url: empty item in the query");
		const char *eq = memchr(item, '=', ilen);
		if (!eq || eq == item || eq == item + ilen - 1)
			return vd_err_set(err, -EINVAL, "url: query items are key=value");
		size_t klen = (size_t)(eq - item);
		const char *val = eq + 1;
		size_t vlen = ilen - klen - 1;
		size_t k;
		for (k = 0; k < N_QUERY_KEYS; k++)
			if (strlen(query_keys[k]) == klen && memcmp(query_keys[k], item, klen) == 0)
				break;
		if (k == N_QUERY_KEYS)
			return vd_err_set(err, -EINVAL,
					  "url: unknown query key '%.*s' (allowed: nfsport, "
					  "mountport, version, tcp-syncnt, auto-traverse-mounts)",
					  (int)(klen > 64 ? 64 : klen), item);
		if (seen[k]++)
			return vd_err_set(err, -EINVAL, "url: query key '%s' given twice",
					  query_keys[k]);
		char vbuf[16];
		long v;
		if (vlen >= sizeof(vbuf))
			return vd_err_set(err, -EINVAL, "url: bad value for '%s'", query_keys[k]);
		memcpy(vbuf, val, vlen);
		vbuf[vlen] = '\0';
		if (k == 0 || k == 1) {
			int port;
			if (parse_port(val, vlen, &port) < 0)
				return vd_err_set(err, -EINVAL, "url: bad %s (1..65535)", query_keys[k]);
			if (k == 0) {
				if (u->port && u->port != port)
					return vd_err_set(err, -EINVAL,
							  "url: port %d after the host but nfsport=%d",
							  u->port, port);
				u->port = port;
			} else {
				u->mountport = port;
			}
			continue;
		}
		if (k == 2 && strcmp(vbuf, "3") != 0)
			return vd_err_set(err, -EINVAL, "url: only version=3 is supported");
		if (k == 3 && nfs_url_parse_long(vbuf, 1, 255, &v) < 0)
			return vd_err_set(err, -EINVAL, "url: bad tcp-syncnt (1..255)");
		if (k == 4 && strcmp(vbuf, "0") != 0 && strcmp(vbuf, "1") != 0)
			return vd_err_set(err, -EINVAL, "url: auto-traverse-mounts is 0 or 1");
		int w = snprintf(u->query + o, sizeof(u->query) - o, "%s%s=%s", o ? "&" : "",
				 query_keys[k], vbuf);
		if (w < 0 || (size_t)w >= sizeof(u->query) - o)
			return vd_err_set(err, -EINVAL, "url: query too long");
		o += (size_t)w;
	}
	return 0;
}

int nfs_url_parse(const char *url, struct nfs_url_parts *ret, struct vd_err *err)
{
	static const char scheme[] = "nfs://";
	struct nfs_url_parts u;
	memset(&u, 0, sizeof(u));
	if (!url)
		return vd_err_set(err, -EINVAL, "url: missing");
	size_t len = strlen(url);
	if (len >= NFS_URL_MAX)
		return vd_err_set(err, -EINVAL, "url: longer than %d bytes", NFS_URL_MAX - 1);
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return vd_err_set(err, -EINVAL, "url: must start with nfs://");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f || c == '%' || c == '#' || c == '\\')
			return vd_err_set(err, -EINVAL,
					  "url: byte 0x%02x not allowed (no spaces, control bytes, "
					  "'%%', '#', '\\' or non-ASCII)", c);
	}
	const char *p = url + sizeof(scheme) - 1;
	const char *q = strchr(p, '?');
	size_t body = q ? (size_t)(q - p) : strlen(p);
	const char *slash = memchr(p, '/', body);
	size_t hostlen = slash ? (size_t)(slash - p) : body;
	int rc = parse_host(p, hostlen, &u, err);
	if (rc < 0)
		return rc;
	if (!slash)
		return vd_err_set(err, -EINVAL, "url: no path (nfs://HOST/EXPORT/PATH)");
	rc = parse_path(slash, body - hostlen, &u, err);
	if (rc < 0)
		return rc;
	if (q) {
		rc = parse_query(q + 1, strlen(q + 1), &u, err);
		if (rc < 0)
			return rc;
	}
	*ret = u;
	return 0;
}

int nfs_url_libnfs(const struct nfs_url_parts *u, char *buf, size_t len)
{
	char ports[64] = "";
	int n = 0;
	if (u->port)
		n = snprintf(ports, sizeof(ports), "nfsport=%d", u->port);
	if (u->mountport)
		snprintf(ports + n, sizeof(ports) - (size_t)n, "%smountport=%d", n ? "&" : "",
			 u->mountport);
	int any = ports[0] || u->query[0];
	int w = snprintf(buf, len, "nfs://%s%s%s%s%s%s", u->host, u->path, any ? "?" : "", ports,
			 ports[0] && u->query[0] ? "&" : "", u->query);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	return 0;
}

int nfs_url_display(const struct nfs_url_parts *u, char *buf, size_t len)
{
	char port[16] = "";
	if (u->port_in_host)
		snprintf(port, sizeof(port), ":%d", u->port);
	int w = snprintf(buf, len, "nfs://%s%s%s", u->host, port, u->path);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	return 0;
}

int nfs_url_opt_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;
	if (len == 0)
		return -ENAMETOOLONG;
	for (; *in; in++) {
		if (*in == ',' || *in == '\\') {
			if (o + 1 >= len)
				return -ENAMETOOLONG;
			out[o++] = '\\';
		}
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		out[o++] = *in;
	}
	out[o] = '\0';
	return 0;
}

int nfs_url_split(const char *path, int i, char *export, size_t export_len,
		  char *inner, size_t inner_len)
{
	if (i < 0)
		return 0;
	size_t n = strlen(path);
	/* Cut after dropping i components from the end. */
	size_t cut = n;
	if (n == 1 && path[0] == '/')
		cut = 0;
	for (int k = 0; k < i; k++) {
		if (cut == 0)
			return 0;
		while (cut > 0 && path[cut - 1] != '/')
			cut--;
		if (cut > 0)
			cut--;  /* the '/' itself */
	}
	/* export = path[0, cut) or "/", inner = path[cut, n) or "". */
	size_t elen = cut ? cut : 1;
	size_t ilen = (n == 1 && path[0] == '/') ? 0 : n - cut;
	if (elen >= export_len || ilen >= inner_len)
		return -ENAMETOOLONG;
	if (cut)
		memcpy(export, path, cut);
	else
		export[0] = '/';
	export[elen] = '\0';
	memcpy(inner, path + n - ilen, ilen);
	inner[ilen] = '\0';
	return 1;
}
