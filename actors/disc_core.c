/*
 * actors/disc_core.c: the discovery v4 protocol engine (see disc_core.h).
 *
 * Owned by the discovery table thread; every function runs on it.  Pure:
 * no sockets, no clock, no allocation after p2p_disc_new; the outputs are
 * the synchronous io/db callbacks.
 *
 * Structure:
 *   requests  a fixed table of outstanding requests (reply matchers): the
 *             kind (ping, findnode, ENR request, or an ENR request waiting
 *             for the node's ping-back), the destination (id, ip),
 *             the token the reply must echo, a deadline and the purpose
 *             that decides what happens on reply or timeout.
 *   ping-backs our pings to unbonded pingers, in their own pool: a ring in
 *             creation order (oldest evicted when full) indexed by (id, ip),
 *             with a count per sender network (/24, /48) for the cap.
 *   handlers  one per packet type (on_ping ... on_enrresponse).
 *   lookups   P2P_DISC_MAX_LOOKUPS slots, each with its 16-node result and 3
 *             query slots (BONDING -> SETTLE -> FINDNODE, or WAIT while we
 *             already have a findnode out to the same node, because a
 *             Neighbors reply carries no token to tell two apart; and
 *             BONDWAIT while a ping of ours to the node is out already:
 *             lookups started together would send it the same ping, which
 *             a node may take for a replay and leave unanswered).  Lookups
 *             that finish are reaped at the end of every entry point, so
 *             events never fire in the middle of a state change.
 *   refresh   phase 0 idle, 1 self lookup, 2..4 random lookups.
 *   candidates a FIFO of dialable nodes for the dialer: Neighbors entries
 *             of every lookup, plus the result set of the iterator's own
 *             lookups (live table entries it starts from, queried nodes
 *             that answered).
 */
#include "actors/disc_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/idmap.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"

/* REQ_ENR_WAIT: an ENR request not sent yet, held for the node's
 * ping-back (request_enr_bonded); it matches no reply. */
enum { REQ_FREE = 0, REQ_PING = 1, REQ_FINDNODE = 2, REQ_ENR = 3, REQ_ENR_WAIT = 4 };
enum { FOR_PINGBACK = 1, FOR_REVAL = 2, FOR_BOND = 3, FOR_LOOKUP = 4, FOR_ENR = 5 };
enum { Q_FREE = 0, Q_BONDING, Q_SETTLE, Q_WAIT, Q_FINDNODE, Q_BONDWAIT };
enum { LK_USER = 1, LK_REFRESH = 2, LK_ITER = 3 };

typedef struct disc_req {
    uint8_t kind; /* REQ_*; REQ_FREE: unused */
    uint8_t purpose;
    uint8_t slot;       /* FOR_BOND / FOR_LOOKUP: query slot */
    bool answered;      /* findnode: a Neighbors packet (even empty) matched */
    uint16_t nreceived; /* findnode: entries received */
    uint16_t nvalid;    /* findnode: entries that passed validation (ours included) */
    uint32_t lookup;    /* FOR_BOND / FOR_LOOKUP: lookup handle */
    uint64_t deadline_ns;
    uint64_t ping_unix; /* FOR_PINGBACK: when the ping we answer arrived (unix s) */
    uint8_t tok[32];    /* hash of the request (ping, ENR request) */
    p2p_node_t node;    /* destination */
} disc_req_t;

/* A ping-back: our ping to an unbonded node that pinged us. */
typedef struct disc_pb {
    bool live;
    bool counted; /* holds one of its network's P2P_DISC_PINGBACKS_PER_NET */
    uint64_t deadline_ns;
    uint64_t ping_unix; /* when its ping arrived (unix s) */
    uint8_t tok[32];    /* our ping's hash */
    p2p_node_t node;
} disc_pb_t;

typedef struct disc_query {
    uint8_t state; /* Q_* */
    uint64_t wake_ns;
    uint64_t since_s; /* Q_BONDWAIT: unix time it began waiting */
    p2p_node_t node;
} disc_query_t;

typedef struct disc_lookup {
    uint32_t handle; /* 0: slot unused */
    uint8_t kind;
    bool done;
    uint8_t target[64];
    uint8_t target_id[32];
    unsigned n;
    p2p_node_t res[P2P_DISC_RESULT]; /* nearest first */
    uint8_t asked[P2P_DISC_RESULT];
    disc_query_t q[P2P_DISC_ALPHA];
} disc_lookup_t;

struct p2p_disc {
    p2p_disc_io_t io;
    p2p_disc_db_t db;
    uint8_t self_pub[64];
    uint8_t self_id[32];
    p2p_endpoint_t endpoint;
    bool has_record;
    uint64_t seq;
    p2p_enr_t record;
    unsigned nboot;
    p2p_node_t boot[P2P_DISC_MAX_BOOTNODES];
    bool has_restrict;
    p2p_netlist_t restrict_;
    bool ipv4_only; /* our socket reaches IPv4 only */
    bool ipv6_only; /* our socket reaches IPv6 only */
    p2p_disc_counters_t ctr;
    unsigned in_event; /* inside io.event */

    disc_req_t req[P2P_DISC_MAX_PENDING];
    unsigned npending;
    unsigned req_hi; /* every request in use is below this index */

    disc_lookup_t lk[P2P_DISC_MAX_LOOKUPS];
    uint32_t next_handle;

    /* ping-backs: a ring in creation (so deadline) order, the oldest at
     * pb_head; entries answered out of order stay dead in it until they
     * reach the head.  pb_ids: (id, ip) key -> slot; pb_nets: network key
     * -> live ping-backs (LAN addresses not counted). */
    disc_pb_t *pb;
    unsigned pb_cap, pb_head, pb_len, npb;
    p2p_idmap_t pb_ids, pb_nets;

    bool started, init_done;
    int refresh_phase; /* 0 idle, 1 self lookup, 2.. random lookups */
    bool refresh_ok;   /* a findnode of this refresh was answered */
    uint64_t refresh_end_ns, next_refresh_ns;
    uint64_t retry_ns; /* delay of the next early refresh */

    bool want;
    uint64_t iter_next_ns;
    unsigned chead, clen;
    p2p_node_t cand[P2P_DISC_CANDIDATES];

    p2p_kad_table_t tab;
};

/* ---- small helpers ---- */

static void disc_emit(p2p_disc_t *d, const p2p_disc_event_t *ev)
{
    if (!d->io.event) return;
    d->in_event++;
    d->io.event(d->io.ctx, ev);
    d->in_event--;
}

/* A change requested from inside an event callback (against the rule in
 * disc_core.h: the core is in the middle of a state change) is refused
 * and counted. */
static bool reentered(p2p_disc_t *d)
{
    if (d->in_event == 0) return false;
    d->ctr.reentrant_calls++;
    return true;
}

static void disc_emit_node(p2p_disc_t *d, p2p_disc_event_kind_t kind, const p2p_node_t *n)
{
    p2p_disc_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.node = *n;
    disc_emit(d, &ev);
}

static bool same_dest(const p2p_node_t *n, const uint8_t id[32], const p2p_ip_t *ip)
{
    return memcmp(n->id, id, 32) == 0 && p2p_ip_equal(&n->ep.ip, ip);
}

static uint64_t db_time(p2p_disc_t *d,
                        int (*get)(void *, uint64_t *, const uint8_t *, const p2p_ip_t *),
                        const uint8_t id[32], const p2p_ip_t *ip)
{
    uint64_t t = 0;
    if (get(d->db.ctx, &t, id, ip) != 0) {
        d->ctr.db_errors++;
        return 0;
    }
    return t;
}

static void db_set_time(p2p_disc_t *d,
                        int (*set)(void *, const uint8_t *, const p2p_ip_t *, uint64_t),
                        const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    if (set(d->db.ctx, id, ip, t) != 0) d->ctr.db_errors++;
}

