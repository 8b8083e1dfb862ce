/* iscsi_fuse.c — volumed-iscsi-fuse: the userspace iSCSI data path.
 *
 * Serves one iSCSI LUN as a FUSE file system holding one regular file,
 * "disk" (the LUN's bytes), through libiscsi, for hosts without open-iscsi
 * in the kernel. volumed's iscsi driver puts "disk" on a loop device,
 * formats and mounts it. It runs detached, so restarting volumed never
 * breaks a container's mount.
 *
 *   volumed-iscsi-fuse --url URL --mountpoint DIR [--timeout-ms N]
 *                      [--ready-fd FD] [--log FILE] [--foreground]
 *                      [--pr-key HEX] [--preempt HEX] [--initiator IQN]
 *
 *   --url URL         iscsi://HOST[:PORT]/TARGET-IQN/LUN (libiscsi's form).
 *   --mountpoint DIR  an existing directory; the FUSE mount goes there.
 *   --timeout-ms N    bound on every file system request, reconnects
 *                     included (>= 1000; default 10000). Past it: EIO.
 *   --ready-fd FD     once the FUSE mount is live "ok <pid>\n" is written to
 *                     FD (pid: the serving process), or "error: <reason>\n"
 *                     ("error: reserved by key 0x..." when another node
 *                     holds the LUN); then FD is closed. EOF without either
 *                     means it died.
 *   --log FILE        append one line per event to FILE (also stderr's
 *                     destination once detached; /dev/null without it).
 *   --foreground      do not detach (tests, debugging).
 *   --pr-key HEX      SCSI-3 persistent reservation key of this node (not 0):
 *                     register it and hold a Write Exclusive reservation
 *                     (see iscsifs.h).
 *   --preempt HEX     with --pr-key: preempt this key first (fence another
 *                     node: its writes then fail with RESERVATION CONFLICT).
 *   --initiator IQN   initiator name (default iqn.2026-01.io.volumed:<host>).
 *   --lease-file F    the node's lease (volumed/lease.h): refuse to start
 *                     when it has run out, and fail writes with EIO for good
 *                     once it runs out while serving.
 *   --secret-fd FD    CHAP credentials, read from FD until EOF before anything
 *                     else: "USER\nPASSWORD\n", then optionally
 *                     "TARGET-USER\nTARGET-PASSWORD\n" for mutual CHAP. Never
 *                     on the command line, never logged.
 *
 * Detaching, exit codes and signals are those of volumed-nfs-fuse: fork,
 * setsid, fork again, chdir("/"), stdin/stdout to /dev/null, stderr to the
 * log; 0 when unmounted or on SIGTERM/SIGINT/SIGHUP (then it unmounts
 * itself), 2 on bad arguments, 1 when it could not start. Mount options:
 * allow_other, fsname "volumed-iscsi:<URL>", subtype "volumed-iscsi",
 * max_read 1 MiB.
 *
 * Threads: the main thread parses, detaches (before any thread exists),
 * logs in, mounts and runs libfuse's multithreaded loop; the file system is
 * iscsifs.c (one session, requests serialised). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
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
#include "iscsifs.h"

#define MAX_WORKERS 8

struct args {
	const char *url;
	const char *mountpoint;
	const char *log;
	const char *initiator;
	const char *lease_file;
	long timeout_ms, ready_fd, secret_fd;
	uint64_t pr_key, preempt_key;
	int foreground;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: volumed-iscsi-fuse --url iscsi://HOST[:PORT]/IQN/LUN --mountpoint DIR "
		   "[--timeout-ms N] [--ready-fd FD] [--log FILE] [--foreground] [--pr-key HEX] "
		   "[--preempt HEX] [--initiator IQN] [--secret-fd FD] [--lease-file FILE]\n");
}

/* A non-zero 64-bit key in hex, "0x" optional. */
static uint64_t key_arg(const char *name, const char *s)
{
	const char *p = s;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	size_t n = strlen(p);
	if (n == 0 || n > 16 || strspn(p, "0123456789abcdefABCDEF") != n)
		helper_die_usage("%s '%s': 1 to 16 hex digits", name, s);
	uint64_t v = strtoull(p, NULL, 16);
	if (v == 0)
		helper_die_usage("%s: the key 0 means no key", name);
	return v;
}

static void parse_args(int argc, char **argv, struct args *a)
{
	enum { O_URL = 1, O_MNT, O_TIMEOUT, O_READY, O_LOG, O_FG, O_PRKEY, O_PREEMPT, O_INIT,
	       O_SECRET, O_LEASE, O_HELP };
	static const struct option opts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "mountpoint", required_argument, NULL, O_MNT },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "log", required_argument, NULL, O_LOG },
		{ "foreground", no_argument, NULL, O_FG },
		{ "pr-key", required_argument, NULL, O_PRKEY },
		{ "preempt", required_argument, NULL, O_PREEMPT },
		{ "initiator", required_argument, NULL, O_INIT },
		{ "secret-fd", required_argument, NULL, O_SECRET },
		{ "lease-file", required_argument, NULL, O_LEASE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	*a = (struct args){ .timeout_ms = 10000, .ready_fd = -1, .secret_fd = -1 };
	helper_ready_scan(argc, argv);
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_URL: a->url = optarg; break;
		case O_MNT: a->mountpoint = optarg; break;
		case O_TIMEOUT: a->timeout_ms = helper_num_arg("--timeout-ms", optarg, 1000, 3600000); break;
		case O_READY: a->ready_fd = helper_num_arg("--ready-fd", optarg, 3, 1 << 20); break;
		case O_LOG: a->log = optarg; break;
		case O_FG: a->foreground = 1; break;
		case O_PRKEY: a->pr_key = key_arg("--pr-key", optarg); break;
		case O_PREEMPT: a->preempt_key = key_arg("--preempt", optarg); break;
		case O_INIT: a->initiator = optarg; break;
		case O_SECRET: a->secret_fd = helper_num_arg("--secret-fd", optarg, 3, 1 << 20); break;
		case O_LEASE: a->lease_file = optarg; break;
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
	if (strncmp(a->url, "iscsi://", 8) != 0)
		helper_die_usage("--url %s: not an iscsi:// URL", a->url);
	if (!a->mountpoint)
		helper_die_usage("--mountpoint is required");
	if (a->mountpoint[0] != '/')
		helper_die_usage("--mountpoint %s: must be an absolute path", a->mountpoint);
	if (a->ready_fd >= 0 && helper_ready_fd() != (int)a->ready_fd)
		helper_die_usage("--ready-fd %ld: not an open file descriptor", a->ready_fd);
	if (a->preempt_key && !a->pr_key)
		helper_die_usage("--preempt needs --pr-key");
	if (a->preempt_key && a->preempt_key == a->pr_key)
		helper_die_usage("--preempt: the key is our own --pr-key");
}

