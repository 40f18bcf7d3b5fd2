/*
 * tests/fuzz/fuzz_rlpx_session.c: libFuzzer target for an RLPx session
 * after a real handshake, read the way the connection thread
 * (actors/srv_peer.c) reads it.
 *
 * Setup (once per process): an EIP-8 handshake between two static keys in
 * this process (B dials A; the auth and ack go through p2p_rlpx_hs_feed in
 * small pieces); the secrets of both sides are kept.  Each input starts two
 * fresh codecs from those secrets: B is the remote, A is our side.
 *
 * The input is a script for B's byte stream: each step is an opcode byte
 * followed by the bytes it reads (zeros once the input runs out):
 *   0 a message (code, payload) sealed by B's codec as it stands;
 *   1 the same with B's snappy setting inverted for this frame;
 *   2 raw bytes (garbage between frames: the MAC check must catch it);
 *   3 a Hello built from fuzzer fields (version, name, caps from a table of
 *     real and odd ones, port, ID: B's key, A's key, or fuzzer bytes) and
 *     sealed; B then turns snappy on or not, as the fuzzer says;
 *   4 a Ping; 5 a Disconnect (list or bare reason);
 *   6 a subprotocol message at code 16 + k (eth, snap or past them);
 *   7 the read split: the sizes of the successive reads A makes.
 * A then reads the stream in pieces of the chosen sizes (a size of 0 is an
 * idle wake: the read buffer may shrink) and runs the peer thread's steps:
 * the Hello phase (frames limited to 2 KiB + 16; Disconnect, a non-Hello,
 * a bad Hello, a wrong identity each end it with the reason the thread
 * uses; snappy after a v5+ Hello; capability matching), then the base
 * protocol loop (Ping -> Pong, Disconnect, late Hello and unknown base
 * codes ignored, base messages over 2 KiB refused, subprotocol codes routed
 * by offset, unknown codes a subprotocol error), with the read buffer and
 * snappy scratch grown as srv_peer.c grows them.
 *
 * Properties: no crash or sanitizer report; the read buffer stays within
 * twice the largest frame the phase allows; every message delivered to a
 * subprotocol lies in its code range; A's own output (its Hello, one Pong
 * per Ping, the closing Disconnect) decodes on B's side to exactly that
 * sequence, with the reason A chose.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/checks.h"
#include "fuzz_hs_common.h"
#include "wire/p2p_msg.h"
#include "wire/rlp.h"
#include "wire/rlpx_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STREAM_MAX (1u << 20)
#define OUT_MAX (1u << 20)
#define MAX_STEPS 256
#define MAX_SPLIT 16
#define RBUF_INIT 8192u        /* srv_peer.c P2P__RBUF_INIT */
#define RBUF_KEEP (64u * 1024) /* srv_peer.c P2P__RBUF_KEEP */
#define MSGS_PER_WAKE 64       /* srv_peer.c P2P__MSGS_PER_WAKE */
#define HELLO_FRAME_MAX (P2P_HELLO_MAX + 16)

static const p2p_proto_t local[] = {{"eth", 68, 17}, {"snap", 1, 8}, {"eth", 67, 17}};

static struct {
    int ready;
    p2p_rlpx_secrets_t sa, sb; /* A: us (recipient), B: the remote (initiator) */
    uint8_t id_a[32], id_b[32];
    uint8_t hello_a[512];
    size_t hello_a_len;
} g;

/* ---- setup: the real handshake ---- */

static void feed_all(p2p_rlpx_hs_t *hs, const uint8_t *pkt, size_t n)
{
    size_t off = 0, step = 7; /* odd pieces, as a socket may deliver them */
    int rc = P2P_EMORE;
    while (off < n) {
        size_t take = n - off < step ? n - off : step, used = 0;
        rc = p2p_rlpx_hs_feed(hs, &used, pkt + off, take);
        off += used;
        if (rc != P2P_EMORE) break;
        step = step * 3 % 61 + 1;
    }
    if (rc != 0 || off != n) abort();
}

