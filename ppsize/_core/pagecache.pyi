"""Stubs for ppsize._core.pagecache: every file's address_space (mm/filemap.c,
mm/readahead.c, mm/truncate.c). Internal: use ppsize.pagecache.PageCache. Methods
returning an int return -errno (the module's ENOENT, ENOMEM, ... = Python's errno
values) on failure."""
from typing import Iterable

import numpy as np
import numpy.typing as npt

from .kcore import KernelCore
from .xarray import XAPool

ENOENT: int
ENOMEM: int
EEXIST: int
EINVAL: int
ELOOP: int                   # __filemap_get_folio's -EEXIST retry loop did not end
FOLIO_FLAG_READAHEAD: int    # PG_readahead (= PG_reclaim)
RA_DTYPE: np.dtype           # struct file_ra_state

def init_ra_size(size: int, max: int) -> int:
    """get_init_ra_size."""


class PageCache:
    k: KernelCore
    pool: XAPool                   # the radix_tree_node cache of every mapping
    kshift: int
    max_pagecache_order: int
    ra_pages: int
    io_pages: int
    nr_files: int
    nr_cached: int                 # NR_FILE_PAGES
    nr_pages_read: int
    nr_sync_ra: int
    nr_async_ra: int
    nr_alloc_fail: int
    nr_livelock: int
    nr_refused_min_order: int
    eof_order: int                 # large-unless-eof folio order, -1 off
    def __init__(self, k: KernelCore, ra_pages: int | None = None, io_pages: int | None = None,
                 capacity: int = 64) -> None: ...
    def new_file(self, size: int, min_order: int = 0, max_order: int = -1) -> int: ...
    def read(self, f: int, pos: int, count: int) -> int: ...
    def read_files(self, fids: npt.NDArray[np.int64]) -> int: ...
    def get_folio(self, f: int, index: int, create: bool = True, order: int = 0) -> int: ...
    def get_folio_batch(self, f: int, indices: npt.ArrayLike, create: bool = True,
                        order: int = 0) -> npt.NDArray[np.int64]: ...
    def truncate(self, f: int, size: int) -> None: ...
    def invalidate(self, f: int, start: int = 0, end: int = -1) -> int: ...
    def drop_range(self, f: int, start: int, end: int) -> tuple[int, int]: ...
    def drop_caches(self) -> int: ...
    def set_folio_order_range(self, f: int, min: int, max: int) -> None: ...
    def set_flags(self, f: int, index: int, mask: int, on: bool = True) -> bool: ...
    def writeback(self, f: int) -> int: ...
    def file_info(self, f: int) -> dict[str, int | bool]: ...
    def folios_of(self, f: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8],
                                         npt.NDArray[np.int64], npt.NDArray[np.uint16]]: ...
    def counters(self) -> dict: ...
    def check_file(self, f: int, strict_min: bool = True) -> int: ...
    def check(self, mixed: Iterable[int] = ()) -> bool: ...
