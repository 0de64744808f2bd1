"""``ppsize.Process``: a process with its own page size on a :class:`~ppsize.Kernel`.

Syscalls go through :class:`ppsize.abi.AddressSpace` (VMAs, errnos), which returns
the page-table work they imply as :class:`~ppsize.abi.Effect` records;
:meth:`Process.apply` is the one place that applies them (and the kernel's own:
file-policy transitions, truncate, writeback), in list order. Accesses go through
the Cython fault engine in one call per batch.
"""
from __future__ import annotations

import enum
import errno
import os

import numpy as np

from ._core.mm import MMCore
from ._core.vma import VM_FLAGS
from .abi import EFFECT_KINDS, AddressSpace, Effect, vm_flags_str
from ._lock import serialized
from .geometry import FAULT_AROUND_BYTES, default_geometry
from .pagecache import File
from ._validate import as_addresses, as_choice, as_int, as_page_size, as_ulong
from .pagetable import PageTable
from .tlb import NR_COUNTERS, StaleTLBHit
from .units import S_MAXBYTES, fmt_size, parse_size

__all__ = ["Process", "Outcome"]

VM_READ, VM_WRITE, VM_EXEC = VM_FLAGS["VM_READ"], VM_FLAGS["VM_WRITE"], VM_FLAGS["VM_EXEC"]
VM_SHARED, VM_LOCKED = VM_FLAGS["VM_SHARED"], VM_FLAGS["VM_LOCKED"]


class Outcome(enum.IntEnum):
    """Per-access result of :meth:`Process.access`."""
    HIT = 0            # translated, no fault
    FAULT = 1          # anonymous folio allocated and mapped (minor fault)
    ZERO = 2           # read fault mapped the zero page (minor fault)
    COW = 3            # write fault copied a shared page or the zero page
    REUSE = 4          # write fault reused an exclusive page
    SEGV_MAPERR = 5    # no VMA there
    SEGV_ACCERR = 6    # the VMA forbids the access
    OOM = 7            # no memory, even at the process order
    SIGBUS = 8         # beyond the end of a file, or shared anonymous memory (not modelled)
    MAJOR = 9          # file fault that read from disk (a major fault)


PGTABLE_MODES = ("emulated", "native")
_NO_INSNS = np.zeros(0, np.uint8)
STEADY_PIECES = 32         # Process.access_steady: the checkpoints of a pass

# Effect kinds applied inside one mmu_gather (tlb_gather_mmu .. tlb_finish_mmu): munmap
# and MADV_DONTNEED (zap, with free_pgtables), mprotect (change_protection), mremap
# (move_page_tables' flush_tlb_range of the old range, then free_pgtables). exit_mm and
# unmap_file gather inside MMCore (exit_mmap's fullmm gather; one per VMA for
# zap_page_range_single); the fault engine's own changes flush where Linux does.
TLB_GATHER_KINDS = frozenset({"zap", "protect", "move"})


def _page_and_tables(kernel, page_size, pgtable):
    """Validate a process page size (a power of two >= the kernel's; default the
    kernel's) and page-table mode."""
    page = kernel.page_size if page_size is None else as_page_size(page_size, kernel.page_size)
    # a process page is one folio (anon) and at most the largest page-cache folio
    # (file mappings): MAX_PAGECACHE_ORDER bounds it, and MAX_PAGE_ORDER
    g = kernel.geometry
    top = kernel.page_size << min(g.max_page_order, g.max_pagecache_order)
    if page > top:
        raise ValueError(f"page_size {fmt_size(page)} is larger than a {fmt_size(kernel.page_size)} "
                         f"kernel can map as one folio ({fmt_size(top)}: MAX_PAGECACHE_ORDER "
                         f"{g.max_pagecache_order})")
    return page, as_choice(pgtable, PGTABLE_MODES, "pgtable")


class _Blocked(Exception):
    """A file_mmap effect whose min-order transition is blocked (pinned, mlocked,
    dirty... folios): the syscall fails with EBUSY."""

    def __init__(self, effect, report):
        super().__init__(report.status)
        self.effect, self.report = effect, report


