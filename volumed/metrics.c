/* metrics.c — the process's metric registry and the Prometheus text
 * exposition (see metrics.h).
 *
 * Series live in fixed tables filled in order: a table's published length
 * is an atomic, stored (release) after its new key is written, so readers
 * scan keys [0, len) without a lock; adding a key takes the one mutex.
 * Values are relaxed atomics. */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const double vd_metrics_bounds[VD_METRICS_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

static const char *const move_names[VD_MOVE_KINDS] = { "graceful", "forced", "crash" };
static const char *const fence_names[VD_FENCE_KINDS] = { "storage", "self", "volume" };

/* A series' label values; b is "" in one-label tables. */
struct key {
	char a[VD_METRICS_LABEL_LEN];
	char b[VD_METRICS_LABEL_LEN];
};

struct op_slot {
	struct key results[VD_METRICS_RESULTS_MAX];
	_Atomic size_t n_results;
	_Atomic uint64_t result_n[VD_METRICS_RESULTS_MAX];
	_Atomic uint64_t buckets[VD_METRICS_BUCKETS + 1];
	_Atomic uint64_t sum_us;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static struct {
	struct key op_keys[VD_METRICS_OPS_MAX];
	_Atomic size_t n_ops;
	struct op_slot ops[VD_METRICS_OPS_MAX];
	struct key backend_keys[VD_METRICS_LABELS_MAX];
	_Atomic size_t n_backend;
	_Atomic uint64_t backend[VD_METRICS_LABELS_MAX];
	_Atomic uint64_t moves[VD_MOVE_KINDS];
	_Atomic uint64_t fences[VD_FENCE_KINDS];
} reg;

static void label_copy(char *dst, const char *src)
{
	snprintf(dst, VD_METRICS_LABEL_LEN, "%s", src ? src : "");
}

static int key_is(const struct key *k, const char *a, const char *b)
{
	return strncmp(k->a, a, VD_METRICS_LABEL_LEN - 1) == 0 &&
	       strncmp(k->b, b, VD_METRICS_LABEL_LEN - 1) == 0;
}

static size_t key_scan(const struct key *keys, size_t len, const char *a, const char *b)
{
	for (size_t i = 0; i < len; i++)
		if (key_is(&keys[i], a, b))
			return i;
	return len;
}

/* The index of (a, b) in a table of max keys, added when new; past max - 1
 * keys, the last entry, ("other", "other" or ""), takes every new one. */
static size_t key_index(struct key *keys, _Atomic size_t *len, size_t max, const char *a,
			const char *b)
{
	size_t n = atomic_load_explicit(len, memory_order_acquire);
	size_t i = key_scan(keys, n, a, b);
	if (i < n)
		return i;
	pthread_mutex_lock(&registry_lock);
	n = atomic_load_explicit(len, memory_order_relaxed);
	i = key_scan(keys, n, a, b);
	if (i == n && n < max) {
		int full = n == max - 1;
		label_copy(keys[n].a, full ? VD_METRICS_OTHER : a);
		label_copy(keys[n].b, full && *b ? VD_METRICS_OTHER : b);
		atomic_store_explicit(len, n + 1, memory_order_release);
	} else if (i == n) {
		i = max - 1;
	}
	pthread_mutex_unlock(&registry_lock);
	return i;
}

static size_t bucket_of(double seconds)
{
	size_t i = 0;
	while (i < VD_METRICS_BUCKETS && seconds > vd_metrics_bounds[i])
		i++;
	return i;
}

void vd_metrics_op(const char *frontend, const char *op, double ms, int rc)
{
	size_t i = key_index(reg.op_keys, &reg.n_ops, VD_METRICS_OPS_MAX, frontend, op);
	struct op_slot *s = &reg.ops[i];
	size_t k = key_index(s->results, &s->n_results, VD_METRICS_RESULTS_MAX,
			     vd_errno_kind(rc), "");
	double seconds = ms > 0 ? ms / 1000.0 : 0;
	atomic_fetch_add_explicit(&s->result_n[k], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->buckets[bucket_of(seconds)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(seconds * 1e6 + 0.5),
				  memory_order_relaxed);
}

/* Errors that say the storage or the way to it failed, not the request. */
static int backend_error(int rc)
{
	static const int codes[] = { EIO, EREMOTEIO, ETIMEDOUT, ECONNREFUSED, ECONNRESET,
				     ECONNABORTED, EHOSTUNREACH, ENETUNREACH, ENETDOWN, ENOTCONN,
				     EPIPE, ENXIO, ENOLINK, EPROTO };
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (rc == -codes[i])
			return 1;
	return 0;
}

int vd_metrics_backend(const char *driver, int rc)
{
	if (backend_error(rc)) {
		size_t i = key_index(reg.backend_keys, &reg.n_backend, VD_METRICS_LABELS_MAX,
				     driver ? driver : "", "");
		atomic_fetch_add_explicit(&reg.backend[i], 1, memory_order_relaxed);
	}
	return rc;
}

void vd_metrics_move(enum vd_metrics_move kind)
{
	if (kind < VD_MOVE_KINDS)
		atomic_fetch_add_explicit(&reg.moves[kind], 1, memory_order_relaxed);
}

void vd_metrics_fence(enum vd_metrics_fence kind)
{
	if (kind < VD_FENCE_KINDS)
		atomic_fetch_add_explicit(&reg.fences[kind], 1, memory_order_relaxed);
}

void vd_metrics_reset(void)
{
	pthread_mutex_lock(&registry_lock);
	memset(&reg, 0, sizeof(reg));
	pthread_mutex_unlock(&registry_lock);
}

static uint64_t load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void collect_op(struct vd_metrics_op_series *out, const struct key *key,
		       struct op_slot *s)
{
	label_copy(out->frontend, key->a);
	label_copy(out->op, key->b);
	for (size_t b = 0; b <= VD_METRICS_BUCKETS; b++)
		out->buckets[b] = load(&s->buckets[b]);
	out->sum_seconds = (double)load(&s->sum_us) / 1e6;
	out->n_results = atomic_load_explicit(&s->n_results, memory_order_acquire);
	for (size_t k = 0; k < out->n_results; k++) {
		label_copy(out->results[k].label, s->results[k].a);
		out->results[k].n = load(&s->result_n[k]);
	}
}

static uint64_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	uint64_t n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n ? n - 1 : 0;   /* not the directory's own */
}

void vd_metrics_collect(struct vd_metrics_snapshot *s)
{
	s->n_ops = atomic_load_explicit(&reg.n_ops, memory_order_acquire);
	for (size_t i = 0; i < s->n_ops; i++)
		collect_op(&s->ops[i], &reg.op_keys[i], &reg.ops[i]);
	s->n_backend_errors = atomic_load_explicit(&reg.n_backend, memory_order_acquire);
	for (size_t i = 0; i < s->n_backend_errors; i++) {
		label_copy(s->backend_errors[i].label, reg.backend_keys[i].a);
		s->backend_errors[i].n = load(&reg.backend[i]);
	}
	for (size_t i = 0; i < VD_MOVE_KINDS; i++)
		s->moves[i] = load(&reg.moves[i]);
	for (size_t i = 0; i < VD_FENCE_KINDS; i++)
		s->fences[i] = load(&reg.fences[i]);
	s->open_fds = open_fds();
}

void vd_metrics_count_add(struct vd_metrics_count *table, size_t *len, size_t max,
			  const char *label, uint64_t n)
{
	size_t i = 0;
	while (i < *len && strncmp(table[i].label, label, VD_METRICS_LABEL_LEN - 1) != 0)
		i++;
	if (i == *len && *len < max) {
		label_copy(table[i].label, *len == max - 1 ? VD_METRICS_OTHER : label);
		table[i].n = 0;
		(*len)++;
	} else if (i == *len) {
		i = max - 1;
	}
	table[i].n += n;
}

/* ---- the exposition ---- */

struct out {
	char *buf;
	size_t len, cap;
	int failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	for (int tries = 0; !o->failed && tries < 2; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
		} else if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		} else {
			size_t cap = (o->cap + (size_t)n) * 2;
			char *buf = realloc(o->buf, cap);
			if (!buf)
				o->failed = 1;
			else
				o->buf = buf, o->cap = cap;
		}
	}
}

