/*
 * tests/actors/test_disc_core.c: the discovery v4 core driven packet by
 * packet with virtual time.  The test plays the remote nodes: it reads what
 * the core sends (the outbox) and crafts the replies.
 *
 * Covered: pong contents and ping-back-and-add, bonded inbound add, no
 * Neighbors / ENRResponse to an unproven ID+IP, findnode chunking (16 -> 12 +
 * 4) and the relay filter, an empty Neighbors, expired packets, packets from
 * our own ID, unsolicited pongs / neighbors / ENR responses (their nodes never
 * enter the table), oversized neighbor lists, validation of neighbor entries,
 * ensure-bond before findnode (ping, pong, 500 ms), findnode failures and
 * eviction (not of an entry at another address than the failing one),
 * revalidation outcomes through the core (timeout -> delete +
 * promote; pong with a higher seq -> ENR request -> record applied, held
 * 500 ms for the ping-back of a node that has not pinged us, then sent; live with
 * checks > 5 -> DB seed; no verdict for an entry that moved meanwhile), refresh (seeds, bootnodes,
 * self + 3 random lookups, next in 15-30 min), the candidate stream, DB errors, an IPv4-only socket
 * (IPv6 entries dropped, an unreachable table entry fails its revalidation), the checks on an
 * ENRResponse's record endpoint, no node-DB write for pings from unbonded senders, the ping-back
 * pool under a flood (per-network cap, oldest evicted), NetRestrict on every way into the table
 * (bootnodes, seeds, added nodes), a proven address over the IP limits (old one kept, counted, not
 * marked live nor served in findnode answers).
 */
#include "tests/actors/disc_harness.h"
#include "wire/rlp.h"

static unsigned h_count(const harness_t *h, uint8_t type)
{
    unsigned c = 0;
    for (unsigned i = 0; i < h->nout; i++) c += h->out[i].pkt.type == type;
    return c;
}

/* The record seq the pings of h_ping announce (0: none newer than a
 * table entry's, so no ENR request follows). */
static uint64_t h_ping_seq;

/* Delivers the ping of k from src to h. */
static int h_ping(harness_t *h, const tl_ident_t *k, const p2p_endpoint_t *src, uint16_t tcp,
                  p2p_disc_time_t now, uint8_t hash_out[32])
{
    p2p_discv4_packet_t p;
    tl_pkt(&p, k, P2P_DISCV4_PING, now);
    p.u.ping.version = 4;
    p.u.ping.from = *src;
    p.u.ping.from.tcp = tcp;
    p.u.ping.to.ip = my_ip;
    p.u.ping.to.udp = 30303;
    p.u.ping.has_enr_seq = true;
    p.u.ping.enr_seq = h_ping_seq;
    if (hash_out) memcpy(hash_out, p.hash, 32);
    return p2p_disc_handle(h->d, &p, src, now);
}

/* Delivers k's pong answering the ping with hash tok. */
static int h_pong(harness_t *h, const tl_ident_t *k, const p2p_endpoint_t *src,
                  const uint8_t tok[32], uint64_t seq, p2p_disc_time_t now)
{
    p2p_discv4_packet_t p;
    tl_pkt(&p, k, P2P_DISCV4_PONG, now);
    p.u.pong.to.ip = my_ip;
    p.u.pong.to.udp = 30303;
    memcpy(p.u.pong.reply_tok, tok, 32);
    p.u.pong.has_enr_seq = seq != 0;
    p.u.pong.enr_seq = seq;
    return p2p_disc_handle(h->d, &p, src, now);
}

static int h_findnode(harness_t *h, const tl_ident_t *k, const p2p_endpoint_t *src,
                      const uint8_t target[64], p2p_disc_time_t now)
{
    p2p_discv4_packet_t p;
    tl_pkt(&p, k, P2P_DISCV4_FINDNODE, now);
    memcpy(p.u.findnode.target, target, 64);
    return p2p_disc_handle(h->d, &p, src, now);
}

/* Bonds k (at src) with h through the real flow: k pings, h pongs and pings
 * back, k pongs. */
static void h_bond(harness_t *h, const tl_ident_t *k, const p2p_endpoint_t *src,
                   p2p_disc_time_t now)
{
    CHECK_OK(h_ping(h, k, src, src->udp, now, NULL));
    /* The ping-back (the latest ping to src: an earlier one may still be
     * pending, then no second one is sent). */
    int pi = -1;
    for (unsigned i = 0; i < h->nout; i++)
        if (h->out[i].pkt.type == P2P_DISCV4_PING && p2p_ip_equal(&h->out[i].to.ip, &src->ip))
            pi = (int)i;
    CHECK(pi >= 0);
    if (pi >= 0) CHECK_OK(h_pong(h, k, src, h->out[pi].hash, 0, now));
}

static p2p_ip_t pub_ip(unsigned i)
{
    return p2p_ip4(20, (uint8_t)(i >> 8), (uint8_t)i, 1);
}

/* Runs test on a started core with an empty table (h_new), freed after. */
static void with_core(void (*test)(harness_t *h))
{
    harness_t *h = h_new(NULL, 0, NULL, 1);
    test(h);
    h_free(h);
}

/* ---- tests ---- */

static void test_ping_pong_and_pingback(harness_t *h)
{
    tl_ident_t a;
    tl_ident(&a);
    p2p_endpoint_t src = ep_of(pub_ip(1), 40000); /* NAT: source port != from.udp */
    p2p_disc_time_t t = tl_time(1000 * TL_MS);
    uint8_t ping_hash[32];
    CHECK_OK(h_ping(h, &a, &src, 30304, t, ping_hash));
    /* Pong to the UDP source with the ping's TCP port, reply token, our seq. */
    CHECK(h->nout == 2);
    const sent_t *pong = &h->out[0];
    CHECK(pong->pkt.type == P2P_DISCV4_PONG);
    CHECK(p2p_ip_equal(&pong->to.ip, &src.ip) && pong->to.udp == 40000);
    CHECK(p2p_ip_equal(&pong->pkt.u.pong.to.ip, &src.ip));
    CHECK(pong->pkt.u.pong.to.udp == 40000 && pong->pkt.u.pong.to.tcp == 30304);
    CHECK_MEM(pong->pkt.u.pong.reply_tok, ping_hash, 32);
    CHECK(pong->pkt.u.pong.has_enr_seq && pong->pkt.u.pong.enr_seq == 7);
    CHECK(pong->pkt.expiration == t.unix_s + 20);
    /* Not bonded yet: ping back, and not in the table before its pong. */
    const sent_t *ping = &h->out[1];
    CHECK(ping->pkt.type == P2P_DISCV4_PING);
    CHECK(ping->to.udp == 40000 && p2p_ip_equal(&ping->to.ip, &src.ip));
    CHECK(ping->pkt.u.ping.version == 4);
    CHECK(ping->pkt.u.ping.from.udp == 30303 && p2p_ip_equal(&ping->pkt.u.ping.from.ip, &my_ip));
    CHECK(ping->pkt.u.ping.enr_seq == 7);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), a.id) == NULL);
    CHECK(p2p_disc_pending(h->d) == 1);
    uint64_t lp = 1;
    CHECK_OK(tl_db_last_ping(&h->db, &lp, a.id, &src.ip));
    CHECK(lp == 0); /* recorded once the ping-back is answered */
    /* A second ping before the pong: pong, but no second ping-back. */
    CHECK_OK(h_ping(h, &a, &src, 30304, t, NULL));
    CHECK(h->nout == 3 && h->out[2].pkt.type == P2P_DISCV4_PONG);
    /* Its pong: bonded, added verified with the observed endpoint. */
    CHECK_OK(h_pong(h, &a, &src, h->out[1].hash, 0, tl_time(1100 * TL_MS)));
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), a.id);
    CHECK(e != NULL);
    CHECK(e && e->live && e->checks == 1 && e->node.ep.udp == 40000 && e->node.ep.tcp == 30304);
    CHECK(h->ev[P2P_DISC_EV_NODE_ADDED] == 1);
    /* a pong to a ping-back states no endpoint (the pinger chose it) */
    CHECK(h->ev[P2P_DISC_EV_ENDPOINT] == 0);
    CHECK(p2p_disc_pending(h->d) == 0);
    uint64_t lpong = 0;
    CHECK_OK(tl_db_last_pong(&h->db, &lpong, a.id, &src.ip));
    CHECK(lpong == t.unix_s);
    CHECK_OK(tl_db_last_ping(&h->db, &lp, a.id, &src.ip));
    CHECK(lp == t.unix_s);
    /* Bonded now: a ping gets a pong only. */
    unsigned before = h->nout;
    CHECK_OK(h_ping(h, &a, &src, 30304, tl_time(2000 * TL_MS), NULL));
    CHECK(h->nout == before + 1 && h->out[before].pkt.type == P2P_DISCV4_PONG);
    /* The same pong again is unsolicited (the matcher is gone). */
    CHECK_ERR(h_pong(h, &a, &src, h->out[1].hash, 0, tl_time(2100 * TL_MS)), P2P_EPROTO);
    CHECK(p2p_disc_counters(h->d)->drop_unsolicited == 1);
    CHECK(p2p_disc_counters(h->d)->rx_ping == 3);

    /* A bonded sender (pong within 24 h in the DB) is added at once. */
    tl_ident_t b;
    tl_ident(&b);
    p2p_endpoint_t bsrc = ep_of(pub_ip(2), 30303);
    CHECK_OK(tl_db_set_last_pong(&h->db, b.id, &bsrc.ip, t.unix_s - 3600));
    before = h->nout;
    CHECK_OK(h_ping(h, &b, &bsrc, 30303, t, NULL));
    CHECK(h->nout == before + 1);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), b.id) != NULL);
    /* A bond older than 24 h is stale: ping back. */
    tl_ident_t c;
    tl_ident(&c);
    p2p_endpoint_t csrc = ep_of(pub_ip(3), 30303);
    CHECK_OK(tl_db_set_last_pong(&h->db, c.id, &csrc.ip, t.unix_s - 24 * 3600 - 1));
    before = h->nout;
    CHECK_OK(h_ping(h, &c, &csrc, 30303, t, NULL));
    CHECK(h->nout == before + 2 && h->out[before + 1].pkt.type == P2P_DISCV4_PING);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), c.id) == NULL);
    /* The ping-back times out: never added. */
    p2p_disc_tick(h->d, tl_time(t.ns + 600 * TL_MS));
    CHECK(p2p_kad_find(p2p_disc_table(h->d), c.id) == NULL);
    CHECK(p2p_disc_counters(h->d)->timeouts >= 1);
    /* A pong from the right ID but another IP does not match. */
    before = h->nout;
    CHECK_OK(h_ping(h, &c, &csrc, 30303, tl_time(t.ns + 700 * TL_MS), NULL));
    int pi = h_find(h, before, P2P_DISCV4_PING);
    CHECK(pi >= 0);
    p2p_endpoint_t other = ep_of(pub_ip(4), 30303);
    CHECK_ERR(h_pong(h, &c, &other, h->out[pi].hash, 0, tl_time(t.ns + 710 * TL_MS)), P2P_EPROTO);
    /* Nor from another ID, nor with another token. */
    CHECK_ERR(h_pong(h, &b, &csrc, h->out[pi].hash, 0, tl_time(t.ns + 710 * TL_MS)), P2P_EPROTO);
    uint8_t badtok[32];
    memcpy(badtok, h->out[pi].hash, 32);
    badtok[0] ^= 1;
    CHECK_ERR(h_pong(h, &c, &csrc, badtok, 0, tl_time(t.ns + 710 * TL_MS)), P2P_EPROTO);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), c.id) == NULL);
    CHECK(p2p_disc_counters(h->d)->drop_unsolicited == 4);
}

static void test_inbound_before_init(void)
{
    /* A bootnode that never answers keeps the first refresh running: inbound
     * nodes are not added until it is done. */
    tl_ident_t bk;
    tl_ident(&bk);
    p2p_node_t boot = tl_node(&bk, pub_ip(9), 30303);
    harness_t *h = h_new(&boot, 1, NULL, 0);
    CHECK(p2p_disc_deadline(h->d) == 0);
    p2p_disc_tick(h->d, tl_time(0));
    CHECK(!p2p_disc_init_done(h->d));
    CHECK(p2p_kad_find(p2p_disc_table(h->d), boot.id) != NULL);
    CHECK(h_count(h, P2P_DISCV4_PING) == 1); /* bond before findnode */
    tl_ident_t a;
    tl_ident(&a);
    p2p_endpoint_t src = ep_of(pub_ip(1), 30303);
    CHECK_OK(tl_db_set_last_pong(&h->db, a.id, &src.ip, TL_UNIX_BASE));
    CHECK_OK(h_ping(h, &a, &src, 30303, tl_time(10 * TL_MS), NULL));
    CHECK(p2p_kad_find(p2p_disc_table(h->d), a.id) == NULL);
    /* Let the four refresh lookups fail one after the other. */
    for (uint64_t ms = 0; ms < 10000 && !p2p_disc_init_done(h->d); ms += 100)
        p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    CHECK(p2p_disc_init_done(h->d));
    CHECK(p2p_disc_counters(h->d)->lookups_started == 4);
    CHECK_OK(h_ping(h, &a, &src, 30303, tl_time(20000 * TL_MS), NULL));
    CHECK(p2p_kad_find(p2p_disc_table(h->d), a.id) != NULL);
    h_free(h);
}

static void test_unbonded_requests(harness_t *h)
{
    tl_ident_t b;
    tl_ident(&b);
    p2p_endpoint_t src = ep_of(pub_ip(5), 30303);
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    uint8_t target[64];
    tu_rand_bytes(target, 64);
    /* Unproven ID+IP: no Neighbors, no ENRResponse. */
    CHECK_ERR(h_findnode(h, &b, &src, target, t), P2P_ERESTRICT);
    p2p_discv4_packet_t p;
    tl_pkt(&p, &b, P2P_DISCV4_ENRREQUEST, t);
    CHECK_ERR(p2p_disc_handle(h->d, &p, &src, t), P2P_ERESTRICT);
    CHECK(h->nout == 0);
    CHECK(p2p_disc_counters(h->d)->drop_unbonded_findnode == 1);
    CHECK(p2p_disc_counters(h->d)->drop_unbonded_enrrequest == 1);
    /* Having pinged us is not a proof: only a pong is. */
    CHECK_OK(h_ping(h, &b, &src, 30303, t, NULL));
    unsigned before = h->nout;
    CHECK_ERR(h_findnode(h, &b, &src, target, t), P2P_ERESTRICT);
    CHECK(h->nout == before);
    /* Bonded (our ping-back answered): answered. */
    h_bond(h, &b, &src, t);
    h->nout = 0;
    CHECK_OK(h_findnode(h, &b, &src, target, t));
    CHECK(h->nout == 1 && h->out[0].pkt.type == P2P_DISCV4_NEIGHBORS);
    tl_pkt(&p, &b, P2P_DISCV4_ENRREQUEST, t);
    CHECK_OK(p2p_disc_handle(h->d, &p, &src, t));
    CHECK(h->nout == 2 && h->out[1].pkt.type == P2P_DISCV4_ENRRESPONSE);
    CHECK_MEM(h->out[1].pkt.u.enrresponse.reply_tok, p.hash, 32);
    CHECK(h->out[1].pkt.u.enrresponse.record.seq == 7);
    CHECK(p2p_enr_verify(&h->out[1].pkt.u.enrresponse.record) == 0);
    /* The bond is per IP: the same ID from another address is unproven. */
    p2p_endpoint_t other = ep_of(pub_ip(6), 30303);
    h->nout = 0;
    CHECK_ERR(h_findnode(h, &b, &other, target, t), P2P_ERESTRICT);
    tl_pkt(&p, &b, P2P_DISCV4_ENRREQUEST, t);
    CHECK_ERR(p2p_disc_handle(h->d, &p, &other, t), P2P_ERESTRICT);
    CHECK(h->nout == 0);
    /* It holds for 24 h (a few seconds before: still answered) ... */
    p2p_disc_time_t before24 = tl_time(t.ns + (24ull * 3600 - 5) * 1000000000ull);
    CHECK_OK(h_findnode(h, &b, &src, target, before24));
    CHECK(h->nout == 1 && h->out[0].pkt.type == P2P_DISCV4_NEIGHBORS);
    tl_pkt(&p, &b, P2P_DISCV4_ENRREQUEST, before24);
    CHECK_OK(p2p_disc_handle(h->d, &p, &src, before24));
    CHECK(h->nout == 2 && h->out[1].pkt.type == P2P_DISCV4_ENRRESPONSE);
    h->nout = 0;
    /* ... and expires after 24 h. */
    p2p_disc_time_t later = tl_time(t.ns + (24ull * 3600 + 5) * 1000000000ull);
    CHECK_ERR(h_findnode(h, &b, &src, target, later), P2P_ERESTRICT);
    CHECK(h->nout == 0);
}

