/*
 * tests/actors/test_server_hello.c: what a server with a default
 * configuration says and waits for (PROTOCOL.md "Server" and "Peer / base
 * protocol"); the other server tests shorten every timeout, so only this
 * one sees the defaults.
 *
 * - test_defaults: with every timeout and limit left 0, the server runs
 *   geth's values: handshake 5 s, dial 15 s, ping 15 s, frame read 30 s,
 *   frame write 20 s, Disconnect write 1 s; MaxPendingPeers 50 (the
 *   listener's handshake slots and the dials in flight); MaxPeers 50 gives
 *   16 dialled and 34 inbound.  A MaxPendingPeers of 7 bounds the dials in
 *   flight too; NoDial leaves every place to inbound peers.
 * - test_our_hello: a raw client reads the server's Hello, which must be
 *   uncompressed (never snappy) and carry version 5, the client name, the
 *   capabilities sorted by (name, version) whatever the configuration's
 *   order, the listening port and the 64-byte public key of the node ID.
 */
#include "actors/server_int.h"
#include "tests/actors/srv_util.h"

#define S P2P_NS_PER_SEC

static const p2p_protocol_t protos[] = {
    {"snap", 1, 8, NULL, NULL, NULL, NULL},
    {"eth", 68, 17, NULL, NULL, NULL, NULL},
    {"les", 4, 10, NULL, NULL, NULL, NULL},
    {"eth", 67, 17, NULL, NULL, NULL, NULL},
};
#define NPROTOS (sizeof protos / sizeof protos[0])

static void test_defaults(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, protos, NPROTOS);
    cfg.max_peers = 50;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    CHECK(s->hs_timeout == 5 * S);     /* handshakeTimeout */
    CHECK(s->dial_timeout == 15 * S);  /* defaultDialTimeout */
    CHECK(s->ping_interval == 15 * S); /* pingInterval */
    CHECK(s->read_timeout == 30 * S);  /* frameReadTimeout */
    CHECK(s->write_timeout == 20 * S); /* frameWriteTimeout */
    CHECK(s->linger == 1 * S);         /* discWriteTimeout */
    CHECK(s->max_pending == 50 && s->ls_in.cfg.max_pending == 50);
    CHECK(s->max_active_dials == 50);
    CHECK(s->max_dialed == 16 && s->max_inbound == 34);
    CHECK(s->max_msg == 16777215);
    p2p_server_stop(s);

    cfg.max_pending = 7;
    cfg.listen_port = -1;
    s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    CHECK(s->max_pending == 7 && s->max_active_dials == 7);
    p2p_server_stop(s);

    cfg.max_pending = 0;
    cfg.no_dial = true;
    s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    CHECK(s->max_dialed == 0 && s->max_inbound == 50);
    p2p_server_stop(s);
}

static void test_our_hello(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, protos, NPROTOS);
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    p2p_node_t sn = su_node(s);
    rawpeer_t rp;
    CHECK(su_dial(&rp, sn.ep.tcp, sn.pubkey, 3000));
    uint64_t code = 99;
    const uint8_t *p = NULL;
    size_t n = 0;
    /* the raw peer's codec has snappy off: a compressed Hello would not
     * decode as one */
    CHECK_OK(rp_recv(&rp, &code, &p, &n, 3000));
    CHECK(code == P2P_MSG_HELLO);
    static p2p_hello_t h;
    if (code == P2P_MSG_HELLO && p) {
        CHECK_OK(p2p_hello_decode(&h, p, n));
        CHECK(h.version == 5);
        CHECK(strcmp(h.name, "devp2p-c-test") == 0);
        static const char *const names[] = {"eth", "eth", "les", "snap"};
        static const uint32_t versions[] = {67, 68, 4, 1};
        CHECK(h.ncaps == 4);
        for (size_t i = 0; i < 4 && i < h.ncaps; i++)
            CHECK(strcmp(h.caps[i].name, names[i]) == 0 && h.caps[i].version == versions[i]);
        CHECK(h.listen_port == p2p_server_port(s));
        CHECK_MEM(h.id, sn.pubkey, 64);
    }
    rp_close(&rp);
    p2p_server_stop(s);
}

int main(void)
{
    tu_seed(0x5eed0071);
    test_defaults();
    test_our_hello();
    return tu_done("server_hello");
}
