/*
 * tools/stress_report.c: the reporting half of `devp2p stress`: failure
 * labels, latency quantiles, the per-second series, sampling of a local
 * target from /proc (pid of the listener, VmRSS, threads, descriptors),
 * the final summary, JSON (jansson) / CSV output and the SVG plot.
 *
 * Main thread only (see tools/stress.h).  Reading /proc/PID/fd of a
 * process with many descriptors costs one readdir pass per sample; the
 * engine samples once per second.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/err.h"
#include "core/netutil.h"
#include "tools/file_out.h"
#include "tools/json_put.h"
#include "tools/stress.h"

volatile sig_atomic_t stress_stop;

static void fail_label(stress_stats_t *s, uint64_t n, char *label, size_t labellen)
{
    s->failures += n;
    for (size_t i = 0; i < s->nreasons; i++) {
        if (strcmp(s->reasons[i].label, label) == 0) {
            s->reasons[i].count += n;
            return;
        }
    }
    if (s->nreasons == STRESS_MAX_REASONS) {
        s->reasons[STRESS_MAX_REASONS - 1].count += n;
        return;
    }
    stress_reason_t *r = &s->reasons[s->nreasons++];
    if (s->nreasons == STRESS_MAX_REASONS) snprintf(label, labellen, "other");
    snprintf(r->label, sizeof r->label, "%s", label);
    r->count = n;
}

/* n failures under the label fmt formats to (none when n is 0). */
__attribute__((format(printf, 3, 0))) static void vfail(stress_stats_t *s, uint64_t n,
                                                        const char *fmt, va_list ap)
{
    if (!n) return;
    char label[64];
    vsnprintf(label, sizeof label, fmt, ap);
    fail_label(s, n, label, sizeof label);
}

void stress_fail(stress_stats_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(s, 1, fmt, ap);
    va_end(ap);
}

void stress_fail_n(stress_stats_t *s, uint64_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(s, n, fmt, ap);
    va_end(ap);
}

void stress_load_end(stress_stats_t *s, uint64_t t0, uint64_t now)
{
    s->load_s = (double)(now - t0) / 1e9;
    s->at_stop.successes = s->successes;
    s->at_stop.msgs_recv = s->msgs_recv;
    s->at_stop.pongs_recv = s->pongs_recv;
    s->at_stop.neighbors_replies = s->neighbors_replies;
}

void stress_lat_add(stress_lat_t *l, uint64_t us)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        uint32_t *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) {
            l->dropped++;
            return;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

double stress_lat_ms(stress_lat_t *l, double q)
{
    if (l->n == 0) return 0;
    qsort(l->v, l->n, sizeof l->v[0], cmp_u32);
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    if (i >= l->n) i = l->n - 1;
    return l->v[i] / 1000.0;
}

void stress_series_add(stress_stats_t *s, stress_point_t *p)
{
    p->ok = s->successes - s->series_ok;
    p->fail = s->failures - s->series_fail;
    if (s->nseries >= STRESS_MAX_SECONDS) {
        s->series_dropped++;
        return;
    }
    if (s->nseries == s->series_cap) {
        size_t nc = s->series_cap ? s->series_cap * 2 : 64;
        stress_point_t *nv = realloc(s->series, nc * sizeof *nv);
        if (!nv) {
            s->series_dropped++;
            return;
        }
        s->series = nv;
        s->series_cap = nc;
    }
    s->series[s->nseries++] = *p;
    s->series_ok = s->successes;
    s->series_fail = s->failures;
}

void stress_stats_free(stress_stats_t *s)
{
    free(s->hs_lat.v);
    free(s->admit_lat.v);
    free(s->pong_lat.v);
    free(s->nb_lat.v);
    free(s->pong_lat_full.v);
    free(s->series);
    s->hs_lat = (stress_lat_t){0};
    s->admit_lat = (stress_lat_t){0};
    s->pong_lat = (stress_lat_t){0};
    s->nb_lat = (stress_lat_t){0};
    s->pong_lat_full = (stress_lat_t){0};
    s->series = NULL;
    s->nseries = s->series_cap = 0;
}

/* ---- /proc ------------------------------------------------------------- */

/* A /proc/net address column ("0100007F:9C40"; 32 hex digits before the
 * colon in the IPv6 tables) into addr (4 or 16 bytes, network order: the
 * kernel prints each 32-bit word as a host-order integer).  Returns the
 * address length, or 0 if malformed. */
static size_t proc_addr(uint8_t addr[16], const char *col)
{
    const char *colon = strrchr(col, ':');
    size_t hex = colon ? (size_t)(colon - col) : 0;
    if (hex != 8 && hex != 32) return 0;
    for (size_t w = 0; w < hex / 8; w++) {
        char word[9];
        memcpy(word, col + 8 * w, 8);
        word[8] = 0;
        char *end;
        uint32_t v = (uint32_t)strtoul(word, &end, 16);
        if (*end) return 0;
        memcpy(addr + 4 * w, &v, 4);
    }
    return hex / 2;
}

/* How well a listener's local address serves ip: 2 the same address (an
 * IPv4 one also as ::ffff:a.b.c.d), 1 a wildcard (0.0.0.0 or ::), 0 not. */
static int addr_match(const uint8_t *la, size_t lalen, const p2p_ip_t *ip)
{
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(la, zero, lalen) == 0) return 1;
    if (ip->family == 4 && lalen == 4) return memcmp(la, ip->addr, 4) == 0 ? 2 : 0;
    if (ip->family == 4 && lalen == 16)
        return memcmp(la, mapped, 12) == 0 && memcmp(la + 12, ip->addr, 4) == 0 ? 2 : 0;
    if (ip->family == 6 && lalen == 16) return memcmp(la, ip->addr, 16) == 0 ? 2 : 0;
    return 0;
}

