/*
 * wire/rlpx_handshake.h: the RLPx handshake (auth / ack) as a pure state
 * machine for both roles.  No sockets, no clock: the connection's thread
 * (peer-<id8>, born in the dialer or the listener) feeds it bytes read from
 * the socket and writes the packets it produces.
 *
 * Sending: always EIP-8 (rlp list + 100..199 random zero bytes of padding,
 * ECIES-encrypted with the 2-byte big-endian size prefix as shared MAC
 * data), except that a recipient answers a legacy (pre-EIP-8) auth with a
 * legacy ack, since such an initiator cannot read anything else.
 * Receiving: EIP-8 (extra list elements and trailing padding tolerated) and
 * legacy (auth 307 bytes, ack 210 bytes, no prefix).  A packet starting
 * with 0x04 may be either, so the legacy size is tried first, as EIP-8
 * suggests; any other first byte can only be an EIP-8 size prefix.
 *
 * Input is incremental: p2p_rlpx_hs_need() says how many bytes to read
 * next (2 for the prefix, then the rest), so a socket reader never reads
 * past the handshake packet into the frame stream.  An announced size
 * above P2P_RLPX_HS_MAX is rejected before anything is buffered.  Every
 * public key that arrives (initiator static key, the ephemeral key
 * recovered from the signature, the ack's ephemeral key) is validated as a
 * curve point before any ECDH.
 *
 * Secrets (keys, nonces, shared values) live in the state; call
 * p2p_rlpx_hs_wipe() when done.  Derived session secrets go to
 * p2p_rlpx_secrets_t (wipe with p2p_rlpx_secrets_wipe()).
 *
 * Thread-safety: a state belongs to one thread.
 */
#ifndef P2P_WIRE_RLPX_HANDSHAKE_H
#define P2P_WIRE_RLPX_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "crypto/keccak.h"

enum {
    P2P_RLPX_HS_MAX = 2048,         /* largest accepted size prefix value */
    P2P_RLPX_HS_PKT_MAX = 2 + 2048, /* largest packet incl. prefix */
    P2P_RLPX_AUTH_LEGACY_LEN = 307, /* 194-byte plaintext + 113 */
    P2P_RLPX_ACK_LEGACY_LEN = 210,  /* 97-byte plaintext + 113 */
    P2P_RLPX_HS_VERSION = 4,        /* version we send */
    P2P_RLPX_PAD_MIN = 100,         /* random zero padding we add: 100..199 */
    P2P_RLPX_PAD_SPAN = 100,
};

typedef enum { P2P_RLPX_INITIATOR = 0, P2P_RLPX_RECIPIENT = 1 } p2p_rlpx_role_t;

typedef enum {
    P2P_RLPX_HS_START = 0, /* initiator: make auth; recipient: feed auth */
    P2P_RLPX_HS_WAIT_ACK,  /* initiator: feed ack */
    P2P_RLPX_HS_SEND_ACK,  /* recipient: make ack */
    P2P_RLPX_HS_DONE,      /* secrets may be derived */
    P2P_RLPX_HS_FAILED,    /* an error occurred; only wipe is valid */
} p2p_rlpx_hs_state_t;

/* Session secrets: input to the frame codec. */
typedef struct p2p_rlpx_secrets {
    uint8_t remote_pub[64]; /* remote static key (authenticated) */
    uint8_t aes[32];
    uint8_t mac[32];
    p2p_keccak_t egress_mac;
    p2p_keccak_t ingress_mac;
} p2p_rlpx_secrets_t;

typedef struct p2p_rlpx_hs {
    p2p_rlpx_role_t role;
    p2p_rlpx_hs_state_t state;
    uint8_t priv[32];           /* local static key */
    uint8_t pub[64];            /* its public key (initiator only) */
    uint8_t remote_pub[64];     /* remote static key (given or from the auth) */
    uint8_t eph_priv[32];       /* local ephemeral key */
    uint8_t remote_eph_pub[64]; /* read-only after the peer's packet */
    uint8_t init_nonce[32];
    uint8_t resp_nonce[32];
    uint64_t remote_version; /* version field of the peer's packet (4 for legacy) */
    bool remote_eip8;        /* peer's packet was EIP-8 (else legacy) */
    bool legacy_tried;       /* input: 0x04-first packet was not legacy */
    /* Packets as on the wire (incl. the EIP-8 prefix), kept for the MACs.
     * The initiator writes auth and reads ack; the recipient the reverse. */
    size_t auth_len;
    size_t ack_len;
    uint8_t auth[P2P_RLPX_HS_PKT_MAX];
    uint8_t ack[P2P_RLPX_HS_PKT_MAX];
} p2p_rlpx_hs_t;

