/*
 * tools/admin_req.c: the admin socket's request decoding (see
 * admin_req.h): framing of a connection's input into JSON values and the
 * validation of each request.  Pure; the caller owns every buffer.
 */
#include "tools/admin_req.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"
#include "tools/json_stream.h"
#include "wire/enode.h"

static const char *const method_names[ADMIN_RPC_NMETHODS] = {
    [ADMIN_RPC_NODE_INFO] = "admin_nodeInfo",
    [ADMIN_RPC_PEERS] = "admin_peers",
    [ADMIN_RPC_DISCV4_TABLE] = "discv4_table",
    [ADMIN_RPC_METRICS] = "admin_metrics",
    [ADMIN_RPC_DEBUG_TRACE] = "debug_trace",
    [ADMIN_RPC_ADD_PEER] = "admin_addPeer",
    [ADMIN_RPC_REMOVE_PEER] = "admin_removePeer",
    [ADMIN_RPC_ADD_TRUSTED] = "admin_addTrustedPeer",
    [ADMIN_RPC_REMOVE_TRUSTED] = "admin_removeTrustedPeer",
};

const char *admin_rpc_method_name(admin_rpc_method_t m)
{
    return (unsigned)m < ADMIN_RPC_NMETHODS ? method_names[m] : NULL;
}

size_t admin_rpc_buf_cap(size_t cap, size_t len)
{
    if (cap - len >= ADMIN_RPC_READ_MIN) return cap;
    size_t nc = cap ? cap * 2 : 8192;
    return nc > ADMIN_RPC_INPUT_MAX ? 0 : nc;
}

int admin_rpc_next(json_t **val, size_t *used, const char *buf, size_t len)
{
    *val = NULL;
    size_t skip = 0;
    while (skip < len &&
           (buf[skip] == ' ' || buf[skip] == '\n' || buf[skip] == '\r' || buf[skip] == '\t'))
        skip++;
    *used = skip;
    if (skip == len) return 0;
    size_t rest = len - skip;
    json_error_t je;
    json_t *v = json_loadb(buf + skip, rest, JSON_DISABLE_EOF_CHECK, &je);
    /* jansson reports an allocation failure of its lexer as a syntax
     * error near the token, and others with no error at all: a value that
     * does not decode (and is not cut short) is decoded once more */
    if (!v && !json_stream_cut(buf + skip, rest, &je))
        v = json_loadb(buf + skip, rest, JSON_DISABLE_EOF_CHECK, &je);
    if (!v) {
        /* no error recorded (line -1, no text): out of memory, which is
         * neither the client's syntax error nor a wait for more bytes.
         * Tested first: json_loadb sets the code byte json_error_code
         * reads only with an error, so without one it is uninitialised. */
        if ((je.line < 0 && !je.text[0]) || json_error_code(&je) == json_error_out_of_memory) {
            *used = 0;
            return P2P_ENOMEM;
        }
        /* cut short by the end of what was received (also inside a
         * character: a read can end between a UTF-8 sequence's bytes) */
        if (json_stream_cut(buf + skip, rest, &je)) return 0;
        *used = 0;
        return -1;
    }
    size_t n = je.position < 0 ? 0 : (size_t)je.position > rest ? rest : (size_t)je.position;
    if (n == 0) n = rest; /* jansson always reads a value's last byte */
    *val = v;
    *used = skip + n;
    return 1;
}

json_t *admin_rpc_error(json_t *id, int code, const char *msg)
{
    return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                     "error", "code", code, "message", msg);
}

bool admin_rpc_is_notification(json_t *req)
{
    return json_is_object(req) && json_is_string(json_object_get(req, "method")) &&
           json_object_get(req, "id") == NULL;
}

