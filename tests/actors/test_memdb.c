/*
 * tests/actors/test_memdb.c: the in-memory node database: items per
 * (id, ip), eviction of the least recently written item of a full set,
 * records and the seed query by pong age.
 */
#include <string.h>

#include "actors/memdb.h"
#include "tests/tu.h"

static p2p_node_t node(unsigned i)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    tu_rand_bytes(n.id, 32);
    n.ep.ip = p2p_ip4(10, 0, (uint8_t)(i >> 8), (uint8_t)i);
    n.ep.udp = 30303;
    return n;
}

int main(void)
{
    p2p_memdb_t *db = NULL;
    CHECK_ERR(p2p_memdb_new(&db, (size_t)P2P_MEMDB_ITEMS_MAX + 1, 16, 1), P2P_EINVAL);
    CHECK_OK(p2p_memdb_new(&db, 64, 16, 42));
    if (!db) return tu_done("memdb");

    p2p_node_t a = node(1);
    p2p_ip_t ip6 = {.family = 6, .addr = {0xfe, 0x80, [15] = 1}}, none = {0};
    uint64_t t;
    uint32_t f;
    CHECK_OK(p2p_memdb_last_pong(db, &t, a.id, &a.ep.ip));
    CHECK(t == 0);
    CHECK_OK(p2p_memdb_set_last_pong(db, a.id, &a.ep.ip, 1000));
    CHECK_OK(p2p_memdb_set_last_ping(db, a.id, &a.ep.ip, 900));
    CHECK_OK(p2p_memdb_set_findfails(db, a.id, &a.ep.ip, 3));
    CHECK_OK(p2p_memdb_last_pong(db, &t, a.id, &a.ep.ip));
    CHECK(t == 1000);
    CHECK_OK(p2p_memdb_last_ping(db, &t, a.id, &a.ep.ip));
    CHECK(t == 900);
    CHECK_OK(p2p_memdb_findfails(db, &f, a.id, &a.ep.ip));
    CHECK(f == 3);
    /* Same id, another IP: separate items. */
    CHECK_OK(p2p_memdb_last_pong(db, &t, a.id, &ip6));
    CHECK(t == 0);
    CHECK_ERR(p2p_memdb_last_pong(db, &t, a.id, &none), P2P_EINVAL);
    CHECK_ERR(p2p_memdb_set_last_pong(db, a.id, &none, 1), P2P_EINVAL);
    CHECK(p2p_memdb_items(db) == 1);

    /* Many more items than capacity: the table stays bounded and the most
     * recent writes are found. */
    p2p_node_t many[1000];
    for (unsigned i = 0; i < 1000; i++) {
        many[i] = node(i);
        CHECK_OK(p2p_memdb_set_last_pong(db, many[i].id, &many[i].ep.ip, 5000 + i));
    }
    CHECK(p2p_memdb_items(db) <= 64);
    CHECK_OK(p2p_memdb_last_pong(db, &t, many[999].id, &many[999].ep.ip));
    CHECK(t == 5999);
    unsigned found = 0;
    for (unsigned i = 0; i < 1000; i++) {
        CHECK_OK(p2p_memdb_last_pong(db, &t, many[i].id, &many[i].ep.ip));
        if (t) found++;
    }
    CHECK(found <= 64 && found >= 32);

    /* Records and seeds: only nodes with a recent pong are seeds. */
    p2p_memdb_free(db);
    CHECK_OK(p2p_memdb_new(&db, 1024, 16, 7));
    CHECK_ERR(p2p_memdb_put_node(db, &(p2p_node_t){0}), P2P_EINVAL);
    for (unsigned i = 0; i < 20; i++) {
        CHECK_OK(p2p_memdb_put_node(db, &many[i]));
        if (i % 2 == 0) CHECK_OK(p2p_memdb_set_last_pong(db, many[i].id, &many[i].ep.ip, 10000));
    }
    CHECK(p2p_memdb_nodes(db) == 16);            /* capacity 16: the oldest were replaced */
    CHECK_OK(p2p_memdb_put_node(db, &many[19])); /* update in place */
    CHECK(p2p_memdb_nodes(db) == 16);
    p2p_node_t seeds[32];
    size_t n;
    CHECK_OK(p2p_memdb_query_seeds(db, seeds, &n, 32, 100, 10050));
    CHECK(n == 8); /* records 4..19, the even ones */
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(p2p_memdb_last_pong(db, &t, seeds[i].id, &seeds[i].ep.ip));
        CHECK(t == 10000);
    }
    CHECK_OK(p2p_memdb_query_seeds(db, seeds, &n, 3, 100, 10050));
    CHECK(n == 3);
    CHECK_OK(p2p_memdb_query_seeds(db, seeds, &n, 32, 10, 10050));
    CHECK(n == 0); /* too old */
    /* A pong stamped after now (the wall clock stepped back since) is
     * still a seed up to P2P_NODEDB_FUTURE seconds ahead, as in the node
     * DB (p2p_nodedb_query_seeds) and the core's bond rule; beyond, void. */
    CHECK_OK(p2p_memdb_set_last_pong(db, many[4].id, &many[4].ep.ip, 10000 + 60));
    CHECK_OK(p2p_memdb_set_last_pong(db, many[6].id, &many[6].ep.ip, 10000 + 301));
    CHECK_OK(p2p_memdb_query_seeds(db, seeds, &n, 32, 100, 10000));
    CHECK(n == 7); /* the even ones but 6 */
    for (size_t i = 0; i < n; i++) CHECK(memcmp(seeds[i].id, many[6].id, 32) != 0);
    p2p_memdb_free(db);
    return tu_done("memdb");
}
