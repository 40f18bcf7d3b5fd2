/*
 * actors/server_int.h: what the server's threads share (internal to
 * actors/server*.c and actors/srv_*.c): the server object, the connection
 * object, the message types of every mailbox, and the counters.
 *
 * Ownership (who writes what):
 * - p2p_server_t: written by p2p_server_start before any thread starts and
 *   read-only afterwards, except the atomics (stats, live_conns,
 *   dial_free_slots, serial) and the per-thread sections marked with the
 *   owning thread (run loop: rl_*, dialer: dl_*, listener: ls_*).
 * - p2p_conn_t: the creator (listener or dialer) fills the identity and
 *   socket fields before it spawns a thread for it or hands it to a parked
 *   one (p2p__conn_spawn); the connection thread then
 *   owns everything except rl_* (run loop only), refs / send gate (atomics)
 *   and the fields published before a checkpoint push (node, hello, match,
 *   addresses), which are read-only after the `addpeer` checkpoint.
 *
 * Mailboxes and their messages:
 *   p2p-run:    conns (born), posthandshake, addpeer, delpeer (last message
 *               of every connection thread), peerop, trusted (additions
 *               and removals), events (msg events from peer threads); quit is
 *               the thread's quit flag (p2p_thread_request_quit).
 *   p2p-dial:   nodesin, static (additions and removals), peerstate (peer added,
 *               peer removed, inbound pending, inbound done: one mailbox
 *               whose only producer is p2p-run, applied in order), taskdone,
 *               resolved; quit flag.
 *   p2p-listen: slots; quit flag.
 *   peer-<id8>: cont (one-slot checkpoint reply), disconnect, out (not
 *               attached to the waiter: senders wake it explicitly, so a
 *               peer whose write buffer is full can leave it queued without
 *               spinning).
 */
#ifndef P2P_ACTORS_SERVER_INT_H
#define P2P_ACTORS_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "actors/checks.h"
#include "actors/dialsched.h"
#include "actors/inbound.h"
#include "actors/server.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"
#include "wire/p2p_msg.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

#define P2P__MAX_PROTOS 16
#define P2P__HELLO_BUF 2048

/* Counter update: relaxed, the counters guard no other data. */
#define P2P__STAT_ADD(srv, field, n) __atomic_fetch_add(&(srv)->stats.field, (n), __ATOMIC_RELAXED)
#define P2P__STAT(srv, field) P2P__STAT_ADD(srv, field, 1)

typedef struct p2p_conn p2p_conn_t;
typedef struct p2p__worker p2p__worker_t;

/* Discards a P2P_MUST_CHECK result the caller has nothing to do about. */
#define P2P__IGNORE(expr)                                                                          \
    do {                                                                                           \
        if (expr) {                                                                                \
        }                                                                                          \
    } while (0)

/* ---- messages ---- */

/* peer: the first 8 bytes of the remote node id (big-endian), copied into
 * the message for traces (0 while an inbound connection's id is unknown). */
typedef struct p2p__msg_conn {
    p2p_conn_t *c;
    uint64_t peer;
} p2p__msg_conn_t;

typedef struct p2p__msg_addpeer {
    p2p_conn_t *c;
    uint64_t peer;
    unsigned matched;
} p2p__msg_addpeer_t;

typedef struct p2p__msg_delpeer {
    p2p_conn_t *c;
    p2p__worker_t *worker; /* the thread to join (it exits), or NULL (it parked) */
    uint64_t peer;
    bool was_peer;
    bool remote_requested;
    uint8_t reason;
} p2p__msg_delpeer_t;

/* Reply on cont: ok, else reason; flags with P2P_CONN_TRUSTED set by the
 * post-handshake checkpoint. */
typedef struct p2p__msg_cont {
    bool ok;
    uint8_t reason;
    unsigned flags;
} p2p__msg_cont_t;

#define P2P__TRUSTED_REMOVE 1u /* p2p__msg_id_t.flags on the trusted mailbox */

