/*
 * tests/actors/test_kad_table.c: the Kademlia table core: distances, bucket
 * placement, replacements and promotion, IP limits (per bucket, per table,
 * LAN exempt), add-seen vs add-verified, record updates, closest(), and the
 * revalidation outcomes, all with virtual time.
 */
#include <stdio.h>
#include <stdlib.h>

#include "actors/kad_table.h"
#include "core/clock.h"
#include "core/netutil.h"
#include "tests/tu.h"

static uint8_t self[32];

/* An ID at log distance d (1..256) from base, the lower bits random. */
static void id_at(uint8_t id[32], const uint8_t base[32], int d)
{
    memcpy(id, base, 32);
    int bit = d - 1; /* counted from the least significant bit */
    int byte = 31 - bit / 8;
    id[byte] ^= (uint8_t)(1u << (bit % 8));
    /* Randomise everything below the flipped bit. */
    for (int b = 0; b < bit; b++) {
        if (tu_rand() & 1) id[31 - b / 8] ^= (uint8_t)(1u << (b % 8));
    }
}

static unsigned next_net = 1;

/* A node at distance d with a fresh public /24 (20.x.y.1). */
static p2p_node_t node_at(int d)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    id_at(n.id, self, d);
    tu_rand_bytes(n.pubkey, 64);
    n.ep.ip = p2p_ip4(20, (uint8_t)(next_net >> 8), (uint8_t)next_net, 1);
    next_net++;
    n.ep.udp = 30303;
    n.ep.tcp = 30303;
    return n;
}

static void test_distances(void)
{
    uint8_t a[32], b[32];
    tu_rand_bytes(a, 32);
    memcpy(b, a, 32);
    CHECK(p2p_kad_logdist(a, b) == 0);
    b[31] ^= 1;
    CHECK(p2p_kad_logdist(a, b) == 1);
    b[31] ^= 0x80;
    CHECK(p2p_kad_logdist(a, b) == 8);
    b[0] ^= 0x80;
    CHECK(p2p_kad_logdist(a, b) == 256);
    for (int d = 1; d <= 256; d++) {
        id_at(b, a, d);
        CHECK(p2p_kad_logdist(a, b) == d);
        CHECK(p2p_kad_logdist(b, a) == d);
    }
    CHECK(p2p_kad_bucket_of(0) == 0);
    CHECK(p2p_kad_bucket_of(239) == 0);
    CHECK(p2p_kad_bucket_of(240) == 0);
    CHECK(p2p_kad_bucket_of(241) == 1);
    CHECK(p2p_kad_bucket_of(256) == 16);

    uint8_t t[32] = {0}, x[32] = {0}, y[32] = {0};
    x[31] = 1;
    y[31] = 2;
    CHECK(p2p_kad_distcmp(t, x, y) < 0);
    CHECK(p2p_kad_distcmp(t, y, x) > 0);
    CHECK(p2p_kad_distcmp(t, x, x) == 0);
    t[31] = 3; /* x^t = 2, y^t = 1 */
    CHECK(p2p_kad_distcmp(t, x, y) > 0);
    uint8_t d[32];
    p2p_kad_xor(d, x, y);
    CHECK(d[31] == 3);

    p2p_ip_t i1 = p2p_ip4(1, 2, 3, 4), i2 = p2p_ip4(1, 2, 3, 200), i3 = p2p_ip4(1, 2, 4, 4);
    CHECK(p2p_kad_same_net(&i1, &i2));
    CHECK(!p2p_kad_same_net(&i1, &i3));
}

static void test_placement(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 1);
    /* One node at every distance: buckets by logdist, <= 240 share bucket 0. */
    unsigned want[P2P_KAD_NBUCKETS] = {0};
    for (int d = 200; d <= 256; d++) {
        p2p_node_t n = node_at(d);
        p2p_kad_add_t r = p2p_kad_add_seen(t, &n, 1);
        unsigned bi = p2p_kad_bucket_of(d);
        if (want[bi] < P2P_KAD_BUCKET_SIZE) {
            CHECK(r == P2P_KAD_ADDED);
            want[bi]++;
            CHECK(p2p_kad_find(t, n.id) != NULL);
            CHECK(t->b[bi].e[t->b[bi].n - 1].node.ep.udp == 30303);
            CHECK(memcmp(t->b[bi].e[t->b[bi].n - 1].node.id, n.id, 32) == 0);
        } else {
            CHECK(r == P2P_KAD_REPLACEMENT);
        }
    }
    for (unsigned bi = 0; bi < P2P_KAD_NBUCKETS; bi++) CHECK(t->b[bi].n == want[bi]);
    CHECK(want[0] == 16); /* 200..240 is 41 distances, 16 fit */
    CHECK(t->b[0].nrepl == 10);
    CHECK(want[16] == 1 && want[1] == 1);
    CHECK(p2p_kad_len(t) == 16 + 16);

    /* Self and address-less nodes never enter. */
    p2p_node_t me = node_at(256);
    memcpy(me.id, self, 32);
    CHECK(p2p_kad_add_seen(t, &me, 1) == P2P_KAD_SELF);
    CHECK(p2p_kad_add_verified(t, &me, 1) == P2P_KAD_SELF);
    p2p_node_t noip = node_at(256);
    noip.ep.ip.family = 0;
    CHECK(p2p_kad_add_seen(t, &noip, 1) == P2P_KAD_NOADDR);
    free(t);
}

