/*
 * tools/devp2pd.c: the devp2p node daemon.
 *
 * Assembles the node from the library: the data directory (lock, node key,
 * node database: actors/datadir.h), discovery v4 (actors/discovery.h, its
 * dial candidates fed to the server, and looked for only while the
 * server's dialer has a free slot) and the peer server
 * (actors/server.h), with geth's flags.  First run creates the data
 * directory, the key (written atomically) and the database; later runs
 * reuse them.  Prints "enode: URL" and "enr: TEXT" on stdout at start (when
 * they cannot be written, a warning on stderr says so and the node runs
 * on), logs on stderr, and stops cleanly on SIGINT/SIGTERM (Disconnect(quitting) to
 * every peer, threads joined, database closed).  --trace maps the actor
 * trace rings to <datadir>/trace.ring for `devp2p trace` and gdb.
 * --metrics.addr serves Prometheus metrics over HTTP (tools/metrics_http.h)
 * and prints "metrics: URL" before the enode line.  At start it raises
 * RLIMIT_NOFILE to what --maxpeers needs and warns when a system limit
 * (descriptors, pid_max, threads-max, max_map_count, ulimit -u) is below
 * it.
 *
 * Memory: one glibc malloc arena for the whole process (M_ARENA_MAX 1,
 * unless MALLOC_ARENA_MAX or GLIBC_TUNABLES chooses otherwise).  With one
 * arena per thread (up to 8 per core) a burst of connection threads leaves
 * every arena it touched with its top chunk resident (malloc_trim returns
 * only the main arena's top), about 1.2 MiB after an adversarial run; with
 * one arena the run loop's trim (actors/srv_run.c) gives it all back.  The
 * cost, measured with `devp2p stress` churn and flood: node CPU per
 * handshake and per message within the run-to-run noise (README).
 *
 * Threads: main blocks SIGINT/SIGTERM first (so only main receives them,
 * and one that arrives during start-up is taken by sigwait once the node
 * runs: it stops cleanly, exit 0), parses and checks every flag before
 * touching the file system, starts everything, then waits in sigwait and
 * stops everything in reverse order.  Bad input is one line on stderr:
 * exit status 2 for usage errors (unknown flag, malformed flag value,
 * enode/ENR or --nodekeyhex, more bootnodes than discovery keeps
 * (P2P_DISC_MAX_BOOTNODES), --bootnode with --nodiscover), 1 for the rest
 * (unreadable key file, unusable data directory or dangling nodekey
 * symlink, port in use, a second node on the same data directory).
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "actors/datadir.h"
#include "actors/dialsched.h"
#include "actors/discovery.h"
#include "actors/server.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/netutil.h"
#include "core/trace.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/admin_rpc.h"
#include "tools/cli.h"
#include "tools/file_out.h"
#include "tools/metrics_http.h"
#include "tools/nodelist.h"
#include "tools/resolver.h"
#include "wire/enode.h"
#include "wire/enr.h"

#ifndef DEVP2P_VERSION
#define DEVP2P_VERSION "unknown"
#endif

/* nodes per --staticnodes/--trustednodes: what the server's sets hold
 * (P2P_SERVER_MAX_STATIC, P2P_SERVER_MAX_TRUSTED).  --bootnodes takes
 * what discovery keeps, P2P_DISC_MAX_BOOTNODES (this many with
 * --nodiscover, which does not use them) */
#define MAX_LIST P2P_SERVER_MAX_STATIC
_Static_assert(P2P_SERVER_MAX_TRUSTED == MAX_LIST, "one list size for both sets");
#define MAX_CAPS 16 /* --caps entries */
/* --identity bytes: with MAX_CAPS caps the Hello stays far below its 2048 */
#define MAX_IDENTITY 256
/* The number of message codes of a --caps protocol.  The offsets of
 * the protocols after it follow from it, so it must be the protocol's own
 * (geth's and ethereumjs' lengths): eth/62 8 codes, eth/63..68 17 (0x10
 * Receipts is the last), eth/69 18 (0x11 BlockRangeUpdate), snap/1 8.
 * Any other protocol takes 16. */
static uint32_t cap_length(const char *name, uint32_t version)
{
    if (strcmp(name, "eth") == 0 && version >= 62 && version <= 69)
        return version == 62 ? 8 : version == 69 ? 18 : 17;
    if (strcmp(name, "snap") == 0 && version == 1) return 8;
    return 16;
}

/* Connections the limits allow at once, each a thread and a socket: one
 * per peer (--maxpeers, and trusted nodes admitted above it), per pending
 * inbound handshake and per dial in flight (--maxpendpeers bounds both,
 * as in geth). */
static uint64_t max_conns(unsigned max_peers, unsigned max_pend, size_t trusted)
{
    return (uint64_t)max_peers + trusted + 2u * max_pend;
}

