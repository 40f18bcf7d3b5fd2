# tools/gdb/devp2p.py: gdb commands for a devp2p-c process (live, gdb -p
# PID, or a core file).  Load with:  source tools/gdb/devp2p.py
#
#   devp2p-actors        the p2p threads (core/thread.c registry
#                        p2p__thread_list): name, id, LWP, quit flag, and
#                        the mailboxes each one consumes with their depths
#   devp2p-mailboxes     every mailbox (p2p__mailbox_list): name, id,
#                        depth/capacity, message size, consumer, counters
#   devp2p-trace [N]     the last N (default 10) records of every trace ring,
#                        read from the process memory through the trace
#                        segment's global pointer (core/trace.c `seg`)
#
# Read-only: the commands only read memory, so they work the same on a core
# file (a core holds the trace rings only if the process' coredump_filter
# includes file-backed shared mappings, bit 0x08: core/trace.c sets it when
# it opens the segment).  Without debug info for the registry symbols,
# devp2p-actors falls back to the OS thread names.
import gdb

TRACE_TYPES = {1: "push", 2: "pop", 3: "full", 4: "block", 5: "start", 6: "stop", 7: "event"}


def _sym(name):
    """A global or file-static variable, or None."""
    try:
        s = gdb.lookup_global_symbol(name)
        if s is None:
            s = gdb.lookup_static_symbol(name)
        if s is not None:
            return s.value()
    except gdb.error:
        pass
    try:
        return gdb.parse_and_eval(name)
    except gdb.error:
        return None


def _str(arr):
    """A char array field as a Python string (stops at NUL)."""
    try:
        n = arr.type.sizeof
        b = bytes(int(arr[i]) & 0xFF for i in range(n))
    except gdb.error:
        return "?"
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def _int(v):
    return int(v)


def _lwp_by_pthread():
    """Maps pthread_t values to (gdb thread num, LWP)."""
    out = {}
    inf = gdb.selected_inferior()
    for t in inf.threads():
        try:
            h = t.handle()
            pt = int.from_bytes(h, "little")
        except (gdb.error, AttributeError, TypeError):
            continue
        out[pt] = (t.num, t.ptid[1])
    return out


def _mailboxes():
    head = _sym("p2p__mailbox_list")
    res = []
    if head is None:
        return None
    mb = head
    seen = 0
    while int(mb) != 0 and seen < 100000:
        res.append(mb.dereference())
        mb = mb["reg_next"]
        seen += 1
    return res


def _mb_info(m):
    enq = _int(m["enqueue_pos"]) & ((1 << 63) - 1)  # without the closed bit
    deq = _int(m["dequeue_pos"])
    cap = _int(m["mask"]) + 1
    depth = enq - deq if enq >= deq else 0
    return {
        "name": _str(m["name"]),
        "id": _int(m["id"]),
        "depth": depth,
        "cap": cap,
        "msg": _int(m["msg_size"]),
        "waiter": _int(m["waiter"]),
        "closed": _int(m["closed"]),
        "full": _int(m["full_rejections"]),
        "blocked": _int(m["blocked_waits"]),
        "high": _int(m["high_water"]),
        "addr": _int(m.address),
    }


def _threads():
    head = _sym("p2p__thread_list")
    if head is None:
        return None
    res = []
    t = head
    seen = 0
    while int(t) != 0 and seen < 100000:
        res.append(t.dereference())
        t = t["reg_next"]
        seen += 1
    return res


