/*
 * actors/srv_dial.c: the dialer thread `p2p-dial` around the pure dial
 * scheduler (actors/dialsched).
 *
 * Owns: the scheduler (static set, dial history, dialing set, peer and
 * pending-inbound views).  Mailboxes it reads:
 *   peerstate       from p2p-run only (geth's addPeerCh / remPeerCh, plus
 *                   the pending-inbound bookkeeping): peer added, peer
 *                   removed, inbound pending (passed posthandshake), inbound
 *                   done (ended without being admitted), applied strictly
 *                   in the order the run loop decided them
 *   taskdone        from connection threads it spawned (dial result)
 *   static          additions to and removals from the static set (API)
 *   nodesin         discovery candidates (p2p_server_add_candidate)
 *   quit            the thread's quit flag
 *   resolved        answers to the resolve hook (p2p_server_resolved)
 * A DIAL action spawns a connection thread (it connects, with the 15 s
 * dial timeout, and runs both handshakes on its own thread) and reports
 * back on taskdone.  A RESOLVE action (a static node without an address,
 * or whose dial failed) calls the configured resolve hook, whose answer
 * comes back on `resolved`; without a hook none is issued.  The
 * want_candidates hook hears after each pass whether the dialer has a free
 * slot (when that changed), so discovery looks for candidates only then.
 *
 * Operators: the scheduler's counters (dials started per kind, candidates
 * skipped per reason, resolutions) are published in the server's stats
 * after every pass, and every 10 s, while fewer than 3 dialled peers are
 * connected and a dialled peer's place is free, a "Looking for peers" line gives the peer count,
 * the dials started since the last line and the static nodes.
 *
 * Ordering: the peer-state changes of one node depend on each other
 * (removed after added, added or done after pending, a re-admission after
 * a removal), so they share one mailbox with one producer and are applied
 * in order.  Across mailboxes, before each message that may depend on an
 * earlier one the mailbox it depends on is drained first (taskdone after
 * peer added: the connection pushes taskdone after the addpeer reply;
 * peer removed after a static removal: p2p_server_remove_peer pushes
 * it before its peer op, so a static node it removes is gone from the
 * scheduler before the drop could start a redial); everything they depend
 * on was pushed before, so it is in that mailbox by then.  Static
 * additions and removals share one mailbox, applied in the order of the
 * API calls (drain_static).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "actors/server_int.h"
#include "core/clock.h"
#include "core/log.h"

#define DIAL_BATCH 32

typedef struct dial {
    p2p_server_t *srv;
    p2p_dialsched_t *s;
    uint64_t next_log;     /* time of the next "Looking for peers" line */
    uint64_t dials_at_log; /* dials started when the last one was written */
    int want_told;         /* last on/off the want_candidates hook took; -1: none yet */
} dial_t;

_Static_assert(P2P_DIAL_SKIP_COUNT <= 16, "stats.candidates_skipped_by too small");

/* geth logs its dial statistics only while it has fewer dialled peers */
#define DIAL_STATS_PEER_LIMIT 3

/* Publishes the scheduler's counters in the server's stats (relaxed: the
 * dialer is their only writer, readers want a recent value). */
static void publish_stats(dial_t *d)
{
    const p2p_dialsched_stats_t *st = &d->s->stats;
    p2p_server_stats_t *o = &d->srv->stats;
    uint64_t skipped = 0;
    for (unsigned i = 0; i < P2P_DIAL_SKIP_COUNT; i++) {
        skipped += st->skipped[i];
        __atomic_store_n(&o->candidates_skipped_by[i], st->skipped[i], __ATOMIC_RELAXED);
    }
    __atomic_store_n(&o->candidates_skipped, skipped, __ATOMIC_RELAXED);
    __atomic_store_n(&o->dials_static, st->dials_static, __ATOMIC_RELAXED);
    __atomic_store_n(&o->dials_dyn, st->dials_dyn, __ATOMIC_RELAXED);
    __atomic_store_n(&o->resolves, st->resolves, __ATOMIC_RELAXED);
    __atomic_store_n(&o->resolves_failed, st->resolve_failed, __ATOMIC_RELAXED);
    __atomic_store_n(&o->resolves_timed_out, st->resolve_timeouts, __ATOMIC_RELAXED);
}

/* Every 10 s, while fewer than DIAL_STATS_PEER_LIMIT dialled peers are
 * connected and fewer than the dialled peers' share (MaxPeers / DialRatio):
 * one line with the peers, the dials started since the last line and the
 * static nodes (geth's "Looking for peers").  A node whose share is below
 * the limit (MaxPeers under 9) and full is not looking for peers. */
