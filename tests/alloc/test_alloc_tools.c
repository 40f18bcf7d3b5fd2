/*
 * tests/alloc/test_alloc_tools.c: allocation failures in devp2pd's local
 * endpoints and the tools' report writers (tests/alloc/af.h).  The
 * executable is linked with the same --wrap arguments as alloc_fail, and
 * jansson is given the wrapped malloc (json_set_alloc_funcs), so the JSON
 * values the admin socket and the reports build fail too.  Each case runs
 * one operation with the n-th allocation failing, for n = 1, 2, ... until
 * a run no longer reaches it (at most AF_MAX_N), and checks for every n:
 * a clean error (the admin socket: the complete result or a JSON-RPC error
 * with the request's id, never a partial result or a silence while the
 * connection stays open; the metrics endpoint: 200 with the metrics or a
 * 5xx; a constructor or writer: success or its documented code), no leak
 * (LeakSanitizer at exit, descriptors counted here), no hang, and success
 * (a complete result) again without injection.  The endpoints run on their
 * own threads: the test thread exempts itself while it plays the client.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"
#include "core/trace.h"
#include "tests/actors/srv_util.h"
#include "tests/alloc/af.h"
#include "tests/tools/admin_fixture.h"
#include "tests/tu.h"
#include "tools/admin_req.h"
#include "tools/admin_rpc.h"
#include "tools/cmds.h"
#include "tools/metrics_http.h"
#include "tools/node_metrics.h"
#include "tools/resolver.h"
#include "tools/stress.h"

#define AF_MAX_N 400

static char tmproot[] = "/tmp/p2p-alloc-tools-XXXXXX";

/* A case runs its operation with allocation n failing (0: none) and
 * returns 0 when it succeeded, else the error it reported (checked by the
 * case itself). */
typedef int (*af_case_fn)(long n);

static void fail_n(const char *name, long n, const char *why)
{
    char what[256];
    snprintf(what, sizeof what, "%s n=%ld: %s", name, n, why);
    tu_fail(__FILE__, __LINE__, what);
}

static void drive(const char *name, af_case_fn fn)
{
    int fds = su_count_fds();
    long n;
    for (n = 1; n <= AF_MAX_N; n++) {
        int rc = fn(n);
        bool fired = af_disarm();
        tu_checks++;
        if (!fired) {
            if (rc) fail_n(name, n, "failed without injection");
            break;
        }
        if (fn(0) != 0) fail_n(name, n, "failed again without injection");
        af_disarm();
        tu_checks++;
        for (int i = 0; i < 200 && su_count_fds() > fds; i++) usleep(5000);
        if (su_count_fds() > fds) fail_n(name, n, "descriptors left open");
    }
    CHECK(n <= AF_MAX_N);
    fprintf(stderr, "%-24s %ld allocation points\n", name, n - 1);
}

/* jansson's allocator here: the wrapped malloc, except for the growth of
 * the token jansson's lexer saves.  lex_save drops the error of that
 * growth (akheron/jansson#362) and the lexer then fails an assert: a
 * failure injected there would abort inside jansson whatever its caller
 * does.  Every other allocation of json_loadb is injected (jansson reports
 * those as json_error_out_of_memory).  The growth is told by the return
 * address in jansson that makes it (grow_site), learnt from a first decode
 * of a long number: the allocations of its token buffer (16 bytes at
 * first, then 32, 64) are its only ones. */
enum { FRAMES = 24 };
static void *grow_site;
static int learning; /* 1: recording the sites below */
static void *learnt[2][4];

static bool under(void *const *frames, int n, const char *fn)
{
    for (int i = 2; i < n; i++) {
        Dl_info di;
        if (dladdr(frames[i], &di) && di.dli_sname && strcmp(di.dli_sname, fn) == 0) return true;
    }
    return false;
}

static void *json_malloc(size_t n)
{
    void *frames[FRAMES];
    int nf = backtrace(frames, FRAMES);
    if (learning && (n == 16 || n == 32))
        for (int i = 1; i < 5 && i < nf; i++) learnt[n == 32][i - 1] = frames[i];
    bool growth = false;
    for (int i = 1; grow_site && i < 5 && i < nf && !growth; i++) growth = frames[i] == grow_site;
    if (!growth || !under(frames, nf, "json_loadb")) return malloc(n);
    bool was = af_exempt(true);
    void *p = malloc(n);
    af_exempt(was);
    return p;
}

/* the return address in the token's growth that its first allocation (in
 * strbuffer_init) does not pass */
