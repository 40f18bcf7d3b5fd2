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
 *   resolve     a Kademlia resolve: a node given with an endpoint is asked
 *               there first (bond, ENRRequest); otherwise, or if it does
 *               not answer, a lookup of its ID through --bootnodes (the
 *               crawler below with a target: 3 nodes in flight, closest
 *               first, each bonded then sent Findnode with the target key;
 *               the lookup ends once the 16 closest nodes seen that did
 *               not fail were all asked).  Each endpoint of the target the
 *               lookup finds is tried as the one given was: the node must
 *               answer a ping; the endpoint printed is the one of its
 *               newest record (highest seq), else the one it answered on.
 *   crawl       asks every node it learns of (Findnode with its own key and
 *               --queries - 1 random targets), bonding first, until no new
 *               node is left or --timeout passes; prints each live node's
 *               enode URL (or JSON with --json).
 * Every wait is bounded (per-request timeouts and an overall deadline);
 * the node set is capped by --max-nodes.  Main thread only.
 */
#include <errno.h>
#include <stdarg.h>
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

/* What the endpoint dropped, for a message about a missing reply: "" if
 * nothing, else "; dropped N invalid and M expired packets" (expired ones
 * from a node usually mean one of the two clocks is off). */
static const char *dropped_note(const p2p_dc_t *dc)
{
    static char s[128];
    s[0] = 0;
    if (dc->invalid || dc->expired)
        snprintf(s, sizeof s, "; dropped %llu invalid and %llu expired packets%s",
                 (unsigned long long)dc->invalid, (unsigned long long)dc->expired,
                 dc->expired ? " (is a clock off?)" : "");
    return s;
}

static const char *ep_str(const p2p_endpoint_t *ep)
{
    static char s[96];
    char ip[P2P_IP_STRLEN];
    snprintf(s, sizeof s, "%s udp %u tcp %u", p2p_ip_format(ip, &ep->ip), ep->udp, ep->tcp);
    return s;
}

struct crawl;
/* Hands a packet that the wait it arrived in does not want to the crawler
 * cr is running (NULL: none; the packet is dropped). */
static void pass_on(struct crawl *cr, const p2p_discv4_packet_t *p, const p2p_ip_t *ip,
                    uint16_t port);

/* Waits for the Pong to the Ping with `hash` from node n, other packets to
 * cr.  Returns 0 with the pong in *out, P2P_ETIMEDOUT or P2P_ESYS. */
