/*
 * actors/disc_core.h: the discovery v4 protocol engine as a pure core.
 *
 * The discovery table thread (p2p-disc) owns one p2p_disc_t and is its only
 * caller.  The core does no I/O and reads no clock: the thread feeds it
 *   - p2p_disc_handle: every packet the UDP reader decoded and verified
 *     (p2p_discv4_packet_t with hash, sender key and ID) plus the UDP source;
 *   - p2p_disc_tick: the current time, at least at p2p_disc_deadline();
 *   - requests: lookups, candidate demand, local record/endpoint changes.
 * and the core calls back synchronously, on the caller's thread:
 *   - io.send: encode, sign and send one packet; return its hash;
 *   - io.event: table and lookup events (may be NULL);
 *   - db.*: the node database (bonds, findnode failures, seeds, records).
 * Time is a p2p_disc_time_t: monotonic nanoseconds for timers and matchers,
 * unix seconds for packet expirations and the DB's bond timestamps.
 *
 * Rules (PROTOCOL.md, Discovery v4):
 *   Ping     -> Pong (to = UDP source + ping.from.tcp, reply token = ping
 *               hash, our ENR seq).  If our last pong from (id, ip) is older
 *               than 24 h, ping back and add the node when its pong
 *               arrives; otherwise add it as verified now.  Records the
 *               ping time (db.set_last_ping): at once for a bonded sender,
 *               else only when its pong to our ping-back arrives (just
 *               before the bond), so pings from unproven senders write
 *               nothing to the node DB.
 *   Pong     -> must match a pending ping to (id, ip) with reply token =
 *               that ping's hash, else "unsolicited" (counted, ignored).
 *               Records the bond (db.set_last_pong).
 *   Findnode -> only for bonded senders (last pong from (id, ip) within
 *               24 h; else no reply, counted): the 16 closest (live
 *               preferred), filtered by the relay-address rule, in Neighbors
 *               packets of at most 12; one empty Neighbors if none.
 *   Neighbors-> must match a pending findnode to (id, ip); more than 12
 *               entries: dropped.  Each entry is validated (IP present, a
 *               family our socket reaches, UDP port > 1024, relay rule,
 *               NetRestrict, key on the curve, not us) before it goes
 *               anywhere; the request completes at 16 entries or after
 *               500 ms.
 *   ENRRequest -> only for bonded senders: ENRResponse with our record.
 *   ENRResponse -> must match a pending ENRRequest with reply token = its
 *               hash; the record's signature and node ID are verified.  A
 *               newer record of a table entry is applied; its endpoint only
 *               if it passes the Neighbors entry checks (else the old one
 *               stays, counted).
 *   Expired packets, packets from our own ID and (with NetRestrict) from
 *   outside the allowed networks are dropped.  Nodes from unsolicited
 *   replies never enter the table, nor (with NetRestrict) nodes outside the
 *   allowed networks from any source: bootnodes (dropped at p2p_disc_new),
 *   node DB seeds, p2p_disc_add_node (P2P_KAD_RESTRICTED).  Every drop
 *   bumps a named counter.
 *
 * Client side: before a findnode, if the node has not pinged us within 24 h
 * (so it may not hold a bond for us) or it failed more than 5 findnodes, we
 * ping it, wait for the pong, then wait 500 ms more (time for it to ping us
 * back and record our pong); no pong -> the query fails.  Findnode results
 * with no usable node count as failures (db findfails, per ID and IP); 5
 * failures evict the node if its table entry is at that IP and its bucket
 * keeps >= 4 entries.  A successful query resets them.
 *
 * Lookups: start from the 16 table nodes closest to the target, keep the
 * 16 closest seen, 3 queries in flight, end when every node of the result
 * has been asked.  Up to P2P_DISC_MAX_LOOKUPS run at once.  Refresh (at
 * start, then every 15-30 min): seeds from the DB (30, at most 5 days old)
 * and the bootnodes enter the table, then one self lookup and three random
 * lookups, one after the other.  A refresh in which no node answered a
 * findnode (bootnodes down or a lost packet while bootstrapping), or an
 * empty table, brings the next one forward: 10 s, doubling up to 15 min.
 *
 * Revalidation (kad_table): due entries are pinged; the outcome updates
 * their livenessChecks (a ping the send callback refuses for the address,
 * P2P_EUNSUPPORTED, counts as no reply; any other send failure as no
 * verdict, and so does an outcome for an entry whose endpoint changed
 * while the ping was out); a pong with a higher seq triggers an ENRRequest;
 * live entries with more than 5 checks are written to the DB as seeds.
 *
 * ENR requests (on a pong to any ping of ours that announces a higher seq
 * than a table entry's record): sent at once if the node has pinged us
 * within 24 h (it holds our bond).  Else the ping it answered was our bond
 * ping: the request waits 500 ms (enr_deferred; it takes a matcher slot),
 * time for the node to ping us back and get our pong, then is sent whether
 * or not it pinged (it may still hold our bond while our record of its
 * ping is gone), if the node is still a table entry at that endpoint.  A
 * ping from it with the higher seq sends the request at once.  One request
 * (sent or waiting) per (id, ip) at a time.
 *
 * Candidate stream for the dialer: a bounded FIFO (P2P_DISC_CANDIDATES
 * nodes, no duplicates, only nodes with a TCP port) of nodes found by
 * lookups: every validated Neighbors entry, and for the candidate lookups
 * (below) their whole result set: the live (verified) table entries they
 * start from and every queried node that answered its findnode, so a node
 * whose only known peer is its bootnode still dials it.  The thread pops
 * it with p2p_disc_candidates_pop.  While p2p_disc_want_candidates is on and the
 * FIFO is below half full, the core keeps one random lookup running (at most
 * one start per second).  When the FIFO is full, new nodes are dropped and
 * counted (candidates_dropped).
 *
 * The thread around the core (p2p-disc) must:
 *   - be its only caller; the callbacks run inside core calls and must not
 *     call back into the core;
 *   - pass p2p_disc_handle only packets that passed p2p_discv4_decode
 *     (size, hash, signature, structure), with the UDP source address and
 *     port; expiration, sender and everything else is checked here;
 *   - after every batch of calls, read p2p_disc_deadline() and call
 *     p2p_disc_tick when it is reached (0: at once; UINT64_MAX: no timer);
 *     after a tick the deadline is always later than the tick's time;
 *   - implement io.send with p2p_discv4_encode (node key) and return the
 *     packet hash (queueing the datagram for a later sendmmsg is fine);
 *   - wire db to actors/nodedb.h (last_ping/last_pong: the last ping and
 *     pong RECEIVED from (id, ip)), and run the hourly node DB expiry;
 *   - keep our record: on P2P_DISC_EV_ENDPOINT statements decide our
 *     external endpoint, re-sign with a higher seq and p2p_disc_set_record;
 *   - for the dialer: p2p_disc_want_candidates while it wants nodes, and
 *     pop p2p_disc_candidates_pop after each batch.
 *
 * Limits: P2P_DISC_MAX_PENDING outstanding requests of our own (a request
 * that does not fit is not sent, counted pending_full), P2P_DISC_MAX_LOOKUPS
 * lookups.  Ping-backs have their own pool of P2P_DISC_PINGBACKS matchers
 * (config: pingbacks),
 * so a ping flood from fresh keys takes no slot of lookups and revalidation
 * and cannot stop new nodes bonding: when the pool is full the oldest
 * ping-back is dropped (pingback_evicted); a network (/24, /48; LAN
 * addresses exempt) holds at most P2P_DISC_PINGBACKS_PER_NET of them (more:
 * pong only, pingback_net_full).  No allocation after p2p_disc_new.
 */
