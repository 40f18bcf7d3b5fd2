/*
 * tests/tu.c: the unit-test harness (see tu.h).
 */
#include "tests/tu.h"

#include <ctype.h>
#include <ftw.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

unsigned long tu_checks;
unsigned long tu_failures;

void tu_fail(const char *file, int line, const char *what)
{
    tu_failures++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
}

void tu_fail_mem(const char *file, int line, const char *what, const void *a, const void *b,
                 size_t n)
{
    const uint8_t *x = a, *y = b;
    tu_fail(file, line, what);
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            fprintf(stderr, "  first difference at byte %zu of %zu: %02x != %02x\n", i, n, x[i],
                    y[i]);
            break;
        }
    }
}

int tu_done(const char *name)
{
    if (tu_checks == 0) {
        fprintf(stderr, "%s: no checks were made\n", name);
        return 1;
    }
    printf("%s: %lu checks, %lu failed\n", name, tu_checks, tu_failures);
    return tu_failures ? 1 : 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

size_t tu_unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap) {
        fprintf(stderr, "tu_unhex: bad literal (%zu chars, cap %zu)\n", n, cap);
        abort();
    }
    for (size_t i = 0; i < n / 2; i++) {
        int h = hexval(hex[2 * i]), l = hexval(hex[2 * i + 1]);
        if (h < 0 || l < 0) {
            fprintf(stderr, "tu_unhex: not hex\n");
            abort();
        }
        out[i] = (uint8_t)(h << 4 | l);
    }
    return n / 2;
}

int tu_vector_str(const char *file, const char *key, char *out, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TU_VECTORS_DIR, file);
    FILE *f = fopen(path, "r");
    if (!f) {
        tu_fail(file, 0, "cannot open vector file");
        return -1;
    }
    static char line[16384];
    size_t klen = strlen(key);
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || strncmp(line, key, klen) != 0) continue;
        char *p = line + klen;
        while (*p == ' ') p++;
        if (*p != '=') continue;
        p++;
        while (*p == ' ') p++;
        size_t n = strcspn(p, "\r\n");
        if (n + 1 > cap) break;
        memcpy(out, p, n);
        out[n] = 0;
        rc = 0;
        break;
    }
    fclose(f);
    if (rc) tu_fail(file, 0, key);
    return rc;
}

long tu_vector_hex(const char *file, const char *key, uint8_t *out, size_t cap)
{
    static char buf[16384];
    if (tu_vector_str(file, key, buf, sizeof buf)) return -1;
    size_t n = strlen(buf);
    if (n % 2 || n / 2 > cap) {
        tu_fail(file, 0, "vector does not fit");
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int h = hexval(buf[2 * i]), l = hexval(buf[2 * i + 1]);
        if (h < 0 || l < 0) {
            tu_fail(file, 0, "vector is not hex");
            return -1;
        }
        out[i] = (uint8_t)(h << 4 | l);
    }
    return (long)(n / 2);
}

static uint64_t tu_state = 0x9e3779b97f4a7c15ull;

void tu_seed(uint64_t seed)
{
    tu_state = seed ? seed : 1;
    printf("random seed %llu\n", (unsigned long long)seed);
}

uint64_t tu_rand(void)
{
    /* splitmix64 */
    uint64_t z = (tu_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tu_rand_bytes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)tu_rand();
}

uint64_t tu_thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)) {
        perror("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        abort();
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

void tu_rm_rf(const char *dir)
{
    CHECK(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

char *tu_tmpdir(char buf[64], const char *name)
{
    snprintf(buf, 64, "/tmp/p2p-%s-XXXXXX", name);
    char *d = mkdtemp(buf);
    CHECK(d != NULL);
    return d;
}

pid_t tu_wait_child(pid_t pid, int limit_s, int *st)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t w = 0;
    for (long i = 0; i < (long)limit_s * 100 + 100; i++) {
        if ((w = waitpid(pid, st, WNOHANG)) != 0) return w;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec >= limit_s) break;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    return waitpid(pid, st, 0) == pid ? 0 : -1;
}
