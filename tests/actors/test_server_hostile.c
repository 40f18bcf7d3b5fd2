/*
 * tests/actors/test_server_hostile.c: hostile TCP input against a server
 * with a 2 s handshake timeout, 1 MiB message limit and only 2
 * pending-handshake slots (so a leaked slot would block the listener).
 * Each case must close the connection within its deadline and bump its
 * counter:
 *   garbage (size prefix 0xffff), an auth held past the deadline, an auth
 *   announcing 2049 bytes, a bad header MAC, a frame header announcing more
 *   than the Hello limit, a Hello with 10,000 capabilities, and on a live
 *   peer: a frame announcing 2 MiB (> max_msg), a snappy bomb (decoded
 *   length 16 MiB announced) and two message codes no capability owns
 *   (Disconnect "breach of protocol").
 * Finally a normal peer still gets through (the slots were returned).
 */
#include <stdlib.h>

#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"

/* long enough for a handshake under valgrind */
#define HS_MS 2000

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};
static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

static p2p_server_t *srv;
static uint16_t port;
static uint8_t srv_pub[64];

/* Connects and runs the RLPx handshake with a fresh key. */
static bool connect_rlpx(rawpeer_t *rp)
{
    return su_dial(rp, port, srv_pub, 3000);
}

/* Connects, handshakes, exchanges Hellos: a live peer. */
static bool connect_peer(rawpeer_t *rp)
{
    if (!connect_rlpx(rp)) return false;
    return rp_exchange_hellos(rp, cap_echo, ver1, 1, 3000) == 0;
}

static void test_rlpx_phase(void)
{
    rawpeer_t rp;
    /* garbage: the size prefix says 65535 */
    CHECK(rp_connect(&rp, port) == 0);
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    CHECK(rp_write(&rp, junk, sizeof junk) == 0);
    CHECK(su_closed_within(&rp, 200) == -1);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_failed, 1, 1000));

    /* nothing sent: the handshake deadline */
    CHECK(rp_connect(&rp, port) == 0);
    CHECK(su_closed_within(&rp, HS_MS + 300) == -1);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_timeouts, 1, 1000));

    /* an auth of 2049 bytes announced */
    CHECK(rp_connect(&rp, port) == 0);
    uint8_t pre[2] = {0x08, 0x01};
    CHECK(rp_write(&rp, pre, 2) == 0);
    CHECK(su_closed_within(&rp, 200) == -1);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_failed, 2, 1000));

    /* a truncated auth: prefix says 400, 100 bytes come, then silence */
    CHECK(rp_connect(&rp, port) == 0);
    uint8_t part[102] = {0x01, 0x90};
    CHECK(rp_write(&rp, part, sizeof part) == 0);
    CHECK(su_closed_within(&rp, HS_MS + 300) == -1);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, handshake_timeouts, 2, 1000));
}

static void test_hello_phase(void)
{
    rawpeer_t rp;
    /* bad header MAC */
    CHECK(connect_rlpx(&rp));
    {
        uint8_t hello[8] = {0xc0};
        size_t bound = p2p_rlpx_frame_bound(&rp.codec, 1), n;
        uint8_t *f = malloc(bound);
        CHECK_OK(p2p_rlpx_frame_encode(&rp.codec, f, bound, &n, 0, hello, 1));
        f[20] ^= 1; /* inside the header MAC */
        CHECK(rp_write(&rp, f, n) == 0);
        free(f);
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, hello_failed, 1, 1000));

    /* a Hello with 10,000 capabilities (30 KB): refused at its header */
    CHECK(connect_rlpx(&rp));
    {
        size_t cap = 64 * 1024, n;
        uint8_t *buf = malloc(cap), *caps = malloc(cap);
        size_t ncap = 0;
        for (int i = 0; i < 10000; i++) {
            static const uint8_t one[3] = {0xc2, 0x61, 0x01}; /* ["a", 1] */
            memcpy(caps + ncap, one, 3);
            ncap += 3;
        }
        /* [5, "x", [caps...], 0, id64] by hand */
        size_t off = 0;
        uint8_t *p = buf + 8;
        p[off++] = 0x05;
        p[off++] = 0x78;
        p[off++] = 0xf9;
        p[off++] = (uint8_t)(ncap >> 8);
        p[off++] = (uint8_t)ncap;
        memcpy(p + off, caps, ncap);
        off += ncap;
        p[off++] = 0x80;
        p[off++] = 0xb8;
        p[off++] = 64;
        memcpy(p + off, rp.pub, 64);
        off += 64;
        buf[5] = 0xf9;
        buf[6] = (uint8_t)(off >> 8);
        buf[7] = (uint8_t)off;
        n = off + 3;
        CHECK_OK(rp_send(&rp, P2P_MSG_HELLO, buf + 5, n));
        free(buf);
        free(caps);
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(srv, hello_failed, 2, 1000));
}

