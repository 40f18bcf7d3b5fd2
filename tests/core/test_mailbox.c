/*
 * Mailbox validation: edges (empty, full, wrap-around, close), 1 and 4
 * producers moving one million messages with random small delays (no loss,
 * no duplication, per-producer order), no lost wake-up in a ping-pong with
 * a sleeping consumer, close and quit while a sender is blocked in push,
 * push deadline expiry, quiet pushes woken by one notify per batch, and a
 * push caught between claiming its cell and publishing it when the
 * consumer closes and drains, or when it is about to sleep.
 *
 * Worker threads never call CHECK (the harness counters are not atomic):
 * they count failures in atomics that the main thread checks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "tests/core/sanitize.h"
#include "tests/tu.h"

typedef struct msg {
    uint32_t producer;
    uint32_t check;
    uint64_t seq;
    uint64_t payload;
} msg_t;

/* Waits up to timeout_ns and tells whether the wait ran out its whole
 * timeout.  In the tests below a producer always has a message on its way
 * (none pauses for seconds), so a wait that lasts its whole timeout is a
 * lost wake-up.  (The return code cannot tell: p2p_waiter_wait returns 0,
 * not P2P_ETIMEDOUT, when a message is ready at the deadline, and after a
 * lost wake-up one is.) */
static bool wait_ran_out(p2p_waiter_t *w, uint64_t timeout_ns)
{
    uint64_t t0 = p2p_now_ns();
    (void)p2p_waiter_wait(w, t0 + timeout_ns);
    return p2p_now_ns() - t0 >= timeout_ns;
}

static uint32_t mix(uint32_t producer, uint64_t seq)
{
    uint64_t z = seq * 0x9e3779b97f4a7c15ull + producer;
    z ^= z >> 29;
    return (uint32_t)(z * 0xbf58476d1ce4e5b9ull >> 32);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / P2P_NS_PER_S), (long)(ns % P2P_NS_PER_S)};
    nanosleep(&ts, NULL);
}

static void test_edges(void)
{
    p2p_mailbox_t *mb;
    CHECK_ERR(p2p_mailbox_create(&mb, "x", 0, 4, NULL), P2P_EINVAL);
    CHECK_ERR(p2p_mailbox_create(&mb, "x", 8, 0, NULL), P2P_EINVAL);
    CHECK_ERR(p2p_mailbox_create(&mb, "x", P2P_MAILBOX_MSG_MAX + 1, 4, NULL), P2P_EINVAL);
    CHECK_OK(p2p_mailbox_create(&mb, "edges", sizeof(msg_t), 5, NULL));
    CHECK(p2p_mailbox_capacity(mb) == 8);
    CHECK(p2p_mailbox_msg_size(mb) == sizeof(msg_t));
    CHECK(strcmp(p2p_mailbox_name(mb), "edges") == 0);
    CHECK(p2p_mailbox_id(mb) > 0);
    CHECK(strcmp(p2p_mailbox_id_name(p2p_mailbox_id(mb)), "edges") == 0);

    msg_t m = {0}, o;
    CHECK_ERR(p2p_mailbox_try_pop(mb, &o, sizeof o), P2P_EEMPTY);
    CHECK(!p2p_mailbox_ready(mb));
    CHECK(p2p_mailbox_depth(mb) == 0);
    CHECK_ERR(p2p_mailbox_try_push(mb, &m, sizeof m - 1), P2P_EINVAL);
    CHECK_ERR(p2p_mailbox_try_pop(mb, &o, sizeof o - 1), P2P_EINVAL);

    /* Fill to exactly the capacity, then one more is rejected. */
    for (uint64_t i = 0; i < 8; i++) {
        m.seq = i;
        CHECK_OK(p2p_mailbox_try_push(mb, &m, sizeof m));
    }
    CHECK(p2p_mailbox_depth(mb) == 8);
    m.seq = 99;
    CHECK_ERR(p2p_mailbox_try_push(mb, &m, sizeof m), P2P_EFULL);
    CHECK_ERR(p2p_mailbox_push(mb, &m, sizeof m, p2p_now_ns()), P2P_ETIMEDOUT);
    p2p_mailbox_stats_t st;
    p2p_mailbox_get_stats(mb, &st);
    CHECK(st.pushed == 8 && st.popped == 0 && st.full_rejections == 1 && st.blocked_waits == 1);
    CHECK(st.capacity == 8 && st.depth == 8);

    /* Pop one, push one: the freed cell is reusable (lap boundary). */
    CHECK(p2p_mailbox_ready(mb));
    CHECK_OK(p2p_mailbox_try_pop(mb, &o, sizeof o));
    CHECK(o.seq == 0);
    m.seq = 8;
    CHECK_OK(p2p_mailbox_try_push(mb, &m, sizeof m));
    CHECK_ERR(p2p_mailbox_try_push(mb, &m, sizeof m), P2P_EFULL);

    /* Batch pop, limited by the output buffer. */
    msg_t batch[16];
    CHECK(p2p_mailbox_pop_batch(mb, batch, 3 * sizeof(msg_t) + 5) == 3);
    CHECK(batch[0].seq == 1 && batch[1].seq == 2 && batch[2].seq == 3);
    CHECK(p2p_mailbox_pop_batch(mb, batch, sizeof batch) == 5);
    for (int i = 0; i < 5; i++) CHECK(batch[i].seq == (uint64_t)(4 + i));
    CHECK(p2p_mailbox_pop_batch(mb, batch, sizeof batch) == 0);
    p2p_mailbox_get_stats(mb, &st);
    CHECK(st.pushed == 9 && st.popped == 9 && st.high_water == 8 && st.depth == 0);

    /* Many laps with varying fill levels keep FIFO order. */
    uint64_t next_in = 100, next_out = 100, rng = 42;
    int bad = 0;
    for (int round = 0; round < 2000; round++) {
        unsigned k = (unsigned)(xorshift(&rng) % 9);
        for (unsigned i = 0; i < k; i++) {
            m.seq = next_in;
            int rc = p2p_mailbox_try_push(mb, &m, sizeof m);
            if (rc == 0)
                next_in++;
            else if (rc != P2P_EFULL)
                bad++;
        }
        unsigned j = (unsigned)(xorshift(&rng) % 9);
        for (unsigned i = 0; i < j; i++) {
            if (p2p_mailbox_try_pop(mb, &o, sizeof o) != 0) break;
            if (o.seq != next_out++) bad++;
        }
    }
    while (p2p_mailbox_try_pop(mb, &o, sizeof o) == 0)
        if (o.seq != next_out++) bad++;
    CHECK(bad == 0);
    CHECK(next_in == next_out);

    /* Close: pushes fail, queued messages remain poppable. */
    m.seq = 7;
    CHECK_OK(p2p_mailbox_try_push(mb, &m, sizeof m));
    CHECK(!p2p_mailbox_is_closed(mb));
    p2p_mailbox_close(mb);
    p2p_mailbox_close(mb);
    CHECK(p2p_mailbox_is_closed(mb));
    CHECK_ERR(p2p_mailbox_try_push(mb, &m, sizeof m), P2P_ECLOSED);
    CHECK_ERR(p2p_mailbox_push(mb, &m, sizeof m, P2P_DEADLINE_NEVER), P2P_ECLOSED);
    CHECK_OK(p2p_mailbox_try_pop(mb, &o, sizeof o));
    CHECK(o.seq == 7);
    p2p_mailbox_destroy(mb);

    /* Same name, same id; a second attach is refused. */
    p2p_mailbox_t *a, *b;
    CHECK_OK(p2p_mailbox_create(&a, "peer-out", 8, 2, NULL));
    CHECK_OK(p2p_mailbox_create(&b, "peer-out", 8, 2, NULL));
    CHECK(p2p_mailbox_id(a) == p2p_mailbox_id(b));
    p2p_waiter_t w;
    CHECK_OK(p2p_waiter_init(&w));
    CHECK_OK(p2p_mailbox_attach(a, &w));
    CHECK_ERR(p2p_mailbox_attach(a, &w), P2P_EEXIST);
    p2p_waiter_destroy(&w);
    p2p_mailbox_destroy(a);
    p2p_mailbox_destroy(b);
}

