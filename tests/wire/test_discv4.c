/*
 * tests/wire/test_discv4.c: discovery v4 packets.
 *
 * The six EIP-8 vectors verify with the sender = the vector key's node and
 * their fields decode as documented (ping_v555 and pong carry a list in
 * the enr-seq position: accepted, enr-seq absent).  Random round trips of
 * all six types.  Rejects: short, over 1280, bad hash, bad signature,
 * unknown type, truncated and garbage bodies, bad field sizes, ports over
 * 65535, too many neighbors.  EIP-8 leniency for extra elements and
 * trailing bytes everywhere.  Expiration.
 */
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "tests/tu.h"
#include "wire/discv4.h"
#include "wire/rlp.h"

#define VF "discv4-eip8.txt"
#define EXP 1136239445u

static uint8_t key[32], keypub[64], keyid[32];

static size_t vec(uint8_t *out, const char *name)
{
    long n = tu_vector_hex(VF, name, out, P2P_DISCV4_MAX_SIZE + 64);
    CHECK(n >= P2P_DISCV4_MIN_SIZE);
    return n < 0 ? 0 : (size_t)n;
}

static p2p_ip_t ip6(const char *h)
{
    p2p_ip_t ip = {.family = 6};
    tu_unhex(ip.addr, 16, h);
    return ip;
}

static bool ep_is(const p2p_endpoint_t *ep, p2p_ip_t ip, uint16_t udp, uint16_t tcp)
{
    return p2p_ip_equal(&ep->ip, &ip) && ep->udp == udp && ep->tcp == tcp;
}

/* Decodes a vector: precheck + open must equal decode; sender is the key. */
static void open_vec(p2p_discv4_packet_t *p, const char *name, uint8_t type)
{
    static uint8_t pkt[P2P_DISCV4_MAX_SIZE + 64];
    size_t len = vec(pkt, name);
    p2p_discv4_head_t h;
    CHECK_OK(p2p_discv4_precheck(&h, pkt, len));
    CHECK(h.type == type);
    CHECK_MEM(h.hash, pkt, 32);
    CHECK_OK(p2p_discv4_open(p, &h, pkt, len));
    static p2p_discv4_packet_t q;
    CHECK_OK(p2p_discv4_decode(&q, pkt, len));
    CHECK(memcmp(p, &q, sizeof q) == 0);
    CHECK(p->type == type);
    CHECK_MEM(p->hash, pkt, 32);
    CHECK_MEM(p->sender, keypub, 64);
    CHECK_MEM(p->sender_id, keyid, 32);
    if (type != P2P_DISCV4_ENRRESPONSE) CHECK(p->expiration == EXP);
}

