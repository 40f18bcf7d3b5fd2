/* actors/dialsched property test: random event sequences (static set
 * changes, candidates, dial and resolve completions, inbound connections,
 * peer drops, clock jumps) played against a model of the shell and the run
 * loop.  After every step it checks the invariants:
 * - never more entries in flight than the cap on active dials;
 * - a new dial or resolution starts only within the slot formula
 *   min((maxDialed - dialedPeers) * 2, maxActive), and never once the dialed
 *   peers fill maxDialed;
 * - never dial self, a connected node, a node already in flight, a
 *   discovery candidate with an inbound connection pending (a static node
 *   is dialled regardless: the pending ID is not proven yet), a node
 *   without IP or TCP port, or an address outside NetRestrict;
 * - never start a node again within 35 s of its previous start (except the
 *   dial that follows the resolution of the same flight);
 * - resolutions only for static nodes, only with discovery on, and never
 *   more often than the backoff allows;
 * - the core's view (dialed peers, in-flight count) matches the model. */
#include "actors/dialsched.h"

#include "tests/tu.h"

#define S P2P_NS_PER_SEC
#define NNODES 48
#define SELF_IX 0

enum { M_IDLE, M_DIAL, M_RESOLVE };

typedef struct model {
    p2p_node_t node[NNODES]; /* the universe; endpoints as discovery sees them */
    bool is_static[NNODES];
    bool trusted[NNODES];
    int flight[NNODES];           /* M_* handed out by take() */
    bool flight_resolved[NNODES]; /* this flight began with a resolution */
    bool connected[NNODES];
    unsigned peer_flags[NNODES];
    unsigned pending[NNODES];
    uint64_t last_start[NNODES];
    bool started_once[NNODES];
    uint64_t last_resolve[NNODES]; /* also when the flight's resolution began */
    bool resolved_once[NNODES];
    unsigned dialed_peers;
    unsigned in_flight;
} model_t;

static p2p_netlist_t restrict_list;

static unsigned ix_of(const model_t *m, const uint8_t id[32])
{
    for (unsigned i = 0; i < NNODES; i++)
        if (memcmp(m->node[i].id, id, 32) == 0) return i;
    return NNODES;
}

static void make_universe(model_t *m, const uint8_t self[32])
{
    memset(m, 0, sizeof *m);
    for (unsigned i = 0; i < NNODES; i++) {
        p2p_node_t *n = &m->node[i];
        tu_rand_bytes(n->id, 32);
        tu_rand_bytes(n->pubkey, 64);
        switch (i % 6) {
        case 0:
            n->ep.ip = p2p_ip4(10, 0, 0, (uint8_t)i);
            break; /* inside NetRestrict */
        case 1:
            n->ep.ip = p2p_ip4(10, 1, 0, (uint8_t)i);
            break;
        case 2:
            n->ep.ip = p2p_ip4(8, 8, 8, (uint8_t)i);
            break; /* outside */
        case 3:
            break; /* no IP */
        default:
            n->ep.ip = p2p_ip4(10, 2, 0, (uint8_t)i);
            break;
        }
        n->ep.tcp = (i % 7 == 5) ? 0 : (uint16_t)(30000 + i);
        n->ep.udp = n->ep.tcp;
    }
    memcpy(m->node[SELF_IX].id, self, 32);
}

static unsigned budget(const p2p_dialsched_t *s, const model_t *m)
{
    unsigned b = 0;
    if (m->dialed_peers < s->max_dialed) b = (s->max_dialed - m->dialed_peers) * 2;
    return b < s->cfg.max_active_dials ? b : s->cfg.max_active_dials;
}

static bool has_ip(const p2p_node_t *n)
{
    return n->ep.ip.family != 0;
}