/* Inode of a listening socket on ip:port in a /proc/net table, 0 if none:
 * one bound to that address, else one bound to the wildcard address (two
 * processes may listen on one port on different loopback addresses).  TCP
 * listeners have state 0A; UDP sockets are 07 (unconnected).  *how is the
 * addr_match of the inode returned. */
static unsigned long listen_inode(const char *table, const p2p_ip_t *ip, uint16_t port, bool udp,
                                  int *how)
{
    *how = 0;
    FILE *f = fopen(table, "r");
    if (!f) return 0;
    char line[512];
    unsigned long found = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        char local[64], rem[64];
        unsigned st, lport;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retr uid timeout inode */
        if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*u %*u %lu", local, rem, &st, &inode) !=
            4)
            continue;
        char *colon = strrchr(local, ':');
        if (!colon || sscanf(colon + 1, "%x", &lport) != 1) continue;
        if (lport != port || st != (udp ? 0x07u : 0x0Au) || !inode) continue;
        uint8_t la[16];
        size_t lalen = proc_addr(la, local);
        int m = lalen ? addr_match(la, lalen, ip) : 0;
        if (m > *how) {
            *how = m;
            found = inode;
        }
        if (m == 2) break;
    }
    fclose(f);
    return found;
}

static bool pid_has_inode(const char *pid, unsigned long inode)
{
    char path[300], want[48], buf[64];
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir(path);
    if (!d) return false;
    struct dirent *e;
    bool hit = false;
    while (!hit && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char fp[600];
        snprintf(fp, sizeof fp, "%s/%s", path, e->d_name);
        ssize_t n = readlink(fp, buf, sizeof buf - 1);
        if (n <= 0) continue;
        buf[n] = 0;
        hit = strcmp(buf, want) == 0;
    }
    closedir(d);
    return hit;
}

pid_t stress_find_listener(const p2p_ip_t *ip, uint16_t port, bool udp)
{
    int how4, how6;
    unsigned long ino4 =
        listen_inode(udp ? "/proc/net/udp" : "/proc/net/tcp", ip, port, udp, &how4);
    unsigned long ino6 =
        listen_inode(udp ? "/proc/net/udp6" : "/proc/net/tcp6", ip, port, udp, &how6);
    unsigned long ino = how6 > how4 ? ino6 : ino4;
    if (!ino) return 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    pid_t pid = 0;
    while (!pid && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (pid_has_inode(e->d_name, ino)) pid = (pid_t)atol(e->d_name);
    }
    closedir(d);
    return pid;
}

