/* nfs_bench.c — the data-path figures of bench/run.sh's NFS section: the
 * same I/O pattern through a path (an nfs volume's FUSE mount, or the local
 * disk) or through libnfs directly (an nfs:// URL, NFSv3), so the three can
 * be compared.
 *
 *   nfs_bench seq-write PATH|URL MIB   MIB writes of 1 MiB, then one fsync
 *   nfs_bench seq-read PATH|URL        reads of 1 MiB to the end (a PATH's
 *                                      page cache is dropped first)
 *   nfs_bench small DIR|URL N SIZE [PREFIX]
 *                                      N files PREFIX0.. (default f): create
 *                                      (exclusive), write SIZE bytes, fsync, close
 *   nfs_bench drop PATH                drops PATH's pages from the page cache
 *   nfs_bench rm DIR|URL N [PREFIX]    removes the files small made
 *   nfs_bench unlink PATH|URL          removes one file
 *
 * Files on an NFS server are removed through NFS (rm, unlink), never behind
 * the server's back: nfs-ganesha caches directory entries and would answer
 * a later create of the same name with NFS3ERR_STALE.
 *
 * URLs are nfs://server/dir/file?nfsport=P&mountport=M (seq-*) or
 * nfs://server/dir?... (small, rm: dir must exist). One line on stdout:
 * "op=... bytes=... secs=... mib_s=..." or "op=small files=... secs=...
 * files_s=... median_us=... p99_us=...". Single-threaded; status 1 on any
 * error, with the reason on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#define MIB (1024 * 1024)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what, const char *why)
{
	fprintf(stderr, "nfs_bench: %s: %s\n", what, why);
	exit(1);
}

static int is_url(const char *s)
{
	return strncmp(s, "nfs://", 6) == 0;
}

/* ---- libnfs */

static struct nfs_context *nfs_open_url(const char *url, int dir, struct nfs_url **ret_u)
{
	struct nfs_context *nfs = nfs_init_context();
	if (!nfs)
		die(url, "nfs_init_context failed");
	nfs_set_timeout(nfs, 30000);
	struct nfs_url *u = dir ? nfs_parse_url_dir(nfs, url) : nfs_parse_url_full(nfs, url);
	if (!u)
		die(url, nfs_get_error(nfs));
	if (nfs_mount(nfs, u->server, u->path) != 0)
		die(url, nfs_get_error(nfs));
	*ret_u = u;
	return nfs;
}

static void nfs_done(struct nfs_context *nfs, struct nfs_url *u)
{
	nfs_destroy_url(u);
	nfs_destroy_context(nfs);
}

/* ---- operations */

static char *buffer(size_t n)
{
	char *b = malloc(n);
	if (!b)
		die("malloc", strerror(ENOMEM));
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(i * 131 + 7);
	return b;
}

static void print_rate(const char *op, uint64_t bytes, double secs)
{
	printf("op=%s bytes=%llu secs=%.3f mib_s=%.1f\n", op, (unsigned long long)bytes, secs,
	       bytes / (double)MIB / secs);
}

static void seq_write(const char *target, long mib)
{
	char *b = buffer(MIB);
	double t0 = now();
	if (is_url(target)) {
		struct nfs_url *u;
		struct nfs_context *nfs = nfs_open_url(target, 0, &u);
		struct nfsfh *fh;
		if (nfs_open(nfs, u->file, O_WRONLY | O_CREAT | O_TRUNC, &fh) != 0)
			die(target, nfs_get_error(nfs));
		for (long i = 0; i < mib; i++) {
			int n = nfs_pwrite(nfs, fh, (uint64_t)i * MIB, MIB, b);
			if (n != MIB)
				die(target, n < 0 ? nfs_get_error(nfs) : "short write");
		}
		if (nfs_fsync(nfs, fh) != 0)
			die(target, nfs_get_error(nfs));
		nfs_close(nfs, fh);
		nfs_done(nfs, u);
	} else {
		int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(target, strerror(errno));
		for (long i = 0; i < mib; i++)
			if (write(fd, b, MIB) != MIB)
				die(target, strerror(errno));
		if (fsync(fd) != 0)
			die(target, strerror(errno));
		close(fd);
	}
	print_rate("seq-write", (uint64_t)mib * MIB, now() - t0);
	free(b);
}

static void drop(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path, strerror(errno));
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (e)
		die(path, strerror(e));
	close(fd);
}

