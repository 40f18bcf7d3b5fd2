/* actors/dialsched: the dial scheduler core driven with a virtual clock:
 * dial-ratio and slot arithmetic, the checkDial order and its counters,
 * history expiry at exactly 35 s, static priority, random order and redial
 * throttle, resolution with backoff (60 s doubling to 1 h), re-resolution
 * after a failed connect, pending-inbound suppression and NetRestrict. */
#include "actors/dialsched.h"

#include <stdio.h>

#include "actors/inbound.h"
#include "core/clock.h"
#include "tests/tu.h"

#define S P2P_NS_PER_SEC
#define T0 (5000 * S)

static p2p_node_t mk(unsigned i, const char *ip, uint16_t tcp)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    n.id[0] = (uint8_t)i;
    n.id[1] = (uint8_t)(i >> 8);
    n.id[31] = 0x77;
    n.pubkey[0] = (uint8_t)i;
    if (ip) CHECK_OK(p2p_ip_parse(&n.ep.ip, ip));
    n.ep.tcp = tcp;
    n.ep.udp = tcp;
    return n;
}

static p2p_dialsched_config_t base_cfg(unsigned max_peers)
{
    p2p_dialsched_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(cfg.self, 0xee, 32);
    cfg.max_peers = max_peers;
    cfg.resolve = true;
    cfg.seed = 42;
    return cfg;
}

/* Takes every queued action; returns how many (at most cap stored). */
static unsigned drain(p2p_dialsched_t *s, p2p_dial_action_t *acts, unsigned cap)
{
    unsigned n = 0;
    p2p_dial_action_t a;
    while (p2p_dialsched_take(s, &a)) {
        if (n < cap) acts[n] = a;
        n++;
    }
    return n;
}

static void test_ratio(void)
{
    CHECK(p2p_dial_max_dialed(50, 0, false) == 16);
    CHECK(p2p_dial_max_inbound(50, 0, false) == 34);
    CHECK(p2p_dial_max_dialed(50, 3, false) == 16);
    CHECK(p2p_dial_max_dialed(2, 3, false) == 1); /* at least one */
    CHECK(p2p_dial_max_inbound(2, 3, false) == 1);
    CHECK(p2p_dial_max_dialed(1, 3, false) == 1);
    CHECK(p2p_dial_max_inbound(1, 3, false) == 0);
    CHECK(p2p_dial_max_dialed(0, 3, false) == 0);
    CHECK(p2p_dial_max_dialed(50, 3, true) == 0);
    CHECK(p2p_dial_max_inbound(50, 3, true) == 50);
    CHECK(p2p_dial_max_dialed(10, 1, false) == 10);
    CHECK(p2p_dial_max_dialed(100, 5, false) == 20);
    CHECK(p2p_dial_max_dialed(25, 2, false) == 12);
    CHECK(P2P_DIAL_TIMEOUT_NS == 15 * S);
    CHECK(P2P_DIAL_HISTORY_EXPIRY_NS == 35 * S);
    /* the other constants of PROTOCOL.md "Server" and "Dial scheduler" */
    CHECK(P2P_DIAL_RATIO_DEFAULT == 3 && P2P_DIAL_MAX_ACTIVE_DEFAULT == 50);
    CHECK(P2P_DIAL_RESOLVE_INITIAL_NS == 60 * S && P2P_DIAL_RESOLVE_MAX_NS == 3600 * S);
    CHECK(P2P_DIAL_STATS_INTERVAL_NS == 10 * S && P2P_DIAL_DNS_TIMEOUT_NS == 5 * S);
    CHECK(P2P_INBOUND_THROTTLE_NS == 30 * S && P2P_MAX_PENDING_PEERS_DEFAULT == 50);
    /* connection flags: geth's connFlag bits (traces read alike) */
    CHECK(P2P_CONN_DYN_DIALED == 1 && P2P_CONN_STATIC_DIALED == 2);
    CHECK(P2P_CONN_INBOUND == 4 && P2P_CONN_TRUSTED == 8);
    CHECK(P2P_CONN_DIALED == 3);
}

