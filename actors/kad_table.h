/*
 * actors/kad_table.h: the Kademlia routing table of discovery v4 (pure core).
 *
 * 17 buckets of 16 live entries, indexed by log distance to our own ID
 * (distances <= 240 share bucket 0: bucketMinDistance 239), each with a
 * replacement list of 10 nodes (most recently seen first).  IP limits: at
 * most 2 addresses per /24 (IPv6 too: its first 24 bits) in a bucket (entries and
 * replacements) and 10 in the whole table; LAN and loopback addresses are
 * exempt.
 *
 * Two ways in:
 * - add_seen: a node we heard about (lookup replies, seeds, bootnodes).  It
 *   goes to the back of its bucket unverified (livenessChecks 0), or to the
 *   replacement list when the bucket is full.  A node already present only
 *   has its record refreshed when the offered one has a higher seq.
 * - add_verified: a node that proved its endpoint (answered our ping, or
 *   pinged us while bonded).  It goes to the front of its bucket marked live
 *   (livenessChecks >= 1), its endpoint is updated, or it becomes a
 *   replacement when the bucket is full.
 * Endpoint changes re-check the IP limits; if the new address does not fit,
 * the old one is kept and the add returns P2P_KAD_ADDR_LIMIT (but ADDED
 * for a replacement that enters the live list at the same time).  A
 * verified add refused so leaves the entry as it was: the proof was for the
 * other address, so the one kept is not marked live nor moved to the front.
 *
 * Revalidation: every entry is on the fast list (new, or just failed a
 * check) or the slow list (answered its last check).  Each list is next due
 * after a delay drawn uniformly from (0, interval) (fast 3 s, slow 9 s), as
 * the reference client's: one check every half interval on average (1.5 s
 * and 4.5 s); when due, one random entry of the list that has
 * no check in flight is handed out to be pinged.  The outcome is reported
 * back: no reply -> livenessChecks /= 3, and at 0 the entry is deleted and a
 * replacement chosen at random promoted; a reply -> livenessChecks++, move to the
 * slow list, and "ENR needed" if the pong carried a higher seq.
 *
 * Ownership: a table is a plain value owned by one thread (the discovery
 * table actor, via disc_core); no locking, no allocation, no clock (times are
 * monotonic nanoseconds passed in).  Randomness comes from a seeded PRNG in
 * the table so runs are reproducible.
 */
#ifndef P2P_ACTORS_KAD_TABLE_H
#define P2P_ACTORS_KAD_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "wire/node.h"

enum p2p_kad_limits {
    P2P_KAD_BUCKET_SIZE = 16,
    P2P_KAD_NBUCKETS = 17,
    P2P_KAD_MAX_REPLACEMENTS = 10,
    P2P_KAD_BUCKET_MIN_DIST = 239,
    P2P_KAD_BUCKET_IP_LIMIT = 2,
    P2P_KAD_TABLE_IP_LIMIT = 10,
    P2P_KAD_SEED_MIN_CHECKS = 5,     /* live with checks > 5: worth keeping as a DB seed */
    P2P_KAD_MAX_FINDFAILS = 5,       /* findnode failures before eviction ... */
    P2P_KAD_FINDFAIL_MIN_BUCKET = 4, /* ... if the bucket keeps at least this many */
};

#define P2P_KAD_FAST_NS 3000000000ull /* fast revalidation list interval */
#define P2P_KAD_SLOW_NS 9000000000ull /* slow revalidation list interval */

typedef struct p2p_kad_entry {
    p2p_node_t node;
    uint64_t added_ns; /* when it entered the live list */
    uint32_t checks;   /* livenessChecks */
    uint8_t live;      /* answered a check or was added verified */
    uint8_t slow;      /* revalidation list: 0 fast, 1 slow */
    uint8_t pending;   /* a revalidation ping is in flight */
} p2p_kad_entry_t;

typedef struct p2p_kad_bucket {
    unsigned n;     /* live entries in e[] */
    unsigned nrepl; /* replacements in repl[], most recent first */
    p2p_kad_entry_t e[P2P_KAD_BUCKET_SIZE];
    p2p_node_t repl[P2P_KAD_MAX_REPLACEMENTS];
} p2p_kad_bucket_t;

typedef struct p2p_kad_table {
    uint8_t self[32];
    uint64_t rng;        /* splitmix64 state */
    uint64_t next_ns[2]; /* next due time of the fast [0] and slow [1] lists */
    unsigned count;      /* live entries in all buckets */
    unsigned nlist[2];   /* entries on the fast [0] and slow [1] lists */
    unsigned navail[2];  /* of those, entries without a check in flight */
    p2p_kad_bucket_t b[P2P_KAD_NBUCKETS];
} p2p_kad_table_t;

typedef enum p2p_kad_add {
    P2P_KAD_ADDED = 0,       /* new live entry */
    P2P_KAD_UPDATED = 1,     /* was already an entry (record/position refreshed) */
    P2P_KAD_REPLACEMENT = 2, /* bucket full: kept (or already) on the replacement list */
    P2P_KAD_IPLIMIT = 3,     /* rejected by the per-bucket or per-table IP limit */
    P2P_KAD_SELF = 4,        /* our own ID */
    P2P_KAD_NOADDR = 5,      /* no IP address */
    P2P_KAD_RESTRICTED = 6,  /* outside NetRestrict (disc_core, not the table) */
    P2P_KAD_ADDR_LIMIT =
        7, /* already present; its new address is over the IP limit: old one kept */
} p2p_kad_add_t;

