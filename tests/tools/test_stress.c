/*
 * tests/tools/test_stress.c: `devp2p stress` against an in-process
 * devp2p-c server (actors/server.h) on loopback.  Runs the tool (argv[1])
 * as a child process in churn and hold modes for a few seconds each, with
 * --pid of this process and --out FILE.json, then checks the JSON summary:
 * successes > 0, no failures, latencies and /proc fields present, and the
 * server's own counters agree (it saw the handshakes and our Disconnects).
 * A sampled target that exits mid-run (a child given as --pid) is
 * reported as exited, with the figures of its last sample.  --out FILE.csv
 * writes the series (summing to the totals) and FILE.summary.csv.  A
 * target whose descriptors the harness may not read has them reported as
 * not readable (null), not as 0.
 * With "hold500": 500 live peers, RSS per peer bound, every ping answered.
 * Ping latency figures are printed, never checked: on a shared, loaded
 * machine they say nothing about correctness (tests/bench measures them).
 * Bounded: every run is a few seconds plus the tool's drain; the tool is
 * killed (and the test fails) after RUN_LIMIT_S.
 */
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/discovery.h"
#include "actors/server.h"
#include "core/clock.h"
#include "crypto/secp.h"
#include "tests/actors/srv_util.h"
#include "tests/tools/stress_tlib.h"
#include "tests/tu.h"
#include "wire/enode.h"

/* Limit on one tool run (the longest, hold500, takes about 12 s plus its
 * drain; far longer under sanitizers on a loaded machine). */
#define RUN_LIMIT_S 60

static const char *g_tool;

/* Runs the tool with the given arguments (killed after RUN_LIMIT_S);
 * returns its exit status. */
static int run_tool(char *const args[])
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int null = open("/dev/null", 1);
        if (null >= 0) dup2(null, 2); /* the progress bar only goes to a tty anyway */
        execv(g_tool, args);
        _exit(127);
    }
    int st = 0;
    if (wait_bounded(pid, RUN_LIMIT_S, args[1], &st) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK(json_is_number(v));
    return json_is_number(v) ? json_number_value(v) : -1;
}

static int g_want_rc;      /* run_mode's expected exit status (then back to 0) */
static pid_t g_target_pid; /* run_mode's --pid (then back to 0: this process) */

/* Runs `devp2p stress` in mode against enode; the arguments after out are
 * further flags and values, up to 8, ending with NULL. */
static json_t *run_mode(const char *enode, const char *mode, const char *peers, const char *dur,
                        const char *out, ...)
{
    char pidbuf[16];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)(g_target_pid ? g_target_pid : getpid()));
    g_target_pid = 0;
    char *args[32];
    int n = 0;
    args[n++] = (char *)g_tool;
    args[n++] = "stress";
    args[n++] = "--target";
    args[n++] = (char *)enode;
    args[n++] = "--mode";
    args[n++] = (char *)mode;
    args[n++] = "--peers";
    args[n++] = (char *)peers;
    args[n++] = "--duration";
    args[n++] = (char *)dur;
    args[n++] = "--pid";
    args[n++] = pidbuf;
    args[n++] = "--out";
    args[n++] = (char *)out;
    va_list ap;
    va_start(ap, out);
    for (const char *x; n < 30 && (x = va_arg(ap, const char *)) != NULL;) args[n++] = (char *)x;
    va_end(ap);
    args[n] = NULL;
    int rc = run_tool(args);
    CHECK(rc == g_want_rc); /* 1: the run had failures */
    g_want_rc = 0;
    json_error_t err;
    json_t *o = json_load_file(out, 0, &err);
    CHECK(o != NULL);
    if (!o) fprintf(stderr, "%s: %s\n", out, err.text);
    unlink(out);
    return o;
}

