/*
 * tests/actors/test_server_echo.c: two servers on loopback.  A dials B as a
 * static node; both run the test protocol "echo/1" (length 2); the
 * connection is snappy (both Hellos are v5).  The test thread sends 10,000
 * messages of varying size through A's peer handle (code 0); B's callback
 * echoes each one back (code 1) with p2p_peer_send from its peer thread,
 * asking for redelivery (P2P_EFULL) when its backlog is full; A's callback
 * checks content and order.  Also checks the peer snapshot, the ADD / DROP
 * and message events, RemovePeer with reason "requested", and the counters.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "tests/actors/srv_util.h"

#define N_MSGS 10000

typedef struct echo_ctx {
    bool echo;                /* B: echo code 0 as code 1 */
    _Atomic uint32_t next;    /* A: next expected sequence number */
    _Atomic uint32_t bad;     /* A: content or order errors */
    _Atomic uint32_t started; /* on_start calls */
    _Atomic uint32_t stopped; /* on_stop calls */
    _Atomic int stop_reason;
} echo_ctx_t;

static size_t msg_len(uint32_t i)
{
    return 8 + (i * 37u) % 600;
}

static void msg_fill(uint8_t *buf, uint32_t i)
{
    size_t n = msg_len(i);
    memcpy(buf, &i, 4);
    memcpy(buf + 4, "echo", 4);
    for (size_t k = 8; k < n; k++) buf[k] = (uint8_t)((k / 16) ^ i); /* compressible */
}

static int on_start(p2p_peer_t *peer, void *ctx, void **state)
{
    echo_ctx_t *e = ctx;
    *state = e;
    atomic_fetch_add(&e->started, 1);
    return 0;
}

static int on_msg(p2p_peer_t *peer, void *ctx, void *state, uint64_t code, const uint8_t *data,
                  size_t len)
{
    echo_ctx_t *e = state;
    if (e->echo) {
        if (code != 0) return P2P_EPROTO;
        return p2p_peer_send(peer, "echo", 1, data, len); /* P2P_EFULL: redelivered */
    }
    if (code != 1) return P2P_EPROTO;
    uint32_t want = atomic_load(&e->next);
    uint8_t exp[1024];
    msg_fill(exp, want);
    if (len != msg_len(want) || memcmp(exp, data, len) != 0) atomic_fetch_add(&e->bad, 1);
    atomic_store(&e->next, want + 1);
    return 0;
}

static void on_stop(p2p_peer_t *peer, void *ctx, void *state, uint8_t reason)
{
    echo_ctx_t *e = ctx;
    atomic_store(&e->stop_reason, reason);
    atomic_fetch_add(&e->stopped, 1);
}

/* Two servers on ::1: the address a server names itself by (the listening
 * address when it is specific, else the external IP or 127.0.0.1), and a
 * static dial over IPv6 with the peer's addresses as IPv6. */
static void test_ipv6(void)
{
    p2p_ip_t v6;
    CHECK_OK(p2p_ip_parse(&v6, "::1"));
    p2p_server_config_t cb, ca;
    su_config(&cb, NULL, 0);
    cb.listen_ip = v6;
    p2p_server_t *b = NULL, *a = NULL;
    CHECK_OK(p2p_server_start(&b, &cb));
    if (!b) return;
    p2p_node_t nb;
    p2p_server_self(b, &nb);
    CHECK(p2p_ip_equal(&nb.ep.ip, &v6) && nb.ep.tcp == p2p_server_port(b));
    su_config(&ca, NULL, 0);
    ca.listen_ip = v6;
    ca.external_ip = p2p_ip4(10, 1, 2, 3); /* named, never dialed */
    ca.static_nodes = &nb;
    ca.nstatic = 1;
    CHECK_OK(p2p_server_start(&a, &ca));
    if (a) {
        p2p_node_t na;
        p2p_server_self(a, &na);
        CHECK(p2p_ip_equal(&na.ep.ip, &ca.external_ip));
        CHECK(su_wait_peers(a, 1, 5000));
        CHECK(su_wait_peers(b, 1, 5000));
        p2p_peer_info_t info[2];
        size_t n = 0;
        CHECK_OK(p2p_server_peers(a, info, 2, &n));
        CHECK(n == 1 && info[0].static_dialed && !info[0].inbound);
        CHECK(n == 1 && p2p_ip_equal(&info[0].remote_ip, &v6) &&
              info[0].remote_port == p2p_server_port(b));
        CHECK(n == 1 && p2p_ip_equal(&info[0].local_ip, &v6));
        p2p_server_stop(a);
    }
    /* unspecified listening address, no external IP: 127.0.0.1 */
    p2p_server_stop(b);
    su_config(&cb, NULL, 0);
    CHECK_OK(p2p_ip_parse(&cb.listen_ip, "::"));
    b = NULL;
    CHECK_OK(p2p_server_start(&b, &cb));
    if (b) {
        p2p_server_self(b, &nb);
        p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
        CHECK(p2p_ip_equal(&nb.ep.ip, &lo));
        /* and "::" takes IPv4: a dial to 127.0.0.1 lands */
        su_config(&ca, NULL, 0);
        ca.static_nodes = &nb;
        ca.nstatic = 1;
        a = NULL;
        CHECK_OK(p2p_server_start(&a, &ca));
        if (a) {
            CHECK(su_wait_peers(b, 1, 5000));
            p2p_peer_info_t info[2];
            size_t n = 0;
            CHECK_OK(p2p_server_peers(b, info, 2, &n));
            CHECK(n == 1 && info[0].inbound && p2p_ip_equal(&info[0].remote_ip, &lo));
            p2p_server_stop(a);
        }
        p2p_server_stop(b);
    }
}

