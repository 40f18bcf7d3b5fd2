/*
 * actors/nodedb.c: the node database on Berkeley DB 5.3 (see nodedb.h for the
 * key layout, the durability choice and the error policy).
 *
 * Owner: the discovery-table thread (p2p-disc) holds the handle; nothing
 * here starts threads or reads a clock.  The environment is private to the
 * process (DB_PRIVATE: regions in heap memory, no shared region files), which
 * suits single-process access (guaranteed by the datadir lock) and leaves
 * nothing stale behind a kill -9: the next open runs recovery from the log.
 *
 * Every public call runs one transaction through run(): begin, the
 * operation, commit (abort on error).  If Berkeley DB reports DB_RUNRECOVERY
 * the environment is closed, reopened with DB_RECOVER and the operation is
 * tried once more.  Every 1024 write commits a checkpoint bounds the log
 * (old log files are removed automatically) and the recovery time.
 *
 * Berkeley DB's waits are capped at YIELD_MAX_US (its process-wide yield
 * hook, set at the first open): it retries an open that fails with EMFILE,
 * ENFILE or ENOSPC three times, 2 + 4 + 6 s apart, which would stall
 * p2p-disc (no pong, no lookup) for 12 s per file and per call while the
 * process is out of descriptors, and keep a start-up that cannot succeed
 * deaf to SIGTERM for a minute.  The call fails fast instead, counted and
 * logged like any storage error.
 *
 * Node record value (fixed layout, big endian, version byte first):
 *   [0] 1 | [1,65) pubkey X||Y | [65] ip family | [66,82) ip bytes |
 *   [82,84) udp | [84,86) tcp | [86,94) ENR seq | [94,96) enr length |
 *   [96, 96+len) raw ENR
 * Item values (lastping, lastpong, findfail, local seq, version): 8 bytes BE.
 *
 * Limits: keys are at most 64 bytes, values at most 396; anything else found
 * in the file is counted as a bad record and skipped, never trusted.
 */
#include "actors/nodedb.h"

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

enum {
    NODEKEY_LEN = 37,                           /* "n:" id32 ":v4" */
    ITEMKEY_MAX = NODEKEY_LEN + 1 + 16 + 1 + 8, /* + ":" ip16 ":" field */
    LOCALKEY_LEN = 6 + 32 + 4,                  /* "local:" id32 ":seq" */
    KEYBUF = 1024,                              /* largest key read back */
    REC_VERSION = 1,
    REC_HDR = 96,
    REC_MAX = REC_HDR + P2P_NODEDB_ENR_MAX,
    CKP_EVERY = 1024, /* write commits between checkpoints */
    SEED_WALK = 64,   /* keys walked after one random seek */
    CACHE_BYTES = 2 << 20,
    LOG_FILE_BYTES = 1 << 20,
    MAX_LOCKS = 10000,
};

#define YIELD_MAX_US 10000u /* longest wait Berkeley DB may take (see the top) */

#define DB_FILE "nodes.db"
#define ENV_FLAGS                                                                                  \
    (DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_RECOVER | DB_PRIVATE)

struct p2p_nodedb {
    DB_ENV *env;
    DB *dbp;
    unsigned flags;
    int last_ret;    /* last Berkeley DB error code of the current operation */
    int io_errno;    /* a system error Berkeley DB reported in the current open or
                      * operation (ENOSPC, EIO, ...): its panic is not damage */
    bool lsn_ahead;  /* Berkeley DB saw a page LSN past the end of the log in the
                      * current open or operation (the file outlived its logs) */
    bool opened;     /* p2p_nodedb_open has returned this handle */
    unsigned writes; /* write commits since the last checkpoint */
    uint64_t rng;    /* xorshift64* state for the seed seeks */
    p2p_nodedb_stats_t st;
    char msg[320];
    char home[]; /* <datadir>/nodes */
};

typedef int (*op_fn)(p2p_nodedb_t *db, DB_TXN *txn, void *arg);

/* ---- logging and errors ---- */

/* Formats a message into db->msg (kept for p2p_nodedb_errmsg) and logs it
 * under title at level. */
static void nlog(p2p_nodedb_t *db, int level, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void nlog(p2p_nodedb_t *db, int level, const char *title, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->msg, sizeof db->msg, fmt, ap);
    va_end(ap);
    /* rate-limited: a full disk fails every write (one per discovery
     * packet); the counters (stats.errors, db_errors) keep the exact count */
    if (level <= P2P_LOG_ERROR)
        P2P_LOG_RL(5, 10000, level, title, "err=\"%s\"", db->msg);
    else
        P2P_LOG_RL(5, 10000, level, title, "what=\"%s\"", db->msg);
}

/* Records a Berkeley DB failure: logs "<home>: <what>: <db_strerror>". */
static int bdb_err(p2p_nodedb_t *db, int ret, const char *what)
{
    db->last_ret = ret;
    db->st.errors++;
    nlog(db, P2P_LOG_ERROR, "Node database error", "%s: %s: %s", db->home, what, db_strerror(ret));
    return P2P_EDB;
}

/* The system error a Berkeley DB message names, if it is one that says
 * the storage failed or the process ran out of a resource (descriptors,
 * memory) or of permission, not that the file's contents are bad:
 * Berkeley DB appends strerror(errno) to the messages of failed system
 * calls, and a recovery that cannot open a file panics like one that
 * finds it damaged. */
static const int io_errs[] = {
    ENOSPC, EDQUOT, EIO,    EROFS,  EFBIG, /* the storage failed: recovery must write */
    EMFILE, ENFILE, ENOMEM, EACCES, EPERM  /* the process lacks a resource or a right */
};
enum { STORAGE_FAILURES = 5 }; /* the first ones of io_errs */

static int storage_errno(const char *m)
{
    for (size_t i = 0; i < sizeof io_errs / sizeof io_errs[0]; i++)
        if (strstr(m, strerror(io_errs[i])) != NULL) return io_errs[i];
    return 0;
}

static bool storage_failure(int e)
{
    for (size_t i = 0; i < STORAGE_FAILURES; i++)
        if (io_errs[i] == e) return true;
    return false;
}

/* Berkeley DB's own detail messages (emitted before its error returns). */
static void errcall(const DB_ENV *env, const char *pfx, const char *m)
{
    (void)pfx;
    p2p_nodedb_t *db = env->app_private;
    if (db && !db->io_errno) db->io_errno = storage_errno(m);
    /* BDB2506 (a page written under log files that are gone) and BDB2516
     * (the same, found when flushing): the file's LSNs must be reset */
    if (db && (strstr(m, "past end of log") || strstr(m, "past current end-of-log")))
        db->lsn_ahead = true;
    P2P_LOG_RL(5, 10000, P2P_LOG_ERROR, "Berkeley DB", "dir=%s msg=\"%s\"", db ? db->home : "?", m);
}

