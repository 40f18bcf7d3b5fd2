/* actors/checks: every checkpoint outcome with its Disconnect reason, the
 * trusted exemptions, and the identity check against Keccak-256. */
#include "actors/checks.h"

#include "crypto/keccak.h"
#include "tests/tu.h"

static uint8_t ids[200][32];

static p2p_checks_t make(unsigned max_peers, unsigned max_inbound, unsigned nprotocols)
{
    p2p_checks_config_t cfg = {
        .max_peers = max_peers, .max_inbound = max_inbound, .nprotocols = nprotocols, .seed = 9};
    memset(cfg.self, 0xee, 32);
    p2p_checks_t c;
    CHECK_OK(p2p_checks_init(&c, &cfg));
    return c;
}

static void test_post_handshake(void)
{
    p2p_checks_t c = make(3, 2, 1);
    uint8_t reason = 0xaa;
    unsigned flags;

    /* Admitted while room remains; the peer set grows. */
    flags = P2P_CONN_DYN_DIALED;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[0]));
    CHECK(reason == 0xaa);
    CHECK(flags == P2P_CONN_DYN_DIALED);
    CHECK_OK(p2p_checks_add(&c, ids[0], flags));
    CHECK_ERR(p2p_checks_add(&c, ids[0], flags), P2P_EEXIST);

    /* Already connected. */
    flags = P2P_CONN_INBOUND;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[0]));
    CHECK(reason == P2P_DISC_ALREADY_CONNECTED);

    /* Self. */
    uint8_t self[32];
    memset(self, 0xee, 32);
    flags = P2P_CONN_STATIC_DIALED;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, self));
    CHECK(reason == P2P_DISC_SELF);

    /* Inbound limit (2): two inbound peers, the third inbound is refused with
     * too many peers while a dialed one still fits. */
    flags = P2P_CONN_INBOUND;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[1]));
    CHECK_OK(p2p_checks_add(&c, ids[1], flags));
    CHECK(p2p_checks_inbound_count(&c) == 1);
    c.cfg.max_peers = 10;
    CHECK_OK(p2p_checks_add(&c, ids[2], P2P_CONN_INBOUND));
    CHECK(p2p_checks_inbound_count(&c) == 2);
    flags = P2P_CONN_INBOUND;
    reason = 0xaa;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[3]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    /* The inbound limit comes before already connected (geth's order). */
    flags = P2P_CONN_INBOUND;
    reason = 0xaa;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[1]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    flags = P2P_CONN_DYN_DIALED;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[3]));
    /* A trusted inbound peer passes the inbound limit. */
    CHECK_OK(p2p_checks_add_trusted(&c, ids[4]));
    flags = P2P_CONN_INBOUND;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[4]));
    CHECK(flags == (P2P_CONN_INBOUND | P2P_CONN_TRUSTED));
    c.cfg.max_peers = 3;

    /* MaxPeers reached (3 peers): too many peers, unless trusted. */
    CHECK(p2p_checks_peer_count(&c) == 3);
    flags = P2P_CONN_DYN_DIALED;
    reason = 0xaa;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[5]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    flags = P2P_CONN_DYN_DIALED;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[4]));
    CHECK(flags & P2P_CONN_TRUSTED);
    CHECK_OK(p2p_checks_add(&c, ids[4], flags));
    CHECK(p2p_checks_peer_count(&c) == 4);
    /* Trusted but already connected is still refused. */
    flags = P2P_CONN_DYN_DIALED;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[4]));
    CHECK(reason == P2P_DISC_ALREADY_CONNECTED);
    /* Too many peers is checked before already connected for untrusted. */
    flags = P2P_CONN_DYN_DIALED;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[0]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    /* Self, when full and untrusted, is reported as too many peers (order). */
    flags = 0;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, self));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);

    /* Removing peers frees room and the inbound count. */
    CHECK(p2p_checks_remove(&c, ids[1]));
    CHECK(!p2p_checks_remove(&c, ids[1]));
    CHECK(p2p_checks_inbound_count(&c) == 1);
    CHECK(p2p_checks_remove(&c, ids[4]));
    CHECK(p2p_checks_peer_count(&c) == 2);
    flags = P2P_CONN_DYN_DIALED;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[5]));
    p2p_checks_free(&c);
}