static void test_vectors(void)
{
    static p2p_discv4_packet_t p;
    CHECK(tu_vector_hex(VF, "key", key, 32) == 32);
    CHECK_OK(p2p_secp_pubkey(keypub, key));
    p2p_node_id(keyid, keypub);
    uint8_t want_id[32];
    CHECK(tu_vector_hex("enr.txt", "node_id", want_id, 32) == 32);
    CHECK_MEM(keyid, want_id, 32); /* same key as the ENR example */

    p2p_ip_t lo4 = p2p_ip4(127, 0, 0, 1);
    p2p_ip_t lo6 = ip6("00000000000000000000000000000001");
    p2p_ip_t a6 = ip6("20010db83c4d001500000000abcdef12");
    p2p_ip_t b6 = ip6("20010db885a308d313198a2e03707348");

    open_vec(&p, "ping_v4_plain", P2P_DISCV4_PING);
    CHECK(p.u.ping.version == 4);
    CHECK(ep_is(&p.u.ping.from, lo4, 3322, 5544));
    CHECK(ep_is(&p.u.ping.to, lo6, 2222, 3333));
    CHECK(!p.u.ping.has_enr_seq);

    open_vec(&p, "ping_v4_extra", P2P_DISCV4_PING);
    CHECK(p.u.ping.version == 4);
    CHECK(ep_is(&p.u.ping.from, lo4, 3322, 5544));
    CHECK(ep_is(&p.u.ping.to, lo6, 2222, 3333));
    CHECK(p.u.ping.has_enr_seq && p.u.ping.enr_seq == 1);

    /* choice: a list in the enr-seq position is accepted as "absent" */
    open_vec(&p, "ping_v555_extra_random", P2P_DISCV4_PING);
    CHECK(p.u.ping.version == 555);
    CHECK(ep_is(&p.u.ping.from, a6, 3322, 5544));
    CHECK(ep_is(&p.u.ping.to, b6, 2222, 33338));
    CHECK(!p.u.ping.has_enr_seq && p.u.ping.enr_seq == 0);

    open_vec(&p, "pong_extra_random", P2P_DISCV4_PONG);
    CHECK(ep_is(&p.u.pong.to, b6, 2222, 33338));
    uint8_t tok[32];
    tu_unhex(tok, 32, "fbc914b16819237dcd8801d7e53f69e9719adecb3cc0e790c57e91ca4461c954");
    CHECK_MEM(p.u.pong.reply_tok, tok, 32);
    CHECK(!p.u.pong.has_enr_seq);

    open_vec(&p, "findnode_extra_random", P2P_DISCV4_FINDNODE);
    uint8_t target[64];
    tu_unhex(target, 64,
             "ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138"
             "7574077f301b421bc84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f");
    CHECK_MEM(p.u.findnode.target, target, 64);

    open_vec(&p, "neighbors_extra_random", P2P_DISCV4_NEIGHBORS);
    CHECK(p.u.neighbors.n == 4 && !p.u.neighbors.oversized);
    CHECK(ep_is(&p.u.neighbors.nodes[0].ep, p2p_ip4(99, 33, 22, 55), 4444, 4445));
    CHECK(ep_is(&p.u.neighbors.nodes[1].ep, p2p_ip4(1, 2, 3, 4), 1, 1));
    CHECK(ep_is(&p.u.neighbors.nodes[2].ep, a6, 3333, 3333));
    CHECK(ep_is(&p.u.neighbors.nodes[3].ep, b6, 999, 1000));
    static const char *const ids[4] = {
        "3155e1427f85f10a5c9a7755877748041af1bcd8d474ec065eb33df57a97babf"
        "54bfd2103575fa829115d224c523596b401065a97f74010610fce76382c0bf32",
        "312c55512422cf9b8a4097e9a6ad79402e87a15ae909a4bfefa22398f03d2095"
        "1933beea1e4dfa6f968212385e829f04c2d314fc2d4e255e0d3bc08792b069db",
        "38643200b172dcfef857492156971f0e6aa2c538d8b74010f8e140811d53b98c"
        "765dd2d96126051913f44582e8c199ad7c6d6819e9a56483f637feaac9448aac",
        "8dcab8618c3253b558d459da53bd8fa68935a719aff8b811197101a4b2b47dd2"
        "d47295286fc00cc081bb542d760717d1bdd6bec2c37cd72eca367d6dd3b9df73"};
    for (int i = 0; i < 4; i++) {
        uint8_t id[64];
        tu_unhex(id, 64, ids[i]);
        CHECK_MEM(p.u.neighbors.nodes[i].id, id, 64);
    }

    /* entries convert to nodes (all four vector keys are curve points) */
    p2p_node_t nd;
    int valid = 0;
    for (unsigned i = 0; i < 4; i++) {
        int rc = p2p_discv4_rpcnode_to_node(&nd, &p.u.neighbors.nodes[i]);
        CHECK(rc == 0 || rc == P2P_EBADKEY);
        if (rc) continue;
        valid++;
        uint8_t nid[32];
        p2p_node_id(nid, p.u.neighbors.nodes[i].id);
        CHECK_MEM(nd.id, nid, 32);
        CHECK(memcmp(&nd.ep, &p.u.neighbors.nodes[i].ep, sizeof nd.ep) == 0);
        p2p_discv4_rpcnode_t back;
        p2p_discv4_rpcnode_from_node(&back, &nd);
        CHECK(memcmp(&back, &p.u.neighbors.nodes[i], sizeof back) == 0);
    }
    CHECK(valid == 4);
    p2p_discv4_rpcnode_t offc = p.u.neighbors.nodes[0];
    offc.id[63] ^= 1;
    CHECK_ERR(p2p_discv4_rpcnode_to_node(&nd, &offc), P2P_EBADKEY);

    /* expiration is checked separately */
    CHECK_OK(p2p_discv4_expired(&p, EXP));
    CHECK_OK(p2p_discv4_expired(&p, EXP - 100));
    CHECK_ERR(p2p_discv4_expired(&p, EXP + 1), P2P_EEXPIRED);
}

