/*
 * tests/wire/test_enr.c: ENR (EIP-778) decode, verify, sign, text form.
 *
 * The EIP-778 example decodes, verifies, has the expected node ID and
 * fields, and re-encoding it from its fields and key reproduces the text
 * byte for byte.  Randomised records round-trip (known and unknown keys,
 * list values).  Rejects: over 300 bytes, unsorted and duplicate keys, bad
 * and high-s signatures, invalid curve keys, wrong identity scheme,
 * trailing bytes, malformed text.  Node conversion chooses the endpoint
 * as geth does (test_to_node).
 */
#include <stdlib.h>

#include "core/netutil.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "tests/tu.h"
#include "wire/enode.h"
#include "wire/enr.h"
#include "wire/rlp.h"

static uint8_t key[32];
static char text[512];

/* Builds a record with the given pairs in the given order (no sorting),
 * signed by priv over the content.  sigmod: 0 none, 1 flip a bit, 2 high s. */
struct kv {
    const char *k;
    const uint8_t *raw;
    size_t rawlen;
};
static size_t craft(uint8_t *out, size_t cap, uint64_t seq, const struct kv *kv, size_t n,
                    int sigmod)
{
    uint8_t content[1024], hash[32], sig[65];
    p2p_rlp_enc_t e;
    size_t len;
    p2p_rlp_enc_init(&e, content, sizeof content);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, seq);
    for (size_t i = 0; i < n; i++) {
        p2p_rlp_put_str(&e, kv[i].k);
        p2p_rlp_put_raw(&e, kv[i].raw, kv[i].rawlen);
    }
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    p2p_keccak256(hash, content, len);
    CHECK_OK(p2p_secp_sign(sig, hash, key));
    if (sigmod == 1) sig[10] ^= 1;
    if (sigmod == 2) { /* s := n - s */
        static const uint8_t order[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
                                          0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
                                          0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
        int borrow = 0;
        for (int i = 31; i >= 0; i--) {
            int d = order[i] - sig[32 + i] - borrow;
            borrow = d < 0;
            sig[32 + i] = (uint8_t)(d + (borrow ? 256 : 0));
        }
    }
    p2p_rlp_enc_init(&e, out, cap);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_bytes(&e, sig, 64);
    p2p_rlp_put_uint(&e, seq);
    for (size_t i = 0; i < n; i++) {
        p2p_rlp_put_str(&e, kv[i].k);
        p2p_rlp_put_raw(&e, kv[i].raw, kv[i].rawlen);
    }
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    return len;
}

static const uint8_t RAW_V4[] = {0x82, 'v', '4'};
static const uint8_t RAW_V5[] = {0x82, 'v', '5'};
static const uint8_t RAW_IP[] = {0x84, 127, 0, 0, 1};
static const uint8_t RAW_UDP[] = {0x82, 0x76, 0x5f};
static uint8_t raw_pub[34];

