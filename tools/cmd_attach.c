/*
 * tools/cmd_attach.c: devp2p attach [ipc-path|datadir] [method [params...]].
 *
 * A JSON-RPC 2.0 client over the node's UNIX socket (<datadir>/devp2pd.ipc;
 * a directory argument means that file in it).  The node is --datadir, else
 * a first argument that contains a '/' or names an existing directory or
 * socket, else the default data directory (~/.devp2p-c), as `geth attach`
 * finds its node.  With a method it sends one
 * request and prints the result as indented JSON (an error reply is one
 * line on stderr and exit status 1).  Params: one JSON array or object
 * argument is sent as is; otherwise every argument becomes one element of
 * the params array (an argument that is not JSON is sent as a string, so
 * `attach DIR admin_addPeer enode://...` works).  Without a method it reads
 * requests from stdin, one per line ("method [params...]" or a raw JSON
 * request object), until EOF or "exit" (a read error fails: one line, exit
 * status 1).
 *
 * Replies are read as a stream of JSON values (no framing needed), bounded
 * by P2P_ATTACH_MAX bytes.  Each call has one --timeout deadline, set when
 * it starts, for sending the request and for every read until the reply
 * with its id: notifications or replies with other ids do not extend it.
 * The connect has its own --timeout (a node that accepts no connection).
 * Main thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "core/clock.h"
#include "tools/cli.h"
#include "tools/cmds.h"
#include "tools/json_stream.h"
#include "tools/netio.h"

#define P2P_ATTACH_MAX (16u << 20)

struct rpc {
    int fd;
    uint64_t tmo;
    json_int_t next_id;
    char *buf; /* bytes received but not yet parsed */
    size_t len, cap;
};

/* True if arg names the node rather than a method: it contains a '/' (no
 * method does) or is an existing directory or socket.  *dir: it is an
 * existing directory. */
static bool names_node(const char *arg, bool *dir)
{
    struct stat st;
    bool exists = stat(arg, &st) == 0;
    *dir = exists && S_ISDIR(st.st_mode);
    return strchr(arg, '/') || *dir || (exists && S_ISSOCK(st.st_mode));
}

/* Connects to the socket arg, or to devp2pd.ipc in it if datadir (a data
 * directory, which may not exist), within r->tmo: a node that accepts no
 * connection (stopped, hung, its listen backlog full) fails the connect
 * with EAGAIN once it passes.  The socket is then non-blocking, so that
 * every send and receive keeps the call's deadline (netio.h): a blocking
 * send of a request larger than the socket buffer waited forever for a
 * node that does not read. */
static void rpc_connect(struct rpc *r, const char *arg, bool datadir)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int n;
    if (datadir)
        n = snprintf(path, sizeof path, "%s/devp2pd.ipc", arg);
    else
        n = snprintf(path, sizeof path, "%s", arg);
    if (n < 0 || (size_t)n >= sizeof path) cli_fail("IPC path %s is too long", arg);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, (size_t)n + 1);
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0) cli_fail("socket: %s", strerror(errno));
    /* a UNIX socket's connect waits for room in the listener's backlog
     * at most SO_SNDTIMEO */
    struct timeval tv = {.tv_sec = (time_t)(r->tmo / P2P_NS_PER_S),
                         .tv_usec = (suseconds_t)(r->tmo % P2P_NS_PER_S / 1000)};
    if (setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        cli_fail("socket: %s", strerror(errno));
    if (connect(r->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno == EAGAIN || errno == EINPROGRESS)
            cli_fail("cannot connect to %s: the node accepted no connection within --timeout",
                     path);
        cli_fail("cannot connect to %s: %s (is devp2pd running on that data directory?)", path,
                 strerror(errno));
    }
    int fl = fcntl(r->fd, F_GETFL);
    if (fl < 0 || fcntl(r->fd, F_SETFL, fl | O_NONBLOCK) != 0)
        cli_fail("socket: %s", strerror(errno));
}

/* Reads one JSON value from the stream by deadline (CLOCK_MONOTONIC ns).
 * Returns it, or NULL with *err. */
