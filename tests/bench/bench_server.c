/*
 * tests/bench/bench_server.c: the server's figures next to their bounds,
 * all measured in this run on loopback:
 *   1. inbound RLPx handshakes + Hello per second: client threads built
 *      on the project's wire code (tests/actors/rawpeer.h) connect, run the
 *      handshake, exchange Hellos and close; the server counts admitted
 *      peers.  Four clients per core (at most 16): a client spends about
 *      half of each handshake waiting for the server's answers and the
 *      server's threads wait for each other, so with one client per core
 *      the cores were idle 13-19% of the time (the CPU per handshake
 *      stayed, the wall-clock rate fell with it; "cores busy" shows it).
 *      Bound: the secp256k1 operations of one handshake pair (both sides:
 *      3 public keys, 8 ECDH, 1 signature, 1 recovery) at their measured
 *      cost, on the machine's cores, measured right before and right after
 *      the load and averaged (the cost drifts by 10-30% within seconds on
 *      this shared virtual machine; bracketing the load puts the bound
 *      under the load's conditions).  Baseline: the same clients against
 *      an @ethereumjs/devp2p server (tests/interop/bench-target.mjs) when
 *      node and node_modules are there.
 *   2. one connection's throughput of 1 KiB subprotocol messages with
 *      snappy (server A -> server B, counted in B's callback), next to the
 *      frame codec's single-thread ceiling (encode + decode of the same
 *      messages with snappy, no sockets).
 *   The handshake figure is the median of several rounds (default 5), each
 *   a load phase with the bound measured right before and right after it:
 *   on this shared 2-vCPU guest one 3 s phase moved between 0.61 and 0.74
 *   of its bound from run to run; the median of the rounds' ratios, with
 *   their range, is the figure, as the mailbox benchmark's median of pairs.
 * Usage: bench_server [seconds per load phase, default 3] [hs|all, default
 * all] [rounds, default 5]
 * ("hs": only the handshake figures, without ethereumjs or throughput; for
 * profiling)
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "crypto/util.h"
#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"
#include "actors/server_int.h"
#include "tests/bench/bench_util.h"

static double secs = 3.0;
static int nclients = 8; /* 4 per core (at most 16), set in main */

/* CPU seconds of the whole process (all threads: clients and servers). */
static double proc_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- 1. handshakes ---- */

/* The secp256k1 operations of one handshake pair, both sides: 3 public
 * keys (the 2 ECIES ephemeral keys and the recipient's ephemeral key; the
 * initiator's is recovered, both static public keys are known), 8 ECDH
 * (per side: ECIES, static token, ephemeral secret, the other packet's
 * ECIES), 1 recoverable signature, 1 recovery.  Each is timed alone in a
 * loop (best of 3); results are checked.  The load runs exactly these and
 * no other expensive ones; to see it, count calls per thread with uprobes
 * (root):
 *   for f in ecdh ec_pubkey_create ecdsa_sign_recoverable ecdsa_recover; do
 *     perf probe -q -x /lib/x86_64-linux-gnu/libsecp256k1.so.1 secp256k1_$f; done
 *   perf record -e 'probe_libsecp256k1:*' build/tests/bench/bench_server 1 hs 1
 *   perf script -F comm,event |
 *     awk '$1 ~ /^peer-/ {$1 = "peer-*"} {print $1, $2}' | sort | uniq -c
 * Per admitted handshake the client threads (bench-client) make 4 ECDH, 1
 * public key (and 64 more each at their start) and 1 signature, the
 * server's (conn-in, then peer-<id>) 4 ECDH, 2 public keys and 1 recovery;
 * the main thread's calls are this timing loop's. */
typedef struct secp_st {
    uint8_t priv[32], priv2[32], pub[64], pub2[64], hash[32], sig[65], out[64];
} secp_st_t;

static void must_ok(int rc)
{
    if (rc) {
        fprintf(stderr, "bench: secp256k1 operation failed (%d)\n", rc);
        abort();
    }
}

static void op_pubkey(void *a)
{
    secp_st_t *s = a;
    must_ok(p2p_secp_pubkey(s->out, s->priv));
}

static void op_ecdh(void *a)
{
    secp_st_t *s = a;
    must_ok(p2p_secp_ecdh(s->out, s->pub2, s->priv));
}

static void op_sign(void *a)
{
    secp_st_t *s = a;
    s->hash[0]++;
    must_ok(p2p_secp_sign(s->sig, s->hash, s->priv));
}

