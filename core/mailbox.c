/*
 * core/mailbox.c: the bounded MPSC mailbox (see mailbox.h for the contract).
 *
 * Ring (Vyukov's bounded queue, specialised to one consumer):
 *   cell i holds `seq` and the message bytes.  Initially seq = i.
 *   Producer at position p (claimed from enqueue_pos by CAS) may write the
 *   cell when seq == p; after copying it stores seq = p + 1 (release).
 *   The consumer at position c may read the cell when seq == c + 1; after
 *   copying it stores seq = c + capacity (release), freeing it for lap+1.
 *   seq < p for a producer means the cell still holds the message of the
 *   previous lap: the ring is full.
 * Producers never wait for each other except inside the CAS; a producer
 * preempted between its CAS and its publish delays the consumer (which
 * finds that cell unpublished) but loses nothing: it wakes the consumer
 * after its publish (below).
 *
 * Consumer wake-up (Dekker pair with the waiter's sleep flag, wait.h): the
 * producer claims its position with a seq_cst CAS and, after its publish
 * (a release store), loads `sleeping` seq_cst; the consumer stores
 * `sleeping` seq_cst and then loads enqueue_pos seq_cst (p2p__mailbox_idle).
 * All four are in the single seq_cst order, so either the producer sees the
 * sleep and wakes the consumer, or the consumer sees the claim and does not
 * sleep on it.  The claim, not the publish, is the producer's half: the CAS
 * is a locked instruction on x86 anyway, so the publish needs no second
 * one (a seq_cst store is an xchg, which waited for the cell's line: the
 * largest single cost of a push).  The price is one state the consumer
 * must handle: claimed but not yet visible as published.  If the
 * producer's load of `sleeping` came after the consumer's store, the
 * producer wakes it; if before, the publish is already executed and only
 * becoming visible.  The consumer cannot tell which, so it never sleeps
 * on such a cell without a bound: it polls the cell briefly, then sleeps
 * at most P2P_WAITER_INFLIGHT_NS (wait.c).  No message is lost and none
 * waits unboundedly; ordering stays in the seq_cst operations (GCC's TSan
 * does not model standalone fences).
 *
 * Blocked senders (p2p_mailbox_push on a full ring) sleep on the futex word
 * space_seq after incrementing `blocked` (acq_rel RMW).  The consumer, after
 * freeing cells, reads `blocked` with an acq_rel RMW (fetch_add 0) and, if
 * non-zero and the ring has drained to half its capacity (low watermark,
 * like a socket's write-space wake-up: one wake-up per half ring instead
 * of one per batch, which on a loaded machine is what keeps backpressure
 * from turning into a context switch per batch), bumps space_seq and wakes
 * them all.  The two RMWs on `blocked` are
 * ordered in its modification order: either the consumer's comes later and
 * sees the sender, or the sender's reads from it and so sees the freed
 * cells (release/acquire).  No lost wake-up, no fence.
 *
 * Close (the drain after it is exact): close sets CLOSED_POS in
 * enqueue_pos with one RMW before it stores `closed`.  enqueue_pos has a
 * single modification order, so every claim is either before that RMW
 * (the push will publish its message) or fails its CAS and sees the bit
 * (the push returns P2P_ECLOSED).  After close the claimed positions are
 * final, and a pop that finds the cell at a claimed position still
 * unpublished waits for its producer (which is between its CAS and its
 * publish: a copy, no lock, no system call) instead of reporting empty.
 * So a consumer that closes and then pops until empty answers every
 * message whose push succeeded; a check of `closed` followed by a push
 * could otherwise claim and publish after the drain, stranding it.
 *
 * Cache layout: read-mostly fields, the producers' enqueue_pos, the
 * consumer's dequeue_pos and the rarely written blocking state each get
 * their own 64-byte line.
 */
#include "core/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/futex.h"
#include "core/thread.h"
#include "core/trace.h"

#define LINE 64
/* set in enqueue_pos by close: claims fail from then on (positions stay
 * far below 2^63) */
#define CLOSED_POS (UINT64_C(1) << 63)

