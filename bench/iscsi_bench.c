/* iscsi_bench.c — the raw libiscsi baseline of bench/run.sh's iSCSI section:
 * the I/O pattern bench/blockio.c runs through files, sent as SCSI commands
 * straight to a LUN (no FUSE, no loop device, no file system, no volumed).
 *
 *   iscsi_bench seq-write URL MIB [QD]  WRITE16 of 1 MiB from LBA 0, MIB of
 *                                       them, then one SYNCHRONIZE CACHE(10)
 *   iscsi_bench seq-read URL MIB [QD]   READ16 of 1 MiB from LBA 0, MIB of them
 *   iscsi_bench randw URL SPAN_MIB OPS [SEED]
 *                                       OPS times: WRITE16 of 4 KiB at a random
 *                                       4 KiB-aligned offset below SPAN_MIB MiB,
 *                                       then SYNCHRONIZE CACHE(10) (the span is
 *                                       written once first, untimed)
 *
 * QD (default 1) is the number of commands in flight, through libiscsi's
 * async API and one poll loop: 1 is the fair baseline for the volume's FUSE
 * helper, which serves one request at a time. randw is always one command
 * at a time (each write waits for its SYNCHRONIZE CACHE).
 *
 * URL: iscsi://HOST:PORT/TARGET-IQN/LUN. The login (iscsi_full_connect_sync)
 * and READ CAPACITY(16) are not timed. One line on stdout, like
 * blockio's: "op=seq-write bytes=... secs=... mib_s=... qd=..." or
 * "op=randw ops=... size=4096 secs=... iops=... median_us=... p99_us=...".
 * Single-threaded; status 1 on any error, with the reason on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define MIB (1024 * 1024)
#define SMALL 4096
#define QD_MAX 64
#define INITIATOR "iqn.2026-01.io.volumed:bench"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "iscsi_bench: %s: %s\n", what, why);
	exit(1);
}

struct lun {
	struct iscsi_context *ctx;
	const char *url;
	int lun;
	uint32_t bs;        /* block size */
	uint64_t blocks;
};

