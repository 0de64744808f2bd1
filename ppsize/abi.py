"""The emulated memory-map syscall ABI of a process with its own page size.

An :class:`AddressSpace` holds the VMAs of one process (a
:class:`ppsize._core.vma.VmaTable`) and implements mmap, munmap, mprotect, mremap
and madvise with Linux's semantics and errnos, for a process of page size P on a
kernel of page size K <= P (the per-process page size proposal): every address
must be aligned to P and every length is rounded up to P; ``getpagesize()`` is P.
vm_pgoff stays in kernel pages, as in the kernel.

Each kernel function mirrored is named in a comment. Sources read (torvalds/linux):
mm/mmap.c (do_mmap, __get_unmapped_area, generic_get_unmapped_area_topdown;
6.12-6.18), arch/x86/kernel/sys_x86_64.c (arch_get_unmapped_area_topdown), mm/vma.c
(unmapped_area_topdown, do_vmi_munmap, vms_gather_munmap_vmas, vma_modify, copy_vma;
6.12, with is_mergeable_anon_vma as rewritten in 6.16), mm/mprotect.c (do_mprotect_pkey, mprotect_fixup), mm/madvise.c
(madvise_walk_vmas, madvise_vma_behavior), mm/mremap.c (do_mremap, remap_move,
check_prep_vma, mremap_to, move_vma: the 6.17+ rewrite with multi-VMA moves and
the later early max_map_count check, map_count + 4 <= max_map_count) and
mm/huge_memory.c (__thp_get_unmapped_area, 6.8+ with the topdown fix; called only
for anonymous private mappings with no hint and a PMD-multiple length, 6.13+).

Two interfaces:

* raw: ``sys_mmap(addr, length, prot, flags, file=None, offset=0)``, ``sys_munmap``,
  ``sys_mprotect``, ``sys_mremap``, ``sys_madvise`` take Linux's integer arguments
  (PROT_*, MAP_*, MREMAP_*, MADV_* below, same values on x86-64 and arm64) and
  return what the syscall returns, or raise ``OSError(errno, message)``;
* friendly: ``mmap(length, addr=None, prot="rw", *, shared=False, fixed=False,
  noreplace=False, ...)``, ``munmap``, ``mprotect(addr, length, "r")``,
  ``mremap(..., flags="maymove|fixed")``, ``madvise(addr, length, "dontneed")`` take
  sizes as ints or strings ("64K") and names for prot/flags/advice (unknown names
  raise ValueError naming the value and the choices).

Page-table work is returned as data: every call appends :class:`Effect` records
to ``AddressSpace.effects`` (drain them with ``drain_effects()``), in the order the
kernel does the work, also when the call then fails part-way (mprotect and madvise
apply to the mapped parts before returning ENOMEM, as Linux):

* ``Effect("split", addr, addr, 0)``: a block (PMD) mapping may straddle the new VMA
  boundary at addr: split it (__split_vma -> vma_adjust_trans_huge ->
  split_huge_pmd_if_needed: emitted only where addr is not PMD-aligned and the PMD
  around it lies in the VMA being split; ``pmd_size`` is the page tables' PMD size);
* ``Effect("zap", start, end, 0)``: unmap and free the pages of [start, end)
  (munmap, MAP_FIXED replacing a mapping, mremap shrink/move source, MADV_DONTNEED);
* ``Effect("protect", start, end, vm_flags)``: re-protect the PTEs of [start, end)
  for the new vm_flags (mprotect: change_protection);
* ``Effect("move", start, end, new_start)``: move the PTEs of [start, end) to
  new_start (mremap: move_page_tables);
* ``Effect("populate", start, end, 0)``: fault the range in (MAP_POPULATE,
  MAP_LOCKED, growing a VM_LOCKED mapping, mlock).
* ``Effect("mlock", start, end, vm_flags)``: the VMAs of [start, end) changed
  VM_LOCKED (mlock_fixup -> mlock_vma_pages_range: PG_mlocked of the mapped folios
  set or cleared).
* ``Effect("file_mmap", start, end, pgoff, file=fid)``: file pages pgoff.. are newly
  mapped at [start, end): the file's ->mmap (call_mmap in __mmap_region, after the
  VMA exists; also for the pages a growing mremap maps, the model's choice), where
  the kernel's page-cache file policy runs;
* ``Effect("copy", start, end, cow)``: fork's copy_page_range of one VMA into the
  child (:meth:`AddressSpace.dup_mmap` puts these on the child's list); ``cow``: a
  private writable mapping, write-protected in both.

The kernel adds two kinds of its own (``ppsize.Process.apply`` applies them all, in
list order): ``Effect("unmap_file", first, last, even_cows, file=fid)``
(unmap_mapping_pages over file pages [first, last], last -1: to the end) and
``Effect("exit_mm", 0, limit)`` (exit_mmap: everything unmapped, tables freed).

Checked against Linux 6.18 on x86-64 (P = K = 4K) by tests/test_abi_live.py:
return values, errnos, /proc/self/maps VMAs and top-down placement all agree.

Simplifications: no rlimits (RLIMIT_AS/DATA/MEMLOCK) and no overcommit failures; no
ASLR (mmap_base is the non-randomised one, as with personality ADDR_NO_RANDOMIZE);
files are ids from ``open_file()`` with a write permission only, on a file system
without its own get_unmapped_area (no THP alignment of file mappings); shared
anonymous mappings get a fresh shmem-like file id each (they never merge), shmem
huge=never; no hugetlb, mseal, userfaultfd, pkeys, MAP_DROPPABLE, MAP_SYNC or
MREMAP_DONTUNMAP on VM_LOCKED ranges beyond clearing VM_LOCKED.
"""
from __future__ import annotations

import errno as _errno
import os
from typing import NamedTuple

from ._core.vma import VM_FLAGS, VmaTable
from ._validate import as_choice, as_page_size
from .geometry import Geometry, geometry as _geometry
from ._validate import as_ulong
from .units import fmt_size, parse_size

__all__ = [
    "AddressSpace", "Effect", "PROT", "MAP", "MREMAP", "MADV", "MLOCK_ONFAULT",
    "PROT_NONE", "PROT_READ", "PROT_WRITE", "PROT_EXEC", "PROT_SEM",
    "PROT_GROWSDOWN", "PROT_GROWSUP",
    "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE", "MAP_TYPE", "MAP_FIXED",
    "MAP_ANONYMOUS", "MAP_GROWSDOWN", "MAP_LOCKED", "MAP_NORESERVE", "MAP_POPULATE",
    "MAP_NONBLOCK", "MAP_STACK", "MAP_HUGETLB", "MAP_FIXED_NOREPLACE",
    "MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP",
    "MADV_NORMAL", "MADV_RANDOM", "MADV_SEQUENTIAL", "MADV_WILLNEED",
    "MADV_DONTNEED", "MADV_HUGEPAGE", "MADV_NOHUGEPAGE",
    "MAX_MAP_COUNT", "MMAP_MIN_ADDR", "prot_from", "vm_flags_str",
]

globals().update(VM_FLAGS)          # VM_READ, VM_WRITE, ... as module constants

