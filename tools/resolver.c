/*
 * tools/resolver.c: static nodes resolved through discovery (see
 * resolver.h).
 */
#include "tools/resolver.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "crypto/util.h"

#define WORKER_QUEUE (RESOLVER_QUEUE / RESOLVER_LOOKUPS)

/* A request: the node, and how many nodes had been forgotten when it was
 * made (only forgets from there on drop it). */
typedef struct resolver_req {
    p2p_node_t node;
    uint64_t stamp;
} resolver_req_t;

/* One lookup thread: its mailbox of resolver_req_t (it is the only
 * consumer), its requests not yet answered. */
typedef struct resolver_worker {
    resolver_t *r;
    p2p_mailbox_t *mb;
    p2p_thread_t th;
    /* requests pushed and not yet answered: incremented by the hook (on
     * p2p-dial) before its push, decremented by the worker after the
     * answer.  Relaxed: it only picks the least loaded worker and bounds
     * the mailbox (never above WORKER_QUEUE, so a push finds room); the
     * request itself travels through the mailbox. */
    _Atomic unsigned load;
} resolver_worker_t;

struct resolver {
    resolver_worker_t w[RESOLVER_LOOKUPS];
    /* The last RESOLVER_FORGETS forgotten IDs (their first 8 bytes), a
     * ring written by resolver_forget's one caller: entry i (of all ever
     * written) in forgot[i % RESOLVER_FORGETS], then nforgot = i + 1 with
     * release; a worker loads nforgot with acquire (pairs with it) and
     * reads the entries below.  An entry overwritten meanwhile names a
     * later forget, which drops the request as well. */
    _Atomic uint64_t forgot[RESOLVER_FORGETS];
    _Atomic uint64_t nforgot;
    p2p_server_t *srv;
    p2p_discovery_t *disc;
    /* relaxed: statistics */
    _Atomic uint64_t requests, found, missed, refused, dropped;
};

static uint64_t id_key(const uint8_t id[32])
{
    uint64_t k;
    memcpy(&k, id, sizeof k);
    return k;
}

