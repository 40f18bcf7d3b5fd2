/*
 * crypto/util.c: constant-time comparison, secret wiping, the OS RNG and hex.
 *
 * p2p_ct_equal ORs the XOR of every byte pair, so its running time depends on
 * n only.  p2p_wipe uses explicit_bzero (glibc >= 2.25), which the compiler
 * may not elide.  p2p_random reads getrandom(2) (blocking until the kernel
 * pool is initialised once at boot), looping over EINTR and short reads.
 *
 * Thread-safety: no state; every function may be called from any thread.
 */
#include "crypto/util.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>

int p2p_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++) d |= (uint8_t)(x[i] ^ y[i]);
    /* 1 iff d == 0, without a data-dependent branch. */
    return (int)(1 & (((unsigned)d - 1) >> 8));
}

void p2p_wipe(void *p, size_t n)
{
    if (n) explicit_bzero(p, n);
}

int p2p_random(uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t r = getrandom(buf, len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return P2P_ESYS;
        }
        buf += r;
        len -= (size_t)r;
    }
    return 0;
}

void p2p_hex_encode(char *out, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int p2p_hex_decode(uint8_t *out, size_t cap, const char *hex, size_t hexlen)
{
    if (hexlen >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) {
        hex += 2;
        hexlen -= 2;
    }
    if (hexlen % 2) return P2P_EDECODE;
    size_t n = hexlen / 2;
    if (n > cap || n > INT_MAX) return P2P_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
        if (h < 0 || l < 0) return P2P_EDECODE;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return (int)n;
}
