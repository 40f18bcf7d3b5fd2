/*
 * wire/snappy.c: bounded snappy block compression (see snappy.h).
 * Pure functions; called by the frame codec on the peer thread and by the
 * Disconnect decoder.  Limits: the decoded length is bounded by the caller
 * before libsnappy writes anything.
 */
#include "wire/snappy.h"

#include <snappy-c.h>

size_t p2p_snappy_bound(size_t n)
{
    return snappy_max_compressed_length(n);
}

int p2p_snappy_compress(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *in,
                        size_t inlen)
{
    if (outcap < snappy_max_compressed_length(inlen)) return P2P_ETOOBIG;
    size_t n = outcap;
    if (snappy_compress((const char *)in, inlen, (char *)out, &n) != SNAPPY_OK) return P2P_ETOOBIG;
    *outlen = n;
    return 0;
}

int p2p_snappy_decoded_len(size_t *n, const uint8_t *in, size_t inlen)
{
    if (inlen == 0) return P2P_EDECODE;
    if (snappy_uncompressed_length((const char *)in, inlen, n) != SNAPPY_OK) return P2P_EDECODE;
    return 0;
}

int p2p_snappy_decompress(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *in,
                          size_t inlen, size_t max)
{
    size_t n;
    int rc = p2p_snappy_decoded_len(&n, in, inlen);
    if (rc) return rc;
    if (n > max || n > outcap) return P2P_ETOOBIG;
    size_t got = n;
    char empty[1];
    char *dst = n ? (char *)out : empty; /* out may be NULL for an empty block */
    if (snappy_uncompress((const char *)in, inlen, dst, &got) != SNAPPY_OK) return P2P_EDECODE;
    if (got != n) return P2P_EDECODE;
    *outlen = got;
    return 0;
}
