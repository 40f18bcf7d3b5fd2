/*
 * tests/actors/test_server_dialstats.c: the dialer's counters and its
 * periodic log reach the operator.
 *
 * A (discovery hook open, MaxPeers 10: 3 dialled peers at most) is offered
 * its own node as a candidate (skipped: self), then B (dialled), then B
 * again until it is skipped as connected; C is added as a static node
 * (dialled).  The server's stats count the candidates skipped (one self,
 * one connected, the rest still dialing or recently dialled), one
 * discovery dial and one static dial.  A's own node added as a static node
 * gets a warning that it will not be dialled (why=self).  A's log (captured through a
 * pipe) carries a "Looking for peers" line within 12 s (the dialer writes
 * one every 10 s while fewer than 3 dialled peers are connected).
 *
 * D (MaxPeers 3: one dialled peer at most) dials B as a static node: with
 * its one dialled place taken it is not looking for peers, so the log has
 * no "Looking for peers ... static=1" line (D's; B, which has no static
 * node, writes static=0) in the 12 s that follow.
 *
 * E (NoDial) with B as a static node warns at start that B will not be
 * dialled (why=no-slot: no dialled-peer budget) and dials nothing.
 *
 * F's static node accepts TCP connections and never speaks: "Static peer
 * not connected" names the handshake timeout as a network error, by=network
 * (nobody decided it), not by=local.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>

#include "actors/dialsched.h"
#include "core/log.h"
#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};

/* What the log pipe delivered so far (the most recent part). */
static char buf[1 << 16];
static size_t len;

/* Reads the log pipe until a line containing want shows up or timeout_ms
 * passes. */
static bool log_wait(int fd, const char *want, unsigned timeout_ms)
{
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    for (;;) {
        buf[len] = 0;
        if (strstr(buf, want)) return true;
        uint64_t now = p2p_now_ns();
        if (now >= end) return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)((end - now) / P2P_NS_PER_MS) + 1) <= 0) continue;
        if (len + 1 >= sizeof buf) len = 0; /* keep only recent output */
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n > 0) len += (size_t)n;
    }
}

/* Forgets what the log pipe held so far, its unread lines included (the
 * pipe is non-blocking: reads until it is empty, 1000 reads at most). */
static void log_reset(int fd)
{
    for (int i = 0; i < 1000 && read(fd, buf, sizeof buf) > 0; i++) {
    }
    len = 0;
}

