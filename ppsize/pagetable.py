"""``ppsize.PageTable``: a multi-level page table for any geometry.

Validation lives here; the walks live in ``ppsize._core.pagetable`` (Cython).
"""
from __future__ import annotations

import enum

import numpy as np

from ._core.pagetable import PageTableCore
from ._lock import new_lock, serialized
from ._validate import as_addresses, as_int_or_size as _int
from .units import fmt_size

__all__ = ["PageTable", "Translation", "TranslateStatus", "parse_prot", "prot_str",
           "as_addresses", "PA_LIMIT"]

PA_LIMIT = 1 << 52          # arm64 52-bit PA (LPA/LPA2); x86-64 MAXPHYADDR 52
PROT_R, PROT_W, PROT_X = 1, 2, 4


class TranslateStatus(enum.IntEnum):
    """Per-address outcome of :meth:`PageTable.translate`."""
    OK = 0
    NOT_MAPPED = 1
    BAD_ADDRESS = 2     # outside the geometry's user VA range


class Translation:
    """Result of :meth:`PageTable.translate`: arrays shaped like the input.

    ``pa`` (uint64 physical address, 0 where not OK), ``status`` (uint8
    :class:`TranslateStatus`), ``level`` (int8 level of the leaf, root = 0, or where
    the walk stopped; -1 for bad addresses), ``size`` (uint64 bytes the TLB would
    cache: page, contiguous run or block; 0 where not OK) and ``prot`` (uint8 bits:
    1 read, 2 write, 4 exec). Unpacks as ``pa, status, level, size, prot``."""

    __slots__ = ("pa", "status", "level", "unit_shift", "prot")
    _fields = ("pa", "status", "level", "size", "prot")

    def __init__(self, pa, status, level, unit_shift, prot):
        self.pa, self.status, self.level, self.unit_shift, self.prot = pa, status, level, unit_shift, prot

    @classmethod
    def empty(cls, shape):
        return cls(np.empty(shape, np.uint64), np.empty(shape, np.uint8), np.empty(shape, np.int8),
                   np.empty(shape, np.uint8), np.empty(shape, np.uint8))

    def _arrays(self):
        return (self.pa, self.status, self.level, self.unit_shift, self.prot)

    @property
    def size(self) -> np.ndarray:
        # stored as log2 (one byte per address); 0 where the walk found nothing
        return np.where(self.status == TranslateStatus.OK,
                        np.left_shift(np.uint64(1), self.unit_shift.astype(np.uint64)), np.uint64(0))

    def __iter__(self):
        return iter((self.pa, self.status, self.level, self.size, self.prot))

    def __len__(self):
        return 5

    def __repr__(self):
        return "Translation(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self)) + ")"


def parse_prot(prot) -> int:
    """'r', 'rw', 'rx', 'rwx', ... or '' / 'none' -> PROT bits (1 r, 2 w, 4 x)."""
    if not isinstance(prot, str):
        raise TypeError(f"prot must be a string such as 'rw', not {type(prot).__name__} ({prot!r})")
    if prot in ("", "none", "-", "---"):
        return 0
    bits = 0
    for ch in prot.replace("-", ""):
        bit = {"r": PROT_R, "w": PROT_W, "x": PROT_X}.get(ch)
        if bit is None or bits & bit:
            raise ValueError(f"unknown prot {prot!r}: use letters from 'rwx' (e.g. 'r', 'rw', 'rx') or 'none'")
        bits |= bit
    return bits


def prot_str(bits: int) -> str:
    return "".join(c if bits & b else "-" for c, b in (("r", PROT_R), ("w", PROT_W), ("x", PROT_X)))


