/*
 * tests/wire/test_p2p_msg.c: base-protocol messages: the EIP-8 Hello
 * vector, Hello round trips and limits, Disconnect in every form clients
 * send it (list, bare, raw, snappy), reason strings, capability matching
 * (PROTOCOL.md example and more).
 */
#include <stdlib.h>

#include "core/err.h"
#include "tests/tu.h"
#include "wire/p2p_msg.h"
#include "wire/rlp.h"
#include "wire/snappy.h"

static p2p_hello_t h, h2;

static void test_hello_vector(void)
{
    uint8_t buf[512];
    long n = tu_vector_hex("rlpx-eip8.txt", "hello_eip8_v22", buf, sizeof buf);
    CHECK(n > 0);
    if (n <= 0) return;
    CHECK_OK(p2p_hello_decode(&h, buf, (size_t)n));
    /* geth's TestProtocolHandshakeForwardCompatibility expectations: the
     * "22" in the vector name is the version of the "mork" capability;
     * the Hello version itself is 55 (0x37). */
    CHECK(h.version == 55);
    CHECK(strcmp(h.name, "kneth/v0.91/plan9") == 0 && h.name_len == 17);
    CHECK(h.ncaps == 2);
    CHECK(strcmp(h.caps[0].name, "eth") == 0 && h.caps[0].version == 61);
    CHECK(strcmp(h.caps[1].name, "mork") == 0 && h.caps[1].version == 22);
    CHECK(h.listen_port == 9999);
    uint8_t id[64];
    tu_unhex(id, sizeof id,
             "fda1cff674c90c9a197539fe3dfb53086ace64f83ed7c6eabec741f7f381cc803e52ab2cd55d5569bc"
             "e4347107a310dfd5f88a010cd2ffd1005ca406f1842877");
    CHECK_MEM(h.id, id, 64);
}

static void random_hello(p2p_hello_t *x)
{
    memset(x, 0, sizeof *x);
    x->version = tu_rand() % 3 ? 5 : tu_rand();
    x->name_len = tu_rand() % 200;
    for (size_t i = 0; i < x->name_len; i++) x->name[i] = (char)(tu_rand() % 256);
    x->ncaps = tu_rand() % 20;
    for (size_t i = 0; i < x->ncaps; i++) {
        x->caps[i].name_len = 1 + tu_rand() % P2P_CAP_NAME_MAX;
        for (size_t k = 0; k < x->caps[i].name_len; k++)
            x->caps[i].name[k] = (char)('a' + tu_rand() % 26);
        x->caps[i].version = (uint32_t)tu_rand();
    }
    x->listen_port = tu_rand() % 65536;
    tu_rand_bytes(x->id, 64);
    x->id[0] |= 1;
}

static void test_hello_roundtrip(void)
{
    uint8_t buf[4096];
    for (int i = 0; i < 300; i++) {
        random_hello(&h);
        size_t n;
        CHECK_OK(p2p_hello_encode(buf, sizeof buf, &n, &h));
        CHECK(n <= P2P_HELLO_MAX);
        CHECK_OK(p2p_hello_decode(&h2, buf, n));
        CHECK(h2.version == h.version && h2.name_len == h.name_len &&
              memcmp(h2.name, h.name, h.name_len) == 0 && h2.name[h2.name_len] == 0);
        CHECK(h2.ncaps == h.ncaps && h2.listen_port == h.listen_port);
        CHECK_MEM(h2.id, h.id, 64);
        for (size_t k = 0; k < h.ncaps && k < h2.ncaps; k++) {
            CHECK(h2.caps[k].version == h.caps[k].version);
            CHECK(h2.caps[k].name_len == h.caps[k].name_len);
            CHECK_MEM(h2.caps[k].name, h.caps[k].name, h.caps[k].name_len);
        }
        /* every truncation fails without crashing */
        size_t cut = tu_rand() % n;
        CHECK(p2p_hello_decode(&h2, buf, cut) != 0);
    }
}