static void setup(void)
{
    if (g.ready) return;
    fz_keys();
    static p2p_rlpx_hs_t ha, hb;
    static const uint8_t eph_b[32] = {0x5e, 1, 2, 3}, nonce_a[32] = {0xa0}, nonce_b[32] = {0xb0};
    const uint8_t *pkt;
    size_t n;
    if (p2p_rlpx_hs_init(&hb, P2P_RLPX_INITIATOR, fz_key_b, fz_pub_a) ||
        p2p_rlpx_hs_init(&ha, P2P_RLPX_RECIPIENT, fz_key_a, NULL) ||
        p2p_rlpx_hs_test_set_ephemeral(&hb, eph_b, nonce_b) ||
        p2p_rlpx_hs_test_set_ephemeral(&ha, fz_eph, nonce_a))
        abort();
    if (p2p_rlpx_hs_make_auth(&hb, &pkt, &n)) abort();
    feed_all(&ha, pkt, n);
    if (p2p_rlpx_hs_make_ack(&ha, &pkt, &n)) abort();
    feed_all(&hb, pkt, n);
    if (p2p_rlpx_hs_secrets(&ha, &g.sa) || p2p_rlpx_hs_secrets(&hb, &g.sb)) abort();
    if (memcmp(g.sa.remote_pub, fz_pub_b, 64) || memcmp(g.sb.remote_pub, fz_pub_a, 64) ||
        memcmp(g.sa.aes, g.sb.aes, 32) || memcmp(g.sa.mac, g.sb.mac, 32))
        abort();
    p2p_rlpx_hs_wipe(&ha);
    p2p_rlpx_hs_wipe(&hb);
    p2p_node_id(g.id_a, fz_pub_a);
    p2p_node_id(g.id_b, fz_pub_b);
    static p2p_hello_t h;
    memset(&h, 0, sizeof h);
    h.version = P2P_BASE_VERSION;
    memcpy(h.name, "devp2p-c/fuzz", 13);
    h.name_len = 13;
    for (size_t i = 0; i < 3; i++) {
        h.caps[i].name_len = strlen(local[i].name);
        memcpy(h.caps[i].name, local[i].name, h.caps[i].name_len);
        h.caps[i].version = local[i].version;
    }
    h.ncaps = 3;
    h.listen_port = 30303;
    memcpy(h.id, fz_pub_a, 64);
    if (p2p_hello_encode(g.hello_a, sizeof g.hello_a, &g.hello_a_len, &h)) abort();
    g.ready = 1;
}

/* ---- input cursor ---- */

typedef struct cur {
    const uint8_t *p, *end;
} cur_t;

static uint8_t u8(cur_t *c)
{
    return c->p < c->end ? *c->p++ : 0;
}

static uint16_t u16(cur_t *c)
{
    return (uint16_t)(u8(c) << 8 | u8(c));
}

/* A run of input bytes: [len16][bytes], clipped to what is left. */
static const uint8_t *chunk(cur_t *c, size_t *n)
{
    size_t len = u16(c), left = (size_t)(c->end - c->p);
    if (len > left) len = left;
    const uint8_t *p = c->p;
    c->p += len;
    *n = len;
    return p;
}

/* ---- B: the remote's stream ---- */

typedef struct remote {
    p2p_rlpx_codec_t codec;
    uint8_t *s;
    size_t len;
    bool full;
} remote_t;

static void send_msg(remote_t *b, uint64_t code, const uint8_t *pl, size_t n)
{
    if (b->full) return;
    size_t bound = p2p_rlpx_frame_bound(&b->codec, n), out;
    if (bound > STREAM_MAX - b->len) {
        b->full = true;
        return;
    }
    if (p2p_rlpx_frame_encode(&b->codec, b->s + b->len, STREAM_MAX - b->len, &out, code, pl, n))
        abort();
    b->len += out;
}

