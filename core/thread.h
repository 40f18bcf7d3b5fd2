/*
 * core/thread.h: named actor threads with small stacks and a quit protocol.
 *
 * Every component runs on one p2p_thread_t: a pthread with a name that
 * gdb, top -H and perf show (Linux limit: 15 characters, set through
 * p2p_thread_name), a chosen stack size, its own p2p_waiter_t, and a quit
 * flag.
 *
 * Quit protocol: another thread calls p2p_thread_request_quit(t), which sets
 * t's quit flag, wakes t's waiter (sticky, so a quit that arrives while t is
 * busy is seen at its next wait) and makes a p2p_mailbox_push that t is
 * blocked in return P2P_ECLOSED.  t's loop checks p2p_thread_should_quit
 * after every wake-up, cleans up and returns from its function; the
 * requester then calls p2p_thread_join.
 *
 *     static int run(p2p_thread_t *self, void *arg) {
 *         while (!p2p_thread_should_quit(self)) {
 *             ... drain mailboxes (bounded) ...
 *             p2p_waiter_wait(&self->waiter, next_deadline);
 *         }
 *         return 0;
 *     }
 *
 * Stacks: P2P_THREAD_STACK_MIN (64 KiB) at least; peer threads use
 * P2P_THREAD_STACK_PEER.  Under ASan/TSan the requested size is multiplied
 * by P2P_THREAD_STACK_SANITIZER_FACTOR because instrumented frames are
 * larger.  Code that runs on a peer thread must keep big buffers off the
 * stack (frames of a few KiB at most).  Each spawned thread's stack (with
 * a guard page below it) is mapped here and unmapped by p2p_thread_join,
 * not taken from glibc's cache of dead threads' stacks: that cache keeps up
 * to 40 MiB of stacks mapped with their top pages (TCB, TLS, the last
 * frames) resident, 8-12 KiB per 128 KiB peer stack, so after a burst of
 * connections the node would keep hundreds of KiB it no longer uses.
 *
 * Current actor: each p2p thread (and a thread that called
 * p2p_thread_adopt) has a thread-local pointer to its p2p_thread_t, used by
 * logs, traces and mailboxes (p2p_thread_self, p2p_thread_current_name).
 *
 * Debugging: live threads are linked on p2p__thread_list and mailboxes on
 * p2p__mailbox_list (mailbox.c) for gdb (tools/gdb/devp2p.py).
 *
 * Who may call: spawn/join/request_quit from any thread (join once, by one
 * thread); should_quit and the waiter by the thread itself.
 */
#ifndef P2P_CORE_THREAD_H
#define P2P_CORE_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/wait.h"

#define P2P_THREAD_NAME_MAX 16 /* Linux limit: 15 characters + NUL */
#define P2P_THREAD_STACK_MIN (64u * 1024)
#define P2P_THREAD_STACK_PEER (128u * 1024)
#define P2P_THREAD_STACK_DEFAULT (256u * 1024)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define P2P_THREAD_STACK_SANITIZER_FACTOR 4u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define P2P_THREAD_STACK_SANITIZER_FACTOR 4u
#endif
#endif
#ifndef P2P_THREAD_STACK_SANITIZER_FACTOR
#define P2P_THREAD_STACK_SANITIZER_FACTOR 1u
#endif

/* 1: stacks mapped by p2p_thread_spawn (see above); 0 under TSan, whose
 * runtime has about 900 KiB of static TLS that glibc would have to carve
 * out of every caller-provided stack (glibc-allocated stacks get room for
 * it added by TSan's pthread_create). */
#if defined(__SANITIZE_THREAD__)
#define P2P_THREAD_OWN_STACKS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define P2P_THREAD_OWN_STACKS 0
#endif
#endif
#ifndef P2P_THREAD_OWN_STACKS
#define P2P_THREAD_OWN_STACKS 1
#endif

struct p2p_mailbox;
typedef struct p2p_thread p2p_thread_t;
typedef int (*p2p_thread_fn)(p2p_thread_t *self, void *arg);

struct p2p_thread {
    char name[P2P_THREAD_NAME_MAX];
    uint32_t id; /* small process-unique number, > 0 */
    p2p_waiter_t waiter;
    /* Quit flag: set by p2p_thread_request_quit (seq_cst store), read by
     * the thread (acquire in should_quit; seq_cst in mailbox push, where it
     * pairs with blocked_on, see thread.c). */
    _Atomic int quit;
    /* Mailbox whose push this thread is blocked in, or NULL (seq_cst:
     * Dekker pair with quit, see thread.c). */
    _Atomic(struct p2p_mailbox *) blocked_on;
    /* private */
    pthread_t pt;
    p2p_thread_fn fn;
    void *arg;
    int rc;
    size_t stack_size; /* bytes actually requested from pthreads */
    void *stack_map;   /* our mapping: guard page + stack (unmapped by join) */
    size_t stack_map_size;
    bool started, joined, adopted;
    /* Debugger registry (see p2p__thread_list below): links of the list of
     * live p2p threads; touched only under its lock. */
    struct p2p_thread *reg_prev, *reg_next;
};

