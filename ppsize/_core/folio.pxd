# PUBLIC C interface of ppsize (stable; an extension may cimport it, see examples/cython/).
# Struct-of-arrays folio metadata per frame (include/linux/mm_types.h struct folio):
#
#   from ppsize._core.folio cimport FolioTable, PG_anon, PG_uptodate
#   if folios.folio_init(pfn, order, PG_anon | PG_uptodate, owner, va >> PAGE_SHIFT) < 0: ...
#   head = folios.folio_head(pfn)
#
# folio_init / folio_free / folio_split fail with -EINVAL (bad pfn, order or alignment;
# not a head) or -EEXIST (a frame already belongs to a folio), libc.errno values.
# Per frame: order marker (i8), refcount (i32), mapcount (i32), flags (u16),
# owner (i32), index (i64) = 23 bytes.
cimport cython

from ppsize._core._types cimport i64, i32, i8, u16

cdef enum:
    # folio flags (a subset of include/linux/page-flags.h, plus PG_anon for
    # folio_test_anon() and PG_zero for a folio known to be zero-filled)
    PG_locked = 1 << 0
    PG_uptodate = 1 << 1
    PG_dirty = 1 << 2
    PG_lru = 1 << 3
    PG_active = 1 << 4
    PG_referenced = 1 << 5
    PG_writeback = 1 << 6
    PG_swapbacked = 1 << 7
    PG_anon = 1 << 8
    PG_zero = 1 << 9
    PG_mlocked = 1 << 10
    PG_reclaim = 1 << 11
    PG_workingset = 1 << 12
    PG_readahead = PG_reclaim       # page-flags.h: PG_readahead aliases PG_reclaim
    # order marker values
    FOLIO_NONE = -1                 # frame not in any folio
    # head: order (>= 0); tail of an order-o folio: FOLIO_TAIL_BASE - o (<= -2), so
    # compound_head(pfn) = pfn & ~((1 << o) - 1) in O(1) without a per-frame pointer
    FOLIO_TAIL_BASE = -2


# final: C-level methods are called directly (no vtable), so the C compiler can
# inline the free-list helpers into alloc/free and into cimporting fault loops
@cython.final
cdef class FolioTable:
    cdef readonly i64 nr_pages
    cdef readonly i64 nr_folios
    cdef readonly i64 nr_folio_pages
    cdef object _order_a, _ref_a, _map_a, _flags_a, _owner_a, _index_a
    cdef object frames                 # the kernel's FrameMem (framemem.pyx, internal)
    cdef i8 *order_
    cdef i32 *refcount
    cdef i32 *mapcount                # per page; 0 = unmapped (Linux _mapcount + 1)
    cdef u16 *flags                   # on the head frame; 0 on tails
    cdef i32 *owner                   # on the head: process or mapping id; -1 none
    cdef i64 *index                   # on the head: file page index or anon VA >> PAGE_SHIFT

    cdef int folio_init(self, i64 pfn, int order, u16 flags, i32 owner, i64 index) noexcept nogil
    cdef int folio_free(self, i64 pfn) noexcept nogil
    cdef int folio_split(self, i64 pfn, int new_order) noexcept nogil
    cdef i64 folio_head(self, i64 pfn) noexcept nogil
    cdef int folio_order(self, i64 pfn) noexcept nogil
    cdef i32 ref_add(self, i64 pfn, i32 delta) noexcept nogil
    cdef i32 mapcount_add(self, i64 pfn, i32 delta) noexcept nogil
    cdef i64 folio_mapcount(self, i64 pfn) noexcept nogil
    cdef void set_flags(self, i64 pfn, u16 mask) noexcept nogil
    cdef void clear_flags(self, i64 pfn, u16 mask) noexcept nogil
    cdef bint test_flags(self, i64 pfn, u16 mask) noexcept nogil