static void test_vector(void)
{
    CHECK(tu_vector_hex("enr.txt", "key", key, sizeof key) == 32);
    uint8_t want_id[32], id[32], pub[64], pub2[64];
    CHECK(tu_vector_hex("enr.txt", "node_id", want_id, 32) == 32);
    CHECK_OK(tu_vector_str("enr.txt", "text", text, sizeof text));
    CHECK_OK(p2p_secp_pubkey(pub, key));
    raw_pub[0] = 0xa1;
    CHECK_OK(p2p_secp_pubkey_compress(raw_pub + 1, pub));

    p2p_enr_t r;
    CHECK_OK(p2p_enr_from_text(&r, text));
    CHECK(r.seq == 1);
    CHECK(r.n == 4);
    CHECK_OK(p2p_enr_node_id(&r, id));
    CHECK_MEM(id, want_id, 32);
    CHECK_OK(p2p_enr_pubkey(&r, pub2));
    CHECK_MEM(pub2, pub, 64);
    char sid[P2P_ENR_MAX_ID_LEN + 1];
    CHECK_OK(p2p_enr_id(&r, sid));
    CHECK(strcmp(sid, "v4") == 0);
    p2p_ip_t ip;
    CHECK_OK(p2p_enr_ip4(&r, &ip));
    CHECK(p2p_ip_equal(&ip, &(p2p_ip_t){.family = 4, .addr = {127, 0, 0, 1}}));
    CHECK_ERR(p2p_enr_ip6(&r, &ip), P2P_ENOTFOUND);
    uint16_t port;
    CHECK_OK(p2p_enr_port(&r, &port, "udp"));
    CHECK(port == 30303);
    CHECK_ERR(p2p_enr_port(&r, &port, "tcp"), P2P_ENOTFOUND);
    CHECK_ERR(p2p_enr_port(&r, &port, "ip"), P2P_EDECODE);

    char out[P2P_ENR_MAX_TEXT];
    CHECK_OK(p2p_enr_to_text(out, sizeof out, &r));
    CHECK(strcmp(out, text) == 0);
    CHECK_ERR(p2p_enr_to_text(out, strlen(text), &r), P2P_ETOOBIG);
    CHECK_OK(p2p_enr_to_text(out, strlen(text) + 1, &r));

    p2p_node_t n;
    CHECK_OK(p2p_enr_to_node(&n, &r));
    CHECK_MEM(n.id, want_id, 32);
    CHECK_MEM(n.pubkey, pub, 64);
    CHECK(n.ep.ip.family == 4 && n.ep.udp == 30303 && n.ep.tcp == 0 && n.seq == 1);

    /* rebuilt from its fields and key: byte for byte (RFC 6979 signing) */
    p2p_enr_t b;
    p2p_enr_init(&b);
    p2p_enr_set_seq(&b, 1);
    CHECK_OK(p2p_enr_set_port(&b, "udp", 30303));
    CHECK_OK(p2p_enr_set_ip(&b, &(p2p_ip_t){.family = 4, .addr = {127, 0, 0, 1}}));
    CHECK_ERR(p2p_enr_to_text(out, sizeof out, &b), P2P_ESTATE);
    CHECK_OK(p2p_enr_sign(&b, key));
    CHECK_OK(p2p_enr_to_text(out, sizeof out, &b));
    CHECK(strcmp(out, text) == 0);
    uint8_t e1[P2P_ENR_MAX_SIZE], e2[P2P_ENR_MAX_SIZE];
    size_t l1, l2;
    CHECK_OK(p2p_enr_encode(e1, sizeof e1, &l1, &r));
    CHECK_OK(p2p_enr_encode(e2, sizeof e2, &l2, &b));
    CHECK(l1 == l2 && l1 == 134);
    CHECK_MEM(e1, e2, l1);
    CHECK_ERR(p2p_enr_encode(e2, l1 - 1, &l2, &b), P2P_ETOOBIG);
    /* the same record assembled raw through craft() */
    struct kv kv[] = {
        {"id", RAW_V4, 3}, {"ip", RAW_IP, 5}, {"secp256k1", raw_pub, 34}, {"udp", RAW_UDP, 3}};
    l2 = craft(e2, sizeof e2, 1, kv, 4, 0);
    CHECK(l2 == l1);
    CHECK_MEM(e1, e2, l1);

    /* any change clears the signature; re-signing with a bumped seq works */
    CHECK_OK(p2p_enr_set_port(&b, "tcp", 30303));
    CHECK(!b.signed_);
    CHECK_ERR(p2p_enr_verify(&b), P2P_EBADSIG);
    p2p_enr_set_seq(&b, 2);
    CHECK_OK(p2p_enr_sign(&b, key));
    CHECK_OK(p2p_enr_verify(&b));
    CHECK_OK(p2p_enr_encode(e2, sizeof e2, &l2, &b));
    CHECK_OK(p2p_enr_decode(&r, e2, l2));
    CHECK(r.seq == 2);
    CHECK_OK(p2p_enr_port(&r, &port, "tcp"));
    CHECK(port == 30303);
    CHECK_OK(p2p_enr_delete(&b, "tcp"));
    CHECK_ERR(p2p_enr_delete(&b, "tcp"), P2P_ENOTFOUND);
    CHECK(b.n == 4);
}

