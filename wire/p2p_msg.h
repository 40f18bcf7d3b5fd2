/*
 * wire/p2p_msg.h: the devp2p base protocol ("p2p", version 5) messages:
 * Hello, Disconnect, Ping, Pong, the disconnect reasons, and capability
 * matching (which subprotocol gets which message-code offset).
 *
 * Limits (one place): Hello at most 2048 bytes; at most P2P_HELLO_MAX_CAPS
 * capabilities kept, names of 1..P2P_CAP_NAME_MAX bytes (real ones are 3-4:
 * eth, snap, les, wit), versions <= UINT32_MAX (a decoded Hello skips
 * capabilities outside these limits, which cannot match ours, and those
 * past the first P2P_HELLO_MAX_CAPS kept, which could: a peer announcing
 * more is matched on its first 64 only; real clients announce fewer than
 * 10, geth keeps every one that fits in the 2 KiB Hello); client name at most
 * P2P_HELLO_NAME_MAX bytes (bounded by the Hello size anyway); Disconnect
 * input: only the first 100 bytes are considered.  Hello decoding is
 * tail-tolerant (EIP-8): extra list elements are ignored.
 *
 * Thread-safety: pure functions, called by peer threads.
 */
#ifndef P2P_WIRE_P2P_MSG_H
#define P2P_WIRE_P2P_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum {
    P2P_BASE_VERSION = 5,    /* baseProtocolVersion */
    P2P_BASE_LENGTH = 16,    /* codes 0..15 belong to the base protocol */
    P2P_BASE_MAX_MSG = 2048, /* baseProtocolMaxMsgSize */
    P2P_HELLO_MAX = 2048,    /* Hello larger than this -> too big */
    P2P_HELLO_MAX_CAPS = 64,
    P2P_CAP_NAME_MAX = 32,
    P2P_HELLO_NAME_MAX = 2048,
    P2P_DISC_INPUT_MAX = 100, /* Disconnect bytes considered */
    P2P_MSG_HELLO = 0x00,
    P2P_MSG_DISC = 0x01,
    P2P_MSG_PING = 0x02,
    P2P_MSG_PONG = 0x03,
};

/* Disconnect reasons (wire values). */
typedef enum p2p_disc_reason {
    P2P_DISC_REQUESTED = 0x00,
    P2P_DISC_NETWORK_ERROR = 0x01,
    P2P_DISC_PROTOCOL_ERROR = 0x02,
    P2P_DISC_USELESS_PEER = 0x03,
    P2P_DISC_TOO_MANY_PEERS = 0x04,
    P2P_DISC_ALREADY_CONNECTED = 0x05,
    P2P_DISC_INCOMPATIBLE_VERSION = 0x06,
    P2P_DISC_INVALID_IDENTITY = 0x07,
    P2P_DISC_QUITTING = 0x08,
    P2P_DISC_UNEXPECTED_IDENTITY = 0x09,
    P2P_DISC_SELF = 0x0a,
    P2P_DISC_READ_TIMEOUT = 0x0b,
    P2P_DISC_SUBPROTOCOL_ERROR = 0x10,
    P2P_DISC_INVALID = 0xff,
} p2p_disc_reason_t;

/* Static description of a reason ("too many peers"); unknown values give
 * "unknown disconnect reason". */
const char *p2p_disc_reason_str(unsigned reason);

typedef struct p2p_cap {
    char name[P2P_CAP_NAME_MAX + 1]; /* NUL-terminated copy of the bytes */
    size_t name_len;                 /* 1..P2P_CAP_NAME_MAX */
    uint32_t version;
} p2p_cap_t;

typedef struct p2p_hello {
    uint64_t version;
    char name[P2P_HELLO_NAME_MAX + 1]; /* client name, NUL-terminated copy */
    size_t name_len;
    size_t ncaps;
    p2p_cap_t caps[P2P_HELLO_MAX_CAPS];
    uint64_t listen_port;
    uint8_t id[64]; /* the node's public key; must equal the handshake key */
} p2p_hello_t;

/* Encodes h as the Hello payload (caps in the given order, name_len bytes
 * of each name).  Out: out[0..*outlen).  Returns 0, P2P_EINVAL (more than
 * P2P_HELLO_MAX_CAPS caps, a name over 2048 bytes or a cap name over 32
 * bytes) or P2P_ETOOBIG (outcap too small or the encoding over 2048
 * bytes). */
P2P_MUST_CHECK int p2p_hello_encode(uint8_t *out, size_t outcap, size_t *outlen,
                                    const p2p_hello_t *h);

/* Decodes a Hello payload (tail-tolerant).  Capabilities with an empty
 * name, a name over P2P_CAP_NAME_MAX bytes or a version over UINT32_MAX,
 * and any past the first P2P_HELLO_MAX_CAPS kept, are skipped (h->caps
 * holds the rest, in order).  Returns 0, P2P_ETOOBIG (inlen > 2048, or a
 * client name over P2P_HELLO_NAME_MAX), P2P_EDECODE (malformed, missing
 * fields, a cap entry that is not [bytes, uint64, ...]) or
 * P2P_EBADKEY (ID not 64 bytes or all zero: disconnect with
 * P2P_DISC_INVALID_IDENTITY). */
P2P_MUST_CHECK int p2p_hello_decode(p2p_hello_t *h, const uint8_t *in, size_t inlen);

/* Encodes Disconnect as rlp([reason]).  out must hold 3 bytes; *outlen 2
 * or 3.  Returns 0 or P2P_ETOOBIG. */
P2P_MUST_CHECK int p2p_disc_encode(uint8_t *out, size_t outcap, size_t *outlen, uint8_t reason);

/* Decodes a Disconnect payload: rlp([reason, ...]) or a bare rlp reason,
 * raw or snappy-compressed (each tried; snappy first if snappy_first, as
 * after a v5 Hello).  Only the first 100 bytes are considered.  Out:
 * *reason, P2P_DISC_INVALID (0xff) on failure.  Returns 0 or P2P_EDECODE. */
P2P_MUST_CHECK int p2p_disc_decode(uint8_t *reason, const uint8_t *in, size_t inlen,
                                   bool snappy_first);

/* Ping and Pong payload: the empty list 0xC0.  Received Ping/Pong
 * payloads carry no information and are not decoded (as in geth). */
extern const uint8_t p2p_ping_payload[1];

/* A local subprotocol. */
typedef struct p2p_proto {
    const char *name;
    uint32_t version;
    uint32_t length; /* number of message codes */
} p2p_proto_t;

/* A matched subprotocol: local[proto] runs at message codes
 * offset .. offset + length - 1. */
typedef struct p2p_proto_match {
    size_t proto;
    uint64_t offset;
} p2p_proto_match_t;

/* matchProtocols: sorts the remote caps by (name, version); for each one
 * that equals a local (name, version), the highest common version per
 * name wins and offsets are packed from P2P_BASE_LENGTH in name order.
 * Out: out[0..*nout) in name order (out must hold nlocal entries).
 * Returns 0 or P2P_ETOOBIG (nremote > P2P_HELLO_MAX_CAPS). */
P2P_MUST_CHECK int p2p_caps_match(p2p_proto_match_t *out, size_t *nout, const p2p_proto_t *local,
                                  size_t nlocal, const p2p_cap_t *remote, size_t nremote);

#endif
