"""``ppsize.Kernel``: a kernel of a base page size, its physical memory and THP policy,
running processes that may each have their own page size."""
from __future__ import annotations

import errno
import os

import numpy as np

from ._core.folio import FOLIO_FLAGS
from ._core.kcore import KMEM_CACHES, OWNER_TAGS, KernelCore
from ._lock import new_lock, serialized
from ._validate import as_choice, as_page_size
from .buddy import check_frames
from .filepolicy import FILE_POLICIES, FilePolicy
from .pagecache import File, PageCache
from .geometry import Geometry, default_geometry, geometry as lookup
from .units import S_MAXBYTES, fmt_size, parse_size

__all__ = ["Kernel", "THP_SETTINGS", "FILE_POLICIES"]

THP_SETTINGS = ("always", "inherit", "madvise", "never")
PG_MLOCKED = FOLIO_FLAGS["mlocked"]
KERNEL_OWNER = 0         # folio owner of memory the kernel keeps (fragment()); MMs are 1..
PGTABLE_OWNER = OWNER_TAGS["pgtable"]   # page-table pages (PageTable), index = the MM id
SLAB_OWNER = OWNER_TAGS["slab"]         # slab pages of the kernel's kmem caches
CACHE_XA_NODE = KMEM_CACHES["radix_tree_node"]   # KernelCore's kmem caches: radix_tree_node_cachep,
NR_CACHES = KMEM_CACHES["nr_caches"]             # then the pgd_caches
_TOP = {"never": 0, "madvise": 1, "always": 2}


