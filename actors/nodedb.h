/*
 * actors/nodedb.h: the persistent node database (discovery v4).
 *
 * What it stores, in one Berkeley DB B-tree inside a transactional
 * environment under <datadir>/nodes/ (keys as in PROTOCOL.md, ids binary):
 *   "version"                          schema version (8 bytes BE); on a
 *                                      mismatch the database is wiped
 *   "n:" id32 ":v4"                    node record (endpoint, pubkey, ENR
 *                                      seq and the raw ENR if known)
 *   "n:" id32 ":v4:" ip16 ":lastping"  unix seconds of the last ping received
 *                                      from (id, ip) (their proof of us)
 *   "n:" id32 ":v4:" ip16 ":lastpong"  unix seconds of the last pong received
 *                                      from (id, ip): our endpoint proof of
 *                                      them (the 24 h bond)
 *   "n:" id32 ":v4:" ip16 ":findfail"  consecutive findnode failures
 *   "local:" id32 ":seq"               our own ENR sequence number
 * ip16 is the 16-byte form of the address (IPv4 mapped as ::ffff:a.b.c.d).
 *
 * Durability: every call is one committed transaction.  By default commits
 * use DB_TXN_WRITE_NOSYNC: the log record is written to the operating system
 * (write(2)) before the commit returns, but not fsync'ed.  Every committed
 * record therefore survives a crash or kill -9 of the process (the OS page
 * cache survives), and the environment is recovered (DB_RECOVER) on every
 * open; a power loss or kernel crash may lose the last transactions (never
 * corrupt the database).  P2P_NODEDB_SYNC fsyncs the log at every commit so
 * committed records also survive a power loss, at the cost of one fsync per
 * write.  The node DB is a cache of the network, so the default favours speed.
 *
 * Errors: every Berkeley DB error becomes P2P_EDB with a logged message
 * (db_strerror plus Berkeley DB's own detail), also kept for
 * p2p_nodedb_errmsg.  If the environment panics (DB_RUNRECOVERY) the handle
 * reopens it once with recovery and retries the operation.  If the database
 * file cannot be opened because it is damaged (recovery fails, a page is
 * missing or fails its checks) or of another format or schema version, open
 * wipes <datadir>/nodes/ and starts empty (counted in stats.wipes).  Damage
 * found later (a missing or bad page, or an operation that panics again
 * right after a successful recovery) wipes it the same way while running;
 * the failing call returns P2P_EDB, the next ones use the empty database.
 * A file that outlived its log files (they were removed, or the file was
 * copied from another data directory: Berkeley DB then refuses to write
 * its pages, "past end of log") is not damaged: its page LSNs are reset
 * (DB_ENV->lsn_reset, counted in stats.lsn_resets) and the call is
 * retried; its records are kept.
 * A failure Berkeley DB attributes to the storage (a full disk, an I/O
 * error, a read-only file system: ENOSPC, EDQUOT, EIO, EROFS, EFBIG in its
 * message) is never taken for damage: open then fails with P2P_EDB naming
 * the error and leaves the files as they are.
 *
 * Time: every function takes the current time as unix seconds from the
 * caller; nothing here reads a clock, so tests drive it.
 *
 * Thread-safety: a handle belongs to one thread (the discovery table,
 * p2p-disc); it has no threads of its own and no internal locking for
 * callers.  Single-process access to a data directory is enforced by the
 * datadir lock (actors/datadir.h), not here.
 */
#ifndef P2P_ACTORS_NODEDB_H
#define P2P_ACTORS_NODEDB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/node.h"

#define P2P_NODEDB_SCHEMA 1         /* value of the "version" key */
#define P2P_NODEDB_ENR_MAX 300      /* largest ENR stored (EIP-778 limit) */
#define P2P_NODEDB_EXPIRY 86400u    /* nodes without a pong for 24 h expire */
#define P2P_NODEDB_MAX_SEEDS 1024   /* upper bound of n for query_seeds */
#define P2P_NODEDB_EXPIRE_KEYS 1024 /* keys per expiry transaction (p2p_nodedb_expire) */
/* A lastpong stamp more than this many seconds after now was written before
 * the wall clock went back: its age is unknown, so it makes a node neither a
 * seed nor young enough to keep (the rule of P2P_DISC_BOND_FUTURE_S). */
#define P2P_NODEDB_FUTURE 300u

/* Open flags. */
#define P2P_NODEDB_SYNC 0x1u /* fsync the log at every commit (power-loss safe) */

typedef struct p2p_nodedb p2p_nodedb_t;

