/*
 * tests/core/test_utf8.c: core/utf8.h: sequence lengths at the RFC 3629
 * edges (overlong forms, surrogates, past U+10FFFF, cut sequences) and the
 * cleaning of untrusted names: invalid bytes and control characters (C0,
 * DEL and the C1 controls U+0080..U+009F) as '?', the output cut on a
 * character boundary, cleaning in place.
 */
#include "core/utf8.h"

#include "tests/tu.h"

static size_t seq(const char *s, size_t n)
{
    return p2p_utf8_seq_len((const uint8_t *)s, n);
}

static void clean_is(size_t cap, const char *in, size_t inlen, const char *want)
{
    char out[64];
    memset(out, 'Z', sizeof out);
    size_t n = p2p_utf8_clean(out, cap, in, inlen);
    CHECK(n == strlen(want));
    CHECK(strcmp(out, want) == 0);
}

int main(void)
{
    CHECK(seq("a", 1) == 1);
    CHECK(seq("", 0) == 0);
    CHECK(seq("\xc3\xa9", 2) == 2);
    CHECK(seq("\xc3\xa9", 1) == 0);         /* cut by the end */
    CHECK(seq("\xc0\xaf", 2) == 0);         /* overlong '/' */
    CHECK(seq("\xe0\x80\xaf", 3) == 0);     /* overlong, 3 bytes */
    CHECK(seq("\xe2\x82\xac", 3) == 3);     /* U+20AC */
    CHECK(seq("\xed\xa0\x80", 3) == 0);     /* U+D800, a surrogate */
    CHECK(seq("\xf0\x9f\x98\x80", 4) == 4); /* U+1F600 */
    CHECK(seq("\xf4\x90\x80\x80", 4) == 0); /* past U+10FFFF */
    CHECK(seq("\xff", 1) == 0 && seq("\x80", 1) == 0);
    CHECK(seq("\xe2\x28\xac", 3) == 0); /* not a continuation byte */

    clean_is(64, "geth/v1.14", 10, "geth/v1.14");
    clean_is(64, "\xff\xfe", 2, "??");
    clean_is(64, "a\x01\x7f\0b", 5, "a???b");
    clean_is(64, "\xc3", 1, "?"); /* cut sequence at the end */
    clean_is(64, "\xe2\x82x", 3, "??x");
    /* C1 controls, valid UTF-8 but controls: U+009B is CSI (a terminal
     * takes "\xc2\x9b" "2J" as clear-screen), U+0085 NEL a line break for
     * many log readers; U+00A0, the first character after them, stays */
    clean_is(64,
             "a\xc2\x9b"
             "2J\xc2\x85"
             "b\xc2\x80\xc2\x9f\xc2\xa0",
             14, "a?2J?b??\xc2\xa0");
    /* cut on a character boundary: 3 bytes of room, a 2-byte char at 2 */
    clean_is(4, "ab\xc3\xa9", 4, "ab");
    clean_is(5, "ab\xc3\xa9", 4, "ab\xc3\xa9");
    clean_is(1, "abc", 3, "");
    /* 50 two-byte characters into 64 bytes: 31 characters, 62 bytes */
    char longname[101], want[63];
    for (int i = 0; i < 50; i++) memcpy(longname + 2 * i, "\xc3\xa9", 2);
    longname[100] = 0;
    memcpy(want, longname, 62);
    want[62] = 0;
    clean_is(64, longname, 100, want);
    /* in place: same length */
    char buf[16] = "x\xff\xc3\xa9\x02y";
    CHECK(p2p_utf8_clean(buf, sizeof buf, buf, 6) == 6);
    CHECK(strcmp(buf, "x?\xc3\xa9?y") == 0);
    return tu_done("utf8");
}