static void op_recover(void *a)
{
    secp_st_t *s = a;
    must_ok(p2p_secp_recover(s->out, s->sig, s->hash));
}

typedef struct pair_job {
    pthread_barrier_t *start; /* all ncpu threads time together */
    double us;                /* one pair's operations */
} pair_job_t;

static void *pair_thread(void *arg)
{
    pair_job_t *j = arg;
    secp_st_t s;
    su_key(s.priv);
    su_key(s.priv2);
    su_key(s.hash);
    must_ok(p2p_secp_pubkey(s.pub, s.priv));
    must_ok(p2p_secp_pubkey(s.pub2, s.priv2));
    pthread_barrier_wait(j->start);
    double pk = bench_best(op_pubkey, &s, 0.05, 3), dh = bench_best(op_ecdh, &s, 0.05, 3),
           sg = bench_best(op_sign, &s, 0.05, 3), rc = bench_best(op_recover, &s, 0.05, 3);
    if (memcmp(s.out, s.pub, 64) != 0) must_ok(-1);
    j->us = (3 * pk + 8 * dh + sg + rc) * 1e6;
    return NULL;
}

/* CPU microseconds of one pair's operations, the mean over ncpu threads
 * timing them at the same time (clients and server keep every core busy
 * during the load, and a core may run secp256k1 slower while its
 * neighbours do too). */
static double pair_cost(int ncpu)
{
    pair_job_t jobs[64];
    pthread_t th[64];
    if (ncpu > 64) ncpu = 64;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, (unsigned)ncpu);
    for (int i = 0; i < ncpu; i++) {
        jobs[i] = (pair_job_t){.start = &b};
        if (pthread_create(&th[i], NULL, pair_thread, &jobs[i])) abort();
    }
    double sum = 0;
    for (int i = 0; i < ncpu; i++) {
        pthread_join(th[i], NULL);
        sum += jobs[i].us;
    }
    pthread_barrier_destroy(&b);
    return sum / ncpu;
}

#define NKEYS 64

typedef struct load {
    uint16_t port;
    uint8_t pub[64];
    double until;
    _Atomic uint64_t done, fail;
} load_t;

static void *client(void *arg)
{
    load_t *l = arg;
    pthread_setname_np(pthread_self(), "bench-client");
    uint8_t keys[NKEYS][32], pubs[NKEYS][64];
    for (int i = 0; i < NKEYS; i++) {
        su_key(keys[i]);
        if (p2p_secp_pubkey(pubs[i], keys[i])) abort();
    }
    static const char *const caps[] = {"snap"};
    static const uint32_t vers[] = {1};
    for (unsigned i = 0; bench_wall() < l->until; i++) {
        rawpeer_t rp;
        bool ok = rp_connect(&rp, l->port) == 0 &&
                  rp_handshake_keyed(&rp, keys[i % NKEYS], pubs[i % NKEYS], l->pub, 5000) == 0 &&
                  rp_send_hello(&rp, rp.pub, caps, vers, 1) == 0;
        uint64_t code = 99;
        const uint8_t *p;
        size_t n;
        ok = ok && rp_recv(&rp, &code, &p, &n, 5000) == 0 && code == P2P_MSG_HELLO;
        rp_close(&rp);
        atomic_fetch_add(ok ? &l->done : &l->fail, 1);
    }
    return NULL;
}

/* Runs nclients clients against port for secs; returns completions per
 * second seen by the clients. */
static double run_load(uint16_t port, const uint8_t pub[64], uint64_t *fails)
{
    load_t l = {.port = port};
    memcpy(l.pub, pub, 64);
    double t0 = bench_wall();
    l.until = t0 + secs;
    pthread_t th[16];
    for (int i = 0; i < nclients; i++)
        if (pthread_create(&th[i], NULL, client, &l)) abort();
    for (int i = 0; i < nclients; i++) pthread_join(th[i], NULL);
    double el = bench_wall() - t0;
    *fails = atomic_load(&l.fail);
    return (double)atomic_load(&l.done) / el;
}

/* One round of the handshake load against a running server: the clients'
 * completions per second, and the process CPU (clients and server) per
 * handshake pair the server admitted. */
typedef struct hs_round {
    double rate, cpu_us, busy, admitted_rate;
    uint64_t fails;
} hs_round_t;

