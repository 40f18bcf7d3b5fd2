/*
 * core/trace.c: trace rings in a shared file (see trace.h for the layout and
 * the record protocol).
 *
 * Process-wide state: one open segment (seg), the enable switch, and the
 * names of message kinds (kept here so they survive re-opening).  Each
 * thread caches its ring in thread-local storage, tagged with the segment
 * generation so a re-opened segment is never written through a stale
 * pointer.  Ring ownership: a ring is free when owner == 0; a thread takes
 * one with a CAS (acquire) and gives it back at exit (release), so the
 * next owner continues the ring's head and sees the previous writer's
 * stores.
 */
#include "core/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mailbox.h"
#include "core/thread.h"

_Static_assert(sizeof(p2p_trace_ring_hdr_t) == 128, "ring header size");
_Static_assert(sizeof(p2p_trace_slot_t) == 40, "record size");

/* relaxed: an on/off hint; writers then load `seg` (acquire), which is
 * what makes the segment safe to use */
_Atomic int p2p__trace_on;

struct segment {
    uint8_t *base;
    size_t size;
    p2p_trace_file_hdr_t *hdr;
    p2p_trace_ring_hdr_t *rings;
    p2p_trace_slot_t *data;
    char (*mbnames)[P2P_TRACE_NAME_LEN];
    char (*kindnames)[P2P_TRACE_NAME_LEN];
    uint32_t count, cap;
    int fd; /* the file, kept open for its lock (readers: writer alive) */
};

static struct segment segment;
/* Published segment: release store in open / acquire load in writers.
 * NULL when closed. */
static _Atomic(struct segment *) seg;
/* Generation of the open segment (changes on every open); relaxed, read
 * together with seg. */
static _Atomic uint32_t seg_gen;
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static char kind_names[P2P_TRACE_KINDS][P2P_TRACE_NAME_LEN];

struct tls_ring {
    uint32_t gen;   /* seg_gen the ring belongs to (0: none yet) */
    uint32_t index; /* ring index */
    bool none;      /* no ring was free for this generation */
    p2p_trace_ring_hdr_t *ring;
    char name[16];
};
static __thread struct tls_ring tls;

static uint32_t gettid_u32(void)
{
    return (uint32_t)gettid();
}

/* ---- names ------------------------------------------------------------ */

