/*
 * wire/rlp.h: Recursive Length Prefix encoding.
 *
 * Encoder: writes into a caller-owned buffer, lists are opened and closed
 * (the header is fixed up on close), errors are sticky (check once at the
 * end with p2p_rlp_enc_finish).  No allocation.
 *
 * Decoder: a bounded cursor over untrusted bytes (picotls style).  Every
 * read checks what remains; entering a list yields a child cursor whose end
 * is the list's end and which must be consumed (p2p_rlp_done) or explicitly
 * tolerated (EIP-8 trailing elements: callers simply stop reading).
 * Canonical form is enforced: a single byte < 0x80 must not be wrapped in a
 * string header, lengths must be minimal and without leading zeros, and the
 * long form must not be used for payloads < 56 bytes.  Integers must have no
 * leading zero bytes (and zero is the empty string).  Nesting is limited to
 * P2P_RLP_MAX_DEPTH.
 *
 * Thread-safety: cursors and encoders are plain values owned by one thread.
 */
#ifndef P2P_WIRE_RLP_H
#define P2P_WIRE_RLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define P2P_RLP_MAX_DEPTH 32

/* ---- encoder ---- */

typedef struct p2p_rlp_enc {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;                        /* first error, sticky */
    int depth;                      /* open lists */
    size_t open[P2P_RLP_MAX_DEPTH]; /* payload start of each open list */
} p2p_rlp_enc_t;

void p2p_rlp_enc_init(p2p_rlp_enc_t *e, uint8_t *buf, size_t cap);
/* Appends a byte string. */
void p2p_rlp_put_bytes(p2p_rlp_enc_t *e, const uint8_t *p, size_t n);
/* Appends a NUL-terminated string as a byte string. */
void p2p_rlp_put_str(p2p_rlp_enc_t *e, const char *s);
/* Appends an unsigned integer (big-endian, no leading zeros, 0 = ""). */
void p2p_rlp_put_uint(p2p_rlp_enc_t *e, uint64_t v);
/* Appends n bytes that are already RLP-encoded (copied as they are). */
void p2p_rlp_put_raw(p2p_rlp_enc_t *e, const uint8_t *p, size_t n);
/* Opens / closes a list.  Closing moves the payload to fit the header. */
void p2p_rlp_list_begin(p2p_rlp_enc_t *e);
void p2p_rlp_list_end(p2p_rlp_enc_t *e);
/* Returns 0 and the encoded length in *len, or the first error:
 * P2P_ETOOBIG (buffer too small) or P2P_ESTATE (unbalanced lists). */
P2P_MUST_CHECK int p2p_rlp_enc_finish(p2p_rlp_enc_t *e, size_t *len);

/* Size of the header for a payload of n bytes (1..9). */
size_t p2p_rlp_header_len(size_t n);
/* Writes a list header for a payload of n bytes; returns its length. */
size_t p2p_rlp_put_list_header(uint8_t *out, size_t n);

/* ---- decoder ---- */

typedef struct p2p_rlp {
    const uint8_t *p;   /* next unread byte */
    const uint8_t *end; /* one past the last byte this cursor may read */
    int depth;          /* nesting depth of this cursor */
} p2p_rlp_t;

typedef enum { P2P_RLP_BYTES = 0, P2P_RLP_LIST = 1 } p2p_rlp_kind_t;

typedef struct p2p_rlp_item {
    p2p_rlp_kind_t kind;
    const uint8_t *payload; /* string contents or list payload */
    size_t len;             /* payload length */
    const uint8_t *raw;     /* header + payload */
    size_t rawlen;
} p2p_rlp_item_t;

/* Starts a cursor over buf[0..len). */
void p2p_rlp_init(p2p_rlp_t *c, const uint8_t *buf, size_t len);
/* True when the cursor has no bytes left. */
bool p2p_rlp_done(const p2p_rlp_t *c);
/* Reads the next item.  Returns 0, P2P_EMORE (header or payload runs past
 * the cursor's end: for a bounded cursor this means truncated input),
 * P2P_EDECODE, P2P_ENONCANON, or P2P_EEMPTY (no bytes left). */
P2P_MUST_CHECK int p2p_rlp_next(p2p_rlp_t *c, p2p_rlp_item_t *it);
/* Reads the next item, which must be a list, and sets *inner to a cursor
 * over its payload.  Returns as p2p_rlp_next, or P2P_EDECODE if not a list
 * or P2P_ETOOBIG if nesting exceeds P2P_RLP_MAX_DEPTH. */
P2P_MUST_CHECK int p2p_rlp_enter(p2p_rlp_t *c, p2p_rlp_t *inner);
/* Reads the next item, which must be a byte string. */
P2P_MUST_CHECK int p2p_rlp_bytes(p2p_rlp_t *c, const uint8_t **p, size_t *n);
/* Reads a byte string of exactly n bytes into out (P2P_EDECODE otherwise). */
P2P_MUST_CHECK int p2p_rlp_fixed(p2p_rlp_t *c, uint8_t *out, size_t n);
/* Reads a canonical unsigned integer of at most 8 bytes (P2P_ERANGE if
 * longer, P2P_ENONCANON with a leading zero). */
P2P_MUST_CHECK int p2p_rlp_uint(p2p_rlp_t *c, uint64_t *v);
/* As p2p_rlp_uint, with *v <= max (P2P_ERANGE otherwise). */
P2P_MUST_CHECK int p2p_rlp_uint_max(p2p_rlp_t *c, uint64_t *v, uint64_t max);
/* Skips one item of any kind (validating its header). */
P2P_MUST_CHECK int p2p_rlp_skip(p2p_rlp_t *c);
/* Validates that buf[0..len) is exactly one canonical item, recursively,
 * within the depth limit.  Returns 0 or a decode error. */
P2P_MUST_CHECK int p2p_rlp_validate(const uint8_t *buf, size_t len);

#endif
