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
#include "iscsifs.h"

#define MAX_WORKERS 8

struct args {
	const char *url;
	const char *mountpoint;
	const char *log;
	const char *initiator;
	long timeout_ms, ready_fd;
	uint64_t pr_key, preempt_key;
	int foreground;
};

static int ready_fd = -1;

/* Tells the waiting parent how the start went, once. */
static void ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ready(const char *fmt, ...)
{
	if (ready_fd < 0)
		return;
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(ready_fd, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += w;
	}
	close(ready_fd);
	ready_fd = -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: volumed-iscsi-fuse --url iscsi://HOST[:PORT]/IQN/LUN --mountpoint DIR "
		   "[--timeout-ms N] [--ready-fd FD] [--log FILE] [--foreground] [--pr-key HEX] "
		   "[--preempt HEX] [--initiator IQN]\n");
}

static struct fuse_operations ops;
static const char *mountpoint;

/* The kernel's INIT reached us: the mount is live, tell the parent. */
static void *init_and_ready(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	void *priv = iscsifs_operations()->init(conn, cfg);
	vd_log(VD_LOG_INFO, "event=ready mountpoint=%s max_write=%u max_read=%u", mountpoint,
	       conn->max_write, conn->max_read);
	ready("ok %ld", (long)getpid());
	return priv;
}

/* The kernel gives a FUSE mount 128 KiB of readahead and caps it at INIT
 * to what the file system asks; 4 MiB more than doubles sequential reads
 * (measured over NFS: about 300 -> 750 MB/s). It can only be raised after the
 * INIT reply, through sysfs: the first request after INIT does it, once. */
#define READ_AHEAD_KB 4096
static char bdi_dev[32];          /* "0:NN" of our mount, "" when unknown */
static atomic_int ra_done;

static void tune_readahead(void)
{
	if (!bdi_dev[0] || atomic_exchange(&ra_done, 1))
		return;
	char path[96];
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", bdi_dev);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		vd_log(VD_LOG_DEBUG, "event=readahead-not-set path=%s err=\"%s\"", path, strerror(errno));
		return;
	}
	char v[16];
	int n = snprintf(v, sizeof(v), "%d", READ_AHEAD_KB);
	if (write(fd, v, (size_t)n) != n)
		vd_log(VD_LOG_DEBUG, "event=readahead-not-set path=%s err=\"%s\"", path, strerror(errno));
	else
		vd_log(VD_LOG_INFO, "event=readahead bdi=%s kb=%d", bdi_dev, READ_AHEAD_KB);
	close(fd);
}

static int getattr_and_tune(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	tune_readahead();
	return iscsifs_operations()->getattr(path, st, fi);
}

/* Unescapes mountinfo's octal escapes (\040 for a space...) in place. */
static void mountinfo_unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* The "maj:min" of the last mount on dir in /proc/self/mountinfo. */
static void find_bdi(const char *dir, char *out, size_t len)
{
	out[0] = '\0';
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char dev[32], mp[4096];
		if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, mp) != 2)
			continue;
		mountinfo_unescape(mp);
		if (strcmp(mp, dir) == 0)
			snprintf(out, len, "%s", dev);
	}
	free(line);
	fclose(f);
}

/* Refuses: prints the reason, tells the ready fd, exits 2. */
static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "volumed-iscsi-fuse: %s\n", msg);
	ready("error: %s", msg);
	exit(2);
}

static int parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static long num_arg(const char *name, const char *s, long min, long max)
{
	long v;
	if (parse_long(s, min, max, &v) < 0)
		die_usage("%s '%s': a whole number in %ld..%ld", name, s, min, max);
	return v;
}

/* A non-zero 64-bit key in hex, "0x" optional. */
static uint64_t key_arg(const char *name, const char *s)
{
	const char *p = s;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	size_t n = strlen(p);
	if (n == 0 || n > 16 || strspn(p, "0123456789abcdefABCDEF") != n)
		die_usage("%s '%s': 1 to 16 hex digits", name, s);
	uint64_t v = strtoull(p, NULL, 16);
	if (v == 0)
		die_usage("%s: the key 0 means no key", name);
	return v;
}