static void test_rejects(void)
{
    uint8_t buf[1024];
    size_t len;
    p2p_enr_t r;
    struct kv good[] = {
        {"id", RAW_V4, 3}, {"ip", RAW_IP, 5}, {"secp256k1", raw_pub, 34}, {"udp", RAW_UDP, 3}};

    len = craft(buf, sizeof buf, 7, good, 4, 0);
    CHECK_OK(p2p_enr_decode(&r, buf, len));
    CHECK(r.seq == 7);

    /* signature: flipped bit, high s */
    len = craft(buf, sizeof buf, 7, good, 4, 1);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADSIG);
    CHECK_OK(p2p_enr_decode_unverified(&r, buf, len));
    CHECK_ERR(p2p_enr_verify(&r), P2P_EBADSIG);
    len = craft(buf, sizeof buf, 7, good, 4, 2);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADSIG);
    /* content changed after signing */
    len = craft(buf, sizeof buf, 7, good, 4, 0);
    buf[len - 1] ^= 1; /* udp port */
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADSIG);
    /* a 63-byte signature */
    len = craft(buf, sizeof buf, 7, good, 4, 0);
    {
        p2p_rlp_t c, l;
        const uint8_t *sig;
        size_t slen;
        p2p_rlp_init(&c, buf, len);
        CHECK_OK(p2p_rlp_enter(&c, &l));
        CHECK_OK(p2p_rlp_bytes(&l, &sig, &slen));
        uint8_t rest[512], re[512];
        size_t restlen = (size_t)(l.end - l.p);
        memcpy(rest, l.p, restlen);
        p2p_rlp_enc_t e;
        p2p_rlp_enc_init(&e, re, sizeof re);
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, sig, 63);
        p2p_rlp_put_raw(&e, rest, restlen);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &len));
        CHECK_ERR(p2p_enr_decode(&r, re, len), P2P_EBADSIG);
    }

    /* unsorted and duplicate keys */
    struct kv unsorted[] = {{"id", RAW_V4, 3}, {"secp256k1", raw_pub, 34}, {"ip", RAW_IP, 5}};
    len = craft(buf, sizeof buf, 1, unsorted, 3, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ENONCANON);
    CHECK_ERR(p2p_enr_decode_unverified(&r, buf, len), P2P_ENONCANON);
    struct kv dup[] = {
        {"id", RAW_V4, 3}, {"ip", RAW_IP, 5}, {"ip", RAW_IP, 5}, {"secp256k1", raw_pub, 34}};
    len = craft(buf, sizeof buf, 1, dup, 4, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ENONCANON);
    /* a key that is a prefix sorts first: "ip" < "ip6" */
    static const uint8_t raw_ip6[17] = {0x90, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                        0,    0,    0,    0,    0,    0, 0, 1};
    struct kv pref[] = {
        {"id", RAW_V4, 3}, {"ip", RAW_IP, 5}, {"ip6", raw_ip6, 17}, {"secp256k1", raw_pub, 34}};
    len = craft(buf, sizeof buf, 1, pref, 4, 0);
    CHECK_OK(p2p_enr_decode(&r, buf, len));
    p2p_ip_t ip;
    CHECK_OK(p2p_enr_ip6(&r, &ip));
    CHECK(ip.family == 6 && ip.addr[0] == 0x20 && ip.addr[15] == 1);
    struct kv pref2[] = {
        {"id", RAW_V4, 3}, {"ip6", raw_ip6, 17}, {"ip", RAW_IP, 5}, {"secp256k1", raw_pub, 34}};
    len = craft(buf, sizeof buf, 1, pref2, 4, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ENONCANON);

    /* identity scheme and key */
    struct kv v5[] = {{"id", RAW_V5, 3}, {"secp256k1", raw_pub, 34}};
    len = craft(buf, sizeof buf, 1, v5, 2, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EUNSUPPORTED);
    CHECK_OK(p2p_enr_decode_unverified(&r, buf, len));
    struct kv noid[] = {{"secp256k1", raw_pub, 34}};
    len = craft(buf, sizeof buf, 1, noid, 1, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EUNSUPPORTED);
    uint8_t badpt[34] = {0xa1, 0x02};
    badpt[33] = 5; /* x = 5: x^3 + 7 is not a square mod p */
    struct kv bad[] = {{"id", RAW_V4, 3}, {"secp256k1", badpt, 34}};
    len = craft(buf, sizeof buf, 1, bad, 2, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADKEY);
    uint8_t pfx[34];
    memcpy(pfx, raw_pub, 34);
    pfx[1] = 0x05; /* not a compressed-point prefix */
    bad[1].raw = pfx;
    len = craft(buf, sizeof buf, 1, bad, 2, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADKEY);
    uint8_t pub[64], raw65[67] = {0xb8, 0x41, 0x04};
    CHECK_OK(p2p_secp_pubkey(pub, key));
    memcpy(raw65 + 3, pub, 64); /* the uncompressed form is not allowed in ENR */
    struct kv unc[] = {{"id", RAW_V4, 3}, {"secp256k1", raw65, 67}};
    len = craft(buf, sizeof buf, 1, unc, 2, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADKEY);
    struct kv nokey[] = {{"id", RAW_V4, 3}};
    len = craft(buf, sizeof buf, 1, nokey, 1, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EBADKEY);

    /* size: 300 bytes accepted, 301 rejected */
    static uint8_t blob[300];
    for (size_t vl = 150; vl < 260; vl++) {
        uint8_t raw[300];
        p2p_rlp_enc_t e;
        size_t rl;
        p2p_rlp_enc_init(&e, raw, sizeof raw);
        p2p_rlp_put_bytes(&e, blob, vl);
        CHECK_OK(p2p_rlp_enc_finish(&e, &rl));
        struct kv big[] = {{"id", RAW_V4, 3}, {"secp256k1", raw_pub, 34}, {"z", raw, rl}};
        len = craft(buf, sizeof buf, 1, big, 3, 0);
        if (len == 300) CHECK_OK(p2p_enr_decode(&r, buf, len));
        if (len == 301) CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ETOOBIG);
        if (len > 300) CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ETOOBIG);
        /* the builder refuses to sign what it could not encode */
        p2p_enr_t b;
        p2p_enr_init(&b);
        p2p_enr_set_seq(&b, 1);
        CHECK_OK(p2p_enr_set_raw(&b, "z", raw, rl));
        int rc = p2p_enr_sign(&b, key);
        CHECK(len <= 300 ? rc == 0 : rc == P2P_ETOOBIG);
        if (rc == 0) {
            uint8_t enc[300];
            size_t el;
            CHECK_OK(p2p_enr_encode(enc, sizeof enc, &el, &b));
            CHECK(el == len);
            CHECK_MEM(enc, buf, len);
        }
    }

    /* structure */
    len = craft(buf, sizeof buf, 1, good, 4, 0);
    buf[len] = 0x80;
    CHECK_ERR(p2p_enr_decode(&r, buf, len + 1), P2P_EDECODE); /* trailing */
    CHECK_ERR(p2p_enr_decode(&r, buf, len - 1), P2P_EMORE);
    CHECK_ERR(p2p_enr_decode(&r, buf, 0), P2P_EEMPTY);
    struct kv odd[] = {{"id", RAW_V4, 3}, {"secp256k1", raw_pub, 34}, {"z", NULL, 0}};
    len = craft(buf, sizeof buf, 1, odd, 3, 0); /* "z" without a value */
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_EDECODE);
    static const uint8_t noncanon[] = {0x81, 0x05};
    struct kv nc[] = {{"id", RAW_V4, 3}, {"secp256k1", raw_pub, 34}, {"z", noncanon, 2}};
    len = craft(buf, sizeof buf, 1, nc, 3, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ENONCANON);
    static const uint8_t nested_nc[] = {0xc3, 0xc2, 0x81, 0x05};
    nc[2].raw = nested_nc;
    nc[2].rawlen = 4;
    len = craft(buf, sizeof buf, 1, nc, 3, 0);
    CHECK_ERR(p2p_enr_decode(&r, buf, len), P2P_ENONCANON);
    static const uint8_t notrec[] = {0x83, 1, 2, 3};
    CHECK_ERR(p2p_enr_decode(&r, notrec, 4), P2P_EDECODE);
    static const uint8_t listkey[] = {0xc4, 0x80, 0x01, 0xc0, 0x80};
    CHECK_ERR(p2p_enr_decode_unverified(&r, listkey, 5), P2P_EDECODE);
    static const uint8_t nosig[] = {0xc0};
    CHECK_ERR(p2p_enr_decode_unverified(&r, nosig, 1), P2P_EDECODE);
    static const uint8_t noseq[] = {0xc1, 0x80};
    CHECK_ERR(p2p_enr_decode_unverified(&r, noseq, 2), P2P_EDECODE);
    static const uint8_t badseq[] = {0xc3, 0x80, 0x81, 0x00};
    CHECK_ERR(p2p_enr_decode_unverified(&r, badseq, 4), P2P_ENONCANON);

    /* text form */
    char t[600];
    CHECK_ERR(p2p_enr_from_text(&r, "enode://00"), P2P_EINVAL);
    CHECK_ERR(p2p_enr_from_text(&r, "enr:"), P2P_EEMPTY);
    snprintf(t, sizeof t, "%s=", text);
    CHECK_ERR(p2p_enr_from_text(&r, t), P2P_EINVAL);
    snprintf(t, sizeof t, "%.20s %s", text, text + 20);
    CHECK_ERR(p2p_enr_from_text(&r, t), P2P_EINVAL);
    snprintf(t, sizeof t, "%sA", text);
    CHECK(p2p_enr_from_text(&r, t) != 0);
    snprintf(t, sizeof t, "%s", text);
    t[10] = '+'; /* standard, not url, alphabet */
    CHECK_ERR(p2p_enr_from_text(&r, t), P2P_EINVAL);
    snprintf(t, sizeof t, "%s", text);
    t[30] = t[30] == 'A' ? 'B' : 'A';
    CHECK(p2p_enr_from_text(&r, t) != 0);
    /* unused low bits of the last character are ignored, as the reference
     * client's decoder does: the same record */
    {
        static const char abc[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t n = strlen(text) - 4;
        CHECK(n % 4 != 0);
        snprintf(t, sizeof t, "%s", text);
        size_t v = (size_t)(strchr(abc, t[4 + n - 1]) - abc);
        size_t mask = n % 4 == 3 ? 3 : 15;
        CHECK((v & mask) == 0);
        t[4 + n - 1] = abc[v | mask];
        p2p_enr_t a, b2;
        uint8_t ea[P2P_ENR_MAX_SIZE], eb[P2P_ENR_MAX_SIZE];
        size_t la, lb;
        CHECK_OK(p2p_enr_from_text(&a, text));
        CHECK_OK(p2p_enr_from_text(&b2, t));
        CHECK_OK(p2p_enr_encode(ea, sizeof ea, &la, &a));
        CHECK_OK(p2p_enr_encode(eb, sizeof eb, &lb, &b2));
        CHECK(la == lb);
        CHECK_MEM(ea, eb, la);
    }
    memset(t, 'A', sizeof t);
    memcpy(t, "enr:", 4);
    t[sizeof t - 1] = 0;
    CHECK_ERR(p2p_enr_from_text(&r, t), P2P_ETOOBIG);

    /* accessor errors */
    p2p_enr_t b;
    p2p_enr_init(&b);
    static const uint8_t ip3[] = {0x83, 1, 2, 3}, port3[] = {0x83, 1, 0, 0};
    CHECK_OK(p2p_enr_set_raw(&b, "ip", ip3, 4));
    CHECK_OK(p2p_enr_set_raw(&b, "udp", port3, 4));
    CHECK_OK(p2p_enr_set_raw(&b, "id", (const uint8_t[]){0xc0}, 1));
    uint16_t port;
    CHECK_ERR(p2p_enr_ip4(&b, &ip), P2P_EDECODE);
    CHECK_ERR(p2p_enr_port(&b, &port, "udp"), P2P_EDECODE);
    /* "ip" is exactly 4 bytes and "ip6" exactly 16: longer is no address
     * either (nor an IPv4 address under "ip6") */
    static const uint8_t ip5[] = {0x85, 1, 2, 3, 4, 5}, ip4[] = {0x84, 1, 2, 3, 4};
    uint8_t ip6raw[18] = {0x91};
    CHECK_OK(p2p_enr_set_raw(&b, "ip", ip5, sizeof ip5));
    CHECK_ERR(p2p_enr_ip4(&b, &ip), P2P_EDECODE);
    CHECK_OK(p2p_enr_set_raw(&b, "ip6", ip4, sizeof ip4));
    CHECK_ERR(p2p_enr_ip6(&b, &ip), P2P_EDECODE);
    CHECK_OK(p2p_enr_set_raw(&b, "ip6", ip6raw, 18)); /* 17 bytes */
    CHECK_ERR(p2p_enr_ip6(&b, &ip), P2P_EDECODE);
    ip6raw[0] = 0x90;
    CHECK_OK(p2p_enr_set_raw(&b, "ip6", ip6raw, 17)); /* 16 bytes: accepted */
    CHECK_OK(p2p_enr_ip6(&b, &ip));
    CHECK(ip.family == 6);
    CHECK_OK(p2p_enr_set_raw(&b, "ip", ip3, 4));
    char sid[P2P_ENR_MAX_ID_LEN + 1];
    CHECK_ERR(p2p_enr_id(&b, sid), P2P_EDECODE);
    CHECK_ERR(p2p_enr_pubkey(&b, pub), P2P_ENOTFOUND);
    CHECK_ERR(p2p_enr_set_raw(&b, "x", noncanon, 2), P2P_EINVAL);
    CHECK_ERR(p2p_enr_set_raw(&b, "x", noncanon, 0), P2P_EINVAL);
    CHECK_ERR(p2p_enr_set_ip(&b, &(p2p_ip_t){0}), P2P_EINVAL);
    CHECK_ERR(p2p_enr_verify(&b), P2P_EUNSUPPORTED);
    p2p_node_t n;
    CHECK_ERR(p2p_enr_to_node(&n, &b), P2P_ENOTFOUND);
    /* pair limit */
    p2p_enr_init(&b);
    int rc = 0;
    unsigned i;
    for (i = 0; i < 200 && rc == 0; i++) {
        char k[3] = {(char)('a' + i / 26), (char)('a' + i % 26), 0};
        rc = p2p_enr_set_raw(&b, k, (const uint8_t[]){0x01}, 1);
    }
    /* 3 bytes a pair: the 300-byte size limit comes first */
    CHECK(rc == P2P_ETOOBIG && b.n == P2P_ENR_MAX_SIZE / 3);
    CHECK(b.n < P2P_ENR_MAX_PAIRS);
}

