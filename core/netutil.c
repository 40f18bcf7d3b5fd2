/*
 * core/netutil.c: IP address parsing, classification and the address rules
 * shared by discovery (relay checks, the /24 or /48 networks of ping-backs
 * and endpoint votes), the listener and the dialer (NetRestrict).  The
 * Kademlia table's IP limits are its own (/24 for both families,
 * actors/kad_table.c), not p2p_distinct_nets.  See core/netutil.h for the
 * contract.
 *
 * Ranges:
 * - loopback: 127.0.0.0/8, ::1.
 * - LAN: loopback, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
 *   169.254.0.0/16 (link-local), fe80::/10 (link-local), fc00::/7 (unique
 *   local).  CGNAT (100.64.0.0/10) is not LAN.
 * - special (never dialled or relayed): unspecified, 0.0.0.0/8, multicast
 *   (224.0.0.0/4, ff00::/8), 240.0.0.0/4 (reserved, includes broadcast), the
 *   IETF protocol-assignment, documentation, benchmarking, 6to4-relay and AS112
 *   ranges, and the IPv6 discard, TEREDO/ORCHID/benchmarking, documentation
 *   and 6to4 ranges.
 *
 * Limits: a NetRestrict list holds at most P2P_NETLIST_MAX ranges; a distinct
 * net counter at most P2P_DISTINCT_NETS_MAX subnets (linear scans: the tables
 * are small and owned by one thread).
 *
 * Thread-safety: pure functions over caller-owned values; any thread.
 */
#include "core/netutil.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

typedef struct range {
    uint8_t family;
    uint8_t bits;
    uint8_t addr[16];
} range_t;

#define V4(a, b, c, d, n)                                                                          \
    {                                                                                              \
        4, n,                                                                                      \
        {                                                                                          \
            a, b, c, d                                                                             \
        }                                                                                          \
    }
#define V6(n, ...)                                                                                 \
    {                                                                                              \
        6, n,                                                                                      \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }

static const range_t lan_ranges[] = {
    V4(127, 0, 0, 0, 8),    V4(10, 0, 0, 0, 8), V4(172, 16, 0, 0, 12), V4(192, 168, 0, 0, 16),
    V4(169, 254, 0, 0, 16), V6(128, [15] = 1),  V6(10, 0xfe, 0x80),    V6(7, 0xfc),
};

static const range_t special_ranges[] = {
    V4(0, 0, 0, 0, 8),                          /* "this" network, includes 0.0.0.0 */
    V4(224, 0, 0, 0, 4),                        /* multicast */
    V4(240, 0, 0, 0, 4),                        /* reserved, includes 255.255.255.255 */
    V4(192, 0, 0, 0, 29),                       /* IETF protocol assignments */
    V4(192, 0, 0, 9, 32),                       /* port control protocol anycast */
    V4(192, 0, 0, 170, 32),                     /* NAT64/DNS64 discovery */
    V4(192, 0, 0, 171, 32),                     /* NAT64/DNS64 discovery */
    V4(192, 0, 2, 0, 24),                       /* TEST-NET-1 */
    V4(192, 31, 196, 0, 24),                    /* AS112-v4 */
    V4(192, 52, 193, 0, 24),                    /* AMT */
    V4(192, 88, 99, 0, 24),                     /* deprecated 6to4 relay anycast */
    V4(192, 175, 48, 0, 24),                    /* direct delegation AS112 */
    V4(198, 18, 0, 0, 15),                      /* benchmarking */
    V4(198, 51, 100, 0, 24),                    /* TEST-NET-2 */
    V4(203, 0, 113, 0, 24),                     /* TEST-NET-3 */
    V6(128, 0),                                 /* :: unspecified */
    V6(8, 0xff),                                /* multicast */
    V6(64, 0x01, 0x00),                         /* 100::/64 discard-only */
    V6(32, 0x20, 0x01),                         /* 2001::/32 TEREDO */
    V6(128, 0x20, 0x01, 0x00, 0x01, [15] = 1),  /* 2001:1::1/128 */
    V6(48, 0x20, 0x01, 0x00, 0x02),             /* 2001:2::/48 benchmarking */
    V6(32, 0x20, 0x01, 0x00, 0x03),             /* 2001:3::/32 AMT */
    V6(48, 0x20, 0x01, 0x00, 0x04, 0x01, 0x12), /* 2001:4:112::/48 AS112-v6 */
    V6(32, 0x20, 0x01, 0x00, 0x05),             /* 2001:5::/32 EID space */
    V6(28, 0x20, 0x01, 0x00, 0x10),             /* 2001:10::/28 ORCHID */
    V6(28, 0x20, 0x01, 0x00, 0x20),             /* 2001:20::/28 ORCHIDv2 */
    V6(32, 0x20, 0x01, 0x0d, 0xb8),             /* 2001:db8::/32 documentation */
    V6(16, 0x20, 0x02),                         /* 2002::/16 6to4 */
};

