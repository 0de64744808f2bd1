# PUBLIC C interface of ppsize (stable; an extension may cimport it, see examples/cython/).
# The XArray (lib/xarray.c, include/linux/xarray.h):
#
#   from ppsize._core.xarray cimport (xarray_t, xa_load, xa_add, xa_is_value,
#                                     xa_mk_pfn, xa_to_pfn)
#   from libc.errno cimport EEXIST
#   cdef xarray_t *xa = &some_XArray.xa      # or an xarray_t the caller owns (xa_init)
#   cdef u64 e = xa_load(xa, index)          # 0: empty; canonical entry of a multi-index
#   if e and not xa_is_value(e): pfn = xa_to_pfn(e)
#   cdef int err = xa_add(xa, index, order, xa_mk_pfn(pfn))   # 0 or -EEXIST
#
# All of an XArray's state is the C struct xarray_t (head, marks, counters, lookup hint)
# plus the node pool it allocates from (xa_pool_t: pointers into NumPy-owned arrays). Many
# xarray_t may share one pool (the page cache: one pool for every file's mapping, as the one
# radix_tree_node slab cache), so any file's XArray is reachable from nogil code through a
# plain pointer. Pool growth (amortised doubling) takes the GIL inside xa_node_alloc.
#
# Entries are u64: 0 = empty, odd = value entry (xa_mk_value: shadows), anything else with
# (entry & 3) != 2 is a real entry: the model's pointers are ids shifted left by two
# (xa_mk_pfn: a folio's head pfn, as the page cache stores struct folio *). (entry & 3) == 2
# is xa_is_internal(): refused with -EINVAL exactly as xa_store() refuses it (that space
# encodes sibling and node entries inside the tree). Failures are negative errno values
# (libc.errno: -EINVAL, -ENOMEM, -EEXIST), as Linux returns them. All functions are
# noexcept nogil. Like xa_lock, serialising the calls is the caller's business (no internal
# locking); load() also updates a one-leaf lookup cache, so it is a writer as far as threads
# are concerned.
from ppsize._core.framemem cimport Populator
from ppsize._core._types cimport u64, i64, i32, u8

cdef enum:
    XA_CHUNK_SHIFT = 6
    XA_CHUNK_SIZE = 64
    XA_CHUNK_MASK = 63
    XA_MARK_0 = 0             # the page cache's PAGECACHE_TAG_DIRTY (pagecache.pxd)
    XA_MARK_1 = 1             # PAGECACHE_TAG_WRITEBACK
    XA_MARK_2 = 2             # PAGECACHE_TAG_TOWRITE
    XA_MAX_MARKS = 3
    XA_NODE_BYTES = 576       # sizeof(struct xa_node) on 64-bit
    XA_NODES_PER_SLAB = 7     # radix_tree_node objects per 4K slab page


# Entry helpers (include/linux/xarray.h), inline: an extension that cimports them compiles
# them into its own loops.
cdef inline bint xa_is_value(u64 entry) noexcept nogil:
    return (entry & 1) != 0

cdef inline u64 xa_mk_value(u64 v) noexcept nogil:
    return (v << 1) | 1

cdef inline u64 xa_to_value(u64 entry) noexcept nogil:
    return entry >> 1

cdef inline bint xa_is_internal(u64 entry) noexcept nogil:
    return (entry & 3) == 2

# The model's pointer entries: an id (a folio's head pfn) as a 4-byte-aligned "pointer".
cdef inline u64 xa_mk_pfn(i64 pfn) noexcept nogil:
    return (<u64>pfn) << 2

cdef inline i64 xa_to_pfn(u64 entry) noexcept nogil:
    return <i64>(entry >> 2)

cdef inline bint xa_is_pfn(u64 entry) noexcept nogil:
    # what a lookup returns for a real (folio) entry: not empty, not a value entry
    return entry != 0 and (entry & 1) == 0


# xa_state (include/linux/xarray.h struct xa_state); xa_node: >= 0 node id, or XAS_*
cdef struct xa_state:
    u64 xa_index
    u8 xa_shift
    u8 xa_sibs
    u8 xa_offset
    i32 xa_node
    int err


# A pool's memory charge (the model's kernel memory: KernelCore's radix_tree_node slab):
# called with +1 before a node is taken (non-zero: -ENOMEM, no node) and -1 after one
# is freed; NULL: nothing charged (a standalone XArray).
ctypedef int (*xa_charge_fn)(void *ctx, int nr) noexcept nogil

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
    xa_charge_fn charge       # kmem_cache_alloc / kmem_cache_free accounting, or NULL
    void *charge_ctx          # borrowed: its context (the KernelCore)
    Populator *ahead          # borrowed: the slots' GrowBuf's (not huge), or NULL:
                              # keeps the slots past `used` populated (populate_front)


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
    """Owner of a node pool (arrays: GrowBuf slots, NumPy or framemem per-node fields);
    XArray objects or C code share it."""
    cdef xa_pool_t p
    cdef object _slots_a, _marks_a, _parent_a, _shift_a, _offset_a, _count_a, _nrv_a
    cdef readonly bint huge             # slots on THP-advised host memory


cdef class XArray:
    cdef xarray_t xa
    cdef readonly XAPool pool


# the C interface (lib/xarray.c names; all noexcept nogil, failures are -errno)
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
