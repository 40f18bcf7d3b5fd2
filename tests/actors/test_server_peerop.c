/*
 * tests/actors/test_server_peerop.c: the deadline of the peerop calls
 * (p2p_server_peers, _peer_count, _peer_get, _subscribe, ...) on loopback.
 *
 *   stalled    the event callback holds the run loop on a peer's ADD
 *              event.  From the callback, a peerop call returns
 *              P2P_ESTATE at once (the loop cannot wait for itself).  From
 *              the test thread every peerop call returns P2P_ETIMEDOUT
 *              after op_timeout_ms and not long after; 80 of them fill the
 *              64-slot peerop mailbox with abandoned requests, the later
 *              ones time out waiting for space.  Once the loop goes on it
 *              discards the abandoned requests unrun (a timed-out
 *              subscribe left no subscription; ASan's leak check proves
 *              each was freed), and the calls work again.
 *   race       four threads call peer_count with a 1 ms deadline while a
 *              peer connects and leaves over and over and the callback
 *              stalls the loop 0-2 ms per event: every answer is a peer
 *              count or P2P_ETIMEDOUT, never another code, and the
 *              abandon/claim race stays clean under TSan and ASan.
 *   subscribe_twice  a mailbox subscribed twice: the second call returns
 *              P2P_EEXIST, a peer's arrival puts one ADD event into it
 *              (not two), and one unsubscribe ends the subscription.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "actors/server_int.h"
#include "core/log.h"
#include "tests/actors/rawpeer.h"
#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};
static const char *const cap_echo[] = {"echo"};
static const uint32_t ver1[] = {1};

static bool peer_to(rawpeer_t *rp, p2p_server_t *s)
{
    p2p_node_t ns = su_node(s);
    if (!su_dial(rp, ns.ep.tcp, ns.pubkey, 5000)) return false;
    return rp_exchange_hellos(rp, cap_echo, ver1, 1, 5000) == 0;
}

/* ---- stalled ------------------------------------------------------------- */

/* Makes a peerop call again while it returns P2P_ETIMEDOUT, 100 times at
 * most, and gives its last result.  A call that timed out was abandoned
 * unrun (the loop discards it), so it can be made again; with a 30 ms
 * op_timeout the loop may miss a deadline on a loaded machine (TSan, busy
 * CPUs) though it is not held. */
#define AGAIN(call)                                                                                \
    ({                                                                                             \
        int again_rc_ = (call);                                                                    \
        for (int again_i_ = 1; again_rc_ == P2P_ETIMEDOUT && again_i_ < 100; again_i_++)           \
            again_rc_ = (call);                                                                    \
        again_rc_;                                                                                 \
    })

typedef struct stall {
    p2p_server_t *srv; /* set before the first peer connects */
    _Atomic int hold;  /* the callback waits while set (10 s at most) */
    _Atomic int entered;
    _Atomic int rc_in_cb;
} stall_t;

static void stall_cb(void *ctx, const p2p_peer_event_t *ev)
{
    stall_t *st = ctx;
    if (ev->type != P2P_PEER_EVENT_ADD || atomic_load(&st->entered)) return;
    atomic_store(&st->rc_in_cb, p2p_server_peer_count(st->srv));
    atomic_store(&st->entered, 1);
    uint64_t end = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (atomic_load(&st->hold) && p2p_now_ns() < end) usleep(1000);
}

static uint64_t ms_since(uint64_t t0)
{
    return (p2p_now_ns() - t0) / P2P_NS_PER_MS;
}