/* Whether the first `bits` bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static bool in_ranges(const range_t *r, size_t n, const p2p_ip_t *ip)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].family == ip->family && prefix_equal(r[i].addr, ip->addr, r[i].bits)) return true;
    }
    return false;
}

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Sets ip from 16 IPv6 bytes, normalising ::ffff:a.b.c.d to family 4. */
static void set_ip6(p2p_ip_t *ip, const uint8_t b[16])
{
    memset(ip, 0, sizeof *ip);
    if (memcmp(b, mapped_prefix, sizeof mapped_prefix) == 0) {
        ip->family = 4;
        memcpy(ip->addr, b + 12, 4);
    } else {
        ip->family = 6;
        memcpy(ip->addr, b, 16);
    }
}

int p2p_ip_parse(p2p_ip_t *ip, const char *s)
{
    uint8_t b[16];
    if (!s) return P2P_EINVAL;
    if (strchr(s, ':')) {
        if (inet_pton(AF_INET6, s, b) != 1) return P2P_EINVAL;
        set_ip6(ip, b);
        return 0;
    }
    if (inet_pton(AF_INET, s, b) != 1) return P2P_EINVAL;
    memset(ip, 0, sizeof *ip);
    ip->family = 4;
    memcpy(ip->addr, b, 4);
    return 0;
}

char *p2p_ip_format(char out[P2P_IP_STRLEN], const p2p_ip_t *ip)
{
    const char *r = NULL;
    if (ip->family == 4)
        r = inet_ntop(AF_INET, ip->addr, out, P2P_IP_STRLEN);
    else if (ip->family == 6)
        r = inet_ntop(AF_INET6, ip->addr, out, P2P_IP_STRLEN);
    if (!r) snprintf(out, P2P_IP_STRLEN, "<none>");
    return out;
}

char *p2p_ip_port_format(char out[P2P_IP_PORT_STRLEN], const p2p_ip_t *ip, uint16_t port)
{
    char a[P2P_IP_STRLEN];
    p2p_ip_format(a, ip);
    snprintf(out, P2P_IP_PORT_STRLEN, ip->family == 6 ? "[%s]:%u" : "%s:%u", a, (unsigned)port);
    return out;
}

bool p2p_ip_is_loopback(const p2p_ip_t *ip)
{
    if (ip->family == 4) return ip->addr[0] == 127;
    if (ip->family == 6) {
        static const uint8_t one[16] = {[15] = 1};
        return memcmp(ip->addr, one, 16) == 0;
    }
    return false;
}

bool p2p_ip_is_lan(const p2p_ip_t *ip)
{
    return in_ranges(lan_ranges, sizeof lan_ranges / sizeof lan_ranges[0], ip);
}

bool p2p_ip_is_unspecified(const p2p_ip_t *ip)
{
    static const uint8_t zero[16];
    if (ip->family == 4) return memcmp(ip->addr, zero, 4) == 0;
    if (ip->family == 6) return memcmp(ip->addr, zero, 16) == 0;
    return true;
}

bool p2p_ip_is_special(const p2p_ip_t *ip)
{
    if (ip->family != 4 && ip->family != 6) return true;
    return in_ranges(special_ranges, sizeof special_ranges / sizeof special_ranges[0], ip);
}

