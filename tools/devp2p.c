/*
 * tools/devp2p.c: the devp2p command-line tool.
 *
 *   devp2p key generate|to-id|to-enode|to-enr   node keys and records
 *   devp2p enrdump <enr|file>                    decode and check a record
 *   devp2p rlpx ping <enode>                     RLPx handshake + Hello
 *   devp2p discv4 ping|requestenr|resolve|crawl  discovery v4 client
 *   devp2p trace --datadir DIR                   follow a node's trace rings
 *   devp2p attach <ipc> [method [params]]        admin JSON-RPC client
 *   devp2p stress --target <enode> --mode M      load generator
 *
 * Every command has --help; bad input prints one line "devp2p: ..." on
 * stderr and exits non-zero (2 for usage, 1 for everything else), as does
 * output that could not be written to stdout (cli_stdout_status).
 * Single-threaded apart from what a command starts itself.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/cmds.h"

#ifndef DEVP2P_VERSION
#define DEVP2P_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *about;
} groups[] = {
    {"key", cmd_key, "generate node keys, convert them to node ID, enode URL or ENR"},
    {"enrdump", cmd_enrdump, "decode an ENR and check its signature"},
    {"rlpx", cmd_rlpx, "RLPx commands (ping: handshake and Hello exchange)"},
    {"discv4", cmd_discv4, "discovery v4 commands (ping, requestenr, resolve, crawl)"},
    {"trace", cmd_trace, "follow or export a running node's actor trace rings"},
    {"attach", cmd_attach, "send admin JSON-RPC calls to a node's IPC socket"},
    {"stress", cmd_stress, "load generator: handshake churn, live peers, floods"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: devp2p <command> [arguments]   (devp2p <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        fprintf(f, "  %-10s %s\n", groups[i].name, groups[i].about);
    fprintf(f, "\n  --version  print the version\n  --help     show this help\n");
}

int cli_group_help(const char *group, const cli_sub_t *subs, unsigned n, int argc, char **argv)
{
    if (argc == 0) cli_usage_fail("%s: missing command (see devp2p %s --help)", group, group);
    if (strcmp(argv[0], "--help") != 0 && strcmp(argv[0], "-h") != 0)
        cli_usage_fail("%s: unknown command '%s' (see devp2p %s --help)", group, argv[0], group);
    printf("usage: devp2p %s <command> [arguments]\n\ncommands:\n", group);
    for (unsigned i = 0; i < n; i++) printf("  %-12s %s\n", subs[i].name, subs[i].about);
    return 0;
}

int main(int argc, char **argv)
{
    /* A write past a file size limit (RLIMIT_FSIZE) fails with EFBIG,
     * which every file writer reports (naming the file) and cleans up
     * after, instead of SIGXFSZ killing the tool mid-write and leaving a
     * partial file (as devp2pd does too). */
    signal(SIGXFSZ, SIG_IGN);
    /* before any command opens a file or socket: a closed stdin, stdout
     * or stderr stays closed to its reads and writes (cli.h) */
    int fr = cli_std_fds_reserve();
    if (fr) cli_fail("cannot open /dev/null for a closed standard descriptor: %s", strerror(-fr));
    if (argc < 2) cli_usage_fail("missing command (see devp2p --help)");
    const char *c = argv[1];
    if (strcmp(c, "--version") == 0 || strcmp(c, "version") == 0) {
        printf("devp2p %s (%s)\n", DEVP2P_VERSION, DEVP2P_CLIENT_NAME);
        return cli_stdout_status(0);
    }
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return cli_stdout_status(0);
    }
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (strcmp(c, groups[i].name) == 0)
            return cli_stdout_status(groups[i].fn(argc - 2, argv + 2));
    cli_usage_fail("unknown command '%s' (see devp2p --help)", c);
}
