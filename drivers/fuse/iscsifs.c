/* iscsifs.c — the FUSE operations of volumed-iscsi-fuse over libiscsi.
 *
 * Role: one file, "disk", mapped onto one LUN (see iscsifs.h for the
 * model). Each SCSI command is issued with libiscsi's async API and waited
 * for with our own poll loop, so every request has a hard deadline; a
 * session that failed or timed out is cancelled and destroyed (callbacks
 * run at once with SCSI_STATUS_CANCELLED) and a new one logged in.
 *
 * Threads and locks: FUSE worker threads call the operations; fs->lock is
 * held for a whole request (with the request's deadline as the bound on
 * getting it) and guards the session, the fenced flag and the bounce
 * buffer. Counters are atomics. */
#include "iscsifs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "../../volumed/log.h"

#define POLL_SLICE_MS 100
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define MAX_IO (1024 * 1024)
#define UA_RETRIES 2

struct iscsifs {
	char url[1024];
	char portal[300];
	char target[300];
	char initiator[256];
	char *chap_user, *chap_password, *chap_target_user, *chap_target_password;
	int lun;
	int timeout_ms;
	uint64_t pr_key, preempt_key;
	uint64_t blocks;
	uint32_t block_size;
	time_t mtime;

	pthread_mutex_t lock;
	struct iscsi_context *iscsi;   /* NULL: log in on the next request */
	int ever_connected;
	int fenced;                    /* another key holds the reservation */
	int down;                      /* last login failed: log recovery once */
	int connecting;                /* in session_open: drops are logged there */
	unsigned char *bounce;         /* MAX_IO + 2 blocks, for unaligned edges */
	struct conn_call {
		int done, status;
	} login;                       /* full_connect's callback target: never on a stack */

	_Atomic unsigned long n_requests, n_reconnects, n_timeouts, n_eio, n_conflicts, n_ua;
	_Atomic long fail_log_sec;
};

/* ---------------------------------------------------------------- time */

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---------------------------------------------------------------- commands */

/* One outstanding SCSI command; lives on the waiter's stack. The callback
 * only records; the waiter frees the task. */
struct cmd {
	struct scsi_task *task;
	int done;
	int status;
};

static void cmd_cb(struct iscsi_context *iscsi, int status, void *command_data, void *private_data)
{
	(void)iscsi;
	(void)command_data;
	struct cmd *c = private_data;
	c->status = status;
	c->done = 1;
}

static void session_kill(struct iscsifs *fs, const char *why)
{
	if (!fs->iscsi)
		return;
	/* Runs every queued command's callback now, while its waiter's
	 * struct cmd is alive; the waiters free their tasks. */
	iscsi_scsi_cancel_all_tasks(fs->iscsi);
	iscsi_destroy_context(fs->iscsi);
	fs->iscsi = NULL;
	if (!fs->connecting)
		vd_log(VD_LOG_WARN, "event=iscsi-session-dropped reason=\"%s\"", why);
	else
		vd_log(VD_LOG_DEBUG, "event=iscsi-login-dropped reason=\"%s\"", why);
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\n')
			*s = '\'';
}

/* Drives the session until *done or the deadline. 0, or -ETIMEDOUT /
 * -ENOTCONN after which the session is gone (and *done is set for
 * commands: cancelling ran their callbacks). */
static int session_wait(struct iscsifs *fs, const int *done, double deadline)
{
	while (!*done) {
		double left = deadline - now_ms();
		if (left <= 0) {
			atomic_fetch_add(&fs->n_timeouts, 1);
			session_kill(fs, "request timed out");
			return -ETIMEDOUT;
		}
		struct pollfd pfd = { .fd = iscsi_get_fd(fs->iscsi),
				      .events = (short)iscsi_which_events(fs->iscsi) };
		int slice = left < POLL_SLICE_MS ? (int)left + 1 : POLL_SLICE_MS;
		int r = poll(&pfd, 1, slice);
		if (r < 0 && errno != EINTR) {
			session_kill(fs, "poll failed");
			return -ENOTCONN;
		}
		if (iscsi_service(fs->iscsi, r > 0 ? pfd.revents : 0) < 0) {
			char why[200];
			snprintf(why, sizeof(why), "%s", iscsi_get_error(fs->iscsi));
			sanitize(why);
			session_kill(fs, why);
			return -ENOTCONN;
		}
	}
	return 0;
}

