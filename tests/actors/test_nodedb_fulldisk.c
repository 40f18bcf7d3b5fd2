/*
 * tests/actors/test_nodedb_fulldisk.c: a full disk under the data directory.
 *
 * The test enters a private mount namespace (unshare(CLONE_NEWNS), needs
 * root or CAP_SYS_ADMIN) and mounts small tmpfs file systems, so ENOSPC is
 * real and nothing outside the test sees it.  Without that capability the
 * test is skipped (exit 77): RLIMIT_FSIZE would give EFBIG and a signal,
 * not a full disk.
 *
 *   running    the node DB holds 300 records; the file system is then
 *              filled; writes go on: each fails with P2P_EDB and a message
 *              naming "No space left on device" (or succeeds while the log
 *              file has room), the handle stays usable for reads and, once
 *              space is freed, for writes (no restart); after close and
 *              reopen with recovery every acknowledged record is there, no
 *              wipe, no bad record.
 *   crash      records written, then the process dies without a checkpoint
 *              (pages only in the log) and the disk fills: open fails with
 *              a message naming the full disk, the files stay; once space
 *              is freed, open recovers every record (no wipe).
 *   key        generating the node key on a full file system fails with a
 *              message naming the path and "No space left on device"; no
 *              partial nodekey file is left behind.
 *   discovery  a discovery instance whose DB sits on a file system that
 *              fills up keeps answering pings with pongs; the DB failures
 *              are counted (core.db_errors).
 *   devp2pd    (argv[1]: the node binary) started with its datadir on a
 *              full file system exits with status 1 and a clear message.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actors/datadir.h"
#include "actors/nodedb.h"
#include "core/log.h"
#include "tests/core/mountns.h"
#include "tests/core/sanitize.h"
#include "tests/actors/disc_nodes.h"

static char root[] = "/tmp/p2p-fulldisk-XXXXXX";

/* Mounts a tmpfs of size_kb at root/name; returns the path (static). */
static const char *mount_small(const char *name, unsigned size_kb)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    CHECK(tu_mount_tmpfs(path, size_kb) == 0);
    return path;
}

/* Fills the file system holding dir; returns the filler's path. */
static void fill(const char *dir, char *filler, size_t cap)
{
    snprintf(filler, cap, "%s/filler", dir);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    static uint8_t blk[4096];
    while (write(fd, blk, sizeof blk) > 0) {
    }
    while (write(fd, blk, 1) > 0) {
    }
    CHECK(errno == ENOSPC);
    close(fd);
}

/* Sends the log to a new file root/name (returned, open for reading back);
 * *old receives the descriptor to restore. */
static int log_to(const char *name, int *old)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", root, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    *old = p2p_log_set_fd(fd);
    return fd;
}

static void record(p2p_node_t *n, uint64_t i)
{
    memset(n, 0, sizeof *n);
    for (int k = 0; k < 32; k++) n->id[k] = (uint8_t)(i * 7 + (uint64_t)k * 13 + 1);
    memcpy(n->id, &i, sizeof i);
    for (int k = 0; k < 64; k++) n->pubkey[k] = (uint8_t)(i + (uint64_t)k);
    n->ep.ip = p2p_ip4(10, 1, (uint8_t)(i >> 8), (uint8_t)i);
    n->ep.udp = (uint16_t)(2000 + i);
    n->ep.tcp = (uint16_t)(3000 + i);
    n->seq = i + 1;
}