static void parse_args(int argc, char **argv, struct args *a)
{
	enum { O_URL = 1, O_MNT, O_TIMEOUT, O_READY, O_LOG, O_FG, O_PRKEY, O_PREEMPT, O_INIT,
	       O_HELP };
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
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	*a = (struct args){ .timeout_ms = 10000, .ready_fd = -1 };
	/* The ready fd first, so that even an argument error reaches it. */
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc)
			v = argv[i + 1];
		else if (strncmp(argv[i], "--ready-fd=", 11) == 0)
			v = argv[i] + 11;
		long fd;
		if (v && parse_long(v, 3, 1 << 20, &fd) == 0 && fcntl((int)fd, F_GETFD) >= 0)
			ready_fd = (int)fd;
	}
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_URL: a->url = optarg; break;
		case O_MNT: a->mountpoint = optarg; break;
		case O_TIMEOUT: a->timeout_ms = num_arg("--timeout-ms", optarg, 1000, 3600000); break;
		case O_READY: a->ready_fd = num_arg("--ready-fd", optarg, 3, 1 << 20); break;
		case O_LOG: a->log = optarg; break;
		case O_FG: a->foreground = 1; break;
		case O_PRKEY: a->pr_key = key_arg("--pr-key", optarg); break;
		case O_PREEMPT: a->preempt_key = key_arg("--preempt", optarg); break;
		case O_INIT: a->initiator = optarg; break;
		case O_HELP: usage(stdout); exit(0);
		default:
			usage(stderr);
			die_usage("unknown option or missing value: %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument: %s", argv[optind]);
	if (!a->url)
		die_usage("--url is required");
	if (strncmp(a->url, "iscsi://", 8) != 0)
		die_usage("--url %s: not an iscsi:// URL", a->url);
	if (!a->mountpoint)
		die_usage("--mountpoint is required");
	if (a->mountpoint[0] != '/')
		die_usage("--mountpoint %s: must be an absolute path", a->mountpoint);
	if (a->ready_fd >= 0 && ready_fd != (int)a->ready_fd)
		die_usage("--ready-fd %ld: not an open file descriptor", a->ready_fd);
	if (a->preempt_key && !a->pr_key)
		die_usage("--preempt needs --pr-key");
	if (a->preempt_key && a->preempt_key == a->pr_key)
		die_usage("--preempt: the key is our own --pr-key");
}

/* Detaches from the caller: the first process exits 0 once the daemon
 * exists; the daemon is in its own session and not its leader. */