/* Builds a Hello from parts with raw control over each field. */
static size_t build(uint8_t *out, size_t cap, int ncaps, size_t capname, size_t idlen,
                    uint8_t idbyte, size_t namelen, int extra)
{
    static uint8_t name[4000], id[100];
    memset(name, 'n', sizeof name);
    memset(id, idbyte, sizeof id);
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, out, cap);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, 5);
    p2p_rlp_put_bytes(&e, name, namelen);
    p2p_rlp_list_begin(&e);
    for (int i = 0; i < ncaps; i++) {
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, name, capname);
        p2p_rlp_put_uint(&e, (uint64_t)i);
        p2p_rlp_list_end(&e);
    }
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, 30303);
    p2p_rlp_put_bytes(&e, id, idlen);
    for (int i = 0; i < extra; i++) p2p_rlp_put_str(&e, "tail");
    p2p_rlp_list_end(&e);
    size_t n = 0;
    CHECK_OK(p2p_rlp_enc_finish(&e, &n));
    return n;
}

static void test_hello_limits(void)
{
    static uint8_t buf[8192];
    size_t n;
    n = build(buf, sizeof buf, 2, 3, 64, 7, 10, 0);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    n = build(buf, sizeof buf, 2, 3, 64, 7, 10, 3);
    CHECK_OK(p2p_hello_decode(&h, buf, n)); /* tail tolerated */
    n = build(buf, sizeof buf, 2, 3, 63, 7, 10, 0);
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_EBADKEY);
    n = build(buf, sizeof buf, 2, 3, 65, 7, 10, 0);
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_EBADKEY);
    n = build(buf, sizeof buf, 2, 3, 64, 0, 10, 0);
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_EBADKEY);
    n = build(buf, sizeof buf, 2, 3, 0, 0, 10, 0);
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_EBADKEY);
    n = build(buf, sizeof buf, P2P_HELLO_MAX_CAPS, 3, 64, 7, 10, 0);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.ncaps == P2P_HELLO_MAX_CAPS);
    /* caps past the first 64 are ignored, names of 0 or 33+ bytes skipped */
    n = build(buf, sizeof buf, P2P_HELLO_MAX_CAPS + 1, 3, 64, 7, 10, 0);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.ncaps == P2P_HELLO_MAX_CAPS && h.caps[P2P_HELLO_MAX_CAPS - 1].version == 63);
    n = build(buf, sizeof buf, 2, P2P_CAP_NAME_MAX, 64, 7, 10, 0);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.ncaps == 2);
    n = build(buf, sizeof buf, 2, P2P_CAP_NAME_MAX + 1, 64, 7, 10, 0);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.ncaps == 0);
    n = build(buf, sizeof buf, 2, 0, 64, 7, 10, 0);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.ncaps == 0);
    /* size: exactly 2048 accepted, 2049 too big */
    size_t base = build(buf, sizeof buf, 1, 3, 64, 7, 0, 0);
    size_t nl = 2048 - base - 3; /* name header grows to 3 bytes */
    n = build(buf, sizeof buf, 1, 3, 64, 7, nl, 0);
    CHECK(n == 2048);
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.name_len == nl);
    n = build(buf, sizeof buf, 1, 3, 64, 7, nl + 1, 0);
    CHECK(n == 2049);
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_ETOOBIG);
    /* encoding refuses more than 2048 bytes */
    memset(&h, 0, sizeof h);
    h.name_len = 2000;
    memset(h.name, 'x', 2000);
    h.id[0] = 1;
    CHECK_ERR(p2p_hello_encode(buf, sizeof buf, &n, &h), P2P_ETOOBIG);
    /* malformed shapes */
    CHECK(p2p_hello_decode(&h, (const uint8_t *)"\xc0", 1) != 0);
    CHECK(p2p_hello_decode(&h, (const uint8_t *)"\x05", 1) != 0);
    CHECK(p2p_hello_decode(&h, NULL, 0) != 0);
}

/* One capability entry [name, version]. */
static void put_cap(p2p_rlp_enc_t *e, const char *name, size_t len, uint64_t version)
{
    p2p_rlp_list_begin(e);
    p2p_rlp_put_bytes(e, (const uint8_t *)name, len);
    p2p_rlp_put_uint(e, version);
    p2p_rlp_list_end(e);
}

