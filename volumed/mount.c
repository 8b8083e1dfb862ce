/* mount.c — mounts, loop devices, mkfs and /proc/self/mountinfo.
 *
 * The mountinfo parser is pure (bytes in, callbacks out). Everything else is
 * a thin wrapper over mount(2), umount2(2), the loop-control ioctls and
 * posix_spawn (an argv array, never a shell). No shared state, no locks:
 * every function is safe to call from any thread. Children are spawned with
 * default signal dispositions, an empty signal mask and only fds 0-2 open. */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MOUNTINFO_PATH "/proc/self/mountinfo"
#define MOUNTINFO_MAX (64u << 20)   /* refuse a mount table larger than this */
#define LOOP_MAJOR 7
#define LOOP_ATTEMPTS 16            /* free loop devices tried before giving up */
#define RUN_OUTPUT_MAX 4096         /* tail of a child's output kept for errors */
#define RUN_HEAD_CHARS 120          /* of its first line, quoted in an error */
#define RUN_TAIL_LINES 3            /* last lines quoted in an error... */
#define RUN_TAIL_CHARS 320          /* ...at most, so the message keeps their end */
#define MKFS_TIMEOUT_SEC 120
#define PROBE_BYTES 65536           /* read to find a file system signature */
#define GROW_TIMEOUT_SEC 600

/* ---- /proc/self/mountinfo ---------------------------------------------- */

/* Fields of one line, before and after the " - " separator. */
enum { MI_ID, MI_PARENT, MI_DEV, MI_ROOT, MI_MOUNT_POINT, MI_OPTS, MI_FIXED };
enum { MI_FSTYPE, MI_SOURCE, MI_SUPER_OPTS, MI_TAIL };

/* Copies src[0..len) into dst unescaping the kernel's \ooo octal escapes
 * (space, tab, newline, backslash); other backslashes are kept as they are.
 * dst has room for len + 1 bytes. \000 is refused: no path holds a NUL. */
static int mi_unescape(const char *src, size_t len, char *dst)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\\' && len - i >= 4 && src[i + 1] >= '0' && src[i + 1] <= '3' &&
		    src[i + 2] >= '0' && src[i + 2] <= '7' && src[i + 3] >= '0' && src[i + 3] <= '7') {
			int c = (src[i + 1] - '0') << 6 | (src[i + 2] - '0') << 3 | (src[i + 3] - '0');
			if (c == 0)
				return -EINVAL;
			dst[o++] = (char)c;
			i += 3;
		} else {
			dst[o++] = src[i];
		}
	}
	dst[o] = '\0';
	return 0;
}

/* Parses decimal digits s[0..len) into an unsigned int without overflow. */
static int mi_parse_uint(const char *s, size_t len, unsigned *ret)
{
	unsigned long v = 0;
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > UINT_MAX)
			return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

static int mi_parse_dev(const char *s, size_t len, unsigned *ret_major, unsigned *ret_minor)
{
	const char *colon = memchr(s, ':', len);
	unsigned major, minor;
	if (!colon || mi_parse_uint(s, (size_t)(colon - s), &major) < 0 ||
	    mi_parse_uint(colon + 1, len - (size_t)(colon - s) - 1, &minor) < 0)
		return -EINVAL;
	*ret_major = major;
	*ret_minor = minor;
	return 0;
}

struct mi_token {
	const char *s;
	size_t len;
};

struct mi_cursor {
	const char *s;
	size_t len, pos;
	bool done;
};

/* Cuts the next space-separated token off the line. Tokens may be empty:
 * the kernel prints an empty source as nothing between two spaces. */
static bool mi_next_token(struct mi_cursor *c, struct mi_token *tok)
{
	if (c->done)
		return false;
	const char *sp = memchr(c->s + c->pos, ' ', c->len - c->pos);
	size_t stop = sp ? (size_t)(sp - c->s) : c->len;
	tok->s = c->s + c->pos;
	tok->len = stop - c->pos;
	c->pos = stop + 1;
	c->done = !sp;
	return true;
}

/* Parses one line (no newline, no NUL) into entry, unescaping into buf
 * (room for the line's length plus three terminators). NULL on success,
 * else what was wrong. */
static const char *mi_parse_line(const char *line, size_t len, char *buf,
				 struct vd_mountinfo_entry *entry)
{
	struct mi_cursor c = { line, len, 0, false };
	struct mi_token fixed[MI_FIXED], tail[MI_TAIL], tok;
	size_t n;

	for (n = 0; n < MI_FIXED && mi_next_token(&c, &fixed[n]); n++)
		;
	if (n < MI_FIXED)
		return "fewer than 6 fields before the '-' separator";
	do {   /* optional fields ("shared:1", ...) up to the separator */
		if (!mi_next_token(&c, &tok))
			return "no '-' separator";
	} while (tok.len != 1 || tok.s[0] != '-');
	for (n = 0; n < MI_TAIL && mi_next_token(&c, &tail[n]); n++)
		;
	if (n < MI_TAIL || !c.done)
		return "not exactly 3 fields after the '-' separator";