/* A label value as the format wants it: backslash, quote and newline
 * escaped. Values come from the code, so this is a safety net. */
static const char *label_escape(const char *in, char *out, size_t len)
{
	size_t j = 0;
	for (size_t i = 0; in[i] && j + 3 < len; i++) {
		char c = in[i];
		if (c == '\\' || c == '"' || c == '\n')
			out[j++] = '\\';
		out[j++] = c == '\n' ? 'n' : c;
	}
	out[j] = '\0';
	return out;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample per entry of a by-label table. */
static void samples(struct out *o, const char *name, const char *label,
		    const struct vd_metrics_count *table, size_t len)
{
	char v[2 * VD_METRICS_LABEL_LEN + 2];
	for (size_t i = 0; i < len; i++)
		put(o, "%s{%s=\"%s\"} %llu\n", name, label,
		    label_escape(table[i].label, v, sizeof(v)), (unsigned long long)table[i].n);
}

static void named_samples(struct out *o, const char *name, const char *const *names,
			  const uint64_t *values, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(o, "%s{kind=\"%s\"} %llu\n", name, names[i], (unsigned long long)values[i]);
}

static void gauge(struct out *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "gauge", help);
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void operations(struct out *o, const struct vd_metrics_snapshot *s)
{
	char fe[2 * VD_METRICS_LABEL_LEN + 2], op[sizeof(fe)], res[sizeof(fe)];
	family(o, "volumed_operations_total", "counter", "Operations of the front-ends (docker, "
	       "csi, api) by operation and result: ok, or the error kind.");
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct vd_metrics_op_series *x = &s->ops[i];
		label_escape(x->frontend, fe, sizeof(fe));
		label_escape(x->op, op, sizeof(op));
		for (size_t k = 0; k < x->n_results; k++)
			put(o, "volumed_operations_total{frontend=\"%s\",op=\"%s\",result=\"%s\"} "
			    "%llu\n", fe, op, label_escape(x->results[k].label, res, sizeof(res)),
			    (unsigned long long)x->results[k].n);
	}
	family(o, "volumed_operation_duration_seconds", "histogram", "How long the front-ends' "
	       "operations took, in seconds.");
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct vd_metrics_op_series *x = &s->ops[i];
		uint64_t total = 0;
		label_escape(x->frontend, fe, sizeof(fe));
		label_escape(x->op, op, sizeof(op));
		for (size_t b = 0; b <= VD_METRICS_BUCKETS; b++) {
			char le[32];
			total += x->buckets[b];
			if (b < VD_METRICS_BUCKETS)
				snprintf(le, sizeof(le), "%g", vd_metrics_bounds[b]);
			else
				snprintf(le, sizeof(le), "+Inf");
			put(o, "volumed_operation_duration_seconds_bucket{frontend=\"%s\",op=\"%s\","
			    "le=\"%s\"} %llu\n", fe, op, le, (unsigned long long)total);
		}
		put(o, "volumed_operation_duration_seconds_sum{frontend=\"%s\",op=\"%s\"} %.6f\n",
		    fe, op, x->sum_seconds);
		put(o, "volumed_operation_duration_seconds_count{frontend=\"%s\",op=\"%s\"} %llu\n",
		    fe, op, (unsigned long long)total);
	}
}

