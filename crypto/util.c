/*
 * crypto/util.c: constant-time comparison, secret wiping, the OS RNG and hex.
 *
 * p2p_ct_equal ORs the XOR of every byte pair, so its running time depends on
 * n only.  p2p_wipe uses explicit_bzero (glibc >= 2.25), which the compiler
 * may not elide.  p2p_random reads getrandom(2) (blocking until the kernel
 * pool is initialised once at boot), looping over EINTR and short reads.
 * Small requests (<= RNG_SMALL bytes: keys, nonces, IVs, padding) are served
 * from a per-thread pool refilled RNG_POOL bytes per getrandom call (a
 * handshake draws a dozen small values: one system call instead of a
 * dozen); served bytes are wiped from the pool at once, so the pool holds
 * only bytes nobody has seen.  A fork bumps a generation number
 * (pthread_atfork) and a thread whose pool predates it discards the pool,
 * so parent and child never hand out the same bytes.
 *
 * Thread-safety: the pool is thread-local; every function may be called
 * from any thread.
 */
#include "crypto/util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
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

#define RNG_POOL 512
#define RNG_SMALL 64

static int os_random(uint8_t *buf, size_t len)
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

/* Bumped in the child after fork; relaxed: read and written by the forking
 * thread's child only before any other thread exists there. */
static _Atomic unsigned rng_fork_gen = 1;
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;

static void rng_after_fork(void)
{
    atomic_fetch_add_explicit(&rng_fork_gen, 1, memory_order_relaxed);
}

static void rng_register(void)
{
    (void)pthread_atfork(NULL, NULL, rng_after_fork);
}

static __thread struct {
    unsigned gen; /* rng_fork_gen when filled; 0: empty */
    size_t off;   /* bytes [off, RNG_POOL) are unused */
    uint8_t pool[RNG_POOL];
} rng;

int p2p_random(uint8_t *buf, size_t len)
{
    if (len == 0) return 0;
    if (len > RNG_SMALL) return os_random(buf, len);
    pthread_once(&rng_once, rng_register);
    unsigned gen = atomic_load_explicit(&rng_fork_gen, memory_order_relaxed);
    if (rng.gen != gen || RNG_POOL - rng.off < len) {
        p2p_wipe(rng.pool, sizeof rng.pool);
        rng.gen = 0;
        if (os_random(rng.pool, sizeof rng.pool)) return P2P_ESYS;
        rng.gen = gen;
        rng.off = 0;
    }
    memcpy(buf, rng.pool + rng.off, len);
    p2p_wipe(rng.pool + rng.off, len);
    rng.off += len;
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
