/*
 * actors/idmap.h: a map from 32-byte keys (node IDs, or IP addresses packed
 * by p2p_idmap_ip_key) to 64-bit values, for the pure cores of the dialer,
 * the run loop and the listener (peer sets, trusted set, dial and inbound
 * histories).
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones).  The hash is keyed by a per-map seed so remote parties who
 * choose node IDs or IPv6 addresses cannot aim their keys at one probe run.
 * The table grows (doubling, load <= 1/2) up to `max` entries; `max` 0 means
 * no limit other than memory.  It shrinks again (halving while at most 1/8
 * full, never below its initial size) on deletion, remove_if and clear, so
 * a peak's capacity (10,000 peers: 32768 slots, 1.3 MiB) is given back when
 * the peak ends.  Allocation happens only at init, on growth and on
 * shrinking (a failed shrink keeps the larger table).
 *
 * Thread-safety: a map belongs to one thread (the core that owns it).
 */
#ifndef P2P_ACTORS_IDMAP_H
#define P2P_ACTORS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/node.h"

typedef struct p2p_idmap {
    uint8_t (*keys)[32];
    uint64_t *vals;
    uint8_t *used;
    size_t cap;     /* slots, a power of two */
    size_t n;       /* entries */
    size_t max;     /* entry limit, 0 = none */
    size_t min_cap; /* initial slots: the table never shrinks below */
    uint64_t seed;
} p2p_idmap_t;

/* Sets up an empty map with room for `initial` entries before growing.
 * Returns 0 or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_idmap_init(p2p_idmap_t *m, size_t initial, size_t max, uint64_t seed);
void p2p_idmap_free(p2p_idmap_t *m);
void p2p_idmap_clear(p2p_idmap_t *m);

/* Returns a pointer to key's value (valid until the next put, delete or clear), or
 * NULL if absent. */
uint64_t *p2p_idmap_get(const p2p_idmap_t *m, const uint8_t key[32]);
static inline bool p2p_idmap_has(const p2p_idmap_t *m, const uint8_t key[32])
{
    return p2p_idmap_get(m, key) != NULL;
}

/* Inserts key or replaces its value.  Returns 0, P2P_EFULL (max entries
 * reached; the map is unchanged) or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_idmap_put(p2p_idmap_t *m, const uint8_t key[32], uint64_t val);

/* Removes key; returns true if it was present. */
bool p2p_idmap_del(p2p_idmap_t *m, const uint8_t key[32]);

/* Removes every entry for which pred(ctx, key, value) returns true; returns
 * how many were removed.  pred must give the same answer when asked twice
 * about one entry (an entry may be visited twice, never skipped). */
size_t p2p_idmap_remove_if(p2p_idmap_t *m,
                           bool (*pred)(void *ctx, const uint8_t *key, uint64_t val), void *ctx);

/* Iteration: start with *pos = 0; returns false when done.  The map must
 * not be changed during an iteration. */
bool p2p_idmap_next(const p2p_idmap_t *m, size_t *pos, const uint8_t **key, uint64_t *val);

/* Packs an IP address (family and bytes) into a 32-byte key. */
void p2p_idmap_ip_key(uint8_t key[32], const p2p_ip_t *ip);

/* ---- expiry queue: a map whose values are expiry times -------------------
 *
 * For the histories (key -> expiry, dropped once due): the entries in
 * expiry order beside the map, a ring of cap from head, so expiry pops the
 * due ones from the front (O(1) an entry) instead of scanning the map.  A
 * key put again gets a newer copy further back; its old copy is skipped
 * when it comes due.  The owners' clocks are monotonic and each history
 * has one lifetime, so a put is an append; an earlier time (a test's
 * clock) is inserted from the tail.  The ring grows by doubling (from 64
 * entries) and, like the map, gives a peak's capacity back: after an
 * expiry or an eviction it halves while at most 1/8 full, never below 64
 * entries (a failed shrink keeps the larger ring). */
typedef struct p2p_idexp_ent {
    uint8_t key[32];
    uint64_t exp;
} p2p_idexp_ent_t;

typedef struct p2p_idexpq {
    p2p_idexp_ent_t *q;
    size_t cap, head, len;
} p2p_idexpq_t;

void p2p_idexpq_free(p2p_idexpq_t *q);
/* Puts key -> exp into m and queues it.  Returns 0, or P2P_EFULL (m's
 * limit) or P2P_ENOMEM with m unchanged. */
P2P_MUST_CHECK int p2p_idexpq_put(p2p_idexpq_t *q, p2p_idmap_t *m, const uint8_t key[32],
                                  uint64_t exp);
/* Deletes from m every entry queued with exp <= now. */
void p2p_idexpq_expire(p2p_idexpq_t *q, p2p_idmap_t *m, uint64_t now);
/* Deletes from m the entry that expires first (before its time), dropping
 * the stale copies queued ahead of it.  Returns true if it deleted one. */
bool p2p_idexpq_evict_oldest(p2p_idexpq_t *q, p2p_idmap_t *m);
/* The earliest expiry queued, UINT64_MAX if none. */
static inline uint64_t p2p_idexpq_next(const p2p_idexpq_t *q)
{
    return q->len ? q->q[q->head].exp : UINT64_MAX;
}

#endif
