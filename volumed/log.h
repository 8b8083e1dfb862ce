/* log.h — one line per event: time, level, then key=value fields; or, in
 * the JSON format, one JSON object per line.
 *
 * Thread-safe: each line is written with a single write(2) to stderr. */
#ifndef VD_LOG_H
#define VD_LOG_H

#include <stddef.h>

enum vd_log_level { VD_LOG_DEBUG, VD_LOG_INFO, VD_LOG_WARN, VD_LOG_ERROR };
enum vd_log_format { VD_LOG_TEXT, VD_LOG_JSON };

void vd_log_set_level(enum vd_log_level level);
enum vd_log_level vd_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -EINVAL otherwise. */
int vd_log_parse_level(const char *s, enum vd_log_level *ret_level);

void vd_log(enum vd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses "text", "json"; returns -EINVAL otherwise. */
int vd_log_parse_format(const char *s, enum vd_log_format *ret_format);
void vd_log_set_format(enum vd_log_format format);

/* An operation's outcome: "level op=OP volume=NAME ms=D.DDD [err=...]";
 * in JSON, the fields frontend, op, volume, ms and ok (true) or err. It is
 * also handed to the observer, when one is set (the metrics). */
void vd_log_op(const char *frontend, const char *op, const char *volume,
	       double ms, int rc, const char *errmsg);
typedef void (*vd_log_op_observer)(const char *frontend, const char *op, double ms, int rc);
void vd_log_set_op_observer(vd_log_op_observer fn);

/* The fields of an operation's line (JSON format). */
struct vd_log_op_fields {
	const char *frontend, *op, *volume;
	double ms;
	const char *err;   /* NULL: ok */
};
/* One JSON log line (with its '\n') into line (cap >= 64 bytes): ts and
 * level as given, msg and, with op, its fields. Strings are escaped; bytes
 * that are not UTF-8 become '?'; a string cut to fit stays valid JSON.
 * Returns the length. Pure. */
size_t vd_log_json_line(char *line, size_t cap, const char *ts, const char *level,
			const char *msg, const struct vd_log_op_fields *op);

/* Monotonic milliseconds, for durations. */
double vd_now_ms(void);



/* Now as RFC 3339 UTC ("2026-01-02T03:04:05Z") into buf (>= 32 bytes). */
void vd_time_rfc3339(char *buf, unsigned long len);

#endif
