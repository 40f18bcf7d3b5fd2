/*
 * tests/actors/test_server_checks.c: every checkpoint outcome over real
 * loopback connections, each with the Disconnect reason the other side
 * reads, plus the listener's admission (inbound throttle, NetRestrict) and
 * the counters:
 *   - too many peers (MaxPeers 1), and a trusted peer admitted above it
 *   - already connected (a second connection with a connected peer's key)
 *   - connected to self (a client using the server's own key)
 *   - useless peer (no shared capability), seen by a raw client and
 *     between two servers
 *   - unexpected identity (Hello ID differs from the handshake key), and
 *     a dial with a wrong expected key failing its handshake; its
 *     Disconnect is snappy-compressed after a v5 (or v6) Hello (the remote
 *     reads every message after the Hellos compressed) and plain after a v4
 *     one
 *   - inbound throttle (second quick connection from one IP; loopback is
 *     LAN, so the test hook test_throttle_lan is set) and NetRestrict
 *   - the inbound history empties 30 s after a burst with no new connection
 */
#include <stdlib.h>

#include "actors/inbound.h"
#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"
#include "wire/snappy.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};

static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

/* Raw client: handshake with priv, Hello with id_pub, expect a Disconnect. */
static int raw_attempt(p2p_server_t *s, const uint8_t priv[32], const uint8_t *hello_pub,
                       const char *const *caps, size_t ncaps, bool *saw_hello)
{
    p2p_node_t sn = su_node(s);
    rawpeer_t rp;
    int rc = -100;
    if (rp_connect(&rp, sn.ep.tcp) == 0 && rp_handshake(&rp, priv, sn.pubkey, 3000) == 0) {
        uint8_t pub[64];
        if (p2p_secp_pubkey(pub, priv) == 0 &&
            rp_send_hello(&rp, hello_pub ? hello_pub : pub, caps, ver1, ncaps) == 0)
            rc = rp_expect_disconnect(&rp, saw_hello, 3000);
    }
    rp_close(&rp);
    return rc;
}

static void test_too_many_and_trusted(void)
{
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.max_peers = 1;
    cs.no_dial = true; /* all of MaxPeers is inbound */
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    p2p_node_t ns = su_node(s);

    /* first peer: a server dialling s statically */
    p2p_server_config_t c1;
    su_config(&c1, &proto_echo, 1);
    c1.static_nodes = &ns;
    c1.nstatic = 1;
    p2p_server_t *s1 = NULL;
    CHECK_OK(p2p_server_start(&s1, &c1));
    CHECK(su_wait_peers(s, 1, 5000));

    /* second: rejected at the post-handshake checkpoint, before any Hello */
    uint8_t k2[32];
    su_key(k2);
    bool hello = true;
    CHECK(raw_attempt(s, k2, NULL, cap_echo, 1, &hello) == P2P_DISC_TOO_MANY_PEERS);
    CHECK(!hello);

    /* the same key, trusted: admitted above MaxPeers */
    uint8_t pub2[64], id2[32];
    CHECK_OK(p2p_secp_pubkey(pub2, k2));
    p2p_node_id(id2, pub2);
    CHECK_OK(p2p_server_add_trusted(s, id2));
    {
        rawpeer_t rp;
        CHECK(rp_connect(&rp, ns.ep.tcp) == 0);
        CHECK_OK(rp_handshake(&rp, k2, ns.pubkey, 3000));
        CHECK_OK(rp_send_hello(&rp, pub2, cap_echo, ver1, 1));
        uint64_t code = 99;
        const uint8_t *p;
        size_t n;
        CHECK(rp_recv(&rp, &code, &p, &n, 3000) == 0 && code == P2P_MSG_HELLO);
        CHECK(su_wait_peers(s, 2, 3000));
        p2p_peer_info_t info[4];
        size_t np = 0;
        CHECK_OK(p2p_server_peers(s, info, 4, &np));
        int trusted = 0;
        for (size_t i = 0; i < np; i++)
            if (memcmp(info[i].id, id2, 32) == 0 && info[i].trusted && info[i].inbound) trusted++;
        CHECK(trusted == 1);
        rp_close(&rp);
        CHECK(su_wait_peers(s, 1, 3000));
    }
    /* untrusted again: rejected again */
    CHECK_OK(p2p_server_remove_trusted(s, id2));
    CHECK(raw_attempt(s, k2, NULL, cap_echo, 1, NULL) == P2P_DISC_TOO_MANY_PEERS);

    /* disc_sent counts a Disconnect once written: the raw peer may read
     * it before the server's thread counts it */
    CHECK(SU_WAIT_STAT(s, disc_sent[P2P_DISC_TOO_MANY_PEERS], 2, 2000));
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.rejected[P2P_DISC_TOO_MANY_PEERS] == 2);
    CHECK(st.disc_sent[P2P_DISC_TOO_MANY_PEERS] == 2);
    p2p_server_stop(s1);
    p2p_server_stop(s);
}

