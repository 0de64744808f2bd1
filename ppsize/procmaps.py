"""Read a live process's memory layout from /proc: its VMAs with every smaps field
(/proc/PID/smaps), its status, its pages (/proc/PID/pagemap, read in bulk) and the flags
of physical frames (/proc/kpageflags, /proc/kpagecount, read in clustered runs).

The bit layouts are the kernel's: pagemap entries as pagemap_read / pte_to_pagemap_entry
(fs/proc/task_mmu.c, Documentation/admin-guide/mm/pagemap.rst), frame flags as
stable_page_flags (fs/proc/page.c, include/uapi/linux/kernel-page-flags.h). Nothing here
loops over pages in Python."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["read_vmas", "present_ranges", "read_smaps", "Smaps", "read_status", "read_stat",
           "read_pagemap", "read_kpage", "folios_of", "PM", "KPF", "PAGEMAP_PFN_MASK"]

# fs/proc/task_mmu.c: PM_* (one u64 per page of /proc/PID/pagemap)
PM = {
    "soft_dirty": 55,       # PM_SOFT_DIRTY
    "exclusive": 56,        # PM_MMAP_EXCLUSIVE: mapped only by this process
    "uffd_wp": 57,          # PM_UFFD_WP
    "guard": 58,            # PM_GUARD_REGION (MADV_GUARD_INSTALL marker, 6.15+)
    "file": 61,             # PM_FILE: file page or shared anonymous (shmem)
    "swapped": 62,          # PM_SWAP
    "present": 63,          # PM_PRESENT
}
PAGEMAP_PFN_MASK = (1 << 55) - 1     # PM_PFRAME_MASK: PFN if present, swap type/offset if swapped
PM_PRESENT = 1 << PM["present"]
PM_SWAP = 1 << PM["swapped"]

# include/uapi/linux/kernel-page-flags.h and include/linux/kernel-page-flags.h: KPF_*
KPF = {
    "locked": 0, "error": 1, "referenced": 2, "uptodate": 3, "dirty": 4, "lru": 5,
    "active": 6, "slab": 7, "writeback": 8, "reclaim": 9, "buddy": 10, "mmap": 11,
    "anon": 12, "swapcache": 13, "swapbacked": 14, "compound_head": 15,
    "compound_tail": 16, "huge": 17, "unevictable": 18, "hwpoison": 19, "nopage": 20,
    "ksm": 21, "thp": 22, "offline": 23, "zero_page": 24, "idle": 25, "pgtable": 26,
    "reserved": 32, "mlocked": 33, "owner_2": 34, "private": 35, "private_2": 36,
    "owner_private": 37, "arch": 38, "uncached": 39, "softdirty": 40, "arch_2": 41,
    "arch_3": 42,
}
_HEAD = np.uint64(1 << KPF["compound_head"])
_TAIL = np.uint64(1 << KPF["compound_tail"])

# the largest folio whose head and tails we look for around a compound frame: PMD order
# (MAX_PAGECACHE_ORDER and the THP PMD order on x86-64 and arm64 4K); hugetlb folios are
# larger and are recognised by KPF_HUGE instead.
FOLIO_WINDOW_ORDER = 9
_KPAGE_GAP = 64         # read over a gap of up to this many frames rather than seek past it


# ---------------------------------------------------------------- smaps
@dataclass
class Smaps:
    """The VMAs of /proc/PID/smaps as parallel columns (one row per VMA, as /proc lists
    them: unmerged, in address order). ``values[i, j]`` is field ``fields[j]`` of VMA i as
    printed (kB for sizes; THPeligible and ProtectionKey as plain numbers), 0 when the
    kernel did not print it for that VMA."""
    start: np.ndarray               # u64
    end: np.ndarray                 # u64
    pgoff: np.ndarray               # u64 byte offset in the file ("offset" column)
    dev: np.ndarray                 # u64, os.makedev(major, minor)
    inode: np.ndarray               # u64
    perms: list[str]                # "r-xp", "rw-s", ...
    names: list[str]                # path, "[heap]", "[stack]", "[vdso]", "" for anonymous
    fields: list[str]
    values: np.ndarray              # u64 (n_vmas, n_fields)
    vmflags: list[tuple[str, ...]] = field(default_factory=list)

    def __len__(self):
        return len(self.start)

    def column(self, name) -> np.ndarray:
        try:
            return self.values[:, self.fields.index(name)]
        except ValueError:
            return np.zeros(len(self), dtype=np.uint64)


def parse_smaps(text: str) -> Smaps:
    """Parse the text of /proc/PID/smaps (or /proc/PID/maps: no fields then)."""
    starts, ends, offs, devs, inodes, perms, names, rows, flags = [], [], [], [], [], [], [], [], []
    fields: dict[str, int] = {}
    row = None
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep and " " not in key:             # "Rss:   8 kB", "VmFlags: rd wr", "THPeligible: 0"
            if row is None:
                raise ValueError(f"smaps field before the first VMA: {line!r}")
            if key == "VmFlags":
                flags[-1] = tuple(rest.split())
                continue
            tok = rest.split()
            j = fields.setdefault(key, len(fields))
            try:
                row[j] = int(tok[0]) if tok else 0
            except ValueError:
                continue                        # a field we cannot read as a number
            continue
        parts = line.split(None, 5)
        if len(parts) < 5 or "-" not in parts[0]:
            if not line.strip():
                continue
            raise ValueError(f"not an smaps line: {line!r}")
        s, e = parts[0].split("-")
        major, minor = parts[3].split(":")
        starts.append(int(s, 16))
        ends.append(int(e, 16))
        perms.append(parts[1])
        offs.append(int(parts[2], 16))
        devs.append(os.makedev(int(major, 16), int(minor, 16)))
        inodes.append(int(parts[4]))
        names.append(parts[5].strip() if len(parts) > 5 else "")
        row = {}
        rows.append(row)
        flags.append(())
    values = np.zeros((len(rows), len(fields)), dtype=np.uint64)
    for i, r in enumerate(rows):
        for j, v in r.items():
            values[i, j] = v
    u64 = lambda x: np.array(x, dtype=np.uint64)
    return Smaps(u64(starts), u64(ends), u64(offs), u64(devs), u64(inodes), perms, names,
                 list(fields), values, flags)


def read_smaps(pid="self") -> Smaps:
    """The VMAs of /proc/PID/smaps. OSError (ENOENT: the process is gone) as open raises."""
    with open(f"/proc/{pid}/smaps") as f:
        return parse_smaps(f.read())


def read_vmas(pid="self"):
    """[(start, end, perms, name, rss_bytes)] from /proc/PID/smaps."""
    s = read_smaps(pid)
    rss = s.column("Rss")
    return [(int(s.start[i]), int(s.end[i]), s.perms[i], s.names[i], int(rss[i]) << 10)
            for i in range(len(s))]


# ---------------------------------------------------------------- status, stat
def parse_status(text: str) -> dict:
    """/proc/PID/status as a dict: "N kB" values as int kB, integers as int, else str."""
    out = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if not sep:
            continue
        val = val.strip()
        if val.endswith(" kB") and val[:-3].strip().isdigit():
            out[key] = int(val[:-3])
        elif val.isdigit():
            out[key] = int(val)
        else:
            out[key] = val
    return out


def read_status(pid="self") -> dict:
    with open(f"/proc/{pid}/status") as f:
        return parse_status(f.read())


# /proc/PID/stat fields after "(comm)" (fs/proc/array.c do_task_stat), numbered as proc(5)
_STAT_FIELDS = {"state": 3, "ppid": 4, "pgrp": 5, "session": 6, "flags": 9, "minflt": 10,
                "cminflt": 11, "majflt": 12, "cmajflt": 13, "utime": 14, "stime": 15,
                "num_threads": 20, "starttime": 22, "vsize": 23, "rss": 24}
PF_KTHREAD = 0x00200000          # include/linux/sched.h


def parse_stat(text: str) -> dict:
    """/proc/PID/stat: comm and the named fields (minflt, majflt, ... as ints)."""
    lp, rp = text.index("("), text.rindex(")")
    rest = text[rp + 2:].split()
    out = {"pid": int(text[:lp]), "comm": text[lp + 1:rp]}
    for name, num in _STAT_FIELDS.items():
        v = rest[num - 3]
        out[name] = v if name == "state" else int(v)
    out["kthread"] = bool(out["flags"] & PF_KTHREAD)
    return out


def read_stat(pid="self") -> dict:
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat(f.read())


# ---------------------------------------------------------------- pagemap
def read_pagemap(fd: int, start: int, end: int, page_size: int | None = None) -> np.ndarray:
    """The pagemap entries (u64) of [start, end) from an open /proc/PID/pagemap, in one
    pread per 64 MiB of entries. A short read (the process exited, or the range is past the
    user address space) returns fewer entries than pages."""
    page = page_size or os.sysconf("SC_PAGE_SIZE")
    first, n = start // page, (end - start) // page
    chunks, step = [], 8 << 20
    for off in range(0, n, step):
        want = min(step, n - off) * 8
        buf = os.pread(fd, want, (first + off) * 8)
        chunks.append(np.frombuffer(buf, dtype=np.uint64))
        if len(buf) < want:
            break
    return np.concatenate(chunks) if len(chunks) != 1 else chunks[0]


def present_ranges(pid="self", page_size=None):
    """Merged [start, end) ranges of the pages present in a process's memory,
    from /proc/PID/pagemap (VMAs with no RSS are skipped without reading).

    Returns an (N, 2) uint64 array. The [vsyscall] page (outside user VA) is left out."""
    page = page_size or os.sysconf("SC_PAGE_SIZE")
    starts, ends = [], []
    fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    try:
        for start, end, _perms, name, rss in read_vmas(pid):
            if rss == 0 or name == "[vsyscall]":
                continue
            raw = read_pagemap(fd, start, end, page)
            present = (raw & np.uint64(PM_PRESENT | PM_SWAP)) != 0
            if not present.any():
                continue
            # run boundaries of consecutive present pages
            p = np.concatenate(([False], present, [False])).astype(np.int8)
            d = np.diff(p)
            run_start = np.flatnonzero(d == 1)
            run_end = np.flatnonzero(d == -1)
            starts.append(start + run_start.astype(np.uint64) * np.uint64(page))
            ends.append(start + run_end.astype(np.uint64) * np.uint64(page))
    finally:
        os.close(fd)
    if not starts:
        return np.zeros((0, 2), dtype=np.uint64)
    s, e = np.concatenate(starts), np.concatenate(ends)
    # runs that continue across a VMA boundary (a heap split by mprotect/madvise) are one
    first = np.flatnonzero(np.concatenate(([True], s[1:] != e[:-1])))
    last = np.concatenate((first[1:] - 1, [len(e) - 1]))
    return np.stack([s[first], e[last]], axis=1)


# ---------------------------------------------------------------- kpageflags, kpagecount
def _is_sorted_unique(a: np.ndarray) -> bool:
    return bool((a[1:] > a[:-1]).all())


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    return a if _is_sorted_unique(a) else np.unique(a)


def read_kpage(fd: int, pfns) -> np.ndarray:
    """The u64 of each frame in ``pfns`` from an open /proc/kpageflags or /proc/kpagecount
    (one pread per cluster of nearby frames). Frames past the end of the file read as
    1 << KPF_NOPAGE for kpageflags' sake (stable_page_flags' "no page")."""
    pfns = np.asarray(pfns, dtype=np.uint64)
    if len(pfns) == 0:
        return np.zeros(0, dtype=np.uint64)
    if _is_sorted_unique(pfns):
        uniq, inv = pfns, None
    else:
        uniq, inv = np.unique(pfns, return_inverse=True)
    # clusters of nearby frames, one pread each; short reads (past the last frame) pad
    brk = np.flatnonzero(np.diff(uniq) > _KPAGE_GAP)
    first = np.concatenate(([0], brk + 1))
    lo = uniq[first]
    hi = uniq[np.concatenate((brk, [len(uniq) - 1]))] + np.uint64(1)
    want = (hi - lo).astype(np.int64)
    data = np.full(int(want.sum()), np.uint64(1 << KPF["nopage"]), dtype=np.uint64)
    offsets = np.concatenate(([0], np.cumsum(want)[:-1]))
    for a, n, off in zip(lo.tolist(), want.tolist(), offsets.tolist()):
        got = np.frombuffer(os.pread(fd, n * 8, a * 8), dtype=np.uint64)
        data[off:off + len(got)] = got
    cluster = np.repeat(np.arange(len(lo)), np.diff(np.concatenate((first, [len(uniq)]))))
    vals = data[offsets[cluster] + (uniq - lo[cluster]).astype(np.int64)]
    return vals if inv is None else vals[inv.reshape(-1)]


FOLIO_DTYPE = np.dtype([("pfn", "<u8"), ("order", "u1"), ("kflags", "<u8")])
_WINDOW_ORDERS = (4, 6, FOLIO_WINDOW_ORDER)


def _run_end(not_tail: np.ndarray, at: np.ndarray, window: int) -> np.ndarray:
    """For positions ``at`` of the flattened windows: the first later position that is not
    a tail frame, or the end of the window."""
    row_end = (at // window + 1) * window
    if len(not_tail) == 0:
        return row_end
    k = np.searchsorted(not_tail, at, side="right")
    nxt = np.where(k < len(not_tail), not_tail[np.minimum(k, len(not_tail) - 1)], row_end)
    return np.minimum(nxt, row_end)


def _resolve(fd, todo: np.ndarray, w: int, last: bool):
    """One round of folios_of: read the aligned 2^w-frame window around each frame of
    ``todo`` and find its folio there. Returns (folios found, frames left unresolved)."""
    W = 1 << w
    bases = np.unique(todo >> np.uint64(w) << np.uint64(w))
    frames = (bases[:, None] + np.arange(W, dtype=np.uint64)[None, :]).reshape(-1)
    f = read_kpage(fd, frames)
    is_head, is_tail = (f & _HEAD) != 0, (f & _TAIL) != 0
    # the last head at or before each position (it must lie in the same window)
    last_head = np.maximum.accumulate(np.where(is_head, np.arange(len(frames)), -1))
    not_tail = np.flatnonzero(~is_tail)
    row = np.searchsorted(bases, todo, side="right") - 1
    at = row * W + (todo - bases[row]).astype(np.int64)
    head = last_head[at]
    has_head = head >= row * W
    head = np.where(has_head, head, at)
    end = _run_end(not_tail, head, W)
    # resolved: a head, the frame inside its run, and the run ends before the window does
    # (a run filling the window may continue past it)
    fills = has_head & (at < end) & (end == (row + 1) * W)
    ok = has_head & (at < end) & (end < (row + 1) * W)
    if last and fills.any():
        # a run that fills the last window is a folio of exactly that order unless the
        # frame after the window is a tail too (a larger folio: hugetlb, left unresolved)
        after = read_kpage(fd, bases[row[fills]] + np.uint64(W))
        ok[fills] = (after & _TAIL) == 0
    heads = np.unique(head[ok])
    out = np.zeros(len(heads), FOLIO_DTYPE)
    out["pfn"] = frames[heads]
    out["order"] = np.floor(np.log2(np.maximum(_run_end(not_tail, heads, W) - heads, 1))).astype(np.uint8)
    out["kflags"] = f[heads]
    return out, todo[~ok]


def folios_of(fd: int, pfns, flags=None) -> np.ndarray:
    """The folios (FOLIO_DTYPE: head pfn, order, the head's kpageflags) that contain the
    frames ``pfns``, from an open /proc/kpageflags; sorted by pfn, unique.

    A frame that is neither KPF_COMPOUND_HEAD nor _TAIL is an order-0 folio. For a compound
    frame the aligned window of 2^4, then 2^6, then 2^FOLIO_WINDOW_ORDER frames around it is
    read until the window holds its head and the end of its tails (a folio of order n is
    naturally aligned to 2^n frames, so a window at least that large contains all of it);
    the order is ilog2 of head + tails. Compound frames whose folio is larger than the last
    window (hugetlb) come back as order-0 entries with their own flags. ``flags``: the
    frames' kpageflags in the order of np.unique(pfns), if already read."""
    pfns = _sorted_unique(np.asarray(pfns, dtype=np.uint64))
    if len(pfns) == 0:
        return np.zeros(0, FOLIO_DTYPE)
    flags = read_kpage(fd, pfns) if flags is None else np.asarray(flags, np.uint64)
    if len(flags) != len(pfns):
        raise ValueError(f"flags has {len(flags)} entries for {len(pfns)} unique frames")
    compound = (flags & (_HEAD | _TAIL)) != 0
    parts = [np.zeros(int((~compound).sum()), FOLIO_DTYPE)]
    parts[0]["pfn"], parts[0]["kflags"] = pfns[~compound], flags[~compound]
    todo = pfns[compound]
    for i, w in enumerate(_WINDOW_ORDERS):
        if len(todo) == 0:
            break
        found, todo = _resolve(fd, todo, w, last=i == len(_WINDOW_ORDERS) - 1)
        parts.append(found)
    lone = np.zeros(len(todo), FOLIO_DTYPE)
    lone["pfn"] = todo
    lone["kflags"] = read_kpage(fd, todo) if len(todo) else 0
    parts.append(lone)
    out = np.concatenate(parts)
    out = out[np.argsort(out["pfn"], kind="stable")]
    keep = np.concatenate(([True], out["pfn"][1:] != out["pfn"][:-1])) if len(out) else np.zeros(0, bool)
    return out[keep]
