/* locks.h — named mutexes: one per volume name, created on first use and
 * freed when nobody holds or waits for them. Thread-safe. */
#ifndef VD_LOCKS_H
#define VD_LOCKS_H

struct vd_locks;
struct vd_lock;

struct vd_locks *vd_locks_new(void);
void vd_locks_free(struct vd_locks *locks);

/* Blocks until name's mutex is held by the caller. */
struct vd_lock *vd_lock_acquire(struct vd_locks *locks, const char *name);
void vd_lock_release(struct vd_locks *locks, struct vd_lock *lock);

#endif
