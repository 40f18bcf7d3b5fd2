/*
 * tools/cmd_rlpx.c: devp2p rlpx ping <enode>.
 *
 * Dials the node over TCP, runs the RLPx handshake as initiator
 * (wire/rlpx_handshake.h), sends our Hello (p2p v5, capabilities from
 * --caps, default snap/1) and waits for the remote's Hello or Disconnect,
 * all within one deadline (--timeout, default 5 s: geth's handshake
 * timeout).  Prints the remote Hello (version, client, caps, listen port,
 * id) or the Disconnect reason by name (also one that follows the Hello
 * within 300 ms: no shared capability, too many peers), then disconnects
 * cleanly: a
 * Disconnect(requested) frame, snappy-compressed [reason] after a v5
 * Hello, then a half-close and a short bounded drain.
 *
 * Exit status: 0 when a Hello or a Disconnect was received, 1 on any
 * failure (connection, handshake, timeout, malformed message).  Main
 * thread only; keys and session secrets are wiped before returning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"
#include "crypto/secp.h"
#include "crypto/util.h"
#include "tools/cli.h"
#include "tools/cmds.h"
#include "tools/netio.h"
#include "wire/enode.h"
#include "wire/p2p_msg.h"
#include "wire/rlpx_frame.h"
#include "wire/rlpx_handshake.h"

#define MSG_MAX (256u * 1024)           /* largest message this client accepts */
#define LINGER_NS (300 * P2P_NS_PER_MS) /* wait for a Disconnect right after the Hello */

struct conn {
    int fd;
    uint64_t deadline;
    p2p_rlpx_codec_t codec;
    uint8_t *buf;     /* frame input, MSG_MAX + headroom */
    uint8_t *scratch; /* decompressed payloads */
    uint8_t *out;     /* frame output */
    size_t bufcap, outcap;
};

static int send_msg(struct conn *c, uint64_t code, const uint8_t *payload, size_t len)
{
    size_t olen;
    int rc = p2p_rlpx_frame_encode(&c->codec, c->out, c->outcap, &olen, code, payload, len);
    if (rc) return rc;
    return netio_write_all(c->fd, c->out, olen, c->deadline);
}

static int read_msg(struct conn *c, p2p_rlpx_msg_t *m)
{
    for (;;) {
        size_t need = p2p_rlpx_dec_need(&c->codec);
        if (need == 0 || need > c->bufcap) return P2P_ETOOBIG;
        int rc = netio_read_exact(c->fd, c->buf, need, c->deadline);
        if (rc) return rc;
        rc = p2p_rlpx_dec_step(&c->codec, m, c->buf, need, c->scratch, MSG_MAX);
        if (rc != P2P_EMORE) return rc;
    }
}

static const char *io_err(int rc)
{
    static char b[160];
    if (rc == P2P_ESYS)
        snprintf(b, sizeof b, "%s", strerror(errno));
    else if (rc == P2P_ECLOSED)
        snprintf(b, sizeof b, "connection closed by the remote");
    else
        snprintf(b, sizeof b, "%s", p2p_strerror(rc));
    return b;
}

/* Prints a remote's bytes with everything but printable ASCII as \xNN:
 * never raw control sequences to the terminal. */
static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            putchar(ch);
        else
            printf("\\x%02x", ch);
    }
}

static void print_hello(const p2p_hello_t *h, const uint8_t remote_pub[64])
{
    uint8_t id[32];
    p2p_node_id(id, h->id);
    printf("hello:\n");
    printf("  version:     %llu\n", (unsigned long long)h->version);
    printf("  client:      ");
    print_escaped(h->name, h->name_len);
    printf("\n  caps:        ");
    for (size_t i = 0; i < h->ncaps; i++) {
        if (i) putchar(',');
        print_escaped(h->caps[i].name, h->caps[i].name_len);
        printf("/%u", h->caps[i].version);
    }
    printf("\n  listen port: %llu\n", (unsigned long long)h->listen_port);
    printf("  id:          %s\n", cli_hex(h->id, 64));
    printf("  node id:     %s\n", cli_hex(id, 32));
    if (memcmp(h->id, remote_pub, 64) != 0)
        printf("  warning:     Hello id differs from the handshake key\n");
}