#ifndef P2P_ACTORS_DISC_CORE_H
#define P2P_ACTORS_DISC_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/kad_table.h"
#include "core/err.h"
#include "core/netutil.h"
#include "wire/discv4.h"
#include "wire/enr.h"
#include "wire/node.h"

enum p2p_disc_limits {
    P2P_DISC_ALPHA = 3,             /* findnode queries in flight per lookup */
    P2P_DISC_RESULT = 16,           /* lookup result size, findnode reply size */
    P2P_DISC_MAX_PENDING = 256,     /* outstanding requests (matchers) */
    P2P_DISC_MAX_LOOKUPS = 8,       /* concurrent lookups */
    P2P_DISC_MAX_BOOTNODES = 32,    /* bootnodes kept */
    P2P_DISC_SEED_COUNT = 30,       /* seeds loaded from the DB per refresh */
    P2P_DISC_CANDIDATES = 128,      /* candidate FIFO capacity */
    P2P_DISC_RANDOM_LOOKUPS = 3,    /* random lookups per refresh */
    P2P_DISC_PINGBACKS = 4096,      /* outstanding ping-backs (own pool, oldest evicted) */
    P2P_DISC_PINGBACKS_PER_NET = 8, /* of them per /24 (IPv4) or /48 (IPv6); LAN exempt */
};

