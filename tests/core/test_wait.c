/*
 * Waiter: one wait over several mailboxes and a pipe (Go's select), the
 * deadline, sticky explicit wakes, the empty-to-non-empty rule (one
 * eventfd write per announced sleep, none while the consumer is busy) and
 * the external-epoll protocol; signal mode (no eventfd: wakes by tgkill
 * reach a thread sleeping in p2p_waiter_poll, quit included, also when
 * the queue of pending signals is full); the spin
 * policy (work, an explicit wake or a ready fd ends a spin; the window
 * decays to zero while idle and comes back after a quick wake; spin then
 * sleep still wakes; quit reaches a spinning consumer; no message lost).
 */
#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "tests/tu.h"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct later {
    p2p_mailbox_t *mb; /* push here after delay_ms, or ... */
    int fd;            /* ... write a byte here */
    p2p_waiter_t *w;   /* ... or wake this */
    unsigned delay_ms;
    unsigned count;
};

static int later_fn(p2p_thread_t *self, void *arg)
{
    struct later *l = arg;
    sleep_ms(l->delay_ms);
    for (unsigned i = 0; i < l->count; i++) {
        uint64_t v = 0xabc0 + i;
        if (l->mb && p2p_mailbox_try_push(l->mb, &v, sizeof v)) return 1;
    }
    if (l->fd >= 0 && write(l->fd, "x", 1) != 1) return 1;
    if (l->w) p2p_waiter_wake(l->w);
    (void)self;
    return 0;
}

/* Signal mode: a consumer thread with no eventfd sleeps in
 * p2p_waiter_poll (over a pipe it never sees written) until each message
 * arrives, until the deadline in the test, or until quit. */
struct sigcons {
    p2p_mailbox_t *mb;
    int fd;
    unsigned secs; /* how long it waits at most (0: 30 s) */
    _Atomic unsigned got;
    _Atomic int efd_seen;
    _Atomic unsigned sleeps_done;
};

static int sigcons_fn(p2p_thread_t *self, void *arg)
{
    struct sigcons *sc = arg;
    atomic_store(&sc->efd_seen, p2p_waiter_fd(&self->waiter));
    if (p2p_mailbox_attach(sc->mb, &self->waiter)) return 1;
    uint64_t end = p2p_now_ns() + (sc->secs ? sc->secs : 30) * P2P_NS_PER_S;
    while (!p2p_thread_should_quit(self) && p2p_now_ns() < end) {
        uint64_t v;
        while (p2p_mailbox_try_pop(sc->mb, &v, sizeof v) == 0) atomic_fetch_add(&sc->got, 1);
        struct pollfd pfd = {.fd = sc->fd, .events = POLLIN};
        int rc = p2p_waiter_poll(&self->waiter, &pfd, 1, end);
        if (rc && rc != P2P_ETIMEDOUT) return 2;
        atomic_fetch_add(&sc->sleeps_done, 1);
    }
    p2p_mailbox_detach(sc->mb);
    return p2p_thread_should_quit(self) ? 0 : 3;
}

/* Starts a signal-mode consumer of sc (name: its mailbox and thread) on
 * the read end of a new pipe (pfd). */
static void sigcons_start(struct sigcons *sc, const char *name, int pfd[2], p2p_thread_t *th)
{
    CHECK(pipe(pfd) == 0);
    sc->fd = pfd[0];
    CHECK_OK(p2p_mailbox_create(&sc->mb, name, 8, 64, NULL));
    CHECK_OK(p2p_thread_spawn_ex(th, name, 0, P2P_THREAD_SIGNAL_WAKE, sigcons_fn, sc));
}

static void test_signal_mode(void)
{
    struct sigcons sc = {.fd = -1};
    int pfd[2];
    p2p_thread_t th;
    sigcons_start(&sc, "sigcons", pfd, &th);
    /* every push wakes the sleeper: 200 messages, some while it sleeps,
     * some back to back */
    for (unsigned i = 0; i < 200; i++) {
        uint64_t v = i;
        while (p2p_mailbox_try_push(sc.mb, &v, sizeof v) != 0) sleep_ms(1);
        if (i % 10 == 0) sleep_ms(2);
    }
    uint64_t end = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (atomic_load(&sc.got) < 200 && p2p_now_ns() < end) sleep_ms(1);
    CHECK(atomic_load(&sc.got) == 200);
    CHECK(atomic_load(&sc.efd_seen) == -1);
    CHECK(atomic_load(&sc.sleeps_done) > 0);
    /* quit reaches a sleeping signal-mode thread (its deadline is 30 s) */
    sleep_ms(20);
    uint64_t t0 = p2p_now_ns();
    p2p_thread_request_quit(&th);
    int rc = -1;
    CHECK_OK(p2p_thread_join(&th, &rc));
    CHECK(rc == 0);
    CHECK(p2p_now_ns() - t0 < 5 * P2P_NS_PER_S);
    p2p_mailbox_destroy(sc.mb);
    close(pfd[0]);
    close(pfd[1]);
}

