/*
 * wire/rlpx_handshake.c: RLPx auth/ack state machine (see rlpx_handshake.h).
 *
 * Owned by one connection thread; pure (the only outside input is the OS
 * RNG for ephemeral keys, nonces, padding and ECIES IVs).  Limits: packets
 * of at most 2 + 2048 bytes; sizes are checked from the 2-byte prefix
 * before the body is buffered.  Every temporary secret is wiped before
 * return; the state's secrets are wiped by p2p_rlpx_hs_wipe.
 *
 * Formats (PROTOCOL.md, RLPx):
 *   auth (EIP-8)  rlp([sig65, initiator-pub64, nonce32, version, ...])
 *   ack  (EIP-8)  rlp([eph-pub64, nonce32, version, ...])
 *   auth (legacy) sig65 || keccak(eph-pub)32 || pub64 || nonce32 || 0x00
 *   ack  (legacy) eph-pub64 || nonce32 || 0x00
 *   sig = sign_eph(x(ECDH(static)) XOR initNonce), r||s||v with v in {0,1}.
 */
#include "wire/rlpx_handshake.h"

#include <stddef.h>
#include <string.h>

#include "crypto/ecies.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "wire/rlp.h"

enum {
    AUTH_LEGACY_PT = 194,
    ACK_LEGACY_PT = 97,
    PT_MAX = P2P_RLPX_HS_MAX - P2P_ECIES_OVERHEAD, /* largest plaintext */
};

static int fail(p2p_rlpx_hs_t *hs, int rc)
{
    hs->state = P2P_RLPX_HS_FAILED;
    return rc;
}

int p2p_rlpx_hs_init(p2p_rlpx_hs_t *hs, p2p_rlpx_role_t role, const uint8_t priv[32],
                     const uint8_t *remote_pub)
{
    return p2p_rlpx_hs_init_keyed(hs, role, priv, NULL, remote_pub);
}

int p2p_rlpx_hs_init_keyed(p2p_rlpx_hs_t *hs, p2p_rlpx_role_t role, const uint8_t priv[32],
                           const uint8_t *pub, const uint8_t *remote_pub)
{
    memset(hs, 0, offsetof(p2p_rlpx_hs_t, auth));
    hs->auth_len = hs->ack_len = 0;
    hs->role = role;
    hs->state = P2P_RLPX_HS_FAILED;
    if (role != P2P_RLPX_INITIATOR && role != P2P_RLPX_RECIPIENT) return P2P_EINVAL;
    if (role == P2P_RLPX_INITIATOR) {
        if (!remote_pub) return P2P_EINVAL;
        if (p2p_secp_pubkey_check(remote_pub)) return P2P_EBADKEY;
        memcpy(hs->remote_pub, remote_pub, 64);
    }
    /* Only the initiator sends its static public key (one EC multiplication
     * saved per inbound handshake; none when the caller passes it). */
    if (p2p_secp_privkey_check(priv) != 0) return P2P_EBADKEY;
    if (role == P2P_RLPX_INITIATOR) {
        if (pub)
            memcpy(hs->pub, pub, 64);
        else if (p2p_secp_pubkey(hs->pub, priv) != 0)
            return P2P_EBADKEY;
    }
    memcpy(hs->priv, priv, 32);
    int rc = p2p_secp_keygen(hs->eph_priv);
    if (rc) return rc;
    rc = p2p_random(role == P2P_RLPX_INITIATOR ? hs->init_nonce : hs->resp_nonce, 32);
    if (rc) return rc;
    hs->state = P2P_RLPX_HS_START;
    return 0;
}

int p2p_rlpx_hs_test_set_ephemeral(p2p_rlpx_hs_t *hs, const uint8_t eph_priv[32],
                                   const uint8_t nonce[32])
{
    if (hs->state != P2P_RLPX_HS_START && hs->state != P2P_RLPX_HS_SEND_ACK) return P2P_ESTATE;
    if (p2p_secp_privkey_check(eph_priv)) return P2P_EBADKEY;
    memcpy(hs->eph_priv, eph_priv, 32);
    memcpy(hs->role == P2P_RLPX_INITIATOR ? hs->init_nonce : hs->resp_nonce, nonce, 32);
    return 0;
}

