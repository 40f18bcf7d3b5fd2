/*
 * wire/rlpx_frame.h: the RLPx frame codec (after the handshake).
 *
 * One AES-256-CTR stream per direction (key = aes secret, IV = 0), kept
 * across frames; the egress/ingress Keccak MAC states with the header and
 * frame MAC construction of the RLPx spec (AES-256-ECB of the MAC digest
 * with the mac secret).  Frame on the wire:
 *   header-ct16 || header-mac16 || frame-ct (rlp(code)||payload||pad16) || frame-mac16
 *   header = uint24 fsize || C2 80 80 || zeros, fsize = len(rlp(code)) + len(payload).
 * With snappy on (p2p v5 after Hello), the payload (never the code) is
 * snappy-compressed; Disconnect (code 0x01) is delivered as received since
 * some clients send it uncompressed (p2p_disc_decode accepts both).
 *
 * Encoding writes into a caller buffer (p2p_rlpx_frame_bound bytes), or
 * seals a body the caller wrote in place at buf + P2P_RLPX_HEADER_LEN.
 * Decoding is incremental and in place: p2p_rlpx_dec_need() bytes (32 for
 * a header, then the padded body + MAC) are handed to p2p_rlpx_dec_step().
 * The announced frame size is checked against 16 MiB - 1 and the caller's
 * max before the body is asked for; a snappy decoded length is checked
 * against the max before decompressing.  MACs are compared in constant
 * time; after any error the codec refuses further use (P2P_ESTATE).
 * No allocation anywhere.
 *
 * Thread-safety: a codec belongs to its peer thread (reader and writer
 * halves touch disjoint fields, but the design keeps both on one thread).
 */
#ifndef P2P_WIRE_RLPX_FRAME_H
#define P2P_WIRE_RLPX_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/aes.h>

#include "core/err.h"
#include "crypto/keccak.h"
#include "wire/rlpx_handshake.h"

enum {
    P2P_RLPX_FRAME_MAX = 0xFFFFFF, /* uint24: largest frame and decoded message */
    P2P_RLPX_HEADER_LEN = 32,      /* header ct + header MAC */
    P2P_RLPX_MAC_LEN = 16,
    P2P_RLPX_CODE_MAX_LEN = 9, /* rlp(uint64) */
};

typedef struct p2p_rlpx_codec {
    struct aes256_ctx enc; /* egress CTR stream */
    uint8_t enc_ctr[16];
    struct aes256_ctx dec; /* ingress CTR stream */
    uint8_t dec_ctr[16];
    struct aes256_ctx mac_aes; /* ECB, key = mac secret */
    p2p_keccak_t egress;
    p2p_keccak_t ingress;
    /* Digest of each MAC state as left by the last frame MAC: the next
     * header MAC starts from the same state, so its seed is reused (one
     * Keccak permutation saved per frame and direction). */
    uint8_t egress_seed[32];
    uint8_t ingress_seed[32];
    bool egress_seed_ok;
    bool ingress_seed_ok;
    size_t max_msg; /* bound on a payload; on fsize too without snappy */
    bool snappy;
    int rstate;   /* decoder: 0 header, 1 body, -1 failed */
    int wstate;   /* encoder: 0 ok, -1 failed */
    size_t fsize; /* frame size announced by the pending header */
} p2p_rlpx_codec_t;

/* A decoded message.  payload points into the caller's buffer (plain or
 * snappy-passthrough) or into the scratch buffer (decompressed). */
typedef struct p2p_rlpx_msg {
    uint64_t code;
    const uint8_t *payload;
    size_t len;
    size_t fsize; /* frame size on the wire (code + payload as sent) */
} p2p_rlpx_msg_t;

/* Sets up both directions from the handshake secrets.  max_msg
 * (1..P2P_RLPX_FRAME_MAX) bounds what is received: a payload (decoded, with
 * snappy) is at most max_msg bytes, and so is a frame without snappy; a
 * compressed frame may be as large as the worst-case snappy encoding of a
 * max_msg payload plus its code (p2p_rlpx_frame_limit).  A sender whose
 * messages pass p2p_rlpx_msg_check with the same max_msg is always
 * accepted.  Returns 0 or P2P_EINVAL. */