/* EIP-778 limits a record's size, not its pair count: a signed v4 record
 * of one-byte keys and values (92 pairs in 300 bytes) decodes, verifies and
 * re-encodes byte for byte. */
static void test_many_pairs(void)
{
    uint8_t priv[32], enc[P2P_ENR_MAX_SIZE], enc2[P2P_ENR_MAX_SIZE];
    size_t len = 0, len2;
    CHECK_OK(p2p_secp_keygen(priv));
    p2p_enr_t r, d;
    p2p_enr_init(&r);
    unsigned added = 0;
    for (int k = 1; k < 0x80; k++) {
        char name[2] = {(char)k, 0};
        p2p_enr_t t = r;
        if (p2p_enr_set_raw(&t, name, (const uint8_t[]){0x01}, 1) != 0) break;
        if (p2p_enr_sign(&t, priv) != 0) break;
        if (p2p_enr_encode(enc, sizeof enc, &len, &t) != 0) break;
        r = t;
        added++;
    }
    CHECK(r.n == added + 2); /* + id, secp256k1 */
    CHECK(r.n == 92);
    CHECK_OK(p2p_enr_encode(enc, sizeof enc, &len, &r));
    CHECK(len > P2P_ENR_MAX_SIZE - 2 && len <= P2P_ENR_MAX_SIZE);
    CHECK_OK(p2p_enr_decode(&d, enc, len));
    CHECK(d.n == r.n);
    CHECK_OK(p2p_enr_verify(&d));
    CHECK_OK(p2p_enr_encode(enc2, sizeof enc2, &len2, &d));
    CHECK(len2 == len);
    CHECK_MEM(enc2, enc, len);
}

