/*
 * tests/bench/bench_discv4.c: discovery v4 pong throughput.
 *
 * Floods a running discovery instance on loopback with pre-signed pings
 * (valid, unexpired, from many keys, cycled) in a closed loop (at most
 * WINDOW pings outstanding, so the kernel drops nothing) and counts the
 * pongs that come back.  Each answered ping costs the instance one
 * signature recovery (p2p-udp) and one signature (p2p-disc, the pong), so
 * the bound is 1 / (recover + sign) per core, measured in this run
 * (bench_measure_costs), and twice that for both cores.  Also printed: the
 * CPU the instance's threads spent per pong (from /proc: independent of
 * what else runs on the machine) against recover + sign.  Runs with one
 * and with two reader threads.
 *
 * Then, if node and tests/interop/node_modules are present, the same flood
 * against an @ethereumjs/devp2p DPT (tests/interop/bench-target.mjs --mode
 * dpt) for the ratio.
 *
 * Usage: bench_discv4 [seconds per run, default 4]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/discovery.h"
#include "crypto/secp.h"
#include "tests/bench/bench_util.h"
#include "tests/tu.h"

#define NKEYS 64
#define NPINGS 8192
#define WINDOW 256
#define BATCH 32

static uint8_t pings[NPINGS][P2P_DISCV4_MAX_SIZE];
static size_t plen[NPINGS];
static uint8_t keys[NKEYS][32];

/* Pre-signs NPINGS pings to port from NKEYS keys, expiring in 10 minutes. */
static void make_pings(uint16_t port, uint16_t from_port)
{
    for (int k = 0; k < NKEYS; k++) do
            tu_rand_bytes(keys[k], 32);
        while (p2p_secp_privkey_check(keys[k]) != 0);
    uint64_t exp = p2p_wall_ms() / 1000 + 600;
    for (int i = 0; i < NPINGS; i++) {
        p2p_discv4_packet_t p;
        memset(&p, 0, sizeof p);
        p.type = P2P_DISCV4_PING;
        p.expiration = exp + (uint64_t)(i / NKEYS);
        p.u.ping.version = 4;
        p.u.ping.from.ip = p2p_ip4(127, 0, 0, 1);
        p.u.ping.from.udp = p.u.ping.from.tcp = from_port;
        p.u.ping.to.ip = p2p_ip4(127, 0, 0, 1);
        p.u.ping.to.udp = port;
        if (p2p_discv4_encode(pings[i], &plen[i], NULL, &p, keys[i % NKEYS]) != 0) abort();
    }
}

/* CPU seconds of this process' threads whose name starts with prefix. */
static double threads_cpu(const char *prefix)
{
    double s = 0;
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return 0;
    struct dirent *e;
    long hz = sysconf(_SC_CLK_TCK);
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *l = strchr(buf, '('), *r = strrchr(buf, ')');
        if (!l || !r || strncmp(l + 1, prefix, strlen(prefix)) != 0) continue;
        unsigned long ut = 0, st = 0;
        /* fields after ')': state(3) ... utime(14) stime(15) */
        if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            s += (double)(ut + st) / (double)hz;
    }
    closedir(dir);
    return s;
}

typedef struct flood_result {
    double pongs_per_s;
    uint64_t pongs, sent, stalls;
} flood_result_t;

/* Closed-loop flood of 127.0.0.1:port for secs seconds (after 0.5 s of
 * warm-up) from socket fd. */
