/*
 * wire/enode.c: enode URL parsing and formatting (see wire/enode.h).
 *
 * The parser walks the string with explicit bounds: scheme, 128 hex digits,
 * then optionally "@host:port" and a query.  The input is capped at
 * P2P_ENODE_MAX_INPUT bytes before anything else.  No allocation.
 *
 * Thread-safety: pure functions; any thread.
 */
#include "wire/enode.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/enr.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes exactly 128 hex digits at s into pub[64]. */
static int parse_key(uint8_t pub[64], const char *s, size_t n)
{
    if (n != 128) return P2P_EINVAL;
    for (size_t i = 0; i < 64; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        if (h < 0 || l < 0) return P2P_EINVAL;
        pub[i] = (uint8_t)(h << 4 | l);
    }
    return 0;
}

/* Parses a decimal port, <= 65535, s[0..n): one or more digits, leading
 * zeros allowed (as the reference client's integer parser allows them). */
static int parse_port(uint16_t *port, const char *s, size_t n)
{
    if (n == 0) return P2P_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return P2P_EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > 65535) return P2P_EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

/* Sets *why (if why is not NULL) and returns rc. */
static int fail(const char **why, const char *phrase, int rc)
{
    if (why) *why = phrase;
    return rc;
}

/* Host part s[0..n): IPv4 literal, or [IPv6 literal]. */
static int parse_host(p2p_ip_t *ip, const char *s, size_t n, const char **why)
{
    char buf[64];
    if (n == 0) return fail(why, "no host before the port", P2P_EINVAL);
    bool bracket = s[0] == '[';
    if (bracket) {
        if (n < 3 || s[n - 1] != ']') return fail(why, "unclosed '[' in the host", P2P_EINVAL);
        s++;
        n -= 2;
        if (!memchr(s, ':', n)) return fail(why, "brackets hold an IPv6 address only", P2P_EINVAL);
    }
    if (n >= sizeof buf) return fail(why, "host too long", P2P_EINVAL);
    memcpy(buf, s, n);
    buf[n] = 0;
    if (!bracket && memchr(s, ':', n))
        return fail(why, "an IPv6 address needs brackets: [addr]:port", P2P_EINVAL);
    if (p2p_ip_parse(ip, buf) == 0) return 0;
    if (bracket) return fail(why, "invalid IPv6 address", P2P_EINVAL);
    /* A host name: letters, digits, '-', '.' only; we do not resolve names. */
    bool alpha = false;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        bool ok = (c >= '0' && c <= '9') || c == '-' || c == '.';
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) ok = alpha = true;
        if (!ok) return fail(why, "invalid host", P2P_EINVAL);
    }
    return alpha ? fail(why, "host names are not resolved: give an IP address", P2P_EUNSUPPORTED)
                 : fail(why, "invalid IPv4 address", P2P_EINVAL);
}

/* Query s[0..n) (after '?'): '&'-separated; only discport is read.  As in
 * the reference client, the first discport counts and an empty one means
 * "same as the TCP port". */
static int parse_query(uint16_t *udp, bool *has, const char *s, size_t n, const char **why)
{
    while (n) {
        const char *amp = memchr(s, '&', n);
        size_t len = amp ? (size_t)(amp - s) : n;
        if ((len == 8 && memcmp(s, "discport", 8) == 0) ||
            (len >= 9 && memcmp(s, "discport=", 9) == 0)) {
            if (len <= 9) return 0;
            int rc = parse_port(udp, s + 9, len - 9);
            if (rc) return fail(why, "invalid discport (0-65535)", rc);
            *has = true;
            return 0;
        }
        if (!amp) break;
        s += len + 1;
        n -= len + 1;
    }
    return 0;
}