/* Random records with standard and unknown keys. */
static void test_random(void)
{
    static const char *const ukeys[] = {"a", "eth", "les", "snap", "z", "ip4x", "\x7f"};
    unsigned signed_ok = 0, too_big = 0;
    for (int round = 0; round < 300; round++) {
        uint8_t priv[32];
        CHECK_OK(p2p_secp_keygen(priv));
        p2p_enr_t r;
        p2p_enr_init(&r);
        p2p_enr_set_seq(&r, tu_rand() >> (tu_rand() % 64));
        p2p_ip_t ip4 = {.family = 4}, ip6 = {.family = 6};
        tu_rand_bytes(ip4.addr, 4);
        tu_rand_bytes(ip6.addr, 16);
        /* global unicast both (1-9.x.x.x, 2000::/3): "ip" wins a tie;
         * test_to_node covers the choice between addresses */
        ip4.addr[0] = (uint8_t)(1 + tu_rand() % 9);
        ip6.addr[0] = (uint8_t)(0x20 | (ip6.addr[0] & 0x1f));
        uint16_t ports[4];
        static const char *const pk[4] = {"tcp", "udp", "tcp6", "udp6"};
        bool has[4] = {0}, h4 = tu_rand() % 2, h6 = tu_rand() % 2;
        if (h4) CHECK_OK(p2p_enr_set_ip(&r, &ip4));
        if (h6) CHECK_OK(p2p_enr_set_ip(&r, &ip6));
        for (int k = 0; k < 4; k++) {
            ports[k] = (uint16_t)tu_rand();
            if ((has[k] = tu_rand() % 2)) CHECK_OK(p2p_enr_set_port(&r, pk[k], ports[k]));
        }
        unsigned nu = (unsigned)(tu_rand() % 4);
        for (unsigned k = 0; k < nu; k++) {
            uint8_t raw[120];
            p2p_rlp_enc_t e;
            size_t rl;
            p2p_rlp_enc_init(&e, raw, sizeof raw);
            if (tu_rand() % 2) {
                p2p_rlp_list_begin(&e);
                p2p_rlp_put_str(&e, "x");
                p2p_rlp_put_uint(&e, tu_rand());
                p2p_rlp_list_begin(&e);
                p2p_rlp_list_end(&e);
                p2p_rlp_list_end(&e);
            } else {
                uint8_t b[70];
                size_t bl = (size_t)(tu_rand() % sizeof b);
                tu_rand_bytes(b, bl);
                p2p_rlp_put_bytes(&e, b, bl);
            }
            CHECK_OK(p2p_rlp_enc_finish(&e, &rl));
            CHECK_OK(p2p_enr_set_raw(&r, ukeys[tu_rand() % 7], raw, rl));
        }
        int rc = p2p_enr_sign(&r, priv);
        if (rc == P2P_ETOOBIG) {
            too_big++;
            continue;
        }
        CHECK_OK(rc);
        signed_ok++;
        uint8_t enc[P2P_ENR_MAX_SIZE], enc2[P2P_ENR_MAX_SIZE];
        size_t len, len2;
        CHECK_OK(p2p_enr_encode(enc, sizeof enc, &len, &r));
        p2p_enr_t d;
        CHECK_OK(p2p_enr_decode(&d, enc, len));
        CHECK(d.seq == r.seq && d.n == r.n && d.datalen == r.datalen);
        CHECK_MEM(d.data, r.data, r.datalen);
        CHECK_OK(p2p_enr_encode(enc2, sizeof enc2, &len2, &d));
        CHECK(len2 == len);
        CHECK_MEM(enc2, enc, len);
        char t[P2P_ENR_MAX_TEXT];
        CHECK_OK(p2p_enr_to_text(t, sizeof t, &r));
        CHECK_OK(p2p_enr_from_text(&d, t));
        CHECK_OK(p2p_enr_encode(enc2, sizeof enc2, &len2, &d));
        CHECK(len2 == len);
        CHECK_MEM(enc2, enc, len);
        /* keys sorted and unique */
        for (unsigned k = 1; k < d.n; k++) {
            const p2p_enr_pair_t *a = &d.kv[k - 1], *b = &d.kv[k];
            size_t m = a->klen < b->klen ? a->klen : b->klen;
            int c = memcmp(d.data + a->koff, d.data + b->koff, m);
            CHECK(c < 0 || (c == 0 && a->klen < b->klen));
        }
        /* node conversion */
        p2p_node_t n;
        uint8_t pub[64];
        CHECK_OK(p2p_secp_pubkey(pub, priv));
        CHECK_OK(p2p_enr_to_node(&n, &d));
        CHECK_MEM(n.pubkey, pub, 64);
        CHECK(n.seq == r.seq);
        if (h4) {
            CHECK(p2p_ip_equal(&n.ep.ip, &ip4));
            CHECK(n.ep.udp == (has[1] ? ports[1] : 0));
            CHECK(n.ep.tcp == (has[0] ? ports[0] : 0));
        } else if (h6) {
            CHECK(p2p_ip_equal(&n.ep.ip, &ip6));
            CHECK(n.ep.udp == (has[3] ? ports[3] : has[1] ? ports[1] : 0));
            CHECK(n.ep.tcp == (has[2] ? ports[2] : has[0] ? ports[0] : 0));
        } else {
            CHECK(n.ep.ip.family == 0);
            CHECK(n.ep.udp == (has[1] ? ports[1] : 0));
            CHECK(n.ep.tcp == (has[0] ? ports[0] : 0));
        }
        /* a flipped bit anywhere is never accepted as the same record */
        size_t pos = (size_t)(tu_rand() % len);
        enc[pos] ^= (uint8_t)(1u << (tu_rand() % 8));
        CHECK(p2p_enr_decode(&d, enc, len) != 0);
    }
    CHECK(signed_ok > 200);
    printf("random: %u signed, %u over the size limit\n", signed_ok, too_big);
}

