/* usock.h — a listening unix socket for the daemon's front-ends.
 *
 * Shared by the HTTP/1 server (Docker plugin, REST API) and the gRPC
 * server (CSI): the parent directory is created, a stale socket left by a
 * crashed daemon is replaced, a live one (another daemon still serving it
 * after two seconds) or a path that is not a socket is refused, and on close the socket file is
 * removed only if it still is the one we bound, never a successor's.
 * No threads, no locks: one struct belongs to one server. */
#ifndef VD_USOCK_H
#define VD_USOCK_H

#include <sys/types.h>
#include <sys/un.h>

#include "err.h"

struct vd_usock {
	int fd;                                     /* listening, CLOEXEC; -1 when closed */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;                                  /* the socket file we bound */
	ino_t ino;
};

/* mkdir -p of path's parent (0755), replaces a stale socket, binds, sets
 * mode, listens with backlog. On success *ret is filled (fd >= 0). */
int vd_usock_listen(const char *path, mode_t mode, int backlog, struct vd_usock *ret,
		    struct vd_err *err);

/* Removes the socket file if it still is the one we bound. */
void vd_usock_unlink(const struct vd_usock *s);

/* Closes the listening fd (unless already -1) and unlinks as above. */
void vd_usock_close(struct vd_usock *s);

#endif
