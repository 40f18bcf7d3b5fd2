/*
 * tests/actors/rawpeer.h: a scripted RLPx client for server tests, built
 * on the project's wire code (header-only, static functions).  It dials a
 * loopback port with a blocking socket (receive timeouts through
 * SO_RCVTIMEO), runs the initiator handshake with any key, sends whatever
 * Hello it is told to (wrong identity, no shared capability, ...), reads
 * frames and reports the Disconnect reason the server sends.  Also sends
 * raw bytes for hostile-input tests.  One test thread per rawpeer.
 */
#ifndef P2P_TESTS_RAWPEER_H
#define P2P_TESTS_RAWPEER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "crypto/secp.h"
#include "wire/p2p_msg.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

typedef struct rawpeer {
    int fd;
    uint8_t priv[32], pub[64];
    p2p_rlpx_codec_t codec;
    bool ready;
    uint8_t *buf; /* frame buffer */
    size_t cap;
    uint8_t *scratch;
    size_t scap;
    uint8_t *ra; /* read-ahead: bytes received but not yet consumed, ra[raoff, ralen) */
    size_t raoff, ralen;
} rawpeer_t;

#define RP_READAHEAD 4096

/* Connects to 127.0.0.1:port with a receive buffer of rcvbuf bytes set
 * before the SYN (so the window is small from the start; 0: the
 * default).  Returns 0 or -1. */
