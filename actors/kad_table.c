/*
 * actors/kad_table.c: the Kademlia routing table (see kad_table.h).
 *
 * Owned by the discovery table thread (through disc_core); pure: no I/O,
 * no clock, no allocation.  Sizes are fixed: 17 buckets x (16 entries + 10
 * replacements), so every operation is a bounded scan (at most 442 nodes),
 * which is cheaper than keeping side indexes consistent.  The IP limits are
 * counted by scanning too, with LAN/loopback exemption from core/netutil.
 */
#include "actors/kad_table.h"

#include <string.h>

#include "core/netutil.h"

/* ---- PRNG (splitmix64; not for secrets) ---- */

static uint64_t kad_next(p2p_kad_table_t *t)
{
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t p2p_kad_rand(p2p_kad_table_t *t, uint64_t n)
{
    /* Lemire's multiply-shift reduction; the bias is negligible here. */
    return (uint64_t)(((unsigned __int128)kad_next(t) * n) >> 64);
}

/* ---- distances ---- */

int p2p_kad_logdist(const uint8_t a[32], const uint8_t b[32])
{
    for (int i = 0; i < 32; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) return (31 - i) * 8 + (32 - __builtin_clz((unsigned)x)); /* bit length */
    }
    return 0;
}

int p2p_kad_distcmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32])
{
    for (int i = 0; i < 32; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db) return da < db ? -1 : 1;
    }
    return 0;
}

void p2p_kad_xor(uint8_t d[32], const uint8_t a[32], const uint8_t b[32])
{
    for (int i = 0; i < 32; i++) d[i] = a[i] ^ b[i];
}

unsigned p2p_kad_bucket_of(int logdist)
{
    if (logdist <= P2P_KAD_BUCKET_MIN_DIST + 1) return 0;
    return (unsigned)(logdist - P2P_KAD_BUCKET_MIN_DIST - 1);
}

bool p2p_kad_same_net(const p2p_ip_t *a, const p2p_ip_t *b)
{
    if (a->family != b->family) return false;
    /* The first 24 bits for both families, as the reference client does. */
    if (a->family == 4 || a->family == 6) return memcmp(a->addr, b->addr, 3) == 0;
    return false;
}

/* ---- helpers ---- */

static p2p_kad_bucket_t *kad_bucket(p2p_kad_table_t *t, const uint8_t id[32])
{
    return &t->b[p2p_kad_bucket_of(p2p_kad_logdist(t->self, id))];
}

static int kad_entry_index(const p2p_kad_bucket_t *b, const uint8_t id[32])
{
    for (unsigned i = 0; i < b->n; i++)
        if (memcmp(b->e[i].node.id, id, 32) == 0) return (int)i;
    return -1;
}

static int kad_repl_index(const p2p_kad_bucket_t *b, const uint8_t id[32])
{
    for (unsigned i = 0; i < b->nrepl; i++)
        if (memcmp(b->repl[i].id, id, 32) == 0) return (int)i;
    return -1;
}

/* Counts addresses of ip's subnet in bucket b, ignoring the node skip_id. */
static unsigned kad_bucket_net_count(const p2p_kad_bucket_t *b, const p2p_ip_t *ip,
                                     const uint8_t *skip_id)
{
    unsigned c = 0;
    for (unsigned i = 0; i < b->n; i++) {
        const p2p_node_t *n = &b->e[i].node;
        if (skip_id && memcmp(n->id, skip_id, 32) == 0) continue;
        c += p2p_kad_same_net(&n->ep.ip, ip);
    }
    for (unsigned i = 0; i < b->nrepl; i++) {
        const p2p_node_t *n = &b->repl[i];
        if (skip_id && memcmp(n->id, skip_id, 32) == 0) continue;
        c += p2p_kad_same_net(&n->ep.ip, ip);
    }
    return c;
}

/* True if ip may be (re)counted in bucket b: LAN addresses always fit, others
 * only below both limits.  skip_id's own address is not counted (it is the
 * node being moved or re-addressed). */
