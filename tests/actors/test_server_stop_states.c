/*
 * tests/actors/test_server_stop_states.c: p2p_server_stop in states the
 * load test (test_server_stop) does not reach.
 *
 * listener: stop closes the listening socket first, as geth's Server.Stop
 * closes its listener before it disconnects the peers: while the stop
 * lingers on a peer (the remote read its Disconnect(client quitting) and
 * keeps the connection open), a new connection to the port is refused,
 * not taken into the kernel's backlog and reset a linger later.  The stop
 * still returns within the linger.
 *
 * blocked: the application queued 1 MiB for a peer that reads nothing (its
 * receive window and our send buffer are full, the write blocked).  Stop
 * returns within the linger; a remote that starts reading once the stop
 * began gets every queued message, then Disconnect(client quitting), as
 * p2p_peer_send promises for a connection this side ends.
 *
 * blackhole: stop while a dial is connecting to a port that drops its SYN
 * (a loopback listener whose accept queue is full): the dial ends at once,
 * not at its 30 s dial timeout.
 *
 * unsent: a disconnect of ours (the path stop takes for every peer) to a
 * remote that reads nothing: every queued message is framed into the
 * write buffer, and those the linger could not write are counted in
 * send_unsent (and not in msgs_out), as p2p_peer_send and send_unsent
 * promise: the remote's whole messages plus send_unsent make the sends.
 *
 * busy: stop while a peer's on_msg runs (300 ms) and, from it, calls the
 * API (peer count, send): the calls return, the stop waits for the
 * callback, on_stop comes last with reason client quitting, and the stop
 * returns within the linger after the callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "crypto/util.h"
#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};
static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

/* The protocol of the blocked, unsent and busy cases: keeps the first peer's
 * handle; on_msg sleeps and calls the API while the test stops the server. */
typedef struct app {
    p2p_server_t *s;
    _Atomic(p2p_peer_t *) peer; /* set by on_start, after the peer count shows it */
    _Atomic int in_msg;         /* 1 while on_msg runs */
    _Atomic int count_rc;       /* p2p_server_peer_count from on_msg */
    _Atomic int send_rc;        /* p2p_peer_send from on_msg */
    _Atomic int stop_seen;      /* on_stop's reason + 1000 */
} app_t;

static int app_start(p2p_peer_t *peer, void *ctx, void **state)
{
    app_t *a = ctx;
    (void)state;
    p2p_peer_ref(peer);
    atomic_store(&a->peer, peer);
    return 0;
}

/* Waits (5 s at most) for on_start to have kept the peer's handle. */
static bool wait_handle(app_t *a)
{
    for (int i = 0; i < 5000 && !atomic_load(&a->peer); i++) usleep(1000);
    return atomic_load(&a->peer) != NULL;
}

/* Starts a server with cs (its protocols: app's, ctx a) and connects rp to
 * it as a live peer of "app" (both handshakes with a fresh key; rcvbuf as
 * rp_connect_rcvbuf), then waits until the server counts it and on_start
 * kept its handle.  Returns the server, or NULL (checks failed). */
static p2p_server_t *app_peer(app_t *a, p2p_server_config_t *cs, rawpeer_t *rp, int rcvbuf)
{
    static const char *const cap[] = {"app"};
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, cs));
    if (!s) return NULL;
    a->s = s;
    p2p_node_t ns = su_node(s);
    uint8_t k[32];
    su_key(k);
    CHECK(rp_connect_rcvbuf(rp, ns.ep.tcp, rcvbuf) == 0 &&
          rp_handshake(rp, k, ns.pubkey, 5000) == 0 &&
          rp_exchange_hellos(rp, cap, ver1, 1, 5000) == 0);
    CHECK(su_wait_peers(s, 1, 5000));
    CHECK(wait_handle(a));
    return s;
}

