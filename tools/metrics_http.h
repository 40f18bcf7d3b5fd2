/*
 * tools/metrics_http.h: devp2pd's Prometheus endpoint (--metrics.addr,
 * --metrics.port): plain HTTP/1.1 on one thread "p2p-metrics".
 *
 * GET /metrics and GET /debug/metrics/prometheus answer 200 with
 * node_metrics_prometheus (Content-Type: text/plain; version=0.0.4); other
 * paths 404, other methods than GET and HEAD 405 (with Allow: GET, HEAD),
 * a malformed or oversized request 400.  HEAD gets the head GET would
 * (its Content-Length too) and no body.
 * Out of memory: 500 when the metrics cannot be rendered, 503 when no
 * response can be built (that one needs no allocation).  Every response
 * carries Connection: close: once it is written the server shuts its
 * sending side and reads until the client closes (what the client sent
 * past the head is discarded, at most 256 KiB, within the deadline), so
 * unread input never resets the connection under the response.
 *
 * Bounds: METRICS_HTTP_CONNS connections served at once (more wait in the
 * listen backlog); each one's request head must arrive within
 * METRICS_HTTP_TIMEOUT_MS of its accept and fit in METRICS_HTTP_HEAD_MAX
 * bytes, and its response (built in memory, at most 16 MiB) must be
 * written within the same time, else it is closed; out of descriptors,
 * accepting pauses (METRICS_HTTP_ACCEPT_PAUSE_MS).  A stop request
 * interrupts a connection in progress.  Start and stop from the main thread.
 */
#ifndef P2P_TOOLS_METRICS_HTTP_H
#define P2P_TOOLS_METRICS_HTTP_H

#include <stdint.h>

#include "actors/discovery.h"
#include "actors/server.h"
#include "core/err.h"
#include "tools/node_metrics.h" /* node_endpoint_stats_t */
#include "tools/http_req.h"     /* METRICS_HTTP_HEAD_MAX, the request parser */
#include "wire/node.h"

#define METRICS_HTTP_TIMEOUT_MS 2000
#define METRICS_HTTP_CONNS 16 /* connections served concurrently */
/* accept failing for lack of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) pauses accepting this long (quit still ends it) */
#define METRICS_HTTP_ACCEPT_PAUSE_MS 200

typedef struct metrics_http metrics_http_t;

typedef struct metrics_http_config {
    p2p_ip_t ip;           /* listening address (required) */
    uint16_t port;         /* 0: any free port (see metrics_http_port) */
    p2p_server_t *srv;     /* may be NULL (--bootnode) */
    p2p_discovery_t *disc; /* may be NULL (--nodiscover) */
    /* where the server counts its accept pauses, shared with the admin
     * socket and shown as devp2p_*_accept_pauses_total and
     * devp2p_admin_evictions_total; NULL: a set of its own, not shown */
    node_endpoint_stats_t *endpoints;
    /* the static-node resolver, shown as devp2p_resolver_*_total; NULL:
     * none, not shown */
    const resolver_t *resolver;
} metrics_http_config_t;

/* Binds the socket and starts the thread.  msg receives a one-line reason
 * on failure.  Returns 0, P2P_ESYS (errno set: socket, bind, listen,
 * thread), P2P_ENOMEM. */
P2P_MUST_CHECK int metrics_http_start(metrics_http_t **out, char *msg, size_t msglen,
                                      const metrics_http_config_t *cfg);
/* The bound TCP port. */
uint16_t metrics_http_port(const metrics_http_t *h);
/* Accept pauses so far (METRICS_HTTP_ACCEPT_PAUSE_MS each).  Any thread. */
uint64_t metrics_http_accept_pauses(const metrics_http_t *h);
/* Stops and joins the thread, closes the sockets, frees h.  NULL is accepted. */
void metrics_http_stop(metrics_http_t *h);

#endif
