/*
 * actors/server.c: the server's public API (actors/server.h): start and
 * stop, the peerop calls that run on the loop, the discovery hook, peer
 * handles and p2p_peer_send, and the connection object's lifecycle.
 *
 * Who calls what: start/stop from the controlling thread; the rest from any
 * thread.  The thread bodies live in srv_run.c (p2p-run), srv_dial.c
 * (p2p-dial), srv_listen.c (p2p-listen) and srv_peer.c (peer-<id8>).
 *
 * Stop order: close the discovery hook (nodesin), stop the listener (its
 * socket closed at once) and the dialer (so no connection is born any
 * more), then the run loop, which asks every connection to quit (peers
 * send Disconnect(client quitting)), drains its mailboxes until every
 * connection thread has posted delpeer and was joined, and returns.  Then
 * the mailboxes are freed.
 */
#include "actors/server.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/server_int.h"
#include "core/clock.h"
#include "core/futex.h"
#include "core/log.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/enode.h"

/* ---- helpers shared by the threads ---- */

int p2p__push_must(p2p_server_t *srv, p2p_mailbox_t *mb, const void *msg, size_t len)
{
    bool counted = false;
    for (;;) {
        int rc = p2p_mailbox_try_push(mb, msg, len);
        if (rc != P2P_EFULL) return rc;
        if (!counted) {
            P2P__STAT(srv, internal_push_failures);
            counted = true;
        }
        usleep(200);
    }
}

int p2p__push_lazy(p2p_server_t *srv, p2p_mailbox_t *mb, const void *msg, size_t len, bool wake)
{
    if (wake) return p2p__push_must(srv, mb, msg, len);
    int rc = p2p_mailbox_try_push_quiet(mb, msg, len);
    if (rc == P2P_EFULL) return p2p__push_must(srv, mb, msg, len);
    if (rc == 0 && p2p_mailbox_depth(mb) >= P2P__QUIET_MAX) p2p_mailbox_notify(mb);
    return rc;
}

void p2p__creator_exit(p2p_server_t *srv, p2p_thread_t *self)
{
    /* seq_cst: p2p_server_stop waits for this count before stopping the run loop */
    atomic_fetch_add_explicit(&srv->creators_stopped, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&srv->live_conns, memory_order_seq_cst) != 0)
        (void)p2p_waiter_wait(&self->waiter, p2p_now_ns() + 2 * P2P_NS_PER_MS);
}

void p2p__conn_event_fill(const p2p_conn_t *c, p2p_peer_event_t *ev)
{
    memcpy(ev->peer, c->node.id, 32);
    ev->local_ip = c->local_ip;
    ev->remote_ip = c->remote_ip;
    ev->local_port = c->local_port;
    ev->remote_port = c->remote_port;
}

void p2p__conn_msg_event(p2p_conn_t *c, p2p_peer_event_type_t type, size_t proto, uint64_t code,
                         size_t size)
{
    p2p_server_t *srv = c->srv;
    p2p_peer_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    p2p__conn_event_fill(c, &ev);
    snprintf(ev.protocol, sizeof ev.protocol, "%s", srv->protos[proto].name);
    ev.proto_version = srv->protos[proto].version;
    ev.msg_code = code;
    ev.msg_size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    if (p2p_mailbox_try_push(srv->mb_events, &ev, sizeof ev))
        P2P__STAT(srv, events_dropped);
    else
        c->ev_pushed++;
}

/* ---- connection objects ---- */

static void conn_free(p2p_conn_t *c)
{
    if (c->out) {
        p2p__msg_out_t m;
        while (p2p_mailbox_try_pop(c->out, &m, sizeof m) == 0) free(m.data);
    }
    p2p_mailbox_destroy(c->cont);
    p2p_mailbox_destroy(c->out);
    p2p_mailbox_destroy(c->disc);
    free(c->hello);
    free(c);
}

void p2p__conn_unref(p2p_conn_t *c)
{
    /* acq_rel: the last owner sees every write of the others before it frees */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) conn_free(c);
}

/* The thread name of a connection: peer-<id8> when dialled (the id is
 * known), conn-in until an inbound one's id is. */
static void conn_thread_name(char name[P2P_THREAD_NAME_MAX], const p2p_conn_t *c)
{
    if (c->dialed) {
        char hex[17];
        p2p_hex_encode(hex, c->node.id, 4);
        hex[8] = 0;
        (void)p2p_thread_name(name, "peer-%s", hex);
    } else {
        (void)p2p_thread_name(name, "conn-in");
    }
}

p2p__worker_t *p2p__worker_of(p2p_thread_t *self)
{
    return (p2p__worker_t *)((char *)self - offsetof(p2p__worker_t, th));
}

bool p2p__pool_park(p2p_server_t *srv, p2p_thread_t *self)
{
    p2p__worker_t *w = p2p__worker_of(self);
    pthread_mutex_lock(&srv->pool_lock);
    bool ok =
        !srv->pool_closed && srv->pool_nparked < P2P__POOL_MAX && !p2p_thread_should_quit(self);
    if (ok) {
        w->park_next = srv->pool_parked;
        w->parked = true;
        srv->pool_parked = w;
        srv->pool_nparked++;
        P2P__STAT(srv, conn_threads_parked);
    }
    pthread_mutex_unlock(&srv->pool_lock);
    return ok;
}

/* Takes the parked worker *pp off the parked list (pool_lock held). */
static p2p__worker_t *pool_unlink(p2p_server_t *srv, p2p__worker_t **pp)
{
    p2p__worker_t *w = *pp;
    *pp = w->park_next;
    w->parked = false;
    srv->pool_nparked--;
    P2P__STAT_ADD(srv, conn_threads_parked, (uint64_t)-1);
    return w;
}

/* Parked worker w, idle for P2P__POOL_IDLE_MS: leaves the parked list for
 * the retired one (the run loop joins it) unless a creator already took it
 * (its next connection is on the way).  Returns true if w must exit. */
