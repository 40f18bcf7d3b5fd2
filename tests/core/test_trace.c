/*
 * Trace rings: records and names as a reader sees them, wrap-around with
 * lost-record accounting, the runtime off switch, mailbox push/pop hooks,
 * one ring per thread, nothing recorded while paused (not even at thread
 * exit or rename), header validation (offsets that wrap around 2^64,
 * a header rewritten under an open reader), and a second process (fork)
 * that follows the file read-only while this one writes, checking
 * strictly increasing sequence numbers, intact records and that
 * overwritten records are counted, not returned; and a producer with a
 * busy-polling consumer, where every message's POP is stamped no earlier
 * than its PUSH; a segment that does not fit its file system (a small
 * tmpfs in a private mount namespace) is refused at open, not met later
 * as a SIGBUS.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"
#include "tests/core/mountns.h"
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
    CHECK(info.no_ring == 0 && info.no_ring_threads == 0);
    p2p_trace_reader_close(r2);
    p2p_trace_close();

    CHECK_OK(p2p_trace_open(path, 1, 64));
    P2P_TRACE_EVENT(KIND_TEST, 0, 0); /* holder takes the only ring */
    CHECK_OK(p2p_thread_spawn(&t[1], "p2p-epsilon", 0, tracer, NULL));
    CHECK_OK(p2p_thread_join(&t[1], NULL));
    CHECK_OK(p2p_trace_reader_open(&r, path));
    p2p_trace_reader_info(r, &info);
    CHECK(info.no_ring == 10 && info.no_ring_threads == 1);
    p2p_trace_reader_ring_name(r, name, 0);
    CHECK(strcmp(name, "holder") == 0);
    p2p_trace_reader_close(r);
    p2p_thread_unadopt(&hold);
    p2p_trace_close();
}

static _Atomic int pause_step;

/* Records one event, then (step 1, recording paused by the main thread)
 * renames itself and exits. */
static int pauser(p2p_thread_t *self, void *arg)
{
    (void)self, (void)arg;
    P2P_TRACE_EVENT(KIND_TEST, 0, 1);
    /* release/acquire: the main thread reads the ring after this */
    atomic_store_explicit(&pause_step, 1, memory_order_release);
    uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (atomic_load_explicit(&pause_step, memory_order_acquire) != 2 && p2p_now_ns() < until)
        usleep(1000);
    CHECK_OK(p2p_thread_rename("p2p-renamed"));
    return 0;
}

/* Paused means paused: a thread that renames itself or exits while
 * recording is off writes nothing (no STOP), so the rings keep exactly
 * what they held at the pause; its ring is still given back, and taken
 * by the next thread that records after the resume. */
