/*
 * tests/bench/bench_rlpx.c: RLPx codec throughput and handshake rate,
 * each next to a ceiling measured in the same run (thread CPU time, so a
 * busy shared machine skews both sides alike):
 *   - frame encode+decode MB/s of payload for 1 KiB and 64 KiB messages vs
 *     AES-256-CTR over the frame bytes plus Keccak absorption of the frame
 *     body, both done twice (sender and receiver), like the codec;
 *     also shown: that ceiling plus the three MAC digests per frame and
 *     side that the RLPx MAC construction requires at least (the fourth,
 *     the next header's seed, is the previous frame MAC's digest, reused);
 *   - full handshakes per second (both sides, one thread) vs the secp256k1
 *     operations a handshake needs times their measured cost.
 * Each figure is the best of 3 interleaved runs.
 * Usage: bench_rlpx [seconds-per-measurement, default 0.3]
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include <nettle/aes.h>
#include <nettle/ctr.h>

#include "core/err.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "tests/bench/bench_util.h"
#include "tests/tu.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

static double budget = 0.3;
#define REPS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint8_t sink;

static size_t pad16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Returns payload MB/s of encode + decode for len-byte messages. */
static double bench_frames(size_t len)
{
    static uint8_t frame[70000], payload[65536];
    tu_rand_bytes(payload, sizeof payload);
    p2p_rlpx_codec_t a, b;
    bench_codec_pair(&a, &b, false);
    unsigned long iters = 0;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 16; k++) {
            size_t flen;
            p2p_rlpx_msg_t m;
            if (p2p_rlpx_frame_encode(&a, frame, sizeof frame, &flen, 0x10, payload, len) ||
                p2p_rlpx_dec_step(&b, &m, frame, 32, NULL, 0) != P2P_EMORE ||
                p2p_rlpx_dec_step(&b, &m, frame + 32, flen - 32, NULL, 0) || m.len != len)
                abort();
            sink ^= m.payload[0];
        }
        iters += 16;
        t = now() - t0;
    } while (t < budget);
    return (double)len * (double)iters / t / 1e6;
}

/* Ceiling: AES-256-CTR over the wire bytes (header block + padded body)
 * and Keccak absorption of the padded body, each twice; with digests,
 * also the 3 MAC digests + 2 x 16-byte MAC absorptions per side. */
static double bench_ceiling(size_t len, bool digests)
{
    static uint8_t buf[70000], out[70000];
    struct aes256_ctx k;
    uint8_t key[32] = {1}, ctr[16] = {0}, d[32];
    aes256_set_encrypt_key(&k, key);
    p2p_keccak_t h1, h2;
    p2p_keccak_init(&h1);
    p2p_keccak_init(&h2);
    size_t body = pad16(len + 1), wire = 16 + body;
    unsigned long iters = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 16; i++) {
            ctr_crypt(&k, (nettle_cipher_func *)aes256_encrypt, 16, ctr, wire, out, buf);
            p2p_keccak_update(&h1, out + 16, body);
            ctr_crypt(&k, (nettle_cipher_func *)aes256_encrypt, 16, ctr, wire, buf, out);
            p2p_keccak_update(&h2, out + 16, body);
            if (digests) {
                for (int s = 0; s < 2; s++) {
                    p2p_keccak_t *h = s ? &h2 : &h1;
                    /* header: seed reused from the last frame MAC */
                    p2p_keccak_update(h, d, 16);
                    p2p_keccak_digest(h, d);
                    /* frame: seed digest, absorb, MAC digest */
                    p2p_keccak_digest(h, d);
                    p2p_keccak_update(h, d, 16);
                    p2p_keccak_digest(h, d);
                }
            }
        }
        iters += 16;
        t = now() - t0;
    } while (t < budget);
    p2p_keccak_digest(&h1, d);
    sink ^= d[0] ^ buf[0];
    return (double)len * (double)iters / t / 1e6;
}

static int one_handshake(p2p_rlpx_hs_t *ha, p2p_rlpx_hs_t *hb, const uint8_t ka[32],
                         const uint8_t kb[32], const uint8_t pb[64])
{
    const uint8_t *auth, *ack;
    size_t alen, klen, used;
    p2p_rlpx_secrets_t sa, sb;
    int rc = p2p_rlpx_hs_init(ha, P2P_RLPX_INITIATOR, ka, pb);
    if (!rc) rc = p2p_rlpx_hs_init(hb, P2P_RLPX_RECIPIENT, kb, NULL);
    if (!rc) rc = p2p_rlpx_hs_make_auth(ha, &auth, &alen);
    if (!rc) rc = p2p_rlpx_hs_feed(hb, &used, auth, alen);
    if (!rc) rc = p2p_rlpx_hs_make_ack(hb, &ack, &klen);
    if (!rc) rc = p2p_rlpx_hs_feed(ha, &used, ack, klen);
    if (!rc) rc = p2p_rlpx_hs_secrets(ha, &sa);
    if (!rc) rc = p2p_rlpx_hs_secrets(hb, &sb);
    if (!rc && memcmp(sa.aes, sb.aes, 32) != 0) rc = P2P_ECRYPTO;
    p2p_rlpx_secrets_wipe(&sa);
    p2p_rlpx_secrets_wipe(&sb);
    p2p_rlpx_hs_wipe(ha);
    p2p_rlpx_hs_wipe(hb);
    return rc;
}

