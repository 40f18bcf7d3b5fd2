/*
 * tools/disc_client.c: the devp2p tool's discovery v4 endpoint (see
 * disc_client.h).  Main thread only.
 */
#include "tools/disc_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/rlp.h"

/* *wild: no host given (NULL, "" or ":PORT"). */
static int parse_addr(p2p_ip_t *ip, uint16_t *port, bool *wild, const char *s)
{
    *port = 0;
    *ip = p2p_ip4(0, 0, 0, 0);
    *wild = true;
    if (!s || !*s) return 0;
    char host[64];
    const char *ps = NULL;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || (size_t)(e - s - 1) >= sizeof host) return P2P_EINVAL;
        memcpy(host, s + 1, (size_t)(e - s - 1));
        host[e - s - 1] = 0;
        if (e[1] == ':')
            ps = e + 2;
        else if (e[1])
            return P2P_EINVAL;
    } else {
        const char *c = strrchr(s, ':');
        if (c && strchr(s, ':') == c) { /* IPv4 or empty host with a port */
            if ((size_t)(c - s) >= sizeof host) return P2P_EINVAL;
            memcpy(host, s, (size_t)(c - s));
            host[c - s] = 0;
            ps = c + 1;
        } else {
            if (strlen(s) >= sizeof host) return P2P_EINVAL;
            snprintf(host, sizeof host, "%s", s);
        }
    }
    if (host[0] && p2p_ip_parse(ip, host) != 0) return P2P_EINVAL;
    *wild = host[0] == 0;
    if (ps) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(ps, &end, 10);
        if (!*ps || *end || errno || v > 65535) return P2P_EINVAL;
        *port = (uint16_t)v;
    }
    return 0;
}

/* A UDP socket bound to ip:port; dual is an IPv6 wildcard that also
 * reaches IPv4 (IPV6_V6ONLY off).  Returns the descriptor or -1 (errno). */
static int open_bound(const p2p_ip_t *ip, uint16_t port, bool dual)
{
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, ip, port);
    if (!sl) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int off = 0;
    if ((dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int p2p_dc_open(p2p_dc_t *dc, const char *addr, const uint8_t priv[32])
{
    memset(dc, 0, sizeof *dc);
    dc->fd = -1;
    dc->enr_seq = 1;
    p2p_ip_t ip;
    uint16_t port;
    bool wild;
    if (parse_addr(&ip, &port, &wild, addr) != 0) return P2P_EINVAL;
    memcpy(dc->priv, priv, 32);
    if (p2p_secp_pubkey(dc->pub, priv) != 0) return P2P_EBADKEY;
    p2p_node_id(dc->id, dc->pub);
    int fd = -1;
    if (wild) {
        /* no address given: [::] for both families, 0.0.0.0 where the
         * machine has no IPv6 */
        p2p_ip_t any6 = {.family = 6};
        fd = open_bound(&any6, port, true);
        if (fd >= 0) ip = any6;
    }
    /* an explicit :: reaches both families too, whatever
     * net.ipv6.bindv6only says (the sends map IPv4 into it) */
    if (fd < 0) fd = open_bound(&ip, port, ip.family == 6 && p2p_ip_is_unspecified(&ip));
    if (fd < 0) return P2P_ESYS;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        p2p_ip_from_sockaddr(&dc->bound_ip, &dc->port, (struct sockaddr *)&ss) != 0) {
        close(fd);
        return P2P_ESYS;
    }
    dc->family = ip.family;
    dc->fd = fd;
    return 0;
}

void p2p_dc_close(p2p_dc_t *dc)
{
    if (dc->fd >= 0) close(dc->fd);
    dc->fd = -1;
    p2p_wipe(dc->priv, sizeof dc->priv);
}

p2p_endpoint_t p2p_dc_local_endpoint(const p2p_dc_t *dc, const p2p_ip_t *to)
{
    p2p_endpoint_t ep = {.ip = dc->bound_ip, .udp = dc->port, .tcp = 0};
    if (!p2p_ip_is_unspecified(&dc->bound_ip)) return ep;
    /* ask the kernel which source address it would use for `to` */
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, to, 9);
    int fd = sl ? socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
    if (fd >= 0) {
        if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
            sl = sizeof ss;
            uint16_t p;
            p2p_ip_t ip;
            if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
                p2p_ip_from_sockaddr(&ip, &p, (struct sockaddr *)&ss) == 0)
                ep.ip = ip;
        }
        close(fd);
    }
    return ep;
}

