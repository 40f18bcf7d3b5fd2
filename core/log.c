/*
 * core/log.c: geth-style log lines (see log.h).  Any thread.
 *
 * Each line is built in a stack buffer of P2P_LOG_LINE_MAX bytes, control
 * characters and bytes that are not UTF-8 escaped, cut (if it must be) on
 * a character or escape boundary, and written with a single write(2) (retried only for the
 * remainder of a short write), so concurrent lines never interleave.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/utf8.h"

/* relaxed: a threshold read on every log call, guards no other data */
_Atomic int p2p__log_level = P2P_LOG_INFO;
/* relaxed: a racing line goes to the old or the new fd (p2p_log_set_fd) */
static _Atomic int log_fd = 2;
static _Atomic uint64_t log_lost; /* relaxed: a statistic, no ordering */

static const char *const level_names[] = {"CRIT", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
static const char *const level_words[] = {"crit", "error", "warn", "info", "debug", "trace"};

void p2p_log_set_level(int level)
{
    if (level < P2P_LOG_CRIT) level = P2P_LOG_CRIT;
    if (level > P2P_LOG_TRACE) level = P2P_LOG_TRACE;
    /* relaxed: see p2p_log_enabled */
    atomic_store_explicit(&p2p__log_level, level, memory_order_relaxed);
}

int p2p_log_get_level(void)
{
    /* relaxed: see p2p_log_enabled */
    return atomic_load_explicit(&p2p__log_level, memory_order_relaxed);
}

int p2p_log_parse_level(const char *s)
{
    if (!s) return -1;
    for (int i = 0; i <= P2P_LOG_TRACE; i++)
        if (strcasecmp(s, level_words[i]) == 0) return i;
    if (s[0] >= '0' && s[0] <= '5' && s[1] == 0) return s[0] - '0';
    return -1;
}

uint64_t p2p_log_lost(void)
{
    /* relaxed: see log_lost */
    return atomic_load_explicit(&log_lost, memory_order_relaxed);
}

int p2p_log_set_fd(int fd)
{
    /* relaxed: a racing line goes to the old or the new fd */
    return atomic_exchange_explicit(&log_fd, fd, memory_order_relaxed);
}

/* A line being built: out[0, pos) written, at most cap bytes (the newline
 * and the NUL come after).  It grows by whole units (a character, a \xNN
 * escape, a run of ASCII) so that a cut never splits one: cut is the end
 * of the last unit that leaves room for the "..." mark; full is set once
 * a unit did not fit. */
struct line {
    char *out;
    size_t cap, pos, cut;
    bool full;
};

static void put_unit(struct line *l, const char *src, size_t n)
{
    if (l->full) return;
    if (n > l->cap - l->pos) {
        l->full = true;
        return;
    }
    memcpy(l->out + l->pos, src, n);
    l->pos += n;
    if (l->pos <= l->cap - 3) l->cut = l->pos;
}

/* ASCII the line itself writes (header, padding): every byte a unit. */
static void put_ascii(struct line *l, const char *src, size_t n)
{
    for (size_t i = 0; i < n && !l->full; i++) put_unit(l, src + i, 1);
}

/* Appends src[0..n) escaping, byte by byte as \xNN, every byte that is not
 * part of valid UTF-8 and every control character: C0, DEL and C1
 * (U+0080..U+009F, C2 80..C2 9F). */
static void put_escaped(struct line *l, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)src;
    for (size_t i = 0; i < n && !l->full;) {
        size_t len = p2p_utf8_seq_len(p + i, n - i);
        bool ctl = len && p2p_utf8_is_control(p + i, len);
        if (len && !ctl) {
            put_unit(l, src + i, len);
            i += len;
            continue;
        }
        size_t m = len ? len : 1; /* the bytes of a control, or one bad byte */
        for (size_t k = 0; k < m; k++) {
            char e[4] = {'\\', 'x', hex[p[i + k] >> 4], hex[p[i + k] & 15]};
            put_unit(l, e, sizeof e);
        }
        i += m;
    }
}

