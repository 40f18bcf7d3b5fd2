/*
 * actors/connflags.h: connection flags shared by the run loop, the dialer,
 * the listener and the peer threads (the same bit values as geth's connFlag,
 * so traces read alike).
 *
 * Thread-safety: constants only.
 */
#ifndef P2P_ACTORS_CONNFLAGS_H
#define P2P_ACTORS_CONNFLAGS_H

enum p2p_conn_flag {
    P2P_CONN_DYN_DIALED = 1,    /* dialled because discovery offered the node */
    P2P_CONN_STATIC_DIALED = 2, /* dialled because the node is in the static set */
    P2P_CONN_INBOUND = 4,       /* accepted by the listener */
    P2P_CONN_TRUSTED = 8,       /* in the trusted set: exempt from the peer limits */
};

#define P2P_CONN_DIALED (P2P_CONN_DYN_DIALED | P2P_CONN_STATIC_DIALED)

#endif
