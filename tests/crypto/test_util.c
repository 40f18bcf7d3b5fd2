/*
 * tests/crypto/test_util.c: p2p_ct_equal, p2p_wipe, p2p_random and the hex
 * helpers.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "crypto/util.h"
#include "tests/tu.h"

static void test_ct_equal(void)
{
    uint8_t a[64], b[64];
    tu_rand_bytes(a, sizeof a);
    memcpy(b, a, sizeof a);
    CHECK(p2p_ct_equal(a, b, 64) == 1);
    CHECK(p2p_ct_equal(a, b, 0) == 1);
    CHECK(p2p_ct_equal(NULL, NULL, 0) == 1);
    unsigned bad = 0;
    for (size_t i = 0; i < 64; i++)
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1 << bit);
            if (p2p_ct_equal(a, b, 64) != 0) bad++;
            if (p2p_ct_equal(a, b, i + 1) != 0) bad++;
            if (p2p_ct_equal(a, b, i) != 1) bad++;
            b[i] ^= (uint8_t)(1 << bit);
        }
    CHECK(bad == 0);
    memset(a, 0, 64);
    memset(b, 0xff, 64);
    CHECK(p2p_ct_equal(a, b, 64) == 0);
}

static void test_wipe(void)
{
    uint8_t buf[100];
    memset(buf, 0xa5, sizeof buf);
    p2p_wipe(buf + 10, 50);
    int ok = 1;
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != ((i >= 10 && i < 60) ? 0 : 0xa5)) ok = 0;
    CHECK(ok);
    struct {
        uint64_t x;
        uint8_t k[32];
    } s;
    memset(&s, 1, sizeof s);
    P2P_WIPE(s);
    CHECK(s.x == 0 && s.k[31] == 0);
    p2p_wipe(NULL, 0);
}

static void test_random(void)
{
    uint8_t a[32], b[32], zero[32] = {0};
    CHECK_OK(p2p_random(a, sizeof a));
    CHECK_OK(p2p_random(b, sizeof b));
    CHECK(memcmp(a, b, 32) != 0);
    CHECK(memcmp(a, zero, 32) != 0);
    CHECK_OK(p2p_random(NULL, 0));
    /* Above getrandom's 256-byte/33 MiB single-call limits: loops. */
    size_t n = 40u << 20;
    uint8_t *big = malloc(n);
    CHECK(big != NULL);
    if (!big) return;
    memset(big, 0, n);
    CHECK_OK(p2p_random(big, n));
    /* Every 1 MiB chunk got bytes (zero chunk: probability 2^-8388608). */
    int filled = 1;
    for (size_t off = 0; off < n; off += 1u << 20) {
        int any = 0;
        for (size_t i = 0; i < (1u << 20) && !any; i++) any = big[off + i] != 0;
        if (!any) filled = 0;
    }
    CHECK(filled);
    /* Byte histogram is roughly flat. */
    static unsigned long hist[256];
    for (size_t i = 0; i < n; i++) hist[big[i]]++;
    unsigned long lo = n, hi = 0;
    for (int i = 0; i < 256; i++) {
        if (hist[i] < lo) lo = hist[i];
        if (hist[i] > hi) hi = hist[i];
    }
    CHECK(lo > n / 256 * 9 / 10 && hi < n / 256 * 11 / 10);
    free(big);
}

/* Small draws come from a per-thread pool: many of them (several refills)
 * are all distinct, and a forked child never repeats the parent's next
 * bytes. */
static void test_random_pool(void)
{
    enum { N = 200 };
    static uint8_t v[N][16];
    for (int i = 0; i < N; i++) CHECK_OK(p2p_random(v[i], 1 + (size_t)i % 16));
    int distinct = 1;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (i % 16 == 15 && j % 16 == 15 && memcmp(v[i], v[j], 16) == 0) distinct = 0;
    CHECK(distinct);
    uint8_t warm[8], mine[32], theirs[32];
    CHECK_OK(p2p_random(warm, sizeof warm)); /* the pool holds unread bytes */
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        uint8_t c[32];
        int ok = p2p_random(c, sizeof c) == 0 && write(pfd[1], c, sizeof c) == (ssize_t)sizeof c;
        _exit(ok ? 0 : 1);
    }
    CHECK_OK(p2p_random(mine, sizeof mine));
    CHECK(read(pfd[0], theirs, sizeof theirs) == (ssize_t)sizeof theirs);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(memcmp(mine, theirs, sizeof mine) != 0);
    close(pfd[0]);
    close(pfd[1]);
}

static void test_hex(void)
{
    uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[8];
    char txt[16];
    p2p_hex_encode(txt, in, 4);
    CHECK(strcmp(txt, "009fa0ff") == 0);
    p2p_hex_encode(txt, in, 0);
    CHECK(txt[0] == '\0');
    CHECK(p2p_hex_decode(out, sizeof out, "009fa0ff", 8) == 4);
    CHECK_MEM(out, in, 4);
    CHECK(p2p_hex_decode(out, sizeof out, "0x009FA0FF", 10) == 4);
    CHECK_MEM(out, in, 4);
    CHECK(p2p_hex_decode(out, sizeof out, "0X00", 4) == 1);
    CHECK(p2p_hex_decode(out, sizeof out, "", 0) == 0);
    CHECK(p2p_hex_decode(out, sizeof out, "0x", 2) == 0);
    CHECK_ERR(p2p_hex_decode(out, sizeof out, "abc", 3), P2P_EDECODE);
    CHECK_ERR(p2p_hex_decode(out, sizeof out, "zz", 2), P2P_EDECODE);
    CHECK_ERR(p2p_hex_decode(out, sizeof out, "0g", 2), P2P_EDECODE);
    CHECK_ERR(p2p_hex_decode(out, sizeof out, "g0", 2), P2P_EDECODE);
    CHECK_ERR(p2p_hex_decode(out, sizeof out, " 0", 2), P2P_EDECODE);
    CHECK_ERR(p2p_hex_decode(out, 3, "00112233", 8), P2P_ETOOBIG);
    CHECK(p2p_hex_decode(out, 4, "00112233", 8) == 4);
    /* Only hexlen chars are read. */
    CHECK(p2p_hex_decode(out, sizeof out, "ab!!", 2) == 1 && out[0] == 0xab);
    /* Round trip of random data. */
    unsigned bad = 0;
    for (int i = 0; i < 200; i++) {
        uint8_t r[64], back[64];
        char h[129];
        size_t n = (size_t)(tu_rand() % 65);
        tu_rand_bytes(r, n);
        p2p_hex_encode(h, r, n);
        if (strlen(h) != 2 * n) bad++;
        if (p2p_hex_decode(back, sizeof back, h, 2 * n) != (int)n) bad++;
        if (memcmp(back, r, n) != 0) bad++;
    }
    CHECK(bad == 0);
}

int main(void)
{
    tu_seed((uint64_t)time(NULL));
    test_ct_equal();
    test_wipe();
    test_random();
    test_random_pool();
    test_hex();
    return tu_done("util");
}
