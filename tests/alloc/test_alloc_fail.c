/*
 * tests/alloc/test_alloc_fail.c: allocation failures on the library's
 * error paths.  Each case runs one operation whose allocations are finite
 * with the n-th allocation failing (af.h), for n = 1, 2, ... until a run
 * no longer reaches the n-th allocation (bounded by AF_MAX_N), and checks
 * what must hold for every n: a clean error code or a success that works
 * (never a crash, an abort or a hang), nothing left behind (LeakSanitizer
 * at exit; threads, descriptors and live mailboxes counted here, since a
 * mailbox stays linked in the debugger registry), and that the same
 * operation succeeds again without injection.  Threaded operations count
 * the n-th allocation of any thread after arming, so which call fails may
 * vary from run to run; the checks do not depend on it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "actors/datadir.h"
#include "actors/discovery.h"
#include "actors/nodedb.h"
#include "actors/server.h"
#include "actors/server_int.h"
#include "core/mailbox.h"
#include "core/timer.h"
#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"
#include "tests/alloc/af.h"
#include "tests/tools/admin_fixture.h"
#include "tools/admin_rpc.h"
#include "tools/metrics_http.h"

#define AF_MAX_N 400

static char tmproot[] = "/tmp/p2p-alloc-XXXXXX";

typedef struct baseline {
    int fds, threads;
    size_t mailboxes;
} baseline_t;

static baseline_t baseline(void)
{
    return (baseline_t){su_count_fds(), su_count_threads(), su_live_mailboxes()};
}

/* A connection's thread and mailboxes go a little after its peer has left
 * the server's peer list (and threads after their join in some runtimes):
 * waits up to 2 s.  Fewer threads than before is fine: a server's parked
 * connection thread exits after a second unused (and TSan's runtime starts
 * a thread of its own once, SU_EXTRA_THREADS). */
