/* grpc_frame.h — the byte-level pieces of gRPC over HTTP/2
 * (grpc/doc/PROTOCOL-HTTP2.md), pure functions without I/O so they are
 * unit-tested and fuzzed on bytes alone: the 5-byte message prefix, the
 * unary request body check, grpc-timeout, grpc-message percent-encoding,
 * status names. No state, no locks. */
#ifndef VD_GRPC_FRAME_H
#define VD_GRPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "grpc.h"

/* Length-Prefixed-Message: a compressed-flag byte, then a big-endian
 * 32-bit length, then the message. */
#define VD_GRPC_PREFIX_LEN 5

void vd_grpc_prefix_encode(uint8_t out[VD_GRPC_PREFIX_LEN], int compressed, uint32_t len);

/* Returns 0, or -EINVAL when the flag byte is neither 0 nor 1. */
int vd_grpc_prefix_decode(const uint8_t in[VD_GRPC_PREFIX_LEN], int *ret_compressed,
			  uint32_t *ret_len);

/* Checks the body of a unary request: the bytes of its DATA frames so far;
 * complete: the request has ended (END_STREAM). The check looks only at
 * the prefix and the length, so it is cheap to repeat as bytes arrive.
 * Returns VD_GRPC_OK or the status to answer with, the reason in err:
 *   compressed flag            UNIMPLEMENTED "compression is not supported"
 *   length over max_message    RESOURCE_EXHAUSTED (known from the prefix)
 *   flag byte other than 0/1   INTERNAL
 *   no message, a truncated one, or bytes after it (a second message)
 *                              INTERNAL, as grpc-java and grpc-go answer;
 * the first three are found as soon as the prefix has arrived. When
 * complete and OK, *ret_msg and *ret_len are the message inside body; when not
 * complete, OK only means nothing is wrong yet and ret_* are untouched. */
int vd_grpc_body_check(const uint8_t *body, size_t len, size_t max_message, int complete,
		       const uint8_t **ret_msg, size_t *ret_len, struct vd_err *err);

/* Parses a grpc-timeout value (not NUL-terminated: s, len): 1 to 8 digits
 * then a unit H M S m u n. Sub-millisecond remainders round up, so a tiny
 * timeout never becomes "none". Returns 0 or -EINVAL. */
int vd_grpc_timeout_parse(const char *s, size_t len, uint64_t *ret_ms);

/* Percent-encodes a grpc-message: bytes outside 0x20-0x7E, and '%', become
 * "%XX" (upper-case hex); UTF-8 passes as its encoded bytes. Writes at most
 * size bytes including the NUL (never splitting a %XX) and returns the
 * length of the whole encoding, like snprintf. */
size_t vd_grpc_percent_encode(const char *s, char *buf, size_t size);

/* The reverse, for clients and tests: decodes s (len bytes) into buf
 * (NUL-terminated, truncated to size); a '%' not followed by two hex
 * digits is kept as is, as the spec asks. Returns the decoded length. */
size_t vd_grpc_percent_decode(const char *s, size_t len, char *buf, size_t size);

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN" for codes outside
 * 0..16, as gRPC itself maps them. */
const char *vd_grpc_status_name(int code);

#endif
