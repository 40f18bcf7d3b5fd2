/*
 * tests/interop/jspeer.c: runs peer.mjs (an @ethereumjs/devp2p node) as a
 * child process for C interop tests; see jspeer.h for the contract.
 *
 * The child is started with posix_spawn; its stdin and stdout are pipes
 * (O_CLOEXEC on our ends, so other children never inherit them) and its
 * stderr is the test's.  One reader thread per peer reads stdout until EOF,
 * parses each line with jansson and appends it to the event log under the
 * handle's mutex, signalling a condition variable (CLOCK_MONOTONIC) that
 * jspeer_wait() sleeps on.  A line that is not JSON is kept as
 * {"ev":"raw","line":...}.  Limits: 64 arguments, 1 MiB per line.
 */
#include "tests/interop/jspeer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define JSPEER_MAX_ARGS 64
#define JSPEER_MAX_LINE (1u << 20)

struct jspeer {
    pid_t pid;
    int in_fd;  /* child's stdin (write end) */
    int out_fd; /* child's stdout (read end), owned by the reader thread */
    pthread_t reader;
    int status; /* exit status once reaped, else -1 */

    pthread_mutex_t mu;
    pthread_cond_t cond;
    json_t **events; /* guarded by mu */
    size_t n, cap;   /* guarded by mu */
    int eof;         /* guarded by mu */

    char enode[256];
    char id[129];
    int tcp_port, udp_port;
};

int jspeer_available(void)
{
    if (JSPEER_NODE[0] == '\0' || access(JSPEER_NODE, X_OK) != 0) {
        fprintf(stderr, "jspeer: node (Node.js 20) not found: run tools/setup.sh\n");
        return P2P_ENOTFOUND;
    }
    if (access(JSPEER_DIR "/node_modules/@ethereumjs/devp2p/package.json", R_OK) != 0) {
        fprintf(stderr,
                "jspeer: %s/node_modules has no @ethereumjs/devp2p: run tools/setup.sh "
                "(or: cd tests/interop && npm ci)\n",
                JSPEER_DIR);
        return P2P_ENOTFOUND;
    }
    return 0;
}

static void jspeer__push(jspeer_t *p, json_t *ev)
{
    pthread_mutex_lock(&p->mu);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        json_t **e = realloc(p->events, cap * sizeof *e);
        if (e == NULL) {
            pthread_mutex_unlock(&p->mu);
            json_decref(ev);
            return;
        }
        p->events = e;
        p->cap = cap;
    }
    p->events[p->n++] = ev;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

static void jspeer__line(jspeer_t *p, const char *line, size_t len)
{
    json_error_t err;
    json_t *ev = json_loadb(line, len, 0, &err);
    if (ev == NULL || !json_is_object(ev)) {
        json_decref(ev);
        ev = json_pack("{s:s, s:s%}", "ev", "raw", "line", line, len);
        if (ev == NULL) return;
    }
    jspeer__push(p, ev);
}

static void *jspeer__reader(void *arg)
{
    jspeer_t *p = arg;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) break;
        if (len == cap) {
            if (cap >= JSPEER_MAX_LINE) { /* drop an absurd line */
                len = 0;
            } else {
                char *b = realloc(buf, cap * 2);
                if (b == NULL) break;
                buf = b;
                cap *= 2;
            }
        }
        ssize_t r = read(p->out_fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        size_t start = 0;
        for (size_t i = len - (size_t)r; i < len; i++) {
            if (buf[i] != '\n') continue;
            jspeer__line(p, buf + start, i - start);
            start = i + 1;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    free(buf);
    pthread_mutex_lock(&p->mu);
    p->eof = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int jspeer__matches(json_t *ev, const char *name, const char *key, const char *val)
{
    const char *e = json_string_value(json_object_get(ev, "ev"));
    if (e == NULL || strcmp(e, name) != 0) return 0;
    if (key == NULL) return 1;
    json_t *f = json_object_get(ev, key);
    if (f == NULL) return 0;
    if (json_is_null(f)) return val == NULL;
    if (val == NULL) return 0;
    if (json_is_string(f)) return strcmp(json_string_value(f), val) == 0;
    if (json_is_true(f)) return strcmp(val, "true") == 0;
    if (json_is_false(f)) return strcmp(val, "false") == 0;
    if (json_is_integer(f)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(f));
        return strcmp(tmp, val) == 0;
    }
    if (json_is_real(f)) return json_real_value(f) == strtod(val, NULL);
    return 0;
}

static struct timespec jspeer__deadline(int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

json_t *jspeer_wait(jspeer_t *p, size_t from, int timeout_ms, const char *ev, const char *key,
                    const char *val)
{
    struct timespec dl = jspeer__deadline(timeout_ms);
    json_t *found = NULL;
    size_t i = from;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (; i < p->n && found == NULL; i++)
            if (jspeer__matches(p->events[i], ev, key, val)) found = p->events[i];
        if (found != NULL || p->eof) break;
        if (pthread_cond_timedwait(&p->cond, &p->mu, &dl) == ETIMEDOUT) {
            for (; i < p->n && found == NULL; i++)
                if (jspeer__matches(p->events[i], ev, key, val)) found = p->events[i];
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

size_t jspeer_count(jspeer_t *p, size_t from, const char *ev, const char *key, const char *val)
{
    size_t c = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = from; i < p->n; i++) c += (size_t)jspeer__matches(p->events[i], ev, key, val);
    pthread_mutex_unlock(&p->mu);
    return c;
}

size_t jspeer_mark(jspeer_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

const char *jspeer_enode(const jspeer_t *p)
{
    return p->enode;
}

const char *jspeer_id(const jspeer_t *p)
{
    return p->id;
}

int jspeer_tcp_port(const jspeer_t *p)
{
    return p->tcp_port;
}

int jspeer_udp_port(const jspeer_t *p)
{
    return p->udp_port;
}

int jspeer_cmd(jspeer_t *p, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 1) return P2P_ETOOBIG;
    line[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(p->in_fd, line + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno == EPIPE ? P2P_ECLOSED : P2P_ESYS;
        off += (int)w;
    }
    return 0;
}

static int jspeer__reap(jspeer_t *p, int timeout_ms)
{
    struct timespec step = {0, 10 * 1000000L};
    for (int waited = 0;; waited += 10) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            p->status = 255;
            return 0;
        }
        if (waited >= timeout_ms) return P2P_ETIMEDOUT;
        nanosleep(&step, NULL);
    }
}

int jspeer_stop(jspeer_t *p, int timeout_ms)
{
    if (p->status < 0) {
        kill(p->pid, SIGTERM);
        if (jspeer__reap(p, timeout_ms) != 0) {
            kill(p->pid, SIGKILL);
            while (jspeer__reap(p, 1000) != 0) {
            }
        }
    }
    return p->status;
}

void jspeer_dump(jspeer_t *p, const char *name)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++) {
        char *s = json_dumps(p->events[i], JSON_COMPACT);
        fprintf(stderr, "%s: %s\n", name, s ? s : "?");
        free(s);
    }
    pthread_mutex_unlock(&p->mu);
}

