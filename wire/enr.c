/*
 * wire/enr.c: Ethereum Node Records (EIP-778), "v4" identity scheme.
 *
 * Storage: keys and raw value items live in the record's 300-byte arena,
 * described by a sorted pair table.  A set or delete rebuilds the arena
 * (at most 300 bytes of copying), which keeps the record a plain value.
 *
 * Decoding reads the untrusted bytes with the bounded RLP cursor: size
 * first (<= 300), one outer list with nothing after it, the signature,
 * the sequence number, then key/value pairs with keys strictly increasing
 * and each value a canonical RLP item (validated recursively).  The v4
 * verification rebuilds rlp([seq, k, v, ...]) and checks the 64-byte
 * signature with the decompressed "secp256k1" key.
 *
 * Text form: base64url through Nettle; the padding is added before decoding
 * and stripped after encoding, and the alphabet is checked first (Nettle
 * would skip whitespace).
 *
 * Thread-safety: pure functions over caller-owned records; any thread.
 */
#include "wire/enr.h"

#include <nettle/base64.h>
#include <string.h>

#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/rlp.h"

/* Content rlp([seq, k, v...]) never exceeds the record itself. */
#define CONTENT_MAX (P2P_ENR_MAX_SIZE + 16)

void p2p_enr_init(p2p_enr_t *r)
{
    memset(r, 0, sizeof *r);
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of key, or -(insertion point) - 1. */
static int find(const p2p_enr_t *r, const uint8_t *key, size_t klen)
{
    unsigned lo = 0, hi = r->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const p2p_enr_pair_t *p = &r->kv[mid];
        int c = key_cmp(r->data + p->koff, p->klen, key, klen);
        if (c == 0) return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(int)lo - 1;
}

/* Rebuilds r's arena with pair `skip` removed (skip < 0: none) and, when
 * key != NULL, (key, val) inserted at index `at` of the remaining pairs. */
static int rebuild(p2p_enr_t *r, int skip, int at, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
    size_t total = r->datalen, pairs = r->n;
    if (skip >= 0) {
        total -= (size_t)r->kv[skip].klen + r->kv[skip].vlen;
        pairs--;
    }
    if (key) {
        total += klen + vlen;
        pairs++;
    }
    if (total > P2P_ENR_MAX_SIZE || pairs > P2P_ENR_MAX_PAIRS) return P2P_ETOOBIG;
    p2p_enr_t t;
    t.n = 0;
    t.datalen = 0;
    unsigned pos = 0;
    for (unsigned i = 0; i <= r->n; i++) {
        if (key && (int)pos == at) {
            p2p_enr_pair_t *p = &t.kv[t.n++];
            p->koff = t.datalen;
            p->klen = (uint16_t)klen;
            if (klen) memcpy(t.data + t.datalen, key, klen);
            t.datalen = (uint16_t)(t.datalen + klen);
            p->voff = t.datalen;
            p->vlen = (uint16_t)vlen;
            memcpy(t.data + t.datalen, val, vlen);
            t.datalen = (uint16_t)(t.datalen + vlen);
            pos++; /* the new pair takes index `at`; never insert twice */
            at = -1;
        }
        if (i == r->n) break;
        if ((int)i == skip) continue;
        const p2p_enr_pair_t *s = &r->kv[i];
        p2p_enr_pair_t *p = &t.kv[t.n++];
        p->koff = t.datalen;
        p->klen = s->klen;
        memcpy(t.data + t.datalen, r->data + s->koff, s->klen);
        t.datalen = (uint16_t)(t.datalen + s->klen);
        p->voff = t.datalen;
        p->vlen = s->vlen;
        memcpy(t.data + t.datalen, r->data + s->voff, s->vlen);
        t.datalen = (uint16_t)(t.datalen + s->vlen);
        pos++;
    }
    r->n = t.n;
    memcpy(r->kv, t.kv, sizeof r->kv[0] * t.n);
    r->datalen = t.datalen;
    memcpy(r->data, t.data, t.datalen);
    r->signed_ = false;
    return 0;
}

int p2p_enr_set_raw(p2p_enr_t *r, const char *key, const uint8_t *raw, size_t rawlen)
{
    size_t klen = strlen(key);
    if (rawlen == 0 || p2p_rlp_validate(raw, rawlen) != 0) return P2P_EINVAL;
    if (klen + rawlen > P2P_ENR_MAX_SIZE) return P2P_ETOOBIG;
    int i = find(r, (const uint8_t *)key, klen);
    if (i >= 0) {
        /* Removing pair i leaves the insertion point at i. */
        return rebuild(r, i, i, (const uint8_t *)key, klen, raw, rawlen);
    }
    return rebuild(r, -1, -i - 1, (const uint8_t *)key, klen, raw, rawlen);
}

int p2p_enr_delete(p2p_enr_t *r, const char *key)
{
    int i = find(r, (const uint8_t *)key, strlen(key));
    if (i < 0) return P2P_ENOTFOUND;
    return rebuild(r, i, -1, NULL, 0, NULL, 0);
}

int p2p_enr_get_raw(const p2p_enr_t *r, const uint8_t **val, size_t *vallen, const char *key)
{
    int i = find(r, (const uint8_t *)key, strlen(key));
    if (i < 0) return P2P_ENOTFOUND;
    *val = r->data + r->kv[i].voff;
    *vallen = r->kv[i].vlen;
    return 0;
}

void p2p_enr_set_seq(p2p_enr_t *r, uint64_t seq)
{
    r->seq = seq;
    r->signed_ = false;
}

/* ---- encoding ---- */

static void put_pairs(p2p_rlp_enc_t *e, const p2p_enr_t *r)
{
    p2p_rlp_put_uint(e, r->seq);
    for (unsigned i = 0; i < r->n; i++) {
        const p2p_enr_pair_t *p = &r->kv[i];
        p2p_rlp_put_bytes(e, r->data + p->koff, p->klen);
        p2p_rlp_put_raw(e, r->data + p->voff, p->vlen);
    }
}

/* Out: keccak256(rlp([seq, k, v, ...])). */
static int content_hash(uint8_t hash[32], const p2p_enr_t *r)
{
    uint8_t buf[CONTENT_MAX];
    p2p_rlp_enc_t e;
    size_t len;
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_begin(&e);
    put_pairs(&e, r);
    p2p_rlp_list_end(&e);
    int rc = p2p_rlp_enc_finish(&e, &len);
    if (rc) return rc;
    p2p_keccak256(hash, buf, len);
    return 0;
}

static int encode_any(uint8_t *out, size_t cap, size_t *outlen, const p2p_enr_t *r)
{
    p2p_rlp_enc_t e;
    size_t len;
    p2p_rlp_enc_init(&e, out, cap);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_bytes(&e, r->sig, r->siglen);
    put_pairs(&e, r);
    p2p_rlp_list_end(&e);
    int rc = p2p_rlp_enc_finish(&e, &len);
    if (rc) return rc;
    if (len > P2P_ENR_MAX_SIZE) return P2P_ETOOBIG;
    *outlen = len;
    return 0;
}

int p2p_enr_encode(uint8_t *out, size_t cap, size_t *outlen, const p2p_enr_t *r)
{
    if (!r->signed_) return P2P_ESTATE;
    return encode_any(out, cap, outlen, r);
}

int p2p_enr_sign(p2p_enr_t *r, const uint8_t priv[32])
{
    uint8_t pub[64], comp[34], hash[32], sig[65];
    int rc = p2p_secp_pubkey(pub, priv);
    if (rc) return rc;
    rc = p2p_secp_pubkey_compress(comp + 1, pub);
    if (rc) return rc;
    comp[0] = 0xa1; /* string of 33 bytes */
    static const uint8_t v4[3] = {0x82, 'v', '4'};
    rc = p2p_enr_set_raw(r, "id", v4, sizeof v4);
    if (rc) return rc;
    rc = p2p_enr_set_raw(r, "secp256k1", comp, sizeof comp);
    if (rc) return rc;
    rc = content_hash(hash, r);
    if (rc) return rc == P2P_ETOOBIG ? P2P_ETOOBIG : rc;
    rc = p2p_secp_sign(sig, hash, priv);
    if (rc) return rc;
    memcpy(r->sig, sig, P2P_ENR_SIG_V4);
    r->siglen = P2P_ENR_SIG_V4;
    uint8_t tmp[P2P_ENR_MAX_SIZE + 16];
    size_t len;
    rc = encode_any(tmp, sizeof tmp, &len, r);
    if (rc) {
        r->siglen = 0;
        return P2P_ETOOBIG;
    }
    r->signed_ = true;
    return 0;
}

/* ---- decoding ---- */

int p2p_enr_decode_unverified(p2p_enr_t *r, const uint8_t *buf, size_t len)
{
    p2p_enr_init(r);
    if (len > P2P_ENR_MAX_SIZE) return P2P_ETOOBIG;
    p2p_rlp_t c, l;
    p2p_rlp_init(&c, buf, len);
    int rc = p2p_rlp_enter(&c, &l);
    if (rc) return rc;
    if (!p2p_rlp_done(&c)) return P2P_EDECODE; /* trailing bytes */
    const uint8_t *sig;
    size_t siglen;
    rc = p2p_rlp_bytes(&l, &sig, &siglen);
    if (rc) return rc == P2P_EEMPTY ? P2P_EDECODE : rc;
    if (siglen > P2P_ENR_MAX_SIG) return P2P_ETOOBIG;
    rc = p2p_rlp_uint(&l, &r->seq);
    if (rc) return rc == P2P_EEMPTY ? P2P_EDECODE : rc;
    const uint8_t *pk = NULL;
    size_t pklen = 0;
    while (!p2p_rlp_done(&l)) {
        const uint8_t *k;
        size_t klen;
        p2p_rlp_item_t v;
        rc = p2p_rlp_bytes(&l, &k, &klen);
        if (rc) return rc;
        rc = p2p_rlp_next(&l, &v);
        if (rc) return rc == P2P_EEMPTY ? P2P_EDECODE : rc;
        rc = p2p_rlp_validate(v.raw, v.rawlen);
        if (rc) return rc;
        if (pk && key_cmp(pk, pklen, k, klen) >= 0) return P2P_ENONCANON;
        if (r->n >= P2P_ENR_MAX_PAIRS) return P2P_ETOOBIG;
        p2p_enr_pair_t *p = &r->kv[r->n++];
        /* keys and values are slices of a <= 300-byte input: they fit */
        p->koff = r->datalen;
        p->klen = (uint16_t)klen;
        memcpy(r->data + r->datalen, k, klen);
        r->datalen = (uint16_t)(r->datalen + klen);
        p->voff = r->datalen;
        p->vlen = (uint16_t)v.rawlen;
        memcpy(r->data + r->datalen, v.raw, v.rawlen);
        r->datalen = (uint16_t)(r->datalen + v.rawlen);
        pk = k;
        pklen = klen;
    }
    memcpy(r->sig, sig, siglen);
    r->siglen = (uint16_t)siglen;
    r->signed_ = true;
    return 0;
}

int p2p_enr_verify(const p2p_enr_t *r)
{
    char id[P2P_ENR_MAX_ID_LEN + 1];
    if (p2p_enr_id(r, id) != 0 || strcmp(id, "v4") != 0) return P2P_EUNSUPPORTED;
    uint8_t pub[64], hash[32];
    int rc = p2p_enr_pubkey(r, pub);
    if (rc) return rc == P2P_ENOTFOUND ? P2P_EBADKEY : rc;
    if (!r->signed_ || r->siglen != P2P_ENR_SIG_V4) return P2P_EBADSIG;
    rc = content_hash(hash, r);
    if (rc) return P2P_EBADSIG;
    rc = p2p_secp_verify(r->sig, hash, pub);
    return rc ? (rc == P2P_EBADKEY ? P2P_EBADKEY : P2P_EBADSIG) : 0;
}

int p2p_enr_decode(p2p_enr_t *r, const uint8_t *buf, size_t len)
{
    int rc = p2p_enr_decode_unverified(r, buf, len);
    if (rc) return rc;
    return p2p_enr_verify(r);
}

/* ---- text form ---- */

int p2p_enr_to_text(char *out, size_t cap, const p2p_enr_t *r)
{
    uint8_t raw[P2P_ENR_MAX_SIZE];
    size_t len;
    int rc = p2p_enr_encode(raw, sizeof raw, &len, r);
    if (rc) return rc;
    char b64[BASE64_ENCODE_RAW_LENGTH(P2P_ENR_MAX_SIZE) + BASE64_ENCODE_FINAL_LENGTH];
    struct base64_encode_ctx ctx;
    base64url_encode_init(&ctx);
    size_t n = base64_encode_update(&ctx, b64, len, raw);
    n += base64_encode_final(&ctx, b64 + n);
    while (n && b64[n - 1] == '=') n--;
    if (4 + n + 1 > cap) return P2P_ETOOBIG;
    memcpy(out, "enr:", 4);
    memcpy(out + 4, b64, n);
    out[4 + n] = 0;
    return 0;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* c is a base64url character: the character whose value is c's with its
 * `bits` low bits cleared. */
static char b64url_clear_low(char c, unsigned bits)
{
    const char *at = memchr(b64url_alphabet, c, 64);
    size_t v = (size_t)(at - b64url_alphabet);
    return b64url_alphabet[v & ~(((size_t)1 << bits) - 1)];
}

int p2p_enr_from_text(p2p_enr_t *r, const char *text)
{
    if (strncmp(text, "enr:", 4) != 0) return P2P_EINVAL;
    const char *s = text + 4;
    size_t n = strnlen(s, P2P_ENR_MAX_TEXT);
    if (n >= P2P_ENR_MAX_TEXT - 4) return P2P_ETOOBIG;
    if (n % 4 == 1) return P2P_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!b64url_char(s[i])) return P2P_EINVAL;
    char padded[P2P_ENR_MAX_TEXT + 4];
    memcpy(padded, s, n);
    size_t pn = n;
    /* The last character of an unpadded text may carry unused low bits
     * (2 when n % 4 == 3, 4 when n % 4 == 2).  Nettle refuses them set;
     * the reference client's decoder ignores them: clear them. */
    if (n % 4) padded[n - 1] = b64url_clear_low(padded[n - 1], n % 4 == 3 ? 2 : 4);
    while (pn % 4) padded[pn++] = '=';
    uint8_t raw[BASE64_DECODE_LENGTH(P2P_ENR_MAX_TEXT + 4)];
    size_t len = 0;
    struct base64_decode_ctx ctx;
    base64url_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &len, raw, pn, padded) || !base64_decode_final(&ctx))
        return P2P_EINVAL;
    return p2p_enr_decode(r, raw, len);
}

