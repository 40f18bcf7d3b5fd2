/*
 * tests/fuzz/fuzz_enr.c: libFuzzer target for ENR decoding (binary and text).
 *
 * The first byte picks the form: even = binary record, odd = text form.
 * Properties: a record that decodes re-encodes to exactly the input bytes
 * (canonical RLP, sorted keys); accessors and node conversion never crash;
 * re-signing the decoded content with a fixed key yields a record that
 * verifies and decodes to the same pairs; a decoded text re-encodes to a
 * text that decodes to the same record.
 */
#include <stdlib.h>
#include <string.h>

#include "wire/enr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* results we only exercise (warn_unused_result cannot be cast away) */
static volatile int sink;

static const uint8_t fkey[32] = {0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void poke(const p2p_enr_t *r)
{
    char id[P2P_ENR_MAX_ID_LEN + 1];
    uint8_t pub[64], nid[32];
    p2p_ip_t ip;
    uint16_t port;
    p2p_node_t n;
    sink += p2p_enr_id(r, id);
    sink += p2p_enr_pubkey(r, pub);
    sink += p2p_enr_node_id(r, nid);
    sink += p2p_enr_ip4(r, &ip);
    sink += p2p_enr_ip6(r, &ip);
    sink += p2p_enr_port(r, &port, "udp6");
    sink += p2p_enr_to_node(&n, r);
    /* a node of one family gets an address of that family whenever the
     * record has a usable one; either way one of the record's */
    for (unsigned fam = 4; fam <= 6; fam += 2) {
        p2p_node_t f;
        int rc = p2p_enr_to_node_for(&f, r, fam);
        sink += rc;
        if (rc == 0 && n.ep.ip.family == fam && f.ep.ip.family != fam) abort();
    }
}

static void binary(const uint8_t *data, size_t size)
{
    p2p_enr_t r, d;
    if (p2p_enr_decode_unverified(&r, data, size) != 0) return;
    uint8_t out[P2P_ENR_MAX_SIZE];
    size_t len;
    if (p2p_enr_encode(out, sizeof out, &len, &r) != 0) abort();
    if (len != size || memcmp(out, data, size) != 0) abort();
    sink += p2p_enr_verify(&r);
    poke(&r);
    /* re-sign the same pairs with our key */
    d = r;
    p2p_enr_set_seq(&d, r.seq + 1);
    if (p2p_enr_sign(&d, fkey) != 0) return; /* may no longer fit in 300 bytes */
    if (p2p_enr_encode(out, sizeof out, &len, &d) != 0) abort();
    p2p_enr_t e;
    if (p2p_enr_decode(&e, out, len) != 0) abort();
    if (e.n != d.n || e.datalen != d.datalen || memcmp(e.data, d.data, d.datalen) != 0) abort();
}

static void text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return;
    memcpy(s, data, size);
    s[size] = 0;
    p2p_enr_t r, d;
    if (p2p_enr_from_text(&r, s) == 0) {
        char t[P2P_ENR_MAX_TEXT];
        if (p2p_enr_to_text(t, sizeof t, &r) != 0) abort();
        if (p2p_enr_from_text(&d, t) != 0) abort();
        if (d.seq != r.seq || d.n != r.n || memcmp(d.data, r.data, r.datalen) != 0) abort();
        poke(&r);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1024) return 0;
    if (data[0] & 1)
        text(data + 1, size - 1);
    else
        binary(data + 1, size - 1);
    return 0;
}