static void log_stats(dial_t *d, uint64_t now)
{
    if (now < d->next_log) return;
    d->next_log = now + P2P_DIAL_STATS_INTERVAL_NS;
    const p2p_dialsched_t *s = d->s;
    uint64_t dials = s->stats.dials_static + s->stats.dials_dyn;
    uint64_t tried = dials - d->dials_at_log;
    d->dials_at_log = dials;
    if (s->dial_peers >= DIAL_STATS_PEER_LIMIT || s->dial_peers >= s->max_dialed) return;
    P2P_INFO("Looking for peers", "peercount=%zu tried=%llu static=%u", s->peers.n,
             (unsigned long long)tried, s->nstatic);
}

/* Warns when the static node n can never be dialled as given (the node
 * itself, TCP port 0, outside NetRestrict, no address and no discovery to
 * find one, no dial slot: NoDial or MaxPeers 0).  The configured static
 * nodes (added false) are each named once at start; the ones added later
 * (AddPeer, which an API caller may repeat) at most 3 lines at once and
 * then one a minute, as are those without a dial slot (every node of the
 * set alike: a few lines say it). */
static void warn_undialable(const dial_t *d, const p2p_node_t *n, bool added)
{
    p2p_dial_skip_t why = p2p_dialsched_static_blocked(d->s, n);
    if (why == P2P_DIAL_STARTED) return;
    const uint8_t *id = n->id;
    if (added || why == P2P_DIAL_SKIP_NO_SLOT)
        P2P_LOG_RL(3, 60000, P2P_LOG_WARN, "Static peer will not be dialled",
                   "peer=%02x%02x%02x%02x why=%s", id[0], id[1], id[2], id[3],
                   p2p_dial_skip_name(why));
    else
        P2P_WARN("Static peer will not be dialled", "peer=%02x%02x%02x%02x why=%s", id[0], id[1],
                 id[2], id[3], p2p_dial_skip_name(why));
}

/* Drops the additions of id waiting in dl_retry (all queued before the
 * removal being applied). */
static void retry_cancel(p2p_server_t *srv, const uint8_t id[32])
{
    size_t k = 0;
    for (size_t i = 0; i < srv->dl_nretry; i++)
        if (memcmp(srv->dl_retry[i].node.id, id, 32) != 0) srv->dl_retry[k++] = srv->dl_retry[i];
    srv->dl_nretry = k;
}

/* Applies the queued static-set changes (AddPeer / RemovePeer) in the
 * order of their calls (see P2P__API_DRAIN in server_int.h): a caller's
 * remove-then-add leaves the node static, its add-then-remove does not.
 * The additions kept in dl_retry first (queued before anything still
 * queued), then the queued changes in order, at most the batch per call.
 * Returns how many were popped. */
static size_t drain_static(dial_t *d)
{
    p2p_server_t *srv = d->srv;
    p2p__msg_node_t *m = srv->dl_batch;
    size_t n = 0, nremoved = 0;
    /* the additions that found no memory last time come first (called
     * before anything still queued); they are not new work */
    for (; n < srv->dl_nretry; n++) m[n] = srv->dl_retry[n];
    const size_t retried = n;
    srv->dl_nretry = 0;
    while (n < P2P__API_DRAIN && p2p_mailbox_try_pop(srv->mb_static, &m[n], sizeof m[0]) == 0) n++;
    for (size_t i = 0; i < n; i++) {
        uint64_t now = p2p_now_ns();
        const p2p_node_t *nd = &m[i].node;
        if (m[i].remove) {
            retry_cancel(srv, nd->id);
            (void)p2p_dialsched_remove_static(d->s, nd->id, now);
            nremoved++;
            continue;
        }
        bool trusted = false;
        for (size_t k = 0; k < srv->ntrusted; k++)
            if (memcmp(srv->trusted[k], nd->id, 32) == 0) trusted = true;
        int rc = p2p_dialsched_add_static(d->s, nd, trusted, now);
        if (rc == P2P_EFULL) {
            /* queued before the caller could see the set full */
            P2P__STAT(srv, static_full);
            P2P_LOG_RL(3, 60000, P2P_LOG_WARN, "Static node set full, node not added",
                       "peer=%02x%02x%02x%02x limit=%d", nd->id[0], nd->id[1], nd->id[2], nd->id[3],
                       P2P_DIAL_MAX_STATIC);
            continue;
        }
        if (rc == P2P_ENOMEM) {
            /* kept: the call that queued it was told it was accepted */
            srv->dl_retry[srv->dl_nretry++] = m[i];
            P2P_LOG_RL(3, 60000, P2P_LOG_WARN, "Static node not added yet, out of memory",
                       "peer=%02x%02x%02x%02x", nd->id[0], nd->id[1], nd->id[2], nd->id[3]);
            continue;
        }
        if (rc) P2P__STAT(srv, internal_push_failures);
        warn_undialable(d, nd, true);
    }
    if (n) {
        /* relaxed: a gauge; ordered for p2p_server_add_peer by the release below */
        __atomic_store_n(&srv->stats.static_nodes, d->s->nstatic, __ATOMIC_RELAXED);
        /* release: pairs with the acquire load in p2p_server_add_peer */
        if (nremoved)
            atomic_fetch_sub_explicit(&srv->static_removals, (uint32_t)nremoved,
                                      memory_order_release);
    }
    return n - retried;
}

