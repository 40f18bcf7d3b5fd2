/*
 * Log lines: the exact geth-style format, escaping of control characters
 * and of bytes that are not UTF-8, long line truncation on a character
 * boundary, the level filter, one write per line from many threads,
 * and the per-call-site rate limit (deterministic token bucket, and the
 * macro capping a flood).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/thread.h"
#include "core/utf8.h"
#include "tests/tu.h"

/* Reads everything available from the pipe into buf; returns length. */
static size_t slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    return n;
}

static unsigned count_lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Whether s is valid UTF-8 (core/utf8.h). */
static bool utf8_valid(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0, n; i < len; i += n)
        if ((n = p2p_utf8_seq_len((const uint8_t *)s + i, len - i)) == 0) return false;
    return true;
}

static void test_format(void)
{
    char line[P2P_LOG_LINE_MAX];
    uint64_t t = 1763712000123ull; /* 2025-11-21 08:00:00.123 UTC */
    int n = p2p_log_format(line, sizeof line, t, P2P_LOG_INFO, "Message text", "key=%s key2=%d",
                           "value", 2);
    const char *want = "INFO [11-21|08:00:00.123] Message text                             "
                       "key=value key2=2\n";
    CHECK(strcmp(line, want) == 0);
    CHECK(n == (int)strlen(want));
    if (strcmp(line, want)) printf("got:  %swant: %s", line, want);

    p2p_log_format(line, sizeof line, t, P2P_LOG_ERROR, "Failed", "%s", "");
    CHECK(strcmp(line, "ERROR[11-21|08:00:00.123] Failed\n") == 0);
    p2p_log_format(line, sizeof line, t + 3600000, P2P_LOG_WARN, "W", NULL);
    CHECK(strcmp(line, "WARN [11-21|09:00:00.123] W\n") == 0);
    p2p_log_format(line, sizeof line, t, P2P_LOG_CRIT, "C", "a=1");
    CHECK(strncmp(line, "CRIT [", 6) == 0);
    p2p_log_format(line, sizeof line, t, P2P_LOG_DEBUG, "D", "a=1");
    CHECK(strncmp(line, "DEBUG[", 6) == 0);
    p2p_log_format(line, sizeof line, t, P2P_LOG_TRACE, "T", "a=1");
    CHECK(strncmp(line, "TRACE[", 6) == 0);

    /* A message longer than the column: pairs follow after one space. */
    p2p_log_format(line, sizeof line, t, P2P_LOG_INFO,
                   "A message that is longer than forty characters", "k=v");
    CHECK(strstr(line, "forty characters k=v\n") != NULL);

    /* Hostile bytes cannot start a new line or send escapes. */
    p2p_log_format(line, sizeof line, t, P2P_LOG_WARN, "Bad\nhello", "name=%s", "ev\r\x1b[31mil");
    CHECK(strchr(line, '\n') == line + strlen(line) - 1);
    CHECK(strstr(line, "Bad\\x0ahello") != NULL);
    CHECK(strstr(line, "name=ev\\x0d\\x1b[31mil") != NULL);

    /* Bytes that are not UTF-8 (a name no one cleaned) and the C1
     * controls (U+009B is CSI, U+0085 a line break for log readers) are
     * escaped byte by byte; other characters stay. */
    p2p_log_format(line, sizeof line, t, P2P_LOG_WARN, "Odd\xff", "raw=%s name=%s ok=%s",
                   "\x9b\xc3",
                   "a\xc2\x9b"
                   "2J\xc2\x85"
                   "b",
                   "\xc3\xa9\xc2\xa0");
    CHECK(utf8_valid(line));
    CHECK(strstr(line, "Odd\\xff") != NULL);
    CHECK(strstr(line, "raw=\\x9b\\xc3 ") != NULL);
    CHECK(strstr(line, "name=a\\xc2\\x9b2J\\xc2\\x85b ") != NULL);
    CHECK(strstr(line, "ok=\xc3\xa9\xc2\xa0\n") != NULL);

    /* A cut line ends on a character or escape boundary: never half of a
     * two-byte character or of a \xNN before the "..." mark. */
    static char wide[1200], ctl[1200];
    for (size_t i = 0; i + 2 < sizeof wide; i += 2) memcpy(wide + i, "\xc3\xa9", 2);
    memset(ctl, 0x1b, sizeof ctl - 1);
    for (size_t off = 0; off < 4; off++) { /* every alignment of the cut */
        n = p2p_log_format(line, sizeof line, t, P2P_LOG_INFO, "Wide", "%.*sv=%s", (int)off, "xxx",
                           wide);
        CHECK(utf8_valid(line) && strcmp(line + n - 4, "...\n") == 0);
        n = p2p_log_format(line, sizeof line, t, P2P_LOG_INFO, "Ctl", "%.*sv=%s", (int)off, "xxx",
                           ctl);
        CHECK(n > 8 && strcmp(line + n - 8, "\\x1b...\n") == 0);
    }

    /* Long lines are cut, end in "...\n", fit the buffer. */
    static char big[5000];
    memset(big, 'a', sizeof big - 1);
    n = p2p_log_format(line, sizeof line, t, P2P_LOG_INFO, "Long", "v=%s", big);
    CHECK(n == P2P_LOG_LINE_MAX - 1);
    CHECK(strlen(line) == (size_t)n);
    CHECK(strcmp(line + n - 4, "...\n") == 0);
    n = p2p_log_format(line, 100, t, P2P_LOG_INFO, "Long", "v=%s",
                       "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
                       "\n\n\n\n\n\n\n\n\n\n\n");
    CHECK(n <= 99 && line[n - 1] == '\n' && strchr(line, '\n') == line + n - 1);
    /* A buffer too small for the header and pairs that are only spaces
     * (cut): the "..." mark stays inside the buffer (it was written 3
     * bytes before it). */
    struct {
        char pre[8], out[16], post[8];
    } g;
    memset(&g, 0x5a, sizeof g);
    static char spaces[2000];
    memset(spaces, ' ', sizeof spaces - 1);
    n = p2p_log_format(g.out, sizeof g.out, t, P2P_LOG_INFO, "", "%s", spaces);
    CHECK(n >= 4 && n < (int)sizeof g.out && strcmp(g.out + n - 4, "...\n") == 0);
    bool intact = true;
    for (size_t i = 0; i < 8; i++) intact &= g.pre[i] == 0x5a && g.post[i] == 0x5a;
    CHECK(intact);

    CHECK(p2p_log_parse_level("warn") == P2P_LOG_WARN);
    CHECK(p2p_log_parse_level("TRACE") == P2P_LOG_TRACE);
    CHECK(p2p_log_parse_level("3") == P2P_LOG_INFO);
    CHECK(p2p_log_parse_level("loud") == -1);
    CHECK(p2p_log_parse_level("9") == -1);
}

