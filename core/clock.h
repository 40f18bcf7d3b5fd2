/*
 * core/clock.h: time sources behind one interface.
 *
 * Every actor core takes a p2p_clock_t instead of calling the system clock,
 * so tests can drive it with a virtual clock they advance by hand.
 *
 * - now_ns: monotonic nanoseconds (CLOCK_MONOTONIC for the real clock).
 *   Deadlines everywhere in the runtime (mailbox push, waiter, timers) are
 *   absolute values on this scale.  The blocking primitives (mailbox push
 *   with a deadline, p2p_waiter_wait) always use the real monotonic clock.
 * - wall_ms: Unix time in milliseconds, for expirations carried in packets
 *   (discv4 "expiration" fields, node database timestamps).
 *
 * Thread-safety: the real clock is stateless.  A virtual clock may be read
 * from any thread while one thread advances it (relaxed atomics: readers
 * need no ordering with other data, only a torn-free value).
 */
#ifndef P2P_CORE_CLOCK_H
#define P2P_CORE_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

/* A deadline that never expires. */
#define P2P_DEADLINE_NEVER UINT64_MAX

#define P2P_NS_PER_US 1000ull
#define P2P_NS_PER_MS 1000000ull
#define P2P_NS_PER_S 1000000000ull

typedef struct p2p_clock p2p_clock_t;
struct p2p_clock {
    /* Monotonic nanoseconds; never decreases. */
    uint64_t (*now_ns)(const p2p_clock_t *c);
    /* Unix time in milliseconds. */
    uint64_t (*wall_ms)(const p2p_clock_t *c);
};

/* The system clock (CLOCK_MONOTONIC, CLOCK_REALTIME).  Never NULL. */
const p2p_clock_t *p2p_clock_real(void);

/* Direct reads of the system clock (what p2p_clock_real() returns). */
uint64_t p2p_now_ns(void);
uint64_t p2p_wall_ms(void);

static inline uint64_t p2p_clock_now(const p2p_clock_t *c)
{
    return c->now_ns(c);
}

static inline uint64_t p2p_clock_wall_ms(const p2p_clock_t *c)
{
    return c->wall_ms(c);
}

/* Returns now + delta_ns, saturating at P2P_DEADLINE_NEVER. */
static inline uint64_t p2p_deadline_after(const p2p_clock_t *c, uint64_t delta_ns)
{
    uint64_t now = p2p_clock_now(c);
    return delta_ns >= P2P_DEADLINE_NEVER - now ? P2P_DEADLINE_NEVER : now + delta_ns;
}

/* A virtual clock: time moves only when a test calls advance/set.  Its wall
 * time is wall_base_ms plus the elapsed virtual time since init. */
typedef struct p2p_vclock {
    p2p_clock_t base; /* first member: pass &vc->base where a p2p_clock_t* is wanted */
    uint64_t start_ns;
    uint64_t wall_base_ms;
    _Atomic uint64_t now; /* relaxed: a value, no ordering with other data */
} p2p_vclock_t;

/* Starts the virtual clock at start_ns (monotonic) and wall_ms (wall). */
void p2p_vclock_init(p2p_vclock_t *vc, uint64_t start_ns, uint64_t wall_ms);
/* Moves time forward by delta_ns. */
void p2p_vclock_advance(p2p_vclock_t *vc, uint64_t delta_ns);
/* Sets the time to now_ns; a value below the current time is ignored
 * (monotonic).  Returns the resulting time. */
uint64_t p2p_vclock_set(p2p_vclock_t *vc, uint64_t now_ns);

#endif
