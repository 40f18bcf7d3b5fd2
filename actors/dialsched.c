/*
 * actors/dialsched.c: the dial scheduler's pure core (see dialsched.h for
 * the rules and the call protocol).  Owned by the dialer thread `p2p-dial`;
 * nothing here blocks, sleeps, reads a clock or does I/O.
 *
 * State: the static set (array + id index), the peer set with the number
 * of peers we dialled, inbound connections pending, the dial history (id ->
 * expiry, with a queue of the entries in expiry order) and a fixed array of max_active_dials
 * in-flight entries, each queued (waiting for take()) or handed out, for a dial or a resolution.
 * After every event schedule() expires history and fills free slots with
 * static nodes in random order.
 */
#include "actors/dialsched.h"

#include <stdlib.h>
#include <string.h>

enum slot_state {
    SLOT_QUEUED_DIAL = 1,
    SLOT_DIALING,
    SLOT_QUEUED_RESOLVE,
    SLOT_RESOLVING,
};

static const char *const skip_names[P2P_DIAL_SKIP_COUNT] = {
    [P2P_DIAL_STARTED] = "started",
    [P2P_DIAL_SKIP_SELF] = "self",
    [P2P_DIAL_SKIP_NO_PORT] = "no-port",
    [P2P_DIAL_SKIP_DIALING] = "dialing",
    [P2P_DIAL_SKIP_CONNECTED] = "connected",
    [P2P_DIAL_SKIP_PENDING_INBOUND] = "pending-inbound",
    [P2P_DIAL_SKIP_NETRESTRICT] = "netrestrict",
    [P2P_DIAL_SKIP_HISTORY] = "history",
    [P2P_DIAL_SKIP_NO_IP] = "no-ip",
    [P2P_DIAL_SKIP_NO_SLOT] = "no-slot",
    [P2P_DIAL_SKIP_RESOLVE_BACKOFF] = "resolve-backoff",
    [P2P_DIAL_SKIP_NOMEM] = "nomem",
};

const char *p2p_dial_skip_name(p2p_dial_skip_t why)
{
    if ((unsigned)why >= P2P_DIAL_SKIP_COUNT) return "unknown";
    return skip_names[why];
}

unsigned p2p_dial_max_dialed(unsigned max_peers, unsigned dial_ratio, bool no_dial)
{
    if (no_dial || max_peers == 0) return 0;
    if (dial_ratio == 0) dial_ratio = P2P_DIAL_RATIO_DEFAULT;
    unsigned n = max_peers / dial_ratio;
    return n ? n : 1;
}

unsigned p2p_dial_max_inbound(unsigned max_peers, unsigned dial_ratio, bool no_dial)
{
    return max_peers - p2p_dial_max_dialed(max_peers, dial_ratio, no_dial);
}

