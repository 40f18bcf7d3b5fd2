/*
 * crypto/ecies.c: ECIES as the RLPx handshake uses it (see ecies.h for the
 * construction): secp256k1 ECDH, concat-KDF SHA-256 (one block: counter
 * 00000001), AES-128-CTR and HMAC-SHA256 from Nettle.
 *
 * Layout: out = 0x04 || R(64) || IV(16) || c || tag(32).
 * Decryption checks, in order: length and the 0x04 prefix (P2P_EDECODE),
 * output room (P2P_EINVAL), R on the curve (P2P_EBADKEY, before any ECDH:
 * invalid-curve points would leak the static key), then the tag in constant
 * time (P2P_EBADMAC) and only then decrypts.
 *
 * Buffers may overlap (the message is moved into place before the stream
 * cipher runs in place), so a caller may decrypt or encrypt within one
 * buffer.  z, the KDF output, both derived keys and the cipher and MAC
 * contexts are wiped on every return.
 *
 * Thread-safety: pure; any thread.
 */
#include "crypto/ecies.h"

#include <string.h>

#include <nettle/aes.h>
#include <nettle/ctr.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>

#include "crypto/secp.h"
#include "crypto/util.h"

#define R_LEN 65
#define IV_LEN 16
#define TAG_LEN 32
#define HDR_LEN (R_LEN + IV_LEN)

_Static_assert(HDR_LEN + TAG_LEN == P2P_ECIES_OVERHEAD, "ECIES overhead");

struct keys {
    uint8_t z[32];
    uint8_t k[32];  /* concat-KDF output: ke = k[0:16] */
    uint8_t km[32]; /* SHA256(k[16:32]) */
    struct aes128_ctx aes;
    struct hmac_sha256_ctx mac;
    struct sha256_ctx sha;
};

/* From the shared point's x (already in ks->z): ke, km and the contexts. */
static void derive(struct keys *ks)
{
    static const uint8_t counter[4] = {0, 0, 0, 1};
    sha256_init(&ks->sha);
    sha256_update(&ks->sha, sizeof counter, counter);
    sha256_update(&ks->sha, sizeof ks->z, ks->z);
    sha256_digest(&ks->sha, sizeof ks->k, ks->k);
    sha256_init(&ks->sha);
    sha256_update(&ks->sha, 16, ks->k + 16);
    sha256_digest(&ks->sha, sizeof ks->km, ks->km);
    aes128_set_encrypt_key(&ks->aes, ks->k);
    hmac_sha256_set_key(&ks->mac, sizeof ks->km, ks->km);
}

static void tag(struct keys *ks, uint8_t out[TAG_LEN], const uint8_t *ivct, size_t ivctlen,
                const uint8_t *s2, size_t s2len)
{
    hmac_sha256_update(&ks->mac, ivctlen, ivct);
    if (s2len) hmac_sha256_update(&ks->mac, s2len, s2);
    hmac_sha256_digest(&ks->mac, TAG_LEN, out);
}

static void ctr(struct keys *ks, const uint8_t iv[IV_LEN], uint8_t *buf, size_t len)
{
    uint8_t c[IV_LEN];
    memcpy(c, iv, IV_LEN);
    if (len)
        ctr_crypt(&ks->aes, (nettle_cipher_func *)aes128_encrypt, AES_BLOCK_SIZE, c, len, buf, buf);
    p2p_wipe(c, sizeof c);
}

int p2p_ecies_encrypt_with(uint8_t *out, size_t outcap, const uint8_t pub[64], const uint8_t *msg,
                           size_t msglen, const uint8_t *s2, size_t s2len,
                           const uint8_t eph_priv[32], const uint8_t iv[16])
{
    if (msglen > SIZE_MAX - P2P_ECIES_OVERHEAD || outcap < msglen + P2P_ECIES_OVERHEAD)
        return P2P_EINVAL;

    struct keys ks;
    uint8_t r[64], ivc[IV_LEN];
    /* The ECDH validates pub (on the curve) before multiplying. */
    int rc = p2p_secp_ecdh(ks.z, pub, eph_priv);
    if (rc == 0) rc = p2p_secp_pubkey(r, eph_priv);
    if (rc != 0) {
        P2P_WIPE(ks);
        return P2P_EBADKEY;
    }
    derive(&ks);
    memcpy(ivc, iv, IV_LEN);

    /* Move the message first: msg may overlap out. */
    uint8_t *c = out + HDR_LEN;
    if (msglen) memmove(c, msg, msglen);
    out[0] = 0x04;
    memcpy(out + 1, r, 64);
    memcpy(out + R_LEN, ivc, IV_LEN);
    ctr(&ks, ivc, c, msglen);
    tag(&ks, c + msglen, out + R_LEN, IV_LEN + msglen, s2, s2len);

    P2P_WIPE(ks);
    return 0;
}

int p2p_ecies_encrypt(uint8_t *out, size_t outcap, const uint8_t pub[64], const uint8_t *msg,
                      size_t msglen, const uint8_t *s2, size_t s2len)
{
    uint8_t eph[32], iv[IV_LEN];
    int rc = p2p_secp_keygen(eph);
    if (rc == 0) rc = p2p_random(iv, sizeof iv);
    if (rc == 0) rc = p2p_ecies_encrypt_with(out, outcap, pub, msg, msglen, s2, s2len, eph, iv);
    P2P_WIPE(eph);
    return rc;
}

int p2p_ecies_decrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t priv[32],
                      const uint8_t *in, size_t inlen, const uint8_t *s2, size_t s2len)
{
    if (inlen < P2P_ECIES_OVERHEAD || in[0] != 0x04) return P2P_EDECODE;
    size_t n = inlen - P2P_ECIES_OVERHEAD;
    if (outcap < n) return P2P_EINVAL;

    struct keys ks;
    uint8_t iv[IV_LEN], want[TAG_LEN], got[TAG_LEN];
    /* p2p_secp_ecdh validates R (on the curve, coordinates < p) before
     * it multiplies. */
    if (p2p_secp_ecdh(ks.z, in + 1, priv) != 0) {
        P2P_WIPE(ks);
        return P2P_EBADKEY;
    }
    derive(&ks);
    memcpy(iv, in + R_LEN, IV_LEN);
    memcpy(got, in + HDR_LEN + n, TAG_LEN);
    tag(&ks, want, in + R_LEN, IV_LEN + n, s2, s2len);
    if (!p2p_ct_equal(want, got, TAG_LEN)) {
        P2P_WIPE(ks);
        P2P_WIPE(want);
        return P2P_EBADMAC;
    }
    /* in may overlap out: move the ciphertext, then decrypt in place. */
    if (n) memmove(out, in + HDR_LEN, n);
    ctr(&ks, iv, out, n);
    *outlen = n;

    P2P_WIPE(ks);
    P2P_WIPE(want);
    return 0;
}
