/*
 * tests/wire/test_rlpx_frame.c: the RLPx frame codec between two codecs
 * sharing random secrets: randomised round trips both ways with and without
 * snappy, size-limit edges (empty payload, 16 MiB - 1, the caller's max,
 * max + 1 rejected from the header alone), tampering, truncation, the
 * Disconnect passthrough and CTR continuity across frames.
 */
#include <stdlib.h>

#include "core/err.h"
#include "crypto/keccak.h"
#include "tests/tu.h"
#include "wire/rlpx_frame.h"

static p2p_rlpx_secrets_t sa, sb;

static void make_pair(p2p_rlpx_codec_t *a, p2p_rlpx_codec_t *b, size_t max_a, size_t max_b)
{
    uint8_t seed[64];
    tu_rand_bytes(sa.aes, 32);
    tu_rand_bytes(sa.mac, 32);
    tu_rand_bytes(seed, 64);
    p2p_keccak_init(&sa.egress_mac);
    p2p_keccak_update(&sa.egress_mac, seed, 32);
    p2p_keccak_init(&sa.ingress_mac);
    p2p_keccak_update(&sa.ingress_mac, seed + 32, 32);
    sb = sa;
    sb.egress_mac = sa.ingress_mac;
    sb.ingress_mac = sa.egress_mac;
    CHECK_OK(p2p_rlpx_codec_init(a, &sa, max_a));
    CHECK_OK(p2p_rlpx_codec_init(b, &sb, max_b));
}

/* Feeds a whole frame to dec in two steps; returns the final status. */
static int decode_frame(p2p_rlpx_codec_t *dec, p2p_rlpx_msg_t *m, uint8_t *frame, size_t len,
                        uint8_t *scratch, size_t cap)
{
    size_t need = p2p_rlpx_dec_need(dec);
    if (need != P2P_RLPX_HEADER_LEN) return P2P_ESTATE;
    int rc = p2p_rlpx_dec_step(dec, m, frame, len, scratch, cap);
    if (rc != P2P_EMORE) return rc;
    need = p2p_rlpx_dec_need(dec);
    if (P2P_RLPX_HEADER_LEN + need != len) return P2P_EDECODE;
    return p2p_rlpx_dec_step(dec, m, frame + P2P_RLPX_HEADER_LEN, need, scratch, cap);
}

static uint8_t *frame_buf, *payload_buf, *scratch_buf;
#define BIG (P2P_RLPX_FRAME_MAX + 1024 * 1024)

static void roundtrip(p2p_rlpx_codec_t *enc, p2p_rlpx_codec_t *dec, uint64_t code, size_t len)
{
    size_t flen;
    int rc = p2p_rlpx_frame_encode(enc, frame_buf, BIG, &flen, code, payload_buf, len);
    CHECK_OK(rc);
    if (rc) return;
    CHECK(flen % 16 == 0);
    CHECK(flen <= p2p_rlpx_frame_bound(enc, len));
    p2p_rlpx_msg_t m;
    CHECK_OK(decode_frame(dec, &m, frame_buf, flen, scratch_buf, BIG));
    CHECK(m.code == code);
    CHECK(m.len == len);
    if (m.len == len && len) CHECK_MEM(m.payload, payload_buf, len);
}

static void test_random_roundtrips(void)
{
    p2p_rlpx_codec_t a, b;
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    for (int i = 0; i < 600; i++) {
        bool snappy = i >= 300;
        p2p_rlpx_codec_set_snappy(&a, snappy);
        p2p_rlpx_codec_set_snappy(&b, snappy);
        size_t len = (size_t)(tu_rand() % 5 == 0 ? tu_rand() % 70000 : tu_rand() % 300);
        if (tu_rand() % 2) {
            tu_rand_bytes(payload_buf, len);
        } else {
            memset(payload_buf, (int)(tu_rand() & 0xff), len); /* compressible */
        }
        uint64_t code = tu_rand() % 4 == 0 ? tu_rand() : tu_rand() % 0x90;
        if (snappy && code == 1) code = 2; /* Disconnect passes through raw (tested below) */
        if (tu_rand() % 2)
            roundtrip(&a, &b, code, len);
        else
            roundtrip(&b, &a, code, len);
    }
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);
}

