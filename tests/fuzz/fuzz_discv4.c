/*
 * tests/fuzz/fuzz_discv4.c: libFuzzer target for discovery v4 packets.
 *
 * The first byte picks the mode: even = the rest is a raw packet (size,
 * hash, type checks, then decode); odd = the rest is type || body, sealed
 * with a fixed key first, so the fuzzer reaches the body decoder past the
 * hash and signature.  Properties: no crash; a decoded packet's sender is
 * the sealing key (sealed mode); a decoded packet re-encodes (when the
 * encoder accepts it) to a packet that decodes to the same fields.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto/secp.h"
#include "wire/discv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* results we only exercise (warn_unused_result cannot be cast away) */
static volatile int sink;

static const uint8_t fkey[32] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void same(const p2p_discv4_packet_t *a, const p2p_discv4_packet_t *b)
{
    if (a->type != b->type || a->expiration != b->expiration) abort();
    switch (a->type) {
    case P2P_DISCV4_PING: {
        /* the encoder sends version 0 as 4 */
        uint64_t va = a->u.ping.version ? a->u.ping.version : P2P_DISCV4_PING_VERSION;
        if (va != b->u.ping.version || a->u.ping.has_enr_seq != b->u.ping.has_enr_seq ||
            a->u.ping.enr_seq != b->u.ping.enr_seq ||
            memcmp(&a->u.ping.from, &b->u.ping.from, sizeof a->u.ping.from) != 0 ||
            memcmp(&a->u.ping.to, &b->u.ping.to, sizeof a->u.ping.to) != 0)
            abort();
        break;
    }
    case P2P_DISCV4_PONG:
        if (memcmp(&a->u.pong, &b->u.pong, sizeof a->u.pong) != 0) abort();
        break;
    case P2P_DISCV4_FINDNODE:
        if (memcmp(&a->u.findnode, &b->u.findnode, sizeof a->u.findnode) != 0) abort();
        break;
    case P2P_DISCV4_NEIGHBORS:
        if (a->u.neighbors.n != b->u.neighbors.n) abort();
        for (unsigned i = 0; i < a->u.neighbors.n; i++)
            if (memcmp(&a->u.neighbors.nodes[i], &b->u.neighbors.nodes[i],
                       sizeof a->u.neighbors.nodes[i]) != 0)
                abort();
        break;
    case P2P_DISCV4_ENRRESPONSE: {
        const p2p_enr_t *x = &a->u.enrresponse.record, *y = &b->u.enrresponse.record;
        if (memcmp(a->u.enrresponse.reply_tok, b->u.enrresponse.reply_tok, 32) != 0) abort();
        if (x->seq != y->seq || x->n != y->n || x->datalen != y->datalen ||
            memcmp(x->data, y->data, x->datalen) != 0)
            abort();
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static p2p_discv4_packet_t p, q;
    static uint8_t pkt[P2P_DISCV4_MAX_SIZE];
    if (size < 1 || size > 4096) return 0;
    const uint8_t *in = data + 1;
    size_t inlen = size - 1, len;
    bool sealed = data[0] & 1;
    if (sealed) {
        if (inlen < 1) return 0;
        if (p2p_discv4_seal(pkt, &len, NULL, in[0], in + 1, inlen - 1, fkey) != 0) return 0;
        in = pkt;
        inlen = len;
    }
    if (p2p_discv4_decode(&p, in, inlen) != 0) return 0;
    if (sealed) {
        uint8_t pub[64];
        if (p2p_secp_pubkey(pub, fkey) != 0 || memcmp(pub, p.sender, 64) != 0) abort();
    }
    sink += p2p_discv4_expired(&p, 1700000000);
    if (p.type == P2P_DISCV4_ENRRESPONSE) sink += p2p_enr_verify(&p.u.enrresponse.record);
    static uint8_t re[P2P_DISCV4_MAX_SIZE];
    if (p2p_discv4_encode(re, &len, NULL, &p, fkey) != 0) return 0;
    if (p2p_discv4_decode(&q, re, len) != 0) abort();
    same(&p, &q);
    return 0;
}
