/*
 * tests/actors/test_server_candidates.c: a discovery candidate that the
 * dialer's full `nodesin` mailbox does not take is counted.
 *
 * The want_candidates hook runs on p2p-dial; here it holds the dialer
 * (until the test lets it go, 10 s at most) so that nothing drains
 * `nodesin`.  The server's own node is then offered 80 times with a 20 ms
 * deadline each: the mailbox (64 messages) takes the first ones, the
 * others time out.  Each offer is counted once, in candidates_in when it
 * was queued and in candidates_refused when it timed out.  Once the hook
 * returns, the dialer skips every queued offer (self).
 */
#include <stdatomic.h>
#include <stdio.h>

#include "tests/actors/srv_util.h"

static const p2p_protocol_t proto_echo = {"echo", 1, 2, NULL, NULL, NULL, NULL};

/* seq_cst (the default): plain flags between the test and p2p-dial */
static atomic_int hook_in, hook_release;

static int hold_dialer(void *ctx, bool on)
{
    (void)ctx;
    (void)on;
    atomic_store(&hook_in, 1);
    for (int i = 0; i < 1000 && !atomic_load(&hook_release); i++) usleep(10000);
    return 0;
}

int main(void)
{
    p2p_server_config_t cfg;
    su_config(&cfg, &proto_echo, 1);
    cfg.no_discovery = false;
    cfg.want_candidates = hold_dialer;
    p2p_server_t *a = NULL;
    CHECK_OK(p2p_server_start(&a, &cfg));
    p2p_node_t self = su_node(a);
    for (int i = 0; i < 500 && !atomic_load(&hook_in); i++) usleep(10000);
    CHECK(atomic_load(&hook_in));

    uint64_t queued = 0, refused = 0;
    for (int i = 0; i < 80; i++) {
        int rc = p2p_server_add_candidate(a, &self, p2p_now_ns() + 20 * P2P_NS_PER_MS);
        if (rc == 0) {
            queued++;
        } else {
            CHECK_ERR(rc, P2P_ETIMEDOUT);
            refused++;
        }
    }
    atomic_store(&hook_release, 1);
    printf("candidates queued %llu, refused %llu\n", (unsigned long long)queued,
           (unsigned long long)refused);
    CHECK(queued > 0 && queued <= 64);
    CHECK(refused == 80 - queued);

    CHECK(SU_WAIT_STAT(a, candidates_skipped, queued, 5000));
    p2p_server_stats_t st;
    p2p_server_get_stats(a, &st);
    CHECK(st.candidates_in == queued);
    CHECK(st.candidates_refused == refused);
    CHECK(st.candidates_skipped == queued);
    p2p_server_stop(a);
    return tu_done("server_candidates");
}
