/*
 * tools/cmd_stress.c: devp2p stress --target <enode> --mode churn|hold ...
 *
 * An event-driven load generator: one thread, one epoll set, non-blocking
 * sockets, the project's own RLPx handshake (initiator), frame codec and
 * base-protocol messages, so the harness costs one ECDH pair and a few
 * Keccak permutations per connection and is not the bottleneck.
 *
 * Modes:
 *   churn  connect, handshake, Hello, then Disconnect(requested) (snappy
 *          [reason] after a v5 Hello), half-close, close; as fast as
 *          possible with --peers connections in flight, or --rate per
 *          second.  Success = the target's Hello arrived.  A target that
 *          ends the session with a Disconnect of its own (any reason but
 *          "requested": "too many peers", "useless peer"...) before ours
 *          refused it: a failure on top, "refused after the Hello".
 *   hold   open --peers live peers and keep them: answer the target's
 *          pings, send a ping every --ping-interval and time the pong.  A
 *          peer has at most one ping outstanding: when the next one is due
 *          and the last is still unanswered, it is skipped (pings_late), so
 *          each pong times the ping it answers and a stalled target shows
 *          as latency, not as lost pongs; a pong is missing only if it has
 *          not come when the drain ends.  A
 *          peer is admitted once the target answers it after the Hello (a
 *          Ping sent right after the Hello, whose Pong also times the
 *          admission): one refused before that ("too many peers" from the
 *          checks after the Hello) is counted as refused, not as a drop or
 *          a live peer.  An admitted peer the target drops is counted and
 *          replaced.  A target that says "too many peers" is full: no new
 *          peer starts for FULL_PAUSE_NS (as a dialer holds off a full
 *          node), doubled for each further pause up to FULL_PAUSE_MAX_NS;
 *          after a pause one handshake at a time probes it, until a peer
 *          started after the refusal is admitted.  So a --peers above its
 *          inbound limit holds what it takes instead of turning into a
 *          churn of refused handshakes (full_pauses counts the pauses).
 *   flood  --peers live peers each keep --window messages of a test
 *          subprotocol in flight (the target echoes them), once admitted
 *          as in hold.
 *   adversarial  churn beside garbage, stalled and bad-MAC connections.
 *   discv4 ping and findnode floods against the UDP port from --peers keys
 *          (tools/stress_discv4.c).
 *
 * The stop (--duration, SIGINT, SIGTERM; a second signal 200 ms or more
 * after the first ends the drain at once) starts a drain: no new
 * connections, pings or flood messages; handshakes in flight go on (a
 * session that completes its Hello is then sent Disconnect like the
 * others); a live peer is sent Disconnect once its ping is ponged and its
 * flood messages echoed, or when DRAIN_REPLY_NS has passed, and what is
 * still unanswered then counts as failures ("pong missing at the end",
 * "echo missing at the end").  Accounting: every legitimate attempt ends
 * as a success (its Hello arrived) or a handshake failure, so attempts ==
 * successes + hs_failures; later failures (drops, missing replies) are
 * counted on top.  An adversarial connection ends closed by the target,
 * left open (after its misdeed, or when the drain ends), timed out (the
 * target stalled its handshake) or failed to connect (a local failure,
 * not counted against the legitimate peers).
 *
 * Connections are spread over --sources loopback source addresses
 * (127.0.0.1 .. 127.0.0.N) when the target is on loopback, bound with
 * IP_BIND_ADDRESS_NO_PORT so each (source, target) pair has its own
 * ephemeral port range.  RLIMIT_NOFILE is raised to the hard limit; a
 * --peers above it fails with a clear line.  EADDRNOTAVAIL is reported as
 * ephemeral port exhaustion.  In every mode a failed connect (refused,
 * unreachable, out of descriptors or ports) pauses new connections: one
 * at a time, CONNECT_PAUSE_NS apart, until one connects again, so a wrong
 * port or a target that died does not turn the harness into a busy loop.
 *
 * Once a second: a series point (live peers, successes, failures,
 * replies, target RSS), a /proc sample of the target (if local: --pid, or
 * the process listening on the target port), and a progress line on a
 * terminal.  Limits: messages up to MSG_MAX bytes; read buffers grow to one
 * frame.  Main thread only; keys are wiped before returning.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/cli.h"
#include "tools/cmds.h"
#include "tools/stress.h"
#include "wire/p2p_msg.h"
#include "wire/rlp.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MSG_MAX (64u * 1024)
#define RBUF_MIN 2304u /* a handshake packet (2050) fits */
#define RBUF_MAX (MSG_MAX + 256u)
#define HS_TIMEOUT_NS (10 * P2P_NS_PER_S)
#define LINGER_NS (1 * P2P_NS_PER_S)
#define FULL_PAUSE_NS (1 * P2P_NS_PER_S)       /* hold/flood: no new peer after "too many peers" */
#define FULL_PAUSE_MAX_NS (8 * P2P_NS_PER_S)   /* ... doubled per further pause, up to */
#define CONNECT_PAUSE_NS (100 * P2P_NS_PER_MS) /* every mode: after a failed connect */
/* after the stop: how long the drain waits for replies (pongs, echoes) to
 * requests sent before it, and for handshakes in flight to end */
#define DRAIN_REPLY_NS HS_TIMEOUT_NS
#define MAX_EVENTS 256

enum mode { M_CHURN, M_HOLD, M_FLOOD, M_ADV, M_DISCV4 };
/* C_ADV: an adversarial connection did its misdeed and waits for the
 * target to close it (the expected outcome). */
enum cstate { C_CONNECTING, C_ACK, C_HELLO, C_LIVE, C_CLOSING, C_ADV };
/* Adversarial kinds (mode adversarial, beside legitimate churn). */
enum kind { K_LEGIT, K_GARBAGE, K_SLOW, K_BADMAC, K_NKINDS };
static const char *const kind_names[K_NKINDS] = {"legit", "garbage", "slow handshake", "bad MAC"};
#define IS_HOLDING(m) ((m) == M_HOLD || (m) == M_FLOOD)

struct conn {
    int fd;
    enum cstate st;
    enum kind kind;
    uint32_t idx;         /* slot in the table */
    uint32_t outstanding; /* flood: messages not yet echoed */
    uint64_t t_start, deadline, next_ping, ping_sent;
    uint64_t probe_sent; /* hold/flood: our Ping right after the Hello (0: answered) */
    bool admitted;       /* hold/flood: the target answered after the Hello */
    bool snappy_peer;
    bool ping_full; /* hold: the ping went out with every peer up */
    /* churn: our Disconnect went right after the target's Hello; one of
     * the target's own (a refusal) may still come */
    bool bye_after_hello;
    p2p_rlpx_hs_t *hs;
    p2p_rlpx_codec_t codec;
    bool codec_ok;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t *wbuf; /* unsent output */
    size_t wlen, wcap;
};

