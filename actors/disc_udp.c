/*
 * actors/disc_udp.c: the UDP reader thread of discovery (p2p-udp).
 *
 * Owns the read side of the discovery socket and its own replay cache;
 * shares nothing mutable with p2p-disc except the `packets` mailbox it
 * pushes into, its `answered` mailbox it pops (requests p2p-disc answered,
 * into its replay cache, p2p__disc_deliver, which lives here beside the
 * lookup) and the relaxed counters.  Loop: drain `answered`, recvmmsg
 * (MSG_DONTWAIT, P2P_DISCOVERY_RX_BATCH datagrams) until the socket is
 * empty, then sleep in poll on the socket and the thread's waiter (which a
 * quit request wakes).  Every datagram goes through p2p__disc_check,
 * cheapest test first:
 *   1. source address usable (family 4/6, port != 0)   rx_bad_source
 *   2. p2p_discv4_precheck: size, type, hash           rx_too_small,
 *      (no EC math)                                      rx_too_big,
 *                                                        rx_unknown_type,
 *                                                        rx_bad_hash
 *   3. a request (ping, findnode, ENR request) whose   rx_duplicate
 *      hash was answered within the last 20 s, from
 *      another address or 3 times already (the reader's
 *      replay cache: a replayed capture costs no
 *      recovery and gets no further answer; its
 *      sender's own repeats are answered, see
 *      p2p__disc_seen_t)
 *   4. p2p_discv4_open_at: body, expiration (past      rx_bad_packet,
 *      the wall clock, ENRResponse exempt), then the     rx_expired,
 *      sender recovery                                   rx_bad_sig
 *   5. not signed with our own key                     rx_from_self
 * then a quiet push into `packets` (full: rx_queue_full; the packet is
 * dropped and counted, the reader never blocks behind the table thread),
 * with one wake-up of p2p-disc per RX_NOTIFY_EVERY packets and at the end
 * of each receive batch.  A datagram the kernel dropped because the socket's
 * receive buffer was full (a flood faster than the readers) never reaches a
 * reader: the socket's drop count (SO_MEMINFO) is added to rx_kernel_drops
 * before each sleep, after each full batch and for each info snapshot
 * (p2p__disc_sync_drops), so every datagram is counted once, received or
 * dropped.
 *
 * rx_expired is the reader's own counter (the core's drop_expired belongs
 * to p2p-disc); the core keeps its check, for a packet that expires while
 * queued.
 *
 * A request's hash enters p2p-disc's replay cache (d->seen) once the core
 * answered it (p2p__disc_deliver), and every reader's through its
 * `answered` mailbox: only verified packets, so unsigned junk, which anyone
 * can make at no cost, cannot push real entries out; only answered ones, so
 * a findnode dropped before the bond existed may come again byte for byte
 * (a client that asks again within the same second, deterministic
 * signature).  p2p-disc looks up its own before handling, so copies of a
 * replay queued before the first was handled, or verified by a reader
 * that has not drained `answered` yet (or had no room in it:
 * rx_seen_full), are not answered either.
 * Replies are left out: they are answered by nothing,
 * a pong or ENR response must echo the token of a pending request, and two
 * Neighbors answers of a node to two findnodes of ours within one second
 * may legitimately be the same bytes (same nodes, same expiration second,
 * deterministic signature).  The table is bounded (P2P__DISC_SEEN_SLOTS, disc_int.h):
 * under a flood of distinct verified packets the oldest entries go first,
 * so a replay may then cost a recovery again, never memory.
 *
 * Several readers may share the socket (config.readers): the kernel hands
 * each datagram to one of them, and the recoveries run in parallel; each
 * gets every answered request in its `answered` (a replay may reach any of
 * them).
 */
#include <errno.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <string.h>

#include "actors/disc_int.h"
#include "core/log.h"

/* Verified packets are pushed quietly and p2p-disc is woken once per
 * RX_NOTIFY_EVERY of them (and at the end of each receive batch): under a
 * flood the table thread wakes once per few packets, not once per packet,
 * while a packet waits at most RX_NOTIFY_EVERY - 1 verifications. */
