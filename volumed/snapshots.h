/* snapshots.h — the controller's snapshot catalog.
 *
 * One document per snapshot in a store (<state>/snapshots), mirrored in
 * memory: {"name","source_volume","driver","size_bytes","created_at",
 * "state"}. A snapshot is written "creating" before the driver copies and
 * "ready" after; one left "creating" by a crash is deleted on open.
 *
 * Threads: thread-safe; one snapshot's changes serialize on its named lock,
 * taken after the source volume's lock. */
#ifndef VD_SNAPSHOTS_H
#define VD_SNAPSHOTS_H

#include <jansson.h>

#include "backends.h"
#include "catalog.h"
#include "err.h"

struct vd_snapshots;

int vd_snapshots_open(const char *state_dir, const struct vd_backends *backends,
		      struct vd_catalog *catalog, struct vd_snapshots **ret, struct vd_err *err);
void vd_snapshots_free(struct vd_snapshots *snaps);

/* Snapshots volume source as name. Idempotent for the same source;
 * -EEXIST for another. ret_doc (may be NULL) is the snapshot's document. */
int vd_snapshots_create(struct vd_snapshots *snaps, const char *name, const char *source,
			json_t **ret_doc, struct vd_err *err);
/* Idempotent: absent is 0. */
int vd_snapshots_delete(struct vd_snapshots *snaps, const char *name, struct vd_err *err);
/* A shared read-only reference to a ready snapshot's document; -ENOENT. */
int vd_snapshots_get(struct vd_snapshots *snaps, const char *name, json_t **ret_doc,
		     struct vd_err *err);
/* Every ready snapshot's document, sorted by name. */
int vd_snapshots_list(struct vd_snapshots *snaps, json_t **ret_docs, struct vd_err *err);

#endif
