/*
 * tests/fuzz/fuzz_enode.c: libFuzzer target for enode URLs and
 * p2p_node_parse ("enr:", "enode://", bare hex).
 *
 * Properties: no crash on any string; a parsed node formats to a URL that
 * parses back to the same key, ID and endpoint.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/enode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    p2p_node_t a, b;
    if (p2p_node_parse(&a, s) == 0) {
        char out[P2P_ENODE_MAX_TEXT];
        if (p2p_enode_format(out, sizeof out, &a) != 0) abort();
        if (p2p_enode_parse(&b, out) != 0) abort();
        if (memcmp(a.id, b.id, 32) || memcmp(a.pubkey, b.pubkey, 64)) abort();
        if (!p2p_ip_equal(&a.ep.ip, &b.ep.ip) || a.ep.udp != b.ep.udp || a.ep.tcp != b.ep.tcp)
            abort();
    }
    free(s);
    return 0;
}
