/*
 * tools/netio.c: poll-based socket I/O with deadlines (see netio.h).
 */
#include "tools/netio.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/netutil.h"

static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t now = p2p_now_ns();
        if (now >= deadline) return P2P_ETIMEDOUT;
        uint64_t ms = (deadline - now + P2P_NS_PER_MS - 1) / P2P_NS_PER_MS;
        struct pollfd p = {.fd = fd, .events = ev};
        int n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return P2P_ESYS;
    }
}

int netio_wait_readable(int fd, uint64_t deadline)
{
    return wait_fd(fd, POLLIN, deadline);
}

int netio_connect(int *out, const p2p_ip_t *ip, uint16_t port, uint64_t deadline)
{
    *out = -1;
    struct sockaddr_storage ss;
    socklen_t sl = p2p_ip_to_sockaddr(&ss, ip, port);
    if (!sl) return P2P_EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return P2P_ESYS;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return P2P_ESYS;
    }
    int rc = wait_fd(fd, POLLOUT, deadline);
    if (rc == 0) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
        if (err) {
            close(fd);
            errno = err;
            return P2P_ESYS;
        }
        *out = fd;
        return 0;
    }
    close(fd);
    return rc;
}

int netio_write_all(int fd, const void *buf, size_t len, uint64_t deadline)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return P2P_ESYS;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc) return rc;
    }
    return 0;
}

int netio_read_exact(int fd, void *buf, size_t len, uint64_t deadline)
{
    uint8_t *p = buf;
    while (len) {
        /* also while bytes keep coming: a caller that reads message after
         * message under one deadline (rlpx ping's wait for a Disconnect)
         * must not be held past it by a remote that never stops sending */
        if (p2p_now_ns() >= deadline) return P2P_ETIMEDOUT;
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) return P2P_ECLOSED;
        if (errno != EAGAIN && errno != EINTR) return P2P_ESYS;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc) return rc;
    }
    return 0;
}
