/*
 * tests/tools/disc_net.c: a loopback discovery v4 network in one process,
 * for the devp2p tool's crawl and resolve tests, built on wire/discv4.h.
 *
 *   disc_net SECONDS N [URL...]
 *
 * Runs N nodes (at most 256), each with a random key and its own UDP
 * socket on 127.0.0.1:0.  Each node's table holds TABLE_SIZE of the others,
 * picked at random, and every URL given (nodes outside, e.g. devp2pd, or
 * stale endpoints of them); a Findnode is answered with the 16 of its
 * table closest to the target (Neighbors packets of at most 12 entries, as
 * geth sends them), so the network is one a crawl reaches all of but a
 * lookup only a corner of.  A Ping gets a Pong and a Ping back; an
 * ENRRequest gets the node's record (seq 1, ip, udp).  No endpoint proof is
 * asked for.  Prints "enode URL" of node 0 and "ready", then serves until
 * SECONDS pass (at most 120) or SIGTERM, and prints "queried K of N" (the
 * nodes that got a Findnode) and "findnodes F" at exit.
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

#define MAX_NODES 256
#define MAX_EXTRA 8
#define TABLE_SIZE 24
#define ANSWER 16     /* nodes per Findnode answer (bucket size) */
#define PER_PACKET 12 /* Neighbors entries per packet */

static volatile sig_atomic_t stop;
static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

struct fnode {
    int fd;
    uint8_t priv[32];
    p2p_node_t self;
    p2p_enr_t rec;
    unsigned table[TABLE_SIZE]; /* indexes into all[] */
    unsigned ntable;
    unsigned findnodes;
};

static struct fnode nodes[MAX_NODES];
static p2p_node_t all[MAX_NODES + MAX_EXTRA]; /* nodes, then the URLs given */
static unsigned nall;

static void send_pkt(struct fnode *f, p2p_discv4_packet_t *p, const struct sockaddr_storage *to,
                     socklen_t tl, uint8_t hash[32])
{
    uint8_t buf[P2P_DISCV4_MAX_SIZE];
    size_t len;
    p->expiration = p2p_wall_ms() / 1000 + 20;
    if (p2p_discv4_encode(buf, &len, hash, p, f->priv) == 0)
        (void)sendto(f->fd, buf, len, 0, (const struct sockaddr *)to, tl);
}

static int closer(const uint8_t a[32], const uint8_t b[32], const uint8_t t[32])
{
    for (int i = 0; i < 32; i++) {
        uint8_t da = a[i] ^ t[i], db = b[i] ^ t[i];
        if (da != db) return da < db;
    }
    return 0;
}

/* The up to ANSWER entries of f's table and the extra nodes closest to t. */
static unsigned answer(const struct fnode *f, unsigned out[ANSWER], const uint8_t t[32])
{
    unsigned cand[TABLE_SIZE + MAX_EXTRA], n = 0;
    for (unsigned i = 0; i < f->ntable; i++) cand[n++] = f->table[i];
    for (unsigned i = MAX_NODES; i < nall; i++) cand[n++] = i;
    /* selection sort of the first ANSWER */
    unsigned k = n < ANSWER ? n : ANSWER;
    for (unsigned i = 0; i < k; i++) {
        unsigned best = i;
        for (unsigned j = i + 1; j < n; j++)
            if (closer(all[cand[j]].id, all[cand[best]].id, t)) best = j;
        unsigned tmp = cand[i];
        cand[i] = cand[best];
        cand[best] = tmp;
        out[i] = cand[i];
    }
    return k;
}

