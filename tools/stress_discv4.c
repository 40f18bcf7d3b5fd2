/*
 * tools/stress_discv4.c: `devp2p stress --mode discv4`: ping and findnode
 * floods against a node's discovery v4 UDP port.
 *
 * --peers keys, each with its own non-blocking UDP socket (bound to
 * 127.0.0.(1 + i % nsources) when the target is on loopback) in one epoll
 * set.  Every key's requests are signed before the clock starts: D4_PINGS
 * pings (distinct expirations, so distinct hashes) and D4_FINDS findnodes
 * (random targets), cycled, so the flood costs the harness a sendto, a recv
 * and a Keccak (the hash check) per packet and no EC math.  A target drops
 * an exact replay of a packet it verified within the last 20 s (devp2p-c:
 * rx_duplicate), so a slot sent less than D4_REUSE_NS ago is signed again
 * first (a new expiration, or a new findnode target): a run that cycles its
 * slots that fast pays one signature per request, as real peers do.  The target's
 * own pings (its ping-back on first contact, revalidation later) are
 * answered with a signed pong, which is also how a key bonds: the target
 * answers findnode only from keys that answered its ping within 24 h.  Keys
 * bond --concurrency at a time (a bonding ping, retried), but a key waiting
 * for its turn floods pings too, and the pong to the ping-back its first
 * one drew already bonds it.
 *
 * The target's identity: each key checks the signature of the replies it
 * gets (one recovery each) until one is signed by the --target key; a
 * reply signed by another key (a wrong key in --target, or another node on
 * that port) is a failure of the request it answers ("... signed by
 * another key"), not a success, and a ping from another key is not
 * answered.  A key whose sender is confirmed checks only the hash, so the
 * EC cost is one recovery per key.
 *
 * Matching: a pong carries the ping's hash, compared with the key's
 * outstanding pings (the reply arrives on that key's socket).  A Neighbors
 * packet carries no token: each key has at most one findnode outstanding;
 * the first Neighbors packet answers it; a full packet (12 entries) may be
 * followed by a second, so the key waits D4_MORE_NS (or for that packet)
 * before its next findnode.  A request unanswered after D4_TIMEOUT_NS is a
 * failure ("ping: no pong", "findnode: no neighbors").
 *
 * Load: closed loop (--window pings outstanding per key, one findnode), or
 * --rate requests per second in all (still bounded by the windows).  Keys
 * bond --concurrency at a time before sending findnodes.
 *
 * Main thread only; the keys are wiped before returning.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/stress.h"
#include "wire/discv4.h"
#include "wire/rlp.h"

#define D4_PINGS 32
#define D4_FINDS 4
#define D4_PKT 256                      /* a signed ping or findnode fits */
#define D4_REUSE_NS (25 * P2P_NS_PER_S) /* older than the targets' 20 s replay window */
#define D4_TIMEOUT_NS (2 * P2P_NS_PER_S)
#define D4_BOND_TIMEOUT_NS (1 * P2P_NS_PER_S)
#define D4_BOND_TRIES 3
#define D4_SETTLE_NS (30 * P2P_NS_PER_MS)
#define D4_MORE_NS (50 * P2P_NS_PER_MS)
#define D4_EVENTS 256
#define D4_RECV_BATCH 64

enum bstate { B_IDLE, B_BONDING, B_SETTLE, B_READY, B_FAILED };

struct d4key {
    int fd;
    uint8_t priv[32];
    p2p_endpoint_t self;
    enum bstate bst;
    uint8_t bond_tries;
    bool ponged;            /* the target answered one of this key's pings */
    uint64_t bond_deadline; /* B_BONDING: retry; B_SETTLE: ready */
    uint8_t ping[D4_PINGS][D4_PKT];
    uint16_t ping_len[D4_PINGS];
    uint64_t ping_sent[D4_PINGS]; /* 0: not outstanding */
    uint64_t ping_used[D4_PINGS]; /* last sent (0: never) */
    unsigned next_ping, outstanding;
    uint8_t find[D4_FINDS][D4_PKT];
    uint16_t find_len[D4_FINDS];
    uint64_t find_used[D4_FINDS];
    unsigned next_find;
    uint64_t exp;        /* expiration of the first pre-signed ping */
    uint64_t resigned;   /* slots signed again (distinct expirations) */
    uint64_t find_sent;  /* 0: none outstanding */
    uint64_t more_until; /* a full Neighbors packet arrived: maybe another */
    bool want_find;      /* alternation when both kinds run */
    bool verified;       /* a reply signed by the target's key came */
};

