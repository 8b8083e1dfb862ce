/* test_metrics.c — the metric registry and the Prometheus text exposition:
 * histogram bucketing at the bounds, results by error kind, the caps on
 * series (with their "other" overflow), backend-error classification,
 * moves and fences, concurrent recording, and the exposition's syntax. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../volumed/metrics.h"

static int setup(void **state)
{
	(void)state;
	vd_metrics_reset();
	return 0;
}

static struct vd_metrics_snapshot *snap(void)
{
	struct vd_metrics_snapshot *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	vd_metrics_collect(s);
	s->version = "1.2.3";
	s->start_time_seconds = 1700000000.5;
	s->resident_bytes = 4096;
	return s;
}

static char *format(const struct vd_metrics_snapshot *s)
{
	char *text = vd_metrics_format(s);
	assert_non_null(text);
	return text;
}

static void expect_line(const char *text, const char *line)
{
	char want[512];
	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strstr(text, want))
		fail_msg("line '%s' missing from:\n%s", line, text);
}

static void expect_no(const char *text, const char *needle)
{
	if (strstr(text, needle))
		fail_msg("'%s' unexpectedly in:\n%s", needle, text);
}

static const struct vd_metrics_op_series *series(const struct vd_metrics_snapshot *s,
						 const char *frontend, const char *op)
{
	for (size_t i = 0; i < s->n_ops; i++)
		if (strcmp(s->ops[i].frontend, frontend) == 0 && strcmp(s->ops[i].op, op) == 0)
			return &s->ops[i];
	fail_msg("no series %s/%s", frontend, op);
	return NULL;
}

static uint64_t result_n(const struct vd_metrics_op_series *x, const char *result)
{
	for (size_t k = 0; k < x->n_results; k++)
		if (strcmp(x->results[k].label, result) == 0)
			return x->results[k].n;
	return 0;
}

/* A value on a bound falls in that bound's bucket (le is "<="). */
static void test_bucketing(void **state)
{
	(void)state;
	vd_metrics_op("api", "create", 0.5, 0);       /* 0.0005 s: le 0.001 */
	vd_metrics_op("api", "create", 1.0, 0);       /* 0.001 s: le 0.001 */
	vd_metrics_op("api", "create", 1.001, 0);     /* le 0.0025 */
	vd_metrics_op("api", "create", 3, 0);         /* le 0.005 */
	vd_metrics_op("api", "create", 60000, 0);     /* 60 s: le 60 */
	vd_metrics_op("api", "create", 70000, 0);     /* +Inf */
	struct vd_metrics_snapshot *s = snap();
	const struct vd_metrics_op_series *x = series(s, "api", "create");
	assert_int_equal(x->buckets[0], 2);
	assert_int_equal(x->buckets[1], 1);
	assert_int_equal(x->buckets[2], 1);
	assert_int_equal(x->buckets[VD_METRICS_BUCKETS - 1], 1);
	assert_int_equal(x->buckets[VD_METRICS_BUCKETS], 1);
	char *text = format(s);
	const char *p = "volumed_operation_duration_seconds";
	char line[256];
	snprintf(line, sizeof(line), "%s_bucket{frontend=\"api\",op=\"create\",le=\"0.001\"} 2", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_bucket{frontend=\"api\",op=\"create\",le=\"0.0025\"} 3", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_bucket{frontend=\"api\",op=\"create\",le=\"0.005\"} 4", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_bucket{frontend=\"api\",op=\"create\",le=\"30\"} 4", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_bucket{frontend=\"api\",op=\"create\",le=\"60\"} 5", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_bucket{frontend=\"api\",op=\"create\",le=\"+Inf\"} 6", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_count{frontend=\"api\",op=\"create\"} 6", p);
	expect_line(text, line);
	snprintf(line, sizeof(line), "%s_sum{frontend=\"api\",op=\"create\"} 130.005501", p);
	expect_line(text, line);
	expect_line(text, "volumed_operations_total{frontend=\"api\",op=\"create\",result=\"ok\"} 6");
	free(text);
	free(s);
}

static void test_results_by_kind(void **state)
{
	(void)state;
	vd_metrics_op("docker", "mount", 1, 0);
	vd_metrics_op("docker", "mount", 1, 0);
	vd_metrics_op("docker", "mount", 1, -EINVAL);
	vd_metrics_op("docker", "mount", 1, -EIO);
	vd_metrics_op("csi", "mount", 1, -ENOENT);
	struct vd_metrics_snapshot *s = snap();
	assert_int_equal(s->n_ops, 2);
	const struct vd_metrics_op_series *x = series(s, "docker", "mount");
	assert_int_equal(result_n(x, "ok"), 2);
	assert_int_equal(result_n(x, "invalid"), 1);
	assert_int_equal(result_n(x, "internal"), 1);
	assert_int_equal(result_n(series(s, "csi", "mount"), "not-found"), 1);
	char *text = format(s);
	expect_line(text, "volumed_operations_total{frontend=\"docker\",op=\"mount\",result=\"ok\"} 2");
	expect_line(text, "volumed_operations_total{frontend=\"docker\",op=\"mount\","
		    "result=\"invalid\"} 1");
	expect_line(text, "volumed_operations_total{frontend=\"csi\",op=\"mount\","
		    "result=\"not-found\"} 1");
	expect_line(text, "volumed_operation_duration_seconds_count{frontend=\"docker\","
		    "op=\"mount\"} 4");
	free(text);
	free(s);
}

/* Past the cap every new pair counts under other/other; nothing is lost. */
static void test_cardinality_cap(void **state)
{
	(void)state;
	char op[32];
	for (int i = 0; i < 3 * VD_METRICS_OPS_MAX; i++) {
		snprintf(op, sizeof(op), "op%d", i);
		vd_metrics_op("api", op, 1, 0);
	}
	vd_metrics_op("api", "op0", 1, 0);   /* an existing pair keeps its series */
	static const int codes[] = { 0, EINVAL, EFBIG, ERANGE, ENOENT, EEXIST, EBUSY, ESTALE,
				     EAGAIN, ETIMEDOUT, EACCES, EKEYREJECTED, ENOSPC, EOPNOTSUPP,
				     EIO };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		vd_metrics_op("csi", "stage", 1, -codes[i]);
	struct vd_metrics_snapshot *s = snap();
	assert_int_equal(s->n_ops, VD_METRICS_OPS_MAX);
	const struct vd_metrics_op_series *other = series(s, "other", "other");
	assert_ptr_equal(other, &s->ops[VD_METRICS_OPS_MAX - 1]);
	assert_int_equal(result_n(series(s, "api", "op0"), "ok"), 2);
	uint64_t total = 0;
	for (size_t i = 0; i < s->n_ops; i++)
		if (strcmp(s->ops[i].frontend, "api") == 0 || strcmp(s->ops[i].op, "other") == 0)
			total += result_n(&s->ops[i], "ok");
	assert_int_equal(total, 3 * VD_METRICS_OPS_MAX + 1 + 1);   /* + csi/stage's ok */
	/* csi/stage was past the cap too: its 15 results are other's. */
	uint64_t results = 0;
	for (size_t k = 0; k < other->n_results; k++)
		results += other->results[k].n;
	assert_int_equal(results, 3 * VD_METRICS_OPS_MAX - (VD_METRICS_OPS_MAX - 1) + 15);
	assert_true(other->n_results <= VD_METRICS_RESULTS_MAX);
	free(s);
}

static void test_results_cap(void **state)
{
	(void)state;
	static const int codes[] = { 0, EINVAL, EFBIG, ERANGE, ENOENT, EEXIST, EBUSY, ESTALE,
				     EAGAIN, ETIMEDOUT, EACCES, EKEYREJECTED, ENOSPC, EOPNOTSUPP,
				     EIO };
	size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++)
		vd_metrics_op("csi", "stage", 1, -codes[i]);
	struct vd_metrics_snapshot *s = snap();
	const struct vd_metrics_op_series *x = series(s, "csi", "stage");
	assert_int_equal(x->n_results, VD_METRICS_RESULTS_MAX);
	assert_string_equal(x->results[VD_METRICS_RESULTS_MAX - 1].label, VD_METRICS_OTHER);
	uint64_t sum = 0;
	for (size_t k = 0; k < x->n_results; k++)
		sum += x->results[k].n;
	assert_int_equal(sum, n);
	free(s);
}

static void test_backend_errors(void **state)
{
	(void)state;
	assert_int_equal(vd_metrics_backend("nfs", -EIO), -EIO);
	assert_int_equal(vd_metrics_backend("nfs", -ETIMEDOUT), -ETIMEDOUT);
	assert_int_equal(vd_metrics_backend("iscsi", -ECONNREFUSED), -ECONNREFUSED);
	assert_int_equal(vd_metrics_backend("nfs", -EINVAL), -EINVAL);   /* the request's fault */
	assert_int_equal(vd_metrics_backend("local", -EEXIST), -EEXIST);
	assert_int_equal(vd_metrics_backend("local", 0), 0);
	struct vd_metrics_snapshot *s = snap();
	assert_int_equal(s->n_backend_errors, 2);
	char *text = format(s);
	expect_line(text, "volumed_backend_errors_total{driver=\"nfs\"} 2");
	expect_line(text, "volumed_backend_errors_total{driver=\"iscsi\"} 1");
	expect_no(text, "driver=\"local\"");
	free(text);
	free(s);
}

static void test_moves_and_fences(void **state)
{
	(void)state;
	vd_metrics_move(VD_MOVE_GRACEFUL);
	vd_metrics_move(VD_MOVE_GRACEFUL);
	vd_metrics_move(VD_MOVE_CRASH);
	vd_metrics_fence(VD_FENCE_SELF);
	vd_metrics_fence(VD_FENCE_VOLUME);
	vd_metrics_fence(VD_FENCE_VOLUME);
	vd_metrics_fence(VD_FENCE_VOLUME);
	struct vd_metrics_snapshot *s = snap();
	char *text = format(s);
	expect_line(text, "volumed_moves_total{kind=\"graceful\"} 2");
	expect_line(text, "volumed_moves_total{kind=\"forced\"} 0");
	expect_line(text, "volumed_moves_total{kind=\"crash\"} 1");
	expect_line(text, "volumed_fences_total{kind=\"storage\"} 0");
	expect_line(text, "volumed_fences_total{kind=\"self\"} 1");
	expect_line(text, "volumed_fences_total{kind=\"volume\"} 3");
	free(text);
	free(s);
}

static void test_gauges_and_process(void **state)
{
	(void)state;
	struct vd_metrics_snapshot *s = snap();
	struct vd_metrics_gauges *g = &s->gauges;
	vd_metrics_count_add(g->volumes, &g->n_volumes, VD_METRICS_LABELS_MAX, "local", 0);
	vd_metrics_count_add(g->volumes, &g->n_volumes, VD_METRICS_LABELS_MAX, "nfs", 0);
	vd_metrics_count_add(g->volumes, &g->n_volumes, VD_METRICS_LABELS_MAX, "local", 1);
	vd_metrics_count_add(g->volumes, &g->n_volumes, VD_METRICS_LABELS_MAX, "local", 1);
	vd_metrics_count_add(g->helpers, &g->n_helpers, VD_METRICS_LABELS_MAX, "nfs", 1);
	g->mounted = 2;
	g->mount_refs = 5;
	g->attachments = 3;
	char *text = format(s);
	/* a node agent: the catalog's gauges are the controller's */
	expect_no(text, "volumed_volumes");
	expect_no(text, "volumed_attachments");
	expect_line(text, "volumed_mounted_volumes 2");
	expect_line(text, "volumed_mount_references 5");
	expect_line(text, "volumed_helper_processes{driver=\"nfs\"} 1");
	expect_line(text, "volumed_build_info{version=\"1.2.3\"} 1");
	expect_line(text, "volumed_start_time_seconds 1700000000.500");
	expect_line(text, "volumed_resident_memory_bytes 4096");
	assert_true(s->open_fds >= 3);   /* at least stdin, stdout, stderr */
	free(text);
	g->has_catalog = 1;
	text = format(s);
	expect_line(text, "# TYPE volumed_volumes gauge");
	expect_line(text, "volumed_volumes{driver=\"local\"} 2");
	expect_line(text, "volumed_volumes{driver=\"nfs\"} 0");
	expect_line(text, "volumed_attachments 3");
	free(text);
	free(s);
}

static void test_count_add_cap(void **state)
{
	(void)state;
	struct vd_metrics_count t[4];
	size_t len = 0;
	const char *names[] = { "a", "b", "c", "d", "e", "a" };
	for (size_t i = 0; i < 6; i++)
		vd_metrics_count_add(t, &len, 4, names[i], 1);
	assert_int_equal(len, 4);
	assert_string_equal(t[0].label, "a");
	assert_int_equal(t[0].n, 2);
	assert_string_equal(t[3].label, VD_METRICS_OTHER);
	assert_int_equal(t[3].n, 2);   /* d and e */
}

/* Every line is a # HELP, a # TYPE or a sample of the family last typed,
 * and each family is described once. */
static void test_exposition_syntax(void **state)
{
	(void)state;
	vd_metrics_op("api", "create", 2, 0);
	vd_metrics_op("api", "create", 2, -EEXIST);
	vd_metrics_op("docker", "remove", 20, -EBUSY);
	vd_metrics_backend("nfs", -EIO);
	struct vd_metrics_snapshot *s = snap();
	s->gauges.has_catalog = 1;
	vd_metrics_count_add(s->gauges.volumes, &s->gauges.n_volumes, 8, "local", 3);
	char *text = format(s);
	regex_t help, type, sample;
	assert_int_equal(regcomp(&help, "^# HELP (volumed_[a-z_]+) [^\n]+$", REG_EXTENDED), 0);
	assert_int_equal(regcomp(&type, "^# TYPE (volumed_[a-z_]+) (counter|gauge|histogram)$",
				 REG_EXTENDED), 0);
	assert_int_equal(regcomp(&sample, "^(volumed_[a-z_]+)(\\{([a-z_]+=\"[^\"\\\\\n]*\",)*"
				 "[a-z_]+=\"[^\"\\\\\n]*\"\\})? -?[0-9]+(\\.[0-9]+)?$",
				 REG_EXTENDED), 0);
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	char family[64] = "", typed[64] = "";
	int lines = 0, families = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
		regmatch_t m[3];
		if (regexec(&help, line, 2, m, 0) == 0) {
			snprintf(family, sizeof(family), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
				 line + m[1].rm_so);
			families++;
		} else if (regexec(&type, line, 2, m, 0) == 0) {
			snprintf(typed, sizeof(typed), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
				 line + m[1].rm_so);
			assert_string_equal(typed, family);
		} else if (regexec(&sample, line, 2, m, 0) == 0) {
			if (strncmp(line, typed, strlen(typed)) != 0)
				fail_msg("sample '%s' outside its family %s", line, typed);
		} else {
			fail_msg("not exposition syntax: '%s'", line);
		}
	}
	assert_int_equal(families, 14);
	assert_true(lines > 50);
	regfree(&help);
	regfree(&type);
	regfree(&sample);
	free(text);
	free(s);
}

#define THREADS 4
#define PER_THREAD 20000

static void *record_many(void *arg)
{
	const char *op = arg;
	for (int i = 0; i < PER_THREAD; i++)
		vd_metrics_op("api", i % 2 ? op : "shared", 0.2, i % 3 ? 0 : -ENOENT);
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	char *ops[THREADS] = { "a", "b", "c", "d" };
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, record_many, ops[i]), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	struct vd_metrics_snapshot *s = snap();
	assert_int_equal(s->n_ops, 1 + THREADS);
	const struct vd_metrics_op_series *x = series(s, "api", "shared");
	assert_int_equal(result_n(x, "ok") + result_n(x, "not-found"), THREADS * PER_THREAD / 2);
	assert_int_equal(x->buckets[0], THREADS * PER_THREAD / 2);
	assert_int_equal(result_n(series(s, "api", "c"), "ok") +
			 result_n(series(s, "api", "c"), "not-found"), PER_THREAD / 2);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_bucketing, setup),
		cmocka_unit_test_setup(test_results_by_kind, setup),
		cmocka_unit_test_setup(test_cardinality_cap, setup),
		cmocka_unit_test_setup(test_results_cap, setup),
		cmocka_unit_test_setup(test_backend_errors, setup),
		cmocka_unit_test_setup(test_moves_and_fences, setup),
		cmocka_unit_test_setup(test_gauges_and_process, setup),
		cmocka_unit_test_setup(test_count_add_cap, setup),
		cmocka_unit_test_setup(test_exposition_syntax, setup),
		cmocka_unit_test_setup(test_concurrent, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
