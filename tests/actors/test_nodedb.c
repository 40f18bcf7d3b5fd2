/*
 * tests/actors/test_nodedb.c: the node database: records, per-IP items,
 * local seq, schema version wipe, damaged-file wipe, seed queries, expiry,
 * restarts, the DB_RUNRECOVERY reopen path, an open out of descriptors
 * (fails fast, never wipes) and the sync mode.  Every test
 * runs in its own mkdtemp directory under /tmp, removed at the end.
 */
#define _XOPEN_SOURCE 700
#include <db.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/nodedb.h"
#include "core/clock.h"
#include "tests/core/sanitize.h"
#include "core/err.h"
#include "tests/tu.h"

static const uint64_t NOW = 1700000000;
static const uint64_t DAY = 86400;

/* Runs test in a new directory under /tmp, removed after it. */
static void in_tmpdir(void (*test)(const char *dir))
{
    char buf[64];
    const char *dir = tu_tmpdir(buf, "nodedb");
    test(dir);
    tu_rm_rf(dir);
}

static p2p_nodedb_t *open_db(const char *dir)
{
    p2p_nodedb_t *db = NULL;
    char msg[256];
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    CHECK(db != NULL);
    return db;
}

static p2p_node_t mknode(uint8_t a, uint8_t b)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    tu_rand_bytes(n.id, 32);
    tu_rand_bytes(n.pubkey, 64);
    n.ep.ip = p2p_ip4(10, 0, a, b);
    n.ep.udp = (uint16_t)(30303 + b);
    n.ep.tcp = (uint16_t)(40404 + a);
    n.seq = tu_rand() >> 8;
    return n;
}

static int node_eq(const p2p_node_t *a, const p2p_node_t *b)
{
    return memcmp(a->id, b->id, 32) == 0 && memcmp(a->pubkey, b->pubkey, 64) == 0 &&
           p2p_ip_equal(&a->ep.ip, &b->ep.ip) && a->ep.udp == b->ep.udp && a->ep.tcp == b->ep.tcp &&
           a->seq == b->seq;
}

/* The items of (id, ip): last pong, last ping, findnode failures. */
static void check_items(p2p_nodedb_t *db, const uint8_t id[32], const p2p_ip_t *ip, uint64_t pong,
                        uint64_t ping, uint32_t fails)
{
    uint64_t t = 1;
    uint32_t f = 1;
    CHECK_OK(p2p_nodedb_last_pong(db, &t, id, ip));
    CHECK(t == pong);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, id, ip));
    CHECK(t == ping);
    CHECK_OK(p2p_nodedb_findfails(db, &f, id, ip));
    CHECK(f == fails);
}

/* Reopens the database at dir: not wiped, the node with this id kept. */
static void check_kept(const char *dir, const uint8_t id[32])
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 0);
    p2p_node_t got;
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, id));
    p2p_nodedb_close(db);
}

static void test_put_get_delete(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);

    p2p_node_t a = mknode(1, 2), got;
    uint8_t enr[P2P_NODEDB_ENR_MAX], enr2[P2P_NODEDB_ENR_MAX];
    tu_rand_bytes(enr, sizeof enr);
    CHECK_OK(p2p_nodedb_put_node(db, &a, enr, 120));
    size_t elen = sizeof enr2;
    CHECK_OK(p2p_nodedb_get_node(db, &got, enr2, &elen, a.id));
    CHECK(node_eq(&a, &got));
    CHECK(elen == 120);
    CHECK_MEM(enr, enr2, 120);

    /* without ENR buffer; too small ENR buffer */
    memset(&got, 0, sizeof got);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, a.id));
    CHECK(node_eq(&a, &got));
    elen = 119;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, enr2, &elen, a.id), P2P_ETOOBIG);

    /* replace: new endpoint, no ENR */
    a.ep.ip = p2p_ip4(192, 168, 7, 9);
    a.seq++;
    CHECK_OK(p2p_nodedb_put_node(db, &a, NULL, 0));
    elen = sizeof enr2;
    CHECK_OK(p2p_nodedb_get_node(db, &got, enr2, &elen, a.id));
    CHECK(node_eq(&a, &got));
    CHECK(elen == 0);

    /* IPv6 node with a maximal ENR */
    p2p_node_t b = mknode(3, 4);
    b.ep.ip.family = 6;
    tu_rand_bytes(b.ep.ip.addr, 16);
    CHECK_OK(p2p_nodedb_put_node(db, &b, enr, P2P_NODEDB_ENR_MAX));
    elen = sizeof enr2;
    CHECK_OK(p2p_nodedb_get_node(db, &got, enr2, &elen, b.id));
    CHECK(node_eq(&b, &got));
    CHECK(elen == P2P_NODEDB_ENR_MAX);
    CHECK_MEM(enr, enr2, P2P_NODEDB_ENR_MAX);

    /* node without address */
    p2p_node_t c = mknode(5, 6);
    memset(&c.ep, 0, sizeof c.ep);
    CHECK_OK(p2p_nodedb_put_node(db, &c, NULL, 0));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, c.id));
    CHECK(node_eq(&c, &got));

    /* invalid input */
    CHECK_ERR(p2p_nodedb_put_node(db, &a, enr, P2P_NODEDB_ENR_MAX + 1), P2P_EINVAL);
    CHECK_ERR(p2p_nodedb_put_node(db, &a, NULL, 5), P2P_EINVAL);
    p2p_node_t bad = a;
    bad.ep.ip.family = 5;
    CHECK_ERR(p2p_nodedb_put_node(db, &bad, NULL, 0), P2P_EINVAL);
    uint8_t missing[32];
    tu_rand_bytes(missing, 32);
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, missing), P2P_ENOTFOUND);

    /* delete */
    CHECK_OK(p2p_nodedb_delete_node(db, a.id));
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, a.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, b.id));
    CHECK_OK(p2p_nodedb_delete_node(db, missing));

    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.nodes_put == 4);
    CHECK(st.nodes_deleted == 2);
    CHECK(st.errors == 0);
    CHECK(st.commits > 0);
    p2p_nodedb_close(db);
}