static void events(struct out *o, const struct vd_metrics_snapshot *s)
{
	family(o, "volumed_backend_errors_total", "counter", "Driver operations that failed with "
	       "an I/O or connection error, by driver.");
	samples(o, "volumed_backend_errors_total", "driver", s->backend_errors,
		s->n_backend_errors);
	family(o, "volumed_moves_total", "counter", "Volumes moved from one node to another, by "
	       "kind: graceful, forced, crash (the holder was dead).");
	named_samples(o, "volumed_moves_total", move_names, s->moves, VD_MOVE_KINDS);
	family(o, "volumed_fences_total", "counter", "Fences, by kind: storage (a node told to "
	       "take a volume over at the storage), self (this node lost its lease), volume (a "
	       "volume's data path cut here).");
	named_samples(o, "volumed_fences_total", fence_names, s->fences, VD_FENCE_KINDS);
}

static void state(struct out *o, const struct vd_metrics_gauges *g)
{
	if (g->has_catalog) {
		family(o, "volumed_volumes", "gauge", "Volumes in the catalog, by driver.");
		samples(o, "volumed_volumes", "driver", g->volumes, g->n_volumes);
		gauge(o, "volumed_attachments", "Attachments of volumes to nodes in the catalog.",
		      g->attachments);
	}
	gauge(o, "volumed_mounted_volumes", "Volumes mounted on this node.", g->mounted);
	gauge(o, "volumed_mount_references", "References (mount IDs) to the volumes mounted on "
	      "this node.", g->mount_refs);
	family(o, "volumed_helper_processes", "gauge", "Running FUSE helper processes serving "
	       "this node's mounts, by driver.");
	samples(o, "volumed_helper_processes", "driver", g->helpers, g->n_helpers);
}

static void process(struct out *o, const struct vd_metrics_snapshot *s)
{
	char v[2 * VD_METRICS_LABEL_LEN + 2];
	family(o, "volumed_build_info", "gauge", "The running version, as a label; always 1.");
	put(o, "volumed_build_info{version=\"%s\"} 1\n",
	    label_escape(s->version ? s->version : "", v, sizeof(v)));
	family(o, "volumed_start_time_seconds", "gauge", "When the process started, in seconds "
	       "since the epoch.");
	put(o, "volumed_start_time_seconds %.3f\n", s->start_time_seconds);
	gauge(o, "volumed_resident_memory_bytes", "Resident memory of the process.",
	      s->resident_bytes);
	gauge(o, "volumed_open_fds", "Open file descriptors of the process.", s->open_fds);
}

char *vd_metrics_format(const struct vd_metrics_snapshot *s)
{
	struct out o = { .buf = malloc(16384), .cap = 16384 };
	if (!o.buf)
		return NULL;
	o.buf[0] = '\0';
	operations(&o, s);
	events(&o, s);
	state(&o, &s->gauges);
	process(&o, s);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
