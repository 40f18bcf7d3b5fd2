/*
 * tests/actors/test_discovery_amplify.c: discv4 amplification limits of a
 * running discovery instance, measured in bytes on loopback UDP.
 *
 * From an unproven (unbonded) endpoint:
 *   - findnode (several, for several targets) and ENR requests get no
 *     byte back; drop_unbonded_findnode / drop_unbonded_enrrequest count;
 *   - one ping gets exactly one pong plus at most one ping back (the bond
 *     attempt), sent to the UDP source only (never to the ping's claimed
 *     `from` endpoint, a second socket here, which receives nothing);
 *     the pong is at most 32 bytes larger than the ping (its reply token);
 *   - a flood of 50 pings gets 50 pongs and still one ping back (a pending
 *     bond is not repeated): reply bytes / request bytes < 1.4.
 * Once bonded (we answer its ping back) the same findnode gets Neighbors:
 * the limit comes from the missing endpoint proof, not from the request.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/actors/disc_nodes.h"

static int sock, other;
static uint16_t target_port;
static uint8_t key[32], ourpub[64];

static size_t send_pkt(const p2p_discv4_packet_t *p, uint8_t hash[32])
{
    uint8_t buf[P2P_DISCV4_MAX_SIZE];
    size_t n = 0;
    CHECK_OK(p2p_discv4_encode(buf, &n, hash, p, key));
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, target_port);
    CHECK(sendto(sock, buf, n, 0, (struct sockaddr *)&ss, sl) == (ssize_t)n);
    return n;
}

typedef struct rx {
    unsigned n, pongs, pings, others;
    size_t bytes, pong_max;
    uint8_t last_ping_hash[32];
} rx_t;

/* Bounds of one collect(): the most replies any step here may draw is 51
 * (50 pongs and a ping back); a node that floods replies, or keeps
 * answering without ever going quiet, hits one of them and fails. */
#define COLLECT_MAX_PKTS 1000
#define COLLECT_MAX_MS 5000

/* Collects what arrives on s until ms of silence (at most
 * COLLECT_MAX_PKTS packets and COLLECT_MAX_MS in all). */
static void collect(int s, rx_t *r, int ms)
{
    memset(r, 0, sizeof *r);
    uint64_t end = p2p_now_ns() + (uint64_t)COLLECT_MAX_MS * P2P_NS_PER_MS;
    for (;;) {
        uint64_t now = p2p_now_ns();
        if (r->n >= COLLECT_MAX_PKTS || now >= end) {
            fprintf(stderr, "collect: still receiving after %u packets, %zu bytes\n", r->n,
                    r->bytes);
            CHECK(false);
            return;
        }
        uint64_t left = (end - now) / P2P_NS_PER_MS;
        struct pollfd pfd = {.fd = s, .events = POLLIN};
        int wait = left < (uint64_t)ms ? (int)left : ms;
        int pr = poll(&pfd, 1, wait);
        if (pr == 0 && wait < ms) continue; /* cut short by the overall limit */
        if (pr <= 0) return;
        uint8_t buf[2048];
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0) return;
        r->n++;
        r->bytes += (size_t)n;
        p2p_discv4_packet_t q;
        if (p2p_discv4_decode(&q, buf, (size_t)n)) {
            r->others++;
            continue;
        }
        if (q.type == P2P_DISCV4_PONG) {
            r->pongs++;
            if ((size_t)n > r->pong_max) r->pong_max = (size_t)n;
        } else if (q.type == P2P_DISCV4_PING) {
            r->pings++;
            memcpy(r->last_ping_hash, q.hash, 32);
        } else {
            r->others++;
        }
    }
}

static uint64_t ctr(dn_node_t *a, int which)
{
    p2p_discovery_info_t *in = dn_info(a);
    uint64_t v = 0;
    if (in) v = which == 0 ? in->core.drop_unbonded_findnode : in->core.drop_unbonded_enrrequest;
    free(in);
    return v;
}

/* Makes every packet we send distinct (the instance answers copies of a
 * request it answered within 20 s at most twice): a few seconds more of
 * expiration. */
static uint64_t next_uniq(void)
{
    static uint64_t u;
    return ++u % 64;
}

static size_t ping(p2p_endpoint_t from)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.expiration = dn_unix_now() + 20 + next_uniq();
    p.u.ping.version = 4;
    p.u.ping.from = from;
    p.u.ping.to.ip = p2p_ip4(127, 0, 0, 1);
    p.u.ping.to.udp = target_port;
    return send_pkt(&p, NULL);
}

static size_t findnode(uint8_t fill)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_FINDNODE;
    p.expiration = dn_unix_now() + 20 + next_uniq();
    memset(p.u.findnode.target, fill, 64);
    return send_pkt(&p, NULL);
}

