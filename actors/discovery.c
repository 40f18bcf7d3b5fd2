/*
 * actors/discovery.c: the discovery service's API and its table thread
 * (p2p-disc).  See discovery.h for the threads and mailboxes; the reader
 * thread is in disc_udp.c.
 *
 * p2p-disc loop (bounded work per wake-up):
 *   1. pop up to P2P_DISCOVERY_BATCH verified packets and hand each to the
 *      core (p2p__disc_deliver: p2p_disc_handle, and an answered request
 *      enters its replay cache and every reader's `answered`); the core's
 *      replies are encoded and signed into the send queue (io.send) and
 *      leave in one sendmmsg; a record re-signed inside a core event (a
 *      new endpoint voted in) is handed to the core after each call
 *      (p2p__disc_apply_record), never from inside the callback;
 *   2. pop up to P2P_DISCOVERY_BATCH requests (info, lookup, candidate
 *      switch, add node);
 *   3. fire due timers: the core's deadline (p2p_disc_tick) and the hourly
 *      node DB expiry, which starts a pass run one step of at most
 *      P2P_DISCOVERY_EXPIRE_KEYS keys per wake-up (no sleep until it ends);
 *   4. hand the core's candidates to on_candidate, flush the send queue;
 *   5. sleep on the waiter until a mailbox has work, the earliest timer, or
 *      a quit request (no sleep while a batch came back full).
 *
 * Calls that want an answer (info, lookup) carry a p2p__disc_call_t: a
 * reference-counted object with its own one-slot `discreply` mailbox and
 * waiter.  The caller waits on that waiter until its deadline; p2p-disc
 * writes the answer into the call (never into the caller's memory, which a
 * caller that timed out no longer owns), pushes the result code and drops
 * its reference.  The last reference frees the call.
 *
 * Time: the core gets {clock now_ns, clock wall_ms / 1000}; the sleep is
 * computed relative to the clock and waited on the real monotonic clock.
 */
#include "actors/discovery.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/disc_int.h"
#include "core/log.h"
#include "crypto/secp.h"
#include "crypto/util.h"

#define IGNORE_RC(expr)                                                                            \
    do {                                                                                           \
        if (expr) {                                                                                \
        }                                                                                          \
    } while (0)

enum { TK_CORE = 1, TK_EXPIRE = 2 };

enum { REQ_INFO = 1, REQ_LOOKUP = 2, REQ_WANT = 3, REQ_ADD = 4 };

struct p2p__disc_call {
    /* references: the caller's and p2p-disc's.  acq_rel on the decrement:
     * the last owner must see every write of the other before freeing. */
    _Atomic int refs;
    p2p_waiter_t w;
    p2p_mailbox_t *reply; /* one int: the result code */
    int kind;
    uint8_t target[64];
    unsigned cap, n;
    p2p_node_t nodes[P2P_DISC_RESULT];
    p2p_discovery_info_t *info;
};

typedef struct disc_req_msg {
    int kind;
    bool on;
    p2p_node_t node;
    p2p__disc_call_t *call;
} disc_req_msg_t;

/* ---- calls ---- */

static void call_unref(p2p__disc_call_t *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) return;
    p2p_mailbox_destroy(c->reply);
    p2p_waiter_destroy(&c->w);
    free(c->info);
    free(c);
}

static int call_new(p2p__disc_call_t **out, int kind)
{
    *out = NULL;
    p2p__disc_call_t *c = calloc(1, sizeof *c);
    if (!c) return P2P_ENOMEM;
    c->kind = kind;
    if (kind == REQ_INFO && !(c->info = calloc(1, sizeof *c->info))) {
        free(c);
        return P2P_ENOMEM;
    }
    if (p2p_waiter_init(&c->w) != 0) {
        free(c->info);
        free(c);
        return P2P_ESYS;
    }
    int rc = p2p_mailbox_create(&c->reply, "discreply", sizeof(int), 2, NULL);
    if (rc == 0) rc = p2p_mailbox_attach(c->reply, &c->w);
    if (rc) {
        p2p_mailbox_destroy(c->reply);
        p2p_waiter_destroy(&c->w);
        free(c->info);
        free(c);
        return rc;
    }
    atomic_init(&c->refs, 2);
    *out = c;
    return 0;
}

/* p2p-disc: answers and drops the thread's reference. */
static void call_answer(p2p__disc_call_t *c, int rc)
{
    /* a two-slot mailbox that only ever gets this one message: cannot fail */
    IGNORE_RC(p2p_mailbox_try_push(c->reply, &rc, sizeof rc));
    call_unref(c);
}

/* Caller: sends the call, waits for the answer.  Returns the answer's code,
 * P2P_ETIMEDOUT or P2P_ECLOSED.  Drops the caller's reference unless it
 * returns 0 (then the caller reads the call and drops it). */
static int call_run(p2p_discovery_t *d, p2p__disc_call_t *c, uint64_t deadline_ns)
{
    disc_req_msg_t m;
    memset(&m, 0, sizeof m);
    m.kind = c->kind;
    m.call = c;
    int rc = p2p_mailbox_push(d->requests, &m, sizeof m, deadline_ns);
    if (rc) {
        call_unref(c);
        call_unref(c); /* p2p-disc never saw it */
        return rc;
    }
    int ans;
    for (;;) {
        if (p2p_mailbox_try_pop(c->reply, &ans, sizeof ans) == 0) break;
        if (p2p_waiter_wait(&c->w, deadline_ns) == P2P_ETIMEDOUT &&
            p2p_mailbox_try_pop(c->reply, &ans, sizeof ans) != 0) {
            call_unref(c);
            return P2P_ETIMEDOUT;
        }
    }
    if (ans) call_unref(c);
    return ans;
}

