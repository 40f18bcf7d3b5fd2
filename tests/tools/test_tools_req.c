/*
 * tests/tools/test_tools_req.c: unit tests of devp2pd's decoders of
 * untrusted input without a running node: the metrics endpoint's request
 * head (tools/http_req.c) and the admin socket's JSON-RPC framing and
 * request validation (tools/admin_req.c).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tests/tu.h"
#include "tools/admin_req.h"
#include "tools/http_req.h"
#include "tools/json_stream.h"

static int http(http_req_t *r, const char *s)
{
    return http_req_parse(r, s, strlen(s));
}

static void test_http(void)
{
    http_req_t r;
    const char *ok = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(http(&r, ok) == 200);
    CHECK(r.method == ok && r.method_len == 3);
    CHECK(r.target == ok + 4 && r.target_len == 8 && r.path_len == 8);
    CHECK(r.version == ok + 13 && memcmp(r.version, "HTTP/1.1", 8) == 0 && r.line_len == 21);
    CHECK(http(&r, "GET /debug/metrics/prometheus?a=b HTTP/1.0\n\n") == 200);
    CHECK(r.path_len == 25 && r.target_len == 29);
    CHECK(http(&r, "GET /metrics#x HTTP/1.1\r\n\r\n") == 200);
    /* every prefix of a complete head needs more */
    for (size_t n = 0; n < strlen(ok); n++) CHECK(http_req_parse(&r, ok, n) == 0);
    CHECK(http(&r, "GET /metrics HTTP/1.1\r\nHost: x\r\n") == 0); /* no blank line yet */
    /* HEAD is served too (RFC 9110 9.1), as the head of the GET response */
    CHECK(http(&r, "HEAD /metrics HTTP/1.1\r\n\r\n") == 200);
    CHECK(r.method_len == 4 && r.path_len == 8);
    CHECK(http(&r, "HEAD /debug/metrics/prometheus?x HTTP/1.0\n\n") == 200);
    CHECK(http(&r, "HEAD /nope HTTP/1.1\r\n\r\n") == 404);
    CHECK(http(&r, "head /metrics HTTP/1.1\r\n\r\n") == 405);
    CHECK(http(&r, "HEADX /metrics HTTP/1.1\r\n\r\n") == 405);
    CHECK(http(&r, "POST /metrics HTTP/1.1\r\n\r\n") == 405);
    CHECK(r.method_len == 4);
    CHECK(http(&r, "get /metrics HTTP/1.1\r\n\r\n") == 405);
    CHECK(http(&r, "GET /metricsx HTTP/1.1\r\n\r\n") == 404);
    CHECK(http(&r, "GET / HTTP/1.1\r\n\r\n") == 404);
    const char *bad[] = {
        "GET /metrics\r\n\r\n",           "GET  /metrics HTTP/1.1\r\n\r\n",
        " GET /metrics HTTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/2.0\r\n\r\n",  "GET /metrics HTTP/1.\r\n\r\n",
        "GET /metrics HTTP/1.10\r\n\r\n", "GET /metrics HTTP/1.1 \r\n\r\n",
        "GET /metrics HTTP/1. \r\n\r\n",  "\r\n\r\n",
        "GET /m x HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(http(&r, bad[i]) == 400);
        CHECK(r.method == NULL && r.line_len == 0);
    }
    /* a NUL byte anywhere */
    const char nul[] = "GET /metrics HTTP/1.1\r\nX: \0\r\n\r\n";
    CHECK(http_req_parse(&r, nul, sizeof nul - 1) == 400);
    CHECK(http_req_parse(&r, nul, 26) == 0);
    CHECK(http_req_parse(&r, nul, 27) == 400);
    /* oversize: no blank line within METRICS_HTTP_HEAD_MAX bytes */
    static char big[METRICS_HTTP_HEAD_MAX + 1];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /metrics HTTP/1.1\r\n", 23);
    CHECK(http_req_parse(&r, big, METRICS_HTTP_HEAD_MAX - 1) == 0);
    CHECK(http_req_parse(&r, big, METRICS_HTTP_HEAD_MAX) == 400);
    CHECK(http_req_parse(&r, big, METRICS_HTTP_HEAD_MAX + 1) == 400);
    /* the blank line as the last bytes of a full head is accepted */
    memcpy(big + METRICS_HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
    CHECK(http_req_parse(&r, big, METRICS_HTTP_HEAD_MAX) == 200);
}