static void test_items(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);

    p2p_node_t n = mknode(1, 1), other = mknode(1, 2);
    /* other shares n's id except the last byte (adjacent keys) */
    memcpy(other.id, n.id, 31);
    other.id[31] = (uint8_t)(n.id[31] ^ 1);
    p2p_ip_t ip4 = p2p_ip4(1, 2, 3, 4), ip4b = p2p_ip4(1, 2, 3, 5), ip6 = {.family = 6};
    ip6.addr[15] = 1;
    /* an IPv4-mapped IPv6 address shares the IPv4 key */
    p2p_ip_t mapped = {.family = 6, .addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}};

    uint64_t t = 99;
    uint32_t f = 99;
    CHECK_OK(p2p_nodedb_last_ping(db, &t, n.id, &ip4));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &ip4));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_findfails(db, &f, n.id, &ip4));
    CHECK(f == 0);

    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    CHECK_OK(p2p_nodedb_put_node(db, &other, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_ping(db, n.id, &ip4, NOW - 5));
    CHECK_OK(p2p_nodedb_set_last_pong(db, n.id, &ip4, NOW - 4));
    CHECK_OK(p2p_nodedb_set_findfails(db, n.id, &ip4, 3));
    CHECK_OK(p2p_nodedb_set_last_pong(db, n.id, &ip4b, NOW - 3));
    CHECK_OK(p2p_nodedb_set_last_pong(db, n.id, &ip6, NOW - 2));
    CHECK_OK(p2p_nodedb_set_last_pong(db, other.id, &ip4, NOW - 1));
    CHECK_OK(p2p_nodedb_set_findfails(db, other.id, &ip4, 1));

    CHECK_OK(p2p_nodedb_last_ping(db, &t, n.id, &ip4));
    CHECK(t == NOW - 5);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &ip4));
    CHECK(t == NOW - 4);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &mapped));
    CHECK(t == NOW - 4);
    CHECK_OK(p2p_nodedb_findfails(db, &f, n.id, &ip4));
    CHECK(f == 3);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &ip4b));
    CHECK(t == NOW - 3);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, n.id, &ip4b));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &ip6));
    CHECK(t == NOW - 2);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, other.id, &ip4));
    CHECK(t == NOW - 1);

    /* overwrite */
    CHECK_OK(p2p_nodedb_set_findfails(db, n.id, &ip4, 0));
    CHECK_OK(p2p_nodedb_findfails(db, &f, n.id, &ip4));
    CHECK(f == 0);

    /* invalid address */
    p2p_ip_t none = {.family = 0};
    CHECK_ERR(p2p_nodedb_set_last_pong(db, n.id, &none, 1), P2P_EINVAL);
    CHECK_ERR(p2p_nodedb_last_pong(db, &t, n.id, &none), P2P_EINVAL);

    /* deleting n removes its record and every IP's items, not other's */
    CHECK_OK(p2p_nodedb_delete_node(db, n.id));
    p2p_node_t got;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, n.id, &ip4));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &ip4b));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &ip6));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, other.id));
    CHECK_OK(p2p_nodedb_last_pong(db, &t, other.id, &ip4));
    CHECK(t == NOW - 1);
    CHECK_OK(p2p_nodedb_findfails(db, &f, other.id, &ip4));
    CHECK(f == 1);

    /* local seq */
    uint64_t seq = 7;
    CHECK_OK(p2p_nodedb_local_seq(db, &seq, n.id));
    CHECK(seq == 0);
    CHECK_OK(p2p_nodedb_set_local_seq(db, n.id, 1700000000123ull));
    CHECK_OK(p2p_nodedb_local_seq(db, &seq, n.id));
    CHECK(seq == 1700000000123ull);
    CHECK_OK(p2p_nodedb_local_seq(db, &seq, other.id));
    CHECK(seq == 0);
    /* local seq is not a node: deleting the node id keeps it */
    CHECK_OK(p2p_nodedb_delete_node(db, n.id));
    CHECK_OK(p2p_nodedb_local_seq(db, &seq, n.id));
    CHECK(seq == 1700000000123ull);

    p2p_nodedb_close(db);
}

/* Writes key -> val behind the module's back, with Berkeley DB. */
static void put_raw(const char *dir, const void *key, size_t klen, const void *val, size_t vlen)
{
    char home[128];
    snprintf(home, sizeof home, "%s/nodes", dir);
    DB_ENV *env;
    DB *dbp;
    CHECK(db_env_create(&env, 0) == 0);
    CHECK(env->open(env, home,
                    DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
                        DB_RECOVER | DB_PRIVATE,
                    0600) == 0);
    CHECK(db_create(&dbp, env, 0) == 0);
    CHECK(dbp->open(dbp, NULL, "nodes.db", NULL, DB_BTREE, DB_AUTO_COMMIT, 0600) == 0);
    DBT k = {.data = (void *)key, .size = (u_int32_t)klen};
    DBT d = {.data = (void *)val, .size = (u_int32_t)vlen};
    CHECK(dbp->put(dbp, NULL, &k, &d, DB_AUTO_COMMIT) == 0);
    CHECK(dbp->close(dbp, 0) == 0);
    CHECK(env->txn_checkpoint(env, 0, 0, DB_FORCE) == 0);
    CHECK(env->close(env, 0) == 0);
}

static void set_raw_version(const char *dir, uint64_t v)
{
    uint8_t val[8];
    for (int i = 7; i >= 0; i--, v >>= 8) val[i] = (uint8_t)v;
    put_raw(dir, "version", 7, val, 8);
}

/* Damaged values (wrong version byte, wrong lengths) are reported and
 * skipped, never trusted. */
static void test_bad_values(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t good = mknode(1, 1), got;
    CHECK_OK(p2p_nodedb_put_node(db, &good, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, good.id, &good.ep.ip, NOW));
    p2p_nodedb_close(db);

    uint8_t ids[5][32], key[37], val[600];
    for (int i = 0; i < 5; i++) {
        tu_rand_bytes(ids[i], 32);
        memcpy(key, "n:", 2);
        memcpy(key + 2, ids[i], 32);
        memcpy(key + 34, ":v4", 3);
        memset(val, 0, sizeof val);
        size_t vlen = 96;
        val[0] = 1;
        if (i == 0) val[0] = 2;        /* unknown version */
        if (i == 1) vlen = 95;         /* short */
        if (i == 2) val[65] = 5;       /* bad family */
        if (i == 3) val[95] = 10;      /* ENR length beyond the value */
        if (i == 4) vlen = sizeof val; /* longer than any record */
        put_raw(dir, key, sizeof key, val, vlen);
        /* a pong so that the seed query looks at it */
        uint8_t ik[37 + 18 + 8];
        memcpy(ik, key, 37);
        ik[37] = ':';
        memset(ik + 38, 0, 16);
        ik[48] = ik[49] = 0xff;
        ik[54] = ':';
        memcpy(ik + 55, "lastpong", 8);
        uint8_t t[8] = {0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00};
        put_raw(dir, ik, sizeof ik, t, sizeof t);
    }
    /* a pong value of the wrong size reads as "never" */
    uint8_t ik[37 + 18 + 8];
    memcpy(ik, "n:", 2);
    memcpy(ik + 2, good.id, 32);
    memcpy(ik + 34, ":v4:", 4);
    memset(ik + 38, 0, 16);
    ik[48] = ik[49] = 0xff;
    memcpy(ik + 50, good.ep.ip.addr, 4);
    ik[54] = ':';
    memcpy(ik + 55, "lastping", 8);
    put_raw(dir, ik, sizeof ik, "abc", 3);

    db = open_db(dir);
    for (int i = 0; i < 5; i++)
        CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, ids[i]), P2P_EDECODE);
    uint64_t t = 1;
    CHECK_OK(p2p_nodedb_last_ping(db, &t, good.id, &good.ep.ip));
    CHECK(t == 0);
    p2p_node_t out[10];
    size_t nout = 0;
    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 10, 100 * DAY, NOW));
    CHECK(nout <= 1);
    for (size_t i = 0; i < nout; i++) CHECK(node_eq(&out[i], &good));
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.bad_records >= 6);
    CHECK(st.errors == 0);
    /* damaged nodes can still be deleted and expired */
    CHECK_OK(p2p_nodedb_delete_node(db, ids[0]));
    size_t deleted = 0;
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW + 400 * DAY));
    CHECK(deleted == 5);
    p2p_nodedb_close(db);
}

