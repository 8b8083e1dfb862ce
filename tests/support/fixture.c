/* fixture.c — scaffolding shared by the unit tests and the fuzz targets
 * (see fixture.h). Not thread-safe; no cmocka. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../volumed/log.h"
#include "../../volumed/mount.h"

int vd_test_mkdtemp(char *dir, size_t size, const char *prefix)
{
	int n = snprintf(dir, size, "/tmp/%s-XXXXXX", prefix);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "vd_test_mkdtemp: /tmp/%s-XXXXXX is longer than %zu bytes\n",
			prefix, size - 1);
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(dir)) {
		int r = -errno;
		fprintf(stderr, "vd_test_mkdtemp: %s: %s\n", dir, strerror(-r));
		return r;
	}
	return 0;
}

static int core_open(struct vd_test_core *t, const char *node_id)
{
	struct vd_core_config cfg = { .state_dir = t->dir, .node_id = node_id };
	struct vd_err err = VD_ERR_INIT;
	int r = vd_core_open(&cfg, &t->core, &err);
	if (r < 0) {
		t->core = NULL;
		fprintf(stderr, "vd_core_open(%s, node %s): %d %s\n", t->dir, node_id, r,
			vd_err_msg(&err));
	}
	return r;
}

int vd_test_core_open(struct vd_test_core *t, const char *prefix, const char *node_id)
{
	t->core = NULL;
	int r = vd_test_mkdtemp(t->dir, sizeof(t->dir), prefix);
	if (r < 0)
		return r;
	r = core_open(t, node_id);
	if (r < 0)
		vd_test_core_close(t);
	return r;
}

int vd_test_core_reopen(struct vd_test_core *t, const char *node_id)
{
	vd_core_free(t->core);
	t->core = NULL;
	return core_open(t, node_id);
}

void vd_test_core_close(struct vd_test_core *t)
{
	vd_core_free(t->core);
	t->core = NULL;
	if (t->dir[0]) {
		vd_test_unmount_under(t->dir);
		vd_test_rmtree(t->dir);
		t->dir[0] = '\0';
	}
}

struct vd_test_core *vd_test_core_new(const char *prefix, const char *node_id)
{
	struct vd_test_core *t = calloc(1, sizeof(*t));
	if (!t) {
		fprintf(stderr, "vd_test_core_new: out of memory\n");
		return NULL;
	}
	if (vd_test_core_open(t, prefix, node_id) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

void vd_test_core_free(struct vd_test_core *t)
{
	if (!t)
		return;
	vd_test_core_close(t);
	free(t);
}

static struct vd_test_core shared;

static void shared_close(void)
{
	vd_test_core_close(&shared);
}

struct vd_core *vd_test_core_shared(const char *prefix)
{
	if (shared.core)
		return shared.core;
	vd_log_set_level(VD_LOG_ERROR);
	if (vd_test_core_open(&shared, prefix, "fuzz") < 0)
		abort();
	atexit(shared_close);
	return shared.core;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);   /* keep going: remove as much as can be removed */
	return 0;
}

void vd_test_rmtree(const char *dir)
{
	/* FTW_MOUNT: entries on another file system (a mount a failed test
	 * left) are not even visited, so nothing beyond one is touched. */
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* The mount points at or below dir, in mountinfo order (parents first). */
struct mounts_under {
	const char *dir;
	size_t dir_len;
	char **paths;
	size_t n, cap;
};

static int collect_under(const struct vd_mountinfo_entry *e, void *userdata)
{
	struct mounts_under *m = userdata;
	const char *mp = e->mount_point;
	if (strncmp(mp, m->dir, m->dir_len) != 0 || (mp[m->dir_len] != '\0' && mp[m->dir_len] != '/'))
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		char **bigger = realloc(m->paths, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		m->paths = bigger;
		m->cap = cap;
	}
	if (!(m->paths[m->n] = strdup(mp)))
		return -ENOMEM;
	m->n++;
	return 0;
}

/* The whole of path as a NUL-terminated malloc'd string; NULL on error. */
static char *read_all(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *text = malloc(cap);
	ssize_t n;
	while (text && (n = read(fd, text + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *bigger = realloc(text, cap *= 2);
			if (!bigger)
				free(text);
			text = bigger;
		}
	}
	close(fd);
	if (text) {
		text[len] = '\0';
		*ret_len = len;
	}
	return text;
}

void vd_test_unmount_under(const char *dir)
{
	size_t len = 0;
	char *text = read_all("/proc/self/mountinfo", &len);
	if (!text) {
		fprintf(stderr, "vd_test_unmount_under: /proc/self/mountinfo: %s\n",
			strerror(errno));
		return;
	}
	struct mounts_under m = { .dir = dir, .dir_len = strlen(dir) };
	struct vd_err err = VD_ERR_INIT;
	if (vd_mountinfo_parse(text, len, collect_under, &m, &err) < 0)
		fprintf(stderr, "vd_test_unmount_under: %s\n", vd_err_msg(&err));
	while (m.n > 0) {
		char *mp = m.paths[--m.n];
		if (umount2(mp, MNT_DETACH) < 0)
			fprintf(stderr, "vd_test_unmount_under: %s: %s\n", mp, strerror(errno));
		free(mp);
	}
	free(m.paths);
	free(text);
}

int vd_test_wants_sized_volume(const char *body, size_t len, const char *opts_key)
{
	/* Decoded as the handlers do; anything else is refused before the core. */
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	int sized = json_object_get(json_object_get(root, opts_key), "size") != NULL;
	json_decref(root);
	return sized;
}

struct vd_test_driver *vd_test_driver_new(const char *name, const char *prefix,
					  const char *settings_json)
{
	struct vd_test_driver *t = calloc(1, sizeof(*t));
	struct vd_err err = VD_ERR_INIT;
	json_t *settings = settings_json ? json_loads(settings_json, 0, NULL) : NULL;
	struct vd_driver_env env = { .state_dir = t ? t->dir : NULL, .node_id = "test-node",
				     .settings = settings };
	int r = t && vd_test_mkdtemp(t->dir, sizeof(t->dir), prefix) == 0 ? 0 : -1;
	if (r == 0 && !(t->ops = vd_driver_find(name)))
		r = vd_err_set(&err, -ENOENT, "no driver %s", name);
	if (r == 0)
		r = t->ops->init(&env, &t->priv, &err);
	json_decref(settings);
	if (r < 0) {
		fprintf(stderr, "driver %s: init: %s\n", name, vd_err_msg(&err));
		if (t && t->dir[0])
			vd_test_rmtree(t->dir);
		free(t);
		return NULL;
	}
	return t;
}

void vd_test_driver_free(struct vd_test_driver *t)
{
	if (!t)
		return;
	if (t->ops->fini)
		t->ops->fini(t->priv);
	vd_test_rmtree(t->dir);
	free(t);
}
