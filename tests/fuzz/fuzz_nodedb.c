/*
 * tests/fuzz/fuzz_nodedb.c: libFuzzer target for the node database's
 * decoding of what it finds in its file (actors/nodedb.c): node records,
 * per-IP items, the local sequence number and keys of any shape, as a
 * damaged or foreign file would hold them, read back through the public
 * calls the discovery thread makes.
 *
 * One database in a temporary directory for the whole process (removed at
 * exit).  The input is a script: each step is an opcode byte followed by
 * the bytes it reads (zeros once the input runs out):
 *   0 a raw node record value ("n:" id ":v4") for one of four IDs;
 *   1 a raw item value for one of those IDs and a few IPs, field lastping,
 *     lastpong, findfail or fuzzer bytes;
 *   2 a raw local sequence value;
 *   3 a raw key of fuzzer bytes (up to 2 KiB, usually under "n:"), value
 *     of fuzzer bytes;
 *   4 reads for one ID: get_node, last_ping, last_pong, findfails,
 *     local_seq;
 *   5 query_seeds (n, max age from the input);
 *   6 expire at a time from the input;
 *   7 a valid record through put_node and a pong through set_last_pong.
 * Every key written is deleted at the end of the input, so inputs do not
 * see each other's records.
 *
 * Properties: no crash or sanitizer report; every call returns 0 or one of
 * its documented errors; a record read back has a known address family
 * and an ENR within the limit; seeds are at most n, each with a known
 * family and an ID the script wrote.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/nodedb.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NIDS 4
#define NOW 1800000000ull
#define MAX_KEYS 64

static struct {
    p2p_nodedb_t *db;
    char dir[64];
    uint8_t ids[NIDS][32];
    struct {
        uint8_t k[2048];
        size_t n;
    } keys[MAX_KEYS];
    unsigned nkeys;
} g;

static void rm_dir(void)
{
    char cmd[128];
    p2p_nodedb_close(g.db);
    g.db = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g.dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_nodedb: could not remove %s\n", g.dir);
}

static void setup(void)
{
    if (g.db) return;
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g.dir, sizeof g.dir, "%s/fuzz-nodedb-XXXXXX", tmp);
    if (!mkdtemp(g.dir)) abort();
    p2p_log_set_level(P2P_LOG_CRIT); /* damaged records are logged as errors */
    char msg[256];
    if (p2p_nodedb_open(&g.db, msg, sizeof msg, g.dir, 0)) {
        fprintf(stderr, "fuzz_nodedb: %s\n", msg);
        abort();
    }
    for (int i = 0; i < NIDS; i++) {
        memset(g.ids[i], 0x10 * (i + 1), 32);
        g.ids[i][31] = (uint8_t)i;
    }
    atexit(rm_dir);
}

typedef struct cur {
    const uint8_t *p, *end;
} cur_t;

static uint8_t u8(cur_t *c)
{
    return c->p < c->end ? *c->p++ : 0;
}

static uint16_t u16(cur_t *c)
{
    return (uint16_t)(u8(c) << 8 | u8(c));
}

static const uint8_t *chunk(cur_t *c, size_t max, size_t *n)
{
    size_t len = u16(c) % (max + 1), left = (size_t)(c->end - c->p);
    if (len > left) len = left;
    const uint8_t *p = c->p;
    c->p += len;
    *n = len;
    return p;
}

static void put(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    static const uint8_t empty[1];
    if (klen == 0) return;
    int rc = p2p__nodedb_put_raw(g.db, k, klen, vlen ? v : empty, vlen);
    if (rc && rc != P2P_EDB) abort();
    if (g.nkeys < MAX_KEYS) {
        memcpy(g.keys[g.nkeys].k, k, klen);
        g.keys[g.nkeys++].n = klen;
    }
}

static size_t nodekey(uint8_t *k, const uint8_t id[32])
{
    memcpy(k, "n:", 2);
    memcpy(k + 2, id, 32);
    memcpy(k + 34, ":v4", 3);
    return 37;
}

static p2p_ip_t pick_ip(uint8_t b)
{
    p2p_ip_t ip;
    switch (b % 3) {
    case 0:
        ip = p2p_ip4(10, 0, 0, b);
        break;
    case 1:
        memset(&ip, 0, sizeof ip);
        ip.family = 6;
        ip.addr[0] = 0x20;
        ip.addr[15] = b;
        break;
    default:
        ip = p2p_ip4(127, 0, 0, 1);
        break;
    }
    return ip;
}

static void check_node(const p2p_node_t *n, size_t enrlen)
{
    if ((n->ep.ip.family != 0 && n->ep.ip.family != 4 && n->ep.ip.family != 6) ||
        enrlen > P2P_NODEDB_ENR_MAX)
        abort();
}