static void learn_grow_site(void)
{
    static const char digits[] = "1111111111111111111111111111111111111111111111";
    learning = 1;
    json_error_t je;
    json_t *v = json_loadb(digits, strlen(digits), JSON_DECODE_ANY, &je);
    learning = 0;
    CHECK(v == NULL); /* too large an integer */
    for (int i = 0; i < 4 && !grow_site; i++) {
        bool shared = false;
        for (int k = 0; k < 4; k++) shared |= learnt[1][i] == learnt[0][k];
        if (!shared) grow_site = learnt[1][i];
    }
    CHECK(grow_site != NULL);
}

/* ---- the admin socket's request decoding ---- */

static int case_admin_decode(long n)
{
    static const char *const reqs[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"admin_nodeInfo\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"nope\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"admin_peers\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"admin_addPeer\",\"params\":[\"x\"]}",
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"debug_trace\",\"params\":[true]}",
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"admin_peers\",\"params\":{}}",
    };
    int result = 0;
    af_arm(n); /* counted across the requests: at most one fails */
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        af_exempt(true);
        json_t *req = json_loads(reqs[i], 0, NULL);
        af_exempt(false);
        CHECK(req != NULL);
        admin_rpc_req_t rq;
        json_t *reply = NULL;
        int rc = admin_rpc_decode(&rq, &reply, req, 0);
        af_exempt(true);
        tu_checks++;
        if (rc == 0) {
            if (reply || rq.method == ADMIN_RPC_NMETHODS) fail_n("admin_decode", n, "bad success");
        } else if (rc == P2P_EINVAL) {
            json_t *e = json_object_get(reply, "error");
            if (!json_is_integer(json_object_get(e, "code")) ||
                !json_string_length(json_object_get(e, "message")))
                fail_n("admin_decode", n, "EINVAL without a complete error");
        } else if (rc == P2P_ENOMEM) {
            if (reply) fail_n("admin_decode", n, "ENOMEM with a reply");
            result = rc;
        } else {
            fail_n("admin_decode", n, "undocumented code");
        }
        /* without injection: requests 0 and 4 run, the others are errors */
        if (!n && (rc == 0) != (i == 0 || i == 4)) result = P2P_EINVAL;
        json_decref(reply);
        json_decref(req);
        af_exempt(false);
    }
    return result;
}

/* admin_rpc_next on a complete value, with the n-th allocation failing
 * (short false) or every one from the n-th (short true): the value, or
 * while memory stays short P2P_ENOMEM; never a syntax error of the
 * client's (answered -32700) nor a wait for bytes the client will never
 * send.  jansson reported the failures of its lexer's allocations as
 * syntax errors near the token (n = 4, 7, 8) and the others (n = 1..3,
 * 5, 6, 9, 10) without any error, which read as syntax errors too. */
static int next_case(const char *name, long n, bool short_)
{
    const char *in = "{\"id\":1,\"method\":\"x\"}\n";
    json_t *v = NULL;
    size_t used = 0;
    if (short_)
        af_arm_from(n);
    else
        af_arm(n);
    int rc = admin_rpc_next(&v, &used, in, strlen(in));
    af_disarm();
    af_exempt(true);
    bool whole = json_is_object(v) && json_integer_value(json_object_get(v, "id")) == 1 &&
                 used == strlen(in) - 1;
    json_decref(v);
    af_exempt(false);
    tu_checks++;
    if (rc == 1 && !whole) fail_n(name, n, "not the value sent");
    if (rc == 0) fail_n(name, n, "a complete value taken for an incomplete one");
    if (rc == -1) fail_n(name, n, "out of memory taken for a syntax error");
    if (rc == P2P_ENOMEM && !short_) fail_n(name, n, "one failure not retried");
    if (rc < 0 && (v || used)) fail_n(name, n, "an error with a value");
    if (rc != 1 && rc != 0 && rc != -1 && rc != P2P_ENOMEM) fail_n(name, n, "undocumented code");
    return rc == 1 ? 0 : rc;
}

static int case_admin_next(long n)
{
    return next_case("admin_next", n, false);
}

static int case_admin_next_short(long n)
{
    return next_case("admin_next_short", n, true);
}

/* ---- the admin socket, serving ---- */

static admin_rpc_t *rpc;
static char ipc[160];
static node_endpoint_stats_t eps;

/* Sends req and reads one line (or until the peer closes: 5 s at most).
 * Returns the line without its newline in buf ("" when closed first), or
 * -1 on a timeout. */