typedef struct p2p__msg_id {
    uint8_t id[32];
    unsigned flags; /* trusted: P2P__TRUSTED_REMOVE for a removal, 0 for an addition */
    int result;     /* taskdone: p2p_dial_result_t */
} p2p__msg_id_t;

/* peerstate (p2p-run -> p2p-dial): the run loop's decisions about a node,
 * in the order it made them.  geth's dialScheduler gets peerAdded /
 * peerRemoved over unbuffered channels from its run loop, so in order; one
 * mailbox with one producer keeps that order here (separate mailboxes
 * would let a newer "added" be applied before an older "removed"). */
enum p2p__peerstate_kind {
    P2P__PS_ADDED = 1,       /* admitted at addpeer (flags: P2P_CONN_*) */
    P2P__PS_REMOVED = 2,     /* an admitted peer left (delpeer) */
    P2P__PS_INB_PENDING = 3, /* an inbound connection passed posthandshake */
    P2P__PS_INB_DONE = 4,    /* that connection ended without being admitted */
};

typedef struct p2p__msg_peerstate {
    uint8_t id[32];
    unsigned flags; /* P2P__PS_ADDED: P2P_CONN_* */
    uint8_t kind;   /* enum p2p__peerstate_kind */
} p2p__msg_peerstate_t;

typedef struct p2p__msg_node {
    p2p_node_t node;
    bool found;  /* resolved: node is valid */
    bool remove; /* static: a removal (node.id only), else an addition */
} p2p__msg_node_t;

/* The API's changes of a set (trusted: p2p_server_add_trusted /
 * p2p_server_remove_trusted; static: p2p_server_add_peer /
 * p2p_server_remove_peer) come in on one mailbox per set, additions and
 * removals alike (geth has a pair of unbuffered channels per set), and are
 * applied in the order they were queued: a call that returned before
 * another began queued its message first, so remove(X) then add(X) leaves
 * X in the set and add(X) then remove(X) does not, however many are
 * queued.  (Two mailboxes merged by a call stamp could not promise that:
 * a drain that takes at most a batch from one, or finds it empty an
 * instant before a message lands, may apply a later message of the other
 * before an earlier one left behind.)  Up to P2P__API_DRAIN per drain. */
#define P2P__API_DRAIN 256
/* Retry interval of the static- and trusted-node additions the dialer and
 * the run loop could not allocate room for (dl_retry, rl_trusted_retry). */
#define P2P__RETRY_NS (100 * P2P_NS_PER_MS)

typedef struct p2p__msg_out {
    uint8_t *data; /* malloc'd copy, freed by the peer thread */
    uint64_t code; /* absolute (offset applied) */
    uint32_t len;
    uint16_t proto; /* index into the server's protocols */
} p2p__msg_out_t;

typedef struct p2p__msg_disc {
    uint8_t reason;
} p2p__msg_disc_t;

/* peerop: an operation run on the loop; the caller waits for it with a
 * deadline (op_timeout).  The op is on the heap and its state word decides
 * who frees it:
 *   QUEUED -> RUNNING  the loop claims it (CAS) and runs it while the caller
 *                      waits (a run is short: the loop never blocks);
 *   RUNNING -> DONE    the loop publishes the results (release store +
 *                      futex wake); the caller reads them.  Both then drop
 *                      one of the op's two references and the second frees
 *                      it, so the loop's wake never names freed memory;
 *   QUEUED -> ABANDONED the caller's deadline passed first (CAS); it
 *                      returns P2P_ETIMEDOUT without touching the op again
 *                      and the loop, whose claim then fails, frees it
 *                      unrun (so a timed-out op has no effect).
 * Exactly one CAS out of QUEUED succeeds, so the op is freed once. */
enum p2p__peerop_state {
    P2P__OP_QUEUED = 0,
    P2P__OP_RUNNING,
    P2P__OP_DONE,
    P2P__OP_ABANDONED,
};

enum p2p__peerop_kind {
    P2P__OP_PEERS = 1,
    P2P__OP_COUNT,
    P2P__OP_REMOVE,
    P2P__OP_GET,
    P2P__OP_SUB,
    P2P__OP_UNSUB,
};