static void step_reads(cur_t *c)
{
    const uint8_t *id = g.ids[u8(c) % NIDS];
    p2p_ip_t ip = pick_ip(u8(c));
    p2p_node_t n;
    uint8_t enr[P2P_NODEDB_ENR_MAX];
    size_t enrlen = sizeof enr;
    int rc = p2p_nodedb_get_node(g.db, &n, enr, &enrlen, id);
    if (rc == 0)
        check_node(&n, enrlen);
    else if (rc != P2P_ENOTFOUND && rc != P2P_EDECODE && rc != P2P_EDB)
        abort();
    uint64_t t;
    uint32_t f;
    rc = p2p_nodedb_last_ping(g.db, &t, id, &ip);
    if (rc && rc != P2P_EDB) abort();
    rc = p2p_nodedb_last_pong(g.db, &t, id, &ip);
    if (rc && rc != P2P_EDB) abort();
    rc = p2p_nodedb_findfails(g.db, &f, id, &ip);
    if (rc && rc != P2P_EDB) abort();
    rc = p2p_nodedb_local_seq(g.db, &t, id);
    if (rc && rc != P2P_EDB) abort();
}

static void step_seeds(cur_t *c)
{
    static p2p_node_t out[64];
    size_t n = u8(c) % 65, nout = 99;
    uint64_t max_age = (uint64_t)u16(c) * 60;
    int rc = p2p_nodedb_query_seeds(g.db, out, &nout, n, max_age, NOW);
    if (rc) {
        if (rc != P2P_EDB && rc != P2P_EINVAL) abort();
        return;
    }
    if (nout > n) abort();
    for (size_t i = 0; i < nout; i++) {
        check_node(&out[i], 0);
        int known = 0;
        for (int k = 0; k < NIDS; k++) known |= memcmp(out[i].id, g.ids[k], 32) == 0;
        if (!known) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    cur_t c = {data, data + size};
    g.nkeys = 0;
    uint8_t k[2048];
    for (int steps = 0; steps < 64 && c.p < c.end; steps++) {
        uint8_t op = u8(&c);
        const uint8_t *v;
        size_t vlen, klen;
        switch (op % 8) {
        case 0:
            klen = nodekey(k, g.ids[u8(&c) % NIDS]);
            v = chunk(&c, 600, &vlen);
            put(k, klen, v, vlen);
            break;
        case 1: {
            static const char *fields[] = {"lastping", "lastpong", "findfail"};
            klen = nodekey(k, g.ids[u8(&c) % NIDS]);
            p2p_ip_t ip = pick_ip(u8(&c));
            k[klen++] = ':';
            memset(k + klen, 0, 16);
            if (ip.family == 4) {
                k[klen + 10] = k[klen + 11] = 0xff;
                memcpy(k + klen + 12, ip.addr, 4);
            } else {
                memcpy(k + klen, ip.addr, 16);
            }
            klen += 16;
            k[klen++] = ':';
            uint8_t f = u8(&c);
            if (f < 0xc0) {
                memcpy(k + klen, fields[f % 3], 8);
                klen += 8;
            } else {
                size_t fl;
                const uint8_t *fp = chunk(&c, 12, &fl);
                memcpy(k + klen, fp, fl);
                klen += fl;
            }
            v = chunk(&c, 16, &vlen);
            put(k, klen, v, vlen);
            break;
        }
        case 2:
            memcpy(k, "local:", 6);
            memcpy(k + 6, g.ids[u8(&c) % NIDS], 32);
            memcpy(k + 38, ":seq", 4);
            v = chunk(&c, 16, &vlen);
            put(k, 42, v, vlen);
            break;
        case 3: {
            const uint8_t *kp = chunk(&c, 2046, &klen);
            size_t off = 0;
            if (!(op & 0x80)) {
                memcpy(k, "n:", 2);
                off = 2;
            }
            memcpy(k + off, kp, klen);
            v = chunk(&c, 600, &vlen);
            put(k, klen + off, v, vlen);
            break;
        }
        case 4:
            step_reads(&c);
            break;
        case 5:
            step_seeds(&c);
            break;
        case 6: {
            size_t deleted;
            int rc = p2p_nodedb_expire(g.db, &deleted, NOW + (uint64_t)u16(&c) * 3600);
            if (rc && rc != P2P_EDB) abort();
            break;
        }
        default: {
            p2p_node_t n;
            memset(&n, 0, sizeof n);
            uint8_t i = u8(&c);
            memcpy(n.id, g.ids[i % NIDS], 32);
            memset(n.pubkey, i, 64);
            n.ep.ip = pick_ip(u8(&c));
            n.ep.udp = u16(&c);
            n.seq = u8(&c);
            int rc = p2p_nodedb_put_node(g.db, &n, NULL, 0);
            if (!rc) rc = p2p_nodedb_set_last_pong(g.db, n.id, &n.ep.ip, NOW - u8(&c) * 3600ull);
            if (rc && rc != P2P_EDB) abort();
            klen = nodekey(k, n.id);
            if (g.nkeys < MAX_KEYS) {
                memcpy(g.keys[g.nkeys].k, k, klen);
                g.keys[g.nkeys++].n = klen;
            }
            break;
        }
        }
    }
    /* leave the database as it was: delete what this input wrote */
    for (unsigned i = 0; i < g.nkeys; i++)
        if (p2p__nodedb_put_raw(g.db, g.keys[i].k, g.keys[i].n, NULL, 0) != 0) abort();
    for (int i = 0; i < NIDS; i++)
        if (p2p_nodedb_delete_node(g.db, g.ids[i]) != 0) abort();
    return 0;
}
