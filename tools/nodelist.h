/*
 * tools/nodelist.h: the node lists of devp2pd's --bootnodes,
 * --staticnodes and --trustednodes, given as a flag's value or read from a
 * file: URLs (enode://, enr: or bare hex) separated by commas, whitespace
 * or lines, with '#' comments to the end of a line, or a JSON array of
 * strings (geth's static-nodes.json).  Only the splitting is here; each
 * token is a node URL for p2p_node_parse.  No I/O, no allocation.
 *
 * The brackets of a JSON array are taken off the tokens next to them
 * ("[enode://...", "...:30303]", a lone "[" or "]"); the brackets of an
 * IPv6 address in a URL ("@[::1]:30303") balance and stay.
 */
#ifndef P2P_TOOLS_NODELIST_H
#define P2P_TOOLS_NODELIST_H

#include <stddef.h>

/* Calls fn(token, ctx) for each node of text, in order; tokens are cut in
 * place (text is modified) and are never empty.  Stops at fn's first
 * non-zero result and returns it; else returns 0. */
int nodelist_each(char *text, int (*fn)(char *token, void *ctx), void *ctx);

#endif
