/*
 * tests/tools/test_rlpx_ping_flood.c: `devp2p rlpx ping` against a node
 * that never stops talking after its Hello.
 *
 * The command waits LINGER (300 ms) after the remote Hello for a
 * Disconnect, then sends its own and drains for at most 1 s
 * (tools/cmd_rlpx.c): its whole run is bounded.  Here a fake node on
 * loopback (this process) answers the handshake, sends its Hello, then
 * streams Ping frames without pause for at most FLOOD_S seconds, so that
 * the command's socket never runs empty: the command must still end on
 * its own deadlines (handshake, linger, drain), long before the flood
 * does, and report the Hello (exit status 0).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "crypto/secp.h"
#include "tests/tu.h"
#include "wire/enode.h"
#include "wire/p2p_msg.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

#define FLOOD_S 6
#define LATE_NS (3 * P2P_NS_PER_S) /* handshake + 300 ms linger + 1 s drain, with room */
#define BATCH 2048                 /* Ping frames per send */

static uint8_t out[BATCH * 64 + 4096];

/* Accepts the tool's connection and plays the recipient's handshake.
 * Returns the connected socket (blocking) or -1. */
static int fake_handshake(int lfd, const uint8_t priv[32], p2p_rlpx_codec_t *codec)
{
    struct pollfd pf = {.fd = lfd, .events = POLLIN};
    if (poll(&pf, 1, 10000) != 1) return -1;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return -1;
    static p2p_rlpx_hs_t hs;
    p2p_rlpx_secrets_t sec;
    int rc = p2p_rlpx_hs_init_keyed(&hs, P2P_RLPX_RECIPIENT, priv, NULL, NULL);
    uint8_t in[2048 + 2];
    size_t have = 0;
    while (rc == 0) {
        ssize_t n = recv(fd, in + have, sizeof in - have, 0);
        if (n <= 0) {
            rc = -1;
            break;
        }
        have += (size_t)n;
        size_t used = 0;
        rc = p2p_rlpx_hs_feed(&hs, &used, in, have);
        memmove(in, in + used, have - used);
        have -= used;
        if (rc == P2P_EMORE)
            rc = 0;
        else
            break;
    }
    const uint8_t *ack;
    size_t acklen;
    if (rc == 0) rc = p2p_rlpx_hs_make_ack(&hs, &ack, &acklen);
    if (rc == 0 && send(fd, ack, acklen, MSG_NOSIGNAL) != (ssize_t)acklen) rc = -1;
    if (rc == 0) rc = p2p_rlpx_hs_secrets(&hs, &sec);
    if (rc == 0) rc = p2p_rlpx_codec_init(codec, &sec, 256u * 1024);
    p2p_rlpx_hs_wipe(&hs);
    if (rc) {
        fprintf(stderr, "fake node: handshake failed: %s\n", p2p_errname(rc));
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DEVP2P-TOOL\n", argv[0]);
        return 2;
    }
    uint8_t priv[32];
    p2p_node_t self;
    memset(&self, 0, sizeof self);
    CHECK_OK(p2p_secp_keygen(priv));
    CHECK_OK(p2p_secp_pubkey(self.pubkey, priv));
    p2p_node_id(self.id, self.pubkey);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0 &&
          getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
    self.ep.ip = p2p_ip4(127, 0, 0, 1);
    self.ep.tcp = self.ep.udp = ntohs(sa.sin_port);
    char url[P2P_ENODE_MAX_TEXT];
    CHECK_OK(p2p_enode_format(url, sizeof url, &self));

    uint64_t t0 = p2p_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", 1);
        if (null >= 0) dup2(null, 1);
        char *args[] = {argv[1], "rlpx", "ping", url, "--timeout", "5", NULL};
        execv(argv[1], args);
        _exit(127);
    }
    CHECK(pid > 0);

    p2p_rlpx_codec_t codec;
    int fd = pid > 0 ? fake_handshake(lfd, priv, &codec) : -1;
    CHECK(fd >= 0);
    unsigned long frames = 0;
    if (fd >= 0) {
        /* our Hello, then Pings until the tool goes or FLOOD_S pass */
        static p2p_hello_t h;
        h.version = 5;
        memcpy(h.name, "flood", 5);
        h.name_len = 5;
        h.ncaps = 1;
        memcpy(h.caps[0].name, "snap", 4);
        h.caps[0].name_len = 4;
        h.caps[0].version = 1;
        memcpy(h.id, self.pubkey, 64);
        uint8_t hp[2048];
        size_t hl, n;
        CHECK_OK(p2p_hello_encode(hp, sizeof hp, &hl, &h));
        CHECK_OK(p2p_rlpx_frame_encode(&codec, out, sizeof out, &n, P2P_MSG_HELLO, hp, hl));
        CHECK(send(fd, out, n, MSG_NOSIGNAL) == (ssize_t)n);
        p2p_rlpx_codec_set_snappy(&codec, true);
        uint64_t end = t0 + FLOOD_S * P2P_NS_PER_S;
        bool open_ = true;
        while (open_ && p2p_now_ns() < end) {
            size_t len = 0;
            for (unsigned i = 0; i < BATCH; i++) {
                if (p2p_rlpx_frame_encode(&codec, out + len, sizeof out - len, &n, P2P_MSG_PING,
                                          p2p_ping_payload, sizeof p2p_ping_payload))
                    break;
                len += n;
                frames++;
            }
            for (size_t off = 0; off < len;) {
                ssize_t w = send(fd, out + off, len - off, MSG_NOSIGNAL);
                if (w <= 0) {
                    open_ = false; /* the tool closed: done */
                    break;
                }
                off += (size_t)w;
            }
        }
        p2p_rlpx_codec_wipe(&codec);
    }
    int st = 0;
    pid_t w = pid > 0 ? tu_wait_child(pid, 30, &st) : -1;
    uint64_t took = p2p_now_ns() - t0;
    if (fd >= 0) close(fd);
    close(lfd);
    printf("rlpx ping under a flood: exit %d after %.3f s (%lu frames sent)\n",
           w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1, (double)took / 1e9, frames);
    CHECK(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(took < LATE_NS);
    return tu_done("tools-rlpx-ping-flood");
}