/* ---- many producers ------------------------------------------------------ */

struct stress {
    p2p_mailbox_t *mb;
    unsigned producers;
    uint64_t per_producer;
    _Atomic unsigned errors;
    _Atomic uint64_t try_full;
};

struct producer_arg {
    struct stress *s;
    uint32_t index;
};

static int producer(p2p_thread_t *self, void *arg)
{
    struct producer_arg *pa = arg;
    struct stress *s = pa->s;
    uint64_t rng = 0x1234567ull * (pa->index + 1);
    for (uint64_t i = 0; i < s->per_producer; i++) {
        msg_t m = {pa->index, mix(pa->index, i), i, i * 3 + pa->index};
        uint64_t r = xorshift(&rng);
        if ((r & 1023) == 0)
            sleep_ns(r >> 54); /* up to ~1 ms, rarely */
        else if ((r & 63) == 1)
            sched_yield();
        int rc;
        if (r & (1ull << 20)) {
            /* Non-blocking push with visible handling of "full". */
            while ((rc = p2p_mailbox_try_push(s->mb, &m, sizeof m)) == P2P_EFULL) {
                atomic_fetch_add_explicit(&s->try_full, 1, memory_order_relaxed);
                sched_yield();
            }
        } else {
            rc = p2p_mailbox_push(s->mb, &m, sizeof m, p2p_now_ns() + 30 * P2P_NS_PER_S);
        }
        if (rc != 0) {
            atomic_fetch_add(&s->errors, 1);
            return 1;
        }
    }
    (void)self;
    return 0;
}

