/*
 * tests/actors/test_hostile_matrix.c: hostile TCP inputs of SECURITY.md's
 * matrix that test_server_hostile.c does not already send, against a
 * server with a 1.5 s handshake timeout.  Each case checks the outcome the
 * matrix states (Disconnect reason or silent close, the counter it bumps,
 * the peer count) and, at the end, that a normal peer still gets in and no
 * descriptor leaked.
 *
 * RLPx phase: an EIP-8 auth of random bytes, a legacy-size (307 bytes)
 * random auth (read on as EIP-8, then the deadline), a valid auth sealed to another node's key.
 * Hello phase: silence after the RLPx handshake, a Ping instead of the
 * Hello, a Hello with 65 capabilities, a Disconnect instead
 * of the Hello, a zero-size frame, a non-canonical message code.
 * Live peer: a base-protocol message over 2 KiB, a late second Hello
 * (ignored), a Disconnect with an undecodable payload, message code 2^62,
 * a non-canonical message code, a frame whose body MAC is wrong, and a
 * burst of 2000 Pings (each answered, the peer stays).
 */
#include <stdlib.h>

#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"
#include "wire/rlp.h"

#define HS_MS 1500

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};
static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

static p2p_server_t *srv;
static uint16_t port;
static uint8_t srv_pub[64];

static bool connect_rlpx(rawpeer_t *rp)
{
    return su_dial(rp, port, srv_pub, 3000);
}

/* Reads the server's Hello (sent first, right after the RLPx handshake). */
static bool read_hello(rawpeer_t *rp)
{
    uint64_t code = 99;
    const uint8_t *p;
    size_t n;
    return rp_recv(rp, &code, &p, &n, 3000) == 0 && code == P2P_MSG_HELLO;
}

static bool connect_peer(rawpeer_t *rp)
{
    if (!connect_rlpx(rp)) return false;
    return rp_exchange_hellos(rp, cap_echo, ver1, 1, 3000) == 0 && su_wait_peers(srv, 1, 3000);
}

/* Seals body (rlp(code) || payload, written by the caller) as one frame. */
static int send_body(rawpeer_t *rp, const uint8_t *body, size_t n, bool bad_mac)
{
    size_t cap = p2p_rlpx_frame_wire_len(n), len = 0;
    uint8_t *f = calloc(1, cap);
    if (!f) return P2P_ENOMEM;
    if (n) memcpy(f + P2P_RLPX_HEADER_LEN, body, n);
    int rc = p2p_rlpx_frame_seal(&rp->codec, f, cap, &len, n);
    if (!rc && bad_mac) f[len - 1] ^= 0x01; /* last byte of the frame MAC */
    if (!rc && rp_write(rp, f, len)) rc = P2P_EIO;
    free(f);
    return rc;
}

static p2p_server_stats_t stats(void)
{
    p2p_server_stats_t st;
    p2p_server_get_stats(srv, &st);
    return st;
}

static void test_rlpx_phase(void)
{
    rawpeer_t rp;
    p2p_server_stats_t st0 = stats();

    /* an EIP-8 auth of 300 random bytes: ECIES MAC fails, closed at once */
    CHECK(rp_connect(&rp, port) == 0);
    uint8_t pkt[2 + 300];
    pkt[0] = 0x01;
    pkt[1] = 0x2c;
    tu_rand_bytes(pkt + 2, 300);
    CHECK(rp_write(&rp, pkt, sizeof pkt) == 0);
    CHECK(rp_closed_silently(&rp, SU_CLOSE_MARGIN_MS));
    rp_close(&rp);
    /* (at once, not at the deadline: handshake_failed, not handshake_timeouts) */
    CHECK(SU_WAIT_STAT(srv, handshake_failed, st0.handshake_failed + 1, 1000));
    CHECK(stats().handshake_timeouts == st0.handshake_timeouts);

    /* a legacy-size (307 bytes) random auth starting with 0x04: not a
     * legacy packet, so read as an EIP-8 one announcing 0x04xx bytes that
     * never come; closed at the handshake deadline */
    CHECK(rp_connect(&rp, port) == 0);
    uint8_t legacy[P2P_RLPX_AUTH_LEGACY_LEN];
    tu_rand_bytes(legacy, sizeof legacy);
    legacy[0] = 0x04;
    uint64_t t0 = p2p_now_ns();
    CHECK(rp_write(&rp, legacy, sizeof legacy) == 0);
    CHECK(rp_closed_silently(&rp, HS_MS + SU_CLOSE_MARGIN_MS));
    CHECK((p2p_now_ns() - t0) / P2P_NS_PER_MS <= HS_MS + SU_CLOSE_MARGIN_MS);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_timeouts, st0.handshake_timeouts + 1, 1000));

    /* a well-formed auth sealed to another node's public key */
    uint8_t other[32], other_pub[64], k[32];
    su_key(other);
    su_key(k);
    CHECK_OK(p2p_secp_pubkey(other_pub, other));
    CHECK(rp_connect(&rp, port) == 0);
    CHECK(rp_handshake(&rp, k, other_pub, 1500) != 0);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_failed, st0.handshake_failed + 2, 1000));
    CHECK(stats().peers_added == st0.peers_added);
}

