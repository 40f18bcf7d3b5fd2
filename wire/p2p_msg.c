/*
 * wire/p2p_msg.c: base-protocol messages and capability matching (see
 * p2p_msg.h).  Pure; called by peer threads.  Every decoder works on a
 * bounded RLP cursor over untrusted bytes; limits are in p2p_msg.h.
 */
#include "wire/p2p_msg.h"

#include <string.h>

#include "wire/rlp.h"
#include "wire/snappy.h"

const uint8_t p2p_ping_payload[1] = {0xC0};

const char *p2p_disc_reason_str(unsigned reason)
{
    switch (reason) {
    case P2P_DISC_REQUESTED:
        return "disconnect requested";
    case P2P_DISC_NETWORK_ERROR:
        return "network error";
    case P2P_DISC_PROTOCOL_ERROR:
        return "breach of protocol";
    case P2P_DISC_USELESS_PEER:
        return "useless peer";
    case P2P_DISC_TOO_MANY_PEERS:
        return "too many peers";
    case P2P_DISC_ALREADY_CONNECTED:
        return "already connected";
    case P2P_DISC_INCOMPATIBLE_VERSION:
        return "incompatible p2p protocol version";
    case P2P_DISC_INVALID_IDENTITY:
        return "invalid node identity";
    case P2P_DISC_QUITTING:
        return "client quitting";
    case P2P_DISC_UNEXPECTED_IDENTITY:
        return "unexpected identity";
    case P2P_DISC_SELF:
        return "connected to self";
    case P2P_DISC_READ_TIMEOUT:
        return "read timeout";
    case P2P_DISC_SUBPROTOCOL_ERROR:
        return "subprotocol error";
    case P2P_DISC_INVALID:
        return "invalid disconnect reason";
    default:
        return "unknown disconnect reason";
    }
}

int p2p_hello_encode(uint8_t *out, size_t outcap, size_t *outlen, const p2p_hello_t *h)
{
    if (h->ncaps > P2P_HELLO_MAX_CAPS || h->name_len > P2P_HELLO_NAME_MAX) return P2P_EINVAL;
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, out, outcap < P2P_HELLO_MAX ? outcap : P2P_HELLO_MAX);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, h->version);
    p2p_rlp_put_bytes(&e, (const uint8_t *)h->name, h->name_len);
    p2p_rlp_list_begin(&e);
    for (size_t i = 0; i < h->ncaps; i++) {
        if (h->caps[i].name_len > P2P_CAP_NAME_MAX) return P2P_EINVAL;
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, (const uint8_t *)h->caps[i].name, h->caps[i].name_len);
        p2p_rlp_put_uint(&e, h->caps[i].version);
        p2p_rlp_list_end(&e);
    }
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, h->listen_port);
    p2p_rlp_put_bytes(&e, h->id, 64);
    p2p_rlp_list_end(&e);
    return p2p_rlp_enc_finish(&e, outlen);
}

/* Maps cursor errors inside a bounded message to "malformed". */
static int malformed(int rc)
{
    return rc == P2P_EMORE || rc == P2P_EEMPTY || rc == P2P_ERANGE || rc == P2P_ENONCANON
               ? P2P_EDECODE
               : rc;
}

/* Keeps the capabilities we could ever match: names of 1..P2P_CAP_NAME_MAX
 * bytes with a version <= UINT32_MAX, the first P2P_HELLO_MAX_CAPS of them.
 * Others (an empty or long name, a large version, entries past the limit)
 * are skipped, as a peer that announces them is still valid (the reference
 * client accepts them); each entry must still be a list starting with a
 * byte string and an unsigned integer of at most 64 bits. */
static int decode_caps(p2p_hello_t *h, p2p_rlp_t *caps)
{
    h->ncaps = 0;
    while (!p2p_rlp_done(caps)) {
        p2p_rlp_t l;
        const uint8_t *name;
        size_t n;
        uint64_t v;
        int rc = p2p_rlp_enter(caps, &l);
        if (!rc) rc = p2p_rlp_bytes(&l, &name, &n);
        if (!rc) rc = p2p_rlp_uint(&l, &v);
        if (rc) return malformed(rc);
        /* extra elements in a cap entry are tolerated */
        if (n == 0 || n > P2P_CAP_NAME_MAX || v > UINT32_MAX) continue;
        if (h->ncaps == P2P_HELLO_MAX_CAPS) continue;
        p2p_cap_t *cap = &h->caps[h->ncaps];
        memcpy(cap->name, name, n);
        cap->name[n] = 0;
        cap->name_len = n;
        cap->version = (uint32_t)v;
        h->ncaps++;
    }
    return 0;
}

