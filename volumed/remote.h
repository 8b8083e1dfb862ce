/* remote.h — a node agent's view of a remote controller, over the REST API
 * (HTTPS, bearer token; apiclient.c): the controller interface the node
 * agent uses (attach, detach, get, attached), the heartbeat link of the
 * agent, and the catalog calls the core forwards (create, remove,
 * documents).
 *
 *   POST /v1/volumes/NAME/attach {"node","access","force"} -> {"document"}
 *   POST /v1/volumes/NAME/detach {"node"}                   -> {}
 *   GET  /v1/volumes/NAME/document                          -> {"document"}
 *   GET  /v1/documents                                      -> {"documents"}
 *   GET  /v1/nodes/NODE/attached                            -> {"volumes"}
 *   POST /v1/nodes/NODE/heartbeat {"refused"}               -> {"requests","lease_ms"}
 *
 * Threads: all calls are thread-safe; each takes a client (one HTTPS
 * connection, kept alive) from a small pool. */
#ifndef VD_REMOTE_H
#define VD_REMOTE_H

#include <jansson.h>

#include "agent.h"
#include "controller.h"
#include "err.h"

struct vd_remote;

/* timeout_ms bounds each request; heartbeat_timeout_ms each heartbeat (a
 * fraction of the lease: a hung controller must not keep the agent from
 * fencing itself in time). */
int vd_remote_open(const char *url, const char *token, const char *ca_file, long timeout_ms,
		   long heartbeat_timeout_ms, struct vd_remote **ret, struct vd_err *err);
void vd_remote_free(struct vd_remote *remote);

struct vd_controller vd_remote_controller(struct vd_remote *remote);
struct vd_agent_link vd_remote_link(struct vd_remote *remote);

/* POST /v1/volumes {"name","driver","options","home"} (home: the node a
 * node-local volume lives on, or NULL). */
int vd_remote_create(struct vd_remote *remote, const char *name, const char *driver,
		     const json_t *opts, const char *home, struct vd_err *err);
int vd_remote_remove(struct vd_remote *remote, const char *name, struct vd_err *err);
int vd_remote_document(struct vd_remote *remote, const char *name, json_t **ret_doc,
		       struct vd_err *err);
/* Every ready volume's document, sorted by name. */
int vd_remote_documents(struct vd_remote *remote, json_t **ret_docs, struct vd_err *err);
/* Any other request (volctl's nodes and move, through this node). */
int vd_remote_request(struct vd_remote *remote, const char *method, const char *path,
		      const json_t *body, json_t **ret_reply, struct vd_err *err);

#endif
