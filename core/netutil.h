/*
 * core/netutil.h: IP address classification and the address rules shared
 * by discovery, the listener and the dialer.
 *
 * - p2p_ip_parse / p2p_ip_format: text forms ("1.2.3.4", "::1"); an
 *   IPv4-mapped IPv6 address (::ffff:a.b.c.d) is normalised to family 4.
 *   p2p_ip_port_format: an endpoint ("1.2.3.4:30303", "[::1]:30303").
 * - p2p_ip_is_lan: loopback, RFC 1918, link-local, unique local (fc00::/7),
 *   CGNAT is NOT LAN.  p2p_ip_is_loopback, p2p_ip_is_special
 *   (unspecified, multicast, documentation and other reserved ranges that
 *   must never be dialled or relayed).
 * - p2p_netlist_t: a NetRestrict list of CIDR ranges ("10.0.0.0/8,::1/128")
 *   with contains().
 * - p2p_check_relay_ip(sender, addr): whether a node address received from
 *   sender may be used (loopback only from loopback senders, LAN only from
 *   LAN senders, never special/unspecified addresses).
 * - p2p_ip_net: the /24 (IPv4) or /48 (IPv6) of an address, the network
 *   discovery counts ping-backs and endpoint votes by.
 * - p2p_distinct_nets_t: counts addresses per /24 (IPv4) or /64 (IPv6) with a
 *   limit, LAN addresses exempt.  It is not what the Kademlia table's IP
 *   limits use: those count IPv6 per /24 as well (p2p_kad_same_net in
 *   actors/kad_table.h; 2^40 /64s per /24), and nothing in the node
 *   counts with it.
 * - sockaddr conversion for the threads that do I/O.
 *
 * Thread-safety: pure functions and plain values owned by their caller.
 */
#ifndef P2P_CORE_NETUTIL_H
#define P2P_CORE_NETUTIL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"
#include "wire/node.h"

/* Parses an IPv4 or IPv6 text address.  Returns 0 or P2P_EINVAL. */
P2P_MUST_CHECK int p2p_ip_parse(p2p_ip_t *ip, const char *s);
/* Writes the text form of ip (NUL-terminated) into out; returns out.
 * Family 0 (no address) formats as "<none>". */
#define P2P_IP_STRLEN 46
char *p2p_ip_format(char out[P2P_IP_STRLEN], const p2p_ip_t *ip);
/* Writes "addr:port" into out, an IPv6 address in brackets ("[::1]:30303",
 * as in enode URLs: "::1:30303" would read as one address); returns out. */
#define P2P_IP_PORT_STRLEN (P2P_IP_STRLEN + 8)
char *p2p_ip_port_format(char out[P2P_IP_PORT_STRLEN], const p2p_ip_t *ip, uint16_t port);

bool p2p_ip_is_loopback(const p2p_ip_t *ip);
bool p2p_ip_is_lan(const p2p_ip_t *ip);
bool p2p_ip_is_special(const p2p_ip_t *ip);
bool p2p_ip_is_unspecified(const p2p_ip_t *ip);

/* The address a node names itself by: external if it has a family, else
 * listen unless that is unspecified (none, 0.0.0.0, ::), else 127.0.0.1. */
p2p_ip_t p2p_ip_advertised(const p2p_ip_t *external, const p2p_ip_t *listen);

/* The address family the sockets of a node listening on listen reach: 4
 * for an IPv4 address or none (0.0.0.0, the default), 6 for one IPv6
 * address (::1), 0 for both (::, dual-stack). */
unsigned p2p_ip_reach_family(const p2p_ip_t *listen);

/* Returns 0 if a node address addr announced by sender may be relayed or
 * used, else P2P_ERESTRICT. */
P2P_MUST_CHECK int p2p_check_relay_ip(const p2p_ip_t *sender, const p2p_ip_t *addr);

#define P2P_NETLIST_MAX 64
typedef struct p2p_netlist {
    unsigned n;
    struct {
        p2p_ip_t net;
        uint8_t bits;
    } nets[P2P_NETLIST_MAX];
} p2p_netlist_t;

/* Parses a comma-separated CIDR list.  Returns 0, P2P_EINVAL or
 * P2P_ETOOBIG (more than P2P_NETLIST_MAX entries). */
P2P_MUST_CHECK int p2p_netlist_parse(p2p_netlist_t *l, const char *s);
/* False for a NULL list (the caller decides what an unset list means). */
bool p2p_netlist_contains(const p2p_netlist_t *l, const p2p_ip_t *ip);

/* The network of ip as discovery counts senders and voters: its /24
 * (IPv4) or /48 (IPv6) prefix, host bytes zeroed. */
p2p_ip_t p2p_ip_net(const p2p_ip_t *ip);

/* Counts of addresses per /24 (IPv4) or /64 (IPv6), limited to `limit`
 * per subnet; LAN addresses are always admitted and never counted.  (The
 * Kademlia table limits IPv6 per /24, not with this: see the top.) */
#define P2P_DISTINCT_NETS_MAX 256
typedef struct p2p_distinct_nets {
    unsigned limit;
    unsigned n;
    struct {
        p2p_ip_t prefix;
        unsigned count;
    } e[P2P_DISTINCT_NETS_MAX];
} p2p_distinct_nets_t;

void p2p_distinct_nets_init(p2p_distinct_nets_t *d, unsigned limit);
/* Adds ip; returns true if admitted (counted or LAN), false if its subnet
 * is at the limit (or the table is full). */
bool p2p_distinct_nets_add(p2p_distinct_nets_t *d, const p2p_ip_t *ip);
/* Removes one count for ip's subnet (no-op for LAN or unknown). */
void p2p_distinct_nets_remove(p2p_distinct_nets_t *d, const p2p_ip_t *ip);
bool p2p_distinct_nets_contains(const p2p_distinct_nets_t *d, const p2p_ip_t *ip);

/* sockaddr conversions.  to_sockaddr returns the length written or 0. */
socklen_t p2p_ip_to_sockaddr(struct sockaddr_storage *ss, const p2p_ip_t *ip, uint16_t port);
/* As p2p_ip_to_sockaddr, for a socket of address family af: on an AF_INET6
 * socket an IPv4 address becomes ::ffff:a.b.c.d (a dual-stack socket
 * reaches it so); on an AF_INET socket an IPv6 address is unreachable (0). */
socklen_t p2p_ip_to_sockaddr_af(struct sockaddr_storage *ss, const p2p_ip_t *ip, uint16_t port,
                                int af);
P2P_MUST_CHECK int p2p_ip_from_sockaddr(p2p_ip_t *ip, uint16_t *port, const struct sockaddr *sa);

#endif
