"""Stubs for ppsize._core.kcore: the kernel's shared state (frames, folios, the zero
page, the THP policy, fault counters). Internal: use ppsize.Kernel."""
from .buddy import BuddyAllocator
from .folio import FolioTable


class KernelCore:
    buddy: BuddyAllocator
    folios: FolioTable
    kshift: int              # kernel PAGE_SHIFT
    pmd_order: int           # HPAGE_PMD_ORDER
    zero_pfn: int            # the reserved zero region (ZERO_PAGE, huge zero folio)
    zero_order: int
    thp_always: int          # order bitmasks of the per-size sysfs settings
    thp_inherit: int
    thp_madvise: int
    thp_top: int             # transparent_hugepage/enabled: 0 never, 1 madvise, 2 always
    use_zero_page: bool
    anon_pages: int          # NR_ANON_MAPPED (kernel pages)
    anon_thp_pages: int      # NR_ANON_THPS
    nr_oom: int
    nr_pagetable: int        # NR_PAGETABLE: kernel pages of page-table folios
    nr_pgtable_fail: int     # page-table allocations refused
    def __init__(self, nr_pages: int, kshift: int, max_order: int, pageblock_order: int,
                 pmd_order: int) -> None: ...
    def setup_cache(self, c: int, size: int, mt: int) -> None:
        """kmem_cache_create of cache c (slab order and objects from slab_order)."""
    def pgd_cache(self, size: int) -> int:
        """The pgd_cache index for PGDs of size bytes (set up on first use)."""
    def cache_stats(self, c: int) -> dict[str, int]:
        """{size, per_slab, order, objects, slabs, pages, fail} of kmem cache c."""
    def cache_slab_pfns(self, c: int) -> list[int]: ...
    def add_xa_user(self, pc: object) -> None: ...
    def xa_users(self) -> list[object]: ...
    def mthp_stats(self) -> dict[int, tuple[int, int]]:
        """{order: (anon_fault_alloc, anon_fault_fallback)} of the orders used."""
    hook_batch_bad: int      # bad hook returns since reset_hook_report
    def set_order_hook(self, which: int, info: object, address: int = 0,
                       py: object = None, view: object = None, fill_free: bool = True,
                       fill_pte: bool = True, fill_vma: bool = True) -> None:
        """Install (info None: remove) the anon (0) or readahead (1) order hook."""
    def reset_hook_report(self) -> None: ...
    def hook_report(self) -> tuple[int, tuple[int, int, int, int] | None, BaseException | None]: ...
    def hook_stats(self, which: int) -> list[int]: ...


OWNER_TAGS: dict[str, int]      # folio owners of kernel memory: "pgtable", "slab"
KMEM_CACHES: dict[str, int]     # cache_stats index of radix_tree_node, and nr_caches
XA_NODE_SLAB_SIZE: int
SLUB_MIN_OBJECTS: int
SLUB_MAX_ORDER: int


def slab_order(size: int, page_size: int, min_objects: int = ..., max_order: int = ...) -> tuple[int, int]:
    """mm/slub.c calculate_order: (slab order, objects per slab)."""


def hook_struct_layout() -> dict[str, tuple[int, dict[str, int]]]:
    """{struct: (sizeof, {field: offset})} of the hook argument structs."""
