/*
 * tests/fuzz/fuzz_hs_common.h: fixed keys shared by the auth and ack
 * fuzz targets (the EIP-8 vector keys), and a helper that wraps fuzzer
 * bytes into an authentic handshake packet so the fuzzer reaches the
 * RLP and key checks behind the ECIES MAC.
 */
#ifndef P2P_TESTS_FUZZ_HS_COMMON_H
#define P2P_TESTS_FUZZ_HS_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "crypto/ecies.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/rlpx_handshake.h"

static const char fz_key_a_hex[] =
    "49a7b37aa6f6645917e7b807e9d1c00d4fa71f18343b0d4122a4d2df64dd6fee";
static const char fz_key_b_hex[] =
    "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";
static const char fz_eph_hex[] = "869d6ecf5211f1cc60418a13b9d870b22959d0c16f02bec714c960dd2298a32d";

static uint8_t fz_key_a[32], fz_key_b[32], fz_eph[32], fz_pub_a[64], fz_pub_b[64];

static void fz_keys(void)
{
    if (p2p_hex_decode(fz_key_a, 32, fz_key_a_hex, 64) != 32 ||
        p2p_hex_decode(fz_key_b, 32, fz_key_b_hex, 64) != 32 ||
        p2p_hex_decode(fz_eph, 32, fz_eph_hex, 64) != 32 || p2p_secp_pubkey(fz_pub_a, fz_key_a) ||
        p2p_secp_pubkey(fz_pub_b, fz_key_b))
        abort();
}

/* Input modes, chosen by the first byte:
 *   0: the rest is the raw packet as it arrives from the socket;
 *   1: the rest is an EIP-8 plaintext, sealed here (prefix + ECIES);
 *   2: the rest is a legacy plaintext, sealed here without prefix.
 * Out: pkt (P2P_RLPX_HS_PKT_MAX + 1 bytes), returns its length or 0 if the
 * plaintext does not fit. */
__attribute__((unused)) static size_t fz_packet(uint8_t *pkt, const uint8_t to[64],
                                                const uint8_t *data, size_t size)
{
    static const uint8_t iv[16] = {1, 2, 3, 4};
    if (size == 0) return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        if (size > P2P_RLPX_HS_PKT_MAX + 1) size = P2P_RLPX_HS_PKT_MAX + 1;
        memcpy(pkt, data, size);
        return size;
    }
    if (size + P2P_ECIES_OVERHEAD > P2P_RLPX_HS_MAX) return 0;
    size_t n = size + P2P_ECIES_OVERHEAD;
    if (mode == 1) {
        pkt[0] = (uint8_t)(n >> 8);
        pkt[1] = (uint8_t)n;
        if (p2p_ecies_encrypt_with(pkt + 2, P2P_RLPX_HS_PKT_MAX, to, data, size, pkt, 2, fz_eph,
                                   iv))
            abort();
        return 2 + n;
    }
    if (p2p_ecies_encrypt_with(pkt, P2P_RLPX_HS_PKT_MAX, to, data, size, NULL, 0, fz_eph, iv))
        abort();
    return n;
}

#endif