/* Appends 100..199 zero bytes at pt[len..); returns the new length. */
static int pad(uint8_t *pt, size_t cap, size_t *len)
{
    uint8_t r;
    int rc = p2p_random(&r, 1);
    if (rc) return rc;
    size_t n = P2P_RLPX_PAD_MIN + (size_t)r % P2P_RLPX_PAD_SPAN;
    if (*len + n > cap) return P2P_ETOOBIG;
    memset(pt + *len, 0, n);
    *len += n;
    return 0;
}

/* ECIES-encrypts pt to the remote static key as an EIP-8 packet. */
static int seal_eip8(p2p_rlpx_hs_t *hs, uint8_t *pkt, size_t *pktlen, const uint8_t *pt,
                     size_t ptlen)
{
    size_t size = ptlen + P2P_ECIES_OVERHEAD;
    if (size > P2P_RLPX_HS_MAX) return P2P_ETOOBIG;
    pkt[0] = (uint8_t)(size >> 8);
    pkt[1] = (uint8_t)size;
    int rc = p2p_ecies_encrypt(pkt + 2, P2P_RLPX_HS_PKT_MAX - 2, hs->remote_pub, pt, ptlen, pkt, 2);
    if (rc) return rc;
    *pktlen = 2 + size;
    return 0;
}

int p2p_rlpx_hs_make_auth(p2p_rlpx_hs_t *hs, const uint8_t **pkt, size_t *pktlen)
{
    if (hs->role != P2P_RLPX_INITIATOR || hs->state != P2P_RLPX_HS_START) return P2P_ESTATE;
    uint8_t tok[32], sig[65], pt[PT_MAX];
    p2p_rlp_enc_t e;
    int rc = p2p_secp_ecdh(tok, hs->remote_pub, hs->priv);
    if (rc) goto out;
    for (int i = 0; i < 32; i++) tok[i] ^= hs->init_nonce[i];
    rc = p2p_secp_sign(sig, tok, hs->eph_priv);
    if (rc) goto out;

    p2p_rlp_enc_init(&e, pt, sizeof pt);
    p2p_rlp_list_begin(&e);
    p2p_rlp_put_bytes(&e, sig, 65);
    p2p_rlp_put_bytes(&e, hs->pub, 64);
    p2p_rlp_put_bytes(&e, hs->init_nonce, 32);
    p2p_rlp_put_uint(&e, P2P_RLPX_HS_VERSION);
    p2p_rlp_list_end(&e);
    size_t len;
    rc = p2p_rlp_enc_finish(&e, &len);
    if (rc) goto out;
    rc = pad(pt, sizeof pt, &len);
    if (rc) goto out;
    rc = seal_eip8(hs, hs->auth, &hs->auth_len, pt, len);
    if (rc) goto out;
    hs->state = P2P_RLPX_HS_WAIT_ACK;
    *pkt = hs->auth;
    *pktlen = hs->auth_len;
out:
    P2P_WIPE(tok);
    P2P_WIPE(pt);
    P2P_WIPE(e);
    return rc ? fail(hs, rc) : 0;
}

int p2p_rlpx_hs_make_ack(p2p_rlpx_hs_t *hs, const uint8_t **pkt, size_t *pktlen)
{
    if (hs->role != P2P_RLPX_RECIPIENT || hs->state != P2P_RLPX_HS_SEND_ACK) return P2P_ESTATE;
    uint8_t pt[PT_MAX], eph_pub[64];
    size_t len = 0;
    int rc = p2p_secp_pubkey(eph_pub, hs->eph_priv);
    if (rc) goto out;
    if (!hs->remote_eip8) {
        memcpy(pt, eph_pub, 64);
        memcpy(pt + 64, hs->resp_nonce, 32);
        pt[96] = 0;
        rc = p2p_ecies_encrypt(hs->ack, sizeof hs->ack, hs->remote_pub, pt, ACK_LEGACY_PT, NULL, 0);
        if (rc) goto out;
        hs->ack_len = P2P_RLPX_ACK_LEGACY_LEN;
    } else {
        p2p_rlp_enc_t e;
        p2p_rlp_enc_init(&e, pt, sizeof pt);
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, eph_pub, 64);
        p2p_rlp_put_bytes(&e, hs->resp_nonce, 32);
        p2p_rlp_put_uint(&e, P2P_RLPX_HS_VERSION);
        p2p_rlp_list_end(&e);
        rc = p2p_rlp_enc_finish(&e, &len);
        if (rc) goto out;
        rc = pad(pt, sizeof pt, &len);
        if (rc) goto out;
        rc = seal_eip8(hs, hs->ack, &hs->ack_len, pt, len);
        if (rc) goto out;
    }
    hs->state = P2P_RLPX_HS_DONE;
    *pkt = hs->ack;
    *pktlen = hs->ack_len;
