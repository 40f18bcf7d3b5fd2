/*
 * core/futex.h: the two futex calls the runtime's own waits use (private
 * futexes on a 32-bit atomic word): sleep while the word holds a value, up
 * to an absolute CLOCK_MONOTONIC deadline, and wake every sleeper.  Any
 * return of the wait (woken, value changed, signal, deadline) makes the
 * caller re-check its own condition.
 */
#ifndef P2P_CORE_FUTEX_H
#define P2P_CORE_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

/* Sleeps while *word == val, until deadline_ns (P2P_DEADLINE_NEVER: none). */
static inline void p2p_futex_wait_until(_Atomic uint32_t *word, uint32_t val, uint64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != P2P_DEADLINE_NEVER) {
        ts.tv_sec = (time_t)(deadline_ns / P2P_NS_PER_S);
        ts.tv_nsec = (long)(deadline_ns % P2P_NS_PER_S);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, tsp, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

/* Wakes every thread sleeping on word.  The word must stay allocated until
 * the call returns: freed and reused, its address could wake an unrelated
 * sleeper (harmless, as every wait re-checks, but memory checkers report the
 * call), so a woken thread must not be the one that frees it. */
static inline void p2p_futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

#endif
