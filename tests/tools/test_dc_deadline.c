/*
 * tests/tools/test_dc_deadline.c: the devp2p tool's discovery endpoint
 * (tools/disc_client.c) keeps its receive deadline while packets keep
 * coming.
 *
 * p2p_dc_recv promises the next valid packet "before deadline"; the
 * commands (discv4 ping, requestenr, resolve, crawl) wait for one answer
 * by calling it again with the same deadline until the packet they want
 * comes.  A stream of packets that never lets the socket run empty must
 * not keep them waiting past it:
 *   - expired packets (dropped inside p2p_dc_recv, as discv4 requires),
 *     anyone's replay of an old capture;
 *   - valid Pings from another node (answered and returned: the caller
 *     loops, as wait_pong does).
 * A flooder thread on loopback sends copies of one packet without pause
 * for at most FLOOD_MAX_NS; p2p_dc_recv (in a wait_pong-style loop) with a
 * deadline DEADLINE_NS away must return P2P_ETIMEDOUT well before the
 * flood ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "tests/tu.h"
#include "tools/disc_client.h"
#include "wire/discv4.h"

#define FLOOD_MAX_NS (4 * P2P_NS_PER_S)
#define FLOOD_MAX_SENDS 50000000ull
#define DEADLINE_NS (200 * P2P_NS_PER_MS)
#define LATE_NS (1 * P2P_NS_PER_S) /* the flood still runs for 3 s after this */
#define CALLS_MAX 1000000

struct flood {
    int fd;
    struct sockaddr_in to;
    uint8_t pkt[P2P_DISCV4_MAX_SIZE];
    size_t len;
    atomic_bool stop; /* relaxed: a flag, no data behind it */
    uint64_t sent;
};

static void *flood_main(void *arg)
{
    struct flood *f = arg;
    uint64_t end = p2p_now_ns() + FLOOD_MAX_NS;
    for (uint64_t i = 0; i < FLOOD_MAX_SENDS; i++) {
        if (atomic_load_explicit(&f->stop, memory_order_relaxed) || p2p_now_ns() >= end) break;
        if (sendto(f->fd, f->pkt, f->len, 0, (struct sockaddr *)&f->to, sizeof f->to) > 0)
            f->sent++;
    }
    return NULL;
}

/* Floods a new endpoint with copies of a Ping of another key whose
 * expiration is exp_delta seconds from now, while a wait_pong-style loop
 * waits for a packet that never comes.  Returns the endpoint's counters. */
static p2p_dc_t run(const char *what, long exp_delta)
{
    static struct flood f;
    memset(&f, 0, sizeof f);
    uint8_t priv[32];
    p2p_dc_t dcs, *dc = &dcs;
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_dc_open(dc, "127.0.0.1:0", priv));
    /* room for a long queue: the flooder, sharing the CPUs, keeps it
     * non-empty across its scheduling gaps (capped at rmem_max) */
    int rcvbuf = 8 << 20;
    (void)setsockopt(dc->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    CHECK_OK(p2p_secp_keygen(priv));
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.u.ping.version = 4;
    p.u.ping.from.ip = p2p_ip4(127, 0, 0, 1);
    p.u.ping.from.udp = 9;
    p.u.ping.to.ip = p2p_ip4(127, 0, 0, 1);
    p.u.ping.to.udp = dc->port;
    p.expiration = (uint64_t)((long)(p2p_wall_ms() / 1000) + exp_delta);
    CHECK_OK(p2p_discv4_encode(f.pkt, &f.len, NULL, &p, priv));
    f.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(f.fd >= 0);
    f.to.sin_family = AF_INET;
    f.to.sin_port = htons(dc->port);
    f.to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    atomic_init(&f.stop, false);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, flood_main, &f) == 0);
    usleep(20000); /* the socket has packets queued before the wait starts */

    uint64_t t0 = p2p_now_ns(), deadline = t0 + DEADLINE_NS;
    int rc = 0;
    unsigned calls = 0;
    while (rc == 0 && calls++ < CALLS_MAX && p2p_now_ns() < t0 + FLOOD_MAX_NS) {
        p2p_discv4_packet_t in;
        p2p_ip_t ip;
        uint16_t port;
        rc = p2p_dc_recv(dc, &in, &ip, &port, deadline);
    }
    uint64_t took = p2p_now_ns() - t0;
    atomic_store_explicit(&f.stop, true, memory_order_relaxed);
    pthread_join(th, NULL);
    close(f.fd);
    printf("%s: rc %d after %.3f s (deadline %.3f s), %u calls, %llu sent, %llu received, "
           "%llu expired, %llu pings answered\n",
           what, rc, (double)took / 1e9, (double)DEADLINE_NS / 1e9, calls,
           (unsigned long long)f.sent, (unsigned long long)dc->received,
           (unsigned long long)dc->expired, (unsigned long long)dc->pings_answered);
    CHECK_ERR(rc, P2P_ETIMEDOUT);
    CHECK(took < LATE_NS);
    p2p_dc_close(dc);
    return dcs;
}

int main(void)
{
    /* a replay of an old capture: dropped inside p2p_dc_recv */
    p2p_dc_t dc = run("expired pings", -60);
    CHECK(dc.expired > 0);
    /* valid pings of another node: answered and returned to the caller */
    dc = run("valid pings", 20);
    CHECK(dc.pings_answered > 0);
    return tu_done("tools-dc-deadline");
}