static json_t *rpc_read(struct rpc *r, uint64_t deadline, const char **err)
{
    for (;;) {
        if (r->len) {
            json_error_t je;
            json_t *v = json_loadb(r->buf, r->len, JSON_DISABLE_EOF_CHECK, &je);
            if (v) {
                size_t used = (size_t)je.position;
                if (used > r->len) used = r->len;
                memmove(r->buf, r->buf + used, r->len - used);
                r->len -= used;
                return v;
            }
            /* incomplete input looks like an error at the end of the buffer,
             * or inside a character the last read cut (json_stream.h) */
            if (!json_stream_cut(r->buf, r->len, &je)) {
                *err = "malformed JSON from the node";
                return NULL;
            }
        }
        if (r->len == r->cap) {
            if (r->cap >= P2P_ATTACH_MAX) {
                *err = "reply too large";
                return NULL;
            }
            size_t nc = r->cap ? r->cap * 2 : 65536;
            char *nb = realloc(r->buf, nc);
            if (!nb) cli_fail("out of memory");
            r->buf = nb;
            r->cap = nc;
        }
        int rc = netio_wait_readable(r->fd, deadline);
        if (rc) {
            *err = rc == P2P_ETIMEDOUT ? "timed out: no reply within --timeout" : strerror(errno);
            return NULL;
        }
        ssize_t n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (n == 0) {
            *err = "connection closed by the node";
            return NULL;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            *err = strerror(errno);
            return NULL;
        }
        if (n > 0) r->len += (size_t)n;
    }
}

/* Builds the request {method, params} from method and argv[0..argc)
 * (each a JSON value, else a string).  Returns NULL with *bad the index
 * of an argument that is neither (not valid UTF-8: -1 for the method). */
static json_t *make_request(const char *method, int argc, char **argv, int *bad)
{
    json_t *req = json_object(), *m = json_string(method), *params = NULL;
    *bad = -1;
    if (argc == 1) {
        json_t *v = json_loads(argv[0], JSON_DECODE_ANY, NULL);
        if (v && (json_is_array(v) || json_is_object(v)))
            params = v;
        else
            json_decref(v);
    }
    if (!params) {
        params = json_array();
        for (int i = 0; i < argc && m; i++) {
            json_t *v = json_loads(argv[i], JSON_DECODE_ANY, NULL);
            if (!v) v = json_string(argv[i]);
            if (!v || json_array_append_new(params, v) != 0) {
                *bad = i;
                break;
            }
        }
    }
    if (!req || !m || !params || *bad >= 0) {
        json_decref(req);
        json_decref(m);
        json_decref(params);
        return NULL;
    }
    /* set_new takes the value's reference even when it fails */
    if (json_object_set_new(req, "method", m) != 0 ||
        json_object_set_new(req, "params", params) != 0) {
        json_decref(req);
        return NULL;
    }
    return req;
}

/* The message for make_request's failure. */
static const char *bad_arg(char *buf, size_t cap, int bad)
{
    if (bad < 0)
        snprintf(buf, cap, "the method name is not valid UTF-8");
    else
        snprintf(buf, cap, "parameter %d is not valid UTF-8", bad + 1);
    return buf;
}

/* Sends req (stolen) and prints the reply.  Returns 0, or 1 on an error
 * reply (printed as one line to stderr).  Transport failures exit. */
static int call(struct rpc *r, json_t *req)
{
    uint64_t deadline = p2p_now_ns() + r->tmo; /* the whole call, see the top */
    json_int_t id = r->next_id++;
    json_object_set_new(req, "jsonrpc", json_string("2.0"));
    json_object_set_new(req, "id", json_integer(id));
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text) cli_fail("cannot encode the request");
    size_t tl = strlen(text);
    int rc = netio_write_all(r->fd, text, tl, deadline);
    if (!rc) rc = netio_write_all(r->fd, "\n", 1, deadline);
    free(text);
    if (rc == P2P_ETIMEDOUT)
        cli_fail("cannot send the request: timed out: the node did not read it within --timeout "
                 "(call %lld)",
                 (long long)id);
    if (rc) cli_fail("cannot send the request: %s", strerror(errno));
    for (;;) {
        const char *err = NULL;
        json_t *rep = rpc_read(r, deadline, &err);
        if (!rep) cli_fail("%s (call %lld)", err, (long long)id);
        json_t *rid = json_object_get(rep, "id");
        if (!json_is_integer(rid) || json_integer_value(rid) != id) {
            json_decref(rep); /* a notification or a stale reply */
            continue;
        }
        json_t *e = json_object_get(rep, "error");
        int status = 0;
        if (e) {
            const char *msg = json_string_value(json_object_get(e, "message"));
            fprintf(stderr, "devp2p: error %lld: %s\n",
                    (long long)json_integer_value(json_object_get(e, "code")),
                    msg ? msg : "(no message)");
            status = 1;
        } else {
            json_t *res = json_object_get(rep, "result");
            char *out = json_dumps(res ? res : json_null(), JSON_INDENT(2) | JSON_ENCODE_ANY);
            printf("%s\n", out ? out : "null");
            free(out);
            fflush(stdout);
        }
        json_decref(rep);
        return status;
    }
}