struct d4 {
    const stress_d4_config_t *cfg;
    stress_stats_t *st;
    struct d4key *keys;
    unsigned nkeys, bonding, cursor;
    int ep;
    struct sockaddr_storage to;
    socklen_t tolen;
    uint64_t t0, sent_total;
    uint64_t sec_ok, sec_msgs; /* successes (progress line) and replies of the current second */
};

/* ---- packets ------------------------------------------------------------- */

static int sign_into(uint8_t *dst, uint16_t *dlen, const p2p_discv4_packet_t *p,
                     const uint8_t priv[32])
{
    uint8_t out[P2P_DISCV4_MAX_SIZE];
    size_t len;
    int rc = p2p_discv4_encode(out, &len, NULL, p, priv);
    if (rc) return rc;
    if (len > D4_PKT) return P2P_ETOOBIG;
    memcpy(dst, out, len);
    *dlen = (uint16_t)len;
    return 0;
}

static int sign_ping(const struct d4 *d, struct d4key *k, unsigned s, uint64_t exp)
{
    const stress_d4_config_t *cfg = d->cfg;
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.expiration = exp;
    p.u.ping.version = P2P_DISCV4_PING_VERSION;
    p.u.ping.from = k->self;
    p.u.ping.to.ip = cfg->target.ep.ip;
    p.u.ping.to.udp = cfg->target.ep.udp;
    p.u.ping.to.tcp = cfg->target.ep.tcp;
    return sign_into(k->ping[s], &k->ping_len[s], &p, k->priv);
}

static int sign_find(struct d4key *k, unsigned s, uint64_t exp)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_FINDNODE;
    p.expiration = exp;
    if (p2p_random(p.u.findnode.target, 64) != 0) return P2P_ECRYPTO;
    return sign_into(k->find[s], &k->find_len[s], &p, k->priv);
}

/* Makes slot s of k (a ping, or a findnode when find) safe to send at now:
 * signed again if it went out less than D4_REUSE_NS ago (the target would
 * drop the same bytes as a replay).  Returns false (counted) if signing
 * failed. */
static bool slot_fresh(struct d4 *d, struct d4key *k, bool find, unsigned s, uint64_t now)
{
    uint64_t used = find ? k->find_used[s] : k->ping_used[s];
    if (used == 0 || now - used >= D4_REUSE_NS) return true;
    uint64_t exp = k->exp + D4_PINGS + k->resigned++;
    int rc = find ? sign_find(k, s, exp) : sign_ping(d, k, s, exp);
    if (rc == 0) return true;
    d->st->attempts++; /* a request that failed: failures <= attempts */
    stress_fail(d->st, "sign: %s", p2p_strerror(rc));
    return false;
}

static int key_setup(struct d4 *d, struct d4key *k, unsigned i, uint64_t exp)
{
    const stress_d4_config_t *cfg = d->cfg;
    do {
        if (p2p_secp_keygen(k->priv) != 0) return P2P_ECRYPTO;
    } while (p2p_secp_privkey_check(k->priv) != 0);
    k->fd = socket(cfg->target.ep.ip.family == 6 ? AF_INET6 : AF_INET,
                   SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) return P2P_ESYS;
    p2p_ip_t src = cfg->target.ep.ip.family == 6 ? (p2p_ip_t){.family = 6} : p2p_ip4(0, 0, 0, 0);
    if (cfg->nsources > 1) src = p2p_ip4(127, 0, 0, (uint8_t)(1 + i % cfg->nsources));
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &src, 0);
    if (bind(k->fd, (struct sockaddr *)&ss, sl) != 0) return P2P_ESYS;
    int buf = 256 * 1024;
    (void)setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    sl = sizeof ss;
    uint16_t port = 0;
    if (getsockname(k->fd, (struct sockaddr *)&ss, &sl) != 0 ||
        p2p_ip_from_sockaddr(&src, &port, (struct sockaddr *)&ss) != 0)
        return P2P_ESYS;
    k->self.ip = cfg->nsources > 1 ? src : cfg->target.ep.ip; /* loopback: what it sees */
    k->self.udp = port;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(d->ep, EPOLL_CTL_ADD, k->fd, &ev) != 0) return P2P_ESYS;
    k->exp = exp;
    for (unsigned s = 0; s < D4_PINGS; s++) {
        int rc = sign_ping(d, k, s, exp + s);
        if (rc) return rc;
    }
    for (unsigned s = 0; s < D4_FINDS; s++) {
        int rc = sign_find(k, s, exp);
        if (rc) return rc;
    }
    return 0;
}

