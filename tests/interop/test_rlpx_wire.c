/*
 * tests/interop/test_rlpx_wire.c: the wire/ RLPx codecs against a real
 * client, @ethereumjs/devp2p (peer.mjs), on loopback, with no actor code:
 * one blocking socket driven by the pure state machines in this thread.
 *
 *   1. ethereumjs dials us: our recipient handshake reads its EIP-8 auth;
 *      Hello both ways; snappy on (both v5); Ping -> Pong; a generic
 *      subprotocol message echoed back (offset 16 from matchProtocols);
 *      its Disconnect(too many peers) decoded (ethereumjs sends it bare and
 *      uncompressed even after a v5 Hello).
 *   2. we dial ethereumjs: initiator handshake, Hello, a Ping it answers,
 *      then our snappy-compressed Disconnect(client quitting), which it
 *      must report with reason 8.
 * Deadlines everywhere (socket timeouts 10 s, event waits 20 s).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "crypto/secp.h"
#include "crypto/util.h"
#include "tests/interop/jspeer.h"
#include "tests/tu.h"
#include "wire/p2p_msg.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

#define T_EVENT 20000
#define MAXMSG (1u << 20)

typedef struct conn {
    int fd;
    p2p_rlpx_codec_t codec;
    uint8_t *rbuf, *wbuf, *scratch;
} conn_t;

static int read_exact(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0) return P2P_EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r <= 0) return P2P_EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void timeouts(int fd)
{
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Runs the handshake on c->fd; reads exactly what the machine asks for. */
static int handshake(conn_t *c, p2p_rlpx_hs_t *hs, p2p_rlpx_secrets_t *sec)
{
    const uint8_t *pkt;
    size_t n, used;
    uint8_t in[P2P_RLPX_HS_PKT_MAX];
    int rc;
    if (hs->role == P2P_RLPX_INITIATOR) {
        if ((rc = p2p_rlpx_hs_make_auth(hs, &pkt, &n)) || (rc = write_all(c->fd, pkt, n)))
            return rc;
    }
    do {
        size_t need = p2p_rlpx_hs_need(hs);
        if ((rc = read_exact(c->fd, in, need))) return rc;
        rc = p2p_rlpx_hs_feed(hs, &used, in, need);
    } while (rc == P2P_EMORE);
    if (rc) return rc;
    if (hs->role == P2P_RLPX_RECIPIENT) {
        if ((rc = p2p_rlpx_hs_make_ack(hs, &pkt, &n)) || (rc = write_all(c->fd, pkt, n))) return rc;
    }
    if ((rc = p2p_rlpx_hs_secrets(hs, sec))) return rc;
    return p2p_rlpx_codec_init(&c->codec, sec, MAXMSG);
}

static int send_msg(conn_t *c, uint64_t code, const uint8_t *p, size_t n)
{
    size_t flen;
    int rc = p2p_rlpx_frame_encode(&c->codec, c->wbuf, 2 * MAXMSG, &flen, code, p, n);
    return rc ? rc : write_all(c->fd, c->wbuf, flen);
}

static int recv_msg(conn_t *c, p2p_rlpx_msg_t *m)
{
    for (;;) {
        size_t need = p2p_rlpx_dec_need(&c->codec);
        int rc = read_exact(c->fd, c->rbuf, need);
        if (rc) return rc;
        rc = p2p_rlpx_dec_step(&c->codec, m, c->rbuf, need, c->scratch, MAXMSG);
        if (rc != P2P_EMORE) return rc;
    }
}

/* Receives until a message other than Ping (answered with Pong). */
static int recv_skip_ping(conn_t *c, p2p_rlpx_msg_t *m)
{
    for (;;) {
        int rc = recv_msg(c, m);
        if (rc || m->code != P2P_MSG_PING) return rc;
        rc = send_msg(c, P2P_MSG_PONG, p2p_ping_payload, 1);
        if (rc) return rc;
    }
}

static p2p_hello_t our_hello, their_hello;

