/* nfsfs.h — a FUSE file system (libfuse3 high-level) over one NFSv3
 * directory, through libnfs.
 *
 * An nfsfs holds a small pool of libnfs contexts, each its own TCP
 * connection and MOUNT of the same export; every FUSE request borrows one
 * for its duration (libnfs contexts are not thread-safe). A request carries
 * the caller's AUTH_SYS credentials (uid, gid, up to 16 supplementary
 * groups), so the server decides access: mount with default_permissions
 * off.
 *
 * Outages: every request is bounded by timeout_ms, queueing for a context
 * included. A dead connection is dropped and remade (a new context and
 * MOUNT); an idempotent request is retried up to `retries` times with
 * backoff (100 ms doubling, at most 2 s) inside its bound; other requests,
 * once sent, fail with EIO (the server may have done them). Nothing spins:
 * waits are poll(2) slices of at most 100 ms.
 *
 * Threads: any number of FUSE worker threads; the pool's free list is under
 * one mutex + condvar, a borrowed context is used by its borrower alone. */
#ifndef VD_NFSFS_H
#define VD_NFSFS_H

#define FUSE_USE_VERSION 314
#include <fuse.h>

#include "../../volumed/err.h"

#define NFSFS_MAX_CONNS 32

struct nfsfs_config {
	const char *url;      /* nfs://HOST[:PORT]/EXPORT/PATH[?...] (nfs_url.h) */
	int timeout_ms;       /* bound on one request, >= 1000 */
	int retries;          /* reconnects per request, >= 0 */
	int connections;      /* pool size, 1..NFSFS_MAX_CONNS */
};

struct nfsfs;

/* Checks the URL, mounts the export with the first context and checks that
 * the volume directory exists (trying the path as the export, then each
 * parent as the export with the rest as a directory inside it). Blocks, at
 * most about timeout_ms per mount attempt. */
int nfsfs_new(const struct nfsfs_config *cfg, struct nfsfs **ret, struct vd_err *err);

/* Drops every context. Open file handles must be released before. */
void nfsfs_free(struct nfsfs *fs);

/* "nfs://HOST[:PORT]/PATH", the URL without its query. */
const char *nfsfs_display_url(const struct nfsfs *fs);

/* Which export was mounted and the volume's directory inside it ("" when
 * the volume is the mounted directory itself). */
const char *nfsfs_export(const struct nfsfs *fs);
const char *nfsfs_inner(const struct nfsfs *fs);

/* The FUSE operations; fuse_new()'s user_data must be the nfsfs. */
const struct fuse_operations *nfsfs_operations(void);

/* Counters for the log at exit. */
struct nfsfs_stats {
	unsigned long requests, reconnects, conn_lost, timeouts, eio;
};
void nfsfs_get_stats(struct nfsfs *fs, struct nfsfs_stats *ret);

#endif
