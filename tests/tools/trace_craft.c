/*
 * tests/tools/trace_craft.c: writes a trace file with chosen records for
 * the `devp2p trace` file tests (test_trace_file.sh).
 *
 *   trace_craft FILE
 *
 * Rings and records (times T, T + 1 us, ... from one base):
 *   ring 0, thread "p2p-run" (the main thread): an event at T - 1 us, then
 *     POP i of mailbox "box\xff\xfe", kind 5 ("kind\xc3\x28"), peer 0xabc,
 *     arg i at T + i us (i < 100): each at exactly the time of its PUSH;
 *     then two records of types 33 and 200 (a corrupt or newer file), and
 *     its STOP.
 *   ring 1, thread "peer-\xc0\xaf" (overlong '/'): PUSH i at T + i us.
 * Names that are not valid UTF-8, equal push/pop times on two rings (ring 0,
 * the pops, sorts first at equal times), and types beyond the known ones.
 *
 *   trace_craft FILE reuse
 *
 * A reused ring: "peer-aaaa" pushes 3 messages (arg 0-2) to mailbox "box"
 * and exits; "peer-bbbb" then takes the same ring (1) and pushes 3 (arg
 * 10-12); ring 0 ("p2p-run") pops all 6.
 *   trace_craft FILE ctl
 *
 * Names that would drive a terminal: thread "p\x1b[2J\xc2\x9b" "1m" pushes
 * one message (kind 5) to mailbox "mb\x1b]0;t\x07\xff", and kind 5 is
 * named "k\xc2\x85x\x7f".
 *   trace_craft FILE handover
 *
 * A ring handed over after its first owner overwrote its own START:
 * "peer-old" records 10000 events (kind 5, arg i) in a ring of 8192 and
 * exits (its STOP), then "peer-new" takes the same ring (0) and records
 * one event (arg 99999).  The ring keeps peer-old's last 8188 events and
 * its STOP: more than the reader used to take in one batch (4096).
 *   trace_craft FILE small
 *
 * The first file's records in 2 rings of 8 (the rings wrap: most records
 * are overwritten), a file of 17 KiB: the trace reader's fuzz seeds.
 *   trace_craft FILE lap GOFILE
 *
 * Live, for a follower that is lapped across an owner change (2 rings of
 * 8): "peer-aaaa" records 3 events (kind 5, arg 1-3) in ring 0, prints
 * "ready" and waits for GOFILE to exist; then it exits (its STOP) and
 * "peer-bbbb" takes ring 0, records 100 events (arg 1000-1099) so that
 * the ring keeps none of the handover, prints "done" and keeps the ring
 * until GOFILE is removed.  Each wait is bounded (30 s).
 * Prints nothing; exits 0 on success.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"

#define MSGS 100
#define KIND 5
#define PEER 0xabcull

static uint64_t base_ns;
static uint16_t box;

static int producer(p2p_thread_t *self, void *arg)
{
    (void)self;
    (void)arg;
    for (uint64_t i = 0; i < MSGS; i++)
        p2p__trace_event_at(base_ns + i * 1000, P2P_TRACE_PUSH, box, KIND, PEER, i);
    return 0;
}

static int reuse_producer(p2p_thread_t *self, void *arg)
{
    (void)self;
    uint64_t first = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = first; i < first + 3; i++)
        p2p_trace_event(P2P_TRACE_PUSH, box, KIND, PEER, i);
    return 0;
}

static int reuse(void)
{
    p2p_thread_t me, a, b;
    box = p2p_mailbox_name_id("box");
    if (box == 0 || p2p_thread_adopt(&me, "p2p-run") != 0) return 1;
    p2p_trace_event(P2P_TRACE_CUSTOM, 0, 0, 0, 0); /* takes ring 0 */
    if (p2p_thread_spawn(&a, "peer-aaaa", 0, reuse_producer, (void *)(uintptr_t)0) != 0 ||
        p2p_thread_join(&a, NULL) != 0 ||
        p2p_thread_spawn(&b, "peer-bbbb", 0, reuse_producer, (void *)(uintptr_t)10) != 0 ||
        p2p_thread_join(&b, NULL) != 0)
        return 1;
    for (uint64_t i = 0; i < 6; i++)
        p2p_trace_event(P2P_TRACE_POP, box, KIND, PEER, i < 3 ? i : i + 7);
    p2p_thread_unadopt(&me);
    p2p_trace_close();
    return 0;
}

static int ctl_producer(p2p_thread_t *self, void *arg)
{
    (void)self;
    (void)arg;
    p2p_trace_event(P2P_TRACE_PUSH, box, KIND, PEER, 1);
    return 0;
}

