/* helper.h — what the FUSE data-path helpers (volumed-nfs-fuse,
 * volumed-iscsi-fuse) share: the --ready-fd protocol, argument refusals,
 * detaching from volumed, and serving a FUSE file system until it is
 * unmounted or signalled (with the mount's readahead raised).
 *
 * Threads: everything but helper_serve's loop runs on the main thread
 * before any other thread exists. */
#ifndef VD_FUSE_HELPER_H
#define VD_FUSE_HELPER_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse.h>

/* The program's name, for messages ("volumed-nfs-fuse"). Set first. */
extern const char *helper_name;

/* Takes --ready-fd N (or --ready-fd=N) from argv before anything else,
 * so that even an argument error reaches the waiting parent. */
void helper_ready_scan(int argc, char **argv);
/* The fd found by helper_ready_scan, or -1. */
int helper_ready_fd(void);
/* Tells the waiting parent how the start went, once: "ok <pid>" or
 * "error: <reason>", one line. */
void helper_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the reason, tells the ready fd, exits 2. */
void helper_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A whole number in min..max; -EINVAL otherwise. */
int helper_parse_long(const char *s, long min, long max, long *ret);
/* The same, or helper_die_usage naming the option. */
long helper_num_arg(const char *name, const char *s, long min, long max);

/* Checks the mountpoint (an existing directory; its real path into
 * real_mp, PATH_MAX bytes), opens the log, and unless foreground detaches
 * (fork, setsid, fork, chdir /, stdio to /dev/null, stderr to the log).
 * Refusals exit 2 and failures 1, told on the ready fd. */
void helper_start(const char *mountpoint, const char *log, int foreground, char *real_mp);

/* With a lease file (not NULL): the helper obeys the node's lease
 * (lease_guard.h); one that has already run out ends the start here,
 * told on the ready fd (exit 1). Call after helper_start. */
void helper_lease(const char *lease_file);

/* Mounts fs_ops on mountpoint with the -o options opts, answers "ok <pid>"
 * on the ready fd when the kernel's INIT arrives, and runs libfuse's
 * multithreaded loop until the file system is unmounted or a signal asks
 * it to stop; then unmounts. 0 then, 1 when it could not serve. */
int helper_serve(const char *argv0, const struct fuse_operations *fs_ops, void *fs,
		 const char *mountpoint, const char *real_mp, const char *opts,
		 int max_workers, int idle_workers);

#endif
