/*
 * actors/srv_run.c: the run loop thread `p2p-run` (geth's Server.run).
 *
 * Owns: the checkpoint state (actors/checks: peer set with flags, trusted
 * set, inbound count), the map id -> peer connection, the registry of every
 * live connection thread, and the event subscribers.
 *
 * Mailboxes it reads (Go twin in parentheses):
 *   conns          a connection thread was born (registry; stop reaches it)
 *   posthandshake  (checkpointPostHandshake) trusted flag, postHandshakeChecks,
 *                  inbound -> dialer "inbound pending"; reply on the conn's cont
 *   addpeer        (checkpointAddPeer) addPeerChecks, admit, dialer "peer
 *                  added" (or "inbound done" if refused), ADD event; reply
 *                  on cont
 *   delpeer        (delpeer) the last message of every connection thread:
 *                  a peer is removed (dialer "peer removed", DROP event), or
 *                  a pending inbound connection ended (dialer "inbound
 *                  done"); the thread is joined and the connection released
 * The dialer hears of peers and pending inbound connections on one mailbox,
 * `peerstate`, whose only producer is this loop: it applies them in the
 * order they were decided here (geth's addPeerCh / remPeerCh are
 * synchronous, hence ordered).
 *   peerop         (peerOp / peerOpDone) Peers, PeerCount, RemovePeer, peer
 *                  lookup, (un)subscribe
 *   trusted        additions to and removals from the trusted set
 *   events         MSGSEND / MSGRECV events from peer threads (fan-out)
 *   quit           the thread's quit flag: every connection is asked to quit
 *                  (peers send Disconnect(client quitting)), checkpoints are
 *                  answered "client quitting", and the loop drains until
 *                  every connection thread was joined.
 * Every mailbox is drained in bounded batches per wake-up.
 */
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/server_int.h"
#include "core/clock.h"
#include "core/futex.h"
#include "core/log.h"
#include "core/utf8.h"

#define RUN_BATCH 64

typedef struct run {
    p2p_server_t *srv;
    p2p_thread_t *self;
    bool quitting;
    bool trim_armed;    /* a peak of TRIM_MIN_CONNS was seen since the count was last 0 */
    size_t conns_high;  /* connections high-water mark since the last trim */
    uint64_t last_trim; /* when the allocator was last trimmed */
    uint64_t trim_due;  /* a deferred trim's time, 0 if none */
} run_t;

/* Giving memory back after a load peak.  Once the connection count reached
 * TRIM_MIN_CONNS, the allocator is trimmed (malloc_trim: every arena's free
 * pages go back to the kernel; see core/thread.c for the thread stacks)
 * each time the count falls to half of its high-water mark since the last
 * trim, and when it reaches 0; at most once per TRIM_INTERVAL: a trim that
 * comes too soon is deferred (the loop wakes for it), so the last
 * connection's departure always ends in a trim within TRIM_INTERVAL.  A
 * halving sequence costs O(log peak) trims; a single connection coming and
 * going below the threshold costs none. */
