/* iscsi_client.c — volumed's own short iSCSI sessions over libiscsi, for
 * the control plane: SendTargets discovery, LUN facts, persistent
 * reservation state, fencing and zeroing (see iscsi_client.h).
 *
 * Every call opens one session (connect, login), does its work and logs
 * out. Each step is driven with libiscsi's async API and our own poll()
 * loop, so each has a hard deadline of peer->timeout_ms: the TCP connect
 * (a closed port, a silent or unreachable host), the login, every SCSI
 * command and the logout. libiscsi's sync API was not enough: its event
 * loop loses the connect errno ("Can not reconnect right now") and its
 * timeouts are whole seconds. Auto-reconnect is off: a dropped
 * connection fails the call. UNIT ATTENTION is retried a few times.
 *
 * Errors (besides the header's): -EBUSY reservation conflict, -ENOTCONN
 * connection lost, -EHOSTUNREACH unreachable or unresolvable portal,
 * -EOPNOTSUPP a command the target lacks, -EROFS write protected; errnos
 * chosen from err.c's table so the front-ends map them well.
 *
 * Threads and locks: none. No shared state: one libiscsi context per call,
 * freed on every path. CHAP secrets go to libiscsi only, never into an
 * error message. */
#include "iscsi_client.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define POLL_SLICE_MS 100
#define UA_RETRIES 3                      /* UNIT ATTENTION / BUSY retries per command */
#define ZERO_CHUNK (1024 * 1024)          /* bytes per WRITE SAME 16 / WRITE 16 */
#define REPORT_LUNS_ALLOC 16384           /* first try; grown to what the target says */
#define REPORT_LUNS_ALLOC_MAX (8 + 8 * 16384)
#define PR_KEYS_ALLOC (8 + 8 * VD_ISCSI_PR_KEYS_MAX)
#define PR_KEYS_ALLOC_MAX 65528           /* PERSISTENT RESERVE IN's 16-bit length, 8-aligned */

/* ---------------------------------------------------------------- time */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- session */

/* A libiscsi callback's result. Those of connect, login, logout live in
 * struct sess: libiscsi may call them again while the context is torn
 * down, and the session outlives its context. */
struct waiter {
	int done;
	int status;
};

struct sess {
	struct iscsi_context *ctx;
	const char *portal;
	const char *target;        /* NULL: a discovery session */
	int timeout_ms;
	int connecting;            /* the TCP connect is in progress */
	int logged_in;
	int dead;                  /* transport failed or timed out: no logout */
	struct waiter conn, login, logout;
};

static void waiter_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	(void)ctx;
	(void)data;
	struct waiter *w = priv;
	w->status = status;
	w->done = 1;
}

/* The errno libiscsi put in its message as "...%s(%d)...", 0 when none. */
static int errno_in(const char *msg)
{
	int found = 0;
	for (const char *p = msg ? strchr(msg, '(') : NULL; p; p = strchr(p + 1, '(')) {
		char *end;
		long v = strtol(p + 1, &end, 10);
		if (end != p + 1 && *end == ')' && v > 0 && v < 4096)
			found = (int)v;
	}
	return found;
}

/* "connection refused", ... for a transport errno. */
static const char *why(int e)
{
	switch (e) {
	case ECONNREFUSED: return "connection refused";
	case EHOSTUNREACH: return "host unreachable";
	case ENETUNREACH: return "network unreachable";
	case ECONNRESET: return "connection closed by the target";
	case EPIPE: return "connection closed by the target";
	case ETIMEDOUT: return "timed out";
	case EADDRNOTAVAIL: return "address not available";
	default: return strerror(e);
	}
}

/* The errno a caller gets for a transport failure: one the front-ends map
 * (err.c's table) to "unavailable" or "timeout"; the message keeps the
 * precise one. */
static int transport_rc(int rc)
{
	switch (-rc) {
	case ECONNREFUSED:
	case ETIMEDOUT:
	case EHOSTUNREACH:
		return rc;
	case ENETUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EADDRNOTAVAIL:
		return -EHOSTUNREACH;
	default:
		return -ENOTCONN;
	}
}

/* Drives the session until *done or the deadline: 0, or a negative errno
 * (-ETIMEDOUT, a connect errno, -ECONNRESET) after which the session is
 * unusable. */
static int sess_wait(struct sess *s, const int *done, double deadline)
{
	while (!*done) {
		double left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		int fd = iscsi_get_fd(s->ctx);
		if (fd < 0)
			return -ECONNRESET;
		struct pollfd pfd = { .fd = fd, .events = (short)iscsi_which_events(s->ctx) };
		int slice = left < POLL_SLICE_MS ? (int)left + 1 : POLL_SLICE_MS;
		int r = poll(&pfd, 1, slice);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r > 0 && s->connecting && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
			/* The connect finished: read its errno before libiscsi
			 * does (its message loses it). 0 leaves nothing to clear. */
			int e = 0;
			socklen_t len = sizeof(e);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0)
				return -e;
		}
		if (iscsi_service(s->ctx, r > 0 ? pfd.revents : 0) < 0)
			return s->connecting ? -ECONNREFUSED : -ECONNRESET;
	}
	return 0;
}

/* TCP SYN retries for a timeout (the kernel waits 1, 2, 4, ... s): enough to
 * cover it, so the poll deadline is what ends a connect. */
static int syncnt_for(int timeout_ms)
{
	int n = 1;
	while (n < 6 && ((1 << (n + 1)) - 1) * 1000 < timeout_ms)
		n++;
	return n;
}

