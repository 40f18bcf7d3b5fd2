/*
 * tools/stress.h: shared state of `devp2p stress` (tools/cmd_stress.c, the
 * epoll engine and the modes; tools/stress_report.c, the target sampling
 * from /proc, the summary, JSON/CSV output and the SVG plot).
 *
 * Everything here is owned by the tool's single thread (the main thread):
 * the engine updates the counters, the report functions read them after
 * (or between) event-loop turns.  Limits: at most STRESS_MAX_REASONS
 * distinct failure labels (more are folded into "other"), one series point
 * per second of the run (STRESS_MAX_SECONDS).
 */
#ifndef P2P_TOOLS_STRESS_H
#define P2P_TOOLS_STRESS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire/node.h"

enum {
    STRESS_MAX_REASONS = 64,
    STRESS_MAX_SECONDS = 86400,
};

/* A growable list of latencies in microseconds.  A sample the list cannot
 * grow for (out of memory) is counted in dropped: the report shows the
 * count beside the quantiles, which are then of the n samples kept. */
typedef struct stress_lat {
    uint32_t *v;
    size_t n, cap;
    uint64_t dropped;
} stress_lat_t;

/* One labelled counter ("disconnect: too many peers"). */
typedef struct stress_reason {
    char label[64];
    uint64_t count;
} stress_reason_t;

/* One point per second of the run, and a last one for the partial second
 * at the end: the ok and fail columns sum to the totals. */
typedef struct stress_point {
    double t;          /* seconds since the start */
    uint32_t live;     /* peers past the Hello exchange */
    uint32_t inflight; /* connections in connect/handshake */
    uint64_t ok;       /* successes since the previous point */
    uint64_t fail;     /* unexpected failures since the previous point */
    uint64_t msgs;     /* pongs, echoes or discv4 replies during this second */
    uint64_t rss_kb;   /* target RSS (0 when not sampled) */
} stress_point_t;

/* The target process as sampled from /proc. */
typedef struct stress_proc {
    pid_t pid; /* 0: not local / not found */
    uint64_t rss_kb_start, rss_kb_end, rss_kb_max;
    uint64_t threads_start, threads_end, threads_max;
    uint64_t fds_start, fds_end, fds_max; /* not meaningful when fds_unknown */
    bool fds_unknown;        /* /proc/PID/fd not readable (another user's, or not dumpable) */
    uint64_t rss_kb_at_peak; /* RSS when the live peer count peaked */
    uint32_t peak_live;
    bool exited; /* gone or a zombie at a sample: not sampled since (the figures are its last) */
} stress_proc_t;