	unsigned id;
	if (mi_parse_uint(fixed[MI_ID].s, fixed[MI_ID].len, &id) < 0 ||
	    mi_parse_uint(fixed[MI_PARENT].s, fixed[MI_PARENT].len, &id) < 0)
		return "mount id or parent id is not a decimal number";
	if (mi_parse_dev(fixed[MI_DEV].s, fixed[MI_DEV].len, &entry->major, &entry->minor) < 0)
		return "device is not MAJOR:MINOR";
	if (fixed[MI_MOUNT_POINT].len == 0 || fixed[MI_MOUNT_POINT].s[0] != '/')
		return "mount point is not an absolute path";
	if (tail[MI_FSTYPE].len == 0)
		return "empty filesystem type";

	const struct mi_token *want[] = { &fixed[MI_MOUNT_POINT], &tail[MI_FSTYPE], &tail[MI_SOURCE] };
	const char **out[] = { &entry->mount_point, &entry->fstype, &entry->source };
	for (size_t i = 0; i < 3; i++) {
		if (mi_unescape(want[i]->s, want[i]->len, buf) < 0)
			return "escape \\000 (a NUL byte)";
		*out[i] = buf;
		buf += want[i]->len + 1;
	}
	return NULL;
}

int vd_mountinfo_parse(const char *text, size_t len, vd_mountinfo_fn fn, void *userdata,
		       struct vd_err *err)
{
	if (len == 0)
		return 0;
	/* One scratch buffer for every line: no line is longer than the text. */
	char *buf = malloc(len + 3);
	if (!buf)
		return vd_err_set(err, -ENOMEM, "mountinfo: out of memory");

	int r = 0;
	size_t lineno = 0;
	for (const char *p = text, *end = text + len; p < end && r == 0;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		const char *line = p;
		p = nl ? nl + 1 : end;
		lineno++;
		if (n == 0)
			continue;
		struct vd_mountinfo_entry entry;
		const char *why = memchr(line, '\0', n) ? "a NUL byte"
							 : mi_parse_line(line, n, buf, &entry);
		if (why)
			r = vd_err_set(err, -EINVAL, "mountinfo line %zu is malformed: %s; expected "
				       "'ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - "
				       "FSTYPE SOURCE SUPEROPTIONS'", lineno, why);
		else
			r = fn(&entry, userdata);
	}
	free(buf);
	return r;
}