struct engine {
    enum mode mode;
    int ep;
    p2p_node_t target;
    uint8_t priv[32];
    uint8_t *hello; /* our encoded Hello payload */
    size_t hello_len;
    unsigned peers, nsources, concurrency;
    double rate;
    uint64_t duration_ns, ping_ns;
    uint64_t t0;
    struct conn **conns; /* table of open connections */
    size_t nconns, cap;
    unsigned live, inflight;
    unsigned admitted; /* hold/flood: live peers the target admitted */
    uint64_t started;
    uint8_t *scratch;
    uint8_t *out;
    size_t outcap;
    stress_stats_t *st;
    uint64_t sec_ok, sec_msgs; /* successes (progress line) and replies of the current second */
    bool ports_warned;
    /* flood */
    uint64_t flood_code; /* absolute message code (16 + relative) */
    size_t msg_size;
    size_t msg_pad;  /* flood_pad(msg_size) */
    unsigned window; /* 0: no echo expected, send while the socket takes it */
    /* adversarial */
    double adv_ratio;
    unsigned adv_inflight, adv_max;
    uint64_t adv_started;
    uint64_t adv_closed_by_kind[K_NKINDS], adv_open_by_kind[K_NKINDS];
    uint64_t adv_timeout_by_kind[K_NKINDS], adv_failed_by_kind[K_NKINDS];
    /* the drain: no new connections, pings or flood messages; a live peer
     * whose requests are all answered (or reply_end passed) is sent
     * Disconnect */
    bool draining;
    uint64_t reply_end;
    uint64_t full_until; /* hold/flood: no new peer before (the target was full) */
    uint64_t full_pause; /* the next pause (FULL_PAUSE_NS .. FULL_PAUSE_MAX_NS) */
    /* hold/flood: when the target said "too many peers" (0: not full since
     * a peer started after that was admitted); while full, one handshake
     * at a time */
    uint64_t full_at;
    /* a legitimate connect failed (refused, unreachable, no descriptor or
     * port): one connection at a time, CONNECT_PAUSE_NS apart, until one
     * connects again */
    bool connect_failing;
    uint64_t connect_until;
};

/* The first SIGINT/SIGTERM stops the load (the drain starts); a second
 * one at least 200 ms later cuts the drain short: what is unfinished is
 * counted at once.  Closer ones are the same stop: GNU timeout, for one,
 * sends its signal to the command and again to its process group. */
#define SECOND_SIGNAL_NS (200 * P2P_NS_PER_MS)

/* A flood message is rlp([timestamp (8 bytes), padding]), its size with
 * pad bytes of padding (0xab each). */
static const uint8_t flood_padding[240] = {[0 ... 239] = 0xab};

static size_t flood_msg_size(size_t pad)
{
    size_t inner = 9 + p2p_rlp_header_len(pad) + pad;
    return p2p_rlp_header_len(inner) + inner;
}

/* The padding that makes a flood message msg_size bytes (12..240: pad <
 * 256, inner < 256).  The size grows with the padding, by 2 where a header
 * grows: 57 and 68 fall in such a step and come out one byte longer. */
static size_t flood_pad(size_t msg_size)
{
    size_t pad = msg_size > 13 ? msg_size - 13 : 0;
    while (flood_msg_size(pad) < msg_size) pad++; /* at most 3 steps */
    return pad;
}

/* Time of the first signal (0: none).  Only the signal handler reads and
 * writes it; seq_cst (the default) is more than it needs: lock-free so
 * async-signal-safe, no other data ordered by it. */
static _Atomic uint64_t first_signal_ns;

static void on_signal(int sig)
{
    (void)sig;
    /* p2p_now_ns (clock_gettime) and lock-free atomics are
     * async-signal-safe; + 1: never 0, which means "no signal yet" */
    uint64_t now = p2p_now_ns() + 1;
    uint64_t first = atomic_load(&first_signal_ns);
    if (!first) {
        atomic_store(&first_signal_ns, now);
        stress_stop = 1;
    } else if (now - first >= SECOND_SIGNAL_NS) {
        stress_stop = 2;
    }
}

static int flood_fill(struct engine *e, struct conn *c);

/* ---- connection table ------------------------------------------------- */

/* c leaves C_LIVE (closing or freed). */
static void leave_live(struct engine *e, struct conn *c)
{
    e->live--;
    if (c->admitted) e->admitted--;
    c->admitted = false;
}

static void conn_free(struct engine *e, struct conn *c)
{
    if (c->kind != K_LEGIT) {
        e->adv_inflight--;
    } else if (c->st == C_LIVE || c->st == C_CLOSING) {
        if (c->st == C_LIVE) leave_live(e, c);
    } else {
        e->inflight--;
    }
    epoll_ctl(e->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->hs) {
        p2p_rlpx_hs_wipe(c->hs);
        free(c->hs);
    }
    if (c->codec_ok) p2p_rlpx_codec_wipe(&c->codec);
    free(c->rbuf);
    free(c->wbuf);
    struct conn *last = e->conns[--e->nconns];
    e->conns[c->idx] = last;
    last->idx = c->idx;
    free(c);
}

