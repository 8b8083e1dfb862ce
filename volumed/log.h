/* log.h — one line per event: time, level, then key=value fields.
 *
 * Thread-safe: each line is written with a single write(2) to stderr. */
#ifndef VD_LOG_H
#define VD_LOG_H

enum vd_log_level { VD_LOG_DEBUG, VD_LOG_INFO, VD_LOG_WARN, VD_LOG_ERROR };

void vd_log_set_level(enum vd_log_level level);
enum vd_log_level vd_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -EINVAL otherwise. */
int vd_log_parse_level(const char *s, enum vd_log_level *ret_level);

void vd_log(enum vd_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* An operation's outcome: "level op=OP volume=NAME ms=D.DDD [err=...]". */
void vd_log_op(const char *frontend, const char *op, const char *volume,
	       double ms, int rc, const char *errmsg);

/* Monotonic milliseconds, for durations. */
double vd_now_ms(void);



/* Now as RFC 3339 UTC ("2026-01-02T03:04:05Z") into buf (>= 32 bytes). */
void vd_time_rfc3339(char *buf, unsigned long len);

#endif
