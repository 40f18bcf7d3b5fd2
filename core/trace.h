/*
 * core/trace.h: actor trace rings in a shared-memory file.
 *
 * Writer side (the node): p2p_trace_open(path, rings, cap) creates the file
 * (a new one: an earlier file at path is unlinked, so readers that map it
 * keep it) with its blocks reserved (posix_fallocate, so recording never meets a
 * full disk) and maps it (MAP_SHARED), e.g. <datadir>/trace.ring; it holds an
 * exclusive flock(2) on the file until p2p_trace_close or its exit, kill -9
 * included (readers: p2p_trace_reader_writer_alive).  Each thread that
 * records gets its own ring on first use (single writer per ring, released
 * at thread exit), so recording takes no lock and no RMW: a clock read and
 * a few stores.  Mailbox push/pop record automatically; actors add their own
 * events with P2P_TRACE_EVENT.  p2p_trace_enable(false) turns recording off:
 * every hook then costs one relaxed load and a branch, and nothing is
 * written (threads that exit or rename meanwhile give their ring back
 * without a STOP record).
 *
 * Reader side (another process, or the devp2p trace tool): the file is
 * mapped read-only and followed live with p2p_trace_reader_*.
 *
 * File layout (all integers little-endian host order, offsets from 0):
 *   header (p2p_trace_file_hdr_t): magic "P2PTRACE", version, sizes, offsets
 *   mailbox name table: mailbox_names entries of name_len bytes (by id)
 *   kind name table:    kind_names entries of name_len bytes (by kind)
 *   ring headers:       ring_count x ring_hdr_size (p2p_trace_ring_hdr_t)
 *   ring data:          ring_count x ring_cap x rec_size (p2p_trace_slot_t)
 *
 * Record protocol (per ring, one writer; a seqlock per slot):
 *   writer, record i (i = head):   slot = data[i % cap]
 *     slot.seq = 0 (relaxed); fields (release stores);
 *     slot.seq = i + 1 (release); head = i + 1 (release)
 *   reader, record j < head (acquire):
 *     s1 = slot.seq (acquire); copy fields (acquire loads);
 *     s2 = slot.seq (relaxed); the copy is record j iff s1 == s2 == j + 1.
 *   (A field from a newer record implies, through its release/acquire
 *   pair, that s2 sees that record's 0 or its seq.)
 *   Anything else means record j was overwritten (the writer lapped the
 *   reader) or is being overwritten: it is counted as lost.  A reader that
 *   fell more than cap records behind skips to head - cap and counts the
 *   skipped ones as lost.  So for every ring, records returned + lost ==
 *   records written since the reader's start, and seq is strictly
 *   increasing in what the reader returns.
 *
 * Times: a record's time is read before the record is written (for a
 * PUSH, before the message is published in its mailbox), so for every
 * message push time <= pop time, and times never decrease within one
 * owner's records of a ring.  At a handover they may: the next owner's
 * START and first record carry the time of the event that took the ring,
 * which can have been read before the previous owner wrote its STOP.
 *
 * Names (ring thread names, the mailbox and kind tables) are written before
 * the records that use them; a reader may see a name change when a ring is
 * reused by a new thread (owner_gen increases).
 *
 * Threads: p2p_trace_open/close/enable from the main thread while no other
 * thread records (close only after the tracing threads are joined);
 * p2p_trace_event from any thread.
 */
#ifndef P2P_CORE_TRACE_H
#define P2P_CORE_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define P2P_TRACE_FILE "trace.ring" /* the segment's file name inside a node's datadir */
#define P2P_TRACE_MAGIC "P2PTRACE"
#define P2P_TRACE_VERSION 1u
#define P2P_TRACE_NAME_LEN 32u     /* bytes per name table entry, NUL-terminated */
#define P2P_TRACE_KINDS 256u       /* message kinds with names */
#define P2P_TRACE_RINGS_MAX 65536u /* ring indices are 16 bits in a record */
#define P2P_TRACE_RING_CAP_MAX (1u << 22)

/* Record types. */
enum p2p_trace_type {
    P2P_TRACE_PUSH = 1,  /* message pushed into mailbox (by the producer) */
    P2P_TRACE_POP = 2,   /* message popped (by the consumer) */
    P2P_TRACE_FULL = 3,  /* try_push rejected: mailbox full */
    P2P_TRACE_BLOCK = 4, /* push blocked: mailbox full */
    P2P_TRACE_START = 5, /* thread took this ring (or took a new name) */
    P2P_TRACE_STOP = 6,  /* thread released this ring (or is renaming) */
    P2P_TRACE_CUSTOM = 7 /* actor-defined event (kind, arg) */
};