static void test_size_edges(void)
{
    p2p_rlpx_codec_t a, b;
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    /* empty payload, code 0 (rlp 0x80) */
    roundtrip(&a, &b, 0, 0);
    roundtrip(&b, &a, 0x10, 0);
    /* fsize = 16 MiB - 1: code 0x10 (1 byte) + payload 16 MiB - 2 */
    tu_rand_bytes(payload_buf, P2P_RLPX_FRAME_MAX - 1);
    roundtrip(&a, &b, 0x10, P2P_RLPX_FRAME_MAX - 1);
    /* one more byte cannot be encoded */
    size_t flen;
    CHECK_ERR(
        p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf, P2P_RLPX_FRAME_MAX),
        P2P_ETOOBIG);
    CHECK_ERR(p2p_rlpx_frame_seal(&a, frame_buf, BIG, &flen, P2P_RLPX_FRAME_MAX + 1), P2P_ETOOBIG);
    /* the codec keeps working after a refused encode */
    roundtrip(&a, &b, 3, 10);
    /* snappy: incompressible payload near the limit grows past it */
    p2p_rlpx_codec_set_snappy(&a, true);
    CHECK_ERR(
        p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf, P2P_RLPX_FRAME_MAX - 1),
        P2P_ETOOBIG);
    /* output capacity too small */
    p2p_rlpx_codec_set_snappy(&a, false);
    CHECK_ERR(p2p_rlpx_frame_encode(&a, frame_buf, 64, &flen, 0x10, payload_buf, 100), P2P_ETOOBIG);
    roundtrip(&a, &b, 3, 10);
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);

    /* the caller's max: exactly max accepted, max + 1 rejected from the header */
    const size_t max = 1000;
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, max);
    tu_rand_bytes(payload_buf, max);
    roundtrip(&a, &b, 0x11, max - 1); /* fsize = 1 + 999 = max */
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x11, payload_buf, max));
    p2p_rlpx_msg_t m;
    CHECK(p2p_rlpx_dec_need(&b) == 32);
    CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, 32, NULL, 0), P2P_ETOOBIG);
    CHECK(p2p_rlpx_dec_need(&b) == 0);
    CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, flen, NULL, 0), P2P_ESTATE);
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);

    /* max = 16 MiB - 1 on the receiver accepts the largest frame */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf,
                                   P2P_RLPX_FRAME_MAX - 1));
    CHECK_OK(p2p_rlpx_dec_step(&b, &m, frame_buf, 32, NULL, 0) == P2P_EMORE ? 0 : -1);
    CHECK(p2p_rlpx_dec_need(&b) == ((P2P_RLPX_FRAME_MAX + 15) & ~15u) + 16);
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);

    /* invalid codec parameters */
    CHECK_ERR(p2p_rlpx_codec_init(&a, &sa, 0), P2P_EINVAL);
    CHECK_ERR(p2p_rlpx_codec_init(&a, &sa, P2P_RLPX_FRAME_MAX + 1), P2P_EINVAL);
    CHECK_ERR(p2p_rlpx_frame_seal(&a, frame_buf, BIG, &flen, 1), P2P_ESTATE);
}

static void test_zero_fsize(void)
{
    /* A frame announcing 0 bytes has no message code: rejected after the
     * header MAC check. */
    p2p_rlpx_codec_t a, b;
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    size_t flen;
    CHECK_OK(p2p_rlpx_frame_seal(&a, frame_buf, BIG, &flen, 0));
    CHECK(flen == 48);
    p2p_rlpx_msg_t m;
    CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, flen, NULL, 0), P2P_EDECODE);
    /* a body that is not a canonical rlp uint code */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    frame_buf[32] = 0x81;
    frame_buf[33] = 0x05; /* non-canonical single byte */
    CHECK_OK(p2p_rlpx_frame_seal(&a, frame_buf, BIG, &flen, 2));
    CHECK_ERR(decode_frame(&b, &m, frame_buf, flen, NULL, 0), P2P_EDECODE);
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    frame_buf[32] = 0xC0; /* a list */
    CHECK_OK(p2p_rlpx_frame_seal(&a, frame_buf, BIG, &flen, 1));
    CHECK_ERR(decode_frame(&b, &m, frame_buf, flen, NULL, 0), P2P_EDECODE);
    /* zero-copy seal of a body written in place */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    frame_buf[32] = 0x05;
    memcpy(frame_buf + 33, "hello", 5);
    CHECK_OK(p2p_rlpx_frame_seal(&a, frame_buf, BIG, &flen, 6));
    CHECK_OK(decode_frame(&b, &m, frame_buf, flen, NULL, 0));
    CHECK(m.code == 5 && m.len == 5 && memcmp(m.payload, "hello", 5) == 0);
    CHECK(m.payload == frame_buf + 33); /* decoded in place */
}