static void test_already_connected_and_self(void)
{
    p2p_server_config_t cs, c1;
    su_config(&cs, &proto_echo, 1);
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    p2p_node_t ns = su_node(s);
    su_config(&c1, &proto_echo, 1);
    c1.static_nodes = &ns;
    c1.nstatic = 1;
    p2p_server_t *s1 = NULL;
    CHECK_OK(p2p_server_start(&s1, &c1));
    CHECK(su_wait_peers(s, 1, 5000));

    /* a second connection presenting s1's key */
    CHECK(raw_attempt(s, c1.priv, NULL, cap_echo, 1, NULL) == P2P_DISC_ALREADY_CONNECTED);
    /* a connection presenting s's own key */
    CHECK(raw_attempt(s, cs.priv, NULL, cap_echo, 1, NULL) == P2P_DISC_SELF);
    /* the dialer never dials itself (checkDial: self) */
    CHECK_OK(p2p_server_add_peer(s, &ns));
    usleep(100 * 1000);
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.dials == 0);
    CHECK(st.rejected[P2P_DISC_ALREADY_CONNECTED] == 1);
    CHECK(st.rejected[P2P_DISC_SELF] == 1);
    CHECK(p2p_server_peer_count(s) == 1);
    /* the run loop's counts: s1 dialled s (inbound at s, outbound at s1) */
    unsigned in = 99;
    CHECK(p2p_server_peer_counts(s, &in) == 1);
    CHECK(in == 1);
    in = 99;
    CHECK(p2p_server_peer_counts(s1, &in) == 1);
    CHECK(in == 0);
    CHECK(p2p_server_peer_counts(s, NULL) == 1);
    p2p_server_stop(s1);
    CHECK(su_wait_peers(s, 0, 5000));
    in = 99;
    CHECK(p2p_server_peer_counts(s, &in) == 0);
    CHECK(in == 0);
    p2p_server_stop(s);
}