/* Takes every queued action and checks it against the model. */
static void take_all(p2p_dialsched_t *s, model_t *m, uint64_t now, unsigned before)
{
    p2p_dial_action_t a;
    unsigned started = 0;
    while (p2p_dialsched_take(s, &a)) {
        unsigned i = ix_of(m, a.node.id);
        CHECK(i < NNODES);
        if (i >= NNODES) continue;
        CHECK(i != SELF_IX);
        CHECK(!m->connected[i]);
        if (a.kind == P2P_DIAL_ACT_DIAL && !(a.flags & P2P_CONN_STATIC_DIALED))
            CHECK(m->pending[i] == 0);
        /* Never a second flight for a node in flight (continuations of a
         * flight are taken by take_continuation). */
        CHECK(m->flight[i] == M_IDLE);
        if (m->flight[i] != M_IDLE) continue;
        if (a.kind == P2P_DIAL_ACT_DIAL) {
            CHECK(has_ip(&a.node) && a.node.ep.tcp != 0);
            if (s->cfg.has_netrestrict) CHECK(p2p_netlist_contains(&restrict_list, &a.node.ep.ip));
            if (a.flags & P2P_CONN_STATIC_DIALED) {
                CHECK(m->is_static[i]);
                CHECK(!!(a.flags & P2P_CONN_TRUSTED) == m->trusted[i]);
            } else {
                CHECK(a.flags == P2P_CONN_DYN_DIALED);
            }
        } else {
            CHECK(a.kind == P2P_DIAL_ACT_RESOLVE);
            CHECK(s->cfg.resolve);
            CHECK(m->is_static[i]);
            if (m->resolved_once[i]) CHECK(now >= m->last_resolve[i] + 60 * S);
            m->last_resolve[i] = now;
            m->resolved_once[i] = true;
        }
        if (m->started_once[i]) CHECK(now >= m->last_start[i] + 35 * S);
        m->started_once[i] = true;
        m->last_start[i] = now;
        m->flight[i] = a.kind == P2P_DIAL_ACT_DIAL ? M_DIAL : M_RESOLVE;
        m->flight_resolved[i] = a.kind == P2P_DIAL_ACT_RESOLVE;
        m->in_flight++;
        started++;
    }
    if (started) {
        CHECK(m->dialed_peers < s->max_dialed);
        CHECK(m->in_flight <= budget(s, m) || m->in_flight <= before);
    }
    CHECK(m->in_flight <= s->cfg.max_active_dials);
    CHECK(p2p_dialsched_in_flight(s) == m->in_flight);
    CHECK(s->dial_peers == m->dialed_peers);
}

/* Continuation actions (a resolution after a failed connect, a dial after
 * a resolution) are taken here, right after the completion that queued
 * them, and checked against the flight they continue. */
static bool take_continuation(p2p_dialsched_t *s, model_t *m, unsigned i, uint64_t now)
{
    if (!p2p_dialsched_is_dialing(s, m->node[i].id)) return false;
    p2p_dial_action_t a;
    CHECK(p2p_dialsched_take(s, &a));
    CHECK(memcmp(a.node.id, m->node[i].id, 32) == 0);
    CHECK(!m->connected[i]); /* static: a pending inbound does not hold it back */
    if (a.kind == P2P_DIAL_ACT_RESOLVE) {
        CHECK(m->is_static[i]);
        if (m->resolved_once[i]) CHECK(now >= m->last_resolve[i] + 60 * S);
        m->last_resolve[i] = now;
        m->resolved_once[i] = true;
        m->flight[i] = M_RESOLVE;
        m->flight_resolved[i] = true;
    } else {
        CHECK(has_ip(&a.node) && a.node.ep.tcp != 0);
        if (s->cfg.has_netrestrict) CHECK(p2p_netlist_contains(&restrict_list, &a.node.ep.ip));
        CHECK(a.flags & P2P_CONN_STATIC_DIALED);
        m->flight[i] = M_DIAL;
    }
    return true;
}

static void complete_dial(p2p_dialsched_t *s, model_t *m, unsigned i, uint64_t now)
{
    p2p_dial_result_t r = (p2p_dial_result_t)(tu_rand() % 3);
    unsigned flags = 0;
    if (r == P2P_DIAL_OK) {
        /* The run loop admits the peer unless it got connected meanwhile. */
        if (m->connected[i] || i == SELF_IX) {
            r = P2P_DIAL_HANDSHAKE_FAILED;
        } else {
            flags = m->is_static[i] ? P2P_CONN_STATIC_DIALED : P2P_CONN_DYN_DIALED;
            CHECK_OK(p2p_dialsched_peer_added(s, m->node[i].id, flags, now));
            m->connected[i] = true;
            m->peer_flags[i] = flags;
            m->dialed_peers++;
        }
    }
    CHECK_OK(p2p_dialsched_dial_done(s, m->node[i].id, r, now));
    m->flight[i] = M_IDLE;
    if (take_continuation(s, m, i, now)) return;
    m->in_flight--;
}

static void complete_resolve(p2p_dialsched_t *s, model_t *m, unsigned i, uint64_t now)
{
    p2p_node_t found = m->node[i];
    bool ok = tu_rand() % 3 == 0;
    if (ok && !has_ip(&found)) {
        found.ep.ip = p2p_ip4(10, (uint8_t)(tu_rand() % 2 ? 3 : 0), 1, (uint8_t)i);
        found.ep.tcp = 40000;
    }
    if (ok && tu_rand() % 4 == 0) found.ep.ip = p2p_ip4(9, 9, 9, 9); /* moved outside */
    CHECK_OK(p2p_dialsched_resolve_done(s, m->node[i].id, ok ? &found : NULL, now));
    m->flight[i] = M_IDLE;
    if (take_continuation(s, m, i, now)) return;
    m->in_flight--;
}

