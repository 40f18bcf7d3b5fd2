/*
 * tests/actors/srv_util.h: helpers shared by the server tests (header-only,
 * static functions): keys and configs for loopback servers, deadline waits,
 * descriptor counting, log capture, and an event recorder subscribed through the
 * event callback (it runs on p2p-run; guarded by a mutex here because the
 * test thread reads it).
 */
#ifndef P2P_TESTS_SRV_UTIL_H
#define P2P_TESTS_SRV_UTIL_H

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/server.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "crypto/secp.h"
#include "tests/actors/rawpeer.h"
#include "tests/tu.h"

static inline void su_key(uint8_t priv[32])
{
    CHECK_OK(p2p_secp_keygen(priv));
}

/* Connects rp to a server on loopback port and runs the RLPx handshake
 * with a fresh key (timeout_ms).  True when both succeed. */
static inline bool su_dial(rawpeer_t *rp, uint16_t port, const uint8_t server_pub[64],
                           unsigned timeout_ms)
{
    uint8_t k[32];
    su_key(k);
    return rp_connect(rp, port) == 0 && rp_handshake(rp, k, server_pub, timeout_ms) == 0;
}

/* Margin on top of an expected close time: wide enough for a loaded
 * 2-core machine under sanitizers, still telling "closed" from "never
 * closed".  Which path closed a connection (an error at once or a
 * deadline) is told by the Disconnect reason and the server's counters,
 * not by the time. */
#define SU_CLOSE_MARGIN_MS 5000

/* Reads until the server's Disconnect or, without one, the close of the
 * connection (answering pings); returns the reason (-1: closed without
 * one) and checks that either came within ms (plus SU_CLOSE_MARGIN_MS). */
static inline int su_closed_within(rawpeer_t *rp, unsigned ms)
{
    uint64_t t0 = p2p_now_ns();
    int r = rp_expect_disconnect(rp, NULL, ms + SU_CLOSE_MARGIN_MS);
    uint64_t el = (p2p_now_ns() - t0) / P2P_NS_PER_MS;
    CHECK(r != -2);
    CHECK(el <= ms + SU_CLOSE_MARGIN_MS);
    return r;
}

/* A loopback TCP port that accepts connections (the kernel's backlog)
 * but never speaks: a dial to it connects and then hangs in the RLPx
 * handshake.  Returns the port; *fd is the listening socket to close. */