static void test_version_wipe(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t n = mknode(7, 7), got;
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, n.id, &n.ep.ip, NOW));
    p2p_nodedb_close(db);

    /* same version: kept */
    set_raw_version(dir, P2P_NODEDB_SCHEMA);
    check_kept(dir, n.id);

    /* another version: wiped on open, version rewritten */
    set_raw_version(dir, P2P_NODEDB_SCHEMA + 41);
    db = open_db(dir);
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 1);
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id), P2P_ENOTFOUND);
    uint64_t t = 1;
    CHECK_OK(p2p_nodedb_last_pong(db, &t, n.id, &n.ep.ip));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    p2p_nodedb_close(db);
    check_kept(dir, n.id);
}

static void test_damaged_file(const char *dir)
{
    char path[128];
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t n = mknode(8, 8), got;
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    p2p_nodedb_close(db);

    /* replace the database and its logs with garbage */
    snprintf(path, sizeof path, "%s/nodes/nodes.db", dir);
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    uint8_t junk[8192];
    tu_rand_bytes(junk, sizeof junk);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    snprintf(path, sizeof path, "%s/nodes/log.0000000001", dir);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, junk, 4096) == 4096);
    close(fd);

    db = open_db(dir);
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 1);
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id));
    p2p_nodedb_close(db);
}

/* Writes n nodes with a 250-byte ENR each (enough for hundreds of pages)
 * to the database at dir, closed after; the path of its nodes.db in path. */
static void fill_nodes(const char *dir, p2p_node_t *nodes, unsigned n, char path[128])
{
    p2p_nodedb_t *db = open_db(dir);
    uint8_t enr[250];
    memset(enr, 0x5a, sizeof enr);
    for (unsigned i = 0; i < n; i++) {
        nodes[i] = mknode((uint8_t)(i >> 8), (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &nodes[i], enr, sizeof enr));
    }
    p2p_nodedb_close(db);
    snprintf(path, 128, "%s/nodes/nodes.db", dir);
}

/* A nodes.db cut short at a page boundary: the pages open reads are
 * missing (Berkeley DB: DB_PAGE_NOTFOUND).  Open wipes and starts empty
 * instead of failing at every start. */
static void test_truncated_file(const char *dir)
{
    char path[128];
    static p2p_node_t nodes[2000];
    fill_nodes(dir, nodes, 2000, path);
    CHECK(truncate(path, 8192) == 0);

    p2p_nodedb_t *db = NULL;
    char msg[256];
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 1);
    p2p_node_t got;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[7].id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_put_node(db, &nodes[7], NULL, 0));
    p2p_nodedb_close(db);
    check_kept(dir, nodes[7].id);
}

/* One page in the middle of nodes.db overwritten: open succeeds (the
 * pages it reads are fine); the first read of the bad page panics,
 * recovery runs, the same read panics again: the database is wiped while
 * running, that call fails, the next ones work on an empty database
 * (before, every read of the page reopened the environment, for ever). */
static void test_bad_page_live(const char *dir)
{
    char path[128];
    static p2p_node_t nodes[2000];
    fill_nodes(dir, nodes, 2000, path);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    static uint8_t junk[4096];
    memset(junk, 0xa5, sizeof junk);
    off_t at = (sb.st_size / 4096 / 2) * 4096;
    CHECK(pwrite(fd, junk, sizeof junk, at) == (ssize_t)sizeof junk);
    close(fd);

    p2p_nodedb_t *db = open_db(dir);
    unsigned ok = 0, failed = 0, gone = 0;
    for (unsigned i = 0; i < 2000; i++) {
        p2p_node_t got;
        int rc = p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[i].id);
        if (rc == 0)
            ok++;
        else if (rc == P2P_ENOTFOUND)
            gone++;
        else
            failed++;
    }
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    printf("bad page at %lld: %u read, %u failed, %u gone after the wipe; %llu recoveries, "
           "%llu wipes\n",
           (long long)at, ok, failed, gone, (unsigned long long)st.recoveries,
           (unsigned long long)st.wipes);
    /* the read that meets the bad page fails once and wipes; the wipe can
     * also come first, when Berkeley DB meets the page while it opens
     * (seen under TSan: 0 failed, 2000 gone) */
    CHECK(failed <= 1);
    CHECK(st.wipes == 1);
    CHECK(st.recoveries == 1);
    CHECK(ok + failed + gone == 2000 && gone > 0);
    /* the empty database works, and stays across a restart */
    CHECK_OK(p2p_nodedb_put_node(db, &nodes[3], NULL, 0));
    size_t deleted = 0;
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW));
    p2p_nodedb_close(db);
    db = open_db(dir);
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 0);
    p2p_node_t got;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[3].id), P2P_ENOTFOUND); /* expired */
    CHECK_OK(p2p_nodedb_put_node(db, &nodes[3], NULL, 0));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[3].id));
    p2p_nodedb_close(db);
}

/* A schema change on a database of more leaf pages than one transaction
 * has locks (10000): the wipe removes the files instead of truncating in a
 * transaction, which ran out of lock entries and kept the node from
 * starting. */
static void test_version_wipe_large(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    /* 48000 values of 900 bytes: about 4 to a leaf page */
    static uint8_t val[900];
    memset(val, 0x33, sizeof val);
    for (unsigned i = 0; i < 48000; i++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "x:%08u", i);
        CHECK_OK(p2p__nodedb_put_raw(db, key, (size_t)kl, val, sizeof val));
    }
    p2p_nodedb_close(db);
    set_raw_version(dir, P2P_NODEDB_SCHEMA + 1);
    db = NULL;
    char msg[256];
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) {
        printf("open after a schema change: %s\n", msg);
        return;
    }
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 1);
    p2p_nodedb_close(db);
}

