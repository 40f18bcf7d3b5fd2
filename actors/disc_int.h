/*
 * actors/disc_int.h: internals shared by the discovery service's two files
 * (discovery.c: API and the table thread p2p-disc; disc_udp.c: the UDP
 * reader p2p-udp).  Not a public header.
 *
 * Who touches what:
 *   immutable after start: fd, family, port, priv, started, clock, the
 *                          mailboxes' pointers, nreaders;
 *   p2p-udp:               its p2p__disc_reader_t (its own replay cache),
 *                          pushes into `packets`, pops its `answered`;
 *   p2p-disc:              everything in the "table thread" block, `seen`
 *                          (its own replay cache), pushes into every
 *                          reader's `answered`;
 *   any thread:            ctr (relaxed atomics), pushes into `requests`.
 */
#ifndef P2P_ACTORS_DISC_INT_H
#define P2P_ACTORS_DISC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "actors/discovery.h"
#include "actors/memdb.h"
#include "actors/nodedb.h"
#include "core/thread.h"
#include "core/timer.h"

/* A verified packet, from p2p-udp to p2p-disc (by value). */
typedef struct p2p__disc_pkt_msg {
    p2p_endpoint_t src; /* UDP source address and port */
    p2p_discv4_packet_t pkt;
} p2p__disc_pkt_msg_t;

_Static_assert(sizeof(p2p__disc_pkt_msg_t) <= P2P_MAILBOX_MSG_MAX, "packet message too big");

/* Shell counters: relaxed atomics (each guards no other data). */
typedef struct p2p__disc_ctr {
#define P2P__DISC_ACTR_FIELD(name, desc) _Atomic uint64_t name;
    P2P_DISCOVERY_COUNTERS(P2P__DISC_ACTR_FIELD)
#undef P2P__DISC_ACTR_FIELD
} p2p__disc_ctr_t;

#define P2P__DISC_CTR_ADD(d, field, n)                                                             \
    atomic_fetch_add_explicit(&(d)->ctr.field, (n), memory_order_relaxed)
#define P2P__DISC_CTR(d, field) P2P__DISC_CTR_ADD(d, field, 1)

/* A replay cache: hashes of requests (ping, findnode, ENR request)
 * answered in the last 20 s, so an exact replay is dropped before its
 * signature recovery (rx_duplicate).  Only answered ones: a findnode
 * dropped for want of a bond may come again, byte for byte, once the bond
 * exists.  A request is the same bytes whenever its sender repeats it within
 * one second (a ping carries no nonce, the expiration has whole seconds and
 * the signature is deterministic), and clients do: a ping-back and a
 * revalidation ping, two lookups asking one node.  So a copy from the
 * address the request was answered at is answered again, up to
 * P2P__DISC_SEEN_ANSWERS answers in all; a copy from any other address, or
 * beyond that count, is a replay.  A fixed open-addressed table of P2P__DISC_SEEN_SLOTS entries (no
 * allocation, never grows): a hash probes P2P__DISC_SEEN_PROBE slots from
 * the one its first bytes name; an entry counts for
 * P2P__DISC_SEEN_WINDOW_NS after the answer (a packet's expiration is 20 s
 * after it was sent); an insert takes a free or aged slot of the window,
 * else overwrites the oldest.  Times are the clock interface's monotonic
 * ns.  Not shared: p2p-disc has one (d->seen) and each reader its own, which
 * p2p-disc feeds through the reader's `answered` mailbox. */
#define P2P__DISC_SEEN_SLOTS 4096u /* power of two */
#define P2P__DISC_SEEN_PROBE 8u
#define P2P__DISC_SEEN_WINDOW_NS ((uint64_t)P2P_DISCV4_EXPIRATION * 1000000000ull)
#define P2P__DISC_SEEN_ANSWERS 3 /* answers to one request's copies from its address */

typedef struct p2p__disc_seen {
    struct {
        uint8_t hash[16]; /* the packet hash's first 16 bytes */
        uint64_t ns;      /* first answered at; 0: free */
        p2p_ip_t ip;      /* the address it was answered at */
        uint16_t port;
        uint8_t answers; /* 1..P2P__DISC_SEEN_ANSWERS */
    } e[P2P__DISC_SEEN_SLOTS];
} p2p__disc_seen_t;

/* An answered request, from p2p-disc to each reader's `answered`. */
typedef struct p2p__disc_seen_msg {
    uint8_t hash[16];
    uint64_t ns;
    p2p_ip_t ip; /* its source address */
    uint16_t port;
} p2p__disc_seen_msg_t;

typedef struct p2p__disc_reader {
    struct p2p_discovery *d;
    p2p_thread_t thr;
    bool started;
    struct mmsghdr m[P2P_DISCOVERY_RX_BATCH];
    struct iovec iov[P2P_DISCOVERY_RX_BATCH];
    struct sockaddr_storage from[P2P_DISCOVERY_RX_BATCH];
    /* one byte more than the limit, so an oversized datagram shows */
    uint8_t buf[P2P_DISCOVERY_RX_BATCH][P2P_DISCV4_MAX_SIZE + 1];
    p2p__disc_pkt_msg_t out;
    /* requests p2p-disc answered (it pushes, quietly: the reader drains it
     * before each receive batch), into the reader's own replay cache */
    p2p_mailbox_t *answered;
    p2p__disc_seen_t seen;
} p2p__disc_reader_t;