static void test_slots(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(50);
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    /* 16 dialed peers allowed: (16 - 0) * 2 = 32 <= 50 active. */
    CHECK(s.max_dialed == 16);
    CHECK(p2p_dialsched_free_slots(&s) == 32);
    unsigned i;
    for (i = 0; i < 40; i++) {
        p2p_node_t n = mk(i, "1.2.3.4", 30303);
        p2p_dial_skip_t why = p2p_dialsched_add_candidate(&s, &n, T0);
        CHECK(why == (i < 32 ? P2P_DIAL_STARTED : P2P_DIAL_SKIP_NO_SLOT));
    }
    CHECK(p2p_dialsched_in_flight(&s) == 32);
    CHECK(p2p_dialsched_free_slots(&s) == 0);
    CHECK(s.stats.dials_dyn == 32);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_NO_SLOT] == 8);
    p2p_dial_action_t acts[64];
    CHECK(drain(&s, acts, 64) == 32);
    /* FIFO order, dynamic flag. */
    for (i = 0; i < 32; i++) {
        CHECK(acts[i].kind == P2P_DIAL_ACT_DIAL);
        CHECK(acts[i].flags == P2P_CONN_DYN_DIALED);
        CHECK(acts[i].node.id[0] == i);
    }
    /* 15 of them connect: budget (16 - 15) * 2 = 2, minus 17 in flight = 0. */
    for (i = 0; i < 15; i++) {
        p2p_node_t n = mk(i, "1.2.3.4", 30303);
        CHECK_OK(p2p_dialsched_peer_added(&s, n.id, P2P_CONN_DYN_DIALED, T0));
        CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_OK, T0));
    }
    CHECK(s.dial_peers == 15);
    CHECK(p2p_dialsched_free_slots(&s) == 0);
    /* The rest fail: 2 slots. */
    for (i = 15; i < 32; i++) {
        p2p_node_t n = mk(i, "1.2.3.4", 30303);
        CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_CONNECT_FAILED, T0 + S));
    }
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    CHECK(p2p_dialsched_free_slots(&s) == 2);
    /* Inbound and trusted-only peers do not use the dial budget. */
    p2p_node_t in = mk(100, "5.5.5.5", 1);
    CHECK_OK(p2p_dialsched_peer_added(&s, in.id, P2P_CONN_INBOUND | P2P_CONN_TRUSTED, T0));
    CHECK(p2p_dialsched_free_slots(&s) == 2);
    /* A 16th dialed peer (static) exhausts it. */
    p2p_node_t st = mk(101, "5.5.5.6", 1);
    CHECK_OK(p2p_dialsched_peer_added(&s, st.id, P2P_CONN_STATIC_DIALED, T0));
    CHECK(p2p_dialsched_free_slots(&s) == 0);
    /* More dialed peers than the budget (racing dials): still 0, no wrap. */
    p2p_node_t extra = mk(102, "5.5.5.7", 1);
    CHECK_OK(p2p_dialsched_peer_added(&s, extra.id, P2P_CONN_DYN_DIALED, T0));
    CHECK(p2p_dialsched_free_slots(&s) == 0);
    CHECK(p2p_dialsched_peer_removed(&s, extra.id, T0));
    CHECK(p2p_dialsched_peer_removed(&s, st.id, T0));
    CHECK(!p2p_dialsched_peer_removed(&s, st.id, T0));
    CHECK(p2p_dialsched_free_slots(&s) == 2);
    /* Re-adding a known peer with other flags keeps the count right. */
    CHECK_OK(p2p_dialsched_peer_added(&s, in.id, P2P_CONN_DYN_DIALED, T0));
    CHECK(s.dial_peers == 16);
    CHECK_OK(p2p_dialsched_peer_added(&s, in.id, P2P_CONN_INBOUND, T0));
    CHECK(s.dial_peers == 15);
    p2p_dialsched_free(&s);

    /* The cap on dials in flight. */
    cfg.max_active_dials = 5;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK(p2p_dialsched_free_slots(&s) == 5);
    for (i = 0; i < 8; i++) {
        p2p_node_t n = mk(i, "1.2.3.4", 30303);
        (void)p2p_dialsched_add_candidate(&s, &n, T0);
    }
    CHECK(p2p_dialsched_in_flight(&s) == 5);
    p2p_dialsched_free(&s);

    /* MaxPeers 2 -> 1 dialed peer -> 2 slots. */
    cfg = base_cfg(2);
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK(p2p_dialsched_free_slots(&s) == 2);
    p2p_dialsched_free(&s);

    /* NoDial: no slots; static nodes are never dialled. */
    cfg = base_cfg(50);
    cfg.no_dial = true;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK(p2p_dialsched_free_slots(&s) == 0);
    p2p_node_t sn = mk(1, "1.2.3.4", 30303);
    CHECK_OK(p2p_dialsched_add_static(&s, &sn, false, T0));
    p2p_node_t cn = mk(2, "1.2.3.5", 30303);
    CHECK(p2p_dialsched_add_candidate(&s, &cn, T0) == P2P_DIAL_SKIP_NO_SLOT);
    CHECK(drain(&s, acts, 64) == 0);
    p2p_dialsched_free(&s);
}