static void test_expired_and_self(harness_t *h)
{
    tl_ident_t a;
    tl_ident(&a);
    p2p_endpoint_t src = ep_of(pub_ip(7), 30303);
    p2p_disc_time_t t = tl_time(5000 * TL_MS);
    static const uint8_t types[] = {P2P_DISCV4_PING, P2P_DISCV4_PONG, P2P_DISCV4_FINDNODE,
                                    P2P_DISCV4_NEIGHBORS, P2P_DISCV4_ENRREQUEST};
    for (unsigned i = 0; i < sizeof types; i++) {
        p2p_discv4_packet_t p;
        tl_pkt(&p, &a, types[i], t);
        p.expiration = t.unix_s - 1;
        p.u.ping.from = src;
        CHECK_ERR(p2p_disc_handle(h->d, &p, &src, t), P2P_EEXPIRED);
    }
    CHECK(p2p_disc_counters(h->d)->drop_expired == 5);
    CHECK(h->nout == 0);
    /* Expiring this very second is still valid. */
    p2p_discv4_packet_t p;
    tl_pkt(&p, &a, P2P_DISCV4_PING, t);
    p.expiration = t.unix_s;
    p.u.ping.from = src;
    CHECK_OK(p2p_disc_handle(h->d, &p, &src, t));
    CHECK(h_count(h, P2P_DISCV4_PONG) == 1);
    /* Packets carrying our own ID. */
    h->nout = 0;
    tl_pkt(&p, &h->me, P2P_DISCV4_PING, t);
    CHECK_ERR(p2p_disc_handle(h->d, &p, &src, t), P2P_EPROTO);
    tl_pkt(&p, &h->me, P2P_DISCV4_FINDNODE, t);
    CHECK_ERR(p2p_disc_handle(h->d, &p, &src, t), P2P_EPROTO);
    CHECK(p2p_disc_counters(h->d)->drop_from_self == 2);
    CHECK(h->nout == 0);
    /* Unknown type. */
    tl_pkt(&p, &a, 9, t);
    CHECK_ERR(p2p_disc_handle(h->d, &p, &src, t), P2P_EUNSUPPORTED);
    CHECK(p2p_disc_counters(h->d)->drop_unknown_type == 1);
}

/* Adds n nodes with public /24s at random distances (some become
 * replacements when the far buckets fill). */
static void fill_table(harness_t *h, p2p_node_t *nodes, unsigned n, unsigned ipbase,
                       p2p_disc_time_t t)
{
    for (unsigned i = 0; i < n; i++) {
        tl_ident_t k;
        tl_ident(&k);
        nodes[i] = tl_node(&k, pub_ip(ipbase + i), 30303);
        p2p_kad_add_t r = p2p_disc_add_node(h->d, &nodes[i], t);
        CHECK(r == P2P_KAD_ADDED || r == P2P_KAD_REPLACEMENT);
    }
    CHECK(p2p_kad_len(p2p_disc_table(h->d)) >= 16);
}

/* As fill_table, but every node bonds through the real flow, so those in
 * the table are live (verified). */
static void fill_table_bonded(harness_t *h, p2p_node_t *nodes, unsigned n, unsigned ipbase,
                              p2p_disc_time_t t)
{
    for (unsigned i = 0; i < n; i++) {
        tl_ident_t k;
        tl_ident(&k);
        nodes[i] = tl_node(&k, pub_ip(ipbase + i), 30303);
        p2p_endpoint_t src = ep_of(nodes[i].ep.ip, 30303);
        h_bond(h, &k, &src, t);
        CHECK(p2p_kad_find(p2p_disc_table(h->d), nodes[i].id) ||
              p2p_kad_is_replacement(p2p_disc_table(h->d), nodes[i].id));
    }
    CHECK(p2p_kad_len(p2p_disc_table(h->d)) >= 16);
}

static void test_findnode_reply(void)
{
    harness_t *h = h_new(NULL, 0, NULL, 1);
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    p2p_node_t nodes[40];
    fill_table_bonded(h, nodes, 40, 100, t);
    tl_ident_t b;
    tl_ident(&b);
    p2p_endpoint_t src = ep_of(pub_ip(1), 30303);
    h_bond(h, &b, &src, t);
    uint8_t target[64], target_id[32];
    tu_rand_bytes(target, 64);
    p2p_keccak256(target_id, target, 64);
    h->nout = 0;
    CHECK_OK(h_findnode(h, &b, &src, target, t));
    /* 16 closest (all live) in 12 + 4. */
    CHECK(h->nout == 2);
    CHECK(h->out[0].pkt.type == P2P_DISCV4_NEIGHBORS && h->out[0].pkt.u.neighbors.n == 12);
    CHECK(h->out[1].pkt.type == P2P_DISCV4_NEIGHBORS && h->out[1].pkt.u.neighbors.n == 4);
    CHECK(h->out[0].pkt.expiration == t.unix_s + 20);
    CHECK(p2p_ip_equal(&h->out[0].to.ip, &src.ip) && h->out[0].to.udp == src.udp);
    p2p_node_t want[16];
    CHECK(p2p_kad_closest(p2p_disc_table(h->d), want, 16, target_id, true) == 16);
    for (unsigned i = 0; i < 16; i++) {
        const p2p_discv4_rpcnode_t *rn =
            i < 12 ? &h->out[0].pkt.u.neighbors.nodes[i] : &h->out[1].pkt.u.neighbors.nodes[i - 12];
        CHECK_MEM(rn->id, want[i].pubkey, 64);
        CHECK(rn->ep.udp == want[i].ep.udp && p2p_ip_equal(&rn->ep.ip, &want[i].ep.ip));
    }
    for (unsigned i = 0; i < 16; i++) CHECK(p2p_kad_find(p2p_disc_table(h->d), want[i].id)->live);
    CHECK(p2p_disc_counters(h->d)->rx_findnode == 1);
    h_free(h);

    /* A table of nodes only heard of (from Neighbors) and one verified
     * node, the requester: the answer is the requester alone.  Addresses
     * nobody checked are not passed on while checked ones exist. */
    h = h_new(NULL, 0, NULL, 1);
    fill_table(h, nodes, 40, 100, t);
    for (int i = 0; i < 1000; i++) { /* a requester whose bucket has room */
        tl_ident(&b);
        if (p2p_kad_bucket_len(p2p_disc_table(h->d), b.id) < P2P_KAD_BUCKET_SIZE) break;
    }
    h_bond(h, &b, &src, t);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), b.id) &&
          p2p_kad_find(p2p_disc_table(h->d), b.id)->live);
    h->nout = 0;
    CHECK_OK(h_findnode(h, &b, &src, target, t));
    CHECK(h->nout == 1 && h->out[0].pkt.type == P2P_DISCV4_NEIGHBORS);
    CHECK(h->out[0].pkt.u.neighbors.n == 1);
    CHECK_MEM(h->out[0].pkt.u.neighbors.nodes[0].id, b.pub, 64);
    h_free(h);
}

static void test_relay_filter(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    /* 6 LAN, 4 loopback and 3 public nodes, all verified. */
    unsigned nlan = 0, nloop = 0, npub = 0;
    for (unsigned i = 0; i < 13; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_ip_t ip = i < 6    ? p2p_ip4(192, 168, 1, (uint8_t)(i + 1))
                      : i < 10 ? p2p_ip4(127, 0, 0, (uint8_t)(i + 1))
                               : pub_ip(200 + i);
        p2p_endpoint_t src = ep_of(ip, 30303);
        h_bond(h, &k, &src, t);
        const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), k.id);
        CHECK(e && e->live);
    }
    uint8_t target[64];
    tu_rand_bytes(target, 64);
    /* A public requester gets only public nodes (and itself). */
    tl_ident_t pubk, lank, loopk;
    tl_ident(&pubk);
    tl_ident(&lank);
    tl_ident(&loopk);
    p2p_endpoint_t psrc = ep_of(pub_ip(300), 30303);
    p2p_endpoint_t lsrc = ep_of(p2p_ip4(192, 168, 7, 7), 30303);
    p2p_endpoint_t osrc = ep_of(p2p_ip4(127, 0, 0, 50), 30303);
    h_bond(h, &pubk, &psrc, t);
    h_bond(h, &lank, &lsrc, t);
    h_bond(h, &loopk, &osrc, t);
    struct {
        const tl_ident_t *k;
        const p2p_endpoint_t *src;
        unsigned want_total;
    } cases[] = {
        {&pubk, &psrc, 3 + 1},                  /* public only: 3 + the public requester */
        {&lank, &lsrc, 3 + 1 + 6 + 1},          /* + LAN nodes, no loopback */
        {&loopk, &osrc, 3 + 1 + 6 + 1 + 4 + 1}, /* loopback sender: everything */
    };
    for (unsigned c = 0; c < 3; c++) {
        h->nout = 0;
        CHECK_OK(h_findnode(h, cases[c].k, cases[c].src, target, t));
        unsigned total = 0;
        for (unsigned i = 0; i < h->nout; i++) {
            CHECK(h->out[i].pkt.type == P2P_DISCV4_NEIGHBORS);
            for (unsigned j = 0; j < h->out[i].pkt.u.neighbors.n; j++) {
                const p2p_ip_t *ip = &h->out[i].pkt.u.neighbors.nodes[j].ep.ip;
                CHECK(p2p_check_relay_ip(&cases[c].src->ip, ip) == 0);
                nlan += p2p_ip_is_lan(ip) && !p2p_ip_is_loopback(ip);
                nloop += p2p_ip_is_loopback(ip);
                npub += !p2p_ip_is_lan(ip);
                total++;
            }
        }
        CHECK(total == cases[c].want_total);
    }
    CHECK(npub == 3 * 4 && nlan == 7 * 2 && nloop == 5);

    /* Bonded requester, empty table: one empty Neighbors. */
    harness_t *h2 = h_new(NULL, 0, NULL, 1);
    tl_ident_t e;
    tl_ident(&e);
    CHECK_OK(tl_db_set_last_pong(&h2->db, e.id, &psrc.ip, t.unix_s));
    CHECK_OK(h_findnode(h2, &e, &psrc, target, t));
    CHECK(h2->nout == 1 && h2->out[0].pkt.type == P2P_DISCV4_NEIGHBORS);
    CHECK(h2->out[0].pkt.u.neighbors.n == 0);
    h_free(h2);
}

/* Starts a lookup on a core whose table holds p (and whose DB says p pinged
 * us recently, so no bond is needed): returns the findnode's outbox index. */
static int lookup_to(harness_t *h, const p2p_node_t *p, p2p_disc_time_t t, uint32_t *handle)
{
    uint8_t target[64];
    tu_rand_bytes(target, 64);
    unsigned from = h->nout;
    CHECK_OK(p2p_disc_lookup(h->d, handle, target, t));
    for (unsigned i = from; i < h->nout; i++)
        if (h->out[i].pkt.type == P2P_DISCV4_FINDNODE && p2p_ip_equal(&h->out[i].to.ip, &p->ep.ip))
            return (int)i;
    return -1;
}

static void rpc_of(p2p_discv4_rpcnode_t *rn, const p2p_node_t *n)
{
    rn->ep = n->ep;
    memcpy(rn->id, n->pubkey, 64);
}

/* Ticks h every 100 ms from base_ns + from_ms, while lookups run, up to
 * base_ns + to_ms. */
static void tick_lookups(harness_t *h, uint64_t base_ns, uint64_t from_ms, uint64_t to_ms)
{
    for (uint64_t ms = from_ms; ms < to_ms && p2p_disc_lookups_running(h->d); ms += 100)
        p2p_disc_tick(h->d, tl_time(base_ns + ms * TL_MS));
}

/* Draws identities into *k until one falls in our farthest bucket (log
 * distance 256: about every second one); false if 1000 draws did not. */
static bool far_ident(const harness_t *h, tl_ident_t *k)
{
    for (unsigned i = 0; i < 1000; i++) {
        tl_ident(k);
        if (p2p_kad_logdist(h->me.id, k->id) == 256) return true;
    }
    return false;
}

/* A new node at pub_ip(i) added to the table at t (its key in *pk). */
static p2p_node_t add_node(harness_t *h, tl_ident_t *pk, unsigned i, p2p_disc_time_t t)
{
    tl_ident(pk);
    p2p_node_t p = tl_node(pk, pub_ip(i), 30303);
    CHECK(p2p_disc_add_node(h->d, &p, t) == P2P_KAD_ADDED);
    return p;
}

/* A new public node in the table that we pinged at t (its key in *pk). */
static p2p_node_t add_pinged(harness_t *h, tl_ident_t *pk, p2p_disc_time_t t)
{
    p2p_node_t p = add_node(h, pk, 1, t);
    CHECK_OK(tl_db_set_last_ping(&h->db, p.id, &p.ep.ip, t.unix_s));
    return p;
}

