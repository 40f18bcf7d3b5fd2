/*
 * tests/wire/test_rlp.c: RLP encoder and canonical decoder.
 *
 * Known encodings from the RLP spec, every canonical-form reject, truncation,
 * the depth limit on both sides, sticky encoder errors, and randomised round
 * trips of nested structures checked against an independent recursive
 * reference encoder.
 */
#include "tests/tu.h"
#include "wire/rlp.h"

static uint8_t hexbuf[4096];

static size_t hx(const char *h)
{
    return tu_unhex(hexbuf, sizeof hexbuf, h);
}

static void check_enc_hex(p2p_rlp_enc_t *e, const char *want)
{
    size_t len = 0;
    CHECK_OK(p2p_rlp_enc_finish(e, &len));
    size_t n = hx(want);
    CHECK(len == n);
    if (len == n) CHECK_MEM(e->buf, hexbuf, n);
}

static void test_known(void)
{
    uint8_t buf[2048];
    p2p_rlp_enc_t e;

    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_put_str(&e, "dog");
    check_enc_hex(&e, "83646f67");

    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_str(&e, "cat");
    p2p_rlp_put_str(&e, "dog");
    p2p_rlp_list_end(&e);
    check_enc_hex(&e, "c88363617483646f67");

    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_put_str(&e, "");
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, 0);
    p2p_rlp_put_uint(&e, 15);
    p2p_rlp_put_uint(&e, 0x7f);
    p2p_rlp_put_uint(&e, 0x80);
    p2p_rlp_put_uint(&e, 1024);
    p2p_rlp_put_uint(&e, UINT64_MAX);
    uint8_t zero = 0, big = 0x80;
    p2p_rlp_put_bytes(&e, &zero, 1);
    p2p_rlp_put_bytes(&e, &big, 1);
    check_enc_hex(&e, "80c0800f7f8180820400"
                      "88ffffffffffffffff"
                      "008180");

    /* set-theoretic representation of three */
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    p2p_rlp_list_end(&e);
    check_enc_hex(&e, "c7c0c1c0c3c0c1c0");

    /* long string: 56 bytes */
    const char *lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_put_str(&e, lorem);
    size_t len;
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    CHECK(len == 58 && buf[0] == 0xb8 && buf[1] == 56);
    CHECK_MEM(buf + 2, lorem, 56);

    /* a list whose payload is exactly 55 / 56 / 256 bytes (header fixup) */
    static const size_t sizes[] = {55, 56, 255, 256, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t pl = sizes[k];
        uint8_t payload[1000];
        for (size_t i = 0; i < pl; i++) payload[i] = (uint8_t)(i & 0x7f);
        p2p_rlp_enc_init(&e, buf, sizeof buf);
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_raw(&e, payload, pl);
        p2p_rlp_list_end(&e);
        CHECK_OK(p2p_rlp_enc_finish(&e, &len));
        size_t hl = p2p_rlp_header_len(pl);
        CHECK(len == hl + pl);
        uint8_t hdr[9];
        CHECK(p2p_rlp_put_list_header(hdr, pl) == hl);
        CHECK_MEM(buf, hdr, hl);
        CHECK_MEM(buf + hl, payload, pl);
        CHECK_OK(p2p_rlp_validate(buf, len));
    }
    CHECK(p2p_rlp_header_len(0) == 1);
    CHECK(p2p_rlp_header_len(55) == 1);
    CHECK(p2p_rlp_header_len(56) == 2);
    CHECK(p2p_rlp_header_len(255) == 2);
    CHECK(p2p_rlp_header_len(256) == 3);
    CHECK(p2p_rlp_header_len(65536) == 4);
}

/* Decodes hexbuf[0..n) as one item with p2p_rlp_next. */
static int next_hex(const char *h, p2p_rlp_item_t *it)
{
    size_t n = hx(h);
    p2p_rlp_t c;
    p2p_rlp_init(&c, hexbuf, n);
    const uint8_t *before = c.p;
    int rc = p2p_rlp_next(&c, it);
    if (rc) CHECK(c.p == before); /* cursor unchanged on error */
    return rc;
}