/* A timestamp from the DB proves a bond if it is set and at most 24 h old.
 * One more than P2P_DISC_BOND_FUTURE_S in the future was written before the
 * wall clock jumped back: its age is unknown, so it proves nothing (else a
 * clock set back by a year would keep every bond for a year); the node
 * simply bonds again. */
static bool within_bond(uint64_t t, uint64_t now_unix)
{
    return t != 0 && t <= now_unix + P2P_DISC_BOND_FUTURE_S &&
           now_unix <= t + P2P_DISC_BOND_EXPIRATION_S;
}

static uint32_t db_findfails(p2p_disc_t *d, const p2p_node_t *n)
{
    uint32_t f = 0;
    if (d->db.findfails(d->db.ctx, &f, n->id, &n->ep.ip) != 0) {
        d->ctr.db_errors++;
        return 0;
    }
    return f;
}

static void db_set_findfails(p2p_disc_t *d, const p2p_node_t *n, uint32_t f)
{
    if (d->db.set_findfails(d->db.ctx, n->id, &n->ep.ip, f) != 0) d->ctr.db_errors++;
}

static void db_put_node(p2p_disc_t *d, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    if (d->db.put_node(d->db.ctx, n, enr, enrlen) != 0) d->ctr.db_errors++;
}

/* True if n may enter the table: no NetRestrict, no address (the table
 * refuses it), or an address inside NetRestrict; else counted.  Every
 * source is checked (Neighbors entries, seeds from the node DB, which may
 * hold nodes of runs without the restriction, bootnodes, nodes added by
 * the caller), so nothing is ever sent outside the allowed networks. */
static bool allowed(p2p_disc_t *d, const p2p_node_t *n)
{
    const p2p_ip_t *ip = &n->ep.ip;
    if (!d->has_restrict || (ip->family != 4 && ip->family != 6) ||
        p2p_netlist_contains(&d->restrict_, ip))
        return true;
    d->ctr.node_restricted++;
    return false;
}

/* True if our socket can send to ip's family (the config's ipv4_only,
 * ipv6_only); an address of no family is left to the table, which refuses
 * it. */
static bool reachable(const p2p_disc_t *d, const p2p_ip_t *ip)
{
    if (ip->family != 4 && ip->family != 6) return true;
    return !(d->ipv4_only && ip->family != 4) && !(d->ipv6_only && ip->family != 6);
}

/* Adds n to the table (verified or seen), with events and counters. */
static void tab_add(p2p_disc_t *d, const p2p_node_t *n, bool verified, p2p_disc_time_t now)
{
    if (!allowed(d, n)) return;
    p2p_kad_add_t r =
        verified ? p2p_kad_add_verified(&d->tab, n, now.ns) : p2p_kad_add_seen(&d->tab, n, now.ns);
    if (r == P2P_KAD_ADDED) disc_emit_node(d, P2P_DISC_EV_NODE_ADDED, n);
    if (r == P2P_KAD_IPLIMIT || r == P2P_KAD_ADDR_LIMIT) d->ctr.table_iplimit++;
}

/* Deletes id from the table, with events for it and its replacement. */
static void tab_delete(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    p2p_node_t prom;
    int rc = p2p_kad_delete(&d->tab, &prom, n->id, now.ns);
    if (rc < 0) return;
    disc_emit_node(d, P2P_DISC_EV_NODE_REMOVED, n);
    if (rc == 1) disc_emit_node(d, P2P_DISC_EV_NODE_ADDED, &prom);
}

static int disc_send(p2p_disc_t *d, uint8_t hash[32], const p2p_endpoint_t *to,
                     const p2p_discv4_packet_t *pkt)
{
    uint8_t h[32];
    int rc = d->io.send(d->io.ctx, hash ? hash : h, to, pkt);
    if (rc != 0) {
        d->ctr.tx_errors++;
        return rc;
    }
    d->ctr.tx_packets++;
    return 0;
}

static void pkt_init(p2p_discv4_packet_t *p, uint8_t type, p2p_disc_time_t now)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    if (type != P2P_DISCV4_ENRRESPONSE) p->expiration = now.unix_s + P2P_DISCV4_EXPIRATION;
}

/* ---- requests (reply matchers) ---- */

static disc_req_t *req_new(p2p_disc_t *d)
{
    for (unsigned i = 0; i < P2P_DISC_MAX_PENDING; i++) {
        if (d->req[i].kind == REQ_FREE) {
            memset(&d->req[i], 0, sizeof d->req[i]);
            return &d->req[i];
        }
    }
    d->ctr.pending_full++;
    return NULL;
}

static void req_commit(p2p_disc_t *d, disc_req_t *r, uint8_t kind, uint8_t purpose,
                       const p2p_node_t *to, p2p_disc_time_t now)
{
    r->kind = kind;
    r->purpose = purpose;
    r->node = *to;
    r->deadline_ns = now.ns + P2P_DISC_RESP_TIMEOUT_NS;
    d->npending++;
    unsigned idx = (unsigned)(r - d->req);
    if (idx + 1 > d->req_hi) d->req_hi = idx + 1;
}

static void req_free(p2p_disc_t *d, disc_req_t *r)
{
    if (r->kind == REQ_FREE) return;
    r->kind = REQ_FREE;
    d->npending--;
    while (d->req_hi > 0 && d->req[d->req_hi - 1].kind == REQ_FREE) d->req_hi--;
}

static disc_req_t *req_find(p2p_disc_t *d, uint8_t kind, const uint8_t id[32], const p2p_ip_t *ip,
                            const uint8_t *tok)
{
    for (unsigned i = 0; i < d->req_hi; i++) {
        disc_req_t *r = &d->req[i];
        if (r->kind != kind || !same_dest(&r->node, id, ip)) continue;
        if (tok && memcmp(r->tok, tok, 32) != 0) continue;
        return r;
    }
    return NULL;
}

/* Sends our ping to n.  Out: tok, its hash.  Returns 0 or the send error. */
static int ping_out(p2p_disc_t *d, uint8_t tok[32], const p2p_node_t *n, p2p_disc_time_t now)
{
    p2p_discv4_packet_t p;
    pkt_init(&p, P2P_DISCV4_PING, now);
    p.u.ping.version = P2P_DISCV4_PING_VERSION;
    p.u.ping.from = d->endpoint;
    p.u.ping.to = n->ep;
    p.u.ping.has_enr_seq = true;
    p.u.ping.enr_seq = d->seq;
    return disc_send(d, tok, &n->ep, &p);
}

/* Sends a ping to n and registers the matcher.  Returns the request or NULL
 * (matcher table full or send failed).  Out: *err (may be NULL), why it
 * returned NULL: P2P_ELIMIT (matcher table full) or the send error. */
static disc_req_t *send_ping_err(p2p_disc_t *d, int *err, const p2p_node_t *n, uint8_t purpose,
                                 p2p_disc_time_t now)
{
    int e;
    if (!err) err = &e;
    *err = P2P_ELIMIT;
    disc_req_t *r = req_new(d);
    if (!r) return NULL;
    *err = ping_out(d, r->tok, n, now);
    if (*err != 0) return NULL;
    req_commit(d, r, REQ_PING, purpose, n, now);
    return r;
}

static disc_req_t *send_ping(p2p_disc_t *d, const p2p_node_t *n, uint8_t purpose,
                             p2p_disc_time_t now)
{
    return send_ping_err(d, NULL, n, purpose, now);
}

/* ---- ping-backs ---- */

/* The index key of (id, ip): the ID with the address folded into its first
 * 17 bytes (an entry's own id and ip are compared on every hit). */
static void pb_key(uint8_t key[32], const uint8_t id[32], const p2p_ip_t *ip)
{
    memcpy(key, id, 32);
    key[0] ^= ip->family;
    for (unsigned i = 0; i < 16; i++) key[1 + i] ^= ip->addr[i];
}

