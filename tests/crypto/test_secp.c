/*
 * tests/crypto/test_secp.c: secp256k1 keys, ECDH, signatures.
 *
 * Known answers: the public key of 1 is G; the ENR vector key's compressed
 * key equals the one inside the vector's enr: text (decoded here) and its
 * node id matches.  Round trips on random keys for sign/recover/verify and
 * compress/parse; ECDH symmetry and agreement with libsecp256k1's own point
 * multiplication; rejection of invalid-curve points, coordinates >= p,
 * invalid private keys, bad lengths and prefixes, high-s in verify, v > 1,
 * r or s of 0 or >= n.  The global context is first touched by four threads
 * at once (pthread_once).
 */
#include <pthread.h>
#include <time.h>

#include <secp256k1.h>

#include "core/err.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "tests/tu.h"

static const char *N_HEX = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
static const char *P_HEX = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f";
static const char *GX_HEX = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
static const char *GY_HEX = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";

/* out = n - s (big-endian 256-bit; s < n). */
static void n_minus(uint8_t out[32], const uint8_t s[32])
{
    uint8_t n[32];
    tu_unhex(n, 32, N_HEX);
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int d = n[i] - s[i] - borrow;
        borrow = d < 0;
        out[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

/* ---- first use from several threads ---- */

static int thread_fail;
static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        uint8_t priv[32], pub[64], sig[65], hash[32], rec[64];
        if (p2p_secp_keygen(priv) || p2p_secp_pubkey(pub, priv)) thread_fail = 1;
        memset(hash, i, sizeof hash);
        if (p2p_secp_sign(sig, hash, priv) || p2p_secp_recover(rec, sig, hash)) thread_fail = 1;
        if (memcmp(rec, pub, 64) != 0) thread_fail = 1;
    }
    return NULL;
}

static void test_threads_first_use(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    CHECK(thread_fail == 0);
}

/* ---- known answers ---- */

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

