/*
 * tests/actors/test_nodedb_kill.c: fault test of the node database.
 *
 * Repeatedly forks a child that opens the DB and writes records in a tight
 * loop, one committed transaction per call, reporting each record's
 * sequence number to the parent through a pipe only AFTER its commits
 * returned.  The parent SIGKILLs the child at a random moment, 10-200 ms
 * after the child's open (every 4th cycle: after the fork, so sometimes
 * during the open and its recovery), reopens the DB with
 * recovery and checks that it opens cleanly (no wipe, no error) and holds
 * every record the child reported.  The child also holds the datadir lock,
 * which the parent must get back after each kill.  The cycle count comes from
 * P2P_NODEDB_KILL_CYCLES; by default 100 in the normal build (the test fails
 * if fewer than 100 cycles ran there without the variable), 30 under
 * sanitizers, valgrind or P2P_TEST_QUICK=1 (tests/core/sanitize.h).  After
 * the last cycle every record ever reported committed is checked.
 *
 * Record i: node id/pubkey derived from i, endpoint 10.x.y.z, ENR seq i and an
 * ENR of i % 200 bytes; lastpong = BASE + i; local seq = i.  Every record
 * i = 64k (k >= 1) also deletes record i - 32, so deletions are killed too.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/datadir.h"
#include "actors/nodedb.h"
#include "core/err.h"
#include "tests/core/sanitize.h"
#include "tests/tu.h"

static const uint64_t BASE = 1700000000;
static const uint64_t OPENED = UINT64_MAX - 1; /* child report: the DB is open */
static uint8_t SELF[32] = {0x5e, 0x1f};

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint8_t *out, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = mix(seed * 131 + i);
        memcpy(out + i, &r, n - i < 8 ? n - i : 8);
    }
}

static void record(p2p_node_t *n, uint8_t enr[200], size_t *enrlen, uint64_t i)
{
    memset(n, 0, sizeof *n);
    fill(n->id, 32, i * 2);
    fill(n->pubkey, 64, i * 2 + 1);
    n->ep.ip = p2p_ip4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
    n->ep.udp = (uint16_t)(i | 1);
    n->ep.tcp = (uint16_t)(i >> 3);
    n->seq = i;
    *enrlen = (size_t)(i % 200);
    fill(enr, 200, ~i);
}

static bool deleted_by(uint64_t i, uint64_t *victim)
{
    if (i < 64 || i % 64 != 0) return false;
    *victim = i - 32;
    return true;
}

