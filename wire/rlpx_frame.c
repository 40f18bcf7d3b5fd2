/*
 * wire/rlpx_frame.c: RLPx frame codec (see rlpx_frame.h).
 *
 * Owned by the peer thread.  Hot path: no allocation, one pass of
 * AES-256-CTR and one pass of Keccak absorption over the frame, plus the
 * four MAC digests per frame the construction requires.  Limits: fsize <=
 * p2p_rlpx_frame_limit (max_msg without snappy; with snappy the worst-case
 * encoding of a max_msg payload; never above 16 MiB - 1), checked from the
 * header before the body is requested; decoded snappy length <= max_msg,
 * checked before decoding.
 */
#include "wire/rlpx_frame.h"

#include <string.h>

#include <nettle/ctr.h>

#include "crypto/util.h"
#include "wire/rlp.h"
#include "wire/snappy.h"

#define P2P_MSG_CODE_DISC 0x01

static size_t pad16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

int p2p_rlpx_codec_init(p2p_rlpx_codec_t *c, const p2p_rlpx_secrets_t *sec, size_t max_msg)
{
    memset(c, 0, sizeof *c);
    c->rstate = c->wstate = -1;
    if (max_msg == 0 || max_msg > P2P_RLPX_FRAME_MAX) return P2P_EINVAL;
    aes256_set_encrypt_key(&c->enc, sec->aes);
    aes256_set_encrypt_key(&c->dec, sec->aes);
    aes256_set_encrypt_key(&c->mac_aes, sec->mac);
    c->egress = sec->egress_mac;
    c->ingress = sec->ingress_mac;
    c->max_msg = max_msg;
    c->rstate = c->wstate = 0;
    return 0;
}

void p2p_rlpx_codec_set_snappy(p2p_rlpx_codec_t *c, bool on)
{
    c->snappy = on;
}

/* Length of rlp(code) (put_code below). */
static size_t code_len(uint64_t code)
{
    if (code < 0x80) return 1;
    size_t n = 0;
    for (uint64_t v = code; v; v >>= 8) n++;
    return 1 + n;
}

size_t p2p_rlpx_frame_limit(const p2p_rlpx_codec_t *c)
{
    if (!c->snappy) return c->max_msg;
    size_t lim = P2P_RLPX_CODE_MAX_LEN + p2p_snappy_bound(c->max_msg);
    return lim < P2P_RLPX_FRAME_MAX ? lim : P2P_RLPX_FRAME_MAX;
}

int p2p_rlpx_msg_check(size_t max_msg, bool snappy, uint64_t code, size_t len)
{
    size_t k = code_len(code);
    if (len > P2P_RLPX_FRAME_MAX || k + len > max_msg) return P2P_ETOOBIG;
    size_t body = snappy ? p2p_snappy_bound(len) : len;
    if (k + body > P2P_RLPX_FRAME_MAX) return P2P_ETOOBIG;
    return 0;
}

void p2p_rlpx_codec_wipe(p2p_rlpx_codec_t *c)
{
    p2p_wipe(c, sizeof *c);
    c->rstate = c->wstate = -1;
}

size_t p2p_rlpx_frame_wire_len(size_t fsize)
{
    return P2P_RLPX_HEADER_LEN + pad16(fsize) + P2P_RLPX_MAC_LEN;
}

size_t p2p_rlpx_frame_bound(const p2p_rlpx_codec_t *c, size_t len)
{
    size_t body = c->snappy ? p2p_snappy_bound(len) : len;
    return p2p_rlpx_frame_wire_len(P2P_RLPX_CODE_MAX_LEN + body);
}

/* header MAC: seed = H.digest()[:16]; H.update(AES(seed) ^ hct); mac = H.digest()[:16]
 * seed/seed_ok cache H.digest() from the previous frame MAC (same state). */
