/*
 * Trace rings: records and names as a reader sees them, wrap-around with
 * lost-record accounting, the runtime off switch, mailbox push/pop hooks,
 * one ring per thread, header validation, and a second process (fork)
 * that follows the file read-only while this one writes, checking
 * strictly increasing sequence numbers, intact records and that
 * overwritten records are counted, not returned.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"
#include "tests/core/sanitize.h"
#include "tests/tu.h"

static char dir[64], path[128];

#define KIND_TEST 42
#define RING_CAP 4096 /* ring capacity of the second-process test */
#define KIND_DONE 43

/* Reads every new record of ring into recs (up to max); returns count. */
static size_t drain(p2p_trace_reader_t *r, unsigned ring, p2p_trace_rec_t *recs, size_t max,
                    uint64_t *lost)
{
    size_t n = 0, k;
    while (n < max && (k = p2p_trace_reader_next(r, recs + n, max - n, ring, lost)) > 0) n += k;
    return n;
}

static void describe(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    const uint64_t *m = msg;
    *kind = (uint16_t)m[0];
    *peer = m[1];
    *arg = m[2];
}

static void test_basic(void)
{
    p2p_thread_t me;
    CHECK_ERR(p2p_trace_open(path, 0, 64), P2P_EINVAL);
    CHECK_OK(p2p_trace_open(path, 4, 50)); /* capacity rounds to 64 */
    CHECK_ERR(p2p_trace_open(path, 4, 64), P2P_EEXIST);
    CHECK(p2p_trace_on());
    CHECK_OK(p2p_trace_name_kind(KIND_TEST, "test-kind"));
    CHECK_ERR(p2p_trace_name_kind(P2P_TRACE_KINDS, "x"), P2P_EINVAL);
    CHECK_OK(p2p_thread_adopt(&me, "trace-main"));

    p2p_trace_reader_t *r;
    CHECK_OK(p2p_trace_reader_open(&r, path));
    p2p_trace_info_t info;
    p2p_trace_reader_info(r, &info);
    CHECK(info.version == P2P_TRACE_VERSION && info.ring_count == 4 && info.ring_cap == 64);
    CHECK(info.pid == getpid());

    /* 200 events into a 64-record ring: the reader (started at 0) gets
     * the newest 64 and counts the rest (plus the ring's start record). */
    for (uint64_t i = 0; i < 200; i++) P2P_TRACE_EVENT(KIND_TEST, 0x1122334455667788ull, i);
    static p2p_trace_rec_t recs[4096];
    uint64_t lost = 0;
    size_t n = drain(r, 0, recs, 4096, &lost);
    CHECK(n == 64);
    CHECK(lost == 201 - 64);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        ok &= recs[i].seq == 201 - 64 + 1 + i;
        ok &= recs[i].type == P2P_TRACE_CUSTOM && recs[i].kind == KIND_TEST;
        ok &= recs[i].arg == recs[i].seq - 2 && recs[i].peer == 0x1122334455667788ull;
        ok &= recs[i].ring == 0 && recs[i].mailbox == 0;
        ok &= i == 0 || recs[i].time_ns >= recs[i - 1].time_ns;
    }
    CHECK(ok);
    char name[P2P_TRACE_NAME_LEN];
    CHECK(p2p_trace_reader_ring_name(r, name, 0) == 1);
    CHECK(strcmp(name, "trace-main") == 0);
    p2p_trace_reader_kind_name(r, name, KIND_TEST);
    CHECK(strcmp(name, "test-kind") == 0);
    CHECK(strcmp(p2p_trace_type_name(P2P_TRACE_POP), "pop") == 0);
    CHECK(p2p_trace_reader_next(r, recs, 16, 0, &lost) == 0);
    CHECK(p2p_trace_reader_next(r, recs, 16, 99, &lost) == 0);

    /* The off switch: nothing is recorded; on again: recorded. */
    p2p_trace_enable(false);
    CHECK(!p2p_trace_on());
    for (int i = 0; i < 10; i++) P2P_TRACE_EVENT(KIND_TEST, 0, 1000);
    CHECK(p2p_trace_reader_next(r, recs, 16, 0, &lost) == 0);
    p2p_trace_enable(true);
    P2P_TRACE_EVENT(KIND_TEST, 0, 2000);
    CHECK(p2p_trace_reader_next(r, recs, 16, 0, &lost) == 1);
    CHECK(recs[0].arg == 2000 && recs[0].seq == 202);

    /* Mailbox hooks: push and pop records with the mailbox id, the
     * described kind/peer/arg, and a name the reader can resolve. */
    p2p_mailbox_t *mb;
    CHECK_OK(p2p_mailbox_create(&mb, "tracebox", 24, 4, describe));
    uint64_t msg[3] = {KIND_TEST, 0xabcdef, 77}, out[3];
    CHECK_OK(p2p_mailbox_try_push(mb, msg, sizeof msg));
    CHECK_OK(p2p_mailbox_try_pop(mb, out, sizeof out));
    n = drain(r, 0, recs, 16, &lost);
    CHECK(n == 2);
    CHECK(recs[0].type == P2P_TRACE_PUSH && recs[1].type == P2P_TRACE_POP);
    for (int i = 0; i < 2; i++) {
        CHECK(recs[i].mailbox == p2p_mailbox_id(mb));
        CHECK(recs[i].kind == KIND_TEST && recs[i].peer == 0xabcdef && recs[i].arg == 77);
    }
    p2p_trace_reader_mailbox_name(r, name, p2p_mailbox_id(mb));
    CHECK(strcmp(name, "tracebox") == 0);
    for (int i = 0; i < 4; i++) CHECK_OK(p2p_mailbox_try_push(mb, msg, sizeof msg));
    CHECK_ERR(p2p_mailbox_try_push(mb, msg, sizeof msg), P2P_EFULL);
    n = drain(r, 0, recs, 16, &lost);
    CHECK(n == 5 && recs[4].type == P2P_TRACE_FULL);
    p2p_mailbox_destroy(mb);

    /* seek_end skips history. */
    P2P_TRACE_EVENT(KIND_TEST, 0, 1);
    p2p_trace_reader_seek_end(r);
    CHECK(p2p_trace_reader_next(r, recs, 16, 0, &lost) == 0);
    CHECK(p2p_trace_reader_pending(r, 0) == 0);
    P2P_TRACE_EVENT(KIND_TEST, 0, 2);
    CHECK(p2p_trace_reader_pending(r, 0) == 1);
    CHECK(p2p_trace_reader_pending(r, 99) == 0);
    p2p_trace_reader_close(r);
    p2p_thread_unadopt(&me);
    p2p_trace_close();
    CHECK(!p2p_trace_on());
    p2p_trace_enable(true); /* no segment: stays off */
    CHECK(!p2p_trace_on());
}