static void test_levels(int rd)
{
    char buf[8192];
    p2p_log_set_level(P2P_LOG_WARN);
    CHECK(p2p_log_get_level() == P2P_LOG_WARN);
    P2P_INFO("hidden", "a=%d", 1);
    P2P_DEBUG("hidden");
    P2P_TRACELOG("hidden");
    P2P_WARN("shown-warn", "a=%d", 2);
    P2P_ERROR("shown-error");
    P2P_CRIT("shown-crit", "x=%s", "y");
    slurp(rd, buf, sizeof buf);
    CHECK(count_lines(buf) == 3);
    CHECK(strstr(buf, "hidden") == NULL);
    CHECK(strstr(buf, "WARN [") && strstr(buf, "shown-warn") && strstr(buf, "a=2\n"));
    CHECK(strstr(buf, "ERROR[") && strstr(buf, "shown-error\n"));
    CHECK(strstr(buf, "CRIT [") && strstr(buf, "x=y\n"));
    p2p_log_set_level(P2P_LOG_TRACE);
    P2P_TRACELOG("now-shown");
    slurp(rd, buf, sizeof buf);
    CHECK(count_lines(buf) == 1 && strstr(buf, "TRACE[") && strstr(buf, "now-shown"));
    p2p_log_set_level(99);
    CHECK(p2p_log_get_level() == P2P_LOG_TRACE);
    p2p_log_set_level(P2P_LOG_INFO);
}

static void test_ratelimit(void)
{
    p2p_ratelimit_t rl = P2P_RATELIMIT_INIT(3, 100);
    CHECK(p2p_ratelimit_allow(&rl, 0));
    CHECK(p2p_ratelimit_allow(&rl, 0));
    CHECK(p2p_ratelimit_allow(&rl, 10));
    CHECK(!p2p_ratelimit_allow(&rl, 20));
    CHECK(!p2p_ratelimit_allow(&rl, 99));
    CHECK(p2p_ratelimit_allow(&rl, 100)); /* one token per 100 ms */
    CHECK(!p2p_ratelimit_allow(&rl, 150));
    CHECK(p2p_ratelimit_allow(&rl, 200));
    CHECK(p2p_ratelimit_take_suppressed(&rl) == 3);
    CHECK(p2p_ratelimit_take_suppressed(&rl) == 0);
    /* A long pause refills to the burst, not beyond. */
    unsigned ok = 0;
    for (int i = 0; i < 10; i++) ok += p2p_ratelimit_allow(&rl, 100000);
    CHECK(ok == 3);
}

struct flood {
    p2p_ratelimit_t *rl;
    _Atomic unsigned allowed;
};

static int flooder(p2p_thread_t *self, void *arg)
{
    struct flood *f = arg;
    for (int i = 0; i < 20000; i++)
        if (p2p_ratelimit_allow(f->rl, 5000)) atomic_fetch_add(&f->allowed, 1);
    (void)self;
    return 0;
}