/* Signal mode when the queue of pending signals is full (RLIMIT_SIGPENDING,
 * per user, here 0): a wake-up still reaches the sleeper, a push and a
 * quit alike.  A queued (real-time) signal sent by tgkill fails with
 * EAGAIN then, and the wake-up was lost: the thread slept until its
 * deadline. */
static void test_signal_queue_full(void)
{
    struct rlimit old, none;
    CHECK(getrlimit(RLIMIT_SIGPENDING, &old) == 0);
    none = old;
    none.rlim_cur = 0;
    CHECK(setrlimit(RLIMIT_SIGPENDING, &none) == 0);
    struct sigcons sc = {.fd = -1, .secs = 8};
    int pfd[2];
    p2p_thread_t th;
    sigcons_start(&sc, "sigfull", pfd, &th);
    /* asleep in ppoll (its first wait finds nothing) */
    uint64_t end = p2p_now_ns() + 5 * P2P_NS_PER_S;
    while (atomic_load(&th.waiter.sleeps) == 0 && p2p_now_ns() < end) sleep_ms(1);
    sleep_ms(20);
    uint64_t v = 1, t0 = p2p_now_ns();
    CHECK_OK(p2p_mailbox_try_push(sc.mb, &v, sizeof v));
    end = t0 + 2 * P2P_NS_PER_S;
    while (atomic_load(&sc.got) < 1 && p2p_now_ns() < end) sleep_ms(1);
    CHECK(atomic_load(&sc.got) == 1);
    sleep_ms(20);
    t0 = p2p_now_ns();
    p2p_thread_request_quit(&th);
    int rc = -1;
    CHECK_OK(p2p_thread_join(&th, &rc));
    CHECK(rc == 0);
    CHECK(p2p_now_ns() - t0 < 2 * P2P_NS_PER_S);
    CHECK(setrlimit(RLIMIT_SIGPENDING, &old) == 0);
    p2p_mailbox_destroy(sc.mb);
    close(pfd[0]);
    close(pfd[1]);
}

/* ---- spin policy -------------------------------------------------------- */

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* A spinning consumer (spawned with P2P_THREAD_SPIN_WAIT) loops on its
 * mailbox until quit; counts what it popped. */
struct spincons {
    p2p_mailbox_t *mb;
    _Atomic unsigned got;
    _Atomic int ready;
};

static int spincons_fn(p2p_thread_t *self, void *arg)
{
    struct spincons *sc = arg;
    if (self->waiter.spin_max != P2P_WAITER_SPIN_DEFAULT_NS) return 4;
    if (p2p_mailbox_attach(sc->mb, &self->waiter)) return 1;
    atomic_store(&sc->ready, 1);
    uint64_t end = p2p_now_ns() + 30 * P2P_NS_PER_S;
    while (!p2p_thread_should_quit(self) && p2p_now_ns() < end) {
        uint64_t v;
        while (p2p_mailbox_try_pop(sc->mb, &v, sizeof v) == 0) atomic_fetch_add(&sc->got, 1);
        int rc = p2p_waiter_wait(&self->waiter, P2P_DEADLINE_NEVER);
        if (rc) return 2;
    }
    p2p_mailbox_detach(sc->mb);
    return p2p_thread_should_quit(self) ? 0 : 3;
}

