/*
 * tests/bench/bench_util.c: timing helpers and primitive costs (see
 * bench_util.h).  Keys and messages come from the OS RNG; every operation's
 * result is checked once so a broken primitive cannot produce a fast figure.
 */
#include "tests/bench/bench_util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/aes.h>
#include <nettle/ctr.h>

#include "crypto/ecies.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tests/tu.h"

static int b_argc;
static char **b_argv;
static const char *b_usage;

void bench_usage_fail(const char *fmt, ...)
{
    const char *prog = b_argv && b_argv[0] ? b_argv[0] : "bench";
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s %s\n", prog, b_usage ? b_usage : "");
    exit(2);
}

void bench_args(int argc, char **argv, int nmax, const char *usage)
{
    b_argc = argc;
    b_argv = argv;
    b_usage = usage;
    if (argc - 1 > nmax) bench_usage_fail("too many arguments (at most %d)", nmax);
}

double bench_arg_num(int i, const char *what, double min, double max, bool whole, double def)
{
    if (i >= b_argc) return def;
    const char *s = b_argv[i];
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !(v >= min && v <= max) || (whole && v != floor(v)))
        bench_usage_fail("%s must be a%s number from %g to %g, not '%s'", what,
                         whole ? " whole" : "", min, max, s);
    return v;
}

const char *bench_arg_word(int i, const char *what, const char *words, const char *def)
{
    if (i >= b_argc) return def;
    const char *s = b_argv[i];
    size_t n = strlen(s);
    for (const char *w = words; *w;) {
        size_t wl = strcspn(w, "|");
        if (wl == n && strncmp(w, s, n) == 0) return s;
        w += wl + (w[wl] == '|');
    }
    bench_usage_fail("%s must be one of %s, not '%s'", what, words, s);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_wall(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

double bench_cpu(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

double bench_per_op(void (*fn)(void *arg), void *arg, double min_s)
{
    fn(arg);
    for (unsigned long n = 1;; n *= 2) {
        double t0 = bench_cpu();
        for (unsigned long i = 0; i < n; i++) fn(arg);
        double dt = bench_cpu() - t0;
        if (dt >= min_s || n >= (1ul << 40)) return dt / (double)n;
    }
}

void bench_pair(double *ta, double *tb, void (*a)(void *), void *aarg, void (*b)(void *),
                void *barg, double min_s, int reps)
{
    *ta = *tb = 1e30;
    for (int i = 0; i < reps; i++) {
        double x = bench_per_op(a, aarg, min_s);
        double y = bench_per_op(b, barg, min_s);
        if (x < *ta) *ta = x;
        if (y < *tb) *tb = y;
    }
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_best(void (*fn)(void *arg), void *arg, double min_s, int reps)
{
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double x = bench_per_op(fn, arg, min_s);
        if (x < best) best = x;
    }
    return best;
}

static void must(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench: %s failed (%d)\n", what, rc);
        exit(1);
    }
}

typedef struct conc_thread {
    void (*fn)(void *arg);
    void *arg;
    double secs;
    pthread_barrier_t *start;
    uint64_t ops;
    double wall, cpu;
} conc_thread_t;

static void *conc_main(void *arg)
{
    conc_thread_t *t = arg;
    t->fn(t->arg); /* warm-up, not counted */
    pthread_barrier_wait(t->start);
    double w0 = bench_wall(), c0 = bench_cpu(), end = w0 + t->secs, w;
    uint64_t n = 0;
    do {
        t->fn(t->arg);
        n++;
    } while ((w = bench_wall()) < end);
    t->cpu = bench_cpu() - c0;
    t->wall = w - w0;
    t->ops = n;
    return NULL;
}

double bench_concurrent(void (*fn)(void *arg), void **args, unsigned nthreads, double secs,
                        double *cpu_per_op)
{
    if (nthreads == 0 || nthreads > BENCH_THREADS_MAX) must(-1, "bench_concurrent threads");
    conc_thread_t t[BENCH_THREADS_MAX];
    pthread_t th[BENCH_THREADS_MAX];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, nthreads);
    for (unsigned i = 0; i < nthreads; i++) {
        t[i] = (conc_thread_t){.fn = fn, .arg = args[i], .secs = secs, .start = &start};
        if (pthread_create(&th[i], NULL, conc_main, &t[i]) != 0) must(-1, "pthread_create");
    }
    double rate = 0, cpu = 0;
    uint64_t ops = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        rate += (double)t[i].ops / t[i].wall;
        cpu += t[i].cpu;
        ops += t[i].ops;
    }
    pthread_barrier_destroy(&start);
    if (cpu_per_op) *cpu_per_op = ops ? cpu / (double)ops : 0;
    return rate;
}