static void run_stress(unsigned producers, uint64_t total, uint32_t cap)
{
    p2p_thread_t me;
    CHECK_OK(p2p_thread_adopt(&me, "consumer"));
    struct stress s = {.producers = producers, .per_producer = total / producers};
    CHECK_OK(p2p_mailbox_create(&s.mb, "stress", sizeof(msg_t), cap, NULL));
    CHECK_OK(p2p_mailbox_attach(s.mb, &me.waiter));

    p2p_thread_t th[8];
    struct producer_arg pa[8];
    for (unsigned i = 0; i < producers; i++) {
        pa[i] = (struct producer_arg){&s, i};
        char name[P2P_THREAD_NAME_MAX];
        (void)p2p_thread_name(name, "prod-%u", i);
        CHECK_OK(p2p_thread_spawn(&th[i], name, P2P_THREAD_STACK_PEER, producer, &pa[i]));
    }

    uint64_t next[8] = {0}, got = 0, rng = 99;
    unsigned order_err = 0, content_err = 0, timeouts = 0;
    uint64_t deadline = p2p_now_ns() + 120 * P2P_NS_PER_S;
    msg_t batch[32];
    uint64_t want = s.per_producer * producers;
    while (got < want && p2p_now_ns() < deadline) {
        size_t n = p2p_mailbox_pop_batch(s.mb, batch, sizeof batch);
        if (n == 0) {
            if (wait_ran_out(&me.waiter, 5 * P2P_NS_PER_S)) timeouts++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            msg_t *m = &batch[i];
            if (m->producer >= producers) {
                content_err++;
                continue;
            }
            if (m->check != mix(m->producer, m->seq) || m->payload != m->seq * 3 + m->producer)
                content_err++;
            if (m->seq != next[m->producer]) order_err++;
            next[m->producer] = m->seq + 1;
            got++;
        }
        uint64_t r = xorshift(&rng);
        if ((r & 4095) == 0) sleep_ns(r >> 53); /* consumer stalls: the ring fills */
    }
    for (unsigned i = 0; i < producers; i++) {
        int rc = -1;
        CHECK_OK(p2p_thread_join(&th[i], &rc));
        CHECK(rc == 0);
    }
    CHECK(got == want);
    for (unsigned i = 0; i < producers; i++) CHECK(next[i] == s.per_producer);
    CHECK(order_err == 0);
    CHECK(content_err == 0);
    CHECK(timeouts == 0);
    CHECK(atomic_load(&s.errors) == 0);
    msg_t extra;
    CHECK_ERR(p2p_mailbox_try_pop(s.mb, &extra, sizeof extra), P2P_EEMPTY);
    p2p_mailbox_stats_t st;
    p2p_mailbox_get_stats(s.mb, &st);
    CHECK(st.pushed == want && st.popped == want);
    CHECK(st.high_water <= st.capacity && st.high_water > 0);
    CHECK(st.full_rejections == atomic_load(&s.try_full));
    printf("stress %u->1: %llu msgs, full=%llu blocked=%llu high_water=%llu sleeps=%llu "
           "wakes=%llu\n",
           producers, (unsigned long long)want, (unsigned long long)st.full_rejections,
           (unsigned long long)st.blocked_waits, (unsigned long long)st.high_water,
           (unsigned long long)atomic_load(&me.waiter.sleeps),
           (unsigned long long)atomic_load(&me.waiter.wakes));
    p2p_mailbox_destroy(s.mb);
    p2p_thread_unadopt(&me);
}

/* ---- ping-pong: no lost wake-up ------------------------------------------ */

struct pingpong {
    p2p_mailbox_t *ping, *pong;
    uint64_t rounds;
    _Atomic unsigned errors;
    _Atomic int ready;
};

static int ponger(p2p_thread_t *self, void *arg)
{
    struct pingpong *pp = arg;
    if (p2p_mailbox_attach(pp->ping, &self->waiter)) {
        atomic_fetch_add(&pp->errors, 1);
        atomic_store(&pp->ready, 1);
        return 1;
    }
    atomic_store(&pp->ready, 1);
    for (uint64_t i = 0; i < pp->rounds;) {
        uint64_t v;
        if (p2p_mailbox_try_pop(pp->ping, &v, sizeof v) == 0) {
            if (v != i) atomic_fetch_add(&pp->errors, 1);
            if (p2p_mailbox_push(pp->pong, &v, sizeof v, p2p_now_ns() + 10 * P2P_NS_PER_S))
                atomic_fetch_add(&pp->errors, 1);
            i++;
            continue;
        }
        /* A lost wake-up shows up as a wait of the whole 10 s. */
        if (wait_ran_out(&self->waiter, 10 * P2P_NS_PER_S)) {
            atomic_fetch_add(&pp->errors, 1000);
            return 1;
        }
    }
    return 0;
}

static void test_pingpong(uint64_t rounds)
{
    p2p_thread_t me, th;
    CHECK_OK(p2p_thread_adopt(&me, "pinger"));
    struct pingpong pp = {.rounds = rounds};
    CHECK_OK(p2p_mailbox_create(&pp.ping, "ping", 8, 1, NULL));
    CHECK_OK(p2p_mailbox_create(&pp.pong, "pong", 8, 1, NULL));
    CHECK_OK(p2p_mailbox_attach(pp.pong, &me.waiter));
    CHECK_OK(p2p_thread_spawn(&th, "ponger", P2P_THREAD_STACK_PEER, ponger, &pp));
    while (!atomic_load(&pp.ready)) sched_yield();
    unsigned lost = 0, wrong = 0;
    for (uint64_t i = 0; i < rounds && !lost; i++) {
        if (p2p_mailbox_push(pp.ping, &i, sizeof i, p2p_now_ns() + 10 * P2P_NS_PER_S)) wrong++;
        uint64_t v;
        while (p2p_mailbox_try_pop(pp.pong, &v, sizeof v) != 0) {
            if (wait_ran_out(&me.waiter, 10 * P2P_NS_PER_S)) {
                lost++;
                break;
            }
        }
        if (!lost && v != i) wrong++;
    }
    int rc = -1;
    if (lost) p2p_thread_request_quit(&th);
    CHECK_OK(p2p_thread_join(&th, &rc));
    CHECK(lost == 0);
    CHECK(wrong == 0);
    CHECK(rc == 0);
    CHECK(atomic_load(&pp.errors) == 0);
    /* The two sides really slept (this is a wake-up test, not spinning):
     * in each round at least one of them usually finds its mailbox empty
     * and blocks in the waiter. */
    uint64_t sleeps = atomic_load(&me.waiter.sleeps), psleeps = atomic_load(&th.waiter.sleeps);
    printf("pingpong: %llu rounds, pinger slept %llu times, ponger %llu times, eventfd writes "
           "%llu + %llu\n",
           (unsigned long long)rounds, (unsigned long long)sleeps, (unsigned long long)psleeps,
           (unsigned long long)atomic_load(&me.waiter.wakes),
           (unsigned long long)atomic_load(&th.waiter.wakes));
    CHECK(sleeps + psleeps > rounds / 4);
    p2p_mailbox_destroy(pp.ping);
    p2p_mailbox_destroy(pp.pong);
    p2p_thread_unadopt(&me);
}

