/* helper_proc.c — starting, adopting and stopping the detached FUSE
 * helpers (see helper_proc.h). posix_spawn with an argv array, a pipe for
 * the ready line, another for secrets; /proc for finding a helper again. */
#include "helper_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../volumed/mount.h"

/* After an unmount, how long a helper gets to exit by itself. */
#define HELPER_EXIT_MS 3000
#define ARGS_MAX 32

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int file_path(char *buf, const char *dir, const char *leaf, struct vd_err *err)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", dir, leaf);
	if (n < 0 || n >= PATH_MAX)
		return vd_err_set(err, -ENAMETOOLONG, "path %s/%s is too long", dir, leaf);
	return 0;
}

int vd_helper_mount_state(const char *mnt, struct vd_err *err)
{
	char fstype[64];
	struct stat st;
	int r = vd_mount_fstype(mnt, fstype, sizeof(fstype), err);
	if (r < 0)
		return r;
	if (!*fstype)
		return 0;
	if (strncmp(fstype, "nfs", 3) == 0)
		return 1;
	if (stat(mnt, &st) < 0 && (errno == ENOTCONN || errno == ECONNABORTED))
		return 2;
	return 1;
}

/* The --mountpoint argument in /proc/<pid>/cmdline into buf ("" when none). */
static void helper_mountpoint(pid_t pid, char *buf, size_t len)
{
	char path[64], cmd[8192];
	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return;   /* gone, or a zombie */
	cmd[n] = '\0';
	for (ssize_t i = 0; i < n;) {
		const char *arg = cmd + i;
		size_t alen = strlen(arg);
		if (strcmp(arg, "--mountpoint") == 0 && i + (ssize_t)alen + 1 < n) {
			snprintf(buf, len, "%s", arg + alen + 1);
			return;
		}
		i += (ssize_t)alen + 1;
	}
}

/* 1 when /proc/<pid>/cmdline is a helper serving mnt. */
static int helper_is(pid_t pid, const char *mnt)
{
	char got[PATH_MAX];
	helper_mountpoint(pid, got, sizeof(got));
	return *got && strcmp(got, mnt) == 0;
}

int vd_helper_foreach(vd_helper_visit_fn fn, void *userdata)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int r = 0;
	while (dir && r == 0 && (de = readdir(dir))) {
		char *end, mnt[PATH_MAX];
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == getpid())
			continue;
		char comm[64];
		snprintf(comm, sizeof(comm), "/proc/%ld/comm", pid);
		int fd = open(comm, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		comm[n] = '\0';
		if (strncmp(comm, "volumed-", 8) != 0)
			continue;
		helper_mountpoint((pid_t)pid, mnt, sizeof(mnt));
		if (*mnt)
			r = fn((pid_t)pid, mnt, userdata);
	}
	if (dir)
		closedir(dir);
	return r;
}

struct find {
	const char *mnt;
	pid_t found;
};

static int find_one(pid_t pid, const char *mnt, void *userdata)
{
	struct find *f = userdata;
	if (strcmp(mnt, f->mnt) != 0)
		return 0;
	f->found = pid;
	return 1;
}

/* The helper serving mnt, found in /proc (when it daemonized and no pid
 * file says which it is); 0 when none. */
static pid_t helper_find(const char *mnt)
{
	struct find f = { mnt, 0 };
	vd_helper_foreach(find_one, &f);
	return f.found;
}

static pid_t pidfile_read(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long pid = strtol(buf, NULL, 10);
	return pid > 1 && pid < INT_MAX ? (pid_t)pid : 0;
}

static void pidfile_write(const char *path, pid_t pid)
{
	char tmp[PATH_MAX + 8], buf[32];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	int ok = fd >= 0 && write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);   /* the helper is found again through /proc */
}

pid_t vd_helper_pid(const char *dir, const char *mnt)
{
	char pidfile[PATH_MAX];
	if (file_path(pidfile, dir, "helper.pid", NULL) < 0)
		return 0;
	pid_t pid = pidfile_read(pidfile);
	return pid && helper_is(pid, mnt) ? pid : helper_find(mnt);
}

/* Waits term_ms for the helper to exit, then SIGTERM, 2 s later SIGKILL
 * (at once when term_ms < 0). */
static void stop_after(const char *dir, const char *mnt, int term_ms)
{
	char pidfile[PATH_MAX];
	if (file_path(pidfile, dir, "helper.pid", NULL) < 0)
		return;
	pid_t pid = vd_helper_pid(dir, mnt);
	int term = term_ms < 0 ? -1 : term_ms / 50, kill_at = term_ms < 0 ? 0 : term + 40;
	for (int step = 0; pid; step++) {
		waitpid(pid, NULL, WNOHANG);   /* our own child: reap it */
		if (!helper_is(pid, mnt))
			break;
		if (step == term)
			kill(pid, SIGTERM);
		else if (step == kill_at)
			kill(pid, SIGKILL);
		else if (step > kill_at + 40)
			break;
		sleep_ms(50);
	}
	unlink(pidfile);
}