static void test_neighbors_handling(void)
{
    p2p_netlist_t nl;
    CHECK_OK(p2p_netlist_parse(&nl, "20.0.0.0/8,192.168.0.0/16"));
    harness_t *h = h_new(NULL, 0, &nl, 1);
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, t);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);

    /* Unsolicited Neighbors (no findnode out): nodes never enter. */
    tl_ident_t qk;
    tl_ident(&qk);
    p2p_node_t q = tl_node(&qk, pub_ip(2), 30303);
    p2p_discv4_packet_t nb;
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = 1;
    rpc_of(&nb.u.neighbors.nodes[0], &q);
    CHECK_ERR(p2p_disc_handle(h->d, &nb, &src, t), P2P_EPROTO);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), q.id) == NULL);
    CHECK(!p2p_kad_is_replacement(p2p_disc_table(h->d), q.id));
    CHECK(p2p_disc_candidates_len(h->d) == 0);
    CHECK(p2p_disc_counters(h->d)->drop_unsolicited == 1);

    uint32_t handle = 0;
    int fi = lookup_to(h, &p, t, &handle);
    CHECK(fi >= 0);
    CHECK(handle != 0);
    CHECK(p2p_disc_lookups_running(h->d) == 1);
    /* More entries than a packet can hold: refused before any is read. */
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = P2P_DISCV4_NEIGHBORS_CAP + 1;
    nb.u.neighbors.oversized = true;
    CHECK_ERR(p2p_disc_handle(h->d, &nb, &src, t), P2P_EINVAL);
    CHECK(p2p_disc_counters(h->d)->rx_neighbors == 0);

    /* From the right ID but another IP: unsolicited. */
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = 1;
    rpc_of(&nb.u.neighbors.nodes[0], &q);
    p2p_endpoint_t wrong = ep_of(pub_ip(3), 30303);
    CHECK_ERR(p2p_disc_handle(h->d, &nb, &wrong, t), P2P_EPROTO);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), q.id) == NULL);

    /* A list with one entry of every bad kind and 3 good ones. */
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    p2p_node_t good[3];
    for (int i = 0; i < 3; i++) {
        tl_ident_t k;
        tl_ident(&k);
        good[i] = tl_node(&k, pub_ip(10 + (unsigned)i), 30303);
        rpc_of(&nb.u.neighbors.nodes[nb.u.neighbors.n++], &good[i]);
    }
    tl_ident_t bk;
    tl_ident(&bk);
    p2p_node_t bad = tl_node(&bk, pub_ip(20), 30303);
    p2p_discv4_rpcnode_t *rn;
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    rn->ep.ip.family = 0; /* no IP */
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    rn->ep.udp = 1024; /* low port */
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    rn->ep.udp = 0; /* no UDP port */
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    rn->ep.ip = p2p_ip4(192, 168, 0, 5); /* LAN address from a public sender */
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    rn->ep.ip = p2p_ip4(30, 1, 1, 1); /* outside NetRestrict */
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    rn->id[63] ^= 1; /* off the curve */
    CHECK(p2p_secp_pubkey_check(rn->id) != 0);
    rn = &nb.u.neighbors.nodes[nb.u.neighbors.n++];
    rpc_of(rn, &bad);
    memcpy(rn->id, h->me.pub, 64); /* us */
    CHECK(nb.u.neighbors.n == 10);
    CHECK(h_count(h, P2P_DISCV4_PING) == 0);
    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, t));
    CHECK(h_count(h, P2P_DISCV4_PING) == 2);
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    CHECK(c->node_no_ip == 1 && c->node_low_port == 2 && c->node_bad_relay == 1);
    CHECK(c->node_restricted == 1 && c->node_bad_key == 1 && c->node_self == 1);
    CHECK(c->rx_neighbors == 1);
    for (int i = 0; i < 3; i++) CHECK(p2p_kad_find(p2p_disc_table(h->d), good[i].id) != NULL);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), bad.id) == NULL);
    CHECK(p2p_disc_candidates_len(h->d) == 3);
    /* 10 of 16 received: the request stays open; 6 more (duplicates are
     * fine) complete it and the lookup moves on to the new nodes (each
     * needs a bond first: pings). */
    unsigned before = h->nout;
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = 6;
    for (unsigned i = 0; i < 6; i++) rpc_of(&nb.u.neighbors.nodes[i], &good[i % 3]);
    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, t));
    CHECK(p2p_disc_candidates_len(h->d) == 3); /* no duplicates */
    /* One ping for the slot p's query freed (two went out with the first
     * list, for the two free slots). */
    CHECK(h->nout == before + 1 && h->out[before].pkt.type == P2P_DISCV4_PING);
    CHECK(h_count(h, P2P_DISCV4_PING) == 3);
    /* The answering node is now verified live; its findfails reset. */
    const p2p_kad_entry_t *pe = p2p_kad_find(p2p_disc_table(h->d), p.id);
    CHECK(pe && pe->live);
    /* A late third Neighbors is unsolicited. */
    CHECK_ERR(p2p_disc_handle(h->d, &nb, &src, t), P2P_EPROTO);
    /* Nobody answers the pings: the lookup ends with the 4 nodes. */
    tick_lookups(h, 0, 100, 3000);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    CHECK(h->last_lookup == handle && h->last_lookup_n == 4);
    /* Candidates come out oldest first, once. */
    p2p_node_t cand[8];
    CHECK(p2p_disc_candidates_pop(h->d, cand, 2) == 2);
    CHECK(memcmp(cand[0].id, good[0].id, 32) == 0 && memcmp(cand[1].id, good[1].id, 32) == 0);
    CHECK(p2p_disc_candidates_pop(h->d, cand, 8) == 1);
    CHECK(memcmp(cand[0].id, good[2].id, 32) == 0);
    CHECK(p2p_disc_candidates_pop(h->d, cand, 8) == 0);

    /* A packet from outside NetRestrict is dropped before anything else. */
    p2p_discv4_packet_t ping;
    tl_pkt(&ping, &qk, P2P_DISCV4_PING, t);
    p2p_endpoint_t outside = ep_of(p2p_ip4(30, 0, 0, 1), 30303);
    before = h->nout;
    CHECK_ERR(p2p_disc_handle(h->d, &ping, &outside, t), P2P_ERESTRICT);
    CHECK(h->nout == before && p2p_disc_counters(h->d)->drop_restricted == 1);
    h_free(h);
}

/* A findnode answered with fewer than 16 entries (here none) stays open
 * until its deadline, then closes as answered: findnode_partial, not a
 * timeout.  One that gets no answer at all is a timeout. */
static void test_findnode_partial(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, t);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    uint64_t ms = 100;
    for (int round = 0; round < 2; round++) {
        uint32_t handle = 0;
        CHECK(lookup_to(h, &p, tl_time(ms * TL_MS), &handle) >= 0);
        if (round == 0) {
            p2p_discv4_packet_t nb;
            tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, tl_time(ms * TL_MS));
            CHECK_OK(p2p_disc_handle(h->d, &nb, &src, tl_time(ms * TL_MS)));
            CHECK(c->rx_neighbors == 1);
        }
        /* Pings to p (revalidation) are answered, so the only request
         * that can time out is the findnode. */
        unsigned from = h->nout;
        uint64_t end = ms + 3000;
        for (; ms < end && p2p_disc_lookups_running(h->d); ms += 50) {
            p2p_disc_tick(h->d, tl_time(ms * TL_MS));
            for (unsigned i = from; i < h->nout; i++)
                if (h->out[i].pkt.type == P2P_DISCV4_PING)
                    CHECK_OK(h_pong(h, &pk, &src, h->out[i].hash, 0, tl_time(ms * TL_MS)));
            from = h->nout;
        }
        CHECK(p2p_disc_lookups_running(h->d) == 0);
        CHECK(c->findnode_partial == 1);
        CHECK(c->timeouts == (uint64_t)round);
        ms += 100;
    }
}

/* Besu answers a findnode with 13 nodes in one Neighbors packet (1136
 * bytes with IPv4 endpoints): every entry is taken, the query counts as
 * answered, and 3 more entries complete it (16: no partial, no failure). */
static void test_neighbors_13(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, t);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    uint32_t handle = 0;
    CHECK(lookup_to(h, &p, t, &handle) >= 0);
    p2p_node_t got[16];
    p2p_discv4_packet_t nb;
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    for (unsigned i = 0; i < 16; i++) {
        tl_ident_t k;
        tl_ident(&k);
        got[i] = tl_node(&k, pub_ip(100 + i), 30303); /* one /24 each */
    }
    nb.u.neighbors.n = 13;
    nb.u.neighbors.oversized = true;
    for (unsigned i = 0; i < 13; i++) rpc_of(&nb.u.neighbors.nodes[i], &got[i]);
    /* the same list on the wire (our encoder sends at most 12): it fits a
     * packet and decodes */
    uint8_t body[P2P_DISCV4_MAX_SIZE], pkt[P2P_DISCV4_MAX_SIZE];
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, body, sizeof body);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    for (unsigned i = 0; i < 13; i++) {
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, got[i].ep.ip.addr, 4);
        p2p_rlp_put_uint(&e, got[i].ep.udp);
        p2p_rlp_put_uint(&e, got[i].ep.tcp);
        p2p_rlp_put_bytes(&e, got[i].pubkey, 64);
        p2p_rlp_list_end(&e);
    }
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, t.unix_s + 20);
    p2p_rlp_list_end(&e);
    size_t blen, plen;
    CHECK_OK(p2p_rlp_enc_finish(&e, &blen));
    CHECK_OK(p2p_discv4_seal(pkt, &plen, NULL, P2P_DISCV4_NEIGHBORS, body, blen, pk.priv));
    p2p_discv4_packet_t dec;
    CHECK_OK(p2p_discv4_decode(&dec, pkt, plen));
    CHECK(plen <= P2P_DISCV4_MAX_SIZE && dec.u.neighbors.n == 13 && dec.u.neighbors.oversized);
    CHECK_OK(p2p_disc_handle(h->d, &dec, &src, t));
    CHECK(c->rx_neighbors == 1 && c->rx_neighbors_over12 == 1);
    const p2p_kad_table_t *tab = p2p_disc_table(h->d);
    for (unsigned i = 0; i < 13; i++)
        CHECK(p2p_kad_find(tab, got[i].id) || p2p_kad_is_replacement(tab, got[i].id));
    CHECK(p2p_disc_lookups_running(h->d) == 1);
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = 3;
    for (unsigned i = 0; i < 3; i++) rpc_of(&nb.u.neighbors.nodes[i], &got[13 + i]);
    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, t));
    CHECK(c->rx_neighbors == 2 && c->rx_neighbors_over12 == 1);
    CHECK(c->findnode_failures == 0 && c->findnode_partial == 0 && c->timeouts == 0);
    /* the lookup goes on to the new nodes, which never answer; p's query
     * was a success: no findnode failure stored for it */
    for (uint64_t ms = 150; ms < 3000; ms += 50) p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    uint32_t fails = 99;
    CHECK_OK(tl_db_findfails(&h->db, &fails, p.id, &p.ep.ip));
    CHECK(fails == 0);
}

static void test_ensure_bond(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_node(h, &pk, 1, t);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    uint8_t target[64];
    tu_rand_bytes(target, 64);
    uint32_t handle;
    CHECK_OK(p2p_disc_lookup(h->d, &handle, target, t));
    /* p never pinged us: ping first, no findnode yet. */
    CHECK(h->nout == 1 && h->out[0].pkt.type == P2P_DISCV4_PING);
    /* It pongs (and pings us back, as a real node would). */
    p2p_disc_time_t t1 = tl_time(t.ns + 50 * TL_MS);
    CHECK_OK(h_pong(h, &pk, &src, h->out[0].hash, 0, t1));
    /* the pong of a node we chose to ping states our endpoint */
    CHECK(h->ev[P2P_DISC_EV_ENDPOINT] == 1 && h->last_endpoint.udp == 30303);
    CHECK_OK(h_ping(h, &pk, &src, 30303, t1, NULL));
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 0);
    CHECK(p2p_disc_deadline(h->d) <= t1.ns + 500 * TL_MS);
    p2p_disc_tick(h->d, tl_time(t1.ns + 499 * TL_MS));
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 0);
    p2p_disc_tick(h->d, tl_time(t1.ns + 500 * TL_MS));
    int fi = h_find(h, 0, P2P_DISCV4_FINDNODE);
    CHECK(fi >= 0);
    if (fi >= 0) CHECK_MEM(h->out[fi].pkt.u.findnode.target, target, 64);
    /* A second lookup right away asks p without pinging (it pinged us). */
    unsigned before = h->nout;
    uint32_t h2;
    CHECK_OK(p2p_disc_lookup(h->d, &h2, target, tl_time(t1.ns + 600 * TL_MS)));
    CHECK(h2 != handle);
    /* ... but a findnode is already out to p: the second waits for it. */
    CHECK(h->nout == before);
    /* p's empty answer completes the first at the timeout; the second then
     * sends its own findnode. */
    p2p_discv4_packet_t nb;
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, tl_time(t1.ns + 700 * TL_MS));
    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, tl_time(t1.ns + 700 * TL_MS)));
    p2p_disc_tick(h->d, tl_time(t1.ns + 1001 * TL_MS));
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 2);
    /* Its empty answer counted as a findnode failure. */
    uint32_t fails = 0;
    CHECK_OK(tl_db_findfails(&h->db, &fails, p.id, &p.ep.ip));
    CHECK(fails == 1);
    tick_lookups(h, t1.ns, 1100, 3000);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    CHECK(h->ev[P2P_DISC_EV_LOOKUP_DONE] >= 2);
}

/* Lookups started together that must bond with the same node send it one
 * ping, not one each: identical pings (same second, same fields) are the
 * same packet, which the node may take for a replay.  The others wait for
 * that ping's outcome: answered, they settle and ask too; unanswered, they
 * end without a findnode failure of their own. */
static void test_bond_shared(void)
{
    harness_t *h = h_new(NULL, 0, NULL, 1);
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_node(h, &pk, 1, t);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    uint8_t target[3][64];
    uint32_t lk[3];
    for (int i = 0; i < 3; i++) {
        tu_rand_bytes(target[i], 64);
        CHECK_OK(p2p_disc_lookup(h->d, &lk[i], target[i], t));
    }
    CHECK(h_count(h, P2P_DISCV4_PING) == 1);
    CHECK(h->nout == 1 && h->out[0].pkt.type == P2P_DISCV4_PING);
    /* it answers and pings us back: all three settle, then ask it, one
     * findnode at a time */
    p2p_disc_time_t t1 = tl_time(t.ns + 50 * TL_MS);
    CHECK_OK(h_pong(h, &pk, &src, h->out[0].hash, 0, t1));
    CHECK_OK(h_ping(h, &pk, &src, 30303, t1, NULL));
    CHECK(h_count(h, P2P_DISCV4_PING) == 1);
    /* (from here on revalidation pings it too) */
    p2p_disc_tick(h->d, tl_time(t1.ns + 500 * TL_MS));
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 1);
    for (int i = 1; i <= 2; i++) {
        p2p_disc_time_t tn = tl_time(t1.ns + (uint64_t)(500 + 600 * i) * TL_MS);
        p2p_discv4_packet_t nb;
        tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, tn);
        CHECK_OK(p2p_disc_handle(h->d, &nb, &src, tn));
        p2p_disc_tick(h->d, tl_time(tn.ns + 501 * TL_MS));
        CHECK(h_count(h, P2P_DISCV4_FINDNODE) == (unsigned)(i + 1));
    }
    tick_lookups(h, t1.ns, 2200, 5000);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    h_free(h);

    /* the shared ping goes unanswered: every lookup ends, the node has one
     * findnode failure (the ping's owner's), and no findnode was sent */
    h = h_new(NULL, 0, NULL, 1);
    CHECK(p2p_disc_add_node(h->d, &p, t) == P2P_KAD_ADDED);
    for (int i = 0; i < 3; i++) CHECK_OK(p2p_disc_lookup(h->d, &lk[i], target[i], t));
    CHECK(h_count(h, P2P_DISCV4_PING) == 1);
    tick_lookups(h, t.ns, 200, 3000);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 0);
    uint32_t fails = 0;
    CHECK_OK(tl_db_findfails(&h->db, &fails, p.id, &p.ep.ip));
    CHECK(fails == 1);
    h_free(h);
}