static void set_events(struct engine *e, struct conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (c->st == C_CONNECTING || c->wlen) ev.events |= EPOLLOUT;
    epoll_ctl(e->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes buf (after any pending output); keeps what the socket refuses.
 * Returns 0 or -1 (connection broken). */
static int conn_write(struct engine *e, struct conn *c, const uint8_t *buf, size_t len)
{
    if (c->wlen == 0) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
        if (len == 0) return 0;
    }
    if (c->wlen + len > c->wcap) {
        size_t nc = c->wlen + len + 1024;
        uint8_t *nb = realloc(c->wbuf, nc);
        if (!nb) return -1;
        c->wbuf = nb;
        c->wcap = nc;
    }
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    set_events(e, c);
    return 0;
}

static int conn_flush(struct engine *e, struct conn *c)
{
    while (c->wlen) {
        ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
        c->wlen -= (size_t)n;
    }
    set_events(e, c);
    return 0;
}

static int send_msg(struct engine *e, struct conn *c, uint64_t code, const uint8_t *p, size_t len)
{
    size_t olen;
    if (p2p_rlpx_frame_encode(&c->codec, e->out, e->outcap, &olen, code, p, len) != 0) return -1;
    return conn_write(e, c, e->out, olen);
}

static const char *state_name(enum cstate s)
{
    switch (s) {
    case C_CONNECTING:
        return "connect";
    case C_ACK:
        return "handshake";
    case C_HELLO:
        return "hello";
    case C_LIVE:
        return "live";
    default:
        return "closing";
    }
}

/* The connection failed (or the target closed it) in its current state. */
static void conn_fail(struct engine *e, struct conn *c, const char *why)
{
    if (c->kind != K_LEGIT) {
        /* closed by the target at whatever stage: expected (a connect
         * that fails is counted by adv_connect_failed instead) */
        e->st->adv_closed++;
        e->adv_closed_by_kind[c->kind]++;
        conn_free(e, c);
        return;
    }
    if (c->st == C_LIVE && !c->admitted && IS_HOLDING(e->mode)) {
        /* after its Hello, before it answered anything: not admitted */
        e->st->refused_after_hello++;
        stress_fail(e->st, "admission: %s", why);
    } else if (c->st == C_LIVE) {
        e->st->drops++;
        stress_fail(e->st, "dropped: %s", why);
    } else if (c->st != C_CLOSING) {
        stress_fail(e->st, "%s: %s", state_name(c->st), why);
        e->st->hs_failures++;
    }
    conn_free(e, c);
}

/* An adversarial connection that never connected: not the target's doing
 * and not a legitimate failure. */
static void adv_connect_failed(struct engine *e, enum kind kind)
{
    e->st->adv_failed++;
    e->adv_failed_by_kind[kind]++;
}

/* A legitimate connect failed: a target that refuses connections (not
 * listening, a typo'd port, died mid-run) is not retried in a tight loop,
 * in any mode: the next attempt waits CONNECT_PAUSE_NS and for the ones
 * in flight to end, until a connect succeeds again. */
static void connect_pause(struct engine *e)
{
    e->connect_failing = true;
    e->connect_until = p2p_now_ns() + CONNECT_PAUSE_NS;
}

/* c's connect failed (at epoll registration or asynchronously). */
static void conn_connect_failed(struct engine *e, struct conn *c, const char *why)
{
    if (c->kind != K_LEGIT) {
        adv_connect_failed(e, c->kind);
        conn_free(e, c);
        return;
    }
    connect_pause(e);
    conn_fail(e, c, why);
}

/* A connection could not be opened (socket, bind, connect, memory). */
static void open_failed(struct engine *e, enum kind kind, const char *why)
{
    if (kind != K_LEGIT) {
        adv_connect_failed(e, kind);
        return;
    }
    stress_fail(e->st, "%s", why);
    e->st->hs_failures++;
    connect_pause(e);
}

static void local_source(struct engine *e, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    uint32_t host = 0x7f000001u + (uint32_t)(e->started % e->nsources);
    sa->sin_addr.s_addr = htonl(host);
}

static void conn_open(struct engine *e, enum kind kind)
{
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &e->target.ep.ip, e->target.ep.tcp);
    if (kind == K_LEGIT) {
        e->started++;
        e->st->attempts++;
    } else {
        e->adv_started++;
        e->st->adv_started++;
    }
    char why[64];
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof why, "socket: %s", strerror(errno));
        open_failed(e, kind, why);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* We close first, so our side holds TIME_WAIT for 60 s: thousands of
     * ephemeral ports on 127.0.0.x.  Without SO_REUSEADDR on this socket
     * they block any listener's bind to those ports (a node restarted on
     * one after a run: EADDRINUSE despite its own SO_REUSEADDR). */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (e->nsources > 1) {
        struct sockaddr_in src;
        local_source(e, &src);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            snprintf(why, sizeof why, "bind source: %s", strerror(errno));
            open_failed(e, kind, why);
            close(fd);
            return;
        }
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
        int err = errno;
        if (err == EADDRNOTAVAIL) {
            snprintf(why, sizeof why, "connect: ephemeral ports exhausted");
            if (!e->ports_warned)
                fprintf(stderr, "devp2p: connect: EADDRNOTAVAIL: ephemeral ports exhausted (see "
                                "/proc/sys/net/ipv4/ip_local_port_range; use more --sources)\n");
            e->ports_warned = true;
        } else {
            snprintf(why, sizeof why, "connect: %s", strerror(err));
        }
        open_failed(e, kind, why);
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        open_failed(e, kind, "out of memory");
        return;
    }
    c->fd = fd;
    c->kind = kind;
    c->st = C_CONNECTING;
    c->t_start = p2p_now_ns();
    c->deadline = c->t_start + HS_TIMEOUT_NS;
    if (e->nconns == e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 1024;
        struct conn **nt = realloc(e->conns, nc * sizeof *nt);
        if (!nt) {
            close(fd);
            free(c);
            open_failed(e, kind, "out of memory");
            return;
        }
        e->conns = nt;
        e->cap = nc;
    }
    c->idx = (uint32_t)e->nconns;
    e->conns[e->nconns++] = c;
    if (kind == K_LEGIT)
        e->inflight++;
    else
        e->adv_inflight++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) != 0) conn_connect_failed(e, c, strerror(errno));
}

static void on_connected(struct engine *e, struct conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        conn_connect_failed(e, c,
                            err == EADDRNOTAVAIL ? "ephemeral ports exhausted" : strerror(err));
        return;
    }
    if (c->kind == K_LEGIT) e->connect_failing = false;
    c->hs = malloc(sizeof *c->hs);
    c->rcap = RBUF_MIN;
    c->rbuf = malloc(c->rcap);
    const uint8_t *pkt;
    size_t pktlen;
    if (!c->hs || !c->rbuf) {
        conn_fail(e, c, "out of memory");
        return;
    }
    /* every connection is a distinct node (the target refuses a second
     * session of the same ID with "already connected") */
    uint8_t priv[32];
    int rc = p2p_secp_keygen(priv);
    if (!rc) rc = p2p_rlpx_hs_init(c->hs, P2P_RLPX_INITIATOR, priv, e->target.pubkey);
    p2p_wipe(priv, sizeof priv);
    if (!rc) rc = p2p_rlpx_hs_make_auth(c->hs, &pkt, &pktlen);
    if (rc) {
        conn_fail(e, c, p2p_strerror(rc));
        return;
    }
    c->st = C_ACK;
    if (c->kind == K_GARBAGE) {
        /* a packet-sized blob of random bytes instead of the auth */
        uint8_t junk[400];
        if (p2p_random(junk, sizeof junk) != 0) memset(junk, 0x5a, sizeof junk);
        junk[0] = 0x01; /* announces 0x01xx bytes: a plausible size prefix */
        pkt = junk;
        c->st = C_ADV;
        c->deadline = p2p_now_ns() + HS_TIMEOUT_NS;
        if (conn_write(e, c, junk, sizeof junk) != 0)
            conn_fail(e, c, "write");
        else
            set_events(e, c);
        return;
    }
    if (c->kind == K_SLOW) {
        /* the first half of a real auth, then silence */
        pktlen /= 2;
        c->st = C_ADV;
        c->deadline = p2p_now_ns() + HS_TIMEOUT_NS;
    }
    if (conn_write(e, c, pkt, pktlen) != 0) {
        conn_fail(e, c, strerror(errno));
        return;
    }
    set_events(e, c);
}

/* Our side ends a live or fresh session: Disconnect(requested), half-close,
 * then wait (bounded) for the target's close. */
static void conn_bye(struct engine *e, struct conn *c)
{
    uint8_t d[3];
    size_t dl;
    if (p2p_disc_encode(d, sizeof d, &dl, P2P_DISC_REQUESTED) == 0) send_msg(e, c, 1, d, dl);
    if (c->st == C_LIVE) leave_live(e, c);
    c->st = C_CLOSING;
    c->deadline = p2p_now_ns() + LINGER_NS;
    if (c->wlen == 0) shutdown(c->fd, SHUT_WR);
}

