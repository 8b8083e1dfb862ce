/* iscsifs.h — a FUSE file system (libfuse3 high-level) holding one regular
 * file, "disk", whose bytes are one iSCSI LUN, through libiscsi.
 *
 * Reads and writes map to READ16/WRITE16 of at most 1 MiB; unaligned edges
 * are read-modify-written under the request lock; fsync is SYNCHRONIZE
 * CACHE 10. Opens set direct_io, so a loop device's I/O reaches the target.
 *
 * One libiscsi session, used by one request at a time (fs->lock, taken
 * with the request's deadline). Every request is bounded by timeout_ms:
 * our own poll(2) loop (slices of at most 100 ms, never a spin) drives the
 * context; a dead or timed-out session is dropped and a new one logged in,
 * with backoff (100 ms doubling, at most 2 s), inside the bound. Past it
 * the request fails with EIO.
 *
 * Persistent reservations (pr_key != 0): after every login the session
 * registers pr_key (REGISTER AND IGNORE EXISTING KEY; tgt ties a
 * registration to its session), then RESERVEs Write Exclusive when nobody
 * holds the LUN, or PREEMPTs its own stale key when the reservation is
 * still ours from an older session. Held by another key: at start an error
 * ("reserved by key 0x..."), later the node is fenced. RESERVATION
 * CONFLICT on a write fails it with EIO at once, never retried; UNIT
 * ATTENTION is retried once.
 *
 * Threads: any number of FUSE worker threads; fs->lock serialises them. */
#ifndef VD_ISCSIFS_H
#define VD_ISCSIFS_H

#define FUSE_USE_VERSION 314
#include <fuse.h>
#include <stdint.h>

#include "../../volumed/err.h"

#define ISCSIFS_FILE "disk"

struct iscsifs_config {
	const char *url;          /* iscsi://HOST[:PORT]/IQN/LUN */
	const char *initiator;    /* initiator IQN */
	int timeout_ms;           /* bound on one request, >= 1000 */
	uint64_t pr_key;          /* 0: no persistent reservation */
	uint64_t preempt_key;     /* != 0 (needs pr_key): preempt this key at start */
	const char *chap_user;    /* CHAP: NULL for none; copied */
	const char *chap_password;
	const char *chap_target_user;      /* mutual CHAP: NULL for none */
	const char *chap_target_password;
};

struct iscsifs;

/* Logs in, reads the capacity and, with pr_key, registers and reserves.
 * Blocks, at most about timeout_ms. */
int iscsifs_new(const struct iscsifs_config *cfg, struct iscsifs **ret, struct vd_err *err);
void iscsifs_free(struct iscsifs *fs);

/* On a clean stop (unmounted, SIGTERM), with pr_key and not fenced: RELEASE
 * the reservation and unregister the key, so the volume can move without
 * a preempt. Bounded by timeout_ms; failures are logged only. */
void iscsifs_release(struct iscsifs *fs);

uint64_t iscsifs_size(const struct iscsifs *fs);
uint32_t iscsifs_block_size(const struct iscsifs *fs);

/* The FUSE operations; fuse_new()'s user_data must be the iscsifs. */
const struct fuse_operations *iscsifs_operations(void);

struct iscsifs_stats {
	unsigned long requests, reconnects, timeouts, eio, conflicts, unit_attentions;
};
void iscsifs_get_stats(struct iscsifs *fs, struct iscsifs_stats *ret);

#endif
