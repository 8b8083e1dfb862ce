/* grpc_frame.c — message prefix, unary body check, grpc-timeout,
 * grpc-message percent-encoding and status names for gRPC over HTTP/2.
 * Pure functions: no I/O, no allocation, no state, no locks. */
#include <errno.h>
#include <string.h>

#include "grpc_frame.h"

void vd_grpc_prefix_encode(uint8_t out[VD_GRPC_PREFIX_LEN], int compressed, uint32_t len)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int vd_grpc_prefix_decode(const uint8_t in[VD_GRPC_PREFIX_LEN], int *ret_compressed,
			  uint32_t *ret_len)
{
	if (in[0] > 1)
		return -EINVAL;
	*ret_compressed = in[0];
	*ret_len = (uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
	return 0;
}

/* The checks the prefix alone allows. */
static int prefix_check(const uint8_t *body, size_t max_message, uint32_t *ret_len,
			struct vd_err *err)
{
	int compressed;
	if (vd_grpc_prefix_decode(body, &compressed, ret_len) < 0) {
		vd_err_set(err, -EPROTO, "invalid message flags 0x%02x; 0 or 1 allowed", body[0]);
		return VD_GRPC_INTERNAL;
	}
	if (compressed) {
		vd_err_set(err, -EOPNOTSUPP, "compression is not supported");
		return VD_GRPC_UNIMPLEMENTED;
	}
	if (*ret_len > max_message) {
		vd_err_set(err, -EMSGSIZE, "message of %u bytes exceeds the limit of %zu bytes",
			   *ret_len, max_message);
		return VD_GRPC_RESOURCE_EXHAUSTED;
	}
	return VD_GRPC_OK;
}

int vd_grpc_body_check(const uint8_t *body, size_t len, size_t max_message, int complete,
		       const uint8_t **ret_msg, size_t *ret_len, struct vd_err *err)
{
	uint32_t msg_len = 0;
	if (len >= VD_GRPC_PREFIX_LEN) {
		int r = prefix_check(body, max_message, &msg_len, err);
		if (r != VD_GRPC_OK)
			return r;
		if (len - VD_GRPC_PREFIX_LEN > msg_len) {
			vd_err_set(err, -EPROTO, "%zu bytes after the message; a unary request "
				   "carries exactly one message", len - VD_GRPC_PREFIX_LEN - msg_len);
			return VD_GRPC_INTERNAL;
		}
	}
	if (!complete)
		return VD_GRPC_OK;
	if (len == 0) {
		vd_err_set(err, -EPROTO, "the request has no message; a unary request "
			   "carries exactly one message");
		return VD_GRPC_INTERNAL;
	}
	if (len < VD_GRPC_PREFIX_LEN || len - VD_GRPC_PREFIX_LEN < msg_len) {
		vd_err_set(err, -EPROTO, "truncated message: %zu bytes of a %u-byte message "
			   "after its prefix", len < VD_GRPC_PREFIX_LEN ? 0 : len - VD_GRPC_PREFIX_LEN,
			   msg_len);
		return VD_GRPC_INTERNAL;
	}
	*ret_msg = body + VD_GRPC_PREFIX_LEN;
	*ret_len = msg_len;
	return VD_GRPC_OK;
}

int vd_grpc_timeout_parse(const char *s, size_t len, uint64_t *ret_ms)
{
	/* Each unit as a fraction of a millisecond: ms = value * mul / div. */
	static const struct { char unit; uint64_t mul, div; } units[] = {
		{ 'H', 3600000, 1 }, { 'M', 60000, 1 }, { 'S', 1000, 1 },
		{ 'm', 1, 1 }, { 'u', 1, 1000 }, { 'n', 1, 1000000 },
	};
	if (len < 2 || len > 9)
		return -EINVAL;
	uint64_t value = 0;
	for (size_t i = 0; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		value = value * 10 + (uint64_t)(s[i] - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (units[i].unit != s[len - 1])
			continue;
		*ret_ms = (value * units[i].mul + units[i].div - 1) / units[i].div;
		return 0;
	}
	return -EINVAL;
}

static int percent_plain(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e && c != '%';
}

size_t vd_grpc_percent_encode(const char *s, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, written = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char piece[3] = { (char)*p, hex[*p >> 4], hex[*p & 15] };
		size_t need = 1;
		if (!percent_plain(*p)) {
			piece[0] = '%';
			need = 3;
		}
		if (written == n && n + need < size) {
			memcpy(buf + n, piece, need);
			written += need;
		}
		n += need;
	}
	if (size > 0)
		buf[written] = '\0';
	return n;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t vd_grpc_percent_decode(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++, n++) {
		char c = s[i];
		if (c == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
			c = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
			i += 2;
		}
		if (n + 1 < size)
			buf[n] = c;
	}
	if (size > 0)
		buf[n < size ? n : size - 1] = '\0';
	return n;
}

const char *vd_grpc_status_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[code];
}