static void test_pause(void)
{
    CHECK_OK(p2p_trace_open(path, 1, 64));
    atomic_store(&pause_step, 0);
    p2p_thread_t t;
    CHECK_OK(p2p_thread_spawn(&t, "p2p-pauser", 0, pauser, NULL));
    uint64_t until = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (atomic_load_explicit(&pause_step, memory_order_acquire) != 1 && p2p_now_ns() < until)
        usleep(1000);
    p2p_trace_reader_t *r;
    CHECK_OK(p2p_trace_reader_open(&r, path));
    static p2p_trace_rec_t recs[64];
    uint64_t lost = 0;
    size_t n = drain(r, 0, recs, 64, &lost);
    CHECK(n == 2 && recs[0].type == P2P_TRACE_START && recs[1].type == P2P_TRACE_CUSTOM);
    p2p_trace_enable(false);
    atomic_store_explicit(&pause_step, 2, memory_order_release);
    CHECK_OK(p2p_thread_join(&t, NULL));
    n = drain(r, 0, recs, 64, &lost);
    CHECK(n == 0 && lost == 0);
    if (n)
        printf("test_pause: %zu records written while paused, first %s\n", n,
               p2p_trace_type_name(recs[0].type));
    p2p_trace_enable(true);
    CHECK_OK(p2p_thread_spawn(&t, "p2p-after", 0, tracer, NULL));
    CHECK_OK(p2p_thread_join(&t, NULL));
    n = drain(r, 0, recs, 64, &lost);
    CHECK(n == 12 && recs[0].type == P2P_TRACE_START && strcmp(recs[0].name, "p2p-after") == 0);
    p2p_trace_info_t info;
    p2p_trace_reader_info(r, &info);
    CHECK(info.no_ring == 0);
    /* a re-opened segment is a new file: the reader of the old one can
     * tell, and still reads the old one (no SIGBUS from a truncation) */
    CHECK(!p2p_trace_reader_replaced(r, path));
    p2p_trace_close();
    CHECK_OK(p2p_trace_open(path, 1, 64));
    CHECK(p2p_trace_reader_replaced(r, path));
    CHECK(p2p_trace_reader_pending(r, 0) == 0 && p2p_trace_reader_next(r, recs, 64, 0, &lost) == 0);
    p2p_trace_reader_close(r);
    CHECK_OK(p2p_trace_reader_open(&r, path));
    CHECK(!p2p_trace_reader_replaced(r, path));
    CHECK(p2p_trace_reader_replaced(r, "/nonexistent/trace.ring"));
    p2p_trace_reader_close(r);
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

/* Writes len bytes of buf as the file bad (replacing it). */
static void put_file(const char *bad, const uint8_t *buf, size_t len)
{
    int fd = open(bad, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, buf, len, 0) == (ssize_t)len);
    close(fd);
}

/* Header offsets that wrap around 2^64 (offset + n * len overflows to a
 * small number) and counts beyond the tables are rejected at open; a
 * reader that validated a header keeps using its copy when the file's
 * header is rewritten afterwards. */
