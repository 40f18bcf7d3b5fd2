/*
 * tools/netio.h: deadline-bounded blocking socket helpers for the tool's
 * one-shot network commands (rlpx ping, attach).  Every call takes an
 * absolute CLOCK_MONOTONIC deadline (core/clock.h) and returns 0,
 * P2P_ETIMEDOUT, P2P_ECLOSED (orderly EOF) or P2P_ESYS (errno set).
 * Main thread only.
 */
#ifndef P2P_TOOLS_NETIO_H
#define P2P_TOOLS_NETIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/node.h"

/* Opens a TCP connection to ip:port.  Out: *fd (non-blocking). */
P2P_MUST_CHECK int netio_connect(int *fd, const p2p_ip_t *ip, uint16_t port, uint64_t deadline);
/* Writes all len bytes. */
P2P_MUST_CHECK int netio_write_all(int fd, const void *buf, size_t len, uint64_t deadline);
/* Reads exactly len bytes.  A deadline that has passed ends it even while
 * bytes are available (P2P_ETIMEDOUT). */
P2P_MUST_CHECK int netio_read_exact(int fd, void *buf, size_t len, uint64_t deadline);
/* Waits until fd is readable.  Returns 0 or P2P_ETIMEDOUT / P2P_ESYS. */
P2P_MUST_CHECK int netio_wait_readable(int fd, uint64_t deadline);

#endif
