# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# The page cache (mm/filemap.c, mm/readahead.c, mm/truncate.c), cimported by the fault
# engine:
#
#   from ppsize._core.pagecache cimport PageCache
#   cdef i64 pfn = pc.filemap_get_folio(file, index, FGP_CREAT, order)   # < 0: -errno
#   cdef xarray_t *xa = &pc.xa[file]                                     # the file's i_pages
#
# Every file's address_space lives in struct-of-arrays form indexed by file id (i_size,
# min/max folio order, nrpages, file_ra_state, xarray_t); all XArrays share one node pool.
# Cache folios are folios of the kernel's FolioTable with owner = mapping_owner(file)
# (-2 - file) and index = file page index; their frames come from the kernel's buddy.
# Everything here is nogil; failures are negative errno values (libc.errno: -ENOENT,
# -ENOMEM, -EEXIST, -EINVAL, and -ELOOP when __filemap_get_folio's -EEXIST retry loop
# does not end), never exceptions.
cimport cython

from ppsize._core._types cimport u64, i64, i32, u32, u8, NR_ORDERS
from ppsize._core.xarray cimport xarray_t, XAPool, XA_MARK_0, XA_MARK_1, XA_MARK_2
from ppsize._core.buddy cimport BuddyAllocator
from ppsize._core.folio cimport FolioTable
from ppsize._core.kcore cimport KernelCore

cdef enum:
    FGP_ACCESSED = 0x1         # include/linux/pagemap.h fgf_t (subset)
    FGP_CREAT = 0x4
    PAGECACHE_TAG_DIRTY = XA_MARK_0        # include/linux/fs.h
    PAGECACHE_TAG_WRITEBACK = XA_MARK_1
    PAGECACHE_TAG_TOWRITE = XA_MARK_2
    FOLIO_BATCH_SIZE = 31      # PAGEVEC_SIZE
    GET_FOLIO_MAX_REPEAT = 64  # model-only bound on "goto repeat" (livelock detector)


# include/linux/fs.h struct file_ra_state (one per file id: the model has one open file
# per inode)
ctypedef struct file_ra_state:
    i64 start
    i64 size
    i64 async_size
    u32 order
    i32 mmap_miss
    i64 prev_pos
    i64 ra_pages


cdef enum:
    AS_LARGE = 1                               # bits of PageCache.large
    AS_NO_MAP_PAGES = 2                        # special mappings: no fault-around