static bool send_pkt(struct d4 *d, struct d4key *k, const uint8_t *p, size_t len)
{
    ssize_t n = sendto(k->fd, p, len, 0, (struct sockaddr *)&d->to, d->tolen);
    if (n == (ssize_t)len) return true;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) return false;
    d->st->attempts++; /* a request that failed: failures <= attempts */
    stress_fail(d->st, "sendto: %s", n < 0 ? strerror(errno) : "short write");
    return false;
}

/* Sends k's next ping if its window allows.  Returns true if sent. */
static bool send_ping(struct d4 *d, struct d4key *k, uint64_t now)
{
    unsigned s = k->next_ping % D4_PINGS;
    if (k->outstanding >= d->cfg->window || k->ping_sent[s]) return false;
    if (!slot_fresh(d, k, false, s, now)) return false;
    if (!send_pkt(d, k, k->ping[s], k->ping_len[s])) return false;
    k->ping_sent[s] = k->ping_used[s] = now;
    k->next_ping++;
    k->outstanding++;
    d->st->pings_sent++;
    d->st->msgs_sent++;
    d->st->attempts++;
    d->sent_total++;
    return true;
}

static bool send_find(struct d4 *d, struct d4key *k, uint64_t now)
{
    if (k->bst != B_READY || k->find_sent || now < k->more_until) return false;
    unsigned s = k->next_find % D4_FINDS;
    if (!slot_fresh(d, k, true, s, now)) return false;
    if (!send_pkt(d, k, k->find[s], k->find_len[s])) return false;
    k->next_find++;
    k->find_used[s] = now;
    k->find_sent = now;
    k->more_until = 0;
    d->st->findnodes_sent++;
    d->st->msgs_sent++;
    d->st->attempts++;
    d->sent_total++;
    return true;
}

/* One request from k (alternating kinds when both run).  Returns true if
 * one was sent. */
static bool send_one(struct d4 *d, struct d4key *k, uint64_t now)
{
    const stress_d4_config_t *cfg = d->cfg;
    if (cfg->findnodes && (!cfg->pings || k->want_find) && send_find(d, k, now)) {
        k->want_find = false;
        return true;
    }
    if (cfg->pings && send_ping(d, k, now)) {
        k->want_find = true;
        return true;
    }
    if (cfg->findnodes && cfg->pings && send_find(d, k, now)) return true;
    return false;
}

/* Answers the target's ping (hash = its first 32 bytes) with a signed pong
 * from k. */
static void answer_ping(struct d4 *d, struct d4key *k, const uint8_t *pkt, uint64_t now)
{
    d->st->pings_recv++;
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PONG;
    p.expiration = p2p_wall_ms() / 1000 + P2P_DISCV4_EXPIRATION;
    p.u.pong.to = d->cfg->target.ep;
    memcpy(p.u.pong.reply_tok, pkt, 32);
    uint8_t out[P2P_DISCV4_MAX_SIZE];
    size_t len;
    if (p2p_discv4_encode(out, &len, NULL, &p, k->priv) != 0) {
        stress_fail(d->st, "cannot sign a pong");
        return;
    }
    if (!send_pkt(d, k, out, len)) return;
    d->st->pongs_sent++;
    /* Our pong bonds the key, whichever of our pings drew the target's: a
     * key waiting for a bonding slot floods pings too, and its first one
     * draws the ping-back.  The target then counts the key as bonded and
     * sends no second ping-back, so the key must not wait for one. */
    if (k->bst == B_BONDING || k->bst == B_IDLE) {
        if (k->bst == B_BONDING) d->bonding--;
        k->bst = B_SETTLE;
        k->bond_deadline = now + D4_SETTLE_NS;
    }
}

