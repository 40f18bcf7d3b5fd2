/*
 * wire/enode.h: enode URLs and the "any node string" parser.
 *
 * Form: enode://<128 hex digits>@<ip>:<tcp>[?discport=<udp>]
 *   - the hex is the 64-byte public key X||Y (upper or lower case);
 *   - <ip> is an IPv4 literal or an IPv6 literal in brackets; host names
 *     are not resolved (P2P_EUNSUPPORTED);
 *   - udp = tcp unless discport is given; other query parameters are ignored;
 *     as in the reference client, the first discport counts, an empty one
 *     is ignored, and ports may carry leading zeros;
 *   - "enode://<hex>" without "@..." and a bare 128-hex string are accepted
 *     as incomplete nodes (no address: family 0, ports 0);
 *   - as URL parsers (geth's among them) take them: the scheme in any case
 *     ("ENODE://"), an empty path after the port ("...:30303/") and a
 *     fragment ("#...", ignored).
 * The key is validated on the curve; the node ID is keccak256(key).
 * Formatting writes the canonical form (lower-case hex, "?discport=" only
 * when udp != tcp, "enode://<hex>" alone for a node without an address).
 *
 * Errors: P2P_EINVAL (syntax: scheme, hex, port, brackets, missing parts),
 * P2P_EBADKEY (not a curve point), P2P_EUNSUPPORTED (host name),
 * P2P_ETOOBIG (output buffer).
 *
 * Thread-safety: pure functions; any thread.
 */
#ifndef P2P_WIRE_ENODE_H
#define P2P_WIRE_ENODE_H

#include <stddef.h>

#include "core/err.h"
#include "wire/node.h"

enum p2p_enode_limits {
    P2P_ENODE_MAX_TEXT = 220, /* longest canonical URL plus NUL (IPv6, discport) */
    P2P_ENODE_MAX_INPUT = 512 /* longer input strings are rejected */
};

/* Parses an enode URL or a bare 128-hex key.  Out: n (seq 0).  Returns 0
 * or an error above. */
P2P_MUST_CHECK int p2p_enode_parse(p2p_node_t *n, const char *s);

/* Formats n as an enode URL, NUL-terminated, into out[0..cap).  Returns 0 or
 * P2P_ETOOBIG.  P2P_ENODE_MAX_TEXT bytes always suffice. */
P2P_MUST_CHECK int p2p_enode_format(char *out, size_t cap, const p2p_node_t *n);

/* Parses "enr:..." (verified record, p2p_enr_to_node) or an enode URL or a
 * bare hex key into n.  Returns 0 or the parser's error. */
P2P_MUST_CHECK int p2p_node_parse(p2p_node_t *n, const char *s);

/* As p2p_node_parse; on failure *why (why may be NULL) is a static phrase
 * naming what is wrong, for messages ("host names are not resolved: give
 * an IP address", "no port: enode://KEY@IP:PORT"), or NULL. */
P2P_MUST_CHECK int p2p_node_parse_why(p2p_node_t *n, const char *s, const char **why);

/* As p2p_node_parse_why, for a node whose sockets reach one address family
 * (4 or 6; 0: both): a record naming an address of each gives the one of
 * that family (p2p_enr_to_node_for).  URLs name one address: unchanged. */
P2P_MUST_CHECK int p2p_node_parse_for(p2p_node_t *n, const char *s, unsigned family,
                                      const char **why);

#endif