static bool kad_ip_fits(const p2p_kad_table_t *t, const p2p_kad_bucket_t *b, const p2p_ip_t *ip,
                        const uint8_t *skip_id)
{
    if (p2p_ip_is_lan(ip)) return true;
    if (kad_bucket_net_count(b, ip, skip_id) >= P2P_KAD_BUCKET_IP_LIMIT) return false;
    unsigned total = 0;
    for (unsigned i = 0; i < P2P_KAD_NBUCKETS; i++)
        total += kad_bucket_net_count(&t->b[i], ip, skip_id);
    return total < P2P_KAD_TABLE_IP_LIMIT;
}

static void kad_repl_remove(p2p_kad_bucket_t *b, unsigned i)
{
    memmove(&b->repl[i], &b->repl[i + 1], (b->nrepl - i - 1) * sizeof b->repl[0]);
    b->nrepl--;
}

/* Moves entry i to the front of the bucket. */
static void kad_to_front(p2p_kad_bucket_t *b, unsigned i)
{
    if (i == 0) return;
    p2p_kad_entry_t e = b->e[i];
    memmove(&b->e[1], &b->e[0], i * sizeof b->e[0]);
    b->e[0] = e;
}

/* Moves entry e to revalidation list `list`, keeping the list counters. */
static void kad_set_list(p2p_kad_table_t *t, p2p_kad_entry_t *e, uint8_t list)
{
    if (e->slow == list) return;
    t->nlist[e->slow]--;
    t->nlist[list]++;
    if (!e->pending) {
        t->navail[e->slow]--;
        t->navail[list]++;
    }
    e->slow = list;
}

static void kad_set_pending(p2p_kad_table_t *t, p2p_kad_entry_t *e, uint8_t pending)
{
    if (e->pending == pending) return;
    if (pending)
        t->navail[e->slow]--;
    else
        t->navail[e->slow]++;
    e->pending = pending;
}

/* Counts a new entry (fast list, no check in flight). */
static void kad_count_new(p2p_kad_table_t *t)
{
    t->count++;
    t->nlist[0]++;
    t->navail[0]++;
}

/* Changes the endpoint of an entry or replacement (node *cur, in bucket b) to
 * ep if the IP limits allow it.  Returns 0 or P2P_ELIMIT. */
static int kad_set_endpoint(const p2p_kad_table_t *t, const p2p_kad_bucket_t *b, p2p_node_t *cur,
                            const p2p_endpoint_t *ep)
{
    if (ep->ip.family == 0) return P2P_ELIMIT;
    if (!p2p_ip_equal(&cur->ep.ip, &ep->ip) && !kad_ip_fits(t, b, &ep->ip, cur->id))
        return P2P_ELIMIT;
    cur->ep = *ep;
    return 0;
}

/* Adds n at the front of b's replacement list (moving it there if present). */
static p2p_kad_add_t kad_add_replacement(p2p_kad_table_t *t, p2p_kad_bucket_t *b,
                                         const p2p_node_t *n)
{
    int ri = kad_repl_index(b, n->id);
    p2p_node_t node = *n;
    p2p_kad_add_t res = P2P_KAD_REPLACEMENT;
    if (ri >= 0) {
        p2p_node_t *cur = &b->repl[ri];
        node = *cur;
        if (n->seq >= cur->seq) {
            node.seq = n->seq;
            if (kad_set_endpoint(t, b, &node, &n->ep) != 0) res = P2P_KAD_ADDR_LIMIT;
        }
        kad_repl_remove(b, (unsigned)ri);
    } else if (!kad_ip_fits(t, b, &n->ep.ip, NULL)) {
        return P2P_KAD_IPLIMIT;
    }
    if (b->nrepl == P2P_KAD_MAX_REPLACEMENTS) b->nrepl--; /* drop the oldest */
    memmove(&b->repl[1], &b->repl[0], b->nrepl * sizeof b->repl[0]);
    b->repl[0] = node;
    b->nrepl++;
    return res;
}

/* Inserts n as a new entry of b (at the front if verified, else at the back).
 * The caller checked that there is room and that n is not an entry yet. */
static p2p_kad_add_t kad_insert(p2p_kad_table_t *t, p2p_kad_bucket_t *b, const p2p_node_t *n,
                                bool verified, uint64_t now_ns)
{
    int ri = kad_repl_index(b, n->id);
    if (!kad_ip_fits(t, b, &n->ep.ip, ri >= 0 ? n->id : NULL)) return P2P_KAD_IPLIMIT;
    if (ri >= 0) kad_repl_remove(b, (unsigned)ri);
    p2p_kad_entry_t e;
    memset(&e, 0, sizeof e);
    e.node = *n;
    e.added_ns = now_ns;
    e.checks = verified ? 1 : 0;
    e.live = verified;
    b->e[b->n++] = e;
    if (verified) kad_to_front(b, b->n - 1);
    kad_count_new(t);
    return P2P_KAD_ADDED;
}

