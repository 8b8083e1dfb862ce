/* http.c — the HTTP/1.1 server shared by the Docker plugin and the REST
 * API (libmicrohttpd): on a unix socket, or over HTTPS on TCP where every
 * request must carry the bearer token.
 *
 * We bind the socket ourselves (usock.c: replacing a stale one, refusing a
 * live one; or a TCP socket) and hand it to libmicrohttpd, which serves each
 * connection on its own thread, so handlers may block (mkfs takes seconds).
 * Each request's body is collected into a per-request buffer up to
 * max_body; a larger one is dropped and the handler is told so (too_large)
 * to answer 413 in its own protocol. On TCP, a request without the right
 * token is answered 401 and the handler never runs; its body is read and
 * dropped, never kept. Dropped bodies are read to their end (up to
 * HTTP_DRAIN_MAX) before the answer, so that the client sees it. Threads: libmicrohttpd's listener plus one per
 * connection; the server object is read-only while serving (but for the
 * start-up log capture, an atomic flag), so there are no locks. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "err.h"
#include "http.h"
#include "log.h"
#include "usock.h"

#define HTTP_CONNECTION_TIMEOUT_S 60
#define HTTP_CONNECTION_LIMIT 128
#define HTTP_PER_IP_CONNECTION_LIMIT 64   /* TCP: no one address takes them all */
#define HTTP_LISTEN_BACKLOG 64
#define HTTP_PEM_MAX (1024 * 1024)
/* TLS 1.2 and 1.3 only, GnuTLS's NORMAL ciphers. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define HTTP_WWW_AUTHENTICATE "Bearer realm=\"volumed\""

struct vd_http_server {
	struct MHD_Daemon *mhd;
	struct vd_usock sock;    /* libmicrohttpd owns sock.fd once started; path
				  * "" for TCP */
	size_t max_body;
	vd_http_handler handler;
	void *userdata;
	/* TCP only: */
	char *token;             /* the bearer token; NULL on a unix socket */
	char *cert_pem;          /* kept until stop; the key is zeroed then */
	char *key_pem;
	size_t key_len;
	unsigned port;
	char addr[300];          /* as given, for messages */
	atomic_int capture;      /* 1 while starting: keep libmicrohttpd's last
				  * message for the error */
	char start_msg[256];
};

/* One request's upload state (libmicrohttpd's con_cls). */
struct http_body {
	char *buf;               /* NUL-terminated, NULL while empty */
	size_t len;
	size_t cap;
	size_t seen;             /* body bytes received, kept or not */
	int too_large;
	int refused;             /* 0, or 1 + "an Authorization header was given" */
	int answered;            /* a response is queued: ignore the rest */
};

/* A refused or oversized body up to this size is read and dropped before
 * the answer goes out: answering earlier closes the connection with unread
 * data, and the client's TCP stack may then discard the answer. */
#define HTTP_DRAIN_MAX (1u << 20)

static void body_free(struct http_body *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b);
}

/* Appends data, or drops everything once the limit is passed. */
static int body_append(struct http_body *b, size_t max_body, const char *data, size_t len)
{
	if (b->too_large)
		return 0;
	if (len > max_body - b->len) {
		free(b->buf);
		b->buf = NULL;
		b->len = b->cap = 0;
		b->too_large = 1;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + len + 1)
			cap *= 2;
		if (cap > max_body + 1)
			cap = max_body + 1;
		char *bigger = realloc(b->buf, cap);
		if (!bigger)
			return -ENOMEM;
		b->buf = bigger;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return 0;
}

/* The announced body length, or -1 when none (or chunked). */
static long long declared_length(struct MHD_Connection *conn)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!s)
		return -1;
	errno = 0;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s)
		return -1;   /* libmicrohttpd itself rejects a malformed length */
	return errno == ERANGE || n > LLONG_MAX ? LLONG_MAX : (long long)n;
}

/* www_authenticate: the value of that header, or NULL for none. */
static enum MHD_Result send_response(struct MHD_Connection *conn, struct vd_http_response *resp,
				     const char *www_authenticate)
{
	size_t len = resp->body ? strlen(resp->body) : 0;
	struct MHD_Response *r;
	if (len)
		r = MHD_create_response_from_buffer(len, resp->body, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r || !len)
		free(resp->body);
	if (!r)
		return MHD_NO;
	unsigned status = resp->status >= 100 && resp->status <= 599 ? (unsigned)resp->status : 500;
	enum MHD_Result ret = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
			resp->content_type ? resp->content_type : "application/json");
	if (ret == MHD_YES && www_authenticate)
		ret = MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, www_authenticate);
	if (ret == MHD_YES)
		ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result dispatch(struct vd_http_server *srv, struct MHD_Connection *conn,
				const char *url, const char *method, const struct http_body *b)
{
	struct vd_http_request req = {
		.method = method,
		.path = url,
		.body = b->buf ? b->buf : "",
		.body_len = b->len,
		.too_large = b->too_large,
		.max_body = srv->max_body,
	};
	struct vd_http_response resp = { .status = 200, .body = NULL, .content_type = NULL };
	srv->handler(srv->userdata, &req, &resp);
	return send_response(conn, &resp, NULL);
}

