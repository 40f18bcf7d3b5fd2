/*
 * tests/bench/bench_mailbox.c: mailbox throughput and wake-up latency, each
 * next to a mutex+condvar bounded queue measured in the same run:
 *   - messages/s, 1 producer -> 1 consumer and 4 producers -> 1 consumer,
 *     32-byte messages, capacity 1024; producers block when full (mailbox:
 *     p2p_mailbox_push; baseline: condvar), the consumer pops batches of up
 *     to 64 and sleeps when empty (mailbox: p2p_waiter_wait; baseline:
 *     condvar).  Each row runs interleaved pairs of rounds (a mailbox round
 *     and a mutex queue round back to back, the order alternating, so both
 *     see the same machine) and prints medians with min-max; the ratio is
 *     the median of the pairs' ratios.  Per 1000 messages: context switches
 *     of the process (getrusage), and for the mailbox the consumer's sleeps,
 *     the pushes that found the ring full, their futex waits and the
 *     consumer's wake-ups of them (p2p_mailbox_get_stats).
 *   - cross-thread wake-up round trip: ping-pong of one message through two
 *     one-slot queues where each side really sleeps between messages
 *     (mailbox: waiter/eventfd; baseline: condvar); median and p99.
 * Targets: >= 3x the mutex queue's throughput at 4->1; round-trip median
 * < 10 us.  Throughput is wall-clock; next to it the CPU time of all
 * threads per message (steadier on a shared machine).  Look at the ratios.  Run:
 * build/tests/bench/bench_mailbox [messages-per-round [all|tp|rt|rowN... [pairs]]]
 * (row12: only throughput rows 1 and 2, of 1..4; BENCH_VERBOSE=1 prints
 * every pair)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"
#include "tests/bench/bench_util.h"

#define MSG 32
#define CAP 1024
#define BATCH 64

typedef struct {
    uint64_t seq;
    uint64_t producer;
    uint8_t pad[MSG - 16];
} msg_t;

/* ---- the baseline: bounded ring under a mutex with two condvars -------- */

typedef struct mq {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    msg_t *ring;
    size_t cap, head, count;
} mq_t;

static void mq_init(mq_t *q, size_t cap)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->ring = calloc(cap, sizeof *q->ring);
    q->cap = cap;
    q->head = q->count = 0;
}

static void mq_free(mq_t *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->ring);
}

static void mq_push(mq_t *q, const msg_t *m)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->lock);
    q->ring[(q->head + q->count) % q->cap] = *m;
    if (q->count++ == 0) pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

