/*
 * tools/cmds.h: the devp2p tool's command groups.  Each takes the arguments
 * after its group word (argv[0] is the subcommand, or the first argument
 * for single-word commands) and returns the process exit status; on bad
 * input it exits through cli_fail/cli_usage_fail.  Main thread only.
 */
#ifndef P2P_TOOLS_CMDS_H
#define P2P_TOOLS_CMDS_H

#define DEVP2P_CLIENT_NAME "devp2p-c"

int cmd_key(int argc, char **argv);
int cmd_enrdump(int argc, char **argv);
int cmd_rlpx(int argc, char **argv);
int cmd_discv4(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_stress(int argc, char **argv);

/* Prints a group's subcommand list; used for "devp2p GROUP --help" and a
 * missing or unknown subcommand. */
typedef struct cli_sub {
    const char *name;
    const char *about;
} cli_sub_t;
int cli_group_help(const char *group, const cli_sub_t *subs, unsigned n, int argc, char **argv);

/* Prints a record as enrdump does: seq, signature check (verify_rc: the
 * result of p2p_enr_verify), node id, every pair decoded, the enode URL. */
struct p2p_enr;
void enr_dump(const struct p2p_enr *r, int verify_rc);

#endif
