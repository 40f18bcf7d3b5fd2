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
    return p2p_idmap_init(&in->history, 64, in->cfg.history_max, cfg->seed);
}

void p2p_inbound_free(p2p_inbound_t *in)
{
    p2p_idmap_free(&in->history);
    p2p_idexpq_free(&in->hq);
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

static p2p_inbound_verdict_t reject(p2p_inbound_t *in, p2p_inbound_verdict_t v)
{
    in->stats.rejected[v]++;
    return v;
}

void p2p_inbound_expire(p2p_inbound_t *in, uint64_t now)
{
    /* entries whose 30 s have passed (expired at exactly exp) */
    p2p_idexpq_expire(&in->hq, &in->history, now);
}

p2p_inbound_verdict_t p2p_inbound_check(p2p_inbound_t *in, const p2p_ip_t *ip, uint64_t now)
{
    if (ip->family != 4 && ip->family != 6) {
        in->stats.admitted++;
        return P2P_INBOUND_OK;
    }
    if (in->cfg.has_netrestrict && !p2p_netlist_contains(&in->cfg.netrestrict, ip))
        return reject(in, P2P_INBOUND_NETRESTRICT);
    p2p_inbound_expire(in, now);
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
    int rc = p2p_idexpq_put(&in->hq, &in->history, key, exp);
    if (rc == P2P_EFULL && p2p_idexpq_evict_oldest(&in->hq, &in->history)) {
        in->stats.history_evicted++;
        rc = p2p_idexpq_put(&in->hq, &in->history, key, exp);
    }
    if (rc) return reject(in, P2P_INBOUND_HISTORY_FULL);
    in->stats.admitted++;
    return P2P_INBOUND_OK;
}