static int ask(const char *req, char *buf, size_t cap)
{
    af_exempt(true);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, ipc, strlen(ipc) + 1);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = strlen(req), n = 0;
    CHECK(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
    buf[0] = 0;
    int rc = -1;
    uint64_t end = p2p_now_ns() + 5000 * P2P_NS_PER_MS;
    while (p2p_now_ns() < end) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
            rc = 0;
            break;
        }
        n += (size_t)r;
        buf[n] = 0;
        char *nl = strchr(buf, '\n');
        if (nl || n == cap - 1) {
            if (nl) *nl = 0;
            rc = 0;
            break;
        }
    }
    close(fd);
    af_exempt(false);
    return rc;
}

static bool has_keys(json_t *o, const char *const *keys)
{
    for (; *keys; keys++)
        if (!json_object_get(o, *keys)) return false;
    return json_is_object(o);
}

static bool ok_node_info(json_t *r)
{
    static const char *const k[] = {"id",    "name",       "enode",     "enr", "ip",
                                    "ports", "listenAddr", "protocols", NULL};
    static const char *const p[] = {"discovery", "listener", NULL};
    return has_keys(r, k) && has_keys(json_object_get(r, "ports"), p);
}

static bool ok_metrics(json_t *r)
{
    static const char *const k[] = {"endpoints", "process", NULL};
    static const char *const e[] = {"adminAcceptPauses", "adminEvictions", "metricsAcceptPauses",
                                    NULL};
    static const char *const p[] = {"residentBytes", "threads", "openFds", NULL};
    return has_keys(r, k) && has_keys(json_object_get(r, "endpoints"), e) &&
           has_keys(json_object_get(r, "process"), p) && json_object_size(r) == 2;
}

static bool ok_peers(json_t *r)
{
    return json_is_array(r) && json_array_size(r) == 0;
}

static bool ok_trace(json_t *r)
{
    static const char *const k[] = {"file", "recording", NULL};
    return has_keys(r, k);
}

/* One answer: the complete result (ok) or, only when expecting one
 * (want_err) or after an injected failure, an error with the id. */
static bool check_answer(json_t *a, json_int_t id, bool (*ok)(json_t *), int want_err, bool fired,
                         const char **why)
{
    json_t *err = json_object_get(a, "error"), *res = json_object_get(a, "result");
    *why = NULL;
    json_t *code = json_object_get(err, "code");
    if (fired && json_is_null(json_object_get(a, "id")) && json_integer_value(code) == -32603 &&
        json_string_length(json_object_get(err, "message"))) {
        /* out of memory before the request's id was known */
    } else if (!json_is_object(a) || json_integer_value(json_object_get(a, "id")) != id) {
        *why = "an answer without the request's id";
    } else if (err) {
        if (!json_is_integer(code) || !json_string_length(json_object_get(err, "message")))
            *why = "an incomplete error";
        else if (!fired && json_integer_value(code) != want_err)
            *why = "an error without injection";
    } else if (want_err || !res) {
        *why = "a result where an error was due";
    } else if (!ok(res)) {
        *why = "an incomplete result";
    }
    return *why == NULL;
}

typedef struct admin_call {
    const char *name, *req;
    bool (*ok)(json_t *);
    int want_err; /* 0: a result */
} admin_call_t;

static const admin_call_t calls[] = {
    {"admin_nodeInfo", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_nodeInfo\"}\n",
     ok_node_info, 0},
    {"admin_metrics", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_metrics\"}\n", ok_metrics,
     0},
    {"admin_peers", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_peers\",\"params\":[]}\n",
     ok_peers, 0},
    {"debug_trace", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"debug_trace\"}\n", ok_trace, 0},
    {"discv4_table", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"discv4_table\"}\n", ok_peers,
     -32000},
    {"admin_addPeer",
     "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_addPeer\",\"params\":[\"enode://"
     "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace24351232b8d7821617d2b29b54b"
     "81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439@127.0.0.1:30303\"]}\n",
     ok_peers, -32000},
    {"unknown_method", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"x_y\"}\n", ok_peers, -32601},
};
static const admin_call_t *call;
static bool ok_ref_metrics(json_t *r);
static const char *metrics_why; /* why ok_ref_metrics refused a result */

