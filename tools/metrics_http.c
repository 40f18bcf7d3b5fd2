/*
 * tools/metrics_http.c: the Prometheus endpoint (see metrics_http.h).
 * Runs on "p2p-metrics": poll on the listening socket and the thread's
 * waiter (quit); each accepted connection is served to completion (read
 * the head, answer, close) with a deadline, still polling the waiter.
 */
#include "tools/metrics_http.h"

#include <errno.h>
#include <stdatomic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/netutil.h"
#include "core/thread.h"
#include "tools/http_req.h"
#include "tools/node_metrics.h"

#define COLLECT_DEADLINE_NS (1 * P2P_NS_PER_S)
#define BODY_INITIAL (64u * 1024)
#define BODY_MAX (16u * 1024 * 1024)

struct metrics_http {
    metrics_http_config_t cfg;
    int lfd;
    uint16_t port;
    p2p_thread_t th;
    _Atomic uint64_t accept_pauses; /* relaxed: a statistic, read by any thread */
    node_metrics_t *m;              /* p2p-metrics only */
    char *body;                     /* p2p-metrics only */
    size_t body_cap;
};

/* Waits until fd is ready for events or the deadline/quit.  Returns 0 when
 * ready, -1 otherwise. */
static int wait_fd(p2p_thread_t *self, int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        if (p2p_thread_should_quit(self) || p2p_now_ns() >= deadline_ns) return -1;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = p2p_waiter_poll(&self->waiter, &pfd, 1, deadline_ns);
        if (rc == P2P_ESYS && errno != EINTR) return -1;
        if (pfd.revents & (events | POLLHUP | POLLERR)) return 0;
    }
}

static int send_all(p2p_thread_t *self, int fd, const char *p, size_t n, uint64_t deadline_ns)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(self, fd, POLLOUT, deadline_ns) != 0) return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static void respond(struct metrics_http *h, int fd, uint64_t deadline_ns, int status,
                    const char *reason, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, type, len);
    if (send_all(&h->th, fd, head, (size_t)n, deadline_ns) == 0)
        (void)send_all(&h->th, fd, body, len, deadline_ns);
}

static void respond_text(struct metrics_http *h, int fd, uint64_t deadline_ns, int status,
                         const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason);
    respond(h, fd, deadline_ns, status, reason, "text/plain; charset=utf-8", body, (size_t)n);
}

/* Renders the metrics into h->body, growing it as needed.  Returns the
 * length or 0 when out of memory. */
static size_t render(struct metrics_http *h)
{
    node_metrics_collect(h->m, h->cfg.srv, h->cfg.disc, p2p_now_ns() + COLLECT_DEADLINE_NS);
    for (;;) {
        size_t need = node_metrics_prometheus(h->m, h->body, h->body_cap);
        if (need < h->body_cap) return need;
        size_t nc = h->body_cap * 2;
        while (nc <= need) nc *= 2;
        if (nc > BODY_MAX) return 0;
        char *nb = realloc(h->body, nc);
        if (!nb) return 0;
        h->body = nb;
        h->body_cap = nc;
    }
}

/* Reads the request head (untrusted: bounded size and time, parsed by
 * http_req_parse) and answers. */
static void serve(struct metrics_http *h, int fd)
{
    uint64_t deadline = p2p_now_ns() + (uint64_t)METRICS_HTTP_TIMEOUT_MS * P2P_NS_PER_MS;
    char req[METRICS_HTTP_HEAD_MAX];
    size_t len = 0;
    http_req_t rq;
    int status;
    while ((status = http_req_parse(&rq, req, len)) == 0) {
        ssize_t r = recv(fd, req + len, METRICS_HTTP_HEAD_MAX - len, 0);
        if (r == 0) return; /* closed before a full head */
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR) return;
            if (wait_fd(&h->th, fd, POLLIN, deadline) != 0) return;
            continue;
        }
        len += (size_t)r;
    }
    switch (status) {
    case 200:
        break;
    case 404:
        respond_text(h, fd, deadline, 404, "Not Found");
        return;
    case 405:
        respond_text(h, fd, deadline, 405, "Method Not Allowed");
        return;
    default:
        respond_text(h, fd, deadline, 400, "Bad Request");
        return;
    }
    size_t n = render(h);
    if (n == 0) {
        respond_text(h, fd, deadline, 500, "Internal Server Error");
        return;
    }
    respond(h, fd, deadline, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", h->body, n);
}