#define P2P_DISC_RESP_TIMEOUT_NS 500000000ull      /* reply matchers, bond settle */
#define P2P_DISC_BOND_EXPIRATION_S (24u * 3600u)   /* endpoint proof lifetime */
#define P2P_DISC_BOND_FUTURE_S 300u                /* bond stamps newer than now + this: void */
#define P2P_DISC_SEED_MAX_AGE_S (5u * 24u * 3600u) /* seeds from the DB */
#define P2P_DISC_REFRESH_NS (30ull * 60 * 1000000000ull) /* refresh every 15-30 min */
#define P2P_DISC_RETRY_REFRESH_NS 10000000000ull         /* failed refresh: first retry after */
#define P2P_DISC_ITER_SPACING_NS 1000000000ull           /* candidate lookups at most 1/s */

typedef struct p2p_disc_time {
    uint64_t ns;     /* monotonic nanoseconds */
    uint64_t unix_s; /* wall clock, unix seconds */
} p2p_disc_time_t;

/* Named counters; every rejection reason has one.  X(name, description). */
#define P2P_DISC_COUNTERS(X)                                                                       \
    X(rx_ping, "pings handled")                                                                    \
    X(rx_pong, "pongs matched")                                                                    \
    X(rx_findnode, "findnode requests answered")                                                   \
    X(rx_neighbors, "neighbors packets matched")                                                   \
    X(rx_enrrequest, "ENR requests answered")                                                      \
    X(rx_enrresponse, "ENR responses accepted")                                                    \
    X(tx_packets, "packets sent")                                                                  \
    X(tx_errors, "send callback failures")                                                         \
    X(drop_expired, "expired packets")                                                             \
    X(drop_from_self, "packets carrying our own node ID")                                          \
    X(drop_restricted, "packets from outside NetRestrict")                                         \
    X(drop_unsolicited, "replies matching no pending request")                                     \
    X(drop_unbonded_findnode, "findnode from a sender without endpoint proof")                     \
    X(drop_unbonded_enrrequest, "ENR request from a sender without endpoint proof")                \
    X(rx_neighbors_over12, "neighbors packets with more than 12 entries (Besu sends 13; taken)")   \
    X(drop_bad_enr, "ENR responses with a bad signature or node ID")                               \
    X(drop_no_record, "ENR requests while we have no record")                                      \
    X(drop_unknown_type, "packets of an unknown type")                                             \
    X(node_no_ip, "neighbor entries without IP")                                                   \
    X(node_low_port, "neighbor entries with UDP port <= 1024")                                     \
    X(node_bad_relay, "neighbor entries failing the relay-address rule")                           \
    X(node_restricted, "nodes outside NetRestrict kept out of the table (neighbors, seeds, ...)")  \
    X(node_bad_key, "neighbor entries with a key off the curve")                                   \
    X(node_self, "neighbor entries naming us")                                                     \
    X(node_unreachable,                                                                            \
      "nodes of an address family our socket cannot reach (neighbors, seeds, ...)")                \
    X(enr_bad_endpoint, "ENR responses whose endpoint failed the checks (old endpoint kept)")      \
    X(table_iplimit, "table additions and address changes refused by the IP limits")               \
    X(pending_full, "requests not sent: matcher table full")                                       \
    X(timeouts, "requests that timed out")                                                         \
    X(findnode_partial, "findnode answers of fewer than 16 entries, closed at their deadline")     \
    X(findnode_failures, "findnode queries that returned no usable node")                          \
    X(findfail_evictions, "nodes evicted after repeated findnode failures")                        \
    X(reval_pings, "revalidation pings")                                                           \
    X(reval_deleted, "nodes deleted by revalidation")                                              \
    X(reval_unreachable, "revalidation pings refused for the address (counted as no reply)")       \
    X(enr_requests, "ENR requests sent")                                                           \
    X(enr_deferred, "ENR requests held 500 ms for the ping-back of a node that has not pinged us") \
    X(lookups_started, "lookups started")                                                          \
    X(lookups_full, "lookups refused: too many running")                                           \
    X(refreshes, "table refreshes started")                                                        \
    X(candidates_dropped, "candidates dropped: FIFO full")                                         \
    X(db_errors, "node database errors")                                                           \
    X(pingback_evicted, "ping-backs dropped unanswered: pool full, oldest evicted")                \
    X(pingback_net_full, "ping-backs not sent: too many outstanding to the sender's network")      \
    X(reentrant_calls, "set_record/set_endpoint refused: called from inside io.event")