static void test_findfail_eviction(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    /* 5 nodes in the far bucket, all recently pinged us (no bond needed). */
    p2p_node_t ns[5];
    tl_ident_t keys[5];
    unsigned n = 0;
    for (; n < 5 && far_ident(h, &keys[n]); n++) {
        ns[n] = tl_node(&keys[n], pub_ip(50 + n), 30303);
        CHECK(p2p_disc_add_node(h->d, &ns[n], t) == P2P_KAD_ADDED);
        CHECK_OK(tl_db_set_last_ping(&h->db, ns[n].id, &ns[n].ep.ip, t.unix_s));
    }
    CHECK(n == 5);
    CHECK_OK(tl_db_set_findfails(&h->db, ns[0].id, &ns[0].ep.ip, 4));
    CHECK_OK(tl_db_set_findfails(&h->db, ns[1].id, &ns[1].ep.ip, 3));
    uint8_t target[64];
    memcpy(target, ns[0].pubkey, 64); /* ns[0] is asked first */
    uint32_t handle;
    CHECK_OK(p2p_disc_lookup(h->d, &handle, target, t));
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 3);
    /* ns[1] answers with one usable node if asked; nobody else answers. */
    int i1 = -1;
    for (unsigned i = 0; i < h->nout; i++)
        if (p2p_ip_equal(&h->out[i].to.ip, &ns[1].ep.ip)) i1 = (int)i;
    tl_ident_t kf; /* the node ns[1] names */
    tl_ident(&kf);
    p2p_node_t found = tl_node(&kf, pub_ip(90), 30303);
    if (i1 >= 0) {
        tl_ident_t k1;
        memset(&k1, 0, sizeof k1);
        memcpy(k1.pub, ns[1].pubkey, 64);
        memcpy(k1.id, ns[1].id, 32);
        p2p_discv4_packet_t nb;
        tl_pkt(&nb, &k1, P2P_DISCV4_NEIGHBORS, t);
        nb.u.neighbors.n = 1;
        rpc_of(&nb.u.neighbors.nodes[0], &found);
        p2p_endpoint_t s1 = ep_of(ns[1].ep.ip, ns[1].ep.udp);
        CHECK_OK(p2p_disc_handle(h->d, &nb, &s1, t));
    }
    /* Everybody answers pings (so revalidation keeps them: the found
     * node too, which may enter the table, and whose failed checks would
     * remove it), nobody else answers findnode. */
    for (uint64_t ms = 200; ms < 5000 && p2p_disc_lookups_running(h->d); ms += 100) {
        unsigned before = h->nout;
        p2p_disc_tick(h->d, tl_time(ms * TL_MS));
        for (unsigned i = before; i < h->nout; i++) {
            if (h->out[i].pkt.type != P2P_DISCV4_PING) continue;
            for (unsigned j = 0; j < 6; j++) {
                const p2p_node_t *nj = j < 5 ? &ns[j] : &found;
                if (!p2p_ip_equal(&h->out[i].to.ip, &nj->ep.ip)) continue;
                p2p_endpoint_t s = ep_of(nj->ep.ip, nj->ep.udp);
                CHECK_OK(
                    h_pong(h, j < 5 ? &keys[j] : &kf, &s, h->out[i].hash, 0, tl_time(ms * TL_MS)));
            }
        }
    }
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    /* ns[0] reached 5 failures with 5 >= 4 in its bucket: evicted. */
    CHECK(p2p_kad_find(p2p_disc_table(h->d), ns[0].id) == NULL);
    CHECK(p2p_disc_counters(h->d)->findfail_evictions == 1);
    CHECK(h->ev[P2P_DISC_EV_NODE_REMOVED] == 1);
    CHECK(memcmp(h->last_removed.id, ns[0].id, 32) == 0);
    uint32_t f = 9;
    CHECK_OK(tl_db_findfails(&h->db, &f, ns[0].id, &ns[0].ep.ip));
    CHECK(f == 5);
    if (i1 >= 0) {
        /* A success resets the count. */
        CHECK_OK(tl_db_findfails(&h->db, &f, ns[1].id, &ns[1].ep.ip));
        CHECK(f == 0);
    }
    CHECK_OK(tl_db_findfails(&h->db, &f, ns[2].id, &ns[2].ep.ip));
    CHECK(f == 1);
    /* With fewer than 4 in the bucket (3 here), failures do not evict. */
    harness_t *h2 = h_new(NULL, 0, NULL, 1);
    p2p_node_t lone = ns[2];
    CHECK(p2p_disc_add_node(h2->d, &lone, t) == P2P_KAD_ADDED);
    CHECK(p2p_disc_add_node(h2->d, &ns[3], t) == P2P_KAD_ADDED);
    CHECK(p2p_disc_add_node(h2->d, &ns[4], t) == P2P_KAD_ADDED);
    CHECK(p2p_kad_bucket_len(p2p_disc_table(h2->d), lone.id) == 3);
    CHECK_OK(tl_db_set_last_ping(&h2->db, lone.id, &lone.ep.ip, t.unix_s));
    CHECK_OK(tl_db_set_findfails(&h2->db, lone.id, &lone.ep.ip, 6));
    CHECK_OK(p2p_disc_lookup(h2->d, &handle, target, t));
    /* More than 5 failures: ping before findnode (the other two have
     * never pinged us: bond pings too). */
    int lone_pinged = 0;
    for (unsigned i = 0; i < h2->nout; i++)
        lone_pinged |=
            h2->out[i].pkt.type == P2P_DISCV4_PING && p2p_ip_equal(&h2->out[i].to.ip, &lone.ep.ip);
    CHECK(lone_pinged);
    CHECK(h_count(h2, P2P_DISCV4_FINDNODE) == 0);
    tick_lookups(h2, 0, 200, 5000);
    CHECK(p2p_kad_find(p2p_disc_table(h2->d), lone.id) != NULL);
    CHECK_OK(tl_db_findfails(&h2->db, &f, lone.id, &lone.ep.ip));
    CHECK(f == 7);
    h_free(h2);
}

/* Anyone can name a table node at another address in a Neighbors entry:
 * a lookup then asks (id, that address), which never answers.  The
 * failures counted for that pair must not evict the entry at its own,
 * proven address. */
static void test_findfail_other_address(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    /* m answers findnode (it pinged us); g and three more fill the far
     * bucket (4 entries: enough for an eviction). */
    tl_ident_t keys[5];
    p2p_node_t ns[5];
    ns[0] = add_pinged(h, &keys[0], t);
    unsigned n = 1;
    for (; n < 5 && far_ident(h, &keys[n]); n++) {
        ns[n] = tl_node(&keys[n], pub_ip(60 + n), 30303);
        CHECK_OK(tl_db_set_last_ping(&h->db, ns[n].id, &ns[n].ep.ip, t.unix_s));
    }
    CHECK(n == 5);
    for (unsigned j = 1; j < 4; j++) CHECK(p2p_disc_add_node(h->d, &ns[j], t) == P2P_KAD_ADDED);
    uint32_t handle;
    uint8_t target[64];
    tu_rand_bytes(target, 64);
    CHECK_OK(p2p_disc_lookup(h->d, &handle, target, t));
    /* g enters the table after the lookup started (so it is not in its
     * start set); m will name it at x, where it failed 4 times already. */
    const p2p_node_t g = ns[4];
    CHECK(p2p_disc_add_node(h->d, &g, t) == P2P_KAD_ADDED);
    p2p_node_t gx = g;
    gx.ep.ip = pub_ip(90);
    CHECK_OK(tl_db_set_findfails(&h->db, gx.id, &gx.ep.ip, 4));
    bool named = false;
    unsigned from = 0;
    for (uint64_t ms = 200; ms < 8000 && p2p_disc_lookups_running(h->d); ms += 100) {
        p2p_disc_time_t now = tl_time(ms * TL_MS);
        for (unsigned i = from; i < h->nout; i++) {
            const sent_t *s = &h->out[i];
            for (unsigned j = 0; j < 5; j++) {
                if (!p2p_ip_equal(&s->to.ip, &ns[j].ep.ip)) continue;
                p2p_endpoint_t src = ep_of(ns[j].ep.ip, ns[j].ep.udp);
                /* every node answers pings at its own address */
                if (s->pkt.type == P2P_DISCV4_PING)
                    CHECK_OK(h_pong(h, &keys[j], &src, s->hash, 0, now));
                if (s->pkt.type == P2P_DISCV4_FINDNODE && j == 0 && !named) {
                    p2p_discv4_packet_t nb;
                    tl_pkt(&nb, &keys[0], P2P_DISCV4_NEIGHBORS, now);
                    nb.u.neighbors.n = 1;
                    rpc_of(&nb.u.neighbors.nodes[0], &gx);
                    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, now));
                    named = true;
                }
            }
        }
        from = h->nout;
        p2p_disc_tick(h->d, now);
    }
    CHECK(named);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    /* x was asked (a bond ping) and failed a fifth time ... */
    bool asked_x = false;
    for (unsigned i = 0; i < h->nout; i++) asked_x |= p2p_ip_equal(&h->out[i].to.ip, &gx.ep.ip);
    CHECK(asked_x);
    uint32_t f = 0;
    CHECK_OK(tl_db_findfails(&h->db, &f, gx.id, &gx.ep.ip));
    CHECK(f == 5);
    /* ... but g stays, at its own address. */
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), g.id);
    CHECK(e != NULL);
    if (e) CHECK(p2p_ip_equal(&e->node.ep.ip, &g.ep.ip));
    CHECK(p2p_disc_counters(h->d)->findfail_evictions == 0);
    CHECK(h->ev[P2P_DISC_EV_NODE_REMOVED] == 0);
}

/* A node whose table holds only us answers a findnode with one entry: our
 * own node.  It answered, from its address, with a well-formed entry: a
 * successful query (its findfails reset, no failure counted), as the
 * reference client counts any answer with an entry.  Counting it as a
 * failure made every small peer that knows only us fail each lookup, be
 * re-pinged before every findnode after 5, and be evicted from a bucket
 * of 4 or more. */
static void test_findnode_self_answer(harness_t *h)
{
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_node(h, &pk, 7, t);
    CHECK_OK(tl_db_set_last_ping(&h->db, p.id, &p.ep.ip, t.unix_s));
    CHECK_OK(tl_db_set_findfails(&h->db, p.id, &p.ep.ip, 4));
    uint8_t target[64];
    tu_rand_bytes(target, 64);
    uint32_t handle;
    CHECK_OK(p2p_disc_lookup(h->d, &handle, target, t));
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 1);
    p2p_node_t self = tl_node(&h->me, pub_ip(1), 30303);
    p2p_discv4_packet_t nb;
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = 1;
    rpc_of(&nb.u.neighbors.nodes[0], &self);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, t));
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    CHECK(c->rx_neighbors == 1 && c->node_self == 1);
    tick_lookups(h, 0, 200, 3000);
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    CHECK(c->findnode_failures == 0 && c->timeouts == 0);
    uint32_t f = 99;
    CHECK_OK(tl_db_findfails(&h->db, &f, p.id, &p.ep.ip));
    CHECK(f == 0);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), p.id) != NULL);
    /* Our own entry is still neither a table node nor a candidate. */
    CHECK(p2p_kad_find(p2p_disc_table(h->d), h->me.id) == NULL);
}

/* With NetRestrict, nodes outside the allowed networks never enter the
 * table, whatever their source: bootnodes, node DB seeds (the DB may hold
 * nodes from runs without the restriction), nodes added by the caller.  So
 * nothing is ever sent to them (no bond or revalidation ping). */
static void test_restrict_table_sources(void)
{
    p2p_netlist_t nl;
    CHECK_OK(p2p_netlist_parse(&nl, "20.0.0.0/8"));
    tl_ident_t bk[2];
    p2p_node_t boot[2];
    for (int i = 0; i < 2; i++) tl_ident(&bk[i]);
    boot[0] = tl_node(&bk[0], pub_ip(700), 30303);          /* inside */
    boot[1] = tl_node(&bk[1], p2p_ip4(30, 0, 0, 1), 30303); /* outside */
    harness_t *h = h_new(boot, 2, &nl, 0);
    p2p_node_t seeds[2];
    for (int i = 0; i < 2; i++) {
        tl_ident_t k;
        tl_ident(&k);
        seeds[i] = tl_node(&k, i == 0 ? pub_ip(710) : p2p_ip4(31, 0, 0, 1), 30303);
        CHECK_OK(tl_db_put_node(&h->db, &seeds[i], NULL, 0));
        CHECK_OK(tl_db_set_last_pong(&h->db, seeds[i].id, &seeds[i].ep.ip, TL_UNIX_BASE - 60));
    }
    p2p_disc_tick(h->d, tl_time(0));
    const p2p_kad_table_t *tab = p2p_disc_table(h->d);
    CHECK(p2p_kad_find(tab, boot[0].id) != NULL);
    CHECK(p2p_kad_find(tab, seeds[0].id) != NULL);
    CHECK(p2p_kad_find(tab, boot[1].id) == NULL);
    CHECK(p2p_kad_find(tab, seeds[1].id) == NULL);
    tl_ident_t k;
    tl_ident(&k);
    p2p_node_t out = tl_node(&k, p2p_ip4(32, 0, 0, 1), 30303);
    CHECK(p2p_disc_add_node(h->d, &out, tl_time(0)) == P2P_KAD_RESTRICTED);
    CHECK(p2p_kad_find(tab, out.id) == NULL);
    CHECK(p2p_disc_counters(h->d)->node_restricted == 3);
    for (uint64_t ms = 0; ms < 20000; ms += 100) p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    for (unsigned i = 0; i < h->nout; i++) CHECK(p2p_netlist_contains(&nl, &h->out[i].to.ip));
    CHECK(h->nout > 0);
    h_free(h);
}

/* A core whose socket reaches one family keeps the other family out of
 * its table from every source, not only Neighbors entries: bootnodes and
 * node DB seeds (the DB of a run on the other family, or on ::, holds
 * them) of an address it cannot reach are dropped (node_unreachable) at
 * every refresh.  Before, they entered the table, the first lookups were
 * started from them, and every ping and findnode to them failed (send
 * refused: tx_errors, reval_unreachable) until revalidation removed them,
 * to be re-added from the DB at the next refresh. */
static void unreachable_sources_run(bool v6)
{
    h_next_ipv4_only = !v6;
    h_next_ipv6_only = v6;
    tl_ident_t bk[2];
    p2p_node_t boot[2];
    p2p_ip_t ip6;
    CHECK_OK(p2p_ip_parse(&ip6, "2a01:4f8::1"));
    for (int i = 0; i < 2; i++) tl_ident(&bk[i]);
    boot[0] = tl_node(&bk[0], pub_ip(720), 30303); /* IPv4 */
    boot[1] = tl_node(&bk[1], ip6, 30303);         /* IPv6 */
    harness_t *h = h_new(boot, 2, NULL, 0);
    p2p_node_t seeds[2];
    for (int i = 0; i < 2; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_ip_t ip = pub_ip(730);
        if (i == 1) {
            ip = ip6;
            ip.addr[15] = 2;
        }
        seeds[i] = tl_node(&k, ip, 30303);
        CHECK_OK(tl_db_put_node(&h->db, &seeds[i], NULL, 0));
        CHECK_OK(tl_db_set_last_pong(&h->db, seeds[i].id, &seeds[i].ep.ip, TL_UNIX_BASE - 60));
    }
    p2p_disc_tick(h->d, tl_time(0));
    const p2p_kad_table_t *tab = p2p_disc_table(h->d);
    int ok = v6 ? 1 : 0, bad = 1 - ok; /* index of the reachable family */
    CHECK(p2p_kad_find(tab, boot[ok].id) != NULL);
    CHECK(p2p_kad_find(tab, seeds[ok].id) != NULL);
    CHECK(p2p_kad_find(tab, boot[bad].id) == NULL);
    CHECK(p2p_kad_find(tab, seeds[bad].id) == NULL);
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    CHECK(c->node_unreachable == 2);
    for (uint64_t ms = 0; ms < 20000; ms += 100) p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    if (c->tx_errors || c->reval_unreachable)
        printf("unreachable sources (%s core): tx_errors %llu reval_unreachable %llu\n",
               v6 ? "IPv6" : "IPv4", (unsigned long long)c->tx_errors,
               (unsigned long long)c->reval_unreachable);
    CHECK(c->tx_errors == 0 && c->reval_unreachable == 0);
    for (unsigned i = 0; i < h->nout; i++) CHECK(h->out[i].to.ip.family == (v6 ? 6 : 4));
    CHECK(h->nout > 0);
    h_free(h);
}

static void test_unreachable_sources(void)
{
    unreachable_sources_run(true);
    unreachable_sources_run(false);
}

/* A table node pinged for revalidation at its old address proves a new
 * one before that check times out (it restarted elsewhere and pinged us):
 * the old address's silence is no verdict on the entry at the new one. */