static void test_seeds(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t out[P2P_NODEDB_MAX_SEEDS];
    size_t nout = 99;

    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 30, 5 * DAY, NOW));
    CHECK(nout == 0);

    enum { FRESH = 30, STALE = 10, NOPONG = 10, OTHERIP = 5, FUTURE = 10 };
    static p2p_node_t fresh[FRESH];
    for (int i = 0; i < FRESH; i++) {
        fresh[i] = mknode(1, (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &fresh[i], NULL, 0));
        /* one of them has a pong time up to 300 s in the future (clock
         * skew): still fresh */
        uint64_t t = i == 0 ? NOW + P2P_NODEDB_FUTURE : NOW - (uint64_t)i * 3600;
        CHECK_OK(p2p_nodedb_set_last_pong(db, fresh[i].id, &fresh[i].ep.ip, t));
        CHECK_OK(p2p_nodedb_set_last_ping(db, fresh[i].id, &fresh[i].ep.ip, t));
    }
    for (int i = 0; i < STALE; i++) {
        p2p_node_t s = mknode(2, (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &s, NULL, 0));
        CHECK_OK(p2p_nodedb_set_last_pong(db, s.id, &s.ep.ip, NOW - 5 * DAY - 1));
    }
    for (int i = 0; i < NOPONG; i++) {
        p2p_node_t s = mknode(3, (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &s, NULL, 0));
    }
    for (int i = 0; i < FUTURE; i++) {
        /* a pong stamped more than 300 s ahead (written before the wall
         * clock went back): its age is unknown, not a seed */
        p2p_node_t s = mknode(6, (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &s, NULL, 0));
        uint64_t t = i == 0 ? NOW + P2P_NODEDB_FUTURE + 1 : NOW + (uint64_t)i * DAY;
        CHECK_OK(p2p_nodedb_set_last_pong(db, s.id, &s.ep.ip, t));
    }
    for (int i = 0; i < OTHERIP; i++) {
        /* fresh pong, but at an address other than the stored one */
        p2p_node_t s = mknode(4, (uint8_t)i);
        p2p_ip_t ip = p2p_ip4(4, 4, 4, (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &s, NULL, 0));
        CHECK_OK(p2p_nodedb_set_last_pong(db, s.id, &ip, NOW));
    }
    /* pong items of ids without a record are skipped too */
    for (int i = 0; i < 10; i++) {
        p2p_node_t s = mknode(5, (uint8_t)i);
        CHECK_OK(p2p_nodedb_set_last_pong(db, s.id, &s.ep.ip, NOW));
    }

    for (int round = 0; round < 20; round++) {
        size_t want = round == 0 ? 100 : 1 + tu_rand() % 40;
        CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, want, 5 * DAY, NOW));
        CHECK(nout <= want && nout <= FRESH);
        if (round == 0) CHECK(nout >= 20);
        for (size_t i = 0; i < nout; i++) {
            int match = 0;
            for (int j = 0; j < FRESH; j++) match += node_eq(&out[i], &fresh[j]);
            CHECK(match == 1);
            for (size_t j = 0; j < i; j++) CHECK(memcmp(out[i].id, out[j].id, 32) != 0);
        }
    }
    /* max age selects: only pongs within 2 h (i = 0, 1, 2) */
    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 30, 2 * 3600, NOW));
    CHECK(nout <= 3);
    for (size_t i = 0; i < nout; i++) {
        uint64_t t;
        CHECK_OK(p2p_nodedb_last_pong(db, &t, out[i].id, &out[i].ep.ip));
        CHECK(t + 2 * 3600 >= NOW);
    }
    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 0, 5 * DAY, NOW));
    CHECK(nout == 0);
    CHECK_ERR(p2p_nodedb_query_seeds(db, out, &nout, P2P_NODEDB_MAX_SEEDS + 1, DAY, NOW),
              P2P_EINVAL);
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.seed_queries == 23);
    CHECK(st.seeds_found > 0);
    p2p_nodedb_close(db);
}

static void test_expire(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);

    /* 300 nodes (more than one expire batch): even ones fresh, odd ones stale */
    enum { N = 300 };
    static p2p_node_t nodes[N];
    for (int i = 0; i < N; i++) {
        nodes[i] = mknode((uint8_t)(i >> 8), (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &nodes[i], NULL, 0));
        uint64_t t = i % 2 == 0 ? NOW - 3600 : NOW - DAY - 1;
        CHECK_OK(p2p_nodedb_set_last_pong(db, nodes[i].id, &nodes[i].ep.ip, t));
        CHECK_OK(p2p_nodedb_set_findfails(db, nodes[i].id, &nodes[i].ep.ip, 1));
    }
    /* stale at one IP but fresh at another: kept */
    p2p_node_t got0;
    p2p_node_t two = mknode(9, 9);
    p2p_ip_t ip2 = p2p_ip4(9, 9, 9, 10);
    CHECK_OK(p2p_nodedb_put_node(db, &two, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, two.id, &two.ep.ip, NOW - 2 * DAY));
    CHECK_OK(p2p_nodedb_set_last_ping(db, two.id, &two.ep.ip, NOW - 2 * DAY));
    CHECK_OK(p2p_nodedb_set_findfails(db, two.id, &two.ep.ip, 3));
    CHECK_OK(p2p_nodedb_set_last_pong(db, two.id, &ip2, NOW - 60));
    CHECK_OK(p2p_nodedb_set_last_ping(db, two.id, &ip2, NOW - 60));
    CHECK_OK(p2p_nodedb_set_findfails(db, two.id, &ip2, 2));
    /* no pong at all (only a ping): deleted */
    p2p_node_t none = mknode(9, 10);
    CHECK_OK(p2p_nodedb_put_node(db, &none, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_ping(db, none.id, &none.ep.ip, NOW));
    /* exactly 24 h old: kept (older than 24 h expires) */
    p2p_node_t edge = mknode(9, 11);
    CHECK_OK(p2p_nodedb_put_node(db, &edge, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, edge.id, &edge.ep.ip, NOW - DAY));
    /* a pong stamped a year ahead (before the wall clock went back):
     * deleted, not kept until the clock catches up; one 300 s ahead is kept */
    p2p_node_t ahead = mknode(9, 12), near = mknode(9, 13);
    CHECK_OK(p2p_nodedb_put_node(db, &ahead, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, ahead.id, &ahead.ep.ip, NOW + 365 * DAY));
    CHECK_OK(p2p_nodedb_put_node(db, &near, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, near.id, &near.ep.ip, NOW + P2P_NODEDB_FUTURE));
    /* local seq survives expiry */
    CHECK_OK(p2p_nodedb_set_local_seq(db, none.id, 5));

    size_t deleted = 0;
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW));
    CHECK(deleted == N / 2 + 2);
    CHECK_ERR(p2p_nodedb_get_node(db, &got0, NULL, NULL, ahead.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_get_node(db, &got0, NULL, NULL, near.id));
    p2p_node_t got;
    uint64_t t;
    uint32_t f;
    for (int i = 0; i < N; i++) {
        int rc = p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[i].id);
        CHECK(rc == (i % 2 == 0 ? 0 : P2P_ENOTFOUND));
        CHECK_OK(p2p_nodedb_findfails(db, &f, nodes[i].id, &nodes[i].ep.ip));
        CHECK(f == (i % 2 == 0 ? 1u : 0u));
    }
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, two.id));
    /* ... but the items of its stale address are gone (geth's per-IP
     * rule), those of the fresh one stay */
    check_items(db, two.id, &two.ep.ip, 0, 0, 0);
    check_items(db, two.id, &ip2, NOW - 60, NOW - 60, 2);
    p2p_nodedb_stats_t st1;
    p2p_nodedb_stats(db, &st1);
    CHECK(st1.ips_expired == N / 2 + 1); /* the odd nodes' addresses and two's stale one */
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, edge.id));
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, none.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, none.id, &none.ep.ip));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_local_seq(db, &t, none.id));
    CHECK(t == 5);

    /* nothing more to do at the same time; a day later everything goes */
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW));
    CHECK(deleted == 0);
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW + DAY + P2P_NODEDB_FUTURE + 1));
    CHECK(deleted == N / 2 + 3);
    size_t nout;
    p2p_node_t out[8];
    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 8, 100 * DAY, NOW));
    CHECK(nout == 0);
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.expired == N + 5);
    CHECK(st.errors == 0);
    p2p_nodedb_close(db);
}