/* CHAP credentials from the secret fd: up to four lines, read to EOF. */
struct secrets {
	char buf[1100];
	char *line[4];
};

static void secrets_read(int fd, struct secrets *sec)
{
	size_t n = 0;
	ssize_t got;
	while (n < sizeof(sec->buf) - 1 && (got = read(fd, sec->buf + n, sizeof(sec->buf) - 1 - n)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			helper_die_usage("--secret-fd %d: %s", fd, strerror(errno));
		n += (size_t)got;
	}
	close(fd);
	sec->buf[n] = '\0';
	char *p = sec->buf;
	for (int i = 0; i < 4 && *p; i++) {
		char *nl = strchr(p, '\n');
		if (!nl)
			helper_die_usage("--secret-fd: every line must end with a newline");
		*nl = '\0';
		sec->line[i] = p;
		p = nl + 1;
	}
	if (*p || !sec->line[1] || (sec->line[2] && !sec->line[3]))
		helper_die_usage("--secret-fd: expected USER and PASSWORD lines, then optionally "
				 "TARGET-USER and TARGET-PASSWORD");
}

int main(int argc, char **argv)
{
	struct args a;
	helper_name = "volumed-iscsi-fuse";
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv, &a);

	struct vd_err err = VD_ERR_INIT;
	struct secrets sec = { 0 };
	if (a.secret_fd >= 0)
		secrets_read((int)a.secret_fd, &sec);
	char initiator[300];
	if (a.initiator) {
		snprintf(initiator, sizeof(initiator), "%s", a.initiator);
	} else {
		char host[128] = "localhost";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		snprintf(initiator, sizeof(initiator), "iqn.2026-01.io.volumed:%s", host);
	}

	char real_mp[PATH_MAX];
	helper_start(a.mountpoint, a.log, a.foreground, real_mp);
	helper_lease(a.lease_file);

	vd_log(VD_LOG_INFO, "event=start pid=%ld url=%s mountpoint=%s timeout_ms=%ld pr_key=0x%" PRIx64
	       " preempt=0x%" PRIx64 " initiator=%s", (long)getpid(), a.url, a.mountpoint,
	       a.timeout_ms, a.pr_key, a.preempt_key, initiator);

	struct iscsifs_config cfg = { .url = a.url, .initiator = initiator,
				      .timeout_ms = (int)a.timeout_ms, .pr_key = a.pr_key,
				      .preempt_key = a.preempt_key, .chap_user = sec.line[0],
				      .chap_password = sec.line[1], .chap_target_user = sec.line[2],
				      .chap_target_password = sec.line[3] };
	struct iscsifs *fs = NULL;
	int started = iscsifs_new(&cfg, &fs, &err);
	explicit_bzero(&sec, sizeof(sec));   /* iscsifs keeps its own copy */
	if (started < 0) {
		vd_log(VD_LOG_ERROR, "event=start-failed err=\"%s\"", vd_err_msg(&err));
		helper_ready("error: %s", vd_err_msg(&err));
		return 1;
	}
	vd_log(VD_LOG_INFO, "event=iscsi-logged-in size=%" PRIu64 " block_size=%u", iscsifs_size(fs),
	       iscsifs_block_size(fs));

	/* fsname=volumed-iscsi:URL; an URL with a comma or backslash is not
	 * put in the option list. */
	char opts[1400];
	if (strpbrk(a.url, ",\\") || strlen(a.url) > 1024)
		snprintf(opts, sizeof(opts), "allow_other,fsname=volumed-iscsi,subtype=volumed-iscsi,"
			 "max_read=1048576");
	else
		snprintf(opts, sizeof(opts), "allow_other,fsname=volumed-iscsi:%s,subtype=volumed-iscsi,"
			 "max_read=1048576", a.url);
	int exit_code = helper_serve(argv[0], iscsifs_operations(), fs, a.mountpoint, real_mp, opts,
				     MAX_WORKERS, 2);
	iscsifs_release(fs);   /* on any ending: nothing more is written (skipped when fenced) */

	struct iscsifs_stats s;
	iscsifs_get_stats(fs, &s);
	iscsifs_free(fs);
	vd_log(VD_LOG_INFO, "event=exit code=%d requests=%lu reconnects=%lu timeouts=%lu eio=%lu "
	       "conflicts=%lu unit_attentions=%lu", exit_code, s.requests, s.reconnects, s.timeouts,
	       s.eio, s.conflicts, s.unit_attentions);
	return exit_code;
}