static bool pool_retire(p2p_server_t *srv, p2p__worker_t *w)
{
    pthread_mutex_lock(&srv->pool_lock);
    bool ok = w->parked;
    if (ok) {
        p2p__worker_t **pp = &srv->pool_parked;
        while (*pp != w) pp = &(*pp)->park_next;
        pool_unlink(srv, pp);
        P2P__STAT(srv, conn_threads_expired);
        w->park_next = srv->pool_retired;
        srv->pool_retired = w;
        /* release: the list above before the run loop's acquire load */
        atomic_fetch_add_explicit(&srv->pool_nretired, 1, memory_order_release);
        /* the run loop's waiter lives until its function returns, which
         * sets pool_no_reaper under this lock first */
        if (!srv->pool_no_reaper) p2p_waiter_wake(&srv->run.waiter);
    }
    pthread_mutex_unlock(&srv->pool_lock);
    return ok;
}

/* Joins the workers of a retired list taken off the server. */
static void join_workers(p2p__worker_t *w)
{
    while (w) {
        p2p__worker_t *next = w->park_next;
        p2p_thread_request_quit(&w->th);
        (void)p2p_thread_join(&w->th, NULL);
        free(w);
        w = next;
    }
}

void p2p__pool_reap(p2p_server_t *srv, bool final)
{
    /* acquire: pairs with pool_retire's release increment */
    if (!final && !atomic_load_explicit(&srv->pool_nretired, memory_order_acquire)) return;
    /* A retired worker pushed the delpeer of its last connection before it
     * parked: while delpeers wait, one of those connections may still be
     * in the run loop's registry, its th pointing into the worker (which
     * conn_quit uses).  Those are handled first; the loop comes back. */
    if (!final && p2p_mailbox_ready(srv->mb_delpeer)) return;
    pthread_mutex_lock(&srv->pool_lock);
    p2p__worker_t *w = srv->pool_retired;
    srv->pool_retired = NULL;
    /* relaxed: under the lock, which orders it with the increments */
    atomic_store_explicit(&srv->pool_nretired, 0, memory_order_relaxed);
    if (final) srv->pool_no_reaper = true;
    pthread_mutex_unlock(&srv->pool_lock);
    join_workers(w);
}

p2p_conn_t *p2p__pool_wait(p2p_server_t *srv, p2p_thread_t *self)
{
    p2p__worker_t *w = p2p__worker_of(self);
    bool named_idle = false;
    uint64_t now = p2p_now_ns();
    uint64_t idle_end = now + (uint64_t)P2P__POOL_IDLE_MS * P2P_NS_PER_MS;
    uint64_t settle_end = now + (uint64_t)P2P__POOL_SETTLE_MS * P2P_NS_PER_MS;
    for (;;) {
        /* acquire: pairs with the creator's release store */
        p2p_conn_t *c = atomic_load_explicit(&w->next, memory_order_acquire);
        if (c) {
            /* relaxed: only this thread reads it until it parks again, and
             * a creator stores it only after taking the worker off the
             * list, which happens after the next park (mutex) */
            atomic_store_explicit(&w->next, NULL, memory_order_relaxed);
            char name[P2P_THREAD_NAME_MAX];
            conn_thread_name(name, c);
            (void)p2p_thread_rename(name);
            return c;
        }
        if (p2p_thread_should_quit(self)) return NULL;
        now = p2p_now_ns();
        if (!named_idle && now >= settle_end) {
            (void)p2p_thread_rename("conn-idle");
            /* a thread parked for a while keeps no handshake frames
             * resident */
            p2p_thread_trim_stack();
            named_idle = true;
        }
        if (idle_end != P2P_DEADLINE_NEVER && now >= idle_end) {
            if (pool_retire(srv, w)) return NULL;
            /* a creator took this worker: wait for its connection */
            idle_end = P2P_DEADLINE_NEVER;
        }
        (void)p2p_waiter_wait(&self->waiter, named_idle ? idle_end : settle_end);
    }
}

/* p2p_server_stop, after the run loop ended every connection: joins the
 * parked connection threads and those that exited idle since the run loop
 * ended. */
static void pool_close(p2p_server_t *srv)
{
    pthread_mutex_lock(&srv->pool_lock);
    srv->pool_closed = true;
    p2p__worker_t *w = srv->pool_parked, *retired = srv->pool_retired;
    srv->pool_parked = srv->pool_retired = NULL;
    for (p2p__worker_t *p = w; p; p = p->park_next) p->parked = false;
    P2P__STAT_ADD(srv, conn_threads_parked, (uint64_t)0 - srv->pool_nparked);
    srv->pool_nparked = 0;
    pthread_mutex_unlock(&srv->pool_lock);
    join_workers(w);
    join_workers(retired);
}

int p2p__conn_spawn(p2p_server_t *srv, int fd, bool dialed, unsigned flags, const p2p_node_t *node)
{
    p2p_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        P2P__STAT(srv, conn_threads_failed);
        if (fd >= 0) close(fd);
        return P2P_ENOMEM;
    }
    c->srv = srv;
    /* relaxed: a unique number, no ordering */
    c->serial = atomic_fetch_add_explicit(&srv->serial, 1, memory_order_relaxed) + 1;
    atomic_init(&c->refs, 1);
    c->fd = fd;
    c->flags = flags;
    c->dialed = dialed;
    if (node) c->node = *node;
    int rc = p2p_mailbox_create(&c->cont, "cont", sizeof(p2p__msg_cont_t), 2, NULL);
    if (!rc)
        rc = p2p_mailbox_create(&c->out, "out", sizeof(p2p__msg_out_t), srv->out_max_msgs, NULL);
    if (!rc) rc = p2p_mailbox_create(&c->disc, "disconnect", sizeof(p2p__msg_disc_t), 4, NULL);
    if (rc) goto fail;
    /* seq_cst: the run loop's shutdown reads live_conns to know when every
     * connection has ended */
    atomic_fetch_add_explicit(&srv->live_conns, 1, memory_order_seq_cst);
    pthread_mutex_lock(&srv->pool_lock);
    p2p__worker_t *w = srv->pool_parked;
    if (w) {
        (void)pool_unlink(srv, &srv->pool_parked);
        P2P__STAT(srv, conn_threads_reused);
        c->th = &w->th;
        /* release: c's fields (written above) before the worker's acquire
         * load; the wake (seq_cst notified store) comes after.  Both under
         * the lock: an awake worker may take c without the wake, run it to
         * its end and fail to park; it exits (and the run loop frees w)
         * only after its p2p__pool_park, which takes this lock, so w is
         * still alive for the wake. */
        atomic_store_explicit(&w->next, c, memory_order_release);
        p2p_waiter_wake(&w->th.waiter);
        pthread_mutex_unlock(&srv->pool_lock);
        return 0;
    }
    pthread_mutex_unlock(&srv->pool_lock);
    w = calloc(1, sizeof *w);
    if (!w) {
        rc = P2P_ENOMEM;
    } else {
        /* a reused worker names itself when it takes c (p2p__pool_wait) */
        char name[P2P_THREAD_NAME_MAX];
        conn_thread_name(name, c);
        c->th = &w->th;
        /* signal-mode waiter: a connection costs one descriptor (its socket);
         * the new thread counts itself in conn_threads_spawned before it
         * runs c (p2p__conn_main), so whoever sees the connection's effects
         * sees the count too, and a thread that could not be created is
         * never counted (a count taken back would make the counter go down
         * between two reads) */
        rc = p2p_thread_spawn_ex(&w->th, name, P2P_THREAD_STACK_PEER, P2P_THREAD_SIGNAL_WAKE,
                                 p2p__conn_main, c);
    }
    if (rc) {
        free(w);
        atomic_fetch_sub_explicit(&srv->live_conns, 1, memory_order_seq_cst);
        goto fail;
    }
    return 0;