static void test_restart(const char *dir)
{
    enum { N = 40 };
    static p2p_node_t nodes[N];
    uint8_t self[32], enr[200];
    tu_rand_bytes(self, 32);
    tu_rand_bytes(enr, sizeof enr);

    p2p_nodedb_t *db = open_db(dir);
    for (int i = 0; i < N; i++) {
        nodes[i] = mknode(6, (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &nodes[i], enr, (size_t)i));
        CHECK_OK(p2p_nodedb_set_last_pong(db, nodes[i].id, &nodes[i].ep.ip, NOW - (uint64_t)i));
        CHECK_OK(p2p_nodedb_set_last_ping(db, nodes[i].id, &nodes[i].ep.ip, NOW - 2));
        CHECK_OK(p2p_nodedb_set_findfails(db, nodes[i].id, &nodes[i].ep.ip, (uint32_t)i % 5));
    }
    CHECK_OK(p2p_nodedb_set_local_seq(db, self, 77));
    p2p_nodedb_close(db);

    for (int restart = 0; restart < 3; restart++) {
        db = open_db(dir);
        for (int i = 0; i < N; i++) {
            p2p_node_t got;
            uint8_t e[P2P_NODEDB_ENR_MAX];
            size_t elen = sizeof e;
            uint64_t t;
            uint32_t f;
            CHECK_OK(p2p_nodedb_get_node(db, &got, e, &elen, nodes[i].id));
            CHECK(node_eq(&got, &nodes[i]));
            CHECK(elen == (size_t)i);
            CHECK_MEM(e, enr, elen);
            CHECK_OK(p2p_nodedb_last_pong(db, &t, nodes[i].id, &nodes[i].ep.ip));
            CHECK(t == NOW - (uint64_t)i);
            CHECK_OK(p2p_nodedb_last_ping(db, &t, nodes[i].id, &nodes[i].ep.ip));
            CHECK(t == NOW - 2);
            CHECK_OK(p2p_nodedb_findfails(db, &f, nodes[i].id, &nodes[i].ep.ip));
            CHECK(f == (uint32_t)i % 5);
        }
        uint64_t seq;
        CHECK_OK(p2p_nodedb_local_seq(db, &seq, self));
        CHECK(seq == 77 + (uint64_t)restart);
        CHECK_OK(p2p_nodedb_set_local_seq(db, self, seq + 1));
        /* seeds come back after the restart */
        p2p_node_t out[30];
        size_t nout;
        CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 30, 5 * DAY, NOW));
        CHECK(nout >= 15);
        p2p_nodedb_close(db);
    }
}

/* chmod every regular file of dir to mode */
static int chmod_files(const char *dir, mode_t mode)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_type == DT_REG && fchmodat(dirfd(d), e->d_name, mode, 0) != 0) rc = -1;
    closedir(d);
    return rc;
}

/* A database whose files we may not write (read-only files, another
 * owner's): the open fails naming the file and the database is left as
 * it is, never wiped as if damaged; writable again, it opens with its
 * nodes.  Run by an unprivileged child (root ignores file modes): as
 * nobody when the test runs as root.  Exit codes name the failed step. */
static int no_access_child(const char *dir)
{
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 10;
    char nodes[128], msg[256];
    snprintf(nodes, sizeof nodes, "%s/nodes", dir);
    p2p_nodedb_t *db = NULL;
    if (p2p_nodedb_open(&db, msg, sizeof msg, dir, 0) != 0) return 11;
    p2p_node_t n = mknode(9, 9);
    if (p2p_nodedb_put_node(db, &n, NULL, 0) != 0) return 12;
    p2p_nodedb_close(db);
    if (chmod_files(nodes, 0400) != 0) return 13;
    db = NULL;
    int rc = p2p_nodedb_open(&db, msg, sizeof msg, dir, 0);
    if (rc != P2P_ESYS || db != NULL) return 14;
    if (!strstr(msg, "Permission denied") || !strstr(msg, "left as it is")) return 15;
    if (chmod_files(nodes, 0600) != 0) return 16;
    if (p2p_nodedb_open(&db, msg, sizeof msg, dir, 0) != 0) return 17;
    p2p_node_t got;
    uint8_t e[P2P_NODEDB_ENR_MAX];
    size_t elen = sizeof e;
    rc = p2p_nodedb_get_node(db, &got, e, &elen, n.id);
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    p2p_nodedb_close(db);
    if (rc != 0 || !node_eq(&got, &n)) return 18;
    if (st.wipes != 0) return 19;
    return 0;
}

static void test_no_access(const char *dir)
{
    if (getuid() == 0) CHECK(chown(dir, 65534, 65534) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(no_access_child(dir));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        printf("no_access_child: status 0x%x (exit %d)\n", status, WEXITSTATUS(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_runrecovery(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t n = mknode(1, 1), m = mknode(1, 2), got;
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));

    p2p__nodedb_panic(db);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id));
    CHECK(node_eq(&got, &n));
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.recoveries == 1);
    CHECK(st.errors >= 1);
    CHECK(strstr(p2p_nodedb_errmsg(db), "recovery") != NULL);

    p2p__nodedb_panic(db);
    CHECK_OK(p2p_nodedb_put_node(db, &m, NULL, 0));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, m.id));
    p2p_nodedb_stats(db, &st);
    CHECK(st.recoveries == 2);
    p2p_nodedb_close(db);

    db = open_db(dir);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, m.id));
    p2p_nodedb_close(db);
}

/* The descriptors open in this process. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = -1; /* the directory's own descriptor */
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Out of descriptors at open (RLIMIT_NOFILE a few above what the process
 * holds): Berkeley DB's recovery cannot open the files and panics, which
 * is no damage.  Open must fail, naming the error, without wiping the
 * database, and fail fast (Berkeley DB would sleep 2+4+6 s per file it
 * cannot open); once descriptors are free every record is there.  In a
 * child: the limit is the process's. */
static int emfile_child(const char *dir)
{
    char msg[256];
    p2p_nodedb_t *db = NULL;
    p2p_node_t n = mknode(3, 3), got;
    if (p2p_nodedb_open(&db, msg, sizeof msg, dir, 0) != 0) return 10;
    if (p2p_nodedb_put_node(db, &n, NULL, 0) != 0) return 11;
    p2p_nodedb_close(db);
    struct rlimit old, rl;
    if (getrlimit(RLIMIT_NOFILE, &old) != 0) return 12;
    for (int spare = 1; spare <= 3; spare++) {
        int fds = count_fds();
        if (fds < 0) return 13;
        rl = old;
        rl.rlim_cur = (rlim_t)fds + (rlim_t)spare;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 14;
        uint64_t t0 = p2p_now_ns();
        db = NULL;
        int rc = p2p_nodedb_open(&db, msg, sizeof msg, dir, 0);
        uint64_t took = p2p_now_ns() - t0;
        p2p_nodedb_stats_t st = {0};
        if (db) p2p_nodedb_stats(db, &st);
        p2p_nodedb_close(db);
        if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 15;
        if (rc == 0 && st.wipes != 0) {
            printf("emfile: spare %d: opened on a wiped database\n", spare);
            return 16;
        }
        if (rc != 0 && !strstr(msg, "Too many open files")) {
            printf("emfile: spare %d: message \"%s\"\n", spare, msg);
            return 17;
        }
        db = NULL;
        if (p2p_nodedb_open(&db, msg, sizeof msg, dir, 0) != 0) return 19;
        rc = p2p_nodedb_get_node(db, &got, NULL, NULL, n.id);
        p2p_nodedb_stats(db, &st);
        p2p_nodedb_close(db);
        if (rc != 0 || !node_eq(&got, &n)) {
            printf("emfile: spare %d: the record is gone (wiped)\n", spare);
            return 20;
        }
        if (took > 3 * P2P_NS_PER_S) {
            printf("emfile: spare %d: open took %.1f s\n", spare, (double)took / 1e9);
            return 18;
        }
    }
    return 0;
}