static int rlpx_ping(int argc, char **argv)
{
    static const cli_cmd_t cmd = {
        "rlpx ping", "<enode>",
        "Connects to a node, runs the RLPx handshake and the Hello exchange, prints the remote "
        "Hello (or its Disconnect reason) and disconnects. Exit status 0 when the node took us "
        "as a peer, 1 when it refused us with a Disconnect (printed) or the exchange failed.",
        1, 1};
    const char *caps = "snap/1", *timeout = "5", *keyfile = NULL, *keyhex = NULL;
    const char *client = DEVP2P_CLIENT_NAME "/devp2p-tool";
    const cli_opt_t opts[] = {
        {"caps", "LIST", "capabilities to advertise, name/version,... (default snap/1)", &caps,
         NULL},
        {"timeout", "S", "deadline for connect, handshake and Hello (default 5)", &timeout, NULL},
        {"nodekey", "FILE", "our node key (default: a random key)", &keyfile, NULL},
        {"nodekeyhex", "HEX", "our node key as hex", &keyhex, NULL},
        {"identity", "NAME", "client name in our Hello", &client, NULL},
    };
    const char *pos[CLI_MAX_POS];
    size_t npos;
    cli_parse(&cmd, opts, sizeof opts / sizeof opts[0], argc, argv, pos, &npos);
    p2p_node_t node = cli_node(pos[0], true);
    if (node.ep.tcp == 0) cli_fail("node has no TCP port");
    static p2p_hello_t ours, theirs;
    memset(&ours, 0, sizeof ours);
    cli_parse_caps(&ours, caps);
    uint64_t tmo = cli_timeout_ns("--timeout", timeout);
    uint8_t priv[32];
    cli_session_key(priv, keyfile, keyhex);
    ours.version = P2P_BASE_VERSION;
    ours.name_len = strlen(client);
    /* --identity and --caps are checked before the network is touched:
     * a name cut to P2P_HELLO_NAME_MAX, or a Hello over P2P_HELLO_MAX
     * found only after the connect and the handshake, exited 1 */
    if (ours.name_len > P2P_HELLO_NAME_MAX)
        cli_usage_fail("--identity: %zu bytes, at most %d", ours.name_len, P2P_HELLO_NAME_MAX);
    memcpy(ours.name, client, ours.name_len);
    ours.listen_port = 0;
    if (p2p_secp_pubkey(ours.id, priv) != 0) cli_fail("invalid node key");
    uint8_t hello[P2P_HELLO_MAX];
    size_t hlen;
    int rc = p2p_hello_encode(hello, sizeof hello, &hlen, &ours);
    if (rc == P2P_ETOOBIG)
        cli_usage_fail("--identity and --caps make a Hello over %d bytes", P2P_HELLO_MAX);
    if (rc) cli_fail("cannot encode our Hello: %s", p2p_strerror(rc));

    struct conn c = {.fd = -1};
    c.deadline = p2p_now_ns() + tmo;
    c.bufcap = MSG_MAX + 64;
    c.outcap = MSG_MAX + 1024;
    c.buf = malloc(c.bufcap);
    c.scratch = malloc(MSG_MAX);
    c.out = malloc(c.outcap);
    if (!c.buf || !c.scratch || !c.out) cli_fail("out of memory");

    char addr[P2P_IP_PORT_STRLEN];
    p2p_ip_port_format(addr, &node.ep.ip, node.ep.tcp);
    rc = netio_connect(&c.fd, &node.ep.ip, node.ep.tcp, c.deadline);
    if (rc) cli_fail("cannot connect to %s: %s", addr, io_err(rc));

    static p2p_rlpx_hs_t hs;
    p2p_rlpx_secrets_t sec;
    const uint8_t *pkt;
    size_t pktlen;
    rc = p2p_rlpx_hs_init(&hs, P2P_RLPX_INITIATOR, priv, node.pubkey);
    if (!rc) rc = p2p_rlpx_hs_make_auth(&hs, &pkt, &pktlen);
    if (rc) cli_fail("handshake: cannot make auth: %s", p2p_strerror(rc));
    rc = netio_write_all(c.fd, pkt, pktlen, c.deadline);
    if (rc) cli_fail("handshake with %s: sending auth: %s", addr, io_err(rc));
    uint8_t hbuf[P2P_RLPX_HS_PKT_MAX];
    for (;;) {
        size_t need = p2p_rlpx_hs_need(&hs), used;
        if (need == 0 || need > sizeof hbuf) cli_fail("handshake: unexpected state");
        rc = netio_read_exact(c.fd, hbuf, need, c.deadline);
        if (rc) cli_fail("handshake with %s: reading ack: %s", addr, io_err(rc));
        rc = p2p_rlpx_hs_feed(&hs, &used, hbuf, need);
        if (rc == 0) break;
        if (rc != P2P_EMORE) cli_fail("handshake: invalid ack: %s", p2p_strerror(rc));
    }
    rc = p2p_rlpx_hs_secrets(&hs, &sec);
    p2p_rlpx_hs_wipe(&hs);
    if (!rc) rc = p2p_rlpx_codec_init(&c.codec, &sec, MSG_MAX);
    p2p_rlpx_secrets_wipe(&sec);
    p2p_wipe(priv, sizeof priv);
    if (rc) cli_fail("handshake: cannot derive secrets: %s", p2p_strerror(rc));

    rc = send_msg(&c, P2P_MSG_HELLO, hello, hlen);
    if (rc) cli_fail("sending Hello: %s", io_err(rc));

    int status = 0;
    for (;;) {
        p2p_rlpx_msg_t m;
        rc = read_msg(&c, &m);
        if (rc) cli_fail("waiting for Hello from %s: %s", addr, io_err(rc));
        if (m.code == P2P_MSG_DISC) {
            uint8_t reason;
            if (p2p_disc_decode(&reason, m.payload, m.len, false) != 0) reason = P2P_DISC_INVALID;
            printf("disconnect: %s (0x%02x)\n", p2p_disc_reason_str(reason), reason);
            status = 1; /* refused: not a working peer */
            close(c.fd);
            c.fd = -1;
            break;
        }
        if (m.code != P2P_MSG_HELLO)
            cli_fail("protocol error: message 0x%llx before Hello", (unsigned long long)m.code);
        rc = p2p_hello_decode(&theirs, m.payload, m.len);
        if (rc) cli_fail("invalid Hello: %s", p2p_strerror(rc));
        print_hello(&theirs, node.pubkey);
        if (theirs.version >= 5) p2p_rlpx_codec_set_snappy(&c.codec, true);
        /* a node that rejects us after the Hello exchange (no shared
         * capability, too many peers) says so at once: show it */
        c.deadline = p2p_now_ns() + LINGER_NS;
        bool closed = false;
        while (read_msg(&c, &m) == 0) {
            if (m.code == P2P_MSG_DISC) {
                uint8_t reason;
                if (p2p_disc_decode(&reason, m.payload, m.len, theirs.version >= 5) != 0)
                    reason = P2P_DISC_INVALID;
                printf("disconnect: %s (0x%02x)\n", p2p_disc_reason_str(reason), reason);
                status = 1;
                closed = true;
                break;
            }
        }
        if (closed) break;
        uint8_t disc[3];
        size_t dlen;
        if (p2p_disc_encode(disc, sizeof disc, &dlen, P2P_DISC_REQUESTED) == 0) {
            c.deadline = p2p_now_ns() + P2P_NS_PER_S; /* discWriteTimeout */
            if (send_msg(&c, P2P_MSG_DISC, disc, dlen) == 0) {
                /* half-close, then drain briefly so the remote reads our
                 * Disconnect before the connection is reset */
                shutdown(c.fd, SHUT_WR);
                uint8_t sink[4096];
                while (netio_wait_readable(c.fd, c.deadline) == 0 &&
                       recv(c.fd, sink, sizeof sink, 0) > 0) {
                }
            }
        }
        break;
    }
    if (c.fd >= 0) close(c.fd);
    p2p_rlpx_codec_wipe(&c.codec);
    free(c.buf);
    free(c.scratch);
    free(c.out);
    return status;
}

int cmd_rlpx(int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"ping", "handshake and Hello exchange with a node"},
    };
    if (argc > 0 && strcmp(argv[0], "ping") == 0) return rlpx_ping(argc - 1, argv + 1);
    return cli_group_help("rlpx", subs, 1, argc, argv);
}
