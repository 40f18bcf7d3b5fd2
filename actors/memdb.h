/*
 * actors/memdb.h: an in-memory node database for discovery nodes that run
 * without a data directory (tests, benchmarks, ephemeral nodes).
 *
 * It holds what actors/nodedb.h holds, with the same shapes (times in unix
 * seconds, "not stored" reads as 0), but nothing survives the process and
 * it is a bounded cache, not a store:
 *   - per (node ID, IP) items (last ping, last pong, findnode failures) in
 *     a set-associative table of P2P_MEMDB_WAYS ways; a full set forgets
 *     its least recently written item;
 *   - node records (seed candidates) in a table of fixed size; when full,
 *     the least recently written record is replaced.
 * Set indices come from a keyed hash (a random key per instance), so a
 * remote node cannot choose IDs that crowd one set without knowing the key.
 *
 * Allocation happens once, in p2p_memdb_new.  Lookups cost a hash and at
 * most P2P_MEMDB_WAYS comparisons; query_seeds scans the record table.
 *
 * Thread-safety: a handle belongs to one thread (the discovery table,
 * p2p-disc); no locking.
 */
#ifndef P2P_ACTORS_MEMDB_H
#define P2P_ACTORS_MEMDB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/node.h"

enum p2p_memdb_limits {
    P2P_MEMDB_WAYS = 4,            /* items per set */
    P2P_MEMDB_ITEMS_MAX = 1 << 22, /* per (id, ip) items */
    P2P_MEMDB_NODES_MAX = 1 << 16, /* node records */
};

typedef struct p2p_memdb p2p_memdb_t;

/* Creates a database holding about `items` (id, ip) items (rounded up to a
 * power of two, at least 64) and `nodes` records (at least 16).  key seeds
 * the set hash (pass random bytes).  Returns 0, P2P_EINVAL or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_memdb_new(p2p_memdb_t **db, size_t items, size_t nodes, uint64_t key);
void p2p_memdb_free(p2p_memdb_t *db);

/* Per (id, ip) items; ip must have family 4 or 6 (P2P_EINVAL otherwise).
 * Getters return 0 with *v = 0 when nothing is stored. */
P2P_MUST_CHECK int p2p_memdb_last_ping(p2p_memdb_t *db, uint64_t *t, const uint8_t id[32],
                                       const p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_memdb_set_last_ping(p2p_memdb_t *db, const uint8_t id[32],
                                           const p2p_ip_t *ip, uint64_t t);
P2P_MUST_CHECK int p2p_memdb_last_pong(p2p_memdb_t *db, uint64_t *t, const uint8_t id[32],
                                       const p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_memdb_set_last_pong(p2p_memdb_t *db, const uint8_t id[32],
                                           const p2p_ip_t *ip, uint64_t t);
P2P_MUST_CHECK int p2p_memdb_findfails(p2p_memdb_t *db, uint32_t *fails, const uint8_t id[32],
                                       const p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_memdb_set_findfails(p2p_memdb_t *db, const uint8_t id[32],
                                           const p2p_ip_t *ip, uint32_t fails);

/* Stores node n (the ENR bytes are not kept).  Returns 0 or P2P_EINVAL (no
 * address). */
P2P_MUST_CHECK int p2p_memdb_put_node(p2p_memdb_t *db, const p2p_node_t *n);

/* Up to n distinct stored nodes whose last pong at their stored IP is at
 * most max_age seconds before now and at most P2P_NODEDB_FUTURE seconds
 * after it (as p2p_nodedb_query_seeds), starting the scan at a random record.
 * Out: out[0..*nout).  Returns 0. */
P2P_MUST_CHECK int p2p_memdb_query_seeds(p2p_memdb_t *db, p2p_node_t *out, size_t *nout, size_t n,
                                         uint64_t max_age, uint64_t now);

/* Items and records currently held (tests). */
size_t p2p_memdb_items(const p2p_memdb_t *db);
size_t p2p_memdb_nodes(const p2p_memdb_t *db);

#endif