fail:;
    int e = errno; /* P2P_ESYS: the cause, for the caller's log */
    P2P__STAT(srv, conn_threads_failed);
    if (fd >= 0) close(fd);
    conn_free(c);
    errno = e;
    return rc ? rc : P2P_ENOMEM;
}

/* ---- peer handles ---- */

void p2p_peer_ref(p2p_peer_t *peer)
{
    /* relaxed: the caller already holds a reference */
    atomic_fetch_add_explicit(&peer->refs, 1, memory_order_relaxed);
}

void p2p_peer_unref(p2p_peer_t *peer)
{
    if (peer) p2p__conn_unref(peer);
}

const uint8_t *p2p_peer_id(const p2p_peer_t *peer)
{
    return peer->node.id;
}

const uint8_t *p2p_peer_pubkey(const p2p_peer_t *peer)
{
    return peer->node.pubkey;
}

const char *p2p_peer_name(const p2p_peer_t *peer)
{
    return peer->hello ? peer->hello->name : "";
}

bool p2p_peer_inbound(const p2p_peer_t *peer)
{
    return (peer->flags & P2P_CONN_INBOUND) != 0;
}

/* Enters the send gate; false if the peer thread closed it. */
static bool gate_enter(p2p_conn_t *c)
{
    /* seq_cst: Dekker pair with the thread's closed store + inflight load */
    atomic_fetch_add_explicit(&c->inflight, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&c->closed, memory_order_seq_cst)) {
        atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_seq_cst);
        return false;
    }
    return true;
}

static void gate_leave(p2p_conn_t *c)
{
    /* seq_cst: the exiting thread waits for 0 (see gate_enter) */
    atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_seq_cst);
}

int p2p_peer_send(p2p_peer_t *peer, const char *proto, uint64_t code, const uint8_t *data,
                  size_t len)
{
    /* The gate first: the server (peer->srv) may be freed once the peer's
     * thread closed it (p2p_server_stop waits for every delpeer, which the
     * thread posts only after closing the gate and seeing no sender
     * inside), so srv is read only inside. */
    if (!gate_enter(peer)) return P2P_ECLOSED;
    p2p_server_t *srv = peer->srv;
    int rc = 0;
    size_t i;
    for (i = 0; i < peer->nmatch; i++)
        if (strcmp(srv->protos[peer->match[i].proto].name, proto) == 0) break;
    if (i == peer->nmatch) {
        rc = P2P_ENOTFOUND;
        goto out;
    }
    const p2p_protocol_t *p = &srv->protos[peer->match[i].proto];
    if (code >= p->length) {
        rc = P2P_ERANGE;
        goto out;
    }
    /* the frame (rlp(code) || payload, compressed after a v5 Hello) must
     * fit the remote's limit (the same max_msg_size assumed) and 24 bits:
     * else the peer thread could not send it */
    bool snappy = peer->hello && peer->hello->version >= 5;
    if (p2p_rlpx_msg_check(srv->max_msg, snappy, peer->match[i].offset + code, len)) {
        P2P__STAT(srv, send_toobig);
        rc = P2P_ETOOBIG;
        goto out;
    }
    /* relaxed: a cap, not a synchronisation point */
    uint64_t before = atomic_fetch_add_explicit(&peer->out_bytes, len, memory_order_relaxed);
    if (before + len > srv->out_max_bytes) {
        atomic_fetch_sub_explicit(&peer->out_bytes, len, memory_order_relaxed);
        P2P__STAT(srv, send_full);
        rc = P2P_EFULL;
        goto out;
    }
    p2p__msg_out_t m = {.code = peer->match[i].offset + code,
                        .len = (uint32_t)len,
                        .proto = (uint16_t)peer->match[i].proto};
    m.data = malloc(len ? len : 1);
    if (!m.data) {
        atomic_fetch_sub_explicit(&peer->out_bytes, len, memory_order_relaxed);
        rc = P2P_ENOMEM;
        goto out;
    }
    if (len) memcpy(m.data, data, len);
    rc = p2p_mailbox_try_push(peer->out, &m, sizeof m);
    if (rc) {
        free(m.data);
        atomic_fetch_sub_explicit(&peer->out_bytes, len, memory_order_relaxed);
        if (rc == P2P_EFULL) P2P__STAT(srv, send_full);
        goto out;
    }
    p2p_waiter_wake(&peer->th->waiter);
out:
    gate_leave(peer);
    return rc;
}

int p2p_peer_resume(p2p_peer_t *peer)
{
    if (!gate_enter(peer)) return P2P_ECLOSED;
    p2p_waiter_wake(&peer->th->waiter);
    gate_leave(peer);
    return 0;
}

int p2p_peer_disconnect(p2p_peer_t *peer, uint8_t reason)
{
    if (!gate_enter(peer)) return P2P_ECLOSED;
    p2p__msg_disc_t m = {.reason = reason};
    int rc = p2p_mailbox_try_push(peer->disc, &m, sizeof m);
    if (rc == P2P_EFULL) rc = 0; /* a Disconnect is already queued */
    gate_leave(peer);
    return rc;
}

/* ---- peerop ---- */