bool stress_sample(pid_t pid, uint64_t *rss_kb, uint64_t *threads, uint64_t *fds)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    *rss_kb = *threads = *fds = 0;
    char state = '?';
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "VmRSS: %llu", &v) == 1) *rss_kb = v;
        if (sscanf(line, "Threads: %llu", &v) == 1) *threads = v;
        char c;
        if (sscanf(line, "State: %c", &c) == 1) state = c;
    }
    fclose(f);
    /* exited, not yet reaped (a leader thread that ended before the
     * others also reads Z, with the others still counted in Threads) */
    if ((state == 'Z' || state == 'X') && *threads <= 1) return false;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT) return false; /* gone since */
        *fds = STRESS_FDS_UNKNOWN;         /* not ours to read: not 0 descriptors */
        return true;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') (*fds)++;
    closedir(d);
    if (pid == getpid() && *fds) (*fds)--; /* the directory itself */
    return true;
}

void stress_proc_start(stress_stats_t *s, pid_t pid, const p2p_ip_t *ip, uint16_t port, bool udp)
{
    stress_proc_t *p = &s->proc;
    p->pid = pid;
    if (!pid && p2p_ip_is_loopback(ip)) p->pid = stress_find_listener(ip, port, udp);
    if (p->pid && !stress_sample(p->pid, &p->rss_kb_start, &p->threads_start, &p->fds_start))
        p->pid = 0;
    p->rss_kb_max = p->rss_kb_end = p->rss_kb_start;
    p->threads_max = p->threads_end = p->threads_start;
    if (p->pid && p->fds_start == STRESS_FDS_UNKNOWN) {
        p->fds_unknown = true;
        p->fds_start = 0;
    }
    p->fds_max = p->fds_end = p->fds_start;
}

void stress_proc_sample(stress_stats_t *s, unsigned live, bool holding, uint64_t *rss_out)
{
    stress_proc_t *p = &s->proc;
    *rss_out = 0;
    if (!p->pid || p->exited) return;
    uint64_t rss, thr, fds;
    if (!stress_sample(p->pid, &rss, &thr, &fds)) {
        p->exited = true; /* the figures stay those of the last sample */
        return;
    }
    *rss_out = rss;
    p->rss_kb_end = rss;
    if (rss > p->rss_kb_max) p->rss_kb_max = rss;
    if (thr > p->threads_max) p->threads_max = thr;
    p->threads_end = thr;
    if (fds == STRESS_FDS_UNKNOWN) {
        p->fds_unknown = true;
    } else {
        if (fds > p->fds_max) p->fds_max = fds;
        p->fds_end = fds;
    }
    if (holding && live >= p->peak_live && live) {
        p->peak_live = live;
        p->rss_kb_at_peak = rss;
    }
}

void stress_progress(const stress_stats_t *s, double t, double dur, unsigned live,
                     unsigned inflight, uint64_t per_s)
{
    int w = 30, filled = dur > 0 ? (int)(w * (t > dur ? 1.0 : t / dur)) : w;
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < filled ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r[%s] %5.1fs live %-6u inflight %-5u ok %-8llu fail %-6llu %6.0f/s  ", bar, t,
            live, inflight, (unsigned long long)s->successes, (unsigned long long)s->failures,
            (double)per_s);
    fflush(stderr);
}

/* ---- summary ------------------------------------------------------------ */

