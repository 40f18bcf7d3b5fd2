/*
 * tests/actors/test_server_apiorder.c: API calls from one thread take
 * effect in the order they were made, as over geth's unbuffered channels,
 * even when the thread that applies them is busy and finds several queued.
 *
 * - test_static_order: the dialer is held inside the resolve hook (a static
 *   node without an address; one dial slot, which that resolution takes)
 *   while the test calls p2p_server_remove_peer(X) then
 *   p2p_server_add_peer(X).  X must end up static: once the resolution is
 *   answered and the slot frees, X is dialled and becomes a peer.
 * - test_trusted_order: X is trusted at start and connected; the run loop is
 *   held inside the event callback (X's ADD event) while the test calls
 *   p2p_server_remove_trusted(X) then p2p_server_add_trusted(X).  X must
 *   end up trusted (its peer info says so).
 */
#include <stdatomic.h>
#include <stdio.h>

#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};

/* A gate a server thread waits at (bounded) until the test opens it. */
typedef struct gate {
    atomic_int entered, open, calls;
} gate_t;

static void gate_hold(gate_t *g)
{
    if (atomic_fetch_add(&g->calls, 1) != 0) return; /* only the first call */
    atomic_store(&g->entered, 1);
    for (int i = 0; i < 5000 && !atomic_load(&g->open); i++) usleep(1000);
}

static bool gate_wait_entered(gate_t *g, unsigned timeout_ms)
{
    for (unsigned i = 0; i < timeout_ms && !atomic_load(&g->entered); i++) usleep(1000);
    return atomic_load(&g->entered);
}

static gate_t resolve_gate;

/* Holds p2p-dial on its first call; answers nothing (the test does). */
static void hold_resolve(void *ctx, const p2p_node_t *node)
{
    (void)ctx, (void)node;
    gate_hold(&resolve_gate);
}

static void test_static_order(void)
{
    p2p_server_config_t ca, cb;
    su_config(&cb, &proto_echo, 1);
    p2p_server_t *a = NULL, *b = NULL;
    CHECK_OK(p2p_server_start(&b, &cb));
    p2p_node_t nb = su_node(b);

    /* Z: a static node without an address, resolved through the hook */
    p2p_node_t z;
    memset(&z, 0, sizeof z);
    memset(z.id, 0x5a, 32);
    memset(z.pubkey, 0x5a, 64);
    su_config(&ca, &proto_echo, 1);
    ca.no_discovery = false;
    ca.resolve = hold_resolve;
    ca.max_active_dials = 1; /* Z's resolution takes the only slot */
    ca.static_nodes = &z;
    ca.nstatic = 1;
    CHECK_OK(p2p_server_start(&a, &ca));
    CHECK(gate_wait_entered(&resolve_gate, 5000));

    /* the dialer is inside the hook: both calls queue behind it */
    CHECK_OK(p2p_server_remove_peer(a, nb.id));
    CHECK_OK(p2p_server_add_peer(a, &nb));
    atomic_store(&resolve_gate.open, 1);
    usleep(200 * 1000); /* the dialer applies both while Z still holds the slot */
    CHECK_OK(p2p_server_resolved(a, z.id, NULL));
    /* the slot is free: X, static after the last call, is dialled */
    bool ok = su_wait_peers(a, 1, 5000);
    if (!ok) printf("static order: X was not dialled (removed after its add)\n");
    CHECK(ok);
    p2p_server_stop(a);
    p2p_server_stop(b);
}

static gate_t add_gate;

static void hold_add(void *ctx, const p2p_peer_event_t *ev)
{
    (void)ctx;
    if (ev->type == P2P_PEER_EVENT_ADD) gate_hold(&add_gate);
}

static void test_trusted_order(void)
{
    p2p_server_config_t ca, cb;
    su_config(&ca, &proto_echo, 1);
    su_config(&cb, &proto_echo, 1);
    p2p_server_t *a = NULL, *b = NULL;
    CHECK_OK(p2p_server_start(&b, &cb));
    p2p_node_t nb = su_node(b);
    ca.trusted_nodes = &nb;
    ca.ntrusted = 1;
    ca.event_cb = hold_add;
    CHECK_OK(p2p_server_start(&a, &ca));
    p2p_node_t na = su_node(a);
    CHECK_OK(p2p_server_add_peer(b, &na));
    /* A's run loop is inside B's ADD event: both calls queue behind it */
    CHECK(gate_wait_entered(&add_gate, 5000));
    CHECK_OK(p2p_server_remove_trusted(a, nb.id));
    CHECK_OK(p2p_server_add_trusted(a, nb.id));
    atomic_store(&add_gate.open, 1);
    CHECK(su_wait_peers(a, 1, 5000));
    p2p_peer_info_t info[4];
    size_t n = 0;
    CHECK_OK(p2p_server_peers(a, info, 4, &n));
    CHECK(n == 1);
    if (n == 1) {
        if (!info[0].trusted) printf("trusted order: X untrusted (removed after its add)\n");
        CHECK(info[0].trusted);
    }
    p2p_server_stop(a);
    p2p_server_stop(b);
}

int main(void)
{
    test_static_order();
    test_trusted_order();
    return tu_done("server_apiorder");
}