static void test_replacements(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 2);
    p2p_node_t ns[40];
    for (int i = 0; i < 40; i++) ns[i] = node_at(256);
    for (int i = 0; i < 16; i++) CHECK(p2p_kad_add_seen(t, &ns[i], 1) == P2P_KAD_ADDED);
    for (int i = 16; i < 30; i++) CHECK(p2p_kad_add_seen(t, &ns[i], 1) == P2P_KAD_REPLACEMENT);
    p2p_kad_bucket_t *b = &t->b[16];
    CHECK(b->n == 16);
    CHECK(b->nrepl == 10);
    /* Most recent first; the 4 oldest (16..19) were dropped. */
    CHECK(memcmp(b->repl[0].id, ns[29].id, 32) == 0);
    CHECK(memcmp(b->repl[9].id, ns[20].id, 32) == 0);
    CHECK(!p2p_kad_is_replacement(t, ns[19].id));
    CHECK(p2p_kad_is_replacement(t, ns[20].id));
    /* Seeing a replacement again keeps it where it is. */
    CHECK(p2p_kad_add_seen(t, &ns[25], 1) == P2P_KAD_REPLACEMENT);
    CHECK(memcmp(b->repl[0].id, ns[29].id, 32) == 0);
    /* A verified replacement moves to the front of the list. */
    CHECK(p2p_kad_add_verified(t, &ns[25], 1) == P2P_KAD_REPLACEMENT);
    CHECK(memcmp(b->repl[0].id, ns[25].id, 32) == 0);
    CHECK(b->nrepl == 10);

    /* Deleting an entry promotes one of the replacements, at random. */
    p2p_node_t prom, repl_before[10];
    memcpy(repl_before, b->repl, sizeof repl_before);
    CHECK(p2p_kad_delete(t, &prom, ns[3].id, 5) == 1);
    int pi = -1;
    for (int i = 0; i < 10; i++)
        if (memcmp(prom.id, repl_before[i].id, 32) == 0) pi = i;
    CHECK(pi >= 0);
    CHECK(p2p_kad_find(t, ns[3].id) == NULL);
    const p2p_kad_entry_t *e = p2p_kad_find(t, prom.id);
    CHECK(e != NULL);
    CHECK(e && e->live == 0 && e->checks == 0 && e->added_ns == 5 && e->slow == 0);
    CHECK(!p2p_kad_is_replacement(t, prom.id));
    CHECK(b->nrepl == 9 && b->n == 16);
    CHECK(p2p_kad_delete(t, NULL, ns[3].id, 5) == P2P_ENOTFOUND);
    /* Emptying the replacements, then a delete without promotion. */
    for (int i = 0; i < 9; i++) CHECK(p2p_kad_delete(t, NULL, b->e[0].node.id, 6) == 1);
    CHECK(b->nrepl == 0);
    CHECK(p2p_kad_delete(t, NULL, b->e[0].node.id, 7) == 0);
    CHECK(b->n == 15 && p2p_kad_len(t) == 15);
    free(t);
}

