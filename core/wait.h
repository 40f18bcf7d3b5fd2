/*
 * core/wait.h: the one wait object of a thread (Go's `select`).
 *
 * A thread owns one p2p_waiter_t.  The mailboxes it consumes are attached
 * to it (p2p_mailbox_attach), and it sleeps on all of them plus its own file
 * descriptors at once: either through p2p_waiter_wait / p2p_waiter_poll, or
 * by putting p2p_waiter_fd() (an eventfd) into its own epoll set.
 *
 * Protocol (liburcu workqueue style, no lost wake-ups):
 *   consumer                               producer (mailbox push / wake)
 *   sleeping = 1          (seq_cst store)  claim a position (seq_cst CAS),
 *                                          publish (release); or
 *                                          notified = 1 (seq_cst store)
 *   check mailboxes' claims, notified      if sleeping (seq_cst load) and
 *                              (seq_cst)     exchange(sleeping, 0) == 1:
 *   if nothing: sleep in poll(eventfd)           write(eventfd)
 *   sleeping = 0, drain eventfd
 * Both sides write then load, which needs a full barrier on both sides
 * (liburcu uses seq_cst fences; here the four accesses are seq_cst
 * operations, which is the same guarantee and is what TSan can check):
 * either the producer sees sleeping == 1 (and writes the eventfd) or the
 * consumer sees the claim (and does not sleep on it: a claim whose
 * message is not visible yet bounds the sleep, see
 * P2P_WAITER_INFLIGHT_NS).  Only the first producer after the
 * consumer announced its sleep makes the system call (the exchange), so a
 * busy consumer costs its producers no syscall at all and an idle one
 * costs one per empty-to-non-empty edge.
 *
 * p2p_waiter_wait (nothing to poll) announces its sleep as a different
 * value of `sleeping` and sleeps in futex_wait on that word; the waker whose
 * exchange claims such a sleep calls FUTEX_WAKE instead of writing the
 * eventfd or sending the signal (one cheap syscall on each side, no
 * descriptor or signal frame).
 *
 * Wake-ups may be spurious: after any return the thread drains all its
 * mailboxes (bounded per wake-up) and loops.
 *
 * Wait policy: sleep at once (the default: peer threads, 10,000 of them,
 * never spin), or, for threads that opt in (p2p_waiter_set_spin, or
 * P2P_THREAD_SPIN_WAIT at spawn: the run loop, discovery, the UDP reader,
 * the listener and the dialer), a bounded adaptive spin before the sleep.
 * The spin polls the attached mailboxes, the notified flag and (every
 * P2P_WAITER_SPIN_FD_POLL_NS) the caller's fds without announcing a
 * sleep, so producers make no system call and the owner sees the message
 * within a cache-line transfer instead of a wake-up of a sleeping (on a
 * KVM guest: halted) CPU, 80-90 us on this machine's idle vCPUs.  The
 * window adapts per waiter (like the guest's haltpoll governor): it
 * starts at the configured maximum, halves after every spin that found
 * nothing, and returns to the maximum once it has decayed to zero and a
 * sleep was ended by a waker (or an fd) within 4x the maximum of the
 * wait's start, i.e. when spinning would have helped.  If the first spin
 * after such a return fails again, the next return needs twice as many
 * quick wake-ups in a row (up to 64): on oversubscribed CPUs, where spins
 * fail because the thread we wait for cannot run, spinning backs off
 * exponentially.  A spin that notices it was preempted
 * (a gap of P2P_WAITER_SPIN_PREEMPT_NS between two of its clock reads:
 * more runnable threads than CPUs) stops and sleeps, since it would only
 * take CPU from the thread it waits for.  An idle thread's windows decay to zero
 * after a few empty waits, so an idle node spins for at most about twice
 * the window after its last activity and then only sleeps.  The sleep
 * itself, the sleep flag and the empty-to-non-empty rule are the same in
 * both policies.
 *
 * Threads: p2p_waiter_wake may be called from any thread; everything else
 * only by the owning (consumer) thread.  Deadlines are absolute
 * CLOCK_MONOTONIC nanoseconds (p2p_now_ns), P2P_DEADLINE_NEVER for none.
 */
