/*
 * core/wait.c: the per-thread waiter (see wait.h for the protocol).
 *
 * The eventfd is the only kernel object: an explicit wake or a push to an
 * attached mailbox writes it at most once per announced sleep; the owner
 * drains it after waking.  Owner-only functions run on the thread that
 * owns the waiter; p2p_waiter_wake and p2p__waiter_kick on any thread.
 */
#include "core/wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"

#include <linux/futex.h>

/* Values of `sleeping`: awake, asleep in poll (eventfd or signal wake),
 * asleep in futex_wait on the word (futex wake). */
enum { SLEEP_NONE = 0, SLEEP_POLL = 1, SLEEP_FUTEX = 2 };

/* The state both kinds of waiter start from (no spin, no sleeper, zero
 * counters, no mailbox). */
static void waiter_init_common(p2p_waiter_t *w)
{
    /* relaxed: the waiter is published by whatever hands it to others */
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
    atomic_store_explicit(&w->notified, 0, memory_order_relaxed);
    atomic_store_explicit(&w->sleeps, 0, memory_order_relaxed);
    atomic_store_explicit(&w->wakes, 0, memory_order_relaxed);
    w->spin_max = w->spin_win = 0;
    w->spin_need = 1;
    w->spin_quick = 0;
    w->spin_fresh = false;
    atomic_store_explicit(&w->kick_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&w->spin_hits, 0, memory_order_relaxed);
    atomic_store_explicit(&w->spin_misses, 0, memory_order_relaxed);
    atomic_store_explicit(&w->inflight, 0, memory_order_relaxed);
    w->nmb = 0;
}

void p2p_waiter_set_spin(p2p_waiter_t *w, uint32_t max_ns)
{
    if (max_ns > P2P_WAITER_SPIN_MAX_NS) max_ns = P2P_WAITER_SPIN_MAX_NS;
    w->spin_max = w->spin_win = max_ns;
    w->spin_need = 1;
    w->spin_quick = 0;
    w->spin_fresh = true;
}

int p2p_waiter_init(p2p_waiter_t *w)
{
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) return P2P_ESYS;
    waiter_init_common(w);
    return 0;
}

static void on_wake_signal(int sig)
{
    (void)sig;
}

static int handler_rc;
static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    handler_rc = sigaction(P2P_WAITER_SIGNAL, &sa, NULL);
}

int p2p_waiter_init_signal(p2p_waiter_t *w)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_handler);
    if (handler_rc != 0) return P2P_ESYS;
    w->efd = -1;
    w->tid = w->pid = 0;
    waiter_init_common(w);
    return 0;
}

/* Signal mode, owner, before its first sleep announcement: blocks the
 * signal in this thread and records where wakers send it. */
static void bind_owner(p2p_waiter_t *w)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, P2P_WAITER_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &block, &w->wmask);
    sigdelset(&w->wmask, P2P_WAITER_SIGNAL);
    w->pid = getpid();
    w->tid = (int)syscall(SYS_gettid);
}

void p2p_waiter_destroy(p2p_waiter_t *w)
{
    if (w->efd >= 0) close(w->efd);
    w->efd = -1;
    w->nmb = 0;
}

int p2p__waiter_add(p2p_waiter_t *w, struct p2p_mailbox *mb)
{
    if (w->nmb >= P2P_WAITER_MAILBOXES) return P2P_EFULL;
    w->mb[w->nmb++] = mb;
    return 0;
}

void p2p__waiter_remove(p2p_waiter_t *w, struct p2p_mailbox *mb)
{
    for (unsigned i = 0; i < w->nmb; i++) {
        if (w->mb[i] == mb) {
            w->mb[i] = w->mb[--w->nmb];
            return;
        }
    }
}

