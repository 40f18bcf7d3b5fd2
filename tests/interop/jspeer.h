/*
 * tests/interop/jspeer.h: drive an @ethereumjs/devp2p peer (peer.mjs) from a
 * C interop test.
 *
 * jspeer_start() runs `node tests/interop/peer.mjs --stdin <args>` with its
 * stdin and stdout on pipes, waits for its "listening" event and returns a
 * handle.  A reader thread collects every JSON event line (see
 * tests/interop/README.md for the event format) into a log, so the child
 * never blocks on a full pipe; tests wait for events with a deadline and send
 * stdin commands (dial, bootstrap, disconnect, send, ping, table, quit).
 *
 * Threads: one handle belongs to one test thread; only the reader thread
 * inside touches the pipe.  The log's json_t objects stay valid until
 * jspeer_free().  SIGPIPE is ignored process-wide once a peer is started (a
 * dead child must not kill the test).  The child exits by itself when its
 * --duration ends (default 120 s) or when the test process dies.
 * Loopback only (peer.mjs refuses anything else).
 */
#ifndef P2P_TESTS_INTEROP_JSPEER_H
#define P2P_TESTS_INTEROP_JSPEER_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

typedef struct jspeer jspeer_t;

/* Returns 0 if node and tests/interop/node_modules/@ethereumjs/devp2p are
 * present; else prints why to stderr and returns P2P_ENOTFOUND. */
P2P_MUST_CHECK int jspeer_available(void);

/* Starts peer.mjs with the given arguments (a NULL-terminated list of
 * strings, e.g. "--mode", "rlpx", "--dial", enode, NULL) and waits up to
 * timeout_ms for "listening".  Returns 0 and *out, P2P_ENOTFOUND (no node or
 * node_modules), P2P_ETIMEDOUT or P2P_ECLOSED (it exited: it printed why),
 * P2P_ESYS, P2P_ENOMEM. */
P2P_MUST_CHECK int jspeer_start(jspeer_t **out, int timeout_ms, ...) __attribute__((sentinel));

/* From the "listening" event: the enode URL, the 128-hex public key, the
 * ports (-1 when that part is not running). */
const char *jspeer_enode(const jspeer_t *p);
const char *jspeer_id(const jspeer_t *p);
int jspeer_tcp_port(const jspeer_t *p);
int jspeer_udp_port(const jspeer_t *p);

/* The number of events received so far: pass it as `from` to wait only for
 * events after this point. */
size_t jspeer_mark(jspeer_t *p);

/* Waits up to timeout_ms for an event at index >= from named ev and, if key
 * is not NULL, whose field key matches val (strings compared exactly,
 * integers and booleans by their text, e.g. "3", "true"; val NULL matches a
 * JSON null).  Returns the event (borrowed) or NULL on timeout or exit. */
json_t *jspeer_wait(jspeer_t *p, size_t from, int timeout_ms, const char *ev, const char *key,
                    const char *val);

/* Counts the events at index >= from matching as in jspeer_wait, without
 * waiting. */
size_t jspeer_count(jspeer_t *p, size_t from, const char *ev, const char *key, const char *val);

/* Writes one command line to its stdin (printf-style, newline added). */
P2P_MUST_CHECK int jspeer_cmd(jspeer_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sends SIGTERM and waits up to timeout_ms for the exit (then SIGKILL).
 * Returns the exit status (0-255), or 128+signal if it was killed.  The log
 * stays readable until jspeer_free(). */
int jspeer_stop(jspeer_t *p, int timeout_ms);

/* Prints every event to stderr, each line prefixed by name. */
void jspeer_dump(jspeer_t *p, const char *name);

/* Kills the child if still running, joins the reader, frees everything. */
void jspeer_free(jspeer_t *p);

#endif