/* Capabilities we can never match do not fail the Hello (the reference
 * client accepts them): an empty name, a 40-byte name, a version over 32
 * bits; eth/68 beside them still matches.  A Hello of 10,000 caps is still
 * refused, by its size. */
static void test_hello_odd_caps(void)
{
    static uint8_t buf[100000];
    static uint8_t id[64];
    memset(id, 9, sizeof id);
    char longname[40];
    memset(longname, 'q', sizeof longname);
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, 5);
    p2p_rlp_put_str(&e, "other/v1");
    p2p_rlp_list_begin(&e);
    put_cap(&e, "", 0, 1);
    put_cap(&e, longname, sizeof longname, 1);
    put_cap(&e, "eth", 3, UINT64_MAX);
    put_cap(&e, "eth", 3, 68);
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, 30303);
    p2p_rlp_put_bytes(&e, id, 64);
    p2p_rlp_list_end(&e);
    size_t n = 0;
    CHECK_OK(p2p_rlp_enc_finish(&e, &n));
    CHECK_OK(p2p_hello_decode(&h, buf, n));
    CHECK(h.ncaps == 1);
    CHECK(strcmp(h.caps[0].name, "eth") == 0 && h.caps[0].version == 68);
    static const p2p_proto_t local[] = {{"eth", 68, 17}};
    p2p_proto_match_t m[1];
    size_t nm = 0;
    CHECK_OK(p2p_caps_match(m, &nm, local, 1, h.caps, h.ncaps));
    CHECK(nm == 1 && m[0].offset == P2P_BASE_LENGTH);

    /* a cap entry without a version still fails */
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_uint(&e, 5);
    p2p_rlp_put_str(&e, "x");
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_str(&e, "eth");
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, 0);
    p2p_rlp_put_bytes(&e, id, 64);
    p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &n));
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_EDECODE);

    /* 10,000 caps: over 2048 bytes, refused before any cap is read */
    n = build(buf, sizeof buf, 10000, 3, 64, 7, 10, 0);
    CHECK(n > P2P_HELLO_MAX);
    CHECK_ERR(p2p_hello_decode(&h, buf, n), P2P_ETOOBIG);
}

static void test_disconnect(void)
{
    uint8_t buf[8], r;
    size_t n;
    for (unsigned reason = 0; reason < 256; reason++) {
        CHECK_OK(p2p_disc_encode(buf, sizeof buf, &n, (uint8_t)reason));
        CHECK(n == (reason == 0 || reason >= 0x80 ? (reason == 0 ? 2u : 3u) : 2u));
        for (int sf = 0; sf < 2; sf++) {
            CHECK_OK(p2p_disc_decode(&r, buf, n, sf));
            CHECK(r == reason);
            /* snappy-compressed [reason] */
            uint8_t comp[64];
            size_t clen;
            CHECK_OK(p2p_snappy_compress(comp, sizeof comp, &clen, buf, n));
            CHECK_OK(p2p_disc_decode(&r, comp, clen, sf));
            CHECK(r == reason);
            /* bare reason, raw and compressed */
            size_t bl = n - 1;
            CHECK_OK(p2p_disc_decode(&r, buf + 1, bl, sf));
            CHECK(r == reason);
            CHECK_OK(p2p_snappy_compress(comp, sizeof comp, &clen, buf + 1, bl));
            CHECK_OK(p2p_disc_decode(&r, comp, clen, sf));
            CHECK(r == reason);
        }
    }
    /* what @ethereumjs sends after a v5 hello: a bare uncompressed integer */
    CHECK_OK(p2p_disc_decode(&r, (const uint8_t *)"\x04", 1, true));
    CHECK(r == P2P_DISC_TOO_MANY_PEERS);
    CHECK_OK(p2p_disc_decode(&r, (const uint8_t *)"\x80", 1, true));
    CHECK(r == P2P_DISC_REQUESTED);
    /* extra list elements tolerated */
    CHECK_OK(p2p_disc_decode(&r, (const uint8_t *)"\xc3\x03\x01\x02", 4, false));
    CHECK(r == 3);
    /* failures -> 0xff */
    CHECK_ERR(p2p_disc_decode(&r, NULL, 0, false), P2P_EDECODE);
    CHECK(r == P2P_DISC_INVALID);
    CHECK_ERR(p2p_disc_decode(&r, (const uint8_t *)"\xc0", 1, true), P2P_EDECODE);
    CHECK(r == P2P_DISC_INVALID);
    CHECK_ERR(p2p_disc_decode(&r, (const uint8_t *)"\x82\x01\x00", 3, false), P2P_EDECODE);
    CHECK(r == P2P_DISC_INVALID); /* 256 does not fit a reason */
    CHECK_ERR(p2p_disc_decode(&r, (const uint8_t *)"\xc1\xc0", 2, false), P2P_EDECODE);
    CHECK(r == P2P_DISC_INVALID);
    /* only the first 100 bytes count: a long list is cut and fails */
    uint8_t big[300];
    memset(big, 0x01, sizeof big);
    big[0] = 0xf9;
    big[1] = 0x01;
    big[2] = 0x29; /* list of 297 bytes */
    CHECK_ERR(p2p_disc_decode(&r, big, sizeof big, false), P2P_EDECODE);
    CHECK(r == P2P_DISC_INVALID);
    /* a valid [reason] followed by junk beyond 100 bytes still decodes */
    big[0] = 0xc1;
    big[1] = 0x05;
    CHECK_OK(p2p_disc_decode(&r, big, sizeof big, false));
    CHECK(r == 5);
}