/* Reads a whole (proc) file: its size is unknown until EOF. */
static int read_all(const char *path, size_t max, char **ret_buf, size_t *ret_len,
		    struct vd_err *err)
{
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap);
	int r, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = vd_err_set(err, -errno, "open %s: %s", path, strerror(errno));
		goto fail;
	}
	for (;;) {
		if (buf && len == cap) {
			char *bigger = cap < max ? realloc(buf, cap * 2) : NULL;
			if (bigger)
				cap *= 2;
			else
				free(buf);
			buf = bigger;
		}
		if (!buf) {
			r = vd_err_set(err, -ENOMEM, "read %s: larger than %zu bytes or out of memory",
				       path, max);
			goto fail;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = vd_err_set(err, -errno, "read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}

struct mi_match {
	const char *path;
	size_t len;   /* path length without trailing slashes */
};

static int mi_match_fn(const struct vd_mountinfo_entry *entry, void *userdata)
{
	const struct mi_match *m = userdata;
	return strlen(entry->mount_point) == m->len &&
	       memcmp(entry->mount_point, m->path, m->len) == 0;
}

int vd_mount_is_mounted(const char *path, struct vd_err *err)
{
	struct mi_match m = { path, strlen(path) };
	while (m.len > 1 && path[m.len - 1] == '/')
		m.len--;

	char *text = NULL;
	size_t len = 0;
	int r = read_all(MOUNTINFO_PATH, MOUNTINFO_MAX, &text, &len, err);
	if (r < 0)
		return r;
	r = vd_mountinfo_parse(text, len, mi_match_fn, &m, err);
	free(text);
	return r;
}

struct top_find {
	const char *mnt;
	char fstype[64];
	char source[64];
};

static int top_match(const struct vd_mountinfo_entry *e, void *userdata)
{
	struct top_find *f = userdata;
	if (strcmp(e->mount_point, f->mnt) == 0) {   /* the last one wins */
		snprintf(f->fstype, sizeof(f->fstype), "%s", e->fstype);
		snprintf(f->source, sizeof(f->source), "%s", e->source);
	}
	return 0;
}

/* The file system mounted on top of path: its type and source, "" for none. */
static int top_mount(const char *path, struct top_find *f, struct vd_err *err)
{
	char *text = NULL;
	size_t n = 0;
	*f = (struct top_find){ .mnt = path };
	int r = read_all(MOUNTINFO_PATH, MOUNTINFO_MAX, &text, &n, err);
	if (r < 0)
		return r;
	r = vd_mountinfo_parse(text, n, top_match, f, err);
	free(text);
	return r;
}

int vd_mount_fstype(const char *path, char *buf, size_t len, struct vd_err *err)
{
	struct top_find f;
	int r = top_mount(path, &f, err);
	if (r == 0)
		snprintf(buf, len, "%s", f.fstype);
	return r;
}

/* 1 when path's top mount is a cover, 0 when not. */
static int covered(const char *path, struct vd_err *err)
{
	struct top_find f;
	int r = top_mount(path, &f, err);
	if (r < 0)
		return r;
	return strcmp(f.fstype, "tmpfs") == 0 && strcmp(f.source, VD_MOUNT_COVER_SOURCE) == 0;
}

int vd_mount_cover(const char *path, struct vd_err *err)
{
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;   /* nothing to write into by that name */
	int r = covered(path, err);
	if (r != 0)
		return r < 0 ? r : 0;
	if (mount(VD_MOUNT_COVER_SOURCE, path, "tmpfs",
		  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,nr_inodes=1,mode=0555") < 0)
		return vd_err_set(err, -errno, "cover %s: %s", path, strerror(errno));
	return 0;
}

int vd_mount_uncover(const char *path, struct vd_err *err)
{
	int r;
	for (int i = 0; i < 16 && (r = covered(path, err)) == 1; i++)
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return vd_err_set(err, -errno, "uncover %s: %s", path, strerror(errno));
	return r < 0 ? r : 0;
}

/* ---- files and programs -------------------------------------------------- */

int vd_mount_make_sparse(const char *path, uint64_t size, struct vd_err *err)
{
	if (size > (uint64_t)INT64_MAX)
		return vd_err_set(err, -EFBIG, "sparse file %s: size %llu is larger than %lld",
				  path, (unsigned long long)size, (long long)INT64_MAX);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vd_err_set(err, -errno, "create %s: %s%s", path, strerror(errno),
				  errno == EEXIST ? " (it must not exist yet)" : "");
	int r = 0;
	if (ftruncate(fd, (off_t)size) < 0)
		r = vd_err_set(err, -errno, "size %s to %llu bytes: %s", path,
			       (unsigned long long)size, strerror(errno));
	else if (fsync(fd) < 0)
		r = vd_err_set(err, -errno, "fsync %s: %s", path, strerror(errno));
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

/* A child's output, bounded: its first line (often the reason, when a
 * usage text follows) and its last RUN_OUTPUT_MAX bytes. */
struct run_output {
	char head[RUN_HEAD_CHARS + 1];
	size_t head_len;
	bool head_done;
	uint64_t head_end;              /* offset in the output where it ended */
	uint64_t total;                 /* bytes seen */
	char buf[RUN_OUTPUT_MAX + 1];   /* + the terminator output_tail adds */
	size_t len;
	char *all;                      /* the whole output, when captured */
	size_t all_len, all_cap, all_max;
	bool all_overflow;
};

/* Keeps the whole output, up to all_max bytes (more: all_overflow). */
static void output_capture(struct run_output *out, const char *data, size_t n)
{
	if (out->all_max == 0 || out->all_overflow)
		return;
	if (out->all_len + n > out->all_max) {
		out->all_overflow = true;
		return;
	}
	if (out->all_len + n + 1 > out->all_cap) {
		size_t cap = out->all_cap ? out->all_cap : 4096;
		while (cap < out->all_len + n + 1)
			cap *= 2;
		char *bigger = realloc(out->all, cap);
		if (!bigger) {
			out->all_overflow = true;
			return;
		}
		out->all = bigger;
		out->all_cap = cap;
	}
	memcpy(out->all + out->all_len, data, n);
	out->all_len += n;
	out->all[out->all_len] = '\0';
}

static void output_head(struct run_output *out, const char *data, size_t n)
{
	for (size_t i = 0; i < n && !out->head_done; i++) {
		if (data[i] == '\n' && out->head_len == 0)
			continue;   /* blank leading lines */
		out->head_done = data[i] == '\n' || out->head_len == RUN_HEAD_CHARS;
		if (out->head_done)
			out->head_end = out->total + i;
		else
			out->head[out->head_len++] = data[i] == '\t' || data[i] == '\r' ? ' ' : data[i];
	}
	out->head[out->head_len] = '\0';
}

static void output_append(struct run_output *out, const char *data, size_t n)
{
	output_capture(out, data, n);
	output_head(out, data, n);
	out->total += n;
	if (n >= RUN_OUTPUT_MAX) {
		data += n - RUN_OUTPUT_MAX;
		n = RUN_OUTPUT_MAX;
	}
	if (out->len + n > RUN_OUTPUT_MAX) {
		size_t drop = out->len + n - RUN_OUTPUT_MAX;
		memmove(out->buf, out->buf + drop, out->len - drop);
		out->len -= drop;
	}
	memcpy(out->buf + out->len, data, n);
	out->len += n;
}

/* The output's end (its last lines, at most RUN_TAIL_CHARS) on one line,
 * in place; *ret_offset is where it starts in the whole output. */
static const char *output_tail(struct run_output *out, uint64_t *ret_offset)
{
	size_t end = out->len;
	while (end > 0 && (out->buf[end - 1] == '\n' || out->buf[end - 1] == ' ' ||
			   out->buf[end - 1] == '\r' || out->buf[end - 1] == '\t'))
		end--;
	size_t start = end;
	for (int lines = 0; start > 0; start--) {
		if (out->buf[start - 1] == '\n' && ++lines == RUN_TAIL_LINES)
			break;
	}
	if (end - start > RUN_TAIL_CHARS)
		start = end - RUN_TAIL_CHARS;
	out->buf[end] = '\0';
	for (size_t i = start; i < end; i++) {
		if (out->buf[i] == '\n' || out->buf[i] == '\r' || out->buf[i] == '\t')
			out->buf[i] = ' ';
	}
	*ret_offset = out->total - (out->len - start);
	return out->buf + start;
}

/* "first line ... last lines", or just the last lines when they include
 * the first; "(no output)" when there was none. */
static void output_summary(struct run_output *out, char *dst, size_t len)
{
	uint64_t offset;
	const char *tail = output_tail(out, &offset);
	if (!*tail)
		snprintf(dst, len, "(no output)");
	else if (out->head_len > 0 && offset > out->head_end)
		snprintf(dst, len, "%s ... %s", out->head, tail);
	else
		snprintf(dst, len, "%s", tail);
}

/* Drains whatever the pipe holds now; 1 at EOF, 0 when it would block. */
static int output_drain(int fd, struct run_output *out)
{
	char chunk[1024];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n > 0)
			output_append(out, chunk, (size_t)n);
		else if (n == 0)
			return 1;
		else if (errno != EINTR)
			return errno == EAGAIN ? 0 : 1;
	}
}

/* Spawns argv with stdin /dev/null and stdout+stderr into out_fd; returns
 * the child's pid or a negative errno. */
static pid_t run_spawn(char *const argv[], int out_fd, struct vd_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	pid_t pid;

	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	int r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	if (r == 0)
		r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return vd_err_set(err, -r, "cannot run %s: %s%s", argv[0], strerror(r),
				  r == ENOENT ? " (not found on PATH; is it installed?)" : "");
	return pid;
}

/* Collects the child's output until it exits, and reaps it. Past the
 * deadline, or when poll fails, the child is killed first. 0 with its wait
 * status, or -ETIMEDOUT, or another negative errno. */
static int run_wait(pid_t pid, int out_fd, int timeout_sec, struct run_output *out,
		    int *ret_status)
{
	int pidfd = pidfd_open(pid, 0);
	double deadline = timeout_sec > 0 ? vd_now_ms() + timeout_sec * 1000.0 : -1;
	struct pollfd pfd[2] = { { .fd = out_fd, .events = POLLIN },
				 { .fd = pidfd, .events = POLLIN } };
	int r = 0;

	/* Without a pidfd (out of fds), the pipe's EOF stands for the exit. */
	while (r == 0 && (pfd[0].fd >= 0 || pfd[1].fd >= 0)) {
		int wait_ms = -1;
		if (deadline >= 0) {
			double left = deadline - vd_now_ms();
			if (left <= 0) {
				r = -ETIMEDOUT;
				break;
			}
			wait_ms = left > INT_MAX ? INT_MAX : (int)left + 1;
		}
		int n = poll(pfd, 2, wait_ms);
		if (n < 0 && errno != EINTR)
			r = -errno;
		if (n <= 0)
			continue;
		if (pfd[0].revents && output_drain(out_fd, out) == 1)
			pfd[0].fd = -1;
		if (pfd[1].revents)
			break;   /* exited; a grandchild may hold the pipe: don't wait on it */
	}
	if (r < 0)
		kill(pid, SIGKILL);   /* not reaped yet, so pid still names our child */
	output_drain(out_fd, out);
	if (pidfd >= 0)
		close(pidfd);

	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;   /* ECHILD: someone ignores SIGCHLD or reaped it */
	}
	*ret_status = status;
	return r;
}

/* vd_run, where an exit status up to ok_max also means success (fsck's 1:
 * "errors corrected"). timeout_sec <= 0 waits without a limit. */
static int run_status(char *const argv[], int timeout_sec, int ok_max, struct run_output *out,
		      struct vd_err *err)
{
	if (!argv || !argv[0])
		return vd_err_set(err, -EINVAL, "run: empty argv; expected a program and its arguments");

	/* Only our end is non-blocking: the child writes as to any pipe. */
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return vd_err_set(err, -errno, "run %s: pipe: %s", argv[0], strerror(errno));
	if (fcntl(pipefd[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return vd_err_set(err, -e, "run %s: pipe: %s", argv[0], strerror(e));
	}

	pid_t pid = run_spawn(argv, pipefd[1], err);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return pid;
	}

	char summary[RUN_HEAD_CHARS + RUN_TAIL_CHARS + 8];
	int status = 0;
	int r = run_wait(pid, pipefd[0], timeout_sec, out, &status);
	close(pipefd[0]);
	output_summary(out, summary, sizeof(summary));

	if (r == -ETIMEDOUT)
		r = vd_err_set(err, r, "%s did not finish within %d s and was killed; output: %s",
			       argv[0], timeout_sec, summary);
	else if (r < 0)
		r = vd_err_set(err, r, "%s: cannot wait for it: %s", argv[0], strerror(-r));
	else if (WIFSIGNALED(status))
		r = vd_err_set(err, -EIO, "%s was killed by signal %d; output: %s", argv[0],
			       WTERMSIG(status), summary);
	else if (WIFEXITED(status) && WEXITSTATUS(status) > ok_max)
		r = vd_err_set(err, -EIO, "%s failed with exit status %d: %s", argv[0],
			       WEXITSTATUS(status), summary);
	return r;
}

/* run_status with a fresh output record (large: kept off small stacks). */
static int run_with(char *const argv[], int timeout_sec, int ok_max, size_t capture_max,
		    char **ret_out, size_t *ret_len, struct vd_err *err)
{
	struct run_output *out = calloc(1, sizeof(*out));
	if (!out)
		return vd_err_set(err, -ENOMEM, "out of memory");
	out->all_max = capture_max;
	int r = run_status(argv, timeout_sec, ok_max, out, err);
	if (r == 0 && capture_max && out->all_overflow)
		r = vd_err_set(err, -EFBIG, "%s: output larger than %zu bytes", argv[0], capture_max);
	if (r == 0 && ret_out) {
		*ret_out = out->all ? out->all : strdup("");
		*ret_len = out->all_len;
		out->all = NULL;
		if (!*ret_out)
			r = vd_err_set(err, -ENOMEM, "out of memory");
	}
	free(out->all);
	free(out);
	return r;
}

int vd_run(char *const argv[], int timeout_sec, struct vd_err *err)
{
	return run_with(argv, timeout_sec, 0, 0, NULL, NULL, err);
}

int vd_run_capture(char *const argv[], int timeout_sec, size_t max_bytes, char **ret_out,
		   size_t *ret_len, struct vd_err *err)
{
	return run_with(argv, timeout_sec, 0, max_bytes, ret_out, ret_len, err);
}

int vd_mount_mkfs(const char *path, const char *fstype, struct vd_err *err)
{
	return vd_mount_mkfs_ex(path, fstype, 1, err);
}

int vd_mount_mkfs_ex(const char *path, const char *fstype, int prezeroed, struct vd_err *err)
{
	/* A fresh sparse file is all zeroes: nothing to discard, and no inode
	 * table for the kernel to zero later (which would also fill the
	 * sparse file). Other storage gets its tables zeroed lazily. */
	char *const ext4[] = { "mkfs.ext4", "-q", "-F", "-E",
			       prezeroed ? "nodiscard,assume_storage_prezeroed=1"
			       : "nodiscard,lazy_itable_init=1", (char *)path, NULL };
	/* Docker copies an image's files only into an empty volume: a new
	 * volume must not show lost+found (fsck makes it again if needed). */
	char *const ext4_empty[] = { "debugfs", "-w", "-R", "rmdir lost+found", (char *)path, NULL };
	char *const xfs[] = { "mkfs.xfs", "-q", "-f", "-K", (char *)path, NULL };

	if (!fstype || (strcmp(fstype, "ext4") != 0 && strcmp(fstype, "xfs") != 0))
		return vd_err_set(err, -EINVAL, "filesystem type '%s' is not supported; "
				  "supported: ext4, xfs", fstype ? fstype : "(null)");
	if (strcmp(fstype, "xfs") == 0)
		return vd_run(xfs, MKFS_TIMEOUT_SEC, err);
	int r = vd_run(ext4, MKFS_TIMEOUT_SEC, err);
	return r < 0 ? r : vd_run(ext4_empty, MKFS_TIMEOUT_SEC, err);
}

/* ---- loop devices and mounts --------------------------------------------- */

/* Opens /dev/loopN, creating the node when devtmpfs lacks it. */
static int loop_open(int nr, char *path, size_t pathlen)
{
	snprintf(path, pathlen, "/dev/loop%d", nr);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mknod(path, S_IFBLK | 0660, makedev(LOOP_MAJOR, (unsigned)nr)) < 0 &&
		    errno != EEXIST)
			return -errno;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* Binds image_fd to a free loop device with flags (LO_FLAGS_*); returns the
 * loop fd and its path. Another process may take the same free device between
 * LOOP_CTL_GET_FREE and LOOP_CONFIGURE (EBUSY): then try the next one. */
static int loop_attach(int image_fd, const char *image, uint32_t flags, char *path,
		       size_t pathlen, struct vd_err *err)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return vd_err_set(err, -errno, "open /dev/loop-control: %s (is the loop module "
				  "loaded?)", strerror(errno));

	struct loop_config cfg = { .fd = (__u32)image_fd };
	cfg.info.lo_flags = flags;
	snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", image);

	int r = -EBUSY;
	for (int attempt = 0; attempt < LOOP_ATTEMPTS && r == -EBUSY; attempt++) {
		int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (nr < 0) {
			r = vd_err_set(err, -errno, "no free loop device: %s", strerror(errno));
			break;
		}
		int fd = loop_open(nr, path, pathlen);
		if (fd < 0) {
			r = fd == -ENOENT || fd == -ENXIO ? -EBUSY   /* removed meanwhile */
				: vd_err_set(err, fd, "open %s: %s", path, strerror(-fd));
			continue;
		}
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
			r = fd;
			break;
		}
		r = -errno;
		close(fd);
		if (r != -EBUSY)
			r = vd_err_set(err, r, "attach %s to %s: %s%s", image, path, strerror(-r),
				       r == -EINVAL || r == -ENOTTY ? " (LOOP_CONFIGURE needs Linux 5.8)" : "");
	}
	if (r == -EBUSY)
		vd_err_set(err, -EBUSY, "attach %s: every free loop device was taken by others "
			   "(%d attempts)", image, LOOP_ATTEMPTS);
	close(ctl);
	return r;
}

/* The loop device already backed by the image, if any: its file system may
 * still be mounted elsewhere (a container's bind mount outlives the host
 * mount someone removed by hand). Mounting that device again shares the
 * one file system; a second device on the same image would corrupt it. */
static int loop_find(int image_fd, char *path, size_t pathlen)
{
	struct stat st;
	DIR *dir = opendir("/sys/block");
	if (fstat(image_fd, &st) < 0 || !dir) {
		if (dir)
			closedir(dir);
		return -ENOENT;
	}
	int found = -ENOENT, nr;
	struct dirent *e;
	while (found < 0 && (e = readdir(dir))) {
		if (sscanf(e->d_name, "loop%d", &nr) != 1)
			continue;
		snprintf(path, pathlen, "/dev/loop%d", nr);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct loop_info64 info;
		if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &info) == 0 &&
		    info.lo_device == st.st_dev && info.lo_inode == st.st_ino)
			found = fd;
		else if (fd >= 0)
			close(fd);
	}
	closedir(dir);
	return found;
}

