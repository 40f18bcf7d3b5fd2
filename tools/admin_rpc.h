/*
 * tools/admin_rpc.h: devp2pd's admin JSON-RPC 2.0 server on a UNIX socket
 * (<datadir>/devp2pd.ipc), one thread "p2p-admin".
 *
 * Methods (geth's names and result shapes):
 *   admin_nodeInfo                 {id, name, enode, enr, ip, ports{discovery,
 *                                   listener}, listenAddr, protocols}: enode,
 *                                   enr, ip and the discovery port from the
 *                                   record discovery serves now (it moves
 *                                   with the endpoint others report for us)
 *   admin_peers                    [{enode, id, name, caps, network{localAddress,
 *                                   remoteAddress, inbound, trusted, static},
 *                                   protocols}]: at most ADMIN_RPC_PEERS_LISTED
 *                                   peers (admin_metrics counts them all)
 *   admin_addPeer [url]            true (static node: dialled and kept; a
 *                                   URL without an address, enode://ID,
 *                                   is looked up through discovery)
 *   admin_removePeer [url]         true (static removed, disconnected)
 *   admin_addTrustedPeer [url]     true
 *   admin_removeTrustedPeer [url]  true
 *   discv4_table                   {tableLen, lookups, initDone, buckets: [[{id,
 *                                   enode, seq, live, livenessChecks}]] (one
 *                                   array per bucket), counters: {discovery's
 *                                   P2P_DISCOVERY_COUNTERS}}
 *   debug_trace [true|false]       {file, recording}: resumes (true) or
 *                                   pauses (false) the recording of the
 *                                   actor trace rings, or (no params) says
 *                                   whether it records; a paused node keeps
 *                                   what its rings hold, so a reader can
 *                                   look at the moments before the pause.
 *                                   An error unless the node runs --trace
 *   admin_metrics                  {server: {every counter of
 *                                   NODE_SERVER_COUNTERS (tools/node_metrics.h:
 *                                   accepted, dials, peersAdded, ...),
 *                                   connThreadsParked, disconnectsSent,
 *                                   disconnectsReceived, connectionsRejected
 *                                   ({"reason": count}), peers, inbound,
 *                                   outbound}, discovery: {P2P_DISCOVERY_COUNTERS...,
 *                                   tableLen, pendingRequests, lookupsRunning,
 *                                   core: {P2P_DISC_COUNTERS...}}, endpoints:
 *                                   {adminAcceptPauses, adminEvictions,
 *                                   metricsAcceptPauses} (when the config
 *                                   names the set), resolver:
 *                                   {resolverRequests, resolverFound,
 *                                   resolverMissed, resolverRefused,
 *                                   resolverDropped} (when the config
 *                                   names a resolver), process:
 *                                   {residentBytes, threads, openFds,
 *                                   logLinesLost}}: the
 *                                   Prometheus metrics without the mailboxes;
 *                                   server is absent with --bootnode,
 *                                   discovery with --nodiscover; discovery
 *                                   is null when it runs but did not answer
 *                                   (out of memory, timed out, stopping),
 *                                   with discoveryError: the reason
 *                                   (p2p_strerror)
 * Requests are a stream of JSON values on each connection (newline or not);
 * a batch (array) is answered with an array, an empty one or one of more
 * than ADMIN_RPC_BATCH_MAX requests with a -32600 error (none of it runs);
 * notifications (no "id") are executed and never answered; input that
 * ends inside a value (or with a byte no value can hold) is a parse error
 * too, answered before the close.  Errors use the JSON-RPC codes
 * (-32700 parse, -32600 invalid request, -32601 no method, -32602 invalid
 * params, -32603 internal: out of memory, -32000 server error); a request
 * that runs out of memory before its id is known is answered -32603 with
 * id null, then the connection is closed.
 *
 * Bounds: at most ADMIN_RPC_CLIENTS connections (a new one closes the
 * client idle longest: one that last sent bytes earliest), 1 MiB of unparsed input
 * per connection (then a -32600 error naming the limit, and it is closed), bounded work per wake-up
 * (ADMIN_RPC_SERVE_BUDGET requests per client, a batch counting each of
 * its elements, the rest on the next turn;
 * a client that shuts its sending side gets every answer first); answers
 * are written without waiting on the socket (ADMIN_RPC_OUTPUT_HIGH); out of
 * descriptors, accepting pauses (ADMIN_RPC_ACCEPT_PAUSE_MS).  The
 * thread calls the server's and discovery's any-thread APIs, which wait
 * for their actors with deadlines.  Start and stop from the main thread.
 */