static void test_tamper(void)
{
    for (int where = 0; where < 4; where++) {
        p2p_rlpx_codec_t a, b;
        make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
        roundtrip(&a, &b, 7, 100); /* advance the streams first */
        size_t flen;
        tu_rand_bytes(payload_buf, 100);
        CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 7, payload_buf, 100));
        size_t pos;
        switch (where) {
        case 0:
            pos = tu_rand() % 16;
            break; /* header ciphertext */
        case 1:
            pos = 16 + tu_rand() % 16;
            break; /* header MAC */
        case 2:
            pos = 32 + tu_rand() % 112;
            break; /* body ciphertext (incl. padding) */
        default:
            pos = flen - 1 - tu_rand() % 16;
            break; /* frame MAC */
        }
        frame_buf[pos] ^= (uint8_t)(1u << (tu_rand() % 8));
        p2p_rlpx_msg_t m;
        CHECK_ERR(decode_frame(&b, &m, frame_buf, flen, NULL, 0), P2P_EBADMAC);
        CHECK(p2p_rlpx_dec_need(&b) == 0);
        CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, flen, NULL, 0), P2P_ESTATE);
    }
}

static void test_truncation(void)
{
    p2p_rlpx_codec_t a, b;
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    for (int i = 0; i < 50; i++) {
        size_t len = tu_rand() % 2000, flen;
        tu_rand_bytes(payload_buf, len);
        CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 9, payload_buf, len));
        p2p_rlpx_msg_t m;
        size_t cut = tu_rand() % 32;
        CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, cut, NULL, 0), P2P_EMORE);
        CHECK(p2p_rlpx_dec_need(&b) == 32); /* nothing consumed */
        CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, 32, NULL, 0), P2P_EMORE);
        size_t need = p2p_rlpx_dec_need(&b);
        CHECK(need == flen - 32);
        cut = tu_rand() % need;
        CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf + 32, cut, NULL, 0), P2P_EMORE);
        CHECK(p2p_rlpx_dec_need(&b) == need);
        CHECK_OK(p2p_rlpx_dec_step(&b, &m, frame_buf + 32, need, NULL, 0));
        CHECK(m.code == 9 && m.len == len);
        if (m.len == len && len) CHECK_MEM(m.payload, payload_buf, len);
    }
}

static void test_snappy_limits(void)
{
    p2p_rlpx_codec_t a, b;
    /* receiver max 4096: a compressible 8 KiB payload is small on the wire
     * but its decoded length is refused before decompression */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, 4096);
    p2p_rlpx_codec_set_snappy(&a, true);
    p2p_rlpx_codec_set_snappy(&b, true);
    memset(payload_buf, 'x', 8192);
    roundtrip(&a, &b, 0x10, 4096); /* decoded length exactly max */
    size_t flen;
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf, 4097));
    CHECK(flen < 1024);
    p2p_rlpx_msg_t m;
    CHECK_ERR(decode_frame(&b, &m, frame_buf, flen, scratch_buf, BIG), P2P_ETOOBIG);

    /* scratch smaller than the decoded length */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    p2p_rlpx_codec_set_snappy(&a, true);
    p2p_rlpx_codec_set_snappy(&b, true);
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf, 200));
    CHECK_ERR(decode_frame(&b, &m, frame_buf, flen, scratch_buf, 100), P2P_ETOOBIG);

    /* sender without snappy, receiver with: garbage for the decompressor */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    p2p_rlpx_codec_set_snappy(&b, true);
    memcpy(payload_buf, "\xff\xff\xff\xff\x0f", 5);
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf, 5));
    CHECK_ERR(decode_frame(&b, &m, frame_buf, flen, scratch_buf, BIG), P2P_ETOOBIG);

    /* Disconnect passes through raw in both settings */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    p2p_rlpx_codec_set_snappy(&b, true);
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 1, (const uint8_t *)"\x04", 1));
    CHECK_OK(decode_frame(&b, &m, frame_buf, flen, scratch_buf, BIG));
    CHECK(m.code == 1 && m.len == 1 && m.payload[0] == 4);
    p2p_rlpx_codec_set_snappy(&a, true);
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 1, (const uint8_t *)"\xc1\x04", 2));
    CHECK_OK(decode_frame(&b, &m, frame_buf, flen, scratch_buf, BIG));
    CHECK(m.code == 1 && m.len > 2); /* still compressed: p2p_disc_decode handles it */
}