static int case_admin_call(long n)
{
    static char buf[65536];
    af_arm(n);
    int hung = ask(call->req, buf, sizeof buf);
    bool fired = af_disarm();
    tu_checks++;
    if (hung) {
        fail_n(call->name, n, "no answer and the connection left open");
        return -1;
    }
    af_exempt(true);
    json_t *a = buf[0] ? json_loads(buf, 0, NULL) : NULL;
    const char *why = NULL;
    int rc = 0;
    if (!buf[0] && fired) {
        rc = P2P_ENOMEM; /* no answer could be built: closed */
    } else if (!a) {
        fail_n(call->name, n, "an answer that is not JSON");
        fprintf(stderr, "  answer: %.300s\n", buf);
        rc = -1;
    } else if (!check_answer(a, 7, call->ok, call->want_err, fired, &why)) {
        fail_n(call->name, n, call->ok == ok_ref_metrics && metrics_why ? metrics_why : why);
        fprintf(stderr, "  answer: %.300s\n", buf);
        rc = -1;
    } else if (json_object_get(a, "error") && !call->want_err) {
        rc = P2P_ENOMEM;
    }
    json_decref(a);
    af_exempt(false);
    return rc;
}

/* a batch of two calls and a notification: both answers, or an error */
static int case_admin_batch(long n)
{
    static char buf[65536];
    af_arm(n);
    int hung = ask("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"admin_nodeInfo\"},"
                   "{\"jsonrpc\":\"2.0\",\"method\":\"admin_peers\"},"
                   "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"admin_metrics\"}]\n",
                   buf, sizeof buf);
    bool fired = af_disarm();
    tu_checks++;
    if (hung) {
        fail_n("admin_batch", n, "no answer and the connection left open");
        return -1;
    }
    if (!buf[0]) return fired ? P2P_ENOMEM : -1;
    af_exempt(true);
    json_t *a = json_loads(buf, 0, NULL);
    const char *why = NULL;
    int rc = 0;
    if (!a)
        why = "an answer that is not JSON";
    else if (!json_is_array(a) || json_array_size(a) != 2)
        why = "not an array of two answers";
    else if (check_answer(json_array_get(a, 0), 1, ok_node_info, 0, fired, &why) &&
             check_answer(json_array_get(a, 1), 2, ok_metrics, 0, fired, &why))
        rc = json_object_get(json_array_get(a, 0), "error") ||
                     json_object_get(json_array_get(a, 1), "error")
                 ? P2P_ENOMEM
                 : 0;
    if (why) {
        fail_n("admin_batch", n, why);
        fprintf(stderr, "  answer: %.300s\n", buf);
        rc = -1;
    }
    json_decref(a);
    af_exempt(false);
    return rc;
}

static void admin_cases(void)
{
    snprintf(ipc, sizeof ipc, "%s/admin.ipc", tmproot);
    admin_rpc_config_t ac = admin_fixture_config(ipc, "alloc-test", &eps);
    ac.trace_path = "/nonexistent/trace";
    char msg[256] = "";
    CHECK_OK(admin_rpc_start(&rpc, msg, sizeof msg, &ac));
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        call = &calls[i];
        drive(call->name, case_admin_call);
    }
    drive("admin_batch", case_admin_batch);
    admin_rpc_stop(rpc);
}

/* The same calls on a node that runs a server and discovery (loopback,
 * no peers): each result complete, that is with the shape (members and
 * array lengths) of the one a call without injection returns. */
static json_t *ref; /* the result of the current call without injection */

static bool same_shape(json_t *a, json_t *b)
{
    if (json_is_integer(a) && json_is_null(b)) return true; /* a count not known */
    if (json_typeof(a) != json_typeof(b)) return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_shape(json_array_get(a, i), json_array_get(b, i))) return false;
    }
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        if (json_object_size(a) != json_object_size(b)) return false;
        json_object_foreach(a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !same_shape(v, w)) return false;
        }
    }
    return true;
}

static bool ok_ref(json_t *r)
{
    return same_shape(ref, r);
}

/* admin_metrics says "discovery": null with a discoveryError when
 * discovery does not answer its snapshot (p2p_discovery_info failed: out
 * of memory there), never leaves the member out (which reads as a node
 * run with --nodiscover), and null for the peer counts the server does not
 * give; both as documented.  Before discovery's failure was told apart the
 * member was left out (n = 17..20: the allocations of discovery's
 * snapshot). */
static bool ok_ref_metrics(json_t *r)
{
    json_t *d = json_object_get(r, "discovery");
    metrics_why = NULL;
    if (!d) {
        metrics_why = "discovery left out: reads as --nodiscover";
        return false;
    }
    if (!json_is_null(d)) return same_shape(ref, r);
    if (!json_string_length(json_object_get(r, "discoveryError"))) {
        metrics_why = "discovery null without discoveryError";
        return false;
    }
    json_t *want = json_copy(ref), *got = json_copy(r);
    json_object_del(want, "discovery");
    json_object_del(got, "discovery");
    json_object_del(got, "discoveryError");
    bool ok = want && got && same_shape(want, got);
    json_decref(want);
    json_decref(got);
    return ok;
}