static void test_check_order(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(50);
    cfg.has_netrestrict = true;
    CHECK_OK(p2p_netlist_parse(&cfg.netrestrict, "1.0.0.0/8,127.0.0.0/8"));
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_dial_action_t acts[8];

    p2p_node_t self = mk(0, "1.1.1.1", 1);
    memset(self.id, 0xee, 32);
    CHECK(p2p_dialsched_add_candidate(&s, &self, T0) == P2P_DIAL_SKIP_SELF);
    /* Self wins even over no port. */
    self.ep.tcp = 0;
    CHECK(p2p_dialsched_add_candidate(&s, &self, T0) == P2P_DIAL_SKIP_SELF);

    p2p_node_t noport = mk(1, "1.1.1.1", 0);
    CHECK(p2p_dialsched_add_candidate(&s, &noport, T0) == P2P_DIAL_SKIP_NO_PORT);
    p2p_node_t noip = mk(2, NULL, 0);
    CHECK(p2p_dialsched_add_candidate(&s, &noip, T0) == P2P_DIAL_SKIP_NO_IP);

    p2p_node_t a = mk(3, "1.1.1.3", 30303);
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_STARTED);
    CHECK(p2p_dialsched_is_dialing(&s, a.id));
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_SKIP_DIALING);
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_SKIP_DIALING);
    CHECK_OK(p2p_dialsched_peer_added(&s, a.id, P2P_CONN_DYN_DIALED, T0));
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_SKIP_DIALING);
    CHECK_OK(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_OK, T0));
    CHECK(!p2p_dialsched_is_dialing(&s, a.id));
    CHECK(p2p_dialsched_is_connected(&s, a.id));
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_SKIP_CONNECTED);
    /* Disconnected again: recently dialled. */
    CHECK(p2p_dialsched_peer_removed(&s, a.id, T0 + S));
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0 + S) == P2P_DIAL_SKIP_HISTORY);

    /* Pending inbound suppresses dialling until done or promoted. */
    p2p_node_t b = mk(4, "1.1.1.4", 30303);
    CHECK_OK(p2p_dialsched_inbound_pending(&s, b.id, T0));
    CHECK_OK(p2p_dialsched_inbound_pending(&s, b.id, T0)); /* two racing conns */
    CHECK(p2p_dialsched_add_candidate(&s, &b, T0) == P2P_DIAL_SKIP_PENDING_INBOUND);
    p2p_dialsched_inbound_done(&s, b.id, T0);
    CHECK(p2p_dialsched_add_candidate(&s, &b, T0) == P2P_DIAL_SKIP_PENDING_INBOUND);
    p2p_dialsched_inbound_done(&s, b.id, T0);
    CHECK(p2p_dialsched_add_candidate(&s, &b, T0) == P2P_DIAL_STARTED);
    p2p_node_t c = mk(5, "1.1.1.5", 30303);
    CHECK_OK(p2p_dialsched_inbound_pending(&s, c.id, T0));
    CHECK_OK(p2p_dialsched_peer_added(&s, c.id, P2P_CONN_INBOUND, T0));
    CHECK(p2p_dialsched_add_candidate(&s, &c, T0) == P2P_DIAL_SKIP_CONNECTED);
    CHECK(p2p_dialsched_peer_removed(&s, c.id, T0));
    CHECK(p2p_dialsched_add_candidate(&s, &c, T0) == P2P_DIAL_STARTED); /* pending cleared */
    /* Pending inbound is checked before NetRestrict; NetRestrict before history. */
    p2p_node_t out = mk(6, "8.8.8.8", 30303);
    CHECK_OK(p2p_dialsched_inbound_pending(&s, out.id, T0));
    CHECK(p2p_dialsched_add_candidate(&s, &out, T0) == P2P_DIAL_SKIP_PENDING_INBOUND);
    p2p_dialsched_inbound_done(&s, out.id, T0);
    CHECK(p2p_dialsched_add_candidate(&s, &out, T0) == P2P_DIAL_SKIP_NETRESTRICT);
    p2p_node_t v6 = mk(7, "2a00::1", 30303);
    CHECK(p2p_dialsched_add_candidate(&s, &v6, T0) == P2P_DIAL_SKIP_NETRESTRICT);
    a.ep.ip = out.ep.ip; /* a is in the history; moved outside NetRestrict */
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0 + S) == P2P_DIAL_SKIP_NETRESTRICT);

    CHECK(s.stats.skipped[P2P_DIAL_SKIP_SELF] == 2);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_NO_PORT] == 1);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_NO_IP] == 1);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_DIALING] == 3);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_CONNECTED] == 2);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_HISTORY] == 1);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_PENDING_INBOUND] == 3);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_NETRESTRICT] == 3);
    CHECK(s.stats.dials_dyn == 3);
    CHECK(strcmp(p2p_dial_skip_name(P2P_DIAL_SKIP_HISTORY), "history") == 0);
    CHECK(strcmp(p2p_dial_skip_name(P2P_DIAL_SKIP_COUNT), "unknown") == 0);
    for (int i = 0; i < P2P_DIAL_SKIP_COUNT; i++)
        CHECK(p2p_dial_skip_name((p2p_dial_skip_t)i) != NULL);
    p2p_dialsched_free(&s);
}

static void test_history_expiry(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(50);
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_dial_action_t acts[4];
    p2p_node_t a = mk(1, "9.9.9.9", 30303);
    CHECK(p2p_dialsched_next_deadline(&s, T0) == P2P_DIAL_NO_DEADLINE);
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_STARTED);
    CHECK(p2p_dialsched_next_deadline(&s, T0) == T0 + 35 * S);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK_OK(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_CONNECT_FAILED, T0 + 2 * S));
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0 + 35 * S - 1) == P2P_DIAL_SKIP_HISTORY);
    CHECK(s.history.n == 1);
    /* Exactly 35 s after the dial started: allowed again. */
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0 + 35 * S) == P2P_DIAL_STARTED);
    CHECK(p2p_dialsched_next_deadline(&s, T0 + 35 * S) == T0 + 70 * S);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK_OK(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_HANDSHAKE_FAILED, T0 + 36 * S));
    /* Ticks expire the history (the map shrinks). */
    p2p_dialsched_tick(&s, T0 + 70 * S);
    CHECK(s.history.n == 0);
    CHECK(p2p_dialsched_next_deadline(&s, T0 + 70 * S) == P2P_DIAL_NO_DEADLINE);
    CHECK(s.stats.dial_connect_failed == 1 && s.stats.dial_handshake_failed == 1);
    p2p_dialsched_free(&s);
}

/* A large dial history stays cheap: 1,600 dials per second of virtual
 * time for 70 s (56,000 live entries at the end; every event expires the
 * oldest).  Scanning the whole history at each expiry made this quadratic
 * (about a minute of CPU here); expiring from a queue takes milliseconds
 * (under TSan about 3 s).  The budget is 8 s of this thread's CPU time, not
 * of the wall clock, which a loaded machine stretches without bound (the
 * wall clock only bounds the run, at 120 s).  Entries still expire exactly
 * 35 s after their dial, in order. */
static void test_history_cost(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(3000); /* 1000 dialed peers: 1000 slots */
    cfg.max_active_dials = 1000;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    const unsigned rate = 1600, secs = 70; /* a step of exactly 625 us */
    const uint64_t step = S / rate;
    uint64_t cpu0 = tu_thread_cpu_ns(), cpu_end = cpu0 + 8 * S;
    uint64_t wall0 = p2p_now_ns(), wall_end = wall0 + 120 * S;
    unsigned i, started = 0;
    bool order_ok = true;
    for (i = 0; i < rate * secs && tu_thread_cpu_ns() < cpu_end && p2p_now_ns() < wall_end; i++) {
        uint64_t now = T0 + i * step;
        p2p_node_t n = mk(i & 0xffff, "9.9.9.9", 30303);
        n.id[2] = (uint8_t)(i >> 16);
        p2p_dialsched_tick(&s, now);
        if (p2p_dialsched_add_candidate(&s, &n, now) != P2P_DIAL_STARTED) continue;
        started++;
        p2p_dial_action_t a;
        while (p2p_dialsched_take(&s, &a))
            CHECK_OK(p2p_dialsched_dial_done(&s, a.node.id, P2P_DIAL_CONNECT_FAILED, now));
        /* the entries left are those of the last 35 s */
        uint64_t live = i + 1 < 35 * rate ? i + 1 : 35 * rate;
        if (s.history.n != live) order_ok = false;
    }
    double cpu_ms = (double)(tu_thread_cpu_ns() - cpu0) / 1e6;
    double ms = (double)(p2p_now_ns() - wall0) / 1e6;
    printf("history cost: %u of %u events in %.0f ms of CPU (%.0f ms), %zu entries\n", i,
           rate * secs, cpu_ms, ms, s.history.n);
    CHECK(i == rate * secs); /* did not run out of time */
    CHECK(started == rate * secs);
    CHECK(order_ok);
    CHECK(p2p_dialsched_next_deadline(&s, T0 + i * step) == T0 + (i - 35 * rate) * step + 35 * S);
    p2p_dialsched_free(&s);
}