static void send_raw(remote_t *b, const uint8_t *p, size_t n)
{
    if (b->full || n > STREAM_MAX - b->len) {
        b->full = true;
        return;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
}

static void send_hello(remote_t *b, cur_t *c)
{
    static const struct {
        const char *name;
        uint32_t version;
    } caps[] = {{"eth", 66}, {"eth", 67},          {"eth", 68},
                {"snap", 1}, {"les", 4},           {"eth", 0},
                {"wit", 0},  {"eth", 0xffffffffu}, {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1}};
    static p2p_hello_t h;
    static uint8_t pl[P2P_HELLO_MAX + 64];
    memset(&h, 0, sizeof h);
    uint8_t f = u8(c);
    h.version = f % 8;
    h.name_len = u8(c) % 48;
    for (size_t i = 0; i < h.name_len; i++) h.name[i] = (char)u8(c);
    h.ncaps = u8(c) % 6;
    for (size_t i = 0; i < h.ncaps; i++) {
        uint8_t k = u8(c) % (sizeof caps / sizeof caps[0]);
        h.caps[i].name_len = strlen(caps[k].name);
        memcpy(h.caps[i].name, caps[k].name, h.caps[i].name_len);
        h.caps[i].version = caps[k].version;
    }
    h.listen_port = u16(c);
    switch ((f >> 3) % 4) {
    case 0:
    case 1:
        memcpy(h.id, fz_pub_b, 64);
        break;
    case 2:
        memcpy(h.id, fz_pub_a, 64); /* a key that is not the handshake's */
        break;
    default:
        for (int i = 0; i < 64; i++) h.id[i] = u8(c);
        break;
    }
    size_t n;
    if (p2p_hello_encode(pl, sizeof pl, &n, &h)) return;
    send_msg(b, P2P_MSG_HELLO, pl, n);
    p2p_rlpx_codec_set_snappy(&b->codec, (f & 0x20) != 0);
}

static void build_stream(remote_t *b, cur_t *c, size_t *split, size_t *nsplit)
{
    static const uint8_t ping[1] = {0xc0};
    for (int steps = 0; steps < MAX_STEPS && c->p < c->end && !b->full; steps++) {
        uint8_t op = u8(c);
        const uint8_t *p;
        size_t n;
        switch (op % 8) {
        case 0:
        case 1: {
            uint64_t code = u8(c);
            if (code == 0xff)
                for (int i = 0; i < 8; i++) code = code << 8 | u8(c);
            p = chunk(c, &n);
            bool snappy = b->codec.snappy;
            if (op % 8 == 1) p2p_rlpx_codec_set_snappy(&b->codec, !snappy);
            send_msg(b, code, p, n);
            p2p_rlpx_codec_set_snappy(&b->codec, snappy);
            break;
        }
        case 2:
            p = chunk(c, &n);
            send_raw(b, p, n);
            break;
        case 3:
            send_hello(b, c);
            break;
        case 4:
            send_msg(b, P2P_MSG_PING, ping, sizeof ping);
            break;
        case 5: {
            uint8_t r = u8(c), pl[4];
            size_t pn = 0;
            if (op & 0x80) { /* a bare reason */
                if (r == 0 || r >= 0x80) pl[pn++] = r == 0 ? 0x80 : 0x81;
                if (r) pl[pn++] = r;
            } else if (p2p_disc_encode(pl, sizeof pl, &pn, r)) {
                abort();
            }
            send_msg(b, P2P_MSG_DISC, pl, pn);
            break;
        }
        case 6: {
            uint64_t code = P2P_BASE_LENGTH + u8(c) % 48;
            p = chunk(c, &n);
            send_msg(b, code, p, n);
            break;
        }
        default:
            *nsplit = 1 + u8(c) % MAX_SPLIT;
            for (size_t i = 0; i < *nsplit; i++) split[i] = u16(c);
            break;
        }
    }
}

/* ---- A: our side, as srv_peer.c's io layer ---- */

typedef struct local {
    p2p_rlpx_codec_t codec;
    size_t max_msg;
    uint8_t *rbuf;
    size_t rcap, roff, rlen;
    uint8_t *scratch;
    size_t scap;
    uint8_t *out; /* what A sends */
    size_t outlen;
    size_t pongs;
    bool snappy_out; /* A's frames after its Hello are compressed */
} local_t;

static int rbuf_reserve(local_t *a, size_t need)
{
    size_t unread = a->rlen - a->roff;
    if (a->rcap - a->roff >= need && a->rcap > a->rlen) return 0;
    if (a->roff) {
        memmove(a->rbuf, a->rbuf + a->roff, unread);
        a->rlen = unread;
        a->roff = 0;
    }
    if (a->rcap >= need && a->rcap > a->rlen) return 0;
    size_t ncap = a->rcap ? a->rcap : RBUF_INIT;
    while (ncap < need || ncap <= a->rlen) ncap *= 2;
    uint8_t *nb = realloc(a->rbuf, ncap);
    if (!nb) return P2P_ENOMEM;
    a->rbuf = nb;
    a->rcap = ncap;
    return 0;
}

static void rbuf_shrink(local_t *a)
{
    size_t unread = a->rlen - a->roff;
    if (a->rcap <= RBUF_KEEP || unread > RBUF_INIT) return;
    memmove(a->rbuf, a->rbuf + a->roff, unread);
    a->roff = 0;
    a->rlen = unread;
    uint8_t *nb = realloc(a->rbuf, RBUF_INIT);
    if (nb) {
        a->rbuf = nb;
        a->rcap = RBUF_INIT;
    }
    if (a->scap > RBUF_KEEP) {
        free(a->scratch);
        a->scratch = NULL;
        a->scap = 0;
    }
}

static int next_msg(local_t *a, p2p_rlpx_msg_t *msg, size_t frame_max)
{
    for (;;) {
        size_t need = p2p_rlpx_dec_need(&a->codec);
        if (a->rlen - a->roff < need) {
            int rc = rbuf_reserve(a, need);
            return rc ? rc : P2P_EMORE;
        }
        bool body = a->codec.rstate == 1;
        if (body && a->codec.snappy) {
            size_t want = a->codec.fsize * 22 + 64;
            if (want > a->max_msg) want = a->max_msg;
            if (a->scap < want) {
                uint8_t *ns = realloc(a->scratch, want);
                if (!ns) return P2P_ENOMEM;
                a->scratch = ns;
                a->scap = want;
            }
        }
        int rc = p2p_rlpx_dec_step(&a->codec, msg, a->rbuf + a->roff, need, a->scratch, a->scap);
        if (rc == 0) {
            a->roff += need;
            return 0;
        }
        if (rc != P2P_EMORE) return rc;
        a->roff += need;
        if (a->codec.fsize > frame_max) return P2P_ETOOBIG;
    }
}

static void put_msg(local_t *a, uint64_t code, const uint8_t *pl, size_t n)
{
    size_t out;
    if (p2p_rlpx_frame_bound(&a->codec, n) > OUT_MAX - a->outlen) abort();
    if (p2p_rlpx_frame_encode(&a->codec, a->out + a->outlen, OUT_MAX - a->outlen, &out, code, pl,
                              n))
        abort();
    a->outlen += out;
}

typedef struct outcome {
    bool done, remote;
    uint8_t reason;
} outcome_t;

static void end(outcome_t *o, uint8_t reason, bool remote)
{
    o->done = true;
    o->reason = reason;
    o->remote = remote;
}

/* do_hello's steps after a read.  Out: the matched protocols. */
static void on_hello(local_t *a, outcome_t *o, int rc, const p2p_rlpx_msg_t *msg,
                     p2p_proto_match_t *match, size_t *nmatch)
{
    static p2p_hello_t h;
    if (rc == P2P_ETOOBIG || rc == P2P_EBADMAC || rc == P2P_EDECODE) {
        end(o, P2P_DISC_PROTOCOL_ERROR, false);
        return;
    }
    if (rc) abort(); /* nothing else can fail in memory */
    if (msg->code == P2P_MSG_DISC) {
        uint8_t r;
        if (p2p_disc_decode(&r, msg->payload, msg->len, false) && r != P2P_DISC_INVALID) abort();
        end(o, r, true);
        return;
    }
    if (msg->code != P2P_MSG_HELLO) {
        end(o, P2P_DISC_PROTOCOL_ERROR, false);
        return;
    }
    rc = p2p_hello_decode(&h, msg->payload, msg->len);
    if (rc) {
        end(o, rc == P2P_EBADKEY ? P2P_DISC_INVALID_IDENTITY : P2P_DISC_PROTOCOL_ERROR, false);
        return;
    }
    uint8_t r;
    if (!p2p_checks_identity(&r, h.id, 64, g.id_b)) {
        if (memcmp(h.id, fz_pub_b, 64) == 0) abort();
        end(o, r, false);
        return;
    }
    if (h.version >= 5) {
        p2p_rlpx_codec_set_snappy(&a->codec, true);
        a->snappy_out = true;
    }
    if (p2p_caps_match(match, nmatch, local, 3, h.caps, h.ncaps)) {
        end(o, P2P_DISC_PROTOCOL_ERROR, false);
        return;
    }
}

/* handle_msg's steps. */
static void on_msg(local_t *a, outcome_t *o, const p2p_rlpx_msg_t *msg,
                   const p2p_proto_match_t *match, size_t nmatch)
{
    if (msg->code < P2P_BASE_LENGTH) {
        if (msg->len > P2P_BASE_MAX_MSG && msg->code != P2P_MSG_DISC) {
            end(o, P2P_DISC_PROTOCOL_ERROR, false);
            return;
        }
        if (msg->code == P2P_MSG_PING) {
            put_msg(a, P2P_MSG_PONG, p2p_ping_payload, sizeof p2p_ping_payload);
            a->pongs++;
        } else if (msg->code == P2P_MSG_DISC) {
            uint8_t r;
            if (p2p_disc_decode(&r, msg->payload, msg->len, a->codec.snappy) &&
                r != P2P_DISC_INVALID)
                abort();
            end(o, r, true);
        }
        return;
    }
    for (size_t i = 0; i < nmatch; i++) {
        const p2p_proto_t *p = &local[match[i].proto];
        uint64_t off = match[i].offset;
        if (msg->code < off || msg->code >= off + p->length) continue;
        if (msg->code - off >= p->length || msg->len > a->max_msg) abort();
        /* the test protocol refuses payloads starting with 0xee */
        if (msg->len && msg->payload[0] == 0xee) end(o, P2P_DISC_SUBPROTOCOL_ERROR, false);
        return;
    }
    end(o, P2P_DISC_SUBPROTOCOL_ERROR, false);
}

/* Runs A over B's stream; returns the outcome. */
static outcome_t run_local(local_t *a, const remote_t *b, const size_t *split, size_t nsplit)
{
    outcome_t o = {0};
    p2p_proto_match_t match[3];
    size_t nmatch = 0, fed = 0, si = 0;
    bool hello_done = false;
    put_msg(a, P2P_MSG_HELLO, g.hello_a, g.hello_a_len);
    while (!o.done) {
        /* one wake: up to MSGS_PER_WAKE messages from what is buffered */
        int handled = 0;
        for (; handled < MSGS_PER_WAKE && !o.done; handled++) {
            size_t frame_max = hello_done ? p2p_rlpx_frame_limit(&a->codec) : HELLO_FRAME_MAX;
            p2p_rlpx_msg_t msg;
            int rc = next_msg(a, &msg, frame_max);
            if (rc == P2P_EMORE) break;
            if (a->rcap > 2 * (frame_max + 32) + RBUF_INIT) abort();
            if (!hello_done) {
                on_hello(a, &o, rc, &msg, match, &nmatch);
                hello_done = true;
            } else if (rc) {
                if (rc != P2P_ETOOBIG && rc != P2P_EBADMAC && rc != P2P_EDECODE) abort();
                end(&o, P2P_DISC_PROTOCOL_ERROR, false);
            } else {
                on_msg(a, &o, &msg, match, nmatch);
            }
        }
        if (o.done) break;
        if (handled == MSGS_PER_WAKE) continue; /* the next wake decodes first */
        if (fed == b->len) break;               /* idle: a read timeout ends it */
        size_t want = split[si++ % nsplit];
        if (want == 0) { /* an idle wake */
            rbuf_shrink(a);
            want = 1;
        }
        if (rbuf_reserve(a, 1)) abort();
        size_t room = a->rcap - a->rlen;
        if (want > room) want = room;
        if (want > b->len - fed) want = b->len - fed;
        memcpy(a->rbuf + a->rlen, b->s + fed, want);
        a->rlen += want;
        fed += want;
    }
    /* the thread's end: Disconnect unless the remote sent one or the
     * reason is a network error (then it just closes) */
    if (o.done && !o.remote && o.reason != P2P_DISC_NETWORK_ERROR) {
        uint8_t pl[4];
        size_t pn;
        if (p2p_disc_encode(pl, sizeof pl, &pn, o.reason)) abort();
        put_msg(a, P2P_MSG_DISC, pl, pn);
    }
    return o;
}

/* B decodes everything A sent: Hello, the Pongs, the Disconnect. */
static void check_output(const local_t *a, const outcome_t *o)
{
    static uint8_t scratch[4096];
    static p2p_hello_t h;
    p2p_rlpx_codec_t b;
    if (p2p_rlpx_codec_init(&b, &g.sb, 1u << 16)) abort();
    size_t off = 0, frames = 0, pongs = 0;
    bool disc = false;
    while (off < a->outlen) {
        p2p_rlpx_msg_t m;
        size_t need = p2p_rlpx_dec_need(&b);
        if (need == 0 || need > a->outlen - off) abort();
        int rc = p2p_rlpx_dec_step(&b, &m, a->out + off, need, scratch, sizeof scratch);
        off += need;
        if (rc == P2P_EMORE) continue;
        if (rc || disc) abort();
        if (frames == 0) {
            if (m.code != P2P_MSG_HELLO || p2p_hello_decode(&h, m.payload, m.len) ||
                memcmp(h.id, fz_pub_a, 64))
                abort();
            p2p_rlpx_codec_set_snappy(&b, a->snappy_out);
        } else if (m.code == P2P_MSG_PONG) {
            if (m.len != 1 || m.payload[0] != 0xc0) abort();
            pongs++;
        } else if (m.code == P2P_MSG_DISC) {
            uint8_t r;
            if (p2p_disc_decode(&r, m.payload, m.len, b.snappy) || r != o->reason) abort();
            disc = true;
        } else {
            abort();
        }
        frames++;
    }
    if (pongs != a->pongs || disc != (o->done && !o->remote && o->reason != P2P_DISC_NETWORK_ERROR))
        abort();
    p2p_rlpx_codec_wipe(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t stream[STREAM_MAX], out[OUT_MAX];
    static const size_t maxes[] = {1u << 16, 1u << 20, P2P_RLPX_FRAME_MAX};
    setup();
    cur_t c = {data, data + size};
    uint8_t flags = u8(&c);
    remote_t b = {.s = stream};
    local_t a = {.out = out, .max_msg = maxes[flags % 3]};
    if (p2p_rlpx_codec_init(&b.codec, &g.sb, P2P_RLPX_FRAME_MAX) ||
        p2p_rlpx_codec_init(&a.codec, &g.sa, a.max_msg))
        abort();
    size_t split[MAX_SPLIT] = {STREAM_MAX}, nsplit = 1;
    build_stream(&b, &c, split, &nsplit);
    outcome_t o = run_local(&a, &b, split, nsplit);
    check_output(&a, &o);
    free(a.rbuf);
    free(a.scratch);
    p2p_rlpx_codec_wipe(&a.codec);
    p2p_rlpx_codec_wipe(&b.codec);
    return 0;
}
