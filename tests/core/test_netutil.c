/* core/netutil: parsing and formatting, classification, relay rules,
 * NetRestrict lists, distinct-subnet counting and sockaddr conversions. */
#include "core/netutil.h"

#include <arpa/inet.h>

#include "tests/tu.h"

static p2p_ip_t ip_of(const char *s)
{
    p2p_ip_t ip;
    memset(&ip, 0xaa, sizeof ip);
    int rc = p2p_ip_parse(&ip, s);
    CHECK(rc == 0);
    if (rc) fprintf(stderr, "parse failed: %s\n", s);
    return ip;
}

static void check_roundtrip(const char *in, const char *want)
{
    char buf[P2P_IP_STRLEN];
    p2p_ip_t ip = ip_of(in);
    CHECK(strcmp(p2p_ip_format(buf, &ip), want) == 0);
    if (strcmp(buf, want) != 0) fprintf(stderr, "format(%s) = %s, want %s\n", in, buf, want);
}

static void test_parse_format(void)
{
    p2p_ip_t ip;
    CHECK_OK(p2p_ip_parse(&ip, "1.2.3.4"));
    CHECK(ip.family == 4);
    CHECK(ip.addr[0] == 1 && ip.addr[3] == 4);
    static const uint8_t zero12[12];
    CHECK_MEM(ip.addr + 4, zero12, 12);
    CHECK(p2p_ip_equal(&ip, &(p2p_ip_t){.family = 4, .addr = {1, 2, 3, 4}}));

    /* IPv4-mapped IPv6 becomes family 4, with the upper bytes zero. */
    ip = ip_of("::ffff:10.0.0.1");
    CHECK(ip.family == 4);
    p2p_ip_t want = p2p_ip4(10, 0, 0, 1);
    CHECK(p2p_ip_equal(&ip, &want));
    CHECK_MEM(ip.addr + 4, zero12, 12);
    ip = ip_of("::FFFF:0a00:0001");
    CHECK(p2p_ip_equal(&ip, &want));

    ip = ip_of("2001:db8::1");
    CHECK(ip.family == 6);
    CHECK(ip.addr[0] == 0x20 && ip.addr[1] == 0x01 && ip.addr[15] == 1);
    /* ::1.2.3.4 (IPv4-compatible, deprecated) stays IPv6. */
    ip = ip_of("::1.2.3.4");
    CHECK(ip.family == 6);

    check_roundtrip("1.2.3.4", "1.2.3.4");
    check_roundtrip("255.255.255.255", "255.255.255.255");
    check_roundtrip("::ffff:192.168.1.1", "192.168.1.1");
    check_roundtrip("::1", "::1");
    check_roundtrip("2001:0DB8:0000::0001", "2001:db8::1");
    check_roundtrip("fe80::", "fe80::");

    const char *bad[] = {
        "",           "1.2.3",      "1.2.3.4.5",    "256.1.1.1", "1.2.3.4 ",
        " 1.2.3.4",   "01.2.3.4",   "a.b.c.d",      "::g",       "1:2:3:4:5:6:7:8:9",
        "fe80::1%lo", "1.2.3.4/24", "::ffff:1.2.3", "-1.2.3.4",  "1..2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p2p_ip_t x;
        CHECK_ERR(p2p_ip_parse(&x, bad[i]), P2P_EINVAL);
    }
    CHECK_ERR(p2p_ip_parse(&ip, NULL), P2P_EINVAL);

    char buf[P2P_IP_STRLEN];
    p2p_ip_t none = {0};
    CHECK(strcmp(p2p_ip_format(buf, &none), "<none>") == 0);
    /* The longest text form fits. */
    check_roundtrip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

    /* Endpoints: an IPv6 address in brackets, the longest one fits. */
    char ep[P2P_IP_PORT_STRLEN];
    CHECK(p2p_ip_parse(&ip, "127.0.0.1") == 0);
    CHECK(strcmp(p2p_ip_port_format(ep, &ip, 30303), "127.0.0.1:30303") == 0);
    CHECK(p2p_ip_parse(&ip, "::1") == 0);
    CHECK(strcmp(p2p_ip_port_format(ep, &ip, 1), "[::1]:1") == 0);
    CHECK(p2p_ip_parse(&ip, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") == 0);
    CHECK(strcmp(p2p_ip_port_format(ep, &ip, 65535),
                 "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535") == 0);
    CHECK(strcmp(p2p_ip_port_format(ep, &none, 0), "<none>:0") == 0);
}

static void test_classify(void)
{
    struct {
        const char *ip;
        bool loopback, lan, special, unspecified;
    } cases[] = {
        {"127.0.0.1", true, true, false, false},
        {"127.255.255.254", true, true, false, false},
        {"::1", true, true, false, false},
        {"::ffff:127.0.0.1", true, true, false, false},
        {"10.0.0.1", false, true, false, false},
        {"10.255.255.255", false, true, false, false},
        {"172.16.0.1", false, true, false, false},
        {"172.31.255.255", false, true, false, false},
        {"172.15.255.255", false, false, false, false},
        {"172.32.0.0", false, false, false, false},
        {"192.168.0.1", false, true, false, false},
        {"192.169.0.1", false, false, false, false},
        {"169.254.1.1", false, true, false, false},
        {"fe80::1", false, true, false, false},
        {"febf::1", false, true, false, false},
        {"fec0::1", false, false, false, false},
        {"fc00::1", false, true, false, false},
        {"fd12:3456::1", false, true, false, false},
        {"100.64.0.1", false, false, false, false}, /* CGNAT is not LAN */
        {"100.127.255.255", false, false, false, false},
        {"8.8.8.8", false, false, false, false},
        {"2a00:1450::1", false, false, false, false},
        {"0.0.0.0", false, false, true, true},
        {"0.1.2.3", false, false, true, false},
        {"::", false, false, true, true},
        {"224.0.0.1", false, false, true, false},
        {"239.255.255.255", false, false, true, false},
        {"240.0.0.1", false, false, true, false},
        {"255.255.255.255", false, false, true, false},
        {"ff02::1", false, false, true, false},
        {"192.0.2.7", false, false, true, false},
        {"198.51.100.1", false, false, true, false},
        {"203.0.113.9", false, false, true, false},
        {"198.18.0.1", false, false, true, false},
        {"198.19.255.255", false, false, true, false},
        {"198.20.0.0", false, false, false, false},
        {"192.0.0.5", false, false, true, false},
        {"192.0.0.9", false, false, true, false},
        {"192.0.0.10", false, false, false, false},
        {"192.0.0.170", false, false, true, false},
        {"192.88.99.1", false, false, true, false},
        {"2001:db8::1", false, false, true, false},
        {"2001::1", false, false, true, false},
        {"2001:10::1", false, false, true, false},
        {"2001:4:112::1", false, false, true, false},
        {"2001:4:113::1", false, false, false, false},
        {"2002::1", false, false, true, false},
        {"100::1", false, false, true, false},
        {"100:0:0:1::1", false, false, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p2p_ip_t ip = ip_of(cases[i].ip);
        bool lo = p2p_ip_is_loopback(&ip), lan = p2p_ip_is_lan(&ip), sp = p2p_ip_is_special(&ip),
             un = p2p_ip_is_unspecified(&ip);
        CHECK(lo == cases[i].loopback);
        CHECK(lan == cases[i].lan);
        CHECK(sp == cases[i].special);
        CHECK(un == cases[i].unspecified);
        if (lo != cases[i].loopback || lan != cases[i].lan || sp != cases[i].special ||
            un != cases[i].unspecified)
            fprintf(stderr, "classification of %s: lo %d lan %d special %d unspec %d\n",
                    cases[i].ip, lo, lan, sp, un);
    }
    p2p_ip_t none = {0};
    CHECK(!p2p_ip_is_loopback(&none));
    CHECK(!p2p_ip_is_lan(&none));
    CHECK(p2p_ip_is_special(&none));
    CHECK(p2p_ip_is_unspecified(&none));
    /* the family a listening address reaches: none and IPv4 (0.0.0.0 too)
     * 4, one IPv6 address 6, :: both (0) */
    static const struct {
        const char *ip;
        unsigned fam;
    } reach[] = {{"0.0.0.0", 4},     {"127.0.0.2", 4}, {"::1", 6},
                 {"2001:db8::1", 6}, {"::", 0},        {"::ffff:10.0.0.1", 4}};
    CHECK(p2p_ip_reach_family(&none) == 4);
    for (size_t i = 0; i < sizeof reach / sizeof reach[0]; i++) {
        p2p_ip_t ip;
        CHECK_OK(p2p_ip_parse(&ip, reach[i].ip));
        CHECK(p2p_ip_reach_family(&ip) == reach[i].fam);
    }
}

static void test_relay(void)
{
    struct {
        const char *sender, *addr;
        int want;
    } cases[] = {
        {"8.8.8.8", "1.2.3.4", 0},
        {"127.0.0.1", "1.2.3.4", 0},
        {"10.0.0.1", "1.2.3.4", 0},
        {"127.0.0.1", "127.0.0.2", 0},            /* loopback from loopback */
        {"::1", "127.0.0.2", 0},                  /* IPv6 loopback sender */
        {"10.0.0.1", "127.0.0.2", P2P_ERESTRICT}, /* loopback from LAN */
        {"8.8.8.8", "127.0.0.2", P2P_ERESTRICT},  /* loopback from internet */
        {"10.0.0.1", "192.168.1.1", 0},           /* LAN from LAN */
        {"127.0.0.1", "192.168.1.1", 0},          /* LAN from loopback (loopback is LAN) */
        {"8.8.8.8", "192.168.1.1", P2P_ERESTRICT},
        {"8.8.8.8", "fd00::1", P2P_ERESTRICT},
        {"fd00::2", "fd00::1", 0},
        {"8.8.8.8", "0.0.0.0", P2P_ERESTRICT},
        {"127.0.0.1", "0.0.0.0", P2P_ERESTRICT},
        {"8.8.8.8", "::", P2P_ERESTRICT},
        {"8.8.8.8", "224.0.0.1", P2P_ERESTRICT},
        {"8.8.8.8", "255.255.255.255", P2P_ERESTRICT},
        {"8.8.8.8", "192.0.2.1", P2P_ERESTRICT},
        {"127.0.0.1", "2001:db8::5", P2P_ERESTRICT},
        {"8.8.8.8", "100.64.0.1", 0}, /* CGNAT relayed like internet */
        {"8.8.8.8", "2a00:1450::1", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p2p_ip_t s = ip_of(cases[i].sender), a = ip_of(cases[i].addr);
        int rc = p2p_check_relay_ip(&s, &a);
        CHECK(rc == cases[i].want);
        if (rc != cases[i].want)
            fprintf(stderr, "relay %s -> %s: %d\n", cases[i].sender, cases[i].addr, rc);
    }
    p2p_ip_t none = {0}, pub = p2p_ip4(1, 2, 3, 4), lo = p2p_ip4(127, 0, 0, 1);
    CHECK_ERR(p2p_check_relay_ip(&pub, &none), P2P_ERESTRICT);
    CHECK_OK(p2p_check_relay_ip(&none, &pub));
    CHECK_ERR(p2p_check_relay_ip(&none, &lo), P2P_ERESTRICT);
}

static void test_netlist(void)
{
    p2p_netlist_t l;
    CHECK_OK(p2p_netlist_parse(&l, "10.0.0.0/8, 192.168.1.0/24,::1/128 , 2001:db8::/33"));
    CHECK(l.n == 4);
    p2p_ip_t ip;
    const char *in[] = {"10.1.2.3",    "10.255.255.255",   "192.168.1.77",   "::1",
                        "2001:db8::1", "2001:db8:7fff::1", "::ffff:10.9.9.9"};
    const char *out[] = {"11.0.0.0",         "9.255.255.255", "192.168.2.1", "::2",
                         "2001:db8:8000::1", "127.0.0.1",     "1.2.3.4"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        ip = ip_of(in[i]);
        CHECK(p2p_netlist_contains(&l, &ip));
    }
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        ip = ip_of(out[i]);
        CHECK(!p2p_netlist_contains(&l, &ip));
    }
    /* Host bits are cleared: "10.1.2.3/8" means 10.0.0.0/8. */
    CHECK_OK(p2p_netlist_parse(&l, "10.1.2.3/8"));
    CHECK(l.n == 1 && l.nets[0].bits == 8);
    CHECK(p2p_ip_equal(&l.nets[0].net, &(p2p_ip_t){.family = 4, .addr = {10}}));
    ip = ip_of("10.200.0.1");
    CHECK(p2p_netlist_contains(&l, &ip));
    /* Odd prefix lengths. */
    CHECK_OK(p2p_netlist_parse(&l, "172.16.0.0/12"));
    ip = ip_of("172.31.0.1");
    CHECK(p2p_netlist_contains(&l, &ip));
    ip = ip_of("172.32.0.1");
    CHECK(!p2p_netlist_contains(&l, &ip));
    /* /0 matches everything of its family only. */
    CHECK_OK(p2p_netlist_parse(&l, "0.0.0.0/0"));
    ip = ip_of("1.2.3.4");
    CHECK(p2p_netlist_contains(&l, &ip));
    ip = ip_of("::2");
    CHECK(!p2p_netlist_contains(&l, &ip));
    /* /32 exact. */
    CHECK_OK(p2p_netlist_parse(&l, "1.2.3.4/32"));
    ip = ip_of("1.2.3.4");
    CHECK(p2p_netlist_contains(&l, &ip));
    ip = ip_of("1.2.3.5");
    CHECK(!p2p_netlist_contains(&l, &ip));
    /* A mapped CIDR becomes IPv4 with 96 bits removed. */
    CHECK_OK(p2p_netlist_parse(&l, "::ffff:10.0.0.0/104"));
    CHECK(l.n == 1 && l.nets[0].net.family == 4 && l.nets[0].bits == 8);
    /* Empty list and empty entries. */
    CHECK_OK(p2p_netlist_parse(&l, ""));
    CHECK(l.n == 0);
    ip = ip_of("1.2.3.4");
    CHECK(!p2p_netlist_contains(&l, &ip));
    CHECK(!p2p_netlist_contains(NULL, &ip));
    CHECK_OK(p2p_netlist_parse(&l, ",1.2.3.0/24,,"));
    CHECK(l.n == 1);

    const char *bad[] = {"10.0.0.0",    "10.0.0.0/",         "10.0.0.0/33", "::/129",
                         "10.0.0.0/8x", "10.0.0/8",          "/8",          "10.0.0.0/-1",
                         "10.0.0.0/08", "::ffff:1.2.3.4/95", "1.2.3.4/8,x", "x/8,1.2.3.4/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        l.n = 7;
        CHECK_ERR(p2p_netlist_parse(&l, bad[i]), P2P_EINVAL);
        CHECK(l.n == 0);
    }
    CHECK_ERR(p2p_netlist_parse(&l, NULL), P2P_EINVAL);

    /* Capacity: exactly P2P_NETLIST_MAX entries fit, one more does not. */
    char big[P2P_NETLIST_MAX * 20 + 32];
    size_t o = 0;
    for (unsigned i = 0; i < P2P_NETLIST_MAX; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%s10.%u.0.0/16", i ? "," : "", i);
    CHECK_OK(p2p_netlist_parse(&l, big));
    CHECK(l.n == P2P_NETLIST_MAX);
    ip = ip_of("10.63.1.1");
    CHECK(p2p_netlist_contains(&l, &ip));
    snprintf(big + o, sizeof big - o, ",11.0.0.0/8");
    CHECK_ERR(p2p_netlist_parse(&l, big), P2P_ETOOBIG);
}

static void test_distinct(void)
{
    p2p_distinct_nets_t d;
    p2p_distinct_nets_init(&d, 2);
    p2p_ip_t a = ip_of("1.2.3.4"), b = ip_of("1.2.3.5"), c = ip_of("1.2.3.200"),
             other = ip_of("1.2.4.1");
    CHECK(!p2p_distinct_nets_contains(&d, &a));
    CHECK(p2p_distinct_nets_add(&d, &a));
    CHECK(p2p_distinct_nets_contains(&d, &c)); /* same /24 */
    CHECK(p2p_distinct_nets_add(&d, &b));
    CHECK(!p2p_distinct_nets_add(&d, &c)); /* /24 full */
    CHECK(p2p_distinct_nets_add(&d, &other));
    p2p_distinct_nets_remove(&d, &a);
    CHECK(p2p_distinct_nets_add(&d, &c));
    CHECK(!p2p_distinct_nets_add(&d, &a));
    p2p_distinct_nets_remove(&d, &b);
    p2p_distinct_nets_remove(&d, &c);
    CHECK(!p2p_distinct_nets_contains(&d, &a));
    CHECK(d.n == 1);
    p2p_distinct_nets_remove(&d, &a); /* unknown: no-op */
    CHECK(d.n == 1);

    /* LAN is always admitted and never counted. */
    p2p_ip_t lan = ip_of("192.168.0.1");
    for (int i = 0; i < 10; i++) CHECK(p2p_distinct_nets_add(&d, &lan));
    CHECK(!p2p_distinct_nets_contains(&d, &lan));
    CHECK(d.n == 1);
    p2p_distinct_nets_remove(&d, &lan);
    CHECK(d.n == 1);
    p2p_ip_t lo = ip_of("127.0.0.1");
    CHECK(p2p_distinct_nets_add(&d, &lo));

    /* IPv6 counts per /64. */
    p2p_ip_t x = ip_of("2a00:1:2:3::1"), y = ip_of("2a00:1:2:3:ffff::2"),
             z = ip_of("2a00:1:2:3:1::3"), w = ip_of("2a00:1:2:4::1");
    CHECK(p2p_distinct_nets_add(&d, &x));
    CHECK(p2p_distinct_nets_add(&d, &y));
    CHECK(!p2p_distinct_nets_add(&d, &z));
    CHECK(p2p_distinct_nets_add(&d, &w));
    /* An IPv4 /24 and an IPv6 prefix with the same leading bytes differ. */
    p2p_ip_t v6like = {.family = 6, .addr = {1, 2, 4}};
    p2p_distinct_nets_init(&d, 1);
    CHECK(p2p_distinct_nets_add(&d, &other));
    CHECK(p2p_distinct_nets_add(&d, &v6like));
    /* No address is never admitted; limit 0 admits only LAN. */
    p2p_ip_t none = {0};
    CHECK(!p2p_distinct_nets_add(&d, &none));
    CHECK(!p2p_distinct_nets_contains(&d, &none));
    p2p_distinct_nets_init(&d, 0);
    CHECK(!p2p_distinct_nets_add(&d, &a));
    CHECK(p2p_distinct_nets_add(&d, &lan));

    /* Table full: P2P_DISTINCT_NETS_MAX subnets, then refused. */
    p2p_distinct_nets_init(&d, 1);
    for (unsigned i = 0; i < P2P_DISTINCT_NETS_MAX; i++) {
        p2p_ip_t s = p2p_ip4(5, (uint8_t)(i >> 8), (uint8_t)i, 1);
        CHECK(p2p_distinct_nets_add(&d, &s));
    }
    p2p_ip_t extra = p2p_ip4(6, 0, 0, 1);
    CHECK(!p2p_distinct_nets_add(&d, &extra));
    CHECK(p2p_distinct_nets_add(&d, &lan));
    p2p_ip_t first = p2p_ip4(5, 0, 0, 9);
    p2p_distinct_nets_remove(&d, &first);
    CHECK(p2p_distinct_nets_add(&d, &extra));
}

static void test_sockaddr(void)
{
    struct sockaddr_storage ss;
    p2p_ip_t ip = ip_of("1.2.3.4"), back;
    uint16_t port = 0;
    socklen_t n = p2p_ip_to_sockaddr(&ss, &ip, 30303);
    CHECK(n == sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    CHECK(sin->sin_family == AF_INET);
    CHECK(ntohs(sin->sin_port) == 30303);
    CHECK(ntohl(sin->sin_addr.s_addr) == 0x01020304);
    CHECK_OK(p2p_ip_from_sockaddr(&back, &port, (const struct sockaddr *)&ss));
    CHECK(p2p_ip_equal(&back, &ip) && port == 30303);

    ip = ip_of("2001:db8::7");
    n = p2p_ip_to_sockaddr(&ss, &ip, 1);
    CHECK(n == sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    CHECK(sin6->sin6_family == AF_INET6);
    CHECK(ntohs(sin6->sin6_port) == 1);
    CHECK_MEM(sin6->sin6_addr.s6_addr, ip.addr, 16);
    CHECK_OK(p2p_ip_from_sockaddr(&back, NULL, (const struct sockaddr *)&ss));
    CHECK(p2p_ip_equal(&back, &ip));

    /* A v4-mapped sockaddr_in6 (dual-stack accept) comes back as family 4. */
    struct sockaddr_in6 m = {.sin6_family = AF_INET6, .sin6_port = htons(65535)};
    CHECK(inet_pton(AF_INET6, "::ffff:127.0.0.1", &m.sin6_addr) == 1);
    CHECK_OK(p2p_ip_from_sockaddr(&back, &port, (const struct sockaddr *)&m));
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    CHECK(p2p_ip_equal(&back, &lo) && port == 65535);

    p2p_ip_t none = {0};
    CHECK(p2p_ip_to_sockaddr(&ss, &none, 1) == 0);
    struct sockaddr_storage un = {.ss_family = AF_UNIX};
    CHECK_ERR(p2p_ip_from_sockaddr(&back, &port, (const struct sockaddr *)&un), P2P_EINVAL);
    CHECK_ERR(p2p_ip_from_sockaddr(&back, &port, NULL), P2P_EINVAL);
}

int main(void)
{
    test_parse_format();
    test_classify();
    test_relay();
    test_netlist();
    test_distinct();
    test_sockaddr();
    return tu_done("netutil");
}
