/*
 * tests/actors/test_disc_sim.c: a simulated network of 1,000 discovery cores
 * on a virtual clock.  Every node is a full p2p_disc_t with its own table
 * and in-memory DB; the network delivers each core's packets to the others
 * with 10-60 ms latency and 1% loss.  Node 0 is the bootnode; the others
 * start at random times in the first 30 s knowing only it, and bootstrap
 * through the real protocol (bonding, self and random lookups, revalidation).
 *
 * After 5 virtual minutes, 200 lookups for random targets from random nodes
 * (in batches of 25) are compared with the true 16 closest nodes of the
 * whole network: the average share found must be >= 95% (the figure is
 * printed).  Also checked: tables are filled, nobody holds itself, every
 * table entry is a real node at its real address, and no measurement lookup
 * sends its findnode to the same node twice (the findnodes per lookup are
 * printed).
 *
 * SIM_NODES and SIM_BOOT_S (bootstrap seconds) in the environment override
 * the node count and the bootstrap time (for experiments).  Cost: ~5 s of CPU
 * in the normal build, ~25 s under ASan, ~50 s under TSan (meson timeout
 * 900 s for a loaded machine).
 */
#include "tests/actors/disc_testlib.h"

#include <stdio.h>

#define SIM_PORT 30303
#define SIM_LOSS_PPM 10000 /* 1% */
#define SIM_BATCH 25
#define SIM_LOOKUPS 200

typedef struct sim sim_t;

typedef struct simnode {
    sim_t *sim;
    unsigned idx;
    tl_ident_t key;
    p2p_endpoint_t ep;
    p2p_disc_t *d;
    bool up;
    uint64_t start_ns;
    uint64_t wake_ns; /* scheduled wake-up (UINT64_MAX: none) */
    /* DB: per remote node index (the simulation's addresses are fixed). */
    uint64_t *lastping, *lastpong;
    uint8_t *fails;
    uint8_t *stored;
    /* Measurement lookup. */
    uint32_t want_handle;
    uint8_t want_target[64];
    uint8_t *asked; /* per node index: findnodes of the lookup sent to it */
    bool got;
    unsigned nres;
    p2p_node_t res[16];
} simnode_t;

typedef struct sim_ev {
    uint64_t t;
    uint64_t seq;
    unsigned dst;
    struct sim_pkt *pkt; /* NULL: wake-up */
} sim_ev_t;

typedef struct sim_pkt {
    p2p_endpoint_t src;
    p2p_discv4_packet_t p;
} sim_pkt_t;

struct sim {
    unsigned n;
    simnode_t *nodes;
    uint64_t now;
    uint64_t seq;
    sim_ev_t *heap;
    size_t nheap, capheap;
    uint64_t delivered, lost, offline;
    uint64_t asked, reasked; /* measurement lookups' findnodes; repeats */
};

/* ---- event heap ---- */

static bool ev_less(const sim_ev_t *a, const sim_ev_t *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(sim_t *s, sim_ev_t ev)
{
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? s->capheap * 2 : 4096;
        s->heap = realloc(s->heap, s->capheap * sizeof s->heap[0]);
        if (!s->heap) abort();
    }
    ev.seq = s->seq++;
    size_t i = s->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&ev, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = ev;
}

static sim_ev_t heap_pop(sim_t *s)
{
    sim_ev_t top = s->heap[0];
    sim_ev_t last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sim_ev_t *cur = &last;
        if (l < s->nheap && ev_less(&s->heap[l], cur)) {
            m = l;
            cur = &s->heap[l];
        }
        if (r < s->nheap && ev_less(&s->heap[r], cur)) m = r;
        if (m == i) break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->nheap > 0) s->heap[i] = last;
    return top;
}

/* ---- addressing ---- */

static p2p_ip_t sim_ip(unsigned idx)
{
    unsigned k = idx + 1;
    return p2p_ip4(20, (uint8_t)(k >> 8), (uint8_t)k, 1);
}