/* Hello exchange; checks theirs against the handshake key; snappy on. */
static void hellos(conn_t *c, const uint8_t our_pub[64], const uint8_t remote_pub[64])
{
    uint8_t buf[P2P_HELLO_MAX];
    size_t n;
    memset(&our_hello, 0, sizeof our_hello);
    our_hello.version = P2P_BASE_VERSION;
    strcpy(our_hello.name, "devp2p-c/wiretest");
    our_hello.name_len = strlen(our_hello.name);
    our_hello.ncaps = 1;
    strcpy(our_hello.caps[0].name, "tst");
    our_hello.caps[0].name_len = 3;
    our_hello.caps[0].version = 1;
    memcpy(our_hello.id, our_pub, 64);
    CHECK_OK(p2p_hello_encode(buf, sizeof buf, &n, &our_hello));
    CHECK_OK(send_msg(c, P2P_MSG_HELLO, buf, n));
    p2p_rlpx_msg_t m;
    CHECK_OK(recv_msg(c, &m));
    CHECK(m.code == P2P_MSG_HELLO);
    CHECK_OK(p2p_hello_decode(&their_hello, m.payload, m.len));
    CHECK(their_hello.version == 5);
    CHECK_MEM(their_hello.id, remote_pub, 64);
    p2p_proto_t local[] = {{"tst", 1, 8}};
    p2p_proto_match_t pm[1];
    size_t nm = 0;
    CHECK_OK(p2p_caps_match(pm, &nm, local, 1, their_hello.caps, their_hello.ncaps));
    CHECK(nm == 1 && pm[0].offset == 16);
    p2p_rlpx_codec_set_snappy(&c->codec, their_hello.version >= 5);
}

static void pub_hex(char out[129], const uint8_t pub[64])
{
    p2p_hex_encode(out, pub, 64);
}

static void inbound(conn_t *c, const uint8_t key[32], const uint8_t pub[64])
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0 &&
          getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    char hex[129], enode[256];
    pub_hex(hex, pub);
    snprintf(enode, sizeof enode, "enode://%s@127.0.0.1:%d", hex, ntohs(sa.sin_port));
    jspeer_t *js = NULL;
    CHECK_OK(jspeer_start(&js, T_EVENT, "--mode", "rlpx", "--caps", "tst/1:8", "--echo", "--stdin",
                          "--no-ping", "--dial", enode, "--duration", "60", NULL));
    if (!js) {
        close(lfd);
        return;
    }
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    CHECK(poll(&pfd, 1, T_EVENT) == 1);
    c->fd = accept(lfd, NULL, NULL);
    close(lfd);
    CHECK(c->fd >= 0);
    if (c->fd < 0) goto out;
    timeouts(c->fd);

    static p2p_rlpx_hs_t hs;
    p2p_rlpx_secrets_t sec;
    CHECK_OK(p2p_rlpx_hs_init(&hs, P2P_RLPX_RECIPIENT, key, NULL));
    CHECK_OK(handshake(c, &hs, &sec));
    CHECK(hs.remote_eip8 && hs.remote_version >= 4);
    uint8_t js_pub[64];
    CHECK(p2p_hex_decode(js_pub, 64, jspeer_id(js), 128) == 64);
    CHECK_MEM(sec.remote_pub, js_pub, 64);
    p2p_rlpx_hs_wipe(&hs);
    p2p_rlpx_secrets_wipe(&sec);
    if (tu_failures) goto out;

    hellos(c, pub, js_pub);
    CHECK(jspeer_wait(js, 0, T_EVENT, "peer:added", "id", hex) != NULL);

    /* Ping -> Pong (compressed both ways) */
    p2p_rlpx_msg_t m;
    CHECK_OK(send_msg(c, P2P_MSG_PING, p2p_ping_payload, 1));
    CHECK_OK(recv_skip_ping(c, &m));
    CHECK(m.code == P2P_MSG_PONG);

    /* generic subprotocol at offset 16, echoed back; one small, one large */
    static uint8_t payload[200000];
    static const size_t sizes[] = {7, sizeof payload};
    for (int i = 0; i < 2; i++) {
        size_t len = sizes[i];
        tu_rand_bytes(payload, len);
        /* an RLP byte string so any decoding on their side is happy */
        if (len < 56) {
            payload[0] = (uint8_t)(0x80 + len - 1);
        } else {
            payload[0] = 0xba; /* 3-byte length */
            payload[1] = (uint8_t)((len - 4) >> 16);
            payload[2] = (uint8_t)((len - 4) >> 8);
            payload[3] = (uint8_t)(len - 4);
        }
        size_t mark = jspeer_mark(js);
        CHECK_OK(send_msg(c, 16 + 3, payload, len));
        CHECK_OK(recv_skip_ping(c, &m));
        CHECK(m.code == 16 + 3 && m.len == len);
        if (m.len == len) CHECK_MEM(m.payload, payload, len);
        CHECK(jspeer_wait(js, mark, T_EVENT, "msg", "code", "3") != NULL);
    }

    /* their Disconnect(too many peers) */
    CHECK_OK(jspeer_cmd(js, "disconnect all 4"));
    CHECK_OK(recv_skip_ping(c, &m));
    CHECK(m.code == P2P_MSG_DISC);
    uint8_t reason = 0;
    CHECK_OK(p2p_disc_decode(&reason, m.payload, m.len, true));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    CHECK(jspeer_count(js, 0, "error", NULL, NULL) == 0);