static void lun_open(struct lun *l, const char *url)
{
	l->url = url;
	l->ctx = iscsi_create_context(INITIATOR);
	if (!l->ctx)
		die(url, "iscsi_create_context failed");
	struct iscsi_url *u = iscsi_parse_full_url(l->ctx, url);
	if (!u)
		die(url, iscsi_get_error(l->ctx));
	iscsi_set_targetname(l->ctx, u->target);
	iscsi_set_session_type(l->ctx, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(l->ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (iscsi_full_connect_sync(l->ctx, u->portal, u->lun) != 0)
		die(url, iscsi_get_error(l->ctx));
	l->lun = u->lun;
	iscsi_destroy_url(u);
	struct scsi_task *t = iscsi_readcapacity16_sync(l->ctx, l->lun);
	if (!t || t->status != SCSI_STATUS_GOOD)
		die("READ CAPACITY(16)", iscsi_get_error(l->ctx));
	struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(t);
	if (!rc || rc->block_length == 0 || SMALL % rc->block_length)
		die("READ CAPACITY(16)", "no answer, or a block size that does not divide 4096");
	l->bs = rc->block_length;
	l->blocks = rc->returned_lba + 1;
	scsi_free_scsi_task(t);
}

static void lun_close(struct lun *l)
{
	iscsi_logout_sync(l->ctx);
	iscsi_destroy_context(l->ctx);
}

static void lun_sync(struct lun *l)
{
	struct scsi_task *t = iscsi_synchronizecache10_sync(l->ctx, l->lun, 0, 0, 0, 0);
	if (!t || t->status != SCSI_STATUS_GOOD)
		die("SYNCHRONIZE CACHE(10)", iscsi_get_error(l->ctx));
	scsi_free_scsi_task(t);
}

static unsigned char *buffer(size_t n)
{
	unsigned char *b = malloc(n);
	if (!b)
		die("malloc", strerror(ENOMEM));
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(i * 131 + 7);
	return b;
}

/* ---- sequential, QD commands in flight */

struct seq;

struct slot {
	struct seq *s;
	int busy;
	unsigned char *buf;          /* reads: this slot's data-in buffer */
	struct scsi_iovec iov;       /* must live until the command completes */
};

struct seq {
	struct lun *l;
	int write;
	unsigned char *wbuf;         /* writes: shared, read-only */
	uint64_t next, end;          /* LBAs */
	uint32_t chunk;              /* blocks per command */
	int inflight;
	int failed;
	char err[256];
	struct slot slots[QD_MAX];
};

static void io_cb(struct iscsi_context *ctx, int status, void *command_data, void *private_data)
{
	struct slot *sl = private_data;
	struct seq *s = sl->s;
	if (status != SCSI_STATUS_GOOD && !s->failed) {
		s->failed = 1;
		snprintf(s->err, sizeof(s->err), "status 0x%x: %s", (unsigned)status,
			 iscsi_get_error(ctx));
	}
	scsi_free_scsi_task(command_data);
	sl->busy = 0;
	s->inflight--;
}

static void issue(struct seq *s, struct slot *sl)
{
	struct lun *l = s->l;
	uint64_t lba = s->next;
	uint32_t n = s->chunk;
	if (lba + n > s->end)
		n = (uint32_t)(s->end - lba);
	s->next += n;
	struct scsi_task *t;
	if (s->write) {
		t = iscsi_write16_task(l->ctx, l->lun, lba, s->wbuf, n * l->bs, (int)l->bs, 0, 0, 0, 0,
				       0, io_cb, sl);
	} else {
		sl->iov.iov_base = sl->buf;
		sl->iov.iov_len = (size_t)n * l->bs;
		t = iscsi_read16_iov_task(l->ctx, l->lun, lba, n * l->bs, (int)l->bs, 0, 0, 0, 0, 0,
					  io_cb, sl, &sl->iov, 1);
	}
	if (!t)
		die(s->write ? "WRITE16" : "READ16", iscsi_get_error(l->ctx));
	sl->busy = 1;
	s->inflight++;
}

static void seq(const char *url, long mib, long qd, int write)
{
	struct lun l;
	lun_open(&l, url);
	if (qd < 1 || qd > QD_MAX)
		die("QD", "must be 1 to 64");
	struct seq *s = calloc(1, sizeof(*s));
	if (!s)
		die("calloc", strerror(ENOMEM));
	s->l = &l;
	s->write = write;
	s->chunk = MIB / l.bs;
	s->end = (uint64_t)mib * s->chunk;
	if (s->end > l.blocks)
		die(url, "the LUN is smaller than MIB MiB");
	if (write)
		s->wbuf = buffer(MIB);
	for (long i = 0; i < qd; i++) {
		s->slots[i].s = s;
		if (!write && !(s->slots[i].buf = malloc(MIB)))
			die("malloc", strerror(ENOMEM));
	}
	double t0 = now();
	while (!s->failed && (s->next < s->end || s->inflight > 0)) {
		for (long i = 0; i < qd && s->next < s->end; i++)
			if (!s->slots[i].busy)
				issue(s, &s->slots[i]);
		struct pollfd pfd = { .fd = iscsi_get_fd(l.ctx), .events = iscsi_which_events(l.ctx) };
		int r = poll(&pfd, 1, 1000);
		if (r < 0 && errno != EINTR)
			die("poll", strerror(errno));
		if (r > 0 && iscsi_service(l.ctx, pfd.revents) < 0)
			die(url, iscsi_get_error(l.ctx));
	}
	if (s->failed)
		die(write ? "WRITE16" : "READ16", s->err);
	if (write)
		lun_sync(&l);
	double secs = now() - t0;
	printf("op=%s bytes=%" PRIu64 " secs=%.3f mib_s=%.1f qd=%ld\n", write ? "seq-write" : "seq-read",
	       (uint64_t)mib * MIB, secs, mib / secs, qd);
	lun_close(&l);
	for (long i = 0; i < qd; i++)
		free(s->slots[i].buf);
	free(s->wbuf);
	free(s);
}

/* ---- 4 KiB random writes, each followed by SYNCHRONIZE CACHE */

static uint64_t rng_state;

static uint64_t rng(void)   /* xorshift64* */
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

static void write_sync(struct lun *l, uint64_t lba, unsigned char *buf, uint32_t len)
{
	struct scsi_task *t = iscsi_write16_sync(l->ctx, l->lun, lba, buf, len, (int)l->bs, 0, 0, 0,
						 0, 0);
	if (!t || t->status != SCSI_STATUS_GOOD)
		die("WRITE16", iscsi_get_error(l->ctx));
	scsi_free_scsi_task(t);
}

static void randw(const char *url, long span_mib, long ops, long seed)
{
	struct lun l;
	lun_open(&l, url);
	uint64_t span_blocks = (uint64_t)span_mib * (MIB / l.bs);
	if (span_mib < 1 || span_blocks > l.blocks)
		die(url, "SPAN_MIB must be at least 1 and fit the LUN");
	unsigned char *b = buffer(MIB);
	/* Untimed: the span written once, so the timed writes overwrite
	 * allocated blocks of the target's backing file (as through a file). */
	for (long i = 0; i < span_mib; i++)
		write_sync(&l, (uint64_t)i * (MIB / l.bs), b, MIB);
	lun_sync(&l);
	double *lat = calloc(ops, sizeof(*lat));
	if (!lat)
		die("calloc", strerror(ENOMEM));
	rng_state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)seed;
	uint64_t slots = (uint64_t)span_mib * (MIB / SMALL);
	double t0 = now();
	for (long i = 0; i < ops; i++) {
		double s = now();
		uint64_t lba = (rng() % slots) * (SMALL / l.bs);
		write_sync(&l, lba, b + (i % 256) * 16, SMALL);
		lun_sync(&l);
		lat[i] = now() - s;
	}
	double secs = now() - t0;
	qsort(lat, ops, sizeof(*lat), cmp_double);
	long p99 = (ops * 99) / 100 < ops ? (ops * 99) / 100 : ops - 1;
	printf("op=randw ops=%ld size=%d secs=%.3f iops=%.0f median_us=%.0f p99_us=%.0f\n", ops, SMALL,
	       secs, ops / secs, lat[ops / 2] * 1e6, lat[p99] * 1e6);
	lun_close(&l);
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
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "seq-write") && num(argv[3]) > 0)
		seq(argv[2], num(argv[3]), argc == 5 ? num(argv[4]) : 1, 1);
	else if ((argc == 4 || argc == 5) && !strcmp(argv[1], "seq-read") && num(argv[3]) > 0)
		seq(argv[2], num(argv[3]), argc == 5 ? num(argv[4]) : 1, 0);
	else if ((argc == 5 || argc == 6) && !strcmp(argv[1], "randw") && num(argv[4]) > 0)
		randw(argv[2], num(argv[3]), num(argv[4]), argc == 6 ? num(argv[5]) : 1);
	else {
		fprintf(stderr, "usage: iscsi_bench seq-write URL MIB [QD] | seq-read URL MIB [QD] |\n"
				"       randw URL SPAN_MIB OPS [SEED]\n");
		return 2;
	}
	return 0;
}
