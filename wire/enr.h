/*
 * wire/enr.h: Ethereum Node Records (EIP-778), "v4" identity scheme.
 *
 * A record is a plain value (copy with `=`, no pointers, no allocation):
 * the sequence number, up to P2P_ENR_MAX_PAIRS key/value pairs kept sorted
 * by key (bytewise, unique), and the signature.  Keys and values live in a
 * small arena inside the struct; a value is held as its raw RLP item (header
 * included), so keys this code does not know survive a decode/encode round
 * trip unchanged.
 *
 * Wire form: rlp([signature, seq, k1, v1, k2, v2, ...]), at most 300 bytes,
 * keys strictly increasing.  Text form: "enr:" + base64url without padding.
 * v4 signature: 64-byte r||s (low s) over keccak256(rlp([seq, k1, v1, ...]))
 * by the key in "secp256k1" (33-byte compressed point); "id" is "v4".
 *
 * Decoding checks structure (size, canonical RLP, sorted unique keys) and,
 * unless the _unverified variant is used, the v4 signature.  Any setter
 * clears the signature (signed_ = false: set by decode and sign, it means
 * sig belongs to the current content); p2p_enr_sign re-signs.  The
 * sequence number is the caller's: bump it before re-signing a changed
 * record.
 *
 * Errors: P2P_ETOOBIG (over 300 bytes or too many pairs), P2P_EEMPTY (no
 * bytes at all, or the bare "enr:"), P2P_EDECODE / P2P_ENONCANON /
 * P2P_EMORE (malformed; unsorted or duplicate keys are P2P_ENONCANON),
 * P2P_EUNSUPPORTED (identity scheme other than "v4"),
 * P2P_EBADKEY (secp256k1 missing or not on the curve), P2P_EBADSIG,
 * P2P_ENOTFOUND (accessor: key absent), P2P_EDECODE (accessor: value of the
 * wrong form, such as a 3-byte "ip").
 *
 * Thread-safety: records are plain values owned by the caller; functions are
 * pure and may be called from any thread.
 */
#ifndef P2P_WIRE_ENR_H
#define P2P_WIRE_ENR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/node.h"

enum p2p_enr_limits {
    P2P_ENR_MAX_SIZE = 300, /* encoded record, bytes (EIP-778) */
    /* Key/value pairs held: every pair a 300-byte record can carry.  The
     * list's payload is at most 297 bytes; the signature and seq take at
     * least one byte each; a pair at least two (one-byte key and value):
     * (297 - 2) / 2 = 147.  EIP-778 limits the size only. */
    P2P_ENR_MAX_PAIRS = 147,
    P2P_ENR_MAX_SIG = 128,   /* signature bytes held (v4 uses 64) */
    P2P_ENR_SIG_V4 = 64,     /* r||s */
    P2P_ENR_MAX_TEXT = 405,  /* "enr:" + base64url(300 bytes) + NUL */
    P2P_ENR_MAX_ID_LEN = 15, /* identity scheme name returned by p2p_enr_id */
};

typedef struct p2p_enr_pair {
    uint16_t koff, klen; /* key bytes in data[] */
    uint16_t voff, vlen; /* raw RLP value item in data[] */
} p2p_enr_pair_t;

typedef struct p2p_enr {
    uint64_t seq;
    unsigned n; /* pairs in use, sorted by key */
    p2p_enr_pair_t kv[P2P_ENR_MAX_PAIRS];
    uint16_t datalen;
    uint8_t data[P2P_ENR_MAX_SIZE]; /* arena for keys and values */
    bool signed_;                   /* sig is valid for the current content */
    uint16_t siglen;
    uint8_t sig[P2P_ENR_MAX_SIG];
} p2p_enr_t;

/* Resets r to an empty, unsigned record with seq 0. */
void p2p_enr_init(p2p_enr_t *r);

/* ---- wire and text forms ---- */

/* Decodes buf[0..len) (exactly one record, no trailing bytes) and verifies
 * its signature (scheme "v4" only).  Out: r.  Returns 0 or an error above;
 * on error r is left in an unspecified but valid state. */
P2P_MUST_CHECK int p2p_enr_decode(p2p_enr_t *r, const uint8_t *buf, size_t len);
/* As p2p_enr_decode without the signature check (any scheme).  The caller
 * must call p2p_enr_verify before trusting the content. */
P2P_MUST_CHECK int p2p_enr_decode_unverified(p2p_enr_t *r, const uint8_t *buf, size_t len);
/* Verifies r's signature.  Returns 0, P2P_EUNSUPPORTED (id not "v4" or no
 * id), P2P_EBADKEY, P2P_EBADSIG (also for an unsigned record). */
P2P_MUST_CHECK int p2p_enr_verify(const p2p_enr_t *r);

/* Encodes a signed record into out[0..cap).  Out: *outlen.  Returns 0,
 * P2P_ESTATE (not signed), P2P_ETOOBIG (cap too small or over 300 bytes). */
P2P_MUST_CHECK int p2p_enr_encode(uint8_t *out, size_t cap, size_t *outlen, const p2p_enr_t *r);

/* Sets "id" = "v4" and "secp256k1" = the compressed public key of priv,
 * then signs the content with priv (deterministic, RFC 6979).  Returns 0,
 * P2P_EBADKEY, P2P_ETOOBIG (record would exceed 300 bytes or the arena). */