static void test_trusted_set(void)
{
    p2p_checks_t c = make(1, 1, 0);
    CHECK_OK(p2p_checks_add(&c, ids[0], P2P_CONN_INBOUND));
    CHECK(p2p_checks_peer_flags(&c, ids[0]) == P2P_CONN_INBOUND);
    CHECK(p2p_checks_peer_flags(&c, ids[1]) == -1);
    /* addtrusted sets the flag on a connected peer; removetrusted clears it. */
    CHECK_OK(p2p_checks_add_trusted(&c, ids[0]));
    CHECK(p2p_checks_is_trusted(&c, ids[0]));
    CHECK(p2p_checks_peer_flags(&c, ids[0]) == (P2P_CONN_INBOUND | P2P_CONN_TRUSTED));
    p2p_checks_remove_trusted(&c, ids[0]);
    CHECK(!p2p_checks_is_trusted(&c, ids[0]));
    CHECK(p2p_checks_peer_flags(&c, ids[0]) == P2P_CONN_INBOUND);
    /* Full (1 of 1): a trusted newcomer is admitted, others are not. */
    CHECK_OK(p2p_checks_add_trusted(&c, ids[1]));
    unsigned flags = P2P_CONN_INBOUND;
    uint8_t reason;
    CHECK(p2p_checks_post_handshake(&c, &reason, &flags, ids[1]));
    CHECK(flags & P2P_CONN_TRUSTED);
    flags = P2P_CONN_INBOUND;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[2]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    CHECK(!(flags & P2P_CONN_TRUSTED));
    /* Removing from the trusted set takes the exemption away. */
    p2p_checks_remove_trusted(&c, ids[1]);
    flags = P2P_CONN_INBOUND;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[1]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    /* ... also from a connection that carries a stale trusted flag (a
     * static dial stamped by the dialer when the node was trusted) */
    flags = P2P_CONN_STATIC_DIALED | P2P_CONN_TRUSTED;
    reason = 0xaa;
    CHECK(!p2p_checks_post_handshake(&c, &reason, &flags, ids[1]));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    CHECK(flags == P2P_CONN_STATIC_DIALED);
    p2p_checks_free(&c);
}

/* The trusted set holds at most P2P_CHECKS_MAX_TRUSTED IDs: one more is
 * P2P_EFULL and stays untrusted; one already in it is accepted again; a
 * removal makes room. */
static void test_trusted_limit(void)
{
    p2p_checks_t c = make(1, 1, 0);
    uint8_t id[32] = {0};
    unsigned bad = 0;
    for (unsigned i = 0; i < P2P_CHECKS_MAX_TRUSTED; i++) {
        memcpy(id, &i, sizeof i);
        if (p2p_checks_add_trusted(&c, id)) bad++;
    }
    CHECK(bad == 0);
    uint8_t more[32];
    memset(more, 0xab, 32);
    CHECK_ERR(p2p_checks_add_trusted(&c, more), P2P_EFULL);
    CHECK(!p2p_checks_is_trusted(&c, more));
    memset(id, 0, 32);
    CHECK_OK(p2p_checks_add_trusted(&c, id));
    p2p_checks_remove_trusted(&c, id);
    CHECK_OK(p2p_checks_add_trusted(&c, more));
    CHECK(p2p_checks_is_trusted(&c, more));
    p2p_checks_free(&c);
}

