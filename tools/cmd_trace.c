/*
 * tools/cmd_trace.c: devp2p trace [--datadir DIR | --file PATH] (default:
 * the default data directory, ~/.devp2p-c).
 *
 * Maps a node's trace segment (<datadir>/trace.ring, P2P_TRACE_FILE)
 * read-only through the core/trace.h reader and prints its records with
 * names: time since the segment was created, thread (ring owner), record
 * type, mailbox, message kind, peer id prefix and argument.  The node is
 * never paused: the reader copies each slot under its seqlock and counts
 * the records it lost to overwrites.
 *
 * Thread names: rings are reused by later threads, and a thread may take a
 * new name (a connection thread becomes peer-<id> after its handshake).
 * START and STOP records carry the writer's name and actor id, so every
 * record is shown with the name its writer had when it wrote it; records
 * whose START and STOP were both overwritten show the ring header's owner,
 * else "ringN".  A gap (records lost to overwrites) may hide a change of
 * owner: the owner seen before it is never carried across it, and an
 * export starts a new track after it when the writer's name changed.
 *
 * A file whose writer is not running (it holds a lock on the file while
 * it runs; the header's pid where file locks are missing) is still shown,
 * with a warning that it is what an exited node left.
 *
 * Modes: print what the rings hold now and exit; --follow: keep printing
 * new records (polled every 50 ms and merged by time) until
 * SIGINT/SIGTERM, --duration, the node's exit, or a new segment at the
 * path (the node restarted: said on stderr, never followed silently); --export chrome FILE:
 * write Chrome trace-event JSON instead of text (what was collected, at
 * exit): one track (tid) per thread (per ring and owner: rings are
 * reused by later threads) with thread_name metadata, a complete
 * event ("X", 1 us) per record, and a flow ("s" -> "f") from each mailbox
 * push to the pop that took the message.  Records carry no queue position,
 * so a pop is matched to the oldest unmatched earlier push with the same
 * (mailbox id, kind, peer, arg); mailboxes sharing a name (per-peer "out")
 * share an id, and the peer field keeps them apart.  A PUSH is stamped
 * before its message is published (core/mailbox.c), so its POP is never
 * earlier; at equal times the pushes of that instant are matched first.
 * Text output shows names with control characters and bytes that are not
 * UTF-8 as \xNN (no escape sequence from a corrupt or crafted file
 * reaches the terminal).
 * Names are exported as UTF-8: bytes that are not valid UTF-8 (a corrupt
 * or foreign file) become U+FFFD; an event that still cannot be encoded
 * whole (every member, a record's arg and mailbox_name and a flow end's bp
 * included) is counted and reported, never silently left out nor written
 * incomplete.
 *
 * Order under --follow: a writer reads the clock before it publishes its
 * record, so a record can appear in a ring after a later record of another
 * ring was read.  Records are held back FOLLOW_GRACE_NS (200 ms) before
 * printing, which orders everything whose writer was not descheduled
 * longer than that between the two steps; a record older than one already
 * printed is still printed, marked " late".
 *
 * Filters (all must match): --thread GLOB (ring owner name), --mailbox
 * GLOB|ID, --kind GLOB|N, --peer HEXPREFIX|NODE (an enode URL, enr: record
 * or 128-hex public key stands for its node id), --type push,pop,....
 *
 * Threads that found every ring taken record nothing: the segment header
 * counts them (no_ring_threads, no_ring), and a warning on stderr says so.
 *
 * Bounds: at most --max-records records are kept for an export (default
 * 4 million; beyond that the oldest by time, across all rings, are kept
 * and the rest counted; at most twice as many are held while reading).  Main
 * thread only (signal handlers only set a flag).
 */
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/trace.h"
#include "core/utf8.h"
#include "crypto/util.h"
#include "tools/cli.h"
#include "tools/file_out.h"
#include "wire/enode.h"
#include "tools/cmds.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct filt {
    const char *thread, *mailbox, *kind, *peer, *types;
    unsigned type_mask;
};

/* A record with the name of the thread that wrote it (see the top) and
 * its ring's owner generation: the STARTs read from that ring before it,
 * counted before any filter, so a filter never changes the track a
 * record is exported on. */
struct item {
    p2p_trace_rec_t r;
    char name[16];
    uint32_t owner;
};

