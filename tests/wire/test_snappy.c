/*
 * tests/wire/test_snappy.c: the bounded snappy wrapper: round trips,
 * the decoded-length bound checked before decompression, malformed input.
 */
#include <stdlib.h>

#include "core/err.h"
#include "tests/tu.h"
#include "wire/snappy.h"

static void test_roundtrip(void)
{
    static uint8_t in[70000], comp[90000], out[70000];
    for (int i = 0; i < 200; i++) {
        size_t n = tu_rand() % sizeof in;
        if (i % 2)
            tu_rand_bytes(in, n);
        else
            for (size_t k = 0; k < n; k++) in[k] = (uint8_t)(k / 100);
        size_t clen, olen, dlen;
        CHECK(p2p_snappy_bound(n) <= sizeof comp);
        CHECK_OK(p2p_snappy_compress(comp, sizeof comp, &clen, in, n));
        CHECK_OK(p2p_snappy_decoded_len(&dlen, comp, clen));
        CHECK(dlen == n);
        CHECK_OK(p2p_snappy_decompress(out, sizeof out, &olen, comp, clen, n));
        CHECK(olen == n);
        CHECK_MEM(out, in, n);
        if (n) {
            /* bound one below the decoded length: refused before decoding */
            memset(out, 0xAA, 16);
            CHECK_ERR(p2p_snappy_decompress(out, sizeof out, &olen, comp, clen, n - 1),
                      P2P_ETOOBIG);
            CHECK(out[0] == 0xAA);
            CHECK_ERR(p2p_snappy_decompress(out, n - 1, &olen, comp, clen, n), P2P_ETOOBIG);
        }
    }
}

static void test_malformed(void)
{
    uint8_t out[64];
    size_t olen, n;
    CHECK_ERR(p2p_snappy_decoded_len(&n, NULL, 0), P2P_EDECODE);
    CHECK_ERR(p2p_snappy_decompress(out, sizeof out, &olen, (const uint8_t *)"", 0, 64),
              P2P_EDECODE);
    /* varint running off the end */
    CHECK_ERR(p2p_snappy_decompress(out, sizeof out, &olen, (const uint8_t *)"\x80", 1, 64),
              P2P_EDECODE);
    /* announces 4 GiB - 1: refused by the bound */
    CHECK_ERR(p2p_snappy_decompress(out, sizeof out, &olen, (const uint8_t *)"\xff\xff\xff\xff\x0f",
                                    5, 1 << 24),
              P2P_ETOOBIG);
    /* announces 10 bytes, carries none */
    CHECK_ERR(p2p_snappy_decompress(out, sizeof out, &olen, (const uint8_t *)"\x0a", 1, 64),
              P2P_EDECODE);
    /* a copy referring before the start of the output */
    CHECK_ERR(p2p_snappy_decompress(out, sizeof out, &olen, (const uint8_t *)"\x04\x0d\x05", 3, 64),
              P2P_EDECODE);
    /* empty block decodes to nothing, even with no output buffer */
    CHECK_OK(p2p_snappy_decompress(NULL, 0, &olen, (const uint8_t *)"\x00", 1, 0));
    CHECK(olen == 0);
    /* literal "abc" */
    CHECK_OK(p2p_snappy_decompress(out, sizeof out, &olen,
                                   (const uint8_t *)"\x03\x08"
                                                    "abc",
                                   5, 3));
    CHECK(olen == 3 && memcmp(out, "abc", 3) == 0);
    /* output too small for compress */
    uint8_t in[100] = {0};
    CHECK_ERR(p2p_snappy_compress(out, sizeof out, &olen, in, sizeof in), P2P_ETOOBIG);
}

int main(void)
{
    tu_seed(0x5eed0003);
    test_roundtrip();
    test_malformed();
    return tu_done("snappy");
}
