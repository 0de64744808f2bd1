"""Stubs for ppsize._core.pagetable: page-table state for one geometry. Internal: use
ppsize.PageTable (a subclass), which validates and calls the underscore methods."""
import numpy as np
import numpy.typing as npt

from typing import Optional

from ppsize.geometry import Geometry
from ppsize._core.tlb import TlbCore

FLUSH_SITES: dict          # TLB flush site name -> bit (PageTableCore.tlb_skip)


from .kcore import KernelCore


class PageTableCore:
    geometry: Geometry
    levels: int
    page_shift: int
    va_limit: int            # user VA is [0, va_limit)
    zero_pa: int             # the huge zero folio (~0: none)
    tlb: Optional[TlbCore]   # the MMU model translating through this table
    tlb_on: bool
    tlb_asid: int
    tlb_table_base: int      # synthetic PA of the tables (walk references)
    tlb_skip: int            # FLUSH_SITES bits left out (tests)
    charged: bool            # its tables are kernel memory (charge_to)
    mm_id: int               # the MM they are charged to
    _pfn_arrays: list
    def set_tlb(self, tlb: Optional[TlbCore], asid: int, table_base: int) -> None: ...
    def _tlb_gather(self, fullmm: bool = False) -> None: ...
    def _tlb_finish(self, freed_tables: bool = False) -> None: ...
    def _tlb_flush(self, start: int, end: int, stride: int = 0, last_level: bool = False,
                   site: int = 1) -> None: ...
    def _tlb_flush_mm(self, site: int = 32) -> None: ...
    def __init__(self, geometry: str | Geometry = "arm64-4k-48") -> None: ...
    def tables_per_level(self) -> list[int]: ...
    def charge_to(self, k: "KernelCore", mm_id: int) -> None:
        """Make this empty table an MM's on kernel k (the root charged now)."""
    def uncharge(self) -> None:
        """mm_free_pgd: the root back; the table is standalone again."""
    def table_pfns(self) -> dict[int, list[int]]: ...
    def deposit_pfns(self) -> list[int]:
        """Frames of the deposited PTE tables (pgtable_trans_huge_deposit)."""
    ndep: int                # deposited PTE tables
    def leaf_counts(self) -> tuple[list[int], list[int]]:
        """(leaves, leaves with the contiguous bit) per level."""
    def check(self) -> bool: ...
    def _grow(self, l: int, new_cap: int) -> None: ...
    def _translate(self, vas: npt.NDArray[np.uint64], pa: npt.NDArray[np.uint64],
                   status: npt.NDArray[np.uint8], level: npt.NDArray[np.int8],
                   unit_shift: npt.NDArray[np.uint8], prot: npt.NDArray[np.uint8]) -> None: ...
    def _range_mapped(self, va: int, size: int) -> bool: ...
    def _first_mapped(self, vas: npt.NDArray[np.uint64], size: int) -> int: ...
    def _map(self, va: int, pa: int, size: int, prot: int, cont: bool, block: bool) -> None: ...
    def _map_many(self, vas: npt.NDArray[np.uint64], pas: npt.NDArray[np.uint64], size: int,
                  prot: int, cont: bool, block: bool) -> None: ...
    def _unmap(self, va: int, size: int) -> None: ...
    def _protect(self, va: int, size: int, prot: int) -> None: ...