static void test_peer_phase(void)
{
    rawpeer_t rp;
    p2p_server_stats_t st0, st;
    p2p_server_get_stats(srv, &st0);
    /* a frame announcing 2 MiB: only its header is sent */
    CHECK(connect_peer(&rp));
    {
        p2p_rlpx_codec_set_snappy(&rp.codec, false);
        size_t len = 2u << 20, bound = p2p_rlpx_frame_bound(&rp.codec, len), n;
        uint8_t *pl = calloc(1, len), *f = malloc(bound);
        CHECK_OK(p2p_rlpx_frame_encode(&rp.codec, f, bound, &n, 16, pl, len));
        CHECK(rp_write(&rp, f, 32) == 0);
        free(pl);
        free(f);
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);

    /* a snappy bomb: decoded length 16 MiB announced in 5 bytes */
    CHECK(connect_peer(&rp));
    {
        p2p_rlpx_codec_set_snappy(&rp.codec, false); /* send the bytes as they are */
        uint8_t bomb[8] = {0x80, 0x80, 0x80, 0x08, 0x00, 0x00, 0x00, 0x00};
        CHECK_OK(rp_send(&rp, 16, bomb, sizeof bomb));
    }
    CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
    rp_close(&rp);

    /* an unknown message code, and the first code past the last
     * capability's range (echo/1 has codes 16 and 17): no protocol owns
     * them, a breach of the base protocol (rlpx.md 0x02), not a
     * subprotocol's error (0x10) */
    static const uint64_t unknown[] = {40, 18};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK(connect_peer(&rp));
        CHECK_OK(rp_send(&rp, unknown[i], (const uint8_t *)"\xc0", 1));
        CHECK(su_closed_within(&rp, 300) == P2P_DISC_PROTOCOL_ERROR);
        rp_close(&rp);
    }

    CHECK(su_wait_peers(srv, 0, 2000));
    p2p_server_get_stats(srv, &st);
    CHECK(st.frame_errors - st0.frame_errors == 2);
    CHECK(st.proto_errors - st0.proto_errors == 2);
    CHECK(st.disc_sent[P2P_DISC_PROTOCOL_ERROR] - st0.disc_sent[P2P_DISC_PROTOCOL_ERROR] == 4);
    CHECK(st.disc_sent[P2P_DISC_SUBPROTOCOL_ERROR] == st0.disc_sent[P2P_DISC_SUBPROTOCOL_ERROR]);
}

int main(void)
{
    int fds0 = su_count_fds();
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.handshake_timeout_ms = HS_MS;
    cs.max_pending = 2;
    cs.max_msg_size = 1u << 20;
    CHECK_OK(p2p_server_start(&srv, &cs));
    p2p_node_t ns = su_node(srv);
    port = ns.ep.tcp;
    memcpy(srv_pub, ns.pubkey, 64);

    test_rlpx_phase();
    test_hello_phase();
    test_peer_phase();

    /* slots came back: a normal peer still gets in, twice */
    for (int i = 0; i < 2; i++) {
        rawpeer_t rp;
        CHECK(connect_peer(&rp));
        CHECK(su_wait_peers(srv, 1, 2000));
        rp_close(&rp);
        CHECK(su_wait_peers(srv, 0, 2000));
    }
    p2p_server_stats_t st;
    p2p_server_get_stats(srv, &st);
    CHECK(st.net_errors >= 2); /* the two closed normal peers */
    p2p_server_stop(srv);
    CHECK(su_count_fds() == fds0);
    return tu_done("server_hostile");
}