/* Node index for an address, or -1. */
static int sim_index(const sim_t *s, const p2p_ip_t *ip)
{
    if (ip->family != 4 || ip->addr[0] != 20 || ip->addr[3] != 1) return -1;
    unsigned k = (unsigned)ip->addr[1] << 8 | ip->addr[2];
    if (k == 0 || k > s->n) return -1;
    return (int)(k - 1);
}

static void sim_schedule(sim_t *s, simnode_t *nd)
{
    if (!nd->up) return;
    uint64_t dl = p2p_disc_deadline(nd->d);
    if (dl < s->now) dl = s->now;
    if (dl >= nd->wake_ns) return;
    nd->wake_ns = dl;
    sim_ev_t ev = {.t = dl, .dst = nd->idx, .pkt = NULL};
    heap_push(s, ev);
}

/* ---- the DB of one node, indexed by remote node ---- */

static int db_index(simnode_t *nd, const p2p_ip_t *ip, const uint8_t id[32])
{
    int i = sim_index(nd->sim, ip);
    if (i < 0 || memcmp(nd->sim->nodes[i].key.id, id, 32) != 0) return -1;
    return i;
}

static int sdb_last_ping(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, ip, id);
    *t = i < 0 ? 0 : nd->lastping[i];
    return 0;
}
static int sdb_set_last_ping(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, ip, id);
    if (i >= 0) nd->lastping[i] = t;
    return 0;
}
static int sdb_last_pong(void *ctx, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, ip, id);
    *t = i < 0 ? 0 : nd->lastpong[i];
    return 0;
}
static int sdb_set_last_pong(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, ip, id);
    if (i >= 0) nd->lastpong[i] = t;
    return 0;
}
static int sdb_findfails(void *ctx, uint32_t *f, const uint8_t id[32], const p2p_ip_t *ip)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, ip, id);
    *f = i < 0 ? 0 : nd->fails[i];
    return 0;
}
static int sdb_set_findfails(void *ctx, const uint8_t id[32], const p2p_ip_t *ip, uint32_t f)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, ip, id);
    if (i >= 0) nd->fails[i] = (uint8_t)(f > 255 ? 255 : f);
    return 0;
}
static int sdb_put_node(void *ctx, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    simnode_t *nd = ctx;
    int i = db_index(nd, &n->ep.ip, n->id);
    if (i >= 0) nd->stored[i] = 1;
    return 0;
}
static int sdb_query_seeds(void *ctx, p2p_node_t *out, size_t *nout, size_t n, uint64_t max_age,
                           uint64_t now)
{
    simnode_t *nd = ctx;
    sim_t *s = nd->sim;
    *nout = 0;
    for (unsigned i = 0; i < s->n && *nout < n; i++) {
        if (!nd->stored[i] || nd->lastpong[i] + max_age < now) continue;
        out[(*nout)++] = tl_node(&s->nodes[i].key, sim_ip(i), SIM_PORT);
    }
    return 0;
}

/* ---- network ---- */

static int sim_send(void *ctx, uint8_t hash[32], const p2p_endpoint_t *to,
                    const p2p_discv4_packet_t *pkt)
{
    simnode_t *nd = ctx;
    sim_t *s = nd->sim;
    tu_rand_bytes(hash, 32);
    int dst = sim_index(s, &to->ip);
    if (dst < 0 || to->udp != SIM_PORT) return 0; /* nobody there */
    /* A lookup asks each node at most once, lost packets included (a
     * measurement lookup's target is random: no other lookup shares it). */
    if (pkt->type == P2P_DISCV4_FINDNODE && nd->want_handle &&
        memcmp(pkt->u.findnode.target, nd->want_target, 64) == 0) {
        s->asked++;
        if (nd->asked[dst]++) s->reasked++;
    }
    if (tu_rand() % 1000000 < SIM_LOSS_PPM) {
        s->lost++;
        return 0;
    }
    sim_pkt_t *sp = malloc(sizeof *sp);
    if (!sp) abort();
    sp->p = *pkt;
    memcpy(sp->p.hash, hash, 32);
    memcpy(sp->p.sender, nd->key.pub, 64);
    memcpy(sp->p.sender_id, nd->key.id, 32);
    sp->src = nd->ep;
    sp->src.tcp = 0;
    sim_ev_t ev = {.t = s->now + (10 + tu_rand() % 51) * TL_MS, .dst = (unsigned)dst, .pkt = sp};
    heap_push(s, ev);
    return 0;
}

