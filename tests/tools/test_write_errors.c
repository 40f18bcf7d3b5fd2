/*
 * tests/tools/test_write_errors.c: the stress report writers
 * (tools/stress_report.c: --out JSON, CSV and its summary CSV, --plot SVG)
 * when a write fails part way through the file.
 *
 * Two failures, no privileges needed:
 *   - ENOSPC: the report path is a symlink to /dev/full (opening succeeds,
 *     every write fails);
 *   - EFBIG: RLIMIT_FSIZE of FSIZE_LIMIT bytes with SIGXFSZ ignored (the
 *     writes past the limit fail).
 * For series of 0 to MAX_POINTS points (so that the failing write falls at
 * every place in the file, also on the last buffered write of the file,
 * which fclose alone does not see), each writer must return -1 with
 * errno the write's error, and leave no file at the path (nor a summary
 * file): no partial report.  Without a limit the same reports are written
 * whole (control).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/tu.h"
#include "tools/stress.h"

enum {
    MAX_POINTS = 400,
    FSIZE_LIMIT = 3000, /* bytes: every report of more than a few points is larger */
};

static char dir[64];

static void fill(stress_stats_t *s, size_t n)
{
    memset(s, 0, sizeof *s);
    s->mode = "hold";
    snprintf(s->target, sizeof s->target, "127.0.0.1:30303");
    s->attempts = n + 1;
    s->successes = n;
    for (size_t i = 0; i < n; i++) {
        stress_point_t p = {.t = (double)i * 0.25,
                            .live = (unsigned)(i * 7 % 1000),
                            .inflight = (unsigned)(i % 13),
                            .ok = i * 31 % 100000,
                            .msgs = i * 977 % 1000000,
                            .rss_kb = 1000 + i * 3};
        stress_series_add(s, &p);
    }
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

enum { W_JSON, W_CSV, W_SVG, W_N };
static const char *const ext[W_N] = {".json", ".csv", ".svg"};

static int write_one(stress_stats_t *s, int w, const char *path)
{
    errno = 0;
    return w == W_SVG ? stress_write_svg(s, path) : stress_write_out(s, NULL, 0, path);
}

/* Writes report w of n points to path (a symlink to /dev/full when full)
 * and checks the result.  Returns false on the first wrong one. */
static bool one(int w, size_t n, bool full, int want_errno)
{
    stress_stats_t s;
    fill(&s, n);
    char path[128], sp[256];
    snprintf(path, sizeof path, "%s/r%s", dir, ext[w]);
    stress_summary_path(sp, sizeof sp, path);
    unlink(path);
    unlink(sp);
    if (full && symlink("/dev/full", path) != 0) {
        perror("symlink");
        stress_stats_free(&s);
        return false;
    }
    int rc = write_one(&s, w, path);
    int e = errno;
    stress_stats_free(&s);
    bool good;
    if (want_errno == 0) {
        good = rc == 0 && exists(path) && (w != W_CSV || exists(sp));
    } else {
        /* the symlink itself may stay or go; a regular file may not */
        struct stat st;
        bool partial = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        good = rc == -1 && e == want_errno && !partial && !exists(sp);
    }
    if (!good)
        fprintf(
            stderr, "FAIL: %s report of %zu points (%s): rc %d errno %s, file %s%s\n", ext[w], n,
            want_errno == ENOSPC ? "/dev/full"
            : want_errno         ? "file size limit"
                                 : "no error",
            rc, strerror(e), exists(path) ? "left" : "absent", exists(sp) ? ", summary left" : "");
    tu_checks++;
    if (!good) tu_failures++;
    unlink(path);
    unlink(sp);
    return good;
}

/* Every writer for every series length; stops a writer at its first
 * failure (one line each). */
static void sweep(bool full, int want_errno, size_t from)
{
    for (int w = 0; w < W_N; w++)
        for (size_t n = from; n <= MAX_POINTS; n++)
            if (!one(w, n, full, want_errno)) break;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_write_errors.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* control: written whole */
    sweep(false, 0, 0);
    /* /dev/full: every write fails */
    sweep(true, ENOSPC, 0);
    /* a file size limit: the writes past FSIZE_LIMIT fail (the reports of
     * 150 points and more are larger in every format) */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = FSIZE_LIMIT;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    sweep(false, EFBIG, 150);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    rmdir(dir);
    return tu_done("write-errors");
}
