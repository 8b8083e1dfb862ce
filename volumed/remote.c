/* remote.c — the remote controller over the REST API (see remote.h). */
#include "remote.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiclient.h"
#include "names.h"

#define POOL_MAX 8
static const char *const access_names[] = { "single", "multi", "readonly" };

struct vd_remote {
	struct vd_api_client_config cfg;
	char *url, *token, *ca_file;
	pthread_mutex_t lock;
	struct vd_api_client *idle[POOL_MAX];
	int idle_count;
	/* heartbeats: the agent thread's own client, with a bound well under
	 * the lease (a controller that hangs must not hold the agent back
	 * from fencing itself) */
	struct vd_api_client_config hb_cfg;
	struct vd_api_client *hb;
};

static int client_take(struct vd_remote *r, struct vd_api_client **ret, struct vd_err *err)
{
	pthread_mutex_lock(&r->lock);
	struct vd_api_client *c = r->idle_count ? r->idle[--r->idle_count] : NULL;
	pthread_mutex_unlock(&r->lock);
	if (c) {
		*ret = c;
		return 0;
	}
	return vd_api_client_new(&r->cfg, ret, err);
}

static void client_give(struct vd_remote *r, struct vd_api_client *c)
{
	pthread_mutex_lock(&r->lock);
	if (r->idle_count < POOL_MAX) {
		r->idle[r->idle_count++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	vd_api_client_free(c);
}

int vd_remote_request(struct vd_remote *remote, const char *method, const char *path,
		      const json_t *body, json_t **ret_reply, struct vd_err *err)
{
	struct vd_api_client *c;
	int r = client_take(remote, &c, err);
	if (r < 0)
		return r;
	r = vd_api_request(c, method, path, body, ret_reply, err);
	client_give(remote, c);
	return r;
}

/* path "/v1/PREFIX/NAME/SUFFIX" into buf (names checked: no escaping needed). */
static int path_of(char *buf, size_t len, const char *prefix, const char *name,
		   const char *suffix, struct vd_err *err)
{
	int r = vd_name_check(name, err);
	if (r == 0 && snprintf(buf, len, "/v1/%s/%s%s", prefix, name, suffix) >= (int)len)
		r = vd_err_set(err, -ENAMETOOLONG, "path too long");
	return r;
}

/* The reply's member key, handed over (a new reference). */
static int member(json_t *reply, const char *key, json_t **ret, struct vd_err *err)
{
	json_t *v = json_object_get(reply, key);
	if (!v) {
		json_decref(reply);
		return vd_err_set(err, -EPROTO, "the controller's reply has no \"%s\"", key);
	}
	*ret = json_incref(v);
	json_decref(reply);
	return 0;
}

static int ctl_attach(void *ctl, const char *name, const char *node_id, enum vd_access access,
		      int force, json_t **ret_doc, struct vd_err *err)
{
	char path[512];
	json_t *reply = NULL;
	int r = path_of(path, sizeof(path), "volumes", name, "/attach", err);
	json_t *body = json_pack("{s:s, s:s, s:b}", "node", node_id, "access",
				 access_names[access], "force", force);
	if (r == 0)
		r = vd_remote_request(ctl, "POST", path, body, &reply, err);
	json_decref(body);
	return r < 0 ? r : member(reply, "document", ret_doc, err);
}

static int ctl_detach(void *ctl, const char *name, const char *node_id, struct vd_err *err)
{
	char path[512];
	int r = path_of(path, sizeof(path), "volumes", name, "/detach", err);
	json_t *body = json_pack("{s:s}", "node", node_id);
	if (r == 0)
		r = vd_remote_request(ctl, "POST", path, body, NULL, err);
	json_decref(body);
	return r;
}

int vd_remote_document(struct vd_remote *remote, const char *name, json_t **ret_doc,
		       struct vd_err *err)
{
	char path[512];
	json_t *reply = NULL;
	int r = path_of(path, sizeof(path), "volumes", name, "/document", err);
	if (r == 0)
		r = vd_remote_request(remote, "GET", path, NULL, &reply, err);
	return r < 0 ? r : member(reply, "document", ret_doc, err);
}

static int ctl_get(void *ctl, const char *name, json_t **ret_doc, struct vd_err *err)
{
	return vd_remote_document(ctl, name, ret_doc, err);
}

static int ctl_attached(void *ctl, const char *node_id, json_t **ret_names, struct vd_err *err)
{
	char path[512];
	json_t *reply = NULL;
	int r = path_of(path, sizeof(path), "nodes", node_id, "/attached", err);
	if (r == 0)
		r = vd_remote_request(ctl, "GET", path, NULL, &reply, err);
	return r < 0 ? r : member(reply, "volumes", ret_names, err);
}

static const struct vd_controller_ops remote_ops = {
	.attach = ctl_attach,
	.detach = ctl_detach,
	.get = ctl_get,
	.attached = ctl_attached,
};

struct vd_controller vd_remote_controller(struct vd_remote *remote)
{
	return (struct vd_controller){ .ops = &remote_ops, .ctl = remote };
}

static int heartbeat(void *link, const char *node_id, const json_t *report,
		     json_t **ret_requests, struct vd_err *err)
{
	struct vd_remote *remote = link;
	char path[512];
	json_t *reply = NULL;
	int r = path_of(path, sizeof(path), "nodes", node_id, "/heartbeat", err);
	if (r == 0 && !remote->hb)
		r = vd_api_client_new(&remote->hb_cfg, &remote->hb, err);
	if (r == 0)
		r = vd_api_request(remote->hb, "POST", path, report, &reply, err);
	return r < 0 ? r : member(reply, "requests", ret_requests, err);
}

struct vd_agent_link vd_remote_link(struct vd_remote *remote)
{
	return (struct vd_agent_link){ .heartbeat = heartbeat, .link = remote, .remote = 1 };
}

int vd_remote_create(struct vd_remote *remote, const char *name, const char *driver,
		     const json_t *opts, const char *home, struct vd_err *err)
{
	json_t *body = json_pack("{s:s}", "name", name);
	if (!body)
		return vd_err_set(err, -ENOMEM, "out of memory");
	if (driver)
		json_object_set_new(body, "driver", json_string(driver));
	if (opts)
		json_object_set(body, "options", (json_t *)opts);
	if (home)
		json_object_set_new(body, "home", json_string(home));
	int r = vd_remote_request(remote, "POST", "/v1/volumes", body, NULL, err);
	json_decref(body);
	return r;
}

int vd_remote_remove(struct vd_remote *remote, const char *name, struct vd_err *err)
{
	char path[512];
	int r = path_of(path, sizeof(path), "volumes", name, "", err);
	return r < 0 ? r : vd_remote_request(remote, "DELETE", path, NULL, NULL, err);
}

int vd_remote_documents(struct vd_remote *remote, json_t **ret_docs, struct vd_err *err)
{
	json_t *reply = NULL;
	int r = vd_remote_request(remote, "GET", "/v1/documents", NULL, &reply, err);
	return r < 0 ? r : member(reply, "documents", ret_docs, err);
}

int vd_remote_open(const char *url, const char *token, const char *ca_file, long timeout_ms,
		   long heartbeat_timeout_ms, struct vd_remote **ret, struct vd_err *err)
{
	struct vd_remote *r = calloc(1, sizeof(*r));
	if (!r)
		return vd_err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&r->lock, NULL);
	if (!(r->url = strdup(url)) || !(r->token = strdup(token ? token : "")) ||
	    !(r->ca_file = strdup(ca_file ? ca_file : ""))) {
		vd_remote_free(r);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	r->cfg = (struct vd_api_client_config){ .base_url = r->url,
						.bearer_token = *r->token ? r->token : NULL,
						.ca_file = *r->ca_file ? r->ca_file : NULL,
						.timeout_ms = timeout_ms };
	r->hb_cfg = r->cfg;
	r->hb_cfg.timeout_ms = heartbeat_timeout_ms;
	r->hb_cfg.connect_timeout_ms = heartbeat_timeout_ms;
	*ret = r;
	return 0;
}

void vd_remote_free(struct vd_remote *remote)
{
	if (!remote)
		return;
	for (int i = 0; i < remote->idle_count; i++)
		vd_api_client_free(remote->idle[i]);
	vd_api_client_free(remote->hb);
	pthread_mutex_destroy(&remote->lock);
	if (remote->token)
		explicit_bzero(remote->token, strlen(remote->token));
	free(remote->token);
	free(remote->url);
	free(remote->ca_file);
	free(remote);
}
