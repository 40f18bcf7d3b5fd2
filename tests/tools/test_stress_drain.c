/*
 * tests/tools/test_stress_drain.c: how `devp2p stress` (argv[1]) accounts
 * for what it could not finish, against targets on loopback that stall:
 *
 *   drain-hello   hold with 64 handshakes in flight at the stop (--duration
 *                 10ms): every attempt ends as a success or a handshake
 *                 failure, and every session whose Hello completed (most
 *                 of them during the drain) is sent Disconnect(requested),
 *                 counted by the in-process server; the success rate
 *                 counts the handshakes done during the load, not those
 *                 the drain finished (successes_in_drain).
 *   echo-missing  flood against an in-process server whose echo handler
 *                 stops after ECHO_BUDGET messages: the unechoed messages
 *                 are failures ("echo missing at the end"), status 1.
 *   blackhole-adv adversarial against a listener that never accepts:
 *                 the bad-MAC connection stalled in its handshake counts as
 *                 timed out (not closed by the target), garbage and slow
 *                 ones as left open; started == closed + open + timed out +
 *                 failed to connect; attempts == successes + handshake
 *                 failures.
 *   blackhole-hold hold against the same listener: the handshakes still in
 *                 flight at the stop end as handshake failures (timeouts),
 *                 not freed uncounted.
 *   second-sigint hold against the same listener, stopped by SIGINT (the
 *                 drain starts: it would wait 10 s for the 3 handshakes),
 *                 then a second SIGINT: the tool ends within 3 s of it,
 *                 the 3 handshakes counted as failures, status 1.
 *   double-signal the same, but two SIGINTs 20 ms apart (as GNU timeout
 *                 sends its one signal, to the command and to its group):
 *                 one stop, the drain runs, the handshakes end timed out.
 *   setup-sigint  discv4 with SETUP_KEYS keys against a UDP port that
 *                 never answers, SIGINT while the keys are being set up
 *                 (each pre-signs 36 packets: seconds in all): the tool
 *                 ends within 1.5 s of it, status 1, nothing sent (the
 *                 setup ignored the signal and ran to its end first).
 *   adv-emfile    adversarial with 3 free descriptors: the adversarial
 *                 connections that cannot get a socket count as failed to
 *                 connect, not as legitimate failures (attempts ==
 *                 successes + failures: churn has no failure after the
 *                 Hello).
 *
 * The tool's drain waits up to its handshake timeout (10 s) for
 * answers, so the stalled cases run at the same time: about 12 s in all.
 * Each tool run is bounded by SIGKILL after RUN_LIMIT_S.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/server.h"
#include "core/clock.h"
#include "crypto/secp.h"
#include "tests/actors/srv_util.h"
#include "tests/tools/stress_tlib.h"
#include "tests/tu.h"
#include "wire/enode.h"

#define ECHO_BUDGET 20
#define RUN_LIMIT_S 60
#define EMFILE_PEERS 8
/* the tool's descriptor check: --peers + adversarial + 16, plus 64 spare */
#define EMFILE_NOFILE (2 * EMFILE_PEERS + 16 + 64)
#define EMFILE_FREE 3
/* setup-sigint: keys whose pre-signing takes seconds (about 1 ms each) */
#define SETUP_KEYS 8000

static const char *g_tool;
static atomic_int g_echo_budget = ECHO_BUDGET;

/* Echoes the first ECHO_BUDGET messages, then drops them all. */
static int echo_some(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                     size_t len)
{
    (void)ctx;
    (void)state;
    if (atomic_fetch_sub(&g_echo_budget, 1) <= 0) return 0;
    int rc = p2p_peer_send(peer, "snap", code, data, len);
    return rc == P2P_EFULL ? 0 : rc;
}

struct run {
    const char *name;
    char out[96];
    pid_t pid;
    bool emfile; /* EMFILE_NOFILE descriptors, EMFILE_FREE of them free */
};

/* Starts the tool: stress --target enode --mode mode --peers peers
 * --duration dur --out r->out [flag val]... (NULL-terminated pairs). */
