/* apiclient.c — the REST API's client: JSON over HTTP with libcurl, over
 * a unix socket (volctl) or TCP/HTTPS with a bearer token (node agents).
 *
 * Threads: curl's global state is set up once (pthread_once); a client
 * holds one curl easy handle, so one thread uses it at a time. */
#include "apiclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "names.h"

#define DEFAULT_BASE_URL "http://localhost"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct vd_api_client {
	CURL *curl;
	char *unix_socket;
	char *base_url;
	char *auth_header;   /* "Authorization: Bearer ..." or NULL */
	char *ca_file;
	long connect_timeout_ms;
	long timeout_ms;
};

/* The reply body being received. */
struct reply_buf {
	char *data;
	size_t len;
	size_t cap;
	int overflow;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void vd_api_client_free(struct vd_api_client *client)
{
	if (!client)
		return;
	if (client->curl)
		curl_easy_cleanup(client->curl);
	free(client->unix_socket);
	free(client->base_url);
	if (client->auth_header)
		explicit_bzero(client->auth_header, strlen(client->auth_header));
	free(client->auth_header);
	free(client->ca_file);
	free(client);
}

/* strdup of an optional string: 0, or -ENOMEM. */
static int dup_opt(const char *s, char **ret)
{
	*ret = s ? strdup(s) : NULL;
	return s && !*ret ? -ENOMEM : 0;
}

int vd_api_client_new(const struct vd_api_client_config *cfg,
		      struct vd_api_client **ret_client, struct vd_err *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return vd_err_set(err, -EIO, "libcurl failed to initialize: %s",
				  curl_easy_strerror(curl_init_rc));
	struct vd_api_client *c = calloc(1, sizeof(*c));
	if (!c)
		goto oom;
	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
							     : VD_API_CONNECT_TIMEOUT_MS;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : VD_API_TIMEOUT_MS;
	c->curl = curl_easy_init();
	if (!c->curl || dup_opt(cfg->unix_socket, &c->unix_socket) < 0 ||
	    dup_opt(cfg->base_url ? cfg->base_url : DEFAULT_BASE_URL, &c->base_url) < 0 ||
	    dup_opt(cfg->ca_file, &c->ca_file) < 0)
		goto oom;
	if (cfg->bearer_token &&
	    asprintf(&c->auth_header, "Authorization: Bearer %s", cfg->bearer_token) < 0) {
		c->auth_header = NULL;
		goto oom;
	}
	*ret_client = c;
	return 0;
oom:
	vd_api_client_free(c);
	return vd_err_set(err, -ENOMEM, "out of memory creating the API client");
}

/* Where the server is, for messages. */
static const char *endpoint(const struct vd_api_client *c)
{
	return c->unix_socket ? c->unix_socket : c->base_url;
}

static size_t reply_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct reply_buf *b = userdata;
	size_t n = size * nmemb;
	if (n > (size_t)VD_API_MAX_REPLY - b->len) {
		b->overflow = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *bigger = realloc(b->data, cap);
		if (!bigger)
			return 0;
		b->data = bigger;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* Sets up the handle for one request; headers is filled for the caller
 * to free after the transfer. */
static int request_setup(struct vd_api_client *c, const char *method, const char *url,
			 const char *body, struct reply_buf *buf, struct curl_slist **headers)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	struct curl_slist *hl = curl_slist_append(NULL, "Accept: application/json");
	if (hl && body)
		hl = curl_slist_append(hl, "Content-Type: application/json");
	if (hl)
		hl = curl_slist_append(hl, "Expect:");
	if (hl && c->auth_header)
		hl = curl_slist_append(hl, c->auth_header);
	*headers = hl;
	if (!hl)
		return -ENOMEM;
	CURLcode cc = CURLE_OK;
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_URL, url);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reply_write);
	if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, buf);
	if (cc == CURLE_OK && c->unix_socket)
		cc = curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_socket);
	if (cc == CURLE_OK && c->ca_file)
		cc = curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (cc == CURLE_OK && body)
		cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	return cc == CURLE_OK ? 0 : -EINVAL;
}

