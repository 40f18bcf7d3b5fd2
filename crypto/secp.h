/*
 * crypto/secp.h: secp256k1 as devp2p uses it, on libsecp256k1.
 *
 * Public keys travel as 64 bytes X||Y (the devp2p node key form).  Every
 * function that takes a public key validates that it is a point on the
 * curve before using it (invalid-curve keys are rejected with P2P_EBADKEY),
 * so a key from the network may be passed in directly.
 *
 * Signatures are 65 bytes r||s||v with v in {0,1} (recovery id), as in
 * discv4 and the RLPx auth message; ENR v4 uses the 64-byte r||s form.
 * Signing produces low-s signatures; verification requires low s.
 *
 * Thread-safety: a single global context is created once (pthread_once,
 * randomised for side-channel blinding) and only read afterwards, so every
 * function may be called from any thread concurrently.
 */
#ifndef P2P_CRYPTO_SECP_H
#define P2P_CRYPTO_SECP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define P2P_PUBKEY_LEN 64
#define P2P_PRIVKEY_LEN 32
#define P2P_SIG_LEN 65
#define P2P_NODEID_LEN 32

/* Generates a new private key from the OS RNG (retrying until valid). */
P2P_MUST_CHECK int p2p_secp_keygen(uint8_t priv[32]);

/* Returns 0 if priv is a valid secret key (0 < priv < n), else P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_secp_privkey_check(const uint8_t priv[32]);

/* Out: pub, the 64-byte public key of priv.  Returns 0 or P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_secp_pubkey(uint8_t pub[64], const uint8_t priv[32]);

/* Parses a public key of 33 (compressed), 64 (X||Y) or 65 (0x04||X||Y)
 * bytes and validates it.  Out: pub as 64 bytes.  Returns 0 or P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_secp_pubkey_parse(uint8_t pub[64], const uint8_t *in, size_t inlen);

/* Returns 0 if the 64-byte pub is a valid curve point, else P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_secp_pubkey_check(const uint8_t pub[64]);

/* Out: the 33-byte compressed form of pub.  Returns 0 or P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_secp_pubkey_compress(uint8_t out[33], const uint8_t pub[64]);

/* ECDH as devp2p uses it: out = the raw X coordinate of priv*pub (no hash).
 * Returns 0, P2P_EBADKEY (pub invalid or priv invalid). */
P2P_MUST_CHECK int p2p_secp_ecdh(uint8_t x[32], const uint8_t pub[64], const uint8_t priv[32]);

/* Recoverable signature of a 32-byte hash: out = r||s||v, v in {0,1}.
 * Returns 0 or P2P_EBADKEY / P2P_ECRYPTO. */
P2P_MUST_CHECK int p2p_secp_sign(uint8_t sig[65], const uint8_t hash[32], const uint8_t priv[32]);

/* Recovers the signer's 64-byte public key from sig (r||s||v, v in {0,1})
 * over hash.  Like other clients' recovery, a high s is accepted (the
 * packet hash covers the signature, so a twin is just another packet).
 * Returns 0 or P2P_EBADSIG (v > 1, r or s zero or >= n, no such key). */
P2P_MUST_CHECK int p2p_secp_recover(uint8_t pub[64], const uint8_t sig[65], const uint8_t hash[32]);

/* Verifies a 64-byte r||s signature over hash by pub (low-s required).
 * Returns 0, P2P_EBADSIG or P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_secp_verify(const uint8_t sig[64], const uint8_t hash[32],
                                   const uint8_t pub[64]);

/* Node ID of a public key: keccak256(X||Y). */
void p2p_node_id(uint8_t id[32], const uint8_t pub[64]);

#endif
