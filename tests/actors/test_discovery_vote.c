/*
 * tests/actors/test_discovery_vote.c: endpoint prediction (predict_endpoint)
 * of a running discovery instance against fake nodes on loopback sockets.
 *
 *   1. Ten fresh identities on 127.0.0.1 ping the instance and answer its
 *      ping-backs with pongs that report 93.184.216.34:9999: pongs to
 *      ping-backs are no endpoint statements, the record keeps its IP.
 *   2. Ten bootnodes on one /24 (127.0.0.1) answer the instance's own
 *      bonding and revalidation pings with that address: one network is one
 *      vote, the record keeps its IP.
 *   3. Ten bootnodes on ten /24s (127.0.1.1 .. 127.0.10.1) report
 *      127.0.0.1: a majority of networks moves the record (re-signed with a
 *      higher seq), applied to the core after the pong's handling (no call
 *      back into the core from its event callback): pongs carry the new seq.
 * The fake nodes answer every ping with a pong and every findnode with an
 * empty Neighbors.
 */
#include <poll.h>

#include "tests/actors/disc_fake.h"

#define NFAKE 10

static void fake_ping(df_fake_t *f)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.expiration = df_unix_now() + 20;
    p.u.ping.version = 4;
    p.u.ping.from = f->node.ep;
    p.u.ping.to.ip = p2p_ip4(127, 0, 0, 1);
    p.u.ping.to.udp = df_target.udp;
    df_send(f, &p);
}

static uint64_t get_pongs(const p2p_discovery_info_t *in)
{
    return in->core.rx_pong;
}

/* Pings the instance from f and returns the ENR seq its pong carries (0:
 * no pong within 2 s). */
static uint64_t pong_seq(df_fake_t *f)
{
    fake_ping(f);
    uint64_t deadline = dn_deadline_ms(2000);
    while (p2p_now_ns() < deadline) {
        struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0) continue;
        uint8_t buf[2048];
        ssize_t n = recv(f->fd, buf, sizeof buf, 0);
        static p2p_discv4_packet_t in;
        if (n > 0 && p2p_discv4_decode(&in, buf, (size_t)n) == 0 && in.type == P2P_DISCV4_PONG)
            return in.u.pong.has_enr_seq ? in.u.pong.enr_seq : 0;
    }
    return 0;
}

static uint64_t get_changes(const p2p_discovery_info_t *in)
{
    return in->shell.endpoint_changes;
}

/* Serves the fakes until get(info of n) >= want and every fake answered a
 * ping, or ms pass.  Returns the last value read. */
static uint64_t serve_until(dn_node_t *n, df_fake_t *f, unsigned nf, const p2p_endpoint_t *report,
                            uint64_t (*get)(const p2p_discovery_info_t *), uint64_t want,
                            unsigned ms)
{
    uint64_t deadline = dn_deadline_ms(ms), v = 0, next_info = 0;
    for (unsigned i = 0; i < nf; i++) f[i].report = *report;
    while (p2p_now_ns() < deadline) {
        struct pollfd pfd[NFAKE];
        for (unsigned i = 0; i < nf; i++) pfd[i] = (struct pollfd){.fd = f[i].fd, .events = POLLIN};
        if (poll(pfd, nf, 20) > 0)
            for (unsigned i = 0; i < nf; i++)
                if (pfd[i].revents & POLLIN) df_serve(&f[i]);
        if (p2p_now_ns() < next_info) continue;
        next_info = p2p_now_ns() + 50 * P2P_NS_PER_MS;
        p2p_discovery_info_t *in = dn_info(n);
        v = in ? get(in) : 0;
        free(in);
        if (v >= want && df_all_answered(f, nf)) break;
    }
    return v;
}

static void check_ip(dn_node_t *n, p2p_ip_t want, uint64_t seq)
{
    p2p_discovery_info_t *in = dn_info(n);
    CHECK(in != NULL);
    if (!in) return;
    CHECK(p2p_ip_equal(&in->self.ep.ip, &want));
    CHECK(in->record.seq == seq);
    p2p_node_t rn;
    CHECK_OK(p2p_enr_to_node(&rn, &in->record));
    CHECK(p2p_ip_equal(&rn.ep.ip, &want));
    free(in);
}