/* A pong (foreign: signed by another key than the target's). */
static void on_pong(struct d4 *d, struct d4key *k, const uint8_t *body, size_t blen, uint64_t now,
                    bool foreign)
{
    p2p_rlp_t c, l;
    p2p_rlp_init(&c, body, blen);
    uint8_t tok[32];
    if (p2p_rlp_enter(&c, &l) != 0 || p2p_rlp_skip(&l) != 0 || p2p_rlp_fixed(&l, tok, 32) != 0) {
        stress_fail(d->st, "pong: malformed");
        return;
    }
    for (unsigned s = 0; s < D4_PINGS; s++) {
        if (!k->ping_sent[s] || memcmp(k->ping[s], tok, 32) != 0) continue;
        if (foreign) { /* answered, but not by the target: the ping failed */
            k->ping_sent[s] = 0;
            k->outstanding--;
            stress_fail(d->st, "ping: pong signed by another key");
            return;
        }
        stress_lat_add(&d->st->pong_lat, (now - k->ping_sent[s]) / P2P_NS_PER_US);
        k->ping_sent[s] = 0;
        k->outstanding--;
        k->ponged = true;
        d->st->pongs_recv++;
        d->st->successes++;
        d->sec_ok++;
        return;
    }
    d->st->unmatched++; /* answered after its timeout, or a duplicate */
}

/* A Neighbors packet (foreign: signed by another key than the target's). */
static void on_neighbors(struct d4 *d, struct d4key *k, const uint8_t *body, size_t blen,
                         uint64_t now, bool foreign)
{
    p2p_rlp_t c, l, nodes;
    p2p_rlp_init(&c, body, blen);
    unsigned n = 0;
    if (p2p_rlp_enter(&c, &l) != 0 || p2p_rlp_enter(&l, &nodes) != 0) {
        stress_fail(d->st, "neighbors: malformed");
        return;
    }
    while (!p2p_rlp_done(&nodes) && p2p_rlp_skip(&nodes) == 0) n++;
    d->st->neighbors_pkts++;
    if (foreign && k->find_sent) { /* answered, but not by the target: the findnode failed */
        k->find_sent = 0;
        stress_fail(d->st, "findnode: neighbors signed by another key");
    } else if (foreign) {
        d->st->unmatched++;
    } else if (k->find_sent) {
        stress_lat_add(&d->st->nb_lat, (now - k->find_sent) / P2P_NS_PER_US);
        k->find_sent = 0;
        d->st->neighbors_replies++;
        d->st->successes++;
        d->sec_ok++;
        /* a full packet may have a continuation */
        k->more_until = n >= P2P_DISCV4_MAX_NEIGHBORS ? now + D4_MORE_NS : 0;
    } else if (k->more_until) {
        k->more_until = 0; /* the continuation */
    } else {
        d->st->unmatched++;
    }
}

static void on_readable(struct d4 *d, struct d4key *k)
{
    uint8_t buf[P2P_DISCV4_MAX_SIZE + 1];
    for (int i = 0; i < D4_RECV_BATCH; i++) {
        ssize_t n = recv(k->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                stress_fail(d->st, "recv: %s", strerror(errno));
            }
            return;
        }
        uint64_t now = p2p_now_ns();
        p2p_discv4_head_t h;
        if (p2p_discv4_precheck(&h, buf, (size_t)n) != 0) {
            stress_fail(d->st, "invalid packet from the target");
            continue;
        }
        /* until the target's key signed a reply to k, each reply's
         * signer is recovered and compared with it */
        bool foreign = false;
        if (!k->verified) {
            static p2p_discv4_packet_t p;
            if (p2p_discv4_open(&p, &h, buf, (size_t)n) != 0) {
                stress_fail(d->st, "invalid packet from the target");
                continue;
            }
            foreign = memcmp(p.sender, d->cfg->target.pubkey, 64) != 0;
            k->verified = !foreign;
        }
        d->st->msgs_recv++;
        d->sec_msgs++;
        const uint8_t *body = buf + P2P_DISCV4_MIN_SIZE;
        size_t blen = (size_t)n - P2P_DISCV4_MIN_SIZE;
        switch (h.type) {
        case P2P_DISCV4_PONG:
            on_pong(d, k, body, blen, now, foreign);
            break;
        case P2P_DISCV4_NEIGHBORS:
            on_neighbors(d, k, body, blen, now, foreign);
            break;
        case P2P_DISCV4_PING:
            if (foreign) /* not the target's: answering would bond with another node */
                d->st->unmatched++;
            else
                answer_ping(d, k, buf, now);
            break;
        default:
            d->st->unmatched++; /* ENR request/response: not ours to answer here */
            break;
        }
    }
}

