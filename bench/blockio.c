/* blockio.c — the file side of bench/run.sh's iSCSI section: the I/O
 * pattern bench/iscsi_bench.c sends to a LUN, through a file (on an iscsi
 * volume's mount, or on ext4 over a loop device on a local image).
 * No dependencies beyond libc.
 *
 *   blockio seq-write PATH MIB     MIB writes of 1 MiB (buffered) into a new
 *                                  file, then one fsync; the file's pages
 *                                  are then dropped (untimed), so a
 *                                  following seq-read is cold
 *   blockio seq-read PATH          drops PATH's pages, then reads of 1 MiB
 *                                  (buffered) to the end
 *   blockio randw PATH SPAN_MIB OPS [SEED]
 *                                  PATH made SPAN_MIB MiB and fsync'd
 *                                  (untimed, only when it is not that size
 *                                  yet), then OPS times: an O_DIRECT 4 KiB
 *                                  pwrite at a random 4 KiB-aligned offset,
 *                                  then fdatasync
 *   blockio disk-read PATH DISK    reads PATH's data where it lies on DISK
 *                                  (the image the file system is on, at
 *                                  offset 0: FIEMAP gives the extents),
 *                                  O_DIRECT, in reads of at most 1 MiB
 *                                  along each extent: the same bytes as
 *                                  seq-read, without the file system
 *   blockio drop PATH              drops PATH's pages from the page cache
 *
 * One line on stdout: "op=seq-write bytes=... secs=... mib_s=..." (or
 * seq-read, disk-read) or
 * "op=randw ops=... size=4096 secs=... iops=... median_us=... p99_us=...".
 * The random offsets come from the same generator and seed as iscsi_bench's.
 * Single-threaded; status 1 on any error, with the reason on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define SMALL 4096

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "blockio: %s: %s\n", what, why);
	exit(1);
}

static char *buffer(size_t n)
{
	void *p;
	if (posix_memalign(&p, SMALL, n) != 0)
		die("posix_memalign", strerror(ENOMEM));
	char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (char)(i * 131 + 7);
	return b;
}

static void print_rate(const char *op, uint64_t bytes, double secs)
{
	printf("op=%s bytes=%llu secs=%.3f mib_s=%.1f\n", op, (unsigned long long)bytes, secs,
	       bytes / (double)MIB / secs);
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

static void write_all(int fd, const char *path, const char *b, long mib)
{
	for (long i = 0; i < mib; i++) {
		errno = 0;
		if (write(fd, b, MIB) != MIB)
			die(path, errno ? strerror(errno) : "short write");
	}
}

static void seq_write(const char *path, long mib)
{
	char *b = buffer(MIB);
	double t0 = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path, strerror(errno));
	write_all(fd, path, b, mib);
	if (fsync(fd) != 0)
		die(path, strerror(errno));
	double secs = now() - t0;
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (e)
		die(path, strerror(e));
	close(fd);
	print_rate("seq-write", (uint64_t)mib * MIB, secs);
	free(b);
}

static void seq_read(const char *path)
{
	char *b = buffer(MIB);
	uint64_t total = 0;
	drop(path);
	double t0 = now();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, b, MIB);
		if (n < 0)
			die(path, strerror(errno));
		if (n == 0)
			break;
		total += (uint64_t)n;
	}
	close(fd);
	print_rate("seq-read", total, now() - t0);
	free(b);
}

static void disk_read(const char *path, const char *disk)
{
	enum { BATCH = 256 };
	char *b = buffer(MIB);
	struct fiemap *fm = calloc(1, sizeof(*fm) + BATCH * sizeof(struct fiemap_extent));
	if (!fm)
		die("calloc", strerror(ENOMEM));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path, strerror(errno));
	int dfd = open(disk, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (dfd < 0)
		die(disk, strerror(errno));
	uint64_t total = 0, start = 0;
	int last = 0;
	double t0 = now();
	while (!last) {
		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = FIEMAP_FLAG_SYNC;
		fm->fm_extent_count = BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0)
			die(path, strerror(errno));
		if (fm->fm_mapped_extents == 0)
			break;
		for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent *e = &fm->fm_extents[i];
			if (e->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_NOT_ALIGNED |
					   FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_ENCODED))
				die(path, "an extent without a plain place on the disk");
			for (uint64_t done = 0; done < e->fe_length;) {
				size_t want = e->fe_length - done < MIB ? e->fe_length - done : MIB;
				ssize_t n = pread(dfd, b, want, (off_t)(e->fe_physical + done));
				if (n <= 0)
					die(disk, n < 0 ? strerror(errno) : "end of the disk");
				done += (uint64_t)n;
				total += (uint64_t)n;
			}
			start = e->fe_logical + e->fe_length;
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = 1;
		}
	}
	double secs = now() - t0;
	close(dfd);
	close(fd);
	print_rate("disk-read", total, secs);
	free(fm);
	free(b);
}

static uint64_t rng_state;

static uint64_t rng(void)   /* xorshift64*, as in iscsi_bench.c */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void randw(const char *path, long span_mib, long ops, long seed)
{
	char *b = buffer(MIB);
	struct stat st;
	if (span_mib < 1)
		die("SPAN_MIB", "must be at least 1");
	if (stat(path, &st) != 0 || st.st_size != (off_t)span_mib * MIB) {
		/* Untimed: the file's blocks allocated and written once, so the
		 * timed writes overwrite (no allocation, no journal commit). */
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			die(path, strerror(errno));
		write_all(fd, path, b, span_mib);
		if (fsync(fd) != 0)
			die(path, strerror(errno));
		close(fd);
	}
	int fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		die(path, strerror(errno));
	double *lat = calloc(ops, sizeof(*lat));
	if (!lat)
		die("calloc", strerror(ENOMEM));
	rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)seed;
	uint64_t slots = (uint64_t)span_mib * (MIB / SMALL);
	double t0 = now();
	for (long i = 0; i < ops; i++) {
		double s = now();
		off_t off = (off_t)(rng() % slots) * SMALL;
		/* O_DIRECT needs an aligned buffer: a 4 KiB step into b. */
		errno = 0;
		if (pwrite(fd, b + (i % 256) * SMALL, SMALL, off) != SMALL)
			die(path, errno ? strerror(errno) : "short write");
		if (fdatasync(fd) != 0)
			die(path, strerror(errno));
		lat[i] = now() - s;
	}
	double secs = now() - t0;
	close(fd);
	qsort(lat, ops, sizeof(*lat), cmp_double);
	long p99 = (ops * 99) / 100 < ops ? (ops * 99) / 100 : ops - 1;
	printf("op=randw ops=%ld size=%d secs=%.3f iops=%.0f median_us=%.0f p99_us=%.0f\n", ops, SMALL,
	       secs, ops / secs, lat[ops / 2] * 1e6, lat[p99] * 1e6);
	free(lat);
	free(b);
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
	else if ((argc == 5 || argc == 6) && !strcmp(argv[1], "randw") && num(argv[4]) > 0)
		randw(argv[2], num(argv[3]), num(argv[4]), argc == 6 ? num(argv[5]) : 1);
	else if (argc == 4 && !strcmp(argv[1], "disk-read"))
		disk_read(argv[2], argv[3]);
	else if (argc == 3 && !strcmp(argv[1], "drop"))
		drop(argv[2]);
	else {
		fprintf(stderr, "usage: blockio seq-write PATH MIB | seq-read PATH |\n"
				"       randw PATH SPAN_MIB OPS [SEED] | disk-read PATH DISK | drop PATH\n");
		return 2;
	}
	return 0;
}