static double rate(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

/* ", N more dropped: out of memory" when l lost samples (its quantiles are
 * of the n kept), else "". */
static const char *dropped(char *buf, size_t len, const stress_lat_t *l)
{
    if (!l->dropped) return "";
    snprintf(buf, len, ", %llu more dropped: out of memory", (unsigned long long)l->dropped);
    return buf;
}

void stress_print_summary(stress_stats_t *s)
{
    printf("stress %s against %s: %.1f s of load, then %.1f s of drain (rates per second of "
           "load)\n",
           s->mode, s->target, s->load_s, s->elapsed_s - s->load_s);
    printf("  attempts:      %llu (%.1f/s)\n", (unsigned long long)s->attempts,
           rate(s->attempts, s->load_s));
    printf("  successes:     %llu (%.1f/s)", (unsigned long long)s->successes,
           rate(s->at_stop.successes, s->load_s));
    if (s->successes > s->at_stop.successes)
        printf(", %llu of them completed in the drain",
               (unsigned long long)(s->successes - s->at_stop.successes));
    printf("\n");
    printf("  failures:      %llu\n", (unsigned long long)s->failures);
    for (size_t i = 0; i < s->nreasons; i++)
        printf("    %-40s %llu\n", s->reasons[i].label, (unsigned long long)s->reasons[i].count);
    bool discv4 = strcmp(s->mode, "discv4") == 0;
    if (!discv4 && s->failures)
        printf("  handshake failures: %llu, after the Hello: %llu (replies missing %llu)\n",
               (unsigned long long)s->hs_failures,
               (unsigned long long)(s->failures - s->hs_failures),
               (unsigned long long)s->replies_missing);
    char dn[96];
    if (s->hs_lat.n || s->hs_lat.dropped)
        printf("  handshake+hello latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms (n=%zu%s)\n",
               stress_lat_ms(&s->hs_lat, 0.5), stress_lat_ms(&s->hs_lat, 0.99),
               stress_lat_ms(&s->hs_lat, 1.0), s->hs_lat.n, dropped(dn, sizeof dn, &s->hs_lat));
    /* churn and adversarial send no Ping after the Hello: their refusals
     * are the target's own Disconnects */
    bool churn = strcmp(s->mode, "churn") == 0 || strcmp(s->mode, "adversarial") == 0;
    if (s->admit_lat.n || s->admit_lat.dropped || (s->refused_after_hello && !churn))
        printf("  admission (our Ping after the Hello -> its Pong): p50 %.2f ms, p99 %.2f ms, "
               "max %.2f ms (n=%zu%s); refused after the Hello: %llu\n",
               stress_lat_ms(&s->admit_lat, 0.5), stress_lat_ms(&s->admit_lat, 0.99),
               stress_lat_ms(&s->admit_lat, 1.0), s->admit_lat.n,
               dropped(dn, sizeof dn, &s->admit_lat), (unsigned long long)s->refused_after_hello);
    else if (s->refused_after_hello)
        printf("  refused after the Hello (the target's Disconnect came before ours): %llu\n",
               (unsigned long long)s->refused_after_hello);
    printf("  peak live peers: %u, drops: %llu\n", s->peak_live, (unsigned long long)s->drops);
    if (s->full_pauses)
        printf("  target full: new peers paused %llu times (1 s after \"too many peers\", "
               "doubled per further pause)\n",
               (unsigned long long)s->full_pauses);
    if (s->pings_sent || s->pings_recv)
        printf("  pings sent %llu, pongs received %llu; target pings %llu, answered %llu\n",
               (unsigned long long)s->pings_sent, (unsigned long long)s->pongs_recv,
               (unsigned long long)s->pings_recv, (unsigned long long)s->pongs_sent);
    if (s->pings_late)
        printf("  pings skipped while the previous one was unanswered: %llu (the target was slow, "
               "see the reply latency)\n",
               (unsigned long long)s->pings_late);
    if (s->msgs_sent || s->msgs_recv)
        printf("  messages sent %llu (%.1f/s), replies received %llu (%.1f/s)\n",
               (unsigned long long)s->msgs_sent, rate(s->msgs_sent, s->load_s),
               (unsigned long long)s->msgs_recv, rate(s->at_stop.msgs_recv, s->load_s));
    if (s->pong_lat.n || s->pong_lat.dropped)
        printf("  reply latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms (n=%zu%s)\n",
               stress_lat_ms(&s->pong_lat, 0.5), stress_lat_ms(&s->pong_lat, 0.99),
               stress_lat_ms(&s->pong_lat, 1.0), s->pong_lat.n,
               dropped(dn, sizeof dn, &s->pong_lat));
    if (s->pong_lat_full.n || s->pong_lat_full.dropped)
        printf("  reply latency with all %u peers up: p50 %.2f ms, p99 %.2f ms, max %.2f ms "
               "(n=%zu%s)\n",
               s->peak_live, stress_lat_ms(&s->pong_lat_full, 0.5),
               stress_lat_ms(&s->pong_lat_full, 0.99), stress_lat_ms(&s->pong_lat_full, 1.0),
               s->pong_lat_full.n, dropped(dn, sizeof dn, &s->pong_lat_full));
    if (discv4) {
        printf("  pongs: %llu (%.1f/s); keys bonded %llu, gave up bonding %llu\n",
               (unsigned long long)s->pongs_recv, rate(s->at_stop.pongs_recv, s->load_s),
               (unsigned long long)s->bonded, (unsigned long long)s->bond_failed);
        printf("  findnodes sent %llu, answered %llu (%.1f/s), neighbors packets %llu, "
               "unmatched replies %llu\n",
               (unsigned long long)s->findnodes_sent, (unsigned long long)s->neighbors_replies,
               rate(s->at_stop.neighbors_replies, s->load_s), (unsigned long long)s->neighbors_pkts,
               (unsigned long long)s->unmatched);
    }
    if (s->nb_lat.n || s->nb_lat.dropped)
        printf("  neighbors latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms (n=%zu%s)\n",
               stress_lat_ms(&s->nb_lat, 0.5), stress_lat_ms(&s->nb_lat, 0.99),
               stress_lat_ms(&s->nb_lat, 1.0), s->nb_lat.n, dropped(dn, sizeof dn, &s->nb_lat));
    if (s->series_dropped)
        printf("  per-second series: %llu points dropped (out of memory, or past %d s); their "
               "counts are in the next point kept\n",
               (unsigned long long)s->series_dropped, STRESS_MAX_SECONDS);
    if (s->adv_started)
        printf("  adversarial: %llu opened, %llu closed by the target, %llu still open, %llu "
               "timed out, %llu failed to connect\n",
               (unsigned long long)s->adv_started, (unsigned long long)s->adv_closed,
               (unsigned long long)s->adv_open, (unsigned long long)s->adv_timeout,
               (unsigned long long)s->adv_failed);
    const stress_proc_t *p = &s->proc;
    if (p->pid) {
        printf("  target pid %d: RSS %llu -> %llu KiB (max %llu), threads %llu -> %llu (max "
               "%llu), ",
               (int)p->pid, (unsigned long long)p->rss_kb_start, (unsigned long long)p->rss_kb_end,
               (unsigned long long)p->rss_kb_max, (unsigned long long)p->threads_start,
               (unsigned long long)p->threads_end, (unsigned long long)p->threads_max);
        if (p->fds_unknown)
            printf("fds not readable (/proc/%d/fd: another user's or not dumpable)\n", (int)p->pid);
        else
            printf("fds %llu -> %llu (max %llu)\n", (unsigned long long)p->fds_start,
                   (unsigned long long)p->fds_end, (unsigned long long)p->fds_max);
        if (p->peak_live && p->rss_kb_at_peak > p->rss_kb_start)
            printf("  target RSS per live peer: %.1f KiB (at %u peers)\n",
                   (double)(p->rss_kb_at_peak - p->rss_kb_start) / p->peak_live, p->peak_live);
        if (p->exited)
            printf("  target pid %d exited during the run (its figures are from its last "
                   "sample)\n",
                   (int)p->pid);
    } else {
        printf("  target: not a local process (no /proc sampling)\n");
    }
}

static json_t *lat_json(stress_lat_t *l)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:I}", "n", (json_int_t)l->n, "p50_ms",
                     stress_lat_ms(l, 0.5), "p99_ms", stress_lat_ms(l, 0.99), "max_ms",
                     stress_lat_ms(l, 1.0), "dropped", (json_int_t)l->dropped);
}

