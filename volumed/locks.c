/* locks.c — named mutexes in a small chained hash table.
 *
 * Locks: `table_mutex` guards the table and each entry's `users` count;
 * an entry's own mutex is what callers hold. An entry lives while users > 0. */
#include "locks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_BUCKETS 256

struct vd_lock {
	struct vd_lock *next;
	pthread_mutex_t mutex;
	unsigned users;
	char name[];
};

struct vd_locks {
	pthread_mutex_t table_mutex;
	struct vd_lock *buckets[LOCK_BUCKETS];
};

static unsigned name_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % LOCK_BUCKETS;
}

struct vd_locks *vd_locks_new(void)
{
	struct vd_locks *locks = calloc(1, sizeof(*locks));
	if (locks)
		pthread_mutex_init(&locks->table_mutex, NULL);
	return locks;
}

void vd_locks_free(struct vd_locks *locks)
{
	if (!locks)
		return;
	for (int i = 0; i < LOCK_BUCKETS; i++)
		while (locks->buckets[i]) {
			struct vd_lock *l = locks->buckets[i];
			locks->buckets[i] = l->next;
			pthread_mutex_destroy(&l->mutex);
			free(l);
		}
	pthread_mutex_destroy(&locks->table_mutex);
	free(locks);
}

static struct vd_lock *entry_get(struct vd_locks *locks, const char *name)
{
	struct vd_lock **bucket = &locks->buckets[name_hash(name)];
	for (struct vd_lock *l = *bucket; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return l;
	size_t len = strlen(name);
	struct vd_lock *l = calloc(1, sizeof(*l) + len + 1);
	if (!l)
		abort();
	memcpy(l->name, name, len + 1);
	pthread_mutex_init(&l->mutex, NULL);
	l->next = *bucket;
	*bucket = l;
	return l;
}

struct vd_lock *vd_lock_acquire(struct vd_locks *locks, const char *name)
{
	pthread_mutex_lock(&locks->table_mutex);
	struct vd_lock *l = entry_get(locks, name);
	l->users++;
	pthread_mutex_unlock(&locks->table_mutex);
	pthread_mutex_lock(&l->mutex);
	return l;
}

void vd_lock_release(struct vd_locks *locks, struct vd_lock *lock)
{
	pthread_mutex_unlock(&lock->mutex);
	pthread_mutex_lock(&locks->table_mutex);
	if (--lock->users == 0) {
		struct vd_lock **p = &locks->buckets[name_hash(lock->name)];
		while (*p != lock)
			p = &(*p)->next;
		*p = lock->next;
		pthread_mutex_destroy(&lock->mutex);
		free(lock);
	}
	pthread_mutex_unlock(&locks->table_mutex);
}
