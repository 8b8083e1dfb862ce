/* store.c — crash-safe persistent documents, one JSON file per key.
 *
 * <dir>/<key> holds {"revision": N, "doc": {...}}. A write goes to a
 * temporary file <dir>/.<key>.tmp.<pid>.<seq> (created O_EXCL), which is
 * fsynced, renamed over the document, and then the directory is fsynced: a
 * crash leaves the old or the new document. vd_store_open removes the
 * temporary files a crash left behind.
 *
 * Threads and locks: every call is thread-safe. Calls on one key serialize
 * on one of STRIPES mutexes chosen by a hash of the key, so calls on
 * different keys run in parallel. vd_store_foreach takes no lock: renames
 * are atomic, so each document it reads is whole, old or new. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "json_util.h"
#include "log.h"

#define STRIPES 64
#define DOC_MAX (1024 * 1024)
#define DOC_SUFFIX ""
#define DOC_SUFFIX_LEN (sizeof(DOC_SUFFIX) - 1)
#define TMP_MARK ".tmp."
/* A document's file name is its key, so a key is at most: */
#define KEY_MAX 255
#define KEY_RULE "a key is 1 to 255 bytes, contains no '/' and does not start with '.'"
/* A temporary file name holds at most this much of its key, so that
 * "." KEY TMP_MARK "%x.%x" (two 32-bit values) fits in NAME_MAX. */
#define TMP_KEY_MAX (NAME_MAX - 1 - (int)(sizeof(TMP_MARK) - 1) - 17)

_Static_assert(KEY_MAX + DOC_SUFFIX_LEN <= NAME_MAX, "document file names fit NAME_MAX");
_Static_assert(TMP_KEY_MAX > 0, "temporary file names fit NAME_MAX");

void (*vd_store_step_hook)(int step);

struct vd_store {
	char *dir;
	int dirfd;
	pthread_mutex_t locks[STRIPES];
};

/* A growable read buffer, reused across documents by foreach. */
struct buf {
	char *data;
	size_t cap;
};

static atomic_uint tmp_seq;

static void step_done(int step)
{
	if (vd_store_step_hook)
		vd_store_step_hook(step);
}

static int key_check(const char *key, struct vd_err *err)
{
	if (!key || !key[0])
		return vd_err_set(err, -EINVAL, "store key is empty: " KEY_RULE);
	size_t len = strnlen(key, KEY_MAX + 1);
	if (len > KEY_MAX)
		return vd_err_set(err, -EINVAL, "store key \"%.32s...\" is too long: " KEY_RULE, key);
	if (key[0] == '.' || strchr(key, '/'))
		return vd_err_set(err, -EINVAL, "store key \"%s\" is not allowed: " KEY_RULE, key);
	return 0;
}

/* name must hold NAME_MAX + 1 bytes; key has passed key_check. */
static void doc_name(const char *key, char *name)
{
	snprintf(name, NAME_MAX + 1, "%s" DOC_SUFFIX, key);
}

/* The key of a document file name into key (NAME_MAX + 1 bytes); false for
 * temporary files and dot files. */
static bool doc_key(const char *name, char *key)
{
	size_t len = strlen(name);
	if (name[0] == '.' || len <= DOC_SUFFIX_LEN || len - DOC_SUFFIX_LEN > KEY_MAX)
		return false;
	if (strcmp(name + len - DOC_SUFFIX_LEN, DOC_SUFFIX) != 0)
		return false;
	memcpy(key, name, len - DOC_SUFFIX_LEN);
	key[len - DOC_SUFFIX_LEN] = '\0';
	return true;
}

static bool is_temp_name(const char *name)
{
	return name[0] == '.' && strstr(name + 1, TMP_MARK);
}

/* FNV-1a over the key picks the stripe. */
static pthread_mutex_t *key_lock(struct vd_store *store, const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &store->locks[h % STRIPES];
}

#define SHAPE "expected {\"revision\": N >= 1, \"doc\": {...}}"