#ifndef P2P_TOOLS_ADMIN_RPC_H
#define P2P_TOOLS_ADMIN_RPC_H

#include "actors/discovery.h"
#include "actors/server.h"
#include "core/err.h"
#include "tools/node_metrics.h" /* node_endpoint_stats_t */
#include "tools/admin_req.h"    /* ADMIN_RPC_INPUT_MAX, the request decoding */

#define ADMIN_RPC_CLIENTS 16
#define ADMIN_RPC_PEERS_LISTED 1024 /* admin_peers lists at most this many peers */
/* requests served per client and wake-up; more are served on the next
 * turn of the loop, without waiting for more input */
#define ADMIN_RPC_SERVE_BUDGET 64
/* answers a client has not read: over this many bytes its further
 * requests wait (the socket is never waited on, so it holds nobody else
 * up); answers unsent for RPC_DEADLINE_NS (5 s) without progress close it */
#define ADMIN_RPC_OUTPUT_HIGH (256u * 1024)
/* accept failing for lack of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) pauses accepting this long (clients are still served) */
#define ADMIN_RPC_ACCEPT_PAUSE_MS 200

typedef struct admin_rpc admin_rpc_t;

typedef struct admin_rpc_config {
    const char *path;      /* socket path (an existing socket file is replaced) */
    p2p_server_t *srv;     /* may be NULL (--bootnode) */
    p2p_discovery_t *disc; /* may be NULL (--nodiscover) */
    const char *name;      /* client name */
    const char *enode;     /* our URL */
    const char *enr;       /* our record, text form */
    const char *listen_addr;
    const char *trace_path; /* the trace file (--trace), NULL when not tracing */
    bool can_resolve;       /* discovery resolves static nodes: admin_addPeer takes bare IDs */
    /* called on p2p-admin after admin_removePeer removed the static node
     * id (NULL: none), until admin_rpc_stop returned */
    void (*removed_static)(void *ctx, const uint8_t id[32]);
    void *removed_ctx;
    unsigned family; /* the family our sockets reach (p2p_ip_reach_family; 0: both) */
    uint16_t tcp_port, udp_port;
    /* where the socket counts its accept pauses and evictions, shared with
     * the metrics server and shown by admin_metrics ("endpoints"); NULL: a
     * set of its own, not shown */
    node_endpoint_stats_t *endpoints;
    /* the static-node resolver whose counters admin_metrics shows
     * ("resolver"); NULL: none, not shown */
    const resolver_t *resolver;
} admin_rpc_config_t;

/* Binds the socket and starts the thread.  msg receives a one-line reason
 * on failure.  Returns 0, P2P_ESYS, P2P_ENOMEM. */
P2P_MUST_CHECK int admin_rpc_start(admin_rpc_t **out, char *msg, size_t msglen,
                                   const admin_rpc_config_t *cfg);
/* Accept pauses so far (ADMIN_RPC_ACCEPT_PAUSE_MS each).  Any thread. */
uint64_t admin_rpc_accept_pauses(const admin_rpc_t *a);
/* Clients closed to make room for a new one (the longest-idle of
 * ADMIN_RPC_CLIENTS).  Any thread. */
uint64_t admin_rpc_evictions(const admin_rpc_t *a);
/* Stops the thread, closes every connection, removes the socket file. */
void admin_rpc_stop(admin_rpc_t *a);

#endif
