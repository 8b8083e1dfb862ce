/* test_store.c — the document store: CAS semantics, keys, listing, threads,
 * crash safety at every write step (forked children), and the on-disk parser.
 * Each test works in its own mkdtemp directory under /tmp. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../volumed/store.h"
#include "../support/fixture.h"

struct fix {
	char dir[64];
	struct vd_store *store;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vd_test_mkdtemp(f->dir, sizeof(f->dir), "vd-store"), 0);
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_open(f->dir, &f->store, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	vd_store_free(f->store);
	vd_test_rmtree(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fix *f)
{
	struct vd_err err = VD_ERR_INIT;
	vd_store_free(f->store);
	f->store = NULL;
	assert_int_equal(vd_store_open(f->dir, &f->store, &err), 0);
}

static json_t *doc_v(const char *v)
{
	return json_pack("{s:s, s:[i,i]}", "v", v, "list", 1, 2);
}

static uint64_t put_v(struct vd_store *store, const char *key, const char *v, uint64_t expected)
{
	json_t *doc = doc_v(v);
	uint64_t rev = 0;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_store_put(store, key, doc, expected, &rev, &err);
	json_decref(doc);
	if (r != 0)
		fail_msg("put %s: %d %s", key, r, err.msg);
	return rev;
}

/* Asserts key holds {"v": v} at rev. */
static void assert_doc(struct vd_store *store, const char *key, const char *v, uint64_t rev)
{
	json_t *doc = NULL;
	uint64_t got = 0;
	struct vd_err err = VD_ERR_INIT;
	int r = vd_store_get(store, key, &doc, &got, &err);
	if (r != 0)
		fail_msg("get %s: %d %s", key, r, err.msg);
	assert_int_equal(got, rev);
	assert_string_equal(json_string_value(json_object_get(doc, "v")), v);
	json_decref(doc);
}

static int count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] == '.' && strstr(de->d_name, ".tmp.") != NULL;
	closedir(d);
	return n;
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static char *read_text(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "re");
	assert_non_null(fp);
	static char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void test_put_get_roundtrip(void **state)
{
	struct fix *f = *state;
	assert_int_equal(put_v(f->store, "vol1", "a", 0), 1);
	assert_doc(f->store, "vol1", "a", 1);
	assert_string_equal(read_text(f->dir, "vol1"),
			    "{\"revision\":1,\"doc\":{\"v\":\"a\",\"list\":[1,2]}}\n");
	assert_int_equal(put_v(f->store, "vol1", "b", 1), 2);
	assert_int_equal(put_v(f->store, "vol1", "c", 2), 3);
	assert_doc(f->store, "vol1", "c", 3);
	reopen(f);
	assert_doc(f->store, "vol1", "c", 3);

	/* ret_rev may be NULL; the doc is the caller's. */
	json_t *doc = NULL;
	assert_int_equal(vd_store_get(f->store, "vol1", &doc, NULL, NULL), 0);
	json_object_set_new(doc, "mine", json_true());
	json_decref(doc);
	assert_int_equal(count_temps(f->dir), 0);
}

static void test_cas_conflicts(void **state)
{
	struct fix *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *doc = doc_v("x");
	uint64_t rev = 99;

	assert_int_equal(vd_store_put(f->store, "k", doc, 3, &rev, &err), -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, "\"k\""));
	assert_int_equal(rev, 99);

	assert_int_equal(vd_store_put(f->store, "k", doc, 0, &rev, &err), 0);
	assert_int_equal(rev, 1);
	rev = 99;
	vd_err_clear(&err);
	assert_int_equal(vd_store_put(f->store, "k", doc, 0, &rev, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "revision 1"));
	assert_int_equal(rev, 99);

	vd_err_clear(&err);
	assert_int_equal(vd_store_put(f->store, "k", doc, 2, &rev, &err), -ESTALE);
	assert_non_null(strstr(err.msg, "revision 1"));
	assert_int_equal(vd_store_put(f->store, "k", doc, 1, &rev, &err), 0);
	assert_int_equal(rev, 2);
	assert_int_equal(vd_store_put(f->store, "k", doc, 1, NULL, NULL), -ESTALE);
	json_decref(doc);
	assert_doc(f->store, "k", "x", 2);
}