static void check_baseline(const char *name, long n, baseline_t b)
{
    baseline_t now = baseline();
    for (int i = 0; i < 400 && (now.fds != b.fds || now.threads > b.threads + SU_EXTRA_THREADS ||
                                now.mailboxes != b.mailboxes);
         i++) {
        usleep(5000);
        now = baseline();
    }
    if (now.fds != b.fds || now.threads > b.threads + SU_EXTRA_THREADS ||
        now.mailboxes != b.mailboxes) {
        char what[160];
        snprintf(what, sizeof what, "%s n=%ld: fds %d->%d threads %d->%d mailboxes %zu->%zu", name,
                 n, b.fds, now.fds, b.threads, now.threads, b.mailboxes, now.mailboxes);
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
}

/* A case runs its operation with allocation n failing (0: none) and
 * returns the operation's result; it cleans up whatever it created. */
typedef int (*af_case_fn)(long n);

static void drive(const char *name, af_case_fn fn)
{
    baseline_t b = baseline();
    long n;
    for (n = 1; n <= AF_MAX_N; n++) {
        int rc = fn(n);
        bool fired = af_disarm();
        check_baseline(name, n, b);
        if (!fired) {
            if (rc) {
                char what[160];
                snprintf(what, sizeof what, "%s n=%ld: no injection, rc %d (%s)", name, n, rc,
                         p2p_errname(rc));
                tu_fail(__FILE__, __LINE__, what);
            }
            tu_checks++;
            break;
        }
        int again = fn(0);
        af_disarm();
        if (again) {
            char what[160];
            snprintf(what, sizeof what, "%s n=%ld: retry without injection rc %d (%s)", name, n,
                     again, p2p_errname(again));
            tu_fail(__FILE__, __LINE__, what);
        }
        tu_checks++;
        check_baseline(name, n, b);
    }
    CHECK(n <= AF_MAX_N);
    fprintf(stderr, "%-24s %ld allocation points\n", name, n - 1);
}

/* Checks an injected failure's result: a success, or one of the codes the
 * operation documents. */
static void check_rc(const char *name, long n, int rc, bool ok_if_zero)
{
    bool fired = af_fired();
    tu_checks++;
    if (rc == 0 && fired && !ok_if_zero) {
        char what[160];
        snprintf(what, sizeof what, "%s n=%ld: success after a failed allocation", name, n);
        tu_fail(__FILE__, __LINE__, what);
    }
}

/* A failure with a caller's message buffer must fill it: devp2pd prints
 * msg as its start-up error.  Out of memory once left it empty (or ending
 * in "discovery: "): datadir n = 1..5, nodedb open n = 1, discovery start
 * n = 1, 2 and 11..20, admin n = 1..9, metrics n = 1. */
static void check_msg(const char *name, long n, int rc, const char *msg)
{
    tu_checks++;
    size_t len = strlen(msg);
    if (rc && (len == 0 || msg[len - 1] == ' ' || msg[len - 1] == ':')) {
        char what[160];
        snprintf(what, sizeof what, "%s n=%ld: %s without a message", name, n, p2p_errname(rc));
        tu_fail(__FILE__, __LINE__, what);
    }
}

/* ---- core ---- */

static int case_mailbox(long n)
{
    p2p_mailbox_t *mb = (p2p_mailbox_t *)1;
    af_arm(n);
    int rc = p2p_mailbox_create(&mb, "af", 16, 8, NULL);
    check_rc("mailbox", n, rc, false);
    if (rc) {
        CHECK_ERR(rc, P2P_ENOMEM);
        return rc;
    }
    (void)af_disarm();
    uint8_t m[16] = {1}, o[16];
    CHECK_OK(p2p_mailbox_try_push(mb, m, sizeof m));
    CHECK_OK(p2p_mailbox_try_pop(mb, o, sizeof o));
    p2p_mailbox_destroy(mb);
    return 0;
}

static int case_timers(long n)
{
    p2p_timers_t h;
    af_arm(n);
    int rc = p2p_timers_init(&h, 64);
    check_rc("timers", n, rc, false);
    if (rc) {
        CHECK_ERR(rc, P2P_ENOMEM);
        return rc;
    }
    p2p_timers_free(&h);
    return 0;
}

/* ---- datadir and node DB ---- */

static int case_datadir(long n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/dd/a/b", tmproot);
    p2p_datadir_t dd;
    char msg[256] = "";
    af_arm(n);
    int rc = p2p_datadir_open(&dd, msg, sizeof msg, path);
    uint8_t priv[32];
    int created = 0;
    if (!rc) {
        rc = p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd);
        p2p_datadir_close(&dd);
    }
    check_rc("datadir", n, rc, false);
    check_msg("datadir", n, rc, msg);
    /* start over: the tree and its key are made again */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s/dd", tmproot);
    af_exempt(true);
    CHECK(system(cmd) == 0);
    af_exempt(false);
    return rc;
}

static int case_nodedb(long n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/ndb", tmproot);
    (void)mkdir(path, 0700);
    p2p_nodedb_t *db = NULL;
    char msg[256] = "";
    af_arm(n);
    int rc = p2p_nodedb_open(&db, msg, sizeof msg, path, 0);
    check_msg("nodedb open", n, rc, msg);
    if (!rc) {
        p2p_node_t nd = {0}, got;
        for (int i = 0; i < 32; i++) nd.id[i] = (uint8_t)(i + 1);
        nd.ep.ip = p2p_ip4(127, 0, 0, 2);
        nd.ep.udp = nd.ep.tcp = 30303;
        uint8_t enr[512];
        size_t enrlen = sizeof enr;
        uint64_t now = (uint64_t)time(NULL);
        rc = p2p_nodedb_put_node(db, &nd, NULL, 0);
        if (!rc) rc = p2p_nodedb_get_node(db, &got, enr, &enrlen, nd.id);
        if (!rc) rc = p2p_nodedb_set_last_pong(db, nd.id, &nd.ep.ip, now);
        p2p_node_t seeds[4];
        size_t ns = 0;
        if (!rc) rc = p2p_nodedb_query_seeds(db, seeds, &ns, 4, 3600, now);
        size_t deleted = 0;
        if (!rc) rc = p2p_nodedb_expire(db, &deleted, now);
        p2p_nodedb_close(db);
    }
    check_rc("nodedb", n, rc, false);
    return rc;
}

/* ---- discovery ---- */

