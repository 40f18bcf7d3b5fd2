/*
 * actors/server.h: the devp2p peer server (go-ethereum's p2p.Server) as
 * threads and mailboxes.  The public C API of the node's TCP side.
 *
 * Threads started by p2p_server_start (names as seen by gdb / top -H):
 *   p2p-run      run loop: peer map, trusted set, inbound count; the two
 *                checkpoints (posthandshake, addpeer), delpeer, peerop,
 *                trusted (set changes), quit; peer events to subscribers.
 *   p2p-listen   accept loop with MaxPendingPeers handshake slots, the 30 s
 *                per-IP inbound throttle and NetRestrict (absent if the
 *                listen port is negative).
 *   p2p-dial     dial scheduler (static nodes, discovery candidates, dial
 *                history, MaxPeers/DialRatio).
 *   peer-<id8>   one per connection (inbound or dialled), 128 KiB stack:
 *                RLPx handshake, checkpoints, Hello, then the base protocol
 *                and the subprotocol callbacks; the socket's only reader
 *                and writer.  Named peer-<8 hex of the remote ID> once the
 *                ID is known (conn-in / conn-out before that, for inbound).
 *
 * Threading contract of the API:
 * - p2p_server_start / p2p_server_stop: one controlling thread (not a
 *   server thread, not a callback).  Every other call on the server must
 *   have returned before p2p_server_stop is called, and none may be made
 *   from then on (srv is freed); peer handles stay usable (see below).
 * - Everything else may be called from any thread, including protocol
 *   callbacks on peer threads, while the server runs.  Functions that need
 *   the run loop's state (peers, peer count, remove peer, subscribe,
 *   peer lookup) post a `peerop` message and wait for its completion
 *   (geth's peerOp / peerOpDone), at most op_timeout_ms; from the event
 *   callback (which runs on the run loop itself) they return P2P_ESTATE,
 *   except p2p_server_remove_peer, which works there.
 * - Connection threads are woken with SIGURG (P2P_WAITER_SIGNAL,
 *   core/wait.h), whose handler the library installs: the application
 *   must not set SIGURG to SIG_IGN or SIG_DFL (wake-ups would be lost and
 *   sends wait for the peer's next ping).
 * - p2p_peer_send may be called from any thread holding a peer handle
 *   (a callback's argument, or a reference from p2p_peer_ref /
 *   p2p_server_peer_get).  It only pushes onto the peer's outbound mailbox.
 *
 * Limits (hard caps; nothing unbounded): a peer's outbound backlog holds at
 * most out_max_msgs messages rounded up to a power of two (the mailbox's
 * capacity: 100 holds 128) and out_max_bytes payload bytes (past either,
 * p2p_peer_send returns P2P_EFULL); max_msg_size (<= 16 MiB - 1) bounds a
 * sent message's rlp(code) + payload and a received payload (decoded), and
 * a received frame without snappy (with snappy a frame may reach the
 * worst-case compressed size of a max_msg_size payload, checked before it
 * is buffered); a peer's read buffer grows to one frame at most.
 */
#ifndef P2P_ACTORS_SERVER_H
#define P2P_ACTORS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/mailbox.h"
#include "core/netutil.h"
#include "wire/node.h"
#include "wire/p2p_msg.h"

typedef struct p2p_server p2p_server_t;
typedef struct p2p_conn p2p_peer_t; /* a peer handle (its connection) */

/* ---- subprotocols ---------------------------------------------------- */

/* A subprotocol the server runs on every peer whose Hello offers the same
 * (name, version).  Callbacks run on the peer's thread and must not block
 * for long (the peer's socket is not read meanwhile).  One peer's callbacks
 * run one at a time, on_start first and on_stop last; different peers'
 * callbacks run at the same time on their own threads (shared state in
 * ctx needs a lock).  They may call the rest of the API (see the threading
 * contract above).  Message codes in callbacks and p2p_peer_send are
 * relative to the protocol (0..length-1); the server adds the offset
 * negotiated by capability matching.
 * All callbacks may be NULL. */
