/*
 * tests/crypto/test_ecies.c: ECIES as devp2p uses it.
 *
 * Interop: the EIP-8 handshake vectors (tests/vectors/rlpx-eip8.txt) decrypt
 * with the recipient's static key: auth1 (legacy, s2 empty), auth2, auth3
 * (s2 = the 2-byte size prefix) with B's key; ack1, ack2, ack3 with A's.  The
 * plaintexts are checked field by field (A's static key, A's ephemeral key
 * recovered from the signature over static-shared XOR nonce, the nonces,
 * B's ephemeral key), which also checks ECDH and recovery against another
 * implementation.  Then round trips, the exact layout, tamper detection for
 * every bit, wrong s2 and key, invalid R, short input, small buffers and
 * overlapping buffers.
 */
#include <time.h>

#include "core/err.h"
#include "crypto/ecies.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "tests/tu.h"

static const char *VEC = "rlpx-eip8.txt";

struct vkeys {
    uint8_t sa[32], sb[32], ea[32], eb[32], na[32], nb[32];
    uint8_t psa[64], psb[64], pea[64], peb[64];
};

static void load_keys(struct vkeys *k)
{
    CHECK(tu_vector_hex(VEC, "static_key_a", k->sa, 32) == 32);
    CHECK(tu_vector_hex(VEC, "static_key_b", k->sb, 32) == 32);
    CHECK(tu_vector_hex(VEC, "ephemeral_key_a", k->ea, 32) == 32);
    CHECK(tu_vector_hex(VEC, "ephemeral_key_b", k->eb, 32) == 32);
    CHECK(tu_vector_hex(VEC, "nonce_a", k->na, 32) == 32);
    CHECK(tu_vector_hex(VEC, "nonce_b", k->nb, 32) == 32);
    CHECK_OK(p2p_secp_pubkey(k->psa, k->sa));
    CHECK_OK(p2p_secp_pubkey(k->psb, k->sb));
    CHECK_OK(p2p_secp_pubkey(k->pea, k->ea));
    CHECK_OK(p2p_secp_pubkey(k->peb, k->eb));
}

/* The auth signature: by A's ephemeral key over static-shared XOR nonce_a. */
static void check_auth_sig(const struct vkeys *k, const uint8_t sig[65])
{
    uint8_t shared[32], msg[32], rec[64];
    CHECK_OK(p2p_secp_ecdh(shared, k->psb, k->sa));
    for (int i = 0; i < 32; i++) msg[i] = shared[i] ^ k->na[i];
    CHECK_OK(p2p_secp_recover(rec, sig, msg));
    CHECK_MEM(rec, k->pea, 64);
    /* The 64-byte form verifies too (the vector signer produced low s). */
    CHECK_OK(p2p_secp_verify(sig, msg, k->pea));
}

/* Reads an RLP string header at p (within end); returns its payload or NULL. */
static const uint8_t *rlp_str(const uint8_t *p, const uint8_t *end, size_t want,
                              const uint8_t **next)
{
    size_t n, h;
    if (p >= end) return NULL;
    if (*p < 0x80) return NULL;
    if (*p <= 0xb7) {
        n = *p - 0x80u;
        h = 1;
    } else if (*p == 0xb8 && end - p >= 2) {
        n = p[1];
        h = 2;
    } else {
        return NULL;
    }
    if (n != want || (size_t)(end - p) < h + n) return NULL;
    *next = p + h + n;
    return p + h;
}

/* Decrypts an EIP-8 packet (2-byte size prefix = s2) with priv; returns
 * the plaintext length and the list payload bounds. */
