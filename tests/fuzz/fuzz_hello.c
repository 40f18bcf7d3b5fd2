/*
 * tests/fuzz/fuzz_hello.c: libFuzzer target for the Hello decoder.
 * Properties: no crash; an accepted Hello respects the limits (at most 64
 * caps kept, cap names of 1..32 bytes: caps outside them are skipped, not
 * refused; name sizes, non-zero 64-byte ID), re-encodes, and the
 * re-encoding decodes to the same fields.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/p2p_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static p2p_hello_t h, h2;
    static uint8_t out[4096];
    if (p2p_hello_decode(&h, data, size)) return 0;
    if (size > P2P_HELLO_MAX || h.ncaps > P2P_HELLO_MAX_CAPS || h.name_len > size) abort();
    for (size_t i = 0; i < h.ncaps; i++)
        if (h.caps[i].name_len == 0 || h.caps[i].name_len > P2P_CAP_NAME_MAX) abort();
    size_t n;
    int rc = p2p_hello_encode(out, sizeof out, &n, &h);
    if (rc == P2P_ETOOBIG) return 0; /* canonical re-encoding may differ in size */
    if (rc || p2p_hello_decode(&h2, out, n)) abort();
    if (h2.version != h.version || h2.listen_port != h.listen_port || h2.ncaps != h.ncaps ||
        h2.name_len != h.name_len || memcmp(h2.name, h.name, h.name_len) || memcmp(h2.id, h.id, 64))
        abort();
    for (size_t i = 0; i < h.ncaps; i++)
        if (h2.caps[i].version != h.caps[i].version || h2.caps[i].name_len != h.caps[i].name_len ||
            memcmp(h2.caps[i].name, h.caps[i].name, h.caps[i].name_len))
            abort();
    /* matching against a fixed local set never fails on a decoded Hello */
    static const p2p_proto_t local[] = {{"eth", 68, 17}, {"snap", 1, 8}, {"eth", 67, 17}};
    p2p_proto_match_t m[3];
    size_t nm;
    if (p2p_caps_match(m, &nm, local, 3, h.caps, h.ncaps) || nm > 2) abort();
    for (size_t i = 0; i < nm; i++)
        if (m[i].offset < P2P_BASE_LENGTH || m[i].offset > P2P_BASE_LENGTH + 17) abort();
    return 0;
}