struct p2p_mailbox {
    /* read-mostly */
    uint8_t *cells;
    uint64_t mask;
    uint32_t msg_size;
    uint32_t stride; /* bytes per cell: 8 (seq) + msg_size rounded to 8 */
    uint16_t id;
    char name[P2P_MAILBOX_NAME_MAX];
    p2p_mailbox_describe_fn describe;
    /* debugger registry links (p2p__mailbox_list), under p2p__registry_lock */
    struct p2p_mailbox *reg_prev, *reg_next;
    /* Consumer's waiter.  release store in attach / acquire load in push:
     * a producer that sees the pointer sees an initialised waiter. */
    _Atomic(p2p_waiter_t *) waiter;
    /* release store in close / acquire load in push: a producer that sees
     * closed also sees what the closer wrote before closing. */
    _Atomic int closed;

    /* producers: next position to claim (relaxed CAS; the cell's seq
     * carries the ordering), | CLOSED_POS once closed */
    alignas(LINE) _Atomic uint64_t enqueue_pos;

    /* consumer: next position to pop.  Written only by the consumer
     * (relaxed store); other threads read it relaxed for depth/stats. */
    alignas(LINE) _Atomic uint64_t dequeue_pos;
    _Atomic uint64_t high_water; /* consumer writes, others read; relaxed */

    /* blocking state, touched only when the ring is full */
    /* space_seq: futex word, release RMW by the consumer / acquire load by
     * blocked senders; blocked: acq_rel RMWs on both sides (top comment),
     * relaxed loads only as a hint (held_for_blocked) */
    alignas(LINE) _Atomic uint32_t space_seq; /* futex word */
    _Atomic uint32_t blocked;                 /* senders in push's wait loop */
    _Atomic uint64_t full_rejections;         /* relaxed counter */
    _Atomic uint64_t blocked_waits;           /* relaxed counter */
    _Atomic uint64_t sender_sleeps;           /* relaxed counter */
    _Atomic uint64_t sender_wakes;            /* relaxed counter */
};

/* ---- debugger registry (see mailbox.h) -------------------------------- */

p2p_mailbox_t *p2p__mailbox_list;

static void registry_add(p2p_mailbox_t *mb)
{
    pthread_mutex_lock(&p2p__registry_lock);
    mb->reg_prev = NULL;
    mb->reg_next = p2p__mailbox_list;
    if (p2p__mailbox_list) p2p__mailbox_list->reg_prev = mb;
    p2p__mailbox_list = mb;
    pthread_mutex_unlock(&p2p__registry_lock);
}

/* Counters of destroyed mailboxes, per name id (under p2p__registry_lock):
 * with the live mailboxes' they make per-name totals that never go back
 * (p2p_mailbox_foreach_totals), though per-peer mailboxes come and go. */
static struct {
    uint64_t pushed, popped, full_rejections, blocked_waits;
} retired[P2P_MAILBOX_IDS_MAX];

static void registry_remove(p2p_mailbox_t *mb)
{
    pthread_mutex_lock(&p2p__registry_lock);
    if (mb->id && mb->id < P2P_MAILBOX_IDS_MAX) {
        p2p_mailbox_stats_t st;
        p2p_mailbox_get_stats(mb, &st);
        retired[mb->id].pushed += st.pushed;
        retired[mb->id].popped += st.popped;
        retired[mb->id].full_rejections += st.full_rejections;
        retired[mb->id].blocked_waits += st.blocked_waits;
    }
    if (mb->reg_prev)
        mb->reg_prev->reg_next = mb->reg_next;
    else if (p2p__mailbox_list == mb)
        p2p__mailbox_list = mb->reg_next;
    if (mb->reg_next) mb->reg_next->reg_prev = mb->reg_prev;
    pthread_mutex_unlock(&p2p__registry_lock);
}

