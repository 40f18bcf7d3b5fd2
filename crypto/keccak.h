/*
 * crypto/keccak.h: Keccak-256 (the original 0x01 padding Ethereum uses, not
 * SHA3's 0x06), built on Nettle's Keccak-f[1600] permutation (sha3_permute).
 *
 * The state is a plain value: it can be copied with `=` to clone it, which
 * the RLPx MAC states need (digest without finalising, keep absorbing).
 *
 * Thread-safety: a state belongs to one thread at a time; functions are pure.
 */
#ifndef P2P_CRYPTO_KECCAK_H
#define P2P_CRYPTO_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define P2P_KECCAK256_RATE 136 /* bytes absorbed per permutation */

typedef struct p2p_keccak {
    uint64_t a[25]; /* lanes, little-endian byte order as Nettle expects */
    size_t pos;     /* bytes absorbed into the current block, < RATE */
} p2p_keccak_t;

/* Resets k to the empty state. */
void p2p_keccak_init(p2p_keccak_t *k);

/* Absorbs len bytes of data into k. */
void p2p_keccak_update(p2p_keccak_t *k, const uint8_t *data, size_t len);

/* Out: the Keccak-256 digest of everything absorbed so far.  k is not
 * modified (the padding is applied to a copy), so absorbing may go on. */
void p2p_keccak_digest(const p2p_keccak_t *k, uint8_t out[32]);

/* One-shot Keccak-256 of data. */
void p2p_keccak256(uint8_t out[32], const uint8_t *data, size_t len);

/* Keccak-256 of the concatenation a || b (either may be empty). */
void p2p_keccak256_2(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