/* One to_node case for a node whose sockets reach family (4, 6; 0: both):
 * entries as (key, text) where text is an address ("ip", "ip6"), a port
 * number, or "raw:" and hex for a raw value. */
typedef struct case_kv {
    const char *k, *v;
} kv_t;

static void to_node_case(const char *what, unsigned family, const kv_t *kvs, size_t nkv,
                         const char *want_ip, uint16_t want_udp, uint16_t want_tcp)
{
    p2p_enr_t r;
    p2p_enr_init(&r);
    for (size_t i = 0; i < nkv; i++) {
        const char *k = kvs[i].k, *v = kvs[i].v;
        if (strncmp(v, "raw:", 4) == 0) {
            uint8_t raw[40];
            size_t n = strlen(v + 4) / 2;
            CHECK(tu_unhex(raw, n, v + 4) == n);
            CHECK_OK(p2p_enr_set_raw(&r, k, raw, n));
        } else if (strcmp(k, "ip") == 0 || strcmp(k, "ip6") == 0) {
            p2p_ip_t ip;
            CHECK_OK(p2p_ip_parse(&ip, v));
            if (strcmp(k, "ip6") == 0 && ip.family == 4) { /* ::ffff:a.b.c.d as 16 bytes */
                uint8_t raw[17] = {0x90};
                raw[11] = raw[12] = 0xff;
                memcpy(raw + 13, ip.addr, 4);
                CHECK_OK(p2p_enr_set_raw(&r, "ip6", raw, 17));
            } else {
                CHECK_OK(p2p_enr_set_ip(&r, &ip));
            }
        } else {
            CHECK_OK(p2p_enr_set_port(&r, k, (uint16_t)atoi(v)));
        }
    }
    CHECK_OK(p2p_enr_sign(&r, key));
    p2p_node_t n;
    int rc = p2p_enr_to_node_for(&n, &r, family);
    if (family == 0) {
        p2p_node_t n0;
        CHECK(p2p_enr_to_node(&n0, &r) == rc);
        CHECK(rc != 0 || memcmp(&n0, &n, sizeof n) == 0);
    }
    char got[P2P_IP_STRLEN];
    p2p_ip_format(got, &n.ep.ip);
    if (rc != 0 || strcmp(got, want_ip) != 0 || n.ep.udp != want_udp || n.ep.tcp != want_tcp)
        printf("to_node %s (family %u): rc %d, %s udp %u tcp %u; want %s udp %u tcp %u\n", what,
               family, rc, got, n.ep.udp, n.ep.tcp, want_ip, want_udp, want_tcp);
    CHECK_OK(rc);
    CHECK(strcmp(got, want_ip) == 0);
    CHECK(n.ep.udp == want_udp && n.ep.tcp == want_tcp);
    /* the text form, as given to --bootnodes, gives the same node */
    char t[P2P_ENR_MAX_TEXT];
    CHECK_OK(p2p_enr_to_text(t, sizeof t, &r));
    p2p_node_t pn;
    CHECK_OK(p2p_node_parse_for(&pn, t, family, NULL));
    CHECK(p2p_ip_equal(&pn.ep.ip, &n.ep.ip) && pn.ep.udp == n.ep.udp && pn.ep.tcp == n.ep.tcp);
}

