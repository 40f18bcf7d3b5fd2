/*
 * tools/admin_req.h: the request decoding of devp2pd's admin JSON-RPC
 * socket (tools/admin_rpc.c), without a running server: pure functions on
 * a connection's received bytes and on parsed requests.  No I/O, no state;
 * callable from any thread (jansson's reference counting is per value).
 *
 * The input is untrusted: a stream of JSON values on each connection
 * (separated by whitespace or not), each a request object or a batch
 * (array) of them (a scalar at the top level is a syntax error; an empty
 * batch, or one of more than ADMIN_RPC_BATCH_MAX elements, is answered
 * with one -32600 error and none of it runs), held in at most
 * ADMIN_RPC_INPUT_MAX bytes.  A request needs an object with a string "method"; "id" (a string,
 * number or null, echoed) and "params" are optional ("jsonrpc" is not checked).  The peer methods
 * want params[0], a node URL (p2p_node_parse: enode://, enr: or bare hex), with or without an
 * address (admin_addPeer: resolved through discovery, which the node must run); debug_trace wants
 * no params (an absent member, null or []) or [true|false].
 */
#ifndef P2P_TOOLS_ADMIN_REQ_H
#define P2P_TOOLS_ADMIN_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/err.h"
#include "wire/node.h"

#define ADMIN_RPC_INPUT_MAX (1u << 20)
#define ADMIN_RPC_READ_MIN 4096u /* free bytes wanted before each read */
/* requests in one batch: its answers are built in memory before they are
 * sent (1 MiB of small requests would otherwise be ~30000 answers,
 * hundreds of MiB, on the admin thread in one go) */
#define ADMIN_RPC_BATCH_MAX 100

typedef enum admin_rpc_method {
    ADMIN_RPC_NODE_INFO,
    ADMIN_RPC_PEERS,
    ADMIN_RPC_DISCV4_TABLE,
    ADMIN_RPC_METRICS,
    ADMIN_RPC_DEBUG_TRACE,
    ADMIN_RPC_ADD_PEER, /* from here on: the peer methods (a node URL parameter) */
    ADMIN_RPC_REMOVE_PEER,
    ADMIN_RPC_ADD_TRUSTED,
    ADMIN_RPC_REMOVE_TRUSTED,
    ADMIN_RPC_NMETHODS
} admin_rpc_method_t;

typedef struct admin_rpc_req {
    json_t *id; /* borrowed from the request; NULL when absent */
    admin_rpc_method_t method;
    p2p_node_t node; /* the peer methods' parameter */
    int recording;   /* debug_trace: -1 (no parameter: report), 0 (pause) or 1 (resume) */
} admin_rpc_req_t;

/* The method's JSON-RPC name ("admin_nodeInfo"...); NULL out of range. */
const char *admin_rpc_method_name(admin_rpc_method_t m);

/* The receive buffer's capacity for the next read of a connection holding
 * len bytes in cap: cap when at least ADMIN_RPC_READ_MIN bytes are free,
 * else doubled (8192 the first time); 0 when that would pass
 * ADMIN_RPC_INPUT_MAX (the connection is answered -32600, then closed). */
size_t admin_rpc_buf_cap(size_t cap, size_t len);

/* Decodes the next JSON value of buf[0, len), after leading whitespace
 * (space, tab, CR, LF).  Returns 1 with *val (a new reference the caller
 * releases) and *used (the bytes it took, whitespace included, > 0); 0
 * when buf holds only whitespace or an incomplete value (*val NULL, *used
 * the leading whitespace, which may be dropped); -1 on a JSON syntax error
 * (*val NULL, *used 0: answered -32700, then the connection is closed);
 * P2P_ENOMEM when the decoder ran out of memory (*val NULL, *used 0:
 * answered -32603, then the connection is closed). */
P2P_MUST_CHECK int admin_rpc_next(json_t **val, size_t *used, const char *buf, size_t len);

/* An error response {"jsonrpc":"2.0","id":id|null,"error":{code,message}}
 * (a new reference; NULL when out of memory). */
json_t *admin_rpc_error(json_t *id, int code, const char *msg);

/* Whether req is a JSON-RPC 2.0 notification: an object with a string
 * "method" and no "id" member ("id": null is not one).  It is executed
 * but never answered, not even with an error; in a batch its response is
 * left out, and a batch of notifications gets no reply at all. */
bool admin_rpc_is_notification(json_t *req);

/* Validates one request value (an element of a batch or a whole value).
 * Returns 0 when the request is to be executed: *out filled, *reply NULL.
 * Else out->method is ADMIN_RPC_NMETHODS and the result is P2P_EINVAL with
 * *reply the error response to send (a new reference): -32600 (not an
 * object, no string method, or an "id" that is not a string, number or
 * null: answered with id null and out->id NULL), -32601 (unknown method, named in the
 * message: at most 100 bytes of it, whole characters), -32602 (params
 * neither null nor an array, or with more elements than the method takes:
 * one for the peer methods and debug_trace, none for the others; a peer
 * method without a valid node URL; debug_trace with params other than
 * none or one boolean); or P2P_ENOMEM with *reply NULL when
 * that response could not be built.  out->id is set either way.  family:
 * the address family the node's sockets reach (p2p_ip_reach_family; 0:
 * both), which a record naming an IPv4 and an IPv6 address gives. */
P2P_MUST_CHECK int admin_rpc_decode(admin_rpc_req_t *out, json_t **reply, json_t *req,
                                    unsigned family);

#endif
