/*
 * tools/admin_rpc.c: devp2pd's admin JSON-RPC server (see admin_rpc.h).
 * Runs on its own thread "p2p-admin": poll on the listening socket, the
 * client sockets and the thread's waiter (quit).
 */
#include "tools/admin_rpc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "actors/dialsched.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/thread.h"
#include "core/trace.h"
#include "core/utf8.h"
#include "crypto/util.h"
#include "tools/admin_req.h"
#include "tools/json_put.h"
#include "tools/node_metrics.h"
#include "wire/enode.h"

#define RPC_DEADLINE_NS (5 * P2P_NS_PER_S)
#define STR_(x) #x
#define STR(x) STR_(x) /* a limit's value as text */

struct client {
    int fd;
    char *buf;
    size_t len, cap;
    bool more; /* the last serve stopped at its budget or at unsent answers: complete values may
                  remain */
    bool eof;  /* no more input is read (the client shut its sending side, or sent a syntax
                  error): serve what is buffered, write it, then close */
    uint64_t active_ns; /* accepted, or last sent us bytes */
    char *out;          /* answers not yet written: out[out_off, out_len) */
    size_t out_len, out_off;
    uint64_t out_ns; /* answers waiting since, or last written */
};

struct admin_rpc {
    admin_rpc_config_t cfg;
    char *path, *name, *enode, *enr, *listen_addr, *trace_path;
    int lfd;
    struct client cl[ADMIN_RPC_CLIENTS];
    p2p_thread_t th;
    node_endpoint_stats_t own; /* counters when the config names no shared set */
    node_endpoint_stats_t *ep; /* cfg.endpoints or &own; relaxed, read by any thread */
    p2p_peer_info_t *peers;    /* scratch for admin_peers */
    node_metrics_t *metrics;   /* scratch for admin_metrics */
};

static const char *hex(const uint8_t *p, size_t n, char *out)
{
    p2p_hex_encode(out, p, n);
    return out;
}

static json_t *addr_str(const p2p_ip_t *ip, uint16_t port)
{
    char s[P2P_IP_PORT_STRLEN];
    return json_string(p2p_ip_port_format(s, ip, port));
}

/* Appends v (taking its reference) to arr.  Returns 0, or -1 when v could
 * not be built (NULL) or appended: the caller fails the whole call, so an
 * entry is never left out silently. */
static int append(json_t *arr, json_t *v)
{
    return v && json_array_append_new(arr, v) == 0 ? 0 : -1;
}

/* p2p-admin only: one snapshot at a time (admin_nodeInfo, discv4_table) */
static p2p_discovery_info_t disc_info;

/* Our node and record now: discovery re-signs the record when other nodes
 * report a new endpoint for us (and, on ::, adds the other family's), so
 * the enode, enr, ip and discovery port come from its current record, as
 * the node serves it to ENRRequests; without discovery, or if it does not
 * answer, the ones of the start. */
static json_t *node_info(struct admin_rpc *a)
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    if (p2p_enode_parse(&n, a->enode) != 0) return NULL;
    const char *url = a->enode, *enr = a->enr;
    char url_now[P2P_ENODE_MAX_TEXT], enr_now[P2P_ENR_MAX_TEXT];
    int udp = a->cfg.udp_port;
    p2p_node_t rn;
    if (a->cfg.disc &&
        p2p_discovery_info(a->cfg.disc, &disc_info, p2p_now_ns() + RPC_DEADLINE_NS) == 0 &&
        p2p_enr_to_node(&rn, &disc_info.record) == 0 &&
        p2p_enode_format(url_now, sizeof url_now, &rn) == 0 &&
        p2p_enr_to_text(enr_now, sizeof enr_now, &disc_info.record) == 0) {
        n = rn;
        url = url_now;
        enr = enr_now;
        udp = rn.ep.udp;
    }
    char idh[65], ip[P2P_IP_STRLEN];
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:i}, s:s, s:{}}", "id", hex(n.id, 32, idh),
                     "name", a->name, "enode", url, "enr", enr, "ip", p2p_ip_format(ip, &n.ep.ip),
                     "ports", "discovery", udp, "listener", a->cfg.tcp_port, "listenAddr",
                     a->listen_addr, "protocols");
}