/* The child: writes records from start on until killed.  Never returns. */
static void child(int wfd, const char *dir, uint64_t start)
{
    p2p_nodedb_t *db = NULL;
    p2p_datadir_t dd;
    uint64_t fail = UINT64_MAX;
    /* the lock of a killed child must be released by the kernel */
    if (p2p_datadir_open(&dd, NULL, 0, dir) != 0 || p2p_nodedb_open(&db, NULL, 0, dir, 0) != 0) {
        (void)!write(wfd, &fail, 8);
        _exit(2);
    }
    uint64_t opened = OPENED;
    if (write(wfd, &opened, 8) != 8) _exit(5);
    for (uint64_t i = start;; i++) {
        p2p_node_t n;
        uint8_t enr[200];
        size_t enrlen;
        uint64_t victim;
        record(&n, enr, &enrlen, i);
        if (p2p_nodedb_put_node(db, &n, enr, enrlen) != 0 ||
            p2p_nodedb_set_last_pong(db, n.id, &n.ep.ip, BASE + i) != 0 ||
            p2p_nodedb_set_local_seq(db, SELF, i) != 0) {
            (void)!write(wfd, &fail, 8);
            _exit(3);
        }
        if (deleted_by(i, &victim)) {
            p2p_node_t v;
            record(&v, enr, &enrlen, victim);
            if (p2p_nodedb_delete_node(db, v.id) != 0) {
                (void)!write(wfd, &fail, 8);
                _exit(4);
            }
        }
        if (write(wfd, &i, 8) != 8) _exit(5);
    }
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Checks record i.  max is the highest reported record: a record deleted by
 * a reported record must be gone; one that a possibly committed but
 * unreported record (max + 1) may have deleted is not checked. */
static int check_record(p2p_nodedb_t *db, uint64_t i, uint64_t max)
{
    p2p_node_t want, got;
    uint8_t enr[200], genr[P2P_NODEDB_ENR_MAX];
    size_t enrlen, glen = sizeof genr;
    record(&want, enr, &enrlen, i);
    bool gone = i % 64 == 32 && i + 32 <= max;
    bool maybe = i % 64 == 32 && i + 32 == max + 1;
    int rc = p2p_nodedb_get_node(db, &got, genr, &glen, want.id);
    if (maybe && rc == P2P_ENOTFOUND) return 1;
    if (gone) {
        CHECK_ERR(rc, P2P_ENOTFOUND);
        return rc == P2P_ENOTFOUND;
    }
    CHECK_OK(rc);
    if (rc) {
        fprintf(stderr, "record %llu (of %llu reported) missing\n", (unsigned long long)i,
                (unsigned long long)max + 1);
        return 0;
    }
    int ok = memcmp(got.pubkey, want.pubkey, 64) == 0 && p2p_ip_equal(&got.ep.ip, &want.ep.ip) &&
             got.ep.udp == want.ep.udp && got.ep.tcp == want.ep.tcp && got.seq == i &&
             glen == enrlen && memcmp(genr, enr, enrlen) == 0;
    uint64_t pong = 0;
    CHECK_OK(p2p_nodedb_last_pong(db, &pong, want.id, &want.ep.ip));
    ok = ok && pong == BASE + i;
    CHECK(ok);
    return ok;
}

int main(void)
{
    tu_seed((uint64_t)time(NULL) ^ (uint64_t)getpid());
    long cycles = (long)tu_scale(100, 30);
    const char *env = getenv("P2P_NODEDB_KILL_CYCLES");
    if (env && atol(env) > 0) cycles = atol(env);
    long ran = 0;

    char dirbuf[64] = "/tmp/p2p-nodedb-kill-XXXXXX";
    char *dir = mkdtemp(dirbuf);
    CHECK(dir != NULL);
    if (!dir) return tu_done("nodedb_kill");

    uint64_t next = 0; /* first record of the next child */
    bool any = false;  /* some record was reported */
    unsigned long verified = 0, reported_total = 0, empty_cycles = 0;
    uint64_t t0 = now_ms();
    for (long cycle = 0; cycle < cycles; cycle++, ran++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(fds[1], dir, next);
        }
        close(fds[1]);

        /* read reports until the kill moment, then kill and drain */
        /* the kill delay counts from the child's open (so slow builds such as
         * valgrind still kill during writes), except every 4th cycle, where it
         * counts from the fork and may hit the open and its recovery; a child
         * that never reports its open is killed after 20 s */
        uint64_t delay = 10 + tu_rand() % 191;
        bool from_fork = cycle % 4 == 3;
        uint64_t deadline = now_ms() + (from_fork ? delay : 20000);
        uint8_t buf[1 << 16];
        size_t have = 0;
        uint64_t first = next, last = 0;
        bool got = false, failed = false;
        for (bool killed = false;;) {
            uint64_t now = now_ms();
            if (!killed && now >= deadline) {
                CHECK(kill(pid, SIGKILL) == 0);
                killed = true;
            }
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            int timeout = killed ? 1000 : (int)(deadline - now);
            int pr = poll(&p, 1, timeout);
            if (pr < 0 && errno == EINTR) continue;
            if (pr == 0) continue;
            ssize_t r = read(fds[0], buf + have, sizeof buf - have);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break; /* EOF: the child is dead */
            have += (size_t)r;
            size_t whole = have / 8 * 8;
            for (size_t off = 0; off < whole; off += 8) {
                uint64_t v;
                memcpy(&v, buf + off, 8);
                if (v == UINT64_MAX) {
                    failed = true;
                    continue;
                }
                if (v == OPENED) {
                    if (!from_fork) deadline = now_ms() + delay;
                    continue;
                }
                /* reports are consecutive from the child's first record */
                CHECK(v == (got ? last + 1 : first));
                last = v;
                got = true;
                reported_total++;
            }
            memmove(buf, buf + whole, have - whole);
            have -= whole;
        }
        close(fds[0]);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(!failed);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        /* reopen with recovery: clean, and holding everything reported */
        p2p_nodedb_t *db = NULL;
        p2p_datadir_t dd;
        char msg[256];
        CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));
        CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
        if (!db) {
            fprintf(stderr, "cycle %ld: %s\n", cycle, msg);
            p2p_datadir_close(&dd);
            break;
        }
        p2p_nodedb_stats_t st;
        p2p_nodedb_stats(db, &st);
        CHECK(st.wipes == 0);
        CHECK(st.errors == 0);
        if (got) {
            any = true;
            next = last + 1;
        } else {
            empty_cycles++;
        }
        if (any) {
            uint64_t max = next - 1;
            /* this cycle's records, and a sample of older ones */
            for (uint64_t i = got ? first : max; i <= max; i++)
                verified += check_record(db, i, max);
            for (int s = 0; s < 200 && first > 0; s++)
                verified += check_record(db, tu_rand() % first, max);
            uint64_t seq = 0;
            CHECK_OK(p2p_nodedb_local_seq(db, &seq, SELF));
            CHECK(seq == max || seq == max + 1);
        }
        p2p_nodedb_stats(db, &st);
        CHECK(st.errors == 0 && st.bad_records == 0);
        p2p_nodedb_close(db);
        p2p_datadir_close(&dd);
    }

    /* final pass over every record */
    unsigned long final_ok = 0;
    if (any) {
        p2p_nodedb_t *db = NULL;
        CHECK_OK(p2p_nodedb_open(&db, NULL, 0, dir, 0));
        if (db) {
            for (uint64_t i = 0; i < next; i++)
                final_ok += (unsigned long)check_record(db, i, next - 1);
            p2p_nodedb_close(db);
        }
    }
    CHECK(any);
    CHECK(final_ok == next);
    CHECK(ran == cycles);
    if (!env && !TU_SANITIZED && !RUNNING_ON_VALGRIND && tu_scale(1, 0)) CHECK(ran >= 100);
    printf("kill -9 cycles: %ld in %.1f s; records reported committed: %lu (highest %llu); "
           "record checks passed: %lu during cycles, %lu in the final pass; cycles killed "
           "before the first commit: %lu\n",
           ran, (double)(now_ms() - t0) / 1000.0, reported_total, (unsigned long long)next,
           verified, final_ok, empty_cycles);
    CHECK(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
    return tu_done("nodedb_kill");
}