static void header_mac(const p2p_rlpx_codec_t *c, p2p_keccak_t *h, uint8_t seed[32], bool *seed_ok,
                       uint8_t mac[16], const uint8_t hct[16])
{
    uint8_t d[32], x[16];
    if (!*seed_ok) p2p_keccak_digest(h, seed);
    *seed_ok = false;
    aes256_encrypt(&c->mac_aes, 16, x, seed);
    for (int i = 0; i < 16; i++) x[i] ^= hct[i];
    p2p_keccak_update(h, x, 16);
    p2p_keccak_digest(h, d);
    memcpy(mac, d, 16);
}

/* frame MAC: H.update(fct); seed = H.digest()[:16]; H.update(AES(seed) ^ seed);
 * mac = H.digest()[:16]; that last digest is also the next header's seed. */
static void frame_mac(const p2p_rlpx_codec_t *c, p2p_keccak_t *h, uint8_t seed[32], bool *seed_ok,
                      uint8_t mac[16], const uint8_t *fct, size_t n)
{
    uint8_t d[32], x[16];
    p2p_keccak_update(h, fct, n);
    p2p_keccak_digest(h, d);
    aes256_encrypt(&c->mac_aes, 16, x, d);
    for (int i = 0; i < 16; i++) x[i] ^= d[i];
    p2p_keccak_update(h, x, 16);
    p2p_keccak_digest(h, seed);
    *seed_ok = true;
    memcpy(mac, seed, 16);
}

static void ctr(struct aes256_ctx *k, uint8_t iv[16], uint8_t *dst, const uint8_t *src, size_t n)
{
    /* n is a multiple of 16, so the stream stays block-aligned across frames. */
    ctr_crypt(k, (nettle_cipher_func *)aes256_encrypt, AES_BLOCK_SIZE, iv, n, dst, src);
}

int p2p_rlpx_frame_seal(p2p_rlpx_codec_t *c, uint8_t *buf, size_t cap, size_t *outlen, size_t fsize)
{
    if (c->wstate) return P2P_ESTATE;
    if (fsize > P2P_RLPX_FRAME_MAX) return P2P_ETOOBIG;
    size_t padded = pad16(fsize);
    size_t total = P2P_RLPX_HEADER_LEN + padded + P2P_RLPX_MAC_LEN;
    if (cap < total) return P2P_ETOOBIG;

    uint8_t *hdr = buf, *body = buf + P2P_RLPX_HEADER_LEN;
    hdr[0] = (uint8_t)(fsize >> 16);
    hdr[1] = (uint8_t)(fsize >> 8);
    hdr[2] = (uint8_t)fsize;
    hdr[3] = 0xC2; /* header-data rlp([0, 0]) */
    hdr[4] = 0x80;
    hdr[5] = 0x80;
    memset(hdr + 6, 0, 10);
    ctr(&c->enc, c->enc_ctr, hdr, hdr, 16);
    header_mac(c, &c->egress, c->egress_seed, &c->egress_seed_ok, hdr + 16, hdr);

    memset(body + fsize, 0, padded - fsize);
    ctr(&c->enc, c->enc_ctr, body, body, padded);
    frame_mac(c, &c->egress, c->egress_seed, &c->egress_seed_ok, body + padded, body, padded);
    *outlen = total;
    return 0;
}

/* Writes rlp(code) at p; returns its length (1..9). */
static size_t put_code(uint8_t *p, uint64_t code)
{
    if (code < 0x80) {
        p[0] = code ? (uint8_t)code : 0x80;
        return 1;
    }
    size_t n = 0;
    for (uint64_t v = code; v; v >>= 8) n++;
    p[0] = (uint8_t)(0x80 + n);
    for (size_t i = 0; i < n; i++) p[1 + i] = (uint8_t)(code >> (8 * (n - 1 - i)));
    return 1 + n;
}