/* ---- encodings ---- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static void nodekey(uint8_t k[NODEKEY_LEN], const uint8_t id[32])
{
    memcpy(k, "n:", 2);
    memcpy(k + 2, id, 32);
    memcpy(k + 34, ":v4", 3);
}

static bool is_nodekey(const uint8_t *k, size_t n)
{
    return n == NODEKEY_LEN && memcmp(k, "n:", 2) == 0 && memcmp(k + 34, ":v4", 3) == 0;
}

/* Item key for (id, ip, field); returns its length or 0 if ip has no family. */
static size_t itemkey(uint8_t k[ITEMKEY_MAX], const uint8_t id[32], const p2p_ip_t *ip,
                      const char *field)
{
    uint8_t ip16[16] = {0};
    if (ip->family == 4) {
        ip16[10] = ip16[11] = 0xff;
        memcpy(ip16 + 12, ip->addr, 4);
    } else if (ip->family == 6) {
        memcpy(ip16, ip->addr, 16);
    } else {
        return 0;
    }
    size_t flen = strlen(field);
    nodekey(k, id);
    k[NODEKEY_LEN] = ':';
    memcpy(k + NODEKEY_LEN + 1, ip16, 16);
    k[NODEKEY_LEN + 17] = ':';
    memcpy(k + NODEKEY_LEN + 18, field, flen);
    return NODEKEY_LEN + 18 + flen;
}

static bool item_field_is(const uint8_t *k, size_t n, const char *field)
{
    size_t flen = strlen(field);
    return n == NODEKEY_LEN + 18 + flen && k[NODEKEY_LEN] == ':' && k[NODEKEY_LEN + 17] == ':' &&
           memcmp(k + NODEKEY_LEN + 18, field, flen) == 0;
}

static size_t rec_encode(uint8_t out[REC_MAX], const p2p_node_t *n, const uint8_t *enr,
                         size_t enrlen)
{
    memset(out, 0, REC_HDR);
    out[0] = REC_VERSION;
    memcpy(out + 1, n->pubkey, 64);
    out[65] = n->ep.ip.family;
    memcpy(out + 66, n->ep.ip.addr, p2p_ip_len(&n->ep.ip));
    out[82] = (uint8_t)(n->ep.udp >> 8);
    out[83] = (uint8_t)n->ep.udp;
    out[84] = (uint8_t)(n->ep.tcp >> 8);
    out[85] = (uint8_t)n->ep.tcp;
    put64(out + 86, n->seq);
    out[94] = (uint8_t)(enrlen >> 8);
    out[95] = (uint8_t)enrlen;
    if (enrlen) memcpy(out + REC_HDR, enr, enrlen);
    return REC_HDR + enrlen;
}

/* Decodes a stored record (untrusted: the file may be damaged).  Out: *n
 * (with id), *enr_off / *enr_len locate the ENR inside v.  Returns 0 or
 * P2P_EDECODE. */
static int rec_decode(p2p_node_t *n, size_t *enr_off, size_t *enr_len, const uint8_t id[32],
                      const uint8_t *v, size_t vlen)
{
    if (vlen < REC_HDR || v[0] != REC_VERSION) return P2P_EDECODE;
    size_t elen = (size_t)v[94] << 8 | v[95];
    if (elen > P2P_NODEDB_ENR_MAX || vlen != REC_HDR + elen) return P2P_EDECODE;
    uint8_t fam = v[65];
    if (fam != 0 && fam != 4 && fam != 6) return P2P_EDECODE;
    memset(n, 0, sizeof *n);
    memcpy(n->id, id, 32);
    memcpy(n->pubkey, v + 1, 64);
    n->ep.ip.family = fam;
    memcpy(n->ep.ip.addr, v + 66, p2p_ip_len(&n->ep.ip));
    n->ep.udp = (uint16_t)(v[82] << 8 | v[83]);
    n->ep.tcp = (uint16_t)(v[84] << 8 | v[85]);
    n->seq = get64(v + 86);
    *enr_off = REC_HDR;
    *enr_len = elen;
    return 0;
}

