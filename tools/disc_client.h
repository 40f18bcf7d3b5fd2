/*
 * tools/disc_client.h: a small discovery v4 client endpoint for the devp2p
 * tool (ping, requestenr, resolve, crawl).
 *
 * One UDP socket (bound to --addr, default an ephemeral port on the
 * wildcard address), our key, and a receive loop with a deadline that
 * answers every valid Ping with a Pong on its own (so remote nodes that
 * ping back to bond see us as live) and hands every decoded packet to the
 * caller.  A packet whose expiration has passed (all but ENRResponse carry
 * one) is dropped, counted in `expired`, as discv4 requires.  Packets are
 * encoded and decoded by wire/discv4.h; the one exception is a Neighbors
 * packet larger than 1280 bytes (ethereumjs sends 16 IPv4 entries in one
 * 1373-byte packet), which is checked (hash, signature recovery) and
 * decoded here with the same bounded cursor, up to P2P_DC_RECV_MAX bytes.
 *
 * Owned by the main thread; no allocation after open.
 */
#ifndef P2P_TOOLS_DISC_CLIENT_H
#define P2P_TOOLS_DISC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/discv4.h"
#include "wire/node.h"

#define P2P_DC_RECV_MAX 2048

typedef struct p2p_dc {
    int fd;
    uint8_t priv[32];
    uint8_t pub[64];
    uint8_t id[32];
    p2p_ip_t bound_ip; /* may be unspecified */
    uint8_t family;    /* of the socket: 4, or 6 (also reaches IPv4 when bound to ::) */
    uint16_t port;     /* our UDP port */
    uint64_t enr_seq;  /* sent in Ping and Pong */
    /* counters */
    uint64_t sent, received, invalid, expired, pings_answered;
} p2p_dc_t;

/* Opens the socket on addr ("IP", "IP:PORT", "[IPv6]:PORT", ":PORT" or
 * NULL for port 0) with the given key.  Without an IP it binds [::] with
 * IPv4 mapped in, so IPv4 and IPv6 nodes are both reachable, or 0.0.0.0
 * where the machine has no IPv6; an explicit :: is [::] with IPv4 mapped
 * in as well (whatever net.ipv6.bindv6only says).  Returns 0, P2P_EINVAL (bad
 * address) or P2P_ESYS (socket/bind; errno set). */
P2P_MUST_CHECK int p2p_dc_open(p2p_dc_t *dc, const char *addr, const uint8_t priv[32]);
void p2p_dc_close(p2p_dc_t *dc);

/* Our endpoint as the node at `to` should see it: the source address the
 * kernel picks for `to` (when bound to the wildcard), our UDP port, tcp 0. */
p2p_endpoint_t p2p_dc_local_endpoint(const p2p_dc_t *dc, const p2p_ip_t *to);

/* Encodes, signs and sends p to ip:port (expiration set to now + 20 s).
 * Out: hash (may be NULL).  Returns 0 or an encode error / P2P_ESYS. */
P2P_MUST_CHECK int p2p_dc_send(p2p_dc_t *dc, uint8_t hash[32], p2p_discv4_packet_t *p,
                               const p2p_ip_t *ip, uint16_t port);
/* Sends a Ping to n.  Out: hash (the reply token). */
P2P_MUST_CHECK int p2p_dc_ping(p2p_dc_t *dc, uint8_t hash[32], const p2p_node_t *n);

/* Receives the next valid, unexpired packet before deadline (CLOCK_MONOTONIC
 * ns), answering Pings on the way (they are returned too).  The deadline
 * is checked before every datagram: one that has passed ends the call even
 * while packets keep arriving.  Out: p, the sender's address.  Returns 0,
 * P2P_ETIMEDOUT or P2P_ESYS. */
P2P_MUST_CHECK int p2p_dc_recv(p2p_dc_t *dc, p2p_discv4_packet_t *p, p2p_ip_t *from,
                               uint16_t *from_port, uint64_t deadline);

#endif
