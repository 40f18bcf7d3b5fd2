/*
 * tools/cli.c: option parsing, one-line errors, key and node arguments for
 * the devp2p tool (see cli.h).  Main thread only.
 */
#include "tools/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actors/datadir.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/file_out.h"
#include "wire/enode.h"
#include "wire/p2p_msg.h"

const char *cli_prog = "devp2p";

int cli_std_fds_reserve(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        /* the lowest free number: fd, the lower ones being open */
        int r = open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY);
        if (r < 0) return -errno;
        if (r != fd) {
            close(r);
            return -EBADF;
        }
    }
    return 0;
}

/* Prints "prog: message" on one line (newlines in the message folded) and
 * exits with status. */
__attribute__((noreturn)) static void fail_line(int status, char *line)
{
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "%s: %s\n", cli_prog, line);
    fflush(stdout);
    exit(status);
}

void cli_fail(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fail_line(1, line);
}

void cli_usage_fail(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fail_line(2, line);
}

int cli_stdout_status(int status)
{
    /* errno: the failed write's, the one the command ended with */
    int e = file_out_error(stdout);
    if (!e) return status;
    fprintf(stderr, "%s: cannot write standard output: %s\n", cli_prog, strerror(e));
    return 1;
}

static void print_usage(const cli_cmd_t *cmd, const cli_opt_t *opts, size_t nopts)
{
    printf("usage: %s%s%s%s%s%s\n\n%s\n", cli_prog, *cmd->name ? " " : "", cmd->name,
           nopts ? " [options]" : "", cmd->args && *cmd->args ? " " : "",
           cmd->args ? cmd->args : "", cmd->about);
    if (nopts) printf("\noptions:\n");
    for (size_t i = 0; i < nopts; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].meta ? " " : "",
                 opts[i].meta ? opts[i].meta : "");
        printf("  %-26s %s\n", left, opts[i].help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

/* An ENR's text without its "enr:" prefix: a record over 55 bytes starts
 * with 0xf8/0xf9, "-" in base64url, so it reaches the flag parser.  At
 * least 64 characters of the base64url alphabet, the first a "-". */
static bool looks_like_enr_body(const char *a)
{
    size_t n = strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    return a[0] == '-' && a[1] != '-' && n >= 64 && a[n] == 0;
}

void cli_parse(const cli_cmd_t *cmd, const cli_opt_t *opts, size_t nopts, int argc, char **argv,
               const char **pos, size_t *npos)
{
    *npos = 0;
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            if (*npos >= cmd->max_pos || *npos >= CLI_MAX_POS)
                cli_usage_fail("%s%sunexpected argument '%s' (see --help)", cmd->name,
                               *cmd->name ? ": " : "", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_usage(cmd, opts, nopts);
            exit(cli_stdout_status(0));
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt_t *o = NULL;
        for (size_t k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == nlen && strncmp(opts[k].name, name, nlen) == 0)
                o = &opts[k];
        if (!o && looks_like_enr_body(a))
            cli_usage_fail("%s%sunknown flag '%.16s...': a node record is given as its text, "
                           "which starts with 'enr:'",
                           cmd->name, *cmd->name ? ": " : "", a);
        if (!o)
            cli_usage_fail("%s%sunknown flag '%.*s' (see --help)", cmd->name,
                           *cmd->name ? ": " : "", (int)(name - a + nlen), a);
        if (!o->meta) {
            /* --flag, or --flag=true / --flag=false as geth's flags take */
            bool on = !eq || strcmp(eq + 1, "true") == 0;
            if (eq && !on && strcmp(eq + 1, "false") != 0)
                cli_usage_fail("flag --%s takes no value (or =true, =false)", o->name);
            if (o->set) *o->set = on;
            continue;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            cli_usage_fail("flag --%s needs a value (%s)", o->name, o->meta);
        *o->val = v;
        if (o->set) *o->set = true;
    }
    if (*npos < cmd->min_pos)
        cli_usage_fail("%s%smissing argument %s (see --help)", cmd->name, *cmd->name ? ": " : "",
                       cmd->args ? cmd->args : "");
}

uint64_t cli_uint(const char *what, const char *s, uint64_t min, uint64_t max)
{
    if (!s || !*s || !isdigit((unsigned char)s[0]))
        cli_usage_fail("invalid %s '%s': not a number", what, s ? s : "");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) cli_usage_fail("invalid %s '%s': not a number", what, s);
    if (v < min || v > max)
        cli_usage_fail("invalid %s '%s': must be between %llu and %llu", what, s,
                       (unsigned long long)min, (unsigned long long)max);
    return v;
}

uint64_t cli_duration_ns(const char *what, const char *s)
{
    if (!s || !*s) cli_usage_fail("invalid %s: empty duration", what);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mul = 1e9;
    if (end != s && strcmp(end, "ms") == 0)
        mul = 1e6;
    else if (end != s && strcmp(end, "s") == 0)
        mul = 1e9;
    else if (end == s || *end)
        cli_usage_fail("invalid %s '%s': want seconds such as 5, 0.5 or 500ms", what, s);
    if (errno || !(v >= 0) || v * mul > 3600e9 * 24)
        cli_usage_fail("invalid %s '%s': out of range", what, s);
    return (uint64_t)(v * mul);
}

uint64_t cli_timeout_ns(const char *what, const char *s)
{
    uint64_t ns = cli_duration_ns(what, s);
    if (ns < 1000000) cli_usage_fail("invalid %s '%s': want at least 1 ms", what, s);
    return ns;
}

p2p_ip_t cli_ip(const char *what, const char *s)
{
    p2p_ip_t ip;
    if (p2p_ip_parse(&ip, s) != 0) cli_usage_fail("invalid %s '%s': not an IP address", what, s);
    return ip;
}

const char *cli_node_shown(char out[CLI_NODE_SHOWN], const char *s)
{
    size_t n = strlen(s), key = 0;
    if (strncasecmp(s, "enode://", 8) == 0)
        while (key < 128 && isxdigit((unsigned char)s[8 + key])) key++;
    if (key == 128) {
        snprintf(out, CLI_NODE_SHOWN, "%.16s...%.4s%.90s%s", s, s + 8 + 124, s + 136,
                 n > 136 + 90 ? "..." : "");
    } else {
        snprintf(out, CLI_NODE_SHOWN, "%.100s%s", s, n > 100 ? "..." : "");
    }
    return out;
}

p2p_node_t cli_node(const char *s, bool need_addr)
{
    return cli_node_for(s, need_addr, 0);
}

p2p_node_t cli_node_for(const char *s, bool need_addr, unsigned family)
{
    p2p_node_t n;
    const char *why = NULL;
    char shown[CLI_NODE_SHOWN];
    int rc = p2p_node_parse_for(&n, s, family, &why);
    if (rc) {
        const char *kind = strncmp(s, "enr:", 4) == 0 ? "ENR" : "enode URL";
        cli_usage_fail("invalid %s '%s': %s", kind, cli_node_shown(shown, s),
                       why ? why : p2p_strerror(rc));
    }
    if (need_addr && (n.ep.ip.family == 0 || (n.ep.tcp == 0 && n.ep.udp == 0)))
        cli_usage_fail("node '%s' has no IP address and port", cli_node_shown(shown, s));
    return n;
}

static bool looks_hex_key(const char *s)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n != 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return false;
    return true;
}