struct tr {
    p2p_trace_reader_t *r;
    p2p_trace_info_t info;
    struct filt f;
    uint64_t lost, printed, dropped;
    bool collect;
    struct item *recs;
    size_t n, cap, max;
    char (*names)[16];      /* per ring: the owner open at the end of the last batch */
    p2p_trace_rec_t *batch; /* a whole ring's records (ring_cap) */
    char (*nm)[16];         /* their writers' names */
    uint32_t *owners;       /* per ring: STARTs read so far (all records, unfiltered) */
    uint64_t *last_seq;     /* per ring: seq of the last record read (0: none yet) */
    char (*track)[16];      /* per ring: the writer name of the current owner track */
    FILE *out;
    /* --follow: records read but held back (FOLLOW_GRACE_NS) */
    struct item *pend;
    size_t np, pcap;
    uint64_t last_ns; /* time of the newest record printed */
};

#define FOLLOW_GRACE_NS (200u * 1000 * 1000)

/* False only when no process pid exists (ESRCH): one of another user
 * (EPERM) is running. */
static bool pid_running(int32_t pid)
{
    return pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH;
}

/* Whether the node that wrote the file still runs: its lock on the file
 * (a pid may name another process by now: a reboot, a container restart),
 * else, on a file system without flock, its pid. */
static bool writer_running(const struct tr *t)
{
    int alive = p2p_trace_reader_writer_alive(t->r);
    return alive < 0 ? pid_running(t->info.pid) : alive == 1;
}

static bool glob_or_num(const char *pat, const char *name, unsigned num)
{
    char *end;
    unsigned long v = strtoul(pat, &end, 0);
    if (*pat && !*end) return v == num;
    return fnmatch(pat, name, 0) == 0;
}

static bool match(struct tr *t, const p2p_trace_rec_t *rec, const char *tn)
{
    char name[P2P_TRACE_NAME_LEN];
    /* types beyond the mask (a corrupt or newer file) never match a --type list */
    if (t->f.type_mask && (rec->type >= 32 || !(t->f.type_mask & (1u << rec->type)))) return false;
    if (t->f.thread && !glob_or_num(t->f.thread, tn, rec->ring)) return false;
    if (t->f.mailbox) {
        p2p_trace_reader_mailbox_name(t->r, name, rec->mailbox);
        if (!glob_or_num(t->f.mailbox, name, rec->mailbox)) return false;
    }
    if (t->f.kind) {
        p2p_trace_reader_kind_name(t->r, name, rec->kind);
        if (!glob_or_num(t->f.kind, name, rec->kind)) return false;
    }
    if (t->f.peer) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)rec->peer);
        const char *p = t->f.peer;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) p += 2;
        size_t pl = strlen(p) > 16 ? 16 : strlen(p);
        if (rec->peer == 0 || strncasecmp(hex, p, pl) != 0) return false;
    }
    return true;
}

/* A name from the file for the terminal (out: 4 x strlen(in) + 1 bytes
 * hold it all): each control character (C0, DEL, and C1, U+0080..U+009F,
 * such as CSI) and each byte that is not part of valid UTF-8 becomes
 * \xNN, byte by byte, so a corrupt or crafted file sends no escape
 * sequence to the terminal. */
static void term_escape(char *out, size_t outlen, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)in;
    size_t o = 0, left = strlen(in);
    while (left) {
        size_t n = p2p_utf8_seq_len(p, left);
        bool ctl = n && p2p_utf8_is_control(p, n);
        size_t m = n ? n : 1; /* the character, or one stray byte */
        size_t need = n && !ctl ? m : 4 * m;
        if (need >= outlen - o) break;
        if (n && !ctl) {
            memcpy(out + o, p, n);
            o += n;
        } else {
            for (size_t k = 0; k < m; k++, o += 4) {
                out[o] = '\\';
                out[o + 1] = 'x';
                out[o + 2] = hex[p[k] >> 4];
                out[o + 3] = hex[p[k] & 15];
            }
        }
        p += m;
        left -= m;
    }
    out[o] = 0;
}