static int code_of(json_t *err)
{
    int c = (int)json_integer_value(json_object_get(json_object_get(err, "error"), "code"));
    json_decref(err);
    return c;
}

/* admin_rpc_decode: the error response, or NULL when the request runs
 * (the result code, the reply and the method checked to agree) */
static json_t *decode(admin_rpc_req_t *rq, json_t *v)
{
    json_t *reply = (json_t *)1;
    int rc = admin_rpc_decode(rq, &reply, v, 0);
    CHECK(rc == 0 || rc == P2P_EINVAL);
    CHECK((rc == 0) == (reply == NULL));
    CHECK((rc == 0) == (rq->method < ADMIN_RPC_NMETHODS));
    return rc == 0 ? NULL : reply;
}

static json_t *load(const char *s)
{
    json_t *v = json_loads(s, 0, NULL);
    CHECK(v != NULL);
    return v;
}

static void test_admin_decode(void)
{
    static const char key[] = "a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef2"
                              "9b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c";
    char s[512];
    admin_rpc_req_t rq;
    json_t *v = load("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_nodeInfo\"}");
    CHECK(decode(&rq, v) == NULL);
    CHECK(rq.method == ADMIN_RPC_NODE_INFO && json_integer_value(rq.id) == 7);
    json_decref(v);
    for (unsigned k = 0; k < ADMIN_RPC_NMETHODS; k++) {
        snprintf(s, sizeof s,
                 "{\"id\":1,\"method\":\"%s\",\"params\":[\"enode://%s@10.0.0.1:30303\"]}",
                 admin_rpc_method_name((admin_rpc_method_t)k), key);
        v = load(s);
        if (k < ADMIN_RPC_ADD_PEER) {
            /* debug_trace wants none or a boolean; the others take no
             * parameter: an extra one is refused, as geth does ("too many
             * arguments"), and the same request without it runs */
            CHECK(code_of(decode(&rq, v)) == -32602);
            json_decref(v);
            const char *none[] = {"", ",\"params\":null", ",\"params\":[]"};
            for (size_t i = 0; i < 3; i++) {
                snprintf(s, sizeof s, "{\"id\":1,\"method\":\"%s\"%s}",
                         admin_rpc_method_name((admin_rpc_method_t)k), none[i]);
                v = load(s);
                CHECK(decode(&rq, v) == NULL && rq.method == (admin_rpc_method_t)k);
                json_decref(v);
            }
            continue;
        }
        CHECK(decode(&rq, v) == NULL);
        CHECK(rq.method == (admin_rpc_method_t)k);
        CHECK(rq.node.ep.ip.family == 4 && rq.node.ep.tcp == 30303);
        json_decref(v);
        /* one parameter at most */
        snprintf(s, sizeof s,
                 "{\"id\":1,\"method\":\"%s\",\"params\":[\"enode://%s@10.0.0.1:30303\",1]}",
                 admin_rpc_method_name((admin_rpc_method_t)k), key);
        v = load(s);
        CHECK(code_of(decode(&rq, v)) == -32602 && rq.method == ADMIN_RPC_NMETHODS);
        json_decref(v);
    }
    CHECK(admin_rpc_method_name(ADMIN_RPC_NMETHODS) == NULL);
    /* JSON-RPC 2.0: an id is a string, a number or null; any other is an
     * invalid request, answered with id null, and nothing runs */
    const char *ids_ok[] = {"\"x\"", "0", "-1.5", "null"};
    for (size_t i = 0; i < sizeof ids_ok / sizeof ids_ok[0]; i++) {
        snprintf(s, sizeof s, "{\"id\":%s,\"method\":\"admin_peers\"}", ids_ok[i]);
        v = load(s);
        CHECK(decode(&rq, v) == NULL && rq.method == ADMIN_RPC_PEERS && rq.id != NULL);
        json_decref(v);
    }
    const char *ids_bad[] = {"{\"a\":1}", "[1]", "[]", "true", "false"};
    for (size_t i = 0; i < sizeof ids_bad / sizeof ids_bad[0]; i++) {
        snprintf(s, sizeof s, "{\"id\":%s,\"method\":\"admin_addPeer\",\"params\":[\"%s\"]}",
                 ids_bad[i], key);
        v = load(s);
        json_t *e = decode(&rq, v);
        CHECK(e != NULL && rq.method == ADMIN_RPC_NMETHODS && rq.id == NULL);
        CHECK(json_is_null(json_object_get(e, "id")));
        CHECK(code_of(e) == -32600);
        CHECK(!admin_rpc_is_notification(v));
        json_decref(v);
    }
    /* a bare key: fine for removal */
    snprintf(s, sizeof s, "{\"method\":\"admin_removePeer\",\"params\":[\"%s\"]}", key);
    v = load(s);
    CHECK(decode(&rq, v) == NULL && rq.id == NULL);
    json_decref(v);
    /* admin_addPeer too (looked up through discovery; the node refuses it
     * if it runs none) */
    snprintf(s, sizeof s, "{\"id\":\"a\",\"method\":\"admin_addPeer\",\"params\":[\"%s\"]}", key);
    v = load(s);
    CHECK(decode(&rq, v) == NULL && rq.method == ADMIN_RPC_ADD_PEER && rq.node.ep.ip.family == 0);
    json_decref(v);
    /* an invalid URL is refused, with the request's id */
    v = load("{\"id\":\"a\",\"method\":\"admin_addPeer\",\"params\":[\"enode://00\"]}");
    json_t *e = decode(&rq, v);
    CHECK(e && json_equal(json_object_get(e, "id"), json_object_get(v, "id")));
    CHECK(code_of(e) == -32602);
    json_decref(v);
    const struct {
        const char *req;
        int code;
    } bad[] = {
        {"[1]", -32600},
        {"{\"id\":1}", -32600},
        {"{\"method\":1}", -32600},
        {"{\"method\":\"admin_nope\"}", -32601},
        {"{\"method\":\"admin_addPeer\"}", -32602},
        {"{\"method\":\"admin_addPeer\",\"params\":{}}", -32602},
        {"{\"method\":\"admin_addPeer\",\"params\":[1]}", -32602},
        {"{\"method\":\"admin_addTrustedPeer\",\"params\":[\"enode://00@1.2.3.4:1\"]}", -32602},
        {"{\"method\":\"debug_trace\",\"params\":[1]}", -32602},
        {"{\"method\":\"debug_trace\",\"params\":[\"true\"]}", -32602},
        {"{\"method\":\"debug_trace\",\"params\":[true,false]}", -32602},
        {"{\"method\":\"debug_trace\",\"params\":[null]}", -32602},
        {"{\"method\":\"debug_trace\",\"params\":{\"on\":true}}", -32602},
        {"{\"method\":\"debug_trace\",\"params\":false}", -32602},
        {"{\"method\":\"admin_peers\",\"params\":{}}", -32602},
        {"{\"method\":\"admin_metrics\",\"params\":[null]}", -32602},
        {"{\"method\":\"admin_nodeInfo\",\"params\":1}", -32602},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = load(bad[i].req);
        CHECK(code_of(decode(&rq, v)) == bad[i].code);
        json_decref(v);
    }
    /* debug_trace: no params (absent, null, []) reports, [true] resumes,
     * [false] pauses */
    const struct {
        const char *params;
        int recording;
    } dt[] = {{"", -1},
              {",\"params\":null", -1},
              {",\"params\":[]", -1},
              {",\"params\":[true]", 1},
              {",\"params\":[false]", 0}};
    for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++) {
        snprintf(s, sizeof s, "{\"id\":2,\"method\":\"debug_trace\"%s}", dt[i].params);
        v = load(s);
        rq.recording = 99;
        CHECK(decode(&rq, v) == NULL);
        CHECK(rq.method == ADMIN_RPC_DEBUG_TRACE && rq.recording == dt[i].recording);
        json_decref(v);
    }
    /* the unknown method is named, cut at 100 bytes */
    memset(s, 0, sizeof s);
    strcpy(s, "{\"method\":\"");
    memset(s + strlen(s), 'x', 300);
    strcat(s, "\"}");
    v = load(s);
    e = decode(&rq, v);
    const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
    CHECK(msg && strlen(msg) == strlen("the method  does not exist/is not available") + 100);
    CHECK(json_is_null(json_object_get(e, "id")));
    json_decref(e);
    json_decref(v);
    /* an unknown method of 99 x and a two-byte character: the name is cut
     * before the character, not inside it (that error would not encode) */
    char xs[100];
    memset(xs, 'x', 99);
    xs[99] = 0;
    snprintf(s, sizeof s, "{\"id\":1,\"method\":\"%s\xc3\xa9\"}", xs);
    v = load(s);
    e = decode(&rq, v);
    CHECK(e != NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(e, "error"), "code")) == -32601);
    msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
    CHECK(msg && strlen(msg) == strlen("the method  does not exist/is not available") + 99);
    CHECK(json_integer_value(json_object_get(e, "id")) == 1);
    json_decref(e);
    json_decref(v);
}