/* ENR to endpoint, as geth does it: each entry on its own (a malformed one
 * is ignored, not fatal), the more global of two usable addresses,
 * multicast never, an IPv4-mapped ip6 as IPv4. */
static void test_to_node(void)
{
#define CASE(what, ip, udp, tcp, ...)                                                              \
    do {                                                                                           \
        static const kv_t kvs[] = {__VA_ARGS__};                                                   \
        to_node_case(what, 0, kvs, sizeof kvs / sizeof kvs[0], ip, udp, tcp);                      \
    } while (0)
#define CASE_FOR(what, family, ip, udp, tcp, ...)                                                  \
    do {                                                                                           \
        static const kv_t kvs[] = {__VA_ARGS__};                                                   \
        to_node_case(what, family, kvs, sizeof kvs / sizeof kvs[0], ip, udp, tcp);                 \
    } while (0)
    CASE("tcp over 65535 ignored", "1.2.3.4", 30303, 0, {"ip", "1.2.3.4"}, {"tcp", "raw:83010000"},
         {"udp", "30303"});
    CASE("3-byte ip, ip6 used", "2001:4860::1", 30304, 0, {"ip", "raw:83010203"},
         {"ip6", "2001:4860::1"}, {"udp6", "30304"});
    CASE("private ip, global ip6", "2001:4860::1", 2, 0, {"ip", "192.168.1.5"},
         {"ip6", "2001:4860::1"}, {"udp", "1"}, {"udp6", "2"});
    CASE("unspecified ip, global ip6", "2001:4860::1", 0, 7, {"ip", "0.0.0.0"},
         {"ip6", "2001:4860::1"}, {"tcp", "7"});
    CASE("both global: ip", "1.2.3.4", 1, 0, {"ip", "1.2.3.4"}, {"ip6", "2001:4860::1"},
         {"udp", "1"}, {"udp6", "2"});
    CASE("both loopback: ip", "127.0.0.1", 1, 0, {"ip", "127.0.0.1"}, {"ip6", "::1"}, {"udp", "1"},
         {"udp6", "2"});
    CASE("multicast ip, link-local ip6", "fe80::1", 2, 0, {"ip", "224.0.0.1"}, {"ip6", "fe80::1"},
         {"udp", "1"}, {"udp6", "2"});
    CASE("private ip over link-local ip6", "10.0.0.1", 1, 0, {"ip", "10.0.0.1"}, {"ip6", "fe80::1"},
         {"udp", "1"}, {"udp6", "2"});
    CASE("ip6 ::ffff:1.2.3.4 is IPv4", "1.2.3.4", 30303, 30304, {"ip6", "1.2.3.4"},
         {"tcp", "30304"}, {"udp", "30303"}, {"udp6", "9"});
    CASE("only a multicast ip: no address, the ports", "<none>", 5, 6, {"ip", "239.1.1.1"},
         {"tcp", "6"}, {"udp", "5"});
    CASE("malformed udp6 falls back to udp", "2001:db8::5", 5, 0, {"ip6", "2001:db8::5"},
         {"udp", "5"}, {"udp6", "raw:8401000000"});
    CASE("ip6 of 4 bytes ignored", "1.2.3.4", 0, 0, {"ip", "1.2.3.4"}, {"ip6", "raw:8401020304"});

    /* A node whose sockets reach one family takes the address of that
     * family when the record names both, whatever their locality. */
    CASE_FOR("IPv6 node, both loopback: ip6", 6, "::1", 2, 4, {"ip", "127.0.0.1"}, {"ip6", "::1"},
             {"tcp", "3"}, {"tcp6", "4"}, {"udp", "1"}, {"udp6", "2"});
    CASE_FOR("IPv6 node, both global: ip6, udp falls back", 6, "2001:4860::1", 1, 3,
             {"ip", "1.2.3.4"}, {"ip6", "2001:4860::1"}, {"tcp", "3"}, {"udp", "1"});
    CASE_FOR("IPv6 node, global ip over link-local ip6", 6, "fe80::1", 2, 0, {"ip", "1.2.3.4"},
             {"ip6", "fe80::1"}, {"udp", "1"}, {"udp6", "2"});
    CASE_FOR("IPv4 node, private ip, global ip6: ip", 4, "192.168.1.5", 1, 0, {"ip", "192.168.1.5"},
             {"ip6", "2001:4860::1"}, {"udp", "1"}, {"udp6", "2"});
    CASE_FOR("IPv4 node, loopback ip, global ip6: ip", 4, "127.0.0.1", 1, 3, {"ip", "127.0.0.1"},
             {"ip6", "2001:db8::1"}, {"tcp", "3"}, {"tcp6", "4"}, {"udp", "1"}, {"udp6", "2"});
    CASE_FOR("IPv4 node, unusable ip: ip6", 4, "2001:4860::1", 2, 0, {"ip", "224.0.0.1"},
             {"ip6", "2001:4860::1"}, {"udp", "1"}, {"udp6", "2"});
    CASE_FOR("IPv6 node, only ip: ip", 6, "1.2.3.4", 1, 0, {"ip", "1.2.3.4"}, {"udp", "1"});
    CASE_FOR("IPv4 node, only ip6: ip6", 4, "::1", 2, 0, {"ip6", "::1"}, {"udp6", "2"});
    CASE_FOR("IPv6 node, mapped ip6 is IPv4: the more global", 6, "1.2.3.4", 1, 0,
             {"ip", "10.0.0.1"}, {"ip6", "1.2.3.4"}, {"udp", "1"});
    CASE_FOR("dual-stack node: as geth, the more global", 0, "2001:4860::1", 2, 0,
             {"ip", "127.0.0.1"}, {"ip6", "2001:4860::1"}, {"udp", "1"}, {"udp6", "2"});
#undef CASE_FOR
#undef CASE
}

int main(void)
{
    tu_seed(0x5eed0002);
    test_vector();
    test_rejects();
    test_to_node();
    test_random();
    test_many_pairs();
    return tu_done("enr");
}