/* What a finished command means. */
enum outcome { OK, TRANSPORT, CONFLICT, UNIT_ATTENTION, FAILED };

static enum outcome outcome_of(struct iscsifs *fs, const struct cmd *c)
{
	switch (c->status) {
	case SCSI_STATUS_GOOD:
	case SCSI_STATUS_CONDITION_MET:
		return OK;
	case SCSI_STATUS_RESERVATION_CONFLICT:
		atomic_fetch_add(&fs->n_conflicts, 1);
		return CONFLICT;
	case SCSI_STATUS_CHECK_CONDITION:
		if (c->task && c->task->sense.key == SCSI_SENSE_UNIT_ATTENTION) {
			atomic_fetch_add(&fs->n_ua, 1);
			vd_log(VD_LOG_INFO, "event=unit-attention asc_ascq=0x%04x", c->task->sense.ascq);
			return UNIT_ATTENTION;
		}
		return FAILED;
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
	case SCSI_STATUS_CANCELLED:
	case SCSI_STATUS_ERROR:
	case SCSI_STATUS_TIMEOUT:
		return TRANSPORT;
	default:
		return FAILED;
	}
}

/* Issues a task made by `make` (NULL: could not queue) and waits. On
 * return *ret_task is the finished task (caller frees) or NULL. */
typedef struct scsi_task *(*make_fn)(struct iscsifs *fs, void *arg, struct cmd *c);

static int cmd_run(struct iscsifs *fs, make_fn make, void *arg, double deadline,
		   struct cmd *c)
{
	c->task = NULL;
	c->done = 0;
	c->status = SCSI_STATUS_ERROR;
	c->task = make(fs, arg, c);
	if (!c->task) {
		session_kill(fs, "cannot queue a command");
		return -ENOTCONN;
	}
	int rc = session_wait(fs, &c->done, deadline);
	return rc;
}

static void cmd_free(struct cmd *c)
{
	if (c->task)
		scsi_free_scsi_task(c->task);
	c->task = NULL;
}

/* ---------------------------------------------------------------- SCSI ops */

struct io_arg {
	uint64_t lba;
	uint32_t len;
	unsigned char *buf;
};

static struct scsi_task *mk_read(struct iscsifs *fs, void *arg, struct cmd *c)
{
	struct io_arg *a = arg;
	return iscsi_read16_task(fs->iscsi, fs->lun, a->lba, a->len, (int)fs->block_size, 0, 0, 0,
				 0, 0, cmd_cb, c);
}

static struct scsi_task *mk_write(struct iscsifs *fs, void *arg, struct cmd *c)
{
	struct io_arg *a = arg;
	return iscsi_write16_task(fs->iscsi, fs->lun, a->lba, a->buf, a->len, (int)fs->block_size,
				  0, 0, 0, 0, 0, cmd_cb, c);
}

static struct scsi_task *mk_sync(struct iscsifs *fs, void *arg, struct cmd *c)
{
	(void)arg;
	return iscsi_synchronizecache10_task(fs->iscsi, fs->lun, 0, 0, 0, 0, cmd_cb, c);
}

static struct scsi_task *mk_cap(struct iscsifs *fs, void *arg, struct cmd *c)
{
	(void)arg;
	return iscsi_readcapacity16_task(fs->iscsi, fs->lun, cmd_cb, c);
}

struct prout_arg {
	int sa, type;
	uint64_t key, sa_key;
	struct scsi_persistent_reserve_out_basic basic;
};

static struct scsi_task *mk_prout(struct iscsifs *fs, void *arg, struct cmd *c)
{
	struct prout_arg *a = arg;
	memset(&a->basic, 0, sizeof(a->basic));
	a->basic.reservation_key = a->key;
	a->basic.service_action_reservation_key = a->sa_key;
	return iscsi_persistent_reserve_out_task(fs->iscsi, fs->lun, a->sa, 0, a->type, &a->basic,
						 cmd_cb, c);
}

static struct scsi_task *mk_prin_res(struct iscsifs *fs, void *arg, struct cmd *c)
{
	(void)arg;
	return iscsi_persistent_reserve_in_task(fs->iscsi, fs->lun,
						SCSI_PERSISTENT_RESERVE_READ_RESERVATION, 256, cmd_cb, c);
}

