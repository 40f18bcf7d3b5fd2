/*
 * Threads: name helper truncation, OS names read back with
 * pthread_getname_np, stack size honoured (pthread_getattr_np), the quit
 * protocol, join, current-actor info, and that many peer-sized threads are
 * cheap to run at once.
 */
#include <stdatomic.h>
#include <time.h>

#include "core/clock.h"
#include "core/thread.h"
#include "tests/core/sanitize.h"
#include "tests/tu.h"

/* TSan's pthread_create interceptor enlarges small stacks, so under TSan
 * only the lower bound is checked. */
#if defined(__SANITIZE_THREAD__)
#define STACK_SLACK (16u * 1024 * 1024)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STACK_SLACK (16u * 1024 * 1024)
#endif
#endif
#ifndef STACK_SLACK
#define STACK_SLACK (64u * 1024)
#endif

struct info {
    char os_name[32];
    char cur_name[P2P_THREAD_NAME_MAX];
    uint32_t cur_id;
    size_t stack;
    int self_ok;
    uint64_t loops;
};

static int report(p2p_thread_t *self, void *arg)
{
    struct info *in = arg;
    pthread_getname_np(pthread_self(), in->os_name, sizeof in->os_name);
    snprintf(in->cur_name, sizeof in->cur_name, "%s", p2p_thread_current_name());
    in->cur_id = p2p_thread_current_id();
    in->self_ok = p2p_thread_self() == self;
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, &in->stack);
        pthread_attr_destroy(&a);
    }
    /* Use a good part of the minimum stack to show it is really there. */
    volatile char buf[32 * 1024];
    for (size_t i = 0; i < sizeof buf; i += 512) buf[i] = (char)i;
    return 7 + buf[512];
}

/* Renames itself as a connection thread does once the peer is known. */
static int renamer(p2p_thread_t *self, void *arg)
{
    struct info *in = arg;
    in->self_ok = p2p_thread_rename("peer-0123456789abcdef") == P2P_ETOOBIG;
    pthread_getname_np(pthread_self(), in->os_name, sizeof in->os_name);
    snprintf(in->cur_name, sizeof in->cur_name, "%s", p2p_thread_current_name());
    in->cur_id = p2p_thread_current_id();
    in->loops = strcmp(self->name, in->cur_name) == 0;
    return 0;
}

static _Atomic unsigned looper_waits;

static int looper(p2p_thread_t *self, void *arg)
{
    struct info *in = arg;
    while (!p2p_thread_should_quit(self)) {
        in->loops++;
        atomic_fetch_add(&looper_waits, 1);
        p2p_waiter_wait(&self->waiter, p2p_now_ns() + 30 * P2P_NS_PER_S);
    }
    return 3;
}

static _Atomic unsigned peers_done;

static int peer(p2p_thread_t *self, void *arg)
{
    while (!p2p_thread_should_quit(self))
        p2p_waiter_wait(&self->waiter, p2p_now_ns() + 30 * P2P_NS_PER_S);
    atomic_fetch_add(&peers_done, 1);
    return 0;
}

