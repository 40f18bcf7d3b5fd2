/*
 * core/utf8.h: UTF-8 validation and cleaning of untrusted text (a remote
 * peer's client and capability names) before it reaches JSON, logs or a
 * terminal.  Valid means RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF.
 *
 * Thread-safety: pure functions on buffers owned by the caller.
 */
#ifndef P2P_CORE_UTF8_H
#define P2P_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence that starts p[0, n), or 0 when
 * none does (also for n == 0 and for a sequence cut by the end). */
size_t p2p_utf8_seq_len(const uint8_t *p, size_t n);

/* True when the valid sequence p[0, len) (len from p2p_utf8_seq_len, >= 1)
 * is a control character: C0 (NUL included), DEL or C1 (U+0080..U+009F:
 * C2 80..C2 9F, which terminals obey, U+009B being CSI, and log readers
 * may split at, U+0085 being NEL). */
static inline bool p2p_utf8_is_control(const uint8_t *p, size_t len)
{
    return (len == 1 && (p[0] < 0x20 || p[0] == 0x7f)) || (len == 2 && p[0] == 0xC2 && p[1] < 0xA0);
}

/* Copies in[0, inlen) to out as valid UTF-8 without control characters:
 * each byte that does not start a valid sequence, each C0 control (NUL
 * included), DEL and each C1 control (U+0080..U+009F, two bytes each)
 * becomes '?'.  Stops before a character that would not
 * fit, so out (outcap >= 1 bytes) always ends with a NUL on a character
 * boundary.  The output is never longer than the input, so out may equal
 * in (cleaning in place).  Returns the bytes written, NUL excluded. */
size_t p2p_utf8_clean(char *out, size_t outcap, const char *in, size_t inlen);

#endif