static void test_wrapping_offsets(void)
{
    char bad[160];
    snprintf(bad, sizeof bad, "%s/wrap.ring", dir);
    uint16_t mbid = p2p_mailbox_name_id("wrapbox");
    CHECK(mbid > 0);
    CHECK_OK(p2p_trace_name_kind(KIND_TEST, "test-kind"));
    CHECK_OK(p2p_trace_open(path, 2, 16));
    p2p_trace_close();
    int src = open(path, O_RDONLY);
    CHECK(src >= 0);
    struct stat st;
    CHECK(fstat(src, &st) == 0);
    size_t size = (size_t)st.st_size;
    uint8_t *orig = malloc(size), *buf = malloc(size);
    CHECK(orig && buf);
    CHECK(read(src, orig, size) == (ssize_t)size);
    close(src);
    p2p_trace_reader_t *r;
    put_file(bad, orig, size);
    CHECK_OK(p2p_trace_reader_open(&r, bad)); /* the unmodified copy is valid */
    p2p_trace_reader_close(r);

    const p2p_trace_file_hdr_t *oh = (const p2p_trace_file_hdr_t *)orig;
    struct {
        size_t field;  /* offsetof the uint64_t offset */
        uint64_t span; /* bytes of its region: n * len */
    } regions[] = {
        {offsetof(p2p_trace_file_hdr_t, rings_off),
         (uint64_t)oh->ring_count * sizeof(p2p_trace_ring_hdr_t)},
        {offsetof(p2p_trace_file_hdr_t, mailbox_names_off),
         (uint64_t)oh->mailbox_names * P2P_TRACE_NAME_LEN},
        {offsetof(p2p_trace_file_hdr_t, kind_names_off),
         (uint64_t)oh->kind_names * P2P_TRACE_NAME_LEN},
        {offsetof(p2p_trace_file_hdr_t, data_off),
         (uint64_t)oh->ring_count * oh->ring_cap * sizeof(p2p_trace_slot_t)},
    };
    int rejected = 0, tried = 0;
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        uint64_t span = regions[i].span;
        CHECK(span > 0 && span < size);
        /* all multiples of 8 (the ring and data offsets must be aligned) */
        const uint64_t bad_offs[] = {
            UINT64_MAX - 63, /* wraps to span - 64 */
            0 - 4096 + 8,    /* wraps to span - 4088 (or stays huge) */
            0 - span,        /* wraps to exactly 0 */
            0 - span + 8,    /* wraps to 8 */
            UINT64_MAX & ~7ull, (uint64_t)1 << 63, (uint64_t)size - span + 8, (uint64_t)size + 8,
        };
        for (size_t k = 0; k < sizeof bad_offs / sizeof bad_offs[0]; k++) {
            memcpy(buf, orig, size);
            memcpy(buf + regions[i].field, &bad_offs[k], 8);
            put_file(bad, buf, size);
            tried++;
            int rc = p2p_trace_reader_open(&r, bad);
            if (rc == 0) p2p_trace_reader_close(r);
            rejected += rc == P2P_EDECODE;
            if (rc != P2P_EDECODE)
                printf("field at %zu, offset %#llx: open gave %d\n", regions[i].field,
                       (unsigned long long)bad_offs[k], rc);
        }
    }
    CHECK(tried == 32 && rejected == tried);
    /* Name counts beyond what 16-bit ids can use, even with room in the
     * file for a small table at the offset. */
    const size_t counts[] = {offsetof(p2p_trace_file_hdr_t, mailbox_names),
                             offsetof(p2p_trace_file_hdr_t, kind_names)};
    for (size_t i = 0; i < 2; i++) {
        const uint32_t too_many[] = {UINT32_MAX, 65537, (uint32_t)(size / P2P_TRACE_NAME_LEN)};
        for (size_t k = 0; k < 3; k++) {
            memcpy(buf, orig, size);
            memcpy(buf + counts[i], &too_many[k], 4);
            put_file(bad, buf, size);
            CHECK_ERR(p2p_trace_reader_open(&r, bad), P2P_EDECODE);
        }
    }

    /* Validated once: rewriting the header under an open reader (the
     * mapping is shared with the file) changes nothing it reads. */
    put_file(bad, orig, size);
    CHECK_OK(p2p_trace_reader_open(&r, bad));
    int fd = open(bad, O_RDWR);
    CHECK(fd >= 0);
    uint64_t wrap_mb = 0 - 4096 + 8, wrap_kind = UINT64_MAX - 63, wrap_rings = UINT64_MAX - 63;
    uint32_t many = UINT32_MAX, ring_count = 4096;
    CHECK(pwrite(fd, &wrap_mb, 8, offsetof(p2p_trace_file_hdr_t, mailbox_names_off)) == 8);
    CHECK(pwrite(fd, &wrap_kind, 8, offsetof(p2p_trace_file_hdr_t, kind_names_off)) == 8);
    CHECK(pwrite(fd, &wrap_rings, 8, offsetof(p2p_trace_file_hdr_t, rings_off)) == 8);
    CHECK(pwrite(fd, &many, 4, offsetof(p2p_trace_file_hdr_t, mailbox_names)) == 4);
    CHECK(pwrite(fd, &many, 4, offsetof(p2p_trace_file_hdr_t, kind_names)) == 4);
    CHECK(pwrite(fd, &ring_count, 4, offsetof(p2p_trace_file_hdr_t, ring_count)) == 4);
    close(fd);
    char name[P2P_TRACE_NAME_LEN];
    p2p_trace_reader_mailbox_name(r, name, mbid);
    CHECK(strcmp(name, "wrapbox") == 0);
    p2p_trace_reader_mailbox_name(r, name, 60000);
    CHECK(name[0] == 0);
    p2p_trace_reader_kind_name(r, name, KIND_TEST);
    CHECK(strcmp(name, "test-kind") == 0);
    p2p_trace_reader_kind_name(r, name, 60000);
    CHECK(name[0] == 0);
    p2p_trace_info_t info;
    p2p_trace_reader_info(r, &info);
    CHECK(info.ring_count == 2 && info.ring_cap == 16);
    static p2p_trace_rec_t recs[64];
    uint64_t lost = 0;
    (void)drain(r, 1, recs, 64, &lost);
    CHECK(p2p_trace_reader_next(r, recs, 64, 2, &lost) == 0);
    p2p_trace_reader_close(r);
    unlink(bad);
    free(orig);
    free(buf);
}

