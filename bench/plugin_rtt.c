/* plugin_rtt.c — round trips to a Docker volume plugin socket.
 *
 * A tiny HTTP/1.1 client over one keep-alive unix-socket connection, so
 * the figures measure the daemon, not a client's start-up. It sends the
 * requests dockerd sends (POST, no Content-Type, the plugin Accept header),
 * reads each answer whole (Content-Length or chunked) before the next one,
 * and reconnects only when the server closes the connection.
 *
 *   plugin_rtt SOCKET get NAME N          N Gets of one volume
 *   plugin_rtt SOCKET list N              N Lists
 *   plugin_rtt SOCKET create PREFIX COUNT Creates PREFIX-1 .. PREFIX-COUNT
 *   plugin_rtt SOCKET remove PREFIX COUNT Removes them
 *
 * Prints one line: op, n, median/p90/p99/min/max in microseconds, errors
 * (answers not 200 or with a non-empty Err), reconnects, and the size of
 * the last answer. Exit status 1 when any request failed.
 *
 * Single-threaded; no locks. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
	const char *path;
	int fd;
	char *buf;      /* bytes read, not yet consumed */
	size_t len, cap;
	unsigned opens;  /* connections opened */
};

struct reply {
	int status;
	char *body;     /* NUL-terminated, malloc'd */
	size_t body_len;
	int close;      /* the server will close the connection */
};