typedef struct p2p_protocol {
    const char *name; /* e.g. "snap"; 1..32 bytes */
    uint32_t version;
    uint32_t length; /* number of message codes, >= 1 */
    void *ctx;       /* passed to every callback */
    /* The peer matched this protocol.  *state (initially NULL) is the
     * per-peer state handed to on_msg / on_stop.  Return 0, or a negative
     * code to disconnect the peer with "subprotocol error". */
    int (*on_start)(p2p_peer_t *peer, void *ctx, void **state);
    /* A message arrived.  data is valid only during the call.  Return 0;
     * P2P_EFULL to hold the message back (the socket is not read
     * meanwhile): it is delivered again after 1 ms, the interval doubling
     * up to 64 ms while refused, or at once after p2p_peer_resume; or
     * another negative code to disconnect with "subprotocol error". */
    int (*on_msg)(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                  size_t len);
    /* The peer is going away (reason: the Disconnect reason, sent or
     * received).  Called once for every on_start that returned 0. */
    void (*on_stop)(p2p_peer_t *peer, void *ctx, void *state, uint8_t reason);
} p2p_protocol_t;

/* ---- events ---------------------------------------------------------- */

typedef enum p2p_peer_event_type {
    P2P_PEER_EVENT_ADD = 1,  /* a peer was admitted (on p2p-run) */
    P2P_PEER_EVENT_DROP = 2, /* a peer went away; error holds the reason text */
    /* a subprotocol message was sent (EnableMsgEvents): framed for the
     * socket; one the connection ends before writing it is counted in
     * send_unsent, not in msgs_out (geth emits it once the socket took
     * the frame) */
    P2P_PEER_EVENT_MSGSEND = 3,
    P2P_PEER_EVENT_MSGRECV = 4, /* a subprotocol message was received (EnableMsgEvents) */
} p2p_peer_event_type_t;

/* a protocol name in full (1..P2P_CAP_NAME_MAX bytes) and its NUL */
#define P2P_PEER_EVENT_PROTO_MAX (P2P_CAP_NAME_MAX + 1)
#define P2P_PEER_EVENT_ERROR_MAX 48

/* One event, passed by value (geth's PeerEvent). */
typedef struct p2p_peer_event {
    p2p_peer_event_type_t type;
    uint8_t peer[32];                        /* node ID */
    char error[P2P_PEER_EVENT_ERROR_MAX];    /* DROP: reason text ("too many peers") */
    uint8_t reason;                          /* DROP: Disconnect reason code */
    bool remote_requested;                   /* DROP: the remote sent the Disconnect */
    char protocol[P2P_PEER_EVENT_PROTO_MAX]; /* MSG*: protocol name */
    uint32_t proto_version;                  /* MSG*: protocol version */
    uint64_t msg_code;                       /* MSG*: code relative to the protocol */
    uint32_t msg_size;                       /* MSG*: payload bytes */
    p2p_ip_t local_ip, remote_ip;
    uint16_t local_port, remote_port;
} p2p_peer_event_t;

/* Called on the run loop thread (p2p-run) for every event, in order.  It
 * must be quick; the peerop functions of this server return P2P_ESTATE
 * there (p2p_server_remove_peer works).  For one connection: ADD is
 * emitted (the callback has returned, subscribers' mailboxes have it)
 * before its on_start calls; its MSG* events come next; DROP comes after
 * its last on_stop returned and after its last MSG* event. */
typedef void (*p2p_peer_event_fn)(void *ctx, const p2p_peer_event_t *ev);

/* ---- configuration ----------------------------------------------------- */

/* The largest max_peers, max_pending and max_active_dials (a larger value
 * is P2P_EINVAL at start): the run loop's connection mailboxes hold
 * 2 x (peers + pending + dials) + 64 messages, which must fit
 * P2P_MAILBOX_CAP_MAX, and the peer maps are sized from max_peers. */
#define P2P_SERVER_LIMIT_MAX (1u << 20)

/* The static set (config and p2p_server_add_peer) and the trusted set
 * (config and p2p_server_add_trusted) hold at most this many nodes each. */
#define P2P_SERVER_MAX_STATIC 1024
#define P2P_SERVER_MAX_TRUSTED 1024