static void test_ip_limits(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 3);
    /* Per bucket: 2 per /24 (entries and replacements together). */
    p2p_node_t a = node_at(256), b = node_at(256), c = node_at(256);
    a.ep.ip = p2p_ip4(30, 1, 1, 1);
    b.ep.ip = p2p_ip4(30, 1, 1, 2);
    c.ep.ip = p2p_ip4(30, 1, 1, 3);
    CHECK(p2p_kad_add_seen(t, &a, 1) == P2P_KAD_ADDED);
    CHECK(p2p_kad_add_verified(t, &b, 1) == P2P_KAD_ADDED);
    CHECK(p2p_kad_add_seen(t, &c, 1) == P2P_KAD_IPLIMIT);
    CHECK(p2p_kad_add_verified(t, &c, 1) == P2P_KAD_IPLIMIT);
    /* Another bucket takes the same /24. */
    p2p_node_t c2 = node_at(255);
    c2.ep.ip = c.ep.ip;
    CHECK(p2p_kad_add_seen(t, &c2, 1) == P2P_KAD_ADDED);
    /* Deleting one frees its place. */
    CHECK(p2p_kad_delete(t, NULL, a.id, 1) == 0);
    CHECK(p2p_kad_add_seen(t, &c, 1) == P2P_KAD_ADDED);

    /* Replacements count too. */
    p2p_kad_init(t, self, 4);
    for (int i = 0; i < 16; i++) {
        p2p_node_t n = node_at(256);
        CHECK(p2p_kad_add_seen(t, &n, 1) == P2P_KAD_ADDED);
    }
    p2p_node_t r1 = node_at(256), r2 = node_at(256), r3 = node_at(256);
    r1.ep.ip = p2p_ip4(31, 0, 0, 1);
    r2.ep.ip = p2p_ip4(31, 0, 0, 2);
    r3.ep.ip = p2p_ip4(31, 0, 0, 3);
    CHECK(p2p_kad_add_seen(t, &r1, 1) == P2P_KAD_REPLACEMENT);
    CHECK(p2p_kad_add_seen(t, &r2, 1) == P2P_KAD_REPLACEMENT);
    CHECK(p2p_kad_add_seen(t, &r3, 1) == P2P_KAD_IPLIMIT);

    /* Per table: 10 per /24 over all buckets. */
    p2p_kad_init(t, self, 5);
    int added = 0;
    for (int d = 256; d >= 246; d--) {
        for (int k = 0; k < 2; k++) {
            p2p_node_t n = node_at(d);
            n.ep.ip = p2p_ip4(40, 0, 0, (uint8_t)(2 * (256 - d) + k + 1));
            p2p_kad_add_t r = p2p_kad_add_seen(t, &n, 1);
            if (added < 10) {
                CHECK(r == P2P_KAD_ADDED);
                added += r == P2P_KAD_ADDED;
            } else {
                CHECK(r == P2P_KAD_IPLIMIT);
            }
        }
    }
    CHECK(added == 10);
    CHECK(p2p_kad_len(t) == 10);

    /* LAN addresses are exempt: 26 nodes of one /24 in one bucket. */
    p2p_kad_init(t, self, 6);
    for (int i = 0; i < 26; i++) {
        p2p_node_t n = node_at(256);
        n.ep.ip = p2p_ip4(192, 168, 1, (uint8_t)(i + 1));
        CHECK(p2p_kad_add_seen(t, &n, 1) == (i < 16 ? P2P_KAD_ADDED : P2P_KAD_REPLACEMENT));
    }
    for (int i = 0; i < 12; i++) {
        p2p_node_t n = node_at(250);
        n.ep.ip = p2p_ip4(127, 0, 0, 1);
        CHECK(p2p_kad_add_seen(t, &n, 1) == P2P_KAD_ADDED);
    }
    CHECK(p2p_kad_len(t) == 28);

    /* IPv6: the limit applies per /24 as well (not per /64): addresses
     * that differ from the fourth byte on share one /24. */
    p2p_kad_init(t, self, 7);
    p2p_ip_t v6;
    CHECK_OK(p2p_ip_parse(&v6, "2001:db8:1:2::1"));
    for (int i = 0; i < 3; i++) {
        p2p_node_t n = node_at(256);
        n.ep.ip = v6;
        n.ep.ip.addr[15] = (uint8_t)(i + 1);
        n.ep.ip.addr[3] = (uint8_t)(0xb8 + i * 7); /* same first 24 bits, another /32 */
        n.ep.ip.addr[6] = (uint8_t)(i * 5);        /* and another /64 */
        CHECK(p2p_kad_add_seen(t, &n, 1) == (i < 2 ? P2P_KAD_ADDED : P2P_KAD_IPLIMIT));
    }
    /* ... and per table: 10 per /24 over all buckets. */
    p2p_kad_init(t, self, 7);
    unsigned v6added = 0;
    for (int i = 0; i < 14; i++) {
        p2p_node_t n = node_at(256 - i / 2);
        n.ep.ip = v6;
        n.ep.ip.addr[4] = (uint8_t)i; /* a new /64 every time */
        n.ep.ip.addr[15] = (uint8_t)(i + 1);
        v6added += p2p_kad_add_seen(t, &n, 1) == P2P_KAD_ADDED;
    }
    CHECK(v6added == P2P_KAD_TABLE_IP_LIMIT);
    p2p_ip_t o1, o2;
    CHECK_OK(p2p_ip_parse(&o1, "2001:db8:1:2::1"));
    CHECK_OK(p2p_ip_parse(&o2, "2001:dff:7::1"));
    CHECK(p2p_kad_same_net(&o1, &o2));
    CHECK_OK(p2p_ip_parse(&o2, "2001:e00::1"));
    CHECK(!p2p_kad_same_net(&o1, &o2));

    /* An endpoint change into a full /24 keeps the old address. */
    p2p_kad_init(t, self, 8);
    p2p_node_t x = node_at(256), y = node_at(256), z = node_at(256);
    x.ep.ip = p2p_ip4(50, 0, 0, 1);
    y.ep.ip = p2p_ip4(50, 0, 0, 2);
    CHECK(p2p_kad_add_seen(t, &x, 1) == P2P_KAD_ADDED);
    CHECK(p2p_kad_add_seen(t, &y, 1) == P2P_KAD_ADDED);
    CHECK(p2p_kad_add_seen(t, &z, 1) == P2P_KAD_ADDED);
    p2p_node_t z2 = z;
    z2.seq = 9;
    z2.ep.ip = p2p_ip4(50, 0, 0, 3);
    CHECK_ERR(p2p_kad_update_record(t, &z2), P2P_ELIMIT);
    const p2p_kad_entry_t *ze = p2p_kad_find(t, z.id);
    CHECK(ze && ze->node.seq == 9 && p2p_ip_equal(&ze->node.ep.ip, &z.ep.ip));
    /* So does a verified add from there (the node proved that address), told
     * apart from an update, and a replacement's or a seen add's move.  The
     * proof was for the refused address: the old one, never checked, is not
     * marked live (findnode answers prefer live entries) nor moved to the
     * front. */
    p2p_node_t z3 = z;
    z3.ep.ip = p2p_ip4(50, 0, 0, 4);
    CHECK(p2p_kad_add_verified(t, &z3, 1) == P2P_KAD_ADDR_LIMIT);
    ze = p2p_kad_find(t, z.id);
    CHECK(ze && p2p_ip_equal(&ze->node.ep.ip, &z.ep.ip));
    CHECK(ze && !ze->live && ze->checks == 0);
    CHECK(memcmp(t->b[p2p_kad_bucket_of(256)].e[2].node.id, z.id, 32) == 0);
    z3.seq = 10;
    CHECK(p2p_kad_add_seen(t, &z3, 1) == P2P_KAD_ADDR_LIMIT);
    ze = p2p_kad_find(t, z.id);
    CHECK(ze && ze->node.seq == 10 && p2p_ip_equal(&ze->node.ep.ip, &z.ep.ip));
    z3.ep.ip = z.ep.ip;
    z3.ep.udp = 4001;
    CHECK(p2p_kad_add_verified(t, &z3, 1) == P2P_KAD_UPDATED);
    ze = p2p_kad_find(t, z.id);
    CHECK(ze && ze->node.ep.udp == 4001);
    /* Moving within the same /24 is fine (its own address is not counted). */
    p2p_node_t x2 = x;
    x2.seq = 3;
    x2.ep.ip = p2p_ip4(50, 0, 0, 9);
    x2.ep.udp = 4000;
    CHECK_OK(p2p_kad_update_record(t, &x2));
    const p2p_kad_entry_t *xe = p2p_kad_find(t, x.id);
    CHECK(xe && xe->node.ep.udp == 4000 && xe->node.ep.ip.addr[3] == 9);
    /* A lower seq changes nothing. */
    x2.seq = 2;
    x2.ep.udp = 5000;
    CHECK_OK(p2p_kad_update_record(t, &x2));
    CHECK(xe && xe->node.ep.udp == 4000);
    p2p_node_t absent = node_at(256);
    CHECK_ERR(p2p_kad_update_record(t, &absent), P2P_ENOTFOUND);
    free(t);
}