void p2p_mailbox_foreach_totals(void (*fn)(void *ctx, const char *name,
                                           const p2p_mailbox_stats_t *st, bool live),
                                void *ctx)
{
    pthread_mutex_lock(&p2p__registry_lock);
    for (uint16_t id = 1; id < P2P_MAILBOX_IDS_MAX; id++) {
        const char *name = p2p_mailbox_id_name(id);
        if (!name) break;
        p2p_mailbox_stats_t st = {.pushed = retired[id].pushed,
                                  .popped = retired[id].popped,
                                  .full_rejections = retired[id].full_rejections,
                                  .blocked_waits = retired[id].blocked_waits};
        if (st.pushed || st.popped || st.full_rejections || st.blocked_waits)
            fn(ctx, name, &st, false);
    }
    for (const p2p_mailbox_t *mb = p2p__mailbox_list; mb; mb = mb->reg_next) {
        p2p_mailbox_stats_t st;
        p2p_mailbox_get_stats(mb, &st);
        fn(ctx, p2p_mailbox_name(mb), &st, true);
    }
    pthread_mutex_unlock(&p2p__registry_lock);
}

void p2p_mailbox_foreach(void (*fn)(void *ctx, const p2p_mailbox_t *mb), void *ctx)
{
    pthread_mutex_lock(&p2p__registry_lock);
    for (const p2p_mailbox_t *mb = p2p__mailbox_list; mb; mb = mb->reg_next) fn(ctx, mb);
    pthread_mutex_unlock(&p2p__registry_lock);
}

/* ---- name registry ---------------------------------------------------- */

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
/* Entries are written once under names_lock, then published by the
 * release store of names_count; readers load names_count (acquire) and
 * read entries below it without the lock. */
static char names[P2P_MAILBOX_IDS_MAX][P2P_MAILBOX_NAME_MAX];
static _Atomic unsigned names_count = 1; /* id 0 is "none" */

uint16_t p2p_mailbox_name_id(const char *name)
{
    uint16_t id = 0;
    pthread_mutex_lock(&names_lock);
    /* relaxed: we hold the lock that orders all writers */
    unsigned n = atomic_load_explicit(&names_count, memory_order_relaxed);
    for (unsigned i = 1; i < n; i++) {
        if (strncmp(names[i], name, P2P_MAILBOX_NAME_MAX - 1) == 0) {
            id = (uint16_t)i;
            break;
        }
    }
    if (id == 0 && n < P2P_MAILBOX_IDS_MAX) {
        snprintf(names[n], sizeof names[n], "%s", name);
        id = (uint16_t)n;
        /* release: pairs with the acquire in p2p_mailbox_id_name */
        atomic_store_explicit(&names_count, n + 1, memory_order_release);
        p2p__trace_name_mailbox(id, names[n]);
    }
    pthread_mutex_unlock(&names_lock);
    return id;
}

const char *p2p_mailbox_id_name(uint16_t id)
{
    /* acquire: pairs with the release in p2p_mailbox_name_id */
    unsigned n = atomic_load_explicit(&names_count, memory_order_acquire);
    return id > 0 && id < n ? names[id] : NULL;
}

/* ---- creation --------------------------------------------------------- */

/* Positions claimed so far (enqueue_pos without the closed bit); relaxed:
 * callers use it as an estimate, or after seeing `closed` (acquire), when
 * it no longer moves. */
static inline uint64_t claimed_pos(const p2p_mailbox_t *mb)
{
    return atomic_load_explicit(&((p2p_mailbox_t *)mb)->enqueue_pos, memory_order_relaxed) &
           ~CLOSED_POS;
}

static inline _Atomic uint64_t *cell_seq(const p2p_mailbox_t *mb, uint64_t pos)
{
    return (_Atomic uint64_t *)(void *)(mb->cells + (size_t)(pos & mb->mask) * mb->stride);
}

static inline uint8_t *cell_data(const p2p_mailbox_t *mb, uint64_t pos)
{
    return mb->cells + (size_t)(pos & mb->mask) * mb->stride + 8;
}