static void test_running(void)
{
    const char *dir = mount_small("run", 2048);
    p2p_nodedb_t *db = NULL;
    char msg[256];
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    static bool acked[4000];
    uint8_t enr[200];
    memset(enr, 0xab, sizeof enr);
    uint64_t i = 0;
    for (; i < 300; i++) {
        p2p_node_t n;
        record(&n, i);
        CHECK_OK(p2p_nodedb_put_node(db, &n, enr, sizeof enr));
        acked[i] = true;
    }
    char filler[300];
    fill(dir, filler, sizeof filler);
    int oldlog, logfd = log_to("log.txt", &oldlog);
    unsigned fails = 0, ok_after = 0;
    bool nospace_msg = false;
    for (; i < 3000 && fails < 50; i++) {
        p2p_node_t n;
        record(&n, i);
        int rc = p2p_nodedb_put_node(db, &n, enr, sizeof enr);
        if (rc == 0) {
            acked[i] = true;
            ok_after++;
            continue;
        }
        CHECK_ERR(rc, P2P_EDB);
        fails++;
        const char *em = p2p_nodedb_errmsg(db);
        if (em && strstr(em, "No space left on device")) nospace_msg = true;
    }
    p2p_log_set_fd(oldlog);
    CHECK(fails >= 50);
    CHECK(nospace_msg);
    /* the log says why, and does not flood: rate-limited per call site */
    static char text[1 << 16];
    ssize_t tl = pread(logfd, text, sizeof text - 1, 0);
    close(logfd);
    CHECK(tl > 0);
    text[tl > 0 ? tl : 0] = 0;
    unsigned lines = 0;
    for (char *q = text; (q = strchr(q, '\n')); q++) lines++;
    CHECK(strstr(text, "No space left on device") != NULL);
    CHECK(lines <= 20);
    printf("%u failed writes logged in %u lines\n", fails, lines);
    printf("full disk: %u writes acknowledged after the fill, %u failed; last error: %s\n",
           ok_after, fails, p2p_nodedb_errmsg(db));
    /* reads still work */
    p2p_node_t got, w5;
    uint8_t genr[P2P_NODEDB_ENR_MAX];
    size_t glen = sizeof genr;
    record(&w5, 5);
    CHECK_OK(p2p_nodedb_get_node(db, &got, genr, &glen, w5.id));
    CHECK(got.seq == w5.seq);
    /* space comes back: writes succeed again without a restart */
    CHECK(unlink(filler) == 0);
    unsigned ok_later = 0;
    for (uint64_t j = i; j < i + 100; j++) {
        p2p_node_t n;
        record(&n, j);
        int rc = p2p_nodedb_put_node(db, &n, enr, sizeof enr);
        CHECK_OK(rc);
        if (rc == 0) {
            acked[j] = true;
            ok_later++;
        }
    }
    CHECK(ok_later == 100);
    uint64_t end = i + 100;
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    CHECK(st.errors >= 50);
    p2p_nodedb_close(db);
    /* reopen: every acknowledged record */
    db = NULL;
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    unsigned found = 0, want = 0;
    for (uint64_t j = 0; j < end; j++) {
        if (!acked[j]) continue;
        want++;
        p2p_node_t w, g;
        record(&w, j);
        glen = sizeof genr;
        int rc = p2p_nodedb_get_node(db, &g, genr, &glen, w.id);
        if (rc == 0 && memcmp(g.pubkey, w.pubkey, 64) == 0 && g.seq == w.seq && glen == sizeof enr)
            found++;
        else
            fprintf(stderr, "record %llu lost (rc %d)\n", (unsigned long long)j, rc);
    }
    CHECK(found == want);
    p2p_nodedb_stats(db, &st);
    CHECK(st.wipes == 0 && st.bad_records == 0 && st.errors == 0);
    printf("reopened: %u of %u acknowledged records present\n", found, want);
    p2p_nodedb_close(db);
}

/* A crash leaves pages that only the log holds; the disk then fills.
 * Recovery must write those pages and cannot: open fails naming the full
 * disk and leaves the files alone (it once took the panic for damage and
 * wiped every record).  Once space is back, open recovers all of them. */
