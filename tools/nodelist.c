/*
 * tools/nodelist.c: splitting devp2pd's node lists (tools/nodelist.h).
 */
#include "tools/nodelist.h"

#include <string.h>

/* A token with the brackets of a JSON array around it removed; those of
 * an IPv6 address balance and stay. */
static char *unbracket(char *t)
{
    while (*t == '[') t++;
    size_t open = 0, close = 0, len = strlen(t);
    for (size_t i = 0; i < len; i++) {
        open += t[i] == '[';
        close += t[i] == ']';
    }
    while (len && t[len - 1] == ']' && close > open) {
        t[--len] = 0;
        close--;
    }
    return t;
}

int nodelist_each(char *text, int (*fn)(char *token, void *ctx), void *ctx)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(line, ", \t\r\"", &s2); t; t = strtok_r(NULL, ", \t\r\"", &s2)) {
            t = unbracket(t);
            if (!*t) continue;
            int rc = fn(t, ctx);
            if (rc) return rc;
        }
    }
    return 0;
}
