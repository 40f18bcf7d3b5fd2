/*
 * tests/core/sanitize.h: detects sanitizer builds so concurrency tests can
 * scale their iteration counts (TSan is 5-15x slower).  The normal build
 * always runs the full counts; under valgrind (RUNNING_ON_VALGRIND) or with
 * P2P_TEST_QUICK=1 in the environment it scales down too.  A process that
 * cannot report through memcheck's exit code (one that is killed) reads
 * memcheck's error count with VALGRIND_COUNT_ERRORS.
 */
#ifndef P2P_TESTS_CORE_SANITIZE_H
#define P2P_TESTS_CORE_SANITIZE_H

#include <stdlib.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
/* errors memcheck has reported in this process so far (0 without valgrind) */
#ifndef VALGRIND_COUNT_ERRORS
#define VALGRIND_COUNT_ERRORS 0u
#endif

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

/* Returns full in a normal build, quick under sanitizers, valgrind or
 * with P2P_TEST_QUICK set. */
static inline unsigned long tu_scale(unsigned long full, unsigned long quick)
{
    const char *e = getenv("P2P_TEST_QUICK");
    return (TU_SANITIZED || RUNNING_ON_VALGRIND || (e && e[0] && e[0] != '0')) ? quick : full;
}

#endif
