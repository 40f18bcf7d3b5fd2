/*
 * wire/disc_reason.h: the devp2p base protocol's Disconnect reason codes
 * (the values on the wire), shared by the run loop's checkpoints, the peer
 * threads and the base-protocol codec.
 *
 * Thread-safety: constants and a pure function.
 */
#ifndef P2P_WIRE_DISC_REASON_H
#define P2P_WIRE_DISC_REASON_H

enum p2p_disc_reason {
    P2P_DISC_REQUESTED = 0x00,
    P2P_DISC_NETWORK_ERROR = 0x01,
    P2P_DISC_PROTOCOL_ERROR = 0x02, /* breach of protocol */
    P2P_DISC_USELESS_PEER = 0x03,
    P2P_DISC_TOO_MANY_PEERS = 0x04,
    P2P_DISC_ALREADY_CONNECTED = 0x05,
    P2P_DISC_INCOMPATIBLE_VERSION = 0x06, /* incompatible p2p protocol version */
    P2P_DISC_INVALID_IDENTITY = 0x07,
    P2P_DISC_QUITTING = 0x08,
    P2P_DISC_UNEXPECTED_IDENTITY = 0x09,
    P2P_DISC_SELF = 0x0a, /* connected to self */
    P2P_DISC_READ_TIMEOUT = 0x0b,
    P2P_DISC_SUBPROTOCOL_ERROR = 0x10,
    P2P_DISC_INVALID = 0xff, /* what an undecodable Disconnect maps to */
};

/* Static text for a reason code ("too many peers"); "unknown" otherwise. */
static inline const char *p2p_disc_reason_str(unsigned r)
{
    switch (r) {
    case P2P_DISC_REQUESTED:
        return "disconnect requested";
    case P2P_DISC_NETWORK_ERROR:
        return "network error";
    case P2P_DISC_PROTOCOL_ERROR:
        return "breach of protocol";
    case P2P_DISC_USELESS_PEER:
        return "useless peer";
    case P2P_DISC_TOO_MANY_PEERS:
        return "too many peers";
    case P2P_DISC_ALREADY_CONNECTED:
        return "already connected";
    case P2P_DISC_INCOMPATIBLE_VERSION:
        return "incompatible p2p protocol version";
    case P2P_DISC_INVALID_IDENTITY:
        return "invalid node identity";
    case P2P_DISC_QUITTING:
        return "client quitting";
    case P2P_DISC_UNEXPECTED_IDENTITY:
        return "unexpected identity";
    case P2P_DISC_SELF:
        return "connected to self";
    case P2P_DISC_READ_TIMEOUT:
        return "read timeout";
    case P2P_DISC_SUBPROTOCOL_ERROR:
        return "subprotocol error";
    case P2P_DISC_INVALID:
        return "invalid disconnect reason";
    default:
        return "unknown";
    }
}

#endif