/* Outcome of one revalidation, for the caller's events and DB updates. */
typedef struct p2p_kad_reval {
    bool found;      /* the entry was still in the table */
    bool deleted;    /* it was deleted (checks reached 0) */
    bool promoted;   /* a replacement took its place: see promoted_node */
    bool need_enr;   /* the pong's seq is above the record's: request the ENR */
    uint32_t checks; /* livenessChecks after the update */
    p2p_node_t node; /* the entry (as it was before deletion) */
    p2p_node_t promoted_node;
} p2p_kad_reval_t;

/* ---- distances ---- */

/* Log distance: the bit length of a XOR b (0 if equal, 256 at most). */
int p2p_kad_logdist(const uint8_t a[32], const uint8_t b[32]);
/* Compares the XOR distances of a and b to target: <0 if a is closer, 0 if
 * equal, >0 if b is closer. */
int p2p_kad_distcmp(const uint8_t target[32], const uint8_t a[32], const uint8_t b[32]);
/* Out: d = a XOR b. */
void p2p_kad_xor(uint8_t d[32], const uint8_t a[32], const uint8_t b[32]);
/* Bucket index for a log distance: 0 for d <= 240, else d - 240. */
unsigned p2p_kad_bucket_of(int logdist);
/* True if a and b are of one family and share their first 24 bits (a /24
 * for IPv4 and for IPv6 alike). */
bool p2p_kad_same_net(const p2p_ip_t *a, const p2p_ip_t *b);

/* ---- table ---- */

/* Resets t to an empty table for our ID self; seed drives the PRNG. */
void p2p_kad_init(p2p_kad_table_t *t, const uint8_t self[32], uint64_t seed);

/* Adds a node heard about (see the top comment).  now_ns stamps new entries. */
p2p_kad_add_t p2p_kad_add_seen(p2p_kad_table_t *t, const p2p_node_t *n, uint64_t now_ns);
/* Adds a node that proved its endpoint (see the top comment). */
p2p_kad_add_t p2p_kad_add_verified(p2p_kad_table_t *t, const p2p_node_t *n, uint64_t now_ns);

/* Deletes the live entry id.  If a replacement was promoted into its place
 * (as an unverified entry on the fast list, stamped now_ns), copies it to
 * *promoted (when not NULL) and returns 1; returns 0 if deleted without
 * promotion, P2P_ENOTFOUND if id is not a live entry. */
int p2p_kad_delete(p2p_kad_table_t *t, p2p_node_t *promoted, const uint8_t id[32], uint64_t now_ns);

/* Updates the record (seq and endpoint) of the live entry n->id if n->seq is
 * higher, honouring the IP limits.  Returns 0, P2P_ENOTFOUND, or P2P_ELIMIT
 * (new address over the limit: seq updated, old endpoint kept). */
int p2p_kad_update_record(p2p_kad_table_t *t, const p2p_node_t *n);

/* Returns the live entry id, or NULL. */
const p2p_kad_entry_t *p2p_kad_find(const p2p_kad_table_t *t, const uint8_t id[32]);
/* True if id is on its bucket's replacement list. */
bool p2p_kad_is_replacement(const p2p_kad_table_t *t, const uint8_t id[32]);
/* Live entries in the bucket id falls into. */
unsigned p2p_kad_bucket_len(const p2p_kad_table_t *t, const uint8_t id[32]);
/* Live entries in the table. */
static inline unsigned p2p_kad_len(const p2p_kad_table_t *t)
{
    return t->count;
}

/* Out: up to cap (<= 64) nodes closest to target, nearest first.  With
 * prefer_live (the findnode answer), only live (verified) entries if the
 * table has any, else the unverified ones: a node never hands out
 * addresses it has not checked while it knows checked ones.  Returns the
 * count. */
unsigned p2p_kad_closest(const p2p_kad_table_t *t, p2p_node_t *out, unsigned cap,
                         const uint8_t target[32], bool prefer_live);

/* Copies up to cap random live entries to out (for seeding other tables and
 * tests).  Returns the count. */
unsigned p2p_kad_random_nodes(p2p_kad_table_t *t, p2p_node_t *out, unsigned cap);

/* ---- revalidation ---- */

/* If the fast or slow list is due at now_ns, picks a random entry of it
 * without a check in flight, marks it pending, schedules the list's next
 * time and copies the entry to *out: returns true.  Otherwise false.  Call
 * until it returns false. */
bool p2p_kad_reval_next(p2p_kad_table_t *t, p2p_node_t *out, uint64_t now_ns);
/* Applies the outcome of the check of id: responded, with the seq from the
 * pong (0 if none).  Out: *r (see p2p_kad_reval_t). */
void p2p_kad_reval_done(p2p_kad_table_t *t, p2p_kad_reval_t *r, const uint8_t id[32],
                        bool responded, uint64_t pong_seq, uint64_t now_ns);
/* Clears the in-flight mark of id without an outcome (the check could not
 * be sent). */
void p2p_kad_reval_cancel(p2p_kad_table_t *t, const uint8_t id[32]);
/* Earliest time a revalidation list is due (UINT64_MAX if the table is
 * empty). */
uint64_t p2p_kad_reval_deadline(const p2p_kad_table_t *t);

/* Uniform random value in [0, n) from the table's PRNG (n > 0). */
uint64_t p2p_kad_rand(p2p_kad_table_t *t, uint64_t n);

#endif