/* "login to IQN at PORTAL" / "discovery at PORTAL" */
static void sess_where(const struct sess *s, char *buf, size_t len)
{
	if (s->target)
		snprintf(buf, len, "login to %s at %s", s->target, s->portal);
	else
		snprintf(buf, len, "SendTargets discovery at %s", s->portal);
}

/* The login failed with a login response or a CHAP problem. */
static int login_failed(struct sess *s, int have_chap, struct vd_err *err)
{
	char where[600];
	sess_where(s, where, sizeof(where));
	const char *msg = iscsi_get_error(s->ctx);
	if (!msg)
		msg = "";
	/* "Failed to log in to target. Status: <text>(<class << 8 | detail>)" */
	int status = strstr(msg, "Status: ") ? errno_in(strstr(msg, "Status: ")) : 0;
	switch (status) {
	case 0x0201:
		if (have_chap)
			return vd_err_set(err, -EACCES, "%s: CHAP authentication failed", where);
		return vd_err_set(err, -EACCES, "%s: authentication failed (the target requires "
				  "CHAP and no credentials are configured)", where);
	case 0x0202:
		return vd_err_set(err, -EACCES, "%s: initiator not authorized by the target's ACL",
				  where);
	case 0x0203:
		return vd_err_set(err, -ENOENT, "%s: no such target", where);
	case 0x0204:
		return vd_err_set(err, -ENOENT, "%s: target removed", where);
	default:
		break;
	}
	if (strstr(msg, "CHAP_R") || strstr(msg, "CHAP targetname"))
		return vd_err_set(err, -EACCES, "%s: mutual CHAP failed: the target did not prove "
				  "its identity (%s)", where, msg);
	if (strstr(msg, "CHAP"))
		return vd_err_set(err, -EACCES, "%s: CHAP authentication failed (%s)", where, msg);
	if (status >= 0x0300)
		return vd_err_set(err, -EAGAIN, "%s: target error (%s)", where, msg);
	return vd_err_set(err, -EIO, "%s: login refused (%s)", where, msg[0] ? msg : "no reason");
}

static void sess_close(struct sess *s)
{
	if (!s->ctx)
		return;
	if (s->logged_in && !s->dead) {
		s->logout.done = 0;
		if (iscsi_logout_async(s->ctx, waiter_cb, &s->logout) == 0)
			(void)sess_wait(s, &s->logout.done, now_ms() + s->timeout_ms);
	}
	iscsi_destroy_context(s->ctx);
	s->ctx = NULL;
}

/* Connects and logs in: to target (a normal session) or, target NULL, a
 * discovery session. On failure everything is freed and err is set. */
static int sess_open(struct sess *s, const struct vd_iscsi_peer *peer, const char *target,
		     struct vd_err *err)
{
	memset(s, 0, sizeof(*s));
	if (!peer || !peer->portal || !peer->portal[0])
		return vd_err_set(err, -EINVAL, "iscsi: no portal given");
	if (!peer->initiator || !peer->initiator[0])
		return vd_err_set(err, -EINVAL, "iscsi: no initiator IQN given");
	if (target && !target[0])
		return vd_err_set(err, -EINVAL, "iscsi: empty target IQN (portal %s)", peer->portal);
	s->portal = peer->portal;
	s->target = target;
	s->timeout_ms = peer->timeout_ms > 0 ? peer->timeout_ms : VD_ISCSI_TIMEOUT_DEFAULT;
	char where[600];
	sess_where(s, where, sizeof(where));

