/*
 * tests/fuzz/fuzz_metrics_http.c: libFuzzer target for the metrics
 * endpoint's request-head parser (tools/http_req.c, http_req_parse), the
 * first thing devp2pd's HTTP listener does with a client's bytes.
 *
 * The input is the bytes received, fed whole and in the pieces a reader
 * would see (every prefix up to the first final answer, as serve() calls
 * the parser after each recv).  Properties: no crash or read outside the
 * input; the status is 0, 200, 400, 404 or 405; inputs over
 * METRICS_HTTP_HEAD_MAX or holding a NUL are 400; "more" (0) for the whole
 * input means "more" for every prefix; on 200/404/405 the method, target
 * and version are slices of the request line that rebuild it byte for
 * byte (METHOD SP TARGET SP VERSION), the path is a prefix of the target
 * starting with '/' and without '?' or '#', 200 exactly for GET or HEAD of
 * the two metrics paths (http_req_is_head telling HEAD); the status equals a reference model
 * written on NUL-terminated strings (the parser as serve() had it inline).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The request handling as a string-based reference: the head in s (no NUL
 * inside, at most METRICS_HTTP_HEAD_MAX bytes). */
static int reference(const char *data, size_t len)
{
    char req[METRICS_HTTP_HEAD_MAX + 1];
    memcpy(req, data, len);
    req[len] = 0;
    if (memchr(req, 0, len)) return 400;
    if (!strstr(req, "\r\n\r\n") && !strstr(req, "\n\n"))
        return len >= METRICS_HTTP_HEAD_MAX ? 400 : 0;
    size_t line_len = strcspn(req, "\r\n");
    req[line_len] = 0;
    char *sp1 = strchr(req, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == req || sp2 == sp1 + 1 || sp1[1] != '/' || strchr(sp2 + 1, ' ') ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || !sp2[8] || sp2[9])
        return 400;
    *sp1 = 0;
    *sp2 = 0;
    char *path = sp1 + 1;
    path[strcspn(path, "?#")] = 0;
    if (strcmp(req, "GET") != 0 && strcmp(req, "HEAD") != 0) return 405;
    if (strcmp(path, "/metrics") != 0 && strcmp(path, "/debug/metrics/prometheus") != 0) return 404;
    return 200;
}

static int within(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

static int check(const char *buf, size_t len)
{
    http_req_t r;
    int st = http_req_parse(&r, buf, len);
    if (st != 0 && st != 200 && st != 400 && st != 404 && st != 405) abort();
    if ((len > METRICS_HTTP_HEAD_MAX || memchr(buf, 0, len)) && st != 400) abort();
    if (st == 0 || st == 400) {
        if (r.method || r.target || r.version || r.line_len) abort();
        if (len <= METRICS_HTTP_HEAD_MAX && reference(buf, len) != st) abort();
        return st;
    }
    if (r.method != buf || r.method_len == 0 || r.line_len > len) abort();
    if (!within(r.target, r.target_len, buf, r.line_len) || !within(r.version, 8, buf, r.line_len))
        abort();
    if (r.line_len != r.method_len + 1 + r.target_len + 1 + 8) abort();
    if (buf[r.method_len] != ' ' || r.target != buf + r.method_len + 1 ||
        r.target[r.target_len] != ' ' || r.version != r.target + r.target_len + 1)
        abort();
    if (memchr(buf, '\r', r.line_len) || memchr(buf, '\n', r.line_len)) abort();
    if (r.line_len < len && buf[r.line_len] != '\r' && buf[r.line_len] != '\n') abort();
    if (memchr(r.method, ' ', r.method_len) || memchr(r.target, ' ', r.target_len) ||
        memchr(r.version, ' ', 8) || memcmp(r.version, "HTTP/1.", 7) != 0)
        abort();
    if (r.path_len == 0 || r.path_len > r.target_len || r.target[0] != '/') abort();
    if (memchr(r.target, '?', r.path_len) || memchr(r.target, '#', r.path_len)) abort();
    if (r.path_len < r.target_len && r.target[r.path_len] != '?' && r.target[r.path_len] != '#')
        abort();
    int get = (r.method_len == 3 && memcmp(r.method, "GET", 3) == 0) ||
              (r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0);
    if (http_req_is_head(&r) != (r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0)) abort();
    int known = (r.path_len == 8 && memcmp(r.target, "/metrics", 8) == 0) ||
                (r.path_len == 25 && memcmp(r.target, "/debug/metrics/prometheus", 25) == 0);
    if (st != (!get ? 405 : known ? 200 : 404)) abort();
    if (reference(buf, len) != st) abort();
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan sees any read past the input */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    int whole = check(buf, size);
    /* the prefixes a reader sees: stop at the first final answer */
    for (size_t n = 0; n < size && n <= METRICS_HTTP_HEAD_MAX; n++) {
        int st = check(buf, n);
        if (whole == 0 && st != 0) abort();
        if (st != 0) break;
    }
    free(buf);
    return 0;
}
