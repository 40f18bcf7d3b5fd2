/*
 * tests/actors/test_discovery.c: the discovery service end to end on
 * loopback: 50 instances bootstrap from one bootnode and fill their tables
 * (the time to converge is printed), lookups through the API, the candidate
 * stream, our signed ENR and the introspection snapshot, and a re-signed
 * record with a higher seq when the endpoint other nodes report changes.
 * Closing with callers: threads that keep calling lookup while discovery
 * closes get P2P_ECLOSED at once (not at their deadline), and d stays
 * valid until they are joined and it is stopped (devp2pd's resolver).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/actors/disc_nodes.h"
#include "wire/enr.h"

#define NNODES 50
#define WANT 16
#define CONVERGE_MS 60000

static _Atomic unsigned candidates;

static void on_candidate(void *ctx, const p2p_node_t *n)
{
    (void)ctx;
    (void)n;
    atomic_fetch_add_explicit(&candidates, 1, memory_order_relaxed);
}

typedef struct caller {
    p2p_discovery_t *d;
    uint8_t target[64]; /* (tu_rand is not for threads: set by main) */
    unsigned calls;
    int last;
    _Atomic uint64_t done_ns;
} caller_t;

static void *caller_run(void *arg)
{
    caller_t *c = arg;
    for (c->calls = 0; c->calls < 100000; c->calls++) {
        p2p_node_t res[P2P_DISC_RESULT];
        unsigned n = 0;
        c->last = p2p_discovery_lookup(c->d, res, &n, P2P_DISC_RESULT, c->target,
                                       p2p_now_ns() + 30 * P2P_NS_PER_S);
        if (c->last == P2P_ECLOSED) break;
    }
    atomic_store(&c->done_ns, p2p_now_ns());
    return NULL;
}