int main(void)
{
    int fds0 = su_count_fds();
    echo_ctx_t ea = {.echo = false}, eb = {.echo = true};
    p2p_protocol_t pa = {"echo", 1, 2, &ea, on_start, on_msg, on_stop};
    p2p_protocol_t pb = {"echo", 1, 2, &eb, on_start, on_msg, on_stop};
    /* A also offers a protocol B lacks: matching must still find echo */
    p2p_protocol_t pa2[2] = {pa, {"zzz", 3, 4, NULL, NULL, NULL, NULL}};
    su_events_t *eva = calloc(1, sizeof *eva), *evb = calloc(1, sizeof *evb);
    su_events_init(eva);
    su_events_init(evb);

    p2p_server_config_t cb;
    su_config(&cb, &pb, 1);
    cb.event_cb = su_events_cb;
    cb.event_ctx = evb;
    cb.enable_msg_events = true;
    p2p_server_t *b = NULL;
    /* a backlog the outbound mailbox cannot hold is refused at start */
    cb.out_max_msgs = P2P_MAILBOX_CAP_MAX + 1;
    CHECK_ERR(p2p_server_start(&b, &cb), P2P_EINVAL);
    CHECK(b == NULL);
    cb.out_max_msgs = 0;
    CHECK_OK(p2p_server_start(&b, &cb));
    CHECK(p2p_server_port(b) != 0);
    p2p_node_t nb = su_node(b);

    p2p_server_config_t ca;
    su_config(&ca, pa2, 2);
    ca.static_nodes = &nb;
    ca.nstatic = 1;
    ca.event_cb = su_events_cb;
    ca.event_ctx = eva;
    p2p_server_t *a = NULL;
    CHECK_OK(p2p_server_start(&a, &ca));
    p2p_node_t na = su_node(a);

    CHECK(su_wait_peers(a, 1, 5000));
    CHECK(su_wait_peers(b, 1, 5000));
    CHECK(su_events_find(eva, NULL, P2P_PEER_EVENT_ADD, nb.id, 2000));
    CHECK(su_events_find(evb, NULL, P2P_PEER_EVENT_ADD, na.id, 2000));

    p2p_peer_info_t info[4];
    size_t n = 0;
    CHECK_OK(p2p_server_peers(a, info, 4, &n));
    CHECK(n == 1);
    if (n == 1) {
        CHECK_MEM(info[0].id, nb.id, 32);
        CHECK(!info[0].inbound);
        CHECK(info[0].static_dialed);
        CHECK(strcmp(info[0].name, "devp2p-c-test") == 0);
        CHECK(info[0].ncaps == 1);
        CHECK(info[0].remote_version == 5);
        CHECK(info[0].remote_port == p2p_server_port(b));
    }
    CHECK_OK(p2p_server_peers(b, info, 4, &n));
    CHECK(n == 1);
    if (n == 1) {
        CHECK_MEM(info[0].id, na.id, 32);
        CHECK(info[0].inbound);
        CHECK(info[0].ncaps == 2);
    }

    p2p_peer_t *peer = NULL;
    CHECK_OK(p2p_server_peer_get(a, &peer, nb.id));
    CHECK(peer != NULL);
    if (peer) {
        CHECK_MEM(p2p_peer_id(peer), nb.id, 32);
        CHECK_ERR(p2p_peer_send(peer, "nope", 0, (const uint8_t *)"x", 1), P2P_ENOTFOUND);
        CHECK_ERR(p2p_peer_send(peer, "echo", 2, (const uint8_t *)"x", 1), P2P_ERANGE);
        uint64_t t0 = p2p_now_ns(), end = t0 + 50 * P2P_NS_PER_S;
        uint8_t buf[1024];
        unsigned full = 0;
        for (uint32_t i = 0; i < N_MSGS && p2p_now_ns() < end;) {
            msg_fill(buf, i);
            int rc = p2p_peer_send(peer, "echo", 0, buf, msg_len(i));
            if (rc == P2P_EFULL) {
                full++;
                usleep(500);
                continue;
            }
            CHECK_OK(rc);
            if (rc) break;
            i++;
        }
        while (atomic_load(&ea.next) < N_MSGS && p2p_now_ns() < end) usleep(1000);
        double ms = (double)(p2p_now_ns() - t0) / 1e6;
        CHECK(atomic_load(&ea.next) == N_MSGS);
        CHECK(atomic_load(&ea.bad) == 0);
        printf("echo: %u messages in %.1f ms (%.0f msg/s round trips), %u EFULL retries\n",
               atomic_load(&ea.next), ms, atomic_load(&ea.next) / (ms / 1000.0), full);
    }
    /* A's peer thread counts a message in msgs_in once its callback has
     * returned: the last echo's callback may have run (ea.next) before
     * that count, so it is waited for (bounded), then checked exactly */
    CHECK(SU_WAIT_STAT(a, msgs_in, N_MSGS, 2000));
    /* msgs_out counts a message once written whole: the remote may have
     * read (and echoed) the last one before the writer counted it */
    CHECK(SU_WAIT_STAT(a, msgs_out, N_MSGS, 2000));
    CHECK(SU_WAIT_STAT(b, msgs_out, N_MSGS, 2000));
    p2p_server_stats_t sa, sb;
    p2p_server_get_stats(a, &sa);
    p2p_server_get_stats(b, &sb);
    CHECK(sa.msgs_out == N_MSGS);
    CHECK(sa.msgs_in == N_MSGS);
    CHECK(sb.msgs_in == N_MSGS);
    CHECK(sb.msgs_out == N_MSGS);
    /* snappy: the compressible payloads shrink on the wire */
    uint64_t payload = 0;
    for (uint32_t i = 0; i < N_MSGS; i++) payload += msg_len(i);
    CHECK(sa.bytes_out < payload);
    printf("payload %llu bytes, wire %llu bytes (A->B)\n", (unsigned long long)payload,
           (unsigned long long)sa.bytes_out);
    /* B has message events on */
    p2p_peer_event_t ev;
    CHECK(su_events_find(evb, &ev, P2P_PEER_EVENT_MSGRECV, na.id, 2000));
    CHECK(strcmp(ev.protocol, "echo") == 0 && ev.msg_code == 0 && ev.msg_size == msg_len(0));
    CHECK(su_events_find(evb, &ev, P2P_PEER_EVENT_MSGSEND, na.id, 2000));
    CHECK(ev.msg_code == 1);
    CHECK(!su_events_find(eva, NULL, P2P_PEER_EVENT_MSGRECV, NULL, 0));

    /* RemovePeer on B: A sees Disconnect "requested" */
    CHECK_OK(p2p_server_remove_peer(b, na.id));
    CHECK(su_events_find(eva, &ev, P2P_PEER_EVENT_DROP, nb.id, 3000));
    CHECK(ev.reason == P2P_DISC_REQUESTED);
    CHECK(ev.remote_requested);
    CHECK(su_events_find(evb, &ev, P2P_PEER_EVENT_DROP, na.id, 3000));
    CHECK(ev.reason == P2P_DISC_REQUESTED && !ev.remote_requested);
    CHECK(atomic_load(&eb.stop_reason) == P2P_DISC_REQUESTED);
    if (peer) {
        uint64_t end = p2p_now_ns() + 3 * P2P_NS_PER_S;
        int rc;
        while ((rc = p2p_peer_send(peer, "echo", 0, (const uint8_t *)"x", 1)) == 0 &&
               p2p_now_ns() < end)
            usleep(1000);
        CHECK_ERR(rc, P2P_ECLOSED);
    }
    /* counted once written: a's side may see it first */
    CHECK(SU_WAIT_STAT(b, disc_sent[P2P_DISC_REQUESTED], 1, 2000));
    p2p_server_get_stats(b, &sb);
    CHECK(sb.disc_sent[P2P_DISC_REQUESTED] == 1);
    CHECK(SU_WAIT_STAT(a, disc_recv[P2P_DISC_REQUESTED], 1, 1000));

    p2p_server_stop(a);
    p2p_server_stop(b);
    /* handles held past p2p_server_stop stay valid: sends and disconnects
     * fail with P2P_ECLOSED without touching the freed server */
    if (peer) {
        CHECK_ERR(p2p_peer_send(peer, "echo", 0, (const uint8_t *)"x", 1), P2P_ECLOSED);
        CHECK_ERR(p2p_peer_send(peer, "nope", 0, (const uint8_t *)"x", 1), P2P_ECLOSED);
        CHECK_ERR(p2p_peer_disconnect(peer, P2P_DISC_REQUESTED), P2P_ECLOSED);
        CHECK_MEM(p2p_peer_id(peer), nb.id, 32);
        p2p_peer_unref(peer);
    }
    CHECK(atomic_load(&ea.started) == atomic_load(&ea.stopped));
    CHECK(atomic_load(&eb.started) == atomic_load(&eb.stopped));
    test_ipv6();
    CHECK(su_count_fds() == fds0);
    free(eva);
    free(evb);
    return tu_done("server_echo");
}