static void test_emfile(const char *dir)
{
    if (RUNNING_ON_VALGRIND) return; /* valgrind keeps descriptors of its own */
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(emfile_child(dir));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        printf("emfile_child: status 0x%x (exit %d)\n", status, WEXITSTATUS(status));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_sync_and_errors(const char *dir)
{
    char msg[256], path[128];
    p2p_nodedb_t *db = NULL;
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, P2P_NODEDB_SYNC));
    p2p_node_t n = mknode(2, 2), got;
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    p2p_nodedb_close(db);
    db = open_db(dir);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id));
    p2p_nodedb_close(db);

    /* the nodes directory was created private */
    struct stat sb;
    snprintf(path, sizeof path, "%s/nodes", dir);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);

    /* a missing data directory, bad flags */
    snprintf(path, sizeof path, "%s/missing/deeper", dir);
    CHECK_ERR(p2p_nodedb_open(&db, msg, sizeof msg, path, 0), P2P_ESYS);
    CHECK(db == NULL);
    CHECK(strstr(msg, "missing") != NULL);
    CHECK_ERR(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0x80), P2P_EINVAL);
    CHECK_ERR(p2p_nodedb_open(&db, NULL, 0, "", 0), P2P_EINVAL);
    /* nodes is a file, not a directory */
    char dir2buf[64];
    const char *dir2 = tu_tmpdir(dir2buf, "nodedb");
    snprintf(path, sizeof path, "%s/nodes", dir2);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_ERR(p2p_nodedb_open(&db, msg, sizeof msg, dir2, 0), P2P_ESYS);
    CHECK(strstr(msg, "not a directory") != NULL);
    p2p_nodedb_close(NULL);
    tu_rm_rf(dir2);
}

/* Removes the log files of the environment at dir (what a user who deletes
 * them to save space, or who copies nodes.db alone, leaves behind). */
static void remove_logs(const char *dir)
{
    char path[160];
    for (int i = 1; i < 100; i++) {
        snprintf(path, sizeof path, "%s/nodes/log.%010d", dir, i);
        (void)unlink(path);
    }
}

/* nodes.db without the log files it was written with (removed, or the file
 * copied from another data directory): its pages carry LSNs past the end of
 * the new log, and Berkeley DB refuses every write to them (EINVAL,
 * "past end of log").  Open makes the file usable again (its LSNs are
 * reset, the nodes kept); before, every write failed on every start, for
 * ever, and nothing was persisted (not even our record's sequence number). */
static void test_logs_removed(const char *dir)
{
    char path[128];
    static p2p_node_t nodes[2000];
    fill_nodes(dir, nodes, 2000, path);
    p2p_nodedb_t *db = open_db(dir);
    CHECK_OK(p2p_nodedb_set_local_seq(db, nodes[0].id, 7));
    p2p_nodedb_close(db);
    remove_logs(dir);

    db = open_db(dir);
    p2p_node_t got, n = mknode(200, 1);
    CHECK_OK(p2p_nodedb_put_node(db, &n, NULL, 0));
    CHECK_OK(p2p_nodedb_set_local_seq(db, nodes[0].id, 8));
    for (unsigned i = 0; i < 2000; i += 97)
        CHECK_OK(p2p_nodedb_set_last_pong(db, nodes[i].id, &nodes[i].ep.ip, NOW));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[1234].id));
    CHECK(node_eq(&got, &nodes[1234]));
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 0 && st.lsn_resets == 1);
    p2p_nodedb_close(db);

    /* what was written is there after a restart */
    db = open_db(dir);
    uint64_t v = 0;
    CHECK_OK(p2p_nodedb_local_seq(db, &v, nodes[0].id));
    CHECK(v == 8);
    CHECK_OK(p2p_nodedb_last_pong(db, &v, nodes[97].id, &nodes[97].ep.ip));
    CHECK(v == NOW);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, n.id));
    p2p_nodedb_close(db);

    /* a small file (its open succeeds; the first write finds the LSN):
     * our record's sequence number, written at every start, moves on */
    char dir3buf[64];
    const char *dir3 = tu_tmpdir(dir3buf, "nodedb");
    db = open_db(dir3);
    CHECK_OK(p2p_nodedb_set_local_seq(db, nodes[0].id, 7));
    p2p_nodedb_close(db);
    for (uint64_t seq = 8; seq < 11; seq++) {
        remove_logs(dir3);
        db = open_db(dir3);
        CHECK_OK(p2p_nodedb_local_seq(db, &v, nodes[0].id));
        CHECK(v == seq - 1);
        CHECK_OK(p2p_nodedb_set_local_seq(db, nodes[0].id, seq));
        p2p_nodedb_close(db);
    }
    tu_rm_rf(dir3);

    /* nodes.db copied into another data directory that has its own log */
    char dir2buf[64], cmd[300];
    const char *dir2 = tu_tmpdir(dir2buf, "nodedb");
    db = open_db(dir2);
    p2p_nodedb_close(db);
    snprintf(cmd, sizeof cmd, "cp %s/nodes/nodes.db %s/nodes/nodes.db", dir, dir2);
    CHECK(system(cmd) == 0);
    db = open_db(dir2);
    CHECK_OK(p2p_nodedb_set_local_seq(db, nodes[0].id, 9));
    CHECK_OK(p2p_nodedb_set_last_pong(db, nodes[1999].id, &nodes[1999].ep.ip, NOW));
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, nodes[5].id));
    p2p_nodedb_close(db);
    tu_rm_rf(dir2);
}

/* Many writes: checkpoints run and old log files are removed, so the log
 * stays bounded. */
static void test_log_bounded(const char *dir)
{
    char path[128];
    p2p_nodedb_t *db = open_db(dir);
    uint8_t enr[P2P_NODEDB_ENR_MAX];
    tu_rand_bytes(enr, sizeof enr);
    enum { N = 6000 };
    for (int i = 0; i < N; i++) {
        p2p_node_t n = mknode((uint8_t)(i >> 8), (uint8_t)i);
        CHECK_OK(p2p_nodedb_put_node(db, &n, enr, sizeof enr));
        CHECK_OK(p2p_nodedb_set_last_pong(db, n.id, &n.ep.ip, NOW));
    }
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.checkpoints >= 2 * N / 1024 - 1);
    p2p_nodedb_close(db);
    /* ~5 MB of log were written in 1 MB files; at most a few remain */
    int logs = 0, last = 0;
    for (int i = 1; i < 100; i++) {
        snprintf(path, sizeof path, "%s/nodes/log.%010d", dir, i);
        if (access(path, F_OK) == 0) logs++, last = i;
    }
    CHECK(last >= 4);
    CHECK(logs >= 1 && logs <= 3);
}

/* A key longer than the 1 KiB read buffer (only a damaged or foreign file
 * holds one) is counted and skipped by every walk: seed queries, expiry and
 * the deletion of the node whose prefix it carries.  Berkeley DB refuses
 * such a read without moving the cursor, which used to make every seed
 * query and expiry fail with P2P_EDB for good (found by fuzz_nodedb). */
