/* store.h — crash-safe persistent documents, one file per key.
 *
 * Each document is a JSON object stored with a revision number. A write
 * goes to a temporary file, is fsynced, renamed over the old file, and the
 * directory is fsynced: a crash at any instant leaves the old or the new
 * document, never a torn one. Updates are compare-and-swap on the revision.
 *
 * Threads: all calls are thread-safe. Calls on different keys run in
 * parallel; calls on one key serialize on a striped mutex. */
#ifndef VD_STORE_H
#define VD_STORE_H

#include <stdint.h>
#include <stddef.h>
#include <jansson.h>

#include "err.h"

struct vd_store;

/* Opens (creating with mode 0700) the directory dir and removes temporary
 * files a crash left behind. */
int vd_store_open(const char *dir, struct vd_store **ret_store, struct vd_err *err);
void vd_store_free(struct vd_store *store);

/* Reads key. ret_doc is a new reference owned by the caller; ret_rev (may be
 * NULL) is its revision (>= 1). -ENOENT when absent. */
int vd_store_get(struct vd_store *store, const char *key, json_t **ret_doc,
		 uint64_t *ret_rev, struct vd_err *err);

/* Writes doc for key if the stored revision equals expected_rev (0: the
 * key must not exist). On success *ret_rev (may be NULL) is the new
 * revision. -EEXIST when expected_rev is 0 and the key exists, -ESTALE on
 * any other revision mismatch, -ENOENT when expected_rev > 0 and the key is
 * absent. */
int vd_store_put(struct vd_store *store, const char *key, const json_t *doc,
		 uint64_t expected_rev, uint64_t *ret_rev, struct vd_err *err);

/* Deletes key if its revision equals expected_rev (0: whatever it is).
 * Absent key: -ENOENT. */
int vd_store_delete(struct vd_store *store, const char *key, uint64_t expected_rev,
		    struct vd_err *err);

/* Calls fn for every stored key, in no particular order. doc is borrowed
 * for the duration of the call (fn may json_incref it). A non-zero return
 * from fn stops the walk and is returned. Unreadable documents are skipped
 * and reported through err's message (the walk still returns 0). */
typedef int (*vd_store_visit_fn)(const char *key, json_t *doc, uint64_t rev, void *userdata);
int vd_store_foreach(struct vd_store *store, vd_store_visit_fn fn, void *userdata,
		     struct vd_err *err);

/* The on-disk form: {"revision": N, "doc": {...}}. Pure: no I/O. */
int vd_store_doc_parse(const char *bytes, size_t len, json_t **ret_doc,
		       uint64_t *ret_rev, struct vd_err *err);
char *vd_store_doc_dump(const json_t *doc, uint64_t rev);

/* Test seam: when set, called after each step of a write (1 temp file
 * written, 2 temp fsynced, 3 renamed, 4 directory fsynced). */
extern void (*vd_store_step_hook)(int step);

#endif