struct bench_pong_op {
    uint8_t priv[32], pub[64], hash[32], sig[65], out[64], mine[65];
};

bench_pong_op_t *bench_pong_op_new(void)
{
    bench_pong_op_t *s = calloc(1, sizeof *s);
    if (!s) must(-1, "out of memory");
    must(p2p_secp_keygen(s->priv), "keygen");
    must(p2p_secp_pubkey(s->pub, s->priv), "pubkey");
    must(p2p_random(s->hash, 32), "random");
    must(p2p_secp_sign(s->sig, s->hash, s->priv), "sign");
    must(p2p_secp_recover(s->out, s->sig, s->hash), "recover");
    if (memcmp(s->out, s->pub, 64) != 0) must(-1, "recover result");
    return s;
}

void bench_pong_op_free(bench_pong_op_t *s)
{
    free(s);
}

void bench_pong_op(void *arg)
{
    bench_pong_op_t *s = arg;
    /* recover the sender of the signature made by the previous call (over
     * the previous hash), then sign a new hash, as a node answering pings
     * from changing senders does */
    must(p2p_secp_recover(s->out, s->sig, s->hash), "recover");
    s->hash[0]++;
    must(p2p_secp_sign(s->mine, s->hash, s->priv), "sign");
    memcpy(s->sig, s->mine, 65);
}

#define BUF 65536

struct st {
    uint8_t priv[32], priv2[32], pub[64], pub2[64], hash[32], sig[65], out[64];
    uint8_t msg[300], ct[300 + P2P_ECIES_OVERHEAD], pt[300];
    uint8_t *buf;
    p2p_keccak_t k;
    struct aes256_ctx aes;
    uint8_t ctr[16];
};

static void op_pubkey(void *a)
{
    struct st *s = a;
    must(p2p_secp_pubkey(s->out, s->priv), "pubkey");
}
static void op_ecdh(void *a)
{
    struct st *s = a;
    must(p2p_secp_ecdh(s->out, s->pub2, s->priv), "ecdh");
}
static void op_sign(void *a)
{
    struct st *s = a;
    s->hash[0]++;
    must(p2p_secp_sign(s->sig, s->hash, s->priv), "sign");
}
static void op_recover(void *a)
{
    struct st *s = a;
    must(p2p_secp_recover(s->out, s->sig, s->hash), "recover");
}
static void op_verify(void *a)
{
    struct st *s = a;
    must(p2p_secp_verify(s->sig, s->hash, s->pub), "verify");
}
static void op_enc(void *a)
{
    struct st *s = a;
    must(p2p_ecies_encrypt(s->ct, sizeof s->ct, s->pub, s->msg, sizeof s->msg, NULL, 0),
         "ecies encrypt");
}
static void op_dec(void *a)
{
    struct st *s = a;
    size_t n;
    must(p2p_ecies_decrypt(s->pt, sizeof s->pt, &n, s->priv, s->ct, sizeof s->ct, NULL, 0),
         "ecies decrypt");
}
static void op_keccak(void *a)
{
    struct st *s = a;
    p2p_keccak_update(&s->k, s->buf, BUF);
}
static void op_aes(void *a)
{
    struct st *s = a;
    ctr_crypt(&s->aes, (nettle_cipher_func *)aes256_encrypt, AES_BLOCK_SIZE, s->ctr, BUF, s->buf,
              s->buf);
}