__attribute__((format(printf, 6, 0))) static int vformat(char *out, size_t outlen, uint64_t wall_ms,
                                                         int level, const char *msg,
                                                         const char *kvfmt, va_list ap,
                                                         const char *extra)
{
    if (outlen < 8) {
        if (outlen) out[0] = 0;
        return 0;
    }
    if (level < P2P_LOG_CRIT || level > P2P_LOG_TRACE) level = P2P_LOG_TRACE;
    /* keeps room for the newline and the NUL */
    struct line l = {.out = out, .cap = outlen - 2};
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    char hdr[64];
    int n = snprintf(hdr, sizeof hdr, "%-5s[%02d-%02d|%02d:%02d:%02d.%03u] ", level_names[level],
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(wall_ms % 1000));
    if (n > 0) {
        size_t hn = (size_t)n < sizeof hdr ? (size_t)n : sizeof hdr - 1;
        if (hn <= l.cap)
            put_ascii(&l, hdr, hn);
        else
            l.full = true; /* not even the header fits: only the mark */
    }

    char kv[P2P_LOG_LINE_MAX];
    int kn = kvfmt ? vsnprintf(kv, sizeof kv, kvfmt, ap) : 0;
    if (kn < 0) kn = 0;
    size_t kvlen = (size_t)kn < sizeof kv ? (size_t)kn : sizeof kv - 1;
    const char *kvs = kv;
    while (kvlen > 0 && *kvs == ' ') kvs++, kvlen--;
    size_t mlen = msg ? strlen(msg) : 0;
    put_escaped(&l, msg ? msg : "", mlen);
    bool pairs = kvlen > 0 || (extra && extra[0]);
    if (pairs) {
        for (size_t i = mlen; i < P2P_LOG_MSG_JUST; i++) put_ascii(&l, " ", 1);
        if (kvlen) {
            put_ascii(&l, " ", 1);
            put_escaped(&l, kvs, kvlen);
        }
        if (extra && extra[0]) {
            put_ascii(&l, " ", 1);
            put_escaped(&l, extra, strlen(extra));
        }
    }
    if (l.full || (size_t)kn >= sizeof kv) {
        /* cut after the last whole unit that leaves room for the mark
         * (cap >= 6: outlen >= 8) */
        l.pos = l.cut;
        memcpy(out + l.pos, "...", 3);
        l.pos += 3;
    }
    out[l.pos++] = '\n';
    out[l.pos] = 0;
    return (int)l.pos;
}

int p2p_log_format(char *out, size_t outlen, uint64_t wall_ms, int level, const char *msg,
                   const char *kvfmt, ...)
{
    va_list ap;
    va_start(ap, kvfmt);
    int n = vformat(out, outlen, wall_ms, level, msg, kvfmt, ap, NULL);
    va_end(ap);
    return n;
}

static void emit(const char *line, size_t n)
{
    /* relaxed: see p2p_log_set_fd */
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    while (n > 0) {
        ssize_t w = write(fd, line, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            /* nowhere to report a failing log: counted (relaxed: see log_lost) */
            atomic_fetch_add_explicit(&log_lost, 1, memory_order_relaxed);
            return;
        }
        line += w;
        n -= (size_t)w;
    }
}

void p2p_log_write(int level, const char *msg, const char *kvfmt, ...)
{
    char line[P2P_LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, kvfmt);
    int n = vformat(line, sizeof line, p2p_wall_ms(), level, msg, kvfmt, ap, NULL);
    va_end(ap);
    emit(line, (size_t)n);
}

#define RL_TOKEN_BITS 20
#define RL_TOKEN_MASK ((1ull << RL_TOKEN_BITS) - 1)

bool p2p_ratelimit_allow(p2p_ratelimit_t *rl, uint64_t now_ms)
{
    uint64_t burst = rl->burst ? rl->burst : 1;
    if (burst > RL_TOKEN_MASK) burst = RL_TOKEN_MASK;
    /* relaxed: the bucket guards no other data (see log.h) */
    uint64_t old = atomic_load_explicit(&rl->state, memory_order_relaxed);
    for (;;) {
        uint64_t tokens, last; /* state keeps last + 1 so that 0 means fresh */
        if (old == 0) {
            tokens = burst;
            last = now_ms;
        } else {
            tokens = old & RL_TOKEN_MASK;
            last = (old >> RL_TOKEN_BITS) - 1;
        }
        if (rl->interval_ms && now_ms > last) {
            uint64_t add = (now_ms - last) / rl->interval_ms;
            if (add) {
                tokens = tokens + add >= burst ? burst : tokens + add;
                last = tokens == burst ? now_ms : last + add * rl->interval_ms;
            }
        }
        if (tokens == 0) {
            /* relaxed: a counter */
            atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
            return false;
        }
        uint64_t nw = (last + 1) << RL_TOKEN_BITS | (tokens - 1);
        /* relaxed CAS: see the loop's first load */
        if (atomic_compare_exchange_weak_explicit(&rl->state, &old, nw, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
}

uint64_t p2p_ratelimit_take_suppressed(p2p_ratelimit_t *rl)
{
    /* relaxed: a counter */
    return atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
}

void p2p_log_write_rl(p2p_ratelimit_t *rl, int level, const char *msg, const char *kvfmt, ...)
{
    if (!p2p_ratelimit_allow(rl, p2p_now_ns() / P2P_NS_PER_MS)) return;
    char extra[48] = "";
    uint64_t sup = p2p_ratelimit_take_suppressed(rl);
    if (sup) snprintf(extra, sizeof extra, "suppressed=%llu", (unsigned long long)sup);
    char line[P2P_LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, kvfmt);
    int n = vformat(line, sizeof line, p2p_wall_ms(), level, msg, kvfmt, ap, extra);
    va_end(ap);
    emit(line, (size_t)n);
}
