/* log.c — one line per event on stderr, written with a single write(2) so
 * lines from concurrent threads never interleave. The level is a relaxed
 * atomic read on every call. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = VD_LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void vd_log_set_level(enum vd_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum vd_log_level vd_log_get_level(void)
{
	return (enum vd_log_level)atomic_load(&log_level);
}

int vd_log_parse_level(const char *s, enum vd_log_level *ret_level)
{
	for (int i = VD_LOG_DEBUG; i <= VD_LOG_ERROR; i++)
		if (s && strcmp(s, level_names[i]) == 0) {
			*ret_level = (enum vd_log_level)i;
			return 0;
		}
	return -EINVAL;
}

static void log_write(enum vd_log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void vd_log(enum vd_log_level level, const char *fmt, ...)
{
	if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_write(level, fmt, ap);
	va_end(ap);
}

/* Request strings reach the log: keep them on one line and bounded. */
static void log_clean(const char *in, char *out, size_t len)
{
	size_t i = 0;
	for (; in && in[i] && i + 1 < len; i++)
		out[i] = in[i] == '"' ? '\'' : (in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
	out[i] = '\0';
	if (i == 0 && len > 1)
		snprintf(out, len, "-");
}

void vd_log_op(const char *frontend, const char *op, const char *volume,
	       double ms, int rc, const char *errmsg)
{
	char vol[80], msg[600];
	log_clean(volume, vol, sizeof(vol));
	if (rc == 0) {
		vd_log(VD_LOG_INFO, "%s op=%s volume=%s ms=%.3f ok", frontend, op, vol, ms);
		return;
	}
	log_clean(errmsg, msg, sizeof(msg));
	vd_log(rc == -ENOENT || rc == -EINVAL ? VD_LOG_INFO : VD_LOG_WARN,
	       "%s op=%s volume=%s ms=%.3f err=\"%s\"", frontend, op, vol, ms, msg);
}

double vd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void vd_time_rfc3339(char *buf, unsigned long len)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