/* Returns false when c was freed. */
static bool on_hello(struct engine *e, struct conn *c, const uint8_t *p, size_t len)
{
    static p2p_hello_t h;
    int rc = p2p_hello_decode(&h, p, len);
    if (rc) {
        conn_fail(e, c, "bad hello");
        return false;
    }
    uint64_t now = p2p_now_ns();
    c->snappy_peer = h.version >= 5;
    p2p_rlpx_codec_set_snappy(&c->codec, c->snappy_peer);
    if (c->kind == K_LEGIT) {
        stress_lat_add(&e->st->hs_lat, (now - c->t_start) / P2P_NS_PER_US);
        e->st->successes++;
        e->sec_ok++;
    }
    if (c->kind == K_BADMAC) {
        /* a Ping whose frame MAC is corrupted: the target must drop us */
        size_t olen;
        if (p2p_rlpx_frame_encode(&c->codec, e->out, e->outcap, &olen, P2P_MSG_PING,
                                  p2p_ping_payload, 1) != 0) {
            conn_fail(e, c, "encode");
            return false;
        }
        e->out[olen - 1] ^= 0x01;
        c->st = C_ADV;
        c->deadline = now + HS_TIMEOUT_NS;
        if (conn_write(e, c, e->out, olen) != 0) {
            conn_fail(e, c, "write");
            return false;
        }
        return true;
    }
    e->inflight--;
    if (e->mode == M_CHURN || e->mode == M_ADV) {
        c->st = C_LIVE; /* conn_bye moves it to closing */
        e->live++;
        c->bye_after_hello = true;
        conn_bye(e, c);
        return true;
    }
    c->st = C_LIVE;
    e->live++;
    /* The target may still refuse us (its checks after the Hello exchange,
     * "too many peers" among them): a Ping now, answered only once it runs
     * us as a peer, tells; until then no ping or flood message of ours. */
    if (send_msg(e, c, P2P_MSG_PING, p2p_ping_payload, 1) != 0) {
        conn_fail(e, c, "write failed");
        return false;
    }
    c->probe_sent = now;
    /* spread the pings over the interval */
    c->next_ping = now + (e->ping_ns / 4) + (uint64_t)(rand() % 1000) * (e->ping_ns / 1000) / 2;
    c->deadline = UINT64_MAX;
    if (c->rcap > RBUF_MIN && c->rlen <= RBUF_MIN) {
        uint8_t *nb = realloc(c->rbuf, RBUF_MIN);
        if (nb) {
            c->rbuf = nb;
            c->rcap = RBUF_MIN;
        }
    }
    return true;
}

/* The target answered live peer c after the Hello (its probe's Pong, or
 * anything it sends only to a peer it runs): c is admitted.  Returns false
 * when c was freed. */
static bool admit(struct engine *e, struct conn *c)
{
    if (e->full_at && c->t_start >= e->full_at) { /* room again: no more pauses */
        e->full_at = 0;
        e->full_pause = FULL_PAUSE_NS;
    }
    c->admitted = true;
    e->admitted++;
    if (e->admitted > e->st->peak_live) e->st->peak_live = e->admitted;
    if (e->mode == M_FLOOD && flood_fill(e, c) != 0) {
        conn_fail(e, c, "write failed");
        return false;
    }
    return true;
}

/* One decoded message.  Returns false when c was freed. */
static bool on_msg(struct engine *e, struct conn *c, const p2p_rlpx_msg_t *m)
{
    if (m->code == P2P_MSG_DISC) {
        uint8_t reason = P2P_DISC_INVALID;
        if (p2p_disc_decode(&reason, m->payload, m->len, c->snappy_peer) != 0)
            reason = P2P_DISC_INVALID;
        if (c->st == C_CLOSING) {
            /* churn: the target ended the session for a reason of its own
             * (ours is "requested"): it refused it after the Hello */
            if (c->bye_after_hello && reason != P2P_DISC_REQUESTED) {
                e->st->refused_after_hello++;
                stress_fail(e->st, "refused after the Hello: %s", p2p_disc_reason_str(reason));
            }
            conn_free(e, c);
            return false;
        }
        if (reason == P2P_DISC_TOO_MANY_PEERS && IS_HOLDING(e->mode) && c->kind == K_LEGIT) {
            uint64_t now = p2p_now_ns();
            if (now >= e->full_until) { /* not pausing yet: a new, longer pause */
                if (e->full_pause < FULL_PAUSE_NS) e->full_pause = FULL_PAUSE_NS;
                e->st->full_pauses++;
                e->full_until = now + e->full_pause;
                e->full_pause =
                    e->full_pause * 2 > FULL_PAUSE_MAX_NS ? FULL_PAUSE_MAX_NS : e->full_pause * 2;
            }
            if (!e->full_at) e->full_at = now;
        }
        char why[64];
        snprintf(why, sizeof why, "disconnect %s", p2p_disc_reason_str(reason));
        conn_fail(e, c, why);
        return false;
    }
    if (c->st == C_CLOSING) return true; /* our Disconnect is out: nothing else is answered */
    if (c->st == C_HELLO) {
        if (m->code != P2P_MSG_HELLO) {
            conn_fail(e, c, "message before hello");
            return false;
        }
        return on_hello(e, c, m->payload, m->len);
    }
    if (c->st == C_LIVE && !c->admitted && IS_HOLDING(e->mode) && !admit(e, c)) return false;
    if (m->code == P2P_MSG_PING) {
        e->st->pings_recv++;
        if (send_msg(e, c, P2P_MSG_PONG, p2p_ping_payload, 1) != 0) {
            conn_fail(e, c, "write failed");
            return false;
        }
        e->st->pongs_sent++;
    } else if (m->code == e->flood_code && e->mode == M_FLOOD) {
        /* an echo: rlp([ts8, pad]) as we sent it */
        e->st->msgs_recv++;
        e->sec_msgs++;
        if (c->outstanding) c->outstanding--;
        uint64_t ts;
        size_t hdr = m->len && m->payload[0] == 0xf8 ? 2 : 1;
        if (m->len >= hdr + 9 && m->payload[hdr] == 0x88) {
            memcpy(&ts, m->payload + hdr + 1, 8);
            uint64_t now = p2p_now_ns();
            if (ts <= now) stress_lat_add(&e->st->pong_lat, (now - ts) / P2P_NS_PER_US);
        }
        if (c->outstanding <= e->window / 2 && flood_fill(e, c) != 0) {
            conn_fail(e, c, "write failed");
            return false;
        }
    } else if (m->code == P2P_MSG_PONG) {
        if (c->probe_sent) { /* pongs come in order: the probe's is first */
            uint64_t now = p2p_now_ns();
            stress_lat_add(&e->st->admit_lat, (now - c->probe_sent) / P2P_NS_PER_US);
            c->probe_sent = 0;
        } else if (c->ping_sent) {
            uint64_t now = p2p_now_ns();
            stress_lat_add(&e->st->pong_lat, (now - c->ping_sent) / P2P_NS_PER_US);
            if (c->ping_full)
                stress_lat_add(&e->st->pong_lat_full, (now - c->ping_sent) / P2P_NS_PER_US);
            c->ping_sent = 0;
            e->st->pongs_recv++;
            e->sec_msgs++;
        }
    }
    return true;
}

