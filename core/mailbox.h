/*
 * core/mailbox.h: bounded lock-free MPSC mailbox of fixed-size messages.
 *
 * The only way actors talk.  A mailbox is a ring of 2^k cells (Vyukov's
 * bounded queue: each cell carries a sequence number that says whether it
 * is free for the producer of lap n or full for the consumer of lap n).
 * Messages are copied in and out by value; storage is allocated once at
 * creation, never per message.
 *
 * Roles:
 * - Producers: any number of threads; p2p_mailbox_try_push,
 *   p2p_mailbox_push (blocking with a deadline), p2p_mailbox_close,
 *   p2p_mailbox_depth, p2p_mailbox_get_stats.
 * - Consumer: exactly one thread at a time (the owner); p2p_mailbox_attach,
 *   p2p_mailbox_try_pop, p2p_mailbox_pop_batch, p2p_mailbox_ready.
 *
 * Nothing is dropped silently: a full mailbox makes try_push return
 * P2P_EFULL (counted in full_rejections) and push wait (counted in
 * blocked_waits) until space, its deadline, close, or a quit request for
 * the calling p2p thread (p2p_thread_request_quit).
 *
 * Wake-ups: a mailbox is attached to its consumer's p2p_waiter_t; a push
 * wakes the consumer only if it announced a sleep (see core/wait.h), so a
 * busy consumer costs producers no system call.  Blocked senders sleep on
 * a futex in the mailbox; the consumer wakes them (all) after a pop only
 * when a sender is actually blocked and the mailbox has drained to half
 * its capacity (low watermark).  While a sender is blocked the upper half
 * of the ring is held for blocked senders: try_push fails (P2P_EFULL) once
 * the ring is half full, so non-blocking producers refilling every freed
 * cell cannot starve a blocked sender until its deadline.  A blocking push
 * takes a free cell all the same: holding the upper half back there made
 * every producer sleep whenever one did (4->1 in bench_mailbox fell to
 * less than half), so a producer that refills every freed cell through
 * p2p_mailbox_push can keep a blocked sender waiting until its deadline.
 *
 * Ordering guarantees: messages from one producer are popped in the order
 * that producer pushed them.  Everything the producer wrote before the
 * push happens-before the consumer's pop returning the message.
 *
 * Names and ids: every mailbox has a name (<= P2P_MAILBOX_NAME_MAX-1
 * chars, e.g. "posthandshake", "peerop") and a small id shared by all
 * mailboxes of that name (so per-peer mailboxes such as "out" share one id);
 * trace records carry the id and the trace segment maps ids to names.
 *
 * Lifetime: destroy a mailbox only after every thread that may push into or
 * pop from it has been joined (or has provably stopped using it).  A push
 * touches the consumer's waiter, so the consumer's waiter (its
 * p2p_thread_t) must also outlive every push: an exiting consumer closes
 * its mailboxes, and the actor protocol makes sure no producer is still
 * inside a push (e.g. the run loop stops sending to a peer once it has
 * processed that peer's delpeer) before the storage is released.
 */
#ifndef P2P_CORE_MAILBOX_H
#define P2P_CORE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/wait.h"

#define P2P_MAILBOX_NAME_MAX 24  /* including the NUL */
#define P2P_MAILBOX_IDS_MAX 128  /* distinct names; id 0 means "none" */
#define P2P_MAILBOX_MSG_MAX 4096 /* bytes per message */
#define P2P_MAILBOX_CAP_MAX (1u << 24)

typedef struct p2p_mailbox p2p_mailbox_t;

/* Optional per-mailbox hook for traces: extracts the message kind, the
 * peer id prefix (first 8 bytes of the node id, big-endian) and a 64-bit
 * argument from a message.  Called only when tracing is on, on the pushing
 * or popping thread; must be pure and cheap. */
typedef void (*p2p_mailbox_describe_fn)(const void *msg, uint16_t *kind, uint64_t *peer,
                                        uint64_t *arg);