static void test_get_absent_and_bad_docs(void **state)
{
	struct fix *f = *state;
	struct vd_err err = VD_ERR_INIT;
	json_t *doc = (json_t *)0x1;
	uint64_t rev = 7;
	assert_int_equal(vd_store_get(f->store, "nope", &doc, &rev, &err), -ENOENT);
	assert_ptr_equal(doc, (json_t *)0x1);
	assert_int_equal(rev, 7);
	assert_non_null(strstr(err.msg, "nope"));

	json_t *arr = json_array();
	assert_int_equal(vd_store_put(f->store, "k", arr, 0, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "object"));
	assert_int_equal(vd_store_put(f->store, "k", NULL, 0, NULL, &err), -EINVAL);
	json_decref(arr);

	/* A corrupt file is reported as such, and a delete at 0 clears it. */
	write_file(f->dir, "bad", "{\"revision\":1,\"doc\":");
	assert_int_equal(vd_store_get(f->store, "bad", &doc, &rev, &err), -EIO);
	assert_non_null(strstr(err.msg, "corrupt"));
	json_t *d = doc_v("x");
	assert_int_equal(vd_store_put(f->store, "bad", d, 0, NULL, &err), -EIO);
	json_decref(d);
	assert_int_equal(vd_store_delete(f->store, "bad", 0, &err), 0);
	assert_int_equal(put_v(f->store, "bad", "ok", 0), 1);
}

static void test_delete(void **state)
{
	struct fix *f = *state;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_delete(f->store, "k", 0, &err), -ENOENT);
	assert_int_equal(vd_store_delete(f->store, "k", 1, &err), -ENOENT);
	put_v(f->store, "k", "a", 0);
	put_v(f->store, "k", "b", 1);
	assert_int_equal(vd_store_delete(f->store, "k", 1, &err), -ESTALE);
	assert_doc(f->store, "k", "b", 2);
	assert_int_equal(vd_store_delete(f->store, "k", 2, &err), 0);
	assert_int_equal(vd_store_get(f->store, "k", NULL, NULL, &err), -ENOENT);
	char path[128];
	snprintf(path, sizeof(path), "%s/k", f->dir);
	assert_int_equal(access(path, F_OK), -1);

	/* Recreated, it starts again at revision 1; delete at 0 takes any. */
	assert_int_equal(put_v(f->store, "k", "c", 0), 1);
	put_v(f->store, "k", "d", 1);
	assert_int_equal(vd_store_delete(f->store, "k", 0, &err), 0);
	assert_int_equal(vd_store_delete(f->store, "k", 0, &err), -ENOENT);
}

static void test_bad_keys(void **state)
{
	struct fix *f = *state;
	char long_key[300];
	memset(long_key, 'a', sizeof(long_key));
	long_key[256] = '\0';
	const char *bad[] = { "", "a/b", "/abs", ".hidden", ".", "..", "a/", long_key };
	json_t *doc = doc_v("x");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vd_err err = VD_ERR_INIT;
		assert_int_equal(vd_store_put(f->store, bad[i], doc, 0, NULL, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "1 to 255 bytes"));
		assert_int_equal(vd_store_get(f->store, bad[i], NULL, NULL, &err), -EINVAL);
		assert_int_equal(vd_store_delete(f->store, bad[i], 0, &err), -EINVAL);
	}
	assert_int_equal(vd_store_put(f->store, NULL, doc, 0, NULL, NULL), -EINVAL);
	json_decref(doc);

	/* The longest key, and keys that look like store file names. */
	long_key[255] = '\0';
	const char *good[] = { long_key, "a.json", "x.tmp.1", "with space", "a..b", "-" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(put_v(f->store, good[i], good[i], 0), 1);
		assert_int_equal(put_v(f->store, good[i], good[i], 1), 2);
	}
	reopen(f);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_doc(f->store, good[i], good[i], 2);
}

struct seen {
	int count;
	int stop_at;
	unsigned char hit[10000];
};

static int visit(const char *key, json_t *doc, uint64_t rev, void *userdata)
{
	struct seen *s = userdata;
	int i;
	assert_int_equal(sscanf(key, "key%d", &i), 1);
	assert_true(i >= 0 && i < 10000);
	assert_false(s->hit[i]);
	s->hit[i] = 1;
	assert_int_equal(json_integer_value(json_object_get(doc, "i")), i);
	assert_int_equal(rev, (uint64_t)(i % 3 + 1));
	s->count++;
	return s->count == s->stop_at ? 42 : 0;
}

