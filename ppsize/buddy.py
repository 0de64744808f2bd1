"""Physical memory: the buddy allocator and per-frame folio metadata.

Thin layer over the Cython kernels ``ppsize._core.buddy`` and ``ppsize._core.folio``
(whose Python methods already validate their arguments):

    >>> from ppsize.buddy import buddy_for
    >>> b = buddy_for("1G", "arm64-4k-48")       # 262144 frames, orders 0..10, pageblock 9
    >>> pfn = b.alloc_pages(2, "movable")        # -1 if no block is free
    >>> b.free_pages(pfn, 2)
    >>> print(b.buddyinfo(), end="")
    Node 0, zone   Normal      0      0      0      0      0      0      0      0      0      0    256

Migratetypes are named "unmovable", "movable", "reclaimable" (or 0, 1, 2 as in
include/linux/mmzone.h); "highatomic" exists as a list but is not modelled.
"""
from __future__ import annotations

from ._core.buddy import MIGRATETYPE_NAMES, BuddyAllocator, migratetype_index
from ._core.folio import FOLIO_FLAGS, FolioTable
from .geometry import Geometry, geometry as _geometry
from .units import fmt_size, parse_size

__all__ = ["BuddyAllocator", "FolioTable", "FOLIO_FLAGS", "MIGRATETYPE_NAMES",
           "migratetype_index", "buddy_for", "check_frames"]


def buddy_for(memory, geom="arm64-4k-48") -> BuddyAllocator:
    """A BuddyAllocator for ``memory`` bytes (int or "16G") of the geometry's kernel
    page size, with MAX_PAGE_ORDER and pageblock_order = min(PMD order,
    MAX_PAGE_ORDER) of that geometry (9/11/13 for 4K/16K/64K arm64)."""
    g = geom if isinstance(geom, Geometry) else _geometry(geom)
    total = parse_size(memory, "memory")
    if total == 0 or total % g.page_size:
        raise ValueError(f"memory {memory!r} must be a positive multiple of the "
                         f"{fmt_size(g.page_size)} page size of {g.name}")
    return BuddyAllocator(total // g.page_size, g.max_page_order, g.pageblock_order)


def check_frames(buddy: BuddyAllocator, folios: FolioTable) -> bool:
    """Cross-check the two tables: every frame of every folio lies in an allocated
    (not free) buddy block. Raises AssertionError naming the first bad pfn."""
    if buddy.nr_pages != folios.nr_pages:
        raise ValueError(f"buddy has {buddy.nr_pages} frames, folio table {folios.nr_pages}")
    buddy.check()
    folios.check()
    import numpy as np
    bad = np.flatnonzero((folios.as_numpy()["order"] != -1) & buddy.free_mask())
    if bad.size:
        raise AssertionError(f"pfn {int(bad[0])} belongs to a folio but is free in the buddy allocator")
    return True