/* On-disk structures (shared with readers; versioned). */
typedef struct p2p_trace_file_hdr {
    char magic[8]; /* "P2PTRACE", written last at creation */
    uint32_t version;
    uint32_t hdr_size;
    uint32_t rec_size;
    uint32_t ring_count;
    uint32_t ring_cap; /* records per ring, a power of two */
    uint32_t ring_hdr_size;
    uint32_t name_len;
    uint32_t mailbox_names;
    uint32_t kind_names;
    int32_t pid;
    uint64_t mailbox_names_off;
    uint64_t kind_names_off;
    uint64_t rings_off;
    uint64_t data_off;
    uint64_t file_size;
    uint64_t start_mono_ns; /* CLOCK_MONOTONIC at creation */
    uint64_t start_wall_ms; /* Unix ms at creation */
    /* relaxed counters (statistics, no ordering) */
    _Atomic uint64_t no_ring; /* events dropped because every ring was taken */
    /* threads that wanted a ring and found none (once per thread and
     * name; their events are counted in no_ring) */
    _Atomic uint64_t no_ring_threads;
} p2p_trace_file_hdr_t;

typedef struct p2p_trace_ring_hdr {
    /* head: release store by the writer, acquire load by readers (record
     * protocol above); owner: acquire CAS to take the ring, release store
     * of 0 to give it back, so the next writer continues head and slots;
     * owner_gen: relaxed, a hint for readers. */
    _Atomic uint64_t head;      /* records ever written to this ring */
    _Atomic uint32_t owner;     /* Linux tid of the writer, 0 if free */
    _Atomic uint32_t owner_gen; /* bumped each time the ring is taken */
    uint32_t actor_id;          /* p2p_thread id of the writer (0: foreign) */
    char name[16];              /* writer's thread name */
    uint8_t pad[92];
} p2p_trace_ring_hdr_t;

typedef struct p2p_trace_slot {
    /* a seqlock per slot (record protocol above): seq release/acquire,
     * the fields release stores and acquire loads */
    _Atomic uint64_t seq; /* record index + 1; 0 while being written */
    _Atomic uint64_t time_ns;
    _Atomic uint64_t peer;
    _Atomic uint64_t arg;
    /* mailbox id (bits 0-15), kind (16-31), ring index (32-47),
     * type (48-55), flags (56-63) */
    _Atomic uint64_t meta;
} p2p_trace_slot_t;

/* A decoded record. */
typedef struct p2p_trace_rec {
    uint64_t seq;     /* index in its ring + 1: strictly increasing per ring */
    uint64_t time_ns; /* CLOCK_MONOTONIC */
    uint64_t peer;    /* peer id prefix (first 8 bytes, big-endian), 0 if none */
    uint64_t arg;
    uint16_t mailbox; /* mailbox id (p2p_mailbox_id), 0 if none */
    uint16_t kind;    /* message kind */
    uint16_t ring;    /* ring (thread) index */
    uint8_t type;     /* enum p2p_trace_type */
    uint8_t flags;
    /* START and STOP: the writer's thread name, and its actor id in arg
     * (the slot stores the name in peer and arg and the id in mailbox and
     * kind, flag P2P_TRACE_F_NAME; the reader decodes them here).  Empty
     * for other records. */
    char name[16];
} p2p_trace_rec_t;

#define P2P_TRACE_F_NAME 0x01u /* slot flag: a START/STOP carrying the thread name */

/* A record's peer field for a node id: its first 8 bytes, big-endian. */
static inline uint64_t p2p_trace_peer(const uint8_t id[32])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | id[i];
    return v;
}

/* ---- writer ----------------------------------------------------------- */

extern _Atomic int p2p__trace_on;

/* True when recording is on.  One relaxed load: a stale value at most
 * records or skips a few events around a switch. */
static inline bool p2p_trace_on(void)
{
    return atomic_load_explicit(&p2p__trace_on, memory_order_relaxed) != 0;
}

/* Creates the trace file at path (replacing any file there) with `rings` rings of
 * ring_cap records (rounded up to a power of two), reserves its
 * p2p_trace_file_size bytes on disk and maps it; recording starts enabled.
 * Returns 0, P2P_EINVAL, P2P_EEXIST (a segment is already open) or
 * P2P_ESYS with errno set (ENOSPC: the file system lacks the room; the
 * file is then removed). */
P2P_MUST_CHECK int p2p_trace_open(const char *path, unsigned rings, uint32_t ring_cap);
/* Bytes of the trace file p2p_trace_open(path, rings, ring_cap) creates
 * (0 for arguments it refuses). */
uint64_t p2p_trace_file_size(unsigned rings, uint32_t ring_cap);
/* Turns recording off and unmaps the file (the file stays for readers).
 * Call only when no other thread may record. */
void p2p_trace_close(void);
/* Runtime switch; enabling has no effect without an open segment. */
void p2p_trace_enable(bool on);

/* Records an event in the calling thread's ring (taking a free ring on
 * first use).  Cheap; any thread.  Prefer the macro, which skips the call
 * when tracing is off. */