static void test_static(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(50);
    cfg.max_active_dials = 1;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_dial_action_t acts[8];
    p2p_node_t st = mk(1, "7.7.7.7", 30303), tr = mk(2, "7.7.7.8", 30304);
    p2p_node_t cand = mk(3, "7.7.7.9", 30305);
    CHECK_OK(p2p_dialsched_add_static(&s, &st, false, T0));
    CHECK(p2p_dialsched_is_static(&s, st.id));
    /* The static dial took the only slot: the candidate must wait. */
    CHECK(p2p_dialsched_add_candidate(&s, &cand, T0) == P2P_DIAL_SKIP_NO_SLOT);
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL);
    CHECK(acts[0].flags == P2P_CONN_STATIC_DIALED);
    CHECK_MEM(acts[0].node.id, st.id, 32);
    CHECK(acts[0].node.ep.tcp == 30303);
    CHECK(s.stats.dials_static == 1);
    /* Dial takes a while and fails (handshake): no redial within 35 s of the start. */
    CHECK_OK(p2p_dialsched_dial_done(&s, st.id, P2P_DIAL_HANDSHAKE_FAILED, T0 + 10 * S));
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    p2p_dialsched_tick(&s, T0 + 34 * S);
    CHECK(drain(&s, acts, 8) == 0);
    /* The trusted static node is dialled with the trusted flag first. */
    CHECK_OK(p2p_dialsched_add_static(&s, &tr, true, T0 + 34 * S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].flags == (P2P_CONN_STATIC_DIALED | P2P_CONN_TRUSTED));
    CHECK_OK(p2p_dialsched_dial_done(&s, tr.id, P2P_DIAL_OK, T0 + 34 * S));
    CHECK_OK(p2p_dialsched_peer_added(&s, tr.id, acts[0].flags, T0 + 34 * S));
    /* The deadline names the redial time; at exactly 35 s st is redialled. */
    CHECK(p2p_dialsched_next_deadline(&s, T0 + 34 * S) == T0 + 35 * S);
    p2p_dialsched_tick(&s, T0 + 35 * S - 1);
    CHECK(drain(&s, acts, 8) == 0);
    p2p_dialsched_tick(&s, T0 + 35 * S);
    CHECK(drain(&s, acts, 8) == 1);
    CHECK_MEM(acts[0].node.id, st.id, 32);
    CHECK_OK(p2p_dialsched_dial_done(&s, st.id, P2P_DIAL_OK, T0 + 36 * S));
    CHECK_OK(p2p_dialsched_peer_added(&s, st.id, P2P_CONN_STATIC_DIALED, T0 + 36 * S));
    /* Connected static nodes are not dialled, even after the history expires. */
    p2p_dialsched_tick(&s, T0 + 200 * S);
    CHECK(drain(&s, acts, 8) == 0);
    CHECK(p2p_dialsched_next_deadline(&s, T0 + 200 * S) == P2P_DIAL_NO_DEADLINE);
    /* Peer drops: redialled at once (history expired). */
    CHECK(p2p_dialsched_peer_removed(&s, st.id, T0 + 201 * S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK_MEM(acts[0].node.id, st.id, 32);
    /* Removing a static node while its dial is in flight: the dial runs to
     * its end and the node is not dialled again. */
    CHECK(p2p_dialsched_remove_static(&s, st.id, T0 + 201 * S));
    CHECK(!p2p_dialsched_remove_static(&s, st.id, T0 + 201 * S));
    CHECK(!p2p_dialsched_is_static(&s, st.id));
    CHECK(p2p_dialsched_is_dialing(&s, st.id));
    CHECK_OK(p2p_dialsched_dial_done(&s, st.id, P2P_DIAL_CONNECT_FAILED, T0 + 202 * S));
    p2p_dialsched_tick(&s, T0 + 1000 * S);
    CHECK(drain(&s, acts, 8) == 0);
    /* Updating a static node's endpoint: the next dial uses the new one. */
    CHECK(p2p_dialsched_peer_removed(&s, tr.id, T0 + 1000 * S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK_OK(p2p_dialsched_dial_done(&s, tr.id, P2P_DIAL_HANDSHAKE_FAILED, T0 + 1000 * S));
    tr.ep.tcp = 4000;
    CHECK_OK(p2p_dialsched_add_static(&s, &tr, false, T0 + 1000 * S));
    p2p_dialsched_tick(&s, T0 + 1035 * S);
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].node.ep.tcp == 4000);
    CHECK(acts[0].flags == P2P_CONN_STATIC_DIALED);
    p2p_dialsched_free(&s);

    /* Static nodes that fail checkDial are not dialled. */
    cfg = base_cfg(50);
    cfg.has_netrestrict = true;
    CHECK_OK(p2p_netlist_parse(&cfg.netrestrict, "10.0.0.0/8"));
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_node_t self = mk(0, "10.0.0.1", 1), noport = mk(1, "10.0.0.2", 0);
    memset(self.id, 0xee, 32);
    p2p_node_t outside = mk(2, "8.8.8.8", 1), pend = mk(3, "10.0.0.3", 1);
    CHECK_OK(p2p_dialsched_inbound_pending(&s, pend.id, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &self, false, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &noport, false, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &outside, false, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &pend, false, T0));
    /* a pending inbound connection (unproven ID) does not hold back a
     * static node: only pend is dialled */
    CHECK(drain(&s, acts, 8) == 1);
    CHECK_MEM(acts[0].node.id, pend.id, 32);
    p2p_dialsched_free(&s);
}

/* An inbound connection is pending from its RLPx auth on, before its first
 * frame's MAC proves the claimed ID: anyone can claim any ID.  Pending
 * inbound holds back discovery candidates only; static and trusted nodes
 * are dialled (at once, after a resolution, and re-resolved after a failed
 * connect) whatever is pending under their ID. */
static void test_static_pending_inbound(void)
{
    p2p_dialsched_config_t cfg = base_cfg(50);
    p2p_dialsched_t s;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_dial_action_t acts[8];
    p2p_node_t st = mk(1, "10.0.0.1", 30303), tr = mk(2, "10.0.0.2", 30303);
    p2p_node_t dyn = mk(3, "10.0.0.3", 30303), nip = mk(4, NULL, 0);
    CHECK_OK(p2p_dialsched_inbound_pending(&s, st.id, T0));
    CHECK_OK(p2p_dialsched_inbound_pending(&s, tr.id, T0));
    CHECK_OK(p2p_dialsched_inbound_pending(&s, dyn.id, T0));
    CHECK_OK(p2p_dialsched_inbound_pending(&s, nip.id, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &st, false, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &tr, true, T0));
    CHECK(drain(&s, acts, 8) == 2);
    for (int i = 0; i < 2; i++) {
        CHECK(acts[i].kind == P2P_DIAL_ACT_DIAL);
        CHECK(acts[i].flags & P2P_CONN_STATIC_DIALED);
    }
    /* a discovery candidate with the same kind of pending entry waits */
    CHECK(p2p_dialsched_add_candidate(&s, &dyn, T0) == P2P_DIAL_SKIP_PENDING_INBOUND);
    /* the static dial fails to connect: re-resolved, then dialled at the
     * resolved address although the inbound entry is still pending */
    CHECK_OK(p2p_dialsched_dial_done(&s, st.id, P2P_DIAL_CONNECT_FAILED, T0 + S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    p2p_node_t moved = st;
    moved.ep.tcp = 30304;
    CHECK_OK(p2p_dialsched_resolve_done(&s, st.id, &moved, T0 + S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL && acts[0].node.ep.tcp == 30304);
    /* a static node without an address: resolved and dialled */
    CHECK_OK(p2p_dialsched_add_static(&s, &nip, false, T0 + S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    p2p_node_t found = mk(4, "10.0.0.4", 30303);
    CHECK_OK(p2p_dialsched_resolve_done(&s, nip.id, &found, T0 + S));
    CHECK(drain(&s, acts, 8) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL);
    CHECK_MEM(acts[0].node.id, nip.id, 32);
    CHECK(s.stats.skipped[P2P_DIAL_SKIP_PENDING_INBOUND] == 1);
    p2p_dialsched_free(&s);
}

static void test_static_random_order(void)
{
    /* With one slot, which of 8 due static nodes goes first depends on the
     * seed; over 40 seeds, at least 4 different nodes come first, and every
     * static node is dialled exactly once within the round. */
    bool first[8] = {false};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        p2p_dialsched_t s;
        p2p_dialsched_config_t cfg = base_cfg(50);
        cfg.max_active_dials = 1;
        cfg.seed = seed;
        CHECK_OK(p2p_dialsched_init(&s, &cfg));
        for (unsigned i = 0; i < 8; i++) {
            p2p_node_t n = mk(i, "6.6.6.6", (uint16_t)(100 + i));
            /* added before the clock starts so all are due together */
            CHECK_OK(p2p_dialsched_add_static(&s, &n, false, 0));
        }
        /* The first add already dialled node 0: take it and finish. */
        p2p_dial_action_t a;
        CHECK(p2p_dialsched_take(&s, &a));
        CHECK(a.node.id[0] == 0);
        CHECK_OK(p2p_dialsched_dial_done(&s, a.node.id, P2P_DIAL_HANDSHAKE_FAILED, 0));
        bool seen[8] = {true};
        for (unsigned k = 1; k < 8; k++) {
            CHECK(p2p_dialsched_take(&s, &a));
            unsigned i = a.node.id[0];
            CHECK(i < 8 && !seen[i]);
            if (i < 8) seen[i] = true;
            if (k == 1 && i < 8) first[i] = true;
            CHECK_OK(p2p_dialsched_dial_done(&s, a.node.id, P2P_DIAL_HANDSHAKE_FAILED, 0));
        }
        CHECK(!p2p_dialsched_take(&s, &a));
        p2p_dialsched_free(&s);
    }
    unsigned distinct = 0;
    for (int i = 0; i < 8; i++) distinct += first[i];
    CHECK(distinct >= 4);
}

/* s (base_cfg(50)) with one static node without an address, n, whose
 * first resolution has been taken (it holds a slot). */
static void start_resolving(p2p_dialsched_t *s, p2p_node_t *n)
{
    p2p_dialsched_config_t cfg = base_cfg(50);
    CHECK_OK(p2p_dialsched_init(s, &cfg));
    p2p_dial_action_t acts[4];
    *n = mk(1, NULL, 0);
    CHECK_OK(p2p_dialsched_add_static(s, n, false, T0));
    /* First resolution is immediate. */
    CHECK(drain(s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    CHECK_MEM(acts[0].node.id, n->id, 32);
    CHECK(p2p_dialsched_in_flight(s) == 1); /* a resolution holds a slot */
}

/* A resolution the shell never answers (the resolver lost it) fails at
 * P2P_DIAL_RESOLVE_TIMEOUT_NS: its slot is freed, the failure counted, and
 * the node is resolved again after the backoff; a late answer is refused.
 * Before, the slot stayed taken and the node was never asked for again. */
static void test_resolve_timeout(void)
{
    p2p_dialsched_t s;
    p2p_node_t n;
    start_resolving(&s, &n);
    p2p_dial_action_t acts[4];
    /* the timeout is a deadline of its own */
    CHECK(p2p_dialsched_next_deadline(&s, T0 + S) <= T0 + P2P_DIAL_RESOLVE_TIMEOUT_NS);
    p2p_dialsched_tick(&s, T0 + P2P_DIAL_RESOLVE_TIMEOUT_NS - 1);
    CHECK(p2p_dialsched_in_flight(&s) == 1);
    p2p_dialsched_tick(&s, T0 + P2P_DIAL_RESOLVE_TIMEOUT_NS);
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    CHECK(s.stats.resolve_failed == 1 && s.stats.resolve_timeouts == 1);
    p2p_node_t found = mk(1, "4.4.4.4", 30311);
    CHECK_ERR(p2p_dialsched_resolve_done(&s, n.id, &found, T0 + P2P_DIAL_RESOLVE_TIMEOUT_NS + S),
              P2P_ENOTFOUND);
    /* asked again after the doubled wait (120 s), and answered this time */
    uint64_t due = T0 + P2P_DIAL_RESOLVE_TIMEOUT_NS + 120 * S;
    CHECK(p2p_dialsched_next_deadline(&s, T0 + P2P_DIAL_RESOLVE_TIMEOUT_NS + 40 * S) == due);
    p2p_dialsched_tick(&s, due);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &found, due + S));
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL);
    CHECK(s.stats.resolve_timeouts == 1);
    p2p_dialsched_free(&s);
}

static void test_resolve_backoff(void)
{
    p2p_dialsched_t s;
    p2p_node_t n;
    start_resolving(&s, &n);
    p2p_dialsched_config_t cfg = base_cfg(50);
    p2p_dial_action_t acts[4];
    CHECK_ERR(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_OK, T0), P2P_ENOTFOUND);
    /* The wait starts at 60 s and each failure doubles it before it
     * applies: 120, 240, ..., capped at 3600 s. */
    static const uint64_t waits[] = {120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600};
    uint64_t t = T0;
    for (unsigned k = 0; k < sizeof waits / sizeof waits[0]; k++) {
        CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, NULL, t));
        CHECK(p2p_dialsched_in_flight(&s) == 0);
        uint64_t due = t + waits[k] * S;
        p2p_dialsched_tick(&s, t + 40 * S); /* expires the 35 s history entry */
        CHECK(p2p_dialsched_next_deadline(&s, t + 40 * S) == due);
        p2p_dialsched_tick(&s, due - 1);
        CHECK(drain(&s, acts, 4) == 0);
        p2p_dialsched_tick(&s, due);
        CHECK(drain(&s, acts, 4) == 1);
        CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
        t = due;
    }
    CHECK(s.stats.resolve_failed == 9);
    CHECK(s.stats.resolves == 10);
    /* Found: dialled at once with the resolved endpoint, static flags. */
    p2p_node_t found = mk(1, "4.4.4.4", 30311);
    found.seq = 9;
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &found, t + S));
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL);
    CHECK(acts[0].flags == P2P_CONN_STATIC_DIALED);
    CHECK(p2p_ip_equal(&acts[0].node.ep.ip, &found.ep.ip));
    CHECK(acts[0].node.ep.tcp == 30311);
    CHECK(acts[0].node.seq == 9);
    CHECK(s.stats.resolve_ok == 1);
    CHECK_ERR(p2p_dialsched_resolve_done(&s, n.id, &found, t + S), P2P_ENOTFOUND);
    CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_HANDSHAKE_FAILED, t + 2 * S));
    /* The resolved endpoint is remembered: later dials go straight to it. */
    p2p_dialsched_tick(&s, t + 100 * S);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL);
    CHECK(acts[0].node.ep.tcp == 30311);
    p2p_dialsched_free(&s);

    /* A record for another ID, or without IP/port, counts as not found. */
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK_OK(p2p_dialsched_add_static(&s, &n, false, T0));
    CHECK(drain(&s, acts, 4) == 1);
    p2p_node_t wrong = mk(2, "4.4.4.4", 1);
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &wrong, T0));
    CHECK(s.stats.resolve_failed == 1);
    p2p_dialsched_tick(&s, T0 + 119 * S);
    CHECK(drain(&s, acts, 4) == 0);
    p2p_dialsched_tick(&s, T0 + 120 * S);
    CHECK(drain(&s, acts, 4) == 1);
    p2p_node_t noport = mk(1, "4.4.4.4", 0);
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &noport, T0 + 120 * S));
    CHECK(s.stats.resolve_failed == 2);
    p2p_dialsched_tick(&s, T0 + 359 * S);
    CHECK(drain(&s, acts, 4) == 0);
    p2p_dialsched_tick(&s, T0 + 360 * S);
    CHECK(drain(&s, acts, 4) == 1);
    /* Removed while resolving: a found record is not dialled. */
    CHECK(p2p_dialsched_remove_static(&s, n.id, T0 + 360 * S));
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &found, T0 + 361 * S));
    CHECK(drain(&s, acts, 4) == 0);
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    p2p_dialsched_free(&s);

    /* Without discovery a static node without IP is never dialled. */
    cfg.resolve = false;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK_OK(p2p_dialsched_add_static(&s, &n, false, T0));
    p2p_dialsched_tick(&s, T0 + 10000 * S);
    CHECK(drain(&s, acts, 4) == 0);
    CHECK(p2p_dialsched_next_deadline(&s, T0) == P2P_DIAL_NO_DEADLINE);
    p2p_dialsched_free(&s);
}

