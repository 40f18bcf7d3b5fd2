/*
 * tests/bench/bench_util.h: timing helpers for the benchmarks and the
 * measured cost of the crypto primitives ("bounds" other benchmarks compare
 * against: a handshake costs so many ECDHs and signatures, a frame costs
 * AES-256-CTR plus Keccak over its bytes).
 *
 * Times are thread CPU time (CLOCK_THREAD_CPUTIME_ID), which is steadier
 * than wall time on a machine shared with other work; use bench_wall for
 * multi-threaded throughput.  Single-threaded; call from one thread.
 */
#ifndef P2P_TESTS_BENCH_UTIL_H
#define P2P_TESTS_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/rlpx_frame.h"

/* Command-line arguments.  bench_args names the program and its usage
 * line ("[seconds [hs]]"); the others read argv[i] of those argc/argv.
 * bench_arg_num: argv[i] as a number in [min, max] (a whole number when
 * whole), or def when there is no argv[i].  bench_arg_word: argv[i] when
 * it is one of the words in `words` (separated by '|'), or def when there
 * is no argv[i].  Anything else, or more arguments than nmax, ends the program
 * through bench_usage_fail: "PROG: <message>" and "usage: PROG <usage>"
 * on stderr, exit status 2, so a mistyped argument never runs a
 * benchmark other than the one asked for. */
void bench_args(int argc, char **argv, int nmax, const char *usage);
double bench_arg_num(int i, const char *what, double min, double max, bool whole, double def);
const char *bench_arg_word(int i, const char *what, const char *words, const char *def);
void bench_usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Sorts v[0..n) ascending (n >= 1) and returns its median: afterwards
 * v[0] and v[n - 1] are the minimum and the maximum. */
double bench_median(double *v, int n);

/* Monotonic wall-clock seconds and this thread's CPU seconds. */
double bench_wall(void);
double bench_cpu(void);

/* Calls fn(arg) once to warm up, then in doubling batches until one batch
 * takes at least min_s CPU seconds.  Returns CPU seconds per call. */
double bench_per_op(void (*fn)(void *arg), void *arg, double min_s);

/* Measures a and b alternately, reps rounds of bench_per_op each, and
 * stores the fastest CPU seconds per call of each in *ta and *tb: the
 * interleaving and the minimum damp the noise of a shared machine when
 * comparing a figure with its ceiling. */
void bench_pair(double *ta, double *tb, void (*a)(void *), void *aarg, void (*b)(void *),
                void *barg, double min_s, int reps);

/* As bench_pair for one function: the fastest of reps rounds. */
double bench_best(void (*fn)(void *arg), void *arg, double min_s, int reps);

/* Runs fn(args[i]) in a loop in each of nthreads threads at once (thread i
 * gets args[i]), all released together, for secs wall seconds.  Returns the
 * calls per wall second of all threads together: what the machine's cores
 * achieve when all of them run fn, which is less than nthreads / (the
 * single-thread cost) when running together slows each (shared caches,
 * frequency, hypervisor, other work on the machine).  *cpu_per_op (if not
 * NULL) gets the threads' CPU seconds per call.  Aborts if a thread cannot
 * be started.  At most BENCH_THREADS_MAX threads. */
#define BENCH_THREADS_MAX 16
double bench_concurrent(void (*fn)(void *arg), void **args, unsigned nthreads, double secs,
                        double *cpu_per_op);

/* Recover + sign: one signature recovery and one recoverable signature
 * over a fresh hash per call, what an answered discv4 ping costs the node.
 * bench_pong_op_new makes one state per thread (own key and signature). */
typedef struct bench_pong_op bench_pong_op_t;
bench_pong_op_t *bench_pong_op_new(void);
void bench_pong_op_free(bench_pong_op_t *s);
void bench_pong_op(void *s);

/* Costs of the primitives, measured in this process. */
typedef struct bench_costs {
    double pubkey_us;      /* p2p_secp_pubkey */
    double ecdh_us;        /* p2p_secp_ecdh */
    double sign_us;        /* p2p_secp_sign (recoverable) */
    double recover_us;     /* p2p_secp_recover */
    double verify_us;      /* p2p_secp_verify */
    double ecies_enc_us;   /* p2p_ecies_encrypt, 300-byte message */
    double ecies_dec_us;   /* p2p_ecies_decrypt, 300-byte message */
    double keccak_mbps;    /* p2p_keccak_update over a 64 KiB buffer, MB/s */
    double aes256ctr_mbps; /* Nettle AES-256-CTR over a 64 KiB buffer, MB/s */
} bench_costs_t;

/* Measures every field, each the fastest of 3 rounds (about 27 * min_s
 * CPU seconds; 0.1 is plenty). */
void bench_measure_costs(bench_costs_t *c, double min_s);

/* Prints the costs as a table to stdout. */
void bench_print_costs(const bench_costs_t *c);

/* Two frame codecs facing each other (random AES and MAC secrets, enc's
 * egress = dec's ingress, frame cap P2P_RLPX_FRAME_MAX), snappy on or off
 * in both: the frame-codec ceiling of the benchmarks.  Aborts on failure. */
void bench_codec_pair(p2p_rlpx_codec_t *enc, p2p_rlpx_codec_t *dec, bool snappy);

/* Encodes msg[0..len) as one frame (code 16) with enc into frame and
 * decodes it with dec through scratch, as a reader does, need by need.
 * Aborts on failure. */
void bench_codec_roundtrip(p2p_rlpx_codec_t *enc, p2p_rlpx_codec_t *dec, uint8_t *frame,
                           size_t framecap, uint8_t *scratch, size_t scratchcap, const uint8_t *msg,
                           size_t len);

#endif