/* The network a ping-back counts against: /24 (IPv4) or /48 (IPv6). */
static void pb_net_key(uint8_t key[32], const p2p_ip_t *ip)
{
    p2p_ip_t net = p2p_ip_net(ip);
    p2p_idmap_ip_key(key, &net);
}

static disc_pb_t *pb_find(p2p_disc_t *d, const uint8_t id[32], const p2p_ip_t *ip)
{
    uint8_t key[32];
    pb_key(key, id, ip);
    const uint64_t *slot = p2p_idmap_get(&d->pb_ids, key);
    if (!slot) return NULL;
    disc_pb_t *e = &d->pb[*slot];
    return e->live && same_dest(&e->node, id, ip) ? e : NULL;
}

/* Drops the dead entries at the head of the ring. */
static void pb_trim(p2p_disc_t *d)
{
    while (d->pb_len > 0 && !d->pb[d->pb_head].live) {
        d->pb_head = (d->pb_head + 1) % d->pb_cap;
        d->pb_len--;
    }
}

/* Ends a live ping-back (answered, timed out or evicted). */
static void pb_release(p2p_disc_t *d, disc_pb_t *e)
{
    uint8_t key[32];
    pb_key(key, e->node.id, &e->node.ep.ip);
    const uint64_t *slot = p2p_idmap_get(&d->pb_ids, key);
    if (slot && *slot == (uint64_t)(e - d->pb)) (void)p2p_idmap_del(&d->pb_ids, key);
    if (e->counted) {
        pb_net_key(key, &e->node.ep.ip);
        uint64_t *c = p2p_idmap_get(&d->pb_nets, key);
        if (c && *c > 1)
            (*c)--;
        else if (c)
            (void)p2p_idmap_del(&d->pb_nets, key);
    }
    e->live = false;
    d->npb--;
    pb_trim(d);
}

/* Times out the ping-backs due at now (the ring is in deadline order). */
static void pb_expire(p2p_disc_t *d, p2p_disc_time_t now)
{
    while (d->pb_len > 0 && now.ns >= d->pb[d->pb_head].deadline_ns) {
        d->ctr.timeouts++;
        pb_release(d, &d->pb[d->pb_head]);
    }
}

/* Pings n back.  Returns the ping-back or NULL: its network already has
 * P2P_DISC_PINGBACKS_PER_NET outstanding (counted pingback_net_full), or the
 * send failed.  A full pool drops its oldest entry (pingback_evicted). */
static disc_pb_t *pb_start(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    uint8_t nkey[32];
    bool counted = !p2p_ip_is_lan(&n->ep.ip);
    uint64_t *cnt = NULL;
    if (counted) {
        pb_net_key(nkey, &n->ep.ip);
        cnt = p2p_idmap_get(&d->pb_nets, nkey);
        if (cnt && *cnt >= P2P_DISC_PINGBACKS_PER_NET) {
            d->ctr.pingback_net_full++;
            return NULL;
        }
    }
    uint8_t tok[32];
    if (ping_out(d, tok, n, now) != 0) return NULL;
    if (d->pb_len == d->pb_cap) {
        d->ctr.pingback_evicted++;
        pb_release(d, &d->pb[d->pb_head]);                   /* live: the head always is */
        if (counted) cnt = p2p_idmap_get(&d->pb_nets, nkey); /* may have moved */
    }
    unsigned slot = (d->pb_head + d->pb_len) % d->pb_cap;
    disc_pb_t *e = &d->pb[slot];
    memset(e, 0, sizeof *e);
    e->live = true;
    e->deadline_ns = now.ns + P2P_DISC_RESP_TIMEOUT_NS;
    memcpy(e->tok, tok, 32);
    e->node = *n;
    uint8_t key[32];
    pb_key(key, n->id, &n->ep.ip);
    /* Neither map can be full: at most pb_cap live entries, and
     * both were sized for that at p2p_disc_new (no allocation). */
    if (p2p_idmap_put(&d->pb_ids, key, slot) != 0) {
        e->live = false;
        return NULL;
    }
    if (counted) {
        if (cnt)
            (*cnt)++;
        else if (p2p_idmap_put(&d->pb_nets, nkey, 1) != 0)
            counted = false;
    }
    e->counted = counted;
    d->pb_len++;
    d->npb++;
    return e;
}

/* Asks n for its record now (a request waiting for n is sent at once). */
static void request_enr(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    if (req_find(d, REQ_ENR, n->id, &n->ep.ip, NULL)) return;
    disc_req_t *w = req_find(d, REQ_ENR_WAIT, n->id, &n->ep.ip, NULL);
    if (w) req_free(d, w);
    disc_req_t *r = req_new(d);
    if (!r) return;
    p2p_discv4_packet_t p;
    pkt_init(&p, P2P_DISCV4_ENRREQUEST, now);
    if (disc_send(d, r->tok, &n->ep, &p) != 0) return;
    req_commit(d, r, REQ_ENR, FOR_ENR, n, now);
    d->ctr.enr_requests++;
}

/* Asks n for its record; called on n's pong to a ping of ours.  n answers
 * an ENR request only from a node that answered its ping within 24 h
 * (EIP-868; we require the same).  If n has pinged us within 24 h, it
 * holds our bond: the request goes now.  Else our ping (the one n just
 * answered) was the bond ping: a node without our bond pings back on it,
 * and a request sent at once would reach it before our pong to that
 * ping-back and be dropped.  So the request waits P2P_DISC_RESP_TIMEOUT_NS
 * in a matcher slot (enr_deferred), then goes whether or not n pinged:
 * our record of its last ping may be missing (DB wiped, a lost ping-back)
 * while n still holds our bond and never pings again.  n's ping-back with
 * the new seq sends it earlier (on_ping). */
static void request_enr_bonded(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    if (within_bond(db_time(d, d->db.last_ping, n->id, &n->ep.ip), now.unix_s)) {
        request_enr(d, n, now);
        return;
    }
    if (req_find(d, REQ_ENR, n->id, &n->ep.ip, NULL) ||
        req_find(d, REQ_ENR_WAIT, n->id, &n->ep.ip, NULL))
        return;
    disc_req_t *r = req_new(d);
    if (!r) return;
    req_commit(d, r, REQ_ENR_WAIT, FOR_ENR, n, now);
    d->ctr.enr_deferred++;
}

/* A waiting ENR request is due: sent if n is still a table entry at the
 * address it was meant for (only table entries take records). */
static void enr_wait_done(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    const p2p_kad_entry_t *e = p2p_kad_find(&d->tab, n->id);
    if (e && p2p_ip_equal(&e->node.ep.ip, &n->ep.ip) && e->node.ep.udp == n->ep.udp)
        request_enr(d, n, now);
}

/* ---- lookups: queries ---- */

static disc_lookup_t *lk_find(p2p_disc_t *d, uint32_t handle)
{
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++)
        if (d->lk[i].handle == handle && handle != 0) return &d->lk[i];
    return NULL;
}

/* Ends query slot qi.  ok: the node returned usable nodes; local: it could
 * not be asked because of our own limits (no verdict on the node). */
static void q_done(p2p_disc_t *d, disc_lookup_t *lk, unsigned qi, bool ok, bool local,
                   p2p_disc_time_t now)
{
    disc_query_t *q = &lk->q[qi];
    q->state = Q_FREE;
    if (local) return;
    uint32_t fails = db_findfails(d, &q->node);
    if (ok) {
        if (fails > 0) db_set_findfails(d, &q->node, 0);
        /* It answered from its address: its endpoint is proven. */
        tab_add(d, &q->node, true, now);
        return;
    }
    d->ctr.findnode_failures++;
    fails++;
    db_set_findfails(d, &q->node, fails);
    /* The failures are those of (id, ip): they evict the table entry only
     * if it is at that address.  Any node can name a table node at
     * another address in a Neighbors entry; the lookups that ask there
     * must not remove the entry at its own, proven address. */
    const p2p_kad_entry_t *e = p2p_kad_find(&d->tab, q->node.id);
    if (fails >= P2P_KAD_MAX_FINDFAILS && e && p2p_ip_equal(&e->node.ep.ip, &q->node.ep.ip) &&
        p2p_kad_bucket_len(&d->tab, q->node.id) >= P2P_KAD_FINDFAIL_MIN_BUCKET) {
        d->ctr.findfail_evictions++;
        p2p_node_t gone = e->node;
        tab_delete(d, &gone, now);
    }
}

