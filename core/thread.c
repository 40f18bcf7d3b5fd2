/*
 * core/thread.c: named threads, stacks, the quit protocol and the
 * thread-local "current actor" (see thread.h).
 *
 * Quit vs. a blocked push (Dekker pair, all four accesses seq_cst):
 *   requester: quit = 1; mb = blocked_on; if mb: kick mb's senders
 *   sender:    blocked_on = mb; seen = space_seq; check quit; sleep
 * Either the requester sees blocked_on (and bumps space_seq, so the
 * sender's futex wait returns) or the sender sees quit before sleeping.
 * The mailbox must outlive the request (see mailbox.h: mailboxes are
 * destroyed only after their users are joined).
 */
#include "core/thread.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mailbox.h"
#include "core/trace.h"

static __thread p2p_thread_t *current;

p2p_thread_t *p2p__thread_list;
pthread_mutex_t p2p__registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void registry_add(p2p_thread_t *t)
{
    pthread_mutex_lock(&p2p__registry_lock);
    t->reg_prev = NULL;
    t->reg_next = p2p__thread_list;
    if (p2p__thread_list) p2p__thread_list->reg_prev = t;
    p2p__thread_list = t;
    pthread_mutex_unlock(&p2p__registry_lock);
}

static void registry_remove(p2p_thread_t *t)
{
    pthread_mutex_lock(&p2p__registry_lock);
    if (t->reg_prev)
        t->reg_prev->reg_next = t->reg_next;
    else if (p2p__thread_list == t)
        p2p__thread_list = t->reg_next;
    if (t->reg_next) t->reg_next->reg_prev = t->reg_prev;
    t->reg_prev = t->reg_next = NULL;
    pthread_mutex_unlock(&p2p__registry_lock);
}
/* relaxed counter: ids only need to be unique */
static _Atomic uint32_t next_id = 1;

int p2p_thread_name(char out[P2P_THREAD_NAME_MAX], const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) {
        out[0] = 0;
        return P2P_EINVAL;
    }
    size_t len = strnlen(buf, P2P_THREAD_NAME_MAX - 1);
    memcpy(out, buf, len);
    out[len] = 0;
    return n > P2P_THREAD_NAME_MAX - 1 ? P2P_ETOOBIG : 0;
}

static void set_identity(p2p_thread_t *t, const char *name)
{
    (void)p2p_thread_name(t->name, "%s", name);
    /* relaxed: ids only need to be unique */
    t->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    /* relaxed: t is published to its thread by pthread_create */
    atomic_store_explicit(&t->quit, 0, memory_order_relaxed);
    atomic_store_explicit(&t->blocked_on, NULL, memory_order_relaxed);
}

static void *trampoline(void *p)
{
    p2p_thread_t *t = p;
    current = t;
    pthread_setname_np(pthread_self(), t->name);
    p2p_trace_thread_attach(t->name);
    t->rc = t->fn(t, t->arg);
    p2p_trace_thread_detach();
    current = NULL;
    return NULL;
}

static void unmap_stack(p2p_thread_t *t)
{
    if (t->stack_map) (void)munmap(t->stack_map, t->stack_map_size);
    t->stack_map = NULL;
}

int p2p_thread_spawn(p2p_thread_t *t, const char *name, size_t stack_size, p2p_thread_fn fn,
                     void *arg)
{
    return p2p_thread_spawn_ex(t, name, stack_size, 0, fn, arg);
}

