/*
 * tools/cmd_key.c: devp2p key generate | to-id | to-enode | to-enr.
 *
 * Keys are geth's nodekey format (64 hex digits and a newline, written
 * atomically with mode 0600 by actors/datadir.h) or hex on the command
 * line.  Main thread only; key material is wiped before returning.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "actors/datadir.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/cli.h"
#include "tools/cmds.h"
#include "wire/enode.h"
#include "wire/enr.h"

static int key_generate(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "key generate", "[FILE]",
        "Generates a node key. Writes it to FILE (atomically, mode 0600; an "
        "existing file is kept unless --force) and prints its node ID; without FILE, prints "
        "the hex key.",
        0, 1};
    bool force = false;
    const cli_opt_t opts[] = {{"force", NULL, "overwrite an existing FILE", NULL, &force}};
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, 1, argc, argv, pos, &npos);
    uint8_t priv[32], pub[64], id[32];
    if (p2p_secp_keygen(priv) != 0) cli_fail("cannot generate a key: no randomness");
    if (p2p_secp_pubkey(pub, priv) != 0) cli_fail("cannot derive the public key");
    p2p_node_id(id, pub);
    if (npos == 0) {
        printf("%s\n", cli_hex(priv, 32));
    } else {
        struct stat st;
        if (!force && lstat(pos[0], &st) == 0)
            cli_fail("%s already exists (use --force to overwrite)", pos[0]);
        char msg[256];
        if (p2p_nodekey_save(msg, sizeof msg, pos[0], priv) != 0) cli_fail("%s", msg);
        printf("%s\n", cli_hex(id, 32));
    }
    p2p_wipe(priv, sizeof priv);
    return 0;
}

struct key_args {
    const char *key;
    bool hex;
};

static void key_pub(uint8_t pub[64], const struct key_args *ka)
{
    uint8_t priv[32];
    cli_load_key(priv, ka->key, ka->hex);
    int rc = p2p_secp_pubkey(pub, priv);
    p2p_wipe(priv, sizeof priv);
    if (rc) cli_fail("invalid private key: %s", p2p_strerror(rc));
}

static int key_to_id(int argc, char **argv)
{
    static const cli_cmd_t cmd = {"key to-id", "<keyfile|hex>",
                                  "Prints the node ID (keccak256 of the public key) of a key.", 1,
                                  1};
    struct key_args ka = {0};
    const cli_opt_t opts[] = {
        {"hex", NULL, "the argument is a hex key, not a file", NULL, &ka.hex}};
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, 1, argc, argv, pos, &npos);
    ka.key = pos[0];
    uint8_t pub[64], id[32];
    key_pub(pub, &ka);
    p2p_node_id(id, pub);
    printf("%s\n", cli_hex(id, 32));
    return 0;
}

static int key_to_enode(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "key to-enode", "<keyfile|hex>",
        "Prints the enode URL of a key (default address 127.0.0.1, tcp 30303, udp = tcp).", 1, 1};
    struct key_args ka = {0};
    const char *ip = "127.0.0.1", *tcp = "30303", *udp = NULL;
    const cli_opt_t opts[] = {
        {"hex", NULL, "the argument is a hex key, not a file", NULL, &ka.hex},
        {"ip", "IP", "IP address (default 127.0.0.1)", &ip, NULL},
        {"tcp", "PORT", "TCP port (default 30303)", &tcp, NULL},
        {"udp", "PORT", "UDP (discovery) port (default: the TCP port)", &udp, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    ka.key = pos[0];
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    n.ep.ip = cli_ip("--ip", ip);
    n.ep.tcp = (uint16_t)cli_uint("--tcp", tcp, 0, 65535);
    n.ep.udp = udp ? (uint16_t)cli_uint("--udp", udp, 0, 65535) : n.ep.tcp;
    key_pub(n.pubkey, &ka);
    p2p_node_id(n.id, n.pubkey);
    char url[P2P_ENODE_MAX_TEXT];
    if (p2p_enode_format(url, sizeof url, &n) != 0) cli_fail("cannot format the enode URL");
    printf("%s\n", url);
    return 0;
}

static int key_to_enr(int argc, char **argv)
{
    static const cli_cmd_t cmd = {"key to-enr", "<keyfile|hex>",
                                  "Prints a signed ENR of a key holding the given address fields "
                                  "(only those given) and sequence number (default 1).",
                                  1, 1};
    struct key_args ka = {0};
    const char *ip = NULL, *tcp = NULL, *udp = NULL, *seq = "1";
    const cli_opt_t opts[] = {
        {"hex", NULL, "the argument is a hex key, not a file", NULL, &ka.hex},
        {"ip", "IP", "IPv4 or IPv6 address (\"ip\" or \"ip6\")", &ip, NULL},
        {"tcp", "PORT", "TCP port (\"tcp\", or \"tcp6\" with an IPv6 --ip)", &tcp, NULL},
        {"udp", "PORT", "UDP port (\"udp\", or \"udp6\" with an IPv6 --ip)", &udp, NULL},
        {"seq", "N", "sequence number (default 1)", &seq, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    p2p_enr_t r;
    p2p_enr_init(&r);
    bool v6 = false;
    if (ip) {
        p2p_ip_t a = cli_ip("--ip", ip);
        v6 = a.family == 6;
        if (p2p_enr_set_ip(&r, &a) != 0) cli_fail("cannot set the IP address");
    }
    if (tcp &&
        p2p_enr_set_port(&r, v6 ? "tcp6" : "tcp", (uint16_t)cli_uint("--tcp", tcp, 0, 65535)))
        cli_fail("cannot set the TCP port");
    if (udp &&
        p2p_enr_set_port(&r, v6 ? "udp6" : "udp", (uint16_t)cli_uint("--udp", udp, 0, 65535)))
        cli_fail("cannot set the UDP port");
    p2p_enr_set_seq(&r, cli_uint("--seq", seq, 0, UINT64_MAX));
    uint8_t priv[32];
    cli_load_key(priv, pos[0], ka.hex);
    int rc = p2p_enr_sign(&r, priv);
    p2p_wipe(priv, sizeof priv);
    if (rc) cli_fail("cannot sign the record: %s", p2p_strerror(rc));
    char text[P2P_ENR_MAX_TEXT];
    if (p2p_enr_to_text(text, sizeof text, &r) != 0) cli_fail("cannot encode the record");
    printf("%s\n", text);
    return 0;
}

int cmd_key(int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"generate", "generate a node key (to a file, or print it)"},
        {"to-id", "print the node ID of a key"},
        {"to-enode", "print the enode URL of a key"},
        {"to-enr", "print a signed ENR of a key"},
    };
    if (argc > 0) {
        if (strcmp(argv[0], "generate") == 0) return key_generate(argc - 1, argv + 1);
        if (strcmp(argv[0], "to-id") == 0) return key_to_id(argc - 1, argv + 1);
        if (strcmp(argv[0], "to-enode") == 0) return key_to_enode(argc - 1, argv + 1);
        if (strcmp(argv[0], "to-enr") == 0) return key_to_enr(argc - 1, argv + 1);
    }
    return cli_group_help("key", subs, sizeof subs / sizeof subs[0], argc, argv);
}
