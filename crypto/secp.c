/*
 * crypto/secp.c: secp256k1 keys, ECDH (raw X), recoverable signatures,
 * recovery and verification on libsecp256k1.
 *
 * One global context, created on first use under pthread_once and
 * randomised (secp256k1_context_randomize) for side-channel blinding of the
 * signing and key-generation multiplications; after that it is only read,
 * which libsecp256k1 allows from any number of threads at once.  If the OS
 * RNG fails at that moment the context is still usable, only unblinded.
 *
 * Every public key that comes in as bytes goes through
 * secp256k1_ec_pubkey_parse, which rejects coordinates >= p and points not
 * on the curve, before any other use.  Stack copies of secrets (ECDH
 * output, seed bytes) are wiped before returning.
 *
 * Thread-safety: any thread, concurrently.
 */
#include "crypto/secp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1.h>
#include <secp256k1_ecdh.h>
#include <secp256k1_recovery.h>

#include "crypto/keccak.h"
#include "crypto/util.h"

static secp256k1_context *g_ctx;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void ctx_init(void)
{
    secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!c) {
        /* Out of memory at start-up: nothing in the node can work. */
        fprintf(stderr, "p2p: secp256k1_context_create failed\n");
        abort();
    }
    uint8_t seed[32];
    if (p2p_random(seed, sizeof seed) == 0) {
        /* Returns 0 only for a NULL context; blinding is best effort. */
        (void)!secp256k1_context_randomize(c, seed);
    }
    p2p_wipe(seed, sizeof seed);
    g_ctx = c;
}

static const secp256k1_context *ctx(void)
{
    pthread_once(&g_once, ctx_init);
    return g_ctx;
}

/* Parses a 64-byte X||Y key into pk, validating it. */
static int load_pub(const secp256k1_context *c, secp256k1_pubkey *pk, const uint8_t pub[64])
{
    uint8_t buf[65];
    buf[0] = 0x04;
    memcpy(buf + 1, pub, 64);
    return secp256k1_ec_pubkey_parse(c, pk, buf, sizeof buf) ? 0 : P2P_EBADKEY;
}

static void store_pub(const secp256k1_context *c, uint8_t pub[64], const secp256k1_pubkey *pk)
{
    uint8_t buf[65];
    size_t n = sizeof buf;
    (void)secp256k1_ec_pubkey_serialize(c, buf, &n, pk, SECP256K1_EC_UNCOMPRESSED);
    memcpy(pub, buf + 1, 64);
}

int p2p_secp_keygen(uint8_t priv[32])
{
    const secp256k1_context *c = ctx();
    /* The chance that 32 random bytes are not a valid key is ~2^-128. */
    for (;;) {
        if (p2p_random(priv, 32) != 0) {
            p2p_wipe(priv, 32);
            return P2P_ESYS;
        }
        if (secp256k1_ec_seckey_verify(c, priv)) return 0;
    }
}

int p2p_secp_privkey_check(const uint8_t priv[32])
{
    return secp256k1_ec_seckey_verify(ctx(), priv) ? 0 : P2P_EBADKEY;
}

int p2p_secp_pubkey(uint8_t pub[64], const uint8_t priv[32])
{
    const secp256k1_context *c = ctx();
    secp256k1_pubkey pk;
    if (!secp256k1_ec_pubkey_create(c, &pk, priv)) return P2P_EBADKEY;
    store_pub(c, pub, &pk);
    return 0;
}

int p2p_secp_pubkey_parse(uint8_t pub[64], const uint8_t *in, size_t inlen)
{
    const secp256k1_context *c = ctx();
    secp256k1_pubkey pk;
    switch (inlen) {
    case 33:
        if (in[0] != 0x02 && in[0] != 0x03) return P2P_EBADKEY;
        if (!secp256k1_ec_pubkey_parse(c, &pk, in, 33)) return P2P_EBADKEY;
        break;
    case 64:
        if (load_pub(c, &pk, in) != 0) return P2P_EBADKEY;
        break;
    case 65:
        /* Only the plain uncompressed form; libsecp256k1 would also take
         * the "hybrid" 0x06/0x07 prefixes, which no devp2p peer sends. */
        if (in[0] != 0x04) return P2P_EBADKEY;
        if (!secp256k1_ec_pubkey_parse(c, &pk, in, 65)) return P2P_EBADKEY;
        break;
    default:
        return P2P_EBADKEY;
    }
    store_pub(c, pub, &pk);
    return 0;
}

