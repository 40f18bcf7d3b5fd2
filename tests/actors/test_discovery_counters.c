/*
 * tests/actors/test_discovery_counters.c: discovery's counters count what
 * their text says, on a running instance on loopback.
 *
 *   1. A bootnode whose UDP port is 0 cannot be sent to: the core counts
 *      each refused send (core tx_errors, revalidation's reval_unreachable)
 *      while the shell's tx_errors ("packets the socket refused"; the
 *      README: socket send failures) stays 0, since no packet ever reached
 *      the socket.
 *   2. rx_bytes ("bytes received") counts whole datagrams, also those
 *      over 1280 bytes that the reader reads only in part (rx_too_big):
 *      datagrams of 100, 1281 and 4000 bytes add 5381.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "tests/actors/disc_nodes.h"

static void test_unsendable_not_socket_error(void)
{
    uint8_t bk[32];
    dn_key(bk);
    p2p_node_t boot;
    memset(&boot, 0, sizeof boot);
    CHECK_OK(p2p_secp_pubkey(boot.pubkey, bk));
    p2p_node_id(boot.id, boot.pubkey);
    boot.ep = (p2p_endpoint_t){.ip = p2p_ip4(127, 0, 0, 1), .udp = 0, .tcp = 30303};

    dn_node_t a;
    CHECK_OK(dn_start(&a, &boot, 1, NULL, NULL));
    if (!a.d) return;
    /* the first refresh bonds with the bootnode: a ping it cannot send */
    uint64_t deadline = dn_deadline_ms(10000);
    p2p_discovery_info_t *in = NULL;
    while (p2p_now_ns() < deadline) {
        free(in);
        in = dn_info(&a);
        if (!in || in->core.tx_errors > 0) break;
        dn_sleep_ms(50);
    }
    CHECK(in != NULL);
    if (in) {
        CHECK(in->core.tx_errors > 0);
        CHECK(in->shell.tx_packets == 0);
        CHECK(in->shell.tx_errors == 0);
        if (in->shell.tx_errors)
            fprintf(stderr, "core tx_errors %llu, shell tx_errors %llu (socket never used)\n",
                    (unsigned long long)in->core.tx_errors,
                    (unsigned long long)in->shell.tx_errors);
    }
    free(in);
    p2p_discovery_stop(a.d);
}

static void test_rx_bytes_whole(void)
{
    dn_node_t a;
    CHECK_OK(dn_start(&a, NULL, 0, NULL, NULL));
    if (!a.d) return;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_storage ss;
    p2p_ip_t lo = p2p_ip4(127, 0, 0, 1);
    socklen_t sl = p2p_ip_to_sockaddr(&ss, &lo, p2p_discovery_port(a.d));
    static uint8_t junk[4000];
    static const size_t sizes[] = {100, 1281, 4000};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        CHECK(sendto(fd, junk, sizes[i], 0, (struct sockaddr *)&ss, sl) == (ssize_t)sizes[i]);
        total += sizes[i];
    }
    uint64_t deadline = dn_deadline_ms(5000);
    p2p_discovery_info_t *in = NULL;
    while (p2p_now_ns() < deadline) {
        free(in);
        in = dn_info(&a);
        if (!in || in->shell.rx_datagrams >= 3) break;
        dn_sleep_ms(20);
    }
    CHECK(in != NULL);
    if (in) {
        printf("3 datagrams of %zu bytes: rx_datagrams %llu rx_bytes %llu rx_too_big %llu\n", total,
               (unsigned long long)in->shell.rx_datagrams, (unsigned long long)in->shell.rx_bytes,
               (unsigned long long)in->shell.rx_too_big);
        CHECK(in->shell.rx_datagrams == 3);
        CHECK(in->shell.rx_too_big == 2);
        CHECK(in->shell.rx_bytes == total);
    }
    free(in);
    close(fd);
    p2p_discovery_stop(a.d);
}

int main(void)
{
    tu_seed(0xc0c0);
    test_unsendable_not_socket_error();
    test_rx_bytes_whole();
    return tu_done("discovery_counters");
}
