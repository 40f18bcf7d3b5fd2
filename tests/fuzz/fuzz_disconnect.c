/*
 * tests/fuzz/fuzz_disconnect.c: libFuzzer target for the Disconnect
 * decoder in both orders (raw first, snappy first).  Properties: no crash;
 * failure always reports reason 0xff; the [reason] form we send decodes
 * to its reason in both modes.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/p2p_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int sf = 0; sf < 2; sf++) {
        uint8_t r = 0x42;
        int rc = p2p_disc_decode(&r, data, size, sf);
        if (rc && (rc != P2P_EDECODE || r != P2P_DISC_INVALID)) abort();
        if (rc == 0 && size == 0) abort();
    }
    /* the list form we send always round-trips, whatever the mode */
    if (size >= 1) {
        uint8_t enc[4], r;
        size_t n;
        if (p2p_disc_encode(enc, sizeof enc, &n, data[0])) abort();
        for (int sf = 0; sf < 2; sf++)
            if (p2p_disc_decode(&r, enc, n, sf) || r != data[0]) abort();
    }
    return 0;
}