/* Sends the findnode of query slot qi (or waits if one is already out to
 * the same node). */
static void q_findnode(p2p_disc_t *d, disc_lookup_t *lk, unsigned qi, p2p_disc_time_t now)
{
    disc_query_t *q = &lk->q[qi];
    if (req_find(d, REQ_FINDNODE, q->node.id, &q->node.ep.ip, NULL)) {
        q->state = Q_WAIT;
        return;
    }
    disc_req_t *r = req_new(d);
    if (!r) {
        q_done(d, lk, qi, false, true, now);
        return;
    }
    p2p_discv4_packet_t p;
    pkt_init(&p, P2P_DISCV4_FINDNODE, now);
    memcpy(p.u.findnode.target, lk->target, 64);
    if (disc_send(d, NULL, &q->node.ep, &p) != 0) {
        q_done(d, lk, qi, false, true, now);
        return;
    }
    req_commit(d, r, REQ_FINDNODE, FOR_LOOKUP, &q->node, now);
    r->lookup = lk->handle;
    r->slot = (uint8_t)qi;
    q->state = Q_FINDNODE;
}

/* True if n may not hold a bond for us: it has not pinged us within 24 h,
 * or it failed too many findnodes. */
static bool need_bond(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    uint64_t t = db_time(d, d->db.last_ping, n->id, &n->ep.ip);
    if (!within_bond(t, now.unix_s)) return true;
    return db_findfails(d, n) > P2P_KAD_MAX_FINDFAILS;
}

static void q_start(p2p_disc_t *d, disc_lookup_t *lk, unsigned qi, const p2p_node_t *n,
                    p2p_disc_time_t now)
{
    disc_query_t *q = &lk->q[qi];
    q->node = *n;
    q->wake_ns = 0;
    if (need_bond(d, n, now)) {
        /* one ping at a time: wait for the outcome of the one out */
        if (req_find(d, REQ_PING, n->id, &n->ep.ip, NULL)) {
            q->state = Q_BONDWAIT;
            q->since_s = now.unix_s;
            return;
        }
        disc_req_t *r = send_ping(d, n, FOR_BOND, now);
        if (!r) {
            q_done(d, lk, qi, false, true, now);
            return;
        }
        r->lookup = lk->handle;
        r->slot = (uint8_t)qi;
        q->state = Q_BONDING;
        return;
    }
    q_findnode(d, lk, qi, now);
}

/* Starts queries while there are free slots and unasked result nodes; marks
 * the lookup done when nothing is in flight and everybody was asked. */
static void lk_advance(p2p_disc_t *d, disc_lookup_t *lk, p2p_disc_time_t now)
{
    for (;;) {
        unsigned qi = 0;
        while (qi < P2P_DISC_ALPHA && lk->q[qi].state != Q_FREE) qi++;
        if (qi == P2P_DISC_ALPHA) break;
        unsigned i = 0;
        while (i < lk->n && lk->asked[i]) i++;
        if (i == lk->n) break;
        lk->asked[i] = 1;
        q_start(d, lk, qi, &lk->res[i], now);
    }
    for (unsigned qi = 0; qi < P2P_DISC_ALPHA; qi++)
        if (lk->q[qi].state != Q_FREE) return;
    for (unsigned i = 0; i < lk->n; i++)
        if (!lk->asked[i]) return;
    lk->done = true;
}

/* Offers a validated node to the lookup's result (kept sorted, 16 max). */
static void lk_offer(disc_lookup_t *lk, const p2p_node_t *n)
{
    for (unsigned i = 0; i < lk->n; i++)
        if (memcmp(lk->res[i].id, n->id, 32) == 0) return;
    unsigned pos = lk->n;
    while (pos > 0 && p2p_kad_distcmp(lk->target_id, n->id, lk->res[pos - 1].id) < 0) pos--;
    if (pos >= P2P_DISC_RESULT) return;
    unsigned last = lk->n < P2P_DISC_RESULT ? lk->n : P2P_DISC_RESULT - 1;
    memmove(&lk->res[pos + 1], &lk->res[pos], (last - pos) * sizeof lk->res[0]);
    memmove(&lk->asked[pos + 1], &lk->asked[pos], (last - pos) * sizeof lk->asked[0]);
    lk->res[pos] = *n;
    lk->asked[pos] = 0;
    if (lk->n < P2P_DISC_RESULT) lk->n++;
}

/* Queues a dial candidate: only dialable nodes (a TCP port), no duplicates
 * of a queued one, dropped (counted) when the FIFO is full. */
static void cand_push(p2p_disc_t *d, const p2p_node_t *n)
{
    if (n->ep.tcp == 0) return;
    for (unsigned i = 0; i < d->clen; i++)
        if (memcmp(d->cand[(d->chead + i) % P2P_DISC_CANDIDATES].id, n->id, 32) == 0) return;
    if (d->clen == P2P_DISC_CANDIDATES) {
        d->ctr.candidates_dropped++;
        return;
    }
    d->cand[(d->chead + d->clen) % P2P_DISC_CANDIDATES] = *n;
    d->clen++;
}

static bool lk_iter_running(const p2p_disc_t *d)
{
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++)
        if (d->lk[i].handle && d->lk[i].kind == LK_ITER) return true;
    return false;
}

static int lk_start(p2p_disc_t *d, uint32_t *handle, const uint8_t target[64], uint8_t kind,
                    p2p_disc_time_t now)
{
    disc_lookup_t *lk = NULL;
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS && !lk; i++)
        if (d->lk[i].handle == 0) lk = &d->lk[i];
    if (!lk) {
        d->ctr.lookups_full++;
        return P2P_ELIMIT;
    }
    memset(lk, 0, sizeof *lk);
    if (++d->next_handle == 0) d->next_handle = 1;
    lk->handle = d->next_handle;
    lk->kind = kind;
    memcpy(lk->target, target, 64);
    p2p_keccak256(lk->target_id, target, 64);
    lk->n = p2p_kad_closest(&d->tab, lk->res, P2P_DISC_RESULT, lk->target_id, false);
    d->ctr.lookups_started++;
    /* The candidate iterator yields its start set too: the verified (live)
     * table entries among it, so a lone bootnode is offered once bonded. */
    if (kind == LK_ITER)
        for (unsigned i = 0; i < lk->n; i++) {
            const p2p_kad_entry_t *e = p2p_kad_find(&d->tab, lk->res[i].id);
            if (e && e->live) cand_push(d, &e->node);
        }
    if (handle) *handle = lk->handle;
    lk_advance(d, lk, now);
    return 0;
}

static void random_target(p2p_disc_t *d, uint8_t target[64])
{
    for (int i = 0; i < 64; i += 8) {
        uint64_t v = p2p_kad_rand(&d->tab, UINT64_MAX);
        memcpy(target + i, &v, 8);
    }
}

/* ---- refresh ---- */

static void refresh_end(p2p_disc_t *d, p2p_disc_time_t now)
{
    d->refresh_phase = 0;
    d->refresh_end_ns = now.ns;
    d->init_done = true;
    uint64_t half = P2P_DISC_REFRESH_NS / 2;
    if (d->refresh_ok) {
        d->retry_ns = P2P_DISC_RETRY_REFRESH_NS;
        d->next_refresh_ns = now.ns + half + p2p_kad_rand(&d->tab, half);
    } else {
        d->next_refresh_ns = now.ns + d->retry_ns;
        d->retry_ns = d->retry_ns * 2 < half ? d->retry_ns * 2 : half;
    }
}

