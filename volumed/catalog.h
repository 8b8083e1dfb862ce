/* catalog.h — the controller: the volume catalog and its attachments.
 *
 * One document per volume in a store (<state>/catalog), mirrored in memory:
 * {"name","driver","options","spec","data","created_at","state","attachments",
 *  "revision"}. state is "creating", "ready" or "deleting"; a document left
 * "creating" or "deleting" by a crash is rolled back or finished on open.
 *
 * Threads: all calls are thread-safe; calls on one volume serialize on a
 * named lock, others run in parallel. Documents handed out are shared and
 * read-only (the catalog replaces, never mutates, a published document). */
#ifndef VD_CATALOG_H
#define VD_CATALOG_H

#include <jansson.h>
#include <stdint.h>

#include "backends.h"
#include "controller.h"
#include "err.h"

struct vd_catalog;

int vd_catalog_open(const char *state_dir, const struct vd_backends *backends,
		    struct vd_catalog **ret_catalog, struct vd_err *err);
void vd_catalog_free(struct vd_catalog *catalog);

/* Idempotent for the same driver and options; -EEXIST otherwise. */
int vd_catalog_create(struct vd_catalog *catalog, const char *name, const char *driver,
		      const json_t *opts, struct vd_err *err);
/* Where a new volume's content comes from: a snapshot or another volume. */
struct vd_source {
	const char *snapshot;  /* a snapshot's name, or NULL */
	const char *volume;    /* a volume's name, or NULL */
};

/* Like create, with the content of src (NULL: empty). Idempotent for the
 * same driver, options and source. */
int vd_catalog_create_from(struct vd_catalog *catalog, const char *name, const char *driver,
			   const json_t *opts, const struct vd_source *src, struct vd_err *err);

/* Like create_from; a node-local volume (driver local) made for another
 * node (home) is recorded only: that node provisions it, and only it may
 * use it. home NULL: this node. */
int vd_catalog_create_at(struct vd_catalog *catalog, const char *name, const char *driver,
			 const json_t *opts, const struct vd_source *src, const char *home,
			 struct vd_err *err);

/* Grows a volume to at least new_size bytes; ret_size is its size after,
 * ret_node_pending whether its file system must still grow on its node. */
int vd_catalog_expand(struct vd_catalog *catalog, const char *name, uint64_t new_size,
		      uint64_t *ret_size, int *ret_node_pending, struct vd_err *err);

/* Runs fn with the volume's document while holding the volume's lock, so
 * nothing changes the volume meanwhile (snapshots). -ENOENT when absent. */
int vd_catalog_with_volume(struct vd_catalog *catalog, const char *name,
			   int (*fn)(const json_t *doc, void *userdata), void *userdata,
			   struct vd_err *err);

/* -EBUSY while attached anywhere; -ENOENT when absent. */
int vd_catalog_remove(struct vd_catalog *catalog, const char *name, struct vd_err *err);
/* A shared read-only reference to a ready volume's document; -ENOENT. */
int vd_catalog_get(struct vd_catalog *catalog, const char *name, json_t **ret_doc,
		   struct vd_err *err);
/* Shared references to every ready volume's document, sorted by name. */
int vd_catalog_list(struct vd_catalog *catalog, json_t **ret_docs, struct vd_err *err);
size_t vd_catalog_count(struct vd_catalog *catalog);

/* Makes the catalog a cluster's controller: attachments across the nodes
 * of the registry, moves between them (a single-writer volume asked for
 * by node B while A holds it: A alive is asked to release it and B waits
 * at most move_wait_ms; A dead moves it at once when the driver fences at
 * the storage, else after 1.5 leases, when A has fenced itself). force,
 * the volume's preempt option or preempt_default make A let go even while
 * in use. Call before serving. */
struct vd_nodes;
void vd_catalog_cluster(struct vd_catalog *catalog, struct vd_nodes *nodes, const char *self_node,
			int move_wait_ms, int preempt_default);

/* The controller interface, served in-process by the catalog. */
struct vd_controller vd_catalog_controller(struct vd_catalog *catalog);

#endif
