/* agent.c — the node agent's heartbeat thread (see agent.h). */
#include "agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease.h"
#include "log.h"
#include "metrics.h"

struct vd_agent {
	struct vd_node *node;
	struct vd_agent_link link;
	int lease_ms;
	char *lease_file;         /* renewed after each answered heartbeat, or NULL */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	int busy;                 /* requests being carried out (their own threads) */
	pthread_cond_t idle;      /* signalled when busy drops */
	json_t *refused;          /* [{"volume","reason"}] for the next heartbeat; lock */
	json_t *done;             /* [{"volume"}] carried out, for the next heartbeat; lock */
	_Atomic double last_ok_ms;   /* read by vd_agent_contact_age_ms */
	double lease_from_ms;        /* when the last answered heartbeat was sent: the
	                                lease (and the lease file) counts from there */
	int fenced, failing;
};

static void request_do(struct vd_agent *a, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *vol = json_string_value(json_object_get(req, "volume"));
	int force = json_is_true(json_object_get(req, "force"));
	struct vd_err err = VD_ERR_INIT;
	char *path = NULL;
	struct vd_mount_opts o = { .access = VD_ACCESS_SINGLE, .force = force };
	if (!op || !vol)
		return;
	int r = strcmp(op, "release") == 0 ? vd_node_release(a->node, vol, force, &err)
		: strcmp(op, "mount") == 0 ? vd_node_mount(a->node, vol, VD_MOVE_MOUNT_ID, &o, &path,
								  &err)
		: vd_err_set(&err, -EINVAL, "unknown request %s", op);
	free(path);
	if (r == 0) {
		vd_log(VD_LOG_INFO, "agent: %s of volume %s done%s", op, vol, force ? " (forced)" : "");
		pthread_mutex_lock(&a->lock);
		json_array_append_new(a->done, json_pack("{s:s}", "volume", vol));
		pthread_mutex_unlock(&a->lock);
		return;
	}
	vd_log(VD_LOG_WARN, "agent: %s of volume %s refused: %s", op, vol, vd_err_msg(&err));
	pthread_mutex_lock(&a->lock);
	json_array_append_new(a->refused, json_pack("{s:s, s:s}", "volume", vol, "reason",
						     vd_err_msg(&err)));
	pthread_mutex_unlock(&a->lock);
}

struct job {
	struct vd_agent *agent;
	json_t *request;
};

/* A request may wait (a mount waits for another node to let go): it runs
 * in its own thread, so heartbeats go on meanwhile. */
static void *job_run(void *arg)
{
	struct job *j = arg;
	struct vd_agent *a = j->agent;
	request_do(a, j->request);
	json_decref(j->request);
	free(j);
	pthread_mutex_lock(&a->lock);
	if (--a->busy == 0)
		pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void job_start(struct vd_agent *a, json_t *req)
{
	pthread_t t;
	pthread_attr_t attr;
	struct job *j = malloc(sizeof(*j));
	if (!j)
		return;
	*j = (struct job){ a, json_incref(req) };
	pthread_mutex_lock(&a->lock);
	a->busy++;
	pthread_mutex_unlock(&a->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, job_run, j) != 0) {
		vd_log(VD_LOG_ERROR, "agent: cannot start a thread for a request; doing it inline");
		job_run(j);
	}
	pthread_attr_destroy(&attr);
}

/* No lease for longer than the lease: stop writing to single-writer
 * volumes, so the controller may hand them to another node. */
static void self_fence(struct vd_agent *a, double age)
{
	struct vd_err err = VD_ERR_INIT;
	int n = vd_node_fence_single(a->node, &err);
	a->fenced = 1;
	vd_metrics_fence(VD_FENCE_SELF);
	vd_log(VD_LOG_ERROR, "agent: no contact with the controller for %.0f ms (lease %d ms): "
	       "self-fenced, the data path of %d single-writer volume%s cut%s%s", age,
	       a->lease_ms, n < 0 ? 0 : n, n == 1 ? "" : "s", n < 0 ? ": " : "",
	       n < 0 ? vd_err_msg(&err) : "");
}

/* The lease the controller just renewed (it counts from before the
 * heartbeat was sent), for the data-path helpers that outlive volumed. */
static void lease_renew(const char *lease_file, double sent_ms, int lease_ms)
{
	struct vd_err err = VD_ERR_INIT;
	if (lease_file && vd_lease_write(lease_file, (long long)sent_ms + lease_ms, &err) < 0)
		vd_log(VD_LOG_WARN, "agent: %s", vd_err_msg(&err));
}

int vd_agent_first_contact(struct vd_agent_link link, const char *node_id, int lease_ms,
			   const char *lease_file, json_t **ret_requests, struct vd_err *err)
{
	json_t *report = json_pack("{s:[], s:[], s:i}", "refused", "done", "lease_ms", lease_ms);
	double sent = vd_now_ms();
	int r = report ? link.heartbeat(link.link, node_id, report, ret_requests, err)
		       : vd_err_set(err, -ENOMEM, "out of memory");
	json_decref(report);
	if (r == 0)
		lease_renew(lease_file, sent, lease_ms);
	return r;
}

