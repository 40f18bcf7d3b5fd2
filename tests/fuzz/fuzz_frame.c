/*
 * tests/fuzz/fuzz_frame.c: libFuzzer target for the RLPx frame decoder,
 * with fixed session secrets.  The first byte selects a mode:
 *   0: the rest is the raw byte stream from the peer (header, body, ...),
 *      decoded frame after frame (mostly MAC failures, plus truncation);
 *   1: the rest is a payload sealed properly by the peer's codec (snappy
 *      per a flag): it must decode to exactly the same message;
 *   2: the rest is a payload sent uncompressed to a receiver that expects
 *      snappy: the decompressor sees arbitrary bytes behind valid MACs;
 *   3: a proper frame with one bit flipped at a chosen position: the
 *      decoder must refuse it with P2P_EBADMAC.
 * Properties: no crash or out-of-bounds access; the limits hold (payload
 * <= max); the checks above.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/rlpx_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXMSG (1u << 16)
#define BUFCAP (1u << 20)

static p2p_rlpx_secrets_t sa, sb;
static uint8_t buf[BUFCAP], scratch[MAXMSG];

static void setup(p2p_rlpx_codec_t *a, p2p_rlpx_codec_t *b)
{
    static int ready;
    if (!ready) {
        memset(sa.aes, 0x11, 32);
        memset(sa.mac, 0x22, 32);
        p2p_keccak_init(&sa.egress_mac);
        p2p_keccak_update(&sa.egress_mac, (const uint8_t *)"egress", 6);
        p2p_keccak_init(&sa.ingress_mac);
        p2p_keccak_update(&sa.ingress_mac, (const uint8_t *)"ingress", 7);
        sb = sa;
        sb.egress_mac = sa.ingress_mac;
        sb.ingress_mac = sa.egress_mac;
        ready = 1;
    }
    if (p2p_rlpx_codec_init(a, &sa, MAXMSG) || p2p_rlpx_codec_init(b, &sb, MAXMSG)) abort();
}

/* Decodes frames from buf[0..n) with b until an error or the end. */
static void drain(p2p_rlpx_codec_t *b, size_t n)
{
    size_t off = 0;
    for (int frames = 0; frames < 64; frames++) {
        size_t need = p2p_rlpx_dec_need(b);
        p2p_rlpx_msg_t m;
        if (n - off < need) {
            if (p2p_rlpx_dec_step(b, &m, buf + off, n - off, scratch, sizeof scratch) != P2P_EMORE)
                abort();
            return;
        }
        int rc = p2p_rlpx_dec_step(b, &m, buf + off, need, scratch, sizeof scratch);
        off += need;
        if (rc == 0 && (m.len > MAXMSG || m.fsize > MAXMSG)) abort();
        if (rc && rc != P2P_EMORE) {
            if (p2p_rlpx_dec_need(b) != 0) abort();
            return;
        }
    }
}

/* Decodes one whole frame of n bytes in buf. */
static int decode_one(p2p_rlpx_codec_t *b, p2p_rlpx_msg_t *m, size_t n)
{
    int rc = p2p_rlpx_dec_step(b, m, buf, n, scratch, sizeof scratch);
    if (rc != P2P_EMORE) return rc;
    size_t need = p2p_rlpx_dec_need(b);
    if (32 + need != n) abort();
    return p2p_rlpx_dec_step(b, m, buf + 32, need, scratch, sizeof scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    p2p_rlpx_codec_t a, b;
    setup(&a, &b);
    uint8_t mode = data[0] % 4, flags = data[1];
    uint64_t code = data[2];
    if (flags & 2) code |= (uint64_t)data[3] << 40;
    const uint8_t *p = data + 4;
    size_t n = size - 4, flen;
    p2p_rlpx_msg_t m;
    switch (mode) {
    case 0:
        p2p_rlpx_codec_set_snappy(&b, flags & 1);
        if (n > BUFCAP) n = BUFCAP;
        memcpy(buf, p, n);
        drain(&b, n);
        break;
    case 1:
        if (n > MAXMSG - 16) n = MAXMSG - 16;
        p2p_rlpx_codec_set_snappy(&a, flags & 1);
        p2p_rlpx_codec_set_snappy(&b, flags & 1);
        if (code == 1) code = 2; /* Disconnect is passed through compressed */
        if (p2p_rlpx_frame_encode(&a, buf, BUFCAP, &flen, code, p, n)) abort();
        if (decode_one(&b, &m, flen)) abort();
        if (m.code != code || m.len != n || (n && memcmp(m.payload, p, n))) abort();
        break;
    case 2:
        if (n > MAXMSG - 16) n = MAXMSG - 16;
        p2p_rlpx_codec_set_snappy(&b, true);
        if (p2p_rlpx_frame_encode(&a, buf, BUFCAP, &flen, code, p, n)) abort();
        if (decode_one(&b, &m, flen) == 0 && (m.len > MAXMSG || m.code != code)) abort();
        break;
    default: {
        if (n < 2) return 0;
        size_t pos = (size_t)p[0] << 8 | p[1];
        p += 2;
        n -= 2;
        if (n > MAXMSG - 16) n = MAXMSG - 16;
        if (p2p_rlpx_frame_encode(&a, buf, BUFCAP, &flen, code, p, n)) abort();
        pos %= flen;
        buf[pos] ^= (uint8_t)(1u << (flags % 8));
        if (decode_one(&b, &m, flen) != P2P_EBADMAC) abort();
        break;
    }
    }
    p2p_rlpx_codec_wipe(&a);
    p2p_rlpx_codec_wipe(&b);
    return 0;
}