static void sim_event(void *ctx, const p2p_disc_event_t *ev)
{
    simnode_t *nd = ctx;
    if (ev->kind == P2P_DISC_EV_LOOKUP_DONE && nd->want_handle && ev->lookup == nd->want_handle) {
        nd->got = true;
        nd->nres = ev->n;
        memcpy(nd->res, ev->nodes, ev->n * sizeof ev->nodes[0]);
    }
}

static void sim_init(sim_t *s, unsigned n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->nodes = calloc(n, sizeof s->nodes[0]);
    if (!s->nodes) abort();
    for (unsigned i = 0; i < n; i++) {
        simnode_t *nd = &s->nodes[i];
        nd->sim = s;
        nd->idx = i;
        tl_ident(&nd->key);
        nd->ep.ip = sim_ip(i);
        nd->ep.udp = SIM_PORT;
        nd->ep.tcp = SIM_PORT;
        nd->lastping = calloc(n, sizeof nd->lastping[0]);
        nd->lastpong = calloc(n, sizeof nd->lastpong[0]);
        nd->fails = calloc(n, 1);
        nd->stored = calloc(n, 1);
        nd->wake_ns = UINT64_MAX;
        nd->start_ns = i == 0 ? 0 : (tu_rand() % 30000) * TL_MS;
    }
    p2p_node_t boot = tl_node(&s->nodes[0].key, sim_ip(0), SIM_PORT);
    for (unsigned i = 0; i < n; i++) {
        simnode_t *nd = &s->nodes[i];
        p2p_disc_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        memcpy(cfg.pubkey, nd->key.pub, 64);
        cfg.endpoint = nd->ep;
        cfg.bootnodes = i == 0 ? NULL : &boot;
        cfg.nbootnodes = i == 0 ? 0 : 1;
        cfg.seed = tu_rand();
        cfg.pingbacks = 64; /* 1000 cores: a small ping-back pool each */
        cfg.io.ctx = nd;
        cfg.io.send = sim_send;
        cfg.io.event = sim_event;
        cfg.db.ctx = nd;
        cfg.db.last_ping = sdb_last_ping;
        cfg.db.set_last_ping = sdb_set_last_ping;
        cfg.db.last_pong = sdb_last_pong;
        cfg.db.set_last_pong = sdb_set_last_pong;
        cfg.db.findfails = sdb_findfails;
        cfg.db.set_findfails = sdb_set_findfails;
        cfg.db.put_node = sdb_put_node;
        cfg.db.query_seeds = sdb_query_seeds;
        if (p2p_disc_new(&nd->d, &cfg) != 0) abort();
        /* The start is a wake-up at start_ns. */
        sim_ev_t ev = {.t = nd->start_ns, .dst = i, .pkt = NULL};
        heap_push(s, ev);
    }
}

static void sim_free(sim_t *s)
{
    while (s->nheap) free(heap_pop(s).pkt);
    free(s->heap);
    for (unsigned i = 0; i < s->n; i++) {
        simnode_t *nd = &s->nodes[i];
        p2p_disc_free(nd->d);
        free(nd->lastping);
        free(nd->lastpong);
        free(nd->fails);
        free(nd->stored);
    }
    free(s->nodes);
}