static int logger(p2p_thread_t *self, void *arg)
{
    for (int i = 0; i < 500; i++) P2P_INFO("Concurrent line", "thread=%s i=%d", self->name, i);
    (void)arg;
    return 0;
}

static void test_threads(int rd)
{
    /* Threads hammering one bucket at the same instant get exactly the
     * burst between them. */
    p2p_ratelimit_t rl = P2P_RATELIMIT_INIT(7, 1000);
    struct flood f = {&rl, 0};
    p2p_thread_t t[4];
    for (int i = 0; i < 4; i++) CHECK_OK(p2p_thread_spawn(&t[i], "flood", 0, flooder, &f));
    for (int i = 0; i < 4; i++) CHECK_OK(p2p_thread_join(&t[i], NULL));
    CHECK(atomic_load(&f.allowed) == 7);
    CHECK(p2p_ratelimit_take_suppressed(&rl) == 4 * 20000 - 7);

    /* Lines from several threads never interleave. */
    for (int i = 0; i < 4; i++) {
        char name[P2P_THREAD_NAME_MAX];
        (void)p2p_thread_name(name, "log-%d", i);
        CHECK_OK(p2p_thread_spawn(&t[i], name, 0, logger, NULL));
    }
    static char buf[1 << 20];
    size_t n = 0;
    for (int joined = 0; joined < 4;) {
        n += slurp(rd, buf + n, sizeof buf - n);
        CHECK_OK(p2p_thread_join(&t[joined++], NULL));
    }
    n += slurp(rd, buf + n, sizeof buf - n);
    CHECK(count_lines(buf) == 2000);
    unsigned good = 0;
    for (char *s = buf, *e; (e = strchr(s, '\n')); s = e + 1) {
        *e = 0;
        good += strncmp(s, "INFO [", 6) == 0 && strstr(s, " thread=log-") && strstr(s, " i=") &&
                strstr(s + 6, "INFO") == NULL;
    }
    CHECK(good == 2000);
}

static void test_flood(int rd)
{
    /* A flood through one call site: burst lines now, the rest suppressed;
     * the suppressed count is reported on the next allowed line. */
    static char buf[1 << 16];
    uint64_t t0 = p2p_now_ns();
    for (int i = 0; i < 100000; i++)
        P2P_LOG_RL(5, 200, P2P_LOG_WARN, "Hostile packet", "from=%s n=%d", "10.0.0.1", i);
    uint64_t ms = (p2p_now_ns() - t0) / P2P_NS_PER_MS;
    slurp(rd, buf, sizeof buf);
    unsigned lines = count_lines(buf);
    CHECK(lines >= 5);
    CHECK(lines <= 5 + ms / 200 + 1);
    printf("flood: 100000 calls in %llu ms -> %u lines\n", (unsigned long long)ms, lines);
    struct timespec ts = {0, 250 * 1000 * 1000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 2; i++) P2P_LOG_RL(1, 60000, P2P_LOG_WARN, "Second site", "i=%d", i);
    slurp(rd, buf, sizeof buf);
    CHECK(count_lines(buf) == 1 && strstr(buf, "Second site") && !strstr(buf, "suppressed="));
    for (int i = 0; i < 3; i++) {
        P2P_LOG_RL(1, 100, P2P_LOG_WARN, "Third site", "i=%d", i);
        if (i == 1) nanosleep(&ts, NULL);
    }
    slurp(rd, buf, sizeof buf);
    CHECK(count_lines(buf) == 2);
    CHECK(strstr(buf, "i=2 suppressed=1\n") != NULL);
}

/* Lines whose write fails (/dev/full: ENOSPC) are counted lost, one each;
 * lines written are not. */
static void test_lost(int rd)
{
    char buf[4096];
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    CHECK(full >= 0);
    if (full < 0) return;
    p2p_log_set_level(P2P_LOG_INFO);
    slurp(rd, buf, sizeof buf); /* what the tests before left */
    uint64_t before = p2p_log_lost();
    int old = p2p_log_set_fd(full);
    for (int i = 0; i < 3; i++) P2P_INFO("lost line", "i=%d", i);
    CHECK(p2p_log_lost() == before + 3);
    CHECK(p2p_log_set_fd(old) == full);
    P2P_INFO("kept line", "");
    CHECK(p2p_log_lost() == before + 3);
    slurp(rd, buf, sizeof buf);
    CHECK(count_lines(buf) == 1);
    close(full);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    test_format();
    test_ratelimit();
    int p[2];
    CHECK(pipe2(p, O_NONBLOCK) == 0);
    fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
    CHECK(p2p_log_set_fd(p[1]) == 2);
    test_levels(p[0]);
    test_threads(p[0]);
    test_flood(p[0]);
    test_lost(p[0]);
    CHECK(p2p_log_set_fd(2) == p[1]);
    close(p[0]);
    close(p[1]);
    return tu_done("log");
}