/* The harness closes first, so its side of each churned connection sits
 * in TIME_WAIT for 60 s on an ephemeral port of 127.0.0.x.  A listener
 * (with SO_REUSEADDR, as the node's) must still be able to bind those
 * addresses and ports: tries up to 50 of the ones on 127.0.0.2..8 (the
 * harness's other sources; 127.0.0.1 is where every other process on the
 * machine connects from, and its sockets may hold any ephemeral port)
 * towards port that nothing else holds. */
typedef struct tcp_ent {
    uint32_t la;
    uint16_t lp, rp;
    uint8_t st;
} tcp_ent_t;

/* Reads the next IPv4 TCP socket of /proc/net/tcp.  False at the end. */
static bool tcp_next(FILE *f, tcp_ent_t *e)
{
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned sl, la, lp, ra, rp, st;
        if (sscanf(line, " %u: %8X:%4X %8X:%4X %2X", &sl, &la, &lp, &ra, &rp, &st) != 6) continue;
        *e = (tcp_ent_t){.la = la, .lp = (uint16_t)lp, .rp = (uint16_t)rp, .st = (uint8_t)st};
        return true;
    }
    return false;
}

static void bind_tw_ports(uint16_t port, unsigned *tried, unsigned *bound)
{
    *tried = *bound = 0;
    /* two passes over the table, so its size (other processes' sockets
     * too, any number of them) does not matter: the first picks up to 200
     * candidates, the second drops those whose address and port another
     * socket holds */
    enum { MAXC = 200 };
    tcp_ent_t cand[MAXC];
    bool alone[MAXC];
    unsigned nc = 0;
    tcp_ent_t e;
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f) return;
    /* /proc prints the address's network-order word: ntohl gives it back */
    while (nc < MAXC && tcp_next(f, &e))
        if (e.st == 6 /* TIME_WAIT */ && ntohl(e.la) >= 0x7F000002 && ntohl(e.la) <= 0x7F000008 &&
            e.rp == port) {
            cand[nc] = e;
            alone[nc++] = true;
        }
    fclose(f);
    if (!(f = fopen("/proc/net/tcp", "r"))) return;
    while (tcp_next(f, &e))
        for (unsigned i = 0; i < nc; i++)
            if (e.lp == cand[i].lp && (e.la == cand[i].la || e.la == 0) &&
                !(e.st == 6 && e.rp == port))
                alone[i] = false;
    fclose(f);
    for (unsigned i = 0; i < nc && *tried < 50; i++) {
        if (!alone[i]) continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cand[i].lp)};
        sa.sin_addr.s_addr = cand[i].la; /* as read: network order */
        (*tried)++;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0) (*bound)++;
        close(fd);
    }
}

/* A sampled target that exits during the run: --pid of a child that ends
 * 1.5 s into a 3 s churn run, left a zombie (not reaped until the run is
 * over) or, with reaped, reaped at once by its own parent (gone from
 * /proc).  Either way the report says the target exited and keeps the
 * figures of its last sample: not the zero RSS and descriptors of a
 * zombie. */
static void target_exits(const char *enode, const char *out, bool reaped)
{
    int pfd[2];
    if (pipe(pfd) != 0) {
        CHECK(false);
        return;
    }
    pid_t child = fork();
    if (child == 0) {
        close(pfd[0]);
        pid_t victim = reaped ? fork() : 0;
        if (victim == 0) {
            if (!reaped && write(pfd[1], &(pid_t){getpid()}, sizeof(pid_t)) < 0) _exit(1);
            usleep(1500 * 1000);
            _exit(0);
        }
        if (victim < 0 || write(pfd[1], &victim, sizeof victim) < 0) _exit(1);
        waitpid(victim, NULL, 0);
        _exit(0);
    }
    close(pfd[1]);
    pid_t victim = 0;
    if (child < 0 || read(pfd[0], &victim, sizeof victim) != (ssize_t)sizeof victim) victim = 0;
    close(pfd[0]);
    CHECK(victim > 0);
    if (victim > 0) {
        g_target_pid = victim;
        json_t *o = run_mode(enode, "churn", "8", "3", out, NULL);
        if (o) {
            CHECK(json_is_true(json_object_get(o, "target_exited")));
            json_t *proc = json_object_get(o, "target_proc");
            CHECK(jint(proc, "pid") == victim);
            CHECK(json_is_true(json_object_get(proc, "exited")));
            /* its last sample while it ran, not a zombie's zeros */
            CHECK(jint(proc, "rss_kb_end") > 0);
            CHECK(jint(proc, "fds_end") > 0);
            CHECK(jint(proc, "threads_end") >= 1);
            json_decref(o);
        }
    }
    if (child > 0) {
        int st;
        wait_bounded(child, 10, "target child", &st);
    }
}