static int mkdir_target(const char *target, struct vd_err *err)
{
	struct stat st;
	if (mkdir(target, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return vd_err_set(err, -errno, "create mount point %s: %s", target, strerror(errno));
	if (lstat(target, &st) < 0 || !S_ISDIR(st.st_mode))
		return vd_err_set(err, -ENOTDIR, "mount point %s exists and is not a directory",
				  target);
	return 0;
}

/* Reads the first bytes of fd: the file system found ("ext4", "xfs"), ""
 * when they are all zero (a blank device), -EMEDIUMTYPE for other data. */
static int probe_fd(int fd, const char *what, char *fstype, size_t len, struct vd_err *err)
{
	static const unsigned char ext_magic[2] = { 0x53, 0xef };   /* at 1080, little-endian */
	unsigned char *buf = malloc(PROBE_BYTES);
	if (!buf)
		return vd_err_set(err, -ENOMEM, "out of memory");
	ssize_t n = pread(fd, buf, PROBE_BYTES, 0);
	int r = 0;
	if (n < 0)
		r = vd_err_set(err, -errno, "read %s: %s", what, strerror(errno));
	else if (n >= 4 && memcmp(buf, "XFSB", 4) == 0)
		snprintf(fstype, len, "xfs");
	else if (n >= 1082 && memcmp(buf + 1080, ext_magic, 2) == 0)
		snprintf(fstype, len, "ext4");
	else if (n > 0 && (buf[0] || memcmp(buf, buf + 1, (size_t)n - 1) != 0))
		r = vd_err_set(err, -EMEDIUMTYPE, "%s holds data that is neither ext4 nor xfs; "
			       "it is not formatted over (wipe it first)", what);
	else
		fstype[0] = '\0';
	free(buf);
	return r;
}

int vd_mount_probe(const char *path, char *fstype, size_t len, struct vd_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vd_err_set(err, -errno, "open %s: %s", path, strerror(errno));
	int r = probe_fd(fd, path, fstype, len, err);
	close(fd);
	return r;
}

/* Caps the loop device's requests (queue/max_sectors_kb): a backing file
 * served in 1 MiB requests is best fed whole ones, not 1 MiB + 256 KiB.
 * Best effort: the default works, only slower. */
void vd_mount_loop_max_io(const char *dev, unsigned kb)
{
	char path[96], val[16];
	snprintf(path, sizeof(path), "/sys/block/%s/queue/max_sectors_kb", dev + strlen("/dev/"));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(val, sizeof(val), "%u", kb);
	if (fd >= 0 && write(fd, val, (size_t)n) != n)
		vd_log(VD_LOG_DEBUG, "set %s to %u: %s", path, kb, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* With the loop device held open (an autoclear device would go with the
 * last close): formats it when blank, then mounts it. */
static int mount_loop(int loop_fd, const char *dev, const char *image, const char *target,
		      const struct vd_image_mount *m, struct vd_err *err)
{
	char found[16] = "";
	const char *fstype = m->fstype;
	if (m->max_io_kb)
		vd_mount_loop_max_io(dev, m->max_io_kb);
	if (m->format) {
		int r = probe_fd(loop_fd, dev, found, sizeof(found), err);
		if (r == 0 && !*found)
			r = vd_mount_mkfs_ex(dev, m->fstype, m->prezeroed, err);
		if (r < 0)
			return r;
		if (*found)
			fstype = found;   /* the data is what it is */
	}
	/* A clone or snapshot of an xfs image has its source's UUID, which
	 * xfs refuses to mount twice unless told not to check. */
	const char *opts = fstype && strcmp(fstype, "xfs") == 0 ? "nouuid" : NULL;
	if (mount(dev, target, fstype, 0, opts) < 0)
		return vd_err_set(err, -errno, "mount %s (%s, image %s) on %s: %s", dev, fstype,
				  image, target, strerror(errno));
	return 0;
}

int vd_mount_image_ex(const char *image, const char *target, const struct vd_image_mount *m,
		      struct vd_err *err)
{
	int r = vd_mount_is_mounted(target, err);
	if (r != 0)
		return r < 0 ? r : 0;
	r = mkdir_target(target, err);
	if (r < 0)
		return r;

	int image_fd = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (image_fd < 0)
		return vd_err_set(err, -errno, "open image %s: %s", image, strerror(errno));

	char dev[32];
	int loop_fd = loop_find(image_fd, dev, sizeof(dev));
	bool attached_here = loop_fd < 0;
	if (attached_here)
		loop_fd = loop_attach(image_fd, image, LO_FLAGS_AUTOCLEAR |
				      (m->direct_io ? LO_FLAGS_DIRECT_IO : 0), dev, sizeof(dev), err);
	close(image_fd);   /* the loop device holds its own reference */
	if (loop_fd < 0)
		return loop_fd;
	r = mount_loop(loop_fd, dev, image, target, m, err);
	if (r < 0 && attached_here)
		ioctl(loop_fd, LOOP_CLR_FD);
	close(loop_fd);   /* autoclear now frees the device with the last unmount */
	return r;
}

int vd_mount_image(const char *image, const char *target, const char *fstype,
		   struct vd_err *err)
{
	struct vd_image_mount m = { .fstype = fstype };
	return vd_mount_image_ex(image, target, &m, err);
}

int vd_mount_unmount(const char *target, struct vd_err *err)
{
	if (umount2(target, UMOUNT_NOFOLLOW) == 0)
		return 0;
	int e = errno;
	if (e == EBUSY)
		return vd_err_set(err, -EBUSY, "unmount %s: busy (a process uses files in it, or "
				  "something is mounted inside it); stop those first", target);
	if (e == EINVAL || e == ENOENT) {
		int r = vd_mount_is_mounted(target, err);
		if (r <= 0)
			return r;
	}
	return vd_err_set(err, -e, "unmount %s: %s", target, strerror(e));
}

/* Opens image and finds the loop device backing it: the loop fd, -ENOENT
 * when none does (or the image is absent), another negative errno on error. */
static int loop_of_image(const char *image, char *dev, size_t devlen, struct vd_err *err)
{
	int image_fd = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (image_fd < 0)
		return errno == ENOENT ? -ENOENT
			: vd_err_set(err, -errno, "open image %s: %s", image, strerror(errno));
	int fd = loop_find(image_fd, dev, devlen);
	close(image_fd);
	return fd;
}

/* Clears autoclear on a device found already attached, so it stays. */
static int loop_keep(int loop_fd, const char *dev, struct vd_err *err)
{
	struct loop_info64 info;
	if (ioctl(loop_fd, LOOP_GET_STATUS64, &info) < 0)
		return vd_err_set(err, -errno, "status of %s: %s", dev, strerror(errno));
	if (!(info.lo_flags & LO_FLAGS_AUTOCLEAR))
		return 0;
	info.lo_flags &= ~(uint32_t)LO_FLAGS_AUTOCLEAR;
	if (ioctl(loop_fd, LOOP_SET_STATUS64, &info) < 0)
		return vd_err_set(err, -errno, "keep %s attached (clear autoclear): %s", dev,
				  strerror(errno));
	return 0;
}

int vd_mount_loop_attach(const char *image, char *ret_dev, size_t len, struct vd_err *err)
{
	return vd_mount_loop_attach_ex(image, 0, ret_dev, len, err);
}

int vd_mount_loop_attach_ex(const char *image, int direct_io, char *ret_dev, size_t len,
			    struct vd_err *err)
{
	char dev[32];
	int r = 0, loop_fd = loop_of_image(image, dev, sizeof(dev), err);
	if (loop_fd == -ENOENT) {
		int image_fd = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (image_fd < 0)
			return vd_err_set(err, -errno, "open image %s: %s", image, strerror(errno));
		loop_fd = loop_attach(image_fd, image, direct_io ? LO_FLAGS_DIRECT_IO : 0, dev,
				      sizeof(dev), err);
		close(image_fd);
	} else if (loop_fd >= 0) {
		r = loop_keep(loop_fd, dev, err);
	}
	if (loop_fd < 0)
		return loop_fd;
	close(loop_fd);
	if (r == 0 && snprintf(ret_dev, len, "%s", dev) >= (int)len)
		r = vd_err_set(err, -ENAMETOOLONG, "device path %s is longer than %zu bytes", dev,
			       len - 1);
	return r;
}

int vd_mount_loop_find(const char *image, char *ret_dev, size_t len, struct vd_err *err)
{
	char dev[32];
	int loop_fd = loop_of_image(image, dev, sizeof(dev), err);
	if (loop_fd < 0)
		return loop_fd == -ENOENT ? 0 : loop_fd;
	close(loop_fd);
	snprintf(ret_dev, len, "%s", dev);
	return 1;
}

int vd_mount_loop_wait_gone(const char *image, int timeout_ms)
{
	char dev[32];
	for (int waited = 0;; waited += 20) {
		if (vd_mount_loop_find(image, dev, sizeof(dev), NULL) != 1)
			return 0;
		if (waited >= timeout_ms)
			return -EBUSY;
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

int vd_mount_loop_detach(const char *image, struct vd_err *err)
{
	char dev[32];
	int loop_fd = loop_of_image(image, dev, sizeof(dev), err);
	if (loop_fd < 0)
		return loop_fd == -ENOENT ? 0 : loop_fd;
	/* A device still in use (mounted) is released with its last user. */
	int r = 0;
	if (ioctl(loop_fd, LOOP_CLR_FD) < 0 && errno != ENXIO)
		r = vd_err_set(err, -errno, "detach %s from %s: %s", dev, image, strerror(errno));
	close(loop_fd);
	return r;
}

static int grow_fstype_check(const char *fstype, struct vd_err *err)
{
	if (fstype && (strcmp(fstype, "ext4") == 0 || strcmp(fstype, "xfs") == 0))
		return 0;
	return vd_err_set(err, -EINVAL, "cannot grow filesystem type '%s'; supported: ext4, xfs",
			  fstype ? fstype : "(null)");
}

/* 1 when this process has capability cap in its effective set. */
static bool cap_effective(unsigned cap)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return true;   /* unknown: let the tool answer */
	return data[cap / 32].effective & (1u << (cap % 32));
}

/* Runs the file system's own grow tool on the mounted, larger device. The
 * kernel grows a mounted ext4 only for CAP_SYS_RESOURCE. */
static int grow_fs(const char *dev, const char *target, const char *fstype,
		   struct vd_err *err)
{
	char *const ext4[] = { "resize2fs", (char *)dev, NULL };
	char *const xfs[] = { "xfs_growfs", "-d", (char *)target, NULL };
	int r = grow_fstype_check(fstype, err);
	if (r < 0)
		return r;
	if (strcmp(fstype, "xfs") == 0)
		return vd_run(xfs, GROW_TIMEOUT_SEC, err);
	if (!cap_effective(CAP_SYS_RESOURCE))
		return vd_err_set(err, -EPERM, "growing the mounted ext4 on %s needs "
				  "CAP_SYS_RESOURCE, which this process lacks; it grows when "
				  "mounted next", target);
	return vd_run(ext4, GROW_TIMEOUT_SEC, err);
}

int vd_mount_grow(const char *image, const char *target, const char *fstype,
		  struct vd_err *err)
{
	char dev[32];
	int loop_fd = loop_of_image(image, dev, sizeof(dev), err);
	if (loop_fd == -ENOENT && !target)
		return 0;
	if (loop_fd == -ENOENT)
		return vd_err_set(err, -ENODEV, "grow %s: no loop device backs image %s; stage "
				  "the volume first", target, image);
	if (loop_fd < 0)
		return loop_fd;
	int r = 0;
	if (ioctl(loop_fd, LOOP_SET_CAPACITY, 0) < 0)
		r = vd_err_set(err, -errno, "%s: update its size to image %s: %s", dev, image,
			       strerror(errno));
	close(loop_fd);
	if (r == 0 && target)
		r = grow_fs(dev, target, fstype, err);
	return r;
}

int vd_mount_grow_offline(const char *image, const char *fstype, struct vd_err *err)
{
	char *const fsck[] = { "e2fsck", "-f", "-y", (char *)image, NULL };
	char *const resize[] = { "resize2fs", (char *)image, NULL };
	char dev[32];
	int r = grow_fstype_check(fstype, err);
	if (r < 0)
		return r;
	if (strcmp(fstype, "xfs") == 0)
		return vd_err_set(err, -EOPNOTSUPP, "xfs grows only while mounted (xfs_growfs)");
	int loop_fd = loop_of_image(image, dev, sizeof(dev), err);
	if (loop_fd >= 0) {
		close(loop_fd);
		return vd_err_set(err, -EBUSY, "image %s is in use on %s; grow it mounted", image,
				  dev);
	}
	if (loop_fd != -ENOENT)
		return loop_fd;
	/* resize2fs wants a freshly checked file system; 1 is "errors fixed". */
	r = run_with(fsck, GROW_TIMEOUT_SEC, 1, 0, NULL, NULL, err);
	return r < 0 ? r : vd_run(resize, GROW_TIMEOUT_SEC, err);
}
