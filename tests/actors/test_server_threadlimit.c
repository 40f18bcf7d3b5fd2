/*
 * tests/actors/test_server_threadlimit.c: a thread limit (a cgroup's
 * pids.max, as systemd's TasksMax or a container's pids limit set it)
 * reached while connections arrive and dials start.
 *
 * The process moves into a new pids cgroup whose limit is its thread count
 * at that moment, so no connection thread can be created.  An inbound
 * connection is closed at once (the client sees EOF, not a hang), a static
 * dial fails to start; both are counted (conn_threads_failed), no pending
 * slot, descriptor or peer is left behind, the log lines name the cause
 * (pthread_create's EAGAIN), and the server stays up.  Once
 * the limit is lifted, an inbound handshake completes (the static node is
 * dialled again once its 35 s in the dial history are over, not waited
 * for here).  While the limit holds, a sampler thread reads
 * conn_threads_spawned over and over: it stays 0 (a thread that could not
 * be created is never counted, not counted and then taken back, which a
 * scrape in between would see as a counter going down).
 *
 * Needs root and a writable pids cgroup (v1 /sys/fs/cgroup/pids or v2 with
 * the pids controller); skipped (77) without one.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};

static char cg_dir[256], cg_parent_procs[256];

static bool write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text);
}

static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* Creates a pids cgroup and moves this process into it.  v1 first, then
 * v2 (the pids controller must be enabled for the root's children). */
static bool cg_enter(void)
{
    static const char *const roots[] = {"/sys/fs/cgroup/pids", "/sys/fs/cgroup"};
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        snprintf(cg_dir, sizeof cg_dir, "%s/devp2p-c-test-%d", roots[i], (int)getpid());
        snprintf(cg_parent_procs, sizeof cg_parent_procs, "%s/cgroup.procs", roots[i]);
        if (mkdir(cg_dir, 0755) != 0) continue;
        char procs[300], max[300];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", cg_dir);
        snprintf(max, sizeof max, "%s/pids.max", cg_dir);
        if (access(max, W_OK) == 0 && write_file(procs, pid)) return true;
        rmdir(cg_dir);
    }
    return false;
}

static bool cg_limit(const char *value)
{
    char max[300];
    snprintf(max, sizeof max, "%s/pids.max", cg_dir);
    return write_file(max, value);
}

static void cg_leave(void)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    (void)write_file(cg_parent_procs, pid);
    (void)rmdir(cg_dir);
}

/* The sampler: reads conn_threads_spawned of srv until told to stop (at
 * most 10 s), keeping the largest value seen. */
typedef struct sampler {
    p2p_server_t *srv;
    _Atomic bool stop;
    uint64_t max_spawned, reads;
} sampler_t;

static void *sampler_run(void *arg)
{
    sampler_t *sm = arg;
    uint64_t end = p2p_now_ns() + 10 * P2P_NS_PER_S;
    p2p_server_stats_t st;
    while (!atomic_load(&sm->stop) && p2p_now_ns() < end) {
        p2p_server_get_stats(sm->srv, &st);
        if (st.conn_threads_spawned > sm->max_spawned) sm->max_spawned = st.conn_threads_spawned;
        sm->reads++;
    }
    return NULL;
}

/* True when the server closes the connection within timeout_ms (EOF or a
 * reset) without sending anything. */
static bool closed_silently(int fd, unsigned timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)timeout_ms) != 1) return false;
    char b;
    ssize_t n = recv(fd, &b, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

int main(void)
{
    if (geteuid() != 0 || !cg_enter()) {
        printf("server_threadlimit: no writable pids cgroup (needs root), skipped\n");
        return 77;
    }
    p2p_server_config_t ca, cb;
    su_config(&ca, &proto_echo, 1);
    su_config(&cb, &proto_echo, 1);
    p2p_server_t *a = NULL, *b = NULL;
    CHECK_OK(p2p_server_start(&a, &ca));
    CHECK_OK(p2p_server_start(&b, &cb));
    p2p_node_t na = su_node(a), nb = su_node(b);
    int fds0 = su_count_fds();

    /* the log goes to a file while the limit holds */
    su_log_t lg;
    su_log_capture(&lg);

    /* started before the limit: counted in it */
    static sampler_t sm;
    sm.srv = a;
    pthread_t smt;
    CHECK(pthread_create(&smt, NULL, sampler_run, &sm) == 0);

    char lim[32];
    snprintf(lim, sizeof lim, "%d", thread_count());
    CHECK(cg_limit(lim));

    /* inbound: closed at once, counted, the slot released */
    for (int i = 0; i < 3; i++) {
        rawpeer_t rp;
        CHECK(rp_connect(&rp, na.ep.tcp) == 0);
        CHECK(closed_silently(rp.fd, 5000));
        rp_close(&rp);
    }
    CHECK(SU_WAIT_STAT(a, conn_threads_failed, 3, 3000));
    /* a static dial cannot start either */
    CHECK_OK(p2p_server_add_peer(a, &nb));
    CHECK(SU_WAIT_STAT(a, conn_threads_failed, 4, 3000));
    /* more failed spawns while the sampler reads */
    for (int i = 0; i < 200; i++) {
        rawpeer_t rp;
        CHECK(rp_connect(&rp, na.ep.tcp) == 0);
        CHECK(closed_silently(rp.fd, 5000));
        rp_close(&rp);
    }
    CHECK(SU_WAIT_STAT(a, conn_threads_failed, 204, 3000));
    atomic_store(&sm.stop, true);
    pthread_join(smt, NULL);
    printf("sampler: %llu reads, largest conn_threads_spawned %llu\n", (unsigned long long)sm.reads,
           (unsigned long long)sm.max_spawned);
    CHECK(sm.max_spawned == 0);
    p2p_server_stats_t st;
    p2p_server_get_stats(a, &st);
    printf("with the limit: %llu connections dropped, %llu threads spawned, peers %d\n",
           (unsigned long long)st.conn_threads_failed, (unsigned long long)st.conn_threads_spawned,
           p2p_server_peer_count(a));
    CHECK(st.conn_threads_spawned == 0);
    CHECK(st.peers_added == 0);
    CHECK(p2p_server_peer_count(a) == 0);

    CHECK(cg_limit("max"));
    /* the log names the error (pthread_create's EAGAIN), not "see errno"
     * (the dialer counts the failure before it logs it: su_log_line waits) */
    char in[512], out[512];
    const char *li = su_log_line(&lg, "Inbound connection thread failed", in, sizeof in, 3000);
    const char *lo = su_log_line(&lg, "Dial failed to start", out, sizeof out, 3000);
    su_log_restore(&lg);
    if (!li || !strstr(li, strerror(EAGAIN))) printf("inbound: %s\n", li ? li : "-");
    if (!lo || !strstr(lo, strerror(EAGAIN))) printf("dial: %s\n", lo ? lo : "-");
    CHECK(li && strstr(li, strerror(EAGAIN)));
    CHECK(lo && strstr(lo, strerror(EAGAIN)));
    /* every pending slot came back: a handshake completes */
    rawpeer_t rp;
    CHECK(su_dial(&rp, na.ep.tcp, na.pubkey, 5000));
    rp_close(&rp);
    p2p_server_get_stats(a, &st);
    CHECK(st.conn_threads_spawned >= 1);
    CHECK(st.conn_threads_failed == 204);

    p2p_server_stop(a);
    p2p_server_stop(b);
    su_log_close(&lg);
    /* descriptors back to the baseline (the servers' own closed too) */
    CHECK(su_count_fds() <= fds0);
    cg_leave();
    return tu_done("server_threadlimit");
}