int p2p_hello_decode(p2p_hello_t *h, const uint8_t *in, size_t inlen)
{
    if (inlen > P2P_HELLO_MAX) return P2P_ETOOBIG;
    p2p_rlp_t c, l, caps;
    const uint8_t *p;
    size_t n;
    p2p_rlp_init(&c, in, inlen);
    int rc = p2p_rlp_enter(&c, &l); /* bytes after the list are ignored */
    if (!rc) rc = p2p_rlp_uint(&l, &h->version);
    if (!rc) rc = p2p_rlp_bytes(&l, &p, &n);
    if (rc) return malformed(rc);
    if (n > P2P_HELLO_NAME_MAX) return P2P_ETOOBIG;
    memcpy(h->name, p, n);
    h->name[n] = 0;
    h->name_len = n;
    rc = p2p_rlp_enter(&l, &caps);
    if (rc) return malformed(rc);
    rc = decode_caps(h, &caps);
    if (rc) return rc;
    rc = p2p_rlp_uint(&l, &h->listen_port);
    if (!rc) rc = p2p_rlp_bytes(&l, &p, &n);
    if (rc) return malformed(rc);
    /* further elements: tolerated (EIP-8) */
    if (n != 64) return P2P_EBADKEY;
    uint8_t any = 0;
    for (size_t i = 0; i < 64; i++) any |= p[i];
    if (!any) return P2P_EBADKEY;
    memcpy(h->id, p, 64);
    return 0;
}

int p2p_disc_encode(uint8_t *out, size_t outcap, size_t *outlen, uint8_t reason)
{
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, out, outcap);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, reason);
    p2p_rlp_list_end(&e);
    return p2p_rlp_enc_finish(&e, outlen);
}

/* rlp([reason, ...]) or a bare reason.  strict: the item must span the
 * whole input; otherwise bytes after the first item are ignored (geth). */
static int disc_parse(uint8_t *reason, const uint8_t *in, size_t n, bool strict)
{
    p2p_rlp_t c, l;
    uint64_t v;
    int rc;
    p2p_rlp_init(&c, in, n);
    if (n == 0) return P2P_EDECODE;
    if (in[0] >= 0xC0) {
        rc = p2p_rlp_enter(&c, &l);
        if (!rc) rc = p2p_rlp_uint_max(&l, &v, 0xff);
    } else {
        rc = p2p_rlp_uint_max(&c, &v, 0xff);
    }
    if (rc || (strict && !p2p_rlp_done(&c))) return P2P_EDECODE;
    *reason = (uint8_t)v;
    return 0;
}

static int disc_snappy(uint8_t *reason, const uint8_t *in, size_t n)
{
    uint8_t buf[P2P_DISC_INPUT_MAX];
    size_t len;
    if (p2p_snappy_decompress(buf, sizeof buf, &len, in, n, sizeof buf)) return P2P_EDECODE;
    return disc_parse(reason, buf, len, false);
}

int p2p_disc_decode(uint8_t *reason, const uint8_t *in, size_t inlen, bool snappy_first)
{
    /* A raw item spanning the whole input and a snappy block never look
     * alike for what clients send ([r] = c1.., bare r = one item, while a
     * compressed one starts with its varint length and carries more bytes);
     * the lenient raw parse (trailing bytes ignored) comes last. */
    size_t n = inlen < P2P_DISC_INPUT_MAX ? inlen : P2P_DISC_INPUT_MAX;
    *reason = P2P_DISC_INVALID;
    if (snappy_first) {
        if (!disc_snappy(reason, in, n) || !disc_parse(reason, in, n, true)) return 0;
    } else {
        if (!disc_parse(reason, in, n, true) || !disc_snappy(reason, in, n)) return 0;
    }
    if (!disc_parse(reason, in, n, false)) return 0;
    *reason = P2P_DISC_INVALID;
    return P2P_EDECODE;
}

/* (name, version) order; names compare bytewise, shorter first on a tie. */
static int cap_cmp(const p2p_cap_t *a, const p2p_cap_t *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int r = memcmp(a->name, b->name, n);
    if (r) return r;
    if (a->name_len != b->name_len) return a->name_len < b->name_len ? -1 : 1;
    return (a->version > b->version) - (a->version < b->version);
}

int p2p_caps_match(p2p_proto_match_t *out, size_t *nout, const p2p_proto_t *local, size_t nlocal,
                   const p2p_cap_t *remote, size_t nremote)
{
    if (nremote > P2P_HELLO_MAX_CAPS) return P2P_ETOOBIG;
    const p2p_cap_t *sorted[P2P_HELLO_MAX_CAPS];
    for (size_t i = 0; i < nremote; i++) { /* insertion sort: at most 64 entries */
        size_t j = i;
        while (j > 0 && cap_cmp(sorted[j - 1], &remote[i]) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = &remote[i];
    }
    uint64_t offset = P2P_BASE_LENGTH;
    size_t n = 0;
    for (size_t i = 0; i < nremote; i++) {
        const p2p_cap_t *cap = sorted[i];
        for (size_t k = 0; k < nlocal; k++) {
            const p2p_proto_t *pr = &local[k];
            if (strlen(pr->name) != cap->name_len || memcmp(pr->name, cap->name, cap->name_len) ||
                pr->version != cap->version)
                continue;
            /* same name matched before (a lower version): replace it in place */
            size_t slot = n;
            for (size_t m = 0; m < n; m++) {
                if (strcmp(local[out[m].proto].name, pr->name) == 0) {
                    offset -= local[out[m].proto].length;
                    slot = m;
                    break;
                }
            }
            out[slot].proto = k;
            out[slot].offset = offset;
            if (slot == n) n++;
            offset += pr->length;
            break;
        }
    }
    *nout = n;
    return 0;
}
