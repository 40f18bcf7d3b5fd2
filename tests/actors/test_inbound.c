/* actors/inbound: pending-handshake slots, the 30 s per-IP throttle with
 * its LAN exemption, NetRestrict, the history limit and the counters. */
#include "actors/inbound.h"

#include "tests/tu.h"

#include <stdio.h>
#include <time.h>

#define S 1000000000ULL

static p2p_ip_t ip_of(const char *s)
{
    p2p_ip_t ip = {0};
    CHECK_OK(p2p_ip_parse(&ip, s));
    return ip;
}

static void test_slots(void)
{
    p2p_inbound_config_t cfg = {.max_pending = 3, .seed = 1};
    p2p_inbound_t in;
    CHECK_OK(p2p_inbound_init(&in, &cfg));
    CHECK(p2p_inbound_free_slots(&in) == 3);
    CHECK_OK(p2p_inbound_acquire(&in));
    CHECK_OK(p2p_inbound_acquire(&in));
    CHECK_OK(p2p_inbound_acquire(&in));
    CHECK(p2p_inbound_free_slots(&in) == 0);
    CHECK_ERR(p2p_inbound_acquire(&in), P2P_ELIMIT);
    CHECK_ERR(p2p_inbound_acquire(&in), P2P_ELIMIT);
    CHECK(in.stats.slots_exhausted == 2);
    CHECK_OK(p2p_inbound_release(&in));
    CHECK(p2p_inbound_free_slots(&in) == 1);
    CHECK_OK(p2p_inbound_acquire(&in));
    for (int i = 0; i < 3; i++) CHECK_OK(p2p_inbound_release(&in));
    CHECK_ERR(p2p_inbound_release(&in), P2P_ESTATE);
    CHECK(p2p_inbound_free_slots(&in) == 3);
    p2p_inbound_free(&in);

    /* Default MaxPendingPeers is 50. */
    p2p_inbound_config_t def = {0};
    CHECK_OK(p2p_inbound_init(&in, &def));
    unsigned n = 0;
    while (p2p_inbound_acquire(&in) == 0 && n < 1000) n++;
    CHECK(n == P2P_MAX_PENDING_PEERS_DEFAULT);
    CHECK(n == 50);
    p2p_inbound_free(&in);
}

static void test_throttle(void)
{
    p2p_inbound_config_t cfg = {.seed = 2};
    p2p_inbound_t in;
    CHECK_OK(p2p_inbound_init(&in, &cfg));
    uint64_t t0 = 1000 * S;
    p2p_ip_t a = ip_of("8.8.8.8"), b = ip_of("8.8.8.9"), lan = ip_of("192.168.1.5"),
             lo = ip_of("127.0.0.1"), v6 = ip_of("2a00:1450::1"), mapped = ip_of("::ffff:8.8.8.8");

    CHECK(p2p_inbound_check(&in, &a, t0) == P2P_INBOUND_OK);
    /* Same IP within 30 s: too many attempts; the entry is not renewed. */
    CHECK(p2p_inbound_check(&in, &a, t0 + 1) == P2P_INBOUND_THROTTLED);
    CHECK(p2p_inbound_check(&in, &mapped, t0 + 10 * S) == P2P_INBOUND_THROTTLED);
    CHECK(p2p_inbound_check(&in, &a, t0 + 30 * S - 1) == P2P_INBOUND_THROTTLED);
    /* Another IP of the same /24 is independent. */
    CHECK(p2p_inbound_check(&in, &b, t0 + 5 * S) == P2P_INBOUND_OK);
    /* Exactly 30 s after the admitted attempt the IP is allowed again. */
    CHECK(p2p_inbound_check(&in, &a, t0 + 30 * S) == P2P_INBOUND_OK);
    CHECK(p2p_inbound_check(&in, &a, t0 + 31 * S) == P2P_INBOUND_THROTTLED);
    CHECK(in.stats.rejected[P2P_INBOUND_THROTTLED] == 4);

    /* LAN and loopback are never throttled, nor recorded (they take no
     * room in the bounded history). */
    size_t before = in.history.n;
    for (int i = 0; i < 5; i++) {
        CHECK(p2p_inbound_check(&in, &lan, t0 + (uint64_t)i) == P2P_INBOUND_OK);
        CHECK(p2p_inbound_check(&in, &lo, t0 + (uint64_t)i) == P2P_INBOUND_OK);
    }
    uint8_t key[32];
    p2p_idmap_ip_key(key, &lan);
    CHECK(!p2p_idmap_has(&in.history, key));
    CHECK(in.history.n == before);

    /* IPv6 throttles per address. */
    CHECK(p2p_inbound_check(&in, &v6, t0) == P2P_INBOUND_OK);
    CHECK(p2p_inbound_check(&in, &v6, t0 + 29 * S) == P2P_INBOUND_THROTTLED);

    /* No address: admitted (nothing to check). */
    p2p_ip_t none = {0};
    CHECK(p2p_inbound_check(&in, &none, t0) == P2P_INBOUND_OK);
    CHECK(p2p_inbound_check(&in, &none, t0) == P2P_INBOUND_OK);

    /* Expiry empties the history. */
    CHECK(p2p_inbound_check(&in, &b, t0 + 1000 * S) == P2P_INBOUND_OK);
    CHECK(in.history.n == 1);
    CHECK(in.stats.rejected[P2P_INBOUND_THROTTLED] == 5);
    CHECK(in.stats.admitted == 17);
    CHECK(strcmp(p2p_inbound_verdict_name(P2P_INBOUND_THROTTLED), "too-many-attempts") == 0);
    CHECK(strcmp(p2p_inbound_verdict_name(P2P_INBOUND_VERDICT_COUNT), "unknown") == 0);
    p2p_inbound_free(&in);
}