static const admin_call_t node_calls[] = {
    {"node_metrics_call", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_metrics\"}\n",
     ok_ref_metrics, 0},
    {"node_discv4_table", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"discv4_table\"}\n", ok_ref,
     0},
    {"node_peers", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_peers\"}\n", ok_ref, 0},
    {"node_nodeInfo", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_nodeInfo\"}\n", ok_ref, 0},
    {"node_addTrusted",
     "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_addTrustedPeer\",\"params\":[\""
     "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace24351232b8d7821617d2b29b54b"
     "81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439\"]}\n",
     ok_ref, 0},
};

static void node_cases(void)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/disc", tmproot);
    CHECK(mkdir(dir, 0700) == 0);
    p2p_discovery_config_t dc = {0};
    su_key(dc.priv);
    dc.listen_ip = p2p_ip4(127, 0, 0, 2);
    dc.datadir = dir;
    p2p_discovery_t *disc = NULL;
    char msg[256] = "";
    CHECK_OK(p2p_discovery_start(&disc, msg, sizeof msg, &dc));
    p2p_server_config_t sc;
    su_config(&sc, NULL, 0);
    p2p_server_t *srv = NULL;
    CHECK_OK(p2p_server_start(&srv, &sc));
    snprintf(ipc, sizeof ipc, "%s/node.ipc", tmproot);
    admin_rpc_config_t ac = admin_fixture_config(ipc, "alloc-test", &eps);
    ac.srv = srv;
    ac.disc = disc;
    CHECK_OK(admin_rpc_start(&rpc, msg, sizeof msg, &ac));
    for (size_t i = 0; i < sizeof node_calls / sizeof node_calls[0]; i++) {
        call = &node_calls[i];
        static char buf[65536];
        CHECK(ask(call->req, buf, sizeof buf) == 0);
        af_exempt(true);
        json_t *a = json_loads(buf, 0, NULL);
        ref = json_incref(json_object_get(a, "result"));
        json_decref(a);
        af_exempt(false);
        CHECK(ref != NULL);
        drive(call->name, case_admin_call);
        json_decref(ref);
        ref = NULL;
    }
    admin_rpc_stop(rpc);
    p2p_discovery_stop(disc);
    p2p_server_stop(srv);
}

/* ---- the metrics endpoint, serving ---- */

static metrics_http_t *mh;

static int case_metrics_scrape(long n)
{
    static char buf[1 << 20];
    af_arm(n);
    af_exempt(true);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(metrics_http_port(mh))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    size_t got = 0;
    bool closed = false;
    buf[0] = 0;
    for (uint64_t end = p2p_now_ns() + 5000 * P2P_NS_PER_MS; p2p_now_ns() < end;) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
            closed = true;
            break;
        }
        got += (size_t)r;
        buf[got] = 0;
    }
    close(fd);
    af_exempt(false);
    bool fired = af_disarm();
    tu_checks++;
    if (!closed) {
        fail_n("metrics_scrape", n, "response not ended");
        return -1;
    }
    if (strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "\r\n\r\n")) return 0;
    if (fired && (strncmp(buf, "HTTP/1.1 500", 12) == 0 || strncmp(buf, "HTTP/1.1 503", 12) == 0))
        return P2P_ENOMEM;
    fail_n("metrics_scrape", n, fired ? "neither the metrics nor a 5xx" : "no metrics");
    fprintf(stderr, "  response: %.200s\n", buf);
    return -1;
}

static void metrics_cases(void)
{
    metrics_http_config_t mc = {.ip = p2p_ip4(127, 0, 0, 1), .endpoints = &eps};
    char msg[256] = "";
    CHECK_OK(metrics_http_start(&mh, msg, sizeof msg, &mc));
    drive("metrics_scrape", case_metrics_scrape);
    metrics_http_stop(mh);
}

/* ---- node_metrics, resolver ---- */

static int case_node_metrics(long n)
{
    af_arm(n);
    node_metrics_t *m = node_metrics_new();
    af_disarm();
    node_metrics_free(m);
    return m ? 0 : P2P_ENOMEM;
}

static int case_resolver(long n)
{
    resolver_t *r = (resolver_t *)1;
    af_arm(n);
    int rc = resolver_new(&r);
    af_disarm();
    tu_checks++;
    if (rc != 0 && rc != P2P_ENOMEM) fail_n("resolver_new", n, "undocumented code");
    if (rc == 0) resolver_free(r);
    return rc;
}

/* ---- stress reports ---- */

static stress_stats_t sst;

