/*
 * tests/actors/disc_testlib.h: helpers for the discovery core tests: virtual
 * time, deterministic secp256k1 identities, an in-memory node database
 * (linear search, fine for a few hundred records) and hand-made packets.
 * Header-only (static inline) so each test stays one file.
 */
#ifndef P2P_TESTS_DISC_TESTLIB_H
#define P2P_TESTS_DISC_TESTLIB_H

#include <stdlib.h>
#include <string.h>

#include "actors/disc_core.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "tests/tu.h"

#define TL_UNIX_BASE 1800000000ull /* virtual wall clock at ns = 0 */
#define TL_MS 1000000ull

static inline p2p_disc_time_t tl_time(uint64_t ns)
{
    p2p_disc_time_t t = {.ns = ns, .unix_s = TL_UNIX_BASE + ns / 1000000000ull};
    return t;
}

/* A deterministic identity (key from the test PRNG). */
typedef struct tl_ident {
    uint8_t priv[32];
    uint8_t pub[64];
    uint8_t id[32];
} tl_ident_t;

static inline void tl_ident(tl_ident_t *k)
{
    do tu_rand_bytes(k->priv, 32);
    while (p2p_secp_privkey_check(k->priv) != 0);
    if (p2p_secp_pubkey(k->pub, k->priv) != 0) abort();
    p2p_node_id(k->id, k->pub);
}

static inline p2p_node_t tl_node(const tl_ident_t *k, p2p_ip_t ip, uint16_t port)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    memcpy(n.id, k->id, 32);
    memcpy(n.pubkey, k->pub, 64);
    n.ep.ip = ip;
    n.ep.udp = port;
    n.ep.tcp = port;
    return n;
}

/* ---- in-memory node database ---- */

typedef struct tl_dbrec {
    uint8_t id[32];
    p2p_ip_t ip;
    uint64_t lastping, lastpong;
    uint32_t fails;
} tl_dbrec_t;

typedef struct tl_db {
    unsigned n, cap;
    tl_dbrec_t *r;
    unsigned nnodes;
    p2p_node_t nodes[64];
    size_t enrlen[64];
    unsigned puts;
    size_t seeds_asked; /* n of the last query_seeds */
    int fail;           /* when set, every call fails with P2P_EDB */
} tl_db_t;

static inline tl_dbrec_t *tl_db_rec(tl_db_t *db, const uint8_t id[32], const p2p_ip_t *ip,
                                    int create)
{
    for (unsigned i = 0; i < db->n; i++)
        if (memcmp(db->r[i].id, id, 32) == 0 && p2p_ip_equal(&db->r[i].ip, ip)) return &db->r[i];
    if (!create) return NULL;
    if (db->n == db->cap) {
        db->cap = db->cap ? db->cap * 2 : 64;
        db->r = realloc(db->r, db->cap * sizeof db->r[0]);
        if (!db->r) abort();
    }
    tl_dbrec_t *r = &db->r[db->n++];
    memset(r, 0, sizeof *r);
    memcpy(r->id, id, 32);
    r->ip = *ip;
    return r;
}

static inline int tl_db_last_ping(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    tl_dbrec_t *r = tl_db_rec(db, id, ip, 0);
    *t = r ? r->lastping : 0;
    return 0;
}
static inline int tl_db_set_last_ping(void *ctx, const uint8_t id[32], const p2p_ip_t *ip,
                                      uint64_t t)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    tl_db_rec(db, id, ip, 1)->lastping = t;
    return 0;
}
static inline int tl_db_last_pong(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    tl_dbrec_t *r = tl_db_rec(db, id, ip, 0);
    *t = r ? r->lastpong : 0;
    return 0;
}
static inline int tl_db_set_last_pong(void *ctx, const uint8_t id[32], const p2p_ip_t *ip,
                                      uint64_t t)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    tl_db_rec(db, id, ip, 1)->lastpong = t;
    return 0;
}
static inline int tl_db_findfails(void *ctx, uint32_t *f, const uint8_t id[32], const p2p_ip_t *ip)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    tl_dbrec_t *r = tl_db_rec(db, id, ip, 0);
    *f = r ? r->fails : 0;
    return 0;
}
static inline int tl_db_set_findfails(void *ctx, const uint8_t id[32], const p2p_ip_t *ip,
                                      uint32_t f)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    tl_db_rec(db, id, ip, 1)->fails = f;
    return 0;
}
static inline int tl_db_put_node(void *ctx, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    tl_db_t *db = ctx;
    if (db->fail) return P2P_EDB;
    db->puts++;
    for (unsigned i = 0; i < db->nnodes; i++)
        if (memcmp(db->nodes[i].id, n->id, 32) == 0) {
            db->nodes[i] = *n;
            db->enrlen[i] = enr ? enrlen : 0;
            return 0;
        }
    if (db->nnodes < 64) {
        db->enrlen[db->nnodes] = enr ? enrlen : 0;
        db->nodes[db->nnodes++] = *n;
    }
    return 0;
}
/* Seeds: stored nodes whose pong at their address is recent enough. */
static inline int tl_db_query_seeds(void *ctx, p2p_node_t *out, size_t *nout, size_t n,
                                    uint64_t max_age, uint64_t now)
{
    tl_db_t *db = ctx;
    *nout = 0;
    db->seeds_asked = n;
    if (db->fail) return P2P_EDB;
    for (unsigned i = 0; i < db->nnodes && *nout < n; i++) {
        tl_dbrec_t *r = tl_db_rec(db, db->nodes[i].id, &db->nodes[i].ep.ip, 0);
        if (r && r->lastpong && r->lastpong + max_age >= now) out[(*nout)++] = db->nodes[i];
    }
    return 0;
}

static inline p2p_disc_db_t tl_db_ops(tl_db_t *db)
{
    p2p_disc_db_t o = {
        .ctx = db,
        .last_ping = tl_db_last_ping,
        .set_last_ping = tl_db_set_last_ping,
        .last_pong = tl_db_last_pong,
        .set_last_pong = tl_db_set_last_pong,
        .findfails = tl_db_findfails,
        .set_findfails = tl_db_set_findfails,
        .put_node = tl_db_put_node,
        .query_seeds = tl_db_query_seeds,
    };
    return o;
}

static inline void tl_db_free(tl_db_t *db)
{
    free(db->r);
    memset(db, 0, sizeof *db);
}

/* ---- packets ---- */

/* A received packet of type from k, with a fresh random hash and an
 * expiration 20 s after now. */
static inline void tl_pkt(p2p_discv4_packet_t *p, const tl_ident_t *k, uint8_t type,
                          p2p_disc_time_t now)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    p->expiration = now.unix_s + 20;
    tu_rand_bytes(p->hash, 32);
    memcpy(p->sender, k->pub, 64);
    memcpy(p->sender_id, k->id, 32);
}

#endif
