/*
 * core/err.c: static strings for the P2P_E* codes.  Pure; any thread.
 */
#include "core/err.h"

const char *p2p_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define P2P__ERR_STR(name, val, desc)                                                              \
    case (val):                                                                                    \
        return desc;
        P2P_ERRNO_MAP(P2P__ERR_STR)
#undef P2P__ERR_STR
    default:
        return "unknown error";
    }
}

const char *p2p_errname(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define P2P__ERR_NAME(name, val, desc)                                                             \
    case (val):                                                                                    \
        return #name;
        P2P_ERRNO_MAP(P2P__ERR_NAME)
#undef P2P__ERR_NAME
    default:
        return "EUNKNOWN";
    }
}