static void test_close_with_callers(void)
{
    /* a bootnode that never answers (a bound socket nobody reads): the
     * lookups wait for their request timeouts, so some are in flight */
    int deaf = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(deaf >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof sa;
    CHECK(bind(deaf, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(deaf, (struct sockaddr *)&sa, &sl) == 0);
    dn_node_t ghost, x;
    dn_key(ghost.priv);
    memset(&ghost.self, 0, sizeof ghost.self);
    CHECK_OK(p2p_secp_pubkey(ghost.self.pubkey, ghost.priv));
    p2p_node_id(ghost.self.id, ghost.self.pubkey);
    ghost.self.ep.ip = p2p_ip4(127, 0, 0, 1);
    ghost.self.ep.udp = ntohs(sa.sin_port);
    CHECK_OK(dn_start(&x, &ghost.self, 1, NULL, NULL));
    if (!x.d) return;
    enum { NC = 3 };
    static caller_t cs[NC];
    pthread_t th[NC];
    for (int i = 0; i < NC; i++) {
        cs[i] = (caller_t){.d = x.d};
        tu_rand_bytes(cs[i].target, sizeof cs[i].target);
        CHECK(pthread_create(&th[i], NULL, caller_run, &cs[i]) == 0);
    }
    dn_sleep_ms(300);
    uint64_t t0 = p2p_now_ns();
    p2p_discovery_close(x.d);
    uint64_t worst = 0;
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        uint64_t done = atomic_load(&cs[i].done_ns);
        if (done > t0 && done - t0 > worst) worst = done - t0;
        CHECK(cs[i].last == P2P_ECLOSED);
    }
    /* calls on the closed service still answer, at once */
    p2p_node_t res[P2P_DISC_RESULT];
    unsigned n = 0;
    CHECK_ERR(p2p_discovery_lookup(x.d, res, &n, P2P_DISC_RESULT, ghost.self.pubkey,
                                   p2p_now_ns() + 30 * P2P_NS_PER_S),
              P2P_ECLOSED);
    p2p_discovery_info_t *in = malloc(sizeof *in);
    CHECK(in != NULL);
    if (in) CHECK_ERR(p2p_discovery_info(x.d, in, p2p_now_ns() + P2P_NS_PER_S), P2P_ECLOSED);
    free(in);
    p2p_discovery_close(x.d); /* idempotent */
    p2p_discovery_stop(x.d);
    close(deaf);
    printf("close with %d callers in lookups: all returned P2P_ECLOSED within %.1f ms "
           "(calls made: %u, %u, %u)\n",
           NC, (double)worst / 1e6, cs[0].calls, cs[1].calls, cs[2].calls);
    CHECK(worst < 2 * P2P_NS_PER_S);
}

static void check_record(const p2p_discovery_info_t *in, const dn_node_t *n)
{
    uint8_t buf[P2P_ENR_MAX_SIZE];
    size_t len;
    CHECK_OK(p2p_enr_encode(buf, sizeof buf, &len, &in->record));
    p2p_enr_t r;
    CHECK_OK(p2p_enr_decode(&r, buf, len));
    p2p_node_t rn;
    CHECK_OK(p2p_enr_to_node(&rn, &r));
    CHECK_MEM(rn.id, n->self.id, 32);
    CHECK(rn.ep.udp == p2p_discovery_port(n->d));
    CHECK(p2p_ip_equal(&rn.ep.ip, &in->self.ep.ip));
    CHECK(r.seq == in->self.seq && r.seq > 0);
}

int main(void)
{
    tu_seed(0xd15c0);
    static dn_node_t boot, nodes[NNODES];
    CHECK_OK(dn_start(&boot, NULL, 0, NULL, NULL));
    if (!boot.d) return tu_done("discovery");
    CHECK(p2p_discovery_port(boot.d) != 0);
    CHECK(boot.self.ep.udp == p2p_discovery_port(boot.d));

    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    base.on_candidate = on_candidate;
    base.tcp_port = 30303;
    uint64_t t0 = p2p_now_ns();
    for (int i = 0; i < NNODES; i++) {
        dn_key(nodes[i].priv);
        memcpy(base.priv, nodes[i].priv, 32);
        CHECK_OK(dn_start(&nodes[i], &boot.self, 1, NULL, &base));
        if (!nodes[i].d) return tu_done("discovery");
    }

    /* Converge: every node holds >= WANT live entries. */
    uint64_t deadline = dn_deadline_ms(CONVERGE_MS);
    int done = 0, minlen = 0;
    while (p2p_now_ns() < deadline) {
        done = 0;
        minlen = 1 << 30;
        for (int i = 0; i < NNODES; i++) {
            int len = dn_table_len(&nodes[i]);
            if (len >= WANT) done++;
            if (len < minlen) minlen = len;
        }
        if (done == NNODES) break;
        dn_sleep_ms(200);
    }
    double secs = (double)(p2p_now_ns() - t0) / 1e9;
    printf("converged: %d/%d nodes with >= %d entries in %.2f s (smallest table %d)\n", done,
           NNODES, WANT, secs, minlen);
    CHECK(done == NNODES);

    /* Introspection: counters, buckets, record (after the first refresh:
     * a self lookup and three random lookups). */
    p2p_discovery_info_t *in = NULL;
    deadline = dn_deadline_ms(30000);
    while (p2p_now_ns() < deadline) {
        in = dn_info(&nodes[0]);
        if (!in || in->init_done) break;
        free(in);
        in = NULL;
        dn_sleep_ms(100);
    }
    CHECK(in != NULL);
    if (in) {
        CHECK(in->init_done);
        CHECK(in->core.rx_ping > 0 && in->core.rx_pong > 0 && in->core.rx_neighbors > 0);
        CHECK(in->shell.rx_verified > 0 && in->shell.tx_packets > 0);
        CHECK(in->shell.rx_bad_sig == 0 && in->shell.rx_queue_full == 0);
        unsigned sum = 0;
        for (unsigned b = 0; b < P2P_KAD_NBUCKETS; b++) sum += in->buckets[b].n;
        CHECK(sum == in->table_len);
        CHECK(dn_info_has(in, boot.self.id));
        check_record(in, &nodes[0]);
        CHECK(in->self.ep.tcp == 30303);
        char txt[8192];
        size_t need = p2p_discovery_counters_format(in, txt, sizeof txt);
        CHECK(need < sizeof txt && strstr(txt, "rx_verified ") && strstr(txt, "rx_ping "));
        free(in);
    }
    CHECK(atomic_load(&candidates) > 0);

    /* A lookup for a node's own key finds that node. */
    p2p_node_t res[P2P_DISC_RESULT];
    unsigned nres = 0;
    CHECK_OK(p2p_discovery_lookup(nodes[3].d, res, &nres, P2P_DISC_RESULT, nodes[17].self.pubkey,
                                  dn_deadline_ms(20000)));
    CHECK(nres > 0);
    if (nres) CHECK_MEM(res[0].id, nodes[17].self.id, 32);
    /* Turning candidates off and on is accepted; add_node adds as seen. */
    CHECK_OK(p2p_discovery_want_candidates(nodes[1].d, false));
    CHECK_OK(p2p_discovery_want_candidates(nodes[1].d, true));

    /* A calls with a deadline in the past times out or answers at once. */
    p2p_discovery_info_t *tmp = malloc(sizeof *tmp);
    int rc = p2p_discovery_info(nodes[2].d, tmp, p2p_now_ns());
    CHECK(rc == 0 || rc == P2P_ETIMEDOUT);
    free(tmp);

    for (int i = 0; i < NNODES; i++) p2p_discovery_stop(nodes[i].d);

    /* Endpoint prediction: a node announcing 127.0.0.9 learns 127.0.0.1
     * from the pongs of its bootnodes and re-signs with a higher seq (one
     * vote: all of them are on one /24). */
    dn_node_t a, b, c;
    CHECK_OK(dn_start(&a, &boot.self, 1, NULL, NULL));
    CHECK_OK(dn_start(&b, &boot.self, 1, NULL, NULL));
    memset(&base, 0, sizeof base);
    dn_key(c.priv);
    memcpy(base.priv, c.priv, 32);
    base.announce_ip = p2p_ip4(127, 0, 0, 9);
    base.predict_endpoint = true;
    base.endpoint_votes = 1;
    p2p_node_t boots[3] = {boot.self, a.self, b.self};
    CHECK_OK(dn_start(&c, boots, 3, NULL, &base));
    uint64_t seq0 = c.self.seq;
    CHECK(p2p_ip_equal(&c.self.ep.ip, &base.announce_ip));
    deadline = dn_deadline_ms(20000);
    bool changed = false;
    while (!changed && p2p_now_ns() < deadline) {
        in = dn_info(&c);
        if (in && in->shell.endpoint_changes > 0) {
            changed = true;
            p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
            CHECK(p2p_ip_equal(&in->self.ep.ip, &lo));
            CHECK(in->record.seq == seq0 + 1);
            check_record(in, &c);
        }
        free(in);
        dn_sleep_ms(100);
    }
    CHECK(changed);
    p2p_discovery_stop(c.d);
    p2p_discovery_stop(b.d);
    p2p_discovery_stop(a.d);
    p2p_discovery_stop(boot.d);
    test_close_with_callers();
    return tu_done("discovery");
}