/* A peer method's record naming 127.0.0.1 and ::1 (udp and udp6 48046):
 * the address of the family the node's sockets reach, as geth picks (ip on
 * a tie) on a dual-stack node. */
static void test_admin_family(void)
{
    static const char rec[] =
        "enr:-KG4QJfLIynXNU_-0osB4-qSEh-LaNeNYhfUDAYEkLWsiRTySpNH9ZPpW0_1jhQYIV-vb55AR-"
        "gx9JdFtjEu1j-"
        "0_b0HgmlkgnY0gmlwhH8AAAGDaXA2kAAAAAAAAAAAAAAAAAAAAAGJc2VjcDI1NmsxoQKmlg1gXLQZlghSTZSDpIkH"
        "OG8z5McUy1CyzG3NzV--A4N1ZHCCu66EdWRwNoK7rg";
    char s[512];
    snprintf(s, sizeof s, "{\"id\":1,\"method\":\"admin_addPeer\",\"params\":[\"%s\"]}", rec);
    json_t *v = load(s);
    const unsigned fam[3] = {0, 4, 6}, want[3] = {4, 4, 6};
    for (int i = 0; i < 3; i++) {
        admin_rpc_req_t rq;
        json_t *reply = (json_t *)1;
        CHECK(admin_rpc_decode(&rq, &reply, v, fam[i]) == 0 && reply == NULL);
        CHECK(rq.method == ADMIN_RPC_ADD_PEER);
        CHECK(rq.node.ep.ip.family == want[i] && rq.node.ep.udp == 48046);
        CHECK(rq.node.ep.ip.addr[want[i] == 4 ? 0 : 15] == (want[i] == 4 ? 127 : 1));
    }
    json_decref(v);
}

