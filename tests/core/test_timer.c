/*
 * Timer heap against a reference model (random adds, cancels and due pops
 * under a virtual clock), FIFO order for equal deadlines, stale ids, the
 * capacity limit; the virtual and real clocks.
 */
#include "core/clock.h"
#include "core/timer.h"
#include "tests/tu.h"

#define CAP 256

struct model {
    bool live;
    p2p_timer_id_t id;
    uint64_t deadline, order, arg;
};

static void test_clocks(void)
{
    const p2p_clock_t *rc = p2p_clock_real();
    uint64_t a = p2p_clock_now(rc), b = p2p_clock_now(rc);
    CHECK(b >= a);
    CHECK(p2p_clock_wall_ms(rc) > 1600000000000ull); /* after 2020 */
    uint64_t d = p2p_deadline_after(rc, P2P_NS_PER_S);
    CHECK(d >= b + P2P_NS_PER_S);
    CHECK(p2p_deadline_after(rc, P2P_DEADLINE_NEVER - 1) == P2P_DEADLINE_NEVER);

    p2p_vclock_t vc;
    p2p_vclock_init(&vc, 1000, 1700000000000ull);
    const p2p_clock_t *c = &vc.base;
    CHECK(p2p_clock_now(c) == 1000);
    CHECK(p2p_clock_wall_ms(c) == 1700000000000ull);
    p2p_vclock_advance(&vc, 2500 * P2P_NS_PER_MS);
    CHECK(p2p_clock_now(c) == 1000 + 2500 * P2P_NS_PER_MS);
    CHECK(p2p_clock_wall_ms(c) == 1700000002500ull);
    CHECK(p2p_vclock_set(&vc, 5) == 1000 + 2500 * P2P_NS_PER_MS); /* never backwards */
    CHECK(p2p_clock_now(c) == 1000 + 2500 * P2P_NS_PER_MS);
    CHECK(p2p_vclock_set(&vc, 10 * P2P_NS_PER_S) == 10 * P2P_NS_PER_S);
    CHECK(p2p_deadline_after(c, 7) == 10 * P2P_NS_PER_S + 7);
}

static void test_basic(void)
{
    p2p_timers_t h;
    CHECK_ERR(p2p_timers_init(&h, 0), P2P_EINVAL);
    CHECK_OK(p2p_timers_init(&h, 4));
    p2p_timer_t t;
    CHECK(p2p_timers_next(&h) == P2P_DEADLINE_NEVER);
    CHECK_ERR(p2p_timers_pop_due(&h, &t, UINT64_MAX), P2P_EEMPTY);
    p2p_timer_id_t a, b, c, d;
    CHECK_OK(p2p_timers_add(&h, &a, 300, 1, 10));
    CHECK_OK(p2p_timers_add(&h, &b, 100, 2, 20));
    CHECK_OK(p2p_timers_add(&h, &c, 100, 3, 30)); /* same deadline as b: after b */
    CHECK_OK(p2p_timers_add(&h, &d, 200, 4, 40));
    CHECK_ERR(p2p_timers_add(&h, NULL, 1, 0, 0), P2P_EFULL);
    CHECK(a && b && c && d && a != b && b != c && c != d);
    CHECK(p2p_timers_count(&h) == 4);
    CHECK(p2p_timers_next(&h) == 100);
    CHECK_ERR(p2p_timers_pop_due(&h, &t, 99), P2P_EEMPTY);
    CHECK_OK(p2p_timers_pop_due(&h, &t, 100));
    CHECK(t.id == b && t.kind == 2 && t.arg == 20 && t.deadline_ns == 100);
    CHECK_OK(p2p_timers_pop_due(&h, &t, 100));
    CHECK(t.id == c);
    CHECK(!p2p_timers_pending(&h, b));
    CHECK_ERR(p2p_timers_cancel(&h, b), P2P_ENOTFOUND); /* fired already */
    CHECK(p2p_timers_pending(&h, d));
    CHECK_OK(p2p_timers_cancel(&h, d));
    CHECK_ERR(p2p_timers_cancel(&h, d), P2P_ENOTFOUND);
    CHECK_ERR(p2p_timers_cancel(&h, 0), P2P_ENOTFOUND);
    CHECK_ERR(p2p_timers_cancel(&h, 12345), P2P_ENOTFOUND);
    /* A new timer reusing d's slot gets a different id. */
    p2p_timer_id_t e;
    CHECK_OK(p2p_timers_add(&h, &e, 50, 5, 50));
    CHECK(e != d && e != b && e != c);
    CHECK_ERR(p2p_timers_cancel(&h, d), P2P_ENOTFOUND);
    CHECK(p2p_timers_next(&h) == 50);
    CHECK_OK(p2p_timers_pop_due(&h, &t, 1000));
    CHECK(t.id == e);
    CHECK_OK(p2p_timers_pop_due(&h, &t, 1000));
    CHECK(t.id == a);
    CHECK(p2p_timers_count(&h) == 0);
    p2p_timers_free(&h);
}

