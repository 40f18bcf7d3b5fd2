/*
 * core/timer.c: the timer min-heap (see timer.h).  Pure; one owner thread.
 *
 * Storage: slots[] hold the timers (stable addresses for ids), heap[] is
 * the binary heap of slot indices ordered by (deadline, order), and each
 * slot records its heap position so cancel can remove from the middle.
 * An id is (generation << P2P_TIMER_SLOT_BITS) | (slot + 1): 25 bits of
 * slot, 39 of generation (timer.h).
 */
#include "core/timer.h"

#include <stdlib.h>

#include "core/clock.h"

#define NOPOS UINT32_MAX

int p2p_timers_init(p2p_timers_t *h, uint32_t cap)
{
    *h = (p2p_timers_t){0};
    if (cap == 0 || cap > (1u << 24)) return P2P_EINVAL;
    h->heap = calloc(cap, sizeof *h->heap);
    h->slots = calloc(cap, sizeof *h->slots);
    h->free = calloc(cap, sizeof *h->free);
    if (!h->heap || !h->slots || !h->free) {
        p2p_timers_free(h);
        return P2P_ENOMEM;
    }
    h->cap = cap;
    for (uint32_t i = 0; i < cap; i++) {
        h->slots[i].pos = NOPOS;
        h->slots[i].gen = 1;
        h->free[i] = cap - 1 - i; /* pop order: slot 0 first */
    }
    h->nfree = cap;
    return 0;
}

void p2p_timers_free(p2p_timers_t *h)
{
    free(h->heap);
    free(h->slots);
    free(h->free);
    *h = (p2p_timers_t){0};
}

static inline bool before(const p2p_timers_t *h, uint32_t a, uint32_t b)
{
    const struct p2p_timer_slot *x = &h->slots[a], *y = &h->slots[b];
    return x->t.deadline_ns < y->t.deadline_ns ||
           (x->t.deadline_ns == y->t.deadline_ns && x->order < y->order);
}

static inline void place(p2p_timers_t *h, uint32_t pos, uint32_t slot)
{
    h->heap[pos] = slot;
    h->slots[slot].pos = pos;
}

static void sift_up(p2p_timers_t *h, uint32_t pos)
{
    uint32_t slot = h->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!before(h, slot, h->heap[parent])) break;
        place(h, pos, h->heap[parent]);
        pos = parent;
    }
    place(h, pos, slot);
}

static void sift_down(p2p_timers_t *h, uint32_t pos)
{
    uint32_t slot = h->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(h, h->heap[c + 1], h->heap[c])) c++;
        if (!before(h, h->heap[c], slot)) break;
        place(h, pos, h->heap[c]);
        pos = c;
    }
    place(h, pos, slot);
}

int p2p_timers_add(p2p_timers_t *h, p2p_timer_id_t *id, uint64_t deadline_ns, uint32_t kind,
                   uint64_t arg)
{
    if (h->nfree == 0) return P2P_EFULL;
    uint32_t slot = h->free[--h->nfree];
    struct p2p_timer_slot *s = &h->slots[slot];
    s->t.id = s->gen << P2P_TIMER_SLOT_BITS | (slot + 1);
    s->t.deadline_ns = deadline_ns;
    s->t.kind = kind;
    s->t.arg = arg;
    s->order = h->order++;
    place(h, h->n++, slot);
    sift_up(h, h->n - 1);
    if (id) *id = s->t.id;
    return 0;
}

/* Returns the slot of a pending id, or NOPOS. */
static uint32_t lookup(const p2p_timers_t *h, p2p_timer_id_t id)
{
    uint64_t idx = id & ((1ull << P2P_TIMER_SLOT_BITS) - 1);
    if (idx == 0 || idx > h->cap) return NOPOS;
    uint32_t slot = (uint32_t)idx - 1;
    const struct p2p_timer_slot *s = &h->slots[slot];
    if (s->pos == NOPOS || s->t.id != id) return NOPOS;
    return slot;
}

static void remove_at(p2p_timers_t *h, uint32_t pos)
{
    uint32_t slot = h->heap[pos];
    struct p2p_timer_slot *s = &h->slots[slot];
    s->pos = NOPOS;
    /* a slot whose generations are used up is retired: its ids would
     * come again */
    if (++s->gen < P2P_TIMER_GEN_END) h->free[h->nfree++] = slot;
    h->n--;
    if (pos == h->n) return;
    place(h, pos, h->heap[h->n]);
    if (pos > 0 && before(h, h->heap[pos], h->heap[(pos - 1) / 2]))
        sift_up(h, pos);
    else
        sift_down(h, pos);
}

int p2p_timers_cancel(p2p_timers_t *h, p2p_timer_id_t id)
{
    uint32_t slot = lookup(h, id);
    if (slot == NOPOS) return P2P_ENOTFOUND;
    remove_at(h, h->slots[slot].pos);
    return 0;
}

bool p2p_timers_pending(const p2p_timers_t *h, p2p_timer_id_t id)
{
    return lookup(h, id) != NOPOS;
}

uint64_t p2p_timers_next(const p2p_timers_t *h)
{
    return h->n ? h->slots[h->heap[0]].t.deadline_ns : P2P_DEADLINE_NEVER;
}

int p2p_timers_pop_due(p2p_timers_t *h, p2p_timer_t *out, uint64_t now_ns)
{
    if (h->n == 0) return P2P_EEMPTY;
    struct p2p_timer_slot *s = &h->slots[h->heap[0]];
    if (s->t.deadline_ns > now_ns) return P2P_EEMPTY;
    *out = s->t;
    remove_at(h, 0);
    return 0;
}
