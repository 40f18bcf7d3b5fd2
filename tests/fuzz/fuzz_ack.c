/*
 * tests/fuzz/fuzz_ack.c: libFuzzer target for the RLPx ack packet, fed to
 * an initiator (vector key A) that has sent its auth to B.  The first byte
 * selects raw packet bytes or a plaintext sealed here to A (EIP-8 or
 * legacy), so the RLP parsing and the ephemeral key check are reached.
 *
 * Properties: no crash; never consumes more than given; success yields a
 * valid remote ephemeral key and derivable secrets; failure leaves the
 * machine failed.
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
        const uint8_t *auth;
        size_t alen;
        if (p2p_rlpx_hs_init(&tmpl, P2P_RLPX_INITIATOR, fz_key_a, fz_pub_b) ||
            p2p_rlpx_hs_make_auth(&tmpl, &auth, &alen))
            abort();
        ready = 1;
    }
    size_t n = fz_packet(pkt, fz_pub_a, data, size);
    hs = tmpl;
    size_t cut = n ? (size_t)data[size - 1] % n : 0, used1 = 0, used2 = 0;
    int rc = p2p_rlpx_hs_feed(&hs, &used1, pkt, cut);
    if (rc == P2P_EMORE) rc = p2p_rlpx_hs_feed(&hs, &used2, pkt + used1, n - used1);
    if (used1 > cut || used1 + used2 > n) abort();
    if (rc == 0) {
        if (hs.state != P2P_RLPX_HS_DONE || p2p_secp_pubkey_check(hs.remote_eph_pub)) abort();
        p2p_rlpx_secrets_t sec;
        if (p2p_rlpx_hs_secrets(&hs, &sec)) abort();
        p2p_rlpx_secrets_wipe(&sec);
    } else if (rc != P2P_EMORE) {
        if (hs.state != P2P_RLPX_HS_FAILED || p2p_rlpx_hs_need(&hs) != 0) abort();
    }
    return 0;
}