# include/uapi/asm-generic/mman-common.h, mman.h (x86-64 and arm64 agree)
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM = 0x0, 0x1, 0x2, 0x4, 0x8
PROT_GROWSDOWN, PROT_GROWSUP = 0x01000000, 0x02000000
MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE = 0x01, 0x02, 0x03, 0x0f
MAP_FIXED, MAP_ANONYMOUS = 0x10, 0x20
MAP_GROWSDOWN, MAP_LOCKED, MAP_NORESERVE, MAP_POPULATE = 0x0100, 0x2000, 0x4000, 0x8000
MAP_NONBLOCK, MAP_STACK, MAP_HUGETLB, MAP_FIXED_NOREPLACE = 0x10000, 0x20000, 0x40000, 0x100000
MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED = 0, 1, 2, 3, 4
MADV_HUGEPAGE, MADV_NOHUGEPAGE = 14, 15
MLOCK_ONFAULT = 0x01            # mlock2(2) flag (include/uapi/asm-generic/mman-common.h)

MAX_MAP_COUNT = 65530           # DEFAULT_MAX_MAP_COUNT (include/linux/mm.h)
MMAP_MIN_ADDR = 65536           # CONFIG_DEFAULT_MMAP_MIN_ADDR on arm64 and x86
_M64 = (1 << 64) - 1
_SIZE_128M = 128 << 20

PROT = {"": 0, "none": 0, "r": PROT_READ, "w": PROT_WRITE, "x": PROT_EXEC,
        "rw": PROT_READ | PROT_WRITE, "rx": PROT_READ | PROT_EXEC,
        "wx": PROT_WRITE | PROT_EXEC, "rwx": PROT_READ | PROT_WRITE | PROT_EXEC}
MAP = {"shared": MAP_SHARED, "private": MAP_PRIVATE, "fixed": MAP_FIXED,
       "anonymous": MAP_ANONYMOUS, "growsdown": MAP_GROWSDOWN, "locked": MAP_LOCKED,
       "noreserve": MAP_NORESERVE, "populate": MAP_POPULATE, "stack": MAP_STACK,
       "fixed_noreplace": MAP_FIXED_NOREPLACE}
MREMAP = {"maymove": MREMAP_MAYMOVE, "fixed": MREMAP_FIXED, "dontunmap": MREMAP_DONTUNMAP}
MADV = {"normal": MADV_NORMAL, "random": MADV_RANDOM, "sequential": MADV_SEQUENTIAL,
        "willneed": MADV_WILLNEED, "dontneed": MADV_DONTNEED,
        "hugepage": MADV_HUGEPAGE, "nohugepage": MADV_NOHUGEPAGE}


EFFECT_KINDS = ("split", "zap", "protect", "move", "populate", "mlock", "file_mmap", "copy",
                "unmap_file", "exit_mm")


class Effect(NamedTuple):
    """Page-table work a syscall asks of the fault engine (see module docstring)."""
    kind: str       # one of EFFECT_KINDS
    start: int
    end: int
    arg: int = 0    # protect/mlock: new vm_flags; move: destination; file_mmap: pgoff; copy: cow
    file: int = -1  # file_mmap, unmap_file: the file id


def _err(code: int, what: str):
    return OSError(code, f"{what}: {os.strerror(code)}")


def prot_from(prot) -> int:
    """PROT_* bits from an int or a name in PROT ("", "none", "r", "rw", "rx",
    "rwx", "w", ...). "w" is PROT_WRITE alone: the VMA gets VM_WRITE only (shown
    "-w-p" in /proc/PID/maps), and reads are allowed by the hardware mapping
    (x86-64 and arm64 protection_map make write imply read)."""
    if isinstance(prot, bool):
        raise TypeError(f"prot must be a str or int, not bool ({prot!r})")
    if isinstance(prot, int):
        return prot
    if isinstance(prot, str):
        key = prot.strip().lower()
        if key in PROT:
            return PROT[key]
        raise ValueError(f"unknown prot {prot!r}; choose one of {', '.join(repr(k) for k in PROT)}")
    raise TypeError(f"prot must be a str or int, not {type(prot).__name__} ({prot!r})")


