/*
 * tools/node_metrics.h: one snapshot of devp2pd's metrics, shared by the
 * admin JSON-RPC method admin_metrics (tools/admin_rpc.c) and the
 * Prometheus endpoint (tools/metrics_http.c), so both read the same
 * sources at the same moment.  The Prometheus text carries every field of
 * the snapshot (all server counters, disconnects and rejections by reason,
 * discovery's shell and core counters and gauges, the mailboxes, the
 * process); admin_metrics returns a subset (tools/admin_rpc.h).  Sources:
 *   - the server's counters and peer counts (actors/server.h:
 *     p2p_server_get_stats, p2p_server_peer_counts for peers and the
 *     inbound/outbound split, however many peers there are),
 *   - discovery's counters and table (actors/discovery.h: p2p_discovery_info),
 *   - every live mailbox (core/mailbox.h: p2p_mailbox_foreach), summed by name,
 *   - the process: resident memory, threads, open descriptors (/proc/self).
 *
 * A node_metrics_t is the caller's scratch (large: it holds the discovery
 * snapshot); one per thread that collects.  Collection
 * calls the actors' any-thread APIs, which wait with a deadline.
 */
#ifndef P2P_TOOLS_NODE_METRICS_H
#define P2P_TOOLS_NODE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/discovery.h"
#include "actors/server.h"
#include "core/err.h"

#define NODE_METRICS_MAILBOX_NAMES 64

typedef struct node_metrics_mailbox {
    char name[32];
    unsigned count;         /* live mailboxes of this name */
    p2p_mailbox_stats_t st; /* summed (high_water: the maximum) */
} node_metrics_mailbox_t;

typedef struct node_metrics {
    bool have_server;
    p2p_server_stats_t srv;
    int peers;                  /* p2p_server_peer_counts (negative: its error, not known) */
    unsigned inbound, outbound; /* of all peers: outbound = peers - inbound */
    bool have_disc;
    p2p_discovery_info_t *disc; /* snapshot */
    size_t nmailboxes;
    node_metrics_mailbox_t mailboxes[NODE_METRICS_MAILBOX_NAMES];
    uint64_t rss_bytes; /* process: VmRSS */
    unsigned threads;   /* process: Threads */
    unsigned fds;       /* process: entries of /proc/self/fd */
} node_metrics_t;

/* Allocates a snapshot buffer.  Returns NULL when out of memory. */
node_metrics_t *node_metrics_new(void);
void node_metrics_free(node_metrics_t *m);

/* Takes a snapshot: srv and disc may be NULL (--bootnode, --nodiscover);
 * each actor is asked with deadline_ns (absolute, core/clock.h); a part
 * that does not answer in time is left out (have_* false). */
void node_metrics_collect(node_metrics_t *m, p2p_server_t *srv, p2p_discovery_t *disc,
                          uint64_t deadline_ns);

/* Writes m in the Prometheus text exposition format (0.0.4), names
 * devp2p_*, with HELP and TYPE lines, into out (NUL-terminated, truncated
 * to cap).  Returns the length it needed (excluding the NUL). */
size_t node_metrics_prometheus(const node_metrics_t *m, char *out, size_t cap);

#endif
