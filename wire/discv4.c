/*
 * wire/discv4.c: discovery v4 packet encoding, cheap checks, decoding and
 * sender recovery (see wire/discv4.h for the formats and the leniency
 * rules).
 *
 * Order of work on receive, cheapest first: size bounds, type byte, hash
 * (one Keccak over <= 1280 bytes), body structure (bounded RLP cursor),
 * and only then the signature recovery.  Nothing is allocated; a decoded
 * packet is a plain value in the caller's storage.
 *
 * Thread-safety: pure functions; any thread (the UDP reader calls precheck
 * and open, the discovery table encodes).
 */
#include "wire/discv4.h"

#include <string.h>

#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/rlp.h"

#define BODY_OFF (P2P_DISCV4_HEAD_LEN + 1)

const char *p2p_discv4_type_name(unsigned type)
{
    switch (type) {
    case P2P_DISCV4_PING:
        return "ping";
    case P2P_DISCV4_PONG:
        return "pong";
    case P2P_DISCV4_FINDNODE:
        return "findnode";
    case P2P_DISCV4_NEIGHBORS:
        return "neighbors";
    case P2P_DISCV4_ENRREQUEST:
        return "enrrequest";
    case P2P_DISCV4_ENRRESPONSE:
        return "enrresponse";
    default:
        return "unknown";
    }
}

int p2p_discv4_rpcnode_to_node(p2p_node_t *n, const p2p_discv4_rpcnode_t *r)
{
    memset(n, 0, sizeof *n);
    if (p2p_secp_pubkey_check(r->id) != 0) return P2P_EBADKEY;
    memcpy(n->pubkey, r->id, 64);
    p2p_node_id(n->id, n->pubkey);
    n->ep = r->ep;
    return 0;
}

void p2p_discv4_rpcnode_from_node(p2p_discv4_rpcnode_t *r, const p2p_node_t *n)
{
    memset(r, 0, sizeof *r);
    r->ep = n->ep;
    memcpy(r->id, n->pubkey, 64);
}

/* ---- receive ---- */

int p2p_discv4_precheck(p2p_discv4_head_t *h, const uint8_t *pkt, size_t len)
{
    if (len < P2P_DISCV4_MIN_SIZE) return P2P_EDECODE;
    if (len > P2P_DISCV4_MAX_SIZE) return P2P_ETOOBIG;
    uint8_t type = pkt[P2P_DISCV4_HEAD_LEN];
    if (type < P2P_DISCV4_PING || type > P2P_DISCV4_ENRRESPONSE) return P2P_EUNSUPPORTED;
    uint8_t hash[32];
    p2p_keccak256(hash, pkt + P2P_DISCV4_HASH_LEN, len - P2P_DISCV4_HASH_LEN);
    if (memcmp(hash, pkt, 32) != 0) return P2P_EBADHASH;
    h->type = type;
    memcpy(h->hash, hash, 32);
    return 0;
}

/* Maps end-of-list to a decode error (a required element is missing). */
static inline int req(int rc)
{
    return rc == P2P_EEMPTY ? P2P_EDECODE : rc;
}

static int dec_port(p2p_rlp_t *c, uint16_t *port)
{
    uint64_t v;
    int rc = p2p_rlp_uint_max(c, &v, UINT16_MAX);
    if (rc) return req(rc);
    *port = (uint16_t)v;
    return 0;
}

/* IP bytes of any length: 4 -> family 4, 16 -> family 6 (IPv4-mapped ->
 * family 4), anything else -> family 0. */
static void ip_from_bytes(p2p_ip_t *ip, const uint8_t *p, size_t n)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(ip, 0, sizeof *ip);
    if (n == 16 && memcmp(p, mapped, 12) == 0) {
        p += 12;
        n = 4;
    }
    if (n == 4 || n == 16) {
        ip->family = n == 4 ? 4 : 6;
        memcpy(ip->addr, p, n);
    }
}

