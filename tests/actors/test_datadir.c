/*
 * tests/actors/test_datadir.c: data directory creation, the process lock
 * (with forked children, since flock belongs to an open file description),
 * node key generation, atomic writes, reuse, and malformed key files.
 */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/datadir.h"
#include "core/err.h"
#include "crypto/secp.h"
#include "tests/tu.h"

static const char VKEY[] = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291";

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, data, n) == (ssize_t)n);
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t r = read(fd, buf, cap - 1);
    close(fd);
    if (r < 0) r = 0;
    buf[r] = 0;
    return (size_t)r;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_create_and_reuse(void)
{
    char buf[64], path[256], key1[128], key2[128], msg[256];
    const char *root = tu_tmpdir(buf, "datadir");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/a/b/data", root);

    p2p_datadir_t dd;
    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
    snprintf(path, sizeof path, "%s/a", root);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);

    uint8_t priv[32], priv2[32];
    int created = -1;
    CHECK_OK(p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd));
    CHECK(created == 1);
    CHECK_OK(p2p_secp_privkey_check(priv));
    snprintf(path, sizeof path, "%s/nodekey", dir);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(read_file(path, key1, sizeof key1) == 65);
    CHECK(key1[64] == '\n');
    CHECK(strspn(key1, "0123456789abcdef") == 64);
    uint8_t fromfile[32];
    CHECK(tu_unhex(fromfile, 32, (key1[64] = 0, key1)) == 32);
    CHECK_MEM(fromfile, priv, 32);
    snprintf(path, sizeof path, "%s/nodekey.tmp", dir);
    CHECK(!exists(path));

    /* same process, same directory: a second open file description conflicts */
    p2p_datadir_t dd2;
    CHECK_ERR(p2p_datadir_open(&dd2, msg, sizeof msg, dir), P2P_EEXIST);
    char want[256];
    snprintf(want, sizeof want, "datadir %s is in use by another process", dir);
    CHECK(strcmp(msg, want) == 0);
    CHECK(dd2.path == NULL && dd2.lockfd == -1);
    p2p_datadir_close(&dd);
    p2p_datadir_close(&dd); /* idempotent */

    /* reopen: the key is reused, the file untouched */
    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));
    CHECK_OK(p2p_datadir_nodekey(priv2, &created, msg, sizeof msg, &dd));
    CHECK(created == 0);
    CHECK_MEM(priv, priv2, 32);
    snprintf(path, sizeof path, "%s/nodekey", dir);
    read_file(path, key2, sizeof key2);
    key2[64] = 0;
    CHECK(strcmp(key1, key2) == 0);
    p2p_datadir_close(&dd);
    tu_rm_rf(root);
}

/* A child takes the lock; the parent must be refused until the child dies
 * (by exit or by SIGKILL). */
static void test_lock_other_process(int by_kill)
{
    char buf[64], msg[256], want[256];
    const char *dir = tu_tmpdir(buf, "datadir");
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        p2p_datadir_t dd;
        char c = p2p_datadir_open(&dd, NULL, 0, dir) == 0 ? 'L' : 'F';
        (void)!write(up[1], &c, 1);
        (void)!read(down[0], &c, 1); /* wait for the parent (or EOF) */
        p2p_datadir_close(&dd);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    char c = 0;
    CHECK(read(up[0], &c, 1) == 1);
    CHECK(c == 'L');

    p2p_datadir_t dd;
    CHECK_ERR(p2p_datadir_open(&dd, msg, sizeof msg, dir), P2P_EEXIST);
    snprintf(want, sizeof want, "datadir %s is in use by another process", dir);
    CHECK(strcmp(msg, want) == 0);

    if (by_kill)
        CHECK(kill(pid, SIGKILL) == 0);
    else
        CHECK(write(down[1], "x", 1) == 1);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(by_kill ? WIFSIGNALED(status) : (WIFEXITED(status) && WEXITSTATUS(status) == 0));
    close(up[0]);
    close(down[1]);

    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));
    p2p_datadir_close(&dd);
    tu_rm_rf(dir);
}