/* Starts the lookup of the current refresh phase (ends the refresh when all
 * phases ran or no lookup slot is free). */
static void refresh_lookup(p2p_disc_t *d, p2p_disc_time_t now)
{
    uint8_t target[64];
    if (d->refresh_phase == 1)
        memcpy(target, d->self_pub, 64);
    else
        random_target(d, target);
    if (lk_start(d, NULL, target, LK_REFRESH, now) != 0) refresh_end(d, now);
}

static void refresh_start(p2p_disc_t *d, p2p_disc_time_t now)
{
    d->ctr.refreshes++;
    d->refresh_phase = 1;
    d->refresh_ok = false;
    p2p_node_t seeds[P2P_DISC_SEED_COUNT];
    size_t nseeds = 0;
    if (d->db.query_seeds(d->db.ctx, seeds, &nseeds, P2P_DISC_SEED_COUNT, P2P_DISC_SEED_MAX_AGE_S,
                          now.unix_s) != 0) {
        d->ctr.db_errors++;
        nseeds = 0;
    }
    /* The DB may hold nodes of the other family (a run on another --addr):
     * kept out as Neighbors entries are, or every packet to them would be
     * refused until revalidation dropped them, at every refresh. */
    for (size_t i = 0; i < nseeds && i < P2P_DISC_SEED_COUNT; i++) {
        if (reachable(d, &seeds[i].ep.ip))
            tab_add(d, &seeds[i], false, now);
        else
            d->ctr.node_unreachable++;
    }
    for (unsigned i = 0; i < d->nboot; i++) tab_add(d, &d->boot[i], false, now);
    refresh_lookup(d, now);
}

static void refresh_next(p2p_disc_t *d, p2p_disc_time_t now)
{
    if (d->refresh_phase == 0) return;
    if (d->refresh_phase > P2P_DISC_RANDOM_LOOKUPS) {
        refresh_end(d, now);
        return;
    }
    d->refresh_phase++;
    refresh_lookup(d, now);
}

/* Finishes done lookups: emits their results and runs what follows them.
 * Loops because a follow-up lookup may be done at once (empty table). */
static void lk_reap(p2p_disc_t *d, p2p_disc_time_t now)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        disc_lookup_t *lk = NULL;
        for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS && !lk; i++)
            if (d->lk[i].handle && d->lk[i].done) lk = &d->lk[i];
        if (!lk) return;
        p2p_node_t res[P2P_DISC_RESULT];
        unsigned n = lk->n;
        memcpy(res, lk->res, n * sizeof res[0]);
        uint8_t kind = lk->kind;
        p2p_disc_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = P2P_DISC_EV_LOOKUP_DONE;
        ev.lookup = lk->handle;
        ev.n = n;
        ev.nodes = res;
        lk->handle = 0;
        disc_emit(d, &ev);
        if (kind == LK_REFRESH) refresh_next(d, now);
    }
}

/* Moves lookups on: settled bonds send their findnode, waiting queries
 * retry, free slots take new nodes. */
static void lk_poll(p2p_disc_t *d, p2p_disc_time_t now)
{
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++) {
        disc_lookup_t *lk = &d->lk[i];
        if (!lk->handle || lk->done) continue;
        for (unsigned qi = 0; qi < P2P_DISC_ALPHA; qi++) {
            disc_query_t *q = &lk->q[qi];
            if ((q->state == Q_SETTLE && now.ns >= q->wake_ns) || q->state == Q_WAIT)
                q_findnode(d, lk, qi, now);
            else if (q->state == Q_BONDWAIT &&
                     !req_find(d, REQ_PING, q->node.id, &q->node.ep.ip, NULL)) {
                /* the ping it waited for ended: answered, settle as after
                 * our own; unanswered, its owner counted the failure */
                uint64_t pong = db_time(d, d->db.last_pong, q->node.id, &q->node.ep.ip);
                if (pong >= q->since_s && within_bond(pong, now.unix_s)) {
                    q->state = Q_SETTLE;
                    q->wake_ns = now.ns + P2P_DISC_RESP_TIMEOUT_NS;
                } else {
                    q_done(d, lk, qi, false, true, now);
                }
            }
        }
        lk_advance(d, lk, now);
    }
    lk_reap(d, now);
}

/* ---- revalidation ---- */

static void reval_outcome(p2p_disc_t *d, const p2p_kad_reval_t *r, bool responded,
                          p2p_disc_time_t now)
{
    if (!r->found) return;
    if (r->deleted) {
        d->ctr.reval_deleted++;
        disc_emit_node(d, P2P_DISC_EV_NODE_REMOVED, &r->node);
        if (r->promoted) disc_emit_node(d, P2P_DISC_EV_NODE_ADDED, &r->promoted_node);
        return;
    }
    if (!responded) return;
    if (r->checks > P2P_KAD_SEED_MIN_CHECKS) db_put_node(d, &r->node, NULL, 0);
    if (r->need_enr) request_enr_bonded(d, &r->node, now);
}

/* Applies the outcome of our revalidation ping to `pinged` (the entry as
 * it was when pinged).  It says something about that address only: an
 * entry that moved meanwhile (it proved a new endpoint, e.g. restarted
 * elsewhere and pinged us) was not checked there, so it gets no verdict
 * and is checked again in turn. */
static void reval_finish(p2p_disc_t *d, const p2p_node_t *pinged, bool responded, uint64_t seq,
                         p2p_disc_time_t now)
{
    const p2p_kad_entry_t *e = p2p_kad_find(&d->tab, pinged->id);
    if (e && (!p2p_ip_equal(&e->node.ep.ip, &pinged->ep.ip) || e->node.ep.udp != pinged->ep.udp)) {
        p2p_kad_reval_cancel(&d->tab, pinged->id);
        return;
    }
    p2p_kad_reval_t rv;
    p2p_kad_reval_done(&d->tab, &rv, pinged->id, responded, seq, now.ns);
    reval_outcome(d, &rv, responded, now);
}

static void reval_run(p2p_disc_t *d, p2p_disc_time_t now)
{
    p2p_node_t n;
    while (p2p_kad_reval_next(&d->tab, &n, now.ns)) {
        /* A ping already out to it (bonding, ping-back) says as much. */
        if (req_find(d, REQ_PING, n.id, &n.ep.ip, NULL) || pb_find(d, n.id, &n.ep.ip)) {
            p2p_kad_reval_cancel(&d->tab, n.id);
            continue;
        }
        d->ctr.reval_pings++;
        int err = 0;
        if (send_ping_err(d, &err, &n, FOR_REVAL, now)) continue;
        if (err != P2P_EUNSUPPORTED) {
            /* our own limit or a transient send failure: no verdict */
            p2p_kad_reval_cancel(&d->tab, n.id);
            continue;
        }
        /* The send was refused for the address itself (a family our socket
         * cannot reach, port 0): it will never answer, a failed check. */
        d->ctr.reval_unreachable++;
        reval_finish(d, &n, false, 0, now);
    }
}

/* ---- timeouts ---- */

static void req_timeout(p2p_disc_t *d, disc_req_t *r, p2p_disc_time_t now)
{
    disc_req_t c = *r;
    req_free(d, r);
    if (c.kind == REQ_ENR_WAIT) {
        enr_wait_done(d, &c.node, now);
        return;
    }
    /* A findnode answered with fewer than 16 entries (a small table, an
     * empty answer) ends here too, at its deadline: the node answered, so
     * it is not counted as a timeout. */
    if (c.kind == REQ_FINDNODE && c.answered)
        d->ctr.findnode_partial++;
    else
        d->ctr.timeouts++;
    if (c.purpose == FOR_REVAL) {
        reval_finish(d, &c.node, false, 0, now);
    } else if (c.purpose == FOR_BOND || c.purpose == FOR_LOOKUP) {
        disc_lookup_t *lk = lk_find(d, c.lookup);
        if (lk && lk->q[c.slot].state != Q_FREE) q_done(d, lk, c.slot, c.nvalid > 0, false, now);
    }
}