typedef struct p2p__peerop {
    enum p2p__peerop_kind kind;
    uint8_t id[32];
    p2p_peer_info_t *infos;
    size_t cap, n;
    size_t inbound; /* P2P__OP_COUNT: peers with P2P_CONN_INBOUND */
    p2p_mailbox_t *mb;
    p2p_conn_t *peer;
    int rc;
    /* enum p2p__peerop_state; the caller's futex word.  acq_rel CAS out of
     * QUEUED (either side), release store of DONE / acquire load by the
     * caller (see above) */
    _Atomic uint32_t state;
    /* 2 while queued; after DONE the loop and the caller each drop one
     * (acq_rel) and whoever drops the last frees the op */
    _Atomic uint32_t refs;
} p2p__peerop_t;

/* Drops one of a finished op's two references (the loop's in op_done, the
 * caller's in peerop_run); the last frees it.  acq_rel: the other side's
 * use of the op happens before the free. */
static inline void p2p__peerop_put(p2p__peerop_t *op)
{
    if (atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) == 1) free(op);
}

typedef struct p2p__msg_peerop {
    p2p__peerop_t *op;
    enum p2p__peerop_kind kind; /* op->kind, for traces (the op may be gone) */
} p2p__msg_peerop_t;

/* Message kinds in trace records (core/trace.h: one process-wide
 * namespace; the server's start at 64), named by p2p_server_start so
 * `devp2p trace --kind` can select them: peerop's operation, peerstate's
 * change, the events' type. */
enum p2p__trace_kind {
    P2P__TK_PEEROP = 64,    /* + enum p2p__peerop_kind (1..6) */
    P2P__TK_PEERSTATE = 72, /* + peerstate kind (1..4) */
    P2P__TK_EVENT = 80,     /* + p2p_peer_event_type_t (1..4) */
};

/* ---- connection ---- */

/* The remote Hello as kept for the connection's life (peer info, names):
 * one allocation sized to what it holds (ncaps entries, then the name). */
typedef struct p2p__peer_hello {
    uint64_t version;
    size_t name_len;
    char *name; /* NUL-terminated; points into this allocation */
    size_t ncaps;
    p2p_cap_t caps[];
} p2p__peer_hello_t;

/* A connection thread.  Spawned for a connection, it parks when that
 * connection ends (at most P2P__POOL_MAX parked per server) and a creator
 * hands it the next one instead of spawning a thread: no clone, stack
 * mapping or thread exit per connection.  A worker that does not park
 * exits and is joined by the run loop (delpeer).  A parked worker that no
 * connection took within P2P__POOL_IDLE_MS leaves the parked list for the
 * retired list and exits; the run loop joins it (p2p__pool_reap), or
 * p2p_server_stop does once the run loop is gone.  p2p_server_stop joins
 * the parked ones.  So after a burst the thread count and the stacks
 * (unmapped at join) return to the idle node's within about a second,
 * while back-to-back connections still find a parked thread. */
/* 16: enough for the handshakes a loaded node runs at once (with 4, a
 * load of 8 concurrent handshakes still spawned and joined a thread for
 * one connection in five); each parked thread costs its trimmed stack
 * and exits after P2P__POOL_IDLE_MS. */
#define P2P__POOL_MAX 16
/* How long a parked connection thread waits for its next connection before
 * it exits (ms): long compared with the gap between connections under
 * load (microseconds to milliseconds), short compared with the settle time
 * an operator or a memory check allows after the load. */
#define P2P__POOL_IDLE_MS 1000
/* How long a parked connection thread stays as its last connection left it
 * (thread name, handshake stack pages resident) before it renames itself
 * conn-idle and gives those pages back (ms).  Under load the next
 * connection comes sooner, so neither the rename nor the madvise (a TLB
 * shootdown on a multi-threaded process) nor the page faults that refill
 * the stack are paid per connection; an idle thread still holds no
 * handshake frames after this. */
