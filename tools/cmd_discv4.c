/*
 * tools/cmd_discv4.c: devp2p discv4 ping | requestenr | resolve | crawl.
 *
 * All four run on one UDP endpoint (tools/disc_client.h) that answers the
 * remote's Pings, so nodes that check endpoint proof (geth: a Pong from us
 * within 24 h) answer our Findnode and ENRRequest after the bond:
 *   ping        Ping, wait for the Pong with our hash (--timeout), print it
 *               and the round-trip time.
 *   requestenr  bond (Ping/Pong, answer their Ping), then ENRRequest; the
 *               ENRResponse must echo the request hash, verify, and belong
 *               to the node we asked; prints the record like enrdump.
 *   resolve     lookup of a node ID through --bootnodes: nodes are asked
 *               closest-first (Findnode with the target key) until the
 *               target shows up in an answer or nobody is left to ask.
 *   crawl       asks every node it learns of (Findnode with its own key and
 *               --queries - 1 random targets), bonding first, until no new
 *               node is left or --timeout passes; prints each live node's
 *               enode URL (or JSON with --json).
 * Every wait is bounded (per-request timeouts and an overall deadline);
 * the node set is capped by --max-nodes.  Main thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/cli.h"
#include "tools/cmds.h"
#include "tools/disc_client.h"
#include "wire/enode.h"
#include "wire/enr.h"

struct common {
    const char *addr, *keyfile, *keyhex, *timeout;
};

/* Each command's --timeout default, in seconds */
#define TIMEOUT_PING "3"
#define TIMEOUT_REQUESTENR "5"
#define TIMEOUT_RESOLVE "10"
#define TIMEOUT_CRAWL "30"

/* The options every command takes; the command's --timeout default
 * (TIMEOUT_*, which c.timeout starts from) is named in its help. */
#define COMMON_OPTS(c, tmo_default)                                                                \
    {"addr", "IP[:PORT]", "local UDP address (default: IPv4 and IPv6, ephemeral port)", &(c).addr, \
     NULL},                                                                                        \
        {"nodekey", "FILE", "our node key (default: a random key)", &(c).keyfile, NULL},           \
        {"nodekeyhex", "HEX", "our node key as hex", &(c).keyhex, NULL},                           \
    {                                                                                              \
        "timeout", "S", "overall deadline in seconds (default " tmo_default ")", &(c).timeout,     \
            NULL                                                                                   \
    }

static void open_endpoint(p2p_dc_t *dc, const struct common *c)
{
    uint8_t priv[32];
    cli_session_key(priv, c->keyfile, c->keyhex);
    int rc = p2p_dc_open(dc, c->addr, priv);
    p2p_wipe(priv, sizeof priv);
    if (rc == P2P_EINVAL) cli_usage_fail("invalid --addr '%s'", c->addr);
    if (rc == P2P_ESYS)
        cli_fail("cannot open UDP socket on %s: %s", c->addr ? c->addr : "[::]:0", strerror(errno));
    if (rc) cli_fail("cannot open the discovery endpoint: %s", p2p_strerror(rc));
}

/* The address family the endpoint's socket reaches (0: both): of a node
 * record naming an IPv4 and an IPv6 address, the one taken. */
static unsigned reach_family(const p2p_dc_t *dc)
{
    return p2p_ip_reach_family(&dc->bound_ip);
}

/* Why p2p_dc_send failed (errno read right after it). */
static const char *send_error(int rc)
{
    if (rc != P2P_ESYS) return p2p_strerror(rc);
    if (errno == EAFNOSUPPORT || errno == EINVAL)
        return "the node's address family is not the one of --addr (leave --addr out to reach "
               "both)";
    return strerror(errno);
}

static const char *node_url(const p2p_node_t *n)
{
    static char url[P2P_ENODE_MAX_TEXT];
    if (p2p_enode_format(url, sizeof url, n) != 0) snprintf(url, sizeof url, "?");
    return url;
}

static const char *ep_str(const p2p_endpoint_t *ep)
{
    static char s[96];
    char ip[P2P_IP_STRLEN];
    snprintf(s, sizeof s, "%s udp %u tcp %u", p2p_ip_format(ip, &ep->ip), ep->udp, ep->tcp);
    return s;
}

/* Waits for the Pong to the Ping with `hash` from node n.  Returns 0 with
 * the pong in *out, or P2P_ETIMEDOUT. */
