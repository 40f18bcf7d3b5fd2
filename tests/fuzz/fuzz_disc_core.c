/*
 * tests/fuzz/fuzz_disc_core.c: libFuzzer target for the discovery core's
 * packet-handling path (actors/disc_core.c), structure-aware.
 *
 * The input is a script: each step is an opcode byte followed by the bytes
 * its operation reads (zeros once the input runs out).  Operations: deliver
 * a ping, pong, findnode, neighbors, ENR request or ENR response from one of
 * four known identities or from our own ID, at one of several source
 * addresses (public, LAN, loopback, IPv6), with expirations around now;
 * pongs and ENR responses may echo the hash of a packet the core sent (so
 * matchers are reached), neighbors carry valid keys, junk keys or ours;
 * advance the virtual clock (timeouts, revalidation, refresh); start
 * lookups; toggle the candidate stream and pop it; add nodes directly.
 * The signature layer is not involved (the UDP reader verifies before the
 * core sees a packet); wire/discv4 has its own target.
 *
 * Properties checked after every step: no crash; the bounds hold (pending
 * requests, lookups, candidates, table size); our own ID never enters the
 * table; every packet the core sends is well-formed for the encoder (at most
 * 12 neighbors, a known type).
 */
#include <stdlib.h>
#include <string.h>

#include "actors/disc_core.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "wire/enr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NID 5 /* 4 remotes + us (index 4) */

static struct {
    int ready;
    uint8_t priv[NID][32];
    uint8_t pub[NID][64];
    uint8_t id[NID][32];
    p2p_enr_t rec[NID]; /* a valid signed record per identity */
} g;

static void setup(void)
{
    if (g.ready) return;
    for (int i = 0; i < NID; i++) {
        memset(g.priv[i], 0, 32);
        g.priv[i][0] = 0x11;
        g.priv[i][31] = (uint8_t)(i + 1);
        if (p2p_secp_pubkey(g.pub[i], g.priv[i]) != 0) abort();
        p2p_node_id(g.id[i], g.pub[i]);
        p2p_enr_init(&g.rec[i]);
        p2p_enr_set_seq(&g.rec[i], 3);
        p2p_ip_t ip = p2p_ip4(20, 0, (uint8_t)i, 1);
        if (p2p_enr_set_ip(&g.rec[i], &ip) != 0 || p2p_enr_set_port(&g.rec[i], "udp", 30303) != 0 ||
            p2p_enr_sign(&g.rec[i], g.priv[i]) != 0)
            abort();
    }
    g.ready = 1;
}

/* ---- input cursor ---- */

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

static void bytes(cur_t *c, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = u8(c);
}

/* ---- the core's world ---- */

#define SENT_KEEP 32

typedef struct world {
    p2p_disc_t *d;
    uint64_t hashctr;
    unsigned nsent;
    struct {
        uint8_t type;
        uint8_t hash[32];
    } sent[SENT_KEEP];
    /* fake DB: a few (id, ip) records */
    struct {
        uint8_t id[32];
        p2p_ip_t ip;
        uint64_t lastping, lastpong;
        uint32_t fails;
    } rec[64];
    unsigned nrec;
} world_t;

static world_t *W;

static int wsend(void *ctx, uint8_t hash[32], const p2p_endpoint_t *to,
                 const p2p_discv4_packet_t *pkt)
{
    world_t *w = ctx;
    if (pkt->type < P2P_DISCV4_PING || pkt->type > P2P_DISCV4_ENRRESPONSE) abort();
    if (pkt->type == P2P_DISCV4_NEIGHBORS && pkt->u.neighbors.n > P2P_DISCV4_MAX_NEIGHBORS) abort();
    if (to->ip.family != 4 && to->ip.family != 6) abort();
    w->hashctr++;
    p2p_keccak256(hash, (const uint8_t *)&w->hashctr, sizeof w->hashctr);
    unsigned k = w->nsent++ % SENT_KEEP;
    w->sent[k].type = pkt->type;
    memcpy(w->sent[k].hash, hash, 32);
    return 0;
}

static void *wrec(world_t *w, const uint8_t id[32], const p2p_ip_t *ip, int create)
{
    for (unsigned i = 0; i < w->nrec; i++)
        if (memcmp(w->rec[i].id, id, 32) == 0 && p2p_ip_equal(&w->rec[i].ip, ip)) return &w->rec[i];
    if (!create || w->nrec == 64) return NULL;
    memset(&w->rec[w->nrec], 0, sizeof w->rec[0]);
    memcpy(w->rec[w->nrec].id, id, 32);
    w->rec[w->nrec].ip = *ip;
    return &w->rec[w->nrec++];
}

typedef __typeof__(W->rec[0]) rec_t;