static void test_long_key(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t good = mknode(1, 1), old = mknode(1, 2);
    /* A seek finds good when it lands after old's ID and up to good's
     * (the walk wraps to the start of the key space after the last ID):
     * here 7/8 of the space.  With random IDs that gap could be tiny, and
     * a run could miss good in 200 queries of 40 seeks. */
    old.id[0] = 0x10;
    good.id[0] = 0xf0;
    CHECK_OK(p2p_nodedb_put_node(db, &good, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, good.id, &good.ep.ip, NOW - 60));
    CHECK_OK(p2p_nodedb_put_node(db, &old, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, old.id, &old.ep.ip, NOW - 2 * DAY));
    static uint8_t k[1500];
    memset(k, 0, sizeof k);
    memcpy(k, "n:", 2); /* first in the node key space */
    CHECK_OK(p2p__nodedb_put_raw(db, k, sizeof k, "x", 1));
    memcpy(k + 2, old.id, 32); /* under old's prefix */
    memcpy(k + 34, ":v4:", 4);
    CHECK_OK(p2p__nodedb_put_raw(db, k, sizeof k, "y", 1));
    memset(k + 2, 0xff, sizeof k - 2); /* last */
    CHECK_OK(p2p__nodedb_put_raw(db, k, sizeof k, "z", 1));

    p2p_node_t out[8];
    size_t nout = 0, deleted = 0;
    /* Seeds come from random seeks: a seek that lands in old's part of the
     * key space finds old (too old to be a seed), so a single query may
     * miss good.  Every query must succeed and return good or nothing. */
    int hits = 0;
    for (int q = 0; q < 200 && hits < 3; q++) {
        CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 8, DAY, NOW));
        CHECK(nout <= 1);
        if (nout == 1) hits += node_eq(&out[0], &good) ? 1 : -100;
    }
    CHECK(hits == 3);
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW));
    CHECK(deleted == 1);
    p2p_node_t got;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, old.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, good.id));
    CHECK(node_eq(&got, &good));
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.bad_records > 0);
    CHECK(st.errors == 0);
    p2p_nodedb_close(db);

    /* the two long keys left are still skipped after a restart */
    db = open_db(dir);
    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 8, DAY, NOW));
    CHECK(nout == 1 && node_eq(&out[0], &good));
    CHECK_OK(p2p_nodedb_delete_node(db, good.id));
    CHECK_OK(p2p_nodedb_expire(db, &deleted, NOW));
    CHECK_OK(p2p_nodedb_query_seeds(db, out, &nout, 8, DAY, NOW));
    CHECK(nout == 0);
    p2p_nodedb_stats(db, &st);
    CHECK(st.errors == 0);
    p2p_nodedb_close(db);
}

/* The core stores a node's raw ENR when an ENRResponse is applied
 * (put_node(node, raw)) and writes the node again as a seed after every
 * successful revalidation (put_node(node, NULL, 0), same seq): the second
 * write keeps the stored ENR.  A write with another seq and no ENR drops it
 * (it would not match the record any more). */
static void test_seed_keeps_enr(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t a = mknode(7, 8), got;
    uint8_t enr[P2P_NODEDB_ENR_MAX], enr2[P2P_NODEDB_ENR_MAX];
    tu_rand_bytes(enr, sizeof enr);
    CHECK_OK(p2p_nodedb_put_node(db, &a, enr, 150)); /* ENRResponse */
    /* revalidation seed write: the endpoint may have moved, seq unchanged */
    a.ep.udp++;
    CHECK_OK(p2p_nodedb_put_node(db, &a, NULL, 0));
    size_t elen = sizeof enr2;
    CHECK_OK(p2p_nodedb_get_node(db, &got, enr2, &elen, a.id));
    CHECK(node_eq(&a, &got));
    CHECK(elen == 150);
    CHECK_MEM(enr, enr2, 150);
    /* a new ENR replaces it */
    enr[0] ^= 0xff;
    CHECK_OK(p2p_nodedb_put_node(db, &a, enr, 100));
    elen = sizeof enr2;
    CHECK_OK(p2p_nodedb_get_node(db, &got, enr2, &elen, a.id));
    CHECK(elen == 100);
    CHECK_MEM(enr, enr2, 100);
    /* another seq without ENR: dropped */
    a.seq++;
    CHECK_OK(p2p_nodedb_put_node(db, &a, NULL, 0));
    elen = sizeof enr2;
    CHECK_OK(p2p_nodedb_get_node(db, &got, enr2, &elen, a.id));
    CHECK(node_eq(&a, &got));
    CHECK(elen == 0);
    p2p_nodedb_close(db);
}

/* Incremental expiry after a flood: one node ID with NBIG stale items (seen
 * at NBIG IPs, never a pong), one with many items and a fresh pong in the
 * middle of them, and fresh nodes.  Every step touches at most the budget,
 * and the steps delete exactly the stale nodes. */
static void test_expire_steps(const char *dir)
{
    /* 300,000 items (30,000 under sanitizers: one transaction each) */
    const uint32_t NBIG = (uint32_t)tu_scale(300000, 30000);
    enum { NMID = 5000, BUDGET = 1000 };
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t big = mknode(0x80, 1), mid = mknode(0x80, 2), fresh[3];
    CHECK_OK(p2p_nodedb_put_node(db, &big, NULL, 0));
    CHECK_OK(p2p_nodedb_put_node(db, &mid, NULL, 0));
    uint64_t t0 = p2p_now_ns();
    for (uint32_t i = 0; i < NBIG; i++) {
        p2p_ip_t ip = p2p_ip4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        CHECK_OK(p2p_nodedb_set_last_ping(db, big.id, &ip, NOW - 2 * DAY));
    }
    double fill_s = (double)(p2p_now_ns() - t0) / 1e9;
    for (uint32_t i = 0; i < NMID; i++) {
        p2p_ip_t ip = p2p_ip4(11, 0, (uint8_t)(i >> 8), (uint8_t)i);
        if (i == NMID / 2)
            CHECK_OK(p2p_nodedb_set_last_pong(db, mid.id, &ip, NOW - 60));
        else
            CHECK_OK(p2p_nodedb_set_last_ping(db, mid.id, &ip, NOW - 2 * DAY));
    }
    for (int i = 0; i < 3; i++) {
        fresh[i] = mknode((uint8_t)(0x10 + 0x60 * i), 3); /* before, between, after */
        CHECK_OK(p2p_nodedb_put_node(db, &fresh[i], NULL, 0));
        CHECK_OK(p2p_nodedb_set_last_pong(db, fresh[i].id, &fresh[i].ep.ip, NOW - 3600));
    }
    p2p_nodedb_expire_state_t *st = malloc(sizeof *st);
    p2p_nodedb_expire_begin(st, NOW);
    size_t deleted = 0, steps = 0, maxtouched = 0, d = 0;
    t0 = p2p_now_ns();
    uint64_t maxstep_ns = 0;
    while (!st->done && steps < 10 * (NBIG + NMID) / BUDGET) {
        uint64_t s0 = p2p_now_ns();
        CHECK_OK(p2p_nodedb_expire_step(db, st, BUDGET, &d));
        uint64_t dt = p2p_now_ns() - s0;
        if (!st->done && dt > maxstep_ns) maxstep_ns = dt; /* the last one checkpoints */
        deleted += d;
        steps++;
        if (st->touched > maxtouched) maxtouched = st->touched;
    }
    printf("expire steps: %u items filled in %.1f s; %zu steps of <= %zu keys (budget %d), "
           "longest %.1f ms (before the final checkpoint), pass %.1f s\n",
           NBIG, fill_s, steps, maxtouched, BUDGET, (double)maxstep_ns / 1e6,
           (double)(p2p_now_ns() - t0) / 1e9);
    CHECK(st->done);
    CHECK(maxtouched <= BUDGET);
    CHECK(steps >= 2 * NBIG / BUDGET); /* read, then deleted, in steps */
    CHECK(deleted == 1);
    p2p_node_t got;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, big.id), P2P_ENOTFOUND);
    uint64_t t = 1;
    uint32_t last = NBIG - 1;
    p2p_ip_t ip0 = p2p_ip4(10, 0, 0, 0),
             iplast = p2p_ip4(10, (uint8_t)(last >> 16), (uint8_t)(last >> 8), (uint8_t)last);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, big.id, &ip0));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, big.id, &iplast));
    CHECK(t == 0);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, mid.id));
    p2p_ip_t midip = p2p_ip4(11, 0, 0, 7);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, mid.id, &midip));
    CHECK(t == NOW - 2 * DAY);
    for (int i = 0; i < 3; i++) CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, fresh[i].id));
    /* a finished pass does nothing */
    CHECK_OK(p2p_nodedb_expire_step(db, st, BUDGET, &d));
    CHECK(d == 0 && st->touched == 0);
    CHECK_ERR(p2p_nodedb_expire_step(db, st, 0, &d), P2P_EINVAL);
    free(st);
    p2p_nodedb_close(db);
}

