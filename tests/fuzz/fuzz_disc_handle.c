/*
 * tests/fuzz/fuzz_disc_handle.c: libFuzzer target for the discovery
 * service's receive path fed packet sequences: the UDP reader's checks and
 * signature recovery (p2p__disc_check, actors/disc_udp.c) followed by the
 * core's handler (p2p_disc_handle) and its timers, on a virtual clock, as
 * p2p-udp and p2p-disc run them.
 *
 * The input is a sequence of datagrams, each [mode][len hi][len lo][bytes]
 * (len clipped to what is left).  Mode bits:
 *   bit 0: the bytes are type || body and are sealed (hash and signature)
 *          with a fixed remote key first, so the fuzzer gets past the hash
 *          and the recovery; otherwise they are sent raw;
 *   bit 1: the datagram comes from a LAN address instead of loopback;
 *   bits 2-4: how far the clock moves after the datagram: 100 ms, 0, 1 s,
 *          5 s, 30 s, 1 h, 13 h, 25 h (past the 24 h bond lifetime), the
 *          core's timers running after every move;
 *   bit 5: sealed with a second key, which starts unbonded (ping/pong
 *          bonding, findnode before and after the proof);
 *   bit 6: from another source port (endpoint mismatch);
 *   bit 7: the wall clock jumps back one hour with this step (the
 *          monotonic clock still moves forward).
 * The first key is bonded with us in the in-memory DB, so findnode and ENR
 * requests are answered; every packet the core sends gets the reply token
 * 0xA0 + type repeated, so a sealed pong echoing 0xA1... matches our ping
 * and an ENR response echoing 0xA5... our ENR request.
 *
 * The reader reads the same virtual clocks (its replay cache, emptied for
 * every input, and its expiration check), and packets reach the core through
 * p2p__disc_deliver as on p2p-disc: a sealed request answered within 20 s is
 * a duplicate when it comes again from another address, or a fourth time.  The reader checks
 * against p2p-disc's replay cache (d->seen), which holds what a reader learns through its
 * `answered` mailbox.
 *
 * Properties: no crash or sanitizer report; the reader's counters add up
 * (every datagram is either rejected under exactly one counter, the
 * duplicates included, or queued);
 * a verified packet never carries our own ID; a request the core answered,
 * checked again right after from another address, is a duplicate; packets the core sends encode;
 * after every step the core's bounds hold (pending requests, lookups,
 * candidates, table size) and our own ID is not in the table.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/disc_int.h"
#include "actors/memdb.h"
#include "crypto/secp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 1700000000ull

static struct {
    int ready;
    uint8_t our_priv[32], our_pub[64];
    uint8_t rem_priv[32], rem_pub[64], rem_id[32];
    uint8_t rem2_priv[32], rem2_pub[64];
    p2p_enr_t rec;
    struct p2p_discovery *d; /* only started.id and ctr are used */
} g;

static p2p_memdb_t *db;

/* The reader's clock: the step loop's monotonic time. */
static uint64_t clock_ns, clock_unix_s;
static uint64_t f_now_ns(const p2p_clock_t *c)
{
    (void)c;
    return clock_ns;
}
static uint64_t f_wall_ms(const p2p_clock_t *c)
{
    (void)c;
    return clock_unix_s * 1000;
}
static const p2p_clock_t fuzz_clock = {f_now_ns, f_wall_ms};

static int f_last_ping(void *c, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_memdb_last_ping(c, t, id, ip);
}
static int f_set_last_ping(void *c, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return p2p_memdb_set_last_ping(c, id, ip, t);
}
static int f_last_pong(void *c, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_memdb_last_pong(c, t, id, ip);
}
static int f_set_last_pong(void *c, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return p2p_memdb_set_last_pong(c, id, ip, t);
}
static int f_findfails(void *c, uint32_t *f, const uint8_t id[32], const p2p_ip_t *ip)
{
    return p2p_memdb_findfails(c, f, id, ip);
}
static int f_set_findfails(void *c, const uint8_t id[32], const p2p_ip_t *ip, uint32_t f)
{
    return p2p_memdb_set_findfails(c, id, ip, f);
}
static int f_put_node(void *c, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    (void)enr;
    (void)enrlen;
    return p2p_memdb_put_node(c, n);
}
static int f_query_seeds(void *c, p2p_node_t *out, size_t *nout, size_t n, uint64_t max_age,
                         uint64_t now)
{
    return p2p_memdb_query_seeds(c, out, nout, n, max_age, now);
}

