/*
 * core/err.h: error codes shared by every module.
 *
 * Functions return int: 0 on success or a negative P2P_E* code.  Every code
 * has a static, human-readable string (p2p_strerror).  "Need more bytes"
 * (P2P_EMORE) is distinct from "invalid" (P2P_EDECODE and friends), so
 * stream decoders can tell a short read from a hostile peer.
 *
 * Thread-safety: everything here is pure and may be called from any thread.
 */
#ifndef P2P_CORE_ERR_H
#define P2P_CORE_ERR_H

#define P2P_MUST_CHECK __attribute__((warn_unused_result))

/* X-macro: name, value, description.  Values are stable (they appear in
 * logs, traces and metrics). */
#define P2P_ERRNO_MAP(X)                                                                           \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EMORE, -3, "need more bytes")                                                                \
    X(EDECODE, -4, "malformed encoding")                                                           \
    X(ENONCANON, -5, "non-canonical encoding")                                                     \
    X(ETOOBIG, -6, "size limit exceeded")                                                          \
    X(EBADKEY, -7, "invalid public or private key")                                                \
    X(EBADSIG, -8, "invalid signature")                                                            \
    X(EBADMAC, -9, "message authentication failed")                                                \
    X(EBADHASH, -10, "hash mismatch")                                                              \
    X(EEXPIRED, -11, "expired")                                                                    \
    X(EFULL, -12, "mailbox or buffer full")                                                        \
    X(EEMPTY, -13, "empty (no input, no message)")                                                 \
    X(ETIMEDOUT, -14, "timed out")                                                                 \
    X(ECLOSED, -15, "closed or shutting down")                                                     \
    X(EIO, -16, "input/output error")                                                              \
    X(EEXIST, -17, "already exists")                                                               \
    X(ENOTFOUND, -18, "not found")                                                                 \
    X(EUNSUPPORTED, -19, "unsupported")                                                            \
    X(ESYS, -20, "system call failed (see errno)")                                                 \
    X(ECRYPTO, -21, "cryptographic operation failed")                                              \
    X(EPROTO, -22, "protocol violation")                                                           \
    X(ERANGE, -23, "value out of range")                                                           \
    X(EDB, -24, "node database error")                                                             \
    X(ESTATE, -25, "operation invalid in current state")                                           \
    X(ERESTRICT, -26, "address not allowed by netrestrict")                                        \
    X(ELIMIT, -27, "connection or rate limit reached")

enum p2p_err {
#define P2P__ERR_ENUM(name, val, desc) P2P_##name = (val),
    P2P_ERRNO_MAP(P2P__ERR_ENUM)
#undef P2P__ERR_ENUM
};

/* Returns a static string describing code (never NULL; "success" for 0,
 * "unknown error" for codes outside the map). */
const char *p2p_strerror(int code);

/* Returns the symbolic name of code, such as "EDECODE" (never NULL). */
const char *p2p_errname(int code);

#endif