/* Whether --rate allows one more request now (every request counts: the
 * bonding pings too). */
static bool rate_allows(const struct d4 *d, uint64_t now)
{
    return d->cfg->rate <= 0 ||
           (double)d->sent_total < d->cfg->rate * (double)(now - d->t0) / 1e9 + 1;
}

/* Timeouts, bonding.  Called every few milliseconds. */
static void tick(struct d4 *d, uint64_t now, bool running)
{
    for (unsigned i = 0; i < d->nkeys; i++) {
        struct d4key *k = &d->keys[i];
        for (unsigned s = 0; s < D4_PINGS && k->outstanding; s++) {
            if (k->ping_sent[s] && now - k->ping_sent[s] >= D4_TIMEOUT_NS) {
                k->ping_sent[s] = 0;
                k->outstanding--;
                stress_fail(d->st, "ping: no pong within %.0f s", D4_TIMEOUT_NS / 1e9);
            }
        }
        if (k->find_sent && now - k->find_sent >= D4_TIMEOUT_NS) {
            k->find_sent = 0;
            stress_fail(d->st, "findnode: no neighbors within %.0f s", D4_TIMEOUT_NS / 1e9);
        }
        if (!d->cfg->findnodes) continue;
        if (k->bst == B_SETTLE && now >= k->bond_deadline) {
            k->bst = B_READY;
            d->st->bonded++;
        } else if (k->bst == B_BONDING && now >= k->bond_deadline) {
            d->bonding--;
            k->bst = k->bond_tries >= D4_BOND_TRIES ? B_FAILED : B_IDLE;
            /* a key whose pings all went unanswered has its failures
             * counted already (the ping timeouts): one that was answered
             * but never pinged back is the failure to bond */
            if (k->bst == B_FAILED) {
                d->st->bond_failed++;
                if (k->ponged)
                    stress_fail(d->st, "bond: no ping from the target after %d pings",
                                D4_BOND_TRIES);
            }
        }
        if (running && k->bst == B_IDLE && d->bonding < d->cfg->concurrency &&
            rate_allows(d, now)) {
            /* a ping makes the target ping back; our pong to that bonds */
            unsigned s = k->next_ping % D4_PINGS;
            if (k->ping_sent[s] || !slot_fresh(d, k, false, s, now)) continue;
            if (!send_pkt(d, k, k->ping[s], k->ping_len[s])) continue;
            k->ping_sent[s] = k->ping_used[s] = now;
            k->next_ping++;
            k->outstanding++;
            d->st->pings_sent++;
            d->st->msgs_sent++;
            d->st->attempts++;
            d->sent_total++;
            k->bst = B_BONDING;
            k->bond_tries++;
            k->bond_deadline = now + D4_BOND_TIMEOUT_NS;
            d->bonding++;
        }
    }
}

/* Sends what the rate and the windows allow (bounded work per call). */
static void pump(struct d4 *d, uint64_t now)
{
    unsigned idle = 0, budget = 4096;
    while (budget-- && rate_allows(d, now) && idle < d->nkeys) {
        struct d4key *k = &d->keys[d->cursor];
        d->cursor = (d->cursor + 1) % d->nkeys;
        if (send_one(d, k, now))
            idle = 0;
        else
            idle++;
    }
}

static unsigned outstanding(const struct d4 *d)
{
    unsigned n = 0;
    for (unsigned i = 0; i < d->nkeys; i++) n += d->keys[i].outstanding + !!d->keys[i].find_sent;
    return n;
}