static json_t *peers(struct admin_rpc *a, const char **err)
{
    if (!a->cfg.srv) return json_array();
    size_t n = 0;
    int rc = p2p_server_peers(a->cfg.srv, a->peers, ADMIN_RPC_PEERS_LISTED, &n);
    if (rc) {
        *err = rc == P2P_ECLOSED ? "server stopped" : p2p_strerror(rc);
        return NULL;
    }
    json_t *arr = json_array();
    if (!arr) return NULL;
    for (size_t i = 0; i < n; i++) {
        const p2p_peer_info_t *p = &a->peers[i];
        p2p_node_t node = {
            .ep = {.ip = p->remote_ip, .tcp = p->remote_port, .udp = p->remote_port}};
        memcpy(node.pubkey, p->pubkey, 64);
        memcpy(node.id, p->id, 32);
        char url[P2P_ENODE_MAX_TEXT], idh[65];
        if (p2p_enode_format(url, sizeof url, &node) != 0) url[0] = 0;
        json_t *caps = json_array();
        int bad = caps ? 0 : -1;
        for (size_t k = 0; k < p->ncaps && k < P2P_PEER_INFO_CAPS && !bad; k++) {
            char c[P2P_CAP_NAME_MAX + 16];
            snprintf(c, sizeof c, "%s/%u", p->caps[k].name, p->caps[k].version);
            bad = append(caps, json_string(c));
        }
        /* "o" takes caps' reference even when the pack fails */
        if (bad || append(arr, json_pack("{s:s, s:s, s:s, s:o, s:{s:o, s:o, s:b, s:b, s:b}, s:{}}",
                                         "enode", url, "id", hex(p->id, 32, idh), "name", p->name,
                                         "caps", caps, "network", "localAddress",
                                         addr_str(&p->local_ip, p->local_port), "remoteAddress",
                                         addr_str(&p->remote_ip, p->remote_port), "inbound",
                                         p->inbound, "trusted", p->trusted, "static",
                                         p->static_dialed, "protocols")) != 0) {
            if (bad) json_decref(caps);
            json_decref(arr);
            *err = "cannot encode the peer list";
            return NULL;
        }
    }
    return arr;
}