static int case_discovery(long n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/disc", tmproot);
    (void)mkdir(path, 0700);
    p2p_discovery_config_t cfg = {0};
    su_key(cfg.priv);
    cfg.listen_ip = p2p_ip4(127, 0, 0, 2);
    cfg.datadir = path;
    p2p_discovery_t *d = NULL;
    char msg[256] = "";
    af_arm(n);
    int rc = p2p_discovery_start(&d, msg, sizeof msg, &cfg);
    check_msg("discovery start", n, rc, msg);
    if (!rc) {
        p2p_discovery_info_t *info = malloc(sizeof *info);
        rc = info ? p2p_discovery_info(d, info, p2p_now_ns() + 5000 * P2P_NS_PER_MS) : P2P_ENOMEM;
        if (!rc) CHECK(info->self.ep.udp == p2p_discovery_port(d));
        free(info);
        p2p_discovery_stop(d);
    }
    check_rc("discovery", n, rc, false);
    if (rc) CHECK(rc != P2P_ETIMEDOUT);
    return rc;
}

/* ---- server ---- */

static int echo_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                    size_t len)
{
    if (code != 0) return P2P_EPROTO;
    return p2p_peer_send(peer, "echo", 1, data, len);
}

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, echo_msg, NULL};
static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

/* Outcome of one client against a server. */
enum { PEER_ECHOED = 0, PEER_REFUSED = 1, PEER_HUNG = 2 };

/* Dials the server, completes the handshakes and has one message echoed.
 * Returns PEER_ECHOED, PEER_REFUSED (closed, or a Disconnect, at any
 * step) or PEER_HUNG (no answer in 5 s). */
static int client_run(p2p_server_t *s)
{
    af_exempt(true);
    p2p_node_t self = su_node(s);
    rawpeer_t rp;
    uint8_t k[32];
    su_key(k);
    int out = PEER_REFUSED;
    if (rp_connect(&rp, self.ep.tcp) || rp_handshake(&rp, k, self.pubkey, 5000)) goto done;
    if (rp_send_hello(&rp, rp.pub, cap_echo, ver1, 1)) goto done;
    uint64_t end = p2p_now_ns() + 5000 * P2P_NS_PER_MS;
    bool sent = false;
    for (;;) {
        if (p2p_now_ns() >= end) {
            out = PEER_HUNG;
            break;
        }
        uint64_t code;
        const uint8_t *p;
        size_t len;
        int rc = rp_recv(&rp, &code, &p, &len, 50);
        if (rc == -2) continue;
        if (rc) break;
        if (code == P2P_MSG_DISC) break;
        if (code == P2P_MSG_HELLO && !rp.codec.snappy) {
            p2p_rlpx_codec_set_snappy(&rp.codec, true);
            static const uint8_t ping[] = {0xc2, 0x01, 0x02};
            if (rp_send(&rp, 0x10, ping, sizeof ping)) break;
            sent = true;
        } else if (code == P2P_MSG_PING) {
            if (rp_send(&rp, P2P_MSG_PONG, p2p_ping_payload, 1)) break;
        } else if (code == 0x11 && sent) {
            out = PEER_ECHOED;
            break;
        }
    }
done:
    rp_close(&rp);
    af_exempt(false);
    return out;
}

/* A node with a fresh key on 127.0.0.2 port 9 (nothing listens there). */
static void fresh_node(p2p_node_t *n)
{
    memset(n, 0, sizeof *n);
    uint8_t k[32];
    su_key(k);
    CHECK_OK(p2p_secp_pubkey(n->pubkey, k));
    p2p_node_id(n->id, n->pubkey);
    n->ep.ip = p2p_ip4(127, 0, 0, 2);
    n->ep.tcp = n->ep.udp = 9;
}

/* Start with a static and a trusted node: p2p-run, p2p-dial and
 * p2p-listen each have state to allocate.  A failure is the start's to
 * report: the threads allocated it themselves once, after
 * p2p_server_start had returned, and aborted the process when it failed
 * (check_start_settled pins that). */