@serialized
class PageTable(PageTableCore):
    """A page table for one :class:`~ppsize.Geometry` (a name or a Geometry).

    >>> pt = PageTable("arm64-4k-48")
    >>> pt.map(0x400000, 0x80000000, "64K")
    >>> pt.translate([0x400010]).pa[0] == 0x80000010
    True
    """

    def __init__(self, geometry="arm64-4k-48"):
        self._lock = new_lock()      # standalone; a Process's table gets its Kernel's lock

    # ---------------------------------------------------------- validation
    def _range(self, va, size, pa=None):
        g = self.geometry
        va = _int(va, "va")
        size = _int(size, "size")
        page = g.page_size
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if va < 0 or va % page:
            raise ValueError(f"va {va:#x} is not aligned to the {fmt_size(page)} page size"
                             if va >= 0 else f"va must not be negative, got {va}")
        if size % page:
            raise ValueError(f"size {size:#x} is not a multiple of the {fmt_size(page)} page size")
        if va + size > g.va_size:
            raise ValueError(f"range {va:#x}+{size:#x} is outside the {g.va_bits}-bit VA of {g.name}")
        if pa is not None:
            pa = _int(pa, "pa")
            if pa < 0 or pa % page:
                raise ValueError(f"pa {pa:#x} is not aligned to the {fmt_size(page)} page size"
                                 if pa >= 0 else f"pa must not be negative, got {pa}")
            if pa + size > PA_LIMIT:
                raise ValueError(f"pa range {pa:#x}+{size:#x} is beyond the 52-bit physical address space")
        return va, size, pa

    # ------------------------------------------------------------- updates
    def map(self, va, pa, size, prot="rw", contiguous=True, block=False):
        """Map [va, va+size) to [pa, pa+size) as set_ptes() of one folio does.

        ``contiguous``: set the contiguous bit on every run whose VA, end and PA are
        aligned to the run (contpte_set_ptes). ``block``: use block descriptors
        where VA, PA and the remaining size allow (PMD, and PUD with 4K pages).
        Mapping over an existing mapping raises ValueError."""
        va, size, pa = self._range(va, size, pa)
        bits = parse_prot(prot)
        if self._range_mapped(va, size):
            raise ValueError(f"range {va:#x}+{size:#x} overlaps an existing mapping")
        self._map(va, pa, size, bits, bool(contiguous), bool(block))

    def map_many(self, vas, pas, size, prot="rw", contiguous=True):
        """Map len(vas) chunks of ``size`` bytes, chunk i at vas[i] -> pas[i], in one
        call (each chunk is one folio for the contiguous bit)."""
        g = self.geometry
        vas, pas = as_addresses(vas, "vas").ravel(), as_addresses(pas, "pas").ravel()
        if vas.shape != pas.shape:
            raise ValueError(f"vas and pas differ in length ({vas.size} vs {pas.size})")
        size = _int(size, "size")
        if vas.size == 0:
            return
        self._range(int(vas.min()), size, int(pas.min()))
        self._range(int(vas.max()), size, int(pas.max()))
        page = np.uint64(g.page_size)
        bad = np.flatnonzero((vas % page) | (pas % page))
        if bad.size:
            raise ValueError(f"vas[{bad[0]}] = {int(vas[bad[0]]):#x} or pas[{bad[0]}] = "
                             f"{int(pas[bad[0]]):#x} is not aligned to {fmt_size(g.page_size)}")
        order = np.argsort(vas, kind="stable")
        sv = vas[order]
        clash = np.flatnonzero(np.diff(sv) < np.uint64(size))
        if clash.size:
            raise ValueError(f"chunks at {int(sv[clash[0]]):#x} and {int(sv[clash[0] + 1]):#x} overlap")
        i = self._first_mapped(vas, size)
        if i >= 0:
            raise ValueError(f"range {int(vas[i]):#x}+{size:#x} overlaps an existing mapping")
        self._map_many(vas, pas, size, parse_prot(prot), bool(contiguous), False)

    def unmap(self, va, size):
        """Clear [va, va+size). Partially covered blocks are split and partially
        covered contiguous runs unfolded first; tables left empty are freed."""
        va, size, _ = self._range(va, size)
        self._unmap(va, size)

    def protect(self, va, size, prot):
        """Change the protection of every mapped page in [va, va+size)
        (change_protection): partial blocks split, partial runs unfolded."""
        va, size, _ = self._range(va, size)
        self._protect(va, size, parse_prot(prot))

    # --------------------------------------------------------------- reads
    def translate(self, vas, out: Translation = None) -> Translation:
        """Walk every address of ``vas`` (any integer array-like) in one nogil loop.

        Returns a :class:`Translation` of arrays shaped like ``vas``; ``out`` (a
        Translation of the same shape from an earlier call) is filled in place
        instead, to avoid allocating per batch. Addresses outside the geometry are
        ``TranslateStatus.BAD_ADDRESS``, not errors."""
        arr = as_addresses(vas)
        if out is None:
            out = Translation.empty(arr.shape)
        elif not isinstance(out, Translation):
            raise TypeError(f"out must be a Translation, not {type(out).__name__}")
        else:
            for name, want in zip(Translation.__slots__, Translation.empty(0)._arrays()):
                a = getattr(out, name)
                if not isinstance(a, np.ndarray) or a.shape != arr.shape or a.dtype != want.dtype:
                    raise ValueError(f"out.{name} must be a {want.dtype} array of shape {arr.shape}, "
                                     f"got {getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
        flat = [a.reshape(-1) for a in (out.pa, out.status, out.level, out.unit_shift, out.prot)]
        if any(not np.shares_memory(f, a) for f, a in
               zip(flat, (out.pa, out.status, out.level, out.unit_shift, out.prot)) if f.size):
            raise ValueError("out arrays must be contiguous")
        self._translate(arr.reshape(-1), *flat)
        return out

    def is_mapped(self, va, size) -> bool:
        """Is any page of [va, va+size) mapped?"""
        va, size, _ = self._range(va, size)
        return bool(self._range_mapped(va, size))

    # ---------------------------------------------------------- accounting
    @property
    def tables(self) -> dict:
        """Live tables per level name (root first), e.g. {'PGD': 1, 'PUD': 1, ...}."""
        return dict(zip(self.geometry.level_names, self.tables_per_level()))

    @property
    def vmpte_bytes(self) -> int:
        """mm_pgtables_bytes(): PTE, PMD and PUD tables (not PGD/P4D), as VmPTE reports."""
        g = self.geometry
        counts = self.tables_per_level()
        return sum(counts[l] * g.table_sizes[l] for l in g.vmpte_levels())

    @property
    def table_bytes(self) -> int:
        """Every table including the root (PGD_SIZE, which may be below a page)."""
        g = self.geometry
        return sum(n * s for n, s in zip(self.tables_per_level(), g.table_sizes))

    def tlb_entries(self) -> int:
        """TLB entries needed to cover every mapping once: one per block or page,
        one per contiguous run."""
        g = self.geometry
        leaves, conts = self.leaf_counts()
        total = 0
        for l, (n, c) in enumerate(zip(leaves, conts)):
            run = g.cont_ptes if l == g.levels - 1 else g.cont_pmds
            total += n - c + c // run
        return total

    def __repr__(self):
        t = ", ".join(f"{k}={v}" for k, v in self.tables.items())
        return f"<PageTable {self.geometry.name}: {t}; VmPTE {self.vmpte_bytes >> 10} kB>"