	s->ctx = iscsi_create_context(peer->initiator);
	if (!s->ctx)
		return vd_err_set(err, -ENOMEM, "%s: cannot create an iSCSI context", where);
	if (target) {
		iscsi_set_targetname(s->ctx, target);
		iscsi_set_session_type(s->ctx, ISCSI_SESSION_NORMAL);
	} else {
		iscsi_set_session_type(s->ctx, ISCSI_SESSION_DISCOVERY);
	}
	iscsi_set_header_digest(s->ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_noautoreconnect(s->ctx, 1);
	/* libiscsi's own PDU timeout is a backstop only: it counts whole
	 * seconds of time(), so ceil(timeout) fires up to a second early
	 * (measured: 906 ms for 1000). One more second lets our deadline,
	 * exact to the millisecond, always come first. */
	iscsi_set_timeout(s->ctx, (s->timeout_ms + 999) / 1000 + 1);
	iscsi_set_tcp_syncnt(s->ctx, syncnt_for(s->timeout_ms));
	iscsi_set_tcp_user_timeout(s->ctx, s->timeout_ms);

	const struct vd_iscsi_chap *chap = peer->chap;
	int have_chap = chap && chap->username && chap->username[0] && chap->password;
	if (have_chap) {
		if (iscsi_set_initiator_username_pwd(s->ctx, chap->username, chap->password) != 0) {
			sess_close(s);
			return vd_err_set(err, -EINVAL, "%s: CHAP user name or secret refused by "
					  "libiscsi (too long?)", where);
		}
		if (chap->target_username && chap->target_username[0] && chap->target_password &&
		    iscsi_set_target_username_pwd(s->ctx, chap->target_username,
						  chap->target_password) != 0) {
			sess_close(s);
			return vd_err_set(err, -EINVAL, "%s: mutual CHAP user name or secret refused "
					  "by libiscsi (too long?)", where);
		}
	}

	/* TCP connect. libiscsi resolves a host name with a blocking
	 * getaddrinfo() first (bounded by the resolver's own timeouts, not
	 * ours); an address connects without blocking. */
	int rc;
	s->connecting = 1;
	if (iscsi_connect_async(s->ctx, s->portal, waiter_cb, &s->conn) != 0) {
		const char *msg = iscsi_get_error(s->ctx);
		int e = errno_in(msg);
		if (msg && strstr(msg, "resolv"))
			rc = vd_err_set(err, -EHOSTUNREACH, "%s: cannot resolve the portal's host", where);
		else if (e)
			rc = vd_err_set(err, transport_rc(-e), "%s: %s", where, why(e));
		else
			rc = vd_err_set(err, -EINVAL, "%s: cannot connect (%s)", where, msg ? msg : "?");
		sess_close(s);
		return rc;
	}
	rc = sess_wait(s, &s->conn.done, now_ms() + s->timeout_ms);
	s->connecting = 0;
	if (rc == 0 && s->conn.status != SCSI_STATUS_GOOD)
		rc = -ECONNREFUSED;
	if (rc < 0) {
		if (rc == -ETIMEDOUT)
			vd_err_set(err, rc, "%s: connect timed out after %d ms", where, s->timeout_ms);
		else
			vd_err_set(err, transport_rc(rc), "%s: %s", where, why(-rc));
		rc = transport_rc(rc);
		s->dead = 1;
		sess_close(s);
		return rc;
	}

	/* Login. */
	if (iscsi_login_async(s->ctx, waiter_cb, &s->login) != 0) {
		rc = vd_err_set(err, -EIO, "%s: cannot start the login (%s)", where,
				iscsi_get_error(s->ctx));
		s->dead = 1;
		sess_close(s);
		return rc;
	}
	rc = sess_wait(s, &s->login.done, now_ms() + s->timeout_ms);
	if (rc == 0 && s->login.status == SCSI_STATUS_TIMEOUT)
		rc = -ETIMEDOUT;
	if (rc < 0) {
		if (rc == -ETIMEDOUT)
			vd_err_set(err, rc, "%s: no login response within %d ms", where, s->timeout_ms);
		else
			vd_err_set(err, transport_rc(rc), "%s: %s during the login", where, why(-rc));
		rc = transport_rc(rc);
		s->dead = 1;
		sess_close(s);
		return rc;
	}
	if (s->login.status != SCSI_STATUS_GOOD) {
		rc = login_failed(s, have_chap, err);
		s->dead = 1;
		sess_close(s);
		return rc;
	}
	s->logged_in = 1;
	return 0;
}

/* ---------------------------------------------------------------- commands */

/* One SCSI command in flight; lives on the caller's stack. The callback
 * only records; the caller frees the task. */
struct cmd {
	struct scsi_task *task;
	int done;
	int status;
};

static void cmd_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	(void)ctx;
	(void)data;
	struct cmd *c = priv;
	c->status = status;
	c->done = 1;
}

static void cmd_free(struct cmd *c)
{
	if (c->task)
		scsi_free_scsi_task(c->task);
	c->task = NULL;
}

typedef struct scsi_task *(*make_fn)(struct iscsi_context *ctx, int lun, void *arg,
				     struct cmd *c);

/* "IQN lun N at PORTAL: WHAT" */
static void cmd_where(const struct sess *s, int lun, const char *what, char *buf, size_t len)
{
	snprintf(buf, len, "%s lun %d at %s: %s", s->target, lun, s->portal, what);
}

/* Runs one command to completion, retrying UNIT ATTENTION and BUSY.
 * 0 with *ret_task (caller frees; NULL ret_task: freed here), or:
 * -ENOENT no such LUN, -EOPNOTSUPP command or field not supported,
 * -EBUSY reservation conflict, -EROFS write protected, -ETIMEDOUT /
 * -ENOTCONN / -EHOSTUNREACH (the session is then dead), -EIO other
 * failures. */
