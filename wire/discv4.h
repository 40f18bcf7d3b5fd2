/*
 * wire/discv4.h: discovery v4 packets (devp2p discv4.md, EIP-8, EIP-868).
 *
 * Packet = hash(32) || sig(65) || type(1) || rlp(body);
 *   sig  = recoverable secp256k1 signature over keccak256(type || body),
 *   hash = keccak256(sig || type || body).
 * Bodies:  1 Ping        [version, from, to, expiration, enr-seq?]
 *          2 Pong        [to, reply-tok(32), expiration, enr-seq?]
 *          3 Findnode    [target(64), expiration]
 *          4 Neighbors   [[[ip, udp, tcp, id(64)], ...], expiration]
 *          5 ENRRequest  [expiration]
 *          6 ENRResponse [reply-tok(32), record]
 * Endpoint = [ip(4|16 bytes), udp, tcp].
 *
 * Receiving is split so the UDP reader rejects cheap-to-detect junk before
 * the costly signature recovery (~40 us):
 *   1. p2p_discv4_precheck: size bounds, known type, hash.  No EC math.
 *   2. p2p_discv4_open: decodes the body (structure first), then recovers
 *      the sender (64-byte key + node ID).  p2p_discv4_open_at also checks
 *      the expiration between the two, so an expired packet costs no
 *      recovery.
 * p2p_discv4_decode does both.  The expiration is not checked by decoding
 * (the vectors are long expired): call p2p_discv4_expired with the clock.
 *
 * Leniency (EIP-8): extra elements at the end of any list (the body, an
 * endpoint, a neighbor entry) and bytes after the body list are ignored.
 * An endpoint IP of a length other than 4 or 16 decodes as family 0 (the
 * ping handler uses the UDP source address anyway); an IPv4-mapped IPv6
 * address decodes as family 4.
 *
 * The optional enr-seq of Ping and Pong (EIP-868): when the element in
 * that position is a canonical integer of at most 8 bytes, has_enr_seq is
 * set; when it is anything else (a list, as in the ping_v555 and pong
 * EIP-8 vectors, or an oversized/non-canonical string), the packet is
 * ACCEPTED and the enr-seq treated as absent.  go-ethereum rejects these two
 * vectors; we follow EIP-8's "be lenient" because the element carries no
 * security meaning and dropping the packet loses a valid ping/pong.
 *
 * Neighbors: a packet may list up to P2P_DISCV4_NEIGHBORS_CAP nodes (every
 * well-formed entry is >= 70 bytes, so no 1280-byte packet can hold more;
 * more is P2P_ETOOBIG).  Lists longer than P2P_DISCV4_MAX_NEIGHBORS (12)
 * decode successfully with `oversized` set (Besu sends 13 per packet: the
 * discovery core takes them and counts such packets).  Node keys in Neighbors are NOT validated
 * here (each would cost a point decompression); the table validates them with p2p_secp_pubkey_check
 * before use.  The encoder refuses more than 12.
 *
 * ENRResponse: the record is decoded structurally (p2p_enr_decode_unverified)
 * and must be well-formed, but its signature is NOT verified here: the
 * requester calls p2p_enr_verify and compares p2p_enr_node_id with the
 * sender after matching the reply to its request.
 *
 * Pong's reply token must be exactly 32 bytes (any other length could never
 * match a ping hash): P2P_EDECODE.
 *
 * Errors: P2P_EDECODE (shorter than 98 bytes), P2P_ETOOBIG (over 1280
 * bytes, more than P2P_DISCV4_NEIGHBORS_CAP neighbors),
 * P2P_EUNSUPPORTED (unknown packet type), P2P_EBADHASH, P2P_EBADSIG
 * (recovery failed), P2P_EDECODE / P2P_ENONCANON / P2P_EMORE / P2P_ERANGE
 * (malformed body: a port over 65535 is P2P_ERANGE), P2P_EEXPIRED
 * (p2p_discv4_expired only).
 *
 * Thread-safety: pure functions over caller-owned values; any thread.
 */
#ifndef P2P_WIRE_DISCV4_H
#define P2P_WIRE_DISCV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/enr.h"
#include "wire/node.h"

enum p2p_discv4_limits {
    P2P_DISCV4_HASH_LEN = 32,
    P2P_DISCV4_SIG_LEN = 65,
    P2P_DISCV4_HEAD_LEN = 97,      /* hash || sig; the type byte follows */
    P2P_DISCV4_MIN_SIZE = 98,      /* head + type byte */
    P2P_DISCV4_MAX_SIZE = 1280,    /* whole packet */
    P2P_DISCV4_MAX_NEIGHBORS = 12, /* per Neighbors packet sent */
    P2P_DISCV4_NEIGHBORS_CAP = 16, /* per Neighbors packet decoded */
    P2P_DISCV4_EXPIRATION = 20,    /* seconds: expiration = now + this */
    P2P_DISCV4_PING_VERSION = 4,
};

typedef enum p2p_discv4_type {
    P2P_DISCV4_PING = 1,
    P2P_DISCV4_PONG = 2,
    P2P_DISCV4_FINDNODE = 3,
    P2P_DISCV4_NEIGHBORS = 4,
    P2P_DISCV4_ENRREQUEST = 5,
    P2P_DISCV4_ENRRESPONSE = 6,
} p2p_discv4_type_t;

/* One entry of a Neighbors packet: the endpoint and the 64-byte key as sent
 * (not validated). */
