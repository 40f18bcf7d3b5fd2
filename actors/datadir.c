/*
 * actors/datadir.c: data directory creation and locking, node key files (see
 * datadir.h for the layout).
 *
 * Called by the server's start-up code and the command-line tool, before
 * any actor thread runs; no state besides the caller's p2p_datadir_t.
 *
 * The key file is untrusted input (it may be truncated, edited by hand or
 * replaced): at most 128 bytes are read, the content must be exactly 64 hex
 * digits with an optional line ending, and the key must be a valid
 * secp256k1 secret.  A malformed file is reported and never overwritten.
 */
#include "actors/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/secp.h"
#include "crypto/util.h"

enum {
    KEY_HEX = 64,
    KEY_FILE_MAX = 128, /* bytes read from a key file at most */
};

static void say(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || !msglen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

/* Joins dir and name into a new string (NULL on allocation failure). */
static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* mkdir -p with mode 0700 for every component created. */
static int mkdirs(char *msg, size_t msglen, const char *path)
{
    char *p = strdup(path);
    if (!p) {
        say(msg, msglen, "data directory %s: out of memory", path);
        return P2P_ENOMEM;
    }
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            say(msg, msglen, "cannot create data directory %s: %s", p, strerror(errno));
            rc = P2P_ESYS;
            break;
        }
        *s = c;
        if (c == 0) break;
    }
    free(p);
    return rc;
}

int p2p_datadir_open(p2p_datadir_t *dd, char *msg, size_t msglen, const char *path)
{
    if (msg && msglen) msg[0] = 0;
    if (!dd) return P2P_EINVAL;
    dd->path = NULL;
    dd->lockfd = -1;
    if (!path || !*path) {
        say(msg, msglen, "empty data directory path");
        return P2P_EINVAL;
    }
    int rc = mkdirs(msg, msglen, path);
    if (rc) return rc;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        say(msg, msglen, "data directory %s is not a directory", path);
        return P2P_ESYS;
    }
    if (access(path, W_OK | X_OK) != 0) {
        say(msg, msglen, "data directory %s is not writable: %s", path, strerror(errno));
        return P2P_ESYS;
    }
    char *lockpath = join(path, "LOCK");
    dd->path = strdup(path);
    if (!lockpath || !dd->path) {
        free(lockpath);
        p2p_datadir_close(dd);
        say(msg, msglen, "data directory %s: out of memory", path);
        return P2P_ENOMEM;
    }
    int fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        say(msg, msglen, "cannot open %s: %s", lockpath, strerror(errno));
        rc = P2P_ESYS;
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            say(msg, msglen, "datadir %s is in use by another process", path);
            rc = P2P_EEXIST;
        } else {
            say(msg, msglen, "cannot lock %s: %s", lockpath, strerror(errno));
            rc = P2P_ESYS;
        }
        close(fd);
    } else {
        dd->lockfd = fd;
    }
    free(lockpath);
    if (rc) p2p_datadir_close(dd);
    return rc;
}

void p2p_datadir_close(p2p_datadir_t *dd)
{
    if (!dd) return;
    if (dd->lockfd >= 0) close(dd->lockfd); /* closing the last fd drops the flock */
    dd->lockfd = -1;
    free(dd->path);
    dd->path = NULL;
}

/* ---- key text ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes exactly 64 hex digits.  Returns 0 or P2P_EBADKEY. */
static int unhex32(uint8_t out[32], const char *s)
{
    int bad = 0;
    for (int i = 0; i < 32; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        bad |= (h < 0) | (l < 0);
        out[i] = (uint8_t)((h & 15) << 4 | (l & 15));
    }
    if (bad) {
        p2p_wipe(out, 32);
        return P2P_EBADKEY;
    }
    return 0;
}

/* Parses key text: 64 hex digits then at most two line-end characters
 * ('\n' or '\r', in any order), as geth's key files allow.  what names the
 * source in messages. */
static int parse_key_text(uint8_t priv[32], char *msg, size_t msglen, const char *what,
                          const char *buf, size_t n)
{
    size_t hexlen = 0;
    while (hexlen < n && hexval(buf[hexlen]) >= 0) hexlen++;
    if (hexlen != KEY_HEX) {
        say(msg, msglen, "%s: malformed node key: expected exactly %d hex characters", what,
            KEY_HEX);
        return P2P_EBADKEY;
    }
    for (size_t i = KEY_HEX; i < n; i++) {
        if (buf[i] != '\n' && buf[i] != '\r') {
            say(msg, msglen,
                "%s: malformed node key: unexpected byte 0x%02x after the %d hex characters", what,
                (unsigned char)buf[i], KEY_HEX);
            return P2P_EBADKEY;
        }
    }
    if (n - KEY_HEX > 2) {
        say(msg, msglen,
            "%s: malformed node key: more than two line-end characters after the %d hex "
            "characters",
            what, KEY_HEX);
        return P2P_EBADKEY;
    }
    if (unhex32(priv, buf) != 0) {
        say(msg, msglen, "%s: malformed node key: expected exactly %d hex characters", what,
            KEY_HEX);
        return P2P_EBADKEY;
    }
    if (p2p_secp_privkey_check(priv) != 0) {
        p2p_wipe(priv, 32);
        say(msg, msglen, "%s: not a valid secp256k1 private key", what);
        return P2P_EBADKEY;
    }
    return 0;
}

