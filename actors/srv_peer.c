/*
 * actors/srv_peer.c: the connection thread `peer-<id8>` (one per TCP
 * connection at a time, 128 KiB stack; born in the listener as conn-in or
 * in the dialer, reused from the server's parked threads when one is
 * idle).  It owns the socket (the only reader and writer), the RLPx
 * session and the base protocol, and calls the subprotocol callbacks.
 *
 * Life of a connection:
 *   born        posts itself on the run loop's `conns` (so stop can reach it)
 *   connect     dialled only: non-blocking connect, dial_timeout (15 s)
 *   RLPx        auth/ack (wire/rlpx_handshake) under hs_timeout (5 s);
 *               inbound, the ack stays buffered and leaves with our Hello
 *               (or the Disconnect of a rejected connection)
 *   checkpoint  posthandshake: push self, wait for the one-slot `cont` reply
 *               (inbound: pushed as soon as the auth checked out, so the
 *               run loop decides while the ack and keys are computed)
 *   Hello       send ours, read theirs (hs_timeout); identity check; snappy
 *               iff their version >= 5; capability matching
 *   checkpoint  addpeer (then: listener slot / dialer taskdone reported)
 *   peer        base protocol loop: poll over the socket and the waiter
 *               (disconnect mailbox, explicit wakes for `out`, quit); the
 *               handshake's stack pages are trimmed after 100 ms of life
 *   end         Disconnect [reason] unless a network error, linger, close,
 *               close the send gate, detach the connection's mailboxes,
 *               post delpeer (its last message on c); then the thread
 *               parks (conn-idle) until a creator hands it the next
 *               connection, or, if it could not park (server stopping,
 *               P2P__POOL_MAX parked), returns and the run loop joins it.
 *
 * Bounds: the read buffer grows only to what the codec asks for (a header,
 * or one frame whose size the codec checked against p2p_rlpx_frame_limit:
 * max_msg, or its worst-case snappy encoding once snappy is on); Hello-phase
 * frames are limited to 2 KiB + 16; the snappy scratch to the frame's
 * possible expansion (22x) and max_msg; the write buffer holds at most
 * P2P__WBUF_HIGH bytes of frames beyond one message (queued messages and
 * pongs alike: a ping arriving above the mark is held and the socket not
 * read until the buffer drains, so a ping flood that never reads its
 * pongs meets TCP backpressure, then the write deadline); at most
 * P2P__MSGS_PER_WAKE messages are read and written per wake-up.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/server_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/utf8.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"
#include "crypto/util.h"

#define P2P__RBUF_INIT 8192u
#define P2P__RBUF_KEEP (64u * 1024)
#define P2P__WBUF_HIGH (256u * 1024)
#define P2P__MSGS_PER_WAKE 64
#define P2P__READ_PER_WAKE (256u * 1024)
#define P2P__HELLO_FRAME_MAX (P2P_HELLO_MAX + 16)
#define P2P__TRIM_AFTER (100 * P2P_NS_PER_MS)
/* a message a callback held back (P2P_EFULL) is retried after the first
 * interval, doubling to the last while refused (p2p_peer_resume: at once) */
#define P2P__HELD_RETRY_MIN (1 * P2P_NS_PER_MS)
#define P2P__HELD_RETRY_MAX (64 * P2P_NS_PER_MS)

typedef struct io {
    p2p_conn_t *c;
    p2p_server_t *srv;
    p2p_thread_t *self;
    int fd;
    uint8_t *rbuf;
    size_t rcap, roff, rlen; /* unread bytes: rbuf[roff, rlen) */
    uint8_t *wbuf;
    size_t wcap, woff, wlen; /* unwritten bytes: wbuf[woff, wlen) */
    uint8_t *scratch;
    size_t scap;
    p2p_rlpx_codec_t codec;
    bool codec_ready;
    bool eof;
    /* bytes of our auth/ack packet at the front of wbuf not yet sent: not
     * counted in bytes_out (the counters cover what follows the handshake) */
    size_t hs_unsent;
    /* The write deadline bounds whole writes, as geth's per-message
     * frameWriteTimeout, not the gaps between bytes: the bytes pending when
     * a batch began, wbuf[woff, wbatch_end), must all be written within
     * write_timeout of wbatch_start.  A batch begins when the buffer
     * becomes non-empty and when the previous batch is written; it holds
     * at most P2P__WBUF_HIGH bytes plus one message. */
    size_t wbatch_end;
    uint64_t wbatch_start;
    /* A message a callback could not take yet (P2P_EFULL): redelivered,
     * next after held_retry (while the write buffer is empty) */
    bool held;
    p2p_rlpx_msg_t held_msg;
    uint64_t held_retry;
    /* Subprotocol messages, pings and pongs framed into wbuf and not yet
     * written whole: the stream offset of each one's last byte shifted
     * left by 2, or'ed with its kind (MK_*), oldest first (a ring of mcap,
     * a power of two, holding mn).  One counts as sent (msgs_out,
     * pings_sent, pongs_sent) once its last byte went to the socket;
     * subprotocol messages still here when the connection ends were never
     * written and are counted in send_unsent (a disconnect of ours frames
     * every queued message, and a remote that reads nothing leaves them in
     * wbuf past the linger). */
    uint64_t wwritten; /* bytes ever written to the socket */
    uint64_t *mend;
    size_t mcap, mhead, mn;
} io_t;

/* ---- buffers ---- */

static int rbuf_reserve(io_t *io, size_t need)
{
    size_t unread = io->rlen - io->roff;
    if (io->rcap - io->roff >= need && io->rcap > io->rlen) return 0;
    if (io->roff) {
        memmove(io->rbuf, io->rbuf + io->roff, unread);
        io->rlen = unread;
        io->roff = 0;
    }
    if (io->rcap >= need && io->rcap > io->rlen) return 0;
    size_t ncap = io->rcap ? io->rcap : P2P__RBUF_INIT;
    while (ncap < need || ncap <= io->rlen) ncap *= 2;
    uint8_t *nb = realloc(io->rbuf, ncap);
    if (!nb) return P2P_ENOMEM;
    io->rbuf = nb;
    io->rcap = ncap;
    return 0;
}

static void rbuf_shrink(io_t *io)
{
    size_t unread = io->rlen - io->roff;
    if (io->held || io->rcap <= P2P__RBUF_KEEP || unread > P2P__RBUF_INIT) return;
    memmove(io->rbuf, io->rbuf + io->roff, unread);
    io->roff = 0;
    io->rlen = unread;
    uint8_t *nb = realloc(io->rbuf, P2P__RBUF_INIT);
    if (nb) {
        io->rbuf = nb;
        io->rcap = P2P__RBUF_INIT;
    }
    if (io->scap > P2P__RBUF_KEEP) {
        free(io->scratch);
        io->scratch = NULL;
        io->scap = 0;
    }
}