static void put_name(char *dst, const char *src)
{
    /* Shared memory, read by other processes without synchronisation:
     * write the bytes, then the terminator (readers copy and terminate). */
    size_t n = strnlen(src, P2P_TRACE_NAME_LEN - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

int p2p_trace_name_kind(uint16_t kind, const char *name)
{
    if (kind >= P2P_TRACE_KINDS || !name) return P2P_EINVAL;
    pthread_mutex_lock(&names_lock);
    put_name(kind_names[kind], name);
    /* acquire: pairs with the release store in open */
    struct segment *s = atomic_load_explicit(&seg, memory_order_acquire);
    if (s) put_name(s->kindnames[kind], name);
    pthread_mutex_unlock(&names_lock);
    return 0;
}

void p2p__trace_name_mailbox(uint16_t id, const char *name)
{
    pthread_mutex_lock(&names_lock);
    /* acquire: pairs with the release store in open */
    struct segment *s = atomic_load_explicit(&seg, memory_order_acquire);
    if (s && id < P2P_MAILBOX_IDS_MAX) put_name(s->mbnames[id], name);
    pthread_mutex_unlock(&names_lock);
}

/* ---- open / close ----------------------------------------------------- */

/* Core files include file-backed shared mappings only when bit 3 (0x08)
 * of /proc/self/coredump_filter is set: set it so that a debugger can read
 * the rings from a core file (tools/gdb/devp2p.py).  Best effort. */
static void include_in_core_dumps(void)
{
    int fd = open("/proc/self/coredump_filter", O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = 0;
        unsigned long v = strtoul(buf, NULL, 16);
        if (!(v & 0x08)) {
            int len = snprintf(buf, sizeof buf, "0x%lx", v | 0x08);
            if (lseek(fd, 0, SEEK_SET) == 0 && write(fd, buf, (size_t)len) < 0) {
                /* not fatal: cores just lack the rings */
            }
        }
    }
    close(fd);
}

/* The file's layout for a number of rings and a ring capacity (rounded
 * up to a power of two). */
struct layout {
    uint32_t cap;
    size_t mb_off, kind_off, rings_off, data_off, size;
};

static void layout_of(struct layout *l, unsigned rings, uint32_t ring_cap)
{
    l->cap = 2;
    while (l->cap < ring_cap) l->cap <<= 1;
    l->mb_off = 4096; /* the header's page */
    l->kind_off = l->mb_off + (size_t)P2P_MAILBOX_IDS_MAX * P2P_TRACE_NAME_LEN;
    l->rings_off = l->kind_off + (size_t)P2P_TRACE_KINDS * P2P_TRACE_NAME_LEN;
    l->data_off = l->rings_off + (size_t)rings * sizeof(p2p_trace_ring_hdr_t);
    l->data_off = (l->data_off + 63) & ~(size_t)63;
    l->size = l->data_off + (size_t)rings * l->cap * sizeof(p2p_trace_slot_t);
}

uint64_t p2p_trace_file_size(unsigned rings, uint32_t ring_cap)
{
    if (rings == 0 || rings > P2P_TRACE_RINGS_MAX || ring_cap == 0 ||
        ring_cap > P2P_TRACE_RING_CAP_MAX)
        return 0;
    struct layout l;
    layout_of(&l, rings, ring_cap);
    return l.size;
}

/* Allocates size bytes of fd's file (zero-filled).  Returns 0 or an errno
 * value (ENOSPC on a full file system). */
static int reserve(int fd, size_t size)
{
    int err;
    do {
        err = posix_fallocate(fd, 0, (off_t)size);
    } while (err == EINTR);
    return err;
}

int p2p_trace_open(const char *path, unsigned rings, uint32_t ring_cap)
{
    if (!path || rings == 0 || rings > P2P_TRACE_RINGS_MAX || ring_cap == 0 ||
        ring_cap > P2P_TRACE_RING_CAP_MAX)
        return P2P_EINVAL;
    /* acquire: pairs with the release store below (open/close run on one
     * thread; this only guards against a double open) */
    if (atomic_load_explicit(&seg, memory_order_acquire)) return P2P_EEXIST;
    struct layout l;
    layout_of(&l, rings, ring_cap);

    /* A new file (new inode), never the old one truncated: a reader that
     * still maps an earlier segment keeps its pages (no SIGBUS) and can
     * tell that the path now names another segment
     * (p2p_trace_reader_replaced). */
    if (unlink(path) != 0 && errno != ENOENT) return P2P_ESYS;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return P2P_ESYS;
    /* Held until close or exit (kill -9 included): a reader tells from it
     * whether the writer still runs, whatever process the header's pid
     * names by then.  Best effort: a file system without flock leaves
     * readers to the pid. */
    (void)flock(fd, LOCK_EX | LOCK_NB);
    if (fchmod(fd, 0600) != 0) { /* exactly 0600, whatever the umask */
        close(fd);
        unlink(path);
        return P2P_ESYS;
    }
    /* Reserve the blocks now: a sparse file would take them at the first
     * store to each page, and on a full file system that store is a
     * SIGBUS in whichever thread records (a mailbox push). */
    int err = reserve(fd, l.size);
    if (err) {
        close(fd);
        unlink(path); /* no partial segment for readers */
        errno = err;
        return P2P_ESYS;
    }
    void *base = mmap(NULL, l.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        err = errno;
        close(fd);
        unlink(path);
        errno = err;
        return P2P_ESYS;
    }

    struct segment *s = &segment;
    memset(s, 0, sizeof *s);
    s->base = base;
    s->size = l.size;
    s->hdr = base;
    s->mbnames = (void *)(s->base + l.mb_off);
    s->kindnames = (void *)(s->base + l.kind_off);
    s->rings = (void *)(s->base + l.rings_off);
    s->data = (void *)(s->base + l.data_off);
    s->count = rings;
    s->cap = l.cap;
    s->fd = fd;

    p2p_trace_file_hdr_t *h = s->hdr; /* the file is zero-filled by posix_fallocate */
    h->version = P2P_TRACE_VERSION;
    h->hdr_size = sizeof *h;
    h->rec_size = sizeof(p2p_trace_slot_t);
    h->ring_count = rings;
    h->ring_cap = l.cap;
    h->ring_hdr_size = sizeof(p2p_trace_ring_hdr_t);
    h->name_len = P2P_TRACE_NAME_LEN;
    h->mailbox_names = P2P_MAILBOX_IDS_MAX;
    h->kind_names = P2P_TRACE_KINDS;
    h->pid = (int32_t)getpid();
    h->mailbox_names_off = l.mb_off;
    h->kind_names_off = l.kind_off;
    h->rings_off = l.rings_off;
    h->data_off = l.data_off;
    h->file_size = l.size;
    h->start_mono_ns = p2p_now_ns();
    h->start_wall_ms = p2p_wall_ms();

    pthread_mutex_lock(&names_lock);
    for (unsigned i = 0; i < P2P_TRACE_KINDS; i++)
        if (kind_names[i][0]) put_name(s->kindnames[i], kind_names[i]);
    for (uint16_t i = 1; i < P2P_MAILBOX_IDS_MAX; i++) {
        const char *n = p2p_mailbox_id_name(i);
        if (!n) break;
        put_name(s->mbnames[i], n);
    }
    /* relaxed: read only together with seg, which is published below */
    atomic_fetch_add_explicit(&seg_gen, 1, memory_order_relaxed);
    /* release: the header and names are complete before writers use s */
    atomic_store_explicit(&seg, s, memory_order_release);
    pthread_mutex_unlock(&names_lock);
    /* The magic goes last, as one release store: a reader that sees it
     * (acquire load) sees a complete header. */
    uint64_t magic;
    memcpy(&magic, P2P_TRACE_MAGIC, 8);
    atomic_store_explicit((_Atomic uint64_t *)(void *)h->magic, magic, memory_order_release);
    /* relaxed: the switch is a hint (see p2p_trace_on) */
    atomic_store_explicit(&p2p__trace_on, 1, memory_order_relaxed);
    include_in_core_dumps();
    return 0;
}

void p2p_trace_close(void)
{
    /* relaxed: see p2p_trace_on */
    atomic_store_explicit(&p2p__trace_on, 0, memory_order_relaxed);
    pthread_mutex_lock(&names_lock);
    /* acq_rel: unpublishes the segment (writers load it acquire) */
    struct segment *s = atomic_exchange_explicit(&seg, NULL, memory_order_acq_rel);
    pthread_mutex_unlock(&names_lock);
    if (!s) return;
    munmap(s->base, s->size);
    close(s->fd); /* releases the lock: readers see the writer gone */
    tls.gen = 0;
    tls.ring = NULL;
}

void p2p_trace_enable(bool on)
{
    /* acquire: pairs with the release store in open */
    bool open = atomic_load_explicit(&seg, memory_order_acquire) != NULL;
    /* relaxed: see p2p_trace_on */
    atomic_store_explicit(&p2p__trace_on, on && open, memory_order_relaxed);
}

/* ---- writer ----------------------------------------------------------- */

static void write_rec_flags(struct segment *s, uint32_t idx, uint64_t time_ns, uint8_t type,
                            uint8_t flags, uint16_t mailbox, uint16_t kind, uint64_t peer,
                            uint64_t arg)
{
    p2p_trace_ring_hdr_t *r = &s->rings[idx];
    /* relaxed: we are the ring's only writer */
    uint64_t i = atomic_load_explicit(&r->head, memory_order_relaxed);
    p2p_trace_slot_t *slot = &s->data[(size_t)idx * s->cap + (i & (s->cap - 1))];
    /* Seqlock write (see trace.h).  seq = 0 first; each field is a release
     * store, so a reader whose acquire load sees a new field also sees
     * seq == 0 (or a later value) when it re-reads seq.  On x86 these are
     * plain moves. */
    atomic_store_explicit(&slot->seq, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->time_ns, time_ns, memory_order_release);
    atomic_store_explicit(&slot->peer, peer, memory_order_release);
    atomic_store_explicit(&slot->arg, arg, memory_order_release);
    uint64_t meta = (uint64_t)mailbox | (uint64_t)kind << 16 | (uint64_t)idx << 32 |
                    (uint64_t)type << 48 | (uint64_t)flags << 56;
    atomic_store_explicit(&slot->meta, meta, memory_order_release);
    /* release: the fields above are visible to a reader that loads seq
     * (acquire) and finds i + 1 */
    atomic_store_explicit(&slot->seq, i + 1, memory_order_release);
    /* release: pairs with the reader's acquire load of head */
    atomic_store_explicit(&r->head, i + 1, memory_order_release);
}

/* START or STOP naming the writer: the name (15 chars + NUL) fills peer
 * and arg, the actor id mailbox and kind, so a reader names every owner a
 * ring had, however late it reads. */
static void write_named(struct segment *s, uint32_t idx, uint64_t time_ns, uint8_t type)
{
    char name[16] = {0};
    memcpy(name, tls.name, strnlen(tls.name, sizeof name - 1));
    uint64_t peer, arg;
    memcpy(&peer, name, 8);
    memcpy(&arg, name + 8, 8);
    uint32_t id = p2p_thread_current_id();
    write_rec_flags(s, idx, time_ns, type, P2P_TRACE_F_NAME, (uint16_t)id, (uint16_t)(id >> 16),
                    peer, arg);
}

/* Takes a free ring for the calling thread; its START record gets time_ns
 * (the time of the event that takes the ring, so times never go back in
 * this owner's records; they may be earlier than the previous owner's
 * STOP, see trace.h).  Returns false if none. */
static bool take_ring(struct segment *s, uint32_t gen, uint64_t time_ns)
{
    tls.gen = gen;
    tls.ring = NULL;
    tls.none = true;
    if (!tls.name[0]) snprintf(tls.name, sizeof tls.name, "%s", p2p_thread_current_name());
    uint32_t tid = gettid_u32();
    for (uint32_t i = 0; i < s->count; i++) {
        uint32_t zero = 0;
        /* acquire CAS: pairs with the release store of 0 by the previous
         * owner, so we continue its head and slots */
        if (atomic_compare_exchange_strong_explicit(&s->rings[i].owner, &zero, tid,
                                                    memory_order_acquire, memory_order_relaxed)) {
            p2p_trace_ring_hdr_t *r = &s->rings[i];
            memset(r->name, 0, sizeof r->name);
            memcpy(r->name, tls.name, strnlen(tls.name, sizeof r->name - 1));
            r->actor_id = p2p_thread_current_id();
            /* relaxed: a hint for readers that the owner changed */
            atomic_fetch_add_explicit(&r->owner_gen, 1, memory_order_relaxed);
            tls.ring = r;
            tls.index = i;
            tls.none = false;
            write_named(s, i, time_ns, P2P_TRACE_START);
            return true;
        }
    }
    /* relaxed: statistics */
    atomic_fetch_add_explicit(&s->hdr->no_ring, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->hdr->no_ring_threads, 1, memory_order_relaxed);
    return false;
}

void p2p__trace_event_at(uint64_t time_ns, uint8_t type, uint16_t mailbox, uint16_t kind,
                         uint64_t peer, uint64_t arg)
{
    /* acquire: pairs with the release store in open (header initialised) */
    struct segment *s = atomic_load_explicit(&seg, memory_order_acquire);
    if (!s) return;
    /* relaxed: read together with seg (see the top comment) */
    uint32_t gen = atomic_load_explicit(&seg_gen, memory_order_relaxed);
    if (tls.gen != gen) {
        if (!take_ring(s, gen, time_ns)) return;
    } else if (tls.none) {
        /* relaxed: statistics */
        atomic_fetch_add_explicit(&s->hdr->no_ring, 1, memory_order_relaxed);
        return;
    }
    write_rec_flags(s, tls.index, time_ns, type, 0, mailbox, kind, peer, arg);
}

void p2p_trace_event(uint8_t type, uint16_t mailbox, uint16_t kind, uint64_t peer, uint64_t arg)
{
    p2p__trace_event_at(p2p_now_ns(), type, mailbox, kind, peer, arg);
}

void p2p_trace_thread_attach(const char *name)
{
    p2p_trace_thread_detach(); /* gives back a ring taken before, if any */
    snprintf(tls.name, sizeof tls.name, "%s", name ? name : "?");
}

void p2p_trace_thread_detach(void)
{
    /* acquire: pairs with the release store in open; relaxed gen is read
     * together with it (see the top comment) */
    struct segment *s = atomic_load_explicit(&seg, memory_order_acquire);
    uint32_t gen = atomic_load_explicit(&seg_gen, memory_order_relaxed);
    if (s && tls.ring && tls.gen == gen) {
        /* paused: the ring keeps what it holds (no STOP); the next owner's
         * START still marks the change */
        if (p2p_trace_on()) write_named(s, tls.index, p2p_now_ns(), P2P_TRACE_STOP);
        /* release: the next owner (acquire CAS) sees our head and slots */
        atomic_store_explicit(&tls.ring->owner, 0, memory_order_release);
    }
    tls.gen = 0;
    tls.ring = NULL;
    tls.none = false;
    tls.name[0] = 0;
}

/* ---- reader ----------------------------------------------------------- */

/* The reader keeps a private copy of the header, validated once at open:
 * the mapping is shared with the writer (or anyone who can write the
 * file), so offsets and counts are never re-read from it.  Only the ring
 * heads, ring names, records and name bytes are read live, always within
 * the validated bounds. */
struct p2p_trace_reader {
    const uint8_t *base;
    size_t size;
    const p2p_trace_file_hdr_t *live; /* the mapped header: the no_ring counters only */
    p2p_trace_file_hdr_t hdr;         /* validated copy (no_ring counters not used) */
    const p2p_trace_ring_hdr_t *rings;
    const p2p_trace_slot_t *data;
    uint32_t count, cap;
    uint64_t *next; /* per ring: index of the next record to return */
    int fd;         /* the file (p2p_trace_reader_writer_alive) */
    dev_t dev;      /* the mapped file (p2p_trace_reader_replaced) */
    ino_t ino;
};

/* Name table entries a header may declare: ids and kinds are 16-bit. */
#define TRACE_NAMES_MAX (UINT16_MAX + 1u)

/* True if n entries of len bytes at off lie inside a file of size bytes,
 * without overflow for any off and n (len > 0). */
static bool region_ok(uint64_t size, uint64_t off, uint64_t n, uint64_t len)
{
    return off <= size && n <= (size - off) / len;
}

int p2p_trace_reader_open(p2p_trace_reader_t **out, const char *path)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return P2P_ESYS;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return P2P_ESYS;
    }
    size_t size = (size_t)st.st_size;
    if (size < sizeof(p2p_trace_file_hdr_t)) {
        close(fd);
        return P2P_EDECODE;
    }
    void *base = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int err = errno;
        close(fd);
        errno = err;
        return P2P_ESYS;
    }
    const p2p_trace_file_hdr_t *h = base;
    int rc = 0;
    uint64_t magic, want;
    /* acquire: pairs with the release store of the magic in open */
    magic = atomic_load_explicit((_Atomic uint64_t *)(void *)h->magic, memory_order_acquire);
    memcpy(&want, P2P_TRACE_MAGIC, 8);
    if (magic != want) {
        rc = P2P_EDECODE;
        goto fail;
    }
    /* Copy the header (up to the live no_ring counter) once: everything
     * below validates and uses this copy, never the shared mapping. */
    p2p_trace_file_hdr_t hc;
    memset(&hc, 0, sizeof hc);
    memcpy(&hc, h, offsetof(p2p_trace_file_hdr_t, no_ring));
    if (hc.version != P2P_TRACE_VERSION) {
        rc = P2P_EUNSUPPORTED;
        goto fail;
    }
    /* Validate every size and offset against the mapping (the file may be
     * foreign, truncated or hostile).  Region checks are in the
     * overflow-safe form off <= size && n <= (size - off) / len. */
    uint64_t cap = hc.ring_cap, count = hc.ring_count;
    if (hc.rec_size != sizeof(p2p_trace_slot_t) ||
        hc.ring_hdr_size != sizeof(p2p_trace_ring_hdr_t) || hc.name_len != P2P_TRACE_NAME_LEN ||
        count == 0 || count > P2P_TRACE_RINGS_MAX || cap < 2 || cap > P2P_TRACE_RING_CAP_MAX ||
        (cap & (cap - 1)) || hc.file_size != size || hc.mailbox_names > TRACE_NAMES_MAX ||
        hc.kind_names > TRACE_NAMES_MAX ||
        !region_ok(size, hc.mailbox_names_off, hc.mailbox_names, P2P_TRACE_NAME_LEN) ||
        !region_ok(size, hc.kind_names_off, hc.kind_names, P2P_TRACE_NAME_LEN) ||
        hc.rings_off % 8 || !region_ok(size, hc.rings_off, count, sizeof(p2p_trace_ring_hdr_t)) ||
        hc.data_off % 8 || !region_ok(size, hc.data_off, count * cap, sizeof(p2p_trace_slot_t))) {
        rc = P2P_EDECODE;
        goto fail;
    }
    p2p_trace_reader_t *r = calloc(1, sizeof *r);
    uint64_t *next = calloc(count, sizeof *next);
    if (!r || !next) {
        free(r);
        free(next);
        rc = P2P_ENOMEM;
        goto fail;
    }
    r->base = base;
    r->size = size;
    r->live = h;
    r->hdr = hc;
    r->rings = (const void *)(r->base + hc.rings_off);
    r->data = (const void *)(r->base + hc.data_off);
    r->count = (uint32_t)count;
    r->cap = (uint32_t)cap;
    r->next = next;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->fd = fd;
    for (uint32_t i = 0; i < r->count; i++) {
        /* acquire: pairs with the writer's release store of head */
        uint64_t head = atomic_load_explicit(&((p2p_trace_ring_hdr_t *)&r->rings[i])->head,
                                             memory_order_acquire);
        r->next[i] = head > cap ? head - cap : 0;
    }
    *out = r;
    return 0;
