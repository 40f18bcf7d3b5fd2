/*
 * wire/snappy.h: a thin bounded wrapper over libsnappy's C API (block
 * format, as devp2p p2p v5 uses it for every message after Hello).
 *
 * Decompression reads the varint decoded length first and rejects it
 * (P2P_ETOOBIG) if it exceeds the caller's bound or the output capacity,
 * before any byte is decompressed; libsnappy then checks the stream while
 * decoding (malformed input -> P2P_EDECODE, never a crash).
 *
 * Thread-safety: pure functions, any thread, no allocation.
 */
#ifndef P2P_WIRE_SNAPPY_H
#define P2P_WIRE_SNAPPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Worst-case compressed size of n input bytes (32 + n + n/6). */
size_t p2p_snappy_bound(size_t n);

/* Compresses in (inlen bytes) into out.  Out: *outlen.  Returns 0 or
 * P2P_ETOOBIG if outcap < p2p_snappy_bound(inlen). */
P2P_MUST_CHECK int p2p_snappy_compress(uint8_t *out, size_t outcap, size_t *outlen,
                                       const uint8_t *in, size_t inlen);

/* Out: *n, the decoded length announced by the compressed block (not
 * validated beyond its varint).  Returns 0 or P2P_EDECODE. */
P2P_MUST_CHECK int p2p_snappy_decoded_len(size_t *n, const uint8_t *in, size_t inlen);

/* Decompresses in into out, whose decoded length must be <= max and <=
 * outcap (checked before decompressing).  Out: *outlen.  Returns 0,
 * P2P_ETOOBIG (announced length too large) or P2P_EDECODE (malformed). */
P2P_MUST_CHECK int p2p_snappy_decompress(uint8_t *out, size_t outcap, size_t *outlen,
                                         const uint8_t *in, size_t inlen, size_t max);

#endif
