/*
 * tests/alloc/af.c: the allocation wrappers of af.h (linked only into the
 * allocation-failure test, whose link arguments name them).  Any thread.
 */
#include "tests/alloc/af.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* seq_cst throughout (this is test code, off any measured path): the
 * counter numbers the calls of every thread; the test thread reads the
 * results after joining or waiting on what it drove */
static atomic_long target; /* 0: disarmed */
static atomic_long calls;
static atomic_bool fired;
static atomic_bool sticky; /* every call from the target on fails */
static _Thread_local bool exempt;

static void arm(long n, bool from_n)
{
    atomic_store_explicit(&target, 0, memory_order_seq_cst);
    atomic_store_explicit(&calls, 0, memory_order_seq_cst);
    atomic_store_explicit(&fired, false, memory_order_seq_cst);
    atomic_store_explicit(&sticky, from_n, memory_order_seq_cst);
    atomic_store_explicit(&target, n, memory_order_seq_cst);
}

void af_arm(long n)
{
    arm(n, false);
}

void af_arm_from(long n)
{
    arm(n, true);
}

bool af_disarm(void)
{
    atomic_store_explicit(&target, 0, memory_order_seq_cst);
    return atomic_load_explicit(&fired, memory_order_seq_cst);
}

bool af_fired(void)
{
    return atomic_load_explicit(&fired, memory_order_seq_cst);
}

long af_calls(void)
{
    return atomic_load_explicit(&calls, memory_order_seq_cst);
}

bool af_exempt(bool on)
{
    bool was = exempt;
    exempt = on;
    return was;
}

static bool fail_now(void)
{
    if (exempt) return false;
    long t = atomic_load_explicit(&target, memory_order_seq_cst);
    if (t <= 0) return false;
    long c = atomic_fetch_add_explicit(&calls, 1, memory_order_seq_cst) + 1;
    if (c != t && !(c > t && atomic_load_explicit(&sticky, memory_order_seq_cst))) return false;
    atomic_store_explicit(&fired, true, memory_order_seq_cst);
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fail_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
    return fail_now() ? NULL : __real_aligned_alloc(a, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_now() ? NULL : __real_strndup(s, n);
}
