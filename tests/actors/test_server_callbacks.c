/*
 * tests/actors/test_server_callbacks.c: the server API called from protocol
 * callbacks, which run on the peer's own connection thread.
 *
 *   remove_self   a peer's on_msg calls p2p_server_remove_peer for that
 *                 same peer: the call returns 0 at once (it cannot wait
 *                 for a connection that ends only once its callback
 *                 returns), and the peer then leaves with Disconnect
 *                 "requested" sent by us.
 *   remove_cross  two peers' on_msg callbacks, inside at the same time,
 *                 each remove the other peer: neither waits for the other
 *                 (each connection would end only once its callback, which
 *                 waits for the other, returned), both return 0 at once,
 *                 and both peers leave.
 *   remove_event  the event callback (on the run loop) calls
 *                 p2p_server_remove_peer for the peer of an ADD event: it
 *                 returns 0 and the peer leaves with Disconnect
 *                 "requested" (a peerop could not run there: the loop
 *                 would wait for itself).
 *
 * The hub's op_timeout_ms is 3 s and its disc_linger_ms 0.5 s: a call that
 * waited for the departure would take 3.5 s; the checks allow 1.5 s.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "core/log.h"

#include "tests/actors/srv_util.h"

#define CODE_REMOVE_SELF 0
#define CODE_REMOVE_OTHER 1
#define LIMIT_MS 1500

typedef struct hub {
    p2p_server_t *srv;
    pthread_mutex_t mu;
    uint8_t ids[2][32]; /* the first two peers' ids, in on_start order */
    int nids;
    _Atomic int arrived;    /* remove_cross callbacks inside on_msg */
    _Atomic int ncalls;     /* remove calls made */
    _Atomic int rc[2];      /* their results, by the caller's index */
    _Atomic uint64_t ms[2]; /* their durations */
} hub_t;

static hub_t hub;

static int hub_start(p2p_peer_t *peer, void *ctx, void **state)
{
    pthread_mutex_lock(&hub.mu);
    if (hub.nids < 2) memcpy(hub.ids[hub.nids++], p2p_peer_id(peer), 32);
    pthread_mutex_unlock(&hub.mu);
    return 0;
}

static int index_of(const uint8_t id[32])
{
    pthread_mutex_lock(&hub.mu);
    int ix = -1;
    for (int i = 0; i < hub.nids; i++)
        if (memcmp(hub.ids[i], id, 32) == 0) ix = i;
    pthread_mutex_unlock(&hub.mu);
    return ix;
}

static int hub_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                   size_t len)
{
    int me = index_of(p2p_peer_id(peer));
    if (me < 0) return 0;
    uint8_t target[32];
    if (code == CODE_REMOVE_SELF) {
        memcpy(target, p2p_peer_id(peer), 32);
    } else {
        /* both callbacks inside before either calls (bounded: 3 s) */
        atomic_fetch_add(&hub.arrived, 1);
        for (int i = 0; i < 3000 && atomic_load(&hub.arrived) < 2; i++) usleep(1000);
        pthread_mutex_lock(&hub.mu);
        memcpy(target, hub.ids[1 - me], 32);
        pthread_mutex_unlock(&hub.mu);
    }
    uint64_t t0 = p2p_now_ns();
    int rc = p2p_server_remove_peer(hub.srv, target);
    atomic_store(&hub.ms[me], (p2p_now_ns() - t0) / P2P_NS_PER_MS);
    atomic_store(&hub.rc[me], rc);
    atomic_fetch_add(&hub.ncalls, 1);
    return 0;
}

static const p2p_protocol_t proto_hub = {
    .name = "chat", .version = 1, .length = 2, .on_start = hub_start, .on_msg = hub_msg};

/* A client server: keeps a reference to its one peer (the hub). */
typedef struct client {
    p2p_server_t *srv;
    _Atomic(p2p_peer_t *) peer;
    p2p_protocol_t proto;
} client_t;

static int client_start(p2p_peer_t *peer, void *ctx, void **state)
{
    client_t *cl = ctx;
    p2p_peer_ref(peer);
    p2p_peer_t *old = atomic_exchange(&cl->peer, peer);
    if (old) p2p_peer_unref(old);
    return 0;
}

/* The hub's event callback: in remove_event removes the first peer from
 * its ADD event, then records the event.  The result is stored before the
 * event is recorded: the test reads event_rc once it finds the event. */
static _Atomic int remove_on_add = 0, event_rc = 1;

static void hub_event(void *ctx, const p2p_peer_event_t *ev)
{
    if (ev->type == P2P_PEER_EVENT_ADD && atomic_exchange(&remove_on_add, 0))
        atomic_store(&event_rc, p2p_server_remove_peer(hub.srv, ev->peer));
    su_events_cb(ctx, ev);
}