/* ---- table ---- */

void p2p_kad_init(p2p_kad_table_t *t, const uint8_t self[32], uint64_t seed)
{
    memset(t, 0, sizeof *t);
    memcpy(t->self, self, 32);
    t->rng = seed;
}

static p2p_kad_add_t kad_precheck(const p2p_kad_table_t *t, const p2p_node_t *n)
{
    if (memcmp(n->id, t->self, 32) == 0) return P2P_KAD_SELF;
    if (n->ep.ip.family != 4 && n->ep.ip.family != 6) return P2P_KAD_NOADDR;
    return P2P_KAD_ADDED;
}

p2p_kad_add_t p2p_kad_add_seen(p2p_kad_table_t *t, const p2p_node_t *n, uint64_t now_ns)
{
    p2p_kad_add_t pre = kad_precheck(t, n);
    if (pre != P2P_KAD_ADDED) return pre;
    p2p_kad_bucket_t *b = kad_bucket(t, n->id);
    int i = kad_entry_index(b, n->id);
    if (i >= 0) {
        p2p_node_t *cur = &b->e[i].node;
        if (n->seq > cur->seq) {
            cur->seq = n->seq;
            if (kad_set_endpoint(t, b, cur, &n->ep) != 0) return P2P_KAD_ADDR_LIMIT;
        }
        return P2P_KAD_UPDATED;
    }
    int ri = kad_repl_index(b, n->id);
    if (ri >= 0) {
        p2p_node_t *cur = &b->repl[ri];
        bool refused = false;
        if (n->seq > cur->seq) {
            cur->seq = n->seq;
            refused = kad_set_endpoint(t, b, cur, &n->ep) != 0;
        }
        if (b->n < P2P_KAD_BUCKET_SIZE) {
            /* it enters the table (ADDED: an event for the caller) */
            p2p_node_t copy = *cur;
            return kad_insert(t, b, &copy, false, now_ns);
        }
        return refused ? P2P_KAD_ADDR_LIMIT : P2P_KAD_REPLACEMENT;
    }
    if (b->n < P2P_KAD_BUCKET_SIZE) return kad_insert(t, b, n, false, now_ns);
    return kad_add_replacement(t, b, n);
}

p2p_kad_add_t p2p_kad_add_verified(p2p_kad_table_t *t, const p2p_node_t *n, uint64_t now_ns)
{
    p2p_kad_add_t pre = kad_precheck(t, n);
    if (pre != P2P_KAD_ADDED) return pre;
    p2p_kad_bucket_t *b = kad_bucket(t, n->id);
    int i = kad_entry_index(b, n->id);
    if (i >= 0) {
        p2p_kad_entry_t *e = &b->e[i];
        /* The proof is for n's address: if the entry cannot move there, it
         * says nothing of the address the entry keeps, which stays as it
         * was (not marked live, not moved). */
        if (kad_set_endpoint(t, b, &e->node, &n->ep) != 0) return P2P_KAD_ADDR_LIMIT;
        if (n->seq > e->node.seq) e->node.seq = n->seq;
        e->live = 1;
        if (e->checks == 0) e->checks = 1;
        kad_to_front(b, (unsigned)i);
        return P2P_KAD_UPDATED;
    }
    if (b->n < P2P_KAD_BUCKET_SIZE) {
        p2p_node_t node = *n;
        int ri = kad_repl_index(b, n->id);
        if (ri >= 0 && b->repl[ri].seq > node.seq) node.seq = b->repl[ri].seq;
        return kad_insert(t, b, &node, true, now_ns);
    }
    return kad_add_replacement(t, b, n);
}