static int interactive(struct rpc *r)
{
    char *line = NULL;
    size_t cap = 0;
    int status = 0, read_err = 0;
    bool tty = isatty(0);
    for (;;) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            /* a read error is not the end of the requests */
            if (ferror(stdin)) read_err = errno ? errno : EIO;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#') continue;
        if (strcmp(s, "exit") == 0 || strcmp(s, "quit") == 0) break;
        json_t *req;
        if (*s == '{') {
            json_error_t je;
            req = json_loads(s, 0, &je);
            if (!req || !json_is_object(req)) {
                fprintf(stderr, "devp2p: invalid JSON request: %s\n", je.text);
                json_decref(req);
                status = 1;
                continue;
            }
        } else {
            /* method [params...]: split on whitespace outside JSON brackets and quotes;
             * a backslash escapes the character after it, so "a\\" closes at its second
             * quote and "b\" c" runs on to the last one */
            char *args[65]; /* the method, 63 params, and one to tell "too many" */
            int na = 0, depth = 0;
            bool q = false;
            char *start = s;
            for (char *p = s;; p++) {
                if (*p == '\\' && p[1]) {
                    p++;
                    continue;
                }
                if (*p == '"') q = !q;
                if (!q && (*p == '[' || *p == '{')) depth++;
                if (!q && (*p == ']' || *p == '}')) depth--;
                if (*p == 0 || (!q && depth <= 0 && (*p == ' ' || *p == '\t'))) {
                    bool end = *p == 0;
                    *p = 0;
                    if (*start && na < 65) args[na++] = start;
                    if (end) break;
                    start = p + 1;
                }
            }
            int bad;
            char msg[64];
            if (na == 65) {
                fprintf(stderr, "devp2p: too many parameters (at most 63)\n");
                status = 1;
                continue;
            }
            req = make_request(args[0], na - 1, args + 1, &bad);
            if (!req) {
                fprintf(stderr, "devp2p: %s\n", bad_arg(msg, sizeof msg, bad));
                status = 1;
                continue;
            }
        }
        if (call(r, req)) status = 1;
    }
    free(line);
    if (read_err) cli_fail("cannot read standard input: %s", strerror(read_err));
    return status;
}

int cmd_attach(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "attach", "[ipc-path|datadir] [method [params...]]",
        "Sends JSON-RPC 2.0 calls to a node's admin IPC socket (<datadir>/devp2pd.ipc; by default "
        "the node's default data directory, ~/.devp2p-c). A first argument that contains a '/' or "
        "names an existing directory or socket is the node; the rest is the method and its "
        "params. Without a method, reads \"method [params...]\" lines from stdin.",
        0, CLI_MAX_POS};
    const char *timeout = "10", *datadir = NULL;
    const cli_opt_t opts[] = {
        {"datadir", "DIR", "the node's data directory (instead of the first argument)", &datadir,
         NULL},
        {"timeout", "S", "deadline per call, and for the connect (default 10)", &timeout, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, 2, argc, argv, pos, &npos);
    struct rpc r = {.fd = -1, .next_id = 1};
    r.tmo = cli_timeout_ns("--timeout", timeout);
    char *dflt = NULL;
    size_t first = 0; /* the method's index in pos */
    bool dir = false;
    if (datadir) {
        rpc_connect(&r, datadir, true);
    } else if (npos > 0 && names_node(pos[0], &dir)) {
        rpc_connect(&r, pos[0], dir);
        first = 1;
    } else {
        dflt = cli_default_datadir();
        rpc_connect(&r, dflt, true);
    }
    int status;
    if (npos > first) {
        int bad;
        char msg[64];
        json_t *req =
            make_request(pos[first], (int)(npos - first - 1), (char **)pos + first + 1, &bad);
        if (!req) cli_usage_fail("%s", bad_arg(msg, sizeof msg, bad));
        status = call(&r, req);
    } else {
        status = interactive(&r);
    }
    close(r.fd);
    free(r.buf);
    free(dflt);
    return status;
}
