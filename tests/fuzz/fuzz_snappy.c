/*
 * tests/fuzz/fuzz_snappy.c: libFuzzer target for bounded snappy decoding.
 * The first two bytes give the bound (0..65535); the rest is the block.
 * Properties: no crash; success never exceeds the bound and the announced
 * length; a decoded block re-compresses and round-trips.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/snappy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[1 << 16], comp[(1 << 16) + (1 << 14)], back[1 << 16];
    if (size < 2) return 0;
    size_t max = (size_t)data[0] << 8 | data[1], n, ann;
    int rc = p2p_snappy_decompress(out, sizeof out, &n, data + 2, size - 2, max);
    if (rc) {
        if (rc != P2P_EDECODE && rc != P2P_ETOOBIG) abort();
        return 0;
    }
    if (n > max || p2p_snappy_decoded_len(&ann, data + 2, size - 2) || ann != n) abort();
    size_t clen, blen;
    if (p2p_snappy_compress(comp, sizeof comp, &clen, out, n)) abort();
    if (p2p_snappy_decompress(back, sizeof back, &blen, comp, clen, n) || blen != n ||
        memcmp(back, out, n))
        abort();
    return 0;
}