static void test_reresolve(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(50);
    cfg.has_netrestrict = true;
    CHECK_OK(p2p_netlist_parse(&cfg.netrestrict, "3.0.0.0/8"));
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_dial_action_t acts[4];
    p2p_node_t n = mk(1, "3.3.3.3", 30303);
    CHECK_OK(p2p_dialsched_add_static(&s, &n, false, T0));
    CHECK(drain(&s, acts, 4) == 1);
    /* Connect failed: the node may have moved, resolve it (same slot). */
    CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_CONNECT_FAILED, T0 + S));
    CHECK(p2p_dialsched_in_flight(&s) == 1);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    p2p_node_t moved = mk(1, "3.3.3.4", 30400);
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &moved, T0 + 2 * S));
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_DIAL);
    CHECK(acts[0].node.ep.tcp == 30400);
    /* Failing again within 60 s of the resolution: no new resolution. */
    CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_CONNECT_FAILED, T0 + 3 * S));
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    CHECK(drain(&s, acts, 4) == 0);
    /* A handshake failure never triggers a resolution. */
    p2p_dialsched_tick(&s, T0 + 100 * S);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_HANDSHAKE_FAILED, T0 + 101 * S));
    CHECK(drain(&s, acts, 4) == 0);
    /* Resolved outside NetRestrict: counted, not dialled. */
    p2p_dialsched_tick(&s, T0 + 200 * S);
    CHECK(drain(&s, acts, 4) == 1);
    CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_CONNECT_FAILED, T0 + 200 * S));
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    p2p_node_t bad = mk(1, "9.9.9.9", 30400);
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &bad, T0 + 201 * S));
    CHECK(drain(&s, acts, 4) == 0);
    CHECK(s.stats.resolved_restricted == 1);
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    /* Connected inbound while resolving: not dialled (a pending inbound
     * connection would not hold it back: see test_static_pending_inbound). */
    p2p_dialsched_tick(&s, T0 + 400 * S);
    CHECK(drain(&s, acts, 4) == 0); /* the stored endpoint is now outside */
    p2p_node_t back = mk(1, "3.3.3.5", 30500);
    CHECK_OK(p2p_dialsched_add_static(&s, &back, false, T0 + 400 * S));
    CHECK(drain(&s, acts, 4) == 1);
    CHECK_OK(p2p_dialsched_dial_done(&s, n.id, P2P_DIAL_CONNECT_FAILED, T0 + 401 * S));
    CHECK(drain(&s, acts, 4) == 1);
    CHECK(acts[0].kind == P2P_DIAL_ACT_RESOLVE);
    CHECK_OK(p2p_dialsched_peer_added(&s, n.id, P2P_CONN_INBOUND, T0 + 402 * S));
    CHECK_OK(p2p_dialsched_resolve_done(&s, n.id, &back, T0 + 403 * S));
    CHECK(drain(&s, acts, 4) == 0);
    CHECK(p2p_dialsched_in_flight(&s) == 0);
    p2p_dialsched_free(&s);
}