/* ---- time ---- */

static p2p_disc_time_t disc_now(const p2p_discovery_t *d)
{
    p2p_disc_time_t t = {.ns = p2p_clock_now(d->clock),
                         .unix_s = p2p_clock_wall_ms(d->clock) / 1000};
    return t;
}

/* ---- node database adapters ---- */

static int ndb_last_ping(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_nodedb_last_ping(((p2p_discovery_t *)ctx)->ndb, t, id, ip);
}
static int ndb_set_last_ping(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return p2p_nodedb_set_last_ping(((p2p_discovery_t *)ctx)->ndb, id, ip, t);
}
static int ndb_last_pong(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_nodedb_last_pong(((p2p_discovery_t *)ctx)->ndb, t, id, ip);
}
static int ndb_set_last_pong(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return p2p_nodedb_set_last_pong(((p2p_discovery_t *)ctx)->ndb, id, ip, t);
}
static int ndb_findfails(void *ctx, uint32_t *f, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_nodedb_findfails(((p2p_discovery_t *)ctx)->ndb, f, id, ip);
}
static int ndb_set_findfails(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint32_t f)
{
    return p2p_nodedb_set_findfails(((p2p_discovery_t *)ctx)->ndb, id, ip, f);
}
static int ndb_put_node(void *ctx, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    return p2p_nodedb_put_node(((p2p_discovery_t *)ctx)->ndb, n, enr, enrlen);
}
static int ndb_query_seeds(void *ctx, p2p_node_t *out, size_t *nout, size_t n, uint64_t max_age,
                           uint64_t now)
{
    return p2p_nodedb_query_seeds(((p2p_discovery_t *)ctx)->ndb, out, nout, n, max_age, now);
}

static int mdb_last_ping(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_memdb_last_ping(((p2p_discovery_t *)ctx)->mdb, t, id, ip);
}
static int mdb_set_last_ping(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return p2p_memdb_set_last_ping(((p2p_discovery_t *)ctx)->mdb, id, ip, t);
}
static int mdb_last_pong(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_memdb_last_pong(((p2p_discovery_t *)ctx)->mdb, t, id, ip);
}
static int mdb_set_last_pong(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return p2p_memdb_set_last_pong(((p2p_discovery_t *)ctx)->mdb, id, ip, t);
}
static int mdb_findfails(void *ctx, uint32_t *f, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_memdb_findfails(((p2p_discovery_t *)ctx)->mdb, f, id, ip);
}
static int mdb_set_findfails(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint32_t f)
{
    return p2p_memdb_set_findfails(((p2p_discovery_t *)ctx)->mdb, id, ip, f);
}
static int mdb_put_node(void *ctx, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    (void)enr;
    (void)enrlen;
    return p2p_memdb_put_node(((p2p_discovery_t *)ctx)->mdb, n);
}
static int mdb_query_seeds(void *ctx, p2p_node_t *out, size_t *nout, size_t n, uint64_t max_age,
                           uint64_t now)
{
    return p2p_memdb_query_seeds(((p2p_discovery_t *)ctx)->mdb, out, nout, n, max_age, now);
}

/* ---- sending (p2p-disc) ---- */

static socklen_t disc_sockaddr(const p2p_discovery_t *d, struct sockaddr_storage *ss,
                               const p2p_endpoint_t *to)
{
    /* a socket bound to one IPv6 address cannot send to IPv4 (the kernel
     * says ENETUNREACH for ::ffff:a.b.c.d): refused here, for its address */
    if (d->v6only && to->ip.family != 6) return 0;
    return p2p_ip_to_sockaddr_af(ss, &to->ip, to->udp, d->family);
}

static void tx_flush(p2p_discovery_t *d)
{
    unsigned i = 0;
    while (i < d->ntx) {
        int n = sendmmsg(d->fd, d->txm + i, d->ntx - i, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            /* the datagram at i was refused: count it, go on with the rest */
            int err = errno;
            P2P__DISC_CTR(d, tx_errors);
            p2p_ip_t ip = {0};
            uint16_t port = 0;
            char ips[P2P_IP_PORT_STRLEN];
            if (p2p_ip_from_sockaddr(&ip, &port, d->txm[i].msg_hdr.msg_name) != 0) ip.family = 0;
            P2P_LOG_RL(1, 10000, P2P_LOG_WARN, "Discovery UDP send failed", "err=\"%s\" to=%s",
                       strerror(err), p2p_ip_port_format(ips, &ip, port));
            i++;
            continue;
        }
        for (int k = 0; k < n; k++) {
            P2P__DISC_CTR(d, tx_packets);
            P2P__DISC_CTR_ADD(d, tx_bytes, d->txm[i + (unsigned)k].msg_len);
        }
        i += (unsigned)n;
    }
    d->ntx = 0;
}