static int uint_hex(const char *h, uint64_t *v)
{
    size_t n = hx(h);
    p2p_rlp_t c;
    p2p_rlp_init(&c, hexbuf, n);
    return p2p_rlp_uint(&c, v);
}

static void test_decode(void)
{
    p2p_rlp_item_t it;
    CHECK_OK(next_hex("83646f67", &it));
    CHECK(it.kind == P2P_RLP_BYTES && it.len == 3 && memcmp(it.payload, "dog", 3) == 0);
    CHECK(it.rawlen == 4 && it.raw == hexbuf);
    CHECK_OK(next_hex("05", &it));
    CHECK(it.kind == P2P_RLP_BYTES && it.len == 1 && it.payload[0] == 5);
    CHECK_OK(next_hex("00", &it));
    CHECK(it.len == 1 && it.payload[0] == 0);
    CHECK_OK(next_hex("8180", &it));
    CHECK(it.len == 1 && it.payload[0] == 0x80);
    CHECK_OK(next_hex("80", &it));
    CHECK(it.kind == P2P_RLP_BYTES && it.len == 0);
    CHECK_OK(next_hex("c0", &it));
    CHECK(it.kind == P2P_RLP_LIST && it.len == 0);
    CHECK_OK(next_hex("c88363617483646f67", &it));
    CHECK(it.kind == P2P_RLP_LIST && it.len == 8);

    /* canonical-form rejects */
    CHECK_ERR(next_hex("8105", &it), P2P_ENONCANON); /* single byte < 0x80 wrapped */
    CHECK_ERR(next_hex("8100", &it), P2P_ENONCANON);
    CHECK_ERR(next_hex("817f", &it), P2P_ENONCANON);
    CHECK_ERR(next_hex("b80100", &it), P2P_ENONCANON); /* long form for < 56 */
    CHECK_ERR(next_hex("b837"
                       "0000000000000000000000000000000000000000000000000000000000000000"
                       "0000000000000000000000000000000000000000000000",
                       &it),
              P2P_ENONCANON);
    CHECK_ERR(next_hex("b90038"
                       "0000000000000000000000000000000000000000000000000000000000000000"
                       "000000000000000000000000000000000000000000000000",
                       &it),
              P2P_ENONCANON); /* leading zero in the length */
    CHECK_ERR(next_hex("b800", &it), P2P_ENONCANON);
    CHECK_ERR(next_hex("f800", &it), P2P_ENONCANON);
    CHECK_ERR(next_hex("f80100", &it), P2P_ENONCANON);
    CHECK_ERR(next_hex("f90001", &it), P2P_ENONCANON);
    /* truncation: header or payload past the end */
    CHECK_ERR(next_hex("83646f", &it), P2P_EMORE);
    CHECK_ERR(next_hex("b8", &it), P2P_EMORE);
    CHECK_ERR(next_hex("b938", &it), P2P_EMORE);
    CHECK_ERR(next_hex("b90100", &it), P2P_EMORE);
    CHECK_ERR(next_hex("c30102", &it), P2P_EMORE);
    CHECK_ERR(next_hex("f8", &it), P2P_EMORE);
    CHECK_ERR(next_hex("bfffffffffffffffff", &it), P2P_EMORE);
    CHECK_ERR(next_hex("ffffffffffffffffff00", &it), P2P_EMORE);
    CHECK_ERR(next_hex("81", &it), P2P_EMORE);
    CHECK_ERR(next_hex("", &it), P2P_EEMPTY);

    /* integers */
    uint64_t v = 99;
    CHECK_OK(uint_hex("80", &v));
    CHECK(v == 0);
    CHECK_OK(uint_hex("7f", &v));
    CHECK(v == 0x7f);
    CHECK_OK(uint_hex("820400", &v));
    CHECK(v == 1024);
    CHECK_OK(uint_hex("88ffffffffffffffff", &v));
    CHECK(v == UINT64_MAX);
    CHECK_ERR(uint_hex("00", &v), P2P_ENONCANON);
    CHECK_ERR(uint_hex("820001", &v), P2P_ENONCANON);
    CHECK_ERR(uint_hex("89010000000000000000", &v), P2P_ERANGE);
    CHECK_ERR(uint_hex("c0", &v), P2P_EDECODE);
    size_t n = hx("820400");
    p2p_rlp_t c;
    p2p_rlp_init(&c, hexbuf, n);
    CHECK_ERR(p2p_rlp_uint_max(&c, &v, 1023), P2P_ERANGE);
    CHECK(c.p == hexbuf);
    CHECK_OK(p2p_rlp_uint_max(&c, &v, 1024));
    CHECK(v == 1024 && p2p_rlp_done(&c));

    /* typed reads */
    n = hx("c88363617483646f67");
    p2p_rlp_init(&c, hexbuf, n);
    const uint8_t *p;
    size_t plen;
    CHECK_ERR(p2p_rlp_bytes(&c, &p, &plen), P2P_EDECODE);
    p2p_rlp_t in;
    CHECK_OK(p2p_rlp_enter(&c, &in));
    CHECK(p2p_rlp_done(&c));
    CHECK(in.depth == 1);
    CHECK_ERR(p2p_rlp_enter(&in, &c), P2P_EDECODE);
    uint8_t three[3];
    CHECK_ERR(p2p_rlp_fixed(&in, three, 2), P2P_EDECODE);
    CHECK_OK(p2p_rlp_fixed(&in, three, 3));
    CHECK_MEM(three, "cat", 3);
    CHECK_OK(p2p_rlp_bytes(&in, &p, &plen));
    CHECK(plen == 3 && memcmp(p, "dog", 3) == 0);
    CHECK(p2p_rlp_done(&in));
    CHECK_ERR(p2p_rlp_skip(&in), P2P_EEMPTY);

    /* validate */
    n = hx("c88363617483646f67");
    CHECK_OK(p2p_rlp_validate(hexbuf, n));
    CHECK_ERR(p2p_rlp_validate(hexbuf, n - 1), P2P_EMORE);
    n = hx("c88363617483646f6700");
    CHECK_ERR(p2p_rlp_validate(hexbuf, n), P2P_EDECODE); /* trailing */
    n = hx("c3c28105");                                  /* non-canonical item nested in a list */
    CHECK_ERR(p2p_rlp_validate(hexbuf, n), P2P_ENONCANON);
    n = hx("c3c28300"); /* inner list runs past the outer one */
    CHECK_ERR(p2p_rlp_validate(hexbuf, n), P2P_EMORE);
    CHECK_ERR(p2p_rlp_validate(hexbuf, 0), P2P_EEMPTY);
}