static void test_reval_moved_entry(harness_t *h)
{
    tl_ident_t k;
    p2p_node_t n = add_node(h, &k, 300, tl_time(10 * TL_MS));
    int pi = -1;
    uint64_t ms = 20;
    for (; ms < 20000 && pi < 0; ms += 50) {
        unsigned from = h->nout;
        p2p_disc_tick(h->d, tl_time(ms * TL_MS));
        for (unsigned i = from; i < h->nout && pi < 0; i++)
            if (h->out[i].pkt.type == P2P_DISCV4_PING && p2p_ip_equal(&h->out[i].to.ip, &n.ep.ip))
                pi = (int)i;
    }
    CHECK(pi >= 0);
    CHECK(p2p_disc_counters(h->d)->reval_pings == 1);
    /* It pings us from its new address, where it is bonded: the entry moves
     * there, verified. */
    p2p_endpoint_t src2 = ep_of(pub_ip(301), 30304);
    p2p_disc_time_t t = tl_time((ms + 100) * TL_MS);
    CHECK_OK(tl_db_set_last_pong(&h->db, n.id, &src2.ip, t.unix_s));
    CHECK_OK(h_ping(h, &k, &src2, 30304, t, NULL));
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), n.id);
    CHECK(e && p2p_ip_equal(&e->node.ep.ip, &src2.ip) && e->node.ep.udp == 30304);
    /* The ping to the old address times out. */
    unsigned watch = h->nout;
    p2p_disc_tick(h->d, tl_time((ms + 600) * TL_MS));
    e = p2p_kad_find(p2p_disc_table(h->d), n.id);
    CHECK(e != NULL);
    if (e) CHECK(p2p_ip_equal(&e->node.ep.ip, &src2.ip) && e->node.ep.udp == 30304);
    CHECK(p2p_disc_counters(h->d)->reval_deleted == 0);
    CHECK(h->ev[P2P_DISC_EV_NODE_REMOVED] == 0);
    /* It is checked again in turn, at the new address (its list may be due
     * in the same tick as the timeout). */
    bool again = false;
    for (uint64_t m2 = ms + 650; !again; m2 += 50) {
        for (unsigned i = watch; i < h->nout; i++)
            again |= h->out[i].pkt.type == P2P_DISCV4_PING &&
                     p2p_ip_equal(&h->out[i].to.ip, &src2.ip) && h->out[i].to.udp == 30304;
        watch = h->nout;
        if (again || m2 >= ms + 20000) break;
        p2p_disc_tick(h->d, tl_time(m2 * TL_MS));
    }
    CHECK(again);
}

/* A table node proves a new address (a bonded ping from it) that the IP
 * limits refuse (its bucket already holds 2 of that /24): the entry keeps
 * its old address, and the refusal is counted like any other. */
static void test_iplimit_moved_counted(harness_t *h)
{
    p2p_disc_time_t t = tl_time(10 * TL_MS);
    tl_ident_t keys[3];
    p2p_node_t ns[3];
    unsigned n = 0;
    for (; n < 3 && far_ident(h, &keys[n]); n++) {
        ns[n] = tl_node(&keys[n], n < 2 ? p2p_ip4(50, 0, 0, (uint8_t)(n + 1)) : pub_ip(320), 30303);
        CHECK(p2p_disc_add_node(h->d, &ns[n], t) == P2P_KAD_ADDED);
    }
    CHECK(n == 3);
    CHECK(p2p_disc_counters(h->d)->table_iplimit == 0);
    /* ns[2] pings from 50.0.0.3, bonded there. */
    p2p_endpoint_t src = ep_of(p2p_ip4(50, 0, 0, 3), 30303);
    CHECK_OK(tl_db_set_last_pong(&h->db, ns[2].id, &src.ip, t.unix_s));
    CHECK_OK(h_ping(h, &keys[2], &src, 30303, t, NULL));
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), ns[2].id);
    CHECK(e && p2p_ip_equal(&e->node.ep.ip, &ns[2].ep.ip));
    CHECK(p2p_disc_counters(h->d)->table_iplimit == 1);
    /* The ping proved 50.0.0.3, not the address kept: that one is still
     * unchecked, so findnode answers (live entries only, once there are
     * any) leave it out.  ns[0] bonds at its own address: live. */
    CHECK(e && !e->live && e->checks == 0);
    p2p_endpoint_t src0 = ep_of(ns[0].ep.ip, ns[0].ep.udp);
    h_bond(h, &keys[0], &src0, t);
    const p2p_kad_entry_t *e0 = p2p_kad_find(p2p_disc_table(h->d), ns[0].id);
    CHECK(e0 && e0->live);
    unsigned before = h->nout;
    CHECK_OK(h_findnode(h, &keys[0], &src0, keys[2].pub, t));
    int ni = h_find(h, before, P2P_DISCV4_NEIGHBORS);
    CHECK(ni >= 0);
    for (unsigned i = 0; ni >= 0 && i < h->out[ni].pkt.u.neighbors.n; i++)
        CHECK(memcmp(h->out[ni].pkt.u.neighbors.nodes[i].id, keys[2].pub, 64) != 0);
}

/* Runs ticks until the core sends a revalidation ping; returns its index. */
static int next_reval_ping(harness_t *h, uint64_t *ms, uint64_t until_ms, const tl_ident_t *keys,
                           const p2p_node_t *ns, unsigned n)
{
    /* Pings of the tick that sent the last one returned, not yet returned
     * (a revalidation ping and a refresh's bond ping can leave in the same
     * tick): returned first, at that tick's time, so none goes unanswered
     * (an unanswered revalidation would drop its node). */
    static harness_t *last_h;
    static uint64_t last_ms;
    static unsigned next, end;
    if (last_h == h && last_ms == *ms) {
        int i = h_find(h, next, P2P_DISCV4_PING);
        if (i >= 0 && (unsigned)i < end) {
            next = (unsigned)i + 1;
            return i;
        }
    }
    /* Scanned for findnodes from where the last call stopped: the test's
     * replies in between may have sent some (a settled bond's). */
    unsigned from = last_h == h && end <= h->nout ? end : h->nout;
    /* A long run would fill the outbox: the packets not yet scanned move
     * to its start. */
    if (h->nout > OUTBOX - 64) {
        memmove(&h->out[0], &h->out[from], (h->nout - from) * sizeof h->out[0]);
        h->nout -= from;
        from = 0;
    }
    for (; *ms < until_ms; *ms += 50) {
        p2p_disc_tick(h->d, tl_time(*ms * TL_MS));
        /* Refresh lookups also run: findnodes get an answer naming the
         * queried node itself, a usable entry, so the query succeeds.  An
         * empty answer would count as a findnode failure: 5 of them in a
         * row evict the node (as many as the refreshes run), and how many
         * a node gets depends on the seed. */
        for (unsigned i = from; i < h->nout; i++) {
            if (h->out[i].pkt.type != P2P_DISCV4_FINDNODE) continue;
            for (unsigned j = 0; j < n; j++) {
                if (!p2p_ip_equal(&h->out[i].to.ip, &ns[j].ep.ip)) continue;
                p2p_discv4_packet_t nb;
                tl_pkt(&nb, &keys[j], P2P_DISCV4_NEIGHBORS, tl_time(*ms * TL_MS));
                nb.u.neighbors.n = 1;
                rpc_of(&nb.u.neighbors.nodes[0], &ns[j]);
                p2p_endpoint_t src = ep_of(ns[j].ep.ip, ns[j].ep.udp);
                CHECK_OK(p2p_disc_handle(h->d, &nb, &src, tl_time(*ms * TL_MS)));
            }
        }
        int i = h_find(h, from, P2P_DISCV4_PING);
        if (i >= 0) {
            last_h = h;
            last_ms = *ms;
            next = (unsigned)i + 1;
            end = h->nout;
            return i;
        }
        from = h->nout;
    }
    return -1;
}

/* n (key k, at pub_ip(last)) enters the table and answers its first
 * revalidation ping with a pong announcing seq 5, at *ms: no ENR request
 * follows yet (held: n has not pinged us).  Returns the index of the first
 * packet sent after that pong, or -1. */
static int enr_seq5_pong(harness_t *h, tl_ident_t *k, p2p_node_t *n, p2p_endpoint_t *src,
                         unsigned last, uint64_t *ms)
{
    *n = add_node(h, k, last, tl_time(10 * TL_MS));
    *src = ep_of(n->ep.ip, n->ep.udp);
    *ms = 20;
    int pi = next_reval_ping(h, ms, 30000, k, n, 1);
    CHECK(pi >= 0);
    if (pi < 0) return -1;
    unsigned before = h->nout;
    CHECK_OK(h_pong(h, k, src, h->out[pi].hash, 5, tl_time(*ms * TL_MS)));
    CHECK(h_find(h, before, P2P_DISCV4_ENRREQUEST) < 0);
    CHECK(p2p_disc_counters(h->d)->enr_deferred == 1);
    return (int)before;
}

/* A record of seq with ip, the ports udp and tcp, signed with priv. */
static void make_record(p2p_enr_t *rec, uint64_t seq, const p2p_ip_t *ip, uint16_t udp,
                        uint16_t tcp, const uint8_t priv[32])
{
    p2p_enr_init(rec);
    p2p_enr_set_seq(rec, seq);
    CHECK_OK(p2p_enr_set_ip(rec, ip));
    CHECK_OK(p2p_enr_set_port(rec, "udp", udp));
    CHECK_OK(p2p_enr_set_port(rec, "tcp", tcp));
    CHECK_OK(p2p_enr_sign(rec, priv));
}

/* k's ENRResponse carrying rec, the answer to our ENR request out[ri],
 * sent at ms (no expiration). */
static void enr_response(p2p_discv4_packet_t *er, const harness_t *h, const tl_ident_t *k, int ri,
                         const p2p_enr_t *rec, uint64_t ms)
{
    tl_pkt(er, k, P2P_DISCV4_ENRRESPONSE, tl_time(ms * TL_MS));
    er->expiration = 0;
    memcpy(er->u.enrresponse.reply_tok, h->out[ri].hash, 32);
    er->u.enrresponse.record = *rec;
}

/* k's record (seq 5, n's IP and UDP port, TCP port tcp) as the answer to
 * our ENR request out[ri], handled at ms. */
static void answer_enr(harness_t *h, const tl_ident_t *k, const p2p_node_t *n,
                       const p2p_endpoint_t *src, uint16_t tcp, int ri, uint64_t ms)
{
    p2p_enr_t rec;
    make_record(&rec, 5, &n->ep.ip, n->ep.udp, tcp, k->priv);
    p2p_discv4_packet_t er;
    enr_response(&er, h, k, ri, &rec, ms);
    CHECK_OK(p2p_disc_handle(h->d, &er, src, tl_time(ms * TL_MS)));
}

/* First contact: the node's pong to our ping announces seq 5, but it has
 * not pinged us yet, so it would drop an ENR request (it checks the bond
 * as we do): none is sent yet (enr_deferred).  Its ping-back follows; our
 * pong goes first, then the request, which it now answers; the held one
 * is not sent again when its wait ends. */
static void test_enr_after_bond(harness_t *h)
{
    tl_ident_t k;
    p2p_node_t n;
    p2p_endpoint_t src;
    uint64_t ms;
    int first = enr_seq5_pong(h, &k, &n, &src, 7, &ms);
    if (first < 0) return;
    unsigned before = (unsigned)first;
    CHECK(p2p_disc_counters(h->d)->enr_requests == 0);
    /* Its ping (bonded now: our pong is in the DB) with seq 5. */
    h_ping_seq = 5;
    before = h->nout;
    CHECK_OK(h_ping(h, &k, &src, 30303, tl_time((ms + 5) * TL_MS), NULL));
    CHECK(h->nout == before + 2);
    CHECK(h->out[before].pkt.type == P2P_DISCV4_PONG);
    CHECK(h->out[before + 1].pkt.type == P2P_DISCV4_ENRREQUEST);
    CHECK(p2p_ip_equal(&h->out[before + 1].to.ip, &n.ep.ip));
    CHECK(p2p_disc_counters(h->d)->enr_requests == 1);
    /* A second ping while the request is out: a pong only. */
    CHECK_OK(h_ping(h, &k, &src, 30303, tl_time((ms + 6) * TL_MS), NULL));
    CHECK(h->nout == before + 3 && h->out[before + 2].pkt.type == P2P_DISCV4_PONG);
    /* The record arrives; the next ping with seq 5 asks nothing. */
    answer_enr(h, &k, &n, &src, 30303, (int)before + 1, ms + 7);
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), n.id);
    CHECK(e && e->node.seq == 5);
    before = h->nout;
    CHECK_OK(h_ping(h, &k, &src, 30303, tl_time((ms + 8) * TL_MS), NULL));
    CHECK(h->nout == before + 1 && h->out[before].pkt.type == P2P_DISCV4_PONG);
    CHECK(p2p_disc_counters(h->d)->enr_requests == 1);
    p2p_disc_tick(h->d, tl_time((ms + 600) * TL_MS));
    CHECK(h_find(h, before, P2P_DISCV4_ENRREQUEST) < 0);
    CHECK(p2p_disc_counters(h->d)->enr_requests == 1);
    h_ping_seq = 0;
}

/* The node holds our bond but our record of its ping is gone (DB wiped,
 * or our pong to its ping-back was lost): it never pings us again.  Its
 * pong announces seq 5: the ENR request waits 500 ms for a ping-back that
 * never comes, then goes anyway, and the record is applied. */
static void test_enr_stale_bond(harness_t *h)
{
    tl_ident_t k;
    p2p_node_t n;
    p2p_endpoint_t src;
    uint64_t ms;
    int first = enr_seq5_pong(h, &k, &n, &src, 8, &ms);
    if (first < 0) return;
    unsigned before = (unsigned)first;
    /* Not before the ping-back had its time. */
    p2p_disc_tick(h->d, tl_time((ms + 499) * TL_MS));
    CHECK(h_find(h, before, P2P_DISCV4_ENRREQUEST) < 0);
    p2p_disc_tick(h->d, tl_time((ms + 500) * TL_MS));
    int ei = h_find(h, before, P2P_DISCV4_ENRREQUEST);
    CHECK(ei >= 0);
    CHECK(p2p_disc_counters(h->d)->enr_requests == 1);
    if (ei < 0) return;
    CHECK(p2p_ip_equal(&h->out[ei].to.ip, &n.ep.ip) && h->out[ei].to.udp == n.ep.udp);
    answer_enr(h, &k, &n, &src, 30304, ei, ms + 510);
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), n.id);
    CHECK(e && e->node.seq == 5 && e->node.ep.tcp == 30304);
    CHECK(h->ev[P2P_DISC_EV_RECORD] == 1);
    /* Only the one request. */
    p2p_disc_tick(h->d, tl_time((ms + 1100) * TL_MS));
    CHECK(p2p_disc_counters(h->d)->enr_requests == 1);
    CHECK(p2p_disc_counters(h->d)->enr_deferred == 1);
}

static bool db_has_node(harness_t *h, const uint8_t id[32])
{
    for (unsigned i = 0; i < h->db.nnodes; i++)
        if (memcmp(h->db.nodes[i].id, id, 32) == 0) return true;
    return false;
}

/* A table node becomes a DB seed once it has answered more than 5
 * revalidation checks: after its 6th, not its 5th.  Every ping to it is
 * answered (refresh lookups bond with it too; those pongs are no check). */
static void test_reval_db_seed(harness_t *h)
{
    tl_ident_t k;
    p2p_node_t n = add_node(h, &k, 310, tl_time(10 * TL_MS));
    p2p_endpoint_t src = ep_of(n.ep.ip, n.ep.udp);
    uint64_t ms = 20;
    unsigned checks = 0;
    bool saw5 = false, saw6 = false;
    for (int round = 0; round < 60 && checks < 7; round++) {
        int pi = next_reval_ping(h, &ms, ms + 30000, &k, &n, 1);
        CHECK(pi >= 0);
        if (pi < 0) break;
        CHECK_OK(h_pong(h, &k, &src, h->out[pi].hash, 0, tl_time(ms * TL_MS)));
        const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), n.id);
        CHECK(e != NULL);
        if (!e) break;
        checks = e->checks;
        bool stored = db_has_node(h, n.id);
        CHECK(stored == (checks >= 6));
        saw5 |= checks == 5 && !stored;
        saw6 |= checks == 6 && stored;
    }
    CHECK(saw5 && saw6);
}

