/*
 * tools/cli.h: shared plumbing of the devp2p command-line tool.
 *
 * - Option parsing: every command declares a table of long options
 *   (--name VALUE, --name=VALUE, or a boolean --name) and its positional
 *   arguments; cli_parse handles --help (prints the usage to stdout, exits
 *   0) and rejects unknown flags and missing values.
 * - Errors: cli_fail prints exactly one line "devp2p: <message>" to stderr
 *   and exits with status 1 (2 for usage errors through cli_usage_fail), so
 *   every bad input ends with one clear line and a non-zero exit.
 * - Keys: a key argument is a key file (geth's nodekey format) or 64 hex
 *   digits; cli_load_key auto-detects (an existing file wins) unless --hex
 *   forces hex.
 * - Small parsers for ports, unsigned numbers and durations.
 *
 * Single-threaded: the tool's commands run on the main thread (the few that
 * start threads do not use these helpers from them).
 */
#ifndef P2P_TOOLS_CLI_H
#define P2P_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/node.h"

#define CLI_MAX_POS 16

/* Program name used in error lines and usage ("devp2p" or "devp2pd"). */
extern const char *cli_prog;

typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    const char *meta; /* value name for the help text; NULL for a boolean flag */
    const char *help;
    const char **val; /* valued option: receives the last value given */
    bool *set;        /* boolean flag (or "was given" for a valued option); may be NULL */
} cli_opt_t;

typedef struct cli_cmd {
    const char *name;  /* "key to-id" */
    const char *args;  /* positional synopsis, "<enode>" */
    const char *about; /* one line */
    size_t min_pos, max_pos;
} cli_cmd_t;

/* Parses argv[0..argc) (the arguments after the command words) against
 * opts[0..nopts).  Out: pos[0..*npos) the positional arguments.  Prints the
 * usage and exits 0 on --help/-h; exits 2 with one error line on an
 * unknown flag, a missing value or a wrong number of arguments. */
void cli_parse(const cli_cmd_t *cmd, const cli_opt_t *opts, size_t nopts, int argc, char **argv,
               const char **pos, size_t *npos);

/* Makes descriptors 0, 1 and 2 open, first thing in main: one that is
 * closed gets /dev/null, opened for the other direction only (stdin for
 * writing, stdout and stderr for reading), so that using it fails with
 * EBADF as a closed one does.  Without it the first file or socket the
 * program opens takes the number and what was meant for stdout or stderr
 * goes there (devp2pd's start-up lines into <datadir>/LOCK, an attach
 * answer back to the node).  Returns 0, or a negative errno when
 * /dev/null cannot be opened. */
int cli_std_fds_reserve(void);

/* Prints one line "devp2p: <fmt>" on stderr and exits 1. */
void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The same for bad usage (exit status 2). */
void cli_usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The exit status of a command that ends with status: status once stdout
 * is flushed; 1 after one line "devp2p: cannot write standard output:
 * <error>" on stderr when any of it could not be written (a full disk, a
 * file size limit), so output that was lost is never a success. */
int cli_stdout_status(int status);

/* Parses a decimal number in [min, max] given for option `what`; exits
 * with one line on anything else. */
uint64_t cli_uint(const char *what, const char *s, uint64_t min, uint64_t max);
/* Parses a duration in seconds ("2", "0.5", "1500ms"); returns ns. */
uint64_t cli_duration_ns(const char *what, const char *s);
/* As cli_duration_ns, at least 1 ms: a timeout or an interval. */
uint64_t cli_timeout_ns(const char *what, const char *s);
/* Parses an IP literal; exits on error. */
p2p_ip_t cli_ip(const char *what, const char *s);
/* Parses a node given as enode URL, ENR text or bare 128-hex key;
 * need_addr: also require an IP and a port.  A bad node is a usage error:
 * one clear line, exit status 2. */
p2p_node_t cli_node(const char *s, bool need_addr);
/* As cli_node, for a socket that reaches one address family (4 or 6; 0:
 * both): of a record naming an IPv4 and an IPv6 address, the one of that
 * family (p2p_node_parse_for). */
p2p_node_t cli_node_for(const char *s, bool need_addr, unsigned family);
/* s as a message shows it: an enode URL's 128-digit key shortened to its
 * first 8 and last 4 digits (so the host and port stay in view), anything
 * else cut at 100 bytes.  Returns out. */
#define CLI_NODE_SHOWN 128
const char *cli_node_shown(char out[CLI_NODE_SHOWN], const char *s);

/* The node's default data directory, ~/.devp2p-c ($HOME, else the
 * password database's home), as a heap string; exits on failure. */
char *cli_default_datadir(void);

/* Loads a private key from spec: with force_hex, spec is hex; otherwise a
 * readable file is a nodekey file and 64 hex digits (optional 0x) are a hex
 * key.  Exits with one line on failure. */
void cli_load_key(uint8_t priv[32], const char *spec, bool force_hex);
/* Our key for network commands: --nodekey FILE, --nodekeyhex HEX, or a
 * fresh random key when both are NULL. */
void cli_session_key(uint8_t priv[32], const char *file, const char *hex);

/* Reads a small text file (at most max bytes) into a NUL-terminated heap
 * string with surrounding whitespace trimmed; exits on failure. */
char *cli_read_text(const char *path, size_t max);

/* Lower-case hex of n bytes into a static rotating buffer (for printing;
 * up to 4 results alive at once, n <= 128). */
const char *cli_hex(const uint8_t *p, size_t n);

struct p2p_hello;
/* Fills h's capability list from a --caps value "name/ver,name/ver" ("none"
 * or "" for no capabilities); a malformed entry exits via cli_usage_fail. */
void cli_parse_caps(struct p2p_hello *h, const char *list);

#endif