#ifndef P2P_CORE_WAIT_H
#define P2P_CORE_WAIT_H

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

struct p2p_mailbox;

/* Mailboxes one waiter can check by itself in p2p_waiter_wait. */
#define P2P_WAITER_MAILBOXES 16

typedef struct p2p_waiter {
    int efd; /* eventfd (non-blocking, close-on-exec); -1 in signal mode */
    /* Signal mode: the owner's kernel thread id and pid, stored by the
     * owner before its first sleep announcement (published by that
     * seq_cst store of `sleeping`), and its signal mask with
     * P2P_WAITER_SIGNAL unblocked (for ppoll). */
    int tid, pid;
    sigset_t wmask;
    /* Set by the consumer before it sleeps (1: in poll, 2: in futex_wait
     * on this word); cleared by the consumer on wake or by the first waking
     * producer (exchange).  seq_cst on both sides
     * (see the protocol above). */
    _Atomic int sleeping;
    /* Sticky explicit wake (p2p_waiter_wake): consumed by the
     * p2p_waiter_poll or p2p_waiter_wait it ends; otherwise (none in
     * progress, or an own epoll loop's prepare/done) by the next prepare,
     * spin or wait.
     * seq_cst store by the waker and exchange by the owner (the same
     * Dekker pair as sleeping); a relaxed load only as a pre-check. */
    _Atomic int notified;
    /* Spin policy (owner only): configured maximum and current window,
     * nanoseconds; 0 = sleep at once. */
    uint32_t spin_max, spin_win;
    uint16_t spin_need, spin_quick; /* backoff: see wait.c spin_missed */
    bool spin_fresh;
    /* When the waker that claimed the last announced sleep kicked it
     * (relaxed; a hint for the spin window's adaptation). */
    _Atomic uint64_t kick_ns;
    unsigned nmb;                                 /* owner only */
    struct p2p_mailbox *mb[P2P_WAITER_MAILBOXES]; /* owner only */
    /* Statistics (relaxed counters). */
    _Atomic uint64_t sleeps;      /* times the owner really blocked */
    _Atomic uint64_t wakes;       /* wake syscalls by wakers (eventfd, signal, futex) */
    _Atomic uint64_t spin_hits;   /* spins that found work (no sleep) */
    _Atomic uint64_t spin_misses; /* spins that found nothing (then slept) */
    _Atomic uint64_t inflight;    /* sleeps bounded by a message in flight */
} p2p_waiter_t;

/* Creates the eventfd.  Returns 0 or P2P_ESYS. */
P2P_MUST_CHECK int p2p_waiter_init(p2p_waiter_t *w);
/* Signal mode: no descriptor.  A waker sends P2P_WAITER_SIGNAL to the
 * owner thread (tgkill) instead of writing an eventfd; the owner keeps the
 * signal blocked except inside its ppoll, so a wake-up that arrives before
 * the sleep is pending and ends it at once (no lost wake-up).  For threads
 * that sleep only through p2p_waiter_wait/p2p_waiter_poll (not their own
 * epoll: p2p_waiter_fd is -1): a thread per peer then costs one
 * descriptor, its socket.  Installs the (empty, SA_RESTART) handler of
 * P2P_WAITER_SIGNAL once per process.  Returns 0 or P2P_ESYS.
 *
 * The signal is a standard one, SIGURG, not a real-time one: the kernel
 * always marks a standard signal pending (a second one while it is pending
 * merges with it), while tgkill of a real-time signal fails with EAGAIN
 * once the user's queue of pending signals is full (RLIMIT_SIGPENDING),
 * which would lose the wake-up.  SIGURG is ignored by default, is raised
 * by the kernel only for sockets given an owner (F_SETOWN, which nothing
 * here does), and gdb passes it on without stopping or printing. */
#define P2P_WAITER_SIGNAL SIGURG
P2P_MUST_CHECK int p2p_waiter_init_signal(p2p_waiter_t *w);

/* Owner: sets the wait policy.  max_ns 0 (the default after init): sleep
 * at once.  Otherwise spin up to max_ns (at most P2P_WAITER_SPIN_MAX_NS)
 * before each sleep, adapted as described above; the window starts at
 * max_ns.  Only for a few threads that exchange messages at a high rate
 * (never per-peer threads): a spinning thread holds its CPU for up to
 * max_ns after its last activity. */