/* Runs op (the caller's copy, inputs set) on the loop and copies the
 * results back.  Waits at most op_timeout for the loop to take the op up;
 * see p2p__peerop_t for who frees it. */
static int peerop_run(p2p_server_t *srv, p2p__peerop_t *req)
{
    /* the loop would wait for itself (an event callback calling in) */
    if (p2p_thread_self() == &srv->run) return P2P_ESTATE;
    p2p__peerop_t *op = malloc(sizeof *op);
    if (!op) return P2P_ENOMEM;
    *op = *req;
    atomic_init(&op->state, P2P__OP_QUEUED);
    atomic_init(&op->refs, 2);
    uint64_t deadline = p2p_now_ns() + srv->op_timeout;
    p2p__msg_peerop_t m = {.op = op, .kind = op->kind};
    int rc = p2p_mailbox_push(srv->mb_peerop, &m, sizeof m, deadline);
    if (rc) {
        free(op); /* not queued */
        return rc;
    }
    for (;;) {
        /* acquire: pairs with the loop's release store of DONE (the op's
         * results) */
        uint32_t s = atomic_load_explicit(&op->state, memory_order_acquire);
        if (s == P2P__OP_DONE) break;
        if (s == P2P__OP_QUEUED && p2p_now_ns() >= deadline) {
            /* acq_rel: if this wins, the loop's failing claim reads
             * ABANDONED (acquire) and frees the op after our last use */
            if (atomic_compare_exchange_strong_explicit(&op->state, &s, P2P__OP_ABANDONED,
                                                        memory_order_acq_rel, memory_order_acquire))
                return P2P_ETIMEDOUT;
            continue; /* the loop claimed it: wait for DONE */
        }
        /* RUNNING: the loop is at it; wait without a deadline */
        p2p_futex_wait_until(&op->state, s, s == P2P__OP_QUEUED ? deadline : P2P_DEADLINE_NEVER);
    }
    rc = op->rc;
    req->n = op->n;
    req->inbound = op->inbound;
    req->peer = op->peer;
    /* the loop may still be in its wake on op->state: the last of the two
     * references frees the op (see p2p__peerop_t) */
    p2p__peerop_put(op);
    return rc;
}

int p2p_server_peers(p2p_server_t *srv, p2p_peer_info_t *out, size_t cap, size_t *n)
{
    p2p__peerop_t op = {.kind = P2P__OP_PEERS, .infos = out, .cap = cap};
    *n = 0;
    int rc = peerop_run(srv, &op);
    if (!rc) *n = op.n;
    return rc;
}

int p2p_server_peer_count(p2p_server_t *srv)
{
    p2p__peerop_t op = {.kind = P2P__OP_COUNT};
    int rc = peerop_run(srv, &op);
    return rc ? rc : (int)op.n;
}

int p2p_server_peer_counts(p2p_server_t *srv, unsigned *inbound)
{
    p2p__peerop_t op = {.kind = P2P__OP_COUNT};
    if (inbound) *inbound = 0;
    int rc = peerop_run(srv, &op);
    if (rc) return rc;
    if (inbound) *inbound = (unsigned)op.inbound;
    return (int)op.n;
}

int p2p_server_peer_get(p2p_server_t *srv, p2p_peer_t **peer, const uint8_t id[32])
{
    p2p__peerop_t op = {.kind = P2P__OP_GET};
    memcpy(op.id, id, 32);
    *peer = NULL;
    int rc = peerop_run(srv, &op);
    if (!rc) *peer = op.peer;
    return rc;
}

int p2p_server_subscribe(p2p_server_t *srv, p2p_mailbox_t *mb)
{
    if (!mb || p2p_mailbox_msg_size(mb) != sizeof(p2p_peer_event_t)) return P2P_EINVAL;
    p2p__peerop_t op = {.kind = P2P__OP_SUB, .mb = mb};
    return peerop_run(srv, &op);
}

int p2p_server_unsubscribe(p2p_server_t *srv, p2p_mailbox_t *mb)
{
    p2p__peerop_t op = {.kind = P2P__OP_UNSUB, .mb = mb};
    return peerop_run(srv, &op);
}

int p2p_server_remove_peer(p2p_server_t *srv, const uint8_t id[32])
{
    /* the connection to wait for (not from the run loop, nor from a
     * connection thread: the loop or the connection could not end while
     * we wait, see p2p__on_conn_thread) */
    p2p_peer_t *old = NULL;
    bool wait = p2p_thread_self() != &srv->run && !p2p__on_conn_thread(srv);
    if (wait && p2p_server_peer_get(srv, &old, id) != 0) old = NULL;
    p2p__msg_node_t m;
    memset(&m, 0, sizeof m);
    m.remove = true;
    memcpy(m.node.id, id, 32);
    /* relaxed: the push below publishes it to the dialer (see server_int.h) */
    atomic_fetch_add_explicit(&srv->static_removals, 1, memory_order_relaxed);
    int rc = p2p_mailbox_push(srv->mb_static, &m, sizeof m, P2P_DEADLINE_NEVER);
    if (rc) atomic_fetch_sub_explicit(&srv->static_removals, 1, memory_order_relaxed);
    if (rc && rc != P2P_ECLOSED) {
        if (old) p2p_peer_unref(old);
        return rc;
    }
    if (p2p_thread_self() == &srv->run) {
        /* the event callback: the peer map is this thread's own, so the
         * disconnect is asked for here instead of through a peerop (which
         * would wait for this thread) */
        /* relaxed: a hint (the disconnect below goes through the peer's
         * send gate, which decides whether the peer can still take it) */
        if (atomic_load_explicit(&srv->stopping, memory_order_relaxed)) return P2P_ECLOSED;
        uint64_t *v = p2p_idmap_get(&srv->rl_peers, id);
        if (v) (void)p2p_peer_disconnect((p2p_conn_t *)(uintptr_t)*v, P2P_DISC_REQUESTED);
        return 0;
    }
    p2p__peerop_t op = {.kind = P2P__OP_REMOVE};
    memcpy(op.id, id, 32);
    rc = peerop_run(srv, &op);
    /* as geth's RemovePeer: back once that connection is gone from the
     * peer set (its Disconnect written and its linger over), at most the
     * linger plus the op timeout; a new connection of the same node does
     * not hold us */
    uint64_t end = p2p_now_ns() + srv->linger + srv->op_timeout;
    while (rc == 0 && old && p2p_now_ns() < end) {
        p2p_peer_t *cur = NULL;
        if (p2p_server_peer_get(srv, &cur, id) != 0) break;
        bool same = cur == old;
        p2p_peer_unref(cur);
        if (!same) break;
        usleep(1000);
    }
    if (old) p2p_peer_unref(old);
    return rc;
}

