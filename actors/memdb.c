/*
 * actors/memdb.c: the in-memory node database (see memdb.h).
 *
 * Items: nsets sets of P2P_MEMDB_WAYS slots.  A slot is free when its stamp
 * is 0; every write stamps the slot with a counter, and a write to a full
 * set takes the slot with the lowest stamp.  Records: a flat table with the
 * same stamp rule, found by linear search (the table is small: it only
 * keeps seed candidates).
 *
 * Owner: the discovery table thread; no locking, no allocation after new.
 */
#include "actors/memdb.h"

#include <stdlib.h>
#include <string.h>

#include "actors/nodedb.h"

typedef struct memdb_item {
    uint64_t stamp; /* 0: free */
    uint8_t id[32];
    p2p_ip_t ip;
    uint64_t lastping, lastpong;
    uint32_t fails;
} memdb_item_t;

typedef struct memdb_node {
    uint64_t stamp; /* 0: free */
    p2p_node_t n;
} memdb_node_t;

struct p2p_memdb {
    uint64_t key, clock, rng;
    size_t nsets, nitems, nnodes_cap, nnodes;
    memdb_item_t *items; /* nsets * WAYS */
    memdb_node_t *nodes;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int p2p_memdb_new(p2p_memdb_t **out, size_t items, size_t nodes, uint64_t key)
{
    *out = NULL;
    if (items > P2P_MEMDB_ITEMS_MAX || nodes > P2P_MEMDB_NODES_MAX) return P2P_EINVAL;
    if (items < 64) items = 64;
    if (nodes < 16) nodes = 16;
    size_t nsets = 1;
    while (nsets * P2P_MEMDB_WAYS < items) nsets <<= 1;
    p2p_memdb_t *db = calloc(1, sizeof *db);
    if (!db) return P2P_ENOMEM;
    db->items = calloc(nsets * P2P_MEMDB_WAYS, sizeof db->items[0]);
    db->nodes = calloc(nodes, sizeof db->nodes[0]);
    if (!db->items || !db->nodes) {
        p2p_memdb_free(db);
        return P2P_ENOMEM;
    }
    db->key = key;
    db->rng = mix64(key ^ 0x6a09e667f3bcc909ull);
    db->nsets = nsets;
    db->nnodes_cap = nodes;
    *out = db;
    return 0;
}

void p2p_memdb_free(p2p_memdb_t *db)
{
    if (!db) return;
    free(db->items);
    free(db->nodes);
    free(db);
}

static memdb_item_t *item_find(p2p_memdb_t *db, const uint8_t id[32], const p2p_ip_t *ip,
                               int create)
{
    uint64_t h, a = 0;
    memcpy(&h, id, 8);
    memcpy(&a, ip->addr + (ip->family == 6 ? 8 : 0), 8);
    h = mix64(h ^ db->key) ^ mix64(a + ip->family);
    memdb_item_t *set = &db->items[(mix64(h) & (db->nsets - 1)) * P2P_MEMDB_WAYS];
    memdb_item_t *victim = &set[0];
    for (unsigned i = 0; i < P2P_MEMDB_WAYS; i++) {
        memdb_item_t *it = &set[i];
        if (it->stamp && memcmp(it->id, id, 32) == 0 && p2p_ip_equal(&it->ip, ip)) return it;
        if (it->stamp < victim->stamp) victim = it;
    }
    if (!create) return NULL;
    if (victim->stamp == 0) db->nitems++;
    memset(victim, 0, sizeof *victim);
    memcpy(victim->id, id, 32);
    victim->ip = *ip;
    return victim;
}

static int get_item(p2p_memdb_t *db, const memdb_item_t **it, const uint8_t id[32],
                    const p2p_ip_t *ip)
{
    *it = NULL;
    if (ip->family != 4 && ip->family != 6) return P2P_EINVAL;
    *it = item_find(db, id, ip, 0);
    return 0;
}

static memdb_item_t *put_item(p2p_memdb_t *db, const uint8_t id[32], const p2p_ip_t *ip)
{
    if (ip->family != 4 && ip->family != 6) return NULL;
    memdb_item_t *it = item_find(db, id, ip, 1);
    it->stamp = ++db->clock;
    return it;
}

int p2p_memdb_last_ping(p2p_memdb_t *db, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    const memdb_item_t *it;
    int rc = get_item(db, &it, id, ip);
    *t = it && rc == 0 ? it->lastping : 0;
    return rc;
}

int p2p_memdb_set_last_ping(p2p_memdb_t *db, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    memdb_item_t *it = put_item(db, id, ip);
    if (!it) return P2P_EINVAL;
    it->lastping = t;
    return 0;
}

int p2p_memdb_last_pong(p2p_memdb_t *db, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    const memdb_item_t *it;
    int rc = get_item(db, &it, id, ip);
    *t = it && rc == 0 ? it->lastpong : 0;
    return rc;
}

int p2p_memdb_set_last_pong(p2p_memdb_t *db, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    memdb_item_t *it = put_item(db, id, ip);
    if (!it) return P2P_EINVAL;
    it->lastpong = t;
    return 0;
}

int p2p_memdb_findfails(p2p_memdb_t *db, uint32_t *fails, const uint8_t id[32], const p2p_ip_t *ip)
{
    const memdb_item_t *it;
    int rc = get_item(db, &it, id, ip);
    *fails = it && rc == 0 ? it->fails : 0;
    return rc;
}

int p2p_memdb_set_findfails(p2p_memdb_t *db, const uint8_t id[32], const p2p_ip_t *ip,
                            uint32_t fails)
{
    memdb_item_t *it = put_item(db, id, ip);
    if (!it) return P2P_EINVAL;
    it->fails = fails;
    return 0;
}

int p2p_memdb_put_node(p2p_memdb_t *db, const p2p_node_t *n)
{
    if (n->ep.ip.family != 4 && n->ep.ip.family != 6) return P2P_EINVAL;
    memdb_node_t *victim = &db->nodes[0];
    for (size_t i = 0; i < db->nnodes_cap; i++) {
        memdb_node_t *e = &db->nodes[i];
        if (e->stamp && memcmp(e->n.id, n->id, 32) == 0) {
            victim = e;
            break;
        }
        if (e->stamp < victim->stamp) victim = e;
    }
    if (victim->stamp == 0) db->nnodes++;
    victim->n = *n;
    victim->stamp = ++db->clock;
    return 0;
}

int p2p_memdb_query_seeds(p2p_memdb_t *db, p2p_node_t *out, size_t *nout, size_t n,
                          uint64_t max_age, uint64_t now)
{
    *nout = 0;
    db->rng = mix64(db->rng + 0x9e3779b97f4a7c15ull);
    size_t start = (size_t)(db->rng % db->nnodes_cap);
    for (size_t k = 0; k < db->nnodes_cap && *nout < n; k++) {
        const memdb_node_t *e = &db->nodes[(start + k) % db->nnodes_cap];
        if (!e->stamp) continue;
        const memdb_item_t *it = item_find(db, e->n.id, &e->n.ep.ip, 0);
        /* a pong ahead of now (the wall clock stepped back) counts as now
         * up to P2P_NODEDB_FUTURE seconds, as in the node DB */
        if (!it || it->lastpong == 0 || it->lastpong > now + P2P_NODEDB_FUTURE ||
            (now > it->lastpong && now - it->lastpong > max_age))
            continue;
        out[(*nout)++] = e->n;
    }
    return 0;
}

size_t p2p_memdb_items(const p2p_memdb_t *db)
{
    return db->nitems;
}

size_t p2p_memdb_nodes(const p2p_memdb_t *db)
{
    return db->nnodes;
}