/* ---- blocked sender: close, quit, deadline ------------------------------ */

struct blocked {
    p2p_mailbox_t *mb;
    uint64_t deadline;
    _Atomic int rc;
    _Atomic uint64_t returned_ns;
};

static int blocked_sender(p2p_thread_t *self, void *arg)
{
    struct blocked *b = arg;
    uint64_t v = 42;
    int rc = p2p_mailbox_push(b->mb, &v, sizeof v, b->deadline);
    atomic_store(&b->returned_ns, p2p_now_ns());
    atomic_store(&b->rc, rc);
    (void)self;
    return 0;
}

/* Starts a sender blocked on a full mailbox; returns once it is blocked
 * (and, if still_blocked, checks that it has not returned yet: only for
 * deadlines far enough away that a slow machine cannot reach them). */
static void start_blocked(p2p_thread_t *th, struct blocked *b, uint64_t deadline,
                          bool still_blocked)
{
    CHECK_OK(p2p_mailbox_create(&b->mb, "blocked", 8, 2, NULL));
    uint64_t v = 1;
    CHECK_OK(p2p_mailbox_try_push(b->mb, &v, sizeof v));
    CHECK_OK(p2p_mailbox_try_push(b->mb, &v, sizeof v));
    b->deadline = deadline;
    atomic_store(&b->rc, 1);
    CHECK_OK(p2p_thread_spawn(th, "sender", 0, blocked_sender, b));
    p2p_mailbox_stats_t st;
    uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
    do {
        sleep_ns(P2P_NS_PER_MS);
        p2p_mailbox_get_stats(b->mb, &st);
    } while (st.blocked_waits == 0 && p2p_now_ns() < until);
    CHECK(st.blocked_waits == 1);
    if (!still_blocked) return;
    sleep_ns(20 * P2P_NS_PER_MS); /* let it reach the futex */
    CHECK(atomic_load(&b->rc) == 1);
}

static void test_blocked(void)
{
    p2p_thread_t th;
    struct blocked b;

    /* close while blocked: P2P_ECLOSED promptly */
    start_blocked(&th, &b, p2p_now_ns() + 60 * P2P_NS_PER_S, true);
    uint64_t t0 = p2p_now_ns();
    p2p_mailbox_close(b.mb);
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_ERR(atomic_load(&b.rc), P2P_ECLOSED);
    CHECK(atomic_load(&b.returned_ns) - t0 < 3 * P2P_NS_PER_S);
    p2p_mailbox_destroy(b.mb);

    /* quit request for the blocked p2p thread: P2P_ECLOSED promptly */
    start_blocked(&th, &b, p2p_now_ns() + 60 * P2P_NS_PER_S, true);
    t0 = p2p_now_ns();
    p2p_thread_request_quit(&th);
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_ERR(atomic_load(&b.rc), P2P_ECLOSED);
    CHECK(atomic_load(&b.returned_ns) - t0 < 3 * P2P_NS_PER_S);
    CHECK(!p2p_mailbox_is_closed(b.mb));
    p2p_mailbox_destroy(b.mb);

    /* space frees up: the blocked push completes */
    start_blocked(&th, &b, p2p_now_ns() + 60 * P2P_NS_PER_S, true);
    uint64_t v;
    CHECK_OK(p2p_mailbox_try_pop(b.mb, &v, sizeof v));
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_OK(atomic_load(&b.rc));
    CHECK(p2p_mailbox_depth(b.mb) == 2);
    CHECK_OK(p2p_mailbox_try_pop(b.mb, &v, sizeof v));
    CHECK_OK(p2p_mailbox_try_pop(b.mb, &v, sizeof v));
    CHECK(v == 42);
    p2p_mailbox_destroy(b.mb);

    /* deadline expiry: P2P_ETIMEDOUT, not before the deadline */
    uint64_t dl = p2p_now_ns() + 150 * P2P_NS_PER_MS;
    start_blocked(&th, &b, dl, false);
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_ERR(atomic_load(&b.rc), P2P_ETIMEDOUT);
    CHECK(atomic_load(&b.returned_ns) >= dl);
    CHECK(atomic_load(&b.returned_ns) - dl < 5 * P2P_NS_PER_S);
    CHECK(p2p_mailbox_depth(b.mb) == 2);
    p2p_mailbox_destroy(b.mb);
}

/* ---- many blocked senders: none stranded ---------------------------------- */

struct handoff_sender {
    p2p_mailbox_t *mb;
    uint64_t value, deadline;
    _Atomic int rc;
};

static int handoff_send(p2p_thread_t *self, void *arg)
{
    struct handoff_sender *h = arg;
    atomic_store(&h->rc, p2p_mailbox_push(h->mb, &h->value, sizeof h->value, h->deadline));
    (void)self;
    return 0;
}

/* The blocked-sender counters and the low watermark: a sender blocks on a
 * full four-slot mailbox (one blocked push, at least one futex wait); the
 * first pop leaves it more than half full (no wake-up, the sender stays
 * blocked), the second reaches half (the senders are woken). */