/* A UNIT ATTENTION saying another node preempted our reservation or
 * registration (2A/03, 2A/05): from now on this node is fenced. */
static int preempted_us(struct iscsifs *fs, int asc_ascq)
{
	if (!fs->pr_key || (asc_ascq != 0x2a03 && asc_ascq != 0x2a05))
		return 0;
	if (!fs->fenced)
		vd_log(VD_LOG_ERROR, "event=fenced reason=\"reservation preempted (sense 2A/%02X)\"",
		       asc_ascq & 0xff);
	fs->fenced = 1;
	return 1;
}

/* Runs one command on the live session, retrying UNIT ATTENTION. Returns
 * 0, -ENOTCONN/-ETIMEDOUT (session gone), -EACCES (reservation conflict)
 * or -EIO. With ret_task, a good task is handed over (caller frees). */
static int scsi_do(struct iscsifs *fs, make_fn make, void *arg, double deadline,
		   struct scsi_task **ret_task)
{
	for (int ua = 0;; ua++) {
		struct cmd c;
		int rc = cmd_run(fs, make, arg, deadline, &c);
		if (rc < 0) {
			cmd_free(&c);
			return rc;
		}
		enum outcome o = outcome_of(fs, &c);
		if (o == OK) {
			if (ret_task)
				*ret_task = c.task;
			else
				cmd_free(&c);
			return 0;
		}
		char why[200];
		snprintf(why, sizeof(why), "%s", fs->iscsi ? iscsi_get_error(fs->iscsi) : "");
		sanitize(why);
		int ua_asc = c.task ? (int)c.task->sense.ascq : 0;
		cmd_free(&c);
		if (o == UNIT_ATTENTION && preempted_us(fs, ua_asc))
			return -EACCES;   /* fenced: never written again, even if the LUN is free */
		if (o == UNIT_ATTENTION && ua < UA_RETRIES)
			continue;
		if (o == CONFLICT)
			return -EACCES;
		if (o == TRANSPORT) {
			session_kill(fs, why[0] ? why : "command failed");
			return -ENOTCONN;
		}
		vd_log(VD_LOG_WARN, "event=scsi-failed status=0x%x err=\"%s\"", (unsigned)c.status, why);
		return -EIO;
	}
}

/* ---------------------------------------------------------------- login */

static void login_cb(struct iscsi_context *iscsi, int status, void *command_data, void *private_data)
{
	(void)iscsi;
	(void)command_data;
	struct conn_call *c = private_data;
	c->status = status;
	c->done = 1;
}

static int pr_out(struct iscsifs *fs, int sa, int type, uint64_t key, uint64_t sa_key,
		  double deadline)
{
	struct prout_arg a = { .sa = sa, .type = type, .key = key, .sa_key = sa_key };
	return scsi_do(fs, mk_prout, &a, deadline, NULL);
}

/* The reservation holder's key, 0 when none. */
static int pr_holder(struct iscsifs *fs, double deadline, uint64_t *ret_key)
{
	struct scsi_task *t = NULL;
	int rc = scsi_do(fs, mk_prin_res, NULL, deadline, &t);
	if (rc < 0)
		return rc;
	struct scsi_persistent_reserve_in_read_reservation *r = scsi_datain_unmarshall(t);
	uint64_t k = r && r->reserved ? r->reservation_key : 0;
	scsi_free_scsi_task(t);
	if (!r)
		return -EIO;
	*ret_key = k;
	return 0;
}

/* Registers pr_key on this session and takes (or keeps) the reservation.
 * -EBUSY with *ret_other when another key holds it. */