fail:
    munmap(base, size);
    close(fd);
    return rc;
}

void p2p_trace_reader_close(p2p_trace_reader_t *r)
{
    if (!r) return;
    munmap((void *)r->base, r->size);
    close(r->fd);
    free(r->next);
    free(r);
}

void p2p_trace_reader_info(const p2p_trace_reader_t *r, p2p_trace_info_t *info)
{
    const p2p_trace_file_hdr_t *h = &r->hdr;
    info->version = h->version;
    info->ring_count = r->count;
    info->ring_cap = r->cap;
    info->pid = h->pid;
    info->start_mono_ns = h->start_mono_ns;
    info->start_wall_ms = h->start_wall_ms;
    /* relaxed: statistics, the only header fields that are read live */
    p2p_trace_file_hdr_t *live = (p2p_trace_file_hdr_t *)r->live;
    info->no_ring = atomic_load_explicit(&live->no_ring, memory_order_relaxed);
    info->no_ring_threads = atomic_load_explicit(&live->no_ring_threads, memory_order_relaxed);
}

bool p2p_trace_reader_replaced(const p2p_trace_reader_t *r, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_dev != r->dev || st.st_ino != r->ino) return true;
    /* the same file rewritten in place (an older writer truncated it):
     * its creation stamps changed */
    const volatile p2p_trace_file_hdr_t *h = (const void *)r->base;
    return h->start_mono_ns != r->hdr.start_mono_ns || h->start_wall_ms != r->hdr.start_wall_ms ||
           h->pid != r->hdr.pid;
}