void p2p_trace_event(uint8_t type, uint16_t mailbox, uint16_t kind, uint64_t peer, uint64_t arg);
#define P2P_TRACE_EVENT(kind, peer, arg)                                                           \
    do {                                                                                           \
        if (p2p_trace_on()) p2p_trace_event(P2P_TRACE_CUSTOM, 0, (kind), (peer), (arg));           \
    } while (0)

/* Names a message kind (0..P2P_TRACE_KINDS-1) for readers; kinds are one
 * process-wide namespace.  Returns 0 or P2P_EINVAL. */
int p2p_trace_name_kind(uint16_t kind, const char *name);

/* Thread hooks (called by core/thread.c): attach gives back any ring the
 * thread held and remembers its name for the next ring it takes; detach
 * gives the ring back (at thread exit).  Giving a ring back writes its
 * STOP record only while recording is on: paused rings keep what they
 * hold. */
void p2p_trace_thread_attach(const char *name);
void p2p_trace_thread_detach(void);

/* Internal (mailbox.c): p2p_trace_event with a time read earlier by the
 * caller (CLOCK_MONOTONIC, p2p_now_ns).  A PUSH is stamped before the
 * message is published, so its consumer's POP, stamped after the pop, is
 * never earlier than it. */
void p2p__trace_event_at(uint64_t time_ns, uint8_t type, uint16_t mailbox, uint16_t kind,
                         uint64_t peer, uint64_t arg);

/* Internal (mailbox.c): a mailbox name was interned. */
void p2p__trace_name_mailbox(uint16_t id, const char *name);

/* ---- reader ----------------------------------------------------------- */

typedef struct p2p_trace_reader p2p_trace_reader_t;

typedef struct p2p_trace_info {
    uint32_t version;
    uint32_t ring_count;
    uint32_t ring_cap;
    int32_t pid;
    uint64_t start_mono_ns;
    uint64_t start_wall_ms;
    uint64_t no_ring;         /* events not recorded: every ring was taken */
    uint64_t no_ring_threads; /* threads that found no free ring */
} p2p_trace_info_t;

/* Maps the trace file at path read-only and validates a private copy of
 * its header (later changes to the file's header are ignored).  The
 * reader starts at the oldest record still in each ring.  Returns 0,
 * P2P_ESYS (open/mmap), P2P_EDECODE (not a trace file, or inconsistent
 * sizes or offsets), P2P_EUNSUPPORTED (other version) or P2P_ENOMEM. */
P2P_MUST_CHECK int p2p_trace_reader_open(p2p_trace_reader_t **r, const char *path);
void p2p_trace_reader_close(p2p_trace_reader_t *r);
void p2p_trace_reader_info(const p2p_trace_reader_t *r, p2p_trace_info_t *info);
/* True when path no longer names the segment r maps: removed, or replaced
 * by a new one (the node restarted or re-opened its trace; each open
 * creates a new file), or rewritten in place (its creation stamps
 * changed).  Records of the new segment are not readable through r. */
bool p2p_trace_reader_replaced(const p2p_trace_reader_t *r, const char *path);
/* Whether the process that created the file still has it open (its lock,
 * which a pid cannot tell once reused): 1 yes, 0 no (closed, exited or
 * killed), -1 unknown (the file system has no flock: ask the pid). */
int p2p_trace_reader_writer_alive(const p2p_trace_reader_t *r);
/* Skips everything written so far: only new records will be returned. */
void p2p_trace_reader_seek_end(p2p_trace_reader_t *r);
/* Copies up to max new records of ring into out, oldest first, and adds
 * the number of records that were overwritten before they could be read to
 * *lost.  Returns the number copied (0: nothing new, or bad ring). */
size_t p2p_trace_reader_next(p2p_trace_reader_t *r, p2p_trace_rec_t *out, size_t max, unsigned ring,
                             uint64_t *lost);
/* Records written to ring that this reader has not consumed yet (more
 * than the ring capacity means some will be reported lost). */
uint64_t p2p_trace_reader_pending(const p2p_trace_reader_t *r, unsigned ring);
/* The ring's current writer name (copied; "" if never used) and owner
 * generation. */
uint32_t p2p_trace_reader_ring_name(const p2p_trace_reader_t *r, char out[16], unsigned ring);
/* Name of a mailbox id or message kind (copied into out; "" if unnamed). */
void p2p_trace_reader_mailbox_name(const p2p_trace_reader_t *r, char out[P2P_TRACE_NAME_LEN],
                                   uint16_t id);
void p2p_trace_reader_kind_name(const p2p_trace_reader_t *r, char out[P2P_TRACE_NAME_LEN],
                                uint16_t kind);
/* Name of a record type ("push", "pop", ...). */
const char *p2p_trace_type_name(uint8_t type);

#endif