/* A pong written between two steps of a pass, while the pass is inside
 * that node's keys (the step loop of p2p-disc handles packets between
 * steps): the node was stale when its old pong was read, but is fresh
 * now, and its new pong must survive the pass. */
static void test_expire_step_fresh_pong(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t x = mknode(0, 1);
    p2p_ip_t a = x.ep.ip, c = p2p_ip4(10, 0, 0, 9);
    CHECK_OK(p2p_nodedb_put_node(db, &x, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_pong(db, x.id, &a, NOW - 2 * DAY));
    CHECK_OK(p2p_nodedb_set_last_ping(db, x.id, &c, NOW - 2 * DAY));
    p2p_nodedb_expire_state_t *st = malloc(sizeof *st);
    p2p_nodedb_expire_begin(st, NOW);
    size_t d = 0;
    int steps = 0;
    /* step until the old pong at a was read (the group is not closed yet) */
    while (!st->done && !(st->in_group && st->youngest != 0) && steps < 100) {
        CHECK_OK(p2p_nodedb_expire_step(db, st, 1, &d));
        steps++;
    }
    CHECK(st->in_group && !st->deleting && !st->done);
    /* x bonds again now, at a (a pong of ours answered, on_pong) */
    CHECK_OK(p2p_nodedb_set_last_pong(db, x.id, &a, NOW));
    CHECK_OK(p2p_nodedb_set_last_ping(db, x.id, &a, NOW));
    while (!st->done && steps < 100) {
        CHECK_OK(p2p_nodedb_expire_step(db, st, 1, &d));
        steps++;
    }
    CHECK(st->done);
    uint64_t t = 0;
    CHECK_OK(p2p_nodedb_last_pong(db, &t, x.id, &a));
    CHECK(t == NOW); /* the bond proven a moment ago */
    CHECK_OK(p2p_nodedb_last_ping(db, &t, x.id, &a));
    CHECK(t == NOW);
    p2p_node_t got;
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, x.id)); /* its record stays */
    CHECK(st->deleted == 0 && d == 0);
    free(st);
    p2p_nodedb_close(db);
}

/* The same pong, written while the pass is already deleting the node (its
 * first address's items are gone): the deletion stops at the fresh one,
 * and the record stays. */
static void test_expire_delete_fresh_pong(const char *dir)
{
    p2p_nodedb_t *db = open_db(dir);
    p2p_node_t x = mknode(0, 1);
    p2p_ip_t a = p2p_ip4(10, 0, 0, 1), b = p2p_ip4(10, 0, 0, 2);
    CHECK_OK(p2p_nodedb_put_node(db, &x, NULL, 0));
    CHECK_OK(p2p_nodedb_set_last_ping(db, x.id, &a, NOW - 2 * DAY));
    CHECK_OK(p2p_nodedb_set_last_ping(db, x.id, &b, NOW - 2 * DAY));
    p2p_nodedb_expire_state_t *st = malloc(sizeof *st);
    p2p_nodedb_expire_begin(st, NOW);
    size_t d = 0;
    int steps = 0;
    while (!st->done && !st->deleting && steps < 100) {
        CHECK_OK(p2p_nodedb_expire_step(db, st, 1, &d));
        steps++;
    }
    CHECK(st->deleting);
    CHECK_OK(p2p_nodedb_expire_step(db, st, 1, &d)); /* a's lastping */
    uint64_t t = 1;
    CHECK_OK(p2p_nodedb_last_ping(db, &t, x.id, &a));
    CHECK(t == 0 && st->deleting);
    CHECK_OK(p2p_nodedb_set_last_pong(db, x.id, &b, NOW));
    while (!st->done && steps < 100) {
        CHECK_OK(p2p_nodedb_expire_step(db, st, 1, &d));
        steps++;
    }
    CHECK(st->done && st->deleted == 0);
    CHECK_OK(p2p_nodedb_last_pong(db, &t, x.id, &b));
    CHECK(t == NOW);
    CHECK_OK(p2p_nodedb_last_ping(db, &t, x.id, &b));
    CHECK(t == NOW - 2 * DAY);
    p2p_node_t got;
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, x.id));
    /* and a node that stays stale still goes whole, record last */
    p2p_nodedb_expire_begin(st, NOW + 3 * DAY);
    steps = 0;
    while (!st->done && steps < 100) {
        CHECK_OK(p2p_nodedb_expire_step(db, st, 1, &d));
        steps++;
    }
    CHECK(st->done && st->deleted == 1);
    CHECK(p2p_nodedb_get_node(db, &got, NULL, NULL, x.id) == P2P_ENOTFOUND);
    free(st);
    p2p_nodedb_close(db);
}

int main(void)
{
    tu_seed((uint64_t)time(NULL));
    in_tmpdir(test_put_get_delete);
    in_tmpdir(test_seed_keeps_enr);
    in_tmpdir(test_items);
    in_tmpdir(test_version_wipe);
    in_tmpdir(test_bad_values);
    in_tmpdir(test_damaged_file);
    in_tmpdir(test_truncated_file);
    in_tmpdir(test_bad_page_live);
    in_tmpdir(test_version_wipe_large);
    in_tmpdir(test_seeds);
    in_tmpdir(test_expire);
    in_tmpdir(test_expire_steps);
    in_tmpdir(test_expire_step_fresh_pong);
    in_tmpdir(test_expire_delete_fresh_pong);
    in_tmpdir(test_restart);
    in_tmpdir(test_runrecovery);
    in_tmpdir(test_no_access);
    in_tmpdir(test_emfile);
    in_tmpdir(test_sync_and_errors);
    in_tmpdir(test_log_bounded);
    in_tmpdir(test_logs_removed);
    in_tmpdir(test_long_key);
    return tu_done("nodedb");
}