static void test_revalidation(harness_t *h)
{
    p2p_disc_time_t t = tl_time(10 * TL_MS);
    /* A full far bucket plus one replacement. */
    tl_ident_t keys[17];
    p2p_node_t ns[17];
    for (unsigned n = 0; n < 17 && far_ident(h, &keys[n]); n++) {
        ns[n] = tl_node(&keys[n], pub_ip(100 + n), 30303);
        CHECK(p2p_disc_add_node(h->d, &ns[n], t) == (n < 16 ? P2P_KAD_ADDED : P2P_KAD_REPLACEMENT));
        /* it pinged us within 24 h: it answers our ENR requests */
        CHECK_OK(tl_db_set_last_ping(&h->db, ns[n].id, &ns[n].ep.ip, t.unix_s));
    }
    /* No reply: checks 0 -> deleted, the replacement promoted. */
    uint64_t ms = 20;
    int pi = next_reval_ping(h, &ms, 10000, keys, ns, 17);
    CHECK(pi >= 0);
    if (pi < 0) return;
    p2p_endpoint_t victim = h->out[pi].to;
    p2p_disc_tick(h->d, tl_time((ms + 500) * TL_MS));
    CHECK(p2p_disc_counters(h->d)->reval_deleted == 1);
    CHECK(p2p_ip_equal(&h->last_removed.ep.ip, &victim.ip));
    CHECK(memcmp(h->last_added.id, ns[16].id, 32) == 0);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), ns[16].id) != NULL);
    CHECK(p2p_kad_len(p2p_disc_table(h->d)) == 16);

    /* Replies: checks grow, slow list; a pong with a higher seq asks for the
     * ENR, whose verified record is applied. */
    ms += 600;
    unsigned answered = 0, enr_reqs = 0;
    int target = -1; /* the node that gets a record */
    for (int round = 0; round < 400 && answered < 160; round++) {
        pi = next_reval_ping(h, &ms, ms + 20000, keys, ns, 17);
        CHECK(pi >= 0);
        if (pi < 0) break;
        int k = -1;
        for (int j = 0; j < 17; j++)
            if (p2p_ip_equal(&ns[j].ep.ip, &h->out[pi].to.ip)) k = j;
        CHECK(k >= 0);
        if (k < 0) break;
        if (target < 0) target = k;
        p2p_endpoint_t src = ep_of(ns[k].ep.ip, ns[k].ep.udp);
        unsigned before = h->nout;
        CHECK_OK(
            h_pong(h, &keys[k], &src, h->out[pi].hash, k == target ? 5 : 0, tl_time(ms * TL_MS)));
        answered++;
        int ei = h_find(h, before, P2P_DISCV4_ENRREQUEST);
        if (k == target && enr_reqs == 0) {
            CHECK(ei >= 0);
            if (ei < 0) break;
            enr_reqs++;
            /* A record signed by another key: rejected. */
            p2p_enr_t rec;
            make_record(&rec, 5, &ns[k].ep.ip, 31000, 31001, keys[(k + 1) % 17].priv);
            p2p_discv4_packet_t er;
            enr_response(&er, h, &keys[k], ei, &rec, ms);
            CHECK_ERR(p2p_disc_handle(h->d, &er, &src, tl_time(ms * TL_MS)), P2P_EPROTO);
            CHECK(p2p_disc_counters(h->d)->drop_bad_enr == 1);
            /* The matcher is consumed: the good record now is unsolicited. */
            CHECK_OK(p2p_enr_sign(&rec, keys[k].priv));
            er.u.enrresponse.record = rec;
            CHECK_ERR(p2p_disc_handle(h->d, &er, &src, tl_time(ms * TL_MS)), P2P_EPROTO);
            CHECK(p2p_kad_find(p2p_disc_table(h->d), ns[k].id)->node.seq == 0);
        } else if (k == target && enr_reqs == 1) {
            /* The next higher-seq pong asks again; this time a good record. */
            CHECK(ei >= 0);
            if (ei < 0) break;
            enr_reqs++;
            p2p_enr_t rec;
            make_record(&rec, 5, &ns[k].ep.ip, 31000, 31001, keys[k].priv);
            p2p_discv4_packet_t er;
            enr_response(&er, h, &keys[k], ei, &rec, ms);
            unsigned puts = h->db.puts;
            CHECK_OK(p2p_disc_handle(h->d, &er, &src, tl_time(ms * TL_MS)));
            const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), ns[k].id);
            CHECK(e && e->node.seq == 5 && e->node.ep.udp == 31000 && e->node.ep.tcp == 31001);
            CHECK(h->ev[P2P_DISC_EV_RECORD] == 1 && h->last_record.seq == 5);
            CHECK(h->db.puts == puts + 1);
            CHECK(h->db.enrlen[h->db.nnodes - 1] > 0);
            /* Revalidation pings now go to the new port. */
            ns[k].ep.udp = 31000;
        } else if (k == target) {
            CHECK(ei < 0); /* seq 5 is known now */
        }
        (void)ei;
    }
    CHECK(enr_reqs == 2);
    CHECK(p2p_disc_counters(h->d)->enr_requests == 2);
    /* Everyone answered: all on the slow list, and nodes with more than 5
     * checks were stored as seeds. */
    const p2p_kad_table_t *tab = p2p_disc_table(h->d);
    unsigned slow = 0, seeds = 0;
    for (unsigned i = 0; i < tab->b[16].n; i++) {
        slow += tab->b[16].e[i].slow;
        if (tab->b[16].e[i].checks > 5) {
            int stored = 0;
            for (unsigned j = 0; j < h->db.nnodes; j++)
                stored |= memcmp(h->db.nodes[j].id, tab->b[16].e[i].node.id, 32) == 0;
            seeds += stored;
            CHECK(stored);
        }
    }
    CHECK(slow == 16);
    CHECK(p2p_disc_counters(h->d)->reval_deleted == 1);
    CHECK(p2p_disc_counters(h->d)->findfail_evictions == 0);
    CHECK(seeds >= 1);
    /* Most pings were revalidation (some were bond pings of refreshes). */
    CHECK(p2p_disc_counters(h->d)->reval_pings >= 100);
}

static void test_refresh(void)
{
    tl_ident_t bk[2];
    p2p_node_t boot[2];
    for (int i = 0; i < 2; i++) {
        tl_ident(&bk[i]);
        boot[i] = tl_node(&bk[i], pub_ip(500 + (unsigned)i), 30303);
    }
    harness_t *h = h_new(boot, 2, NULL, 0);
    /* Three seeds in the DB with recent pongs, one too old. */
    p2p_node_t seeds[4];
    for (int i = 0; i < 4; i++) {
        tl_ident_t k;
        tl_ident(&k);
        seeds[i] = tl_node(&k, pub_ip(600 + (unsigned)i), 30303);
        CHECK_OK(tl_db_put_node(&h->db, &seeds[i], NULL, 0));
        uint64_t age = i < 3 ? 3600 : 6 * 24 * 3600;
        CHECK_OK(tl_db_set_last_pong(&h->db, seeds[i].id, &seeds[i].ep.ip, TL_UNIX_BASE - age));
    }
    p2p_disc_tick(h->d, tl_time(0));
    CHECK(h->db.seeds_asked == 30); /* seedCount */
    const p2p_kad_table_t *tab = p2p_disc_table(h->d);
    CHECK(p2p_kad_len(tab) == 5);
    for (int i = 0; i < 3; i++) CHECK(p2p_kad_find(tab, seeds[i].id) != NULL);
    CHECK(p2p_kad_find(tab, seeds[3].id) == NULL);
    CHECK(p2p_kad_find(tab, boot[0].id) && p2p_kad_find(tab, boot[1].id));
    CHECK(p2p_disc_counters(h->d)->refreshes == 1);
    /* Self lookup first: bond pings to the 3 nearest of 5 (no findnode yet;
     * revalidation may ping one more). */
    CHECK(h_count(h, P2P_DISCV4_PING) >= 3 && h_count(h, P2P_DISCV4_PING) <= 4);
    CHECK(h_count(h, P2P_DISCV4_FINDNODE) == 0);
    p2p_node_t near[3];
    CHECK(p2p_kad_closest(tab, near, 3, h->me.id, false) == 3);
    for (int i = 0; i < 3; i++) {
        int pinged = 0;
        for (unsigned j = 0; j < h->nout; j++)
            pinged |= h->out[j].pkt.type == P2P_DISCV4_PING &&
                      p2p_ip_equal(&h->out[j].to.ip, &near[i].ep.ip);
        CHECK(pinged);
    }
    /* Nobody answers; 4 lookups run one after the other, then the next
     * refresh is scheduled 15-30 min later. */
    uint64_t ms = 0;
    for (; ms < 60000 && !p2p_disc_init_done(h->d); ms += 100)
        p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    CHECK(p2p_disc_init_done(h->d));
    CHECK(p2p_disc_counters(h->d)->lookups_started == 4);
    CHECK(h->ev[P2P_DISC_EV_LOOKUP_DONE] == 4);
    uint64_t now_ns = ms * TL_MS;
    /* Dead nodes may have been dropped by revalidation meanwhile; the
     * deadline still includes the next refresh. */
    p2p_disc_t *d = h->d;
    uint64_t next = UINT64_MAX;
    for (uint64_t probe = now_ns; probe < now_ns + 31ull * 60 * 1000000000ull;
         probe += 1000000000ull) {
        p2p_disc_tick(d, tl_time(probe));
        if (p2p_disc_counters(d)->refreshes == 2) {
            next = probe;
            break;
        }
    }
    /* Everybody is dead, so the table empties and the empty-table rule may
     * start a refresh earlier: at least 10 s after the first. */
    CHECK(next != UINT64_MAX);
    CHECK(next >= 10ull * 1000000000ull);
    h_free(h);

    /* With a live table, the next refresh comes 15-30 min after the first. */
    harness_t *h2 = h_new(NULL, 0, NULL, 0);
    p2p_node_t keep;
    tl_ident_t kk;
    tl_ident(&kk);
    keep = tl_node(&kk, pub_ip(700), 30303);
    CHECK(p2p_disc_add_node(h2->d, &keep, tl_time(0)) == P2P_KAD_ADDED);
    uint64_t first = UINT64_MAX;
    for (uint64_t s = 0; s < 31 * 60; s++) {
        p2p_disc_time_t now = tl_time(s * 1000000000ull);
        /* keep answers every revalidation ping */
        unsigned before = h2->nout;
        p2p_disc_tick(h2->d, now);
        for (unsigned i = before; i < h2->nout; i++) {
            p2p_endpoint_t src = ep_of(keep.ep.ip, keep.ep.udp);
            if (h2->out[i].pkt.type == P2P_DISCV4_PING) {
                (void)h_pong(h2, &kk, &src, h2->out[i].hash, 0, now);
                (void)h_ping(h2, &kk, &src, keep.ep.tcp, now, NULL);
            } else if (h2->out[i].pkt.type == P2P_DISCV4_FINDNODE) {
                /* keep knows nobody: an empty answer still counts as one. */
                p2p_discv4_packet_t nb;
                tl_pkt(&nb, &kk, P2P_DISCV4_NEIGHBORS, now);
                CHECK_OK(p2p_disc_handle(h2->d, &nb, &src, now));
            }
        }
        if (h2->nout > OUTBOX - 16) h2->nout = 0;
        if (p2p_disc_counters(h2->d)->refreshes == 2) {
            first = s;
            break;
        }
    }
    CHECK(first >= 15 * 60 && first <= 30 * 60 + 1);
    h_free(h2);
}

/* Candidate lookups that end at once (the only node answers every
 * findnode at once with 16 entries, all naming us: a complete, valid
 * answer that adds nobody) still start at most one per second. */
static void test_candidates_spacing(void)
{
    harness_t *h = h_new(NULL, 0, NULL, 0);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, tl_time(0));
    p2p_endpoint_t psrc = ep_of(p.ep.ip, p.ep.udp);
    p2p_disc_want_candidates(h->d, true);
    uint64_t last_start_ms = 0, min_gap_ms = UINT64_MAX;
    uint64_t seen = p2p_disc_counters(h->d)->lookups_started;
    unsigned gaps = 0, scan = 0;
    for (uint64_t ms = 0; ms < 10000; ms += 10) {
        p2p_disc_time_t now = tl_time(ms * TL_MS);
        p2p_disc_tick(h->d, now);
        for (; scan < h->nout; scan++) {
            p2p_discv4_packet_t r;
            if (h->out[scan].pkt.type == P2P_DISCV4_FINDNODE) {
                tl_pkt(&r, &pk, P2P_DISCV4_NEIGHBORS, now);
                r.u.neighbors.n = P2P_DISC_RESULT;
                p2p_node_t me = tl_node(&h->me, pub_ip(2), 30303);
                for (unsigned j = 0; j < P2P_DISC_RESULT; j++) rpc_of(&r.u.neighbors.nodes[j], &me);
                CHECK_OK(p2p_disc_handle(h->d, &r, &psrc, now));
            } else if (h->out[scan].pkt.type == P2P_DISCV4_PING) {
                CHECK_OK(h_pong(h, &pk, &psrc, h->out[scan].hash, 0, now));
            }
        }
        if (h->nout > OUTBOX - 64) scan = h->nout = 0;
        uint64_t started = p2p_disc_counters(h->d)->lookups_started;
        if (started > seen && p2p_disc_init_done(h->d)) {
            if (last_start_ms) {
                gaps++;
                if (ms - last_start_ms < min_gap_ms) min_gap_ms = ms - last_start_ms;
            }
            last_start_ms = ms;
        }
        seen = started;
    }
    CHECK(p2p_disc_init_done(h->d));
    CHECK(p2p_disc_candidates_len(h->d) == 1); /* p, once */
    CHECK(gaps >= 5);
    CHECK(min_gap_ms >= 1000 && min_gap_ms < 1100);
    h_free(h);
}

