/*
 * tests/actors/test_disc_clock.c: the discovery core across clock jumps,
 * with virtual time whose two scales move independently (monotonic ns for
 * timers and matchers, wall unix seconds for expirations and bond stamps).
 * The test plays 16 remote nodes of a full bucket that answer every ping
 * with a pong and every findnode with Neighbors naming three of them, and
 * one client node C that bonds with us and sends findnode.
 *
 *   steady      3 virtual minutes: the table stays at 16, revalidation pings.
 *   wall -1 day (NTP step back; monotonic time goes on): no mass eviction
 *               (table 16, no revalidation deletion), timers keep firing
 *               (revalidation pings, replies matched), nothing in the DB is
 *               written in the future; C's bond stamp, now 1 day ahead, no
 *               longer proves anything (findnode dropped as unbonded, not
 *               kept valid for an extra day); C bonds again and is answered.
 *   +25 h       (suspend: both clocks jump): the bond made before it has
 *               expired (findnode dropped); pending requests time out once;
 *               the overdue refresh runs once (not once per missed period);
 *               revalidation resumes at its normal pace (no burst), the
 *               table stays at 16; the deadline is always in the future
 *               after a tick (never stuck, never spinning); C bonds again.
 *   wall +2 days alone: every answer looks expired to us (drop_expired
 *               counts), revalidation deletes nodes only at its normal pace
 *               (a third of the checks per missed reply), and after the
 *               clock comes back the same nodes answer again.
 */
#include "tests/actors/disc_harness.h"

#include "core/clock.h"

static p2p_ip_t pub_ip(unsigned i)
{
    return p2p_ip4(20, (uint8_t)(i >> 8), (uint8_t)i, 1);
}

/* ---- the clock and the remote nodes ---- */

typedef struct world {
    harness_t *h;
    uint64_t ns;         /* our monotonic time */
    int64_t skew;        /* our wall clock minus the true one (seconds) */
    uint64_t true_s;     /* true unix seconds at ns = 0 */
    tl_ident_t keys[17]; /* [16]: the client C */
    p2p_node_t ns_[17];
    unsigned seen; /* outbox entries handled */
    unsigned answered_pings, answered_findnodes;
    bool mute;                /* remote nodes do not answer */
    uint64_t max_tick_gap_ns; /* largest deadline - now after a tick */
    unsigned ticks;
} world_t;

static p2p_disc_time_t our_time(const world_t *w)
{
    p2p_disc_time_t t = {
        .ns = w->ns, .unix_s = (uint64_t)((int64_t)(w->true_s + w->ns / 1000000000ull) + w->skew)};
    return t;
}

/* A packet from k as the remote (with a true clock) stamps it. */
static void remote_pkt(const world_t *w, p2p_discv4_packet_t *p, const tl_ident_t *k, uint8_t type)
{
    p2p_disc_time_t t = {.ns = w->ns, .unix_s = w->true_s + w->ns / 1000000000ull};
    tl_pkt(p, k, type, t);
}

static int node_at(const world_t *w, const p2p_endpoint_t *to)
{
    for (int i = 0; i < 17; i++)
        if (p2p_ip_equal(&w->ns_[i].ep.ip, &to->ip)) return i;
    return -1;
}

/* Answers what the core sent since the last call. */
static void respond(world_t *w)
{
    harness_t *h = w->h;
    while (w->seen < h->nout) {
        sent_t s = h->out[w->seen++];
        int k = node_at(w, &s.to);
        if (k < 0 || w->mute) continue;
        p2p_endpoint_t src = ep_of(w->ns_[k].ep.ip, w->ns_[k].ep.udp);
        p2p_discv4_packet_t p;
        if (s.pkt.type == P2P_DISCV4_PING) {
            remote_pkt(w, &p, &w->keys[k], P2P_DISCV4_PONG);
            p.u.pong.to.ip = my_ip;
            p.u.pong.to.udp = 30303;
            memcpy(p.u.pong.reply_tok, s.hash, 32);
            (void)p2p_disc_handle(h->d, &p, &src, our_time(w));
            w->answered_pings++;
        } else if (s.pkt.type == P2P_DISCV4_FINDNODE) {
            remote_pkt(w, &p, &w->keys[k], P2P_DISCV4_NEIGHBORS);
            for (int j = 1; j <= 3; j++) {
                const p2p_node_t *o = &w->ns_[(k + j) % 16];
                p2p_discv4_rpcnode_t *rn = &p.u.neighbors.nodes[p.u.neighbors.n++];
                rn->ep = o->ep;
                memcpy(rn->id, o->pubkey, 64);
            }
            (void)p2p_disc_handle(h->d, &p, &src, our_time(w));
            w->answered_findnodes++;
        }
    }
    if (h->nout > OUTBOX - 32) { /* keep room: forget what was handled */
        h->nout = 0;
        w->seen = 0;
    }
}