static int wait_pong(p2p_dc_t *dc, p2p_discv4_packet_t *out, const p2p_node_t *n,
                     const uint8_t hash[32], uint64_t deadline)
{
    for (;;) {
        p2p_ip_t ip;
        uint16_t port;
        int rc = p2p_dc_recv(dc, out, &ip, &port, deadline);
        if (rc) return rc;
        if (out->type == P2P_DISCV4_PONG && memcmp(out->u.pong.reply_tok, hash, 32) == 0 &&
            memcmp(out->sender, n->pubkey, 64) == 0)
            return 0;
    }
}

static int d4_ping(int argc, char **argv)
{
    static const cli_cmd_t cmd = {"discv4 ping", "<enode>",
                                  "Sends a discovery Ping to a node and waits for its Pong.", 1, 1};
    struct common c = {.timeout = TIMEOUT_PING};
    const cli_opt_t opts[] = {COMMON_OPTS(c, TIMEOUT_PING)};
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    p2p_node_t n = cli_node(pos[0], true); /* checked before the socket is opened */
    uint64_t tmo = cli_timeout_ns("--timeout", c.timeout);
    p2p_dc_t dc;
    open_endpoint(&dc, &c);
    n = cli_node_for(pos[0], true, reach_family(&dc));
    if (n.ep.udp == 0) cli_fail("node has no UDP port");
    uint8_t hash[32];
    uint64_t t0 = p2p_now_ns();
    int rc = p2p_dc_ping(&dc, hash, &n);
    if (rc) cli_fail("cannot send ping: %s", send_error(rc));
    static p2p_discv4_packet_t pong;
    rc = wait_pong(&dc, &pong, &n, hash, t0 + tmo);
    uint64_t t1 = p2p_now_ns();
    if (rc == P2P_ETIMEDOUT) cli_fail("no pong from %s within %s s", node_url(&n), c.timeout);
    if (rc) cli_fail("receive failed: %s", strerror(errno));
    printf("pong from %s\n", node_url(&n));
    printf("  rtt:        %.3f ms\n", (double)(t1 - t0) / 1e6);
    printf("  to:         %s (our endpoint as the node sees it)\n", ep_str(&pong.u.pong.to));
    if (pong.u.pong.has_enr_seq)
        printf("  enr seq:    %llu\n", (unsigned long long)pong.u.pong.enr_seq);
    else
        printf("  enr seq:    none\n");
    printf("  expiration: %llu\n", (unsigned long long)pong.expiration);
    p2p_dc_close(&dc);
    return 0;
}

/* Ping, wait for the pong, then give the node time to ping us back (our
 * endpoint answers it) so that it considers us bonded. */
static void bond(p2p_dc_t *dc, const p2p_node_t *n, uint64_t deadline)
{
    uint8_t hash[32];
    int rc = p2p_dc_ping(dc, hash, n);
    if (rc) cli_fail("cannot send ping: %s", send_error(rc));
    static p2p_discv4_packet_t p;
    rc = wait_pong(dc, &p, n, hash, deadline);
    if (rc == P2P_ETIMEDOUT) cli_fail("no pong from %s", node_url(n));
    if (rc) cli_fail("receive failed: %s", strerror(errno));
    /* their ping usually follows the pong at once; wait for it briefly */
    uint64_t until = p2p_now_ns() + 500 * P2P_NS_PER_MS;
    if (until > deadline) until = deadline;
    uint64_t before = dc->pings_answered;
    while (dc->pings_answered == before) {
        p2p_ip_t ip;
        uint16_t port;
        if (p2p_dc_recv(dc, &p, &ip, &port, until) != 0) break;
    }
}

