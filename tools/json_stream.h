/*
 * tools/json_stream.h: reading a stream of JSON values as its bytes arrive
 * (the admin socket's requests in tools/admin_req.c, its answers in
 * `devp2p attach`): telling a value that is cut by the end of the bytes
 * received so far from one that is malformed.  Pure; any thread.
 */
#ifndef P2P_TOOLS_JSON_STREAM_H
#define P2P_TOOLS_JSON_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* True when je, the error of json_loadb on buf[0, len), only says that the
 * value goes on past len: the error is at the end (jansson reports a value
 * cut short there), or it is an undecodable byte that starts a UTF-8
 * sequence of which buf holds the first bytes only (a read can end inside
 * a character; jansson puts that error at the sequence's first byte).
 * False for any other error inside the bytes, and for one with no text
 * (out of memory: the caller tells that case first where it matters). */
static inline bool json_stream_cut(const char *buf, size_t len, const json_error_t *je)
{
    if (je->position < 0 || (size_t)je->position >= len) return true;
    /* json_error_code reads a byte json_loadb sets only with an error */
    if (!je->text[0] || json_error_code(je) != json_error_invalid_utf8) return false;
    size_t pos = (size_t)je->position;
    unsigned char c = (unsigned char)buf[pos];
    size_t need = c >= 0xC2 && c <= 0xDF   ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 0;
    if (need == 0 || len - pos >= need) return false;
    for (size_t i = pos + 1; i < len; i++)
        if (((unsigned char)buf[i] & 0xC0) != 0x80) return false;
    return true;
}

#endif
