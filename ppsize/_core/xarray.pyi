"""Stubs for ppsize._core.xarray (the XArray of lib/xarray.c). C-level interface: xarray.pxd."""
from ppsize._core.framemem import GrowBuf
from typing import Literal, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

Mark = Union[int, Literal["dirty", "writeback", "towrite"]]

PAGECACHE_TAG_DIRTY: int
PAGECACHE_TAG_WRITEBACK: int
PAGECACHE_TAG_TOWRITE: int
EEXIST: int      # 17
EINVAL: int      # 22
ENOMEM: int      # 12
XA_MAX_NODES: int      # 2**31 - 1: node ids are i32
NODE_BYTES: int  # 576 = sizeof(struct xa_node)
NODES_PER_SLAB: int  # 7 per 4K slab page
MAX_PAGECACHE_ORDER: dict[int, int]  # PAGE_SIZE -> min(11, PMD order)
MARK_NAMES: dict[str, int]           # "dirty", "writeback", "towrite" -> XA_MARK_0/1/2


class XAPool:
    """Node pool (radix_tree_node slab cache) that XArrays may share."""
    huge: bool
    def __init__(self, capacity: int = 16, huge: bool = True) -> None: ...
    @property
    def nr_nodes(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def slots_buffer(self) -> Optional[GrowBuf]: ...
    @property
    def nbytes(self) -> int: ...
    def check(self) -> None: ...


class XArray:
    """u64 entries: 0 empty, odd = value entry, (e & 3) == 2 refused (internal).
    State: the C struct xarray_t (xarray.pxd); nodes from `pool`."""

    pool: XAPool

    def __init__(self, capacity: int = 64, pool: Optional[XAPool] = None) -> None: ...
    @property
    def nr_nodes(self) -> int: ...
    @property
    def nr_nodes_allocated(self) -> int: ...
    @property
    def nr_nodes_freed(self) -> int: ...
    def store(self, index: int, entry: int, order: int = 0) -> None:
        """xa_store_order: index rounded down; entry 0 erases the range."""
    def store_batch(self, indices: npt.ArrayLike, entries: npt.ArrayLike, order: int = 0) -> None: ...
    def add(self, index: int, entry: int, order: int = 0) -> int:
        """__filemap_add_folio: 0, or -17 (-EEXIST) if a real entry overlaps."""
    def load(self, index: int) -> int: ...
    def load_batch(self, indices: npt.ArrayLike) -> npt.NDArray[np.uint64]: ...
    def erase(self, index: int) -> int: ...
    def entry_order(self, index: int) -> int:
        """-1 if no entry covers index."""
    def split(self, index: int, order: int) -> int:
        """xas_split: 0, -22 (-EINVAL) or -12 (-ENOMEM, order too far below)."""
    def try_split(self, index: int, order: int) -> int:
        """xas_try_split: 0 or -22 (-EINVAL: would need more than one node)."""
    def set_mark(self, index: int, mark: Mark) -> None: ...
    def clear_mark(self, index: int, mark: Mark) -> None: ...
    def get_mark(self, index: int, mark: Mark) -> bool: ...
    def find(self, index: int = 0, max: Optional[int] = None,
             mark: Optional[Mark] = None) -> Optional[Tuple[int, int]]:
        """(first index, entry) of the entry covering index, else the next one."""
    def items(self, start: int = 0, end: Optional[int] = None, mark: Optional[Mark] = None
              ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.int8], npt.NDArray[np.uint64]]:
        """(first indices, orders, entries) of the entries overlapping [start, end]."""
    def entry_location(self, index: int) -> Optional[Tuple[Union[int, str], int, int]]:
        """(node shift, canonical slot, slots) or ('head', 0, 1) or None."""
    def nodes(self) -> np.ndarray: ...
    def check(self) -> None: ...
    def __len__(self) -> int: ...
    @property
    def node_bytes(self) -> int: ...
    @property
    def slab_bytes(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def head_entry(self) -> Optional[int]: ...