_Static_assert(P2P_SERVER_MAX_STATIC == P2P_DIAL_MAX_STATIC, "static set limit");
_Static_assert(6ull * P2P_SERVER_LIMIT_MAX + 64 <= P2P_MAILBOX_CAP_MAX, "connection mailboxes");
_Static_assert(P2P_SERVER_MAX_TRUSTED == P2P_CHECKS_MAX_TRUSTED, "trusted set limit");

/* A set at its limit refuses an addition at once (counted), judged by its
 * size as the thread that applies its changes last published it, unless a
 * removal is on its way (that thread applies both in call order, so a
 * remove-then-add fits); that thread enforces the limit anyway. */
static bool set_full(_Atomic uint32_t *removals, const uint64_t *size, uint64_t limit)
{
    /* acquire: pairs with the release decrement after the size was published */
    if (atomic_load_explicit(removals, memory_order_acquire) != 0) return false;
    /* relaxed: a gauge (ordered by the acquire above) */
    return __atomic_load_n(size, __ATOMIC_RELAXED) >= limit;
}

int p2p_server_add_peer(p2p_server_t *srv, const p2p_node_t *node)
{
    if (set_full(&srv->static_removals, &srv->stats.static_nodes, P2P_SERVER_MAX_STATIC)) {
        P2P__STAT(srv, static_full);
        return P2P_EFULL;
    }
    p2p__msg_node_t m = {.node = *node, .remove = false};
    return p2p_mailbox_push(srv->mb_static, &m, sizeof m, p2p_now_ns() + P2P_NS_PER_S);
}

int p2p_server_add_trusted(p2p_server_t *srv, const uint8_t id[32])
{
    if (set_full(&srv->trusted_removals, &srv->stats.trusted_nodes, P2P_SERVER_MAX_TRUSTED)) {
        P2P__STAT(srv, trusted_full);
        return P2P_EFULL;
    }
    p2p__msg_id_t m = {.flags = 0};
    memcpy(m.id, id, 32);
    return p2p_mailbox_push(srv->mb_trusted, &m, sizeof m, p2p_now_ns() + P2P_NS_PER_S);
}

int p2p_server_remove_trusted(p2p_server_t *srv, const uint8_t id[32])
{
    p2p__msg_id_t m = {.flags = P2P__TRUSTED_REMOVE};
    memcpy(m.id, id, 32);
    /* relaxed: the push below publishes it to the run loop (see server_int.h) */
    atomic_fetch_add_explicit(&srv->trusted_removals, 1, memory_order_relaxed);
    int rc = p2p_mailbox_push(srv->mb_trusted, &m, sizeof m, p2p_now_ns() + P2P_NS_PER_S);
    if (rc) atomic_fetch_sub_explicit(&srv->trusted_removals, 1, memory_order_relaxed);
    return rc;
}

int p2p_server_add_candidate(p2p_server_t *srv, const p2p_node_t *node, uint64_t deadline_ns)
{
    if (srv->cfg.no_discovery) return P2P_ECLOSED;
    p2p__msg_node_t m = {.node = *node};
    int rc = p2p_mailbox_push(srv->mb_nodesin, &m, sizeof m, deadline_ns);
    if (!rc)
        P2P__STAT(srv, candidates_in);
    else if (rc == P2P_ETIMEDOUT)
        P2P__STAT(srv, candidates_refused); /* the dialer is behind: dropped, counted */
    return rc;
}

int p2p_server_resolved(p2p_server_t *srv, const uint8_t id[32], const p2p_node_t *found)
{
    p2p__msg_node_t m;
    memset(&m, 0, sizeof m);
    if (found) {
        m.node = *found;
        m.found = true;
    }
    memcpy(m.node.id, id, 32);
    /* try_push: the resolve callback runs on the dialer, which drains this */
    return p2p_mailbox_try_push(srv->mb_resolved, &m, sizeof m);
}

unsigned p2p_server_dial_slots(const p2p_server_t *srv)
{
    /* relaxed: a hint */
    return atomic_load_explicit(&srv->dial_free, memory_order_relaxed);
}