static void stress_fill(void)
{
    memset(&sst, 0, sizeof sst);
    sst.mode = "hold";
    snprintf(sst.target, sizeof sst.target, "127.0.0.1:30303");
    sst.attempts = 10;
    sst.successes = 9;
    stress_fail(&sst, "timeout");
    for (int i = 0; i < 5; i++) stress_lat_add(&sst.hs_lat, 1000u * (unsigned)i);
    for (int i = 0; i < 3; i++) {
        stress_point_t p = {.t = i, .live = 1};
        stress_series_add(&sst, &p);
    }
}

/* The members of the JSON report's top object (0: not JSON, or without
 * its series). */
static size_t json_keys_written(const char *path)
{
    af_exempt(true);
    json_t *o = json_load_file(path, 0, NULL);
    size_t n = json_is_object(o) ? json_object_size(o) : 0;
    if (n && json_array_size(json_object_get(o, "series")) != 3) n = 0;
    json_decref(o);
    af_exempt(false);
    return n;
}

static const char *stress_ext = ".json";

static size_t csv_lines(const char *path)
{
    char sp[4096];
    stress_summary_path(sp, sizeof sp, path);
    FILE *f = fopen(sp, "r");
    if (!f) return 0;
    size_t n = 0;
    for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
    fclose(f);
    return n;
}

static size_t stress_full;

/* stress_write_out: the complete report (JSON: every member and the
 * series; CSV: every row of the series and of the summary), or -1 with
 * errno ENOMEM and nothing written; never a crash or a leak.  Before the
 * report was built whole in memory, a success came with members left out
 * of the summary or points out of the series (summary_json and the series
 * were not checked: JSON n = 3, 4, 7..172, CSV n = 1..121), and a failure
 * left a partial file (JSON n = 1, 2, 173..184: json_dumpf failed part
 * way). */
static int case_stress_out(long n)
{
    char path[200], sp[256];
    snprintf(path, sizeof path, "%s/report%s", tmproot, stress_ext);
    stress_summary_path(sp, sizeof sp, path);
    unlink(path);
    unlink(sp);
    af_arm(n);
    errno = 0;
    int rc = stress_write_out(&sst, NULL, 0, path);
    int e = errno;
    bool fired = af_disarm();
    size_t got = strcmp(stress_ext, ".json") == 0 ? json_keys_written(path) : csv_lines(path);
    tu_checks++;
    if (rc != 0 && rc != -1) fail_n("stress_out", n, "undocumented code");
    if (n == 0 && !stress_full) stress_full = got;
    if (rc == 0 && (got == 0 || got != stress_full)) {
        fail_n("stress_out", n, fired ? "an incomplete report written" : "no complete report");
        return -1;
    }
    if (rc == -1 && (!fired || e != ENOMEM)) {
        fail_n("stress_out", n, "failed without injection or not with ENOMEM");
        return -1;
    }
    if (rc == -1 && (access(path, F_OK) == 0 || access(sp, F_OK) == 0)) {
        fail_n("stress_out", n, "a failed report left a file");
        return -1;
    }
    return rc;
}

/* stress_lat_add and stress_series_add with a growth failing: every
 * sample is kept or counted dropped, and the report says so (JSON and its
 * CSV summary: "dropped" in each latency, "series_points_dropped"; the
 * text summary: "dropped"), so figures from fewer samples are marked.
 * Before the drops were counted the samples were left out silently
 * (n = 1..4: a report of fewer samples without a word). */
enum { SAMPLES = 2000, POINTS = 70 };

