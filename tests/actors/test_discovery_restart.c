/*
 * tests/actors/test_discovery_restart.c: the node database survives a
 * restart.  Node X runs on a data directory (Berkeley DB node database)
 * next to five in-memory nodes, all bootstrapped from one bootnode, until X
 * has stored bonds and seed records.  Then X and the bootnode stop, X
 * restarts on the same directory without bootnodes, and its table refills
 * from the seeds in the DB; lookups through them work, and its record's
 * seq is the stored one plus one.
 */
#include <stdlib.h>
#include <unistd.h>

#include "actors/datadir.h"
#include "actors/nodedb.h"
#include "tests/actors/disc_nodes.h"

#define NPEERS 5

static uint64_t get_enrresp(const p2p_discovery_info_t *in)
{
    return in->core.rx_enrresponse;
}

/* The hourly node DB expiry runs on p2p-disc in bounded steps: a node with
 * 3000 stale items and a fresh one in the DB; no pass a second before the
 * hour; an hour of virtual time later the stale node is gone (db_expired 1,
 * one pass), the fresh one kept. */
static void test_expiry_steps(const char *dir)
{
    p2p_ip_t old_ip;
    p2p_nodedb_t *db = NULL;
    char msg[256];
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    uint64_t wall = p2p_wall_ms(), now = wall / 1000;
    p2p_node_t stale, fresh;
    memset(&stale, 0, sizeof stale);
    memset(&fresh, 0, sizeof fresh);
    tu_rand_bytes(stale.id, 32);
    tu_rand_bytes(fresh.id, 32);
    stale.ep.ip = fresh.ep.ip = p2p_ip4(20, 1, 1, 1);
    stale.ep.udp = fresh.ep.udp = 30303;
    CHECK_OK(p2p_nodedb_put_node(db, &stale, NULL, 0));
    CHECK_OK(p2p_nodedb_put_node(db, &fresh, NULL, 0));
    for (unsigned i = 0; i < 3000; i++) {
        p2p_ip_t ip = p2p_ip4(10, 0, (uint8_t)(i >> 8), (uint8_t)i);
        CHECK_OK(p2p_nodedb_set_last_ping(db, stale.id, &ip, now - 3 * 86400));
    }
    /* fresh an hour from now, when the expiry runs; its other address's
     * pong is 3 days old: that address's items expire, the node stays */
    CHECK_OK(p2p_nodedb_set_last_pong(db, fresh.id, &fresh.ep.ip, now + 3600));
    old_ip = p2p_ip4(20, 1, 1, 2);
    CHECK_OK(p2p_nodedb_set_last_pong(db, fresh.id, &old_ip, now - 3 * 86400));
    p2p_nodedb_close(db);

    static p2p_vclock_t vc;
    p2p_vclock_init(&vc, 1000000000ull, wall);
    dn_node_t x;
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    dn_key(x.priv);
    base.clock = &vc.base;
    CHECK_OK(dn_start(&x, NULL, 0, dir, &base));
    if (!x.d) return;
    /* Not before the hour (the literal pins the period): a second short
     * of it, 15 requests over 1.5 s wake the actor, which would run a due
     * pass to its end in that time (one step per wake-up, the next step
     * due at once); none starts. */
    p2p_vclock_advance(&vc, 3599 * 1000000000ull);
    for (int i = 0; i < 15; i++) {
        p2p_discovery_info_t *in = dn_info(&x);
        CHECK(in && in->shell.db_expire_runs == 0);
        free(in);
        dn_sleep_ms(100);
    }
    p2p_vclock_advance(&vc, 2 * 1000000000ull);
    uint64_t deadline = dn_deadline_ms(30000), runs = 0, expired = 0, ips = 0;
    while (p2p_now_ns() < deadline) {
        p2p_discovery_info_t *in = dn_info(&x);
        runs = in ? in->shell.db_expire_runs : 0;
        expired = in ? in->shell.db_expired : 0;
        ips = in ? in->shell.db_ips_expired : 0;
        free(in);
        if (runs >= 1) break;
        dn_sleep_ms(100);
    }
    printf("expiry on p2p-disc: %llu pass, %llu nodes deleted, %llu stale addresses\n",
           (unsigned long long)runs, (unsigned long long)expired, (unsigned long long)ips);
    CHECK(runs == 1 && expired == 1 && ips == 1);
    p2p_discovery_stop(x.d);
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    p2p_node_t got;
    CHECK_ERR(p2p_nodedb_get_node(db, &got, NULL, NULL, stale.id), P2P_ENOTFOUND);
    CHECK_OK(p2p_nodedb_get_node(db, &got, NULL, NULL, fresh.id));
    uint64_t t = 1;
    CHECK_OK(p2p_nodedb_last_pong(db, &t, fresh.id, &old_ip));
    CHECK(t == 0);
    p2p_nodedb_close(db);
}

/* A node DB of another schema version is wiped when discovery opens it;
 * the wipe shows in the shell counters (db_wipes), as metrics export them. */