/* Trace rings (--trace): one per thread that records, so a thread never
 * finds them all taken: one per connection (max_conns), and
 * TRACE_RINGS_FIXED for the parked pool (16), the fixed threads (main,
 * p2p-run, -listen, -dial, -disc, the -udp readers, -resolve, -admin,
 * -metrics) and a margin.  Never fewer than TRACE_RINGS_MIN (160 MiB with
 * TRACE_CAP records per ring); each ring beyond adds 320 KiB. */
#define TRACE_RINGS_MIN 512u
#define TRACE_RINGS_FIXED (16u + 64u)
#define TRACE_CAP 8192

static unsigned trace_rings(unsigned max_peers, unsigned max_pend, size_t trusted)
{
    uint64_t n = max_conns(max_peers, max_pend, trusted) + TRACE_RINGS_FIXED;
    if (n > P2P_TRACE_RINGS_MAX)
        cli_usage_fail("--trace: --maxpeers %u and --maxpendpeers %u need %llu trace rings, at "
                       "most %u",
                       max_peers, max_pend, (unsigned long long)n, P2P_TRACE_RINGS_MAX);
    return n < TRACE_RINGS_MIN ? TRACE_RINGS_MIN : (unsigned)n;
}

/* An address flag's value (--addr, --metrics.addr, or --nat extip:IP,
 * advertised, shown as given): an IP address a socket can be bound to and
 * other nodes can reach.  A multicast address never is (TCP binds one, but
 * nothing can connect to it), nor an IPv6 link-local one, which needs a
 * zone ("%eth0") that neither the sockets nor the node records carry (bind
 * says EINVAL); an advertised address must also name a host (not 0.0.0.0 or
 * ::).  Anything else is a usage error. */
static p2p_ip_t addr_flag(const char *flag, const char *shown, const char *s, bool advertised)
{
    p2p_ip_t ip;
    const char *why = NULL;
    bool zone = strchr(s, ':') && strchr(s, '%');
    if (!zone && p2p_ip_parse(&ip, s) != 0)
        why = "not an IP address";
    else if (zone || (ip.family == 6 && ip.addr[0] == 0xfe && (ip.addr[1] & 0xc0) == 0x80))
        why = "link-local or zoned IPv6 (fe80::/10, %iface): zones are not supported";
    else if ((ip.family == 4 && (ip.addr[0] & 0xf0) == 0xe0) ||
             (ip.family == 6 && ip.addr[0] == 0xff))
        why = "a multicast address";
    else if (advertised && p2p_ip_is_unspecified(&ip))
        why = "unspecified: it names no host";
    if (!why) return ip;
    if (shown) cli_usage_fail("invalid %s '%s': '%s' is %s", flag, shown, s, why);
    cli_usage_fail("invalid %s '%s': %s", flag, s, why);
}

struct nodes {
    p2p_node_t v[MAX_LIST];
    size_t n;
};

struct list_ctx {
    struct nodes *out;
    const char *flag;
    bool need_addr;
    size_t max;
    unsigned family; /* the family our sockets reach (0: both) */
};

static int add_node(char *t, void *arg)
{
    struct list_ctx *c = arg;
    if (c->out->n >= c->max) cli_usage_fail("%s: more than %zu nodes (the limit)", c->flag, c->max);
    p2p_node_t n;
    const char *why = NULL;
    char shown[CLI_NODE_SHOWN];
    int rc = p2p_node_parse_for(&n, t, c->family, &why);
    if (rc)
        cli_usage_fail("%s: invalid node '%s': %s", c->flag, cli_node_shown(shown, t),
                       why ? why : p2p_strerror(rc));
    if (c->need_addr && n.ep.ip.family == 0)
        cli_usage_fail("%s: node '%s' has no IP address%s", c->flag, cli_node_shown(shown, t),
                       strcmp(c->flag, "--staticnodes") == 0
                           ? " (one is looked up through discovery: not with --nodiscover, "
                             "--nodial or --bootnode)"
                           : "");
    c->out->v[c->out->n++] = n;
    return 0;
}

/* A list flag: a file of URLs or a list (tools/nodelist.h). */
static void parse_nodes(struct nodes *out, const char *flag, const char *val, bool need_addr,
                        size_t max, unsigned family)
{
    out->n = 0;
    if (!val || !*val) return;
    struct stat st;
    char *text;
    int src = stat(val, &st), err = errno;
    if (src == 0 && S_ISREG(st.st_mode))
        text = cli_read_text(val, 1u << 20);
    else if (strchr(val, '/') && !strstr(val, "://") && strncmp(val, "enr:", 4) != 0)
        /* a path (no node URL has a '/' outside its scheme) that is no
         * readable file */
        cli_usage_fail("%s: cannot read %s: %s", flag, val,
                       src != 0 ? strerror(err) : "not a regular file");
    else
        text = strdup(val);
    if (!text) cli_fail("out of memory");
    struct list_ctx c = {
        .out = out, .flag = flag, .need_addr = need_addr, .max = max, .family = family};
    (void)nodelist_each(text, add_node, &c);
    free(text);
}

/* Reads one number from a /proc file; 0 if unreadable. */
static uint64_t proc_number(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return v;
}