/* ---- typed accessors ---- */

/* Reads the value under key as a byte string. */
static int get_bytes(const p2p_enr_t *r, const uint8_t **p, size_t *n, const char *key)
{
    const uint8_t *raw;
    size_t rawlen;
    int rc = p2p_enr_get_raw(r, &raw, &rawlen, key);
    if (rc) return rc;
    p2p_rlp_t c;
    p2p_rlp_init(&c, raw, rawlen);
    return p2p_rlp_bytes(&c, p, n) ? P2P_EDECODE : 0;
}

int p2p_enr_id(const p2p_enr_t *r, char out[P2P_ENR_MAX_ID_LEN + 1])
{
    const uint8_t *p;
    size_t n;
    int rc = get_bytes(r, &p, &n, "id");
    if (rc) return rc;
    if (n > P2P_ENR_MAX_ID_LEN || memchr(p, 0, n)) return P2P_EDECODE;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

int p2p_enr_pubkey(const p2p_enr_t *r, uint8_t pub[64])
{
    const uint8_t *p;
    size_t n;
    int rc = get_bytes(r, &p, &n, "secp256k1");
    if (rc) return rc == P2P_ENOTFOUND ? rc : P2P_EBADKEY;
    if (n != 33) return P2P_EBADKEY;
    return p2p_secp_pubkey_parse(pub, p, n) ? P2P_EBADKEY : 0;
}

int p2p_enr_node_id(const p2p_enr_t *r, uint8_t id[32])
{
    uint8_t pub[64];
    int rc = p2p_enr_pubkey(r, pub);
    if (rc) return rc;
    p2p_node_id(id, pub);
    return 0;
}

/* The address under key: exactly 4 bytes (family 4) or 16 (family 6). */
static int get_ip(const p2p_enr_t *r, p2p_ip_t *ip, const char *key, uint8_t family)
{
    const uint8_t *p;
    size_t n, want = family == 4 ? 4 : 16;
    int rc = get_bytes(r, &p, &n, key);
    if (rc) return rc;
    if (n != want) return P2P_EDECODE;
    memset(ip, 0, sizeof *ip);
    ip->family = family;
    memcpy(ip->addr, p, want);
    return 0;
}

int p2p_enr_ip4(const p2p_enr_t *r, p2p_ip_t *ip)
{
    return get_ip(r, ip, "ip", 4);
}

int p2p_enr_ip6(const p2p_enr_t *r, p2p_ip_t *ip)
{
    return get_ip(r, ip, "ip6", 6);
}

int p2p_enr_port(const p2p_enr_t *r, uint16_t *port, const char *key)
{
    const uint8_t *raw;
    size_t rawlen;
    int rc = p2p_enr_get_raw(r, &raw, &rawlen, key);
    if (rc) return rc;
    p2p_rlp_t c;
    p2p_rlp_init(&c, raw, rawlen);
    uint64_t v;
    if (p2p_rlp_uint_max(&c, &v, UINT16_MAX)) return P2P_EDECODE;
    *port = (uint16_t)v;
    return 0;
}

/* ---- builder ---- */

int p2p_enr_set_ip(p2p_enr_t *r, const p2p_ip_t *ip)
{
    unsigned n = p2p_ip_len(ip);
    if (n == 0) return P2P_EINVAL;
    uint8_t buf[17];
    buf[0] = (uint8_t)(0x80 + n);
    memcpy(buf + 1, ip->addr, n);
    return p2p_enr_set_raw(r, n == 4 ? "ip" : "ip6", buf, n + 1);
}

int p2p_enr_set_port(p2p_enr_t *r, const char *key, uint16_t port)
{
    uint8_t buf[4];
    p2p_rlp_enc_t e;
    size_t len;
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_put_uint(&e, port);
    int rc = p2p_rlp_enc_finish(&e, &len);
    if (rc) return rc;
    return p2p_enr_set_raw(r, key, buf, len);
}

/* ---- node ---- */

/* The address under key if it is usable as an endpoint: the right length
 * and not multicast.  An IPv4-mapped "ip6" (::ffff:a.b.c.d) comes out as
 * family 4, as every other address in the node does. */
static bool usable_ip(const p2p_enr_t *r, p2p_ip_t *ip, bool v6)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (get_ip(r, ip, v6 ? "ip6" : "ip", v6 ? 6 : 4) != 0) return false;
    if (v6 && memcmp(ip->addr, mapped, 12) == 0) {
        memmove(ip->addr, ip->addr + 12, 4);
        memset(ip->addr + 4, 0, 12);
        ip->family = 4;
    }
    if (ip->family == 4) return (ip->addr[0] & 0xf0) != 0xe0; /* 224.0.0.0/4 */
    return ip->addr[0] != 0xff;                               /* ff00::/8 */
}