static void test_foreach(void **state)
{
	struct fix *f = *state;
	enum { N = 200 };
	for (int i = 0; i < N; i++) {
		char key[32];
		snprintf(key, sizeof(key), "key%d", i);
		json_t *doc = json_pack("{s:i}", "i", i);
		uint64_t rev = 0;
		for (int n = 0; n <= i % 3; n++)
			assert_int_equal(vd_store_put(f->store, key, doc, rev, &rev, NULL), 0);
		json_decref(doc);
	}
	/* Everything that is not a document is passed over. */
	write_file(f->dir, ".hidden.json", "{}");
	write_file(f->dir, ".key1.tmp.5.6", "{\"revision\":1,\"doc\":{\"i\":1}}");
	write_file(f->dir, ".json", "{}");
	char sub[128];

	struct seen *s = calloc(1, sizeof(*s));
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_foreach(f->store, visit, s, &err), 0);
	assert_int_equal(s->count, N);
	assert_string_equal(err.msg, "");

	/* Unreadable documents are skipped and named in the message. */
	write_file(f->dir, "broken", "{\"revision\":0,\"doc\":{}}");
	snprintf(sub, sizeof(sub), "%s/dir", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	memset(s, 0, sizeof(*s));
	assert_int_equal(vd_store_foreach(f->store, visit, s, &err), 0);
	assert_int_equal(s->count, N);
	assert_int_equal(err.code, 0);
	assert_non_null(strstr(err.msg, "skipped 2"));

	/* A non-zero return stops the walk and is returned. */
	memset(s, 0, sizeof(*s));
	s->stop_at = 10;
	assert_int_equal(vd_store_foreach(f->store, visit, s, NULL), 42);
	assert_int_equal(s->count, 10);
	free(s);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Documents of sizes around the read buffer's steps and the 1 MiB bound. */
static char *padded_doc(size_t total)
{
	const char *head = "{\"revision\":1,\"doc\":{\"p\":\"", *tail = "\"}}\n";
	size_t fixed = strlen(head) + strlen(tail);
	char *text = malloc(total + 1);
	assert_true(total >= fixed);
	strcpy(text, head);
	memset(text + strlen(head), 'p', total - fixed);
	strcpy(text + total - strlen(tail), tail);
	return text;
}

static int count_docs(const char *key, json_t *doc, uint64_t rev, void *userdata)
{
	(void)key;
	(void)doc;
	(void)rev;
	++*(int *)userdata;
	return 0;
}

static void test_read_sizes(void **state)
{
	struct fix *f = *state;
	static const size_t sizes[] = { 100, 16383, 16384, 16385, 32768, 100000,
					1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char name[32], key[32];
		snprintf(key, sizeof(key), "size%zu", sizes[i]);
		snprintf(name, sizeof(name), "%s", key);
		char *text = padded_doc(sizes[i]);
		write_file(f->dir, name, text);
		free(text);
		json_t *doc;
		struct vd_err err = VD_ERR_INIT;
		int r = vd_store_get(f->store, key, &doc, NULL, &err);
		if (sizes[i] > 1024 * 1024) {
			assert_int_equal(r, -EFBIG);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(json_string_length(json_object_get(doc, "p")),
				 sizes[i] - strlen("{\"revision\":1,\"doc\":{\"p\":\"\"}}\n"));
		json_decref(doc);
	}
	int n = 0;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_foreach(f->store, count_docs, &n, &err), 0);
	assert_int_equal(n, 7);
	assert_non_null(strstr(err.msg, "skipped 2"));
}

/* 10,000 documents, written straight to disk (no fsync) to keep it quick. */
static void test_foreach_10000(void **state)
{
	struct fix *f = *state;
	for (int i = 0; i < 10000; i++) {
		char name[32];
		snprintf(name, sizeof(name), "key%d", i);
		json_t *doc = json_pack("{s:i, s:s}", "i", i, "pad", "0123456789abcdef0123456789abcdef");
		char *text = vd_store_doc_dump(doc, (uint64_t)(i % 3 + 1));
		assert_non_null(text);
		write_file(f->dir, name, text);
		free(text);
		json_decref(doc);
	}
	struct seen *s = calloc(1, sizeof(*s));
	struct vd_err err = VD_ERR_INIT;
	double t0 = now_s();
	assert_int_equal(vd_store_foreach(f->store, visit, s, &err), 0);
	double dt = now_s() - t0;
	assert_int_equal(s->count, 10000);
	assert_true(dt < 10.0);
	free(s);
}

/* Threads: different keys in parallel, one key under contention. */
enum { THREADS = 8, ROUNDS = 20 };

struct race {
	struct vd_store *store;
	pthread_barrier_t *barrier;
	int id;
	uint64_t expected;
	int rc;
};

/* Runs fn on THREADS threads released together; each must end with rc 0. */
static void race_all(struct vd_store *store, void *(*fn)(void *))
{
	pthread_t th[THREADS];
	struct race t[THREADS];
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		t[i] = (struct race){ store, &barrier, i, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, fn, &t[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc, 0);
	}
	pthread_barrier_destroy(&barrier);
}

static void *own_keys(void *arg)
{
	struct race *t = arg;
	char key[32];
	snprintf(key, sizeof(key), "thread%d", t->id);
	pthread_barrier_wait(t->barrier);
	uint64_t rev = 0;
	for (int i = 0; i < ROUNDS && t->rc == 0; i++) {
		json_t *doc = json_pack("{s:i}", "n", i);
		t->rc = vd_store_put(t->store, key, doc, rev, &rev, NULL);
		json_decref(doc);
	}
	return NULL;
}

static void test_threads_different_keys(void **state)
{
	struct fix *f = *state;
	race_all(f->store, own_keys);
	for (int i = 0; i < THREADS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "thread%d", i);
		json_t *doc;
		uint64_t rev;
		assert_int_equal(vd_store_get(f->store, key, &doc, &rev, NULL), 0);
		assert_int_equal(rev, ROUNDS);
		assert_int_equal(json_integer_value(json_object_get(doc, "n")), ROUNDS - 1);
		json_decref(doc);
	}
	assert_int_equal(count_temps(f->dir), 0);
}

