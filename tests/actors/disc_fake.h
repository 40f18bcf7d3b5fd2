/*
 * tests/actors/disc_fake.h: fake discv4 nodes on loopback UDP sockets for
 * the discovery service tests: each has its own key and socket, answers a
 * ping with a pong naming the endpoint it is told to report, and a findnode
 * with its Neighbors list (empty unless set).  The test sets df_target, the
 * instance's endpoint as the fakes reach it.  Header-only (static inline),
 * included by one test file each.
 */
#ifndef P2P_TESTS_DISC_FAKE_H
#define P2P_TESTS_DISC_FAKE_H

#include <sys/socket.h>
#include <unistd.h>

#include "core/netutil.h"
#include "tests/actors/disc_nodes.h"

typedef struct df_fake {
    int fd;
    uint8_t priv[32], pub[64];
    p2p_node_t node;       /* id, key, endpoint */
    p2p_endpoint_t report; /* the endpoint its pongs name for the instance */
    unsigned answered;     /* pings answered */
    unsigned nnb;          /* its Neighbors list */
    p2p_discv4_rpcnode_t nb[2];
} df_fake_t;

static p2p_endpoint_t df_target; /* the instance, as the fakes reach it */

static inline uint64_t df_unix_now(void)
{
    return p2p_wall_ms() / 1000;
}

/* A fake with a fresh key on a socket bound to ip (any port): false if the
 * bind fails (an address the machine lacks). */
static inline bool df_open(df_fake_t *f, p2p_ip_t ip)
{
    memset(f, 0, sizeof *f);
    dn_key(f->priv);
    CHECK_OK(p2p_secp_pubkey(f->pub, f->priv));
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &ip, 0);
    f->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(f->fd >= 0);
    if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&ss, sl) != 0) return false;
    sl = sizeof ss;
    CHECK(getsockname(f->fd, (struct sockaddr *)&ss, &sl) == 0);
    memcpy(f->node.pubkey, f->pub, 64);
    p2p_node_id(f->node.id, f->pub);
    CHECK_OK(p2p_ip_from_sockaddr(&f->node.ep.ip, &f->node.ep.udp, (struct sockaddr *)&ss));
    f->node.ep.tcp = f->node.ep.udp;
    return true;
}

static inline void df_close(df_fake_t *f, unsigned nf)
{
    for (unsigned i = 0; i < nf; i++)
        if (f[i].fd >= 0) close(f[i].fd);
}

static inline void df_send(df_fake_t *f, const p2p_discv4_packet_t *p)
{
    uint8_t buf[P2P_DISCV4_MAX_SIZE];
    size_t n = 0;
    CHECK_OK(p2p_discv4_encode(buf, &n, NULL, p, f->priv));
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &df_target.ip, df_target.udp);
    CHECK(sendto(f->fd, buf, n, 0, (struct sockaddr *)&ss, sl) == (ssize_t)n);
}

/* Answers what arrived on f: a ping with a pong naming f->report, a
 * findnode with f's Neighbors list. */
static inline void df_serve(df_fake_t *f)
{
    uint8_t buf[2048];
    ssize_t n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return;
    static p2p_discv4_packet_t in, out;
    if (p2p_discv4_decode(&in, buf, (size_t)n) != 0) return;
    memset(&out, 0, sizeof out);
    out.expiration = df_unix_now() + 20;
    if (in.type == P2P_DISCV4_PING) {
        out.type = P2P_DISCV4_PONG;
        out.u.pong.to = f->report;
        memcpy(out.u.pong.reply_tok, in.hash, 32);
        df_send(f, &out);
        f->answered++;
    } else if (in.type == P2P_DISCV4_FINDNODE) {
        out.type = P2P_DISCV4_NEIGHBORS;
        out.u.neighbors.n = f->nnb;
        memcpy(out.u.neighbors.nodes, f->nb, f->nnb * sizeof f->nb[0]);
        df_send(f, &out);
    }
}

static inline bool df_all_answered(const df_fake_t *f, unsigned nf)
{
    for (unsigned i = 0; i < nf; i++)
        if (f[i].answered == 0) return false;
    return true;
}

#endif
