/*
 * tests/actors/test_server_order.c: what a protocol sends before it ends a
 * connection arrives before the Disconnect, and events keep their order.
 *   1. p2p_peer_send x5, then p2p_peer_disconnect: the remote reads the 5
 *      messages, then Disconnect(requested) (geth's Send returns once
 *      written, so a protocol may send an error and disconnect).
 *   2. a callback that sends 3 messages and returns an error: the remote
 *      reads the 3, then Disconnect(subprotocol error).
 *   3. messages a connection ends without writing (the remote closed
 *      first) are counted in send_unsent: exactly the sends that were
 *      accepted and never reached the wire.
 *   4. peer events: the remote sends 3 messages and Disconnect; every
 *      MSGRECV comes before the peer's DROP (20 rounds).
 *   5. p2p_server_remove_peer returns once the peer left the peer set (as
 *      geth's RemovePeer), even when the remote does not close (the
 *      linger runs out), and at once for a node that is not connected.
 */
#include <stdio.h>
#include <unistd.h>

#include "tests/actors/srv_util.h"

static int on_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *d,
                  size_t n)
{
    (void)ctx;
    (void)state;
    (void)d;
    (void)n;
    if (code != 3) return 0;
    /* code 3: answer with three messages, then fail */
    for (int i = 0; i < 3; i++)
        if (p2p_peer_send(peer, "aaa", 2, (const uint8_t *)"\xc1\x07", 2)) return P2P_EIO;
    return P2P_EPROTO;
}

static p2p_protocol_t proto = {.name = "aaa", .version = 1, .length = 4, .on_msg = on_msg};

static bool peer_hello(rawpeer_t *rp, uint16_t port, const uint8_t *pub)
{
    if (!su_dial(rp, port, pub, 3000)) return false;
    const char *nm[] = {"aaa"};
    uint32_t v[] = {1};
    return rp_exchange_hellos(rp, nm, v, 1, 3000) == 0;
}

/* Reads until Disconnect: *got messages of code `want`, returns the
 * reason or -1 (no Disconnect within 3 s). */
static int read_until_disc(rawpeer_t *rp, uint64_t want, int *got)
{
    *got = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t code;
        const uint8_t *p;
        size_t n;
        if (rp_recv(rp, &code, &p, &n, 3000)) return -1;
        if (code == want) (*got)++;
        if (code == P2P_MSG_DISC) {
            uint8_t r;
            return p2p_disc_decode(&r, p, n, true) == 0 ? r : -1;
        }
    }
    return -1;
}

/* Connects rp to srv as a peer and returns the server's handle of it
 * (release with p2p_peer_unref), or NULL (a failed check). */
static p2p_peer_t *admitted_peer(rawpeer_t *rp, p2p_server_t *srv)
{
    p2p_node_t self = su_node(srv);
    CHECK(peer_hello(rp, p2p_server_port(srv), self.pubkey));
    CHECK(su_wait_peers(srv, 1, 3000));
    uint8_t id[32];
    p2p_keccak256(id, rp->pub, 64);
    p2p_peer_t *pe = NULL;
    if (p2p_server_peer_get(srv, &pe, id) != 0) pe = NULL;
    CHECK(pe != NULL);
    return pe;
}

