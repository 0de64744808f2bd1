"""``ppsize.Kernel``: a kernel of a base page size, its physical memory and THP policy,
running processes that may each have their own page size."""
from __future__ import annotations

import numpy as np

from ._core.folio import FOLIO_FLAGS
from ._core.kcore import KernelCore
from ._core.vma import VM_FLAGS
from .buddy import check_frames
from .pagecache import File, PageCache
from .geometry import Geometry, default_geometry, geometry as lookup
from .units import fmt_size, parse_size

__all__ = ["Kernel", "THP_SETTINGS", "FILE_POLICIES"]

THP_SETTINGS = ("always", "inherit", "madvise", "never")
# The page-cache min-order transition policies of the thread (see Kernel.file_policy)
FILE_POLICIES = ("range", "drop-all", "max-order-on-mmap", "large-unless-eof")
PG_MLOCKED, PG_DIRTY = FOLIO_FLAGS["mlocked"], FOLIO_FLAGS["dirty"]
PG_WRITEBACK, PG_LOCKED = FOLIO_FLAGS["writeback"], FOLIO_FLAGS["locked"]
VM_LOCKED, VM_SHARED, VM_WRITE = VM_FLAGS["VM_LOCKED"], VM_FLAGS["VM_SHARED"], VM_FLAGS["VM_WRITE"]
KERNEL_OWNER = 0         # folio owner of memory the kernel keeps (fragment()); MMs are 1..
_TOP = {"never": 0, "madvise": 1, "always": 2}