/* ---- push time <= pop time ---------------------------------------------- */

/* The producer's describe hook takes ~1 us for odd messages: a producer
 * delayed (or descheduled) between publishing a message and stamping its
 * PUSH, while the consumer pops it at once. */
static __thread bool slow_describe;

static void describe_order(const void *msg, uint16_t *kind, uint64_t *peer, uint64_t *arg)
{
    describe(msg, kind, peer, arg);
    if (slow_describe && (*arg & 1)) {
        uint64_t until = p2p_now_ns() + 1000;
        while (p2p_now_ns() < until) {
        }
    }
}

struct order_ctx {
    int cpu[2]; /* producer's and consumer's CPU (-1: not pinned) */
    p2p_mailbox_t *mb;
    uint64_t n, deadline;
    _Atomic uint64_t popped;
    _Atomic int push_err;
};

/* Pins the calling thread to cpu (best effort; -1: no pinning), so that
 * producer and consumer really run at the same time. */
static void pin(int cpu)
{
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static int order_producer(p2p_thread_t *self, void *arg)
{
    struct order_ctx *c = arg;
    (void)self;
    pin(c->cpu[0]);
    slow_describe = true;
    for (uint64_t i = 0; i < c->n; i++) {
        uint64_t msg[3] = {KIND_TEST, 0x5151, i};
        int rc = p2p_mailbox_push(c->mb, msg, sizeof msg, c->deadline);
        if (rc) {
            atomic_store(&c->push_err, rc);
            break;
        }
    }
    return 0;
}

/* Busy-polls (no sleep) so that it pops each message as soon as it is
 * published: the window in which a POP could be stamped before its PUSH. */
static int order_consumer(p2p_thread_t *self, void *arg)
{
    struct order_ctx *c = arg;
    (void)self;
    uint64_t got = 0, msg[3];
    pin(c->cpu[1]);
    while (got < c->n && !atomic_load(&c->push_err) && p2p_now_ns() < c->deadline) {
        if (p2p_mailbox_try_pop(c->mb, msg, sizeof msg) == 0) got++;
    }
    atomic_store(&c->popped, got);
    return 0;
}

/* A producer and a busy-polling consumer with tracing on: every POP
 * record's time is >= its PUSH's time (messages are told apart by arg),
 * none is lost.  The PUSH used to be stamped after the message was
 * published, so a consumer on the other core could stamp its POP first
 * (a few per 100k messages here, hundreds on a loaded machine; nearly
 * every slow-described one). */
static void test_push_pop_order(void)
{
    uint64_t n = tu_scale(200000, 100000);
    unlink(path);
    /* rings: producer, consumer (+1 spare); each holds all its records
     * (pushes or pops, blocked-push records, START/STOP) */
    CHECK_OK(p2p_trace_open(path, 3, 1u << 19));
    struct order_ctx c = {.cpu = {-1, -1}, .n = n, .deadline = p2p_now_ns() + 60 * P2P_NS_PER_S};
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) >= 2) {
        for (int i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
            if (CPU_ISSET(i, &allowed)) c.cpu[k++] = i;
    }
    CHECK_OK(p2p_mailbox_create(&c.mb, "ordbox", 24, 256, describe_order));
    p2p_thread_t prod, cons;
    CHECK_OK(p2p_thread_spawn(&cons, "p2p-ordcons", 0, order_consumer, &c));
    CHECK_OK(p2p_thread_spawn(&prod, "p2p-ordprod", 0, order_producer, &c));
    CHECK_OK(p2p_thread_join(&prod, NULL));
    CHECK_OK(p2p_thread_join(&cons, NULL));
    CHECK(atomic_load(&c.push_err) == 0);
    CHECK(atomic_load(&c.popped) == n);

    p2p_trace_reader_t *r;
    CHECK_OK(p2p_trace_reader_open(&r, path));
    uint64_t *push_ns = calloc(n, sizeof *push_ns), *pop_ns = calloc(n, sizeof *pop_ns);
    p2p_trace_rec_t *recs = malloc(4096 * sizeof *recs);
    CHECK(push_ns && pop_ns && recs);
    uint64_t lost = 0, pushes = 0, pops = 0, bad = 0;
    uint16_t id = p2p_mailbox_id(c.mb);
    for (unsigned ring = 0; ring < 3; ring++) {
        size_t k;
        while ((k = p2p_trace_reader_next(r, recs, 4096, ring, &lost)) > 0) {
            for (size_t i = 0; i < k; i++) {
                const p2p_trace_rec_t *x = &recs[i];
                if (x->type != P2P_TRACE_PUSH && x->type != P2P_TRACE_POP) continue;
                if (x->mailbox != id || x->arg >= n || x->peer != 0x5151) {
                    bad++;
                    continue;
                }
                uint64_t *slot = x->type == P2P_TRACE_PUSH ? &push_ns[x->arg] : &pop_ns[x->arg];
                bad += *slot != 0;
                *slot = x->time_ns;
                pushes += x->type == P2P_TRACE_PUSH;
                pops += x->type == P2P_TRACE_POP;
            }
        }
    }
    uint64_t inversions = 0;
    for (uint64_t i = 0; i < n; i++) inversions += pop_ns[i] < push_ns[i];
    printf("push/pop order: %llu messages, %llu pops stamped before their push\n",
           (unsigned long long)n, (unsigned long long)inversions);
    CHECK(lost == 0 && bad == 0);
    CHECK(pushes == n && pops == n);
    CHECK(inversions == 0);
    free(push_ns);
    free(pop_ns);
    free(recs);
    p2p_trace_reader_close(r);
    p2p_mailbox_destroy(c.mb);
    p2p_trace_close();
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

/* A trace file larger than its file system's free room: open fails with
 * ENOSPC and leaves no file, instead of mapping a sparse file whose first
 * store to an unbacked page is a SIGBUS.  Runs in a child that enters a
 * private mount namespace with a 1 MiB tmpfs (needs root; skipped
 * otherwise). */
static void test_full_disk(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (tu_private_mounts() != 0) _exit(77);
        char mnt[160], file[200];
        snprintf(mnt, sizeof mnt, "%s/small", dir);
        snprintf(file, sizeof file, "%s/trace.ring", mnt);
        if (tu_mount_tmpfs(mnt, 1024) != 0) _exit(77);
        int rc = 0;
        /* 8 rings x 8192 records x 40 bytes: 2.5 MiB on a 1 MiB tmpfs */
        uint64_t size = p2p_trace_file_size(8, 8192);
        if (size < 2u << 20) rc |= 1;
        errno = 0;
        if (p2p_trace_open(file, 8, 8192) != P2P_ESYS || errno != ENOSPC) rc |= 2;
        if (access(file, F_OK) == 0 || errno != ENOENT) rc |= 4;
        if (p2p_trace_on()) rc |= 8;
        /* one that fits: open, and every page is backed */
        if (p2p_trace_open(file, 2, 1024) != 0) rc |= 16;
        struct stat st;
        if (stat(file, &st) != 0 || (uint64_t)st.st_blocks * 512 < p2p_trace_file_size(2, 1024))
            rc |= 32;
        p2p_trace_close();
        unlink(file);
        (void)umount2(mnt, MNT_DETACH);
        rmdir(mnt);
        _exit(rc);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        printf("test_full_disk: skipped (no private mount namespace: needs root)\n");
        return;
    }
    if (WEXITSTATUS(status) != 0) printf("test_full_disk: child status %d\n", WEXITSTATUS(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(p2p_trace_file_size(0, 64) == 0 && p2p_trace_file_size(1, 0) == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/p2p-trace-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/trace.ring", dir);
    /* The fork test runs first, while this process has one thread. */
    test_second_process();
    test_full_disk(); /* forks too */
    test_basic();
    test_threads();
    test_pause();
    test_bad_files();
    test_wrapping_offsets();
    test_push_pop_order();
    unlink(path);
    rmdir(dir);
    return tu_done("trace");
}
