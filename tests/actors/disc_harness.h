/*
 * tests/actors/disc_harness.h: one discovery core (actors/disc_core.h) with
 * virtual time and an outbox, for the tests that drive it packet by packet
 * (test_disc_core.c, test_disc_clock.c).  The harness records every packet
 * the core sends (hashes are a counter, so tests can forge replies), counts
 * its events by kind and keeps the last node, endpoint and lookup result of
 * each.  Included by one test file each.
 */
#ifndef DEVP2P_TESTS_DISC_HARNESS_H
#define DEVP2P_TESTS_DISC_HARNESS_H

#include "tests/actors/disc_testlib.h"

#include "core/netutil.h"
#include "wire/enr.h"

typedef struct sent {
    p2p_endpoint_t to;
    uint8_t hash[32];
    p2p_discv4_packet_t pkt;
} sent_t;

#define OUTBOX 256

typedef struct harness {
    p2p_disc_t *d;
    tl_db_t db;
    tl_ident_t me;
    unsigned nout;
    sent_t out[OUTBOX];
    int fail_send;
    bool ipv4_only; /* like an AF_INET socket: sends to IPv6 refused */
    bool ipv6_only; /* like a socket bound to one IPv6 address: sends to IPv4 refused */
    unsigned ev[8]; /* events by kind */
    p2p_node_t last_added, last_removed, last_record;
    p2p_endpoint_t last_endpoint;
    uint32_t last_lookup;
    unsigned last_lookup_n;
    p2p_node_t last_result[16];
    uint64_t hashctr;
} harness_t;

static inline int h_send(void *ctx, uint8_t hash[32], const p2p_endpoint_t *to,
                         const p2p_discv4_packet_t *pkt)
{
    harness_t *h = ctx;
    if (h->fail_send) return P2P_EIO;
    /* what the service's send refuses for the address itself */
    if ((h->ipv4_only && to->ip.family != 4) || (h->ipv6_only && to->ip.family != 6) ||
        to->udp == 0)
        return P2P_EUNSUPPORTED;
    CHECK(pkt->type != P2P_DISCV4_NEIGHBORS || pkt->u.neighbors.n <= P2P_DISCV4_MAX_NEIGHBORS);
    memset(hash, 0, 32);
    h->hashctr++;
    memcpy(hash, &h->hashctr, sizeof h->hashctr);
    hash[31] = 0xaa;
    if (h->nout < OUTBOX) {
        sent_t *s = &h->out[h->nout++];
        s->to = *to;
        memcpy(s->hash, hash, 32);
        s->pkt = *pkt;
    }
    return 0;
}

static inline void h_event(void *ctx, const p2p_disc_event_t *ev)
{
    harness_t *h = ctx;
    h->ev[ev->kind]++;
    switch (ev->kind) {
    case P2P_DISC_EV_NODE_ADDED:
        h->last_added = ev->node;
        break;
    case P2P_DISC_EV_NODE_REMOVED:
        h->last_removed = ev->node;
        break;
    case P2P_DISC_EV_RECORD:
        h->last_record = ev->node;
        break;
    case P2P_DISC_EV_ENDPOINT:
        h->last_endpoint = ev->endpoint;
        break;
    case P2P_DISC_EV_LOOKUP_DONE:
        h->last_lookup = ev->lookup;
        h->last_lookup_n = ev->n;
        memcpy(h->last_result, ev->nodes, ev->n * sizeof ev->nodes[0]);
        break;
    }
}

static p2p_ip_t my_ip;
static p2p_enr_t my_record;
/* The next h_new makes a core for an IPv4-only (IPv6-only) socket (reset
 * by h_new). */
static bool h_next_ipv4_only, h_next_ipv6_only;

/* Makes a core with an empty table.  start: run the first tick (the initial
 * refresh finishes at once with an empty table). */
static inline harness_t *h_new(const p2p_node_t *boot, unsigned nboot,
                               const p2p_netlist_t *restrict_, int start)
{
    harness_t *h = calloc(1, sizeof *h);
    tl_ident(&h->me);
    p2p_enr_init(&my_record);
    p2p_enr_set_seq(&my_record, 7);
    CHECK_OK(p2p_enr_set_ip(&my_record, &my_ip));
    CHECK_OK(p2p_enr_set_port(&my_record, "udp", 30303));
    CHECK_OK(p2p_enr_sign(&my_record, h->me.priv));
    p2p_disc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(cfg.pubkey, h->me.pub, 64);
    cfg.endpoint.ip = my_ip;
    cfg.endpoint.udp = 30303;
    cfg.endpoint.tcp = 30303;
    cfg.record = &my_record;
    cfg.bootnodes = boot;
    cfg.nbootnodes = nboot;
    cfg.netrestrict = restrict_;
    cfg.seed = tu_rand();
    cfg.io.ctx = h;
    cfg.io.send = h_send;
    cfg.io.event = h_event;
    cfg.db = tl_db_ops(&h->db);
    cfg.ipv4_only = h->ipv4_only = h_next_ipv4_only;
    cfg.ipv6_only = h->ipv6_only = h_next_ipv6_only;
    h_next_ipv4_only = h_next_ipv6_only = false;
    CHECK_OK(p2p_disc_new(&h->d, &cfg));
    CHECK(memcmp(p2p_disc_self(h->d), h->me.id, 32) == 0);
    if (start) {
        p2p_disc_tick(h->d, tl_time(0));
        CHECK(p2p_disc_init_done(h->d));
        h->nout = 0;
    }
    return h;
}

static inline void h_free(harness_t *h)
{
    p2p_disc_free(h->d);
    tl_db_free(&h->db);
    free(h);
}

/* Index of the first outbox packet of type at or after from, or -1. */
static inline int h_find(const harness_t *h, unsigned from, uint8_t type)
{
    for (unsigned i = from; i < h->nout; i++)
        if (h->out[i].pkt.type == type) return (int)i;
    return -1;
}

static inline p2p_endpoint_t ep_of(p2p_ip_t ip, uint16_t port)
{
    p2p_endpoint_t e = {.ip = ip, .udp = port, .tcp = 0};
    return e;
}

#endif