static void test_stalled(void)
{
    static stall_t st;
    atomic_store(&st.hold, 1);
    atomic_store(&st.entered, 0);
    atomic_store(&st.rc_in_cb, 1);
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    cfg.op_timeout_ms = 30;
    cfg.event_cb = stall_cb;
    cfg.event_ctx = &st;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    st.srv = s;
    p2p_mailbox_t *sub = NULL;
    CHECK_OK(p2p_mailbox_create(&sub, "test-events", sizeof(p2p_peer_event_t), 16, NULL));

    rawpeer_t rp;
    CHECK(peer_to(&rp, s));
    uint8_t rp_id[32];
    p2p_node_id(rp_id, rp.pub);
    uint64_t end = p2p_now_ns() + 5 * P2P_NS_PER_S;
    while (!atomic_load(&st.entered) && p2p_now_ns() < end) usleep(1000);
    CHECK(atomic_load(&st.entered));
    CHECK(atomic_load(&st.rc_in_cb) == P2P_ESTATE);

    /* the loop is held: each call gives up after ~30 ms */
    uint64_t t0 = p2p_now_ns();
    CHECK(p2p_server_peer_count(s) == P2P_ETIMEDOUT);
    uint64_t el = ms_since(t0);
    printf("stalled: peer_count timed out after %llu ms (op_timeout_ms 30)\n",
           (unsigned long long)el);
    CHECK(el >= 29 && el < 2000);
    p2p_peer_info_t infos[4];
    size_t n = 99;
    CHECK_ERR(p2p_server_peers(s, infos, 4, &n), P2P_ETIMEDOUT);
    CHECK(n == 0);
    p2p_peer_t *peer = (p2p_peer_t *)&n;
    CHECK_ERR(p2p_server_peer_get(s, &peer, rp_id), P2P_ETIMEDOUT);
    CHECK(peer == NULL);
    unsigned in = 99;
    CHECK(p2p_server_peer_counts(s, &in) == P2P_ETIMEDOUT);
    CHECK(in == 0);
    CHECK_ERR(p2p_server_subscribe(s, sub), P2P_ETIMEDOUT);

    /* 5 abandoned requests are queued; 75 more fill the 64 slots and then
     * time out waiting for space */
    int timeouts = 0;
    t0 = p2p_now_ns();
    for (int i = 0; i < 75; i++) timeouts += p2p_server_peer_count(s) == P2P_ETIMEDOUT;
    el = ms_since(t0);
    printf("stalled: 75 more calls timed out in %llu ms\n", (unsigned long long)el);
    CHECK(timeouts == 75);
    CHECK(el >= 75 * 29 && el < 20000);
    CHECK(p2p_mailbox_depth(s->mb_peerop) == p2p_mailbox_capacity(s->mb_peerop));
    p2p_mailbox_stats_t ms;
    p2p_mailbox_get_stats(s->mb_peerop, &ms);
    CHECK(ms.pushed == 64 && ms.blocked_waits == 80 - 64);

    /* the loop goes on: it discards the 64 abandoned requests unrun, and
     * the calls work again (each within its 30 ms, or made again) */
    atomic_store(&st.hold, 0);
    CHECK(su_wait_peers(s, 1, 5000));
    CHECK_ERR(AGAIN(p2p_server_unsubscribe(s, sub)), P2P_ENOTFOUND); /* was not carried out */
    CHECK_OK(AGAIN(p2p_server_subscribe(s, sub)));
    CHECK_OK(AGAIN(p2p_server_unsubscribe(s, sub)));
    CHECK_OK(AGAIN(p2p_server_peers(s, infos, 4, &n)));
    CHECK(n == 1 && memcmp(infos[0].id, rp_id, 32) == 0);
    CHECK_OK(AGAIN(p2p_server_peer_get(s, &peer, rp_id)));
    if (peer) p2p_peer_unref(peer);
    CHECK(AGAIN(p2p_server_peer_counts(s, &in)) == 1 && in == 1);
    rp_close(&rp);
    p2p_server_stop(s);
    p2p_mailbox_destroy(sub);
}

/* ---- race ---------------------------------------------------------------- */

typedef struct race {
    _Atomic int stop;
    _Atomic uint64_t ok, timedout, other;
    p2p_server_t *srv;
} race_t;

static void race_cb(void *ctx, const p2p_peer_event_t *ev)
{
    (void)ctx;
    (void)ev;
    usleep((useconds_t)(rand() % 2000)); /* only p2p-run calls rand() */
}

static void *race_main(void *arg)
{
    race_t *r = arg;
    uint64_t end = p2p_now_ns() + 10 * P2P_NS_PER_S;
    while (!atomic_load(&r->stop) && p2p_now_ns() < end) {
        int c = p2p_server_peer_count(r->srv);
        if (c >= 0 && c <= 40) /* a new peer may be added before the last one's drop */
            atomic_fetch_add(&r->ok, 1);
        else if (c == P2P_ETIMEDOUT)
            atomic_fetch_add(&r->timedout, 1);
        else
            atomic_fetch_add(&r->other, 1);
    }
    return NULL;
}

static void test_race(void)
{
    static race_t r;
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    cfg.op_timeout_ms = 1;
    cfg.event_cb = race_cb;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    r.srv = s;
    pthread_t th[4];
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, race_main, &r) == 0);
    int peers = 0;
    uint64_t end = p2p_now_ns() + 3 * P2P_NS_PER_S;
    for (int i = 0; i < 40 && p2p_now_ns() < end; i++) {
        rawpeer_t rp;
        if (peer_to(&rp, s)) peers++;
        rp_close(&rp);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    printf("race: %d peers came and went; peer_count answered %llu times, timed out %llu times\n",
           peers, (unsigned long long)atomic_load(&r.ok),
           (unsigned long long)atomic_load(&r.timedout));
    CHECK(peers > 0);
    CHECK(atomic_load(&r.other) == 0);
    CHECK(atomic_load(&r.ok) + atomic_load(&r.timedout) > 0);
    p2p_server_stop(s);
}

/* ---- subscribe_twice ------------------------------------------------------ */

static void test_subscribe_twice(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    p2p_mailbox_t *sub = NULL;
    CHECK_OK(p2p_mailbox_create(&sub, "test-events", sizeof(p2p_peer_event_t), 16, NULL));
    CHECK_OK(p2p_server_subscribe(s, sub));
    CHECK_ERR(p2p_server_subscribe(s, sub), P2P_EEXIST);

    rawpeer_t rp;
    CHECK(peer_to(&rp, s));
    CHECK(su_wait_peers(s, 1, 5000));
    /* the ADD event was pushed before the peer count changed */
    int adds = 0;
    p2p_peer_event_t ev;
    while (p2p_mailbox_try_pop(sub, &ev, sizeof ev) == 0) adds += ev.type == P2P_PEER_EVENT_ADD;
    printf("subscribe_twice: %d ADD events for one peer\n", adds);
    CHECK(adds == 1);
    CHECK_OK(p2p_server_unsubscribe(s, sub));
    CHECK_ERR(p2p_server_unsubscribe(s, sub), P2P_ENOTFOUND);
    rp_close(&rp);
    p2p_server_stop(s);
    p2p_mailbox_destroy(sub);
}

int main(void)
{
    p2p_log_set_level(P2P_LOG_ERROR);
    int fds0 = su_count_fds();
    test_stalled();
    test_race();
    test_subscribe_twice();
    CHECK(su_count_fds() == fds0);
    return tu_done("server_peerop");
}