/* A transfer that got no HTTP answer. */
static int transport_error(struct vd_api_client *c, CURLcode cc, const char *detail,
			   struct vd_err *err)
{
	long os_errno = 0;
	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	const char *why = os_errno ? strerror((int)os_errno) : detail;
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return vd_err_set(err, -ECONNREFUSED, "cannot reach volumed at %s: %s",
				  endpoint(c), why);
	case CURLE_OPERATION_TIMEDOUT:
		return vd_err_set(err, -ETIMEDOUT, "volumed at %s did not answer within %ld ms",
				  endpoint(c), c->timeout_ms);
	case CURLE_OUT_OF_MEMORY:
		return vd_err_set(err, -ENOMEM, "out of memory talking to volumed at %s",
				  endpoint(c));
	case CURLE_WRITE_ERROR:
		return vd_err_set(err, -EFBIG, "the reply of volumed at %s is too large "
				  "(at most %ld bytes)", endpoint(c), VD_API_MAX_REPLY);
	case CURLE_PEER_FAILED_VERIFICATION:
		return vd_err_set(err, -EKEYREJECTED, "cannot verify the certificate of volumed at "
				  "%s: %s (give its CA with --ca-file)", endpoint(c), detail);
	case CURLE_SSL_CACERT_BADFILE:
		return vd_err_set(err, -EINVAL, "cannot use the CA file %s for volumed at %s: %s",
				  c->ca_file ? c->ca_file : "(system)", endpoint(c), detail);
	case CURLE_SSL_CONNECT_ERROR:
		return vd_err_set(err, -ECONNREFUSED, "TLS handshake with volumed at %s failed: %s",
				  endpoint(c), detail);
	default:
		return vd_err_set(err, -EIO, "request to volumed at %s failed: %s",
				  endpoint(c), detail);
	}
}

/* The errno whose kind (else HTTP status) the server answered. */
static int errno_from_reply(long status, const char *kind)
{
	static const int codes[] = { EINVAL, ENOENT, EEXIST, EBUSY, ESTALE, EAGAIN, ETIMEDOUT,
				     EACCES, EKEYREJECTED, ENOSPC, EOPNOTSUPP, EFBIG, ERANGE, EIO };
	for (size_t i = 0; kind && i < ARRAY_SIZE(codes); i++)
		if (strcmp(vd_errno_kind(-codes[i]), kind) == 0)
			return -codes[i];
	for (size_t i = 0; i < ARRAY_SIZE(codes); i++)
		if (vd_errno_http_status(-codes[i]) == status)
			return -codes[i];
	return status >= 500 ? -EIO : -EINVAL;
}

/* Turns an HTTP answer into 0 + document or errno + the server's message. */
static int reply_parse(struct vd_api_client *c, long status, const struct reply_buf *buf,
		       json_t **ret_reply, struct vd_err *err)
{
	json_t *doc = buf->len ? json_loadb(buf->data, buf->len, 0, NULL) : json_object();
	if (status < 200 || status > 299) {
		const char *msg = json_string_value(json_object_get(doc, "error"));
		int rc = status == 401 ? -EKEYREJECTED   /* the token, whatever the body says */
			 : errno_from_reply(status, json_string_value(json_object_get(doc, "kind")));
		if (status == 401)
			vd_err_set(err, rc, "volumed at %s refused the token: %s", endpoint(c),
				   msg ? msg : "HTTP 401");
		else if (msg)
			vd_err_set(err, rc, "%s", msg);
		else
			vd_err_set(err, rc, "volumed at %s answered HTTP %ld", endpoint(c), status);
		json_decref(doc);
		return rc;
	}
	if (!doc)
		return vd_err_set(err, -EPROTO, "volumed at %s answered HTTP %ld with a body "
				  "that is not JSON", endpoint(c), status);
	if (ret_reply)
		*ret_reply = doc;
	else
		json_decref(doc);
	return 0;
}

