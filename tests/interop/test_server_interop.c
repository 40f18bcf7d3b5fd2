/*
 * tests/interop/test_server_interop.c: our server against
 * @ethereumjs/devp2p 10 (tests/interop/peer.mjs through jspeer) on
 * loopback, both directions at once, snap/1 on every side:
 *   J1  we dial it (static node)         J2  it dials us (--dial)
 * Checks: the Hello exchange (version 5, client names, snap/1 matched at
 * offset 16 with length 8 on their side and in our peer snapshot), pings
 * answered both ways for the whole hold time (>= 30 s by default: their
 * ping every 15 s is answered by our pong, ours by theirs), no drop while
 * held; then clean disconnects both ways with the right reasons: we
 * RemovePeer J1 (they read 0x00 "requested", sent snappy-compressed as
 * geth does) and J2 quits (SIGTERM: a bare, uncompressed 0x08 that we must
 * decode); a third peer J3 dials us and reads 0x08 when our server stops.
 *
 * Hold time: P2P_INTEROP_SECONDS (default 35; at least 16, so that each
 * side's 15 s ping comes at least once and every ping/pong check counts
 * one or more).  The JS peers
 * are killed on exit (jspeer_free) and exit by themselves when their
 * --duration ends or this process dies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/server.h"
#include "core/clock.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tests/actors/srv_util.h"
#include "tests/interop/jspeer.h"
#include "tests/tu.h"
#include "wire/enode.h"

#define T_START 20000
#define T_EVENT 20000

static const p2p_protocol_t proto_snap = {"snap", 1, 8, NULL, NULL, NULL, NULL};

static void check_added(jspeer_t *j, const char *our_id, bool inbound)
{
    json_t *ev = jspeer_wait(j, 0, T_EVENT, "peer:added", "id", our_id);
    CHECK(ev != NULL);
    if (!ev) return;
    CHECK(json_is_boolean(json_object_get(ev, "inbound")) &&
          json_is_true(json_object_get(ev, "inbound")) == inbound);
    json_t *h = json_object_get(ev, "hello");
    CHECK(json_integer_value(json_object_get(h, "version")) == 5);
    const char *cid = json_string_value(json_object_get(h, "clientId"));
    CHECK(cid && strcmp(cid, "devp2p-c-interop") == 0);
    const char *cap0 = json_string_value(json_array_get(json_object_get(h, "caps"), 0));
    CHECK(cap0 && strcmp(cap0, "snap/1") == 0);
    json_t *p0 = json_array_get(json_object_get(ev, "protocols"), 0);
    const char *pc = json_string_value(json_object_get(p0, "cap"));
    CHECK(pc && strcmp(pc, "snap/1") == 0);
    CHECK(json_integer_value(json_object_get(p0, "offset")) == 16);
    CHECK(json_integer_value(json_object_get(p0, "length")) == 8);
}

static void parse_id(uint8_t id[32], const char *hex128)
{
    uint8_t pub[64];
    CHECK(p2p_hex_decode(pub, sizeof pub, hex128, 128) == 64);
    p2p_node_id(id, pub);
}

int main(void)
{
    CHECK_OK(jspeer_available());
    if (tu_failures) return tu_done("server_interop");
    int hold = 35;
    const char *env = getenv("P2P_INTEROP_SECONDS");
    if (env && atoi(env) > 0) hold = atoi(env);
    if (hold < 16) hold = 16;
    char dur[16];
    snprintf(dur, sizeof dur, "%d", hold + 60);

    su_events_t *evs = calloc(1, sizeof *evs);
    su_events_init(evs);
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_snap, 1);
    cfg.name = "devp2p-c-interop";
    cfg.event_cb = su_events_cb;
    cfg.event_ctx = evs;
    p2p_server_t *s = NULL;
    jspeer_t *j1 = NULL, *j2 = NULL, *j3 = NULL;
    CHECK_OK(
        jspeer_start(&j1, T_START, "--mode", "rlpx", "--caps", "snap/1", "--duration", dur, NULL));
    if (!j1) goto out;
    p2p_node_t n1;
    CHECK_OK(p2p_enode_parse(&n1, jspeer_enode(j1)));
    cfg.static_nodes = &n1;
    cfg.nstatic = 1;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) goto out;
    p2p_node_t self = su_node(s);
    char our_enode[P2P_ENODE_MAX_TEXT], our_id[129];
    CHECK_OK(p2p_enode_format(our_enode, sizeof our_enode, &self));
    p2p_hex_encode(our_id, self.pubkey, 64);
    our_id[128] = 0;
    CHECK_OK(jspeer_start(&j2, T_START, "--mode", "rlpx", "--caps", "snap/1", "--dial", our_enode,
                          "--duration", dur, NULL));
    if (!j2) goto out;
    uint8_t id2[32];
    parse_id(id2, jspeer_id(j2));

    /* Hello exchanged, snap/1 matched, both directions */
    check_added(j1, our_id, true);
    check_added(j2, our_id, false);
    CHECK(su_events_find(evs, NULL, P2P_PEER_EVENT_ADD, n1.id, T_EVENT));
    CHECK(su_events_find(evs, NULL, P2P_PEER_EVENT_ADD, id2, T_EVENT));
    p2p_peer_info_t info[4];
    size_t np = 0;
    CHECK_OK(p2p_server_peers(s, info, 4, &np));
    CHECK(np == 2);
    for (size_t i = 0; i < np; i++) {
        CHECK(info[i].remote_version == 5);
        CHECK(strncmp(info[i].name, "ethereumjs-devp2p", 17) == 0);
        CHECK(info[i].ncaps == 1 && strcmp(info[i].caps[0].name, "snap") == 0 &&
              info[i].caps[0].version == 1);
        CHECK(info[i].inbound == (memcmp(info[i].id, id2, 32) == 0));
    }

    /* hold: pings answered both ways, nobody dropped */
    printf("holding both connections for %d s\n", hold);
    fflush(stdout);
    sleep((unsigned)hold);
    unsigned want = (unsigned)(hold / 15);                   /* >= 1: hold >= 16 */
    CHECK(jspeer_count(j1, 0, "pong", "dir", "in") >= want); /* our pongs */
    CHECK(jspeer_count(j2, 0, "pong", "dir", "in") >= want);
    CHECK(jspeer_count(j1, 0, "ping", "dir", "in") >= want); /* our pings */
    CHECK(jspeer_count(j2, 0, "ping", "dir", "in") >= want);
    CHECK(jspeer_count(j1, 0, "pong", "dir", "out") >= want); /* their pongs */
    CHECK(jspeer_count(j2, 0, "pong", "dir", "out") >= want);
    CHECK(jspeer_count(j1, 0, "peer:removed", NULL, NULL) == 0);
    CHECK(jspeer_count(j2, 0, "peer:removed", NULL, NULL) == 0);
    CHECK(!su_events_find(evs, NULL, P2P_PEER_EVENT_DROP, NULL, 0));
    CHECK(p2p_server_peer_count(s) == 2);
    p2p_server_stats_t st;
    p2p_server_get_stats(s, &st);
    CHECK(st.pongs_sent >= 2 * want);
    CHECK(st.pings_sent >= 2 * want);
    printf("after %d s: pings sent %llu, pongs sent %llu\n", hold,
           (unsigned long long)st.pings_sent, (unsigned long long)st.pongs_sent);

    /* we drop J1: they read "requested" */
    size_t m1 = jspeer_mark(j1);
    CHECK_OK(p2p_server_remove_peer(s, n1.id));
    json_t *ev = jspeer_wait(j1, m1, T_EVENT, "peer:removed", "id", our_id);
    CHECK(ev != NULL);
    if (ev) {
        CHECK(json_integer_value(json_object_get(ev, "reason")) == P2P_DISC_REQUESTED);
        const char *by = json_string_value(json_object_get(ev, "by"));
        CHECK(by && strcmp(by, "them") == 0);
    }
    CHECK(jspeer_wait(j1, m1, T_EVENT, "disconnect:in", "reason", "0") != NULL);
    p2p_peer_event_t pe;
    CHECK(su_events_find(evs, &pe, P2P_PEER_EVENT_DROP, n1.id, T_EVENT));
    CHECK(pe.reason == P2P_DISC_REQUESTED && !pe.remote_requested);

    /* J2 quits: its bare, uncompressed Disconnect(0x08) */
    CHECK(jspeer_stop(j2, 10000) == 0);
    CHECK(jspeer_wait(j2, 0, 1000, "disconnect:out", "reason", "8") != NULL);
    CHECK(su_events_find(evs, &pe, P2P_PEER_EVENT_DROP, id2, T_EVENT));
    CHECK(pe.reason == P2P_DISC_QUITTING && pe.remote_requested);
    CHECK(su_wait_peers(s, 0, 5000));

    /* J3 dials us; our stop sends it Disconnect(client quitting) */
    CHECK_OK(jspeer_start(&j3, T_START, "--mode", "rlpx", "--caps", "snap/1", "--dial", our_enode,
                          "--duration", dur, NULL));
    if (j3) {
        check_added(j3, our_id, false);
        CHECK(su_wait_peers(s, 1, 5000));
        size_t m3 = jspeer_mark(j3);
        p2p_server_get_stats(s, &st);
        p2p_server_stop(s);
        s = NULL;
        ev = jspeer_wait(j3, m3, T_EVENT, "disconnect:in", "id", our_id);
        CHECK(ev != NULL && json_integer_value(json_object_get(ev, "reason")) == P2P_DISC_QUITTING);
    }
    CHECK(st.disc_sent[P2P_DISC_REQUESTED] == 1);
    CHECK(st.disc_recv[P2P_DISC_QUITTING] == 1);
    CHECK(jspeer_count(j1, 0, "error", NULL, NULL) == 0);
    CHECK(jspeer_count(j2, 0, "error", NULL, NULL) == 0);
    if (tu_failures) {
        jspeer_dump(j1, "J1");
        jspeer_dump(j2, "J2");
        if (j3) jspeer_dump(j3, "J3");
    }
out:
    p2p_server_stop(s);
    jspeer_free(j1);
    jspeer_free(j2);
    jspeer_free(j3);
    free(evs);
    return tu_done("server_interop");
}