static inline uint16_t su_silent_port(int *fd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(*fd >= 0);
    if (*fd < 0) return 0;
    CHECK(bind(*fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(*fd, 16) == 0);
    CHECK(getsockname(*fd, (struct sockaddr *)&sa, &sl) == 0);
    return ntohs(sa.sin_port);
}

/* A loopback server config with an ephemeral port and short timeouts. */
static inline void su_config(p2p_server_config_t *cfg, const p2p_protocol_t *protos, size_t n)
{
    memset(cfg, 0, sizeof *cfg);
    su_key(cfg->priv);
    cfg->max_peers = 10;
    cfg->no_discovery = true;
    cfg->listen_ip = p2p_ip4(127, 0, 0, 1);
    cfg->listen_port = 0;
    cfg->protocols = protos;
    cfg->nprotocols = n;
    cfg->name = "devp2p-c-test";
}

/* The node record of a running server (127.0.0.1:port). */
static inline p2p_node_t su_node(p2p_server_t *s)
{
    p2p_node_t n;
    p2p_server_self(s, &n);
    n.ep.ip = p2p_ip4(127, 0, 0, 1);
    return n;
}

/* Waits until p2p_server_peer_count(s) == want or timeout_ms passes. */
static inline bool su_wait_peers(p2p_server_t *s, int want, unsigned timeout_ms)
{
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    while (p2p_now_ns() < end) {
        if (p2p_server_peer_count(s) == want) return true;
        usleep(2000);
    }
    return p2p_server_peer_count(s) == want;
}

/* Number of entries of a /proc directory, without "." and "..". */
static inline int su_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Number of open descriptors of this process. */
static inline int su_count_fds(void)
{
    int n = su_count_entries("/proc/self/fd");
    return n < 0 ? -1 : n - 1; /* the directory's own descriptor */
}

/* TSan's runtime starts a background thread of its own on first use. */
#if defined(__SANITIZE_THREAD__)
#define SU_EXTRA_THREADS 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SU_EXTRA_THREADS 1
#endif
#endif
#ifndef SU_EXTRA_THREADS
#define SU_EXTRA_THREADS 0
#endif

/* Number of threads of this process. */
static inline int su_count_threads(void)
{
    return su_count_entries("/proc/self/task");
}

static inline void su_count_mailbox(void *ctx, const p2p_mailbox_t *mb)
{
    (void)mb;
    ++*(size_t *)ctx;
}

/* Mailboxes between create and destroy in this process. */
static inline size_t su_live_mailboxes(void)
{
    size_t n = 0;
    p2p_mailbox_foreach(su_count_mailbox, &n);
    return n;
}

/* Event recorder (the server's event_cb). */
#define SU_EVENTS_MAX 4096
typedef struct su_events {
    pthread_mutex_t mu;
    size_t n, nmsg; /* nmsg: message events seen (only the first 256 are kept) */
    p2p_peer_event_t ev[SU_EVENTS_MAX];
} su_events_t;

static inline void su_events_init(su_events_t *e)
{
    pthread_mutex_init(&e->mu, NULL);
    e->n = 0;
    e->nmsg = 0;
}

static inline void su_events_cb(void *ctx, const p2p_peer_event_t *ev)
{
    su_events_t *e = ctx;
    pthread_mutex_lock(&e->mu);
    bool msg = ev->type == P2P_PEER_EVENT_MSGSEND || ev->type == P2P_PEER_EVENT_MSGRECV;
    if (msg) e->nmsg++;
    if (e->n < SU_EVENTS_MAX && (!msg || e->nmsg <= 256)) e->ev[e->n++] = *ev;
    pthread_mutex_unlock(&e->mu);
}

/* Finds the first event of type for peer id (NULL: any peer) and copies it
 * into *out; waits up to timeout_ms. */
static inline bool su_events_find(su_events_t *e, p2p_peer_event_t *out, p2p_peer_event_type_t type,
                                  const uint8_t *id, unsigned timeout_ms)
{
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    for (;;) {
        bool found = false;
        pthread_mutex_lock(&e->mu);
        for (size_t i = 0; i < e->n && !found; i++) {
            if (e->ev[i].type != type) continue;
            if (id && memcmp(e->ev[i].peer, id, 32) != 0) continue;
            if (out) *out = e->ev[i];
            found = true;
        }
        pthread_mutex_unlock(&e->mu);
        if (found) return true;
        if (p2p_now_ns() >= end) return false;
        usleep(2000);
    }
}

/* p2p_server_stop on a thread of its own (su_stop_start), while the test
 * plays the remote side; su_stop_join waits for it.  ns: how long the stop
 * took. */
typedef struct su_stopper {
    p2p_server_t *s;
    uint64_t ns;
    pthread_t th;
} su_stopper_t;

static inline void *su_stop_main(void *arg)
{
    su_stopper_t *st = arg;
    uint64_t t0 = p2p_now_ns();
    p2p_server_stop(st->s);
    st->ns = p2p_now_ns() - t0;
    return NULL;
}

static inline bool su_stop_start(su_stopper_t *st, p2p_server_t *s)
{
    st->s = s;
    st->ns = 0;
    return pthread_create(&st->th, NULL, su_stop_main, st) == 0;
}

static inline void su_stop_join(su_stopper_t *st)
{
    pthread_join(st->th, NULL);
}

/* The log captured in a file while a test reads it: su_log_capture sends
 * it there, su_log_line waits for a line, su_log_restore gives the log its
 * old descriptor back, su_log_close (after the servers stopped: a thread
 * may still write through the captured descriptor until then) removes the
 * file. */
typedef struct su_log {
    char path[40];
    int fd, old;
} su_log_t;

static inline bool su_log_capture(su_log_t *l)
{
    snprintf(l->path, sizeof l->path, "/tmp/p2p-testlog-XXXXXX");
    l->fd = mkstemp(l->path);
    CHECK(l->fd >= 0);
    l->old = l->fd >= 0 ? p2p_log_set_fd(l->fd) : -1;
    return l->fd >= 0;
}

/* Waits (timeout_ms at most) until the captured log has a line holding
 * needle; copies it (without its newline) into line and returns line, or
 * NULL. */
static inline const char *su_log_line(su_log_t *l, const char *needle, char *line, size_t cap,
                                      unsigned timeout_ms)
{
    static char text[1 << 16];
    uint64_t end = p2p_now_ns() + (uint64_t)timeout_ms * P2P_NS_PER_MS;
    for (unsigned i = 0; l->fd >= 0 && i < 100000; i++) {
        ssize_t n = pread(l->fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = 0;
        const char *at = strstr(text, needle);
        if (at) {
            while (at > text && at[-1] != '\n') at--;
            snprintf(line, cap, "%.*s", (int)strcspn(at, "\n"), at);
            return line;
        }
        if (p2p_now_ns() >= end) break;
        usleep(5000);
    }
    return NULL;
}

static inline void su_log_restore(su_log_t *l)
{
    if (l->fd >= 0) p2p_log_set_fd(l->old);
}

static inline void su_log_close(su_log_t *l)
{
    if (l->fd < 0) return;
    close(l->fd);
    unlink(l->path);
    l->fd = -1;
}

/* Waits until the stats counter at field offset reaches want. */
#define SU_WAIT_STAT(srv, field, want, timeout_ms)                                                 \
    ({                                                                                             \
        uint64_t su_end_ = p2p_now_ns() + (uint64_t)(timeout_ms)*P2P_NS_PER_MS;                    \
        p2p_server_stats_t su_st_;                                                                 \
        for (;;) {                                                                                 \
            p2p_server_get_stats((srv), &su_st_);                                                  \
            if (su_st_.field >= (want) || p2p_now_ns() >= su_end_) break;                          \
            usleep(2000);                                                                          \
        }                                                                                          \
        su_st_.field >= (want);                                                                    \
    })

#endif
