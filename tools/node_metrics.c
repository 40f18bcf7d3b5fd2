/*
 * tools/node_metrics.c: the metrics snapshot shared by admin_metrics and
 * the Prometheus endpoint (see node_metrics.h).  No state of its own: every
 * call works on the caller's node_metrics_t, so p2p-admin and p2p-metrics
 * may collect at the same time.
 */
#include "tools/node_metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/dialsched.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "wire/p2p_msg.h"

node_metrics_t *node_metrics_new(void)
{
    node_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->disc = calloc(1, sizeof *m->disc);
    if (!m->disc) {
        node_metrics_free(m);
        return NULL;
    }
    return m;
}

void node_metrics_free(node_metrics_t *m)
{
    if (!m) return;
    free(m->disc);
    free(m);
}

/* Called under the mailbox registry lock: quick, no allocation.  Counters
 * add up destroyed (live false) and live mailboxes of a name, so they
 * never go back; the gauges are of the live ones. */
static void add_mailbox(void *ctx, const char *name, const p2p_mailbox_stats_t *stp, bool live)
{
    node_metrics_t *m = ctx;
    node_metrics_mailbox_t *e = NULL;
    for (size_t i = 0; i < m->nmailboxes && !e; i++)
        if (strcmp(m->mailboxes[i].name, name) == 0) e = &m->mailboxes[i];
    if (!e) {
        if (m->nmailboxes >= NODE_METRICS_MAILBOX_NAMES) return;
        e = &m->mailboxes[m->nmailboxes++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
    }
    const p2p_mailbox_stats_t st = *stp;
    e->count += live;
    e->st.pushed += st.pushed;
    e->st.popped += st.popped;
    e->st.full_rejections += st.full_rejections;
    e->st.blocked_waits += st.blocked_waits;
    if (st.high_water > e->st.high_water) e->st.high_water = st.high_water;
    e->st.depth += st.depth;
    e->st.capacity += st.capacity;
}

static void read_process(node_metrics_t *m)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        unsigned long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "VmRSS: %llu kB", &v) == 1) m->rss_bytes = v * 1024;
            if (sscanf(line, "Threads: %llu", &v) == 1) m->threads = (unsigned)v;
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        const struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') m->fds++;
        closedir(d);
        if (m->fds) m->fds--; /* the directory stream itself */
    }
}

void node_metrics_collect(node_metrics_t *m, p2p_server_t *srv, p2p_discovery_t *disc,
                          const node_endpoint_stats_t *ep, const resolver_t *res,
                          uint64_t deadline_ns)
{
    m->have_server = false;
    m->have_disc = false;
    m->peers = 0;
    m->inbound = m->outbound = 0;
    m->nmailboxes = 0;
    m->rss_bytes = 0;
    m->threads = m->fds = 0;
    m->log_lost = p2p_log_lost();
    m->have_endpoints = ep != NULL;
    if (ep) {
        m->admin_accept_pauses =
            atomic_load_explicit(&ep->admin_accept_pauses, memory_order_relaxed);
        m->admin_evictions = atomic_load_explicit(&ep->admin_evictions, memory_order_relaxed);
        m->metrics_accept_pauses =
            atomic_load_explicit(&ep->metrics_accept_pauses, memory_order_relaxed);
    }
    m->have_resolver = res != NULL;
    if (res) resolver_get_stats(res, &m->resolver);
    if (srv) {
        p2p_server_get_stats(srv, &m->srv);
        unsigned in = 0;
        m->peers = p2p_server_peer_counts(srv, &in);
        if (m->peers >= 0 && in <= (unsigned)m->peers) {
            m->inbound = in;
            m->outbound = (unsigned)m->peers - in;
        }
        m->have_server = true;
    }
    m->disc_err = disc ? p2p_discovery_info(disc, m->disc, deadline_ns) : 0;
    m->have_disc = disc && m->disc_err == 0;
    p2p_mailbox_foreach_totals(add_mailbox, m);
    read_process(m);
}

/* ---- Prometheus text format ------------------------------------------------ */

struct out {
    char *p;
    size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->p + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP devp2p_%s %s\n# TYPE devp2p_%s %s\n", name, help, name, type);
}

static void metric(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    head(o, name, type, help);
    put(o, "devp2p_%s %llu\n", name, (unsigned long long)v);
}

/* A label value: the reason strings are plain ASCII; escape \ " and newline anyway. */
static void label_value(struct out *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(o, "\\%c", *s);
        else if (*s == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *s);
    }
}

static void by_reason(struct out *o, const char *name, const char *help, const uint64_t v[256])
{
    head(o, name, "counter", help);
    for (unsigned r = 0; r < 256; r++) {
        if (!v[r]) continue;
        put(o, "devp2p_%s{code=\"%u\",reason=\"", name, r);
        label_value(o, p2p_disc_reason_str(r));
        put(o, "\"} %llu\n", (unsigned long long)v[r]);
    }
}

