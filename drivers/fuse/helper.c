/* helper.c — the scaffolding the FUSE data-path helpers share (see
 * helper.h). */
#include "helper.h"
#include "lease_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../volumed/log.h"

const char *helper_name = "volumed-fuse-helper";

static int ready_fd = -1;

int helper_parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

void helper_ready_scan(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		long fd;
		if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc)
			v = argv[i + 1];
		else if (strncmp(argv[i], "--ready-fd=", 11) == 0)
			v = argv[i] + 11;
		if (v && helper_parse_long(v, 3, 1 << 20, &fd) == 0 && fcntl((int)fd, F_GETFD) >= 0)
			ready_fd = (int)fd;
	}
}

int helper_ready_fd(void)
{
	return ready_fd;
}

void helper_ready(const char *fmt, ...)
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
	for (ssize_t off = 0; off < n;) {
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

void helper_die_usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", helper_name, msg);
	helper_ready("error: %s", msg);
	exit(2);
}

long helper_num_arg(const char *name, const char *s, long min, long max)
{
	long v;
	if (helper_parse_long(s, min, max, &v) < 0)
		helper_die_usage("%s '%s': a whole number in %ld..%ld", name, s, min, max);
	return v;
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

void helper_start(const char *mountpoint, const char *log, int foreground, char *real_mp)
{
	struct stat st;
	if (stat(mountpoint, &st) < 0) {
		int e = errno;
		helper_die_usage("--mountpoint %s: %s%s", mountpoint, strerror(e),
				 e == ENOTCONN ? " (a dead FUSE mount: unmount it first)" : "");
	}
	if (!S_ISDIR(st.st_mode))
		helper_die_usage("--mountpoint %s: not a directory", mountpoint);
	/* Now: once our mount is on it, resolving it would ask ourselves. */
	if (!realpath(mountpoint, real_mp))
		helper_die_usage("--mountpoint %s: %s", mountpoint, strerror(errno));
	int log_fd = -1;
	if (log) {
		log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
		if (log_fd < 0)
			helper_die_usage("--log %s: %s", log, strerror(errno));
	}
	if (ready_fd >= 0)
		fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
	if (!foreground) {
		int rc = detach(log_fd);
		if (rc < 0) {
			helper_ready("error: cannot detach: %s", strerror(-rc));
			exit(1);
		}
	} else if (log_fd >= 0) {
		dup2(log_fd, STDERR_FILENO);
	}
	if (log_fd > STDERR_FILENO)
		close(log_fd);
}

void helper_lease(const char *lease_file)
{
	char why[512];
	if (!lease_file)
		return;
	if (lease_guard_init(lease_file, why, sizeof(why)) < 0) {
		vd_log(VD_LOG_ERROR, "event=start-failed err=\"%s\"", why);
		helper_ready("error: %s", why);
		exit(1);
	}
	vd_log(VD_LOG_INFO, "event=lease lease=%s", lease_file);
}

/* ---- serving ------------------------------------------------------------ */

static const struct fuse_operations *inner;   /* the file system's own ops */
static const char *served_on;

/* The kernel's INIT reached us: the mount is live, tell the parent. */
static void *init_and_ready(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	void *priv = inner->init ? inner->init(conn, cfg) : fuse_get_context()->private_data;
	vd_log(VD_LOG_INFO, "event=ready mountpoint=%s max_write=%u max_read=%u", served_on,
	       conn->max_write, conn->max_read);
	helper_ready("ok %ld", (long)getpid());
	return priv;
}

/* The kernel gives a FUSE mount 128 KiB of readahead and caps it at INIT
 * to what the file system asks; 4 MiB more than doubles sequential reads
 * (measured over NFS: about 300 -> 750 MB/s). It can only be raised after
 * the INIT reply, through sysfs: the first request after INIT does it. */
#define READ_AHEAD_KB 4096
static char bdi_dev[32];          /* "0:NN" of our mount, "" when unknown */
static atomic_int ra_done;

static void tune_readahead(void)
{
	if (!bdi_dev[0] || atomic_exchange(&ra_done, 1))
		return;
	char path[96], v[16];
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", bdi_dev);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(v, sizeof(v), "%d", READ_AHEAD_KB);
	if (fd < 0 || write(fd, v, (size_t)n) != n)
		vd_log(VD_LOG_DEBUG, "event=readahead-not-set path=%s err=\"%s\"", path,
		       strerror(errno));
	else
		vd_log(VD_LOG_INFO, "event=readahead bdi=%s kb=%d", bdi_dev, READ_AHEAD_KB);
	if (fd >= 0)
		close(fd);
}

static int getattr_and_tune(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	tune_readahead();
	return inner->getattr(path, st, fi);
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

static int serve_loop(struct fuse *f, int max_workers, int idle_workers)
{
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (!lc) {
		vd_log(VD_LOG_ERROR, "event=loop-failed err=\"out of memory\"");
		return 1;
	}
	fuse_loop_cfg_set_max_threads(lc, (unsigned)max_workers);
	fuse_loop_cfg_set_idle_threads(lc, (unsigned)idle_workers);
	int rc = fuse_loop_mt(f, lc);
	fuse_loop_cfg_destroy(lc);
	/* rc: 0 unmounted from outside, a signal number after SIGTERM & co. */
	if (rc < 0) {
		vd_log(VD_LOG_ERROR, "event=loop-failed err=%d", -rc);
		helper_ready("error: the FUSE session failed (error %d, see the log)", -rc);
	}
	vd_log(VD_LOG_INFO, "event=stopping reason=%s",
	       rc == 0 ? "unmounted" : rc > 0 ? "signal" : "error");
	return rc < 0 ? 1 : 0;
}

int helper_serve(const char *argv0, const struct fuse_operations *fs_ops, void *fs,
		 const char *mountpoint, const char *real_mp, const char *opts,
		 int max_workers, int idle_workers)
{
	static struct fuse_operations ops;
	char *fargv[] = { (char *)argv0, "-o", (char *)opts, NULL };
	struct fuse_args fargs = FUSE_ARGS_INIT(3, fargv);
	int exit_code = 1;
	inner = fs_ops;
	served_on = mountpoint;
	ops = *fs_ops;
	ops.init = init_and_ready;
	ops.getattr = getattr_and_tune;
	lease_guard_wrap(&ops);
	struct fuse *f = fuse_new(&fargs, &ops, sizeof(ops), fs);
	if (!f) {
		helper_ready("error: fuse_new failed (see the log)");
		goto out;
	}
	if (fuse_mount(f, mountpoint) != 0) {
		vd_log(VD_LOG_ERROR, "event=start-failed err=\"cannot mount FUSE on %s\"", mountpoint);
		helper_ready("error: cannot mount FUSE on %s (is /dev/fuse there? see the log)",
			     mountpoint);
		goto out_new;
	}
	struct fuse_session *se = fuse_get_session(f);
	if (fuse_set_signal_handlers(se) != 0) {
		helper_ready("error: cannot set signal handlers");
	} else {
		find_bdi(real_mp, bdi_dev, sizeof(bdi_dev));
		exit_code = serve_loop(f, max_workers, idle_workers);
		fuse_remove_signal_handlers(se);
	}
	fuse_unmount(f);
out_new:
	fuse_destroy(f);
out:
	fuse_opt_free_args(&fargs);
	return exit_code;
}