int vd_api_request(struct vd_api_client *c, const char *method, const char *path,
		   const json_t *body, json_t **ret_reply, struct vd_err *err)
{
	struct reply_buf buf = { 0 };
	struct curl_slist *headers = NULL;
	char *url = NULL, *text = NULL;
	char detail[CURL_ERROR_SIZE] = "";
	int rc;

	if (!path || path[0] != '/')
		return vd_err_set(err, -EINVAL, "API path \"%s\" must start with '/'",
				  path ? path : "");
	if (asprintf(&url, "%s%s", c->base_url, path) < 0) {
		url = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = request_setup(c, method, url, text, &buf, &headers);
	if (rc < 0) {
		vd_err_set(err, rc, "cannot set up the request %s %s", method, path);
		goto out;
	}
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, detail);
	CURLcode cc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	if (cc == CURLE_WRITE_ERROR && !buf.overflow)
		cc = CURLE_OUT_OF_MEMORY;
	if (cc != CURLE_OK) {
		rc = transport_error(c, cc, detail[0] ? detail : curl_easy_strerror(cc), err);
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	rc = reply_parse(c, status, &buf, ret_reply, err);
out:
	if (rc == -ENOMEM && err && !err->code)
		vd_err_set(err, rc, "out of memory talking to volumed at %s", endpoint(c));
	curl_slist_free_all(headers);
	free(buf.data);
	free(text);
	free(url);
	return rc;
}

int vd_api_status(struct vd_api_client *c, json_t **ret_reply, struct vd_err *err)
{
	return vd_api_request(c, "GET", "/v1/status", NULL, ret_reply, err);
}

int vd_api_list(struct vd_api_client *c, json_t **ret_reply, struct vd_err *err)
{
	return vd_api_request(c, "GET", "/v1/volumes", NULL, ret_reply, err);
}

/* "/v1/volumes/NAME[/action]" into path, after checking NAME. */
static int volume_path(const char *name, const char *action, char *path, size_t len,
		       struct vd_err *err)
{
	int rc = vd_name_check(name, err);
	if (rc < 0)
		return rc;
	snprintf(path, len, "/v1/volumes/%s%s%s", name, action ? "/" : "", action ? action : "");
	return 0;
}

/* A request on a volume; body (may be NULL) is stolen. */
static int volume_request(struct vd_api_client *c, const char *method, const char *name,
			  const char *action, json_t *body, json_t **ret_reply,
			  struct vd_err *err)
{
	char path[VD_NAME_MAX + 64];
	int rc = volume_path(name, action, path, sizeof(path), err);
	if (rc == 0)
		rc = vd_api_request(c, method, path, body, ret_reply, err);
	json_decref(body);
	return rc;
}

int vd_api_create(struct vd_api_client *c, const char *name, const char *driver,
		  const json_t *opts, json_t **ret_reply, struct vd_err *err)
{
	int rc = vd_name_check(name, err);
	if (rc < 0)
		return rc;
	json_t *body = json_pack("{s:s, s:s*, s:O*}", "name", name, "driver", driver,
				 "options", opts);
	if (!body)
		return vd_err_set(err, -ENOMEM, "out of memory building the request");
	rc = vd_api_request(c, "POST", "/v1/volumes", body, ret_reply, err);
	json_decref(body);
	return rc;
}

int vd_api_inspect(struct vd_api_client *c, const char *name, json_t **ret_reply,
		   struct vd_err *err)
{
	return volume_request(c, "GET", name, NULL, NULL, ret_reply, err);
}

int vd_api_remove(struct vd_api_client *c, const char *name, json_t **ret_reply,
		  struct vd_err *err)
{
	return volume_request(c, "DELETE", name, NULL, NULL, ret_reply, err);
}

/* mount and unmount: {"id"} only when given. */
static int mount_request(struct vd_api_client *c, const char *name, const char *action,
			 const char *mount_id, json_t **ret_reply, struct vd_err *err)
{
	json_t *body = json_pack("{s:s*}", "id", mount_id);
	if (!body)
		return vd_err_set(err, -ENOMEM, "out of memory building the request");
	return volume_request(c, "POST", name, action, body, ret_reply, err);
}

int vd_api_mount(struct vd_api_client *c, const char *name, const char *mount_id,
		 json_t **ret_reply, struct vd_err *err)
{
	return mount_request(c, name, "mount", mount_id, ret_reply, err);
}

int vd_api_unmount(struct vd_api_client *c, const char *name, const char *mount_id,
		   json_t **ret_reply, struct vd_err *err)
{
	return mount_request(c, name, "unmount", mount_id, ret_reply, err);
}
