/* bind.c — bind mounts for published volumes (see bind.h). */
#include "bind.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount.h"

struct flag_word {
	const char *word;
	unsigned long set;
	unsigned long clear;
};

static const struct flag_word flag_words[] = {
	{ "nosuid", MS_NOSUID, 0 },       { "nodev", MS_NODEV, 0 },
	{ "noexec", MS_NOEXEC, 0 },       { "noatime", MS_NOATIME, 0 },
	{ "nodiratime", MS_NODIRATIME, 0 }, { "relatime", MS_RELATIME, 0 },
	{ "strictatime", MS_STRICTATIME, 0 },
};

static int flag_word_apply(const char *w, size_t len, unsigned long *flags, int *ro,
			   struct vd_err *err)
{
	if (len == 0)
		return 0;
	if (len == 2 && (strncmp(w, "ro", 2) == 0 || strncmp(w, "rw", 2) == 0)) {
		*ro = w[1] == 'o';
		return 0;
	}
	for (size_t i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]); i++)
		if (strlen(flag_words[i].word) == len && strncmp(flag_words[i].word, w, len) == 0) {
			*flags |= flag_words[i].set;
			return 0;
		}
	return vd_err_set(err, -EINVAL, "mount flag '%.*s' is not supported; allowed: %s",
			  (int)(len > 60 ? 60 : len), w, VD_BIND_FLAGS);
}

int vd_bind_flags_parse(const char *const *words, size_t n, unsigned long *ret_flags,
			int *ret_readonly, struct vd_err *err)
{
	unsigned long flags = 0;
	int ro = 0;
	for (size_t i = 0; i < n; i++) {
		for (const char *w = words[i];;) {
			size_t len = strcspn(w, ",");
			int r = flag_word_apply(w, len, &flags, &ro, err);
			if (r < 0)
				return r;
			if (!w[len])
				break;
			w += len + 1;
		}
	}
	*ret_flags = flags;
	*ret_readonly = ro;
	return 0;
}

static int target_make(const char *target, int is_device, struct vd_err *err)
{
	struct stat st;
	if (lstat(target, &st) == 0) {
		if (is_device ? S_ISREG(st.st_mode) : S_ISDIR(st.st_mode))
			return 0;
		return vd_err_set(err, -ENOTDIR, "target %s exists and is not %s", target,
				  is_device ? "a regular file" : "a directory");
	}
	if (errno != ENOENT)
		return vd_err_set(err, -errno, "target %s: %s", target, strerror(errno));
	if (!is_device) {
		if (mkdir(target, 0750) < 0 && errno != EEXIST)
			return vd_err_set(err, -errno, "create target %s: %s (its parent must exist)",
					  target, strerror(errno));
		return 0;
	}
	int fd = open(target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0 && errno != EEXIST)
		return vd_err_set(err, -errno, "create target file %s: %s", target, strerror(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

int vd_bind(const char *source, const char *target, int is_device, int readonly,
	    unsigned long flags, struct vd_err *err)
{
	if (target[0] != '/')
		return vd_err_set(err, -EINVAL, "target %s is not an absolute path", target);
	int r = vd_mount_is_mounted(target, err);
	if (r != 0)
		return r < 0 ? r : 0;
	if ((r = target_make(target, is_device, err)) < 0)
		return r;
	if (mount(source, target, NULL, MS_BIND, NULL) < 0)
		return vd_err_set(err, -errno, "bind %s on %s: %s", source, target, strerror(errno));
	if (!readonly && !flags)
		return 0;
	unsigned long remount = MS_BIND | MS_REMOUNT | flags | (readonly ? MS_RDONLY : 0);
	if (mount(NULL, target, NULL, remount, NULL) < 0) {
		r = vd_err_set(err, -errno, "apply flags to %s: %s", target, strerror(errno));
		umount2(target, 0);
	}
	return r;
}
