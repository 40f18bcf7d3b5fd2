/*
 * tests/actors/test_server_api.c: documented contracts of the public API
 * (actors/server.h) as an embedding application meets them.
 *
 *   event_proto_name  a protocol name may have up to P2P_CAP_NAME_MAX (32)
 *                     bytes; the MSGSEND / MSGRECV events of its messages
 *                     (enable_msg_events) name it in full, so two
 *                     protocols whose names share their first 15 bytes
 *                     are told apart.
 *   unsubscribe       p2p_server_unsubscribe of a mailbox that is not
 *                     subscribed (NULL included) is P2P_ENOTFOUND, and
 *                     leaves the real subscriptions in place.
 *   bad_family        a listen or external address of a family other than
 *                     0 (none), 4 or 6 is a bad config (P2P_EINVAL), also
 *                     without a listener: it would be the address
 *                     p2p_server_self advertises.
 *   static_full       a server started with P2P_SERVER_MAX_STATIC static
 *                     nodes refuses p2p_server_add_peer with P2P_EFULL as
 *                     soon as p2p_server_start has returned, before its
 *                     dialer ran: the dialer is held in its first log line
 *                     (the start-up warning about a static node without an
 *                     address) by a log pipe that is full.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/log.h"

#include "tests/actors/srv_util.h"

/* 32 bytes each (P2P_CAP_NAME_MAX), the same first 31 */
#define NAME_A "abcdefghijklmnopqrstuvwxyz01234A"
#define NAME_B "abcdefghijklmnopqrstuvwxyz01234B"
_Static_assert(sizeof NAME_A - 1 == P2P_CAP_NAME_MAX, "a name of the largest size");

typedef struct side {
    p2p_server_t *srv;
    p2p_protocol_t protos[2];
    _Atomic(p2p_peer_t *) peer; /* a reference taken in on_start (protocol B's) */
    su_events_t ev;
} side_t;

static int keep_peer(p2p_peer_t *peer, void *ctx, void **state)
{
    side_t *s = ctx;
    p2p_peer_ref(peer);
    p2p_peer_unref(atomic_exchange(&s->peer, peer));
    return 0;
}

static void side_start(side_t *s, const p2p_node_t *static_node)
{
    su_events_init(&s->ev);
    s->protos[0] = (p2p_protocol_t){.name = NAME_A, .version = 1, .length = 2, .ctx = s};
    s->protos[1] = (p2p_protocol_t){
        .name = NAME_B, .version = 1, .length = 2, .ctx = s, .on_start = keep_peer};
    p2p_server_config_t cfg;
    su_config(&cfg, s->protos, 2);
    cfg.static_nodes = static_node;
    cfg.nstatic = static_node ? 1 : 0;
    cfg.enable_msg_events = true;
    cfg.event_cb = su_events_cb;
    cfg.event_ctx = &s->ev;
    CHECK_OK(p2p_server_start(&s->srv, &cfg));
}

static void side_stop(side_t *s)
{
    p2p_server_stop(s->srv);
    p2p_peer_unref(atomic_exchange(&s->peer, NULL));
}

/* True if ev names the protocol want in full. */
/* ev (a MSGSEND or MSGRECV event, got: it arrived) names the protocol
 * want in full and carries message code 1 of 3 bytes */
static void check_msg_event(const char *kind, bool got, const p2p_peer_event_t *ev,
                            const char *want)
{
    CHECK(got);
    if (!got) return;
    bool full = strlen(want) < sizeof ev->protocol && strcmp(ev->protocol, want) == 0;
    if (!full)
        fprintf(stderr, "%s names \"%.*s\", not \"%s\"\n", kind, (int)sizeof ev->protocol,
                ev->protocol, want);
    CHECK(full);
    CHECK(ev->msg_code == 1 && ev->msg_size == 3);
}

static void test_event_proto_name(void)
{
    static side_t a, b;
    side_start(&a, NULL);
    p2p_node_t an = su_node(a.srv);
    side_start(&b, &an);
    for (int i = 0; i < 5000 && !(atomic_load(&a.peer) && atomic_load(&b.peer)); i++) usleep(1000);
    CHECK(atomic_load(&a.peer) && atomic_load(&b.peer));
    if (atomic_load(&b.peer)) {
        static const uint8_t hi[] = "hi";
        CHECK_OK(p2p_peer_send(atomic_load(&b.peer), NAME_B, 1, hi, sizeof hi));
    }
    p2p_peer_event_t sent, recv;
    bool got_sent = su_events_find(&b.ev, &sent, P2P_PEER_EVENT_MSGSEND, NULL, 5000);
    bool got_recv = su_events_find(&a.ev, &recv, P2P_PEER_EVENT_MSGRECV, NULL, 5000);
    check_msg_event("MSGSEND", got_sent, &sent, NAME_B);
    check_msg_event("MSGRECV", got_recv, &recv, NAME_B);
    side_stop(&b);
    side_stop(&a);
}