static uint64_t rng_next(p2p_nodedb_t *db)
{
    uint64_t x = db->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    db->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- key/value helpers (inside a transaction) ---- */

static void dbt_in(DBT *t, const void *p, size_t n)
{
    memset(t, 0, sizeof *t);
    t->data = (void *)p;
    t->size = (u_int32_t)n;
}

static void dbt_out(DBT *t, void *buf, size_t cap)
{
    memset(t, 0, sizeof *t);
    t->data = buf;
    t->ulen = (u_int32_t)cap;
    t->flags = DB_DBT_USERMEM;
}

/* Reads key k into v[0..cap).  Returns 0 (found, *vlen set), P2P_ENOTFOUND,
 * P2P_EDECODE (stored value larger than cap: damaged), P2P_EDB. */
static int kv_get(p2p_nodedb_t *db, DB_TXN *txn, const void *k, size_t klen, void *v, size_t cap,
                  size_t *vlen)
{
    DBT key, data;
    dbt_in(&key, k, klen);
    dbt_out(&data, v, cap);
    int ret = db->dbp->get(db->dbp, txn, &key, &data, 0);
    if (ret == DB_NOTFOUND) return P2P_ENOTFOUND;
    if (ret == DB_BUFFER_SMALL) {
        db->st.bad_records++;
        return P2P_EDECODE;
    }
    if (ret) return bdb_err(db, ret, "get");
    *vlen = data.size;
    return 0;
}

static int kv_put(p2p_nodedb_t *db, DB_TXN *txn, const void *k, size_t klen, const void *v,
                  size_t vlen)
{
    DBT key, data;
    dbt_in(&key, k, klen);
    dbt_in(&data, v, vlen);
    int ret = db->dbp->put(db->dbp, txn, &key, &data, 0);
    return ret ? bdb_err(db, ret, "put") : 0;
}

/* Reads an 8-byte counter; absent or damaged values read as 0. */
static int kv_get_u64(p2p_nodedb_t *db, DB_TXN *txn, const void *k, size_t klen, uint64_t *v)
{
    uint8_t buf[8];
    size_t n = 0;
    *v = 0;
    int rc = kv_get(db, txn, k, klen, buf, sizeof buf, &n);
    if (rc == P2P_ENOTFOUND || rc == P2P_EDECODE) return 0;
    if (rc) return rc;
    if (n != 8) {
        db->st.bad_records++;
        return 0;
    }
    *v = get64(buf);
    return 0;
}

static int kv_put_u64(p2p_nodedb_t *db, DB_TXN *txn, const void *k, size_t klen, uint64_t v)
{
    uint8_t buf[8];
    put64(buf, v);
    return kv_put(db, txn, k, klen, buf, sizeof buf);
}

/* Cursor read that copes with a key longer than KEYBUF (only a damaged or
 * foreign file holds one; Berkeley DB would return DB_BUFFER_SMALL and leave
 * the cursor where it was, so a walk could never pass it).  Such a key is
 * read into a temporary buffer, its first KEYBUF bytes are copied to
 * key->data and key->size keeps its real length, so callers, which match
 * key shapes by exact length, skip it; it is counted as a bad record. */
static int cur_get(p2p_nodedb_t *db, DBC *c, DBT *key, DBT *data, u_int32_t flags)
{
    u_int32_t insize = key->size;
    int ret = c->get(c, key, data, flags);
    if (ret != DB_BUFFER_SMALL || key->size <= key->ulen) return ret;
    DBT big = *key;
    big.ulen = key->size;
    big.size = insize;
    big.data = malloc(big.ulen);
    if (!big.data) return ENOMEM;
    if (insize) memcpy(big.data, key->data, insize < key->ulen ? insize : key->ulen);
    ret = c->get(c, &big, data, flags);
    if (ret == 0) {
        memcpy(key->data, big.data, key->ulen);
        key->size = big.size;
        db->st.bad_records++;
    }
    free(big.data);
    return ret;
}

/* A del_prefix filter's verdict on one key (or a negative P2P error). */
enum { DEL_KEY, DEL_SKIP, DEL_STOP };
typedef int (*del_filter_fn)(p2p_nodedb_t *db, DB_TXN *txn, const uint8_t *k, size_t klen,
                             void *arg);

/* Deletes the keys that start with prefix[0..plen), at most budget of them.
 * filter (may be NULL: delete all) judges each key before it goes: DEL_SKIP
 * leaves it (skipped keys do not count against the budget, so a filter
 * must skip only a bounded few), DEL_STOP ends the walk there.  Out:
 * *deleted (may be NULL) adds how many went; *done (may be NULL) tells
 * whether the walk got past the last key under the prefix or was stopped,
 * *stopped (may be NULL) which. */
static int del_prefix(p2p_nodedb_t *db, DB_TXN *txn, const uint8_t *prefix, size_t plen,
                      size_t budget, del_filter_fn filter, void *farg, size_t *deleted, bool *done,
                      bool *stopped)
{
    DBC *c;
    int ret = db->dbp->cursor(db->dbp, txn, &c, 0);
    if (ret) return bdb_err(db, ret, "cursor");
    uint8_t kb[KEYBUF];
    memcpy(kb, prefix, plen);
    DBT key, data;
    dbt_out(&key, kb, sizeof kb);
    key.size = (u_int32_t)plen;
    memset(&data, 0, sizeof data);
    data.flags = DB_DBT_PARTIAL; /* keys only: read no value bytes */
    int rc = 0, verdict = DEL_KEY;
    size_t n = 0;
    bool end = false;
    ret = cur_get(db, c, &key, &data, DB_SET_RANGE);
    for (;;) {
        if (ret == DB_NOTFOUND ||
            (ret == 0 && (key.size < plen || memcmp(kb, prefix, plen) != 0))) {
            ret = 0;
            end = true;
            break;
        }
        if (ret || n >= budget) break;
        /* a key longer than KEYBUF (cur_get) is judged by its head */
        size_t klen = key.size < KEYBUF ? key.size : KEYBUF;
        verdict = filter ? filter(db, txn, kb, klen, farg) : DEL_KEY;
        if (verdict < 0) {
            rc = verdict;
            break;
        }
        if (verdict == DEL_STOP) {
            end = true;
            break;
        }
        if (verdict == DEL_KEY) {
            if ((ret = c->del(c, 0)) != 0) break;
            n++;
        }
        ret = cur_get(db, c, &key, &data, DB_NEXT);
    }
    if (ret) rc = bdb_err(db, ret, "delete range");
    if (deleted) *deleted += n;
    if (done) *done = end && rc == 0;
    if (stopped) *stopped = verdict == DEL_STOP;
    ret = c->close(c);
    if (ret && rc == 0) rc = bdb_err(db, ret, "cursor close");
    return rc;
}

/* ---- environment ---- */

/* Closes the database and the environment.  quiet: after a failure (no
 * checkpoint, errors not logged).  A panicked environment is first taken out
 * of the panic state: Berkeley DB would otherwise refuse to close it and leak
 * the whole private environment; the close then writes no page whose log
 * records are not on disk (write-ahead logging), and the next open recovers. */
static void env_close(p2p_nodedb_t *db, bool quiet)
{
    int ret;
    if (db->env && quiet) (void)db->env->set_flags(db->env, DB_PANIC_ENVIRONMENT, 0);
    if (db->env && !quiet) {
        ret = db->env->txn_checkpoint(db->env, 0, 0, DB_FORCE);
        if (ret)
            bdb_err(db, ret, "checkpoint at close");
        else
            db->st.checkpoints++;
    }
    if (db->dbp) {
        ret = db->dbp->close(db->dbp, quiet ? DB_NOSYNC : 0);
        if (ret && !quiet) bdb_err(db, ret, "closing " DB_FILE);
        db->dbp = NULL;
    }
    if (db->env) {
        ret = db->env->close(db->env, 0);
        if (ret && !quiet) bdb_err(db, ret, "closing environment");
        db->env = NULL;
    }
}

/* Berkeley DB's yield hook: a bare yield stays one, a wait is capped. */
static int bdb_yield(u_long secs, u_long usecs)
{
    uint64_t us = (uint64_t)secs * 1000000u + usecs;
    if (us == 0) return sched_yield();
    if (us > YIELD_MAX_US) us = YIELD_MAX_US;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(us * 1000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 0;
}

static void set_yield(void)
{
    (void)db_env_set_func_yield(bdb_yield);
}

static int env_open(p2p_nodedb_t *db)
{
    DB_ENV *env;
    int ret = db_env_create(&env, 0);
    if (ret) return bdb_err(db, ret, "db_env_create");
    env->app_private = db;
    env->set_errcall(env, errcall);
    if ((ret = env->set_cachesize(env, 0, CACHE_BYTES, 1)) != 0 ||
        (ret = env->set_lg_max(env, LOG_FILE_BYTES)) != 0 ||
        (ret = env->set_lk_max_locks(env, MAX_LOCKS)) != 0 ||
        (ret = env->set_lk_max_objects(env, MAX_LOCKS)) != 0 ||
        (ret = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1)) != 0 ||
        (!(db->flags & P2P_NODEDB_SYNC) &&
         (ret = env->set_flags(env, DB_TXN_WRITE_NOSYNC, 1)) != 0)) {
        env->close(env, 0);
        return bdb_err(db, ret, "configuring environment");
    }
    ret = env->open(env, db->home, ENV_FLAGS, 0600);
    if (ret) {
        env->close(env, 0);
        return bdb_err(db, ret, "opening environment with recovery");
    }
    db->env = env;
    ret = db_create(&db->dbp, env, 0);
    if (ret) {
        db->dbp = NULL;
        bdb_err(db, ret, "db_create");
        env_close(db, true);
        return P2P_EDB;
    }
    ret = db->dbp->open(db->dbp, NULL, DB_FILE, NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0600);
    if (ret) {
        bdb_err(db, ret, "opening " DB_FILE);
        int keep = db->last_ret;
        env_close(db, true);
        db->last_ret = keep;
        return P2P_EDB;
    }
    return 0;
}

/* Removes the regular files of the environment directory (database, logs,
 * region files); used when the database is damaged beyond recovery. */
static int wipe_dir(p2p_nodedb_t *db)
{
    DIR *d = opendir(db->home);
    if (!d) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "%s: cannot list for wipe: %s", db->home,
             strerror(errno));
        return P2P_ESYS;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
            nlog(db, P2P_LOG_ERROR, "Node database error", "%s/%s: cannot remove: %s", db->home,
                 e->d_name, strerror(errno));
            rc = P2P_ESYS;
        }
    }
    closedir(d);
    return rc;
}

/* The directory and every regular file in it must be readable and
 * writable by us: Berkeley DB reports a file it may not open as a panic
 * (DB_RUNRECOVERY), which must not read as damage and cost the user the
 * database.  Returns 0, or P2P_ESYS naming the first file refused. */