static void test_useless_and_identity(void)
{
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    p2p_node_t ns = su_node(s);

    /* no shared capability: Hello, then Disconnect(useless peer) */
    uint8_t k[32];
    su_key(k);
    const char *const other[] = {"other"};
    bool hello = false;
    CHECK(raw_attempt(s, k, NULL, other, 1, &hello) == P2P_DISC_USELESS_PEER);
    CHECK(hello);
    /* no capabilities at all */
    su_key(k);
    CHECK(raw_attempt(s, k, NULL, NULL, 0, NULL) == P2P_DISC_USELESS_PEER);

    /* Hello ID is another key than the handshake's */
    uint8_t k2[32], pub2[64];
    su_key(k);
    su_key(k2);
    CHECK_OK(p2p_secp_pubkey(pub2, k2));
    CHECK(raw_attempt(s, k, pub2, cap_echo, 1, NULL) == P2P_DISC_UNEXPECTED_IDENTITY);
    /* Hello ID all zero: invalid identity */
    static const uint8_t zero[64];
    su_key(k);
    CHECK(raw_attempt(s, k, zero, cap_echo, 1, NULL) == P2P_DISC_INVALID_IDENTITY);

    /* two servers without a shared protocol: both refuse at addpeer */
    static const p2p_protocol_t proto_other = {"other", 1, 1, NULL, NULL, NULL, NULL};
    p2p_server_config_t c1;
    su_config(&c1, &proto_other, 1);
    c1.static_nodes = &ns;
    c1.nstatic = 1;
    p2p_server_t *s1 = NULL;
    CHECK_OK(p2p_server_start(&s1, &c1));
    CHECK(SU_WAIT_STAT(s1, rejected[P2P_DISC_USELESS_PEER], 1, 5000));
    CHECK(SU_WAIT_STAT(s, rejected[P2P_DISC_USELESS_PEER], 3, 5000));
    CHECK(p2p_server_peer_count(s) == 0);

    /* dialling a node under a wrong key: the RLPx handshake fails */
    p2p_node_t wrong = ns;
    uint8_t k3[32];
    su_key(k3);
    CHECK_OK(p2p_secp_pubkey(wrong.pubkey, k3));
    p2p_node_id(wrong.id, wrong.pubkey);
    CHECK_OK(p2p_server_add_peer(s1, &wrong));
    CHECK(SU_WAIT_STAT(s1, handshake_failed, 1, 5000));
    CHECK(SU_WAIT_STAT(s, handshake_failed, 1, 5000));
    CHECK(p2p_server_peer_count(s1) == 0);

    /* disc_sent counts a Disconnect once written */
    CHECK(SU_WAIT_STAT(s, disc_sent[P2P_DISC_UNEXPECTED_IDENTITY], 1, 2000));
    CHECK(SU_WAIT_STAT(s, disc_sent[P2P_DISC_INVALID_IDENTITY], 1, 2000));
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.disc_sent[P2P_DISC_UNEXPECTED_IDENTITY] == 1);
    CHECK(st.disc_sent[P2P_DISC_INVALID_IDENTITY] == 1);
    p2p_server_stop(s1);
    p2p_server_stop(s);
}

/* Raw client: handshake, a Hello of the given version whose ID is another
 * key, then the frame that follows the server's Hello.  Returns true if it
 * is a Disconnect whose payload is snappy(rlp([0x09])) (snappy) or
 * rlp([0x09]) as it is (!snappy). */
static bool identity_disc_form(p2p_server_t *s, uint64_t version, bool snappy)
{
    p2p_node_t sn = su_node(s);
    rawpeer_t rp;
    bool ok = false;
    uint8_t k2[32], pub2[64];
    su_key(k2);
    CHECK_OK(p2p_secp_pubkey(pub2, k2));
    p2p_hello_t *h = calloc(1, sizeof *h);
    CHECK(h != NULL);
    h->version = version;
    memcpy(h->caps[0].name, "echo", 4);
    h->caps[0].name_len = 4;
    h->caps[0].version = 1;
    h->ncaps = 1;
    memcpy(h->id, pub2, 64);
    uint8_t hb[P2P_HELLO_MAX];
    size_t hn = 0;
    CHECK_OK(p2p_hello_encode(hb, sizeof hb, &hn, h));
    free(h);
    if (su_dial(&rp, sn.ep.tcp, sn.pubkey, 3000) && rp_send(&rp, P2P_MSG_HELLO, hb, hn) == 0) {
        uint64_t code = 99;
        const uint8_t *p;
        size_t n;
        if (rp_recv(&rp, &code, &p, &n, 3000) == 0 && code == P2P_MSG_HELLO) {
            /* the codec hands a Disconnect over as it came */
            p2p_rlpx_codec_set_snappy(&rp.codec, version >= 5);
            if (rp_recv(&rp, &code, &p, &n, 3000) == 0 && code == P2P_MSG_DISC) {
                uint8_t d[16];
                size_t dn = 0;
                static const uint8_t want[2] = {0xc1, P2P_DISC_UNEXPECTED_IDENTITY};
                if (snappy)
                    ok = p2p_snappy_decompress(d, sizeof d, &dn, p, n, sizeof d) == 0 && dn == 2 &&
                         memcmp(d, want, 2) == 0;
                else
                    ok = n == 2 && memcmp(p, want, 2) == 0;
            }
        }
    }
    rp_close(&rp);
    return ok;
}

static void test_identity_disconnect_form(void)
{
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    CHECK(identity_disc_form(s, 5, true));
    CHECK(identity_disc_form(s, 4, false));
    /* snappy iff the remote's version is 5 or above, not only 5 */
    CHECK(identity_disc_form(s, 6, true));
    CHECK(SU_WAIT_STAT(s, disc_sent[P2P_DISC_UNEXPECTED_IDENTITY], 3, 2000));
    p2p_server_stop(s);
}