/* Seals an RLP body built by the caller. */
static size_t seal(uint8_t *out, uint8_t type, const uint8_t *body, size_t bodylen)
{
    size_t len = 0;
    CHECK_OK(p2p_discv4_seal(out, &len, NULL, type, body, bodylen, key));
    return len;
}

static int decode(p2p_discv4_packet_t *p, const uint8_t *pkt, size_t len)
{
    return p2p_discv4_decode(p, pkt, len);
}

static void put_ep(p2p_rlp_enc_t *e, const uint8_t *ip, size_t iplen, uint64_t udp, uint64_t tcp,
                   int extra)
{
    p2p_rlp_list_begin(e);
    p2p_rlp_put_bytes(e, ip, iplen);
    p2p_rlp_put_uint(e, udp);
    p2p_rlp_put_uint(e, tcp);
    if (extra) p2p_rlp_put_str(e, "extra");
    p2p_rlp_list_end(e);
}

/* Ping body with a chosen item in the enr-seq position (raw may be NULL). */
static size_t ping_body(uint8_t *b, size_t cap, const uint8_t *seqraw, size_t seqlen)
{
    p2p_rlp_enc_t e;
    size_t len;
    static const uint8_t ip[4] = {10, 0, 0, 1};
    p2p_rlp_enc_init(&e, b, cap);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, 4);
    put_ep(&e, ip, 4, 1, 2, 0);
    put_ep(&e, ip, 4, 3, 4, 0);
    p2p_rlp_put_uint(&e, EXP);
    if (seqraw) p2p_rlp_put_raw(&e, seqraw, seqlen);
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    return len;
}

static void test_enr_seq_choice(void)
{
    static p2p_discv4_packet_t p;
    uint8_t body[256], pkt[P2P_DISCV4_MAX_SIZE];
    size_t bl, len;
    struct {
        const char *hex;
        int has;
        uint64_t seq;
    } cases[] = {
        {"", 0, 0},
        {"80", 1, 0},
        {"07", 1, 7},
        {"88ffffffffffffffff", 1, UINT64_MAX},
        {"c0", 0, 0},                   /* list: absent (geth would reject) */
        {"c50102030405", 0, 0},         /* as in ping_v555 */
        {"00", 0, 0},                   /* non-canonical integer: absent */
        {"820001", 0, 0},               /* leading zero: absent */
        {"89010000000000000000", 0, 0}, /* over 64 bits: absent */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t raw[16];
        size_t rl = tu_unhex(raw, sizeof raw, cases[i].hex);
        bl = ping_body(body, sizeof body, rl ? raw : NULL, rl);
        len = seal(pkt, P2P_DISCV4_PING, body, bl);
        CHECK_OK(decode(&p, pkt, len));
        CHECK(p.u.ping.has_enr_seq == (bool)cases[i].has);
        CHECK(p.u.ping.enr_seq == cases[i].seq);
    }
    /* pong with a list there, as in the vector */
    p2p_rlp_enc_t e;
    static const uint8_t tok[32] = {1};
    p2p_rlp_enc_init(&e, body, sizeof body);
    p2p_rlp_list_begin(&e);
    put_ep(&e, tok, 16, 1, 2, 0);
    p2p_rlp_put_bytes(&e, tok, 32);
    p2p_rlp_put_uint(&e, EXP);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, 9);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
    len = seal(pkt, P2P_DISCV4_PONG, body, bl);
    CHECK_OK(decode(&p, pkt, len));
    CHECK(!p.u.pong.has_enr_seq && p.u.pong.reply_tok[0] == 1);
    CHECK(p.u.pong.to.ip.family == 6);
}