static int check_access(p2p_nodedb_t *db)
{
    if (access(db->home, R_OK | W_OK | X_OK) != 0) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "%s: %s (the database is left as it is)",
             db->home, strerror(errno));
        return P2P_ESYS;
    }
    DIR *d = opendir(db->home);
    if (!d) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "%s: %s", db->home, strerror(errno));
        return P2P_ESYS;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (faccessat(dirfd(d), e->d_name, R_OK | W_OK, AT_EACCESS) != 0) {
            nlog(db, P2P_LOG_ERROR, "Node database error",
                 "%s/%s: %s (the database is left as it is)", db->home, e->d_name, strerror(errno));
            rc = P2P_ESYS;
        }
    }
    closedir(d);
    return rc;
}

static int reopen(p2p_nodedb_t *db)
{
    nlog(db, P2P_LOG_WARN, "Node database recovery",
         "%s: environment needs recovery (DB_RUNRECOVERY): reopening with recovery", db->home);
    env_close(db, true);
    db->st.recoveries++;
    return env_open(db);
}

/* nodes.db outlived the log files it was written with (they were removed,
 * or the file was copied from another data directory): Berkeley DB refuses
 * every write to a page whose LSN is past the end of the log (EINVAL), at
 * every start.  The records are intact: reset the file's LSNs (what
 * Berkeley DB prescribes for a file moved between environments). */
static int reset_lsns(p2p_nodedb_t *db)
{
    nlog(db, P2P_LOG_WARN, "Node database recovery",
         "%s: " DB_FILE " has LSNs past the end of the log (its log files were removed or it "
         "was copied): resetting them",
         db->home);
    db->st.lsn_resets++;
    /* flush what this session committed to the file (the pages in the way
     * cannot be written; what stays in the log only is lost with them) */
    if (db->env) (void)db->env->txn_checkpoint(db->env, 0, 0, DB_FORCE);
    env_close(db, true);
    db->lsn_ahead = false;
    /* lsn_reset in a transactional environment opens the file first, and
     * that open refuses it (the same check): use one without a log */
    DB_ENV *env;
    int ret = db_env_create(&env, 0);
    if (ret) return bdb_err(db, ret, "db_env_create");
    env->app_private = db;
    env->set_errcall(env, errcall);
    ret = env->open(env, db->home, DB_CREATE | DB_INIT_MPOOL | DB_PRIVATE, 0600);
    if (ret == 0) ret = env->lsn_reset(env, DB_FILE, 0);
    int cret = env->close(env, 0);
    if (ret == 0) ret = cret;
    if (ret) return bdb_err(db, ret, "resetting the LSNs of " DB_FILE);
    return env_open(db);
}

/* ---- transactions ---- */

static int txn_once(p2p_nodedb_t *db, op_fn fn, void *arg, bool write)
{
    DB_TXN *txn;
    int ret = db->env->txn_begin(db->env, NULL, &txn, 0);
    if (ret) return bdb_err(db, ret, "txn_begin");
    int rc = fn(db, txn, arg);
    if (rc == 0 || rc == P2P_ENOTFOUND) {
        ret = txn->commit(txn, 0);
        if (ret) return bdb_err(db, ret, "commit");
        db->st.commits++;
        if (write && ++db->writes >= CKP_EVERY) {
            db->writes = 0;
            ret = db->env->txn_checkpoint(db->env, 0, 0, 0);
            if (ret) return bdb_err(db, ret, "checkpoint");
            db->st.checkpoints++;
        }
        return rc;
    }
    ret = txn->abort(txn);
    db->st.aborts++;
    if (ret) bdb_err(db, ret, "abort");
    return rc;
}

static void wipe_live(p2p_nodedb_t *db, const char *why);

/* Runs fn in a transaction; on DB_RUNRECOVERY reopens with recovery and runs
 * it once more.  fn must reset its outputs at its start (it may run twice).
 * Damage seen while running (a page the file should hold is missing or
 * fails its checks, or the operation panics again right after a successful
 * recovery: the same page fails the same way), with no storage error (full
 * disk, I/O error) named by Berkeley DB, wipes the database (wipe_live):
 * the operation fails, the next ones run on an empty database. */
static int run(p2p_nodedb_t *db, op_fn fn, void *arg, bool write)
{
    db->io_errno = 0;
    db->lsn_ahead = false;
    for (int attempt = 0;; attempt++) {
        int rc;
        bool recovered = db->env != NULL && attempt > 0;
        db->last_ret = 0;
        if (db->env) {
            rc = txn_once(db, fn, arg, write);
        } else {
            db->last_ret = DB_RUNRECOVERY; /* a previous recovery failed */
            rc = P2P_EDB;
        }
        if (rc != P2P_EDB) return rc;
        if (db->lsn_ahead && !db->io_errno && attempt == 0) {
            if (reset_lsns(db) != 0) return P2P_EDB;
            continue;
        }
        bool live = db->opened && !db->io_errno;
        if (live && (db->last_ret == DB_PAGE_NOTFOUND || db->last_ret == DB_VERIFY_BAD)) {
            wipe_live(db, db->last_ret == DB_PAGE_NOTFOUND ? "a page of the file is missing"
                                                           : "a page of the file fails its checks");
            return rc;
        }
        if (db->last_ret != DB_RUNRECOVERY) return rc;
        if (attempt > 0) {
            if (live && recovered) wipe_live(db, "it fails again right after a recovery");
            return rc;
        }
        if (reopen(db) != 0) return P2P_EDB;
    }
}

/* ---- schema version ---- */

struct version_arg {
    bool mismatch;  /* the file holds records of another schema (or none) */
    char found[32]; /* what the version key holds, for the log */
};

/* Checks the schema version; an empty database gets ours written.  A
 * mismatch is reported in the arg, not acted on: the caller wipes the files
 * (a truncate inside one transaction needs a lock per page and fails on a
 * large file). */
static int op_version(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    static const char vkey[] = "version";
    struct version_arg *a = arg;
    memset(a, 0, sizeof *a);
    uint8_t buf[16];
    size_t n = 0;
    int rc = kv_get(db, txn, vkey, sizeof vkey - 1, buf, sizeof buf, &n);
    if (rc == 0 && n == 8 && get64(buf) == P2P_NODEDB_SCHEMA) return 0;
    if (rc != 0 && rc != P2P_ENOTFOUND && rc != P2P_EDECODE) return rc;
    if (rc == 0 && n == 8)
        snprintf(a->found, sizeof a->found, "%llu", (unsigned long long)get64(buf));
    else
        snprintf(a->found, sizeof a->found, rc == P2P_ENOTFOUND ? "none" : "malformed");
    /* no version: a new database, unless it holds anything else */
    DBC *c;
    int ret = db->dbp->cursor(db->dbp, txn, &c, 0);
    if (ret) return bdb_err(db, ret, "cursor");
    DBT key, data;
    memset(&key, 0, sizeof key);
    memset(&data, 0, sizeof data);
    key.flags = data.flags = DB_DBT_PARTIAL; /* no bytes: only whether a record exists */
    ret = c->get(c, &key, &data, DB_FIRST);
    int cret = c->close(c);
    if (ret != 0 && ret != DB_NOTFOUND) return bdb_err(db, ret, "cursor first");
    if (cret) return bdb_err(db, cret, "cursor close");
    if (ret == 0) {
        a->mismatch = true;
        return 0;
    }
    return kv_put_u64(db, txn, vkey, sizeof vkey - 1, P2P_NODEDB_SCHEMA);
}

