/* usock.c — listening unix sockets: parent directory, stale-socket
 * replacement, live-socket refusal, removal of only our own socket file.
 * Pure system calls; no threads, no locks. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "usock.h"

/* mkdir -p of path's parent directory, 0755. */
static int make_parent(const char *path, struct vd_err *err)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return vd_err_set(err, -errno, "cannot create socket directory %s: %s",
					  dir, strerror(errno));
		*p = c;
		if (c == '\0')
			return 0;
	}
}

static int unix_address(const char *path, struct sockaddr_un *addr, struct vd_err *err)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (path[0] == '\0' || strlen(path) >= sizeof(addr->sun_path))
		return vd_err_set(err, -ENAMETOOLONG,
				  "socket path \"%s\" is %zu bytes; 1 to %zu allowed",
				  path, strlen(path), sizeof(addr->sun_path) - 1);
	memcpy(addr->sun_path, path, strlen(path) + 1);
	return 0;
}

/* 1 when something accepts connections on addr. */
static int socket_is_live(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int r = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	int live = r == 0 || errno == EAGAIN;   /* EAGAIN: live, backlog full */
	close(fd);
	return live;
}

#define LIVE_WAIT_STEP_US 50000
#define LIVE_WAIT_TRIES 40

/* Removes a stale socket at path; refuses a live one or a non-socket. */
static int clear_path(const struct sockaddr_un *addr, struct vd_err *err)
{
	const char *path = addr->sun_path;
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return vd_err_set(err, -errno, "cannot inspect %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return vd_err_set(err, -EEXIST,
				  "%s exists and is not a socket; remove it or choose another socket path",
				  path);
	/* A predecessor killed a moment ago may still be closing its socket
	 * (a child between fork and exec holds it): give it two seconds. */
	for (int i = 0; socket_is_live(addr); i++) {
		if (i == LIVE_WAIT_TRIES)
			return vd_err_set(err, -EADDRINUSE, "another volumed is serving %s", path);
		usleep(LIVE_WAIT_STEP_US);
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return vd_err_set(err, -errno, "cannot remove stale socket %s: %s",
				  path, strerror(errno));
	return 0;
}

/* Creates, binds, chmods and listens; records the socket's identity. */
static int bind_listen(const struct sockaddr_un *addr, mode_t mode, int backlog,
		       struct vd_usock *s, struct vd_err *err)
{
	const char *path = addr->sun_path;
	struct stat st;
	int r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vd_err_set(err, -errno, "cannot create a unix socket: %s", strerror(errno));
	if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		r = vd_err_set(err, -errno, "cannot bind %s: %s", path, strerror(errno));
		goto fail_close;
	}
	if (chmod(path, mode) < 0 || lstat(path, &st) < 0) {
		r = vd_err_set(err, -errno, "cannot set mode %04o on %s: %s",
			       (unsigned)mode, path, strerror(errno));
		goto fail_unlink;
	}
	if (listen(fd, backlog) < 0) {
		r = vd_err_set(err, -errno, "cannot listen on %s: %s", path, strerror(errno));
		goto fail_unlink;
	}
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;

fail_unlink:
	unlink(path);
fail_close:
	close(fd);
	return r;
}

int vd_usock_listen(const char *path, mode_t mode, int backlog, struct vd_usock *ret,
		    struct vd_err *err)
{
	struct sockaddr_un addr;
	struct vd_usock s;
	if (!path || !ret)
		return vd_err_set(err, -EINVAL, "a socket path is required");
	int r = unix_address(path, &addr, err);
	if (r == 0)
		r = make_parent(path, err);
	if (r == 0)
		r = clear_path(&addr, err);
	if (r == 0)
		r = bind_listen(&addr, mode, backlog, &s, err);
	if (r < 0)
		return r;
	memcpy(s.path, addr.sun_path, sizeof(s.path));
	*ret = s;
	return 0;
}

void vd_usock_unlink(const struct vd_usock *s)
{
	struct stat st;
	if (s->path[0] && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
}

void vd_usock_close(struct vd_usock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	vd_usock_unlink(s);
}