static int scsi_run(struct sess *s, int lun, const char *what, make_fn make, void *arg,
		    struct scsi_task **ret_task, struct vd_err *err)
{
	char where[700];
	cmd_where(s, lun, what, where, sizeof(where));
	if (s->dead)
		return vd_err_set(err, -ENOTCONN, "%s: the session is gone", where);
	for (int attempt = 0;; attempt++) {
		struct cmd c = { NULL, 0, SCSI_STATUS_ERROR };
		c.task = make(s->ctx, lun, arg, &c);
		if (!c.task) {
			s->dead = 1;
			return vd_err_set(err, -ENOMEM, "%s: cannot queue the command (%s)", where,
					  iscsi_get_error(s->ctx));
		}
		int rc = sess_wait(s, &c.done, now_ms() + s->timeout_ms);
		if (rc < 0) {
			/* Runs c's callback now, while c is alive. */
			s->dead = 1;
			iscsi_scsi_cancel_all_tasks(s->ctx);
			cmd_free(&c);
			if (rc == -ETIMEDOUT)
				return vd_err_set(err, rc, "%s: no answer within %d ms", where,
						  s->timeout_ms);
			return vd_err_set(err, transport_rc(rc), "%s: %s", where, why(-rc));
		}
		int key = c.task->sense.key, ascq = c.task->sense.ascq;
		switch (c.status) {
		case SCSI_STATUS_GOOD:
		case SCSI_STATUS_CONDITION_MET:
			if (ret_task)
				*ret_task = c.task;
			else
				cmd_free(&c);
			return 0;
		case SCSI_STATUS_CHECK_CONDITION:
			cmd_free(&c);
			if (key == SCSI_SENSE_UNIT_ATTENTION && attempt < UA_RETRIES)
				continue;
			if (key == SCSI_SENSE_ILLEGAL_REQUEST &&
			    ascq == SCSI_SENSE_ASCQ_LOGICAL_UNIT_NOT_SUPPORTED)
				return vd_err_set(err, -ENOENT, "%s at %s has no LUN %d", s->target,
						  s->portal, lun);
			if (key == SCSI_SENSE_ILLEGAL_REQUEST &&
			    (ascq == SCSI_SENSE_ASCQ_INVALID_OPERATION_CODE ||
			     ascq == SCSI_SENSE_ASCQ_INVALID_FIELD_IN_CDB))
				return vd_err_set(err, -EOPNOTSUPP, "%s: not supported by the target "
						  "(%s)", where, scsi_sense_ascq_str(ascq));
			if (key == SCSI_SENSE_DATA_PROTECTION)
				return vd_err_set(err, -EROFS, "%s: write protected (%s)", where,
						  scsi_sense_ascq_str(ascq));
			return vd_err_set(err, -EIO, "%s: %s, %s (0x%04x)", where,
					  scsi_sense_key_str(key), scsi_sense_ascq_str(ascq),
					  (unsigned)ascq);
		case SCSI_STATUS_RESERVATION_CONFLICT:
			cmd_free(&c);
			return vd_err_set(err, -EBUSY, "%s: reservation conflict (another node "
					  "holds the LUN's reservation)", where);
		case SCSI_STATUS_BUSY:
		case SCSI_STATUS_TASK_SET_FULL:
			cmd_free(&c);
			if (attempt < UA_RETRIES) {
				sleep_ms(100);
				continue;
			}
			return vd_err_set(err, -EAGAIN, "%s: target busy", where);
		case SCSI_STATUS_TIMEOUT:
			s->dead = 1;
			cmd_free(&c);
			return vd_err_set(err, -ETIMEDOUT, "%s: no answer within %d ms", where,
					  s->timeout_ms);
		case SCSI_STATUS_CANCELLED:
		case SCSI_STATUS_ERROR:
			/* The connection failed under the command (libiscsi's
			 * error text is then often an older sense string). */
			s->dead = 1;
			cmd_free(&c);
			return vd_err_set(err, -ENOTCONN, "%s: connection lost", where);
		default:
			cmd_free(&c);
			return vd_err_set(err, -EIO, "%s: SCSI status 0x%x", where,
					  (unsigned)c.status);
		}
	}
}

static struct scsi_task *mk_inquiry(struct iscsi_context *ctx, int lun, void *arg, struct cmd *c)
{
	(void)arg;
	return iscsi_inquiry_task(ctx, lun, 0, 0, 255, cmd_cb, c);
}

static struct scsi_task *mk_cap16(struct iscsi_context *ctx, int lun, void *arg, struct cmd *c)
{
	(void)arg;
	return iscsi_readcapacity16_task(ctx, lun, cmd_cb, c);
}

static struct scsi_task *mk_cap10(struct iscsi_context *ctx, int lun, void *arg, struct cmd *c)
{
	(void)arg;
	return iscsi_readcapacity10_task(ctx, lun, 0, 0, cmd_cb, c);
}

static struct scsi_task *mk_reportluns(struct iscsi_context *ctx, int lun, void *arg,
				       struct cmd *c)
{
	(void)lun;
	return iscsi_reportluns_task(ctx, 0, *(int *)arg, cmd_cb, c);
}

struct prin_arg {
	int sa;
	uint16_t len;
};

static struct scsi_task *mk_prin(struct iscsi_context *ctx, int lun, void *arg, struct cmd *c)
{
	struct prin_arg *a = arg;
	return iscsi_persistent_reserve_in_task(ctx, lun, a->sa, a->len, cmd_cb, c);
}

struct prout_arg {
	int sa, type;
	uint64_t key, sa_key;
	struct scsi_persistent_reserve_out_basic basic;
};

static struct scsi_task *mk_prout(struct iscsi_context *ctx, int lun, void *arg, struct cmd *c)
{
	struct prout_arg *a = arg;
	memset(&a->basic, 0, sizeof(a->basic));
	a->basic.reservation_key = a->key;
	a->basic.service_action_reservation_key = a->sa_key;
	return iscsi_persistent_reserve_out_task(ctx, lun, a->sa, SCSI_PERSISTENT_RESERVE_SCOPE_LU,
						 a->type, &a->basic, cmd_cb, c);
}

struct write_arg {
	uint64_t lba;
	uint32_t blocks, block_size;
	unsigned char *buf;        /* WRITE 16: blocks * block_size; WRITE SAME: one block */
};

static struct scsi_task *mk_write16(struct iscsi_context *ctx, int lun, void *arg, struct cmd *c)
{
	struct write_arg *a = arg;
	return iscsi_write16_task(ctx, lun, a->lba, a->buf, a->blocks * a->block_size,
				  (int)a->block_size, 0, 0, 0, 0, 0, cmd_cb, c);
}

static struct scsi_task *mk_writesame16(struct iscsi_context *ctx, int lun, void *arg,
					struct cmd *c)
{
	struct write_arg *a = arg;
	return iscsi_writesame16_task(ctx, lun, a->lba, a->buf, a->block_size, a->blocks, 0, 0, 0,
				      0, cmd_cb, c);
}

