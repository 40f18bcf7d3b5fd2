/*
 * tools/http_req.c: the metrics endpoint's request-head parser (see
 * http_req.h).  Pure: reads buf[0, len) only, with explicit bounds (the
 * input is not NUL-terminated); no allocation.
 */
#include "tools/http_req.h"

#include <string.h>

static const char *find_byte(const char *p, const char *end, char c)
{
    return p < end ? memchr(p, c, (size_t)(end - p)) : NULL;
}

/* "\r\n\r\n" or "\n\n" anywhere in buf[0, len) */
static int has_end_of_head(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n') return 1;
        if (i + 3 < len && memcmp(buf + i, "\r\n\r\n", 4) == 0) return 1;
    }
    return 0;
}

static int is_path(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

bool http_req_is_head(const http_req_t *req)
{
    return req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
}

int http_req_parse(http_req_t *req, const char *buf, size_t len)
{
    memset(req, 0, sizeof *req);
    if (len > METRICS_HTTP_HEAD_MAX || memchr(buf, 0, len)) return 400;
    if (!has_end_of_head(buf, len)) return len >= METRICS_HTTP_HEAD_MAX ? 400 : 0;
    /* request line: METHOD SP TARGET SP HTTP/1.x */
    size_t line_len = 0;
    while (line_len < len && buf[line_len] != '\r' && buf[line_len] != '\n') line_len++;
    const char *end = buf + line_len;
    const char *sp1 = find_byte(buf, end, ' ');
    const char *sp2 = sp1 ? find_byte(sp1 + 1, end, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == buf || sp2 == sp1 + 1 || sp1[1] != '/' || end - (sp2 + 1) != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] == ' ')
        return 400;
    http_req_t r = {
        .method = buf,
        .method_len = (size_t)(sp1 - buf),
        .target = sp1 + 1,
        .target_len = (size_t)(sp2 - (sp1 + 1)),
        .version = sp2 + 1,
        .line_len = line_len,
    };
    while (r.path_len < r.target_len && r.target[r.path_len] != '?' && r.target[r.path_len] != '#')
        r.path_len++;
    *req = r;
    /* HEAD too: every general-purpose server supports it (RFC 9110 9.1) */
    if (!http_req_is_head(&r) && (r.method_len != 3 || memcmp(r.method, "GET", 3) != 0)) return 405;
    if (!is_path(r.target, r.path_len, "/metrics") &&
        !is_path(r.target, r.path_len, "/debug/metrics/prometheus"))
        return 404;
    return 200;
}