/* xorshift64*: the random order of static dials (not security relevant). */
static uint64_t rnd(p2p_dialsched_t *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

int p2p_dialsched_init(p2p_dialsched_t *s, const p2p_dialsched_config_t *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    if (!s->cfg.max_active_dials) s->cfg.max_active_dials = P2P_DIAL_MAX_ACTIVE_DEFAULT;
    if (!s->cfg.dial_ratio) s->cfg.dial_ratio = P2P_DIAL_RATIO_DEFAULT;
    s->max_dialed = p2p_dial_max_dialed(cfg->max_peers, s->cfg.dial_ratio, cfg->no_dial);
    s->rng = cfg->seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    if (!s->rng) s->rng = 1;
    unsigned act = s->cfg.max_active_dials;
    int rc = 0;
    rc |= p2p_idmap_init(&s->peers, 2 * (size_t)cfg->max_peers + 8, 0, cfg->seed + 1);
    rc |= p2p_idmap_init(&s->pending, 16, 0, cfg->seed + 2);
    rc |= p2p_idmap_init(&s->history, 4 * (size_t)act, 0, cfg->seed + 3);
    rc |= p2p_idmap_init(&s->statics, 16, 0, cfg->seed + 4);
    rc |= p2p_idmap_init(&s->dialing, act, act, cfg->seed + 5);
    s->slot = calloc(act, sizeof s->slot[0]);
    if (rc || !s->slot) {
        p2p_dialsched_free(s);
        return P2P_ENOMEM;
    }
    return 0;
}

void p2p_dialsched_free(p2p_dialsched_t *s)
{
    p2p_idmap_free(&s->peers);
    p2p_idmap_free(&s->pending);
    p2p_idmap_free(&s->history);
    p2p_idmap_free(&s->statics);
    p2p_idmap_free(&s->dialing);
    free(s->stat);
    free(s->scratch);
    free(s->slot);
    p2p_idexpq_free(&s->hq);
    memset(s, 0, sizeof *s);
}

unsigned p2p_dialsched_free_slots(const p2p_dialsched_t *s)
{
    unsigned budget = 0;
    if (s->dial_peers < s->max_dialed) budget = (s->max_dialed - s->dial_peers) * 2;
    if (budget > s->cfg.max_active_dials) budget = s->cfg.max_active_dials;
    return budget > s->ndialing ? budget - s->ndialing : 0;
}

bool p2p_dialsched_is_dialing(const p2p_dialsched_t *s, const uint8_t id[32])
{
    return p2p_idmap_has(&s->dialing, id);
}

bool p2p_dialsched_is_connected(const p2p_dialsched_t *s, const uint8_t id[32])
{
    return p2p_idmap_has(&s->peers, id);
}

bool p2p_dialsched_is_static(const p2p_dialsched_t *s, const uint8_t id[32])
{
    return p2p_idmap_has(&s->statics, id);
}

static bool has_ip(const p2p_node_t *n)
{
    return n->ep.ip.family == 4 || n->ep.ip.family == 6;
}

/* checkDial: the order matters (it decides which reason is counted).
 * The pending-inbound check applies to discovery candidates (dynamic)
 * only: an inbound connection is pending from its RLPx auth on, before its
 * first frame's MAC proves the claimed ID, so anyone can claim a node's ID
 * for a handshake timeout at a time.  A static (or trusted) node must not
 * be kept from being dialled that way; if the inbound connection was real,
 * one of the two is refused "already connected" at its checkpoint. */
static p2p_dial_skip_t check_dial(const p2p_dialsched_t *s, const p2p_node_t *n, bool dynamic)
{
    if (memcmp(n->id, s->cfg.self, 32) == 0) return P2P_DIAL_SKIP_SELF;
    if (has_ip(n) && n->ep.tcp == 0) return P2P_DIAL_SKIP_NO_PORT;
    if (p2p_idmap_has(&s->dialing, n->id)) return P2P_DIAL_SKIP_DIALING;
    if (p2p_idmap_has(&s->peers, n->id)) return P2P_DIAL_SKIP_CONNECTED;
    if (dynamic && p2p_idmap_has(&s->pending, n->id)) return P2P_DIAL_SKIP_PENDING_INBOUND;
    if (has_ip(n) && s->cfg.has_netrestrict &&
        !p2p_netlist_contains(&s->cfg.netrestrict, &n->ep.ip))
        return P2P_DIAL_SKIP_NETRESTRICT;
    if (p2p_idmap_has(&s->history, n->id)) return P2P_DIAL_SKIP_HISTORY;
    return P2P_DIAL_STARTED;
}

p2p_dial_skip_t p2p_dialsched_static_blocked(const p2p_dialsched_t *s, const p2p_node_t *n)
{
    if (memcmp(n->id, s->cfg.self, 32) == 0) return P2P_DIAL_SKIP_SELF;
    if (has_ip(n) && n->ep.tcp == 0) return P2P_DIAL_SKIP_NO_PORT;
    if (has_ip(n) && s->cfg.has_netrestrict &&
        !p2p_netlist_contains(&s->cfg.netrestrict, &n->ep.ip))
        return P2P_DIAL_SKIP_NETRESTRICT;
    if (!has_ip(n) && !s->cfg.resolve) return P2P_DIAL_SKIP_NO_IP;
    /* NoDial or MaxPeers 0: no dial slot, ever */
    if (s->max_dialed == 0) return P2P_DIAL_SKIP_NO_SLOT;
    return P2P_DIAL_STARTED;
}

static p2p_dial_skip_t check_static(const p2p_dialsched_t *s, const p2p__dial_static_t *st,
                                    uint64_t now)
{
    p2p_dial_skip_t why = check_dial(s, &st->node, false);
    if (why != P2P_DIAL_STARTED || has_ip(&st->node)) return why;
    if (!s->cfg.resolve) return P2P_DIAL_SKIP_NO_IP;
    if (now < st->next_resolve) return P2P_DIAL_SKIP_RESOLVE_BACKOFF;
    return P2P_DIAL_STARTED;
}

/* Puts node in flight (queued for take()) and records it in the history.
 * The caller has checked that a slot is free and node is not in flight. */
static p2p_dial_skip_t start(p2p_dialsched_t *s, const p2p_node_t *node, unsigned flags,
                             enum slot_state state, uint64_t now)
{
    unsigned i = 0;
    while (i < s->cfg.max_active_dials && s->slot[i].used) i++;
    if (i == s->cfg.max_active_dials) return P2P_DIAL_SKIP_NO_SLOT;
    uint64_t exp = now + P2P_DIAL_HISTORY_EXPIRY_NS;
    if (p2p_idmap_put(&s->dialing, node->id, i)) return P2P_DIAL_SKIP_NOMEM;
    if (p2p_idexpq_put(&s->hq, &s->history, node->id, exp)) {
        p2p_idmap_del(&s->dialing, node->id);
        return P2P_DIAL_SKIP_NOMEM;
    }
    s->slot[i] = (p2p__dial_slot_t){
        .used = true, .state = (uint8_t)state, .flags = flags, .seq = ++s->seq, .node = *node};
    s->ndialing++;
    if (state == SLOT_QUEUED_RESOLVE) s->stats.resolves++;
    return P2P_DIAL_STARTED;
}

static void finish(p2p_dialsched_t *s, const uint8_t id[32])
{
    uint64_t *ix = p2p_idmap_get(&s->dialing, id);
    if (!ix) return;
    s->slot[*ix].used = false;
    p2p_idmap_del(&s->dialing, id);
    s->ndialing--;
}

static unsigned static_flags(const p2p__dial_static_t *st)
{
    return P2P_CONN_STATIC_DIALED | (st->trusted ? P2P_CONN_TRUSTED : 0u);
}

/* startStaticDials: fills free slots with due static nodes, random order. */
static void start_static_dials(p2p_dialsched_t *s, uint64_t now)
{
    unsigned slots = p2p_dialsched_free_slots(s);
    if (!slots || !s->nstatic) return;
    unsigned n = 0;
    for (unsigned i = 0; i < s->nstatic; i++)
        if (check_static(s, &s->stat[i], now) == P2P_DIAL_STARTED) s->scratch[n++] = i;
    while (slots && n) {
        unsigned k = (unsigned)(rnd(s) % n);
        const p2p__dial_static_t *st = &s->stat[s->scratch[k]];
        s->scratch[k] = s->scratch[--n];
        enum slot_state state = has_ip(&st->node) ? SLOT_QUEUED_DIAL : SLOT_QUEUED_RESOLVE;
        if (start(s, &st->node, static_flags(st), state, now) != P2P_DIAL_STARTED) break;
        if (state == SLOT_QUEUED_DIAL) s->stats.dials_static++;
        slots--;
    }
}

static void schedule(p2p_dialsched_t *s, uint64_t now)
{
    if (now > s->now) s->now = now;
    /* history entries whose 35 s have passed (expired at exactly exp) */
    p2p_idexpq_expire(&s->hq, &s->history, now);
    start_static_dials(s, now);
}

void p2p_dialsched_tick(p2p_dialsched_t *s, uint64_t now)
{
    for (unsigned i = 0; i < s->cfg.max_active_dials; i++) {
        p2p__dial_slot_t *sl = &s->slot[i];
        if (!sl->used || sl->state != SLOT_RESOLVING || now < sl->resolve_deadline) continue;
        s->stats.resolve_timeouts++;
        uint8_t id[32];
        memcpy(id, sl->node.id, 32);
        if (p2p_dialsched_resolve_done(s, id, NULL, now)) abort(); /* RESOLVING: found */
    }
    schedule(s, now);
}

int p2p_dialsched_add_static(p2p_dialsched_t *s, const p2p_node_t *node, bool trusted, uint64_t now)
{
    uint64_t *ix = p2p_idmap_get(&s->statics, node->id);
    if (ix) {
        p2p__dial_static_t *st = &s->stat[*ix];
        st->node = *node;
        st->trusted = trusted;
        schedule(s, now);
        return 0;
    }
    if (s->nstatic >= P2P_DIAL_MAX_STATIC) return P2P_EFULL;
    if (s->nstatic == s->stat_cap) {
        unsigned cap = s->stat_cap ? 2 * s->stat_cap : 16;
        p2p__dial_static_t *ns = realloc(s->stat, cap * sizeof ns[0]);
        if (!ns) return P2P_ENOMEM;
        s->stat = ns;
        unsigned *sc = realloc(s->scratch, cap * sizeof sc[0]);
        if (!sc) return P2P_ENOMEM;
        s->scratch = sc;
        s->stat_cap = cap;
    }
    int rc = p2p_idmap_put(&s->statics, node->id, s->nstatic);
    if (rc) return rc;
    s->stat[s->nstatic++] = (p2p__dial_static_t){
        .node = *node, .trusted = trusted, .resolve_wait = P2P_DIAL_RESOLVE_INITIAL_NS};
    schedule(s, now);
    return 0;
}

bool p2p_dialsched_remove_static(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now)
{
    uint64_t *ix = p2p_idmap_get(&s->statics, id);
    if (!ix) return false;
    unsigned i = (unsigned)*ix, last = --s->nstatic;
    p2p_idmap_del(&s->statics, id);
    if (i != last) {
        s->stat[i] = s->stat[last];
        uint64_t *moved = p2p_idmap_get(&s->statics, s->stat[i].node.id);
        if (moved) *moved = i;
    }
    schedule(s, now);
    return true;
}

p2p_dial_skip_t p2p_dialsched_add_candidate(p2p_dialsched_t *s, const p2p_node_t *node,
                                            uint64_t now)
{
    schedule(s, now); /* static nodes have priority over candidates */
    p2p_dial_skip_t why = P2P_DIAL_SKIP_NO_SLOT;
    if (p2p_dialsched_free_slots(s) > 0) {
        why = check_dial(s, node, true);
        if (why == P2P_DIAL_STARTED && !has_ip(node)) why = P2P_DIAL_SKIP_NO_IP;
        if (why == P2P_DIAL_STARTED)
            why = start(s, node, P2P_CONN_DYN_DIALED, SLOT_QUEUED_DIAL, now);
    }
    if (why == P2P_DIAL_STARTED)
        s->stats.dials_dyn++;
    else
        s->stats.skipped[why]++;
    return why;
}

int p2p_dialsched_peer_added(p2p_dialsched_t *s, const uint8_t id[32], unsigned flags, uint64_t now)
{
    uint64_t *old = p2p_idmap_get(&s->peers, id);
    if (old && (*old & P2P_CONN_DIALED)) s->dial_peers--;
    int rc = p2p_idmap_put(&s->peers, id, flags);
    if (rc == 0 && (flags & P2P_CONN_DIALED)) s->dial_peers++;
    if (flags & P2P_CONN_INBOUND) p2p_dialsched_inbound_done(s, id, now);
    schedule(s, now);
    return rc;
}

bool p2p_dialsched_peer_removed(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now)
{
    uint64_t *old = p2p_idmap_get(&s->peers, id);
    if (!old) return false;
    if (*old & P2P_CONN_DIALED) s->dial_peers--;
    p2p_idmap_del(&s->peers, id);
    schedule(s, now);
    return true;
}

int p2p_dialsched_inbound_pending(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now)
{
    uint64_t *n = p2p_idmap_get(&s->pending, id);
    int rc = 0;
    if (n)
        ++*n;
    else
        rc = p2p_idmap_put(&s->pending, id, 1);
    schedule(s, now);
    return rc;
}

void p2p_dialsched_inbound_done(p2p_dialsched_t *s, const uint8_t id[32], uint64_t now)
{
    uint64_t *n = p2p_idmap_get(&s->pending, id);
    if (n && --*n == 0) p2p_idmap_del(&s->pending, id);
    schedule(s, now);
}

/* The static entry for id, or NULL. */
static p2p__dial_static_t *find_static(p2p_dialsched_t *s, const uint8_t id[32])
{
    uint64_t *ix = p2p_idmap_get(&s->statics, id);
    return ix ? &s->stat[*ix] : NULL;
}

int p2p_dialsched_dial_done(p2p_dialsched_t *s, const uint8_t id[32], p2p_dial_result_t result,
                            uint64_t now)
{
    uint64_t *ix = p2p_idmap_get(&s->dialing, id);
    if (!ix || s->slot[*ix].state != SLOT_DIALING) return P2P_ENOTFOUND;
    p2p__dial_slot_t *sl = &s->slot[*ix];
    switch (result) {
    case P2P_DIAL_OK:
        s->stats.dial_ok++;
        break;
    case P2P_DIAL_CONNECT_FAILED:
        s->stats.dial_connect_failed++;
        break;
    default:
        s->stats.dial_handshake_failed++;
        break;
    }
    /* The node may have moved: re-resolve a static node we could not reach. */
    p2p__dial_static_t *st = find_static(s, id);
    if (result == P2P_DIAL_CONNECT_FAILED && (sl->flags & P2P_CONN_STATIC_DIALED) && st &&
        s->cfg.resolve && now >= st->next_resolve && !p2p_idmap_has(&s->peers, id)) {
        sl->state = SLOT_QUEUED_RESOLVE;
        sl->seq = ++s->seq;
        s->stats.resolves++;
        schedule(s, now);
        return 0;
    }
    finish(s, id);
    schedule(s, now);
    return 0;
}

int p2p_dialsched_resolve_done(p2p_dialsched_t *s, const uint8_t id[32], const p2p_node_t *node,
                               uint64_t now)
{
    uint64_t *ix = p2p_idmap_get(&s->dialing, id);
    if (!ix || s->slot[*ix].state != SLOT_RESOLVING) return P2P_ENOTFOUND;
    p2p__dial_slot_t *sl = &s->slot[*ix];
    p2p__dial_static_t *st = find_static(s, id);
    bool found = node && memcmp(node->id, id, 32) == 0 && has_ip(node) && node->ep.tcp != 0;
    if (!found) {
        s->stats.resolve_failed++;
        if (st) {
            /* the wait doubles with each failure before it is applied:
             * 120 s after the first, then 240 s, ... up to 1 h */
            st->resolve_wait *= 2;
            if (st->resolve_wait > P2P_DIAL_RESOLVE_MAX_NS)
                st->resolve_wait = P2P_DIAL_RESOLVE_MAX_NS;
            st->next_resolve = now + st->resolve_wait;
        }
        finish(s, id);
        schedule(s, now);
        return 0;
    }
    s->stats.resolve_ok++;
    if (!st) { /* removed from the static set meanwhile */
        finish(s, id);
        schedule(s, now);
        return 0;
    }
    st->node.ep = node->ep;
    if (node->seq > st->node.seq) st->node.seq = node->seq;
    st->resolve_wait = P2P_DIAL_RESOLVE_INITIAL_NS;
    st->next_resolve = now + P2P_DIAL_RESOLVE_INITIAL_NS;
    /* a pending inbound connection does not count (see check_dial) */
    bool connected = p2p_idmap_has(&s->peers, id);
    if (s->cfg.has_netrestrict && !p2p_netlist_contains(&s->cfg.netrestrict, &node->ep.ip)) {
        s->stats.resolved_restricted++;
        connected = true;
    }
    if (connected) {
        finish(s, id);
        schedule(s, now);
        return 0;
    }
    sl->node = st->node;
    sl->flags = static_flags(st);
    sl->state = SLOT_QUEUED_DIAL;
    sl->seq = ++s->seq;
    s->stats.dials_static++;
    schedule(s, now);
    return 0;
}

bool p2p_dialsched_take(p2p_dialsched_t *s, p2p_dial_action_t *act)
{
    p2p__dial_slot_t *best = NULL;
    for (unsigned i = 0; i < s->cfg.max_active_dials; i++) {
        p2p__dial_slot_t *sl = &s->slot[i];
        if (!sl->used || (sl->state != SLOT_QUEUED_DIAL && sl->state != SLOT_QUEUED_RESOLVE))
            continue;
        if (!best || sl->seq < best->seq) best = sl;
    }
    if (!best) return false;
    if (best->state == SLOT_QUEUED_DIAL) {
        act->kind = P2P_DIAL_ACT_DIAL;
        best->state = SLOT_DIALING;
    } else {
        act->kind = P2P_DIAL_ACT_RESOLVE;
        best->state = SLOT_RESOLVING;
        best->resolve_deadline = s->now + P2P_DIAL_RESOLVE_TIMEOUT_NS;
    }
    act->flags = best->flags;
    act->node = best->node;
    return true;
}

uint64_t p2p_dialsched_next_deadline(const p2p_dialsched_t *s, uint64_t now)
{
    uint64_t d = p2p_idexpq_next(&s->hq);
    for (unsigned i = 0; i < s->cfg.max_active_dials; i++) {
        const p2p__dial_slot_t *sl = &s->slot[i];
        if (sl->used && sl->state == SLOT_RESOLVING && sl->resolve_deadline < d)
            d = sl->resolve_deadline;
    }
    if (s->cfg.resolve) {
        for (unsigned i = 0; i < s->nstatic; i++) {
            const p2p__dial_static_t *st = &s->stat[i];
            if (!has_ip(&st->node) && st->next_resolve > now && st->next_resolve < d)
                d = st->next_resolve;
        }
    }
    return d;
}