/* The summary as a JSON object (without the series), whole or NULL (out
 * of memory): a member left out would read as a figure the mode does not
 * have. */
static json_t *summary_json(stress_stats_t *s)
{
    json_t *o = json_object();
    json_t *reasons = json_object();
    int bad = o && reasons ? 0 : -1;
    for (size_t i = 0; i < s->nreasons; i++)
        json_put(reasons, s->reasons[i].label, json_integer((json_int_t)s->reasons[i].count), &bad);
    json_put(o, "mode", json_string(s->mode), &bad);
    json_put(o, "target", json_string(s->target), &bad);
    json_put(o, "elapsed_s", json_real(s->elapsed_s), &bad);
    json_put(o, "load_s", json_real(s->load_s), &bad);
    json_put(o, "drain_s", json_real(s->elapsed_s - s->load_s), &bad);
    json_put(o, "attempts", json_integer((json_int_t)s->attempts), &bad);
    json_put(o, "successes", json_integer((json_int_t)s->successes), &bad);
    json_put(o, "success_rate_per_s", json_real(rate(s->at_stop.successes, s->load_s)), &bad);
    json_put(o, "successes_in_drain",
             json_integer((json_int_t)(s->successes - s->at_stop.successes)), &bad);
    json_put(o, "failures", json_integer((json_int_t)s->failures), &bad);
    json_put(o, "failures_by_reason", reasons, &bad);
    uint64_t tot = s->successes + s->failures;
    json_put(o, "success_ratio", json_real(tot ? (double)s->successes / (double)tot : 0.0), &bad);
    json_put(o, "drops", json_integer((json_int_t)s->drops), &bad);
    json_put(o, "target_exited", json_boolean(s->proc.exited), &bad);
    json_put(o, "peak_live", json_integer(s->peak_live), &bad);
    json_put(o, "full_pauses", json_integer((json_int_t)s->full_pauses), &bad);
    json_put(o, "refused_after_hello", json_integer((json_int_t)s->refused_after_hello), &bad);
    json_put(o, "admission_latency", lat_json(&s->admit_lat), &bad);
    json_put(o, "handshake_latency", lat_json(&s->hs_lat), &bad);
    json_put(o, "reply_latency", lat_json(&s->pong_lat), &bad);
    json_put(o, "reply_latency_full", lat_json(&s->pong_lat_full), &bad);
    json_put(o, "pings_sent", json_integer((json_int_t)s->pings_sent), &bad);
    json_put(o, "pongs_received", json_integer((json_int_t)s->pongs_recv), &bad);
    json_put(o, "pings_late", json_integer((json_int_t)s->pings_late), &bad);
    json_put(o, "target_pings", json_integer((json_int_t)s->pings_recv), &bad);
    json_put(o, "target_pings_answered", json_integer((json_int_t)s->pongs_sent), &bad);
    json_put(o, "msgs_sent", json_integer((json_int_t)s->msgs_sent), &bad);
    json_put(o, "msgs_received", json_integer((json_int_t)s->msgs_recv), &bad);
    json_put(o, "bytes_sent", json_integer((json_int_t)s->bytes_sent), &bad);
    if (strcmp(s->mode, "discv4") == 0) {
        json_put(o, "pongs_per_s", json_real(rate(s->at_stop.pongs_recv, s->load_s)), &bad);
        json_put(o, "findnodes_sent", json_integer((json_int_t)s->findnodes_sent), &bad);
        json_put(o, "findnodes_answered", json_integer((json_int_t)s->neighbors_replies), &bad);
        json_put(o, "neighbors_packets", json_integer((json_int_t)s->neighbors_pkts), &bad);
        json_put(o, "neighbors_latency", lat_json(&s->nb_lat), &bad);
        json_put(o, "keys_bonded", json_integer((json_int_t)s->bonded), &bad);
        json_put(o, "keys_bond_failed", json_integer((json_int_t)s->bond_failed), &bad);
        json_put(o, "unmatched_replies", json_integer((json_int_t)s->unmatched), &bad);
    }
    if (strcmp(s->mode, "discv4") != 0) {
        json_put(o, "handshake_failures", json_integer((json_int_t)s->hs_failures), &bad);
        json_put(o, "replies_missing", json_integer((json_int_t)s->replies_missing), &bad);
    }
    json_put(o, "series_points_dropped", json_integer((json_int_t)s->series_dropped), &bad);
    json_put(o, "adversarial",
             json_pack("{s:I,s:I,s:I,s:I,s:I}", "started", (json_int_t)s->adv_started,
                       "closed_by_target", (json_int_t)s->adv_closed, "still_open",
                       (json_int_t)s->adv_open, "timed_out", (json_int_t)s->adv_timeout,
                       "connect_failed", (json_int_t)s->adv_failed),
             &bad);
    const stress_proc_t *p = &s->proc;
    if (p->pid) {
        json_t *t = json_object();
        json_put(t, "pid", json_integer(p->pid), &bad);
        json_put(t, "rss_kb_start", json_integer((json_int_t)p->rss_kb_start), &bad);
        json_put(t, "rss_kb_end", json_integer((json_int_t)p->rss_kb_end), &bad);
        json_put(t, "rss_kb_max", json_integer((json_int_t)p->rss_kb_max), &bad);
        json_put(t, "threads_start", json_integer((json_int_t)p->threads_start), &bad);
        json_put(t, "threads_end", json_integer((json_int_t)p->threads_end), &bad);
        json_put(t, "threads_max", json_integer((json_int_t)p->threads_max), &bad);
        /* null: not readable (0 would read as a node without descriptors) */
        json_put(t, "fds_end", p->fds_unknown ? json_null() : json_integer((json_int_t)p->fds_end),
                 &bad);
        json_put(t, "fds_start",
                 p->fds_unknown ? json_null() : json_integer((json_int_t)p->fds_start), &bad);
        json_put(t, "fds_max", p->fds_unknown ? json_null() : json_integer((json_int_t)p->fds_max),
                 &bad);
        double per = p->peak_live && p->rss_kb_at_peak > p->rss_kb_start
                         ? (double)(p->rss_kb_at_peak - p->rss_kb_start) / p->peak_live
                         : 0;
        json_put(t, "rss_kb_per_live_peer", json_real(per), &bad);
        json_put(t, "exited", json_boolean(p->exited), &bad);
        json_put(o, "target_proc", t, &bad);
    } else {
        json_put(o, "target_proc", json_null(), &bad);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The JSON report (the summary and the series) as text, whole or NULL
 * (out of memory): json_dumpb measures it first and then writes it into a
 * buffer of that size, so no part is left out of a report that is written. */
static char *json_text(stress_stats_t *s, size_t *len)
{
    json_t *o = summary_json(s);
    json_t *series = json_array();
    int bad = o && series ? 0 : -1;
    for (size_t i = 0; i < s->nseries && !bad; i++) {
        const stress_point_t *pt = &s->series[i];
        json_t *v = json_pack("{s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "t", pt->t, "live",
                              (json_int_t)pt->live, "inflight", (json_int_t)pt->inflight, "ok",
                              (json_int_t)pt->ok, "fail", (json_int_t)pt->fail, "msgs",
                              (json_int_t)pt->msgs, "rss_kb", (json_int_t)pt->rss_kb);
        if (!v || json_array_append_new(series, v) != 0) bad = -1;
    }
    if (bad)
        json_decref(series);
    else
        json_put(o, "series", series, &bad);
    const size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9);
    size_t n = bad ? 0 : json_dumpb(o, NULL, 0, flags);
    char *text = n ? malloc(n + 1) : NULL;
    if (text && json_dumpb(o, text, n, flags) != n) {
        free(text);
        text = NULL;
    }
    json_decref(o);
    if (!text) return NULL;
    text[n] = '\n';
    *len = n + 1;
    return text;
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"') fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

/* One name,value row per scalar of v; an object's members are named
 * name.member (an empty value for null). */
static void csv_flat(FILE *f, const char *name, json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s%s", name, *name ? "." : "", k);
            csv_flat(f, sub, m);
        }
        return;
    }
    csv_field(f, name);
    fputc(',', f);
    if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "%.9g", json_real_value(v));
    else if (json_is_string(v))
        csv_field(f, json_string_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "true" : "false", f);
    fputc('\n', f);
}