/* [ip, udp, tcp, ...] */
static int dec_endpoint(p2p_rlp_t *c, p2p_endpoint_t *ep)
{
    p2p_rlp_t l;
    const uint8_t *ip;
    size_t iplen;
    int rc = p2p_rlp_enter(c, &l);
    if (rc) return req(rc);
    if ((rc = p2p_rlp_bytes(&l, &ip, &iplen))) return req(rc);
    ip_from_bytes(&ep->ip, ip, iplen);
    if ((rc = dec_port(&l, &ep->udp))) return rc;
    return dec_port(&l, &ep->tcp);
}

static int dec_uint(p2p_rlp_t *c, uint64_t *v)
{
    return req(p2p_rlp_uint(c, v));
}

/* Optional enr-seq: present only if the element is a canonical uint64. */
static void dec_enr_seq(p2p_rlp_t *c, bool *has, uint64_t *seq)
{
    *has = false;
    *seq = 0;
    if (!p2p_rlp_done(c) && p2p_rlp_uint(c, seq) == 0) *has = true;
}

static int dec_body(p2p_discv4_packet_t *p, const uint8_t *body, size_t len)
{
    p2p_rlp_t c, l;
    p2p_rlp_init(&c, body, len);
    int rc = p2p_rlp_enter(&c, &l);
    if (rc) return req(rc);
    /* bytes after the body list are ignored (EIP-8) */
    switch (p->type) {
    case P2P_DISCV4_PING:
        if ((rc = dec_uint(&l, &p->u.ping.version))) return rc;
        if ((rc = dec_endpoint(&l, &p->u.ping.from))) return rc;
        if ((rc = dec_endpoint(&l, &p->u.ping.to))) return rc;
        if ((rc = dec_uint(&l, &p->expiration))) return rc;
        dec_enr_seq(&l, &p->u.ping.has_enr_seq, &p->u.ping.enr_seq);
        return 0;
    case P2P_DISCV4_PONG:
        if ((rc = dec_endpoint(&l, &p->u.pong.to))) return rc;
        if ((rc = p2p_rlp_fixed(&l, p->u.pong.reply_tok, 32))) return req(rc);
        if ((rc = dec_uint(&l, &p->expiration))) return rc;
        dec_enr_seq(&l, &p->u.pong.has_enr_seq, &p->u.pong.enr_seq);
        return 0;
    case P2P_DISCV4_FINDNODE:
        if ((rc = p2p_rlp_fixed(&l, p->u.findnode.target, 64))) return req(rc);
        return dec_uint(&l, &p->expiration);
    case P2P_DISCV4_NEIGHBORS: {
        p2p_rlp_t nl;
        if ((rc = p2p_rlp_enter(&l, &nl))) return req(rc);
        unsigned n = 0;
        while (!p2p_rlp_done(&nl)) {
            if (n >= P2P_DISCV4_NEIGHBORS_CAP) return P2P_ETOOBIG;
            p2p_discv4_rpcnode_t *nd = &p->u.neighbors.nodes[n];
            p2p_rlp_t e;
            const uint8_t *ip;
            size_t iplen;
            if ((rc = p2p_rlp_enter(&nl, &e))) return rc;
            if ((rc = p2p_rlp_bytes(&e, &ip, &iplen))) return req(rc);
            ip_from_bytes(&nd->ep.ip, ip, iplen);
            if ((rc = dec_port(&e, &nd->ep.udp))) return rc;
            if ((rc = dec_port(&e, &nd->ep.tcp))) return rc;
            if ((rc = p2p_rlp_fixed(&e, nd->id, 64))) return req(rc);
            n++;
        }
        p->u.neighbors.n = n;
        p->u.neighbors.oversized = n > P2P_DISCV4_MAX_NEIGHBORS;
        return dec_uint(&l, &p->expiration);
    }
    case P2P_DISCV4_ENRREQUEST:
        return dec_uint(&l, &p->expiration);
    case P2P_DISCV4_ENRRESPONSE: {
        if ((rc = p2p_rlp_fixed(&l, p->u.enrresponse.reply_tok, 32))) return req(rc);
        p2p_rlp_item_t it;
        if ((rc = p2p_rlp_next(&l, &it))) return req(rc);
        if (it.kind != P2P_RLP_LIST) return P2P_EDECODE;
        return p2p_enr_decode_unverified(&p->u.enrresponse.record, it.raw, it.rawlen);
    }
    default:
        return P2P_EUNSUPPORTED;
    }
}