static int doc_shape_check(json_t *root, struct vd_err *err)
{
	if (!json_is_object(root))
		return vd_err_set(err, -EINVAL, "store document is %s: " SHAPE, vd_json_type_name(root));
	const char *name;
	json_t *value;
	json_object_foreach(root, name, value) {
		if (strcmp(name, "revision") != 0 && strcmp(name, "doc") != 0)
			return vd_err_set(err, -EINVAL, "store document has unknown member \"%.64s\": "
					  "only \"revision\" and \"doc\" are allowed", name);
	}
	const json_t *rev = json_object_get(root, "revision");
	const json_t *doc = json_object_get(root, "doc");
	if (!rev)
		return vd_err_set(err, -EINVAL, "store document has no \"revision\": " SHAPE);
	if (!json_is_integer(rev))
		return vd_err_set(err, -EINVAL, "store document \"revision\" is %s: " SHAPE,
				  vd_json_type_name(rev));
	if (json_integer_value(rev) < 1)
		return vd_err_set(err, -EINVAL, "store document \"revision\" is %" JSON_INTEGER_FORMAT
				  ": " SHAPE, json_integer_value(rev));
	if (!doc)
		return vd_err_set(err, -EINVAL, "store document has no \"doc\": " SHAPE);
	if (!json_is_object(doc))
		return vd_err_set(err, -EINVAL, "store document \"doc\" is %s: " SHAPE,
				  vd_json_type_name(doc));
	return 0;
}

int vd_store_doc_parse(const char *bytes, size_t len, json_t **ret_doc,
		       uint64_t *ret_rev, struct vd_err *err)
{
	if (len > DOC_MAX)
		return vd_err_set(err, -EFBIG, "store document of %zu bytes is too large: "
				  "at most %d bytes allowed", len, DOC_MAX);
	json_error_t jerr;
	json_t *root = json_loadb(bytes, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root)
		return vd_err_set(err, -EINVAL, "store document is not valid JSON (%s, line %d "
				  "column %d): " SHAPE, jerr.text, jerr.line, jerr.column);
	int r = doc_shape_check(root, err);
	if (r == 0) {
		if (ret_rev)
			*ret_rev = (uint64_t)json_integer_value(json_object_get(root, "revision"));
		if (ret_doc)
			*ret_doc = json_incref(json_object_get(root, "doc"));
	}
	json_decref(root);
	return r;
}

char *vd_store_doc_dump(const json_t *doc, uint64_t rev)
{
	if (!json_is_object(doc) || rev < 1 || rev > INT64_MAX)
		return NULL;
	char *body = json_dumps(doc, JSON_COMPACT);
	if (!body)
		return NULL;
	char *out;
	if (asprintf(&out, "{\"revision\":%" PRIu64 ",\"doc\":%s}\n", rev, body) < 0)
		out = NULL;
	free(body);
	return out;
}

/* Reads the file name in dirfd whole into b; -EFBIG past DOC_MAX. */
static int read_file(int dirfd, const char *name, struct buf *b, size_t *ret_len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	int r = 0;
	while (r == 0 && len <= DOC_MAX) {
		if (len == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 16384;
			char *p = realloc(b->data, cap);
			if (!p) {
				r = -ENOMEM;
				break;
			}
			b->data = p;
			b->cap = cap;
		}
		size_t room = b->cap - len;
		ssize_t n = read(fd, b->data + len, room);
		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n >= 0)
			len += (size_t)n;
		/* A regular file reads short only at its end: no read for EOF. */
		if (n >= 0 && (size_t)n < room)
			break;
	}
	close(fd);
	if (r == 0 && len > DOC_MAX)
		r = -EFBIG;
	if (r == 0)
		*ret_len = len;
	return r;
}

/* Reads and parses one document file. -ENOENT (absent) sets no message;
 * a file that cannot be read or parsed is -EIO or -EFBIG with a message. */