static void test_malformed_keys(void)
{
    char buf[64], path[256], msg[256], after[256];
    const char *dir = tu_tmpdir(buf, "datadir");
    snprintf(path, sizeof path, "%s/nodekey", dir);
    p2p_datadir_t dd;
    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));

    static const char *bad[] = {
        "",
        "\n",
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f29\n",   /* 63 */
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f2911\n", /* 65 */
        "g71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291\n",
        " b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291\n\n\n",
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291\r\n\r",
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291 \n",
        "0xb71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291\n",
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291\nextra",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i], strlen(bad[i]), 0600);
        uint8_t priv[32];
        int created = -1;
        CHECK_ERR(p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd), P2P_EBADKEY);
        CHECK(created == 0);
        CHECK(strstr(msg, path) != NULL);
        CHECK(strstr(msg, "malformed node key") != NULL);
        /* the file is never replaced */
        CHECK(read_file(path, after, sizeof after) == strlen(bad[i]));
        CHECK(strcmp(after, bad[i]) == 0);
    }
    /* hex but not a valid secret: zero and the curve order n */
    static const char *invalid[] = {
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141\n",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        write_file(path, invalid[i], strlen(invalid[i]), 0600);
        uint8_t priv[32];
        CHECK_ERR(p2p_datadir_nodekey(priv, NULL, msg, sizeof msg, &dd), P2P_EBADKEY);
        CHECK(strstr(msg, "not a valid secp256k1 private key") != NULL);
    }
    /* an oversized file */
    char big[4096];
    memset(big, 'a', sizeof big);
    write_file(path, big, sizeof big, 0600);
    uint8_t priv[32];
    CHECK_ERR(p2p_datadir_nodekey(priv, NULL, msg, sizeof msg, &dd), P2P_EBADKEY);
    CHECK(strstr(msg, "too large") != NULL);

    /* accepted forms: geth's (no newline, or up to two line-end characters
     * in any order), upper case; the vector key's node id comes out */
    uint8_t want[32], pub[64], id[32], vid[32];
    tu_unhex(want, 32, VKEY);
    CHECK(tu_vector_hex("enr.txt", "node_id", vid, 32) == 32);
    char text[80];
    static const char *endings[] = {"\r\n", "", "\n", "\n\n", "\r", "\n\r", "\r\r"};
    for (int i = 0; i < 7; i++) {
        snprintf(text, sizeof text, "%s%s", VKEY, endings[i]);
        if (i == 0)
            for (int j = 0; j < 64; j++)
                if (text[j] >= 'a') text[j] = (char)(text[j] - 32);
        write_file(path, text, strlen(text), 0600);
        int created = -1;
        CHECK_OK(p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd));
        CHECK(created == 0);
        CHECK_MEM(priv, want, 32);
        CHECK_OK(p2p_secp_pubkey(pub, priv));
        p2p_node_id(id, pub);
        CHECK_MEM(id, vid, 32);
    }
    /* a dangling symlink: refused, the link kept, no key written */
    CHECK(unlink(path) == 0);
    char target[600], link_to[600];
    snprintf(target, sizeof target, "%s/elsewhere/key", dir);
    CHECK(symlink(target, path) == 0);
    CHECK_ERR(p2p_datadir_nodekey(priv, NULL, msg, sizeof msg, &dd), P2P_ENOTFOUND);
    CHECK(strstr(msg, "symlink") != NULL);
    struct stat lst;
    CHECK(lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode));
    ssize_t ln = readlink(path, link_to, sizeof link_to - 1);
    CHECK(ln == (ssize_t)strlen(target));
    link_to[ln > 0 ? ln : 0] = 0;
    CHECK(strcmp(link_to, target) == 0);
    CHECK(access(target, F_OK) != 0);
    /* a symlink to an existing key file is read */
    char real[600];
    snprintf(real, sizeof real, "%s/realkey", dir);
    snprintf(text, sizeof text, "%s\n", VKEY);
    write_file(real, text, strlen(text), 0600);
    CHECK(unlink(path) == 0);
    CHECK(symlink(real, path) == 0);
    CHECK_OK(p2p_datadir_nodekey(priv, NULL, msg, sizeof msg, &dd));
    CHECK_MEM(priv, want, 32);
    p2p_datadir_close(&dd);
    /* nodekey on a closed datadir */
    CHECK_ERR(p2p_datadir_nodekey(priv, NULL, msg, sizeof msg, &dd), P2P_EINVAL);
    tu_rm_rf(dir);
}

