/* lease.c — the node's lease file (see lease.h). */
#include "lease.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MAGIC "volumed-lease 1 "
#define LEASE_MAX 96   /* longest well-formed file */

static int boot_id_ok(const char *s, size_t len)
{
	if (len != VD_LEASE_BOOT_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

int vd_lease_parse(const char *buf, size_t len, struct vd_lease *ret, struct vd_err *err)
{
	const size_t magic = sizeof(LEASE_MAGIC) - 1;
	if (len < magic || memcmp(buf, LEASE_MAGIC, magic) != 0)
		return vd_err_set(err, -EINVAL, "lease: does not begin with '%s'", LEASE_MAGIC);
	const char *p = buf + magic, *end = buf + len;
	const char *space = memchr(p, ' ', (size_t)(end - p));
	if (!space || !boot_id_ok(p, (size_t)(space - p)))
		return vd_err_set(err, -EINVAL, "lease: no boot id (36 hex digits and dashes)");
	memcpy(ret->boot_id, p, VD_LEASE_BOOT_ID_LEN);
	ret->boot_id[VD_LEASE_BOOT_ID_LEN] = '\0';
	long long ms = 0;
	const char *d = space + 1;
	for (; d < end && isdigit((unsigned char)*d); d++) {
		if (ms > (LLONG_MAX - 9) / 10)
			return vd_err_set(err, -EINVAL, "lease: end time out of range");
		ms = ms * 10 + (*d - '0');
	}
	if (d == space + 1 || d + 1 != end || *d != '\n')
		return vd_err_set(err, -EINVAL, "lease: the end time must be digits and a newline");
	ret->until_ms = ms;
	return 0;
}

int vd_lease_boot_id(char *buf, struct vd_err *err)
{
	char line[64];
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, line, sizeof(line));
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (n < VD_LEASE_BOOT_ID_LEN || !boot_id_ok(line, VD_LEASE_BOOT_ID_LEN))
		return vd_err_set(err, n < 0 ? -e : -EIO, "cannot read this boot's id");
	memcpy(buf, line, VD_LEASE_BOOT_ID_LEN);
	buf[VD_LEASE_BOOT_ID_LEN] = '\0';
	return 0;
}

long long vd_lease_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vd_lease_write(const char *path, long long until_ms, struct vd_err *err)
{
	char boot[VD_LEASE_BOOT_ID_LEN + 1], text[LEASE_MAX], tmp[PATH_MAX];
	int r = vd_lease_boot_id(boot, err);
	if (r < 0)
		return r;
	int len = snprintf(text, sizeof(text), LEASE_MAGIC "%s %lld\n", boot, until_ms);
	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
		return vd_err_set(err, -ENAMETOOLONG, "lease: path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return vd_err_set(err, -errno, "lease: create %s: %s", tmp, strerror(errno));
	ssize_t n = write(fd, text, (size_t)len);
	int e = errno;
	close(fd);
	if (n != len || rename(tmp, path) < 0) {
		e = n != len ? (n < 0 ? e : EIO) : errno;
		unlink(tmp);
		return vd_err_set(err, -e, "lease: write %s: %s", path, strerror(e));
	}
	return 0;
}

int vd_lease_read(const char *path, struct vd_lease *ret, struct vd_err *err)
{
	char text[LEASE_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vd_err_set(err, -errno, "lease %s: %s", path, strerror(errno));
	ssize_t n = read(fd, text, sizeof(text));
	int e = errno;
	close(fd);
	if (n < 0)
		return vd_err_set(err, -e, "lease %s: %s", path, strerror(e));
	if (n > LEASE_MAX)
		return vd_err_set(err, -EINVAL, "lease %s: longer than %d bytes", path, LEASE_MAX);
	return vd_lease_parse(text, (size_t)n, ret, err);
}

int vd_lease_holds(const struct vd_lease *lease, const char *boot_id, long long now_ms)
{
	return strcmp(lease->boot_id, boot_id) == 0 && now_ms < lease->until_ms;
}