/* ---------------------------------------------------------------- LUN facts */

static void copy_trimmed(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
	size_t n = strlen(dst);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
		dst[--n] = '\0';
}

/* INQUIRY, then READ CAPACITY 16 (10 if 16 is not supported) for a disk. */
static int lun_query(struct sess *s, int lun, struct vd_iscsi_lun_info *ret, struct vd_err *err)
{
	struct vd_iscsi_lun_info info;
	memset(&info, 0, sizeof(info));
	info.lun = lun;
	struct scsi_task *t = NULL;
	int rc = scsi_run(s, lun, "INQUIRY", mk_inquiry, NULL, &t, err);
	if (rc < 0)
		return rc;
	struct scsi_inquiry_standard *inq = scsi_datain_unmarshall(t);
	if (!inq) {
		scsi_free_scsi_task(t);
		return vd_err_set(err, -EIO, "%s lun %d at %s: INQUIRY: malformed data", s->target,
				  lun, s->portal);
	}
	if (inq->qualifier == SCSI_INQUIRY_PERIPHERAL_QUALIFIER_NOT_SUPPORTED) {
		scsi_free_scsi_task(t);
		return vd_err_set(err, -ENOENT, "%s at %s has no LUN %d", s->target, s->portal, lun);
	}
	info.is_disk = inq->qualifier == SCSI_INQUIRY_PERIPHERAL_QUALIFIER_CONNECTED &&
		       inq->device_type == SCSI_INQUIRY_PERIPHERAL_DEVICE_TYPE_DIRECT_ACCESS;
	copy_trimmed(info.vendor, sizeof(info.vendor), inq->vendor_identification);
	copy_trimmed(info.product, sizeof(info.product), inq->product_identification);
	scsi_free_scsi_task(t);
	t = NULL;

	if (info.is_disk) {
		struct vd_err e = VD_ERR_INIT;
		rc = scsi_run(s, lun, "READ CAPACITY 16", mk_cap16, NULL, &t, &e);
		if (rc < 0 && rc != -EOPNOTSUPP)
			return vd_err_set(err, rc, "%s", e.msg);
		if (rc == -EOPNOTSUPP) {
			rc = scsi_run(s, lun, "READ CAPACITY 10", mk_cap10, NULL, &t, err);
			if (rc < 0)
				return rc;
			struct scsi_readcapacity10 *c10 = scsi_datain_unmarshall(t);
			if (c10) {
				info.block_size = c10->block_size;
				info.size = ((uint64_t)c10->lba + 1) * c10->block_size;
			}
		} else {
			struct scsi_readcapacity16 *c16 = scsi_datain_unmarshall(t);
			if (c16) {
				info.block_size = c16->block_length;
				info.size = (c16->returned_lba + 1) * (uint64_t)c16->block_length;
			}
		}
		scsi_free_scsi_task(t);
		if (info.block_size == 0 || info.block_size > 65536)
			return vd_err_set(err, -EIO, "%s lun %d at %s: READ CAPACITY: malformed data "
					  "(block size %u)", s->target, lun, s->portal,
					  info.block_size);
	}
	*ret = info;
	return 0;
}

int vd_iscsi_lun_info(const struct vd_iscsi_peer *peer, const char *target, int lun,
		      struct vd_iscsi_lun_info *ret, struct vd_err *err)
{
	if (!target || lun < 0 || lun > VD_ISCSI_LUN_MAX || !ret)
		return vd_err_set(err, -EINVAL, "iscsi: LUN %d of %s: invalid target or LUN", lun,
				  target ? target : "(none)");
	struct sess s;
	int rc = sess_open(&s, peer, target, err);
	if (rc < 0)
		return rc;
	struct vd_iscsi_lun_info info;
	rc = lun_query(&s, lun, &info, err);
	sess_close(&s);
	if (rc == 0)
		*ret = info;
	return rc;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* REPORT LUNS: the LUN numbers, malloc'ed (caller frees). */
static int report_luns(struct sess *s, int **ret_luns, size_t *ret_count, struct vd_err *err)
{
	int alloc = REPORT_LUNS_ALLOC;
	for (;;) {
		struct scsi_task *t = NULL;
		int rc = scsi_run(s, 0, "REPORT LUNS", mk_reportluns, &alloc, &t, err);
		if (rc < 0)
			return rc;
		const unsigned char *d = t->datain.data;
		size_t size = t->datain.size > 0 ? (size_t)t->datain.size : 0;
		if (!d || size < 8) {
			scsi_free_scsi_task(t);
			return vd_err_set(err, -EIO, "%s at %s: REPORT LUNS: malformed data",
					  s->target, s->portal);
		}
		size_t listed = be32(d) / 8, got = (size - 8) / 8;
		if (listed > got && alloc < REPORT_LUNS_ALLOC_MAX) {
			scsi_free_scsi_task(t);
			alloc = 8 + (int)(listed * 8 < REPORT_LUNS_ALLOC_MAX - 8 ?
					  listed * 8 : REPORT_LUNS_ALLOC_MAX - 8);
			continue;
		}
		size_t n = listed < got ? listed : got;
		int *luns = calloc(n ? n : 1, sizeof(*luns));
		if (!luns) {
			scsi_free_scsi_task(t);
			return vd_err_set(err, -ENOMEM, "out of memory");
		}
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const unsigned char *e = d + 8 + i * 8;
			int method = e[0] >> 6;
			/* Peripheral (00, bus 0) or flat (01) addressing. */
			if (method == 0 && (e[0] & 0x3f) == 0)
				luns[k++] = e[1];
			else if (method == 1)
				luns[k++] = (e[0] & 0x3f) << 8 | e[1];
		}
		scsi_free_scsi_task(t);
		*ret_luns = luns;
		*ret_count = k;
		return 0;
	}
}