static int d4_requestenr(int argc, char **argv)
{
    static const cli_cmd_t cmd = {"discv4 requestenr", "<enode>",
                                  "Bonds with a node and asks it for its node record (ENRRequest).",
                                  1, 1};
    struct common c = {.timeout = TIMEOUT_REQUESTENR};
    const cli_opt_t opts[] = {COMMON_OPTS(c, TIMEOUT_REQUESTENR)};
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    p2p_node_t n = cli_node(pos[0], true); /* checked before the socket is opened */
    uint64_t deadline = p2p_now_ns() + cli_timeout_ns("--timeout", c.timeout);
    p2p_dc_t dc;
    open_endpoint(&dc, &c);
    n = cli_node_for(pos[0], true, reach_family(&dc));
    if (n.ep.udp == 0) cli_fail("node has no UDP port");
    bond(&dc, &n, deadline);
    static p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_ENRREQUEST;
    uint8_t hash[32];
    int rc = p2p_dc_send(&dc, hash, &p, &n.ep.ip, n.ep.udp);
    if (rc) cli_fail("cannot send ENRRequest: %s", send_error(rc));
    for (;;) {
        p2p_ip_t ip;
        uint16_t port;
        rc = p2p_dc_recv(&dc, &p, &ip, &port, deadline);
        if (rc == P2P_ETIMEDOUT) cli_fail("no ENRResponse from %s", node_url(&n));
        if (rc) cli_fail("receive failed: %s", strerror(errno));
        if (p.type == P2P_DISCV4_ENRRESPONSE && memcmp(p.u.enrresponse.reply_tok, hash, 32) == 0 &&
            memcmp(p.sender, n.pubkey, 64) == 0)
            break;
    }
    const p2p_enr_t *r = &p.u.enrresponse.record;
    int vrc = p2p_enr_verify(r);
    uint8_t id[32];
    if (vrc == 0 && (p2p_enr_node_id(r, id) != 0 || memcmp(id, n.id, 32) != 0))
        cli_fail("ENRResponse holds the record of another node");
    char text[P2P_ENR_MAX_TEXT];
    if (vrc == 0 && p2p_enr_to_text(text, sizeof text, r) == 0) printf("%s\n", text);
    enr_dump(r, vrc);
    p2p_dc_close(&dc);
    return vrc == 0 ? 0 : 1;
}

/* ---- crawler (crawl and resolve) -------------------------------------- */

enum { N_NEW, N_PINGED, N_BONDING, N_QUERY, N_DONE, N_DEAD };
#define PING_TRIES 4

struct cnode {
    p2p_node_t n;
    int state;
    uint8_t ping_hash[32];
    int tries;
    uint64_t t; /* deadline of the current state */
    uint64_t ping_sent;
    bool pinged_us, alive;
    int queries_left;
    unsigned got;   /* neighbors received for the current query */
    unsigned found; /* new nodes learned from it */
    double rtt_ms;
};

struct crawl {
    p2p_dc_t *dc;
    struct cnode *v;
    size_t n, cap, max;
    size_t next_new; /* FIFO scan position (crawl) */
    unsigned parallel;
    int queries;
    uint64_t resp_ns;
    bool have_target, found_target;
    uint8_t target_pub[64], target_id[32];
    size_t target_idx;
    bool json, quiet, verbose;
    size_t alive;
    uint64_t t0;
};

static struct cnode *find(struct crawl *cr, const uint8_t id[32])
{
    for (size_t i = 0; i < cr->n; i++)
        if (memcmp(cr->v[i].n.id, id, 32) == 0) return &cr->v[i];
    return NULL;
}

static struct cnode *add(struct crawl *cr, const p2p_node_t *n)
{
    if (memcmp(n->id, cr->dc->id, 32) == 0) return NULL;
    struct cnode *c = find(cr, n->id);
    if (c) return c;
    if (cr->n >= cr->max) return NULL;
    if (cr->n == cr->cap) {
        size_t nc = cr->cap ? cr->cap * 2 : 64;
        struct cnode *nv = realloc(cr->v, nc * sizeof *nv);
        if (!nv) cli_fail("out of memory");
        cr->v = nv;
        cr->cap = nc;
    }
    c = &cr->v[cr->n++];
    memset(c, 0, sizeof *c);
    c->n = *n;
    c->state = N_NEW;
    c->queries_left = cr->queries;
    if (cr->have_target && memcmp(n->id, cr->target_id, 32) == 0) {
        cr->found_target = true;
        cr->target_idx = (size_t)(c - cr->v);
    }
    return c;
}

static int closer(const uint8_t a[32], const uint8_t b[32], const uint8_t t[32])
{
    for (int i = 0; i < 32; i++) {
        uint8_t da = a[i] ^ t[i], db = b[i] ^ t[i];
        if (da != db) return da < db;
    }
    return 0;
}

static struct cnode *next_new(struct crawl *cr)
{
    if (!cr->have_target) {
        while (cr->next_new < cr->n && cr->v[cr->next_new].state != N_NEW) cr->next_new++;
        return cr->next_new < cr->n ? &cr->v[cr->next_new] : NULL;
    }
    struct cnode *best = NULL;
    for (size_t i = 0; i < cr->n; i++)
        if (cr->v[i].state == N_NEW && (!best || closer(cr->v[i].n.id, best->n.id, cr->target_id)))
            best = &cr->v[i];
    return best;
}