int main(void)
{
    /* a table with nodes in it, so a findnode would have a lot to say */
    dn_node_t a, b[4];
    CHECK_OK(dn_start(&a, NULL, 0, NULL, NULL));
    if (!a.d) return tu_done("discovery_amplify");
    for (int i = 0; i < 4; i++) CHECK_OK(dn_start(&b[i], &a.self, 1, NULL, NULL));
    uint64_t end = dn_deadline_ms(15000);
    while (dn_table_len(&a) < 4 && p2p_now_ns() < end) dn_sleep_ms(50);
    CHECK(dn_table_len(&a) >= 4);

    target_port = p2p_discovery_port(a.d);
    dn_key(key);
    CHECK_OK(p2p_secp_pubkey(ourpub, key));
    sock = dn_udp_socket(0);
    other = dn_udp_socket(0);
    rx_t r, ro;

    /* unbonded findnode x5 and ENR request x3: nothing back */
    size_t req = 0;
    for (int i = 0; i < 5; i++) req += findnode((uint8_t)i);
    for (int i = 0; i < 3; i++) {
        p2p_discv4_packet_t p;
        memset(&p, 0, sizeof p);
        p.type = P2P_DISCV4_ENRREQUEST;
        p.expiration = dn_unix_now() + 20 + next_uniq();
        req += send_pkt(&p, NULL);
    }
    collect(sock, &r, 500);
    CHECK(r.n == 0 && r.bytes == 0);
    CHECK(ctr(&a, 0) == 5);
    CHECK(ctr(&a, 1) == 3);
    printf("unbonded: %zu bytes of findnode/ENR requests -> %zu bytes back\n", req, r.bytes);

    /* one ping claiming another endpoint as `from`: replies go to the UDP
     * source only */
    size_t pl = ping(dn_sock_ep(other));
    collect(sock, &r, 500);
    collect(other, &ro, 100);
    CHECK(ro.n == 0);
    CHECK(r.pongs == 1);
    CHECK(r.pings <= 1);
    CHECK(r.others == 0);
    CHECK(r.pong_max <= pl + 32);
    printf("unbonded ping of %zu bytes -> pong %zu bytes, %u ping back, %zu bytes in all\n", pl,
           r.pong_max, r.pings, r.bytes);

    /* a flood of 50 pings: 50 pongs, at most one more ping back */
    size_t fb = 0;
    for (int i = 0; i < 50; i++) fb += ping(dn_sock_ep(sock));
    collect(sock, &r, 500);
    CHECK(r.pongs == 50);
    CHECK(r.pings <= 1);
    CHECK(r.others == 0);
    double ratio = (double)r.bytes / (double)fb;
    CHECK(ratio < 1.4);
    printf("50 unbonded pings, %zu bytes -> %u packets, %zu bytes (ratio %.2f)\n", fb, r.n, r.bytes,
           ratio);

    /* findnode still dropped: no pong from us yet */
    findnode(0x42);
    collect(sock, &r, 300);
    CHECK(r.n == 0);
    CHECK(ctr(&a, 0) == 6);

    /* bond: ping again, answer the ping back, then findnode is answered */
    ping(dn_sock_ep(sock));
    bool bonded = false;
    for (int i = 0; i < 3 && !bonded; i++) {
        collect(sock, &r, 100); /* answer within the 500 ms reply timeout */
        if (r.pings) {
            p2p_discv4_packet_t p;
            memset(&p, 0, sizeof p);
            p.type = P2P_DISCV4_PONG;
            p.expiration = dn_unix_now() + 20;
            p.u.pong.to.ip = p2p_ip4(127, 0, 0, 1);
            p.u.pong.to.udp = target_port;
            memcpy(p.u.pong.reply_tok, r.last_ping_hash, 32);
            send_pkt(&p, NULL);
            bonded = true;
        } else {
            ping(dn_sock_ep(sock)); /* the ping back was sent earlier: ask for another */
        }
    }
    CHECK(bonded);
    dn_sleep_ms(100);
    size_t fl = findnode(0x42);
    uint8_t buf[2048];
    unsigned nb = 0;
    for (int i = 0; i < 6; i++) {
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        if (poll(&pfd, 1, 1000) <= 0) break;
        ssize_t n = recv(sock, buf, sizeof buf, 0);
        p2p_discv4_packet_t q;
        if (n > 0 && p2p_discv4_decode(&q, buf, (size_t)n) == 0 && q.type == P2P_DISCV4_NEIGHBORS) {
            nb++;
            CHECK(q.u.neighbors.n >= 4);
            printf("bonded findnode of %zu bytes -> Neighbors of %zd bytes (%u nodes)\n", fl, n,
                   q.u.neighbors.n);
            break;
        }
    }
    CHECK(nb == 1);
    CHECK(ctr(&a, 0) == 6);
    close(sock);
    close(other);
    for (int i = 0; i < 4; i++) p2p_discovery_stop(b[i].d);
    p2p_discovery_stop(a.d);
    return tu_done("discovery_amplify");
}