static flood_result_t flood(int fd, uint16_t port, double secs)
{
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, port);
    static struct mmsghdr tx[BATCH], rx[BATCH];
    static struct iovec txv[BATCH], rxv[BATCH];
    static uint8_t rbuf[BATCH][1500];
    for (int i = 0; i < BATCH; i++) {
        rxv[i].iov_base = rbuf[i];
        rxv[i].iov_len = sizeof rbuf[i];
    }
    flood_result_t res = {0};
    uint64_t sent = 0, pongs = 0, outstanding = 0, next = 0, m_pongs = 0;
    double t0 = bench_wall(), tstart = t0 + 0.5, tend = tstart + secs, last_rx = t0;
    bool measuring = false;
    for (;;) {
        double t = bench_wall();
        if (!measuring && t >= tstart) {
            measuring = true;
            m_pongs = pongs;
        }
        if (t >= tend) break;
        unsigned n = 0;
        while (outstanding + n < WINDOW && n < BATCH) {
            size_t i = next++ % NPINGS;
            memset(&tx[n], 0, sizeof tx[n]);
            txv[n].iov_base = pings[i];
            txv[n].iov_len = plen[i];
            tx[n].msg_hdr.msg_iov = &txv[n];
            tx[n].msg_hdr.msg_iovlen = 1;
            tx[n].msg_hdr.msg_name = &ss;
            tx[n].msg_hdr.msg_namelen = sl;
            n++;
        }
        if (n) {
            int k = sendmmsg(fd, tx, n, MSG_DONTWAIT);
            if (k > 0) {
                sent += (unsigned)k;
                outstanding += (unsigned)k;
            }
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 2) <= 0) {
            if (bench_wall() - last_rx > 0.2 && outstanding) {
                /* lost in the kernel or dropped by the target: give the
                 * window back */
                res.stalls++;
                outstanding = 0;
                last_rx = bench_wall();
            }
            continue;
        }
        for (int i = 0; i < BATCH; i++) {
            memset(&rx[i].msg_hdr, 0, sizeof rx[i].msg_hdr);
            rx[i].msg_hdr.msg_iov = &rxv[i];
            rx[i].msg_hdr.msg_iovlen = 1;
        }
        int k = recvmmsg(fd, rx, BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < k; i++) {
            if (rx[i].msg_len < P2P_DISCV4_MIN_SIZE || rbuf[i][P2P_DISCV4_HEAD_LEN] != 2) continue;
            pongs++;
            if (outstanding) outstanding--;
        }
        if (k > 0) last_rx = bench_wall();
    }
    res.pongs = pongs - m_pongs;
    res.sent = sent;
    res.pongs_per_s = (double)res.pongs / secs;
    return res;
}

/* Bonds every key with the target, one at a time: ping, answer its ping
 * back with a pong.  Afterwards a ping costs the target one recovery and
 * one signature (no more pings back for 24 h).  Returns the keys bonded. */
static int bond_keys(int fd, uint16_t port)
{
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, port);
    int bonded = 0;
    for (int k = 0; k < NKEYS; k++) {
        if (sendto(fd, pings[k], plen[k], 0, (struct sockaddr *)&ss, sl) < 0) continue;
        double end = bench_wall() + 2;
        while (bench_wall() < end) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, 100) <= 0) continue;
            uint8_t buf[1500];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n < P2P_DISCV4_MIN_SIZE || buf[P2P_DISCV4_HEAD_LEN] != P2P_DISCV4_PING) continue;
            p2p_discv4_packet_t p;
            memset(&p, 0, sizeof p);
            p.type = P2P_DISCV4_PONG;
            p.expiration = p2p_wall_ms() / 1000 + 20;
            p.u.pong.to.ip = lo;
            p.u.pong.to.udp = port;
            memcpy(p.u.pong.reply_tok, buf, 32);
            uint8_t out[P2P_DISCV4_MAX_SIZE];
            size_t len;
            if (p2p_discv4_encode(out, &len, NULL, &p, keys[k]) == 0 &&
                sendto(fd, out, len, 0, (struct sockaddr *)&ss, sl) > 0)
                bonded++;
            break;
        }
    }
    /* drain the pongs to the bonding pings */
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0) break;
        uint8_t buf[1500];
        if (recv(fd, buf, sizeof buf, 0) < 0) break;
    }
    return bonded;
}

static int client_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int buf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, 0);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) abort();
    sl = sizeof ss;
    p2p_ip_t ip;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
        p2p_ip_from_sockaddr(&ip, port, (struct sockaddr *)&ss) != 0)
        abort();
    return fd;
}