int vd_iscsi_list_luns(const struct vd_iscsi_peer *peer, const char *target,
		       int (*fn)(const struct vd_iscsi_lun_info *info, void *userdata),
		       void *userdata, struct vd_err *err)
{
	if (!target || !fn)
		return vd_err_set(err, -EINVAL, "iscsi: list LUNs: no target given");
	struct sess s;
	int rc = sess_open(&s, peer, target, err);
	if (rc < 0)
		return rc;
	int *luns = NULL;
	size_t count = 0;
	rc = report_luns(&s, &luns, &count, err);
	struct vd_iscsi_lun_info *infos = NULL;
	size_t n = 0;
	if (rc == 0) {
		infos = calloc(count ? count : 1, sizeof(*infos));
		if (!infos)
			rc = vd_err_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == 0 && i < count; i++) {
		struct vd_err e = VD_ERR_INIT;
		int r = lun_query(&s, luns[i], &infos[n], &e);
		if (r == 0)
			n++;
		else if (r != -ENOENT)   /* listed, then gone: skipped */
			rc = vd_err_set(err, r, "%s", e.msg);
	}
	sess_close(&s);
	free(luns);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		int r = fn(&infos[i], userdata);
		if (r != 0) {
			rc = r;
			break;
		}
	}
	free(infos);
	return rc;
}

/* ---------------------------------------------------------------- discovery */

struct found {
	char *iqn, *portal;
};

struct disc {
	int done, status, oom;
	struct found *v;
	size_t n, cap;
};

/* Discovery hands fn each target with the first portal it announces,
 * without its ",tpgt" suffix (the form of struct vd_iscsi_peer's portal),
 * or the portal asked when the target announces none. */

/* "host:port,tpgt" -> "host:port" (IPv6 "[addr]:port,tpgt" too). */
static char *portal_dup(const char *p)
{
	char *d = strdup(p);
	if (!d)
		return NULL;
	char *comma = strrchr(d, ',');
	char *bracket = strrchr(d, ']');
	if (comma && (!bracket || comma > bracket))
		*comma = '\0';
	return d;
}

static void disc_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	(void)ctx;
	struct disc *d = priv;
	d->status = status;
	d->done = 1;
	if (status != SCSI_STATUS_GOOD)
		return;
	for (struct iscsi_discovery_address *a = data; a; a = a->next) {
		if (!a->target_name)
			continue;
		if (d->n == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 8;
			struct found *v = realloc(d->v, cap * sizeof(*v));
			if (!v) {
				d->oom = 1;
				return;
			}
			d->v = v;
			d->cap = cap;
		}
		struct found *f = &d->v[d->n];
		f->iqn = strdup(a->target_name);
		f->portal = a->portals && a->portals->portal ? portal_dup(a->portals->portal) : NULL;
		if (!f->iqn || (a->portals && a->portals->portal && !f->portal)) {
			free(f->iqn);
			free(f->portal);
			d->oom = 1;
			return;
		}
		d->n++;
	}
}

int vd_iscsi_discover_targets(const struct vd_iscsi_peer *peer,
			      int (*fn)(const char *iqn, const char *portal, void *userdata),
			      void *userdata, struct vd_err *err)
{
	if (!fn)
		return vd_err_set(err, -EINVAL, "iscsi: discovery: no callback");
	struct sess s;
	int rc = sess_open(&s, peer, NULL, err);
	if (rc < 0)
		return rc;
	struct disc d;
	memset(&d, 0, sizeof(d));
	if (iscsi_discovery_async(s.ctx, disc_cb, &d) != 0) {
		rc = vd_err_set(err, -EIO, "SendTargets discovery at %s: cannot send (%s)", s.portal,
				iscsi_get_error(s.ctx));
	} else {
		rc = sess_wait(&s, &d.done, now_ms() + s.timeout_ms);
		if (rc == -ETIMEDOUT) {
			s.dead = 1;
			vd_err_set(err, rc, "SendTargets discovery at %s: no answer within %d ms",
				   s.portal, s.timeout_ms);
		} else if (rc < 0) {
			s.dead = 1;
			vd_err_set(err, transport_rc(rc), "SendTargets discovery at %s: %s", s.portal,
				   why(-rc));
			rc = transport_rc(rc);
		} else if (d.status != SCSI_STATUS_GOOD) {
			rc = vd_err_set(err, -EIO, "SendTargets discovery at %s failed (%s)", s.portal,
					iscsi_get_error(s.ctx));
		} else if (d.oom) {
			rc = vd_err_set(err, -ENOMEM, "out of memory");
		}
	}
	/* d stays alive until the context is gone: a pending discovery's
	 * callback runs at teardown. */
	sess_close(&s);
	for (size_t i = 0; rc == 0 && i < d.n; i++) {
		int r = fn(d.v[i].iqn, d.v[i].portal ? d.v[i].portal : peer->portal, userdata);
		if (r != 0)
			rc = r;
	}
	for (size_t i = 0; i < d.n; i++) {
		free(d.v[i].iqn);
		free(d.v[i].portal);
	}
	free(d.v);
	return rc;
}

/* ---------------------------------------------------------------- reservations */