/* Opens the environment and checks the schema version. */
static int open_checked(p2p_nodedb_t *db, struct version_arg *v)
{
    memset(v, 0, sizeof *v);
    db->lsn_ahead = false;
    int rc = env_open(db);
    if (rc && db->lsn_ahead && !db->io_errno) rc = reset_lsns(db);
    if (rc == 0) rc = run(db, op_version, v, true);
    return rc;
}

/* Closes, removes the files and opens an empty database.  why: for the log. */
static int wipe_reopen(p2p_nodedb_t *db, const char *why)
{
    nlog(db, P2P_LOG_WARN, "Node database wiped", "%s: %s: wiping it and starting empty", db->home,
         why);
    db->st.wipes++;
    env_close(db, true);
    int rc = wipe_dir(db);
    struct version_arg v;
    if (rc == 0) rc = open_checked(db, &v);
    if (rc == 0 && v.mismatch) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "%s: not empty after the wipe", db->home);
        rc = P2P_EDB;
    }
    return rc;
}

/* The database turned out damaged while running: wipe it.  On failure the
 * handle is left without an environment; every later call fails with
 * P2P_EDB and tries to reopen. */
static void wipe_live(p2p_nodedb_t *db, const char *why)
{
    char reason[160];
    snprintf(reason, sizeof reason, "database damaged (%s)", why);
    db->opened = false; /* no wipe from inside the wipe */
    if (wipe_reopen(db, reason) != 0) env_close(db, true);
    db->opened = true;
}

/* ---- open / close ---- */

/* Codes that say the files cannot be used as they are: Berkeley DB
 * panicked and recovery failed, a page is missing or fails its checks, or
 * the file is of another format.  A panic caused by a storage error (a full
 * disk, an I/O error: db->io_errno) is not damage. */
static bool damaged(const p2p_nodedb_t *db)
{
    int ret = db->last_ret;
    return !db->io_errno && (ret == DB_RUNRECOVERY || ret == DB_VERIFY_BAD ||
                             ret == DB_PAGE_NOTFOUND || ret == DB_OLD_VERSION || ret == EINVAL);
}

int p2p_nodedb_open(p2p_nodedb_t **out, char *msg, size_t msglen, const char *datadir,
                    unsigned flags)
{
    if (msg && msglen) msg[0] = 0;
    if (!out) return P2P_EINVAL;
    *out = NULL;
    static pthread_once_t yield_once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&yield_once, set_yield);
    if (!datadir || !*datadir || (flags & ~P2P_NODEDB_SYNC)) {
        if (msg) snprintf(msg, msglen, "node database: invalid arguments");
        return P2P_EINVAL;
    }
    size_t dlen = strlen(datadir);
    if (dlen + sizeof "/nodes" > PATH_MAX) {
        if (msg) snprintf(msg, msglen, "node database: data directory path too long");
        return P2P_EINVAL;
    }
    p2p_nodedb_t *db = calloc(1, sizeof *db + dlen + sizeof "/nodes");
    if (!db) {
        if (msg) snprintf(msg, msglen, "node database: out of memory");
        return P2P_ENOMEM;
    }
    memcpy(db->home, datadir, dlen);
    memcpy(db->home + dlen, "/nodes", sizeof "/nodes");
    db->flags = flags;

    int rc = 0;
    struct stat sb;
    if (mkdir(db->home, 0700) != 0 && errno != EEXIST) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "cannot create %s: %s", db->home,
             strerror(errno));
        rc = P2P_ESYS;
    } else if (stat(db->home, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "%s is not a directory", db->home);
        rc = P2P_ESYS;
    } else if (getrandom(&db->rng, sizeof db->rng, 0) != (ssize_t)sizeof db->rng) {
        nlog(db, P2P_LOG_ERROR, "Node database error", "getrandom: %s", strerror(errno));
        rc = P2P_ESYS;
    }
    if (rc == 0) {
        db->rng |= 1; /* xorshift state must not be zero */
        rc = check_access(db);
        struct version_arg v = {0};
        if (rc == 0) {
            db->io_errno = 0;
            rc = open_checked(db, &v);
        }
        if (rc == 0 && v.mismatch) {
            char why[96];
            snprintf(why, sizeof why, "schema version %s, want %d", v.found, P2P_NODEDB_SCHEMA);
            rc = wipe_reopen(db, why);
        } else if (rc && damaged(db)) {
            rc = wipe_reopen(db, "database damaged beyond recovery");
        } else if (rc && db->io_errno) {
            int e = db->io_errno;
            nlog(db, P2P_LOG_ERROR, "Node database error",
                 "%s: cannot open: %s (%sthe database is left as it is)", db->home, strerror(e),
                 storage_failure(e) ? "recovery must write; " : "");
        }
    }
    if (rc) {
        if (msg) snprintf(msg, msglen, "node database: %s", db->msg);
        env_close(db, true);
        free(db);
        return rc;
    }
    db->opened = true;
    *out = db;
    return 0;
}

void p2p_nodedb_close(p2p_nodedb_t *db)
{
    if (!db) return;
    env_close(db, db->env == NULL);
    free(db);
}

const char *p2p_nodedb_errmsg(const p2p_nodedb_t *db)
{
    return db ? db->msg : "";
}

void p2p_nodedb_stats(const p2p_nodedb_t *db, p2p_nodedb_stats_t *out)
{
    *out = db->st;
}

void p2p__nodedb_panic(p2p_nodedb_t *db)
{
    if (db->env) db->env->set_flags(db->env, DB_PANIC_ENVIRONMENT, 1);
}

struct raw_arg {
    const void *k, *v;
    size_t klen, vlen;
};

static int op_raw(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct raw_arg *a = arg;
    if (a->v) return kv_put(db, txn, a->k, a->klen, a->v, a->vlen);
    DBT key;
    dbt_in(&key, a->k, a->klen);
    int ret = db->dbp->del(db->dbp, txn, &key, 0);
    if (ret && ret != DB_NOTFOUND) return bdb_err(db, ret, "del");
    return 0;
}

int p2p__nodedb_put_raw(p2p_nodedb_t *db, const void *key, size_t klen, const void *val,
                        size_t vlen)
{
    if (!db || !key || klen == 0 || klen > 4 * KEYBUF) return P2P_EINVAL;
    struct raw_arg a = {.k = key, .klen = klen, .v = val, .vlen = vlen};
    return run(db, op_raw, &a, true);
}

/* ---- nodes ---- */

struct node_arg {
    p2p_node_t *n;
    const uint8_t *id;
    uint8_t *enr;
    size_t *enrlen;
    uint8_t *val; /* put: encoded record (REC_MAX bytes) */
    size_t vlen;
    const p2p_node_t *put; /* put without ENR: the node, to keep a stored ENR */
};

