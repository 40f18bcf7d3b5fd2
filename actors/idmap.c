/*
 * actors/idmap.c: seeded open-addressing map from 32-byte keys to uint64
 * values (see actors/idmap.h).  Owned by one thread; no locking.
 *
 * Invariant: every entry sits in the probe run that starts at its home
 * slot, with no empty slot in between; deletion shifts later run members
 * back instead of leaving tombstones, so lookups stay O(run length).
 */
#include "actors/idmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static size_t home(const p2p_idmap_t *m, const uint8_t *key)
{
    uint64_t h = m->seed;
    for (int i = 0; i < 4; i++) h = mix64(h ^ load64(key + 8 * i)) + 0x9e3779b97f4a7c15ULL;
    return (size_t)h & (m->cap - 1);
}

static int alloc_table(p2p_idmap_t *m, size_t cap)
{
    m->keys = calloc(cap, sizeof m->keys[0]);
    m->vals = calloc(cap, sizeof m->vals[0]);
    m->used = calloc(cap, 1);
    if (!m->keys || !m->vals || !m->used) {
        free(m->keys);
        free(m->vals);
        free(m->used);
        m->keys = NULL;
        m->vals = NULL;
        m->used = NULL;
        return P2P_ENOMEM;
    }
    m->cap = cap;
    return 0;
}

int p2p_idmap_init(p2p_idmap_t *m, size_t initial, size_t max, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->max = max;
    m->seed = mix64(seed ^ 0x6a09e667f3bcc908ULL);
    size_t cap = 8;
    while (cap < 2 * initial && cap < ((size_t)1 << 40)) cap *= 2;
    m->min_cap = cap;
    return alloc_table(m, cap);
}

void p2p_idmap_free(p2p_idmap_t *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

static int resize(p2p_idmap_t *m, size_t cap);

/* Gives back a peak's capacity: halves the table while it is at most 1/8
 * full and above its initial size (grow at 1/2, shrink at 1/8: a put and a
 * delete at one border cannot make it flip back and forth). */
static void maybe_shrink(p2p_idmap_t *m)
{
    size_t cap = m->cap;
    while (cap > m->min_cap && 8 * m->n < cap) cap /= 2;
    if (cap != m->cap) (void)resize(m, cap);
}

void p2p_idmap_clear(p2p_idmap_t *m)
{
    if (m->used) memset(m->used, 0, m->cap);
    m->n = 0;
    maybe_shrink(m);
}

static bool find(const p2p_idmap_t *m, const uint8_t *key, size_t *slot)
{
    size_t mask = m->cap - 1;
    for (size_t i = home(m, key);; i = (i + 1) & mask) {
        if (!m->used[i]) {
            *slot = i;
            return false;
        }
        if (memcmp(m->keys[i], key, 32) == 0) {
            *slot = i;
            return true;
        }
    }
}

uint64_t *p2p_idmap_get(const p2p_idmap_t *m, const uint8_t key[32])
{
    size_t i;
    if (!m->cap || !find(m, key, &i)) return NULL;
    return &m->vals[i];
}

/* Moves the entries into a table of cap slots (keeps the old one if the
 * allocation fails). */
static int resize(p2p_idmap_t *m, size_t cap)
{
    p2p_idmap_t old = *m;
    if (alloc_table(m, cap)) {
        *m = old;
        return P2P_ENOMEM;
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.used[i]) continue;
        size_t s;
        find(m, old.keys[i], &s);
        memcpy(m->keys[s], old.keys[i], 32);
        m->vals[s] = old.vals[i];
        m->used[s] = 1;
    }
    free(old.keys);
    free(old.vals);
    free(old.used);
    return 0;
}

int p2p_idmap_put(p2p_idmap_t *m, const uint8_t key[32], uint64_t val)
{
    size_t i;
    if (!m->cap) return P2P_ENOMEM;
    if (find(m, key, &i)) {
        m->vals[i] = val;
        return 0;
    }
    if (m->max && m->n >= m->max) return P2P_EFULL;
    if (2 * (m->n + 1) > m->cap) {
        int rc = resize(m, m->cap * 2);
        if (rc) return rc;
        find(m, key, &i);
    }
    memcpy(m->keys[i], key, 32);
    m->vals[i] = val;
    m->used[i] = 1;
    m->n++;
    return 0;
}

