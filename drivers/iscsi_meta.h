/* iscsi_meta.h — the pure half of the iscsi driver: its settings, the
 * volume options and spec, the records kept for each volume, reservation
 * keys, and the parser of `tgtadm --op show --mode target` output.
 *
 * Parsers only: no I/O, no libiscsi, no locks, so they are unit-tested and
 * fuzzed on bytes alone. Objects returned are owned by the caller. */
#ifndef VD_ISCSI_META_H
#define VD_ISCSI_META_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../volumed/err.h"

#define VD_ISCSI_OPTIONS "backend, size, fstype, wipe, preempt"
#define VD_ISCSI_FSTYPES "ext4, xfs"
#define VD_ISCSI_PORT_DEFAULT 3260
#define VD_ISCSI_TIMEOUT_DEFAULT 10000
#define VD_ISCSI_TIMEOUT_MIN 1000
#define VD_ISCSI_TIMEOUT_MAX 600000
#define VD_ISCSI_SIZE_DEFAULT (1024ULL * 1024 * 1024)   /* 1 GiB when size is not given */
#define VD_ISCSI_SIZE_MIN (16ULL * 1024 * 1024)         /* ext4 */
#define VD_ISCSI_XFS_SIZE_MIN (300ULL * 1024 * 1024)    /* mkfs.xfs: larger than 300 MB */
#define VD_ISCSI_LUN_MAX 16383                          /* LUNs 1..16383 (tgt, static) */
#define VD_ISCSI_TID_MAX 65535
#define VD_ISCSI_RECORD_MAX (64 * 1024)
#define VD_ISCSI_SECRET_MAX 255

enum vd_iscsi_mode { VD_ISCSI_AUTO, VD_ISCSI_KERNEL, VD_ISCSI_FUSE };
enum vd_iscsi_provisioner { VD_ISCSI_TGT, VD_ISCSI_STATIC };

/* CHAP: user/password the initiator presents; target_* for mutual CHAP
 * (the target proves itself too). NULL when not set. Never logged. */
struct vd_iscsi_chap {
	char *username, *password;
	char *target_username, *target_password;
};

/* One target of a static pool: luns == NULL means "every disk LUN that
 * REPORT LUNS lists". */
struct vd_iscsi_static_target {
	char *iqn;
	int *luns;
	size_t lun_count;
};

struct vd_iscsi_backend {
	char *name;
	enum vd_iscsi_provisioner provisioner;
	char *portal;              /* "host:port" (IPv6: "[addr]:port"), port always present */
	int timeout_ms;
	enum vd_iscsi_mode mode;
	char *fstype;              /* default fstype of its volumes: "ext4" (default) or "xfs" */
	int wipe;                  /* default of the wipe option (0) */
	uint64_t max_volume_size;  /* 0: no limit beyond the pool's */
	struct vd_iscsi_chap chap; /* all NULL when CHAP is off */

	/* tgt */
	char *target;              /* IQN volumed creates; default
	                              "iqn.2026-01.io.volumed:<backend name, lowercased,
	                               '_' -> '-'>" */
	int tid;                   /* default 1 */
	int control_port;          /* tgtadm/tgtd -C N; default 0 (tgtd's default) */
	char *tgtadm;              /* program, default "tgtadm" (found on PATH) */
	char *pool_dir;            /* absolute; NULL: the driver picks <state_dir>/iscsi/<name> */
	uint64_t pool_size;        /* 0: the pool file system's free space */

	/* static: NULL/0 targets means discovery (SendTargets) on the portal */
	struct vd_iscsi_static_target *targets;
	size_t target_count;
};

struct vd_iscsi_settings {
	struct vd_iscsi_backend *backends;
	size_t count;
	const struct vd_iscsi_backend *default_backend;  /* default_backend, or the only one */
	char *helper;              /* absolute path, or NULL */
	char *initiator;           /* IQN, or NULL: derived from the node id */
	uint64_t reservation_key;  /* 0: derived from the node id */
	int preempt;               /* default of the preempt option (0) */
};

/* Settings object keys and the backend keys, for messages and docs. */
#define VD_ISCSI_SETTINGS_KEYS "backends, default_backend, helper, initiator, " \
	"reservation_key, preempt"
#define VD_ISCSI_BACKEND_KEYS "provisioner, portal, timeout_ms, mode, fstype, wipe, " \
	"max_volume_size, chap, target, tid, control_port, tgtadm, pool_dir, pool_size, targets"

/* Parses drivers.iscsi (NULL: no backends). Unknown keys and bad values are
 * -EINVAL naming the key path ("drivers.iscsi.backends.main.tid"); a
 * message never contains a CHAP secret. Keys of one provisioner given to
 * the other are refused. */
int vd_iscsi_settings_parse(const json_t *settings, struct vd_iscsi_settings **ret,
			    struct vd_err *err);
