/*
 * tests/tools/test_node_metrics.c: the Prometheus text of a node_metrics_t
 * filled by hand (tools/node_metrics.c), for the figures that are split by
 * a label: Disconnect reasons (code and reason name, zero series left out)
 * and the dialer's per-reason skips of discovery candidates (the reason
 * names of p2p_dial_skip_name, the total still a plain counter beside
 * them).  Each labelled metric has its HELP and TYPE lines once.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/dialsched.h"
#include "tests/tu.h"
#include "tools/node_metrics.h"

static unsigned count(const char *text, const char *needle)
{
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

int main(void)
{
    node_metrics_t *m = node_metrics_new();
    CHECK(m != NULL);
    if (!m) return tu_done("tools-node-metrics");
    m->have_server = true;
    m->peers = 2;
    m->inbound = 1;
    m->outbound = 1;
    m->srv.disc_sent[P2P_DISC_TOO_MANY_PEERS] = 7;
    m->srv.candidates_skipped_by[P2P_DIAL_SKIP_HISTORY] = 5;
    m->srv.candidates_skipped_by[P2P_DIAL_SKIP_CONNECTED] = 3;
    m->srv.candidates_skipped = 8;
    size_t need = node_metrics_prometheus(m, NULL, 0);
    char *text = malloc(need + 1);
    CHECK(text != NULL);
    if (text) {
        CHECK(node_metrics_prometheus(m, text, need + 1) == need);
        CHECK(strstr(text,
                     "devp2p_disconnects_sent_total{code=\"4\",reason=\"too many peers\"} 7\n"));
        CHECK(count(text, "devp2p_disconnects_sent_total{") == 1);
        CHECK(strstr(text, "devp2p_candidates_skipped_total 8\n"));
        CHECK(strstr(text, "devp2p_candidates_skipped_by_reason_total{reason=\"history\"} 5\n"));
        CHECK(strstr(text, "devp2p_candidates_skipped_by_reason_total{reason=\"connected\"} 3\n"));
        CHECK(count(text, "devp2p_candidates_skipped_by_reason_total{") == 2);
        CHECK(count(text, "# TYPE devp2p_candidates_skipped_by_reason_total counter\n") == 1);
        CHECK(count(text, "# HELP devp2p_candidates_skipped_by_reason_total ") == 1);
        if (!strstr(text, "skipped_by_reason_total{reason=\"history\"}")) printf("%s", text);
    }
    free(text);
    node_metrics_free(m);
    return tu_done("tools-node-metrics");
}
