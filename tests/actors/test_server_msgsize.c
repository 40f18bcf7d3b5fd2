/*
 * tests/actors/test_server_msgsize.c: messages at the size limit.  Two
 * servers with max_msg_size = 4096 run "echo/1" over a snappy session; A
 * sends random (incompressible) and compressible payloads of every length
 * from 4096 - 24 to 4096 + 8 through p2p_peer_send, and B echoes each one.
 * Each send either is refused with P2P_ETOOBIG (rlp(code) + payload over
 * the limit) or its echo arrives intact; the connection is never dropped
 * (no DROP event, no protocol or frame error on either side, one peer
 * each at the end).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "tests/actors/srv_util.h"

#define MAX_MSG 4096
#define LO (MAX_MSG - 24)
#define HI (MAX_MSG + 8)

typedef struct echo_ctx {
    bool echo;
    _Atomic uint32_t got;   /* A: echoes received */
    _Atomic uint32_t bad;   /* A: wrong content */
    _Atomic uint32_t efail; /* B: echo sends that failed */
    uint8_t want[HI];
    _Atomic size_t want_len;
} echo_ctx_t;

static int on_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                  size_t len)
{
    echo_ctx_t *e = ctx;
    if (e->echo) {
        int rc = p2p_peer_send(peer, "echo", 1, data, len);
        if (rc && rc != P2P_EFULL) atomic_fetch_add(&e->efail, 1);
        return rc == P2P_EFULL ? rc : 0;
    }
    if (code != 1 || len != atomic_load(&e->want_len) || memcmp(data, e->want, len) != 0)
        atomic_fetch_add(&e->bad, 1);
    atomic_fetch_add(&e->got, 1);
    return 0;
}

int main(void)
{
    echo_ctx_t *ea = calloc(1, sizeof *ea), *eb = calloc(1, sizeof *eb);
    eb->echo = true;
    p2p_protocol_t pa = {"echo", 1, 2, ea, NULL, on_msg, NULL};
    p2p_protocol_t pb = {"echo", 1, 2, eb, NULL, on_msg, NULL};
    su_events_t *eva = calloc(1, sizeof *eva), *evb = calloc(1, sizeof *evb);
    su_events_init(eva);
    su_events_init(evb);

    p2p_server_config_t cb;
    su_config(&cb, &pb, 1);
    cb.max_msg_size = MAX_MSG;
    cb.event_cb = su_events_cb;
    cb.event_ctx = evb;
    p2p_server_t *b = NULL;
    CHECK_OK(p2p_server_start(&b, &cb));
    p2p_node_t nb = su_node(b);

    p2p_server_config_t ca;
    su_config(&ca, &pa, 1);
    ca.max_msg_size = MAX_MSG;
    ca.static_nodes = &nb;
    ca.nstatic = 1;
    ca.event_cb = su_events_cb;
    ca.event_ctx = eva;
    p2p_server_t *a = NULL;
    CHECK_OK(p2p_server_start(&a, &ca));
    p2p_node_t na = su_node(a);
    CHECK(su_wait_peers(a, 1, 5000));
    CHECK(su_wait_peers(b, 1, 5000));

    p2p_peer_t *peer = NULL;
    CHECK_OK(p2p_server_peer_get(a, &peer, nb.id));
    unsigned sent = 0, toobig = 0;
    uint64_t end = p2p_now_ns() + 30 * P2P_NS_PER_S;
    for (int round = 0; round < 2 && peer; round++) {
        for (size_t len = LO; len <= HI && p2p_now_ns() < end; len++) {
            if (round == 0)
                tu_rand_bytes(ea->want, len);
            else
                memset(ea->want, (int)(len & 0xff), len);
            atomic_store(&ea->want_len, len);
            uint32_t got0 = atomic_load(&ea->got);
            int rc = p2p_peer_send(peer, "echo", 0, ea->want, len);
            /* code 0 of echo is message code 0x10: rlp is one byte */
            if (len + 1 > MAX_MSG) {
                CHECK_ERR(rc, P2P_ETOOBIG);
                toobig++;
                continue;
            }
            CHECK_OK(rc);
            if (rc) break;
            sent++;
            while (atomic_load(&ea->got) == got0 && p2p_now_ns() < end) usleep(200);
            CHECK(atomic_load(&ea->got) == got0 + 1);
        }
    }
    printf("msgsize: %u echoed, %u refused with P2P_ETOOBIG\n", sent, toobig);
    CHECK(sent == 2 * (MAX_MSG - 1 - LO + 1));
    CHECK(toobig == 2 * (HI - MAX_MSG + 1));
    CHECK(atomic_load(&ea->bad) == 0);
    CHECK(atomic_load(&eb->efail) == 0);
    /* the connection survived every message */
    CHECK(p2p_server_peer_count(a) == 1);
    CHECK(p2p_server_peer_count(b) == 1);
    CHECK(!su_events_find(eva, NULL, P2P_PEER_EVENT_DROP, nb.id, 0));
    CHECK(!su_events_find(evb, NULL, P2P_PEER_EVENT_DROP, na.id, 0));
    p2p_server_stats_t sa, sb;
    p2p_server_get_stats(a, &sa);
    p2p_server_get_stats(b, &sb);
    CHECK(sa.send_toobig == toobig);
    CHECK(sb.send_toobig == 0);
    CHECK(sa.frame_errors == 0 && sb.frame_errors == 0);
    CHECK(sa.proto_errors == 0 && sb.proto_errors == 0);
    CHECK(sa.net_errors == 0 && sb.net_errors == 0);
    p2p_peer_unref(peer);
    p2p_server_stop(a);
    p2p_server_stop(b);
    free(ea);
    free(eb);
    free(eva);
    free(evb);
    return tu_done("server_msgsize");
}
