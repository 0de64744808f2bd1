"""Stubs for ppsize._core.mm: the fault engine of one process (MMCore). Internal: use
ppsize.Process, which validates and applies syscall effects through these methods."""
from typing import Optional

import numpy as np
import numpy.typing as npt

from .kcore import KernelCore
from .pagecache import PageCache
from .pagetable import PageTableCore
from .vma import VmaTable


class RepeatPass:
    """One pass of MMCore.access_repeat, kept for the next."""
    n: int
    pieces: int
    klen: int                # words of a TLB key (TlbCore.key_into)
    state_size: int          # bytes of the TLB state copy
    repeated_from: int       # first access taken from the pass before (n: none)
    replayed_from: int       # first access whose walks were taken from the pass before, their
                             # references sent to the data cache again (n: none)
    keys: npt.NDArray[np.uint64]      # (pieces, klen): the TLB key after each piece
    rows: npt.NDArray[np.int64]       # (pieces + 1, NR_COUNTERS): the ASID's counters
    faulted: npt.NDArray[np.uint8]    # per piece: an access faulted
    out: memoryview                   # the pass's outcomes
    state: npt.NDArray[np.uint8]      # the TLB state at the end
    dc_log: npt.NDArray[np.uint64]    # the walk references sent to the data cache, in order
    dc_pos: npt.NDArray[np.int64]     # (pieces + 1): where each piece's references begin
    dc_logged: bool                   # dc_log holds every reference of the pass
    def __init__(self, n: int, pieces: int, klen: int, state_size: int) -> None: ...
    @property
    def counted(self) -> npt.NDArray[np.int64]: ...


class MMCore:
    k: KernelCore
    pt: PageTableCore
    vmas: VmaTable
    rss_anon: int            # MM_ANONPAGES (kernel pages)
    rss_file: int            # MM_FILEPAGES
    minflt: int
    majflt: int
    fault_around_bytes: int
    exec_order: int          # arm64 exec_folio_order(); -1 where none
    kshift: int
    pshift: int              # process page shift
    porder: int
    native: bool             # tables in the process granule
    mm_id: int
    read_mask: int           # vm_flags that allow a read access
    def __init__(self, k: KernelCore, pt: PageTableCore, vmas: VmaTable, pshift: int, native: bool,
                 mm_id: int, read_mask: int, pc: Optional[PageCache] = None,
                 fault_around_bytes: int = 65536, exec_order: int = -1) -> None: ...
    tlb_stale: int           # stale TLB hits of the last checked batch
    tlb_stale_first: int     # index of the first (-1: none)
    def access(self, vas: npt.NDArray[np.uint64], writes: npt.NDArray[np.uint8], write_all: bool,
               out: npt.NDArray[np.uint8], insns: npt.NDArray[np.uint8], insn_all: bool = False,
               check: bool = False) -> Optional[list[int]]:
        """One nogil loop (through pt.tlb when set): outcome codes into out; the VMA
        indices that need anon_vma_prepare (None: too many to list)."""
    def access_repeat(self, vas: npt.NDArray[np.uint64], writes: npt.NDArray[np.uint8], write_all: bool,
                      out: npt.NDArray[np.uint8], insns: npt.NDArray[np.uint8], insn_all: bool,
                      pieces: int, prev: Optional["RepeatPass"] = None,
                      spare: Optional["RepeatPass"] = None
                      ) -> tuple[Optional[list[int]], "RepeatPass"]:
        """access() through the TLB of a pass that repeats ``prev``, in ``pieces``
        pieces; once the state repeats prev's (no fault between), the rest is prev's.
        ``spare``: a RepeatPass no longer needed, whose buffers it reuses if it fits."""
    def zap_range(self, start: int, end: int) -> int: ...
    def split_at(self, x: int) -> None: ...
    def unmap_file(self, f: int, first: int = 0, last: int = -1, even_cows: bool = False) -> int: ...
    def unpin_folio(self, head: int, refs: int) -> int: ...
    def free_pgtables(self, floor: int, ceiling: int) -> None: ...
    def protect(self, start: int, end: int, vm_flags: int) -> None: ...
    def move(self, start: int, end: int, new_start: int) -> None: ...
    def _move_tables(self, nva: int, level: int, span: int) -> None: ...
    def _move_map(self, nva: int, pa: int, size: int, prot: int, cont: bool, block: bool,
                  dep: bool) -> None: ...
    def fork_copy(self, parent: "MMCore", start: int, end: int, cow: bool) -> None: ...
    def exit_mm(self) -> None: ...
    def outcome_counts(self) -> list[int]: ...
    def range_stats(self, start: int, end: int) -> tuple[int, int, int]: ...
    def mapped_stats(self, start: int, end: int) -> tuple[int, int, int, int, int]:
        """(anon, PMD-mapped anon, zero-page, file pages, PSS bytes) in [start, end)."""
    def deposited_tables(self) -> int: ...
    def block_heads(self) -> list[int]: ...
    def add_mapcounts(self, counts: npt.NDArray[np.int32]) -> None: ...