static void server_metrics(struct out *o, const node_metrics_t *m)
{
    const p2p_server_stats_t *s = &m->srv;
    /* peer counts the run loop did not give (stopping, timed out) are left
     * out rather than shown as 0 */
    if (m->peers >= 0) {
        metric(o, "peers", "gauge", "connected peers", (uint64_t)m->peers);
        metric(o, "peers_inbound", "gauge", "connected peers that dialled us", m->inbound);
        metric(o, "peers_outbound", "gauge", "connected peers we dialled", m->outbound);
    }
#define SRV_COUNTER(field, key, help) metric(o, #field "_total", "counter", help, s->field);
    NODE_SERVER_COUNTERS(SRV_COUNTER)
#undef SRV_COUNTER
    metric(o, "conn_threads_parked", "gauge", "idle connection threads parked for reuse",
           s->conn_threads_parked);
    metric(o, "static_nodes", "gauge", "nodes in the static set (at most 1024)", s->static_nodes);
    metric(o, "trusted_nodes", "gauge", "nodes in the trusted set (at most 1024)",
           s->trusted_nodes);
    metric(o, "inbound_history", "gauge",
           "IPs in the 30 s inbound history (at most 16384; expired entries leave it)",
           s->inbound_history);
    by_reason(o, "disconnects_sent_total", "Disconnect messages sent, by reason", s->disc_sent);
    by_reason(o, "disconnects_received_total", "Disconnect messages received, by reason",
              s->disc_recv);
    by_reason(o, "connections_rejected_total", "connections refused, by reason", s->rejected);
    /* the per-reason split of candidates_skipped_total (p2p_dial_skip_t;
     * index 0, "started", is a dial, not a skip) */
    head(o, "candidates_skipped_by_reason_total", "counter",
         "discovery candidates not dialled, by reason");
    for (unsigned r = 1; r < P2P_DIAL_SKIP_COUNT; r++) {
        if (!s->candidates_skipped_by[r]) continue;
        put(o, "devp2p_candidates_skipped_by_reason_total{reason=\"");
        label_value(o, p2p_dial_skip_name((p2p_dial_skip_t)r));
        put(o, "\"} %llu\n", (unsigned long long)s->candidates_skipped_by[r]);
    }
}

static void disc_metrics(struct out *o, const node_metrics_t *m)
{
    const p2p_discovery_info_t *d = m->disc;
    metric(o, "discovery_table_nodes", "gauge", "live nodes in the discovery table", d->table_len);
    metric(o, "discovery_pending_requests", "gauge", "discovery requests outstanding", d->pending);
    metric(o, "discovery_lookups_running", "gauge", "discovery lookups running", d->lookups);
#define SHELL_CTR(name, desc)                                                                      \
    metric(o, "discovery_" #name "_total", "counter", desc, d->shell.name);
    P2P_DISCOVERY_COUNTERS(SHELL_CTR)
#undef SHELL_CTR
#define CORE_CTR(name, desc)                                                                       \
    metric(o, "discovery_core_" #name "_total", "counter", desc, d->core.name);
    P2P_DISC_COUNTERS(CORE_CTR)
#undef CORE_CTR
}

static void mailbox_metrics(struct out *o, const node_metrics_t *m)
{
    static const struct {
        const char *name, *type, *help;
    } f[] = {
        {"mailbox_count", "gauge", "live mailboxes of this name"},
        {"mailbox_pushed_total", "counter", "messages accepted (all mailboxes of this name)"},
        {"mailbox_popped_total", "counter", "messages delivered (all mailboxes of this name)"},
        {"mailbox_full_rejections_total", "counter", "try_push calls refused: mailbox full"},
        {"mailbox_blocked_waits_total", "counter", "pushes that waited on a full mailbox"},
        {"mailbox_high_water", "gauge", "highest depth observed (maximum over the mailboxes)"},
        {"mailbox_depth", "gauge", "current depth (sum)"},
        {"mailbox_capacity", "gauge", "capacity (sum)"},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        head(o, f[k].name, f[k].type, f[k].help);
        for (size_t i = 0; i < m->nmailboxes; i++) {
            const node_metrics_mailbox_t *e = &m->mailboxes[i];
            const uint64_t v[] = {e->count,
                                  e->st.pushed,
                                  e->st.popped,
                                  e->st.full_rejections,
                                  e->st.blocked_waits,
                                  e->st.high_water,
                                  e->st.depth,
                                  e->st.capacity};
            put(o, "devp2p_%s{mailbox=\"", f[k].name);
            label_value(o, e->name);
            put(o, "\"} %llu\n", (unsigned long long)v[k]);
        }
    }
}

size_t node_metrics_prometheus(const node_metrics_t *m, char *out, size_t cap)
{
    struct out o = {out, cap, 0};
    if (cap) out[0] = 0;
    if (m->have_server) server_metrics(&o, m);
    if (m->have_disc) disc_metrics(&o, m);
    mailbox_metrics(&o, m);
    if (m->have_endpoints) {
        metric(&o, "admin_accept_pauses_total", "counter",
               "admin socket: accepts paused 200 ms for lack of descriptors or memory",
               m->admin_accept_pauses);
        metric(&o, "admin_evictions_total", "counter",
               "admin socket: longest-idle clients closed to make room for a new one",
               m->admin_evictions);
        metric(&o, "metrics_accept_pauses_total", "counter",
               "metrics server: accepts paused 200 ms for lack of descriptors or memory",
               m->metrics_accept_pauses);
    }
    if (m->have_resolver) {
        const resolver_stats_t *r = &m->resolver;
        metric(&o, "resolver_requests_total", "counter",
               "static nodes given to the resolver to look up", r->requests);
        metric(&o, "resolver_found_total", "counter", "static nodes a lookup found", r->found);
        metric(&o, "resolver_missed_total", "counter",
               "lookups that did not find their static node (or failed)", r->missed);
        metric(&o, "resolver_refused_total", "counter",
               "requests answered not found at once: the resolver's queue was full", r->refused);
        metric(&o, "resolver_dropped_total", "counter",
               "requests answered not found without a lookup: the node was removed", r->dropped);
    }
    metric(&o, "process_resident_memory_bytes", "gauge", "resident memory (VmRSS)", m->rss_bytes);
    metric(&o, "process_threads", "gauge", "threads of the process", m->threads);
    metric(&o, "process_open_fds", "gauge", "open file descriptors", m->fds);
    metric(&o, "process_log_lines_lost_total", "counter",
           "log lines lost: their write failed (full disk, file size limit)", m->log_lost);
    return o.len;
}