static int ctl(void)
{
    p2p_thread_t th;
    box = p2p_mailbox_name_id("mb\x1b]0;t\x07\xff");
    if (box == 0 || p2p_trace_name_kind(KIND, "k\xc2\x85x\x7f") != 0 ||
        p2p_thread_spawn(&th,
                         "p\x1b[2J\xc2\x9b"
                         "1m",
                         0, ctl_producer, NULL) != 0 ||
        p2p_thread_join(&th, NULL) != 0)
        return 1;
    p2p_trace_close();
    return 0;
}

static int handover_producer(p2p_thread_t *self, void *arg)
{
    (void)self;
    uint64_t n = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < n; i++)
        p2p_trace_event(P2P_TRACE_CUSTOM, 0, KIND, PEER, n > 1 ? i : 99999);
    return 0;
}

static int handover(void)
{
    p2p_thread_t a, b;
    if (p2p_thread_spawn(&a, "peer-old", 0, handover_producer, (void *)(uintptr_t)10000) != 0 ||
        p2p_thread_join(&a, NULL) != 0 ||
        p2p_thread_spawn(&b, "peer-new", 0, handover_producer, (void *)(uintptr_t)1) != 0 ||
        p2p_thread_join(&b, NULL) != 0)
        return 1;
    p2p_trace_close();
    return 0;
}

static const char *go_file;

/* Waits (30 s at most) until go_file exists (want) or is gone. */
static void wait_go(bool want)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 3000 && (access(go_file, F_OK) == 0) != want; i++) nanosleep(&ts, NULL);
}

static int lap_producer(p2p_thread_t *self, void *arg)
{
    (void)self;
    bool first = arg == NULL;
    uint64_t base = first ? 1 : 1000, n = first ? 3 : 100;
    for (uint64_t i = 0; i < n; i++) p2p_trace_event(P2P_TRACE_CUSTOM, 0, KIND, PEER, base + i);
    printf(first ? "ready\n" : "done\n");
    fflush(stdout);
    wait_go(first);
    return 0;
}

static int lap(void)
{
    p2p_thread_t a, b;
    if (p2p_thread_spawn(&a, "peer-aaaa", 0, lap_producer, NULL) != 0 ||
        p2p_thread_join(&a, NULL) != 0 ||
        p2p_thread_spawn(&b, "peer-bbbb", 0, lap_producer, (void *)1) != 0 ||
        p2p_thread_join(&b, NULL) != 0)
        return 1;
    p2p_trace_close();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[2], "lap") == 0) {
        go_file = argv[3];
        if (p2p_trace_open(argv[1], 2, 8) != 0) {
            fprintf(stderr, "trace_craft: cannot create %s\n", argv[1]);
            return 1;
        }
        return lap();
    }
    bool small = argc == 3 && strcmp(argv[2], "small") == 0;
    bool hand = argc == 3 && strcmp(argv[2], "handover") == 0;
    if (argc != 2 && !(argc == 3 && (strcmp(argv[2], "reuse") == 0 || strcmp(argv[2], "ctl") == 0 ||
                                     small || hand))) {
        fprintf(stderr, "usage: trace_craft FILE [reuse|ctl|small|handover|lap GOFILE]\n");
        return 2;
    }
    if (p2p_trace_open(argv[1], small ? 2 : 4, small ? 8 : hand ? 8192 : 1024) != 0) {
        fprintf(stderr, "trace_craft: cannot create %s\n", argv[1]);
        return 1;
    }
    if (hand) return handover();
    if (argc == 3 && !small) return strcmp(argv[2], "ctl") == 0 ? ctl() : reuse();
    box = p2p_mailbox_name_id("box\xff\xfe");
    p2p_thread_t me, prod;
    if (box == 0 || p2p_trace_name_kind(KIND, "kind\xc3\x28") != 0 ||
        p2p_thread_adopt(&me, "p2p-run") != 0)
        return 1;
    base_ns = p2p_now_ns() + 1000000;
    p2p__trace_event_at(base_ns - 1000, P2P_TRACE_CUSTOM, 0, 0, 0, 0); /* takes ring 0 */
    if (p2p_thread_spawn(&prod, "peer-\xc0\xaf", 0, producer, NULL) != 0 ||
        p2p_thread_join(&prod, NULL) != 0)
        return 1;
    for (uint64_t i = 0; i < MSGS; i++)
        p2p__trace_event_at(base_ns + i * 1000, P2P_TRACE_POP, box, KIND, PEER, i);
    p2p__trace_event_at(base_ns + MSGS * 1000, 33, 0, 0, 0, 33);
    p2p__trace_event_at(base_ns + MSGS * 1000 + 1, 200, 0, 0, 0, 200);
    p2p_thread_unadopt(&me);
    p2p_trace_close();
    return 0;
}
