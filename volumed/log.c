/* log.c — one line per event on stderr, written with a single write(2) so
 * lines from concurrent threads never interleave: text, or one JSON object.
 * The level, the format and the operation observer are relaxed atomic
 * reads on every call. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static _Atomic int log_level = VD_LOG_INFO;
static _Atomic int log_format = VD_LOG_TEXT;
static _Atomic(vd_log_op_observer) op_observer;

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const format_names[] = { "text", "json" };

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

int vd_log_parse_format(const char *s, enum vd_log_format *ret_format)
{
	for (int i = VD_LOG_TEXT; i <= VD_LOG_JSON; i++)
		if (s && strcmp(s, format_names[i]) == 0) {
			*ret_format = (enum vd_log_format)i;
			return 0;
		}
	return -EINVAL;
}

void vd_log_set_format(enum vd_log_format format)
{
	atomic_store(&log_format, (int)format);
}

void vd_log_set_op_observer(vd_log_op_observer fn)
{
	atomic_store(&op_observer, fn);
}

/* "2026-01-02T03:04:05.678Z" */
static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000000);
}

static void line_write(const char *line, size_t len)
{
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

/* A line of either format; op (JSON only) adds the operation's fields. */
static void log_emit(enum vd_log_level level, const char *msg, const struct vd_log_op_fields *op)
{
	char line[LINE_MAX_BYTES], ts[40];
	timestamp(ts, sizeof(ts));
	if (atomic_load_explicit(&log_format, memory_order_relaxed) == VD_LOG_JSON) {
		line_write(line, vd_log_json_line(line, sizeof(line), ts, level_names[level], msg,
						  op));
		return;
	}
	int n = snprintf(line, sizeof(line) - 1, "%s %-5s %s", ts, level_names[level], msg);
	size_t len = n < 0 ? 0 : (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	line_write(line, len);
}

static void log_write(enum vd_log_level level, const char *fmt, va_list ap)
{
	char msg[LINE_MAX_BYTES];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_emit(level, msg, NULL);
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

static enum vd_log_level op_level(int rc)
{
	return rc == 0 || rc == -ENOENT || rc == -EINVAL ? VD_LOG_INFO : VD_LOG_WARN;
}

/* The JSON line: the fields as given (escaped there), msg a short summary. */
static void log_op_json(const struct vd_log_op_fields *f, int rc)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "%.32s %.32s %s", f->frontend, f->op, rc == 0 ? "ok" : "failed");
	log_emit(op_level(rc), msg, f);
}

void vd_log_op(const char *frontend, const char *op, const char *volume,
	       double ms, int rc, const char *errmsg)
{
	vd_log_op_observer observe = atomic_load_explicit(&op_observer, memory_order_relaxed);
	if (observe)
		observe(frontend, op, ms, rc);
	if ((int)op_level(rc) < atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	if (atomic_load_explicit(&log_format, memory_order_relaxed) == VD_LOG_JSON) {
		struct vd_log_op_fields f = { frontend, op, volume && *volume ? volume : "-", ms,
					      rc == 0 ? NULL : errmsg ? errmsg : "" };
		log_op_json(&f, rc);
		return;
	}
	char vol[80], msg[600];
	log_clean(volume, vol, sizeof(vol));
	if (rc == 0) {
		vd_log(VD_LOG_INFO, "%s op=%s volume=%s ms=%.3f ok", frontend, op, vol, ms);
		return;
	}
	log_clean(errmsg, msg, sizeof(msg));
	vd_log(op_level(rc), "%s op=%s volume=%s ms=%.3f err=\"%s\"", frontend, op, vol, ms, msg);
}

/* ---- JSON lines ---- */

/* The length of the well-formed UTF-8 sequence at s (1 for ASCII), or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		: s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	unsigned char lo = s[0] == 0xe0 ? 0xa0 : s[0] == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = s[0] == 0xed ? 0x9f : s[0] == 0xf4 ? 0x8f : 0xbf;
	for (size_t i = 1; i < n; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0;
	return n;
}

/* A JSON line being built; cap keeps room for the closing "}\n\0". */
struct jline {
	char *buf;
	size_t len, cap;
};

static int jput(struct jline *j, const char *bytes, size_t n)
{
	if (j->len + n > j->cap)
		return -1;
	memcpy(j->buf + j->len, bytes, n);
	j->len += n;
	return 0;
}

/* The escaped form of the character at s into out; *used: bytes of s. */
static size_t json_char(const char *s, char *out, size_t *used)
{
	unsigned char c = (unsigned char)*s;
	size_t n = utf8_seq((const unsigned char *)s);
	*used = n ? n : 1;
	if (c == '"' || c == '\\')
		return (size_t)snprintf(out, 8, "\\%c", c);
	if (c == '\n' || c == '\r' || c == '\t')
		return (size_t)snprintf(out, 8, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
	if (c < 0x20 || c == 0x7f)
		return (size_t)snprintf(out, 8, "\\u%04x", c);
	if (!n) {
		out[0] = '?';
		return 1;
	}
	memcpy(out, s, n);
	return n;
}

/* ,"key":"value" — the value cut at a character when it does not fit. */
static void jstring(struct jline *j, const char *key, const char *value)
{
	char head[48];
	int n = snprintf(head, sizeof(head), "%s\"%s\":\"", j->len > 1 ? "," : "", key);
	if (n < 0 || j->len + (size_t)n + 1 > j->cap)
		return;
	jput(j, head, (size_t)n);
	j->cap--;   /* the closing quote */
	for (size_t used; value && *value; value += used) {
		char esc[8];
		if (jput(j, esc, json_char(value, esc, &used)) < 0)
			break;
	}
	j->cap++;
	jput(j, "\"", 1);
}

static void jraw(struct jline *j, const char *key, const char *fmt, double v)
{
	char item[80];
	int n = snprintf(item, sizeof(item), ",\"%s\":", key);
	n += snprintf(item + n, sizeof(item) - (size_t)n, fmt, v);
	jput(j, item, (size_t)n);
}

size_t vd_log_json_line(char *line, size_t cap, const char *ts, const char *level,
			const char *msg, const struct vd_log_op_fields *op)
{
	struct jline j = { line, 0, cap - 3 };
	jput(&j, "{", 1);
	jstring(&j, "ts", ts);
	jstring(&j, "level", level);
	if (op) {
		jstring(&j, "frontend", op->frontend);
		jstring(&j, "op", op->op);
		jstring(&j, "volume", op->volume);
		jraw(&j, "ms", "%.3f", op->ms);
		if (op->err)
			jstring(&j, "err", op->err);
		else
			jput(&j, ",\"ok\":true", strlen(",\"ok\":true"));
	}
	jstring(&j, "msg", msg);
	memcpy(line + j.len, "}\n", 3);
	return j.len + 2;
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