class Kernel:
    """A kernel with ``page_size`` base pages (4K/16K/64K) and ``memory`` bytes.

    ``geometry``: the kernel's page-table geometry (default: the 48-bit arm64 one of
    that granule; any name from ``ppsize.GEOMETRIES`` of that granule). ``thp``: the
    top-level transparent_hugepage/enabled (always|madvise|never). ``mthp``: per-size
    settings as in /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled,
    e.g. ``{"64K": "always"}``; sizes not given keep Linux's default (PMD size
    "inherit", every other size "never"). Both can be changed later with
    :meth:`set_thp`.
    """

    def __init__(self, page_size="4K", memory="8G", geometry=None, mthp=None, thp="always",
                 use_zero_page=True, readahead="128K", file_policy="drop-all",
                 large_folio_size=None):
        page = parse_size(page_size, "page_size")
        if geometry is None:
            g = default_geometry(page)
        else:
            g = lookup(geometry)
            if g.page_size != page:
                raise ValueError(f"geometry {g.name} has {fmt_size(g.page_size)} pages, "
                                 f"not the kernel's {fmt_size(page)}")
        self.geometry: Geometry = g
        self.page_size = page
        mem = parse_size(memory, "memory")
        if mem % page or mem < 16 * page:
            raise ValueError(f"memory {memory!r} must be a multiple of the {fmt_size(page)} page "
                             f"and at least 16 pages")
        self.nr_pages = mem // page
        self.core = KernelCore(self.nr_pages, g.page_shift, g.max_page_order,
                               g.pageblock_order, g.pmd_order)
        self.pagecache = PageCache(self, readahead=readahead)
        self.processes: dict = {}
        self._transitions: list = []        # min-order transitions of files (see transitions)
        self._last_transition: dict = {}    # file id -> its latest transition record
        self._switched: set = set()         # max-order-on-mmap: files already switched
        self._largest_page = page           # the largest process page size in use so far
        self._large_folio_size = None
        self._any_mlocked = False           # some folio may carry PG_mlocked
        self._fragments: list = []
        self._next_pid = 1
        self._next_mm = 1
        self.set_thp(thp, mthp or {}, use_zero_page=use_zero_page)
        self._file_policy = "drop-all"
        self.file_policy = file_policy
        self.large_folio_size = large_folio_size

    # ------------------------------------------------------------- THP policy
    @property
    def anon_sizes(self) -> list:
        """Sizes with a hugepages-<size>kB directory: anon orders 2..PMD order."""
        return [self.page_size << o for o in range(2, self.geometry.pmd_order + 1)]

    def set_thp(self, enabled=None, mthp=None, use_zero_page=None):
        """Change transparent_hugepage/enabled, per-size settings and use_zero_page."""
        c = self.core
        if enabled is not None:
            if enabled not in _TOP:
                raise ValueError(f"unknown THP setting {enabled!r}; choose one of {', '.join(_TOP)}")
            c.thp_top = _TOP[enabled]
        for size, setting in (mthp or {}).items():
            nbytes = parse_size(size, "mTHP size")
            if nbytes not in self.anon_sizes:
                raise ValueError(f"no mTHP size {size!r} on a {fmt_size(self.page_size)} kernel; "
                                 f"choose from {', '.join(fmt_size(s) for s in self.anon_sizes)}")
            if setting not in THP_SETTINGS:
                raise ValueError(f"unknown mTHP setting {setting!r} for {size}; "
                                 f"choose one of {', '.join(THP_SETTINGS)}")
            bit = 1 << (nbytes // self.page_size).bit_length() - 1
            for name in ("always", "inherit", "madvise"):
                attr = "thp_" + name
                setattr(c, attr, (getattr(c, attr) | bit) if setting == name else (getattr(c, attr) & ~bit))
        if use_zero_page is not None:
            c.use_zero_page = bool(use_zero_page)

    @property
    def thp(self) -> dict:
        """The policy as sysfs shows it: {'enabled': ..., '64K': 'always', ...}."""
        c = self.core
        out = {"enabled": {v: k for k, v in _TOP.items()}[c.thp_top]}
        for size in self.anon_sizes:
            bit = 1 << (size // self.page_size).bit_length() - 1
            out[fmt_size(size)] = ("always" if c.thp_always & bit else "inherit" if c.thp_inherit & bit
                                   else "madvise" if c.thp_madvise & bit else "never")
        return out

    # ------------------------------------------------------------------- files
    def create_file(self, path, size, large_folios=True) -> File:
        """A file of ``size`` bytes in the page cache (nothing cached yet);
        ``large_folios``: the file system supports large folios."""
        return self.pagecache.create_file(path, size, large_folios=large_folios)

    # ------------------------------------------------- min-order transitions
    @property
    def file_policy(self) -> str:
        """How the page cache gives a process with page size P folios >= P in the
        files it maps (the thread's options), one of FILE_POLICIES:

        * ``"drop-all"`` (default): when a process whose page order exceeds the
          file's min folio order mmaps it, bump the min order, unmap the file from
          every process and drop its whole cache; __filemap_add_folio refuses
          smaller folios, the faults that follow re-read at the new order.
        * ``"range"``: when the mapped range holds folios below the process order,
          unmap and drop only that range, bump the min order and re-read what was
          dropped at the new order. Folios below the new min order outside the range
          stay: the file is recorded as *mixed* (see :meth:`mixed_files`), and a
          later read or fault in a partially populated block of the new order
          livelocks on -EEXIST (ELOOP here), the thread's objection.
        * ``"max-order-on-mmap"``: the first mmap of a file by anyone raises its min
          order to the largest order that fits the file: min(max folio order,
          floor(log2(pages of i_size))), at least the process order; a later
          process with a larger page than that gets the drop-all transition.
        * ``"large-unless-eof"``: no transition; every new folio of every file
          (with large folio support) is :attr:`large_folio_size` unless it would
          run past EOF, where readahead's order shrinking applies (set in the page
          cache's folio-order choice: readahead, __filemap_get_folio,
          filemap_create_folio). Folios cached before the policy was chosen stay.

        A transition that would have to drop a pinned, mlocked, dirty, under
        writeback or locked folio is not done (status "blocked"); the mmap that
        wanted it fails with EBUSY. Each transition is reported in
        :attr:`transitions`."""
        return self._file_policy

    @file_policy.setter
    def file_policy(self, policy):
        if policy not in FILE_POLICIES:
            raise ValueError(f"unknown file policy {policy!r}; choose one of {', '.join(FILE_POLICIES)}")
        self._file_policy = policy
        self._sync_eof_order()

    @property
    def large_folio_size(self) -> int:
        """Folio size of the large-unless-eof policy (bytes): set explicitly (a size
        >= the kernel page, a power of two), or None (the default) for the largest
        process page size in use so far."""
        return self._large_folio_size or self._largest_page

    @large_folio_size.setter
    def large_folio_size(self, size):
        if size is None:
            self._large_folio_size = None
        else:
            n = parse_size(size, "large_folio_size")
            if n < self.page_size or n & (n - 1):
                raise ValueError(f"large_folio_size {fmt_size(n)} must be a power of two >= the "
                                 f"kernel's {fmt_size(self.page_size)}")
            order = (n // self.page_size).bit_length() - 1
            if order > self.pagecache.max_pagecache_order:
                raise ValueError(f"large_folio_size {fmt_size(n)} above MAX_PAGECACHE_ORDER "
                                 f"({fmt_size(self.page_size << self.pagecache.max_pagecache_order)})")
            self._large_folio_size = n
        self._sync_eof_order()

    def _page_size_in_use(self, page):
        if page > self._largest_page:
            self._largest_page = page
            self._sync_eof_order()

    def _sync_eof_order(self):
        if not hasattr(self, "pagecache"):
            return
        order = (self.large_folio_size // self.page_size).bit_length() - 1
        order = min(order, self.pagecache.max_pagecache_order)
        on = self._file_policy == "large-unless-eof" and order > 0
        self.pagecache.core.eof_order = order if on else -1

    def mmap_transition(self, proc, file, first, last, dry_run=False):
        """The file policy's step when ``proc`` maps pages [first, last] of
        ``file`` (called by Process.mmap after the VMA exists, and by
        Process.mremap for the pages a file mapping grows over). Returns the
        transition's report or None. ``dry_run``: change nothing, return the
        blocked report if the transition would be blocked, else None."""
        pc = self.pagecache
        porder = (proc.page_size // self.page_size).bit_length() - 1
        policy = self._file_policy
        if policy == "large-unless-eof" or (porder == 0 and policy != "max-order-on-mmap"):
            return None                      # kernel-page processes need nothing
        info = pc.info(file)
        if policy == "max-order-on-mmap":
            if file.id not in self._switched:
                nr = max(1, -(-info["i_size"] // self.page_size))
                fit = min(info["max_order"], nr.bit_length() - 1)
                target = max(porder, fit)
                rep = None
                if target > info["min_order"]:
                    rep = self._transition(file, target, policy, reason="first mmap", dry_run=dry_run)
                if not dry_run and (rep is None or rep["status"] == "done"):
                    self._switched.add(file.id)
                return rep
            if porder > info["min_order"]:
                return self._transition(file, porder, policy, reason="larger process page", dry_run=dry_run)
            return None
        if policy == "range":
            nr = -(-info["i_size"] // self.page_size)
            last = min(last, nr - 1)
            small = any(o < porder and i <= last and i + (1 << o) > first
                        for i, o in pc.layout(file))
            if porder > info["min_order"] or small:
                return self._transition(file, porder, policy, first, last, reason="mmap", dry_run=dry_run)
            return None
        if porder > info["min_order"]:
            return self._transition(file, porder, policy, reason="mmap", dry_run=dry_run)
        return None

    def file_min_order(self, file, order, policy=None, first=0, last=None):
        """Give ``file`` folios of at least ``order`` by the transition of
        ``policy`` (default: the kernel's; "range" over pages [first, last],
        "drop-all" and "max-order-on-mmap" over the whole file). Returns the
        report (also in :attr:`transitions`), or None if the min order is already
        >= order (and, for "range", the range holds no smaller folio)."""
        policy = self._file_policy if policy is None else policy
        if policy not in FILE_POLICIES:
            raise ValueError(f"unknown file policy {policy!r}; choose one of {', '.join(FILE_POLICIES)}")
        if policy == "large-unless-eof":
            raise ValueError("large-unless-eof has no transition: it chooses folio sizes when "
                             "files are read (Kernel.large_folio_size)")
        pc = self.pagecache
        info = pc.info(file)
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
            raise TypeError(f"order must be an int, not {order!r}")
        if not 0 <= order <= pc.max_pagecache_order:
            raise ValueError(f"order {order} out of range 0..{pc.max_pagecache_order}")
        if policy == "range":
            nr = -(-info["i_size"] // self.page_size)
            last = nr - 1 if last is None else min(int(last), nr - 1)
            if first < 0:
                raise ValueError(f"first page {first} is negative")
            small = any(o < order and i <= last and i + (1 << o) > first for i, o in pc.layout(file))
            if info["min_order"] >= order and not small:
                return None
            return self._transition(file, order, policy, int(first), last, reason="explicit")
        if info["min_order"] >= order:
            return None
        return self._transition(file, order, policy, reason="explicit")

    def _transition(self, file, order, policy, first=None, last=None, reason="", dry_run=False):
        """One min-order transition (under invalidate_lock in Linux; atomic here).
        drop-all / max-order-on-mmap: the whole file; range: pages [first, last]
        rounded out to the new order. First the folios to drop are checked: a
        pinned (refcount > 1), mlocked, dirty, writeback or locked one blocks the
        transition and nothing changes. Else: mapping_set_folio_order_range(order,
        max), unmap_mapping_pages over the range in every process (even_cows=0),
        drop the range's folios (truncate_inode_pages_range-like, nothing busy is
        left), and for "range" re-read the dropped pages at the new order
        (__filemap_get_folio(FGP_CREAT) per new-order block, as the re-read
        page_cache_ra_unbounded would)."""
        pc = self.pagecache
        kb = self.page_size >> 10
        info = pc.info(file)
        old_min = info["min_order"]
        new_min = max(order, old_min)
        nr_file = -(-info["i_size"] // self.page_size)
        whole = policy != "range"
        step = 1 << new_min
        if whole:
            lo, hi = 0, max(nr_file, 1) - 1
        else:
            lo = first & ~(step - 1)
            hi = ((last + step) & ~(step - 1)) - 1 if last >= 0 else lo - 1
        self._update_mlocked()
        fo = pc.folios(file)
        refcount = self.core.folios.as_numpy()["refcount"]
        sel = np.flatnonzero((fo["index"] <= hi) & (fo["index"] + (1 << fo["order"].astype(np.int64)) > lo)) \
            if fo["index"].size else np.zeros(0, np.int64)
        blocked = {"pinned": 0, "mlocked": 0, "dirty": 0, "writeback": 0, "locked": 0, "folios": []}
        for k in sel.tolist():
            pfn, fl, nr = int(fo["pfn"][k]), int(fo["flags"][k]), 1 << int(fo["order"][k])
            why = [name for name, bad in (("pinned", refcount[pfn] > 1), ("mlocked", fl & PG_MLOCKED),
                                          ("dirty", fl & PG_DIRTY), ("writeback", fl & PG_WRITEBACK),
                                          ("locked", fl & PG_LOCKED)) if bad]
            for w in why:
                blocked[w] += nr
            if why:
                blocked["folios"].append({"index": int(fo["index"][k]), "order": int(fo["order"][k]),
                                          "pfn": pfn, "why": why})
        rec = {"policy": policy, "file": file.path, "reason": reason,
               "range": (lo, hi), "target_order": new_min,
               "min_order": (old_min, new_min if not blocked["folios"] else old_min),
               "cached_before_kb": info["nrpages"] * kb, "meminfo_cached_before_kb": pc.meminfo_cached,
               "blocked": blocked,
               "pages_blocked": sum(1 << f["order"] for f in blocked["folios"])}
        if dry_run:
            return dict(rec, status="blocked") if blocked["folios"] else None
        if blocked["folios"]:
            rec.update(status="blocked", folios_dropped=0, pages_dropped=0, pages_unmapped=0,
                       reread_pages=0, leftover_folios=[], leftover_pages=0,
                       cached_after_kb=rec["cached_before_kb"],
                       meminfo_cached_after_kb=rec["meminfo_cached_before_kb"])
            return self._record(file, rec)
        pc.set_folio_order_range(file, new_min, max(new_min, info["max_order"]))
        # truncate_inode_pages_range / the range drop unmap first (even_cows=0)
        if whole:
            unmapped = sum(p.mm.unmap_file(file.id) for p in self.processes.values())
        else:
            unmapped = sum(p.mm.unmap_file(file.id, lo, hi) for p in self.processes.values()) \
                if hi >= lo else 0
        dropped, still = pc.drop_range(file, lo, hi) if hi >= lo else (0, 0)
        if still:
            raise AssertionError(f"{still} pages of {file.path} stayed busy after the checks")
        reread = 0
        if not whole and sel.size:
            # re-read what was dropped, at the new order (one folio per block)
            starts = np.unique(np.concatenate([
                np.arange(int(fo["index"][k]) & ~(step - 1),
                          int(fo["index"][k]) + (1 << int(fo["order"][k])), step)
                for k in sel.tolist()]))
            starts = starts[(starts >= lo) & (starts <= hi) & (starts < nr_file)]
            before = pc.info(file)["pages_read"]
            got = pc.core.get_folio_batch(file.id, starts, True, new_min)
            if (got < 0).any():
                raise OSError(-int(got[got < 0][0]), f"range re-read of {file.path} failed")
            reread = pc.info(file)["pages_read"] - before
        pc.mark_mixed(file)
        left = pc.below_min(file)
        rec.update(status="done", folios_dropped=int(sel.size), pages_dropped=dropped,
                   pages_unmapped=unmapped, reread_pages=reread,
                   leftover_folios=left, leftover_pages=sum(1 << o for _, o in left),
                   cached_after_kb=pc.nrpages(file) * kb,
                   meminfo_cached_after_kb=pc.meminfo_cached)
        return self._record(file, rec)

    def _record(self, file, rec):
        prev = self._last_transition.get(file.id)
        now = self.pagecache.info(file)["pages_read"]
        if prev is not None and prev["_read_end"] is None:
            prev["_read_end"] = now                  # the previous window closes
        rec["_fid"], rec["_read_start"], rec["_read_end"] = file.id, now, None
        self._transitions.append(rec)
        self._last_transition[file.id] = rec
        return self._public(rec)

    def _public(self, rec):
        out = {k: v for k, v in rec.items() if not k.startswith("_")}
        end = rec["_read_end"]
        if end is None:
            end = self.pagecache.core.file_info(rec["_fid"])["pages_read"]
        out["pages_read_after"] = end - rec["_read_start"]
        out["bytes_read_after"] = out["pages_read_after"] * self.page_size
        out["cached_now_kb"] = self.pagecache.core.file_info(rec["_fid"])["nrpages"] * (self.page_size >> 10)
        return out

    @property
    def transitions(self) -> list:
        """Every min-order transition so far, as dicts: policy, file, reason,
        status ("done" or "blocked"), range (pages), min_order (before, after),
        folios_dropped, pages_dropped, pages_unmapped, reread_pages (re-read inside
        the transition: `range` only), leftover_folios ([(index, order)] below the
        new min order left in the file: `range`) and leftover_pages, cached_before_kb /
        cached_after_kb (the file's cache around the transition), cached_now_kb,
        meminfo_cached_before_kb / _after_kb (Cached), blocked ({'pinned',
        'mlocked', 'dirty', 'writeback', 'locked': pages, 'folios': [{index, order,
        pfn, why}]}), pages_blocked, and pages_read_after / bytes_read_after: what
        the file's later reads and faults read from disk, counted as they happen
        (live, until the file's next transition; readahead beyond the dropped pages
        included)."""
        return [self._public(r) for r in self._transitions]

    def mixed_files(self) -> dict:
        """Files the `range` policy left with folios below their min order:
        {path: {'min_order', 'folios': [(index, order)], 'pages'}}."""
        return self.pagecache.mixed()

    def writeback(self, file=None) -> int:
        """Write back every dirty folio (of ``file``, default all files), I/O
        instant (filemap_fdatawrite + folio_end_writeback): PG_dirty and the dirty
        mark cleared, and the shared mappings write-protected (folio_mkclean), so
        the next write faults and dirties again. Returns pages cleaned."""
        pc = self.pagecache
        files = pc.files if file is None else [file]
        n = 0
        for f in files:
            cleaned = pc.core.writeback(pc._fid(f))
            if cleaned:
                n += cleaned
                fid = pc._fid(f)
                for p in self.processes.values():     # folio_mkclean -> page_mkclean_one
                    for s, e, flags, _pgoff, vfid, _anon in p.aspace.vmas:
                        if vfid == fid and flags & VM_SHARED and flags & VM_WRITE:
                            p.mm.protect(s, e, flags & ~VM_WRITE)
        return n

    def sync(self) -> int:
        """sync(2): :meth:`writeback` of every file."""
        return self.writeback()

    def _update_mlocked(self):
        """PG_mlocked on exactly the folios some VM_LOCKED VMA maps (mlock_folio /
        munlock_folio with mlock_count: the flag stays while any locked mapping
        does)."""
        users = [p for p in self.processes.values() if p._locked]
        if not users and not self._any_mlocked:
            return
        folios = self.core.folios
        arr = folios.as_numpy()
        have = set(np.flatnonzero((arr["order"] >= 0) & ((arr["flags"] & PG_MLOCKED) != 0)).tolist())
        want = set()
        for p in users:
            for s, e, flags, *_ in p.aspace.vmas:
                if flags & VM_LOCKED:
                    want.update(p._mapped_heads(s, e).tolist())
        for h in have - want:
            folios.clear(h, PG_MLOCKED)
        for h in want - have:
            folios.set(h, PG_MLOCKED)
        self._any_mlocked = bool(want)

    def truncate(self, file, size):
        """truncate(2) / truncate_setsize: the new i_size; pages beyond it unmapped
        from every process, private COW copies included (truncate_pagecache:
        unmap_mapping_range(holebegin, 0, even_cows=1)), then dropped from the cache
        (truncate_inode_pages). Returns pages unmapped."""
        size = parse_size(size, "size")
        first = -(-size // self.page_size)
        unmapped = sum(p.mm.unmap_file(file.id, first, 1 << 62, True) for p in self.processes.values())
        self.pagecache.truncate(file, size)
        return unmapped

    def drop_caches(self) -> int:
        """echo 1 > /proc/sys/vm/drop_caches: invalidate every clean, unmapped
        folio; returns pages dropped."""
        return self.pagecache.drop_caches()

    # --------------------------------------------------------------- processes
    def spawn(self, page_size=None, pgtable="emulated", name=None):
        """Start a process with its own page size (>= the kernel's; default the
        kernel's) and page tables "emulated" (kernel-granule tables, contiguous bit)
        or "native" (tables in the process granule)."""
        from .process import Process
        return Process(self, page_size, pgtable, name)

    def _new_pid(self):
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def _new_mm_id(self):
        mm = self._next_mm
        self._next_mm += 1
        return mm

    # -------------------------------------------------------------- accounting
    def meminfo(self) -> dict:
        """/proc/meminfo fields in kB: MemTotal (memory less the reserved zero
        region), MemFree, Cached (the page cache), AnonPages, AnonHugePages,
        PageTables, and XArrayNodes (the page cache's radix_tree_node slab, part
        of SReclaimable)."""
        c, kb = self.core, self.page_size >> 10
        reserved = 1 << c.zero_order
        thp_heads = set()
        tables = 0
        for p in self.processes.values():
            tables += p.page_table_bytes()
            thp_heads |= p._pmd_mapped_heads()
        return {
            "MemTotal": (self.nr_pages - reserved) * kb,
            "MemFree": c.buddy.nr_free_pages * kb,
            "Cached": self.pagecache.meminfo_cached,
            "AnonPages": c.anon_pages * kb,
            "AnonHugePages": len(thp_heads) * (1 << self.geometry.pmd_order) * kb,
            "PageTables": tables >> 10,
            "XArrayNodes": self.pagecache.xa_slab_bytes >> 10,
        }

    def buddyinfo(self):
        return self.core.buddy.buddyinfo()

    def fragment(self, seed=0, steps=100_000, fill=0.75, **churn):
        """Age physical memory: a seeded churn of mixed-order allocations and frees
        (BuddyAllocator.churn, one nogil loop). The blocks still allocated at the
        end stay, as kernel memory (folios owned by the kernel, never mapped), so
        high-order allocations fail as on a long-running system; undo with
        :meth:`release_fragments`. Returns the churn's statistics."""
        stats = self.core.buddy.churn(seed, steps, fill=fill, **churn)
        for pfn, order in zip(stats["live_pfns"].tolist(), stats["live_orders"].tolist()):
            self.core.folios.init(pfn, order, 0, KERNEL_OWNER, 0)
        self._fragments.append((stats["live_pfns"], stats["live_orders"]))
        return stats

    def release_fragments(self):
        """Free every block :meth:`fragment` left allocated."""
        for pfns, orders in self._fragments:
            for pfn in pfns.tolist():
                self.core.folios.free(pfn)
            self.core.buddy.free_batch(pfns, orders)
        self._fragments = []

    def mthp_stats(self) -> dict:
        """{size: {'anon_fault_alloc': n, 'anon_fault_fallback': n}} (sysfs stats/)."""
        return {fmt_size(self.page_size << o): {"anon_fault_alloc": a, "anon_fault_fallback": f}
                for o, (a, f) in self.core.mthp_stats().items()}

    @property
    def oom_count(self) -> int:
        return self.core.nr_oom

    def check(self, strict=False):
        """Verify every invariant: buddy lists and folio table consistent, every
        frame free xor in exactly one folio, each frame's mapcount equal to the
        mappings of it in all page tables, RSS and AnonPages equal to a recount,
        every process's page table and VMAs consistent, every page-cache folio
        aligned and >= its file's min order. Files the `range` policy left mixed
        are the one exception: their folios below the min order must be ones the
        transition left behind (no new ones; see :meth:`mixed_files`); with
        ``strict`` a mixed file fails the check too."""
        c = self.core
        c.buddy.check()
        c.folios.check()
        self.pagecache.check()
        if strict:
            mixed = self.pagecache.mixed()
            if mixed:
                path, m = next(iter(mixed.items()))
                raise AssertionError(f"{len(mixed)} file(s) hold folios below their min order "
                                     f"(left by the range policy); {path}: min order "
                                     f"{m['min_order']}, folios {m['folios'][:8]}")
        check_frames(c.buddy, c.folios)
        counts = np.zeros(self.nr_pages, dtype=np.int32)
        for p in self.processes.values():
            p.check()
            p.mm.add_mapcounts(counts)
        mapcount = c.folios.as_numpy()["mapcount"]
        bad = np.flatnonzero(mapcount != counts)
        if bad.size:
            pfn = int(bad[0])
            raise AssertionError(f"pfn {pfn}: mapcount {int(mapcount[pfn])}, mapped {int(counts[pfn])} times")
        arrays = c.folios.as_numpy()
        heads = np.flatnonzero(arrays["order"] >= 0)
        anon = heads[(arrays["flags"][heads] & FOLIO_FLAGS["anon"]) != 0]
        sizes = np.left_shift(1, arrays["order"][anon].astype(np.int64))
        if int(sizes.sum()) != c.anon_pages:
            raise AssertionError(f"AnonPages {c.anon_pages} pages, anon folios hold {int(sizes.sum())}")
        mapped = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        per_folio = mapped[anon + sizes] - mapped[anon]
        per_folio[arrays["refcount"][anon] > 1] = 1     # pinned: kept until unpin
        if (per_folio == 0).any():
            pfn = int(anon[np.flatnonzero(per_folio == 0)[0]])
            raise AssertionError(f"anon folio at pfn {pfn} is mapped nowhere but not freed")
        # every mapped file folio is in its mapping, at its index
        file_heads = np.unique(c.folios.head_of(np.flatnonzero(counts)))
        file_heads = file_heads[(arrays["flags"][file_heads] & FOLIO_FLAGS["anon"]) == 0]
        for head in file_heads.tolist():
            owner, index = int(arrays["owner"][head]), int(arrays["index"][head])
            f = -2 - owner                              # mapping_owner(file) = -2 - file
            if not 0 <= f < self.pagecache.core.nr_files or \
                    self.pagecache.core.get_folio(f, index, False) != head:
                raise AssertionError(f"mapped file folio at pfn {head} (owner {owner}, index {index}) "
                                     f"is not in its mapping")
        return True

    def __repr__(self):
        return (f"<Kernel {fmt_size(self.page_size)} {self.geometry.name}, "
                f"{fmt_size(self.nr_pages * self.page_size)}, {len(self.processes)} processes>")