static void test_key_files_and_hex(void)
{
    char buf[64], path[256], tmp[256], msg[256], text[128];
    const char *dir = tu_tmpdir(buf, "datadir");
    uint8_t want[32], priv[32];
    tu_unhex(want, 32, VKEY);

    /* --nodekeyhex */
    CHECK_OK(p2p_nodekey_parse_hex(priv, msg, sizeof msg, VKEY));
    CHECK_MEM(priv, want, 32);
    snprintf(text, sizeof text, "0x%s", VKEY);
    CHECK_OK(p2p_nodekey_parse_hex(priv, msg, sizeof msg, text));
    CHECK_MEM(priv, want, 32);
    CHECK_ERR(p2p_nodekey_parse_hex(priv, msg, sizeof msg, "abcd"), P2P_EBADKEY);
    CHECK(strstr(msg, "64 hex") != NULL);
    snprintf(text, sizeof text, "%s\n", VKEY);
    CHECK_ERR(p2p_nodekey_parse_hex(priv, msg, sizeof msg, text), P2P_EBADKEY);
    snprintf(text, sizeof text, "%.63sz", VKEY);
    CHECK_ERR(p2p_nodekey_parse_hex(priv, msg, sizeof msg, text), P2P_EBADKEY);
    CHECK_ERR(p2p_nodekey_parse_hex(priv, msg, sizeof msg, ""), P2P_EBADKEY);
    memset(text, '0', 64);
    text[64] = 0;
    CHECK_ERR(p2p_nodekey_parse_hex(priv, msg, sizeof msg, text), P2P_EBADKEY);
    CHECK(strstr(msg, "not a valid") != NULL);

    /* --nodekey FILE: save then load; a stale nodekey.tmp is replaced */
    snprintf(path, sizeof path, "%s/my.key", dir);
    snprintf(tmp, sizeof tmp, "%s/my.key.tmp", dir);
    write_file(tmp, "junk", 4, 0644);
    CHECK_OK(p2p_nodekey_save(msg, sizeof msg, path, want));
    CHECK(!exists(tmp));
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(read_file(path, text, sizeof text) == 65);
    CHECK(strncmp(text, VKEY, 64) == 0 && text[64] == '\n');
    memset(priv, 0, 32);
    CHECK_OK(p2p_nodekey_load(priv, msg, sizeof msg, path));
    CHECK_MEM(priv, want, 32);

    /* overwrite atomically with another key */
    uint8_t other[32];
    CHECK_OK(p2p_secp_keygen(other));
    CHECK_OK(p2p_nodekey_save(msg, sizeof msg, path, other));
    CHECK_OK(p2p_nodekey_load(priv, msg, sizeof msg, path));
    CHECK_MEM(priv, other, 32);
    CHECK(!exists(tmp));

    /* missing file, unwritable place */
    snprintf(path, sizeof path, "%s/none.key", dir);
    CHECK_ERR(p2p_nodekey_load(priv, msg, sizeof msg, path), P2P_ENOTFOUND);
    CHECK(strstr(msg, "none.key") != NULL);
    snprintf(path, sizeof path, "%s/no/such/dir/k", dir);
    CHECK_ERR(p2p_nodekey_save(msg, sizeof msg, path, want), P2P_ESYS);
    CHECK(strstr(msg, "cannot write node key") != NULL);
    tu_rm_rf(dir);
}