static int tracer(p2p_thread_t *self, void *arg)
{
    for (uint64_t i = 0; i < 10; i++) P2P_TRACE_EVENT(KIND_TEST, self->id, i);
    (void)arg;
    return 0;
}

static void test_threads(void)
{
    /* Each thread gets its own ring named after it; rings are released at
     * thread exit and reused; with no free ring, events are counted. */
    CHECK_OK(p2p_trace_open(path, 2, 64));
    p2p_thread_t t[3];
    CHECK_OK(p2p_thread_spawn(&t[0], "p2p-alpha", 0, tracer, NULL));
    CHECK_OK(p2p_thread_spawn(&t[1], "p2p-beta", 0, tracer, NULL));
    CHECK_OK(p2p_thread_join(&t[0], NULL));
    CHECK_OK(p2p_thread_join(&t[1], NULL));
    CHECK_OK(p2p_thread_spawn(&t[2], "p2p-gamma", 0, tracer, NULL));
    CHECK_OK(p2p_thread_join(&t[2], NULL));
    p2p_trace_reader_t *r;
    CHECK_OK(p2p_trace_reader_open(&r, path));
    static p2p_trace_rec_t recs[256];
    uint64_t lost = 0;
    unsigned starts = 0, stops = 0, customs = 0, named = 0;
    char name[16];
    bool gamma_seen = false;
    for (unsigned ring = 0; ring < 2; ring++) {
        size_t n = drain(r, ring, recs, 256, &lost);
        const char *owner = NULL;
        uint64_t owner_id = 0;
        for (size_t i = 0; i < n; i++) {
            starts += recs[i].type == P2P_TRACE_START;
            stops += recs[i].type == P2P_TRACE_STOP;
            customs += recs[i].type == P2P_TRACE_CUSTOM;
            CHECK(recs[i].ring == ring);
            /* START and STOP name their writer and carry its actor id; the
             * custom records between them are that actor's (arg = id) */
            if (recs[i].type == P2P_TRACE_START) {
                owner = recs[i].name;
                owner_id = recs[i].arg;
                CHECK(strncmp(owner, "p2p-", 4) == 0 && recs[i].peer == 0 && recs[i].mailbox == 0);
            } else if (recs[i].type == P2P_TRACE_CUSTOM) {
                CHECK(owner && i > 0);
                CHECK(recs[i].peer == owner_id && owner_id > 0); /* tracer: peer = its id */
                named += owner != NULL;
            } else if (recs[i].type == P2P_TRACE_STOP) {
                CHECK(owner && strcmp(recs[i].name, owner) == 0 && recs[i].arg == owner_id);
                owner = NULL;
            }
            if (recs[i].type != P2P_TRACE_START && recs[i].type != P2P_TRACE_STOP)
                CHECK(recs[i].name[0] == 0);
        }
        uint32_t gen = p2p_trace_reader_ring_name(r, name, ring);
        if (strcmp(name, "p2p-gamma") == 0) {
            gamma_seen = true;
            CHECK(gen >= 2); /* the ring was reused */
        }
    }
    CHECK(lost == 0);
    CHECK(starts == 3 && stops == 3 && customs == 30 && named == 30);
    CHECK(gamma_seen);
    p2p_trace_reader_close(r);

    /* A foreign thread that recorded and then adopts gives its first ring
     * back; with every ring held by a live thread, a further thread's
     * events are counted as no_ring. */
    P2P_TRACE_EVENT(KIND_TEST, 0, 0); /* main, foreign: takes a ring */
    p2p_thread_t hold;
    CHECK_OK(p2p_thread_adopt(&hold, "holder")); /* releases it */
    P2P_TRACE_EVENT(KIND_TEST, 0, 0);            /* holder: takes one */
    CHECK_OK(p2p_thread_spawn(&t[0], "p2p-delta", 0, tracer, NULL));
    CHECK_OK(p2p_thread_join(&t[0], NULL)); /* delta: the other one */
    p2p_trace_reader_t *r2;
    CHECK_OK(p2p_trace_reader_open(&r2, path));
    p2p_trace_info_t info;
    p2p_trace_reader_info(r2, &info);
    CHECK(info.no_ring == 0);
    p2p_trace_reader_close(r2);
    p2p_trace_close();

    CHECK_OK(p2p_trace_open(path, 1, 64));
    P2P_TRACE_EVENT(KIND_TEST, 0, 0); /* holder takes the only ring */
    CHECK_OK(p2p_thread_spawn(&t[1], "p2p-epsilon", 0, tracer, NULL));
    CHECK_OK(p2p_thread_join(&t[1], NULL));
    CHECK_OK(p2p_trace_reader_open(&r, path));
    p2p_trace_reader_info(r, &info);
    CHECK(info.no_ring == 10);
    p2p_trace_reader_ring_name(r, name, 0);
    CHECK(strcmp(name, "holder") == 0);
    p2p_trace_reader_close(r);
    p2p_thread_unadopt(&hold);
    p2p_trace_close();
}

