/*
 * tests/actors/test_discovery_flood.c: a bounded flood of valid pings from
 * many keys, sent over loopback to a running discovery instance, measured
 * from outside.  Every datagram sent must be accounted for: received and
 * counted by the reader (rx_datagrams) or counted as dropped by the kernel
 * before the reader saw it (rx_kernel_drops; datagrams the loopback device's
 * backlog dropped before any socket, /proc/net/softnet_stat, are
 * tolerated); every verified ping is
 * queued to p2p-disc or counted rx_queue_full; every queued ping gets a
 * pong; and after the flood a legitimate peer still gets its pong.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/actors/disc_nodes.h"

#define FLOOD_PKTS 20000u
#define NKEYS 512u /* keys cycled through (distinct pings: distinct expirations) */
#define SETTLE_MS 10000
#define PING_MAX 160 /* an IPv4 ping with an ENR seq is under 140 bytes */

static int sock;
static uint16_t target_port;

/* A loopback UDP socket with room for a flood's backlog. */
static int udp_socket(void)
{
    int s = dn_udp_socket(SOCK_NONBLOCK);
    int buf = 8 << 20;
    (void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    return s;
}

static size_t make_ping(uint8_t out[P2P_DISCV4_MAX_SIZE], uint8_t hash[32], const uint8_t *priv,
                        p2p_endpoint_t from, uint64_t exp)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.expiration = exp;
    p.u.ping.version = 4;
    p.u.ping.from = from;
    p.u.ping.to.ip = p2p_ip4(127, 0, 0, 1);
    p.u.ping.to.udp = target_port;
    size_t n = 0;
    CHECK_OK(p2p_discv4_encode(out, &n, hash, &p, priv));
    return n;
}

/* Sends one datagram, retrying (bounded) while the send buffer is full. */
static bool send_to_target(int s, const uint8_t *p, size_t n)
{
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, target_port);
    for (int i = 0; i < 1000; i++) {
        if (sendto(s, p, n, 0, (struct sockaddr *)&ss, sl) == (ssize_t)n) return true;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) return false;
        dn_sleep_ms(1);
    }
    return false;
}

/* Datagrams the network stack dropped before any socket (per-CPU backlog
 * full): the sum of /proc/net/softnet_stat's second column, or 0. */
static uint64_t backlog_drops(void)
{
    FILE *f = fopen("/proc/net/softnet_stat", "r");
    if (!f) return 0;
    uint64_t sum = 0;
    char line[512];
    for (unsigned i = 0; i < 4096 && fgets(line, sizeof line, f); i++) {
        unsigned long processed, dropped;
        if (sscanf(line, "%lx %lx", &processed, &dropped) == 2) sum += dropped;
    }
    fclose(f);
    return sum;
}

/* Drains what is queued on s without waiting; returns the datagrams read. */
static unsigned drain(int s)
{
    unsigned n = 0;
    uint8_t buf[2048];
    for (unsigned i = 0; i < 100000; i++) {
        if (recv(s, buf, sizeof buf, MSG_DONTWAIT) < 0) break;
        n++;
    }
    return n;
}