/* open with an optional expiration check (check false: none). */
static int open_body(p2p_discv4_packet_t *p, const p2p_discv4_head_t *h, const uint8_t *pkt,
                     size_t len, bool check, uint64_t now)
{
    memset(p, 0, sizeof *p);
    if (len < P2P_DISCV4_MIN_SIZE || len > P2P_DISCV4_MAX_SIZE) return P2P_EINVAL;
    p->type = h->type;
    memcpy(p->hash, h->hash, 32);
    int rc = dec_body(p, pkt + BODY_OFF, len - BODY_OFF);
    if (rc) return rc;
    if (check && p2p_discv4_expired(p, now) != 0) return P2P_EEXPIRED;
    uint8_t sighash[32];
    p2p_keccak256(sighash, pkt + P2P_DISCV4_HEAD_LEN, len - P2P_DISCV4_HEAD_LEN);
    if (p2p_secp_recover(p->sender, pkt + P2P_DISCV4_HASH_LEN, sighash) != 0) return P2P_EBADSIG;
    p2p_node_id(p->sender_id, p->sender);
    return 0;
}

int p2p_discv4_open(p2p_discv4_packet_t *p, const p2p_discv4_head_t *h, const uint8_t *pkt,
                    size_t len)
{
    return open_body(p, h, pkt, len, false, 0);
}

int p2p_discv4_open_at(p2p_discv4_packet_t *p, const p2p_discv4_head_t *h, const uint8_t *pkt,
                       size_t len, uint64_t now)
{
    return open_body(p, h, pkt, len, true, now);
}

int p2p_discv4_decode(p2p_discv4_packet_t *p, const uint8_t *pkt, size_t len)
{
    p2p_discv4_head_t h;
    int rc = p2p_discv4_precheck(&h, pkt, len);
    if (rc) return rc;
    return p2p_discv4_open(p, &h, pkt, len);
}

int p2p_discv4_expired(const p2p_discv4_packet_t *p, uint64_t now)
{
    if (p->type == P2P_DISCV4_ENRRESPONSE) return 0;
    return p->expiration < now ? P2P_EEXPIRED : 0;
}

/* ---- send ---- */

/* Signs out[97..97+1+bodylen) (type byte and body already in place) and
 * writes the signature and hash in front. */
static int seal_in_place(uint8_t *out, size_t *outlen, uint8_t hash[32], size_t bodylen,
                         const uint8_t priv[32])
{
    size_t len = BODY_OFF + bodylen;
    uint8_t sighash[32];
    p2p_keccak256(sighash, out + P2P_DISCV4_HEAD_LEN, 1 + bodylen);
    int rc = p2p_secp_sign(out + P2P_DISCV4_HASH_LEN, sighash, priv);
    if (rc) return rc;
    p2p_keccak256(out, out + P2P_DISCV4_HASH_LEN, len - P2P_DISCV4_HASH_LEN);
    if (hash) memcpy(hash, out, 32);
    *outlen = len;
    return 0;
}

int p2p_discv4_seal(uint8_t out[P2P_DISCV4_MAX_SIZE], size_t *outlen, uint8_t hash[32],
                    uint8_t type, const uint8_t *body, size_t bodylen, const uint8_t priv[32])
{
    if (bodylen > P2P_DISCV4_MAX_SIZE - BODY_OFF) return P2P_ETOOBIG;
    out[P2P_DISCV4_HEAD_LEN] = type;
    memmove(out + BODY_OFF, body, bodylen);
    return seal_in_place(out, outlen, hash, bodylen, priv);
}

