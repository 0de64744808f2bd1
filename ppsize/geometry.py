"""Page-table geometry of every arm64 granule / VA size Linux supports, and x86-64.

Every value is computed from the architecture's formulas, not tabulated:
arm64 from arch/arm64/include/asm/pgtable-hwdef.h (ARM64_HW_PGTABLE_LEVELS,
ARM64_HW_PGTABLE_LEVEL_SHIFT, CONT_PTE_SHIFT/CONT_PMD_SHIFT) and arch/arm64/Kconfig
(ARCH_FORCE_MAX_ORDER); x86-64 from arch/x86/include/asm/pgtable_64_types.h.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ._validate import as_choice
from .units import fmt_size

__all__ = ["Geometry", "GEOMETRIES", "geometry", "DESC_SIZE", "FAULT_AROUND_BYTES"]

DESC_SIZE = 8                  # bytes per descriptor, every level, both architectures
FAULT_AROUND_BYTES = 65536     # mm/memory.c: fault_around_bytes default
XA_CHUNK_SHIFT = 6             # include/linux/xarray.h
MAX_XAS_ORDER = XA_CHUNK_SHIFT * 2 - 1   # include/linux/pagemap.h


@dataclass(frozen=True)
class Geometry:
    """One page-table geometry. Levels are listed root first.

    Attributes mirror the kernel's names: ``page_size`` (PAGE_SIZE), ``va_bits``
    (VA_BITS), ``levels`` (CONFIG_PGTABLE_LEVELS), ``entries`` (PTRS_PER_* per level,
    root first; the root has PTRS_PER_PGD), ``shifts`` (the VA shift of each level),
    ``level_names`` (PGD/P4D/PUD/PMD/PTE as Linux names the tables that exist),
    ``block_sizes`` (level name -> block size for the levels Linux maps with block
    (section/huge) descriptors), ``cont_ptes``/``cont_pmds`` (CONT_PTES/CONT_PMDS,
    1 without a contiguous bit), ``max_page_order`` (MAX_PAGE_ORDER),
    ``pmd_order`` (HPAGE_PMD_ORDER), ``fault_around_pages`` and
    ``max_pagecache_order`` (MAX_PAGECACHE_ORDER).
    """
    name: str
    arch: str
    page_shift: int
    va_bits: int
    levels: int
    shifts: tuple
    entries: tuple
    level_names: tuple
    block_sizes: dict = field(hash=False, compare=False)
    cont_ptes: int = 1
    cont_pmds: int = 1
    max_page_order: int = 10

    # ----------------------------------------------------------------- derived
    @property
    def page_size(self) -> int:
        return 1 << self.page_shift

    @property
    def granule(self) -> str:
        return fmt_size(self.page_size)

    @property
    def pgd_entries(self) -> int:
        return self.entries[0]

    @property
    def pgdir_shift(self) -> int:
        return self.shifts[0]

    @property
    def spans(self) -> tuple:
        """Bytes of VA one entry maps at each level, root first."""
        return tuple(1 << s for s in self.shifts)

    @property
    def table_sizes(self) -> tuple:
        """Bytes of one table at each level, root first (the root may be smaller
        than a page: arm64 pgd_alloc uses a kmem_cache when PGD_SIZE < PAGE_SIZE)."""
        return tuple(n * DESC_SIZE for n in self.entries)

    @property
    def pmd_shift(self) -> int:
        return self.shifts[-2]

    @property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @property
    def pud_size(self) -> int:
        """PUD_SIZE; with a folded PUD (fewer than 4 levels) it is PGDIR_SIZE or,
        with 2 levels, PMD_SIZE as in asm-generic/pgtable-nopud.h."""
        return 1 << self.shifts[-3] if self.levels >= 3 else self.pmd_size

    @property
    def pmd_order(self) -> int:
        return self.pmd_shift - self.page_shift

    @property
    def pageblock_order(self) -> int:
        return min(self.pmd_order, self.max_page_order)

    @property
    def cont_pte_size(self) -> int:
        return self.cont_ptes * self.page_size

    @property
    def cont_pmd_size(self) -> int:
        return self.cont_pmds * self.pmd_size

    @property
    def fault_around_pages(self) -> int:
        # do_fault_around: fault_around_pages = fault_around_bytes >> PAGE_SHIFT,
        # at least 1 (a 64K kernel has fault-around effectively off).
        return max(1, FAULT_AROUND_BYTES >> self.page_shift)

    @property
    def max_pagecache_order(self) -> int:
        # MAX_PAGECACHE_ORDER = min(MAX_XAS_ORDER, PREFERRED_MAX_PAGECACHE_ORDER = HPAGE_PMD_ORDER)
        return min(MAX_XAS_ORDER, self.pmd_order)

    @property
    def va_size(self) -> int:
        return 1 << self.va_bits

    @property
    def block_levels(self) -> tuple:
        """Indices (root = 0) of the levels that may hold block descriptors."""
        return tuple(self.level_of(n) for n in self.block_sizes)

    def level_of(self, name: str) -> int:
        """Index (root = 0) of the level Linux calls ``name``; PUD/PMD resolve to
        the root when folded (a 2-level PGD is the PMD, a 3-level PGD the PUD)."""
        name = name.upper()
        if name == "PTE":
            return self.levels - 1
        if name == "PMD":
            return self.levels - 2
        if name == "PUD":
            return max(0, self.levels - 3)
        if name == "P4D":
            return max(0, self.levels - 4)
        if name == "PGD":
            return 0
        raise ValueError(f"unknown page-table level name {name!r}")

    def vmpte_levels(self) -> tuple:
        """Levels whose tables count in VmPTE (mm_pgtables_bytes): PTE, PMD and PUD
        tables, never the root (PGD) nor P4D tables."""
        return tuple(i for i in range(1, self.levels) if self.levels - 1 - i <= 2)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "arch": self.arch,
            "page_size": self.page_size,
            "va_bits": self.va_bits,
            "levels": self.levels,
            "level_names": list(self.level_names),
            "entries": list(self.entries),
            "pgd_entries": self.pgd_entries,
            "spans": list(self.spans),
            "block_sizes": dict(self.block_sizes),
            "cont_ptes": self.cont_ptes,
            "cont_pmds": self.cont_pmds,
            "cont_pte_size": self.cont_pte_size,
            "cont_pmd_size": self.cont_pmd_size,
            "max_page_order": self.max_page_order,
            "pmd_order": self.pmd_order,
            "pageblock_order": self.pageblock_order,
            "fault_around_pages": self.fault_around_pages,
            "max_pagecache_order": self.max_pagecache_order,
        }


def _level_names(levels: int) -> tuple:
    # The tables that exist with CONFIG_PGTABLE_LEVELS = levels; folded levels
    # (asm-generic/pgtable-nop4d.h, -nopud.h, -nopmd.h) have no table of their own.
    return ("PGD",) + ("P4D", "PUD", "PMD", "PTE")[5 - levels:]


def _arm64(page_shift: int, va_bits: int) -> Geometry:
    bits = page_shift - 3                       # log2(PTRS_PER_PTE)
    levels = (va_bits - 4) // bits              # ARM64_HW_PGTABLE_LEVELS(va_bits)

    def level_shift(n):                         # ARM64_HW_PGTABLE_LEVEL_SHIFT(n)
        return bits * (4 - n) + 3

    shifts = tuple(level_shift(4 - levels + i) for i in range(levels))
    pgd_entries = 1 << (va_bits - shifts[0])    # PTRS_PER_PGD
    entries = (pgd_entries,) + (1 << bits,) * (levels - 1)
    names = _level_names(levels)
    # Block (section) descriptors Linux uses for user memory: PMD always; PUD only
    # with 4K pages (pud_sect_supported()). Folded levels map to the table above.
    blocks = {"PMD": 1 << shifts[-2]}
    if page_shift == 12 and levels >= 3:
        blocks["PUD"] = 1 << shifts[-3]
    # CONT_PTE_SHIFT / CONT_PMD_SHIFT (pgtable-hwdef.h): 4K 16/16, 16K 128/32, 64K 32/32
    cont_ptes = {12: 16, 14: 128, 16: 32}[page_shift]
    cont_pmds = {12: 16, 14: 32, 16: 32}[page_shift]
    max_order = {12: 10, 14: 11, 16: 13}[page_shift]   # ARCH_FORCE_MAX_ORDER
    granule = {12: "4k", 14: "16k", 16: "64k"}[page_shift]
    return Geometry(
        name=f"arm64-{granule}-{va_bits}", arch="arm64", page_shift=page_shift,
        va_bits=va_bits, levels=levels, shifts=shifts, entries=entries,
        level_names=names, block_sizes=blocks, cont_ptes=cont_ptes,
        cont_pmds=cont_pmds, max_page_order=max_order)


def _x86_64(levels: int) -> Geometry:
    # 512 entries at every level; PGDIR_SHIFT 39 (4-level, P4D folded) or 48 (LA57).
    shifts = tuple(12 + 9 * (levels - 1 - i) for i in range(levels))
    return Geometry(
        name=f"x86_64-{levels}l", arch="x86_64", page_shift=12,
        va_bits=shifts[0] + 9, levels=levels, shifts=shifts,
        entries=(512,) * levels, level_names=_level_names(levels),
        block_sizes={"PMD": 1 << 21, "PUD": 1 << 30},
        cont_ptes=1, cont_pmds=1, max_page_order=10)


_BUILDERS = {
    "arm64-4k-39": lambda: _arm64(12, 39),
    "arm64-4k-48": lambda: _arm64(12, 48),
    "arm64-4k-52": lambda: _arm64(12, 52),
    "arm64-16k-36": lambda: _arm64(14, 36),
    "arm64-16k-47": lambda: _arm64(14, 47),
    "arm64-16k-48": lambda: _arm64(14, 48),
    "arm64-16k-52": lambda: _arm64(14, 52),
    "arm64-64k-42": lambda: _arm64(16, 42),
    "arm64-64k-48": lambda: _arm64(16, 48),
    "arm64-64k-52": lambda: _arm64(16, 52),
    "x86_64-4l": lambda: _x86_64(4),
    "x86_64-5l": lambda: _x86_64(5),
}

GEOMETRIES = list(_BUILDERS)
_CACHE: dict = {}


def geometry(name) -> Geometry:
    """Return the :class:`Geometry` called ``name`` (one of ``GEOMETRIES``).

    A Geometry passes through unchanged."""
    if isinstance(name, Geometry):
        return name
    if not isinstance(name, str):
        raise TypeError(f"geometry name must be a str, not {type(name).__name__} ({name!r})")
    key = name.lower()
    if key not in _BUILDERS:
        as_choice(name, GEOMETRIES, "geometry")
    if key not in _CACHE:
        _CACHE[key] = _BUILDERS[key]()
    return _CACHE[key]


def default_geometry(page_size: int, arch: str = "arm64") -> Geometry:
    """The 48-bit-VA arm64 geometry (or x86-64 4-level) for a granule."""
    if arch == "x86_64":
        if page_size != 4096:
            raise ValueError(f"x86-64 has only 4K pages, not {fmt_size(page_size)}")
        return geometry("x86_64-4l")
    names = {4096: "arm64-4k-48", 16384: "arm64-16k-48", 65536: "arm64-64k-48"}
    if page_size not in names:
        raise ValueError(f"no arm64 granule of {page_size} bytes; choose 4K, 16K or 64K")
    return geometry(names[page_size])
