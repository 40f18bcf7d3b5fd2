/*
 * tests/actors/test_discovery_ipv6.c: a running discovery instance on IPv6
 * sockets, against fake nodes on loopback.
 *
 *   1. On ::1 (an IPv6 socket bound to one IPv6 address: it reaches IPv6
 *      only): a bootnode on ::1 answers the findnode with one IPv4 and one
 *      IPv6 node.  The IPv6 node enters the table; the IPv4 one is dropped
 *      as unreachable (node_unreachable), never enters the table and is
 *      never sent a packet (no tx_errors).
 *   2. On :: (dual-stack), predicting its endpoint: bootnodes on distinct
 *      /24s answer its pings with pongs, half of them naming an IPv4
 *      endpoint and half an IPv6 one.  The record takes both (ip/udp/tcp
 *      and ip6/udp6/tcp6), each adopted once, instead of trading one family
 *      for the other at every statement.  (Loopback has one IPv6 network,
 *      so the IPv6 statements come from IPv4 voters: the vote counts the
 *      voters' networks; the endpoint's family picks the half of the
 *      record it moves.)
 *   3. As 2 with a static IPv4 address (announce_static, --nat extip): the
 *      IPv4 statements move nothing, the IPv6 ones are adopted beside it.
 * The fake nodes answer every ping with a pong and every findnode with
 * their Neighbors list.
 */
#include <poll.h>

#include "tests/actors/disc_fake.h"

#define NFAKE 8

/* Serves the fakes for up to ms, or until done(info) holds once every fake
 * answered a ping.  Returns whether done held. */
static bool serve_until(dn_node_t *n, df_fake_t *f, unsigned nf,
                        bool (*done)(const p2p_discovery_info_t *, const void *), const void *arg,
                        unsigned ms)
{
    uint64_t deadline = dn_deadline_ms(ms), next_info = 0;
    while (p2p_now_ns() < deadline) {
        struct pollfd pfd[NFAKE];
        for (unsigned i = 0; i < nf; i++) pfd[i] = (struct pollfd){.fd = f[i].fd, .events = POLLIN};
        if (poll(pfd, nf, 20) > 0)
            for (unsigned i = 0; i < nf; i++)
                if (pfd[i].revents & POLLIN) df_serve(&f[i]);
        if (p2p_now_ns() < next_info) continue;
        next_info = p2p_now_ns() + 50 * P2P_NS_PER_MS;
        if (!df_all_answered(f, nf) || !done) continue;
        p2p_discovery_info_t *in = dn_info(n);
        bool ok = in && done(in, arg);
        free(in);
        if (ok) return true;
    }
    return false;
}

static p2p_ip_t ip_of(const char *s)
{
    p2p_ip_t ip = {0};
    CHECK_OK(p2p_ip_parse(&ip, s));
    return ip;
}

static bool has_node(const p2p_discovery_info_t *in, const void *id)
{
    return dn_info_has(in, id);
}

