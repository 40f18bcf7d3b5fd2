/*
 * actors/inbound.h: the listener's admission core.  Owned by the listener
 * thread (`p2p-listen`); pure state, time passed in as monotonic ns.
 *
 * - Pending-handshake slots: MaxPendingPeers connections may be in their
 *   handshakes at once.  The listener acquires a slot before accept() and
 *   releases it when the handshake ends (a `slots` message from the
 *   connection's thread) or when the connection is rejected here.
 * - checkInboundConn, in order: NetRestrict set and the IP outside it ->
 *   reject; a non-LAN IP that connected in the last 30 s -> reject ("too
 *   many attempts", the entry is not renewed); otherwise the IP is recorded
 *   for 30 s.  LAN IPs are neither checked nor recorded (geth records them
 *   but never looks, which its unbounded history makes harmless; in this
 *   bounded one they would only take room from Internet IPs).  A
 *   connection without an IP address is admitted (nothing to check).
 * - The history holds at most history_max IPs (expired from a queue in
 *   expiry order: O(1) per admission); when it is full (after expiry), the
 *   entry that would expire first is dropped early to record the new IP,
 *   and counted.  Refusing the new IP instead would let anyone who connects
 *   from history_max distinct addresses in 30 s (easy with IPv6) lock every
 *   new Internet peer out; dropping the oldest only lets an IP that many
 *   connections back retry before its 30 s are up.  Only an entry that
 *   cannot be allocated refuses the connection.
 * - Entries leave the history when their 30 s are up: on the next check,
 *   or at p2p_inbound_next_expiry through p2p_inbound_expire (the
 *   listener's timer), so it empties after a burst with no connection
 *   following.
 * Every rejection bumps a counter per reason.
 *
 * Thread-safety: the listener thread only.
 */
#ifndef P2P_ACTORS_INBOUND_H
#define P2P_ACTORS_INBOUND_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/idmap.h"
#include "core/err.h"
#include "core/netutil.h"

#define P2P_INBOUND_THROTTLE_NS (30 * 1000000000ULL) /* inboundThrottleTime */
#define P2P_MAX_PENDING_PEERS_DEFAULT 50             /* defaultMaxPendingPeers */
#define P2P_INBOUND_HISTORY_MAX_DEFAULT 16384

typedef enum p2p_inbound_verdict {
    P2P_INBOUND_OK = 0,
    P2P_INBOUND_NETRESTRICT,  /* not in the NetRestrict list */
    P2P_INBOUND_THROTTLED,    /* too many attempts: same non-LAN IP within 30 s */
    P2P_INBOUND_HISTORY_FULL, /* the history could not record the IP (out of memory) */
    P2P_INBOUND_VERDICT_COUNT
} p2p_inbound_verdict_t;

const char *p2p_inbound_verdict_name(p2p_inbound_verdict_t v);

typedef struct p2p_inbound_config {
    unsigned max_pending; /* MaxPendingPeers; 0: P2P_MAX_PENDING_PEERS_DEFAULT */
    bool has_netrestrict;
    p2p_netlist_t netrestrict;
    unsigned history_max; /* 0: P2P_INBOUND_HISTORY_MAX_DEFAULT */
    bool throttle_lan;    /* test hook: no LAN exemption (loopback tests) */
    uint64_t seed;        /* map hashing (use a random value) */
} p2p_inbound_config_t;

typedef struct p2p_inbound_stats {
    uint64_t rejected[P2P_INBOUND_VERDICT_COUNT]; /* [0] unused */
    uint64_t admitted;
    uint64_t slots_exhausted; /* acquire attempts with every slot taken */
    uint64_t history_evicted; /* entries dropped before their 30 s: history full */
} p2p_inbound_stats_t;

typedef struct p2p_inbound {
    p2p_inbound_config_t cfg;
    unsigned pending;    /* slots in use */
    p2p_idmap_t history; /* IP key -> expiry */
    p2p_idexpq_t hq;     /* the history's expiry queue */
    p2p_inbound_stats_t stats;
} p2p_inbound_t;

/* Returns 0 or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_inbound_init(p2p_inbound_t *in, const p2p_inbound_config_t *cfg);
void p2p_inbound_free(p2p_inbound_t *in);

/* Takes a pending-handshake slot: 0, or P2P_ELIMIT if all are in use (the
 * listener then waits for a `slots` message before accepting). */
P2P_MUST_CHECK int p2p_inbound_acquire(p2p_inbound_t *in);
/* Returns a slot: 0, or P2P_ESTATE if none was taken (a bookkeeping bug). */
P2P_MUST_CHECK int p2p_inbound_release(p2p_inbound_t *in);
static inline unsigned p2p_inbound_free_slots(const p2p_inbound_t *in)
{
    return in->cfg.max_pending - in->pending;
}

/* checkInboundConn for a connection from ip at time now. */
p2p_inbound_verdict_t p2p_inbound_check(p2p_inbound_t *in, const p2p_ip_t *ip, uint64_t now);

/* Drops the history entries whose 30 s are up at now (p2p_inbound_check
 * does too), giving a burst's capacity back.  The listener calls it when
 * p2p_inbound_next_expiry comes, so a history filled by a burst empties
 * even if no connection follows. */
void p2p_inbound_expire(p2p_inbound_t *in, uint64_t now);
/* When the next history entry expires; UINT64_MAX if the history is empty. */
static inline uint64_t p2p_inbound_next_expiry(const p2p_inbound_t *in)
{
    return p2p_idexpq_next(&in->hq);
}

#endif
