/* test_progress.c — volctl's progress line (volumed/progress.c): when it is
 * wanted, its text, and the thread's output on a pipe: nothing for a call
 * shorter than the delay, redrawn lines erased at the end for a long one. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../volumed/progress.h"

static void test_wanted(void **state)
{
	(void)state;
	assert_true(vd_progress_wanted(true, false, false));
	assert_false(vd_progress_wanted(false, false, false));   /* a script: pipe or file */
	assert_false(vd_progress_wanted(true, true, false));     /* --quiet */
	assert_false(vd_progress_wanted(true, false, true));     /* --json */
	assert_false(vd_progress_wanted(false, true, true));
}

static void test_format(void **state)
{
	(void)state;
	char buf[256];
	assert_int_equal(vd_progress_format(buf, sizeof(buf), "mounting m1", 2149, 0), 19);
	assert_string_equal(buf, "\r| mounting m1 2.1s");
	vd_progress_format(buf, sizeof(buf), "mounting m1", 300, 1);
	assert_string_equal(buf, "\r/ mounting m1 0.3s");
	vd_progress_format(buf, sizeof(buf), "x", 0, 2);
	assert_string_equal(buf, "\r- x 0.0s");
	vd_progress_format(buf, sizeof(buf), "x", 59999, 3);
	assert_string_equal(buf, "\r\\ x 59.9s");
	vd_progress_format(buf, sizeof(buf), "x", 60000, 4);   /* the spinner wraps */
	assert_string_equal(buf, "\r| x 1m00s");
	vd_progress_format(buf, sizeof(buf), "x", 3725000, 0);
	assert_string_equal(buf, "\r| x 62m05s");
	vd_progress_format(buf, sizeof(buf), "x", -5, 0);      /* a clock step back */
	assert_string_equal(buf, "\r| x 0.0s");
}

/* A label longer than VD_PROGRESS_LABEL_MAX is cut, so the line never
 * wraps on an 80-column terminal; a small buffer truncates safely. */
static void test_format_long(void **state)
{
	(void)state;
	char label[200], buf[256], small[8];
	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	int n = vd_progress_format(buf, sizeof(buf), label, 1000, 0);
	assert_int_equal(n, 3 + VD_PROGRESS_LABEL_MAX + 5);
	assert_true(n < 80);
	assert_int_equal(vd_progress_format(small, sizeof(small), "mounting", 1000, 0), 16);
	assert_string_equal(small, "\r| moun");
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Everything the thread wrote to a pipe between start and stop. */
static size_t run_for(long ms, const char *label, char *out, size_t len)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct vd_progress *pr = vd_progress_start(p[1], label);
	assert_non_null(pr);
	sleep_ms(ms);
	vd_progress_stop(pr);
	ssize_t n = read(p[0], out, len - 1);
	close(p[0]);
	close(p[1]);
	out[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

static void test_quick_call_prints_nothing(void **state)
{
	(void)state;
	char out[4096];
	assert_int_equal(run_for(50, "mounting m1", out, sizeof(out)), 0);
	vd_progress_stop(NULL);
}

static void test_slow_call_draws_and_erases(void **state)
{
	(void)state;
	char out[16384];
	size_t n = run_for(VD_PROGRESS_DELAY_MS + 450, "mounting m1", out, sizeof(out));
	assert_true(n > 0);
	assert_non_null(strstr(out, "\r| mounting m1 0."));
	assert_non_null(strstr(out, "\r/ mounting m1 0."));   /* redrawn at least once */
	assert_null(strchr(out, '\n'));                        /* never a new line */
	assert_null(strchr(out, '\033'));                      /* no escape codes */
	/* The end: '\r', spaces over the whole line, '\r'. */
	const char *last = strrchr(out, '\r');
	assert_true(last == out + n - 1);
	const char *before = last - 1;
	while (before > out && *before == ' ')
		before--;
	assert_int_equal(*before, '\r');
	assert_int_equal(last - before - 1, (long)strlen("\r| mounting m1 0.0s") - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_long),
		cmocka_unit_test(test_quick_call_prints_nothing),
		cmocka_unit_test(test_slow_call_draws_and_erases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