static void test_candidates_iterator(void)
{
    harness_t *h = h_new(NULL, 0, NULL, 0);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, tl_time(0));
    /* The initial refresh: p answers its findnodes (empty), so the next
     * refresh is 15-30 min away and only the iterator starts lookups. */
    p2p_endpoint_t psrc = ep_of(p.ep.ip, p.ep.udp);
    uint64_t ms0 = 0;
    for (unsigned scan = 0; ms0 < 5000 && !p2p_disc_init_done(h->d); ms0 += 10) {
        p2p_disc_tick(h->d, tl_time(ms0 * TL_MS));
        for (; scan < h->nout; scan++) {
            p2p_discv4_packet_t r;
            if (h->out[scan].pkt.type == P2P_DISCV4_FINDNODE) {
                tl_pkt(&r, &pk, P2P_DISCV4_NEIGHBORS, tl_time(ms0 * TL_MS));
                CHECK_OK(p2p_disc_handle(h->d, &r, &psrc, tl_time(ms0 * TL_MS)));
            } else if (h->out[scan].pkt.type == P2P_DISCV4_PING) {
                CHECK_OK(h_pong(h, &pk, &psrc, h->out[scan].hash, 0, tl_time(ms0 * TL_MS)));
            }
        }
    }
    CHECK(p2p_disc_init_done(h->d));
    CHECK(p2p_disc_counters(h->d)->lookups_started == 4);
    CHECK(p2p_disc_candidates_len(h->d) == 0);
    h->nout = 0;
    p2p_disc_time_t t = tl_time(ms0 * TL_MS);
    unsigned started = (unsigned)p2p_disc_counters(h->d)->lookups_started;
    p2p_disc_tick(h->d, t);
    CHECK(p2p_disc_counters(h->d)->lookups_started == started);
    p2p_disc_want_candidates(h->d, true);
    CHECK(p2p_disc_deadline(h->d) <= t.ns);
    p2p_disc_tick(h->d, t);
    CHECK(p2p_disc_counters(h->d)->lookups_started == started + 1);
    /* p answers every findnode with 12 fresh nodes, and its revalidation
     * pings. */
    unsigned served = 0;
    uint64_t last_start_ms = 0, min_gap_ms = UINT64_MAX;
    unsigned seen_started = started + 1;
    unsigned before = 0; /* outbox entries already looked at */
    for (uint64_t ms = ms0; ms < ms0 + 20000; ms += 10) {
        p2p_disc_time_t now = tl_time(ms * TL_MS);
        p2p_disc_tick(h->d, now);
        if (p2p_disc_counters(h->d)->lookups_started > seen_started) {
            seen_started = (unsigned)p2p_disc_counters(h->d)->lookups_started;
            if (last_start_ms && ms - last_start_ms < min_gap_ms) min_gap_ms = ms - last_start_ms;
            last_start_ms = ms;
        }
        for (unsigned i = before; i < h->nout; i++) {
            if (!p2p_ip_equal(&h->out[i].to.ip, &p.ep.ip)) continue;
            if (h->out[i].pkt.type == P2P_DISCV4_PING) { /* revalidation: p is alive */
                p2p_endpoint_t psrc2 = ep_of(p.ep.ip, p.ep.udp);
                CHECK_OK(h_pong(h, &pk, &psrc2, h->out[i].hash, 0, now));
                continue;
            }
            if (h->out[i].pkt.type != P2P_DISCV4_FINDNODE) continue;
            p2p_discv4_packet_t nb;
            tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, now);
            nb.u.neighbors.n = 12;
            for (unsigned j = 0; j < 12; j++) {
                tl_ident_t k;
                tl_ident(&k);
                /* One /24 for all: the table takes at most 10 of them (so p
                 * stays among the closest), the candidate FIFO takes all. */
                p2p_node_t f = tl_node(&k, p2p_ip4(20, 77, 77, (uint8_t)(served * 12 + j)), 30303);
                rpc_of(&nb.u.neighbors.nodes[j], &f);
            }
            served++;
            p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
            CHECK_OK(p2p_disc_handle(h->d, &nb, &src, now));
        }
        before = h->nout;
        if (h->nout > OUTBOX - 64) before = h->nout = 0;
    }
    /* The FIFO filled to half and beyond, stopped the iterator, and held at
     * most P2P_DISC_CANDIDATES. */
    unsigned len = p2p_disc_candidates_len(h->d);
    CHECK(len >= P2P_DISC_CANDIDATES / 2 && len <= P2P_DISC_CANDIDATES);
    CHECK(served >= 6);
    CHECK(min_gap_ms == UINT64_MAX || min_gap_ms >= 1000);
    /* Draining it restarts the iterator. */
    p2p_node_t buf[P2P_DISC_CANDIDATES];
    CHECK(p2p_disc_candidates_pop(h->d, buf, P2P_DISC_CANDIDATES) == len);
    unsigned s0 = (unsigned)p2p_disc_counters(h->d)->lookups_started;
    p2p_disc_tick(h->d, tl_time((ms0 + 30000) * TL_MS));
    CHECK(p2p_disc_counters(h->d)->lookups_started == s0 + 1);
    /* Off: no more lookups.  p still answers its revalidation pings, so
     * the table never runs empty (which would start a refresh). */
    p2p_disc_want_candidates(h->d, false);
    uint64_t r0 = p2p_disc_counters(h->d)->refreshes;
    for (uint64_t ms = ms0 + 30000; ms < ms0 + 40000; ms += 100) {
        p2p_disc_time_t now = tl_time(ms * TL_MS);
        unsigned from = h->nout;
        p2p_disc_tick(h->d, now);
        for (unsigned i = from; i < h->nout; i++)
            if (p2p_ip_equal(&h->out[i].to.ip, &p.ep.ip) && h->out[i].pkt.type == P2P_DISCV4_PING)
                CHECK_OK(h_pong(h, &pk, &psrc, h->out[i].hash, 0, now));
        if (h->nout > OUTBOX - 64) h->nout = 0;
    }
    CHECK(p2p_disc_counters(h->d)->refreshes == r0);
    CHECK(p2p_disc_counters(h->d)->lookups_started == s0 + 1);
    char buf2[4096];
    size_t need = p2p_disc_counters_format(h->d, buf2, sizeof buf2);
    CHECK(need < sizeof buf2 && strstr(buf2, "lookups_started ") != NULL);
    CHECK(strstr(buf2, "drop_unbonded_findnode 0\n") != NULL);
    char tiny[8];
    CHECK(p2p_disc_counters_format(h->d, tiny, sizeof tiny) == need && strlen(tiny) == 7);
    h_free(h);
}

/* A core whose only known node is its bootnode: the bootnode answers pings
 * and findnodes (with no entries: it knows nobody else), and the candidate
 * stream offers it.  tcp 0 (not dialable): never offered. */
static void candidates_bootnode_run(uint16_t tcp)
{
    tl_ident_t bk;
    tl_ident(&bk);
    p2p_node_t b = tl_node(&bk, pub_ip(1), 30303);
    b.ep.tcp = tcp;
    harness_t *h = h_new(&b, 1, NULL, 0);
    p2p_disc_want_candidates(h->d, true);
    p2p_endpoint_t bsrc = ep_of(b.ep.ip, b.ep.udp);
    unsigned scan = 0, findnodes = 0;
    uint64_t ms = 0;
    for (; ms < 20000 && p2p_disc_candidates_len(h->d) == 0; ms += 10) {
        p2p_disc_time_t now = tl_time(ms * TL_MS);
        p2p_disc_tick(h->d, now);
        for (; scan < h->nout; scan++) {
            const sent_t *o = &h->out[scan];
            CHECK(p2p_ip_equal(&o->to.ip, &b.ep.ip));
            if (o->pkt.type == P2P_DISCV4_PING) {
                CHECK_OK(h_pong(h, &bk, &bsrc, o->hash, 0, now));
            } else if (o->pkt.type == P2P_DISCV4_FINDNODE) {
                p2p_discv4_packet_t nb;
                tl_pkt(&nb, &bk, P2P_DISCV4_NEIGHBORS, now);
                CHECK_OK(p2p_disc_handle(h->d, &nb, &bsrc, now));
                findnodes++;
            }
        }
        if (h->nout > OUTBOX - 16) scan = h->nout = 0;
    }
    CHECK(findnodes > 0);
    if (tcp == 0) {
        /* The whole refresh and many candidate lookups ran: still none. */
        CHECK(p2p_disc_init_done(h->d));
        CHECK(p2p_disc_counters(h->d)->lookups_started > 8);
        CHECK(p2p_disc_candidates_len(h->d) == 0);
    } else {
        CHECK(ms < 20000);
        p2p_node_t c[4];
        CHECK(p2p_disc_candidates_pop(h->d, c, 4) == 1);
        CHECK(memcmp(c[0].id, b.id, 32) == 0 && memcmp(c[0].pubkey, b.pubkey, 64) == 0);
        CHECK(p2p_ip_equal(&c[0].ep.ip, &b.ep.ip) && c[0].ep.tcp == tcp);
        printf("bootnode offered as a candidate after %llu ms (simulated)\n",
               (unsigned long long)ms);
    }
    h_free(h);
}

static void test_candidates_bootnode(void)
{
    candidates_bootnode_run(30304);
    candidates_bootnode_run(0);
}

/* A core for an IPv4-only socket: IPv6 Neighbors entries are dropped
 * (node_unreachable) instead of entering a table they could never leave;
 * an IPv6 entry that came in by other means fails its revalidation as soon
 * as the send is refused for its address (P2P_EUNSUPPORTED counts as no
 * reply) and leaves the table; a transient send failure is no verdict. */
static void test_unreachable(void)
{
    h_next_ipv4_only = true;
    harness_t *h = h_new(NULL, 0, NULL, 1);
    CHECK(h->ipv4_only);
    p2p_disc_time_t t = tl_time(100 * TL_MS);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, t);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    uint32_t handle = 0;
    CHECK(lookup_to(h, &p, t, &handle) >= 0);
    p2p_ip_t v6;
    CHECK_OK(p2p_ip_parse(&v6, "2a01:4f8:1:2::3"));
    tl_ident_t k6, k4;
    tl_ident(&k6);
    tl_ident(&k4);
    p2p_node_t n6 = tl_node(&k6, v6, 30303), n4 = tl_node(&k4, pub_ip(2), 30303);
    p2p_discv4_packet_t nb;
    tl_pkt(&nb, &pk, P2P_DISCV4_NEIGHBORS, t);
    nb.u.neighbors.n = 2;
    rpc_of(&nb.u.neighbors.nodes[0], &n6);
    rpc_of(&nb.u.neighbors.nodes[1], &n4);
    CHECK_OK(p2p_disc_handle(h->d, &nb, &src, t));
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    CHECK(c->node_unreachable == 1 && c->node_bad_relay == 0);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), n6.id) == NULL);
    CHECK(!p2p_kad_is_replacement(p2p_disc_table(h->d), n6.id));
    CHECK(p2p_kad_find(p2p_disc_table(h->d), n4.id) != NULL);

    /* A transient send failure: revalidation has no verdict, entries stay. */
    tl_ident_t ky;
    tl_ident(&ky);
    p2p_node_t y = tl_node(&ky, pub_ip(3), 30303);
    CHECK(p2p_disc_add_node(h->d, &y, t) == P2P_KAD_ADDED);
    h->fail_send = 1;
    uint64_t ms = 200;
    for (; ms < 30000; ms += 100) p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    h->fail_send = 0;
    CHECK(c->reval_pings > 0 && c->reval_unreachable == 0 && c->reval_deleted == 0);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), y.id) != NULL);

    /* An IPv6 entry added by other means: the first revalidation ping is
     * refused for its address, a failed check (0 checks: deleted). */
    tl_ident_t kx;
    tl_ident(&kx);
    p2p_node_t x = tl_node(&kx, v6, 30303);
    x.ep.ip.addr[15] = 4;
    CHECK(p2p_disc_add_node(h->d, &x, tl_time(ms * TL_MS)) == P2P_KAD_ADDED);
    for (uint64_t end = ms + 60000; ms < end && p2p_kad_find(p2p_disc_table(h->d), x.id);
         ms += 100) {
        h->nout = 0;
        p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    }
    CHECK(p2p_kad_find(p2p_disc_table(h->d), x.id) == NULL);
    CHECK(c->reval_unreachable >= 1 && c->reval_deleted >= 1);
    CHECK(memcmp(h->last_removed.id, x.id, 32) == 0 || c->reval_deleted > 1);
    h_free(h);
}

/* An ENRResponse's record endpoint gets the checks of a Neighbors entry
 * (relay rule against the sender, NetRestrict, udp > 1024, a family our
 * socket reaches): one that fails leaves the table entry's endpoint as it
 * was (the record's seq is applied and the record stored), counted in
 * enr_bad_endpoint; a good one is applied. */
static void test_enr_endpoint(void)
{
    p2p_netlist_t nl;
    CHECK_OK(p2p_netlist_parse(&nl, "20.0.0.0/8,192.168.0.0/16"));
    h_next_ipv4_only = true;
    harness_t *h = h_new(NULL, 0, &nl, 1);
    tl_ident_t pk;
    p2p_node_t p = add_pinged(h, &pk, tl_time(10 * TL_MS)); /* it knows us */
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    static const char *ips[5] = {"192.168.1.1", "30.1.1.1", "20.9.9.9", "2a01:4f8::9", "20.9.9.9"};
    static const uint16_t udps[5] = {31000, 31000, 1000, 31000, 31000};
    uint64_t ms = 20;
    for (unsigned r = 0; r < 5; r++) {
        h->nout = 0;
        int pi = next_reval_ping(h, &ms, ms + 30000, &pk, &p, 1);
        CHECK(pi >= 0);
        if (pi < 0) break;
        unsigned before = h->nout;
        CHECK_OK(h_pong(h, &pk, &src, h->out[pi].hash, r + 1, tl_time(ms * TL_MS)));
        int ei = h_find(h, before, P2P_DISCV4_ENRREQUEST);
        CHECK(ei >= 0);
        if (ei < 0) break;
        p2p_ip_t ip;
        CHECK_OK(p2p_ip_parse(&ip, ips[r]));
        p2p_enr_t rec;
        make_record(&rec, r + 1, &ip, udps[r], 31001, pk.priv);
        p2p_discv4_packet_t er;
        enr_response(&er, h, &pk, ei, &rec, ms);
        unsigned puts = h->db.puts;
        CHECK_OK(p2p_disc_handle(h->d, &er, &src, tl_time(ms * TL_MS)));
        const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), p.id);
        CHECK(e != NULL);
        if (!e) break;
        CHECK(e->node.seq == r + 1);
        CHECK(h->db.puts == puts + 1);
        if (r < 4) {
            CHECK(p2p_disc_counters(h->d)->enr_bad_endpoint == r + 1);
            CHECK(p2p_ip_equal(&e->node.ep.ip, &p.ep.ip) && e->node.ep.udp == 30303 &&
                  e->node.ep.tcp == 30303);
        } else {
            CHECK(p2p_disc_counters(h->d)->enr_bad_endpoint == 4);
            CHECK(p2p_ip_equal(&e->node.ep.ip, &ip) && e->node.ep.udp == 31000 &&
                  e->node.ep.tcp == 31001);
        }
    }
    CHECK(p2p_disc_counters(h->d)->rx_enrresponse == 5);
    h_free(h);
}

/* An ENRResponse whose record names an IPv4 and an IPv6 address, on a
 * core whose socket reaches one family: the table entry takes the address
 * of that family (and its ports), even where geth's rule picks the other
 * (ip6 more global on the IPv4 core; a tie, which ip wins, on the IPv6
 * core); before, that pick failed the family check and the entry kept its
 * old endpoint (enr_bad_endpoint). */
static void enr_family_run(bool v6)
{
    h_next_ipv4_only = !v6;
    h_next_ipv6_only = v6;
    harness_t *h = h_new(NULL, 0, NULL, 1);
    tl_ident_t pk;
    tl_ident(&pk);
    p2p_ip_t pip, ip4, ip6;
    CHECK_OK(p2p_ip_parse(&pip, v6 ? "2a01:4f8::1" : "10.0.0.5"));
    CHECK_OK(p2p_ip_parse(&ip4, v6 ? "20.9.9.9" : "10.0.0.7"));
    CHECK_OK(p2p_ip_parse(&ip6, "2a01:4f8::9"));
    p2p_node_t p = tl_node(&pk, pip, 30303);
    CHECK(p2p_disc_add_node(h->d, &p, tl_time(10 * TL_MS)) == P2P_KAD_ADDED);
    CHECK_OK(tl_db_set_last_ping(&h->db, p.id, &p.ep.ip, TL_UNIX_BASE)); /* it knows us */
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    uint64_t ms = 20;
    int pi = next_reval_ping(h, &ms, ms + 30000, &pk, &p, 1);
    CHECK(pi >= 0);
    if (pi < 0) goto out;
    unsigned before = h->nout;
    CHECK_OK(h_pong(h, &pk, &src, h->out[pi].hash, 2, tl_time(ms * TL_MS)));
    int ei = h_find(h, before, P2P_DISCV4_ENRREQUEST);
    CHECK(ei >= 0);
    if (ei < 0) goto out;
    p2p_enr_t rec;
    p2p_enr_init(&rec);
    p2p_enr_set_seq(&rec, 2);
    CHECK_OK(p2p_enr_set_ip(&rec, &ip4));
    CHECK_OK(p2p_enr_set_ip(&rec, &ip6));
    CHECK_OK(p2p_enr_set_port(&rec, "udp", 31000));
    CHECK_OK(p2p_enr_set_port(&rec, "tcp", 31001));
    CHECK_OK(p2p_enr_set_port(&rec, "udp6", 31002));
    CHECK_OK(p2p_enr_set_port(&rec, "tcp6", 31003));
    CHECK_OK(p2p_enr_sign(&rec, pk.priv));
    p2p_discv4_packet_t er;
    enr_response(&er, h, &pk, ei, &rec, ms);
    CHECK_OK(p2p_disc_handle(h->d, &er, &src, tl_time(ms * TL_MS)));
    const p2p_disc_counters_t *c = p2p_disc_counters(h->d);
    CHECK(c->rx_enrresponse == 1 && c->enr_bad_endpoint == 0);
    const p2p_kad_entry_t *e = p2p_kad_find(p2p_disc_table(h->d), p.id);
    CHECK(e != NULL);
    if (!e) goto out;
    char got[P2P_IP_STRLEN];
    if (!p2p_ip_equal(&e->node.ep.ip, v6 ? &ip6 : &ip4))
        printf("enr_family %s: the entry has %s udp %u\n", v6 ? "IPv6" : "IPv4",
               p2p_ip_format(got, &e->node.ep.ip), e->node.ep.udp);
    CHECK(e->node.seq == 2);
    CHECK(p2p_ip_equal(&e->node.ep.ip, v6 ? &ip6 : &ip4));
    CHECK(e->node.ep.udp == (v6 ? 31002 : 31000) && e->node.ep.tcp == (v6 ? 31003 : 31001));
out:
    h_free(h);
}

