/*
 * actors/dialsched.h: the dial scheduler's pure core.  No I/O, no threads,
 * no clock: the dialer thread (`p2p-dial`) owns one p2p_dialsched_t, feeds it
 * events with the current monotonic time in nanoseconds, performs the
 * actions it queues (dial a node, resolve a static node through discovery),
 * and arms its timer for p2p_dialsched_next_deadline().
 *
 * Rules (PROTOCOL.md "Dial scheduler"):
 * - Dialed-peer budget: p2p_dial_max_dialed() (MaxPeers/DialRatio, at least
 *   1, 0 with NoDial or MaxPeers 0).  Free dial slots =
 *   min((maxDialed - dialedPeers) * 2, maxActiveDials) - dials in flight.
 * - Static nodes go first, in random order, then discovery candidates (the
 *   shell offers candidates only while p2p_dialsched_free_slots() > 0).
 * - A node is dialled only if it passes, in this order: not self; not an IP
 *   with TCP port 0; not being dialled; not connected; no inbound connection
 *   pending (discovery candidates only: a pending inbound connection's ID is
 *   not proven yet, so it must not keep a static node from being dialled);
 *   inside NetRestrict (if set); not dialled in the last 35 s.  A static
 *   node is therefore redialled at most once per 35 s.
 * - A static node without an IP is resolved through discovery (a RESOLVE
 *   action); the first attempt is immediate.  The wait starts at 60 s and
 *   doubles with each failed resolution before it applies (120 s after the
 *   first failure, 240 s after the second, ... capped at 1 h).  A successful
 *   resolution resets the wait to 60 s (the next resolution comes at least
 *   60 s later) and dials at once.  A static dial whose TCP connect failed is
 *   re-resolved (subject to the same backoff) and redialled if found.
 * - A resolution occupies a dial slot like a dial.
 *
 * Call protocol: after any event, drain p2p_dialsched_take() and run each
 * action; report every DIAL with p2p_dialsched_dial_done() and every RESOLVE
 * with p2p_dialsched_resolve_done().  Each p2p_dialsched_inbound_pending()
 * must be matched by exactly one p2p_dialsched_peer_added() carrying
 * P2P_CONN_INBOUND or one p2p_dialsched_inbound_done().
 *
 * Limits: at most max_active_dials entries in flight (dialling or
 * resolving); at most P2P_DIAL_MAX_STATIC static nodes (an API caller
 * fills the set: every scheduling pass looks at each of them); maps grow
 * with the static set, the peer set and the dial history (bounded by the
 * dial rate times 35 s).  History entries expire in
 * the order they were made (one expiry queue beside the map), so an event
 * costs O(1) plus the entries it expires, whatever the history's size.
 *
 * Thread-safety: a scheduler belongs to the dialer thread only.
 */
#ifndef P2P_ACTORS_DIALSCHED_H
#define P2P_ACTORS_DIALSCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "actors/connflags.h"
#include "actors/idmap.h"
#include "core/err.h"
#include "core/netutil.h"
#include "wire/node.h"

#ifndef P2P_NS_PER_SEC
#define P2P_NS_PER_SEC 1000000000ULL
#endif

/* Server and dialer constants. */
#define P2P_DIAL_TIMEOUT_NS (15 * P2P_NS_PER_SEC)         /* defaultDialTimeout (shell) */
#define P2P_DIAL_HISTORY_EXPIRY_NS (35 * P2P_NS_PER_SEC)  /* dialHistoryExpiration */
#define P2P_DIAL_STATS_INTERVAL_NS (10 * P2P_NS_PER_SEC)  /* stats log interval (shell) */
#define P2P_DIAL_RESOLVE_INITIAL_NS (60 * P2P_NS_PER_SEC) /* initialResolveDelay */
#define P2P_DIAL_RESOLVE_MAX_NS (3600 * P2P_NS_PER_SEC)   /* maxResolveDelay */
/* A RESOLVE not answered within this is taken as failed (counted in
 * resolve_failed and resolve_timeouts): its slot is freed and the node
 * resolved again after the backoff, so a lost answer cannot hold a dial
 * slot, and the static node, for good. */
#define P2P_DIAL_RESOLVE_TIMEOUT_NS (60 * P2P_NS_PER_SEC)
#define P2P_DIAL_DNS_TIMEOUT_NS (5 * P2P_NS_PER_SEC) /* DNS lookups (shell) */
#define P2P_DIAL_MAX_ACTIVE_DEFAULT 50               /* maxActiveDials */
#define P2P_DIAL_RATIO_DEFAULT 3                     /* defaultDialRatio */
#define P2P_DIAL_NO_DEADLINE UINT64_MAX
#define P2P_DIAL_MAX_STATIC 1024 /* static nodes kept (P2P_SERVER_MAX_STATIC) */

/* MaxDialedConns: 0 if no_dial or max_peers == 0, else
 * max(1, max_peers / dial_ratio); dial_ratio 0 means the default 3. */