#define P2P_WAITER_SPIN_DEFAULT_NS (50u * 1000)
#define P2P_WAITER_SPIN_MAX_NS (1000u * 1000)
#define P2P_WAITER_SPIN_FD_POLL_NS (5u * 1000)
#define P2P_WAITER_SPIN_PREEMPT_NS (20u * 1000)
#define P2P_WAITER_SPIN_BACKOFF_MAX 64
#define P2P_WAITER_SPIN_QUICK 4
void p2p_waiter_set_spin(p2p_waiter_t *w, uint32_t max_ns);

/* A message in flight: a producer has claimed a mailbox position but its
 * publish is not visible yet when the owner is about to sleep (see
 * core/mailbox.c).  Its producer normally wakes the owner; the owner
 * polls the cell up to P2P_WAITER_INFLIGHT_POLLS times first, and then
 * sleeps at most P2P_WAITER_INFLIGHT_NS, the bound for the case where the
 * producer checked the sleeping flag before the owner set it. */
#define P2P_WAITER_INFLIGHT_POLLS 64
#define P2P_WAITER_INFLIGHT_NS (1000u * 1000)

/* Closes the eventfd.  No other thread may still use w. */
void p2p_waiter_destroy(p2p_waiter_t *w);

/* The fd to put into the owner's poll/epoll set (readable = woken).  After
 * such an external poll returns, call p2p_waiter_done(). */
static inline int p2p_waiter_fd(const p2p_waiter_t *w)
{
    return w->efd;
}

/* Any thread: makes the owner's current or next wait return (sticky, like
 * a one-slot channel).  Used for quit and for non-mailbox events. */
void p2p_waiter_wake(p2p_waiter_t *w);

/* Owner: sleeps until an attached mailbox is non-empty, p2p_waiter_wake was
 * called, or the deadline passes.  Returns 0 (there may be work; spurious
 * returns are possible) or P2P_ETIMEDOUT.  Never sleeps if work is already
 * pending. */
int p2p_waiter_wait(p2p_waiter_t *w, uint64_t deadline_ns);

/* As p2p_waiter_wait, and also returns when one of fds[0..nfds) is ready
 * (its revents is set; revents are cleared on entry).  nfds is at most
 * P2P_WAITER_POLL_MAX (threads with more sockets use their own epoll and
 * prepare/done below).  Returns 0, P2P_ETIMEDOUT, P2P_EINVAL (too many fds)
 * or P2P_ESYS (poll failed; errno set). */
#define P2P_WAITER_POLL_MAX 64
int p2p_waiter_poll(p2p_waiter_t *w, struct pollfd *fds, unsigned nfds, uint64_t deadline_ns);

/* Low-level protocol for owners that run their own epoll loop:
 *   if (p2p_waiter_prepare(w)) { epoll_wait(..., including p2p_waiter_fd(w)); }
 *   p2p_waiter_done(w);
 *   drain mailboxes and sockets;
 * prepare announces the sleep, then checks the attached mailboxes and the
 * notified flag: it returns true if the caller may sleep, false if work is
 * pending or a message is in flight (see P2P_WAITER_INFLIGHT_NS; the
 * caller then must not block but still calls done, and checks again).
 * The caller must also check its own conditions (sockets it polls anyway,
 * quit flag) after prepare. */
bool p2p_waiter_prepare(p2p_waiter_t *w);
void p2p_waiter_done(p2p_waiter_t *w);

/* Internal, for mailbox.c: wakes the owner if it announced a sleep.  The
 * caller has claimed its message's position with a seq_cst CAS (or stored
 * notified seq_cst) before. */
void p2p__waiter_kick(p2p_waiter_t *w);
/* Internal, for mailbox.c: registers mb so the waiter checks it before
 * sleeping.  Returns 0 or P2P_EFULL (more than P2P_WAITER_MAILBOXES). */
int p2p__waiter_add(p2p_waiter_t *w, struct p2p_mailbox *mb);

/* Internal, for mailbox.c: unregisters mb (no-op if absent). */
void p2p__waiter_remove(p2p_waiter_t *w, struct p2p_mailbox *mb);

#endif
