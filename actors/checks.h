/*
 * actors/checks.h: the run loop's checkpoint logic as pure functions over a
 * small state (the peer set keyed by node ID with each peer's P2P_CONN_*
 * flags, the trusted set, the inbound count and the limits).  The run loop
 * thread (`p2p-run`) owns one p2p_checks_t; it calls the checks when a
 * connection arrives on `posthandshake` / `addpeer`, and the updates when
 * it admits a peer (addpeer), drops one (delpeer) or changes the trusted set
 * (addtrusted / removetrusted).  The identity check is called by the peer
 * thread between the two checkpoints.
 *
 * Outcomes (PROTOCOL.md "Server"), each a Disconnect reason:
 * - post-handshake: not trusted and peers >= MaxPeers -> too many peers;
 *   not trusted, inbound and inbound count >= MaxInbound -> too many peers;
 *   ID already a peer -> already connected; our own ID -> connected to self.
 * - add-peer: protocols configured and no capability matched -> useless
 *   peer; then the post-handshake checks again (the set may have changed).
 * - identity: Hello ID not 64 bytes or all zero -> invalid identity;
 *   keccak256(Hello ID) != the node ID from the encryption handshake ->
 *   unexpected identity.
 *
 * Thread-safety: one state per run loop; the identity check is pure.
 */
#ifndef P2P_ACTORS_CHECKS_H
#define P2P_ACTORS_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/connflags.h"
#include "actors/idmap.h"
#include "core/err.h"
#include "wire/p2p_msg.h"

#define P2P_CHECKS_MAX_TRUSTED 1024 /* trusted IDs kept (P2P_SERVER_MAX_TRUSTED) */

typedef struct p2p_checks_config {
    uint8_t self[32];     /* local node ID */
    unsigned max_peers;   /* MaxPeers */
    unsigned max_inbound; /* MaxPeers - MaxDialedConns (p2p_dial_max_inbound) */
    unsigned nprotocols;  /* configured subprotocols (0: every peer is useful) */
    uint64_t seed;        /* map hashing */
} p2p_checks_config_t;

typedef struct p2p_checks {
    p2p_checks_config_t cfg;
    p2p_idmap_t peers;   /* id -> P2P_CONN_* flags */
    p2p_idmap_t trusted; /* id -> 1 */
    unsigned inbound;    /* peers with P2P_CONN_INBOUND */
} p2p_checks_t;

/* Returns 0 or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_checks_init(p2p_checks_t *c, const p2p_checks_config_t *cfg);
void p2p_checks_free(p2p_checks_t *c);

/* checkpointPostHandshake: sets P2P_CONN_TRUSTED in *flags if id is
 * trusted and clears it if not (the trusted set alone decides; a flag the
 * connection carried in is not believed), then runs postHandshakeChecks.  Returns true if the
 * connection may go on, else false with the Disconnect reason in *reason. */
bool p2p_checks_post_handshake(const p2p_checks_t *c, uint8_t *reason, unsigned *flags,
                               const uint8_t id[32]);

/* checkpointAddPeer: matched_caps is the number of capabilities the Hello
 * matched against our protocols.  P2P_CONN_TRUSTED in *flags is set or
 * cleared from the trusted set as in p2p_checks_post_handshake (it may have
 * changed since).  Returns true if the peer may be added (then call
 * p2p_checks_add with *flags), else false with *reason. */
bool p2p_checks_add_peer(const p2p_checks_t *c, uint8_t *reason, unsigned *flags,
                         const uint8_t id[32], unsigned matched_caps);

/* Records an admitted peer (and counts it if inbound).  Returns 0,
 * P2P_EEXIST (already a peer: unchanged) or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_checks_add(p2p_checks_t *c, const uint8_t id[32], unsigned flags);
/* Forgets a peer; returns true if it was one. */
bool p2p_checks_remove(p2p_checks_t *c, const uint8_t id[32]);

/* addtrusted / removetrusted; a connected peer's trusted flag follows.
 * add returns 0, P2P_EFULL (a new ID while the set holds
 * P2P_CHECKS_MAX_TRUSTED: the set is unchanged) or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_checks_add_trusted(p2p_checks_t *c, const uint8_t id[32]);
void p2p_checks_remove_trusted(p2p_checks_t *c, const uint8_t id[32]);
bool p2p_checks_is_trusted(const p2p_checks_t *c, const uint8_t id[32]);

static inline unsigned p2p_checks_peer_count(const p2p_checks_t *c)
{
    return (unsigned)c->peers.n;
}
static inline unsigned p2p_checks_inbound_count(const p2p_checks_t *c)
{
    return c->inbound;
}
/* The flags of peer id, or -1 if it is not a peer. */
int p2p_checks_peer_flags(const p2p_checks_t *c, const uint8_t id[32]);

/* Identity check between the checkpoints: hello_id is the Hello's ID field
 * (hello_idlen bytes), expected the node ID the encryption handshake
 * proved.  Returns true if it matches, else false with *reason. */
bool p2p_checks_identity(uint8_t *reason, const uint8_t *hello_id, size_t hello_idlen,
                         const uint8_t expected[32]);

#endif
