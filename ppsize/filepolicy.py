"""The page-cache min-order transition policies (``Kernel.file_policy``).

When a process whose page is larger than a file's minimum folio order maps the file,
the proposal must give it folios of at least its page. The thread's options, one
function each (:data:`ON_MMAP`, keyed by :data:`FILE_POLICIES`):

* ``range``: drop and re-read only the mapped range at the process order
  (:func:`on_mmap_range`);
* ``drop-all``: drop the file's whole cache and raise its min order
  (:func:`on_mmap_drop_all`);
* ``max-order-on-mmap``: the first mmap raises the min order to the largest order
  that fits the file (:func:`on_mmap_max_order`);
* ``large-unless-eof``: no transition; the page cache chooses large folios when
  files are read (:func:`on_mmap_large_unless_eof`).

A transition (under invalidate_lock in Linux; atomic here) is done by
:meth:`FilePolicy.transition` and reported as a frozen :class:`Transition`.
:class:`FilePolicy` owns the kernel's policy state: the policy name, the
transition records and the max-order-on-mmap switches.

NumPy and the compiled kernels are imported when a FilePolicy is made: the race
model (pure Python) imports its policy list from here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ._validate import as_choice, as_int, as_order

__all__ = ["FILE_POLICIES", "TRANSITION_POLICIES", "Transition", "FilePolicy", "ON_MMAP"]

# the policies of the thread, in the order it discusses them (compare, the race
# model and the kernel all import this list)
FILE_POLICIES = ("range", "drop-all", "max-order-on-mmap", "large-unless-eof")
# those that make a min-order transition (the race model explores them)
TRANSITION_POLICIES = tuple(p for p in FILE_POLICIES if p != "large-unless-eof")


@dataclass(frozen=True)
class Transition:
    """One min-order transition of a file. Also readable as a mapping
    (``t["status"]``, ``t.get(...)``, ``dict(t.items())``).

    ``status`` "done" or "blocked"; ``range`` (first, last) pages; ``min_order``
    (before, after); ``blocked``: {'pinned', 'mlocked', 'dirty', 'writeback',
    'locked': pages, 'folios': [{index, order, pfn, why}]}; ``reread_pages``: re-read
    inside the transition (range only); ``leftover_folios``: [(index, order)] below
    the new min order left in the file (range); ``pages_read_after`` /
    ``bytes_read_after``: what the file's later reads and faults read from disk,
    until its next transition; ``cached_now_kb``: the file's cache when the record
    was taken."""
    policy: str
    file: str
    reason: str
    status: str
    range: tuple
    target_order: int
    min_order: tuple
    folios_dropped: int
    pages_dropped: int
    pages_unmapped: int
    reread_pages: int
    leftover_folios: list
    leftover_pages: int
    cached_before_kb: int
    cached_after_kb: int
    meminfo_cached_before_kb: int
    meminfo_cached_after_kb: int
    blocked: dict
    pages_blocked: int
    pages_read_after: int = 0
    bytes_read_after: int = 0
    cached_now_kb: int = 0

    def __getitem__(self, key):
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key, default=None):
        return getattr(self, key) if key in self.keys() else default

    def keys(self):
        return [f.name for f in fields(self)]

    def items(self):
        return [(k, getattr(self, k)) for k in self.keys()]

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------ one function per policy
# on_mmap_<policy>(fp, file, order, first, last, dry_run): the policy's step when a
# process of page order ``order`` maps pages [first, last] of ``file``; returns the
# Transition or None.

def on_mmap_range(fp, file, order, first, last, dry_run=False, reason="mmap"):
    """range: the mapped range holds folios below the order, or the min order is
    below it: unmap, drop and re-read only that range (rounded out to the order)."""
    if order == 0:
        return None
    info = fp.pagecache.info(file)
    last = min(last, fp.nr_pages(info) - 1)
    small = any(o < order and i <= last and i + (1 << o) > first
                for i, o in fp.pagecache.layout(file))
    if order > info["min_order"] or small:
        return fp.transition(file, order, "range", first, last, reason=reason, dry_run=dry_run)
    return None


def on_mmap_drop_all(fp, file, order, first, last, dry_run=False, reason="mmap", policy="drop-all"):
    """drop-all (the thread's proposal): an order above the file's min order
    raises it; the whole file is unmapped and dropped, the faults that follow
    re-read at the new order."""
    if order > fp.pagecache.info(file)["min_order"]:
        return fp.transition(file, order, policy, reason=reason, dry_run=dry_run)
    return None


def on_mmap_max_order(fp, file, order, first, last, dry_run=False):
    """max-order-on-mmap: the first mmap of a file by anyone raises its min order
    to min(max folio order, floor(log2(pages of i_size))), at least the process
    order; later, a larger process page gets the drop-all transition."""
    info = fp.pagecache.info(file)
    if file.id in fp.switched:
        return on_mmap_drop_all(fp, file, order, first, last, dry_run, "larger process page",
                                "max-order-on-mmap")
    fit = min(info["max_order"], max(1, fp.nr_pages(info)).bit_length() - 1)
    target = max(order, fit)
    rep = None
    if target > info["min_order"]:
        rep = fp.transition(file, target, "max-order-on-mmap", reason="first mmap", dry_run=dry_run)
    if not dry_run and (rep is None or rep.status == "done"):
        fp.switched.add(file.id)
    return rep


def on_mmap_large_unless_eof(fp, file, order, first, last, dry_run=False):
    """large-unless-eof: no transition; every new folio of every file is the
    kernel's large_folio_size unless it would pass EOF (the page cache's
    folio-order choice, PageCache.eof_order)."""
    return None


ON_MMAP = {"range": on_mmap_range, "drop-all": on_mmap_drop_all,
           "max-order-on-mmap": on_mmap_max_order, "large-unless-eof": on_mmap_large_unless_eof}
assert tuple(ON_MMAP) == FILE_POLICIES


class FilePolicy:
    """The file policy of ``kernel`` (a :class:`ppsize.Kernel`) and every
    transition it made. Talks to the kernel through its public methods:
    ``kernel.pagecache``, ``kernel.processes`` (Process.unmap_file),
    ``kernel.update_mlocked()`` and ``kernel.core.folios``."""

    def __init__(self, kernel, name="drop-all"):
        from ._core.folio import FOLIO_FLAGS
        # what blocks a transition besides pins: (name in Transition.blocked, folio flag)
        self._blocking_flags = tuple((n, FOLIO_FLAGS[n]) for n in ("mlocked", "dirty", "writeback", "locked"))
        self.kernel = kernel
        self.pagecache = kernel.pagecache
        self.name = name
        self.switched: set = set()          # max-order-on-mmap: files already switched
        self._records: list = []            # [fields, file id, pages_read at start, at end]
        self._last: dict = {}               # file id -> its latest record

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, policy):
        self._name = as_choice(policy, FILE_POLICIES, "file policy")

    def nr_pages(self, info) -> int:
        """Kernel pages of a file of info["i_size"] bytes."""
        return -(-info["i_size"] // self.kernel.page_size)

    # ---------------------------------------------------------------- entry points
    def on_mmap(self, proc_order, file, first, last, dry_run=False, native=False):
        """The policy's step for an mmap (see the on_mmap_* functions). ``native``:
        the process maps with tables in its own granule, so each of its pages must
        come from one folio of at least its size; large-unless-eof's smaller EOF
        folio cannot be mapped there (SIGBUS below i_size), so for such a process
        the file gets drop-all's min-order raise instead."""
        if native and self._name == "large-unless-eof":
            return on_mmap_drop_all(self, file, proc_order, first, last, dry_run,
                                    reason="native page tables", policy="large-unless-eof")
        return ON_MMAP[self._name](self, file, proc_order, first, last, dry_run)

    def min_order(self, file, order, policy=None, first=0, last=None):
        """Kernel.file_min_order: the transition of ``policy`` (default the
        current one) to give ``file`` folios of at least ``order``."""
        policy = self._name if policy is None else as_choice(policy, FILE_POLICIES, "file policy")
        if policy == "large-unless-eof":
            raise ValueError("large-unless-eof has no transition: it chooses folio sizes when "
                             "files are read (Kernel.large_folio_size)")
        info = self.pagecache.info(file)
        order = as_order(order, "order", self.pagecache.max_pagecache_order)
        if policy != "range":
            return on_mmap_drop_all(self, file, order, 0, -1, reason="explicit", policy=policy)
        first = as_int(first, "first")
        if first < 0:
            raise ValueError(f"first page {first} is negative")
        last = self.nr_pages(info) - 1 if last is None else as_int(last, "last")
        return on_mmap_range(self, file, order, first, last, reason="explicit")

    # ---------------------------------------------------------------- the work
    def transition(self, file, order, policy, first=None, last=None, reason="", dry_run=False):
        """One min-order transition. drop-all / max-order-on-mmap: the whole file;
        range: pages [first, last] rounded out to the new order. First the folios to
        drop are checked: a pinned (refcount > 1), mlocked, dirty, writeback or
        locked one blocks the transition and nothing changes. Else:
        mapping_set_folio_order_range(order, max), unmap_mapping_pages over the range
        in every process (even_cows=0), drop the range's folios
        (truncate_inode_pages_range-like, nothing busy is left), and for "range"
        re-read the dropped pages at the new order (__filemap_get_folio(FGP_CREAT)
        per new-order block, as the re-read page_cache_ra_unbounded would).
        ``dry_run``: change nothing; the blocked Transition if it would be
        blocked, else None."""
        import numpy as np
        pc, kernel = self.pagecache, self.kernel
        kb = kernel.page_size >> 10
        info = pc.info(file)
        old_min = info["min_order"]
        new_min = max(order, old_min)
        nr_file = self.nr_pages(info)
        whole = policy != "range"
        step = 1 << new_min
        if whole:
            lo, hi = 0, max(nr_file, 1) - 1
        else:
            lo = first & ~(step - 1)
            hi = ((last + step) & ~(step - 1)) - 1 if last >= 0 else lo - 1
        kernel.update_mlocked()
        fo = pc.folios(file)
        sel = np.flatnonzero((fo["index"] <= hi) & (fo["index"] + (1 << fo["order"].astype(np.int64)) > lo)) \
            if fo["index"].size else np.zeros(0, np.int64)
        blocked = self._blockers(fo, sel)
        rec = {"policy": policy, "file": file.path, "reason": reason, "range": (lo, hi),
               "target_order": new_min, "min_order": (old_min, new_min if not blocked["folios"] else old_min),
               "cached_before_kb": info["nrpages"] * kb, "meminfo_cached_before_kb": pc.meminfo_cached,
               "blocked": blocked, "pages_blocked": sum(1 << f["order"] for f in blocked["folios"])}
        if blocked["folios"]:
            rec.update(status="blocked", folios_dropped=0, pages_dropped=0, pages_unmapped=0,
                       reread_pages=0, leftover_folios=[], leftover_pages=0,
                       cached_after_kb=rec["cached_before_kb"],
                       meminfo_cached_after_kb=rec["meminfo_cached_before_kb"])
            return Transition(**rec) if dry_run else self._record(file, rec)
        if dry_run:
            return None
        pc.set_folio_order_range(file, new_min, max(new_min, info["max_order"]))
        # truncate_inode_pages_range / the range drop unmap first (even_cows=0)
        unmapped = 0
        if hi >= lo:
            unmapped = sum(p.unmap_file(file, *((0, -1) if whole else (lo, hi)))
                           for p in kernel.processes.values())
        dropped, still = pc.drop_range(file, lo, hi) if hi >= lo else (0, 0)
        if still:
            raise AssertionError(f"{still} pages of {file.path} stayed busy after the checks")
        reread = 0 if whole else self._reread(file, fo, sel, lo, hi, step, nr_file, new_min)
        pc.mark_mixed(file)
        left = pc.below_min(file)
        rec.update(status="done", folios_dropped=int(sel.size), pages_dropped=dropped,
                   pages_unmapped=unmapped, reread_pages=reread,
                   leftover_folios=left, leftover_pages=sum(1 << o for _, o in left),
                   cached_after_kb=pc.nrpages(file) * kb,
                   meminfo_cached_after_kb=pc.meminfo_cached)
        return self._record(file, rec)

    def _blockers(self, fo, sel) -> dict:
        """The folios of ``sel`` that block a transition, and why (folio_busy less
        the mapping, which the transition undoes itself)."""
        refcount = self.kernel.core.folios.as_numpy(used_only=True)["refcount"]   # live folios
        blocked = {"pinned": 0, "mlocked": 0, "dirty": 0, "writeback": 0, "locked": 0, "folios": []}
        for k in sel.tolist():
            pfn, fl, nr = int(fo["pfn"][k]), int(fo["flags"][k]), 1 << int(fo["order"][k])
            why = (["pinned"] if refcount[pfn] > 1 else []) + \
                [name for name, bit in self._blocking_flags if fl & bit]
            for w in why:
                blocked[w] += nr
            if why:
                blocked["folios"].append({"index": int(fo["index"][k]), "order": int(fo["order"][k]),
                                          "pfn": pfn, "why": why})
        return blocked

    def _reread(self, file, fo, sel, lo, hi, step, nr_file, new_min) -> int:
        """range: re-read the dropped pages at the new order (one folio per block)."""
        import numpy as np
        if not sel.size:
            return 0
        pc = self.pagecache
        starts = np.unique(np.concatenate([
            np.arange(int(fo["index"][k]) & ~(step - 1), int(fo["index"][k]) + (1 << int(fo["order"][k])), step)
            for k in sel.tolist()]))
        starts = starts[(starts >= lo) & (starts <= hi) & (starts < nr_file)]
        before = pc.info(file)["pages_read"]
        got = pc.core.get_folio_batch(file.id, starts, True, new_min)
        if (got < 0).any():
            raise OSError(-int(got[got < 0][0]), f"range re-read of {file.path} failed")
        return pc.info(file)["pages_read"] - before

    # ---------------------------------------------------------------- records
    def _record(self, file, rec) -> Transition:
        now = self.pagecache.info(file)["pages_read"]
        prev = self._last.get(file.id)
        if prev is not None and prev[3] is None:
            prev[3] = now                           # the previous window closes
        entry = [rec, file.id, now, None]
        self._records.append(entry)
        self._last[file.id] = entry
        return self._public(entry)

    def _public(self, entry) -> Transition:
        rec, fid, start, end = entry
        info = self.pagecache.core.file_info(fid)
        read = (info["pages_read"] if end is None else end) - start
        return Transition(**rec, pages_read_after=read, bytes_read_after=read * self.kernel.page_size,
                          cached_now_kb=info["nrpages"] * (self.kernel.page_size >> 10))

    @property
    def transitions(self) -> list:
        """Every transition so far (see Kernel.transitions)."""
        return [self._public(e) for e in self._records]