int main(void)
{
    int pfd[2];
    CHECK_OK(pipe2(pfd, O_CLOEXEC | O_NONBLOCK));
    int oldlog = p2p_log_set_fd(pfd[1]);

    p2p_server_config_t ca, cb, cc;
    su_config(&ca, &proto_echo, 1);
    ca.no_discovery = false;
    su_config(&cb, &proto_echo, 1);
    su_config(&cc, &proto_echo, 1);
    p2p_server_t *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(p2p_server_start(&b, &cb));
    CHECK_OK(p2p_server_start(&c, &cc));
    CHECK_OK(p2p_server_start(&a, &ca));
    p2p_node_t na = su_node(a), nb = su_node(b), nc = su_node(c);

    uint64_t dl = p2p_now_ns() + P2P_NS_PER_S;
    CHECK_OK(p2p_server_add_candidate(a, &na, dl));
    CHECK(SU_WAIT_STAT(a, candidates_skipped, 1, 3000));
    CHECK_OK(p2p_server_add_candidate(a, &nb, dl));
    CHECK(su_wait_peers(a, 1, 5000));
    /* The run loop has B; the dialer may not have closed B's dial yet (the
     * peer thread reports the dial's end after the run loop admits it), and
     * until it has, a candidate B is skipped as still dialing (or recently
     * dialled).  So B is offered again (30 times at most, 100 ms apart)
     * until the dialer skips it as connected. */
    uint64_t skipped = 1;
    p2p_server_stats_t st;
    for (int i = 0; i < 30; i++) {
        CHECK_OK(p2p_server_add_candidate(a, &nb, p2p_now_ns() + P2P_NS_PER_S));
        skipped++;
        CHECK(SU_WAIT_STAT(a, candidates_skipped, skipped, 3000));
        p2p_server_get_stats(a, &st);
        if (st.candidates_skipped_by[P2P_DIAL_SKIP_CONNECTED] > 0) break;
        usleep(100 * 1000);
    }
    p2p_server_get_stats(a, &st);
    CHECK(st.candidates_skipped == skipped);
    CHECK(st.candidates_skipped_by[P2P_DIAL_SKIP_DIALING] +
              st.candidates_skipped_by[P2P_DIAL_SKIP_HISTORY] ==
          skipped - 2);
    CHECK_OK(p2p_server_add_peer(a, &nc));
    CHECK(su_wait_peers(a, 2, 5000));
    CHECK(SU_WAIT_STAT(a, dials_static, 1, 3000));

    p2p_server_get_stats(a, &st);
    printf("dials static %llu dyn %llu, candidates skipped %llu (self %llu, connected %llu, "
           "dialing %llu)\n",
           (unsigned long long)st.dials_static, (unsigned long long)st.dials_dyn,
           (unsigned long long)st.candidates_skipped,
           (unsigned long long)st.candidates_skipped_by[P2P_DIAL_SKIP_SELF],
           (unsigned long long)st.candidates_skipped_by[P2P_DIAL_SKIP_CONNECTED],
           (unsigned long long)st.candidates_skipped_by[P2P_DIAL_SKIP_DIALING]);
    CHECK(st.dials_dyn == 1);
    CHECK(st.dials_static == 1);
    CHECK(st.candidates_skipped == skipped);
    CHECK(st.candidates_skipped_by[P2P_DIAL_SKIP_SELF] == 1);
    CHECK(st.candidates_skipped_by[P2P_DIAL_SKIP_CONNECTED] == 1);

    /* its own node as a static node: never dialled, and said so */
    CHECK_OK(p2p_server_add_peer(a, &na));
    CHECK(log_wait(pfd[0], "Static peer will not be dialled", 5000));
    CHECK(log_wait(pfd[0], "why=self", 1000));
    bool logged = log_wait(pfd[0], "Looking for peers", 12000);
    if (!logged) printf("no \"Looking for peers\" line within 12 s\n");
    CHECK(logged);
    p2p_server_stop(a);
    p2p_server_stop(c);

    /* D: its one dialled place taken, it logs no "Looking for peers" */
    p2p_server_config_t cd;
    su_config(&cd, &proto_echo, 1);
    cd.max_peers = 3;
    p2p_server_t *sd = NULL;
    CHECK_OK(p2p_server_start(&sd, &cd));
    CHECK_OK(p2p_server_add_peer(sd, &nb));
    CHECK(su_wait_peers(sd, 1, 5000));
    /* B (no static nodes, no discovery) keeps logging "... static=0" */
    log_reset(pfd[0]);
    bool again = log_wait(pfd[0], "static=1", 12000);
    if (again) printf("\"Looking for peers\" logged with the one dialled place taken\n");
    CHECK(!again);
    p2p_server_stop(sd);

    /* E (NoDial) is given B as a static node: never dialled (no dial
     * slot), and said so at start, as for any node that cannot be */
    p2p_server_config_t ce;
    su_config(&ce, &proto_echo, 1);
    ce.no_dial = true;
    ce.static_nodes = &nb;
    ce.nstatic = 1;
    log_reset(pfd[0]);
    CHECK_OK(p2p_server_start(&sd, &ce));
    CHECK(log_wait(pfd[0], "why=no-slot", 5000));
    p2p_server_get_stats(sd, &st);
    CHECK(st.dials == 0);
    p2p_server_stop(sd);

    /* F's static node accepts TCP and never answers: the handshake times
     * out, which the log puts down to the network, not to a local
     * decision */
    int sfd = -1;
    p2p_node_t silent = nb;
    silent.ep.tcp = su_silent_port(&sfd);
    p2p_server_config_t cf;
    su_config(&cf, &proto_echo, 1);
    cf.handshake_timeout_ms = 300;
    cf.static_nodes = &silent;
    cf.nstatic = 1;
    log_reset(pfd[0]);
    CHECK_OK(p2p_server_start(&sd, &cf));
    CHECK(log_wait(pfd[0], "Static peer not connected", 5000));
    CHECK(log_wait(pfd[0], "why=\"network error\" by=network", 1000));
    p2p_server_get_stats(sd, &st);
    CHECK(st.handshake_timeouts == 1);
    p2p_log_set_fd(oldlog);
    p2p_server_stop(sd);
    close(sfd);
    p2p_server_stop(b);
    close(pfd[0]);
    close(pfd[1]);
    return tu_done("server_dialstats");
}
