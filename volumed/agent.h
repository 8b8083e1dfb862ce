/* agent.h — the node agent's side of the cluster: a thread that renews
 * this node's lease with a heartbeat every lease/10 ms, carries out what
 * the controller asks in the reply (release a volume; mount one moved
 * here), reports refusals in the next heartbeat, and fences this node
 * itself — cuts the data path of its single-writer volumes — when it could
 * not renew its lease for longer than the lease. With a remote controller
 * the lease is also written to a file (lease.h), so that data-path helpers
 * stop writing by themselves should volumed die.
 *
 * Threads: one thread of its own; the node's calls are thread-safe. */
#ifndef VD_AGENT_H
#define VD_AGENT_H

#include <jansson.h>

#include "err.h"
#include "node.h"

/* How the agent reaches the controller: in-process or over the REST API. */
struct vd_agent_link {
	int (*heartbeat)(void *link, const char *node_id, const json_t *report,
			 json_t **ret_requests, struct vd_err *err);
	void *link;
	int remote;   /* 1: the controller is another process (self-fencing applies) */
};

struct vd_agent;

/* One heartbeat before the node opens (its reconcile stages volumes whose
 * helpers need a lease): renews the lease file on success; the requests
 * the controller handed over go to vd_agent_start. */
int vd_agent_first_contact(struct vd_agent_link link, const char *node_id, int lease_ms,
			   const char *lease_file, json_t **ret_requests, struct vd_err *err);
/* lease_file: renewed after each answered heartbeat (NULL: none);
 * requests: carried out at once (NULL: none; the caller keeps its reference). */
int vd_agent_start(struct vd_node *node, struct vd_agent_link link, int lease_ms,
		   const char *lease_file, json_t *requests, struct vd_agent **ret,
		   struct vd_err *err);
void vd_agent_stop(struct vd_agent *agent);
/* Milliseconds since the controller last answered a heartbeat. */
double vd_agent_contact_age_ms(struct vd_agent *agent);

#endif
