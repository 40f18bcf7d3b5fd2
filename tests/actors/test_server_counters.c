/*
 * tests/actors/test_server_counters.c: the server's counters against a
 * ground truth the test knows, on loopback.
 *
 * - test_rejected_bytes: B has MaxPeers 0, so it refuses A's dial at the
 *   posthandshake checkpoint (too many peers): its ack leaves with the
 *   Disconnect, A answers the ack with its Hello, reads the Disconnect and
 *   closes; B reads A's Hello while it lingers.  Both count what follows
 *   the RLPx handshake: A's bytes_out (its Hello) equals B's bytes_in, and
 *   B's bytes_out (its Disconnect) equals A's bytes_in.  One Disconnect:
 *   sent by B, received by A, one rejection at B.
 * - test_disc_not_written: a raw peer that never reads; the server queues
 *   its whole backlog (16 MiB, more than the loopback socket buffers hold)
 *   and is then asked to disconnect it: the messages are framed before the
 *   Disconnect, which cannot be written within the linger.  No Disconnect
 *   left, so disc_sent stays 0 (as msgs_out counts only messages written
 *   whole; the unwritten ones are in send_unsent); the DROP still says
 *   why the peer was dropped.
 * - test_pongs_written: a raw peer floods pings and never reads the pongs;
 *   the server answers until its write buffer holds its high mark, then
 *   the write deadline drops the peer with pongs framed and never
 *   written.  pongs_sent counts the pongs written: they fit in the bytes
 *   the connection wrote (bytes_out), one pong frame each.
 */
#include <fcntl.h>
#include <stdio.h>

#include "tests/actors/srv_util.h"

/* Waits until both servers' byte counters agree or timeout_ms passes
 * (the connection threads end after the linger). */
static void wait_bytes_match(p2p_server_t *a, p2p_server_t *b, p2p_server_stats_t *sa,
                             p2p_server_stats_t *sb, unsigned timeout_ms)
{
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    do {
        usleep(5000);
        p2p_server_get_stats(a, sa);
        p2p_server_get_stats(b, sb);
    } while ((sa->bytes_out != sb->bytes_in || sb->bytes_out != sa->bytes_in) &&
             p2p_now_ns() < end);
    printf("a: out %llu in %llu; b: out %llu in %llu\n", (unsigned long long)sa->bytes_out,
           (unsigned long long)sa->bytes_in, (unsigned long long)sb->bytes_out,
           (unsigned long long)sb->bytes_in);
}

static void test_rejected_bytes(void)
{
    p2p_server_config_t ca, cb;
    su_config(&ca, NULL, 0);
    su_config(&cb, NULL, 0);
    cb.max_peers = 0;
    p2p_server_t *a = NULL, *b = NULL;
    CHECK_OK(p2p_server_start(&a, &ca));
    CHECK_OK(p2p_server_start(&b, &cb));
    if (!a || !b) return;
    p2p_node_t nb = su_node(b);
    CHECK_OK(p2p_server_add_peer(a, &nb));
    /* A hears B's Disconnect (B's connection ends at A's close, within
     * B's linger: wait_bytes_match) */
    p2p_server_stats_t sa, sb;
    uint64_t end = p2p_now_ns() + 5 * P2P_NS_PER_S;
    do {
        usleep(5000);
        p2p_server_get_stats(a, &sa);
        p2p_server_get_stats(b, &sb);
    } while (sa.disc_recv[P2P_DISC_TOO_MANY_PEERS] == 0 && p2p_now_ns() < end);
    /* stop A's redials of its static node before comparing */
    CHECK_OK(p2p_server_remove_peer(a, nb.id));
    wait_bytes_match(a, b, &sa, &sb, 3000);
    CHECK(sb.rejected[P2P_DISC_TOO_MANY_PEERS] >= 1);
    CHECK(sb.disc_sent[P2P_DISC_TOO_MANY_PEERS] == sb.rejected[P2P_DISC_TOO_MANY_PEERS]);
    CHECK(sa.disc_recv[P2P_DISC_TOO_MANY_PEERS] == sb.disc_sent[P2P_DISC_TOO_MANY_PEERS]);
    CHECK(sa.bytes_out > 0 && sb.bytes_out > 0);
    CHECK(sa.bytes_out == sb.bytes_in);
    CHECK(sb.bytes_out == sa.bytes_in);
    CHECK(sa.peers_added == 0 && sb.peers_added == 0);
    p2p_server_stop(a);
    p2p_server_stop(b);
}

static p2p_peer_t *_Atomic started_peer;

static int x_start(p2p_peer_t *peer, void *ctx, void **state)
{
    (void)ctx;
    (void)state;
    p2p_peer_ref(peer);
    atomic_store(&started_peer, peer);
    return 0;
}

static const p2p_protocol_t proto_x = {"x", 1, 1, NULL, x_start, NULL, NULL};