static void on_readable(struct engine *e, struct conn *c)
{
    for (int round = 0; round < 4; round++) {
        if (c->rlen == c->rcap) {
            size_t need = c->codec_ok ? p2p_rlpx_dec_need(&c->codec) : 0;
            if (need > RBUF_MAX || c->rcap >= RBUF_MAX) {
                conn_fail(e, c, "message too big");
                return;
            }
            size_t nc = c->rcap * 2 > RBUF_MAX ? RBUF_MAX : c->rcap * 2;
            uint8_t *nb = realloc(c->rbuf, nc);
            if (!nb) {
                conn_fail(e, c, "out of memory");
                return;
            }
            c->rbuf = nb;
            c->rcap = nc;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n == 0) {
            if (c->st == C_CLOSING) {
                conn_free(e, c);
                return;
            }
            conn_fail(e, c, "closed by target");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (c->st == C_CLOSING) {
                conn_free(e, c);
                return;
            }
            conn_fail(e, c, strerror(errno));
            return;
        }
        c->rlen += (size_t)n;
        size_t pos = 0;
        while (pos < c->rlen) {
            /* a closing session's frames are read for the target's
             * Disconnect (its refusal, in churn); without a codec (an
             * adversarial connection) they are discarded */
            if (c->st == C_ADV || (c->st == C_CLOSING && !c->codec_ok)) {
                pos = c->rlen; /* discard */
                break;
            }
            if (c->st == C_ACK) {
                size_t used = 0;
                int rc = p2p_rlpx_hs_feed(c->hs, &used, c->rbuf + pos, c->rlen - pos);
                pos += used;
                if (rc == P2P_EMORE) break;
                if (rc) {
                    conn_fail(e, c, p2p_strerror(rc));
                    return;
                }
                p2p_rlpx_secrets_t sec;
                rc = p2p_rlpx_hs_secrets(c->hs, &sec);
                if (!rc) rc = p2p_rlpx_codec_init(&c->codec, &sec, MSG_MAX);
                p2p_rlpx_secrets_wipe(&sec);
                if (rc) {
                    conn_fail(e, c, p2p_strerror(rc));
                    return;
                }
                c->codec_ok = true;
                c->st = C_HELLO;
                /* our Hello with this connection's ID: the ID is the last
                 * list element, so the last 64 bytes of the template */
                uint8_t hello[P2P_HELLO_MAX];
                memcpy(hello, e->hello, e->hello_len);
                memcpy(hello + e->hello_len - 64, c->hs->pub, 64);
                p2p_rlpx_hs_wipe(c->hs);
                free(c->hs);
                c->hs = NULL;
                if (send_msg(e, c, P2P_MSG_HELLO, hello, e->hello_len) != 0) {
                    conn_fail(e, c, "write failed");
                    return;
                }
                continue;
            }
            size_t need = p2p_rlpx_dec_need(&c->codec);
            if (need > RBUF_MAX) {
                conn_fail(e, c, "message too big");
                return;
            }
            if (c->rlen - pos < need) break;
            p2p_rlpx_msg_t m;
            int rc = p2p_rlpx_dec_step(&c->codec, &m, c->rbuf + pos, need, e->scratch, MSG_MAX);
            pos += need;
            if (rc == P2P_EMORE) continue;
            if (rc) {
                conn_fail(e, c, p2p_strerror(rc));
                return;
            }
            if (!on_msg(e, c, &m)) return;
        }
        if (pos) {
            memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
            c->rlen -= pos;
        }
        if ((size_t)n < c->rcap - c->rlen) return; /* drained */
    }
}

/* ---- flood ------------------------------------------------------------------ */

/* Sends flood messages on c while its window and the socket allow (at
 * most 64 per call, 4096 without a window: bounded work).  Payload rlp([ts8, pad]) so an echo
 * gives the round trip.  Returns 0 or -1. */
static int flood_fill(struct engine *e, struct conn *c)
{
    static uint8_t msg[MSG_MAX];
    if (e->draining || !c->admitted) return 0;
    /* with no echo expected, fill the socket (then EPOLLOUT drives it) */
    for (int budget = e->window ? 64 : 4096; budget > 0 && c->wlen == 0; budget--) {
        if (e->window && c->outstanding >= e->window) break;
        uint64_t ts = p2p_now_ns();
        p2p_rlp_enc_t enc;
        p2p_rlp_enc_init(&enc, msg, sizeof msg);
        p2p_rlp_list_begin(&enc);
        p2p_rlp_put_bytes(&enc, (const uint8_t *)&ts, sizeof ts);
        p2p_rlp_put_bytes(&enc, flood_padding, e->msg_pad);
        p2p_rlp_list_end(&enc);
        size_t n;
        if (p2p_rlp_enc_finish(&enc, &n) != 0 || send_msg(e, c, e->flood_code, msg, n) != 0)
            return -1;
        c->outstanding++;
        e->st->msgs_sent++;
        e->st->bytes_sent += n;
    }
    return 0;
}

/* ---- timers, progress, sampling ------------------------------------------ */

/* A live peer's requests that got no answer: its outstanding ping, and in
 * flood mode (with echoes expected) its unechoed messages.  Each counts as
 * one failure. */
static uint64_t echoes_owed(const struct engine *e, const struct conn *c)
{
    return e->mode == M_FLOOD && e->window ? c->outstanding : 0;
}

static void count_missing(struct engine *e, struct conn *c)
{
    if (c->probe_sent) {
        stress_fail(e->st, "admission: no answer at the end");
        e->st->replies_missing++;
        c->probe_sent = 0;
    }
    if (c->ping_sent) {
        stress_fail(e->st, "pong missing at the end");
        e->st->replies_missing++;
        c->ping_sent = 0;
    }
    if (echoes_owed(e, c)) {
        stress_fail_n(e->st, c->outstanding, "echo missing at the end");
        e->st->replies_missing += c->outstanding;
        c->outstanding = 0;
    }
}

static bool conn_quiet(const struct engine *e, const struct conn *c)
{
    return !c->ping_sent && !c->probe_sent && !echoes_owed(e, c);
}

/* The target left adversarial connection c open. */
static void adv_left_open(struct engine *e, struct conn *c)
{
    e->st->adv_open++;
    e->adv_open_by_kind[c->kind]++;
    conn_free(e, c);
}

/* An adversarial connection whose deadline passed: after its misdeed the
 * target left it open; before (a bad-MAC connection still in its
 * handshake, any kind still connecting) the target stalled. */
static void adv_expired(struct engine *e, struct conn *c)
{
    if (c->st == C_ADV) {
        adv_left_open(e, c);
        return;
    }
    e->st->adv_timeout++;
    e->adv_timeout_by_kind[c->kind]++;
    conn_free(e, c);
}

/* Timers of every connection.  While draining, a live peer with nothing
 * outstanding is sent Disconnect; one still waiting for a reply at
 * e->reply_end has its missing replies counted first. */
