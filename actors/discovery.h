/*
 * actors/discovery.h: the discovery v4 service: the UDP reader and the
 * discovery table threads around the pure core (actors/disc_core.h).
 *
 * Threads (DESIGN.md):
 *   p2p-udp   the UDP socket's read side.  Sleeps in poll on the socket and
 *             its waiter (quit), then drains the socket with recvmmsg in
 *             batches of P2P_DISCOVERY_RX_BATCH.  Per datagram, cheap checks
 *             first (size 98..1280, known type, hash, not a replay of a
 *             request answered within 20 s, body, expiration), then the
 *             signature recovery, then drops packets carrying our own ID; what is left
 *             is pushed by value into the table thread's `packets` mailbox
 *             with try_push.  Every rejection bumps a named counter; a full
 *             mailbox is counted (rx_queue_full), never silent.
 *   p2p-disc  owns the core, the node database (actors/nodedb.h in the data
 *             directory, or actors/memdb.h without one), the timers
 *             (core/timer.h: the core's deadline, the hourly DB expiry) and
 *             the socket's write side (sendmmsg of the packets one wake-up
 *             produced).  Reads `packets` (from p2p-udp) and `requests`
 *             (from the API below), at most P2P_DISCOVERY_BATCH messages of
 *             each per wake-up; quits through the p2p_thread quit flag.
 *             Calls on_candidate for every node the core's candidate stream
 *             yields, and keeps our ENR: signed at start with the next
 *             sequence number from the DB, re-signed with a higher one when
 *             the endpoint other nodes report for us changes (predict_endpoint).
 *
 * API: start/stop and the getters of immutable facts may be called from any
 * thread (stop once, after every other call returned).  info, lookup,
 * want_candidates and add_node send a request to p2p-disc; info and lookup
 * wait for the answer until their deadline (absolute CLOCK_MONOTONIC ns, see
 * core/clock.h) and may be called from any thread but p2p-disc itself (so
 * not from on_candidate).
 */
#ifndef P2P_ACTORS_DISCOVERY_H
#define P2P_ACTORS_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/disc_core.h"
#include "actors/kad_table.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mailbox.h"
#include "core/netutil.h"
#include "wire/enr.h"
#include "wire/node.h"

enum p2p_discovery_limits {
    P2P_DISCOVERY_RX_BATCH = 32,      /* datagrams per recvmmsg */
    P2P_DISCOVERY_BATCH = 64,         /* messages per mailbox per wake-up (p2p-disc) */
    P2P_DISCOVERY_TX_BATCH = 32,      /* packets per sendmmsg */
    P2P_DISCOVERY_QUEUE = 1024,       /* default `packets` mailbox capacity */
    P2P_DISCOVERY_REQUESTS = 64,      /* `requests` mailbox capacity */
    P2P_DISCOVERY_READERS_MAX = 4,    /* UDP reader threads */
    P2P_DISCOVERY_VOTES = 10,         /* default endpoint statements before we adopt one */
    P2P_DISCOVERY_VOTERS = 32,        /* endpoint statements remembered */
    P2P_DISCOVERY_MEMDB_ITEMS = 8192, /* (id, ip) items without a datadir */
    P2P_DISCOVERY_MEMDB_NODES = 512,  /* node records without a datadir */
};

#define P2P_DISCOVERY_EXPIRE_NS (3600ull * 1000000000ull) /* node DB expiry period */
#define P2P_DISCOVERY_EXPIRE_KEYS 256 /* node DB keys per expiry step (one per wake-up) */
#define P2P_DISCOVERY_VOTE_WINDOW_NS (300ull * 1000000000ull)