int p2p_mailbox_create(p2p_mailbox_t **out, const char *name, size_t msg_size, uint32_t capacity,
                       p2p_mailbox_describe_fn describe)
{
    *out = NULL;
    if (!name || msg_size == 0 || msg_size > P2P_MAILBOX_MSG_MAX || capacity == 0 ||
        capacity > P2P_MAILBOX_CAP_MAX)
        return P2P_EINVAL;
    uint64_t cap = 2;
    while (cap < capacity) cap <<= 1;
    p2p_mailbox_t *mb = aligned_alloc(LINE, sizeof *mb);
    if (!mb) return P2P_ENOMEM;
    memset(mb, 0, sizeof *mb);
    mb->stride = (uint32_t)(8 + ((msg_size + 7) & ~(size_t)7));
    size_t bytes = ((size_t)cap * mb->stride + LINE - 1) & ~(size_t)(LINE - 1);
    mb->cells = aligned_alloc(LINE, bytes);
    if (!mb->cells) {
        free(mb);
        return P2P_ENOMEM;
    }
    mb->mask = cap - 1;
    mb->msg_size = (uint32_t)msg_size;
    snprintf(mb->name, sizeof mb->name, "%s", name);
    mb->id = p2p_mailbox_name_id(mb->name);
    mb->describe = describe;
    for (uint64_t i = 0; i < cap; i++) {
        /* relaxed: the mailbox is published to other threads later by
         * whatever hands them the pointer (thread creation, a release) */
        atomic_store_explicit(cell_seq(mb, i), i, memory_order_relaxed);
    }
    registry_add(mb);
    *out = mb;
    return 0;
}

void p2p_mailbox_destroy(p2p_mailbox_t *mb)
{
    if (!mb) return;
    registry_remove(mb);
    free(mb->cells);
    free(mb);
}

int p2p_mailbox_attach(p2p_mailbox_t *mb, p2p_waiter_t *w)
{
    /* relaxed: only the consumer writes the pointer */
    if (atomic_load_explicit(&mb->waiter, memory_order_relaxed)) return P2P_EEXIST;
    int rc = p2p__waiter_add(w, mb);
    if (rc) return rc;
    /* release: pairs with the acquire in push (waiter initialised) */
    atomic_store_explicit(&mb->waiter, w, memory_order_release);
    return 0;
}

void p2p_mailbox_detach(p2p_mailbox_t *mb)
{
    /* relaxed: only the consumer writes the pointer */
    p2p_waiter_t *w = atomic_load_explicit(&mb->waiter, memory_order_relaxed);
    if (!w) return;
    p2p__waiter_remove(w, mb);
    /* release: pairs with the acquire load in push */
    atomic_store_explicit(&mb->waiter, NULL, memory_order_release);
}

/* ---- tracing hooks ---------------------------------------------------- */

/* Records a PUSH or POP of msg stamped time_ns (the caller checked
 * p2p_trace_on and read the clock). */
static void trace_msg_at(const p2p_mailbox_t *mb, uint64_t time_ns, uint8_t type, const void *msg)
{
    uint16_t kind = 0;
    uint64_t peer = 0, arg = 0;
    if (mb->describe) mb->describe(msg, &kind, &peer, &arg);
    p2p__trace_event_at(time_ns, type, mb->id, kind, peer, arg);
}

static inline void trace_msg(const p2p_mailbox_t *mb, uint8_t type, const void *msg)
{
    if (!p2p_trace_on()) return;
    trace_msg_at(mb, p2p_now_ns(), type, msg);
}

/* ---- producer side ---------------------------------------------------- */

/* One attempt to claim and fill a cell; wakes a sleeping consumer if wake.
 * Returns 0, P2P_EFULL or P2P_ECLOSED. */