static void *cas_once(void *arg)
{
	struct race *t = arg;
	json_t *doc = json_pack("{s:i}", "winner", t->id);
	pthread_barrier_wait(t->barrier);
	t->rc = vd_store_put(t->store, "shared", doc, t->expected, NULL, NULL);
	json_decref(doc);
	return NULL;
}

static void test_threads_one_key_one_winner(void **state)
{
	struct fix *f = *state;
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (uint64_t round = 0; round < ROUNDS; round++) {
		pthread_t th[THREADS];
		struct race t[THREADS];
		for (int i = 0; i < THREADS; i++) {
			t[i] = (struct race){ f->store, &barrier, i, round, 0 };
			assert_int_equal(pthread_create(&th[i], NULL, cas_once, &t[i]), 0);
		}
		int wins = 0, winner = -1;
		for (int i = 0; i < THREADS; i++) {
			pthread_join(th[i], NULL);
			if (t[i].rc == 0) {
				wins++;
				winner = i;
			} else {
				assert_int_equal(t[i].rc, round == 0 ? -EEXIST : -ESTALE);
			}
		}
		assert_int_equal(wins, 1);
		json_t *doc;
		uint64_t rev;
		assert_int_equal(vd_store_get(f->store, "shared", &doc, &rev, NULL), 0);
		assert_int_equal(rev, round + 1);
		assert_int_equal(json_integer_value(json_object_get(doc, "winner")), winner);
		json_decref(doc);
	}
	pthread_barrier_destroy(&barrier);
}

/* Read-modify-write with retry: no increment may be lost. */
static void *increment(void *arg)
{
	struct race *t = arg;
	pthread_barrier_wait(t->barrier);
	for (int i = 0; i < ROUNDS && t->rc == 0; i++) {
		for (;;) {
			json_t *doc;
			uint64_t rev;
			t->rc = vd_store_get(t->store, "counter", &doc, &rev, NULL);
			if (t->rc)
				break;
			json_int_t n = json_integer_value(json_object_get(doc, "n"));
			json_object_set_new(doc, "n", json_integer(n + 1));
			t->rc = vd_store_put(t->store, "counter", doc, rev, NULL, NULL);
			json_decref(doc);
			if (t->rc != -ESTALE)
				break;
		}
	}
	return NULL;
}

static void test_threads_counter(void **state)
{
	struct fix *f = *state;
	json_t *zero = json_pack("{s:i}", "n", 0);
	assert_int_equal(vd_store_put(f->store, "counter", zero, 0, NULL, NULL), 0);
	json_decref(zero);
	race_all(f->store, increment);
	json_t *doc;
	uint64_t rev;
	assert_int_equal(vd_store_get(f->store, "counter", &doc, &rev, NULL), 0);
	assert_int_equal(json_integer_value(json_object_get(doc, "n")), THREADS * ROUNDS);
	assert_int_equal(rev, THREADS * ROUNDS + 1);
	json_decref(doc);
}