typedef struct p2p__disc_call p2p__disc_call_t;

struct p2p_discovery {
    /* immutable after start */
    int fd;
    int family;  /* AF_INET or AF_INET6 */
    bool v6only; /* AF_INET6 bound to one IPv6 address (not ::): no IPv4 */
    uint16_t port;
    uint8_t priv[32];
    p2p_node_t started; /* our node as started (p2p_discovery_self) */
    const p2p_clock_t *clock;
    p2p_mailbox_t *packets, *requests;
    unsigned nreaders;
    p2p__disc_reader_t *readers[P2P_DISCOVERY_READERS_MAX];
    p2p__disc_seen_t seen; /* p2p-disc's replay cache */
    p2p_thread_t thr;
    bool thr_started;
    p2p__disc_ctr_t ctr;
    /* the socket's kernel drop count already added to ctr.rx_kernel_drops
     * (p2p__disc_sync_drops; relaxed: it orders nothing else) */
    _Atomic uint32_t kdrops_seen;

    /* table thread (p2p-disc) */
    p2p_disc_t *core;
    p2p_nodedb_t *ndb;
    p2p_memdb_t *mdb;
    p2p_timers_t timers;
    p2p_timer_id_t core_timer;
    uint64_t core_timer_ns;
    p2p_node_t self; /* our node now (endpoint and seq change) */
    p2p_enr_t record;
    p2p_endpoint_t ep;     /* our current endpoint (record content) */
    p2p_endpoint_t ep_alt; /* the other family's, learnt by votes on ::; family 0: none */
    bool predict;
    bool ep_static;      /* ep's family is fixed (announce_static): votes move ep_alt only */
    bool record_pending; /* record/ep changed inside an event: apply to the core */
    bool expiring;       /* a node DB expiry pass is running (xst) */
    p2p_nodedb_stats_t ndb_seen; /* node DB counters already added to ctr */
    p2p_nodedb_expire_state_t xst;
    unsigned votes_needed;
    struct {
        p2p_ip_t net; /* the voter's /24 (IPv4) or /48 (IPv6) */
        p2p_endpoint_t ep;
        uint64_t ns; /* 0: free */
    } votes[P2P_DISCOVERY_VOTERS];
    void (*on_candidate)(void *ctx, const p2p_node_t *n);
    void *candidate_ctx;
    struct {
        uint32_t handle; /* 0: free */
        p2p__disc_call_t *call;
    } lk[P2P_DISC_MAX_LOOKUPS];
    /* LOOKUP_DONE events seen inside p2p_disc_lookup, before its handle is
     * known (a lookup may end at once, e.g. on an empty table) */
    bool starting;
    unsigned nearly;
    struct {
        uint32_t handle;
        unsigned n;
        p2p_node_t nodes[P2P_DISC_RESULT];
    } early[P2P_DISC_MAX_LOOKUPS];
    unsigned ntx;
    struct mmsghdr txm[P2P_DISCOVERY_TX_BATCH];
    struct iovec txv[P2P_DISCOVERY_TX_BATCH];
    struct sockaddr_storage txaddr[P2P_DISCOVERY_TX_BATCH];
    uint8_t txbuf[P2P_DISCOVERY_TX_BATCH][P2P_DISCV4_MAX_SIZE];
    p2p__disc_pkt_msg_t rx[P2P_DISCOVERY_BATCH];
};

/* The reader thread's function (disc_udp.c). */
int p2p__disc_reader_run(p2p_thread_t *self, void *arg);

/* Any thread: adds the datagrams the kernel dropped on the socket since
 * the last call (receive buffer full; SO_MEMINFO) to rx_kernel_drops.
 * Called by each reader before it sleeps and after a full batch, and by
 * p2p-disc for an info snapshot. */
void p2p__disc_sync_drops(struct p2p_discovery *d);

/* Empties a replay cache. */
void p2p__disc_seen_init(p2p__disc_seen_t *seen);

/* On p2p-disc: hands a verified packet to the core unless it is a request
 * answered meanwhile (a replay queued before the first copy was handled:
 * P2P_EEXIST, rx_duplicate); a request the core answered (returned 0)
 * enters d->seen and is pushed to every reader's `answered` (a reader with
 * no room: rx_seen_full; a replay reaching it then costs a recovery, but
 * gets no answer).  Returns what p2p_disc_handle returned, or P2P_EEXIST. */
int p2p__disc_deliver(struct p2p_discovery *d, const p2p__disc_pkt_msg_t *m, p2p_disc_time_t now);
/* p2p-disc: hands the core a record re-signed inside one of its event
 * callbacks (which must not call back into it); called after every core
 * call that may emit events. */
void p2p__disc_apply_record(struct p2p_discovery *d);

/* Checks and verifies one datagram as the reader does, into *out (its src
 * must already be set), at d->clock's time, against the replay cache seen
 * (the calling reader's).  Returns 0 if out holds a verified packet to
 * queue, or the reason it was rejected (counted in d->ctr; a replay of a
 * request answered within the last 20 s: P2P_EEXIST).  Exposed for the
 * fuzz target. */
int p2p__disc_check(struct p2p_discovery *d, const p2p__disc_seen_t *seen, p2p__disc_pkt_msg_t *out,
                    const uint8_t *buf, size_t len);

#endif
