/* actors/idmap: put/get/del against a reference model under random
 * operations, growth and shrinking, the entry limit, remove_if and
 * iteration; the expiry queue's eviction of its oldest entry. */
#include "actors/idmap.h"

#include <stdlib.h>

#include "tests/tu.h"

#define NKEYS 300

static uint8_t keys[NKEYS][32];
static uint64_t model[NKEYS];
static bool present[NKEYS];

static bool odd_value(void *ctx, const uint8_t *key, uint64_t val)
{
    (void)key;
    (*(unsigned *)ctx)++;
    return val & 1;
}

static void check_model(const p2p_idmap_t *m)
{
    size_t n = 0;
    for (int i = 0; i < NKEYS; i++) {
        uint64_t *v = p2p_idmap_get(m, keys[i]);
        CHECK((v != NULL) == present[i]);
        if (v && present[i]) CHECK(*v == model[i]);
        n += present[i];
    }
    CHECK(m->n == n);
    /* Iteration visits every entry exactly once. */
    size_t pos = 0, seen = 0;
    const uint8_t *k;
    uint64_t v;
    while (p2p_idmap_next(m, &pos, &k, &v)) {
        seen++;
        uint64_t *g = p2p_idmap_get(m, k);
        CHECK(g && *g == v);
    }
    CHECK(seen == n);
}

