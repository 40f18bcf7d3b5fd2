/*
 * tests/actors/test_discovery_hostile.c: hostile datagrams sent over
 * loopback to a running discovery instance.  Each kind (truncated, over
 * 1280 bytes, bad hash, bad signature, unknown type, expired (before the
 * recovery), a replayed capture (duplicate: from another address, or a
 * fourth copy from the sender's own), garbage RLP,
 * signed with the instance's own key, oversized neighbor lists, findnode
 * and ENR request from an unbonded sender, unsolicited replies) bumps its
 * named counter and gets no reply; the instance keeps answering valid
 * pings with a pong, and once the sender is bonded answers its findnode
 * with Neighbors as the spec says.
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto/keccak.h"
#include "tests/actors/disc_nodes.h"
#include "wire/rlp.h"

static int sock;
static uint16_t target_port;
static uint8_t key[32], ourpub[64];

static void send_raw(const uint8_t *p, size_t n)
{
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, target_port);
    CHECK(sendto(sock, p, n, 0, (struct sockaddr *)&ss, sl) == (ssize_t)n);
}

/* Receives one datagram within ms; returns its length or -1. */
static ssize_t recv_raw(uint8_t *buf, size_t cap, int ms)
{
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    if (poll(&pfd, 1, ms) <= 0) return -1;
    return recv(sock, buf, cap, 0);
}

static size_t make_ping(uint8_t out[P2P_DISCV4_MAX_SIZE], uint8_t hash[32], const uint8_t *priv,
                        uint64_t exp)
{
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PING;
    p.expiration = exp;
    p.u.ping.version = 4;
    p.u.ping.from = dn_sock_ep(sock);
    p.u.ping.to.ip = p2p_ip4(127, 0, 0, 1);
    p.u.ping.to.udp = target_port;
    size_t n = 0;
    CHECK_OK(p2p_discv4_encode(out, &n, hash, &p, priv));
    return n;
}

static size_t make_pkt(uint8_t out[P2P_DISCV4_MAX_SIZE], const p2p_discv4_packet_t *p)
{
    size_t n = 0;
    CHECK_OK(p2p_discv4_encode(out, &n, NULL, p, key));
    return n;
}

/* Waits until the counter read by get() reaches want. */
static bool wait_ctr(dn_node_t *n, uint64_t (*get)(const p2p_discovery_info_t *), uint64_t want)
{
    uint64_t deadline = dn_deadline_ms(10000);
    while (p2p_now_ns() < deadline) {
        p2p_discovery_info_t *in = dn_info(n);
        uint64_t v = in ? get(in) : 0;
        free(in);
        if (v >= want) return true;
        dn_sleep_ms(20);
    }
    return false;
}

#define GETTER(grp, name)                                                                          \
    static uint64_t get_##name(const p2p_discovery_info_t *in)                                     \
    {                                                                                              \
        return in->grp.name;                                                                       \
    }
GETTER(shell, rx_too_small)
GETTER(shell, rx_too_big)
GETTER(shell, rx_bad_hash)
GETTER(shell, rx_bad_sig)
GETTER(shell, rx_unknown_type)
GETTER(shell, rx_bad_packet)
GETTER(shell, rx_from_self)
GETTER(shell, rx_expired)
GETTER(shell, rx_duplicate)
GETTER(core, rx_neighbors_over12)
GETTER(core, drop_unbonded_findnode)
GETTER(core, drop_unbonded_enrrequest)
GETTER(core, drop_unsolicited)
GETTER(core, rx_ping)
GETTER(core, rx_findnode)

/* What comes in the next moments (up to 4 datagrams, 300 ms apart at
 * most) is revalidation pings only: no answer to a dropped request. */
static void expect_only_pings(void)
{
    for (int i = 0; i < 4; i++) {
        uint8_t buf[2048];
        ssize_t r = recv_raw(buf, sizeof buf, 300);
        if (r < 0) break;
        p2p_discv4_packet_t q;
        CHECK_OK(p2p_discv4_decode(&q, buf, (size_t)r));
        CHECK(q.type == P2P_DISCV4_PING); /* revalidation only */
    }
}