int p2p_nodekey_parse_hex(uint8_t priv[32], char *msg, size_t msglen, const char *hex)
{
    if (msg && msglen) msg[0] = 0;
    if (!priv || !hex) return P2P_EINVAL;
    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex += 2;
    size_t n = strnlen(hex, KEY_HEX + 1);
    if (n != KEY_HEX) {
        say(msg, msglen, "node key hex: expected exactly %d hex characters", KEY_HEX);
        return P2P_EBADKEY;
    }
    return parse_key_text(priv, msg, msglen, "node key hex", hex, n);
}

int p2p_nodekey_load(uint8_t priv[32], char *msg, size_t msglen, const char *path)
{
    if (msg && msglen) msg[0] = 0;
    if (!priv || !path) return P2P_EINVAL;
    /* O_NONBLOCK: opening a FIFO no process writes to would wait for a
     * writer for ever (and devp2pd blocks SIGINT and SIGTERM during start-up,
     * so only SIGKILL would end it); it reads as empty instead.  Reads block
     * again: a pipe with a writer (--nodekey <(command)) is read to its end. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        say(msg, msglen, "cannot open node key %s: %s", path, strerror(e));
        return e == ENOENT ? P2P_ENOTFOUND : P2P_ESYS;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        say(msg, msglen, "cannot read node key %s: %s", path, strerror(errno));
        close(fd);
        return P2P_ESYS;
    }
    char buf[KEY_FILE_MAX];
    size_t n = 0;
    int rc = 0;
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            say(msg, msglen, "cannot read node key %s: %s", path, strerror(errno));
            rc = P2P_ESYS;
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0) {
        if (n == sizeof buf) {
            say(msg, msglen, "%s: malformed node key: file too large", path);
            rc = P2P_EBADKEY;
        } else {
            rc = parse_key_text(priv, msg, msglen, path, buf, n);
        }
    }
    p2p_wipe(buf, sizeof buf);
    return rc;
}

/* ---- atomic write ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int p2p_nodekey_save(char *msg, size_t msglen, const char *path, const uint8_t priv[32])
{
    if (msg && msglen) msg[0] = 0;
    if (!path || !priv) return P2P_EINVAL;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp");
    if (!tmp) {
        say(msg, msglen, "cannot write %s: out of memory", path);
        return P2P_ENOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", sizeof ".tmp");
    char text[KEY_HEX + 2];
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        text[2 * i] = digits[priv[i] >> 4];
        text[2 * i + 1] = digits[priv[i] & 15];
    }
    text[KEY_HEX] = '\n';
    int rc = 0;
    const char *step = "";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        step = "create";
        rc = P2P_ESYS;
    } else {
        if (fchmod(fd, 0600) != 0)
            step = "chmod";
        else if (write_all(fd, text, KEY_HEX + 1) != 0)
            step = "write";
        else if (fsync(fd) != 0)
            step = "fsync";
        if (*step) rc = P2P_ESYS;
        if (close(fd) != 0 && rc == 0) {
            step = "close";
            rc = P2P_ESYS;
        }
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        step = "rename";
        rc = P2P_ESYS;
    }
    if (rc) {
        say(msg, msglen, "cannot write node key %s (%s): %s", tmp, step, strerror(errno));
        unlink(tmp);
    } else if (fsync_parent(path) != 0) {
        say(msg, msglen, "cannot sync the directory of %s: %s", path, strerror(errno));
        rc = P2P_ESYS;
    }
    p2p_wipe(text, sizeof text);
    free(tmp);
    return rc;
}

int p2p_datadir_nodekey(uint8_t priv[32], int *created, char *msg, size_t msglen,
                        const p2p_datadir_t *dd)
{
    if (created) *created = 0;
    if (msg && msglen) msg[0] = 0;
    if (!priv || !dd || !dd->path || dd->lockfd < 0) return P2P_EINVAL;
    char *path = join(dd->path, "nodekey");
    if (!path) {
        say(msg, msglen, "node key in %s: out of memory", dd->path);
        return P2P_ENOMEM;
    }
    int rc = p2p_nodekey_load(priv, msg, msglen, path);
    struct stat st;
    if (rc == P2P_ENOTFOUND && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        /* a dangling symlink: the identity lives elsewhere and is missing;
         * a new key would silently replace it */
        say(msg, msglen, "node key %s is a symlink to a missing file; refusing to create a new key",
            path);
        rc = P2P_ENOTFOUND;
    } else if (rc == P2P_ENOTFOUND) {
        if (msg && msglen) msg[0] = 0;
        rc = p2p_secp_keygen(priv);
        if (rc) {
            say(msg, msglen, "cannot generate a node key: %s", p2p_strerror(rc));
            rc = P2P_ECRYPTO;
        } else {
            rc = p2p_nodekey_save(msg, msglen, path, priv);
            if (rc == 0 && created) *created = 1;
        }
        if (rc) p2p_wipe(priv, 32);
    }
    free(path);
    return rc;
}
