/*
 * tools/node_metrics.h: one snapshot of devp2pd's metrics, shared by the
 * admin JSON-RPC method admin_metrics (tools/admin_rpc.c) and the
 * Prometheus endpoint (tools/metrics_http.c), so both read the same
 * sources at the same moment.  The Prometheus text carries every field of
 * the snapshot (all server counters, disconnects and rejections by reason,
 * discovery's shell and core counters and gauges, the mailboxes, the
 * process); admin_metrics returns the server's and discovery's counters,
 * disconnects and rejections by reason name, and the process (not the
 * mailboxes; tools/admin_rpc.h).  Sources:
 *   - the server's counters and peer counts (actors/server.h:
 *     p2p_server_get_stats, p2p_server_peer_counts for peers and the
 *     inbound/outbound split, however many peers there are),
 *   - discovery's counters and table (actors/discovery.h: p2p_discovery_info),
 *   - every live mailbox (core/mailbox.h: p2p_mailbox_foreach), summed by name,
 *   - the process: resident memory, threads, open descriptors (/proc/self),
 *     log lines lost to failed writes (core/log.h: p2p_log_lost),
 *   - devp2pd's own endpoints (node_endpoint_stats_t below): accept pauses
 *     of the admin socket and the metrics server, admin clients evicted,
 *   - devp2pd's static-node resolver (tools/resolver.h: resolver_get_stats).
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
#include "tools/resolver.h"

#define NODE_METRICS_MAILBOX_NAMES 64

/* Counters of devp2pd's own endpoints, one set per process: the admin
 * socket (tools/admin_rpc.h) and the metrics server (tools/metrics_http.h)
 * each count into the set their config names, and every snapshot of that
 * set's node reads it.  Relaxed atomics: statistics, any thread. */
typedef struct node_endpoint_stats {
    _Atomic uint64_t admin_accept_pauses;   /* admin socket: accepts paused (no fd/memory) */
    _Atomic uint64_t admin_evictions;       /* admin clients closed to make room for a new one */
    _Atomic uint64_t metrics_accept_pauses; /* metrics server: accepts paused */
} node_endpoint_stats_t;

/* The server's counters (p2p_server_stats_t fields), each as X(field,
 * admin_metrics key, help): Prometheus names them devp2p_<field>_total,
 * admin_metrics "server".<key>.  Both carry every one. */