static void test_depth(void)
{
    uint8_t buf[256];
    size_t len;
    p2p_rlp_enc_t e;
    /* exactly P2P_RLP_MAX_DEPTH nested lists: fine */
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    for (int i = 0; i < P2P_RLP_MAX_DEPTH; i++) p2p_rlp_list_begin(&e);
    for (int i = 0; i < P2P_RLP_MAX_DEPTH; i++) p2p_rlp_list_end(&e);
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    CHECK(len == P2P_RLP_MAX_DEPTH);
    CHECK_OK(p2p_rlp_validate(buf, len));
    p2p_rlp_t c, in[P2P_RLP_MAX_DEPTH + 2];
    p2p_rlp_init(&c, buf, len);
    p2p_rlp_t *cur = &c;
    for (int i = 0; i < P2P_RLP_MAX_DEPTH; i++) {
        CHECK_OK(p2p_rlp_enter(cur, &in[i]));
        cur = &in[i];
    }
    CHECK(cur->depth == P2P_RLP_MAX_DEPTH && p2p_rlp_done(cur));

    /* one more: the encoder refuses, and so does the decoder */
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    for (int i = 0; i <= P2P_RLP_MAX_DEPTH; i++) p2p_rlp_list_begin(&e);
    for (int i = 0; i <= P2P_RLP_MAX_DEPTH; i++) p2p_rlp_list_end(&e);
    CHECK_ERR(p2p_rlp_enc_finish(&e, &len), P2P_ETOOBIG);
    uint8_t deep[P2P_RLP_MAX_DEPTH + 1];
    for (int i = 0; i <= P2P_RLP_MAX_DEPTH; i++) deep[i] = (uint8_t)(0xc0 + P2P_RLP_MAX_DEPTH - i);
    CHECK_ERR(p2p_rlp_validate(deep, sizeof deep), P2P_ETOOBIG);
    p2p_rlp_init(&c, deep, sizeof deep);
    cur = &c;
    int rc = 0, i;
    for (i = 0; i <= P2P_RLP_MAX_DEPTH && rc == 0; i++) {
        rc = p2p_rlp_enter(cur, &in[i]);
        cur = &in[i];
    }
    CHECK(rc == P2P_ETOOBIG && i == P2P_RLP_MAX_DEPTH + 1);
}