/* 1: an IPv6 socket bound to ::1 never takes IPv4 nodes. */
static void test_v6only_drops_ipv4(void)
{
    static df_fake_t f[1];
    CHECK(df_open(&f[0], ip_of("::1")));
    f[0].report = (p2p_endpoint_t){0};
    uint8_t k4[32], k6[32], p4[64], p6[64], id4[32], id6[32];
    dn_key(k4);
    dn_key(k6);
    CHECK_OK(p2p_secp_pubkey(p4, k4));
    CHECK_OK(p2p_secp_pubkey(p6, k6));
    p2p_node_id(id4, p4);
    p2p_node_id(id6, p6);
    f[0].nnb = 2;
    f[0].nb[0].ep = (p2p_endpoint_t){.ip = p2p_ip4(127, 0, 0, 1), .udp = 40001, .tcp = 40001};
    memcpy(f[0].nb[0].id, p4, 64);
    f[0].nb[1].ep = (p2p_endpoint_t){.ip = ip_of("::1"), .udp = 40002, .tcp = 40002};
    memcpy(f[0].nb[1].id, p6, 64);

    dn_node_t a;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    dn_key(a.priv);
    base.listen_ip = ip_of("::1");
    CHECK_OK(dn_start(&a, &f[0].node, 1, NULL, &base));
    if (!a.d) {
        df_close(f, 1);
        return;
    }
    df_target = (p2p_endpoint_t){.ip = base.listen_ip, .udp = p2p_discovery_port(a.d)};
    /* the IPv6 node of the same Neighbors packet enters the table */
    CHECK(serve_until(&a, f, 1, has_node, id6, 10000));
    serve_until(&a, f, 1, NULL, NULL, 500); /* time to ping what it took */
    p2p_discovery_info_t *in = dn_info(&a);
    CHECK(in != NULL);
    if (in) {
        CHECK(dn_info_has(in, id6));
        CHECK(!dn_info_has(in, id4));
        CHECK(in->core.node_unreachable >= 1);
        CHECK(in->shell.tx_errors == 0);
        if (dn_info_has(in, id4) || in->shell.tx_errors)
            fprintf(stderr, "IPv4 node in table: %d, node_unreachable %llu, tx_errors %llu\n",
                    dn_info_has(in, id4), (unsigned long long)in->core.node_unreachable,
                    (unsigned long long)in->shell.tx_errors);
    }
    free(in);
    p2p_discovery_stop(a.d);
    df_close(f, 1);
}

typedef struct want_eps {
    p2p_endpoint_t e4, e6;
} want_eps_t;

/* Whether the record names e4 (ip/udp) and e6 (ip6/udp6). */
static bool record_has_both(const p2p_discovery_info_t *in, const void *arg)
{
    const want_eps_t *w = arg;
    p2p_ip_t ip4, ip6;
    uint16_t udp = 0, udp6 = 0;
    return p2p_enr_ip4(&in->record, &ip4) == 0 && p2p_ip_equal(&ip4, &w->e4.ip) &&
           p2p_enr_port(&in->record, &udp, "udp") == 0 && udp == w->e4.udp &&
           p2p_enr_ip6(&in->record, &ip6) == 0 && p2p_ip_equal(&ip6, &w->e6.ip) &&
           p2p_enr_port(&in->record, &udp6, "udp6") == 0 && udp6 == w->e6.udp;
}

/* Opens NFAKE fakes (127.0.0.N) reporting r4 and r6 in turn, and starts a
 * on :: (TCP port 30303, predicting its endpoint, NFAKE/2-1 votes needed)
 * with them as bootnodes and base's other settings (announce_ip, ...).
 * Returns false (everything closed) on failure. */
static bool dual_start(dn_node_t *a, df_fake_t f[NFAKE], p2p_endpoint_t r4, p2p_endpoint_t r6,
                       p2p_discovery_config_t *base)
{
    p2p_node_t boots[NFAKE];
    unsigned nf = 0;
    for (unsigned i = 0; i < NFAKE; i++) {
        if (!df_open(&f[i], p2p_ip4(127, 0, (uint8_t)(i + 1), 1))) break;
        f[i].report = i % 2 ? r6 : r4;
        boots[nf++] = f[i].node;
    }
    CHECK(nf == NFAKE);
    if (nf != NFAKE) {
        df_close(f, nf);
        return false;
    }
    dn_key(a->priv);
    base->listen_ip = ip_of("::");
    base->tcp_port = 30303;
    base->predict_endpoint = true;
    base->endpoint_votes = NFAKE / 2 - 1;
    CHECK_OK(dn_start(a, boots, NFAKE, NULL, base));
    if (!a->d) {
        df_close(f, nf);
        return false;
    }
    /* the IPv4 fakes reach the :: socket at 127.0.0.1 */
    df_target = (p2p_endpoint_t){.ip = p2p_ip4(127, 0, 0, 1), .udp = p2p_discovery_port(a->d)};
    return true;
}