@serialized
class Kernel:
    """A kernel with ``page_size`` base pages (4K/16K/64K) and ``memory`` bytes.

    ``geometry``: the kernel's page-table geometry (default: the 48-bit arm64 one of
    that granule; any name from ``ppsize.GEOMETRIES`` of that granule). ``thp``: the
    top-level transparent_hugepage/enabled (always|madvise|never). ``mthp``: per-size
    settings as in /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled,
    e.g. ``{"64K": "always"}``; sizes not given keep Linux's default (PMD size
    "inherit", every other size "never"). Both can be changed later with
    :meth:`set_thp`.

    ``cpu``: a translation model (TLBs, walk caches, a data cache for walk references):
    a preset name from ``ppsize.CPU_PRESETS``, a dict of :class:`~ppsize.TLB` settings
    (``{"cpu": "cortex-a76", "coalesce": False}``) or a ``TLB``; ``ncpus`` such CPUs,
    one TLB each, shared by the processes spawned on it (ASID-tagged, see
    :mod:`ppsize.cpus`). Every access then translates through its process's TLB before
    the page-table walk, and every page-table change flushes what Linux flushes
    (:meth:`tlb_stats`, ``Process.tlb_stats``). ``tlb_check``: compare every TLB hit
    with the page table (True: count stale hits; "raise": StaleTLBHit). Without
    ``cpu`` nothing of this runs.

    ``anon_order_policy`` / ``readahead_order_policy``: user policies choosing the
    anonymous fault's folio order and the readahead folio order (see
    :mod:`ppsize.hooks`, :mod:`ppsize.policies`); None: Linux's. Settable later.
    """

    def __init__(self, page_size="4K", memory="8G", geometry=None, mthp=None, thp="always",
                 use_zero_page=True, readahead="128K", file_policy="drop-all",
                 large_folio_size=None, cpu=None, ncpus=1, tlb_check=False,
                 anon_order_policy=None, readahead_order_policy=None):
        self._lock = new_lock()     # the thread contract: see ppsize/_lock.py
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
        self._policy = FilePolicy(self)     # the file policy and its transitions
        self._largest_page = page           # the largest process page size in use so far
        self._large_folio_size = None
        self._any_mlocked = False           # some folio may carry PG_mlocked
        self._fragments: list = []
        self._next_pid = 1
        self._next_mm = 1
        self.set_thp(thp, mthp or {}, use_zero_page=use_zero_page)
        self.file_policy = file_policy
        self.large_folio_size = large_folio_size
        from .cpus import CPUs
        self._cpus = None if cpu is None else CPUs(cpu, ncpus)
        for tlb in self.cpus:
            tlb._lock = self._lock   # the Kernel's TLBs are the Kernel's
        self.tlb_check = tlb_check
        self._repeat_spares = []            # Process.access_steady's finished passes, reused
        self._policies = [None, None]       # OrderPolicy per hook (HOOK_KINDS index)
        self.anon_order_policy = anon_order_policy
        self.readahead_order_policy = readahead_order_policy

    # ---------------------------------------------------------- order hooks
    @property
    def anon_order_policy(self):
        """The anonymous folio order policy (a :class:`ppsize.hooks.OrderPolicy`), or
        None for Linux's (alloc_anon_folio's highest allowed order). Set it to a
        function decorated with ``@ppsize.anon_order_policy``, a numba cfunc of the
        hook's signature, a plain Python function of one argument (slow path), or None."""
        return self._policies[0]

    @anon_order_policy.setter
    def anon_order_policy(self, value):
        self._set_policy("anon", value)

    @property
    def readahead_order_policy(self):
        """The readahead folio order policy (page_cache_ra_order), or None for Linux's."""
        return self._policies[1]

    @readahead_order_policy.setter
    def readahead_order_policy(self, value):
        self._set_policy("readahead", value)

    def _set_policy(self, kind, value):
        from . import hooks
        policy = hooks.as_policy(value, kind)
        which, dtype, _ = hooks.HOOK_KINDS[kind]
        if policy is None:
            self.core.set_order_hook(which, None)
        else:
            info = np.zeros(1, dtype)
            self.core.set_order_hook(which, info, policy.address or 0, policy.fn, hooks.InfoView(info),
                                     *(f in policy.fields for f in hooks.COSTLY_FIELDS))
        self._policies[which] = policy

    def hooks_after_batch(self):
        """End of a batch (Process.access, read): raise PolicyError if a Python policy
        raised, warn (PolicyOrderWarning) about refused or clamped orders."""
        if self._policies[0] is None and self._policies[1] is None:
            return
        n, first, error = self.core.hook_report()
        if not n and error is None:
            return
        self.core.reset_hook_report()
        from . import hooks
        hooks.report(("anon", "readahead"), n, first, error,
                     [p.name if p else "?" for p in self._policies])

    def policy_stats(self) -> dict:
        """Orders the policies returned that the engine refused or clamped, since the
        kernel started: {"anon": {"refused", "raised", "lowered", "error", ...}, "readahead": ...}."""
        from .hooks import BAD_KINDS
        return {kind: dict(zip(BAD_KINDS, self.core.hook_stats(i)))
                for i, kind in enumerate(("anon", "readahead"))}

    # ---------------------------------------------------------------- the TLBs
    @property
    def cpus(self) -> tuple:
        """The CPUs' TLB models (``ppsize.TLB``), empty without ``cpu``."""
        return tuple(self._cpus.tlbs) if self._cpus else ()

    @property
    def tlb_check(self):
        """False, True (count stale TLB hits) or "raise" (StaleTLBHit at a batch's end)."""
        return self._tlb_check

    @tlb_check.setter
    def tlb_check(self, value):
        if value not in (False, True, "raise"):
            raise ValueError(f"tlb_check must be False, True or 'raise', got {value!r}")
        self._tlb_check = value

    def tlb_stats(self, cpu=None):
        """Per CPU, the TLB counters of every process that ran there (exited ones
        included): a list of dicts keyed by level ("l1d", "l1i", "l2", "walk", the walk
        caches, "dcache", "flush", "check"), each a dict of counters; ``cpu``: one
        CPU's dict. ValueError without a translation model."""
        c = self._require_cpus()
        if cpu is not None:
            if cpu not in range(len(c)):
                raise ValueError(f"cpu {cpu!r} out of range 0..{len(c) - 1}")
            return c.stats(c.cpu_counters(cpu), cpu)
        return [c.stats(c.cpu_counters(i), i) for i in range(len(c))]

    def _require_cpus(self):
        if self._cpus is None:
            raise ValueError("this Kernel has no translation model: Kernel(..., cpu='cortex-a76')")
        return self._cpus

    def switch_mm(self, proc):
        """A process's MM is about to run (Process: a new MM, each access batch):
        give it an ASID on its CPU (check_and_switch_context). No-op without CPUs."""
        if self._cpus is not None:
            self._cpus.switch_mm(proc)

    def release_mm(self, proc):
        """A process's MM is gone (exit, exec): its TLB counters move to the process."""
        if self._cpus is not None:
            self._cpus.release(proc)

    def process_tlb_counters(self, proc):
        """The raw counter row of a process (ppsize/_core/tlb.pxd's C_* layout)."""
        return self._require_cpus().process_counters(proc)

    # ------------------------------------------------------------- THP policy
    @property
    def anon_sizes(self) -> list:
        """Sizes with a hugepages-<size>kB directory: anon orders 2..PMD order."""
        return [self.page_size << o for o in range(2, self.geometry.pmd_order + 1)]

    def set_thp(self, enabled=None, mthp=None, use_zero_page=None):
        """Change transparent_hugepage/enabled, per-size settings and use_zero_page."""
        c = self.core
        if enabled is not None:
            c.thp_top = _TOP[as_choice(enabled, _TOP, "THP setting")]
        for size, setting in (mthp or {}).items():
            nbytes = parse_size(size, "mTHP size")
            if nbytes not in self.anon_sizes:
                raise ValueError(f"no mTHP size {size!r} on a {fmt_size(self.page_size)} kernel; "
                                 f"choose from {', '.join(fmt_size(s) for s in self.anon_sizes)}")
            as_choice(setting, THP_SETTINGS, "mTHP setting", f" for {size}")
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

    def create_files(self, sizes, names=None, large_folios=True) -> range:
        """``len(sizes)`` files in one call (:meth:`PageCache.create_files`: ``names``
        {position: path}, the others ``#<file id>``); the range of their ids."""
        return self.pagecache.create_files(sizes, names, large_folios=large_folios)

    def special_file(self, name, size) -> File:
        """The kernel's image behind a special mapping (the vDSO: vdso_image's
        pages), one per name and kernel, every page cached (they are kernel pages,
        never read from disk), mapped without fault-around (special_mapping_vmops has
        no ->map_pages: each fault maps its own page); grown if a process maps more
        of it."""
        size = parse_size(size, "size")
        key = f"<kernel {name}>"
        pc = self.pagecache
        try:
            f = pc.file(key)
        except FileNotFoundError:
            f = None
        if f is None:
            f = self.create_file(key, size, large_folios=False)
            pc.core.set_no_map_pages(f.id)        # special_mapping_vmops: no ->map_pages
        elif pc.info(f)["i_size"] < size:
            pc.truncate(f, size)
        n = -(-size // self.page_size)
        pc.seed(f, np.arange(n), 0)
        return f

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
        return self._policy.name

    @file_policy.setter
    def file_policy(self, policy):
        self._policy.name = policy
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
            n = as_page_size(size, self.page_size, "large_folio_size")
            order = (n // self.page_size).bit_length() - 1
            if order > self.pagecache.max_pagecache_order:
                raise ValueError(f"large_folio_size {fmt_size(n)} above MAX_PAGECACHE_ORDER "
                                 f"({fmt_size(self.page_size << self.pagecache.max_pagecache_order)})")
            self._large_folio_size = n
        self._sync_eof_order()

    def _sync_eof_order(self):
        # the large-unless-eof folio order of the page cache (-1: off)
        order = (self.large_folio_size // self.page_size).bit_length() - 1
        order = min(order, self.pagecache.max_pagecache_order)
        on = self.file_policy == "large-unless-eof" and order > 0
        self.pagecache.core.eof_order = order if on else -1

    def mmap_transition(self, proc, file, first, last, dry_run=False):
        """The file policy's step when ``proc`` maps pages [first, last] of
        ``file`` (Process.apply runs it for an mmap's or a growing mremap's
        Effect("file_mmap")). Returns the :class:`~ppsize.filepolicy.Transition`
        or None. ``dry_run``: change nothing, return the blocked Transition if
        the transition would be blocked, else None."""
        porder = (proc.page_size // self.page_size).bit_length() - 1
        return self._policy.on_mmap(porder, file, first, last, dry_run,
                                    native=proc.pgtable == "native")

    def file_min_order(self, file, order, policy=None, first=0, last=None):
        """Give ``file`` folios of at least ``order`` by the transition of
        ``policy`` (default: the kernel's; "range" over pages [first, last],
        "drop-all" and "max-order-on-mmap" over the whole file). Returns the
        :class:`~ppsize.filepolicy.Transition` (also in :attr:`transitions`), or
        None if the min order is already >= order (and, for "range", the range
        holds no smaller folio)."""
        return self._policy.min_order(file, order, policy, first, last)

    @property
    def transitions(self) -> list:
        """Every min-order transition so far, as frozen
        :class:`~ppsize.filepolicy.Transition` records (also readable as mappings:
        ``t["status"]``): policy, file, reason, status ("done" or "blocked"), range
        (pages), min_order (before, after), folios_dropped, pages_dropped,
        pages_unmapped, reread_pages (re-read inside the transition: `range` only),
        leftover_folios ([(index, order)] below the new min order left in the file:
        `range`) and leftover_pages, cached_before_kb / cached_after_kb (the file's
        cache around the transition), cached_now_kb, meminfo_cached_before_kb /
        _after_kb (Cached), blocked ({'pinned', 'mlocked', 'dirty', 'writeback',
        'locked': pages, 'folios': [{index, order, pfn, why}]}), pages_blocked, and
        pages_read_after / bytes_read_after: what the file's later reads and faults
        read from disk, counted as they happen (live, until the file's next
        transition; readahead beyond the dropped pages included)."""
        return self._policy.transitions

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
        n = 0
        for f in (pc.files if file is None else [pc.file_of(file)]):
            cleaned = pc.writeback(f)
            if cleaned:
                n += cleaned
                for p in self.processes.values():     # folio_mkclean -> page_mkclean_one
                    p.mkclean(f)
        return n

    def sync(self) -> int:
        """sync(2): :meth:`writeback` of every file."""
        return self.writeback()

    def update_mlocked(self):
        """PG_mlocked on exactly the folios some VM_LOCKED VMA maps (mlock_folio /
        munlock_folio with mlock_count: the flag stays while any locked mapping
        does). Processes call it after a change to their VM_LOCKED mappings."""
        want = set()
        for p in self.processes.values():
            want |= p.mlocked_heads()
        if not want and not self._any_mlocked:
            return
        folios = self.core.folios
        arr = folios.as_numpy()
        have = set(np.flatnonzero((arr["order"] >= 0) & ((arr["flags"] & PG_MLOCKED) != 0)).tolist())
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
        if size >= S_MAXBYTES:              # inode_newsize_ok: offset > s_maxbytes
            raise OSError(errno.EFBIG, f"truncate: size {size:#x} beyond s_maxbytes {S_MAXBYTES:#x}: "
                          f"{os.strerror(errno.EFBIG)}")
        first = -(-size // self.page_size)
        unmapped = sum(p.unmap_file(file, first, 1 << 62, even_cows=True) for p in self.processes.values())
        # the EOF folio that cannot be split is removed whole: truncate_inode_folio ->
        # truncate_cleanup_folio -> unmap_mapping_folio (its own pages, not COW copies)
        victim = self.pagecache.truncate_victim(file, size)
        if victim is not None:
            unmapped += sum(p.unmap_file(file, victim[0], victim[1]) for p in self.processes.values())
        self.pagecache.truncate(file, size)
        return unmapped

    def drop_caches(self) -> int:
        """echo 1 > /proc/sys/vm/drop_caches: invalidate every clean, unmapped
        folio; returns pages dropped."""
        return self.pagecache.drop_caches()

    # --------------------------------------------------------------- processes
    def spawn(self, page_size=None, pgtable="emulated", name=None, cpu=0):
        """Start a process with its own page size (>= the kernel's; default the
        kernel's) and page tables "emulated" (kernel-granule tables, contiguous bit)
        or "native" (tables in the process granule), on CPU ``cpu`` (its TLB)."""
        from .process import Process
        return Process(self, page_size, pgtable, name, cpu=cpu)

    def check_cpu(self, cpu) -> int:
        """A valid CPU index (0 without a translation model)."""
        n = len(self._cpus) if self._cpus else 1
        if isinstance(cpu, bool) or not isinstance(cpu, (int, np.integer)) or not 0 <= cpu < n:
            raise ValueError(f"cpu {cpu!r} out of range 0..{n - 1}")
        return int(cpu)

    # the interface of Process (its constructor, exec and exit)
    def alloc_pid(self) -> int:
        """A new pid (alloc_pid)."""
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def alloc_mm_id(self) -> int:
        """A new MM id (mm_alloc): the owner of its anonymous folios."""
        mm = self._next_mm
        self._next_mm += 1
        return mm

    def add_process(self, proc):
        """Register a new process (Process.__init__)."""
        self.processes[proc.pid] = proc
        self.note_page_size(proc.page_size)

    def remove_process(self, proc):
        """Forget an exited process (Process.exit)."""
        del self.processes[proc.pid]

    def note_page_size(self, page):
        """A process runs with ``page``-byte pages: large-unless-eof's default folio
        size follows the largest page in use."""
        if page > self._largest_page:
            self._largest_page = page
            self._sync_eof_order()

    # -------------------------------------------------------------- accounting
    def meminfo(self) -> dict:
        """/proc/meminfo fields in kB: MemTotal (memory less the reserved zero
        region), MemFree, Cached (the page cache), AnonPages, AnonHugePages,
        PageTables (every process's tables at their size: page-table pages, the
        PTE tables THPs deposit, PGDs below a page from the pgd_cache), and XArrayNodes (the slab
        pages of the page cache's radix_tree_node cache, part of SReclaimable)."""
        c, kb = self.core, self.page_size >> 10
        reserved = 1 << c.zero_order
        thp_heads = set()
        tables = 0
        for p in self.processes.values():
            tables += p.page_table_bytes()
            thp_heads |= p.pmd_mapped_heads()
        return {
            "MemTotal": (self.nr_pages - reserved) * kb,
            "MemFree": c.buddy.nr_free_pages * kb,
            "Cached": self.pagecache.meminfo_cached,
            "AnonPages": c.anon_pages * kb,
            "AnonHugePages": len(thp_heads) * (1 << self.geometry.pmd_order) * kb,
            "PageTables": tables >> 10,
            "XArrayNodes": self.core.cache_stats(CACHE_XA_NODE)["pages"] * kb,
        }

    def kmem_stats(self) -> dict:
        """The kernel memory the model charges: {"pagetable_pages": NR_PAGETABLE (kernel
        pages of page-table folios), "pagetable_fail": page-table allocations refused,
        "oom": faults that ended in VM_FAULT_OOM, "caches": {name: {size, per_slab,
        order, objects, slabs, pages, fail}}} (radix_tree_node, pgd-<size>)."""
        c = self.core
        caches = {}
        for i in range(NR_CACHES):
            st = c.cache_stats(i)
            if st["size"]:
                caches["radix_tree_node" if i == CACHE_XA_NODE else f"pgd-{st['size']}"] = st
        return {"pagetable_pages": c.nr_pagetable, "pagetable_fail": c.nr_pgtable_fail,
                "oom": c.nr_oom, "caches": caches}

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
        """Faults that ended in VM_FAULT_OOM: no folio, no page table or deposit, or no
        slab page for the page cache's XArray."""
        return self.core.nr_oom

    def check(self, strict=False):
        """Verify every invariant: buddy lists and folio table consistent, every
        frame free xor in exactly one folio, each frame's mapcount equal to the
        mappings of it in all page tables, RSS and AnonPages equal to a recount,
        every process's page table and VMAs consistent, every page-cache folio
        aligned and >= its file's min order, and the accounting identity:
        MemTotal - MemFree = AnonPages + Cached + page-table pages + slab pages +
        kernel memory, every table page a live table's. Files the `range` policy left mixed
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
        if self._cpus is not None:
            self._cpus.check(self.processes.values())
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
        self._check_accounting(arrays, heads)
        return True

    def _check_accounting(self, arrays, heads):
        """MemTotal - MemFree equals the used counters: every allocated frame is in a
        folio that AnonPages, Cached, PageTables (page-table pages), the slab (the
        kmem caches' pages) or the kernel's own memory (fragment(), folios a pin
        keeps after their mapping dropped them) accounts for. Every page-table page
        is a live table of a live process (and each of those has its page), every
        slab page is on its cache's list and each cache holds exactly the slabs its
        live objects need (XArray nodes, PGDs below a page)."""
        c, m = self.core, self.meminfo()
        kb = self.page_size >> 10
        used = (m["MemTotal"] - m["MemFree"]) // kb
        owner = arrays["owner"][heads]
        sizes = np.left_shift(1, arrays["order"][heads].astype(np.int64))
        cached = int(sizes[owner <= -2].sum())
        kernel = int(sizes[((owner == KERNEL_OWNER) | (owner == -1)) & (heads != c.zero_pfn)].sum())
        tables = int(sizes[owner == PGTABLE_OWNER].sum())
        slab = int(sizes[owner == SLAB_OWNER].sum())
        total = c.anon_pages + cached + tables + slab + kernel
        if used != total:
            raise AssertionError(f"MemTotal - MemFree = {used} pages, but AnonPages {c.anon_pages} + "
                                 f"Cached {cached} + PageTables {tables} + slab {slab} + kernel "
                                 f"{kernel} = {total}")
        if tables != c.nr_pagetable:
            raise AssertionError(f"NR_PAGETABLE {c.nr_pagetable} pages, page-table folios hold {tables}")
        # every page-table folio is one live table of a live process, and back
        want, objects, table_bytes = {}, {}, 0
        for p in self.processes.values():
            pt = p.mm.pt
            if not pt.charged:
                raise AssertionError(f"pid {p.pid}: page table not charged to the kernel")
            table_bytes += p.page_table_bytes()
            last = p.pt_geometry.levels - 1
            for level, pfns in list(pt.table_pfns().items()) + [(last, pt.deposit_pfns())]:
                size = p.pt_geometry.table_sizes[level]
                for pfn in pfns:
                    if pfn < 0:
                        objects[size] = objects.get(size, 0) + 1
                        continue
                    if pfn in want:
                        raise AssertionError(f"pfn {pfn} backs two page tables")
                    want[pfn] = (p, level)
        tab_heads = heads[owner == PGTABLE_OWNER]
        if set(tab_heads.tolist()) != set(want):
            extra = sorted(set(tab_heads.tolist()) - set(want))[:4]
            missing = sorted(set(want) - set(tab_heads.tolist()))[:4]
            raise AssertionError(f"page-table folios not of a live table: {extra}; tables "
                                 f"without their folio: {missing}")
        for pfn, (p, level) in want.items():
            order = int(arrays["order"][pfn])
            if int(arrays["index"][pfn]) != p.mm.mm_id or \
                    (1 << order) * self.page_size != max(self.page_size, p.pt_geometry.table_sizes[level]):
                raise AssertionError(f"pid {p.pid} level {level}: table folio at pfn {pfn} "
                                     f"(order {order}, MM {int(arrays['index'][pfn])}) is not its own")
        small = sum(size * n for size, n in objects.items())
        if table_bytes != tables * self.page_size + small:
            raise AssertionError(f"PageTables {table_bytes} bytes, but table pages {tables} x "
                                 f"{self.page_size} + PGD objects {small}")
        # kmem caches: exactly the slabs their objects need, each a slab folio
        nr_nodes = sum(pc.pool.nr_nodes for pc in c.xa_users())     # every page cache's
        slab_heads = set(heads[owner == SLAB_OWNER].tolist())
        listed = set()
        for i in range(NR_CACHES):
            st = c.cache_stats(i)
            if not st["size"]:
                continue
            live = nr_nodes if i == CACHE_XA_NODE else objects.get(st["size"], 0)
            if st["objects"] != live:
                raise AssertionError(f"kmem cache {i} ({st['size']} B): {st['objects']} objects "
                                     f"counted, {live} live")
            if st["slabs"] != -(-live // st["per_slab"]):
                raise AssertionError(f"kmem cache {i}: {st['slabs']} slabs for {live} objects "
                                     f"of {st['per_slab']} per slab")
            pfns = c.cache_slab_pfns(i)
            if len(pfns) != st["slabs"] or any(int(arrays["order"][q]) != st["order"] for q in pfns):
                raise AssertionError(f"kmem cache {i}: slab list {pfns[:4]} does not match "
                                     f"{st['slabs']} slabs of order {st['order']}")
            listed.update(pfns)
        if listed != slab_heads:
            raise AssertionError(f"slab folios {sorted(slab_heads - listed)[:4]} on no cache, "
                                 f"{sorted(listed - slab_heads)[:4]} listed but not slab folios")

    def __repr__(self):
        return (f"<Kernel {fmt_size(self.page_size)} {self.geometry.name}, "
                f"{fmt_size(self.nr_pages * self.page_size)}, {len(self.processes)} processes>")
