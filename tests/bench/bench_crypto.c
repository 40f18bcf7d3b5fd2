/*
 * tests/bench/bench_crypto.c: costs of the crypto primitives, each next to a
 * ceiling measured in the same run:
 *   - Keccak-256: ours vs Nettle's own SHA3-256 (same permutation, same
 *     amount of work per block) for a 64 KiB buffer, 16-byte updates (the
 *     RLPx MAC pattern, lane-aligned and mid-lane) and 32-byte one-shot
 *     hashes; plus the bare
 *     permutation rate (136 bytes per sha3_permute).
 *   - secp256k1: our wrappers (which validate and re-serialise keys) vs the
 *     bare libsecp256k1 call on pre-parsed inputs.
 *   - ECIES on a 300-byte message vs its public-key work (key generation +
 *     ECDH for encryption, ECDH for decryption).
 * Times are thread CPU time.  Run: build/tests/bench/bench_crypto [seconds]
 * (per measurement, default 0.1; each figure is the best of 3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha3.h>
#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_recovery.h>

#include "crypto/ecies.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tests/bench/bench_util.h"

#define BIG 65536

static uint8_t *big;
static uint8_t small[32];
static p2p_keccak_t kst;
static struct sha3_256_ctx nst;
static struct sha3_state perm;
static uint8_t digest[32];

static void k_big(void *a)
{
    (void)a;
    p2p_keccak_update(&kst, big, BIG);
}
static void n_big(void *a)
{
    (void)a;
    sha3_256_update(&nst, BIG, big);
}
static void k_16(void *a)
{
    (void)a;
    for (size_t off = 0; off < 4096; off += 16) p2p_keccak_update(&kst, big + off, 16);
}
static void n_16(void *a)
{
    (void)a;
    for (size_t off = 0; off < 4096; off += 16) sha3_256_update(&nst, 16, big + off);
}
/* As k_16/n_16 with the state mid-lane (3 bytes absorbed first). */
static p2p_keccak_t kst_odd;
static struct sha3_256_ctx nst_odd;
static void k_16_odd(void *a)
{
    (void)a;
    for (size_t off = 0; off < 4096; off += 16) p2p_keccak_update(&kst_odd, big + off, 16);
}
static void n_16_odd(void *a)
{
    (void)a;
    for (size_t off = 0; off < 4096; off += 16) sha3_256_update(&nst_odd, 16, big + off);
}
static void k_32(void *a)
{
    (void)a;
    p2p_keccak256(digest, small, 32);
    small[0] = digest[0];
}
static void n_32(void *a)
{
    (void)a;
    struct sha3_256_ctx c;
    sha3_256_init(&c);
    sha3_256_update(&c, 32, small);
    sha3_256_digest(&c, 32, digest);
    small[0] = digest[0];
}
static void permute(void *a)
{
    (void)a;
    sha3_permute(&perm);
}

/* Bare libsecp256k1 on pre-parsed inputs. */
struct raw {
    secp256k1_context *ctx;
    uint8_t priv[32], hash[32], out[65], sig64[64];
    secp256k1_pubkey pub, pub2, res;
    secp256k1_ecdsa_recoverable_signature rsig;
    secp256k1_ecdsa_signature sig;
};
static int copy_x(unsigned char *o, const unsigned char *x, const unsigned char *y, void *d)
{
    (void)y;
    (void)d;
    memcpy(o, x, 32);
    return 1;
}
static void r_pubkey(void *a)
{
    struct raw *r = a;
    if (!secp256k1_ec_pubkey_create(r->ctx, &r->res, r->priv)) abort();
}
static void r_ecdh(void *a)
{
    struct raw *r = a;
    if (!secp256k1_ecdh(r->ctx, r->out, &r->pub2, r->priv, copy_x, NULL)) abort();
}
static void r_sign(void *a)
{
    struct raw *r = a;
    r->hash[0]++;
    if (!secp256k1_ecdsa_sign_recoverable(r->ctx, &r->rsig, r->hash, r->priv, NULL, NULL)) abort();
}
static void r_recover(void *a)
{
    struct raw *r = a;
    if (!secp256k1_ecdsa_recover(r->ctx, &r->res, &r->rsig, r->hash)) abort();
}
static void r_verify(void *a)
{
    struct raw *r = a;
    if (!secp256k1_ecdsa_verify(r->ctx, &r->sig, r->hash, &r->pub)) abort();
}