static void test_reason_str(void)
{
    CHECK(strcmp(p2p_disc_reason_str(0x04), "too many peers") == 0);
    CHECK(strcmp(p2p_disc_reason_str(0x10), "subprotocol error") == 0);
    CHECK(strcmp(p2p_disc_reason_str(0x0b), "read timeout") == 0);
    CHECK(strcmp(p2p_disc_reason_str(0xff), "invalid disconnect reason") == 0);
    CHECK(strcmp(p2p_disc_reason_str(0x0c), "unknown disconnect reason") == 0);
    for (unsigned i = 0; i < 300; i++) CHECK(p2p_disc_reason_str(i) != NULL);
    CHECK(p2p_ping_payload[0] == 0xC0);
}

/* The numbers other clients read on the wire (PROTOCOL.md "Peer / base
 * protocol"): every Disconnect reason's value and text, the message codes,
 * the base protocol's version, length and limits.  The other tests compare
 * against the same enum, so only this one notices a value that moved. */
static void test_wire_values(void)
{
    static const struct {
        unsigned value, code;
        const char *text;
    } reasons[] = {
        {P2P_DISC_REQUESTED, 0x00, "disconnect requested"},
        {P2P_DISC_NETWORK_ERROR, 0x01, "network error"},
        {P2P_DISC_PROTOCOL_ERROR, 0x02, "breach of protocol"},
        {P2P_DISC_USELESS_PEER, 0x03, "useless peer"},
        {P2P_DISC_TOO_MANY_PEERS, 0x04, "too many peers"},
        {P2P_DISC_ALREADY_CONNECTED, 0x05, "already connected"},
        {P2P_DISC_INCOMPATIBLE_VERSION, 0x06, "incompatible p2p protocol version"},
        {P2P_DISC_INVALID_IDENTITY, 0x07, "invalid node identity"},
        {P2P_DISC_QUITTING, 0x08, "client quitting"},
        {P2P_DISC_UNEXPECTED_IDENTITY, 0x09, "unexpected identity"},
        {P2P_DISC_SELF, 0x0a, "connected to self"},
        {P2P_DISC_READ_TIMEOUT, 0x0b, "read timeout"},
        {P2P_DISC_SUBPROTOCOL_ERROR, 0x10, "subprotocol error"},
        {P2P_DISC_INVALID, 0xff, "invalid disconnect reason"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        CHECK(reasons[i].value == reasons[i].code);
        CHECK(strcmp(p2p_disc_reason_str(reasons[i].code), reasons[i].text) == 0);
    }
    /* the values between 0x0c and 0x0f and above 0x10 are no reason */
    for (unsigned v = 0x0c; v < 0xff; v++)
        if (v != 0x10) CHECK(strcmp(p2p_disc_reason_str(v), "unknown disconnect reason") == 0);
    CHECK(P2P_MSG_HELLO == 0 && P2P_MSG_DISC == 1 && P2P_MSG_PING == 2 && P2P_MSG_PONG == 3);
    CHECK(P2P_BASE_VERSION == 5 && P2P_BASE_LENGTH == 16);
    CHECK(P2P_BASE_MAX_MSG == 2048 && P2P_HELLO_MAX == 2048);
    CHECK(P2P_DISC_INPUT_MAX == 100);
}

static p2p_cap_t cap(const char *name, uint32_t v)
{
    p2p_cap_t c;
    memset(&c, 0, sizeof c);
    c.name_len = strlen(name);
    memcpy(c.name, name, c.name_len);
    c.version = v;
    return c;
}

static void test_match(void)
{
    p2p_proto_match_t m[8];
    size_t n;
    /* PROTOCOL.md example: remote {""/1, ""/2, ""/3, "a"/1}, local lengths
     * 1, 2, 3 -> ""/3 at 0 and "a" at 3 (relative to 16). */
    p2p_cap_t remote[] = {cap("a", 1), cap("", 3), cap("", 1), cap("", 2)};
    for (size_t i = 0; i < 4; i++) remote[i].name_len = strlen(remote[i].name);
    p2p_proto_t local[] = {{"", 1, 1}, {"", 2, 2}, {"", 3, 3}, {"a", 1, 1}};
    CHECK_OK(p2p_caps_match(m, &n, local, 4, remote, 4));
    CHECK(n == 2);
    CHECK(m[0].proto == 2 && m[0].offset == P2P_BASE_LENGTH);
    CHECK(m[1].proto == 3 && m[1].offset == P2P_BASE_LENGTH + 3);

    /* no common cap */
    p2p_cap_t r2[] = {cap("eth", 66), cap("les", 4)};
    p2p_proto_t l2[] = {{"snap", 1, 8}};
    CHECK_OK(p2p_caps_match(m, &n, l2, 1, r2, 2));
    CHECK(n == 0);

    /* packed in name order regardless of local order; version must match */
    p2p_cap_t r3[] = {cap("snap", 1), cap("eth", 68), cap("eth", 67), cap("eth", 66)};
    p2p_proto_t l3[] = {{"snap", 1, 8}, {"eth", 67, 17}, {"eth", 66, 17}, {"eth", 69, 18}};
    CHECK_OK(p2p_caps_match(m, &n, l3, 4, r3, 4));
    CHECK(n == 2);
    CHECK(m[0].proto == 1 && m[0].offset == 16);      /* eth/67 */
    CHECK(m[1].proto == 0 && m[1].offset == 16 + 17); /* snap/1 */

    /* byte order of names: "a" < "ab" < "b" */
    p2p_cap_t r4[] = {cap("b", 1), cap("ab", 1), cap("a", 1)};
    p2p_proto_t l4[] = {{"b", 1, 5}, {"ab", 1, 6}, {"a", 1, 7}};
    CHECK_OK(p2p_caps_match(m, &n, l4, 3, r4, 3));
    CHECK(n == 3);
    CHECK(m[0].proto == 2 && m[0].offset == 16);
    CHECK(m[1].proto == 1 && m[1].offset == 23);
    CHECK(m[2].proto == 0 && m[2].offset == 29);

    /* too many remote caps */
    static p2p_cap_t many[P2P_HELLO_MAX_CAPS + 1];
    CHECK_ERR(p2p_caps_match(m, &n, l4, 3, many, P2P_HELLO_MAX_CAPS + 1), P2P_ETOOBIG);
}

int main(void)
{
    tu_seed(0x5eed0004);
    test_hello_vector();
    test_hello_roundtrip();
    test_hello_limits();
    test_hello_odd_caps();
    test_disconnect();
    test_reason_str();
    test_wire_values();
    test_match();
    return tu_done("p2p_msg");
}
