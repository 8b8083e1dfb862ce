/* docset.h — a store of documents mirrored in memory, with named locks.
 *
 * The shape the catalog and the node records share: one JSON document per
 * name, persisted crash-safely (store.h) with its revision kept in the
 * document's "revision" member, and published in an in-memory map that
 * readers consult without touching the disk. Published documents are
 * shared and read-only: a change writes a copy and publishes it.
 *
 * Threads: thread-safe. Callers changing a name hold its named lock
 * (vd_docset_lock); the map itself has a reader/writer lock held only to
 * look up or swap a pointer. */
#ifndef VD_DOCSET_H
#define VD_DOCSET_H

#include <jansson.h>

#include "err.h"
#include "locks.h"

struct vd_docset;

/* Called on open for every stored document (its "revision" set): return
 * 1 to publish it, 0 to leave it unpublished (the callback may have
 * deleted or rewritten it through the docset), or a negative errno. */
typedef int (*vd_docset_load_fn)(struct vd_docset *set, const char *name, json_t *doc,
				 void *userdata);

int vd_docset_open(const char *dir, vd_docset_load_fn load, void *userdata,
		   struct vd_docset **ret_set, struct vd_err *err);
void vd_docset_free(struct vd_docset *set);

struct vd_lock *vd_docset_lock(struct vd_docset *set, const char *name);
void vd_docset_unlock(struct vd_docset *set, struct vd_lock *lock);

/* A shared read-only reference to name's published document, or NULL. */
json_t *vd_docset_get(struct vd_docset *set, const char *name);

/* Persists doc (compare-and-swap on its "revision", 0 = new), updates its
 * revision, then publishes it (publish) or withdraws name from the map. */
int vd_docset_put(struct vd_docset *set, const char *name, json_t *doc, int publish,
		  struct vd_err *err);

/* Deletes name's document (expected revision from doc) and withdraws it. */
int vd_docset_delete(struct vd_docset *set, const char *name, const json_t *doc,
		     struct vd_err *err);

/* Shared references to every published document, sorted by name. */
int vd_docset_list(struct vd_docset *set, json_t **ret_docs, struct vd_err *err);
size_t vd_docset_count(struct vd_docset *set);

/* A private copy of a published document, to change and put again. */
json_t *vd_doc_edit(const json_t *doc);
const char *vd_doc_str(const json_t *doc, const char *key);

#endif