enum { OP_PUBKEY, OP_ECDH, OP_SIGN, OP_RECOVER, OP_N };

/* Microseconds per secp256k1 operation. */
static double bench_op(int op)
{
    uint8_t priv[32], pub[64], out[64], sig[65], h[32];
    if (p2p_secp_keygen(priv) || p2p_secp_pubkey(pub, priv)) abort();
    tu_rand_bytes(h, 32);
    if (p2p_secp_sign(sig, h, priv)) abort();
    unsigned long iters = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 16; i++) {
            int rc = 0;
            h[0]++;
            switch (op) {
            case OP_PUBKEY:
                rc = p2p_secp_pubkey(out, priv);
                break;
            case OP_ECDH:
                rc = p2p_secp_ecdh(out, pub, priv);
                break;
            case OP_SIGN:
                rc = p2p_secp_sign(sig, h, priv);
                break;
            default:
                rc = p2p_secp_recover(out, sig, h);
                break;
            }
            if (rc) abort();
            sink ^= out[0] ^ sig[0];
        }
        iters += 16;
        t = now() - t0;
    } while (t < budget / 2);
    return t / (double)iters * 1e6;
}

int main(int argc, char **argv)
{
    bench_args(argc, argv, 1, "[seconds per measurement, default 0.3]");
    budget = bench_arg_num(1, "seconds per measurement", 0.001, 600, false, 0.3);
    tu_seed(0xbe7c4);

    {
        static uint8_t buf[65536], out[65536];
        struct aes256_ctx k;
        uint8_t key[32] = {2}, ctr[16] = {0};
        aes256_set_encrypt_key(&k, key);
        p2p_keccak_t h;
        p2p_keccak_init(&h);
        /* best of REPS runs, as the figures below: a single first run
         * (cold caches, page faults on the buffers) read as low as half */
        double aes = 0, kec = 0;
        for (int r = 0; r < REPS; r++) {
            unsigned long n = 0;
            double t0 = now(), t;
            do {
                ctr_crypt(&k, (nettle_cipher_func *)aes256_encrypt, 16, ctr, sizeof buf, out, buf);
                n++;
                t = now() - t0;
            } while (t < budget / 2);
            aes = fmax(aes, (double)n * sizeof buf / t / 1e6);
            n = 0;
            t0 = now();
            do {
                p2p_keccak_update(&h, out, sizeof out);
                n++;
                t = now() - t0;
            } while (t < budget / 2);
            kec = fmax(kec, (double)n * sizeof buf / t / 1e6);
        }
        uint8_t d[32];
        p2p_keccak_digest(&h, d);
        sink ^= d[0];
        printf(
            "== primitives (best of %d): AES-256-CTR %.0f MB/s, Keccak-256 absorption %.0f MB/s\n",
            REPS, aes, kec);
    }
    printf("== frame codec (payload MB/s, encode + decode, one thread)\n");
    for (int i = 0; i < 2; i++) {
        size_t len = i ? 65536 : 1024;
        /* best of REPS interleaved runs: the machine is shared */
        double ceil = 0, ceil_d = 0, got = 0;
        for (int r = 0; r < REPS; r++) {
            ceil = fmax(ceil, bench_ceiling(len, false));
            ceil_d = fmax(ceil_d, bench_ceiling(len, true));
            got = fmax(got, bench_frames(len));
        }
        printf("%6zu B: codec %8.1f MB/s | ceiling AES-CTR+Keccak %8.1f MB/s  ratio %5.1f%%"
               " | ceiling incl. MAC digests %8.1f MB/s  ratio %5.1f%%\n",
               len, got, ceil, 100 * got / ceil, ceil_d, 100 * got / ceil_d);
        CHECK(got > 0);
    }

    printf("== handshake (both sides in one thread)\n");
    double cost[OP_N] = {1e9, 1e9, 1e9, 1e9}, rate = 0;
    static const char *names[OP_N] = {"pubkey", "ecdh", "sign", "recover"};
    /* per handshake: pubkey 4 (initiator static, 2 ECIES R, recipient
     * ephemeral), ECDH 8 (2 static, 4 ECIES, 2 ephemeral), sign 1, recover 1 */
    static const int count[OP_N] = {4, 8, 1, 1};
    uint8_t ka[32], kb[32], pb[64];
    if (p2p_secp_keygen(ka) || p2p_secp_keygen(kb) || p2p_secp_pubkey(pb, kb)) abort();
    static p2p_rlpx_hs_t ha, hb;
    for (int r = 0; r < REPS; r++) {
        for (int op = 0; op < OP_N; op++) cost[op] = fmin(cost[op], bench_op(op));
        unsigned long n = 0;
        double t0 = now(), t;
        do {
            CHECK_OK(one_handshake(&ha, &hb, ka, kb, pb));
            n++;
            t = now() - t0;
        } while (t < 2 * budget);
        rate = fmax(rate, (double)n / t);
    }
    double floor_us = 0;
    for (int op = 0; op < OP_N; op++) {
        floor_us += count[op] * cost[op];
        printf("  %-8s %6.1f us x %d\n", names[op], cost[op], count[op]);
    }
    double ceil = 1e6 / floor_us;
    printf("handshakes: %.0f /s (%.1f us each) | ceiling %.0f /s (%.1f us of secp256k1)  ratio "
           "%5.1f%%\n",
           rate, 1e6 / rate, ceil, floor_us, 100 * rate / ceil);
    return tu_done("bench_rlpx");
}