#define TRIM_MIN_CONNS 16
#define TRIM_INTERVAL P2P_NS_PER_S
static void trim_now(run_t *r, uint64_t now)
{
    size_t n = r->srv->rl_nconns;
    r->last_trim = now;
    r->trim_due = 0;
    r->conns_high = n;
    if (n == 0) r->trim_armed = false;
    P2P__STAT(r->srv, mem_trims);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static bool trim_wanted(const run_t *r)
{
    size_t n = r->srv->rl_nconns;
    return r->trim_armed && (n == 0 || n <= r->conns_high / 2);
}

static void maybe_trim(run_t *r)
{
    size_t n = r->srv->rl_nconns;
    if (n > r->conns_high) r->conns_high = n;
    if (r->conns_high >= TRIM_MIN_CONNS) r->trim_armed = true;
    if (!trim_wanted(r)) return;
    uint64_t now = p2p_now_ns();
    if (now - r->last_trim >= TRIM_INTERVAL)
        trim_now(r, now);
    else if (!r->trim_due)
        r->trim_due = r->last_trim + TRIM_INTERVAL;
}

/* Runs a deferred trim that fell due; returns the next deadline to wait for. */
static uint64_t trim_deadline(run_t *r)
{
    if (!r->trim_due) return P2P_DEADLINE_NEVER;
    uint64_t now = p2p_now_ns();
    if (now < r->trim_due) return r->trim_due;
    if (trim_wanted(r))
        trim_now(r, now);
    else
        r->trim_due = 0;
    return P2P_DEADLINE_NEVER;
}

static void emit(run_t *r, const p2p_peer_event_t *ev)
{
    p2p_server_t *srv = r->srv;
    if (srv->cfg.event_cb) srv->cfg.event_cb(srv->cfg.event_ctx, ev);
    for (size_t i = 0; i < P2P_SERVER_MAX_SUBS; i++) {
        if (!srv->rl_subs[i]) continue;
        if (p2p_mailbox_try_push(srv->rl_subs[i], ev, sizeof *ev)) P2P__STAT(srv, events_dropped);
    }
}

/* Emits one message event taken from mb_events, counted on its
 * connection (still a peer: its delpeer waits for its events). */
static void emit_msg_event(run_t *r, const p2p_peer_event_t *ev)
{
    uint64_t *v = p2p_idmap_get(&r->srv->rl_peers, ev->peer);
    if (v) ((p2p_conn_t *)(uintptr_t)*v)->rl_ev_emitted++;
    emit(r, ev);
}

/* Before a peer's DROP: every message event its thread pushed (all before
 * its delpeer) is emitted first, so a subscriber never sees MSGRECV or
 * MSGSEND after DROP.  They may sit behind a cell another thread has
 * claimed and not yet filled: yield until it is published. */
static void emit_events_of(run_t *r, p2p_conn_t *c)
{
    p2p_peer_event_t ev;
    while (c->rl_ev_emitted < c->ev_pushed) {
        if (p2p_mailbox_try_pop(r->srv->mb_events, &ev, sizeof ev) == 0)
            emit_msg_event(r, &ev);
        else
            sched_yield();
    }
}

/* force_wake: the message changes the dialer's free slots (a peer it
 * dialled went away), so it must run even when idle: it republishes the
 * free-slot hint discovery waits for, and nothing else would wake it. */
static void to_dialer(run_t *r, enum p2p__peerstate_kind kind, const uint8_t id[32], unsigned flags,
                      bool force_wake)
{
    p2p__msg_peerstate_t m = {.flags = flags, .kind = (uint8_t)kind};
    memcpy(m.id, id, 32);
    /* closed once the dialer stopped (shutdown): nothing to tell then.  An
     * idle dialer (nothing it could dial) is not woken for updates that
     * leave its free slots as they are: it drains these before it next
     * acts.  relaxed: a hint (see dl_idle in server_int.h). */
    bool wake = force_wake || !atomic_load_explicit(&r->srv->dl_idle, memory_order_relaxed);
    (void)p2p__push_lazy(r->srv, r->srv->mb_peerstate, &m, sizeof m, wake);
}

/* c's inbound connection, pending at the dialer, ends without becoming a
 * peer (refused at addpeer, or its thread ended before addpeer). */
static void inbound_done(run_t *r, p2p_conn_t *c)
{
    if (!c->rl_inb_pending) return;
    c->rl_inb_pending = false;
    to_dialer(r, P2P__PS_INB_DONE, c->node.id, 0, false);
}

static void reply(run_t *r, p2p_conn_t *c, bool ok, uint8_t reason, unsigned flags)
{
    p2p__msg_cont_t m = {.ok = ok, .reason = reason, .flags = flags};
    (void)p2p__push_must(r->srv, c->cont, &m, sizeof m);
}

static void conn_quit(p2p_conn_t *c)
{
    if (c->rl_quit_sent) return;
    c->rl_quit_sent = true;
    p2p_thread_request_quit(c->th);
}

static void on_born(run_t *r, p2p_conn_t *c)
{
    p2p_server_t *srv = r->srv;
    c->rl_registered = true;
    c->rl_prev = NULL;
    c->rl_next = srv->rl_head;
    if (srv->rl_head) srv->rl_head->rl_prev = c;
    srv->rl_head = c;
    srv->rl_nconns++;
    if (r->quitting) conn_quit(c);
}

static void drain_conns(run_t *r, size_t max)
{
    p2p__msg_conn_t m[RUN_BATCH];
    while (max) {
        size_t want = max < RUN_BATCH ? max : RUN_BATCH;
        size_t n = p2p_mailbox_pop_batch(r->srv->mb_conns, m, want * sizeof m[0]);
        for (size_t i = 0; i < n; i++) on_born(r, m[i].c);
        if (n < want) return;
        max -= n;
    }
}

/* The trusted set's size, for p2p_server_add_trusted's limit check and
 * the stats (relaxed: a gauge). */
static void publish_trusted(p2p_server_t *srv)
{
    __atomic_store_n(&srv->stats.trusted_nodes, (uint64_t)srv->rl_checks.trusted.n,
                     __ATOMIC_RELAXED);
}

/* Drops the additions of id waiting in rl_trusted_retry (all queued
 * before the removal being applied). */
static void trusted_retry_cancel(p2p_server_t *srv, const uint8_t id[32])
{
    size_t k = 0;
    for (size_t i = 0; i < srv->rl_nretry; i++)
        if (memcmp(srv->rl_trusted_retry[i].id, id, 32) != 0)
            srv->rl_trusted_retry[k++] = srv->rl_trusted_retry[i];
    srv->rl_nretry = k;
}

/* Applies the queued trusted-set changes in the order of their calls
 * (see P2P__API_DRAIN in server_int.h).  Called before every checkpoint: a
 * trusted-set change the API made before a connection arrived
 * (happens-before through the application) must be seen by that
 * connection's checkpoint, as geth's unbuffered channel guarantees.  An
 * addition the set has no memory for is kept and applied again with the
 * next batch (every P2P__RETRY_NS meanwhile; a later removal of the node
 * cancels it): the call that queued it was told it was accepted.  Returns
 * how many messages were popped. */
static size_t drain_trusted(run_t *r)
{
    p2p_server_t *srv = r->srv;
    p2p__msg_id_t *m = srv->rl_trusted;
    /* the additions kept from last time (queued before anything still
     * queued), then the queued changes in order (at most the batch: a
     * producer that keeps pushing cannot hold the loop here, and what is
     * left was queued after all of them) */
    size_t n = 0, nremoved = 0;
    for (; n < srv->rl_nretry; n++) m[n] = srv->rl_trusted_retry[n];
    const size_t retried = n;
    srv->rl_nretry = 0;
    while (n < P2P__API_DRAIN && p2p_mailbox_try_pop(srv->mb_trusted, &m[n], sizeof m[0]) == 0) n++;
    for (size_t i = 0; i < n; i++) {
        if (m[i].flags & P2P__TRUSTED_REMOVE) {
            trusted_retry_cancel(srv, m[i].id);
            p2p_checks_remove_trusted(&srv->rl_checks, m[i].id);
            nremoved++;
            continue;
        }
        int rc = p2p_checks_add_trusted(&srv->rl_checks, m[i].id);
        if (rc == P2P_EFULL) {
            /* queued before the caller could see the set full */
            P2P__STAT(srv, trusted_full);
            P2P_LOG_RL(3, 60000, P2P_LOG_WARN, "Trusted node set full, node not added",
                       "peer=%02x%02x%02x%02x limit=%d", m[i].id[0], m[i].id[1], m[i].id[2],
                       m[i].id[3], P2P_CHECKS_MAX_TRUSTED);
        } else if (rc == P2P_ENOMEM) {
            srv->rl_trusted_retry[srv->rl_nretry++] = m[i];
            P2P_LOG_RL(3, 60000, P2P_LOG_WARN, "Trusted node not added yet, out of memory",
                       "peer=%02x%02x%02x%02x", m[i].id[0], m[i].id[1], m[i].id[2], m[i].id[3]);
        } else if (rc) {
            P2P__STAT(srv, internal_push_failures);
        }
    }
    if (n) publish_trusted(srv);
    /* release: pairs with the acquire load in p2p_server_add_trusted (the
     * size published above) */
    if (nremoved)
        atomic_fetch_sub_explicit(&srv->trusted_removals, (uint32_t)nremoved, memory_order_release);
    return n - retried;
}

/* Applies every change queued now (before a checkpoint): they are at most
 * the mailbox's capacity, and a drain takes fewer while additions wait for
 * memory (rl_trusted_retry), so drain until that many came out or none
 * did. */
static void drain_trusted_queued(run_t *r)
{
    for (size_t got = 0, k = 1; k && got < P2P__API_DRAIN; got += k) k = drain_trusted(r);
}

static void on_posthandshake(run_t *r, p2p_conn_t *c)
{
    p2p_server_t *srv = r->srv;
    drain_trusted_queued(r);
    if (r->quitting) {
        reply(r, c, false, P2P_DISC_QUITTING, c->flags);
        return;
    }
    unsigned flags = c->flags;
    uint8_t reason = 0;
    bool ok = p2p_checks_post_handshake(&srv->rl_checks, &reason, &flags, c->node.id);
    if (ok && (flags & P2P_CONN_INBOUND)) {
        to_dialer(r, P2P__PS_INB_PENDING, c->node.id, 0, false);
        c->rl_inb_pending = true;
    }
    reply(r, c, ok, reason, flags);
}

static void on_addpeer(run_t *r, p2p_conn_t *c, unsigned matched)
{
    p2p_server_t *srv = r->srv;
    drain_trusted_queued(r);
    if (r->quitting) {
        inbound_done(r, c);
        reply(r, c, false, P2P_DISC_QUITTING, c->flags);
        return;
    }
    uint8_t reason = 0;
    unsigned flags = c->flags;
    bool ok = p2p_checks_add_peer(&srv->rl_checks, &reason, &flags, c->node.id, matched);
    if (ok) {
        int rc = p2p_checks_add(&srv->rl_checks, c->node.id, flags);
        if (!rc) rc = p2p_idmap_put(&srv->rl_peers, c->node.id, (uint64_t)(uintptr_t)c);
        if (rc) {
            p2p_checks_remove(&srv->rl_checks, c->node.id);
            ok = false;
            reason = rc == P2P_EEXIST ? P2P_DISC_ALREADY_CONNECTED : P2P_DISC_TOO_MANY_PEERS;
        }
    }
    if (ok) {
        c->rl_peer = true;
        P2P__STAT(srv, peers_added);
        /* an inbound peer's "added" also ends its pending entry */
        c->rl_inb_pending = false;
        to_dialer(r, P2P__PS_ADDED, c->node.id, flags, false);
        p2p_peer_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = P2P_PEER_EVENT_ADD;
        p2p__conn_event_fill(c, &ev);
        emit(r, &ev);
        P2P_DEBUG("Adding p2p peer", "peer=%02x%02x%02x%02x inbound=%d name=%s", c->node.id[0],
                  c->node.id[1], c->node.id[2], c->node.id[3], (flags & P2P_CONN_INBOUND) != 0,
                  c->hello ? c->hello->name : "");
    } else {
        inbound_done(r, c);
    }
    reply(r, c, ok, reason, flags);
}

static void on_delpeer(run_t *r, const p2p__msg_delpeer_t *m)
{
    p2p_server_t *srv = r->srv;
    p2p_conn_t *c = m->c;
    /* Its birth notice was pushed before this message (same thread), so
     * until it is popped `conns` is not empty; it may sit behind a cell
     * another connection thread has claimed and not yet filled (preempted
     * between the two: the consumer sees that cell, and all after it, as
     * empty until it is published).  Drain until it shows; an empty
     * `conns` without it is a broken invariant. */
    while (!c->rl_registered) {
        drain_conns(r, SIZE_MAX);
        if (c->rl_registered) break;
        if (p2p_mailbox_depth(srv->mb_conns) == 0) {
            P2P_CRIT("delpeer for an unknown connection", "serial=%llu",
                     (unsigned long long)c->serial);
            abort();
        }
        sched_yield();
    }
    if (c->rl_peer) {
        emit_events_of(r, c);
        c->rl_peer = false;
        int f = p2p_checks_peer_flags(&srv->rl_checks, c->node.id);
        bool dialed = f >= 0 && ((unsigned)f & P2P_CONN_DIALED);
        p2p_checks_remove(&srv->rl_checks, c->node.id);
        p2p_idmap_del(&srv->rl_peers, c->node.id);
        P2P__STAT(srv, peers_removed);
        /* a dialled peer's departure frees a dial slot: wake the dialer */
        to_dialer(r, P2P__PS_REMOVED, c->node.id, 0, dialed);
        p2p_peer_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = P2P_PEER_EVENT_DROP;
        p2p__conn_event_fill(c, &ev);
        ev.reason = m->reason;
        ev.remote_requested = m->remote_requested;
        snprintf(ev.error, sizeof ev.error, "%s", p2p_disc_reason_str(m->reason));
        emit(r, &ev);
        P2P_DEBUG("Removing p2p peer", "peer=%02x%02x%02x%02x req=%d err=\"%s\"", c->node.id[0],
                  c->node.id[1], c->node.id[2], c->node.id[3], m->remote_requested,
                  p2p_disc_reason_str(m->reason));
    }
    /* an inbound connection that passed posthandshake but ended before
     * addpeer (handshake or Hello failed) */
    inbound_done(r, c);
    if (c->rl_prev)
        c->rl_prev->rl_next = c->rl_next;
    else
        srv->rl_head = c->rl_next;
    if (c->rl_next) c->rl_next->rl_prev = c->rl_prev;
    if (srv->rl_nconns > r->conns_high) r->conns_high = srv->rl_nconns;
    if (r->conns_high >= TRIM_MIN_CONNS) r->trim_armed = true;
    srv->rl_nconns--;
    if (m->worker) {
        /* the thread exits after this message: join it */
        (void)p2p_thread_join(&m->worker->th, NULL);
        free(m->worker);
    }
    /* seq_cst: read by the quit loop below */
    atomic_fetch_sub_explicit(&srv->live_conns, 1, memory_order_seq_cst);
    p2p__conn_unref(c);
    maybe_trim(r);
}

static void fill_info(run_t *r, p2p_peer_info_t *pi, p2p_conn_t *c)
{
    memset(pi, 0, sizeof *pi);
    memcpy(pi->id, c->node.id, 32);
    memcpy(pi->pubkey, c->node.pubkey, 64);
    if (c->hello) {
        /* cut on a character boundary; cap names cleaned like the name */
        p2p_utf8_clean(pi->name, sizeof pi->name, c->hello->name, c->hello->name_len);
        pi->ncaps = c->hello->ncaps < P2P_PEER_INFO_CAPS ? c->hello->ncaps : P2P_PEER_INFO_CAPS;
        for (size_t k = 0; k < pi->ncaps; k++) {
            const p2p_cap_t *hc = &c->hello->caps[k];
            pi->caps[k].version = hc->version;
            pi->caps[k].name_len =
                p2p_utf8_clean(pi->caps[k].name, sizeof pi->caps[k].name, hc->name, hc->name_len);
        }
        pi->remote_version = c->hello->version;
    }
    pi->local_ip = c->local_ip;
    pi->remote_ip = c->remote_ip;
    pi->local_port = c->local_port;
    pi->remote_port = c->remote_port;
    int f = p2p_checks_peer_flags(&r->srv->rl_checks, c->node.id);
    unsigned flags = f < 0 ? c->flags : (unsigned)f;
    pi->inbound = flags & P2P_CONN_INBOUND;
    pi->trusted = flags & P2P_CONN_TRUSTED;
    pi->static_dialed = flags & P2P_CONN_STATIC_DIALED;
    pi->dyn_dialed = flags & P2P_CONN_DYN_DIALED;
}

static p2p_conn_t *peer_by_id(run_t *r, const uint8_t id[32])
{
    uint64_t *v = p2p_idmap_get(&r->srv->rl_peers, id);
    return v ? (p2p_conn_t *)(uintptr_t)*v : NULL;
}

/* The loop takes op up: false (and op freed) if its caller gave up
 * waiting (see p2p__peerop_t). */
static bool op_claim(p2p__peerop_t *op)
{
    uint32_t s = P2P__OP_QUEUED;
    /* acq_rel: on failure, the acquire read of ABANDONED orders the
     * caller's last use of the op before our free */
    if (atomic_compare_exchange_strong_explicit(&op->state, &s, P2P__OP_RUNNING,
                                                memory_order_acq_rel, memory_order_acquire))
        return true;
    free(op);
    return false;
}

static void op_done(p2p__peerop_t *op, int rc)
{
    op->rc = rc;
    /* release: the caller's acquire load sees the results */
    atomic_store_explicit(&op->state, P2P__OP_DONE, memory_order_release);
    p2p_futex_wake_all(&op->state);
    /* the caller may be done with the op already */
    p2p__peerop_put(op);
}

static void on_peerop(run_t *r, p2p__peerop_t *op)
{
    p2p_server_t *srv = r->srv;
    if (!op_claim(op)) return;
    if (r->quitting) {
        op_done(op, P2P_ECLOSED);
        return;
    }
    int rc = 0;
    switch (op->kind) {
    case P2P__OP_PEERS: {
        size_t pos = 0;
        const uint8_t *k;
        uint64_t v;
        op->n = 0;
        while (op->n < op->cap && p2p_idmap_next(&srv->rl_peers, &pos, &k, &v))
            fill_info(r, &op->infos[op->n++], (p2p_conn_t *)(uintptr_t)v);
        break;
    }
    case P2P__OP_COUNT:
        op->n = p2p_checks_peer_count(&srv->rl_checks);
        op->inbound = p2p_checks_inbound_count(&srv->rl_checks);
        break;
    case P2P__OP_REMOVE: {
        p2p_conn_t *c = peer_by_id(r, op->id);
        if (c) (void)p2p_peer_disconnect(c, P2P_DISC_REQUESTED);
        break;
    }
    case P2P__OP_GET: {
        p2p_conn_t *c = peer_by_id(r, op->id);
        if (c) {
            p2p_peer_ref(c);
            op->peer = c;
        } else {
            rc = P2P_ENOTFOUND;
        }
        break;
    }
    case P2P__OP_SUB: {
        /* one subscription per mailbox: a second would deliver every
         * event twice, and unsubscribe removes the mailbox's */
        size_t free_ix = P2P_SERVER_MAX_SUBS;
        for (size_t i = 0; i < P2P_SERVER_MAX_SUBS; i++) {
            if (srv->rl_subs[i] == op->mb) rc = P2P_EEXIST;
            if (!srv->rl_subs[i] && free_ix == P2P_SERVER_MAX_SUBS) free_ix = i;
        }
        if (rc == 0 && free_ix == P2P_SERVER_MAX_SUBS) rc = P2P_EFULL;
        if (rc == 0) srv->rl_subs[free_ix] = op->mb;
        break;
    }
    case P2P__OP_UNSUB: {
        /* a free slot (NULL) is no subscription of NULL */
        rc = P2P_ENOTFOUND;
        for (size_t i = 0; i < P2P_SERVER_MAX_SUBS && op->mb; i++) {
            if (srv->rl_subs[i] == op->mb) {
                srv->rl_subs[i] = NULL;
                rc = 0;
            }
        }
        break;
    }
    default:
        rc = P2P_EINVAL;
    }
    op_done(op, rc);
}

static void begin_quit(run_t *r)
{
    p2p_server_t *srv = r->srv;
    r->quitting = true;
    drain_conns(r, SIZE_MAX);
    for (p2p_conn_t *c = srv->rl_head; c; c = c->rl_next) conn_quit(c);
    p2p_mailbox_close(srv->mb_peerop);
    p2p_mailbox_close(srv->mb_trusted);
}

/* One pass over every mailbox, bounded per mailbox.  Returns the number
 * of messages handled. */
static size_t run_once(run_t *r)
{
    p2p_server_t *srv = r->srv;
    size_t work = drain_trusted(r);
    drain_conns(r, RUN_BATCH);
    {
        p2p__msg_conn_t m[RUN_BATCH];
        size_t n = p2p_mailbox_pop_batch(srv->mb_posthandshake, m, sizeof m);
        for (size_t i = 0; i < n; i++) on_posthandshake(r, m[i].c);
        work += n;
    }
    {
        p2p__msg_addpeer_t m[RUN_BATCH];
        size_t n = p2p_mailbox_pop_batch(srv->mb_addpeer, m, sizeof m);
        for (size_t i = 0; i < n; i++) on_addpeer(r, m[i].c, m[i].matched);
        work += n;
    }
    {
        p2p__msg_delpeer_t m[RUN_BATCH];
        size_t n = p2p_mailbox_pop_batch(srv->mb_delpeer, m, sizeof m);
        for (size_t i = 0; i < n; i++) on_delpeer(r, &m[i]);
        work += n;
    }
    {
        p2p__msg_peerop_t m[16];
        size_t n = p2p_mailbox_pop_batch(srv->mb_peerop, m, sizeof m);
        for (size_t i = 0; i < n; i++) on_peerop(r, m[i].op);
        work += n;
    }
    {
        p2p_peer_event_t ev;
        for (int i = 0; i < RUN_BATCH; i++) {
            if (p2p_mailbox_try_pop(srv->mb_events, &ev, sizeof ev)) break;
            emit_msg_event(r, &ev);
            work++;
        }
    }
    return work;
}

int p2p__run_setup(p2p_server_t *srv)
{
    p2p_checks_config_t cc = {.max_peers = srv->cfg.max_peers,
                              .max_inbound = srv->max_inbound,
                              .nprotocols = (unsigned)srv->nprotos,
                              .seed = srv->seed};
    memcpy(cc.self, srv->id, 32);
    int rc = p2p_checks_init(&srv->rl_checks, &cc);
    if (!rc) rc = p2p_idmap_init(&srv->rl_peers, 64, 0, srv->seed ^ 0x5eed);
    for (size_t i = 0; !rc && i < srv->ntrusted; i++)
        rc = p2p_checks_add_trusted(&srv->rl_checks, srv->trusted[i]);
    return rc;
}

int p2p__run_main(p2p_thread_t *self, void *arg)
{
    p2p_server_t *srv = arg;
    run_t r = {.srv = srv, .self = self};
    publish_trusted(srv);
    int rc = 0;
    p2p_mailbox_t *mbs[] = {srv->mb_conns,  srv->mb_posthandshake, srv->mb_addpeer, srv->mb_delpeer,
                            srv->mb_peerop, srv->mb_trusted,       srv->mb_events};
    for (size_t i = 0; !rc && i < sizeof mbs / sizeof mbs[0]; i++)
        rc = p2p_mailbox_attach(mbs[i], &self->waiter);
    if (rc) {
        P2P_CRIT("Run loop setup failed", "err=%s", p2p_strerror(rc));
        abort();
    }
    for (;;) {
        if (!r.quitting && p2p_thread_should_quit(self)) begin_quit(&r);
        size_t work = run_once(&r);
        if (r.quitting) {
            /* seq_cst: pairs with the creators' increments (they were
             * joined before we were asked to quit) */
            if (atomic_load_explicit(&srv->live_conns, memory_order_seq_cst) == 0) break;
            /* connections born during the drain were told to quit in on_born */
        }
        /* connection threads that exited after idling parked */
        p2p__pool_reap(srv, false);
        uint64_t deadline = trim_deadline(&r);
        if (srv->rl_nretry && deadline > p2p_now_ns() + P2P__RETRY_NS)
            deadline = p2p_now_ns() + P2P__RETRY_NS;
        if (!work) (void)p2p_waiter_wait(&self->waiter, deadline);
    }
    p2p__pool_reap(srv, true);
    /* answer peerops that raced with the close */
    p2p__msg_peerop_t m;
    while (p2p_mailbox_try_pop(srv->mb_peerop, &m, sizeof m) == 0)
        if (op_claim(m.op)) op_done(m.op, P2P_ECLOSED);
    p2p_peer_event_t ev;
    while (p2p_mailbox_try_pop(srv->mb_events, &ev, sizeof ev) == 0) emit(&r, &ev);
    return 0;
}