static void test_sender_wakes(void)
{
    p2p_thread_t me, th;
    struct blocked b;
    CHECK_OK(p2p_thread_adopt(&me, "swakes"));
    CHECK_OK(p2p_mailbox_create(&b.mb, "swakes", 8, 4, NULL));
    CHECK_OK(p2p_mailbox_attach(b.mb, &me.waiter));
    uint64_t v = 1, m;
    for (int i = 0; i < 4; i++) CHECK_OK(p2p_mailbox_try_push(b.mb, &v, sizeof v));
    b.deadline = p2p_now_ns() + 30 * P2P_NS_PER_S;
    atomic_store(&b.rc, 1);
    CHECK_OK(p2p_thread_spawn(&th, "sender", 0, blocked_sender, &b));
    p2p_mailbox_stats_t st;
    uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
    do {
        sleep_ns(P2P_NS_PER_MS);
        p2p_mailbox_get_stats(b.mb, &st);
    } while (st.sender_sleeps == 0 && p2p_now_ns() < until);
    CHECK(st.blocked_waits == 1 && st.sender_sleeps >= 1 && st.sender_wakes == 0);
    CHECK_OK(p2p_mailbox_try_pop(b.mb, &m, sizeof m));
    p2p_mailbox_get_stats(b.mb, &st);
    CHECK(st.sender_wakes == 0); /* 3 left: above half */
    CHECK_OK(p2p_mailbox_try_pop(b.mb, &m, sizeof m));
    p2p_mailbox_get_stats(b.mb, &st);
    CHECK(st.sender_wakes >= 1); /* 2 left: half */
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_OK(atomic_load(&b.rc));
    unsigned got = 0;
    while (p2p_mailbox_try_pop(b.mb, &m, sizeof m) == 0) got++;
    CHECK(got == 3 && m == 42);
    p2p_mailbox_get_stats(b.mb, &st);
    CHECK(st.blocked_waits == 1 && st.pushed == 5 && st.popped == 5);
    p2p_mailbox_detach(b.mb);
    p2p_mailbox_destroy(b.mb);
    p2p_thread_unadopt(&me);
}

struct flooder {
    p2p_mailbox_t *mb;
    _Atomic int *stop;
    uint64_t accepted;
};

static int flooder(p2p_thread_t *self, void *arg)
{
    struct flooder *f = arg;
    uint64_t v = 7;
    /* bounded: 30 s at most, the test stops it much sooner */
    uint64_t until = p2p_now_ns() + 30 * P2P_NS_PER_S;
    while (!atomic_load(f->stop) && p2p_now_ns() < until) {
        if (p2p_mailbox_try_push(f->mb, &v, sizeof v) == 0)
            f->accepted++;
        else
            sched_yield();
    }
    (void)self;
    return 0;
}

/* A blocked sender next to non-blocking producers that refill every freed
 * cell at once, with a slow consumer: the sender gets in soon after it
 * blocks (the upper half of the ring is held for it), not at its deadline
 * (it used to wait out the whole deadline, or time out, while the others
 * got thousands of messages in). */
static void test_blocked_fairness(void)
{
    enum { NF = 3 };
    p2p_thread_t me, fth[NF], sth;
    CHECK_OK(p2p_thread_adopt(&me, "fairness"));
    struct blocked b;
    CHECK_OK(p2p_mailbox_create(&b.mb, "fair", 8, 64, NULL));
    CHECK_OK(p2p_mailbox_attach(b.mb, &me.waiter));
    _Atomic int stop = 0;
    struct flooder fl[NF];
    for (int i = 0; i < NF; i++) {
        fl[i] = (struct flooder){.mb = b.mb, .stop = &stop};
        CHECK_OK(p2p_thread_spawn(&fth[i], "flooder", P2P_THREAD_STACK_PEER, flooder, &fl[i]));
    }
    /* the ring fills up */
    uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (p2p_mailbox_depth(b.mb) < 64 && p2p_now_ns() < until) sleep_ns(P2P_NS_PER_MS);
    uint64_t t0 = p2p_now_ns();
    b.deadline = t0 + 3 * P2P_NS_PER_S;
    atomic_store(&b.rc, 1);
    atomic_store(&b.returned_ns, 0);
    CHECK_OK(p2p_thread_spawn(&sth, "sender", 0, blocked_sender, &b));
    p2p_mailbox_stats_t st;
    do {
        sleep_ns(P2P_NS_PER_MS);
        p2p_mailbox_get_stats(b.mb, &st);
    } while (st.sender_sleeps == 0 && p2p_now_ns() < until);
    CHECK(st.sender_sleeps >= 1); /* it is blocked */
    t0 = p2p_now_ns();
    /* a slow consumer: one message per 200 us, until the sender is back */
    unsigned popped = 0;
    while (atomic_load(&b.returned_ns) == 0 && p2p_now_ns() < t0 + 10 * P2P_NS_PER_S) {
        uint64_t m;
        if (p2p_mailbox_try_pop(b.mb, &m, sizeof m) == 0) popped++;
        sleep_ns(200 * 1000);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < NF; i++) CHECK_OK(p2p_thread_join(&fth[i], NULL));
    CHECK_OK(p2p_thread_join(&sth, NULL));
    uint64_t waited = atomic_load(&b.returned_ns) - t0;
    printf("fairness: the blocked sender got in after %.1f ms (%u pops; non-blocking "
           "producers: %llu messages in)\n",
           (double)waited / 1e6, popped,
           (unsigned long long)(fl[0].accepted + fl[1].accepted + fl[2].accepted));
    CHECK_OK(atomic_load(&b.rc));
    CHECK(waited < P2P_NS_PER_S);
    uint64_t m;
    while (p2p_mailbox_try_pop(b.mb, &m, sizeof m) == 0) {
    }
    p2p_mailbox_detach(b.mb);
    p2p_mailbox_destroy(b.mb);
    p2p_thread_unadopt(&me);
}

struct totals {
    uint64_t pushed, popped;
    unsigned live;
};

