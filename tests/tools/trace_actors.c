/*
 * tests/tools/trace_actors.c: a small live actor process for the trace
 * reader and gdb extension tests.
 *
 *   trace_actors DIR SECONDS [RINGS]
 *
 * Opens the trace segment DIR/trace.ring (P2P_TRACE_FILE), names the kinds
 * posthandshake (1), addpeer (2), delpeer (3), and runs three p2p threads:
 * "p2p-run" consumes the mailboxes "posthandshake", "addpeer" and
 * "delpeer"; "peer-aabbccdd" and "peer-11223344" each push one message of
 * each kind every 2 ms (peer prefix 0xaabbccdd00000000 / 0x1122334400000000,
 * arg = a per-thread counter), and record a custom "tick" event (kind 4).
 * A fourth mailbox "idle" is created and never drained after one push, so
 * a depth of 1 is visible.  The main thread records that push and then an
 * event of kind 256 (beyond the named kinds, P2P_TRACE_KINDS) with arg
 * 256.  Prints "ready PID" once everything runs, then
 * stops after SECONDS (or at SIGTERM/SIGINT) and exits 0.  Bounded: at
 * most 120 s.  The segment has RINGS rings (default 16); with 3, one of
 * the four recording threads (main, p2p-run and the two peers) finds none.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"

struct msg {
    uint16_t kind;
    uint64_t peer;
    uint64_t arg;
};

static p2p_mailbox_t *mb_post, *mb_add, *mb_del, *mb_idle;
static _Atomic int run_ready;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void describe(const void *m, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const struct msg *x = m;
    *kind = x->kind;
    *peer = x->peer;
    *arg = x->arg;
}

static int run_loop(p2p_thread_t *self, void *arg)
{
    (void)arg;
    if (p2p_mailbox_attach(mb_post, &self->waiter) || p2p_mailbox_attach(mb_add, &self->waiter) ||
        p2p_mailbox_attach(mb_del, &self->waiter))
        return 1;
    /* release: the producers start pushing after they see this */
    atomic_store_explicit(&run_ready, 1, memory_order_release);
    struct msg batch[16];
    while (!p2p_thread_should_quit(self)) {
        p2p_mailbox_pop_batch(mb_post, batch, sizeof batch);
        p2p_mailbox_pop_batch(mb_add, batch, sizeof batch);
        p2p_mailbox_pop_batch(mb_del, batch, sizeof batch);
        (void)p2p_waiter_wait(&self->waiter, p2p_now_ns() + 100 * P2P_NS_PER_MS);
    }
    return 0;
}

static int peer_loop(p2p_thread_t *self, void *arg)
{
    uint64_t peer = (uint64_t)(uintptr_t)arg;
    uint64_t i = 0;
    while (!p2p_thread_should_quit(self)) {
        struct msg m = {.peer = peer, .arg = i};
        m.kind = 1;
        if (p2p_mailbox_push(mb_post, &m, sizeof m, p2p_now_ns() + P2P_NS_PER_S)) break;
        m.kind = 2;
        if (p2p_mailbox_push(mb_add, &m, sizeof m, p2p_now_ns() + P2P_NS_PER_S)) break;
        m.kind = 3;
        if (p2p_mailbox_push(mb_del, &m, sizeof m, p2p_now_ns() + P2P_NS_PER_S)) break;
        P2P_TRACE_EVENT(4, peer, i);
        i++;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: trace_actors DIR SECONDS [RINGS]\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], P2P_TRACE_FILE);
    int secs = atoi(argv[2]);
    if (secs < 1 || secs > 120) secs = 120;
    int rings = argc == 4 ? atoi(argv[3]) : 16;
    if (rings < 1 || rings > 16) rings = 16;
    if (p2p_trace_open(path, (unsigned)rings, 4096)) {
        fprintf(stderr, "trace_actors: cannot open %s\n", path);
        return 1;
    }
    if (p2p_trace_name_kind(1, "posthandshake") || p2p_trace_name_kind(2, "addpeer") ||
        p2p_trace_name_kind(3, "delpeer") || p2p_trace_name_kind(4, "tick"))
        return 1;
    if (p2p_mailbox_create(&mb_post, "posthandshake", sizeof(struct msg), 64, describe) ||
        p2p_mailbox_create(&mb_add, "addpeer", sizeof(struct msg), 64, describe) ||
        p2p_mailbox_create(&mb_del, "delpeer", sizeof(struct msg), 64, describe) ||
        p2p_mailbox_create(&mb_idle, "idle", sizeof(struct msg), 8, describe))
        return 1;
    struct msg one = {.kind = 1};
    if (p2p_mailbox_try_push(mb_idle, &one, sizeof one)) return 1;
    P2P_TRACE_EVENT(256, 0, 256); /* a kind without a name table entry */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    static p2p_thread_t run, pa, pb;
    if (p2p_thread_spawn(&run, "p2p-run", 0, run_loop, NULL)) return 1;
    uint64_t until = p2p_now_ns() + 5 * P2P_NS_PER_S;
    /* acquire: pairs with the release in run_loop */
    while (!atomic_load_explicit(&run_ready, memory_order_acquire) && p2p_now_ns() < until)
        usleep(1000);
    if (p2p_thread_spawn(&pa, "peer-aabbccdd", 0, peer_loop,
                         (void *)(uintptr_t)0xaabbccdd00000000ull) ||
        p2p_thread_spawn(&pb, "peer-11223344", 0, peer_loop,
                         (void *)(uintptr_t)0x1122334400000000ull))
        return 1;
    usleep(50 * 1000);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    uint64_t end = p2p_now_ns() + (uint64_t)secs * P2P_NS_PER_S;
    while (!stop && p2p_now_ns() < end) usleep(10 * 1000);
    p2p_thread_request_quit(&pa);
    p2p_thread_request_quit(&pb);
    (void)p2p_thread_join(&pa, NULL);
    (void)p2p_thread_join(&pb, NULL);
    p2p_thread_request_quit(&run);
    (void)p2p_thread_join(&run, NULL);
    p2p_trace_close();
    p2p_mailbox_destroy(mb_post);
    p2p_mailbox_destroy(mb_add);
    p2p_mailbox_destroy(mb_del);
    p2p_mailbox_destroy(mb_idle);
    return 0;
}
