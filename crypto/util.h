/*
 * crypto/util.h: constant-time helpers, secret wiping and the OS RNG.
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef P2P_CRYPTO_UTIL_H
#define P2P_CRYPTO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Returns 1 if the n bytes at a and b are equal, else 0, in time that
 * depends only on n (use for MACs and other secrets, never memcmp). */
int p2p_ct_equal(const void *a, const void *b, size_t n);

/* Overwrites n bytes at p with zeros in a way the compiler cannot elide. */
void p2p_wipe(void *p, size_t n);
#define P2P_WIPE(x) p2p_wipe(&(x), sizeof(x))

/* Fills buf with len bytes from the OS CSPRNG (getrandom(2); small requests
 * come from a per-thread pool of getrandom bytes, each byte handed out
 * once).  Returns 0 or P2P_ESYS. */
P2P_MUST_CHECK int p2p_random(uint8_t *buf, size_t len);

/* Hex helpers for tools, logs and tests.  p2p_hex_encode writes 2*n chars
 * plus a NUL into out.  p2p_hex_decode accepts an optional "0x" prefix and
 * returns the number of bytes written, or a negative P2P_E* code if the input
 * is not hex or does not fit into cap bytes. */
void p2p_hex_encode(char *out, const uint8_t *in, size_t n);
int p2p_hex_decode(uint8_t *out, size_t cap, const char *hex, size_t hexlen);

#endif