static inline int rp_connect_rcvbuf(rawpeer_t *rp, uint16_t port, int rcvbuf)
{
    memset(rp, 0, sizeof *rp);
    rp->cap = 4096;
    rp->buf = malloc(rp->cap);
    rp->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rp->fd < 0 || !rp->buf) return -1;
    if (rcvbuf) (void)setsockopt(rp->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(rp->fd, (struct sockaddr *)&sa, sizeof sa)) return -1;
    int one = 1;
    (void)setsockopt(rp->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* Connects to 127.0.0.1:port.  Returns 0 or -1. */
static inline int rp_connect(rawpeer_t *rp, uint16_t port)
{
    return rp_connect_rcvbuf(rp, port, 0);
}

static inline void rp_close(rawpeer_t *rp)
{
    if (rp->fd >= 0) close(rp->fd);
    rp->fd = -1;
    if (rp->ready) p2p_rlpx_codec_wipe(&rp->codec);
    free(rp->buf);
    free(rp->scratch);
    free(rp->ra);
    rp->buf = rp->scratch = rp->ra = NULL;
}

static inline int rp_write(rawpeer_t *rp, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(rp->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms.  Returns 0, -1 on EOF/error,
 * -2 on timeout.  Each recv takes what the socket holds (up to
 * RP_READAHEAD bytes) and later reads are served from it first, so a
 * reply that arrived in one segment costs one poll and one recv. */
static inline int rp_read(rawpeer_t *rp, uint8_t *p, size_t n, unsigned timeout_ms)
{
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    if (!rp->ra && !(rp->ra = malloc(RP_READAHEAD))) return -1;
    while (n) {
        if (rp->raoff < rp->ralen) {
            size_t k = rp->ralen - rp->raoff < n ? rp->ralen - rp->raoff : n;
            memcpy(p, rp->ra + rp->raoff, k);
            rp->raoff += k;
            p += k;
            n -= k;
            continue;
        }
        uint64_t now = p2p_now_ns();
        if (now >= end) return -2;
        struct pollfd pfd = {.fd = rp->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)((end - now) / P2P_NS_PER_MS) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t r = recv(rp->fd, rp->ra, RP_READAHEAD, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (r <= 0) return -1;
        rp->raoff = 0;
        rp->ralen = (size_t)r;
    }
    return 0;
}

/* True if the server closes the connection (EOF or reset) within
 * timeout_ms without sending anything. */
static inline bool rp_closed_silently(rawpeer_t *rp, unsigned timeout_ms)
{
    uint8_t b;
    return rp_read(rp, &b, 1, timeout_ms) == -1;
}

/* Initiator handshake with our key priv against remote_pub.  Returns 0 or
 * a negative code. */
static inline int rp_handshake(rawpeer_t *rp, const uint8_t priv[32], const uint8_t remote_pub[64],
                               unsigned timeout_ms);

/* As rp_handshake, with our public key pub (of priv) already known. */
static inline int rp_handshake_keyed(rawpeer_t *rp, const uint8_t priv[32], const uint8_t pub[64],
                                     const uint8_t remote_pub[64], unsigned timeout_ms)
{
    memcpy(rp->priv, priv, 32);
    memcpy(rp->pub, pub, 64);
    p2p_rlpx_hs_t *hs = malloc(sizeof *hs);
    p2p_rlpx_secrets_t sec;
    if (!hs) return P2P_ENOMEM;
    int rc = p2p_rlpx_hs_init_keyed(hs, P2P_RLPX_INITIATOR, priv, pub, remote_pub);
    const uint8_t *pkt;
    size_t len;
    if (!rc) rc = p2p_rlpx_hs_make_auth(hs, &pkt, &len);
    if (!rc && rp_write(rp, pkt, len)) rc = P2P_EIO;
    while (!rc) {
        size_t need = p2p_rlpx_hs_need(hs), used = 0;
        uint8_t tmp[P2P_RLPX_HS_PKT_MAX];
        if (need > sizeof tmp) {
            rc = P2P_ETOOBIG;
            break;
        }
        if (rp_read(rp, tmp, need, timeout_ms)) {
            rc = P2P_EIO;
            break;
        }
        rc = p2p_rlpx_hs_feed(hs, &used, tmp, need);
        if (rc == P2P_EMORE) {
            rc = 0;
            continue;
        }
        break;
    }
    if (!rc) rc = p2p_rlpx_hs_secrets(hs, &sec);
    if (!rc) rc = p2p_rlpx_codec_init(&rp->codec, &sec, P2P_RLPX_FRAME_MAX);
    if (!rc) rp->ready = true;
    p2p_rlpx_hs_wipe(hs);
    free(hs);
    p2p_rlpx_secrets_wipe(&sec);
    return rc;
}

static inline int rp_handshake(rawpeer_t *rp, const uint8_t priv[32], const uint8_t remote_pub[64],
                               unsigned timeout_ms)
{
    uint8_t pub[64];
    if (p2p_secp_pubkey(pub, priv)) return P2P_EBADKEY;
    return rp_handshake_keyed(rp, priv, pub, remote_pub, timeout_ms);
}

static inline int rp_send(rawpeer_t *rp, uint64_t code, const uint8_t *payload, size_t len)
{
    size_t bound = p2p_rlpx_frame_bound(&rp->codec, len), n;
    uint8_t *out = malloc(bound);
    if (!out) return P2P_ENOMEM;
    int rc = p2p_rlpx_frame_encode(&rp->codec, out, bound, &n, code, payload, len);
    if (!rc && rp_write(rp, out, n)) rc = P2P_EIO;
    free(out);
    return rc;
}

/* Sends a Hello with the given identity (64 bytes) and capabilities
 * ("name", version pairs). */
static inline int rp_send_hello(rawpeer_t *rp, const uint8_t id64[64], const char *const *names,
                                const uint32_t *versions, size_t ncaps)
{
    p2p_hello_t *h = calloc(1, sizeof *h);
    if (!h) return P2P_ENOMEM;
    h->version = 5;
    memcpy(h->name, "rawpeer", 7);
    h->name_len = 7;
    for (size_t i = 0; i < ncaps; i++) {
        size_t l = strlen(names[i]);
        memcpy(h->caps[i].name, names[i], l);
        h->caps[i].name_len = l;
        h->caps[i].version = versions[i];
    }
    h->ncaps = ncaps;
    memcpy(h->id, id64, 64);
    uint8_t buf[P2P_HELLO_MAX];
    size_t n;
    int rc = p2p_hello_encode(buf, sizeof buf, &n, h);
    free(h);
    if (!rc) rc = rp_send(rp, P2P_MSG_HELLO, buf, n);
    return rc;
}

/* Reads one message.  *payload points into rp's buffers until the next
 * read.  Returns 0, -1 (EOF/error), -2 (timeout) or a codec error. */
static inline int rp_recv(rawpeer_t *rp, uint64_t *code, const uint8_t **payload, size_t *len,
                          unsigned timeout_ms)
{
    p2p_rlpx_msg_t m;
    if (rp->codec.snappy && !rp->scratch) {
        rp->scap = 1u << 20; /* allocated once snappy is on */
        rp->scratch = malloc(rp->scap);
        if (!rp->scratch) return P2P_ENOMEM;
    }
    for (;;) {
        size_t need = p2p_rlpx_dec_need(&rp->codec);
        if (need > rp->cap) {
            uint8_t *nb = realloc(rp->buf, need);
            if (!nb) return P2P_ENOMEM;
            rp->buf = nb;
            rp->cap = need;
        }
        int r = rp_read(rp, rp->buf, need, timeout_ms);
        if (r) return r;
        int rc = p2p_rlpx_dec_step(&rp->codec, &m, rp->buf, need, rp->scratch, rp->scap);
        if (rc == P2P_EMORE) continue;
        if (rc) return rc;
        *code = m.code;
        *payload = m.payload;
        *len = m.len;
        return 0;
    }
}

/* The Hello exchange after the RLPx handshake: sends our Hello (identity
 * rp->pub, the given capabilities), reads the server's and turns snappy
 * on, as both sides do after two v5 Hellos.  0, or -1: the send failed,
 * or no Hello came first within timeout_ms. */
static inline int rp_exchange_hellos(rawpeer_t *rp, const char *const *names,
                                     const uint32_t *versions, size_t ncaps, unsigned timeout_ms)
{
    if (rp_send_hello(rp, rp->pub, names, versions, ncaps)) return -1;
    uint64_t code = 99;
    const uint8_t *p;
    size_t n;
    if (rp_recv(rp, &code, &p, &n, timeout_ms) || code != P2P_MSG_HELLO) return -1;
    p2p_rlpx_codec_set_snappy(&rp->codec, true);
    return 0;
}

/* Reads messages until a Disconnect (turning snappy on after a v5 Hello,
 * answering pings).  Returns the reason (0..255), -1 if the connection
 * closed without one, -2 on timeout.  The timeout is for the whole call,
 * not per message: a peer that keeps sending Pings without ever
 * disconnecting ends it.  *saw_hello tells whether a Hello came first
 * (may be NULL). */
static inline int rp_expect_disconnect(rawpeer_t *rp, bool *saw_hello, unsigned timeout_ms)
{
    if (saw_hello) *saw_hello = false;
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    for (;;) {
        uint64_t code;
        const uint8_t *p;
        size_t n;
        uint64_t now = p2p_now_ns();
        if (now >= end) return -2;
        unsigned left = (unsigned)((end - now + P2P_NS_PER_MS - 1) / P2P_NS_PER_MS);
        int rc = rp_recv(rp, &code, &p, &n, left);
        if (rc) return rc == -2 ? -2 : -1;
        if (code == P2P_MSG_DISC) {
            uint8_t reason;
            if (p2p_disc_decode(&reason, p, n, rp->codec.snappy)) return -1;
            return reason;
        }
        if (code == P2P_MSG_HELLO && !rp->codec.snappy) {
            if (saw_hello) *saw_hello = true;
            p2p_rlpx_codec_set_snappy(&rp->codec, true);
        } else if (code == P2P_MSG_PING) {
            if (rp_send(rp, P2P_MSG_PONG, p2p_ping_payload, 1)) return -1;
        }
    }
}

#endif