/* Runs events until virtual time `until` or until done() holds. */
static void sim_run(sim_t *s, uint64_t until, bool (*done)(sim_t *))
{
    while (s->nheap > 0 && s->heap[0].t <= until) {
        if (done && done(s)) return;
        sim_ev_t ev = heap_pop(s);
        s->now = ev.t;
        simnode_t *nd = &s->nodes[ev.dst];
        if (ev.pkt) {
            if (nd->up) {
                s->delivered++;
                (void)p2p_disc_handle(nd->d, &ev.pkt->p, &ev.pkt->src, tl_time(s->now));
            } else {
                s->offline++;
            }
            free(ev.pkt);
        } else {
            if (!nd->up) {
                if (ev.t < nd->start_ns) continue;
                nd->up = true;
            } else if (ev.t != nd->wake_ns) {
                continue; /* superseded by an earlier wake-up */
            }
            nd->wake_ns = UINT64_MAX;
            p2p_disc_tick(nd->d, tl_time(s->now));
            /* After a tick nothing is due any more. */
            if (p2p_disc_deadline(nd->d) <= s->now) CHECK(p2p_disc_deadline(nd->d) > s->now);
        }
        sim_schedule(s, nd);
    }
    if (s->now < until) s->now = until;
}

static unsigned g_batch[SIM_BATCH];
static unsigned g_nbatch;

static bool batch_done(sim_t *s)
{
    for (unsigned i = 0; i < g_nbatch; i++)
        if (!s->nodes[g_batch[i]].got) return false;
    return true;
}

/* Share (0..16) of the true 16 closest to target_id (excluding from) that
 * res holds. */
static unsigned true_overlap(const sim_t *s, unsigned from, const uint8_t target_id[32],
                             const p2p_node_t *res, unsigned nres)
{
    unsigned best[16];
    unsigned nb = 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (i == from) continue;
        const uint8_t *id = s->nodes[i].key.id;
        unsigned pos = nb;
        while (pos > 0 && p2p_kad_distcmp(target_id, id, s->nodes[best[pos - 1]].key.id) < 0) pos--;
        if (pos >= 16) continue;
        unsigned last = nb < 16 ? nb : 15;
        memmove(&best[pos + 1], &best[pos], (last - pos) * sizeof best[0]);
        best[pos] = i;
        if (nb < 16) nb++;
    }
    unsigned hit = 0;
    for (unsigned k = 0; k < nb; k++)
        for (unsigned j = 0; j < nres; j++)
            if (memcmp(res[j].id, s->nodes[best[k]].key.id, 32) == 0) {
                hit++;
                break;
            }
    return hit;
}