/* Raises RLIMIT_NOFILE to what max_conns needs (the hard limit too when
 * privileged), and says clearly which system limit is in the way when
 * one is. */
static void check_limits(unsigned maxpeers, unsigned maxpend, size_t trusted)
{
    uint64_t conns = max_conns(maxpeers, maxpend, trusted);
    uint64_t need = conns + 64; /* + the node's own descriptors */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit want = rl;
        want.rlim_cur = need;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
            want.rlim_max = need; /* needs CAP_SYS_RESOURCE */
            if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
                want.rlim_cur = want.rlim_max = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &want);
            }
        } else {
            (void)setrlimit(RLIMIT_NOFILE, &want);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
            P2P_WARN("Descriptor limit too low for --maxpeers",
                     "limit=%llu need=%llu maxpeers=%u hint=\"raise it with ulimit -n (hard limit "
                     "%llu) or lower --maxpeers\"",
                     (unsigned long long)rl.rlim_cur, (unsigned long long)need, maxpeers,
                     (unsigned long long)rl.rlim_max);
        else
            P2P_INFO("Raised the descriptor limit", "limit=%llu", (unsigned long long)rl.rlim_cur);
    }
    /* a thread per connection: one pid each, two mappings (stack, guard) */
    uint64_t pid_max = proc_number("/proc/sys/kernel/pid_max");
    uint64_t threads_max = proc_number("/proc/sys/kernel/threads-max");
    uint64_t maps = proc_number("/proc/sys/vm/max_map_count");
    if (pid_max && conns + 64 > pid_max)
        P2P_WARN("kernel.pid_max is below the threads --maxpeers needs",
                 "pid_max=%llu threads=%llu", (unsigned long long)pid_max,
                 (unsigned long long)(conns + 64));
    if (threads_max && conns + 64 > threads_max)
        P2P_WARN("kernel.threads-max is below the threads --maxpeers needs",
                 "threads_max=%llu threads=%llu", (unsigned long long)threads_max,
                 (unsigned long long)(conns + 64));
    if (maps && 2 * conns + 1024 > maps)
        P2P_WARN("vm.max_map_count is below the mappings --maxpeers needs",
                 "max_map_count=%llu maps=%llu", (unsigned long long)maps,
                 (unsigned long long)(2 * conns + 1024));
    struct rlimit np;
    if (getrlimit(RLIMIT_NPROC, &np) == 0 && np.rlim_cur != RLIM_INFINITY && getuid() != 0 &&
        np.rlim_cur < conns + 64)
        P2P_WARN("RLIMIT_NPROC (ulimit -u) is below the threads --maxpeers needs",
                 "limit=%llu threads=%llu", (unsigned long long)np.rlim_cur,
                 (unsigned long long)(conns + 64));
}

/* Discovery -> dialer: offer every candidate (briefly waiting if the
 * dialer's inbox is full); called on p2p-disc.  One refused (full inbox,
 * counted by the server in candidatesRefused; or stopping) is offered
 * again by a later refresh. */
static void on_candidate(void *ctx, const p2p_node_t *n)
{
    p2p_server_t *srv = ctx;
    if (!srv || p2p_server_dial_slots(srv) == 0) return;
    int rc = p2p_server_add_candidate(srv, n, p2p_now_ns() + 50 * P2P_NS_PER_MS);
    (void)rc; /* a refusal is counted by the server; a later refresh offers the node again */
}

static p2p_server_t *g_srv; /* set before discovery starts; read on p2p-disc */

static void candidate_trampoline(void *ctx, const p2p_node_t *n)
{
    (void)ctx;
    /* acquire: pairs with the release store after the server started */
    p2p_server_t *srv = __atomic_load_n(&g_srv, __ATOMIC_ACQUIRE);
    on_candidate(srv, n);
}

/* Dialer -> discovery: the candidate lookups run only while the dialer has
 * a free slot (the server's want_candidates hook, called on p2p-dial).
 * g_disc is set once discovery runs and cleared before it stops; the
 * mutex keeps a call from racing with the stop.  Until it is set the hook
 * fails and the dialer tells again at a later pass. */
static pthread_mutex_t g_disc_mu = PTHREAD_MUTEX_INITIALIZER;
static p2p_discovery_t *g_disc; /* guarded by g_disc_mu */

static int want_trampoline(void *ctx, bool on)
{
    (void)ctx;
    pthread_mutex_lock(&g_disc_mu);
    int rc = g_disc ? p2p_discovery_want_candidates(g_disc, on) : P2P_ESTATE;
    pthread_mutex_unlock(&g_disc_mu);
    return rc;
}

static void set_disc(p2p_discovery_t *disc)
{
    pthread_mutex_lock(&g_disc_mu);
    g_disc = disc;
    pthread_mutex_unlock(&g_disc_mu);
}

/* One malloc arena (see the top comment); before any thread exists. */
static void malloc_policy(void)
{
#ifdef __GLIBC__
    const char *t = getenv("GLIBC_TUNABLES");
    if (getenv("MALLOC_ARENA_MAX") || (t && strstr(t, "glibc.malloc.arena_max"))) return;
    (void)mallopt(M_ARENA_MAX, 1);
#endif
}