static void test_hello_phase(void)
{
    rawpeer_t rp;
    p2p_server_stats_t st0 = stats();

    /* silence after the RLPx handshake: our Hello comes, then the
     * handshake deadline closes the connection without a Disconnect */
    CHECK(connect_rlpx(&rp));
    CHECK(read_hello(&rp));
    CHECK(su_closed_within(&rp, HS_MS) == -1);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_timeouts, st0.handshake_timeouts + 1, 1000));

    /* a Ping instead of the Hello */
    CHECK(connect_rlpx(&rp));
    CHECK_OK(rp_send(&rp, P2P_MSG_PING, p2p_ping_payload, 1));
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, hello_failed, st0.hello_failed + 1, 1000));

    /* a Hello of 65 capabilities (small enough for the frame limit, one
     * over P2P_HELLO_MAX_CAPS): the one past the limit, our "echo", is
     * ignored, so the peer shares nothing with us: useless peer */
    CHECK(connect_rlpx(&rp));
    {
        uint8_t h[1024];
        size_t hn = 0;
        p2p_rlp_enc_t e;
        p2p_rlp_enc_init(&e, h, sizeof h);
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_uint(&e, 5);
        p2p_rlp_put_str(&e, "x");
        p2p_rlp_list_begin(&e);
        for (int i = 0; i < P2P_HELLO_MAX_CAPS + 1; i++) {
            p2p_rlp_list_begin(&e);
            p2p_rlp_put_str(&e, i < P2P_HELLO_MAX_CAPS ? "zzz" : "echo");
            p2p_rlp_put_uint(&e, 1);
            p2p_rlp_list_end(&e);
        }
        p2p_rlp_list_end(&e);
        p2p_rlp_put_uint(&e, 0);
        p2p_rlp_put_bytes(&e, rp.pub, 64);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &hn));
        CHECK(hn < P2P_HELLO_MAX);
        CHECK_OK(rp_send(&rp, P2P_MSG_HELLO, h, hn));
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_USELESS_PEER);
    rp_close(&rp);

    /* a Disconnect(too many peers) instead of the Hello: counted by
     * reason, closed without a Disconnect back */
    CHECK(connect_rlpx(&rp));
    {
        uint8_t d[3];
        size_t dn;
        CHECK_OK(p2p_disc_encode(d, sizeof d, &dn, P2P_DISC_TOO_MANY_PEERS));
        CHECK_OK(rp_send(&rp, P2P_MSG_DISC, d, dn));
    }
    CHECK(su_closed_within(&rp, 300) == -1);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, disc_recv[P2P_DISC_TOO_MANY_PEERS],
                       st0.disc_recv[P2P_DISC_TOO_MANY_PEERS] + 1, 1000));

    /* a zero-size frame (no message code at all) */
    CHECK(connect_rlpx(&rp));
    CHECK_OK(send_body(&rp, NULL, 0, false));
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, hello_failed, st0.hello_failed + 2, 1000));

    /* a non-canonical message code: 0x81 0x00 (code 0 in long form) */
    CHECK(connect_rlpx(&rp));
    {
        static const uint8_t body[] = {0x81, 0x00, 0xc0};
        CHECK_OK(send_body(&rp, body, sizeof body, false));
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, hello_failed, st0.hello_failed + 3, 1000));
    CHECK(stats().peers_added == st0.peers_added);
}