static void test_enr_family(void)
{
    enr_family_run(false);
    enr_family_run(true);
}

static unsigned db_lastping_records(const tl_db_t *db)
{
    unsigned c = 0;
    for (unsigned i = 0; i < db->n; i++) c += db->r[i].lastping != 0;
    return c;
}

/* Pings from fresh identities that never answer the ping-back write no
 * node-DB record (no lastping): only a bonded sender, or one that answers
 * the ping-back, is recorded. */
static void test_unbonded_ping_no_record(harness_t *h)
{
    p2p_disc_time_t t = tl_time(1000 * TL_MS);
    for (unsigned i = 0; i < 200; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_endpoint_t s = ep_of(pub_ip(300 + i), 30303);
        h->nout = 0;
        CHECK_OK(h_ping(h, &k, &s, 30303, t, NULL));
        CHECK(h->nout >= 1 && h->out[0].pkt.type == P2P_DISCV4_PONG);
    }
    CHECK(p2p_disc_counters(h->d)->rx_ping == 200);
    CHECK(db_lastping_records(&h->db) == 0);
    /* Their ping-backs time out: still nothing recorded. */
    p2p_disc_tick(h->d, tl_time(t.ns + 600 * TL_MS));
    CHECK(p2p_disc_pending(h->d) == 0);
    CHECK(db_lastping_records(&h->db) == 0);
    CHECK(h->db.n == 0);

    /* A sender that answers the ping-back: both directions recorded, the
     * ping with the time it arrived. */
    tl_ident_t a;
    tl_ident(&a);
    p2p_endpoint_t src = ep_of(pub_ip(1), 30303);
    p2p_disc_time_t tp = tl_time(5000 * TL_MS);
    unsigned before = h->nout;
    CHECK_OK(h_ping(h, &a, &src, 30303, tp, NULL));
    int pi = h_find(h, before, P2P_DISCV4_PING);
    CHECK(pi >= 0);
    uint64_t lp = 1, lpong = 0;
    CHECK_OK(tl_db_last_ping(&h->db, &lp, a.id, &src.ip));
    CHECK(lp == 0);
    p2p_disc_time_t tq = tl_time(7200 * TL_MS);
    if (pi >= 0) CHECK_OK(h_pong(h, &a, &src, h->out[pi].hash, 0, tq));
    CHECK_OK(tl_db_last_ping(&h->db, &lp, a.id, &src.ip));
    CHECK_OK(tl_db_last_pong(&h->db, &lpong, a.id, &src.ip));
    CHECK(lp == tp.unix_s && lpong == tq.unix_s);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), a.id) != NULL);
    /* Bonded now: its next ping is recorded at once. */
    p2p_disc_time_t t2 = tl_time(60000 * TL_MS);
    CHECK_OK(h_ping(h, &a, &src, 30303, t2, NULL));
    CHECK_OK(tl_db_last_ping(&h->db, &lp, a.id, &src.ip));
    CHECK(lp == t2.unix_s);
    CHECK(db_lastping_records(&h->db) == 1);
}

/* The ping of node k from src: true if a ping-back went to it. */
static bool pinged_back(harness_t *h, const tl_ident_t *k, const p2p_endpoint_t *src,
                        p2p_disc_time_t t)
{
    h->nout = 0;
    CHECK_OK(h_ping(h, k, src, 30303, t, NULL));
    CHECK(h->nout >= 1 && h->out[0].pkt.type == P2P_DISCV4_PONG);
    return h_find(h, 0, P2P_DISCV4_PING) >= 0;
}

/* A ping flood from fresh IDs that never answer does not keep a new node
 * from bonding with us: ping-backs have their own pool (the oldest evicted
 * when full) and a per-network cap. */
static void test_pingback_flood(harness_t *h)
{
    p2p_disc_time_t t = tl_time(1000 * TL_MS);
    for (unsigned i = 0; i < 400; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_endpoint_t s = ep_of(pub_ip(100 + i), 30303);
        (void)pinged_back(h, &k, &s, t);
    }
    /* A new node L pings: it gets its ping-back, so it can bond. */
    tl_ident_t l;
    tl_ident(&l);
    p2p_endpoint_t lsrc = ep_of(p2p_ip4(30, 1, 2, 3), 30303);
    CHECK(pinged_back(h, &l, &lsrc, tl_time(t.ns + 10 * TL_MS)));
    int pi = h_find(h, 0, P2P_DISCV4_PING);
    if (pi >= 0) {
        CHECK(h->out[pi].to.udp == 30303 && p2p_ip_equal(&h->out[pi].to.ip, &lsrc.ip));
        CHECK_OK(h_pong(h, &l, &lsrc, h->out[pi].hash, 0, tl_time(t.ns + 20 * TL_MS)));
        CHECK(p2p_kad_find(p2p_disc_table(h->d), l.id) != NULL);
    }
    CHECK(p2p_disc_pingbacks(h->d) == 400);

    /* Per network: 8 outstanding ping-backs per /24, then pong only. */
    for (unsigned i = 0; i < P2P_DISC_PINGBACKS_PER_NET + 2; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_endpoint_t s = ep_of(p2p_ip4(40, 1, 1, (uint8_t)(i + 1)), 30303);
        CHECK(pinged_back(h, &k, &s, t) == (i < P2P_DISC_PINGBACKS_PER_NET));
    }
    CHECK(p2p_disc_counters(h->d)->pingback_net_full == 2);
    /* ... IPv6 per /48 ... */
    for (unsigned i = 0; i < P2P_DISC_PINGBACKS_PER_NET + 1; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_ip_t ip6 = {
            .family = 6,
            .addr = {0x2a, 0x01, 0x4f, 0x8, 0, 1, (uint8_t)i, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
        p2p_endpoint_t s = ep_of(ip6, 30303);
        CHECK(pinged_back(h, &k, &s, t) == (i < P2P_DISC_PINGBACKS_PER_NET));
    }
    CHECK(p2p_disc_counters(h->d)->pingback_net_full == 3);
    /* ... and LAN addresses are exempt. */
    for (unsigned i = 0; i < 3 * P2P_DISC_PINGBACKS_PER_NET; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_endpoint_t s = ep_of(p2p_ip4(192, 168, 1, (uint8_t)(i + 1)), 30303);
        CHECK(pinged_back(h, &k, &s, t));
    }
    /* Everything times out. */
    p2p_disc_tick(h->d, tl_time(t.ns + 600 * TL_MS));
    CHECK(p2p_disc_pingbacks(h->d) == 0);
    /* The net counts were released: the /24 gets ping-backs again. */
    tl_ident_t k2;
    tl_ident(&k2);
    p2p_endpoint_t s2 = ep_of(p2p_ip4(40, 1, 1, 200), 30303);
    CHECK(pinged_back(h, &k2, &s2, tl_time(t.ns + 700 * TL_MS)));

    /* A full pool evicts its oldest: the newest pinger is still pinged back
     * and the evicted one's pong no longer matches. */
    p2p_disc_time_t t3 = tl_time(t.ns + 800 * TL_MS);
    tl_ident_t first;
    tl_ident(&first);
    p2p_endpoint_t fsrc = ep_of(pub_ip(60000), 30303);
    CHECK(pinged_back(h, &first, &fsrc, t3));
    uint8_t ftok[32];
    memcpy(ftok, h->out[1].hash, 32);
    for (unsigned i = 0; i < P2P_DISC_PINGBACKS; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_endpoint_t s = ep_of(p2p_ip4(50, (uint8_t)(i >> 8), (uint8_t)i, 1), 30303);
        CHECK(pinged_back(h, &k, &s, t3));
    }
    CHECK(p2p_disc_pingbacks(h->d) == P2P_DISC_PINGBACKS);
    CHECK(p2p_disc_counters(h->d)->pingback_evicted == 2); /* k2's and first's */
    CHECK_ERR(h_pong(h, &first, &fsrc, ftok, 0, t3), P2P_EPROTO);
    CHECK(p2p_kad_find(p2p_disc_table(h->d), first.id) == NULL);
}

static harness_t *reenter_h;

/* An event callback that breaks the rule and calls back into the core. */
static void reenter_event(void *ctx, const p2p_disc_event_t *ev)
{
    h_event(ctx, ev);
    if (ev->kind != P2P_DISC_EV_ENDPOINT) return;
    p2p_enr_t r = my_record;
    p2p_enr_set_seq(&r, 99);
    p2p_disc_set_record(reenter_h->d, &r);
    p2p_endpoint_t ep = ep_of(p2p_ip4(9, 9, 9, 9), 9999);
    p2p_disc_set_endpoint(reenter_h->d, &ep);
}

/* set_record / set_endpoint from inside io.event are refused and counted;
 * the same calls after the core call returns apply. */
static void test_reentrant_calls(harness_t *h)
{
    reenter_h = h;
    /* swap in the rule-breaking callback (the core keeps the io by value:
     * make a second core with it) */
    p2p_disc_free(h->d);
    p2p_disc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(cfg.pubkey, h->me.pub, 64);
    cfg.endpoint = ep_of(my_ip, 30303);
    cfg.record = &my_record;
    cfg.seed = 5;
    cfg.io.ctx = h;
    cfg.io.send = h_send;
    cfg.io.event = reenter_event;
    cfg.db = tl_db_ops(&h->db);
    CHECK_OK(p2p_disc_new(&h->d, &cfg));
    p2p_disc_tick(h->d, tl_time(0));
    tl_ident_t pk;
    p2p_node_t p = add_node(h, &pk, 1, tl_time(TL_MS));
    uint8_t target[64] = {2};
    uint32_t hd;
    h->nout = 0;
    CHECK_OK(p2p_disc_lookup(h->d, &hd, target, tl_time(TL_MS)));
    int pi = h_find(h, 0, P2P_DISCV4_PING); /* bonding ping */
    CHECK(pi >= 0);
    p2p_endpoint_t src = ep_of(p.ep.ip, p.ep.udp);
    if (pi >= 0) CHECK_OK(h_pong(h, &pk, &src, h->out[pi].hash, 0, tl_time(2 * TL_MS)));
    CHECK(h->ev[P2P_DISC_EV_ENDPOINT] == 1);
    CHECK(p2p_disc_counters(h->d)->reentrant_calls == 2);
    /* refused: our ping still carries seq 7 and the old endpoint */
    tl_ident_t k;
    tl_ident(&k);
    p2p_endpoint_t ks = ep_of(pub_ip(2), 30303);
    h->nout = 0;
    CHECK_OK(h_ping(h, &k, &ks, 30303, tl_time(3 * TL_MS), NULL));
    CHECK(h->nout == 2 && h->out[0].pkt.u.pong.enr_seq == 7);
    CHECK(h->out[1].pkt.u.ping.from.udp == 30303);
    /* from outside a callback: applied */
    p2p_enr_t r = my_record;
    p2p_enr_set_seq(&r, 8);
    p2p_disc_set_record(h->d, &r);
    h->nout = 0;
    CHECK_OK(h_ping(h, &k, &ks, 30303, tl_time(4 * TL_MS), NULL));
    CHECK(h->nout >= 1 && h->out[0].pkt.u.pong.enr_seq == 8);
    CHECK(p2p_disc_counters(h->d)->reentrant_calls == 2);
}

static void test_limits_and_errors(void)
{
    /* Config validation. */
    p2p_disc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    p2p_disc_t *d = NULL;
    CHECK_ERR(p2p_disc_new(&d, &cfg), P2P_EINVAL);
    CHECK(d == NULL);

    /* Send failures are counted and leave nothing pending. */
    harness_t *h = h_new(NULL, 0, NULL, 1);
    tl_ident_t a;
    tl_ident(&a);
    p2p_endpoint_t src = ep_of(pub_ip(1), 30303);
    h->fail_send = 1;
    CHECK_OK(h_ping(h, &a, &src, 30303, tl_time(TL_MS), NULL));
    CHECK(p2p_disc_counters(h->d)->tx_errors == 2);
    CHECK(p2p_disc_pending(h->d) == 0);
    h->fail_send = 0;

    /* A ping flood from fresh IDs (one per /24): every one is pinged back
     * from the ping-back pool, none takes a request slot; pongs keep
     * flowing; lookups still get their slots. */
    for (unsigned i = 0; i < P2P_DISC_MAX_PENDING + 20; i++) {
        tl_ident_t k;
        tl_ident(&k);
        p2p_endpoint_t s = ep_of(pub_ip(100 + i), 30303);
        h->nout = 0;
        CHECK_OK(h_ping(h, &k, &s, 30303, tl_time(2 * TL_MS), NULL));
        CHECK(h->nout >= 1 && h->out[0].pkt.type == P2P_DISCV4_PONG);
    }
    CHECK(p2p_disc_pending(h->d) == P2P_DISC_MAX_PENDING + 20);
    CHECK(p2p_disc_pingbacks(h->d) == P2P_DISC_MAX_PENDING + 20);
    CHECK(p2p_disc_counters(h->d)->pending_full == 0);
    CHECK(p2p_disc_counters(h->d)->rx_ping == P2P_DISC_MAX_PENDING + 21);
    /* Lookups: at most P2P_DISC_MAX_LOOKUPS at once. */
    tl_ident_t pk;
    (void)add_node(h, &pk, 5000, tl_time(3 * TL_MS));
    uint8_t target[64] = {1};
    uint32_t hd;
    for (unsigned i = 0; i < P2P_DISC_MAX_LOOKUPS; i++)
        CHECK_OK(p2p_disc_lookup(h->d, &hd, target, tl_time(3 * TL_MS)));
    CHECK_ERR(p2p_disc_lookup(h->d, &hd, target, tl_time(3 * TL_MS)), P2P_ELIMIT);
    CHECK(p2p_disc_counters(h->d)->lookups_full == 1);
    /* Everything times out. */
    for (uint64_t ms = 10; ms < 5000; ms += 100) p2p_disc_tick(h->d, tl_time(ms * TL_MS));
    CHECK(p2p_disc_lookups_running(h->d) == 0);
    h_free(h);

    /* DB errors are counted and read as "nothing stored". */
    h = h_new(NULL, 0, NULL, 1);
    h->db.fail = 1;
    tl_ident_t b;
    tl_ident(&b);
    CHECK_OK(h_ping(h, &b, &src, 30303, tl_time(TL_MS), NULL));
    CHECK(h->nout == 2); /* pong + ping-back: no bond known */
    CHECK(p2p_disc_counters(h->d)->db_errors == 1);
    /* Its pong: the ping and pong writes fail too. */
    CHECK_OK(h_pong(h, &b, &src, h->out[1].hash, 0, tl_time(2 * TL_MS)));
    CHECK(p2p_disc_counters(h->d)->db_errors >= 3);
    h_free(h);
}

int main(void)
{
    tu_seed(0xd15c);
    my_ip = p2p_ip4(20, 200, 200, 1);
    with_core(test_ping_pong_and_pingback);
    test_inbound_before_init();
    with_core(test_unbonded_requests);
    with_core(test_expired_and_self);
    test_findnode_reply();
    with_core(test_relay_filter);
    test_neighbors_handling();
    with_core(test_findnode_partial);
    with_core(test_neighbors_13);
    with_core(test_ensure_bond);
    test_bond_shared();
    with_core(test_findfail_eviction);
    with_core(test_revalidation);
    with_core(test_enr_after_bond);
    with_core(test_enr_stale_bond);
    test_refresh();
    test_candidates_iterator();
    test_candidates_spacing();
    test_candidates_bootnode();
    test_limits_and_errors();
    with_core(test_unbonded_ping_no_record);
    with_core(test_pingback_flood);
    with_core(test_reentrant_calls);
    test_unreachable();
    test_enr_endpoint();
    test_enr_family();
    with_core(test_findfail_other_address);
    with_core(test_findnode_self_answer);
    test_restrict_table_sources();
    test_unreachable_sources();
    with_core(test_reval_moved_entry);
    with_core(test_reval_db_seed);
    with_core(test_iplimit_moved_counted);
    return tu_done("disc_core");
}
