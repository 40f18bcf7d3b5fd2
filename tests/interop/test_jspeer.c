/*
 * tests/interop/test_jspeer.c: the jspeer harness (C side of the interop
 * tests) driving two @ethereumjs/devp2p peers against each other on
 * loopback: start and "listening", RLPx dial and Hello with snap/1, DPT
 * bootstrap, stdin commands (ping, disconnect with a reason), event waits
 * with deadlines, clean SIGTERM exit, and a start that fails on bad flags.
 * Fails with a clear message when node or node_modules is missing.
 */
#include <stdio.h>
#include <string.h>

#include "tests/interop/jspeer.h"
#include "tests/tu.h"

#define T_START 20000
#define T_EVENT 20000

int main(void)
{
    CHECK_OK(jspeer_available());
    if (tu_failures) return tu_done("jspeer");

    jspeer_t *a = NULL, *b = NULL, *bad = NULL;
    CHECK_OK(jspeer_start(&a, T_START, "--mode", "both", "--duration", "60", NULL));
    if (a == NULL) return tu_done("jspeer");
    CHECK(strncmp(jspeer_enode(a), "enode://", 8) == 0);
    CHECK(strlen(jspeer_id(a)) == 128);
    CHECK(jspeer_tcp_port(a) > 0 && jspeer_udp_port(a) > 0);

    CHECK_OK(jspeer_start(&b, T_START, "--mode", "both", "--dial", jspeer_enode(a), "--bootnode",
                          jspeer_enode(a), "--duration", "60", NULL));
    if (b == NULL) {
        jspeer_free(a);
        return tu_done("jspeer");
    }

    /* RLPx: Hello both ways with snap/1. */
    json_t *ev = jspeer_wait(b, 0, T_EVENT, "peer:added", "id", jspeer_id(a));
    CHECK(ev != NULL);
    if (ev) {
        json_t *h = json_object_get(ev, "hello");
        CHECK(json_integer_value(json_object_get(h, "version")) == 5);
        CHECK(json_integer_value(json_object_get(h, "port")) == jspeer_tcp_port(a));
        CHECK(strcmp(json_string_value(json_array_get(json_object_get(h, "caps"), 0)), "snap/1") ==
              0);
        CHECK(json_is_false(json_object_get(ev, "inbound")));
    }
    ev = jspeer_wait(a, 0, T_EVENT, "peer:added", "id", jspeer_id(b));
    CHECK(ev != NULL && json_is_true(json_object_get(ev, "inbound")));

    /* DPT: each in the other's table. */
    CHECK(jspeer_wait(b, 0, T_EVENT, "dpt:peer:added", "id", jspeer_id(a)) != NULL);
    CHECK(jspeer_wait(a, 0, T_EVENT, "dpt:peer:added", "id", jspeer_id(b)) != NULL);

    /* Commands: a ping now (not in 15 s), then Disconnect(too many peers). */
    size_t ma = jspeer_mark(a), mb = jspeer_mark(b);
    CHECK_OK(jspeer_cmd(b, "ping all"));
    CHECK(jspeer_wait(a, ma, T_EVENT, "ping", "dir", "in") != NULL);
    CHECK(jspeer_wait(b, mb, T_EVENT, "pong", "dir", "in") != NULL);
    CHECK(jspeer_count(b, mb, "pong", "dir", "in") == 1);
    CHECK_OK(jspeer_cmd(b, "disconnect %.8s 4", jspeer_id(a)));
    ev = jspeer_wait(a, ma, T_EVENT, "peer:removed", "id", jspeer_id(b));
    CHECK(ev != NULL);
    if (ev) {
        CHECK(json_integer_value(json_object_get(ev, "reason")) == 4);
        CHECK(strcmp(json_string_value(json_object_get(ev, "by")), "them") == 0);
    }
    CHECK(jspeer_wait(b, mb, T_EVENT, "disconnect:out", "reason", "4") != NULL);
    /* A deadline that passes returns NULL in time. */
    CHECK(jspeer_wait(a, 0, 200, "no-such-event", NULL, NULL) == NULL);

    /* Clean exits; "exit" is the last event and nothing went wrong. */
    CHECK(jspeer_stop(b, 5000) == 0);
    CHECK(jspeer_stop(a, 5000) == 0);
    CHECK(jspeer_wait(a, 0, 1000, "exit", "reason", "sigterm") != NULL);
    CHECK(jspeer_count(a, 0, "error", NULL, NULL) == 0);
    CHECK(jspeer_count(b, 0, "error", NULL, NULL) == 0);
    if (tu_failures) {
        jspeer_dump(a, "A");
        jspeer_dump(b, "B");
    }
    jspeer_free(b);
    jspeer_free(a);

    /* Bad flags: it says why and exits, and the start reports it. */
    CHECK_ERR(jspeer_start(&bad, T_START, "--mode", "bogus", NULL), P2P_ECLOSED);
    CHECK(bad == NULL);
    return tu_done("jspeer");
}