@serialized
class Process:
    """Create with :meth:`Kernel.spawn`. The emulated ABI: every address must be
    aligned to the process page size and lengths are rounded up to it."""

    def __init__(self, kernel, page_size=None, pgtable="emulated", name=None, cpu=0):
        self.kernel = kernel
        page, pgtable = _page_and_tables(kernel, page_size, pgtable)
        self.page_size = page
        self.pgtable = pgtable
        self.cpu = kernel.check_cpu(cpu)   # the CPU (TLB) it runs on, for life
        self._asid, self._asid_gen = 0, 0  # set by Kernel.switch_mm
        self._tlb_acc = np.zeros(NR_COUNTERS, np.int64)   # counters of ASIDs it no longer holds
        self.pid = kernel.alloc_pid()
        self.name = name or f"proc{self.pid}"
        self.pt_geometry = self._pt_geometry(page, pgtable)
        self._minflt_exec = 0          # faults of earlier images (min_flt is per task)
        self._pins: list = []          # long-term pins: (start, end, {folio head: pages})
        self._locked = False           # may have VM_LOCKED VMAs (PG_mlocked upkeep)
        self.aspace, self.mm = self._make_mm(page, self.pt_geometry)
        kernel.switch_mm(self)
        kernel.add_process(self)

    def _pt_geometry(self, page, pgtable):
        """The page-table geometry: the kernel's (emulated) or the process granule's
        (native, which also needs a zero page as large as the process page)."""
        kernel, kg = self.kernel, self.kernel.geometry
        if pgtable != "native":
            return kg
        zero = kernel.page_size << kernel.core.zero_order
        if zero < page:
            raise ValueError(f"a native {fmt_size(page)} process needs a zero page of its size; "
                             f"{fmt_size(kernel.nr_pages * kernel.page_size)} of memory reserves "
                             f"only {fmt_size(zero)}")
        return default_geometry(page, kg.arch)

    def _make_mm(self, page, geometry, pgtable=None):
        """A fresh address space and MM (spawn, fork, exec): (AddressSpace, MMCore).
        mm_alloc -> mm_alloc_pgd: no memory for the PGD is OSError(ENOMEM)."""
        k = self.kernel
        aspace = AddressSpace(k.geometry, page, pmd_size=geometry.pmd_size)
        x86 = k.geometry.arch == "x86_64"
        read_mask = VM_READ | VM_WRITE | (VM_EXEC if x86 else 0)
        # arm64 exec_folio_order(): 64K folios for executable file mappings
        exec_order = -1 if x86 else (65536 // k.page_size).bit_length() - 1
        pt = PageTable(geometry)
        pt._lock = k._lock                # the process's table is its Kernel's
        try:
            mm = MMCore(k.core, pt, aspace.vmas, page.bit_length() - 1,
                        (pgtable or self.pgtable) == "native", k.alloc_mm_id(), read_mask,
                        k.pagecache.core, FAULT_AROUND_BYTES, exec_order)
        except MemoryError as e:
            raise OSError(errno.ENOMEM, f"{e} ({os.strerror(errno.ENOMEM)})") from None
        return aspace, mm

    @property
    def _lock(self):
        return self.kernel._lock      # a process is its Kernel's (ppsize/_lock.py)

    @property
    def alive(self) -> bool:
        return self.pid in self.kernel.processes

    def _require_alive(self):
        if not self.alive:
            raise ProcessLookupError(f"process {self.pid} ({self.name}) has exited")

    def getpagesize(self) -> int:
        return self.page_size

    # ------------------------------------------------------------- syscalls
    def _syscall(self, call, *args, free_tables=True, **kw):
        """``call`` (an AddressSpace syscall) changes the VMAs; then its effects are
        applied, also when it failed part-way (mprotect, madvise and mlock change the
        VMAs below the first hole before ENOMEM, as Linux)."""
        self._require_alive()
        try:
            return call(*args, **kw)
        finally:
            self.apply(self.aspace.drain_effects(), free_tables=free_tables)

    def mmap(self, length, addr=None, prot="rw", file=None, offset=0, **flags) -> int:
        """mmap(2): anonymous memory, or ``file`` (a :class:`~ppsize.pagecache.File`
        of this kernel) from ``offset`` (aligned to the process page). Flags as
        :meth:`AddressSpace.mmap`: shared, fixed, noreplace, populate, ...
        Returns the address. For a file, the kernel's file policy runs when the VMA
        exists (Kernel.file_policy: a process whose page is larger than the file's
        min folio order raises it, dropping and re-reading cache); a transition
        blocked by pinned, mlocked or dirty folios fails the mmap with EBUSY (as
        invalidate_inode_pages2_range does): the new VMA is unmapped again (a
        mapping MAP_FIXED replaced stays gone, as in Linux)."""
        self._require_alive()
        fid = None if file is None else self._open(file)
        try:
            return self._syscall(self.aspace.mmap, length, addr, prot, file=fid, offset=offset, **flags)
        except _Blocked as b:
            self._syscall(self.aspace.munmap, b.effect.start, b.effect.end - b.effect.start)
            raise self._ebusy("mmap", file, b.report) from None

    @staticmethod
    def _ebusy(call, f, rep):
        b = rep["blocked"]
        return OSError(errno.EBUSY, f"{call}: {rep['policy']} transition of {f.path} to order "
                       f"{rep['target_order']} blocked by {b['pinned']} pinned, {b['mlocked']} "
                       f"mlocked, {b['dirty']} dirty pages ({os.strerror(errno.EBUSY)})")

    def _file(self, file) -> File:
        if not isinstance(file, File) or file.cache is not self.kernel.pagecache:
            raise TypeError(f"file must be a File of this kernel (Kernel.create_file), not {file!r}")
        return file

    def _open(self, file) -> int:
        """The address-space file id of a page-cache File (its id). A file with
        large folios is on a file system like ext4 or xfs, whose mappings are
        THP-aligned (get_unmapped_area = thp_get_unmapped_area)."""
        f = self._file(file)
        return self.aspace.open_file(True, fid=f.id,
                                     thp_aligned=self.kernel.pagecache.info(f)["large_folios"])

    def read(self, file, offset=0, length=None) -> dict:
        """read(2) of ``file`` through the page cache (filemap_read with the file's
        readahead state); the whole file by default. Returns the read's statistics."""
        self._require_alive()
        self._file(file)
        if length is None:
            length = max(0, self.kernel.pagecache.info(file)["i_size"] - parse_size(offset, "offset"))
        return self.kernel.pagecache.read(file, offset, length)

    def munmap(self, addr, length):
        return self._syscall(self.aspace.munmap, addr, length)

    def mprotect(self, addr, length, prot):
        return self._syscall(self.aspace.mprotect, addr, length, prot)

    def mremap(self, old_addr, old_len, new_len, flags=0, new_addr=None):
        """mremap(2). A file mapping that grows maps new pages of its file: the
        kernel's file policy runs for them as for an mmap (the proposal has to
        give a grown mapping folios >= the process page too; Linux's mremap calls
        no ->mmap). A transition that would be blocked fails the call with EBUSY
        before anything changes."""
        self._require_alive()
        start = as_ulong(old_addr, "old_addr")
        if start % self.page_size == 0:
            grow = self.aspace.mremap_growth(start, self.aspace.page_align(as_ulong(old_len, "old_len")),
                                             self.aspace.page_align(as_ulong(new_len, "new_len")))
            if grow is not None:
                f = self.kernel.pagecache.file_of(grow[0])
                rep = self.kernel.mmap_transition(self, f, grow[1], grow[2], dry_run=True)
                if rep is not None:
                    raise self._ebusy("mremap", f, rep)
        try:
            return self._syscall(self.aspace.mremap, old_addr, old_len, new_len, flags, new_addr)
        except _Blocked as b:
            raise self._ebusy("mremap", self.kernel.pagecache.file_of(b.effect.file), b.report) from None

    def madvise(self, addr, length, advice):
        """madvise(2): dontneed, hugepage, nohugepage, willneed, normal, random,
        sequential. MADV_DONTNEED zaps but never frees page tables."""
        return self._syscall(self.aspace.madvise, addr, length, advice, free_tables=False)

    def mlock(self, addr, length, onfault=False):
        """mlock(2) / mlock2(MLOCK_ONFAULT): VM_LOCKED on the range, every page
        faulted in (__mm_populate) unless ``onfault``, and PG_mlocked on the folios
        mapped there (mlock_vma_pages_range -> mlock_folio). Mlocked file folios
        block the page-cache min-order transitions."""
        self._require_alive()
        self._locked = True
        return self._syscall(self.aspace.mlock, addr, length, onfault)

    def munlock(self, addr, length):
        """munlock(2): VM_LOCKED cleared; folios no VM_LOCKED VMA maps any more
        lose PG_mlocked (munlock_folio, mlock_count down to 0)."""
        return self._syscall(self.aspace.munlock, addr, length)

    def pin(self, addr, length, write=False) -> int:
        """pin_user_pages(FOLL_PIN | FOLL_LONGTERM [| FOLL_WRITE]) of [addr, addr +
        length) (addr aligned to the process page, length rounded up): each page
        faulted in (a write fault if ``write``: COW broken, shared folios dirtied),
        then each folio's refcount += the pages of it pinned (the zero page is not
        pinned). Pinned folios cannot be dropped (folio_busy) or reused by COW.
        EFAULT if part of the range is unmapped or cannot be faulted (nothing is
        pinned then). Returns pages pinned. Release with :meth:`unpin`."""
        self._require_alive()
        start = as_ulong(addr, "addr")
        n = as_ulong(length, "length")
        if start % self.page_size:
            raise ValueError(f"pin: addr {start:#x} not aligned to {fmt_size(self.page_size)}")
        if n <= 0:
            raise ValueError(f"pin: length {n} must be positive")
        end = start + self.aspace.page_align(n)
        cur = start
        for s, e, *_ in self.aspace.vmas.rows(start, end):       # check_vma_flags: no holes
            if s > cur:
                break
            cur = e
        if cur < end:
            raise OSError(errno.EFAULT, f"pin: [{max(cur, start):#x}, {end:#x}) not mapped "
                          f"({os.strerror(errno.EFAULT)})")
        out = self._access(np.arange(start, end, self.page_size, dtype=np.uint64),
                           np.zeros(0, np.uint8), bool(write))
        bad = np.isin(out, (Outcome.SEGV_MAPERR, Outcome.SEGV_ACCERR, Outcome.OOM, Outcome.SIGBUS))
        if bad.any():
            raise OSError(errno.EFAULT, f"pin: page {start + int(np.flatnonzero(bad)[0]) * self.page_size:#x} "
                          f"could not be faulted in ({Outcome(int(out[bad][0])).name})")
        heads = self.mapped_heads(start, end)
        refs = {}
        for h in heads.tolist():
            refs[h] = refs.get(h, 0) + 1
        folios = self.kernel.core.folios
        for h, r in refs.items():
            folios.get(h, r)                          # try_grab_folio(FOLL_PIN)
        self._pins.append((start, end, refs))
        return int(heads.size)

    def unpin(self, addr, length) -> int:
        """unpin_user_pages of every pin taken by :meth:`pin` inside [addr, addr +
        length): the folios it pinned (even if unmapped since) lose those
        references; an unmapped anonymous folio or a truncated cache folio whose
        last reference goes is freed. Returns pages unpinned; ValueError if no pin
        lies in the range."""
        self._require_alive()
        start = as_ulong(addr, "addr")
        end = start + self.aspace.page_align(as_ulong(length, "length"))
        keep, n = [], 0
        for pin in self._pins:
            if pin[0] >= start and pin[1] <= end:
                n += self._release_pin(pin)
            else:
                keep.append(pin)
        if len(keep) == len(self._pins):
            raise ValueError(f"unpin: no pin inside [{start:#x}, {end:#x})")
        self._pins = keep
        return n

    def _release_pin(self, pin) -> int:
        n = 0
        for h, r in pin[2].items():
            self.mm.unpin_folio(h, r)
            n += r
        return n

    @property
    def pins(self) -> list:
        """[(start, end, pages pinned)] of this process's long-term pins."""
        return [(s, e, sum(r.values())) for s, e, r in self._pins]

    def mapped_heads(self, start, end) -> np.ndarray:
        """Folio head pfn of each kernel page mapped in [start, end) (the zero page
        left out), in address order."""
        kp = self.kernel.page_size
        vas = np.arange(start, end, kp, dtype=np.uint64)
        tr = self.mm.pt.translate(vas)
        ok = np.asarray(tr.status) == 0
        pfns = (np.asarray(tr.pa)[ok] >> np.uint64(self.kernel.geometry.page_shift)).astype(np.int64)
        c = self.kernel.core
        zero = (pfns >= c.zero_pfn) & (pfns < c.zero_pfn + (1 << c.zero_order))
        return c.folios.head_of(pfns[~zero])

    def mlocked_heads(self) -> set:
        """Folio heads mapped by this process's VM_LOCKED VMAs (Kernel.update_mlocked)."""
        if not self._locked:
            return set()
        heads = set()
        for s, e, flags, *_ in self.aspace.vmas:
            if flags & VM_LOCKED:
                heads.update(self.mapped_heads(s, e).tolist())
        return heads

    # ------------------------------------------------------------- effects
    def apply(self, effects, free_tables=True, source=None) -> int:
        """Do the page-table work of ``effects`` (:class:`~ppsize.abi.Effect`
        records) in list order: the one place, outside the fault engine's batch
        loop, where this process's page tables change (a TLB model's
        flush_tlb_range belongs after each PTE-changing kind, EFFECT_APPLY's
        methods). ``free_tables``: unmapping frees the page tables of the holes
        it leaves (free_pgtables; False for MADV_DONTNEED); ``source``: the parent
        of a fork (Effect "copy"). Then PG_mlocked follows the VM_LOCKED VMAs.
        Returns pages unmapped (zap, unmap_file). A blocked file-policy transition
        (Effect "file_mmap") stops here with the remaining effects not applied."""
        unmapped = 0
        pt = self.mm.pt
        try:
            for eff in effects:
                gather = eff.kind in TLB_GATHER_KINDS
                if gather:
                    pt._tlb_gather()                  # tlb_gather_mmu
                unmapped += EFFECT_APPLY[eff.kind](self, eff, free_tables, source) or 0
                if gather:                            # tlb_finish_mmu -> tlb_flush
                    pt._tlb_finish(eff.kind == "move")
            if source is not None and any(e.kind == "copy" for e in effects):
                source.mm.pt._tlb_flush_mm()          # dup_mmap: flush_tlb_mm(oldmm)
        finally:
            self._update_mlocked()
        return unmapped

    def _apply_split(self, eff, free_tables, source):
        self.mm.split_at(eff.start)                  # split_huge_pmd_address

    def _apply_zap(self, eff, free_tables, source):
        n = self.mm.zap_range(eff.start, eff.end)     # unmap_page_range
        if free_tables:
            self._free_hole(eff.start, eff.end)
        return n

    def _apply_protect(self, eff, free_tables, source):
        self.mm.protect(eff.start, eff.end, eff.arg)  # change_protection

    def _apply_move(self, eff, free_tables, source):
        self.mm.move(eff.start, eff.end, eff.arg)     # move_page_tables
        self._free_hole(eff.start, eff.end)

    def _apply_populate(self, eff, free_tables, source):
        """__mm_populate: fault every page in; write faults for private writable
        mappings (FOLL_WRITE breaks COW up front)."""
        i = self.aspace.vmas.lookup(eff.start)
        flags = self.aspace.vmas.row(i)[2] if i >= 0 else 0
        if flags & VM_LOCKED:
            self._locked = True                       # MAP_LOCKED: mlock_vma_folio on each fault
        write = (flags & (VM_WRITE | VM_SHARED)) == VM_WRITE
        vas = np.arange(eff.start, eff.end, self.page_size, dtype=np.uint64)
        self._access(vas, np.zeros(0, np.uint8), write)

    def _apply_mlock(self, eff, free_tables, source):
        self._locked = True                           # mlock_vma_pages_range (below)

    def _apply_file_mmap(self, eff, free_tables, source):
        """The file's ->mmap: the kernel's file policy for the newly mapped pages."""
        first = eff.arg
        last = first + ((eff.end - eff.start) >> self.kernel.geometry.page_shift) - 1
        rep = self.kernel.mmap_transition(self, self.kernel.pagecache.file_of(eff.file), first, last)
        if rep is not None and rep.status == "blocked":
            raise _Blocked(eff, rep)

    def _apply_copy(self, eff, free_tables, source):
        self.mm.fork_copy(source.mm, eff.start, eff.end, bool(eff.arg))   # copy_page_range

    def _apply_unmap_file(self, eff, free_tables, source):
        return self.mm.unmap_file(eff.file, eff.start, eff.end, bool(eff.arg))

    def _apply_exit_mm(self, eff, free_tables, source):
        self.mm.exit_mm()                             # exit_mmap

    def unmap_file(self, file, first=0, last=-1, even_cows=False) -> int:
        """unmap_mapping_pages of ``file`` pages [first, last] (last -1: to the end)
        in this process; private COW copies stay unless ``even_cows``. Returns
        pages unmapped (the kernel's file-policy transitions and truncate)."""
        limit = S_MAXBYTES // self.kernel.page_size
        first, last = min(as_int(first, "first"), limit), min(as_int(last, "last"), limit)
        if first < 0 or last < -1:
            raise ValueError(f"pages [{first}, {last}] must be >= 0 (last -1: to the end)")
        return self.apply([Effect("unmap_file", first, last, int(even_cows), file=file.id)])

    def mkclean(self, file):
        """folio_mkclean of ``file`` after writeback: its shared writable mappings
        write-protected, so the next write faults and dirties again."""
        self.apply([Effect("protect", s, e, flags & ~VM_WRITE)
                    for s, e, flags, _pgoff, vfid, _anon in self.aspace.vmas
                    if vfid == file.id and flags & VM_SHARED and flags & VM_WRITE])

    def _update_mlocked(self):
        if self._locked:
            self._locked = any(f & VM_LOCKED for _s, _e, f, *_ in self.aspace.vmas)
            self.kernel.update_mlocked()

    def _free_hole(self, start, end):
        """free_pgtables(floor, ceiling) after unmapping [start, end): free the empty
        tables lying wholly between the neighbouring VMAs. A mapping that replaced
        the range (MAP_FIXED, mremap to a fixed address) came after the unmap, so
        VMAs inside the range do not count."""
        floor, ceiling = 0, self.mm.pt.va_limit
        for s, e, *_ in self.aspace.vmas:
            if e <= start:
                floor = max(floor, e)
            elif s >= end:
                ceiling = min(ceiling, s)
                break
        self.mm.free_pgtables(floor, ceiling)

    # --------------------------------------------------------------- access
    def access(self, vas, write=False, insn=False) -> np.ndarray:
        """Touch every address in ``vas`` (an integer array-like) in order, as loads
        or, where ``write`` (a bool or a bool array like vas) is true, stores; where
        ``insn`` (likewise) is true and write is not, as instruction fetches (they
        need a VM_EXEC mapping, else SEGV_ACCERR, and use the instruction TLBs).

        One call into one nogil loop; returns an array of :class:`Outcome` codes
        (uint8) shaped like vas. Faults are counted in :meth:`status` (minflt). With
        a translation model (``Kernel(cpu=...)``) each access goes through the
        process's TLB first (:meth:`tlb_stats`)."""
        self._require_alive()
        arr = as_addresses(vas)
        flat = arr.reshape(-1)
        writes, write_all = _flags(write, arr.shape, "write")
        insns, insn_all = _flags(insn, arr.shape, "insn")
        return self._access(flat, writes, write_all, insns, insn_all).reshape(arr.shape)

    def access_steady(self, vas, write=False, insn=False, passes=2):
        """Run ``vas`` ``passes`` times in a row, as that many :meth:`access` calls
        would; returns the last pass's outcomes (like :meth:`access`) and the
        translation counters it added (the raw counter row, ppsize/_core/tlb.pxd's C_*
        layout; zeros without a translation model): the steady state of a process
        that repeats a stream.

        The same outcomes, state and counters as the calls, found faster: each pass
        runs in ``STEADY_PIECES`` pieces, and once the MMU state after a piece equals
        the state after the same piece of the pass before, with no access faulting
        from then to now (so the page tables, and all else an access reads, are the
        same too), the rest of the pass can only repeat the pass before, and is
        taken from it (``MMCore.access_repeat``); once all but the data-cache model
        (which only counts) is equal, the walks are taken from the pass before and
        only their references go through the data cache again. With
        ``Kernel(tlb_check=...)`` every pass runs access by access."""
        self._require_alive()
        passes = as_int(passes, "passes")
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        arr = as_addresses(vas)
        flat = arr.reshape(-1)
        writes, write_all = _flags(write, arr.shape, "write")
        insns, insn_all = _flags(insn, arr.shape, "insn")
        k = self.kernel
        if k._cpus is None or k.tlb_check:
            for _ in range(passes - 1):
                self._access(flat, writes, write_all, insns, insn_all)
            before = k.process_tlb_counters(self) if k._cpus is not None else np.zeros(NR_COUNTERS, np.int64)
            out = self._access(flat, writes, write_all, insns, insn_all)
            after = k.process_tlb_counters(self) if k._cpus is not None else before
            return out.reshape(arr.shape), after - before
        rec = None
        spares = k._repeat_spares        # passes of earlier calls: their buffers are warm
        for _ in range(passes):
            out = np.empty(flat.shape[0], dtype=np.uint8)
            k.switch_mm(self)
            need_anon, new = self.mm.access_repeat(flat, writes, write_all, out, insns, insn_all,
                                                   STEADY_PIECES, rec, spares.pop() if spares else None)
            if rec is not None:
                spares.append(rec)
            rec = new
            self._after_access(need_anon)
        counted = rec.counted
        del spares[1:]                   # two serve the next call's two passes
        spares.append(rec)
        return out.reshape(arr.shape), counted

    def _access(self, flat, writes, write_all, insns=_NO_INSNS, insn_all=False):
        out = np.empty(flat.shape[0], dtype=np.uint8)
        k = self.kernel
        k.switch_mm(self)
        check = k.tlb_check
        need_anon = self.mm.access(flat, writes, write_all, out, insns, insn_all, bool(check))
        self._after_access(need_anon, flat)
        return out

    def _after_access(self, need_anon, flat=None):
        """The end of an access batch: anon_vma_prepare for the VMAs that need it, the
        mlock upkeep, the policies' report, a checked batch's stale hits (``flat``:
        its addresses)."""
        k = self.kernel
        check = k.tlb_check
        vmas = self.aspace.vmas
        if need_anon is None:
            need_anon = [i for i, row in enumerate(vmas) if row[5] == -1]
        for vi in need_anon:                 # clear every mark first: none is a real id
            vmas.set_anon(vi, 0)
        for vi in need_anon:                 # anon_vma_prepare after the batch
            self.aspace.anon_prepare(vmas.row(vi)[0])
        if self._locked:                     # faults in VM_LOCKED VMAs: mlock_vma_folio
            self.kernel.update_mlocked()
        k.hooks_after_batch()
        if check == "raise" and flat is not None and self.mm.tlb_stale:
            i = self.mm.tlb_stale_first
            raise StaleTLBHit(f"pid {self.pid}: {self.mm.tlb_stale} stale TLB hit(s); first at index "
                              f"{i}, va {int(flat[i]):#x} (a missing TLB flush)")

    # ----------------------------------------------------------------- TLB
    def tlb_stats(self) -> dict:
        """This process's translation counters on its CPU's TLB (every MM it had:
        exec keeps the task's, as minflt): a dict keyed by level ("l1d", "l1i", "l2" or
        "l2d"/"l2i", "walk", each walk cache, "dcache", "flush", "check"), each a dict
        of counters ("accesses", "hits", "misses", "fills", "evictions"; "walks",
        "refs", "refs_by_level", ...). ValueError without ``Kernel(cpu=...)``."""
        k = self.kernel
        return k._require_cpus().stats(k.process_tlb_counters(self), self.cpu)

    @property
    def asid(self) -> int:
        """The ASID of this process's MM on its CPU (0: none, e.g. no translation model)."""
        return self._asid

    # ------------------------------------------------- fork / exec / exit
    def fork(self, name=None) -> "Process":
        """fork(2): a child with a copy of the address space; private anonymous
        memory shared copy-on-write (copy_page_range), page size inherited."""
        self._require_alive()
        child = Process(self.kernel, self.page_size, self.pgtable, name or self.name, cpu=self.cpu)
        self.aspace.dup_mmap(child.aspace)
        try:
            child.apply(child.aspace.drain_effects(), source=self)
        except MemoryError as e:
            # dup_mmap's copy_page_range -ENOMEM: the child is torn down, fork fails
            child.exit()
            raise OSError(errno.ENOMEM, f"fork: {e} ({os.strerror(errno.ENOMEM)})") from None
        return child

    def exec(self, page_size=None, pgtable=None):
        """execve(2): a fresh, empty address space; the page size may change.
        Fault counts are the task's and carry over."""
        self._require_alive()
        page, pgtable = _page_and_tables(self.kernel, page_size or self.page_size, pgtable or self.pgtable)
        geometry = self._pt_geometry(page, pgtable)      # refuse before tearing anything down
        # bprm_mm_init: the new MM (and PGD) before exec_mmap drops the old one
        aspace, mm = self._make_mm(page, geometry, pgtable)
        self.apply([Effect("exit_mm", 0, self.mm.pt.va_limit)])
        self.kernel.release_mm(self)
        self._minflt_exec += self.mm.minflt
        self.page_size, self.pgtable, self.pt_geometry = page, pgtable, geometry
        self.aspace, self.mm = aspace, mm
        self.kernel.switch_mm(self)
        self.kernel.note_page_size(self.page_size)
        self._forget_mlock()

    def exit(self):
        """exit(2): every page and table freed; the process's long-term pins are
        released (the pinning driver's file is closed)."""
        self._require_alive()
        self.apply([Effect("exit_mm", 0, self.mm.pt.va_limit)])
        self.kernel.release_mm(self)
        for pin in self._pins:
            self._release_pin(pin)
        self._pins = []
        self.kernel.remove_process(self)
        self._forget_mlock()

    def _forget_mlock(self):
        # the old image's VM_LOCKED VMAs are gone (exec, exit)
        if self._locked:
            self._locked = False
            self.kernel.update_mlocked()

    # ----------------------------------------------------------- accounting
    def page_table_bytes(self) -> int:
        """Every page-table page of this MM (NR_PAGETABLE), deposits included."""
        return self.mm.pt.table_bytes + self._deposited() * self.pt_geometry.table_sizes[-1]

    def _deposited(self) -> int:
        """PTE tables deposited for PMD-mapped anon THPs and huge zero PMDs
        (pgtable_trans_huge_deposit), counted in VmPTE as Linux does."""
        return self.mm.deposited_tables() if self.pt_geometry.levels >= 2 else 0

    def pmd_mapped_heads(self) -> set:
        """Heads of the anonymous folios mapped by PMD (AnonHugePages)."""
        return set(self.mm.block_heads())

    def status(self) -> dict:
        """/proc/PID/status fields (kB) and fault counts: VmSize, VmRSS, RssAnon,
        RssFile, RssShmem, VmPTE, minflt, majflt."""
        kb = self.kernel.page_size >> 10
        vm_size = sum(e - s for s, e, *_ in self.aspace.vmas)
        rss_anon = self.mm.rss_anon * kb
        rss_file = self.mm.rss_file * kb
        vmpte = self.mm.pt.vmpte_bytes + self._deposited() * self.pt_geometry.table_sizes[-1]
        return {"VmSize": vm_size >> 10, "VmRSS": rss_anon + rss_file, "RssAnon": rss_anon,
                "RssFile": rss_file, "RssShmem": 0, "VmPTE": vmpte >> 10,
                "minflt": self._minflt_exec + self.mm.minflt, "majflt": self.mm.majflt}

    def smaps(self) -> list:
        """Per VMA, as /proc/PID/smaps: start, end, perms, Size, KernelPageSize and
        MMUPageSize (what Linux reports: the kernel's base page), Rss, Anonymous,
        AnonHugePages, and the proposal's view: ProcessPageSize and
        ProcessMMUPageSize (the process page; its contiguous run in emulated mode)."""
        kb = self.kernel.page_size >> 10
        g = self.pt_geometry
        if self.pgtable == "native":
            mmu = self.page_size
        else:
            mmu = self.page_size if self.page_size < g.cont_pte_size else g.cont_pte_size
        out = []
        for s, e, flags, pgoff, fid, anon in self.aspace.vmas:
            rss, pmd, _zero, file, pss = self.mm.mapped_stats(s, e)
            out.append({
                "start": s, "end": e, "perms": vm_flags_str(flags),
                "Size": (e - s) >> 10, "KernelPageSize": self.kernel.page_size >> 10,
                "MMUPageSize": self.kernel.page_size >> 10,
                "ProcessPageSize": self.page_size >> 10, "ProcessMMUPageSize": mmu >> 10,
                "Rss": (rss + file) * kb, "Pss": pss >> 10, "Anonymous": rss * kb,
                "AnonHugePages": pmd * kb,
            })
        return out

    def range_stats(self, start, end) -> dict:
        """smaps figures of an arbitrary range [start, end), in kB: Rss, Anonymous,
        AnonHugePages, zero-page mappings (ZeroPages, not counted in Rss), file pages
        (FilePages) and Pss. The model merges VMAs that /proc shows apart (VMAs whose
        anon_vmas differ, or split by a since-reverted mprotect); asking for the ranges
        /proc printed gives the unmerged report (show_smap walks one VMA's range)."""
        start, end = as_ulong(start, "start"), as_ulong(end, "end")
        if end < start:
            raise ValueError(f"range_stats: end {end:#x} below start {start:#x}")
        kb = self.kernel.page_size >> 10
        anon, pmd, zero, file, pss = self.mm.mapped_stats(start, end)
        return {"Rss": (anon + file) * kb, "Anonymous": anon * kb, "AnonHugePages": pmd * kb,
                "ZeroPages": zero * kb, "FilePages": file * kb, "Pss": pss >> 10}

    def resident(self, start, end) -> np.ndarray:
        """A bool per kernel page of [start, end): mapped by a page-table entry (the
        zero page included), as pagemap's present bit."""
        kp = self.kernel.page_size
        tr = self.mm.pt.translate(np.arange(as_ulong(start, "start"), as_ulong(end, "end"),
                                            kp, dtype=np.uint64))
        return np.asarray(tr.status) == 0

    def install_special_mapping(self, name, addr, length) -> int:
        """A kernel-installed mapping at ``addr`` (_install_special_mapping,
        mm/mmap.c, as arch_setup_additional_pages does at exec): ``"[vdso]"`` maps the
        kernel's vDSO image read-only and executable, private, its pages shared by
        every process (Kernel.special_file; a fault maps them from there and counts
        them in RssFile, as special_mapping_fault + finish_fault do); ``"[vvar]"``,
        ``"[vvar_vclock]"`` (and arm64's ``"[vectors]"``, ``"[sigpage]"``) are
        VM_PFNMAP/VM_IO mappings of kernel data: a read-only VMA whose PTEs
        (vmf_insert_pfn) are never counted in RSS or smaps, so nothing is faulted.
        ``"[vsyscall]"`` is not a VMA (the gate area above TASK_SIZE): ValueError.
        Returns the address."""
        if name == "[vsyscall]":
            raise ValueError("[vsyscall] is the gate area above TASK_SIZE, not a VMA")
        if name == "[vdso]":
            f = self.kernel.special_file(name, length)
            return self.mmap(length, addr=addr, prot="rx", file=f, fixed=True)
        if name not in ("[vvar]", "[vvar_vclock]", "[vectors]", "[sigpage]", "[uprobes]"):
            raise ValueError(f"unknown special mapping {name!r}")
        prot = "rx" if name in ("[vectors]", "[sigpage]", "[uprobes]") else "r"
        return self.mmap(length, addr=addr, prot=prot, fixed=True, noreserve=True)

    def outcome_counts(self) -> dict:
        """How many accesses ended in each :class:`Outcome` so far."""
        return {o.name.lower(): n for o, n in zip(Outcome, self.mm.outcome_counts())}

    def check(self):
        """Page table and VMA invariants, and RSS equal to a recount."""
        self.mm.pt.check()
        if self._deposited() != self.mm.pt.ndep:
            raise AssertionError(f"pid {self.pid}: {self._deposited()} anon/zero PMD leaves, "
                                 f"{self.mm.pt.ndep} deposited PTE tables")
        self.aspace.check()
        anon = file = 0
        for s, e, *_ in self.aspace.vmas:
            a, _pmd, _zero, f, _pss = self.mm.mapped_stats(s, e)
            anon, file = anon + a, file + f
        if (anon, file) != (self.mm.rss_anon, self.mm.rss_file):
            raise AssertionError(f"pid {self.pid}: RssAnon/RssFile {self.mm.rss_anon}/{self.mm.rss_file} "
                                 f"pages, {anon}/{file} mapped")
        a, _pmd, _zero, f, _pss = self.mm.mapped_stats(0, self.mm.pt.va_limit)
        if (a, f) != (anon, file):
            raise AssertionError(f"pid {self.pid}: {a + f - anon - file} pages mapped outside any VMA")
        return True

    def __repr__(self):
        return (f"<Process {self.pid} {self.name}: {fmt_size(self.page_size)} pages, "
                f"{self.pgtable} tables, {len(self.aspace.vmas)} VMAs>")


def _flags(value, shape, what):
    """A bool for every access (an empty array and the bool) or a bool array like the
    addresses (as uint8, and False)."""
    if isinstance(value, (bool, np.bool_)):
        return np.zeros(0, np.uint8), bool(value)
    v = np.asarray(value)
    if v.dtype != np.bool_:
        raise TypeError(f"{what} must be a bool or a bool array, not dtype {v.dtype}")
    if v.shape != shape:
        raise ValueError(f"{what} has shape {v.shape}, addresses have shape {shape}")
    return np.ascontiguousarray(v.reshape(-1)).view(np.uint8), False


# Effect kind -> the Process method that applies it (Process.apply)
EFFECT_APPLY = {kind: getattr(Process, "_apply_" + kind) for kind in EFFECT_KINDS}