static int detach(int log_fd)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -errno;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -errno;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(log_fd >= 0 ? log_fd : null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv, &a);

	struct vd_err err = VD_ERR_INIT;
	struct stat st;
	if (stat(a.mountpoint, &st) < 0) {
		int e = errno;
		die_usage("--mountpoint %s: %s%s", a.mountpoint, strerror(e),
			  e == ENOTCONN ? " (a dead FUSE mount: unmount it first)" : "");
	}
	if (!S_ISDIR(st.st_mode))
		die_usage("--mountpoint %s: not a directory", a.mountpoint);
	char real_mp[PATH_MAX];
	if (!realpath(a.mountpoint, real_mp))
		die_usage("--mountpoint %s: %s", a.mountpoint, strerror(errno));
	char initiator[300];
	if (a.initiator) {
		snprintf(initiator, sizeof(initiator), "%s", a.initiator);
	} else {
		char host[128] = "localhost";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		snprintf(initiator, sizeof(initiator), "iqn.2026-01.io.volumed:%s", host);
	}

	int log_fd = -1;
	if (a.log) {
		log_fd = open(a.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (log_fd < 0)
			die_usage("--log %s: %s", a.log, strerror(errno));
	}
	if (a.ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	if (!a.foreground) {
		int rc = detach(log_fd);
		if (rc < 0) {
			ready("error: cannot detach: %s", strerror(-rc));
			return 1;
		}
	} else if (log_fd >= 0) {
		dup2(log_fd, STDERR_FILENO);
	}
	if (log_fd > STDERR_FILENO)
		close(log_fd);

	vd_log(VD_LOG_INFO, "event=start pid=%ld url=%s mountpoint=%s timeout_ms=%ld pr_key=0x%" PRIx64
	       " preempt=0x%" PRIx64 " initiator=%s", (long)getpid(), a.url, a.mountpoint,
	       a.timeout_ms, a.pr_key, a.preempt_key, initiator);

	struct iscsifs_config cfg = { .url = a.url, .initiator = initiator,
				      .timeout_ms = (int)a.timeout_ms, .pr_key = a.pr_key,
				      .preempt_key = a.preempt_key };
	struct iscsifs *fs = NULL;
	if (iscsifs_new(&cfg, &fs, &err) < 0) {
		vd_log(VD_LOG_ERROR, "event=start-failed err=\"%s\"", vd_err_msg(&err));
		ready("error: %s", vd_err_msg(&err));
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
	char *fargv[] = { argv[0], "-o", opts, NULL };
	struct fuse_args fargs = FUSE_ARGS_INIT(3, fargv);
	int exit_code = 1;
	ops = *iscsifs_operations();
	ops.init = init_and_ready;
	ops.getattr = getattr_and_tune;
	struct fuse *f = fuse_new(&fargs, &ops, sizeof(ops), fs);
	if (!f) {
		ready("error: fuse_new failed (see the log)");
		goto out_fs;
	}
	if (fuse_mount(f, a.mountpoint) != 0) {
		vd_log(VD_LOG_ERROR, "event=start-failed err=\"cannot mount FUSE on %s\"", a.mountpoint);
		ready("error: cannot mount FUSE on %s (is /dev/fuse there? see the log)", a.mountpoint);
		goto out_new;
	}
	struct fuse_session *se = fuse_get_session(f);
	if (fuse_set_signal_handlers(se) != 0) {
		ready("error: cannot set signal handlers");
		goto out_mount;
	}
	mountpoint = a.mountpoint;
	find_bdi(real_mp, bdi_dev, sizeof(bdi_dev));

	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (!lc) {
		vd_log(VD_LOG_ERROR, "event=loop-failed err=\"out of memory\"");
		goto out_signals;
	}
	fuse_loop_cfg_set_max_threads(lc, MAX_WORKERS);
	fuse_loop_cfg_set_idle_threads(lc, 2);
	int rc = fuse_loop_mt(f, lc);
	fuse_loop_cfg_destroy(lc);
	if (rc < 0) {
		vd_log(VD_LOG_ERROR, "event=loop-failed err=%d", -rc);
		ready("error: the FUSE session failed (error %d, see the log)", -rc);
	} else {
		exit_code = 0;
		iscsifs_release(fs);
	}
	vd_log(VD_LOG_INFO, "event=stopping reason=%s", rc == 0 ? "unmounted" : rc > 0 ? "signal" : "error");

out_signals:
	fuse_remove_signal_handlers(se);
out_mount:
	fuse_unmount(f);
out_new:
	fuse_destroy(f);
out_fs:;
	struct iscsifs_stats s;
	iscsifs_get_stats(fs, &s);
	iscsifs_free(fs);
	fuse_opt_free_args(&fargs);
	vd_log(VD_LOG_INFO, "event=exit code=%d requests=%lu reconnects=%lu timeouts=%lu eio=%lu "
	       "conflicts=%lu unit_attentions=%lu", exit_code, s.requests, s.reconnects, s.timeouts,
	       s.eio, s.conflicts, s.unit_attentions);
	return exit_code;
}