void p2p_server_get_stats(const p2p_server_t *srv, p2p_server_stats_t *st)
{
    const uint64_t *src = (const uint64_t *)&srv->stats;
    uint64_t *dst = (uint64_t *)st;
    /* relaxed: counters and gauges, each guarding no other data */
    for (size_t i = 0; i < sizeof *st / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void p2p_server_self(const p2p_server_t *srv, p2p_node_t *self)
{
    memset(self, 0, sizeof *self);
    memcpy(self->id, srv->id, 32);
    memcpy(self->pubkey, srv->pub, 64);
    self->ep.ip = p2p_ip_advertised(&srv->cfg.external_ip, &srv->cfg.listen_ip);
    self->ep.tcp = srv->port;
    self->ep.udp = srv->port;
}

uint16_t p2p_server_port(const p2p_server_t *srv)
{
    return srv->port;
}

/* ---- start / stop ---- */

static int cmp_proto(const void *a, const void *b)
{
    const p2p_protocol_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->version < y->version ? -1 : x->version > y->version;
}

static bool ip_family_ok(const p2p_ip_t *ip)
{
    return ip->family == 0 || ip->family == 4 || ip->family == 6;
}

static int setup_config(p2p_server_t *srv, const p2p_server_config_t *cfg)
{
    srv->cfg = *cfg;
    if (p2p_secp_privkey_check(cfg->priv) || p2p_secp_pubkey(srv->pub, cfg->priv))
        return P2P_EBADKEY;
    memcpy(srv->priv, cfg->priv, 32);
    p2p_node_id(srv->id, srv->pub);
    snprintf(srv->name, sizeof srv->name, "%s", cfg->name ? cfg->name : "devp2p-c");
    srv->cfg.name = srv->name;

    if (cfg->nprotocols > P2P__MAX_PROTOS) return P2P_EINVAL;
    /* a count without its array */
    if ((cfg->nprotocols && !cfg->protocols) || (cfg->nbootnodes && !cfg->bootnodes) ||
        (cfg->nstatic && !cfg->static_nodes) || (cfg->ntrusted && !cfg->trusted_nodes))
        return P2P_EINVAL;
    if (cfg->nstatic > P2P_SERVER_MAX_STATIC || cfg->ntrusted > P2P_SERVER_MAX_TRUSTED)
        return P2P_EINVAL;
    /* the sizes derived from them below must neither wrap nor exceed what
     * a mailbox or the maps can hold */
    if (cfg->max_peers > P2P_SERVER_LIMIT_MAX || cfg->max_pending > P2P_SERVER_LIMIT_MAX ||
        cfg->max_active_dials > P2P_SERVER_LIMIT_MAX)
        return P2P_EINVAL;
    /* every connection's outbound mailbox would fail to be created */
    if (cfg->out_max_msgs > P2P_MAILBOX_CAP_MAX) return P2P_EINVAL;
    /* addresses: none (family 0), IPv4 or IPv6; another family would be
     * our advertised address (p2p_server_self) even without a listener */
    if (!ip_family_ok(&cfg->listen_ip) || !ip_family_ok(&cfg->external_ip)) return P2P_EINVAL;
    for (size_t i = 0; i < cfg->nprotocols; i++) {
        const p2p_protocol_t *p = &cfg->protocols[i];
        size_t nl = p->name ? strlen(p->name) : 0;
        if (nl == 0 || nl > P2P_CAP_NAME_MAX || p->length == 0) return P2P_EINVAL;
        srv->protos[i] = *p;
    }
    srv->nprotos = cfg->nprotocols;
    qsort(srv->protos, srv->nprotos, sizeof srv->protos[0], cmp_proto);
    for (size_t i = 0; i < srv->nprotos; i++) {
        snprintf(srv->proto_names[i], sizeof srv->proto_names[i], "%s", srv->protos[i].name);
        srv->protos[i].name = srv->proto_names[i];
        srv->wprotos[i] =
            (p2p_proto_t){srv->proto_names[i], srv->protos[i].version, srv->protos[i].length};
    }
    srv->cfg.protocols = srv->protos;

    if (cfg->nbootnodes) {
        srv->bootnodes = calloc(cfg->nbootnodes, sizeof(p2p_node_t));
        if (!srv->bootnodes) return P2P_ENOMEM;
        memcpy(srv->bootnodes, cfg->bootnodes, cfg->nbootnodes * sizeof(p2p_node_t));
        srv->nboot = cfg->nbootnodes;
    }
    if (cfg->nstatic) {
        srv->statics = calloc(cfg->nstatic, sizeof(p2p_node_t));
        if (!srv->statics) return P2P_ENOMEM;
        memcpy(srv->statics, cfg->static_nodes, cfg->nstatic * sizeof(p2p_node_t));
        srv->nstatic = cfg->nstatic;
    }
    if (cfg->ntrusted) {
        srv->trusted = calloc(cfg->ntrusted, 32);
        if (!srv->trusted) return P2P_ENOMEM;
        for (size_t i = 0; i < cfg->ntrusted; i++)
            memcpy(srv->trusted[i], cfg->trusted_nodes[i].id, 32);
        srv->ntrusted = cfg->ntrusted;
    }
    srv->cfg.bootnodes = srv->bootnodes;
    srv->cfg.static_nodes = srv->statics;
    srv->cfg.trusted_nodes = NULL;
    if (cfg->netrestrict) {
        srv->has_netrestrict = true;
        srv->netrestrict = *cfg->netrestrict;
    }
    srv->cfg.netrestrict = NULL;

#define MS(v, d) ((uint64_t)((v) ? (v) : (d)) * P2P_NS_PER_MS)
    srv->hs_timeout = MS(cfg->handshake_timeout_ms, 5000);
    srv->dial_timeout = MS(cfg->dial_timeout_ms, 15000);
    srv->ping_interval = MS(cfg->ping_interval_ms, 15000);
    srv->read_timeout = MS(cfg->read_timeout_ms, 30000);
    srv->write_timeout = MS(cfg->write_timeout_ms, 20000);
    srv->linger = MS(cfg->disc_linger_ms, 1000);
    srv->op_timeout = MS(cfg->op_timeout_ms, 5000);
#undef MS
    srv->out_max_msgs = cfg->out_max_msgs ? cfg->out_max_msgs : 256;
    srv->out_max_bytes = cfg->out_max_bytes ? cfg->out_max_bytes : 16u << 20;
    srv->max_msg = cfg->max_msg_size && cfg->max_msg_size < P2P_RLPX_FRAME_MAX ? cfg->max_msg_size
                                                                               : P2P_RLPX_FRAME_MAX;
    srv->max_pending = cfg->max_pending ? cfg->max_pending : P2P_MAX_PENDING_PEERS_DEFAULT;
    /* as geth: MaxPendingPeers also bounds the dials in flight */
    srv->max_active_dials = cfg->max_active_dials ? cfg->max_active_dials
                            : cfg->max_pending    ? cfg->max_pending
                                                  : P2P_DIAL_MAX_ACTIVE_DEFAULT;
    srv->max_dialed = p2p_dial_max_dialed(cfg->max_peers, cfg->dial_ratio, cfg->no_dial);
    srv->max_inbound = p2p_dial_max_inbound(cfg->max_peers, cfg->dial_ratio, cfg->no_dial);
    /* at most 6 x 2^20 + 64 (the limits checked above): no wrap, and
     * within P2P_MAILBOX_CAP_MAX */
    srv->conn_mb_cap = 2 * (cfg->max_peers + srv->max_pending + srv->max_active_dials) + 64;
    srv->seed = cfg->seed;
    if (!srv->seed && p2p_random((uint8_t *)&srv->seed, sizeof srv->seed)) return P2P_ESYS;
    return 0;
}

static int make_hello(p2p_server_t *srv)
{
    p2p_hello_t *h = calloc(1, sizeof *h);
    if (!h) return P2P_ENOMEM;
    h->version = P2P_BASE_VERSION;
    size_t nl = strlen(srv->name);
    memcpy(h->name, srv->name, nl);
    h->name_len = nl;
    h->ncaps = srv->nprotos;
    for (size_t i = 0; i < srv->nprotos; i++) {
        size_t l = strlen(srv->protos[i].name);
        memcpy(h->caps[i].name, srv->protos[i].name, l);
        h->caps[i].name_len = l;
        h->caps[i].version = srv->protos[i].version;
    }
    h->listen_port = srv->port;
    memcpy(h->id, srv->pub, 64);
    int rc = p2p_hello_encode(srv->hello, sizeof srv->hello, &srv->hello_len, h);
    free(h);
    return rc;
}

static int open_listener(p2p_server_t *srv)
{
    p2p_ip_t ip = srv->cfg.listen_ip.family ? srv->cfg.listen_ip : p2p_ip4(0, 0, 0, 0);
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &ip, (uint16_t)srv->cfg.listen_port);
    if (!sl) return P2P_EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return P2P_ESYS;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* accepted sockets inherit it (Linux copies the listener's TCP
     * options): no setsockopt per inbound connection */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ip.family == 6) { /* "::" takes IPv4 too, whatever net.ipv6.bindv6only says */
        int off = 0;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1024)) {
        int e = errno;
        close(fd);
        errno = e;
        return P2P_ESYS;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    p2p_ip_t bip;
    uint16_t port = 0;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) ||
        p2p_ip_from_sockaddr(&bip, &port, (struct sockaddr *)&bound)) {
        close(fd);
        return P2P_ESYS;
    }
    srv->listen_fd = fd;
    srv->port = port;
    memset(&srv->listen_local, 0, sizeof srv->listen_local);
    if (!p2p_ip_is_unspecified(&bip)) srv->listen_local = bip;
    return 0;
}