out:
    P2P_WIPE(pt);
    return rc ? fail(hs, rc) : 0;
}

/* ---- receiving ---- */

static uint8_t *rbuf(p2p_rlpx_hs_t *hs, size_t **len)
{
    if (hs->role == P2P_RLPX_RECIPIENT) {
        *len = &hs->auth_len;
        return hs->auth;
    }
    *len = &hs->ack_len;
    return hs->ack;
}

static size_t legacy_len(const p2p_rlpx_hs_t *hs)
{
    return hs->role == P2P_RLPX_RECIPIENT ? P2P_RLPX_AUTH_LEGACY_LEN : P2P_RLPX_ACK_LEGACY_LEN;
}

static bool receiving(const p2p_rlpx_hs_t *hs)
{
    return (hs->role == P2P_RLPX_RECIPIENT && hs->state == P2P_RLPX_HS_START) ||
           (hs->role == P2P_RLPX_INITIATOR && hs->state == P2P_RLPX_HS_WAIT_ACK);
}

/* Total packet length expected given what is buffered (>= 2 bytes). */
static size_t target_len(const p2p_rlpx_hs_t *hs, const uint8_t *b)
{
    if (b[0] == 0x04 && !hs->legacy_tried) return legacy_len(hs);
    return 2 + ((size_t)b[0] << 8 | b[1]);
}

size_t p2p_rlpx_hs_need(const p2p_rlpx_hs_t *hs)
{
    if (!receiving(hs)) return 0;
    size_t have = hs->role == P2P_RLPX_RECIPIENT ? hs->auth_len : hs->ack_len;
    const uint8_t *b = hs->role == P2P_RLPX_RECIPIENT ? hs->auth : hs->ack;
    if (have < 2) return 2 - have;
    size_t t = target_len(hs, b);
    return t > have ? t - have : 0;
}

/* Recipient: the auth body is parsed; checks keys, recovers the remote
 * ephemeral key.  init_pub has not been validated yet. */
static int auth_common(p2p_rlpx_hs_t *hs, const uint8_t sig[65], const uint8_t init_pub[64],
                       const uint8_t nonce[32])
{
    if (p2p_secp_pubkey_check(init_pub)) return P2P_EBADKEY;
    uint8_t tok[32];
    int rc = p2p_secp_ecdh(tok, init_pub, hs->priv);
    if (rc) goto out;
    for (int i = 0; i < 32; i++) tok[i] ^= nonce[i];
    rc = p2p_secp_recover(hs->remote_eph_pub, sig, tok);
    if (rc) {
        rc = P2P_EBADSIG;
        goto out;
    }
    if (p2p_secp_pubkey_check(hs->remote_eph_pub)) {
        rc = P2P_EBADKEY;
        goto out;
    }
    memcpy(hs->remote_pub, init_pub, 64);
    memcpy(hs->init_nonce, nonce, 32);
out:
    P2P_WIPE(tok);
    return rc;
}

static int parse_auth_legacy(p2p_rlpx_hs_t *hs, const uint8_t *pt, size_t len)
{
    if (len != AUTH_LEGACY_PT) return P2P_EDECODE;
    int rc = auth_common(hs, pt, pt + 97, pt + 161);
    if (rc) return rc;
    uint8_t h[32];
    p2p_keccak256(h, hs->remote_eph_pub, 64);
    if (memcmp(h, pt + 65, 32) != 0) return P2P_EBADSIG;
    hs->remote_version = P2P_RLPX_HS_VERSION;
    hs->remote_eip8 = false;
    return 0;
}