static int load_doc(struct vd_store *store, const char *name, struct buf *b,
		    json_t **ret_doc, uint64_t *ret_rev, struct vd_err *err)
{
	size_t len = 0;
	int r = read_file(store->dirfd, name, b, &len);
	if (r == -ENOENT)
		return r;
	if (r == -EFBIG)
		return vd_err_set(err, r, "store document %s/%s is larger than %d bytes",
				  store->dir, name, DOC_MAX);
	if (r < 0)
		return vd_err_set(err, r, "store document %s/%s: cannot read: %s",
				  store->dir, name, strerror(-r));
	struct vd_err perr = VD_ERR_INIT;
	r = vd_store_doc_parse(b->data, len, ret_doc, ret_rev, &perr);
	if (r < 0)
		return vd_err_set(err, -EIO, "store document %s/%s is corrupt: %s",
				  store->dir, name, vd_err_msg(&perr));
	return 0;
}

/* The stored revision of a document, 0 when absent. */
static int current_rev(struct vd_store *store, const char *name, uint64_t *ret_rev,
		       struct vd_err *err)
{
	struct buf b = { NULL, 0 };
	uint64_t rev = 0;
	int r = load_doc(store, name, &b, NULL, &rev, err);
	free(b.data);
	if (r < 0 && r != -ENOENT)
		return r;
	*ret_rev = r == -ENOENT ? 0 : rev;
	return 0;
}

