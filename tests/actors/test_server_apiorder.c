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
 * - test_set_limits: the static and trusted sets an API caller (devp2pd's
 *   admin_addPeer / admin_addTrustedPeer) fills are bounded: 500 adds past
 *   P2P_SERVER_MAX_STATIC / _TRUSTED are refused (P2P_EFULL from the call,
 *   or dropped where the set is applied) and counted, each set holds
 *   exactly its limit, and a removal makes room again; a config over a
 *   limit is refused at start.
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

/* A distinct node per i (IDs only matter: the server never dials). */
static p2p_node_t limit_node(unsigned i)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    memcpy(n.id, &i, sizeof i);
    n.id[31] = 0x1d;
    memcpy(n.pubkey, &i, sizeof i);
    n.ep.ip = p2p_ip4(127, 0, 0, 1);
    n.ep.tcp = n.ep.udp = 9;
    return n;
}

/* Waits (at most 5 s) until *field == want; returns whether it got there. */
static bool wait_stat(p2p_server_t *s, const uint64_t *field_of_copy, p2p_server_stats_t *st,
                      uint64_t want)
{
    for (int i = 0; i < 2500; i++) {
        p2p_server_get_stats(s, st);
        if (*field_of_copy == want) return true;
        usleep(2000);
    }
    return false;
}

/* additions past a set's limit in test_set_limits */
enum { EXTRA = 500 };

/* Adds limit_node(0 .. limit + EXTRA - 1) to the static set (or the
 * trusted one) and waits until the set holds limit and EXTRA additions
 * were counted full; prints the tally if not, or if a call failed
 * otherwise.  Returns whether both held. */
static bool fill_set(p2p_server_t *a, bool trusted, unsigned limit, p2p_server_stats_t *st)
{
    unsigned ok = 0, full = 0, other = 0;
    for (unsigned i = 0; i < limit + EXTRA; i++) {
        p2p_node_t n = limit_node(i);
        int rc = trusted ? p2p_server_add_trusted(a, n.id) : p2p_server_add_peer(a, &n);
        if (rc == 0)
            ok++;
        else if (rc == P2P_EFULL)
            full++;
        else
            other++;
    }
    const uint64_t *size = trusted ? &st->trusted_nodes : &st->static_nodes;
    const uint64_t *nfull = trusted ? &st->trusted_full : &st->static_full;
    bool applied = wait_stat(a, size, st, limit) && wait_stat(a, nfull, st, EXTRA);
    if (!applied || other)
        printf("%s limit: %u accepted, %u refused, %u failed; the set holds %llu, %llu counted "
               "full\n",
               trusted ? "trusted" : "static", ok, full, other, (unsigned long long)*size,
               (unsigned long long)*nfull);
    return applied && other == 0;
}

static void test_set_limits(void)
{
    p2p_server_config_t ca;
    su_config(&ca, &proto_echo, 1);
    ca.no_dial = true; /* nothing is dialled: the sets alone are under test */
    ca.listen_port = -1;
    p2p_server_t *a = NULL;
    CHECK_OK(p2p_server_start(&a, &ca));
    p2p_server_stats_t st;

    /* static: the limit, then EXTRA more */
    CHECK(fill_set(a, false, P2P_SERVER_MAX_STATIC, &st));
    CHECK(st.static_nodes == P2P_SERVER_MAX_STATIC && st.static_full == EXTRA);
    /* once the set is full the call itself says so, a node already in it included */
    p2p_node_t more = limit_node(100000), first = limit_node(0);
    CHECK_ERR(p2p_server_add_peer(a, &more), P2P_EFULL);
    CHECK_ERR(p2p_server_add_peer(a, &first), P2P_EFULL);
    p2p_server_get_stats(a, &st);
    CHECK(st.static_full == EXTRA + 2);
    /* a removal makes room, for an add right behind it too */
    CHECK_OK(p2p_server_remove_peer(a, first.id));
    CHECK_OK(p2p_server_add_peer(a, &more));
    CHECK(wait_stat(a, &st.static_nodes, &st, P2P_SERVER_MAX_STATIC));
    CHECK(st.static_full == EXTRA + 2);
    CHECK_OK(p2p_server_remove_peer(a, more.id));
    CHECK(wait_stat(a, &st.static_nodes, &st, P2P_SERVER_MAX_STATIC - 1));
    CHECK_OK(p2p_server_add_peer(a, &more));
    CHECK(wait_stat(a, &st.static_nodes, &st, P2P_SERVER_MAX_STATIC));
    CHECK(st.static_full == EXTRA + 2);

    /* trusted: the same */
    CHECK(fill_set(a, true, P2P_SERVER_MAX_TRUSTED, &st));
    CHECK(st.trusted_nodes == P2P_SERVER_MAX_TRUSTED && st.trusted_full == EXTRA);
    CHECK_ERR(p2p_server_add_trusted(a, more.id), P2P_EFULL);
    p2p_server_get_stats(a, &st);
    CHECK(st.trusted_full == EXTRA + 1);
    CHECK_OK(p2p_server_remove_trusted(a, first.id));
    CHECK_OK(p2p_server_add_trusted(a, more.id));
    CHECK(wait_stat(a, &st.trusted_nodes, &st, P2P_SERVER_MAX_TRUSTED));
    CHECK(st.trusted_full == EXTRA + 1);
    p2p_server_stop(a);

    /* a config over either limit is refused at start */
    static p2p_node_t many[P2P_SERVER_MAX_STATIC + 1];
    for (unsigned i = 0; i < P2P_SERVER_MAX_STATIC + 1; i++) many[i] = limit_node(i);
    su_config(&ca, &proto_echo, 1);
    ca.static_nodes = many;
    ca.nstatic = P2P_SERVER_MAX_STATIC + 1;
    a = NULL;
    CHECK_ERR(p2p_server_start(&a, &ca), P2P_EINVAL);
    CHECK(a == NULL);
    if (a) p2p_server_stop(a);
    a = NULL;
    su_config(&ca, &proto_echo, 1);
    ca.trusted_nodes = many;
    ca.ntrusted = P2P_SERVER_MAX_TRUSTED + 1;
    CHECK_ERR(p2p_server_start(&a, &ca), P2P_EINVAL);
    CHECK(a == NULL);
    if (a) p2p_server_stop(a);
}

int main(void)
{
    test_static_order();
    test_trusted_order();
    test_set_limits();
    return tu_done("server_apiorder");
}
