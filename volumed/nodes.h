/* nodes.h — the controller's registry of node agents: who registered,
 * when each last sent a heartbeat (its lease), and what the controller
 * asks of each (release a volume; mount one that was moved to it).
 *
 * Registrations are persisted (<state>/nodes, one document per node);
 * heartbeats are kept in memory only — a heartbeat a second must not cost
 * an fsync — so after a controller restart every known node starts with a
 * fresh lease. The controller's own node agent is a node like the others.
 *
 * A node is alive while its last heartbeat is younger than half the
 * lease, suspect until the lease ends, dead after.
 *
 * Threads: all calls are thread-safe (one mutex); vd_nodes_wait sleeps on
 * a condition variable that every heartbeat, detach and refusal signals. */
#ifndef VD_NODES_H
#define VD_NODES_H

#include <jansson.h>

#include "err.h"

enum vd_node_state { VD_NODE_ALIVE, VD_NODE_SUSPECT, VD_NODE_DEAD };

struct vd_nodes;

int vd_nodes_open(const char *state_dir, int lease_ms, struct vd_nodes **ret,
		  struct vd_err *err);
void vd_nodes_free(struct vd_nodes *nodes);
int vd_nodes_lease_ms(const struct vd_nodes *nodes);

/* A heartbeat of node_id (registering it the first time). report is what
 * the node says: {"refused": [{"volume","reason"}], "done": [{"volume"}],
 * "lease_ms"} (may be NULL); a node whose lease_ms is longer than the
 * controller's is refused (-EINVAL, nothing recorded). ret_requests (may be NULL) gets the requests pending for
 * the node, handed over once: [{"op": "release"|"mount", "volume",
 * "force"}]. */
int vd_nodes_heartbeat(struct vd_nodes *nodes, const char *node_id, const json_t *report,
		       json_t **ret_requests, struct vd_err *err);

/* Unknown nodes are dead. */
enum vd_node_state vd_nodes_state(struct vd_nodes *nodes, const char *node_id);
/* Milliseconds since the node's last heartbeat (-1: unknown node). */
double vd_nodes_age_ms(struct vd_nodes *nodes, const char *node_id);
const char *vd_node_state_name(enum vd_node_state state);
int vd_nodes_known(struct vd_nodes *nodes, const char *node_id);

/* [{"id","state","last_heartbeat_ms","registered_at"}], sorted by id. */
int vd_nodes_list(struct vd_nodes *nodes, json_t **ret, struct vd_err *err);

/* Asks node_id to release (force: even while in use; its users get EIO)
 * or to mount volume. Repeated asks are one request until it is handed
 * over; a new request drops the node's answer to the previous one. */
void vd_nodes_ask(struct vd_nodes *nodes, const char *node_id, const char *op,
		  const char *volume, int force);
/* What node_id answered about releasing volume since the last ask: NULL
 * when nothing, else its reason for refusing (copied into buf). */
const char *vd_nodes_refusal(struct vd_nodes *nodes, const char *node_id, const char *volume,
			     char *buf, size_t len);
/* 1 when node_id reported the last request about volume done. */
int vd_nodes_done(struct vd_nodes *nodes, const char *node_id, const char *volume);
/* Wakes the waiters (a detach happened). */
void vd_nodes_signal(struct vd_nodes *nodes);
/* Sleeps until something changes or until deadline (vd_now_ms() time). */
void vd_nodes_wait(struct vd_nodes *nodes, double deadline_ms);

#endif