static size_t open_eip8(uint8_t *pt, size_t cap, const char *name, const uint8_t priv[32],
                        const uint8_t **body, const uint8_t **end)
{
    static uint8_t pkt[2048];
    long n = tu_vector_hex(VEC, name, pkt, sizeof pkt);
    CHECK(n > 2 + P2P_ECIES_OVERHEAD);
    if (n <= 2 + P2P_ECIES_OVERHEAD) return 0;
    CHECK((size_t)((pkt[0] << 8) | pkt[1]) == (size_t)n - 2);
    size_t ptlen = 0;
    CHECK_OK(p2p_ecies_decrypt(pt, cap, &ptlen, priv, pkt + 2, (size_t)n - 2, pkt, 2));
    CHECK(ptlen == (size_t)n - 2 - P2P_ECIES_OVERHEAD);
    /* Legacy decoding (s2 empty) of an EIP-8 packet fails its MAC. */
    size_t junk;
    CHECK_ERR(p2p_ecies_decrypt(pt, cap, &junk, priv, pkt + 2, (size_t)n - 2, NULL, 0),
              P2P_EBADMAC);
    CHECK_OK(p2p_ecies_decrypt(pt, cap, &ptlen, priv, pkt + 2, (size_t)n - 2, pkt, 2));
    /* An RLP list with a 1- or 2-byte length; padding may follow it. */
    CHECK(pt[0] == 0xf8 || pt[0] == 0xf9);
    size_t ll = pt[0] - 0xf7u, len = 0;
    for (size_t i = 0; i < ll; i++) len = len << 8 | pt[1 + i];
    CHECK(1 + ll + len <= ptlen);
    *body = pt + 1 + ll;
    *end = pt + 1 + ll + len;
    return ptlen;
}

static void test_vectors(void)
{
    struct vkeys k;
    load_keys(&k);
    uint8_t pt[2048], pkt[2048];
    size_t ptlen = 0;
    const uint8_t *p, *end, *f;

    /* auth1: legacy, 307 bytes, no prefix: sig65 || keccak(eph)32 ||
     * pub64 || nonce32 || 0x00. */
    long n = tu_vector_hex(VEC, "auth1_legacy", pkt, sizeof pkt);
    CHECK(n == 307);
    CHECK_OK(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, k.sb, pkt, (size_t)n, NULL, 0));
    CHECK(ptlen == 194);
    check_auth_sig(&k, pt);
    uint8_t h[32];
    p2p_keccak256(h, k.pea, 64);
    CHECK_MEM(pt + 65, h, 32);
    CHECK_MEM(pt + 97, k.psa, 64);
    CHECK_MEM(pt + 161, k.na, 32);
    CHECK(pt[193] == 0x00);
    /* The wrong key (A's) fails the MAC. */
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, k.sa, pkt, (size_t)n, NULL, 0), P2P_EBADMAC);

    /* ack1: legacy, 210 bytes: eph-pub64 || nonce32 || 0x00. */
    n = tu_vector_hex(VEC, "ack1_legacy", pkt, sizeof pkt);
    CHECK(n == 210);
    CHECK_OK(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, k.sa, pkt, (size_t)n, NULL, 0));
    CHECK(ptlen == 97);
    CHECK_MEM(pt, k.peb, 64);
    CHECK_MEM(pt + 64, k.nb, 32);
    CHECK(pt[96] == 0x00);

    /* auth2 / auth3: [sig, initiator-pub, nonce, version, ...]. */
    static const char *auths[] = {"auth2_eip8_v4", "auth3_eip8_v56"};
    static const uint8_t auth_ver[] = {4, 56};
    for (int i = 0; i < 2; i++) {
        if (!open_eip8(pt, sizeof pt, auths[i], k.sb, &p, &end)) continue;
        const uint8_t *sig = rlp_str(p, end, 65, &p);
        CHECK(sig != NULL);
        if (sig) check_auth_sig(&k, sig);
        f = rlp_str(p, end, 64, &p);
        CHECK(f != NULL);
        if (f) CHECK_MEM(f, k.psa, 64);
        f = rlp_str(p, end, 32, &p);
        CHECK(f != NULL);
        if (f) CHECK_MEM(f, k.na, 32);
        CHECK(p < end && *p == auth_ver[i]);
    }
    /* ack2 / ack3: [eph-pub, nonce, version, ...] with A's key. */
    static const char *acks[] = {"ack2_eip8_v4", "ack3_eip8_v57"};
    static const uint8_t ack_ver[] = {4, 57};
    for (int i = 0; i < 2; i++) {
        if (!open_eip8(pt, sizeof pt, acks[i], k.sa, &p, &end)) continue;
        f = rlp_str(p, end, 64, &p);
        CHECK(f != NULL);
        if (f) CHECK_MEM(f, k.peb, 64);
        f = rlp_str(p, end, 32, &p);
        CHECK(f != NULL);
        if (f) CHECK_MEM(f, k.nb, 32);
        CHECK(p < end && *p == ack_ver[i]);
    }
}