/* Debugger registry: every spawned (until joined) or adopted (until
 * unadopted) p2p thread is on this doubly-linked list, so a debugger
 * attached to the process or reading a core file (tools/gdb/devp2p.py)
 * can list the actors without any cooperation from them.  Writers hold
 * p2p__registry_lock; nothing in the program reads the list. */
extern p2p_thread_t *p2p__thread_list;
extern pthread_mutex_t p2p__registry_lock;

/* Writes the thread name for printf-style fmt into out, truncated to 15
 * characters.  Returns 0, or P2P_ETOOBIG if it had to truncate (out is
 * still a valid, truncated name). */
int p2p_thread_name(char out[P2P_THREAD_NAME_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Starts fn(t, arg) on a new thread named name (truncated to 15 chars)
 * with stack_size bytes of stack (0: P2P_THREAD_STACK_DEFAULT; raised to
 * P2P_THREAD_STACK_MIN and rounded up to the page size).  t is the
 * caller's storage and must stay valid until p2p_thread_join returns.
 * Returns 0, P2P_ESYS (eventfd, the stack's mapping or pthread_create failed: errno
 * says why) or P2P_EINVAL. */
P2P_MUST_CHECK int p2p_thread_spawn(p2p_thread_t *t, const char *name, size_t stack_size,
                                    p2p_thread_fn fn, void *arg);

/* As p2p_thread_spawn, with flags: P2P_THREAD_SIGNAL_WAKE gives the thread
 * a signal-mode waiter (p2p_waiter_init_signal: no eventfd; the thread
 * sleeps only in p2p_waiter_wait/p2p_waiter_poll).  P2P_THREAD_SPIN_WAIT
 * gives its waiter the spin policy (p2p_waiter_set_spin with
 * P2P_WAITER_SPIN_DEFAULT_NS): for the few component threads that trade
 * messages at a high rate, never for per-peer threads. */
#define P2P_THREAD_SIGNAL_WAKE 1u
#define P2P_THREAD_SPIN_WAIT 2u
P2P_MUST_CHECK int p2p_thread_spawn_ex(p2p_thread_t *t, const char *name, size_t stack_size,
                                       unsigned flags, p2p_thread_fn fn, void *arg);

/* Waits for t to finish; *rc (may be NULL) receives fn's return value.
 * Releases t's waiter and unmaps its stack.  Returns 0 or P2P_ESTATE (not started or joined). */
int p2p_thread_join(p2p_thread_t *t, int *rc);

/* The calling thread: returns the pages of its stack below the current
 * frame (less a margin) to the kernel (madvise MADV_DONTNEED), so a deep
 * call made once (a handshake's crypto) does not stay resident for the
 * thread's life.  Best effort; any thread, any time. */
void p2p_thread_trim_stack(void);

/* Any thread: asks t to quit (see the protocol above).  Idempotent. */
void p2p_thread_request_quit(p2p_thread_t *t);

/* The thread itself: true once a quit was requested. */
static inline bool p2p_thread_should_quit(p2p_thread_t *t)
{
    /* acquire: pairs with the seq_cst store in p2p_thread_request_quit, so
     * what the requester wrote before asking is visible after we see it */
    return atomic_load_explicit(&t->quit, memory_order_acquire) != 0;
}

/* Makes the calling thread (e.g. main or a test thread) a p2p thread with
 * its own waiter, so it can consume mailboxes and appear in logs/traces.
 * Does not rename the OS thread.  Undo with p2p_thread_unadopt before t
 * goes away.  Returns 0 or P2P_ESYS. */
P2P_MUST_CHECK int p2p_thread_adopt(p2p_thread_t *t, const char *name);
void p2p_thread_unadopt(p2p_thread_t *t);

/* The calling thread's p2p_thread_t, or NULL for a foreign thread. */
p2p_thread_t *p2p_thread_self(void);
/* The calling thread's actor name ("?" for a foreign thread). */
const char *p2p_thread_current_name(void);
/* The calling thread's actor id (0 for a foreign thread). */
uint32_t p2p_thread_current_id(void);

/* The calling p2p thread takes a new name (truncated to 15 chars) once its
 * role is known (a connection thread becomes peer-<id> after the
 * handshake): the OS thread name, the debugger registry and the trace all
 * follow.  The trace ring is handed back with a STOP record and a ring is
 * taken again under the new name at the next record, so a trace reader
 * shows where the name changed.  Returns 0, P2P_ETOOBIG (truncated) or
 * P2P_ESTATE (not a p2p thread). */
int p2p_thread_rename(const char *name);

#endif
