/*
 * tests/bench/bench_bounds.c: the crypto bounds of tools/bench.sh's
 * figures, measured in the calling run and printed as one JSON line:
 *   handshake_pair_us   secp256k1 work of one RLPx handshake, both sides
 *                       (4 public keys, 8 ECDH, 1 signature, 1 recovery),
 *                       as bench_server counts it; the churn bound is
 *                       ncpu / pair (load generator and node share the cores)
 *   handshake_recipient_us  the node's (recipient's) share: 2 public keys,
 *                       4 ECDH, 1 recovery
 *   pong_us             recover + sign: what one answered discv4 ping costs
 *                       the node (the load generator's pings are pre-signed)
 *   codec_msg_us        frame encode + decode (snappy) of one MSG-byte
 *                       message in one thread: the message throughput bound
 *                       is ncpu / codec_msg_us
 *   session_bytes       the RLPx session state of one peer (the codec): the
 *                       floor of per-peer memory
 * plus the primitive costs and ncpu.  Single-threaded; about a second.
 * Usage: bench_bounds [MSG bytes, default 64]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/keccak.h"
#include "tests/bench/bench_util.h"
#include "tests/tu.h"
#include "wire/rlpx_frame.h"

typedef struct codec_pair {
    p2p_rlpx_codec_t enc, dec;
    uint8_t *msg;
    size_t len;
    uint8_t frame[8192], scratch[8192];
    uint64_t i;
} codec_pair_t;

static void codec_once(void *arg)
{
    codec_pair_t *c = arg;
    memcpy(c->msg, &c->i, sizeof c->i < c->len ? sizeof c->i : c->len);
    c->i++;
    bench_codec_roundtrip(&c->enc, &c->dec, c->frame, sizeof c->frame, c->scratch,
                          sizeof c->scratch, c->msg, c->len);
}

static double codec_us(size_t len)
{
    codec_pair_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->len = len;
    c->msg = calloc(1, len);
    if (!c->msg) abort();
    for (size_t i = 0; i < len; i++) c->msg[i] = (uint8_t)(i * 7);
    bench_codec_pair(&c->enc, &c->dec, true);
    double t = bench_best(codec_once, c, 0.1, 3);
    free(c->msg);
    free(c);
    return t * 1e6;
}

int main(int argc, char **argv)
{
    bench_args(argc, argv, 1, "[MSG bytes, 1 to 4096, default 64]");
    size_t msg = (size_t)bench_arg_num(1, "MSG bytes", 1, 4096, true, 64);
    bench_costs_t c;
    bench_measure_costs(&c, 0.05);
    double pair_us = 4 * c.pubkey_us + 8 * c.ecdh_us + c.sign_us + c.recover_us;
    printf("{\"ncpu\":%ld,\"pubkey_us\":%.2f,\"ecdh_us\":%.2f,\"sign_us\":%.2f,\"recover_us\":%.2f,"
           "\"handshake_pair_us\":%.1f,\"handshake_recipient_us\":%.1f,\"pong_us\":%.2f,\"msg_"
           "bytes\":%zu,\"codec_msg_us\":%.3f,"
           "\"session_bytes\":%zu}\n",
           sysconf(_SC_NPROCESSORS_ONLN), c.pubkey_us, c.ecdh_us, c.sign_us, c.recover_us, pair_us,
           2 * c.pubkey_us + 4 * c.ecdh_us + c.recover_us, c.recover_us + c.sign_us, msg,
           codec_us(msg), sizeof(p2p_rlpx_codec_t));
    return 0;
}