static void random_endpoint(p2p_endpoint_t *ep)
{
    memset(ep, 0, sizeof *ep);
    unsigned k = (unsigned)(tu_rand() % 3);
    if (k) {
        ep->ip.family = k == 1 ? 4 : 6;
        tu_rand_bytes(ep->ip.addr, k == 1 ? 4 : 16);
        if (k == 2) ep->ip.addr[0] = 0xfd; /* never IPv4-mapped */
    }
    ep->udp = (uint16_t)tu_rand();
    ep->tcp = (uint16_t)tu_rand();
}

static void test_random(void)
{
    static p2p_discv4_packet_t a, b;
    static uint8_t pkt[P2P_DISCV4_MAX_SIZE];
    for (int round = 0; round < 300; round++) {
        uint8_t priv[32], pub[64], id[32], hash[32];
        CHECK_OK(p2p_secp_keygen(priv));
        CHECK_OK(p2p_secp_pubkey(pub, priv));
        p2p_node_id(id, pub);
        memset(&a, 0, sizeof a);
        a.type = (uint8_t)(1 + round % 6);
        a.expiration = tu_rand() >> (tu_rand() % 64);
        switch (a.type) {
        case P2P_DISCV4_PING:
            a.u.ping.version = 4;
            random_endpoint(&a.u.ping.from);
            random_endpoint(&a.u.ping.to);
            a.u.ping.has_enr_seq = tu_rand() % 2;
            if (a.u.ping.has_enr_seq) a.u.ping.enr_seq = tu_rand() >> (tu_rand() % 64);
            break;
        case P2P_DISCV4_PONG:
            random_endpoint(&a.u.pong.to);
            tu_rand_bytes(a.u.pong.reply_tok, 32);
            a.u.pong.has_enr_seq = tu_rand() % 2;
            if (a.u.pong.has_enr_seq) a.u.pong.enr_seq = tu_rand();
            break;
        case P2P_DISCV4_FINDNODE:
            tu_rand_bytes(a.u.findnode.target, 64);
            break;
        case P2P_DISCV4_NEIGHBORS:
            a.u.neighbors.n = (unsigned)(tu_rand() % (P2P_DISCV4_MAX_NEIGHBORS + 1));
            for (unsigned i = 0; i < a.u.neighbors.n; i++) {
                random_endpoint(&a.u.neighbors.nodes[i].ep);
                tu_rand_bytes(a.u.neighbors.nodes[i].id, 64);
            }
            break;
        case P2P_DISCV4_ENRREQUEST:
            break;
        case P2P_DISCV4_ENRRESPONSE: {
            a.expiration = 0;
            tu_rand_bytes(a.u.enrresponse.reply_tok, 32);
            p2p_enr_t *r = &a.u.enrresponse.record;
            p2p_enr_init(r);
            p2p_enr_set_seq(r, tu_rand());
            p2p_ip_t ip = p2p_ip4(1, 2, 3, (uint8_t)round);
            CHECK_OK(p2p_enr_set_ip(r, &ip));
            CHECK_OK(p2p_enr_set_port(r, "udp", (uint16_t)tu_rand()));
            CHECK_OK(p2p_enr_sign(r, priv));
            break;
        }
        }
        size_t len;
        int rc = p2p_discv4_encode(pkt, &len, hash, &a, priv);
        /* 12 IPv6 neighbors do not fit in 1280 bytes */
        if (a.type == P2P_DISCV4_NEIGHBORS && rc == P2P_ETOOBIG) continue;
        CHECK_OK(rc);
        CHECK(len >= P2P_DISCV4_MIN_SIZE && len <= P2P_DISCV4_MAX_SIZE);
        CHECK_MEM(hash, pkt, 32);
        CHECK_OK(decode(&b, pkt, len));
        CHECK(b.type == a.type && b.expiration == a.expiration);
        CHECK_MEM(b.sender, pub, 64);
        CHECK_MEM(b.sender_id, id, 32);
        CHECK_MEM(b.hash, hash, 32);
        switch (a.type) {
        case P2P_DISCV4_PING:
            CHECK(b.u.ping.version == 4);
            CHECK(memcmp(&b.u.ping.from, &a.u.ping.from, sizeof a.u.ping.from) == 0);
            CHECK(memcmp(&b.u.ping.to, &a.u.ping.to, sizeof a.u.ping.to) == 0);
            CHECK(b.u.ping.has_enr_seq == a.u.ping.has_enr_seq);
            CHECK(b.u.ping.enr_seq == a.u.ping.enr_seq);
            break;
        case P2P_DISCV4_PONG:
            CHECK(memcmp(&b.u.pong.to, &a.u.pong.to, sizeof a.u.pong.to) == 0);
            CHECK_MEM(b.u.pong.reply_tok, a.u.pong.reply_tok, 32);
            CHECK(b.u.pong.has_enr_seq == a.u.pong.has_enr_seq);
            CHECK(b.u.pong.enr_seq == a.u.pong.enr_seq);
            break;
        case P2P_DISCV4_FINDNODE:
            CHECK_MEM(b.u.findnode.target, a.u.findnode.target, 64);
            break;
        case P2P_DISCV4_NEIGHBORS:
            CHECK(b.u.neighbors.n == a.u.neighbors.n && !b.u.neighbors.oversized);
            for (unsigned i = 0; i < a.u.neighbors.n; i++)
                CHECK(memcmp(&b.u.neighbors.nodes[i], &a.u.neighbors.nodes[i],
                             sizeof a.u.neighbors.nodes[i]) == 0);
            break;
        case P2P_DISCV4_ENRRESPONSE: {
            CHECK_MEM(b.u.enrresponse.reply_tok, a.u.enrresponse.reply_tok, 32);
            CHECK_OK(p2p_enr_verify(&b.u.enrresponse.record));
            uint8_t rid[32];
            CHECK_OK(p2p_enr_node_id(&b.u.enrresponse.record, rid));
            CHECK_MEM(rid, id, 32);
            CHECK(b.u.enrresponse.record.seq == a.u.enrresponse.record.seq);
            CHECK_OK(p2p_discv4_expired(&b, UINT64_MAX));
            break;
        }
        default:
            break;
        }
        if (a.type != P2P_DISCV4_ENRRESPONSE && a.expiration < UINT64_MAX)
            CHECK_ERR(p2p_discv4_expired(&b, a.expiration + 1), P2P_EEXPIRED);
        /* the hash covers everything: any flipped bit after it is caught */
        size_t pos = 32 + (size_t)(tu_rand() % (len - 32));
        pkt[pos] ^= (uint8_t)(1u << (tu_rand() % 8));
        CHECK(decode(&b, pkt, len) != 0);
        p2p_discv4_head_t h;
        CHECK(p2p_discv4_precheck(&h, pkt, len) != 0);
        /* truncation at any point */
        CHECK_OK(p2p_discv4_encode(pkt, &len, NULL, &a, priv));
        CHECK_OK(decode(&b, pkt, len));
        CHECK(decode(&b, pkt, (size_t)(tu_rand() % len)) != 0);
    }
}

