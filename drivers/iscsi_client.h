/* iscsi_client.h — volumed's own short iSCSI sessions (libiscsi), for the
 * control plane: discovery of a static pool, LUN facts, the persistent
 * reservation state for inspect, fencing a node, and zeroing a LUN.
 *
 * Every call logs in, does its work and logs out; each is bounded by the
 * timeout it is given (connect, login and every command), never hangs and
 * never spins. CHAP credentials are passed to libiscsi only, never put in
 * an error message. The data path is not here: it is volumed-iscsi-fuse.
 *
 * Threads: no shared state; any thread may call (one libiscsi context per
 * call). Errors: negative errno and err set ("login to IQN at PORTAL: ...",
 * -ECONNREFUSED / -ETIMEDOUT / -EACCES for an authentication failure /
 * -ENOENT for a target or LUN that does not exist / -EIO). */
#ifndef VD_ISCSI_CLIENT_H
#define VD_ISCSI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "../volumed/err.h"
#include "iscsi_meta.h"

/* Where to go and as whom. chap may be NULL; its fields may be NULL. */
struct vd_iscsi_peer {
	const char *portal;              /* "host:port" */
	const char *initiator;           /* our IQN */
	const struct vd_iscsi_chap *chap;
	int timeout_ms;                  /* bound on each step */
};

/* SendTargets on the portal: fn(iqn, portal-as-announced, userdata) per
 * target; a non-zero return stops the walk. */
int vd_iscsi_discover_targets(const struct vd_iscsi_peer *peer,
			      int (*fn)(const char *iqn, const char *portal, void *userdata),
			      void *userdata, struct vd_err *err);

struct vd_iscsi_lun_info {
	int lun;
	int is_disk;                     /* INQUIRY peripheral device type 0, qualifier 0 */
	uint64_t size;                   /* bytes (READ CAPACITY 16); 0 when not a disk */
	uint32_t block_size;
	char vendor[9], product[17];     /* INQUIRY, trailing spaces trimmed */
};

/* REPORT LUNS on target, then INQUIRY + READ CAPACITY 16 per LUN:
 * fn(info, userdata) per LUN (LUN 0 included when the target reports it);
 * a non-zero return stops the walk. */
int vd_iscsi_list_luns(const struct vd_iscsi_peer *peer, const char *target,
		       int (*fn)(const struct vd_iscsi_lun_info *info, void *userdata),
		       void *userdata, struct vd_err *err);

/* INQUIRY + READ CAPACITY 16 of one LUN. */
int vd_iscsi_lun_info(const struct vd_iscsi_peer *peer, const char *target, int lun,
		      struct vd_iscsi_lun_info *ret, struct vd_err *err);

#define VD_ISCSI_PR_KEYS_MAX 64

/* PERSISTENT RESERVE IN: READ KEYS + READ RESERVATION. */
struct vd_iscsi_pr_state {
	uint32_t generation;
	uint64_t keys[VD_ISCSI_PR_KEYS_MAX];  /* registered keys (one per I_T nexus) */
	size_t key_count;                     /* may exceed VD_ISCSI_PR_KEYS_MAX: then truncated */
	int reserved;
	uint64_t holder;                      /* the reservation key, when reserved */
	int type;                             /* SCSI_PERSISTENT_RESERVE_TYPE_* when reserved */
};
int vd_iscsi_pr_read(const struct vd_iscsi_peer *peer, const char *target, int lun,
		     struct vd_iscsi_pr_state *ret, struct vd_err *err);
/* "write-exclusive", "exclusive-access", "write-exclusive-registrants-only", ... */
const char *vd_iscsi_pr_type_name(int type);

/* Fences the node holding victim_key: registers own_key on this short
 * session (REGISTER AND IGNORE EXISTING KEY), PREEMPT AND ABORT victim_key
 * with a Write Exclusive reservation (so own_key holds it afterwards),
 * then RELEASE and unregister own_key, leaving the LUN free for the next
 * node's helper to reserve. victim_key not registered: 0, nothing done. */
int vd_iscsi_pr_fence(const struct vd_iscsi_peer *peer, const char *target, int lun,
		      uint64_t own_key, uint64_t victim_key, struct vd_err *err);

/* Writes zeros over [offset, offset + length) of the LUN (byte range
 * rounded out to blocks; clamped to the LUN's size), 1 MiB per WRITE 16
 * (WRITE SAME 16 when the target supports it). Used to wipe a volume and
 * to clear old file-system signatures from a reused LUN. Bounded per
 * command, not in total: a 1 TiB wipe takes as long as it takes. */
int vd_iscsi_zero(const struct vd_iscsi_peer *peer, const char *target, int lun,
		  uint64_t offset, uint64_t length, struct vd_err *err);

#endif