static int io_send(void *ctx, uint8_t hash[32], const p2p_endpoint_t *to,
                   const p2p_discv4_packet_t *pkt)
{
    p2p_discovery_t *d = ctx;
    if (d->ntx == P2P_DISCOVERY_TX_BATCH) tx_flush(d);
    unsigned i = d->ntx;
    socklen_t sl = disc_sockaddr(d, &d->txaddr[i], to);
    /* not a socket failure: the core counts the refusal (its tx_errors,
     * reval_unreachable), the socket never saw a packet */
    if (sl == 0 || to->udp == 0) return P2P_EUNSUPPORTED;
    size_t len;
    int rc = p2p_discv4_encode(d->txbuf[i], &len, hash, pkt, d->priv);
    if (rc) {
        P2P__DISC_CTR(d, tx_encode_errors);
        return rc;
    }
    memset(&d->txm[i], 0, sizeof d->txm[i]);
    d->txv[i].iov_base = d->txbuf[i];
    d->txv[i].iov_len = len;
    d->txm[i].msg_hdr.msg_iov = &d->txv[i];
    d->txm[i].msg_hdr.msg_iovlen = 1;
    d->txm[i].msg_hdr.msg_name = &d->txaddr[i];
    d->txm[i].msg_hdr.msg_namelen = sl;
    d->ntx++;
    return 0;
}

/* ---- our record and endpoint (p2p-disc, and start before the threads) ---- */

static uint64_t disc_local_seq(p2p_discovery_t *d)
{
    uint64_t s = 0;
    if (d->ndb && p2p_nodedb_local_seq(d->ndb, &s, d->self.id) != 0) {
        P2P__DISC_CTR(d, db_errors);
        s = 0;
    }
    return s;
}

static void disc_store_seq(p2p_discovery_t *d, uint64_t seq)
{
    if (d->ndb && p2p_nodedb_set_local_seq(d->ndb, d->self.id, seq) != 0)
        P2P__DISC_CTR(d, db_errors);
}

/* Sets ep's IP, UDP and (if tcp) TCP port in r under the keys of its
 * family (ip/udp/tcp or ip6/udp6/tcp6). */
static int enr_set_endpoint(p2p_enr_t *r, const p2p_endpoint_t *ep, uint16_t tcp)
{
    bool v6 = ep->ip.family == 6;
    int rc = p2p_enr_set_ip(r, &ep->ip);
    if (rc == 0) rc = p2p_enr_set_port(r, v6 ? "udp6" : "udp", ep->udp);
    if (rc == 0 && tcp) rc = p2p_enr_set_port(r, v6 ? "tcp6" : "tcp", tcp);
    return rc;
}

/* Builds and signs our record for d->ep (and d->ep_alt, the other family's
 * endpoint, when a dual-stack socket learnt one) with sequence number seq. */
static int disc_sign(p2p_discovery_t *d, uint64_t seq)
{
    p2p_enr_t r;
    p2p_enr_init(&r);
    p2p_enr_set_seq(&r, seq);
    int rc = enr_set_endpoint(&r, &d->ep, d->ep.tcp);
    if (rc == 0 && d->ep_alt.ip.family) rc = enr_set_endpoint(&r, &d->ep_alt, d->ep.tcp);
    if (rc == 0) rc = p2p_enr_sign(&r, d->priv);
    if (rc) return rc;
    d->record = r;
    d->self.seq = seq;
    return 0;
}

static bool ep_same(const p2p_endpoint_t *a, const p2p_endpoint_t *b)
{
    return p2p_ip_equal(&a->ip, &b->ip) && a->udp == b->udp;
}

/* An endpoint statement from a pong of a node we pinged at reporter (the
 * core sends only those): adopt an endpoint once votes_needed distinct
 * networks reported it within the window.  The endpoint's family picks
 * what it may move: d->ep for its own family, d->ep_alt for the other one
 * on a dual-stack socket (the record then names both, as a node on :: has
 * an IPv4 and an IPv6 address), nothing for a family our socket cannot
 * reach, and nothing for the family of a static announce_ip. */
static void disc_vote(p2p_discovery_t *d, const p2p_ip_t *reporter, const p2p_endpoint_t *ep,
                      uint64_t now_ns)
{
    if (!d->predict || (ep->ip.family != 4 && ep->ip.family != 6) || ep->udp == 0 ||
        p2p_ip_is_unspecified(&ep->ip) || p2p_ip_is_special(&ep->ip))
        return;
    bool alt = ep->ip.family != d->ep.ip.family;
    if (alt && (d->family != AF_INET6 || d->v6only)) return;
    if (!alt && d->ep_static) return; /* a static IP: its family's endpoint stays */
    p2p_endpoint_t *cur = alt ? &d->ep_alt : &d->ep;
    P2P__DISC_CTR(d, endpoint_votes);
    /* many keys (or addresses) on one network are one vote */
    p2p_ip_t net = p2p_ip_net(reporter);
    unsigned slot = 0;
    for (unsigned i = 0; i < P2P_DISCOVERY_VOTERS; i++) {
        if (d->votes[i].ns && p2p_ip_equal(&d->votes[i].net, &net)) {
            slot = i;
            break;
        }
        if (d->votes[i].ns < d->votes[slot].ns) slot = i;
    }
    d->votes[slot].net = net;
    d->votes[slot].ep = *ep;
    d->votes[slot].ns = now_ns;
    if (ep_same(ep, cur)) return;
    unsigned n = 0;
    for (unsigned i = 0; i < P2P_DISCOVERY_VOTERS; i++)
        if (d->votes[i].ns && now_ns - d->votes[i].ns <= P2P_DISCOVERY_VOTE_WINDOW_NS &&
            ep_same(&d->votes[i].ep, ep))
            n++;
    if (n < d->votes_needed) return;
    p2p_endpoint_t old = *cur;
    cur->ip = ep->ip;
    cur->udp = ep->udp;
    uint64_t seq = d->self.seq + 1;
    if (disc_sign(d, seq) != 0) {
        *cur = old;
        return;
    }
    disc_store_seq(d, seq);
    d->self.ep = d->ep;
    /* We are inside the core's event callback: the core gets the new
     * record once the call that emitted the event returns
     * (p2p__disc_apply_record). */
    d->record_pending = true;
    P2P__DISC_CTR(d, endpoint_changes);
    char ip[P2P_IP_STRLEN];
    P2P_INFO("Discovery endpoint changed", "ip=%s udp=%u seq=%llu", p2p_ip_format(ip, &cur->ip),
             cur->udp, (unsigned long long)seq);
}