/* Applies every static-set change queued now (before a drop: the removal
 * it follows is among them).  They are at most the mailbox's capacity, and
 * a drain takes fewer while additions wait for memory (dl_retry), so drain
 * until that many came out or none did. */
static void drain_static_queued(dial_t *d)
{
    for (size_t got = 0, k = 1; k && got < P2P__API_DRAIN; got += k) k = drain_static(d);
}

/* Applies the queued peer-state changes in order.  At most the mailbox's
 * capacity per call: that covers every message pushed before the call
 * (they are all in the mailbox), so a producer that keeps pushing cannot
 * hold the dialer here.  Returns how many. */
static size_t drain_peerstate(dial_t *d)
{
    p2p_mailbox_t *mb = d->srv->mb_peerstate;
    uint32_t cap = p2p_mailbox_capacity(mb);
    p2p__msg_peerstate_t m;
    size_t n = 0;
    for (; n < cap && p2p_mailbox_try_pop(mb, &m, sizeof m) == 0; n++) {
        uint64_t now = p2p_now_ns();
        switch (m.kind) {
        case P2P__PS_ADDED:
            if (p2p_dialsched_peer_added(d->s, m.id, m.flags, now))
                P2P__STAT(d->srv, internal_push_failures);
            break;
        case P2P__PS_REMOVED:
            drain_static_queued(d);
            (void)p2p_dialsched_peer_removed(d->s, m.id, now);
            break;
        case P2P__PS_INB_PENDING:
            if (p2p_dialsched_inbound_pending(d->s, m.id, now))
                P2P__STAT(d->srv, internal_push_failures);
            break;
        case P2P__PS_INB_DONE:
            p2p_dialsched_inbound_done(d->s, m.id, now);
            break;
        default:
            P2P_CRIT("peerstate: unknown kind", "kind=%u", (unsigned)m.kind);
            abort();
        }
    }
    return n;
}

static void run_actions(dial_t *d)
{
    p2p_dial_action_t a;
    while (p2p_dialsched_take(d->s, &a)) {
        uint64_t now = p2p_now_ns();
        if (a.kind == P2P_DIAL_ACT_RESOLVE) {
            if (d->srv->cfg.resolve && !d->srv->cfg.no_discovery)
                d->srv->cfg.resolve(d->srv->cfg.resolve_ctx, &a.node);
            else
                P2P__IGNORE(p2p_dialsched_resolve_done(d->s, a.node.id, NULL, now));
            continue;
        }
        int rc = p2p__conn_spawn(d->srv, -1, true, a.flags, &a.node);
        if (rc) {
            int e = errno;
            P2P_LOG_RL(5, 10000, P2P_LOG_WARN, "Dial failed to start", "err=\"%s\"",
                       rc == P2P_ESYS ? strerror(e) : p2p_strerror(rc));
            P2P__IGNORE(p2p_dialsched_dial_done(d->s, a.node.id, P2P_DIAL_CONNECT_FAILED, now));
        }
    }
}

/* Tells discovery (the want_candidates hook) whether a candidate would be
 * taken now: only when that changed, or the last call failed. */
static void tell_want(dial_t *d, unsigned free_slots)
{
    const p2p_server_config_t *c = &d->srv->cfg;
    if (!c->want_candidates || c->no_discovery || c->no_dial) return;
    int want = free_slots > 0;
    if (want == d->want_told) return;
    if (c->want_candidates(c->want_candidates_ctx, want) == 0) d->want_told = want;
}

static size_t dial_once(dial_t *d)
{
    p2p_server_t *srv = d->srv;
    size_t work = drain_peerstate(d);
    p2p__msg_id_t m;
    for (int i = 0; i < DIAL_BATCH; i++) {
        if (p2p_mailbox_try_pop(srv->mb_taskdone, &m, sizeof m)) break;
        work += drain_peerstate(d);
        P2P__IGNORE(p2p_dialsched_dial_done(d->s, m.id, (p2p_dial_result_t)m.result, p2p_now_ns()));
        work++;
    }
    for (int i = 0; i < DIAL_BATCH; i++) {
        p2p__msg_node_t nm;
        if (p2p_mailbox_try_pop(srv->mb_resolved, &nm, sizeof nm)) break;
        P2P__IGNORE(
            p2p_dialsched_resolve_done(d->s, nm.node.id, nm.found ? &nm.node : NULL, p2p_now_ns()));
        work++;
    }
    work += drain_static(d);
    run_actions(d);
    for (int i = 0; i < DIAL_BATCH; i++) {
        p2p__msg_node_t nm;
        if (p2p_mailbox_try_pop(srv->mb_nodesin, &nm, sizeof nm)) break;
        (void)p2p_dialsched_add_candidate(d->s, &nm.node, p2p_now_ns());
        run_actions(d);
        work++;
    }
    return work;
}