static void test_seen_vs_verified(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 9);
    p2p_node_t a = node_at(256), b = node_at(256), c = node_at(256);
    CHECK(p2p_kad_add_seen(t, &a, 10) == P2P_KAD_ADDED);
    CHECK(p2p_kad_add_seen(t, &b, 11) == P2P_KAD_ADDED);
    p2p_kad_bucket_t *bk = &t->b[16];
    /* Seen nodes go to the back, unverified. */
    CHECK(memcmp(bk->e[0].node.id, a.id, 32) == 0);
    CHECK(memcmp(bk->e[1].node.id, b.id, 32) == 0);
    CHECK(bk->e[1].checks == 0 && bk->e[1].live == 0 && bk->e[1].added_ns == 11);
    /* A verified node goes to the front, live with one check. */
    CHECK(p2p_kad_add_verified(t, &c, 12) == P2P_KAD_ADDED);
    CHECK(memcmp(bk->e[0].node.id, c.id, 32) == 0);
    CHECK(bk->e[0].checks == 1 && bk->e[0].live == 1);
    /* Verifying a seen node marks it live, moves it to the front and takes
     * the new endpoint. */
    p2p_node_t b2 = b;
    b2.ep.udp = 31000;
    CHECK(p2p_kad_add_verified(t, &b2, 13) == P2P_KAD_UPDATED);
    CHECK(memcmp(bk->e[0].node.id, b.id, 32) == 0);
    CHECK(bk->e[0].live == 1 && bk->e[0].checks == 1 && bk->e[0].node.ep.udp == 31000);
    CHECK(bk->e[0].added_ns == 11);
    /* Seeing a known node with the same seq does not touch it ... */
    p2p_node_t a2 = a;
    a2.ep.udp = 32000;
    CHECK(p2p_kad_add_seen(t, &a2, 14) == P2P_KAD_UPDATED);
    CHECK(p2p_kad_find(t, a.id)->node.ep.udp == 30303);
    /* ... a higher seq updates the record. */
    a2.seq = 4;
    CHECK(p2p_kad_add_seen(t, &a2, 14) == P2P_KAD_UPDATED);
    CHECK(p2p_kad_find(t, a.id)->node.ep.udp == 32000);
    CHECK(p2p_kad_find(t, a.id)->node.seq == 4);
    /* A verified add with seq 0 (from a ping) keeps the known seq. */
    a2.seq = 0;
    CHECK(p2p_kad_add_verified(t, &a2, 15) == P2P_KAD_UPDATED);
    CHECK(p2p_kad_find(t, a.id)->node.seq == 4);
    CHECK(p2p_kad_len(t) == 3);
    free(t);
}