/* Runs timers (ticking at each deadline) and answers, for dur_ns. */
static void run(world_t *w, uint64_t dur_ns)
{
    uint64_t end = w->ns + dur_ns;
    respond(w);
    for (;;) {
        uint64_t dl = p2p_disc_deadline(w->h->d);
        if (dl > end) break;
        if (dl > w->ns) w->ns = dl;
        p2p_disc_tick(w->h->d, our_time(w));
        w->ticks++;
        uint64_t after = p2p_disc_deadline(w->h->d);
        CHECK(after > w->ns);
        if (after <= w->ns) break; /* stuck: would spin */
        respond(w);
    }
    w->ns = end;
}

/* How many of the 16 bucket nodes are in the table. */
static unsigned present(const world_t *w)
{
    unsigned k = 0;
    for (int i = 0; i < 16; i++) k += p2p_kad_find(p2p_disc_table(w->h->d), w->ns_[i].id) != NULL;
    return k;
}

static const p2p_disc_counters_t *C(const world_t *w)
{
    return p2p_disc_counters(w->h->d);
}

/* C's findnode: answered (true) or dropped as unbonded. */
static bool client_findnode(world_t *w, const tl_ident_t *c, const p2p_endpoint_t *src)
{
    p2p_discv4_packet_t p;
    remote_pkt(w, &p, c, P2P_DISCV4_FINDNODE);
    memcpy(p.u.findnode.target, c->pub, 64);
    unsigned before = w->h->nout;
    int rc = p2p_disc_handle(w->h->d, &p, src, our_time(w));
    bool answered = rc == 0 && h_find(w->h, before, P2P_DISCV4_NEIGHBORS) >= 0;
    w->seen = w->h->nout; /* not for the remote nodes */
    return answered;
}

/* C bonds: pings us, answers our ping back. */
static void client_bond(world_t *w, const tl_ident_t *c, const p2p_endpoint_t *src)
{
    unsigned before = w->h->nout;
    p2p_discv4_packet_t p;
    remote_pkt(w, &p, c, P2P_DISCV4_PING);
    p.u.ping.version = 4;
    p.u.ping.from = *src;
    p.u.ping.to.ip = my_ip;
    p.u.ping.to.udp = 30303;
    CHECK_OK(p2p_disc_handle(w->h->d, &p, src, our_time(w)));
    int pi = -1;
    for (unsigned i = before; i < w->h->nout; i++)
        if (w->h->out[i].pkt.type == P2P_DISCV4_PING && p2p_ip_equal(&w->h->out[i].to.ip, &src->ip))
            pi = (int)i;
    /* no ping back: the node still holds a valid bond of C (C answered
     * revalidation pings meanwhile) */
    if (pi >= 0) {
        remote_pkt(w, &p, c, P2P_DISCV4_PONG);
        p.u.pong.to.ip = my_ip;
        p.u.pong.to.udp = 30303;
        memcpy(p.u.pong.reply_tok, w->h->out[pi].hash, 32);
        CHECK_OK(p2p_disc_handle(w->h->d, &p, src, our_time(w)));
    }
    w->seen = w->h->nout;
}

static bool db_in_future(const world_t *w)
{
    uint64_t now = our_time(w).unix_s;
    for (unsigned i = 0; i < w->h->db.n; i++)
        if (w->h->db.r[i].lastpong > now + 1 || w->h->db.r[i].lastping > now + 1) return true;
    return false;
}