#define P2P__POOL_SETTLE_MS 50
struct p2p__worker {
    p2p_thread_t th;
    /* The next connection: stored (release) by the creator that took the
     * worker off the parked list, then the worker is woken; taken
     * (acquire) by the worker. */
    _Atomic(p2p_conn_t *) next;
    p2p__worker_t *park_next; /* parked or retired list link (under pool_lock) */
    bool parked;              /* on the parked list (under pool_lock) */
};

struct p2p_conn {
    p2p_thread_t *th; /* the connection's thread (a worker's, set by the creator) */
    p2p_server_t *srv;
    uint64_t serial;
    _Atomic uint32_t refs; /* acq_rel RMW; the last unref frees */

    /* Creator fields (read-only once the thread runs). */
    int fd;
    unsigned flags;  /* P2P_CONN_*; TRUSTED added after posthandshake */
    bool dialed;     /* outbound */
    p2p_node_t node; /* dial target; for inbound filled after RLPx */
    p2p_ip_t local_ip, remote_ip;
    uint16_t local_port, remote_port;

    /* Mailboxes (created by the creator, attached by the thread). */
    p2p_mailbox_t *cont, *out, *disc;

    /* Send gate (p2p_peer_send from any thread vs the thread's exit):
     * senders increment inflight then check closed; the thread sets closed
     * then waits for inflight to reach 0.  Both seq_cst (Dekker pair). */
    _Atomic uint32_t inflight;
    _Atomic int closed;
    _Atomic uint64_t out_bytes; /* queued payload bytes (relaxed RMW, a cap) */

    /* Published before the addpeer checkpoint; read-only afterwards. */
    p2p__peer_hello_t *hello;
    size_t nmatch;
    p2p_proto_match_t match[P2P__MAX_PROTOS];

    /* Run loop only. */
    p2p_conn_t *rl_prev, *rl_next;
    bool rl_registered;
    bool rl_peer;
    bool rl_inb_pending; /* P2P__PS_INB_PENDING told, neither ADDED nor DONE yet */
    bool rl_quit_sent;

    /* Message events: ev_pushed, those this connection's thread pushed on
     * mb_events (its thread only; the run loop reads it after popping its
     * delpeer); rl_ev_emitted, those of them the run loop emitted (run loop
     * only).  Last, so the fields above keep their cache lines. */
    uint64_t ev_pushed;
    uint64_t rl_ev_emitted;
};

/* ---- server ---- */

struct p2p_server {
    p2p_server_config_t cfg; /* pointers below replace the caller's */
    char name[P2P_HELLO_NAME_MAX + 1];
    p2p_protocol_t protos[P2P__MAX_PROTOS]; /* sorted by (name, version) */
    p2p_proto_t wprotos[P2P__MAX_PROTOS];   /* same order, for p2p_caps_match */
    char proto_names[P2P__MAX_PROTOS][P2P_CAP_NAME_MAX + 1];
    size_t nprotos;
    p2p_node_t *bootnodes, *statics;
    size_t nboot, nstatic;
    uint8_t (*trusted)[32];
    size_t ntrusted;
    bool has_netrestrict;
    p2p_netlist_t netrestrict;

    uint8_t priv[32], pub[64], id[32];
    uint8_t hello[P2P__HELLO_BUF]; /* our Hello payload */
    size_t hello_len;

    int listen_fd;
    uint16_t port;
    /* The listening socket's address when bound to a specific one: every
     * inbound connection's local address (no getsockname per connection);
     * family 0 for a wildcard bind. */
    p2p_ip_t listen_local;

    /* Timeouts (ns) and limits, resolved from cfg. */
    uint64_t hs_timeout, dial_timeout, ping_interval, read_timeout, write_timeout, linger;
    uint64_t op_timeout;
    uint32_t out_max_msgs;
    uint64_t out_max_bytes;
    uint32_t max_msg;
    unsigned max_dialed, max_inbound, max_active_dials, max_pending;
    uint32_t conn_mb_cap; /* capacity of the run loop's connection mailboxes */
    uint64_t seed;