int stress_discv4_run(const stress_d4_config_t *cfg, stress_stats_t *st, bool tty, char *err,
                      size_t errlen)
{
    struct d4 d;
    memset(&d, 0, sizeof d);
    d.cfg = cfg;
    d.st = st;
    d.nkeys = cfg->peers;
    d.tolen = p2p_ip_to_sockaddr(&d.to, &cfg->target.ep.ip, cfg->target.ep.udp);
    d.keys = calloc(d.nkeys, sizeof *d.keys);
    d.ep = epoll_create1(EPOLL_CLOEXEC);
    int rc = 0;
    if (!d.keys) {
        snprintf(err, errlen, "out of memory: %u keys need %zu MiB", d.nkeys,
                 (size_t)d.nkeys * sizeof *d.keys >> 20);
        rc = -1;
    } else if (d.ep < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        rc = -1;
    }
    for (unsigned i = 0; d.keys && i < d.nkeys; i++) d.keys[i].fd = -1;
    uint64_t exp = p2p_wall_ms() / 1000 + cfg->duration_ns / P2P_NS_PER_S + 120;
    for (unsigned i = 0; rc == 0 && i < d.nkeys; i++) {
        /* the pre-signing costs about 1 ms a key (100,000 keys: more than
         * a minute): a stop (SIGINT, SIGTERM) during it ends the setup,
         * and the run with it, at once */
        if (stress_stop) {
            fprintf(stderr, "stress: interrupted while setting up the keys (%u of %u ready)\n", i,
                    d.nkeys);
            d.nkeys = i; /* the rest have no socket (fd -1) and no key */
            break;
        }
        int krc = key_setup(&d, &d.keys[i], i, exp);
        if (krc) {
            snprintf(err, errlen, "key %u: %s%s%s", i, p2p_strerror(krc),
                     krc == P2P_ESYS ? ": " : "", krc == P2P_ESYS ? strerror(errno) : "");
            rc = -1;
        }
    }
    if (rc == 0) {
        struct epoll_event evs[D4_EVENTS];
        d.t0 = p2p_now_ns();
        uint64_t end = d.t0 + cfg->duration_ns, next_sec = d.t0 + P2P_NS_PER_S, next_tick = 0;
        uint64_t drain_end = 0;
        for (;;) {
            uint64_t now = p2p_now_ns();
            bool running = now < end && !stress_stop;
            if (!running && !drain_end) {
                drain_end = now + D4_TIMEOUT_NS;
                stress_load_end(st, d.t0, now);
            }
            /* a second SIGINT/SIGTERM: no more waiting for replies */
            if (!running && stress_stop >= 2) drain_end = now;
            if (!running && (outstanding(&d) == 0 || now >= drain_end)) break;
            if (now >= next_tick) {
                tick(&d, now, running);
                next_tick = now + 5 * P2P_NS_PER_MS;
            }
            if (running) pump(&d, now);
            int n = epoll_wait(d.ep, evs, D4_EVENTS, 1);
            if (n < 0 && errno != EINTR) {
                snprintf(err, errlen, "epoll_wait: %s", strerror(errno));
                rc = -1;
                break;
            }
            for (int i = 0; i < n; i++) on_readable(&d, &d.keys[evs[i].data.u32]);
            now = p2p_now_ns();
            if (now >= next_sec) {
                unsigned live = cfg->findnodes ? (unsigned)st->bonded : d.nkeys;
                stress_point_t p = {.t = (double)(now - d.t0) / 1e9,
                                    .live = live,
                                    .inflight = outstanding(&d),
                                    .msgs = d.sec_msgs};
                stress_proc_sample(st, live, false, &p.rss_kb);
                stress_series_add(st, &p);
                if (tty)
                    stress_progress(st, p.t, (double)cfg->duration_ns / 1e9, live, p.inflight,
                                    d.sec_ok);
                d.sec_ok = d.sec_msgs = 0;
                next_sec += P2P_NS_PER_S;
            }
        }
        /* what is still outstanding after the drain is lost */
        tick(&d, p2p_now_ns() + D4_TIMEOUT_NS, false);
        st->elapsed_s = (double)(p2p_now_ns() - d.t0) / 1e9;
        st->peak_live = cfg->findnodes ? (uint32_t)st->bonded : d.nkeys;
        if (tty) fprintf(stderr, "\n");
        /* the last, partial second (with the requests lost in the drain) */
        stress_point_t last = {.t = st->elapsed_s, .msgs = d.sec_msgs};
        stress_proc_sample(st, 0, false, &last.rss_kb);
        stress_series_add(st, &last);
    }
    for (unsigned i = 0; d.keys && i < d.nkeys; i++) {
        if (d.keys[i].fd >= 0) close(d.keys[i].fd);
        p2p_wipe(d.keys[i].priv, 32);
    }
    free(d.keys);
    if (d.ep >= 0) close(d.ep);
    return rc;
}