static void test_throttle_and_netrestrict(void)
{
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.test_throttle_lan = true;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    uint8_t k[32];
    su_key(k);
    /* first connection from 127.0.0.1 is admitted (it gets as far as the
     * checkpoint: useless peer) */
    const char *const other[] = {"other"};
    CHECK(raw_attempt(s, k, NULL, other, 1, NULL) == P2P_DISC_USELESS_PEER);
    /* the second within 30 s is closed before any handshake */
    rawpeer_t rp;
    CHECK(rp_connect(&rp, p2p_server_port(s)) == 0);
    CHECK(rp_closed_silently(&rp, 3000));
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(s, inbound_throttled, 1, 1000));
    p2p_server_stop(s);

    /* without the hook loopback is LAN and never throttled */
    su_config(&cs, &proto_echo, 1);
    CHECK_OK(p2p_server_start(&s, &cs));
    for (int i = 0; i < 3; i++) {
        su_key(k);
        CHECK(raw_attempt(s, k, NULL, other, 1, NULL) == P2P_DISC_USELESS_PEER);
    }
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.inbound_throttled == 0);
    p2p_server_stop(s);

    /* NetRestrict without loopback: closed at once */
    p2p_netlist_t nl;
    CHECK_OK(p2p_netlist_parse(&nl, "10.0.0.0/8,192.168.0.0/16"));
    su_config(&cs, &proto_echo, 1);
    cs.netrestrict = &nl;
    CHECK_OK(p2p_server_start(&s, &cs));
    CHECK(rp_connect(&rp, p2p_server_port(s)) == 0);
    CHECK(rp_closed_silently(&rp, 3000));
    rp_close(&rp);
    CHECK(SU_WAIT_STAT(s, inbound_restricted, 1, 1000));
    p2p_server_stop(s);

    /* NetRestrict with loopback: admitted */
    CHECK_OK(p2p_netlist_parse(&nl, "127.0.0.0/8"));
    su_config(&cs, &proto_echo, 1);
    cs.netrestrict = &nl;
    CHECK_OK(p2p_server_start(&s, &cs));
    su_key(k);
    CHECK(rp_connect(&rp, p2p_server_port(s)) == 0);
    CHECK_OK(rp_handshake(&rp, k, su_node(s).pubkey, 3000));
    uint8_t pub[64];
    CHECK_OK(p2p_secp_pubkey(pub, k));
    CHECK_OK(rp_send_hello(&rp, pub, cap_echo, ver1, 1));
    CHECK(su_wait_peers(s, 1, 3000));
    rp_close(&rp);
    p2p_server_get_stats(s, &st);
    CHECK(st.inbound_restricted == 0);
    CHECK(st.accepted == 1);
    p2p_server_stop(s);
}

/* The inbound history gives its entries (and a burst's capacity) back
 * when their 30 s are up, also when no connection comes after the burst
 * to make the listener look: before, it expired entries only while
 * checking a new connection, so after a burst from many IPs the map and
 * queue (up to 16384 IPs, ~2 MiB) stayed in a node that then saw no new
 * inbound connection.  Connections from 64 loopback addresses (the
 * test_throttle_lan hook records loopback as Internet IPs), then nothing. */
static int connect_from(uint16_t port, uint32_t src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(src);
    struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons(port)};
    da.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
        connect(fd, (struct sockaddr *)&da, sizeof da)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void test_history_expires_when_idle(void)
{
    enum { NIPS = 64 };
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.test_throttle_lan = true;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    uint16_t port = p2p_server_port(s);
    int ok = 0;
    for (uint32_t i = 0; i < NIPS; i++) {
        int fd = connect_from(port, 0x7f000002u + i); /* 127.0.0.2 ... */
        if (fd < 0) continue;
        ok++;
        close(fd);
    }
    CHECK(ok == NIPS);
    CHECK(SU_WAIT_STAT(s, accepted, (uint64_t)ok, 5000));
    CHECK(SU_WAIT_STAT(s, inbound_history, (uint64_t)ok, 5000));
    p2p_server_stats_t st;
    /* 30 s after the last one (plus a margin), with no new connection */
    uint64_t end = p2p_now_ns() + (P2P_INBOUND_THROTTLE_NS + 10 * P2P_NS_PER_S);
    do {
        usleep(100 * 1000);
        p2p_server_get_stats(s, &st);
    } while (st.inbound_history != 0 && p2p_now_ns() < end);
    CHECK(st.inbound_history == 0);
    if (st.inbound_history != 0)
        fprintf(stderr, "inbound history still holds %llu IPs 40 s after the last connection\n",
                (unsigned long long)st.inbound_history);
    p2p_server_stop(s);
}

