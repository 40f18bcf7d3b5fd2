/*
 * tools/metrics_http.c: the Prometheus endpoint (see metrics_http.h).
 * Runs on "p2p-metrics": one poll on the listening socket, up to
 * METRICS_HTTP_CONNS connections and the thread's waiter (quit).  Each
 * connection reads its request head, then writes its whole response
 * (built in memory), then shuts its sending side and reads (discarding)
 * until the client closes, all non-blocking and within its own deadline, so
 * an idle or slow client holds only its own slot and never delays a scrape.
 */
#include "tools/metrics_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
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
/* bytes read and discarded after the response (a request body, pipelined
 * requests) before the connection is closed anyway */
#define DRAIN_MAX (256u * 1024)

struct conn {
    int fd;              /* -1: free slot */
    uint64_t deadline;   /* accept + METRICS_HTTP_TIMEOUT_MS: head read and response written */
    size_t len;          /* head bytes received */
    char *out;           /* the response once built (NULL while reading; head: a 503) */
    size_t out_len, off; /* its size, bytes written */
    /* the response is written and the sending side shut: reading until
     * the client closes (a close with unread input would reset the
     * connection, and the client could lose the response's end) */
    bool draining;
    size_t drained; /* bytes discarded meanwhile (at most DRAIN_MAX) */
    char head[METRICS_HTTP_HEAD_MAX];
};

struct metrics_http {
    metrics_http_config_t cfg;
    int lfd;
    uint16_t port;
    p2p_thread_t th;
    node_endpoint_stats_t own; /* counters when the config names no shared set */
    node_endpoint_stats_t *ep; /* cfg.endpoints or &own; relaxed, read by any thread */
    node_metrics_t *m;         /* p2p-metrics only */
    char *body;                /* p2p-metrics only */
    size_t body_cap;
    struct conn conns[METRICS_HTTP_CONNS]; /* p2p-metrics only */
};

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) close(c->fd);
    if (c->out != c->head) free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->len = c->out_len = c->off = c->drained = 0;
    c->draining = false;
}

/* Builds c's response (head and body in one buffer; the head alone with
 * the body's Content-Length for a HEAD request).  Out of memory for
 * it, the response is a 503 written from c's head buffer (the request,
 * read already, is no longer needed), so the client still gets an
 * answer. */
static void respond(struct conn *c, bool head_only, int status, const char *reason,
                    const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n",
                     status, reason, type, len,
                     /* RFC 9110 15.5.6: a 405 names the methods allowed */
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (head_only) len = 0;
    c->out = malloc((size_t)n + len);
    if (!c->out) {
        static const char unavailable[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                          "Content-Type: text/plain; charset=utf-8\r\n"
                                          "Content-Length: 24\r\nConnection: close\r\n\r\n"
                                          "503 Service Unavailable\n";
        _Static_assert(sizeof unavailable - 1 <= METRICS_HTTP_HEAD_MAX, "fits the head buffer");
        memcpy(c->head, unavailable, sizeof unavailable - 1);
        c->out = c->head;
        c->out_len = sizeof unavailable - 1;
        c->off = 0;
        return;
    }
    memcpy(c->out, head, (size_t)n);
    if (len) memcpy(c->out + n, body, len);
    c->out_len = (size_t)n + len;
    c->off = 0;
}

static void respond_text(struct conn *c, bool head_only, int status, const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, reason);
    respond(c, head_only, status, reason, "text/plain; charset=utf-8", body, (size_t)n);
}

/* Renders the metrics into h->body, growing it as needed.  Returns the
 * length or 0 when out of memory. */
static size_t render(struct metrics_http *h)
{
    node_metrics_collect(h->m, h->cfg.srv, h->cfg.disc, h->cfg.endpoints, h->cfg.resolver,
                         p2p_now_ns() + COLLECT_DEADLINE_NS);
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

/* Reads more of c's request head (untrusted: bounded size and time, parsed
 * by http_req_parse); once it is complete, builds the answer.  Returns -1
 * to close c. */
static int conn_read(struct metrics_http *h, struct conn *c)
{
    ssize_t r = recv(c->fd, c->head + c->len, METRICS_HTTP_HEAD_MAX - c->len, 0);
    if (r == 0) return -1; /* closed before a full head */
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->len += (size_t)r;
    http_req_t rq;
    size_t n;
    int st = http_req_parse(&rq, c->head, c->len);
    bool head_only = st != 0 && st != 400 && http_req_is_head(&rq);
    switch (st) {
    case 0:
        break; /* more to come */
    case 200:
        if ((n = render(h)) == 0)
            respond_text(c, head_only, 500, "Internal Server Error");
        else
            respond(c, head_only, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", h->body,
                    n);
        break;
    case 404:
        respond_text(c, head_only, 404, "Not Found");
        break;
    case 405:
        respond_text(c, head_only, 405, "Method Not Allowed");
        break;
    default:
        respond_text(c, false, 400, "Bad Request");
        break;
    }
    return 0;
}

/* After the response: reads and discards what the client still sends
 * until it closes.  Returns -1 to close (its end, an error, or DRAIN_MAX
 * bytes discarded), else 0. */
static int conn_drain(struct conn *c)
{
    char buf[4096];
    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->drained += (size_t)r;
    return r == 0 || c->drained >= DRAIN_MAX ? -1 : 0;
}

/* Writes more of c's response.  Returns 1 when it is all written, 0 for
 * more later, -1 on an error. */
static int conn_write(struct conn *c)
{
    while (c->off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->off, c->out_len - c->off, MSG_NOSIGNAL);
        if (w > 0) {
            c->off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return w < 0 && errno == EAGAIN ? 0 : -1;
        }
    }
    return 1;
}

