/*
 * crypto/keccak.c: Keccak-256 (original 0x01 ... 0x80 padding) on Nettle's
 * Keccak-f[1600] permutation (sha3_permute).
 *
 * Nettle keeps the 25 lanes as native uint64_t and maps message bytes onto
 * them little-endian: byte i of a block is bits 8*(i%8).. of lane i/8.  We
 * absorb by XORing whole little-endian words straight into the lanes (no
 * block buffer), so the hot path (the RLPx frame MACs absorb every byte of
 * every frame) costs one load and one XOR per 8 bytes plus the permutation.
 * When an earlier update ended mid-lane, each word is split across two lanes
 * with shifts instead of falling back to bytes; only the last < 8 bytes of
 * an update are absorbed byte by byte.
 *
 * The digest pads a copy of the state, so a state can keep absorbing after a
 * digest, and states can be cloned by plain assignment.  Every copy of a
 * state is wiped before return (they hold RLPx MAC and handshake secrets).
 *
 * Thread-safety: a state is owned by one thread at a time; no globals.
 */
#include "crypto/keccak.h"
#include "crypto/util.h"

#include <endian.h>
#include <string.h>

#include <nettle/sha3.h>

#define RATE P2P_KECCAK256_RATE
#define RATE_LANES (RATE / 8)

_Static_assert(RATE % 8 == 0, "rate must be whole lanes");
_Static_assert(sizeof(struct sha3_state) == sizeof(((p2p_keccak_t *)0)->a),
               "p2p_keccak_t lanes must match Nettle's sha3_state");

static inline void permute(p2p_keccak_t *k)
{
    /* p2p_keccak_t.a has exactly the layout of struct sha3_state (checked
     * above); the project builds with -fno-strict-aliasing. */
    sha3_permute((struct sha3_state *)(void *)k->a);
}

static inline uint64_t load64le(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return le64toh(w);
}

static inline void xor_byte(p2p_keccak_t *k, size_t pos, uint8_t b)
{
    k->a[pos / 8] ^= (uint64_t)b << (8 * (pos % 8));
}

void p2p_keccak_init(p2p_keccak_t *k)
{
    memset(k, 0, sizeof *k);
}

void p2p_keccak_update(p2p_keccak_t *k, const uint8_t *data, size_t len)
{
    size_t pos = k->pos;
    unsigned shift = 8 * (unsigned)(pos % 8);

    if (shift == 0) {
        /* Lane-aligned: whole blocks of 17 words, else one word at a time. */
        while (len >= 8) {
            if (pos == 0 && len >= RATE) {
                for (size_t i = 0; i < RATE_LANES; i++) k->a[i] ^= load64le(data + 8 * i);
                permute(k);
                data += RATE;
                len -= RATE;
                continue;
            }
            k->a[pos / 8] ^= load64le(data);
            pos += 8;
            data += 8;
            len -= 8;
            if (pos == RATE) {
                permute(k);
                pos = 0;
            }
        }
    } else {
        /* Not lane-aligned (an earlier update ended mid-lane): each input
         * word straddles two lanes; across the block end its high part
         * goes into lane 0 of the next block, after the permutation. */
        while (len >= 8) {
            uint64_t w = load64le(data);
            size_t i = pos / 8;
            k->a[i] ^= w << shift;
            if (i == RATE_LANES - 1) {
                permute(k);
                k->a[0] ^= w >> (64 - shift);
                pos = pos + 8 - RATE;
            } else {
                k->a[i + 1] ^= w >> (64 - shift);
                pos += 8;
            }
            data += 8;
            len -= 8;
        }
    }
    /* Tail: fewer than 8 bytes. */
    while (len > 0) {
        xor_byte(k, pos++, *data++);
        len--;
        if (pos == RATE) {
            permute(k);
            pos = 0;
        }
    }
    k->pos = pos;
}

/* Pads and permutes t in place and writes the digest: t is spent. */
static void finish(p2p_keccak_t *t, uint8_t out[32])
{
    xor_byte(t, t->pos, 0x01);
    xor_byte(t, RATE - 1, 0x80);
    permute(t);
    for (size_t i = 0; i < 4; i++) {
        uint64_t w = htole64(t->a[i]);
        memcpy(out + 8 * i, &w, 8);
    }
}

/* The permuted copy reveals the state it came from (Keccak-f is a public,
 * invertible permutation), and the RLPx MAC states and the handshake's
 * one-shot hashes of the ECDH secret are secrets: every copy is wiped. */
void p2p_keccak_digest(const p2p_keccak_t *k, uint8_t out[32])
{
    p2p_keccak_t t = *k;
    finish(&t, out);
    P2P_WIPE(t);
}

void p2p_keccak256(uint8_t out[32], const uint8_t *data, size_t len)
{
    p2p_keccak_t k;
    p2p_keccak_init(&k);
    p2p_keccak_update(&k, data, len);
    finish(&k, out);
    P2P_WIPE(k);
}

void p2p_keccak256_2(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    p2p_keccak_t k;
    p2p_keccak_init(&k);
    p2p_keccak_update(&k, a, alen);
    p2p_keccak_update(&k, b, blen);
    finish(&k, out);
    P2P_WIPE(k);
}
