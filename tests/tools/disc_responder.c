/*
 * tests/tools/disc_responder.c: a strict discovery v4 responder for the
 * devp2p tool tests (requestenr, resolve), built on wire/discv4.h.
 *
 *   disc_responder SECONDS [IP[+OTHER-IP] [REPORT-IP REPORT-PORT]]
 *
 * Binds IP:0 (default 127.0.0.1) with a random key and a signed ENR (seq 7,
 * that ip, udp = its port; with +OTHER-IP, an address of the other family
 * that nothing serves, the record names both, ip/udp and ip6/udp6 with one
 * port: a dual-stack record of which only IP answers), then answers like
 * geth: a Ping gets a Pong
 * (naming the endpoint it saw the Ping come from, or REPORT-IP:REPORT-PORT
 * when given: a node telling us another address for ourselves) and, from
 * a node not yet bonded, a Ping back; a Pong to that Ping bonds
 * the node.  ENRRequest and Findnode are answered only for bonded nodes
 * (endpoint proof): ENRResponse with the record, Neighbors with three
 * fixed fake nodes.  Prints "enode URL", "enr TEXT", "target URL" (the
 * first fake node) and "ready", then serves until SECONDS pass (at most
 * 60) or SIGTERM.  Counts what it refused on stdout at exit, and the Pongs
 * that answered its Pings.  With DISC_RESPONDER_STALE=1 in the environment
 * every packet it sends is already expired (expiration one second in the
 * past): a node that checks expirations ignores them all.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "wire/discv4.h"
#include "wire/enode.h"
#include "wire/enr.h"

static volatile sig_atomic_t stop;
static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

static int fd;
static uint8_t priv[32];
static int stale; /* DISC_RESPONDER_STALE: send expired packets */
static struct {
    uint8_t id[32];
    uint8_t ping_hash[32];
    int bonded;
} peers[64];
static unsigned npeers;

static void send_pkt(p2p_discv4_packet_t *p, const struct sockaddr_storage *to, socklen_t tl,
                     uint8_t hash[32])
{
    uint8_t buf[P2P_DISCV4_MAX_SIZE];
    size_t len;
    p->expiration = stale ? p2p_wall_ms() / 1000 - 1 : p2p_wall_ms() / 1000 + 20;
    if (p2p_discv4_encode(buf, &len, hash, p, priv) == 0)
        (void)sendto(fd, buf, len, 0, (const struct sockaddr *)to, tl);
}

static int peer_index(const uint8_t id[32])
{
    for (unsigned i = 0; i < npeers; i++)
        if (memcmp(peers[i].id, id, 32) == 0) return (int)i;
    if (npeers == 64) return -1;
    memcpy(peers[npeers].id, id, 32);
    peers[npeers].bonded = 0;
    return (int)npeers++;
}

