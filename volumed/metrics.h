/* metrics.h — the daemon's Prometheus metrics: counters and a latency
 * histogram recorded on the hot path, gauges filled at scrape time, and
 * the text exposition (format 0.0.4) written from a snapshot.
 *
 * Cardinality is bounded: label values come from fixed sets in the code
 * (front-ends, op names, error kinds, driver names), are copied into fixed
 * tables, and once a table is full further values are counted under
 * "other". Recording is lock-free once a series exists; a new series takes
 * a mutex once.
 *
 * Threads: recording and snapshots are thread-safe; the process has one
 * registry. vd_metrics_format is a pure function of its snapshot. */
#ifndef VD_METRICS_H
#define VD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define VD_METRICS_BUCKETS 15          /* finite histogram bounds, +Inf apart */
#define VD_METRICS_OPS_MAX 96          /* (frontend, op) pairs */
#define VD_METRICS_RESULTS_MAX 12      /* results per pair */
#define VD_METRICS_LABELS_MAX 8        /* drivers in a by-driver family */
#define VD_METRICS_LABEL_LEN 32        /* longer label values are cut */
#define VD_METRICS_OTHER "other"

/* Upper bounds of the histogram buckets, in seconds (0.001 .. 60). */
extern const double vd_metrics_bounds[VD_METRICS_BUCKETS];

enum vd_metrics_move {
	VD_MOVE_GRACEFUL,   /* the holder let go when asked */
	VD_MOVE_FORCED,     /* the holder was made to let go (force) */
	VD_MOVE_CRASH,      /* the holder was dead: fenced at the storage or waited out */
	VD_MOVE_KINDS
};

enum vd_metrics_fence {
	VD_FENCE_STORAGE,   /* a new node was told to take a volume over at the storage */
	VD_FENCE_SELF,      /* this node lost its lease and fenced itself */
	VD_FENCE_VOLUME,    /* one volume's data path was cut on this node */
	VD_FENCE_KINDS
};

/* ---- recording (hot path) ---- */

/* One operation of a front-end ("docker", "csi", "api") named op, its
 * result rc (0 or a negative errno: counted under vd_errno_kind) and
 * duration. Called by vd_log_op for every front-end. */
void vd_metrics_op(const char *frontend, const char *op, double ms, int rc);
/* Counts rc against driver when it is an I/O or connection error (EIO,
 * ETIMEDOUT, ECONNREFUSED, ...); returns rc, to wrap a driver call. */
int vd_metrics_backend(const char *driver, int rc);
void vd_metrics_move(enum vd_metrics_move kind);
void vd_metrics_fence(enum vd_metrics_fence kind);
/* Forgets every series (tests). */
void vd_metrics_reset(void);

/* ---- snapshots and the exposition ---- */

struct vd_metrics_count {
	char label[VD_METRICS_LABEL_LEN];
	uint64_t n;
};

struct vd_metrics_op_series {
	char frontend[VD_METRICS_LABEL_LEN];
	char op[VD_METRICS_LABEL_LEN];
	uint64_t buckets[VD_METRICS_BUCKETS + 1];   /* per bucket (not cumulative); last: +Inf */
	double sum_seconds;
	struct vd_metrics_count results[VD_METRICS_RESULTS_MAX];
	size_t n_results;
};

/* The state now, filled by the core (vd_core_gauges). */
struct vd_metrics_gauges {
	int has_catalog;    /* 1 on the controller: volumes and attachments are known */
	struct vd_metrics_count volumes[VD_METRICS_LABELS_MAX];   /* by driver */
	size_t n_volumes;
	uint64_t attachments;
	uint64_t mounted;      /* volumes mounted on this node */
	uint64_t mount_refs;   /* their references (mount IDs) */
	struct vd_metrics_count helpers[VD_METRICS_LABELS_MAX];   /* by driver */
	size_t n_helpers;
};

struct vd_metrics_snapshot {
	struct vd_metrics_op_series ops[VD_METRICS_OPS_MAX];
	size_t n_ops;
	struct vd_metrics_count backend_errors[VD_METRICS_LABELS_MAX];
	size_t n_backend_errors;
	uint64_t moves[VD_MOVE_KINDS];
	uint64_t fences[VD_FENCE_KINDS];
	struct vd_metrics_gauges gauges;
	const char *version;
	double start_time_seconds;   /* since the epoch */
	uint64_t resident_bytes;
	uint64_t open_fds;
};

/* Adds n to label's count in a table of at most max entries; a new label
 * past max counts under "other" (which takes the last entry). */
void vd_metrics_count_add(struct vd_metrics_count *table, size_t *len, size_t max,
			  const char *label, uint64_t n);

/* Copies the recorded series into s, and counts the open file
 * descriptors (/proc/self/fd); the core fills the rest (vd_core_metrics). */
void vd_metrics_collect(struct vd_metrics_snapshot *s);

/* The exposition text of s (malloc'd), NULL when out of memory. Pure. */
char *vd_metrics_format(const struct vd_metrics_snapshot *s);

#define VD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