int p2p_dc_send(p2p_dc_t *dc, uint8_t hash[32], p2p_discv4_packet_t *p, const p2p_ip_t *ip,
                uint16_t port)
{
    uint8_t buf[P2P_DISCV4_MAX_SIZE];
    size_t len;
    p->expiration = p2p_wall_ms() / 1000 + P2P_DISCV4_EXPIRATION;
    int rc = p2p_discv4_encode(buf, &len, hash, p, dc->priv);
    if (rc) return rc;
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr_af(&ss, ip, port, dc->family == 6 ? AF_INET6 : AF_INET);
    /* an IPv6 node from an IPv4 socket, or an IPv4 node from a socket bound
     * to one IPv6 address (only [::] reaches both; the kernel would say
     * ENETUNREACH) */
    bool v6only = dc->family == 6 && !p2p_ip_is_unspecified(&dc->bound_ip);
    if ((!sl && ip->family == 6) || (v6only && ip->family == 4)) {
        errno = EAFNOSUPPORT;
        return P2P_ESYS;
    }
    if (!sl) return P2P_EINVAL;
    if (sendto(dc->fd, buf, len, 0, (struct sockaddr *)&ss, sl) < 0) return P2P_ESYS;
    dc->sent++;
    return 0;
}

int p2p_dc_ping(p2p_dc_t *dc, uint8_t hash[32], const p2p_node_t *n)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.u.ping.version = P2P_DISCV4_PING_VERSION;
    p.u.ping.from = p2p_dc_local_endpoint(dc, &n->ep.ip);
    p.u.ping.to = n->ep;
    p.u.ping.has_enr_seq = true;
    p.u.ping.enr_seq = dc->enr_seq;
    return p2p_dc_send(dc, hash, &p, &n->ep.ip, n->ep.udp);
}

/* Neighbors over 1280 bytes (see the header): hash, recovery, body. */
static int decode_big_neighbors(p2p_discv4_packet_t *p, const uint8_t *pkt, size_t len)
{
    if (len <= P2P_DISCV4_HEAD_LEN + 1 || len > P2P_DC_RECV_MAX) return P2P_EDECODE;
    if (pkt[P2P_DISCV4_HEAD_LEN] != P2P_DISCV4_NEIGHBORS) return P2P_EUNSUPPORTED;
    uint8_t h[32];
    p2p_keccak256(h, pkt + 32, len - 32);
    if (memcmp(h, pkt, 32) != 0) return P2P_EBADHASH;
    memset(p, 0, sizeof *p);
    p->type = P2P_DISCV4_NEIGHBORS;
    memcpy(p->hash, h, 32);
    p2p_keccak256(h, pkt + P2P_DISCV4_HEAD_LEN, len - P2P_DISCV4_HEAD_LEN);
    if (p2p_secp_recover(p->sender, pkt + 32, h) != 0) return P2P_EBADSIG;
    p2p_node_id(p->sender_id, p->sender);
    p2p_rlp_t c, body, list, ent;
    p2p_rlp_init(&c, pkt + P2P_DISCV4_HEAD_LEN + 1, len - P2P_DISCV4_HEAD_LEN - 1);
    if (p2p_rlp_enter(&c, &body) || p2p_rlp_enter(&body, &list)) return P2P_EDECODE;
    while (!p2p_rlp_done(&list)) {
        if (p->u.neighbors.n >= P2P_DISCV4_NEIGHBORS_CAP) return P2P_ETOOBIG;
        if (p2p_rlp_enter(&list, &ent)) return P2P_EDECODE;
        p2p_discv4_rpcnode_t *n = &p->u.neighbors.nodes[p->u.neighbors.n];
        const uint8_t *b;
        size_t bl;
        if (p2p_rlp_bytes(&ent, &b, &bl)) return P2P_EDECODE;
        if (bl == 4 || bl == 16) {
            n->ep.ip.family = bl == 4 ? 4 : 6;
            memcpy(n->ep.ip.addr, b, bl);
        }
        for (int k = 0; k < 2; k++) { /* udp, tcp: up to 2 bytes, leading zero tolerated */
            if (p2p_rlp_bytes(&ent, &b, &bl) || bl > 2) return P2P_EDECODE;
            uint16_t v = 0;
            for (size_t i = 0; i < bl; i++) v = (uint16_t)(v << 8 | b[i]);
            if (k == 0)
                n->ep.udp = v;
            else
                n->ep.tcp = v;
        }
        if (p2p_rlp_fixed(&ent, n->id, 64)) return P2P_EDECODE;
        p->u.neighbors.n++;
    }
    if (p2p_rlp_uint(&body, &p->expiration)) p->expiration = 0;
    p->u.neighbors.oversized = p->u.neighbors.n > P2P_DISCV4_MAX_NEIGHBORS;
    return 0;
}

