/*
 * tools/cmd_enr.c: devp2p enrdump <enr:...|file>.
 *
 * Decodes the record without trusting it (structure first, then the v4
 * signature separately, so a record with a bad signature is still shown
 * with "signature: INVALID" and exit status 1), and prints every key/value
 * pair: the standard keys decoded (id, secp256k1, ip, ip6, tcp, udp, tcp6,
 * udp6), any other key, or a standard one whose value is not of its form
 * (an ip that is not 4 bytes, an ip6 not 16), as the hex of its raw RLP
 * item.  Main thread only.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/netutil.h"
#include "tools/cli.h"
#include "tools/cmds.h"
#include "wire/enode.h"
#include "wire/enr.h"
#include "wire/rlp.h"

/* base64url without padding (the ENR text alphabet).  Returns the decoded
 * length or -1. */
static long b64url_decode(uint8_t *out, size_t cap, const char *s)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        int v;
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap) return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6) return -1; /* a lone trailing character */
    return (long)n;
}

static void print_value(const char *key, size_t klen, const uint8_t *raw, size_t rawlen)
{
    p2p_rlp_t c;
    p2p_rlp_init(&c, raw, rawlen);
    p2p_rlp_item_t it;
    bool bytes = p2p_rlp_next(&c, &it) == 0 && it.kind == P2P_RLP_BYTES;
    char kq[80];
    snprintf(kq, sizeof kq, "%.*s:", (int)(klen > 60 ? 60 : klen), key);
    for (char *p = kq; *p; p++)
        if (!isprint((unsigned char)*p)) *p = '?';
    printf("  %-12s ", kq);
#define KEY(k) (klen == strlen(k) && memcmp(key, k, klen) == 0)
    if (bytes && KEY("id")) {
        bool text = true;
        for (size_t i = 0; i < it.len; i++)
            if (!isprint(it.payload[i])) text = false;
        if (text) {
            printf("%.*s\n", (int)it.len, (const char *)it.payload);
            return;
        }
    } else if (bytes && ((KEY("ip") && it.len == 4) || (KEY("ip6") && it.len == 16))) {
        /* EIP-778: ip is 4 bytes, ip6 16; another length is no address of
         * that key (the raw item below shows it) */
        p2p_ip_t ip = {.family = it.len == 4 ? 4 : 6};
        memcpy(ip.addr, it.payload, it.len);
        char s[P2P_IP_STRLEN];
        printf("%s\n", p2p_ip_format(s, &ip));
        return;
    } else if (bytes && (KEY("tcp") || KEY("udp") || KEY("tcp6") || KEY("udp6")) && it.len <= 2 &&
               (it.len == 0 || it.payload[0] != 0)) {
        unsigned v = 0;
        for (size_t i = 0; i < it.len; i++) v = v << 8 | it.payload[i];
        printf("%u\n", v);
        return;
    } else if (bytes && KEY("secp256k1")) {
        printf("%s\n", cli_hex(it.payload, it.len));
        return;
    }
#undef KEY
    /* unknown key or unexpected form: the raw RLP item */
    if (rawlen > 128)
        printf("%s... (%zu bytes, raw RLP)\n", cli_hex(raw, 128), rawlen);
    else
        printf("%s (raw RLP)\n", cli_hex(raw, rawlen));
}

void enr_dump(const p2p_enr_t *r, int verify_rc)
{
    uint8_t id[32];
    char scheme[P2P_ENR_MAX_ID_LEN + 1] = "";
    if (p2p_enr_id(r, scheme) != 0) snprintf(scheme, sizeof scheme, "no id");
    if (p2p_enr_node_id(r, id) == 0)
        printf("node id:   %s\n", cli_hex(id, 32));
    else
        printf("node id:   unknown (no valid secp256k1 key)\n");
    printf("seq:       %llu\n", (unsigned long long)r->seq);
    if (verify_rc == 0)
        printf("signature: valid (%s, %s)\n", scheme, cli_hex(r->sig, r->siglen));
    else
        printf("signature: INVALID (%s)\n", p2p_strerror(verify_rc));
    printf("pairs:     %u\n", r->n);
    for (unsigned i = 0; i < r->n; i++)
        print_value((const char *)r->data + r->kv[i].koff, r->kv[i].klen, r->data + r->kv[i].voff,
                    r->kv[i].vlen);
    p2p_node_t n;
    char url[P2P_ENODE_MAX_TEXT];
    if (p2p_enr_to_node(&n, r) == 0 && p2p_enode_format(url, sizeof url, &n) == 0)
        printf("enode:     %s\n", url);
}

int cmd_enrdump(int argc, char **argv)
{
    static const cli_cmd_t cmd = {"enrdump", "<enr:...|file>",
                                  "Decodes a node record (text form, or a file holding it), checks "
                                  "its signature and prints its content.",
                                  1, 1};
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, NULL, 0, argc, argv, pos, &npos);
    const char *arg = pos[0];
    char *owned = NULL;
    if (strncmp(arg, "enr:", 4) != 0) {
        struct stat st;
        if (stat(arg, &st) != 0)
            cli_fail("'%.80s' is neither an ENR (enr:...) nor a readable file", arg);
        owned = cli_read_text(arg, 4096);
        arg = owned;
        if (strncmp(arg, "enr:", 4) != 0) cli_fail("%s does not hold an ENR (enr:...)", pos[0]);
    }
    uint8_t raw[P2P_ENR_MAX_SIZE + 3];
    if (strlen(arg) > P2P_ENR_MAX_TEXT) cli_fail("invalid ENR: longer than 300 bytes");
    long len = b64url_decode(raw, sizeof raw, arg + 4);
    if (len < 0) cli_fail("invalid ENR: bad base64url text");
    p2p_enr_t r;
    int rc = p2p_enr_decode_unverified(&r, raw, (size_t)len);
    if (rc) cli_fail("invalid ENR: %s", p2p_strerror(rc));
    int vrc = p2p_enr_verify(&r);
    enr_dump(&r, vrc);
    free(owned);
    return vrc == 0 ? 0 : 1;
}