void cli_load_key(uint8_t priv[32], const char *spec, bool force_hex)
{
    char msg[256];
    struct stat st;
    if (!force_hex && stat(spec, &st) == 0) {
        if (p2p_nodekey_load(priv, msg, sizeof msg, spec) != 0) cli_fail("%s", msg);
        return;
    }
    if (force_hex || looks_hex_key(spec)) {
        if (p2p_nodekey_parse_hex(priv, msg, sizeof msg, spec) != 0) cli_fail("%s", msg);
        return;
    }
    if (strlen(spec) == 64 || (strlen(spec) == 66 && spec[0] == '0'))
        cli_fail("invalid hex key '%.70s': not 64 hex digits", spec);
    cli_fail("cannot read key file %s: %s", spec, strerror(errno));
}

void cli_session_key(uint8_t priv[32], const char *file, const char *hex)
{
    if (file && hex) cli_usage_fail("--nodekey and --nodekeyhex are mutually exclusive");
    if (file) {
        cli_load_key(priv, file, false);
    } else if (hex) {
        cli_load_key(priv, hex, true);
        /* hex points into argv (--nodekeyhex HEX or --nodekeyhex=HEX): wipe
         * it there, so /proc/PID/cmdline no longer shows the key */
        p2p_wipe((char *)hex, strlen(hex));
    } else if (p2p_secp_keygen(priv) != 0) {
        cli_fail("cannot generate a key: no randomness");
    }
}

char *cli_read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) cli_fail("cannot read %s: %s", path, strerror(errno));
    char *buf = malloc(max + 1);
    if (!buf) cli_fail("out of memory");
    errno = 0;
    size_t n = fread(buf, 1, max + 1, f);
    /* the reason, not just "read error" (a directory: EISDIR) */
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) cli_fail("cannot read %s: %s", path, strerror(err));
    if (n > max) cli_fail("%s is too large (more than %zu bytes)", path, max);
    buf[n] = 0;
    while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = 0;
    size_t start = 0;
    while (start < n && isspace((unsigned char)buf[start])) start++;
    memmove(buf, buf + start, n - start + 1);
    return buf;
}

const char *cli_hex(const uint8_t *p, size_t n)
{
    static char bufs[4][2 * 128 + 1];
    static unsigned next;
    char *b = bufs[next++ & 3];
    if (n > 128) n = 128;
    p2p_hex_encode(b, p, n);
    return b;
}

void cli_parse_caps(p2p_hello_t *h, const char *list)
{
    h->ncaps = 0;
    if (strcmp(list, "none") == 0 || !*list) return;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *slash = memchr(p, '/', n);
        if (!slash || slash == p || (size_t)(slash - p) > P2P_CAP_NAME_MAX)
            cli_usage_fail("invalid --caps entry '%.*s': want name/version", (int)n, p);
        if (h->ncaps >= P2P_HELLO_MAX_CAPS) cli_usage_fail("--caps: too many capabilities");
        char ver[16];
        size_t vlen = n - (size_t)(slash + 1 - p);
        if (vlen == 0 || vlen >= sizeof ver)
            cli_usage_fail("invalid --caps entry '%.*s': want name/version", (int)n, p);
        memcpy(ver, slash + 1, vlen);
        ver[vlen] = 0;
        p2p_cap_t *c = &h->caps[h->ncaps++];
        c->name_len = (size_t)(slash - p);
        memcpy(c->name, p, c->name_len);
        c->name[c->name_len] = 0;
        c->version = (uint32_t)cli_uint("--caps version", ver, 0, UINT32_MAX);
        p = end ? end + 1 : p + n;
    }
}

char *cli_default_datadir(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw ? pw->pw_dir : ".";
    }
    size_t n = strlen(home) + sizeof "/.devp2p-c";
    char *p = malloc(n);
    if (!p) cli_fail("out of memory");
    snprintf(p, n, "%s/.devp2p-c", home);
    return p;
}