void jspeer_free(jspeer_t *p)
{
    if (p == NULL) return;
    if (p->status < 0) {
        kill(p->pid, SIGKILL);
        while (jspeer__reap(p, 1000) != 0) {
        }
    }
    close(p->in_fd);
    pthread_join(p->reader, NULL);
    close(p->out_fd);
    for (size_t i = 0; i < p->n; i++) json_decref(p->events[i]);
    free(p->events);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static int jspeer__spawn(jspeer_t *p, char **argv)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return P2P_ESYS;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return P2P_ESYS;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    int rc = posix_spawn(&p->pid, JSPEER_NODE, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        errno = rc;
        return P2P_ESYS;
    }
    p->in_fd = in[1];
    p->out_fd = out[0];
    return 0;
}

int jspeer_start(jspeer_t **out, int timeout_ms, ...)
{
    *out = NULL;
    int rc = jspeer_available();
    if (rc != 0) return rc;

    char *argv[JSPEER_MAX_ARGS + 4];
    int argc = 0;
    argv[argc++] = (char *)JSPEER_NODE;
    argv[argc++] = (char *)JSPEER_DIR "/peer.mjs";
    argv[argc++] = (char *)"--stdin";
    va_list ap;
    va_start(ap, timeout_ms);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        if (argc == JSPEER_MAX_ARGS + 3) {
            va_end(ap);
            return P2P_EINVAL;
        }
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;

    signal(SIGPIPE, SIG_IGN);
    jspeer_t *p = calloc(1, sizeof *p);
    if (p == NULL) return P2P_ENOMEM;
    p->status = -1;
    p->tcp_port = p->udp_port = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);

    rc = jspeer__spawn(p, argv);
    if (rc == 0 && pthread_create(&p->reader, NULL, jspeer__reader, p) != 0) {
        kill(p->pid, SIGKILL);
        while (jspeer__reap(p, 1000) != 0) {
        }
        close(p->in_fd);
        close(p->out_fd);
        rc = P2P_ESYS;
    }
    if (rc != 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return rc;
    }

    json_t *l = jspeer_wait(p, 0, timeout_ms, "listening", NULL, NULL);
    if (l == NULL) {
        int eof;
        pthread_mutex_lock(&p->mu);
        eof = p->eof;
        pthread_mutex_unlock(&p->mu);
        jspeer_dump(p, "jspeer");
        jspeer_free(p);
        return eof ? P2P_ECLOSED : P2P_ETIMEDOUT;
    }
    const char *enode = json_string_value(json_object_get(l, "enode"));
    const char *id = json_string_value(json_object_get(l, "id"));
    json_t *tcp = json_object_get(l, "tcpPort"), *udp = json_object_get(l, "udpPort");
    snprintf(p->enode, sizeof p->enode, "%s", enode ? enode : "");
    snprintf(p->id, sizeof p->id, "%s", id ? id : "");
    if (json_is_integer(tcp)) p->tcp_port = (int)json_integer_value(tcp);
    if (json_is_integer(udp)) p->udp_port = (int)json_integer_value(udp);
    *out = p;
    return 0;
}