int p2p_check_relay_ip(const p2p_ip_t *sender, const p2p_ip_t *addr)
{
    if (addr->family != 4 && addr->family != 6) return P2P_ERESTRICT;
    if (p2p_ip_is_unspecified(addr) || p2p_ip_is_special(addr)) return P2P_ERESTRICT;
    if (p2p_ip_is_loopback(addr) && !p2p_ip_is_loopback(sender)) return P2P_ERESTRICT;
    if (p2p_ip_is_lan(addr) && !p2p_ip_is_lan(sender)) return P2P_ERESTRICT;
    return 0;
}

/* Parses one "ip/bits" entry of len bytes at s. */
static int parse_cidr(p2p_ip_t *net, uint8_t *bits, const char *s, size_t len)
{
    char buf[64];
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 0 || len >= sizeof buf) return P2P_EINVAL;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *slash = strchr(buf, '/');
    if (!slash || slash[1] == 0) return P2P_EINVAL;
    *slash = 0;
    bool text_v6 = strchr(buf, ':') != NULL;
    unsigned long b = 0;
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || b > 128) return P2P_EINVAL;
        b = b * 10 + (unsigned long)(*p - '0');
    }
    if (slash[2] && slash[1] == '0') return P2P_EINVAL; /* no leading zeros */
    p2p_ip_t ip;
    if (p2p_ip_parse(&ip, buf) != 0) return P2P_EINVAL;
    if (text_v6) {
        if (b > 128) return P2P_EINVAL;
        if (ip.family == 4) { /* ::ffff:a.b.c.d/n */
            if (b < 96) return P2P_EINVAL;
            b -= 96;
        }
    } else if (b > 32) {
        return P2P_EINVAL;
    }
    /* Clear the host bits. */
    unsigned n = p2p_ip_len(&ip);
    for (unsigned i = 0; i < n; i++) {
        unsigned lo = i * 8;
        if (lo >= b)
            ip.addr[i] = 0;
        else if (b - lo < 8)
            ip.addr[i] &= (uint8_t)(0xff << (8 - (b - lo)));
    }
    *net = ip;
    *bits = (uint8_t)b;
    return 0;
}