void bench_measure_costs(bench_costs_t *c, double min_s)
{
    struct st *s = calloc(1, sizeof *s);
    if (!s || !(s->buf = calloc(1, BUF))) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    must(p2p_secp_keygen(s->priv), "keygen");
    must(p2p_secp_keygen(s->priv2), "keygen");
    must(p2p_secp_pubkey(s->pub, s->priv), "pubkey");
    must(p2p_secp_pubkey(s->pub2, s->priv2), "pubkey");
    must(p2p_random(s->hash, 32), "random");
    must(p2p_random(s->msg, sizeof s->msg), "random");
    must(p2p_random(s->buf, BUF), "random");
    must(p2p_secp_sign(s->sig, s->hash, s->priv), "sign");
    must(p2p_secp_recover(s->out, s->sig, s->hash), "recover");
    if (memcmp(s->out, s->pub, 64) != 0) must(-1, "recover result");
    op_enc(s);
    op_dec(s);
    if (memcmp(s->pt, s->msg, sizeof s->msg) != 0) must(-1, "ecies round trip");

    c->pubkey_us = bench_best(op_pubkey, s, min_s, 3) * 1e6;
    c->ecdh_us = bench_best(op_ecdh, s, min_s, 3) * 1e6;
    c->sign_us = bench_best(op_sign, s, min_s, 3) * 1e6;
    /* recover and verify use the signature over the hash left by op_sign. */
    c->recover_us = bench_best(op_recover, s, min_s, 3) * 1e6;
    if (memcmp(s->out, s->pub, 64) != 0) must(-1, "recover result");
    c->verify_us = bench_best(op_verify, s, min_s, 3) * 1e6;
    c->ecies_enc_us = bench_best(op_enc, s, min_s, 3) * 1e6;
    c->ecies_dec_us = bench_best(op_dec, s, min_s, 3) * 1e6;
    p2p_keccak_init(&s->k);
    c->keccak_mbps = BUF / bench_best(op_keccak, s, min_s, 3) / 1e6;
    aes256_set_encrypt_key(&s->aes, s->priv);
    c->aes256ctr_mbps = BUF / bench_best(op_aes, s, min_s, 3) / 1e6;

    free(s->buf);
    free(s);
}

void bench_print_costs(const bench_costs_t *c)
{
    printf("%-34s %12s\n", "primitive (CPU time)", "cost");
    printf("%-34s %9.1f us\n", "secp256k1 public key", c->pubkey_us);
    printf("%-34s %9.1f us\n", "secp256k1 ECDH (raw x)", c->ecdh_us);
    printf("%-34s %9.1f us\n", "secp256k1 recoverable sign", c->sign_us);
    printf("%-34s %9.1f us\n", "secp256k1 recover", c->recover_us);
    printf("%-34s %9.1f us\n", "secp256k1 verify (64-byte)", c->verify_us);
    printf("%-34s %9.1f us\n", "ECIES encrypt (300 B)", c->ecies_enc_us);
    printf("%-34s %9.1f us\n", "ECIES decrypt (300 B)", c->ecies_dec_us);
    printf("%-34s %9.0f MB/s\n", "Keccak-256 absorb (64 KiB)", c->keccak_mbps);
    printf("%-34s %9.0f MB/s\n", "AES-256-CTR (Nettle, 64 KiB)", c->aes256ctr_mbps);
}

void bench_codec_pair(p2p_rlpx_codec_t *enc, p2p_rlpx_codec_t *dec, bool snappy)
{
    p2p_rlpx_secrets_t s1, s2;
    memset(&s1, 0, sizeof s1);
    tu_rand_bytes(s1.aes, 32);
    tu_rand_bytes(s1.mac, 32);
    p2p_keccak_init(&s1.egress_mac);
    p2p_keccak_init(&s1.ingress_mac);
    p2p_keccak_update(&s1.egress_mac, (const uint8_t *)"e", 1);
    p2p_keccak_update(&s1.ingress_mac, (const uint8_t *)"i", 1);
    s2 = s1;
    s2.egress_mac = s1.ingress_mac;
    s2.ingress_mac = s1.egress_mac;
    if (p2p_rlpx_codec_init(enc, &s1, P2P_RLPX_FRAME_MAX) ||
        p2p_rlpx_codec_init(dec, &s2, P2P_RLPX_FRAME_MAX))
        abort();
    /* dec must read what enc writes: same keys, enc's egress = dec's ingress */
    dec->ingress = enc->egress;
    p2p_rlpx_codec_set_snappy(enc, snappy);
    p2p_rlpx_codec_set_snappy(dec, snappy);
}

void bench_codec_roundtrip(p2p_rlpx_codec_t *enc, p2p_rlpx_codec_t *dec, uint8_t *frame,
                           size_t framecap, uint8_t *scratch, size_t scratchcap, const uint8_t *msg,
                           size_t len)
{
    size_t n;
    if (p2p_rlpx_frame_encode(enc, frame, framecap, &n, 16, msg, len)) abort();
    size_t off = 0;
    p2p_rlpx_msg_t m;
    for (;;) {
        size_t need = p2p_rlpx_dec_need(dec);
        int rc = p2p_rlpx_dec_step(dec, &m, frame + off, need, scratch, scratchcap);
        off += need;
        if (rc == 0) break;
        if (rc != P2P_EMORE) abort();
    }
}