static void print_rec(struct tr *t, const struct item *it)
{
    const p2p_trace_rec_t *rec = &it->r;
    char raw[P2P_TRACE_NAME_LEN];
    char tn[4 * sizeof it->name + 1], mb[4 * P2P_TRACE_NAME_LEN + 1],
        kn[4 * P2P_TRACE_NAME_LEN + 1];
    term_escape(tn, sizeof tn, it->name);
    p2p_trace_reader_mailbox_name(t->r, raw, rec->mailbox);
    term_escape(mb, sizeof mb, raw);
    p2p_trace_reader_kind_name(t->r, raw, rec->kind);
    term_escape(kn, sizeof kn, raw);
    double secs = rec->time_ns >= t->info.start_mono_ns
                      ? (double)(rec->time_ns - t->info.start_mono_ns) / 1e9
                      : -(double)(t->info.start_mono_ns - rec->time_ns) / 1e9;
    fprintf(t->out, "%12.6f %-15s %-5s", secs, tn[0] ? tn : "?", p2p_trace_type_name(rec->type));
    if (rec->mailbox) fprintf(t->out, " mailbox=%s", mb[0] ? mb : "?");
    if (rec->kind || kn[0]) {
        if (kn[0])
            fprintf(t->out, " kind=%s", kn);
        else
            fprintf(t->out, " kind=%u", rec->kind);
    }
    if (rec->peer) fprintf(t->out, " peer=%016llx", (unsigned long long)rec->peer);
    fprintf(t->out, " arg=%llu%s\n", (unsigned long long)rec->arg,
            rec->time_ns < t->last_ns ? " late" : "");
    if (rec->time_ns > t->last_ns) t->last_ns = rec->time_ns;
    t->printed++;
}

static int by_time(const void *a, const void *b)
{
    const p2p_trace_rec_t *x = &((const struct item *)a)->r, *y = &((const struct item *)b)->r;
    if (x->time_ns != y->time_ns) return x->time_ns < y->time_ns ? -1 : 1;
    if (x->ring != y->ring) return x->ring < y->ring ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* --max-records: keeps the t->max oldest collected records (by time,
 * across all rings) and counts the rest as dropped.  Called when the
 * collection reaches twice the bound (so each call sorts at most 2 x max
 * records and frees max slots) and once before the export. */
static void keep_oldest(struct tr *t)
{
    if (t->n <= t->max) return;
    qsort(t->recs, t->n, sizeof *t->recs, by_time);
    t->dropped += t->n - t->max;
    t->n = t->max;
}

/* Reads everything new from every ring; collects what matches, and prints
 * it in time order: everything (final), or what is older than the grace. */
static void poll_once(struct tr *t, bool final)
{
    p2p_trace_rec_t *batch = t->batch;
    char(*nm)[16] = t->nm;
    size_t bmax = t->info.ring_cap;
    for (unsigned ring = 0; ring < t->info.ring_count; ring++) {
        size_t got;
        /* The ring header's owner, read before the records: an owner that
         * took the ring later wrote its START after them.  A batch holds the
         * whole ring (its capacity), so the STOP that names the records of
         * a previous owner is in the same batch as they are. */
        char owner_now[16];
        p2p_trace_reader_ring_name(t->r, owner_now, ring);
        while ((got = p2p_trace_reader_next(t->r, batch, bmax, ring, &t->lost)) > 0) {
            /* Owner names: START and STOP records carry the writer's name,
             * so each record takes the name of the START before it (or of
             * the owner open at the previous batch), else of the STOP after
             * it, else the ring header's owner (read above). */
            char cur[16], nxt[16];
            memcpy(cur, t->names[ring], sizeof cur);
            uint64_t prev = t->last_seq[ring];
            for (size_t i = 0; i < got; i++) {
                /* a gap (records lost to overwrites) may hide a STOP and
                 * START: the owner open before it is no longer known */
                if (t->last_seq[ring] && batch[i].seq != t->last_seq[ring] + 1) cur[0] = 0;
                t->last_seq[ring] = batch[i].seq;
                if (batch[i].type == P2P_TRACE_START && batch[i].name[0])
                    memcpy(cur, batch[i].name, sizeof cur);
                memcpy(nm[i], cur, sizeof cur);
                if (batch[i].type == P2P_TRACE_STOP && batch[i].name[0]) {
                    memcpy(nm[i], batch[i].name, sizeof cur);
                    cur[0] = 0;
                }
            }
            memcpy(t->names[ring], cur, sizeof cur);
            memcpy(nxt, owner_now, sizeof nxt);
            for (size_t i = got; i-- > 0;) {
                if (batch[i].type == P2P_TRACE_STOP && batch[i].name[0])
                    memcpy(nxt, batch[i].name, sizeof nxt);
                else if (batch[i].type == P2P_TRACE_START)
                    nxt[0] = 0;
                if (!nm[i][0]) memcpy(nm[i], nxt, sizeof nxt);
            }
            for (size_t i = 0; i < got; i++) {
                /* a new track at each START, and after a gap that may
                 * hide one when the writer's name changed across it */
                bool gap = prev && batch[i].seq != prev + 1;
                prev = batch[i].seq;
                if (batch[i].type == P2P_TRACE_START || (gap && strcmp(nm[i], t->track[ring]) != 0))
                    t->owners[ring]++;
                memcpy(t->track[ring], nm[i], sizeof t->track[ring]);
                struct item it = {.r = batch[i], .owner = t->owners[ring]};
                if (nm[i][0])
                    memcpy(it.name, nm[i], sizeof it.name);
                else
                    snprintf(it.name, sizeof it.name, "ring%u", ring);
                if (!match(t, &it.r, it.name)) continue;
                struct item **arr = t->collect ? &t->recs : &t->pend;
                size_t *n = t->collect ? &t->n : &t->np, *cap = t->collect ? &t->cap : &t->pcap;
                if (t->collect && t->n >= 2 * t->max) keep_oldest(t);
                if (*n == *cap) {
                    size_t nc = *cap ? *cap * 2 : 4096;
                    struct item *nr = realloc(*arr, nc * sizeof *nr);
                    if (!nr) cli_fail("out of memory");
                    *arr = nr;
                    *cap = nc;
                }
                (*arr)[(*n)++] = it;
            }
            if (got < bmax) break;
            p2p_trace_reader_ring_name(t->r, owner_now, ring);
        }
    }
    if (t->np) {
        qsort(t->pend, t->np, sizeof *t->pend, by_time);
        uint64_t now = p2p_now_ns();
        uint64_t cutoff = final || now < FOLLOW_GRACE_NS ? UINT64_MAX : now - FOLLOW_GRACE_NS;
        size_t i = 0;
        for (; i < t->np && t->pend[i].r.time_ns <= cutoff; i++) print_rec(t, &t->pend[i]);
        memmove(t->pend, t->pend + i, (t->np - i) * sizeof *t->pend);
        t->np -= i;
        if (i) fflush(t->out);
    }
}

/* ---- Chrome export ----------------------------------------------------- */

struct key {
    uint64_t peer, arg;
    uint32_t mk;       /* mailbox << 16 | kind */
    size_t head, tail; /* FIFO of push indices + 1 (0: empty) */
    bool used;
};

static uint64_t key_hash(uint32_t mk, uint64_t peer, uint64_t arg)
{
    uint64_t h = mk * 0x9E3779B97F4A7C15ull;
    h ^= peer + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2);
    h ^= arg + 0x85EBCA77C2B2AE63ull + (h << 6) + (h >> 2);
    return h ^ (h >> 31);
}

