/*
 * tests/actors/test_server_apiorder_race.c: set changes take effect in the
 * order of their calls while other threads keep the same set's mailbox
 * busy (the guarantee of actors/server_int.h, P2P__API_DRAIN).
 *
 * - test_trusted_race: NFLOOD threads flood p2p_server_add_trusted(Y) (one
 *   ID: the set stays small); the test thread calls add_trusted(X_i) then
 *   remove_trusted(X_i) for NT distinct X_i.  The trusted set must end up
 *   holding Y alone.
 * - test_static_race: NFLOOD threads flood p2p_server_add_peer(Y); the
 *   event callback (where p2p_server_remove_peer makes no peer op, so the
 *   two calls follow each other within a microsecond) calls
 *   remove_peer(X_i) then add_peer(X_i) for NS distinct X_i.  The static
 *   set must end up holding Y and every X_i.
 * With additions and removals on two mailboxes merged by a call stamp, a
 * drain could take one call's message from one mailbox and leave the
 * other's earlier call behind in the other: trusted nodes whose last call
 * was a removal stayed (the set filled up to its limit), static nodes
 * whose last call was an addition went.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};

#define NFLOOD 2
#define NT 20000
#define NS 1000

static p2p_server_t *srv_a;
static atomic_int flood_stop;

/* A distinct node per i (IDs only matter: nothing is dialled). */
static p2p_node_t xnode(unsigned i)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    memcpy(n.id, &i, sizeof i);
    n.id[31] = 0x58;
    n.ep.ip = p2p_ip4(127, 0, 0, 1);
    n.ep.tcp = n.ep.udp = 9;
    return n;
}

static void *flood_trusted(void *arg)
{
    (void)arg;
    p2p_node_t y = xnode(1u << 30);
    while (!atomic_load(&flood_stop))
        if (p2p_server_add_trusted(srv_a, y.id)) usleep(100);
    return NULL;
}

static void *flood_static(void *arg)
{
    (void)arg;
    p2p_node_t y = xnode(1u << 30);
    while (!atomic_load(&flood_stop))
        if (p2p_server_add_peer(srv_a, &y)) usleep(100);
    return NULL;
}

/* Reads the stats once field stopped changing (everything queued applied). */
static void settle(p2p_server_stats_t *st, const uint64_t *field)
{
    uint64_t last = UINT64_MAX;
    for (int i = 0; i < 100; i++) {
        usleep(20000);
        p2p_server_get_stats(srv_a, st);
        if (*field == last) return;
        last = *field;
    }
}

static void test_trusted_race(void)
{
    p2p_server_config_t ca;
    su_config(&ca, &proto_echo, 1);
    ca.no_dial = true;
    ca.listen_port = -1;
    CHECK_OK(p2p_server_start(&srv_a, &ca));
    atomic_store(&flood_stop, 0);
    pthread_t pt[NFLOOD];
    for (int k = 0; k < NFLOOD; k++) CHECK(pthread_create(&pt[k], NULL, flood_trusted, NULL) == 0);
    unsigned fails = 0;
    for (unsigned i = 0; i < NT; i++) {
        p2p_node_t x = xnode(i);
        if (p2p_server_add_trusted(srv_a, x.id) || p2p_server_remove_trusted(srv_a, x.id)) fails++;
    }
    atomic_store(&flood_stop, 1);
    for (int k = 0; k < NFLOOD; k++) pthread_join(pt[k], NULL);
    p2p_server_stats_t st;
    settle(&st, &st.trusted_nodes);
    if (st.trusted_nodes != 1 || fails)
        printf("trusted: %u add/remove pairs (%u failed calls): the set holds %llu, not 1\n", NT,
               fails, (unsigned long long)st.trusted_nodes);
    CHECK(fails == 0);
    CHECK(st.trusted_nodes == 1);
    p2p_server_stop(srv_a);
}

static atomic_int cb_done;

static void remove_add(void *ctx, const p2p_peer_event_t *ev)
{
    (void)ctx;
    if (ev->type != P2P_PEER_EVENT_ADD || atomic_load(&cb_done)) return;
    unsigned fails = 0;
    for (unsigned i = 0; i < NS; i++) {
        p2p_node_t x = xnode(i);
        if (p2p_server_remove_peer(srv_a, x.id) || p2p_server_add_peer(srv_a, &x)) fails++;
    }
    atomic_store(&cb_done, fails ? -1 : 1);
}

static void test_static_race(void)
{
    p2p_server_config_t ca, cb;
    su_config(&ca, &proto_echo, 1);
    ca.no_dial = true; /* the static set is kept, nothing is dialled */
    ca.event_cb = remove_add;
    su_config(&cb, &proto_echo, 1);
    p2p_server_t *b = NULL;
    CHECK_OK(p2p_server_start(&srv_a, &ca));
    CHECK_OK(p2p_server_start(&b, &cb));
    atomic_store(&flood_stop, 0);
    pthread_t pt[NFLOOD];
    for (int k = 0; k < NFLOOD; k++) CHECK(pthread_create(&pt[k], NULL, flood_static, NULL) == 0);
    usleep(20 * 1000);
    /* B dials A: A's ADD event runs the calls on A's run loop */
    p2p_node_t na = su_node(srv_a);
    CHECK_OK(p2p_server_add_peer(b, &na));
    for (int i = 0; i < 10000 && !atomic_load(&cb_done); i++) usleep(1000);
    atomic_store(&flood_stop, 1);
    for (int k = 0; k < NFLOOD; k++) pthread_join(pt[k], NULL);
    CHECK(atomic_load(&cb_done) == 1);
    p2p_server_stats_t st;
    settle(&st, &st.static_nodes);
    if (st.static_nodes != NS + 1)
        printf("static: %u remove/add pairs: the set holds %llu, not %u\n", NS,
               (unsigned long long)st.static_nodes, NS + 1);
    CHECK(st.static_nodes == NS + 1);
    p2p_server_stop(srv_a);
    p2p_server_stop(b);
}

int main(void)
{
    test_trusted_race();
    test_static_race();
    return tu_done("server_apiorder_race");
}