static void die(const char *what)
{
	fprintf(stderr, "plugin_rtt: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void conn_open(struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "plugin_rtt: socket path too long\n");
		exit(2);
	}
	strcpy(sa.sun_path, c->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(c->path);
	c->len = 0;
	c->opens++;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Reads more bytes into the buffer; 0 on EOF. */
static ssize_t conn_fill(struct conn *c)
{
	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 1 << 17;
		c->buf = realloc(c->buf, c->cap + 1);
		if (!c->buf)
			die("realloc");
	}
	ssize_t n;
	do
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		die("read");
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return n;
}

static void conn_consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->buf[c->len] = '\0';
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Finds header name (case-insensitive) in the header block; returns a
 * pointer to its value or NULL. */
static const char *header(const char *hdrs, const char *name)
{
	size_t n = strlen(name);
	for (const char *l = strstr(hdrs, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			h += n + 1;
			while (*h == ' ' || *h == '\t')
				h++;
			return h;
		}
	}
	return NULL;
}

/* Reads one response. Returns 0, or -1 when the connection closed before
 * any byte of it (the caller reconnects and retries). */
static int read_reply(struct conn *c, struct reply *r)
{
	char *end;
	while (!(end = strstr(c->buf ? c->buf : "", "\r\n\r\n"))) {
		if (conn_fill(c) == 0) {
			if (c->len == 0)
				return -1;
			fprintf(stderr, "plugin_rtt: connection closed inside headers\n");
			exit(2);
		}
	}
	size_t hlen = (size_t)(end - c->buf) + 4;
	char *hdrs = strndup(c->buf, hlen);
	if (!hdrs)
		die("strndup");
	conn_consume(c, hlen);

	memset(r, 0, sizeof(*r));
	if (sscanf(hdrs, "HTTP/1.%*d %d", &r->status) != 1) {
		fprintf(stderr, "plugin_rtt: bad status line\n");
		exit(2);
	}
	const char *conn_hdr = header(hdrs, "Connection");
	r->close = conn_hdr && strncasecmp(conn_hdr, "close", 5) == 0;
	const char *te = header(hdrs, "Transfer-Encoding");
	const char *cl = header(hdrs, "Content-Length");

	if (te && strncasecmp(te, "chunked", 7) == 0) {
		size_t cap = 4096, len = 0;
		char *body = malloc(cap);
		if (!body)
			die("malloc");
		for (;;) {
			char *eol;
			while (!(eol = strstr(c->buf ? c->buf : "", "\r\n")))
				if (conn_fill(c) == 0)
					goto eof;
			size_t sz = strtoul(c->buf, NULL, 16);
			conn_consume(c, (size_t)(eol - c->buf) + 2);
			while (c->len < sz + 2)
				if (conn_fill(c) == 0)
					goto eof;
			if (sz == 0) {
				/* No trailers expected: the final CRLF. */
				conn_consume(c, 2);
				break;
			}
			if (len + sz + 1 > cap) {
				cap = (len + sz + 1) * 2;
				body = realloc(body, cap);
				if (!body)
					die("realloc");
			}
			memcpy(body + len, c->buf, sz);
			len += sz;
			conn_consume(c, sz + 2);
		}
		body[len] = '\0';
		r->body = body;
		r->body_len = len;
	} else if (cl) {
		size_t sz = strtoul(cl, NULL, 10);
		while (c->len < sz)
			if (conn_fill(c) == 0)
				goto eof;
		r->body = strndup(c->buf, sz);
		if (!r->body)
			die("strndup");
		r->body_len = sz;
		conn_consume(c, sz);
	} else {
		/* Body until the server closes. */
		while (conn_fill(c) > 0)
			;
		r->body = strndup(c->buf ? c->buf : "", c->len);
		r->body_len = c->len;
		conn_consume(c, c->len);
		r->close = 1;
	}
	free(hdrs);
	return 0;
eof:
	fprintf(stderr, "plugin_rtt: connection closed inside a body\n");
	exit(2);
}

/* 1 when the body has a non-empty "Err". */
static int has_err(const char *body)
{
	const char *p = strstr(body, "\"Err\"");
	if (!p)
		return 0;
	p += 5;
	while (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n')
		p++;
	return !(p[0] == '"' && p[1] == '"');
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One request; returns its round trip in microseconds, counts errors. */
static double call(struct conn *c, const char *endpoint, const char *body,
		   unsigned *errors, size_t *last_len)
{
	char head[512];
	size_t blen = strlen(body);
	int hl = snprintf(head, sizeof(head),
			  "POST /%s HTTP/1.1\r\nHost: plugin\r\nUser-Agent: plugin_rtt\r\n"
			  "Content-Length: %zu\r\n"
			  "Accept: application/vnd.docker.plugins.v1.2+json\r\n\r\n",
			  endpoint, blen);
	for (int attempt = 0;; attempt++) {
		if (c->fd < 0)
			conn_open(c);
		double t0 = now_us();
		struct reply r;
		if (write_all(c->fd, head, (size_t)hl) < 0 || write_all(c->fd, body, blen) < 0 ||
		    read_reply(c, &r) < 0) {
			conn_close(c);
			if (attempt >= 2) {
				fprintf(stderr, "plugin_rtt: the server keeps closing the connection\n");
				exit(2);
			}
			continue;
		}
		double dt = now_us() - t0;
		if (r.status != 200 || has_err(r.body)) {
			if (*errors < 3)
				fprintf(stderr, "plugin_rtt: %s %s -> %d %.300s\n", endpoint, body,
					r.status, r.body);
			(*errors)++;
		}
		*last_len = r.body_len;
		if (r.close)
			conn_close(c);
		free(r.body);
		return dt;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: plugin_rtt SOCKET get NAME N | list N | create PREFIX COUNT | remove PREFIX COUNT\n");
		return 2;
	}
	struct conn c = { .path = argv[1], .fd = -1 };
	const char *op = argv[2];
	long n;
	const char *name = NULL;
	if (strcmp(op, "list") == 0) {
		n = strtol(argv[3], NULL, 10);
	} else if (argc >= 5 && (strcmp(op, "get") == 0 || strcmp(op, "create") == 0 ||
				 strcmp(op, "remove") == 0)) {
		name = argv[3];
		n = strtol(argv[4], NULL, 10);
	} else {
		fprintf(stderr, "plugin_rtt: unknown operation %s\n", op);
		return 2;
	}
	if (n <= 0 || n > 10000000) {
		fprintf(stderr, "plugin_rtt: bad count\n");
		return 2;
	}

	double *t = calloc((size_t)n, sizeof(*t));
	if (!t)
		die("calloc");
	unsigned errors = 0;
	size_t last_len = 0;
	char body[1024];
	for (long i = 0; i < n; i++) {
		const char *ep;
		if (strcmp(op, "get") == 0) {
			ep = "VolumeDriver.Get";
			snprintf(body, sizeof(body), "{\"Name\":\"%s\"}\n", name);
		} else if (strcmp(op, "list") == 0) {
			ep = "VolumeDriver.List";
			snprintf(body, sizeof(body), "{}\n");
		} else if (strcmp(op, "create") == 0) {
			ep = "VolumeDriver.Create";
			snprintf(body, sizeof(body), "{\"Name\":\"%s-%ld\",\"Opts\":null}\n", name, i + 1);
		} else {
			ep = "VolumeDriver.Remove";
			snprintf(body, sizeof(body), "{\"Name\":\"%s-%ld\"}\n", name, i + 1);
		}
		t[i] = call(&c, ep, body, &errors, &last_len);
	}
	conn_close(&c);
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	printf("op=%s n=%ld median_us=%.1f p90_us=%.1f p99_us=%.1f min_us=%.1f max_us=%.1f "
	       "errors=%u reconnects=%u last_bytes=%zu\n",
	       op, n, pct(t, (size_t)n, 0.5), pct(t, (size_t)n, 0.9), pct(t, (size_t)n, 0.99),
	       t[0], t[n - 1], errors, c.opens ? c.opens - 1 : 0, last_len);
	free(t);
	free(c.buf);
	return errors ? 1 : 0;
}