static void answer_ping(p2p_dc_t *dc, const p2p_discv4_packet_t *ping, const p2p_ip_t *ip,
                        uint16_t port)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PONG;
    p.u.pong.to.ip = *ip;
    p.u.pong.to.udp = port;
    p.u.pong.to.tcp = ping->u.ping.from.tcp;
    memcpy(p.u.pong.reply_tok, ping->hash, 32);
    p.u.pong.has_enr_seq = true;
    p.u.pong.enr_seq = dc->enr_seq;
    if (p2p_dc_send(dc, NULL, &p, ip, port) == 0) dc->pings_answered++;
}

int p2p_dc_recv(p2p_dc_t *dc, p2p_discv4_packet_t *p, p2p_ip_t *from, uint16_t *from_port,
                uint64_t deadline)
{
    uint8_t buf[P2P_DC_RECV_MAX + 1];
    for (;;) {
        /* checked before every datagram, not only when the socket is
         * empty: a stream of packets (invalid, expired, or valid ones the
         * caller does not want and asks again for) must not hold the wait
         * past its deadline */
        uint64_t now = p2p_now_ns();
        if (now >= deadline) return P2P_ETIMEDOUT;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t n = recvfrom(dc->fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) return P2P_ESYS;
            uint64_t ms = (deadline - now + P2P_NS_PER_MS - 1) / P2P_NS_PER_MS;
            struct pollfd pf = {.fd = dc->fd, .events = POLLIN};
            if (poll(&pf, 1, ms > 1000 ? 1000 : (int)ms) < 0 && errno != EINTR) return P2P_ESYS;
            continue;
        }
        if (p2p_ip_from_sockaddr(from, from_port, (struct sockaddr *)&ss) != 0) continue;
        int rc;
        if ((size_t)n > P2P_DISCV4_MAX_SIZE)
            rc =
                (size_t)n > P2P_DC_RECV_MAX ? P2P_ETOOBIG : decode_big_neighbors(p, buf, (size_t)n);
        else
            rc = p2p_discv4_decode(p, buf, (size_t)n);
        if (rc) {
            dc->invalid++;
            continue;
        }
        /* discv4: a packet whose expiration has passed is dropped (a
         * replay, or a clock far behind): neither answered nor returned */
        if (p2p_discv4_expired(p, p2p_wall_ms() / 1000) != 0) {
            dc->expired++;
            continue;
        }
        dc->received++;
        if (p->type == P2P_DISCV4_PING) answer_ping(dc, p, from, *from_port);
        return 0;
    }
}