int p2p__dial_setup(p2p_server_t *srv)
{
    p2p_dialsched_config_t cfg = {
        .max_peers = srv->cfg.max_peers,
        .dial_ratio = srv->cfg.dial_ratio,
        .no_dial = srv->cfg.no_dial,
        .max_active_dials = srv->max_active_dials,
        .resolve = srv->cfg.resolve != NULL && !srv->cfg.no_discovery,
        .has_netrestrict = srv->has_netrestrict,
        .netrestrict = srv->netrestrict,
        .seed = srv->seed ^ 0xd1a1,
    };
    memcpy(cfg.self, srv->id, 32);
    int rc = p2p_dialsched_init(&srv->dl_sched, &cfg);
    uint64_t now = p2p_now_ns();
    for (size_t i = 0; !rc && i < srv->nstatic; i++) {
        bool trusted = false;
        for (size_t k = 0; k < srv->ntrusted; k++)
            if (memcmp(srv->trusted[k], srv->statics[i].id, 32) == 0) trusted = true;
        rc = p2p_dialsched_add_static(&srv->dl_sched, &srv->statics[i], trusted, now);
        /* a static node the scheduler has no room for stays counted, as a
         * later p2p_server_add_peer's would; out of memory fails the start */
        if (rc && rc != P2P_ENOMEM) {
            P2P__STAT(srv, internal_push_failures);
            rc = 0;
        }
    }
    return rc;
}

int p2p__dial_main(p2p_thread_t *self, void *arg)
{
    p2p_server_t *srv = arg;
    dial_t d = {.srv = srv, .s = &srv->dl_sched, .want_told = -1};
    int rc = 0;
    p2p_mailbox_t *mbs[] = {srv->mb_nodesin, srv->mb_static, srv->mb_peerstate, srv->mb_taskdone,
                            srv->mb_resolved};
    for (size_t i = 0; !rc && i < sizeof mbs / sizeof mbs[0]; i++)
        rc = p2p_mailbox_attach(mbs[i], &self->waiter);
    if (rc) {
        P2P_CRIT("Dialer setup failed", "err=%s", p2p_strerror(rc));
        abort();
    }
    uint64_t now = p2p_now_ns();
    for (size_t i = 0; i < srv->nstatic; i++) warn_undialable(&d, &srv->statics[i], false);
    /* relaxed: a gauge (later changes publish it in drain_static) */
    __atomic_store_n(&srv->stats.static_nodes, d.s->nstatic, __ATOMIC_RELAXED);
    d.next_log = now + P2P_DIAL_STATS_INTERVAL_NS;
    while (!p2p_thread_should_quit(self)) {
        now = p2p_now_ns();
        uint64_t timeouts = d.s->stats.resolve_timeouts;
        p2p_dialsched_tick(d.s, now);
        if (d.s->stats.resolve_timeouts != timeouts)
            P2P_LOG_RL(3, 60000, P2P_LOG_WARN,
                       "Static node resolution not answered, retrying later", "timeouts=%llu",
                       (unsigned long long)d.s->stats.resolve_timeouts);
        size_t work = dial_once(&d);
        publish_stats(&d);
        log_stats(&d, p2p_now_ns());
        /* relaxed: a hint for the run loop (see server_int.h); a stale
         * value only costs a wake-up or delays an update it drains anyway */
        atomic_store_explicit(&srv->dl_idle, d.s->nstatic == 0 && d.s->ndialing == 0,
                              memory_order_relaxed);
        unsigned free_slots = p2p_dialsched_free_slots(d.s);
        /* relaxed: a hint for discovery */
        atomic_store_explicit(&srv->dial_free, free_slots, memory_order_relaxed);
        tell_want(&d, free_slots);
        if (work) continue;
        uint64_t next = p2p_dialsched_next_deadline(d.s, p2p_now_ns());
        if (next > d.next_log) next = d.next_log;
        if (srv->dl_nretry && next > p2p_now_ns() + P2P__RETRY_NS)
            next = p2p_now_ns() + P2P__RETRY_NS;
        (void)p2p_waiter_wait(&self->waiter, next);
    }
    /* Stop creating, close our mailboxes (pushes fail fast from now on), and
     * keep the waiter alive until every connection thread is gone: a push
     * that raced with the close may still wake it. */
    for (size_t i = 0; i < sizeof mbs / sizeof mbs[0]; i++) p2p_mailbox_close(mbs[i]);
    p2p__creator_exit(srv, self);
    return 0;
}
