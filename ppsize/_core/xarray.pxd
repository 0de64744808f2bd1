# XArray (lib/xarray.c, include/linux/xarray.h), for cimport by other kernels.
#
#   from ppsize._core.xarray cimport xarray_t, xa_load, xa_add, XA_EEXIST
#   cdef xarray_t *xa = &some_XArray.xa      # or an xarray_t the caller owns (xa_init)
#   cdef u64 e = xa_load(xa, index)          # 0: empty; canonical entry of a multi-index
#   cdef int err = xa_add(xa, index, order, entry)  # 0 or -XA_EEXIST (__filemap_add_folio)
#
# All of an XArray's state is the C struct xarray_t (head, marks, counters, lookup hint)
# plus the node pool it allocates from (xa_pool_t: pointers into NumPy-owned arrays). Many
# xarray_t may share one pool (the page cache: one pool for every file's mapping, as the one
# radix_tree_node slab cache), so any file's XArray is reachable from nogil code through a
# plain pointer. Pool growth (amortised doubling) takes the GIL inside xa_node_alloc.
#
# Entries are u64: 0 = empty, odd = value entry (xa_mk_value: shadows), anything else with
# (entry & 3) != 2 is a real entry (e.g. pfn << 2). (entry & 3) == 2 is xa_is_internal():
# refused with -XA_EINVAL exactly as xa_store() refuses it (that space encodes sibling and
# node entries inside the tree). All methods are noexcept nogil; failures are return codes.
# Like xa_lock, serialising the calls is the caller's business (no internal locking); load()
# also updates a one-leaf lookup cache, so it is a writer as far as threads are concerned.
from ppsize._core._types cimport u64, i64, i32, u8

cdef enum:
    XA_CHUNK_SHIFT = 6
    XA_CHUNK_SIZE = 64
    XA_CHUNK_MASK = 63
    XA_MAX_MARKS = 3          # XA_MARK_0/1/2 = PAGECACHE_TAG_DIRTY/WRITEBACK/TOWRITE
    XA_NODE_BYTES = 576       # sizeof(struct xa_node) on 64-bit
    XA_NODES_PER_SLAB = 7     # radix_tree_node objects per 4K slab page
    XA_EINVAL = 22
    XA_ENOMEM = 12
    XA_EEXIST = 17


# xa_state (include/linux/xarray.h struct xa_state); xa_node: >= 0 node id, or XAS_*
cdef struct xa_state:
    u64 xa_index
    u8 xa_shift
    u8 xa_sibs
    u8 xa_offset
    i32 xa_node
    int err


ctypedef struct xa_pool_t:
    u64 *slots                # [cap * 64]
    u64 *marks                # [cap * 3] one 64-bit bitmap per mark
    i32 *parent               # -1: root; free nodes: next free id
    u8 *shift                 # 255: node is free
    u8 *offset
    u8 *count
    u8 *nr_values
    i64 cap
    i64 used                  # high-water mark of node ids
    i32 free_head             # free-node list
    i64 nr_nodes              # live nodes of every tree using the pool
    void *owner               # borrowed: the XAPool that owns the NumPy arrays (growth)


ctypedef struct xarray_t:
    xa_pool_t *pool
    u64 head                  # xa_head: NULL, a lone entry at index 0, or a node
    u8 head_marks             # xa_flags XA_FLAGS_MARK(0..2)
    i64 nr_nodes              # live xa_nodes of this tree
    i64 nr_nodes_allocated    # kmem_cache_alloc calls (cumulative)
    i64 nr_nodes_freed        # xa_node_free calls (cumulative)
    i32 hint                  # last shift-0 node reached (lookup cache), -1 if none
    u64 hint_base             # its first index
    bint root_unshrunk        # a split left the root holding only slot 0 (Linux does
                              # not xas_shrink there): check() allows it


cdef class XAPool:
    """Owner of a node pool (NumPy arrays); XArray objects or C code share it."""
    cdef xa_pool_t p
    cdef object _slots_a, _marks_a, _parent_a, _shift_a, _offset_a, _count_a, _nrv_a


cdef class XArray:
    cdef xarray_t xa
    cdef readonly XAPool pool


# the C interface (lib/xarray.c names; all noexcept nogil, failures are return codes)
cdef void xa_init(xarray_t *xa, xa_pool_t *pool) noexcept nogil
cdef void xa_destroy(xarray_t *xa) noexcept nogil
cdef u64 xa_load(xarray_t *xa, u64 index) noexcept nogil
cdef int xa_store(xarray_t *xa, u64 index, int order, u64 entry) noexcept nogil
cdef int xa_add(xarray_t *xa, u64 index, int order, u64 entry) noexcept nogil
cdef u64 xa_erase(xarray_t *xa, u64 index) noexcept nogil
cdef int xa_entry_order(xarray_t *xa, u64 index) noexcept nogil
cdef u64 xa_find(xarray_t *xa, u64 *index, u64 max) noexcept nogil
cdef u64 xa_find_marked(xarray_t *xa, u64 *index, u64 max, int mark) noexcept nogil
cdef u64 xa_find_range(xarray_t *xa, u64 start, u64 max, int mark, u64 *out_index, int *out_order) noexcept nogil
cdef void xa_set_mark(xarray_t *xa, u64 index, int mark) noexcept nogil
cdef void xa_clear_mark(xarray_t *xa, u64 index, int mark) noexcept nogil
cdef bint xa_get_mark(xarray_t *xa, u64 index, int mark) noexcept nogil
cdef int xa_split(xarray_t *xa, u64 index, int new_order) noexcept nogil
cdef int xa_try_split(xarray_t *xa, u64 index, int new_order) noexcept nogil
cdef object xa_check_tree(xarray_t *xa)     # raises AssertionError (needs the GIL)
