/*
 * tools/json_put.h: building a JSON object whose members must all be there
 * (an admin answer, a stress report): each member is set with json_put,
 * and one failure marks the whole object failed, so the caller drops it
 * instead of writing it with members missing.
 */
#ifndef P2P_TOOLS_JSON_PUT_H
#define P2P_TOOLS_JSON_PUT_H

#include <jansson.h>

/* Sets o[key] = v (taking v's reference).  A failure (v could not be
 * built, or o is NULL or cannot grow) sets *bad to -1. */
static inline void json_put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (json_object_set_new(o, key, v) != 0) *bad = -1;
}

#endif
