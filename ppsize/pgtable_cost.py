"""Page-table cost of a per-process page size, both ways the proposal allows:

- "emulated": the kernel-granule tables (e.g. 4K), each process page mapped by
  several PTEs with the contiguous bit where a folio covers an aligned run;
- "native": user tables in the process granule (e.g. 64K), one PTE per page.

For populated ranges of a process (e.g. from /proc/PID/pagemap), both trees are built
with ``ppsize.PageTable`` and their memory (VmPTE and every table), walk depth and
TLB reach compared.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Geometry, default_geometry, geometry as lookup
from ._validate import as_addresses, as_page_size
from .pagetable import PageTable
from .units import fmt_size, parse_size

__all__ = ["pgtable_cost", "PgtableCost", "TreeCost"]

PA_BASE = 1 << 40


@dataclass
class TreeCost:
    """One page-table tree for the mappings."""
    mode: str                 # "emulated" or "native"
    geometry: str
    levels: int               # walk depth of a page (the tree's levels)
    tables: dict              # tables per level name
    vmpte_bytes: int          # as /proc/PID/status VmPTE (x1024)
    table_bytes: int          # every table, root included
    tlb_entries: int          # leaf TLB entries to cover everything once
    mapped_bytes: int

    def as_dict(self):
        return dict(self.__dict__)


@dataclass
class PgtableCost:
    page_size: int
    folio_size: int
    ranges: int
    trees: list = field(default_factory=list)

    def as_dict(self):
        return {"page_size": self.page_size, "folio_size": self.folio_size,
                "ranges": self.ranges, "trees": [t.as_dict() for t in self.trees]}


def _folios(ranges, page, folio):
    """Split each [start, end) range (rounded out to the page) into folios: folio-
    sized where aligned and whole, page-sized at the ragged edges."""
    start = ranges[:, 0] // np.uint64(page) * np.uint64(page)
    end = -(-ranges[:, 1] // np.uint64(page)) * np.uint64(page)
    # merge ranges that touch after rounding
    order = np.argsort(start, kind="stable")
    merged = []
    for s, e in zip(start[order].tolist(), end[order].tolist()):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    big, small = [], []
    for s, e in merged:
        fs = -(-s // folio) * folio
        fe = e // folio * folio
        if fs < fe:
            big.append(np.arange(fs, fe, folio, dtype=np.uint64))
            small.append(np.arange(s, fs, page, dtype=np.uint64))
            small.append(np.arange(fe, e, page, dtype=np.uint64))
        else:
            small.append(np.arange(s, e, page, dtype=np.uint64))
    empty = np.zeros(0, np.uint64)
    return np.concatenate(big or [empty]), np.concatenate(small or [empty]), len(merged)


def _build(g: Geometry, big, small, folio, page, mode):
    pt = PageTable(g)
    # every folio at its own PA, a gap after each: physically contiguous only
    # within a folio, as separately allocated folios are
    n_big = big.size
    pa_big = np.uint64(PA_BASE) + np.arange(n_big, dtype=np.uint64) * np.uint64(2 * folio)
    pa_small = np.uint64(PA_BASE + 2 * folio * (n_big + 1)) + \
        np.arange(small.size, dtype=np.uint64) * np.uint64(2 * page)
    if n_big:
        pt.map_many(big, pa_big, folio, contiguous=True)
    if small.size:
        pt.map_many(small, pa_small, page, contiguous=True)
    pt.check()
    return TreeCost(mode=mode, geometry=g.name, levels=g.levels, tables=pt.tables,
                    vmpte_bytes=pt.vmpte_bytes, table_bytes=pt.table_bytes,
                    tlb_entries=pt.tlb_entries(), mapped_bytes=int(n_big * folio + small.size * page))


def pgtable_cost(ranges, page_size="64K", kernel="arm64-4k-48", native=None, folio_size=None) -> PgtableCost:
    """Page-table cost of populated ``ranges`` for a process of ``page_size``.

    ``ranges``: (N, 2) integer array-like of populated [start, end) byte ranges
    (rounded out to the process page). ``kernel``: the kernel's geometry, used for
    the emulated tree. ``native``: the process-granule geometry (default: the
    48-bit arm64 geometry of that granule). ``folio_size``: how memory is allocated
    (default the page size; larger folios give longer contiguous runs).
    """
    page = parse_size(page_size, "page_size")
    kg = lookup(kernel)
    ng = lookup(native) if native is not None else default_geometry(page, kg.arch)
    if ng.page_size != page:
        raise ValueError(f"native geometry {ng.name} has {fmt_size(ng.page_size)} pages, not {fmt_size(page)}")
    if page < kg.page_size or page % kg.page_size:
        raise ValueError(f"page_size {fmt_size(page)} must be a multiple of the kernel's "
                         f"{fmt_size(kg.page_size)} page")
    folio = page if folio_size is None else as_page_size(folio_size, page, "folio_size", "the page size")
    arr = as_addresses(ranges, "ranges")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"ranges must have shape (N, 2), not {arr.shape}")
    if (arr[:, 1] < arr[:, 0]).any():
        i = int(np.flatnonzero(arr[:, 1] < arr[:, 0])[0])
        raise ValueError(f"range {i} ends before it starts: {int(arr[i, 0]):#x}-{int(arr[i, 1]):#x}")
    big, small, nranges = _folios(arr, page, folio)
    result = PgtableCost(page_size=page, folio_size=folio, ranges=nranges)
    result.trees.append(_build(kg, big, small, folio, page, "emulated"))
    result.trees.append(_build(ng, big, small, folio, page, "native"))
    return result