typedef struct p2p_disc_counters {
#define P2P__DISC_CTR_FIELD(name, desc) uint64_t name;
    P2P_DISC_COUNTERS(P2P__DISC_CTR_FIELD)
#undef P2P__DISC_CTR_FIELD
} p2p_disc_counters_t;

typedef enum p2p_disc_event_kind {
    P2P_DISC_EV_NODE_ADDED = 1,   /* node: entered the table (live list) */
    P2P_DISC_EV_NODE_REMOVED = 2, /* node: left the table */
    P2P_DISC_EV_LOOKUP_DONE = 3,  /* lookup, nodes[0..n): the result */
    /* node told us our endpoint (pong.to) in its pong to a ping of ours to
     * a table entry (revalidation) or a lookup node (bonding); never from a
     * pong to a ping-back (an unsolicited pinger chooses to get one) */
    P2P_DISC_EV_ENDPOINT = 4,
    P2P_DISC_EV_RECORD = 5, /* node: a newer verified ENR was applied */
} p2p_disc_event_kind_t;

typedef struct p2p_disc_event {
    p2p_disc_event_kind_t kind;
    p2p_node_t node;
    p2p_endpoint_t endpoint; /* ENDPOINT: our address as node saw it */
    uint32_t lookup;         /* LOOKUP_DONE: the handle from p2p_disc_lookup */
    unsigned n;              /* LOOKUP_DONE: result count */
    const p2p_node_t *nodes; /* LOOKUP_DONE: valid during the callback only */
} p2p_disc_event_t;

/* Output side, implemented by the thread (or a test network). */
typedef struct p2p_disc_io {
    void *ctx;
    /* Encodes and signs pkt (type, expiration, the union member for the
     * type) and sends it to `to`.  Out: hash, the packet hash.  Returns 0
     * or an error (counted; a request whose send failed is not pending):
     * P2P_EUNSUPPORTED means the address itself can never be sent to (a
     * revalidation ping refused so counts as no reply), anything else a
     * transient failure. */
    int (*send)(void *ctx, uint8_t hash[32], const p2p_endpoint_t *to,
                const p2p_discv4_packet_t *pkt);
    /* Table and lookup events; may be NULL. */
    void (*event)(void *ctx, const p2p_disc_event_t *ev);
} p2p_disc_io_t;

/* The node database as the core uses it (actors/nodedb.h has the same
 * shapes; the thread wires it with one-line adapters, tests with a fake).
 * Times are unix seconds; "not stored" reads as 0.  Errors are counted and
 * read as "not stored". */
typedef struct p2p_disc_db {
    void *ctx;
    /* When (id, ip) last pinged us (their proof that we answer). */
    int (*last_ping)(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip);
    int (*set_last_ping)(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t);
    /* When (id, ip) last answered our ping (our endpoint proof of them). */
    int (*last_pong)(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip);
    int (*set_last_pong)(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t);
    int (*findfails)(void *ctx, uint32_t *fails, const uint8_t id[32], const p2p_ip_t *ip);
    int (*set_findfails)(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint32_t fails);
    /* Stores a node worth keeping as a seed (enr may be NULL/0). */
    int (*put_node)(void *ctx, const p2p_node_t *n, const uint8_t *enr, size_t enrlen);
    /* Up to n random nodes with a pong within max_age seconds of now. */
    int (*query_seeds)(void *ctx, p2p_node_t *out, size_t *nout, size_t n, uint64_t max_age,
                       uint64_t now);
} p2p_disc_db_t;

typedef struct p2p_disc_config {
    uint8_t pubkey[64];          /* our node key X||Y (the ID is its keccak) */
    p2p_endpoint_t endpoint;     /* sent as Ping.from */
    const p2p_enr_t *record;     /* our signed ENR (copied); NULL: seq 0, no ENRResponse */
    const p2p_node_t *bootnodes; /* copied, at most P2P_DISC_MAX_BOOTNODES */
    unsigned nbootnodes;
    const p2p_netlist_t *netrestrict; /* copied; NULL: no restriction */
    /* Our socket reaches IPv4 addresses only (an AF_INET socket): received
     * IPv6 nodes and record endpoints are dropped (node_unreachable,
     * enr_bad_endpoint), as are IPv6 bootnodes and node DB seeds
     * (node_unreachable); of a record naming both families the IPv4
     * address is taken (p2p_enr_to_node_for).  false: both families. */
    bool ipv4_only;
    /* Our socket reaches IPv6 addresses only (an AF_INET6 socket bound to
     * one IPv6 address, not ::): received IPv4 nodes and record endpoints
     * are dropped likewise, and of a record naming both the IPv6 address is
     * taken. */
    bool ipv6_only;
    /* Ping-back pool size; 0: P2P_DISC_PINGBACKS (a small pool for
     * simulations of many nodes and for fuzzing). */
    unsigned pingbacks;
    uint64_t seed; /* PRNG seed (revalidation picks, random targets) */
    p2p_disc_io_t io;
    p2p_disc_db_t db;
} p2p_disc_config_t;