/* Compare-and-swap check of the stored revision cur (0: absent). */
static int rev_check(const char *key, uint64_t cur, uint64_t expected, struct vd_err *err)
{
	if (cur == 0 && expected != 0)
		return vd_err_set(err, -ENOENT, "store key \"%s\" has no document, expected "
				  "revision %" PRIu64 "; use revision 0 to create it", key, expected);
	if (cur != 0 && expected == 0)
		return vd_err_set(err, -EEXIST, "store key \"%s\" already exists at revision %"
				  PRIu64 "; pass that revision to update it", key, cur);
	if (cur != expected)
		return vd_err_set(err, -ESTALE, "store key \"%s\" is at revision %" PRIu64
				  ", not the expected %" PRIu64, key, cur, expected);
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates a new temporary file for key; its name goes to tmp
 * (NAME_MAX + 1 bytes). */
static int tmp_create(struct vd_store *store, const char *key, char *tmp, struct vd_err *err)
{
	int fd = -1;
	for (int tries = 0; tries < 16 && fd < 0; tries++) {
		snprintf(tmp, NAME_MAX + 1, ".%.*s" TMP_MARK "%x.%x", TMP_KEY_MAX, key,
			 (unsigned)getpid(), atomic_fetch_add(&tmp_seq, 1));
		fd = openat(store->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int r = -errno;
		return vd_err_set(err, r, "store key \"%s\": cannot create a temporary file in %s: %s",
				  key, store->dir, strerror(-r));
	}
	return fd;
}

static int dir_sync(struct vd_store *store, struct vd_err *err)
{
	if (fsync(store->dirfd) == 0)
		return 0;
	int r = -errno;
	return vd_err_set(err, r, "store directory %s: fsync: %s", store->dir, strerror(-r));
}

/* Writes bytes as the document name: temporary file, fsync, rename, fsync
 * of the directory. A failed directory fsync is an error although the new
 * document is already in place. */
static int write_atomic(struct vd_store *store, const char *key, const char *name,
			const char *bytes, struct vd_err *err)
{
	char tmp[NAME_MAX + 1];
	int fd = tmp_create(store, key, tmp, err);
	if (fd < 0)
		return fd;
	const char *what = "write";
	int r = write_all(fd, bytes, strlen(bytes));
	if (r == 0) {
		step_done(1);
		what = "fsync";
		r = fsync(fd) < 0 ? -errno : 0;
	}
	if (r == 0)
		step_done(2);
	if (close(fd) < 0 && r == 0) {
		what = "close";
		r = -errno;
	}
	if (r == 0 && renameat(store->dirfd, tmp, store->dirfd, name) < 0) {
		what = "rename";
		r = -errno;
	}
	if (r < 0) {
		unlinkat(store->dirfd, tmp, 0);
		return vd_err_set(err, r, "store key \"%s\": %s of %s/%s: %s", key, what,
				  store->dir, tmp, strerror(-r));
	}
	step_done(3);
	r = dir_sync(store, err);
	if (r == 0)
		step_done(4);
	return r;
}

int vd_store_put(struct vd_store *store, const char *key, const json_t *doc,
		 uint64_t expected_rev, uint64_t *ret_rev, struct vd_err *err)
{
	int r = key_check(key, err);
	if (r < 0)
		return r;
	if (!json_is_object(doc))
		return vd_err_set(err, -EINVAL, "store key \"%s\": the document is %s, only an "
				  "object is allowed", key, doc ? vd_json_type_name(doc) : "missing");
	char name[NAME_MAX + 1];
	doc_name(key, name);
	pthread_mutex_t *lock = key_lock(store, key);
	pthread_mutex_lock(lock);
	uint64_t cur = 0;
	char *bytes = NULL;
	r = current_rev(store, name, &cur, err);
	if (r == 0)
		r = rev_check(key, cur, expected_rev, err);
	if (r == 0 && cur >= INT64_MAX)
		r = vd_err_set(err, -EOVERFLOW, "store key \"%s\": revision %" PRIu64
			       " is the last one", key, cur);
	if (r == 0 && !(bytes = vd_store_doc_dump(doc, cur + 1)))
		r = vd_err_set(err, -ENOMEM, "store key \"%s\": out of memory encoding the "
			       "document", key);
	if (r == 0 && strlen(bytes) > DOC_MAX)
		r = vd_err_set(err, -EFBIG, "store key \"%s\": the document is %zu bytes, at most "
			       "%d allowed", key, strlen(bytes), DOC_MAX);
	if (r == 0)
		r = write_atomic(store, key, name, bytes, err);
	pthread_mutex_unlock(lock);
	free(bytes);
	if (r == 0 && ret_rev)
		*ret_rev = cur + 1;
	return r;
}

int vd_store_get(struct vd_store *store, const char *key, json_t **ret_doc,
		 uint64_t *ret_rev, struct vd_err *err)
{
	int r = key_check(key, err);
	if (r < 0)
		return r;
	char name[NAME_MAX + 1];
	doc_name(key, name);
	struct buf b = { NULL, 0 };
	pthread_mutex_t *lock = key_lock(store, key);
	pthread_mutex_lock(lock);
	r = load_doc(store, name, &b, ret_doc, ret_rev, err);
	pthread_mutex_unlock(lock);
	free(b.data);
	if (r == -ENOENT)
		return vd_err_set(err, r, "store key \"%s\" has no document", key);
	return r;
}

int vd_store_delete(struct vd_store *store, const char *key, uint64_t expected_rev,
		    struct vd_err *err)
{
	int r = key_check(key, err);
	if (r < 0)
		return r;
	char name[NAME_MAX + 1];
	doc_name(key, name);
	pthread_mutex_t *lock = key_lock(store, key);
	pthread_mutex_lock(lock);
	uint64_t cur = 0;
	if (expected_rev != 0) {
		r = current_rev(store, name, &cur, err);
		if (r == 0)
			r = rev_check(key, cur, expected_rev, err);
	}
	if (r == 0 && unlinkat(store->dirfd, name, 0) < 0) {
		r = -errno;
		if (r == -ENOENT)
			vd_err_set(err, r, "store key \"%s\" has no document", key);
		else
			vd_err_set(err, r, "store key \"%s\": unlink %s/%s: %s", key, store->dir,
				   name, strerror(-r));
	}
	if (r == 0)
		r = dir_sync(store, err);
	pthread_mutex_unlock(lock);
	return r;
}

/* A directory stream of its own over the store directory. */
static int dir_stream(struct vd_store *store, DIR **ret_dir, struct vd_err *err)
{
	int fd = openat(store->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return vd_err_set(err, r, "store directory %s: cannot list: %s", store->dir,
				  strerror(-r));
	}
	*ret_dir = d;
	return 0;
}

/* The next entry of d; NULL at the end or on error (*r set). */
static struct dirent *dir_next(struct vd_store *store, DIR *d, int *r, struct vd_err *err)
{
	errno = 0;
	struct dirent *de = readdir(d);
	if (!de && errno) {
		*r = -errno;
		vd_err_set(err, *r, "store directory %s: cannot list: %s", store->dir,
			   strerror(-*r));
	}
	return de;
}

static int remove_temps(struct vd_store *store, struct vd_err *err)
{
	DIR *d;
	int r = dir_stream(store, &d, err);
	if (r < 0)
		return r;
	int removed = 0;
	struct dirent *de;
	while ((de = dir_next(store, d, &r, err))) {
		if (!is_temp_name(de->d_name))
			continue;
		if (unlinkat(store->dirfd, de->d_name, 0) == 0) {
			removed++;
		} else if (errno != ENOENT) {
			r = -errno;
			vd_err_set(err, r, "store directory %s: cannot remove the temporary file "
				   "%s: %s", store->dir, de->d_name, strerror(-r));
			break;
		}
	}
	closedir(d);
	if (r == 0 && removed)
		r = dir_sync(store, err);
	return r;
}

int vd_store_open(const char *dir, struct vd_store **ret_store, struct vd_err *err)
{
	if (!dir || !dir[0])
		return vd_err_set(err, -EINVAL, "store directory is empty: a path is required");
	struct vd_store *store = calloc(1, sizeof(*store));
	if (!store)
		return vd_err_set(err, -ENOMEM, "store directory %s: out of memory", dir);
	store->dirfd = -1;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&store->locks[i], NULL);
	int r = 0;
	store->dir = strdup(dir);
	if (!store->dir) {
		r = vd_err_set(err, -ENOMEM, "store directory %s: out of memory", dir);
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		vd_err_set(err, r, "store directory %s: cannot create: %s", dir, strerror(-r));
		goto fail;
	}
	store->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->dirfd < 0) {
		r = -errno;
		vd_err_set(err, r, "store directory %s: cannot open: %s", dir, strerror(-r));
		goto fail;
	}
	r = remove_temps(store, err);
	if (r < 0)
		goto fail;
	*ret_store = store;
	return 0;
fail:
	vd_store_free(store);
	return r;
}