class Actors(gdb.Command):
    """List the devp2p actor threads with their mailboxes and depths."""

    def __init__(self):
        super().__init__("devp2p-actors", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        threads = _threads()
        if threads is None:
            print("no p2p__thread_list symbol (no debug info?); OS threads:")
            for t in gdb.selected_inferior().threads():
                print("  thread %d  lwp %d  %s" % (t.num, t.ptid[1], t.name or "?"))
            return
        mbs = _mailboxes() or []
        by_waiter = {}
        for m in mbs:
            info = _mb_info(m)
            by_waiter.setdefault(info["waiter"], []).append(info)
        lwps = _lwp_by_pthread()
        print("%d p2p threads" % len(threads))
        for t in threads:
            name = _str(t["name"])
            tid = _int(t["id"])
            pt = _int(t["pt"])
            num, lwp = lwps.get(pt, (None, None))
            flags = []
            if _int(t["quit"]):
                flags.append("quit-requested")
            if _int(t["adopted"]):
                flags.append("adopted")
            blocked = _int(t["blocked_on"])
            if blocked:
                flags.append("blocked-in-push")
            where = "lwp %d (gdb thread %d)" % (lwp, num) if lwp else "lwp ?"
            print("  %-15s id %-4d %s %s" % (name, tid, where, " ".join(flags)))
            waiter_addr = _int(t["waiter"].address)
            for info in by_waiter.get(waiter_addr, []):
                print("      mailbox %-16s depth %d/%d" % (info["name"], info["depth"], info["cap"]))


class Mailboxes(gdb.Command):
    """List every devp2p mailbox: depth, capacity, consumer, counters."""

    def __init__(self):
        super().__init__("devp2p-mailboxes", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        mbs = _mailboxes()
        if mbs is None:
            print("no p2p__mailbox_list symbol (no debug info?)")
            return
        owners = {}
        for t in _threads() or []:
            owners[_int(t["waiter"].address)] = _str(t["name"])
        print("%d mailboxes" % len(mbs))
        for m in mbs:
            i = _mb_info(m)
            owner = owners.get(i["waiter"], "-" if i["waiter"] == 0 else "?")
            print(
                "  %-16s id %-3d depth %d/%d  msg %dB  consumer %s%s  full %d  blocked %d  high %d"
                % (
                    i["name"],
                    i["id"],
                    i["depth"],
                    i["cap"],
                    i["msg"],
                    owner,
                    " closed" if i["closed"] else "",
                    i["full"],
                    i["blocked"],
                    i["high"],
                )
            )


class Trace(gdb.Command):
    """Print the last N records of every devp2p trace ring: devp2p-trace [N]."""

    def __init__(self):
        super().__init__("devp2p-trace", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        n = 10
        if arg.strip():
            try:
                n = int(arg.strip())
            except ValueError:
                n = -1
            if n < 0:
                raise gdb.GdbError("usage: devp2p-trace [N] (N >= 0)")
        seg = _sym("seg")
        if seg is None:
            raise gdb.GdbError("no trace segment symbol `seg` (core/trace.c without debug info?)")
        if int(seg) == 0:
            print("tracing is not open in this process")
            return
        s = seg.dereference()
        count = _int(s["count"])
        cap = _int(s["cap"])
        mbnames = s["mbnames"]
        kindnames = s["kindnames"]
        # The header and rings live in the shared file mapping: read them
        # only inside the guard (a core may lack file-backed mappings).
        try:
            hdr = s["hdr"].dereference()
            start = _int(hdr["start_mono_ns"])
            pid = _int(hdr["pid"])
            # name table sizes: a record's kind (or mailbox id) at or past
            # them has no name (indexing further would read the ring headers)
            nkinds = _int(hdr["kind_names"])
            nmbs = _int(hdr["mailbox_names"])
            _int(s["rings"][0]["head"])
        except gdb.MemoryError:
            print("trace rings are not in this memory image (core without file-backed shared mappings)")
            return
        print("trace segment: %d rings x %d records, pid %d" % (count, cap, pid))
        try:
            no_ring = _int(hdr["no_ring"])
            no_ring_threads = _int(hdr["no_ring_threads"])
        except gdb.error:
            no_ring = no_ring_threads = 0
        if no_ring:
            print("warning: %d threads found no free ring and recorded nothing (%d events lost):"
                  " all %d rings were taken" % (no_ring_threads, no_ring, count))
        for r in range(count):
            ring = s["rings"][r]
            head = _int(ring["head"])
            if head == 0:
                continue
            name = _str(ring["name"])
            print("ring %d  %s  owner lwp %d  %d records written, the last %d kept"
                  % (r, name or "?", _int(ring["owner"]), head, min(head, cap)))
            first = head - n if head > n else 0
            if head - first > cap:
                first = head - cap
            for j in range(first, head):
                slot = s["data"][r * cap + (j & (cap - 1))]
                seq = _int(slot["seq"])
                if seq != j + 1:
                    continue
                meta = _int(slot["meta"])
                mb = meta & 0xFFFF
                kind = (meta >> 16) & 0xFFFF
                typ = (meta >> 48) & 0xFF
                t = _int(slot["time_ns"])
                line = "  %12.6f %-5s" % ((t - start) / 1e9, TRACE_TYPES.get(typ, "?"))
                peer = _int(slot["peer"])
                arg = _int(slot["arg"])
                if typ in (5, 6) and (meta >> 56) & 1:
                    # START/STOP naming the writer: name in peer+arg,
                    # actor id in mailbox+kind (core/trace.h)
                    name = (peer.to_bytes(8, "little") + arg.to_bytes(8, "little"))
                    name = name.split(b"\0", 1)[0].decode("utf-8", "replace")
                    line = "  %12.6f %-5s name=%s id=%d" % (
                        (t - start) / 1e9, TRACE_TYPES.get(typ, "?"), name, mb | kind << 16)
                    print(line)
                    continue
                if mb:
                    line += " mailbox=%s" % ((_str(mbnames[mb]) if mb < nmbs else "") or mb)
                if kind:
                    line += " kind=%s" % ((_str(kindnames[kind]) if kind < nkinds else "") or kind)
                if peer:
                    line += " peer=%016x" % peer
                line += " arg=%d" % arg
                print(line)


Actors()
Mailboxes()
Trace()
