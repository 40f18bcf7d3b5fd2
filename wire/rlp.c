/*
 * wire/rlp.c: Recursive Length Prefix encoder and canonical decoder.
 *
 * Encoder: appends into the caller's buffer.  A list reserves one header
 * byte when opened; on close, if the payload needs a longer header (>= 56
 * bytes), the payload is moved right to make room (one memmove per long
 * list).  The first error (buffer too small, too many open lists, closing
 * a list that is not open) is sticky and reported by p2p_rlp_enc_finish;
 * after an error every call is a no-op.
 *
 * Decoder: a bounded cursor (p, end).  Each read parses one header, checks
 * that the header and payload fit before end, and enforces the canonical
 * form (see wire/rlp.h).  On any error the cursor is left unchanged.  No
 * allocation, no recursion except in p2p_rlp_validate (bounded by
 * P2P_RLP_MAX_DEPTH).
 *
 * Limits: nesting P2P_RLP_MAX_DEPTH (32) in both directions; lengths up to
 * SIZE_MAX (a declared length longer than the input is P2P_EMORE).
 *
 * Thread-safety: cursors and encoders belong to their caller's thread; the
 * functions keep no global state and may be called from any thread.
 */
#include "wire/rlp.h"

#include <string.h>

/* ---- encoder ---- */

void p2p_rlp_enc_init(p2p_rlp_enc_t *e, uint8_t *buf, size_t cap)
{
    e->buf = buf;
    e->cap = buf ? cap : 0;
    e->len = 0;
    e->err = 0;
    e->depth = 0;
}

/* Number of big-endian bytes needed for v (v > 0). */
static inline unsigned be_len(uint64_t v)
{
    unsigned n = 0;
    while (v) {
        n++;
        v >>= 8;
    }
    return n;
}