static void test_wipe_counted(const char *dir)
{
    p2p_nodedb_t *db = NULL;
    char msg[256];
    CHECK_OK(p2p_nodedb_open(&db, msg, sizeof msg, dir, 0));
    if (!db) return;
    uint8_t v[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    CHECK_OK(p2p__nodedb_put_raw(db, "version", 7, v, sizeof v));
    p2p_nodedb_close(db);
    dn_node_t x;
    CHECK_OK(dn_start(&x, NULL, 0, dir, NULL));
    if (!x.d) return;
    uint64_t deadline = dn_deadline_ms(15000), wipes = 0;
    while (p2p_now_ns() < deadline) {
        p2p_discovery_info_t *in = dn_info(&x);
        wipes = in ? in->shell.db_wipes : 0;
        free(in);
        if (wipes >= 1) break;
        dn_sleep_ms(50);
    }
    CHECK(wipes == 1);
    p2p_discovery_stop(x.d);
}

int main(void)
{
    char dir[] = "/tmp/p2p-disc-restart-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    p2p_datadir_t dd;
    memset(&dd, 0, sizeof dd);
    char msg[256];
    CHECK_OK(p2p_datadir_open(&dd, msg, sizeof msg, dir));

    dn_node_t boot, peers[NPEERS], x;
    CHECK_OK(dn_start(&boot, NULL, 0, NULL, NULL));
    if (!boot.d) return tu_done("discovery_restart");
    for (int i = 0; i < NPEERS; i++) CHECK_OK(dn_start(&peers[i], &boot.self, 1, NULL, NULL));
    uint64_t x_start = p2p_now_ns();
    CHECK_OK(dn_start(&x, &boot.self, 1, dir, NULL));
    if (!x.d) return tu_done("discovery_restart");
    uint64_t seq0 = x.self.seq;

    /* Wait until X knows every peer and stored records (ENR responses are
     * written to the DB as seeds, with their bonds). */
    uint64_t deadline = dn_deadline_ms(40000);
    unsigned known = 0;
    uint64_t stored = 0;
    while (p2p_now_ns() < deadline) {
        p2p_discovery_info_t *in = dn_info(&x);
        known = 0;
        stored = in ? get_enrresp(in) : 0;
        for (int i = 0; in && i < NPEERS; i++) known += dn_info_has(in, peers[i].self.id);
        free(in);
        if (known == NPEERS && stored >= 2) break;
        dn_sleep_ms(100);
    }
    /* 1-2 s; 18-21 s when the replay cache dropped the nodes' repeated
     * pings and revalidation deleted live peers */
    printf(
        "before restart: %u/%d peers in the table, %llu records stored, %.1f s after X started\n",
        known, NPEERS, (unsigned long long)stored, (double)(p2p_now_ns() - x_start) / 1e9);
    CHECK(known == NPEERS && stored >= 2);
    p2p_discovery_stop(x.d);
    p2p_discovery_stop(boot.d);

    /* Restart without bootnodes: seeds from the DB. */
    p2p_discovery_config_t base;
    memset(&base, 0, sizeof base);
    memcpy(base.priv, x.priv, 32);
    CHECK_OK(dn_start(&x, NULL, 0, dir, &base));
    if (!x.d) return tu_done("discovery_restart");
    CHECK(x.self.seq == seq0 + 1);
    deadline = dn_deadline_ms(20000);
    known = 0;
    p2p_discovery_info_t *in = NULL;
    while (p2p_now_ns() < deadline) {
        free(in);
        in = dn_info(&x);
        known = 0;
        for (int i = 0; in && i < NPEERS; i++) known += dn_info_has(in, peers[i].self.id);
        if (in && known >= 2 && in->core.rx_neighbors > 0) break;
        dn_sleep_ms(100);
    }
    printf("after restart: %u/%d peers in the table\n", known, NPEERS);
    CHECK(known >= 2);
    CHECK(in && in->core.rx_neighbors > 0); /* lookups through the seeds answered */
    CHECK(in && in->record.seq == seq0 + 1);
    free(in);
    p2p_discovery_stop(x.d);

    /* A second restart bumps the seq again. */
    CHECK_OK(dn_start(&x, NULL, 0, dir, &base));
    if (x.d) {
        CHECK(x.self.seq == seq0 + 2);
        p2p_discovery_stop(x.d);
    }

    /* Its log files removed, the DB refuses writes to its pages until
     * their LSNs are reset: the seq still moves on, and the reset shows in
     * the shell counters (db_lsn_resets), not as a wipe. */
    char rmlogs[128];
    snprintf(rmlogs, sizeof rmlogs, "rm -f %s/nodes/log.*", dir);
    CHECK(system(rmlogs) == 0);
    CHECK_OK(dn_start(&x, NULL, 0, dir, &base));
    if (x.d) {
        CHECK(x.self.seq == seq0 + 3);
        uint64_t resets = 0, wipes = 1;
        deadline = dn_deadline_ms(15000);
        while (p2p_now_ns() < deadline) {
            in = dn_info(&x);
            resets = in ? in->shell.db_lsn_resets : 0;
            wipes = in ? in->shell.db_wipes : 1;
            free(in);
            if (resets >= 1) break;
            dn_sleep_ms(50);
        }
        CHECK(resets == 1 && wipes == 0);
        p2p_discovery_stop(x.d);
    }
    for (int i = 0; i < NPEERS; i++) p2p_discovery_stop(peers[i].d);
    test_expiry_steps(dir);
    test_wipe_counted(dir);
    p2p_datadir_close(&dd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return tu_done("discovery_restart");
}