typedef struct p2p_discv4_rpcnode {
    p2p_endpoint_t ep;
    uint8_t id[64];
} p2p_discv4_rpcnode_t;

/* A decoded packet (receive side), or the body to send (encode side: only
 * type and the union member for that type are read, plus expiration). */
typedef struct p2p_discv4_packet {
    uint8_t type;          /* p2p_discv4_type_t */
    uint64_t expiration;   /* unix seconds (not present in ENRResponse: 0) */
    uint8_t hash[32];      /* decode: the packet hash (reply token for Ping) */
    uint8_t sender[64];    /* decode: recovered public key X||Y */
    uint8_t sender_id[32]; /* decode: keccak256(sender) */
    union {
        struct {
            uint64_t version;
            p2p_endpoint_t from, to;
            bool has_enr_seq;
            uint64_t enr_seq;
        } ping;
        struct {
            p2p_endpoint_t to;
            uint8_t reply_tok[32];
            bool has_enr_seq;
            uint64_t enr_seq;
        } pong;
        struct {
            uint8_t target[64];
        } findnode;
        struct {
            unsigned n;
            bool oversized; /* n > P2P_DISCV4_MAX_NEIGHBORS */
            p2p_discv4_rpcnode_t nodes[P2P_DISCV4_NEIGHBORS_CAP];
        } neighbors;
        struct {
            uint8_t reply_tok[32];
            p2p_enr_t record; /* structurally valid, signature NOT verified */
        } enrresponse;
    } u;
} p2p_discv4_packet_t;

/* Result of the cheap checks. */
typedef struct p2p_discv4_head {
    uint8_t type;
    uint8_t hash[32];
} p2p_discv4_head_t;

/* Cheap checks, no EC math: 98 <= len <= 1280, type 1..6, hash matches.
 * Out: h.  Returns 0, P2P_EDECODE (short), P2P_ETOOBIG, P2P_EUNSUPPORTED
 * or P2P_EBADHASH. */
P2P_MUST_CHECK int p2p_discv4_precheck(p2p_discv4_head_t *h, const uint8_t *pkt, size_t len);

/* Decodes the body of a packet that passed p2p_discv4_precheck (h from
 * that call, same bytes), then recovers the sender.  Out: p (all fields).
 * Returns 0 or a decode error, P2P_EBADSIG, or P2P_EINVAL (len outside
 * 98..1280: not a packet that passed the precheck). */
P2P_MUST_CHECK int p2p_discv4_open(p2p_discv4_packet_t *p, const p2p_discv4_head_t *h,
                                   const uint8_t *pkt, size_t len);

/* p2p_discv4_open, with the expiration checked after the body decode and
 * before the recovery: returns P2P_EEXPIRED (no recovery done; p holds the
 * decoded body, not the sender) if p2p_discv4_expired(p, now) says so. */
P2P_MUST_CHECK int p2p_discv4_open_at(p2p_discv4_packet_t *p, const p2p_discv4_head_t *h,
                                      const uint8_t *pkt, size_t len, uint64_t now);

/* p2p_discv4_precheck then p2p_discv4_open. */
P2P_MUST_CHECK int p2p_discv4_decode(p2p_discv4_packet_t *p, const uint8_t *pkt, size_t len);

/* Returns P2P_EEXPIRED if the packet carries an expiration earlier than
 * now (unix seconds), else 0.  ENRResponse carries none: always 0. */
P2P_MUST_CHECK int p2p_discv4_expired(const p2p_discv4_packet_t *p, uint64_t now);

/* Encodes and signs p's body (type, expiration and the union member of that
 * type; enr-seq is written when has_enr_seq) with priv.
 * Out: out[0..*outlen) (at most P2P_DISCV4_MAX_SIZE), hash (the packet hash:
 * a Ping's hash is the reply token its Pong must echo).  May be NULL.
 * A Ping's version 0 is sent as 4.  Returns 0, P2P_EINVAL (unknown type),
 * P2P_ETOOBIG (too many neighbors or packet over 1280 bytes), P2P_ESTATE
 * (ENRResponse record not signed), P2P_EBADKEY, P2P_ECRYPTO. */
P2P_MUST_CHECK int p2p_discv4_encode(uint8_t out[P2P_DISCV4_MAX_SIZE], size_t *outlen,
                                     uint8_t hash[32], const p2p_discv4_packet_t *p,
                                     const uint8_t priv[32]);

/* Wraps an already-encoded body: out = hash || sig || type || body, signed
 * with priv.  For tests and tools that need bodies the encoder would not
 * produce.  Returns 0, P2P_ETOOBIG, P2P_EBADKEY, P2P_ECRYPTO. */
P2P_MUST_CHECK int p2p_discv4_seal(uint8_t out[P2P_DISCV4_MAX_SIZE], size_t *outlen,
                                   uint8_t hash[32], uint8_t type, const uint8_t *body,
                                   size_t bodylen, const uint8_t priv[32]);

/* Converts a received Neighbors entry to a node: validates the key on the
 * curve and derives the ID (seq 0).  Returns 0 or P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_discv4_rpcnode_to_node(p2p_node_t *n, const p2p_discv4_rpcnode_t *r);

/* Fills a Neighbors entry to send from a node (endpoint and key). */
void p2p_discv4_rpcnode_from_node(p2p_discv4_rpcnode_t *r, const p2p_node_t *n);

/* Name of a packet type ("ping", ...) or "unknown". */
const char *p2p_discv4_type_name(unsigned type);

#endif