static int f_send(void *ctx, uint8_t hash[32], const p2p_endpoint_t *to,
                  const p2p_discv4_packet_t *pkt)
{
    (void)ctx;
    if (to->udp == 0 || (to->ip.family != 4 && to->ip.family != 6)) abort();
    if (pkt->type < P2P_DISCV4_PING || pkt->type > P2P_DISCV4_ENRRESPONSE) abort();
    if (pkt->type == P2P_DISCV4_NEIGHBORS && pkt->u.neighbors.n > P2P_DISCV4_MAX_NEIGHBORS) abort();
    memset(hash, 0xA0 + pkt->type, 32);
    return 0;
}

static void setup(void)
{
    if (g.ready) return;
    memset(g.our_priv, 0x21, 32);
    memset(g.rem_priv, 0x42, 32);
    memset(g.rem2_priv, 0x43, 32);
    if (p2p_secp_pubkey(g.our_pub, g.our_priv) || p2p_secp_pubkey(g.rem_pub, g.rem_priv) ||
        p2p_secp_pubkey(g.rem2_pub, g.rem2_priv))
        abort();
    p2p_node_id(g.rem_id, g.rem_pub);
    p2p_enr_init(&g.rec);
    p2p_enr_set_seq(&g.rec, 7);
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    if (p2p_enr_set_ip(&g.rec, &lo) || p2p_enr_set_port(&g.rec, "udp", 30303) ||
        p2p_enr_sign(&g.rec, g.our_priv))
        abort();
    g.d = calloc(1, sizeof *g.d);
    if (!g.d) abort();
    memcpy(g.d->started.pubkey, g.our_pub, 64);
    p2p_node_id(g.d->started.id, g.our_pub);
    g.d->clock = &fuzz_clock;
    p2p__disc_seen_init(&g.d->seen);
    g.ready = 1;
}

static uint64_t rejected(const struct p2p_discovery *d)
{
    uint64_t n = 0;
#define SUM(name) n += atomic_load_explicit(&d->ctr.name, memory_order_relaxed);
    SUM(rx_too_small)
    SUM(rx_too_big)
    SUM(rx_unknown_type)
    SUM(rx_bad_hash)
    SUM(rx_duplicate)
    SUM(rx_bad_packet)
    SUM(rx_expired)
    SUM(rx_bad_sig)
    SUM(rx_from_self)
    SUM(rx_bad_source)
#undef SUM
    return n;
}

