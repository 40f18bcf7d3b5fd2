/*
 * tests/fuzz/replay.c: a driver that runs a libFuzzer target without
 * libFuzzer.  Every build replays each target's seed corpus (so sanitizer
 * builds check it) and then feeds a bounded number of deterministic
 * mutations of each seed (bit flips, truncations, splices, random bytes).
 *
 * Usage: replay_<target> CORPUS_DIR [MUTATIONS_PER_SEED]
 * Without MUTATIONS_PER_SEED, each seed gets 200 mutations, fewer when the
 * corpus is large (REPLAY_BUDGET mutations in all, at least 8 per seed), so
 * a grown corpus of a few hundred files replays in seconds.
 * Fails (exit 1) if the corpus is empty; a crash fails through the
 * sanitizer or the signal.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (1u << 20)
#define REPLAY_BUDGET 20000u

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void mutate_and_run(const uint8_t *seed, size_t n, unsigned rounds)
{
    static uint8_t buf[REPLAY_MAX_INPUT];
    for (unsigned r = 0; r < rounds; r++) {
        size_t len = n;
        memcpy(buf, seed, n);
        switch (next() % 5) {
        case 0: /* bit flips */
            for (int k = 0; k < 1 + (int)(next() % 4) && len; k++)
                buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1: /* truncation */
            len = len ? next() % len : 0;
            break;
        case 2: /* byte overwrite with interesting values */
            if (len) {
                static const uint8_t v[] = {0x00, 0x7f, 0x80, 0x81, 0xb7, 0xb8,
                                            0xbf, 0xc0, 0xf7, 0xf8, 0xff};
                buf[next() % len] = v[next() % sizeof v];
            }
            break;
        case 3: /* append random bytes */ {
            size_t add = next() % 64;
            if (len + add > REPLAY_MAX_INPUT) add = REPLAY_MAX_INPUT - len;
            for (size_t i = 0; i < add; i++) buf[len + i] = (uint8_t)next();
            len += add;
            break;
        }
        default: /* duplicate a chunk */
            if (len > 2 && len * 2 <= REPLAY_MAX_INPUT) {
                size_t a = next() % len, b = next() % (len - a);
                memmove(buf + a + b, buf + a, len - a);
                len += b;
            }
            break;
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "%s: cannot open corpus %s\n", argv[0], argv[1]);
        return 1;
    }
    unsigned nseeds = 0;
    for (struct dirent *e; (e = readdir(d));) nseeds += e->d_name[0] != '.';
    rewinddir(d);
    unsigned rounds = 200;
    if (argc > 2)
        rounds = (unsigned)strtoul(argv[2], NULL, 10);
    else if (nseeds && REPLAY_BUDGET / nseeds < rounds)
        rounds = REPLAY_BUDGET / nseeds < 8 ? 8 : REPLAY_BUDGET / nseeds;
    static uint8_t seed[REPLAY_MAX_INPUT];
    unsigned files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        size_t n = fread(seed, 1, sizeof seed, f);
        fclose(f);
        LLVMFuzzerTestOneInput(seed, n);
        mutate_and_run(seed, n, rounds);
        files++;
    }
    closedir(d);
    if (files == 0) {
        fprintf(stderr, "%s: corpus %s is empty\n", argv[0], argv[1]);
        return 1;
    }
    printf("replayed %u seeds with %u mutations each\n", files, rounds);
    return 0;
}