out:
    if (tu_failures) jspeer_dump(js, "js-dialer");
    if (c->fd >= 0) close(c->fd);
    p2p_rlpx_codec_wipe(&c->codec);
    jspeer_stop(js, 5000);
    jspeer_free(js);
}

static void outbound(conn_t *c, const uint8_t key[32], const uint8_t pub[64])
{
    jspeer_t *js = NULL;
    CHECK_OK(jspeer_start(&js, T_EVENT, "--mode", "rlpx", "--caps", "tst/1:8", "--stdin",
                          "--no-ping", "--duration", "60", NULL));
    if (!js) return;
    uint8_t js_pub[64];
    CHECK(p2p_hex_decode(js_pub, 64, jspeer_id(js), 128) == 64);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)jspeer_tcp_port(js))};
    timeouts(c->fd);
    CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0);

    static p2p_rlpx_hs_t hs;
    p2p_rlpx_secrets_t sec;
    CHECK_OK(p2p_rlpx_hs_init(&hs, P2P_RLPX_INITIATOR, key, js_pub));
    CHECK_OK(handshake(c, &hs, &sec));
    CHECK(hs.remote_eip8);
    p2p_rlpx_hs_wipe(&hs);
    p2p_rlpx_secrets_wipe(&sec);
    if (tu_failures) goto out;
    hellos(c, pub, js_pub);
    char hex[129];
    pub_hex(hex, pub);
    CHECK(jspeer_wait(js, 0, T_EVENT, "peer:added", "id", hex) != NULL);
    p2p_rlpx_msg_t m;
    CHECK_OK(send_msg(c, P2P_MSG_PING, p2p_ping_payload, 1));
    CHECK_OK(recv_skip_ping(c, &m));
    CHECK(m.code == P2P_MSG_PONG);
    uint8_t d[3];
    size_t n;
    CHECK_OK(p2p_disc_encode(d, sizeof d, &n, P2P_DISC_QUITTING));
    CHECK_OK(send_msg(c, P2P_MSG_DISC, d, n));
    CHECK(jspeer_wait(js, 0, T_EVENT, "disconnect:in", "reason", "8") != NULL);
    CHECK(jspeer_count(js, 0, "error", NULL, NULL) == 0);
out:
    if (tu_failures) jspeer_dump(js, "js-listener");
    close(c->fd);
    p2p_rlpx_codec_wipe(&c->codec);
    jspeer_stop(js, 5000);
    jspeer_free(js);
}

int main(void)
{
    tu_seed(0x1e7e0);
    CHECK_OK(jspeer_available());
    if (tu_failures) return tu_done("rlpx_wire");
    uint8_t key[32], pub[64];
    CHECK_OK(p2p_secp_keygen(key));
    CHECK_OK(p2p_secp_pubkey(pub, key));
    conn_t c = {.fd = -1};
    c.rbuf = malloc(2 * MAXMSG);
    c.wbuf = malloc(2 * MAXMSG);
    c.scratch = malloc(MAXMSG);
    if (!c.rbuf || !c.wbuf || !c.scratch) return 1;
    inbound(&c, key, pub);
    c.fd = -1;
    if (!tu_failures) outbound(&c, key, pub);
    free(c.rbuf);
    free(c.wbuf);
    free(c.scratch);
    return tu_done("rlpx_wire");
}