static void tick(struct engine *e, uint64_t now)
{
    for (size_t i = 0; i < e->nconns;) {
        struct conn *c = e->conns[i];
        if (now >= c->deadline) {
            if (c->kind != K_LEGIT)
                adv_expired(e, c);
            else if (c->st == C_CLOSING)
                conn_free(e, c);
            else
                conn_fail(e, c, "timeout");
            continue; /* slot i now holds another connection */
        }
        if (c->st == C_LIVE && e->draining) {
            if (!conn_quiet(e, c)) {
                if (now < e->reply_end) {
                    i++;
                    continue;
                }
                count_missing(e, c);
            }
            conn_bye(e, c);
        } else if (c->st == C_LIVE && e->mode == M_FLOOD) {
            if (flood_fill(e, c) != 0) {
                conn_fail(e, c, "write failed");
                continue;
            }
        } else if (c->st == C_LIVE && e->mode == M_HOLD && c->admitted && now >= c->next_ping) {
            c->next_ping = now + e->ping_ns;
            if (c->ping_sent) {
                /* the previous ping is still unanswered: one ping at a
                 * time, so its pong (whenever it comes) times that ping */
                e->st->pings_late++;
            } else {
                if (send_msg(e, c, P2P_MSG_PING, p2p_ping_payload, 1) != 0) {
                    conn_fail(e, c, "write failed");
                    continue;
                }
                c->ping_sent = now;
                c->ping_full = e->admitted == e->peers && e->inflight == 0;
                e->st->pings_sent++;
            }
        }
        i++;
    }
}

static void sample_proc(struct engine *e, uint64_t *rss_out)
{
    stress_proc_sample(e->st, e->admitted, IS_HOLDING(e->mode), rss_out);
}

/* ---- limits --------------------------------------------------------------- */

/* Raises RLIMIT_NOFILE to the hard limit; exits if need descriptors (plus
 * a margin) do not fit.  peers: the --peers given, for the message. */
static void raise_nofile(unsigned peers, unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)need + 64 > rl.rlim_cur)
        cli_fail("--peers %u needs %u descriptors but the limit is %llu (hard limit %llu): raise "
                 "it with 'ulimit -n' (and the target's too) or lower --peers",
                 peers, need + 64, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)rl.rlim_max);
}

static void check_ports(unsigned need, unsigned nsources)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    unsigned lo = 0, hi = 0;
    if (!f) return;
    if (fscanf(f, "%u %u", &lo, &hi) != 2) hi = lo = 0;
    fclose(f);
    if (hi <= lo) return;
    uint64_t cap = (uint64_t)(hi - lo + 1) * nsources;
    if (need > cap)
        fprintf(stderr,
                "devp2p: warning: %u connections but only %llu ephemeral ports (%u-%u x %u "
                "sources): expect EADDRNOTAVAIL; use more --sources\n",
                need, (unsigned long long)cap, lo, hi, nsources);
}

/* ---- main ------------------------------------------------------------------ */

/* The drain ended with c still open: accounts for it, then frees it.  An
 * adversarial connection is still open; a legitimate one before its Hello
 * is a failure (attempts == successes + handshake failures), a live one
 * has its unanswered requests counted. */
static void conn_final(struct engine *e, struct conn *c)
{
    if (c->kind != K_LEGIT) {
        adv_left_open(e, c);
        return;
    }
    if (c->st == C_LIVE) {
        count_missing(e, c);
    } else if (c->st != C_CLOSING) {
        stress_fail(e->st, "%s: unfinished at the end", state_name(c->st));
        e->st->hs_failures++;
    }
    conn_free(e, c);
}

static void run(struct engine *e, const char *plot, const char *outpath)
{
    stress_stats_t *st = e->st;
    bool tty = isatty(2);
    e->t0 = p2p_now_ns();
    uint64_t end = e->t0 + e->duration_ns, next_sec = e->t0 + P2P_NS_PER_S;
    uint64_t next_tick = e->t0;
    uint64_t drain_end = 0;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        uint64_t now = p2p_now_ns();
        bool running = now < end && !stress_stop;
        if (!running && !e->draining) {
            /* replies and handshakes get DRAIN_REPLY_NS, then the
             * Disconnects sent last get their linger */
            e->draining = true;
            stress_load_end(st, e->t0, now);
            e->reply_end = now + DRAIN_REPLY_NS;
            drain_end = e->reply_end + 2 * LINGER_NS;
            tick(e, now);
        }
        if (e->draining && stress_stop >= 2 && drain_end > now) {
            fprintf(stderr,
                    "stress: second interrupt: the drain ends now, %zu connections "
                    "unfinished\n",
                    e->nconns);
            e->reply_end = drain_end = now;
            tick(e, now); /* counts the replies still missing */
        }
        if (!running && (e->nconns == 0 || now >= drain_end)) break;
        if (running) {
            /* start connections: concurrency cap (churn) or target count (hold) */
            double allowed = e->rate > 0 ? e->rate * (double)(now - e->t0) / 1e9 + 1 : 1e18;
            unsigned budget = 64; /* bounded work per turn */
            while (budget-- && (double)e->started < allowed && e->inflight < e->concurrency &&
                   (!e->connect_failing || (e->inflight == 0 && now >= e->connect_until)) &&
                   (!IS_HOLDING(e->mode) ||
                    (e->live + e->inflight < e->peers && now >= e->full_until &&
                     (!e->full_at || e->inflight == 0)))) {
                conn_open(e, K_LEGIT);
                /* adversarial: misbehaving connections beside the legitimate ones */
                if (e->mode == M_ADV && e->adv_inflight < e->adv_max &&
                    (double)e->adv_started < e->adv_ratio * (double)e->started)
                    conn_open(e, (enum kind)(1 + e->adv_started % (K_NKINDS - 1)));
            }
        }
        int n = epoll_wait(e->ep, evs, MAX_EVENTS, 5);
        if (n < 0 && errno != EINTR) cli_fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            /* a connection freed earlier in this batch cannot appear: frees
             * happen only for the connection being handled */
            if (c->st == C_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(e, c);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                if (conn_flush(e, c) != 0) {
                    conn_fail(e, c, strerror(errno));
                    continue;
                }
                if (c->st == C_CLOSING && c->wlen == 0) shutdown(c->fd, SHUT_WR);
                if (c->st == C_LIVE && e->mode == M_FLOOD && flood_fill(e, c) != 0) {
                    conn_fail(e, c, "write failed");
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) on_readable(e, c);
        }
        now = p2p_now_ns();
        if (now >= next_tick) {
            tick(e, now);
            next_tick = now + 50 * P2P_NS_PER_MS;
        }
        if (now >= next_sec) {
            stress_point_t p = {.t = (double)(now - e->t0) / 1e9,
                                .live = e->live,
                                .inflight = e->inflight,
                                .msgs = e->sec_msgs};
            sample_proc(e, &p.rss_kb);
            stress_series_add(st, &p);
            if (tty)
                stress_progress(st, p.t, (double)e->duration_ns / 1e9, e->live, e->inflight,
                                e->sec_ok);
            e->sec_ok = e->sec_msgs = 0;
            next_sec += P2P_NS_PER_S;
        }
    }
    st->elapsed_s = (double)(p2p_now_ns() - e->t0) / 1e9;
    while (e->nconns) conn_final(e, e->conns[e->nconns - 1]);
    if (tty) fprintf(stderr, "\n");
    /* the last, partial second (with what conn_final counted) */
    stress_point_t last = {.t = st->elapsed_s, .msgs = e->sec_msgs};
    sample_proc(e, &last.rss_kb);
    stress_series_add(st, &last);
    stress_print_summary(st);
    if (e->mode == M_ADV) {
        /* a session refused after its Hello is one failed attempt, not a
         * success and a failure */
        uint64_t ok = st->successes - st->refused_after_hello;
        uint64_t tot = st->successes + st->failures - st->refused_after_hello;
        printf("  legitimate success ratio: %.1f%% (%llu of %llu)\n",
               tot ? 100.0 * (double)ok / (double)tot : 0.0, (unsigned long long)ok,
               (unsigned long long)tot);
        for (int k = 1; k < K_NKINDS; k++)
            printf("    %-16s closed by the target %llu, left open %llu, timed out %llu, failed "
                   "to connect %llu\n",
                   kind_names[k], (unsigned long long)e->adv_closed_by_kind[k],
                   (unsigned long long)e->adv_open_by_kind[k],
                   (unsigned long long)e->adv_timeout_by_kind[k],
                   (unsigned long long)e->adv_failed_by_kind[k]);
    }
    /* the summary is out now, not at exit: stdout to a file or pipe is
     * fully buffered, and a tool held up after the drain (a slow --out
     * path, a sanitizer's check at exit) or killed then showed nothing */
    fflush(stdout);
    char failed[4096];
    if (outpath && stress_write_out(st, failed, sizeof failed, outpath) != 0)
        cli_fail("cannot write %s: %s", failed, strerror(errno));
    if (plot && stress_write_svg(st, plot) != 0)
        cli_fail("cannot write %s: %s", plot, strerror(errno));
}