void stress_summary_path(char *out, size_t outlen, const char *path)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".csv") == 0) n -= 4;
    snprintf(out, outlen, "%.*s.summary.csv", (int)n, path);
}

/* Opens path for a report; errno is cleared, so that end_file sees the
 * error of a failed write. */
static FILE *begin_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f) errno = 0;
    return f;
}

/* Closes f, the report written to path.  Returns 0, or -1 with errno set
 * when a write failed (ferror: a failed buffer flush is not always seen
 * again by fclose, e.g. when the last write was the failing one) or the
 * close did; a regular file is then removed (no partial report; a device
 * or pipe is left alone). */
static int end_file(FILE *f, const char *path)
{
    int e = file_out_error(f);
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (!e) return 0;
    file_out_remove_partial(path);
    errno = e;
    return -1;
}

/* The CSV summary of o (summary_json) into sp, path's summary file. */
static int write_csv_summary(json_t *o, const char *sp)
{
    FILE *f = begin_file(sp);
    if (!f) return -1;
    fprintf(f, "name,value\n");
    csv_flat(f, "", o);
    return end_file(f, sp);
}

static void write_csv(const stress_stats_t *s, FILE *f)
{
    fprintf(f, "t,live,inflight,ok,fail,msgs,rss_kb\n");
    for (size_t i = 0; i < s->nseries; i++) {
        const stress_point_t *p = &s->series[i];
        fprintf(f, "%.3f,%u,%u,%llu,%llu,%llu,%llu\n", p->t, p->live, p->inflight,
                (unsigned long long)p->ok, (unsigned long long)p->fail, (unsigned long long)p->msgs,
                (unsigned long long)p->rss_kb);
    }
}