int p2p_rlpx_frame_encode(p2p_rlpx_codec_t *c, uint8_t *out, size_t outcap, size_t *outlen,
                          uint64_t code, const uint8_t *payload, size_t len)
{
    if (c->wstate) return P2P_ESTATE;
    if (len > P2P_RLPX_FRAME_MAX || outcap < P2P_RLPX_HEADER_LEN + P2P_RLPX_CODE_MAX_LEN)
        return P2P_ETOOBIG;
    uint8_t *body = out + P2P_RLPX_HEADER_LEN;
    size_t k = put_code(body, code);
    size_t room = outcap - P2P_RLPX_HEADER_LEN - k;
    size_t plen;
    if (c->snappy) {
        int rc = p2p_snappy_compress(body + k, room, &plen, payload, len);
        if (rc) return rc;
    } else {
        if (len > room) return P2P_ETOOBIG;
        if (len) memmove(body + k, payload, len);
        plen = len;
    }
    if (k + plen > P2P_RLPX_FRAME_MAX) return P2P_ETOOBIG;
    return p2p_rlpx_frame_seal(c, out, outcap, outlen, k + plen);
}

size_t p2p_rlpx_dec_need(const p2p_rlpx_codec_t *c)
{
    if (c->rstate == 0) return P2P_RLPX_HEADER_LEN;
    if (c->rstate == 1) return pad16(c->fsize) + P2P_RLPX_MAC_LEN;
    return 0;
}

static int dec_fail(p2p_rlpx_codec_t *c, int rc)
{
    c->rstate = -1;
    return rc;
}

static int dec_header(p2p_rlpx_codec_t *c, uint8_t *buf)
{
    uint8_t mac[16];
    header_mac(c, &c->ingress, c->ingress_seed, &c->ingress_seed_ok, mac, buf);
    if (!p2p_ct_equal(mac, buf + 16, 16)) return dec_fail(c, P2P_EBADMAC);
    ctr(&c->dec, c->dec_ctr, buf, buf, 16);
    size_t fsize = (size_t)buf[0] << 16 | (size_t)buf[1] << 8 | buf[2];
    /* header-data (buf[3..16)) is ignored, as every client does */
    if (fsize > p2p_rlpx_frame_limit(c)) return dec_fail(c, P2P_ETOOBIG);
    if (fsize == 0) return dec_fail(c, P2P_EDECODE); /* no room for the code */
    c->fsize = fsize;
    c->rstate = 1;
    return P2P_EMORE;
}

static int dec_body(p2p_rlpx_codec_t *c, p2p_rlpx_msg_t *msg, uint8_t *buf, uint8_t *scratch,
                    size_t scratchcap)
{
    size_t padded = pad16(c->fsize);
    uint8_t mac[16];
    frame_mac(c, &c->ingress, c->ingress_seed, &c->ingress_seed_ok, mac, buf, padded);
    if (!p2p_ct_equal(mac, buf + padded, 16)) return dec_fail(c, P2P_EBADMAC);
    ctr(&c->dec, c->dec_ctr, buf, buf, padded);

    p2p_rlp_t cur;
    p2p_rlp_init(&cur, buf, c->fsize);
    uint64_t code;
    if (p2p_rlp_uint(&cur, &code)) return dec_fail(c, P2P_EDECODE);
    const uint8_t *p = cur.p;
    size_t n = (size_t)(buf + c->fsize - p);
    msg->code = code;
    msg->fsize = c->fsize;
    if (c->snappy && code != P2P_MSG_CODE_DISC) {
        size_t out;
        if (!scratch) return dec_fail(c, P2P_EINVAL);
        int rc = p2p_snappy_decompress(scratch, scratchcap, &out, p, n, c->max_msg);
        if (rc) return dec_fail(c, rc);
        msg->payload = scratch;
        msg->len = out;
    } else {
        msg->payload = p;
        msg->len = n;
    }
    c->rstate = 0;
    return 0;
}

int p2p_rlpx_dec_step(p2p_rlpx_codec_t *c, p2p_rlpx_msg_t *msg, uint8_t *buf, size_t len,
                      uint8_t *scratch, size_t scratchcap)
{
    if (c->rstate < 0) return P2P_ESTATE;
    if (len < p2p_rlpx_dec_need(c)) return P2P_EMORE;
    if (c->rstate == 0) return dec_header(c, buf);
    return dec_body(c, msg, buf, scratch, scratchcap);
}
