/*
 * actors/checks.c: the run loop's checkpoint checks (see actors/checks.h).
 * Owned by the run loop thread `p2p-run`, except p2p_checks_identity which
 * is pure and runs on a peer thread.  No I/O, no clock.
 */
#include "actors/checks.h"

#include <string.h>

#include "crypto/keccak.h"

int p2p_checks_init(p2p_checks_t *c, const p2p_checks_config_t *cfg)
{
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    int rc = p2p_idmap_init(&c->peers, (size_t)cfg->max_peers + 8, 0, cfg->seed);
    if (rc == 0)
        rc = p2p_idmap_init(&c->trusted, 16, P2P_CHECKS_MAX_TRUSTED, cfg->seed ^ 0x5bd1e995u);
    if (rc) p2p_checks_free(c);
    return rc;
}

void p2p_checks_free(p2p_checks_t *c)
{
    p2p_idmap_free(&c->peers);
    p2p_idmap_free(&c->trusted);
    memset(c, 0, sizeof *c);
}

/* postHandshakeChecks, in geth's order. */
static bool post_checks(const p2p_checks_t *c, uint8_t *reason, const uint8_t id[32],
                        unsigned flags)
{
    bool trusted = flags & P2P_CONN_TRUSTED;
    if (!trusted && c->peers.n >= c->cfg.max_peers) {
        *reason = P2P_DISC_TOO_MANY_PEERS;
    } else if (!trusted && (flags & P2P_CONN_INBOUND) && c->inbound >= c->cfg.max_inbound) {
        *reason = P2P_DISC_TOO_MANY_PEERS;
    } else if (p2p_idmap_has(&c->peers, id)) {
        *reason = P2P_DISC_ALREADY_CONNECTED;
    } else if (memcmp(id, c->cfg.self, 32) == 0) {
        *reason = P2P_DISC_SELF;
    } else {
        return true;
    }
    return false;
}

/* The trusted set alone decides P2P_CONN_TRUSTED: a flag the connection
 * carries from elsewhere (a static dial of a node trusted at startup) is
 * set or cleared to match the set as it is now. */
static unsigned trusted_flag(const p2p_checks_t *c, const uint8_t id[32], unsigned flags)
{
    flags &= ~(unsigned)P2P_CONN_TRUSTED;
    return p2p_idmap_has(&c->trusted, id) ? flags | P2P_CONN_TRUSTED : flags;
}

bool p2p_checks_post_handshake(const p2p_checks_t *c, uint8_t *reason, unsigned *flags,
                               const uint8_t id[32])
{
    *flags = trusted_flag(c, id, *flags);
    return post_checks(c, reason, id, *flags);
}

bool p2p_checks_add_peer(const p2p_checks_t *c, uint8_t *reason, unsigned *flags,
                         const uint8_t id[32], unsigned matched_caps)
{
    *flags = trusted_flag(c, id, *flags);
    if (c->cfg.nprotocols > 0 && matched_caps == 0) {
        *reason = P2P_DISC_USELESS_PEER;
        return false;
    }
    return post_checks(c, reason, id, *flags);
}

int p2p_checks_add(p2p_checks_t *c, const uint8_t id[32], unsigned flags)
{
    if (p2p_idmap_has(&c->peers, id)) return P2P_EEXIST;
    int rc = p2p_idmap_put(&c->peers, id, flags);
    if (rc) return rc;
    if (flags & P2P_CONN_INBOUND) c->inbound++;
    return 0;
}

bool p2p_checks_remove(p2p_checks_t *c, const uint8_t id[32])
{
    uint64_t *f = p2p_idmap_get(&c->peers, id);
    if (!f) return false;
    if ((*f & P2P_CONN_INBOUND) && c->inbound > 0) c->inbound--;
    p2p_idmap_del(&c->peers, id);
    return true;
}

int p2p_checks_add_trusted(p2p_checks_t *c, const uint8_t id[32])
{
    int rc = p2p_idmap_put(&c->trusted, id, 1);
    if (rc) return rc;
    uint64_t *f = p2p_idmap_get(&c->peers, id);
    if (f) *f |= P2P_CONN_TRUSTED;
    return 0;
}

void p2p_checks_remove_trusted(p2p_checks_t *c, const uint8_t id[32])
{
    p2p_idmap_del(&c->trusted, id);
    uint64_t *f = p2p_idmap_get(&c->peers, id);
    if (f) *f &= ~(uint64_t)P2P_CONN_TRUSTED;
}

bool p2p_checks_is_trusted(const p2p_checks_t *c, const uint8_t id[32])
{
    return p2p_idmap_has(&c->trusted, id);
}

int p2p_checks_peer_flags(const p2p_checks_t *c, const uint8_t id[32])
{
    uint64_t *f = p2p_idmap_get(&c->peers, id);
    return f ? (int)*f : -1;
}

bool p2p_checks_identity(uint8_t *reason, const uint8_t *hello_id, size_t hello_idlen,
                         const uint8_t expected[32])
{
    static const uint8_t zero[64];
    if (!hello_id || hello_idlen != 64 || memcmp(hello_id, zero, 64) == 0) {
        *reason = P2P_DISC_INVALID_IDENTITY;
        return false;
    }
    uint8_t h[32];
    p2p_keccak256(h, hello_id, 64);
    if (memcmp(h, expected, 32) != 0) {
        *reason = P2P_DISC_UNEXPECTED_IDENTITY;
        return false;
    }
    return true;
}