static int parse_auth_eip8(p2p_rlpx_hs_t *hs, const uint8_t *pt, size_t len)
{
    uint8_t sig[65], pub[64], nonce[32];
    p2p_rlp_t c, l;
    p2p_rlp_init(&c, pt, len);
    int rc = p2p_rlp_enter(&c, &l); /* bytes after the list: padding, ignored */
    if (!rc) rc = p2p_rlp_fixed(&l, sig, 65);
    if (!rc) rc = p2p_rlp_fixed(&l, pub, 64);
    if (!rc) rc = p2p_rlp_fixed(&l, nonce, 32);
    if (!rc) rc = p2p_rlp_uint(&l, &hs->remote_version);
    if (rc) return P2P_EDECODE; /* any malformed body, as the header lists */
    hs->remote_eip8 = true;
    return auth_common(hs, sig, pub, nonce); /* extra list elements: ignored */
}

static int parse_ack_legacy(p2p_rlpx_hs_t *hs, const uint8_t *pt, size_t len)
{
    if (len != ACK_LEGACY_PT) return P2P_EDECODE;
    if (p2p_secp_pubkey_check(pt)) return P2P_EBADKEY;
    memcpy(hs->remote_eph_pub, pt, 64);
    memcpy(hs->resp_nonce, pt + 64, 32);
    hs->remote_version = P2P_RLPX_HS_VERSION;
    hs->remote_eip8 = false;
    return 0;
}

static int parse_ack_eip8(p2p_rlpx_hs_t *hs, const uint8_t *pt, size_t len)
{
    uint8_t pub[64];
    p2p_rlp_t c, l;
    p2p_rlp_init(&c, pt, len);
    int rc = p2p_rlp_enter(&c, &l);
    if (!rc) rc = p2p_rlp_fixed(&l, pub, 64);
    if (!rc) rc = p2p_rlp_fixed(&l, hs->resp_nonce, 32);
    if (!rc) rc = p2p_rlp_uint(&l, &hs->remote_version);
    if (rc) return P2P_EDECODE; /* any malformed body, as the header lists */
    if (p2p_secp_pubkey_check(pub)) return P2P_EBADKEY;
    memcpy(hs->remote_eph_pub, pub, 64);
    hs->remote_eip8 = true;
    return 0;
}

/* Decrypts and parses the complete packet b[0..n).  Out: *opened, whether
 * the ECIES layer authenticated it (then the format is settled). */
static int finish_packet(p2p_rlpx_hs_t *hs, bool *opened, const uint8_t *b, size_t n, bool legacy)
{
    uint8_t pt[PT_MAX];
    size_t ptlen;
    int rc;
    *opened = false;
    if (legacy)
        rc = p2p_ecies_decrypt(pt, sizeof pt, &ptlen, hs->priv, b, n, NULL, 0);
    else
        rc = p2p_ecies_decrypt(pt, sizeof pt, &ptlen, hs->priv, b + 2, n - 2, b, 2);
    if (rc) goto out;
    *opened = true;
    if (hs->role == P2P_RLPX_RECIPIENT)
        rc = legacy ? parse_auth_legacy(hs, pt, ptlen) : parse_auth_eip8(hs, pt, ptlen);
    else
        rc = legacy ? parse_ack_legacy(hs, pt, ptlen) : parse_ack_eip8(hs, pt, ptlen);
out:
    P2P_WIPE(pt);
    return rc;
}

int p2p_rlpx_hs_feed(p2p_rlpx_hs_t *hs, size_t *consumed, const uint8_t *in, size_t inlen)
{
    *consumed = 0;
    if (!receiving(hs)) return P2P_ESTATE;
    size_t *have;
    uint8_t *b = rbuf(hs, &have);
    for (;;) {
        size_t need = p2p_rlpx_hs_need(hs);
        size_t take = need < inlen - *consumed ? need : inlen - *consumed;
        if (take) memcpy(b + *have, in + *consumed, take);
        *have += take;
        *consumed += take;
        if (take < need) return P2P_EMORE;
        if (*have == 2) { /* prefix complete: check the announced size */
            size_t size = (size_t)b[0] << 8 | b[1];
            if (b[0] != 0x04 || hs->legacy_tried) {
                if (size > P2P_RLPX_HS_MAX) return fail(hs, P2P_ETOOBIG);
                if (size <= P2P_ECIES_OVERHEAD) return fail(hs, P2P_EDECODE);
            }
            continue;
        }
        if (b[0] == 0x04 && !hs->legacy_tried) {
            /* *have == legacy length: legacy or a 0x04xx-sized EIP-8 packet. */
            bool opened;
            int rc = finish_packet(hs, &opened, b, *have, true);
            if (rc == 0) break;
            if (opened) return fail(hs, rc); /* legacy, but malformed */
            /* Not legacy: the prefix 0x04xx announces 1024..1279 bytes,
             * within limits and beyond the legacy length: read on. */
            hs->legacy_tried = true;
            continue;
        }
        bool opened;
        int rc = finish_packet(hs, &opened, b, *have, false);
        if (rc) return fail(hs, rc);
        break;
    }
    hs->state = hs->role == P2P_RLPX_RECIPIENT ? P2P_RLPX_HS_SEND_ACK : P2P_RLPX_HS_DONE;
    return 0;
}