static void sum_totals(void *ctx, const char *name, const p2p_mailbox_stats_t *st, bool live)
{
    struct totals *t = ctx;
    if (strcmp(name, "totals-x") != 0) return;
    t->pushed += st->pushed;
    t->popped += st->popped;
    t->live += live;
}

static struct totals totals_now(void)
{
    struct totals t = {0};
    p2p_mailbox_foreach_totals(sum_totals, &t);
    return t;
}

/* Per-name totals count destroyed mailboxes too, so a metric built on
 * them never goes back when per-peer mailboxes come and go (summing the
 * live ones alone dropped 32 -> 9 under churn). */
static void test_totals(void)
{
    p2p_thread_t me;
    CHECK_OK(p2p_thread_adopt(&me, "totals"));
    p2p_mailbox_t *a, *b;
    uint64_t v = 1, m;
    CHECK_OK(p2p_mailbox_create(&a, "totals-x", 8, 8, NULL));
    CHECK_OK(p2p_mailbox_attach(a, &me.waiter));
    for (int i = 0; i < 5; i++) CHECK_OK(p2p_mailbox_try_push(a, &v, sizeof v));
    for (int i = 0; i < 3; i++) CHECK_OK(p2p_mailbox_try_pop(a, &m, sizeof m));
    struct totals t = totals_now();
    CHECK(t.pushed == 5 && t.popped == 3 && t.live == 1);
    p2p_mailbox_detach(a);
    p2p_mailbox_destroy(a);
    t = totals_now();
    CHECK(t.pushed == 5 && t.popped == 3 && t.live == 0);
    CHECK_OK(p2p_mailbox_create(&b, "totals-x", 8, 8, NULL));
    for (int i = 0; i < 2; i++) CHECK_OK(p2p_mailbox_try_push(b, &v, sizeof v));
    t = totals_now();
    CHECK(t.pushed == 7 && t.popped == 3 && t.live == 1);
    p2p_mailbox_destroy(b);
    t = totals_now();
    CHECK(t.pushed == 7 && t.popped == 3 && t.live == 0);
    p2p_thread_unadopt(&me);
}

/* Six senders block on a full two-slot mailbox; one times out and one is
 * asked to quit while blocked (neither pushes), the consumer then drains:
 * the pops wake the blocked senders, whose pushes wake the consumer again.
 * Every remaining sender must get through (a wake-up lost on a sender that
 * left would strand the rest). */
static void test_handoff(void)
{
    enum { N = 6 };
    p2p_thread_t me, th[N];
    struct handoff_sender hs[N];
    p2p_mailbox_t *mb;
    CHECK_OK(p2p_thread_adopt(&me, "handoffc"));
    CHECK_OK(p2p_mailbox_create(&mb, "handoff", 8, 2, NULL));
    CHECK_OK(p2p_mailbox_attach(mb, &me.waiter));
    uint64_t v = 0;
    CHECK_OK(p2p_mailbox_try_push(mb, &v, sizeof v));
    CHECK_OK(p2p_mailbox_try_push(mb, &v, sizeof v));
    uint64_t now = p2p_now_ns();
    for (unsigned i = 0; i < N; i++) {
        hs[i] = (struct handoff_sender){mb, 100 + i, now + 60 * P2P_NS_PER_S, 1};
        if (i == 0) hs[i].deadline = now + 100 * P2P_NS_PER_MS; /* times out */
        CHECK_OK(p2p_thread_spawn(&th[i], "hsend", 0, handoff_send, &hs[i]));
    }
    p2p_mailbox_stats_t st;
    uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
    do {
        sleep_ns(P2P_NS_PER_MS);
        p2p_mailbox_get_stats(mb, &st);
    } while (st.blocked_waits < N && p2p_now_ns() < until);
    CHECK(st.blocked_waits == N);
    CHECK_OK(p2p_thread_join(&th[0], NULL)); /* its deadline passes while blocked */
    CHECK_ERR(atomic_load(&hs[0].rc), P2P_ETIMEDOUT);
    p2p_thread_request_quit(&th[1]);
    CHECK_OK(p2p_thread_join(&th[1], NULL));
    CHECK_ERR(atomic_load(&hs[1].rc), P2P_ECLOSED);
    /* drain: 2 queued + one message from each of the 4 remaining senders */
    unsigned got = 0, timeouts = 0;
    uint64_t seen = 0;
    until = p2p_now_ns() + 20 * P2P_NS_PER_S;
    while (got < 2 + N - 2 && p2p_now_ns() < until) {
        uint64_t m;
        if (p2p_mailbox_try_pop(mb, &m, sizeof m) == 0) {
            got++;
            if (m >= 100) seen |= 1ull << (m - 100);
            continue;
        }
        if (wait_ran_out(&me.waiter, 5 * P2P_NS_PER_S)) timeouts++;
    }
    CHECK(got == 2 + N - 2);
    CHECK(timeouts == 0);
    CHECK(seen == 0x3cu); /* senders 2..5 */
    for (unsigned i = 2; i < N; i++) {
        CHECK_OK(p2p_thread_join(&th[i], NULL));
        CHECK_OK(atomic_load(&hs[i].rc));
    }
    CHECK(p2p_mailbox_depth(mb) == 0);
    p2p_mailbox_detach(mb);
    p2p_mailbox_destroy(mb);
    p2p_thread_unadopt(&me);
}

/* ---- quiet pushes + notify ---------------------------------------------- */

struct quiet {
    p2p_mailbox_t *mb;
    uint64_t batches;
    _Atomic int ready;
    _Atomic uint64_t errors;
};

/* Producer: batches of 1..5 quiet pushes, one notify each, then waits for
 * the consumer to drain the batch (so the consumer sleeps between
 * batches and only the notify can wake it). */