int main(void)
{
    static su_events_t ev;
    su_events_init(&ev);
    p2p_server_config_t cfg;
    su_config(&cfg, &proto, 1);
    cfg.enable_msg_events = true;
    cfg.event_cb = su_events_cb;
    cfg.event_ctx = &ev;
    p2p_server_t *srv = NULL;
    CHECK_OK(p2p_server_start(&srv, &cfg));
    if (!srv) return tu_done("server_order");
    p2p_node_t self = su_node(srv);
    uint16_t port = p2p_server_port(srv);
    p2p_server_stats_t st;

    /* 1. send x5, then disconnect */
    for (int round = 0; round < 10; round++) {
        rawpeer_t rp;
        p2p_peer_t *pe = admitted_peer(&rp, srv);
        if (!pe) break;
        for (int i = 0; i < 5; i++)
            CHECK_OK(p2p_peer_send(pe, "aaa", 1, (const uint8_t *)"\xc3\x01\x02\x03", 4));
        CHECK_OK(p2p_peer_disconnect(pe, P2P_DISC_REQUESTED));
        p2p_peer_unref(pe);
        int got = 0;
        CHECK(read_until_disc(&rp, 16 + 1, &got) == P2P_DISC_REQUESTED);
        CHECK(got == 5);
        rp_close(&rp);
        CHECK(su_wait_peers(srv, 0, 3000));
    }

    /* 2. a callback sends 3, then fails */
    {
        rawpeer_t rp;
        CHECK(peer_hello(&rp, port, self.pubkey));
        CHECK(su_wait_peers(srv, 1, 3000));
        CHECK_OK(rp_send(&rp, 16 + 3, (const uint8_t *)"\xc0", 1));
        int got = 0;
        CHECK(read_until_disc(&rp, 16 + 2, &got) == P2P_DISC_SUBPROTOCOL_ERROR);
        CHECK(got == 3);
        rp_close(&rp);
        CHECK(su_wait_peers(srv, 0, 3000));
    }
    p2p_server_get_stats(srv, &st);
    CHECK(st.send_unsent == 0);

    /* 3. the remote closes; sends race the peer thread's EOF: whatever was
     * accepted and not written is counted, nothing else */
    uint64_t accepted = 0, before_out = st.msgs_out;
    for (int round = 0; round < 10; round++) {
        rawpeer_t rp;
        p2p_peer_t *pe = admitted_peer(&rp, srv);
        if (!pe) break;
        rp_close(&rp);
        for (int i = 0; i < 20; i++)
            accepted += p2p_peer_send(pe, "aaa", 1, (const uint8_t *)"\xc1\x01", 2) == 0;
        p2p_peer_unref(pe);
        CHECK(su_wait_peers(srv, 0, 3000));
    }
    p2p_server_get_stats(srv, &st);
    printf("after the remote closed: %llu sends accepted, %llu framed, %llu counted unsent\n",
           (unsigned long long)accepted, (unsigned long long)(st.msgs_out - before_out),
           (unsigned long long)st.send_unsent);
    CHECK(st.send_unsent + (st.msgs_out - before_out) == accepted);

    /* 4. MSGRECV before DROP */
    int late = 0;
    for (int round = 0; round < 20; round++) {
        pthread_mutex_lock(&ev.mu);
        ev.n = ev.nmsg = 0;
        pthread_mutex_unlock(&ev.mu);
        rawpeer_t rp;
        CHECK(peer_hello(&rp, port, self.pubkey));
        CHECK(su_wait_peers(srv, 1, 3000));
        for (int i = 0; i < 3; i++) CHECK_OK(rp_send(&rp, 16, (const uint8_t *)"\xc0", 1));
        uint8_t d[4];
        size_t dn;
        CHECK_OK(p2p_disc_encode(d, sizeof d, &dn, P2P_DISC_REQUESTED));
        CHECK_OK(rp_send(&rp, P2P_MSG_DISC, d, dn));
        CHECK(su_wait_peers(srv, 0, 3000));
        p2p_peer_event_t drop;
        CHECK(su_events_find(&ev, &drop, P2P_PEER_EVENT_DROP, NULL, 3000));
        rp_close(&rp);
        pthread_mutex_lock(&ev.mu);
        int idrop = -1, nrecv = 0, last_recv = -1;
        for (size_t i = 0; i < ev.n; i++) {
            if (ev.ev[i].type == P2P_PEER_EVENT_DROP && idrop < 0) idrop = (int)i;
            if (ev.ev[i].type == P2P_PEER_EVENT_MSGRECV) {
                nrecv++;
                last_recv = (int)i;
            }
        }
        pthread_mutex_unlock(&ev.mu);
        CHECK(idrop >= 0 && nrecv == 3);
        late += last_recv > idrop;
    }
    CHECK(late == 0);

    /* 5. remove_peer waits for the peer to leave */
    {
        rawpeer_t rp;
        CHECK(peer_hello(&rp, port, self.pubkey));
        CHECK(su_wait_peers(srv, 1, 3000));
        uint8_t id[32];
        p2p_keccak256(id, rp.pub, 64);
        uint64_t t0 = p2p_now_ns();
        CHECK_OK(p2p_server_remove_peer(srv, id));
        uint64_t took = p2p_now_ns() - t0;
        CHECK(p2p_server_peer_count(srv) == 0);
        printf("remove_peer returned after %.1f ms (the remote kept its end open)\n",
               (double)took / 1e6);
        int got = 0;
        CHECK(read_until_disc(&rp, 16, &got) == P2P_DISC_REQUESTED);
        rp_close(&rp);
        t0 = p2p_now_ns();
        CHECK_OK(p2p_server_remove_peer(srv, id)); /* not connected: no wait */
        CHECK(p2p_now_ns() - t0 < 500 * P2P_NS_PER_MS);
    }
    p2p_server_stop(srv);
    return tu_done("server_order");
}