/* Accepts waiting connections into free slots.  Returns the time until
 * which accepting is paused (out of descriptors), else 0. */
static uint64_t accept_conns(struct metrics_http *h)
{
    for (int i = 0; i < METRICS_HTTP_CONNS; i++) {
        struct conn *c = &h->conns[i];
        if (c->fd >= 0) continue;
        int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* the connection stays queued: polling again would spin */
                atomic_fetch_add_explicit(&h->ep->metrics_accept_pauses, 1, memory_order_relaxed);
                P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Metrics: accept failed, pausing accepts",
                           "err=\"%s\" pause=200ms", strerror(e));
                return p2p_now_ns() + METRICS_HTTP_ACCEPT_PAUSE_MS * P2P_NS_PER_MS;
            }
            return 0; /* EAGAIN: none left; others: the next one may do */
        }
        c->fd = fd;
        c->deadline = p2p_now_ns() + (uint64_t)METRICS_HTTP_TIMEOUT_MS * P2P_NS_PER_MS;
    }
    return 0;
}

static int run(p2p_thread_t *self, void *arg)
{
    struct metrics_http *h = arg;
    uint64_t paused_until = 0;
    struct pollfd fds[1 + METRICS_HTTP_CONNS];
    while (!p2p_thread_should_quit(self)) {
        uint64_t now = p2p_now_ns(), deadline = now + P2P_NS_PER_S;
        bool paused = now < paused_until, full = true;
        if (paused && paused_until < deadline) deadline = paused_until;
        for (int i = 0; i < METRICS_HTTP_CONNS; i++) {
            struct conn *c = &h->conns[i];
            if (c->fd >= 0 && now >= c->deadline) conn_close(c); /* too slow */
            if (c->fd < 0) {
                full = false;
            } else if (c->deadline < deadline) {
                deadline = c->deadline;
            }
            fds[1 + i] =
                (struct pollfd){.fd = c->fd, .events = c->out && !c->draining ? POLLOUT : POLLIN};
        }
        /* a negative fd is skipped by poll: with every slot taken the next
         * connection waits in the backlog; while paused, the one that
         * cannot be accepted would wake the poll at once, forever */
        fds[0] = (struct pollfd){.fd = paused || full ? -1 : h->lfd, .events = POLLIN};
        int rc = p2p_waiter_poll(&self->waiter, fds, 1 + METRICS_HTTP_CONNS, deadline);
        if (rc == P2P_ESYS) {
            if (errno != EINTR) /* poll itself failed: not again at once */
                paused_until = p2p_now_ns() + METRICS_HTTP_ACCEPT_PAUSE_MS * P2P_NS_PER_MS;
            continue;
        }
        for (int i = 0; i < METRICS_HTTP_CONNS; i++) {
            struct conn *c = &h->conns[i];
            if (c->fd < 0 || !fds[1 + i].revents) continue;
            int r = 0;
            if (c->draining) {
                if (conn_drain(c) != 0) conn_close(c);
                continue;
            }
            if (!c->out) r = conn_read(h, c);
            if (r == 0 && c->out) r = conn_write(c); /* at once: usually all of it */
            if (r == 1) {
                /* all written: the client sees its end at once; its
                 * unread input (a body, pipelined requests) is drained
                 * rather than reset away with the response's last bytes */
                c->draining = true;
                r = shutdown(c->fd, SHUT_WR) == 0 ? conn_drain(c) : -1;
            }
            if (r != 0) conn_close(c);
        }
        if (fds[0].revents & POLLIN) paused_until = accept_conns(h);
    }
    return 0;
}

int metrics_http_start(metrics_http_t **out, char *msg, size_t msglen,
                       const metrics_http_config_t *cfg)
{
    *out = NULL;
    struct metrics_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(msg, msglen, "metrics server: out of memory");
        return P2P_ENOMEM;
    }
    h->cfg = *cfg;
    h->ep = cfg->endpoints ? cfg->endpoints : &h->own;
    h->lfd = -1;
    for (int i = 0; i < METRICS_HTTP_CONNS; i++) h->conns[i].fd = -1;
    h->m = node_metrics_new();
    h->body = malloc(BODY_INITIAL);
    h->body_cap = BODY_INITIAL;
    if (!h->m || !h->body) {
        metrics_http_stop(h);
        snprintf(msg, msglen, "metrics server: out of memory");
        return P2P_ENOMEM;
    }
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &cfg->ip, cfg->port);
    char ipbuf[P2P_IP_STRLEN];
    p2p_ip_format(ipbuf, &cfg->ip);
    int one = 1, off = 0;
    h->lfd = sl ? socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    if (!sl) errno = EINVAL;
    /* "::" takes IPv4 too, whatever net.ipv6.bindv6only says (as the RLPx
     * listener and the discovery socket do) */
    if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(h->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
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
        snprintf(msg, msglen, "cannot start the metrics thread: %s", strerror(e));
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
    return atomic_load_explicit(&h->ep->metrics_accept_pauses, memory_order_relaxed);
}

void metrics_http_stop(metrics_http_t *h)
{
    if (!h) return;
    if (h->th.started && !h->th.joined) {
        p2p_thread_request_quit(&h->th);
        (void)p2p_thread_join(&h->th, NULL);
    }
    for (int i = 0; i < METRICS_HTTP_CONNS; i++) conn_close(&h->conns[i]);
    if (h->lfd >= 0) close(h->lfd);
    node_metrics_free(h->m);
    free(h->body);
    free(h);
}