static void test_crash_then_full(void)
{
    const char *dir = mount_small("crash", 4096);
    enum { N = 900 }; /* under the 1024 writes that force a checkpoint */
    uint8_t enr[280];
    memset(enr, 0xcd, sizeof enr);
    /* the child tells us through the pipe that its records are written
     * (0) or that memcheck found errors in it (1), then waits for our
     * SIGKILL: killed from outside, no exit path runs (nor memcheck's leak
     * report of the database it never closed) */
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        p2p_nodedb_t *db = NULL;
        char m[256];
        if (p2p_nodedb_open(&db, m, sizeof m, dir, 0) != 0) _exit(2);
        for (uint64_t i = 0; i < N; i++) {
            p2p_node_t n;
            record(&n, i);
            if (p2p_nodedb_put_node(db, &n, enr, sizeof enr) != 0) _exit(3);
        }
        /* killed, it has no exit code for memcheck's --error-exitcode */
        char done = VALGRIND_COUNT_ERRORS ? 1 : 0;
        if (write(ready[1], &done, 1) != 1) _exit(4);
        for (int i = 0; i < 100; i++) sleep(1); /* bounded: the parent kills us at once */
        _exit(5);
    }
    close(ready[1]);
    char done = 2;
    CHECK(read(ready[0], &done, 1) == 1);
    close(ready[0]);
    CHECK(done == 0); /* 1: memcheck found errors in the child */
    /* no close, no checkpoint: as kill -9 leaves it */
    CHECK(kill(pid, SIGKILL) == 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char dbfile[300];
    snprintf(dbfile, sizeof dbfile, "%s/nodes/nodes.db", dir);
    struct stat before;
    CHECK(stat(dbfile, &before) == 0);
    char filler[300];
    fill(dir, filler, sizeof filler);

    int oldlog, logfd = log_to("log-crash.txt", &oldlog);
    p2p_nodedb_t *db = NULL;
    char msg[512];
    int rc = p2p_nodedb_open(&db, msg, sizeof msg, dir, 0);
    p2p_log_set_fd(oldlog);
    close(logfd);
    printf("open on a full disk after a crash: rc %d: %s\n", rc, msg);
    CHECK_ERR(rc, P2P_EDB);
    CHECK(db == NULL);
    CHECK(strstr(msg, "No space left on device") != NULL);
    CHECK(strstr(msg, "left as it is") != NULL);
    struct stat after;
    CHECK(stat(dbfile, &after) == 0); /* not wiped */
    CHECK(after.st_ino == before.st_ino);

    CHECK(unlink(filler) == 0);
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    unsigned found = 0;
    for (uint64_t i = 0; i < N; i++) {
        p2p_node_t w, g;
        record(&w, i);
        if (p2p_nodedb_get_node(db, &g, NULL, NULL, w.id) == 0 && g.seq == w.seq) found++;
    }
    p2p_nodedb_stats_t st;
    p2p_nodedb_stats(db, &st);
    printf("space back: %u of %u records recovered, %llu wipes\n", found, (unsigned)N,
           (unsigned long long)st.wipes);
    CHECK(found == N);
    CHECK(st.wipes == 0);
    p2p_nodedb_close(db);
}

static void test_key(void)
{
    const char *dir = mount_small("key", 256);
    p2p_datadir_t dd;
    char msg[512];
    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));
    char filler[300];
    fill(dir, filler, sizeof filler);
    uint8_t priv[32];
    int created = 0;
    msg[0] = 0;
    int rc = p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd);
    CHECK_ERR(rc, P2P_ESYS);
    CHECK(strstr(msg, "No space left on device") != NULL);
    CHECK(strstr(msg, "nodekey") != NULL);
    printf("node key on a full disk: %s\n", msg);
    char kp[300];
    struct stat sb;
    snprintf(kp, sizeof kp, "%s/nodekey", dir);
    CHECK(stat(kp, &sb) != 0 && errno == ENOENT);
    snprintf(kp, sizeof kp, "%s/nodekey.tmp", dir);
    CHECK(stat(kp, &sb) != 0 && errno == ENOENT);
    /* with space, the key is written */
    CHECK(unlink(filler) == 0);
    CHECK_OK(p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd));
    CHECK(created == 1);
    p2p_datadir_close(&dd);
}