static void test_protocol_errors(void)
{
    p2p_dialsched_t s;
    p2p_dialsched_config_t cfg = base_cfg(50);
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_node_t a = mk(1, "2.2.2.2", 1);
    CHECK_ERR(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_OK, T0), P2P_ENOTFOUND);
    CHECK_ERR(p2p_dialsched_resolve_done(&s, a.id, NULL, T0), P2P_ENOTFOUND);
    CHECK(p2p_dialsched_add_candidate(&s, &a, T0) == P2P_DIAL_STARTED);
    /* Not yet handed out: done is refused. */
    CHECK_ERR(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_OK, T0), P2P_ENOTFOUND);
    p2p_dial_action_t act;
    CHECK(p2p_dialsched_take(&s, &act));
    CHECK_ERR(p2p_dialsched_resolve_done(&s, a.id, NULL, T0), P2P_ENOTFOUND);
    CHECK_OK(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_OK, T0));
    CHECK_ERR(p2p_dialsched_dial_done(&s, a.id, P2P_DIAL_OK, T0), P2P_ENOTFOUND);
    CHECK(!p2p_dialsched_take(&s, &act));
    /* Unknown inbound_done / peer_removed are harmless. */
    p2p_dialsched_inbound_done(&s, a.id, T0);
    CHECK(!p2p_dialsched_peer_removed(&s, a.id, T0));
    p2p_dialsched_free(&s);
}