unsigned p2p_dial_max_dialed(unsigned max_peers, unsigned dial_ratio, bool no_dial);
/* MaxInbound = max_peers - MaxDialedConns. */
unsigned p2p_dial_max_inbound(unsigned max_peers, unsigned dial_ratio, bool no_dial);

/* Why a node was not dialled (0 = it was). */
typedef enum p2p_dial_skip {
    P2P_DIAL_STARTED = 0,
    P2P_DIAL_SKIP_SELF,            /* our own node ID */
    P2P_DIAL_SKIP_NO_PORT,         /* has an IP but TCP port 0 */
    P2P_DIAL_SKIP_DIALING,         /* a dial or resolution is in flight */
    P2P_DIAL_SKIP_CONNECTED,       /* already a peer */
    P2P_DIAL_SKIP_PENDING_INBOUND, /* an inbound connection is in its handshake */
    P2P_DIAL_SKIP_NETRESTRICT,     /* outside the NetRestrict list */
    P2P_DIAL_SKIP_HISTORY,         /* dialled less than 35 s ago */
    P2P_DIAL_SKIP_NO_IP,           /* candidate without an IP (cannot be resolved) */
    P2P_DIAL_SKIP_NO_SLOT,         /* no free dial slot */
    P2P_DIAL_SKIP_RESOLVE_BACKOFF, /* static node waiting for its next resolution */
    P2P_DIAL_SKIP_NOMEM,           /* the dial history could not grow */
    P2P_DIAL_SKIP_COUNT
} p2p_dial_skip_t;

/* Static name of a skip reason, such as "history". */
const char *p2p_dial_skip_name(p2p_dial_skip_t why);

typedef enum p2p_dial_result {
    P2P_DIAL_OK = 0,           /* connected and both handshakes passed */
    P2P_DIAL_CONNECT_FAILED,   /* TCP connect failed or timed out */
    P2P_DIAL_HANDSHAKE_FAILED, /* connected, but RLPx, Hello or a checkpoint failed */
} p2p_dial_result_t;

typedef enum p2p_dial_act_kind {
    P2P_DIAL_ACT_DIAL = 1,    /* dial node with flags */
    P2P_DIAL_ACT_RESOLVE = 2, /* look node.id up in discovery */
} p2p_dial_act_kind_t;

typedef struct p2p_dial_action {
    p2p_dial_act_kind_t kind;
    unsigned flags; /* P2P_CONN_* for a dial */
    p2p_node_t node;
} p2p_dial_action_t;

typedef struct p2p_dialsched_config {
    uint8_t self[32];          /* local node ID */
    unsigned max_peers;        /* MaxPeers */
    unsigned dial_ratio;       /* 0: P2P_DIAL_RATIO_DEFAULT */
    bool no_dial;              /* NoDial */
    unsigned max_active_dials; /* 0: P2P_DIAL_MAX_ACTIVE_DEFAULT */
    bool resolve;              /* discovery runs: static nodes may be resolved */
    bool has_netrestrict;
    p2p_netlist_t netrestrict; /* used if has_netrestrict */
    uint64_t seed;             /* random static order and map hashing */
} p2p_dialsched_config_t;

typedef struct p2p_dialsched_stats {
    uint64_t skipped[P2P_DIAL_SKIP_COUNT]; /* discovery candidates not dialled, per reason */
    uint64_t dials_static;                 /* static dials started */
    uint64_t dials_dyn;                    /* candidate dials started */
    uint64_t dial_ok, dial_connect_failed, dial_handshake_failed;
    uint64_t resolves, resolve_ok, resolve_failed;
    uint64_t resolve_timeouts;    /* of resolve_failed: not answered in time */
    uint64_t resolved_restricted; /* resolved address outside NetRestrict */
} p2p_dialsched_stats_t;

typedef struct p2p__dial_static {
    p2p_node_t node;
    bool trusted;
    uint64_t resolve_wait; /* wait after the next failed resolution */
    uint64_t next_resolve; /* earliest time of the next resolution */
} p2p__dial_static_t;

typedef struct p2p__dial_slot {
    bool used;
    uint8_t state; /* internal */
    unsigned flags;
    uint64_t seq;              /* queue order */
    uint64_t resolve_deadline; /* RESOLVING: P2P_DIAL_RESOLVE_TIMEOUT_NS after it was taken */
    p2p_node_t node;
} p2p__dial_slot_t;

typedef struct p2p_dialsched {
    p2p_dialsched_config_t cfg;
    unsigned max_dialed;
    unsigned dial_peers; /* connected peers we dialled */
    p2p_idmap_t peers;   /* id -> P2P_CONN_* flags */
    p2p_idmap_t pending; /* id -> inbound connections in handshake */
    p2p_idmap_t history; /* id -> expiry time */
    p2p_idexpq_t hq;     /* the history's expiry queue */
    p2p_idmap_t statics; /* id -> index into stat */
    p2p__dial_static_t *stat;
    unsigned *scratch;
    unsigned nstatic, stat_cap;
    p2p_idmap_t dialing;    /* id -> index into slot */
    p2p__dial_slot_t *slot; /* max_active_dials entries */
    unsigned ndialing;
    uint64_t seq;
    uint64_t rng;
    uint64_t now; /* the time of the latest call that gave one (take has none) */
    p2p_dialsched_stats_t stats;
} p2p_dialsched_t;

