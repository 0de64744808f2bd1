"""``ppsize.Kernel``: a kernel of a base page size, its physical memory and THP policy,
running processes that may each have their own page size."""
from __future__ import annotations

import numpy as np

from ._core.folio import FOLIO_FLAGS
from ._core.kcore import KernelCore
from .buddy import check_frames
from .pagecache import File, PageCache
from .geometry import Geometry, default_geometry, geometry as lookup
from .units import fmt_size, parse_size

__all__ = ["Kernel", "THP_SETTINGS"]

THP_SETTINGS = ("always", "inherit", "madvise", "never")
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
                 use_zero_page=True, readahead="128K"):
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
        self.transitions: list = []         # min-order transitions of files (file_min_order)
        self._fragments: list = []
        self._next_pid = 1
        self._next_mm = 1
        self.set_thp(thp, mthp or {}, use_zero_page=use_zero_page)

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

    def file_min_order(self, file, order):
        """Give ``file`` folios of at least ``order`` (a process with a larger page
        maps it): the thread's "drop-all" transition, bump the mapping's min folio
        order, unmap the file's pages from every process (private COW copies stay),
        then drop its whole cache (__filemap_add_folio refuses smaller folios; they
        are read again at the new order). Busy folios (dirty, locked, pinned)
        cannot be dropped and are reported as blocked. Returns the
        transition's report (also kept in ``transitions``), or None if the file's
        folios are already large enough."""
        pc = self.pagecache
        info = pc.info(file)
        if info["min_order"] >= order:
            return None
        kb = self.page_size >> 10
        before = pc.nrpages(file)
        pc.set_folio_order_range(file, order, max(order, info["max_order"]))
        # truncate_inode_pages_range unmaps first (unmap_mapping_range, even_cows=0)
        unmapped = sum(p.mm.unmap_file(file.id) for p in self.processes.values())
        last = max(0, -(-info["i_size"] // self.page_size) - 1)
        dropped, blocked = pc.drop_range(file, 0, last)
        report = {"file": file.path, "policy": "drop-all", "min_order": (info["min_order"], order),
                  "pages_unmapped": unmapped, "pages_dropped": dropped, "pages_blocked": blocked,
                  "cached_before_kb": before * kb, "cached_after_kb": pc.nrpages(file) * kb}
        self.transitions.append(report)
        return report

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

    def check(self):
        """Verify every invariant: buddy lists and folio table consistent, every
        frame free xor in exactly one folio, each frame's mapcount equal to the
        mappings of it in all page tables, RSS and AnonPages equal to a recount,
        every process's page table and VMAs consistent."""
        c = self.core
        c.buddy.check()
        c.folios.check()
        self.pagecache.check()
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
        if (per_folio == 0).any():
            pfn = int(anon[np.flatnonzero(per_folio == 0)[0]])
            raise AssertionError(f"anon folio at pfn {pfn} is mapped nowhere but not freed")
        return True

    def __repr__(self):
        return (f"<Kernel {fmt_size(self.page_size)} {self.geometry.name}, "
                f"{fmt_size(self.nr_pages * self.page_size)}, {len(self.processes)} processes>")