int vd_http_bearer_ok(const char *authorization, const char *token)
{
	static const char scheme[] = "Bearer";
	const size_t scheme_len = sizeof(scheme) - 1;
	if (!authorization || !token || !token[0])
		return 0;
	if (strncasecmp(authorization, scheme, scheme_len) != 0 ||
	    authorization[scheme_len] != ' ')
		return 0;
	const char *given = authorization + scheme_len;
	while (*given == ' ')
		given++;
	/* The loop runs over the configured token whatever was given, and
	 * accumulates differences without an early exit. */
	size_t given_len = strlen(given), want_len = strlen(token);
	volatile unsigned char diff = given_len != want_len;
	for (size_t i = 0; i < want_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
		diff |= g ^ (unsigned char)token[i];
	}
	return diff == 0;
}

/* The client's address as text, for the log. */
static void client_address(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	snprintf(buf, len, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
			  (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
			  (socklen_t)len);
}

/* 401 without reading the body or calling the handler. */
static enum MHD_Result refuse_unauthorized(struct vd_http_server *srv,
					   struct MHD_Connection *conn, const char *url,
					   const char *method, int had_header)
{
	char from[INET6_ADDRSTRLEN] = "?";
	client_address(conn, from, sizeof(from));
	vd_log(VD_LOG_INFO, "https %s: refused %.16s %.200s from %s: %s bearer token", srv->addr,
	       method, url, from, had_header ? "invalid" : "missing");
	struct vd_http_response resp = { .status = 401, .body = NULL, .content_type = NULL };
	vd_http_reply_json(&resp, 401, json_pack("{s:s,s:s}", "error", VD_HTTP_UNAUTHORIZED_MSG,
						 "kind", vd_errno_kind(-EKEYREJECTED)));
	return send_response(conn, &resp, HTTP_WWW_AUTHENTICATE);
}

/* The answer for a request whose body is dropped: 401 or 413. */
static enum MHD_Result answer_dropped(struct vd_http_server *srv, struct MHD_Connection *conn,
				      const char *url, const char *method, struct http_body *b)
{
	b->answered = 1;
	if (b->refused)
		return refuse_unauthorized(srv, conn, url, method, b->refused > 1);
	return dispatch(srv, conn, url, method, b);
}

/* At the headers: decides whether the body is kept, dropped or not read. */
static enum MHD_Result on_headers(struct vd_http_server *srv, struct MHD_Connection *conn,
				  const char *url, const char *method, struct http_body *b)
{
	if (srv->token) {
		const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_AUTHORIZATION);
		if (!vd_http_bearer_ok(auth, srv->token))
			b->refused = 1 + (auth != NULL);
	}
	long long len = declared_length(conn);
	if (len > (long long)srv->max_body)
		b->too_large = 1;
	/* A body too big even to drop is not read: answer at once. */
	if ((b->refused || b->too_large) && len > (long long)HTTP_DRAIN_MAX)
		return answer_dropped(srv, conn, url, method, b);
	return MHD_YES;
}

/* Called once at the headers, once per body chunk, once at the end. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct vd_http_server *srv = cls;
	struct http_body *b = *con_cls;
	(void)version;

	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		return on_headers(srv, conn, url, method, b);
	}
	size_t chunk = *upload_data_size;
	*upload_data_size = 0;
	if (b->answered)
		return MHD_YES;   /* discarded: the answer is out */
	if (!chunk)
		return b->refused ? answer_dropped(srv, conn, url, method, b)
				  : dispatch(srv, conn, url, method, b);
	b->seen += chunk;
	if ((b->refused || b->too_large) && b->seen > HTTP_DRAIN_MAX)
		return answer_dropped(srv, conn, url, method, b);
	if (!b->refused && body_append(b, srv->max_body, upload_data, chunk) < 0)
		return MHD_NO;
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	body_free(*con_cls);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct vd_http_server *srv = cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	if (srv && atomic_load(&srv->capture))
		snprintf(srv->start_msg, sizeof(srv->start_msg), "%s", line);
	vd_log(VD_LOG_DEBUG, "http: %s", line);
}

static void server_free(struct vd_http_server *srv)
{
	if (!srv)
		return;
	if (srv->token)
		explicit_bzero(srv->token, strlen(srv->token));
	if (srv->key_pem)
		explicit_bzero(srv->key_pem, srv->key_len);
	free(srv->token);
	free(srv->key_pem);
	free(srv->cert_pem);
	free(srv);
}