static void spawn(struct run *r, const char *enode, const char *mode, const char *peers,
                  const char *dur, const char *const *extra)
{
    snprintf(r->out, sizeof r->out, "/tmp/test_stress_drain_%d_%s.json", (int)getpid(), r->name);
    char pidbuf[16];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
    char *args[40];
    int n = 0;
    const char *fixed[] = {g_tool, "stress",     "--target", enode,   "--mode", mode,    "--peers",
                           peers,  "--duration", dur,        "--pid", pidbuf,   "--out", r->out};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) args[n++] = (char *)fixed[i];
    for (size_t i = 0; extra && extra[i] && n < 38; i++) args[n++] = (char *)extra[i];
    args[n] = NULL;
    r->pid = fork();
    CHECK(r->pid >= 0);
    if (r->pid != 0) return;
    /* child: async-signal-safe calls only (the parent has threads) */
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2); /* the progress bar only goes to a tty anyway */
    for (int fd = 3; fd < 1024; fd++) close(fd);
    if (r->emfile) {
        struct rlimit rl = {EMFILE_NOFILE, EMFILE_NOFILE};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
        /* occupy the lowest descriptors until EMFILE_FREE are left */
        for (;;) {
            int fd = open("/dev/null", O_RDONLY);
            if (fd < 0) _exit(126);
            if (fd >= EMFILE_NOFILE - EMFILE_FREE - 1) break;
        }
    }
    execv(g_tool, args);
    _exit(127);
}

/* Waits for the tool (killed after RUN_LIMIT_S); returns its exit status
 * and its JSON summary in *o (NULL if none). */
static int reap(struct run *r, json_t **o)
{
    *o = NULL;
    if (r->pid <= 0) return -1;
    int st = 0;
    (void)wait_bounded(r->pid, RUN_LIMIT_S, r->name, &st);
    json_error_t err;
    *o = json_load_file(r->out, 0, &err);
    if (!*o) fprintf(stderr, "%s: %s: %s\n", r->name, r->out, err.text);
    CHECK(*o != NULL);
    unlink(r->out);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("%s: exit status %d\n", r->name, rc);
    return rc;
}

/* Sends r SIGINT and reaps it (exit status 1 checked, summary in *o).
 * Returns the seconds from the signal to the exit. */
static double sigint_reap(struct run *r, json_t **o)
{
    uint64_t t0 = p2p_now_ns();
    CHECK(kill(r->pid, SIGINT) == 0);
    CHECK(reap(r, o) == 1);
    return (double)(p2p_now_ns() - t0) / 1e9;
}

/* The count of failure reason label (0 when absent). */
static json_int_t reason(json_t *o, const char *label)
{
    json_t *v = json_object_get(json_object_get(o, "failures_by_reason"), label);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* Every legitimate attempt ended as a success or a handshake failure. */
static void check_attempts(json_t *o)
{
    CHECK(jint(o, "attempts") == jint(o, "successes") + jint(o, "handshake_failures"));
}

/* Every adversarial connection has exactly one outcome. */
static void check_adv(json_t *o)
{
    json_t *a = json_object_get(o, "adversarial");
    CHECK(jint(a, "started") == jint(a, "closed_by_target") + jint(a, "still_open") +
                                    jint(a, "timed_out") + jint(a, "connect_failed"));
}

/* A listener that never accepts: connections complete in its backlog and
 * then hear nothing.  Returns its descriptor; *enode its URL. */
static int blackhole(char *enode, size_t enodelen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u)};
    socklen_t sl = sizeof sa;
    CHECK(bind(fd, (struct sockaddr *)&sa, sl) == 0);
    CHECK(listen(fd, 64) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    uint8_t priv[32];
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(n.pubkey, priv));
    p2p_node_id(n.id, n.pubkey);
    n.ep.ip = p2p_ip4(127, 0, 0, 1);
    n.ep.tcp = ntohs(sa.sin_port);
    CHECK_OK(p2p_enode_format(enode, enodelen, &n));
    return fd;
}

/* A UDP port that never answers, beside the TCP blackhole port tcp.
 * Returns its descriptor; *enode its URL (tcp and discport). */