/* Counters of the shell (reader and table threads).  X(name, description). */
#define P2P_DISCOVERY_COUNTERS(X)                                                                  \
    X(rx_datagrams, "datagrams received")                                                          \
    X(rx_bytes, "bytes received")                                                                  \
    X(rx_too_small, "datagrams under 98 bytes")                                                    \
    X(rx_too_big, "datagrams over 1280 bytes")                                                     \
    X(rx_unknown_type, "packets of an unknown type")                                               \
    X(rx_bad_hash, "packets whose hash does not match")                                            \
    X(rx_duplicate, "replays of a request answered within the last 20 s")                          \
    X(rx_seen_full, "answered requests a reader's replay cache had no room to learn")              \
    X(rx_bad_packet, "packets with a malformed body")                                              \
    X(rx_expired, "expired packets dropped before the signature recovery")                         \
    X(rx_bad_sig, "packets whose signature does not recover")                                      \
    X(rx_from_self, "packets signed with our own key")                                             \
    X(rx_bad_source, "datagrams from an unusable source address")                                  \
    X(rx_kernel_drops, "datagrams the kernel dropped before a reader read them (buffer full)")     \
    X(rx_queue_full, "verified packets dropped: packets mailbox full")                             \
    X(rx_verified, "packets verified and queued")                                                  \
    X(rx_errors, "recvmmsg failures")                                                              \
    X(tx_packets, "packets sent")                                                                  \
    X(tx_bytes, "bytes sent")                                                                      \
    X(tx_errors, "packets the socket refused")                                                     \
    X(tx_encode_errors, "packets that could not be encoded")                                       \
    X(endpoint_votes, "endpoint statements received from pongs")                                   \
    X(endpoint_changes, "times our record was re-signed for a new endpoint")                       \
    X(db_expire_runs, "node database expiry runs")                                                 \
    X(db_expired, "nodes deleted by expiry")                                                       \
    X(db_ips_expired, "stale addresses of live nodes whose items expired")                         \
    X(db_recoveries, "node database recoveries after a Berkeley DB panic")                         \
    X(db_wipes, "node database wipes (damaged files or another schema version)")                   \
    X(db_lsn_resets, "node database files whose log sequence numbers were reset (logs removed)")   \
    X(db_errors, "node database errors in the shell")                                              \
    X(candidates, "candidates delivered to on_candidate")

typedef struct p2p_discovery_counters {
#define P2P__DISCOVERY_CTR_FIELD(name, desc) uint64_t name;
    P2P_DISCOVERY_COUNTERS(P2P__DISCOVERY_CTR_FIELD)
#undef P2P__DISCOVERY_CTR_FIELD
} p2p_discovery_counters_t;

typedef struct p2p_discovery_config {
    uint8_t priv[32];   /* node key (required) */
    p2p_ip_t listen_ip; /* family 0: 0.0.0.0 */
    uint16_t listen_port;
    /* 0: ephemeral (see p2p_discovery_port) */
    uint16_t tcp_port; /* our RLPx port, for the ENR and Ping.from (0: none) */
    /* IP in our ENR and endpoint; family 0: listen_ip when it is specific,
     * else 127.0.0.1 (geth's LocalNode fallback). */
    p2p_ip_t announce_ip;
    /* Adopt the endpoint (IP, UDP port) that endpoint_votes distinct networks
     * (/24 for IPv4, /48 for IPv6) reported within 5 minutes in pongs to our
     * own pings of table and lookup nodes (not to ping-backs); 0 votes:
     * P2P_DISCOVERY_VOTES.  Every loopback node is on one network: 1 there.
     * An endpoint of a family the socket cannot reach is ignored; on a
     * dual-stack socket (listen_ip ::) the other family's endpoint is kept
     * beside ours, and the record names both (ip6/udp6/tcp6 next to
     * ip/udp/tcp). */
    bool predict_endpoint;
    /* announce_ip is fixed (a static external IP, devp2pd's --nat extip):
     * votes never move the endpoint of its family, but with
     * predict_endpoint still move the other family's on a dual-stack
     * socket, as the reference client's static IP fixes one family's
     * endpoint only.  Ignored when announce_ip has no family. */
    bool announce_static;
    unsigned endpoint_votes;
    const p2p_node_t *bootnodes; /* copied, at most P2P_DISC_MAX_BOOTNODES */
    size_t nbootnodes;
    const p2p_netlist_t *netrestrict; /* copied; NULL: no restriction */
    /* Node database directory (p2p_nodedb_open(datadir): it must exist; the
     * caller holds the datadir lock).  NULL: an in-memory database. */
    const char *datadir;
    const p2p_clock_t *clock; /* NULL: p2p_clock_real() */
    /* Dialer candidates, called on p2p-disc (must be quick; it may block
     * briefly, e.g. p2p_server_add_candidate with a short deadline).  When
     * set, the candidate stream is on from the start. */
    void (*on_candidate)(void *ctx, const p2p_node_t *n);
    void *candidate_ctx;
    uint32_t queue;   /* `packets` mailbox capacity; 0: P2P_DISCOVERY_QUEUE */
    unsigned readers; /* UDP reader threads, 1..P2P_DISCOVERY_READERS_MAX; 0: 1 */
    uint64_t seed;    /* PRNG seed; 0: random */
} p2p_discovery_config_t;