static int wbuf_reserve(io_t *io, size_t need)
{
    if (io->wcap - io->wlen >= need) return 0;
    if (io->woff) {
        memmove(io->wbuf, io->wbuf + io->woff, io->wlen - io->woff);
        io->wlen -= io->woff;
        io->wbatch_end = io->wbatch_end > io->woff ? io->wbatch_end - io->woff : 0;
        io->woff = 0;
    }
    if (io->wcap - io->wlen >= need) return 0;
    size_t ncap = io->wcap ? io->wcap : P2P__RBUF_INIT;
    while (ncap - io->wlen < need) ncap *= 2;
    uint8_t *nb = realloc(io->wbuf, ncap);
    if (!nb) return P2P_ENOMEM;
    io->wbuf = nb;
    io->wcap = ncap;
    return 0;
}

static size_t wpending(const io_t *io)
{
    return io->wlen - io->woff;
}

/* Starts a write batch: everything pending now, from now. */
static void wbatch_begin(io_t *io)
{
    io->wbatch_end = io->wlen;
    io->wbatch_start = p2p_now_ns();
}

static int wbuf_append(io_t *io, const uint8_t *p, size_t n)
{
    if (n == 0) return 0; /* wbuf may still be NULL */
    int rc = wbuf_reserve(io, n);
    if (rc) return rc;
    bool empty = !wpending(io);
    memcpy(io->wbuf + io->wlen, p, n);
    io->wlen += n;
    if (empty) wbatch_begin(io);
    return 0;
}

/* Kinds of the framed messages msgs_written counts (io_t.mend). */
enum { MK_MSG = 0, MK_PING = 1, MK_PONG = 2, MK_BITS = 2 };

/* Records a message of kind (MK_*) just framed at the end of wbuf.
 * Returns 0 or P2P_ENOMEM (not recorded: the caller counts it at once). */
static int msg_framed(io_t *io, unsigned kind)
{
    if (io->mn == io->mcap) {
        size_t ncap = io->mcap ? 2 * io->mcap : 64;
        uint64_t *nb = malloc(ncap * sizeof *nb);
        if (!nb) return P2P_ENOMEM;
        for (size_t i = 0; i < io->mn; i++) nb[i] = io->mend[(io->mhead + i) & (io->mcap - 1)];
        free(io->mend);
        io->mend = nb;
        io->mcap = ncap;
        io->mhead = 0;
    }
    io->mend[(io->mhead + io->mn) & (io->mcap - 1)] =
        (io->wwritten + wpending(io)) << MK_BITS | kind;
    io->mn++;
    return 0;
}

/* Counts the recorded messages whose last byte is written now. */
static void msgs_written(io_t *io)
{
    uint64_t k[3] = {0, 0, 0};
    while (io->mn && io->mend[io->mhead] >> MK_BITS <= io->wwritten) {
        k[io->mend[io->mhead] & ((1u << MK_BITS) - 1)]++;
        io->mhead = (io->mhead + 1) & (io->mcap - 1);
        io->mn--;
    }
    if (k[MK_MSG]) P2P__STAT_ADD(io->srv, msgs_out, k[MK_MSG]);
    if (k[MK_PING]) P2P__STAT_ADD(io->srv, pings_sent, k[MK_PING]);
    if (k[MK_PONG]) P2P__STAT_ADD(io->srv, pongs_sent, k[MK_PONG]);
}

/* Subprotocol messages framed and not written (the connection ends). */
static uint64_t msgs_unwritten(const io_t *io)
{
    uint64_t n = 0;
    for (size_t i = 0; i < io->mn; i++)
        n += (io->mend[(io->mhead + i) & (io->mcap - 1)] & ((1u << MK_BITS) - 1)) == MK_MSG;
    return n;
}

/* Before an idle sleep: with nothing buffered either way and no held
 * message, the buffers go back to the allocator (a live peer that only
 * pings keeps none between its messages; the next read or write
 * allocates again). */
static void io_release_idle(io_t *io)
{
    if (io->held || io->rlen != io->roff || wpending(io)) return;
    free(io->rbuf);
    io->rbuf = NULL;
    io->rcap = io->rlen = io->roff = 0;
    free(io->wbuf);
    io->wbuf = NULL;
    io->wcap = io->wlen = io->woff = 0;
    free(io->scratch);
    io->scratch = NULL;
    io->scap = 0;
    free(io->mend); /* empty: everything was written */
    io->mend = NULL;
    io->mcap = io->mhead = io->mn = 0;
}

/* ---- socket ---- */