typedef struct p2p_server_config {
    uint8_t priv[32];     /* node key (required) */
    unsigned max_peers;   /* MaxPeers (0: no peers at all, as in geth); <= P2P_SERVER_LIMIT_MAX */
    unsigned max_pending; /* MaxPendingPeers; 0: 50; <= P2P_SERVER_LIMIT_MAX */
    unsigned dial_ratio;  /* DialRatio; 0: 3 */
    bool no_discovery;    /* NoDiscovery: no resolver, candidates ignored */
    bool no_dial;         /* NoDial: never dial (static nodes neither) */
    const char *name;     /* client name in the Hello (copied); NULL: "devp2p-c" */
    const p2p_node_t *bootnodes;
    size_t nbootnodes; /* copied, not used by the server (discovery takes its own) */
    const p2p_node_t *static_nodes;
    size_t nstatic; /* at most P2P_SERVER_MAX_STATIC */
    const p2p_node_t *trusted_nodes;
    size_t ntrusted;                  /* at most P2P_SERVER_MAX_TRUSTED */
    const p2p_netlist_t *netrestrict; /* NULL: no restriction (copied) */
    p2p_ip_t listen_ip;               /* family 0: 0.0.0.0 */
    int listen_port;                  /* 0: ephemeral (see p2p_server_port); < 0: no listener */
    p2p_ip_t external_ip;             /* family 0: unknown (127.0.0.1 in the local node) */
    const p2p_protocol_t *protocols;  /* copied (the ctx pointers are kept) */
    size_t nprotocols;                /* at most 16 */
    bool enable_msg_events;           /* EnableMsgEvents: MSGSEND / MSGRECV events */
    /* Discovery hook for static nodes without an address (or whose dial
     * failed): called on p2p-dial with the node to look up; it must not
     * block (start a lookup, answer later with p2p_server_resolved).  The
     * scheduler retries failed lookups with a backoff of 60 s doubling to
     * 1 h.  NULL (or no_discovery): static nodes need an address. */
    void (*resolve)(void *ctx, const p2p_node_t *node);
    void *resolve_ctx;
    /* Discovery hook for the candidate stream: called on p2p-dial with
     * on = whether the dialer has a free dial slot, at its first pass and
     * whenever that changes, so discovery runs its candidate lookups only
     * while the dialer would take a node (geth's dialer reads its node
     * iterator only then).  It must not block.  A non-zero return (the
     * discovery side not running yet, its inbox full) is retried at the
     * dialer's next pass (within 10 s).  NULL (or no_discovery, no_dial):
     * never called. */
    int (*want_candidates)(void *ctx, bool on);
    void *want_candidates_ctx;
    p2p_peer_event_fn event_cb;
    void *event_ctx;

    /* Limits (0: the default shown). */
    /* outbound backlog, messages: 256 (32 B of ring each); rounded up to a
     * power of two (100 holds 128); at most 2^24 (P2P_MAILBOX_CAP_MAX) */
    uint32_t out_max_msgs;
    uint64_t out_max_bytes;    /* outbound backlog, payload bytes: 16 MiB */
    uint32_t max_msg_size;     /* largest message (see Limits above): 16 MiB - 1 */
    unsigned max_active_dials; /* dials in flight: 50 (MaxPendingPeers if set); <= 2^20 */

    /* Timeouts in milliseconds (0: geth's value).  Tests shorten them. */
    uint32_t handshake_timeout_ms; /* 5000 (RLPx, then Hello) */
    uint32_t dial_timeout_ms;      /* 15000 (TCP connect) */
    uint32_t ping_interval_ms;     /* 15000 */
    uint32_t read_timeout_ms;      /* 30000 (frameReadTimeout) */
    uint32_t write_timeout_ms;     /* 20000 (frameWriteTimeout) */
    uint32_t disc_linger_ms;       /* 1000 (discWriteTimeout: Disconnect write + linger) */
    /* 5000: how long the peerop calls (p2p_server_peers, _peer_count(s),
     * _peer_get, _remove_peer, _subscribe, _unsubscribe) wait for the run
     * loop to take their request up before P2P_ETIMEDOUT */
    uint32_t op_timeout_ms;

    /* Test hook: apply the 30 s inbound throttle to LAN addresses too
     * (loopback is LAN, so loopback tests need it).  Never set in a node. */
    bool test_throttle_lan;
    uint64_t seed; /* map hashing / random order; 0: from the OS RNG */
} p2p_server_config_t;