typedef struct stress_stats {
    const char *mode;
    char target[256];
    double elapsed_s; /* the whole run: the load, then the drain */
    double load_s;    /* the load phase (start to the stop): every per-second rate uses it */
    /* what had completed at the stop: the rates count only these (what
     * completes in the drain was started in the load but took longer) */
    struct {
        uint64_t successes, msgs_recv, pongs_recv, neighbors_replies;
    } at_stop;
    uint64_t attempts;            /* connections (or discv4 packets) started */
    uint64_t successes;           /* churn/hold/flood: Hello exchanges; discv4: pongs */
    uint64_t failures;            /* unexpected failures (sum of reasons[]) */
    uint64_t drops;               /* admitted live peers lost (hold, flood) */
    uint64_t refused_after_hello; /* hold/flood: dropped after the Hello, before admission;
                                   * churn: ended by the target's Disconnect before ours */
    uint64_t pings_sent;          /* hold: pings we sent */
    uint64_t pongs_recv;          /* hold: pongs received */
    uint64_t pings_late;          /* hold: pings skipped, the previous one still unanswered */
    uint64_t pings_recv;          /* pings from the target */
    uint64_t pongs_sent;          /* pongs we answered */
    uint64_t msgs_sent;           /* flood: subprotocol messages sent; discv4: requests */
    uint64_t msgs_recv;           /* flood: echoes received; discv4: replies */
    uint64_t bytes_sent;          /* flood: payload bytes sent */
    uint64_t adv_started;         /* adversarial connections opened */
    uint64_t adv_closed;          /* ... that the target closed (the expected outcome) */
    uint64_t adv_open;            /* ... left open after their misdeed, or still open at the end */
    uint64_t adv_timeout;         /* ... whose handshake stalled (no answer before the timeout) */
    uint64_t adv_failed;          /* ... that never connected (socket, bind or connect failed) */
    /* churn/hold/flood/adversarial: legitimate connections that failed before
     * the Hello exchange (attempts == successes + hs_failures at the end) */
    uint64_t hs_failures;
    uint64_t replies_missing; /* hold/flood: pongs or echoes still unanswered at the end */
    uint64_t full_pauses;     /* hold/flood: new peers paused after "too many peers" */
    /* discv4 */
    uint64_t findnodes_sent;    /* findnode requests */
    uint64_t neighbors_pkts;    /* Neighbors packets received */
    uint64_t neighbors_replies; /* findnodes answered (first Neighbors packet) */
    uint64_t bonded;            /* keys the target bonded with (answered its ping-back) */
    uint64_t bond_failed;       /* keys that gave up bonding (a failure if pinged back never) */
    uint64_t unmatched;         /* replies matching no outstanding request */
    uint32_t peak_live;         /* hold/flood: most admitted live peers at once */
    size_t nreasons;
    stress_reason_t reasons[STRESS_MAX_REASONS];
    stress_lat_t hs_lat;        /* connect start -> remote Hello */
    stress_lat_t admit_lat;     /* hold/flood: probe Ping after the Hello -> its Pong */
    stress_lat_t pong_lat;      /* ping sent -> pong received (or request -> reply) */
    stress_lat_t nb_lat;        /* discv4: findnode sent -> first Neighbors packet */
    stress_lat_t pong_lat_full; /* hold: pings sent with every peer up (no ramp-up) */
    stress_point_t *series;
    size_t nseries, series_cap;
    uint64_t series_ok, series_fail; /* successes and failures in the series so far */
    /* points not kept (the series could not grow, or past STRESS_MAX_SECONDS):
     * their successes and failures are in the next point kept */
    uint64_t series_dropped;
    stress_proc_t proc;
} stress_stats_t;

/* Set by the SIGINT/SIGTERM handler: stop the load and drain. */
extern volatile sig_atomic_t stress_stop;