static void test_roundtrip(void)
{
    uint8_t priv[32], pub[64], msg[400], ct[400 + P2P_ECIES_OVERHEAD], pt[400];
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    unsigned bad = 0;
    for (size_t len = 0; len <= 400; len += (len < 40 ? 1 : 29)) {
        uint8_t s2[2] = {(uint8_t)(len >> 8), (uint8_t)len};
        size_t s2len = len % 2 ? 2 : 0;
        tu_rand_bytes(msg, len);
        if (p2p_ecies_encrypt(ct, len + P2P_ECIES_OVERHEAD, pub, msg, len, s2, s2len)) bad++;
        size_t ptlen = 999;
        if (p2p_ecies_decrypt(pt, len, &ptlen, priv, ct, len + P2P_ECIES_OVERHEAD, s2, s2len))
            bad++;
        if (ptlen != len || memcmp(pt, msg, len) != 0) bad++;
        if (ct[0] != 0x04 || p2p_secp_pubkey_check(ct + 1) != 0) bad++;
        if (len >= 16 && memcmp(ct + 81, msg, 16) == 0) bad++; /* encrypted */
    }
    CHECK(bad == 0);
    /* Two encryptions of one message differ (fresh R and IV). */
    uint8_t c2[64 + P2P_ECIES_OVERHEAD];
    memset(msg, 7, 64);
    CHECK_OK(p2p_ecies_encrypt(ct, sizeof ct, pub, msg, 64, NULL, 0));
    CHECK_OK(p2p_ecies_encrypt(c2, sizeof c2, pub, msg, 64, NULL, 0));
    CHECK(memcmp(ct, c2, 65) != 0);
    CHECK(memcmp(ct + 65, c2 + 65, 16) != 0);
}

static void test_layout(void)
{
    uint8_t priv[32], pub[64], eph[32], ephpub[64], iv[16], msg[100], a[213], b[213];
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    CHECK_OK(p2p_secp_keygen(eph));
    CHECK_OK(p2p_secp_pubkey(ephpub, eph));
    tu_rand_bytes(iv, 16);
    tu_rand_bytes(msg, 100);
    CHECK_OK(p2p_ecies_encrypt_with(a, sizeof a, pub, msg, 100, NULL, 0, eph, iv));
    CHECK_OK(p2p_ecies_encrypt_with(b, sizeof b, pub, msg, 100, NULL, 0, eph, iv));
    CHECK_MEM(a, b, sizeof a); /* deterministic given R and IV */
    CHECK(a[0] == 0x04);
    CHECK_MEM(a + 1, ephpub, 64);
    CHECK_MEM(a + 65, iv, 16);
    /* CTR: the keystream is a function of (key, IV); XOR of two
     * ciphertexts equals XOR of the plaintexts. */
    uint8_t msg2[100];
    tu_rand_bytes(msg2, 100);
    CHECK_OK(p2p_ecies_encrypt_with(b, sizeof b, pub, msg2, 100, NULL, 0, eph, iv));
    int x = 1;
    for (int i = 0; i < 100; i++) x &= (a[81 + i] ^ b[81 + i]) == (msg[i] ^ msg2[i]);
    CHECK(x);
    /* s2 changes only the tag. */
    uint8_t s2[2] = {0x01, 0x02};
    CHECK_OK(p2p_ecies_encrypt_with(b, sizeof b, pub, msg, 100, s2, 2, eph, iv));
    CHECK_MEM(a, b, 181);
    CHECK(memcmp(a + 181, b + 181, 32) != 0);
    /* Invalid ephemeral key or recipient key. */
    uint8_t zero[32] = {0}, badpub[64];
    CHECK_ERR(p2p_ecies_encrypt_with(b, sizeof b, pub, msg, 100, NULL, 0, zero, iv), P2P_EBADKEY);
    memcpy(badpub, pub, 64);
    badpub[63] ^= 1;
    CHECK_ERR(p2p_ecies_encrypt_with(b, sizeof b, badpub, msg, 100, NULL, 0, eph, iv), P2P_EBADKEY);
    CHECK_ERR(p2p_ecies_encrypt(b, sizeof b, badpub, msg, 100, NULL, 0), P2P_EBADKEY);
    uint8_t zpub[64] = {0};
    CHECK_ERR(p2p_ecies_encrypt(b, sizeof b, zpub, msg, 0, NULL, 0), P2P_EBADKEY);
    /* Output too small. */
    CHECK_ERR(p2p_ecies_encrypt(b, 212, pub, msg, 100, NULL, 0), P2P_EINVAL);
    CHECK_ERR(p2p_ecies_encrypt_with(b, 0, pub, msg, 100, NULL, 0, eph, iv), P2P_EINVAL);
    CHECK_ERR(p2p_ecies_encrypt(b, sizeof b, pub, msg, SIZE_MAX - 50, NULL, 0), P2P_EINVAL);
}