/* ---- statistics ---------------------------------------------------------- */

/* Counters, each updated with relaxed atomics by the thread that sees the
 * event and read one by one (not a consistent snapshot). */
typedef struct p2p_server_stats {
    uint64_t disc_sent[256];          /* Disconnect messages we sent (written), by reason */
    uint64_t disc_recv[256];          /* Disconnect messages received, by reason */
    uint64_t rejected[256];           /* connections refused at a checkpoint, by reason */
    uint64_t accepted;                /* TCP connections accepted */
    uint64_t accept_errors;           /* failed accept() calls (temporary ones included) */
    uint64_t accept_temp_errors;      /* EMFILE/ENFILE/ENOBUFS/ENOMEM: slept 200 ms */
    uint64_t inbound_throttled;       /* same IP within 30 s */
    uint64_t inbound_restricted;      /* outside NetRestrict */
    uint64_t inbound_history_full;    /* history entry not allocated: refused */
    uint64_t inbound_history_evicted; /* history full: its oldest entry dropped early */
    uint64_t dials;                   /* outbound connections attempted */
    uint64_t dial_connect_failed;     /* TCP connect failed or timed out */
    uint64_t dial_socket_errors;      /* no socket for a dial (EMFILE, ENOBUFS, ...): in
                                       * dial_connect_failed too, not in dials */
    uint64_t handshake_timeouts;      /* RLPx or Hello exchange past its deadline */
    uint64_t handshake_failed;        /* RLPx handshake rejected (bad MAC, size, key, EOF) */
    uint64_t hello_failed;            /* bad Hello, identity, or closed during the exchange */
    uint64_t peers_added;
    uint64_t peers_removed;
    uint64_t read_timeouts;          /* no frame for read_timeout_ms */
    uint64_t write_timeouts;         /* a write not done within write_timeout_ms */
    uint64_t frame_errors;           /* bad MAC, oversize frame or snappy, decode errors */
    uint64_t net_errors;             /* socket errors and EOF on live peers */
    uint64_t proto_errors;           /* subprotocol callbacks failed / unknown codes */
    uint64_t msgs_in, msgs_out;      /* subprotocol messages (out: written whole) */
    uint64_t bytes_in, bytes_out;    /* wire bytes after the RLPx handshake (auth/ack excluded) */
    uint64_t pings_sent, pongs_sent; /* base-protocol pings and pongs written */
    uint64_t send_full;              /* p2p_peer_send refused with P2P_EFULL */
    uint64_t events_dropped;         /* events a full subscriber mailbox refused */
    uint64_t candidates_in;          /* discovery candidates offered */
    uint64_t candidates_refused;     /* offers nodesin did not take (timed out: full) */
    uint64_t internal_push_failures; /* internal mailbox pushes that failed (never expected) */
    uint64_t pending_full;           /* accepts that took the last free pending-handshake slot */
    uint64_t mem_trims;              /* allocator trims after a connection peak (run loop) */
    uint64_t conn_threads_spawned;   /* connection threads created */
    uint64_t conn_threads_reused;    /* connections run by a parked thread */
    uint64_t conn_threads_parked;    /* gauge: idle connection threads parked now (<= 16) */
    uint64_t conn_threads_expired;   /* parked threads that exited unused after 1 s */
    /* connections closed (inbound) or counted as failed dials because their
     * thread or state could not be created (a thread limit: ulimit -u, a
     * cgroup's pids.max, systemd's TasksMax; or memory) */
    uint64_t conn_threads_failed;
    /* messages refused with P2P_ETOOBIG by p2p_peer_send, or dropped by a
     * peer thread that could not frame them (the connection stays) */
    uint64_t send_toobig;
    /* messages p2p_peer_send accepted that the connection ended before
     * writing (the remote left, a network error, a write past its
     * deadline or linger, no memory to frame them), framed ones included:
     * counted, never dropped silently */
    uint64_t send_unsent;
    /* The dialer's scheduler (p2p-dial publishes them after each pass):
     * dials started for static nodes and for discovery candidates,
     * candidates not dialled (in total and per p2p_dial_skip_t reason, see
     * actors/dialsched.h: self, no-port, dialing, connected,
     * pending-inbound, netrestrict, history, no-ip, no-slot, ...), and
     * static-node resolutions through the resolve hook. */
    uint64_t dials_static;
    uint64_t dials_dyn;
    uint64_t candidates_skipped;
    uint64_t candidates_skipped_by[16]; /* indexed by p2p_dial_skip_t */
    uint64_t resolves;
    uint64_t resolves_failed;
    uint64_t resolves_timed_out; /* of resolves_failed: no answer within 60 s */
    /* The static and trusted sets: gauges of their size (published by
     * p2p-dial and p2p-run as they apply changes), and the additions
     * refused because a set held its limit (P2P_EFULL from the call, or
     * found full where the set is applied). */
    uint64_t static_nodes;
    uint64_t trusted_nodes;
    uint64_t static_full;
    uint64_t trusted_full;
    /* gauge: IPs in the listener's 30 s inbound history (published by
     * p2p-listen; entries leave it when their 30 s are up) */
    uint64_t inbound_history;
} p2p_server_stats_t;