    p2p_thread_t run, dial, listen;
    bool run_started, dial_started, listen_started;

    /* Parked connection threads (creators take, workers park). */
    pthread_mutex_t pool_lock;
    p2p__worker_t *pool_parked; /* under pool_lock */
    unsigned pool_nparked;      /* under pool_lock */
    bool pool_closed;           /* under pool_lock: set by p2p_server_stop */
    /* Workers that exited idle, to join (under pool_lock); their count is
     * also kept atomically so the run loop checks it without the lock
     * (release increment under the lock, acquire load). */
    p2p__worker_t *pool_retired;
    _Atomic unsigned pool_nretired;
    bool pool_no_reaper; /* under pool_lock: the run loop ended (no wake) */

    /* p2p-run */
    p2p_mailbox_t *mb_conns, *mb_posthandshake, *mb_addpeer, *mb_delpeer, *mb_peerop, *mb_trusted,
        *mb_events;
    /* p2p-dial */
    p2p_mailbox_t *mb_nodesin, *mb_static, *mb_peerstate, *mb_taskdone, *mb_resolved;
    /* p2p-listen */
    p2p_mailbox_t *mb_slots;

    _Atomic uint64_t serial; /* relaxed counter: connection serials */
    /* removals from the static / trusted set called and not yet applied:
     * incremented by the API before it queues one, decremented (release)
     * by p2p-dial / p2p-run once applied and the set's size is published
     * in stats, so an add that reads 0 (acquire) also reads that size */
    _Atomic uint32_t static_removals, trusted_removals;
    _Atomic uint32_t live_conns; /* connection threads spawned and not yet joined (seq_cst) */
    _Atomic unsigned dial_free;  /* relaxed hint: dialer's free slots */
    _Atomic int stopping;        /* seq_cst: p2p_server_stop began */
    /* seq_cst: the listener sleeps without a free handshake slot, so a
     * returned slot must wake it (else slots are returned quietly) */
    _Atomic int ls_starved;
    /* relaxed hint: the dialer has no static node and no dial in flight, so
     * peer-state updates need not wake it (it drains them before acting) */
    _Atomic int dl_idle;
    _Atomic int creators_stopped; /* seq_cst: listener/dialer stopped creating */

    /* Each thread's state below is allocated by p2p_server_start (the
     * p2p__*_setup functions), before the thread exists, so that an
     * allocation failure fails the start, and freed by free_server after
     * every thread was joined.  In between only its thread touches it. */

    /* Run loop state (p2p-run only). */
    p2p_checks_t rl_checks;
    p2p_idmap_t rl_peers; /* id -> p2p_conn_t * of admitted peers */
    p2p_conn_t *rl_head;  /* registered connections */
    size_t rl_nconns;
    p2p_mailbox_t *rl_subs[P2P_SERVER_MAX_SUBS];
    p2p__msg_id_t rl_trusted[P2P__API_DRAIN]; /* drain_trusted's scratch */
    /* additions to the trusted set that found no memory, as dl_retry for
     * the static set (see below) */
    p2p__msg_id_t rl_trusted_retry[P2P__API_DRAIN];
    size_t rl_nretry;

    /* Dialer state (p2p-dial only). */
    p2p_dialsched_t dl_sched;
    p2p__msg_node_t dl_batch[P2P__API_DRAIN]; /* drain_static's scratch */
    /* additions the scheduler had no memory for, in call order: applied
     * again with the next batch (every P2P__RETRY_NS meanwhile), so an
     * accepted p2p_server_add_peer is not lost; a later removal of the
     * node cancels its entry.  At most one batch. */
    p2p__msg_node_t dl_retry[P2P__API_DRAIN];
    size_t dl_nretry;

    /* Listener state (p2p-listen only). */
    p2p_inbound_t ls_in;

    p2p_server_stats_t stats; /* __atomic relaxed updates (P2P__STAT) */
};

/* Thread state set up by p2p_server_start before the threads are spawned
 * (0 or P2P_ENOMEM; on failure free_server releases what was made) and
 * freed by free_server after they were joined. */