/* Ours, on the same keys as the bare calls. */
struct ours {
    uint8_t priv[32], pub[64], pub2[64], hash[32], sig[65], out[64];
    uint8_t msg[300], ct[300 + P2P_ECIES_OVERHEAD], pt[300];
};
static void must(int rc)
{
    if (rc != 0) abort();
}
static void o_pubkey(void *a)
{
    struct ours *o = a;
    must(p2p_secp_pubkey(o->out, o->priv));
}
static void o_ecdh(void *a)
{
    struct ours *o = a;
    must(p2p_secp_ecdh(o->out, o->pub2, o->priv));
}
static void o_sign(void *a)
{
    struct ours *o = a;
    o->hash[0]++;
    must(p2p_secp_sign(o->sig, o->hash, o->priv));
}
static void o_recover(void *a)
{
    struct ours *o = a;
    must(p2p_secp_recover(o->out, o->sig, o->hash));
}
static void o_verify(void *a)
{
    struct ours *o = a;
    must(p2p_secp_verify(o->sig, o->hash, o->pub));
}
static void o_enc(void *a)
{
    struct ours *o = a;
    must(p2p_ecies_encrypt(o->ct, sizeof o->ct, o->pub, o->msg, sizeof o->msg, NULL, 0));
}
static void o_dec(void *a)
{
    struct ours *o = a;
    size_t n;
    must(p2p_ecies_decrypt(o->pt, sizeof o->pt, &n, o->priv, o->ct, sizeof o->ct, NULL, 0));
}
/* ECIES encryption's public-key work on bare libsecp256k1: a new
 * ephemeral public key and one ECDH. */
static void r_pubkey_ecdh(void *a)
{
    r_pubkey(a);
    r_ecdh(a);
}

static void row(const char *what, double ours, double ceil, const char *unit, int higher_better)
{
    double ratio = higher_better ? ours / ceil : ceil / ours;
    printf("%-36s %10.2f %-6s %10.2f %-6s %6.1f%%\n", what, ours, unit, ceil, unit, 100 * ratio);
}