int main(void)
{
    tu_seed(7);
    for (int i = 0; i < NKEYS; i++) tu_rand_bytes(keys[i], 32);
    /* Keys that differ only in the last byte must not collide logically. */
    memset(keys[0], 0x11, 32);
    memcpy(keys[1], keys[0], 32);
    keys[1][31] ^= 1;

    p2p_idmap_t m;
    CHECK_OK(p2p_idmap_init(&m, 4, 0, 12345));
    CHECK(m.cap >= 8);
    for (int round = 0; round < 20000; round++) {
        int i = (int)(tu_rand() % NKEYS);
        switch (tu_rand() % 3) {
        case 0:
        case 1: {
            uint64_t v = tu_rand();
            CHECK_OK(p2p_idmap_put(&m, keys[i], v));
            model[i] = v;
            present[i] = true;
            break;
        }
        default:
            CHECK(p2p_idmap_del(&m, keys[i]) == present[i]);
            present[i] = false;
        }
        if (round % 1000 == 0) check_model(&m);
    }
    check_model(&m);
    CHECK(2 * m.n <= m.cap);

    /* remove_if removes exactly the matching entries. */
    unsigned visits = 0;
    size_t want = 0;
    for (int i = 0; i < NKEYS; i++) want += present[i] && (model[i] & 1);
    CHECK(p2p_idmap_remove_if(&m, odd_value, &visits) == want);
    CHECK(visits >= m.n);
    for (int i = 0; i < NKEYS; i++)
        if (model[i] & 1) present[i] = false;
    check_model(&m);

    p2p_idmap_clear(&m);
    memset(present, 0, sizeof present);
    check_model(&m);
    p2p_idmap_free(&m);

    /* The entry limit: max entries fit; one more is P2P_EFULL; replacing is fine. */
    CHECK_OK(p2p_idmap_init(&m, 2, 5, 1));
    for (int i = 0; i < 5; i++) CHECK_OK(p2p_idmap_put(&m, keys[i], (uint64_t)i));
    CHECK_ERR(p2p_idmap_put(&m, keys[5], 5), P2P_EFULL);
    CHECK(!p2p_idmap_has(&m, keys[5]));
    CHECK_OK(p2p_idmap_put(&m, keys[4], 44));
    CHECK(*p2p_idmap_get(&m, keys[4]) == 44);
    CHECK(p2p_idmap_del(&m, keys[0]));
    CHECK(!p2p_idmap_del(&m, keys[0]));
    CHECK_OK(p2p_idmap_put(&m, keys[5], 5));
    CHECK(m.n == 5);
    p2p_idmap_free(&m);

    /* Two maps with different seeds hold the same content. */
    p2p_idmap_t a, b;
    CHECK_OK(p2p_idmap_init(&a, 0, 0, 1));
    CHECK_OK(p2p_idmap_init(&b, 0, 0, 2));
    for (int i = 0; i < 100; i++) {
        CHECK_OK(p2p_idmap_put(&a, keys[i], (uint64_t)i));
        CHECK_OK(p2p_idmap_put(&b, keys[i], (uint64_t)i));
    }
    for (int i = 0; i < 100; i++) CHECK(*p2p_idmap_get(&a, keys[i]) == *p2p_idmap_get(&b, keys[i]));
    p2p_idmap_free(&a);
    p2p_idmap_free(&b);

    /* A peak's capacity is given back: fill, empty by del, by remove_if
     * and by clear; the table returns to its initial size and keeps its
     * entries through every shrink. */
    CHECK_OK(p2p_idmap_init(&m, 4, 0, 99));
    size_t cap0 = m.cap;
    for (int i = 0; i < NKEYS; i++) CHECK_OK(p2p_idmap_put(&m, keys[i], (uint64_t)i));
    CHECK(m.cap >= 2 * NKEYS);
    size_t peak = m.cap;
    for (int i = 0; i < NKEYS; i++) {
        CHECK(p2p_idmap_del(&m, keys[i]));
        CHECK(2 * m.n <= m.cap);
        for (int j = i + 1; j < NKEYS; j += 37) CHECK(*p2p_idmap_get(&m, keys[j]) == (uint64_t)j);
    }
    CHECK(m.n == 0 && m.cap == cap0 && peak > cap0);
    for (int i = 0; i < NKEYS; i++) CHECK_OK(p2p_idmap_put(&m, keys[i], (uint64_t)i));
    visits = 0;
    CHECK(p2p_idmap_remove_if(&m, odd_value, &visits) == NKEYS / 2);
    CHECK(m.n == NKEYS / 2 && m.cap == peak); /* half full: no shrink */
    for (int i = 0; i < NKEYS; i++) CHECK((p2p_idmap_get(&m, keys[i]) != NULL) == ((i & 1) == 0));
    p2p_idmap_clear(&m);
    CHECK(m.n == 0 && m.cap == cap0);
    for (int i = 0; i < 3; i++) CHECK_OK(p2p_idmap_put(&m, keys[i], (uint64_t)i));
    CHECK(m.n == 3 && *p2p_idmap_get(&m, keys[2]) == 2);
    p2p_idmap_free(&m);

    /* IP keys: family matters, v4 bytes and a v6 address with the same
     * leading bytes differ. */
    uint8_t k4[32], k6[32], k4b[32];
    p2p_ip_t v4 = p2p_ip4(1, 2, 3, 4), v6 = {.family = 6, .addr = {1, 2, 3, 4}};
    p2p_ip_t v4b = p2p_ip4(1, 2, 3, 5);
    p2p_idmap_ip_key(k4, &v4);
    p2p_idmap_ip_key(k6, &v6);
    p2p_idmap_ip_key(k4b, &v4b);
    CHECK(memcmp(k4, k6, 32) != 0);
    CHECK(memcmp(k4, k4b, 32) != 0);
    uint8_t k4again[32];
    p2p_idmap_ip_key(k4again, &v4);
    CHECK_MEM(k4, k4again, 32);

    /* Expiry queue: evicting the oldest skips the stale copy of a key put
     * again (its newer copy stays) and deletes the next live entry. */
    p2p_idexpq_t q = {0};
    CHECK_OK(p2p_idmap_init(&m, 4, 0, 99));
    CHECK_OK(p2p_idexpq_put(&q, &m, keys[0], 10));
    CHECK_OK(p2p_idexpq_put(&q, &m, keys[1], 20));
    CHECK_OK(p2p_idexpq_put(&q, &m, keys[0], 30)); /* keys[0] again: its copy at 10 is stale */
    CHECK(q.len == 3 && m.n == 2);
    CHECK(p2p_idexpq_evict_oldest(&q, &m));
    CHECK(p2p_idmap_get(&m, keys[1]) == NULL);
    CHECK(p2p_idmap_get(&m, keys[0]) && *p2p_idmap_get(&m, keys[0]) == 30);
    CHECK(q.len == 1 && m.n == 1 && p2p_idexpq_next(&q) == 30);
    CHECK(p2p_idexpq_evict_oldest(&q, &m));
    CHECK(q.len == 0 && m.n == 0);
    CHECK(!p2p_idexpq_evict_oldest(&q, &m));
    p2p_idexpq_free(&q);
    p2p_idmap_free(&m);

    /* The queue gives back a peak's capacity as the map does: fill it,
     * expire half (no shrink while a quarter or more is held), then the
     * rest in steps; the live entries keep their order through every
     * shrink, and eviction shrinks it too. */
    CHECK_OK(p2p_idmap_init(&m, 4, 0, 99));
    for (int i = 0; i < NKEYS; i++) CHECK_OK(p2p_idexpq_put(&q, &m, keys[i], 100 + (uint64_t)i));
    size_t qpeak = q.cap;
    CHECK(qpeak >= NKEYS);
    p2p_idexpq_expire(&q, &m, 100 + NKEYS / 2 - 1);
    CHECK(q.len == NKEYS / 2 && m.n == NKEYS / 2 && q.cap == qpeak);
    bool ordered = true;
    for (int step = NKEYS / 2; step < NKEYS; step += 97) {
        p2p_idexpq_expire(&q, &m, 100 + (uint64_t)step);
        CHECK(q.len == (size_t)(NKEYS - step - 1) && m.n == q.len);
        CHECK(8 * q.len >= q.cap || q.cap == 64);
        if (q.len) ordered &= p2p_idexpq_next(&q) == 100 + (uint64_t)step + 1;
    }
    CHECK(ordered);
    p2p_idexpq_expire(&q, &m, UINT64_MAX);
    CHECK(q.len == 0 && m.n == 0 && q.cap <= 64);
    for (int i = 0; i < NKEYS; i++) CHECK_OK(p2p_idexpq_put(&q, &m, keys[i], 5));
    CHECK(q.cap == qpeak);
    unsigned evicted = 0;
    while (p2p_idexpq_evict_oldest(&q, &m) && evicted < NKEYS) evicted++;
    CHECK(evicted == NKEYS && q.len == 0 && q.cap <= 64);
    p2p_idexpq_free(&q);
    p2p_idmap_free(&m);
    return tu_done("idmap");
}
