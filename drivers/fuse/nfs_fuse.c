/* nfs_fuse.c — volumed-nfs-fuse: the userspace NFS data path.
 *
 * Serves one NFSv3 directory (a volume) as a FUSE file system through
 * libnfs, for hosts whose kernel has no NFS client. volumed's nfs driver
 * starts it; it runs detached, so restarting volumed never breaks a
 * container's mount.
 *
 *   volumed-nfs-fuse --url URL --mountpoint DIR [--timeout-ms N]
 *                    [--retries N] [--ready-fd FD] [--log FILE]
 *                    [--foreground] [--connections N] [--lease-file F]
 *
 *   --url URL         nfs://HOST[:PORT]/EXPORT/PATH/TO/VOLUME[?nfsport=N&
 *                     mountport=N&version=3&tcp-syncnt=N&auto-traverse-mounts=0|1]
 *                     (libnfs's form; :PORT is the NFS port). The volume is a
 *                     directory: the export itself or one inside it.
 *   --mountpoint DIR  an existing directory; the FUSE mount goes there.
 *   --timeout-ms N    bound on every file system request, queueing for a
 *                     connection and reconnects included (>= 1000; default
 *                     10000). Past it the request fails with EIO.
 *   --retries N       reconnects per request, with backoff, inside the bound
 *                     (default 5); also libnfs's autoreconnect count.
 *   --ready-fd FD     once the FUSE mount is live "ok PID\n" is written to FD,
 *                     or "error: <reason>\n" if it could not be made; then
 *                     FD is closed. EOF without either means it died.
 *   --log FILE        append one line per event to FILE (also stderr's
 *                     destination once detached; /dev/null without it).
 *   --foreground      do not detach (tests, debugging).
 *   --connections N   libnfs contexts in the pool (1..32, default 4).
 *   --lease-file F    the node's lease (volumed/lease.h): refuse to start
 *                     when it has run out, and fail changes with EIO for
 *                     good once it runs out while serving.
 *
 * Without --foreground it detaches: fork, setsid, fork again (never a
 * session leader), chdir("/"), stdin/stdout to /dev/null, stderr to the
 * log. The process that volumed started exits 0 at once; readiness is
 * told on --ready-fd only. Mount options: allow_other (containers run as
 * any uid), no default_permissions (the NFS server decides, from each
 * caller's AUTH_SYS uid, gid and supplementary groups), fsname
 * "volumed-nfs:<URL without query>", subtype "volumed-nfs" (so mountinfo
 * shows fuse.volumed-nfs), max_read 1 MiB (and max_write 1 MiB).
 *
 * Exit: 0 when the file system was unmounted (umount2 by the driver,
 * fusermount3 -u) or on SIGTERM/SIGINT/SIGHUP, after which it unmounts
 * itself. 2 on bad arguments, 1 when it could not start.
 *
 * Threads: main thread parses, detaches (before any thread exists), mounts
 * and then runs libfuse's multithreaded loop (up to 16 workers) until the
 * session ends; the file system itself is nfsfs.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../volumed/err.h"
#include "../../volumed/log.h"
#include "helper.h"
#include "nfs_url.h"
#include "nfsfs.h"

#define MAX_WORKERS 16

struct args {
	const char *url;
	const char *mountpoint;
	const char *log;
	const char *lease_file;
	long timeout_ms, retries, ready_fd, connections;
	int foreground;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: volumed-nfs-fuse --url nfs://HOST[:PORT]/EXPORT/PATH[?nfsport=N&mountport=N] "
		   "--mountpoint DIR [--timeout-ms N] [--retries N] [--ready-fd FD] [--log FILE] "
		   "[--foreground] [--connections N] [--lease-file FILE]\n");
}

static void parse_args(int argc, char **argv, struct args *a)
{
	enum { O_URL = 1, O_MNT, O_TIMEOUT, O_RETRIES, O_READY, O_LOG, O_FG, O_CONNS, O_LEASE,
	       O_HELP };
	static const struct option opts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "mountpoint", required_argument, NULL, O_MNT },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "log", required_argument, NULL, O_LOG },
		{ "foreground", no_argument, NULL, O_FG },
		{ "connections", required_argument, NULL, O_CONNS },
		{ "lease-file", required_argument, NULL, O_LEASE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	*a = (struct args){ .timeout_ms = 10000, .retries = 5, .ready_fd = -1, .connections = 4 };
	helper_ready_scan(argc, argv);
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_URL: a->url = optarg; break;
		case O_MNT: a->mountpoint = optarg; break;
		case O_TIMEOUT: a->timeout_ms = helper_num_arg("--timeout-ms", optarg, 1000, 3600000); break;
		case O_RETRIES: a->retries = helper_num_arg("--retries", optarg, 0, 100); break;
		case O_READY: a->ready_fd = helper_num_arg("--ready-fd", optarg, 3, 1 << 20); break;
		case O_LOG: a->log = optarg; break;
		case O_LEASE: a->lease_file = optarg; break;
		case O_FG: a->foreground = 1; break;
		case O_CONNS: a->connections = helper_num_arg("--connections", optarg, 1, NFSFS_MAX_CONNS); break;
		case O_HELP: usage(stdout); exit(0);
		default:
			usage(stderr);
			helper_die_usage("unknown option or missing value: %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		helper_die_usage("unexpected argument: %s", argv[optind]);
	if (!a->url)
		helper_die_usage("--url is required");
	if (!a->mountpoint)
		helper_die_usage("--mountpoint is required");
	if (a->mountpoint[0] != '/')
		helper_die_usage("--mountpoint %s: must be an absolute path", a->mountpoint);
	if (a->ready_fd >= 0 && helper_ready_fd() != (int)a->ready_fd)
		helper_die_usage("--ready-fd %ld: not an open file descriptor", a->ready_fd);
}

int main(int argc, char **argv)
{
	struct args a;
	helper_name = "volumed-nfs-fuse";
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv, &a);

	struct vd_err err = VD_ERR_INIT;
	struct nfs_url_parts url;
	if (nfs_url_parse(a.url, &url, &err) < 0)
		helper_die_usage("%s", vd_err_msg(&err));
	char real_mp[PATH_MAX];
	helper_start(a.mountpoint, a.log, a.foreground, real_mp);
	helper_lease(a.lease_file);

	char display[NFS_URL_MAX + 16];
	nfs_url_display(&url, display, sizeof(display));
	vd_log(VD_LOG_INFO, "event=start pid=%ld url=%s mountpoint=%s timeout_ms=%ld retries=%ld "
	       "connections=%ld", (long)getpid(), display, a.mountpoint, a.timeout_ms, a.retries,
	       a.connections);

	struct nfsfs_config cfg = { .url = a.url, .timeout_ms = (int)a.timeout_ms,
				    .retries = (int)a.retries, .connections = (int)a.connections };
	struct nfsfs *fs = NULL;
	if (nfsfs_new(&cfg, &fs, &err) < 0) {
		vd_log(VD_LOG_ERROR, "event=start-failed err=\"%s\"", vd_err_msg(&err));
		helper_ready("error: %s", vd_err_msg(&err));
		return 1;
	}
	vd_log(VD_LOG_INFO, "event=nfs-mounted export=%s dir=%s", nfsfs_export(fs),
	       nfsfs_inner(fs)[0] ? nfsfs_inner(fs) : "/");

	/* fsname=volumed-nfs:URL, escaped for the option list. */
	char fsname[NFS_URL_MAX + 32], esc[2 * NFS_URL_MAX + 64], opts[2 * NFS_URL_MAX + 256];
	snprintf(fsname, sizeof(fsname), "volumed-nfs:%s", display);
	if (nfs_url_opt_escape(fsname, esc, sizeof(esc)) < 0)
		snprintf(esc, sizeof(esc), "volumed-nfs");
	snprintf(opts, sizeof(opts), "allow_other,fsname=%s,subtype=volumed-nfs,max_read=1048576",
		 esc);
	int exit_code = helper_serve(argv[0], nfsfs_operations(), fs, a.mountpoint, real_mp, opts,
				     MAX_WORKERS, 4);

	struct nfsfs_stats s;
	nfsfs_get_stats(fs, &s);
	nfsfs_free(fs);
	vd_log(VD_LOG_INFO, "event=exit code=%d requests=%lu reconnects=%lu conn_dropped=%lu "
	       "timeouts=%lu eio=%lu", exit_code, s.requests, s.reconnects, s.conn_lost, s.timeouts,
	       s.eio);
	return exit_code;
}