static inline void put_be(uint8_t *out, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

size_t p2p_rlp_header_len(size_t n)
{
    return n < 56 ? 1 : 1 + be_len((uint64_t)n);
}

/* Writes a header with base 0x80 (string) or 0xc0 (list); returns length. */
static size_t put_header(uint8_t *out, uint8_t base, size_t n)
{
    if (n < 56) {
        out[0] = (uint8_t)(base + n);
        return 1;
    }
    unsigned ll = be_len((uint64_t)n);
    out[0] = (uint8_t)(base + 55 + ll);
    put_be(out + 1, (uint64_t)n, ll);
    return 1 + ll;
}

size_t p2p_rlp_put_list_header(uint8_t *out, size_t n)
{
    return put_header(out, 0xc0, n);
}

/* Reserves n bytes at the end; returns a pointer or NULL (sets err). */
static uint8_t *reserve(p2p_rlp_enc_t *e, size_t n)
{
    if (e->err) return NULL;
    if (n > e->cap - e->len) {
        e->err = P2P_ETOOBIG;
        return NULL;
    }
    uint8_t *p = e->buf + e->len;
    e->len += n;
    return p;
}

void p2p_rlp_put_bytes(p2p_rlp_enc_t *e, const uint8_t *p, size_t n)
{
    if (e->err) return;
    if (n == 1 && p[0] < 0x80) {
        uint8_t *o = reserve(e, 1);
        if (o) o[0] = p[0];
        return;
    }
    size_t hl = p2p_rlp_header_len(n);
    if (n > SIZE_MAX - hl) {
        e->err = P2P_ETOOBIG;
        return;
    }
    uint8_t *o = reserve(e, hl + n);
    if (!o) return;
    put_header(o, 0x80, n);
    if (n) memcpy(o + hl, p, n);
}

void p2p_rlp_put_str(p2p_rlp_enc_t *e, const char *s)
{
    p2p_rlp_put_bytes(e, (const uint8_t *)s, strlen(s));
}

void p2p_rlp_put_uint(p2p_rlp_enc_t *e, uint64_t v)
{
    if (e->err) return;
    if (v < 0x80) {
        uint8_t *o = reserve(e, 1);
        if (o) o[0] = v ? (uint8_t)v : 0x80;
        return;
    }
    unsigned n = be_len(v);
    uint8_t *o = reserve(e, 1 + n);
    if (!o) return;
    o[0] = (uint8_t)(0x80 + n);
    put_be(o + 1, v, n);
}

void p2p_rlp_put_raw(p2p_rlp_enc_t *e, const uint8_t *p, size_t n)
{
    uint8_t *o = reserve(e, n);
    if (o && n) memcpy(o, p, n);
}

void p2p_rlp_list_begin(p2p_rlp_enc_t *e)
{
    if (e->err) return;
    if (e->depth >= P2P_RLP_MAX_DEPTH) {
        e->err = P2P_ETOOBIG;
        return;
    }
    if (!reserve(e, 1)) return;
    e->open[e->depth++] = e->len;
}

void p2p_rlp_list_end(p2p_rlp_enc_t *e)
{
    if (e->err) return;
    if (e->depth <= 0) {
        e->err = P2P_ESTATE;
        return;
    }
    size_t start = e->open[--e->depth];
    size_t n = e->len - start;
    size_t hl = p2p_rlp_header_len(n);
    if (hl > 1) {
        size_t extra = hl - 1;
        if (!reserve(e, extra)) return;
        memmove(e->buf + start + extra, e->buf + start, n);
    }
    put_header(e->buf + start - 1, 0xc0, n);
}

int p2p_rlp_enc_finish(p2p_rlp_enc_t *e, size_t *len)
{
    if (e->err) return e->err;
    if (e->depth != 0) return P2P_ESTATE;
    if (len) *len = e->len;
    return 0;
}

/* ---- decoder ---- */

void p2p_rlp_init(p2p_rlp_t *c, const uint8_t *buf, size_t len)
{
    c->p = buf;
    c->end = buf ? buf + len : buf;
    c->depth = 0;
}

bool p2p_rlp_done(const p2p_rlp_t *c)
{
    return c->p >= c->end;
}

/* Parses the item at c->p without moving the cursor. */
static int peek(const p2p_rlp_t *c, p2p_rlp_item_t *it)
{
    const uint8_t *p = c->p;
    size_t avail = (size_t)(c->end - p);
    if (avail == 0) return P2P_EEMPTY;
    uint8_t b = p[0];
    size_t hl, n;
    if (b < 0x80) {
        it->kind = P2P_RLP_BYTES;
        it->payload = p;
        it->len = 1;
        it->raw = p;
        it->rawlen = 1;
        return 0;
    }
    it->kind = b < 0xc0 ? P2P_RLP_BYTES : P2P_RLP_LIST;
    uint8_t off = b - (b < 0xc0 ? 0x80 : 0xc0); /* 0..63 */
    if (off < 56) {
        hl = 1;
        n = off;
    } else {
        unsigned ll = off - 55u; /* 1..8 */
        if (avail - 1 < ll) return P2P_EMORE;
        if (p[1] == 0) return P2P_ENONCANON;
        uint64_t v = 0;
        for (unsigned i = 0; i < ll; i++) v = v << 8 | p[1 + i];
        if (v < 56) return P2P_ENONCANON;
        hl = 1 + ll;
        if (v > (uint64_t)(avail - hl)) return P2P_EMORE;
        n = (size_t)v;
    }
    if (n > avail - hl) return P2P_EMORE;
    if (it->kind == P2P_RLP_BYTES && n == 1 && p[1] < 0x80) return P2P_ENONCANON;
    it->payload = p + hl;
    it->len = n;
    it->raw = p;
    it->rawlen = hl + n;
    return 0;
}

int p2p_rlp_next(p2p_rlp_t *c, p2p_rlp_item_t *it)
{
    int rc = peek(c, it);
    if (rc) return rc;
    c->p += it->rawlen;
    return 0;
}

int p2p_rlp_enter(p2p_rlp_t *c, p2p_rlp_t *inner)
{
    p2p_rlp_item_t it;
    int rc = peek(c, &it);
    if (rc) return rc;
    if (it.kind != P2P_RLP_LIST) return P2P_EDECODE;
    if (c->depth >= P2P_RLP_MAX_DEPTH) return P2P_ETOOBIG;
    c->p += it.rawlen;
    inner->p = it.payload;
    inner->end = it.payload + it.len;
    inner->depth = c->depth + 1;
    return 0;
}

int p2p_rlp_bytes(p2p_rlp_t *c, const uint8_t **p, size_t *n)
{
    p2p_rlp_item_t it;
    int rc = peek(c, &it);
    if (rc) return rc;
    if (it.kind != P2P_RLP_BYTES) return P2P_EDECODE;
    c->p += it.rawlen;
    *p = it.payload;
    *n = it.len;
    return 0;
}

int p2p_rlp_fixed(p2p_rlp_t *c, uint8_t *out, size_t n)
{
    p2p_rlp_item_t it;
    int rc = peek(c, &it);
    if (rc) return rc;
    if (it.kind != P2P_RLP_BYTES || it.len != n) return P2P_EDECODE;
    c->p += it.rawlen;
    if (n) memcpy(out, it.payload, n);
    return 0;
}

int p2p_rlp_uint(p2p_rlp_t *c, uint64_t *v)
{
    p2p_rlp_item_t it;
    int rc = peek(c, &it);
    if (rc) return rc;
    if (it.kind != P2P_RLP_BYTES) return P2P_EDECODE;
    if (it.len > 8) return P2P_ERANGE;
    if (it.len > 0 && it.payload[0] == 0) return P2P_ENONCANON;
    uint64_t x = 0;
    for (size_t i = 0; i < it.len; i++) x = x << 8 | it.payload[i];
    c->p += it.rawlen;
    *v = x;
    return 0;
}

int p2p_rlp_uint_max(p2p_rlp_t *c, uint64_t *v, uint64_t max)
{
    p2p_rlp_t save = *c;
    uint64_t x;
    int rc = p2p_rlp_uint(c, &x);
    if (rc) return rc;
    if (x > max) {
        *c = save;
        return P2P_ERANGE;
    }
    *v = x;
    return 0;
}

int p2p_rlp_skip(p2p_rlp_t *c)
{
    p2p_rlp_item_t it;
    return p2p_rlp_next(c, &it);
}

/* Validates every item of c until its end, recursively. */
static int validate_seq(p2p_rlp_t *c)
{
    while (!p2p_rlp_done(c)) {
        p2p_rlp_item_t it;
        int rc = peek(c, &it);
        if (rc) return rc;
        if (it.kind == P2P_RLP_LIST) {
            p2p_rlp_t in;
            rc = p2p_rlp_enter(c, &in);
            if (rc) return rc;
            rc = validate_seq(&in);
            if (rc) return rc;
        } else {
            c->p += it.rawlen;
        }
    }
    return 0;
}

int p2p_rlp_validate(const uint8_t *buf, size_t len)
{
    p2p_rlp_t c;
    p2p_rlp_init(&c, buf, len);
    p2p_rlp_item_t it;
    int rc = peek(&c, &it);
    if (rc) return rc;
    if (it.rawlen != len) return P2P_EDECODE;
    p2p_rlp_t one = c;
    one.end = c.p + it.rawlen;
    return validate_seq(&one);
}