static void test_admin_notification(void)
{
    const struct {
        const char *req;
        bool notification;
    } v[] = {
        {"{\"jsonrpc\":\"2.0\",\"method\":\"admin_peers\"}", true},
        {"{\"method\":\"admin_nope\",\"params\":[1]}", true},
        {"{\"id\":null,\"method\":\"admin_peers\"}", false},
        {"{\"id\":0,\"method\":\"admin_peers\"}", false},
        {"{\"method\":1}", false}, /* invalid: answered with id null */
        {"{}", false},
        {"[{\"method\":\"admin_peers\"}]", false},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        json_t *j = load(v[i].req);
        CHECK(admin_rpc_is_notification(j) == v[i].notification);
        json_decref(j);
    }
}

static void test_admin_framing(void)
{
    json_t *v;
    size_t used;
    const char *two = " \r\n\t{\"method\":\"admin_peers\"}[1,2]";
    CHECK(admin_rpc_next(&v, &used, two, strlen(two)) == 1);
    CHECK(used == 4 + 24 && json_is_object(v));
    json_decref(v);
    CHECK(admin_rpc_next(&v, &used, two + 28, strlen(two) - 28) == 1);
    CHECK(used == 5 && json_array_size(v) == 2);
    json_decref(v);
    const char *part = "  {\"method\":\"admin_pe";
    CHECK(admin_rpc_next(&v, &used, part, strlen(part)) == 0);
    CHECK(v == NULL && used == 2);
    CHECK(admin_rpc_next(&v, &used, " \n ", 3) == 0 && used == 3);
    CHECK(admin_rpc_next(&v, &used, "", 0) == 0 && used == 0);
    CHECK(admin_rpc_next(&v, &used, " }{", 3) == -1 && v == NULL && used == 0);
    CHECK(admin_rpc_next(&v, &used, "{\"a\":tru}", 9) == -1);
    /* a value ends at its closing bracket; a scalar is not a request */
    CHECK(admin_rpc_next(&v, &used, "{} x", 4) == 1 && used == 2);
    json_decref(v);
    CHECK(admin_rpc_next(&v, &used, "12 ", 3) == -1);
    CHECK(admin_rpc_next(&v, &used, "true\n", 5) == -1);
    /* a read that ends inside a character (here "\u00e9" = C3 A9, and
     * U+20AC = E2 82 AC) leaves the value incomplete, not malformed */
    const char *cut2 = "{\"method\":\"admin_peers\",\"id\":\"\xc3";
    CHECK(admin_rpc_next(&v, &used, cut2, strlen(cut2)) == 0 && v == NULL);
    const char *cut3 = "  {\"method\":\"admin_peers\",\"id\":\"\xe2\x82";
    CHECK(admin_rpc_next(&v, &used, cut3, strlen(cut3)) == 0 && v == NULL && used == 2);
    const char *whole = "{\"method\":\"admin_peers\",\"id\":\"\xe2\x82\xac\"}";
    CHECK(admin_rpc_next(&v, &used, whole, strlen(whole)) == 1 && used == strlen(whole));
    json_decref(v);
    /* bytes no further input can make valid stay errors */
    const char *bad1 = "{\"id\":\"\xc3x\"}";
    CHECK(admin_rpc_next(&v, &used, bad1, strlen(bad1)) == -1);
    const char *bad2 = "{\"id\":\"\xff";
    CHECK(admin_rpc_next(&v, &used, bad2, strlen(bad2)) == -1);
    const char *bad3 = "{\"id\":\"\xc0";
    CHECK(admin_rpc_next(&v, &used, bad3, strlen(bad3)) == -1);
    /* buffer growth: 8192 first, doubling while under 4096 bytes free,
     * never past ADMIN_RPC_INPUT_MAX */
    CHECK(admin_rpc_buf_cap(0, 0) == 8192);
    CHECK(admin_rpc_buf_cap(8192, 4096) == 8192);
    CHECK(admin_rpc_buf_cap(8192, 4097) == 16384);
    CHECK(admin_rpc_buf_cap(ADMIN_RPC_INPUT_MAX / 2, ADMIN_RPC_INPUT_MAX / 2) ==
          ADMIN_RPC_INPUT_MAX);
    CHECK(admin_rpc_buf_cap(ADMIN_RPC_INPUT_MAX, ADMIN_RPC_INPUT_MAX - 4096) ==
          ADMIN_RPC_INPUT_MAX);
    CHECK(admin_rpc_buf_cap(ADMIN_RPC_INPUT_MAX, ADMIN_RPC_INPUT_MAX - 4095) == 0);
}

/* json_stream_cut, which devp2p attach reads the node's answers with: an
 * answer cut inside a character by a read is incomplete, not malformed */
static void test_json_stream(void)
{
    static const struct {
        const char *text;
        bool cut;
    } cases[] = {
        {"{\"result\":{\"name\":\"n\xc3", true},
        {"{\"result\":{\"name\":\"\xf0\x9f\x98", true},
        {"{\"result\":{\"name\":\"n", true},
        {"{\"result\":", true},
        {"{\"result\":} ", false},
        {"{\"result\":\"\xc3(", false},
        {"{\"result\":\"\xf8", false},
        {"{\"result\":\"\xc3\xa9\x80", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t je;
        size_t n = strlen(cases[i].text);
        json_t *v = json_loadb(cases[i].text, n, JSON_DISABLE_EOF_CHECK, &je);
        CHECK(v == NULL);
        json_decref(v);
        CHECK(json_stream_cut(cases[i].text, n, &je) == cases[i].cut);
    }
}

int main(void)
{
    test_http();
    test_admin_decode();
    test_admin_family();
    test_admin_notification();
    test_admin_framing();
    test_json_stream();
    return tu_done("tools_req");
}