static json_t *disc_table(struct admin_rpc *a, const char **err)
{
    if (!a->cfg.disc) {
        *err = "discovery is disabled";
        return NULL;
    }
    if (p2p_discovery_info(a->cfg.disc, &disc_info, p2p_now_ns() + RPC_DEADLINE_NS) != 0) {
        *err = "discovery did not answer";
        return NULL;
    }
    json_t *buckets = json_array();
    int bad = buckets ? 0 : -1;
    for (unsigned b = 0; b < P2P_KAD_NBUCKETS && !bad; b++) {
        json_t *bk = json_array();
        bad = bk ? 0 : -1;
        for (unsigned i = 0; i < disc_info.buckets[b].n && i < P2P_KAD_BUCKET_SIZE && !bad; i++) {
            const p2p_kad_entry_t *e = &disc_info.buckets[b].e[i];
            char url[P2P_ENODE_MAX_TEXT], idh[65];
            if (p2p_enode_format(url, sizeof url, &e->node) != 0) url[0] = 0;
            bad = append(bk, json_pack("{s:s, s:s, s:I, s:b, s:i}", "id", hex(e->node.id, 32, idh),
                                       "enode", url, "seq", (json_int_t)e->node.seq, "live",
                                       e->live, "livenessChecks", (int)e->checks));
        }
        if (bad) {
            json_decref(bk);
        } else if (append(buckets, bk) != 0) {
            bad = -1; /* append released bk */
        }
    }
    if (bad) {
        json_decref(buckets);
        *err = "cannot encode the table";
        return NULL;
    }
    json_t *c = json_object();
#define P2P__CTR_JSON(name, desc)                                                                  \
    json_put(c, #name, json_integer((json_int_t)disc_info.shell.name), &bad);
    P2P_DISCOVERY_COUNTERS(P2P__CTR_JSON)
#undef P2P__CTR_JSON
    json_t *t = NULL;
    if (!bad) /* "o" takes both references even when the pack fails */
        t = json_pack("{s:i, s:i, s:b, s:o, s:o}", "tableLen", (int)disc_info.table_len, "lookups",
                      (int)disc_info.lookups, "initDone", disc_info.init_done, "buckets", buckets,
                      "counters", c);
    if (!t) {
        if (bad) {
            json_decref(buckets);
            json_decref(c);
        }
        *err = "cannot encode the table";
    }
    return t;
}

/* {"reason name": count} of the non-zero entries (codes without a name
 * of their own share the unknown-reason name: summed); NULL when out of
 * memory. */
static json_t *by_reason(const uint64_t v[256])
{
    json_t *o = json_object();
    int bad = o ? 0 : -1;
    for (unsigned r = 0; r < 256 && !bad; r++) {
        if (!v[r]) continue;
        const char *k = p2p_disc_reason_str(r);
        json_t *had = json_object_get(o, k);
        json_int_t n = (json_int_t)v[r] + (had ? json_integer_value(had) : 0);
        json_put(o, k, json_integer(n), &bad);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The admin_metrics result, whole or NULL (*err): a member left out
 * would read as a part the node does not run (server, discovery). */
static json_t *metrics(struct admin_rpc *a, const char **err)
{
    node_metrics_t *m = a->metrics;
    node_metrics_collect(m, a->cfg.srv, a->cfg.disc, a->cfg.endpoints, a->cfg.resolver,
                         p2p_now_ns() + RPC_DEADLINE_NS);
    json_t *o = json_object();
    int bad = o ? 0 : -1;
    if (m->have_server) {
        const p2p_server_stats_t *st = &m->srv;
        json_t *s = json_object();
#define SRV_JSON(field, key, help) json_put(s, key, json_integer((json_int_t)st->field), &bad);
        NODE_SERVER_COUNTERS(SRV_JSON)
#undef SRV_JSON
        json_put(s, "connThreadsParked", json_integer((json_int_t)st->conn_threads_parked), &bad);
        json_put(s, "staticNodes", json_integer((json_int_t)st->static_nodes), &bad);
        json_put(s, "trustedNodes", json_integer((json_int_t)st->trusted_nodes), &bad);
        json_put(s, "disconnectsSent", by_reason(st->disc_sent), &bad);
        json_put(s, "disconnectsReceived", by_reason(st->disc_recv), &bad);
        json_put(s, "connectionsRejected", by_reason(st->rejected), &bad);
        json_t *skip = json_object();
        for (unsigned r = 1; skip && r < P2P_DIAL_SKIP_COUNT; r++)
            if (st->candidates_skipped_by[r])
                json_put(skip, p2p_dial_skip_name((p2p_dial_skip_t)r),
                         json_integer((json_int_t)st->candidates_skipped_by[r]), &bad);
        json_put(s, "candidatesSkippedBy", skip, &bad);
        /* not known (stopping, timed out): null */
        json_put(s, "peers", m->peers < 0 ? json_null() : json_integer(m->peers), &bad);
        json_put(s, "inbound", m->peers < 0 ? json_null() : json_integer(m->inbound), &bad);
        json_put(s, "outbound", m->peers < 0 ? json_null() : json_integer(m->outbound), &bad);
        json_put(o, "server", s, &bad);
    }
    if (m->have_disc) {
        json_t *c = json_object(), *core = json_object();
#define P2P__CTR_JSON(name, desc)                                                                  \
    json_put(c, #name, json_integer((json_int_t)m->disc->shell.name), &bad);
        P2P_DISCOVERY_COUNTERS(P2P__CTR_JSON)
#undef P2P__CTR_JSON
#define P2P__CORE_JSON(name, desc)                                                                 \
    json_put(core, #name, json_integer((json_int_t)m->disc->core.name), &bad);
        P2P_DISC_COUNTERS(P2P__CORE_JSON)
#undef P2P__CORE_JSON
        json_put(c, "tableLen", json_integer((json_int_t)m->disc->table_len), &bad);
        json_put(c, "pendingRequests", json_integer((json_int_t)m->disc->pending), &bad);
        json_put(c, "lookupsRunning", json_integer((json_int_t)m->disc->lookups), &bad);
        json_put(c, "core", core, &bad);
        json_put(o, "discovery", c, &bad);
    } else if (m->disc_err) {
        /* running but not answering: null and why, since a member left
         * out reads as --nodiscover */
        json_put(o, "discovery", json_null(), &bad);
        json_put(o, "discoveryError", json_string(p2p_strerror(m->disc_err)), &bad);
    }
    if (m->have_endpoints)
        json_put(o, "endpoints",
                 json_pack("{s:I, s:I, s:I}", "adminAcceptPauses",
                           (json_int_t)m->admin_accept_pauses, "adminEvictions",
                           (json_int_t)m->admin_evictions, "metricsAcceptPauses",
                           (json_int_t)m->metrics_accept_pauses),
                 &bad);
    if (m->have_resolver)
        json_put(o, "resolver",
                 json_pack("{s:I, s:I, s:I, s:I, s:I}", "resolverRequests",
                           (json_int_t)m->resolver.requests, "resolverFound",
                           (json_int_t)m->resolver.found, "resolverMissed",
                           (json_int_t)m->resolver.missed, "resolverRefused",
                           (json_int_t)m->resolver.refused, "resolverDropped",
                           (json_int_t)m->resolver.dropped),
                 &bad);
    json_put(o, "process",
             json_pack("{s:I, s:I, s:I, s:I}", "residentBytes", (json_int_t)m->rss_bytes, "threads",
                       (json_int_t)m->threads, "openFds", (json_int_t)m->fds, "logLinesLost",
                       (json_int_t)m->log_lost),
             &bad);
    if (bad) {
        json_decref(o);
        *err = "cannot encode the metrics";
        return NULL;
    }
    return o;
}

/* debug_trace: pauses or resumes the recording (recording 0 or 1; -1
 * only reports it).  The rings keep what they hold while paused. */
static json_t *debug_trace(struct admin_rpc *a, int recording, const char **err)
{
    if (!a->trace_path) {
        *err = "no trace rings: start the node with --trace";
        return NULL;
    }
    if (recording >= 0) {
        p2p_trace_enable(recording == 1);
        P2P_INFO(recording ? "Trace recording resumed" : "Trace recording paused", "file=%s",
                 a->trace_path);
    }
    return json_pack("{s:s, s:b}", "file", a->trace_path, "recording", p2p_trace_on());
}

/* Executes one request.  Returns its response (a new reference), or NULL
 * when none could be built (out of memory: the caller closes). */
static json_t *handle(struct admin_rpc *a, json_t *req)
{
    admin_rpc_req_t rq;
    json_t *reply;
    int drc = admin_rpc_decode(&rq, &reply, req, a->cfg.family);
    if (drc == P2P_EINVAL) return reply;
    if (drc != 0) return admin_rpc_error(rq.id, -32603, "internal error");
    const char *err = NULL;
    json_t *res = NULL;
    switch (rq.method) {
    case ADMIN_RPC_NODE_INFO:
        res = node_info(a);
        break;
    case ADMIN_RPC_PEERS:
        res = peers(a, &err);
        break;
    case ADMIN_RPC_DISCV4_TABLE:
        res = disc_table(a, &err);
        break;
    case ADMIN_RPC_METRICS:
        res = metrics(a, &err);
        break;
    case ADMIN_RPC_DEBUG_TRACE:
        res = debug_trace(a, rq.recording, &err);
        break;
    case ADMIN_RPC_ADD_PEER:
    case ADMIN_RPC_REMOVE_PEER:
    case ADMIN_RPC_ADD_TRUSTED:
    case ADMIN_RPC_REMOVE_TRUSTED:
        if (!a->cfg.srv) {
            err = "no RLPx server (--bootnode)";
        } else {
            int rc;
            if (rq.method == ADMIN_RPC_ADD_PEER && !rq.node.ep.ip.family && !a->cfg.can_resolve)
                rc = P2P_EINVAL, err = "enode without an address: needs discovery to find it";
            else if (rq.method == ADMIN_RPC_ADD_PEER)
                rc = p2p_server_add_peer(a->cfg.srv, &rq.node);
            else if (rq.method == ADMIN_RPC_REMOVE_PEER) {
                rc = p2p_server_remove_peer(a->cfg.srv, rq.node.id);
                /* after the removal: the dialer asks nothing more for it */
                if (!rc && a->cfg.removed_static)
                    a->cfg.removed_static(a->cfg.removed_ctx, rq.node.id);
            } else if (rq.method == ADMIN_RPC_ADD_TRUSTED)
                rc = p2p_server_add_trusted(a->cfg.srv, rq.node.id);
            else
                rc = p2p_server_remove_trusted(a->cfg.srv, rq.node.id);
            if (!rc)
                res = json_true();
            else if (rc == P2P_EFULL && rq.method == ADMIN_RPC_ADD_PEER)
                err = "static node set full (" STR(P2P_SERVER_MAX_STATIC) " nodes): remove one "
                                                                          "first";
            else if (rc == P2P_EFULL && rq.method == ADMIN_RPC_ADD_TRUSTED)
                err = "trusted node set full (" STR(P2P_SERVER_MAX_TRUSTED) " nodes): remove "
                                                                            "one first";
            else if (!err)
                err = p2p_strerror(rc);
        }
        break;
    case ADMIN_RPC_NMETHODS:
        break;
    }
    if (!res) return admin_rpc_error(rq.id, -32000, err ? err : "internal error");
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", rq.id ? rq.id : json_null(),
                     "result", res);
}

static void client_close(struct client *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static size_t unsent(const struct client *c)
{
    return c->out_len - c->out_off;
}

/* Appends v (taking its reference) as one line to c's unsent answers.
 * Returns 0, or -1 when out of memory (the caller closes).  Encoded with
 * json_dumpb into the answers' buffer: json_dumps leaves out an object's
 * key when growing its buffer for the key fails (jansson ignores that
 * error) and returns the rest as if complete, an answer that is not JSON;
 * json_dumpb's writes into a buffer of the size it measured cannot fail. */
static int queue_json(struct client *c, json_t *v)
{
    size_t len = v ? json_dumpb(v, NULL, 0, JSON_COMPACT) : 0, keep = unsent(c);
    if (c->out_off) memmove(c->out, c->out + c->out_off, keep);
    c->out_off = 0;
    c->out_len = keep;
    char *nb = len ? realloc(c->out, keep + len + 1) : NULL;
    if (nb) c->out = nb;
    /* the second encoding can still fail (jansson's own allocations) */
    if (!nb || json_dumpb(v, nb + keep, len, JSON_COMPACT) != len) {
        json_decref(v);
        return -1;
    }
    json_decref(v);
    nb[keep + len] = '\n';
    c->out_len = keep + len + 1;
    if (!keep) c->out_ns = p2p_now_ns();
    return 0;
}

/* Writes what the socket takes of c's unsent answers, without waiting.
 * Returns -1 to close. */
static int client_flush(struct client *c)
{
    while (unsent(c)) {
        ssize_t w = send(c->fd, c->out + c->out_off, unsent(c), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->out_ns = p2p_now_ns();
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return w < 0 && errno == EAGAIN ? 0 : -1;
        }
    }
    free(c->out); /* a large batch's answers are not kept for the connection's life */
    c->out = NULL;
    c->out_len = c->out_off = 0;
    return 0;
}

/* Reads what c has sent into its buffer (grown up to ADMIN_RPC_INPUT_MAX);
 * sets c->eof at the end of its input, or when it holds ADMIN_RPC_INPUT_MAX
 * bytes without a complete value (answered -32600, then closed).  Returns
 * -1 to close. */
static int client_read(struct client *c)
{
    size_t nc = admin_rpc_buf_cap(c->cap, c->len);
    if (nc == 0 && c->more) return 0; /* full of values still to serve */
    if (nc == 0) {
        /* too big: say so (as for any other bad input) rather than close
         * without a word; where the value ends is not known: then close */
        char msg[96];
        snprintf(msg, sizeof msg, "invalid request: over %u bytes without a complete JSON value",
                 ADMIN_RPC_INPUT_MAX);
        c->eof = true;
        c->len = 0;
        return queue_json(c, admin_rpc_error(NULL, -32600, msg));
    }
    if (nc != c->cap) {
        char *nb = realloc(c->buf, nc);
        if (!nb) return -1;
        c->buf = nb;
        c->cap = nc;
    }
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r == 0) c->eof = true;
    if (r < 0 && errno != EAGAIN && errno != EINTR) return -1;
    if (r > 0) {
        c->len += (size_t)r;
        c->active_ns = p2p_now_ns();
    }
    return 0;
}

/* Serves the complete requests in c's buffer (decoded by admin_rpc_next
 * and admin_rpc_decode) until ADMIN_RPC_SERVE_BUDGET requests are served
 * (a batch counts each of its elements): c->more tells whether it stopped
 * at the budget (the loop comes back at once).  Returns -1 to close. */
static int client_serve(struct admin_rpc *a, struct client *c)
{
    c->more = false;
    for (size_t k = 0; k < ADMIN_RPC_SERVE_BUDGET;) {
        /* a client that does not read its answers gets no more of them
         * (and holds nobody else up: the socket is never waited on) */
        if (unsent(c) > ADMIN_RPC_OUTPUT_HIGH) {
            if (client_flush(c) != 0) return -1;
            if (unsent(c) > ADMIN_RPC_OUTPUT_HIGH) {
                c->more = true; /* served again once the client reads */
                return 0;
            }
        }
        json_t *req;
        size_t used;
        int rc = admin_rpc_next(&req, &used, c->buf, c->len);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (rc == 0 && c->eof && c->len) {
            /* the input ended inside a value, or with bytes that cannot
             * start or end one (jansson reports an error at the last byte
             * as "incomplete"): malformed, answered like any other */
            c->len = 0;
            return queue_json(c, admin_rpc_error(NULL, -32700, "parse error"));
        }
        if (rc == 0) return 0; /* nothing or an incomplete value */
        if (rc == P2P_ENOMEM) {
            /* where the value ends is not known either: answer, then close */
            c->eof = true;
            c->len = 0;
            return queue_json(c, admin_rpc_error(NULL, -32603, "internal error: out of memory"));
        }
        if (rc < 0) {
            /* the stream cannot be resynchronised: answer, then close */
            c->eof = true;
            c->len = 0;
            return queue_json(c, admin_rpc_error(NULL, -32700, "parse error"));
        }
        json_t *rep;
        bool quiet = false; /* JSON-RPC 2.0: notifications get no reply */
        size_t nreq = json_is_array(req) ? json_array_size(req) : 1;
        k += nreq ? nreq : 1;
        if (json_is_array(req) && nreq == 0) {
            rep = admin_rpc_error(NULL, -32600, "invalid request: empty batch");
        } else if (nreq > ADMIN_RPC_BATCH_MAX) {
            char msg[96];
            snprintf(msg, sizeof msg, "invalid request: batch too large (%zu requests, at most %d)",
                     nreq, ADMIN_RPC_BATCH_MAX);
            rep = admin_rpc_error(NULL, -32600, msg);
        } else if (json_is_array(req)) {
            rep = json_array();
            /* a batch answered in part would be a silent loss: close */
            for (size_t i = 0; rep && i < json_array_size(req); i++) {
                json_t *r = json_array_get(req, i), *one = handle(a, r);
                if (admin_rpc_is_notification(r)) {
                    json_decref(one);
                } else if (append(rep, one) != 0) {
                    json_decref(rep);
                    rep = NULL;
                }
            }
            quiet = rep && json_array_size(rep) == 0;
        } else {
            rep = handle(a, req);
            quiet = admin_rpc_is_notification(req);
        }
        json_decref(req);
        if (quiet) {
            json_decref(rep);
            continue;
        }
        if (!rep || queue_json(c, rep) != 0) return -1;
    }
    c->more = true;
    return 0;
}

static int run(p2p_thread_t *self, void *arg)
{
    struct admin_rpc *a = arg;
    struct pollfd fds[1 + ADMIN_RPC_CLIENTS];
    uint64_t paused_until = 0; /* accepting paused (out of descriptors) */
    while (!p2p_thread_should_quit(self)) {
        uint64_t now = p2p_now_ns(), deadline = now + P2P_NS_PER_S;
        bool paused = now < paused_until, busy = false;
        if (paused && paused_until < deadline) deadline = paused_until;
        unsigned n = 0;
        /* a negative fd is skipped by poll: the queued connection that
         * cannot be accepted would wake it at once, forever; so would a
         * client at the end of its input with nothing left to write */
        fds[n++] = (struct pollfd){.fd = paused ? -1 : a->lfd, .events = POLLIN};
        for (int i = 0; i < ADMIN_RPC_CLIENTS; i++) {
            struct client *c = &a->cl[i];
            if (c->fd >= 0 && unsent(c) && now - c->out_ns >= RPC_DEADLINE_NS) {
                P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Admin socket: client does not read its answers",
                           "action=closed unsent=%zu", unsent(c));
                client_close(c);
            }
            /* over ADMIN_RPC_OUTPUT_HIGH unsent: only writable matters */
            bool blocked = unsent(c) > ADMIN_RPC_OUTPUT_HIGH;
            short ev = (short)((c->eof || blocked ? 0 : POLLIN) | (unsent(c) ? POLLOUT : 0));
            fds[n++] = (struct pollfd){.fd = ev ? c->fd : -1, .events = ev};
            busy |= c->fd >= 0 && c->more && !blocked;
        }
        /* buffered requests left by a budget: look at the sockets without
         * sleeping (the waiter's quit is checked at the top of the loop) */
        int rc = busy ? (poll(fds, n, 0) < 0 ? P2P_ESYS : 0)
                      : p2p_waiter_poll(&self->waiter, fds, n, deadline);
        if (rc == P2P_ESYS) {
            /* poll itself failed (ENOMEM...): retry later, not at once */
            if (errno != EINTR)
                (void)p2p_waiter_wait(&self->waiter,
                                      p2p_now_ns() + ADMIN_RPC_ACCEPT_PAUSE_MS * P2P_NS_PER_MS);
            continue;
        }
        if (fds[0].revents & POLLIN) {
            int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            int e = errno;
            if (fd < 0 && (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)) {
                atomic_fetch_add_explicit(&a->ep->admin_accept_pauses, 1, memory_order_relaxed);
                P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Admin socket: accept failed, pausing accepts",
                           "err=\"%s\" pause=200ms", strerror(e));
                paused_until = p2p_now_ns() + ADMIN_RPC_ACCEPT_PAUSE_MS * P2P_NS_PER_MS;
            }
            if (fd >= 0) {
                /* a free slot, else the longest-idle client's: leaked or
                 * idle connections never lock a new client out */
                int slot = 0;
                for (int i = 0; i < ADMIN_RPC_CLIENTS && a->cl[slot].fd >= 0; i++)
                    if (a->cl[i].fd < 0 || a->cl[i].active_ns < a->cl[slot].active_ns) slot = i;
                if (a->cl[slot].fd >= 0) {
                    atomic_fetch_add_explicit(&a->ep->admin_evictions, 1, memory_order_relaxed);
                    P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Admin socket: too many clients",
                               "action=\"closed the longest-idle one\" clients=%d",
                               ADMIN_RPC_CLIENTS);
                    client_close(&a->cl[slot]);
                }
                a->cl[slot].fd = fd;
                a->cl[slot].active_ns = p2p_now_ns();
                fds[1 + slot].revents = 0; /* the old client's events */
            }
        }
        for (int i = 0; i < ADMIN_RPC_CLIENTS; i++) {
            struct client *c = &a->cl[i];
            short ev = fds[1 + i].revents;
            if (c->fd < 0) continue;
            if (unsent(c) && (ev & (POLLOUT | POLLHUP | POLLERR)) && client_flush(c) != 0) {
                client_close(c);
                continue;
            }
            bool blocked = unsent(c) > ADMIN_RPC_OUTPUT_HIGH;
            bool readable = !c->eof && !blocked && (ev & (POLLIN | POLLHUP | POLLERR));
            /* answers are written at once (usually all of them), the rest
             * when the socket takes them; closed at the end of its input
             * only once every complete request it sent has been answered
             * and the answers written */
            if ((readable || (c->more && !blocked)) &&
                ((readable && client_read(c) != 0) || client_serve(a, c) != 0 ||
                 client_flush(c) != 0)) {
                client_close(c);
                continue;
            }
            if (c->eof && !c->more && !unsent(c)) client_close(c);
        }
    }
    return 0;
}

int admin_rpc_start(admin_rpc_t **out, char *msg, size_t msglen, const admin_rpc_config_t *cfg)
{
    *out = NULL;
    struct admin_rpc *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(msg, msglen, "admin socket: out of memory");
        return P2P_ENOMEM;
    }
    a->cfg = *cfg;
    a->ep = cfg->endpoints ? cfg->endpoints : &a->own;
    a->path = strdup(cfg->path);
    a->name = strdup(cfg->name);
    a->enode = strdup(cfg->enode);
    a->enr = strdup(cfg->enr);
    a->listen_addr = strdup(cfg->listen_addr);
    a->trace_path = cfg->trace_path ? strdup(cfg->trace_path) : NULL;
    /* admin_nodeInfo's name as valid UTF-8 (json_pack rejects anything else) */
    if (a->name) p2p_utf8_clean(a->name, strlen(a->name) + 1, a->name, strlen(a->name));
    a->peers = calloc(ADMIN_RPC_PEERS_LISTED, sizeof *a->peers);
    a->metrics = node_metrics_new();
    for (int i = 0; i < ADMIN_RPC_CLIENTS; i++) a->cl[i].fd = -1;
    a->lfd = -1;
    if (!a->path || !a->name || !a->enode || !a->enr || !a->listen_addr || !a->peers ||
        (cfg->trace_path && !a->trace_path) || !a->metrics) {
        admin_rpc_stop(a);
        snprintf(msg, msglen, "admin socket: out of memory");
        return P2P_ENOMEM;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->path) >= sizeof sa.sun_path) {
        snprintf(msg, msglen, "IPC path %s is too long", cfg->path);
        admin_rpc_stop(a);
        return P2P_EINVAL;
    }
    memcpy(sa.sun_path, cfg->path, strlen(cfg->path) + 1);
    unlink(cfg->path); /* a stale socket of a previous run (the datadir lock is ours) */
    a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* owner only, whatever the umask: chmod before listen, so nobody can
     * connect while the socket still has the umask's mode */
    if (a->lfd < 0 || bind(a->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(cfg->path, 0600) != 0 || listen(a->lfd, 16) != 0) {
        snprintf(msg, msglen, "cannot listen on %s: %s", cfg->path, strerror(errno));
        admin_rpc_stop(a);
        return P2P_ESYS;
    }
    if (p2p_thread_spawn(&a->th, "p2p-admin", 0, run, a) != 0) {
        snprintf(msg, msglen, "cannot start the admin thread: %s", strerror(errno));
        admin_rpc_stop(a);
        return P2P_ESYS;
    }
    *out = a;
    return 0;
}

uint64_t admin_rpc_accept_pauses(const admin_rpc_t *a)
{
    return atomic_load_explicit(&a->ep->admin_accept_pauses, memory_order_relaxed);
}

uint64_t admin_rpc_evictions(const admin_rpc_t *a)
{
    return atomic_load_explicit(&a->ep->admin_evictions, memory_order_relaxed);
}

void admin_rpc_stop(admin_rpc_t *a)
{
    if (!a) return;
    if (a->th.started && !a->th.joined) {
        p2p_thread_request_quit(&a->th);
        (void)p2p_thread_join(&a->th, NULL);
    }
    for (int i = 0; i < ADMIN_RPC_CLIENTS; i++) client_close(&a->cl[i]);
    if (a->lfd >= 0) {
        close(a->lfd);
        unlink(a->path);
    }
    free(a->path);
    free(a->name);
    free(a->enode);
    free(a->enr);
    free(a->listen_addr);
    free(a->trace_path);
    free(a->peers);
    node_metrics_free(a->metrics);
    free(a);
}