static int op_put_node(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct node_arg *a = arg;
    uint8_t k[NODEKEY_LEN];
    nodekey(k, a->id);
    if (a->put) {
        /* No ENR given: keep the stored one if it belongs to the same seq
         * (the core writes seeds without the raw record it got earlier). */
        uint8_t old[REC_MAX];
        size_t olen = 0, eoff = 0, elen = 0;
        p2p_node_t on;
        a->vlen = rec_encode(a->val, a->put, NULL, 0); /* (again, on a retry) */
        int rc = kv_get(db, txn, k, sizeof k, old, sizeof old, &olen);
        if (rc != 0 && rc != P2P_ENOTFOUND && rc != P2P_EDECODE) return rc;
        if (rc == 0 && rec_decode(&on, &eoff, &elen, a->id, old, olen) == 0 && elen > 0 &&
            on.seq == a->put->seq)
            a->vlen = rec_encode(a->val, a->put, old + eoff, elen);
    }
    return kv_put(db, txn, k, sizeof k, a->val, a->vlen);
}

int p2p_nodedb_put_node(p2p_nodedb_t *db, const p2p_node_t *n, const uint8_t *enr, size_t enrlen)
{
    if (!db || !n) return P2P_EINVAL;
    uint8_t fam = n->ep.ip.family;
    if ((fam != 0 && fam != 4 && fam != 6) || enrlen > P2P_NODEDB_ENR_MAX || (enrlen && !enr))
        return P2P_EINVAL;
    uint8_t v[REC_MAX];
    struct node_arg a = {.id = n->id, .val = v, .put = enrlen ? NULL : n};
    a.vlen = rec_encode(v, n, enr, enrlen);
    int rc = run(db, op_put_node, &a, true);
    if (rc == 0) db->st.nodes_put++;
    return rc;
}

static int op_get_node(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct node_arg *a = arg;
    uint8_t k[NODEKEY_LEN], v[REC_MAX];
    size_t vlen = 0, eoff = 0, elen = 0;
    nodekey(k, a->id);
    int rc = kv_get(db, txn, k, sizeof k, v, sizeof v, &vlen);
    if (rc) return rc;
    if (rec_decode(a->n, &eoff, &elen, a->id, v, vlen) != 0) {
        db->st.bad_records++;
        return P2P_EDECODE;
    }
    if (a->enr) {
        if (elen > *a->enrlen) return P2P_ETOOBIG;
        memcpy(a->enr, v + eoff, elen);
        *a->enrlen = elen;
    }
    return 0;
}

int p2p_nodedb_get_node(p2p_nodedb_t *db, p2p_node_t *n, uint8_t *enr, size_t *enrlen,
                        const uint8_t id[32])
{
    if (!db || !n || !id || (enr && !enrlen)) return P2P_EINVAL;
    struct node_arg a = {.n = n, .id = id, .enr = enr, .enrlen = enrlen};
    return run(db, op_get_node, &a, false);
}

static int op_delete_node(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    uint8_t k[NODEKEY_LEN];
    nodekey(k, arg);
    return del_prefix(db, txn, k, sizeof k, SIZE_MAX, NULL, NULL, NULL, NULL, NULL);
}

int p2p_nodedb_delete_node(p2p_nodedb_t *db, const uint8_t id[32])
{
    if (!db || !id) return P2P_EINVAL;
    int rc = run(db, op_delete_node, (void *)id, true);
    if (rc == 0) db->st.nodes_deleted++;
    return rc;
}

/* ---- per-IP items and local seq ---- */

struct item_arg {
    uint8_t k[ITEMKEY_MAX];
    size_t klen;
    uint64_t v;
};

static int op_item_get(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct item_arg *a = arg;
    return kv_get_u64(db, txn, a->k, a->klen, &a->v);
}

static int op_item_put(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct item_arg *a = arg;
    return kv_put_u64(db, txn, a->k, a->klen, a->v);
}

static int item_get(p2p_nodedb_t *db, uint64_t *v, const uint8_t id[32], const p2p_ip_t *ip,
                    const char *field)
{
    if (!v) return P2P_EINVAL;
    *v = 0;
    if (!db || !id || !ip) return P2P_EINVAL;
    struct item_arg a = {.v = 0};
    a.klen = itemkey(a.k, id, ip, field);
    if (!a.klen) return P2P_EINVAL;
    int rc = run(db, op_item_get, &a, false);
    if (rc == 0) *v = a.v;
    return rc;
}

static int item_set(p2p_nodedb_t *db, const uint8_t id[32], const p2p_ip_t *ip, const char *field,
                    uint64_t v)
{
    if (!db || !id || !ip) return P2P_EINVAL;
    struct item_arg a = {.v = v};
    a.klen = itemkey(a.k, id, ip, field);
    if (!a.klen) return P2P_EINVAL;
    return run(db, op_item_put, &a, true);
}

int p2p_nodedb_last_ping(p2p_nodedb_t *db, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return item_get(db, t, id, ip, "lastping");
}

int p2p_nodedb_set_last_ping(p2p_nodedb_t *db, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return item_set(db, id, ip, "lastping", t);
}

int p2p_nodedb_last_pong(p2p_nodedb_t *db, uint64_t *t, const uint8_t id[32], const p2p_ip_t *ip)
{
    return item_get(db, t, id, ip, "lastpong");
}

int p2p_nodedb_set_last_pong(p2p_nodedb_t *db, const uint8_t id[32], const p2p_ip_t *ip, uint64_t t)
{
    return item_set(db, id, ip, "lastpong", t);
}

int p2p_nodedb_findfails(p2p_nodedb_t *db, uint32_t *fails, const uint8_t id[32],
                         const p2p_ip_t *ip)
{
    if (!fails) return P2P_EINVAL;
    uint64_t v = 0;
    int rc = item_get(db, &v, id, ip, "findfail");
    *fails = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return rc;
}

int p2p_nodedb_set_findfails(p2p_nodedb_t *db, const uint8_t id[32], const p2p_ip_t *ip,
                             uint32_t fails)
{
    return item_set(db, id, ip, "findfail", fails);
}

static size_t localkey(uint8_t k[ITEMKEY_MAX], const uint8_t id[32])
{
    memcpy(k, "local:", 6);
    memcpy(k + 6, id, 32);
    memcpy(k + 38, ":seq", 4);
    return LOCALKEY_LEN;
}

int p2p_nodedb_local_seq(p2p_nodedb_t *db, uint64_t *seq, const uint8_t id[32])
{
    if (!seq) return P2P_EINVAL;
    *seq = 0;
    if (!db || !id) return P2P_EINVAL;
    struct item_arg a = {.v = 0};
    a.klen = localkey(a.k, id);
    int rc = run(db, op_item_get, &a, false);
    if (rc == 0) *seq = a.v;
    return rc;
}

int p2p_nodedb_set_local_seq(p2p_nodedb_t *db, const uint8_t id[32], uint64_t seq)
{
    if (!db || !id) return P2P_EINVAL;
    struct item_arg a = {.v = seq};
    a.klen = localkey(a.k, id);
    return run(db, op_item_put, &a, true);
}

/* ---- seeds ---- */

struct seeds_arg {
    p2p_node_t *out;
    size_t n, found;
    uint64_t max_age, now;
};

/* Positions c at the first node record at or after the random key in kb
 * (wrapping once to the start of the node key space).  Returns 0 with the
 * key in kb, P2P_ENOTFOUND (no node reached within SEED_WALK keys, or no
 * nodes at all: *empty set), or P2P_EDB. */