P2P_MUST_CHECK int p2p_enr_sign(p2p_enr_t *r, const uint8_t priv[32]);

/* Text form "enr:<base64url>" of a signed record, NUL-terminated, into
 * out[0..cap).  Returns 0, P2P_ESTATE, P2P_ETOOBIG. */
P2P_MUST_CHECK int p2p_enr_to_text(char *out, size_t cap, const p2p_enr_t *r);
/* Parses and verifies the text form (strict base64url alphabet, no padding,
 * no whitespace; unused low bits of the last character are ignored, as the
 * reference client ignores them).  Returns 0, P2P_EINVAL (not "enr:" or bad
 * base64), P2P_ETOOBIG (text over 400 characters) or a decode/verify
 * error. */
P2P_MUST_CHECK int p2p_enr_from_text(p2p_enr_t *r, const char *text);

/* ---- generic pairs ---- */

/* Out: *val, *vallen = the raw RLP item stored under key (pointing into r).
 * Returns 0 or P2P_ENOTFOUND. */
P2P_MUST_CHECK int p2p_enr_get_raw(const p2p_enr_t *r, const uint8_t **val, size_t *vallen,
                                   const char *key);
/* Stores raw (one canonical RLP item, validated) under key, replacing any
 * previous value.  Returns 0, P2P_EINVAL (not one canonical item) or
 * P2P_ETOOBIG (arena or pair limit). */
P2P_MUST_CHECK int p2p_enr_set_raw(p2p_enr_t *r, const char *key, const uint8_t *raw,
                                   size_t rawlen);
/* Removes key; returns 0 or P2P_ENOTFOUND. */
P2P_MUST_CHECK int p2p_enr_delete(p2p_enr_t *r, const char *key);

/* ---- typed accessors (standard keys) ---- */

/* Identity scheme ("id") as a NUL-terminated string.  Returns 0,
 * P2P_ENOTFOUND, P2P_EDECODE (not a string or longer than 15 bytes). */
P2P_MUST_CHECK int p2p_enr_id(const p2p_enr_t *r, char out[P2P_ENR_MAX_ID_LEN + 1]);
/* The "secp256k1" key decompressed to 64 bytes X||Y (validated on the
 * curve).  Returns 0, P2P_ENOTFOUND, P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_enr_pubkey(const p2p_enr_t *r, uint8_t pub[64]);
/* Node ID = keccak256 of the 64-byte key (v4).  Returns as p2p_enr_pubkey. */
P2P_MUST_CHECK int p2p_enr_node_id(const p2p_enr_t *r, uint8_t id[32]);
/* "ip" (4 bytes, family 4) and "ip6" (16 bytes, family 6). */
P2P_MUST_CHECK int p2p_enr_ip4(const p2p_enr_t *r, p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_enr_ip6(const p2p_enr_t *r, p2p_ip_t *ip);
/* A uint16 port under key ("tcp", "udp", "tcp6", "udp6"). */
P2P_MUST_CHECK int p2p_enr_port(const p2p_enr_t *r, uint16_t *port, const char *key);

/* ---- builder (each clears the signature) ---- */

/* Sets "ip" (family 4) or "ip6" (family 6) from ip.  P2P_EINVAL for family 0. */
P2P_MUST_CHECK int p2p_enr_set_ip(p2p_enr_t *r, const p2p_ip_t *ip);
/* Sets a uint16 port under key ("tcp", "udp", "tcp6", "udp6"). */
P2P_MUST_CHECK int p2p_enr_set_port(p2p_enr_t *r, const char *key, uint16_t port);
/* Sets the sequence number (clears the signature). */
void p2p_enr_set_seq(p2p_enr_t *r, uint64_t seq);

/* ---- node ---- */

/* Fills n from a record: id and pubkey from "secp256k1", seq, and the
 * endpoint, as geth chooses it.  Each entry is read on its own and one
 * that is malformed (an "ip" of 3 bytes, a "tcp" over 65535) is ignored,
 * not an error.  The address: "ip" and "ip6" that have the right length
 * and are not multicast are usable; of two usable ones the more global
 * wins (unspecified < loopback < link-local < private < other), "ip" on a
 * tie.  An IPv4-mapped "ip6" counts as an IPv4 address.  Ports: with an
 * IPv6 address "udp6"/"tcp6", falling back to "udp"/"tcp"; otherwise
 * "udp"/"tcp" (also when no address is usable: family 0).  Does not verify
 * the signature (decode already did).
 * Returns 0, P2P_ENOTFOUND/P2P_EBADKEY (no usable key). */
P2P_MUST_CHECK int p2p_enr_to_node(p2p_node_t *n, const p2p_enr_t *r);

/* As p2p_enr_to_node, for a node whose sockets reach one address family
 * only: family 4 or 6 (p2p_ip_reach_family), or 0 for both (then exactly
 * p2p_enr_to_node).  Of two usable addresses the one of that family is
 * taken whatever their locality (an IPv4-mapped "ip6" is IPv4); a record
 * with one usable address gives it, of either family (the caller's own
 * checks find it unreachable).  Returns as p2p_enr_to_node. */
P2P_MUST_CHECK int p2p_enr_to_node_for(p2p_node_t *n, const p2p_enr_t *r, unsigned family);

#endif