static void test_open_removes_temps(void **state)
{
	struct fix *f = *state;
	put_v(f->store, "k", "kept", 0);
	write_file(f->dir, ".k.tmp.1234.0", "{\"revision\":2,\"doc\":{\"v\":\"torn");
	write_file(f->dir, ".other.tmp.1.2", "");
	write_file(f->dir, ".keep", "a dot file that is not a temporary file");
	assert_int_equal(count_temps(f->dir), 2);
	reopen(f);
	assert_int_equal(count_temps(f->dir), 0);
	assert_string_equal(read_text(f->dir, ".keep"), "a dot file that is not a temporary file");
	assert_doc(f->store, "k", "kept", 1);
}

static void test_open_errors(void **state)
{
	(void)state;
	struct vd_store *store = (struct vd_store *)0x1;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_open("/nonexistent-vd/a/b", &store, &err), -ENOENT);
	assert_ptr_equal(store, (struct vd_store *)0x1);
	assert_non_null(strstr(err.msg, "/nonexistent-vd/a/b"));
	assert_int_equal(vd_store_open("/dev/null", &store, &err), -ENOTDIR);
	assert_int_equal(vd_store_open("", &store, &err), -EINVAL);
	vd_store_free(NULL);

	/* A new directory is created with mode 0700. */
	char dir[64], sub[96];
	assert_int_equal(vd_test_mkdtemp(dir, sizeof(dir), "vd-store"), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	assert_int_equal(vd_store_open(sub, &store, &err), 0);
	struct stat st;
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	vd_store_free(store);
	vd_test_rmtree(dir);
}

/* Crash safety: a child dies right after step 1..4 of a put over an
 * existing document; the store must then hold the old (steps 1-2) or the
 * new (steps 3-4) document, and reopening clears the temporary file. */
static int crash_step;

static void crash_hook(int step)
{
	if (step == crash_step)
		_exit(100 + step);
}

static void test_crash_at_each_step(void **state)
{
	struct fix *f = *state;
	for (int step = 1; step <= 4; step++) {
		char key[16];
		snprintf(key, sizeof(key), "crash%d", step);
		put_v(f->store, key, "old", 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct vd_store *store;
			if (vd_store_open(f->dir, &store, NULL) != 0)
				_exit(1);
			crash_step = step;
			vd_store_step_hook = crash_hook;
			json_t *doc = doc_v("new");
			vd_store_put(store, key, doc, 1, NULL, NULL);
			_exit(2);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 100 + step);
		assert_int_equal(count_temps(f->dir), step <= 2 ? 1 : 0);

		reopen(f);
		assert_int_equal(count_temps(f->dir), 0);
		if (step <= 2)
			assert_doc(f->store, key, "old", 1);
		else
			assert_doc(f->store, key, "new", 2);
		/* The store goes on from whatever survived. */
		uint64_t rev = step <= 2 ? 1 : 2;
		assert_int_equal(put_v(f->store, key, "after", rev), rev + 1);
	}
	assert_null(vd_store_step_hook);
}