/* ---- lifecycle ------------------------------------------------------------ */

/* Allocates and starts a server: opens the listener (if listen_port >= 0),
 * then starts p2p-run, p2p-dial and p2p-listen.  Static nodes are dialled
 * at once (unless no_dial).  Returns 0, P2P_EINVAL (bad config: limits
 * above, a count without its array, a protocol without name or length),
 * P2P_EBADKEY, P2P_ETOOBIG (our Hello, the name and the protocols, over
 * P2P_HELLO_MAX bytes), P2P_ENOMEM or P2P_ESYS (socket, bind, listen,
 * thread). */
P2P_MUST_CHECK int p2p_server_start(p2p_server_t **srv, const p2p_server_config_t *cfg);

/* Stops the server: closes the discovery hook, stops the listener and the
 * dialer, sends Disconnect(client quitting) to every peer, waits until
 * every connection ended (delpeer) and joins every thread, the idle
 * connection threads parked for reuse included.  Returns
 * within ~disc_linger_ms + a little.  Then frees everything (srv is invalid
 * afterwards).  Peer handles still referenced by the application stay
 * valid until their last p2p_peer_unref (sends fail with P2P_ECLOSED).
 * Called from one of the server's threads (a protocol or event callback),
 * where it would wait for itself forever, it logs CRIT and aborts. */
void p2p_server_stop(p2p_server_t *srv);

/* Our node: ID, public key, TCP port actually bound (0 if no listener),
 * and as its IP the external IP if one is configured, else the listening
 * address unless it is unspecified (0.0.0.0, ::), else 127.0.0.1. */
void p2p_server_self(const p2p_server_t *srv, p2p_node_t *self);
uint16_t p2p_server_port(const p2p_server_t *srv);

/* ---- peers (peerop on the run loop) ---------------------------------------- */

#define P2P_PEER_INFO_CAPS 16

typedef struct p2p_peer_info {
    uint8_t id[32];
    uint8_t pubkey[64];
    /* client name from the Hello as valid UTF-8 (p2p_utf8_clean: invalid and
     * control bytes as '?'), cut on a character boundary */
    char name[64];
    size_t ncaps;
    p2p_cap_t caps[P2P_PEER_INFO_CAPS]; /* the remote's capabilities (first 16), names cleaned */
    p2p_ip_t local_ip, remote_ip;
    uint16_t local_port, remote_port;
    bool inbound, trusted, static_dialed, dyn_dialed;
    uint64_t remote_version; /* Hello version */
} p2p_peer_info_t;

/* The peerop calls below (peers, peer_count(s), peer_get, remove_peer,
 * subscribe, unsubscribe) run on the run loop and wait for it at most
 * op_timeout_ms (5 s) to take the request up.  Besides the codes each
 * names, they return P2P_ETIMEDOUT (the loop did not take the request up
 * in time: it was not carried out, and the loop discards it unrun),
 * P2P_ENOMEM, or P2P_ESTATE when called on the run loop itself (from the
 * event callback), where the wait could never end; remove_peer is carried
 * out there directly instead. */

/* Fills out[0..cap) with the current peers; *n receives the number
 * written.  Returns 0 or P2P_ECLOSED. */
