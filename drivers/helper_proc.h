/* helper_proc.h — starting, adopting and stopping the detached FUSE
 * helpers (volumed-nfs-fuse, volumed-iscsi-fuse) that serve a node's
 * mounts, seen from volumed.
 *
 * A helper runs in its own session and outlives volumed; its pid is kept
 * in <dir>/helper.pid and, when that is stale, found again in /proc by its
 * name ("volumed-...") and its --mountpoint argument. Its log is
 * <dir>/helper.log.
 *
 * Threads: no shared state; the caller serialises calls for one mount. */
#ifndef VD_HELPER_PROC_H
#define VD_HELPER_PROC_H

#include <sys/types.h>

#include "../volumed/err.h"

struct vd_helper_run {
	const char *program;     /* absolute path of the helper */
	const char *what;        /* prefix of error messages: "nfs backend main" */
	const char *dir;         /* holds helper.log and helper.pid */
	const char *mnt;         /* the FUSE mount point (exists) */
	int timeout_ms;          /* the helper's own bound; start-up gets 5 s more */
	char *const *args;       /* program arguments before the common ones; NULL-terminated */
	const char *secret;      /* written on the helper's fd 4 (then closed), or NULL */
	const char *lease_file;  /* the node's lease the helper obeys (--lease-file), or NULL */
};

/* Starts the helper with args + --mountpoint MNT --timeout-ms N
 * --ready-fd 3 --log DIR/helper.log, waits for its "ok PID" and for the
 * mount, records the pid. "error: ..." or no answer: the helper is killed,
 * the mount cleared, and the error says why (with its log's last line). */
int vd_helper_start(const struct vd_helper_run *run, struct vd_err *err);

/* Waits a little for the helper serving mnt to exit (it does once
 * unmounted), then SIGTERM, then SIGKILL; removes the pid file. */
void vd_helper_stop(const char *dir, const char *mnt);

/* Kills the helper serving mnt at once (SIGKILL): its FUSE mount is cut,
 * every user gets an error, nothing more reaches the storage (fencing). */
void vd_helper_kill(const char *dir, const char *mnt);

/* The pid of the helper serving mnt (pid file, else /proc), 0 when none. */
pid_t vd_helper_pid(const char *dir, const char *mnt);

/* Calls fn for every running helper (a "volumed-*" process with a
 * --mountpoint) with its pid and mount point, until fn returns non-zero,
 * which is returned. Reads /proc. */
typedef int (*vd_helper_visit_fn)(pid_t pid, const char *mnt, void *userdata);
int vd_helper_foreach(vd_helper_visit_fn fn, void *userdata);

/* 1 mounted and answering, 0 not mounted, 2 mounted but dead (a FUSE
 * mount whose helper is gone: ENOTCONN). A kernel NFS mount is never
 * probed (stat on a hard mount to a server that is down would hang). */
int vd_helper_mount_state(const char *mnt, struct vd_err *err);

/* Where the helper named name is for the volumed executable exe
 * (malloc'd): beside exe (a build tree), else exe's ../libexec/volumed/
 * (make install: sbin/volumed, libexec/volumed/<name>), whichever is
 * executable; neither: the one beside exe, so the error names it. NULL
 * when out of memory. */
char *vd_helper_path_for(const char *exe, const char *name);

/* vd_helper_path_for volumed's own executable, or
 * /usr/libexec/volumed/<name> when /proc/self/exe cannot be read. */
char *vd_helper_default_path(const char *name);

#endif