static void send_ping(struct crawl *cr, struct cnode *c, uint64_t now)
{
    c->tries++;
    c->ping_sent = now;
    c->t = now + cr->resp_ns * (uint64_t)c->tries; /* a slow node gets longer each try */
    c->state = p2p_dc_ping(cr->dc, c->ping_hash, &c->n) == 0 ? N_PINGED : N_DEAD;
}

static void send_findnode(struct crawl *cr, struct cnode *c, uint64_t now)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_FINDNODE;
    int k = cr->queries - c->queries_left;
    if (cr->have_target)
        memcpy(p.u.findnode.target, cr->target_pub, 64);
    else if (k == 0)
        memcpy(p.u.findnode.target, c->n.pubkey, 64);
    else if (p2p_random(p.u.findnode.target, 64) != 0)
        memcpy(p.u.findnode.target, c->n.pubkey, 64);
    c->got = 0;
    c->t = now + cr->resp_ns;
    c->state = p2p_dc_send(cr->dc, NULL, &p, &c->n.ep.ip, c->n.ep.udp) == 0 ? N_QUERY : N_DONE;
}

static void on_neighbors(struct crawl *cr, struct cnode *c, const p2p_discv4_packet_t *p,
                         const p2p_ip_t *from, uint64_t now)
{
    size_t ci = (size_t)(c - cr->v); /* add() may move cr->v: c is cr->v[ci] */
    for (unsigned i = 0; i < p->u.neighbors.n && i < P2P_DISCV4_NEIGHBORS_CAP; i++) {
        const p2p_discv4_rpcnode_t *r = &p->u.neighbors.nodes[i];
        if (r->ep.ip.family == 0 || r->ep.udp == 0) continue;
        if (p2p_ip_is_special(&r->ep.ip) || p2p_check_relay_ip(from, &r->ep.ip) != 0) continue;
        if (p2p_secp_pubkey_check(r->id) != 0) continue;
        p2p_node_t n;
        memset(&n, 0, sizeof n);
        memcpy(n.pubkey, r->id, 64);
        p2p_node_id(n.id, n.pubkey);
        n.ep = r->ep;
        size_t before = cr->n;
        add(cr, &n);
        if (cr->n > before) cr->v[ci].found++;
    }
    c = &cr->v[ci];
    c->got += p->u.neighbors.n;
    if (c->got >= 16) c->t = now; /* a full answer: next query at once */
}

static void print_alive(struct crawl *cr, struct cnode *c)
{
    cr->alive++;
    if (cr->quiet || cr->json) return;
    printf("%s\n", node_url(&c->n));
    fflush(stdout);
}

static void handle(struct crawl *cr, const p2p_discv4_packet_t *p, const p2p_ip_t *ip,
                   uint16_t port, uint64_t now)
{
    struct cnode *c = find(cr, p->sender_id);
    if (cr->verbose) {
        char a[P2P_IP_PORT_STRLEN];
        fprintf(stderr, "%.3f %s from %s %.16s%s", (double)(now - cr->t0) / 1e9,
                p2p_discv4_type_name(p->type), p2p_ip_port_format(a, ip, port),
                cli_hex(p->sender_id, 8), c ? "" : " (unknown)");
        if (p->type == P2P_DISCV4_NEIGHBORS) fprintf(stderr, " %u nodes", p->u.neighbors.n);
        fprintf(stderr, "\n");
    }
    switch (p->type) {
    case P2P_DISCV4_PONG:
        if (c && c->state == N_PINGED && memcmp(p->u.pong.reply_tok, c->ping_hash, 32) == 0) {
            c->rtt_ms = (double)(now - c->ping_sent) / 1e6;
            c->alive = true;
            c->state = N_BONDING;
            c->t = now + (c->pinged_us ? 50 : 500) * P2P_NS_PER_MS;
            print_alive(cr, c);
        }
        break;
    case P2P_DISCV4_PING:
        if (!c) {
            /* a node that found us: crawl it too */
            p2p_node_t n;
            memset(&n, 0, sizeof n);
            memcpy(n.pubkey, p->sender, 64);
            memcpy(n.id, p->sender_id, 32);
            n.ep.ip = *ip;
            n.ep.udp = port;
            n.ep.tcp = p->u.ping.from.tcp;
            if (port > 0) c = add(cr, &n);
        }
        if (c) {
            c->pinged_us = true;
            if (c->state == N_BONDING && c->t > now + 50 * P2P_NS_PER_MS)
                c->t = now + 50 * P2P_NS_PER_MS;
        }
        break;
    case P2P_DISCV4_NEIGHBORS:
        /* late answers to an earlier query count too */
        if (c && (c->state == N_QUERY || c->state == N_DONE)) on_neighbors(cr, c, p, ip, now);
        break;
    default:
        break;
    }
}