int main(void)
{
    tu_seed(0x51a1);
    unsigned n = 1000;
    const char *env = getenv("SIM_NODES");
    if (env && atoi(env) >= 50) n = (unsigned)atoi(env);
    static sim_t sim;
    sim_t *s = &sim;
    sim_init(s, n);

    /* Bootstrap: 5 virtual minutes. */
    uint64_t boot_s = getenv("SIM_BOOT_S") ? (uint64_t)atoi(getenv("SIM_BOOT_S")) : 300;
    sim_run(s, boot_s * 1000 * TL_MS, NULL);
    unsigned long total = 0;
    unsigned minlen = UINT32_MAX, self_entries = 0, bad_entries = 0;
    for (unsigned i = 0; i < n; i++) {
        const p2p_kad_table_t *t = p2p_disc_table(s->nodes[i].d);
        unsigned len = p2p_kad_len(t);
        total += len;
        if (len < minlen) minlen = len;
        self_entries += p2p_kad_find(t, s->nodes[i].key.id) != NULL;
        for (unsigned b = 0; b < P2P_KAD_NBUCKETS; b++)
            for (unsigned e = 0; e < t->b[b].n; e++) {
                const p2p_node_t *nn = &t->b[b].e[e].node;
                int k = sim_index(s, &nn->ep.ip);
                bad_entries +=
                    k < 0 || memcmp(s->nodes[k].key.id, nn->id, 32) != 0 || nn->ep.udp != SIM_PORT;
            }
    }
    printf("bootstrap: %u nodes, avg table %.1f, min %u, packets delivered %llu lost %llu\n", n,
           (double)total / n, minlen, (unsigned long long)s->delivered,
           (unsigned long long)s->lost);
    CHECK(self_entries == 0);
    CHECK(bad_entries == 0);
    CHECK((double)total / n >= 60.0);
    CHECK(minlen >= 16);

    /* Lookups for random targets. */
    unsigned long hits = 0, perfect = 0, done = 0, worst = 16;
    for (unsigned round = 0; round < SIM_LOOKUPS / SIM_BATCH; round++) {
        uint8_t targets[SIM_BATCH][64];
        g_nbatch = 0;
        for (unsigned b = 0; b < SIM_BATCH; b++) {
            unsigned from;
            int dup;
            do {
                from = 1 + (unsigned)(tu_rand() % (n - 1));
                dup = 0;
                for (unsigned j = 0; j < g_nbatch; j++) dup |= g_batch[j] == from;
            } while (dup);
            simnode_t *nd = &s->nodes[from];
            tu_rand_bytes(targets[b], 64);
            nd->got = false;
            nd->want_handle = 0;
            memcpy(nd->want_target, targets[b], 64);
            nd->asked = calloc(n, 1);
            if (!nd->asked) abort();
            uint32_t handle = UINT32_MAX;
            /* want_handle is set before the lookup's first findnodes go
             * out (they are sent inside p2p_disc_lookup). */
            nd->want_handle = handle;
            CHECK_OK(p2p_disc_lookup(nd->d, &handle, targets[b], tl_time(s->now)));
            nd->want_handle = handle;
            g_batch[g_nbatch++] = from;
            sim_schedule(s, nd);
        }
        sim_run(s, s->now + 120ull * 1000 * TL_MS, batch_done);
        for (unsigned b = 0; b < g_nbatch; b++) {
            simnode_t *nd = &s->nodes[g_batch[b]];
            CHECK(nd->got);
            if (!nd->got) continue;
            uint8_t tid[32];
            p2p_keccak256(tid, targets[b], 64);
            unsigned hit = true_overlap(s, g_batch[b], tid, nd->res, nd->nres);
            hits += hit;
            perfect += hit == 16;
            if (hit < worst) worst = hit;
            done++;
        }
        for (unsigned b = 0; b < g_nbatch; b++) {
            simnode_t *nd = &s->nodes[g_batch[b]];
            nd->want_handle = 0;
            free(nd->asked);
            nd->asked = NULL;
        }
    }
    double acc = done ? (double)hits / (16.0 * (double)done) : 0;
    printf("lookup accuracy: %.2f%% of the true 16 closest found on average over %lu lookups "
           "(%lu perfect, worst %lu/16)\n",
           100.0 * acc, done, perfect, worst);
    printf("lookup queries: %.1f findnodes per lookup on average, %llu sent twice to one node\n",
           done ? (double)s->asked / (double)done : 0.0, (unsigned long long)s->reasked);
    CHECK(done == SIM_LOOKUPS);
    CHECK(acc >= 0.95);
    CHECK(s->asked >= 3 * (uint64_t)done);
    CHECK(s->reasked == 0);

    /* Protocol health across the network. */
    p2p_disc_counters_t sum;
    memset(&sum, 0, sizeof sum);
    for (unsigned i = 0; i < n; i++) {
        const p2p_disc_counters_t *c = p2p_disc_counters(s->nodes[i].d);
        sum.drop_unbonded_findnode += c->drop_unbonded_findnode;
        sum.drop_unsolicited += c->drop_unsolicited;
        sum.rx_findnode += c->rx_findnode;
        sum.timeouts += c->timeouts;
        sum.findnode_partial += c->findnode_partial;
        sum.lookups_started += c->lookups_started;
        sum.drop_expired += c->drop_expired;
    }
    printf("network: %llu lookups, %llu findnode answered, %llu unbonded findnode, %llu "
           "unsolicited, %llu timeouts, %llu short findnode answers\n",
           (unsigned long long)sum.lookups_started, (unsigned long long)sum.rx_findnode,
           (unsigned long long)sum.drop_unbonded_findnode, (unsigned long long)sum.drop_unsolicited,
           (unsigned long long)sum.timeouts, (unsigned long long)sum.findnode_partial);
    CHECK(sum.drop_expired == 0);
    CHECK(sum.rx_findnode > sum.drop_unbonded_findnode * 10);
    sim_free(s);
    return tu_done("disc_sim");
}