static void test_tamper(void)
{
    uint8_t priv[32], pub[64], msg[40], ct[40 + P2P_ECIES_OVERHEAD], pt[64];
    uint8_t s2[2] = {0x00, 40 + P2P_ECIES_OVERHEAD};
    size_t len = sizeof ct, ptlen;
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    tu_rand_bytes(msg, sizeof msg);
    CHECK_OK(p2p_ecies_encrypt(ct, sizeof ct, pub, msg, sizeof msg, s2, 2));
    CHECK_OK(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, len, s2, 2));

    /* Every single-bit flip anywhere is an error; which one depends on
     * where: prefix -> EDECODE, R -> EBADKEY (or EBADMAC had
     * the flip landed on another curve point), rest -> EBADMAC. */
    unsigned bad = 0, rkey = 0, rmac = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            ct[i] ^= (uint8_t)(1 << bit);
            memset(pt, 0xee, sizeof pt);
            int rc = p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, len, s2, 2);
            if (i == 0) {
                if (rc != P2P_EDECODE) bad++;
            } else if (i < 65) {
                if (rc == P2P_EBADKEY)
                    rkey++;
                else if (rc == P2P_EBADMAC)
                    rmac++;
                else
                    bad++;
            } else if (rc != P2P_EBADMAC) {
                bad++;
            }
            if (pt[0] != 0xee) bad++; /* nothing decrypted before the MAC */
            ct[i] ^= (uint8_t)(1 << bit);
        }
    CHECK(bad == 0);
    /* A flipped bit in R leaves (X, Y) off the curve (all but certainly). */
    CHECK(rkey > 0);
    CHECK(rkey + rmac == 64 * 8);

    /* Wrong or missing s2. */
    uint8_t w[2] = {0x00, 41 + P2P_ECIES_OVERHEAD};
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, len, w, 2), P2P_EBADMAC);
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, len, s2, 1), P2P_EBADMAC);
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, len, NULL, 0), P2P_EBADMAC);
    /* Wrong private key. */
    uint8_t other[32];
    CHECK_OK(p2p_secp_keygen(other));
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, other, ct, len, s2, 2), P2P_EBADMAC);
    /* Truncated or extended. */
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, len - 1, s2, 2), P2P_EBADMAC);
    uint8_t longer[sizeof ct + 1];
    memcpy(longer, ct, len);
    longer[len] = 0;
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, longer, len + 1, s2, 2), P2P_EBADMAC);
    /* Too short: every length below the overhead. */
    unsigned wrong = 0;
    for (size_t l = 0; l < P2P_ECIES_OVERHEAD; l++)
        if (p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, ct, l, s2, 2) != P2P_EDECODE) wrong++;
    CHECK(wrong == 0);
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, NULL, 0, NULL, 0), P2P_EDECODE);
    /* Output too small. */
    CHECK_ERR(p2p_ecies_decrypt(pt, 39, &ptlen, priv, ct, len, s2, 2), P2P_EINVAL);
    CHECK_OK(p2p_ecies_decrypt(pt, 40, &ptlen, priv, ct, len, s2, 2));
    CHECK_MEM(pt, msg, 40);
    /* A message of exactly the overhead (empty plaintext) works. */
    uint8_t e[P2P_ECIES_OVERHEAD];
    CHECK_OK(p2p_ecies_encrypt(e, sizeof e, pub, NULL, 0, NULL, 0));
    ptlen = 7;
    CHECK_OK(p2p_ecies_decrypt(pt, 0, &ptlen, priv, e, sizeof e, NULL, 0));
    CHECK(ptlen == 0);
}