int vd_http_listen_unix(const char *path, mode_t mode, size_t max_body,
			vd_http_handler handler, void *userdata,
			struct vd_http_server **ret_server, struct vd_err *err)
{
	if (!path || !handler || !ret_server)
		return vd_err_set(err, -EINVAL, "http server: a socket path and a handler are required");
	struct vd_http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return vd_err_set(err, -ENOMEM, "out of memory");
	srv->max_body = max_body;
	srv->handler = handler;
	srv->userdata = userdata;
	int r = vd_usock_listen(path, mode, HTTP_LISTEN_BACKLOG, &srv->sock, err);
	if (r < 0) {
		free(srv);
		return r;
	}

	srv->mhd = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
		MHD_OPTION_LISTEN_SOCKET, srv->sock.fd,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTION_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	if (!srv->mhd) {
		r = vd_err_set(err, -EIO, "cannot start the HTTP server on %s", path);
		vd_usock_close(&srv->sock);
		server_free(srv);
		return r;
	}
	*ret_server = srv;
	return 0;
}

/* ---- HTTPS on TCP ---- */

static int host_char_ok(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

int vd_http_split_hostport(const char *s, char *host, size_t host_len, unsigned *ret_port,
			   struct vd_err *err)
{
	static const char forms[] = "allowed: IPV4:PORT, [IPV6]:PORT or HOST:PORT, "
				    "PORT 0..65535";
	const char *h, *colon;
	size_t hl;
	if (!s || !s[0])
		return vd_err_set(err, -EINVAL, "empty address; %s", forms);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return vd_err_set(err, -EINVAL, "'%.80s': an [IPV6] address must be "
					  "followed by :PORT; %s", s, forms);
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return vd_err_set(err, -EINVAL, "'%.80s' has no :PORT; %s", s, forms);
		h = s;
		hl = (size_t)(colon - s);
		if (memchr(h, ':', hl))
			return vd_err_set(err, -EINVAL, "'%.80s': put an IPv6 address in brackets, "
					  "as in [::1]:8443; %s", s, forms);
	}
	if (hl == 0)
		return vd_err_set(err, -EINVAL, "'%.80s' has no host; use 0.0.0.0:PORT or "
				  "[::]:PORT for every address; %s", s, forms);
	if (hl >= host_len || hl > 253)
		return vd_err_set(err, -EINVAL, "'%.80s': the host is longer than %zu characters",
				  s, (host_len - 1) < 253 ? host_len - 1 : 253);
	char name[256];
	memcpy(name, h, hl);
	name[hl] = '\0';
	if (s[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, name, &a6) != 1)
			return vd_err_set(err, -EINVAL, "'%.80s': '%s' is not an IPv6 address; %s",
					  s, name, forms);
	} else {
		for (size_t i = 0; i < hl; i++)
			if (!host_char_ok(name[i]))
				return vd_err_set(err, -EINVAL, "'%.80s': the host may hold letters, "
						  "digits, '-', '.' and '_' only; %s", s, forms);
	}
	const char *p = colon + 1;
	unsigned long port = 0;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0 || p[digits] != '\0' || digits > 5 ||
	    (port = strtoul(p, NULL, 10)) > 65535)
		return vd_err_set(err, -EINVAL, "'%.80s': the port '%.20s' is not a number "
				  "0..65535; %s", s, p, forms);
	memcpy(host, name, hl + 1);
	*ret_port = (unsigned)port;
	return 0;
}

/* Reads a PEM file (at most HTTP_PEM_MAX bytes) into a NUL-terminated buffer. */
static int pem_read(const char *what, const char *path, const char *marker, char **ret_text,
		    size_t *ret_len, struct vd_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return vd_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = vd_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > HTTP_PEM_MAX) {
		r = vd_err_set(err, -EINVAL, "%s %s: not a regular file of at most %d bytes",
			       what, path, HTTP_PEM_MAX);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = vd_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = vd_err_set(err, n < 0 ? -errno : -EIO, "%s %s: %s", what, path,
				       n < 0 ? strerror(errno) : "shorter than its size");
			goto fail;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (!strstr(buf, marker)) {
		r = vd_err_set(err, -EINVAL, "%s %s: not PEM (no \"%s\" line)", what, path, marker);
		goto fail;
	}
	close(fd);
	*ret_text = buf;
	*ret_len = len;
	return 0;
fail:
	if (buf)
		explicit_bzero(buf, len);
	free(buf);
	close(fd);
	return r;
}