static void ours_round(p2p_server_t *s, const p2p_node_t *n, hs_round_t *r)
{
    p2p_server_stats_t st0, st;
    p2p_server_get_stats(s, &st0);
    double t0 = bench_wall(), c0 = proc_cpu();
    r->rate = run_load(n->ep.tcp, n->pubkey, &r->fails);
    double el = bench_wall() - t0;
    su_wait_peers(s, 0, 5000);
    p2p_server_get_stats(s, &st);
    double cpu = proc_cpu() - c0;
    uint64_t added = st.peers_added - st0.peers_added;
    r->cpu_us = added ? cpu * 1e6 / (double)added : 0;
    r->busy = cpu / el;
    r->admitted_rate = (double)added / el;
}

#define ROUNDS_MAX 21

/* The handshake figures: `rounds` load phases against one server, the
 * bound measured before the first and after every phase (each phase is
 * set against the mean of the measurements around it).  Prints every
 * round and the medians; returns the median handshakes per second. */
static double ours_handshakes(int rounds, long ncpu)
{
    static const p2p_protocol_t snap = {"snap", 1, 8, NULL, NULL, NULL, NULL};
    p2p_server_config_t cs;
    su_config(&cs, &snap, 1);
    cs.max_peers = 1000;
    p2p_server_t *s = NULL;
    if (p2p_server_start(&s, &cs)) return 0;
    p2p_node_t n = su_node(s);
    double all_prev = pair_cost((int)ncpu);
    printf("inbound handshakes+Hello on loopback (%ld cores, %d client threads and the server "
           "share them), %d rounds of %.1f s\n",
           ncpu, nclients, rounds, secs);
    printf("  bound: the secp256k1 ops of one handshake pair (3 public keys, 8 ECDH, 1 signature, "
           "1 recovery) timed on all %ld cores at once, before and after each round\n",
           ncpu);
    double wall[ROUNDS_MAX], cpu[ROUNDS_MAX], rate[ROUNDS_MAX], cpu_us[ROUNDS_MAX],
        bound_us[ROUNDS_MAX];
    uint64_t fails = 0;
    for (int i = 0; i < rounds; i++) {
        hs_round_t r;
        ours_round(s, &n, &r);
        double all = pair_cost((int)ncpu);
        bound_us[i] = (all_prev + all) / 2;
        all_prev = all;
        double bound = (double)ncpu * 1e6 / bound_us[i];
        rate[i] = r.rate;
        cpu_us[i] = r.cpu_us;
        wall[i] = r.rate / bound;
        cpu[i] = r.cpu_us > 0 ? bound_us[i] / r.cpu_us : 0;
        fails += r.fails;
        printf("  round %d: %6.0f handshakes+Hello/s (clients), %6.0f/s admitted, %llu client "
               "failures, %.0f us of CPU per pair (clients + server, %.2f cores busy); bound %.0f "
               "us per pair -> %.0f/s; ratio %.3f by wall clock, %.3f by CPU\n",
               i + 1, r.rate, r.admitted_rate, (unsigned long long)r.fails, r.cpu_us, r.busy,
               bound_us[i], bound, wall[i], cpu[i]);
    }
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    printf("  server:      %llu connection threads created, %llu connections run by a parked "
           "thread\n",
           (unsigned long long)st.conn_threads_spawned, (unsigned long long)st.conn_threads_reused);
    p2p_server_stop(s);
    double mrate = bench_median(rate, rounds), mcpu_us = bench_median(cpu_us, rounds),
           mbound = bench_median(bound_us, rounds), mwall = bench_median(wall, rounds),
           mcpu = bench_median(cpu, rounds);
    printf("  ours:        %8.0f handshakes+Hello/s (median of rounds, %.0f-%.0f), %.0f us of CPU "
           "per pair (%.0f-%.0f), %llu client failures\n",
           mrate, rate[0], rate[rounds - 1], mcpu_us, cpu_us[0], cpu_us[rounds - 1],
           (unsigned long long)fails);
    printf("  secp256k1 bound: %.0f us per handshake pair (median, %.0f-%.0f) -> %.0f/s on %ld "
           "cores\n",
           mbound, bound_us[0], bound_us[rounds - 1], (double)ncpu * 1e6 / mbound, ncpu);
    printf("  ratio ours/bound = %.3f by wall clock (median of %d rounds, %.3f-%.3f; machine load "
           "included), %.3f by CPU time (%.3f-%.3f)\n",
           mwall, rounds, wall[0], wall[rounds - 1], mcpu, cpu[0], cpu[rounds - 1]);
    printf("target: handshakes >= 0.70 of the secp256k1 bound (median by wall clock): %s (%.3f)\n",
           mwall >= 0.70 ? "met" : "NOT met", mwall);
    return fails == 0 ? mrate : 0;
}