static void start_hub(su_events_t *ev)
{
    memset(&hub, 0, sizeof hub);
    pthread_mutex_init(&hub.mu, NULL);
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_hub, 1);
    cfg.op_timeout_ms = 3000;
    cfg.disc_linger_ms = 500;
    cfg.event_cb = hub_event;
    cfg.event_ctx = ev;
    CHECK_OK(p2p_server_start(&hub.srv, &cfg));
}

/* Starts a client that dials the hub; true once its peer handle is set. */
static bool start_client(client_t *cl, const p2p_node_t *hub_node)
{
    memset(cl, 0, sizeof *cl);
    cl->proto = (p2p_protocol_t){
        .name = "chat", .version = 1, .length = 2, .ctx = cl, .on_start = client_start};
    p2p_server_config_t cfg;
    su_config(&cfg, &cl->proto, 1);
    cfg.static_nodes = hub_node;
    cfg.nstatic = 1;
    CHECK_OK(p2p_server_start(&cl->srv, &cfg));
    for (int i = 0; i < 5000 && !atomic_load(&cl->peer); i++) usleep(1000);
    return atomic_load(&cl->peer) != NULL;
}

static void stop_client(client_t *cl)
{
    p2p_server_stop(cl->srv);
    p2p_peer_unref(atomic_exchange(&cl->peer, NULL));
}

/* Waits (bounded) for the hub's DROP event of id and checks that we sent
 * Disconnect "requested". */
static void check_dropped(su_events_t *ev, const uint8_t id[32])
{
    p2p_peer_event_t e;
    bool found = su_events_find(ev, &e, P2P_PEER_EVENT_DROP, id, 5000);
    CHECK(found);
    if (!found) return;
    CHECK(e.reason == P2P_DISC_REQUESTED);
    CHECK(!e.remote_requested);
}

static void test_remove_self(void)
{
    static su_events_t ev;
    su_events_init(&ev);
    start_hub(&ev);
    p2p_node_t hn = su_node(hub.srv);
    client_t cl;
    CHECK(start_client(&cl, &hn));
    CHECK(su_wait_peers(hub.srv, 1, 5000));
    CHECK_OK(p2p_peer_send(atomic_load(&cl.peer), "chat", CODE_REMOVE_SELF, NULL, 0));
    for (int i = 0; i < 10000 && atomic_load(&hub.ncalls) < 1; i++) usleep(1000);
    CHECK(atomic_load(&hub.ncalls) == 1);
    CHECK_OK(atomic_load(&hub.rc[0]));
    uint64_t ms = atomic_load(&hub.ms[0]);
    if (ms >= LIMIT_MS)
        fprintf(stderr, "remove_self: the call took %llu ms\n", (unsigned long long)ms);
    CHECK(ms < LIMIT_MS);
    check_dropped(&ev, hub.ids[0]);
    CHECK(su_wait_peers(hub.srv, 0, 5000));
    stop_client(&cl);
    p2p_server_stop(hub.srv);
}

static void test_remove_cross(void)
{
    static su_events_t ev;
    su_events_init(&ev);
    start_hub(&ev);
    p2p_node_t hn = su_node(hub.srv);
    client_t cl[2];
    for (int i = 0; i < 2; i++) CHECK(start_client(&cl[i], &hn));
    CHECK(su_wait_peers(hub.srv, 2, 5000));
    for (int i = 0; i < 2; i++)
        CHECK_OK(p2p_peer_send(atomic_load(&cl[i].peer), "chat", CODE_REMOVE_OTHER, NULL, 0));
    for (int i = 0; i < 15000 && atomic_load(&hub.ncalls) < 2; i++) usleep(1000);
    CHECK(atomic_load(&hub.ncalls) == 2);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(atomic_load(&hub.rc[i]));
        uint64_t ms = atomic_load(&hub.ms[i]);
        if (ms >= LIMIT_MS)
            fprintf(stderr, "remove_cross: call %d took %llu ms\n", i, (unsigned long long)ms);
        CHECK(ms < LIMIT_MS);
        check_dropped(&ev, hub.ids[i]);
    }
    CHECK(su_wait_peers(hub.srv, 0, 5000));
    for (int i = 0; i < 2; i++) stop_client(&cl[i]);
    p2p_server_stop(hub.srv);
}

static void test_remove_event(void)
{
    static su_events_t ev;
    su_events_init(&ev);
    start_hub(&ev);
    atomic_store(&remove_on_add, 1);
    p2p_node_t hn = su_node(hub.srv);
    client_t cl;
    memset(&cl, 0, sizeof cl);
    (void)start_client(&cl, &hn);
    p2p_peer_event_t add;
    CHECK(su_events_find(&ev, &add, P2P_PEER_EVENT_ADD, NULL, 5000));
    CHECK_OK(atomic_load(&event_rc));
    check_dropped(&ev, add.peer);
    CHECK(su_wait_peers(hub.srv, 0, 5000));
    stop_client(&cl);
    p2p_server_stop(hub.srv);
}

int main(void)
{
    p2p_log_set_level(P2P_LOG_WARN);
    test_remove_self();
    test_remove_cross();
    test_remove_event();
    return tu_done("server_callbacks");
}