static int seek_node(p2p_nodedb_t *db, DBC *c, uint8_t kb[KEYBUF], size_t klen, DBT *key,
                     bool *empty)
{
    DBT data;
    bool wrapped = false;
    dbt_out(key, kb, KEYBUF);
    key->size = (u_int32_t)klen;
    memset(&data, 0, sizeof data);
    data.flags = DB_DBT_PARTIAL;
    int ret = cur_get(db, c, key, &data, DB_SET_RANGE);
    for (int steps = 0; steps < SEED_WALK; steps++) {
        if (ret && ret != DB_NOTFOUND) return bdb_err(db, ret, "seek");
        if (ret == DB_NOTFOUND || key->size < 2 || memcmp(kb, "n:", 2) != 0) {
            if (wrapped) {
                *empty = true;
                return P2P_ENOTFOUND;
            }
            wrapped = true;
            memcpy(kb, "n:", 2);
            key->size = 2;
            ret = cur_get(db, c, key, &data, DB_SET_RANGE);
            continue;
        }
        if (is_nodekey(kb, key->size)) return 0;
        ret = cur_get(db, c, key, &data, DB_NEXT);
    }
    return P2P_ENOTFOUND;
}

static int op_seeds(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct seeds_arg *a = arg;
    a->found = 0;
    DBC *c;
    int ret = db->dbp->cursor(db->dbp, txn, &c, 0);
    if (ret) return bdb_err(db, ret, "cursor");
    int rc = 0;
    uint8_t kb[KEYBUF], v[REC_MAX];
    for (size_t seeks = 0; a->found < a->n && seeks < 5 * a->n; seeks++) {
        memcpy(kb, "n:", 2);
        for (int i = 0; i < 4; i++) {
            uint64_t r = rng_next(db);
            memcpy(kb + 2 + 8 * i, &r, 8);
        }
        DBT key, data;
        bool empty = false;
        rc = seek_node(db, c, kb, 34, &key, &empty);
        if (rc == P2P_ENOTFOUND) {
            rc = 0;
            if (empty) break;
            continue;
        }
        if (rc) break;
        dbt_out(&data, v, sizeof v);
        ret = c->get(c, &key, &data, DB_CURRENT);
        p2p_node_t nd;
        size_t eoff, elen;
        if (ret == DB_BUFFER_SMALL ||
            (ret == 0 && rec_decode(&nd, &eoff, &elen, kb + 2, v, data.size) != 0)) {
            db->st.bad_records++;
            continue;
        }
        if (ret) {
            rc = bdb_err(db, ret, "read node");
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < a->found && !dup; i++) dup = memcmp(a->out[i].id, nd.id, 32) == 0;
        if (dup || nd.ep.ip.family == 0) continue;
        uint8_t ik[ITEMKEY_MAX];
        size_t iklen = itemkey(ik, nd.id, &nd.ep.ip, "lastpong");
        uint64_t pong = 0;
        rc = kv_get_u64(db, txn, ik, iklen, &pong);
        if (rc) break;
        uint64_t age = a->now > pong ? a->now - pong : 0;
        if (pong == 0 || age > a->max_age || pong > a->now + P2P_NODEDB_FUTURE) continue;
        a->out[a->found++] = nd;
    }
    ret = c->close(c);
    if (ret && rc == 0) rc = bdb_err(db, ret, "cursor close");
    return rc;
}

int p2p_nodedb_query_seeds(p2p_nodedb_t *db, p2p_node_t *out, size_t *nout, size_t n,
                           uint64_t max_age, uint64_t now)
{
    if (!nout) return P2P_EINVAL;
    *nout = 0;
    if (!db || (n && !out) || n > P2P_NODEDB_MAX_SEEDS) return P2P_EINVAL;
    struct seeds_arg a = {.out = out, .n = n, .max_age = max_age, .now = now};
    int rc = run(db, op_seeds, &a, false);
    db->st.seed_queries++;
    if (rc == 0) {
        *nout = a.found;
        db->st.seeds_found += a.found;
    }
    return rc;
}

/* ---- expiry ---- */

static bool stale(uint64_t youngest, uint64_t now)
{
    return youngest == 0 || (now > P2P_NODEDB_EXPIRY && youngest < now - P2P_NODEDB_EXPIRY);
}

/* ---- incremental expiry ---- */

struct step_arg {
    p2p_nodedb_expire_state_t orig; /* the state before the step */
    p2p_nodedb_expire_state_t st;   /* a copy: written back on commit only */
    size_t budget;
    size_t deleted;
    size_t ips; /* addresses whose items were deleted */
};

/* Positions c at the first key after the state's resume key (or at "n:").
 * Out: key/data as cur_get; returns the Berkeley DB code. */
static int step_seek(p2p_nodedb_t *db, DBC *c, const p2p_nodedb_expire_state_t *st, DBT *key,
                     DBT *data, uint8_t *kb)
{
    size_t len = st->keylen ? st->keylen : 2;
    memcpy(kb, st->keylen ? st->key : (const uint8_t *)"n:", len);
    key->size = (u_int32_t)len;
    int ret = cur_get(db, c, key, data, DB_SET_RANGE);
    if (st->keylen == 0) return ret;
    /* skip the resume key itself (or the long keys it is the head of) */
    while (ret == 0 && (key->size == len || key->size > KEYBUF) && memcmp(kb, st->key, len) == 0)
        ret = cur_get(db, c, key, data, DB_NEXT);
    return ret;
}

static void step_remember(p2p_nodedb_expire_state_t *st, const uint8_t *kb, size_t size)
{
    st->keylen = size < sizeof st->key ? size : sizeof st->key;
    memcpy(st->key, kb, st->keylen);
}

/* The filter of a stale node's deletion: the pass judged the node stale
 * from pongs it read in earlier transactions, and p2p-disc handles packets
 * between two steps, so a pong written since makes it fresh again.  Each
 * item is deleted only if its address's last pong is still old, read in
 * the deleting transaction; a fresh one stops the deletion, and the rest
 * of the node stays.  The node key (one per node) is skipped and deleted
 * last (step_delete), so a node that turns out fresh keeps its record. */
struct stale_arg {
    uint64_t now;
    bool have;      /* ip: the address of the last item judged (its items */
    uint8_t ip[16]; /* are adjacent), whose pong was old */
};

static int stale_item(p2p_nodedb_t *db, DB_TXN *txn, const uint8_t *k, size_t klen, void *arg)
{
    struct stale_arg *a = arg;
    if (is_nodekey(k, klen)) return DEL_SKIP;
    if (klen < NODEKEY_LEN + 18 || k[NODEKEY_LEN] != ':' || k[NODEKEY_LEN + 17] != ':')
        return DEL_KEY; /* not an item key */
    const uint8_t *ip = k + NODEKEY_LEN + 1;
    if (a->have && memcmp(a->ip, ip, 16) == 0) return DEL_KEY; /* its pong was read */
    uint8_t pk[ITEMKEY_MAX];
    memcpy(pk, k, NODEKEY_LEN + 18);
    memcpy(pk + NODEKEY_LEN + 18, "lastpong", 8);
    uint64_t t = 0;
    int rc = kv_get_u64(db, txn, pk, sizeof pk, &t);
    if (rc) return rc;
    if (t != 0 && !stale(t, a->now) && t <= a->now + P2P_NODEDB_FUTURE) return DEL_STOP;
    a->have = true;
    memcpy(a->ip, ip, 16);
    return DEL_KEY;
}