static void test_disc_not_written(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_x, 1);
    cfg.disc_linger_ms = 300;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    p2p_node_t self = su_node(s);
    rawpeer_t rp;
    static const char *const names[] = {"x"};
    static const uint32_t versions[] = {1};
    CHECK(su_dial(&rp, self.ep.tcp, self.pubkey, 3000));
    /* a small receive buffer: the backlog cannot fit in the socket
     * buffers whatever the system's TCP memory settings */
    int rcvbuf = 4096;
    CHECK(setsockopt(rp.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    CHECK(rp_exchange_hellos(&rp, names, versions, 1, 3000) == 0);
    CHECK(su_wait_peers(s, 1, 3000));
    p2p_peer_t *peer = NULL;
    uint64_t end = p2p_now_ns() + 3 * P2P_NS_PER_S;
    while (!(peer = atomic_load(&started_peer)) && p2p_now_ns() < end) usleep(1000);
    CHECK(peer != NULL);
    if (!peer) {
        rp_close(&rp);
        p2p_server_stop(s);
        return;
    }
    /* random bytes: snappy cannot shrink them */
    size_t len = 64 * 1024, queued = 0;
    uint8_t *msg = malloc(len);
    CHECK(msg != NULL);
    if (msg) tu_rand_bytes(msg, len);
    for (int i = 0; msg && i < 1024; i++) {
        int rc = p2p_peer_send(peer, "x", 0, msg, len);
        if (rc == P2P_EFULL) break;
        CHECK_OK(rc);
        if (rc) break;
        queued += len;
    }
    free(msg);
    CHECK(queued >= 12u * 1024 * 1024);
    CHECK_OK(p2p_peer_disconnect(peer, P2P_DISC_REQUESTED));
    CHECK(su_wait_peers(s, 0, 5000));
    p2p_server_stats_t st;
    end = p2p_now_ns() + 3 * P2P_NS_PER_S;
    do {
        usleep(5000);
        p2p_server_get_stats(s, &st);
    } while (st.msgs_out + st.send_unsent < queued / len && p2p_now_ns() < end);
    printf("queued %zu messages: msgs_out %llu send_unsent %llu disc_sent[requested] %llu\n",
           queued / len, (unsigned long long)st.msgs_out, (unsigned long long)st.send_unsent,
           (unsigned long long)st.disc_sent[P2P_DISC_REQUESTED]);
    CHECK(st.msgs_out + st.send_unsent == queued / len);
    CHECK(st.send_unsent > 0);
    CHECK(st.disc_sent[P2P_DISC_REQUESTED] == 0);
    p2p_peer_unref(peer);
    rp_close(&rp);
    p2p_server_stop(s);
}

static void test_pongs_written(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, NULL, 0);
    cfg.write_timeout_ms = 500;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    p2p_node_t self = su_node(s);
    rawpeer_t rp;
    CHECK(su_dial(&rp, self.ep.tcp, self.pubkey, 3000));
    CHECK(rp_exchange_hellos(&rp, NULL, NULL, 0, 3000) == 0);
    CHECK(su_wait_peers(s, 1, 3000));
    p2p_server_stats_t st0, st;
    p2p_server_get_stats(s, &st0);
    /* the flood: one encoded ping per write, until the server stops
     * reading (300 ms without progress) or drops us; at most 64 MiB */
    int fl = fcntl(rp.fd, F_GETFL);
    CHECK(fcntl(rp.fd, F_SETFL, fl | O_NONBLOCK) == 0);
    uint8_t ping[256];
    size_t plen = 0, poff = 0, sent = 0;
    uint64_t last = p2p_now_ns();
    while (sent < (64u << 20)) {
        if (poff == plen) {
            CHECK_OK(p2p_rlpx_frame_encode(&rp.codec, ping, sizeof ping, &plen, P2P_MSG_PING,
                                           p2p_ping_payload, 1));
            poff = 0;
        }
        ssize_t w = send(rp.fd, ping + poff, plen - poff, MSG_NOSIGNAL);
        if (w > 0) {
            poff += (size_t)w;
            sent += (size_t)w;
            last = p2p_now_ns();
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            p2p_now_ns() - last < 300 * P2P_NS_PER_MS) {
            usleep(1000);
            continue;
        }
        break;
    }
    /* the write deadline drops the peer */
    CHECK(su_wait_peers(s, 0, 5000));
    p2p_server_get_stats(s, &st);
    uint8_t pong[256];
    size_t pong_len = 0;
    CHECK_OK(p2p_rlpx_frame_encode(&rp.codec, pong, sizeof pong, &pong_len, P2P_MSG_PONG,
                                   p2p_ping_payload, 1));
    uint64_t pongs = st.pongs_sent - st0.pongs_sent, written = st.bytes_out - st0.bytes_out;
    printf("flood of %zu bytes: %llu pongs counted, %llu bytes written (%llu pongs of %zu "
           "bytes), write timeouts %llu\n",
           sent, (unsigned long long)pongs, (unsigned long long)written,
           (unsigned long long)(written / pong_len), pong_len,
           (unsigned long long)(st.write_timeouts - st0.write_timeouts));
    CHECK(st.write_timeouts - st0.write_timeouts == 1);
    CHECK(st.pings_sent == st0.pings_sent);
    CHECK(pongs > 0);
    CHECK(pongs * pong_len <= written);
    rp_close(&rp);
    p2p_server_stop(s);
}

int main(void)
{
    test_rejected_bytes();
    test_disc_not_written();
    test_pongs_written();
    return tu_done("server_counters");
}
