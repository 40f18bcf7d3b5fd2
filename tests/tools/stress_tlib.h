/*
 * tests/tools/stress_tlib.h: helpers shared by the tests that run the
 * `devp2p stress` tool as a child: a bounded wait for the child and the
 * JSON summary's integer fields.  Static functions: include once per test.
 */
#ifndef P2P_TESTS_TOOLS_STRESS_TLIB_H
#define P2P_TESTS_TOOLS_STRESS_TLIB_H

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "tests/tu.h"

/* Waits for child pid at most limit_s seconds (status in *st); past that
 * kills it, reaps it and fails a check.  Returns pid, 0 if it was killed,
 * or -1 if waitpid failed. */
static pid_t wait_bounded(pid_t pid, int limit_s, const char *what, int *st)
{
    pid_t w = tu_wait_child(pid, limit_s, st);
    if (w == 0) {
        fprintf(stderr, "%s: killed after %d s\n", what, limit_s);
        CHECK(false);
    }
    return w;
}

/* The integer field k of o (a check fails, and -1 is returned, if absent). */
static json_int_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) fprintf(stderr, "no integer '%s'\n", k);
    CHECK(json_is_integer(v));
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

#endif