void vd_helper_stop(const char *dir, const char *mnt)
{
	stop_after(dir, mnt, HELPER_EXIT_MS);
}

void vd_helper_kill(const char *dir, const char *mnt)
{
	stop_after(dir, mnt, -1);
}

/* Reads the helper's ready line from fd until the deadline. */
static int ready_read(int fd, double deadline, char *line, size_t len)
{
	size_t n = 0;
	line[0] = '\0';
	while (n < len - 1) {
		double left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int k = poll(&p, 1, (int)left + 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			continue;
		ssize_t got = read(fd, line + n, len - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;   /* EOF: the helper exited without a word */
		n += (size_t)got;
		line[n] = '\0';
		if (memchr(line, '\n', n))
			break;
	}
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	return nl ? 0 : -EPIPE;
}

/* The last line of the helper's log, for error messages. */
static void log_tail(const char *path, char *buf, size_t len)
{
	char text[1024];
	buf[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > (off_t)sizeof(text) - 1 ? size - (off_t)sizeof(text) + 1 : 0;
	ssize_t n = pread(fd, text, sizeof(text) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	text[n] = '\0';
	char *last = strrchr(text, '\n');
	snprintf(buf, len, "%s", last ? last + 1 : text);
}

/* argv: program, run->args, the common options. */
static int build_argv(const struct vd_helper_run *run, const char *log, char *timeout,
		      char **argv)
{
	size_t n = 0;
	argv[n++] = (char *)run->program;
	for (size_t i = 0; run->args && run->args[i]; i++) {
		if (n >= ARGS_MAX - 15)   /* room for the common options and NULL */
			return -E2BIG;
		argv[n++] = run->args[i];
	}
	char *const common[] = { "--mountpoint", (char *)run->mnt, "--timeout-ms", timeout,
				 "--ready-fd", "3", "--log", (char *)log };
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		argv[n++] = common[i];
	if (run->secret) {
		argv[n++] = "--secret-fd";
		argv[n++] = "4";
	}
	if (run->lease_file) {
		argv[n++] = "--lease-file";
		argv[n++] = (char *)run->lease_file;
	}
	argv[n] = NULL;
	return 0;
}

/* Spawns the helper in its own session: stdin /dev/null, stdout and stderr
 * to the log, the ready pipe on fd 3 and the secret pipe on fd 4. */
static int spawn(const struct vd_helper_run *run, char **argv, const char *log, int ready_w,
		 int secret_r, pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
					POSIX_SPAWN_SETSID);
	posix_spawn_file_actions_init(&fa);
	int e = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (e == 0)
		e = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log,
						     O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	if (e == 0)   /* glibc clears close-on-exec even when the fd is 3 already */
		e = posix_spawn_file_actions_adddup2(&fa, ready_w, 3);
	if (e == 0 && secret_r >= 0)
		e = posix_spawn_file_actions_adddup2(&fa, secret_r, 4);
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, secret_r >= 0 ? 5 : 4);
	if (e == 0)
		e = posix_spawn(ret_pid, run->program, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -e;
}

/* The secret goes through a pipe (never argv or the environment). It is
 * small, so the write completes before the helper reads. */
static int secret_pipe(const char *secret, int *ret_r, struct vd_err *err)
{
	int p[2];
	*ret_r = -1;
	if (!secret)
		return 0;
	size_t len = strlen(secret);
	if (len >= PIPE_BUF)
		return vd_err_set(err, -E2BIG, "helper secret longer than %d bytes", PIPE_BUF - 1);
	if (pipe2(p, O_CLOEXEC) < 0)
		return vd_err_set(err, -errno, "pipe: %s", strerror(errno));
	ssize_t n = write(p[1], secret, len);
	close(p[1]);
	if (n != (ssize_t)len) {
		close(p[0]);
		return vd_err_set(err, -EIO, "pipe: short write");
	}
	*ret_r = p[0];
	return 0;
}

/* After "ok": the helper's pid and a live mount, or an error. */
static int adopt(const struct vd_helper_run *run, const char *line, pid_t pid, int exited,
		 const char *pidfile, struct vd_err *err)
{
	long announced = line[2] ? strtol(line + 3, NULL, 10) : 0;
	pid_t helper = announced > 1 ? (pid_t)announced : exited ? helper_find(run->mnt) : pid;
	if (vd_mount_is_mounted(run->mnt, err) != 1)
		return vd_err_set(err, -EIO, "%s said ok but nothing is mounted on %s",
				  run->program, run->mnt);
	if (helper > 0)
		pidfile_write(pidfile, helper);   /* else found again by /proc */
	return 0;
}

static int failure(const struct vd_helper_run *run, int r, const char *line, const char *log,
		   struct vd_err *err)
{
	char tail[256];
	const char *name = strrchr(run->program, '/') ? strrchr(run->program, '/') + 1 : run->program;
	log_tail(log, tail, sizeof(tail));
	if (r == 0 && strncmp(line, "error:", 6) == 0)
		return vd_err_set(err, strstr(line, "reserved by") ? -EBUSY : -EIO, "%s: %s: %s",
				  run->what, name, line + 6 + (line[6] == ' '));
	if (r == -ETIMEDOUT)
		return vd_err_set(err, -ETIMEDOUT, "%s: %s did not get ready within %d ms%s%s",
				  run->what, name, run->timeout_ms + 5000, *tail ? ": " : "", tail);
	return vd_err_set(err, r < 0 ? -EIO : -EPROTO, "%s: %s %s%s%s", run->what, name,
			  r < 0 ? "exited without saying ready" : "said",
			  r < 0 ? (*tail ? ": " : "") : " ", r < 0 ? tail : line);
}

int vd_helper_start(const struct vd_helper_run *run, struct vd_err *err)
{
	char log[PATH_MAX], pidfile[PATH_MAX], timeout[16], line[512];
	char *argv[ARGS_MAX];
	int p[2], secret_r;
	pid_t pid;
	int r = file_path(log, run->dir, "helper.log", err);
	if (r == 0)
		r = file_path(pidfile, run->dir, "helper.pid", err);
	if (r < 0)
		return r;
	if (access(run->program, X_OK) < 0)
		return vd_err_set(err, -ENOENT, "%s: the helper %s is not there (%s)", run->what,
				  run->program, strerror(errno));
	snprintf(timeout, sizeof(timeout), "%d", run->timeout_ms);
	if (build_argv(run, log, timeout, argv) < 0)
		return vd_err_set(err, -E2BIG, "%s: too many helper arguments", run->what);
	r = secret_pipe(run->secret, &secret_r, err);
	if (r < 0)
		return r;
	if (pipe2(p, O_CLOEXEC) < 0) {
		r = vd_err_set(err, -errno, "pipe: %s", strerror(errno));
		if (secret_r >= 0)
			close(secret_r);
		return r;
	}
	r = spawn(run, argv, log, p[1], secret_r, &pid);
	close(p[1]);
	if (secret_r >= 0)
		close(secret_r);
	if (r < 0) {
		close(p[0]);
		return vd_err_set(err, r, "start %s: %s", run->program, strerror(-r));
	}

	/* The helper bounds its own connection by timeout_ms; allow for start-up. */
	r = ready_read(p[0], now_ms() + run->timeout_ms + 5000, line, sizeof(line));
	close(p[0]);
	int exited = 0;
	for (int i = 0; i < 6 && !exited; i++) {   /* a daemonizing parent exits now */
		int status;
		exited = waitpid(pid, &status, WNOHANG) == pid;
		if (!exited && r < 0)
			break;
		if (!exited)
			sleep_ms(50);
	}
	if (r == 0 && strncmp(line, "ok", 2) == 0 && (line[2] == '\0' || line[2] == ' ')) {
		r = adopt(run, line, pid, exited, pidfile, err);
		if (r == 0)
			return 0;
	} else {
		r = failure(run, r, line, log, err);
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	vd_helper_stop(run->dir, run->mnt);
	umount2(run->mnt, MNT_DETACH);
	return r;
}

char *vd_helper_path_for(const char *exe, const char *name)
{
	char *dir = strdup(exe), *beside = NULL, *libexec = NULL;
	if (!dir)
		return NULL;
	const char *d = dirname(dir);
	if (asprintf(&beside, "%s/%s", d, name) < 0)
		beside = NULL;
	else if (access(beside, X_OK) < 0 &&
		 asprintf(&libexec, "%s/../libexec/volumed/%s", d, name) >= 0 &&
		 access(libexec, X_OK) == 0) {
		free(beside);
		beside = libexec;
		libexec = NULL;
	}
	free(libexec);
	free(dir);
	return beside;
}

char *vd_helper_default_path(const char *name)
{
	char exe[PATH_MAX], *out = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return asprintf(&out, "/usr/libexec/volumed/%s", name) < 0 ? NULL : out;
	exe[n] = '\0';
	return vd_helper_path_for(exe, name);
}