void p2p__disc_apply_record(p2p_discovery_t *d)
{
    if (!d->record_pending) return;
    d->record_pending = false;
    p2p_disc_set_record(d->core, &d->record);
    p2p_disc_set_endpoint(d->core, &d->ep);
}

/* ---- core events (p2p-disc) ---- */

static void lookup_answer(p2p__disc_call_t *c, const p2p_node_t *nodes, unsigned n)
{
    if (n > c->cap) n = c->cap;
    memcpy(c->nodes, nodes, n * sizeof nodes[0]);
    c->n = n;
    call_answer(c, 0);
}

/* One line for a table change (debug: removals; trace: additions and
 * newer records), as geth's "Removed dead node" and "Adding node to
 * bucket"; dist is the log distance from us. */
static void log_node(const p2p_discovery_t *d, int level, const char *msg, const p2p_node_t *n)
{
    if (!p2p_log_enabled(level)) return;
    char ip[P2P_IP_STRLEN];
    p2p_log_write(level, msg, " id=%02x%02x%02x%02x dist=%d ip=%s udp=%u seq=%llu", n->id[0],
                  n->id[1], n->id[2], n->id[3], p2p_kad_logdist(d->self.id, n->id),
                  p2p_ip_format(ip, &n->ep.ip), n->ep.udp, (unsigned long long)n->seq);
}

static void io_event(void *ctx, const p2p_disc_event_t *ev)
{
    p2p_discovery_t *d = ctx;
    switch (ev->kind) {
    case P2P_DISC_EV_NODE_ADDED:
        log_node(d, P2P_LOG_TRACE, "Added node to the discovery table", &ev->node);
        break;
    case P2P_DISC_EV_NODE_REMOVED:
        log_node(d, P2P_LOG_DEBUG, "Removed node from the discovery table", &ev->node);
        break;
    case P2P_DISC_EV_RECORD:
        log_node(d, P2P_LOG_TRACE, "Updated node record", &ev->node);
        break;
    case P2P_DISC_EV_LOOKUP_DONE:
        P2P_TRACELOG("Discovery lookup done", "lookup=%u results=%u", ev->lookup, ev->n);
        for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++) {
            if (d->lk[i].handle != ev->lookup) continue;
            lookup_answer(d->lk[i].call, ev->nodes, ev->n);
            d->lk[i].handle = 0;
            d->lk[i].call = NULL;
            return;
        }
        if (d->starting && d->nearly < P2P_DISC_MAX_LOOKUPS) {
            unsigned k = d->nearly++, n = ev->n < P2P_DISC_RESULT ? ev->n : P2P_DISC_RESULT;
            d->early[k].handle = ev->lookup;
            d->early[k].n = n;
            memcpy(d->early[k].nodes, ev->nodes, n * sizeof ev->nodes[0]);
        }
        break;
    case P2P_DISC_EV_ENDPOINT:
        disc_vote(d, &ev->node.ep.ip, &ev->endpoint, p2p_clock_now(d->clock));
        break;
    default:
        break;
    }
}

/* ---- requests (p2p-disc) ---- */

static void fill_info(p2p_discovery_t *d, p2p_discovery_info_t *in)
{
    in->self = d->self;
    in->record = d->record;
    in->table_len = p2p_kad_len(p2p_disc_table(d->core));
    in->pending = p2p_disc_pending(d->core);
    in->lookups = p2p_disc_lookups_running(d->core);
    in->candidates_queued = p2p_disc_candidates_len(d->core);
    in->init_done = p2p_disc_init_done(d->core);
    p2p__disc_sync_drops(d);
#define P2P__DISC_SNAP(name, desc)                                                                 \
    in->shell.name = atomic_load_explicit(&d->ctr.name, memory_order_relaxed);
    P2P_DISCOVERY_COUNTERS(P2P__DISC_SNAP)
#undef P2P__DISC_SNAP
    in->core = *p2p_disc_counters(d->core);
    p2p_mailbox_get_stats(d->packets, &in->packets);
    memcpy(in->buckets, p2p_disc_table(d->core)->b, sizeof in->buckets);
}

