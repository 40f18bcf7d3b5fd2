/*
 * wire/node.h: the node and endpoint values every layer passes around.
 *
 * Plain values (copy with `=`), no pointers, no allocation.  An IPv4 address
 * is held as family 4 with the 4 bytes in addr[0..3] (the rest zero); IPv6 as
 * family 6 with 16 bytes.  Family 0 means "no address".
 *
 * Thread-safety: plain data; functions are pure.
 */
#ifndef P2P_WIRE_NODE_H
#define P2P_WIRE_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct p2p_ip {
    uint8_t family; /* 0 (none), 4 or 6 */
    uint8_t addr[16];
} p2p_ip_t;

typedef struct p2p_endpoint {
    p2p_ip_t ip;
    uint16_t udp;
    uint16_t tcp;
} p2p_endpoint_t;

typedef struct p2p_node {
    uint8_t id[32];     /* keccak256(pubkey) */
    uint8_t pubkey[64]; /* X||Y */
    p2p_endpoint_t ep;
    uint64_t seq; /* ENR sequence number, 0 if unknown */
} p2p_node_t;

static inline bool p2p_ip_equal(const p2p_ip_t *a, const p2p_ip_t *b)
{
    if (a->family != b->family) return false;
    return memcmp(a->addr, b->addr, a->family == 4 ? 4 : a->family == 6 ? 16 : 0) == 0;
}

static inline p2p_ip_t p2p_ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    p2p_ip_t ip = {.family = 4, .addr = {a, b, c, d}};
    return ip;
}

/* Length of the address bytes: 4, 16 or 0. */
static inline unsigned p2p_ip_len(const p2p_ip_t *ip)
{
    return ip->family == 4 ? 4u : ip->family == 6 ? 16u : 0u;
}

#endif