/* 1: pongs to ping-backs of unsolicited pingers do not vote. */
static void test_pingback_pongs(void)
{
    dn_node_t a;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    dn_key(a.priv);
    base.predict_endpoint = true; /* default votes */
    CHECK_OK(dn_start(&a, NULL, 0, NULL, &base));
    if (!a.d) return;
    df_target = (p2p_endpoint_t){.ip = p2p_ip4(127, 0, 0, 1), .udp = p2p_discovery_port(a.d)};
    uint64_t seq0 = a.self.seq;
    static df_fake_t f[NFAKE];
    for (unsigned i = 0; i < NFAKE; i++) CHECK(df_open(&f[i], p2p_ip4(127, 0, 0, 1)));
    for (unsigned i = 0; i < NFAKE; i++) fake_ping(&f[i]);
    p2p_endpoint_t victim = {.ip = p2p_ip4(93, 184, 216, 34), .udp = 9999, .tcp = 9999};
    /* every ping-back answered */
    CHECK(serve_until(&a, f, NFAKE, &victim, get_pongs, NFAKE, 10000) >= NFAKE);
    CHECK(df_all_answered(f, NFAKE));
    /* a little longer: nothing else moves it */
    serve_until(&a, f, NFAKE, &victim, get_changes, 1, 500);
    p2p_discovery_info_t *in = dn_info(&a);
    /* (they entered the table: their revalidation pongs vote, one network) */
    CHECK(in && in->shell.endpoint_changes == 0);
    free(in);
    check_ip(&a, p2p_ip4(127, 0, 0, 1), seq0);
    df_close(f, NFAKE);
    p2p_discovery_stop(a.d);
}

/* 2 and 3: bootnodes answering our own pings, on one /24 or on ten. */
static void test_bootnode_pongs(bool distinct)
{
    static df_fake_t f[NFAKE];
    p2p_node_t boots[NFAKE];
    unsigned nf = 0;
    for (unsigned i = 0; i < NFAKE; i++) {
        p2p_ip_t ip = distinct ? p2p_ip4(127, 0, (uint8_t)(i + 1), 1) : p2p_ip4(127, 0, 0, 1);
        if (!df_open(&f[i], ip)) break;
        boots[nf++] = f[i].node;
    }
    CHECK(nf == NFAKE);
    if (nf != NFAKE) {
        df_close(f, nf);
        return;
    }
    dn_node_t a;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    dn_key(a.priv);
    base.announce_ip = p2p_ip4(127, 0, 0, 9);
    base.predict_endpoint = true; /* default votes */
    CHECK_OK(dn_start(&a, boots, NFAKE, NULL, &base));
    if (!a.d) {
        df_close(f, nf);
        return;
    }
    df_target = (p2p_endpoint_t){.ip = p2p_ip4(127, 0, 0, 1), .udp = p2p_discovery_port(a.d)};
    uint64_t seq0 = a.self.seq;
    p2p_endpoint_t report = {.ip = p2p_ip4(127, 0, 0, 1), .udp = df_target.udp, .tcp = 0};
    if (distinct) {
        CHECK(serve_until(&a, f, NFAKE, &report, get_changes, 1, 20000) == 1);
        check_ip(&a, report.ip, seq0 + 1);
        /* The core got the new record, applied after the packet's handling
         * (not from inside its event callback): pongs carry the new seq. */
        p2p_discovery_info_t *in = dn_info(&a);
        CHECK(in && in->core.reentrant_calls == 0);
        free(in);
        CHECK(pong_seq(&f[0]) == seq0 + 1);
    } else {
        /* every bootnode answered a bonding or revalidation ping */
        CHECK(serve_until(&a, f, NFAKE, &report, get_pongs, NFAKE, 20000) >= NFAKE);
        CHECK(df_all_answered(f, NFAKE));
        serve_until(&a, f, NFAKE, &report, get_changes, 1, 500);
        p2p_discovery_info_t *in = dn_info(&a);
        CHECK(in && in->shell.endpoint_votes >= NFAKE && in->shell.endpoint_changes == 0);
        free(in);
        check_ip(&a, base.announce_ip, seq0);
    }
    df_close(f, nf);
    p2p_discovery_stop(a.d);
}

int main(void)
{
    tu_seed(0x7073);
    test_pingback_pongs();
    test_bootnode_pongs(false);
    test_bootnode_pongs(true);
    return tu_done("discovery_vote");
}
