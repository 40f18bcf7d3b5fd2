/*
 * tests/fuzz/fuzz_config.c: libFuzzer target for the text parsers of the
 * node's configuration (flags, files): IP addresses (p2p_ip_parse), the
 * NetRestrict list (p2p_netlist_parse, --netrestrict), the node key as hex
 * (p2p_nodekey_parse_hex, --nodekeyhex; the same parser reads the nodekey
 * file), the log level (p2p_log_parse_level, --verbosity) and the node
 * lists of --bootnodes, --staticnodes, --trustednodes (tools/nodelist.h,
 * each token through p2p_node_parse).  The first
 * byte picks the parser; the rest is the text (NUL-terminated here, cut at
 * the first NUL as the command line would).
 *
 * Properties: no crash on any string; a parsed IP formats to a text that
 * parses back to the same address; a parsed NetRestrict list holds at most
 * P2P_NETLIST_MAX ranges, each with its host bits clear and a prefix length
 * within the family, and contains its own network address; a parsed node
 * key is a valid secp256k1 key whose hex is the input's (case-folded); a
 * failed parse leaves a message; a log level is -1 or 0..5; a node-list
 * token is non-empty, holds no separator, quote or '#', does not start
 * with '[', has no more ']' than '[' when it ends with one, lies within
 * the input, and a node it parses to formats and parses back to itself.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "actors/datadir.h"
#include "core/log.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/nodelist.h"
#include "wire/enode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ip(const char *s)
{
    p2p_ip_t ip, back;
    if (p2p_ip_parse(&ip, s)) return;
    if (ip.family != 4 && ip.family != 6) abort();
    char out[P2P_IP_STRLEN];
    if (p2p_ip_parse(&back, p2p_ip_format(out, &ip)) || !p2p_ip_equal(&ip, &back)) abort();
}

static void check_netlist(const char *s)
{
    static p2p_netlist_t l;
    int rc = p2p_netlist_parse(&l, s);
    if (rc) {
        if (l.n != 0 || (rc != P2P_EINVAL && rc != P2P_ETOOBIG)) abort();
        return;
    }
    if (l.n > P2P_NETLIST_MAX) abort();
    for (unsigned i = 0; i < l.n; i++) {
        const p2p_ip_t *net = &l.nets[i].net;
        unsigned bits = l.nets[i].bits, len = p2p_ip_len(net);
        if ((net->family != 4 && net->family != 6) || bits > len * 8) abort();
        for (unsigned k = 0; k < len; k++) {
            unsigned lo = k * 8;
            uint8_t host = lo >= bits ? 0xff : bits - lo < 8 ? (uint8_t)(0xff >> (bits - lo)) : 0;
            if (net->addr[k] & host) abort();
        }
        if (!p2p_netlist_contains(&l, net)) abort();
    }
}

static void check_nodekey(const char *s)
{
    uint8_t priv[32], pub[64];
    char msg[160];
    memset(msg, 'x', sizeof msg);
    if (p2p_nodekey_parse_hex(priv, msg, sizeof msg, s)) {
        if (msg[0] == 0 || !memchr(msg, 0, sizeof msg)) abort();
        return;
    }
    if (p2p_secp_pubkey(pub, priv)) abort();
    const char *hex = s;
    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex += 2;
    char out[65];
    p2p_hex_encode(out, priv, 32);
    for (int i = 0; i < 64; i++)
        if (out[i] != tolower((unsigned char)hex[i])) abort();
    p2p_wipe(priv, sizeof priv);
}

struct list_check {
    const char *start, *end; /* the input buffer */
    size_t n;
};

static int check_token(char *t, void *arg)
{
    struct list_check *c = arg;
    size_t len = strlen(t);
    if (!len || t < c->start || t + len > c->end || t[0] == '[') abort();
    if (strpbrk(t, ", \t\r\n\"#")) abort();
    size_t open = 0, close = 0;
    for (size_t i = 0; i < len; i++) {
        open += t[i] == '[';
        close += t[i] == ']';
    }
    if (t[len - 1] == ']' && close > open) abort();
    if (++c->n > (size_t)(c->end - c->start)) abort();
    p2p_node_t n, back;
    char url[P2P_ENODE_MAX_TEXT];
    if (p2p_node_parse(&n, t) == 0 && n.ep.ip.family != 0 &&
        p2p_enode_format(url, sizeof url, &n) == 0) {
        if (p2p_node_parse(&back, url) != 0 || memcmp(back.id, n.id, 32) != 0 ||
            !p2p_ip_equal(&back.ep.ip, &n.ep.ip) || back.ep.tcp != n.ep.tcp ||
            back.ep.udp != n.ep.udp)
            abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return 0;
    char *s = malloc(size);
    if (!s) return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    switch (data[0] % 5) {
    case 0:
        check_ip(s);
        break;
    case 1:
        check_netlist(s);
        break;
    case 2:
        check_nodekey(s);
        break;
    case 4: {
        struct list_check c = {.start = s, .end = s + size - 1};
        if (nodelist_each(s, check_token, &c) != 0) abort();
        break;
    }
    default: {
        int lvl = p2p_log_parse_level(s);
        if (lvl < -1 || lvl > 5) abort();
        break;
    }
    }
    free(s);
    return 0;
}