static int app_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                   size_t len)
{
    app_t *a = ctx;
    (void)state, (void)code, (void)data, (void)len;
    atomic_store(&a->in_msg, 1);
    usleep(300 * 1000);
    atomic_store(&a->count_rc, p2p_server_peer_count(a->s));
    atomic_store(&a->send_rc, p2p_peer_send(peer, "app", 1, (const uint8_t *)"late", 4));
    atomic_store(&a->in_msg, 0);
    return 0;
}

static void app_stop(p2p_peer_t *peer, void *ctx, void *state, uint8_t reason)
{
    app_t *a = ctx;
    (void)peer, (void)state;
    atomic_store(&a->stop_seen, 1000 + reason);
}

#define LINGER_MS 2000

/* A live peer: both handshakes done with a fresh key. */
static bool live_peer(rawpeer_t *rp, const p2p_node_t *ns)
{
    uint8_t k[32];
    su_key(k);
    return rp_connect(rp, ns->ep.tcp) == 0 && rp_handshake(rp, k, ns->pubkey, 5000) == 0 &&
           rp_exchange_hellos(rp, cap_echo, ver1, 1, 5000) == 0;
}

/* Connects to 127.0.0.1:port; returns 0 or the errno of the failure. */
static int connect_errno(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

static void test_listener_closed_first(void)
{
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.disc_linger_ms = LINGER_MS;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    if (!s) return;
    p2p_node_t ns = su_node(s);
    rawpeer_t rp;
    CHECK(live_peer(&rp, &ns));
    CHECK(su_wait_peers(s, 1, 5000));

    su_stopper_t st;
    CHECK(su_stop_start(&st, s));
    /* the stop is under way once the peer reads its Disconnect; it then
     * lingers (we keep the connection open) */
    CHECK(rp_expect_disconnect(&rp, NULL, 5000) == P2P_DISC_QUITTING);
    int err = connect_errno(ns.ep.tcp);
    if (err != ECONNREFUSED)
        printf("connect during the stop: %s (want connection refused)\n",
               err ? strerror(err) : "accepted");
    CHECK(err == ECONNREFUSED);
    rp_close(&rp);
    su_stop_join(&st);
    printf("listener: stop %.1f ms\n", (double)st.ns / 1e6);
    CHECK(st.ns < (LINGER_MS + 2000) * P2P_NS_PER_MS);
}

#define BLOCKED_MSG (64u * 1024)
#define BLOCKED_N 16
#define BLOCKED_LINGER_MS 5000

static void test_blocked_write(void)
{
    app_t a = {0};
    p2p_protocol_t proto = {"app", 1, 2, &a, app_start, NULL, NULL};
    p2p_server_config_t cs;
    su_config(&cs, &proto, 1);
    cs.disc_linger_ms = BLOCKED_LINGER_MS;
    rawpeer_t rp;
    p2p_server_t *s = app_peer(&a, &cs, &rp, 0);
    if (!s) return;
    int small = 4096;
    (void)setsockopt(rp.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    uint8_t *msg = calloc(1, BLOCKED_MSG);
    int queued = 0;
    for (int i = 0; a.peer && msg && i < BLOCKED_N; i++) {
        msg[0] = (uint8_t)i;
        if (p2p_peer_send(a.peer, "app", 0, msg, BLOCKED_MSG) == 0) queued++;
    }
    CHECK(queued == BLOCKED_N);
    usleep(200 * 1000); /* the peer thread writes until the socket is full */
    su_stopper_t st;
    CHECK(su_stop_start(&st, s));
    usleep(100 * 1000);
    /* read from now: every queued message, then the Disconnect */
    int big = 1 << 20;
    (void)setsockopt(rp.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    int got = 0, reason = -3;
    for (int i = 0; i < 4 * BLOCKED_N; i++) { /* BLOCKED_N messages, then the Disconnect */
        uint64_t code;
        const uint8_t *p;
        size_t n;
        int rc = rp_recv(&rp, &code, &p, &n, 5000);
        if (rc) break;
        if (code == P2P_BASE_LENGTH && n == BLOCKED_MSG && p[0] == (uint8_t)got) got++;
        if (code == P2P_MSG_DISC) {
            uint8_t r;
            reason = p2p_disc_decode(&r, p, n, rp.codec.snappy) ? -1 : r;
            break;
        }
    }
    uint64_t t_disc = p2p_now_ns();
    rp_close(&rp);
    su_stop_join(&st);
    printf(
        "blocked: %d of %d messages, then reason %d; stop %.1f ms, %.1f ms after the disconnect\n",
        got, queued, reason, (double)st.ns / 1e6, (double)(p2p_now_ns() - t_disc) / 1e6);
    CHECK(got == queued);
    CHECK(reason == P2P_DISC_QUITTING);
    CHECK(st.ns < (BLOCKED_LINGER_MS + 2000) * P2P_NS_PER_MS);
    if (a.peer) p2p_peer_unref(a.peer);
    free(msg);
}

static void test_busy_handler(void)
{
    app_t a = {0};
    p2p_protocol_t proto = {"app", 1, 2, &a, app_start, app_msg, app_stop};
    p2p_server_config_t cs;
    su_config(&cs, &proto, 1);
    cs.disc_linger_ms = LINGER_MS;
    cs.op_timeout_ms = 10000;
    rawpeer_t rp;
    p2p_server_t *s = app_peer(&a, &cs, &rp, 0);
    if (!s) return;
    CHECK_OK(rp_send(&rp, P2P_BASE_LENGTH, (const uint8_t *)"\xc0", 1));
    for (int i = 0; i < 500 && !atomic_load(&a.in_msg); i++) usleep(1000);
    CHECK(atomic_load(&a.in_msg) == 1);
    su_stopper_t st;
    CHECK(su_stop_start(&st, s));
    int reason = rp_expect_disconnect(&rp, NULL, 5000);
    rp_close(&rp);
    su_stop_join(&st);
    printf("busy: count %d, send %d, on_stop %d, disconnect %d, stop %.1f ms\n",
           atomic_load(&a.count_rc), atomic_load(&a.send_rc), atomic_load(&a.stop_seen) - 1000,
           reason, (double)st.ns / 1e6);
    int crc = atomic_load(&a.count_rc);
    CHECK(crc == 1 || crc == P2P_ECLOSED);
    CHECK(atomic_load(&a.send_rc) == 0);
    CHECK(atomic_load(&a.stop_seen) == 1000 + P2P_DISC_QUITTING);
    CHECK(reason == P2P_DISC_QUITTING);
    CHECK(st.ns < (LINGER_MS + 2000) * P2P_NS_PER_MS);
    if (a.peer) p2p_peer_unref(a.peer);
}

/* A loopback port whose SYNs are dropped: a listener with a full accept
 * queue (backlog 0 holds one connection, which *filler makes).  Returns
 * the port; close *lfd and *filler after use. */
static uint16_t blackhole_port(int *lfd, int *filler)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(*lfd >= 0);
    CHECK(bind(*lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(*lfd, 0) == 0);
    CHECK(getsockname(*lfd, (struct sockaddr *)&sa, &sl) == 0);
    *filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(*filler >= 0 && connect(*filler, (struct sockaddr *)&sa, sizeof sa) == 0);
    return ntohs(sa.sin_port);
}

static void test_blackhole_dial(void)
{
    int lfd, filler;
    uint16_t port = blackhole_port(&lfd, &filler);
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.dial_timeout_ms = 30000;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    if (!s) return;
    p2p_node_t n = su_node(s);
    uint8_t k[32];
    su_key(k);
    CHECK_OK(p2p_secp_pubkey(n.pubkey, k));
    p2p_node_id(n.id, n.pubkey);
    n.ep.tcp = port;
    CHECK_OK(p2p_server_add_peer(s, &n));
    CHECK(SU_WAIT_STAT(s, dials, 1, 5000));
    usleep(200 * 1000);
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.dial_connect_failed == 0); /* still connecting */
    uint64_t t0 = p2p_now_ns();
    p2p_server_stop(s);
    uint64_t ns = p2p_now_ns() - t0;
    printf("blackhole: stop %.1f ms with a dial in SYN_SENT\n", (double)ns / 1e6);
    CHECK(ns < P2P_NS_PER_S);
    close(filler);
    close(lfd);
}

/* Counts the whole app messages (code P2P_BASE_LENGTH, BLOCKED_MSG bytes)
 * rp can still read, until an error, EOF, a Disconnect or timeout_ms of
 * silence. */
static int read_app_msgs(rawpeer_t *rp, unsigned timeout_ms)
{
    int got = 0;
    for (int i = 0; i < 4096; i++) { /* at most 1024 were sent (unsent_n) */
        uint64_t code;
        const uint8_t *p;
        size_t n;
        if (rp_recv(rp, &code, &p, &n, timeout_ms) || code == P2P_MSG_DISC) break;
        if (code == P2P_BASE_LENGTH && n == BLOCKED_MSG) got++;
    }
    return got;
}

/* More than the kernel's send buffer can take (net.ipv4.tcp_wmem's
 * largest size, 4 MiB by default): 2 x that in messages, 64..1024. */
static int unsent_n(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    unsigned long lo = 0, def = 0, max = 4ul << 20;
    if (f) {
        if (fscanf(f, "%lu %lu %lu", &lo, &def, &max) != 3) max = 4ul << 20;
        fclose(f);
    }
    unsigned long n = 2 * max / BLOCKED_MSG + 16;
    return n < 64 ? 64 : n > 1024 ? 1024 : (int)n;
}

/* unsent: a disconnect of ours (the path stop takes) to a remote that reads
 * nothing: what the linger could not write is counted in send_unsent, the
 * messages framed into the write buffer included. */
static void test_unsent_counted(void)
{
    app_t a = {0};
    p2p_protocol_t proto = {"app", 1, 2, &a, app_start, NULL, NULL};
    p2p_server_config_t cs;
    su_config(&cs, &proto, 1);
    cs.disc_linger_ms = 300;
    const int want = unsent_n();
    cs.out_max_msgs = 1024;
    cs.out_max_bytes = 1024ull * BLOCKED_MSG;
    rawpeer_t rp;
    p2p_server_t *s = app_peer(&a, &cs, &rp, 4096); /* a small window from the SYN on */
    if (!s) return;
    /* random bytes: snappy leaves them as large as they are */
    uint8_t *msg = calloc(1, BLOCKED_MSG);
    if (msg) CHECK_OK(p2p_random(msg, BLOCKED_MSG));
    int queued = 0;
    for (int i = 0; a.peer && msg && i < want; i++)
        if (p2p_peer_send(a.peer, "app", 0, msg, BLOCKED_MSG) == 0) queued++;
    CHECK(queued == want);
    usleep(100 * 1000);
    if (a.peer) CHECK_OK(p2p_peer_disconnect(a.peer, P2P_DISC_REQUESTED));
    CHECK(SU_WAIT_STAT(s, peers_removed, 1, 5000));
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    /* what reached the socket arrives; the rest was counted */
    int got = read_app_msgs(&rp, 3000);
    printf("unsent: %d queued, %d delivered, %llu counted unsent, %llu counted sent\n", queued, got,
           (unsigned long long)st.send_unsent, (unsigned long long)st.msgs_out);
    CHECK(got < queued); /* the linger could not write them all */
    CHECK((uint64_t)got + st.send_unsent == (uint64_t)queued);
    CHECK(st.msgs_out == (uint64_t)got);
    rp_close(&rp);
    if (a.peer) p2p_peer_unref(a.peer);
    free(msg);
    p2p_server_stop(s);
}

int main(void)
{
    int fds0 = su_count_fds();
    size_t mb0 = su_live_mailboxes();
    test_listener_closed_first();
    test_blocked_write();
    test_busy_handler();
    test_blackhole_dial();
    test_unsent_counted();
    CHECK(su_count_fds() == fds0);
    CHECK(su_live_mailboxes() == mb0);
    return tu_done("server_stop_states");
}