static void test_discovery(void)
{
    const char *dir = mount_small("disc", 2048);
    dn_node_t a;
    CHECK_OK(dn_start(&a, NULL, 0, dir, NULL));
    if (!a.d) return;
    char filler[300];
    fill(dir, filler, sizeof filler);
    uint16_t port = p2p_discovery_port(a.d);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, 0);
    CHECK(bind(s, (struct sockaddr *)&ss, sl) == 0);
    sl = sizeof ss;
    CHECK(getsockname(s, (struct sockaddr *)&ss, &sl) == 0);
    p2p_endpoint_t me;
    memset(&me, 0, sizeof me);
    CHECK_OK(p2p_ip_from_sockaddr(&me.ip, &me.udp, (struct sockaddr *)&ss));
    unsigned pongs = 0;
    for (int i = 0; i < 40; i++) {
        uint8_t key[32], buf[P2P_DISCV4_MAX_SIZE];
        dn_key(key); /* a new sender each time: new DB records */
        p2p_discv4_packet_t p;
        memset(&p, 0, sizeof p);
        p.type = P2P_DISCV4_PING;
        p.expiration = p2p_wall_ms() / 1000 + 20;
        p.u.ping.version = 4;
        p.u.ping.from = me;
        p.u.ping.to.ip = lo;
        p.u.ping.to.udp = port;
        size_t n = 0;
        CHECK_OK(p2p_discv4_encode(buf, &n, NULL, &p, key));
        struct sockaddr_storage ts;
        socklen_t tl = p2p_ip_to_sockaddr(&ts, &lo, port);
        CHECK(sendto(s, buf, n, 0, (struct sockaddr *)&ts, tl) == (ssize_t)n);
        /* the pong, and the ping-back we answer: only a bonded sender's
         * times are written to the node DB */
        bool ponged = false, answered = false;
        for (int k = 0; k < 4 && !(ponged && answered); k++) {
            struct pollfd pfd = {.fd = s, .events = POLLIN};
            if (poll(&pfd, 1, 1000) <= 0) break;
            ssize_t r = recv(s, buf, sizeof buf, 0);
            p2p_discv4_packet_t q;
            if (r <= 0 || p2p_discv4_decode(&q, buf, (size_t)r) != 0) continue;
            if (q.type == P2P_DISCV4_PONG && !ponged) {
                ponged = true;
                pongs++;
            } else if (q.type == P2P_DISCV4_PING && !answered) {
                p2p_discv4_packet_t rep;
                memset(&rep, 0, sizeof rep);
                rep.type = P2P_DISCV4_PONG;
                rep.expiration = p2p_wall_ms() / 1000 + 20;
                rep.u.pong.to.ip = lo;
                rep.u.pong.to.udp = port;
                memcpy(rep.u.pong.reply_tok, q.hash, 32);
                CHECK_OK(p2p_discv4_encode(buf, &n, NULL, &rep, key));
                CHECK(sendto(s, buf, n, 0, (struct sockaddr *)&ts, tl) == (ssize_t)n);
                answered = true;
            }
        }
        CHECK(answered);
    }
    CHECK(pongs == 40);
    p2p_discovery_info_t *in = dn_info(&a);
    CHECK(in != NULL);
    if (in) {
        printf("discovery on a full disk: %u/40 pings answered, db_errors %llu\n", pongs,
               (unsigned long long)in->core.db_errors);
        CHECK(in->core.db_errors > 0);
        free(in);
    }
    close(s);
    p2p_discovery_stop(a.d);
    CHECK(unlink(filler) == 0);
}

static void test_devp2pd(const char *bin)
{
    const char *dir = mount_small("node", 256);
    char filler[300];
    fill(dir, filler, sizeof filler);
    char datadir[300], errpath[300];
    snprintf(datadir, sizeof datadir, "%s/dd", dir);
    snprintf(errpath, sizeof errpath, "%s/err.txt", root);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        dup2(fd, 1);
        alarm(20);
        execl(bin, bin, "--datadir", datadir, "--port", "0", "--nodiscover", "--nodial",
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    char text[4096] = {0};
    int fd = open(errpath, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    CHECK(n > 0);
    CHECK(strstr(text, "No space left on device") != NULL);
    printf("devp2pd on a full disk: exit %d: %s", WEXITSTATUS(status), text);
    CHECK(unlink(filler) == 0);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

int main(int argc, char **argv)
{
    if (tu_private_mounts() != 0) {
        printf("SKIP: no private mount namespace (%s): needs root / CAP_SYS_ADMIN\n",
               strerror(errno));
        return 77;
    }
    CHECK(mkdtemp(root) != NULL);
    test_running();
    test_crash_then_full();
    test_key();
    test_discovery();
    if (argc > 1) test_devp2pd(argv[1]);
    /* the mounts vanish with the namespace; unmount to remove the dirs */
    static const char *const names[] = {"run", "crash", "key", "disc", "node"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        (void)umount2(p, MNT_DETACH);
    }
    CHECK(nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
    return tu_done("nodedb_fulldisk");
}