static void test_add_peer(void)
{
    /* Protocols configured: no matching capability -> useless peer, checked
     * before the limits. */
    p2p_checks_t c = make(2, 1, 2);
    uint8_t reason = 0xaa;
    unsigned f;
    CHECK(!p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_DYN_DIALED, &f), ids[0], 0));
    CHECK(reason == P2P_DISC_USELESS_PEER);
    CHECK(p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_DYN_DIALED, &f), ids[0], 1));
    CHECK_OK(p2p_checks_add(&c, ids[0], P2P_CONN_DYN_DIALED));
    /* The post-handshake checks run again: a racing duplicate is refused. */
    CHECK(!p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_INBOUND, &f), ids[0], 3));
    CHECK(reason == P2P_DISC_ALREADY_CONNECTED);
    CHECK_OK(p2p_checks_add(&c, ids[1], P2P_CONN_INBOUND));
    CHECK(!p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_STATIC_DIALED, &f), ids[2], 1));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    CHECK(!p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_STATIC_DIALED, &f), ids[2], 0));
    CHECK(reason == P2P_DISC_USELESS_PEER);
    /* The trusted set decides, not the flag the connection carries: a
     * static dial stamped trusted (a node trusted at startup) is refused
     * once the node left the set, and admitted while it is in it. */
    f = P2P_CONN_STATIC_DIALED | P2P_CONN_TRUSTED;
    reason = 0xaa;
    CHECK(!p2p_checks_add_peer(&c, &reason, &f, ids[2], 1));
    CHECK(reason == P2P_DISC_TOO_MANY_PEERS);
    CHECK(f == P2P_CONN_STATIC_DIALED);
    CHECK_OK(p2p_checks_add_trusted(&c, ids[2]));
    f = P2P_CONN_STATIC_DIALED;
    CHECK(p2p_checks_add_peer(&c, &reason, &f, ids[2], 1));
    CHECK(f == (P2P_CONN_STATIC_DIALED | P2P_CONN_TRUSTED));
    p2p_checks_free(&c);

    /* No protocols configured: every peer is useful. */
    c = make(2, 1, 0);
    CHECK(p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_INBOUND, &f), ids[0], 0));
    uint8_t self[32];
    memset(self, 0xee, 32);
    CHECK(!p2p_checks_add_peer(&c, &reason, (f = P2P_CONN_DYN_DIALED, &f), self, 0));
    CHECK(reason == P2P_DISC_SELF);
    p2p_checks_free(&c);
}

static void test_identity(void)
{
    uint8_t pub[64], id[32], reason = 0xaa;
    tu_rand_bytes(pub, sizeof pub);
    p2p_keccak256(id, pub, sizeof pub);
    CHECK(p2p_checks_identity(&reason, pub, 64, id));
    CHECK(reason == 0xaa);
    /* A different key than the handshake proved: unexpected identity. */
    uint8_t other[64];
    memcpy(other, pub, 64);
    other[63] ^= 1;
    CHECK(!p2p_checks_identity(&reason, other, 64, id));
    CHECK(reason == P2P_DISC_UNEXPECTED_IDENTITY);
    /* The ID itself instead of its hash is unexpected too. */
    uint8_t wrong_id[32];
    memcpy(wrong_id, pub, 32);
    CHECK(!p2p_checks_identity(&reason, pub, 64, wrong_id));
    CHECK(reason == P2P_DISC_UNEXPECTED_IDENTITY);
    /* Wrong length or all zero: invalid identity. */
    CHECK(!p2p_checks_identity(&reason, pub, 63, id));
    CHECK(reason == P2P_DISC_INVALID_IDENTITY);
    reason = 0;
    CHECK(!p2p_checks_identity(&reason, pub, 65, id));
    CHECK(reason == P2P_DISC_INVALID_IDENTITY);
    reason = 0;
    CHECK(!p2p_checks_identity(&reason, pub, 0, id));
    CHECK(reason == P2P_DISC_INVALID_IDENTITY);
    reason = 0;
    CHECK(!p2p_checks_identity(&reason, NULL, 64, id));
    CHECK(reason == P2P_DISC_INVALID_IDENTITY);
    uint8_t zero[64] = {0}, zid[32];
    p2p_keccak256(zid, zero, 64);
    reason = 0;
    CHECK(!p2p_checks_identity(&reason, zero, 64, zid));
    CHECK(reason == P2P_DISC_INVALID_IDENTITY);
    /* A known Keccak-256 value: the enode ID of the ENR vector key
     * (PROTOCOL.md: ID a448f24c...17f7 for key b71c71a6...f291). */
    uint8_t vpub[64], vid[32];
    tu_unhex(vpub, 64,
             "ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd31387574077f301b421bc"
             "84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f");
    tu_unhex(vid, 32, "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7");
    reason = 0xaa;
    CHECK(p2p_checks_identity(&reason, vpub, 64, vid));
    CHECK(reason == 0xaa);

    CHECK(strcmp(p2p_disc_reason_str(P2P_DISC_TOO_MANY_PEERS), "too many peers") == 0);
}

int main(void)
{
    for (int i = 0; i < 200; i++) {
        memset(ids[i], 0, 32);
        ids[i][0] = (uint8_t)i;
        ids[i][1] = (uint8_t)(i >> 8);
        ids[i][31] = 0x5a;
    }
    test_post_handshake();
    test_trusted_set();
    test_trusted_limit();
    test_add_peer();
    test_identity();
    return tu_done("checks");
}