static void beat(struct vd_agent *a)
{
	json_t *requests = NULL, *req;
	struct vd_err err = VD_ERR_INIT;
	size_t i;
	pthread_mutex_lock(&a->lock);
	json_t *report = json_pack("{s:o, s:o, s:i}", "refused", json_copy(a->refused), "done",
				   json_copy(a->done), "lease_ms", a->lease_ms);
	pthread_mutex_unlock(&a->lock);
	double asked = vd_now_ms();
	int r = a->link.heartbeat(a->link.link, vd_node_id(a->node), report, &requests, &err);
	double now = vd_now_ms();
	if (r < 0) {
		if (!a->failing)
			vd_log(VD_LOG_WARN, "agent: heartbeat failed: %s", vd_err_msg(&err));
		a->failing = 1;
		if (a->link.remote && !a->fenced && now - a->lease_from_ms > a->lease_ms)
			self_fence(a, now - a->lease_from_ms);
		json_decref(report);
		return;
	}
	/* Answered, but only after the lease had run out: the helpers may have
	 * stopped by themselves meanwhile; fenced, the volumes restage on use. */
	if (a->link.remote && !a->fenced && now - a->lease_from_ms > a->lease_ms)
		self_fence(a, now - a->lease_from_ms);
	if (a->failing)
		vd_log(VD_LOG_INFO, "agent: in contact with the controller again%s",
		       a->fenced ? "; fenced volumes are attached again when next used" : "");
	a->failing = a->fenced = 0;
	a->last_ok_ms = now;
	a->lease_from_ms = asked;
	lease_renew(a->lease_file, asked, a->lease_ms);
	size_t sent = json_array_size(json_object_get(report, "refused"));
	size_t sent_done = json_array_size(json_object_get(report, "done"));
	pthread_mutex_lock(&a->lock);
	while (sent--)   /* what the controller has now; later ones go next time */
		json_array_remove(a->refused, 0);
	while (sent_done--)
		json_array_remove(a->done, 0);
	pthread_mutex_unlock(&a->lock);
	json_decref(report);
	json_array_foreach(requests, i, req)
		job_start(a, req);
	json_decref(requests);
	vd_node_settle(a->node);
}

static void *run(void *arg)
{
	struct vd_agent *a = arg;
	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		pthread_mutex_unlock(&a->lock);
		beat(a);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		long long ns = until.tv_nsec + (long long)a->lease_ms * 100000LL;   /* lease / 10 */
		until.tv_sec += (time_t)(ns / 1000000000LL);
		until.tv_nsec = (long)(ns % 1000000000LL);
		pthread_mutex_lock(&a->lock);
		if (!a->stopping)
			pthread_cond_timedwait(&a->wake, &a->lock, &until);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static void agent_free(struct vd_agent *a)
{
	json_decref(a->refused);
	json_decref(a->done);
	free(a->lease_file);
	free(a);
}

int vd_agent_start(struct vd_node *node, struct vd_agent_link link, int lease_ms,
		   const char *lease_file, json_t *requests, struct vd_agent **ret,
		   struct vd_err *err)
{
	struct vd_agent *a = calloc(1, sizeof(*a));
	if (!a || !(a->refused = json_array()) || !(a->done = json_array()) ||
	    (lease_file && !(a->lease_file = strdup(lease_file)))) {
		if (a)
			agent_free(a);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	a->node = node;
	a->link = link;
	a->lease_ms = lease_ms;
	a->last_ok_ms = a->lease_from_ms = vd_now_ms();
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&a->idle, NULL);
	int e = pthread_create(&a->thread, NULL, run, a);
	if (e != 0) {
		agent_free(a);
		return vd_err_set(err, -e, "cannot start the agent thread: %s", strerror(e));
	}
	size_t i;
	json_t *req;
	json_array_foreach(requests, i, req)   /* handed over at the first contact */
		job_start(a, req);
	*ret = a;
	return 0;
}

double vd_agent_contact_age_ms(struct vd_agent *agent)
{
	return agent ? vd_now_ms() - agent->last_ok_ms : 0;
}

void vd_agent_stop(struct vd_agent *agent)
{
	if (!agent)
		return;
	pthread_mutex_lock(&agent->lock);
	agent->stopping = 1;
	pthread_cond_signal(&agent->wake);
	pthread_mutex_unlock(&agent->lock);
	pthread_join(agent->thread, NULL);
	pthread_mutex_lock(&agent->lock);
	while (agent->busy)   /* a request in flight uses the node */
		pthread_cond_wait(&agent->idle, &agent->lock);
	pthread_mutex_unlock(&agent->lock);
	pthread_cond_destroy(&agent->idle);
	pthread_cond_destroy(&agent->wake);
	pthread_mutex_destroy(&agent->lock);
	agent_free(agent);
}