static void start_config(p2p_server_config_t *cfg, p2p_node_t nodes[2])
{
    su_config(cfg, &proto_echo, 1);
    /* a static node on a port nothing listens on (no_dial: never dialled) */
    for (int i = 0; i < 2; i++) fresh_node(&nodes[i]);
    cfg->static_nodes = &nodes[0];
    cfg->nstatic = 1;
    cfg->trusted_nodes = &nodes[1];
    cfg->ntrusted = 1;
    cfg->no_dial = true;
}

/* Once p2p_server_start returned, an idle server allocates nothing: the
 * first allocation after it (the old tree's run loop or listener set-up,
 * which aborted) cannot fail behind the caller's back. */
static void check_start_settled(void)
{
    baseline_t b = baseline();
    p2p_server_config_t cfg;
    p2p_node_t nodes[2];
    start_config(&cfg, nodes);
    p2p_server_t *s = NULL;
    af_arm(1000000);
    CHECK_OK(p2p_server_start(&s, &cfg));
    long at_return = af_calls();
    usleep(200 * 1000);
    long later = af_calls();
    (void)af_disarm();
    CHECK(later == at_return);
    if (later != at_return) fprintf(stderr, "allocations after start: %ld\n", later - at_return);
    p2p_server_stop(s);

    /* the first allocation after the start's fails: the server still works */
    start_config(&cfg, nodes);
    af_arm(at_return + 1);
    CHECK_OK(p2p_server_start(&s, &cfg));
    usleep(200 * 1000);
    (void)af_disarm();
    CHECK(client_run(s) == PEER_ECHOED);
    p2p_server_stop(s);
    check_baseline("server_start_settled", at_return + 1, b);
}