static void run_ours(unsigned readers, double secs, double bound1, double op_us)
{
    p2p_discovery_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    do tu_rand_bytes(cfg.priv, 32);
    while (p2p_secp_privkey_check(cfg.priv) != 0);
    cfg.listen_ip = p2p_ip4(127, 0, 0, 1);
    cfg.readers = readers;
    cfg.queue = 4096;
    p2p_discovery_t *d;
    char msg[256];
    if (p2p_discovery_start(&d, msg, sizeof msg, &cfg) != 0) {
        fprintf(stderr, "start: %s\n", msg);
        exit(1);
    }
    uint16_t from;
    int fd = client_socket(&from);
    make_pings(p2p_discovery_port(d), from);
    int bonded = bond_keys(fd, p2p_discovery_port(d));
    if (bonded < NKEYS) printf("  only %d of %d keys bonded\n", bonded, NKEYS);
    double c0 = threads_cpu("p2p-udp") + threads_cpu("p2p-disc");
    flood_result_t r = flood(fd, p2p_discovery_port(d), secs);
    double c1 = threads_cpu("p2p-udp") + threads_cpu("p2p-disc");
    p2p_discovery_info_t *in = malloc(sizeof *in);
    if (in && p2p_discovery_info(d, in, p2p_now_ns() + 5 * P2P_NS_PER_S) == 0)
        printf("  instance: verified %llu, queue full %llu, pongs sent %llu, "
               "ping-backs not sent (matchers full) %llu\n",
               (unsigned long long)in->shell.rx_verified,
               (unsigned long long)in->shell.rx_queue_full, (unsigned long long)in->core.rx_ping,
               (unsigned long long)in->core.pending_full);
    free(in);
    double cpu_us = r.pongs ? (c1 - c0) / (double)(r.pongs) * 1e6 : 0;
    printf("ours, %u reader%s: %8.0f pongs/s  = %5.1f%% of the 2-core bound %.0f/s, "
           "%4.2fx the 1-core bound; target 10000/s: %s\n",
           readers, readers > 1 ? "s" : " ", r.pongs_per_s, 100.0 * r.pongs_per_s / (2 * bound1),
           2 * bound1, r.pongs_per_s / bound1, r.pongs_per_s >= 10000 ? "met" : "NOT met");
    printf("  instance CPU per pong %.1f us vs recover+sign %.1f us (%.0f%% efficient); "
           "window stalls %llu\n",
           cpu_us, op_us, cpu_us > 0 ? 100.0 * op_us / cpu_us : 0, (unsigned long long)r.stalls);
    close(fd);
    p2p_discovery_stop(d);
}

/* The DPT: bench-target.mjs --mode dpt; reads its listening line, floods,
 * SIGTERM, prints its summary line.  Returns pongs/s or -1. */
static double run_dpt(double secs, double bound1)
{
    const char *dir = JS_DIR;
    char script[512], mods[512];
    snprintf(script, sizeof script, "%s/bench-target.mjs", dir);
    snprintf(mods, sizeof mods, "%s/node_modules/@ethereumjs/devp2p", dir);
    if (access(NODE_BIN, X_OK) != 0 || access(mods, F_OK) != 0) {
        printf("ethereumjs DPT: skipped (node or %s missing)\n", mods);
        return -1;
    }
    int out[2];
    if (pipe(out) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(NODE_BIN, "node", script, "--mode", "dpt", "--port", "0", "--duration", "120",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[4096];
    int port = -1;
    while (fgets(line, sizeof line, f)) {
        char *u = strstr(line, "\"udpPort\":");
        if (strstr(line, "\"listening\"") && u) {
            port = atoi(u + 10);
            break;
        }
    }
    double rate = -1;
    if (port > 0) {
        uint16_t from;
        int fd = client_socket(&from);
        make_pings((uint16_t)port, from);
        flood_result_t r = flood(fd, (uint16_t)port, secs);
        close(fd);
        rate = r.pongs_per_s;
        printf("ethereumjs DPT: %8.0f pongs/s  = %5.1f%% of the 1-core bound (node is "
               "single-threaded); window stalls %llu\n",
               rate, 100.0 * rate / bound1, (unsigned long long)r.stalls);
    }
    kill(pid, SIGTERM);
    while (fgets(line, sizeof line, f))
        if (strstr(line, "\"summary\"")) {
            line[strcspn(line, "\n")] = 0;
            printf("  its summary: %s\n", line);
        }
    fclose(f);
    waitpid(pid, NULL, 0);
    return rate;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 4;
    if (secs <= 0) secs = 4;
    signal(SIGPIPE, SIG_IGN);
    bench_costs_t c;
    bench_measure_costs(&c, 0.1);
    double op_us = c.recover_us + c.sign_us, bound1 = 1e6 / op_us;
    printf("measured: recover %.1f us, sign %.1f us -> bound %.0f pongs/s per core, %.0f/s on "
           "2 cores\n",
           c.recover_us, c.sign_us, bound1, 2 * bound1);
    run_ours(1, secs, bound1, op_us);
    run_ours(2, secs, bound1, op_us);
    double js = run_dpt(secs, bound1);
    (void)js;
    return 0;
}