/* No bond or ping stamp in the DB lies in our future. */
int main(void)
{
    my_ip = p2p_ip4(10, 0, 0, 1);
    world_t *w = calloc(1, sizeof *w);
    w->true_s = TL_UNIX_BASE;
    w->h = h_new(NULL, 0, NULL, 1);
    harness_t *h = w->h;
    unsigned n = 0;
    while (n < 16) {
        tl_ident(&w->keys[n]);
        if (p2p_kad_logdist(h->me.id, w->keys[n].id) != 256) continue;
        w->ns_[n] = tl_node(&w->keys[n], pub_ip(100 + n), 30303);
        CHECK(p2p_disc_add_node(h->d, &w->ns_[n], our_time(w)) == P2P_KAD_ADDED);
        n++;
    }
    tl_ident(&w->keys[16]);
    w->ns_[16] = tl_node(&w->keys[16], p2p_ip4(30, 1, 2, 3), 40404);
    const tl_ident_t client = w->keys[16];
    p2p_endpoint_t csrc = ep_of(p2p_ip4(30, 1, 2, 3), 40404);
    const p2p_kad_table_t *tab = p2p_disc_table(h->d);

    /* steady */
    run(w, 180 * P2P_NS_PER_S);
    CHECK(present(w) == 16);
    CHECK(C(w)->reval_deleted == 0);
    uint64_t rp0 = C(w)->reval_pings;
    CHECK(rp0 >= 20);
    client_bond(w, &client, &csrc);
    CHECK(client_findnode(w, &client, &csrc));

    /* wall clock one day back */
    w->skew = -86400;
    uint64_t pongs0 = C(w)->rx_pong, del0 = C(w)->reval_deleted;
    CHECK(!client_findnode(w, &client, &csrc)); /* a stamp from "tomorrow" proves nothing */
    CHECK(C(w)->drop_unbonded_findnode == 1);
    run(w, 180 * P2P_NS_PER_S);
    CHECK(present(w) == 16);
    CHECK(C(w)->reval_deleted == del0);
    CHECK(C(w)->reval_pings >= rp0 + 20);
    CHECK(C(w)->rx_pong > pongs0 + 20);
    CHECK(C(w)->drop_expired == 0);
    client_bond(w, &client, &csrc);
    CHECK(client_findnode(w, &client, &csrc));
    /* a small step back (under P2P_DISC_BOND_FUTURE_S) keeps the bond */
    w->skew -= 120;
    CHECK(client_findnode(w, &client, &csrc));
    printf("wall -1 day: table %u, revalidation pings %llu, pongs matched %llu, deleted "
           "%llu\n",
           p2p_kad_len(tab), (unsigned long long)C(w)->reval_pings,
           (unsigned long long)C(w)->rx_pong, (unsigned long long)C(w)->reval_deleted);

    /* suspend for 25 h: both clocks jump */
    uint64_t ref0 = C(w)->refreshes, rp1 = C(w)->reval_pings;
    w->ns += 25ull * 3600 * P2P_NS_PER_S;
    CHECK(!client_findnode(w, &client, &csrc)); /* bond expired */
    CHECK(C(w)->drop_unbonded_findnode == 2);
    run(w, 1 * P2P_NS_PER_S);
    /* one burst at most: one ping per list, not one per missed period */
    CHECK(C(w)->reval_pings - rp1 <= 4);
    CHECK(C(w)->refreshes - ref0 <= 1);
    run(w, 180 * P2P_NS_PER_S);
    CHECK(C(w)->refreshes - ref0 == 1);
    CHECK(C(w)->reval_pings - rp1 >= 20);
    CHECK(C(w)->reval_pings - rp1 <= 180 / 3 * 2 + 8); /* the normal pace */
    CHECK(present(w) == 16);
    CHECK(C(w)->reval_deleted == del0);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    CHECK(!db_in_future(w));
    client_bond(w, &client, &csrc);
    CHECK(client_findnode(w, &client, &csrc));

    /* our wall clock 2 days ahead alone: answers look expired */
    w->skew += 2 * 86400 + 120;
    uint64_t exp0 = C(w)->drop_expired, del1 = C(w)->reval_deleted;
    uint64_t rp2 = C(w)->reval_pings;
    run(w, 60 * P2P_NS_PER_S);
    CHECK(C(w)->drop_expired > exp0);
    uint64_t deleted = C(w)->reval_deleted - del1;
    uint64_t pinged = C(w)->reval_pings - rp2;
    CHECK(deleted <= pinged); /* at the revalidation pace, never a sweep */
    CHECK(deleted < 16);
    printf("wall +2 days for 60 s: %llu answers dropped as expired, %llu revalidation "
           "pings, %llu "
           "deleted (table %u)\n",
           (unsigned long long)(C(w)->drop_expired - exp0), (unsigned long long)pinged,
           (unsigned long long)deleted, p2p_kad_len(tab));
    /* the clock comes back: the nodes answer again */
    w->skew = 0;
    uint64_t pongs1 = C(w)->rx_pong, exp1 = C(w)->drop_expired;
    run(w, 60 * P2P_NS_PER_S);
    CHECK(C(w)->rx_pong >= pongs1 + 5);
    CHECK(C(w)->drop_expired == exp1);
    CHECK(w->ticks > 100);
    h_free(h);
    free(w);
    return tu_done("disc_clock");
}
