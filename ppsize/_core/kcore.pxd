# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# The kernel's shared state: physical frames (buddy), folios, the zero page, the
# THP policy and fault counters; cimported by the fault engine (mm) and the page cache.
from ._types cimport u64, i64, i32, u8, NR_ORDERS
from .buddy cimport BuddyAllocator
from .folio cimport FolioTable

# The arguments of the user order hooks (ppsize/hooks.py documents them and holds the
# NumPy dtypes of the same layout; a test compares sizes and offsets): one struct per
# call, filled by the engine in a NumPy-owned buffer, passed by pointer.
ctypedef struct anon_fault_info:        # hooks.ANON_FAULT_DTYPE
    u64 address
    u64 vma_start
    u64 vma_end
    u64 vma_flags
    u64 allowed
    i64 mm_faults
    i64 mm_rss_anon
    i64 pte_present
    i64 pte_span
    i64 vma_present
    i64 vma_faults
    i64 nr_free[NR_ORDERS]
    i32 process_order
    i32 pmd_order
    i32 max_order
    i32 default_order
    i32 write
    i32 mm_id

ctypedef struct ra_order_info:          # hooks.RA_ORDER_DTYPE
    i64 index
    i64 size
    i64 async_size
    i64 i_size
    i64 nrpages
    i64 nr_free[NR_ORDERS]
    i32 file
    i32 ra_order
    i32 default_order
    i32 min_order
    i32 max_order
    i32 max_page_order

ctypedef i32 (*order_hook_fn)(void*) noexcept nogil

cdef enum:
    # what became of a hook's returned order (KernelCore.hook_bad counters)
    HOOK_BAD_RANGE = 0       # negative or above MAX_PAGE_ORDER: refused, built-in order used
    HOOK_BAD_LOW = 1         # below the process order (min order): raised to it
    HOOK_BAD_NOT_ALLOWED = 2 # an order the VMA / settings do not allow: next lower allowed
    HOOK_BAD_ERROR = 3       # a Python policy raised (slow path): built-in order used
    HOOK_BAD_HIGH = 4        # above the mapping's max order (readahead): lowered to it
    NR_HOOK_BAD = 5
    HOOK_ANON = 0
    HOOK_RA = 1

# Kernel memory that is not a folio of a process or file (KernelCore's kmem caches and
# page-table pages): folio owner tags, above every MM id (1..), never a file (<= -2).
cdef enum:
    PGTABLE_OWNER = 0x7fffffff   # a page-table page (PageTable / PG_table): index = the MM id
    SLAB_OWNER = 0x7ffffffe      # a slab page of a kmem cache: index = next slab of the cache
    CACHE_XA_NODE = 0            # radix_tree_node_cachep (lib/radix-tree.c radix_tree_init)
    CACHE_PGD0 = 1               # pgd_cache (arch/arm64/mm/pgd.c): PGDs below a page, one
    NR_CACHES = 5                # cache per PGD size (1..4)

# A kmem_cache modelled as perfectly packed slabs: a slab (a buddy block of `order`) is
# allocated when the live objects need one more and freed when one empties (LIFO).
ctypedef struct kmem_cache_t:
    i64 size                     # object size (bytes); 0: cache not set up
    i64 per_slab                 # objects per slab (oo_objects)
    int order                    # buddy order of a slab (oo_order)
    int mt                       # migratetype of its pages (gfp's)
    i64 objects                  # live objects
    i64 nr_slabs
    i64 head                     # most recent slab's pfn (-1: none); linked through folio index
    i64 nr_fail                  # allocations refused: no slab page (-ENOMEM)

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
    cdef readonly i64 nr_pagetable       # NR_PAGETABLE: kernel pages of page-table pages
    cdef readonly i64 nr_pgtable_fail    # page-table page allocations that failed
    cdef kmem_cache_t caches[NR_CACHES]
    cdef object _xa_users                # the page caches charging radix_tree_node (weak)
    cdef object _anon_excl_a
    cdef u8* anon_excl                   # per frame: PageAnonExclusive
    # user order hooks (ppsize.hooks): a C function pointer (numba cfunc), or a Python
    # callable through call_hook's slow path (has_* set, fn NULL); none: the built-in policy
    cdef bint has_anon_hook
    cdef bint has_ra_hook
    cdef bint hook_fill_free              # the policy reads nr_free (else left as it was)
    cdef bint hook_fill_pte               # ... pte_present
    cdef bint hook_fill_vma               # ... vma_present
    cdef i32 hook_anon_mm                 # the MM whose constant fields anon_info holds (-1: none)
    cdef order_hook_fn anon_fn
    cdef order_hook_fn ra_fn
    cdef anon_fault_info* anon_info
    cdef ra_order_info* ra_info
    cdef object _hook_objs               # [anon info array, ra info array, anon py, ra py, record views]
    cdef object hook_error               # the first exception a Python policy raised
    cdef i64 hook_bad[2][NR_HOOK_BAD]    # per hook, per kind: since the kernel started
    cdef readonly i64 hook_batch_bad     # bad returns since reset_hook_report
    cdef i64 hook_first[4]               # the first of them: hook, kind, address/index, order

    cdef i32 call_hook(self, int which, bint* failed) noexcept nogil
    cdef i32 _call_py_hook(self, int which, bint* failed) noexcept with gil
    cdef void hook_bad_order(self, int which, int kind, i64 where, i64 order) noexcept nogil
    cdef void fill_nr_free(self, i64* out) noexcept nogil

    cdef bint is_zero_pfn(self, i64 pfn) noexcept nogil
    cdef u64 allowable_orders(self, u64 vm_flags) noexcept nogil
    cdef void count_fault(self, int order, bint ok) noexcept nogil
    cdef void count_oom(self) noexcept nogil
    cdef void anon_add(self, i64 nr) noexcept nogil
    # kernel memory: page-table pages (pagetable_alloc / pagetable_free) and kmem caches
    cdef i64 pgtable_alloc(self, int order, i32 mm_id) noexcept nogil
    cdef void pgtable_free(self, i64 pfn, int order) noexcept nogil
    cdef int cache_alloc(self, int c) noexcept nogil
    cdef void cache_free(self, int c) noexcept nogil


# the page cache's XArray pool charges its nodes here (xa_pool_t.charge, ctx: the KernelCore)
cdef int xa_node_charge(void* k, int nr) noexcept nogil

