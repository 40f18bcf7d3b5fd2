/*
 * tests/actors/test_server_peerstate.c: the dialer's view of peers follows
 * the run loop's decisions in order.
 *
 * - test_readmitted: a raw client B (fixed key) is admitted, disconnects
 *   and is admitted again while the dialer sleeps (no static node, no dial
 *   in flight: the run loop's updates do not wake it).  Then discovery
 *   offers B, then an unknown node C.  B is connected, so only C is
 *   dialled (stats.dials == 1), and B stays connected.  Applying the
 *   second "added" before the older "removed" would leave the dialer
 *   believing B is gone and dial it.
 * - test_spoofed_inbound: a raw client sends an RLPx auth claiming the key
 *   of node X (it has not X's private key: it cannot read the ack nor send
 *   a valid frame) and then holds the connection in the handshake.  The
 *   run loop marks X's inbound connection pending.  X is then added as a
 *   static node: the dialer dials it at once (stats.dials == 1 within 2 s,
 *   well inside the 10 s handshake timeout), since an unproven inbound ID
 *   must not hold back a static dial.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};
static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

/* Runs a raw client with key k (public key pub) up to admission. */
static bool admit(rawpeer_t *rp, uint16_t port, const uint8_t server_pub[64], const uint8_t k[32],
                  const uint8_t pub[64])
{
    if (rp_connect(rp, port) || rp_handshake(rp, k, server_pub, 5000) ||
        rp_send_hello(rp, pub, cap_echo, ver1, 1))
        return false;
    uint64_t code = 99;
    const uint8_t *p;
    size_t n;
    if (rp_recv(rp, &code, &p, &n, 5000) || code != P2P_MSG_HELLO) return false;
    p2p_rlpx_codec_set_snappy(&rp->codec, true);
    return true;
}

/* A node record with key k on 127.0.0.1 and a TCP port nobody listens on. */
static p2p_node_t dead_node(const uint8_t pub[64])
{
    p2p_node_t n;
    memset(&n, 0, sizeof n);
    memcpy(n.pubkey, pub, 64);
    p2p_node_id(n.id, pub);
    n.ep.ip = p2p_ip4(127, 0, 0, 1);
    n.ep.tcp = 1;
    n.ep.udp = 1;
    return n;
}

static void test_readmitted(void)
{
    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.no_discovery = false; /* the candidate hook is open */
    cs.dial_timeout_ms = 500;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    if (!s) return;
    p2p_node_t ns = su_node(s);

    uint8_t kb[32], pb[64], kc[32], pc[64];
    su_key(kb);
    su_key(kc);
    CHECK_OK(p2p_secp_pubkey(pb, kb));
    CHECK_OK(p2p_secp_pubkey(pc, kc));
    p2p_node_t nb = dead_node(pb), nc = dead_node(pc);

    rawpeer_t rp;
    memset(&rp, 0, sizeof rp);
    CHECK(admit(&rp, ns.ep.tcp, ns.pubkey, kb, pb));
    CHECK(su_wait_peers(s, 1, 5000));
    rp_close(&rp);
    CHECK(su_wait_peers(s, 0, 5000));
    memset(&rp, 0, sizeof rp);
    CHECK(admit(&rp, ns.ep.tcp, ns.pubkey, kb, pb));
    CHECK(su_wait_peers(s, 1, 5000));

    uint64_t dl = p2p_now_ns() + 2 * P2P_NS_PER_S;
    CHECK_OK(p2p_server_add_candidate(s, &nb, dl));
    CHECK_OK(p2p_server_add_candidate(s, &nc, dl));
    CHECK(SU_WAIT_STAT(s, dials, 1, 3000));
    usleep(200 * 1000);
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    printf("peerstate: %llu dials after offering a connected node and an unknown one\n",
           (unsigned long long)st.dials);
    CHECK(st.dials == 1);
    CHECK(st.rejected[P2P_DISC_ALREADY_CONNECTED] == 0);
    CHECK(p2p_server_peer_count(s) == 1);
    p2p_peer_t *peer = NULL;
    CHECK_OK(p2p_server_peer_get(s, &peer, nb.id));
    p2p_peer_unref(peer);
    rp_close(&rp);
    p2p_server_stop(s);
}

static void test_spoofed_inbound(void)
{
    /* X's address: a port that accepts but never speaks */
    int sink;
    uint16_t xport = su_silent_port(&sink);

    p2p_server_config_t cs;
    su_config(&cs, &proto_echo, 1);
    cs.handshake_timeout_ms = 10000; /* the spoofed handshake stays pending */
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cs));
    if (!s) {
        close(sink);
        return;
    }
    p2p_node_t ns = su_node(s);

    uint8_t kx[32], px[64], ka[32];
    su_key(kx);
    su_key(ka);
    CHECK_OK(p2p_secp_pubkey(px, kx));
    p2p_node_t nx = dead_node(px);
    nx.ep.tcp = xport;

    /* the attacker's auth claims X's public key with its own private key */
    rawpeer_t rp;
    memset(&rp, 0, sizeof rp);
    CHECK(rp_connect(&rp, ns.ep.tcp) == 0);
    CHECK(rp_handshake_keyed(&rp, ka, px, ns.pubkey, 1000) != 0); /* the ack is X's to read */
    CHECK(SU_WAIT_STAT(s, accepted, 1, 2000));
    usleep(100 * 1000); /* the auth is checked and X marked pending */
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.handshake_failed == 0 && st.handshake_timeouts == 0);

    CHECK_OK(p2p_server_add_peer(s, &nx));
    CHECK(SU_WAIT_STAT(s, dials, 1, 2000));
    p2p_server_get_stats(s, &st);
    printf("spoofed inbound: %llu dials to the static node while its ID was pending\n",
           (unsigned long long)st.dials);
    CHECK(st.dials == 1);
    CHECK(st.handshake_timeouts == 0); /* the spoofed handshake was still pending */
    rp_close(&rp);
    p2p_server_stop(s);
    close(sink);
}

int main(void)
{
    int fds0 = su_count_fds();
    test_readmitted();
    test_spoofed_inbound();
    CHECK(su_count_fds() == fds0);
    return tu_done("server_peerstate");
}