/* A sampled target whose descriptors the harness may not read: --pid of a
 * child that made itself not dumpable (its /proc/PID/fd is then root's),
 * with the harness run as nobody when this test runs as root.  Its RSS
 * and threads are still reported; its descriptors are null in the JSON
 * and "not readable" in the summary, not 0. */
static void fds_unreadable(const char *enode)
{
    int pfd[2];
    if (pipe(pfd) != 0) {
        CHECK(false);
        return;
    }
    pid_t target = fork();
    if (target == 0) { /* until the test closes the pipe (or exits) */
        close(pfd[1]);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        char b;
        while (read(pfd[0], &b, 1) > 0) {
        }
        _exit(0);
    }
    close(pfd[0]);
    CHECK(target > 0);
    char out[64], sum[64], pidbuf[16];
    snprintf(out, sizeof out, "/tmp/test_stress_%d_nofd.json", (int)getpid());
    snprintf(sum, sizeof sum, "/tmp/test_stress_%d_nofd.txt", (int)getpid());
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)target);
    unlink(out);
    char *args[] = {(char *)g_tool, "stress",  "--target", (char *)enode, "--mode",
                    "churn",        "--peers", "4",        "--duration",  "1",
                    "--pid",        pidbuf,    "--out",    out,           NULL};
    pid_t pid = target > 0 ? fork() : -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        int txt = open(sum, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (null < 0 || txt < 0 || dup2(null, 2) < 0 || dup2(txt, 1) < 0) _exit(126);
        /* as root every /proc/PID/fd is readable: run as nobody */
        if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
            _exit(126);
        execv(g_tool, args);
        _exit(127);
    }
    int st = 0;
    CHECK(pid > 0);
    if (pid > 0 && wait_bounded(pid, RUN_LIMIT_S, "fds-unreadable", &st) == pid) {
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        json_error_t err;
        json_t *o = json_load_file(out, 0, &err);
        CHECK(o != NULL);
        json_t *proc = json_object_get(o, "target_proc");
        char *shown = proc ? json_dumps(proc, JSON_COMPACT) : NULL;
        printf("fds-unreadable: target_proc %s\n", shown ? shown : "(none)");
        free(shown);
        CHECK(jint(proc, "pid") == target);
        CHECK(jint(proc, "rss_kb_start") > 0);
        CHECK(jint(proc, "threads_max") >= 1);
        CHECK(json_is_null(json_object_get(proc, "fds_start")));
        CHECK(json_is_null(json_object_get(proc, "fds_end")));
        CHECK(json_is_null(json_object_get(proc, "fds_max")));
        json_decref(o);
        char line[512];
        bool said = false;
        FILE *f = fopen(sum, "r");
        while (f && fgets(line, sizeof line, f)) said |= strstr(line, "fds not readable") != NULL;
        if (f) fclose(f);
        CHECK(said);
    }
    unlink(out);
    unlink(sum);
    close(pfd[1]);
    if (target > 0) wait_bounded(target, 10, "fds-unreadable target", &st);
}

/* The value of name in a name,value CSV file, or NULL (static buffer). */
static const char *csv_value(const char *path, const char *name)
{
    static char line[512];
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    const char *v = NULL;
    size_t n = strlen(name);
    while (!v && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, name, n) == 0 && line[n] == ',') v = line + n + 1;
    }
    fclose(f);
    return v;
}