/* A snapshot taken on p2p-disc. */
typedef struct p2p_discovery_info {
    p2p_node_t self;    /* ID, key and current endpoint (seq = record seq) */
    p2p_enr_t record;   /* our current signed ENR */
    unsigned table_len; /* live entries */
    unsigned pending;   /* requests outstanding in the core */
    unsigned lookups;   /* lookups running */
    unsigned candidates_queued;
    bool init_done; /* the first refresh finished */
    p2p_discovery_counters_t shell;
    p2p_disc_counters_t core;
    p2p_mailbox_stats_t packets; /* the `packets` mailbox */
    p2p_kad_bucket_t buckets[P2P_KAD_NBUCKETS];
} p2p_discovery_info_t;

typedef struct p2p_discovery p2p_discovery_t;

/* Opens the node database, binds the UDP socket, signs our ENR and starts
 * p2p-disc and the reader(s).  Out: *d.  msg (may be NULL) receives a
 * one-line reason on failure.  Returns 0, P2P_EINVAL, P2P_ESYS (socket,
 * bind, threads: errno is the failed call's), P2P_EDB, P2P_ENOMEM,
 * P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_discovery_start(p2p_discovery_t **d, char *msg, size_t msglen,
                                       const p2p_discovery_config_t *cfg);

/* Stops the threads: pending info/lookup calls return P2P_ECLOSED, and so
 * do all later calls, at once; d stays valid (a thread still calling it is
 * safe) until p2p_discovery_stop.  A program whose other threads may call
 * d closes it, joins them, then stops it.  Idempotent; NULL is accepted. */
void p2p_discovery_close(p2p_discovery_t *d);

/* Closes d if not yet closed, then closes the socket and the database and
 * frees d: no thread may call d any more.  NULL is accepted. */
void p2p_discovery_stop(p2p_discovery_t *d);

/* The bound UDP port. */
uint16_t p2p_discovery_port(const p2p_discovery_t *d);
/* Our node as started (ID, key, endpoint; seq of the first record). */
const p2p_node_t *p2p_discovery_self(const p2p_discovery_t *d);

/* Fills *out on p2p-disc.  Returns 0, P2P_ETIMEDOUT, P2P_ECLOSED,
 * P2P_ENOMEM, P2P_ESYS. */
P2P_MUST_CHECK int p2p_discovery_info(p2p_discovery_t *d, p2p_discovery_info_t *out,
                                      uint64_t deadline_ns);

/* Runs a lookup for the 64-byte target key and waits for its result: up to
 * cap (<= P2P_DISC_RESULT) nodes, closest first, into out[0..*n).
 * Returns 0, P2P_ELIMIT (too many lookups running), P2P_ETIMEDOUT,
 * P2P_ECLOSED, P2P_ENOMEM, P2P_ESYS. */
P2P_MUST_CHECK int p2p_discovery_lookup(p2p_discovery_t *d, p2p_node_t *out, unsigned *n,
                                        unsigned cap, const uint8_t target[64],
                                        uint64_t deadline_ns);

/* Turns the candidate stream on or off (asynchronous).  Returns 0,
 * P2P_EFULL (requests mailbox full), P2P_ECLOSED. */
P2P_MUST_CHECK int p2p_discovery_want_candidates(p2p_discovery_t *d, bool on);

/* Adds a node known by other means as seen (asynchronous).  Returns 0,
 * P2P_EFULL, P2P_ECLOSED. */
P2P_MUST_CHECK int p2p_discovery_add_node(p2p_discovery_t *d, const p2p_node_t *n);

/* Writes "name value\n" for every shell and core counter of info into out
 * (NUL-terminated, truncated to cap).  Returns the length it needed. */
size_t p2p_discovery_counters_format(const p2p_discovery_info_t *info, char *out, size_t cap);

#endif