/* How global an address is: unspecified 0, loopback 1, link-local 2,
 * private (RFC 1918, fc00::/7) 3, anything else 4. */
static int locality(const p2p_ip_t *ip)
{
    const uint8_t *a = ip->addr;
    static const uint8_t zero[16] = {0};
    if (ip->family == 4) {
        if (memcmp(a, zero, 4) == 0) return 0;
        if (a[0] == 127) return 1;
        if (a[0] == 169 && a[1] == 254) return 2;
        if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
            return 3;
        return 4;
    }
    if (memcmp(a, zero, 16) == 0) return 0;
    if (memcmp(a, zero, 15) == 0 && a[15] == 1) return 1;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return 2;
    if ((a[0] & 0xfe) == 0xfc) return 3;
    return 4;
}

/* The port under the first of keys that holds a valid one (0 if none). */
static uint16_t first_port(const p2p_enr_t *r, const char *k1, const char *k2)
{
    uint16_t port;
    if (k1 && p2p_enr_port(r, &port, k1) == 0) return port;
    if (k2 && p2p_enr_port(r, &port, k2) == 0) return port;
    return 0;
}

int p2p_enr_to_node(p2p_node_t *n, const p2p_enr_t *r)
{
    return p2p_enr_to_node_for(n, r, 0);
}

