# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# The kernel's shared state: physical frames (buddy), folios, the zero page, the
# THP policy and fault counters; cimported by the fault engine (mm) and the page cache.
from ._types cimport u64, i64, u8, NR_ORDERS
from .buddy cimport BuddyAllocator
from .folio cimport FolioTable

cdef enum:
    THP_NEVER = 0
    THP_MADVISE = 1
    THP_ALWAYS = 2

cdef class KernelCore:
    cdef readonly BuddyAllocator buddy
    cdef readonly FolioTable folios
    cdef readonly int kshift             # kernel PAGE_SHIFT
    cdef readonly int pmd_order          # HPAGE_PMD_ORDER
    cdef readonly i64 zero_pfn           # reserved zero region (ZERO_PAGE, huge zero folio)
    cdef readonly int zero_order
    cdef public u64 thp_always           # order bitmasks of the per-size sysfs settings
    cdef public u64 thp_inherit
    cdef public u64 thp_madvise
    cdef public int thp_top              # transparent_hugepage/enabled
    cdef public bint use_zero_page       # transparent_hugepage/use_zero_page
    cdef readonly i64 anon_pages         # NR_ANON_MAPPED (kernel pages)
    cdef readonly i64 anon_thp_pages     # NR_ANON_THPS: pages of PMD-mapped THPs
    cdef i64 fault_alloc[NR_ORDERS]     # mthp stats: anon_fault_alloc per order
    cdef i64 fault_fallback[NR_ORDERS]  # anon_fault_fallback per order
    cdef readonly i64 nr_oom
    cdef object _anon_excl_a
    cdef u8* anon_excl                   # per frame: PageAnonExclusive

    cdef bint is_zero_pfn(self, i64 pfn) noexcept nogil
    cdef u64 allowable_orders(self, u64 vm_flags) noexcept nogil
    cdef void count_fault(self, int order, bint ok) noexcept nogil
    cdef void count_oom(self) noexcept nogil
    cdef void anon_add(self, i64 nr) noexcept nogil