P2P_MUST_CHECK int p2p_server_peers(p2p_server_t *srv, p2p_peer_info_t *out, size_t cap, size_t *n);
/* Number of peers, or a negative code (P2P_ECLOSED). */
int p2p_server_peer_count(p2p_server_t *srv);
/* Number of peers (or a negative code, P2P_ECLOSED) and, in *inbound (may
 * be NULL; 0 on error), how many of them are inbound, both from the run
 * loop's counts at the same moment (not limited like a p2p_server_peers
 * listing): outbound = peers - inbound.  Any thread. */
int p2p_server_peer_counts(p2p_server_t *srv, unsigned *inbound);
/* A referenced handle to the peer with ID id (release with
 * p2p_peer_unref).  Returns 0, P2P_ENOTFOUND or P2P_ECLOSED. */
P2P_MUST_CHECK int p2p_server_peer_get(p2p_server_t *srv, p2p_peer_t **peer, const uint8_t id[32]);

/* AddPeer: adds node to the static set; the dialer keeps it connected.
 * As geth, a node is not dialled again within 35 s of its last dial (the
 * dial history): a static peer that left, or one removed and added again,
 * is redialled once that time has passed.  Waits up to 1 s while the
 * dialer's mailbox is full.  Returns 0, P2P_EFULL (the set holds
 * P2P_SERVER_MAX_STATIC nodes and no removal is queued: not added, even a
 * node already in it; remove one first), P2P_ETIMEDOUT (still full after
 * 1 s: not added) or P2P_ECLOSED.  Adds queued while the set fills up may
 * find it full where the dialer applies them (in call order with the
 * removals): dropped then, and counted in static_full like a refused
 * call. */
P2P_MUST_CHECK int p2p_server_add_peer(p2p_server_t *srv, const p2p_node_t *node);
/* RemovePeer: removes node from the static set and disconnects it
 * (Disconnect "requested") if connected, and, as geth's RemovePeer, returns
 * once that connection has left the peer set (its Disconnect written,
 * then its linger: at most disc_linger_ms plus op_timeout_ms).  Called from
 * the event callback or a protocol callback it returns once the request is
 * made, without that wait: a connection cannot end while its own callback
 * (or one waiting for it) is running.  Returns 0 or P2P_ECLOSED
 * (P2P_ETIMEDOUT: the static set may have changed, the peer was not
 * disconnected). */
P2P_MUST_CHECK int p2p_server_remove_peer(p2p_server_t *srv, const uint8_t id[32]);
/* AddTrustedPeer / RemoveTrustedPeer: trusted peers are admitted above
 * MaxPeers.  Each waits up to 1 s while the run loop's mailbox is full.
 * Returns 0, P2P_ETIMEDOUT (still full after 1 s: nothing changed) or
 * P2P_ECLOSED; add also P2P_EFULL (the set holds P2P_SERVER_MAX_TRUSTED
 * IDs, as p2p_server_add_peer: counted in trusted_full). */
P2P_MUST_CHECK int p2p_server_add_trusted(p2p_server_t *srv, const uint8_t id[32]);
P2P_MUST_CHECK int p2p_server_remove_trusted(p2p_server_t *srv, const uint8_t id[32]);

/* Subscribes mb (message size sizeof(p2p_peer_event_t), consumed by the
 * caller's thread) to peer events; at most P2P_SERVER_MAX_SUBS at once.
 * Events are pushed with try_push from p2p-run; a full mailbox loses the
 * event and bumps stats.events_dropped.  Returns 0, P2P_EINVAL,
 * P2P_EEXIST (mb is subscribed already), P2P_EFULL (too many subscribers)
 * or P2P_ECLOSED. */
#define P2P_SERVER_MAX_SUBS 8
P2P_MUST_CHECK int p2p_server_subscribe(p2p_server_t *srv, p2p_mailbox_t *mb);
/* Removes a subscription; after it returns no further event is pushed.
 * Returns 0, P2P_ENOTFOUND or P2P_ECLOSED. */
P2P_MUST_CHECK int p2p_server_unsubscribe(p2p_server_t *srv, p2p_mailbox_t *mb);

/* Copies the counters.  Any thread. */
void p2p_server_get_stats(const p2p_server_t *srv, p2p_server_stats_t *st);

/* ---- discovery hook ------------------------------------------------------------ */

