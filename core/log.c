/*
 * core/log.c: geth-style log lines (see log.h).  Any thread.
 *
 * Each line is built in a stack buffer of P2P_LOG_LINE_MAX bytes, control
 * bytes escaped, and written with a single write(2) (retried only for the
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

_Atomic int p2p__log_level = P2P_LOG_INFO;
static _Atomic int log_fd = 2;

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

int p2p_log_set_fd(int fd)
{
    /* relaxed: a racing line goes to the old or the new fd */
    return atomic_exchange_explicit(&log_fd, fd, memory_order_relaxed);
}

/* Appends src[0..n) to the line at *pos, escaping control bytes. */
static void put_escaped(char *out, size_t cap, size_t *pos, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n && *pos < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f) {
            if (*pos + 4 > cap) {
                *pos = cap;
                return;
            }
            out[(*pos)++] = '\\';
            out[(*pos)++] = 'x';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        } else {
            out[(*pos)++] = (char)c;
        }
    }
}

static int vformat(char *out, size_t outlen, uint64_t wall_ms, int level, const char *msg,
                   const char *kvfmt, va_list ap, const char *extra)
{
    if (outlen < 8) {
        if (outlen) out[0] = 0;
        return 0;
    }
    if (level < P2P_LOG_CRIT || level > P2P_LOG_TRACE) level = P2P_LOG_TRACE;
    size_t cap = outlen - 2; /* keeps room for the newline and the NUL */
    size_t pos = 0;
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    int n = snprintf(out, outlen, "%-5s[%02d-%02d|%02d:%02d:%02d.%03u] ", level_names[level],
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(wall_ms % 1000));
    pos = n > 0 && (size_t)n < cap ? (size_t)n : 0;

    char kv[P2P_LOG_LINE_MAX];
    int kn = kvfmt ? vsnprintf(kv, sizeof kv, kvfmt, ap) : 0;
    if (kn < 0) kn = 0;
    size_t kvlen = (size_t)kn < sizeof kv ? (size_t)kn : sizeof kv - 1;
    const char *kvs = kv;
    while (kvlen > 0 && *kvs == ' ') kvs++, kvlen--;
    size_t mlen = msg ? strlen(msg) : 0;
    put_escaped(out, cap, &pos, msg ? msg : "", mlen);
    bool pairs = kvlen > 0 || (extra && extra[0]);
    if (pairs) {
        for (size_t i = mlen; i < P2P_LOG_MSG_JUST && pos < cap; i++) out[pos++] = ' ';
        if (kvlen) {
            if (pos < cap) out[pos++] = ' ';
            put_escaped(out, cap, &pos, kvs, kvlen);
        }
        if (extra && extra[0]) {
            if (pos < cap) out[pos++] = ' ';
            put_escaped(out, cap, &pos, extra, strlen(extra));
        }
    }
    if (pos >= cap || (size_t)kn >= sizeof kv) {
        if (pos > cap) pos = cap;
        if (pos < 3) pos = 3; /* (cap >= 6: outlen >= 8) */
        memcpy(out + pos - 3, "...", 3);
    }
    out[pos++] = '\n';
    out[pos] = 0;
    return (int)pos;
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
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nowhere to report a failing log */
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
