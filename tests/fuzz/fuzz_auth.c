/*
 * tests/fuzz/fuzz_auth.c: libFuzzer target for the RLPx auth packet, fed
 * to a recipient with a fixed static key (vector key B).  The first byte
 * selects raw packet bytes or a plaintext sealed here (EIP-8 or legacy), so
 * the RLP parsing, signature recovery and key checks are reached.
 *
 * Properties: no crash or out-of-bounds access; the machine never consumes
 * more than it was given; success leaves it ready to send an ack, which
 * must then be well formed; failure leaves it failed with need() == 0.
 */
#include "tests/fuzz/fuzz_hs_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static p2p_rlpx_hs_t tmpl, hs;
    static int ready;
    static uint8_t pkt[P2P_RLPX_HS_PKT_MAX + 1];
    if (!ready) {
        fz_keys();
        if (p2p_rlpx_hs_init(&tmpl, P2P_RLPX_RECIPIENT, fz_key_b, NULL)) abort();
        ready = 1;
    }
    size_t n = fz_packet(pkt, fz_pub_b, data, size);
    hs = tmpl;
    /* feed in two pieces to exercise the incremental path */
    size_t cut = n ? (size_t)data[size - 1] % n : 0, used1 = 0, used2 = 0;
    int rc = p2p_rlpx_hs_feed(&hs, &used1, pkt, cut);
    if (rc == P2P_EMORE) rc = p2p_rlpx_hs_feed(&hs, &used2, pkt + used1, n - used1);
    if (used1 > cut || used1 + used2 > n) abort();
    if (rc == 0) {
        if (hs.state != P2P_RLPX_HS_SEND_ACK || p2p_rlpx_hs_need(&hs) != 0) abort();
        if (p2p_secp_pubkey_check(hs.remote_pub) || p2p_secp_pubkey_check(hs.remote_eph_pub))
            abort();
        const uint8_t *ack;
        size_t alen;
        if (p2p_rlpx_hs_make_ack(&hs, &ack, &alen)) abort();
        if (hs.remote_eip8 ? alen != 2 + ((size_t)ack[0] << 8 | ack[1])
                           : alen != P2P_RLPX_ACK_LEGACY_LEN)
            abort();
        p2p_rlpx_secrets_t sec;
        if (p2p_rlpx_hs_secrets(&hs, &sec)) abort();
        p2p_rlpx_secrets_wipe(&sec);
    } else if (rc != P2P_EMORE) {
        if (hs.state != P2P_RLPX_HS_FAILED || p2p_rlpx_hs_need(&hs) != 0) abort();
    }
    return 0;
}