/* A Neighbors body with n entries (hand-built: the encoder refuses > 12). */
static size_t neighbors_body(uint8_t *out, size_t cap, unsigned n)
{
    p2p_rlp_enc_t e;
    p2p_rlp_enc_init(&e, out, cap);
    p2p_rlp_list_begin(&e);
    p2p_rlp_list_begin(&e);
    for (unsigned i = 0; i < n; i++) {
        uint8_t ip[4] = {127, 0, 0, 1}, id[64];
        memcpy(id, ourpub, 64);
        id[63] ^= (uint8_t)i;
        p2p_rlp_list_begin(&e);
        p2p_rlp_put_bytes(&e, ip, 4);
        p2p_rlp_put_uint(&e, 30000 + i);
        p2p_rlp_put_uint(&e, 30000 + i);
        p2p_rlp_put_bytes(&e, id, 64);
        p2p_rlp_list_end(&e);
    }
    p2p_rlp_list_end(&e);
    p2p_rlp_put_uint(&e, dn_unix_now() + 20);
    p2p_rlp_list_end(&e);
    size_t len = 0;
    CHECK_OK(p2p_rlp_enc_finish(&e, &len));
    return len;
}

static void expect_silence(const char *what)
{
    uint8_t buf[2048];
    ssize_t n = recv_raw(buf, sizeof buf, 300);
    if (n >= 0) fprintf(stderr, "unexpected reply (%zd bytes) after %s\n", n, what);
    CHECK(n < 0);
}