static void seq_read(const char *target)
{
	char *b = malloc(MIB);
	uint64_t total = 0;
	if (!b)
		die("malloc", strerror(ENOMEM));
	if (!is_url(target))
		drop(target);
	double t0 = now();
	if (is_url(target)) {
		struct nfs_url *u;
		struct nfs_context *nfs = nfs_open_url(target, 0, &u);
		struct nfsfh *fh;
		if (nfs_open(nfs, u->file, O_RDONLY, &fh) != 0)
			die(target, nfs_get_error(nfs));
		for (;;) {
			int n = nfs_pread(nfs, fh, total, MIB, b);
			if (n < 0)
				die(target, nfs_get_error(nfs));
			if (n == 0)
				break;
			total += n;
		}
		nfs_close(nfs, fh);
		nfs_done(nfs, u);
	} else {
		int fd = open(target, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die(target, strerror(errno));
		for (;;) {
			ssize_t n = read(fd, b, MIB);
			if (n < 0)
				die(target, strerror(errno));
			if (n == 0)
				break;
			total += n;
		}
		close(fd);
	}
	print_rate("seq-read", total, now() - t0);
	free(b);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void small(const char *target, long n, long size, const char *prefix)
{
	char *b = buffer(size > 0 ? size : 1);
	double *lat = calloc(n, sizeof(*lat));
	char name[4096];
	struct nfs_context *nfs = NULL;
	struct nfs_url *u = NULL;
	if (!lat)
		die("calloc", strerror(ENOMEM));
	if (is_url(target))
		nfs = nfs_open_url(target, 1, &u);
	double t0 = now();
	for (long i = 0; i < n; i++) {
		double s = now();
		if (nfs) {
			struct nfsfh *fh;
			snprintf(name, sizeof(name), "/%s%ld", prefix, i);
			if (nfs_open2(nfs, name, O_WRONLY | O_CREAT | O_EXCL, 0644, &fh) != 0)
				die(name, nfs_get_error(nfs));
			if (size > 0 && nfs_pwrite(nfs, fh, 0, size, b) != size)
				die(name, nfs_get_error(nfs));
			if (nfs_fsync(nfs, fh) != 0)
				die(name, nfs_get_error(nfs));
			nfs_close(nfs, fh);
		} else {
			snprintf(name, sizeof(name), "%s/%s%ld", target, prefix, i);
			int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				die(name, strerror(errno));
			if (size > 0 && write(fd, b, size) != size)
				die(name, strerror(errno));
			if (fsync(fd) != 0)
				die(name, strerror(errno));
			close(fd);
		}
		lat[i] = now() - s;
	}
	double secs = now() - t0;
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("op=small files=%ld size=%ld secs=%.3f files_s=%.0f median_us=%.0f p99_us=%.0f\n", n,
	       size, secs, n / secs, lat[n / 2] * 1e6, lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] * 1e6);
	if (nfs)
		nfs_done(nfs, u);
	free(lat);
	free(b);
}

static void rm_small(const char *target, long n, const char *prefix)
{
	char name[4096];
	struct nfs_context *nfs = NULL;
	struct nfs_url *u = NULL;
	if (is_url(target))
		nfs = nfs_open_url(target, 1, &u);
	for (long i = 0; i < n; i++) {
		if (nfs) {
			snprintf(name, sizeof(name), "/%s%ld", prefix, i);
			nfs_unlink(nfs, name);
		} else {
			snprintf(name, sizeof(name), "%s/%s%ld", target, prefix, i);
			unlink(name);
		}
	}
	if (nfs)
		nfs_done(nfs, u);
}

static void unlink_one(const char *target)
{
	if (is_url(target)) {
		struct nfs_url *u;
		struct nfs_context *nfs = nfs_open_url(target, 0, &u);
		int r = nfs_unlink(nfs, u->file);
		if (r < 0 && r != -ENOENT)
			die(target, nfs_get_error(nfs));
		nfs_done(nfs, u);
	} else if (unlink(target) < 0 && errno != ENOENT) {
		die(target, strerror(errno));
	}
}

static long num(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		die(s, "not a number");
	return v;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "seq-write"))
		seq_write(argv[2], num(argv[3]));
	else if (argc == 3 && !strcmp(argv[1], "seq-read"))
		seq_read(argv[2]);
	else if ((argc == 5 || argc == 6) && !strcmp(argv[1], "small") && num(argv[3]) > 0)
		small(argv[2], num(argv[3]), num(argv[4]), argc == 6 ? argv[5] : "f");
	else if (argc == 3 && !strcmp(argv[1], "drop"))
		drop(argv[2]);
	else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "rm"))
		rm_small(argv[2], num(argv[3]), argc == 5 ? argv[4] : "f");
	else if (argc == 3 && !strcmp(argv[1], "unlink"))
		unlink_one(argv[2]);
	else {
		fprintf(stderr, "usage: nfs_bench seq-write PATH|URL MIB | seq-read PATH|URL |\n"
				"       small DIR|URL N SIZE [PREFIX] | drop PATH |\n"
				"       rm DIR|URL N [PREFIX] | unlink PATH|URL\n");
		return 2;
	}
	return 0;
}