/* Empties slot i and shifts the rest of its probe run back. */
static void delete_slot(p2p_idmap_t *m, size_t i)
{
    size_t mask = m->cap - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t h = home(m, m->keys[j]);
        /* j may move to the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (stays) continue;
        memcpy(m->keys[hole], m->keys[j], 32);
        m->vals[hole] = m->vals[j];
        hole = j;
    }
    m->used[hole] = 0;
    m->n--;
}

bool p2p_idmap_del(p2p_idmap_t *m, const uint8_t key[32])
{
    size_t i;
    if (!m->cap || !find(m, key, &i)) return false;
    delete_slot(m, i);
    maybe_shrink(m);
    return true;
}

size_t p2p_idmap_remove_if(p2p_idmap_t *m,
                           bool (*pred)(void *ctx, const uint8_t *key, uint64_t val), void *ctx)
{
    size_t removed = 0;
    for (size_t i = 0; i < m->cap; i++) {
        /* A deletion may shift a later entry into slot i: look again. */
        while (m->used[i] && pred(ctx, m->keys[i], m->vals[i])) {
            delete_slot(m, i);
            removed++;
        }
    }
    maybe_shrink(m);
    return removed;
}

bool p2p_idmap_next(const p2p_idmap_t *m, size_t *pos, const uint8_t **key, uint64_t *val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        if (m->used[i]) {
            *key = m->keys[i];
            *val = m->vals[i];
            *pos = i + 1;
            return true;
        }
    }
    *pos = m->cap;
    return false;
}

void p2p_idmap_ip_key(uint8_t key[32], const p2p_ip_t *ip)
{
    memset(key, 0, 32);
    key[0] = ip->family;
    memcpy(key + 1, ip->addr, p2p_ip_len(ip));
}

/* ---- expiry queue ---- */

static p2p_idexp_ent_t *eq_at(const p2p_idexpq_t *q, size_t i)
{
    return &q->q[(q->head + i) % q->cap];
}

void p2p_idexpq_free(p2p_idexpq_t *q)
{
    free(q->q);
    memset(q, 0, sizeof *q);
}

#define EQ_MIN_CAP 64

/* Moves the entries, in order, into a ring of cap (>= len) slots.
 * Returns 0 or P2P_ENOMEM (the ring is unchanged). */
static int eq_resize(p2p_idexpq_t *q, size_t cap)
{
    p2p_idexp_ent_t *n = malloc(cap * sizeof n[0]);
    if (!n) return P2P_ENOMEM;
    for (size_t i = 0; i < q->len; i++) n[i] = *eq_at(q, i);
    free(q->q);
    q->q = n;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Makes room for one more entry (doubling).  Returns 0 or P2P_ENOMEM. */
static int eq_reserve(p2p_idexpq_t *q)
{
    if (q->len < q->cap) return 0;
    return eq_resize(q, q->cap ? 2 * q->cap : EQ_MIN_CAP);
}

/* Gives back a peak's capacity, as the map does: halves the ring while it
 * is at most 1/8 full and above EQ_MIN_CAP (a failed allocation keeps the
 * larger ring). */
static void eq_maybe_shrink(p2p_idexpq_t *q)
{
    size_t cap = q->cap;
    while (cap > EQ_MIN_CAP && 8 * q->len < cap) cap /= 2;
    if (cap != q->cap) (void)eq_resize(q, cap);
}

int p2p_idexpq_put(p2p_idexpq_t *q, p2p_idmap_t *m, const uint8_t key[32], uint64_t exp)
{
    /* a full map refuses before the queue grows for nothing */
    if (m->max && m->n >= m->max && !p2p_idmap_has(m, key)) return P2P_EFULL;
    int rc = eq_reserve(q);
    if (rc) return rc;
    rc = p2p_idmap_put(m, key, exp);
    if (rc) return rc;
    size_t i = q->len++;
    while (i > 0 && eq_at(q, i - 1)->exp > exp) {
        *eq_at(q, i) = *eq_at(q, i - 1);
        i--;
    }
    p2p_idexp_ent_t *e = eq_at(q, i);
    memcpy(e->key, key, 32);
    e->exp = exp;
    return 0;
}

/* Pops the front entry; deletes it from m unless it was put again since
 * (a newer copy is queued).  Returns true if it deleted it. */
static bool eq_pop(p2p_idexpq_t *q, p2p_idmap_t *m)
{
    const p2p_idexp_ent_t *e = eq_at(q, 0);
    const uint64_t *exp = p2p_idmap_get(m, e->key);
    bool live = exp && *exp == e->exp;
    if (live) p2p_idmap_del(m, e->key);
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return live;
}

void p2p_idexpq_expire(p2p_idexpq_t *q, p2p_idmap_t *m, uint64_t now)
{
    size_t popped = 0;
    for (; q->len && eq_at(q, 0)->exp <= now; popped++) (void)eq_pop(q, m);
    if (popped) eq_maybe_shrink(q);
}

bool p2p_idexpq_evict_oldest(p2p_idexpq_t *q, p2p_idmap_t *m)
{
    bool deleted = false;
    while (q->len && !deleted) deleted = eq_pop(q, m);
    eq_maybe_shrink(q);
    return deleted;
}