typedef struct p2p_nodedb_stats {
    uint64_t commits;       /* transactions committed */
    uint64_t aborts;        /* transactions aborted (after an error) */
    uint64_t errors;        /* Berkeley DB errors (each logged) */
    uint64_t recoveries;    /* environment reopened after DB_RUNRECOVERY */
    uint64_t wipes;         /* database wiped (schema mismatch or damage) */
    uint64_t checkpoints;   /* checkpoints taken */
    uint64_t nodes_put;     /* node records written */
    uint64_t nodes_deleted; /* node records (with their items) deleted */
    uint64_t expired;       /* nodes deleted by p2p_nodedb_expire */
    uint64_t seed_queries;  /* p2p_nodedb_query_seeds calls */
    uint64_t seeds_found;   /* nodes returned by those calls */
    uint64_t bad_records;   /* stored values that failed to decode */
    uint64_t ips_expired;   /* addresses of live nodes whose items expired */
    uint64_t lsn_resets;    /* file LSNs reset (its log files were gone) */
} p2p_nodedb_stats_t;

/* Opens (creating if needed) the node database in <datadir>/nodes/, running
 * recovery.  datadir must exist; nodes/ is created with mode 0700.
 * Out: *db, the handle.  msg (may be NULL) receives a one-line reason on
 * failure.  flags: 0 or P2P_NODEDB_SYNC.
 * Returns 0, P2P_EINVAL, P2P_ESYS (cannot create nodes/), P2P_EDB, P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_nodedb_open(p2p_nodedb_t **db, char *msg, size_t msglen, const char *datadir,
                                   unsigned flags);

/* Checkpoints, flushes and closes.  NULL is accepted. */
void p2p_nodedb_close(p2p_nodedb_t *db);

/* The last error message (empty string if none). */
const char *p2p_nodedb_errmsg(const p2p_nodedb_t *db);

/* Counters (a copy). */
void p2p_nodedb_stats(const p2p_nodedb_t *db, p2p_nodedb_stats_t *out);

/* Stores node n under n->id, replacing any record.  enr (enrlen <=
 * P2P_NODEDB_ENR_MAX bytes, may be NULL/0) is the node's raw signed record;
 * without one (NULL/0) a stored ENR of the same seq as n is kept (one of
 * another seq is dropped).
 * Returns 0, P2P_EINVAL (bad address family, ENR too big), P2P_EDB. */
P2P_MUST_CHECK int p2p_nodedb_put_node(p2p_nodedb_t *db, const p2p_node_t *n, const uint8_t *enr,
                                       size_t enrlen);

/* Reads the node with this id.  Out: *n; if enr is not NULL, the stored ENR
 * into enr[0..*enrlen) where *enrlen is the capacity on input and the length
 * on output (0 if none was stored).
 * Returns 0, P2P_ENOTFOUND, P2P_ETOOBIG (enr capacity), P2P_EDECODE (the
 * stored value is damaged; it is left in place), P2P_EDB. */
P2P_MUST_CHECK int p2p_nodedb_get_node(p2p_nodedb_t *db, p2p_node_t *n, uint8_t *enr,
                                       size_t *enrlen, const uint8_t id[32]);

/* Deletes the node record and every per-IP item of this id.
 * Returns 0 (also if nothing was stored), P2P_EDB. */
P2P_MUST_CHECK int p2p_nodedb_delete_node(p2p_nodedb_t *db, const uint8_t id[32]);

/* Per (id, ip) items.  Getters return 0 with *v = 0 when nothing is stored.
 * ip must have family 4 or 6 (P2P_EINVAL otherwise).  Returns 0, P2P_EINVAL,
 * P2P_EDB. */
