/*
 * tests/fuzz/fuzz_trace.c: libFuzzer target for the trace file reader
 * (core/trace.c), which `devp2p trace --file` and `--datadir` run on a
 * file another process wrote: a damaged, truncated or crafted trace.ring.
 *
 * The input is the whole file: it is written to a private temporary file
 * (one per process, rewritten for each input) and opened with
 * p2p_trace_reader_open.  If the reader takes it, every ring is read to
 * its end in batches of 64 (its writer's name, each record's mailbox and
 * kind names), then read again after p2p_trace_reader_seek_end.
 *
 * Properties: no crash or sanitizer report; open returns 0 or one of its
 * documented errors; the header's ring count and capacity are within the
 * format's limits; no ring yields more records than its capacity in one
 * pass, none after seek_end; every name copied out is NUL-terminated
 * within its buffer.  Seeds: `trace_craft FILE small` (tests/tools), and
 * its cuts and header edits.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void cleanup(void)
{
    if (path[0]) unlink(path);
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_trace: %s\n", what);
    abort();
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

/* Reads ring to its end; returns the records read. */
static uint64_t drain(p2p_trace_reader_t *r, unsigned ring, uint32_t cap)
{
    p2p_trace_rec_t recs[64];
    uint64_t got = 0, lost = 0;
    /* bounded: a pass yields at most cap records (checked below) */
    for (uint64_t turns = 0; turns <= (uint64_t)cap / 64 + 2; turns++) {
        size_t n = p2p_trace_reader_next(r, recs, 64, ring, &lost);
        if (n > 64) fail("more records than asked for");
        if (n == 0) break;
        got += n;
        for (size_t i = 0; i < n; i++) {
            char name[P2P_TRACE_NAME_LEN];
            p2p_trace_reader_mailbox_name(r, name, recs[i].mailbox);
            if (!terminated(name, sizeof name)) fail("mailbox name not terminated");
            p2p_trace_reader_kind_name(r, name, recs[i].kind);
            if (!terminated(name, sizeof name)) fail("kind name not terminated");
            (void)p2p_trace_type_name(recs[i].type);
        }
    }
    if (got > cap) fail("a ring yielded more than its capacity");
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%.40s/fuzz_trace_%d", dir && dir[0] ? dir : "/tmp",
                 (int)getpid());
        atexit(cleanup);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail("cannot create the temporary file");
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) fail("cannot write the temporary file");
        off += (size_t)n;
    }
    close(fd);

    p2p_trace_reader_t *r = NULL;
    int rc = p2p_trace_reader_open(&r, path);
    if (rc) {
        if (rc != P2P_EDECODE && rc != P2P_EUNSUPPORTED && rc != P2P_ESYS && rc != P2P_ENOMEM)
            fail("undocumented error from open");
        return 0;
    }
    p2p_trace_info_t info;
    p2p_trace_reader_info(r, &info);
    if (info.ring_count == 0 || info.ring_count > P2P_TRACE_RINGS_MAX || info.ring_cap == 0 ||
        info.ring_cap > P2P_TRACE_RING_CAP_MAX)
        fail("header out of the format's limits");
    unsigned rings = info.ring_count < 64 ? info.ring_count : 64;
    for (unsigned ring = 0; ring < rings; ring++) {
        char tn[16];
        (void)p2p_trace_reader_ring_name(r, tn, ring);
        if (!terminated(tn, sizeof tn)) fail("ring name not terminated");
        (void)p2p_trace_reader_pending(r, ring);
        (void)drain(r, ring, info.ring_cap);
    }
    /* a ring index past the end yields nothing */
    uint64_t lost = 0;
    p2p_trace_rec_t one;
    if (p2p_trace_reader_next(r, &one, 1, info.ring_count, &lost) != 0)
        fail("records from a ring that does not exist");
    p2p_trace_reader_seek_end(r);
    for (unsigned ring = 0; ring < rings; ring++)
        if (drain(r, ring, info.ring_cap) != 0) fail("records after seek_end");
    p2p_trace_reader_close(r);
    return 0;
}