int p2p_secp_pubkey_check(const uint8_t pub[64])
{
    secp256k1_pubkey pk;
    return load_pub(ctx(), &pk, pub);
}

int p2p_secp_pubkey_compress(uint8_t out[33], const uint8_t pub[64])
{
    const secp256k1_context *c = ctx();
    secp256k1_pubkey pk;
    if (load_pub(c, &pk, pub) != 0) return P2P_EBADKEY;
    size_t n = 33;
    (void)secp256k1_ec_pubkey_serialize(c, out, &n, &pk, SECP256K1_EC_COMPRESSED);
    return 0;
}

/* secp256k1_ecdh hash callback: devp2p uses the bare X coordinate. */
static int ecdh_copy_x(unsigned char *output, const unsigned char *x32, const unsigned char *y32,
                       void *data)
{
    (void)y32;
    (void)data;
    memcpy(output, x32, 32);
    return 1;
}

int p2p_secp_ecdh(uint8_t x[32], const uint8_t pub[64], const uint8_t priv[32])
{
    const secp256k1_context *c = ctx();
    secp256k1_pubkey pk;
    if (load_pub(c, &pk, pub) != 0) {
        p2p_wipe(x, 32);
        return P2P_EBADKEY;
    }
    if (!secp256k1_ecdh(c, x, &pk, priv, ecdh_copy_x, NULL)) {
        p2p_wipe(x, 32);
        return P2P_EBADKEY;
    }
    return 0;
}

int p2p_secp_sign(uint8_t sig[65], const uint8_t hash[32], const uint8_t priv[32])
{
    const secp256k1_context *c = ctx();
    if (!secp256k1_ec_seckey_verify(c, priv)) return P2P_EBADKEY;
    secp256k1_ecdsa_recoverable_signature rs;
    /* Default nonce function: RFC 6979, deterministic; s is always low. */
    if (!secp256k1_ecdsa_sign_recoverable(c, &rs, hash, priv, NULL, NULL)) return P2P_ECRYPTO;
    int recid = 0;
    (void)secp256k1_ecdsa_recoverable_signature_serialize_compact(c, sig, &recid, &rs);
    sig[64] = (uint8_t)recid;
    return 0;
}

int p2p_secp_recover(uint8_t pub[64], const uint8_t sig[65], const uint8_t hash[32])
{
    const secp256k1_context *c = ctx();
    if (sig[64] > 1) return P2P_EBADSIG;
    secp256k1_ecdsa_recoverable_signature rs;
    if (!secp256k1_ecdsa_recoverable_signature_parse_compact(c, &rs, sig, sig[64]))
        return P2P_EBADSIG;
    secp256k1_pubkey pk;
    if (!secp256k1_ecdsa_recover(c, &pk, &rs, hash)) return P2P_EBADSIG;
    store_pub(c, pub, &pk);
    return 0;
}

int p2p_secp_verify(const uint8_t sig[64], const uint8_t hash[32], const uint8_t pub[64])
{
    const secp256k1_context *c = ctx();
    secp256k1_pubkey pk;
    if (load_pub(c, &pk, pub) != 0) return P2P_EBADKEY;
    secp256k1_ecdsa_signature s;
    if (!secp256k1_ecdsa_signature_parse_compact(c, &s, sig)) return P2P_EBADSIG;
    /* normalize returns 1 if s was high: such signatures are malleable
     * duplicates and are rejected (as secp256k1_ecdsa_verify also does). */
    if (secp256k1_ecdsa_signature_normalize(c, NULL, &s)) return P2P_EBADSIG;
    if (!secp256k1_ecdsa_verify(c, &s, hash, &pk)) return P2P_EBADSIG;
    return 0;
}

void p2p_node_id(uint8_t id[32], const uint8_t pub[64])
{
    p2p_keccak256(id, pub, 64);
}