@cython.final
cdef class PageCache:
    cdef readonly KernelCore k
    cdef BuddyAllocator buddy
    cdef FolioTable folios
    cdef readonly XAPool pool                  # radix_tree_node cache of every mapping
    cdef object __weakref__                    # KernelCore.xa_users
    cdef readonly int kshift                   # PAGE_SHIFT
    cdef readonly int max_pagecache_order      # MAX_PAGECACHE_ORDER = min(11, PMD order)
    cdef readonly i64 ra_pages                 # bdi->ra_pages (VM_READAHEAD_PAGES default)
    cdef readonly i64 io_pages                 # bdi->io_pages
    cdef readonly i64 nr_files
    cdef i64 cap
    # per-file arrays (NumPy-owned, raw pointers refreshed on growth)
    cdef object _isize_a, _minord_a, _maxord_a, _large_a, _nrpages_a, _ra_a, _xa_a, _read_a
    cdef i64 *i_size
    cdef u8 *min_order                         # AS_FOLIO_ORDER_MIN
    cdef u8 *max_order                         # AS_FOLIO_ORDER_MAX
    cdef u8 *large                             # AS_LARGE: created with large folio support;
                                               # AS_NO_MAP_PAGES: vm_ops without ->map_pages
    cdef i64 *nrpages                          # mapping->nrpages
    cdef file_ra_state *ra                     # file->f_ra
    cdef xarray_t *xa                          # mapping->i_pages
    cdef i64 *pages_read                       # per file: pages read from "disk"
    # global counters
    cdef readonly i64 nr_cached                # NR_FILE_PAGES (Cached in meminfo)
    cdef readonly i64 nr_pages_read            # pages read from disk (all files)
    cdef readonly i64 nr_sync_ra               # page_cache_sync_ra calls that read ahead
    cdef readonly i64 nr_async_ra              # page_cache_async_ra calls that read ahead
    cdef readonly i64 nr_alloc_fail            # folio allocations that failed
    cdef readonly i64 nr_livelock              # __filemap_get_folio repeat bound hit
    cdef readonly i64 nr_refused_min_order     # adds refused: order < mapping min order
    cdef public int eof_order                  # large-unless-eof: folio order of every file
                                               # except where it would pass EOF; -1 off
    cdef i64 added[NR_ORDERS]              # folios added per order
    cdef i64 removed[NR_ORDERS]            # folios removed per order

    # mapping helpers
    cdef i32 mapping_owner(self, i64 f) noexcept nogil
    cdef void mapping_set_folio_order_range(self, i64 f, int min, int max) noexcept nogil
    cdef i64 alloc_folio(self, int order) noexcept nogil
    cdef void put_new_folio(self, i64 pfn) noexcept nogil
    cdef void remove_folio(self, i64 f, i64 pfn) noexcept nogil
    cdef bint folio_busy(self, i64 pfn) noexcept nogil
    cdef int eof_pick_order(self, i64 f, i64 index, int order) noexcept nogil
    cdef i64 eof_add_folio(self, i64 f, i64 index, int order, u32 flags, i64 *start, int *o_out) noexcept nogil
    # mm/filemap.c
    cdef int filemap_add_folio(self, i64 f, i64 pfn, i64 index, int order, u32 flags) noexcept nogil
    cdef i64 filemap_get_folio(self, i64 f, i64 index, int fgp_flags, int order) noexcept nogil
    cdef int filemap_get_read_batch(self, i64 f, i64 index, i64 max, i64 *batch) noexcept nogil
    cdef i64 filemap_read(self, i64 f, i64 pos, i64 count) noexcept nogil
    cdef i64 page_cache_next_miss(self, i64 f, i64 index, i64 max_scan) noexcept nogil
    cdef i64 page_cache_prev_miss(self, i64 f, i64 index, i64 max_scan) noexcept nogil
    # mm/readahead.c
    cdef void read_pages(self, i64 *r_index, i64 *r_nr) noexcept nogil
    cdef int _ra_add(self, i64 f, i64 index, int order, bint readahead) noexcept nogil
    cdef void page_cache_ra_unbounded(self, i64 f, i64 *r_index, i64 nr_to_read, i64 lookahead) noexcept nogil
    cdef void do_page_cache_ra(self, i64 f, i64 *r_index, i64 nr_to_read, i64 lookahead) noexcept nogil
    cdef void force_page_cache_ra(self, i64 f, i64 index, i64 nr_to_read) noexcept nogil
    cdef void page_cache_ra_order(self, i64 f, i64 index) noexcept nogil
    cdef int ra_hook_order(self, i64 f, i64 index, int default) noexcept nogil
    cdef void page_cache_sync_ra(self, i64 f, i64 index, i64 req_count) noexcept nogil
    cdef void page_cache_async_ra(self, i64 f, i64 index, i64 pfn, i64 req_count) noexcept nogil
    # mm/truncate.c
    cdef int split_folio_at(self, i64 f, i64 pfn, i64 at_index, int new_order) noexcept nogil
    cdef void truncate_inode_pages_range(self, i64 f, i64 lstart) noexcept nogil
    cdef i64 invalidate_mapping_pages(self, i64 f, i64 start, i64 end) noexcept nogil
    cdef i64 filemap_drop_range(self, i64 f, i64 start, i64 end, i64 *blocked) noexcept nogil
    cdef i64 remove_idle_folios(self, i64 f, i64 start, i64 end, bint contained, i64 *busy) noexcept nogil
    # Python-level access
    cdef i64 _check_file(self, object f) except -1
    cdef void _init_file(self, i64 f, i64 size, int min_order, int max_order) noexcept nogil
