/* nfs_url.h — the volume URL of volumed-nfs-fuse, checked on bytes alone.
 *
 *   nfs://HOST[:PORT]/EXPORT/PATH/TO/VOLUME[?key=value&...]
 *
 * HOST is a name, an IPv4 address or a bracketed IPv6 address; PORT (the
 * NFS port) is folded into nfsport=, since libnfs 4.0 cannot read it from
 * the host part. The path names a directory: the export, or a directory
 * inside it. Query keys libnfs would silently ignore are refused, so a typo
 * never changes where data goes: nfsport, mountport, version (3 only),
 * tcp-syncnt, auto-traverse-mounts.
 *
 * Pure: no I/O, no allocation, no libnfs. Thread-safe (no shared state).
 * The helper hands nfs_url_libnfs()'s string to libnfs's own parser
 * (nfs_parse_url_dir), which applies the query to each nfs context. */
#ifndef VD_NFS_URL_H
#define VD_NFS_URL_H

#include <stddef.h>

#include "../../volumed/err.h"

#define NFS_URL_MAX 2048
#define NFS_URL_HOST_MAX 256
#define NFS_URL_PATH_MAX 1024

struct nfs_url_parts {
	char host[NFS_URL_HOST_MAX];  /* "server", "10.0.0.1", "[fd00::1]" */
	int port;                     /* from HOST:PORT or nfsport=, 0 when absent */
	int port_in_host;             /* 1 when given as HOST:PORT */
	int mountport;                /* mountport=, 0 when absent */
	char path[NFS_URL_PATH_MAX];  /* "/export/vol": no "//", no trailing '/' (but "/") */
	char query[NFS_URL_MAX];      /* the other known keys, "k=v&k=v", "" when none */
};

/* Parses and checks url. Refuses (-EINVAL, with the reason in err): another
 * scheme, an empty host, a bad port, a relative or empty path, "." or ".."
 * components, '%', '#', whitespace and control bytes, unknown or repeated
 * query keys, bad values, a port given twice with two values. */
int nfs_url_parse(const char *url, struct nfs_url_parts *ret, struct vd_err *err);

/* "nfs://HOST/PATH?nfsport=P&mountport=M&QUERY": the form libnfs parses.
 * -ENAMETOOLONG if it does not fit into len bytes. */
int nfs_url_libnfs(const struct nfs_url_parts *u, char *buf, size_t len);

/* The URL as given, without its query: "nfs://HOST[:PORT]/PATH". */
int nfs_url_display(const struct nfs_url_parts *u, char *buf, size_t len);

/* Copies in escaping ',' and '\' with a backslash, so the string is one
 * value in a FUSE "-o a=b,c=d" list. -ENAMETOOLONG if it does not fit. */
int nfs_url_opt_escape(const char *in, char *out, size_t len);

/* Strict decimal integer in [min, max] (no sign unless min < 0, no spaces,
 * no trailing bytes). -EINVAL or -ERANGE otherwise. */
int nfs_url_parse_long(const char *s, long min, long max, long *ret);

/* The candidate (export, directory inside it) splits of path, longest
 * export first: i = 0 gives (path, ""), i = 1 drops the last component
 * into the inner part, and so on down to ("/", path). Returns 1 with the
 * two strings set, 0 when i is past the last split, -ENAMETOOLONG. The
 * helper tries to mount each export in turn: servers differ on whether a
 * directory below an export can be mounted. */
int nfs_url_split(const char *path, int i, char *export, size_t export_len,
		  char *inner, size_t inner_len);

#endif