static void test_unsubscribe(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, NULL, 0);
    cfg.listen_port = -1;
    p2p_server_t *s = NULL;
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (!s) return;
    p2p_mailbox_t *sub = NULL, *other = NULL;
    CHECK_OK(p2p_mailbox_create(&sub, "test-events", sizeof(p2p_peer_event_t), 16, NULL));
    CHECK_OK(p2p_mailbox_create(&other, "test-other", sizeof(p2p_peer_event_t), 16, NULL));
    CHECK_OK(p2p_server_subscribe(s, sub));
    /* never subscribed: not found, whatever the free subscriber slots hold */
    CHECK_ERR(p2p_server_unsubscribe(s, NULL), P2P_ENOTFOUND);
    CHECK_ERR(p2p_server_unsubscribe(s, other), P2P_ENOTFOUND);
    /* the real subscription is still there, and goes once */
    CHECK_ERR(p2p_server_subscribe(s, sub), P2P_EEXIST);
    CHECK_OK(p2p_server_unsubscribe(s, sub));
    CHECK_ERR(p2p_server_unsubscribe(s, sub), P2P_ENOTFOUND);
    p2p_server_stop(s);
    p2p_mailbox_destroy(sub);
    p2p_mailbox_destroy(other);
}

static void test_bad_family(void)
{
    p2p_server_config_t cfg;
    p2p_server_t *s = NULL;
    su_config(&cfg, NULL, 0);
    cfg.external_ip.family = 9;
    CHECK_ERR(p2p_server_start(&s, &cfg), P2P_EINVAL);
    CHECK(s == NULL);
    if (s) p2p_server_stop(s);
    su_config(&cfg, NULL, 0);
    cfg.listen_port = -1;
    cfg.listen_ip.family = 5;
    s = NULL;
    CHECK_ERR(p2p_server_start(&s, &cfg), P2P_EINVAL);
    CHECK(s == NULL);
    if (s) p2p_server_stop(s);
    /* the valid ones still start */
    su_config(&cfg, NULL, 0);
    cfg.listen_port = -1;
    cfg.external_ip = p2p_ip4(192, 0, 2, 1);
    CHECK_OK(p2p_server_start(&s, &cfg));
    if (s) {
        p2p_node_t self;
        p2p_server_self(s, &self);
        CHECK(p2p_ip_equal(&self.ep.ip, &cfg.external_ip));
        p2p_server_stop(s);
    }
}

/* A pipe whose write end blocks: full, O_NONBLOCK cleared.  Returns the
 * read end (non-blocking), *wfd the write end; -1 on failure. */
static int full_pipe(int *wfd)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC)) return -1;
    static const char junk[4096];
    for (int i = 0; i < 4096 && write(fds[1], junk, sizeof junk) > 0; i++) continue;
    if (fcntl(fds[1], F_SETFL, 0)) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    *wfd = fds[1];
    return fds[0];
}

static void test_static_full(void)
{
    static p2p_node_t statics[P2P_SERVER_MAX_STATIC];
    for (size_t i = 0; i < P2P_SERVER_MAX_STATIC; i++) {
        memset(&statics[i], 0, sizeof statics[i]); /* no address: a start-up warning */
        tu_rand_bytes(statics[i].id, 32);
    }
    p2p_node_t extra;
    memset(&extra, 0, sizeof extra);
    tu_rand_bytes(extra.id, 32);
    extra.ep.ip = p2p_ip4(127, 0, 0, 1);
    extra.ep.tcp = extra.ep.udp = 9;

    int wfd = -1, rfd = full_pipe(&wfd);
    CHECK(rfd >= 0);
    if (rfd < 0) return;
    int old_fd = p2p_log_set_fd(wfd);
    p2p_server_config_t cfg;
    su_config(&cfg, NULL, 0);
    cfg.listen_port = -1;
    cfg.static_nodes = statics;
    cfg.nstatic = P2P_SERVER_MAX_STATIC;
    p2p_server_t *s = NULL;
    int rc = p2p_server_start(&s, &cfg);
    CHECK_OK(rc);
    if (!rc) {
        /* the dialer is blocked writing its first warning */
        CHECK_ERR(p2p_server_add_peer(s, &extra), P2P_EFULL);
    }
    /* let the dialer go: drain the pipe until it has published the set
     * (10 s at most) */
    uint64_t end = p2p_now_ns() + 10 * P2P_NS_PER_S;
    char buf[65536];
    p2p_server_stats_t st;
    memset(&st, 0, sizeof st);
    while (s && p2p_now_ns() < end) {
        while (read(rfd, buf, sizeof buf) > 0) continue;
        p2p_server_get_stats(s, &st);
        if (st.static_nodes == P2P_SERVER_MAX_STATIC) break;
        usleep(1000);
    }
    CHECK(!s || st.static_nodes == P2P_SERVER_MAX_STATIC);
    /* the refused addition is counted once */
    if (s) {
        CHECK(SU_WAIT_STAT(s, static_full, 1, 2000));
        p2p_server_get_stats(s, &st);
        CHECK(st.static_full == 1);
    }
    p2p_log_set_fd(old_fd);
    if (s) p2p_server_stop(s);
    close(wfd);
    close(rfd);
}

int main(void)
{
    p2p_log_set_level(P2P_LOG_WARN);
    test_event_proto_name();
    test_unsubscribe();
    test_bad_family();
    test_static_full();
    return tu_done("server_api");
}