int p2p_netlist_parse(p2p_netlist_t *l, const char *s)
{
    memset(l, 0, sizeof *l);
    if (!s) return P2P_EINVAL;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        size_t k = 0;
        while (k < len && (p[k] == ' ' || p[k] == '\t')) k++;
        if (k < len) { /* empty entries are skipped */
            if (l->n == P2P_NETLIST_MAX) {
                memset(l, 0, sizeof *l);
                return P2P_ETOOBIG;
            }
            int rc = parse_cidr(&l->nets[l->n].net, &l->nets[l->n].bits, p, len);
            if (rc) {
                memset(l, 0, sizeof *l);
                return rc;
            }
            l->n++;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

bool p2p_netlist_contains(const p2p_netlist_t *l, const p2p_ip_t *ip)
{
    if (!l) return false;
    for (unsigned i = 0; i < l->n && i < P2P_NETLIST_MAX; i++) {
        if (l->nets[i].net.family == ip->family &&
            prefix_equal(l->nets[i].net.addr, ip->addr, l->nets[i].bits))
            return true;
    }
    return false;
}

/* ip with every byte after its first 3 (IPv4) or v6_bytes (IPv6) zeroed. */
static p2p_ip_t ip_prefix(const p2p_ip_t *ip, size_t v6_bytes)
{
    p2p_ip_t p;
    memset(&p, 0, sizeof p);
    p.family = ip->family;
    memcpy(p.addr, ip->addr, ip->family == 6 ? v6_bytes : 3);
    return p;
}

p2p_ip_t p2p_ip_net(const p2p_ip_t *ip)
{
    return ip_prefix(ip, 6);
}

/* The /24 (IPv4) or /64 (IPv6) prefix of ip (host bytes zeroed): the
 * subnets of p2p_distinct_nets. */
static p2p_ip_t subnet_of(const p2p_ip_t *ip)
{
    return ip_prefix(ip, 8);
}

static int distinct_find(const p2p_distinct_nets_t *d, const p2p_ip_t *prefix)
{
    for (unsigned i = 0; i < d->n; i++)
        if (p2p_ip_equal(&d->e[i].prefix, prefix)) return (int)i;
    return -1;
}

void p2p_distinct_nets_init(p2p_distinct_nets_t *d, unsigned limit)
{
    memset(d, 0, sizeof *d);
    d->limit = limit;
}

bool p2p_distinct_nets_add(p2p_distinct_nets_t *d, const p2p_ip_t *ip)
{
    if (ip->family != 4 && ip->family != 6) return false;
    if (p2p_ip_is_lan(ip)) return true;
    p2p_ip_t prefix = subnet_of(ip);
    int i = distinct_find(d, &prefix);
    if (i >= 0) {
        if (d->e[i].count >= d->limit) return false;
        d->e[i].count++;
        return true;
    }
    if (d->limit == 0 || d->n >= P2P_DISTINCT_NETS_MAX) return false;
    d->e[d->n].prefix = prefix;
    d->e[d->n].count = 1;
    d->n++;
    return true;
}

void p2p_distinct_nets_remove(p2p_distinct_nets_t *d, const p2p_ip_t *ip)
{
    if (ip->family != 4 && ip->family != 6) return;
    if (p2p_ip_is_lan(ip)) return;
    p2p_ip_t prefix = subnet_of(ip);
    int i = distinct_find(d, &prefix);
    if (i < 0) return;
    if (--d->e[i].count == 0) d->e[i] = d->e[--d->n];
}

bool p2p_distinct_nets_contains(const p2p_distinct_nets_t *d, const p2p_ip_t *ip)
{
    if (ip->family != 4 && ip->family != 6) return false;
    if (p2p_ip_is_lan(ip)) return false;
    p2p_ip_t prefix = subnet_of(ip);
    return distinct_find(d, &prefix) >= 0;
}

socklen_t p2p_ip_to_sockaddr(struct sockaddr_storage *ss, const p2p_ip_t *ip, uint16_t port)
{
    memset(ss, 0, sizeof *ss);
    if (ip->family == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, ip->addr, 4);
        return (socklen_t)sizeof *sin;
    }
    if (ip->family == 6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, ip->addr, 16);
        return (socklen_t)sizeof *sin6;
    }
    return 0;
}

socklen_t p2p_ip_to_sockaddr_af(struct sockaddr_storage *ss, const p2p_ip_t *ip, uint16_t port,
                                int af)
{
    if (af == AF_INET6 && ip->family == 4) {
        p2p_ip_t m = {.family = 6};
        memcpy(m.addr, mapped_prefix, sizeof mapped_prefix);
        memcpy(m.addr + 12, ip->addr, 4);
        return p2p_ip_to_sockaddr(ss, &m, port);
    }
    if (af == AF_INET && ip->family != 4) return 0;
    return p2p_ip_to_sockaddr(ss, ip, port);
}

p2p_ip_t p2p_ip_advertised(const p2p_ip_t *external, const p2p_ip_t *listen)
{
    if (external->family) return *external;
    if (listen->family && !p2p_ip_is_unspecified(listen)) return *listen;
    return p2p_ip4(127, 0, 0, 1);
}

unsigned p2p_ip_reach_family(const p2p_ip_t *listen)
{
    if (listen->family != 6) return 4;
    return p2p_ip_is_unspecified(listen) ? 0 : 6;
}

int p2p_ip_from_sockaddr(p2p_ip_t *ip, uint16_t *port, const struct sockaddr *sa)
{
    if (!sa) return P2P_EINVAL;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof sin);
        memset(ip, 0, sizeof *ip);
        ip->family = 4;
        memcpy(ip->addr, &sin.sin_addr, 4);
        if (port) *port = ntohs(sin.sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof sin6);
        set_ip6(ip, sin6.sin6_addr.s6_addr);
        if (port) *port = ntohs(sin6.sin6_port);
        return 0;
    }
    return P2P_EINVAL;
}