static int pr_claim(struct iscsifs *fs, double deadline, uint64_t *ret_other)
{
	uint64_t holder;
	int rc = pr_holder(fs, deadline, &holder);
	if (rc < 0)
		return rc;
	if (holder && holder != fs->pr_key && holder != fs->preempt_key) {
		*ret_other = holder;   /* refused: leave no registration behind */
		return -EBUSY;
	}
	rc = pr_out(fs, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0,
		    fs->pr_key, deadline);
	if (rc < 0)
		return rc;
	if (fs->preempt_key) {
		rc = pr_out(fs, SCSI_PERSISTENT_RESERVE_PREEMPT,
			    SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, fs->pr_key, fs->preempt_key,
			    deadline);
		if (rc < 0)
			return rc;
		vd_log(VD_LOG_WARN, "event=pr-preempted key=0x%" PRIx64, fs->preempt_key);
	}
	rc = pr_holder(fs, deadline, &holder);
	if (rc < 0)
		return rc;
	if (holder == 0) {
		rc = pr_out(fs, SCSI_PERSISTENT_RESERVE_RESERVE,
			    SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, fs->pr_key, 0, deadline);
		if (rc < 0)
			return rc;
		vd_log(VD_LOG_INFO, "event=pr-reserved key=0x%" PRIx64 " type=write-exclusive", fs->pr_key);
		return 0;
	}
	if (holder == fs->pr_key) {
		/* Ours, perhaps under an older session's registration: take it
		 * over for this session by preempting our own key. */
		rc = pr_out(fs, SCSI_PERSISTENT_RESERVE_PREEMPT,
			    SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE, fs->pr_key, fs->pr_key,
			    deadline);
		if (rc < 0)
			return rc;
		vd_log(VD_LOG_INFO, "event=pr-reservation-kept key=0x%" PRIx64, fs->pr_key);
		return 0;
	}
	*ret_other = holder;
	return -EBUSY;
}

static int session_open_1(struct iscsifs *fs, double deadline, struct vd_err *err);

/* A new session: login, capacity (first time, or checked), PR. */
static int session_open(struct iscsifs *fs, double deadline, struct vd_err *err)
{
	fs->connecting = 1;
	int rc = session_open_1(fs, deadline, err);
	fs->connecting = 0;
	return rc;
}

static int session_open_1(struct iscsifs *fs, double deadline, struct vd_err *err)
{
	fs->iscsi = iscsi_create_context(fs->initiator);
	if (!fs->iscsi)
		return vd_err_set(err, -ENOMEM, "cannot create an iSCSI context");
	iscsi_set_targetname(fs->iscsi, fs->target);
	iscsi_set_session_type(fs->iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(fs->iscsi, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_noautoreconnect(fs->iscsi, 1);
	if (fs->chap_user)
		iscsi_set_initiator_username_pwd(fs->iscsi, fs->chap_user, fs->chap_password);
	if (fs->chap_target_user)
		iscsi_set_target_username_pwd(fs->iscsi, fs->chap_target_user,
					      fs->chap_target_password);
	fs->login.done = 0;
	fs->login.status = SCSI_STATUS_ERROR;
	if (iscsi_full_connect_async(fs->iscsi, fs->portal, fs->lun, login_cb, &fs->login) != 0) {
		vd_err_set(err, -ECONNREFUSED, "cannot connect to %s: %s", fs->portal,
			   iscsi_get_error(fs->iscsi));
		iscsi_destroy_context(fs->iscsi);
		fs->iscsi = NULL;
		return -ECONNREFUSED;
	}
	int rc = session_wait(fs, &fs->login.done, deadline);
	if (rc < 0)
		return vd_err_set(err, rc, "login to %s at %s: %s", fs->target, fs->portal,
				  rc == -ETIMEDOUT ? "timed out" : "connection failed");
	if (fs->login.status != SCSI_STATUS_GOOD) {
		vd_err_set(err, -ECONNREFUSED, "login to %s at %s failed: %s", fs->target, fs->portal,
			   iscsi_get_error(fs->iscsi));
		session_kill(fs, "login failed");
		return -ECONNREFUSED;
	}
	struct scsi_task *t = NULL;
	rc = scsi_do(fs, mk_cap, NULL, deadline, &t);
	if (rc < 0)
		return vd_err_set(err, rc == -EACCES ? -EIO : rc, "READ CAPACITY 16 failed");
	struct scsi_readcapacity16 *cap = scsi_datain_unmarshall(t);
	if (!cap || cap->block_length == 0 || cap->block_length > 65536) {
		scsi_free_scsi_task(t);
		session_kill(fs, "bad READ CAPACITY 16 data");
		return vd_err_set(err, -EIO, "READ CAPACITY 16: bad data");
	}
	uint64_t blocks = cap->returned_lba + 1;
	uint32_t bs = cap->block_length;
	scsi_free_scsi_task(t);
	if (!fs->ever_connected) {
		fs->blocks = blocks;
		fs->block_size = bs;
	} else if (bs != fs->block_size || blocks != fs->blocks) {
		vd_log(VD_LOG_WARN, "event=capacity-changed blocks=%" PRIu64 " block_size=%u",
		       blocks, bs);
	}
	if (fs->pr_key && fs->fenced) {
		/* Fenced stays fenced: a free LUN is not ours to take again. */
	} else if (fs->pr_key) {
		uint64_t other = 0;
		rc = pr_claim(fs, deadline, &other);
		if (rc == -EBUSY) {
			if (fs->ever_connected) {
				if (!fs->fenced)
					vd_log(VD_LOG_ERROR, "event=fenced holder=0x%" PRIx64, other);
				fs->fenced = 1;
				return 0;
			}
			session_kill(fs, "reserved by another key");
			return vd_err_set(err, -EBUSY, "reserved by key 0x%" PRIx64, other);
		}
		if (rc < 0)
			return vd_err_set(err, rc == -EACCES ? -EBUSY : rc,
					  "persistent reservation failed (%s)", strerror(-rc));
	}
	if (fs->ever_connected)
		atomic_fetch_add(&fs->n_reconnects, 1);
	if (fs->down || fs->ever_connected)
		vd_log(VD_LOG_INFO, "event=iscsi-session-up reconnect=%d", fs->ever_connected);
	fs->down = 0;
	fs->ever_connected = 1;
	fs->preempt_key = 0;   /* preempting is for taking over at start, never later */
	return 0;
}

/* ---------------------------------------------------------------- requests */

static struct iscsifs *this_fs(void)
{
	return fuse_get_context()->private_data;
}

static int lock_until(struct iscsifs *fs, double deadline)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double left = deadline - now_ms();
	if (left < 0)
		left = 0;
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)((left - (double)(long)(left / 1000) * 1000) * 1e6);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	int rc = pthread_mutex_timedlock(&fs->lock, &ts);
	return rc == 0 ? 0 : -ETIMEDOUT;
}