int p2p_trace_reader_writer_alive(const p2p_trace_reader_t *r)
{
    /* the writer holds LOCK_EX from creation until it closes or exits */
    if (flock(r->fd, LOCK_SH | LOCK_NB) == 0) {
        (void)flock(r->fd, LOCK_UN);
        return 0;
    }
    return errno == EWOULDBLOCK ? 1 : -1;
}

static uint64_t ring_head(const p2p_trace_reader_t *r, unsigned ring)
{
    /* acquire: pairs with the writer's release store of head */
    return atomic_load_explicit(&((p2p_trace_ring_hdr_t *)&r->rings[ring])->head,
                                memory_order_acquire);
}

uint64_t p2p_trace_reader_pending(const p2p_trace_reader_t *r, unsigned ring)
{
    if (ring >= r->count) return 0;
    uint64_t head = ring_head(r, ring);
    return head > r->next[ring] ? head - r->next[ring] : 0;
}

void p2p_trace_reader_seek_end(p2p_trace_reader_t *r)
{
    for (uint32_t i = 0; i < r->count; i++) r->next[i] = ring_head(r, i);
}

size_t p2p_trace_reader_next(p2p_trace_reader_t *r, p2p_trace_rec_t *out, size_t max, unsigned ring,
                             uint64_t *lost)
{
    if (ring >= r->count) return 0;
    uint64_t head = ring_head(r, ring);
    uint64_t j = r->next[ring];
    if (head > j && head - j > r->cap) { /* (no overflow for any head from the mapping) */
        *lost += head - r->cap - j;
        j = head - r->cap;
    }
    size_t n = 0;
    p2p_trace_slot_t *slots = (p2p_trace_slot_t *)&r->data[(size_t)ring * r->cap];
    for (; j < head && n < max; j++) {
        p2p_trace_slot_t *sl = &slots[j & (r->cap - 1)];
        /* Seqlock read (see trace.h).  acquire: pairs with the writer's
         * release store of seq. */
        uint64_t s1 = atomic_load_explicit(&sl->seq, memory_order_acquire);
        p2p_trace_rec_t rec;
        /* acquire loads of the fields: pair with the writer's release
         * stores, so if any field is from a newer record, the re-read of
         * seq below sees 0 or that record's seq */
        rec.time_ns = atomic_load_explicit(&sl->time_ns, memory_order_acquire);
        rec.peer = atomic_load_explicit(&sl->peer, memory_order_acquire);
        rec.arg = atomic_load_explicit(&sl->arg, memory_order_acquire);
        uint64_t meta = atomic_load_explicit(&sl->meta, memory_order_acquire);
        uint64_t s2 = atomic_load_explicit(&sl->seq, memory_order_relaxed);
        if (s1 != j + 1 || s2 != s1) {
            (*lost)++;
            continue;
        }
        rec.seq = s1;
        rec.mailbox = (uint16_t)meta;
        rec.kind = (uint16_t)(meta >> 16);
        rec.ring = (uint16_t)(meta >> 32);
        rec.type = (uint8_t)(meta >> 48);
        rec.flags = (uint8_t)(meta >> 56);
        memset(rec.name, 0, sizeof rec.name);
        if ((rec.type == P2P_TRACE_START || rec.type == P2P_TRACE_STOP) &&
            (rec.flags & P2P_TRACE_F_NAME)) {
            memcpy(rec.name, &rec.peer, 8);
            memcpy(rec.name + 8, &rec.arg, 8);
            rec.name[15] = 0;
            rec.arg = (uint64_t)rec.mailbox | (uint64_t)rec.kind << 16;
            rec.peer = 0;
            rec.mailbox = rec.kind = 0;
        }
        out[n++] = rec;
    }
    r->next[ring] = j;
    return n;
}

