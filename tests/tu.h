/*
 * tests/tu.h: the unit-test harness.  Every CHECK counts; a test program
 * exits non-zero if any check failed or if it made no checks at all, so a
 * test cannot pass without asserting something.
 */
#ifndef P2P_TESTS_TU_H
#define P2P_TESTS_TU_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include <string.h>

extern unsigned long tu_checks;
extern unsigned long tu_failures;

void tu_fail(const char *file, int line, const char *what);
void tu_fail_mem(const char *file, int line, const char *what, const void *a, const void *b,
                 size_t n);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        tu_checks++;                                                                               \
        if (!(cond)) tu_fail(__FILE__, __LINE__, #cond);                                           \
    } while (0)

/* expr must return 0 (the project's success code). */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int tu_rc_ = (expr);                                                                       \
        tu_checks++;                                                                               \
        if (tu_rc_ != 0) {                                                                         \
            char tu_buf_[512];                                                                     \
            snprintf(tu_buf_, sizeof tu_buf_, "%s returned %d (%s)", #expr, tu_rc_,                \
                     p2p_errname(tu_rc_));                                                         \
            tu_fail(__FILE__, __LINE__, tu_buf_);                                                  \
        }                                                                                          \
    } while (0)

/* expr must return exactly code. */
#define CHECK_ERR(expr, code)                                                                      \
    do {                                                                                           \
        int tu_rc_ = (expr);                                                                       \
        tu_checks++;                                                                               \
        if (tu_rc_ != (code)) {                                                                    \
            char tu_buf_[512];                                                                     \
            snprintf(tu_buf_, sizeof tu_buf_, "%s returned %d (%s), want %s", #expr, tu_rc_,       \
                     p2p_errname(tu_rc_), #code);                                                  \
            tu_fail(__FILE__, __LINE__, tu_buf_);                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_MEM(a, b, n)                                                                         \
    do {                                                                                           \
        tu_checks++;                                                                               \
        if (memcmp((a), (b), (n)) != 0) tu_fail_mem(__FILE__, __LINE__, #a " == " #b, a, b, n);    \
    } while (0)

/* Prints the summary line and returns the process exit status. */
int tu_done(const char *name);

/* Reads `key = hex` from tests/vectors/<file> into out.  Returns the byte
 * count, or -1 (and records a failure) if missing or malformed. */
long tu_vector_hex(const char *file, const char *key, uint8_t *out, size_t cap);
/* Reads `key = value` as a string into out (NUL-terminated); 0 or -1. */
int tu_vector_str(const char *file, const char *key, char *out, size_t cap);
/* Decodes a hex literal (test data); aborts the test on bad input. */
size_t tu_unhex(uint8_t *out, size_t cap, const char *hex);
/* Deterministic PRNG for randomised tests (seed printed by tu_seed). */
uint64_t tu_rand(void);
void tu_seed(uint64_t seed);
void tu_rand_bytes(uint8_t *out, size_t n);
/* CPU time of the calling thread (ns).  Cost budgets are checked on it,
 * not on the wall clock: a thread waiting for a CPU on a loaded machine
 * (two test processes, sanitizer builds, other jobs) uses none. */
uint64_t tu_thread_cpu_ns(void);
/* Makes a new directory /tmp/p2p-<name>-XXXXXX in buf (a CHECK that it
 * was made).  Returns buf, or NULL. */
char *tu_tmpdir(char buf[64], const char *name);
/* Removes dir and everything in it (a CHECK that all of it went). */
void tu_rm_rf(const char *dir);
/* Waits for child pid at most limit_s seconds (its status in *st); past
 * that kills (SIGKILL) and reaps it.  Returns pid, 0 if it had to be
 * killed, or -1 if waitpid failed. */
pid_t tu_wait_child(pid_t pid, int limit_s, int *st);

#endif