static int run(p2p_thread_t *self, void *arg)
{
    struct metrics_http *h = arg;
    uint64_t paused_until = 0;
    while (!p2p_thread_should_quit(self)) {
        if (p2p_now_ns() < paused_until) {
            (void)p2p_waiter_wait(&self->waiter, paused_until); /* quit ends it */
            continue;
        }
        struct pollfd pfd = {.fd = h->lfd, .events = POLLIN};
        int rc = p2p_waiter_poll(&self->waiter, &pfd, 1, p2p_now_ns() + P2P_NS_PER_S);
        if (rc == P2P_ESYS && errno != EINTR) /* poll itself failed: not again at once */
            paused_until = p2p_now_ns() + METRICS_HTTP_ACCEPT_PAUSE_MS * P2P_NS_PER_MS;
        if (rc == P2P_ESYS || !(pfd.revents & POLLIN)) continue;
        int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* the connection stays queued: polling again would spin */
                atomic_fetch_add_explicit(&h->accept_pauses, 1, memory_order_relaxed);
                P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Metrics: accept failed, pausing accepts",
                           "err=\"%s\" pause=200ms", strerror(e));
                paused_until = p2p_now_ns() + METRICS_HTTP_ACCEPT_PAUSE_MS * P2P_NS_PER_MS;
            }
            continue;
        }
        serve(h, fd);
        close(fd);
    }
    return 0;
}

int metrics_http_start(metrics_http_t **out, char *msg, size_t msglen,
                       const metrics_http_config_t *cfg)
{
    *out = NULL;
    struct metrics_http *h = calloc(1, sizeof *h);
    if (!h) return P2P_ENOMEM;
    h->cfg = *cfg;
    h->lfd = -1;
    h->m = node_metrics_new();
    h->body = malloc(BODY_INITIAL);
    h->body_cap = BODY_INITIAL;
    if (!h->m || !h->body) {
        metrics_http_stop(h);
        snprintf(msg, msglen, "out of memory");
        return P2P_ENOMEM;
    }
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &cfg->ip, cfg->port);
    char ipbuf[P2P_IP_STRLEN];
    p2p_ip_format(ipbuf, &cfg->ip);
    int one = 1;
    h->lfd = sl ? socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    if (!sl) errno = EINVAL;
    if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(h->lfd, (struct sockaddr *)&ss, sl) != 0 || listen(h->lfd, 16) != 0) {
        int e = errno;
        snprintf(msg, msglen, "cannot listen on metrics address %s port %u: %s", ipbuf, cfg->port,
                 strerror(e));
        metrics_http_stop(h);
        errno = e;
        return P2P_ESYS;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    p2p_ip_t bip;
    if (getsockname(h->lfd, (struct sockaddr *)&bound, &bl) != 0 ||
        p2p_ip_from_sockaddr(&bip, &h->port, (struct sockaddr *)&bound) != 0) {
        int e = errno;
        snprintf(msg, msglen, "cannot read the metrics socket address: %s", strerror(e));
        metrics_http_stop(h);
        errno = e;
        return P2P_ESYS;
    }
    if (p2p_thread_spawn(&h->th, "p2p-metrics", 0, run, h) != 0) {
        int e = errno;
        snprintf(msg, msglen, "cannot start the metrics thread");
        metrics_http_stop(h);
        errno = e;
        return P2P_ESYS;
    }
    *out = h;
    return 0;
}

uint16_t metrics_http_port(const metrics_http_t *h)
{
    return h->port;
}

uint64_t metrics_http_accept_pauses(const metrics_http_t *h)
{
    return atomic_load_explicit(&h->accept_pauses, memory_order_relaxed);
}

void metrics_http_stop(metrics_http_t *h)
{
    if (!h) return;
    if (h->th.started && !h->th.joined) {
        p2p_thread_request_quit(&h->th);
        (void)p2p_thread_join(&h->th, NULL);
    }
    if (h->lfd >= 0) close(h->lfd);
    node_metrics_free(h->m);
    free(h->body);
    free(h);
}