void vd_iscsi_settings_free(struct vd_iscsi_settings *settings);
const struct vd_iscsi_backend *vd_iscsi_backend_find(const struct vd_iscsi_settings *s,
						     const char *name);
void vd_iscsi_backend_names(const struct vd_iscsi_settings *s, char *buf, size_t len);
const char *vd_iscsi_mode_name(enum vd_iscsi_mode mode);
const char *vd_iscsi_provisioner_name(enum vd_iscsi_provisioner p);

/* A node's reservation key from its id: FNV-1a 64 of "volumed:" + id,
 * never 0. Stable across versions (keys outlive daemons). */
uint64_t vd_iscsi_key_from_node(const char *node_id);
/* "0x" + 16 hex digits into buf (>= 19 bytes). */
void vd_iscsi_key_format(uint64_t key, char *buf, size_t len);
/* "0x1f", "1F" (1-16 hex digits, 0x optional, not 0) -> key. */
int vd_iscsi_key_parse(const char *s, uint64_t *ret, struct vd_err *err);
/* "iqn.2026-01.io.volumed:" + node id mapped to IQN characters
 * (lowercase, [a-z0-9.-:], others -> '-'), into buf. */
void vd_iscsi_initiator_from_node(const char *node_id, char *buf, size_t len);
/* 1 when s is a valid IQN ("iqn.YYYY-MM.reversed.domain[:anything]",
 * lowercase letters, digits, '.', '-', ':'; at most 223 bytes). */
int vd_iscsi_iqn_valid(const char *s);

/* Volume options -> spec {"backend","size","fstype","wipe","preempt"}:
 * size in bytes (names.c units) within VD_ISCSI_SIZE_MIN..max_volume_size
 * (default VD_ISCSI_SIZE_DEFAULT), rounded up to a 1 MiB multiple;
 * fstype/wipe default from the backend, preempt from the settings.
 * Booleans: "true"/"false". Unknown keys are refused listing
 * VD_ISCSI_OPTIONS. Pure. */
int vd_iscsi_parse_options(const struct vd_iscsi_settings *s, const json_t *opts,
			   json_t **ret_spec, struct vd_err *err);

struct vd_iscsi_spec {
	const char *backend;       /* borrowed from the spec */
	uint64_t size;
	const char *fstype;
	int wipe, preempt;
};
int vd_iscsi_spec_read(const json_t *spec, struct vd_iscsi_spec *ret, struct vd_err *err);
/* The options that give this spec again through parse_options. */
json_t *vd_iscsi_spec_options(const struct vd_iscsi_spec *spec);

/* Where a volume lives: the driver's data for the core, and the body of
 * records. lun 0..VD_ISCSI_LUN_MAX (tgt: from 1). */
struct vd_iscsi_location {
	const char *portal;        /* borrowed */
	const char *target;        /* borrowed */
	int lun;
};
json_t *vd_iscsi_location_new(const char *portal, const char *target, int lun);
int vd_iscsi_location_read(const json_t *obj, struct vd_iscsi_location *ret,
			   struct vd_err *err);

/* A volume's record (a file in the pool directory for tgt, in the state
 * directory for static claims):
 *   {"name","spec","portal","target","lun","created_at"}
 * NULL when out of memory. */
json_t *vd_iscsi_record_new(const char *name, const json_t *spec,
			    const struct vd_iscsi_location *loc, const char *created_at);
/* Parses and checks a record's bytes (name rule, spec, location); the
 * record is returned owned. */
int vd_iscsi_record_parse(const char *buf, size_t len, json_t **ret_record,
			  struct vd_err *err);

/* ---- `tgtadm --lld iscsi --op show --mode target` ---------------------- */

struct vd_tgt_lun {
	int lun;
	char *backing;             /* "Backing store path", NULL when "None" */
	uint64_t size;             /* bytes, from "Size: N MB" (MB = 1000^2), 0 if absent */
};
struct vd_tgt_target {
	int tid;
	char *iqn;
	struct vd_tgt_lun *luns;   /* LUN 0 (the controller) included */
	size_t lun_count;
	char **accounts;           /* "Account information:" user names ("U (outgoing)" -> U,
	                              outgoing ones in outgoing[]) */
	size_t account_count;
	char **outgoing;
	size_t outgoing_count;
	char **acls;               /* "ACL information:" entries ("ALL", addresses) */
	size_t acl_count;
	int nexus_count;           /* I_T nexus entries (logged-in sessions) */
};
struct vd_tgt_show {
	struct vd_tgt_target *targets;
	size_t count;
};
/* Parses the whole output (empty output: no targets). Unrecognised lines
 * inside known sections are skipped; structure errors are -EINVAL. Pure. */
int vd_tgt_show_parse(const char *text, size_t len, struct vd_tgt_show *ret, struct vd_err *err);
void vd_tgt_show_clear(struct vd_tgt_show *show);
const struct vd_tgt_target *vd_tgt_show_find(const struct vd_tgt_show *show, int tid);

#endif