/* The peer and pending-inbound views depend on the order of the events:
 * the dialer shell must apply them as the run loop decided them (one
 * mailbox, one producer).  X leaves and is re-admitted: in order, X is
 * connected; with the re-admission applied before the older removal, X
 * would look gone and be dialled again.  An inbound connection from Y is
 * pending, then ends: in order, Y is dialable; "done" applied before its
 * "pending" would leave Y pending for good. */
static void test_peer_event_order(void)
{
    p2p_dialsched_config_t cfg = base_cfg(30);
    p2p_dialsched_t s, t;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK_OK(p2p_dialsched_init(&t, &cfg));
    p2p_node_t x = mk(1, "10.0.0.1", 30303), y = mk(2, "10.0.0.2", 30303);

    /* run-loop order: pending, added, removed, pending, added */
    CHECK_OK(p2p_dialsched_inbound_pending(&s, x.id, T0));
    CHECK_OK(p2p_dialsched_peer_added(&s, x.id, P2P_CONN_INBOUND, T0));
    CHECK(p2p_dialsched_peer_removed(&s, x.id, T0));
    CHECK_OK(p2p_dialsched_inbound_pending(&s, x.id, T0));
    CHECK_OK(p2p_dialsched_peer_added(&s, x.id, P2P_CONN_INBOUND, T0));
    CHECK(p2p_dialsched_is_connected(&s, x.id));
    CHECK(p2p_dialsched_add_candidate(&s, &x, T0) == P2P_DIAL_SKIP_CONNECTED);
    /* the same events with the newer "added" first: X looks disconnected */
    CHECK_OK(p2p_dialsched_inbound_pending(&t, x.id, T0));
    CHECK_OK(p2p_dialsched_peer_added(&t, x.id, P2P_CONN_INBOUND, T0));
    CHECK_OK(p2p_dialsched_inbound_pending(&t, x.id, T0));
    int rc = p2p_dialsched_peer_added(&t, x.id, P2P_CONN_INBOUND, T0);
    (void)rc;
    (void)p2p_dialsched_peer_removed(&t, x.id, T0);
    CHECK(!p2p_dialsched_is_connected(&t, x.id));

    /* pending then done: Y can be dialled */
    CHECK_OK(p2p_dialsched_inbound_pending(&s, y.id, T0));
    p2p_dialsched_inbound_done(&s, y.id, T0);
    CHECK(p2p_dialsched_add_candidate(&s, &y, T0) == P2P_DIAL_STARTED);
    /* done applied before its pending: Y stays pending */
    p2p_dialsched_inbound_done(&t, y.id, T0);
    CHECK_OK(p2p_dialsched_inbound_pending(&t, y.id, T0));
    CHECK(p2p_dialsched_add_candidate(&t, &y, T0) == P2P_DIAL_SKIP_PENDING_INBOUND);
    p2p_dialsched_free(&s);
    p2p_dialsched_free(&t);
}

