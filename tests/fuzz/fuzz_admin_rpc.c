/*
 * tests/fuzz/fuzz_admin_rpc.c: libFuzzer target for the admin socket's
 * request decoding (tools/admin_req.c): admin_rpc_next frames a
 * connection's input into JSON values, admin_rpc_decode validates each
 * request (or each element of a batch) and parses the peer methods' node
 * URL, admin_rpc_buf_cap bounds the receive buffer.
 *
 * The input is a connection's byte stream, decoded the way client_serve
 * does (at most 64 values per call, then again on what is left).
 * Properties: no crash, no leak (every value and response released; the
 * leak checker would see one); admin_rpc_next consumes within the input
 * and makes progress, leaves no leading whitespace behind on "more", and
 * never takes bytes on a syntax error; a decoded request names a method of
 * the known set and carries the request's "id"; a peer method's node
 * parses again to the same node, with an address for admin_addPeer; a
 * request that does not run has method ADMIN_RPC_NMETHODS and an error
 * response (P2P_EINVAL), or none only when out of memory; an "id" other
 * than a string, number or null is never echoed nor run (-32600, id null); an error
 * response is an object with the request's id and code -32600,
 * -32601 (only for a string method outside the set) or -32602; the buffer
 * capacity never passes ADMIN_RPC_INPUT_MAX.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/admin_req.h"
#include "wire/enode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known_method(const char *m)
{
    for (unsigned k = 0; k < ADMIN_RPC_NMETHODS; k++)
        if (strcmp(m, admin_rpc_method_name((admin_rpc_method_t)k)) == 0) return 1;
    return 0;
}

static void check_request(json_t *req)
{
    admin_rpc_req_t rq;
    json_t *err;
    int rc = admin_rpc_decode(&rq, &err, req, 0);
    json_t *rid = json_object_get(req, "id");
    bool bad_id = rid && !json_is_string(rid) && !json_is_number(rid) && !json_is_null(rid);
    if (rq.id != (bad_id ? NULL : rid)) abort();
    if (rc == P2P_ENOMEM) {
        if (err || rq.method != ADMIN_RPC_NMETHODS) abort();
        return;
    }
    if ((rc == 0) != (err == NULL) || (rc != 0 && rc != P2P_EINVAL)) abort();
    if (err && rq.method != ADMIN_RPC_NMETHODS) abort();
    const char *m = json_string_value(json_object_get(req, "method"));
    if (!err) {
        const char *name = admin_rpc_method_name(rq.method);
        if (!json_is_object(req) || !name || !m || strcmp(name, m) != 0) abort();
        if (rq.method >= ADMIN_RPC_ADD_PEER) {
            const char *url = json_string_value(json_array_get(json_object_get(req, "params"), 0));
            p2p_node_t again;
            if (!url || p2p_node_parse(&again, url) != 0) abort();
            if (memcmp(again.id, rq.node.id, 32) != 0 ||
                memcmp(again.pubkey, rq.node.pubkey, 64) != 0)
                abort();
        }
        /* debug_trace: -1 (no params), 0 or 1, exactly as the params say */
        if (rq.method == ADMIN_RPC_DEBUG_TRACE) {
            json_t *p = json_object_get(req, "params");
            int want = !p || json_is_null(p) || (json_is_array(p) && json_array_size(p) == 0)
                           ? -1
                           : json_is_true(json_array_get(p, 0));
            if (rq.recording != want) abort();
        } else if (rq.recording != 0) {
            abort();
        }
        return;
    }
    json_t *e = json_object_get(err, "error");
    json_int_t code = json_integer_value(json_object_get(e, "code"));
    json_t *id = json_object_get(err, "id");
    if (!json_is_object(err) || !json_is_string(json_object_get(e, "message"))) abort();
    if (!json_equal(id, rq.id ? rq.id : json_null())) abort();
    if (code == -32600) {
        if (json_is_object(req) && m && !bad_id) abort();
    } else if (code == -32601) {
        if (!m || known_method(m)) abort();
    } else if (code == -32602) {
        /* a known method: the peer methods (a node URL) and debug_trace
         * (a boolean) for a wrong parameter; any method for params that
         * are not null or an array, or more than it takes */
        if (!m || !known_method(m)) abort();
        json_t *p = json_object_get(req, "params");
        bool takes = strcmp(m, "debug_trace") == 0 || strcmp(m, "admin_addPeer") == 0 ||
                     strcmp(m, "admin_removePeer") == 0 || strcmp(m, "admin_addTrustedPeer") == 0 ||
                     strcmp(m, "admin_removeTrustedPeer") == 0;
        bool extra = p && !json_is_null(p) && (!json_is_array(p) || json_array_size(p) > 0);
        if (!takes && !extra) abort();
    } else {
        abort();
    }
    json_decref(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > ADMIN_RPC_INPUT_MAX) return 0;
    /* the connection's buffer: exactly the received bytes */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    size_t len = size, off = 0;
    for (int k = 0; k < 4096 && off <= len; k++) {
        json_t *v;
        size_t used;
        int rc = admin_rpc_next(&v, &used, buf + off, len - off);
        if (used > len - off) abort();
        if (rc < 0) {
            if (v || used) abort();
            break;
        }
        if (rc == 0) {
            if (v) abort();
            const char *c = buf + off + used;
            if (off + used < len && (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')) abort();
            break;
        }
        if (!v || used == 0) abort();
        off += used;
        if (json_is_array(v)) {
            size_t i;
            json_t *r;
            json_array_foreach(v, i, r) check_request(r);
        } else {
            check_request(v);
        }
        json_decref(v);
    }
    /* the receive buffer's growth stays bounded */
    size_t cap = 0, have = 0;
    for (int k = 0; k < 16; k++) {
        size_t nc = admin_rpc_buf_cap(cap, have);
        if (nc == 0) break;
        if (nc > ADMIN_RPC_INPUT_MAX || nc < cap || nc - have < ADMIN_RPC_READ_MIN) abort();
        cap = nc;
        have = cap - (size % ADMIN_RPC_READ_MIN);
    }
    free(buf);
    return 0;
}
