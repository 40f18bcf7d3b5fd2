/*
 * core/clock.c: the real clock (clock_gettime) and the virtual clock used
 * by tests.  Any thread may call these; see clock.h.
 */
#include "core/clock.h"

#include <time.h>

uint64_t p2p_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * P2P_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t p2p_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / P2P_NS_PER_MS;
}

static uint64_t real_now(const p2p_clock_t *c)
{
    (void)c;
    return p2p_now_ns();
}

static uint64_t real_wall(const p2p_clock_t *c)
{
    (void)c;
    return p2p_wall_ms();
}

static const p2p_clock_t real_clock = {real_now, real_wall};

const p2p_clock_t *p2p_clock_real(void)
{
    return &real_clock;
}

static uint64_t vnow(const p2p_clock_t *c)
{
    const p2p_vclock_t *vc = (const p2p_vclock_t *)c;
    /* relaxed: the time is a standalone value (see clock.h) */
    return atomic_load_explicit(&((p2p_vclock_t *)vc)->now, memory_order_relaxed);
}

static uint64_t vwall(const p2p_clock_t *c)
{
    const p2p_vclock_t *vc = (const p2p_vclock_t *)c;
    return vc->wall_base_ms + (vnow(c) - vc->start_ns) / P2P_NS_PER_MS;
}

void p2p_vclock_init(p2p_vclock_t *vc, uint64_t start_ns, uint64_t wall_ms)
{
    vc->base.now_ns = vnow;
    vc->base.wall_ms = vwall;
    vc->start_ns = start_ns;
    vc->wall_base_ms = wall_ms;
    /* relaxed: published to other threads by whatever hands them vc */
    atomic_store_explicit(&vc->now, start_ns, memory_order_relaxed);
}

void p2p_vclock_advance(p2p_vclock_t *vc, uint64_t delta_ns)
{
    /* relaxed RMW: only the value matters (see clock.h) */
    atomic_fetch_add_explicit(&vc->now, delta_ns, memory_order_relaxed);
}

uint64_t p2p_vclock_set(p2p_vclock_t *vc, uint64_t now_ns)
{
    /* relaxed CAS loop: monotonic max, no ordering with other data */
    uint64_t cur = atomic_load_explicit(&vc->now, memory_order_relaxed);
    while (cur < now_ns &&
           !atomic_compare_exchange_weak_explicit(&vc->now, &cur, now_ns, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    return cur < now_ns ? now_ns : cur;
}