/* ---- secrets ---- */

static int derive(const p2p_rlpx_hs_t *hs, p2p_rlpx_secrets_t *sec, const uint8_t *auth,
                  size_t authlen, const uint8_t *ack, size_t acklen)
{
    uint8_t ecdhe[32], h[32], shared[32], x[32], nonces[64];
    int rc = p2p_secp_ecdh(ecdhe, hs->remote_eph_pub, hs->eph_priv);
    if (rc) goto out;
    memcpy(nonces, hs->resp_nonce, 32);
    memcpy(nonces + 32, hs->init_nonce, 32);
    p2p_keccak256(h, nonces, 64);
    p2p_keccak256_2(shared, ecdhe, 32, h, 32);
    p2p_keccak256_2(sec->aes, ecdhe, 32, shared, 32);
    p2p_keccak256_2(sec->mac, ecdhe, 32, sec->aes, 32);
    memcpy(sec->remote_pub, hs->remote_pub, 64);

    /* initiator egress = keccak((mac ^ respNonce) || auth),
     *           ingress = keccak((mac ^ initNonce) || ack); recipient swapped. */
    p2p_keccak_t *mac_resp_auth, *mac_init_ack;
    if (hs->role == P2P_RLPX_INITIATOR) {
        mac_resp_auth = &sec->egress_mac;
        mac_init_ack = &sec->ingress_mac;
    } else {
        mac_resp_auth = &sec->ingress_mac;
        mac_init_ack = &sec->egress_mac;
    }
    for (int i = 0; i < 32; i++) x[i] = sec->mac[i] ^ hs->resp_nonce[i];
    p2p_keccak_init(mac_resp_auth);
    p2p_keccak_update(mac_resp_auth, x, 32);
    p2p_keccak_update(mac_resp_auth, auth, authlen);
    for (int i = 0; i < 32; i++) x[i] = sec->mac[i] ^ hs->init_nonce[i];
    p2p_keccak_init(mac_init_ack);
    p2p_keccak_update(mac_init_ack, x, 32);
    p2p_keccak_update(mac_init_ack, ack, acklen);
out:
    P2P_WIPE(ecdhe);
    P2P_WIPE(h);
    P2P_WIPE(shared);
    P2P_WIPE(x);
    P2P_WIPE(nonces);
    if (rc) p2p_rlpx_secrets_wipe(sec);
    return rc;
}

int p2p_rlpx_hs_secrets(const p2p_rlpx_hs_t *hs, p2p_rlpx_secrets_t *sec)
{
    if (hs->state != P2P_RLPX_HS_DONE) return P2P_ESTATE;
    return derive(hs, sec, hs->auth, hs->auth_len, hs->ack, hs->ack_len);
}

int p2p_rlpx_hs_test_secrets_with(const p2p_rlpx_hs_t *hs, p2p_rlpx_secrets_t *sec,
                                  const uint8_t *auth, size_t authlen, const uint8_t *ack,
                                  size_t acklen)
{
    if (hs->state != P2P_RLPX_HS_DONE && hs->state != P2P_RLPX_HS_SEND_ACK) return P2P_ESTATE;
    return derive(hs, sec, auth, authlen, ack, acklen);
}

void p2p_rlpx_hs_wipe(p2p_rlpx_hs_t *hs)
{
    p2p_wipe(hs, sizeof *hs);
    hs->state = P2P_RLPX_HS_FAILED;
}

void p2p_rlpx_secrets_wipe(p2p_rlpx_secrets_t *sec)
{
    p2p_wipe(sec, sizeof *sec);
}