/* --mode discv4 (tools/stress_discv4.c). */
/* The --pid value, 0 if not given; exits on a usage error, a process that
 * does not exist among them (sampling it would report nothing). */
static pid_t pid_arg(const char *pid)
{
    if (!pid) return 0;
    pid_t p = (pid_t)cli_uint("--pid", pid, 1, INT32_MAX);
    uint64_t rss, threads, fds;
    if (!stress_sample(p, &rss, &threads, &fds))
        cli_usage_fail("invalid --pid '%s': no such process", pid);
    return p;
}

/* The --requests list: ping, findnode or both, comma-separated; exits on
 * anything else. */
static void requests_arg(stress_d4_config_t *cfg, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 4 && strncmp(p, "ping", 4) == 0)
            cfg->pings = true;
        else if (n == 8 && strncmp(p, "findnode", 8) == 0)
            cfg->findnodes = true;
        else
            break;
        p += n;
        if (*p == ',' && p[1]) p++;
    }
    if (*p || (!cfg->pings && !cfg->findnodes))
        cli_usage_fail("invalid --requests '%s': want ping, findnode or ping,findnode", list);
}

static int run_discv4(const char *target, const char *peers, const char *duration, const char *rate,
                      const char *conc, const char *window, const char *requests,
                      const char *sources, const char *pid, const char *out, const char *plot)
{
    static stress_stats_t st;
    memset(&st, 0, sizeof st);
    st.mode = "discv4";
    stress_d4_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.target = cli_node(target, true);
    if (cfg.target.ep.udp == 0) cli_fail("target has no UDP port");
    cfg.peers = (unsigned)cli_uint("--peers", peers ? peers : "64", 1, 100000);
    cfg.duration_ns = cli_timeout_ns("--duration", duration);
    cfg.rate = (double)cli_uint("--rate", rate, 0, 10000000);
    cfg.concurrency = (unsigned)cli_uint("--concurrency", conc ? conc : "32", 1, 100000);
    cfg.window = (unsigned)cli_uint("--window", window ? window : "4", 1, 16);
    requests_arg(&cfg, requests);
    cfg.nsources = (unsigned)cli_uint("--sources", sources, 1, 254);
    if (!(cfg.target.ep.ip.family == 4 && cfg.target.ep.ip.addr[0] == 127)) cfg.nsources = 1;
    char addr[P2P_IP_PORT_STRLEN];
    p2p_ip_port_format(addr, &cfg.target.ep.ip, cfg.target.ep.udp);
    snprintf(st.target, sizeof st.target, "%s/udp", addr);
    raise_nofile(cfg.peers, cfg.peers + 16);
    stress_proc_start(&st, pid_arg(pid), &cfg.target.ep.ip, cfg.target.ep.udp, true);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char err[256];
    if (stress_discv4_run(&cfg, &st, isatty(2), err, sizeof err) != 0) cli_fail("%s", err);
    stress_print_summary(&st);
    fflush(stdout); /* out now, as in run() */
    char failed[4096];
    if (out && stress_write_out(&st, failed, sizeof failed, out) != 0)
        cli_fail("cannot write %s: %s", failed, strerror(errno));
    if (plot && stress_write_svg(&st, plot) != 0)
        cli_fail("cannot write %s: %s", plot, strerror(errno));
    int status = st.failures == 0 && st.successes > 0 ? 0 : 1;
    stress_stats_free(&st);
    return status;
}

/* A result file (--out, its CSV summary, --plot) that cannot be written
 * fails before the load, not after it: its directory must exist and take
 * new files, and the path itself, if it exists, be a writable file (not a
 * directory).  Exits on a usage error. */
static void check_result_file(const char *path)
{
    if (!*path) cli_usage_fail("stress: empty result file name");
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (slash == d)
        d[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(d, sizeof d, ".");
    if (access(d, W_OK | X_OK) != 0)
        cli_usage_fail("stress: cannot write %s: %s: %s", path, d, strerror(errno));
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            cli_usage_fail("stress: cannot write %s: %s", path, strerror(EISDIR));
        if (access(path, W_OK) != 0)
            cli_usage_fail("stress: cannot write %s: %s", path, strerror(errno));
    } else if (errno != ENOENT) {
        cli_usage_fail("stress: cannot write %s: %s", path, strerror(errno));
    }
}