/* Writes what the socket takes.  Returns 0 or P2P_EIO. */
static int io_flush(io_t *io)
{
    while (wpending(io)) {
        ssize_t n = send(io->fd, io->wbuf + io->woff, wpending(io), MSG_NOSIGNAL);
        if (n > 0) {
            io->woff += (size_t)n;
            io->wwritten += (uint64_t)n;
            if (io->woff >= io->wbatch_end && io->woff < io->wlen) wbatch_begin(io);
            size_t hs = (size_t)n < io->hs_unsent ? (size_t)n : io->hs_unsent;
            io->hs_unsent -= hs;
            if ((size_t)n > hs) P2P__STAT_ADD(io->srv, bytes_out, (uint64_t)((size_t)n - hs));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        msgs_written(io);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return P2P_EIO;
    }
    msgs_written(io);
    io->woff = io->wlen = io->wbatch_end = 0;
    return 0;
}

/* Reads what is available (up to max bytes).  Returns bytes read (0: would
 * block) or P2P_EIO (EOF or error; io->eof set on EOF). */
static long io_read(io_t *io, size_t max)
{
    if (rbuf_reserve(io, 1)) return P2P_ENOMEM;
    size_t room = io->rcap - io->rlen;
    if (room > max) room = max;
    for (;;) {
        ssize_t n = recv(io->fd, io->rbuf + io->rlen, room, 0);
        if (n > 0) {
            io->rlen += (size_t)n;
            if (io->codec_ready) P2P__STAT_ADD(io->srv, bytes_in, (uint64_t)n);
            return (long)n;
        }
        if (n == 0) {
            io->eof = true;
            return P2P_EIO;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return P2P_EIO;
    }
}

/* Waits for events on the socket (or a wake / quit) until deadline.
 * Returns the revents (0 on a wake-up), P2P_ETIMEDOUT or P2P_ECLOSED (quit). */
static int io_wait(io_t *io, short events, uint64_t deadline)
{
    if (p2p_thread_should_quit(io->self)) return P2P_ECLOSED;
    struct pollfd pfd = {.fd = io->fd, .events = events};
    int rc = p2p_waiter_poll(&io->self->waiter, &pfd, 1, deadline);
    if (p2p_thread_should_quit(io->self)) return P2P_ECLOSED;
    if (rc == P2P_ETIMEDOUT) return rc;
    if (rc) return P2P_EIO;
    return pfd.revents;
}

/* A poll(2) timeout that ends at or just after deadline: 0 once it has
 * passed, rounded up to the next millisecond, at most INT_MAX (a linger or
 * write timeout of 2^31 ms or more). */
static int poll_ms(uint64_t now, uint64_t deadline)
{
    if (now >= deadline) return 0;
    uint64_t ms = (deadline - now) / P2P_NS_PER_MS + 1;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Writes everything pending before deadline.  Returns 0, P2P_ETIMEDOUT,
 * P2P_ECLOSED or P2P_EIO. */
static int io_flush_all(io_t *io, uint64_t deadline, bool quit_aware)
{
    for (;;) {
        int rc = io_flush(io);
        if (rc) return rc;
        if (!wpending(io)) return 0;
        if (p2p_now_ns() >= deadline) return P2P_ETIMEDOUT;
        struct pollfd pfd = {.fd = io->fd, .events = POLLOUT};
        if (quit_aware) {
            rc = io_wait(io, POLLOUT, deadline);
            if (rc < 0 && rc != P2P_ETIMEDOUT) return rc;
        } else {
            (void)poll(&pfd, 1, poll_ms(p2p_now_ns(), deadline));
        }
    }
}

/* Reads until at least need unread bytes are buffered or deadline.
 * Returns 0, P2P_ETIMEDOUT, P2P_ECLOSED, P2P_EIO or P2P_ENOMEM. */
static int io_fill(io_t *io, size_t need, uint64_t deadline)
{
    int rc = rbuf_reserve(io, need);
    if (rc) return rc;
    while (io->rlen - io->roff < need) {
        long n = io_read(io, io->rcap - io->rlen);
        if (n < 0) return (int)n;
        if (n > 0) continue;
        if (p2p_now_ns() >= deadline) return P2P_ETIMEDOUT;
        rc = io_wait(io, POLLIN, deadline);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ---- frames ---- */

/* Encodes one message into the write buffer. */
static int io_put_msg(io_t *io, uint64_t code, const uint8_t *payload, size_t len)
{
    size_t bound = p2p_rlpx_frame_bound(&io->codec, len);
    int rc = wbuf_reserve(io, bound);
    if (rc) return rc;
    bool empty = !wpending(io);
    size_t n;
    rc = p2p_rlpx_frame_encode(&io->codec, io->wbuf + io->wlen, io->wcap - io->wlen, &n, code,
                               payload, len);
    if (rc) return rc;
    io->wlen += n;
    if (empty) wbatch_begin(io);
    return 0;
}

/* Decodes the next message from the buffered bytes.  Returns 0 (*msg set;
 * its payload is valid until the next decode or read), P2P_EMORE (read
 * more: the buffer has room for what is needed) or a codec error. */
static int io_next_msg(io_t *io, p2p_rlpx_msg_t *msg, size_t frame_max)
{
    for (;;) {
        size_t need = p2p_rlpx_dec_need(&io->codec);
        if (io->rlen - io->roff < need) {
            int rc = rbuf_reserve(io, need);
            return rc ? rc : P2P_EMORE;
        }
        bool body = io->codec.rstate == 1;
        if (body && io->codec.snappy) {
            /* snappy expands at most ~21.4x (a 3-byte copy yields 64 bytes) */
            size_t want = io->codec.fsize * 22 + 64;
            if (want > io->srv->max_msg) want = io->srv->max_msg;
            if (io->scap < want) {
                uint8_t *ns = realloc(io->scratch, want);
                if (!ns) return P2P_ENOMEM;
                io->scratch = ns;
                io->scap = want;
            }
        }
        int rc =
            p2p_rlpx_dec_step(&io->codec, msg, io->rbuf + io->roff, need, io->scratch, io->scap);
        if (rc == 0) {
            io->roff += need;
            return 0;
        }
        if (rc != P2P_EMORE) return rc;
        io->roff += need; /* header accepted */
        if (io->codec.fsize > frame_max) return P2P_ETOOBIG;
    }
}

/* Reads the next message before deadline (handshake phase). */
static int io_read_msg(io_t *io, p2p_rlpx_msg_t *msg, size_t frame_max, uint64_t deadline)
{
    for (;;) {
        int rc = io_next_msg(io, msg, frame_max);
        if (rc != P2P_EMORE) return rc;
        rc = io_fill(io, p2p_rlpx_dec_need(&io->codec), deadline);
        if (rc) return rc;
    }
}

/* Sends Disconnect [reason] (compressed after a v5 Hello, as geth does),
 * then half-closes and lingers until EOF or the linger deadline.  Nothing
 * is sent for a network error or before the RLPx session exists.  Counted
 * in disc_sent once written. */
static void io_disconnect(io_t *io, uint8_t reason)
{
    p2p_server_t *srv = io->srv;
    if (!io->codec_ready || reason == P2P_DISC_NETWORK_ERROR || io->eof) return;
    uint8_t pl[4];
    size_t pn;
    if (p2p_disc_encode(pl, sizeof pl, &pn, reason)) return;
    io->held = false;
    if (io_put_msg(io, P2P_MSG_DISC, pl, pn)) return;
    uint64_t deadline = p2p_now_ns() + srv->linger;
    if (io_flush_all(io, deadline, false)) return;
    /* counted once written whole, as msgs_out: a Disconnect left behind
     * messages the remote did not read within the linger was never sent */
    P2P__STAT(srv, disc_sent[reason]);
    (void)shutdown(io->fd, SHUT_WR);
    /* linger: let the remote read the Disconnect before we close (closing
     * with unread input would reset the connection and may discard it);
     * what it sends meanwhile (a rejected peer's Hello) is read, so
     * counted in bytes_in as the remote counted it out */
    uint8_t sink[2048];
    for (;;) {
        uint64_t now = p2p_now_ns();
        if (now >= deadline) break;
        struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
        if (poll(&pfd, 1, poll_ms(now, deadline)) <= 0) break;
        ssize_t n = recv(io->fd, sink, sizeof sink, 0);
        if (n > 0) P2P__STAT_ADD(srv, bytes_in, (uint64_t)n);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
}

/* ---- phases ---- */

static int do_connect(io_t *io)
{
    p2p_conn_t *c = io->c;
    p2p_server_t *srv = io->srv;
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &c->node.ep.ip, c->node.ep.tcp);
    if (!sl) return P2P_EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        /* a local shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM), not the
         * remote's failure: said, rate-limited, as the listener's accept
         * errors are */
        int e = errno;
        P2P__STAT(srv, dial_socket_errors);
        P2P_LOG_RL(3, 10000, P2P_LOG_WARN, "Cannot create a socket for a dial", "err=\"%s\"",
                   strerror(e));
        return P2P_ESYS;
    }
    io->fd = fd;
    c->fd = fd;
    P2P__STAT(srv, dials);
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINPROGRESS) return P2P_EIO;
        uint64_t deadline = p2p_now_ns() + srv->dial_timeout;
        for (;;) {
            int rc = io_wait(io, POLLOUT, deadline);
            if (rc < 0) return rc;
            if (rc & (POLLOUT | POLLERR | POLLHUP)) break;
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) return P2P_EIO;
    }
    c->remote_ip = c->node.ep.ip;
    c->remote_port = c->node.ep.tcp;
    struct sockaddr_storage ls;
    socklen_t ll = sizeof ls;
    if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
        P2P__IGNORE(p2p_ip_from_sockaddr(&c->local_ip, &c->local_port, (struct sockaddr *)&ls));
    return 0;
}

static void set_peer_name(io_t *io)
{
    char hex[17], name[P2P_THREAD_NAME_MAX];
    p2p_hex_encode(hex, io->c->node.id, 4);
    hex[8] = 0;
    (void)p2p_thread_name(name, "peer-%s", hex);
    (void)p2p_thread_rename(name);
}

/* Posts the posthandshake checkpoint (its reply comes on cont, see
 * checkpoint_wait).  Inbound, it is posted as soon as the remote's auth
 * checks out (do_rlpx), so the run loop decides while this thread
 * computes the ack and the session keys, and the reply is usually there
 * when it looks (no sleep, no wake); nothing reaches the remote before the
 * reply: the ack stays buffered. */
static int post_handshake(io_t *io)
{
    p2p__msg_conn_t ph = {.c = io->c, .peer = p2p_trace_peer(io->c->node.id)};
    return p2p__push_must(io->srv, io->srv->mb_posthandshake, &ph, sizeof ph);
}

/* RLPx handshake.  Inbound, *posted tells whether the posthandshake
 * checkpoint was posted (post_handshake), even if the handshake then
 * failed: its reply must still be taken. */
static int do_rlpx(io_t *io, bool *posted)
{
    p2p_conn_t *c = io->c;
    p2p_server_t *srv = io->srv;
    uint64_t deadline = p2p_now_ns() + srv->hs_timeout;
    p2p_rlpx_hs_t *hs = malloc(sizeof *hs);
    p2p_rlpx_secrets_t *sec = malloc(sizeof *sec);
    int rc = (hs && sec) ? 0 : P2P_ENOMEM;
    if (!rc)
        rc = p2p_rlpx_hs_init_keyed(hs, c->dialed ? P2P_RLPX_INITIATOR : P2P_RLPX_RECIPIENT,
                                    srv->priv, srv->pub, c->dialed ? c->node.pubkey : NULL);
    const uint8_t *pkt;
    size_t pktlen;
    if (!rc && c->dialed) {
        rc = p2p_rlpx_hs_make_auth(hs, &pkt, &pktlen);
        if (!rc) rc = wbuf_append(io, pkt, pktlen);
        if (!rc) io->hs_unsent = pktlen;
        if (!rc) rc = io_flush_all(io, deadline, true);
    }
    while (!rc) {
        size_t avail = io->rlen - io->roff, used = 0;
        if (avail) {
            rc = p2p_rlpx_hs_feed(hs, &used, io->rbuf + io->roff, avail);
            io->roff += used;
            if (rc == 0) break;
            if (rc != P2P_EMORE) break;
            rc = 0;
            if (used) continue;
        }
        rc = io_fill(io, io->rlen - io->roff + 1, deadline);
    }
    if (!rc && !c->dialed) {
        /* the remote's identity is known: name the connection and post
         * the checkpoint now.  The ack stays buffered: it leaves with our
         * Hello (or the Disconnect of a rejected connection) after the
         * posthandshake checkpoint, one send and one wake-up of the dialer
         * for both */
        memcpy(c->node.pubkey, hs->remote_pub, 64);
        p2p_node_id(c->node.id, c->node.pubkey);
        c->node.ep.ip = c->remote_ip;
        set_peer_name(io);
        rc = post_handshake(io);
        *posted = rc == 0;
        if (!rc) rc = p2p_rlpx_hs_make_ack(hs, &pkt, &pktlen);
        if (!rc) rc = wbuf_append(io, pkt, pktlen);
        if (!rc) io->hs_unsent = pktlen; /* nothing was written before it */
    }
    if (!rc) rc = p2p_rlpx_hs_secrets(hs, sec);
    if (!rc) rc = p2p_rlpx_codec_init(&io->codec, sec, srv->max_msg);
    if (!rc) {
        io->codec_ready = true;
        /* bytes read with the end of the remote's auth/ack (the start of
         * its Hello) belong after the handshake */
        P2P__STAT_ADD(srv, bytes_in, (uint64_t)(io->rlen - io->roff));
    }
    if (hs) {
        p2p_rlpx_hs_wipe(hs);
        free(hs);
    }
    if (sec) {
        p2p_rlpx_secrets_wipe(sec);
        free(sec);
    }
    return rc;
}

/* Waits for the run loop's reply to a checkpoint on cont.  The run loop
 * answers every checkpoint, also while stopping, so the wait ends. */
static void checkpoint_wait(io_t *io, p2p__msg_cont_t *reply)
{
    for (;;) {
        if (p2p_mailbox_try_pop(io->c->cont, reply, sizeof *reply) == 0) return;
        (void)p2p_waiter_wait(&io->self->waiter, P2P_DEADLINE_NEVER);
    }
}

/* Checkpoint: pushes c onto mb (addpeer) and waits for the reply. */
static int checkpoint(io_t *io, p2p_mailbox_t *mb, const void *msg, size_t len,
                      p2p__msg_cont_t *reply)
{
    int rc = p2p__push_must(io->srv, mb, msg, len);
    if (rc) return rc;
    checkpoint_wait(io, reply);
    return 0;
}

/* Hello exchange.  Returns 0, or an error with *reason set (the Disconnect
 * to send, or P2P_DISC_NETWORK_ERROR for none), *remote set if the remote
 * sent a Disconnect. */
static int do_hello(io_t *io, uint8_t *reason, bool *remote)
{
    p2p_conn_t *c = io->c;
    p2p_server_t *srv = io->srv;
    uint64_t deadline = p2p_now_ns() + srv->hs_timeout;
    *reason = P2P_DISC_NETWORK_ERROR;
    int rc = io_put_msg(io, P2P_MSG_HELLO, srv->hello, srv->hello_len);
    if (!rc) rc = io_flush_all(io, deadline, true);
    if (!rc && !c->dialed && io->rlen == io->roff) {
        /* inbound: the remote can send its Hello only after reading the
         * ack that just left with ours, so wait before the first read
         * (instead of a read that finds nothing, then the wait) */
        int ev = io_wait(io, POLLIN, deadline);
        if (ev < 0) rc = ev;
    }
    if (rc) return rc;
    p2p_rlpx_msg_t msg;
    rc = io_read_msg(io, &msg, P2P__HELLO_FRAME_MAX, deadline);
    if (rc == P2P_ETOOBIG || rc == P2P_EBADMAC || rc == P2P_EDECODE) {
        *reason = P2P_DISC_PROTOCOL_ERROR;
        return rc;
    }
    if (rc) return rc;
    if (msg.code == P2P_MSG_DISC) {
        uint8_t r;
        P2P__IGNORE(p2p_disc_decode(&r, msg.payload, msg.len, false));
        P2P__STAT(srv, disc_recv[r]);
        *reason = r;
        *remote = true;
        return P2P_ECLOSED;
    }
    if (msg.code != P2P_MSG_HELLO) {
        *reason = P2P_DISC_PROTOCOL_ERROR;
        return P2P_EPROTO;
    }
    p2p_hello_t *h = calloc(1, sizeof *h);
    if (!h) return P2P_ENOMEM;
    rc = p2p_hello_decode(h, msg.payload, msg.len);
    if (rc) {
        free(h);
        *reason = rc == P2P_EBADKEY ? P2P_DISC_INVALID_IDENTITY : P2P_DISC_PROTOCOL_ERROR;
        return rc;
    }
    /* the remote reads everything after the Hellos compressed once both
     * say v5, the Disconnect of a failed identity check included (geth
     * turns snappy on before that check) */
    if (h->version >= 5) p2p_rlpx_codec_set_snappy(&io->codec, true);
    uint8_t r;
    if (!p2p_checks_identity(&r, h->id, 64, c->node.id)) {
        free(h);
        *reason = r;
        return P2P_EPROTO;
    }
    /* valid UTF-8 without control bytes from here on (same length) */
    h->name_len = p2p_utf8_clean(h->name, sizeof h->name, h->name, h->name_len);
    /* keep a copy sized to its contents (the decoded struct is ~6 KiB) */
    size_t capbytes = h->ncaps * sizeof h->caps[0];
    p2p__peer_hello_t *k = malloc(sizeof *k + capbytes + h->name_len + 1);
    if (!k) {
        free(h);
        return P2P_ENOMEM;
    }
    k->version = h->version;
    k->ncaps = h->ncaps;
    memcpy(k->caps, h->caps, capbytes);
    k->name = (char *)k->caps + capbytes;
    k->name_len = h->name_len;
    memcpy(k->name, h->name, h->name_len);
    k->name[h->name_len] = 0;
    free(h);
    c->hello = k;
    rc = p2p_caps_match(c->match, &c->nmatch, srv->wprotos, srv->nprotos, k->caps, k->ncaps);
    if (rc) {
        *reason = P2P_DISC_PROTOCOL_ERROR;
        return rc;
    }
    return 0;
}

/* ---- peer loop ---- */

typedef struct peer_run {
    void *state[P2P__MAX_PROTOS];
    bool started[P2P__MAX_PROTOS];
    uint8_t reason;
    bool remote;
    bool done;
    uint64_t msgs_read; /* whole messages decoded: the read deadline's clock */
} peer_run_t;

static void fail(peer_run_t *pr, uint8_t reason)
{
    if (pr->done) return;
    pr->done = true;
    pr->reason = reason;
}

/* Handles one received message.  Returns 0, or P2P_EFULL if a callback
 * asked for the message again later. */
static int handle_msg(io_t *io, peer_run_t *pr, const p2p_rlpx_msg_t *msg)
{
    p2p_conn_t *c = io->c;
    p2p_server_t *srv = io->srv;
    if (msg->code < P2P_BASE_LENGTH) {
        if (msg->len > P2P_BASE_MAX_MSG && msg->code != P2P_MSG_DISC) {
            P2P__STAT(srv, frame_errors);
            fail(pr, P2P_DISC_PROTOCOL_ERROR);
            return 0;
        }
        switch (msg->code) {
        case P2P_MSG_PING:
            /* a peer that pings without reading our pongs: stop reading it
             * (held) until the write buffer drains, or the write deadline
             * drops it; the buffer never grows past the high mark */
            if (wpending(io) >= P2P__WBUF_HIGH) return P2P_EFULL;
            if (io_put_msg(io, P2P_MSG_PONG, p2p_ping_payload, sizeof p2p_ping_payload)) {
                fail(pr, P2P_DISC_NETWORK_ERROR);
                return 0;
            }
            /* counted in pongs_sent once written (msgs_written) */
            if (msg_framed(io, MK_PONG)) P2P__STAT(srv, pongs_sent);
            return 0;
        case P2P_MSG_DISC: {
            uint8_t r;
            P2P__IGNORE(p2p_disc_decode(&r, msg->payload, msg->len, io->codec.snappy));
            P2P__STAT(srv, disc_recv[r]);
            fail(pr, r);
            pr->remote = true;
            return 0;
        }
        default: /* pong, a late Hello, unknown base codes: ignored (as geth) */
            return 0;
        }
    }
    for (size_t i = 0; i < c->nmatch; i++) {
        const p2p_protocol_t *p = &srv->protos[c->match[i].proto];
        uint64_t off = c->match[i].offset;
        if (msg->code < off || msg->code >= off + p->length) continue;
        if (p->on_msg && pr->started[i]) {
            int rc = p->on_msg(c, p->ctx, pr->state[i], msg->code - off, msg->payload, msg->len);
            if (rc == P2P_EFULL) return P2P_EFULL;
            if (rc) {
                P2P__STAT(srv, proto_errors);
                fail(pr, P2P_DISC_SUBPROTOCOL_ERROR);
                return 0;
            }
        }
        P2P__STAT(srv, msgs_in);
        if (srv->cfg.enable_msg_events)
            p2p__conn_msg_event(c, P2P_PEER_EVENT_MSGRECV, c->match[i].proto, msg->code - off,
                                msg->len);
        return 0;
    }
    /* a code past the base protocol that no matched capability owns: the
     * multiplexing of the base protocol is breached, not a subprotocol
     * (devp2p rlpx.md: 0x02 breach of protocol; 0x10 is for a reason
     * specific to a subprotocol, which has none here) */
    P2P__STAT(srv, proto_errors);
    fail(pr, P2P_DISC_PROTOCOL_ERROR);
    return 0;
}

/* Reads and handles up to P2P__MSGS_PER_WAKE messages. */
static void peer_read(io_t *io, peer_run_t *pr, bool readable)
{
    p2p_server_t *srv = io->srv;
    if (io->held) {
        if (handle_msg(io, pr, &io->held_msg) == P2P_EFULL) {
            io->held_retry *= 2;
            if (io->held_retry > P2P__HELD_RETRY_MAX) io->held_retry = P2P__HELD_RETRY_MAX;
            return;
        }
        io->held = false;
    }
    size_t readbytes = 0;
    for (int i = 0; i < P2P__MSGS_PER_WAKE && !pr->done; i++) {
        p2p_rlpx_msg_t msg;
        int rc = io_next_msg(io, &msg, p2p_rlpx_frame_limit(&io->codec));
        if (rc == P2P_EMORE) {
            if (!readable || readbytes >= P2P__READ_PER_WAKE) break;
            long n = io_read(io, io->rcap - io->rlen);
            if (n < 0) {
                P2P__STAT(srv, net_errors);
                fail(pr, P2P_DISC_NETWORK_ERROR);
                break;
            }
            if (n == 0) break;
            readbytes += (size_t)n;
            i--;
            continue;
        }
        if (rc) {
            P2P__STAT(srv, frame_errors);
            fail(pr, rc == P2P_ENOMEM ? P2P_DISC_NETWORK_ERROR : P2P_DISC_PROTOCOL_ERROR);
            break;
        }
        pr->msgs_read++;
        if (handle_msg(io, pr, &msg) == P2P_EFULL) {
            io->held = true;
            io->held_msg = msg;
            io->held_retry = P2P__HELD_RETRY_MIN;
            break;
        }
    }
}

/* Frames queued messages into the write buffer while it holds less than
 * high bytes, at most max of them; stops at a framing failure (fail). */
static void peer_write_some(io_t *io, peer_run_t *pr, size_t high, size_t max)
{
    p2p_conn_t *c = io->c;
    p2p_server_t *srv = io->srv;
    for (size_t i = 0; i < max && wpending(io) < high; i++) {
        p2p__msg_out_t m;
        if (p2p_mailbox_try_pop(c->out, &m, sizeof m)) break;
        /* relaxed: the cap only */
        atomic_fetch_sub_explicit(&c->out_bytes, m.len, memory_order_relaxed);
        int rc = io_put_msg(io, m.code, m.data, m.len);
        free(m.data);
        if (rc == P2P_ETOOBIG) {
            /* p2p_peer_send checked the size: not expected, but one
             * unframable message costs only itself (the codec state is
             * untouched when encoding fails), not the connection */
            P2P__STAT(srv, send_toobig);
            continue;
        }
        if (rc) {
            /* the write buffer could not grow: the connection ends before
             * writing the message, which is counted as such */
            P2P__STAT(srv, send_unsent);
            fail(pr, P2P_DISC_NETWORK_ERROR);
            break;
        }
        /* counted in msgs_out once written (msgs_written) */
        if (msg_framed(io, MK_MSG)) P2P__STAT(srv, msgs_out);
        if (srv->cfg.enable_msg_events) {
            size_t k;
            for (k = 0; k < c->nmatch; k++)
                if (c->match[k].proto == m.proto) break;
            uint64_t off = k < c->nmatch ? c->match[k].offset : 0;
            p2p__conn_msg_event(c, P2P_PEER_EVENT_MSGSEND, m.proto, m.code - off, m.len);
        }
    }
}

static void peer_write(io_t *io, peer_run_t *pr)
{
    peer_write_some(io, pr, P2P__WBUF_HIGH, P2P__MSGS_PER_WAKE);
}

/* Frames the messages queued on out now into the write buffer, whatever
 * it holds already (the backlog caps bound them), once the peer is done:
 * before a disconnect of ours.  Messages queued meanwhile are not waited
 * for. */
static void out_all(io_t *io, peer_run_t *pr)
{
    peer_write_some(io, pr, SIZE_MAX, p2p_mailbox_depth(io->c->out));
}

/* True if a subprotocol callback is holding a message back (P2P_EFULL). */
static bool held_by_app(const io_t *io)
{
    return io->held && io->held_msg.code >= P2P_BASE_LENGTH;
}

static void run_peer(io_t *io, peer_run_t *pr)
{
    p2p_conn_t *c = io->c;
    p2p_server_t *srv = io->srv;
    for (size_t i = 0; i < c->nmatch && !pr->done; i++) {
        const p2p_protocol_t *p = &srv->protos[c->match[i].proto];
        if (p->on_start && p->on_start(c, p->ctx, &pr->state[i])) {
            P2P__STAT(srv, proto_errors);
            fail(pr, P2P_DISC_SUBPROTOCOL_ERROR);
            break;
        }
        pr->started[i] = true;
    }
    uint64_t now = p2p_now_ns();
    uint64_t next_ping = now + srv->ping_interval;
    uint64_t last_read = now;
    /* the handshake's deep crypto frames go back to the kernel once the
     * peer has lived P2P__TRIM_AFTER (a short-lived connection skips the
     * madvise and the page faults that would follow it) */
    uint64_t trim_at = now + P2P__TRIM_AFTER;
    bool readable = true;
    while (!pr->done) {
        if (p2p_thread_should_quit(io->self)) {
            fail(pr, P2P_DISC_QUITTING);
            break;
        }
        p2p__msg_disc_t dm;
        if (p2p_mailbox_try_pop(c->disc, &dm, sizeof dm) == 0) {
            fail(pr, dm.reason);
            break;
        }
        /* the read deadline runs per message, as geth's (a whole message
         * within read_timeout): bytes that trickle in without completing
         * one do not hold a peer slot.  While a callback holds a message
         * back (P2P_EFULL) we do not read, so the deadline waits and
         * starts again once the callback took it (geth sets it before each
         * read, after the previous message was handed over); a held ping
         * (the remote not reading our pongs) does not stop it. */
        uint64_t before = pr->msgs_read;
        bool app_held = held_by_app(io);
        peer_read(io, pr, readable);
        if (pr->msgs_read != before || app_held || held_by_app(io)) last_read = p2p_now_ns();
        if (pr->done) break;
        peer_write(io, pr);
        if (pr->done) break; /* a message could not be framed (no memory) */
        now = p2p_now_ns();
        if (now >= next_ping) {
            if (io_put_msg(io, P2P_MSG_PING, p2p_ping_payload, sizeof p2p_ping_payload)) {
                fail(pr, P2P_DISC_NETWORK_ERROR);
                break;
            }
            /* counted in pings_sent once written (msgs_written) */
            if (msg_framed(io, MK_PING)) P2P__STAT(srv, pings_sent);
            next_ping = now + srv->ping_interval;
        }
        if (io_flush(io)) {
            P2P__STAT(srv, net_errors);
            fail(pr, P2P_DISC_NETWORK_ERROR);
            break;
        }
        /* deadlines compared as "start + timeout <= now": wbatch_start may
         * be newer than now (io_flush ran after now was read) */
        if (last_read + srv->read_timeout <= now) {
            P2P__STAT(srv, read_timeouts);
            fail(pr, P2P_DISC_NETWORK_ERROR);
            break;
        }
        if (wpending(io) && io->wbatch_start + srv->write_timeout <= now) {
            P2P__STAT(srv, write_timeouts);
            fail(pr, P2P_DISC_NETWORK_ERROR);
            break;
        }
        /* Sleep unless work is ready: a decodable frame already buffered,
         * output queued with room to take it, or a held message. */
        uint64_t deadline = next_ping;
        if (last_read + srv->read_timeout < deadline) deadline = last_read + srv->read_timeout;
        if (wpending(io) && io->wbatch_start + srv->write_timeout < deadline)
            deadline = io->wbatch_start + srv->write_timeout;
        bool busy = (!io->held && io->rlen - io->roff >= p2p_rlpx_dec_need(&io->codec)) ||
                    (wpending(io) < P2P__WBUF_HIGH && p2p_mailbox_ready(c->out));
        if (trim_at && trim_at < deadline) deadline = trim_at;
        if (io->held && !wpending(io) && now + io->held_retry < deadline)
            deadline = now + io->held_retry; /* retry; p2p_peer_resume wakes us sooner */
        if (busy) deadline = 0;
        if (!busy) io_release_idle(io);
        short ev = (io->held ? 0 : POLLIN) | (wpending(io) ? POLLOUT : 0);
        struct pollfd pfd = {.fd = io->fd, .events = ev};
        int rc = p2p_waiter_poll(&io->self->waiter, &pfd, 1, deadline);
        if (rc && rc != P2P_ETIMEDOUT) {
            fail(pr, P2P_DISC_NETWORK_ERROR);
            break;
        }
        readable = (pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0 || busy;
        if (trim_at && p2p_now_ns() >= trim_at) {
            p2p_thread_trim_stack();
            trim_at = 0;
        }
        if (!readable && !io->held) rbuf_shrink(io);
    }
    for (size_t i = 0; i < c->nmatch; i++) {
        const p2p_protocol_t *p = &srv->protos[c->match[i].proto];
        if (pr->started[i] && p->on_stop) p->on_stop(c, p->ctx, pr->state[i], pr->reason);
    }
    /* Ending on our side (a requested disconnect, a subprotocol error,
     * stopping): what was sent before goes out before the Disconnect, as
     * geth's synchronous Send would have written it (io_disconnect
     * flushes both within the linger).  Queued messages a connection
     * ends without writing are counted in send_unsent (conn_run). */
    if (!pr->remote && pr->reason != P2P_DISC_NETWORK_ERROR && !io->eof) out_all(io, pr);
    if (!pr->remote) io_disconnect(io, pr->reason);
}

/* ---- thread body ---- */

static void count_hs_error(p2p_server_t *srv, int rc, bool rlpx)
{
    if (rc == P2P_ETIMEDOUT)
        P2P__STAT(srv, handshake_timeouts);
    else if (rlpx)
        P2P__STAT(srv, handshake_failed);
    else
        P2P__STAT(srv, hello_failed);
}

/* Returns our handshake slot to the listener.  Quietly while the listener
 * still has free slots (it drains `slots` whenever it wakes to accept);
 * with a wake-up when it sleeps for want of one: the seq_cst load of
 * ls_starved after our push's seq_cst claim pairs with the listener's
 * seq_cst store before its pre-sleep mailbox check, which loads the claims
 * seq_cst (either we see it starved, or it sees our slot, published or
 * in flight: core/mailbox.c). */
static int push_slot(p2p_server_t *srv, const p2p__msg_id_t *m)
{
    int rc = p2p__push_lazy(srv, srv->mb_slots, m, sizeof *m, false);
    if (rc == 0 && atomic_load_explicit(&srv->ls_starved, memory_order_seq_cst))
        p2p_mailbox_notify(srv->mb_slots);
    return rc;
}

/* Runs connection c on this thread, from its birth notice to its delpeer.
 * Returns true if the thread parked for another connection. */
static bool conn_run(p2p_thread_t *self, p2p_conn_t *c)
{
    p2p_server_t *srv = c->srv;
    io_t *io = calloc(1, sizeof *io);
    int result = P2P_DIAL_HANDSHAKE_FAILED;
    uint8_t reason = P2P_DISC_NETWORK_ERROR;
    bool remote = false, was_peer = false, slot_done = false;
    const bool configured = c->dialed && (c->flags & P2P_CONN_STATIC_DIALED);

    /* attach before anything can be pushed to us: nothing is, until we
     * have posted ourselves (conns, posthandshake) */
    if (p2p_mailbox_attach(c->cont, &self->waiter) || p2p_mailbox_attach(c->disc, &self->waiter))
        P2P_ERROR("Peer mailbox attach failed", "serial=%llu", (unsigned long long)c->serial);
    /* The birth notice only registers us for stop: it need not wake the run
     * loop, which drains `conns` on its next wake-up (at the latest for our
     * posthandshake or delpeer).  Once stop began, the run loop must see it
     * at once (it tells every connection to quit): the seq_cst load of
     * stopping after our push's seq_cst claim pairs with p2p_server_stop's
     * seq_cst store before it asks the run loop to quit, so either we see
     * stopping and wake it, or its pre-sleep check (a seq_cst load of the
     * claims) sees our notice. */
    p2p__msg_conn_t born = {.c = c, .peer = p2p_trace_peer(c->node.id)};
    if (p2p_mailbox_try_push_quiet(srv->mb_conns, &born, sizeof born) == 0) {
        if (atomic_load_explicit(&srv->stopping, memory_order_seq_cst))
            p2p_mailbox_notify(srv->mb_conns);
    } else {
        (void)p2p__push_must(srv, srv->mb_conns, &born, sizeof born);
    }
    if (!io) {
        /* the connection's state could not be created, as when its thread
         * cannot be (p2p__conn_spawn) */
        P2P__STAT(srv, conn_threads_failed);
        goto out;
    }
    io->c = c;
    io->srv = srv;
    io->self = self;
    io->fd = c->fd;

    if (!c->dialed) {
        c->remote_ip = c->node.ep.ip;
        c->remote_port = c->node.ep.tcp;
        if (srv->listen_local.family) {
            c->local_ip = srv->listen_local;
            c->local_port = srv->port;
        } else {
            struct sockaddr_storage ls;
            socklen_t ll = sizeof ls;
            if (getsockname(c->fd, (struct sockaddr *)&ls, &ll) == 0)
                P2P__IGNORE(
                    p2p_ip_from_sockaddr(&c->local_ip, &c->local_port, (struct sockaddr *)&ls));
        }
        /* TCP_NODELAY: inherited from the listening socket */
    } else {
        int rc = do_connect(io);
        if (rc) {
            result = P2P_DIAL_CONNECT_FAILED;
            if (rc != P2P_ECLOSED) P2P__STAT(srv, dial_connect_failed);
            goto out;
        }
        int one = 1;
        (void)setsockopt(io->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    bool posted = false;
    int rc = do_rlpx(io, &posted);
    if (!rc && !posted) {
        /* outbound: the checkpoint follows the handshake */
        if (post_handshake(io)) goto out;
        posted = true;
    }
    p2p__msg_cont_t reply = {0};
    /* an inbound connection admitted here is pending at the dialer until
     * the run loop tells it "added" or "inbound done" (at addpeer, or at
     * our delpeer if we end before) */
    if (posted) checkpoint_wait(io, &reply);
    if (rc) {
        if (rc != P2P_ECLOSED) count_hs_error(srv, rc, true);
        goto out;
    }
    if (!reply.ok) {
        reason = reply.reason;
        P2P__STAT(srv, rejected[reason]);
        goto out;
    }
    c->flags = reply.flags;
    rc = do_hello(io, &reason, &remote);
    if (rc == P2P_ECLOSED && !remote) reason = P2P_DISC_QUITTING; /* stopping */
    if (rc) {
        if (rc != P2P_ECLOSED || remote) count_hs_error(srv, rc, false);
        goto out;
    }
    p2p__msg_addpeer_t ap = {
        .c = c, .peer = p2p_trace_peer(c->node.id), .matched = (unsigned)c->nmatch};
    if (checkpoint(io, srv->mb_addpeer, &ap, sizeof ap, &reply)) goto out;
    if (!reply.ok) {
        reason = reply.reason;
        P2P__STAT(srv, rejected[reason]);
        goto out;
    }
    /* admitted: the run loop told the dialer (its "peer added" clears the
     * pending inbound entry); the handshake is over */
    was_peer = true;
    result = P2P_DIAL_OK;
    slot_done = true;
    if (c->dialed) {
        p2p__msg_id_t td = {.result = result};
        memcpy(td.id, c->node.id, 32);
        (void)p2p__push_must(srv, srv->mb_taskdone, &td, sizeof td);
    } else {
        p2p__msg_id_t sl = {0};
        (void)push_slot(srv, &sl);
    }
    {
        peer_run_t pr;
        memset(&pr, 0, sizeof pr);
        run_peer(io, &pr);
        reason = pr.reason;
        remote = pr.remote;
    }
out:
    if (!was_peer && !remote && io && reason != P2P_DISC_NETWORK_ERROR) io_disconnect(io, reason);
    /* A static node the operator named that does not become a peer says
     * why at the default level (rate-limited: it is dialled again and
     * again); dynamic dials that fail are routine and stay in the counters. */
    /* relaxed: only silences a log line during a stop */
    if (configured && !was_peer && !atomic_load_explicit(&srv->stopping, memory_order_relaxed))
        P2P_LOG_RL(3, 60000, P2P_LOG_INFO, "Static peer not connected",
                   "peer=%02x%02x%02x%02x why=\"%s\" by=%s", c->node.id[0], c->node.id[1],
                   c->node.id[2], c->node.id[3],
                   result == P2P_DIAL_CONNECT_FAILED ? "connect failed"
                                                     : p2p_disc_reason_str(reason),
                   result == P2P_DIAL_CONNECT_FAILED ? "network"
                   : remote                          ? "remote"
                   /* a timeout, EOF or reset in the handshakes: no one's decision */
                   : reason == P2P_DISC_NETWORK_ERROR ? "network"
                                                      : "local");
    if (!slot_done) {
        p2p__msg_id_t m = {.result = result};
        memcpy(m.id, c->node.id, 32);
        if (c->dialed)
            (void)p2p__push_must(srv, srv->mb_taskdone, &m, sizeof m);
        else
            (void)push_slot(srv, &m);
    }
    /* close the send gate, then wait for senders inside it (seq_cst:
     * Dekker pair with gate_enter's inflight increment + closed load) */
    atomic_store_explicit(&c->closed, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&c->inflight, memory_order_seq_cst)) sched_yield();
    p2p_mailbox_close(c->out);
    p2p_mailbox_close(c->disc);
    p2p__msg_out_t m;
    while (p2p_mailbox_try_pop(c->out, &m, sizeof m) == 0) {
        P2P__STAT(srv, send_unsent);
        free(m.data);
    }
    if (io) {
        /* framed, never written: the linger or the write deadline ran out,
         * or the remote went away */
        uint64_t unsent = msgs_unwritten(io);
        if (unsent) P2P__STAT_ADD(srv, send_unsent, unsent);
        free(io->mend);
        if (io->codec_ready) p2p_rlpx_codec_wipe(&io->codec);
        free(io->rbuf);
        free(io->wbuf);
        free(io->scratch);
        free(io);
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    /* c may be freed once delpeer is pushed: its mailboxes leave our
     * waiter first */
    p2p_mailbox_detach(c->cont);
    p2p_mailbox_detach(c->disc);
    bool parked = p2p__pool_park(srv, self);
    p2p__msg_delpeer_t dp = {.c = c,
                             .worker = parked ? NULL : p2p__worker_of(self),
                             .peer = p2p_trace_peer(c->node.id),
                             .was_peer = was_peer,
                             .remote_requested = remote,
                             .reason = reason};
    (void)p2p__push_must(srv, srv->mb_delpeer, &dp, sizeof dp);
    return parked;
}

/* The server whose connections this thread runs (a worker serves one
 * server for its whole life). */
static __thread const p2p_server_t *conn_thread_srv;

bool p2p__on_conn_thread(const p2p_server_t *srv)
{
    return conn_thread_srv == srv;
}

int p2p__conn_main(p2p_thread_t *self, void *arg)
{
    p2p_conn_t *c = arg;
    p2p_server_t *srv = c->srv; /* outlives its connection threads */
    conn_thread_srv = srv;
    /* a thread p2p__conn_spawn created, counted once it exists (a reused
     * one is counted in conn_threads_reused before its wake) */
    P2P__STAT(srv, conn_threads_spawned);
    while (conn_run(self, c)) {
        c = p2p__pool_wait(srv, self);
        if (!c) break;
    }
    return 0;
}