int main(int argc, char **argv)
{
    bench_args(argc, argv, 1, "[seconds per measurement, default 0.1]");
    double s = bench_arg_num(1, "seconds", 0.001, 600, false, 0.1);
    const int reps = 3;
    double ta, tb;
    big = malloc(BIG);
    if (!big || p2p_random(big, BIG) || p2p_random(small, sizeof small)) return 1;

    printf("%-36s %17s %17s %7s\n", "operation (thread CPU, best of 3)", "ours", "ceiling",
           "ratio");

    /* Keccak. */
    p2p_keccak_init(&kst);
    sha3_256_init(&nst);
    bench_pair(&ta, &tb, k_big, NULL, n_big, NULL, s, reps);
    row("keccak256 64 KiB vs nettle sha3", BIG / ta / 1e6, BIG / tb / 1e6, "MB/s", 1);
    tb = bench_best(permute, NULL, s, reps);
    row("keccak256 64 KiB vs bare permute", BIG / ta / 1e6, 136 / tb / 1e6, "MB/s", 1);
    bench_pair(&ta, &tb, k_16, NULL, n_16, NULL, s, reps);
    row("keccak256 16-byte updates vs nettle", 4096 / ta / 1e6, 4096 / tb / 1e6, "MB/s", 1);
    p2p_keccak_init(&kst_odd);
    p2p_keccak_update(&kst_odd, small, 3);
    sha3_256_init(&nst_odd);
    sha3_256_update(&nst_odd, 3, small);
    bench_pair(&ta, &tb, k_16_odd, NULL, n_16_odd, NULL, s, reps);
    row("  same, state mid-lane", 4096 / ta / 1e6, 4096 / tb / 1e6, "MB/s", 1);
    bench_pair(&ta, &tb, k_32, NULL, n_32, NULL, s, reps);
    row("keccak256 of 32 B vs nettle sha3", ta * 1e9, tb * 1e9, "ns", 0);

    /* secp256k1: ours vs bare libsecp256k1, same keys. */
    struct raw r;
    struct ours o;
    r.ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    uint8_t seed[32], priv2[32];
    if (!r.ctx || p2p_random(seed, 32) || !secp256k1_context_randomize(r.ctx, seed) ||
        p2p_secp_keygen(r.priv) || p2p_secp_keygen(priv2) || p2p_random(r.hash, 32) ||
        !secp256k1_ec_pubkey_create(r.ctx, &r.pub, r.priv) ||
        !secp256k1_ec_pubkey_create(r.ctx, &r.pub2, priv2) || p2p_random(o.msg, sizeof o.msg))
        return 1;
    memcpy(o.priv, r.priv, 32);
    memcpy(o.hash, r.hash, 32);
    must(p2p_secp_pubkey(o.pub, o.priv));
    must(p2p_secp_pubkey(o.pub2, priv2));

    bench_pair(&ta, &tb, o_pubkey, &o, r_pubkey, &r, s, reps);
    row("secp pubkey vs bare libsecp", ta * 1e6, tb * 1e6, "us", 0);
    double ecdh_raw, pub_raw = tb;
    bench_pair(&ta, &ecdh_raw, o_ecdh, &o, r_ecdh, &r, s, reps);
    row("secp ECDH vs bare libsecp", ta * 1e6, ecdh_raw * 1e6, "us", 0);
    bench_pair(&ta, &tb, o_sign, &o, r_sign, &r, s, reps);
    row("secp sign (recoverable) vs bare", ta * 1e6, tb * 1e6, "us", 0);
    /* recover/verify use the signatures over the hashes the sign loops
     * left behind. */
    int recid;
    uint8_t sig64[64];
    if (!secp256k1_ecdsa_recoverable_signature_serialize_compact(r.ctx, sig64, &recid, &r.rsig) ||
        !secp256k1_ecdsa_signature_parse_compact(r.ctx, &r.sig, sig64))
        return 1;
    bench_pair(&ta, &tb, o_recover, &o, r_recover, &r, s, reps);
    if (memcmp(o.out, o.pub, 64) != 0) return 1;
    row("secp recover vs bare libsecp", ta * 1e6, tb * 1e6, "us", 0);
    bench_pair(&ta, &tb, o_verify, &o, r_verify, &r, s, reps);
    row("secp verify vs bare libsecp", ta * 1e6, tb * 1e6, "us", 0);
    bench_pair(&ta, &tb, o_enc, &o, r_pubkey_ecdh, &r, s, reps);
    row("ECIES encrypt 300 B vs pubkey+ECDH", ta * 1e6, tb * 1e6, "us", 0);
    (void)pub_raw;
    bench_pair(&ta, &tb, o_dec, &o, r_ecdh, &r, s, reps);
    if (memcmp(o.pt, o.msg, sizeof o.msg) != 0) return 1;
    row("ECIES decrypt 300 B vs ECDH", ta * 1e6, tb * 1e6, "us", 0);
    secp256k1_context_destroy(r.ctx);

    /* The shared cost table (bench_util), as other benchmarks see it. */
    bench_costs_t c;
    bench_measure_costs(&c, s);
    printf("\n");
    bench_print_costs(&c);
    free(big);
    return 0;
}