static json_int_t member(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(b ? json_object_get(o, a) : o, b ? b : a);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static int case_stress_samples(long n)
{
    static stress_stats_t st;
    memset(&st, 0, sizeof st);
    st.mode = "hold";
    af_arm(n);
    for (int i = 0; i < SAMPLES; i++) stress_lat_add(&st.hs_lat, (uint64_t)i);
    for (int i = 0; i < POINTS; i++) {
        stress_point_t p = {.t = i};
        st.successes++;
        stress_series_add(&st, &p);
    }
    af_disarm();
    af_exempt(true);
    char path[200], txt[200];
    snprintf(path, sizeof path, "%s/samples.json", tmproot);
    snprintf(txt, sizeof txt, "%s/samples.txt", tmproot);
    CHECK_OK(stress_write_out(&st, NULL, 0, path));
    json_t *o = json_load_file(path, 0, NULL);
    json_int_t lat_n = member(o, "handshake_latency", "n");
    json_int_t lat_dropped = member(o, "handshake_latency", "dropped");
    json_int_t pts = (json_int_t)json_array_size(json_object_get(o, "series"));
    json_int_t pts_dropped = member(o, "series_points_dropped", NULL);
    json_int_t ok = 0;
    json_t *pt;
    size_t i;
    json_array_foreach(json_object_get(o, "series"), i, pt) ok += member(pt, "ok", NULL);
    json_decref(o);
    /* the text summary */
    fflush(stdout);
    int saved = dup(1), fd = open(txt, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(saved >= 0 && fd >= 0 && dup2(fd, 1) == 1);
    stress_print_summary(&st);
    fflush(stdout);
    CHECK(dup2(saved, 1) == 1);
    close(saved);
    close(fd);
    char sum[8192] = "";
    FILE *f = fopen(txt, "r");
    CHECK(f != NULL);
    sum[fread(sum, 1, sizeof sum - 1, f)] = 0;
    fclose(f);
    stress_stats_free(&st);
    af_exempt(false);
    bool lost = lat_n < SAMPLES || pts < POINTS;
    tu_checks++;
    if (lat_n + (lat_dropped > 0 ? lat_dropped : 0) != SAMPLES)
        fail_n("stress_samples", n, "latency samples neither kept nor counted dropped");
    else if (pts + (pts_dropped > 0 ? pts_dropped : 0) != POINTS)
        fail_n("stress_samples", n, "series points neither kept nor counted dropped");
    else if (ok != POINTS)
        fail_n("stress_samples", n, "the series' ok column does not sum to the successes");
    else if (lost && !strstr(sum, "dropped"))
        fail_n("stress_samples", n, "the text summary does not say samples were dropped");
    else if (lost)
        return P2P_ENOMEM;
    else
        return 0;
    return -1;
}

/* ---- the trace tool's Chrome export ---- */

static char ring_path[200], chrome_path[200];
static size_t trace_events0; /* events of the export without injection */

/* A trace file of one ring ("p2p-run"): an event without a mailbox, then
 * a push and the pop that takes it (a flow).  Written by a child, so the
 * trace writer's state stays out of this process. */
static void trace_craft(void)
{
    snprintf(ring_path, sizeof ring_path, "%s/trace.ring", tmproot);
    pid_t pid = fork();
    if (pid == 0) {
        af_exempt(true);
        p2p_thread_t me;
        uint16_t box = 0;
        bool ok = p2p_trace_open(ring_path, 1, 16) == 0 &&
                  (box = p2p_mailbox_name_id("box")) != 0 && p2p_trace_name_kind(5, "kind") == 0 &&
                  p2p_thread_adopt(&me, "p2p-run") == 0;
        if (ok) {
            p2p_trace_event(P2P_TRACE_CUSTOM, 0, 0, 0, 0);
            p2p_trace_event(P2P_TRACE_PUSH, box, 5, 0xabc, 1);
            p2p_trace_event(P2P_TRACE_POP, box, 5, 0xabc, 1);
            p2p_thread_unadopt(&me);
            p2p_trace_close();
        }
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static volatile bool *trace_fired; /* shared with the child */

static void note_fired(void)
{
    *trace_fired = af_fired();
}

/* Whether every event of the export is complete: a record's ("X") args
 * with its arg (and mailbox_name when it has a mailbox), a flow's end
 * ("f") with its binding point. */
static const char *trace_event_incomplete(json_t *ev)
{
    static const char *const k[] = {"type", "mailbox", "kind", "kind_id",
                                    "peer", "seq",     "arg",  NULL};
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    json_t *args = json_object_get(ev, "args");
    if (!ph) return "an event without ph";
    if (strcmp(ph, "X") == 0 && !has_keys(args, k)) return "a record without one of its args";
    if (strcmp(ph, "X") == 0 && json_integer_value(json_object_get(args, "mailbox")) &&
        !json_object_get(args, "mailbox_name"))
        return "a record without its mailbox_name";
    if (strcmp(ph, "f") == 0 && !json_object_get(ev, "bp")) return "a flow end without bp";
    return NULL;
}

/* devp2p trace --export chrome with allocation n failing (0: none), in a
 * child (the tool exits on some failures).  The export is written with
 * every event complete, those it could not encode counted in
 * failed_events (events + failed_events: the events of an export without
 * injection), or the tool fails (exit 1).  Before the optional members
 * were checked, an event was written without them: a record without arg
 * (n = 68..70, 108..110, 148..150, 210..212, 275..277) or mailbox_name
 * (n = 151..153, 213..215), a flow end without bp (n = 255..257). */
static int case_trace_export(long n, bool *fired)
{
    snprintf(chrome_path, sizeof chrome_path, "%s/chrome.json", tmproot);
    char errp[220];
    snprintf(errp, sizeof errp, "%s/trace.err", tmproot);
    unlink(chrome_path);
    *trace_fired = false;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) != 1 || dup2(fd, 2) != 2) _exit(99);
        atexit(note_fired); /* cli_fail exits */
        char *argv[] = {"--file", ring_path, "--export", "chrome", chrome_path, NULL};
        af_arm(n);
        int rc = cmd_trace(5, argv);
        note_fired();
        _exit(rc);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    *fired = *trace_fired;
    tu_checks++;
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 1)) {
        fail_n("trace_export", n, "crashed or an undocumented status");
        char cmd[300];
        snprintf(cmd, sizeof cmd, "head -c 3000 %s >&2", errp);
        if (system(cmd) != 0) fprintf(stderr, "(could not show %s)\n", errp);
        return -1;
    }
    if (WEXITSTATUS(st) == 1) {
        if (!*fired) fail_n("trace_export", n, "failed without injection");
        return *fired ? P2P_ENOMEM : -1;
    }
    af_exempt(true);
    json_t *o = json_load_file(chrome_path, 0, NULL);
    json_t *evs = json_object_get(o, "traceEvents"), *od = json_object_get(o, "otherData"), *ev;
    const char *why = json_is_array(evs) ? NULL : "not an export";
    size_t i, records = 0, events = 0;
    json_t *named = json_object();
    json_array_foreach(evs, i, ev)
    {
        if (!why) why = trace_event_incomplete(ev);
        const char *ph = json_string_value(json_object_get(ev, "ph"));
        records += ph && strcmp(ph, "X") == 0;
        /* a track's name that could not be noted as given is given again
         * for its next record: the same metadata, counted once */
        char key[64];
        snprintf(key, sizeof key, "%s %lld", json_string_value(json_object_get(ev, "name")) ?: "",
                 (long long)json_integer_value(json_object_get(ev, "tid")));
        if (ph && strcmp(ph, "M") == 0 && json_object_get(named, key)) continue;
        if (ph && strcmp(ph, "M") == 0) CHECK(json_object_set_new(named, key, json_true()) == 0);
        events++;
    }
    json_decref(named);
    json_int_t failed = json_integer_value(json_object_get(od, "failed_events"));
    if (!why && (json_int_t)records != json_integer_value(json_object_get(od, "exported")))
        why = "records written and exported differ";
    if (!why && n == 0) trace_events0 = events;
    if (!why && events + (size_t)failed != trace_events0)
        why = "events neither written nor counted failed";
    if (!why && !*fired && failed) why = "events failed without injection";
    json_decref(o);
    af_exempt(false);
    if (why) {
        fail_n("trace_export", n, why);
        return -1;
    }
    return failed ? P2P_ENOMEM : 0;
}