static void timeouts(struct crawl *cr, uint64_t now)
{
    for (size_t i = 0; i < cr->n; i++) {
        struct cnode *c = &cr->v[i];
        if (c->t > now) continue;
        switch (c->state) {
        case N_PINGED:
            if (c->tries < PING_TRIES)
                send_ping(cr, c, now);
            else
                c->state = N_DEAD;
            break;
        case N_BONDING:
            send_findnode(cr, c, now);
            break;
        case N_QUERY:
            if (--c->queries_left > 0)
                send_findnode(cr, c, now);
            else
                c->state = N_DONE;
            break;
        default:
            break;
        }
    }
}

/* Runs until nothing is left to do, the target is found, or deadline. */
static void crawl_run(struct crawl *cr, uint64_t deadline)
{
    static p2p_discv4_packet_t p;
    for (;;) {
        uint64_t now = p2p_now_ns();
        if (now >= deadline || cr->found_target) return;
        unsigned active = 0;
        for (size_t i = 0; i < cr->n; i++)
            if (cr->v[i].state >= N_PINGED && cr->v[i].state <= N_QUERY) active++;
        while (active < cr->parallel) {
            struct cnode *c = next_new(cr);
            if (!c) break;
            send_ping(cr, c, now);
            active++;
        }
        if (active == 0) return;
        uint64_t next = deadline;
        for (size_t i = 0; i < cr->n; i++)
            if (cr->v[i].state >= N_PINGED && cr->v[i].state <= N_QUERY && cr->v[i].t < next)
                next = cr->v[i].t;
        p2p_ip_t ip;
        uint16_t port;
        int rc = p2p_dc_recv(cr->dc, &p, &ip, &port, next);
        now = p2p_now_ns();
        if (rc == 0)
            handle(cr, &p, &ip, port, now);
        else if (rc != P2P_ETIMEDOUT)
            cli_fail("receive failed: %s", strerror(errno));
        timeouts(cr, now);
    }
}

static void add_bootnodes(struct crawl *cr, const char *list)
{
    if (!list || !*list) cli_usage_fail("--bootnodes is required");
    char *copy = strdup(list), *save = NULL;
    if (!copy) cli_fail("out of memory");
    for (char *t = strtok_r(copy, ", \n", &save); t; t = strtok_r(NULL, ", \n", &save)) {
        p2p_node_t n = cli_node_for(t, true, reach_family(cr->dc));
        if (n.ep.udp == 0) cli_fail("bootnode %.80s has no UDP port", t);
        add(cr, &n);
    }
    free(copy);
    if (cr->n == 0) cli_usage_fail("--bootnodes lists no node");
}

