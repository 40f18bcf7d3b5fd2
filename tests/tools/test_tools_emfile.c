/*
 * tests/tools/test_tools_emfile.c: devp2pd's local endpoints (the admin
 * socket's thread p2p-admin and the Prometheus thread p2p-metrics, started
 * in-process without a node) when the process has no descriptor left.
 *
 * With RLIMIT_NOFILE at the current descriptor count, a client connects
 * to each: accept fails with EMFILE and the connection stays queued, so a
 * poll on the listening socket returns at once forever.  Each thread must
 * pause instead of spinning: its CPU time over 1 s (from
 * /proc/self/task/TID/schedstat) stays under 20 ms (a spinning thread
 * takes over 100 ms even on a loaded machine; a paused one well under 1)
 * and its accept-pause counter grows by about 5 per second.  Once the
 * limit is restored both clients are answered.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "tests/core/sanitize.h"
#include "tests/tu.h"
#include "tests/tools/admin_fixture.h"
#include "tools/admin_rpc.h"
#include "tools/metrics_http.h"

/* The thread id of this process's thread named name, or -1. */
static long find_tid(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    long tid = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && tid < 0) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (n > 0 && comm[n - 1] == '\n') comm[n - 1] = 0;
        if (strcmp(comm, name) == 0) tid = strtol(e->d_name, NULL, 10);
    }
    closedir(d);
    return tid;
}

/* Seconds on CPU of thread tid (schedstat's first field, ns), -1 on error.
 * Reads with the descriptor opened before the limit was lowered. */
static double thread_cpu(int fd)
{
    char buf[128] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    return (double)strtoull(buf, NULL, 10) / 1e9;
}

static int open_schedstat(long tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Reads until a newline or EOF (5 s at most); returns the bytes read. */
static size_t read_reply(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (len + 1 < cap) {
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        if (memchr(buf, '\n', len)) break;
    }
    buf[len] = 0;
    return len;
}

int main(void)
{
    if (RUNNING_ON_VALGRIND) {
        printf("tools_emfile: skipped under valgrind (it keeps descriptors of its own)\n");
        CHECK(1);
        return tu_done("tools_emfile");
    }
    char logpath[] = "/tmp/p2p-emfile-log-XXXXXX";
    int logfd = mkstemp(logpath);
    CHECK(logfd >= 0);
    int oldlog = p2p_log_set_fd(logfd);

    char dir[] = "/tmp/p2p-emfile-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char ipc[sizeof dir + 16];
    snprintf(ipc, sizeof ipc, "%s/devp2pd.ipc", dir);
    /* one set of endpoint counters for both, as devp2pd has */
    static node_endpoint_stats_t eps;
    admin_rpc_config_t ac = admin_fixture_config(ipc, "test", &eps);
    char msg[256];
    admin_rpc_t *rpc = NULL;
    CHECK_OK(admin_rpc_start(&rpc, msg, sizeof msg, &ac));
    metrics_http_config_t mc = {.ip = p2p_ip4(127, 0, 0, 1), .endpoints = &eps};
    metrics_http_t *mh = NULL;
    CHECK_OK(metrics_http_start(&mh, msg, sizeof msg, &mc));
    if (!rpc || !mh) return tu_done("tools_emfile");

    long tids[2] = {-1, -1};
    const char *names[2] = {"p2p-admin", "p2p-metrics"};
    for (int k = 0; k < 100 && (tids[0] < 0 || tids[1] < 0); k++) {
        for (int i = 0; i < 2; i++)
            if (tids[i] < 0) tids[i] = find_tid(names[i]);
        usleep(10 * 1000);
    }
    CHECK(tids[0] > 0 && tids[1] > 0);
    int sfd[2] = {open_schedstat(tids[0]), open_schedstat(tids[1])};
    CHECK(sfd[0] >= 0 && sfd[1] >= 0);

    int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(ufd >= 0 && tfd >= 0);
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    /* every descriptor below 64 in use first: poll fails with EINVAL when
     * given more descriptors than RLIMIT_NOFILE (p2p-admin polls 18) */
    int fill[64], nfill = 0;
    while (nfill < 64) {
        int d = dup(0);
        CHECK(d >= 0);
        if (d < 0) break;
        fill[nfill++] = d;
        if (d >= 63) break;
    }
    int probe = dup(0);
    CHECK(probe >= 64);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe; /* no descriptor left */
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);

    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "%s", ipc);
    CHECK(connect(ufd, (struct sockaddr *)&su, sizeof su) == 0);
    struct sockaddr_in si = {.sin_family = AF_INET, .sin_port = htons(metrics_http_port(mh))};
    si.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(tfd, (struct sockaddr *)&si, sizeof si) == 0);
    usleep(100 * 1000); /* both threads have seen the queued connection */
    double c0[2] = {thread_cpu(sfd[0]), thread_cpu(sfd[1])};
    uint64_t p0[2] = {admin_rpc_accept_pauses(rpc), metrics_http_accept_pauses(mh)};
    uint64_t t0 = p2p_now_ns();
    usleep(1000 * 1000);
    double wall = (double)(p2p_now_ns() - t0) / 1e9;
    uint64_t p1[2] = {admin_rpc_accept_pauses(rpc), metrics_http_accept_pauses(mh)};
    for (int i = 0; i < 2; i++) {
        double cpu = thread_cpu(sfd[i]) - c0[i];
        printf("%s: %.3f s on CPU in %.2f s without descriptors, %llu accept pauses\n", names[i],
               cpu, wall, (unsigned long long)p1[i]);
        CHECK(c0[i] >= 0 && cpu < 0.02);
        /* counted: one pause per 200 ms, not one per spin */
        CHECK(p0[i] >= 1 && p1[i] - p0[i] >= 3 && (double)(p1[i] - p0[i]) <= wall * 5 + 2);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);

    /* recovery: both queued clients are served */
    const char *req = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"admin_peers\"}\n";
    CHECK(send(ufd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    char buf[4096];
    read_reply(ufd, buf, sizeof buf);
    CHECK(strstr(buf, "\"id\":7") && strstr(buf, "\"result\":[]"));
    /* admin_metrics shows both endpoints' pauses, at least those counted */
    const char *mreq = "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"admin_metrics\"}\n";
    CHECK(send(ufd, mreq, strlen(mreq), MSG_NOSIGNAL) == (ssize_t)strlen(mreq));
    read_reply(ufd, buf, sizeof buf);
    const char *ap = strstr(buf, "\"adminAcceptPauses\":");
    const char *mp = strstr(buf, "\"metricsAcceptPauses\":");
    CHECK(ap && mp);
    if (ap && mp) {
        unsigned long long a = strtoull(ap + strlen("\"adminAcceptPauses\":"), NULL, 10);
        unsigned long long b = strtoull(mp + strlen("\"metricsAcceptPauses\":"), NULL, 10);
        printf("admin_metrics: adminAcceptPauses %llu, metricsAcceptPauses %llu\n", a, b);
        CHECK(a >= p1[0] && b >= p1[1]);
    }
    const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send(tfd, get, strlen(get), MSG_NOSIGNAL) == (ssize_t)strlen(get));
    read_reply(tfd, buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    for (int i = 0; i < nfill; i++) close(fill[i]);
    close(ufd);
    close(tfd);
    close(sfd[0]);
    close(sfd[1]);
    metrics_http_stop(mh);
    admin_rpc_stop(rpc);
    rmdir(dir);
    p2p_log_set_fd(oldlog);
    close(logfd);
    unlink(logpath);
    return tu_done("tools_emfile");
}