/* Limits past what the server can size its state for are refused at
 * start: before, a MaxPeers of 2^31 - 32 or more wrapped the run loop's
 * mailbox capacity (2 x (peers + pending + dials) + 64 in 32 bits) to a
 * few hundred cells, p2p_server_start returned 0 and the run loop then
 * aborted the process (its peer map asked for 2^33 slots); an unbounded
 * MaxPendingPeers or dial count aborted the dialer the same way. */
static void test_config_limits(void)
{
    static const struct {
        unsigned peers, pending, dials;
    } bad[] = {
        {UINT32_MAX, 0, 0},
        {0x7fffffe0u, 0, 0},
        {P2P_SERVER_LIMIT_MAX + 1, 0, 0},
        {10, UINT32_MAX, 0},
        {10, P2P_SERVER_LIMIT_MAX + 1, 0},
        {10, 0, UINT32_MAX},
        {10, 0, P2P_SERVER_LIMIT_MAX + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p2p_server_config_t c;
        su_config(&c, &proto_echo, 1);
        c.max_peers = bad[i].peers;
        c.max_pending = bad[i].pending;
        c.max_active_dials = bad[i].dials;
        p2p_server_t *s = NULL;
        int rc = p2p_server_start(&s, &c);
        if (rc != P2P_EINVAL)
            printf("config limits: peers %u pending %u dials %u: %s\n", bad[i].peers,
                   bad[i].pending, bad[i].dials, p2p_errname(rc));
        CHECK(rc == P2P_EINVAL && s == NULL);
        if (s) usleep(100 * 1000); /* the run loop and dialer set up (or abort) */
        if (s) p2p_server_stop(s);
    }
    /* devp2pd's largest --maxpeers and --maxpendpeers start and stop */
    p2p_server_config_t c;
    su_config(&c, &proto_echo, 1);
    c.max_peers = c.max_pending = 100000;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &c));
    if (s) CHECK(p2p_server_peer_count(s) == 0);
    if (s) p2p_server_stop(s);
}

/* A count without its array (protocols, bootnodes, static or trusted
 * nodes NULL with a count above 0) is a caller's mistake the server
 * refuses at start: before, it read through the NULL pointer (SIGSEGV). */
static void test_config_null_arrays(void)
{
    for (int i = 0; i < 4; i++) {
        p2p_server_config_t c;
        su_config(&c, &proto_echo, 1);
        if (i == 0) c.protocols = NULL;
        if (i == 1) c.nbootnodes = 2;
        if (i == 2) c.nstatic = 1;
        if (i == 3) c.ntrusted = 3;
        p2p_server_t *s = NULL;
        int rc = p2p_server_start(&s, &c);
        if (rc != P2P_EINVAL) printf("config null array %d: %s\n", i, p2p_errname(rc));
        CHECK(rc == P2P_EINVAL && s == NULL);
        if (s) p2p_server_stop(s);
    }
}

int main(void)
{
    int fds0 = su_count_fds();
    int th0 = su_count_threads();
    test_config_limits();
    test_config_null_arrays();
    test_too_many_and_trusted();
    test_already_connected_and_self();
    test_useless_and_identity();
    test_identity_disconnect_form();
    test_throttle_and_netrestrict();
    test_history_expires_when_idle();
    CHECK(su_count_fds() == fds0);
    int th = su_count_threads();
    CHECK(th >= th0 && th <= th0 + SU_EXTRA_THREADS);
    return tu_done("server_checks");
}
