/*
 * tools/http_req.h: the request-head parser of devp2pd's metrics endpoint
 * (tools/metrics_http.c), a pure function on the bytes received so far:
 * no I/O, no allocation, no state, callable from any thread.
 *
 * The head is untrusted network input.  It ends at the first blank line
 * ("\r\n\r\n" or "\n\n"); at most METRICS_HTTP_HEAD_MAX bytes; any NUL byte
 * is refused.  Only the request line is read: METHOD SP TARGET SP
 * HTTP/1.x, TARGET starting with '/', no further space; the path is the
 * target up to its first '?' or '#'.  Header fields are not interpreted.
 */
#ifndef P2P_TOOLS_HTTP_REQ_H
#define P2P_TOOLS_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define METRICS_HTTP_HEAD_MAX 4096

typedef struct http_req {
    const char *method; /* slices of the input buffer (not NUL-terminated) */
    size_t method_len;
    const char *target; /* the request target, query and fragment included */
    size_t target_len;
    size_t path_len;     /* the path: target[0, path_len), no '?' or '#' */
    const char *version; /* "HTTP/1.x", 8 bytes */
    size_t line_len;     /* the request line without its line end */
} http_req_t;

/* Parses the head in buf[0, len).  Returns 0 when more bytes are needed (no
 * blank line yet, len < METRICS_HTTP_HEAD_MAX), else the status to answer:
 * 400 (NUL byte, no blank line within METRICS_HTTP_HEAD_MAX bytes, len
 * over it, malformed request line), 405 (method other than GET and HEAD),
 * 404 (a path other than /metrics and /debug/metrics/prometheus), 200 (GET
 * or HEAD of one of them).  On 200, 404 and 405, *req holds the request
 * line's parts; on 0 and 400 it is zeroed. */
P2P_MUST_CHECK int http_req_parse(http_req_t *req, const char *buf, size_t len);
/* Whether req (parsed: 200, 404, 405) is a HEAD request, answered with the
 * head of the GET response and no body (RFC 9110 9.3.2). */
bool http_req_is_head(const http_req_t *req);

#endif