static void test_spin(p2p_thread_t *me, p2p_mailbox_t *mb, int rfd, int wfd)
{
    p2p_waiter_t *w = &me->waiter;
    uint64_t v = 7, t0;
    char c;
    CHECK(w->spin_max == 0 && w->spin_win == 0); /* default: sleep at once */
    p2p_waiter_set_spin(w, 50 * 1000);
    CHECK(w->spin_max == 50000 && w->spin_win == 50000);

    /* work already there: found by the spin, no sleep */
    uint64_t hits = atomic_load(&w->spin_hits), sleeps = atomic_load(&w->sleeps);
    CHECK_OK(p2p_mailbox_try_push(mb, &v, sizeof v));
    CHECK_OK(p2p_waiter_wait(w, P2P_DEADLINE_NEVER));
    CHECK(atomic_load(&w->spin_hits) == hits + 1 && atomic_load(&w->sleeps) == sleeps);
    CHECK_OK(p2p_mailbox_try_pop(mb, &v, sizeof v));

    /* an explicit wake (quit uses it) ends a spin and is consumed: the next
     * wait times out */
    p2p_waiter_wake(w);
    CHECK_OK(p2p_waiter_wait(w, P2P_DEADLINE_NEVER));
    CHECK(atomic_load(&w->spin_hits) == hits + 2);
    t0 = p2p_now_ns();
    CHECK_ERR(p2p_waiter_wait(w, t0 + 30 * P2P_NS_PER_MS), P2P_ETIMEDOUT);
    CHECK(p2p_now_ns() - t0 >= 30 * P2P_NS_PER_MS);

    /* an fd that becomes ready is seen by the spin's poll */
    CHECK(write(wfd, "x", 1) == 1);
    struct pollfd pfd = {.fd = rfd, .events = POLLIN};
    p2p_waiter_set_spin(w, 1000 * 1000);
    CHECK_OK(p2p_waiter_poll(w, &pfd, 1, p2p_now_ns() + 5 * P2P_NS_PER_S));
    CHECK(pfd.revents & POLLIN);
    CHECK(read(rfd, &c, 1) == 1);

    /* idle: every empty spin halves the window; after six it is zero and
     * the thread only sleeps (bounded CPU: at most about 2x the window) */
    p2p_waiter_set_spin(w, 50 * 1000);
    uint64_t misses = atomic_load(&w->spin_misses);
    double cpu0 = thread_cpu_ms();
    for (int i = 0; i < 10; i++)
        CHECK_ERR(p2p_waiter_wait(w, p2p_now_ns() + 5 * P2P_NS_PER_MS), P2P_ETIMEDOUT);
    CHECK(w->spin_win == 0);
    CHECK(atomic_load(&w->spin_misses) == misses + 6);
    double idle_cpu = thread_cpu_ms() - cpu0;
    CHECK(idle_cpu < 20.0); /* 10 waits over >= 50 ms; the spins total ~100 us */

    /* spin (window decayed to zero), then sleep: a later push still wakes
     * the sleeper, and a quick wake restores the full window */
    struct later l = {.mb = mb, .fd = -1, .delay_ms = 1, .count = 1};
    p2p_thread_t th;
    bool restored = false, slept = false;
    for (int tries = 0; tries < 20 && !(restored && slept); tries++) {
        sleeps = atomic_load(&w->sleeps);
        CHECK_OK(p2p_thread_spawn(&th, "later", 0, later_fn, &l));
        int rc = 0;
        while (!p2p_mailbox_ready(mb) && rc == 0)
            rc = p2p_waiter_wait(w, p2p_now_ns() + 5 * P2P_NS_PER_S);
        CHECK_OK(rc);
        CHECK_OK(p2p_thread_join(&th, &rc));
        CHECK(rc == 0);
        CHECK_OK(p2p_mailbox_try_pop(mb, &v, sizeof v));
        CHECK(v == 0xabc0);
        /* (a loaded machine may deliver before the wait: then no sleep) */
        slept |= atomic_load(&w->sleeps) > sleeps;
        /* woken 1 ms after the wait began: within 4x a 1 ms window */
        restored |= w->spin_win == w->spin_max;
        p2p_waiter_set_spin(w, 1000 * 1000);
        w->spin_win = 0;
    }
    CHECK(restored);
    CHECK(slept);
    p2p_waiter_set_spin(w, 0);

    /* a spawned spinning consumer: no message lost across spin and sleep,
     * and a quit request reaches it whether it spins or sleeps */
    struct spincons sc = {0};
    CHECK_OK(p2p_mailbox_create(&sc.mb, "spin", 8, 64, NULL));
    CHECK_OK(p2p_thread_spawn_ex(&th, "spincons", 0, P2P_THREAD_SPIN_WAIT, spincons_fn, &sc));
    uint64_t end = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (!atomic_load(&sc.ready) && p2p_now_ns() < end) sleep_ms(1);
    for (unsigned i = 0; i < 2000; i++) {
        while (p2p_mailbox_try_push(sc.mb, &v, sizeof v) != 0 && p2p_now_ns() < end) sched_yield();
        if (i % 100 == 0) sleep_ms(1); /* past the window: it sleeps */
        if (i % 100 == 50) {
            uint64_t until = p2p_now_ns() + 20 * P2P_NS_PER_US; /* inside it */
            while (p2p_now_ns() < until) {
            }
        }
    }
    while (atomic_load(&sc.got) < 2000 && p2p_now_ns() < end) sleep_ms(1);
    CHECK(atomic_load(&sc.got) == 2000);
    /* quit while it is (most likely) spinning right after the last pops */
    CHECK_OK(p2p_mailbox_try_push(sc.mb, &v, sizeof v));
    p2p_thread_request_quit(&th);
    t0 = p2p_now_ns();
    int rc = -1;
    CHECK_OK(p2p_thread_join(&th, &rc));
    CHECK(rc == 0);
    CHECK(p2p_now_ns() - t0 < 5 * P2P_NS_PER_S);
    CHECK(atomic_load(&th.waiter.spin_hits) + atomic_load(&th.waiter.spin_misses) > 0);
    p2p_mailbox_destroy(sc.mb);
}

