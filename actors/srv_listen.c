/*
 * actors/srv_listen.c: the listener thread `p2p-listen` (geth's
 * listenLoop + checkInboundConn).
 *
 * Owns: the listening socket and the admission core (actors/inbound:
 * MaxPendingPeers handshake slots, the 30 s per-IP inbound history with
 * the LAN exemption, NetRestrict).  Mailboxes it reads: `slots` (a
 * connection thread returns its slot when its handshake ended, admitted or
 * not) and the quit flag.  It also wakes when the history's oldest entry
 * is due, so the history empties after a burst (gauge inbound_history).
 *
 * It accepts only while a slot is free (the listening socket is not polled
 * otherwise, so the kernel backlog absorbs bursts), at most LISTEN_BATCH
 * connections per wake-up.  A rejected connection (NetRestrict, throttle,
 * history full) is closed at once, before any handshake, and counted.
 * Temporary accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) are counted and
 * survived by not accepting for 200 ms.  On quit it closes the listening
 * socket at once, before the run loop tells the peers to quit (geth's
 * Server.Stop closes its listener first): a dial to us during the stop is
 * refused, not held in the kernel's backlog and reset when the stop ends.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/server_int.h"
#include "core/clock.h"
#include "core/log.h"

#define LISTEN_BATCH 32
#define ACCEPT_BACKOFF_NS (200 * P2P_NS_PER_MS)

static void release_slot(p2p_server_t *srv)
{
    if (p2p_inbound_release(&srv->ls_in)) {
        P2P_CRIT("Listener slot accounting broken", "pending=%u", srv->ls_in.pending);
        abort();
    }
}

/* Publishes the inbound history's size (gauge inbound_history). */
static void publish_history(p2p_server_t *srv)
{
    /* relaxed: a gauge, guarding no other data */
    __atomic_store_n(&srv->stats.inbound_history, (uint64_t)srv->ls_in.history.n, __ATOMIC_RELAXED);
}

/* Accepts up to LISTEN_BATCH connections.  Returns the time until which
 * accepting pauses (0: none). */
static uint64_t accept_some(p2p_server_t *srv)
{
    for (int i = 0; i < LISTEN_BATCH; i++) {
        if (p2p_inbound_acquire(&srv->ls_in)) return 0; /* no slot: wait for `slots` */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            release_slot(srv);
            if (e == EAGAIN || e == EWOULDBLOCK) return 0;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
            P2P__STAT(srv, accept_errors);
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                P2P__STAT(srv, accept_temp_errors);
                P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Temporary accept error, pausing accepts",
                           "err=\"%s\" pause=200ms", strerror(e));
                return p2p_now_ns() + ACCEPT_BACKOFF_NS;
            }
            P2P_LOG_RL(3, 10000, P2P_LOG_ERROR, "Accept failed, pausing accepts",
                       "err=\"%s\" pause=200ms", strerror(e));
            return p2p_now_ns() + ACCEPT_BACKOFF_NS;
        }
        p2p_ip_t ip = {0};
        uint16_t port = 0;
        P2P__IGNORE(p2p_ip_from_sockaddr(&ip, &port, (struct sockaddr *)&ss));
        uint64_t evicted = srv->ls_in.stats.history_evicted;
        p2p_inbound_verdict_t v = p2p_inbound_check(&srv->ls_in, &ip, p2p_now_ns());
        publish_history(srv);
        if (srv->ls_in.stats.history_evicted != evicted) {
            P2P__STAT(srv, inbound_history_evicted);
            P2P_LOG_RL(3, 60000, P2P_LOG_WARN, "Inbound history full, oldest entry dropped",
                       "limit=%u", srv->ls_in.cfg.history_max);
        }
        if (v != P2P_INBOUND_OK) {
            if (v == P2P_INBOUND_NETRESTRICT) P2P__STAT(srv, inbound_restricted);
            if (v == P2P_INBOUND_THROTTLED) P2P__STAT(srv, inbound_throttled);
            if (v == P2P_INBOUND_HISTORY_FULL) P2P__STAT(srv, inbound_history_full);
            P2P_LOG_RL(5, 10000, P2P_LOG_DEBUG, "Rejected inbound connection", "why=%s",
                       p2p_inbound_verdict_name(v));
            close(fd);
            release_slot(srv);
            continue;
        }
        P2P__STAT(srv, accepted);
        /* counted once a connection holds the last slot: not for a slot
         * taken only to find the backlog empty (EAGAIN) or an accept error */
        if (p2p_inbound_free_slots(&srv->ls_in) == 0) P2P__STAT(srv, pending_full);
        p2p_node_t node;
        memset(&node, 0, sizeof node);
        node.ep.ip = ip;
        node.ep.tcp = port;
        /* the connection thread fills addresses; pass them via the node */
        int rc = p2p__conn_spawn(srv, fd, false, P2P_CONN_INBOUND, &node);
        if (rc) {
            int e = errno;
            P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Inbound connection thread failed", "err=\"%s\"",
                       rc == P2P_ESYS ? strerror(e) : p2p_strerror(rc));
            release_slot(srv);
        }
    }
    return 0;
}

int p2p__listen_setup(p2p_server_t *srv)
{
    p2p_inbound_config_t cfg = {.max_pending = srv->max_pending,
                                .has_netrestrict = srv->has_netrestrict,
                                .netrestrict = srv->netrestrict,
                                .throttle_lan = srv->cfg.test_throttle_lan,
                                .seed = srv->seed ^ 0x11573};
    return p2p_inbound_init(&srv->ls_in, &cfg);
}

int p2p__listen_main(p2p_thread_t *self, void *arg)
{
    p2p_server_t *srv = arg;
    int rc = p2p_mailbox_attach(srv->mb_slots, &self->waiter);
    if (rc) {
        P2P_CRIT("Listener setup failed", "err=%s", p2p_strerror(rc));
        abort();
    }
    uint64_t paused_until = 0;
    while (!p2p_thread_should_quit(self)) {
        p2p__msg_id_t m[LISTEN_BATCH];
        size_t n = p2p_mailbox_pop_batch(srv->mb_slots, m, sizeof m);
        for (size_t i = 0; i < n; i++) release_slot(srv);
        uint64_t now = p2p_now_ns();
        /* history entries whose 30 s are up leave even when no connection
         * comes to look (a burst's capacity is given back) */
        if (p2p_inbound_next_expiry(&srv->ls_in) <= now) {
            p2p_inbound_expire(&srv->ls_in, now);
            publish_history(srv);
        }
        bool has_slot = p2p_inbound_free_slots(&srv->ls_in) > 0;
        bool can = now >= paused_until && has_slot;
        /* seq_cst: before the waiter's pre-sleep mailbox check; pairs with
         * the connection thread's load after its quiet slot push */
        atomic_store_explicit(&srv->ls_starved, !has_slot, memory_order_seq_cst);
        struct pollfd pfd = {.fd = srv->listen_fd, .events = POLLIN};
        uint64_t deadline = p2p_inbound_next_expiry(&srv->ls_in); /* NEVER if empty */
        if (!can && now < paused_until && paused_until < deadline) deadline = paused_until;
        rc = p2p_waiter_poll(&self->waiter, &pfd, can ? 1 : 0, deadline);
        if (can && (pfd.revents & POLLIN)) paused_until = accept_some(srv);
    }
    p2p_mailbox_close(srv->mb_slots);
    /* the listening socket goes before the peers are told to quit (see
     * the top); free_server reads listen_fd only after joining us */
    close(srv->listen_fd);
    srv->listen_fd = -1;
    p2p__creator_exit(srv, self);
    return 0;
}