static int cmp_target_ids(const uint8_t *target, const uint8_t *x, const uint8_t *y)
{
    return p2p_kad_distcmp(target, x, y);
}

static void test_closest(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 10);
    enum { N = 200 };
    static p2p_node_t all[N];
    unsigned nall = 0;
    for (int i = 0; i < 2000 && nall < N; i++) {
        p2p_node_t n = node_at(236 + (int)(tu_rand() % 21));
        p2p_kad_add_t r = (i % 3) ? p2p_kad_add_seen(t, &n, 1) : p2p_kad_add_verified(t, &n, 1);
        if (r == P2P_KAD_ADDED) all[nall++] = n;
    }
    CHECK(nall == p2p_kad_len(t));
    for (int round = 0; round < 50; round++) {
        uint8_t target[32];
        tu_rand_bytes(target, 32);
        p2p_node_t out[16];
        unsigned n = p2p_kad_closest(t, out, 16, target, false);
        CHECK(n == 16);
        /* Brute force: every table node not in out is farther than out[15]. */
        for (unsigned i = 1; i < n; i++)
            CHECK(cmp_target_ids(target, out[i - 1].id, out[i].id) < 0);
        unsigned farther = 0;
        for (unsigned i = 0; i < nall; i++)
            farther += cmp_target_ids(target, all[i].id, out[15].id) > 0;
        CHECK(farther == nall - 16);
        /* prefer_live: all live entries (verified) among the 16 unless fewer. */
        p2p_node_t live[16];
        unsigned nl = p2p_kad_closest(t, live, 16, target, true);
        CHECK(nl == 16);
        unsigned nlive = 0;
        for (unsigned i = 0; i < nl; i++) nlive += p2p_kad_find(t, live[i].id)->live;
        CHECK(nlive == 16);
        for (unsigned i = 1; i < nl; i++)
            CHECK(cmp_target_ids(target, live[i - 1].id, live[i].id) < 0);
    }
    /* Unverified entries only while the table has no live one; then only
     * live ones, however few. */
    p2p_kad_init(t, self, 11);
    p2p_node_t seen[5];
    for (int i = 0; i < 5; i++) {
        seen[i] = node_at(256);
        CHECK(p2p_kad_add_seen(t, &seen[i], 1) == P2P_KAD_ADDED);
    }
    p2p_node_t out[16];
    CHECK(p2p_kad_closest(t, out, 16, self, true) == 5);
    CHECK(p2p_kad_closest(t, out, 3, self, true) == 3);
    p2p_node_t v = node_at(250);
    CHECK(p2p_kad_add_verified(t, &v, 1) == P2P_KAD_ADDED);
    CHECK(p2p_kad_closest(t, out, 16, self, true) == 1);
    CHECK(memcmp(out[0].id, v.id, 32) == 0);
    CHECK(p2p_kad_closest(t, out, 16, seen[0].id, true) == 1); /* even far from the target */
    CHECK(memcmp(out[0].id, v.id, 32) == 0);
    CHECK(p2p_kad_closest(t, out, 16, self, false) == 6);
    CHECK(p2p_kad_closest(t, out, 0, v.id, true) == 0);
    p2p_node_t rnd[10];
    CHECK(p2p_kad_random_nodes(t, rnd, 10) == 6);
    CHECK(p2p_kad_random_nodes(t, rnd, 2) == 2);
    free(t);
}