static void test_netrestrict(void)
{
    p2p_inbound_config_t cfg = {.seed = 3, .has_netrestrict = true};
    CHECK_OK(p2p_netlist_parse(&cfg.netrestrict, "10.0.0.0/8,2001:db8::/32"));
    p2p_inbound_t in;
    CHECK_OK(p2p_inbound_init(&in, &cfg));
    p2p_ip_t inside = ip_of("10.1.1.1"), outside = ip_of("8.8.8.8"), lo = ip_of("127.0.0.1"),
             v6in = ip_of("2001:db8::9");
    CHECK(p2p_inbound_check(&in, &outside, 0) == P2P_INBOUND_NETRESTRICT);
    CHECK(p2p_inbound_check(&in, &lo, 0) == P2P_INBOUND_NETRESTRICT); /* LAN is not exempt */
    CHECK(p2p_inbound_check(&in, &inside, 0) == P2P_INBOUND_OK);
    CHECK(p2p_inbound_check(&in, &v6in, 0) == P2P_INBOUND_OK);
    CHECK(p2p_inbound_check(&in, &v6in, S) == P2P_INBOUND_THROTTLED);
    /* A restricted IP is not recorded: NetRestrict is checked first. */
    uint8_t key[32];
    p2p_idmap_ip_key(key, &outside);
    CHECK(!p2p_idmap_has(&in.history, key));
    CHECK(in.stats.rejected[P2P_INBOUND_NETRESTRICT] == 2);
    CHECK(in.stats.rejected[P2P_INBOUND_THROTTLED] == 1);
    p2p_inbound_free(&in);

    /* An empty but set list rejects everyone with an address. */
    p2p_inbound_config_t empty = {.seed = 4, .has_netrestrict = true};
    CHECK_OK(p2p_inbound_init(&in, &empty));
    CHECK(p2p_inbound_check(&in, &inside, 0) == P2P_INBOUND_NETRESTRICT);
    p2p_inbound_free(&in);
}

/* A full history drops its oldest entry to record a new IP: a flood from
 * as many distinct addresses as the history holds cannot lock new peers
 * out.  The IPs still in the history stay throttled. */