static void test_encoder_errors(void)
{
    uint8_t buf[8];
    size_t len = 77;
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_put_str(&e, "123456789");
    CHECK_ERR(p2p_rlp_enc_finish(&e, &len), P2P_ETOOBIG);
    CHECK(len == 77);
    p2p_rlp_put_uint(&e, 1); /* sticky: no-op */
    CHECK(e.len == 0);

    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_put_str(&e, "1234567"); /* exactly 8 bytes */
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    CHECK(len == 8);

    /* list fixup needing room that is not there */
    uint8_t big[57];
    p2p_rlp_enc_init(&e, big, sizeof big);
    p2p_rlp_list_begin(&e);
    for (int i = 0; i < 56; i++) p2p_rlp_put_uint(&e, 1);
    p2p_rlp_list_end(&e);
    CHECK_ERR(p2p_rlp_enc_finish(&e, &len), P2P_ETOOBIG);

    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_end(&e);
    CHECK_ERR(p2p_rlp_enc_finish(&e, &len), P2P_ESTATE);
    p2p_rlp_enc_init(&e, buf, sizeof buf);
    p2p_rlp_list_begin(&e);
    CHECK_ERR(p2p_rlp_enc_finish(&e, &len), P2P_ESTATE);
    p2p_rlp_enc_init(&e, NULL, 0);
    p2p_rlp_put_uint(&e, 0);
    CHECK_ERR(p2p_rlp_enc_finish(&e, &len), P2P_ETOOBIG);
}

/* ---- randomised round trips against a reference encoder ---- */

#define MAXNODES 4000
struct tnode {
    int list; /* 1: list */
    size_t len;
    uint8_t *data;   /* bytes */
    int first, next; /* children (index) / sibling */
};
static struct tnode nodes[MAXNODES];
static int nnodes;
static uint8_t pool[1 << 20];
static size_t pool_used;

static size_t rand_len(void)
{
    static const size_t edges[] = {0, 1, 2, 55, 56, 57, 255, 256, 300, 1100};
    if (tu_rand() % 2) return edges[tu_rand() % (sizeof edges / sizeof edges[0])];
    return (size_t)(tu_rand() % 70);
}

static int gen(int depth)
{
    if (nnodes >= MAXNODES) return -1;
    int id = nnodes++;
    struct tnode *t = &nodes[id];
    t->first = t->next = -1;
    if (depth == 0 || (depth < P2P_RLP_MAX_DEPTH && tu_rand() % (depth < 4 ? 2 : 4) == 0)) {
        t->list = 1;
        int nk = (int)(tu_rand() % 6), prev = -1;
        for (int k = 0; k < nk; k++) {
            int ch = gen(depth + 1);
            if (ch < 0) break;
            if (prev < 0)
                t->first = ch;
            else
                nodes[prev].next = ch;
            prev = ch;
        }
    } else {
        t->list = 0;
        size_t n = rand_len();
        if (pool_used + n > sizeof pool) n = 0;
        t->len = n;
        t->data = pool + pool_used;
        pool_used += n;
        tu_rand_bytes(t->data, n);
        if (n == 1 && tu_rand() % 2) t->data[0] &= 0x7f;
    }
    return id;
}