/* Parses params[0] as a node URL.  Returns 0 or -1 with *err. */
static int param_node(json_t *params, p2p_node_t *n, const char **err, bool need_addr,
                      unsigned family)
{
    json_t *v = json_is_array(params) ? json_array_get(params, 0) : NULL;
    const char *s = json_string_value(v);
    if (!s) {
        *err = "want one parameter: an enode URL";
        return -1;
    }
    const char *why = NULL;
    if (p2p_node_parse_for(n, s, family, &why) != 0) {
        *err = why ? why : "invalid enode";
        return -1;
    }
    if (need_addr && n->ep.ip.family == 0) {
        *err = "the node has no IP address";
        return -1;
    }
    return 0;
}

/* debug_trace's params: none (absent, null, []) or [bool].  Returns -1
 * (report), 0, 1, or -2 when invalid. */
static int param_recording(json_t *params)
{
    if (!params || json_is_null(params) || (json_is_array(params) && json_array_size(params) == 0))
        return -1;
    json_t *v =
        json_is_array(params) && json_array_size(params) == 1 ? json_array_get(params, 0) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : -2;
}

int admin_rpc_decode(admin_rpc_req_t *out, json_t **reply, json_t *req, unsigned family)
{
    memset(out, 0, sizeof *out);
    out->method = ADMIN_RPC_NMETHODS; /* nothing runs unless set below */
    json_t *id = json_object_get(req, "id");
    if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id)) {
        /* JSON-RPC 2.0: an id is a string, a number or null; one that is
         * not cannot be echoed (the answer's id is null) */
        *reply =
            admin_rpc_error(NULL, -32600, "invalid request: id must be a string, number or null");
        return *reply ? P2P_EINVAL : P2P_ENOMEM;
    }
    out->id = id;
    const char *m = json_string_value(json_object_get(req, "method"));
    if (!json_is_object(req) || !m) {
        *reply = admin_rpc_error(out->id, -32600, "invalid request");
        return *reply ? P2P_EINVAL : P2P_ENOMEM;
    }
    unsigned k = 0;
    while (k < ADMIN_RPC_NMETHODS && strcmp(m, method_names[k]) != 0) k++;
    if (k == ADMIN_RPC_NMETHODS) {
        /* at most 100 bytes of the name, cut on a character boundary: the
         * message must stay valid UTF-8 to be encoded */
        char name[101], msg[160];
        p2p_utf8_clean(name, sizeof name, m, strlen(m));
        snprintf(msg, sizeof msg, "the method %s does not exist/is not available", name);
        *reply = admin_rpc_error(out->id, -32601, msg);
        return *reply ? P2P_EINVAL : P2P_ENOMEM;
    }
    /* params: absent, null or an array of at most the method's count (one
     * for the peer methods and debug_trace, none for the others), as geth
     * answers ("non-array args", "too many arguments") */
    json_t *params = json_object_get(req, "params");
    size_t most = k >= ADMIN_RPC_DEBUG_TRACE ? 1 : 0;
    if (params && !json_is_null(params) &&
        (!json_is_array(params) || json_array_size(params) > most)) {
        char msg[64];
        if (json_is_array(params))
            snprintf(msg, sizeof msg, "too many arguments, want at most %zu", most);
        else
            snprintf(msg, sizeof msg, "non-array args");
        *reply = admin_rpc_error(out->id, -32602, msg);
        return *reply ? P2P_EINVAL : P2P_ENOMEM;
    }
    if (k >= ADMIN_RPC_ADD_PEER) {
        const char *err = NULL;
        p2p_node_t node;
        if (param_node(json_object_get(req, "params"), &node, &err, false, family) != 0) {
            *reply = admin_rpc_error(out->id, -32602, err);
            return *reply ? P2P_EINVAL : P2P_ENOMEM;
        }
        out->node = node;
    }
    if (k == ADMIN_RPC_DEBUG_TRACE) {
        out->recording = param_recording(json_object_get(req, "params"));
        if (out->recording == -2) {
            *reply = admin_rpc_error(out->id, -32602, "want no parameter, true or false");
            return *reply ? P2P_EINVAL : P2P_ENOMEM;
        }
    }
    out->method = (admin_rpc_method_t)k;
    *reply = NULL;
    return 0;
}
