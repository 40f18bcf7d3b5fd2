/* Error codes: every code has a distinct name and a non-empty description. */
#include "core/err.h"
#include "tests/tu.h"

int main(void)
{
    static const int codes[] = {
#define X(name, val, desc) P2P_##name,
        P2P_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof codes / sizeof codes[0];
    CHECK(strcmp(p2p_strerror(0), "success") == 0);
    CHECK(strcmp(p2p_errname(0), "OK") == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(codes[i] < 0);
        CHECK(strlen(p2p_strerror(codes[i])) > 0);
        CHECK(strcmp(p2p_strerror(codes[i]), "unknown error") != 0);
        CHECK(p2p_errname(codes[i])[0] == 'E');
        for (size_t j = i + 1; j < n; j++) {
            CHECK(codes[i] != codes[j]);
            CHECK(strcmp(p2p_errname(codes[i]), p2p_errname(codes[j])) != 0);
        }
    }
    CHECK(strcmp(p2p_strerror(-9999), "unknown error") == 0);
    CHECK(strcmp(p2p_errname(P2P_EDECODE), "EDECODE") == 0);
    return tu_done("err");
}