static void test_rejects(void)
{
    static p2p_discv4_packet_t p;
    static uint8_t pkt[P2P_DISCV4_MAX_SIZE + 64], body[P2P_DISCV4_MAX_SIZE];
    size_t len, bl;
    p2p_discv4_head_t h;

    /* size bounds */
    len = vec(pkt, "ping_v4_plain");
    CHECK_ERR(decode(&p, pkt, 97), P2P_EDECODE);
    CHECK_ERR(decode(&p, pkt, 0), P2P_EDECODE);
    memset(pkt, 0, sizeof pkt);
    pkt[97] = P2P_DISCV4_PING;
    p2p_keccak256(pkt, pkt + 32, 1281 - 32);
    CHECK_ERR(decode(&p, pkt, 1281), P2P_ETOOBIG);
    CHECK_ERR(p2p_discv4_precheck(&h, pkt, 1281), P2P_ETOOBIG);
    p2p_keccak256(pkt, pkt + 32, 1280 - 32);
    CHECK_OK(p2p_discv4_precheck(&h, pkt, 1280)); /* size and hash fine */
    CHECK(decode(&p, pkt, 1280) != 0);            /* body is zeros */
    CHECK_ERR(p2p_discv4_seal(pkt, &len, NULL, 1, body, 1280 - 97, key), P2P_ETOOBIG);
    CHECK_OK(p2p_discv4_seal(pkt, &len, NULL, 1, body, 1280 - 98, key));
    CHECK(len == 1280);

    /* hash, type */
    len = vec(pkt, "ping_v4_plain");
    pkt[0] ^= 1;
    CHECK_ERR(decode(&p, pkt, len), P2P_EBADHASH);
    pkt[0] ^= 1;
    pkt[len - 1] ^= 1;
    CHECK_ERR(decode(&p, pkt, len), P2P_EBADHASH);
    CHECK_ERR(decode(&p, pkt, len - 1), P2P_EBADHASH);
    pkt[len - 1] ^= 1;
    CHECK_OK(decode(&p, pkt, len));
    static const uint8_t types[] = {0, 7, 0xff};
    for (size_t i = 0; i < sizeof types; i++) {
        len = seal(pkt, types[i], (const uint8_t[]){0xc1, 0x01}, 2);
        CHECK_ERR(decode(&p, pkt, len), P2P_EUNSUPPORTED);
    }

    /* signature: v out of range, r = 0, or a different signer */
    len = vec(pkt, "ping_v4_plain");
    pkt[32 + 64] = 2;
    p2p_keccak256(pkt, pkt + 32, len - 32);
    CHECK_ERR(decode(&p, pkt, len), P2P_EBADSIG);
    len = vec(pkt, "ping_v4_plain");
    memset(pkt + 32, 0, 32);
    p2p_keccak256(pkt, pkt + 32, len - 32);
    CHECK_ERR(decode(&p, pkt, len), P2P_EBADSIG);
    len = vec(pkt, "ping_v4_plain");
    pkt[40] ^= 0x10;
    p2p_keccak256(pkt, pkt + 32, len - 32);
    int rc = decode(&p, pkt, len);
    CHECK(rc == P2P_EBADSIG || (rc == 0 && memcmp(p.sender, keypub, 64) != 0));
    /* body changed, hash recomputed: signature no longer matches the key */
    len = vec(pkt, "ping_v4_plain");
    pkt[len - 1] ^= 1; /* expiration */
    p2p_keccak256(pkt, pkt + 32, len - 32);
    rc = decode(&p, pkt, len);
    CHECK(rc == P2P_EBADSIG || (rc == 0 && memcmp(p.sender, keypub, 64) != 0));

    /* garbage and truncated bodies (valid hash and signature) */
    for (int i = 0; i < 200; i++) {
        bl = 1 + (size_t)(tu_rand() % 300);
        tu_rand_bytes(body, bl);
        uint8_t t = (uint8_t)(1 + tu_rand() % 6);
        len = seal(pkt, t, body, bl);
        rc = decode(&p, pkt, len);
        CHECK(rc != 0 || body[0] >= 0xc0);
    }
    len = vec(pkt, "findnode_extra_random");
    uint8_t *b = pkt + 98;
    bl = len - 98;
    size_t flen = 2 + 0x4e; /* f84e list */
    memcpy(body, b, bl);
    len = seal(pkt, P2P_DISCV4_FINDNODE, body, flen - 1);
    CHECK_ERR(decode(&p, pkt, len), P2P_EMORE);
    len = seal(pkt, P2P_DISCV4_FINDNODE, body, flen);
    CHECK_OK(decode(&p, pkt, len));
    CHECK_ERR(decode(&p, pkt, 0), P2P_EDECODE);
    len = seal(pkt, P2P_DISCV4_PING, (const uint8_t[]){0x80}, 1);
    CHECK_ERR(decode(&p, pkt, len), P2P_EDECODE); /* body not a list */
    len = seal(pkt, P2P_DISCV4_ENRREQUEST, (const uint8_t[]){0xc0}, 1);
    CHECK_ERR(decode(&p, pkt, len), P2P_EDECODE); /* missing expiration */
    len = seal(pkt, P2P_DISCV4_ENRREQUEST, (const uint8_t[]){0xc2, 0x81, 0x05}, 3);
    CHECK_ERR(decode(&p, pkt, len), P2P_ENONCANON);
    len = seal(pkt, P2P_DISCV4_ENRREQUEST, (const uint8_t[]){0xc1, 0x05, 0xff, 0xee}, 4);
    CHECK_OK(decode(&p, pkt, len)); /* trailing bytes after the list */
    CHECK(p.expiration == 5);

    /* field sizes and ranges */
    p2p_rlp_enc_t e;
    static const uint8_t ip4[4] = {1, 2, 3, 4}, z64[64] = {0};
    uint8_t tok[33] = {0};
    for (int tl = 31; tl <= 33; tl++) {
        p2p_rlp_enc_init(&e, body, sizeof body);
        p2p_rlp_list_begin(&e);
        put_ep(&e, ip4, 4, 1, 2, 0);
        p2p_rlp_put_bytes(&e, tok, (size_t)tl);
        p2p_rlp_put_uint(&e, EXP);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
        len = seal(pkt, P2P_DISCV4_PONG, body, bl);
        if (tl == 32)
            CHECK_OK(decode(&p, pkt, len));
        else
            CHECK_ERR(decode(&p, pkt, len), P2P_EDECODE);
    }
    p2p_rlp_enc_init(&e, body, sizeof body);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_bytes(&e, z64, 63);
    p2p_rlp_put_uint(&e, EXP);
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
    len = seal(pkt, P2P_DISCV4_FINDNODE, body, bl);
    CHECK_ERR(decode(&p, pkt, len), P2P_EDECODE);
    for (int which = 0; which < 2; which++) {
        p2p_rlp_enc_init(&e, body, sizeof body);
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_uint(&e, 4);
        put_ep(&e, ip4, 4, which ? 65536 : 1, which ? 1 : 65536, 0);
        put_ep(&e, ip4, 4, 1, 65535, 0);
        p2p_rlp_put_uint(&e, EXP);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
        len = seal(pkt, P2P_DISCV4_PING, body, bl);
        CHECK_ERR(decode(&p, pkt, len), P2P_ERANGE);
    }
    /* EIP-8: extra elements in endpoints, odd IP lengths, IPv4-mapped */
    static const uint8_t ip3[3] = {1, 2, 3};
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 9, 8, 7, 6};
    p2p_rlp_enc_init(&e, body, sizeof body);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, 4);
    put_ep(&e, ip3, 3, 1, 2, 1);
    put_ep(&e, mapped, 16, 3, 4, 1);
    p2p_rlp_put_uint(&e, EXP);
    p2p_rlp_put_uint(&e, 77);
    p2p_rlp_put_str(&e, "more");
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
    len = seal(pkt, P2P_DISCV4_PING, body, bl);
    CHECK_OK(decode(&p, pkt, len));
    CHECK(p.u.ping.from.ip.family == 0 && p.u.ping.from.udp == 1 && p.u.ping.from.tcp == 2);
    CHECK(ep_is(&p.u.ping.to, p2p_ip4(9, 8, 7, 6), 3, 4));
    CHECK(p.u.ping.has_enr_seq && p.u.ping.enr_seq == 77);

    /* neighbors: 13 and 16 decode (flagged), a 17th entry is too many */
    for (unsigned n = 12; n <= 17; n++) {
        p2p_rlp_enc_init(&e, body, sizeof body);
        p2p_rlp_list_begin(&e);
        p2p_rlp_list_begin(&e);
        for (unsigned i = 0; i < n; i++) {
            if (i == 16) {
                p2p_rlp_put_uint(&e, 1); /* any 17th item */
                continue;
            }
            p2p_rlp_list_begin(&e);
            p2p_rlp_put_bytes(&e, NULL, 0);
            p2p_rlp_put_uint(&e, i);
            p2p_rlp_put_uint(&e, i);
            p2p_rlp_put_bytes(&e, z64, 64);
            p2p_rlp_list_end(&e);
        }
        p2p_rlp_list_end(&e);
        p2p_rlp_put_uint(&e, EXP);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
        len = seal(pkt, P2P_DISCV4_NEIGHBORS, body, bl);
        if (n <= P2P_DISCV4_NEIGHBORS_CAP) {
            CHECK_OK(decode(&p, pkt, len));
            CHECK(p.u.neighbors.n == n);
            CHECK(p.u.neighbors.oversized == (n > P2P_DISCV4_MAX_NEIGHBORS));
            CHECK(p.u.neighbors.nodes[n - 1].ep.udp == n - 1);
            CHECK(p.u.neighbors.nodes[0].ep.ip.family == 0);
            /* the encoder sends at most 12 */
            uint8_t out[P2P_DISCV4_MAX_SIZE];
            size_t ol;
            rc = p2p_discv4_encode(out, &ol, NULL, &p, key);
            CHECK(n <= P2P_DISCV4_MAX_NEIGHBORS ? rc == 0 : rc == P2P_ETOOBIG);
        } else {
            CHECK_ERR(decode(&p, pkt, len), P2P_ETOOBIG);
        }
    }
    /* a neighbor with a short id fails the packet */
    p2p_rlp_enc_init(&e, body, sizeof body);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_bytes(&e, ip4, 4);
    p2p_rlp_put_uint(&e, 1);
    p2p_rlp_put_uint(&e, 1);
    p2p_rlp_put_bytes(&e, z64, 33);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, EXP);
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
    len = seal(pkt, P2P_DISCV4_NEIGHBORS, body, bl);
    CHECK_ERR(decode(&p, pkt, len), P2P_EDECODE);

    /* ENRResponse: malformed record fails, bad record signature passes decode */
    uint8_t rec[400];
    p2p_enr_t r;
    p2p_enr_init(&r);
    CHECK_OK(p2p_enr_set_port(&r, "udp", 1));
    CHECK_OK(p2p_enr_sign(&r, key));
    size_t rl;
    CHECK_OK(p2p_enr_encode(rec, sizeof rec, &rl, &r));
    rec[10] ^= 1; /* inside the record signature */
    for (int k = 0; k < 3; k++) {
        p2p_rlp_enc_init(&e, body, sizeof body);
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, tok, 32);
        if (k == 0) p2p_rlp_put_raw(&e, rec, rl);
        if (k == 1) p2p_rlp_put_bytes(&e, rec, rl); /* a string, not a record */
        if (k == 2) p2p_rlp_put_raw(&e, (const uint8_t[]){0xc1, 0x80}, 2);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &bl));
        len = seal(pkt, P2P_DISCV4_ENRRESPONSE, body, bl);
        if (k == 0) {
            CHECK_OK(decode(&p, pkt, len));
            CHECK_ERR(p2p_enr_verify(&p.u.enrresponse.record), P2P_EBADSIG);
        } else {
            CHECK_ERR(decode(&p, pkt, len), P2P_EDECODE);
        }
    }
    /* an unsigned record cannot be sent */
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_ENRRESPONSE;
    p2p_enr_init(&p.u.enrresponse.record);
    CHECK_ERR(p2p_discv4_encode(pkt, &len, NULL, &p, key), P2P_ESTATE);
    p.type = 9;
    CHECK_ERR(p2p_discv4_encode(pkt, &len, NULL, &p, key), P2P_EINVAL);

    CHECK(strcmp(p2p_discv4_type_name(P2P_DISCV4_NEIGHBORS), "neighbors") == 0);
    CHECK(strcmp(p2p_discv4_type_name(0), "unknown") == 0);
}

int main(void)
{
    tu_seed(0x5eed0004);
    test_vectors();
    test_enr_seq_choice();
    test_random();
    test_rejects();
    return tu_done("discv4");
}
