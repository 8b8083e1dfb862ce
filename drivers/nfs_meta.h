/* nfs_meta.h — the pure half of the nfs driver: its settings, its backend
 * URLs, the volume options and spec, and the metadata record kept beside
 * each volume on the export.
 *
 * Parsers only: no I/O, no libnfs, no locks, so they are unit-tested and
 * fuzzed on bytes alone. Objects returned are owned by the caller. */
#ifndef VD_NFS_META_H
#define VD_NFS_META_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../volumed/err.h"

#define VD_NFS_OPTIONS "backend, size, uid, gid, mode"
#define VD_NFS_MODES "auto, kernel, fuse"
/* A volume's metadata record on the export: <dir>/<name> + this suffix. */
#define VD_NFS_RECORD_SUFFIX ".volumed.json"
/* Records are small; anything larger is not one of ours. */
#define VD_NFS_RECORD_MAX (64 * 1024)

#define VD_NFS_TIMEOUT_DEFAULT 10000
#define VD_NFS_TIMEOUT_MIN 1000
#define VD_NFS_TIMEOUT_MAX 600000
#define VD_NFS_MOUNT_OPTIONS_DEFAULT "vers=3,hard,timeo=600"

enum vd_nfs_mode { VD_NFS_AUTO, VD_NFS_KERNEL, VD_NFS_FUSE };

/* A parsed nfs://server/path?query URL. */
struct vd_nfs_url {
	char *server;     /* host name or address, IPv6 without brackets */
	char *path;       /* absolute, normalized: "/export/sub/dir" or "/" */
	char *query;      /* what follows '?', validated; NULL when none */
	unsigned nfsport, mountport;   /* 0 when not pinned */
};

struct vd_nfs_backend {
	char *name;
	char *url;                     /* canonical: rebuilt from u */
	struct vd_nfs_url u;
	enum vd_nfs_mode mode;
	int timeout_ms;
	char *mount_options;           /* kernel mounts only */
};

struct vd_nfs_settings {
	struct vd_nfs_backend *backends;
	size_t count;
	/* default_backend, or the only backend; NULL otherwise. */
	const struct vd_nfs_backend *default_backend;
	char *helper;                  /* "helper" setting, or NULL */
};

/* Parses the driver's settings object (NULL: no backends). Unknown keys and
 * bad values are -EINVAL naming the key path ("drivers.nfs.backends.main.mode"). */
int vd_nfs_settings_parse(const json_t *settings, struct vd_nfs_settings **ret_settings,
			  struct vd_err *err);
void vd_nfs_settings_free(struct vd_nfs_settings *settings);
const struct vd_nfs_backend *vd_nfs_backend_find(const struct vd_nfs_settings *settings,
						 const char *name);
/* "main, backup": the backend names, for messages (into buf). */
void vd_nfs_backend_names(const struct vd_nfs_settings *settings, char *buf, size_t len);
const char *vd_nfs_mode_name(enum vd_nfs_mode mode);

/* URLs: what is the error about ("drivers.nfs.backends.x.url"). */
int vd_nfs_url_parse(const char *url, const char *what, struct vd_nfs_url *ret_url,
		     struct vd_err *err);
void vd_nfs_url_clear(struct vd_nfs_url *url);
/* nfs://server<path>[/<sub>][?query], malloc'd; NULL when out of memory. */
char *vd_nfs_url_join(const struct vd_nfs_url *url, const char *sub);

/* A volume's spec, read back (borrowing backend from the JSON). */
struct vd_nfs_spec {
	const char *backend;
	uint64_t size;                 /* 0: not given */
	int64_t uid, gid, mode;        /* -1: not given */
};

/* Volume names usable on an export: the core's rule, minus names that
 * would collide with the records beside the volume directories. */
int vd_nfs_name_check(const char *name, struct vd_err *err);

/* Options (object of strings, or NULL) -> canonical spec. Pure. */
int vd_nfs_parse_options(const struct vd_nfs_settings *settings, const json_t *opts,
			 json_t **ret_spec, struct vd_err *err);
/* Checks a spec and reads it; backend points into spec. */
int vd_nfs_spec_read(const json_t *spec, struct vd_nfs_spec *ret, struct vd_err *err);
/* The options that give this spec again through parse_options. */
json_t *vd_nfs_spec_options(const struct vd_nfs_spec *spec);

/* The record {"name","options","spec","created_at"}; created_at is an
 * RFC 3339 UTC time. NULL when out of memory. */
json_t *vd_nfs_record_new(const char *name, const json_t *spec, const char *created_at);
/* Parses and checks a record's bytes; the record is returned owned. */
int vd_nfs_record_parse(const char *buf, size_t len, json_t **ret_record, struct vd_err *err);

#endif
