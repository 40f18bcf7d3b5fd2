/*
 * tools/resolver.h: devp2pd's resolver of static nodes through discovery
 * (geth's Resolve): the server's resolve hook (p2p_server_config_t.resolve)
 * for a static node without an address, or one whose dial failed.
 * RESOLVER_LOOKUPS threads "p2p-resolve-<i>" each take requests from their
 * own bounded mailbox (the hook gives a request to the one with the
 * fewest requests waiting) and run a discovery lookup for the node's own
 * key, so that many lookups run at once (geth resolves in each dial task,
 * bounded by its dial slots): a node that answers under a new address is
 * found among the nodes closest to its ID (itself, at distance 0).  The
 * answer goes back with p2p_server_resolved (found, or NULL: the dialer
 * retries with its backoff, 60 s doubling to 1 h).  Discovery runs up to
 * P2P_DISC_MAX_LOOKUPS (8) lookups at once; its own refresh and candidate
 * lookups take one each, which leaves room for these.
 *
 * The hook (resolver_hook, on p2p-dial) never blocks: a request finding
 * every mailbox full (RESOLVER_QUEUE requests waiting in all) is answered
 * "not found" at once and counted.  Requests made before resolver_run are
 * queued.  Life cycle, main thread: resolver_new before the server starts
 * (the hook's ctx), resolver_run once the server and discovery run,
 * resolver_stop after discovery stopped (a lookup in progress then
 * returns at once) and before the server stops, resolver_free after the
 * server stopped (the hook may run until then).  A static node removed
 * (resolver_forget) is not looked up any more: its requests still
 * waiting are answered "not found" at once.
 */
#ifndef P2P_TOOLS_RESOLVER_H
#define P2P_TOOLS_RESOLVER_H

#include <stdint.h>

#include "actors/discovery.h"
#include "actors/server.h"
#include "core/err.h"
#include "wire/node.h"

#define RESOLVER_QUEUE 64        /* requests waiting, in all */
#define RESOLVER_LOOKUPS 4       /* lookup threads (lookups at once); divides RESOLVER_QUEUE */
#define RESOLVER_LOOKUP_MS 10000 /* deadline of one lookup */
#define RESOLVER_FORGETS 256     /* removed static nodes remembered (resolver_forget) */
#define RESOLVER_RETRY_MS 2000   /* a lookup with no result at all is retried once after this */

typedef struct resolver resolver_t;

typedef struct resolver_stats {
    uint64_t requests; /* hook calls */
    uint64_t found;    /* answered with the node's current record */
    uint64_t missed;   /* lookups that did not find it (or failed) */
    uint64_t refused;  /* hook calls answered "not found" at once: queue full */
    uint64_t dropped;  /* answered "not found" without a lookup: forgotten while queued */
} resolver_stats_t;

/* Returns 0, P2P_ENOMEM or P2P_EINVAL. */
P2P_MUST_CHECK int resolver_new(resolver_t **out);
/* The server's resolve hook; ctx is the resolver. */
void resolver_hook(void *ctx, const p2p_node_t *node);
/* The static node id was removed: a request for it made before this call
 * and still waiting is answered "not found" without its lookup (one in
 * progress runs on).  Of the last RESOLVER_FORGETS calls only.  Callable
 * from one thread at a time (devp2pd: p2p-admin), from resolver_new until
 * resolver_free. */
void resolver_forget(resolver_t *r, const uint8_t id[32]);
/* resolver_forget as a callback: ctx is the resolver. */
void resolver_forget_hook(void *ctx, const uint8_t id[32]);
/* Starts the threads, looking up through disc and answering srv.  Returns
 * 0 or P2P_ESYS. */
P2P_MUST_CHECK int resolver_run(resolver_t *r, p2p_server_t *srv, p2p_discovery_t *disc);
/* Joins the threads (those that ran). */
void resolver_stop(resolver_t *r);
void resolver_free(resolver_t *r);
void resolver_get_stats(const resolver_t *r, resolver_stats_t *out);

#endif