int cmd_stress(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "stress", "",
        "Load generator against a node: handshake churn (churn) or many live peers (hold); "
        "prints rates, latencies, failures by reason and the target's RSS/threads/fds.",
        0, 0};
    const char *target = NULL, *mode = "churn", *peers = NULL, *duration = "10", *rate = "0";
    const char *out = NULL, *plot = NULL, *caps = "snap/1", *sources = "8", *pid = NULL;
    const char *ping = "15", *conc = NULL, *msgsize = "64", *window = NULL, *code = "0";
    const char *advratio = "1", *requests = "ping,findnode";
    const cli_opt_t opts[] = {
        {"target", "ENODE", "the node to load (enode URL or ENR)", &target, NULL},
        {"mode", "MODE", "churn, hold, flood, discv4 or adversarial (default churn)", &mode, NULL},
        {"peers", "N",
         "churn: connections in flight (64); hold/flood: live peers (100); discv4: keys (64)",
         &peers, NULL},
        {"duration", "S", "seconds of load, at least 1 ms (default 10)", &duration, NULL},
        {"rate", "R",
         "new connections (discv4: requests) per second (default 0: as fast as possible)", &rate,
         NULL},
        {"concurrency", "N",
         "hold: handshakes in flight while ramping up (default 128); discv4: keys bonding at "
         "once (32)",
         &conc, NULL},
        {"ping-interval", "S",
         "hold: seconds between our pings (default 15); one is outstanding per peer at most: "
         "one due while the last is unanswered is skipped and counted as late",
         &ping, NULL},
        {"msg-size", "B", "flood: message payload bytes, 12..240 (57, 68: one more; default 64)",
         &msgsize, NULL},
        {"window", "N",
         "flood: unechoed messages per peer (default 32, for a target that echoes each message, "
         "as the test echo protocol does; 0: no echo expected, as from devp2pd, which takes the "
         "messages of its --caps and answers none); discv4: pings outstanding per key (1..16, "
         "default 4)",
         &window, NULL},
        {"requests", "LIST", "discv4: ping, findnode or ping,findnode (default: both)", &requests,
         NULL},
        {"msg-code", "N", "flood: message code relative to the first subprotocol (default 0)",
         &code, NULL},
        {"adv-ratio", "X",
         "adversarial: misbehaving connections started per legitimate one, at most (default 1); "
         "at most --peers are in flight, and most are held to the node's 5 s handshake deadline, "
         "so against a fast node that cap binds first (the report gives both counts)",
         &advratio, NULL},
        {"caps", "LIST",
         "capabilities to advertise, name/version,... (default snap/1; flood sends on the first, "
         "which the target must run too: devp2pd --caps snap/1)",
         &caps, NULL},
        {"sources", "N", "loopback source addresses 127.0.0.1..N (default 8)", &sources, NULL},
        {"pid", "PID", "target process to sample (default: the local listener)", &pid, NULL},
        {"out", "FILE",
         "write the results: FILE.json (JSON); otherwise CSV: the series in FILE (a row per "
         "second, t,live,inflight,ok,fail,msgs,rss_kb, and a last one for the partial second at "
         "the end, so ok and fail sum to the totals) and the totals in FILE.summary.csv (FILE "
         "without .csv; name,value rows named as the JSON fields, nested ones as a.b)",
         &out, NULL},
        {"plot", "FILE", "write an SVG plot of peers and rates per second", &plot, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    if (!target) cli_usage_fail("stress: --target is required");
    /* the result files before the load, not after it */
    if (out) {
        check_result_file(out);
        size_t n = strlen(out);
        if (!(n >= 5 && strcmp(out + n - 5, ".json") == 0)) { /* CSV: and its summary */
            char sum[4096];
            stress_summary_path(sum, sizeof sum, out);
            check_result_file(sum);
        }
    }
    if (plot) check_result_file(plot);
    static struct engine e;
    static stress_stats_t st;
    memset(&e, 0, sizeof e);
    memset(&st, 0, sizeof st);
    e.st = &st;
    if (strcmp(mode, "churn") == 0)
        e.mode = M_CHURN;
    else if (strcmp(mode, "hold") == 0)
        e.mode = M_HOLD;
    else if (strcmp(mode, "flood") == 0)
        e.mode = M_FLOOD;
    else if (strcmp(mode, "adversarial") == 0)
        e.mode = M_ADV;
    else if (strcmp(mode, "discv4") == 0)
        e.mode = M_DISCV4;
    else
        cli_usage_fail("stress: unknown --mode '%s' (churn, hold, flood, discv4, adversarial)",
                       mode);
    /* Every option is checked in every mode: one the mode does not use is
     * ignored, but a malformed or out-of-range value is a usage error, as
     * in the modes that use it (--window: its range is the mode's). */
    e.msg_size = (size_t)cli_uint("--msg-size", msgsize, 12, 240);
    e.msg_pad = flood_pad(e.msg_size);
    e.flood_code = P2P_BASE_LENGTH + cli_uint("--msg-code", code, 0, 1u << 20);
    char *endp;
    e.adv_ratio = strtod(advratio, &endp);
    /* a plain decimal (not empty, nan, hex or with blanks) in 0..100 */
    if (!(isdigit((unsigned char)advratio[0]) || advratio[0] == '.') || *endp ||
        advratio[strspn(advratio, "0123456789.eE+-")] || !(e.adv_ratio >= 0 && e.adv_ratio <= 100))
        cli_usage_fail("invalid --adv-ratio '%s': want a number in 0..100", advratio);
    e.ping_ns = cli_timeout_ns("--ping-interval", ping);
    if (e.ping_ns < 10 * P2P_NS_PER_MS) cli_usage_fail("--ping-interval: too small");
    if (conc) (void)cli_uint("--concurrency", conc, 1, 100000);
    static p2p_hello_t ours;
    memset(&ours, 0, sizeof ours);
    cli_parse_caps(&ours, caps);
    if (e.mode == M_DISCV4)
        return run_discv4(target, peers, duration, rate, conc, window, requests, sources, pid, out,
                          plot);
    stress_d4_config_t unused;
    memset(&unused, 0, sizeof unused);
    requests_arg(&unused, requests);
    e.window = (unsigned)cli_uint("--window", window ? window : "32", 0, 1000000);
    st.mode = mode;
    e.target = cli_node(target, true);
    if (e.target.ep.tcp == 0) cli_fail("target has no TCP port");
    e.peers = (unsigned)cli_uint("--peers",
                                 peers                ? peers
                                 : IS_HOLDING(e.mode) ? "100"
                                                      : "64",
                                 1, 1000000);
    e.duration_ns = cli_timeout_ns("--duration", duration);
    e.rate = (double)cli_uint("--rate", rate, 0, 10000000);
    e.concurrency = !IS_HOLDING(e.mode)
                        ? e.peers
                        : (unsigned)cli_uint("--concurrency", conc ? conc : "128", 1, 100000);
    e.nsources = (unsigned)cli_uint("--sources", sources, 1, 254);
    bool loop4 = e.target.ep.ip.family == 4 && e.target.ep.ip.addr[0] == 127;
    if (!loop4) e.nsources = 1;
    p2p_ip_port_format(st.target, &e.target.ep.ip, e.target.ep.tcp);

    e.adv_max = e.mode == M_ADV ? e.peers : 0;
    raise_nofile(e.peers, e.peers + e.adv_max + 16);
    check_ports(IS_HOLDING(e.mode) ? e.peers : e.peers * 4, e.nsources);

    ours.version = P2P_BASE_VERSION;
    const char *client = DEVP2P_CLIENT_NAME "/stress";
    ours.name_len = strlen(client);
    memcpy(ours.name, client, ours.name_len);
    if (p2p_secp_keygen(e.priv) != 0 || p2p_secp_pubkey(ours.id, e.priv) != 0)
        cli_fail("cannot make a node key");
    static uint8_t hello[P2P_HELLO_MAX];
    if (p2p_hello_encode(hello, sizeof hello, &e.hello_len, &ours) != 0)
        cli_fail("Hello too big (--caps)");
    e.hello = hello;
    e.outcap = MSG_MAX + 1024;
    e.out = malloc(e.outcap);
    e.scratch = malloc(MSG_MAX);
    e.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!e.out || !e.scratch || e.ep < 0) cli_fail("cannot set up: %s", strerror(errno));

    stress_proc_start(&st, pid_arg(pid), &e.target.ep.ip, e.target.ep.tcp, false);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    run(&e, plot, out);

    int status = st.failures == 0 && st.successes > 0 ? 0 : 1;
    p2p_wipe(e.priv, sizeof e.priv);
    close(e.ep);
    free(e.out);
    free(e.scratch);
    free(e.conns);
    stress_stats_free(&st);
    return status;
}
