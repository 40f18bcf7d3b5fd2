/*
 * tests/tools/admin_fixture.h: the admin socket configuration the tests
 * start an admin_rpc_t with: a socket at path, a fixed enode and record,
 * loopback endpoints, no server, discovery or trace (callers set the ones
 * they need on the returned value).
 */
#ifndef P2P_TESTS_TOOLS_ADMIN_FIXTURE_H
#define P2P_TESTS_TOOLS_ADMIN_FIXTURE_H

#include "tools/admin_rpc.h"

static inline admin_rpc_config_t admin_fixture_config(const char *path, const char *name,
                                                      node_endpoint_stats_t *eps)
{
    return (admin_rpc_config_t){.path = path,
                                .endpoints = eps,
                                .name = name,
                                .enode =
                                    "enode://"
                                    "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace2"
                                    "4351232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6"
                                    "a439@127.0.0.1:30303",
                                .enr = "enr:-",
                                .listen_addr = "127.0.0.1:30303",
                                .tcp_port = 30303,
                                .udp_port = 30303};
}

#endif
