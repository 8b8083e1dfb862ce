/* lease_guard.h — a FUSE helper's obedience to its node's lease.
 *
 * Started with --lease-file, a helper serves a single-writer volume for a
 * node agent: it refuses to start when the lease has already run out, and
 * once it runs out while serving, every request that would change the
 * volume fails with EIO, for good (the controller may have given the
 * volume to another node meanwhile; only a new helper, started after the
 * controller attached the volume here again, writes again). Reads go on.
 *
 * The lease is read again only when the last one read has run out, so a
 * renewed lease costs one small file read per lease period.
 *
 * Threads: lease_guard_init before any thread; the wrapped operations are
 * thread-safe. */
#ifndef VD_LEASE_GUARD_H
#define VD_LEASE_GUARD_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse.h>

/* Reads the lease at path: 0 when it holds, else -1 with the reason in
 * why (len bytes). */
int lease_guard_init(const char *path, char *why, size_t len);

/* With a lease: each operation of ops that changes the volume first checks
 * it (EIO once it ran out). ops is the table libfuse will call; its
 * current entries are kept and called through. Without a lease: nothing. */
void lease_guard_wrap(struct fuse_operations *ops);

#endif