const char *vd_iscsi_pr_type_name(int type)
{
	switch (type) {
	case SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE: return "write-exclusive";
	case SCSI_PERSISTENT_RESERVE_TYPE_EXCLUSIVE_ACCESS: return "exclusive-access";
	case SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY:
		return "write-exclusive-registrants-only";
	case SCSI_PERSISTENT_RESERVE_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY:
		return "exclusive-access-registrants-only";
	case SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS:
		return "write-exclusive-all-registrants";
	case SCSI_PERSISTENT_RESERVE_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS:
		return "exclusive-access-all-registrants";
	default: return "unknown";
	}
}

/* READ KEYS: every key the target returns (malloc'ed, caller frees),
 * *ret_listed = how many it has (more than returned only past 8190). */
static int read_keys(struct sess *s, int lun, uint32_t *ret_gen, uint64_t **ret_keys,
		     size_t *ret_got, size_t *ret_listed, struct vd_err *err)
{
	struct prin_arg a = { SCSI_PERSISTENT_RESERVE_READ_KEYS, PR_KEYS_ALLOC };
	for (;;) {
		struct scsi_task *t = NULL;
		int rc = scsi_run(s, lun, "PERSISTENT RESERVE IN (READ KEYS)", mk_prin, &a, &t, err);
		if (rc < 0)
			return rc;
		struct scsi_persistent_reserve_in_read_keys *rk = scsi_datain_unmarshall(t);
		const unsigned char *d = t->datain.data;
		size_t size = t->datain.size > 0 ? (size_t)t->datain.size : 0;
		if (!rk || !d || size < 8) {
			scsi_free_scsi_task(t);
			return vd_err_set(err, -EIO, "%s lun %d at %s: READ KEYS: malformed data",
					  s->target, lun, s->portal);
		}
		size_t listed = rk->additional_length / 8, got = (size - 8) / 8;
		if (listed > got && a.len < PR_KEYS_ALLOC_MAX) {
			scsi_free_scsi_task(t);
			a.len = (uint16_t)(8 + listed * 8 < PR_KEYS_ALLOC_MAX ? 8 + listed * 8
									       : PR_KEYS_ALLOC_MAX);
			continue;
		}
		if (got > listed)
			got = listed;
		/* The keys from the bytes received: libiscsi's unmarshalled
		 * array trusts the length field. */
		uint64_t *keys = calloc(got ? got : 1, sizeof(*keys));
		if (!keys) {
			scsi_free_scsi_task(t);
			return vd_err_set(err, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < got; i++)
			keys[i] = be64(d + 8 + i * 8);
		*ret_gen = rk->prgeneration;
		scsi_free_scsi_task(t);
		*ret_keys = keys;
		*ret_got = got;
		*ret_listed = listed;
		return 0;
	}
}

static int read_reservation(struct sess *s, int lun, struct vd_iscsi_pr_state *st,
			    struct vd_err *err)
{
	struct prin_arg a = { SCSI_PERSISTENT_RESERVE_READ_RESERVATION, 24 };
	struct scsi_task *t = NULL;
	int rc = scsi_run(s, lun, "PERSISTENT RESERVE IN (READ RESERVATION)", mk_prin, &a, &t,
			  err);
	if (rc < 0)
		return rc;
	struct scsi_persistent_reserve_in_read_reservation *rr = scsi_datain_unmarshall(t);
	if (!rr) {
		scsi_free_scsi_task(t);
		return vd_err_set(err, -EIO, "%s lun %d at %s: READ RESERVATION: malformed data",
				  s->target, lun, s->portal);
	}
	st->reserved = rr->reserved != 0;
	st->holder = st->reserved ? rr->reservation_key : 0;
	st->type = st->reserved ? rr->pr_type : 0;
	scsi_free_scsi_task(t);
	return 0;
}

static int check_lun_arg(const char *target, int lun, struct vd_err *err)
{
	if (!target || lun < 0 || lun > VD_ISCSI_LUN_MAX)
		return vd_err_set(err, -EINVAL, "iscsi: LUN %d of %s: invalid target or LUN", lun,
				  target ? target : "(none)");
	return 0;
}

int vd_iscsi_pr_read(const struct vd_iscsi_peer *peer, const char *target, int lun,
		     struct vd_iscsi_pr_state *ret, struct vd_err *err)
{
	int rc = check_lun_arg(target, lun, err);
	if (rc < 0)
		return rc;
	struct sess s;
	rc = sess_open(&s, peer, target, err);
	if (rc < 0)
		return rc;
	struct vd_iscsi_pr_state st;
	memset(&st, 0, sizeof(st));
	uint64_t *keys = NULL;
	size_t got = 0, listed = 0;
	rc = read_keys(&s, lun, &st.generation, &keys, &got, &listed, err);
	if (rc == 0) {
		for (size_t i = 0; i < got && i < VD_ISCSI_PR_KEYS_MAX; i++)
			st.keys[i] = keys[i];
		st.key_count = listed;
		rc = read_reservation(&s, lun, &st, err);
	}
	free(keys);
	sess_close(&s);
	if (rc == 0)
		*ret = st;
	return rc;
}

static int pr_out(struct sess *s, int lun, const char *what, int sa, int type, uint64_t key,
		  uint64_t sa_key, struct vd_err *err)
{
	struct prout_arg a = { .sa = sa, .type = type, .key = key, .sa_key = sa_key };
	return scsi_run(s, lun, what, mk_prout, &a, NULL, err);
}

/* As the header specifies: preempt, then RELEASE and unregister. Note
 * (measured with tgt 1.0.85 and volumed-iscsi-fuse): a LUN left without a
 * reservation takes anyone's writes, so the fenced node's helper, which
 * retries the UNIT ATTENTION 2A/03 it then gets, can write again until
 * the next node's helper reserves; its writes fail (RESERVATION CONFLICT)
 * only from then on. Closing that window needs the helper to treat
 * 2A/03 / 2A/05 as fenced, or the fence to keep the reservation. */
int vd_iscsi_pr_fence(const struct vd_iscsi_peer *peer, const char *target, int lun,
		      uint64_t own_key, uint64_t victim_key, struct vd_err *err)
{
	int rc = check_lun_arg(target, lun, err);
	if (rc < 0)
		return rc;
	if (own_key == 0 || victim_key == 0)
		return vd_err_set(err, -EINVAL, "iscsi: fence %s lun %d: reservation keys must not "
				  "be 0", target, lun);
	struct sess s;
	rc = sess_open(&s, peer, target, err);
	if (rc < 0)
		return rc;

	uint32_t gen;
	uint64_t *keys = NULL;
	size_t got = 0, listed = 0;
	rc = read_keys(&s, lun, &gen, &keys, &got, &listed, err);
	int found = 0;
	for (size_t i = 0; rc == 0 && i < got; i++)
		found |= keys[i] == victim_key;
	free(keys);
	if (rc < 0 || !found) {
		sess_close(&s);
		return rc;
	}

	const int we = SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE;
	rc = pr_out(&s, lun, "PERSISTENT RESERVE OUT (REGISTER AND IGNORE EXISTING KEY)",
		    SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, own_key, err);
	if (rc < 0) {
		sess_close(&s);
		return rc;
	}
	rc = pr_out(&s, lun, "PERSISTENT RESERVE OUT (PREEMPT AND ABORT)",
		    SCSI_PERSISTENT_RESERVE_PREEMPT_AND_ABORT, we, own_key, victim_key, err);
	if (rc == -EOPNOTSUPP)
		rc = pr_out(&s, lun, "PERSISTENT RESERVE OUT (PREEMPT)",
			    SCSI_PERSISTENT_RESERVE_PREEMPT, we, own_key, victim_key, err);
	if (rc == 0)
		rc = pr_out(&s, lun, "PERSISTENT RESERVE OUT (RELEASE)",
			    SCSI_PERSISTENT_RESERVE_RELEASE, we, own_key, 0, err);
	if (rc == 0) {
		rc = pr_out(&s, lun, "PERSISTENT RESERVE OUT (REGISTER, unregister)",
			    SCSI_PERSISTENT_RESERVE_REGISTER, 0, own_key, 0, err);
	} else if (!s.dead) {
		/* Do not leave our key behind (the error already set stays). */
		struct vd_err ignored = VD_ERR_INIT;
		(void)pr_out(&s, lun, "RELEASE", SCSI_PERSISTENT_RESERVE_RELEASE, we, own_key, 0,
			     &ignored);
		(void)pr_out(&s, lun, "unregister", SCSI_PERSISTENT_RESERVE_REGISTER, 0, own_key, 0,
			     &ignored);
	}
	sess_close(&s);
	return rc;
}

/* ---------------------------------------------------------------- zeroing */

int vd_iscsi_zero(const struct vd_iscsi_peer *peer, const char *target, int lun,
		  uint64_t offset, uint64_t length, struct vd_err *err)
{
	int rc = check_lun_arg(target, lun, err);
	if (rc < 0)
		return rc;
	struct sess s;
	rc = sess_open(&s, peer, target, err);
	if (rc < 0)
		return rc;
	struct vd_iscsi_lun_info info;
	rc = lun_query(&s, lun, &info, err);
	if (rc == 0 && !info.is_disk)
		rc = vd_err_set(err, -EINVAL, "%s lun %d at %s is not a disk", target, lun, s.portal);
	if (rc < 0 || length == 0) {
		sess_close(&s);
		return rc;
	}
	uint64_t bs = info.block_size, blocks = info.size / bs;
	uint64_t end = offset + length < offset ? UINT64_MAX : offset + length;
	uint64_t first = offset / bs, last = end / bs + (end % bs != 0);
	if (last > blocks)
		last = blocks;
	uint32_t per = (uint32_t)(ZERO_CHUNK / bs);
	if (per == 0)
		per = 1;
	/* One zero block for WRITE SAME, or the whole chunk for WRITE 16. */
	unsigned char *buf = calloc(1, (size_t)per * bs);
	if (!buf) {
		sess_close(&s);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	int same = 1;
	for (uint64_t lba = first; rc == 0 && lba < last;) {
		uint32_t n = last - lba < per ? (uint32_t)(last - lba) : per;
		struct write_arg a = { lba, n, (uint32_t)bs, buf };
		if (same) {
			struct vd_err e = VD_ERR_INIT;
			rc = scsi_run(&s, lun, "WRITE SAME 16", mk_writesame16, &a, NULL, &e);
			if (rc == -EOPNOTSUPP) {
				same = 0;   /* and redo this chunk with WRITE 16 */
				rc = 0;
				continue;
			}
			if (rc < 0)
				vd_err_set(err, rc, "%s", e.msg);
		} else {
			rc = scsi_run(&s, lun, "WRITE 16", mk_write16, &a, NULL, err);
		}
		lba += n;
	}
	free(buf);
	sess_close(&s);
	return rc;
}
