/*
 * core/utf8.c: UTF-8 validation and cleaning (see utf8.h).
 */
#include "core/utf8.h"

#include <stdbool.h>
#include <string.h>

size_t p2p_utf8_seq_len(const uint8_t *p, size_t n)
{
    if (n == 0) return 0;
    unsigned c = p[0], cp, min;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t p2p_utf8_clean(char *out, size_t outcap, const char *in, size_t inlen)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t i = 0, o = 0;
    while (i < inlen) {
        size_t n = p2p_utf8_seq_len(p + i, inlen - i);
        bool ctl = n && p2p_utf8_is_control(p + i, n);
        size_t w = n && !ctl ? n : 1;
        if (w >= outcap - o) break; /* keep room for the NUL */
        if (n && !ctl)
            memmove(out + o, p + i, n); /* o <= i: may overlap when cleaning in place */
        else
            out[o] = '?';
        o += w;
        i += n ? n : 1;
    }
    out[o] = 0;
    return o;
}