void p2p__waiter_kick(p2p_waiter_t *w)
{
    /* seq_cst load: ordered after the caller's seq_cst claim (mailbox
     * position) or store (notified); pairs with the owner's seq_cst store
     * in prepare.
     * A plain load first: the common case (owner busy) costs no RMW. */
    if (!atomic_load_explicit(&w->sleeping, memory_order_seq_cst)) return;
    /* acq_rel exchange: exactly one waker claims the sleep and writes the
     * eventfd */
    int v = atomic_exchange_explicit(&w->sleeping, SLEEP_NONE, memory_order_acq_rel);
    if (v) {
        uint64_t one = 1;
        /* relaxed: statistics, and a hint for the owner's spin window
         * (read after its sleep; a stale value only mis-sizes a window) */
        atomic_fetch_add_explicit(&w->wakes, 1, memory_order_relaxed);
        atomic_store_explicit(&w->kick_ns, p2p_now_ns(), memory_order_relaxed);
        if (v == SLEEP_FUTEX) {
            /* the owner waits on the word itself (p2p_waiter_wait): a wake
             * that lands before its futex_wait finds the word changed */
            (void)syscall(SYS_futex, &w->sleeping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
            return;
        }
        if (w->efd < 0) {
            /* signal mode: tid/pid were stored before the owner's seq_cst
             * store of sleeping that our exchange read from.  A wake-up
             * that lands outside the owner's ppoll stays pending (blocked)
             * and ends its next sleep at once. */
            (void)syscall(SYS_tgkill, w->pid, w->tid, P2P_WAITER_SIGNAL);
            return;
        }
        /* The only failure is EAGAIN at counter overflow, which means the
         * eventfd is readable anyway. */
        ssize_t r = write(w->efd, &one, sizeof one);
        (void)r;
    }
}

void p2p_waiter_wake(p2p_waiter_t *w)
{
    /* seq_cst store, then kick's seq_cst load of sleeping: pairs with
     * prepare (seq_cst store of sleeping, then seq_cst exchange of
     * notified); release part: the owner sees what we wrote before */
    atomic_store_explicit(&w->notified, 1, memory_order_seq_cst);
    p2p__waiter_kick(w);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* prepare with the kind of sleep announced: SLEEP_POLL (a waker writes
 * the eventfd or sends the signal) or SLEEP_FUTEX (it wakes the futex on
 * `sleeping`).  *until: when the sleep must end, deadline_ns or, if a
 * message was still in flight after polling its cell, at most
 * P2P_WAITER_INFLIGHT_NS from now (see wait.h). */
static bool prepare_as(p2p_waiter_t *w, int how, uint64_t deadline_ns, uint64_t *until)
{
    *until = deadline_ns;
    if (w->efd < 0 && w->tid == 0) bind_owner(w);
    /* seq_cst store: announces the sleep before the seq_cst accesses below
     * (notified, the mailboxes' claims); pairs with the producers' seq_cst
     * claim or store + seq_cst load of sleeping (mailbox push,
     * p2p_waiter_wake) */
    atomic_store_explicit(&w->sleeping, how, memory_order_seq_cst);
    /* seq_cst exchange: consumes an explicit wake (see above) and sees
     * what the waker wrote before it */
    if (atomic_exchange_explicit(&w->notified, 0, memory_order_seq_cst)) return false;
    p2p_mailbox_t *fly = NULL;
    for (unsigned i = 0; i < w->nmb; i++) {
        int st = p2p__mailbox_idle(w->mb[i]);
        if (st == P2P__MB_READY) return false;
        if (st == P2P__MB_INFLIGHT) fly = w->mb[i];
    }
    if (!fly) return true;
    /* A producer between its claim and a visible publish: most often its
     * store is about to land; otherwise (preempted before it) it will see
     * our flag and wake us. */
    for (unsigned k = 0; k < P2P_WAITER_INFLIGHT_POLLS; k++) {
        cpu_relax();
        if (p2p_mailbox_ready(fly)) return false;
    }
    /* relaxed: statistics */
    atomic_fetch_add_explicit(&w->inflight, 1, memory_order_relaxed);
    uint64_t cap = p2p_now_ns() + P2P_WAITER_INFLIGHT_NS;
    if (cap < deadline_ns) *until = cap;
    return true;
}

bool p2p_waiter_prepare(p2p_waiter_t *w)
{
    uint64_t until;
    return prepare_as(w, SLEEP_POLL, P2P_DEADLINE_NEVER, &until) && until == P2P_DEADLINE_NEVER;
}

void p2p_waiter_done(p2p_waiter_t *w)
{
    /* relaxed: the owner's own flag; a waker that still sees 1 only makes
     * a spurious eventfd write, drained at the next done */
    atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
    if (w->efd < 0) return; /* signal mode: a pending signal ends the next sleep early */
    uint64_t v;
    /* Drain the eventfd (non-blocking): later wakes start from zero. */
    ssize_t r = read(w->efd, &v, sizeof v);
    (void)r;
}

/* As p2p_waiter_done, without the read(2) when it cannot find anything:
 * the eventfd is drained only if poll saw it readable or a waker claimed
 * this sleep (it has written, or is about to write, the eventfd).  A claim
 * whose write lands after the drain leaves the eventfd readable: the next
 * poll returns at once, sees it readable and drains it (one spurious
 * wake-up, as in p2p_waiter_done). */
static bool waiter_done_polled(p2p_waiter_t *w, bool efd_readable)
{
    /* acq_rel exchange: 0 means a waker's exchange (acq_rel) claimed the
     * sleep first and will write the eventfd */
    bool claimed = atomic_exchange_explicit(&w->sleeping, 0, memory_order_acq_rel) == 0;
    if (w->efd >= 0 && (claimed || efd_readable)) {
        uint64_t v;
        ssize_t r = read(w->efd, &v, sizeof v);
        (void)r;
    }
    return claimed;
}

/* Consumes a pending explicit wake; true if there was one.  The spin
 * polls with it, and the end of a sleep (wait_ended) takes the wake that
 * ended it (or landed during it), as prepare takes one that came before,
 * so it does not also end the next wait at once (callers re-check their
 * state after every return). */
static bool consume_wake(p2p_waiter_t *w)
{
    /* relaxed load first (no RMW in the common case); the seq_cst exchange
     * pairs with the waker's seq_cst store and sees what it wrote before */
    return atomic_load_explicit(&w->notified, memory_order_relaxed) &&
           atomic_exchange_explicit(&w->notified, 0, memory_order_seq_cst);
}

/* The spin of the spin policy (see wait.h): polls for work until `until`
 * without announcing a sleep.  Returns true if there is work: an explicit
 * wake (consumed, as prepare would), a ready mailbox, or a ready fd
 * (revents set by poll). */
static bool waiter_spin(p2p_waiter_t *w, struct pollfd *fds, unsigned nfds, uint64_t until)
{
    uint64_t last = p2p_now_ns(), fd_poll_at = last + P2P_WAITER_SPIN_FD_POLL_NS;
    for (unsigned i = 1;; i++) {
        if (consume_wake(w)) return true;
        for (unsigned k = 0; k < w->nmb; k++)
            if (p2p_mailbox_ready(w->mb[k])) return true;
        cpu_relax();
        if (i % 16) continue;
        uint64_t now = p2p_now_ns();
        /* 16 polls take well under a microsecond; a longer gap means this
         * thread was preempted: the CPUs are oversubscribed, and spinning
         * only takes CPU from the thread we wait for.  Sleep instead. */
        if (now - last > P2P_WAITER_SPIN_PREEMPT_NS) return false;
        last = now;
        if (nfds && now >= fd_poll_at) {
            if (poll(fds, nfds, 0) > 0) return true;
            fd_poll_at = now + P2P_WAITER_SPIN_FD_POLL_NS;
        }
        if (now >= until) return false;
    }
}

/* The spin window's adaptation (see wait.h).  A spin that found nothing
 * halves the window; if it was the first spin after the window came back,
 * the window stays away twice as long next time (spin_need: the quick
 * wake-ups needed to bring it back, 1..P2P_WAITER_SPIN_BACKOFF_MAX), so on
 * oversubscribed CPUs, where spins keep failing because the thread we wait
 * for cannot run, spinning backs off exponentially.  A spin that found
 * work resets the backoff. */
static void spin_missed(p2p_waiter_t *w)
{
    w->spin_win /= 2;
    if (w->spin_win < 1000) w->spin_win = 0;
    if (w->spin_fresh && w->spin_need < P2P_WAITER_SPIN_BACKOFF_MAX) w->spin_need *= 2;
    w->spin_fresh = false;
}

/* After a sleep that began (spin included) at start and ended with work:
 * a wake within P2P_WAITER_SPIN_QUICK x the maximum window counts as
 * quick (a spin would have caught it, or would have if the other side had
 * been spinning too: when both sides of an exchange sleep, each sees the
 * other's wake-up latency, 80-100 us on an idle KVM guest, before its
 * message comes; the time is the claiming waker's kick, not our return,
 * which adds our own wake-up latency; an fd has only the return time).  Enough quick wakes in a row
 * bring a decayed window back to the maximum. */
static void spin_woken(p2p_waiter_t *w, uint64_t start, bool claimed)
{
    uint64_t now = p2p_now_ns();
    uint64_t t = now - start;
    if (claimed) {
        /* relaxed: a hint (see p2p__waiter_kick) */
        uint64_t k = atomic_load_explicit(&w->kick_ns, memory_order_relaxed);
        if (k >= start && k <= now) t = k - start;
    }
    if (t > P2P_WAITER_SPIN_QUICK * (uint64_t)w->spin_max) {
        w->spin_quick = 0;
        return;
    }
    if (w->spin_win || ++w->spin_quick < w->spin_need) return;
    w->spin_win = w->spin_max;
    w->spin_quick = 0;
    w->spin_fresh = true;
}

/* The time left until deadline_ns as a relative timeout in **tsp, or
 * *tsp = NULL for P2P_DEADLINE_NEVER; false once the deadline has passed. */
static bool time_left(struct timespec **tsp, uint64_t deadline_ns)
{
    if (deadline_ns == P2P_DEADLINE_NEVER) {
        *tsp = NULL;
        return true;
    }
    uint64_t now = p2p_now_ns();
    if (now >= deadline_ns) return false;
    uint64_t d = deadline_ns - now;
    (*tsp)->tv_sec = (time_t)(d / P2P_NS_PER_S);
    (*tsp)->tv_nsec = (long)(d % P2P_NS_PER_S);
    return true;
}

/* The end of a sleep (futex or poll) that returned rc: takes the wake,
 * adapts the spin window and turns a timeout into 0 when work landed right
 * at the deadline.  claimed: a waker ended the sleep. */
static int wait_ended(p2p_waiter_t *w, int rc, uint64_t start, bool claimed)
{
    if (consume_wake(w) && rc == P2P_ETIMEDOUT) rc = 0; /* woken right at the deadline */
    if (w->spin_max && rc == 0) spin_woken(w, start, claimed);
    if (rc == P2P_ETIMEDOUT) {
        /* A push may have landed right at the deadline: report work. */
        for (unsigned i = 0; i < w->nmb; i++)
            if (p2p_mailbox_ready(w->mb[i])) return 0;
    }
    return rc;
}

/* Nothing to poll (p2p_waiter_wait): sleeps on the `sleeping` word itself
 * (a futex), which a waker's exchange clears before its FUTEX_WAKE;
 * cheaper for both sides than an eventfd write + ppoll or a signal.  A
 * wake claimed after the owner stopped waiting may end its next futex
 * sleep early: a spurious return.  start: when the wait (spin) began. */
static int wait_futex(p2p_waiter_t *w, uint64_t deadline_ns, uint64_t start)
{
    int rc = 0;
    uint64_t until;
    if (!prepare_as(w, SLEEP_FUTEX, deadline_ns, &until)) {
        /* acq_rel exchange: as below; nothing to drain in this mode */
        (void)atomic_exchange_explicit(&w->sleeping, SLEEP_NONE, memory_order_acq_rel);
        if (w->spin_max) spin_woken(w, start, false); /* work came right after */
        return 0;
    }
    /* acquire: a waker's exchange (acq_rel) that cleared the word makes
     * what it published before visible */
    while (atomic_load_explicit(&w->sleeping, memory_order_acquire) == SLEEP_FUTEX) {
        struct timespec ts, *tsp = &ts;
        if (!time_left(&tsp, until)) {
            /* the in-flight bound ends the sleep as a spurious return */
            rc = until == deadline_ns ? P2P_ETIMEDOUT : 0;
            break;
        }
        /* relaxed: statistics */
        atomic_fetch_add_explicit(&w->sleeps, 1, memory_order_relaxed);
        long r = syscall(SYS_futex, &w->sleeping, FUTEX_WAIT_PRIVATE, SLEEP_FUTEX, tsp, NULL, 0);
        if (r < 0 && errno != EINTR && errno != EAGAIN && errno != ETIMEDOUT) {
            rc = P2P_ESYS;
            break;
        }
    }
    /* acq_rel exchange: ends the sleep; 0 means a waker claimed it (its
     * futex wake at worst ends a later sleep early) */
    bool claimed =
        atomic_exchange_explicit(&w->sleeping, SLEEP_NONE, memory_order_acq_rel) == SLEEP_NONE;
    return wait_ended(w, rc, start, claimed);
}

int p2p_waiter_poll(p2p_waiter_t *w, struct pollfd *fds, unsigned nfds, uint64_t deadline_ns)
{
    struct pollfd pf[P2P_WAITER_POLL_MAX + 1];
    if (nfds > P2P_WAITER_POLL_MAX) return P2P_EINVAL;
    for (unsigned i = 0; i < nfds; i++) fds[i].revents = 0;
    uint64_t start = 0;
    if (w->spin_max) {
        start = p2p_now_ns();
        if (w->spin_win) {
            uint64_t until = start + w->spin_win;
            if (waiter_spin(w, fds, nfds, until < deadline_ns ? until : deadline_ns)) {
                /* relaxed: statistics */
                atomic_fetch_add_explicit(&w->spin_hits, 1, memory_order_relaxed);
                w->spin_need = 1;
                w->spin_fresh = false;
                return 0;
            }
            /* relaxed: statistics */
            atomic_fetch_add_explicit(&w->spin_misses, 1, memory_order_relaxed);
            spin_missed(w);
        }
    }
    if (nfds == 0) return wait_futex(w, deadline_ns, start);
    uint64_t until;
    if (!prepare_as(w, SLEEP_POLL, deadline_ns, &until)) {
        waiter_done_polled(w, false);
        if (w->spin_max) spin_woken(w, start, false); /* work came right after */
        return 0;
    }
    bool sig = w->efd < 0;
    pf[0].fd = w->efd; /* signal mode: not polled (pf + 1 below) */
    pf[0].events = POLLIN;
    pf[0].revents = 0;
    for (unsigned i = 0; i < nfds; i++) pf[i + 1] = fds[i];
    int rc = 0;
    for (;;) {
        struct timespec ts, *tsp = &ts;
        if (!time_left(&tsp, until)) {
            /* the in-flight bound ends the sleep as a spurious return */
            rc = until == deadline_ns ? P2P_ETIMEDOUT : 0;
            break;
        }
        /* relaxed: statistics */
        atomic_fetch_add_explicit(&w->sleeps, 1, memory_order_relaxed);
        int n = sig ? ppoll(pf + 1, nfds, tsp, &w->wmask) : ppoll(pf, nfds + 1, tsp, NULL);
        if (n > 0) break;
        if (n < 0 && errno != EINTR) {
            rc = P2P_ESYS;
            break;
        }
        if (n < 0 && sig) break; /* woken (or another signal: a spurious return) */
        /* n == 0: the timeout elapsed (re-checked above); EINTR: retry */
    }
    for (unsigned i = 0; i < nfds; i++) fds[i].revents = pf[i + 1].revents;
    bool claimed = waiter_done_polled(w, !sig && (pf[0].revents & POLLIN) != 0);
    return wait_ended(w, rc, start, claimed);
}

int p2p_waiter_wait(p2p_waiter_t *w, uint64_t deadline_ns)
{
    return p2p_waiter_poll(w, NULL, 0, deadline_ns);
}