static void run_later(p2p_thread_t *th, struct later *l)
{
    CHECK_OK(p2p_thread_spawn(th, "later", 0, later_fn, l));
}

int main(void)
{
    p2p_thread_t me, th;
    CHECK_OK(p2p_thread_adopt(&me, "waiter-test"));
    p2p_waiter_t *w = &me.waiter;
    CHECK(p2p_waiter_fd(w) >= 0);
    p2p_mailbox_t *mb[3];
    CHECK_OK(p2p_mailbox_create(&mb[0], "wa", 8, 4, NULL));
    CHECK_OK(p2p_mailbox_create(&mb[1], "wb", 8, 4, NULL));
    CHECK_OK(p2p_mailbox_create(&mb[2], "wc", 8, 4, NULL));
    for (int i = 0; i < 3; i++) CHECK_OK(p2p_mailbox_attach(mb[i], w));
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    struct pollfd fds[1] = {{.fd = pfd[0], .events = POLLIN}};
    uint64_t v;

    /* Nothing happens: the deadline passes. */
    uint64_t t0 = p2p_now_ns(), dl = t0 + 30 * P2P_NS_PER_MS;
    CHECK_ERR(p2p_waiter_poll(w, fds, 1, dl), P2P_ETIMEDOUT);
    CHECK(p2p_now_ns() >= dl);
    CHECK(p2p_now_ns() - dl < 5 * P2P_NS_PER_S); /* generous: shared machine */
    CHECK(fds[0].revents == 0);
    CHECK_ERR(p2p_waiter_wait(w, p2p_now_ns()), P2P_ETIMEDOUT);

    /* A push into the second mailbox ends the wait. */
    struct later l = {.mb = mb[1], .fd = -1, .delay_ms = 30, .count = 1};
    run_later(&th, &l);
    CHECK_OK(p2p_waiter_poll(w, fds, 1, p2p_now_ns() + 10 * P2P_NS_PER_S));
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK(p2p_mailbox_ready(mb[1]));
    CHECK(!p2p_mailbox_ready(mb[0]) && !p2p_mailbox_ready(mb[2]));
    CHECK(fds[0].revents == 0);
    CHECK_OK(p2p_mailbox_try_pop(mb[1], &v, sizeof v));
    CHECK(v == 0xabc0);

    /* A byte on the pipe ends the wait, with revents set. */
    l = (struct later){.fd = pfd[1], .delay_ms = 30};
    run_later(&th, &l);
    CHECK_OK(p2p_waiter_poll(w, fds, 1, p2p_now_ns() + 10 * P2P_NS_PER_S));
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK(fds[0].revents & POLLIN);
    char c;
    CHECK(read(pfd[0], &c, 1) == 1 && c == 'x');

    /* An explicit wake from another thread ends the wait. */
    l = (struct later){.fd = -1, .w = w, .delay_ms = 30};
    run_later(&th, &l);
    CHECK_OK(p2p_waiter_poll(w, fds, 1, p2p_now_ns() + 10 * P2P_NS_PER_S));
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK(fds[0].revents == 0);
    /* ... and is consumed by it: the next wait sleeps to its deadline */
    CHECK_ERR(p2p_waiter_poll(w, fds, 1, p2p_now_ns() + 30 * P2P_NS_PER_MS), P2P_ETIMEDOUT);
    /* the same for a wait without fds (a futex sleep) */
    run_later(&th, &l);
    CHECK_OK(p2p_waiter_wait(w, p2p_now_ns() + 10 * P2P_NS_PER_S));
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_ERR(p2p_waiter_wait(w, p2p_now_ns() + 30 * P2P_NS_PER_MS), P2P_ETIMEDOUT);

    /* Wakes are sticky: a wake before the wait makes it return at once,
     * without sleeping; it is consumed. */
    uint64_t sleeps = atomic_load(&w->sleeps);
    p2p_waiter_wake(w);
    CHECK_OK(p2p_waiter_wait(w, p2p_now_ns() + 10 * P2P_NS_PER_S));
    CHECK(atomic_load(&w->sleeps) == sleeps);
    CHECK_ERR(p2p_waiter_wait(w, p2p_now_ns() + 10 * P2P_NS_PER_MS), P2P_ETIMEDOUT);

    /* Pending mail: no sleep at all. */
    v = 5;
    CHECK_OK(p2p_mailbox_try_push(mb[2], &v, sizeof v));
    sleeps = atomic_load(&w->sleeps);
    CHECK_OK(p2p_waiter_wait(w, P2P_DEADLINE_NEVER));
    CHECK(atomic_load(&w->sleeps) == sleeps);
    CHECK_OK(p2p_mailbox_try_pop(mb[2], &v, sizeof v));

    /* Busy consumer (no sleep announced): pushes make no syscall. */
    uint64_t wakes = atomic_load(&w->wakes);
    l = (struct later){.mb = mb[0], .fd = -1, .count = 4};
    run_later(&th, &l);
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK(atomic_load(&w->wakes) == wakes);
    CHECK(p2p_mailbox_pop_batch(mb[0], (uint64_t[4]){0}, 4 * sizeof(uint64_t)) == 4);

    /* Announced sleep: four pushes make exactly one eventfd write. */
    CHECK(p2p_waiter_prepare(w));
    l = (struct later){.mb = mb[0], .fd = -1, .count = 4};
    run_later(&th, &l);
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK(atomic_load(&w->wakes) == wakes + 1);
    struct pollfd efd = {.fd = p2p_waiter_fd(w), .events = POLLIN};
    CHECK(poll(&efd, 1, 0) == 1);
    p2p_waiter_done(w);
    CHECK(poll(&efd, 1, 0) == 0); /* drained */
    CHECK(p2p_mailbox_pop_batch(mb[0], (uint64_t[4]){0}, 4 * sizeof(uint64_t)) == 4);

    /* External epoll loop: the waiter fd and the pipe in one epoll set. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p2p_waiter_fd(w), &ev) == 0);
    ev.data.u32 = 2;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev) == 0);
    l = (struct later){.mb = mb[2], .fd = -1, .delay_ms = 20, .count = 1};
    run_later(&th, &l);
    struct epoll_event out[2];
    int n = 0;
    CHECK(p2p_waiter_prepare(w));
    n = epoll_wait(ep, out, 2, 10000);
    p2p_waiter_done(w);
    CHECK(n == 1 && out[0].data.u32 == 1);
    CHECK_OK(p2p_thread_join(&th, NULL));
    CHECK_OK(p2p_mailbox_try_pop(mb[2], &v, sizeof v));
    /* prepare refuses to sleep while mail is pending */
    CHECK_OK(p2p_mailbox_try_push(mb[1], &v, sizeof v));
    CHECK(!p2p_waiter_prepare(w));
    p2p_waiter_done(w);
    CHECK_OK(p2p_mailbox_try_pop(mb[1], &v, sizeof v));
    close(ep);

    /* Closing an attached mailbox wakes its consumer. */
    CHECK(p2p_waiter_prepare(w));
    p2p_mailbox_close(mb[2]);
    CHECK(poll(&efd, 1, 0) == 1);
    p2p_waiter_done(w);
    CHECK_OK(p2p_waiter_wait(w, p2p_now_ns() + 10 * P2P_NS_PER_S)); /* the sticky wake */

    /* A detached mailbox no longer ends a wait; attach works again. */
    p2p_mailbox_detach(mb[0]);
    p2p_mailbox_detach(mb[0]);
    CHECK(w->nmb == 2);
    v = 9;
    CHECK_OK(p2p_mailbox_try_push(mb[0], &v, sizeof v));
    CHECK_ERR(p2p_waiter_wait(w, p2p_now_ns() + 20 * P2P_NS_PER_MS), P2P_ETIMEDOUT);
    CHECK_OK(p2p_mailbox_attach(mb[0], w));
    CHECK(w->nmb == 3);
    CHECK_OK(p2p_waiter_wait(w, p2p_now_ns() + 10 * P2P_NS_PER_S));
    CHECK_OK(p2p_mailbox_try_pop(mb[0], &v, sizeof v));

    /* Too many fds is an argument error, not a crash. */
    struct pollfd many[65];
    CHECK_ERR(p2p_waiter_poll(w, many, 65, 0), P2P_EINVAL);

    test_spin(&me, mb[0], pfd[0], pfd[1]);
    close(pfd[0]);
    close(pfd[1]);
    for (int i = 0; i < 3; i++) p2p_mailbox_destroy(mb[i]);
    p2p_thread_unadopt(&me);
    test_signal_mode();
    test_signal_queue_full();
    return tu_done("wait");
}
