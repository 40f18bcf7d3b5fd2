/*
 * tests/actors/disc_nodes.h: helpers for the discovery service tests: start
 * an instance on loopback with a fresh key, read its info, wait for a table
 * size with a deadline, hand-build raw packets.  Header-only (static
 * inline), included by one test file each.
 */
#ifndef P2P_TESTS_DISC_NODES_H
#define P2P_TESTS_DISC_NODES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "actors/discovery.h"
#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "tests/tu.h"

typedef struct dn_node {
    uint8_t priv[32];
    p2p_discovery_t *d;
    p2p_node_t self; /* as started: id, key, endpoint */
} dn_node_t;

static inline void dn_key(uint8_t priv[32])
{
    do tu_rand_bytes(priv, 32);
    while (p2p_secp_privkey_check(priv) != 0);
}

/* Starts node n on 127.0.0.1 (ephemeral port) with the given bootnodes and
 * datadir (NULL: in memory); cfg_extra (may be NULL) is applied on top. */
static inline int dn_start(dn_node_t *n, const p2p_node_t *boot, size_t nboot, const char *datadir,
                           const p2p_discovery_config_t *base)
{
    p2p_discovery_config_t cfg;
    if (base)
        cfg = *base;
    else
        memset(&cfg, 0, sizeof cfg);
    if (!base) dn_key(n->priv);
    memcpy(cfg.priv, n->priv, 32);
    if (cfg.listen_ip.family == 0) cfg.listen_ip = p2p_ip4(127, 0, 0, 1);
    cfg.bootnodes = boot;
    cfg.nbootnodes = nboot;
    cfg.datadir = datadir;
    if (!cfg.seed) cfg.seed = tu_rand() | 1;
    char msg[256];
    int rc = p2p_discovery_start(&n->d, msg, sizeof msg, &cfg);
    if (rc) {
        fprintf(stderr, "dn_start: %s (%s)\n", msg, p2p_errname(rc));
        return rc;
    }
    n->self = *p2p_discovery_self(n->d);
    return 0;
}

static inline uint64_t dn_deadline_ms(uint64_t ms)
{
    return p2p_now_ns() + ms * P2P_NS_PER_MS;
}

/* Info of n (heap: the caller frees), or NULL. */
static inline p2p_discovery_info_t *dn_info(dn_node_t *n)
{
    p2p_discovery_info_t *in = malloc(sizeof *in);
    if (!in) return NULL;
    int rc = p2p_discovery_info(n->d, in, dn_deadline_ms(5000));
    if (rc) {
        fprintf(stderr, "dn_info: %s\n", p2p_errname(rc));
        free(in);
        return NULL;
    }
    return in;
}

/* Table size of n, or -1. */
static inline int dn_table_len(dn_node_t *n)
{
    p2p_discovery_info_t *in = dn_info(n);
    if (!in) return -1;
    int len = (int)in->table_len;
    free(in);
    return len;
}

/* Whether id is a live entry of n's table (info snapshot). */
static inline bool dn_info_has(const p2p_discovery_info_t *in, const uint8_t id[32])
{
    for (unsigned b = 0; b < P2P_KAD_NBUCKETS; b++)
        for (unsigned i = 0; i < in->buckets[b].n; i++)
            if (memcmp(in->buckets[b].e[i].node.id, id, 32) == 0) return true;
    return false;
}

static inline bool dn_has(dn_node_t *n, const uint8_t id[32])
{
    p2p_discovery_info_t *in = dn_info(n);
    bool r = in && dn_info_has(in, id);
    free(in);
    return r;
}

/* Seconds since the Unix epoch (discv4 expirations). */
static inline uint64_t dn_unix_now(void)
{
    return p2p_wall_ms() / 1000;
}

/* A UDP socket bound to 127.0.0.1 on an ephemeral port; flags: socket(2)'s
 * type flags besides SOCK_CLOEXEC (SOCK_NONBLOCK). */
static inline int dn_udp_socket(int flags)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | flags, 0);
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, 0);
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&ss, sl) == 0);
    return s;
}

/* The endpoint socket s is bound to (tcp = udp = its port). */
static inline p2p_endpoint_t dn_sock_ep(int s)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    p2p_endpoint_t ep;
    memset(&ep, 0, sizeof ep);
    CHECK(getsockname(s, (struct sockaddr *)&ss, &sl) == 0);
    CHECK_OK(p2p_ip_from_sockaddr(&ep.ip, &ep.udp, (struct sockaddr *)&ss));
    ep.tcp = ep.udp;
    return ep;
}

static inline void dn_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