P2P_MUST_CHECK int p2p_rlpx_codec_init(p2p_rlpx_codec_t *c, const p2p_rlpx_secrets_t *sec,
                                       size_t max_msg);

/* Turns snappy compression on or off for both directions. */
void p2p_rlpx_codec_set_snappy(p2p_rlpx_codec_t *c, bool on);

/* The largest frame size (rlp(code) || payload as on the wire) the decoder
 * accepts from a header, with its current snappy setting: max_msg without
 * snappy; with snappy, rlp(code) of the longest form plus the worst-case
 * snappy encoding of a max_msg payload, at most P2P_RLPX_FRAME_MAX.  The
 * body is asked for (buffered) only after this check. */
size_t p2p_rlpx_frame_limit(const p2p_rlpx_codec_t *c);

/* Whether a message (absolute code, payload of len bytes) may be sent to a
 * receiver with limit max_msg: rlp(code) + len <= max_msg, and the frame the
 * encoder may produce (with snappy: rlp(code) + the worst-case compressed
 * length) fits the uint24 frame size.  Returns 0 or P2P_ETOOBIG. */
P2P_MUST_CHECK int p2p_rlpx_msg_check(size_t max_msg, bool snappy, uint64_t code, size_t len);

/* Bytes of output p2p_rlpx_frame_encode may need for a payload of len
 * bytes (with the codec's current snappy setting). */
size_t p2p_rlpx_frame_bound(const p2p_rlpx_codec_t *c, size_t len);

/* Wire size of a frame whose body (rlp(code) || payload) is fsize bytes. */
size_t p2p_rlpx_frame_wire_len(size_t fsize);

/* Encodes one message.  Out: the frame in out[0..*outlen).  Returns 0,
 * P2P_ETOOBIG (fsize would exceed 16 MiB - 1, or outcap too small),
 * P2P_ESTATE. */
P2P_MUST_CHECK int p2p_rlpx_frame_encode(p2p_rlpx_codec_t *c, uint8_t *out, size_t outcap,
                                         size_t *outlen, uint64_t code, const uint8_t *payload,
                                         size_t len);

/* Zero-copy encoding: the caller has written the body rlp(code) || payload
 * (already compressed if it should be) at buf + P2P_RLPX_HEADER_LEN,
 * fsize bytes.  Seals it in place (header, padding, encryption, MACs).
 * cap must be >= p2p_rlpx_frame_wire_len(fsize).  Out: *outlen.  Returns 0,
 * P2P_ETOOBIG or P2P_ESTATE. */
P2P_MUST_CHECK int p2p_rlpx_frame_seal(p2p_rlpx_codec_t *c, uint8_t *buf, size_t cap,
                                       size_t *outlen, size_t fsize);

/* Bytes the decoder needs next: 32 for a header, or the padded body plus
 * its MAC after a header was accepted (0 after a failure). */
size_t p2p_rlpx_dec_need(const p2p_rlpx_codec_t *c);

/* Processes buf[0..len), which must hold at least p2p_rlpx_dec_need(c)
 * bytes (only that many are used); decrypts in place.  scratch (may be
 * NULL when snappy is off) receives decompressed payloads.  Returns:
 *   0           a message is complete (*msg set);
 *   P2P_EMORE   len < need (nothing consumed), or a header was accepted and
 *               the body is needed next (need() gives its size);
 *   P2P_EBADMAC, P2P_ETOOBIG (frame or decoded size over the limits),
 *   P2P_EDECODE (bad code or snappy), P2P_ESTATE (codec failed earlier),
 *   P2P_EINVAL (snappy on and scratch NULL: the codec fails for good). */
P2P_MUST_CHECK int p2p_rlpx_dec_step(p2p_rlpx_codec_t *c, p2p_rlpx_msg_t *msg, uint8_t *buf,
                                     size_t len, uint8_t *scratch, size_t scratchcap);

/* Wipes keys and MAC states. */
void p2p_rlpx_codec_wipe(p2p_rlpx_codec_t *c);

#endif