static void trace_cases(void)
{
    trace_fired = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(trace_fired != MAP_FAILED);
    trace_craft();
    bool fired;
    CHECK_OK(case_trace_export(0, &fired));
    CHECK(trace_events0 >= 6); /* process and thread names, 3 records, 2 flow ends */
    long n;
    for (n = 1; n <= AF_MAX_N; n++) {
        int rc = case_trace_export(n, &fired);
        if (!fired) {
            if (rc) fail_n("trace_export", n, "failed without injection");
            break;
        }
    }
    CHECK(n <= AF_MAX_N);
    fprintf(stderr, "%-24s %ld allocation points\n", "trace_export", n - 1);
    munmap((void *)trace_fired, 4096);
}

int main(void)
{
    /* jansson's values through the wrapped allocator */
    void *warm[1];
    (void)backtrace(warm, 1); /* loads the unwinder before any injection */
    json_set_alloc_funcs(json_malloc, free);
    learn_grow_site();
    CHECK(mkdtemp(tmproot) != NULL);

    trace_cases(); /* forks: before any thread starts */

    drive("admin_decode", case_admin_decode);
    drive("admin_next", case_admin_next);
    drive("admin_next_short", case_admin_next_short);
    admin_cases();
    node_cases();
    metrics_cases();
    drive("node_metrics", case_node_metrics);
    drive("resolver_new", case_resolver);

    stress_fill();
    CHECK_OK(case_stress_out(0));
    drive("stress_out_json", case_stress_out);
    stress_ext = ".csv";
    stress_full = 0;
    CHECK_OK(case_stress_out(0));
    drive("stress_out_csv", case_stress_out);
    stress_stats_free(&sst);
    drive("stress_samples", case_stress_samples);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmproot);
    CHECK(system(cmd) == 0);
    return tu_done("alloc_tools");
}