int main(void)
{
    /* two readers on the socket: a datagram reaches either, and each
     * learns the answered requests for its own replay cache */
    dn_node_t a;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    base.readers = 2;
    dn_key(a.priv);
    CHECK_OK(dn_start(&a, NULL, 0, NULL, &base));
    if (!a.d) return tu_done("discovery_hostile");
    target_port = p2p_discovery_port(a.d);
    dn_key(key);
    CHECK_OK(p2p_secp_pubkey(ourpub, key));
    uint8_t ourid[32];
    p2p_node_id(ourid, ourpub);
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, 0);
    CHECK(bind(sock, (struct sockaddr *)&ss, sl) == 0);

    uint8_t pkt[P2P_DISCV4_MAX_SIZE + 64], hash[32];
    size_t n;

    /* truncated */
    n = make_ping(pkt, hash, key, dn_unix_now() + 20);
    send_raw(pkt, 97);
    send_raw(pkt, 1);
    CHECK(wait_ctr(&a, get_rx_too_small, 2));
    /* over 1280 bytes */
    memset(pkt + n, 0, sizeof pkt - n);
    send_raw(pkt, P2P_DISCV4_MAX_SIZE + 1);
    send_raw(pkt, P2P_DISCV4_MAX_SIZE + 64);
    CHECK(wait_ctr(&a, get_rx_too_big, 2));
    /* bad hash */
    n = make_ping(pkt, hash, key, dn_unix_now() + 20);
    pkt[5] ^= 1;
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_bad_hash, 1));
    /* bad signature: recovery id 7, hash recomputed so it passes the hash check */
    n = make_ping(pkt, hash, key, dn_unix_now() + 20);
    pkt[32 + 64] = 7;
    p2p_keccak256(pkt, pkt + 32, n - 32);
    send_raw(pkt, n);
    /* r = 0 */
    n = make_ping(pkt, hash, key, dn_unix_now() + 20);
    memset(pkt + 32, 0, 32);
    p2p_keccak256(pkt, pkt + 32, n - 32);
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_bad_sig, 2));
    /* unknown types 0, 7 and 255 with a valid hash and signature */
    static const uint8_t body[] = {0xc1, 0x01};
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, 7, body, sizeof body, key));
    send_raw(pkt, n);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, 0, body, sizeof body, key));
    send_raw(pkt, n);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, 255, body, sizeof body, key));
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_unknown_type, 3));
    /* garbage RLP bodies of known types */
    static const uint8_t junk1[] = {0xff, 0xff, 0xff, 0x00}, junk2[] = {0xc5, 0x01},
                         junk3[] = {0xc3, 0x80, 0x80, 0x80};
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, P2P_DISCV4_PING, junk1, sizeof junk1, key));
    send_raw(pkt, n);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, P2P_DISCV4_FINDNODE, junk2, sizeof junk2, key));
    send_raw(pkt, n);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, P2P_DISCV4_PONG, junk3, sizeof junk3, key));
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_bad_packet, 3));
    /* signed with the instance's own key */
    n = make_ping(pkt, hash, a.priv, dn_unix_now() + 20);
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_from_self, 1));
    /* expired: dropped by the reader before the recovery, so an expired
     * packet with a signature that would not recover counts as expired */
    n = make_ping(pkt, hash, key, dn_unix_now() - 5);
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_expired, 1));
    n = make_ping(pkt, hash, key, dn_unix_now() - 6);
    pkt[32 + 64] = 7;
    p2p_keccak256(pkt, pkt + 32, n - 32);
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_expired, 2));
    /* neighbor lists longer than the 12 we send: 13 entries (as Besu
     * sends) and 14 decode and are counted; unsolicited, they are dropped
     * as such */
    uint8_t nb[P2P_DISCV4_MAX_SIZE];
    size_t nblen = neighbors_body(nb, sizeof nb, 13);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, P2P_DISCV4_NEIGHBORS, nb, nblen, key));
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_neighbors_over12, 1));
    CHECK(wait_ctr(&a, get_drop_unsolicited, 1));
    uint64_t bad_before;
    {
        p2p_discovery_info_t *in = dn_info(&a);
        bad_before = in ? in->shell.rx_bad_packet : 0;
        free(in);
    }
    nblen = neighbors_body(nb, sizeof nb, 14);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, P2P_DISCV4_NEIGHBORS, nb, nblen, key));
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_rx_neighbors_over12, 2));
    CHECK(wait_ctr(&a, get_drop_unsolicited, 2));
    CHECK(bad_before == 3);
    /* unsolicited replies: a pong and a 2-entry Neighbors */
    p2p_discv4_packet_t p;
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PONG;
    p.expiration = dn_unix_now() + 20;
    p.u.pong.to = dn_sock_ep(sock);
    memset(p.u.pong.reply_tok, 0x33, 32);
    send_raw(pkt, make_pkt(pkt, &p));
    nblen = neighbors_body(nb, sizeof nb, 2);
    CHECK_OK(p2p_discv4_seal(pkt, &n, NULL, P2P_DISCV4_NEIGHBORS, nb, nblen, key));
    send_raw(pkt, n);
    CHECK(wait_ctr(&a, get_drop_unsolicited, 4));
    /* findnode and ENR request from an unbonded sender */
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_FINDNODE;
    p.expiration = dn_unix_now() + 20;
    memcpy(p.u.findnode.target, ourpub, 64);
    send_raw(pkt, make_pkt(pkt, &p));
    CHECK(wait_ctr(&a, get_drop_unbonded_findnode, 1));
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_ENRREQUEST;
    p.expiration = dn_unix_now() + 20;
    send_raw(pkt, make_pkt(pkt, &p));
    CHECK(wait_ctr(&a, get_drop_unbonded_enrrequest, 1));
    expect_silence("hostile packets");

    /* The instance still works: a valid ping gets a pong (and, since we are
     * new to it, a ping back). */
    n = make_ping(pkt, hash, key, dn_unix_now() + 20);
    send_raw(pkt, n);
    bool got_pong = false;
    uint8_t ping_hash[32];
    bool got_ping = false;
    for (int i = 0; i < 4 && !(got_pong && got_ping); i++) {
        uint8_t buf[2048];
        ssize_t r = recv_raw(buf, sizeof buf, 2000);
        if (r < 0) break;
        p2p_discv4_packet_t q;
        CHECK_OK(p2p_discv4_decode(&q, buf, (size_t)r));
        CHECK_MEM(q.sender_id, a.self.id, 32);
        if (q.type == P2P_DISCV4_PONG) {
            CHECK_MEM(q.u.pong.reply_tok, hash, 32);
            CHECK(q.u.pong.has_enr_seq && q.u.pong.enr_seq == a.self.seq);
            got_pong = true;
        } else if (q.type == P2P_DISCV4_PING) {
            memcpy(ping_hash, q.hash, 32);
            got_ping = true;
        } else {
            CHECK(!"unexpected packet type");
        }
    }
    CHECK(got_pong && got_ping);
    CHECK(wait_ctr(&a, get_rx_ping, 1));
    /* Answer its ping: now we are bonded, findnode gets Neighbors. */
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_PONG;
    p.expiration = dn_unix_now() + 20;
    p.u.pong.to.ip = p2p_ip4(127, 0, 0, 1);
    p.u.pong.to.udp = target_port;
    memcpy(p.u.pong.reply_tok, ping_hash, 32);
    send_raw(pkt, make_pkt(pkt, &p));
    dn_sleep_ms(100);
    memset(&p, 0, sizeof p);
    p.type = P2P_DISCV4_FINDNODE;
    p.expiration = dn_unix_now() + 21; /* not a replay of the unbonded one */
    memcpy(p.u.findnode.target, ourpub, 64);
    size_t fnlen = make_pkt(pkt, &p);
    send_raw(pkt, fnlen);
    CHECK(wait_ctr(&a, get_rx_findnode, 1));
    /* Neighbors comes; a revalidation ping may come first (answered). */
    bool got_nb = false;
    for (int i = 0; i < 4 && !got_nb; i++) {
        uint8_t buf[2048];
        ssize_t r = recv_raw(buf, sizeof buf, 2000);
        if (r < 0) break;
        p2p_discv4_packet_t q;
        CHECK_OK(p2p_discv4_decode(&q, buf, (size_t)r));
        if (q.type == P2P_DISCV4_NEIGHBORS) {
            CHECK(q.u.neighbors.n <= P2P_DISCV4_MAX_NEIGHBORS);
            got_nb = true;
        } else {
            fprintf(stderr, "before neighbors: %s\n", p2p_discv4_type_name(q.type));
            CHECK(q.type == P2P_DISCV4_PING);
        }
    }
    CHECK(got_nb);

    /* The same findnode from another address (a replayed capture, still
     * unexpired): dropped by the reader before the recovery as a duplicate
     * (never verified), no second Neighbors to anyone.  Either reader may
     * get it. */
    uint64_t verified = 0;
    {
        p2p_discovery_info_t *in = dn_info(&a);
        CHECK(in != NULL);
        if (in) verified = in->shell.rx_verified;
        free(in);
    }
    int sock2 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(bind(sock2, (struct sockaddr *)&ss, sl) == 0);
    {
        struct sockaddr_storage to;
        socklen_t tl = p2p_ip_to_sockaddr(&to, &lo, target_port);
        CHECK(sendto(sock2, pkt, fnlen, 0, (struct sockaddr *)&to, tl) == (ssize_t)fnlen);
    }
    CHECK(wait_ctr(&a, get_rx_duplicate, 1));
    expect_only_pings();
    {
        struct pollfd pfd = {.fd = sock2, .events = POLLIN};
        CHECK(poll(&pfd, 1, 0) == 0); /* the replaying address got nothing */
    }
    close(sock2);
    {
        p2p_discovery_info_t *in = dn_info(&a);
        CHECK(in && in->core.rx_findnode == 1 && in->shell.rx_duplicate == 1);
        /* nothing else was sent meanwhile: the replay never got verified */
        CHECK(in && in->shell.rx_verified == verified);
        free(in);
    }

    /* The sender itself repeats the findnode byte for byte (as a client
     * does that asks again within the same second): answered twice more,
     * P2P__DISC_SEEN_ANSWERS (3) in all; the next copy is a replay. */
    for (uint64_t k = 2; k <= 4; k++) {
        send_raw(pkt, fnlen);
        if (k <= 3) {
            CHECK(wait_ctr(&a, get_rx_findnode, k));
            bool got = false;
            for (int i = 0; i < 4 && !got; i++) {
                uint8_t buf[2048];
                ssize_t r = recv_raw(buf, sizeof buf, 2000);
                if (r < 0) break;
                p2p_discv4_packet_t q;
                CHECK_OK(p2p_discv4_decode(&q, buf, (size_t)r));
                got = q.type == P2P_DISCV4_NEIGHBORS;
            }
            CHECK(got);
        } else {
            CHECK(wait_ctr(&a, get_rx_duplicate, 2));
            expect_only_pings();
            p2p_discovery_info_t *in = dn_info(&a);
            CHECK(in && in->core.rx_findnode == 3 && in->shell.rx_duplicate == 2);
            free(in);
        }
    }

    /* Nothing crashed, and the reader verified only what was valid. */
    p2p_discovery_info_t *in = dn_info(&a);
    CHECK(in != NULL);
    if (in) {
        CHECK(in->shell.rx_queue_full == 0);
        CHECK(in->shell.rx_bad_hash == 1 && in->shell.rx_bad_sig == 2);
        CHECK(in->shell.rx_expired == 2 && in->core.drop_expired == 0);
        CHECK(in->shell.rx_from_self == 1);
        free(in);
    }
    close(sock);
    p2p_discovery_stop(a.d);
    return tu_done("discovery_hostile");
}
