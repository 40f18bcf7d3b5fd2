/*
 * tools/example_chat.c: libdevp2p used as a library, the example of
 * README.md's "Using the library".  Two servers on 127.0.0.1 run a
 * subprotocol "chat" version 1 with two message codes (SAY, ACK); B has A
 * as a static node, so it dials A.  Each side says hello, the other ACKs
 * it from its on_msg callback (the API may be called from callbacks), then
 * B disconnects A with "useless peer" and both sides see the DROP event
 * with that reason (remote_requested on A's side only).  Exit status 0
 * when all of that happened within 10 s; suite test example-chat.
 *
 * Threads: main is the controlling thread (start, send, stop); on_start,
 * on_msg and on_stop run on each peer's connection thread; on_event on
 * each server's run loop (p2p-run).  Hence the atomics in side_t.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "actors/server.h"
#include "crypto/secp.h"

enum { CHAT_SAY = 0, CHAT_ACK = 1 };

typedef struct side {
    const char *name;
    p2p_protocol_t proto;
    p2p_server_t *srv;
    /* Set on the peer threads and the run loop (callbacks), read by main.
     * seq_cst (the defaults): an example favours the simplest order; peer
     * is a reference handed over by exchange, the rest are flags and
     * counters main polls. */
    _Atomic(p2p_peer_t *) peer; /* a reference taken in on_start */
    atomic_int acks, drops, drop_reason, drop_remote;
} side_t;

static int on_start(p2p_peer_t *peer, void *ctx, void **state)
{
    side_t *s = ctx;
    p2p_peer_ref(peer); /* the handle outlives the callback: keep a reference */
    p2p_peer_t *old = atomic_exchange(&s->peer, peer);
    p2p_peer_unref(old); /* NULL is fine */
    return 0;
}

static int on_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                  size_t len)
{
    side_t *s = ctx;
    if (code == CHAT_SAY) {
        printf("%s got: %.*s\n", s->name, (int)len, (const char *)data);
        /* data is valid only during the call; p2p_peer_send copies it */
        return p2p_peer_send(peer, "chat", CHAT_ACK, data, len);
    }
    atomic_fetch_add(&s->acks, 1);
    return 0;
}

static void on_stop(p2p_peer_t *peer, void *ctx, void *state, uint8_t reason)
{
    side_t *s = ctx;
    printf("%s: peer stopped: %s\n", s->name, p2p_disc_reason_str(reason));
}

static void on_event(void *ctx, const p2p_peer_event_t *ev)
{
    side_t *s = ctx;
    if (ev->type != P2P_PEER_EVENT_DROP) return;
    /* the first DROP's details are stored before drops counts it: main
     * reads them once it sees the count (this callback runs on one thread,
     * p2p-run, so nothing else writes them meanwhile) */
    if (atomic_load(&s->drops) == 0) {
        atomic_store(&s->drop_reason, ev->reason);
        atomic_store(&s->drop_remote, ev->remote_requested);
    }
    atomic_fetch_add(&s->drops, 1);
}

static int start(side_t *s, const p2p_node_t *static_node)
{
    s->proto = (p2p_protocol_t){.name = "chat",
                                .version = 1,
                                .length = 2,
                                .ctx = s,
                                .on_start = on_start,
                                .on_msg = on_msg,
                                .on_stop = on_stop};
    p2p_server_config_t cfg = {0};
    int rc = p2p_secp_keygen(cfg.priv);
    if (rc) return rc;
    cfg.max_peers = 10;
    cfg.no_discovery = true;
    cfg.listen_ip = p2p_ip4(127, 0, 0, 1); /* port 0: any free port */
    cfg.protocols = &s->proto;
    cfg.nprotocols = 1;
    cfg.static_nodes = static_node;
    cfg.nstatic = static_node ? 1 : 0;
    cfg.event_cb = on_event;
    cfg.event_ctx = s;
    return p2p_server_start(&s->srv, &cfg);
}

/* Waits up to 10 s for *v >= want. */
static bool wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 1000 && atomic_load(v) < want; i++) usleep(10000);
    return atomic_load(v) >= want;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    side_t a = {.name = "A"}, b = {.name = "B"};
    int rc = start(&a, NULL);
    p2p_node_t a_node;
    if (!rc) p2p_server_self(a.srv, &a_node); /* its enode: 127.0.0.1 and the bound port */
    if (!rc) rc = start(&b, &a_node);
    if (rc) {
        fprintf(stderr, "start: %s\n", p2p_strerror(rc));
        return 1;
    }
    for (int i = 0; i < 1000 && !(atomic_load(&a.peer) && atomic_load(&b.peer)); i++) usleep(10000);
    bool ok = atomic_load(&a.peer) && atomic_load(&b.peer);
    if (ok) {
        static const char ha[] = "hello from A", hb[] = "hello from B";
        ok = p2p_peer_send(atomic_load(&a.peer), "chat", CHAT_SAY, (const uint8_t *)ha,
                           strlen(ha)) == 0 &&
             p2p_peer_send(atomic_load(&b.peer), "chat", CHAT_SAY, (const uint8_t *)hb,
                           strlen(hb)) == 0;
        ok = ok && wait_for(&a.acks, 1) && wait_for(&b.acks, 1);
    }
    if (ok) {
        ok = p2p_peer_disconnect(atomic_load(&b.peer), P2P_DISC_USELESS_PEER) == 0 &&
             wait_for(&a.drops, 1) && wait_for(&b.drops, 1);
        ok = ok && a.drop_reason == P2P_DISC_USELESS_PEER && a.drop_remote &&
             b.drop_reason == P2P_DISC_USELESS_PEER && !b.drop_remote;
    }
    /* the old handle now refuses sends */
    if (ok) ok = p2p_peer_send(atomic_load(&b.peer), "chat", CHAT_SAY, NULL, 0) == P2P_ECLOSED;
    p2p_server_stop(b.srv);
    p2p_server_stop(a.srv);
    p2p_peer_unref(atomic_exchange(&a.peer, NULL));
    p2p_peer_unref(atomic_exchange(&b.peer, NULL));
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
