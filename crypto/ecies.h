/*
 * crypto/ecies.h: ECIES as devp2p's RLPx handshake uses it.
 *
 *   R = ephemeral public key, z = x(ECDH(r, K)),
 *   k = concat-KDF-SHA256(z, 32 bytes, s1 empty) = SHA256(00000001 || z),
 *   ke = k[0:16] (AES-128-CTR key), km = SHA256(k[16:32]) (HMAC key),
 *   out = 0x04||R(64) || IV(16) || AES-128-CTR(ke, IV, m) || HMAC-SHA256(km, IV||c||s2).
 *
 * s2 is the "shared MAC data": the 2-byte big-endian size prefix under
 * EIP-8, empty for legacy packets.  Overhead is 65+16+32 = 113 bytes.
 *
 * Secrets (ephemeral key, z, k) are wiped before every return.  Input and
 * output buffers may overlap (e.g. decrypting in place).
 * Thread-safety: pure functions; any thread.
 */
#ifndef P2P_CRYPTO_ECIES_H
#define P2P_CRYPTO_ECIES_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define P2P_ECIES_OVERHEAD 113

/* Encrypts msg (msglen bytes) to pub.  out must hold msglen + 113 bytes.
 * Returns 0, P2P_EBADKEY (pub not on the curve), P2P_EINVAL (outcap too
 * small) or P2P_ESYS (RNG failure). */
P2P_MUST_CHECK int p2p_ecies_encrypt(uint8_t *out, size_t outcap, const uint8_t pub[64],
                                     const uint8_t *msg, size_t msglen, const uint8_t *s2,
                                     size_t s2len);

/* As p2p_ecies_encrypt with caller-chosen ephemeral key and IV (tests and
 * vector reproduction only). */
P2P_MUST_CHECK int p2p_ecies_encrypt_with(uint8_t *out, size_t outcap, const uint8_t pub[64],
                                          const uint8_t *msg, size_t msglen, const uint8_t *s2,
                                          size_t s2len, const uint8_t eph_priv[32],
                                          const uint8_t iv[16]);

/* Decrypts in (inlen bytes) with priv.  Out: the plaintext (inlen - 113
 * bytes) in out, its length in *outlen.  The MAC is checked (in constant
 * time) before any decryption.  Returns 0, P2P_EDECODE (too short or not an
 * uncompressed point prefix), P2P_EBADKEY (R not on the curve), P2P_EBADMAC
 * or P2P_EINVAL (outcap too small). */
P2P_MUST_CHECK int p2p_ecies_decrypt(uint8_t *out, size_t outcap, size_t *outlen,
                                     const uint8_t priv[32], const uint8_t *in, size_t inlen,
                                     const uint8_t *s2, size_t s2len);

#endif