/* Sets up s from cfg.  Returns 0 or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_dialsched_init(p2p_dialsched_t *s, const p2p_dialsched_config_t *cfg);
void p2p_dialsched_free(p2p_dialsched_t *s);

/* Adds node to the static set (or updates its endpoint and trusted flag).
 * Static dials carry P2P_CONN_STATIC_DIALED, plus P2P_CONN_TRUSTED if
 * trusted.  Returns 0, P2P_EFULL (a new node while the set holds
 * P2P_DIAL_MAX_STATIC: the set is unchanged) or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_dialsched_add_static(p2p_dialsched_t *s, const p2p_node_t *node,
                                            bool trusted, uint64_t now);
/* Why static node n can never be dialled as it stands: P2P_DIAL_SKIP_SELF,
 * _NO_PORT, _NETRESTRICT (its IP outside the list), _NO_IP (no IP and
 * no resolve hook) or _NO_SLOT (no dialled-peer budget: NoDial or MaxPeers
 * 0); P2P_DIAL_STARTED when nothing stands in the way for good.  The
 * dialer warns once when such a node is added (it stays in the set, as
 * geth keeps it, and is skipped at every pass). */
p2p_dial_skip_t p2p_dialsched_static_blocked(const p2p_dialsched_t *s, const p2p_node_t *n);
/* Removes a static node (a dial in flight runs to its end).  Returns true if
 * it was in the set. */
bool p2p_dialsched_remove_static(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now);

/* Offers a discovery candidate.  Returns P2P_DIAL_STARTED if a dial was
 * queued, else the reason it was skipped (also counted in stats). */
p2p_dial_skip_t p2p_dialsched_add_candidate(p2p_dialsched_t *s, const p2p_node_t *node,
                                            uint64_t now);

/* The run loop admitted a peer (flags: P2P_CONN_*).  Returns 0 or
 * P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_dialsched_peer_added(p2p_dialsched_t *s, const uint8_t id[32],
                                            unsigned flags, uint64_t now);
/* A peer went away.  Returns true if it was known. */
bool p2p_dialsched_peer_removed(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now);

/* An inbound connection from id passed its encryption handshake and is
 * pending; p2p_dialsched_inbound_done() when it fails before becoming a
 * peer.  Returns 0 or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_dialsched_inbound_pending(p2p_dialsched_t *s, const uint8_t id[32],
                                                 uint64_t now);
void p2p_dialsched_inbound_done(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now);

/* A DIAL action ended.  Returns 0, or P2P_ENOTFOUND if no dial of id was
 * handed out. */
P2P_MUST_CHECK int p2p_dialsched_dial_done(p2p_dialsched_t *s, const uint8_t id[32],
                                           p2p_dial_result_t result, uint64_t now);
/* A RESOLVE action ended; node is the record found (NULL if none).
 * Returns 0, or P2P_ENOTFOUND if no resolution of id was handed out. */
P2P_MUST_CHECK int p2p_dialsched_resolve_done(p2p_dialsched_t *s, const uint8_t id[32],
                                              const p2p_node_t *node, uint64_t now);

/* Timer expiry: expires history, fails resolutions not answered within
 * P2P_DIAL_RESOLVE_TIMEOUT_NS, and starts static dials that became due. */
void p2p_dialsched_tick(p2p_dialsched_t *s, uint64_t now);

/* Takes the oldest queued action into *act; returns false if none. */
bool p2p_dialsched_take(p2p_dialsched_t *s, p2p_dial_action_t *act);

/* Dial slots free right now (the shell offers candidates while > 0). */
unsigned p2p_dialsched_free_slots(const p2p_dialsched_t *s);
/* Dials and resolutions in flight (queued or handed out). */
static inline unsigned p2p_dialsched_in_flight(const p2p_dialsched_t *s)
{
    return s->ndialing;
}
/* Whether id is in flight / connected / in the static set. */
bool p2p_dialsched_is_dialing(const p2p_dialsched_t *s, const uint8_t id[32]);
bool p2p_dialsched_is_connected(const p2p_dialsched_t *s, const uint8_t id[32]);
bool p2p_dialsched_is_static(const p2p_dialsched_t *s, const uint8_t id[32]);

/* Earliest time after now at which tick() may start a static dial or must
 * expire history (a value <= now means: tick now); P2P_DIAL_NO_DEADLINE if
 * none. */
uint64_t p2p_dialsched_next_deadline(const p2p_dialsched_t *s, uint64_t now);

#endif