int p2p_kad_delete(p2p_kad_table_t *t, p2p_node_t *promoted, const uint8_t id[32], uint64_t now_ns)
{
    p2p_kad_bucket_t *b = kad_bucket(t, id);
    int i = kad_entry_index(b, id);
    if (i < 0) return P2P_ENOTFOUND;
    const p2p_kad_entry_t *old = &b->e[i];
    t->nlist[old->slow]--;
    if (!old->pending) t->navail[old->slow]--;
    memmove(&b->e[i], &b->e[i + 1], (b->n - (unsigned)i - 1) * sizeof b->e[0]);
    b->n--;
    t->count--;
    if (b->nrepl == 0) return 0;
    /* Promote a replacement chosen at random (as geth: the most recent one
     * would be whichever node an attacker announced last); its address is
     * already counted in this bucket, so the limits still hold. */
    unsigned r = (unsigned)p2p_kad_rand(t, b->nrepl);
    p2p_kad_entry_t e;
    memset(&e, 0, sizeof e);
    e.node = b->repl[r];
    e.added_ns = now_ns;
    kad_repl_remove(b, r);
    b->e[b->n++] = e;
    kad_count_new(t);
    if (promoted) *promoted = e.node;
    return 1;
}

int p2p_kad_update_record(p2p_kad_table_t *t, const p2p_node_t *n)
{
    p2p_kad_bucket_t *b = kad_bucket(t, n->id);
    int i = kad_entry_index(b, n->id);
    if (i < 0) return P2P_ENOTFOUND;
    p2p_node_t *cur = &b->e[i].node;
    if (n->seq <= cur->seq) return 0;
    cur->seq = n->seq;
    return kad_set_endpoint(t, b, cur, &n->ep);
}

const p2p_kad_entry_t *p2p_kad_find(const p2p_kad_table_t *t, const uint8_t id[32])
{
    const p2p_kad_bucket_t *b = &t->b[p2p_kad_bucket_of(p2p_kad_logdist(t->self, id))];
    int i = kad_entry_index(b, id);
    return i < 0 ? NULL : &b->e[i];
}

bool p2p_kad_is_replacement(const p2p_kad_table_t *t, const uint8_t id[32])
{
    const p2p_kad_bucket_t *b = &t->b[p2p_kad_bucket_of(p2p_kad_logdist(t->self, id))];
    return kad_repl_index(b, id) >= 0;
}

unsigned p2p_kad_bucket_len(const p2p_kad_table_t *t, const uint8_t id[32])
{
    return t->b[p2p_kad_bucket_of(p2p_kad_logdist(t->self, id))].n;
}

unsigned p2p_kad_closest(const p2p_kad_table_t *t, p2p_node_t *out, unsigned cap,
                         const uint8_t target[32], bool prefer_live)
{
    enum { MAXCAP = 64 };
    const p2p_kad_entry_t *best[MAXCAP];
    unsigned n = 0;
    if (cap > MAXCAP) cap = MAXCAP;
    if (cap == 0) return 0;
    /* prefer_live: only live entries if the table has any */
    bool live_only = false;
    for (unsigned bi = 0; prefer_live && !live_only && bi < P2P_KAD_NBUCKETS; bi++)
        for (unsigned i = 0; !live_only && i < t->b[bi].n; i++) live_only = t->b[bi].e[i].live;
    /* Insertion into best[], nearest first. */
    for (unsigned bi = 0; bi < P2P_KAD_NBUCKETS; bi++) {
        const p2p_kad_bucket_t *b = &t->b[bi];
        for (unsigned i = 0; i < b->n; i++) {
            const p2p_kad_entry_t *e = &b->e[i];
            if (live_only && !e->live) continue;
            unsigned pos = n;
            while (pos > 0 && p2p_kad_distcmp(target, e->node.id, best[pos - 1]->node.id) < 0)
                pos--;
            if (pos >= cap) continue;
            unsigned last = n < cap ? n : cap - 1;
            memmove(&best[pos + 1], &best[pos], (last - pos) * sizeof best[0]);
            best[pos] = e;
            if (n < cap) n++;
        }
    }
    for (unsigned i = 0; i < n; i++) out[i] = best[i]->node;
    return n;
}