int main(void)
{
    dn_node_t a;
    CHECK_OK(dn_start(&a, NULL, 0, NULL, NULL));
    if (!a.d) return tu_done("discovery_flood");
    target_port = p2p_discovery_port(a.d);
    sock = udp_socket();
    p2p_endpoint_t me = dn_sock_ep(sock);

    static uint8_t keys[NKEYS][32];
    for (unsigned i = 0; i < NKEYS; i++) dn_key(keys[i]);

    /* Pre-sign the flood so it goes out as fast as the socket takes it. */
    static uint8_t pkts[FLOOD_PKTS][PING_MAX];
    static size_t lens[FLOOD_PKTS];
    uint64_t exp0 = dn_unix_now() + 60;
    size_t sent_bytes = 0;
    for (unsigned i = 0; i < FLOOD_PKTS; i++) {
        uint8_t h[32], tmp[P2P_DISCV4_MAX_SIZE];
        lens[i] = make_ping(tmp, h, keys[i % NKEYS], me, exp0 + i / NKEYS);
        CHECK(lens[i] <= PING_MAX);
        memcpy(pkts[i], tmp, lens[i] <= PING_MAX ? lens[i] : PING_MAX);
    }
    unsigned sent = 0, got = 0;
    uint64_t dev0 = backlog_drops();
    for (unsigned i = 0; i < FLOOD_PKTS; i++) {
        if (!send_to_target(sock, pkts[i], lens[i])) break;
        sent++;
        sent_bytes += lens[i];
        if (i % 64 == 0) got += drain(sock);
    }
    CHECK(sent == FLOOD_PKTS);
    uint64_t lost_dev = backlog_drops() - dev0; /* never reached the socket */

    /* Wait until the reader has accounted for every datagram (received or
     * counted as dropped) and p2p-disc has handled everything queued. */
    p2p_discovery_info_t *in = NULL;
    uint64_t deadline = dn_deadline_ms(SETTLE_MS), last = UINT64_MAX;
    unsigned stable = 0;
    while (p2p_now_ns() < deadline) {
        got += drain(sock);
        free(in);
        in = dn_info(&a);
        if (!in) break;
        uint64_t v = in->shell.rx_datagrams + in->core.rx_ping;
        if (in->shell.rx_datagrams + in->shell.rx_kernel_drops + lost_dev >= sent &&
            in->core.rx_ping >= in->shell.rx_verified)
            break;
        stable = v == last ? stable + 1 : 0;
        if (stable >= 10) break; /* nothing moves any more */
        last = v;
        dn_sleep_ms(100);
    }
    CHECK(in != NULL);
    if (in) {
        fprintf(stderr,
                "flood: sent %u (%zu B); rx_datagrams %llu rx_kernel_drops %llu rx_verified %llu "
                "rx_queue_full %llu rx_duplicate %llu rx_ping %llu; tx %llu (%llu B); got %u; "
                "device backlog drops %llu\n",
                sent, sent_bytes, (unsigned long long)in->shell.rx_datagrams,
                (unsigned long long)in->shell.rx_kernel_drops,
                (unsigned long long)in->shell.rx_verified,
                (unsigned long long)in->shell.rx_queue_full,
                (unsigned long long)in->shell.rx_duplicate, (unsigned long long)in->core.rx_ping,
                (unsigned long long)in->shell.tx_packets, (unsigned long long)in->shell.tx_bytes,
                got, (unsigned long long)lost_dev);
        /* nothing lost silently: each datagram that reached the socket was
         * read or counted dropped */
        CHECK(in->shell.rx_datagrams + in->shell.rx_kernel_drops <= sent);
        CHECK(in->shell.rx_datagrams + in->shell.rx_kernel_drops + lost_dev >= sent);
        /* each datagram read was valid: verified and queued, or counted full */
        CHECK(in->shell.rx_verified + in->shell.rx_queue_full == in->shell.rx_datagrams);
        CHECK(in->core.rx_ping == in->shell.rx_verified);
        /* amplification: a pong plus at most one ping back per ping */
        CHECK(in->shell.tx_bytes <= 2 * (uint64_t)sent_bytes + 64 * (uint64_t)sent);
    }
    free(in);

    /* A legitimate peer still gets its pong. */
    int s2 = udp_socket();
    uint8_t legit[32], pkt[P2P_DISCV4_MAX_SIZE], hash[32];
    dn_key(legit);
    size_t n = make_ping(pkt, hash, legit, dn_sock_ep(s2), dn_unix_now() + 20);
    CHECK(send_to_target(s2, pkt, n));
    bool pong = false;
    uint64_t end = dn_deadline_ms(5000);
    for (int i = 0; i < 8 && !pong && p2p_now_ns() < end; i++) {
        struct pollfd pfd = {.fd = s2, .events = POLLIN};
        if (poll(&pfd, 1, 2000) <= 0) break;
        uint8_t buf[2048];
        ssize_t r = recv(s2, buf, sizeof buf, 0);
        if (r <= 0) break;
        p2p_discv4_packet_t q;
        if (p2p_discv4_decode(&q, buf, (size_t)r) != 0) continue;
        pong = q.type == P2P_DISCV4_PONG && memcmp(q.u.pong.reply_tok, hash, 32) == 0;
    }
    CHECK(pong);
    close(s2);
    close(sock);
    p2p_discovery_stop(a.d);
    return tu_done("discovery_flood");
}