static void run(uint64_t seed, bool resolve, bool netrestrict, unsigned max_peers, unsigned active)
{
    tu_seed(seed);
    p2p_dialsched_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    tu_rand_bytes(cfg.self, 32);
    cfg.max_peers = max_peers;
    cfg.max_active_dials = active;
    cfg.resolve = resolve;
    cfg.seed = seed;
    cfg.has_netrestrict = netrestrict;
    CHECK_OK(p2p_netlist_parse(&restrict_list, "10.0.0.0/15,10.2.0.0/16"));
    cfg.netrestrict = restrict_list;
    p2p_dialsched_t s;
    CHECK_OK(p2p_dialsched_init(&s, &cfg));
    static model_t m;
    make_universe(&m, cfg.self);
    uint64_t now = 1000 * S;

    for (int step = 0; step < 3000; step++) {
        unsigned i = (unsigned)(tu_rand() % NNODES);
        unsigned before = m.in_flight;
        switch (tu_rand() % 12) {
        case 0: /* add or update a static node */
            m.trusted[i] = tu_rand() % 2;
            m.is_static[i] = true;
            CHECK_OK(p2p_dialsched_add_static(&s, &m.node[i], m.trusted[i], now));
            break;
        case 1:
            CHECK(p2p_dialsched_remove_static(&s, m.node[i].id, now) == m.is_static[i]);
            m.is_static[i] = false;
            break;
        case 2:
        case 3: {
            p2p_dial_skip_t why = p2p_dialsched_add_candidate(&s, &m.node[i], now);
            if (i == SELF_IX) CHECK(why == P2P_DIAL_SKIP_SELF || why == P2P_DIAL_SKIP_NO_SLOT);
            if (m.connected[i] && why != P2P_DIAL_SKIP_SELF && why != P2P_DIAL_SKIP_NO_SLOT &&
                why != P2P_DIAL_SKIP_NO_PORT && why != P2P_DIAL_SKIP_DIALING)
                CHECK(why == P2P_DIAL_SKIP_CONNECTED);
            break;
        }
        case 4:
        case 5: { /* complete a random flight */
            unsigned j, k = (unsigned)(tu_rand() % NNODES);
            for (j = 0; j < NNODES; j++) {
                unsigned x = (k + j) % NNODES;
                if (m.flight[x] == M_DIAL) {
                    complete_dial(&s, &m, x, now);
                    break;
                }
                if (m.flight[x] == M_RESOLVE) {
                    complete_resolve(&s, &m, x, now);
                    break;
                }
            }
            break;
        }
        case 6: /* an inbound connection passes its encryption handshake */
            if (i == SELF_IX) break;
            CHECK_OK(p2p_dialsched_inbound_pending(&s, m.node[i].id, now));
            m.pending[i]++;
            break;
        case 7: /* a pending inbound connection becomes a peer or fails */
            if (!m.pending[i]) break;
            m.pending[i]--;
            if (!m.connected[i] && tu_rand() % 2) {
                unsigned f = P2P_CONN_INBOUND | (m.trusted[i] ? P2P_CONN_TRUSTED : 0u);
                CHECK_OK(p2p_dialsched_peer_added(&s, m.node[i].id, f, now));
                m.connected[i] = true;
                m.peer_flags[i] = f;
            } else {
                p2p_dialsched_inbound_done(&s, m.node[i].id, now);
            }
            break;
        case 8: /* a peer drops */
            CHECK(p2p_dialsched_peer_removed(&s, m.node[i].id, now) == m.connected[i]);
            if (m.connected[i] && (m.peer_flags[i] & P2P_CONN_DIALED)) m.dialed_peers--;
            m.connected[i] = false;
            break;
        case 9: /* the clock jumps to the next deadline or a bit */
        case 10: {
            uint64_t d = p2p_dialsched_next_deadline(&s, now);
            CHECK(d > now);
            if (d != P2P_DIAL_NO_DEADLINE && tu_rand() % 2) {
                now = d;
            } else {
                now += (tu_rand() % 20000) * (S / 1000);
            }
            p2p_dialsched_tick(&s, now);
            /* resolutions not answered within the timeout failed */
            for (unsigned x = 0; x < NNODES; x++) {
                if (m.flight[x] != M_RESOLVE ||
                    now < m.last_resolve[x] + P2P_DIAL_RESOLVE_TIMEOUT_NS)
                    continue;
                CHECK(!p2p_dialsched_is_dialing(&s, m.node[x].id) ||
                      p2p_dialsched_resolve_done(&s, m.node[x].id, NULL, now) == P2P_ENOTFOUND);
                m.flight[x] = M_IDLE;
                m.in_flight--;
            }
            break;
        }
        default:
            p2p_dialsched_tick(&s, now);
        }
        take_all(&s, &m, now, before);
    }
    p2p_dialsched_free(&s);
}

int main(void)
{
    uint64_t seed = 1;
    for (int k = 0; k < 12; k++) {
        run(seed++, true, true, 50, 50);
        run(seed++, true, false, 12, 5);
        run(seed++, false, true, 6, 50);
        run(seed++, true, true, 2, 1);
    }
    return tu_done("dialsched_prop");
}