static void test_revalidation(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 12);
    uint64_t now = 1000;
    p2p_node_t n;
    CHECK(!p2p_kad_reval_next(t, &n, now));
    CHECK(p2p_kad_reval_deadline(t) == UINT64_MAX);

    p2p_node_t ns[20];
    for (int i = 0; i < 20; i++) ns[i] = node_at(256);
    for (int i = 0; i < 16; i++) CHECK(p2p_kad_add_seen(t, &ns[i], now) == P2P_KAD_ADDED);
    for (int i = 16; i < 20; i++) CHECK(p2p_kad_add_seen(t, &ns[i], now) == P2P_KAD_REPLACEMENT);

    /* The fast list is due right away; then again within 3 s, never at
     * the same instant. */
    CHECK(p2p_kad_reval_next(t, &n, now));
    const p2p_kad_entry_t *e = p2p_kad_find(t, n.id);
    CHECK(e && e->pending);
    uint64_t dl = p2p_kad_reval_deadline(t);
    CHECK(dl > now && dl < now + P2P_KAD_FAST_NS);
    p2p_node_t n2;
    CHECK(!p2p_kad_reval_next(t, &n2, dl - 1));

    /* A reply: checks 0 -> 1, live, slow list.  The slow list was empty:
     * its timer starts now, so the node just checked is not picked again
     * at once (it was: two pings within a millisecond). */
    p2p_kad_reval_t r;
    p2p_kad_reval_done(t, &r, n.id, true, 0, now + 10);
    CHECK(r.found && !r.deleted && r.checks == 1 && !r.need_enr);
    CHECK(e->live && e->slow && !e->pending && e->checks == 1);
    CHECK(!p2p_kad_reval_next(t, &n2, now + 10));
    CHECK(t->next_ns[1] > now + 10 && t->next_ns[1] < now + 10 + P2P_KAD_SLOW_NS);
    /* A higher seq in the pong asks for the ENR. */
    p2p_kad_reval_done(t, &r, n.id, true, 7, now + 20);
    CHECK(r.need_enr && r.checks == 2);
    p2p_kad_reval_done(t, &r, n.id, true, 0, now + 20);
    CHECK(!r.need_enr && r.checks == 3);
    for (int i = 0; i < 4; i++) p2p_kad_reval_done(t, &r, n.id, true, 0, now + 30);
    CHECK(r.checks == 7);
    /* No reply: 7 -> 2 (back to the fast list) -> 0: deleted, promoted. */
    p2p_kad_reval_done(t, &r, n.id, false, 0, now + 40);
    CHECK(r.found && !r.deleted && r.checks == 2 && e->slow == 0);
    p2p_kad_reval_done(t, &r, n.id, false, 0, now + 50);
    CHECK(r.deleted && r.promoted && r.checks == 0);
    CHECK(memcmp(r.node.id, n.id, 32) == 0);
    CHECK(p2p_kad_find(t, n.id) == NULL);
    CHECK(p2p_kad_find(t, r.promoted_node.id) != NULL);
    CHECK(!p2p_kad_is_replacement(t, r.promoted_node.id));
    CHECK(p2p_kad_len(t) == 16);
    /* An unknown node: nothing. */
    p2p_kad_reval_done(t, &r, n.id, true, 0, now + 60);
    CHECK(!r.found);

    /* Drive many rounds in virtual time: each list is picked about every
     * interval; everybody answers, so the nodes end up on the slow list. */
    uint64_t clock = now + 100;
    unsigned picks = 0;
    for (int step = 0; step < 1200; step++) { /* 120 s in 100 ms steps */
        clock += 100000000ull;
        while (p2p_kad_reval_next(t, &n, clock)) {
            picks++;
            p2p_kad_reval_done(t, &r, n.id, true, 0, clock);
            CHECK(r.found && !r.deleted);
        }
    }
    /* 120 s: each of the 16 fast entries is picked once (~3 s apart, 48 s in
     * all) and moves to the slow list, which is served every ~9 s (~13). */
    CHECK(picks >= 16 + 6 && picks <= 16 + 30);
    unsigned slow = 0;
    for (unsigned i = 0; i < t->b[16].n; i++) slow += t->b[16].e[i].slow;
    CHECK(slow == 16);

    /* Everybody silent: all entries and replacements eventually go. */
    for (int step = 0; step < 6000 && p2p_kad_len(t) > 0; step++) {
        clock += 100000000ull;
        while (p2p_kad_reval_next(t, &n, clock)) p2p_kad_reval_done(t, &r, n.id, false, 0, clock);
    }
    CHECK(p2p_kad_len(t) == 0);
    CHECK(t->b[16].nrepl == 0);
    free(t);
}

/* Recounts everything the table keeps incrementally and checks the IP
 * limits and uniqueness. */
static void check_invariants(const p2p_kad_table_t *t)
{
    unsigned count = 0, nlist[2] = {0, 0}, navail[2] = {0, 0};
    for (unsigned bi = 0; bi < P2P_KAD_NBUCKETS; bi++) {
        const p2p_kad_bucket_t *b = &t->b[bi];
        CHECK(b->n <= P2P_KAD_BUCKET_SIZE && b->nrepl <= P2P_KAD_MAX_REPLACEMENTS);
        count += b->n;
        for (unsigned i = 0; i < b->n; i++) {
            const p2p_kad_entry_t *e = &b->e[i];
            nlist[e->slow]++;
            navail[e->slow] += !e->pending;
            CHECK(p2p_kad_bucket_of(p2p_kad_logdist(t->self, e->node.id)) == bi);
            CHECK(!p2p_kad_is_replacement(t, e->node.id));
        }
        /* Per bucket: at most 2 of a non-LAN /24 among entries and
         * replacements. */
        const p2p_node_t *all[P2P_KAD_BUCKET_SIZE + P2P_KAD_MAX_REPLACEMENTS];
        unsigned na = 0;
        for (unsigned i = 0; i < b->n; i++) all[na++] = &b->e[i].node;
        for (unsigned i = 0; i < b->nrepl; i++) all[na++] = &b->repl[i];
        for (unsigned i = 0; i < na; i++) {
            if (p2p_ip_is_lan(&all[i]->ep.ip)) continue;
            unsigned same = 0;
            for (unsigned j = 0; j < na; j++)
                same += p2p_kad_same_net(&all[i]->ep.ip, &all[j]->ep.ip);
            CHECK(same <= P2P_KAD_BUCKET_IP_LIMIT);
            for (unsigned j = i + 1; j < na; j++) CHECK(memcmp(all[i]->id, all[j]->id, 32) != 0);
        }
    }
    /* Per table: at most 10 of a non-LAN /24. */
    for (unsigned bi = 0; bi < P2P_KAD_NBUCKETS; bi++)
        for (unsigned i = 0; i < t->b[bi].n; i++) {
            const p2p_ip_t *ip = &t->b[bi].e[i].node.ep.ip;
            if (p2p_ip_is_lan(ip)) continue;
            unsigned same = 0;
            for (unsigned bj = 0; bj < P2P_KAD_NBUCKETS; bj++) {
                for (unsigned j = 0; j < t->b[bj].n; j++)
                    same += p2p_kad_same_net(ip, &t->b[bj].e[j].node.ep.ip);
                for (unsigned j = 0; j < t->b[bj].nrepl; j++)
                    same += p2p_kad_same_net(ip, &t->b[bj].repl[j].ep.ip);
            }
            CHECK(same <= P2P_KAD_TABLE_IP_LIMIT);
        }
    CHECK(count == t->count);
    CHECK(nlist[0] == t->nlist[0] && nlist[1] == t->nlist[1]);
    CHECK(navail[0] == t->navail[0] && navail[1] == t->navail[1]);
}