static void log_failed(struct iscsifs *fs, const char *op, int rc)
{
	atomic_fetch_add(&fs->n_eio, 1);
	long sec = (long)(now_ms() / 1000);
	if (atomic_exchange(&fs->fail_log_sec, sec) != sec)
		vd_log(VD_LOG_WARN, "event=request-failed op=%s err=\"%s\"", op, strerror(-rc));
}

/* One step of a request, on a live session, under fs->lock. */
typedef int (*step_fn)(struct iscsifs *fs, double deadline, void *arg);

/* Runs step with a live session, reconnecting with backoff until the
 * deadline. Reservation conflicts are final. Returns step's result or -EIO. */
static int run_request(const char *op, step_fn step, void *arg, int is_write)
{
	struct iscsifs *fs = this_fs();
	atomic_fetch_add(&fs->n_requests, 1);
	double deadline = now_ms() + fs->timeout_ms;
	if (lock_until(fs, deadline) < 0) {
		atomic_fetch_add(&fs->n_timeouts, 1);
		log_failed(fs, op, -ETIMEDOUT);
		return -EIO;
	}
	double backoff = BACKOFF_FIRST_MS;
	int rc;
	for (;;) {
		if (is_write && fs->fenced) {
			rc = -EACCES;
			break;
		}
		if (!fs->iscsi) {
			struct vd_err err = VD_ERR_INIT;
			rc = session_open(fs, deadline, &err);
			if (rc < 0) {
				if (!fs->down)
					vd_log(VD_LOG_WARN, "event=iscsi-login-failed err=\"%s\"",
					       vd_err_msg(&err));
				fs->down = 1;
				if (fs->iscsi)
					session_kill(fs, "login incomplete");
			} else {
				continue;   /* fenced may have been set */
			}
		} else {
			rc = step(fs, deadline, arg);
			if (rc >= 0 || rc == -EACCES || rc == -EIO)
				break;
		}
		if (now_ms() + backoff >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		sleep_ms(backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	if (rc == -EACCES && is_write && !fs->fenced) {
		fs->fenced = 1;
		vd_log(VD_LOG_ERROR, "event=fenced reason=\"reservation conflict on write\"");
	}
	pthread_mutex_unlock(&fs->lock);
	if (rc < 0) {
		log_failed(fs, op, rc);
		return -EIO;
	}
	return rc;
}

/* Reads whole blocks [lba, lba + len/bs) into buf, in MAX_IO pieces. */
static int read_blocks(struct iscsifs *fs, uint64_t lba, unsigned char *buf, size_t len,
		       double deadline)
{
	size_t done = 0;
	while (done < len) {
		uint32_t n = (uint32_t)(len - done > MAX_IO ? MAX_IO : len - done);
		struct io_arg a = { .lba = lba + done / fs->block_size, .len = n };
		struct scsi_task *t = NULL;
		int rc = scsi_do(fs, mk_read, &a, deadline, &t);
		if (rc < 0)
			return rc;
		size_t got = t->datain.size > 0 ? (size_t)t->datain.size : 0;
		if (got > n)
			got = n;
		memcpy(buf + done, t->datain.data, got);
		if (got < n)
			memset(buf + done + got, 0, n - got);
		scsi_free_scsi_task(t);
		done += n;
	}
	return 0;
}

static int write_blocks(struct iscsifs *fs, uint64_t lba, const unsigned char *buf, size_t len,
			double deadline)
{
	size_t done = 0;
	while (done < len) {
		uint32_t n = (uint32_t)(len - done > MAX_IO ? MAX_IO : len - done);
		/* libiscsi does not write through the pointer. */
		struct io_arg a = { .lba = lba + done / fs->block_size, .len = n,
				    .buf = (unsigned char *)(uintptr_t)(buf + done) };
		int rc = scsi_do(fs, mk_write, &a, deadline, NULL);
		if (rc < 0)
			return rc;
		done += n;
	}
	return 0;
}

struct rw_arg {
	char *rbuf;
	const char *wbuf;
	size_t size;
	off_t off;
};

/* Reads [off, off+size) (already clipped to the disk) in pieces of at
 * most MAX_IO, through the bounce buffer for unaligned edges. */
static int step_read(struct iscsifs *fs, double deadline, void *arg)
{
	struct rw_arg *a = arg;
	uint64_t bs = fs->block_size;
	size_t done = 0;
	while (done < a->size) {
		uint64_t off = (uint64_t)a->off + done;
		size_t want = a->size - done > MAX_IO ? MAX_IO : a->size - done;
		if (off % bs == 0 && want % bs == 0) {
			int rc = read_blocks(fs, off / bs, (unsigned char *)a->rbuf + done, want, deadline);
			if (rc < 0)
				return rc;
		} else {
			uint64_t start = off / bs * bs;
			if (want > MAX_IO - bs)
				want = (size_t)(MAX_IO - bs);
			uint64_t end = (off + want + bs - 1) / bs * bs;
			int rc = read_blocks(fs, start / bs, fs->bounce, (size_t)(end - start), deadline);
			if (rc < 0)
				return rc;
			memcpy(a->rbuf + done, fs->bounce + (off - start), want);
		}
		done += want;
	}
	return (int)a->size;
}

static int step_write(struct iscsifs *fs, double deadline, void *arg)
{
	struct rw_arg *a = arg;
	uint64_t bs = fs->block_size;
	size_t done = 0;
	while (done < a->size) {
		uint64_t off = (uint64_t)a->off + done;
		size_t want = a->size - done > MAX_IO ? MAX_IO : a->size - done;
		if (off % bs == 0 && want % bs == 0) {
			int rc = write_blocks(fs, off / bs, (const unsigned char *)a->wbuf + done, want,
					      deadline);
			if (rc < 0)
				return rc;
		} else {
			/* Read-modify-write of the edge blocks. */
			if (want > MAX_IO - bs)
				want = (size_t)(MAX_IO - bs);
			uint64_t start = off / bs * bs;
			uint64_t end = (off + want + bs - 1) / bs * bs;
			size_t span = (size_t)(end - start);
			int rc;
			if (off != start) {
				rc = read_blocks(fs, start / bs, fs->bounce, (size_t)bs, deadline);
				if (rc < 0)
					return rc;
			}
			if ((off + want) % bs && (end - bs != start || off == start)) {
				rc = read_blocks(fs, (end - bs) / bs, fs->bounce + span - bs, (size_t)bs,
						 deadline);
				if (rc < 0)
					return rc;
			}
			memcpy(fs->bounce + (off - start), a->wbuf + done, want);
			rc = write_blocks(fs, start / bs, fs->bounce, span, deadline);
			if (rc < 0)
				return rc;
		}
		done += want;
	}
	return (int)a->size;
}

static int step_sync(struct iscsifs *fs, double deadline, void *arg)
{
	(void)arg;
	return scsi_do(fs, mk_sync, NULL, deadline, NULL);
}

/* ---------------------------------------------------------------- FUSE ops */

static int is_disk(const char *path)
{
	return path[0] == '/' && strcmp(path + 1, ISCSIFS_FILE) == 0;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	struct iscsifs *fs = this_fs();
	memset(st, 0, sizeof(*st));
	st->st_mtime = st->st_ctime = st->st_atime = fs->mtime;
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!is_disk(path))
		return -ENOENT;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = (off_t)iscsifs_size(fs);
	st->st_blksize = (blksize_t)fs->block_size;
	st->st_blocks = (blkcnt_t)(iscsifs_size(fs) / 512);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	filler(buf, ISCSIFS_FILE, NULL, 0, 0);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/") == 0)
		return -EISDIR;
	if (!is_disk(path))
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	if (!is_disk(path))
		return -ENOENT;
	struct iscsifs *fs = this_fs();
	uint64_t total = iscsifs_size(fs);
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= total || size == 0)
		return 0;
	if (size > total - (uint64_t)off)
		size = (size_t)(total - (uint64_t)off);
	if (size > INT32_MAX)
		size = INT32_MAX;
	struct rw_arg a = { .rbuf = buf, .size = size, .off = off };
	return run_request("read", step_read, &a, 0);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	if (!is_disk(path))
		return -ENOENT;
	struct iscsifs *fs = this_fs();
	uint64_t total = iscsifs_size(fs);
	if (off < 0)
		return -EINVAL;
	if (size == 0)
		return 0;
	if ((uint64_t)off >= total)
		return -ENOSPC;
	if (size > total - (uint64_t)off)
		size = (size_t)(total - (uint64_t)off);
	if (size > INT32_MAX)
		size = INT32_MAX;
	struct rw_arg a = { .wbuf = buf, .size = size, .off = off };
	return run_request("write", step_write, &a, 1);
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	if (!is_disk(path))
		return -ENOENT;
	return run_request("fsync", step_sync, NULL, 1);
}

/* A disk has a fixed size: O_TRUNC and truncate to any size are ignored,
 * as a block device ignores them. */
static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)size;
	(void)fi;
	return is_disk(path) ? 0 : strcmp(path, "/") == 0 ? -EISDIR : -ENOENT;
}