static void test_history_full(void)
{
    p2p_inbound_config_t cfg = {.seed = 5, .history_max = 4};
    p2p_inbound_t in;
    CHECK_OK(p2p_inbound_init(&in, &cfg));
    for (uint8_t i = 0; i < 4; i++) {
        p2p_ip_t ip = p2p_ip4(9, 9, 9, i);
        CHECK(p2p_inbound_check(&in, &ip, i * S) == P2P_INBOUND_OK);
    }
    p2p_ip_t fifth = p2p_ip4(9, 9, 9, 200), lan = p2p_ip4(10, 0, 0, 1);
    p2p_ip_t first = p2p_ip4(9, 9, 9, 0), last = p2p_ip4(9, 9, 9, 3);
    CHECK(p2p_inbound_check(&in, &fifth, 10 * S) == P2P_INBOUND_OK);
    CHECK(in.stats.history_evicted == 1);
    CHECK(in.stats.rejected[P2P_INBOUND_HISTORY_FULL] == 0);
    CHECK(in.history.n == 4 && in.hq.len == 4);
    /* the newest entries are still there */
    CHECK(p2p_inbound_check(&in, &fifth, 11 * S) == P2P_INBOUND_THROTTLED);
    CHECK(p2p_inbound_check(&in, &last, 11 * S) == P2P_INBOUND_THROTTLED);
    /* the oldest was dropped: it may connect again (dropping the next) */
    CHECK(p2p_inbound_check(&in, &first, 11 * S) == P2P_INBOUND_OK);
    CHECK(in.stats.history_evicted == 2);
    /* LAN is neither checked nor recorded */
    CHECK(p2p_inbound_check(&in, &lan, 12 * S) == P2P_INBOUND_OK);
    CHECK(in.stats.history_evicted == 2);
    p2p_inbound_free(&in);

    /* The node's limit: 20,000 distinct Internet IPs within 2 s, then a
     * new one: every one admitted, the history at its limit, the queue no
     * longer than the map. */
    p2p_inbound_config_t c2 = {.seed = 6};
    CHECK_OK(p2p_inbound_init(&in, &c2));
    unsigned bad = 0;
    for (unsigned i = 0; i < 20000; i++) {
        p2p_ip_t ip = p2p_ip4(30, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        if (p2p_inbound_check(&in, &ip, 100 * S + i * (S / 10000)) != P2P_INBOUND_OK) bad++;
    }
    p2p_ip_t fresh = p2p_ip4(40, 1, 2, 3);
    CHECK(bad == 0);
    CHECK(p2p_inbound_check(&in, &fresh, 103 * S) == P2P_INBOUND_OK);
    CHECK(in.history.n == P2P_INBOUND_HISTORY_MAX_DEFAULT);
    CHECK(in.hq.len == in.history.n);
    CHECK(in.stats.history_evicted == 20001 - P2P_INBOUND_HISTORY_MAX_DEFAULT);
    /* Once the flood's 30 s have passed, the history gives back what the
     * peak took: the map and its expiry queue (16,384 entries, 640 KiB)
     * return to their initial size; one new IP then takes one entry. */
    size_t map_cap = in.history.cap, q_cap = in.hq.cap;
    p2p_ip_t later = p2p_ip4(40, 1, 2, 4);
    CHECK(p2p_inbound_check(&in, &later, 200 * S) == P2P_INBOUND_OK);
    CHECK(in.history.n == 1 && in.hq.len == 1);
    CHECK(map_cap >= 2 * P2P_INBOUND_HISTORY_MAX_DEFAULT && in.history.cap <= 128);
    CHECK(q_cap >= P2P_INBOUND_HISTORY_MAX_DEFAULT);
    CHECK(in.hq.cap <= 64);
    p2p_inbound_free(&in);
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    return (double)tu_thread_cpu_ns() * 1e-9;
}

/* A steady flood from distinct Internet IPs, 500 a second for 120 s of
 * virtual time (15,000 live entries of the 16,384): every one admitted,
 * the history holding exactly the last 30 s, and the whole run within a
 * budget of 8 s of this thread's CPU time (the wall clock, which a loaded
 * machine stretches, only bounds the run, at 120 s).  Expiry used to scan
 * the whole map each time the oldest entry fell due (about 500 times a
 * second here, 15,000 entries each); it now pops the due entries from a
 * queue.  A LAN IP connecting in between is admitted every time and takes
 * no room. */
static void test_history_cost(void)
{
    p2p_inbound_config_t cfg = {.seed = 11};
    p2p_inbound_t in;
    CHECK_OK(p2p_inbound_init(&in, &cfg));
    const unsigned rate = 500, secs = 120;
    uint64_t t0 = 1000 * S, step = S / rate;
    p2p_ip_t lan = p2p_ip4(192, 168, 7, 7);
    double w0 = wall_s(), c0 = cpu_s();
    unsigned i = 0, bad = 0;
    for (; i < rate * secs && cpu_s() - c0 < 8.0 && wall_s() - w0 < 120.0; i++) {
        uint64_t now = t0 + (uint64_t)i * step;
        p2p_ip_t ip = p2p_ip4(20 + (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 1);
        if (p2p_inbound_check(&in, &ip, now) != P2P_INBOUND_OK) bad++;
        if (i % 7 == 0 && p2p_inbound_check(&in, &lan, now) != P2P_INBOUND_OK) bad++;
        /* the last 30 s of IPs */
        size_t want = i < 30 * rate ? i + 1 : 30 * rate;
        if (in.history.n != want) bad++;
    }
    double el = wall_s() - w0, cpu = cpu_s() - c0;
    CHECK(i == rate * secs);
    CHECK(bad == 0);
    CHECK(in.stats.rejected[P2P_INBOUND_HISTORY_FULL] == 0);
    CHECK(in.hq.len == in.history.n && in.hq.cap <= in.cfg.history_max);
    if (i != rate * secs || bad)
        printf("history cost: %u of %u checks in %.0f ms of CPU (%.0f ms), %u wrong\n", i,
               rate * secs, cpu * 1e3, el * 1e3, bad);
    p2p_inbound_free(&in);
}

/* Expiry without a new connection (the listener's timer): entries leave
 * at their 30 s and the burst's capacity goes back to the initial size. */
static void test_expire_idle(void)
{
    p2p_inbound_config_t cfg = {.seed = 13};
    p2p_inbound_t in;
    CHECK_OK(p2p_inbound_init(&in, &cfg));
    CHECK(p2p_inbound_next_expiry(&in) == UINT64_MAX);
    uint64_t t0 = 50 * S;
    size_t cap0 = in.history.cap;
    for (unsigned i = 0; i < 2000; i++) {
        p2p_ip_t ip = p2p_ip4(40, 1, (uint8_t)(i >> 8), (uint8_t)i);
        CHECK(p2p_inbound_check(&in, &ip, t0 + i) == P2P_INBOUND_OK);
    }
    CHECK(in.history.n == 2000 && in.history.cap > cap0);
    CHECK(p2p_inbound_next_expiry(&in) == t0 + P2P_INBOUND_THROTTLE_NS);
    p2p_inbound_expire(&in, t0 + P2P_INBOUND_THROTTLE_NS - 1);
    CHECK(in.history.n == 2000);
    p2p_inbound_expire(&in, t0 + P2P_INBOUND_THROTTLE_NS + 999);
    CHECK(in.history.n == 1000);
    CHECK(p2p_inbound_next_expiry(&in) == t0 + P2P_INBOUND_THROTTLE_NS + 1000);
    p2p_inbound_expire(&in, t0 + P2P_INBOUND_THROTTLE_NS + 1999);
    CHECK(in.history.n == 0 && in.hq.len == 0);
    CHECK(in.history.cap == cap0 && in.hq.cap <= 64);
    CHECK(p2p_inbound_next_expiry(&in) == UINT64_MAX);
    p2p_inbound_free(&in);
}

int main(void)
{
    test_slots();
    test_throttle();
    test_netrestrict();
    test_history_full();
    test_history_cost();
    test_expire_idle();
    return tu_done("inbound");
}