static struct key *key_find(struct key *tab, size_t mask, const p2p_trace_rec_t *r, bool create)
{
    uint32_t mk = (uint32_t)r->mailbox << 16 | r->kind;
    for (size_t i = key_hash(mk, r->peer, r->arg) & mask;; i = (i + 1) & mask) {
        struct key *k = &tab[i];
        if (!k->used) {
            if (!create) return NULL;
            k->used = true;
            k->mk = mk;
            k->peer = r->peer;
            k->arg = r->arg;
            return k;
        }
        if (k->mk == mk && k->peer == r->peer && k->arg == r->arg) return k;
    }
}

/* Copies the string in to out (outlen bytes, > 0) as valid UTF-8: each
 * byte that does not start a valid sequence becomes U+FFFD.  Whole
 * sequences only: out holds everything when outlen >= 3 * strlen(in) + 1. */
static void utf8_clean(char *out, size_t outlen, const char *in)
{
    static const char repl[] = "\xEF\xBF\xBD";
    const uint8_t *p = (const uint8_t *)in;
    size_t o = 0, left = strlen(in);
    while (left) {
        size_t n = p2p_utf8_seq_len(p, left);
        const void *src = n ? (const void *)p : repl;
        size_t len = n ? n : 3;
        if (len >= outlen - o) break;
        memcpy(out + o, src, len);
        o += len;
        p += n ? n : 1;
        left -= n ? n : 1;
    }
    out[o] = 0;
}

/* Appends ev (taking its reference) to arr.  Returns 1, or 0 and counts it
 * in *failed if it could not be built (NULL) or appended. */