static int wait_pong(p2p_dc_t *dc, p2p_discv4_packet_t *out, const p2p_node_t *n,
                     const uint8_t hash[32], uint64_t deadline, struct crawl *cr)
{
    for (;;) {
        p2p_ip_t ip;
        uint16_t port;
        int rc = p2p_dc_recv(dc, out, &ip, &port, deadline);
        if (rc) return rc;
        if (out->type == P2P_DISCV4_PONG && memcmp(out->u.pong.reply_tok, hash, 32) == 0 &&
            memcmp(out->sender, n->pubkey, 64) == 0)
            return 0;
        pass_on(cr, out, &ip, port);
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
    rc = wait_pong(&dc, &pong, &n, hash, t0 + tmo, NULL);
    uint64_t t1 = p2p_now_ns();
    if (rc == P2P_ETIMEDOUT)
        cli_fail("no pong from %s within %g s%s", node_url(&n), (double)tmo / P2P_NS_PER_S,
                 dropped_note(&dc));
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

/* After the Pong: gives the node time to ping us back (our endpoint
 * answers it) so that it considers us bonded; other packets go to cr. */
static void wait_ping_back(p2p_dc_t *dc, uint64_t deadline, struct crawl *cr)
{
    static p2p_discv4_packet_t p;
    /* their ping usually follows the pong at once; wait for it briefly */
    uint64_t until = p2p_now_ns() + 500 * P2P_NS_PER_MS;
    if (until > deadline) until = deadline;
    uint64_t before = dc->pings_answered;
    while (dc->pings_answered == before) {
        p2p_ip_t ip;
        uint16_t port;
        if (p2p_dc_recv(dc, &p, &ip, &port, until) != 0) break;
        pass_on(cr, &p, &ip, port);
    }
}

/* Ping, wait for the pong, then for the node's ping back. */
static void bond(p2p_dc_t *dc, const p2p_node_t *n, uint64_t deadline)
{
    uint8_t hash[32];
    int rc = p2p_dc_ping(dc, hash, n);
    if (rc) cli_fail("cannot send ping: %s", send_error(rc));
    static p2p_discv4_packet_t p;
    rc = wait_pong(dc, &p, n, hash, deadline, NULL);
    if (rc == P2P_ETIMEDOUT) cli_fail("no pong from %s%s", node_url(n), dropped_note(dc));
    if (rc) cli_fail("receive failed: %s", strerror(errno));
    wait_ping_back(dc, deadline, NULL);
}

/* Sends an ENRRequest to n (bonded) and waits for the ENRResponse that
 * echoes it, other packets to cr.  Out: p (the response; its record is
 * not verified yet).  Returns 0, a send error (P2P_ESYS: errno), or as
 * p2p_dc_recv (*sent tells which). */
static int request_enr(p2p_dc_t *dc, p2p_discv4_packet_t *p, bool *sent, const p2p_node_t *n,
                       uint64_t deadline, struct crawl *cr)
{
    memset(p, 0, sizeof *p);
    p->type = P2P_DISCV4_ENRREQUEST;
    uint8_t hash[32];
    *sent = false;
    int rc = p2p_dc_send(dc, hash, p, &n->ep.ip, n->ep.udp);
    if (rc) return rc;
    *sent = true;
    for (;;) {
        p2p_ip_t ip;
        uint16_t port;
        rc = p2p_dc_recv(dc, p, &ip, &port, deadline);
        if (rc) return rc;
        if (p->type == P2P_DISCV4_ENRRESPONSE &&
            memcmp(p->u.enrresponse.reply_tok, hash, 32) == 0 &&
            memcmp(p->sender, n->pubkey, 64) == 0)
            return 0;
        pass_on(cr, p, &ip, port);
    }
}

/* 0 if r is a valid record of the node with ID id. */
static int record_of(const p2p_enr_t *r, const uint8_t id[32])
{
    uint8_t rid[32];
    int rc = p2p_enr_verify(r);
    if (rc) return rc;
    if (p2p_enr_node_id(r, rid) != 0 || memcmp(rid, id, 32) != 0) return P2P_EINVAL;
    return 0;
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
    bool sent;
    int rc = request_enr(&dc, &p, &sent, &n, deadline, NULL);
    if (rc && !sent) cli_fail("cannot send ENRRequest: %s", send_error(rc));
    if (rc == P2P_ETIMEDOUT) cli_fail("no ENRResponse from %s%s", node_url(&n), dropped_note(&dc));
    if (rc) cli_fail("receive failed: %s", strerror(errno));
    const p2p_enr_t *r = &p.u.enrresponse.record;
    int vrc = p2p_enr_verify(r);
    if (vrc == 0 && record_of(r, n.id) != 0)
        cli_fail("ENRResponse holds the record of another node");
    char text[P2P_ENR_MAX_TEXT];
    if (vrc == 0 && p2p_enr_to_text(text, sizeof text, r) == 0) printf("%s\n", text);
    enr_dump(r, vrc);
    p2p_dc_close(&dc);
    return vrc == 0 ? 0 : 1;
}

/* ---- crawler (crawl) and lookup (resolve) ------------------------------ */

enum { N_NEW, N_PINGED, N_BONDING, N_QUERY, N_DONE, N_DEAD };
#define PING_TRIES 4
/* resolve: the lookup's result set (Kademlia k, the bucket size) and the
 * pings a node gets before it counts as failed */
#define LOOKUP_RESULTS 16
#define LOOKUP_PING_TRIES 2
/* endpoints of the target kept for resolve to try */
#define MAX_CANDS 8

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
    int queries, ping_tries;
    uint64_t resp_ns;
    /* lookup (resolve): nodes are asked closest to the target first, only
     * while among the LOOKUP_RESULTS closest nodes not failed; the target
     * itself is not asked, its endpoints seen go to cand[] */
    bool have_target;
    uint8_t target_pub[64], target_id[32];
    p2p_node_t cand[MAX_CANDS];
    unsigned ncand, next_cand; /* cand[next_cand..ncand) not tried yet */
    bool json, quiet, verbose;
    size_t alive;
    uint64_t t0;
};

/* An endpoint of the target (from a Neighbors entry or its Ping): kept
 * for resolve to try unless already known. */
static void target_seen(struct crawl *cr, const p2p_node_t *n)
{
    for (unsigned i = 0; i < cr->ncand; i++)
        if (p2p_ip_equal(&cr->cand[i].ep.ip, &n->ep.ip) && cr->cand[i].ep.udp == n->ep.udp) return;
    if (cr->ncand == MAX_CANDS) return;
    cr->cand[cr->ncand++] = *n;
}

static struct cnode *find(struct crawl *cr, const uint8_t id[32])
{
    for (size_t i = 0; i < cr->n; i++)
        if (memcmp(cr->v[i].n.id, id, 32) == 0) return &cr->v[i];
    return NULL;
}

static struct cnode *add(struct crawl *cr, const p2p_node_t *n)
{
    if (memcmp(n->id, cr->dc->id, 32) == 0) return NULL;
    if (cr->have_target && memcmp(n->id, cr->target_id, 32) == 0) {
        target_seen(cr, n);
        return NULL;
    }
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

/* The next node to ask: crawl, the first new one; lookup, the closest new
 * one to the target if fewer than LOOKUP_RESULTS nodes not failed are
 * closer (the lookup is over once the result set is all asked). */
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
    if (!best) return NULL;
    unsigned nearer = 0;
    for (size_t i = 0; i < cr->n; i++)
        if (cr->v[i].state != N_DEAD && closer(cr->v[i].n.id, best->n.id, cr->target_id)) nearer++;
    return nearer < LOOKUP_RESULTS ? best : NULL;
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

static void pass_on(struct crawl *cr, const p2p_discv4_packet_t *p, const p2p_ip_t *ip,
                    uint16_t port)
{
    if (cr) handle(cr, p, ip, port, p2p_now_ns());
}

static void timeouts(struct crawl *cr, uint64_t now)
{
    for (size_t i = 0; i < cr->n; i++) {
        struct cnode *c = &cr->v[i];
        if (c->t > now) continue;
        switch (c->state) {
        case N_PINGED:
            if (c->tries < cr->ping_tries)
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

/* Runs until nothing is left to do (crawl: every node asked; lookup: the
 * result set), an endpoint of the target is left to try, or deadline. */
static void crawl_run(struct crawl *cr, uint64_t deadline)
{
    static p2p_discv4_packet_t p;
    for (;;) {
        uint64_t now = p2p_now_ns();
        if (now >= deadline || cr->next_cand < cr->ncand) return;
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
    if (cr->n == 0 && cr->ncand == 0) cli_usage_fail("--bootnodes lists no node");
}

/* resolve --verbose: one line on stderr, seconds since the start first */
static void say(const struct crawl *cr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct crawl *cr, const char *fmt, ...)
{
    if (!cr->verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%.3f resolve: ", (double)(p2p_now_ns() - cr->t0) / 1e9);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* resolve: is n live at its endpoint?  Bonds (ping_tries pings, the i-th
 * waited for i x resp_ns) and asks for its record (resp_ns), packets for
 * the lookup passed on to cr.  Returns 2 with a valid record of n in *rec,
 * 1 if n answered the ping only, 0 if it did not answer. */
static int confirm(struct crawl *cr, p2p_enr_t *rec, const p2p_node_t *n, uint64_t deadline)
{
    static p2p_discv4_packet_t p;
    int rc = P2P_ETIMEDOUT;
    for (int i = 1; i <= cr->ping_tries && rc == P2P_ETIMEDOUT; i++) {
        uint8_t hash[32];
        uint64_t until = p2p_now_ns() + cr->resp_ns * (uint64_t)i;
        if (until > deadline) until = deadline;
        if (p2p_dc_ping(cr->dc, hash, n) != 0) return 0;
        rc = wait_pong(cr->dc, &p, n, hash, until, cr);
        if (until == deadline) break;
    }
    if (rc == P2P_ESYS) cli_fail("receive failed: %s", strerror(errno));
    if (rc) return 0;
    wait_ping_back(cr->dc, deadline, cr);
    uint64_t until = p2p_now_ns() + cr->resp_ns;
    if (until > deadline) until = deadline;
    bool sent;
    rc = request_enr(cr->dc, &p, &sent, n, until, cr);
    if (rc == P2P_ESYS && sent) cli_fail("receive failed: %s", strerror(errno));
    if (rc || record_of(&p.u.enrresponse.record, n->id) != 0) return 1;
    *rec = p.u.enrresponse.record;
    return 2;
}

static int d4_resolve(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "discv4 resolve", "<enode|id>",
        "Finds the current endpoint of a node (enode URL, ENR or 128-hex key) and prints its "
        "enode URL.  A node given with an endpoint is asked there first (bond, ENRRequest); "
        "otherwise, or if it does not answer, its ID is looked up through the bootnodes "
        "(3 queries in flight; the lookup ends once the 16 closest nodes seen were all asked) "
        "and the node found must answer a ping.  The endpoint printed is the one of the newest "
        "record the node sent (highest seq), else the one it answered on; 'not found' (exit "
        "status 1) if no endpoint answered.",
        1, 1};
    struct common c = {.timeout = TIMEOUT_RESOLVE};
    const char *boot = NULL;
    bool verbose = false;
    const cli_opt_t opts[] = {
        COMMON_OPTS(c, TIMEOUT_RESOLVE),
        {"bootnodes", "LIST", "comma-separated enode URLs / ENRs to start from", &boot, NULL},
        {"verbose", NULL, "log each step and every packet received to stderr", NULL, &verbose},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    p2p_node_t want = cli_node(pos[0], false);
    uint64_t t0 = p2p_now_ns();
    uint64_t deadline = t0 + cli_timeout_ns("--timeout", c.timeout);
    p2p_dc_t dc;
    open_endpoint(&dc, &c);
    want = cli_node_for(pos[0], false, reach_family(&dc));
    struct crawl cr = {.dc = &dc,
                       .max = 4096,
                       .parallel = 3,
                       .queries = 1,
                       .ping_tries = LOOKUP_PING_TRIES,
                       .resp_ns = P2P_NS_PER_S,
                       .have_target = true,
                       .quiet = true,
                       .verbose = verbose,
                       .t0 = t0};
    memcpy(cr.target_pub, want.pubkey, 64);
    memcpy(cr.target_id, want.id, 32);
    /* the endpoint given is tried first, then those the lookup finds */
    if (want.ep.ip.family != 0 && want.ep.udp != 0) target_seen(&cr, &want);
    add_bootnodes(&cr, boot);
    static p2p_enr_t rec, got;
    p2p_node_t rec_from, live;
    bool have_rec = false, have_live = false, done = false;
    for (;;) {
        while (!done && cr.next_cand < cr.ncand) {
            const p2p_node_t *n = &cr.cand[cr.next_cand++];
            int r = confirm(&cr, &got, n, deadline);
            say(&cr, "%s %s", node_url(n),
                r == 2 ? "answered with its record"
                : r    ? "answered the ping"
                       : "did not answer");
            if (r == 2) say(&cr, "record seq %llu", (unsigned long long)got.seq);
            if (r == 2 && (!have_rec || got.seq > rec.seq)) {
                rec = got;
                rec_from = *n;
                have_rec = true;
            }
            if (r >= 1 && !have_live) {
                live = *n;
                have_live = true;
            }
            /* a record no older than the one given ends it */
            done = have_rec ? rec.seq >= want.seq : have_live && want.seq == 0;
        }
        if (done || p2p_now_ns() >= deadline) break;
        crawl_run(&cr, deadline);
        if (cr.next_cand < cr.ncand) continue;
        size_t asked = 0, failed = 0;
        for (size_t i = 0; i < cr.n; i++) {
            asked += cr.v[i].state == N_DONE;
            failed += cr.v[i].state == N_DEAD;
        }
        if (p2p_now_ns() < deadline)
            say(&cr,
                "lookup ended: the %d closest nodes seen were asked (%zu asked, %zu failed, "
                "%zu seen)",
                LOOKUP_RESULTS, asked, failed, cr.n);
        break;
    }
    bool timed_out = !done && p2p_now_ns() >= deadline;
    unsigned family = reach_family(&dc);
    free(cr.v);
    p2p_dc_close(&dc);
    if (have_rec) {
        p2p_node_t n;
        if (p2p_enr_to_node_for(&n, &rec, family) != 0 || n.ep.ip.family == 0 || n.ep.udp == 0)
            n = rec_from; /* a record without a usable endpoint: where it answered */
        printf("%s\n", node_url(&n));
        return 0;
    }
    if (have_live) {
        printf("%s\n", node_url(&live));
        return 0;
    }
    cli_fail("node %s not found (%s)", cli_hex(want.id, 32),
             timed_out ? "--timeout passed" : "no endpoint answered");
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
                       .ping_tries = PING_TRIES,
                       .resp_ns = cli_timeout_ns("--resp-timeout", resp),
                       .json = json,
                       .verbose = verbose,
                       .t0 = t0};
    p2p_dc_t dc;
    open_endpoint(&dc, &c);
    cr.dc = &dc;
    add_bootnodes(&cr, boot);
    crawl_run(&cr, deadline);
    double secs = (double)(p2p_now_ns() - t0) / 1e9;
    /* a failure: one line, and nothing on stdout (--json printed the
     * nodes nobody answered for, and a second line said the same) */
    if (cr.alive == 0)
        cli_fail("no node answered (%zu nodes discovered, %.1f s%s)", cr.n, secs,
                 dropped_note(&dc));
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
    fprintf(stderr, "crawl: %zu nodes discovered, %zu answered, %.1f s%s\n", cr.n, cr.alive, secs,
            dropped_note(&dc));
    free(cr.v);
    p2p_dc_close(&dc);
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