/* The on-disk form. */
static void test_parse_valid(void **state)
{
	(void)state;
	const char *text = " {\n \"doc\": {\"a\": [1, {\"b\": null}]},\n \"revision\": 9223372036854775807 }\n";
	json_t *doc = NULL;
	uint64_t rev = 0;
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_doc_parse(text, strlen(text), &doc, &rev, &err), 0);
	assert_int_equal(rev, INT64_MAX);
	assert_true(json_is_array(json_object_get(doc, "a")));
	json_decref(doc);

	/* Not NUL-terminated: only len bytes count. */
	const char buf[] = "{\"revision\":3,\"doc\":{}}garbage";
	assert_int_equal(vd_store_doc_parse(buf, 23, &doc, &rev, &err), 0);
	assert_int_equal(rev, 3);
	assert_int_equal(json_object_size(doc), 0);
	json_decref(doc);
	assert_int_equal(vd_store_doc_parse(buf, 23, NULL, NULL, NULL), 0);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "", "not valid JSON" },
		{ "null", "is null" },
		{ "[]", "is an array" },
		{ "\"str\"", "is a string" },
		{ "{}", "no \"revision\"" },
		{ "{\"revision\":1}", "no \"doc\"" },
		{ "{\"doc\":{}}", "no \"revision\"" },
		{ "{\"revision\":0,\"doc\":{}}", "\"revision\" is 0" },
		{ "{\"revision\":-5,\"doc\":{}}", "\"revision\" is -5" },
		{ "{\"revision\":1.0,\"doc\":{}}", "is a number" },
		{ "{\"revision\":\"1\",\"doc\":{}}", "is a string" },
		{ "{\"revision\":true,\"doc\":{}}", "is a boolean" },
		{ "{\"revision\":1,\"doc\":[]}", "\"doc\" is an array" },
		{ "{\"revision\":1,\"doc\":null}", "\"doc\" is null" },
		{ "{\"revision\":1,\"doc\":{},\"extra\":1}", "unknown member \"extra\"" },
		{ "{\"revision\":1,\"revision\":2,\"doc\":{}}", "not valid JSON" },
		{ "{\"revision\":1,\"doc\":{}} trailing", "not valid JSON" },
		{ "{\"revision\":1,\"doc\":{", "not valid JSON" },
		{ "{\"revision\":9223372036854775808,\"doc\":{}}", "not valid JSON" },
		{ "{\"revision\":1,\"doc\":{\"a\":\"\xff\"}}", "not valid JSON" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc = (json_t *)0x1;
		uint64_t rev = 77;
		struct vd_err err = VD_ERR_INIT;
		int r = vd_store_doc_parse(cases[i].text, strlen(cases[i].text), &doc, &rev, &err);
		if (r != -EINVAL || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu (%s): %d \"%s\"", i, cases[i].text, r, err.msg);
		assert_non_null(strstr(err.msg, "\"revision\""));
		assert_ptr_equal(doc, (json_t *)0x1);
		assert_int_equal(rev, 77);
	}
	/* An embedded NUL byte. */
	const char nul[] = "{\"revision\":1,\0\"doc\":{}}";
	assert_int_equal(vd_store_doc_parse(nul, sizeof(nul) - 1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(vd_store_doc_parse(NULL, 0, NULL, NULL, NULL), -EINVAL);
}

static void test_parse_too_large(void **state)
{
	(void)state;
	size_t len = 1024 * 1024 + 1;
	char *big = malloc(len);
	memset(big, ' ', len);
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_doc_parse(big, len, NULL, NULL, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "1048576"));
	free(big);
}

static void test_put_too_large(void **state)
{
	struct fix *f = *state;
	size_t len = 1024 * 1024;
	char *big = malloc(len + 1);
	memset(big, 'x', len);
	big[len] = '\0';
	json_t *doc = json_pack("{s:s}", "big", big);
	struct vd_err err = VD_ERR_INIT;
	assert_int_equal(vd_store_put(f->store, "big", doc, 0, NULL, &err), -EFBIG);
	assert_int_equal(vd_store_get(f->store, "big", NULL, NULL, NULL), -ENOENT);
	assert_int_equal(count_temps(f->dir), 0);
	json_decref(doc);
	free(big);
}

static void test_dump(void **state)
{
	(void)state;
	json_t *doc = json_pack("{s:[i,i], s:{s:b}}", "a", 1, 2, "o", "t", 1);
	char *text = vd_store_doc_dump(doc, 7);
	assert_string_equal(text, "{\"revision\":7,\"doc\":{\"a\":[1,2],\"o\":{\"t\":true}}}\n");
	json_t *back;
	uint64_t rev;
	assert_int_equal(vd_store_doc_parse(text, strlen(text), &back, &rev, NULL), 0);
	assert_int_equal(rev, 7);
	assert_true(json_equal(back, doc));
	json_decref(back);
	free(text);
	assert_null(vd_store_doc_dump(doc, 0));
	assert_null(vd_store_doc_dump(doc, (uint64_t)INT64_MAX + 1));
	json_decref(doc);
	json_t *arr = json_array();
	assert_null(vd_store_doc_dump(arr, 1));
	assert_null(vd_store_doc_dump(NULL, 1));
	json_decref(arr);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_put_get_roundtrip),
		T(test_cas_conflicts),
		T(test_get_absent_and_bad_docs),
		T(test_delete),
		T(test_bad_keys),
		T(test_foreach),
		T(test_read_sizes),
		T(test_foreach_10000),
		T(test_threads_different_keys),
		T(test_threads_one_key_one_winner),
		T(test_threads_counter),
		T(test_open_removes_temps),
		cmocka_unit_test(test_open_errors),
		T(test_crash_at_each_step),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_too_large),
		T(test_put_too_large),
		cmocka_unit_test(test_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
