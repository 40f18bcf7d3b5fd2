/*
 * actors/datadir.h: the node's data directory, its process lock and the node
 * key file.
 *
 * Layout of <datadir> (created with mode 0700 when missing):
 *   LOCK      empty file; an exclusive flock(2) on it is held while the node
 *             runs, so a second process on the same directory fails at once
 *             (P2P_EEXIST, "datadir DIR is in use by another process").  The
 *             kernel releases it when the process dies, even by kill -9.
 *   nodekey   the secp256k1 private key: 64 hex characters and a newline, mode
 *             0600 (geth's format; as geth, a file without the newline, or
 *             with up to two '\n'/'\r' after the digits, is read too).
 *             Written atomically: nodekey.tmp, fsync, rename,
 *             fsync of the directory.
 *   nodes/    the node database (actors/nodedb.h).
 *
 * Errors come with a one-line human message in the caller's msg buffer
 * (msg may be NULL).  Key material read or generated here is wiped from
 * every temporary buffer.
 *
 * Thread-safety: the server's start-up code calls these once, before the
 * actor threads exist; a p2p_datadir_t is owned by its caller.  The lock is
 * tied to the open file description, so it is shared with children forked
 * while it is held (the fd is close-on-exec).
 */
#ifndef P2P_ACTORS_DATADIR_H
#define P2P_ACTORS_DATADIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct p2p_datadir {
    char *path; /* the directory, as given (owned) */
    int lockfd; /* holds the flock on <path>/LOCK, -1 when closed */
} p2p_datadir_t;

/* Creates path (and missing parents, mode 0700) if needed and takes the
 * exclusive lock.  Out: *dd.
 * Returns 0, P2P_EEXIST (another process holds the lock), P2P_ESYS (cannot
 * create, not a directory, not writable), P2P_EINVAL, P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_datadir_open(p2p_datadir_t *dd, char *msg, size_t msglen, const char *path);

/* Releases the lock and frees the path.  Safe on a zeroed or closed dd. */
void p2p_datadir_close(p2p_datadir_t *dd);

/* Loads <datadir>/nodekey, or generates a new key and writes it atomically
 * when the file does not exist.  Out: priv; *created (may be NULL) is 1 if a
 * new key was written.  Returns 0, P2P_EBADKEY (malformed file: the file is
 * left untouched), P2P_ENOTFOUND (nodekey is a symlink whose target is
 * missing: refused, the symlink is kept), P2P_ESYS (I/O), P2P_ECRYPTO (no
 * randomness). */
P2P_MUST_CHECK int p2p_datadir_nodekey(uint8_t priv[32], int *created, char *msg, size_t msglen,
                                       const p2p_datadir_t *dd);

/* Loads a key file in the nodekey format (--nodekey FILE).
 * Returns 0, P2P_EBADKEY, P2P_ENOTFOUND (no such file), P2P_ESYS. */
P2P_MUST_CHECK int p2p_nodekey_load(uint8_t priv[32], char *msg, size_t msglen, const char *path);

/* Parses a key given as hex text (--nodekeyhex): exactly 64 hex digits, an
 * optional "0x" prefix.  Returns 0 or P2P_EBADKEY. */
P2P_MUST_CHECK int p2p_nodekey_parse_hex(uint8_t priv[32], char *msg, size_t msglen,
                                         const char *hex);

/* Writes priv to path in the nodekey format, atomically (path.tmp, fsync,
 * rename, fsync of the directory), mode 0600.  Returns 0 or P2P_ESYS. */
P2P_MUST_CHECK int p2p_nodekey_save(char *msg, size_t msglen, const char *path,
                                    const uint8_t priv[32]);

#endif