int main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 30;
    if (secs < 1 || secs > 60) secs = 60;
    const char *st = getenv("DISC_RESPONDER_STALE");
    stale = st && strcmp(st, "1") == 0;
    if (p2p_secp_keygen(priv)) return 1;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1), other = {0};
    char iparg[128] = "";
    if (argc > 2) snprintf(iparg, sizeof iparg, "%s", argv[2]);
    char *plus = strchr(iparg, '+');
    if (plus) *plus++ = 0;
    if (argc > 2 && p2p_ip_parse(&lo, iparg) != 0) return 2;
    if (plus && (p2p_ip_parse(&other, plus) != 0 || other.family == lo.family)) return 2;
    p2p_endpoint_t report = {0};
    if (argc > 4 &&
        (p2p_ip_parse(&report.ip, argv[3]) != 0 || atoi(argv[4]) < 1 || atoi(argv[4]) > 65535))
        return 2;
    if (argc > 4) report.udp = (uint16_t)atoi(argv[4]);
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, 0);
    fd = sl ? socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0) : -1;
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0) return 1;
    sl = sizeof ss;
    uint16_t port;
    p2p_ip_t ip;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
        p2p_ip_from_sockaddr(&ip, &port, (struct sockaddr *)&ss))
        return 1;

    p2p_node_t self = {.ep = {.ip = lo, .udp = port, .tcp = port}};
    if (p2p_secp_pubkey(self.pubkey, priv)) return 1;
    p2p_node_id(self.id, self.pubkey);
    static p2p_enr_t rec;
    p2p_enr_init(&rec);
    p2p_enr_set_seq(&rec, 7);
    if (p2p_enr_set_ip(&rec, &lo) || p2p_enr_set_port(&rec, "udp", port) ||
        (other.family && (p2p_enr_set_ip(&rec, &other) || p2p_enr_set_port(&rec, "udp6", port))) ||
        p2p_enr_sign(&rec, priv))
        return 1;
    char url[P2P_ENODE_MAX_TEXT], text[P2P_ENR_MAX_TEXT];
    if (p2p_enode_format(url, sizeof url, &self) || p2p_enr_to_text(text, sizeof text, &rec))
        return 1;

    p2p_discv4_rpcnode_t fake[3];
    for (int i = 0; i < 3; i++) {
        uint8_t k[32];
        if (p2p_secp_keygen(k) || p2p_secp_pubkey(fake[i].id, k)) return 1;
        fake[i].ep.ip = p2p_ip4(127, 0, 0, 1);
        fake[i].ep.udp = (uint16_t)(40001 + i);
        fake[i].ep.tcp = (uint16_t)(40001 + i);
    }
    p2p_node_t target = {.ep = fake[0].ep};
    memcpy(target.pubkey, fake[0].id, 64);
    p2p_node_id(target.id, target.pubkey);
    char turl[P2P_ENODE_MAX_TEXT];
    if (p2p_enode_format(turl, sizeof turl, &target)) return 1;
    printf("enode %s\nenr %s\ntarget %s\nready\n", url, text, turl);
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    unsigned refused = 0, served = 0, pongs = 0;
    uint64_t end = p2p_now_ns() + (uint64_t)secs * P2P_NS_PER_S;
    static p2p_discv4_packet_t in, out;
    while (!stop && p2p_now_ns() < end) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0) continue;
        uint8_t buf[P2P_DISCV4_MAX_SIZE];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n <= 0 || p2p_discv4_decode(&in, buf, (size_t)n) != 0) continue;
        if (p2p_discv4_expired(&in, p2p_wall_ms() / 1000)) continue;
        p2p_ip_t fip;
        uint16_t fport;
        if (p2p_ip_from_sockaddr(&fip, &fport, (struct sockaddr *)&from)) continue;
        int pi = peer_index(in.sender_id);
        if (pi < 0) continue;
        memset(&out, 0, sizeof out);
        switch (in.type) {
        case P2P_DISCV4_PING:
            out.type = P2P_DISCV4_PONG;
            out.u.pong.to = (p2p_endpoint_t){.ip = fip, .udp = fport, .tcp = in.u.ping.from.tcp};
            if (report.udp) out.u.pong.to = report;
            memcpy(out.u.pong.reply_tok, in.hash, 32);
            out.u.pong.has_enr_seq = true;
            out.u.pong.enr_seq = rec.seq;
            send_pkt(&out, &from, fl, NULL);
            if (!peers[pi].bonded) {
                memset(&out, 0, sizeof out);
                out.type = P2P_DISCV4_PING;
                out.u.ping.from = self.ep;
                out.u.ping.to = (p2p_endpoint_t){.ip = fip, .udp = fport};
                send_pkt(&out, &from, fl, peers[pi].ping_hash);
            }
            break;
        case P2P_DISCV4_PONG:
            if (memcmp(in.u.pong.reply_tok, peers[pi].ping_hash, 32) == 0) {
                peers[pi].bonded = 1;
                pongs++;
            }
            break;
        case P2P_DISCV4_ENRREQUEST:
            if (!peers[pi].bonded) {
                refused++;
                break;
            }
            out.type = P2P_DISCV4_ENRRESPONSE;
            memcpy(out.u.enrresponse.reply_tok, in.hash, 32);
            out.u.enrresponse.record = rec;
            send_pkt(&out, &from, fl, NULL);
            served++;
            break;
        case P2P_DISCV4_FINDNODE:
            if (!peers[pi].bonded) {
                refused++;
                break;
            }
            out.type = P2P_DISCV4_NEIGHBORS;
            out.u.neighbors.n = 3;
            memcpy(out.u.neighbors.nodes, fake, sizeof fake);
            send_pkt(&out, &from, fl, NULL);
            served++;
            break;
        default:
            break;
        }
    }
    printf("served %u refused %u pongs %u\n", served, refused, pongs);
    close(fd);
    return 0;
}