static int case_server_start(long n)
{
    p2p_server_config_t cfg;
    p2p_node_t nodes[2];
    start_config(&cfg, nodes);
    p2p_server_t *s = NULL;
    af_arm(n);
    int rc = p2p_server_start(&s, &cfg);
    check_rc("server_start", n, rc, false);
    if (rc) {
        CHECK(rc != P2P_ETIMEDOUT);
        return rc;
    }
    bool fired = af_disarm();
    int out = client_run(s);
    /* a start whose failure went unnoticed must still serve peers */
    if (out != PEER_ECHOED) {
        char what[160];
        snprintf(what, sizeof what, "server_start n=%ld: started (failure %s), client %d", n,
                 fired ? "injected" : "none", out);
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    p2p_server_stop(s);
    return 0;
}

/* Every connection that ends without becoming a peer, or a peer that is
 * dropped, is counted somewhere in the server's stats. */
static uint64_t conn_failures(p2p_server_t *s)
{
    static p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    uint64_t n = st.dial_connect_failed + st.handshake_timeouts + st.handshake_failed +
                 st.hello_failed + st.conn_threads_failed + st.net_errors + st.proto_errors +
                 st.frame_errors + st.send_unsent;
    for (int i = 0; i < 256; i++) n += st.rejected[i] + st.disc_recv[i] + st.disc_sent[i];
    return n;
}

/* One inbound peer with the failure injected on the server's side of the
 * connection (the test thread, the client, is exempt). */
static p2p_server_t *peer_srv;

static int case_server_peer(long n)
{
    uint64_t failures = conn_failures(peer_srv);
    af_arm(n);
    int out = client_run(peer_srv);
    bool fired = af_disarm();
    /* a refused connection is counted (the client may see the close
     * before the server counts it): one whose I/O state could not be
     * allocated (n = 8 here) was closed without a counter */
    for (int i = 0; i < 1000 && out != PEER_ECHOED && conn_failures(peer_srv) == failures; i++)
        usleep(2000);
    if (out != PEER_ECHOED && conn_failures(peer_srv) == failures) {
        char what[160];
        snprintf(what, sizeof what, "server_peer n=%ld: connection refused, no counter", n);
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    if (out == PEER_HUNG || (out != PEER_ECHOED && !fired)) {
        char what[160];
        snprintf(what, sizeof what, "server_peer n=%ld: client %d (failure %s)", n, out,
                 fired ? "injected" : "none");
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    /* the peer goes away: wait for the server to forget it */
    CHECK(su_wait_peers(peer_srv, 0, 5000));
    return out == PEER_ECHOED ? 0 : P2P_ENOMEM;
}

/* An admitted peer exchanges messages of growing sizes (the server's read,
 * decompression and write buffers grow, each echo is queued in a copy) with
 * the failure injected once the peer is in: every message is echoed, or
 * the peer is disconnected; never a hang or a message echoed wrong. */
static int case_server_msgs(long n)
{
    af_exempt(true);
    p2p_node_t self = su_node(peer_srv);
    rawpeer_t rp;
    uint8_t k[32];
    su_key(k);
    int out = PEER_REFUSED;
    bool in = false;
    uint64_t failures = 0;
    static uint8_t msg[300000], want[300000];
    static const size_t sizes[] = {16, 3000, 40000, 300000, 20};
    if (rp_connect(&rp, self.ep.tcp) || rp_handshake(&rp, k, self.pubkey, 5000)) goto done;
    if (rp_send_hello(&rp, rp.pub, cap_echo, ver1, 1)) goto done;
    uint64_t code;
    const uint8_t *p;
    size_t len;
    /* their Hello, then wait for the admission */
    if (rp_recv(&rp, &code, &p, &len, 5000) || code != P2P_MSG_HELLO) goto done;
    p2p_rlpx_codec_set_snappy(&rp.codec, true);
    if (!su_wait_peers(peer_srv, 1, 5000)) goto done;
    in = true;
    failures = conn_failures(peer_srv);
    af_exempt(false);
    af_arm(n);
    af_exempt(true);
    out = PEER_ECHOED;
    for (size_t m = 0; m < sizeof sizes / sizeof sizes[0] && out == PEER_ECHOED; m++) {
        size_t sz = sizes[m];
        /* compressible bytes (the echo protocol does not decode them) */
        for (size_t i = 0; i < sz; i++) msg[i] = (uint8_t)((i / 64) ^ m);
        memcpy(want, msg, sz);
        if (rp_send(&rp, 0x10, msg, sz)) {
            out = PEER_REFUSED;
            break;
        }
        uint64_t end = p2p_now_ns() + 5000 * P2P_NS_PER_MS;
        for (;;) {
            if (p2p_now_ns() >= end) {
                out = PEER_HUNG;
                break;
            }
            int rc = rp_recv(&rp, &code, &p, &len, 50);
            if (rc == -2) continue;
            if (rc || code == P2P_MSG_DISC) {
                out = PEER_REFUSED;
                break;
            }
            if (code == P2P_MSG_PING) {
                if (rp_send(&rp, P2P_MSG_PONG, p2p_ping_payload, 1)) out = PEER_REFUSED;
                if (out != PEER_ECHOED) break;
                continue;
            }
            CHECK(code == 0x11 && len == sz && memcmp(p, want, sz) == 0);
            break;
        }
    }
done:
    rp_close(&rp);
    af_exempt(false);
    bool fired = af_disarm();
    if (!in || out == PEER_HUNG || (out != PEER_ECHOED && !fired)) {
        char what[160];
        snprintf(what, sizeof what, "server_msgs n=%ld: in %d, client %d (failure %s)", n, in, out,
                 fired ? "injected" : "none");
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    /* a peer dropped for a failed allocation is counted: one whose echo
     * could not be framed (the write buffer did not grow) lost the
     * message without a counter */
    for (int i = 0; i < 1000 && in && out != PEER_ECHOED && conn_failures(peer_srv) == failures;
         i++)
        usleep(2000);
    if (in && out != PEER_ECHOED && conn_failures(peer_srv) == failures) {
        char what[160];
        snprintf(what, sizeof what, "server_msgs n=%ld: peer dropped, no counter", n);
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    CHECK(su_wait_peers(peer_srv, 0, 5000));
    return out == PEER_ECHOED ? 0 : P2P_ENOMEM;
}

/* An outbound peer: a dialling server (no listener) is given peer_srv as a
 * static node (p2p_server_add_peer) with the failure injected in either
 * server.  The dial ends in a peer or in a counted failure, never in
 * nothing: the dialer once dropped an accepted static node when the
 * scheduler could not allocate room for it (n = 1 and 2 here). */
static int case_server_dial(long n)
{
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    cfg.listen_port = -1;
    p2p_server_t *d = NULL;
    CHECK_OK(p2p_server_start(&d, &cfg));
    if (!d) return P2P_EINVAL;
    p2p_node_t target = su_node(peer_srv);
    static p2p_server_stats_t st;
    uint64_t failures = conn_failures(d);
    af_arm(n);
    int rc = p2p_server_add_peer(d, &target);
    bool added = false, failed = false;
    for (int i = 0; i < 1000 && !rc && !added && !failed; i++) {
        p2p_server_get_stats(d, &st);
        added = st.peers_added > 0;
        failed = conn_failures(d) != failures;
        if (!added && !failed) usleep(5000);
    }
    bool fired = af_disarm();
    if (rc) CHECK_ERR(rc, P2P_ENOMEM);
    if ((!rc && !added && !failed) || (!fired && !added)) {
        char what[160];
        snprintf(what, sizeof what, "server_dial n=%ld: rc %d added %d failed %d (failure %s)", n,
                 rc, added, failed, fired ? "injected" : "none");
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    if (added && !fired) CHECK(su_wait_peers(peer_srv, 1, 5000));
    p2p_server_stop(d);
    CHECK(su_wait_peers(peer_srv, 0, 5000));
    return added ? 0 : P2P_ENOMEM;
}

/* Trusted nodes added at run time (p2p_server_add_trusted) with the
 * failure injected, to a server started with sixteen: the set (32 slots,
 * grown before it would be more than half full) must grow for the 17th.
 *   server_trusted         the call fails, or the node lands in the set
 *                          (the run loop once dropped an accepted node
 *                          when the set could not grow: n = 1..3 here,
 *                          with only internal_push_failures counted);
 *   server_trusted_cancel  an addition removed right after stays removed
 *                          however often it is retried. */
static uint64_t trusted_nodes(p2p_server_t *s)
{
    static p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    return st.trusted_nodes;
}

static p2p_server_t *start_trusted16(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    cfg.listen_port = -1;
    cfg.no_dial = true;
    static p2p_node_t pre[16];
    for (int i = 0; i < 16; i++) fresh_node(&pre[i]);
    cfg.trusted_nodes = pre;
    cfg.ntrusted = 16;
    p2p_server_t *d = NULL;
    CHECK_OK(p2p_server_start(&d, &cfg));
    if (!d) return NULL;
    /* the run loop publishes the set's size once it runs */
    for (int i = 0; i < 1000 && trusted_nodes(d) != 16; i++) usleep(2000);
    CHECK(trusted_nodes(d) == 16);
    return d;
}

static int case_server_trusted(long n)
{
    p2p_server_t *d = start_trusted16();
    if (!d) return P2P_EINVAL;
    uint8_t id[32];
    memset(id, 0x5a, sizeof id);
    af_arm(n);
    int rc = p2p_server_add_trusted(d, id);
    for (int i = 0; i < 1000 && !rc && trusted_nodes(d) == 16; i++) usleep(5000);
    bool fired = af_disarm();
    if (rc) CHECK_ERR(rc, P2P_ENOMEM);
    if (!rc && trusted_nodes(d) != 17) {
        char what[160];
        snprintf(what, sizeof what, "server_trusted n=%ld: added, not in the set (failure %s)", n,
                 fired ? "injected" : "none");
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    p2p_server_stop(d);
    return rc;
}

static int case_server_trusted_cancel(long n)
{
    p2p_server_t *d = start_trusted16();
    if (!d) return P2P_EINVAL;
    uint8_t id[32];
    memset(id, 0xa5, sizeof id);
    af_arm(n);
    int rc = p2p_server_add_trusted(d, id);
    if (!rc) CHECK_OK(p2p_server_remove_trusted(d, id));
    if (rc) CHECK_ERR(rc, P2P_ENOMEM);
    /* past three retries of an addition the removal did not cancel */
    usleep(4 * P2P__RETRY_NS / 1000);
    (void)af_disarm();
    CHECK(trusted_nodes(d) == 16);
    p2p_server_stop(d);
    return rc;
}

/* ---- devp2pd's endpoints ---- */

/* Sends req to a connected socket and reads until the peer closes or
 * until stop (a substring) is seen (5 s at most).  Returns what was read
 * (NUL-terminated) in buf, or -1 on a timeout. */
static int exchange(int fd, const char *req, const char *stop, char *buf, size_t cap)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = strlen(req), n = 0;
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) return 0;
    buf[0] = 0;
    uint64_t end = p2p_now_ns() + 5000 * P2P_NS_PER_MS;
    while (p2p_now_ns() < end) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r == 0) return 0;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return 0;
        }
        n += (size_t)r;
        buf[n] = 0;
        if (strstr(buf, stop) || n == cap - 1) return 0;
    }
    return -1;
}

static int case_admin(long n)
{
    char ipc[160];
    snprintf(ipc, sizeof ipc, "%s/admin.ipc", tmproot);
    node_endpoint_stats_t eps = {0};
    admin_rpc_config_t ac = admin_fixture_config(ipc, "alloc-test", &eps);
    char msg[256] = "";
    admin_rpc_t *rpc = NULL;
    af_arm(n);
    int rc = admin_rpc_start(&rpc, msg, sizeof msg, &ac);
    if (rc) {
        check_rc("admin", n, rc, false);
        check_msg("admin", n, rc, msg);
        return rc;
    }
    /* one request served with the failure still armed: an answer, or the
     * connection closed */
    af_exempt(true);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, ipc, strlen(ipc) + 1);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    static char buf[65536];
    int hung = exchange(fd, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_nodeInfo\"}\n", "\n",
                        buf, sizeof buf);
    close(fd);
    af_exempt(false);
    bool fired = af_disarm();
    bool answered = strstr(buf, "\"id\":7") && strstr(buf, "alloc-test");
    if (hung || (!answered && !fired)) {
        char what[160];
        snprintf(what, sizeof what, "admin n=%ld: hung %d answered %d (failure %s)", n, hung,
                 answered, fired ? "injected" : "none");
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    admin_rpc_stop(rpc);
    return answered ? 0 : P2P_ENOMEM;
}

static int case_metrics(long n)
{
    node_endpoint_stats_t eps = {0};
    metrics_http_config_t mc = {.ip = p2p_ip4(127, 0, 0, 1), .endpoints = &eps};
    char msg[256] = "";
    metrics_http_t *mh = NULL;
    af_arm(n);
    int rc = metrics_http_start(&mh, msg, sizeof msg, &mc);
    if (rc) {
        check_rc("metrics", n, rc, false);
        check_msg("metrics", n, rc, msg);
        return rc;
    }
    af_exempt(true);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(metrics_http_port(mh))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    static char buf[1 << 20];
    int hung = exchange(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "\x01", buf, sizeof buf);
    close(fd);
    af_exempt(false);
    bool fired = af_disarm();
    bool answered = strncmp(buf, "HTTP/1.1 200", 12) == 0;
    if (hung || (!answered && !fired)) {
        char what[160];
        snprintf(what, sizeof what, "metrics n=%ld: hung %d answered %d (failure %s)", n, hung,
                 answered, fired ? "injected" : "none");
        tu_fail(__FILE__, __LINE__, what);
    }
    tu_checks++;
    metrics_http_stop(mh);
    return answered ? 0 : P2P_ENOMEM;
}

int main(void)
{
    CHECK(mkdtemp(tmproot) != NULL);

    drive("mailbox", case_mailbox);
    drive("timers", case_timers);
    drive("datadir", case_datadir);
    drive("nodedb", case_nodedb);
    drive("discovery", case_discovery);
    check_start_settled();
    drive("server_start", case_server_start);
    drive("admin", case_admin);
    drive("metrics", case_metrics);

    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    CHECK_OK(p2p_server_start(&peer_srv, &cfg));
    /* the server's threads have set up when a first client is served */
    CHECK(client_run(peer_srv) == PEER_ECHOED);
    CHECK(su_wait_peers(peer_srv, 0, 5000));
    drive("server_peer", case_server_peer);
    drive("server_msgs", case_server_msgs);
    drive("server_dial", case_server_dial);
    drive("server_trusted", case_server_trusted);
    drive("server_trusted_cancel", case_server_trusted_cancel);
    p2p_server_stop(peer_srv);

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmproot);
    CHECK(system(cmd) == 0);
    return tu_done("alloc_fail");
}