/* Static nodes that can never be dialled as they stand, each with its
 * reason; a dialable one (with an IP, or without one but resolvable). */
static void test_static_blocked(void)
{
    p2p_dialsched_config_t cfg = base_cfg(10);
    cfg.has_netrestrict = true;
    CHECK_OK(p2p_netlist_parse(&cfg.netrestrict, "10.0.0.0/8"));
    p2p_dialsched_t s;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    p2p_node_t self = mk(1, "10.0.0.1", 30303);
    memset(self.id, 0xee, 32);
    p2p_node_t noport = mk(2, "10.0.0.2", 0), outside = mk(3, "20.0.0.3", 30303);
    p2p_node_t ok = mk(4, "10.0.0.4", 30303), noip = mk(5, NULL, 0);
    CHECK(p2p_dialsched_static_blocked(&s, &self) == P2P_DIAL_SKIP_SELF);
    CHECK(p2p_dialsched_static_blocked(&s, &noport) == P2P_DIAL_SKIP_NO_PORT);
    CHECK(p2p_dialsched_static_blocked(&s, &outside) == P2P_DIAL_SKIP_NETRESTRICT);
    CHECK(p2p_dialsched_static_blocked(&s, &ok) == P2P_DIAL_STARTED);
    CHECK(p2p_dialsched_static_blocked(&s, &noip) == P2P_DIAL_STARTED); /* resolvable */
    p2p_dialsched_free(&s);
    cfg.resolve = false;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    CHECK(p2p_dialsched_static_blocked(&s, &noip) == P2P_DIAL_SKIP_NO_IP);
    p2p_dialsched_free(&s);

    /* NoDial, or MaxPeers 0: no dialled-peer budget, so no static node is
     * ever dialled (free slots stay 0); each is named as such, not taken
     * for a dialable one */
    for (int k = 0; k < 2; k++) {
        p2p_dialsched_config_t c = base_cfg(k ? 0 : 10);
        c.no_dial = !k;
        CHECK_OK(p2p_dialsched_init(&s, &c));
        CHECK(p2p_dialsched_static_blocked(&s, &ok) == P2P_DIAL_SKIP_NO_SLOT);
        CHECK(p2p_dialsched_static_blocked(&s, &noip) == P2P_DIAL_SKIP_NO_SLOT);
        CHECK(p2p_dialsched_static_blocked(&s, &self) == P2P_DIAL_SKIP_SELF);
        CHECK_OK(p2p_dialsched_add_static(&s, &ok, true, T0));
        p2p_dial_action_t a[4];
        CHECK(drain(&s, a, 4) == 0);
        CHECK(p2p_dialsched_free_slots(&s) == 0);
        p2p_dialsched_free(&s);
    }
}

/* The static set holds at most P2P_DIAL_MAX_STATIC nodes: one more is
 * P2P_EFULL with the set unchanged; a node already in it is still
 * updated; a removal makes room. */
static void test_static_limit(void)
{
    p2p_dialsched_config_t cfg = base_cfg(10);
    cfg.no_dial = true;
    p2p_dialsched_t s;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    unsigned bad = 0;
    for (unsigned i = 0; i < P2P_DIAL_MAX_STATIC; i++) {
        p2p_node_t n = mk(i, "10.0.0.1", 30303);
        if (p2p_dialsched_add_static(&s, &n, false, T0)) bad++;
    }
    CHECK(bad == 0 && s.nstatic == P2P_DIAL_MAX_STATIC);
    p2p_node_t more = mk(P2P_DIAL_MAX_STATIC, "10.0.0.1", 30303);
    CHECK_ERR(p2p_dialsched_add_static(&s, &more, false, T0), P2P_EFULL);
    CHECK(s.nstatic == P2P_DIAL_MAX_STATIC && s.statics.n == P2P_DIAL_MAX_STATIC);
    p2p_node_t moved = mk(3, "10.0.0.9", 30303);
    CHECK_OK(p2p_dialsched_add_static(&s, &moved, true, T0));
    CHECK(s.nstatic == P2P_DIAL_MAX_STATIC);
    CHECK(p2p_dialsched_remove_static(&s, moved.id, T0));
    CHECK_OK(p2p_dialsched_add_static(&s, &more, false, T0));
    CHECK(s.nstatic == P2P_DIAL_MAX_STATIC);
    p2p_dialsched_free(&s);
}

int main(void)
{
    test_ratio();
    test_static_limit();
    test_static_blocked();
    test_slots();
    test_check_order();
    test_history_expiry();
    test_history_cost();
    test_static();
    test_static_random_order();
    test_resolve_backoff();
    test_resolve_timeout();
    test_reresolve();
    test_protocol_errors();
    test_peer_event_order();
    test_static_pending_inbound();
    return tu_done("dialsched");
}