static int udp_hole(char *enode, size_t enodelen, uint16_t tcp)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u)};
    socklen_t sl = sizeof sa;
    CHECK(bind(fd, (struct sockaddr *)&sa, sl) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    uint8_t priv[32];
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(n.pubkey, priv));
    p2p_node_id(n.id, n.pubkey);
    n.ep.ip = p2p_ip4(127, 0, 0, 1);
    n.ep.tcp = tcp;
    n.ep.udp = ntohs(sa.sin_port);
    CHECK_OK(p2p_enode_format(enode, enodelen, &n));
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_stress_drain <devp2p>\n");
        return 2;
    }
    g_tool = argv[1];
    signal(SIGPIPE, SIG_IGN);
    static const p2p_protocol_t echo = {
        .name = "snap", .version = 1, .length = 8, .on_msg = echo_some};
    p2p_server_config_t cfg;
    su_config(&cfg, &echo, 1);
    cfg.max_peers = 200;
    cfg.max_pending = 100;
    cfg.no_dial = true;
    p2p_server_t *srv = NULL;
    CHECK_OK(p2p_server_start(&srv, &cfg));
    if (!srv) return tu_done("stress-drain");
    p2p_node_t self = su_node(srv);
    char enode[P2P_ENODE_MAX_TEXT], hole[P2P_ENODE_MAX_TEXT];
    CHECK_OK(p2p_enode_format(enode, sizeof enode, &self));
    int hfd = blackhole(hole, sizeof hole);
    json_t *o;

    /* drain-hello: the stop comes while the 64 handshakes are in flight */
    p2p_server_stats_t s0, s1;
    p2p_server_get_stats(srv, &s0);
    struct run hello = {.name = "drain-hello"};
    const char *hello_args[] = {"--concurrency", "64", "--ping-interval", "60", NULL};
    spawn(&hello, enode, "hold", "64", "10ms", hello_args);
    CHECK(reap(&hello, &o) == 0);
    if (o) {
        CHECK(jint(o, "attempts") == 64);
        CHECK(jint(o, "successes") == 64);
        CHECK(jint(o, "failures") == 0);
        check_attempts(o);
        CHECK(su_wait_peers(srv, 0, 10000));
        p2p_server_get_stats(srv, &s1);
        uint64_t bye = s1.disc_recv[P2P_DISC_REQUESTED] - s0.disc_recv[P2P_DISC_REQUESTED];
        printf("drain-hello: %llu Disconnect(requested) for %lld sessions\n",
               (unsigned long long)bye, (long long)jint(o, "successes"));
        CHECK(bye == (uint64_t)jint(o, "successes"));
        /* the rate counts the handshakes done in the 10 ms of load (64
         * cost the harness alone more CPU than that), not the ones the
         * drain finished */
        double load = json_real_value(json_object_get(o, "load_s"));
        double rate = json_real_value(json_object_get(o, "success_rate_per_s"));
        printf("drain-hello: %.1f successes/s over %.3f s of load, %lld in the drain\n", rate, load,
               (long long)jint(o, "successes_in_drain"));
        CHECK(load > 0);
        CHECK(rate * load < 64 - 0.5);
        CHECK(jint(o, "successes_in_drain") > 0);
        CHECK(fabs(rate * load + (double)jint(o, "successes_in_drain") - 64) < 0.5);
        json_decref(o);
    }

    /* the stalled cases at the same time */
    struct run flood = {.name = "echo-missing"}, badv = {.name = "blackhole-adv"};
    struct run bhold = {.name = "blackhole-hold"}, emf = {.name = "adv-emfile", .emfile = true};
    const char *flood_args[] = {"--window", "8", "--sources", "1", NULL};
    spawn(&flood, enode, "flood", "4", "1", flood_args);
    const char *adv_args[] = {"--adv-ratio", "1", "--sources", "1", NULL};
    spawn(&badv, hole, "adversarial", "3", "50ms", adv_args);
    const char *bhold_args[] = {"--concurrency", "3", "--sources", "1", NULL};
    spawn(&bhold, hole, "hold", "3", "50ms", bhold_args);
    struct run dbl = {.name = "double-signal"};
    spawn(&dbl, hole, "hold", "3", "60", bhold_args);
    char npeers[16];
    snprintf(npeers, sizeof npeers, "%d", EMFILE_PEERS);
    spawn(&emf, enode, "adversarial", npeers, "1", adv_args);

    usleep(500 * 1000);
    CHECK(kill(dbl.pid, SIGINT) == 0);
    usleep(20 * 1000); /* handled apart, not merged into one pending signal */
    CHECK(kill(dbl.pid, SIGINT) == 0);

    CHECK(reap(&flood, &o) == 1);
    if (o) {
        json_int_t sent = jint(o, "msgs_sent"), recv = jint(o, "msgs_received");
        printf("echo-missing: sent %lld, echoed %lld\n", (long long)sent, (long long)recv);
        CHECK(recv == ECHO_BUDGET);
        CHECK(sent > recv);
        CHECK(jint(o, "drops") == 0);
        CHECK(jint(o, "replies_missing") == sent - recv);
        CHECK(reason(o, "echo missing at the end") == sent - recv);
        CHECK(jint(o, "failures") == sent - recv);
        check_attempts(o);
        json_decref(o);
    }

    CHECK(reap(&badv, &o) == 1);
    if (o) {
        json_t *a = json_object_get(o, "adversarial");
        CHECK(jint(a, "started") == 3);
        CHECK(jint(a, "closed_by_target") == 0);
        CHECK(jint(a, "timed_out") == 1);  /* bad MAC: no Ack ever came */
        CHECK(jint(a, "still_open") == 2); /* garbage and slow handshake */
        CHECK(jint(a, "connect_failed") == 0);
        check_adv(o);
        CHECK(jint(o, "attempts") == 3);
        CHECK(jint(o, "successes") == 0);
        CHECK(jint(o, "failures") == 3);
        check_attempts(o);
        json_decref(o);
    }

    CHECK(reap(&bhold, &o) == 1);
    if (o) {
        CHECK(jint(o, "attempts") == 3);
        CHECK(jint(o, "successes") == 0);
        CHECK(jint(o, "failures") == 3);
        CHECK(reason(o, "handshake: timeout") == 3);
        check_attempts(o);
        json_decref(o);
    }

    CHECK(reap(&dbl, &o) == 1);
    if (o) {
        printf("double-signal: %lld handshakes timed out in the drain\n",
               (long long)reason(o, "handshake: timeout"));
        CHECK(jint(o, "failures") == 3);
        CHECK(reason(o, "handshake: timeout") == 3);
        check_attempts(o);
        json_decref(o);
    }

    CHECK(reap(&emf, &o) == 1); /* the legitimate connections fail too */
    if (o) {
        json_t *a = json_object_get(o, "adversarial");
        printf("adv-emfile: attempts %lld, successes %lld, failures %lld; adversarial %lld, "
               "failed to connect %lld\n",
               (long long)jint(o, "attempts"), (long long)jint(o, "successes"),
               (long long)jint(o, "failures"), (long long)jint(a, "started"),
               (long long)jint(a, "connect_failed"));
        CHECK(jint(a, "connect_failed") > 0);
        check_adv(o);
        check_attempts(o);
        /* churn fails only before the Hello: every failure is an attempt's */
        CHECK(jint(o, "attempts") == jint(o, "successes") + jint(o, "failures"));
        CHECK(jint(o, "failures") > 0);
        CHECK(reason(o, "socket: Too many open files") > 0);
        json_decref(o);
    }

    /* second-sigint: the drain cut short */
    struct run twice = {.name = "second-sigint"};
    spawn(&twice, hole, "hold", "3", "60", bhold_args);
    usleep(500 * 1000);
    CHECK(kill(twice.pid, SIGINT) == 0);
    usleep(500 * 1000);
    double after = sigint_reap(&twice, &o);
    printf("second-sigint: ended %.2f s after the second SIGINT\n", after);
    CHECK(after < 3.0);
    if (o) {
        CHECK(jint(o, "attempts") == 3);
        CHECK(jint(o, "successes") == 0);
        CHECK(jint(o, "failures") == 3);
        check_attempts(o);
        json_decref(o);
    }

    /* setup-sigint: the stop during the discv4 keys' setup */
    struct rlimit nofile;
    CHECK(getrlimit(RLIMIT_NOFILE, &nofile) == 0);
    if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < SETUP_KEYS + 16 + 64) {
        printf("setup-sigint: skipped (descriptor hard limit %llu)\n",
               (unsigned long long)nofile.rlim_max);
    } else {
        char uhole[P2P_ENODE_MAX_TEXT];
        int ufd = udp_hole(uhole, sizeof uhole, 1);
        struct run setup = {.name = "setup-sigint"};
        char nkeys[16];
        snprintf(nkeys, sizeof nkeys, "%d", SETUP_KEYS);
        spawn(&setup, uhole, "discv4", nkeys, "60", NULL);
        usleep(300 * 1000);
        double took = sigint_reap(&setup, &o);
        printf("setup-sigint: ended %.2f s after the SIGINT\n", took);
        CHECK(took < 1.5);
        if (o) {
            CHECK(jint(o, "attempts") == 0);
            CHECK(jint(o, "successes") == 0);
            json_decref(o);
        }
        close(ufd);
    }

    close(hfd);
    CHECK(su_wait_peers(srv, 0, 10000));
    p2p_server_stop(srv);
    return tu_done("stress-drain");
}