/* The receive limit with snappy: a payload of rlp(code) + len <= max that
 * does not compress is accepted although its frame exceeds max; the frame
 * bound follows the worst-case snappy size; p2p_rlpx_msg_check matches
 * what a receiver with the same max accepts and what a frame can carry. */
static void test_snappy_frame_limit(void)
{
    p2p_rlpx_codec_t a, b;
    const size_t max = 4096;
    make_pair(&a, &b, max, max);
    CHECK(p2p_rlpx_frame_limit(&b) == max);
    p2p_rlpx_codec_set_snappy(&a, true);
    p2p_rlpx_codec_set_snappy(&b, true);
    size_t lim = p2p_rlpx_frame_limit(&b);
    CHECK(lim > max && lim < 2 * max);
    for (size_t len = max - 8; len < max; len++) {
        tu_rand_bytes(payload_buf, len);
        CHECK_OK(p2p_rlpx_msg_check(max, true, 0x10, len));
        roundtrip(&a, &b, 0x10, len); /* frame > max: incompressible */
        roundtrip(&b, &a, 0x11, len);
    }
    /* rlp(code) + len == max + 1: refused by the check; a frame that
     * claims more than the limit is refused from its header */
    CHECK_ERR(p2p_rlpx_msg_check(max, true, 0x10, max), P2P_ETOOBIG);
    CHECK_ERR(p2p_rlpx_msg_check(max, false, 0x10, max), P2P_ETOOBIG);
    CHECK_OK(p2p_rlpx_msg_check(max, false, 0x10, max - 1));
    CHECK_ERR(p2p_rlpx_msg_check(max, false, 0x80, max - 1), P2P_ETOOBIG); /* 2-byte code */
    CHECK_OK(p2p_rlpx_msg_check(max, false, 0x80, max - 2));
    p2p_rlpx_codec_set_snappy(&a, false);
    tu_rand_bytes(payload_buf, lim);
    size_t flen;
    CHECK_OK(p2p_rlpx_frame_encode(&a, frame_buf, BIG, &flen, 0x10, payload_buf, lim));
    p2p_rlpx_msg_t m;
    CHECK_ERR(p2p_rlpx_dec_step(&b, &m, frame_buf, 32, NULL, 0), P2P_ETOOBIG);
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);

    /* the default limit: the frame bound stays within 24 bits, and a
     * payload is refused when its worst-case compressed frame is not */
    make_pair(&a, &b, P2P_RLPX_FRAME_MAX, P2P_RLPX_FRAME_MAX);
    p2p_rlpx_codec_set_snappy(&b, true);
    CHECK(p2p_rlpx_frame_limit(&b) == P2P_RLPX_FRAME_MAX);
    CHECK_OK(p2p_rlpx_msg_check(P2P_RLPX_FRAME_MAX, false, 0x10, P2P_RLPX_FRAME_MAX - 1));
    CHECK_ERR(p2p_rlpx_msg_check(P2P_RLPX_FRAME_MAX, false, 0x10, P2P_RLPX_FRAME_MAX), P2P_ETOOBIG);
    CHECK_ERR(p2p_rlpx_msg_check(P2P_RLPX_FRAME_MAX, true, 0x10, P2P_RLPX_FRAME_MAX - 1),
              P2P_ETOOBIG);
    CHECK_OK(p2p_rlpx_msg_check(P2P_RLPX_FRAME_MAX, true, 0x10, 13u << 20));
    CHECK_ERR(p2p_rlpx_msg_check(P2P_RLPX_FRAME_MAX, true, 0x10, 14u << 20), P2P_ETOOBIG);
    /* what the check admits, the encoder frames, even incompressible */
    size_t big = 13u << 20;
    tu_rand_bytes(payload_buf, big);
    p2p_rlpx_codec_set_snappy(&a, true);
    roundtrip(&a, &b, 0x10, big);
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);
}

int main(void)
{
    tu_seed(0x5eed0001);
    frame_buf = malloc(BIG);
    payload_buf = malloc(BIG);
    scratch_buf = malloc(BIG);
    if (!frame_buf || !payload_buf || !scratch_buf) return 1;
    test_random_roundtrips();
    test_size_edges();
    test_zero_fsize();
    test_tamper();
    test_truncation();
    test_snappy_limits();
    test_snappy_frame_limit();
    free(frame_buf);
    free(payload_buf);
    free(scratch_buf);
    return tu_done("rlpx_frame");
}