static long long csv_int(const char *path, const char *name)
{
    const char *v = csv_value(path, name);
    if (!v) fprintf(stderr, "%s: no '%s'\n", path, name);
    CHECK(v != NULL);
    return v ? atoll(v) : -1;
}

/* --out FILE.csv: the series in FILE.csv, with a last row for the partial
 * second at the end, so its ok, fail and msgs columns sum to the totals
 * in FILE.summary.csv; the summary has the totals, the latencies and the
 * target's figures.  mode runs 2.5 s (half a second past the last whole
 * one) with the further flags (up to 4, ending with NULL). */
static void csv_out(const char *enode, const char *mode, const char *peers, ...)
{
    char out[64], sum[96], pidbuf[16];
    snprintf(out, sizeof out, "/tmp/test_stress_%d.csv", (int)getpid());
    snprintf(sum, sizeof sum, "/tmp/test_stress_%d.summary.csv", (int)getpid());
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
    char *args[24] = {
        (char *)g_tool, "stress",     "--target", (char *)enode, "--mode", (char *)mode, "--peers",
        (char *)peers,  "--duration", "2.5",      "--pid",       pidbuf,   "--out",      out};
    int n = 14;
    va_list ap;
    va_start(ap, peers);
    for (const char *x; n < 22 && (x = va_arg(ap, const char *)) != NULL;) args[n++] = (char *)x;
    va_end(ap);
    args[n] = NULL;
    CHECK(run_tool(args) == 0);
    FILE *f = fopen(out, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[256];
    CHECK(fgets(line, sizeof line, f) &&
          strcmp(line, "t,live,inflight,ok,fail,msgs,rss_kb\n") == 0);
    unsigned long long ok = 0, fail = 0, msgs = 0;
    double t = 0;
    unsigned rows = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned live, infl;
        unsigned long long o, fl, m, rss;
        if (sscanf(line, "%lf,%u,%u,%llu,%llu,%llu,%llu", &t, &live, &infl, &o, &fl, &m, &rss) !=
            7) {
            CHECK(false);
            break;
        }
        ok += o;
        fail += fl;
        msgs += m;
        rows++;
    }
    fclose(f);
    printf("csv %s: %u rows to t=%.2f, ok %llu, fail %llu, msgs %llu\n", mode, rows, t, ok, fail,
           msgs);
    CHECK(rows >= 3);
    CHECK(t >= 2.5); /* the partial second at the end is in */
    CHECK((long long)ok == csv_int(sum, "successes"));
    CHECK((long long)fail == csv_int(sum, "failures"));
    long long replies = strcmp(mode, "hold") == 0 ? csv_int(sum, "pongs_received") : 0;
    CHECK((long long)msgs == replies);
    CHECK(csv_int(sum, "successes") > 0);
    CHECK(csv_int(sum, "attempts") >= csv_int(sum, "successes"));
    CHECK(csv_int(sum, "handshake_latency.n") == csv_int(sum, "successes"));
    CHECK(csv_value(sum, "handshake_latency.p99_ms") != NULL);
    CHECK(csv_int(sum, "target_proc.pid") == getpid());
    CHECK(csv_int(sum, "target_proc.rss_kb_max") > 0);
    const char *m = csv_value(sum, "mode");
    CHECK(m && strcmp(m, mode) == 0);
    unlink(out);
    unlink(sum);
}

/* The test subprotocol: echoes every message back to its sender. */
static int echo_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                    size_t len)
{
    (void)ctx;
    (void)state;
    int rc = p2p_peer_send(peer, "snap", code, data, len);
    return rc == P2P_EFULL ? 0 : rc;
}

/* hold500: 500 live peers against an in-process server; the bounds of
 * the 10,000-peer target, scaled down: RSS per idle peer <= 64 KiB (not
 * checked under sanitizers, whose shadow memory and 4x stacks inflate it),
 * every ping answered and none dropped (p99 latency printed only). */