def _flag_names(value, table: dict, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a str or int, not bool ({value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = [v for v in value.replace(",", "|").split("|") if v.strip()]
    bits = 0
    for name in value:
        key = str(name).strip().lower()
        if key not in table:
            raise ValueError(f"unknown {what} {name!r}; choose from {', '.join(table)}")
        bits |= table[key]
    return bits


def vm_flags_str(flags: int) -> str:
    """/proc/PID/maps permission column for vm_flags (show_map_vma)."""
    return ("r" if flags & VM_READ else "-") + ("w" if flags & VM_WRITE else "-") + \
        ("x" if flags & VM_EXEC else "-") + ("s" if flags & VM_MAYSHARE else "p")


class _Remap:
    """struct vma_remap_struct (mm/mremap.c)."""
    __slots__ = ("addr", "old_len", "new_len", "flags", "new_addr", "delta", "type",
                 "populate_expand")

    def __init__(self, addr, old_len, new_len, flags, new_addr):
        self.addr, self.old_len, self.new_len = addr, old_len, new_len
        self.flags, self.new_addr = flags, new_addr
        self.delta, self.type, self.populate_expand = 0, None, False


class AddressSpace:
    """The VMAs and memory-map syscalls of one process.

    ``geometry``: the kernel's page-table geometry (name or Geometry): kernel page
    size K, TASK_SIZE (1 << va_bits on arm64; (1 << 47) - 4K on x86-64) and the THP
    (PMD) size used to align large anonymous mappings. ``page_size``: the process
    page size P (default K; must be a power of two >= K). ``pmd_size``: PMD_SIZE of
    the process's page tables (default the kernel geometry's; native tables: the
    process granule's), where a VMA split may cut a block mapping (Effect "split").
    ``table``: a VMA table class with VmaTable's Python API (tests pass a
    pure-Python reference)."""

    def __init__(self, geometry="arm64-4k-48", page_size=None, *,
                 max_map_count: int = MAX_MAP_COUNT, mmap_min_addr: int = MMAP_MIN_ADDR,
                 stack_rlimit="8M", mmap_base=None, thp: bool = True, thp_size=None,
                 privileged: bool = False, pmd_size=None, table=VmaTable):
        g = _geometry(geometry)
        if not isinstance(g, Geometry):
            raise TypeError(f"geometry must be a Geometry or name, not {geometry!r}")
        self.geometry = g
        self.kernel_page_size = K = g.page_size
        self.kshift = g.page_shift
        P = K if page_size is None else as_page_size(page_size, K)
        self.page_size = P
        if g.arch == "x86_64":
            # TASK_SIZE_MAX = (1 << __VIRTUAL_MASK_SHIFT) - PAGE_SIZE; mmap window 47 bits
            self.task_size = (1 << (g.va_bits - 1)) - K
            self.map_window = (1 << 47) - K
        else:
            self.task_size = 1 << g.va_bits
            self.map_window = min(self.task_size, 1 << 48)   # DEFAULT_MAP_WINDOW
        self.max_map_count = int(max_map_count)
        self.mmap_min_addr = self.page_align(int(mmap_min_addr))
        self.stack_guard_gap = 256 << self.kshift            # stack_guard_gap
        if mmap_base is None:
            # mmap_base(): stack rlimit plus guard gap, clamped (x86: arch/x86/mm/mmap.c,
            # gap_min = 128M; generic mm/util.c MIN_GAP = 128M + stack_guard_gap)
            gap = parse_size(stack_rlimit, "stack_rlimit") + self.stack_guard_gap
            gap_min = _SIZE_128M if g.arch == "x86_64" else _SIZE_128M + self.stack_guard_gap
            gap = min(max(gap, gap_min), self.map_window // 6 * 5)
            mmap_base = self.page_align(self.map_window - gap)
        self.mmap_base = int(mmap_base)
        if self.mmap_base % P:
            raise ValueError(f"mmap_base {self.mmap_base:#x} not aligned to {fmt_size(P)}")
        # TASK_UNMAPPED_BASE: bottom-up fallback start (x86 TASK_SIZE/3, arm64 /4)
        self.unmapped_base = self.page_align(self.map_window // (3 if g.arch == "x86_64" else 4))
        self.thp = bool(thp)
        self.thp_size = g.pmd_size if thp_size is None else parse_size(thp_size, "thp_size")
        self.pmd_size = g.pmd_size if pmd_size is None else parse_size(pmd_size, "pmd_size")
        self.privileged = bool(privileged)
        self.vmas = table(align=P, pgoff_shift=self.kshift)
        self.effects: list = []
        self._files: dict = {}
        self.thp_files: set = set()      # files whose file system THP-aligns mappings
        self._next_file = 1 << 20      # shmem files of shared anonymous mappings
        self._next_anon = 1
        self.split_left = False        # a failed vma_modify kept a split (see check)

    # ------------------------------------------------------------ helpers
    def page_align(self, x: int) -> int:
        """PAGE_ALIGN(x) for the process page size, wrapping as unsigned long."""
        P = self.page_size
        return (x + P - 1) & ~(P - 1) & _M64

    def getpagesize(self) -> int:
        """getpagesize(): the process page size P."""
        return self.page_size

    def drain_effects(self) -> list:
        """Return and clear the pending page-table effects."""
        out, self.effects = self.effects, []
        return out

    def open_file(self, writable: bool = True, fid=None, thp_aligned: bool = False) -> int:
        """A file id for file mappings (opened O_RDWR if ``writable`` else O_RDONLY):
        a new one, or ``fid`` (a page-cache file's id). ``thp_aligned``: the file
        system THP-aligns its mappings (get_unmapped_area = thp_get_unmapped_area, as
        ext4 and xfs with large folios)."""
        if fid is None:
            fid = len(self._files) + 1
        self._files[fid] = bool(writable)
        if thp_aligned:
            self.thp_files.add(fid)
        return fid

    def dup_mmap(self, child: "AddressSpace") -> None:
        """fork's dup_mmap, VMA side: every VMA but VM_DONTCOPY ones copied into
        ``child`` (an empty AddressSpace of the same geometry and page size), without
        VM_LOCKED_MASK (mlock is not inherited) and unmerged (neighbours that differed
        only in VM_LOCKED stay apart, as in Linux); the open files are shared. For
        each VMA with an anon_vma (vma_needs_copy) the child's effects get
        Effect("copy", start, end, cow)."""
        child._files = dict(self._files)
        child.thp_files = set(self.thp_files)
        # dup_mmap copies VMA by VMA and never merges: neighbours the parent kept
        # apart stay apart in the child (and in its children)
        child.split_left = self.split_left
        for s, e, flags, pgoff, fid, anon in self.vmas:
            if flags & VM_DONTCOPY:
                continue
            if flags & VM_LOCKED_MASK:
                child.split_left = True
            child.vmas.insert(s, e, flags & ~VM_LOCKED_MASK, pgoff, fid, anon, merge=False)
            if anon:
                cow = (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE
                child.effects.append(Effect("copy", s, e, int(cow)))
        child._next_anon = self._next_anon

    def mremap_growth(self, old_addr, old_len, new_len):
        """(file id, first, last): the file pages a mremap of the file VMA at
        ``old_addr`` would newly map (growth, or old_len 0 duplicating a shared
        mapping), or None (no file, no growth, or an error to come; shared
        anonymous memory is a shmem file, not one this AddressSpace opened)."""
        vma = self.vma_at(old_addr)
        if vma is None or vma[4] not in self._files or new_len <= old_len or (
                not old_len and not vma[2] & (VM_SHARED | VM_MAYSHARE)):     # EINVAL follows
            return None
        s, _e, _f, pgoff, fid = vma[:5]
        base = pgoff + ((old_addr - s) >> self.kshift)
        return fid, base + (old_len >> self.kshift), base + (new_len >> self.kshift) - 1

    def _split_huge_pmd_if_needed(self, x, vs, ve):
        """split_huge_pmd_if_needed (mm/huge_memory.c) for a new VMA boundary at x in
        the VMA [vs, ve): a block can straddle x only if x is not PMD-aligned and the
        PMD around it lies inside the VMA."""
        lo = x & ~(self.pmd_size - 1)
        if x != lo and vs <= lo and lo + self.pmd_size <= ve:
            self.effects.append(Effect("split", x, x))

    def _vma(self, i):
        return self.vmas.row(i)

    def _first_in(self, start, end):
        """find_vma_intersection: index of the first VMA meeting [start, end) or -1."""
        i = self.vmas.find_vma(start)
        if i >= 0 and self.vmas.row(i)[0] < end:
            return i
        return -1

    def _start_gap(self, flags, start):
        # vm_start_gap: a VM_GROWSDOWN VMA keeps stack_guard_gap free below it
        if flags & VM_GROWSDOWN:
            return max(0, start - self.stack_guard_gap)
        return start

    def fault_mask(self, write: bool) -> int:
        """vm_flags of which a VMA needs one for a fault to be allowed (the
        access_error / do_page_fault check): a write needs VM_WRITE; a read is
        allowed by VM_READ or VM_WRITE ("write implies read") and, on x86-64 and
        arm64 without EPAN, VM_EXEC (modelled: x86-64 yes, arm64 with EPAN no)."""
        if write:
            return VM_WRITE
        if self.geometry.arch == "x86_64":
            return VM_READ | VM_WRITE | VM_EXEC
        return VM_READ | VM_WRITE

    def vma_at(self, addr):
        """(start, end, flags, pgoff, file, anon) of the VMA containing addr, or None."""
        i = self.vmas.lookup(addr)
        return None if i < 0 else self.vmas.row(i)

    def maps(self, lo=0, hi=None):
        """[(start, end, perms)] like /proc/PID/maps, for VMAs meeting [lo, hi)."""
        return [(s, e, vm_flags_str(f)) for s, e, f, *_ in self.vmas.rows(lo, hi)]

    def check(self):
        """VmaTable.check() (with its merge test unless a failed split_vma left a
        split behind, see _modify) plus the address-space limits."""
        self.vmas.check(merged=not self.split_left)
        rows = self.vmas.rows()
        if rows and rows[-1][1] > self.task_size:
            raise AssertionError(f"VMA above TASK_SIZE {self.task_size:#x}: {rows[-1]}")
        if len(rows) > self.max_map_count + 1:
            raise AssertionError(f"{len(rows)} VMAs exceed max_map_count {self.max_map_count} + 1")
        return True

    # ------------------------------------------------------------ get_unmapped_area
    def _mmap_end(self, addr):
        # arch_get_mmap_end: the full TASK_SIZE only for hints above the window
        return self.task_size if addr > self.map_window else self.map_window

    def _unmapped_area_topdown(self, length, low, high):
        """unmapped_area_topdown (mm/vma.c) with align_mask 0 and no start_gap:
        P-granular VMAs make every gap P-aligned, so alignment to P is implied."""
        low = max(low, self.mmap_min_addr)
        while True:
            gap = self.vmas.highest_gap(low, high, length)
            if gap is None:
                return None
            gap_start, gap_end, nxt = gap
            addr = gap_end - length
            if nxt >= 0:
                ns, _, nf, *_ = self.vmas.row(nxt)
                if nf & VM_GROWSDOWN and self._start_gap(nf, ns) < gap_end:
                    high = self._start_gap(nf, ns)
                    continue
            return addr

    def _unmapped_area(self, length, low, high):
        """unmapped_area (bottom-up), the fallback when topdown fails."""
        low = max(low, self.mmap_min_addr)
        while True:
            gap = self.vmas.lowest_gap(low, high, length)
            if gap is None:
                return None
            gap_start, gap_end, nxt = gap
            if nxt >= 0:
                ns, ne, nf, *_ = self.vmas.row(nxt)
                if nf & VM_GROWSDOWN and self._start_gap(nf, ns) < gap_start + length - 1:
                    low = ne
                    continue
            return gap_start

    def _hint_ok(self, addr, length, mmap_end):
        # generic_get_unmapped_area_topdown checks mmap_min_addr; x86's
        # mmap_address_hint_valid does not (security_mmap_addr decides later)
        if mmap_end - length < addr:
            return False
        if addr < self.mmap_min_addr and self.geometry.arch != "x86_64":
            return False
        i = self.vmas.find_vma(addr)
        if i < 0:
            return True
        s, _, f, *_ = self.vmas.row(i)
        return addr + length <= self._start_gap(f, s)

    def _arch_get_unmapped_area_topdown(self, addr, length, flags):
        """generic_get_unmapped_area_topdown (arm64) / x86's
        arch_get_unmapped_area_topdown: the same steps for our purposes."""
        mmap_end = self._mmap_end(addr)
        if self.geometry.arch == "x86_64":
            if length > self.task_size:
                raise _err(_errno.ENOMEM, f"get_unmapped_area: length {length:#x} > TASK_SIZE")
        elif length > mmap_end - self.mmap_min_addr:
            raise _err(_errno.ENOMEM, f"get_unmapped_area: length {length:#x} too big")
        if flags & MAP_FIXED:
            return addr
        if addr:
            addr = self.page_align(addr)
            if self._hint_ok(addr, length, mmap_end):
                return addr
        high = self.mmap_base
        if addr > self.map_window:
            high += self.task_size - self.map_window
        res = self._unmapped_area_topdown(length, self.page_size, high)
        if res is None:
            # "A failed mmap() very likely causes application failure, so fall back
            # to the bottom-up function here."
            res = self._unmapped_area(length, self.unmapped_base, mmap_end)
        if res is None:
            raise _err(_errno.ENOMEM, f"get_unmapped_area: no free range of {fmt_size(length)}")
        return res

    def _thp_get_unmapped_area(self, addr, length, flags, off=0):
        """thp_get_unmapped_area_vmflags -> __thp_get_unmapped_area (mm/huge_memory.c):
        when at least one PMD of [off, off + length) lies past the first PMD-aligned
        offset, search length + PMD, then align the address to off modulo PMD."""
        size = self.thp_size
        off_end, off_align = off + length, -(-off // size) * size
        if off_end > off_align and off_end - off_align >= size and length + size <= _M64:
            try:
                ret = self._arch_get_unmapped_area_topdown(addr, length + size, flags)
            except OSError:
                ret = None       # the failure may be due to the padding: retry without
            if ret is not None:
                if ret == addr:
                    return addr
                off_sub = (off - ret) & (size - 1)
                if not off_sub:                  # MMF_TOPDOWN
                    return ret + size
                return ret + off_sub
        return self._arch_get_unmapped_area_topdown(addr, length, flags)

    def _get_unmapped_area(self, file, addr, length, flags, off=0):
        """__get_unmapped_area (mm/mmap.c)."""
        if length > self.task_size:
            raise _err(_errno.ENOMEM, f"get_unmapped_area: length {length:#x} > TASK_SIZE")
        if file is not None and file in self.thp_files:
            # file->f_op->get_unmapped_area = thp_get_unmapped_area (ext4, xfs, ...)
            addr = self._thp_get_unmapped_area(addr, length, flags, off)
        elif (self.thp and file is None and not (flags & MAP_SHARED) and not addr
                and length % self.thp_size == 0):
            # "Ensures that larger anonymous mappings are THP aligned."
            addr = self._thp_get_unmapped_area(addr, length, flags)
        else:
            addr = self._arch_get_unmapped_area_topdown(addr, length, flags)
        if addr > self.task_size - length:
            raise _err(_errno.ENOMEM, f"get_unmapped_area: {addr:#x} + {length:#x} beyond TASK_SIZE")
        if addr % self.page_size:
            raise _err(_errno.EINVAL, f"address {addr:#x} not aligned to the page size "
                                      f"{fmt_size(self.page_size)}")
        if addr < self.mmap_min_addr and not self.privileged:
            # security_mmap_addr -> cap_mmap_addr: below mmap_min_addr needs CAP_SYS_RAWIO
            raise _err(_errno.EPERM, f"address {addr:#x} below mmap_min_addr {self.mmap_min_addr:#x}")
        return addr

    # ------------------------------------------------------------ munmap core
    def _do_munmap(self, start, end):
        """do_vmi_align_munmap: remove [start, end) (aligned); ENOMEM if splitting a
        VMA in two would exceed max_map_count. Returns the removed pieces."""
        i = self._first_in(start, end)
        if i < 0:
            return []
        s, e = self.vmas.row(i)[:2]
        if s < start and end < e and len(self.vmas) >= self.max_map_count:
            raise _err(_errno.ENOMEM, "munmap: splitting would exceed max_map_count")
        # vms_gather_munmap_vmas: __split_vma at start and at end
        if s < start:
            self._split_huge_pmd_if_needed(start, s, e)
        j = self.vmas.lookup(end - 1)
        if j >= 0 and self.vmas.row(j)[1] > end:
            self._split_huge_pmd_if_needed(end, *self.vmas.row(j)[:2])
        removed = self.vmas.remove_range(start, end)
        for r in removed:
            self.effects.append(Effect("zap", r[0], r[1]))
        return removed

    def _do_vmi_munmap(self, start, length, what="munmap"):
        """do_vmi_munmap: the syscall-level checks, then do_vmi_align_munmap."""
        if start % self.page_size or start > self.task_size or length > self.task_size - start:
            raise _err(_errno.EINVAL, f"{what}({start:#x}, {length:#x}): misaligned or out of range")
        end = start + self.page_align(length)
        if end == start:
            raise _err(_errno.EINVAL, f"{what}({start:#x}, {length:#x}): zero length")
        self._do_munmap(start, end)
        return 0

    # ------------------------------------------------------------ mmap
    def sys_mmap(self, addr, length, prot, flags, file=None, offset=0):
        """mmap(2) with Linux's integer arguments (do_mmap); returns the address."""
        addr &= _M64
        length &= _M64
        P = self.page_size
        if offset % P or offset < 0:
            raise _err(_errno.EINVAL, f"mmap: offset {offset:#x} not aligned to {fmt_size(P)}")
        if flags & MAP_ANONYMOUS:
            file = None
        else:
            if file is None or file not in self._files:
                raise _err(_errno.EBADF, f"mmap: bad file {file!r}")
        if flags & MAP_HUGETLB:
            raise ValueError("MAP_HUGETLB is not modelled")
        pgoff = offset >> self.kshift
        if not length:
            raise _err(_errno.EINVAL, "mmap: zero length")
        if flags & MAP_FIXED_NOREPLACE:
            flags |= MAP_FIXED
        if not flags & MAP_FIXED:
            # round_hint_to_min
            addr &= ~(P - 1)
            if addr and addr < self.mmap_min_addr:
                addr = self.mmap_min_addr
        length = self.page_align(length)
        if not length:
            raise _err(_errno.ENOMEM, "mmap: length overflows when rounded up")
        if pgoff + (length >> self.kshift) > _M64:
            raise _err(_errno.EOVERFLOW, "mmap: offset overflow")
        if len(self.vmas) > self.max_map_count:
            raise _err(_errno.ENOMEM, f"mmap: {len(self.vmas)} VMAs > max_map_count")
        # calc_vm_prot_bits | calc_vm_flag_bits | VM_MAY*
        vm_flags = (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
        if flags & MAP_GROWSDOWN:
            vm_flags |= VM_GROWSDOWN
        if flags & MAP_LOCKED:
            vm_flags |= VM_LOCKED
        if flags & MAP_STACK and self.thp:
            vm_flags |= VM_NOHUGEPAGE
        addr = self._get_unmapped_area(file, addr, length, flags, pgoff << self.kshift)
        if flags & MAP_FIXED_NOREPLACE and self._first_in(addr, addr + length) >= 0:
            raise _err(_errno.EEXIST, f"mmap: [{addr:#x}, {addr + length:#x}) already mapped "
                                      "(MAP_FIXED_NOREPLACE)")
        mtype = flags & MAP_TYPE
        if file is not None:
            writable = self._files[file]
            # file_mmap_ok: a regular file's MAX_LFS_FILESIZE
            if pgoff > ((1 << 63) - 1 - length) >> self.kshift:
                raise _err(_errno.EOVERFLOW, f"mmap: offset {offset:#x} + length beyond the file size limit")
            if mtype in (MAP_SHARED, MAP_SHARED_VALIDATE):
                if prot & PROT_WRITE and not writable:
                    raise _err(_errno.EACCES, "mmap: PROT_WRITE shared mapping of a read-only file")
                vm_flags |= VM_SHARED | VM_MAYSHARE
                if not writable:
                    vm_flags &= ~(VM_MAYWRITE | VM_SHARED)
            elif mtype != MAP_PRIVATE:
                raise _err(_errno.EINVAL, f"mmap: bad map type {mtype:#x}")
            if vm_flags & VM_GROWSDOWN:
                raise _err(_errno.EINVAL, "mmap: MAP_GROWSDOWN on a file")
        elif mtype == MAP_SHARED:
            if vm_flags & VM_GROWSDOWN:
                raise _err(_errno.EINVAL, "mmap: shared MAP_GROWSDOWN")
            pgoff = 0
            vm_flags |= VM_SHARED | VM_MAYSHARE
        elif mtype == MAP_PRIVATE:
            pgoff = addr >> self.kshift          # "Set pgoff according to addr for anon_vma"
        else:
            raise _err(_errno.EINVAL, f"mmap: bad map type {mtype:#x}")
        if flags & MAP_NORESERVE:
            vm_flags |= VM_NORESERVE
        self._mmap_region(file, addr, length, vm_flags, pgoff)
        if vm_flags & VM_LOCKED or (flags & (MAP_POPULATE | MAP_NONBLOCK)) == MAP_POPULATE:
            self.effects.append(Effect("populate", addr, addr + length))
        return addr

    def _mmap_region(self, file, addr, length, vm_flags, pgoff):
        """__mmap_region: unmap what is there (MAP_FIXED), account, merge or add."""
        end = addr + length
        self._do_munmap(addr, end)
        # accountable_mapping
        if (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE:
            vm_flags |= VM_ACCOUNT
        fid = -1 if file is None else file
        if file is None and vm_flags & VM_SHARED:
            fid = self._next_file          # shmem_zero_setup: a new shmem file
            self._next_file += 1
        self.vmas.insert(addr, end, vm_flags, pgoff, fid, 0)
        if file is not None:               # call_mmap: the file's ->mmap
            self.effects.append(Effect("file_mmap", addr, end, pgoff, file=file))

    def mmap(self, length, addr=None, prot="rw", *, shared=False, fixed=False,
             noreplace=False, file=None, offset=0, populate=False, locked=False,
             noreserve=False, stack=False, growsdown=False, flags=0):
        """mmap(2): ``length`` rounded up to the page size; ``addr`` a hint (or the
        address with ``fixed``/``noreplace``, which must then be page aligned);
        anonymous unless ``file`` (an ``open_file()`` id) is given. Returns the
        address; raises OSError with Linux's errno."""
        length = as_ulong(length, "length")
        addr = 0 if addr is None else as_ulong(addr, "addr")
        f = _flag_names(flags, MAP, "mmap flag")
        if shared:
            f |= MAP_SHARED
        if not f & MAP_TYPE:
            f |= MAP_PRIVATE
        if file is None:
            f |= MAP_ANONYMOUS
        f |= (MAP_FIXED if fixed else 0) | (MAP_FIXED_NOREPLACE if noreplace else 0)
        f |= (MAP_POPULATE if populate else 0) | (MAP_LOCKED if locked else 0)
        f |= (MAP_NORESERVE if noreserve else 0) | (MAP_STACK if stack else 0)
        f |= MAP_GROWSDOWN if growsdown else 0
        return self.sys_mmap(addr, length, prot_from(prot), f, file, as_ulong(offset, "offset"))

    # ------------------------------------------------------------ munmap
    def sys_munmap(self, addr, length):
        """munmap(2) (__vm_munmap -> do_vmi_munmap): 0; unmapping holes is fine."""
        return self._do_vmi_munmap(addr & _M64, length & _M64)

    def munmap(self, addr, length):
        return self.sys_munmap(as_ulong(addr, "addr"), as_ulong(length, "length"))

    # ------------------------------------------------------------ mprotect
    def sys_mprotect(self, start, length, prot):
        """mprotect(2) (do_mprotect_pkey): ENOMEM for unmapped parts, after
        changing the VMAs below the first hole, as Linux."""
        start &= _M64
        length &= _M64
        grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
        prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
        if grows == PROT_GROWSDOWN | PROT_GROWSUP:
            raise _err(_errno.EINVAL, "mprotect: both PROT_GROWSDOWN and PROT_GROWSUP")
        if start % self.page_size:
            raise _err(_errno.EINVAL, f"mprotect: {start:#x} not aligned to {fmt_size(self.page_size)}")
        if not length:
            return 0
        length = self.page_align(length)
        end = start + length
        if not length or end > _M64:
            raise _err(_errno.ENOMEM, "mprotect: range wraps")
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):     # arch_validate_prot
            raise _err(_errno.EINVAL, f"mprotect: bad prot {prot:#x}")
        i = self._first_in(start, end)
        if i < 0:
            raise _err(_errno.ENOMEM, f"mprotect: [{start:#x}, {end:#x}) not mapped")
        vs, ve, vf, *_ = self.vmas.row(i)
        if grows & PROT_GROWSDOWN:
            if vs >= end:
                raise _err(_errno.ENOMEM, "mprotect: not mapped")
            start = vs
            if not vf & VM_GROWSDOWN:
                raise _err(_errno.EINVAL, "mprotect: PROT_GROWSDOWN on a VMA that does not grow down")
        else:
            if vs > start:
                raise _err(_errno.ENOMEM, f"mprotect: {start:#x} not mapped")
            if grows & PROT_GROWSUP:
                raise _err(_errno.EINVAL, "mprotect: PROT_GROWSUP (no VM_GROWSUP here)")
        nstart, tmp = start, vs
        error = None
        while i < len(self.vmas):
            vs, ve, vf, *_ = self.vmas.row(i)
            if vs >= end:
                break
            if vs != tmp:
                error = _err(_errno.ENOMEM, f"mprotect: hole at {tmp:#x}")
                break
            newflags = (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) | (vf & ~VM_ACCESS_FLAGS)
            # "newflags >> 4 shift VM_MAY% in place of VM_%"
            if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:
                error = _err(_errno.EACCES, f"mprotect: {vm_flags_str(newflags)} not allowed "
                                            f"on [{vs:#x}, {ve:#x})")
                break
            tmp = min(ve, end)
            try:
                i = self._mprotect_fixup(i, nstart, tmp, newflags)
            except OSError as e:
                error = e
                break
            tmp = self.vmas.row(i)[1]
            nstart = tmp
            i += 1
        if error is None and tmp < end:
            error = _err(_errno.ENOMEM, f"mprotect: [{tmp:#x}, {end:#x}) not mapped")
        if error is not None:
            raise error
        return 0

    def _mprotect_fixup(self, i, start, end, newflags):
        """mprotect_fixup: VM_ACCOUNT rules, vma_modify_flags, change_protection."""
        _, _, oldflags, _, fid, anon = self.vmas.row(i)
        if newflags == oldflags:
            return i
        if newflags & VM_WRITE:
            if not oldflags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE):
                newflags |= VM_ACCOUNT
        elif oldflags & VM_ACCOUNT and fid == -1 and not anon:
            newflags &= ~VM_ACCOUNT      # unfaulted anonymous: drop the commit
        i = self._modify(i, start, end, newflags)
        self.vmas.set_flags(i, newflags)
        self.effects.append(Effect("protect", start, end, newflags))
        return i

    def _modify(self, i, start, end, newflags):
        """vma_modify_flags; when its second split_vma fails (ENOMEM at
        max_map_count) Linux keeps the first split, leaving two touching VMAs it
        would otherwise have merged: check() then stops asserting merges. Each new
        boundary inside the VMA (split or merge) gets vma_adjust_trans_huge."""
        vs, ve = self.vmas.row(i)[:2]
        n = len(self.vmas)
        try:
            return self.vmas.modify(i, start, end, newflags, self.max_map_count)
        except OSError:
            if len(self.vmas) != n:
                self.split_left = True
            raise
        finally:
            lookup = self.vmas.lookup
            for x in (start, end):
                if vs < x < ve and lookup(x) != lookup(x - 1):
                    self._split_huge_pmd_if_needed(x, vs, ve)

    def mprotect(self, addr, length, prot):
        return self.sys_mprotect(as_ulong(addr, "addr"), as_ulong(length, "length"),
                                 prot_from(prot))

    # ------------------------------------------------------------ madvise
    def sys_madvise(self, start, length, advice):
        """madvise(2) (do_madvise -> madvise_walk_vmas): unmapped parts give ENOMEM
        after the advice was applied to the mapped parts."""
        start &= _M64
        length &= _M64
        if advice not in MADV.values():
            raise _err(_errno.EINVAL, f"madvise: advice {advice} not supported")
        if start % self.page_size:
            raise _err(_errno.EINVAL, f"madvise: {start:#x} not aligned to {fmt_size(self.page_size)}")
        alen = self.page_align(length)
        if length and not alen:
            raise _err(_errno.EINVAL, "madvise: length wraps")
        end = start + alen
        if end > _M64:
            raise _err(_errno.EINVAL, "madvise: range wraps")
        if end == start:
            return 0
        unmapped = False
        i = self.vmas.find_vma(start)
        while True:
            if i < 0:
                raise _err(_errno.ENOMEM, f"madvise: [{start:#x}, {end:#x}) not mapped")
            vs, ve = self.vmas.row(i)[:2]
            if start < vs:
                unmapped = True
                start = vs
                if start >= end:
                    break
            tmp = min(ve, end)
            i = self._madvise_vma(i, start, tmp, advice)
            start = max(tmp, self.vmas.row(i)[1])
            if start >= end:
                break
            i = self.vmas.find_vma(self.vmas.row(i)[1])
        if unmapped:
            raise _err(_errno.ENOMEM, "madvise: range contains unmapped parts")
        return 0

    def _madvise_vma(self, i, start, end, advice):
        """madvise_vma_behavior for one VMA; returns the index of *prev."""
        _, _, flags, *_ = self.vmas.row(i)
        if advice == MADV_DONTNEED:
            # madvise_dontneed_free_valid_vma
            if flags & (VM_LOCKED | VM_PFNMAP):
                raise _err(_errno.EINVAL, "madvise: MADV_DONTNEED on a locked or PFN mapping")
            self.effects.append(Effect("zap", start, end))
            return i
        if advice == MADV_WILLNEED:
            return i
        new = flags
        if advice == MADV_NORMAL:
            new &= ~(VM_RAND_READ | VM_SEQ_READ)
        elif advice == MADV_SEQUENTIAL:
            new = (new & ~VM_RAND_READ) | VM_SEQ_READ
        elif advice == MADV_RANDOM:
            new = (new & ~VM_SEQ_READ) | VM_RAND_READ
        elif advice == MADV_HUGEPAGE:                      # hugepage_madvise
            new = (new & ~VM_NOHUGEPAGE) | VM_HUGEPAGE
        elif advice == MADV_NOHUGEPAGE:
            new = (new & ~VM_HUGEPAGE) | VM_NOHUGEPAGE
        if new == flags:                                   # madvise_update_vma
            return i
        i = self._modify(i, start, end, new)
        self.vmas.set_flags(i, new)
        return i

    def madvise(self, addr, length, advice):
        if not isinstance(advice, str):
            raise TypeError(f"advice must be a str, not {type(advice).__name__} ({advice!r})")
        key = advice.strip().lower()
        as_choice(key, MADV, "madvise advice")
        return self.sys_madvise(as_ulong(addr, "addr"), as_ulong(length, "length"), MADV[key])

    # ------------------------------------------------------------ mlock
    def sys_mlock(self, start, length, flags=0):
        """mlock2(2) (do_mlock): VM_LOCKED (VM_LOCKONFAULT too with MLOCK_ONFAULT)
        on every VMA of the range, then __mm_populate unless on-fault. start need not
        be aligned (the range is widened to the process page, as Linux does with
        PAGE_MASK); ENOMEM for unmapped parts, after locking the VMAs below the first
        hole. No RLIMIT_MEMLOCK (CAP_IPC_LOCK assumed)."""
        if flags & ~MLOCK_ONFAULT:
            raise _err(_errno.EINVAL, f"mlock2: bad flags {flags:#x}")
        vm_flags = VM_LOCKED | (VM_LOCKONFAULT if flags & MLOCK_ONFAULT else 0)
        start, length = self._mlock_range(start, length)
        self._apply_vma_lock_flags(start, length, vm_flags)
        if not flags & MLOCK_ONFAULT:
            # __mm_populate: per VMA, skipping VM_IO | VM_PFNMAP
            for s, e, vf, *_ in self.vmas.rows(start, start + length):
                if not vf & (VM_IO | VM_PFNMAP):
                    self.effects.append(Effect("populate", max(s, start), min(e, start + length)))
        return 0

    def sys_munlock(self, start, length):
        """munlock(2): VM_LOCKED and VM_LOCKONFAULT cleared over the range."""
        start, length = self._mlock_range(start, length)
        self._apply_vma_lock_flags(start, length, 0)
        return 0

    def _mlock_range(self, start, length):
        # do_mlock / munlock: len = PAGE_ALIGN(len + offset_in_page(start)); start &= PAGE_MASK
        P = self.page_size
        start &= _M64
        length &= _M64
        off = start & (P - 1)
        alen = self.page_align(length + off)
        if length + off and not alen:
            raise _err(_errno.ENOMEM, "mlock: length wraps")
        return start - off, alen

    def _apply_vma_lock_flags(self, start, length, flags):
        """apply_vma_lock_flags (mm/mlock.c, 6.x): mlock_fixup on each VMA of the
        range; a hole (or nothing at start) is ENOMEM."""
        end = start + length
        if end > _M64:
            raise _err(_errno.EINVAL, "mlock: range wraps")
        if end == start:
            return
        i = self.vmas.lookup(start)                  # vma_iter_load
        if i < 0:
            raise _err(_errno.ENOMEM, f"mlock: {start:#x} not mapped")
        nstart = start
        tmp = self.vmas.row(i)[0]
        while i < len(self.vmas):
            vs, ve, vf, *_ = self.vmas.row(i)
            if vs >= end:
                break
            if vs != tmp:
                raise _err(_errno.ENOMEM, f"mlock: hole at {tmp:#x}")
            newflags = (vf & ~VM_LOCKED_MASK) | flags
            tmp = min(ve, end)
            i = self._mlock_fixup(i, nstart, tmp, newflags)
            tmp = self.vmas.row(i)[1]                # vma_iter_end
            nstart = tmp
            i += 1
        if tmp < end:
            raise _err(_errno.ENOMEM, f"mlock: [{tmp:#x}, {end:#x}) not mapped")

    def _mlock_fixup(self, i, start, end, newflags):
        """mlock_fixup: special VMAs are left alone; else vma_modify_flags and
        mlock_vma_pages_range (an Effect). Returns the index of *prev."""
        oldflags = self.vmas.row(i)[2]
        if newflags == oldflags or oldflags & VM_SPECIAL:
            return i
        i = self._modify(i, start, end, newflags)
        self.vmas.set_flags(i, newflags)
        if (newflags & VM_LOCKED) and (oldflags & VM_LOCKED):
            return i                                 # VM_LOCKONFAULT changed only
        self.effects.append(Effect("mlock", start, end, newflags))
        return i

    def mlock(self, addr, length, onfault=False):
        """mlock(2) (mlock2 with MLOCK_ONFAULT if ``onfault``)."""
        return self.sys_mlock(as_ulong(addr, "addr"), as_ulong(length, "length"),
                              MLOCK_ONFAULT if onfault else 0)

    def munlock(self, addr, length):
        return self.sys_munlock(as_ulong(addr, "addr"), as_ulong(length, "length"))

    # ------------------------------------------------------------ mremap
    def sys_mremap(self, addr, old_len, new_len, flags=0, new_addr=0):
        """mremap(2) (do_mremap, Linux 6.17+: a MREMAP_FIXED move of unchanged
        length may span several VMAs, keeping the gaps between them)."""
        addr &= _M64
        new_addr &= _M64
        r = _Remap(addr, self.page_align(old_len & _M64), self.page_align(new_len & _M64),
                   flags, new_addr)
        self._check_mremap_params(r)
        # check_map_count_against_split_early: room for 2 unmaps and a move
        if len(self.vmas) + 4 > self.max_map_count:
            raise _err(_errno.ENOMEM, "mremap: too close to max_map_count")
        if flags & MREMAP_FIXED and r.old_len == r.new_len:
            return self._remap_move(r)
        self._check_prep_vma(r)
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP):
            res = self._mremap_to(r)
        else:
            res = self._mremap_at(r)
        if r.populate_expand:
            self.effects.append(Effect("populate", r.new_addr + r.old_len, r.new_addr + r.new_len))
        return res

    def _check_mremap_params(self, r):
        """check_mremap_params."""
        P = self.page_size
        if r.flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP):
            raise _err(_errno.EINVAL, f"mremap: unknown flags {r.flags:#x}")
        if r.addr % P:
            raise _err(_errno.EINVAL, f"mremap: {r.addr:#x} not aligned to {fmt_size(P)}")
        if not r.new_len:
            raise _err(_errno.EINVAL, "mremap: zero new length")
        if r.new_len > self.task_size:
            raise _err(_errno.EINVAL, "mremap: new length > TASK_SIZE")
        if not r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP):
            return
        if r.new_addr > self.task_size - r.new_len:
            raise _err(_errno.EINVAL, "mremap: new address beyond TASK_SIZE")
        if r.new_addr % P:
            raise _err(_errno.EINVAL, f"mremap: new address {r.new_addr:#x} not aligned to {fmt_size(P)}")
        if not r.flags & MREMAP_MAYMOVE:
            raise _err(_errno.EINVAL, "mremap: MREMAP_FIXED/DONTUNMAP without MREMAP_MAYMOVE")
        if r.flags & MREMAP_DONTUNMAP and r.old_len != r.new_len:
            raise _err(_errno.EINVAL, "mremap: MREMAP_DONTUNMAP cannot resize")
        if r.addr + r.old_len > r.new_addr and r.new_addr + r.new_len > r.addr:
            raise _err(_errno.EINVAL, "mremap: old and new ranges overlap")

    def _check_prep_vma(self, r):
        """check_prep_vma."""
        i = self.vmas.lookup(r.addr)
        if i < 0:
            raise _err(_errno.EFAULT, f"mremap: {r.addr:#x} not mapped")
        vs, ve, vf, vpg, *_ = self.vmas.row(i)
        r.delta = abs(r.old_len - r.new_len)
        r.type = "none" if not r.delta else ("shrink" if r.old_len > r.new_len else "expand")
        implies = r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)
        if not implies:
            r.new_addr = r.addr
        if r.type != "expand" and not implies:
            return
        old_len, new_len = r.old_len, r.new_len
        if not old_len and not vf & (VM_SHARED | VM_MAYSHARE):
            raise _err(_errno.EINVAL, "mremap: old_len 0 duplicates only shared mappings")
        if r.flags & MREMAP_DONTUNMAP and vf & (VM_DONTEXPAND | VM_PFNMAP):
            raise _err(_errno.EINVAL, "mremap: MREMAP_DONTUNMAP on a special mapping")
        if r.type == "shrink":
            old_len = new_len
        if old_len > ve - r.addr:
            raise _err(_errno.EFAULT, f"mremap: [{r.addr:#x}, +{old_len:#x}) crosses the end of its VMA")
        if new_len == old_len:
            return
        if vf & VM_LOCKED:
            r.populate_expand = True
        pgoff = vpg + ((r.addr - vs) >> self.kshift)
        if pgoff + (new_len >> self.kshift) > _M64:
            raise _err(_errno.EINVAL, "mremap: pgoff overflow")
        if vf & (VM_DONTEXPAND | VM_PFNMAP):
            raise _err(_errno.EFAULT, "mremap: cannot expand a special mapping")

    def _mremap_at(self, r):
        """mremap_at: no-op, shrink in place, or expand (in place, else move)."""
        if r.type == "none":
            return r.addr
        if r.type == "shrink":
            self._do_vmi_munmap(r.addr + r.new_len, r.delta, "mremap")
            return r.addr
        # expand_vma
        i = self.vmas.lookup(r.addr)
        vs, ve, vf, vpg, fid, anon = self.vmas.row(i)
        if ve - r.addr == r.old_len and self._vma_expandable(vs, ve, r.delta):
            # expand_vma_in_place -> vma_merge_extend
            self.vmas.insert(ve, ve + r.delta, vf, vpg + ((ve - vs) >> self.kshift), fid, anon)
            self._file_growth(fid, ve, ve + r.delta, vpg + ((ve - vs) >> self.kshift))
            return r.addr
        if not r.flags & MREMAP_MAYMOVE:
            raise _err(_errno.ENOMEM, "mremap: cannot grow in place without MREMAP_MAYMOVE")
        self._vrm_set_new_addr(r)
        return self._move_vma(r)

    def _vma_expandable(self, vs, ve, delta):
        end = ve + delta
        if end > _M64 or self._first_in(ve, end) >= 0:
            return False
        try:
            self._get_unmapped_area(None, vs, end - vs, MAP_FIXED)
        except OSError:
            return False
        return True

    def _vrm_set_new_addr(self, r):
        """vrm_set_new_addr: get_unmapped_area for the destination."""
        i = self.vmas.lookup(r.addr)
        vs, ve, vf, vpg, fid, anon = self.vmas.row(i)
        hint = r.new_addr if r.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) else 0
        map_flags = (MAP_FIXED if r.flags & MREMAP_FIXED else 0) | (MAP_SHARED if vf & VM_MAYSHARE else 0)
        pgoff = vpg + ((r.addr - vs) >> self.kshift)      # the file offset of the moved range
        r.new_addr = self._get_unmapped_area(None if fid == -1 else fid, hint, r.new_len, map_flags,
                                             pgoff << self.kshift)

    def _mremap_to(self, r):
        """mremap_to: clear the target (MREMAP_FIXED), shrink, then move."""
        if r.flags & MREMAP_FIXED:
            self._do_vmi_munmap(r.new_addr, r.new_len, "mremap")
            if self.vmas.lookup(r.addr) < 0:
                raise _err(_errno.EFAULT, f"mremap: {r.addr:#x} not mapped")
        if r.type == "shrink":
            self._do_vmi_munmap(r.addr + r.new_len, r.delta, "mremap")
            if self.vmas.lookup(r.addr) < 0:
                raise _err(_errno.EFAULT, f"mremap: {r.addr:#x} not mapped")
            r.old_len = r.new_len
        self._vrm_set_new_addr(r)
        return self._move_vma(r)

    def _move_vma(self, r):
        """move_vma: copy_vma (merging at the destination), move the page tables,
        then unmap the source (or, MREMAP_DONTUNMAP, keep it empty and unlocked)."""
        if len(self.vmas) + 2 > self.max_map_count:      # check_map_count_against_split
            raise _err(_errno.ENOMEM, "mremap: too close to max_map_count")
        i = self.vmas.lookup(r.addr)
        vs, ve, vf, vpg, fid, anon = self.vmas.row(i)
        pgoff = vpg + ((r.addr - vs) >> self.kshift)
        if fid == -1 and not anon:
            pgoff = r.new_addr >> self.kshift      # copy_vma: unfaulted anon follows its address
        self.vmas.insert(r.new_addr, r.new_addr + r.new_len, vf, pgoff, fid, anon)
        if r.old_len:
            self.effects.append(Effect("move", r.addr, r.addr + r.old_len, r.new_addr))
        if r.flags & MREMAP_DONTUNMAP:
            # dontunmap_complete: clear VM_LOCKED*, drop the anon_vma if it all moved
            j = self.vmas.lookup(r.addr)
            s2, e2, f2, *_ = self.vmas.row(j)
            self.vmas.set_flags(j, f2 & ~VM_LOCKED_MASK)
            if (s2, e2) == (r.addr, r.addr + r.old_len) and (vs, ve) == (s2, e2):
                self.vmas.set_anon(j, 0)
        elif r.old_len:
            try:                                   # unmap_source_vma: best effort
                self._do_munmap(r.addr, r.addr + r.old_len)
            except OSError:
                pass
        if r.new_len > r.old_len:
            self._file_growth(fid, r.new_addr + r.old_len, r.new_addr + r.new_len,
                              pgoff + (r.old_len >> self.kshift))
        return r.new_addr

    def _file_growth(self, fid, start, end, pgoff):
        """The file pages a growing mremap maps: the file policy runs for them as for
        an mmap (the proposal must give them folios >= the process page too; Linux's
        mremap calls no ->mmap)."""
        if fid in self._files:
            self.effects.append(Effect("file_mmap", start, end, pgoff, file=fid))

    def _remap_move(self, r):
        """remap_move: MREMAP_FIXED, old_len == new_len, over every VMA in range."""
        start, end = r.addr, r.addr + r.old_len
        target = r.new_addr
        res = None
        last_end = 0
        cursor = start
        while True:
            i = self.vmas.find_vma(cursor)
            if i < 0:
                break
            vs, ve = self.vmas.row(i)[:2]
            if vs >= end:
                break
            if res is None and start < vs:
                raise _err(_errno.EFAULT, f"mremap: {start:#x} not mapped")
            a = max(vs, start)
            length = min(end, ve) - a
            offset = vs - last_end if res is not None else 0
            last_end = ve
            sub = _Remap(a, length, length, r.flags, target + offset)
            self._check_prep_vma(sub)
            got = self._mremap_to(sub)
            if res is None:
                res = got
            target = got + length
            cursor = ve
        if res is None:
            raise _err(_errno.EFAULT, f"mremap: {start:#x} not mapped")
        return res

    def mremap(self, old_addr, old_len, new_len, flags=0, new_addr=None):
        """mremap(2); ``flags`` an int or names ("maymove", "fixed", "dontunmap",
        joined with "|" or given as a list)."""
        return self.sys_mremap(as_ulong(old_addr, "old_addr"), as_ulong(old_len, "old_len"),
                               as_ulong(new_len, "new_len"), _flag_names(flags, MREMAP, "mremap flag"),
                               0 if new_addr is None else as_ulong(new_addr, "new_addr"))

    # ------------------------------------------------------------ faults
    def anon_prepare(self, addr):
        """anon_vma_prepare for the VMA containing ``addr`` (first write fault):
        reuse a neighbour's anon_vma when find_mergeable_anon_vma allows, else a new
        one. Returns the anon_vma id."""
        i = self.vmas.lookup(addr)
        if i < 0:
            raise ValueError(f"no VMA contains {addr:#x}")
        s, e, f, pg, fid, anon = self.vmas.row(i)
        if anon:
            return anon

        def compatible(a, b):        # anon_vma_compatible(a, b), a below b
            return (a[1] == b[0] and a[4] == b[4] and not ((a[2] ^ b[2]) & ~VM_ACCESS_FLAGS)
                    and b[3] == a[3] + ((b[0] - a[0]) >> self.kshift))
        me = (s, e, f, pg, fid, anon)
        for j, pair in ((i + 1, lambda o: (me, o)), (i - 1, lambda o: (o, me))):
            if 0 <= j < len(self.vmas):
                other = self.vmas.row(j)
                if other[5] and compatible(*pair(other)):
                    self.vmas.set_anon(i, other[5])
                    return other[5]
        anon = self._next_anon
        self._next_anon += 1
        self.vmas.set_anon(i, anon)
        return anon

    def __repr__(self):
        return (f"AddressSpace({self.geometry.name}, page_size={fmt_size(self.page_size)}, "
                f"{len(self.vmas)} VMAs)")
