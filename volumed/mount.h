/* mount.h — mounts, loop devices, mkfs and /proc/self/mountinfo.
 *
 * Thin wrappers over the kernel interfaces: mount(2), umount2(2), the loop
 * ioctls, and exec of mkfs with an argv array (never a shell). The mountinfo
 * parser does no I/O. No shared state; thread-safe. */
#ifndef VD_MOUNT_H
#define VD_MOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* One line of /proc/self/mountinfo, fields unescaped (\040 -> ' '). */
struct vd_mountinfo_entry {
	const char *mount_point;
	const char *fstype;
	const char *source;
	unsigned major, minor;
};

/* Parses mountinfo text, calling fn per line; a non-zero return stops the
 * walk and is returned. Malformed lines are -EINVAL. Pure: no I/O. */
typedef int (*vd_mountinfo_fn)(const struct vd_mountinfo_entry *entry, void *userdata);
int vd_mountinfo_parse(const char *text, size_t len, vd_mountinfo_fn fn, void *userdata,
		       struct vd_err *err);

/* 1 when path is a mount point in /proc/self/mountinfo, 0 when not. */
int vd_mount_is_mounted(const char *path, struct vd_err *err);

/* The type of the file system mounted on path (the top one), "" when
 * nothing is, into buf. */
int vd_mount_fstype(const char *path, char *buf, size_t len, struct vd_err *err);

/* A volume's mountpoint after its volume was taken away by force: an empty
 * read-only tmpfs (source VD_MOUNT_COVER_SOURCE) mounted over it, so that
 * whatever opens files there by name gets EROFS instead of writing to the
 * disk below. Idempotent; a path that is not a directory is left alone. */
#define VD_MOUNT_COVER_SOURCE "volumed-fenced"
int vd_mount_cover(const char *path, struct vd_err *err);
/* Removes the covers on path (none: 0). */
int vd_mount_uncover(const char *path, struct vd_err *err);

/* Creates a sparse file of size bytes (exclusive when it must not exist). */
int vd_mount_make_sparse(const char *path, uint64_t size, struct vd_err *err);

/* Runs mkfs.<fstype> on path (ext4 or xfs), quietly, with a timeout. */
int vd_mount_mkfs(const char *path, const char *fstype, struct vd_err *err);

/* mkfs with prezeroed = 0 for storage that may hold old data (its inode
 * tables are then zeroed lazily by the kernel). */
int vd_mount_mkfs_ex(const char *path, const char *fstype, int prezeroed, struct vd_err *err);

/* The file system at the start of path (a device or image): "ext4" or
 * "xfs" into fstype, "" when the first 64 KiB are all zero,
 * -EMEDIUMTYPE for other data. */
int vd_mount_probe(const char *path, char *fstype, size_t len, struct vd_err *err);

struct vd_image_mount {
	const char *fstype;     /* ext4 or xfs */
	int direct_io;          /* loop device with direct I/O (no double caching) */
	int format;             /* blank: mkfs first; another fs found: mount that */
	int prezeroed;          /* with format: the blank storage reads as zeroes */
	unsigned max_io_kb;     /* > 0: largest request the loop device sends (the backing
	                           file's best I/O size), else the kernel's default */
};
/* vd_mount_image with options. */
int vd_mount_image_ex(const char *image, const char *target, const struct vd_image_mount *m,
		      struct vd_err *err);

/* Attaches image to a free loop device with autoclear (the device goes
 * away with the last unmount) and mounts it on target. Idempotent: target
 * already mounted is 0. xfs is mounted with nouuid, so a copy of an image
 * mounts beside its source. */
int vd_mount_image(const char *image, const char *target, const char *fstype,
		   struct vd_err *err);

/* Unmounts target (a loop device with autoclear is then released).
 * Not mounted: 0. Busy: -EBUSY. */
int vd_mount_unmount(const char *target, struct vd_err *err);

/* Attaches image to a loop device without autoclear, so it stays attached
 * with no mount and after the daemon exits, and writes "/dev/loopN" into
 * ret_dev (len bytes). A device already backing the image is reused (and
 * loses autoclear). Idempotent. */
int vd_mount_loop_attach(const char *image, char *ret_dev, size_t len, struct vd_err *err);

/* The same, with direct I/O when direct_io is set (a new device only). */
int vd_mount_loop_attach_ex(const char *image, int direct_io, char *ret_dev, size_t len,
			    struct vd_err *err);

/* Caps the requests of loop device dev ("/dev/loopN") to kb KiB, best
 * effort (queue/max_sectors_kb). */
void vd_mount_loop_max_io(const char *dev, unsigned kb);

/* 1 and "/dev/loopN" in ret_dev when a loop device backs image; 0 when
 * none does (or there is no image). */
int vd_mount_loop_find(const char *image, char *ret_dev, size_t len, struct vd_err *err);

/* Waits up to timeout_ms for the loop device backing image to go (an
 * autoclear device is released after its last unmount, not at once).
 * 0 when none is left, -EBUSY when one still is. */
int vd_mount_loop_wait_gone(const char *image, int timeout_ms);

/* Detaches the loop device backing image (one still mounted goes with its
 * last unmount). None, or no image: 0. */
int vd_mount_loop_detach(const char *image, struct vd_err *err);

/* Makes the loop device backing image take the image's current size and,
 * when target is not NULL, grows the file system fstype (ext4 or xfs)
 * mounted there to fill it (resize2fs, xfs_growfs). No loop device and no
 * target: 0, nothing to do. A mounted ext4 without CAP_SYS_RESOURCE, which
 * the kernel requires: -EPERM (grow it unmounted). Blocks. */
int vd_mount_grow(const char *image, const char *target, const char *fstype,
		  struct vd_err *err);

/* Grows the ext4 file system in image, unmounted and on no loop device, to
 * fill the image: e2fsck -f, then resize2fs. In use: -EBUSY; xfs, which
 * grows only mounted: -EOPNOTSUPP. Blocks. */
int vd_mount_grow_offline(const char *image, const char *fstype, struct vd_err *err);

/* Runs argv (argv[0] an absolute path or found on PATH) with stdin
 * /dev/null, stdout/stderr captured into err's message on failure, and a
 * timeout in seconds. Never a shell. */
int vd_run(char *const argv[], int timeout_sec, struct vd_err *err);

/* vd_run that also returns the whole output (stdout and stderr, malloc'd,
 * NUL-terminated) on success; more than max_bytes is -EFBIG. */
int vd_run_capture(char *const argv[], int timeout_sec, size_t max_bytes, char **ret_out,
		   size_t *ret_len, struct vd_err *err);

#endif