P2P_MUST_CHECK int p2p_nodedb_last_ping(p2p_nodedb_t *db, uint64_t *t, const uint8_t id[32],
                                        const p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_nodedb_set_last_ping(p2p_nodedb_t *db, const uint8_t id[32],
                                            const p2p_ip_t *ip, uint64_t t);
P2P_MUST_CHECK int p2p_nodedb_last_pong(p2p_nodedb_t *db, uint64_t *t, const uint8_t id[32],
                                        const p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_nodedb_set_last_pong(p2p_nodedb_t *db, const uint8_t id[32],
                                            const p2p_ip_t *ip, uint64_t t);
P2P_MUST_CHECK int p2p_nodedb_findfails(p2p_nodedb_t *db, uint32_t *fails, const uint8_t id[32],
                                        const p2p_ip_t *ip);
P2P_MUST_CHECK int p2p_nodedb_set_findfails(p2p_nodedb_t *db, const uint8_t id[32],
                                            const p2p_ip_t *ip, uint32_t fails);

/* Our own ENR sequence number for local id (0 if never stored). */
P2P_MUST_CHECK int p2p_nodedb_local_seq(p2p_nodedb_t *db, uint64_t *seq, const uint8_t id[32]);
P2P_MUST_CHECK int p2p_nodedb_set_local_seq(p2p_nodedb_t *db, const uint8_t id[32], uint64_t seq);

/* Picks up to n (<= P2P_NODEDB_MAX_SEEDS) distinct random nodes whose last
 * pong at their stored IP is at most max_age seconds before now and at most
 * P2P_NODEDB_FUTURE seconds after it, by random
 * seeks into the key space (at most 5*n seeks).  Out: out[0..*nout).
 * Returns 0, P2P_EINVAL, P2P_EDB. */
P2P_MUST_CHECK int p2p_nodedb_query_seeds(p2p_nodedb_t *db, p2p_node_t *out, size_t *nout, size_t n,
                                          uint64_t max_age, uint64_t now);

/* Deletes every node (record and items) whose most recent pong, over all
 * its IPs, is older than P2P_NODEDB_EXPIRY seconds before now, or that has
 * no pong at all (a pong more than P2P_NODEDB_FUTURE seconds after now does
 * not count); of the nodes that stay, deletes the items (lastping,
 * lastpong, findfail) of every IP whose own last pong is that old, as geth
 * does (counted in stats.ips_expired).  Works in transactions of at most P2P_NODEDB_EXPIRE_KEYS
 * keys (p2p_nodedb_expire_step) and checkpoints at the end; one call runs a whole pass (the
 * discovery thread runs the steps one per wake-up instead).  Out: *deleted (may be NULL), the node
 * ids deleted.  Returns 0, P2P_EDB. */
P2P_MUST_CHECK int p2p_nodedb_expire(p2p_nodedb_t *db, size_t *deleted, uint64_t now);

/* Incremental expiry: the same rule as p2p_nodedb_expire, in steps that
 * each touch (read or delete) at most key_budget keys in one transaction,
 * so a node with any number of items (one ID seen at many IPs) never makes
 * one long transaction or one long call.  A pass over the key space keeps
 * its position in a caller-owned state, resumable in the middle of one
 * node's items: a node's items are read (keeping its youngest pong) across
 * steps, then, if it is stale, deleted across steps.  A pong written for a
 * node after the steps that read it saves it: each delete step reads the
 * pong of every address again before it deletes that address's items, and
 * a fresh one ends the deletion (items already deleted stay deleted; the
 * node's record goes last, so it stays).  The pass ends with a checkpoint. */
typedef struct p2p_nodedb_expire_state {
    uint64_t now;  /* the pass's time (unix s) */
    bool done;     /* the pass is over */
    bool at_end;   /* the scan reached the end of the node keys */
    bool in_group; /* id: items read so far, youngest: their newest pong */
    bool deleting; /* id is stale: deleting its keys */
    uint8_t id[32];
    uint64_t youngest;
    size_t keylen;     /* resume after this key (0: from the start) */
    uint8_t key[1024]; /* (the first 1024 bytes of a longer, foreign key) */
    size_t deleted;    /* nodes deleted in this pass */
    size_t touched;    /* keys the last step touched */
} p2p_nodedb_expire_state_t;

/* Starts a pass at now. */
void p2p_nodedb_expire_begin(p2p_nodedb_expire_state_t *st, uint64_t now);
/* Runs one step of at most key_budget (>= 1) keys.  Out: *deleted (may be
 * NULL), nodes deleted by this step; st->done once the pass is over (a
 * step on a finished pass does nothing).  Returns 0, P2P_EINVAL, P2P_EDB
 * (the state is unchanged: the step may be run again). */
P2P_MUST_CHECK int p2p_nodedb_expire_step(p2p_nodedb_t *db, p2p_nodedb_expire_state_t *st,
                                          size_t key_budget, size_t *deleted);

/* For tests: puts the environment in the panic state, so that the next
 * operation sees DB_RUNRECOVERY and exercises the reopen path. */
void p2p__nodedb_panic(p2p_nodedb_t *db);

/* For tests and fuzzing: writes key -> val exactly as given (val NULL:
 * deletes key), bypassing the record encoding, in one transaction, as a
 * damaged or foreign file would hold it.  klen 1..4096.  Returns 0,
 * P2P_EINVAL or P2P_EDB. */
P2P_MUST_CHECK int p2p__nodedb_put_raw(p2p_nodedb_t *db, const void *key, size_t klen,
                                       const void *val, size_t vlen);

#endif