int p2p_thread_spawn_ex(p2p_thread_t *t, const char *name, size_t stack_size, unsigned flags,
                        p2p_thread_fn fn, void *arg)
{
    if (!t || !name || !fn) return P2P_EINVAL;
    memset(t, 0, sizeof *t);
    set_identity(t, name);
    t->fn = fn;
    t->arg = arg;
    if ((flags & P2P_THREAD_SIGNAL_WAKE) ? p2p_waiter_init_signal(&t->waiter)
                                         : p2p_waiter_init(&t->waiter))
        return P2P_ESYS;
    if (flags & P2P_THREAD_SPIN_WAIT) p2p_waiter_set_spin(&t->waiter, P2P_WAITER_SPIN_DEFAULT_NS);

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (stack_size == 0) stack_size = P2P_THREAD_STACK_DEFAULT;
    if (stack_size < P2P_THREAD_STACK_MIN) stack_size = P2P_THREAD_STACK_MIN;
    stack_size *= P2P_THREAD_STACK_SANITIZER_FACTOR;
    stack_size = (stack_size + page - 1) / page * page;
    t->stack_size = stack_size;

    pthread_attr_t attr;
    if (pthread_attr_init(&attr)) goto fail;
    int err;
    if (P2P_THREAD_OWN_STACKS) {
        /* our own mapping (see thread.h): a PROT_NONE guard page, then the
         * stack; glibc puts the TCB and static TLS at its top and, since
         * the stack is the caller's, never caches it */
        t->stack_map_size = stack_size + page;
        t->stack_map = mmap(NULL, t->stack_map_size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        if (t->stack_map == MAP_FAILED) t->stack_map = NULL;
        err = !t->stack_map || mprotect(t->stack_map, page, PROT_NONE) ||
              pthread_attr_setstack(&attr, (char *)t->stack_map + page, stack_size);
    } else {
        err = pthread_attr_setstacksize(&attr, stack_size);
        if (err) errno = err;
    }
    /* started is set before the thread exists: the thread may finish and be
     * joined by a third thread (which learnt of it through a message the
     * thread sent) before pthread_create even returns here */
    t->started = true;
    /* the registry entry, too, must exist before the thread may be joined */
    registry_add(t);
    if (!err) {
        err = pthread_create(&t->pt, &attr, trampoline, t);
        if (err) errno = err; /* pthread_create returns its error */
    }
    pthread_attr_destroy(&attr);
    if (err) goto fail;
    return 0;
fail:;
    int e = errno;      /* P2P_ESYS: the caller reads the cause in errno */
    registry_remove(t); /* no-op if it was never added */
    t->started = false;
    unmap_stack(t);
    p2p_waiter_destroy(&t->waiter);
    errno = e;
    return P2P_ESYS;
}

__attribute__((noinline)) void p2p_thread_trim_stack(void)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
    void *addr = NULL;
    size_t size = 0;
    int err = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (err || !addr) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)addr + page - 1) & ~(page - 1);
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (sp < lo + 2 * page || sp > (uintptr_t)addr + size) return;
    /* keep the page holding sp - 1 KiB: room for madvise's own frames */
    uintptr_t hi = (sp - 1024) & ~(page - 1);
    (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int p2p_thread_join(p2p_thread_t *t, int *rc)
{
    if (!t->started || t->joined) return P2P_ESTATE;
    pthread_join(t->pt, NULL);
    /* the kernel cleared the thread's tid (what pthread_join waits for)
     * only after the thread left its stack for good */
    unmap_stack(t);
    t->joined = true;
    registry_remove(t);
    p2p_waiter_destroy(&t->waiter);
    if (rc) *rc = t->rc;
    return 0;
}

void p2p_thread_request_quit(p2p_thread_t *t)
{
    /* seq_cst store then seq_cst load: Dekker pair with the sender's
     * blocked_on store and quit load in p2p_mailbox_push (see the top
     * comment); also release for p2p_thread_should_quit's acquire load. */
    atomic_store_explicit(&t->quit, 1, memory_order_seq_cst);
    struct p2p_mailbox *mb = atomic_load_explicit(&t->blocked_on, memory_order_seq_cst);
    if (mb) p2p__mailbox_kick_senders(mb);
    p2p_waiter_wake(&t->waiter);
}

int p2p_thread_adopt(p2p_thread_t *t, const char *name)
{
    memset(t, 0, sizeof *t);
    set_identity(t, name);
    if (p2p_waiter_init(&t->waiter)) return P2P_ESYS;
    t->pt = pthread_self();
    t->adopted = true;
    current = t;
    registry_add(t);
    p2p_trace_thread_attach(t->name);
    return 0;
}

void p2p_thread_unadopt(p2p_thread_t *t)
{
    if (t->adopted) registry_remove(t);
    if (current == t) {
        p2p_trace_thread_detach();
        current = NULL;
    }
    p2p_waiter_destroy(&t->waiter);
    t->adopted = false;
}

p2p_thread_t *p2p_thread_self(void)
{
    return current;
}

const char *p2p_thread_current_name(void)
{
    return current ? current->name : "?";
}

uint32_t p2p_thread_current_id(void)
{
    return current ? current->id : 0;
}

int p2p_thread_rename(const char *name)
{
    if (!current || !name) return P2P_ESTATE;
    char n[P2P_THREAD_NAME_MAX];
    int rc = p2p_thread_name(n, "%s", name);
    /* the registry's readers (a debugger) see the name whole */
    pthread_mutex_lock(&p2p__registry_lock);
    memcpy(current->name, n, sizeof n);
    pthread_mutex_unlock(&p2p__registry_lock);
    pthread_setname_np(pthread_self(), n);
    p2p_trace_thread_attach(n);
    return rc;
}