/* ethereumjs bench-target.mjs: start, read port and id, load, SIGTERM,
 * read the summary.  Returns its handshakes per second or 0. */
static double ejs_handshakes(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && test -d node_modules/@ethereumjs/devp2p && exec node bench-target.mjs "
             "--mode rlpx --caps snap/1 --duration 120 --interval 1 2>/dev/null",
             P2P_INTEROP_DIR);
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char line[4096];
    int port = 0, pid = 0;
    uint8_t pub[64];
    bool have = false;
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "\"ev\":\"listening\"");
        if (!p) continue;
        char *q = strstr(line, "\"tcpPort\":"), *r = strstr(line, "\"id\":\""),
             *s = strstr(line, "\"pid\":");
        if (q && r && s && p2p_hex_decode(pub, 64, r + 6, 128) == 64) {
            port = atoi(q + 10);
            pid = atoi(s + 6);
            have = port > 0 && pid > 0;
        }
        break;
    }
    double rate = 0;
    if (have) {
        uint64_t fails;
        double crate = run_load((uint16_t)port, pub, &fails);
        kill(pid, SIGTERM);
        while (fgets(line, sizeof line, f)) {
            char *q = strstr(line, "\"handshakes_per_s\":");
            if (strstr(line, "\"ev\":\"summary\"") && q) rate = atof(q + 19);
        }
        printf("  ethereumjs:  %8.0f handshakes+Hello/s (clients), %8.1f/s by its own count, "
               "%llu client failures\n",
               crate, rate, (unsigned long long)fails);
        rate = crate;
    } else {
        printf("  ethereumjs:  not run (node or tests/interop/node_modules missing)\n");
    }
    pclose(f);
    return rate;
}

/* ---- 2. throughput ---- */

typedef struct sink {
    _Atomic uint64_t msgs, bytes;
} sink_t;

static int sink_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                    size_t len)
{
    sink_t *s = ctx;
    atomic_fetch_add_explicit(&s->msgs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, len, memory_order_relaxed);
    return 0;
}

static void fill_msg(uint8_t *m, size_t n, uint64_t i)
{
    /* half random, half repetitive: snappy has work to do both ways */
    for (size_t k = 0; k < n; k++)
        m[k] = k < n / 2 ? (uint8_t)((i * 2654435761u) >> (k % 24)) : (uint8_t)(k / 32);
    memcpy(m, &i, sizeof i);
}

static double cpu_mbps; /* payload per CPU second of the whole process */
static bool stalled;    /* not every accepted message arrived */

