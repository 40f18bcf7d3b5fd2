/*
 * tests/fuzz/fuzz_rlp.c: libFuzzer target for the RLP decoder.
 *
 * Properties: p2p_rlp_validate never reads out of bounds; when it accepts,
 * a cursor walk accepts too, and re-encoding the decoded tree with the
 * encoder reproduces the input byte for byte (canonical form is unique).
 * When it rejects, the input must not survive the walk either.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/rlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks every item of c, re-encoding into e; returns 0 or an error. */
static int walk(p2p_rlp_t *c, p2p_rlp_enc_t *e)
{
    while (!p2p_rlp_done(c)) {
        p2p_rlp_item_t it;
        p2p_rlp_t save = *c;
        int rc = p2p_rlp_next(c, &it);
        if (rc) return rc;
        if (it.kind == P2P_RLP_BYTES) {
            p2p_rlp_put_bytes(e, it.payload, it.len);
            if (it.len <= 8 && (it.len == 0 || it.payload[0] != 0)) {
                uint64_t v;
                p2p_rlp_t u = save;
                if (p2p_rlp_uint(&u, &v) != 0 || u.p != c->p) abort();
            }
            continue;
        }
        p2p_rlp_t in;
        *c = save;
        rc = p2p_rlp_enter(c, &in);
        if (rc) return rc;
        p2p_rlp_list_begin(e);
        rc = walk(&in, e);
        if (rc) return rc;
        p2p_rlp_list_end(e);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    int vrc = p2p_rlp_validate(data, size);
    uint8_t *out = malloc(size + 16);
    if (!out) return 0;
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, out, size + 16);
    p2p_rlp_t c;
    p2p_rlp_init(&c, data, size);
    p2p_rlp_item_t first;
    int frc = p2p_rlp_next(&c, &first);
    p2p_rlp_init(&c, data, size);
    int wrc = walk(&c, &e);
    if (vrc == 0) {
        size_t len;
        if (wrc != 0) abort();
        if (p2p_rlp_enc_finish(&e, &len) != 0) abort();
        if (len != size || memcmp(out, data, size) != 0) abort();
    } else if (wrc == 0 && frc == 0 && first.rawlen == size) {
        abort(); /* walk accepted a single item that validate rejected */
    }
    free(out);
    return 0;
}