void vd_store_free(struct vd_store *store)
{
	if (!store)
		return;
	if (store->dirfd >= 0)
		close(store->dirfd);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&store->locks[i]);
	free(store->dir);
	free(store);
}

int vd_store_foreach(struct vd_store *store, vd_store_visit_fn fn, void *userdata,
		     struct vd_err *err)
{
	DIR *d;
	int r = dir_stream(store, &d, err);
	if (r < 0)
		return r;
	struct buf b = { NULL, 0 };
	struct vd_err first = VD_ERR_INIT;
	unsigned skipped = 0;
	struct dirent *de;
	while (r == 0 && (de = dir_next(store, d, &r, err))) {
		char key[NAME_MAX + 1];
		if (!doc_key(de->d_name, key))
			continue;
		json_t *doc;
		uint64_t rev;
		struct vd_err lerr = VD_ERR_INIT;
		int lr = load_doc(store, de->d_name, &b, &doc, &rev, skipped ? &lerr : &first);
		if (lr == -ENOENT)   /* deleted since readdir */
			continue;
		if (lr < 0) {
			skipped++;
			continue;
		}
		r = fn(key, doc, rev, userdata);
		json_decref(doc);
	}
	closedir(d);
	free(b.data);
	if (r == 0 && skipped) {
		vd_err_set(err, 0, "store directory %s: skipped %u unreadable document(s); "
			   "first: %s", store->dir, skipped, vd_err_msg(&first));
		vd_log(VD_LOG_ERROR, "store directory %s: skipped %u unreadable document(s) (left "
		       "as they are: repair or remove them); first: %s", store->dir, skipped,
		       vd_err_msg(&first));
	}
	return r;
}