static void put_endpoint(p2p_rlp_enc_t *e, const p2p_endpoint_t *ep)
{
    p2p_rlp_list_begin(e);
    p2p_rlp_put_bytes(e, ep->ip.addr, p2p_ip_len(&ep->ip));
    p2p_rlp_put_uint(e, ep->udp);
    p2p_rlp_put_uint(e, ep->tcp);
    p2p_rlp_list_end(e);
}

int p2p_discv4_encode(uint8_t out[P2P_DISCV4_MAX_SIZE], size_t *outlen, uint8_t hash[32],
                      const p2p_discv4_packet_t *p, const uint8_t priv[32])
{
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, out + BODY_OFF, P2P_DISCV4_MAX_SIZE - BODY_OFF);
    p2p_rlp_list_begin(&e);
    switch (p->type) {
    case P2P_DISCV4_PING:
        p2p_rlp_put_uint(&e, p->u.ping.version ? p->u.ping.version : P2P_DISCV4_PING_VERSION);
        put_endpoint(&e, &p->u.ping.from);
        put_endpoint(&e, &p->u.ping.to);
        p2p_rlp_put_uint(&e, p->expiration);
        if (p->u.ping.has_enr_seq) p2p_rlp_put_uint(&e, p->u.ping.enr_seq);
        break;
    case P2P_DISCV4_PONG:
        put_endpoint(&e, &p->u.pong.to);
        p2p_rlp_put_bytes(&e, p->u.pong.reply_tok, 32);
        p2p_rlp_put_uint(&e, p->expiration);
        if (p->u.pong.has_enr_seq) p2p_rlp_put_uint(&e, p->u.pong.enr_seq);
        break;
    case P2P_DISCV4_FINDNODE:
        p2p_rlp_put_bytes(&e, p->u.findnode.target, 64);
        p2p_rlp_put_uint(&e, p->expiration);
        break;
    case P2P_DISCV4_NEIGHBORS:
        if (p->u.neighbors.n > P2P_DISCV4_MAX_NEIGHBORS) return P2P_ETOOBIG;
        p2p_rlp_list_begin(&e);
        for (unsigned i = 0; i < p->u.neighbors.n; i++) {
            const p2p_discv4_rpcnode_t *nd = &p->u.neighbors.nodes[i];
            p2p_rlp_list_begin(&e);
            p2p_rlp_put_bytes(&e, nd->ep.ip.addr, p2p_ip_len(&nd->ep.ip));
            p2p_rlp_put_uint(&e, nd->ep.udp);
            p2p_rlp_put_uint(&e, nd->ep.tcp);
            p2p_rlp_put_bytes(&e, nd->id, 64);
            p2p_rlp_list_end(&e);
        }
        p2p_rlp_list_end(&e);
        p2p_rlp_put_uint(&e, p->expiration);
        break;
    case P2P_DISCV4_ENRREQUEST:
        p2p_rlp_put_uint(&e, p->expiration);
        break;
    case P2P_DISCV4_ENRRESPONSE: {
        uint8_t rec[P2P_ENR_MAX_SIZE];
        size_t reclen;
        int rc = p2p_enr_encode(rec, sizeof rec, &reclen, &p->u.enrresponse.record);
        if (rc) return rc;
        p2p_rlp_put_bytes(&e, p->u.enrresponse.reply_tok, 32);
        p2p_rlp_put_raw(&e, rec, reclen);
        break;
    }
    default:
        return P2P_EINVAL;
    }
    p2p_rlp_list_end(&e);
    size_t bodylen;
    int rc = p2p_rlp_enc_finish(&e, &bodylen);
    if (rc) return rc;
    out[P2P_DISCV4_HEAD_LEN] = p->type;
    return seal_in_place(out, outlen, hash, bodylen, priv);
}
