/* bind.h — publishing a volume at a path: bind mounts with per-path flags
 * (read-only, nosuid, ...), of a directory or of a block device node.
 * The flag parser does no I/O. Thread-safe: no shared state. */
#ifndef VD_BIND_H
#define VD_BIND_H

#include <stddef.h>

#include "err.h"

#define VD_BIND_FLAGS "ro, rw, nosuid, nodev, noexec, noatime, nodiratime, relatime, strictatime"

/* Parses mount flags (an array of words, or words joined by commas) into
 * MS_* bits for a bind remount; unknown words are -EINVAL naming the
 * allowed ones. ret_readonly is set by "ro" (and cleared by "rw"). */
int vd_bind_flags_parse(const char *const *words, size_t n, unsigned long *ret_flags,
			int *ret_readonly, struct vd_err *err);

/* Binds source (a directory, or a block device when is_device) on target,
 * creating target (a directory, or an empty file for a device), then
 * applies readonly and flags. Idempotent: target already a mount point is
 * 0 (its flags are left as they are). */
int vd_bind(const char *source, const char *target, int is_device, int readonly,
	    unsigned long flags, struct vd_err *err);

#endif