static int quiet_producer(p2p_thread_t *self, void *arg)
{
    struct quiet *q = arg;
    uint64_t seq = 0;
    while (!atomic_load(&q->ready)) sched_yield();
    for (uint64_t b = 0; b < q->batches; b++) {
        unsigned k = 1 + (unsigned)(b % 5);
        for (unsigned i = 0; i < k; i++) {
            uint64_t v = seq++;
            if (p2p_mailbox_try_push_quiet(q->mb, &v, sizeof v)) atomic_fetch_add(&q->errors, 1);
        }
        p2p_mailbox_notify(q->mb);
        uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
        while (p2p_mailbox_depth(q->mb) && p2p_now_ns() < until) sched_yield();
        if (b % 64 == 0) sleep_ns(200 * P2P_NS_PER_US); /* let the consumer fall asleep */
    }
    (void)self;
    return 0;
}

static void test_quiet(uint64_t batches)
{
    p2p_thread_t me, th;
    CHECK_OK(p2p_thread_adopt(&me, "quietc"));
    struct quiet q = {.batches = batches};
    CHECK_OK(p2p_mailbox_create(&q.mb, "quiet", 8, 8, NULL));
    CHECK_OK(p2p_mailbox_attach(q.mb, &me.waiter));
    /* full ring: quiet pushes report P2P_EFULL like try_push */
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) CHECK_OK(p2p_mailbox_try_push_quiet(q.mb, &v, sizeof v));
    CHECK_ERR(p2p_mailbox_try_push_quiet(q.mb, &v, sizeof v), P2P_EFULL);
    CHECK_ERR(p2p_mailbox_try_push_quiet(q.mb, &v, sizeof v - 1), P2P_EINVAL);
    uint64_t drain[8];
    CHECK(p2p_mailbox_pop_batch(q.mb, drain, sizeof drain) == 8);
    CHECK_OK(p2p_thread_spawn(&th, "quietp", P2P_THREAD_STACK_PEER, quiet_producer, &q));
    atomic_store(&q.ready, 1);
    uint64_t want = 0, total = 0;
    for (uint64_t b = 0; b < batches; b++) total += 1 + b % 5;
    unsigned lost = 0, wrong = 0;
    while (want < total) {
        uint64_t got[8];
        size_t n = p2p_mailbox_pop_batch(q.mb, got, sizeof got);
        for (size_t i = 0; i < n; i++)
            if (got[i] != want++) wrong++;
        if (n) continue;
        if (wait_ran_out(&me.waiter, 10 * P2P_NS_PER_S)) {
            lost++;
            break;
        }
    }
    int rc = -1;
    CHECK_OK(p2p_thread_join(&th, &rc));
    CHECK(rc == 0);
    CHECK(lost == 0);
    CHECK(wrong == 0);
    CHECK(atomic_load(&q.errors) == 0);
    /* the consumer really slept and was woken by notify */
    CHECK(atomic_load(&me.waiter.sleeps) > 0);
    CHECK(atomic_load(&me.waiter.wakes) > 0);
    p2p_mailbox_detach(q.mb);
    p2p_mailbox_destroy(q.mb);
    p2p_thread_unadopt(&me);
}

/* ---- a push in flight: claimed, not yet published ---- */

/* The pushed message lives in a page mapped without access: the push
 * faults in its copy (after it has claimed its cell, before it publishes
 * it), and the SIGSEGV handler holds it there until hold_until (a
 * p2p_now_ns time, which the test may move) before it opens the page and
 * lets the copy run again, as a producer preempted at that point would
 * be. */
#define HOLD_NS (300 * P2P_NS_PER_MS)

static uint8_t *hold_page;
static size_t hold_len;
static _Atomic int hold_seen;
static _Atomic uint64_t hold_until;

static void hold_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    uint8_t *a = si->si_addr;
    if (a < hold_page || a >= hold_page + hold_len) {
        signal(sig, SIG_DFL); /* another fault: crash on it */
        return;
    }
    atomic_store(&hold_seen, 1);
    /* bounded: hold_until is at most 30 s ahead when the hold begins */
    for (unsigned i = 0; i < 30000 && p2p_now_ns() < atomic_load(&hold_until); i++) {
        struct timespec ts = {0, (long)P2P_NS_PER_MS};
        nanosleep(&ts, NULL);
    }
    mprotect(hold_page, hold_len, PROT_READ | PROT_WRITE);
}

struct inflight {
    p2p_mailbox_t *mb;
    _Atomic int rc;
    pthread_t t;
    struct sigaction old;
};

static void *inflight_main(void *arg)
{
    struct inflight *f = arg;
    atomic_store(&f->rc, p2p_mailbox_try_push(f->mb, hold_page, sizeof(msg_t)));
    return NULL;
}

/* Starts a push of m into f->mb that is held in flight until hold_ns from
 * now.  True once the producer holds its claimed cell. */
static bool hold_begin(struct inflight *f, const msg_t *m, uint64_t hold_ns)
{
    hold_len = (size_t)sysconf(_SC_PAGESIZE);
    hold_page = mmap(NULL, hold_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(hold_page != MAP_FAILED);
    if (hold_page == MAP_FAILED) return false;
    memcpy(hold_page, m, sizeof *m);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = hold_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, &f->old) == 0);
    CHECK(mprotect(hold_page, hold_len, PROT_NONE) == 0);
    atomic_store(&hold_seen, 0);
    atomic_store(&hold_until, p2p_now_ns() + hold_ns);
    f->rc = 1;
    CHECK(pthread_create(&f->t, NULL, inflight_main, f) == 0);
    uint64_t until = p2p_now_ns() + 5 * P2P_NS_PER_S;
    while (!atomic_load(&hold_seen) && p2p_now_ns() < until) sleep_ns(100000);
    CHECK(atomic_load(&hold_seen));
    return atomic_load(&hold_seen) != 0;
}