static double throughput(void)
{
    sink_t sk = {0};
    p2p_protocol_t pb = {"bulk", 1, 1, &sk, NULL, sink_msg, NULL};
    p2p_protocol_t pa = {"bulk", 1, 1, NULL, NULL, NULL, NULL};
    p2p_server_config_t cb, ca;
    su_config(&cb, &pb, 1);
    p2p_server_t *b = NULL, *a = NULL;
    if (p2p_server_start(&b, &cb)) return 0;
    p2p_node_t nb = su_node(b);
    su_config(&ca, &pa, 1);
    ca.static_nodes = &nb;
    ca.nstatic = 1;
    if (p2p_server_start(&a, &ca)) return 0;
    su_wait_peers(a, 1, 5000);
    p2p_peer_t *peer = NULL;
    double mbps = 0;
    if (p2p_server_peer_get(a, &peer, nb.id) == 0) {
        uint8_t m[1024];
        uint64_t sent = 0;
        double t0 = bench_wall(), until = t0 + secs, c0 = proc_cpu();
        while (bench_wall() < until) {
            fill_msg(m, sizeof m, sent);
            int rc = p2p_peer_send(peer, "bulk", 0, m, sizeof m);
            if (rc == P2P_EFULL) {
                sched_yield();
                continue;
            }
            if (rc) break;
            sent++;
        }
        while (atomic_load(&sk.msgs) < sent && bench_wall() < until + 10) usleep(1000);
        double el = bench_wall() - t0, cpu = proc_cpu() - c0;
        mbps = (double)atomic_load(&sk.bytes) / el / 1e6;
        cpu_mbps = (double)atomic_load(&sk.bytes) / cpu / 1e6;
        if (atomic_load(&sk.msgs) != sent) {
            p2p_server_stats_t sa, sb;
            p2p_server_get_stats(a, &sa);
            p2p_server_get_stats(b, &sb);
            printf("  LOST: sent %llu, A out %llu bytes %llu, B in %llu bytes %llu, A depth %u\n",
                   (unsigned long long)sent, (unsigned long long)sa.msgs_out,
                   (unsigned long long)sa.bytes_out, (unsigned long long)sb.msgs_in,
                   (unsigned long long)sb.bytes_in, p2p_mailbox_depth(peer->out));
            printf("  A: frame %llu net %llu proto %llu wto %llu rto %llu; B: frame %llu net %llu "
                   "proto %llu\n",
                   (unsigned long long)sa.frame_errors, (unsigned long long)sa.net_errors,
                   (unsigned long long)sa.proto_errors, (unsigned long long)sa.write_timeouts,
                   (unsigned long long)sa.read_timeouts, (unsigned long long)sb.frame_errors,
                   (unsigned long long)sb.net_errors, (unsigned long long)sb.proto_errors);
            for (int r = 0; r < 256; r++)
                if (sa.disc_sent[r] || sa.disc_recv[r] || sb.disc_sent[r] || sb.disc_recv[r])
                    printf("  reason %d: A sent %llu recv %llu, B sent %llu recv %llu\n", r,
                           (unsigned long long)sa.disc_sent[r], (unsigned long long)sa.disc_recv[r],
                           (unsigned long long)sb.disc_sent[r],
                           (unsigned long long)sb.disc_recv[r]);
            stalled = true;
        }
        printf("  one connection: %llu x 1 KiB in %.2f s = %.1f MB/s of payload (%.0f msg/s)\n",
               (unsigned long long)atomic_load(&sk.msgs), el, mbps,
               (double)atomic_load(&sk.msgs) / el);
        printf("  per CPU second of the process (sender, both peer threads, receiver): %.1f MB/s\n",
               cpu_mbps);
        p2p_peer_unref(peer);
    }
    p2p_server_stop(a);
    p2p_server_stop(b);
    return mbps;
}

typedef struct codec_pair {
    p2p_rlpx_codec_t enc, dec;
    uint8_t msg[1024], frame[4096], scratch[4096];
    uint64_t i;
} codec_pair_t;

static void codec_once(void *arg)
{
    codec_pair_t *c = arg;
    fill_msg(c->msg, sizeof c->msg, c->i++);
    bench_codec_roundtrip(&c->enc, &c->dec, c->frame, sizeof c->frame, c->scratch,
                          sizeof c->scratch, c->msg, sizeof c->msg);
}

static double codec_ceiling(void)
{
    codec_pair_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    bench_codec_pair(&c->enc, &c->dec, true);
    double t = bench_best(codec_once, c, 0.3, 3);
    free(c);
    double mbps = 1024.0 / t / 1e6;
    printf("  frame codec ceiling (encode+decode, snappy, one thread): %.1f MB/s (%.0f msg/s)\n",
           mbps, 1.0 / t);
    return mbps;
}

int main(int argc, char **argv)
{
    bench_args(argc, argv, 3, "[seconds per load phase, default 3] [hs|all] [rounds, default 5]");
    secs = bench_arg_num(1, "seconds per load phase", 0.1, 600, false, 3);
    bool only_hs = strcmp(bench_arg_word(2, "the second argument", "hs|all", "all"), "hs") == 0;
    int rounds = (int)bench_arg_num(3, "rounds", 1, ROUNDS_MAX, true, 5);
    p2p_log_set_level(P2P_LOG_WARN);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    nclients = ncpu > 4 ? 16 : 4 * (int)ncpu;
    double ours = ours_handshakes(rounds, ncpu);
    double ejs = only_hs ? 0 : ejs_handshakes();
    if (ejs > 0) printf("  ours/ethereumjs = %.1fx\n", ours / ejs);
    if (only_hs) return ours > 0 ? 0 : 1;
    printf("\nsingle-connection throughput, 1 KiB messages with snappy\n");
    double ceil = codec_ceiling();
    double tp = throughput();
    printf("  ratio connection/codec ceiling = %.2f by wall clock, %.2f by CPU time\n",
           ceil > 0 ? tp / ceil : 0, ceil > 0 ? cpu_mbps / ceil : 0);
    return ours > 0 && tp > 0 && !stalled ? 0 : 1;
}