static int db_lping(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    rec_t *r = wrec(ctx, id, ip, 0);
    *t = r ? r->lastping : 0;
    return 0;
}
static int db_slping(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    rec_t *r = wrec(ctx, id, ip, 1);
    if (r) r->lastping = t;
    return 0;
}
static int db_lpong(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    rec_t *r = wrec(ctx, id, ip, 0);
    *t = r ? r->lastpong : 0;
    return 0;
}
static int db_slpong(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    rec_t *r = wrec(ctx, id, ip, 1);
    if (r) r->lastpong = t;
    return 0;
}
static int db_ff(void *ctx, uint32_t *f, const uint8_t id[32], const p2p_ip_t *ip)
{
    rec_t *r = wrec(ctx, id, ip, 0);
    *f = r ? r->fails : 0;
    return 0;
}
static int db_sff(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint32_t f)
{
    rec_t *r = wrec(ctx, id, ip, 1);
    if (r) r->fails = f;
    return 0;
}
static int db_put(void *ctx, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    if (enrlen > P2P_ENR_MAX_SIZE) abort();
    return 0;
}
static int db_seeds(void *ctx, p2p_node_t *out, size_t *nout, size_t n, uint64_t max_age,
                    uint64_t now)
{
    *nout = 0;
    return 0;
}

/* ---- script steps ---- */

static p2p_endpoint_t pick_src(cur_t *c)
{
    p2p_endpoint_t e;
    memset(&e, 0, sizeof e);
    uint8_t k = u8(c);
    switch (k % 5) {
    case 0:
        e.ip = p2p_ip4(20, 0, (uint8_t)(k >> 4), 1);
        break;
    case 1:
        e.ip = p2p_ip4(192, 168, 0, (uint8_t)(k >> 3));
        break;
    case 2:
        e.ip = p2p_ip4(127, 0, 0, 1);
        break;
    case 3:
        e.ip.family = 6;
        e.ip.addr[0] = 0x20;
        e.ip.addr[1] = 0x01;
        e.ip.addr[15] = (uint8_t)(k >> 4);
        break;
    default:
        e.ip = p2p_ip4(20, 0, (uint8_t)(k % 4), 1);
        break; /* an identity's own */
    }
    e.udp = (k & 0x80) ? u16(c) : 30303;
    return e;
}

static void pick_tok(cur_t *c, world_t *w, uint8_t tok[32])
{
    uint8_t k = u8(c);
    if (k < 0xe0 && w->nsent > 0) {
        unsigned n = w->nsent < SENT_KEEP ? w->nsent : SENT_KEEP;
        memcpy(tok, w->sent[k % n].hash, 32);
    } else {
        bytes(c, tok, 32);
    }
}

static void rpcnode(cur_t *c, p2p_discv4_rpcnode_t *rn)
{
    uint8_t k = u8(c);
    memset(rn, 0, sizeof *rn);
    switch (k % 4) {
    case 0:
        rn->ep.ip = p2p_ip4(20, 1, u8(c), 1);
        break;
    case 1:
        rn->ep.ip = p2p_ip4(10, 0, 0, u8(c));
        break;
    case 2:
        rn->ep.ip = p2p_ip4(127, 0, 0, u8(c));
        break;
    default:
        rn->ep.ip.family = u8(c) % 8;
        break; /* mostly invalid */
    }
    rn->ep.udp = (k & 0x10) ? u16(c) : 30303;
    rn->ep.tcp = u16(c);
    if ((k >> 5) < 5)
        memcpy(rn->id, g.pub[(k >> 5) % NID], 64); /* a known key, or ours */
    else if ((k >> 5) == 5)
        bytes(c, rn->id, 64);
    else {
        /* a valid key derived from input bytes */
        uint8_t priv[32];
        memset(priv, 0, sizeof priv);
        priv[0] = 0x22;
        priv[30] = u8(c);
        priv[31] = u8(c) | 1;
        if (p2p_secp_pubkey(rn->id, priv) != 0) memset(rn->id, 0, 64);
    }
}