#define RX_NOTIFY_EVERY 4

void p2p__disc_seen_init(p2p__disc_seen_t *seen)
{
    memset(seen->e, 0, sizeof seen->e);
}

static unsigned seen_home(const uint8_t hash[16])
{
    /* the hash is keccak output, but a sender picks it by choosing the
     * packet: any bytes index as well as others */
    uint32_t h = (uint32_t)hash[0] | (uint32_t)hash[1] << 8 | (uint32_t)hash[2] << 16 |
                 (uint32_t)hash[3] << 24;
    return h & (P2P__DISC_SEEN_SLOTS - 1);
}

/* An entry stamped after now (a reader's `now` taken before it drained
 * `answered`) is live. */
static bool seen_live(uint64_t ns, uint64_t now)
{
    return ns != 0 && (ns >= now || now - ns < P2P__DISC_SEEN_WINDOW_NS);
}

/* The live entry of hash (its first 16 bytes), or -1. */
static int seen_find(const p2p__disc_seen_t *seen, const uint8_t hash[16], uint64_t now)
{
    unsigned home = seen_home(hash);
    for (unsigned i = 0; i < P2P__DISC_SEEN_PROBE; i++) {
        unsigned k = (home + i) & (P2P__DISC_SEEN_SLOTS - 1);
        if (seen_live(seen->e[k].ns, now) && memcmp(seen->e[k].hash, hash, 16) == 0) return (int)k;
    }
    return -1;
}

/* True if entry k may answer one more copy from ip:port: the address it
 * was answered at, fewer than P2P__DISC_SEEN_ANSWERS answers so far. */
static bool seen_may_answer(const p2p__disc_seen_t *seen, int k, const p2p_ip_t *ip, uint16_t port)
{
    return seen->e[k].answers < P2P__DISC_SEEN_ANSWERS && seen->e[k].port == port &&
           p2p_ip_equal(&seen->e[k].ip, ip);
}

/* True if a copy of request hash from ip:port is a replay: answered within
 * the window, and from another address or P2P__DISC_SEEN_ANSWERS times. */
static bool seen_replay(const p2p__disc_seen_t *seen, const uint8_t hash[16], const p2p_ip_t *ip,
                        uint16_t port, uint64_t now)
{
    int k = seen_find(seen, hash, now);
    return k >= 0 && !seen_may_answer(seen, k, ip, port);
}

/* Records an answer to request hash (its first 16 bytes) from ip:port at
 * ns (not after now): one more answer of its live entry, else a new entry
 * in a free or aged slot of its probe window, else in the oldest one. */
static void seen_add(p2p__disc_seen_t *seen, const uint8_t hash[16], uint64_t ns,
                     const p2p_ip_t *ip, uint16_t port, uint64_t now)
{
    int live = seen_find(seen, hash, now);
    if (live >= 0) {
        /* a copy from another address raced past a reader's check and was
         * answered: the entry stays with the first address */
        if (seen_may_answer(seen, live, ip, port)) seen->e[live].answers++;
        return;
    }
    unsigned home = seen_home(hash), pick = home;
    for (unsigned i = 0; i < P2P__DISC_SEEN_PROBE; i++) {
        unsigned k = (home + i) & (P2P__DISC_SEEN_SLOTS - 1);
        if (!seen_live(seen->e[k].ns, now)) {
            pick = k;
            break;
        }
        if (seen->e[k].ns < seen->e[pick].ns) pick = k;
    }
    memcpy(seen->e[pick].hash, hash, 16);
    seen->e[pick].ns = ns ? ns : 1;
    seen->e[pick].ip = *ip;
    seen->e[pick].port = port;
    seen->e[pick].answers = 1;
}