int resolver_new(resolver_t **out)
{
    *out = NULL;
    resolver_t *r = calloc(1, sizeof *r);
    if (!r) return P2P_ENOMEM;
    for (unsigned i = 0; i < RESOLVER_LOOKUPS; i++) {
        r->w[i].r = r;
        int rc =
            p2p_mailbox_create(&r->w[i].mb, "resolve", sizeof(resolver_req_t), WORKER_QUEUE, NULL);
        if (rc) {
            resolver_free(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

void resolver_hook(void *ctx, const p2p_node_t *node)
{
    resolver_t *r = ctx;
    atomic_fetch_add_explicit(&r->requests, 1, memory_order_relaxed);
    /* the least loaded worker; only this thread raises the loads, so one
     * below WORKER_QUEUE has room in its mailbox */
    resolver_worker_t *w = &r->w[0];
    unsigned least = atomic_load_explicit(&w->load, memory_order_relaxed);
    for (unsigned i = 1; i < RESOLVER_LOOKUPS; i++) {
        unsigned l = atomic_load_explicit(&r->w[i].load, memory_order_relaxed);
        if (l < least) least = l, w = &r->w[i];
    }
    if (least < WORKER_QUEUE) {
        /* acquire: pairs with resolver_forget's release; the forgets
         * made before this request are not for it */
        resolver_req_t req = {*node, atomic_load_explicit(&r->nforgot, memory_order_acquire)};
        atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed);
        if (p2p_mailbox_try_push(w->mb, &req, sizeof req) == 0) return;
        atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
    }
    /* full (or stopping): not found now; the dialer backs off and asks
     * again.  The hook runs on p2p-dial, which owns the server. */
    atomic_fetch_add_explicit(&r->refused, 1, memory_order_relaxed);
    /* acquire: pairs with the release in resolver_run; NULL before it
     * (the request is lost then: the dialer takes it as failed at its
     * resolve timeout, 60 s, and asks again after the backoff) */
    p2p_server_t *srv = __atomic_load_n(&r->srv, __ATOMIC_ACQUIRE);
    /* its mailbox holds an answer for every dial slot: never full */
    if (srv && p2p_server_resolved(srv, node->id, NULL) != 0) {
    }
}

void resolver_forget(resolver_t *r, const uint8_t id[32])
{
    /* relaxed: the one writer's own counter */
    uint64_t i = atomic_load_explicit(&r->nforgot, memory_order_relaxed);
    atomic_store_explicit(&r->forgot[i % RESOLVER_FORGETS], id_key(id), memory_order_relaxed);
    /* release: publishes the entry to the workers' acquire load */
    atomic_store_explicit(&r->nforgot, i + 1, memory_order_release);
}

void resolver_forget_hook(void *ctx, const uint8_t id[32])
{
    resolver_forget(ctx, id);
}

/* The node was forgotten after the request was made. */
static bool forgotten(resolver_t *r, const resolver_req_t *req)
{
    /* acquire: pairs with resolver_forget's release */
    uint64_t end = atomic_load_explicit(&r->nforgot, memory_order_acquire);
    uint64_t i = req->stamp, k = id_key(req->node.id);
    if (end - i > RESOLVER_FORGETS) i = end - RESOLVER_FORGETS; /* older ones overwritten */
    for (; i < end; i++)
        if (atomic_load_explicit(&r->forgot[i % RESOLVER_FORGETS], memory_order_relaxed) == k)
            return true;
    return false;
}

/* Answers a request (the dialer keeps a slot for the answer: it must get
 * one; its mailbox has room for an answer per slot; ECLOSED: stopping). */
static void answer(resolver_t *r, const uint8_t id[32], const p2p_node_t *found)
{
    for (int i = 0; i < 100 && p2p_server_resolved(r->srv, id, found) == P2P_EFULL; i++)
        usleep(10000);
}

/* One request: a lookup for the node's own key; the node is found if it
 * is among the results, with the address they give. */
static void resolve_one(resolver_t *r, p2p_thread_t *self, const p2p_node_t *want)
{
    p2p_node_t res[P2P_DISC_RESULT];
    unsigned n = 0;
    uint64_t deadline = p2p_now_ns() + (uint64_t)RESOLVER_LOOKUP_MS * P2P_NS_PER_MS;
    int rc = p2p_discovery_lookup(r->disc, res, &n, P2P_DISC_RESULT, want->pubkey, deadline);
    /* nobody to ask yet (a static node given at start, before the
     * bootnodes answered): once more after RESOLVER_RETRY_MS, not after
     * the dialer's 60 s backoff */
    if (rc == 0 && n == 0) {
        /* a sleep in steps (the waiter would not sleep while requests
         * wait in the mailbox), ended by a quit request */
        for (int i = 0; i < RESOLVER_RETRY_MS / 50 && !p2p_thread_should_quit(self); i++)
            usleep(50000);
        deadline = p2p_now_ns() + (uint64_t)RESOLVER_LOOKUP_MS * P2P_NS_PER_MS;
        rc = p2p_discovery_lookup(r->disc, res, &n, P2P_DISC_RESULT, want->pubkey, deadline);
    }
    const p2p_node_t *found = NULL;
    for (unsigned i = 0; rc == 0 && i < n && !found; i++)
        if (memcmp(res[i].id, want->id, 32) == 0 && res[i].ep.ip.family) found = &res[i];
    atomic_fetch_add_explicit(found ? &r->found : &r->missed, 1, memory_order_relaxed);
    char ip[P2P_IP_STRLEN];
    if (found)
        P2P_DEBUG("Resolved static node", "id=%02x%02x%02x%02x ip=%s tcp=%u", want->id[0],
                  want->id[1], want->id[2], want->id[3], p2p_ip_format(ip, &found->ep.ip),
                  found->ep.tcp);
    else
        P2P_DEBUG("Static node not found", "id=%02x%02x%02x%02x err=%s", want->id[0], want->id[1],
                  want->id[2], want->id[3], rc ? p2p_strerror(rc) : "not in results");
    answer(r, want->id, found);
}

static int run(p2p_thread_t *self, void *arg)
{
    resolver_worker_t *w = arg;
    if (p2p_mailbox_attach(w->mb, &self->waiter)) return P2P_ESTATE;
    while (!p2p_thread_should_quit(self)) {
        resolver_req_t req;
        if (p2p_mailbox_try_pop(w->mb, &req, sizeof req) == 0) {
            /* removed from the static set while it waited: no lookup, and
             * the dialer's slot freed at once */
            if (forgotten(w->r, &req)) {
                atomic_fetch_add_explicit(&w->r->dropped, 1, memory_order_relaxed);
                answer(w->r, req.node.id, NULL);
            } else {
                resolve_one(w->r, self, &req.node);
            }
            atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
            continue;
        }
        (void)p2p_waiter_wait(&self->waiter, P2P_DEADLINE_NEVER);
    }
    p2p_mailbox_detach(w->mb);
    return 0;
}

int resolver_run(resolver_t *r, p2p_server_t *srv, p2p_discovery_t *disc)
{
    r->disc = disc;
    /* the thread's start publishes srv and disc to it; the hook reads srv
     * only to answer a full queue, on p2p-dial: release/acquire there */
    __atomic_store_n(&r->srv, srv, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < RESOLVER_LOOKUPS; i++) {
        char name[16];
        snprintf(name, sizeof name, "p2p-resolve-%u", i);
        if (p2p_thread_spawn(&r->w[i].th, name, 0, run, &r->w[i])) {
            int e = errno;
            resolver_stop(r); /* the ones started */
            errno = e;
            return P2P_ESYS;
        }
    }
    return 0;
}

void resolver_stop(resolver_t *r)
{
    if (!r) return;
    /* all asked first: their lookups in progress end together */
    for (unsigned i = 0; i < RESOLVER_LOOKUPS; i++)
        if (r->w[i].th.started && !r->w[i].th.joined) p2p_thread_request_quit(&r->w[i].th);
    for (unsigned i = 0; i < RESOLVER_LOOKUPS; i++)
        if (r->w[i].th.started && !r->w[i].th.joined) (void)p2p_thread_join(&r->w[i].th, NULL);
}

void resolver_free(resolver_t *r)
{
    if (!r) return;
    resolver_stop(r);
    for (unsigned i = 0; i < RESOLVER_LOOKUPS; i++) p2p_mailbox_destroy(r->w[i].mb);
    free(r);
}

void resolver_get_stats(const resolver_t *r, resolver_stats_t *out)
{
    out->requests = atomic_load_explicit(&r->requests, memory_order_relaxed);
    out->found = atomic_load_explicit(&r->found, memory_order_relaxed);
    out->missed = atomic_load_explicit(&r->missed, memory_order_relaxed);
    out->refused = atomic_load_explicit(&r->refused, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&r->dropped, memory_order_relaxed);
}
