/* lease.h — the node's lease, as a file its data-path helpers can read.
 *
 * A node agent may write to a single-writer volume only while the
 * controller renews its lease. The agent writes, after each heartbeat the
 * controller answered, when the lease ends: "volumed-lease 1 BOOT_ID MS\n",
 * MS on CLOCK_MONOTONIC in milliseconds, BOOT_ID the kernel's boot id (a
 * monotonic time means nothing after a reboot). A FUSE helper that outlives
 * volumed reads it and stops writing once the lease has run out, so a node
 * whose volumed died cannot write to a volume the controller moved on.
 *
 * Threads: no shared state. */
#ifndef VD_LEASE_H
#define VD_LEASE_H

#include <stddef.h>

#include "err.h"

#define VD_LEASE_BOOT_ID_LEN 36   /* 8-4-4-4-12 hex digits and dashes */

struct vd_lease {
	char boot_id[VD_LEASE_BOOT_ID_LEN + 1];
	long long until_ms;   /* CLOCK_MONOTONIC */
};

/* Parses the file's text (len bytes, not NUL-terminated). Pure. -EINVAL
 * with the reason when it is not one well-formed line. */
int vd_lease_parse(const char *buf, size_t len, struct vd_lease *ret, struct vd_err *err);

/* Writes a lease ending at until_ms (CLOCK_MONOTONIC), atomically (a new
 * file renamed over the old). */
int vd_lease_write(const char *path, long long until_ms, struct vd_err *err);

/* Reads the lease at path: 0 and *ret, or a negative errno (-ENOENT when
 * there is none) and the reason. */
int vd_lease_read(const char *path, struct vd_lease *ret, struct vd_err *err);

/* 1 when the lease is this boot's and has not ended at now_ms, else 0. */
int vd_lease_holds(const struct vd_lease *lease, const char *boot_id, long long now_ms);

/* This boot's id into buf (VD_LEASE_BOOT_ID_LEN + 1 bytes); -errno if unreadable. */
int vd_lease_boot_id(char *buf, struct vd_err *err);

/* CLOCK_MONOTONIC in milliseconds. */
long long vd_lease_now_ms(void);

#endif