static void enc_tree(p2p_rlp_enc_t *e, int id)
{
    struct tnode *t = &nodes[id];
    if (!t->list) {
        p2p_rlp_put_bytes(e, t->data, t->len);
        return;
    }
    p2p_rlp_list_begin(e);
    for (int ch = t->first; ch >= 0; ch = nodes[ch].next) enc_tree(e, ch);
    p2p_rlp_list_end(e);
}

/* Reference encoder: returns the encoded length written to out. */
static size_t ref_hdr(uint8_t *out, int base, size_t n)
{
    if (n < 56) {
        out[0] = (uint8_t)(base + n);
        return 1;
    }
    uint8_t tmp[8];
    int ll = 0;
    for (size_t x = n; x; x >>= 8) tmp[ll++] = (uint8_t)x;
    out[0] = (uint8_t)(base + 55 + ll);
    for (int i = 0; i < ll; i++) out[1 + i] = tmp[ll - 1 - i];
    return 1 + (size_t)ll;
}

static size_t ref_enc(uint8_t *out, int id)
{
    struct tnode *t = &nodes[id];
    if (!t->list) {
        if (t->len == 1 && t->data[0] < 0x80) {
            out[0] = t->data[0];
            return 1;
        }
        size_t h = ref_hdr(out, 0x80, t->len);
        memcpy(out + h, t->data, t->len);
        return h + t->len;
    }
    /* children are written 9 bytes in (room for any header), then moved */
    size_t n = 0;
    for (int ch = t->first; ch >= 0; ch = nodes[ch].next) n += ref_enc(out + 9 + n, ch);
    uint8_t hdr[9];
    size_t h = ref_hdr(hdr, 0xc0, n);
    memmove(out + h, out + 9, n);
    memcpy(out, hdr, h);
    return h + n;
}

static int dec_tree(p2p_rlp_t *c, int id)
{
    struct tnode *t = &nodes[id];
    if (!t->list) {
        const uint8_t *p;
        size_t n;
        if (p2p_rlp_bytes(c, &p, &n)) return -1;
        return n == t->len && (n == 0 || memcmp(p, t->data, n) == 0) ? 0 : -1;
    }
    p2p_rlp_t in;
    if (p2p_rlp_enter(c, &in)) return -1;
    for (int ch = t->first; ch >= 0; ch = nodes[ch].next)
        if (dec_tree(&in, ch)) return -1;
    return p2p_rlp_done(&in) ? 0 : -1;
}

static void test_random(void)
{
    static uint8_t out[1 << 21], ref[1 << 21];
    for (int round = 0; round < 400; round++) {
        nnodes = 0;
        pool_used = 0;
        int root = gen(0);
        p2p_rlp_enc_t e;
        p2p_rlp_enc_init(&e, out, sizeof out);
        enc_tree(&e, root);
        size_t len;
        CHECK_OK(p2p_rlp_enc_finish(&e, &len));
        size_t rlen = ref_enc(ref, root);
        CHECK(len == rlen);
        if (len != rlen) continue;
        CHECK_MEM(out, ref, len);
        CHECK_OK(p2p_rlp_validate(out, len));
        p2p_rlp_t c;
        p2p_rlp_init(&c, out, len);
        CHECK(dec_tree(&c, root) == 0);
        CHECK(p2p_rlp_done(&c));
        /* every strict prefix is rejected by validate */
        size_t cut = (size_t)(tu_rand() % len);
        CHECK(p2p_rlp_validate(out, cut) != 0);
        /* a buffer one byte short makes the encoder fail cleanly */
        p2p_rlp_enc_init(&e, out, len - 1);
        enc_tree(&e, root);
        CHECK_ERR(p2p_rlp_enc_finish(&e, &rlen), P2P_ETOOBIG);
    }
}

int main(void)
{
    tu_seed(0x5eed0001);
    test_known();
    test_decode();
    test_depth();
    test_encoder_errors();
    test_random();
    return tu_done("rlp");
}