/* ---- packet handlers ---- */

/* Adds a node that pinged us (while bonded, or after it answered our
 * ping-back); only once the first refresh is done. */
static void add_inbound(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    if (d->init_done) tab_add(d, n, true, now);
}

static int on_ping(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                   p2p_disc_time_t now)
{
    d->ctr.rx_ping++;
    p2p_discv4_packet_t p;
    pkt_init(&p, P2P_DISCV4_PONG, now);
    p.u.pong.to.ip = src->ip;
    p.u.pong.to.udp = src->udp;
    p.u.pong.to.tcp = pkt->u.ping.from.tcp;
    memcpy(p.u.pong.reply_tok, pkt->hash, 32);
    p.u.pong.has_enr_seq = true;
    p.u.pong.enr_seq = d->seq;
    (void)disc_send(d, NULL, src, &p);

    p2p_node_t n;
    memset(&n, 0, sizeof n);
    memcpy(n.id, pkt->sender_id, 32);
    memcpy(n.pubkey, pkt->sender, 64);
    n.ep = p.u.pong.to; /* UDP source, TCP port from the ping */
    uint64_t lastpong = db_time(d, d->db.last_pong, n.id, &src->ip);
    if (within_bond(lastpong, now.unix_s)) {
        add_inbound(d, &n, now);
        db_set_time(d, d->db.set_last_ping, n.id, &src->ip, now.unix_s);
        /* Answered: it holds a bond for us now (after our pong, sent
         * first), so a newer record it announces can be asked for. */
        const p2p_kad_entry_t *te = p2p_kad_find(&d->tab, n.id);
        if (te && pkt->u.ping.has_enr_seq && pkt->u.ping.enr_seq > te->node.seq &&
            p2p_ip_equal(&te->node.ep.ip, &src->ip))
            request_enr(d, &te->node, now);
        return 0;
    }
    /* Unbonded: nothing is written to the DB until the sender answers our
     * ping-back (a flood of pings from fresh keys must not fill it); the
     * ping time waits in the ping-back's matcher. */
    disc_pb_t *e = pb_find(d, n.id, &n.ep.ip);
    if (!e) e = pb_start(d, &n, now);
    if (e) e->ping_unix = now.unix_s;
    return 0;
}

static int on_pong(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                   p2p_disc_time_t now)
{
    disc_req_t c;
    disc_req_t *r = req_find(d, REQ_PING, pkt->sender_id, &src->ip, pkt->u.pong.reply_tok);
    disc_pb_t *e = r ? NULL : pb_find(d, pkt->sender_id, &src->ip);
    if (r) {
        c = *r;
        req_free(d, r);
    } else if (e && memcmp(e->tok, pkt->u.pong.reply_tok, 32) == 0) {
        memset(&c, 0, sizeof c);
        c.kind = REQ_PING;
        c.purpose = FOR_PINGBACK;
        c.ping_unix = e->ping_unix;
        c.node = e->node;
        pb_release(d, e);
    } else {
        d->ctr.drop_unsolicited++;
        return P2P_EPROTO;
    }
    d->ctr.rx_pong++;
    if (c.purpose == FOR_PINGBACK && c.ping_unix != 0)
        db_set_time(d, d->db.set_last_ping, pkt->sender_id, &src->ip, c.ping_unix);
    db_set_time(d, d->db.set_last_pong, pkt->sender_id, &src->ip, now.unix_s);

    /* Only nodes we chose to ping (table entries, lookup nodes) state our
     * endpoint: anyone can make us ping back, with keys for free. */
    if (c.purpose == FOR_REVAL || c.purpose == FOR_BOND) {
        p2p_disc_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = P2P_DISC_EV_ENDPOINT;
        ev.node = c.node;
        ev.endpoint = pkt->u.pong.to;
        disc_emit(d, &ev);
    }

    uint64_t seq = pkt->u.pong.has_enr_seq ? pkt->u.pong.enr_seq : 0;
    if (c.purpose == FOR_REVAL) {
        reval_finish(d, &c.node, true, seq, now);
        return 0;
    }
    if (c.purpose == FOR_PINGBACK) {
        add_inbound(d, &c.node, now);
    } else if (c.purpose == FOR_BOND) {
        disc_lookup_t *lk = lk_find(d, c.lookup);
        if (lk && lk->q[c.slot].state == Q_BONDING) {
            lk->q[c.slot].state = Q_SETTLE;
            lk->q[c.slot].wake_ns = now.ns + P2P_DISC_RESP_TIMEOUT_NS;
        }
    }
    const p2p_kad_entry_t *te = p2p_kad_find(&d->tab, c.node.id);
    if (te && seq > te->node.seq) request_enr_bonded(d, &te->node, now);
    return 0;
}

static int on_findnode(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                       p2p_disc_time_t now)
{
    uint64_t lastpong = db_time(d, d->db.last_pong, pkt->sender_id, &src->ip);
    if (!within_bond(lastpong, now.unix_s)) {
        d->ctr.drop_unbonded_findnode++;
        return P2P_ERESTRICT;
    }
    d->ctr.rx_findnode++;
    uint8_t target_id[32];
    p2p_keccak256(target_id, pkt->u.findnode.target, 64);
    p2p_node_t closest[P2P_DISC_RESULT];
    unsigned n = p2p_kad_closest(&d->tab, closest, P2P_DISC_RESULT, target_id, true);

    p2p_discv4_packet_t p;
    pkt_init(&p, P2P_DISCV4_NEIGHBORS, now);
    unsigned sent = 0;
    for (unsigned i = 0; i < n; i++) {
        if (p2p_check_relay_ip(&src->ip, &closest[i].ep.ip) != 0) continue;
        p2p_discv4_rpcnode_t *rn = &p.u.neighbors.nodes[p.u.neighbors.n++];
        rn->ep = closest[i].ep;
        memcpy(rn->id, closest[i].pubkey, 64);
        if (p.u.neighbors.n == P2P_DISCV4_MAX_NEIGHBORS) {
            (void)disc_send(d, NULL, src, &p);
            sent++;
            p.u.neighbors.n = 0;
        }
    }
    if (p.u.neighbors.n > 0 || sent == 0) (void)disc_send(d, NULL, src, &p);
    return 0;
}

/* The endpoint checks of a received node (a Neighbors entry, or the
 * endpoint of a record sent by the node at sender): an IP of a family our
 * socket reaches, udp > 1024, the relay-address rule, NetRestrict.
 * Returns NULL if ep passes, else the counter of the first failed check. */
static uint64_t *ep_fault(p2p_disc_t *d, const p2p_endpoint_t *ep, const p2p_ip_t *sender)
{
    if (ep->ip.family != 4 && ep->ip.family != 6) return &d->ctr.node_no_ip;
    if (!reachable(d, &ep->ip)) return &d->ctr.node_unreachable;
    if (ep->udp <= 1024) return &d->ctr.node_low_port;
    if (p2p_check_relay_ip(sender, &ep->ip) != 0) return &d->ctr.node_bad_relay;
    if (d->has_restrict && !p2p_netlist_contains(&d->restrict_, &ep->ip))
        return &d->ctr.node_restricted;
    return NULL;
}

enum { RN_BAD, RN_SELF, RN_OK };

/* Validates one Neighbors entry from sender ip.  Out: n.  Returns RN_OK if
 * usable, RN_SELF if it is a valid entry naming us (not usable, but an
 * answer all the same), RN_BAD if it failed a check (both counted). */