/* Hand-outs of the revalidation lists between warm and end (virtual ns),
 * each answered (reval_done) or cancelled; gaps between counted hand-outs
 * and how many came from the other list than `slow`. */
typedef struct pace {
    unsigned checks, other_list;
    uint64_t gap_min, gap_max;
} pace_t;

static pace_t run_pace(p2p_kad_table_t *t, uint64_t now, uint64_t warm, uint64_t end, bool answer,
                       bool slow)
{
    pace_t p = {.gap_min = UINT64_MAX};
    uint64_t last = 0;
    unsigned steps = 0;
    while (now < end && steps++ < 100000) {
        uint64_t dl = p2p_kad_reval_deadline(t);
        CHECK(dl != UINT64_MAX);
        if (dl == UINT64_MAX) break;
        if (dl > now) now = dl;
        p2p_node_t n;
        while (p2p_kad_reval_next(t, &n, now)) {
            const p2p_kad_entry_t *e = p2p_kad_find(t, n.id);
            bool on_slow = e && e->slow;
            if (answer) {
                p2p_kad_reval_t r;
                p2p_kad_reval_done(t, &r, n.id, true, 0, now);
            } else {
                p2p_kad_reval_cancel(t, n.id);
            }
            if (now < warm) continue;
            if (!e || on_slow != slow) p.other_list++;
            p.checks++;
            if (last) {
                uint64_t gap = now - last;
                if (gap < p.gap_min) p.gap_min = gap;
                if (gap > p.gap_max) p.gap_max = gap;
            }
            last = now;
        }
        /* after a pass nothing is due at the same instant */
        CHECK(p2p_kad_reval_deadline(t) > now);
    }
    return p;
}

/* The pace of revalidation, as the reference client's: each list is next
 * due after a delay drawn uniformly from (0, interval), so a list with
 * entries hands one out every half interval on average (slow list: 4.5 s).
 * 16 entries that always answer sit on the slow list; over 9000 virtual
 * seconds that is about 2000 checks (each entry every 72 s), not the 1000
 * of a delay drawn from [interval/2, 3*interval/2). */
static void test_reval_pace(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 77);
    uint64_t now = 1000;
    for (int i = 0; i < 16; i++) {
        p2p_node_t n = node_at(256);
        CHECK(p2p_kad_add_verified(t, &n, now) == P2P_KAD_ADDED);
    }
    /* every entry answers: after the first round all are on the slow list */
    uint64_t end = now + 9000 * P2P_NS_PER_S, warm = now + 600 * P2P_NS_PER_S;
    pace_t p = run_pace(t, now, warm, end, true, true);
    /* The slow list's interval is 9 s (delays uniform in (0, 9 s): one
     * check per 4.5 s on average); the literals pin the protocol's figure. */
    unsigned expect = (unsigned)((end - warm) / (4500 * P2P_NS_PER_MS));
    printf("slow-list checks in %llu s: %u (expected about %u), gaps %.3f-%.3f s\n",
           (unsigned long long)((end - warm) / P2P_NS_PER_S), p.checks, expect,
           (double)p.gap_min / P2P_NS_PER_S, (double)p.gap_max / P2P_NS_PER_S);
    CHECK(p.other_list == 0);
    CHECK(p.checks >= expect * 9 / 10 && p.checks <= expect * 11 / 10);
    CHECK(p.gap_max < 9 * P2P_NS_PER_S);
    CHECK(p.gap_min < 900 * P2P_NS_PER_MS); /* the delay starts at 0, not at half */
    free(t);
}

/* The fast list's pace: 3 s, delays uniform in (0, 3 s), so one check
 * per 1.5 s on average.  16 new entries whose checks are handed out and
 * cancelled (never answered, never failed) stay on the fast list; over 9000
 * virtual seconds that is about 6000 hand-outs (3000 with a 3 s average
 * delay, 2000 with the slow list's 9 s). */