typedef struct p2p_disc p2p_disc_t;

/* Creates a core (the only allocations).  Returns 0, P2P_EINVAL (no send
 * callback or DB op missing, too many bootnodes), P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_disc_new(p2p_disc_t **d, const p2p_disc_config_t *cfg);
void p2p_disc_free(p2p_disc_t *d);

/* Handles one decoded, signature-verified packet from UDP source src
 * (address and port).  Returns 0 if it was acted on, or the reason it was
 * dropped (also counted): P2P_EEXPIRED, P2P_EPROTO (from self, unsolicited,
 * too many neighbors, bad ENR), P2P_ERESTRICT (unbonded sender or outside
 * NetRestrict), P2P_EUNSUPPORTED (unknown type). */
int p2p_disc_handle(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                    p2p_disc_time_t now);

/* Runs timers due at now: request timeouts, bond settling, revalidation,
 * refresh, candidate lookups.  The first call starts the initial refresh. */
void p2p_disc_tick(p2p_disc_t *d, p2p_disc_time_t now);

/* The monotonic time at which p2p_disc_tick must run next (UINT64_MAX:
 * nothing scheduled).  Valid after any call into the core. */
uint64_t p2p_disc_deadline(const p2p_disc_t *d);

/* Starts a lookup for the 64-byte target key.  Out: *handle (never 0),
 * reported again in the P2P_DISC_EV_LOOKUP_DONE event.  Returns 0 or
 * P2P_ELIMIT (too many lookups running). */
P2P_MUST_CHECK int p2p_disc_lookup(p2p_disc_t *d, uint32_t *handle, const uint8_t target[64],
                                   p2p_disc_time_t now);

/* Candidate stream (see the top comment). */
void p2p_disc_want_candidates(p2p_disc_t *d, bool on);
unsigned p2p_disc_candidates_len(const p2p_disc_t *d);
/* Pops up to cap candidates, oldest first.  Returns the count. */
unsigned p2p_disc_candidates_pop(p2p_disc_t *d, p2p_node_t *out, unsigned cap);

/* Adds a node the caller knows (for example, a resolved static node) as
 * seen.  Returns the table outcome, or P2P_KAD_RESTRICTED (outside
 * NetRestrict: not added, counted node_restricted). */
p2p_kad_add_t p2p_disc_add_node(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now);

/* Replaces our record (after a re-sign with a higher seq): later pongs and
 * pings carry its seq, ENRResponses carry it.  Like set_endpoint, refused
 * (counted reentrant_calls) when called from inside io.event: queue the
 * change and apply it after the core call returns. */
void p2p_disc_set_record(p2p_disc_t *d, const p2p_enr_t *record);
/* Replaces the endpoint sent as Ping.from. */
void p2p_disc_set_endpoint(p2p_disc_t *d, const p2p_endpoint_t *ep);

/* Read access for the thread's metrics and for tests. */
const p2p_disc_counters_t *p2p_disc_counters(const p2p_disc_t *d);
/* Writes "name value\n" for every counter into out (NUL-terminated,
 * truncated to cap).  Returns the length it needed. */
size_t p2p_disc_counters_format(const p2p_disc_t *d, char *out, size_t cap);
const p2p_kad_table_t *p2p_disc_table(const p2p_disc_t *d);
/* Our node ID. */
const uint8_t *p2p_disc_self(const p2p_disc_t *d);
/* Requests outstanding (ping-backs and waiting ENR requests included),
 * ping-backs outstanding,
 * lookups running (tests, metrics). */
unsigned p2p_disc_pending(const p2p_disc_t *d);
unsigned p2p_disc_pingbacks(const p2p_disc_t *d);
unsigned p2p_disc_lookups_running(const p2p_disc_t *d);
/* True once the first refresh has finished (inbound nodes are added only
 * after that). */
bool p2p_disc_init_done(const p2p_disc_t *d);

#endif
