/*
 * core/timer.h: a timer heap for actor deadlines.
 *
 * A binary min-heap of (deadline, insertion order) with stable ids and
 * O(log n) cancel.  Pure: no threads, no clock of its own; the owning actor
 * feeds it the current time (from its p2p_clock_t) and sleeps until
 * p2p_timers_next().  Equal deadlines fire in insertion order, so runs are
 * deterministic under a virtual clock.
 *
 * Capacity is fixed at init (storage allocated once); adding to a full heap
 * returns P2P_EFULL.  Ids are never 0 and never reused while the heap lives
 * (generation << 25 | slot index + 1; a slot whose 39-bit generation is
 * used up, after 2^39 timers in it, is retired rather than reused), so
 * cancelling a timer that already fired or was cancelled is a safe no-op
 * returning P2P_ENOTFOUND.
 *
 * Threads: one owner thread; no internal locking.
 */
#ifndef P2P_CORE_TIMER_H
#define P2P_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

typedef uint64_t p2p_timer_id_t;

#define P2P_TIMER_SLOT_BITS 25 /* slot index + 1, up to 2^24 */
#define P2P_TIMER_GEN_END (1ull << (64 - P2P_TIMER_SLOT_BITS))

typedef struct p2p_timer {
    p2p_timer_id_t id;
    uint64_t deadline_ns;
    uint32_t kind; /* caller's tag (which deadline this is) */
    uint64_t arg;  /* caller's argument */
} p2p_timer_t;

typedef struct p2p_timers {
    uint32_t cap, n;
    uint64_t order; /* insertion counter for FIFO ties */
    uint32_t *heap; /* heap position -> slot */
    struct p2p_timer_slot {
        p2p_timer_t t;
        uint64_t order;
        uint64_t gen; /* bumped when the slot is freed (< P2P_TIMER_GEN_END) */
        uint32_t pos; /* heap position, UINT32_MAX if free */
    } * slots;
    uint32_t *free; /* stack of free slot indices */
    uint32_t nfree;
} p2p_timers_t;

/* Allocates room for cap timers (1..2^24).  Returns 0, P2P_EINVAL or
 * P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_timers_init(p2p_timers_t *h, uint32_t cap);
void p2p_timers_free(p2p_timers_t *h);

/* Adds a timer; *id (may be NULL) receives its id.  Returns 0 or
 * P2P_EFULL. */
P2P_MUST_CHECK int p2p_timers_add(p2p_timers_t *h, p2p_timer_id_t *id, uint64_t deadline_ns,
                                  uint32_t kind, uint64_t arg);
/* Removes a pending timer.  Returns 0 or P2P_ENOTFOUND (unknown id, fired
 * or cancelled already). */
int p2p_timers_cancel(p2p_timers_t *h, p2p_timer_id_t id);
/* Whether id is still pending. */
bool p2p_timers_pending(const p2p_timers_t *h, p2p_timer_id_t id);

/* Earliest deadline, or P2P_DEADLINE_NEVER (UINT64_MAX) if none: what the
 * actor passes to p2p_waiter_wait. */
uint64_t p2p_timers_next(const p2p_timers_t *h);

/* Pops the earliest timer if its deadline is <= now_ns into *out.
 * Returns 0, or P2P_EEMPTY if none is due.  Loop until P2P_EEMPTY. */
int p2p_timers_pop_due(p2p_timers_t *h, p2p_timer_t *out, uint64_t now_ns);

static inline uint32_t p2p_timers_count(const p2p_timers_t *h)
{
    return h->n;
}

#endif
