/*
 * actors/inbound.c: the listener's admission core (see actors/inbound.h).
 * Owned by the listener thread `p2p-listen`; no I/O, no clock.
 */
#include "actors/inbound.h"

#include <stdlib.h>
#include <string.h>

static const char *const verdict_names[P2P_INBOUND_VERDICT_COUNT] = {
    [P2P_INBOUND_OK] = "ok",
    [P2P_INBOUND_NETRESTRICT] = "netrestrict",
    [P2P_INBOUND_THROTTLED] = "too-many-attempts",
    [P2P_INBOUND_HISTORY_FULL] = "history-full",
};

const char *p2p_inbound_verdict_name(p2p_inbound_verdict_t v)
{
    if ((unsigned)v >= P2P_INBOUND_VERDICT_COUNT) return "unknown";
    return verdict_names[v];
}

int p2p_inbound_init(p2p_inbound_t *in, const p2p_inbound_config_t *cfg)
{
    memset(in, 0, sizeof *in);
    in->cfg = *cfg;
    if (!in->cfg.max_pending) in->cfg.max_pending = P2P_MAX_PENDING_PEERS_DEFAULT;
    if (!in->cfg.history_max) in->cfg.history_max = P2P_INBOUND_HISTORY_MAX_DEFAULT;
    in->history_min = UINT64_MAX;
    return p2p_idmap_init(&in->history, 64, in->cfg.history_max, cfg->seed);
}

void p2p_inbound_free(p2p_inbound_t *in)
{
    p2p_idmap_free(&in->history);
    free(in->hq);
    memset(in, 0, sizeof *in);
}

int p2p_inbound_acquire(p2p_inbound_t *in)
{
    if (in->pending >= in->cfg.max_pending) {
        in->stats.slots_exhausted++;
        return P2P_ELIMIT;
    }
    in->pending++;
    return 0;
}

int p2p_inbound_release(p2p_inbound_t *in)
{
    if (in->pending == 0) return P2P_ESTATE;
    in->pending--;
    return 0;
}

static p2p__inbound_hist_t *hq_at(const p2p_inbound_t *in, size_t i)
{
    return &in->hq[(in->hq_head + i) % in->hq_cap];
}

/* True if the queue entry is the map's current one (always, as entries
 * are never renewed; checked before deleting all the same). */
static bool hq_live(const p2p_inbound_t *in, const p2p__inbound_hist_t *e)
{
    const uint64_t *exp = p2p_idmap_get((p2p_idmap_t *)&in->history, e->key);
    return exp && *exp == e->exp;
}

/* Makes room for one more entry: grows the ring (every entry is one of
 * the map's, so it needs at most history_max).  Returns 0 or P2P_ENOMEM. */
static int hq_reserve(p2p_inbound_t *in)
{
    if (in->hq_len < in->hq_cap) return 0;
    size_t cap = in->hq_cap ? 2 * in->hq_cap : 64;
    if (cap > in->cfg.history_max) cap = in->cfg.history_max;
    if (cap <= in->hq_len) return P2P_ENOMEM; /* the map is full too */
    p2p__inbound_hist_t *q = malloc(cap * sizeof q[0]);
    if (!q) return P2P_ENOMEM;
    for (size_t i = 0; i < in->hq_len; i++) q[i] = *hq_at(in, i);
    free(in->hq);
    in->hq = q;
    in->hq_cap = cap;
    in->hq_head = 0;
    return 0;
}

/* Appends (key, exp) in expiry order: at the end, as the listener's clock
 * is monotonic and every entry lives 30 s; an earlier time (a test's
 * clock) is inserted from the tail. */
static void hq_push(p2p_inbound_t *in, const uint8_t key[32], uint64_t exp)
{
    size_t i = in->hq_len++;
    while (i > 0 && hq_at(in, i - 1)->exp > exp) {
        *hq_at(in, i) = *hq_at(in, i - 1);
        i--;
    }
    p2p__inbound_hist_t *e = hq_at(in, i);
    memcpy(e->key, key, 32);
    e->exp = exp;
}

/* Drops the history entries whose 30 s have passed (expired at exactly
 * exp), oldest first. */
static void expire(p2p_inbound_t *in, uint64_t now)
{
    if (now < in->history_min) return;
    while (in->hq_len && hq_at(in, 0)->exp <= now) {
        const p2p__inbound_hist_t *e = hq_at(in, 0);
        if (hq_live(in, e)) p2p_idmap_del(&in->history, e->key);
        in->hq_head = (in->hq_head + 1) % in->hq_cap;
        in->hq_len--;
    }
    in->history_min = in->hq_len ? hq_at(in, 0)->exp : UINT64_MAX;
}

static p2p_inbound_verdict_t reject(p2p_inbound_t *in, p2p_inbound_verdict_t v)
{
    in->stats.rejected[v]++;
    return v;
}

p2p_inbound_verdict_t p2p_inbound_check(p2p_inbound_t *in, const p2p_ip_t *ip, uint64_t now)
{
    if (ip->family != 4 && ip->family != 6) {
        in->stats.admitted++;
        return P2P_INBOUND_OK;
    }
    if (in->cfg.has_netrestrict && !p2p_netlist_contains(&in->cfg.netrestrict, ip))
        return reject(in, P2P_INBOUND_NETRESTRICT);
    expire(in, now);
    uint8_t key[32];
    p2p_idmap_ip_key(key, ip);
    /* LAN IPs are exempt: geth records them too but never looks, which
     * with its unbounded history changes nothing; here the history is
     * bounded, and recording them would only let LAN connections fill it
     * and lock Internet IPs out */
    if (p2p_ip_is_lan(ip) && !in->cfg.throttle_lan) {
        in->stats.admitted++;
        return P2P_INBOUND_OK;
    }
    if (p2p_idmap_has(&in->history, key)) return reject(in, P2P_INBOUND_THROTTLED);
    uint64_t exp = now + P2P_INBOUND_THROTTLE_NS;
    if (hq_reserve(in) != 0 || p2p_idmap_put(&in->history, key, exp) != 0)
        return reject(in, P2P_INBOUND_HISTORY_FULL);
    hq_push(in, key, exp);
    if (exp < in->history_min) in->history_min = exp;
    in->stats.admitted++;
    return P2P_INBOUND_OK;
}
