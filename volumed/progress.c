/* progress.c — volctl's progress line (see progress.h): one thread that
 * waits on a condition variable (CLOCK_MONOTONIC) and redraws the line
 * until stopped. Only plain '\r' and spaces are written, no escape codes,
 * so any terminal shows it right. */
#include "progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char spinner[] = "|/-\\";

struct vd_progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;               /* under lock */
	int fd;
	size_t drawn;            /* the last line's length, 0 before the first */
	struct timespec t0;
	char label[VD_PROGRESS_LABEL_MAX + 1];
};

bool vd_progress_wanted(bool stderr_is_tty, bool quiet, bool json)
{
	return stderr_is_tty && !quiet && !json;
}

int vd_progress_format(char *buf, size_t len, const char *label, long elapsed_ms,
		       unsigned tick)
{
	char frame = spinner[tick % (sizeof(spinner) - 1)];
	if (elapsed_ms < 0)
		elapsed_ms = 0;
	if (elapsed_ms < 60000)
		return snprintf(buf, len, "\r%c %.*s %ld.%lds", frame, VD_PROGRESS_LABEL_MAX, label,
				elapsed_ms / 1000, elapsed_ms % 1000 / 100);
	return snprintf(buf, len, "\r%c %.*s %ldm%02lds", frame, VD_PROGRESS_LABEL_MAX, label,
			elapsed_ms / 60000, elapsed_ms % 60000 / 1000);
}

/* A terminal that went away is no reason to fail the command. */
static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static long ms_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

static struct timespec ms_after(const struct timespec *t0, long ms)
{
	struct timespec t = { t0->tv_sec + ms / 1000, t0->tv_nsec + (ms % 1000) * 1000000L };
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Draws the line, padded with spaces over what a longer one left. */
static void draw(struct vd_progress *p, unsigned tick)
{
	char line[VD_PROGRESS_LABEL_MAX + 64];
	int n = vd_progress_format(line, sizeof(line), p->label, ms_since(&p->t0), tick);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	while (len < p->drawn && len < sizeof(line) - 1)
		line[len++] = ' ';
	write_all(p->fd, line, len);
	p->drawn = len;
}

static void *progress_main(void *arg)
{
	struct vd_progress *p = arg;
	long next = VD_PROGRESS_DELAY_MS;
	unsigned tick = 0;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec at = ms_after(&p->t0, next);
		int r = pthread_cond_timedwait(&p->cond, &p->lock, &at);
		if (p->stop)
			break;
		if (r == ETIMEDOUT) {
			draw(p, tick++);
			next += VD_PROGRESS_TICK_MS;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct vd_progress *vd_progress_start(int fd, const char *label)
{
	struct vd_progress *p = calloc(1, sizeof(*p));
	pthread_condattr_t attr;
	if (!p)
		return NULL;
	p->fd = fd;
	snprintf(p->label, sizeof(p->label), "%s", label);
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return NULL;
	}
	return p;
}

void vd_progress_stop(struct vd_progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->drawn) {   /* "\r", spaces over the line, "\r" */
		char blank[VD_PROGRESS_LABEL_MAX + 66];
		size_t n = p->drawn < sizeof(blank) - 2 ? p->drawn : sizeof(blank) - 2;
		memset(blank, ' ', n + 1);
		blank[0] = '\r';
		blank[n] = '\r';
		write_all(p->fd, blank, n + 1);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