static int push_cell(p2p_mailbox_t *mb, const void *msg, bool wake)
{
    /* relaxed: a hint; the CAS below validates it */
    uint64_t pos = atomic_load_explicit(&mb->enqueue_pos, memory_order_relaxed);
    for (;;) {
        if (pos & CLOSED_POS) return P2P_ECLOSED; /* see the top comment */
        _Atomic uint64_t *sp = cell_seq(mb, pos);
        /* acquire: pairs with the consumer's release store that freed the
         * cell, so our copy cannot overwrite data it is still reading */
        uint64_t seq = atomic_load_explicit(sp, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            /* seq_cst CAS: claims the position and is the producer's
             * half of the Dekker pair with the consumer's sleep (top
             * comment); the data is published by the release store of seq
             * below.  Failure: relaxed, only a new hint. */
            if (atomic_compare_exchange_weak_explicit(&mb->enqueue_pos, &pos, pos + 1,
                                                      memory_order_seq_cst, memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return P2P_EFULL;
        } else {
            /* relaxed: another producer took pos; reload the hint */
            pos = atomic_load_explicit(&mb->enqueue_pos, memory_order_relaxed);
        }
    }
    /* The PUSH time is read before the message is published: a consumer
     * pops it (and stamps its POP) only after the store below, so push
     * time <= pop time for every message, which the trace tool's flow
     * matching relies on.  Tracing off: one relaxed load and a branch, as
     * before; no clock read. */
    bool traced = p2p_trace_on();
    uint64_t push_ns = traced ? p2p_now_ns() : 0;
    memcpy(cell_data(mb, pos), msg, mb->msg_size);
    /* release: publishes the message (pairs with the consumer's acquire
     * load in pop).  The wake-up's ordering is the CAS's: our seq_cst load
     * of the sleeping flag in p2p__waiter_kick follows it (top comment). */
    atomic_store_explicit(cell_seq(mb, pos), pos + 1, memory_order_release);
    if (traced) trace_msg_at(mb, push_ns, P2P_TRACE_PUSH, msg);
    if (wake) {
        /* acquire: pairs with the release store in attach */
        p2p_waiter_t *w = atomic_load_explicit(&mb->waiter, memory_order_acquire);
        if (w) p2p__waiter_kick(w);
    }
    return 0;
}

static inline int push_once(p2p_mailbox_t *mb, const void *msg)
{
    return push_cell(mb, msg, true);
}

static inline int check_push(p2p_mailbox_t *mb, size_t len)
{
    if (len != mb->msg_size) return P2P_EINVAL;
    /* acquire: pairs with the release store in close */
    if (atomic_load_explicit(&mb->closed, memory_order_acquire)) return P2P_ECLOSED;
    return 0;
}

/* Fairness to blocked senders: while any is blocked, the upper half of the
 * ring is theirs, so non-blocking pushes fail once the ring is half full.
 * Blocked senders are woken at half (kick_blocked) and find room however
 * fast non-blocking producers refill freed cells (without this a sender
 * could wait out its whole deadline while others got in).  Relaxed loads:
 * a heuristic of who goes first, not a correctness condition. */
static inline bool held_for_blocked(p2p_mailbox_t *mb)
{
    if (!atomic_load_explicit(&mb->blocked, memory_order_relaxed)) return false;
    /* p2p_mailbox_depth reads dequeue_pos first: read after the claims, a
     * consumer that popped past the claim loaded made the difference wrap
     * to ~2^64, a spurious "held" (P2P_EFULL on a ring with room) */
    return p2p_mailbox_depth(mb) >= (mb->mask + 1) / 2;
}

int p2p_mailbox_try_push(p2p_mailbox_t *mb, const void *msg, size_t len)
{
    int rc = check_push(mb, len);
    if (rc) return rc;
    rc = held_for_blocked(mb) ? P2P_EFULL : push_once(mb, msg);
    if (rc == P2P_EFULL) {
        /* relaxed: statistics only */
        atomic_fetch_add_explicit(&mb->full_rejections, 1, memory_order_relaxed);
        if (p2p_trace_on()) p2p_trace_event(P2P_TRACE_FULL, mb->id, 0, 0, 0);
    }
    return rc;
}

int p2p_mailbox_try_push_quiet(p2p_mailbox_t *mb, const void *msg, size_t len)
{
    int rc = check_push(mb, len);
    if (rc) return rc;
    rc = held_for_blocked(mb) ? P2P_EFULL : push_cell(mb, msg, false);
    if (rc == P2P_EFULL) {
        /* relaxed: statistics only */
        atomic_fetch_add_explicit(&mb->full_rejections, 1, memory_order_relaxed);
        if (p2p_trace_on()) p2p_trace_event(P2P_TRACE_FULL, mb->id, 0, 0, 0);
    }
    return rc;
}

void p2p_mailbox_notify(p2p_mailbox_t *mb)
{
    /* acquire: pairs with the release store in attach.  The kick's seq_cst
     * load of the sleeping flag comes after the seq_cst claims of the quiet
     * pushes (program order): the Dekker pair of push_cell holds. */
    p2p_waiter_t *w = atomic_load_explicit(&mb->waiter, memory_order_acquire);
    if (w) p2p__waiter_kick(w);
}

void p2p__mailbox_kick_senders(p2p_mailbox_t *mb)
{
    /* release: a sender that loads the new value (acquire) sees what we
     * wrote before (closed, a quit flag, freed cells) */
    atomic_fetch_add_explicit(&mb->space_seq, 1, memory_order_release);
    p2p_futex_wake_all(&mb->space_seq);
}

int p2p_mailbox_push(p2p_mailbox_t *mb, const void *msg, size_t len, uint64_t deadline_ns)
{
    int rc = check_push(mb, len);
    if (rc) return rc;
    rc = push_once(mb, msg);
    if (rc != P2P_EFULL) return rc;

    /* relaxed: statistics only */
    atomic_fetch_add_explicit(&mb->blocked_waits, 1, memory_order_relaxed);
    if (p2p_trace_on()) p2p_trace_event(P2P_TRACE_BLOCK, mb->id, 0, 0, 0);
    p2p_thread_t *self = p2p_thread_self();
    /* seq_cst: Dekker pair with the quit flag (see thread.c) */
    if (self) atomic_store_explicit(&self->blocked_on, mb, memory_order_seq_cst);
    /* acq_rel RMW: pairs with the consumer's RMW on `blocked` in
     * kick_blocked (see the top comment) */
    atomic_fetch_add_explicit(&mb->blocked, 1, memory_order_acq_rel);
    for (;;) {
        /* acquire: pairs with the release RMW in kick_senders */
        uint32_t seen = atomic_load_explicit(&mb->space_seq, memory_order_acquire);
        if (atomic_load_explicit(&mb->closed, memory_order_acquire)) {
            rc = P2P_ECLOSED;
            break;
        }
        /* seq_cst: Dekker pair with p2p_thread_request_quit (thread.c) */
        if (self && atomic_load_explicit(&self->quit, memory_order_seq_cst)) {
            rc = P2P_ECLOSED;
            break;
        }
        rc = push_once(mb, msg);
        if (rc != P2P_EFULL) break;
        if (p2p_now_ns() >= deadline_ns) {
            rc = P2P_ETIMEDOUT;
            break;
        }
        /* relaxed: statistics only (next to a system call) */
        atomic_fetch_add_explicit(&mb->sender_sleeps, 1, memory_order_relaxed);
        p2p_futex_wait_until(&mb->space_seq, seen, deadline_ns);
    }
    /* relaxed: leaving; a consumer that still sees us only wakes in vain */
    atomic_fetch_sub_explicit(&mb->blocked, 1, memory_order_relaxed);
    if (self) atomic_store_explicit(&self->blocked_on, NULL, memory_order_seq_cst);
    return rc;
}

void p2p_mailbox_close(p2p_mailbox_t *mb)
{
    /* relaxed RMW: ends the claims (see the top comment); a thread that
     * sees `closed` (acquire) sees the bit and the final positions */
    atomic_fetch_or_explicit(&mb->enqueue_pos, CLOSED_POS, memory_order_relaxed);
    /* release: pairs with the acquire loads in check_push, push and pop */
    atomic_store_explicit(&mb->closed, 1, memory_order_release);
    /* Senders are kicked only if one is blocked (most closes find none,
     * and a wake is a system call).  The acq_rel RMW on `blocked` comes
     * after the closed store: either it follows a sender's increment in
     * blocked's modification order (we see the sender and kick it: a
     * sender between its load of space_seq and its futex wait returns at
     * once), or the sender's RMW reads from ours and so sees closed
     * (release/acquire) before it would sleep. */
    if (atomic_fetch_add_explicit(&mb->blocked, 0, memory_order_acq_rel))
        p2p__mailbox_kick_senders(mb);
    /* acquire: pairs with the release store in attach */
    p2p_waiter_t *w = atomic_load_explicit(&mb->waiter, memory_order_acquire);
    if (w) p2p_waiter_wake(w);
}

bool p2p_mailbox_is_closed(const p2p_mailbox_t *mb)
{
    /* acquire: pairs with the release store in close */
    return atomic_load_explicit(&((p2p_mailbox_t *)mb)->closed, memory_order_acquire) != 0;
}

/* ---- consumer side ---------------------------------------------------- */

/* After freeing cells (the consumer is at pos): wake senders blocked on a
 * full ring once it has drained to half its capacity. */
static inline void kick_blocked(p2p_mailbox_t *mb, uint64_t pos)
{
    /* acq_rel RMW (a read that takes part in blocked's modification order):
     * pairs with the sender's RMW in push, see the top comment.  The line
     * is written only by blocked senders, so this stays cheap. */
    if (!atomic_fetch_add_explicit(&mb->blocked, 0, memory_order_acq_rel)) return;
    /* relaxed: an estimate; a sender that is already blocked found the
     * ring full, and the ring cannot go from full to half without this
     * thread popping, so a later pop sees depth <= half and wakes it */
    uint64_t depth = claimed_pos(mb) - pos;
    if (depth <= (mb->mask + 1) / 2) {
        /* relaxed: statistics only (next to a system call) */
        atomic_fetch_add_explicit(&mb->sender_wakes, 1, memory_order_relaxed);
        p2p__mailbox_kick_senders(mb);
    }
}

static inline void note_depth(p2p_mailbox_t *mb, uint64_t pos)
{
    /* relaxed: statistics; enqueue_pos is at least what we just popped */
    uint64_t d = claimed_pos(mb) - pos;
    if (d > atomic_load_explicit(&mb->high_water, memory_order_relaxed))
        atomic_store_explicit(&mb->high_water, d, memory_order_relaxed);
}

bool p2p_mailbox_ready(const p2p_mailbox_t *mb)
{
    /* relaxed: only the consumer (the caller) writes dequeue_pos */
    uint64_t pos = atomic_load_explicit(&((p2p_mailbox_t *)mb)->dequeue_pos, memory_order_relaxed);
    /* acquire: pairs with the producer's release publish */
    return atomic_load_explicit(cell_seq(mb, pos), memory_order_acquire) == pos + 1;
}

int p2p__mailbox_idle(const p2p_mailbox_t *mb)
{
    /* relaxed: only the consumer (the caller) writes dequeue_pos */
    uint64_t pos = atomic_load_explicit(&((p2p_mailbox_t *)mb)->dequeue_pos, memory_order_relaxed);
    /* acquire: as in p2p_mailbox_ready */
    if (atomic_load_explicit(cell_seq(mb, pos), memory_order_acquire) == pos + 1)
        return P2P__MB_READY;
    /* seq_cst: the consumer's half of the Dekker pair (top comment), after
     * the caller's seq_cst store of its sleeping flag */
    uint64_t claimed =
        atomic_load_explicit(&((p2p_mailbox_t *)mb)->enqueue_pos, memory_order_seq_cst) &
        ~CLOSED_POS;
    return claimed != pos ? P2P__MB_INFLIGHT : P2P__MB_EMPTY;
}

/* The cell at pos is not published.  Open mailbox: false (empty, or its
 * producer is still copying; its publish wakes us).  Closed: true once
 * the cell is published if pos was claimed before the close, else false
 * (see the top comment). */
static bool await_claimed(p2p_mailbox_t *mb, uint64_t pos)
{
    /* acquire: pairs with the release store in close; claimed_pos is then
     * final */
    if (!atomic_load_explicit(&mb->closed, memory_order_acquire) || pos >= claimed_pos(mb))
        return false;
    /* acquire: as in pop */
    while (atomic_load_explicit(cell_seq(mb, pos), memory_order_acquire) != pos + 1) sched_yield();
    return true;
}

size_t p2p_mailbox_pop_batch(p2p_mailbox_t *mb, void *out, size_t outlen)
{
    size_t max = outlen / mb->msg_size, n = 0;
    /* relaxed: only this (consumer) thread writes dequeue_pos */
    uint64_t pos = atomic_load_explicit(&mb->dequeue_pos, memory_order_relaxed);
    uint8_t *o = out;
    if (max) note_depth(mb, pos);
    for (; n < max; n++, pos++) {
        _Atomic uint64_t *sp = cell_seq(mb, pos);
        /* acquire: pairs with the producer's release publish, so the
         * message bytes are visible */
        if (atomic_load_explicit(sp, memory_order_acquire) != pos + 1 && !await_claimed(mb, pos))
            break;
        memcpy(o, cell_data(mb, pos), mb->msg_size);
        /* release: our reads of the cell happen before a producer of the
         * next lap (acquire load of seq) overwrites it */
        atomic_store_explicit(sp, pos + mb->mask + 1, memory_order_release);
        trace_msg(mb, P2P_TRACE_POP, o);
        o += mb->msg_size;
    }
    if (n) {
        /* relaxed: readers of dequeue_pos only estimate depth */
        atomic_store_explicit(&mb->dequeue_pos, pos, memory_order_relaxed);
        kick_blocked(mb, pos);
    }
    return n;
}

int p2p_mailbox_try_pop(p2p_mailbox_t *mb, void *out, size_t outlen)
{
    if (outlen < mb->msg_size) return P2P_EINVAL;
    return p2p_mailbox_pop_batch(mb, out, mb->msg_size) ? 0 : P2P_EEMPTY;
}

/* ---- introspection ---------------------------------------------------- */

uint32_t p2p_mailbox_depth(const p2p_mailbox_t *mb)
{
    p2p_mailbox_t *m = (p2p_mailbox_t *)mb;
    /* relaxed: an estimate; read dequeue first so the difference is not
     * negative when both move */
    uint64_t d = atomic_load_explicit(&m->dequeue_pos, memory_order_relaxed);
    uint64_t e = claimed_pos(m);
    uint64_t n = e > d ? e - d : 0;
    return n > mb->mask + 1 ? (uint32_t)(mb->mask + 1) : (uint32_t)n;
}

void p2p_mailbox_get_stats(const p2p_mailbox_t *mb, p2p_mailbox_stats_t *st)
{
    p2p_mailbox_t *m = (p2p_mailbox_t *)mb;
    /* relaxed: statistics.  Claimed positions are always published, so
     * enqueue_pos counts accepted messages. */
    st->popped = atomic_load_explicit(&m->dequeue_pos, memory_order_relaxed);
    st->pushed = claimed_pos(m);
    st->full_rejections = atomic_load_explicit(&m->full_rejections, memory_order_relaxed);
    st->blocked_waits = atomic_load_explicit(&m->blocked_waits, memory_order_relaxed);
    st->high_water = atomic_load_explicit(&m->high_water, memory_order_relaxed);
    st->sender_sleeps = atomic_load_explicit(&m->sender_sleeps, memory_order_relaxed);
    st->sender_wakes = atomic_load_explicit(&m->sender_wakes, memory_order_relaxed);
    st->capacity = (uint32_t)(mb->mask + 1);
    st->depth = p2p_mailbox_depth(mb);
}

const char *p2p_mailbox_name(const p2p_mailbox_t *mb)
{
    return mb->name;
}

uint16_t p2p_mailbox_id(const p2p_mailbox_t *mb)
{
    return mb->id;
}

size_t p2p_mailbox_msg_size(const p2p_mailbox_t *mb)
{
    return mb->msg_size;
}

uint32_t p2p_mailbox_capacity(const p2p_mailbox_t *mb)
{
    return (uint32_t)(mb->mask + 1);
}