/* Deletes up to budget keys of the stale node st->id: its items (unless
 * one turns out fresh: stale_item), then its record. */
static int step_delete(p2p_nodedb_t *db, DB_TXN *txn, struct step_arg *a)
{
    p2p_nodedb_expire_state_t *st = &a->st;
    uint8_t prefix[34];
    memcpy(prefix, "n:", 2);
    memcpy(prefix + 2, st->id, 32);
    bool group_done = false, kept = false;
    size_t left = a->budget > st->touched ? a->budget - st->touched : 0;
    struct stale_arg sa = {.now = st->now};
    int rc = del_prefix(db, txn, prefix, sizeof prefix, left, stale_item, &sa, &st->touched,
                        &group_done, &kept);
    if (rc || !group_done) return rc;
    if (!kept) {
        uint8_t k[NODEKEY_LEN];
        nodekey(k, st->id);
        DBT key;
        dbt_in(&key, k, sizeof k);
        int ret = db->dbp->del(db->dbp, txn, &key, 0);
        if (ret && ret != DB_NOTFOUND) return bdb_err(db, ret, "delete");
        st->deleted++;
        a->deleted++;
    }
    st->deleting = false;
    st->in_group = false;
    if (st->at_end) st->done = true;
    return 0;
}

/* Deletes the items of one address of a node: c is on its "lastpong" key
 * kb; the other fields sort before it.  Returns the Berkeley DB code. */
static int del_ip_items(p2p_nodedb_t *db, DB_TXN *txn, DBC *c, const uint8_t *kb)
{
    static const char *const others[] = {"findfail", "lastping"};
    int ret = c->del(c, 0);
    for (size_t i = 0; ret == 0 && i < sizeof others / sizeof others[0]; i++) {
        uint8_t k[ITEMKEY_MAX];
        size_t flen = strlen(others[i]);
        memcpy(k, kb, NODEKEY_LEN + 18);
        memcpy(k + NODEKEY_LEN + 18, others[i], flen);
        DBT key;
        dbt_in(&key, k, NODEKEY_LEN + 18 + flen);
        ret = db->dbp->del(db->dbp, txn, &key, 0);
        if (ret == DB_NOTFOUND) ret = 0;
    }
    return ret;
}

/* Reads up to budget keys from the resume point, following node groups. */
static int step_scan(p2p_nodedb_t *db, DB_TXN *txn, struct step_arg *a)
{
    p2p_nodedb_expire_state_t *st = &a->st;
    DBC *c;
    int ret = db->dbp->cursor(db->dbp, txn, &c, 0);
    if (ret) return bdb_err(db, ret, "cursor");
    uint8_t kb[KEYBUF], vb[8];
    DBT key, data;
    dbt_out(&key, kb, sizeof kb);
    dbt_out(&data, vb, sizeof vb);
    data.flags |= DB_DBT_PARTIAL;
    data.dlen = sizeof vb;
    ret = step_seek(db, c, st, &key, &data, kb);
    for (;;) {
        bool end = ret == DB_NOTFOUND || (ret == 0 && (key.size < 2 || memcmp(kb, "n:", 2) != 0));
        bool valid = ret == 0 && !end && key.size >= NODEKEY_LEN && key.size <= KEYBUF &&
                     memcmp(kb + 34, ":v4", 3) == 0;
        if (end || (valid && st->in_group && memcmp(kb + 2, st->id, 32) != 0)) {
            /* the group in hand is complete */
            ret = 0;
            if (end) st->at_end = true;
            if (st->in_group && stale(st->youngest, st->now)) {
                st->deleting = true; /* next steps delete it */
                break;
            }
            st->in_group = false;
            if (end) {
                st->done = true;
                break;
            }
        }
        if (ret || st->touched >= a->budget) break;
        st->touched++;
        step_remember(st, kb, key.size);
        if (!valid) {
            db->st.bad_records++; /* a key we never write: skip it */
        } else {
            if (!st->in_group) {
                st->in_group = true;
                memcpy(st->id, kb + 2, 32);
                st->youngest = 0;
            }
            if (item_field_is(kb, key.size, "lastpong") && data.size == 8) {
                uint64_t t = get64(vb);
                if (t > st->youngest && t <= st->now + P2P_NODEDB_FUTURE) st->youngest = t;
                if (t != 0 && stale(t, st->now)) {
                    /* this address's last pong is old: its items go, the
                     * node's other addresses stay (geth's rule) */
                    ret = del_ip_items(db, txn, c, kb);
                    if (ret) break;
                    a->ips++;
                }
            }
        }
        ret = cur_get(db, c, &key, &data, DB_NEXT);
    }
    int rc = ret ? bdb_err(db, ret, "expire scan") : 0;
    ret = c->close(c);
    if (ret && rc == 0) rc = bdb_err(db, ret, "cursor close");
    return rc;
}

static int op_expire_step(p2p_nodedb_t *db, DB_TXN *txn, void *arg)
{
    struct step_arg *a = arg;
    a->st = a->orig; /* (again, when run() retries after a recovery) */
    a->deleted = 0;
    a->ips = 0;
    a->st.touched = 0;
    return a->st.deleting ? step_delete(db, txn, a) : step_scan(db, txn, a);
}

void p2p_nodedb_expire_begin(p2p_nodedb_expire_state_t *st, uint64_t now)
{
    memset(st, 0, sizeof *st);
    st->now = now;
}

int p2p_nodedb_expire_step(p2p_nodedb_t *db, p2p_nodedb_expire_state_t *st, size_t key_budget,
                           size_t *deleted)
{
    if (deleted) *deleted = 0;
    if (!db || !st || key_budget == 0) return P2P_EINVAL;
    if (st->done) {
        st->touched = 0;
        return 0;
    }
    struct step_arg *a = malloc(sizeof *a);
    if (!a) return P2P_ENOMEM;
    int rc = 0;
    /* a step that only closes a group touches no key: go on with the next */
    for (int i = 0; i < 2; i++) {
        a->orig = *st;
        a->budget = key_budget;
        rc = run(db, op_expire_step, a, true);
        if (rc) break;
        bool progressed = a->st.touched > 0 || a->st.done;
        *st = a->st;
        if (deleted) *deleted += a->deleted;
        db->st.expired += a->deleted;
        db->st.nodes_deleted += a->deleted;
        db->st.ips_expired += a->ips;
        if (progressed) break;
    }
    free(a);
    if (rc == 0 && st->done && db->env) {
        int ret = db->env->txn_checkpoint(db->env, 0, 0, 0);
        if (ret) return bdb_err(db, ret, "checkpoint");
        db->st.checkpoints++;
        db->writes = 0;
    }
    return rc;
}

int p2p_nodedb_expire(p2p_nodedb_t *db, size_t *deleted, uint64_t now)
{
    if (deleted) *deleted = 0;
    if (!db) return P2P_EINVAL;
    p2p_nodedb_expire_state_t *st = malloc(sizeof *st);
    if (!st) return P2P_ENOMEM;
    p2p_nodedb_expire_begin(st, now);
    int rc = 0;
    while (!st->done) {
        size_t del = 0;
        rc = p2p_nodedb_expire_step(db, st, P2P_NODEDB_EXPIRE_KEYS, &del);
        if (rc) break;
        if (deleted) *deleted += del;
    }
    free(st);
    return rc;
}