static void check_bounds(const p2p_disc_t *core)
{
    if (p2p_disc_pending(core) > P2P_DISC_MAX_PENDING ||
        p2p_disc_lookups_running(core) > P2P_DISC_MAX_LOOKUPS ||
        p2p_disc_candidates_len(core) > P2P_DISC_CANDIDATES)
        abort();
    const p2p_kad_table_t *t = p2p_disc_table(core);
    if (p2p_kad_len(t) > P2P_KAD_NBUCKETS * P2P_KAD_BUCKET_SIZE || p2p_kad_find(t, g.d->started.id))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t step_ms[8] = {100,   0,       1000,         5000,
                                        30000, 3600000, 13 * 3600000, 25 * 3600000};
    setup();
    memset(&g.d->ctr, 0, sizeof g.d->ctr);
    p2p__disc_seen_init(&g.d->seen);
    if (p2p_memdb_new(&db, 256, 32, 1) != 0) abort();
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1), lan = p2p_ip4(192, 168, 1, 9);
    if (p2p_memdb_set_last_pong(db, g.rem_id, &lo, T0) ||
        p2p_memdb_set_last_pong(db, g.rem_id, &lan, T0))
        abort();

    p2p_disc_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(cfg.pubkey, g.our_pub, 64);
    cfg.endpoint.ip = lo;
    cfg.endpoint.udp = cfg.endpoint.tcp = 30303;
    cfg.record = &g.rec;
    cfg.seed = 1;
    cfg.pingbacks = 64; /* small: cheap to create per input, and eviction is reachable */
    cfg.io.send = f_send;
    cfg.db = (p2p_disc_db_t){
        db,          f_last_ping,     f_set_last_ping, f_last_pong,  f_set_last_pong,
        f_findfails, f_set_findfails, f_put_node,      f_query_seeds};
    p2p_disc_t *core = NULL;
    if (p2p_disc_new(&core, &cfg) != 0) abort();
    p2p_disc_time_t now = {.ns = 1000000000ull, .unix_s = T0};
    uint64_t back = 0; /* seconds the wall clock was set back */
    p2p_disc_tick(core, now);

    static p2p__disc_pkt_msg_t msg;
    static uint8_t buf[P2P_DISCV4_MAX_SIZE + 64];
    uint64_t datagrams = 0, queued = 0, late_dups = 0;
    g.d->core = core;
    size_t off = 0;
    while (off < size) {
        uint8_t mode = data[off++];
        size_t len = 0;
        if (off < size) len = (size_t)data[off++] << 8;
        if (off < size) len |= data[off++];
        if (len > size - off) len = size - off;
        const uint8_t *p = data + off;
        off += len;
        size_t n = len;
        if (mode & 1) {
            if (len == 0 || len > P2P_DISCV4_MAX_SIZE - P2P_DISCV4_HEAD_LEN) continue;
            const uint8_t *key = (mode & 0x20) ? g.rem2_priv : g.rem_priv;
            if (p2p_discv4_seal(buf, &n, NULL, p[0], p + 1, len - 1, key) != 0) continue;
        } else {
            if (len > sizeof buf) n = len = sizeof buf;
            memcpy(buf, p, len);
        }
        memset(&msg.src, 0, sizeof msg.src);
        msg.src.ip = (mode & 2) ? lan : lo;
        msg.src.udp = (mode & 0x40) ? 30302 : 30301;
        datagrams++;
        clock_ns = now.ns;
        clock_unix_s = now.unix_s;
        if (p2p__disc_check(g.d, &g.d->seen, &msg, buf, n) == 0) {
            queued++;
            if (memcmp(msg.pkt.sender_id, g.d->started.id, 32) == 0) abort();
            int rc = p2p__disc_deliver(g.d, &msg, now);
            if (rc == P2P_EEXIST) late_dups++; /* counted on the p2p-disc side */
            /* an answered request's bytes again at once from another
             * address: a duplicate, no recovery (replies and unanswered
             * requests are not cached; the sender's own copies are
             * answered up to P2P__DISC_SEEN_ANSWERS times) */
            bool req = msg.pkt.type == P2P_DISCV4_PING || msg.pkt.type == P2P_DISCV4_FINDNODE ||
                       msg.pkt.type == P2P_DISCV4_ENRREQUEST;
            if (req && rc == 0) {
                static p2p__disc_pkt_msg_t again;
                again.src = msg.src;
                again.src.udp = msg.src.udp == 30301 ? 30302 : 30301;
                datagrams++;
                if (p2p__disc_check(g.d, &g.d->seen, &again, buf, n) != P2P_EEXIST) abort();
            }
        }
        now.ns += step_ms[(mode >> 2) & 7] * 1000000ull;
        if (mode & 0x80) back += 3600;
        now.unix_s = T0 + (now.ns - 1000000000ull) / 1000000000ull - back;
        p2p_disc_tick(core, now);
        check_bounds(core);
    }
    if (atomic_load(&g.d->ctr.rx_datagrams) != datagrams ||
        rejected(g.d) - late_dups + queued != datagrams)
        abort();
    p2p_disc_free(core);
    g.d->core = NULL;
    p2p_memdb_free(db);
    db = NULL;
    return 0;
}