/* Joins the producer (its push must have succeeded) and restores SIGSEGV. */
static void hold_end(struct inflight *f)
{
    atomic_store(&hold_until, 0);
    CHECK(pthread_join(f->t, NULL) == 0);
    CHECK_OK(atomic_load(&f->rc));
    CHECK(sigaction(SIGSEGV, &f->old, NULL) == 0);
    munmap(hold_page, hold_len);
}

static void test_close_inflight(void)
{
    msg_t m = {.producer = 7, .check = mix(7, 1), .seq = 1, .payload = 0x1234};
    struct inflight f;
    CHECK_OK(p2p_mailbox_create(&f.mb, "inflight", sizeof(msg_t), 4, NULL));
    if (!hold_begin(&f, &m, HOLD_NS)) return;
    /* The producer holds a claimed cell.  The consumer closes and drains:
     * the push will succeed, so the drain must return its message. */
    p2p_mailbox_close(f.mb);
    msg_t got;
    memset(&got, 0, sizeof got);
    uint64_t t0 = p2p_now_ns();
    int rc = p2p_mailbox_try_pop(f.mb, &got, sizeof got);
    uint64_t waited = p2p_now_ns() - t0;
    CHECK_OK(rc);
    CHECK(rc != 0 || memcmp(&got, &m, sizeof m) == 0);
    hold_end(&f);
    CHECK_ERR(p2p_mailbox_try_pop(f.mb, &got, sizeof got), P2P_EEMPTY);
    CHECK_ERR(p2p_mailbox_try_push(f.mb, &m, sizeof m), P2P_ECLOSED);
    printf("close with a push in flight: the drain waited %.1f ms for it (rc %d)\n",
           (double)waited / 1e6, rc);
    p2p_mailbox_destroy(f.mb);
}

/* The consumer about to sleep while a push is in flight (the wake-up's
 * Dekker pair is on the claim, see core/mailbox.c): the public prepare
 * says not to block, a wait with a far deadline sleeps at most
 * P2P_WAITER_INFLIGHT_NS at a time and returns 0, never that deadline's
 * timeout; released, the message arrives intact. */
static void test_wait_inflight(void)
{
    p2p_thread_t me;
    CHECK_OK(p2p_thread_adopt(&me, "inflightc"));
    p2p_waiter_t *w = &me.waiter;
    msg_t m = {.producer = 8, .check = mix(8, 1), .seq = 1, .payload = 0x5678};
    struct inflight f;
    CHECK_OK(p2p_mailbox_create(&f.mb, "inflightw", sizeof(msg_t), 4, NULL));
    CHECK_OK(p2p_mailbox_attach(f.mb, w));
    if (!hold_begin(&f, &m, 30 * P2P_NS_PER_S)) return;
    CHECK(p2p_mailbox_depth(f.mb) == 1 && !p2p_mailbox_ready(f.mb)); /* claimed, not published */

    CHECK(!p2p_waiter_prepare(w));
    p2p_waiter_done(w);
    uint64_t before = atomic_load(&w->inflight), t0 = p2p_now_ns();
    uint64_t far = t0 + 60 * P2P_NS_PER_S;
    CHECK_OK(p2p_waiter_wait(w, far));
    CHECK_OK(p2p_waiter_wait(w, far));
    uint64_t el = p2p_now_ns() - t0;
    CHECK(atomic_load(&w->inflight) >= before + 2);
    CHECK(el < 30 * P2P_NS_PER_S); /* the bound ended them, not the deadline */
    CHECK(!p2p_mailbox_ready(f.mb));
    printf("wait with a push in flight: 2 bounded sleeps took %.2f ms (bound %u us each)\n",
           (double)el / 1e6, P2P_WAITER_INFLIGHT_NS / 1000);

    atomic_store(&hold_until, 0); /* release: the producer publishes and wakes us */
    msg_t got;
    memset(&got, 0, sizeof got);
    int rc = P2P_EEMPTY;
    for (unsigned i = 0; i < 100000 && rc == P2P_EEMPTY && p2p_now_ns() < far; i++) {
        rc = p2p_mailbox_try_pop(f.mb, &got, sizeof got);
        if (rc == P2P_EEMPTY) (void)p2p_waiter_wait(w, far);
    }
    CHECK_OK(rc);
    CHECK(memcmp(&got, &m, sizeof m) == 0);
    hold_end(&f);
    /* nothing in flight: an empty mailbox lets the owner sleep */
    CHECK(p2p_waiter_prepare(w));
    p2p_waiter_done(w);
    CHECK_ERR(p2p_waiter_wait(w, p2p_now_ns() + 20 * P2P_NS_PER_MS), P2P_ETIMEDOUT);
    p2p_mailbox_detach(f.mb);
    p2p_mailbox_destroy(f.mb);
    p2p_thread_unadopt(&me);
}

int main(void)
{
    test_edges();
    test_close_inflight();
    test_wait_inflight();
    test_blocked();
    test_handoff();
    test_sender_wakes();
    test_blocked_fairness();
    test_totals();
    uint64_t total = tu_scale(1000000, 300000);
    run_stress(1, total, 64);
    run_stress(4, total, 64);
    run_stress(4, tu_scale(200000, 20000), 2); /* tiny ring: constant backpressure */
    test_pingpong(tu_scale(50000, 5000));
    test_quiet(tu_scale(20000, 3000));
    return tu_done("mailbox");
}