static unsigned add_event(json_t *arr, json_t *ev, uint64_t *failed)
{
    if (ev && json_array_append_new(arr, ev) == 0) return 1;
    (*failed)++;
    return 0;
}

/* One track per (ring, owner): a ring's owner changes at each START
 * (item.owner; below 2^53, so JSON readers keep it exact). */
static json_int_t tid_of(const struct item *it)
{
    return (json_int_t)(it->r.ring + 1) * 1000000000 + it->owner % 1000000000;
}

/* Ends a failed export to path (f, opened for it, or NULL once closed):
 * a regular file is removed (no partial export is left; a device or pipe
 * is left alone), then exits 1 naming path and err. */
__attribute__((noreturn)) static void export_fail(FILE *f, const char *path, int err)
{
    file_out_remove_partial(path);
    if (f) fclose(f);
    cli_fail("cannot write %s: %s", path, strerror(err));
}

static void export_chrome(struct tr *t, const char *path)
{
    qsort(t->recs, t->n, sizeof *t->recs, by_time);
    FILE *f = fopen(path, "w");
    if (!f) cli_fail("cannot write %s: %s", path, strerror(errno));
    json_int_t pid = t->info.pid;
    json_t *events = json_array();
    /* track names: the ring's owner name; tid: ring and owner generation
     * (tid_of), so a reused ring gets a new track */
    size_t *next = calloc(t->n + 1, sizeof *next);
    size_t kcap = 1024;
    while (kcap < t->n * 2) kcap <<= 1;
    struct key *tab = calloc(kcap, sizeof *tab);
    uint64_t *flow = calloc(t->n + 1, sizeof *flow); /* flow id per record index (0: none) */
    if (!next || !tab || !flow || !events) export_fail(f, path, ENOMEM);

    /* pass 1: match pops to pushes, one instant (run of equal times) at a
     * time: its pushes first, then its pops */
    uint64_t flows = 0, unmatched = 0;
    for (size_t lo = 0, hi; lo < t->n; lo = hi) {
        for (hi = lo + 1; hi < t->n && t->recs[hi].r.time_ns == t->recs[lo].r.time_ns; hi++) {
        }
        for (size_t i = lo; i < hi; i++) {
            const p2p_trace_rec_t *r = &t->recs[i].r;
            if (r->type != P2P_TRACE_PUSH) continue;
            struct key *k = key_find(tab, kcap - 1, r, true);
            if (k->tail)
                next[k->tail - 1] = i + 1;
            else
                k->head = i + 1;
            k->tail = i + 1;
        }
        for (size_t i = lo; i < hi; i++) {
            const p2p_trace_rec_t *r = &t->recs[i].r;
            if (r->type != P2P_TRACE_POP) continue;
            struct key *k = key_find(tab, kcap - 1, r, false);
            if (!k || !k->head) {
                unmatched++;
                continue;
            }
            size_t pi = k->head - 1;
            k->head = next[pi];
            if (!k->head) k->tail = 0;
            flow[pi] = flow[i] = ++flows;
        }
    }

    uint64_t exported = 0, bad_ring = 0, failed = 0;
    add_event(events,
              json_pack("{s:s, s:s, s:I, s:I, s:{s:s}}", "name", "process_name", "ph", "M", "pid",
                        pid, "tid", (json_int_t)0, "args", "name", "devp2p node"),
              &failed);
    /* which tids exist, with their names */
    json_t *named = json_object();
    if (!named) export_fail(f, path, ENOMEM);
    for (size_t i = 0; i < t->n; i++) {
        const p2p_trace_rec_t *r = &t->recs[i].r;
        if (r->ring >= t->info.ring_count) { /* a corrupt record: no track for it */
            bad_ring++;
            continue;
        }
        json_int_t tid = tid_of(&t->recs[i]);
        char key[32], mb[P2P_TRACE_NAME_LEN], kn[P2P_TRACE_NAME_LEN];
        /* UTF-8 copies of the names (each invalid byte -> 3 bytes) */
        char mbu[3 * P2P_TRACE_NAME_LEN + 1], knu[3 * P2P_TRACE_NAME_LEN + 1];
        snprintf(key, sizeof key, "%lld", (long long)tid);
        if (!json_object_get(named, key)) {
            char label[3 * sizeof t->recs[i].name + 1];
            utf8_clean(label, sizeof label, t->recs[i].name);
            json_object_set_new(named, key, json_true());
            add_event(events,
                      json_pack("{s:s, s:s, s:I, s:I, s:{s:s}}", "name", "thread_name", "ph", "M",
                                "pid", pid, "tid", tid, "args", "name", label),
                      &failed);
        }
        p2p_trace_reader_mailbox_name(t->r, mb, r->mailbox);
        p2p_trace_reader_kind_name(t->r, kn, r->kind);
        utf8_clean(mbu, sizeof mbu, mb);
        utf8_clean(knu, sizeof knu, kn);
        double ts =
            (double)(r->time_ns -
                     (r->time_ns >= t->info.start_mono_ns ? t->info.start_mono_ns : r->time_ns)) /
            1e3;
        char name[8 + sizeof mbu + sizeof knu];
        if (r->mailbox)
            snprintf(name, sizeof name, "%s %s%s%s", p2p_trace_type_name(r->type),
                     mbu[0] ? mbu : "?", knu[0] ? " " : "", knu);
        else
            snprintf(name, sizeof name, "%s%s%s", p2p_trace_type_name(r->type), knu[0] ? " " : "",
                     knu);
        char peer[17];
        snprintf(peer, sizeof peer, "%016llx", (unsigned long long)r->peer);
        json_t *args =
            json_pack("{s:s, s:I, s:s, s:I, s:s, s:I}", "type", p2p_trace_type_name(r->type),
                      "mailbox", (json_int_t)r->mailbox, "kind", knu, "kind_id",
                      (json_int_t)r->kind, "peer", peer, "seq", (json_int_t)r->seq);
        char argtext[24];
        snprintf(argtext, sizeof argtext, "%llu", (unsigned long long)r->arg);
        /* an event without one of its args is not written: counted failed
         * (the pack below fails on a NULL args) */
        if (args &&
            (json_object_set_new(args, "arg", json_string(argtext)) != 0 ||
             (r->mailbox && json_object_set_new(args, "mailbox_name", json_string(mbu)) != 0))) {
            json_decref(args);
            args = NULL;
        }
        /* s:o takes args even when the pack fails */
        exported += add_event(events,
                              json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:o}", "name", name,
                                        "cat", r->mailbox ? "mailbox" : "event", "ph", "X", "ts",
                                        ts, "dur", 1.0, "pid", pid, "tid", tid, "args", args),
                              &failed);
        if (flow[i]) {
            bool push = r->type == P2P_TRACE_PUSH;
            json_t *fe =
                json_pack("{s:s, s:s, s:s, s:I, s:f, s:I, s:I}", "name", mbu[0] ? mbu : "mailbox",
                          "cat", "mailbox", "ph", push ? "s" : "f", "id", (json_int_t)flow[i], "ts",
                          ts, "pid", pid, "tid", tid);
            if (fe && !push && json_object_set_new(fe, "bp", json_string("e")) != 0) {
                json_decref(fe); /* a flow end without its binding point: failed */
                fe = NULL;
            }
            add_event(events, fe, &failed);
        }
    }
    json_decref(named);
    json_t *top = json_pack("{s:o, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "traceEvents",
                            events, "displayTimeUnit", "ns", "otherData", "pid", pid, "records",
                            (json_int_t)t->n, "exported", (json_int_t)exported, "flows",
                            (json_int_t)flows, "lost", (json_int_t)t->lost, "unmatched_pops",
                            (json_int_t)unmatched, "failed_events", (json_int_t)failed);
    if (!top) export_fail(f, path, ENOMEM);
    /* errno: the failed write's (a failed flush is not always seen again
     * by fclose: file_out_error) */
    errno = 0;
    if (json_dumpf(top, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF)
        export_fail(f, path, errno ? errno : EIO);
    int e = file_out_error(f);
    if (e) export_fail(f, path, e);
    if (fclose(f) != 0) export_fail(NULL, path, errno ? errno : EIO);
    fprintf(
        stderr, "trace: exported %llu records, %llu flows, %llu overwritten while read, to %s\n",
        (unsigned long long)exported, (unsigned long long)flows, (unsigned long long)t->lost, path);
    if (exported != t->n || failed)
        fprintf(stderr,
                "trace: %llu of %zu records not exported (%llu with an invalid ring index), "
                "%llu events could not be encoded\n",
                (unsigned long long)(t->n - exported), t->n, (unsigned long long)bad_ring,
                (unsigned long long)failed);
    json_decref(top);
    free(next);
    free(tab);
    free(flow);
}