/* Counts one unexpected failure under label (printf-style). */
void stress_fail(stress_stats_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Counts n unexpected failures under one label (printf-style). */
void stress_fail_n(stress_stats_t *s, uint64_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The load ends (the stop): sets s->load_s to the seconds since t0 and
 * takes s->at_stop, the completions the per-second rates count. */
void stress_load_end(stress_stats_t *s, uint64_t t0, uint64_t now);
/* Appends a latency (microseconds); when out of memory keeps the old list
 * and counts the sample in l->dropped. */
void stress_lat_add(stress_lat_t *l, uint64_t us);
/* The q-quantile (0..1) of l in milliseconds (sorts l); 0 when empty. */
double stress_lat_ms(stress_lat_t *l, double q);
/* Appends a series point (one per second, then the last partial one):
 * the caller sets t, live, inflight, msgs and rss_kb; ok and fail are the
 * successes and failures counted since the previous point.  A point that
 * cannot be kept is counted in s->series_dropped. */
void stress_series_add(stress_stats_t *s, stress_point_t *p);

/* Finds the pid of the local process listening on ip:port, TCP or (udp)
 * UDP (IPv4 or IPv6 socket, via /proc/net/{tcp,udp}{,6} and /proc/PID/fd):
 * a socket bound to ip itself, else one bound to 0.0.0.0 or ::; 0 if none
 * or not visible. */
pid_t stress_find_listener(const p2p_ip_t *ip, uint16_t port, bool udp);
/* Samples pid: VmRSS in KiB, threads, open descriptors (STRESS_FDS_UNKNOWN
 * when /proc/PID/fd cannot be read: another user's process, or one that is
 * not dumpable).  Returns false if the process is gone or has exited and
 * not been reaped (a zombie, whose RSS, threads and descriptors would read
 * as 0, 1 and 0). */
#define STRESS_FDS_UNKNOWN UINT64_MAX
bool stress_sample(pid_t pid, uint64_t *rss_kb, uint64_t *threads, uint64_t *fds);

/* Finds the target process and takes its starting sample into s->proc:
 * pid (from --pid) if non-zero, else the local process listening on port
 * (UDP if udp) when ip is loopback; none (pid 0) if not found or gone. */
void stress_proc_start(stress_stats_t *s, pid_t pid, const p2p_ip_t *ip, uint16_t port, bool udp);
/* Samples the target (if any) once: updates s->proc (peak_live/rss at
 * peak when holding and live > 0); *rss_out = RSS in KiB or 0.  A target
 * found gone (or a zombie) is marked exited and never sampled again. */
void stress_proc_sample(stress_stats_t *s, unsigned live, bool holding, uint64_t *rss_out);
/* One progress line on stderr (call on a terminal only). */
void stress_progress(const stress_stats_t *s, double t, double dur, unsigned live,
                     unsigned inflight, uint64_t per_s);

/* discv4 mode (tools/stress_discv4.c): --peers keys, each with its own UDP
 * socket (spread over 127.0.0.1..nsources when the target is on loopback),
 * flooding the target's UDP port with pre-signed pings and, after bonding,
 * findnodes. */
typedef struct stress_d4_config {
    p2p_node_t target;    /* ep.ip and ep.udp are used */
    unsigned peers;       /* keys (and sockets) */
    unsigned nsources;    /* 127.0.0.x source addresses (1: the kernel's choice) */
    unsigned window;      /* closed loop: pings outstanding per key (1..16) */
    unsigned concurrency; /* keys bonding at once */
    double rate;          /* requests per second in all (0: closed loop) */
    uint64_t duration_ns;
    bool pings, findnodes; /* request kinds (alternating when both) */
} stress_d4_config_t;

/* Runs the discv4 flood and fills st (st->mode and st->target set by the
 * caller).  tty: draw the progress line.  Returns 0, or -1 with a message
 * in err (setup failed: sockets, keys). */
int stress_discv4_run(const stress_d4_config_t *cfg, stress_stats_t *st, bool tty, char *err,
                      size_t errlen);

/* Prints the final summary (human readable) to stdout. */
void stress_print_summary(stress_stats_t *s);
/* Writes the summary and the series to path: JSON for *.json; CSV
 * otherwise, the series in path and the summary (name,value rows, the
 * JSON's fields with nested names joined by '.') in stress_summary_path's
 * file.  A report is written whole: it is built in memory first, and when
 * that runs out of memory nothing is written; when a write fails (a full
 * disk, a file size limit) the files written are removed (regular files
 * only: a device or a pipe is left alone).  Returns 0, or -1 with errno
 * set (ENOMEM: the report could not be built; else the failed call's).
 * Out: failed (failedlen bytes, truncated) the name of the file whose
 * write failed, path or its summary file; path when nothing was written. */
int stress_write_out(stress_stats_t *s, char *failed, size_t failedlen, const char *path);
/* The CSV summary's file for --out path: path without a trailing ".csv",
 * then ".summary.csv". */
void stress_summary_path(char *out, size_t outlen, const char *path);
/* Writes an SVG plot of live peers and per-second rates.  Returns 0, or -1
 * with errno set (the failed call's; a regular file left partial by a
 * failed write is removed). */
int stress_write_svg(const stress_stats_t *s, const char *path);
/* Frees the lists. */
void stress_stats_free(stress_stats_t *s);

#endif