static void check(world_t *w)
{
    const p2p_disc_t *d = w->d;
    if (p2p_disc_pending(d) > P2P_DISC_MAX_PENDING) abort();
    if (p2p_disc_lookups_running(d) > P2P_DISC_MAX_LOOKUPS) abort();
    if (p2p_disc_candidates_len(d) > P2P_DISC_CANDIDATES) abort();
    const p2p_kad_table_t *t = p2p_disc_table(d);
    if (p2p_kad_len(t) > P2P_KAD_NBUCKETS * P2P_KAD_BUCKET_SIZE) abort();
    if (p2p_kad_find(t, g.id[NID - 1])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    static world_t w;
    memset(&w, 0, sizeof w);
    W = &w;
    cur_t c = {data, data + size};
    p2p_disc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(cfg.pubkey, g.pub[NID - 1], 64);
    cfg.endpoint.ip = p2p_ip4(20, 0, 9, 1);
    cfg.endpoint.udp = 30303;
    cfg.record = &g.rec[NID - 1];
    p2p_node_t boot;
    memset(&boot, 0, sizeof boot);
    memcpy(boot.id, g.id[0], 32);
    memcpy(boot.pubkey, g.pub[0], 64);
    boot.ep.ip = p2p_ip4(20, 0, 0, 1);
    boot.ep.udp = 30303;
    cfg.bootnodes = &boot;
    cfg.nbootnodes = u8(&c) & 1;
    p2p_netlist_t nl;
    if (u8(&c) & 1) {
        if (p2p_netlist_parse(&nl, "20.0.0.0/8,192.168.0.0/16") != 0) abort();
        cfg.netrestrict = &nl;
    }
    cfg.seed = 7;
    cfg.pingbacks = 64; /* small: cheap to create per input, and eviction is reachable */
    cfg.io.ctx = &w;
    cfg.io.send = wsend;
    cfg.db = (p2p_disc_db_t){&w,    db_lping, db_slping, db_lpong, db_slpong,
                             db_ff, db_sff,   db_put,    db_seeds};
    if (p2p_disc_new(&w.d, &cfg) != 0) abort();

    uint64_t now_ns = 0;
    const uint64_t base = 1800000000ull;
    for (int steps = 0; steps < 400 && c.p < c.end; steps++) {
        p2p_disc_time_t now = {now_ns, base + now_ns / 1000000000ull};
        uint8_t op = u8(&c);
        uint8_t who = u8(&c) % NID;
        p2p_endpoint_t src = pick_src(&c);
        p2p_discv4_packet_t p;
        memset(&p, 0, sizeof p);
        p.type = (uint8_t)(op % 10);
        p.expiration = now.unix_s + (uint64_t)(int64_t)(int8_t)u8(&c);
        bytes(&c, p.hash, 4);
        p.hash[31] = 0xf0; /* never equal to a hash the core got from wsend */
        memcpy(p.sender, g.pub[who], 64);
        memcpy(p.sender_id, g.id[who], 32);
        switch (op % 10) {
        case P2P_DISCV4_PING:
            p.u.ping.version = 4;
            p.u.ping.from = src;
            p.u.ping.from.tcp = u16(&c);
            p.u.ping.has_enr_seq = u8(&c) & 1;
            p.u.ping.enr_seq = u8(&c);
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        case P2P_DISCV4_PONG:
            pick_tok(&c, &w, p.u.pong.reply_tok);
            p.u.pong.to = src;
            p.u.pong.has_enr_seq = u8(&c) & 1;
            p.u.pong.enr_seq = u8(&c);
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        case P2P_DISCV4_FINDNODE:
            bytes(&c, p.u.findnode.target, 64);
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        case P2P_DISCV4_NEIGHBORS: {
            unsigned n = u8(&c) % (P2P_DISCV4_NEIGHBORS_CAP + 1);
            p.u.neighbors.n = n;
            p.u.neighbors.oversized = n > P2P_DISCV4_MAX_NEIGHBORS;
            for (unsigned i = 0; i < n; i++) rpcnode(&c, &p.u.neighbors.nodes[i]);
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        }
        case P2P_DISCV4_ENRREQUEST:
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        case P2P_DISCV4_ENRRESPONSE: {
            pick_tok(&c, &w, p.u.enrresponse.reply_tok);
            uint8_t k = u8(&c);
            if (k < 0xc0) {
                p.u.enrresponse.record = g.rec[k % NID];
            } else {
                uint8_t raw[128];
                size_t len = u8(&c) % sizeof raw;
                bytes(&c, raw, len);
                if (p2p_enr_decode_unverified(&p.u.enrresponse.record, raw, len) != 0)
                    p2p_enr_init(&p.u.enrresponse.record);
            }
            p.expiration = 0;
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        }
        case 7: /* time passes */
            now_ns += (uint64_t)u16(&c) * 1000000ull;
            now.ns = now_ns;
            now.unix_s = base + now_ns / 1000000000ull;
            p2p_disc_tick(w.d, now);
            if (p2p_disc_deadline(w.d) <= now_ns) abort(); /* nothing due after a tick */
            break;
        case 8: { /* API */
            uint8_t k = u8(&c);
            if (k % 4 == 0) {
                uint8_t target[64];
                uint32_t h;
                bytes(&c, target, 64);
                (void)!p2p_disc_lookup(w.d, &h, target, now);
            } else if (k % 4 == 1) {
                p2p_disc_want_candidates(w.d, k & 0x10);
            } else if (k % 4 == 2) {
                p2p_node_t out[8];
                if (p2p_disc_candidates_pop(w.d, out, k >> 5) > (unsigned)(k >> 5)) abort();
            } else {
                p2p_node_t n;
                memset(&n, 0, sizeof n);
                memcpy(n.id, g.id[who], 32);
                memcpy(n.pubkey, g.pub[who], 64);
                n.ep = src;
                (void)p2p_disc_add_node(w.d, &n, now);
            }
            break;
        }
        default: /* an unknown type (0 or 9) */
            (void)p2p_disc_handle(w.d, &p, &src, now);
            break;
        }
        check(&w);
    }
    p2p_disc_free(w.d);
    return 0;
}