static int hold500(bool check_rss)
{
    p2p_server_config_t cfg;
    su_config(&cfg, NULL, 0);
    cfg.max_peers = 600;
    cfg.max_pending = 128;
    cfg.no_dial = true; /* every slot inbound (else maxpeers / 3 stay for dials) */
    p2p_server_t *srv = NULL;
    CHECK_OK(p2p_server_start(&srv, &cfg));
    if (!srv) return tu_done("stress-hold500");
    p2p_node_t self = su_node(srv);
    char enode[P2P_ENODE_MAX_TEXT];
    CHECK_OK(p2p_enode_format(enode, sizeof enode, &self));
    char out[64];
    snprintf(out, sizeof out, "/tmp/test_stress_hold_%d.json", (int)getpid());
    json_t *o = run_mode(enode, "hold", "500", "12", out, "--ping-interval", "2", NULL);
    if (o) {
        CHECK(jint(o, "peak_live") == 500);
        CHECK(jint(o, "failures") == 0);
        CHECK(jint(o, "drops") == 0);
        CHECK(jint(o, "pings_sent") >= 1000);
        /* every ping answered (the drain waits for the ones in flight at the stop) */
        CHECK(jint(o, "pongs_received") == jint(o, "pings_sent"));
        CHECK(jint(o, "replies_missing") == 0);
        double p99 = jnum(json_object_get(o, "reply_latency"), "p99_ms");
        printf("hold500: ping p99 %.1f ms\n", p99);
        json_t *proc = json_object_get(o, "target_proc");
        double per = jnum(proc, "rss_kb_per_live_peer");
        printf("hold500: RSS per live peer %.1f KiB\n", per);
        if (check_rss) CHECK(per > 0 && per <= 64);
        CHECK(jint(proc, "threads_max") >= 500);
        json_decref(o);
    }
    CHECK(su_wait_peers(srv, 0, 10000));
    p2p_server_stop(srv);
    return tu_done("stress-hold500");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_stress <devp2p> [hold500 rss|norss]\n");
        return 2;
    }
    g_tool = argv[1];
    if (argc >= 4 && strcmp(argv[2], "hold500") == 0) return hold500(strcmp(argv[3], "rss") == 0);
    p2p_server_config_t cfg;
    static const p2p_protocol_t echo = {
        .name = "snap", .version = 1, .length = 8, .on_msg = echo_msg};
    su_config(&cfg, &echo, 1);
    cfg.max_peers = 200;
    cfg.max_pending = 100;
    cfg.ping_interval_ms = 500; /* so the hold run sees the server's pings */
    p2p_server_t *srv = NULL;
    CHECK_OK(p2p_server_start(&srv, &cfg));
    if (!srv) return tu_done("stress");
    p2p_node_t self = su_node(srv);
    char enode[P2P_ENODE_MAX_TEXT];
    CHECK_OK(p2p_enode_format(enode, sizeof enode, &self));
    char out[64];
    snprintf(out, sizeof out, "/tmp/test_stress_%d.json", (int)getpid());

    /* churn: 8 in flight for 2 s */
    json_t *o = run_mode(enode, "churn", "8", "2", out, NULL);
    if (o) {
        json_int_t ok = jint(o, "successes");
        CHECK(ok > 0);
        CHECK(jint(o, "failures") == 0);
        CHECK(jint(o, "attempts") >= ok);
        CHECK(json_object_size(json_object_get(o, "failures_by_reason")) == 0);
        CHECK(jnum(o, "success_rate_per_s") > 0);
        json_t *lat = json_object_get(o, "handshake_latency");
        CHECK(jint(lat, "n") == ok);
        CHECK(jnum(lat, "p50_ms") > 0);
        CHECK(jnum(lat, "p99_ms") >= jnum(lat, "p50_ms"));
        json_t *proc = json_object_get(o, "target_proc");
        CHECK(json_is_object(proc));
        CHECK(jint(proc, "pid") == getpid());
        CHECK(jint(proc, "rss_kb_max") > 0);
        CHECK(jint(proc, "threads_max") >= 3);
        CHECK(json_array_size(json_object_get(o, "series")) >= 1);
        /* the server saw our Disconnect(requested) for (nearly) every
         * session; the last ones may still be in flight */
        p2p_server_stats_t ss;
        p2p_server_get_stats(srv, &ss);
        CHECK(ss.peers_added >= (uint64_t)ok);
        CHECK(ss.disc_recv[P2P_DISC_REQUESTED] > 0);
        json_decref(o);
    }
    CHECK(su_wait_peers(srv, 0, 5000));
    target_exits(enode, out, false);
    CHECK(su_wait_peers(srv, 0, 5000));
    target_exits(enode, out, true);
    CHECK(su_wait_peers(srv, 0, 5000));
    fds_unreadable(enode);
    CHECK(su_wait_peers(srv, 0, 5000));
    csv_out(enode, "churn", "8", NULL);
    CHECK(su_wait_peers(srv, 0, 5000));
    csv_out(enode, "hold", "8", "--ping-interval", "0.2", NULL);
    CHECK(su_wait_peers(srv, 0, 5000));
    unsigned tw_tried, tw_bound;
    bind_tw_ports(self.ep.tcp, &tw_tried, &tw_bound);
    printf("churn: a listener bound %u of %u ports the harness left in TIME_WAIT\n", tw_bound,
           tw_tried);
    CHECK(tw_tried > 0);
    CHECK(tw_bound == tw_tried);

    /* hold: 40 live peers for 3 s, pinging every 0.5 s */
    o = run_mode(enode, "hold", "40", "3", out, "--ping-interval", "0.5", NULL);
    if (o) {
        CHECK(jint(o, "successes") >= 40);
        CHECK(jint(o, "failures") == 0);
        CHECK(jint(o, "drops") == 0);
        CHECK(jint(o, "peak_live") == 40);
        CHECK(jint(o, "pings_sent") > 40);
        CHECK(jint(o, "pongs_received") == jint(o, "pings_sent"));
        CHECK(jint(o, "attempts") == jint(o, "successes") + jint(o, "handshake_failures"));
        CHECK(jint(o, "target_pings") > 0);
        CHECK(jint(o, "target_pings_answered") == jint(o, "target_pings"));
        json_t *lat = json_object_get(o, "reply_latency");
        CHECK(jint(lat, "n") == jint(o, "pongs_received"));
        printf("hold: ping p99 %.1f ms\n", jnum(lat, "p99_ms"));
        json_t *proc = json_object_get(o, "target_proc");
        CHECK(jint(proc, "threads_max") >= 40);
        CHECK(jint(proc, "fds_max") >= 40);
        json_decref(o);
    }
    CHECK(su_wait_peers(srv, 0, 5000));

    /* flood: 8 peers, 32 messages in flight each, echoed by the server */
    o = run_mode(enode, "flood", "8", "2", out, "--window", "32", NULL);
    if (o) {
        CHECK(jint(o, "failures") == 0);
        CHECK(jint(o, "msgs_sent") > 100);
        CHECK(jint(o, "msgs_received") > 100);
        /* every message echoed (the drain waits for the ones in flight) */
        CHECK(jint(o, "msgs_received") == jint(o, "msgs_sent"));
        CHECK(jint(o, "replies_missing") == 0);
        CHECK(jint(json_object_get(o, "reply_latency"), "n") > 0);
        json_decref(o);
    }
    CHECK(su_wait_peers(srv, 0, 5000));

    /* adversarial: garbage, stalled and bad-MAC connections beside churn */
    o = run_mode(enode, "adversarial", "8", "2", out, "--adv-ratio", "0.5", NULL);
    if (o) {
        CHECK(jint(o, "successes") > 0);
        CHECK(jnum(o, "success_ratio") >= 0.95);
        json_t *adv = json_object_get(o, "adversarial");
        CHECK(jint(adv, "started") > 0);
        CHECK(jint(adv, "closed_by_target") > 0);
        CHECK(jint(adv, "still_open") == 0);
        CHECK(jint(adv, "timed_out") == 0);
        CHECK(jint(adv, "connect_failed") == 0);
        CHECK(jint(adv, "closed_by_target") == jint(adv, "started"));
        CHECK(jint(o, "attempts") == jint(o, "successes") + jint(o, "handshake_failures"));
        json_decref(o);
    }
    CHECK(su_wait_peers(srv, 0, 5000));

    /* hold above the target's limit: a server of 12 peers, 20 wanted, for
     * 5 s.  "too many peers" pauses new peers for 1 s, then 2 s, 4 s, and
     * after a pause one handshake probes the server: the 20 at the start,
     * then about 2 probes (not 8 refused peers a second, nor thousands of
     * attempts without a pause) */
    {
        p2p_server_config_t fc;
        su_config(&fc, NULL, 0);
        fc.max_peers = 12;
        fc.no_dial = true; /* every slot inbound */
        p2p_server_t *full = NULL;
        CHECK_OK(p2p_server_start(&full, &fc));
        if (full) {
            p2p_node_t fn = su_node(full);
            char fenode[P2P_ENODE_MAX_TEXT];
            CHECK_OK(p2p_enode_format(fenode, sizeof fenode, &fn));
            g_want_rc = 1; /* the refusals are failures */
            o = run_mode(fenode, "hold", "20", "5", out, NULL);
            if (o) {
                json_int_t att = jint(o, "attempts"), pauses = jint(o, "full_pauses");
                printf("hold above the limit: %lld attempts, %lld pauses\n", (long long)att,
                       (long long)pauses);
                CHECK(jint(o, "successes") >= 12);
                /* admitted at once: never more than the server takes; one
                 * refused after its Hello is not a dropped peer */
                CHECK(jint(o, "peak_live") == 12);
                CHECK(jint(o, "drops") == 0);
                CHECK(pauses >= 2 && pauses <= 4);
                CHECK(att >= 20 && att <= 20 + 4);
                /* every failure is the server's refusal */
                json_t *why = json_object_get(o, "failures_by_reason");
                json_int_t refused = 0;
                const char *k;
                json_t *v;
                json_object_foreach(why, k, v)
                {
                    CHECK(strstr(k, "too many peers") != NULL);
                    refused += json_integer_value(v);
                }
                CHECK(refused == jint(o, "failures") && refused > 0);
                json_decref(o);
            }
            p2p_server_stats_t fs;
            p2p_server_get_stats(full, &fs);
            CHECK(fs.peers_added <= 12 + 8); /* the replacements of the ones dropped */
            p2p_server_stop(full);
        }
    }

    /* discv4: ping and findnode floods from 8 keys against a discovery
     * instance; every key bonds, every request is answered */
    p2p_discovery_config_t dc;
    memset(&dc, 0, sizeof dc);
    do tu_rand_bytes(dc.priv, 32);
    while (p2p_secp_privkey_check(dc.priv) != 0);
    dc.listen_ip = p2p_ip4(127, 0, 0, 1);
    p2p_discovery_t *disc = NULL;
    char msg[256];
    CHECK_OK(p2p_discovery_start(&disc, msg, sizeof msg, &dc));
    if (disc) {
        p2p_node_t dn = self;
        CHECK_OK(p2p_secp_pubkey(dn.pubkey, dc.priv));
        p2p_node_id(dn.id, dn.pubkey);
        dn.ep.udp = p2p_discovery_port(disc);
        char denode[P2P_ENODE_MAX_TEXT];
        CHECK_OK(p2p_enode_format(denode, sizeof denode, &dn));
        o = run_mode(denode, "discv4", "8", "2", out, "--window", "2", NULL);
        if (o) {
            CHECK(jint(o, "failures") == 0);
            CHECK(jint(o, "keys_bonded") == 8);
            CHECK(jint(o, "pongs_received") == jint(o, "pings_sent"));
            CHECK(jint(o, "pongs_received") > 8);
            CHECK(jint(o, "findnodes_sent") > 0);
            CHECK(jint(o, "findnodes_answered") == jint(o, "findnodes_sent"));
            CHECK(jint(o, "neighbors_packets") >= jint(o, "findnodes_answered"));
            CHECK(jint(o, "target_pings_answered") >= 8); /* the ping-backs */
            CHECK(jnum(o, "pongs_per_s") > 0);
            CHECK(jnum(json_object_get(o, "reply_latency"), "p99_ms") > 0);
            CHECK(jint(json_object_get(o, "neighbors_latency"), "n") ==
                  jint(o, "findnodes_answered"));
            /* the listener lookup found this process by its UDP socket */
            CHECK(jint(json_object_get(o, "target_proc"), "pid") == getpid());
            json_decref(o);
        }
        /* --rate 50: every request counts, the bonding pings too */
        o = run_mode(denode, "discv4", "8", "2", out, "--rate", "50", NULL);
        if (o) {
            double load = jnum(o, "load_s");
            json_int_t att = jint(o, "attempts");
            printf("discv4 --rate 50: %lld requests in %.2f s\n", (long long)att, load);
            CHECK(att > 50);
            CHECK((double)att <= 50 * load + 2);
            CHECK(att == jint(o, "pings_sent") + jint(o, "findnodes_sent"));
            CHECK(jint(o, "keys_bonded") == 8);
            json_decref(o);
        }
        /* A UDP port that never answers (bound here, never read): the
         * keys give up bonding after their pings time out, and those
         * timeouts are the failures, not counted again for the bond */
        int mute = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        uint16_t mport = 0;
        for (uint16_t p = 44950; mute >= 0 && p < 45000 && !mport; p++) {
            struct sockaddr_in sa = {
                .sin_family = AF_INET, .sin_port = htons(p), .sin_addr.s_addr = htonl(0x7F000001)};
            if (bind(mute, (struct sockaddr *)&sa, sizeof sa) == 0) mport = p;
        }
        CHECK(mport != 0);
        if (mport) {
            p2p_node_t mn = dn;
            mn.ep.udp = mport;
            char menode[P2P_ENODE_MAX_TEXT];
            CHECK_OK(p2p_enode_format(menode, sizeof menode, &mn));
            g_want_rc = 1;
            o = run_mode(menode, "discv4", "2", "6", out, "--requests", "ping,findnode", NULL);
            if (o) {
                json_int_t att = jint(o, "attempts"), fails = jint(o, "failures");
                printf("discv4 against a mute port: %lld attempts, %lld failures, %lld keys gave "
                       "up bonding\n",
                       (long long)att, (long long)fails, (long long)jint(o, "keys_bond_failed"));
                CHECK(att > 0);
                CHECK(fails <= att);
                CHECK(jint(o, "keys_bonded") == 0);
                CHECK(jint(o, "keys_bond_failed") == 2);
                json_decref(o);
            }
        }
        if (mute >= 0) close(mute);
        /* Two keys bond at a time: the six waiting for a bonding slot flood
         * pings meanwhile, and the first one draws the target's ping-back.
         * The pong to it bonds the key (the target sends no second
         * ping-back), so every key still bonds, with no failure. */
        o = run_mode(denode, "discv4", "8", "3", out, "--concurrency", "2", NULL);
        if (o) {
            CHECK(jint(o, "failures") == 0);
            CHECK(jint(o, "keys_bonded") == 8);
            CHECK(jint(o, "findnodes_answered") == jint(o, "findnodes_sent"));
            CHECK(jint(o, "target_pings_answered") >= 8);
            json_decref(o);
        }
        p2p_discovery_stop(disc);
    }
    p2p_server_stop(srv);
    return tu_done("stress");
}