static void test_reval_pace_fast(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 78);
    uint64_t now = 1000;
    for (int i = 0; i < 16; i++) {
        p2p_node_t n = node_at(256);
        CHECK(p2p_kad_add_seen(t, &n, now) == P2P_KAD_ADDED);
    }
    uint64_t end = now + 9000 * P2P_NS_PER_S;
    pace_t p = run_pace(t, now, now, end, false, false);
    unsigned expect = (unsigned)((end - now) / (1500 * P2P_NS_PER_MS));
    printf("fast-list checks in %llu s: %u (expected about %u), gaps %.3f-%.3f s\n",
           (unsigned long long)((end - now) / P2P_NS_PER_S), p.checks, expect,
           (double)p.gap_min / P2P_NS_PER_S, (double)p.gap_max / P2P_NS_PER_S);
    CHECK(p.other_list == 0);
    CHECK(p.checks >= expect * 9 / 10 && p.checks <= expect * 11 / 10);
    CHECK(p.gap_max < 3 * P2P_NS_PER_S);
    CHECK(p.gap_min < 300 * P2P_NS_PER_MS); /* the delay starts at 0, not at half */
    free(t);
}

static void test_random_ops(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    p2p_kad_init(t, self, 13);
    enum { POOL = 300 };
    static p2p_node_t pool[POOL];
    for (unsigned i = 0; i < POOL; i++) {
        pool[i] = node_at(250 + (int)(tu_rand() % 7));
        /* 30 subnets, some LAN, so the limits bite. */
        unsigned net = (unsigned)(tu_rand() % 30);
        pool[i].ep.ip = net < 5 ? p2p_ip4(10, 0, (uint8_t)net, (uint8_t)i)
                                : p2p_ip4(60, 0, (uint8_t)net, (uint8_t)i);
    }
    uint64_t now = 0;
    for (int op = 0; op < 20000; op++) {
        now += 50000000ull;
        p2p_node_t *n = &pool[tu_rand() % POOL];
        switch (tu_rand() % 6) {
        case 0:
            (void)p2p_kad_add_seen(t, n, now);
            break;
        case 1:
            (void)p2p_kad_add_verified(t, n, now);
            break;
        case 2:
            (void)p2p_kad_delete(t, NULL, n->id, now);
            break;
        case 3: {
            p2p_node_t r;
            if (p2p_kad_reval_next(t, &r, now)) {
                p2p_kad_reval_t out;
                unsigned k = (unsigned)(tu_rand() % 3);
                if (k == 2)
                    p2p_kad_reval_cancel(t, r.id);
                else
                    p2p_kad_reval_done(t, &out, r.id, k == 0, tu_rand() % 3, now);
            }
            break;
        }
        case 4: {
            p2p_node_t u = *n;
            u.seq = n->seq + 1 + tu_rand() % 3;
            u.ep.ip = pool[tu_rand() % POOL].ep.ip;
            (void)p2p_kad_update_record(t, &u);
            break;
        }
        default: {
            p2p_node_t r;
            /* A check that never completes stays pending. */
            (void)p2p_kad_reval_next(t, &r, now);
            break;
        }
        }
        if (op % 50 == 0) check_invariants(t);
    }
    check_invariants(t);
    CHECK(p2p_kad_len(t) > 0);
    free(t);
}

/* The promoted replacement is drawn at random: over 200 deletions from a
 * bucket with 8 replacements, every position is promoted, none in more
 * than 40% of them (the newest, at position 0, was every time). */
static void test_promotion_random(void)
{
    p2p_kad_table_t *t = malloc(sizeof *t);
    unsigned hits[8] = {0};
    for (int trial = 0; trial < 200; trial++) {
        p2p_kad_init(t, self, (uint64_t)trial + 100);
        p2p_node_t first = node_at(256);
        CHECK(p2p_kad_add_seen(t, &first, 1) == P2P_KAD_ADDED);
        for (int i = 1; i < 16; i++) {
            p2p_node_t n = node_at(256);
            CHECK(p2p_kad_add_seen(t, &n, 1) == P2P_KAD_ADDED);
        }
        for (int i = 0; i < 8; i++) {
            p2p_node_t n = node_at(256);
            CHECK(p2p_kad_add_seen(t, &n, 1) == P2P_KAD_REPLACEMENT);
        }
        const p2p_kad_bucket_t *b = &t->b[p2p_kad_bucket_of(256)];
        p2p_node_t before[8], prom;
        memcpy(before, b->repl, sizeof before);
        CHECK(p2p_kad_delete(t, &prom, first.id, 2) == 1);
        for (int i = 0; i < 8; i++)
            if (memcmp(prom.id, before[i].id, 32) == 0) hits[i]++;
    }
    unsigned sum = 0;
    for (int i = 0; i < 8; i++) {
        CHECK(hits[i] > 0 && hits[i] < 80);
        sum += hits[i];
    }
    CHECK(sum == 200);
    free(t);
}

int main(void)
{
    tu_seed(0x6b6164);
    tu_rand_bytes(self, 32);
    test_distances();
    test_placement();
    test_replacements();
    test_ip_limits();
    test_seen_vs_verified();
    test_closest();
    test_revalidation();
    test_reval_pace();
    test_reval_pace_fast();
    test_promotion_random();
    test_random_ops();
    return tu_done("kad_table");
}
