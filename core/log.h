/*
 * core/log.h: levelled, structured log lines in geth's terminal format.
 *
 *   INFO [11-21|08:00:00.000] Started P2P networking                   self=enode://.. port=30303
 *
 * Level (5 columns, so "ERROR[" has no space), local time with
 * milliseconds, the message (padded to 40 columns when key=value pairs
 * follow), then the pairs.  The pairs are a printf format written by the
 * caller ("peer=%s err=%s").  Every control character in the finished
 * line (C0 such as a newline in a hostile client name or an escape
 * sequence's ESC, DEL, and the C1 controls U+0080..U+009F such as CSI and
 * NEL) and every byte that is not part of valid UTF-8 is written as \xNN
 * (byte by byte), so a line is valid UTF-8 and one call is always exactly
 * one line.  Lines longer than P2P_LOG_LINE_MAX are cut on a character
 * (or escape) boundary and end in "...".
 *
 * Threads: any thread may log; each line is formatted on the caller's
 * stack and written with one write(2), so lines never interleave.  The
 * level and the output fd are process-wide (relaxed atomics; set them at
 * startup or whenever, a racing line goes to the old or the new fd).
 *
 * A line that cannot be written (a full disk or a file size limit under a
 * log file, a closed pipe) is lost: there is nowhere to report it, so it
 * is counted (p2p_log_lost) for the metrics.
 *
 * Hostile input: use P2P_LOG_RL (rate-limited per call site with a token
 * bucket) for anything a remote peer can trigger; suppressed lines are
 * counted and the next emitted line from that site carries
 * suppressed=N.
 */
#ifndef P2P_CORE_LOG_H
#define P2P_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum p2p_log_level {
    P2P_LOG_CRIT = 0,
    P2P_LOG_ERROR = 1,
    P2P_LOG_WARN = 2,
    P2P_LOG_INFO = 3,
    P2P_LOG_DEBUG = 4,
    P2P_LOG_TRACE = 5
};

#define P2P_LOG_LINE_MAX 1024 /* bytes per written line, including the newline */
#define P2P_LOG_MSG_JUST 40   /* message column width when pairs follow */

extern _Atomic int p2p__log_level;

/* Lines at levels above `level` are discarded (default P2P_LOG_INFO). */
void p2p_log_set_level(int level);
int p2p_log_get_level(void);
/* Parses "crit".."trace" or "0".."5"; returns the level or -1. */
int p2p_log_parse_level(const char *s);
/* Output fd (default 2, stderr).  Returns the previous fd. */
int p2p_log_set_fd(int fd);
/* Lines lost, in whole or in part, because their write failed (process-wide,
 * since start; any thread). */
uint64_t p2p_log_lost(void);

static inline bool p2p_log_enabled(int level)
{
    /* relaxed: a hint; a racing change affects at most a line or two */
    return level <= atomic_load_explicit(&p2p__log_level, memory_order_relaxed);
}

/* Formats and writes one line (no level check: use the macros).  Leading
 * spaces of the formatted pairs are ignored (the macros prefix the pairs
 * format with one, so that it is never empty). */
void p2p_log_write(int level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Builds the line (ending in '\n', NUL-terminated, at most outlen - 1
 * bytes) into out and returns its length.  Exposed for tests and tools.
 * wall_ms is Unix ms. */
int p2p_log_format(char *out, size_t outlen, uint64_t wall_ms, int level, const char *msg,
                   const char *kvfmt, ...) __attribute__((format(printf, 6, 7)));

/* Token bucket, one per call site: `burst` lines at once, then one per
 * `interval_ms`.  Thread-safe (a CAS on one word). */
typedef struct p2p_ratelimit {
    uint32_t burst;
    uint32_t interval_ms;
    /* (time of the last refill in ms << 20) | tokens; 0 = fresh.  relaxed
     * CAS: the bucket guards no other data. */
    _Atomic uint64_t state;
    _Atomic uint64_t suppressed; /* relaxed counter, reset when reported */
} p2p_ratelimit_t;

#define P2P_RATELIMIT_INIT(burst_, interval_ms_)                                                   \
    {                                                                                              \
        (burst_), (interval_ms_), 0, 0                                                             \
    }

/* Takes one token at now_ms (monotonic ms).  Returns true if allowed; if
 * false the caller drops the event and the suppression is counted. */
bool p2p_ratelimit_allow(p2p_ratelimit_t *rl, uint64_t now_ms);
/* Returns and clears the number of suppressed events. */
uint64_t p2p_ratelimit_take_suppressed(p2p_ratelimit_t *rl);

/* Rate-limited write: checks the bucket of rl at the real monotonic
 * time, appends suppressed=N when lines were dropped before. */
void p2p_log_write_rl(p2p_ratelimit_t *rl, int level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));

#define P2P_LOG(level, msg, ...)                                                                   \
    do {                                                                                           \
        if (p2p_log_enabled(level)) p2p_log_write((level), (msg), " " __VA_ARGS__);                \
    } while (0)
#define P2P_CRIT(msg, ...) P2P_LOG(P2P_LOG_CRIT, msg, __VA_ARGS__)
#define P2P_ERROR(msg, ...) P2P_LOG(P2P_LOG_ERROR, msg, __VA_ARGS__)
#define P2P_WARN(msg, ...) P2P_LOG(P2P_LOG_WARN, msg, __VA_ARGS__)
#define P2P_INFO(msg, ...) P2P_LOG(P2P_LOG_INFO, msg, __VA_ARGS__)
#define P2P_DEBUG(msg, ...) P2P_LOG(P2P_LOG_DEBUG, msg, __VA_ARGS__)
#define P2P_TRACELOG(msg, ...) P2P_LOG(P2P_LOG_TRACE, msg, __VA_ARGS__)

/* Rate-limited: at most `burst` lines at once and then one per
 * interval_ms from this call site. */
#define P2P_LOG_RL(burst, interval_ms, level, msg, ...)                                            \
    do {                                                                                           \
        static p2p_ratelimit_t p2p__rl_ = P2P_RATELIMIT_INIT(burst, interval_ms);                  \
        if (p2p_log_enabled(level)) p2p_log_write_rl(&p2p__rl_, (level), (msg), " " __VA_ARGS__);  \
    } while (0)

#endif