/* The datadir should be the owner's alone (the node key, the admin socket,
 * the trace ring): says so once when group or others can reach it. */
static void check_datadir_mode(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 077))
        P2P_WARN("Data directory is accessible to group or others",
                 "datadir=%s mode=%03o hint=\"chmod 700 it\"", dir, (unsigned)(st.st_mode & 0777));
}

int main(int argc, char **argv)
{
    /* Only main takes SIGINT/SIGTERM/SIGHUP (the terminal went away),
     * blocked before anything else (files, threads): one that arrives
     * during start-up stays pending and sigwait takes it once the node
     * runs, so it still stops cleanly.  SIGUSR1, SIGUSR2 and SIGALRM,
     * whose default is to kill, are ignored (as geth does), so a stray
     * one cannot end the node without its Disconnects and its socket
     * file's removal.  SIGXFSZ too: a write past a file size limit
     * (RLIMIT_FSIZE) then fails with EFBIG like any write error (the node
     * DB counts it, a log line is counted lost) instead of killing the
     * node. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* ... unless SIGHUP was ignored when we were started (nohup): a
     * blocked signal is never discarded, so sigwait would take the hang-up
     * nohup is there to ignore; it stays ignored */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) != 0 || hup.sa_handler != SIG_IGN) sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGALRM, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    malloc_policy();
    cli_prog = "devp2pd";
    /* before any file or socket is opened: a closed stdout or stderr
     * stays closed to the writes (cli.h) */
    int fr = cli_std_fds_reserve();
    if (fr) cli_fail("cannot open /dev/null for a closed standard descriptor: %s", strerror(-fr));
    static const cli_cmd_t cmd = {"", "", "Runs a devp2p node (RLPx server and discovery v4).", 0,
                                  0};
    const char *datadir = NULL, *port = "30303", *dport = NULL, *addr = NULL, *maxpeers = "50",
               *maxpend = "50", *netrestrict = NULL, *nat = NULL, *nodekey = NULL,
               *nodekeyhex = NULL, *bootnodes = NULL, *staticnodes = NULL, *trustednodes = NULL,
               *identity = NULL, *verbosity = "3", *caps = NULL, *metrics_addr = NULL,
               *metrics_port = "6060";
    bool nodiscover = false, nodial = false, trace = false, bootnode = false, version = false;
    const cli_opt_t opts[] = {
        {"datadir", "DIR", "data directory (default ~/.devp2p-c)", &datadir, NULL},
        {"port", "N", "TCP and UDP listening port (default 30303; 0: any)", &port, NULL},
        {"discovery.port", "N", "UDP port if different from --port", &dport, NULL},
        {"addr", "IP", "listening address (default 0.0.0.0; :: for IPv4 and IPv6)", &addr, NULL},
        {"maxpeers", "N", "maximum number of peers (default 50)", &maxpeers, NULL},
        {"maxpendpeers", "N", "maximum pending inbound handshakes (default 50)", &maxpend, NULL},
        {"nodiscover", NULL, "disable discovery", NULL, &nodiscover},
        {"nodial", NULL, "never dial out", NULL, &nodial},
        {"netrestrict", "CIDRS",
         "only talk to these networks (comma-separated CIDRs; \"\" for any)", &netrestrict, NULL},
        {"nat", "extip:IP|none", "external IP to announce", &nat, NULL},
        {"nodekey", "FILE", "node key file", &nodekey, NULL},
        {"nodekeyhex", "HEX", "node key as hex", &nodekeyhex, NULL},
        {"bootnodes", "LIST|FILE", "discovery bootstrap nodes (enode URLs / ENRs)", &bootnodes,
         NULL},
        {"staticnodes", "LIST|FILE", "nodes to stay connected to", &staticnodes, NULL},
        {"trustednodes", "LIST|FILE", "nodes admitted above --maxpeers", &trustednodes, NULL},
        {"identity", "NAME", "client name in the Hello (at most 256 bytes)", &identity, NULL},
        {"verbosity", "0-5", "log level: 0 crit .. 3 info .. 5 trace (default 3)", &verbosity,
         NULL},
        {"trace", NULL,
         "record actor traces in <datadir>/" P2P_TRACE_FILE " (reserved at start: 160 MiB, and "
         "320 KiB more per thread above 512: --maxpeers + 2 x --maxpendpeers + 80)",
         NULL, &trace},
        {"bootnode", NULL, "discovery only (no TCP listener, no peers)", NULL, &bootnode},
        {"caps", "LIST",
         "capabilities to advertise without a handler, name/version,... (eth/62..69 "
         "and snap/1 with their own message codes, others 16)",
         &caps, NULL},
        {"metrics.addr", "IP", "serve Prometheus metrics over HTTP on this address", &metrics_addr,
         NULL},
        {"metrics.port", "N", "metrics HTTP port (default 6060; 0: any)", &metrics_port, NULL},
        {"version", NULL, "print the version", NULL, &version},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc - 1, argv + 1, pos, &npos);
    if (version) {
        printf("devp2pd %s\n", DEVP2P_VERSION);
        return cli_stdout_status(0);
    }
    int level = p2p_log_parse_level(verbosity);
    if (level < 0) cli_usage_fail("invalid --verbosity '%s': want 0..5", verbosity);
    p2p_log_set_level(level);

    /* ---- flags -> configuration: every value checked before any file is touched ---- */
    char msg[512];
    uint16_t tcp_port = (uint16_t)cli_uint("--port", port, 0, 65535);
    uint16_t udp_port = dport ? (uint16_t)cli_uint("--discovery.port", dport, 0, 65535) : tcp_port;
    p2p_ip_t listen_ip = {0};
    if (addr) listen_ip = addr_flag("--addr", NULL, addr, false);
    p2p_ip_t metrics_ip = {0};
    if (metrics_addr) metrics_ip = addr_flag("--metrics.addr", NULL, metrics_addr, false);
    uint16_t metrics_tcp = (uint16_t)cli_uint("--metrics.port", metrics_port, 0, 65535);
    p2p_ip_t ext_ip = {0};
    if (nat && strcmp(nat, "none") != 0) {
        if (strncmp(nat, "extip:", 6) != 0)
            cli_usage_fail("invalid --nat '%s': want extip:IP or none", nat);
        ext_ip = addr_flag("--nat", nat, nat + 6, true);
    }
    static p2p_netlist_t nr;
    /* "" is no restriction (as geth, and as "" is no node in the node list
     * flags); a value that names no network (",", " ") would restrict the
     * node to nothing: every peer and discovery node refused */
    if (netrestrict && !*netrestrict) netrestrict = NULL;
    if (netrestrict && (p2p_netlist_parse(&nr, netrestrict) != 0 || nr.n == 0))
        cli_usage_fail("invalid --netrestrict '%s': want CIDRs such as 10.0.0.0/8,::1/128",
                       netrestrict);
    static struct nodes boot, stat_nodes, trusted;
    /* a record naming an IPv4 and an IPv6 address gives the one of the
     * family our sockets reach (both on ::) */
    unsigned family = p2p_ip_reach_family(&listen_ip);
    /* discovery keeps at most P2P_DISC_MAX_BOOTNODES */
    parse_nodes(&boot, "--bootnodes", bootnodes, true,
                nodiscover ? MAX_LIST : P2P_DISC_MAX_BOOTNODES, family);
    /* a static node without an address is looked up through discovery */
    parse_nodes(&stat_nodes, "--staticnodes", staticnodes, nodiscover || nodial || bootnode,
                MAX_LIST, family);
    parse_nodes(&trusted, "--trustednodes", trustednodes, false, MAX_LIST, family);
    if (bootnode && nodiscover)
        cli_usage_fail("--bootnode runs discovery only: not with --nodiscover");
    unsigned max_peers = (unsigned)cli_uint("--maxpeers", maxpeers, 0, 100000);
    unsigned max_pend = (unsigned)cli_uint("--maxpendpeers", maxpend, 0, 100000);
    if (max_pend == 0) max_pend = 50;
    unsigned rings = trace ? trace_rings(max_peers, max_pend, trusted.n) : 0;
    if (identity && strlen(identity) > MAX_IDENTITY)
        cli_usage_fail("invalid --identity: %zu bytes, at most %d", strlen(identity), MAX_IDENTITY);
    if (nodekey && nodekeyhex) cli_usage_fail("--nodekey and --nodekeyhex are mutually exclusive");
    uint8_t priv[32];
    if (nodekeyhex && p2p_nodekey_parse_hex(priv, msg, sizeof msg, nodekeyhex) != 0)
        cli_usage_fail("invalid --nodekeyhex: %s", msg);
    /* the key is in argv, which /proc/PID/cmdline shows to every local
     * user: overwrite it now (it was visible from exec until here) */
    if (nodekeyhex) p2p_wipe((char *)nodekeyhex, strlen(nodekeyhex));
    if (nodekey) cli_session_key(priv, nodekey, NULL);
    static p2p_protocol_t protos[MAX_CAPS];
    static char capnames[MAX_CAPS][P2P_CAP_NAME_MAX + 1];
    size_t nprotos = 0;
    if (caps && *caps && strcmp(caps, "none") != 0) {
        char *copy = strdup(caps), *save = NULL;
        if (!copy) cli_fail("out of memory");
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *slash = strchr(t, '/');
            if (!slash || slash == t || (size_t)(slash - t) > P2P_CAP_NAME_MAX)
                cli_usage_fail("invalid --caps entry '%s': want name/version", t);
            if (nprotos >= MAX_CAPS) cli_usage_fail("--caps: more than %d entries", MAX_CAPS);
            *slash = 0;
            uint32_t ver = (uint32_t)cli_uint("--caps version", slash + 1, 0, UINT32_MAX);
            for (size_t i = 0; i < nprotos; i++)
                if (strcmp(capnames[i], t) == 0 && protos[i].version == ver)
                    cli_usage_fail("--caps lists %s/%u twice", t, ver);
            snprintf(capnames[nprotos], sizeof capnames[nprotos], "%s", t);
            protos[nprotos].name = capnames[nprotos];
            protos[nprotos].version = ver;
            /* messages are counted and ignored; the length places the
             * next protocol's codes where the remote has them */
            protos[nprotos].length = cap_length(capnames[nprotos], ver);
            nprotos++;
        }
        free(copy);
    }

    /* ---- data directory and key ---- */
    if (datadir && !*datadir) cli_usage_fail("--datadir is empty");
    char *dir = datadir ? strdup(datadir) : cli_default_datadir();
    if (!dir) cli_fail("out of memory");
    /* the admin socket's path must fit a sockaddr_un: checked before
     * anything is created */
    if (strlen(dir) + sizeof "/devp2pd.ipc" > sizeof(((struct sockaddr_un *)0)->sun_path))
        cli_usage_fail("--datadir is too long for the admin socket %s/devp2pd.ipc (%zu bytes, "
                       "at most %zu)",
                       dir, strlen(dir),
                       sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof "/devp2pd.ipc");
    static p2p_datadir_t dd;
    if (p2p_datadir_open(&dd, msg, sizeof msg, dir) != 0) cli_fail("%s", msg);
    check_datadir_mode(dir);
    int created = 0;
    if (!nodekey && !nodekeyhex && p2p_datadir_nodekey(priv, &created, msg, sizeof msg, &dd) != 0)
        cli_fail("%s", msg);
    static char tpath[4096];
    if (trace) {
        snprintf(tpath, sizeof tpath, "%s/%s", dir, P2P_TRACE_FILE);
        int rc = p2p_trace_open(tpath, rings, TRACE_CAP);
        if (rc) {
            uint64_t size = p2p_trace_file_size(rings, TRACE_CAP);
            cli_fail("cannot create trace file %s (%llu bytes, %llu MiB): %s", tpath,
                     (unsigned long long)size, (unsigned long long)(size >> 20),
                     rc == P2P_ESYS ? strerror(errno) : p2p_strerror(rc));
        }
    }

    /* ---- server ---- */
    p2p_server_t *srv = NULL;
    /* static nodes without an address, or whose dial failed, are looked
     * up through discovery (geth's Resolve) */
    resolver_t *resolver = NULL;
    if (!bootnode && !nodiscover && !nodial && resolver_new(&resolver) != 0)
        cli_fail("out of memory");
    if (!bootnode) {
        static p2p_server_config_t sc;
        memcpy(sc.priv, priv, 32);
        sc.max_peers = max_peers;
        sc.max_pending = max_pend;
        check_limits(sc.max_peers, sc.max_pending, trusted.n);
        sc.no_discovery = nodiscover;
        sc.no_dial = nodial;
        sc.name = identity ? identity : "devp2p-c/v" DEVP2P_VERSION "/linux";
        sc.bootnodes = boot.v;
        sc.nbootnodes = boot.n;
        sc.static_nodes = stat_nodes.v;
        sc.nstatic = stat_nodes.n;
        sc.trusted_nodes = trusted.v;
        sc.ntrusted = trusted.n;
        sc.netrestrict = netrestrict ? &nr : NULL;
        sc.listen_ip = listen_ip;
        sc.listen_port = tcp_port;
        sc.external_ip = ext_ip;
        sc.protocols = protos;
        sc.nprotocols = nprotos;
        if (resolver) {
            sc.resolve = resolver_hook;
            sc.resolve_ctx = resolver;
        }
        if (!nodiscover && !nodial) sc.want_candidates = want_trampoline;
        errno = 0;
        int rc = p2p_server_start(&srv, &sc);
        P2P_WIPE(sc.priv);
        if (rc == P2P_ESYS && (errno == EADDRINUSE || errno == EACCES))
            cli_fail("cannot listen on TCP port %u: %s", tcp_port, strerror(errno));
        if (rc == P2P_ESYS && errno == EADDRNOTAVAIL) {
            char ipb[P2P_IP_STRLEN];
            cli_fail("cannot listen on %s TCP port %u: %s (--addr: not an address of this machine)",
                     p2p_ip_format(ipb, &listen_ip), tcp_port, strerror(errno));
        }
        if (rc)
            cli_fail("cannot start the server: %s%s%s", p2p_strerror(rc), errno ? ": " : "",
                     errno ? strerror(errno) : "");
        tcp_port = p2p_server_port(srv);
        /* release: pairs with the acquire in candidate_trampoline */
        __atomic_store_n(&g_srv, srv, __ATOMIC_RELEASE);
    }

    /* ---- discovery ---- */
    p2p_discovery_t *disc = NULL;
    if (!nodiscover) {
        static p2p_discovery_config_t dc;
        memcpy(dc.priv, priv, 32);
        dc.listen_ip = listen_ip;
        dc.listen_port = udp_port;
        dc.tcp_port = bootnode ? 0 : tcp_port;
        dc.announce_ip = ext_ip;
        /* --nat extip fixes the endpoint of its family; on :: the other
         * one is still learnt from pongs */
        dc.announce_static = ext_ip.family != 0;
        dc.predict_endpoint = !(nat && strcmp(nat, "none") == 0);
        dc.bootnodes = boot.v;
        dc.nbootnodes = boot.n;
        dc.netrestrict = netrestrict ? &nr : NULL;
        dc.datadir = dir;
        if (srv && !nodial) {
            dc.on_candidate = candidate_trampoline;
            dc.candidate_ctx = NULL;
        }
        errno = 0;
        int rc = p2p_discovery_start(&disc, msg, sizeof msg, &dc);
        P2P_WIPE(dc.priv);
        if (rc) {
            int err = errno; /* the server's stop may change it */
            if (srv) p2p_server_stop(srv);
            if (rc == P2P_ESYS && err == EADDRINUSE)
                cli_fail("cannot listen on UDP port %u: %s", udp_port, strerror(err));
            /* msg starts with "discovery: " */
            if (msg[0]) cli_fail("cannot start %s", msg);
            cli_fail("cannot start discovery: %s", p2p_strerror(rc));
        }
    }
    if (disc && srv && !nodial) set_disc(disc);
    if (resolver && resolver_run(resolver, srv, disc) != 0) {
        int err = errno; /* the stops may change it */
        set_disc(NULL);
        p2p_discovery_stop(disc);
        p2p_server_stop(srv);
        cli_fail("cannot start the resolver thread: %s", strerror(err));
    }

    /* ---- who we are ---- */
    p2p_node_t self;
    memset(&self, 0, sizeof self);
    if (p2p_secp_pubkey(self.pubkey, priv) != 0) cli_fail("invalid node key");
    p2p_node_id(self.id, self.pubkey);
    static p2p_enr_t rec;
    bool have_rec = false;
    if (disc) {
        static p2p_discovery_info_t info;
        if (p2p_discovery_info(disc, &info, p2p_now_ns() + 5 * P2P_NS_PER_S) == 0) {
            self.ep = info.self.ep;
            rec = info.record;
            have_rec = true;
        }
    }
    if (!have_rec) {
        /* no discovery: a record of our own (seq = Unix ms, as geth's LocalNode) */
        self.ep.ip = p2p_ip_advertised(&ext_ip, &listen_ip);
        self.ep.tcp = bootnode ? 0 : tcp_port;
        self.ep.udp = disc ? p2p_discovery_port(disc) : 0;
        p2p_enr_init(&rec);
        p2p_enr_set_seq(&rec, p2p_wall_ms());
        if (p2p_enr_set_ip(&rec, &self.ep.ip) != 0 ||
            (self.ep.tcp &&
             p2p_enr_set_port(&rec, self.ep.ip.family == 6 ? "tcp6" : "tcp", self.ep.tcp) != 0) ||
            p2p_enr_sign(&rec, priv) != 0)
            cli_fail("cannot sign our node record");
    }
    p2p_wipe(priv, sizeof priv);
    char url[P2P_ENODE_MAX_TEXT], text[P2P_ENR_MAX_TEXT];
    if (p2p_enode_format(url, sizeof url, &self) != 0 || p2p_enr_to_text(text, sizeof text, &rec))
        cli_fail("cannot format our node URL");

    /* ---- admin JSON-RPC on <datadir>/devp2pd.ipc ---- */
    /* the admin socket's and the metrics server's counters, in both
     * admin_metrics and /metrics */
    static node_endpoint_stats_t endpoints;
    admin_rpc_t *rpc = NULL;
    {
        char ipc[4096], la[P2P_IP_PORT_STRLEN];
        snprintf(ipc, sizeof ipc, "%s/devp2pd.ipc", dir);
        p2p_ip_t lip = listen_ip.family ? listen_ip : p2p_ip4(0, 0, 0, 0);
        p2p_ip_port_format(la, &lip, bootnode ? 0 : tcp_port);
        admin_rpc_config_t ac = {.path = ipc,
                                 .srv = srv,
                                 .disc = disc,
                                 .name = identity ? identity : "devp2p-c/v" DEVP2P_VERSION "/linux",
                                 .enode = url,
                                 .enr = text,
                                 .listen_addr = la,
                                 .trace_path = trace ? tpath : NULL,
                                 .can_resolve = resolver != NULL,
                                 /* its lookups waiting are dropped */
                                 .removed_static = resolver ? resolver_forget_hook : NULL,
                                 .removed_ctx = resolver,
                                 .family = family,
                                 .tcp_port = bootnode ? 0 : tcp_port,
                                 .udp_port = self.ep.udp,
                                 .endpoints = &endpoints,
                                 .resolver = resolver};
        if (admin_rpc_start(&rpc, msg, sizeof msg, &ac) != 0) {
            set_disc(NULL);
            p2p_discovery_close(disc);
            resolver_stop(resolver);
            p2p_discovery_stop(disc);
            if (srv) p2p_server_stop(srv);
            cli_fail("%s", msg);
        }
    }

    /* ---- Prometheus metrics over HTTP ---- */
    metrics_http_t *mh = NULL;
    if (metrics_addr) {
        metrics_http_config_t mc = {.ip = metrics_ip,
                                    .port = metrics_tcp,
                                    .srv = srv,
                                    .disc = disc,
                                    .endpoints = &endpoints,
                                    .resolver = resolver};
        if (metrics_http_start(&mh, msg, sizeof msg, &mc) != 0) {
            admin_rpc_stop(rpc);
            set_disc(NULL);
            p2p_discovery_close(disc);
            resolver_stop(resolver);
            p2p_discovery_stop(disc);
            if (srv) p2p_server_stop(srv);
            cli_fail("%s", msg);
        }
        char ipbuf[P2P_IP_STRLEN];
        printf(metrics_ip.family == 6 ? "metrics: http://[%s]:%u/metrics\n"
                                      : "metrics: http://%s:%u/metrics\n",
               p2p_ip_format(ipbuf, &metrics_ip), metrics_http_port(mh));
    }

    /* No network is built in: without bootnodes the table starts from the
     * node DB's seeds (empty on a first run) and the nodes that contact us
     * (a --bootnode is the root of its network: no warning).
     * Said before the enode line, so whoever waits for that line sees it. */
    if (disc && boot.n == 0 && !bootnode)
        P2P_WARN("No bootnodes: discovery starts from the node DB alone; give --bootnodes to "
                 "join a network",
                 "");
    /* An external address of a family our sockets do not serve is
     * advertised as given (a translator, NAT64 or a port forward, may carry
     * it to us), but said once: other nodes reach it only through one. */
    if (ext_ip.family != 0 && family != 0 && ext_ip.family != family) {
        char e[P2P_IP_STRLEN], l[P2P_IP_STRLEN];
        p2p_ip_t lip = listen_ip.family ? listen_ip : p2p_ip4(0, 0, 0, 0);
        P2P_WARN("External IP (--nat extip) is not of the family our sockets serve: other nodes "
                 "reach the advertised endpoint only through a translator (NAT64, a port forward)",
                 "extip=%s family=IPv%u addr=%s sockets=\"IPv%u only\" hint=\"--addr :: serves "
                 "IPv4 and IPv6\"",
                 p2p_ip_format(e, &ext_ip), (unsigned)ext_ip.family, p2p_ip_format(l, &lip),
                 family);
    }
    /* bootnodes this node can never use: one warning each */
    for (size_t i = 0; disc && i < boot.n; i++) {
        const p2p_ip_t *bip = &boot.v[i].ep.ip;
        char b[P2P_IP_STRLEN];
        /* the UDP socket: IPv4 on 0.0.0.0 or an IPv4 address, IPv6 only on
         * a specific IPv6 address, both on :: */
        if (family != 0 && bip->family != family)
            P2P_WARN("Bootnode unreachable from our discovery socket", "bootnode=%s socket=%s",
                     p2p_ip_format(b, bip), family == 6 ? "IPv6 only" : "IPv4 only");
        else if (netrestrict && !p2p_netlist_contains(&nr, bip))
            P2P_WARN("Bootnode outside --netrestrict: not used", "bootnode=%s",
                     p2p_ip_format(b, bip));
    }
    /* Start-up lines that cannot be written (stdout on a full disk, a
     * closed pipe) do not stop the node, whose work does not need them,
     * but are said once on stderr: whoever waits for them can see why.
     * The error is the flush's, or a failed earlier write's. */
    errno = 0;
    printf("enode: %s\nenr: %s\n", url, text);
    int out_err = file_out_error(stdout);
    if (out_err)
        P2P_WARN("Cannot write the start-up lines to stdout", "err=\"%s\"", strerror(out_err));
    /* said only once start-up has succeeded: a start that fails prints
     * nothing but its one error line, even after creating the key */
    if (created) P2P_INFO("Generated node key", "path=%s/nodekey", dir);
    P2P_INFO("Node started", "enr=%s datadir=%s", text, dir);

    /* ---- run until SIGINT/SIGTERM ---- */
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    P2P_INFO("Got interrupt, shutting down...", "signal=%d", sig);
    metrics_http_stop(mh);
    admin_rpc_stop(rpc);
    /* discovery first: the resolver's lookup in progress returns
     * P2P_ECLOSED, as do its later calls; the resolver is joined before
     * discovery is freed (it calls it until then) */
    set_disc(NULL); /* the dialer's hook leaves it alone from here */
    p2p_discovery_close(disc);
    resolver_stop(resolver);
    p2p_discovery_stop(disc);
    if (srv) {
        /* release: pairs with candidate_trampoline's acquire load */
        __atomic_store_n(&g_srv, NULL, __ATOMIC_RELEASE);
        p2p_server_stop(srv);
    }
    resolver_free(resolver); /* the dialer (its hook's caller) is joined */
    if (trace) p2p_trace_close();
    p2p_datadir_close(&dd);
    free(dir);
    P2P_INFO("Stopped", "");
    return 0;
}