static void test_invalid_r(void)
{
    uint8_t priv[32], pub[64], ct[10 + P2P_ECIES_OVERHEAD], pt[10];
    size_t ptlen;
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    uint8_t msg[10] = {1, 2, 3};
    CHECK_OK(p2p_ecies_encrypt(ct, sizeof ct, pub, msg, 10, NULL, 0));
    /* R off the curve (Y + 1), R = 0, X = p. */
    uint8_t c2[sizeof ct];
    memcpy(c2, ct, sizeof ct);
    c2[64] ^= 1;
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, c2, sizeof c2, NULL, 0), P2P_EBADKEY);
    memset(c2 + 1, 0, 64);
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, c2, sizeof c2, NULL, 0), P2P_EBADKEY);
    tu_unhex(c2 + 1, 32, "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f");
    memcpy(c2 + 33, ct + 33, 32);
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, c2, sizeof c2, NULL, 0), P2P_EBADKEY);
    /* Compressed or hybrid prefixes are not the devp2p form. */
    static const uint8_t prefixes[] = {0x00, 0x02, 0x03, 0x05, 0x06, 0x07, 0xff};
    for (size_t i = 0; i < sizeof prefixes; i++) {
        memcpy(c2, ct, sizeof ct);
        c2[0] = prefixes[i];
        CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, priv, c2, sizeof c2, NULL, 0),
                  P2P_EDECODE);
    }
    /* Invalid private key. */
    uint8_t zero[32] = {0};
    CHECK_ERR(p2p_ecies_decrypt(pt, sizeof pt, &ptlen, zero, ct, sizeof ct, NULL, 0), P2P_EBADKEY);
}

static void test_overlap(void)
{
    uint8_t priv[32], pub[64], msg[300], buf[300 + P2P_ECIES_OVERHEAD + 8];
    size_t ptlen;
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(pub, priv));
    tu_rand_bytes(msg, sizeof msg);
    /* Encrypt with the message already where the ciphertext goes, and with
     * it at the start of the output buffer. */
    memcpy(buf + 81, msg, 300);
    CHECK_OK(p2p_ecies_encrypt(buf, 300 + P2P_ECIES_OVERHEAD, pub, buf + 81, 300, NULL, 0));
    CHECK_OK(p2p_ecies_decrypt(buf, sizeof buf, &ptlen, priv, buf, 300 + P2P_ECIES_OVERHEAD, NULL,
                               0)); /* in place */
    CHECK(ptlen == 300);
    CHECK_MEM(buf, msg, 300);
    CHECK_OK(p2p_ecies_encrypt(buf, 300 + P2P_ECIES_OVERHEAD, pub, buf, 300, NULL, 0));
    CHECK_OK(p2p_ecies_decrypt(buf + 8, 300, &ptlen, priv, buf, 300 + P2P_ECIES_OVERHEAD, NULL, 0));
    CHECK(ptlen == 300);
    CHECK_MEM(buf + 8, msg, 300);
}

int main(void)
{
    tu_seed((uint64_t)time(NULL));
    test_vectors();
    test_roundtrip();
    test_layout();
    test_tamper();
    test_invalid_r();
    test_overlap();
    return tu_done("ecies");
}