static void handle_request(p2p_discovery_t *d, disc_req_msg_t *m)
{
    p2p_disc_time_t now = disc_now(d);
    switch (m->kind) {
    case REQ_INFO:
        fill_info(d, m->call->info);
        call_answer(m->call, 0);
        break;
    case REQ_LOOKUP: {
        unsigned slot = P2P_DISC_MAX_LOOKUPS;
        for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++)
            if (d->lk[i].handle == 0) slot = i;
        uint32_t h = 0;
        int rc = P2P_ELIMIT;
        d->starting = true;
        d->nearly = 0;
        if (slot < P2P_DISC_MAX_LOOKUPS) rc = p2p_disc_lookup(d->core, &h, m->call->target, now);
        d->starting = false;
        if (rc) {
            call_answer(m->call, rc);
            break;
        }
        for (unsigned i = 0; i < d->nearly; i++)
            if (d->early[i].handle == h) {
                lookup_answer(m->call, d->early[i].nodes, d->early[i].n);
                return;
            }
        d->lk[slot].handle = h;
        d->lk[slot].call = m->call;
        break;
    }
    case REQ_WANT:
        p2p_disc_want_candidates(d->core, m->on && d->on_candidate);
        break;
    case REQ_ADD:
        (void)p2p_disc_add_node(d->core, &m->node, now);
        break;
    default:
        if (m->call) call_answer(m->call, P2P_EINVAL);
        break;
    }
}

/* ---- the table thread ---- */

/* Adds what the node DB counted since the last call (wipes, recoveries,
 * expired addresses happen inside its calls) to the shell counters. */
static void sync_db_stats(p2p_discovery_t *d)
{
    if (!d->ndb) return;
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(d->ndb, &st);
    P2P__DISC_CTR_ADD(d, db_wipes, st.wipes - d->ndb_seen.wipes);
    P2P__DISC_CTR_ADD(d, db_recoveries, st.recoveries - d->ndb_seen.recoveries);
    P2P__DISC_CTR_ADD(d, db_ips_expired, st.ips_expired - d->ndb_seen.ips_expired);
    P2P__DISC_CTR_ADD(d, db_lsn_resets, st.lsn_resets - d->ndb_seen.lsn_resets);
    d->ndb_seen = st;
}

static void run_timers(p2p_discovery_t *d)
{
    p2p_timer_t t;
    p2p_disc_time_t now = disc_now(d);
    while (p2p_timers_pop_due(&d->timers, &t, now.ns) == 0) {
        if (t.kind == TK_CORE) {
            d->core_timer = 0;
            p2p_disc_tick(d->core, now);
            p2p__disc_apply_record(d);
            sync_db_stats(d);
        } else if (t.kind == TK_EXPIRE) {
            /* a pass of steps, one per wake-up (expire_step) */
            if (d->ndb && !d->expiring) {
                d->expiring = true;
                p2p_nodedb_expire_begin(&d->xst, now.unix_s);
            }
            if (!d->ndb) P2P__DISC_CTR(d, db_expire_runs);
            IGNORE_RC(
                p2p_timers_add(&d->timers, NULL, now.ns + P2P_DISCOVERY_EXPIRE_NS, TK_EXPIRE, 0));
        }
    }
}

/* One bounded step of a running node DB expiry pass. */
static void expire_step(p2p_discovery_t *d)
{
    if (!d->expiring) return;
    size_t del = 0;
    if (p2p_nodedb_expire_step(d->ndb, &d->xst, P2P_DISCOVERY_EXPIRE_KEYS, &del) != 0) {
        P2P__DISC_CTR(d, db_errors);
        d->expiring = false; /* retried at the next hourly pass */
        return;
    }
    P2P__DISC_CTR_ADD(d, db_expired, del);
    sync_db_stats(d);
    if (!d->xst.done) return;
    d->expiring = false;
    P2P__DISC_CTR(d, db_expire_runs);
}

/* Keeps one timer at the core's deadline. */
static void sync_core_timer(p2p_discovery_t *d)
{
    uint64_t dl = p2p_disc_deadline(d->core);
    if (d->core_timer && dl == d->core_timer_ns) return;
    if (d->core_timer) (void)p2p_timers_cancel(&d->timers, d->core_timer);
    d->core_timer = 0;
    if (dl == UINT64_MAX) return;
    if (p2p_timers_add(&d->timers, &d->core_timer, dl, TK_CORE, 0) == 0) d->core_timer_ns = dl;
}

static void deliver_candidates(p2p_discovery_t *d)
{
    if (!d->on_candidate) return;
    p2p_node_t c[16];
    unsigned n;
    while ((n = p2p_disc_candidates_pop(d->core, c, 16)) > 0)
        for (unsigned i = 0; i < n; i++) {
            P2P__DISC_CTR(d, candidates);
            d->on_candidate(d->candidate_ctx, &c[i]);
        }
}