static size_t mq_pop_batch(mq_t *q, msg_t *out, size_t max)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0) pthread_cond_wait(&q->not_empty, &q->lock);
    bool was_full = q->count == q->cap;
    size_t n = 0;
    for (; n < max && q->count; n++) {
        out[n] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    if (was_full) pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* ---- throughput ---------------------------------------------------------- */

struct tp {
    p2p_mailbox_t *mb;
    mq_t *mq;
    uint64_t per_producer;
    uint64_t index;
};

/* Print every pair's figures (environment variable BENCH_VERBOSE). */
static bool verbose;

static int mb_producer(p2p_thread_t *self, void *arg)
{
    struct tp *t = arg;
    msg_t m = {0};
    m.producer = t->index;
    for (uint64_t i = 0; i < t->per_producer; i++) {
        m.seq = i;
        if (p2p_mailbox_push(t->mb, &m, sizeof m, P2P_DEADLINE_NEVER)) return 1;
    }
    (void)self;
    return 0;
}

static int mq_producer(p2p_thread_t *self, void *arg)
{
    struct tp *t = arg;
    msg_t m = {0};
    m.producer = t->index;
    for (uint64_t i = 0; i < t->per_producer; i++) {
        m.seq = i;
        mq_push(t->mq, &m);
    }
    (void)self;
    return 0;
}

static uint64_t checksum;

/* CPU seconds used by the whole process (all threads). */
static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One throughput round.  Counters are per 1000 messages. */
typedef struct tp_res {
    double rate;                     /* messages per wall second */
    double cpu_ns;                   /* CPU of all threads per message */
    double vcsw, ivcsw;              /* voluntary / involuntary context switches */
    double csleeps;                  /* consumer sleeps (mailbox: waiter; queue: n/a) */
    double inflight;                 /* mailbox: of those, bounded by a push in flight */
    double blocked, ssleeps, swakes; /* mailbox: pushes that blocked, their futex
                                      * waits, the consumer's wake-alls */
} tp_res_t;

/* The calling thread is the consumer. */
static void run_tp(bool mailbox, unsigned producers, uint64_t total, uint32_t cap, p2p_thread_t *me,
                   uint32_t spin_ns, tp_res_t *res)
{
    p2p_waiter_set_spin(&me->waiter, spin_ns);
    p2p_mailbox_t *mb = NULL;
    mq_t mq;
    if (mailbox) {
        /* a fresh mailbox per round, detached after */
        if (p2p_mailbox_create(&mb, "bench", sizeof(msg_t), cap, NULL) ||
            p2p_mailbox_attach(mb, &me->waiter))
            abort();
    } else {
        mq_init(&mq, cap);
    }
    struct tp args[4];
    p2p_thread_t th[4];
    uint64_t per = total / producers, want = per * producers;
    uint64_t s0 = atomic_load(&me->waiter.sleeps), f0 = atomic_load(&me->waiter.inflight);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = bench_wall(), c0 = process_cpu();
    for (unsigned i = 0; i < producers; i++) {
        args[i] = (struct tp){mb, &mq, per, i};
        if (p2p_thread_spawn(&th[i], "bench-prod", 0, mailbox ? mb_producer : mq_producer,
                             &args[i]))
            abort();
    }
    msg_t batch[BATCH];
    uint64_t got = 0, sum = 0;
    while (got < want) {
        size_t n;
        if (mailbox) {
            n = p2p_mailbox_pop_batch(mb, batch, sizeof batch);
            if (n == 0) {
                p2p_waiter_wait(&me->waiter, P2P_DEADLINE_NEVER);
                continue;
            }
        } else {
            n = mq_pop_batch(&mq, batch, BATCH);
        }
        for (size_t i = 0; i < n; i++) sum += batch[i].seq;
        got += n;
    }
    double dt = bench_wall() - t0;
    for (unsigned i = 0; i < producers; i++) {
        int rc = 0;
        p2p_thread_join(&th[i], &rc);
        if (rc) abort();
    }
    double k = 1000.0 / (double)want;
    res->cpu_ns = (process_cpu() - c0) * 1e9 / (double)want;
    getrusage(RUSAGE_SELF, &ru1);
    res->rate = (double)want / dt;
    res->vcsw = (double)(ru1.ru_nvcsw - ru0.ru_nvcsw) * k;
    res->ivcsw = (double)(ru1.ru_nivcsw - ru0.ru_nivcsw) * k;
    checksum += sum;
    res->csleeps = res->inflight = res->blocked = res->ssleeps = res->swakes = 0;
    if (mailbox) {
        p2p_mailbox_stats_t st;
        p2p_mailbox_get_stats(mb, &st);
        res->csleeps = (double)(atomic_load(&me->waiter.sleeps) - s0) * k;
        res->inflight = (double)(atomic_load(&me->waiter.inflight) - f0) * k;
        res->blocked = (double)st.blocked_waits * k;
        res->ssleeps = (double)st.sender_sleeps * k;
        res->swakes = (double)st.sender_wakes * k;
        p2p_mailbox_detach(mb);
        p2p_mailbox_destroy(mb);
    } else {
        mq_free(&mq);
    }
}

#define PAIRS_MAX 64

/* Copies one field of tp_res_t from rounds r[0..n) into v, sorted, and
 * returns its median. */
static double field_sorted(double *v, const tp_res_t *r, int n, size_t off)
{
    for (int i = 0; i < n; i++) memcpy(&v[i], (const char *)&r[i] + off, sizeof v[i]);
    return bench_median(v, n);
}
#define SORTED(v, r, n, f) field_sorted(v, r, n, offsetof(tp_res_t, f))

/* The median over rounds of one field of tp_res_t. */
static double med_field(const tp_res_t *r, int n, size_t off)
{
    double v[PAIRS_MAX];
    return field_sorted(v, r, n, off);
}
#define MED(r, n, f) med_field(r, n, offsetof(tp_res_t, f))

/* Runs `pairs` interleaved pairs of rounds (mailbox and mutex queue back to
 * back, the order alternating) and prints the distributions.  Returns the
 * median of the per-pair ratios (mailbox / mutex queue messages per
 * second). */
static double tp_row(unsigned prods, uint32_t cap, uint32_t spin, uint64_t total, int pairs,
                     p2p_thread_t *me)
{
    tp_res_t a[PAIRS_MAX], b[PAIRS_MAX];
    double ratio[PAIRS_MAX], cratio[PAIRS_MAX];
    for (int r = 0; r < pairs; r++) {
        if (r % 2 == 0) {
            run_tp(true, prods, total, cap, me, spin, &a[r]);
            run_tp(false, prods, total, cap, me, 0, &b[r]);
        } else {
            run_tp(false, prods, total, cap, me, 0, &b[r]);
            run_tp(true, prods, total, cap, me, spin, &a[r]);
        }
        ratio[r] = a[r].rate / b[r].rate;
        cratio[r] = b[r].cpu_ns / a[r].cpu_ns;
        if (verbose)
            printf("    pair %2d: mailbox %6.2f M msg/s %6.1f ns/msg csw "
                   "%.2f+%.2f csleep %.2f "
                   "blocked %.2f ssleep %.2f wakes %.2f | mutex %6.2f %6.1f ns/msg csw "
                   "%.2f+%.2f\n",
                   r, a[r].rate / 1e6, a[r].cpu_ns, a[r].vcsw, a[r].ivcsw, a[r].csleeps,
                   a[r].blocked, a[r].ssleeps, a[r].swakes, b[r].rate / 1e6, b[r].cpu_ns, b[r].vcsw,
                   b[r].ivcsw);
    }
    p2p_waiter_set_spin(&me->waiter, 0);
    double ra[PAIRS_MAX], rb[PAIRS_MAX], ca[PAIRS_MAX], cb[PAIRS_MAX];
    double mr = bench_median(ratio, pairs), mc = bench_median(cratio, pairs);
    double ma = SORTED(ra, a, pairs, rate), mb = SORTED(rb, b, pairs, rate);
    printf("  %u->1 cap %-8u %-5s mailbox %6.2f M msg/s (%6.2f-%6.2f)  mutex queue %6.2f "
           "(%5.2f-%5.2f)  ratio %5.2fx (pairs %4.2f-%4.2f)\n",
           prods, cap, spin ? "spin" : "sleep", ma / 1e6, ra[0] / 1e6, ra[pairs - 1] / 1e6,
           mb / 1e6, rb[0] / 1e6, rb[pairs - 1] / 1e6, mr, ratio[0], ratio[pairs - 1]);
    double mca = SORTED(ca, a, pairs, cpu_ns), mcb = SORTED(cb, b, pairs, cpu_ns);
    printf("  %19s CPU (all threads) mailbox %6.1f ns/msg (min %5.1f)  mutex queue %6.1f ns/msg "
           "(min %5.1f)  ratio %5.2fx (pairs %4.2f-%4.2f)\n",
           "", mca, ca[0], mcb, cb[0], mc, cratio[0], cratio[pairs - 1]);
    printf("  %19s per 1000 msgs: context switches mailbox %.2f + %.2f invol, mutex queue "
           "%.2f + %.2f; mailbox consumer sleeps %.2f (%.2f bounded by a push in flight), "
           "blocked pushes %.2f, their futex waits %.2f, wake-alls %.2f\n",
           "", MED(a, pairs, vcsw), MED(a, pairs, ivcsw), MED(b, pairs, vcsw), MED(b, pairs, ivcsw),
           MED(a, pairs, csleeps), MED(a, pairs, inflight), MED(a, pairs, blocked),
           MED(a, pairs, ssleeps), MED(a, pairs, swakes));
    return mr;
}

/* ---- trace cost: one push + pop on one thread, tracing off vs on ------- */

static p2p_mailbox_t *solo;

static void describe(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const msg_t *m = msg;
    *kind = 1;
    *peer = m->producer;
    *arg = m->seq;
}

static void push_pop(void *arg)
{
    msg_t m = {0}, o;
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        m.seq = (uint64_t)i;
        if (p2p_mailbox_try_push(solo, &m, sizeof m) || p2p_mailbox_try_pop(solo, &o, sizeof o))
            abort();
        checksum += o.seq;
    }
}