void p2p__disc_sync_drops(struct p2p_discovery *d)
{
    uint32_t mi[SK_MEMINFO_VARS];
    socklen_t len = sizeof mi;
    if (getsockopt(d->fd, SOL_SOCKET, SO_MEMINFO, mi, &len) != 0 ||
        len < (SK_MEMINFO_DROPS + 1) * sizeof mi[0])
        return;
    uint32_t now = mi[SK_MEMINFO_DROPS];
    uint32_t old = atomic_load_explicit(&d->kdrops_seen, memory_order_relaxed);
    /* a 32-bit count that may wrap: only a forward step is added, once
     * (two threads reading different values: the newer one wins) */
    while (now != old && (uint32_t)(now - old) < 0x80000000u) {
        if (atomic_compare_exchange_weak_explicit(&d->kdrops_seen, &old, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            P2P__DISC_CTR_ADD(d, rx_kernel_drops, (uint32_t)(now - old));
            break;
        }
    }
}

static bool is_request(uint8_t type)
{
    return type == P2P_DISCV4_PING || type == P2P_DISCV4_FINDNODE || type == P2P_DISCV4_ENRREQUEST;
}

int p2p__disc_deliver(struct p2p_discovery *d, const p2p__disc_pkt_msg_t *m, p2p_disc_time_t now)
{
    bool request = is_request(m->pkt.type);
    if (request && seen_replay(&d->seen, m->pkt.hash, &m->src.ip, m->src.udp, now.ns)) {
        P2P__DISC_CTR(d, rx_duplicate);
        return P2P_EEXIST;
    }
    int rc = p2p_disc_handle(d->core, &m->pkt, &m->src, now);
    p2p__disc_apply_record(d); /* a new record decided during the handling */
    if (request && rc == 0) {
        seen_add(&d->seen, m->pkt.hash, now.ns, &m->src.ip, m->src.udp, now.ns);
        p2p__disc_seen_msg_t n = {.ns = now.ns, .ip = m->src.ip, .port = m->src.udp};
        memcpy(n.hash, m->pkt.hash, sizeof n.hash);
        /* quiet: a reader does not sleep on `answered`, it drains it
         * before each receive batch */
        for (unsigned i = 0; i < d->nreaders; i++)
            if (p2p_mailbox_try_push_quiet(d->readers[i]->answered, &n, sizeof n) != 0)
                P2P__DISC_CTR(d, rx_seen_full);
    }
    return rc;
}

int p2p__disc_check(struct p2p_discovery *d, const p2p__disc_seen_t *seen, p2p__disc_pkt_msg_t *out,
                    const uint8_t *buf, size_t len)
{
    P2P__DISC_CTR(d, rx_datagrams);
    P2P__DISC_CTR_ADD(d, rx_bytes, len);
    if ((out->src.ip.family != 4 && out->src.ip.family != 6) || out->src.udp == 0) {
        P2P__DISC_CTR(d, rx_bad_source);
        return P2P_EINVAL;
    }
    p2p_discv4_head_t h;
    int rc = p2p_discv4_precheck(&h, buf, len);
    switch (rc) {
    case 0:
        break;
    case P2P_ETOOBIG:
        P2P__DISC_CTR(d, rx_too_big);
        return rc;
    case P2P_EUNSUPPORTED:
        P2P__DISC_CTR(d, rx_unknown_type);
        return rc;
    case P2P_EBADHASH:
        P2P__DISC_CTR(d, rx_bad_hash);
        return rc;
    default:
        P2P__DISC_CTR(d, rx_too_small);
        return rc;
    }
    if (is_request(h.type) &&
        seen_replay(seen, h.hash, &out->src.ip, out->src.udp, p2p_clock_now(d->clock))) {
        P2P__DISC_CTR(d, rx_duplicate);
        return P2P_EEXIST;
    }
    rc = p2p_discv4_open_at(&out->pkt, &h, buf, len, p2p_clock_wall_ms(d->clock) / 1000);
    if (rc == P2P_EEXPIRED) {
        P2P__DISC_CTR(d, rx_expired);
        return rc;
    }
    if (rc == P2P_EBADSIG) {
        P2P__DISC_CTR(d, rx_bad_sig);
        return rc;
    }
    if (rc) {
        P2P__DISC_CTR(d, rx_bad_packet);
        return rc;
    }
    if (memcmp(out->pkt.sender_id, d->started.id, 32) == 0) {
        P2P__DISC_CTR(d, rx_from_self);
        return P2P_EPROTO;
    }
    return 0;
}

static void reader_batch(p2p__disc_reader_t *r, unsigned n)
{
    struct p2p_discovery *d = r->d;
    unsigned quiet = 0; /* verified packets pushed since the last notify */
    p2p__disc_seen_msg_t ans[64];
    size_t na;
    uint64_t now = p2p_clock_now(d->clock);
    while ((na = p2p_mailbox_pop_batch(r->answered, ans, sizeof ans)) > 0)
        for (size_t i = 0; i < na; i++)
            seen_add(&r->seen, ans[i].hash, ans[i].ns, &ans[i].ip, ans[i].port, now);
    for (unsigned i = 0; i < n; i++) {
        p2p__disc_pkt_msg_t *out = &r->out;
        memset(&out->src, 0, sizeof out->src);
        if (p2p_ip_from_sockaddr(&out->src.ip, &out->src.udp,
                                 (const struct sockaddr *)&r->from[i]) != 0)
            out->src.ip.family = 0;
        /* msg_len is the datagram's whole size (MSG_TRUNC): rx_bytes
         * counts what was received, the check sees what the buffer holds
         * (one byte over the limit: too big) */
        size_t len = r->m[i].msg_len;
        if (len > sizeof r->buf[i]) {
            P2P__DISC_CTR_ADD(d, rx_bytes, len - sizeof r->buf[i]);
            len = sizeof r->buf[i];
        }
        if (p2p__disc_check(d, &r->seen, out, r->buf[i], len) != 0) continue;
        int rc = p2p_mailbox_try_push_quiet(d->packets, out, sizeof *out);
        if (rc == 0) {
            P2P__DISC_CTR(d, rx_verified);
            if (++quiet == RX_NOTIFY_EVERY) {
                p2p_mailbox_notify(d->packets);
                quiet = 0;
            }
        } else {
            P2P__DISC_CTR(d, rx_queue_full);
            P2P_LOG_RL(1, 10000, P2P_LOG_WARN, "Discovery packet queue full", "err=%s",
                       p2p_errname(rc));
        }
    }
    if (quiet) p2p_mailbox_notify(d->packets);
}

int p2p__disc_reader_run(p2p_thread_t *self, void *arg)
{
    p2p__disc_reader_t *r = arg;
    struct p2p_discovery *d = r->d;
    for (unsigned i = 0; i < P2P_DISCOVERY_RX_BATCH; i++) {
        r->iov[i].iov_base = r->buf[i];
        r->iov[i].iov_len = sizeof r->buf[i];
    }
    while (!p2p_thread_should_quit(self)) {
        for (unsigned i = 0; i < P2P_DISCOVERY_RX_BATCH; i++) {
            memset(&r->m[i].msg_hdr, 0, sizeof r->m[i].msg_hdr);
            r->m[i].msg_hdr.msg_iov = &r->iov[i];
            r->m[i].msg_hdr.msg_iovlen = 1;
            r->m[i].msg_hdr.msg_name = &r->from[i];
            r->m[i].msg_hdr.msg_namelen = sizeof r->from[i];
        }
        int n = recvmmsg(d->fd, r->m, P2P_DISCOVERY_RX_BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (n > 0) {
            reader_batch(r, (unsigned)n);
            /* a full batch: a flood may be overflowing the socket */
            if (n == P2P_DISCOVERY_RX_BATCH) p2p__disc_sync_drops(d);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            P2P__DISC_CTR(d, rx_errors);
            P2P_LOG_RL(1, 10000, P2P_LOG_WARN, "Discovery UDP receive failed", "err=%s",
                       strerror(errno));
        }
        p2p__disc_sync_drops(d);
        struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
        (void)p2p_waiter_poll(&self->waiter, &pfd, 1, P2P_DEADLINE_NEVER);
    }
    return 0;
}