static int check_rpcnode(p2p_disc_t *d, p2p_node_t *n, const p2p_discv4_rpcnode_t *rn,
                         const p2p_ip_t *sender)
{
    uint64_t *fault = ep_fault(d, &rn->ep, sender);
    if (fault) {
        (*fault)++;
        return RN_BAD;
    }
    if (p2p_secp_pubkey_check(rn->id) != 0) {
        d->ctr.node_bad_key++;
        return RN_BAD;
    }
    memset(n, 0, sizeof *n);
    memcpy(n->pubkey, rn->id, 64);
    p2p_node_id(n->id, n->pubkey);
    n->ep = rn->ep;
    if (memcmp(n->id, d->self_id, 32) == 0) {
        d->ctr.node_self++;
        return RN_SELF;
    }
    return RN_OK;
}

static int on_neighbors(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                        p2p_disc_time_t now)
{
    /* More than the 12 we send is taken, up to what a 1280-byte packet
     * can hold (the decoder's cap): Besu answers with 13 in one packet. */
    unsigned cnt = pkt->u.neighbors.n;
    if (cnt > P2P_DISCV4_NEIGHBORS_CAP) return P2P_EINVAL;
    if (cnt > P2P_DISCV4_MAX_NEIGHBORS) d->ctr.rx_neighbors_over12++;
    disc_req_t *r = req_find(d, REQ_FINDNODE, pkt->sender_id, &src->ip, NULL);
    if (!r) {
        d->ctr.drop_unsolicited++;
        return P2P_EPROTO;
    }
    d->ctr.rx_neighbors++;
    r->answered = true;
    disc_lookup_t *lk = lk_find(d, r->lookup);
    if (lk && lk->kind == LK_REFRESH) d->refresh_ok = true;
    /* A queried node of the iterator that answered (even with no entries)
     * is part of its result: a candidate. */
    if (lk && lk->kind == LK_ITER) cand_push(d, &r->node);
    for (unsigned i = 0; i < cnt; i++) {
        p2p_node_t n;
        int v = check_rpcnode(d, &n, &pkt->u.neighbors.nodes[i], &src->ip);
        /* An entry naming us is a valid answer (a node whose table holds
         * only us gives nothing else): it counts for the query's success,
         * as the reference client counts it, but is never added. */
        if (v != RN_BAD) r->nvalid++;
        if (v != RN_OK) continue;
        tab_add(d, &n, false, now);
        cand_push(d, &n);
        if (lk) lk_offer(lk, &n);
    }
    r->nreceived = (uint16_t)(r->nreceived + cnt);
    if (r->nreceived >= P2P_DISC_RESULT) {
        disc_req_t c = *r;
        req_free(d, r);
        if (lk && lk->q[c.slot].state != Q_FREE) q_done(d, lk, c.slot, c.nvalid > 0, false, now);
    }
    return 0;
}

static int on_enrrequest(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                         p2p_disc_time_t now)
{
    uint64_t lastpong = db_time(d, d->db.last_pong, pkt->sender_id, &src->ip);
    if (!within_bond(lastpong, now.unix_s)) {
        d->ctr.drop_unbonded_enrrequest++;
        return P2P_ERESTRICT;
    }
    if (!d->has_record) {
        d->ctr.drop_no_record++;
        return P2P_ESTATE;
    }
    d->ctr.rx_enrrequest++;
    p2p_discv4_packet_t p;
    pkt_init(&p, P2P_DISCV4_ENRRESPONSE, now);
    memcpy(p.u.enrresponse.reply_tok, pkt->hash, 32);
    p.u.enrresponse.record = d->record;
    (void)disc_send(d, NULL, src, &p);
    return 0;
}

static int on_enrresponse(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                          p2p_disc_time_t now)
{
    disc_req_t *r = req_find(d, REQ_ENR, pkt->sender_id, &src->ip, pkt->u.enrresponse.reply_tok);
    if (!r) {
        d->ctr.drop_unsolicited++;
        return P2P_EPROTO;
    }
    req_free(d, r);
    const p2p_enr_t *rec = &pkt->u.enrresponse.record;
    uint8_t rid[32];
    p2p_node_t n;
    if (p2p_enr_verify(rec) != 0 || p2p_enr_node_id(rec, rid) != 0 ||
        memcmp(rid, pkt->sender_id, 32) != 0 ||
        /* of a record naming both families, the address our socket reaches */
        p2p_enr_to_node_for(&n, rec,
                            d->ipv4_only   ? 4
                            : d->ipv6_only ? 6
                                           : 0) != 0) {
        d->ctr.drop_bad_enr++;
        return P2P_EPROTO;
    }
    d->ctr.rx_enrresponse++;
    /* Only table entries are updated (the entry stays in place, so e remains
     * valid across the update). */
    const p2p_kad_entry_t *e = p2p_kad_find(&d->tab, n.id);
    if (!e || n.seq <= e->node.seq) return 0;
    if (n.ep.ip.family == 0) {
        n.ep = e->node.ep; /* a record without address */
    } else if (ep_fault(d, &n.ep, &src->ip)) {
        /* The record is stored and its seq applied, but its endpoint fails
         * the checks of a Neighbors entry: the old endpoint stays. */
        d->ctr.enr_bad_endpoint++;
        n.ep = e->node.ep;
    }
    if (p2p_kad_update_record(&d->tab, &n) == P2P_ELIMIT) d->ctr.table_iplimit++;
    disc_emit_node(d, P2P_DISC_EV_RECORD, &e->node);
    uint8_t raw[P2P_ENR_MAX_SIZE];
    size_t rawlen = 0;
    if (p2p_enr_encode(raw, sizeof raw, &rawlen, rec) != 0) rawlen = 0;
    db_put_node(d, &e->node, raw, rawlen);
    return 0;
}

/* ---- public API ---- */

int p2p_disc_new(p2p_disc_t **out, const p2p_disc_config_t *cfg)
{
    *out = NULL;
    const p2p_disc_db_t *db = &cfg->db;
    if (!cfg->io.send || !db->last_ping || !db->set_last_ping || !db->last_pong ||
        !db->set_last_pong || !db->findfails || !db->set_findfails || !db->put_node ||
        !db->query_seeds || cfg->nbootnodes > P2P_DISC_MAX_BOOTNODES ||
        (cfg->nbootnodes && !cfg->bootnodes))
        return P2P_EINVAL;
    p2p_disc_t *d = calloc(1, sizeof *d);
    if (!d) return P2P_ENOMEM;
    d->io = cfg->io;
    d->db = cfg->db;
    memcpy(d->self_pub, cfg->pubkey, 64);
    p2p_node_id(d->self_id, cfg->pubkey);
    d->endpoint = cfg->endpoint;
    if (cfg->record) p2p_disc_set_record(d, cfg->record);
    if (cfg->netrestrict) {
        d->has_restrict = true;
        d->restrict_ = *cfg->netrestrict;
    }
    d->ipv4_only = cfg->ipv4_only;
    d->ipv6_only = cfg->ipv6_only;
    /* bootnodes outside NetRestrict or of a family our socket cannot reach
     * are dropped here, counted once */
    for (unsigned i = 0; i < cfg->nbootnodes; i++) {
        if (!reachable(d, &cfg->bootnodes[i].ep.ip))
            d->ctr.node_unreachable++;
        else if (allowed(d, &cfg->bootnodes[i]))
            d->boot[d->nboot++] = cfg->bootnodes[i];
    }
    p2p_kad_init(&d->tab, d->self_id, cfg->seed);
    /* sized for every ping-back: they never grow (no allocation later) */
    d->pb_cap = cfg->pingbacks ? cfg->pingbacks : P2P_DISC_PINGBACKS;
    d->pb = calloc(d->pb_cap, sizeof d->pb[0]);
    if (!d->pb ||
        p2p_idmap_init(&d->pb_ids, d->pb_cap, d->pb_cap, cfg->seed ^ 0x9e3779b97f4a7c15ull) != 0) {
        free(d->pb);
        free(d);
        return P2P_ENOMEM;
    }
    if (p2p_idmap_init(&d->pb_nets, d->pb_cap, d->pb_cap, cfg->seed ^ 0xc2b2ae3d27d4eb4full) != 0) {
        p2p_idmap_free(&d->pb_ids);
        free(d->pb);
        free(d);
        return P2P_ENOMEM;
    }
    d->retry_ns = P2P_DISC_RETRY_REFRESH_NS;
    *out = d;
    return 0;
}