int main(void)
{
    char name[P2P_THREAD_NAME_MAX];
    CHECK_OK(p2p_thread_name(name, "p2p-%s", "run"));
    CHECK(strcmp(name, "p2p-run") == 0);
    CHECK_ERR(p2p_thread_name(name, "peer-%s", "0123456789abcdef"), P2P_ETOOBIG);
    CHECK(strcmp(name, "peer-0123456789") == 0);
    CHECK(strlen(name) == 15);
    CHECK_OK(p2p_thread_name(name, "%s", "exactly-15-char"));
    CHECK(strcmp(name, "exactly-15-char") == 0);

    CHECK(p2p_thread_self() == NULL);
    CHECK(strcmp(p2p_thread_current_name(), "?") == 0);
    CHECK(p2p_thread_current_id() == 0);

    /* Name (truncated), stack size, current actor, return value. */
    p2p_thread_t t;
    struct info in = {0};
    CHECK_OK(p2p_thread_spawn(&t, "peer-deadbeefcafe0001", P2P_THREAD_STACK_MIN, report, &in));
    int rc = 0;
    CHECK_OK(p2p_thread_join(&t, &rc));
    CHECK(rc == 7);
    CHECK_ERR(p2p_thread_join(&t, &rc), P2P_ESTATE);
    CHECK(strcmp(in.os_name, "peer-deadbeefca") == 0);
    CHECK(strcmp(in.cur_name, "peer-deadbeefca") == 0);
    CHECK(strcmp(t.name, "peer-deadbeefca") == 0);
    CHECK(in.cur_id == t.id && t.id > 0);
    CHECK(in.self_ok);
    size_t want = P2P_THREAD_STACK_MIN * P2P_THREAD_STACK_SANITIZER_FACTOR;
    CHECK(t.stack_size == want);
    CHECK(in.stack >= want && in.stack <= want + STACK_SLACK);
    printf("stack: requested %u, set %zu, seen %zu\n", P2P_THREAD_STACK_MIN, t.stack_size,
           in.stack);

    /* Below the minimum is raised; a peer stack is honoured. */
    CHECK_OK(p2p_thread_spawn(&t, "small", 4096, report, &in));
    CHECK_OK(p2p_thread_join(&t, NULL));
    CHECK(in.stack >= P2P_THREAD_STACK_MIN * P2P_THREAD_STACK_SANITIZER_FACTOR);
    CHECK_OK(p2p_thread_spawn(&t, "p2p-peer", P2P_THREAD_STACK_PEER, report, &in));
    CHECK_OK(p2p_thread_join(&t, NULL));
    want = P2P_THREAD_STACK_PEER * P2P_THREAD_STACK_SANITIZER_FACTOR;
    CHECK(in.stack >= want && in.stack <= want + STACK_SLACK);
    CHECK(strcmp(in.os_name, "p2p-peer") == 0);
    CHECK_ERR(p2p_thread_spawn(&t, "x", 0, NULL, NULL), P2P_EINVAL);

    /* Rename: OS name, actor name and registry entry follow; id stays. */
    CHECK_ERR(p2p_thread_rename("main"), P2P_ESTATE);
    memset(&in, 0, sizeof in);
    CHECK_OK(p2p_thread_spawn(&t, "conn-in", P2P_THREAD_STACK_PEER, renamer, &in));
    uint32_t spawned_id = t.id;
    CHECK_OK(p2p_thread_join(&t, NULL));
    CHECK(in.self_ok);
    CHECK(strcmp(in.os_name, "peer-0123456789") == 0);
    CHECK(strcmp(in.cur_name, "peer-0123456789") == 0);
    CHECK(strcmp(t.name, "peer-0123456789") == 0);
    CHECK(in.loops == 1);
    CHECK(in.cur_id == spawned_id);

    /* Quit protocol: a sleeping thread leaves promptly.  Wait (bounded)
     * until it has reached its 30 s wait, however slowly it was scheduled. */
    struct info li = {0};
    CHECK_OK(p2p_thread_spawn(&t, "p2p-loop", 0, looper, &li));
    struct timespec ts = {0, 1000 * 1000};
    for (int i = 0; i < 5000 && atomic_load(&looper_waits) == 0; i++) nanosleep(&ts, NULL);
    CHECK(atomic_load(&looper_waits) >= 1);
    nanosleep(&ts, NULL);
    uint64_t t0 = p2p_now_ns();
    p2p_thread_request_quit(&t);
    p2p_thread_request_quit(&t);
    CHECK_OK(p2p_thread_join(&t, &rc));
    CHECK(rc == 3);
    CHECK(p2p_now_ns() - t0 < 5 * P2P_NS_PER_S);
    CHECK(li.loops >= 1);

    /* Quit requested before the thread ever waits: not lost. */
    CHECK_OK(p2p_thread_spawn(&t, "p2p-loop2", 0, looper, &li));
    p2p_thread_request_quit(&t);
    CHECK_OK(p2p_thread_join(&t, &rc));
    CHECK(rc == 3);

    /* Many cheap peer threads alive at once. */
    unsigned n = (unsigned)tu_scale(256, 64);
    p2p_thread_t *peers = calloc(n, sizeof *peers);
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        char pn[P2P_THREAD_NAME_MAX];
        (void)p2p_thread_name(pn, "peer-%08x", i * 0x01010101u);
        if (p2p_thread_spawn(&peers[i], pn, P2P_THREAD_STACK_PEER, peer, NULL) == 0) started++;
    }
    CHECK(started == n);
    for (unsigned i = 0; i < started; i++) p2p_thread_request_quit(&peers[i]);
    for (unsigned i = 0; i < started; i++) CHECK_OK(p2p_thread_join(&peers[i], NULL));
    CHECK(atomic_load(&peers_done) == n);
    free(peers);

    /* Adopting the main thread. */
    p2p_thread_t me;
    CHECK_OK(p2p_thread_adopt(&me, "main-thread-with-long-name"));
    CHECK(p2p_thread_self() == &me);
    CHECK(strcmp(p2p_thread_current_name(), "main-thread-wit") == 0);
    CHECK(p2p_thread_current_id() == me.id);
    p2p_thread_unadopt(&me);
    CHECK(p2p_thread_self() == NULL);
    return tu_done("thread");
}