/* Binds and listens on the first address host:port resolves to. */
static int tcp_listen(const char *addr, struct vd_http_server *srv, struct vd_err *err)
{
	char host[256], port_text[8];
	unsigned port;
	int r = vd_http_split_hostport(addr, host, sizeof(host), &port, err);
	if (r < 0)
		return r;
	snprintf(port_text, sizeof(port_text), "%u", port);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int gr = getaddrinfo(host, port_text, &hints, &res);
	if (gr != 0)
		return vd_err_set(err, -EADDRNOTAVAIL, "cannot resolve %s: %s", host,
				  gai_strerror(gr));
	int last_errno = EADDRNOTAVAIL;
	const char *step = "bind";
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int one = 1;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			step = "socket";
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, HTTP_LISTEN_BACKLOG) < 0) {
			last_errno = errno;
			step = "bind";
			close(fd);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			srv->port = ntohs(ss.ss_family == AF_INET6
					  ? ((struct sockaddr_in6 *)&ss)->sin6_port
					  : ((struct sockaddr_in *)&ss)->sin_port);
		if (port == 0)   /* name the port picked, in the log */
			snprintf(srv->addr, sizeof(srv->addr), "%s%s%s:%u", addr[0] == '[' ? "[" : "",
				 host, addr[0] == '[' ? "]" : "", srv->port);
		srv->sock.fd = fd;
		freeaddrinfo(res);
		return 0;
	}
	freeaddrinfo(res);
	return vd_err_set(err, -last_errno, "cannot listen on %s (%s): %s", addr, step,
			  strerror(last_errno));
}

int vd_http_listen_tcp(const char *addr, const char *cert_file, const char *key_file,
		       const char *token, size_t max_body, vd_http_handler handler,
		       void *userdata, struct vd_http_server **ret_server, struct vd_err *err)
{
	size_t cert_len = 0;
	int r;
	if (!addr || !cert_file || !key_file || !handler || !ret_server)
		return vd_err_set(err, -EINVAL, "https server: an address, a certificate, a key "
				  "and a handler are required");
	if (!token || !token[0])
		return vd_err_set(err, -EINVAL, "https server %s: a bearer token is required", addr);
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return vd_err_set(err, -EOPNOTSUPP, "https server %s: this libmicrohttpd was built "
				  "without TLS support (GnuTLS); use one with HTTPS, or leave "
				  "listen unset", addr);
	struct vd_http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return vd_err_set(err, -ENOMEM, "out of memory");
	srv->sock.fd = -1;
	srv->max_body = max_body;
	srv->handler = handler;
	srv->userdata = userdata;
	snprintf(srv->addr, sizeof(srv->addr), "%s", addr);
	if (!(srv->token = strdup(token))) {
		r = vd_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	r = pem_read("tls_cert", cert_file, "-----BEGIN CERTIFICATE-----", &srv->cert_pem,
		     &cert_len, err);
	if (r == 0)
		r = pem_read("tls_key", key_file, "PRIVATE KEY-----", &srv->key_pem, &srv->key_len,
			     err);
	if (r == 0 && strstr(srv->key_pem, "ENCRYPTED"))
		r = vd_err_set(err, -EINVAL, "tls_key %s: the key is encrypted; give an "
			       "unencrypted PEM key (readable by root only)", key_file);
	if (r == 0)
		r = tcp_listen(addr, srv, err);
	if (r < 0)
		goto fail;

	atomic_store(&srv->capture, 1);
	srv->mhd = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
		MHD_USE_TLS,
		0, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
		MHD_OPTION_LISTEN_SOCKET, srv->sock.fd,
		MHD_OPTION_HTTPS_MEM_CERT, srv->cert_pem,
		MHD_OPTION_HTTPS_MEM_KEY, srv->key_pem,
		MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTION_LIMIT,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTP_PER_IP_CONNECTION_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	atomic_store(&srv->capture, 0);
	if (!srv->mhd) {
		r = vd_err_set(err, -EIO, "cannot start the HTTPS server on %s: %s (are tls_cert "
			       "%s and tls_key %s a matching certificate and key?)", addr,
			       srv->start_msg[0] ? srv->start_msg : "libmicrohttpd refused",
			       cert_file, key_file);
		goto fail;
	}
	*ret_server = srv;
	return 0;
fail:
	if (srv->sock.fd >= 0)
		close(srv->sock.fd);
	server_free(srv);
	return r;
}

unsigned vd_http_port(const struct vd_http_server *server)
{
	return server ? server->port : 0;
}

void vd_http_stop(struct vd_http_server *server)
{
	if (!server)
		return;
	/* Joins every connection thread and closes the listening socket. */
	MHD_stop_daemon(server->mhd);
	vd_usock_unlink(&server->sock);   /* no-op for TCP (no path) */
	server_free(server);
}

void vd_http_reply_json(struct vd_http_response *resp, int status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	free(resp->body);
	resp->status = text ? status : 500;
	resp->body = text;
}