/* Starts a handshake.  priv: our static key; remote_pub: the peer's static
 * key (initiator only; NULL for the recipient).  Draws the ephemeral key
 * and our nonce from the OS RNG.  Returns 0, P2P_EBADKEY or P2P_ESYS. */
P2P_MUST_CHECK int p2p_rlpx_hs_init(p2p_rlpx_hs_t *hs, p2p_rlpx_role_t role, const uint8_t priv[32],
                                    const uint8_t *remote_pub);

/* As p2p_rlpx_hs_init, with our static public key pub (64 bytes, the one
 * that belongs to priv) supplied by a caller that already has it, which
 * saves the initiator an EC multiplication per handshake.  pub NULL: derived
 * from priv.  The recipient never needs it. */
P2P_MUST_CHECK int p2p_rlpx_hs_init_keyed(p2p_rlpx_hs_t *hs, p2p_rlpx_role_t role,
                                          const uint8_t priv[32], const uint8_t *pub,
                                          const uint8_t *remote_pub);

/* Test hook (vectors): replaces the ephemeral key and our nonce.  Call
 * before making a packet.  Returns 0, P2P_EBADKEY or P2P_ESTATE. */
P2P_MUST_CHECK int p2p_rlpx_hs_test_set_ephemeral(p2p_rlpx_hs_t *hs, const uint8_t eph_priv[32],
                                                  const uint8_t nonce[32]);

/* Initiator: builds the EIP-8 auth packet.  Out: *pkt points into hs
 * (valid until wipe), *pktlen its length.  Returns 0, P2P_ESTATE,
 * P2P_EBADKEY or P2P_ESYS/P2P_ECRYPTO. */
P2P_MUST_CHECK int p2p_rlpx_hs_make_auth(p2p_rlpx_hs_t *hs, const uint8_t **pkt, size_t *pktlen);

/* Bytes the state machine needs next (0 when it expects no input). */
size_t p2p_rlpx_hs_need(const p2p_rlpx_hs_t *hs);

/* Consumes up to inlen bytes (never more than the current packet needs).
 * Out: *consumed.  Returns 0 when the peer's packet is complete and valid
 * (recipient: now make the ack; initiator: now derive the secrets),
 * P2P_EMORE when more bytes are needed (see p2p_rlpx_hs_need), or an error
 * that ends the handshake: P2P_ETOOBIG (size > 2048), P2P_EDECODE,
 * P2P_EBADMAC, P2P_EBADKEY, P2P_EBADSIG, P2P_ESTATE. */
P2P_MUST_CHECK int p2p_rlpx_hs_feed(p2p_rlpx_hs_t *hs, size_t *consumed, const uint8_t *in,
                                    size_t inlen);

/* Recipient: builds the ack (EIP-8, or legacy for a legacy auth).  Out as
 * for make_auth.  Returns 0, P2P_ESTATE or an ECIES error. */
P2P_MUST_CHECK int p2p_rlpx_hs_make_ack(p2p_rlpx_hs_t *hs, const uint8_t **pkt, size_t *pktlen);

/* Derives the session secrets (state DONE).  Returns 0, P2P_ESTATE or
 * P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_rlpx_hs_secrets(const p2p_rlpx_hs_t *hs, p2p_rlpx_secrets_t *sec);

/* Test hook (vectors): derives the secrets as p2p_rlpx_hs_secrets does,
 * but from the given auth and ack packets (e.g. a recorded ack whose ECIES
 * randomness cannot be reproduced).  Needs the remote ephemeral key and
 * both nonces to be known. */
P2P_MUST_CHECK int p2p_rlpx_hs_test_secrets_with(const p2p_rlpx_hs_t *hs, p2p_rlpx_secrets_t *sec,
                                                 const uint8_t *auth, size_t authlen,
                                                 const uint8_t *ack, size_t acklen);

/* Overwrites every secret in hs / sec. */
void p2p_rlpx_hs_wipe(p2p_rlpx_hs_t *hs);
void p2p_rlpx_secrets_wipe(p2p_rlpx_secrets_t *sec);

#endif