int p2p_enr_to_node_for(p2p_node_t *n, const p2p_enr_t *r, unsigned family)
{
    memset(n, 0, sizeof *n);
    int rc = p2p_enr_pubkey(r, n->pubkey);
    if (rc) return rc;
    p2p_node_id(n->id, n->pubkey);
    n->seq = r->seq;
    p2p_ip_t ip4, ip6;
    bool ok4 = usable_ip(r, &ip4, false), ok6 = usable_ip(r, &ip6, true);
    if (ok4 && ok6) {
        /* a node of one family takes its own (a mapped "ip6" is IPv4: the
         * rule below decides between two IPv4 addresses) */
        if (family == 4 && ip6.family == 6)
            ok6 = false;
        else if (family == 6 && ip6.family == 6)
            ok4 = false;
        else if (locality(&ip6) > locality(&ip4))
            ok4 = false;
    }
    if (ok4 || (ok6 && ip6.family == 4)) {
        n->ep.ip = ok4 ? ip4 : ip6;
    } else if (ok6) {
        n->ep.ip = ip6;
        n->ep.udp = first_port(r, "udp6", "udp");
        n->ep.tcp = first_port(r, "tcp6", "tcp");
        return 0;
    }
    n->ep.udp = first_port(r, "udp", NULL);
    n->ep.tcp = first_port(r, "tcp", NULL);
    return 0;
}