static int d4_resolve(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "discv4 resolve", "<enode|id>",
        "Finds the current endpoint of a node (enode URL or 128-hex key) by a lookup through "
        "the bootnodes.",
        1, 1};
    struct common c = {.timeout = TIMEOUT_RESOLVE};
    const char *boot = NULL;
    const cli_opt_t opts[] = {
        COMMON_OPTS(c, TIMEOUT_RESOLVE),
        {"bootnodes", "LIST", "comma-separated enode URLs / ENRs to start from", &boot, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    p2p_node_t want = cli_node(pos[0], false);
    uint64_t deadline = p2p_now_ns() + cli_timeout_ns("--timeout", c.timeout);
    p2p_dc_t dc;
    open_endpoint(&dc, &c);
    struct crawl cr = {.dc = &dc,
                       .max = 4096,
                       .parallel = 3,
                       .queries = 1,
                       .resp_ns = P2P_NS_PER_S,
                       .have_target = true,
                       .quiet = true};
    memcpy(cr.target_pub, want.pubkey, 64);
    memcpy(cr.target_id, want.id, 32);
    add_bootnodes(&cr, boot);
    crawl_run(&cr, deadline);
    if (!cr.found_target) cli_fail("node %s not found", cli_hex(want.id, 32));
    printf("%s\n", node_url(&cr.v[cr.target_idx].n));
    free(cr.v);
    p2p_dc_close(&dc);
    return 0;
}

static int d4_crawl(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "discv4 crawl", "",
        "Crawls the discovery network from the bootnodes: asks every node found for its "
        "neighbors and prints each live node's enode URL.",
        0, 0};
    struct common c = {.timeout = TIMEOUT_CRAWL};
    const char *boot = NULL, *parallel = "16", *queries = "4", *maxn = "100000", *resp = "1";
    bool json = false, verbose = false;
    const cli_opt_t opts[] = {
        COMMON_OPTS(c, TIMEOUT_CRAWL),
        {"bootnodes", "LIST", "comma-separated enode URLs / ENRs to start from", &boot, NULL},
        {"parallel", "N", "nodes worked on at once (default 16)", &parallel, NULL},
        {"queries", "N", "findnode queries per node (default 4)", &queries, NULL},
        {"max-nodes", "N", "stop learning nodes beyond N (default 100000)", &maxn, NULL},
        {"resp-timeout", "S", "wait for a reply (default 1; pings: 4 tries, 1x..4x this)", &resp,
         NULL},
        {"json", NULL, "print the result as JSON", NULL, &json},
        {"verbose", NULL, "log every packet received to stderr", NULL, &verbose},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    uint64_t t0 = p2p_now_ns();
    uint64_t deadline = t0 + cli_timeout_ns("--timeout", c.timeout);
    struct crawl cr = {.max = cli_uint("--max-nodes", maxn, 1, 1000000),
                       .parallel = (unsigned)cli_uint("--parallel", parallel, 1, 256),
                       .queries = (int)cli_uint("--queries", queries, 1, 64),
                       .resp_ns = cli_duration_ns("--resp-timeout", resp),
                       .json = json,
                       .verbose = verbose,
                       .t0 = t0};
    p2p_dc_t dc;
    open_endpoint(&dc, &c);
    cr.dc = &dc;
    add_bootnodes(&cr, boot);
    crawl_run(&cr, deadline);
    double secs = (double)(p2p_now_ns() - t0) / 1e9;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < cr.n; i++) {
            struct cnode *n = &cr.v[i];
            char ip[P2P_IP_STRLEN];
            json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:I}", "id", cli_hex(n->n.id, 32),
                                  "enode", node_url(&n->n), "ip", p2p_ip_format(ip, &n->n.ep.ip),
                                  "udp", n->n.ep.udp, "tcp", n->n.ep.tcp, "alive", n->alive,
                                  "found", (json_int_t)n->found);
            /* a node left out would be a silent loss: fail instead */
            if (!o || (n->alive && json_object_set_new(o, "rtt_ms", json_real(n->rtt_ms)) != 0) ||
                json_array_append_new(arr, o) != 0)
                cli_fail("cannot build the JSON output");
        }
        json_t *top = json_pack("{s:I, s:I, s:f, s:o}", "discovered", (json_int_t)cr.n, "alive",
                                (json_int_t)cr.alive, "seconds", secs, "nodes", arr);
        if (!top || json_dumpf(top, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(9)) != 0)
            cli_fail("cannot write JSON");
        printf("\n");
        json_decref(top);
    }
    fprintf(stderr, "crawl: %zu nodes discovered, %zu answered, %.1f s\n", cr.n, cr.alive, secs);
    free(cr.v);
    p2p_dc_close(&dc);
    if (cr.alive == 0) cli_fail("no node answered");
    return 0;
}

int cmd_discv4(int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"ping", "ping a node and print its pong"},
        {"requestenr", "bond with a node and fetch its ENR"},
        {"resolve", "find a node's endpoint through a lookup"},
        {"crawl", "crawl the network from bootnodes"},
    };
    if (argc > 0) {
        if (strcmp(argv[0], "ping") == 0) return d4_ping(argc - 1, argv + 1);
        if (strcmp(argv[0], "requestenr") == 0) return d4_requestenr(argc - 1, argv + 1);
        if (strcmp(argv[0], "resolve") == 0) return d4_resolve(argc - 1, argv + 1);
        if (strcmp(argv[0], "crawl") == 0) return d4_crawl(argc - 1, argv + 1);
    }
    return cli_group_help("discv4", subs, sizeof subs / sizeof subs[0], argc, argv);
}