#define NODE_SERVER_COUNTERS(X)                                                                    \
    X(accepted, "accepted", "TCP connections accepted")                                            \
    X(accept_errors, "acceptErrors", "failed accept calls")                                        \
    X(accept_temp_errors, "acceptTempErrors",                                                      \
      "accepts failed for lack of descriptors or memory (paused)")                                 \
    X(pending_full, "pendingFull", "accepts that took the last pending-handshake slot")            \
    X(inbound_throttled, "inboundThrottled", "inbound connections from an IP seen within 30 s")    \
    X(inbound_restricted, "inboundRestricted", "inbound connections outside NetRestrict")          \
    X(inbound_history_full, "inboundHistoryFull",                                                  \
      "inbound connections refused: the 30 s per-IP history could not grow (out of memory)")       \
    X(inbound_history_evicted, "inboundHistoryEvicted",                                            \
      "30 s per-IP history entries dropped early to record a new IP (history full)")               \
    X(dials, "dials", "outbound connections attempted")                                            \
    X(dial_connect_failed, "dialConnectFailed", "outbound TCP connects that failed or timed out")  \
    X(dial_socket_errors, "dialSocketErrors",                                                      \
      "dials that got no socket (out of descriptors or memory)")                                   \
    X(handshake_timeouts, "handshakeTimeouts", "RLPx or Hello exchanges past their deadline")      \
    X(handshake_failed, "handshakeFailed", "RLPx handshakes rejected")                             \
    X(hello_failed, "helloFailed", "Hello exchanges rejected")                                     \
    X(peers_added, "peersAdded", "peers added")                                                    \
    X(peers_removed, "peersRemoved", "peers removed")                                              \
    X(read_timeouts, "readTimeouts", "peers dropped for read timeouts")                            \
    X(write_timeouts, "writeTimeouts", "peers dropped for write timeouts")                         \
    X(frame_errors, "frameErrors", "bad frames (MAC, size, snappy, decoding)")                     \
    X(net_errors, "netErrors", "socket errors and EOF on live peers")                              \
    X(proto_errors, "protoErrors", "subprotocol errors")                                           \
    X(msgs_in, "msgsIn", "subprotocol messages received")                                          \
    X(msgs_out, "msgsOut", "subprotocol messages sent")                                            \
    X(bytes_in, "bytesIn", "wire bytes received after the handshake")                              \
    X(bytes_out, "bytesOut", "wire bytes sent after the handshake")                                \
    X(pings_sent, "pingsSent", "base-protocol pings sent")                                         \
    X(pongs_sent, "pongsSent", "base-protocol pongs sent")                                         \
    X(send_full, "sendFull", "sends refused because the peer's queue was full")                    \
    X(send_toobig, "sendTooBig", "sends refused or dropped because the frame would be too large")  \
    X(send_unsent, "sendUnsent", "sent messages the connection ended before writing")              \
    X(events_dropped, "eventsDropped", "peer events a full subscriber mailbox refused")            \
    X(candidates_in, "candidatesIn", "discovery dial candidates offered")                          \
    X(candidates_refused, "candidatesRefused",                                                     \
      "discovery candidates dropped: the dialer's queue stayed full")                              \
    X(candidates_skipped, "candidatesSkipped",                                                     \
      "discovery candidates not dialled (no free slot, connected, recently dialled, ...)")         \
    X(dials_static, "dialsStatic", "dials started for static nodes")                               \
    X(dials_dyn, "dialsDyn", "dials started for discovery candidates")                             \
    X(resolves, "resolves", "static-node resolutions through discovery started")                   \
    X(resolves_failed, "resolvesFailed", "static-node resolutions that found no address")          \
    X(resolves_timed_out, "resolvesTimedOut",                                                      \
      "static-node resolutions not answered within 60 s (counted failed too)")                     \
    X(static_full, "staticFull", "static nodes not added: the set held its limit (1024)")          \
    X(trusted_full, "trustedFull", "trusted nodes not added: the set held its limit (1024)")       \
    X(internal_push_failures, "internalPushFailures",                                              \
      "internal mailbox pushes that failed (never expected)")                                      \
    X(mem_trims, "memTrims", "allocator trims after a connection peak")                            \
    X(conn_threads_spawned, "connThreadsSpawned", "connection threads created")                    \
    X(conn_threads_reused, "connThreadsReused", "connections run by a parked connection thread")   \
    X(conn_threads_expired, "connThreadsExpired", "parked connection threads that exited unused")  \
    X(conn_threads_failed, "connThreadsFailed",                                                    \
      "connections dropped: their thread or state could not be created")

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
    /* discovery was given but did not answer the snapshot: the error of
     * p2p_discovery_info (P2P_ENOMEM, P2P_ETIMEDOUT, P2P_ECLOSED, ...), else 0 */
    int disc_err;
    p2p_discovery_info_t *disc; /* snapshot */
    size_t nmailboxes;
    node_metrics_mailbox_t mailboxes[NODE_METRICS_MAILBOX_NAMES];
    bool have_endpoints; /* the three below: read from a node_endpoint_stats_t */
    uint64_t admin_accept_pauses, admin_evictions, metrics_accept_pauses;
    bool have_resolver; /* resolver: read from a resolver_t */
    resolver_stats_t resolver;
    uint64_t rss_bytes; /* process: VmRSS */
    unsigned threads;   /* process: Threads */
    unsigned fds;       /* process: entries of /proc/self/fd */
    uint64_t log_lost;  /* process: log lines whose write failed */
} node_metrics_t;

/* Allocates a snapshot buffer.  Returns NULL when out of memory. */
node_metrics_t *node_metrics_new(void);
void node_metrics_free(node_metrics_t *m);

/* Takes a snapshot: srv and disc may be NULL (--bootnode, --nodiscover),
 * ep and res too (no endpoint counters, no resolver); each actor is asked with deadline_ns
 * (absolute, core/clock.h); a part that does not answer in time is left out
 * (have_* false; discovery's error in disc_err). */
void node_metrics_collect(node_metrics_t *m, p2p_server_t *srv, p2p_discovery_t *disc,
                          const node_endpoint_stats_t *ep, const resolver_t *res,
                          uint64_t deadline_ns);

/* Writes m in the Prometheus text exposition format (0.0.4), names
 * devp2p_*, with HELP and TYPE lines, into out (NUL-terminated, truncated
 * to cap).  Returns the length it needed (excluding the NUL). */
size_t node_metrics_prometheus(const node_metrics_t *m, char *out, size_t cap);

#endif