/* 2: a dual-stack node predicting its endpoint keeps one per family. */
static void test_dual_stack_votes(void)
{
    static df_fake_t f[NFAKE];
    const unsigned nf = NFAKE;
    want_eps_t w = {.e4 = {.ip = p2p_ip4(93, 184, 216, 34), .udp = 9999},
                    .e6 = {.ip = ip_of("2a01:4f8::34"), .udp = 9998}};
    dn_node_t a;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    if (!dual_start(&a, f, w.e4, w.e6, &base)) return;
    uint64_t seq0 = a.self.seq;
    CHECK(serve_until(&a, f, nf, record_has_both, &w, 20000));
    /* more statements of both kinds (revalidation) move nothing */
    serve_until(&a, f, nf, NULL, NULL, 4000);
    p2p_discovery_info_t *in = dn_info(&a);
    CHECK(in != NULL);
    if (in) {
        CHECK(record_has_both(in, &w));
        CHECK(in->shell.endpoint_changes == 2 && in->record.seq == seq0 + 2);
        uint16_t tcp = 0, tcp6 = 0;
        CHECK(p2p_enr_port(&in->record, &tcp, "tcp") == 0 && tcp == 30303);
        CHECK(p2p_enr_port(&in->record, &tcp6, "tcp6") == 0 && tcp6 == 30303);
        CHECK_OK(p2p_enr_verify(&in->record));
        /* the node's own endpoint (Ping.from) stays IPv4 */
        CHECK(p2p_ip_equal(&in->self.ep.ip, &w.e4.ip) && in->self.ep.udp == w.e4.udp);
        p2p_node_t rn;
        CHECK_OK(p2p_enr_to_node(&rn, &in->record));
        CHECK(p2p_ip_equal(&rn.ep.ip, &w.e4.ip));
        if (in->shell.endpoint_changes != 2 || !record_has_both(in, &w))
            fprintf(stderr, "endpoint changes %llu, seq +%llu\n",
                    (unsigned long long)in->shell.endpoint_changes,
                    (unsigned long long)(in->record.seq - seq0));
    }
    free(in);
    p2p_discovery_stop(a.d);
    df_close(f, nf);
}

/* 3: a dual-stack node with a static IPv4 address (announce_static, as
 * devp2pd's --nat extip) keeps it against the IPv4 statements and still
 * learns its IPv6 endpoint: the record names the static ip and the voted
 * ip6, one re-sign.  Before, a static address turned prediction off, and
 * such a node never advertised its IPv6 address. */
static void test_dual_stack_static(void)
{
    static df_fake_t f[NFAKE];
    const unsigned nf = NFAKE;
    p2p_endpoint_t other4 = {.ip = p2p_ip4(93, 184, 216, 34), .udp = 9999};
    want_eps_t w = {.e4 = {.ip = p2p_ip4(198, 51, 100, 7)},
                    .e6 = {.ip = ip_of("2a01:4f8::34"), .udp = 9998}};
    dn_node_t a;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    base.announce_ip = w.e4.ip;
    base.announce_static = true;
    if (!dual_start(&a, f, other4, w.e6, &base)) return;
    w.e4.udp = df_target.udp;
    uint64_t seq0 = a.self.seq;
    CHECK(serve_until(&a, f, nf, record_has_both, &w, 20000));
    /* more statements of both kinds move nothing */
    serve_until(&a, f, nf, NULL, NULL, 4000);
    p2p_discovery_info_t *in = dn_info(&a);
    CHECK(in != NULL);
    if (in) {
        CHECK(record_has_both(in, &w));
        CHECK(in->shell.endpoint_changes == 1 && in->record.seq == seq0 + 1);
        CHECK(p2p_ip_equal(&in->self.ep.ip, &w.e4.ip) && in->self.ep.udp == w.e4.udp);
        if (in->shell.endpoint_changes != 1 || !record_has_both(in, &w))
            fprintf(stderr, "static: endpoint changes %llu, seq +%llu\n",
                    (unsigned long long)in->shell.endpoint_changes,
                    (unsigned long long)(in->record.seq - seq0));
    }
    free(in);
    p2p_discovery_stop(a.d);
    df_close(f, nf);
}

int main(void)
{
    tu_seed(0x7076);
    test_v6only_drops_ipv4();
    test_dual_stack_votes();
    test_dual_stack_static();
    return tu_done("discovery_ipv6");
}