typedef struct p2p_mailbox_stats {
    uint64_t pushed;          /* messages accepted */
    uint64_t popped;          /* messages delivered to the consumer */
    uint64_t full_rejections; /* try_push calls that returned P2P_EFULL */
    uint64_t blocked_waits;   /* push calls that found the mailbox full and waited */
    uint64_t high_water;      /* highest depth the consumer observed */
    uint64_t sender_sleeps;   /* futex waits of blocked senders (push) */
    uint64_t sender_wakes;    /* wake-ups of the blocked senders (all at once) */
    uint32_t depth;           /* approximate current depth */
    uint32_t capacity;
} p2p_mailbox_stats_t;

/* Creates a mailbox for messages of msg_size bytes (1..P2P_MAILBOX_MSG_MAX)
 * holding at least capacity messages (rounded up to a power of two, 2 at
 * least, P2P_MAILBOX_CAP_MAX at most).  describe may be NULL.
 * Returns 0, P2P_EINVAL or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_mailbox_create(p2p_mailbox_t **mb, const char *name, size_t msg_size,
                                      uint32_t capacity, p2p_mailbox_describe_fn describe);
/* Frees the mailbox (NULL is a no-op).  Messages still inside are lost, so
 * the owner drains it first if they matter. */
void p2p_mailbox_destroy(p2p_mailbox_t *mb);

/* Consumer: attaches mb to the consumer's waiter, before any producer can
 * push.  Returns 0, P2P_EEXIST (already attached) or P2P_EFULL (the waiter
 * has P2P_WAITER_MAILBOXES mailboxes). */
P2P_MUST_CHECK int p2p_mailbox_attach(p2p_mailbox_t *mb, p2p_waiter_t *w);

/* Consumer: undoes attach (e.g. before destroying a mailbox that its
 * waiter outlives).  A producer racing with detach may still wake the
 * waiter once (harmless: a spurious wake-up). */
void p2p_mailbox_detach(p2p_mailbox_t *mb);

/* Any thread: copies msg (len must be the mailbox's msg_size) into the
 * mailbox.  Returns 0, P2P_EFULL (nothing was queued: the ring is full, or
 * half full while a sender is blocked; the caller must handle it visibly),
 * P2P_ECLOSED or P2P_EINVAL (wrong len). */
P2P_MUST_CHECK int p2p_mailbox_try_push(p2p_mailbox_t *mb, const void *msg, size_t len);

/* Any thread: as try_push, but never wakes the consumer.  For a producer
 * that pushes a batch: it pushes each message quietly and then calls
 * p2p_mailbox_notify once (one wake-up for the batch instead of one per
 * message when the consumer drains faster than the producer fills).  The
 * caller must call p2p_mailbox_notify after its last quiet push, or the
 * consumer may sleep with the messages queued. */
P2P_MUST_CHECK int p2p_mailbox_try_push_quiet(p2p_mailbox_t *mb, const void *msg, size_t len);

/* Any thread: wakes the consumer if it sleeps (after quiet pushes). */
void p2p_mailbox_notify(p2p_mailbox_t *mb);

/* Any thread: as try_push, but while the mailbox is full waits until space
 * frees up or deadline_ns (absolute CLOCK_MONOTONIC, P2P_DEADLINE_NEVER for
 * none) passes.  Returns 0, P2P_ETIMEDOUT, P2P_ECLOSED (the mailbox was
 * closed, or the calling p2p thread was asked to quit, before or during
 * the wait) or P2P_EINVAL. */
P2P_MUST_CHECK int p2p_mailbox_push(p2p_mailbox_t *mb, const void *msg, size_t len,
                                    uint64_t deadline_ns);

/* Consumer: pops the oldest message into out (outlen must be at least the
 * msg_size).  Returns 0, P2P_EEMPTY or P2P_EINVAL. */
P2P_MUST_CHECK int p2p_mailbox_try_pop(p2p_mailbox_t *mb, void *out, size_t outlen);