static void test_bad_files(void)
{
    p2p_trace_reader_t *r;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.ring", dir);
    CHECK_ERR(p2p_trace_reader_open(&r, bad), P2P_ESYS);
    int fd = open(bad, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    static uint8_t junk[8192];
    memset(junk, 0x5a, sizeof junk);
    CHECK(write(fd, junk, 16) == 16);
    CHECK_ERR(p2p_trace_reader_open(&r, bad), P2P_EDECODE); /* too short */
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    CHECK_ERR(p2p_trace_reader_open(&r, bad), P2P_EDECODE); /* no magic */
    /* A real header whose sizes do not match the file. */
    CHECK_OK(p2p_trace_open(path, 1, 16));
    p2p_trace_close();
    int src = open(path, O_RDONLY);
    CHECK(src >= 0);
    CHECK(read(src, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(src);
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, junk, sizeof junk, 0) == (ssize_t)sizeof junk);
    CHECK_ERR(p2p_trace_reader_open(&r, bad), P2P_EDECODE); /* truncated */
    p2p_trace_file_hdr_t *h = (p2p_trace_file_hdr_t *)junk;
    h->version = 99;
    CHECK(pwrite(fd, junk, sizeof junk, 0) == (ssize_t)sizeof junk);
    CHECK_ERR(p2p_trace_reader_open(&r, bad), P2P_EUNSUPPORTED);
    close(fd);
    unlink(bad);
}

/* ---- a second process follows the file live ---------------------------- */

/* The child: opens the file the parent created, tells it (ready fd) that
 * it starts at record 0, then follows the ring. */
static int follow(int ready, uint64_t total, uint64_t *seen_out, uint64_t *lost_out)
{
    p2p_trace_reader_t *r;
    uint64_t deadline = p2p_now_ns() + 60 * P2P_NS_PER_S;
    if (p2p_trace_reader_open(&r, path) != 0) return 32;
    if (p2p_trace_reader_pending(r, 0) != 0 || write(ready, "r", 1) != 1) {
        p2p_trace_reader_close(r);
        return 32;
    }
    static p2p_trace_rec_t recs[512];
    uint64_t seen = 0, lost = 0, last = 0, pauses = 0;
    int err = 0;
    while (seen + lost < total && p2p_now_ns() < deadline) {
        size_t n = p2p_trace_reader_next(r, recs, 512, 0, &lost);
        for (size_t i = 0; i < n; i++) {
            const p2p_trace_rec_t *x = &recs[i];
            if (x->seq <= last) err |= 1; /* strictly increasing */
            last = x->seq;
            if (x->type == P2P_TRACE_CUSTOM &&
                (x->arg != x->seq - 2 || x->peer != ~x->arg || x->kind != KIND_TEST))
                err |= 2; /* torn or mixed record */
        }
        seen += n;
        if (n == 0) {
            usleep(200);
        } else if (seen / 20000 >= pauses) {
            /* Fall behind on purpose until the writer has lapped us (or
             * finished), however fast or slow the two processes run. */
            pauses++;
            uint64_t until = p2p_now_ns() + 20 * P2P_NS_PER_S;
            while (p2p_trace_reader_pending(r, 0) <= RING_CAP &&
                   seen + lost + p2p_trace_reader_pending(r, 0) < total && p2p_now_ns() < until)
                usleep(1000);
        }
    }
    if (seen + lost != total) err |= 4;
    if (lost == 0) err |= 8;
    if (seen < 1000) err |= 16;
    *seen_out = seen;
    *lost_out = lost;
    p2p_trace_reader_close(r);
    return err;
}

static void test_second_process(void)
{
    uint64_t n = tu_scale(400000, 100000);
    uint64_t total = n + 1; /* + the ring's start record */
    unlink(path);
    /* The segment exists before the fork, so the child maps it at once and
     * starts at record 0; the writer starts when the child says so. */
    CHECK_OK(p2p_trace_open(path, 1, RING_CAP));
    int pfd[2], rfd[2];
    CHECK(pipe(pfd) == 0 && pipe(rfd) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        close(rfd[0]);
        uint64_t res[3] = {0, 0, 0};
        res[0] = (uint64_t)follow(rfd[1], total, &res[1], &res[2]);
        ssize_t w = write(pfd[1], res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(pfd[1]);
    close(rfd[1]);
    struct pollfd pr = {.fd = rfd[0], .events = POLLIN};
    char c = 0;
    CHECK(poll(&pr, 1, 30000) == 1 && read(rfd[0], &c, 1) == 1 && c == 'r');
    close(rfd[0]);
    /* Writer: steady stream with short pauses so the reader interleaves. */
    for (uint64_t i = 0; i < n; i++) {
        p2p_trace_event(P2P_TRACE_CUSTOM, 0, KIND_TEST, ~i, i);
        if ((i & 1023) == 1023) usleep(100);
    }
    uint64_t res[3] = {99, 0, 0};
    ssize_t got = read(pfd[0], res, sizeof res);
    int status = 0;
    pid_t w = waitpid(pid, &status, 0);
    CHECK(got == (ssize_t)sizeof res);
    CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("second process: %llu records, read %llu live, %llu overwritten before read, "
           "flags %llu\n",
           (unsigned long long)total, (unsigned long long)res[1], (unsigned long long)res[2],
           (unsigned long long)res[0]);
    CHECK(res[0] == 0);
    CHECK(res[1] + res[2] == total);
    close(pfd[0]);
    p2p_trace_close();
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/p2p-trace-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/trace.ring", dir);
    /* The fork test runs first, while this process has one thread. */
    test_second_process();
    test_basic();
    test_threads();
    test_bad_files();
    unlink(path);
    rmdir(dir);
    return tu_done("trace");
}
