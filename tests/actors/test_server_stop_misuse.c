/*
 * tests/actors/test_server_stop_misuse.c: p2p_server_stop called from one
 * of the server's own threads, which the API contract forbids (server.h:
 * "one controlling thread (not a server thread, not a callback)").  There
 * the stop would wait for the calling thread to end, forever; instead it
 * logs a CRIT line naming the mistake and aborts, so the application's
 * developer gets a core dump and a reason, not a silent hang.
 *
 * Each case runs in a child process (the abort ends it): two loopback
 * servers share the "echo" protocol, b dials a, and one of a's callbacks
 * calls p2p_server_stop(a):
 *   - on_start and on_stop, on a's connection thread;
 *   - the event callback (event_cb), on a's run loop (p2p-run).
 * The parent waits for each child at most CHILD_MAX_S seconds (then kills
 * it: a hang fails the test) and checks: killed by SIGABRT, the CRIT line
 * on its stderr.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/actors/srv_util.h"

#define CHILD_MAX_S 20

static p2p_server_t *victim;

static int start_stops(p2p_peer_t *peer, void *ctx, void **state)
{
    (void)peer, (void)ctx, (void)state;
    p2p_server_stop(victim);
    return 0;
}

static void stop_stops(p2p_peer_t *peer, void *ctx, void *state, uint8_t reason)
{
    (void)peer, (void)ctx, (void)state, (void)reason;
    p2p_server_stop(victim);
}

static void event_stops(void *ctx, const p2p_peer_event_t *ev)
{
    (void)ctx;
    if (ev->type == P2P_PEER_EVENT_ADD) p2p_server_stop(victim);
}

static const p2p_protocol_t proto_plain = {"echo", 1, 2, NULL, NULL, NULL, NULL};
static const p2p_protocol_t proto_start = {"echo", 1, 2, NULL, start_stops, NULL, NULL};
static const p2p_protocol_t proto_stop = {"echo", 1, 2, NULL, NULL, NULL, stop_stops};

/* The child: a runs proto (whose callback stops a), b dials a; after the
 * peers meet, b disconnects (for on_stop).  Exits 0 if nothing aborted
 * within the wait (the parent counts that as a failure). */
static void child(const p2p_protocol_t *proto, p2p_peer_event_fn ev)
{
    p2p_server_config_t ca, cb;
    su_config(&ca, proto, 1);
    ca.event_cb = ev;
    su_config(&cb, &proto_plain, 1);
    p2p_server_t *b = NULL;
    if (p2p_server_start(&victim, &ca) != 0 || p2p_server_start(&b, &cb) != 0) _exit(3);
    p2p_node_t na = su_node(victim);
    if (p2p_server_add_peer(b, &na) != 0) _exit(4);
    su_wait_peers(b, 1, 5000);
    p2p_server_stop(b); /* a's peer goes: on_stop */
    sleep(5);
    _exit(0);
}

/* Runs child(proto, ev) in a process whose stderr goes to a file; returns
 * whether it aborted with the CRIT line. */
static bool aborts(const char *what, const p2p_protocol_t *proto, p2p_peer_event_fn ev)
{
    char path[] = "/tmp/p2p-stopmisuse-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return false;
    unlink(path);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        child(proto, ev);
    }
    int st = 0;
    pid_t w = tu_wait_child(pid, CHILD_MAX_S, &st);
    if (w == 0) printf("%s: still running after %d s (a hang)\n", what, CHILD_MAX_S);
    char text[16384] = {0};
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = 0;
    bool abrt = w == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    bool said = strstr(text, "p2p_server_stop called from a server thread") != NULL;
    printf("%s: %s, CRIT line %s\n", what,
           abrt                        ? "aborted"
           : w == pid && WIFEXITED(st) ? "exited"
                                       : "killed",
           said ? "seen" : "missing");
    if (!said) printf("child's stderr:\n%s\n", text);
    return abrt && said;
}

int main(void)
{
    CHECK(aborts("stop from on_start (connection thread)", &proto_start, NULL));
    CHECK(aborts("stop from on_stop (connection thread)", &proto_stop, NULL));
    CHECK(aborts("stop from the event callback (p2p-run)", &proto_plain, event_stops));
    return tu_done("server_stop_misuse");
}