P2P_MUST_CHECK int p2p__run_setup(p2p_server_t *srv);
P2P_MUST_CHECK int p2p__dial_setup(p2p_server_t *srv);
P2P_MUST_CHECK int p2p__listen_setup(p2p_server_t *srv);

/* Thread bodies. */
int p2p__run_main(p2p_thread_t *self, void *arg);
int p2p__dial_main(p2p_thread_t *self, void *arg);
int p2p__listen_main(p2p_thread_t *self, void *arg);
int p2p__conn_main(p2p_thread_t *self, void *arg);
/* True when the calling thread is one of srv's connection threads (a
 * protocol callback runs there): an API call made there must not wait for
 * a connection to end, since this thread's own connection, or one whose
 * callback waits for this one, cannot end while it waits. */
bool p2p__on_conn_thread(const p2p_server_t *srv);

/* Creates a connection object with its mailboxes (refs = 1, owned by the
 * run loop's registry once the thread is born) and runs it on a parked
 * connection thread, or spawns one.
 * fd is the socket (inbound: accepted; outbound: -1, the thread connects).
 * On failure closes fd and returns the error. */
P2P_MUST_CHECK int p2p__conn_spawn(p2p_server_t *srv, int fd, bool dialed, unsigned flags,
                                   const p2p_node_t *node);
/* Connection thread, when its connection ended (before its delpeer):
 * parks the worker unless the server stops, the thread was asked to quit
 * or P2P__POOL_MAX are parked.  Returns true if it parked (it then waits
 * in p2p__pool_wait), false if it must exit. */
bool p2p__pool_park(p2p_server_t *srv, p2p_thread_t *self);
/* Parked connection thread: waits for its next connection (renaming the
 * thread for it).  Returns it, or NULL when asked to quit. */
p2p_conn_t *p2p__pool_wait(p2p_server_t *srv, p2p_thread_t *self);
/* Run loop: joins the workers that exited idle.  With final set (the run
 * loop is ending) also stops later exits from waking it; those are joined
 * by p2p_server_stop. */
void p2p__pool_reap(p2p_server_t *srv, bool final);
/* The worker whose thread is self. */
p2p__worker_t *p2p__worker_of(p2p_thread_t *self);
/* Drops a reference (frees on the last: mailboxes, queued messages). */
void p2p__conn_unref(p2p_conn_t *c);

/* Pushes msg, retrying while the mailbox is full (counted), until it is
 * queued or closed.  For messages that must not be lost (delpeer, slots,
 * taskdone, checkpoint replies).  It polls (200 us) rather than blocking in
 * p2p_mailbox_push: that push gives up when the calling thread is asked to
 * quit, and these messages must still arrive then.  Returns 0 or
 * P2P_ECLOSED. */
int p2p__push_must(p2p_server_t *srv, p2p_mailbox_t *mb, const void *msg, size_t len);
/* Pushes a message whose consumer need not wake up now (quiet push; see
 * p2p_mailbox_try_push_quiet) unless wake is set or the mailbox holds
 * P2P__QUIET_MAX messages or more; falls back to p2p__push_must when full.
 * Any thread. */
#define P2P__QUIET_MAX 16
int p2p__push_lazy(p2p_server_t *srv, p2p_mailbox_t *mb, const void *msg, size_t len, bool wake);

/* Listener and dialer, after their loop: counts the creator as stopped and
 * waits until every connection thread was joined by the run loop (so the
 * waiter, which a racing push may still kick, outlives every pusher). */
void p2p__creator_exit(p2p_server_t *srv, p2p_thread_t *self);

/* Event fan-out helper for peer threads (MSGSEND / MSGRECV). */
void p2p__conn_msg_event(p2p_conn_t *c, p2p_peer_event_type_t type, size_t proto, uint64_t code,
                         size_t size);
/* Fills the address part of an event from c. */
void p2p__conn_event_fill(const p2p_conn_t *c, p2p_peer_event_t *ev);

#endif