/* Consumer: pops up to outlen / msg_size messages into out (an array of
 * messages).  Returns the number popped (0 if empty). */
size_t p2p_mailbox_pop_batch(p2p_mailbox_t *mb, void *out, size_t outlen);

/* Consumer: true if a message is ready to pop. */
bool p2p_mailbox_ready(const p2p_mailbox_t *mb);

/* Any thread: approximate number of queued messages. */
uint32_t p2p_mailbox_depth(const p2p_mailbox_t *mb);

/* Any thread: closes the mailbox.  Later pushes fail with P2P_ECLOSED,
 * senders blocked in p2p_mailbox_push return P2P_ECLOSED promptly, and the
 * consumer's waiter is woken.  Messages already queued (and pushes that
 * raced with close and succeeded) stay poppable, and a consumer that pops
 * after the close gets every one of them before P2P_EEMPTY: a pop waits
 * for a push that claimed its cell before the close and is still copying
 * its message.  Idempotent. */
void p2p_mailbox_close(p2p_mailbox_t *mb);
bool p2p_mailbox_is_closed(const p2p_mailbox_t *mb);

const char *p2p_mailbox_name(const p2p_mailbox_t *mb);
uint16_t p2p_mailbox_id(const p2p_mailbox_t *mb);
size_t p2p_mailbox_msg_size(const p2p_mailbox_t *mb);
uint32_t p2p_mailbox_capacity(const p2p_mailbox_t *mb);
void p2p_mailbox_get_stats(const p2p_mailbox_t *mb, p2p_mailbox_stats_t *st);

/* Interns a mailbox name and returns its id (1..P2P_MAILBOX_IDS_MAX-1), or
 * 0 if the table is full.  Used by p2p_mailbox_create; any thread. */
uint16_t p2p_mailbox_name_id(const char *name);
/* The name for id, or NULL if id is not in use.  Any thread. */
const char *p2p_mailbox_id_name(uint16_t id);

/* Debugger registry: every mailbox between create and destroy is on this
 * doubly-linked list (writers hold p2p__registry_lock from thread.h), so
 * tools/gdb/devp2p.py can list mailboxes and their depths in a live
 * process or a core file.  In the program only p2p_mailbox_foreach reads it. */
extern p2p_mailbox_t *p2p__mailbox_list;

/* Calls fn(ctx, mb) for every live mailbox, holding the registry lock (so
 * no mailbox is destroyed meanwhile); fn must be quick and must not create
 * or destroy mailboxes (p2p_mailbox_get_stats and the getters are fine).
 * Any thread (metrics). */
void p2p_mailbox_foreach(void (*fn)(void *ctx, const p2p_mailbox_t *mb), void *ctx);

/* Per-name totals for metrics: holding the registry lock, calls fn once per
 * name with the counters (pushed, popped, full_rejections, blocked_waits;
 * depth, capacity and high_water 0) of its destroyed mailboxes (live
 * false; names with none are skipped), then once per live mailbox with its
 * stats (live true).  Summed per name, the counters never go back, though
 * per-peer mailboxes are created and destroyed.  fn as for foreach. */
void p2p_mailbox_foreach_totals(void (*fn)(void *ctx, const char *name,
                                           const p2p_mailbox_stats_t *st, bool live),
                                void *ctx);

/* Internal (thread.c): wakes the senders blocked in p2p_mailbox_push so they
 * re-check their quit flag. */
void p2p__mailbox_kick_senders(p2p_mailbox_t *mb);

/* Internal (wait.c, the consumer after announcing a sleep): P2P__MB_READY
 * (a message is published at the head), P2P__MB_INFLIGHT (a position is
 * claimed but its message not yet visible: the producer may or may not
 * wake us, see mailbox.c) or P2P__MB_EMPTY (a sleep is safe: the next
 * claim wakes us). */
enum { P2P__MB_EMPTY, P2P__MB_READY, P2P__MB_INFLIGHT };
int p2p__mailbox_idle(const p2p_mailbox_t *mb);

#endif
