# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# Buddy allocator of physical frames (mm/page_alloc.c), cimported by the other kernels.
#
#   from ppsize._core.buddy cimport BuddyAllocator, MIGRATE_MOVABLE
#   cdef i64 pfn = buddy.alloc(order, MIGRATE_MOVABLE)   # -1: no block (counted)
#   buddy.free(pfn, order)
#
# Both are noexcept nogil. A failed allocation is a result (-1) and a counter, never
# an exception; a bad free from C (not an allocated head of that order) is ignored
# and counted in nr_bad_free, which check() reports.
cimport cython

from ppsize._core._types cimport i64, i32, u8, NR_ORDERS
from ppsize._core.framemem cimport FrameMem

cdef enum:
    # include/linux/mmzone.h enum migratetype (no CMA, no ISOLATE in the model)
    MIGRATE_UNMOVABLE = 0
    MIGRATE_MOVABLE = 1
    MIGRATE_RECLAIMABLE = 2
    MIGRATE_HIGHATOMIC = 3          # free lists exist, never filled: not modelled
    MIGRATE_PCPTYPES = 3
    MIGRATE_TYPES = 4
    # per-frame state byte: [ALLOC:1][FREE:1][migratetype:2][order:4]
    BUDDY_ST_FREE = 0x40            # head of a free block (PageBuddy), on free list mt
    BUDDY_ST_ALLOC = 0x80           # head of an allocated block, allocated as mt
    BUDDY_ORDER_MASK = 0x0F
    BUDDY_MT_SHIFT = 4
    BUDDY_MT_MASK = 0x30
    BUDDY_ORDER_LIMIT = NR_ORDERS - 1   # max_order must fit the 4-bit order field
    # deferred_grow_zone() grows by whole sections: PAGES_PER_SECTION of x86-64 / arm64
    # with 4K pages (SECTION_SIZE_BITS 27), at least one max-order block
    DEFERRED_GROW_FRAMES = 1 << 15


# final: C-level methods are called directly (no vtable), so the C compiler can
# inline the free-list helpers into alloc/free and into cimporting fault loops
@cython.final
cdef class BuddyAllocator:
    cdef readonly i64 nr_pages
    cdef readonly int max_order          # MAX_PAGE_ORDER (inclusive)
    cdef readonly int pageblock_order
    cdef readonly i64 nr_pageblocks
    cdef readonly i64 nr_free_pages      # NR_FREE_PAGES
    cdef readonly i64 nr_bad_free        # C-level frees of a non-allocated head (bugs)
    cdef readonly i64 nr_claimed         # __rmqueue_claim successes (pageblock claimed)
    cdef readonly i64 nr_stolen          # __rmqueue_steal successes (block polluted)

    # per-frame storage from the shared allocator (kept alive here), raw pointers below
    cdef readonly FrameMem frames
    cdef object _next_a, _prev_a, _state_a, _pbmt_a
    # CONFIG_DEFERRED_STRUCT_PAGE_INIT: the max-order blocks def_pfn .. def_end-1 are
    # free MIGRATE_MOVABLE blocks at the tail of that free list (after its last
    # linked block, in pfn order, as the boot's FPI_TO_TAIL left them) whose links
    # and state are not written yet; counted in nr_free / nr_free_pages
    cdef readonly i64 def_pfn
    cdef readonly i64 def_end
    cdef readonly i64 def_chunk          # frames linked per deferred_grow_zone step
    cdef int def_li                      # the list the deferred blocks trail (-1: none left)
    cdef i32 *next_                      # per frame: free-list links (valid on free heads)
    cdef i32 *prev_
    cdef u8 *state                       # per frame: BUDDY_ST_* | mt << 4 | order
    cdef u8 *pb_mt                       # per pageblock: migratetype
    # per-list and per-order state inside the object (as struct zone's free_area[]):
    # the hot paths index them from self, with no pointer to load
    cdef i32 head[NR_ORDERS * MIGRATE_TYPES]     # per (order, mt): first pfn or -1
    cdef i32 tail[NR_ORDERS * MIGRATE_TYPES]     # per (order, mt): last pfn or -1
    cdef i64 nr_free[NR_ORDERS * MIGRATE_TYPES]  # per (order, mt): blocks on that list
    cdef i64 nr_alloc[NR_ORDERS]         # per order: successful allocations
    cdef i64 nr_fail[NR_ORDERS]          # per order: failed allocations
    cdef i64 nr_frees[NR_ORDERS]         # per order: frees

    # the interface other kernels use
    cdef i64 alloc(self, int order, int migratetype) noexcept nogil
    cdef void free(self, i64 pfn, int order) noexcept nogil
    cdef int split_alloc(self, i64 pfn, int order, int new_order) noexcept nogil
    cdef int alloc_order(self, i64 pfn) noexcept nogil
    cdef bint pfn_is_free(self, i64 pfn) noexcept nogil

    # internals (mirroring mm/page_alloc.c)
    cdef inline void _list_add(self, i64 pfn, int order, int mt, bint to_tail) noexcept nogil
    cdef inline void _list_del(self, i64 pfn, int order, int mt) noexcept nogil
    cdef bint _page_is_buddy(self, i64 pfn, int order) noexcept nogil
    cdef void _change_pageblock_range(self, i64 pfn, int order, int mt) noexcept nogil
    cdef void _expand(self, i64 pfn, int low, int high, int mt) noexcept nogil
    cdef inline void _free_one_page(self, i64 pfn, int order, int mt, bint fpi_to_tail) noexcept nogil
    cdef void _split_large_buddy(self, i64 pfn, int order, bint fpi_to_tail) noexcept nogil
    cdef inline void _free_block(self, i64 pfn, int order) noexcept nogil
    cdef inline i64 _alloc(self, int order, int migratetype) noexcept nogil
    cdef inline i64 _rmqueue_smallest(self, int order, int mt) noexcept nogil
    cdef i64 _try_to_claim_block(self, i64 page, int current_order, int order,
                                 int start_type, int block_type) noexcept nogil
    cdef i64 _rmqueue_claim(self, int order, int start_mt) noexcept nogil
    cdef i64 _rmqueue_steal(self, int order, int start_mt) noexcept nogil
    cdef i64 _nr_free_order(self, int order) noexcept nogil
    cdef void _deferred_grow(self, i64 nr) noexcept nogil
