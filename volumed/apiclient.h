/* apiclient.h — the REST API's client (libcurl): volctl today, node agents
 * talking to a remote controller later (see api.h for the routes).
 *
 * Every call returns 0 or a negative errno. A failure the server reported
 * carries its {"error"} message in err and an errno matching its "kind"
 * (-ENOENT for "not-found", -EBUSY for "busy", ...); a transport failure is
 * -ECONNREFUSED ("cannot reach volumed at ..."), -ETIMEDOUT or -EIO. A
 * refused bearer token (HTTP 401) is -EKEYREJECTED ("volumed at URL refused
 * the token: ..."), as is a server certificate that fails verification.
 *
 * Threads: a client owns one connection and is used by one thread at a
 * time; make one client per thread. */
#ifndef VD_APICLIENT_H
#define VD_APICLIENT_H

#include <jansson.h>

#include "err.h"

#define VD_API_CONNECT_TIMEOUT_MS 5000L
#define VD_API_TIMEOUT_MS 300000L          /* create may format a disk */
#define VD_API_MAX_REPLY (64L * 1024 * 1024)

struct vd_api_client_config {
	const char *unix_socket;   /* HTTP over this unix socket; NULL: TCP */
	const char *base_url;      /* NULL: "http://localhost" */
	const char *bearer_token;  /* "Authorization: Bearer ..."; NULL: none. Never
				    * printed; zeroed when the client is freed */
	const char *ca_file;       /* HTTPS: the CA bundle; NULL: the system's */
	long connect_timeout_ms;   /* 0: VD_API_CONNECT_TIMEOUT_MS */
	long timeout_ms;           /* 0: VD_API_TIMEOUT_MS */
};

struct vd_api_client;

/* Copies cfg's strings; nothing is connected until the first call. */
int vd_api_client_new(const struct vd_api_client_config *cfg,
		      struct vd_api_client **ret_client, struct vd_err *err);
void vd_api_client_free(struct vd_api_client *client);

/* One request: method ("GET", "POST", "DELETE"), path ("/v1/status") and
 * an optional body object. ret_reply (may be NULL) is the server's JSON
 * document on success ({} when it sent none), owned by the caller. */
int vd_api_request(struct vd_api_client *client, const char *method, const char *path,
		   const json_t *body, json_t **ret_reply, struct vd_err *err);

/* The routes. Names are checked with vd_name_check before any request;
 * driver, opts and mount_id may be NULL (the server's defaults). Each
 * ret_reply (may be NULL) is the server's document, as in vd_api_request. */
int vd_api_status(struct vd_api_client *client, json_t **ret_reply, struct vd_err *err);
int vd_api_list(struct vd_api_client *client, json_t **ret_reply, struct vd_err *err);
int vd_api_create(struct vd_api_client *client, const char *name, const char *driver,
		  const json_t *opts, json_t **ret_reply, struct vd_err *err);
int vd_api_inspect(struct vd_api_client *client, const char *name, json_t **ret_reply,
		   struct vd_err *err);
int vd_api_remove(struct vd_api_client *client, const char *name, json_t **ret_reply,
		  struct vd_err *err);
int vd_api_mount(struct vd_api_client *client, const char *name, const char *mount_id,
		 json_t **ret_reply, struct vd_err *err);
int vd_api_unmount(struct vd_api_client *client, const char *name, const char *mount_id,
		   json_t **ret_reply, struct vd_err *err);

#endif