static int enode_parse(p2p_node_t *n, const char *s, const char **why)
{
    memset(n, 0, sizeof *n);
    if (why) *why = NULL;
    size_t len = strnlen(s, P2P_ENODE_MAX_INPUT + 1);
    if (len > P2P_ENODE_MAX_INPUT) return fail(why, "longer than 512 bytes", P2P_EINVAL);
    int rc;
    if (strncasecmp(s, "enode://", 8) != 0) {
        /* bare key */
        rc = parse_key(n->pubkey, s, len);
        if (rc)
            return fail(why, "not an enode URL (enode://KEY@IP:PORT) or a key of 128 hex digits",
                        rc);
    } else {
        s += 8;
        len -= 8;
        const char *at = memchr(s, '@', len);
        size_t klen = at ? (size_t)(at - s) : len;
        rc = parse_key(n->pubkey, s, klen);
        if (rc) return fail(why, "the key must be 128 hex digits", rc);
        if (at) {
            const char *h = at + 1;
            size_t hlen = len - klen - 1;
            /* a fragment is ignored, as URL parsers do */
            const char *frag = memchr(h, '#', hlen);
            if (frag) hlen = (size_t)(frag - h);
            const char *q = memchr(h, '?', hlen);
            size_t qlen = 0;
            if (q) {
                qlen = hlen - (size_t)(q - h) - 1;
                hlen = (size_t)(q - h);
            }
            /* an empty path ("ip:port/") is accepted, as by URL parsers */
            if (hlen > 0 && h[hlen - 1] == '/') hlen--;
            /* the port follows the last ':' (after ']' for IPv6) */
            const char *colon = NULL;
            for (size_t i = hlen; i > 0; i--) {
                if (h[i - 1] == ':') {
                    colon = h + i - 1;
                    break;
                }
                if (h[i - 1] == ']') break;
            }
            if (!colon) return fail(why, "no port: enode://KEY@IP:PORT", P2P_EINVAL);
            rc = parse_host(&n->ep.ip, h, (size_t)(colon - h), why);
            if (rc) return rc;
            rc = parse_port(&n->ep.tcp, colon + 1, hlen - (size_t)(colon - h) - 1);
            if (rc) return fail(why, "invalid port (0-65535)", rc);
            n->ep.udp = n->ep.tcp;
            bool has = false;
            if (q) rc = parse_query(&n->ep.udp, &has, q + 1, qlen, why);
            if (rc) return rc;
        }
    }
    if (p2p_secp_pubkey_check(n->pubkey) != 0)
        return fail(why, "the key is not a point on secp256k1", P2P_EBADKEY);
    p2p_node_id(n->id, n->pubkey);
    return 0;
}

int p2p_enode_parse(p2p_node_t *n, const char *s)
{
    return enode_parse(n, s, NULL);
}

int p2p_enode_format(char *out, size_t cap, const p2p_node_t *n)
{
    char buf[P2P_ENODE_MAX_TEXT];
    size_t len = 0;
    memcpy(buf, "enode://", 8);
    len = 8;
    p2p_hex_encode(buf + len, n->pubkey, 64);
    len += 128;
    if (n->ep.ip.family == 4 || n->ep.ip.family == 6) {
        char ip[P2P_IP_STRLEN];
        p2p_ip_format(ip, &n->ep.ip);
        int w;
        if (n->ep.ip.family == 6)
            w = snprintf(buf + len, sizeof buf - len, "@[%s]:%u", ip, n->ep.tcp);
        else
            w = snprintf(buf + len, sizeof buf - len, "@%s:%u", ip, n->ep.tcp);
        if (w < 0 || (size_t)w >= sizeof buf - len) return P2P_ETOOBIG;
        len += (size_t)w;
        if (n->ep.udp != n->ep.tcp) {
            w = snprintf(buf + len, sizeof buf - len, "?discport=%u", n->ep.udp);
            if (w < 0 || (size_t)w >= sizeof buf - len) return P2P_ETOOBIG;
            len += (size_t)w;
        }
    }
    if (len + 1 > cap) return P2P_ETOOBIG;
    memcpy(out, buf, len);
    out[len] = 0;
    return 0;
}

int p2p_node_parse_why(p2p_node_t *n, const char *s, const char **why)
{
    return p2p_node_parse_for(n, s, 0, why);
}

int p2p_node_parse_for(p2p_node_t *n, const char *s, unsigned family, const char **why)
{
    if (strncmp(s, "enr:", 4) == 0) {
        p2p_enr_t r;
        memset(n, 0, sizeof *n);
        if (why) *why = NULL;
        int rc = p2p_enr_from_text(&r, s);
        if (rc == P2P_EBADSIG) return fail(why, "the record's signature does not verify", rc);
        if (rc == P2P_EBADKEY) return fail(why, "the record's secp256k1 key is invalid", rc);
        if (rc == P2P_EUNSUPPORTED) return fail(why, "identity scheme other than v4", rc);
        if (rc == P2P_ETOOBIG) return fail(why, "record over 300 bytes", rc);
        if (rc) return fail(why, "not a valid record (base64url, RLP, sorted keys)", rc);
        rc = p2p_enr_to_node_for(n, &r, family);
        if (rc) return fail(why, "the record has no valid secp256k1 key", rc);
        return 0;
    }
    return enode_parse(n, s, why);
}

int p2p_node_parse(p2p_node_t *n, const char *s)
{
    return p2p_node_parse_why(n, s, NULL);
}