/* A key file that is a FIFO no process writes to reads as empty (refused
 * at once); before, open waited for a writer for ever, and devp2pd, which
 * blocks SIGINT and SIGTERM during start-up, could only be killed.  A pipe
 * with a writer (--nodekey <(command)) is read to its end.  Each load runs
 * in a child bounded by alarm(5). */
static void test_key_fifo(void)
{
    char buf[64], path[256], text[80];
    const char *dir = tu_tmpdir(buf, "datadir");
    snprintf(path, sizeof path, "%s/fifo.key", dir);
    CHECK(mkfifo(path, 0600) == 0);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    snprintf(text, sizeof text, "%s\n", VKEY);
    CHECK(write(pfd[1], text, 65) == 65);
    for (int with_writer = 0; with_writer < 2; with_writer++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            alarm(5);
            char m[256], p[64];
            uint8_t priv[32], want[32];
            tu_unhex(want, 32, VKEY);
            if (!with_writer)
                _exit(p2p_nodekey_load(priv, m, sizeof m, path) == P2P_EBADKEY ? 0 : 1);
            close(pfd[1]); /* the parent's copy is closed too: EOF after the key */
            snprintf(p, sizeof p, "/proc/self/fd/%d", pfd[0]);
            if (p2p_nodekey_load(priv, m, sizeof m, p) != 0) _exit(2);
            _exit(memcmp(priv, want, 32) == 0 ? 0 : 3);
        }
        if (with_writer) close(pfd[1]);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            printf("key_fifo(with_writer=%d): status 0x%x\n", with_writer, status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    close(pfd[0]);
    tu_rm_rf(dir);
}

static void test_bad_dirs(void)
{
    char buf[64], path[256], msg[256];
    const char *dir = tu_tmpdir(buf, "datadir");
    p2p_datadir_t dd;
    snprintf(path, sizeof path, "%s/file", dir);
    write_file(path, "x", 1, 0600);
    CHECK_ERR(p2p_datadir_open(&dd, msg, sizeof msg, path), P2P_ESYS);
    CHECK(strstr(msg, "not a directory") != NULL);
    snprintf(path, sizeof path, "%s/file/sub", dir);
    CHECK_ERR(p2p_datadir_open(&dd, msg, sizeof msg, path), P2P_ESYS);
    CHECK(strstr(msg, "cannot create data directory") != NULL);
    CHECK_ERR(p2p_datadir_open(&dd, msg, sizeof msg, ""), P2P_EINVAL);
    if (geteuid() != 0) { /* root may write anywhere */
        snprintf(path, sizeof path, "%s/ro", dir);
        CHECK(mkdir(path, 0500) == 0);
        CHECK_ERR(p2p_datadir_open(&dd, msg, sizeof msg, path), P2P_ESYS);
        CHECK(strstr(msg, "not writable") != NULL);
    }
    /* a relative path works too (created in the current directory) */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, "rel/data"));
    uint8_t priv[32];
    CHECK_OK(p2p_datadir_nodekey(priv, NULL, msg, sizeof msg, &dd));
    CHECK(exists("rel/data/nodekey") && !exists("rel/data/nodekey.tmp"));
    p2p_datadir_close(&dd);
    CHECK(chdir(cwd) == 0);
    tu_rm_rf(dir);
}

int main(void)
{
    tu_seed((uint64_t)time(NULL));
    test_create_and_reuse();
    test_lock_other_process(0);
    test_lock_other_process(1);
    test_malformed_keys();
    test_key_files_and_hex();
    test_key_fifo();
    test_bad_dirs();
    return tu_done("datadir");
}