/* The report is built whole in memory before a file is opened: out of
 * memory fails it with ENOMEM and writes nothing. */
int stress_write_out(stress_stats_t *s, char *failed, size_t failedlen, const char *path)
{
    if (failedlen) snprintf(failed, failedlen, "%s", path);
    size_t n = strlen(path), len = 0;
    bool json = n >= 5 && strcmp(path + n - 5, ".json") == 0;
    char *text = NULL;
    json_t *summary = NULL;
    if (json)
        text = json_text(s, &len);
    else
        summary = summary_json(s);
    if (!text && !summary) {
        errno = ENOMEM;
        return -1;
    }
    FILE *f = begin_file(path);
    int rc = f ? 0 : -1;
    if (f && json) fwrite(text, 1, len, f);
    if (f && !json) write_csv(s, f);
    if (f) rc = end_file(f, path);
    if (rc == 0 && !json) {
        char sp[4096];
        stress_summary_path(sp, sizeof sp, path);
        if (write_csv_summary(summary, sp) != 0) {
            if (failedlen) snprintf(failed, failedlen, "%s", sp);
            file_out_remove_partial(path); /* the series without its summary: not a whole report */
            rc = -1;
        }
    }
    int e = errno;
    free(text);
    json_decref(summary);
    errno = e;
    return rc ? -1 : 0;
}

