/*
 * tests/alloc/af.h: a test-only allocation-failure injector.  The test
 * executable is linked with -Wl,--wrap for malloc, calloc, realloc,
 * aligned_alloc, strdup and strndup, so every call to them from the
 * objects linked into it (libdevp2p and the test itself, not the shared
 * libraries: libsecp256k1, Nettle, Berkeley DB and libc keep their own)
 * goes through af.c.  Once armed with n, the n-th counted call (counted
 * across all threads, in the order they reach the counter) returns NULL
 * with errno ENOMEM (af_arm_from: the n-th and every later one); every
 * other call goes to the real allocator (the sanitizers' interceptors in
 * sanitizer builds).  A thread can exempt itself (the test thread while it
 * drives a client of its own).
 */
#ifndef P2P_TESTS_ALLOC_AF_H
#define P2P_TESTS_ALLOC_AF_H

#include <stdbool.h>

/* Fails the n-th counted allocation from now (n >= 1); 0 disarms. */
void af_arm(long n);
/* Fails every counted allocation from the n-th on (n >= 1), until
 * disarmed: memory that stays short. */
void af_arm_from(long n);
/* Disarms.  Returns whether the armed failure was injected (this stays
 * readable through af_fired and later af_disarm calls until af_arm). */
bool af_disarm(void);
/* Whether the armed failure was injected yet (still armed). */
bool af_fired(void);
/* Counted allocations since the last af_arm. */
long af_calls(void);
/* Exempts the calling thread from counting (on: true) or not.  Returns
 * whether it was exempt before. */
bool af_exempt(bool on);

#endif