/* Trace descriptions (core/mailbox.h): peer = node id prefix, from the
 * message's own bytes only (the connection may be gone by then). */
static void describe_conn(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    (void)kind, (void)arg;
    *peer = ((const p2p__msg_conn_t *)msg)->peer;
}

static void describe_addpeer(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const p2p__msg_addpeer_t *m = msg;
    (void)kind;
    *peer = m->peer;
    *arg = m->matched; /* matched capabilities */
}

static void describe_delpeer(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const p2p__msg_delpeer_t *m = msg;
    (void)kind;
    *peer = m->peer;
    *arg = m->reason; /* Disconnect reason code */
}

static void describe_id(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const p2p__msg_id_t *m = msg;
    (void)kind;
    *peer = p2p_trace_peer(m->id);
    /* flags (P2P_CONN_*, pending) in the low half, a dial result above */
    *arg = (uint64_t)(uint32_t)m->result << 32 | m->flags;
}

static void describe_peerop(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const p2p__msg_peerop_t *m = msg;
    (void)peer, (void)arg;
    *kind = (uint16_t)(P2P__TK_PEEROP + m->kind);
}

static void describe_peerstate(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const p2p__msg_peerstate_t *m = msg;
    *kind = (uint16_t)(P2P__TK_PEERSTATE + m->kind);
    *peer = p2p_trace_peer(m->id);
    /* the kind (1 added, 2 removed, 3 inbound pending, 4 inbound done) in
     * the low byte, the connection flags above */
    *arg = (uint64_t)m->flags << 8 | m->kind;
}

static void describe_node(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    (void)kind, (void)arg;
    *peer = p2p_trace_peer(((const p2p__msg_node_t *)msg)->node.id);
}

static void describe_event(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const p2p_peer_event_t *m = msg;
    *kind = (uint16_t)(P2P__TK_EVENT + m->type);
    *peer = p2p_trace_peer(m->peer);
    *arg = (uint64_t)m->type << 8 | m->reason; /* event type, Disconnect reason */
}

/* Names the server's message kinds for trace readers (process-wide; the
 * same names every time). */
static void name_trace_kinds(void)
{
    static const char *const ops[] = {"peers", "count",     "remove",
                                      "get",   "subscribe", "unsubscribe"};
    static const char *const states[] = {"added", "removed", "inbound-pending", "inbound-done"};
    static const char *const events[] = {"add", "drop", "msgsend", "msgrecv"};
    char name[48];
    for (unsigned i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "peerop-%s", ops[i]);
        (void)p2p_trace_name_kind((uint16_t)(P2P__TK_PEEROP + 1 + i), name);
    }
    for (unsigned i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "peer-%s", states[i]);
        (void)p2p_trace_name_kind((uint16_t)(P2P__TK_PEERSTATE + 1 + i), name);
        snprintf(name, sizeof name, "event-%s", events[i]);
        (void)p2p_trace_name_kind((uint16_t)(P2P__TK_EVENT + 1 + i), name);
    }
}

static int make_mailboxes(p2p_server_t *srv)
{
    name_trace_kinds();
    uint32_t cc = srv->conn_mb_cap;
    int rc = 0;
#define MB(field, name, type, cap, describe)                                                       \
    if (!rc) rc = p2p_mailbox_create(&srv->field, name, sizeof(type), cap, describe)
    MB(mb_conns, "conns", p2p__msg_conn_t, cc, describe_conn);
    MB(mb_posthandshake, "posthandshake", p2p__msg_conn_t, cc, describe_conn);
    MB(mb_addpeer, "addpeer", p2p__msg_addpeer_t, cc, describe_addpeer);
    MB(mb_delpeer, "delpeer", p2p__msg_delpeer_t, cc, describe_delpeer);
    MB(mb_peerop, "peerop", p2p__msg_peerop_t, 64, describe_peerop);
    MB(mb_trusted, "trusted", p2p__msg_id_t, P2P__API_DRAIN, describe_id);
    MB(mb_events, "events", p2p_peer_event_t, 4096, describe_event);
    MB(mb_nodesin, "nodesin", p2p__msg_node_t, 64, describe_node);
    MB(mb_static, "static", p2p__msg_node_t, P2P__API_DRAIN, describe_node);
    /* per connection at most pending, then added or done, then removed */
    MB(mb_peerstate, "peerstate", p2p__msg_peerstate_t, 2 * cc, describe_peerstate);
    MB(mb_taskdone, "taskdone", p2p__msg_id_t, cc, describe_id);
    MB(mb_resolved, "resolved", p2p__msg_node_t, 2 * srv->max_active_dials + 16, describe_node);
    MB(mb_slots, "slots", p2p__msg_id_t, cc, describe_id);
#undef MB
    return rc;
}