void p2p_disc_free(p2p_disc_t *d)
{
    if (!d) return;
    p2p_idmap_free(&d->pb_ids);
    p2p_idmap_free(&d->pb_nets);
    free(d->pb);
    free(d);
}

int p2p_disc_handle(p2p_disc_t *d, const p2p_discv4_packet_t *pkt, const p2p_endpoint_t *src,
                    p2p_disc_time_t now)
{
    int rc;
    if (memcmp(pkt->sender_id, d->self_id, 32) == 0) {
        d->ctr.drop_from_self++;
        return P2P_EPROTO;
    }
    if (d->has_restrict && !p2p_netlist_contains(&d->restrict_, &src->ip)) {
        d->ctr.drop_restricted++;
        return P2P_ERESTRICT;
    }
    if (pkt->type != P2P_DISCV4_ENRRESPONSE && pkt->expiration < now.unix_s) {
        d->ctr.drop_expired++;
        return P2P_EEXPIRED;
    }
    switch (pkt->type) {
    case P2P_DISCV4_PING:
        rc = on_ping(d, pkt, src, now);
        break;
    case P2P_DISCV4_PONG:
        rc = on_pong(d, pkt, src, now);
        break;
    case P2P_DISCV4_FINDNODE:
        rc = on_findnode(d, pkt, src, now);
        break;
    case P2P_DISCV4_NEIGHBORS:
        rc = on_neighbors(d, pkt, src, now);
        break;
    case P2P_DISCV4_ENRREQUEST:
        rc = on_enrrequest(d, pkt, src, now);
        break;
    case P2P_DISCV4_ENRRESPONSE:
        rc = on_enrresponse(d, pkt, src, now);
        break;
    default:
        d->ctr.drop_unknown_type++;
        return P2P_EUNSUPPORTED;
    }
    lk_poll(d, now);
    return rc;
}

void p2p_disc_tick(p2p_disc_t *d, p2p_disc_time_t now)
{
    if (!d->started) {
        d->started = true;
        refresh_start(d, now);
    }
    for (unsigned i = 0; i < d->req_hi; i++) {
        disc_req_t *r = &d->req[i];
        if (r->kind != REQ_FREE && now.ns >= r->deadline_ns) req_timeout(d, r, now);
    }
    pb_expire(d, now);
    if (d->refresh_phase == 0) {
        bool empty = p2p_kad_len(&d->tab) == 0 && now.ns >= d->refresh_end_ns + d->retry_ns;
        if (now.ns >= d->next_refresh_ns || empty) refresh_start(d, now);
    }
    lk_poll(d, now);
    /* After lk_poll, which may have finished the previous one. */
    if (d->want && d->clen < P2P_DISC_CANDIDATES / 2 && !lk_iter_running(d) &&
        now.ns >= d->iter_next_ns) {
        uint8_t target[64];
        random_target(d, target);
        /* Spaced even when no lookup slot was free, so this never spins. */
        d->iter_next_ns = now.ns + P2P_DISC_ITER_SPACING_NS;
        (void)lk_start(d, NULL, target, LK_ITER, now);
        lk_reap(d, now);
    }
    /* Last, so entries added above (seeds, bootnodes) are scheduled too:
     * after a tick nothing is due any more. */
    reval_run(d, now);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t p2p_disc_deadline(const p2p_disc_t *d)
{
    if (!d->started) return 0;
    uint64_t t = p2p_kad_reval_deadline(&d->tab);
    for (unsigned i = 0; i < d->req_hi; i++)
        if (d->req[i].kind != REQ_FREE) t = min64(t, d->req[i].deadline_ns);
    if (d->pb_len > 0) t = min64(t, d->pb[d->pb_head].deadline_ns);
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++) {
        const disc_lookup_t *lk = &d->lk[i];
        if (!lk->handle) continue;
        for (unsigned qi = 0; qi < P2P_DISC_ALPHA; qi++)
            if (lk->q[qi].state == Q_SETTLE) t = min64(t, lk->q[qi].wake_ns);
    }
    if (d->refresh_phase == 0) {
        t = min64(t, d->next_refresh_ns);
        if (p2p_kad_len(&d->tab) == 0) t = min64(t, d->refresh_end_ns + d->retry_ns);
    }
    if (d->want && d->clen < P2P_DISC_CANDIDATES / 2 && !lk_iter_running(d))
        t = min64(t, d->iter_next_ns);
    return t;
}

int p2p_disc_lookup(p2p_disc_t *d, uint32_t *handle, const uint8_t target[64], p2p_disc_time_t now)
{
    int rc = lk_start(d, handle, target, LK_USER, now);
    lk_reap(d, now);
    return rc;
}

void p2p_disc_want_candidates(p2p_disc_t *d, bool on)
{
    d->want = on;
}

unsigned p2p_disc_candidates_len(const p2p_disc_t *d)
{
    return d->clen;
}

unsigned p2p_disc_candidates_pop(p2p_disc_t *d, p2p_node_t *out, unsigned cap)
{
    unsigned n = 0;
    while (n < cap && d->clen > 0) {
        out[n++] = d->cand[d->chead];
        d->chead = (d->chead + 1) % P2P_DISC_CANDIDATES;
        d->clen--;
    }
    return n;
}

p2p_kad_add_t p2p_disc_add_node(p2p_disc_t *d, const p2p_node_t *n, p2p_disc_time_t now)
{
    if (!allowed(d, n)) return P2P_KAD_RESTRICTED;
    p2p_kad_add_t r = p2p_kad_add_seen(&d->tab, n, now.ns);
    if (r == P2P_KAD_ADDED) disc_emit_node(d, P2P_DISC_EV_NODE_ADDED, n);
    if (r == P2P_KAD_IPLIMIT || r == P2P_KAD_ADDR_LIMIT) d->ctr.table_iplimit++;
    return r;
}

void p2p_disc_set_record(p2p_disc_t *d, const p2p_enr_t *record)
{
    if (reentered(d)) return;
    d->record = *record;
    d->has_record = true;
    d->seq = record->seq;
}

void p2p_disc_set_endpoint(p2p_disc_t *d, const p2p_endpoint_t *ep)
{
    if (reentered(d)) return;
    d->endpoint = *ep;
}

const p2p_disc_counters_t *p2p_disc_counters(const p2p_disc_t *d)
{
    return &d->ctr;
}

size_t p2p_disc_counters_format(const p2p_disc_t *d, char *out, size_t cap)
{
    size_t len = 0;
#define P2P__DISC_CTR_FMT(name, desc)                                                              \
    {                                                                                              \
        int w = snprintf(len < cap ? out + len : NULL, len < cap ? cap - len : 0, "%s %llu\n",     \
                         #name, (unsigned long long)d->ctr.name);                                  \
        if (w > 0) len += (size_t)w;                                                               \
    }
    P2P_DISC_COUNTERS(P2P__DISC_CTR_FMT)
#undef P2P__DISC_CTR_FMT
    if (cap > 0 && len >= cap) out[cap - 1] = 0;
    return len;
}

const p2p_kad_table_t *p2p_disc_table(const p2p_disc_t *d)
{
    return &d->tab;
}

const uint8_t *p2p_disc_self(const p2p_disc_t *d)
{
    return d->self_id;
}

unsigned p2p_disc_pending(const p2p_disc_t *d)
{
    return d->npending + d->npb;
}

unsigned p2p_disc_pingbacks(const p2p_disc_t *d)
{
    return d->npb;
}

unsigned p2p_disc_lookups_running(const p2p_disc_t *d)
{
    unsigned n = 0;
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++) n += d->lk[i].handle != 0;
    return n;
}

bool p2p_disc_init_done(const p2p_disc_t *d)
{
    return d->init_done;
}