/* ---- SVG ------------------------------------------------------------------ */

static void polyline(FILE *f, const stress_stats_t *s, int which, double ymax, double x0, double y0,
                     double w, double h, double tmax, const char *color)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (size_t i = 0; i < s->nseries; i++) {
        const stress_point_t *p = &s->series[i];
        double v = which == 0   ? p->live
                   : which == 1 ? (double)p->ok
                   : which == 2 ? (double)p->msgs
                                : (double)p->rss_kb;
        double x = x0 + (tmax > 0 ? p->t / tmax : 0) * w;
        double y = y0 + h - (ymax > 0 ? v / ymax : 0) * h;
        fprintf(f, "%.1f,%.1f ", x, y);
    }
    fprintf(f, "\"/>\n");
}

int stress_write_svg(const stress_stats_t *s, const char *path)
{
    FILE *f = begin_file(path);
    if (!f) return -1;
    const double W = 800, H = 400, x0 = 60, y0 = 30, w = 660, h = 320;
    double tmax = s->nseries ? s->series[s->nseries - 1].t : 1;
    double lmax = 1, rmax = 1, mmax = 0;
    for (size_t i = 0; i < s->nseries; i++) {
        const stress_point_t *p = &s->series[i];
        if ((double)p->rss_kb > mmax) mmax = (double)p->rss_kb;
        if (p->live > lmax) lmax = p->live;
        if ((double)p->ok > rmax) rmax = (double)p->ok;
        if ((double)p->msgs > rmax) rmax = (double)p->msgs;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%.0f\" y=\"18\">devp2p stress %s: %s</text>\n"
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
            "stroke=\"#888\"/>\n",
            W, H, x0, s->mode, s->target, x0, y0, w, h);
    fprintf(f, "<text x=\"4\" y=\"%.0f\" fill=\"#1f77b4\">%.0f</text>\n", y0 + 10, lmax);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#d62728\">%.0f/s</text>\n", x0 + w + 4, y0 + 10,
            rmax);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">0</text>\n", x0 - 12, y0 + h + 14);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">%.0f s</text>\n", x0 + w - 20, y0 + h + 14, tmax);
    polyline(f, s, 0, lmax, x0, y0, w, h, tmax, "#1f77b4");
    polyline(f, s, 1, rmax, x0, y0, w, h, tmax, "#d62728");
    polyline(f, s, 2, rmax, x0, y0, w, h, tmax, "#2ca02c");
    if (mmax > 0) {
        polyline(f, s, 3, mmax, x0, y0, w, h, tmax, "#9467bd");
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.0f\" fill=\"#9467bd\">target RSS (top: %.1f MiB)</text>\n",
                x0 + 440, H - 14, mmax / 1024);
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%.0f\" fill=\"#1f77b4\">live peers (left axis)</text>\n"
            "<text x=\"%.0f\" y=\"%.0f\" fill=\"#d62728\">successes/s (right)</text>\n"
            "<text x=\"%.0f\" y=\"%.0f\" fill=\"#2ca02c\">replies/s (right)</text>\n</svg>\n",
            x0, H - 14, x0 + 150, H - 14, x0 + 300, H - 14);
    return end_file(f, path);
}
