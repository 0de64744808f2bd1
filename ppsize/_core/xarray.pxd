# XArray (lib/xarray.c, include/linux/xarray.h), for cimport by other kernels.
#
#   from ppsize._core.xarray cimport XArray, XA_EEXIST
#   cdef u64 e = xa.load(index)                 # 0: empty; canonical entry of a multi-index
#   cdef int err = xa.add(index, order, entry)  # 0 or -XA_EEXIST (as __filemap_add_folio)
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


cdef class XArray:
    cdef u64 head                 # xa_head: NULL, a lone entry at index 0, or a node
    cdef u8 head_marks            # xa_flags XA_FLAGS_MARK(0..2)
    cdef readonly i64 nr_nodes    # live xa_nodes
    cdef readonly i64 nr_nodes_allocated   # kmem_cache_alloc calls (cumulative)
    cdef readonly i64 nr_nodes_freed       # xa_node_free calls (cumulative)

    # NumPy-owned pools (kept alive here), raw pointers below (refreshed on growth)
    cdef object _slots_a, _marks_a, _parent_a, _shift_a, _offset_a, _count_a, _nrv_a
    cdef u64 *slots               # [cap * 64]
    cdef u64 *marks               # [cap * 3] one 64-bit bitmap per mark
    cdef i32 *parent              # -1: root; free nodes: next free id
    cdef u8 *shift                # 255: node is free
    cdef u8 *offset
    cdef u8 *count
    cdef u8 *nr_values
    cdef i64 cap
    cdef i64 used                 # high-water mark of node ids
    cdef i32 free_head            # free-node list
    cdef i32 hint                 # last shift-0 node reached (lookup cache), -1 if none
    cdef u64 hint_base            # its first index
    cdef bint root_unshrunk       # a split left the root holding only slot 0 (Linux
                                  # does not xas_shrink there): check() allows it

    # the interface other kernels use
    cdef u64 load(self, u64 index) noexcept nogil
    cdef int store(self, u64 index, int order, u64 entry) noexcept nogil
    cdef int add(self, u64 index, int order, u64 entry) noexcept nogil
    cdef u64 erase(self, u64 index) noexcept nogil
    cdef int entry_order(self, u64 index) noexcept nogil
    cdef u64 find(self, u64 *index, u64 max) noexcept nogil
    cdef u64 find_marked(self, u64 *index, u64 max, int mark) noexcept nogil
    cdef void set_mark(self, u64 index, int mark) noexcept nogil
    cdef void clear_mark(self, u64 index, int mark) noexcept nogil
    cdef bint get_mark(self, u64 index, int mark) noexcept nogil
    cdef int split(self, u64 index, int new_order) noexcept nogil
    cdef int try_split(self, u64 index, int new_order) noexcept nogil

    # internals (mirroring lib/xarray.c)
    cdef int _grow(self) noexcept nogil
    cdef i32 _node_alloc(self) noexcept nogil
    cdef void _node_free(self, i32 node) noexcept nogil
    cdef u64 _find(self, u64 start, u64 max, int mark, u64 *out_index, int *out_order) noexcept nogil
    cdef u64 xas_start(self, xa_state *xas) noexcept nogil
    cdef u64 xas_descend(self, xa_state *xas, i32 node) noexcept nogil
    cdef u64 xas_load(self, xa_state *xas) noexcept nogil
    cdef i32 xas_alloc(self, xa_state *xas, int shift) noexcept nogil
    cdef void xas_shrink(self, xa_state *xas) noexcept nogil
    cdef void xas_delete_node(self, xa_state *xas) noexcept nogil
    cdef void xas_free_nodes(self, i32 top) noexcept nogil
    cdef int xas_expand(self, xa_state *xas, u64 head) noexcept nogil
    cdef u64 xas_create(self, xa_state *xas, bint allow_root) noexcept nogil
    cdef void update_node(self, xa_state *xas, i32 node, int count, int values) noexcept nogil
    cdef u64 xas_store(self, xa_state *xas, u64 entry) noexcept nogil
    cdef void xas_squash_marks(self, xa_state *xas) noexcept nogil
    cdef bint xas_get_mark(self, xa_state *xas, int mark) noexcept nogil
    cdef void xas_set_mark(self, xa_state *xas, int mark) noexcept nogil
    cdef void xas_clear_mark(self, xa_state *xas, int mark) noexcept nogil
    cdef void xas_init_marks(self, xa_state *xas) noexcept nogil
    cdef u64 xas_find_conflict(self, xa_state *xas) noexcept nogil
    cdef int xas_get_order(self, xa_state *xas) noexcept nogil
    cdef void _node_set_marks(self, i32 node, int off, i32 child, int sibs, int marks) noexcept nogil
    cdef int _node_get_marks(self, i32 node, int off) noexcept nogil
    cdef i32 _split_child(self, xa_state *xas, i32 node, int off, u64 entry, int marks) noexcept nogil
    cdef void xas_split(self, xa_state *xas, u64 entry, int order) noexcept nogil
    cdef void xas_try_split(self, xa_state *xas, u64 entry, int order) noexcept nogil
    cdef void _prefetch(self, u64 index, bint write) noexcept nogil
    cdef void _store_batch(self, const u64 *idx, const u64 *ent, i64 n, int order, i64 *nerr) noexcept nogil