static size_t b64url_decode(uint8_t *out, size_t cap, const char *s)
{
    size_t n = 0;
    unsigned acc = 0, bits = 0;
    for (; *s; s++) {
        int v = b64url_val(*s);
        if (v < 0 || n >= cap) return 0;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

static void test_known(void)
{
    uint8_t priv[32] = {0}, pub[64], want[64];
    priv[31] = 1;
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    tu_unhex(want, 32, GX_HEX);
    tu_unhex(want + 32, 32, GY_HEX);
    CHECK_MEM(pub, want, 64);

    /* The ENR example: key -> compressed key inside the record, node id. */
    CHECK(tu_vector_hex("enr.txt", "key", priv, 32) == 32);
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    uint8_t comp[33], wantc[33], id[32], wantid[32];
    CHECK_OK(p2p_secp_pubkey_compress(comp, pub));
    tu_unhex(wantc, 33, "03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138");
    CHECK_MEM(comp, wantc, 33);
    char text[512];
    uint8_t rec[400];
    CHECK(tu_vector_str("enr.txt", "text", text, sizeof text) == 0);
    CHECK(strncmp(text, "enr:", 4) == 0);
    size_t rn = b64url_decode(rec, sizeof rec, text + 4);
    /* "secp256k1" then 0xa1 (a 33-byte string) then the key. */
    const uint8_t *k = NULL;
    for (size_t i = 0; i + 10 + 33 <= rn; i++)
        if (memcmp(rec + i, "secp256k1\xa1", 10) == 0) k = rec + i + 10;
    CHECK(k != NULL);
    if (k) CHECK_MEM(k, comp, 33);
    p2p_node_id(id, pub);
    CHECK(tu_vector_hex("enr.txt", "node_id", wantid, 32) == 32);
    CHECK_MEM(id, wantid, 32);
    p2p_keccak256(wantid, pub, 64);
    CHECK_MEM(id, wantid, 32);

    /* Parse of the compressed and both uncompressed forms gives pub back. */
    uint8_t back[64], full[65];
    CHECK_OK(p2p_secp_pubkey_parse(back, comp, 33));
    CHECK_MEM(back, pub, 64);
    full[0] = 0x04;
    memcpy(full + 1, pub, 64);
    CHECK_OK(p2p_secp_pubkey_parse(back, full, 65));
    CHECK_MEM(back, pub, 64);
    CHECK_OK(p2p_secp_pubkey_parse(back, pub, 64));
    CHECK_MEM(back, pub, 64);

    /* Deterministic (RFC 6979) signatures. */
    uint8_t hash[32], s1[65], s2[65];
    memset(hash, 0x5a, 32);
    CHECK_OK(p2p_secp_sign(s1, hash, priv));
    CHECK_OK(p2p_secp_sign(s2, hash, priv));
    CHECK_MEM(s1, s2, 65);
}

/* ---- private keys ---- */

static void test_privkeys(void)
{
    uint8_t k[32], pub[64], sig[65], x[32], hash[32] = {1};
    memset(k, 0, 32);
    CHECK_ERR(p2p_secp_privkey_check(k), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_pubkey(pub, k), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_sign(sig, hash, k), P2P_EBADKEY);
    uint8_t gpub[64];
    tu_unhex(gpub, 32, GX_HEX);
    tu_unhex(gpub + 32, 32, GY_HEX);
    CHECK_ERR(p2p_secp_ecdh(x, gpub, k), P2P_EBADKEY);
    tu_unhex(k, 32, N_HEX);
    CHECK_ERR(p2p_secp_privkey_check(k), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_pubkey(pub, k), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_ecdh(x, gpub, k), P2P_EBADKEY);
    memset(k, 0xff, 32);
    CHECK_ERR(p2p_secp_privkey_check(k), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_sign(sig, hash, k), P2P_EBADKEY);
    tu_unhex(k, 32, N_HEX);
    k[31]--; /* n - 1 is the largest valid key; its public key is -G */
    CHECK_OK(p2p_secp_privkey_check(k));
    CHECK_OK(p2p_secp_pubkey(pub, k));
    CHECK_MEM(pub, gpub, 32);
    CHECK(memcmp(pub + 32, gpub + 32, 32) != 0);
    for (int i = 0; i < 20; i++) {
        CHECK_OK(p2p_secp_keygen(k));
        CHECK_OK(p2p_secp_privkey_check(k));
    }
}

/* ---- public keys ---- */

static void test_pubkeys(void)
{
    uint8_t g[64], bad[65], out[64], c[33], x[32], priv[32];
    tu_unhex(g, 32, GX_HEX);
    tu_unhex(g + 32, 32, GY_HEX);
    CHECK_OK(p2p_secp_pubkey_check(g));
    CHECK_OK(p2p_secp_keygen(priv));

    /* Y off by one: not on the curve. */
    memcpy(bad, g, 64);
    bad[63] ^= 1;
    CHECK_ERR(p2p_secp_pubkey_check(bad), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_pubkey_parse(out, bad, 64), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_pubkey_compress(c, bad), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_ecdh(x, bad, priv), P2P_EBADKEY);
    /* Zero key (also the usual encoding of the point at infinity). */
    memset(bad, 0, 65);
    CHECK_ERR(p2p_secp_pubkey_check(bad), P2P_EBADKEY);
    CHECK_ERR(p2p_secp_ecdh(x, bad, priv), P2P_EBADKEY);
    /* X = p and X = 2^256-1 (>= p), Y = G.y. */
    tu_unhex(bad, 32, P_HEX);
    memcpy(bad + 32, g + 32, 32);
    CHECK_ERR(p2p_secp_pubkey_check(bad), P2P_EBADKEY);
    memset(bad, 0xff, 32);
    CHECK_ERR(p2p_secp_pubkey_check(bad), P2P_EBADKEY);
    /* Y >= p: G.y + p would not fit, so use Y = p with X = G.x. */
    memcpy(bad, g, 32);
    tu_unhex(bad + 32, 32, P_HEX);
    CHECK_ERR(p2p_secp_pubkey_check(bad), P2P_EBADKEY);

    /* Lengths and prefixes. */
    uint8_t full[66];
    full[0] = 0x04;
    memcpy(full + 1, g, 64);
    for (size_t n = 0; n <= 66; n++)
        if (n != 33 && n != 64 && n != 65)
            CHECK_ERR(p2p_secp_pubkey_parse(out, full, n), P2P_EBADKEY);
    full[0] = 0x06; /* hybrid form: G.y is even */
    CHECK_ERR(p2p_secp_pubkey_parse(out, full, 65), P2P_EBADKEY);
    full[0] = 0x07;
    CHECK_ERR(p2p_secp_pubkey_parse(out, full, 65), P2P_EBADKEY);
    full[0] = 0x00;
    CHECK_ERR(p2p_secp_pubkey_parse(out, full, 65), P2P_EBADKEY);
    CHECK_OK(p2p_secp_pubkey_compress(c, g));
    CHECK(c[0] == 0x02);
    c[0] = 0x04;
    CHECK_ERR(p2p_secp_pubkey_parse(out, c, 33), P2P_EBADKEY);
    c[0] = 0x00;
    CHECK_ERR(p2p_secp_pubkey_parse(out, c, 33), P2P_EBADKEY);
    c[0] = 0x02;
    tu_unhex(c + 1, 32, P_HEX); /* x = p */
    CHECK_ERR(p2p_secp_pubkey_parse(out, c, 33), P2P_EBADKEY);
    /* An x with no point on the curve: x^3 + 7 is a non-residue for about
     * half of all x; among 1..40 some must fail and some succeed. */
    int ok = 0, fail = 0;
    for (int v = 1; v <= 40; v++) {
        memset(c + 1, 0, 32);
        c[32] = (uint8_t)v;
        if (p2p_secp_pubkey_parse(out, c, 33) == 0) {
            ok++;
            CHECK_OK(p2p_secp_pubkey_check(out));
        } else {
            fail++;
        }
    }
    CHECK(ok > 0 && fail > 0);

    /* Random keys: compress/parse round trip, both parities. */
    int even = 0, odd = 0;
    for (int i = 0; i < 64; i++) {
        uint8_t pub[64];
        CHECK_OK(p2p_secp_keygen(priv));
        CHECK_OK(p2p_secp_pubkey(pub, priv));
        CHECK_OK(p2p_secp_pubkey_check(pub));
        CHECK_OK(p2p_secp_pubkey_compress(c, pub));
        CHECK(c[0] == (uint8_t)(0x02 | (pub[63] & 1)));
        *(c[0] == 0x02 ? &even : &odd) += 1;
        CHECK_OK(p2p_secp_pubkey_parse(out, c, 33));
        CHECK_MEM(out, pub, 64);
    }
    CHECK(even > 0 && odd > 0);
}

/* ---- ECDH ---- */

static void test_ecdh(void)
{
    const secp256k1_context *ref = secp256k1_context_static;
    for (int i = 0; i < 32; i++) {
        uint8_t a[32], b[32], pa[64], pb[64], xab[32], xba[32];
        CHECK_OK(p2p_secp_keygen(a));
        CHECK_OK(p2p_secp_keygen(b));
        CHECK_OK(p2p_secp_pubkey(pa, a));
        CHECK_OK(p2p_secp_pubkey(pb, b));
        CHECK_OK(p2p_secp_ecdh(xab, pb, a));
        CHECK_OK(p2p_secp_ecdh(xba, pa, b));
        CHECK_MEM(xab, xba, 32);
        /* Against libsecp256k1's scalar multiplication: X of a*B. */
        uint8_t ser[65];
        size_t n = sizeof ser;
        secp256k1_pubkey pk;
        ser[0] = 0x04;
        memcpy(ser + 1, pb, 64);
        CHECK(secp256k1_ec_pubkey_parse(ref, &pk, ser, 65));
        CHECK(secp256k1_ec_pubkey_tweak_mul(ref, &pk, a));
        CHECK(secp256k1_ec_pubkey_serialize(ref, ser, &n, &pk, SECP256K1_EC_UNCOMPRESSED));
        CHECK_MEM(xab, ser + 1, 32);
    }
    /* Vector keys: the static shared secret of A and B is symmetric. */
    uint8_t ka[32], kb[32], pa[64], pb[64], x1[32], x2[32];
    CHECK(tu_vector_hex("rlpx-eip8.txt", "static_key_a", ka, 32) == 32);
    CHECK(tu_vector_hex("rlpx-eip8.txt", "static_key_b", kb, 32) == 32);
    CHECK_OK(p2p_secp_pubkey(pa, ka));
    CHECK_OK(p2p_secp_pubkey(pb, kb));
    CHECK_OK(p2p_secp_ecdh(x1, pb, ka));
    CHECK_OK(p2p_secp_ecdh(x2, pa, kb));
    CHECK_MEM(x1, x2, 32);
}

/* ---- signatures ---- */

static void test_signatures(void)
{
    for (int i = 0; i < 64; i++) {
        uint8_t priv[32], pub[64], hash[32], sig[65], rec[64];
        CHECK_OK(p2p_secp_keygen(priv));
        CHECK_OK(p2p_secp_pubkey(pub, priv));
        tu_rand_bytes(hash, 32);
        CHECK_OK(p2p_secp_sign(sig, hash, priv));
        CHECK(sig[64] <= 1);
        CHECK_OK(p2p_secp_recover(rec, sig, hash));
        CHECK_MEM(rec, pub, 64);
        CHECK_OK(p2p_secp_verify(sig, hash, pub));

        /* s is low: s <= n/2, i.e. n - s > s. */
        uint8_t hs[32];
        n_minus(hs, sig + 32);
        CHECK(memcmp(hs, sig + 32, 32) > 0);

        /* Wrong hash: verify fails, recover yields another key. */
        uint8_t h2[32];
        memcpy(h2, hash, 32);
        h2[i % 32] ^= 0x10;
        CHECK_ERR(p2p_secp_verify(sig, h2, pub), P2P_EBADSIG);
        if (p2p_secp_recover(rec, sig, h2) == 0) CHECK(memcmp(rec, pub, 64) != 0);
        /* Flipped v: another key (or none). */
        uint8_t s2[65];
        memcpy(s2, sig, 65);
        s2[64] ^= 1;
        if (p2p_secp_recover(rec, s2, hash) == 0) CHECK(memcmp(rec, pub, 64) != 0);
        /* v > 1 is rejected even where libsecp256k1 would accept 2, 3. */
        for (int v = 2; v < 256; v += 51) {
            s2[64] = (uint8_t)v;
            CHECK_ERR(p2p_secp_recover(rec, s2, hash), P2P_EBADSIG);
        }
        /* Wrong key. */
        uint8_t other[32], opub[64];
        CHECK_OK(p2p_secp_keygen(other));
        CHECK_OK(p2p_secp_pubkey(opub, other));
        CHECK_ERR(p2p_secp_verify(sig, hash, opub), P2P_EBADSIG);
        /* High-s twin (n - s, v flipped): verify rejects it; recovery,
         * which accepts any s like other clients do, yields the same key. */
        memcpy(s2, sig, 65);
        memcpy(s2 + 32, hs, 32);
        s2[64] = sig[64] ^ 1;
        CHECK_ERR(p2p_secp_verify(s2, hash, pub), P2P_EBADSIG);
        CHECK_OK(p2p_secp_recover(rec, s2, hash));
        CHECK_MEM(rec, pub, 64);
        /* Invalid key in verify. */
        uint8_t badpub[64];
        memcpy(badpub, pub, 64);
        badpub[63] ^= 1;
        CHECK_ERR(p2p_secp_verify(sig, hash, badpub), P2P_EBADKEY);
    }

    /* r or s zero or >= n. */
    uint8_t priv[32], pub[64], hash[32], sig[65], s2[65], rec[64];
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    tu_rand_bytes(hash, 32);
    CHECK_OK(p2p_secp_sign(sig, hash, priv));
    for (int which = 0; which < 2; which++) {
        memcpy(s2, sig, 65);
        memset(s2 + 32 * which, 0, 32);
        CHECK_ERR(p2p_secp_verify(s2, hash, pub), P2P_EBADSIG);
        CHECK_ERR(p2p_secp_recover(rec, s2, hash), P2P_EBADSIG);
        tu_unhex(s2 + 32 * which, 32, N_HEX);
        CHECK_ERR(p2p_secp_verify(s2, hash, pub), P2P_EBADSIG);
        CHECK_ERR(p2p_secp_recover(rec, s2, hash), P2P_EBADSIG);
        memset(s2 + 32 * which, 0xff, 32);
        CHECK_ERR(p2p_secp_verify(s2, hash, pub), P2P_EBADSIG);
        CHECK_ERR(p2p_secp_recover(rec, s2, hash), P2P_EBADSIG);
    }
    /* Random garbage never verifies and never crashes recovery. */
    for (int i = 0; i < 64; i++) {
        tu_rand_bytes(s2, 65);
        s2[64] &= 1;
        CHECK_ERR(p2p_secp_verify(s2, hash, pub), P2P_EBADSIG);
        int rc = p2p_secp_recover(rec, s2, hash);
        CHECK(rc == 0 || rc == P2P_EBADSIG);
        if (rc == 0) CHECK_OK(p2p_secp_pubkey_check(rec));
    }
}

int main(void)
{
    test_threads_first_use();
    tu_seed((uint64_t)time(NULL));
    test_known();
    test_privkeys();
    test_pubkeys();
    test_ecdh();
    test_signatures();
    return tu_done("secp");
}