static void run_trace_cost(void)
{
    char dir[] = "/tmp/bench-trace-XXXXXX", path[64];
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof path, "%s/trace.ring", dir);
    if (p2p_trace_open(path, 4, 1 << 16)) abort();
    if (p2p_mailbox_create(&solo, "solo", sizeof(msg_t), 64, describe)) abort();
    p2p_trace_enable(false);
    double off = bench_best(push_pop, NULL, 0.05, 3) * 1e9 / 1000;
    p2p_trace_enable(true);
    double on = bench_best(push_pop, NULL, 0.05, 3) * 1e9 / 1000;
    p2p_trace_enable(false);
    printf("trace cost, push + pop on one thread: off %.1f ns, on %.1f ns (2 records): %.1f ns "
           "per record\n",
           off, on, (on - off) / 2);
    p2p_mailbox_destroy(solo);
    p2p_trace_close();
    unlink(path);
    rmdir(dir);
}

/* ---- wake-up round trip ------------------------------------------------- */

struct pp {
    bool mailbox;
    uint32_t spin_ns; /* both sides' wait policy: 0 sleep at once, else spin window */
    uint64_t rounds;
    p2p_mailbox_t *ping, *pong;
    mq_t qping, qpong;
    _Atomic int ready;
};

static int ponger(p2p_thread_t *self, void *arg)
{
    struct pp *p = arg;
    p2p_waiter_set_spin(&self->waiter, p->spin_ns);
    if (p->mailbox && p2p_mailbox_attach(p->ping, &self->waiter)) abort();
    atomic_store(&p->ready, 1);
    msg_t m;
    for (uint64_t i = 0; i < p->rounds; i++) {
        if (p->mailbox) {
            while (p2p_mailbox_try_pop(p->ping, &m, sizeof m) != 0)
                p2p_waiter_wait(&self->waiter, P2P_DEADLINE_NEVER);
            if (p2p_mailbox_push(p->pong, &m, sizeof m, P2P_DEADLINE_NEVER)) abort();
        } else {
            mq_pop_batch(&p->qping, &m, 1);
            mq_push(&p->qpong, &m);
        }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct rt {
    double median, p99;           /* microseconds */
    double sleeps, pinger_sleeps; /* per round */
    double cpu_us;                /* CPU of both threads per round */
    double hits;                  /* spins that found the message, per round */
};

static void run_rt(bool mailbox, uint32_t spin_ns, uint64_t pause_us, uint64_t rounds,
                   p2p_thread_t *me, struct rt *out)
{
    struct pp *p = calloc(1, sizeof *p);
    p->mailbox = mailbox;
    p->spin_ns = spin_ns;
    p->rounds = rounds;
    p2p_waiter_set_spin(&me->waiter, spin_ns);
    if (mailbox) {
        if (p2p_mailbox_create(&p->ping, "ping", sizeof(msg_t), 1, NULL) ||
            p2p_mailbox_create(&p->pong, "pong", sizeof(msg_t), 1, NULL))
            abort();
        if (p2p_mailbox_attach(p->pong, &me->waiter)) abort();
    } else {
        mq_init(&p->qping, 1);
        mq_init(&p->qpong, 1);
    }
    p2p_thread_t th;
    if (p2p_thread_spawn(&th, "bench-pong", 0, ponger, p)) abort();
    while (!atomic_load(&p->ready)) sched_yield();
    uint64_t *lat = calloc(rounds, sizeof *lat);
    uint64_t s0 = atomic_load(&me->waiter.sleeps), h0 = atomic_load(&me->waiter.spin_hits);
    double c0 = process_cpu(), busy = 0;
    msg_t m = {0};
    for (uint64_t i = 0; i < rounds; i++) {
        /* A pause between rounds: the ponger has gone idle (asleep, or
         * spinning if the pause is inside its window) when the ping
         * arrives.  The pinger busy-waits it (not counted as CPU below). */
        double b0 = bench_cpu();
        uint64_t until = p2p_now_ns() + pause_us * P2P_NS_PER_US;
        while (p2p_now_ns() < until) {
        }
        busy += bench_cpu() - b0;
        m.seq = i;
        uint64_t t0 = p2p_now_ns();
        if (mailbox) {
            if (p2p_mailbox_push(p->ping, &m, sizeof m, P2P_DEADLINE_NEVER)) abort();
            while (p2p_mailbox_try_pop(p->pong, &m, sizeof m) != 0)
                p2p_waiter_wait(&me->waiter, P2P_DEADLINE_NEVER);
        } else {
            mq_push(&p->qping, &m);
            mq_pop_batch(&p->qpong, &m, 1);
        }
        lat[i] = p2p_now_ns() - t0;
    }
    p2p_thread_join(&th, NULL);
    out->cpu_us = ((process_cpu() - c0) - busy) * 1e6 / (double)rounds;
    /* The ponger is the consumer that must be woken each round; the
     * pinger's reply usually lands while its own eventfd write is still
     * returning, so it rarely needs to sleep. */
    out->sleeps = (double)atomic_load(&th.waiter.sleeps) / (double)rounds;
    out->pinger_sleeps = (double)(atomic_load(&me->waiter.sleeps) - s0) / (double)rounds;
    out->hits =
        (double)(atomic_load(&th.waiter.spin_hits) + atomic_load(&me->waiter.spin_hits) - h0) /
        (double)rounds;
    qsort(lat, rounds, sizeof *lat, cmp_u64);
    out->median = (double)lat[rounds / 2] / 1000.0;
    out->p99 = (double)lat[rounds * 99 / 100] / 1000.0;
    p2p_waiter_set_spin(&me->waiter, 0);
    free(lat);
    if (mailbox) {
        p2p_mailbox_detach(p->pong);
        p2p_mailbox_destroy(p->ping);
        p2p_mailbox_destroy(p->pong);
    } else {
        mq_free(&p->qping);
        mq_free(&p->qpong);
    }
    free(p);
}

static void print_rt(const char *name, const char *policy, const struct rt *r, bool waiter)
{
    char sl[48] = "n/a";
    if (waiter)
        snprintf(sl, sizeof sl, "%.2f + %.2f, spin hits %.2f", r->sleeps, r->pinger_sleeps,
                 r->hits);
    printf("  %-15s %-27s median %7.2f us  p99 %8.2f us  sleeps/round %-27s CPU %6.2f us/round\n",
           name, policy, r->median, r->p99, sl, r->cpu_us);
}

int main(int argc, char **argv)
{
    bench_args(argc, argv, 3,
               "[messages per round, default 1000000] [all|tp|rt|rowN..., default all] [pairs, "
               "default 20]");
    uint64_t total = (uint64_t)bench_arg_num(1, "messages per round", 1000, 1e10, true, 1000000);
    /* "rowN...": only the throughput rows whose numbers (1-4) follow */
    const char *what = argc > 2 && strncmp(argv[2], "row", 3) == 0
                           ? argv[2]
                           : bench_arg_word(2, "the part to run", "all|tp|rt|rowN...", "all");
    unsigned only = 0;
    if (strncmp(what, "row", 3) == 0) {
        const char *c = what + 3;
        for (; *c >= '1' && *c <= '4'; c++) only |= 1u << (*c - '1');
        if (*c || !only)
            bench_usage_fail("rowN... is row and the numbers of rows 1 to 4 (row12), not '%s'",
                             what);
    }
    int pairs = (int)bench_arg_num(3, "pairs", 1, PAIRS_MAX, true, 20);
    bool do_tp = strcmp(what, "rt") != 0, do_rt = strcmp(what, "all") == 0 || !strcmp(what, "rt");
    uint64_t rounds = total / 100 < 1000 ? 1000 : total / 100;
    const uint32_t spin = P2P_WAITER_SPIN_DEFAULT_NS;
    p2p_thread_t me;
    if (p2p_thread_adopt(&me, "bench-main")) return 1;
    verbose = getenv("BENCH_VERBOSE") != NULL;

    double ratio41 = 0;
    if (do_tp) {
        printf("mailbox vs mutex+condvar queue: %llu messages of %d bytes per round; %d "
               "interleaved pairs of rounds per row (mailbox and mutex queue back to back); "
               "medians, (min-max), ratio = median of the pairs' ratios\n",
               (unsigned long long)total, MSG, pairs);
        printf("wait policies: mailbox consumer p2p_waiter (sleep at once, or spin up to %u us "
               "then sleep: 'spin'), blocked senders futex, woken at half a ring; mutex "
               "queue: pthread condvars (futex sleep, no spin)\n",
               spin / 1000);
        /* Rows: the required 1->1 and 4->1 at capacity 1024 (producers are
         * faster than the consumer, so the ring runs full and backpressure is
         * part of the figure), the same 4->1 with the consumer on the spin
         * policy, then 4->1 with a ring larger than the run (no
         * backpressure: the queue operations alone).  The last two get half
         * the pairs. */
        struct {
            unsigned prods;
            uint32_t cap, spin;
        } rows[4] = {{1, CAP, 0}, {4, CAP, 0}, {4, CAP, spin}, {4, 0, 0}};
        for (int k = 0; k < 4; k++) {
            if (only && !(only & (1u << k))) continue;
            uint32_t cap = rows[k].cap;
            if (!cap) {
                cap = 2;
                while (cap < total && cap < P2P_MAILBOX_CAP_MAX) cap <<= 1;
            }
            int n = k < 2 ? pairs : (pairs + 1) / 2;
            double r = tp_row(rows[k].prods, cap, rows[k].spin, total, n, &me);
            if (k == 1) ratio41 = r;
        }
    }

    struct rt rs, rl, rz, rq;
    if (do_rt) {
        /* Round trips: the spin policy (what the component threads use)
         * with a 20 us pause (inside the window) and a 200 us pause (past
         * it: the windows decay and both sides sleep), the sleep policy
         * (what peer threads use), and the condvar queue. */
        run_rt(true, spin, 20, rounds, &me, &rs);
        run_rt(true, spin, 200, rounds / 4, &me, &rl);
        run_rt(true, 0, 20, rounds, &me, &rz);
        run_rt(false, 0, 20, rounds, &me, &rq);
        printf("wake-up round trip (%llu rounds, a pause between rounds; sleeps per round: "
               "ponger + pinger; CPU of both threads per round, pause excluded):\n",
               (unsigned long long)rounds);
        print_rt("mailbox+waiter", "spin 50 us, pause 20 us", &rs, true);
        print_rt("mailbox+waiter", "spin 50 us, pause 200 us", &rl, true);
        print_rt("mailbox+waiter", "sleep at once, pause 20 us", &rz, true);
        print_rt("mutex+condvar", "futex sleep, pause 20 us", &rq, false);
        printf("  ratio (condvar / mailbox, pause 20 us) median: spin %.2fx, sleep %.2fx\n",
               rq.median / rs.median, rq.median / rz.median);
    }
    if (do_tp && (!only || only & 2)) /* row 2 is the one the target is about */
        printf("target: 4->1 (cap 1024, sleep) ratio (median of pairs) >= 3x: %s (%.2fx)\n",
               ratio41 >= 3 ? "met" : "NOT met", ratio41);
    if (do_rt)
        printf("target: round-trip median < 10 us (spin policy, pause 20 us): %s (%.2f us)\n",
               rs.median < 10 ? "met" : "NOT met", rs.median);
    if (do_tp) run_trace_cost();
    printf("(checksum %llu)\n", (unsigned long long)checksum);
    p2p_thread_unadopt(&me);
    return 0;
}