static int disc_run(p2p_thread_t *self, void *arg)
{
    p2p_discovery_t *d = arg;
    if (p2p_mailbox_attach(d->packets, &self->waiter) != 0 ||
        p2p_mailbox_attach(d->requests, &self->waiter) != 0) {
        P2P_CRIT("Discovery cannot attach its mailboxes", "%s", "");
        abort();
    }
    p2p_disc_tick(d->core, disc_now(d));
    while (!p2p_thread_should_quit(self)) {
        size_t np = p2p_mailbox_pop_batch(d->packets, d->rx, sizeof d->rx);
        if (np) {
            p2p_disc_time_t now = disc_now(d);
            for (size_t i = 0; i < np; i++) (void)p2p__disc_deliver(d, &d->rx[i], now);
            tx_flush(d);
        }
        disc_req_msg_t reqs[8];
        size_t nr = 0, got;
        for (unsigned k = 0; k < P2P_DISCOVERY_BATCH / 8; k++) {
            got = p2p_mailbox_pop_batch(d->requests, reqs, sizeof reqs);
            for (size_t i = 0; i < got; i++) {
                handle_request(d, &reqs[i]);
                p2p__disc_apply_record(d);
            }
            nr += got;
            if (got < 8) break;
        }
        run_timers(d);
        expire_step(d);
        deliver_candidates(d);
        sync_core_timer(d);
        tx_flush(d);
        if (np == P2P_DISCOVERY_BATCH || nr == P2P_DISCOVERY_BATCH || d->expiring) continue;
        uint64_t next = p2p_timers_next(&d->timers), wait = P2P_DEADLINE_NEVER;
        if (next != P2P_DEADLINE_NEVER) {
            uint64_t now = p2p_clock_now(d->clock);
            uint64_t rel = next > now ? next - now : 0;
            wait = p2p_now_ns() + rel;
        }
        (void)p2p_waiter_wait(&self->waiter, wait);
    }
    /* Shutdown: refuse new requests, answer the queued and pending ones. */
    p2p_mailbox_close(d->requests);
    disc_req_msg_t m;
    while (p2p_mailbox_try_pop(d->requests, &m, sizeof m) == 0)
        if (m.call) call_answer(m.call, P2P_ECLOSED);
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++)
        if (d->lk[i].handle) {
            call_answer(d->lk[i].call, P2P_ECLOSED);
            d->lk[i].handle = 0;
        }
    tx_flush(d);
    return 0;
}

/* ---- start / stop ---- */

