/*
 * tests/wire/test_enode.c: enode URL parse/format and p2p_node_parse.
 *
 * Round trips (IPv4, IPv6, discport, incomplete nodes, random), the node ID
 * derivation, and rejects: bad hex, wrong lengths, off-curve keys, missing
 * or bad ports, unbracketed IPv6, host names, malformed queries.
 */
#include <stdarg.h>

#include "crypto/secp.h"
#include "crypto/util.h"
#include "tests/tu.h"
#include "wire/enode.h"

static char hex[129];
static uint8_t pub[64];

__attribute__((format(printf, 2, 3))) static int parse_fmt(p2p_node_t *n, const char *fmt, ...)
{
    char s[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    return p2p_enode_parse(n, s);
}

static void check_roundtrip(const char *tail, const char *canon_tail)
{
    char s[512], want[512], out[P2P_ENODE_MAX_TEXT];
    p2p_node_t n;
    snprintf(s, sizeof s, "enode://%s%s", hex, tail);
    snprintf(want, sizeof want, "enode://%s%s", hex, canon_tail);
    CHECK_OK(p2p_enode_parse(&n, s));
    CHECK_OK(p2p_enode_format(out, sizeof out, &n));
    CHECK(strcmp(out, want) == 0);
    if (strcmp(out, want)) fprintf(stderr, "  got  %s\n  want %s\n", out, want);
}

static void test_basic(void)
{
    uint8_t key[32], id[32];
    CHECK(tu_vector_hex("enr.txt", "key", key, 32) == 32);
    CHECK(tu_vector_hex("enr.txt", "node_id", id, 32) == 32);
    CHECK_OK(p2p_secp_pubkey(pub, key));
    p2p_hex_encode(hex, pub, 64);

    p2p_node_t n;
    CHECK_OK(parse_fmt(&n, "enode://%s@127.0.0.1:30303", hex));
    CHECK_MEM(n.pubkey, pub, 64);
    CHECK_MEM(n.id, id, 32);
    CHECK(n.ep.ip.family == 4 && n.ep.ip.addr[0] == 127 && n.ep.ip.addr[3] == 1);
    CHECK(n.ep.tcp == 30303 && n.ep.udp == 30303 && n.seq == 0);

    CHECK_OK(parse_fmt(&n, "enode://%s@10.3.58.6:30303?discport=30301", hex));
    CHECK(n.ep.tcp == 30303 && n.ep.udp == 30301);
    CHECK_OK(parse_fmt(&n, "enode://%s@10.3.58.6:0?foo=1&discport=7&bar", hex));
    CHECK(n.ep.tcp == 0 && n.ep.udp == 7);
    CHECK_OK(parse_fmt(&n, "enode://%s@[2001:db8::1]:1?discport=65535", hex));
    CHECK(n.ep.ip.family == 6 && n.ep.ip.addr[0] == 0x20 && n.ep.ip.addr[15] == 1);
    CHECK(n.ep.tcp == 1 && n.ep.udp == 65535);
    CHECK_OK(parse_fmt(&n, "enode://%s@[::ffff:1.2.3.4]:5", hex));
    CHECK(n.ep.ip.family == 4 && n.ep.ip.addr[3] == 4);

    check_roundtrip("@127.0.0.1:30303", "@127.0.0.1:30303");
    check_roundtrip("@127.0.0.1:30303?discport=30303", "@127.0.0.1:30303");
    check_roundtrip("@10.3.58.6:30303?discport=30301", "@10.3.58.6:30303?discport=30301");
    check_roundtrip("@[::1]:30303", "@[::1]:30303");
    check_roundtrip("@[2001:DB8:0::1]:1?discport=2", "@[2001:db8::1]:1?discport=2");
    check_roundtrip("@[::ffff:1.2.3.4]:5", "@1.2.3.4:5");
    check_roundtrip("", "");
    /* as URL parsers (geth's) take them: any case of the scheme, an empty
     * path, a fragment */
    CHECK_OK(parse_fmt(&n, "ENODE://%s@1.2.3.4:30303", hex));
    CHECK(n.ep.tcp == 30303);
    CHECK_OK(parse_fmt(&n, "Enode://%s@1.2.3.4:30303/", hex));
    CHECK(n.ep.tcp == 30303 && n.ep.udp == 30303);
    CHECK_OK(parse_fmt(&n, "enode://%s@1.2.3.4:30303/?discport=7#frag", hex));
    CHECK(n.ep.tcp == 30303 && n.ep.udp == 7);
    CHECK_OK(parse_fmt(&n, "enode://%s@[::1]:9#x?discport=1", hex));
    CHECK(n.ep.ip.family == 6 && n.ep.tcp == 9 && n.ep.udp == 9);

    /* incomplete nodes: bare hex and enode:// without an address */
    CHECK_OK(p2p_enode_parse(&n, hex));
    CHECK_MEM(n.id, id, 32);
    CHECK(n.ep.ip.family == 0 && n.ep.tcp == 0 && n.ep.udp == 0);
    char upper[129];
    for (int i = 0; i < 129; i++)
        upper[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    CHECK_OK(p2p_enode_parse(&n, upper));
    CHECK_MEM(n.pubkey, pub, 64);

    /* output buffer */
    char out[P2P_ENODE_MAX_TEXT];
    CHECK_OK(parse_fmt(&n, "enode://%s@1.2.3.4:5", hex));
    size_t need = strlen("enode://@1.2.3.4:5") + 128 + 1;
    CHECK_ERR(p2p_enode_format(out, need - 1, &n), P2P_ETOOBIG);
    CHECK_OK(p2p_enode_format(out, need, &n));
    /* the longest form fits P2P_ENODE_MAX_TEXT */
    CHECK_OK(parse_fmt(
        &n, "enode://%s@[1111:2222:3333:4444:5555:6666:7777:8888]:65535?discport=65534", hex));
    CHECK_OK(p2p_enode_format(out, sizeof out, &n));
}

static void test_rejects(void)
{
    p2p_node_t n;
    char bad[129];
    memcpy(bad, hex, 129);
    bad[5] = 'g';
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1", bad), P2P_EINVAL);
    CHECK_ERR(p2p_enode_parse(&n, bad), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%.127s@1.2.3.4:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s0@1.2.3.4:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "%.126s", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode:/%s@1.2.3.4:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enr://%s@1.2.3.4:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, " enode://%s@1.2.3.4:1", hex), P2P_EINVAL);
    CHECK_ERR(p2p_enode_parse(&n, ""), P2P_EINVAL);
    CHECK_ERR(p2p_enode_parse(&n, "enode://"), P2P_EINVAL);

    /* off-curve keys */
    char zero[129];
    memset(zero, '0', 128);
    zero[128] = 0;
    CHECK_ERR(p2p_enode_parse(&n, zero), P2P_EBADKEY);
    char offc[129];
    memcpy(offc, zero, 129);
    offc[63] = '5'; /* x = 5 has no y */
    offc[127] = '1';
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1", offc), P2P_EBADKEY);
    memcpy(bad, hex, 129);
    bad[127] = bad[127] == '0' ? '1' : '0'; /* y off by a bit */
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1", bad), P2P_EBADKEY);

    /* address parts */
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@:30303", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:65536", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:123456", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:-1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:+1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1x", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.256:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@::1:30303", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@[::1:30303", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@[::1]30303", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@[1.2.3.4]:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@[]:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@[fe80::1%%eth0]:1", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@bootnode.example.org:30303", hex), P2P_EUNSUPPORTED);
    CHECK_ERR(parse_fmt(&n, "enode://%s@a b:30303", hex), P2P_EINVAL);
    /* as the reference client: the first discport counts, an empty one
     * means the TCP port, a port may have leading zeros */
    CHECK_OK(parse_fmt(&n, "enode://%s@1.2.3.4:1?discport=", hex));
    CHECK(n.ep.tcp == 1 && n.ep.udp == 1);
    CHECK_OK(parse_fmt(&n, "enode://%s@1.2.3.4:1?discport=7&discport=9", hex));
    CHECK(n.ep.tcp == 1 && n.ep.udp == 7);
    CHECK_OK(parse_fmt(&n, "enode://%s@1.2.3.4:1?discport&discport=9", hex));
    CHECK(n.ep.tcp == 1 && n.ep.udp == 1);
    CHECK_OK(parse_fmt(&n, "enode://%s@1.2.3.4:000030303?discport=0000000000030301", hex));
    CHECK(n.ep.tcp == 30303 && n.ep.udp == 30301);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:00065536", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1?discport=x&discport=2", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1?discport=x", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1?discport=70000", hex), P2P_EINVAL);
    CHECK_ERR(parse_fmt(&n, "enode://%s@1.2.3.4:1@2", hex), P2P_EINVAL);

    char longs[P2P_ENODE_MAX_INPUT + 64];
    int w = snprintf(longs, sizeof longs, "enode://%s@1.2.3.4:1?", hex);
    memset(longs + w, 'a', sizeof longs - (size_t)w - 1);
    longs[sizeof longs - 1] = 0;
    CHECK_ERR(p2p_enode_parse(&n, longs), P2P_EINVAL);
}

/* The reason a parse gives names the part that is wrong. */
/* the URL is fmt and its arguments */
__attribute__((format(printf, 3, 4))) static void why_is(int want_rc, const char *want,
                                                         const char *fmt, ...)
{
    char s[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    p2p_node_t n;
    const char *why = "unset";
    int rc = p2p_node_parse_why(&n, s, &why);
    if (rc != want_rc || !why || !strstr(why, want))
        printf("why(%s): rc %d, \"%s\"; want %d, \"%s\"\n", fmt, rc, why ? why : "(null)", want_rc,
               want);
    CHECK(rc == want_rc);
    CHECK(why != NULL && strstr(why, want) != NULL);
}

static void test_why(void)
{
    why_is(P2P_EUNSUPPORTED, "host names are not resolved", "enode://%s@localhost:30303", hex);
    why_is(P2P_EINVAL, "no port", "enode://%s@1.2.3.4", hex);
    why_is(P2P_EINVAL, "invalid port", "enode://%s@1.2.3.4:70000", hex);
    why_is(P2P_EINVAL, "invalid discport", "enode://%s@1.2.3.4:1?discport=x", hex);
    why_is(P2P_EINVAL, "needs brackets", "enode://%s@::1:30303", hex);
    why_is(P2P_EINVAL, "invalid IPv4 address", "enode://%s@1.2.3:1", hex);
    why_is(P2P_EINVAL, "invalid IPv6 address", "enode://%s@[::g]:1", hex);
    why_is(P2P_EINVAL, "no host", "enode://%s@:1", hex);
    why_is(P2P_EINVAL, "128 hex digits", "enode://%.100s@1.2.3.4:1", hex);
    why_is(P2P_EINVAL, "not an enode URL", "%.100s", hex);
    why_is(P2P_EMORE, "not a valid record", "enr:-%.10s", hex);
    /* a parse that works leaves why NULL */
    char s[300];
    snprintf(s, sizeof s, "enode://%s@1.2.3.4:1", hex);
    p2p_node_t n;
    const char *why = "unset";
    CHECK_OK(p2p_node_parse_why(&n, s, &why));
    CHECK(why == NULL);
}

static void test_random(void)
{
    for (int round = 0; round < 200; round++) {
        uint8_t priv[32];
        p2p_node_t a, b;
        memset(&a, 0, sizeof a);
        CHECK_OK(p2p_secp_keygen(priv));
        CHECK_OK(p2p_secp_pubkey(a.pubkey, priv));
        p2p_node_id(a.id, a.pubkey);
        unsigned kind = (unsigned)(tu_rand() % 3);
        if (kind) {
            a.ep.ip.family = kind == 1 ? 4 : 6;
            tu_rand_bytes(a.ep.ip.addr, kind == 1 ? 4 : 16);
            if (kind == 2) a.ep.ip.addr[0] = 0x20; /* not IPv4-mapped */
            a.ep.tcp = (uint16_t)tu_rand();
            a.ep.udp = tu_rand() % 2 ? a.ep.tcp : (uint16_t)tu_rand();
        }
        char s[P2P_ENODE_MAX_TEXT];
        CHECK_OK(p2p_enode_format(s, sizeof s, &a));
        CHECK_OK(p2p_enode_parse(&b, s));
        CHECK(memcmp(&a, &b, sizeof a) == 0);
        CHECK_OK(p2p_node_parse(&b, s));
        CHECK(memcmp(&a, &b, sizeof a) == 0);
    }
}

static void test_node_parse(void)
{
    char text[512];
    uint8_t id[32];
    CHECK_OK(tu_vector_str("enr.txt", "text", text, sizeof text));
    CHECK(tu_vector_hex("enr.txt", "node_id", id, 32) == 32);
    p2p_node_t n;
    CHECK_OK(p2p_node_parse(&n, text));
    CHECK_MEM(n.id, id, 32);
    CHECK_MEM(n.pubkey, pub, 64);
    CHECK(n.ep.ip.family == 4 && n.ep.ip.addr[0] == 127 && n.ep.udp == 30303 && n.seq == 1);
    CHECK_OK(p2p_node_parse(&n, hex));
    CHECK_MEM(n.id, id, 32);
    text[20] ^= 1;
    CHECK(p2p_node_parse(&n, text) != 0);
    CHECK_ERR(p2p_node_parse(&n, "enr:"), P2P_EEMPTY);
    CHECK_ERR(p2p_node_parse(&n, "hello"), P2P_EINVAL);
}

int main(void)
{
    tu_seed(0x5eed0003);
    test_basic();
    test_rejects();
    test_why();
    test_random();
    test_node_parse();
    return tu_done("enode");
}