static unsigned parse_types(const char *list)
{
    unsigned mask = 0;
    char *copy = strdup(list), *save = NULL;
    if (!copy) cli_fail("out of memory");
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        unsigned k;
        for (k = 1; k <= P2P_TRACE_CUSTOM; k++)
            if (strcmp(s, p2p_trace_type_name((uint8_t)k)) == 0) break;
        if (k > P2P_TRACE_CUSTOM)
            cli_usage_fail("invalid --type '%s': want push, pop, full, block, start, stop, event",
                           s);
        mask |= 1u << k;
    }
    free(copy);
    /* an empty list would be no filter at all: every record passes */
    if (!mask)
        cli_usage_fail("invalid --type '%s': want push, pop, full, block, start, stop, event",
                       list);
    return mask;
}

int cmd_trace(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "trace", "",
        "Maps a running node's trace rings (<datadir>/" P2P_TRACE_FILE ") read-only and prints "
        "the records, or exports them as Chrome trace-event JSON (Perfetto).",
        0, 0};
    struct tr t = {.out = stdout, .max = 4u << 20};
    const char *datadir = NULL, *file = NULL, *export_fmt = NULL, *duration = NULL, *maxr = NULL;
    bool follow = false, from_end = false;
    const cli_opt_t opts[] = {
        {"datadir", "DIR", "the node's data directory (default ~/.devp2p-c)", &datadir, NULL},
        {"file", "PATH", "the trace file itself (instead of --datadir)", &file, NULL},
        {"thread", "GLOB", "only records of threads matching (e.g. 'peer-*')", &t.f.thread, NULL},
        {"mailbox", "GLOB|ID", "only records of this mailbox", &t.f.mailbox, NULL},
        {"kind", "GLOB|N", "only records of this message kind", &t.f.kind, NULL},
        {"peer", "ID",
         "only records of the peer whose node id starts with ID (1 to 64 hex digits), or of the "
         "node an enode URL, enr: record or 128-hex public key names",
         &t.f.peer, NULL},
        {"type", "LIST", "only these record types (push,pop,full,block,start,stop,event)",
         &t.f.types, NULL},
        {"follow", NULL, "keep printing new records until interrupted", NULL, &follow},
        {"new", NULL, "skip what the rings hold now (only new records)", NULL, &from_end},
        {"duration", "S", "stop following after S seconds", &duration, NULL},
        {"export", "FMT FILE", "write Chrome trace JSON (FMT: chrome) to FILE", &export_fmt, NULL},
        {"max-records", "N", "records kept for an export, the oldest by time (default 4194304)",
         &maxr, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    /* --export takes two values: FMT and FILE */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    const char *export_path = NULL;
    int na = 0;
    if (!args) cli_fail("out of memory");
    for (int i = 0; i < argc; i++) {
        args[na++] = argv[i];
        if (strcmp(argv[i], "--export") == 0) {
            if (i + 2 >= argc) cli_usage_fail("trace: --export needs FMT and FILE (chrome FILE)");
            args[na++] = argv[++i];
            export_path = argv[++i];
        }
    }
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], na, args, pos, &npos);
    free(args);
    if (export_fmt && strcmp(export_fmt, "chrome") != 0)
        cli_usage_fail("trace: unknown export format '%s' (want chrome)", export_fmt);
    if (export_fmt && !export_path) cli_usage_fail("trace: --export needs a FILE");
    if (datadir && file) cli_usage_fail("trace: give --datadir DIR or --file PATH, not both");
    if (t.f.types) t.f.type_mask = parse_types(t.f.types);
    char peer_id[65];
    if (t.f.peer) {
        /* a node id prefix: records hold the id's first 8 bytes, so a
         * longer prefix is compared on those; anything but 1..64 hex
         * digits would match no record (or, empty, every one).  A node as
         * the admin API and logs show it (enode URL, enr: record or the
         * 128-hex public key) stands for its node id, keccak256(key). */
        const char *p = t.f.peer;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) p += 2;
        size_t n = strspn(p, "0123456789abcdefABCDEF");
        if (n == 0 || n > 64 || p[n]) {
            p2p_node_t node;
            const char *why = NULL;
            int rc = p2p_node_parse_why(&node, t.f.peer, &why);
            if (rc != 0)
                cli_usage_fail("invalid --peer '%s': want a node id or its first hex digits (1 to "
                               "64), an enode URL, an enr: record or a 128-hex public key (%s)",
                               t.f.peer, why ? why : p2p_strerror(rc));
            p2p_hex_encode(peer_id, node.id, sizeof node.id);
            t.f.peer = peer_id;
        }
    }
    if (maxr) t.max = cli_uint("--max-records", maxr, 1, 1u << 28);
    uint64_t deadline =
        duration ? p2p_now_ns() + cli_duration_ns("--duration", duration) : P2P_DEADLINE_NEVER;
    char path[4096];
    char *dflt = NULL;
    if (!datadir && !file) datadir = dflt = cli_default_datadir();
    if (datadir)
        snprintf(path, sizeof path, "%s/%s", datadir, P2P_TRACE_FILE);
    else
        snprintf(path, sizeof path, "%s", file);
    free(dflt);
    int rc = p2p_trace_reader_open(&t.r, path);
    if (rc == P2P_ESYS)
        cli_fail("cannot open trace file %s: %s (is the node running with --trace?)", path,
                 strerror(errno));
    if (rc == P2P_EUNSUPPORTED) cli_fail("%s: unsupported trace format version", path);
    if (rc) cli_fail("%s is not a trace file (%s)", path, p2p_strerror(rc));
    p2p_trace_reader_info(t.r, &t.info);
    t.names = calloc(t.info.ring_count, sizeof *t.names);
    t.owners = calloc(t.info.ring_count, sizeof *t.owners);
    t.last_seq = calloc(t.info.ring_count, sizeof *t.last_seq);
    t.track = calloc(t.info.ring_count, sizeof *t.track);
    /* ring_cap records (the file holds count x ring_cap of 40 bytes) */
    t.batch = malloc((size_t)t.info.ring_cap * sizeof *t.batch);
    t.nm = malloc((size_t)t.info.ring_cap * sizeof *t.nm);
    if (!t.names || !t.owners || !t.last_seq || !t.track || !t.batch || !t.nm)
        cli_fail("out of memory");
    /* a file left by a node that exited (or restarted without --trace)
     * would otherwise look live */
    if (!writer_running(&t))
        fprintf(stderr,
                "trace: the node that wrote this trace (pid %d) is not running: showing what it "
                "left\n",
                (int)t.info.pid);
    if (from_end) p2p_trace_reader_seek_end(t.r);
    t.collect = export_fmt != NULL;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    poll_once(&t, !follow);
    bool writer_gone = false, replaced = false;
    while (follow && !stop_flag && p2p_now_ns() < deadline) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        poll_once(&t, false);
        /* a new segment at the path (the node restarted or re-opened its
         * trace): this mapping will see none of its records */
        if (p2p_trace_reader_replaced(t.r, path)) {
            replaced = true;
            break;
        }
        if (!writer_running(&t)) {
            writer_gone = true;
            break;
        }
    }
    if (follow) poll_once(&t, true);
    /* the rings stay readable after the node is gone: say why we stop */
    if (replaced)
        fprintf(stderr,
                "trace: %s was replaced by a new trace segment (the node restarted or re-opened "
                "it); stopped following the old one (pid %d): run devp2p trace again\n",
                path, (int)t.info.pid);
    else if (writer_gone)
        fprintf(stderr, "trace: the node (pid %d) exited; stopped following\n", (int)t.info.pid);
    free(t.pend);
    if (export_fmt) {
        keep_oldest(&t);
        export_chrome(&t, export_path);
    }
    /* threads that recorded nothing: say so, or the output looks complete */
    p2p_trace_reader_info(t.r, &t.info);
    if (t.info.no_ring)
        fprintf(stderr,
                "trace: warning: %llu threads found no free ring and recorded nothing (%llu "
                "events lost): all %u rings were taken; restart the node with more rings "
                "(devp2pd sizes them from --maxpeers and --maxpendpeers)\n",
                (unsigned long long)t.info.no_ring_threads, (unsigned long long)t.info.no_ring,
                t.info.ring_count);
    if (t.lost || t.dropped)
        fprintf(stderr, "trace: %llu records lost to overwrites, %llu over --max-records\n",
                (unsigned long long)t.lost, (unsigned long long)t.dropped);
    free(t.recs);
    free(t.names);
    free(t.owners);
    free(t.last_seq);
    free(t.track);
    free(t.batch);
    free(t.nm);
    p2p_trace_reader_close(t.r);
    return 0;
}