unsigned p2p_kad_random_nodes(p2p_kad_table_t *t, p2p_node_t *out, unsigned cap)
{
    const p2p_kad_entry_t *all[P2P_KAD_NBUCKETS * P2P_KAD_BUCKET_SIZE];
    unsigned n = 0;
    for (unsigned bi = 0; bi < P2P_KAD_NBUCKETS; bi++)
        for (unsigned i = 0; i < t->b[bi].n; i++) all[n++] = &t->b[bi].e[i];
    unsigned k = 0;
    for (; k < cap && k < n; k++) {
        unsigned j = k + (unsigned)p2p_kad_rand(t, n - k);
        const p2p_kad_entry_t *tmp = all[k];
        all[k] = all[j];
        all[j] = tmp;
        out[k] = all[k]->node;
    }
    return k;
}

/* ---- revalidation ---- */

static uint64_t kad_interval(int list)
{
    return list ? P2P_KAD_SLOW_NS : P2P_KAD_FAST_NS;
}

/* list is next due after a delay drawn uniformly from (0, interval), as
 * the reference client's: one check per half interval on average.  Never
 * at now itself: after a check the deadline is always later. */
static void kad_schedule(p2p_kad_table_t *t, int list, uint64_t now_ns)
{
    uint64_t iv = kad_interval(list);
    t->next_ns[list] = now_ns + 1 + p2p_kad_rand(t, iv - 1);
}

bool p2p_kad_reval_next(p2p_kad_table_t *t, p2p_node_t *out, uint64_t now_ns)
{
    for (int list = 0; list < 2; list++) {
        if (now_ns < t->next_ns[list]) continue;
        unsigned cand = t->navail[list];
        /* An empty list stays due, so its first member is checked soon. */
        if (t->nlist[list] == 0) continue;
        kad_schedule(t, list, now_ns);
        if (cand == 0) continue;
        unsigned k = (unsigned)p2p_kad_rand(t, cand);
        for (unsigned bi = 0; bi < P2P_KAD_NBUCKETS; bi++)
            for (unsigned i = 0; i < t->b[bi].n; i++) {
                p2p_kad_entry_t *e = &t->b[bi].e[i];
                if (e->slow != list || e->pending) continue;
                if (k-- == 0) {
                    kad_set_pending(t, e, 1);
                    *out = e->node;
                    return true;
                }
            }
    }
    return false;
}

/* Moves e, just checked, to list.  An empty list stays due (its first
 * member is checked soon: a new node); but a node that was checked a
 * moment ago must not be checked again at once because its new list was
 * empty, so that list's timer starts now, as for any list. */
static void kad_move_checked(p2p_kad_table_t *t, p2p_kad_entry_t *e, uint8_t list, uint64_t now_ns)
{
    if (e->slow != list && t->nlist[list] == 0 && t->next_ns[list] <= now_ns)
        kad_schedule(t, list, now_ns);
    kad_set_list(t, e, list);
}

void p2p_kad_reval_done(p2p_kad_table_t *t, p2p_kad_reval_t *r, const uint8_t id[32],
                        bool responded, uint64_t pong_seq, uint64_t now_ns)
{
    memset(r, 0, sizeof *r);
    p2p_kad_bucket_t *b = kad_bucket(t, id);
    int i = kad_entry_index(b, id);
    if (i < 0) return;
    p2p_kad_entry_t *e = &b->e[i];
    r->found = true;
    r->node = e->node;
    kad_set_pending(t, e, 0);
    if (!responded) {
        e->checks /= 3;
        r->checks = e->checks;
        if (e->checks == 0) {
            r->deleted = true;
            r->promoted = p2p_kad_delete(t, &r->promoted_node, id, now_ns) == 1;
        } else {
            kad_move_checked(t, e, 0, now_ns);
        }
        return;
    }
    e->checks++;
    e->live = 1;
    kad_move_checked(t, e, 1, now_ns);
    r->checks = e->checks;
    r->need_enr = pong_seq > e->node.seq;
}

void p2p_kad_reval_cancel(p2p_kad_table_t *t, const uint8_t id[32])
{
    p2p_kad_bucket_t *b = kad_bucket(t, id);
    int i = kad_entry_index(b, id);
    if (i >= 0) kad_set_pending(t, &b->e[i], 0);
}

uint64_t p2p_kad_reval_deadline(const p2p_kad_table_t *t)
{
    uint64_t d = UINT64_MAX;
    for (int list = 0; list < 2; list++)
        if (t->navail[list] > 0 && t->next_ns[list] < d) d = t->next_ns[list];
    return d;
}