static int fs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	struct iscsifs *fs = this_fs();
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = fs->block_size;
	st->f_blocks = fs->blocks;
	st->f_files = 1;
	st->f_namemax = 255;
	return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->max_write = MAX_IO;
	conn->max_read = MAX_IO;   /* must match the max_read mount option */
	conn->max_readahead = MAX_IO;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	cfg->direct_io = 1;
	cfg->attr_timeout = 3600;
	cfg->entry_timeout = 3600;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.truncate = fs_truncate,
	.statfs = fs_statfs,
};

const struct fuse_operations *iscsifs_operations(void)
{
	return &ops;
}

/* ---------------------------------------------------------------- life */

int iscsifs_new(const struct iscsifs_config *cfg, struct iscsifs **ret, struct vd_err *err)
{
	struct iscsifs *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return vd_err_set(err, -ENOMEM, "out of memory");
	int rc;
	snprintf(fs->url, sizeof(fs->url), "%s", cfg->url);
	snprintf(fs->initiator, sizeof(fs->initiator), "%s", cfg->initiator);
	fs->timeout_ms = cfg->timeout_ms;
	fs->pr_key = cfg->pr_key;
	fs->preempt_key = cfg->preempt_key;
	fs->mtime = time(NULL);
	if ((cfg->chap_user && (!(fs->chap_user = strdup(cfg->chap_user)) ||
				!(fs->chap_password = strdup(cfg->chap_password ? cfg->chap_password : "")))) ||
	    (cfg->chap_target_user &&
	     (!(fs->chap_target_user = strdup(cfg->chap_target_user)) ||
	      !(fs->chap_target_password = strdup(cfg->chap_target_password ?
						    cfg->chap_target_password : ""))))) {
		free(fs->chap_user);
		free(fs->chap_password);
		free(fs->chap_target_user);
		free(fs);
		return vd_err_set(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&fs->lock, NULL);

	struct iscsi_context *tmp = iscsi_create_context(fs->initiator);
	if (!tmp) {
		rc = vd_err_set(err, -ENOMEM, "cannot create an iSCSI context");
		goto fail;
	}
	struct iscsi_url *u = iscsi_parse_full_url(tmp, cfg->url);
	if (!u) {
		rc = vd_err_set(err, -EINVAL, "--url %s: %s", cfg->url, iscsi_get_error(tmp));
		iscsi_destroy_context(tmp);
		goto fail;
	}
	snprintf(fs->portal, sizeof(fs->portal), "%s", u->portal);
	snprintf(fs->target, sizeof(fs->target), "%s", u->target);
	fs->lun = u->lun;
	iscsi_destroy_url(u);
	iscsi_destroy_context(tmp);

	double deadline = now_ms() + fs->timeout_ms;
	rc = session_open(fs, deadline, err);
	if (rc < 0) {
		if (fs->iscsi)
			session_kill(fs, "start failed");
		goto fail;
	}
	/* Unaligned edges: up to MAX_IO plus a block either side. */
	fs->bounce = malloc(MAX_IO + 2 * (size_t)fs->block_size);
	if (!fs->bounce) {
		rc = vd_err_set(err, -ENOMEM, "out of memory");
		goto fail;
	}
	*ret = fs;
	return 0;
fail:
	iscsifs_free(fs);
	return rc;
}

void iscsifs_release(struct iscsifs *fs)
{
	if (!fs || !fs->pr_key || fs->fenced)
		return;
	pthread_mutex_lock(&fs->lock);
	double deadline = now_ms() + fs->timeout_ms;
	struct vd_err err = VD_ERR_INIT;
	/* The session dropped: a new one takes the reservation over (our own
	 * key's) so that it can be released, not left to a dead session. */
	if (!fs->iscsi && session_open(fs, deadline, &err) < 0 && fs->iscsi)
		session_kill(fs, "release: login failed");
	int rc = fs->iscsi && !fs->fenced ? pr_out(fs, SCSI_PERSISTENT_RESERVE_RELEASE,
						  SCSI_PERSISTENT_RESERVE_TYPE_WRITE_EXCLUSIVE,
						  fs->pr_key, 0, deadline) : -ENOTCONN;
	if (rc == 0 && fs->iscsi)
		rc = pr_out(fs, SCSI_PERSISTENT_RESERVE_REGISTER, 0, fs->pr_key, 0, deadline);
	if (rc < 0)
		vd_log(VD_LOG_WARN, "event=pr-release-failed key=0x%" PRIx64 " err=\"%s\"", fs->pr_key,
		       strerror(-rc));
	else
		vd_log(VD_LOG_INFO, "event=pr-released key=0x%" PRIx64, fs->pr_key);
	pthread_mutex_unlock(&fs->lock);
}

static void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void iscsifs_free(struct iscsifs *fs)
{
	if (!fs)
		return;
	if (fs->iscsi) {
		iscsi_scsi_cancel_all_tasks(fs->iscsi);
		iscsi_destroy_context(fs->iscsi);
	}
	pthread_mutex_destroy(&fs->lock);
	free(fs->bounce);
	secret_free(fs->chap_password);
	secret_free(fs->chap_target_password);
	free(fs->chap_user);
	free(fs->chap_target_user);
	free(fs);
}

uint64_t iscsifs_size(const struct iscsifs *fs)
{
	return fs->blocks * fs->block_size;
}

uint32_t iscsifs_block_size(const struct iscsifs *fs)
{
	return fs->block_size;
}

void iscsifs_get_stats(struct iscsifs *fs, struct iscsifs_stats *ret)
{
	*ret = (struct iscsifs_stats){
		.requests = atomic_load(&fs->n_requests),
		.reconnects = atomic_load(&fs->n_reconnects),
		.timeouts = atomic_load(&fs->n_timeouts),
		.eio = atomic_load(&fs->n_eio),
		.conflicts = atomic_load(&fs->n_conflicts),
		.unit_attentions = atomic_load(&fs->n_ua),
	};
}