static void free_server(p2p_server_t *srv)
{
    p2p_mailbox_t **all[] = {&srv->mb_conns,     &srv->mb_posthandshake, &srv->mb_addpeer,
                             &srv->mb_delpeer,   &srv->mb_peerop,        &srv->mb_trusted,
                             &srv->mb_events,    &srv->mb_nodesin,       &srv->mb_static,
                             &srv->mb_peerstate, &srv->mb_taskdone,      &srv->mb_resolved,
                             &srv->mb_slots};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        p2p_mailbox_destroy(*all[i]);
        *all[i] = NULL;
    }
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    p2p_checks_free(&srv->rl_checks);
    p2p_idmap_free(&srv->rl_peers);
    p2p_dialsched_free(&srv->dl_sched);
    p2p_inbound_free(&srv->ls_in);
    pthread_mutex_destroy(&srv->pool_lock);
    free(srv->bootnodes);
    free(srv->statics);
    free(srv->trusted);
    p2p_wipe(srv->priv, sizeof srv->priv);
    p2p_wipe(srv->cfg.priv, sizeof srv->cfg.priv);
    free(srv);
}

static void stop_thread(p2p_thread_t *t, bool *started)
{
    if (!*started) return;
    p2p_thread_request_quit(t);
    (void)p2p_thread_join(t, NULL);
    *started = false;
}

int p2p_server_start(p2p_server_t **out, const p2p_server_config_t *cfg)
{
    *out = NULL;
    if (!cfg) return P2P_EINVAL;
    p2p_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) return P2P_ENOMEM;
    pthread_mutex_init(&srv->pool_lock, NULL);
    srv->listen_fd = -1;
    int rc = setup_config(srv, cfg);
    if (!rc && cfg->listen_port >= 0) {
        if (cfg->listen_port > 65535)
            rc = P2P_EINVAL;
        else
            rc = open_listener(srv);
    }
    if (!rc) rc = make_hello(srv);
    if (!rc) rc = make_mailboxes(srv);
    /* the threads' state: an allocation failure is reported here, not met
     * by a thread that has no one to report it to */
    if (!rc) rc = p2p__run_setup(srv);
    if (!rc) rc = p2p__dial_setup(srv);
    if (!rc && srv->listen_fd >= 0) rc = p2p__listen_setup(srv);
    if (rc) {
        free_server(srv);
        return rc;
    }
    if (srv->cfg.no_discovery) p2p_mailbox_close(srv->mb_nodesin);
    /* the set sizes p2p_server_add_peer / _add_trusted judge "full" by,
     * as p2p-dial and p2p-run publish them once they run: a call made as
     * soon as we return finds a configured set at its limit full
     * (relaxed: gauges; the threads are created after this) */
    __atomic_store_n(&srv->stats.static_nodes, (uint64_t)srv->dl_sched.nstatic, __ATOMIC_RELAXED);
    __atomic_store_n(&srv->stats.trusted_nodes, (uint64_t)srv->rl_checks.trusted.n,
                     __ATOMIC_RELAXED);
    /* the dialer publishes its free slots after each pass; until then the
     * empty scheduler's value (relaxed: a hint) */
    unsigned slots = 2 * srv->max_dialed;
    atomic_store_explicit(&srv->dial_free,
                          slots < srv->max_active_dials ? slots : srv->max_active_dials,
                          memory_order_relaxed);
    rc = p2p_thread_spawn_ex(&srv->run, "p2p-run", 0, P2P_THREAD_SPIN_WAIT, p2p__run_main, srv);
    if (!rc) {
        srv->run_started = true;
        rc = p2p_thread_spawn_ex(&srv->dial, "p2p-dial", 0, P2P_THREAD_SPIN_WAIT, p2p__dial_main,
                                 srv);
    }
    if (!rc) {
        srv->dial_started = true;
        if (srv->listen_fd >= 0) {
            rc = p2p_thread_spawn_ex(&srv->listen, "p2p-listen", 0, P2P_THREAD_SPIN_WAIT,
                                     p2p__listen_main, srv);
            if (!rc) srv->listen_started = true;
        }
    }
    if (rc) {
        p2p_server_stop(srv);
        return rc;
    }
    p2p_node_t self;
    p2p_server_self(srv, &self);
    char url[P2P_ENODE_MAX_TEXT];
    if (p2p_enode_format(url, sizeof url, &self) == 0)
        P2P_INFO("Started P2P networking", "self=%s", url);
    *out = srv;
    return 0;
}

void p2p_server_stop(p2p_server_t *srv)
{
    if (!srv) return;
    /* From one of the server's own threads (a protocol or event callback)
     * the stop would wait for that thread to end, forever: the contract
     * forbids it, and a crash that names the mistake beats a silent hang. */
    p2p_thread_t *me = p2p_thread_self();
    if (p2p__on_conn_thread(srv) || me == &srv->run || me == &srv->dial || me == &srv->listen) {
        P2P_CRIT("p2p_server_stop called from a server thread (a callback?): it would wait for "
                 "itself; call it from the controlling thread",
                 "thread=%s", p2p_thread_current_name());
        abort();
    }
    uint64_t t0 = p2p_now_ns();
    /* seq_cst: read by threads deciding whether to start new work */
    atomic_store_explicit(&srv->stopping, 1, memory_order_seq_cst);
    p2p_mailbox_close(srv->mb_nodesin); /* the discovery hook */
    /* the listener and the dialer stop creating connections first ... */
    int creators = (int)srv->listen_started + (int)srv->dial_started;
    if (srv->listen_started) p2p_thread_request_quit(&srv->listen);
    if (srv->dial_started) p2p_thread_request_quit(&srv->dial);
    /* seq_cst: pairs with p2p__creator_exit's increment */
    while (atomic_load_explicit(&srv->creators_stopped, memory_order_seq_cst) < creators)
        usleep(200);
    /* ... then the run loop quits every connection and joins them all ... */
    stop_thread(&srv->run, &srv->run_started);
    /* ... and the creators, which waited for that, return */
    stop_thread(&srv->dial, &srv->dial_started);
    stop_thread(&srv->listen, &srv->listen_started);
    /* ... and the parked connection threads go */
    pool_close(srv);
    P2P_DEBUG("Stopped P2P networking", "ms=%llu",
              (unsigned long long)((p2p_now_ns() - t0) / P2P_NS_PER_MS));
    free_server(srv);
}