__attribute__((format(printf, 4, 5))) static int fail(char *msg, size_t msglen, int rc,
                                                      const char *fmt, ...)
{
    if (msg && msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int open_socket(p2p_discovery_t *d, char *msg, size_t msglen,
                       const p2p_discovery_config_t *cfg)
{
    p2p_ip_t lip = cfg->listen_ip;
    if (lip.family == 0) lip = p2p_ip4(0, 0, 0, 0);
    d->family = lip.family == 6 ? AF_INET6 : AF_INET;
    d->v6only = lip.family == 6 && !p2p_ip_is_unspecified(&lip);
    d->fd = socket(d->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0) return fail(msg, msglen, P2P_ESYS, "discovery: socket: %s", strerror(errno));
    if (d->family == AF_INET6) {
        int off = 0;
        (void)setsockopt(d->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    int buf = 4 << 20;
    (void)setsockopt(d->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(d->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lip, cfg->listen_port);
    if (sl == 0) return fail(msg, msglen, P2P_EINVAL, "discovery: bad listen address");
    if (bind(d->fd, (struct sockaddr *)&ss, sl) != 0)
        return fail(msg, msglen, P2P_ESYS, "discovery: bind: %s", strerror(errno));
    sl = sizeof ss;
    if (getsockname(d->fd, (struct sockaddr *)&ss, &sl) != 0)
        return fail(msg, msglen, P2P_ESYS, "discovery: getsockname: %s", strerror(errno));
    p2p_ip_t bound;
    if (p2p_ip_from_sockaddr(&bound, &d->port, (struct sockaddr *)&ss) != 0)
        return fail(msg, msglen, P2P_ESYS, "discovery: bound address unknown");
    return 0;
}

int p2p_discovery_start(p2p_discovery_t **out, char *msg, size_t msglen,
                        const p2p_discovery_config_t *cfg)
{
    *out = NULL;
    if (msg && msglen) msg[0] = 0;
    if (cfg->nbootnodes > P2P_DISC_MAX_BOOTNODES || cfg->readers > P2P_DISCOVERY_READERS_MAX)
        return fail(msg, msglen, P2P_EINVAL, "discovery: %s", "too many bootnodes or readers");
    p2p_discovery_t *d = calloc(1, sizeof *d);
    if (!d) return fail(msg, msglen, P2P_ENOMEM, "discovery: %s", p2p_strerror(P2P_ENOMEM));
    d->fd = -1;
    d->clock = cfg->clock ? cfg->clock : p2p_clock_real();
    p2p__disc_seen_init(&d->seen);
    memcpy(d->priv, cfg->priv, 32);
    int rc = p2p_secp_pubkey(d->self.pubkey, d->priv);
    if (rc) {
        rc = fail(msg, msglen, P2P_EBADKEY, "discovery: %s", "invalid node key");
        goto err;
    }
    p2p_node_id(d->self.id, d->self.pubkey);
    d->on_candidate = cfg->on_candidate;
    d->candidate_ctx = cfg->candidate_ctx;
    d->predict = cfg->predict_endpoint;
    d->ep_static = cfg->announce_static && cfg->announce_ip.family != 0;
    d->votes_needed = cfg->endpoint_votes ? cfg->endpoint_votes : P2P_DISCOVERY_VOTES;
    uint64_t seed = cfg->seed;
    while (seed == 0)
        if (p2p_random((uint8_t *)&seed, sizeof seed) != 0) {
            rc = fail(msg, msglen, P2P_ECRYPTO, "discovery: %s", "no randomness");
            goto err;
        }

    /* node database */
    if (cfg->datadir) {
        char why[256] = "";
        rc = p2p_nodedb_open(&d->ndb, why, sizeof why, cfg->datadir, 0);
        if (rc) {
            rc = fail(msg, msglen, rc, "discovery: %s", why); /* why: "node database: ..." */
            goto err;
        }
    } else {
        rc = p2p_memdb_new(&d->mdb, P2P_DISCOVERY_MEMDB_ITEMS, P2P_DISCOVERY_MEMDB_NODES,
                           seed ^ 0x5bd1e995u);
        if (rc) goto err;
    }

    rc = open_socket(d, msg, msglen, cfg);
    if (rc) goto err;

    /* our endpoint and record */
    d->ep.ip = p2p_ip_advertised(&cfg->announce_ip, &cfg->listen_ip);
    d->ep.udp = d->port;
    d->ep.tcp = cfg->tcp_port;
    d->self.ep = d->ep;
    uint64_t seq = disc_local_seq(d);
    seq = seq ? seq + 1 : p2p_clock_wall_ms(d->clock);
    rc = disc_sign(d, seq);
    if (rc) {
        rc = fail(msg, msglen, rc, "discovery: cannot sign the local record: %s", p2p_strerror(rc));
        goto err;
    }
    disc_store_seq(d, seq);
    d->started = d->self;

    p2p_disc_config_t cc;
    memset(&cc, 0, sizeof cc);
    memcpy(cc.pubkey, d->self.pubkey, 64);
    cc.endpoint = d->ep;
    cc.record = &d->record;
    cc.bootnodes = cfg->bootnodes;
    cc.nbootnodes = (unsigned)cfg->nbootnodes;
    cc.netrestrict = cfg->netrestrict;
    cc.ipv4_only = d->family == AF_INET;
    cc.ipv6_only = d->v6only;
    cc.seed = seed;
    cc.io.ctx = d;
    cc.io.send = io_send;
    cc.io.event = io_event;
    cc.db.ctx = d;
    if (d->ndb) {
        cc.db.last_ping = ndb_last_ping, cc.db.set_last_ping = ndb_set_last_ping;
        cc.db.last_pong = ndb_last_pong, cc.db.set_last_pong = ndb_set_last_pong;
        cc.db.findfails = ndb_findfails, cc.db.set_findfails = ndb_set_findfails;
        cc.db.put_node = ndb_put_node, cc.db.query_seeds = ndb_query_seeds;
    } else {
        cc.db.last_ping = mdb_last_ping, cc.db.set_last_ping = mdb_set_last_ping;
        cc.db.last_pong = mdb_last_pong, cc.db.set_last_pong = mdb_set_last_pong;
        cc.db.findfails = mdb_findfails, cc.db.set_findfails = mdb_set_findfails;
        cc.db.put_node = mdb_put_node, cc.db.query_seeds = mdb_query_seeds;
    }
    rc = p2p_disc_new(&d->core, &cc);
    if (rc) {
        rc = fail(msg, msglen, rc, "discovery: core: %s", p2p_strerror(rc));
        goto err;
    }
    if (d->on_candidate) p2p_disc_want_candidates(d->core, true);

    rc = p2p_timers_init(&d->timers, 8);
    if (rc) goto err;
    rc = p2p_timers_add(&d->timers, NULL, p2p_clock_now(d->clock) + P2P_DISCOVERY_EXPIRE_NS,
                        TK_EXPIRE, 0);
    if (rc) goto err;

    rc = p2p_mailbox_create(&d->packets, "packets", sizeof(p2p__disc_pkt_msg_t),
                            cfg->queue ? cfg->queue : P2P_DISCOVERY_QUEUE, NULL);
    if (rc == 0)
        rc = p2p_mailbox_create(&d->requests, "discrequests", sizeof(disc_req_msg_t),
                                P2P_DISCOVERY_REQUESTS, NULL);
    if (rc) goto err;

    /* The readers and their `answered` mailboxes exist before p2p-disc
     * starts (it pushes into them) and are freed after it is joined. */
    d->nreaders = cfg->readers ? cfg->readers : 1;
    for (unsigned i = 0; i < d->nreaders; i++) {
        p2p__disc_reader_t *r = calloc(1, sizeof *r);
        if (!r) {
            rc = P2P_ENOMEM;
            goto err;
        }
        r->d = d;
        d->readers[i] = r;
        rc = p2p_mailbox_create(&r->answered, "discanswered", sizeof(p2p__disc_seen_msg_t),
                                cfg->queue ? cfg->queue : P2P_DISCOVERY_QUEUE, NULL);
        if (rc) goto err;
    }
    rc = p2p_thread_spawn_ex(&d->thr, "p2p-disc", 0, P2P_THREAD_SPIN_WAIT, disc_run, d);
    if (rc) {
        rc = fail(msg, msglen, rc, "discovery: cannot start p2p-disc: %s",
                  rc == P2P_ESYS ? strerror(errno) : p2p_strerror(rc));
        goto err;
    }
    d->thr_started = true;
    for (unsigned i = 0; i < d->nreaders; i++) {
        p2p__disc_reader_t *r = d->readers[i];
        char name[P2P_THREAD_NAME_MAX];
        if (i == 0)
            IGNORE_RC(p2p_thread_name(name, "p2p-udp"));
        else
            IGNORE_RC(p2p_thread_name(name, "p2p-udp%u", i));
        rc = p2p_thread_spawn_ex(&r->thr, name, 0, P2P_THREAD_SPIN_WAIT, p2p__disc_reader_run, r);
        if (rc) {
            rc = fail(msg, msglen, rc, "discovery: cannot start %s: %s", name,
                      rc == P2P_ESYS ? strerror(errno) : p2p_strerror(rc));
            goto err;
        }
        r->started = true;
    }
    *out = d;
    return 0;
err:;
    int err = errno; /* the caller reads errno after P2P_ESYS (EADDRINUSE) */
    /* the failures above without a message of their own (allocations) */
    if (msg && msglen && !msg[0]) (void)fail(msg, msglen, rc, "discovery: %s", p2p_strerror(rc));
    p2p_discovery_stop(d);
    errno = err;
    return rc;
}

void p2p_discovery_close(p2p_discovery_t *d)
{
    if (!d) return;
    for (unsigned i = 0; i < P2P_DISCOVERY_READERS_MAX; i++)
        if (d->readers[i] && d->readers[i]->started && !d->readers[i]->thr.joined)
            p2p_thread_request_quit(&d->readers[i]->thr);
    for (unsigned i = 0; i < P2P_DISCOVERY_READERS_MAX; i++)
        if (d->readers[i] && d->readers[i]->started && !d->readers[i]->thr.joined)
            (void)p2p_thread_join(&d->readers[i]->thr, NULL);
    if (d->thr_started && !d->thr.joined) {
        p2p_thread_request_quit(&d->thr);
        (void)p2p_thread_join(&d->thr, NULL);
    }
    /* p2p-disc closed `requests` on its way out (calls get P2P_ECLOSED);
     * without it (a failed start) close it here */
    if (d->requests) p2p_mailbox_close(d->requests);
}

void p2p_discovery_stop(p2p_discovery_t *d)
{
    if (!d) return;
    p2p_discovery_close(d);
    /* after p2p-disc, which pushes into their `answered` */
    for (unsigned i = 0; i < P2P_DISCOVERY_READERS_MAX; i++) {
        if (!d->readers[i]) continue;
        p2p_mailbox_destroy(d->readers[i]->answered);
        free(d->readers[i]);
    }
    p2p_disc_free(d->core);
    p2p_timers_free(&d->timers);
    p2p_mailbox_destroy(d->packets);
    p2p_mailbox_destroy(d->requests);
    if (d->fd >= 0) close(d->fd);
    p2p_nodedb_close(d->ndb);
    p2p_memdb_free(d->mdb);
    p2p_wipe(d->priv, sizeof d->priv);
    free(d);
}

uint16_t p2p_discovery_port(const p2p_discovery_t *d)
{
    return d->port;
}

const p2p_node_t *p2p_discovery_self(const p2p_discovery_t *d)
{
    return &d->started;
}

/* ---- API calls ---- */

int p2p_discovery_info(p2p_discovery_t *d, p2p_discovery_info_t *out, uint64_t deadline_ns)
{
    p2p__disc_call_t *c;
    int rc = call_new(&c, REQ_INFO);
    if (rc) return rc;
    rc = call_run(d, c, deadline_ns);
    if (rc) return rc;
    memcpy(out, c->info, sizeof *out);
    call_unref(c);
    return 0;
}

int p2p_discovery_lookup(p2p_discovery_t *d, p2p_node_t *out, unsigned *n, unsigned cap,
                         const uint8_t target[64], uint64_t deadline_ns)
{
    *n = 0;
    p2p__disc_call_t *c;
    int rc = call_new(&c, REQ_LOOKUP);
    if (rc) return rc;
    memcpy(c->target, target, 64);
    c->cap = cap < P2P_DISC_RESULT ? cap : P2P_DISC_RESULT;
    rc = call_run(d, c, deadline_ns);
    if (rc) return rc;
    memcpy(out, c->nodes, c->n * sizeof out[0]);
    *n = c->n;
    call_unref(c);
    return 0;
}

static int post(p2p_discovery_t *d, const disc_req_msg_t *m)
{
    return p2p_mailbox_try_push(d->requests, m, sizeof *m);
}

int p2p_discovery_want_candidates(p2p_discovery_t *d, bool on)
{
    disc_req_msg_t m;
    memset(&m, 0, sizeof m);
    m.kind = REQ_WANT;
    m.on = on;
    return post(d, &m);
}

int p2p_discovery_add_node(p2p_discovery_t *d, const p2p_node_t *n)
{
    disc_req_msg_t m;
    memset(&m, 0, sizeof m);
    m.kind = REQ_ADD;
    m.node = *n;
    return post(d, &m);
}

size_t p2p_discovery_counters_format(const p2p_discovery_info_t *in, char *out, size_t cap)
{
    size_t len = 0;
#define P2P__DISC_FMT(grp, name)                                                                   \
    do {                                                                                           \
        int k = snprintf(out && len < cap ? out + len : NULL, out && len < cap ? cap - len : 0,    \
                         "%s %llu\n", #name, (unsigned long long)in->grp.name);                    \
        if (k > 0) len += (size_t)k;                                                               \
    } while (0);
#define P2P__DISC_FMT_SHELL(name, desc) P2P__DISC_FMT(shell, name)
#define P2P__DISC_FMT_CORE(name, desc) P2P__DISC_FMT(core, name)
    P2P_DISCOVERY_COUNTERS(P2P__DISC_FMT_SHELL)
    P2P_DISC_COUNTERS(P2P__DISC_FMT_CORE)
#undef P2P__DISC_FMT_CORE
#undef P2P__DISC_FMT_SHELL
#undef P2P__DISC_FMT
    if (out && cap && len >= cap) out[cap - 1] = 0;
    return len;
}