/* Offers a dial candidate (from discovery) to the dialer's `nodesin`
 * mailbox, waiting until deadline_ns (absolute monotonic, see
 * core/clock.h) if it is full.  Candidates offered while no dial slot is
 * free are skipped (and counted by the scheduler); offers the full
 * mailbox did not take by the deadline are counted in candidates_refused.
 * Returns 0, P2P_ETIMEDOUT, P2P_ECLOSED (stopping, or no_discovery). */
P2P_MUST_CHECK int p2p_server_add_candidate(p2p_server_t *srv, const p2p_node_t *node,
                                            uint64_t deadline_ns);
/* Answers a resolve call: found is the node's current record (with an
 * address), NULL if discovery did not find it.  Any thread, including the
 * resolve callback itself.  Returns 0, P2P_EFULL or P2P_ECLOSED. */
P2P_MUST_CHECK int p2p_server_resolved(p2p_server_t *srv, const uint8_t id[32],
                                       const p2p_node_t *found);
/* Free dial slots as last published by the dialer (a hint for discovery:
 * offer candidates while it is > 0). */
unsigned p2p_server_dial_slots(const p2p_server_t *srv);

/* ---- peers: handles and sending ----------------------------------------------- */

/* Takes / drops a reference to a peer handle.  A handle stays valid (its
 * info readable, sends failing with P2P_ECLOSED after the peer is gone)
 * until the last reference is dropped. */
void p2p_peer_ref(p2p_peer_t *peer);
void p2p_peer_unref(p2p_peer_t *peer);

/* Immutable facts about a peer handle (valid once the protocol callbacks
 * are called for it). */
const uint8_t *p2p_peer_id(const p2p_peer_t *peer);     /* 32 bytes */
const uint8_t *p2p_peer_pubkey(const p2p_peer_t *peer); /* 64 bytes */
const char *p2p_peer_name(const p2p_peer_t *peer);      /* Hello client name */
bool p2p_peer_inbound(const p2p_peer_t *peer);

/* Queues a message for protocol proto (its name, e.g. "snap"), code
 * relative to the protocol, on the peer's outbound mailbox.  Any thread.
 * The data is copied (the caller keeps its buffer).  0 means queued, not
 * delivered: the peer's thread writes queued messages in order; when the
 * connection ends, what is still queued is written before our Disconnect,
 * within its linger, if this side ended it (p2p_peer_disconnect,
 * remove_peer, stop, a callback's error); what is not written is dropped
 * and counted in send_unsent.  A connection that is ending still takes
 * sends (from on_stop too) until its thread is done with it.  Returns 0,
 * P2P_EFULL (backlog cap reached: nothing queued), P2P_ECLOSED (the
 * connection has ended: after its on_stop calls, Disconnect and linger),
 * P2P_ENOTFOUND (the protocol is not running on this peer), P2P_ERANGE
 * (code >= length), P2P_ETOOBIG (the message would not fit a frame the
 * remote accepts: rlp(code) + len > max_msg_size, the remote assumed to
 * use the same limit; or, with snappy on, rlp(code) + the worst-case
 * compressed length of len bytes > 16 MiB - 1, i.e. len above about
 * 13.7 MiB) or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_peer_send(p2p_peer_t *peer, const char *proto, uint64_t code,
                                 const uint8_t *data, size_t len);

/* Asks the peer's thread to deliver again, at once, a message one of its
 * on_msg callbacks held back with P2P_EFULL (any thread; for a protocol
 * whose queue has room again).  Without it the thread retries after 1 ms,
 * the interval doubling up to 64 ms while the callback keeps refusing.
 * Returns 0 (also when nothing is held) or P2P_ECLOSED. */
int p2p_peer_resume(p2p_peer_t *peer);

/* Asks the peer's thread to disconnect with reason (any thread).  The
 * messages p2p_peer_send queued before are written first, then the
 * Disconnect (as geth, whose Send returns once written, delivers a message
 * sent before Disconnect): all within the disconnect's write deadline
 * (linger_ms); what the connection cannot write is counted in
 * send_unsent.  Returns 0 or P2P_ECLOSED. */
int p2p_peer_disconnect(p2p_peer_t *peer, uint8_t reason);

#endif