static void test_model(void)
{
    p2p_timers_t h;
    CHECK_OK(p2p_timers_init(&h, CAP));
    static struct model m[100000];
    size_t nm = 0;
    uint64_t order = 0;
    p2p_vclock_t vc;
    p2p_vclock_init(&vc, 0, 0);
    tu_seed(7);
    unsigned bad_order = 0, bad_fire = 0, live = 0, fired = 0, cancelled = 0;
    for (int step = 0; step < 20000; step++) {
        uint64_t now = p2p_clock_now(&vc.base);
        unsigned op = (unsigned)(tu_rand() % 10);
        if (op < 5 && live < CAP) {
            uint64_t dl = now + tu_rand() % 1000; /* many equal deadlines */
            p2p_timer_id_t id;
            CHECK_OK(p2p_timers_add(&h, &id, dl, 0, nm));
            m[nm] = (struct model){true, id, dl, order++, nm};
            nm++;
            live++;
        } else if (op < 7 && live > 0) {
            size_t i = (size_t)(tu_rand() % nm);
            for (int k = 0; k < 64 && !m[i].live; k++) i = (size_t)(tu_rand() % nm);
            int rc = p2p_timers_cancel(&h, m[i].id);
            if (m[i].live) {
                CHECK_OK(rc);
                m[i].live = false;
                live--;
                cancelled++;
            } else {
                CHECK_ERR(rc, P2P_ENOTFOUND);
            }
        } else {
            p2p_vclock_advance(&vc, tu_rand() % 300);
            now = p2p_clock_now(&vc.base);
            p2p_timer_t t;
            uint64_t last_dl = 0, last_order = 0;
            bool first = true;
            while (p2p_timers_pop_due(&h, &t, now) == 0) {
                size_t i = (size_t)t.arg;
                if (i >= nm || !m[i].live || m[i].id != t.id || t.deadline_ns > now) {
                    bad_fire++;
                    continue;
                }
                if (!first && (t.deadline_ns < last_dl ||
                               (t.deadline_ns == last_dl && m[i].order < last_order)))
                    bad_order++;
                first = false;
                last_dl = t.deadline_ns;
                last_order = m[i].order;
                m[i].live = false;
                live--;
                fired++;
            }
            /* Everything still live is in the future and the heap agrees
             * on the earliest one. */
            uint64_t min = P2P_DEADLINE_NEVER;
            for (size_t i = 0; i < nm; i++)
                if (m[i].live && m[i].deadline < min) min = m[i].deadline;
            CHECK(min > now || min == P2P_DEADLINE_NEVER);
            CHECK(p2p_timers_next(&h) == min);
        }
        CHECK(p2p_timers_count(&h) == live);
        if (nm == sizeof m / sizeof m[0]) break;
    }
    CHECK(bad_order == 0);
    CHECK(bad_fire == 0);
    CHECK(fired > 1000 && cancelled > 300);
    printf("timer model: %zu added, %u fired, %u cancelled\n", nm, fired, cancelled);
    p2p_timers_free(&h);
}

/* Ids stay unique when a slot's generations run out: the slot is retired,
 * never reused (with 32-bit generations wrapping to 1, a stale id came
 * back after 2^32 timers in one slot, about 50 days at 1000 timers/s, and
 * cancelling it cancelled an unrelated timer). */
static void test_generation_end(void)
{
    p2p_timers_t h;
    CHECK_OK(p2p_timers_init(&h, 2));
    /* as after 2^39 - 2 timers in slot 0 */
    h.slots[0].gen = P2P_TIMER_GEN_END - 2;
    p2p_timer_id_t ids[6], stale;
    CHECK_OK(p2p_timers_add(&h, &stale, 10, 1, 0)); /* slot 0, the next-to-last generation */
    CHECK_OK(p2p_timers_cancel(&h, stale));
    CHECK_OK(p2p_timers_add(&h, &ids[0], 10, 1, 0)); /* slot 0, the last generation */
    CHECK(ids[0] != stale);
    CHECK_OK(p2p_timers_cancel(&h, ids[0])); /* slot 0 retires */
    for (int i = 1; i < 6; i++) {
        CHECK_OK(p2p_timers_add(&h, &ids[i], 10, 1, 0)); /* slot 1 from now on */
        CHECK(ids[i] != stale && ids[i] != ids[0]);
        CHECK_ERR(p2p_timers_cancel(&h, stale), P2P_ENOTFOUND);
        CHECK_ERR(p2p_timers_cancel(&h, ids[0]), P2P_ENOTFOUND);
        CHECK(p2p_timers_pending(&h, ids[i]));
        CHECK_OK(p2p_timers_cancel(&h, ids[i]));
    }
    /* one slot left: a second timer finds the heap full */
    CHECK_OK(p2p_timers_add(&h, NULL, 10, 1, 0));
    CHECK_ERR(p2p_timers_add(&h, NULL, 10, 1, 0), P2P_EFULL);
    p2p_timers_free(&h);
}

int main(void)
{
    test_clocks();
    test_basic();
    test_generation_end();
    test_model();
    return tu_done("timer");
}