static void serve(struct fnode *f)
{
    static p2p_discv4_packet_t in, out;
    uint8_t buf[P2P_DISCV4_MAX_SIZE];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(f->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0 || p2p_discv4_decode(&in, buf, (size_t)n) != 0) return;
    if (p2p_discv4_expired(&in, p2p_wall_ms() / 1000)) return;
    p2p_ip_t fip;
    uint16_t fport;
    if (p2p_ip_from_sockaddr(&fip, &fport, (struct sockaddr *)&from)) return;
    memset(&out, 0, sizeof out);
    switch (in.type) {
    case P2P_DISCV4_PING:
        out.type = P2P_DISCV4_PONG;
        out.u.pong.to = (p2p_endpoint_t){.ip = fip, .udp = fport, .tcp = in.u.ping.from.tcp};
        memcpy(out.u.pong.reply_tok, in.hash, 32);
        out.u.pong.has_enr_seq = true;
        out.u.pong.enr_seq = f->rec.seq;
        send_pkt(f, &out, &from, fl, NULL);
        memset(&out, 0, sizeof out);
        out.type = P2P_DISCV4_PING;
        out.u.ping.from = f->self.ep;
        out.u.ping.to = (p2p_endpoint_t){.ip = fip, .udp = fport};
        send_pkt(f, &out, &from, fl, NULL);
        break;
    case P2P_DISCV4_ENRREQUEST:
        out.type = P2P_DISCV4_ENRRESPONSE;
        memcpy(out.u.enrresponse.reply_tok, in.hash, 32);
        out.u.enrresponse.record = f->rec;
        send_pkt(f, &out, &from, fl, NULL);
        break;
    case P2P_DISCV4_FINDNODE: {
        f->findnodes++;
        uint8_t t[32];
        p2p_node_id(t, in.u.findnode.target);
        unsigned idx[ANSWER], k = answer(f, idx, t);
        for (unsigned i = 0; i < k || i == 0; i += PER_PACKET) {
            memset(&out, 0, sizeof out);
            out.type = P2P_DISCV4_NEIGHBORS;
            for (unsigned j = i; j < k && j < i + PER_PACKET; j++) {
                p2p_discv4_rpcnode_t *r = &out.u.neighbors.nodes[out.u.neighbors.n++];
                memcpy(r->id, all[idx[j]].pubkey, 64);
                r->ep = all[idx[j]].ep;
            }
            send_pkt(f, &out, &from, fl, NULL);
        }
        break;
    }
    default:
        break;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    int secs = atoi(argv[1]), n = atoi(argv[2]);
    if (secs < 1 || secs > 120) secs = 120;
    if (n < 1 || n > MAX_NODES || argc - 3 > MAX_EXTRA) return 2;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    for (int i = 0; i < n; i++) {
        struct fnode *f = &nodes[i];
        struct sockaddr_storage ss;
        socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, 0);
        f->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&ss, sl) != 0) return 1;
        sl = sizeof ss;
        uint16_t port;
        p2p_ip_t ip;
        if (getsockname(f->fd, (struct sockaddr *)&ss, &sl) ||
            p2p_ip_from_sockaddr(&ip, &port, (struct sockaddr *)&ss))
            return 1;
        if (p2p_secp_keygen(f->priv) || p2p_secp_pubkey(f->self.pubkey, f->priv)) return 1;
        f->self.ep = (p2p_endpoint_t){.ip = lo, .udp = port, .tcp = port};
        p2p_node_id(f->self.id, f->self.pubkey);
        p2p_enr_init(&f->rec);
        p2p_enr_set_seq(&f->rec, 1);
        if (p2p_enr_set_ip(&f->rec, &lo) || p2p_enr_set_port(&f->rec, "udp", port) ||
            p2p_enr_sign(&f->rec, f->priv))
            return 1;
        all[i] = f->self;
    }
    nall = MAX_NODES;
    for (int i = 3; i < argc; i++)
        if (p2p_node_parse(&all[nall++], argv[i]) != 0) return 2;
    srand(1);
    for (int i = 0; i < n; i++) {
        struct fnode *f = &nodes[i];
        unsigned want = (unsigned)n - 1 < TABLE_SIZE ? (unsigned)n - 1 : TABLE_SIZE;
        while (f->ntable < want) {
            unsigned j = (unsigned)rand() % (unsigned)n, dup = j == (unsigned)i;
            for (unsigned k = 0; k < f->ntable; k++) dup |= f->table[k] == j;
            if (!dup) f->table[f->ntable++] = j;
        }
    }
    char url[P2P_ENODE_MAX_TEXT];
    if (p2p_enode_format(url, sizeof url, &nodes[0].self)) return 1;
    printf("enode %s\nready\n", url);
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    static struct pollfd pf[MAX_NODES];
    for (int i = 0; i < n; i++) pf[i] = (struct pollfd){.fd = nodes[i].fd, .events = POLLIN};
    uint64_t end = p2p_now_ns() + (uint64_t)secs * P2P_NS_PER_S;
    while (!stop && p2p_now_ns() < end) {
        if (poll(pf, (nfds_t)n, 100) <= 0) continue;
        for (int i = 0; i < n; i++)
            if (pf[i].revents & POLLIN) serve(&nodes[i]);
    }
    unsigned queried = 0, findnodes = 0;
    for (int i = 0; i < n; i++) {
        queried += nodes[i].findnodes > 0;
        findnodes += nodes[i].findnodes;
        close(nodes[i].fd);
    }
    printf("queried %u of %d\nfindnodes %u\n", queried, n, findnodes);
    return 0;
}