static void copy_name(char *out, size_t outlen, const char *src, size_t srclen)
{
    size_t n = srclen < outlen - 1 ? srclen : outlen - 1;
    memcpy(out, src, n);
    out[n] = 0;
}

uint32_t p2p_trace_reader_ring_name(const p2p_trace_reader_t *r, char out[16], unsigned ring)
{
    out[0] = 0;
    if (ring >= r->count) return 0;
    const p2p_trace_ring_hdr_t *h = &r->rings[ring];
    copy_name(out, 16, h->name, sizeof h->name);
    /* relaxed: a hint that the ring changed owner */
    return atomic_load_explicit(&((p2p_trace_ring_hdr_t *)h)->owner_gen, memory_order_relaxed);
}

void p2p_trace_reader_mailbox_name(const p2p_trace_reader_t *r, char out[P2P_TRACE_NAME_LEN],
                                   uint16_t id)
{
    out[0] = 0;
    if (id >= r->hdr.mailbox_names) return;
    copy_name(out, P2P_TRACE_NAME_LEN,
              (const char *)r->base + r->hdr.mailbox_names_off + (size_t)id * P2P_TRACE_NAME_LEN,
              P2P_TRACE_NAME_LEN);
}

void p2p_trace_reader_kind_name(const p2p_trace_reader_t *r, char out[P2P_TRACE_NAME_LEN],
                                uint16_t kind)
{
    out[0] = 0;
    if (kind >= r->hdr.kind_names) return;
    copy_name(out, P2P_TRACE_NAME_LEN,
              (const char *)r->base + r->hdr.kind_names_off + (size_t)kind * P2P_TRACE_NAME_LEN,
              P2P_TRACE_NAME_LEN);
}

const char *p2p_trace_type_name(uint8_t type)
{
    switch (type) {
    case P2P_TRACE_PUSH:
        return "push";
    case P2P_TRACE_POP:
        return "pop";
    case P2P_TRACE_FULL:
        return "full";
    case P2P_TRACE_BLOCK:
        return "block";
    case P2P_TRACE_START:
        return "start";
    case P2P_TRACE_STOP:
        return "stop";
    case P2P_TRACE_CUSTOM:
        return "event";
    default:
        return "?";
    }
}