static void test_peer_phase(void)
{
    rawpeer_t rp;
    p2p_server_stats_t st0 = stats();

    /* a Ping of 3000 bytes: base-protocol messages are capped at 2 KiB */
    CHECK(connect_peer(&rp));
    {
        uint8_t *big = calloc(1, 3000);
        big[0] = 0xb9;
        big[1] = (uint8_t)(2997 >> 8);
        big[2] = (uint8_t)(2997 & 0xff);
        CHECK_OK(rp_send(&rp, P2P_MSG_PING, big, 3000));
        free(big);
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(su_wait_peers(srv, 0, 2000));
    CHECK(SU_WAIT_STAT(srv, frame_errors, st0.frame_errors + 1, 1000));

    /* a second Hello on a live peer is ignored: the peer stays and its
     * next Ping is answered */
    CHECK(connect_peer(&rp));
    CHECK_OK(rp_send_hello(&rp, rp.pub, cap_echo, ver1, 1));
    CHECK_OK(rp_send(&rp, P2P_MSG_PING, p2p_ping_payload, 1));
    {
        bool pong = false;
        for (int i = 0; i < 8 && !pong; i++) {
            uint64_t code;
            const uint8_t *p;
            size_t n;
            if (rp_recv(&rp, &code, &p, &n, 2000)) break;
            pong = code == P2P_MSG_PONG;
        }
        CHECK(pong);
    }
    CHECK(p2p_server_peer_count(srv) == 1);
    rp_close(&rp);
    CHECK(su_wait_peers(srv, 0, 2000));

    /* a Disconnect whose payload decodes neither raw nor as snappy:
     * counted as reason 0xff (invalid), the peer is removed */
    CHECK(connect_peer(&rp));
    {
        static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
        p2p_rlpx_codec_set_snappy(&rp.codec, false); /* as it is on the wire */
        CHECK_OK(rp_send(&rp, P2P_MSG_DISC, junk, sizeof junk));
        p2p_rlpx_codec_set_snappy(&rp.codec, true);
    }
    CHECK(su_wait_peers(srv, 0, 2000));
    CHECK(
        SU_WAIT_STAT(srv, disc_recv[P2P_DISC_INVALID], st0.disc_recv[P2P_DISC_INVALID] + 1, 1000));
    rp_close(&rp);

    /* message code 2^62: no protocol owns it */
    CHECK(connect_peer(&rp));
    CHECK_OK(rp_send(&rp, 1ull << 62, (const uint8_t *)"\xc0", 1));
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, proto_errors, st0.proto_errors + 1, 1000));
    CHECK(su_wait_peers(srv, 0, 2000));

    /* a non-canonical message code on a live peer */
    CHECK(connect_peer(&rp));
    {
        static const uint8_t body[] = {0x81, 0x02, 0x00};
        CHECK_OK(send_body(&rp, body, sizeof body, false));
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, frame_errors, st0.frame_errors + 2, 1000));
    CHECK(su_wait_peers(srv, 0, 2000));

    /* a frame whose body MAC is wrong */
    CHECK(connect_peer(&rp));
    {
        static const uint8_t body[] = {0x02, 0xc0}; /* a Ping */
        CHECK_OK(send_body(&rp, body, sizeof body, true));
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, frame_errors, st0.frame_errors + 3, 1000));
    CHECK(su_wait_peers(srv, 0, 2000));

    /* 2000 Pings in a burst: every one is answered, the peer stays */
    CHECK(connect_peer(&rp));
    {
        enum { NPING = 2000 };
        size_t one = p2p_rlpx_frame_bound(&rp.codec, 1), len = 0, n;
        uint8_t *burst = malloc(one * NPING);
        int rc = 0;
        for (int i = 0; i < NPING && !rc; i++) {
            rc = p2p_rlpx_frame_encode(&rp.codec, burst + len, one, &n, P2P_MSG_PING,
                                       p2p_ping_payload, 1);
            len += n;
        }
        CHECK_OK(rc);
        CHECK(rp_write(&rp, burst, len) == 0);
        free(burst);
        int pongs = 0;
        while (pongs < NPING) {
            uint64_t code;
            const uint8_t *p;
            size_t pn;
            if (rp_recv(&rp, &code, &p, &pn, 5000)) break;
            if (code == P2P_MSG_PONG) pongs++;
        }
        CHECK(pongs == NPING);
    }
    CHECK(p2p_server_peer_count(srv) == 1);
    /* pongs_sent counts a pong once written: the last ones may be read
     * before the server's thread counts them */
    CHECK(SU_WAIT_STAT(srv, pongs_sent, st0.pongs_sent + 2000, 2000));
    rp_close(&rp);
    CHECK(su_wait_peers(srv, 0, 2000));
    CHECK(stats().disc_sent[P2P_DISC_PROTOCOL_ERROR] - st0.disc_sent[P2P_DISC_PROTOCOL_ERROR] >= 3);
}

int main(void)
{
    int fds0 = su_count_fds();
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.handshake_timeout_ms = HS_MS;
    cs.max_pending = 2; /* a leaked slot would block the listener */
    cs.max_msg_size = 1u << 20;
    CHECK_OK(p2p_server_start(&srv, &cs));
    if (!srv) return tu_done("hostile_matrix");
    p2p_node_t ns = su_node(srv);
    port = ns.ep.tcp;
    memcpy(srv_pub, ns.pubkey, 64);

    test_rlpx_phase();
    test_hello_phase();
    test_peer_phase();

    /* the slots came back: a normal peer still gets in */
    rawpeer_t rp;
    CHECK(connect_peer(&rp));
    CHECK(p2p_server_peer_count(srv) == 1);
    rp_close(&rp);
    CHECK(su_wait_peers(srv, 0, 2000));
    p2p_server_stop(srv);
    CHECK(su_count_fds() == fds0);
    return tu_done("hostile_matrix");
}
