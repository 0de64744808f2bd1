# cython: freethreading_compatible = False
"""XArray: the page cache index (lib/xarray.c, include/linux/xarray.h).

A faithful model of the Linux XArray with XA_CHUNK_SHIFT = 6 (CONFIG_BASE_SMALL=n) and
CONFIG_XARRAY_MULTI: 64-slot nodes, multi-index (sibling) entries, three marks propagated to
the ancestors, xa_head holding a lone entry at index 0, xas_expand / xas_shrink /
xas_delete_node / xas_free_nodes so that the node count matches Linux, xas_find_conflict,
xas_split and xas_try_split. The kernel source followed is lib/xarray.c of the
linux-mm tree (github linux-mm/linux-mm, lib/xarray.c at 2749f377, mm/filemap.c at
009cff43; v6.15+: after "xarray: add xas_try_split()" and xas_try_split_min_order()):
its __filemap_add_folio splits a larger shadow entry with xas_try_split() one step at a
time (9 -> 6 -> 5 -> 0 takes one new node), where kernels before 6.15 used
xas_split_alloc() + xas_split() (one node per slot of the old entry).

Storage: all of an XArray's state is a C struct (xarray_t: head, head marks, counters, lookup
hint, pointer to its node pool); the operations are C functions on xarray_t* (xa_load,
xa_store, xa_add, ...), so nogil code can reach any file's XArray through a pointer. Node
pools (xa_pool_t, owned by a cdef class XAPool) are NumPy arrays (slots: 64 x u64 per node,
marks: 3 x u64 bitmaps per node, parent/shift/offset/count/nr_values per node), a free-node
list, growth by doubling under `with gil` inside xa_node_alloc (amortised). Several XArrays
may share one pool (the page cache: one pool for all mappings, like the radix_tree_node slab).
No Python object per node or per entry.

Entry encoding (u64): 0 = NULL; odd = value entry (xa_mk_value); (e & 3) == 2 = internal
(xa_is_internal): sibling entries (offset << 2 | 2, offset < 63) and node entries
((id + 2048) << 2 | 2, > 4096), never accepted from callers (xa_store's -EINVAL);
everything else is a "pointer" (real entry), e.g. a folio pfn << 2.

Deviations from Linux, all outside the paths the page cache uses:
- find()/find_marked()/items() report the first index of each entry (its canonical slot),
  also for an entry straddling the start index (xa_find leaves *indexp at the start there,
  and xas_find can report an index inside a multi-index entry); they are clean walks written
  after xas_find / xas_find_marked, not line-by-line ports.
- A store of a smaller order into a larger multi-index entry replaces the value and keeps the
  larger order, as Linux does, but nr_values is fixed up for the sibling slots too (Linux only
  accounts the canonical slot there, so its nr_values can drift).
- Allocation fails only where the model runs out: a pool whose charge hook (a Kernel's
  radix_tree_node slab) gets no slab page, or a pool that cannot grow, gives -ENOMEM from
  xa_node_alloc as kmem_cache_alloc would; a standalone pool is not charged. GFP_NOWAIT in
  xas_try_split is not modelled as failing; xas_split's "really large entries" refusal is
  kept (-ENOMEM, as xas_split_alloc's WARN path).
- No RCU: freed slots are not set to XA_RETRY_ENTRY; no XA_ZERO_ENTRY, no XA_FREE_MARK
  (XA_FLAGS_TRACK_FREE), no xa_update callback (workingset shadow-node LRU).
"""
import numpy as np
cimport cython
cimport numpy as cnp

from ppsize._validate import as_index_array, as_int, as_order, as_u64
from libc.string cimport memset, memcpy
from cpython.object cimport PyObject
from ppsize._core.framemem cimport GrowBuf, populate_front
from ppsize._core.framemem import frame_array
from libc cimport errno as cerrno
from ppsize._core._types cimport u64, i64, i32, u8

cnp.import_array()

cdef extern from *:
    """
    static inline int ppsize_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    static inline void ppsize_prefetch(const void *p) { __builtin_prefetch(p, 0, 1); }
    static inline void ppsize_prefetchw(const void *p) { __builtin_prefetch(p, 1, 1); }
    """
    int ppsize_ctz64(unsigned long long x) nogil
    void ppsize_prefetch(const void *p) nogil
    void ppsize_prefetchw(const void *p) nogil

DEF STORE_GROUP = 32         # stores interleaved by store_batch
DEF LOAD_GROUP = 32          # lookups interleaved by load_batch


cdef enum:
    XAS_NULL = -1       # xa_node == NULL: operating on xa_head
    XAS_RESTART = -2    # XAS_RESTART: not walked yet
    XAS_BOUNDS = -3     # XAS_BOUNDS: index outside the tree
    XAS_ERROR = -4      # XA_ERROR(err): err in xas.err
    NODE_FREE = 255     # shift of a node on the free list
    NODE_BIAS = 2048    # node entry = (id + NODE_BIAS) << 2 | 2  (> 4096: xa_is_node)
    XA_AHEAD_NODES = 1024   # a pool's front is reported to its populator every this many
                            # new nodes (512 KiB of slots)

# PAGECACHE_TAG_* (include/linux/fs.h): XA_MARK_0/1/2
PAGECACHE_TAG_DIRTY = XA_MARK_0
PAGECACHE_TAG_WRITEBACK = XA_MARK_1
PAGECACHE_TAG_TOWRITE = XA_MARK_2
MARK_NAMES = {"dirty": XA_MARK_0, "writeback": XA_MARK_1, "towrite": XA_MARK_2}
# the errnos the C interface returns negated (libc.errno: Python's errno values)
EEXIST = cerrno.EEXIST
EINVAL = cerrno.EINVAL
ENOMEM = cerrno.ENOMEM
XA_MAX_NODES = (1 << 31) - 1      # a node id must fit the i32 parent links
NODE_BYTES = XA_NODE_BYTES
NODES_PER_SLAB = XA_NODES_PER_SLAB
MAX_PAGECACHE_ORDER = {4096: 9, 16384: 11, 65536: 11}   # min(11, PMD order) per PAGE_SIZE


# include/linux/xarray.h entry classification (xa_is_value, xa_is_internal: xarray.pxd)
cdef inline bint xa_is_node(u64 e) noexcept nogil:
    return (e & 3) == 2 and e > 4096

cdef inline bint xa_is_sibling(u64 e) noexcept nogil:
    # xa_is_internal(entry) && entry < xa_mk_sibling(XA_CHUNK_SIZE - 1)
    return (e & 3) == 2 and e < ((XA_CHUNK_SIZE - 1) << 2 | 2)

cdef inline u64 xa_mk_sibling(u64 offset) noexcept nogil:
    return (offset << 2) | 2

cdef inline int xa_to_sibling(u64 e) noexcept nogil:
    return <int>(e >> 2)

cdef inline u64 xa_mk_node(i32 node) noexcept nogil:
    return ((<u64>node + NODE_BIAS) << 2) | 2

cdef inline i32 xa_to_node(u64 e) noexcept nogil:
    return <i32>((e >> 2) - NODE_BIAS)

cdef inline bint xas_invalid(xa_state *xas) noexcept nogil:
    return xas.xa_node < XAS_NULL

cdef inline bint xas_top(i32 node) noexcept nogil:
    return XAS_BOUNDS <= node <= XAS_NULL

cdef inline void xas_set_err(xa_state *xas, int err) noexcept nogil:
    xas.xa_node = XAS_ERROR
    xas.err = err

cdef inline void xas_set_order(xa_state *xas, u64 index, int order) noexcept nogil:
    # include/linux/xarray.h xas_set_order
    xas.xa_index = (index >> order) << order if order < 64 else 0
    xas.xa_shift = order - order % XA_CHUNK_SHIFT
    xas.xa_sibs = (1 << (order % XA_CHUNK_SHIFT)) - 1
    xas.xa_offset = 0
    xas.xa_node = XAS_RESTART
    xas.err = 0

cdef inline u64 max_index_of(u64 index_span_shift) noexcept nogil:
    # (XA_CHUNK_SIZE << shift) - 1, wrapping to ~0 for shift 60 exactly like unsigned long
    return ((<u64>XA_CHUNK_SIZE) << index_span_shift) - 1

cdef inline int xas_try_split_min_order(int order) noexcept nogil:
    # lib/xarray.c xas_try_split_min_order
    if order % XA_CHUNK_SHIFT == 0:
        return 0 if order == 0 else order - 1
    return order - (order % XA_CHUNK_SHIFT)


def _as_entry(x):
    x = as_u64(x, "entry")
    if xa_is_internal(x):
        raise ValueError(f"entry {x:#x} is an internal entry (entry & 3 == 2, xa_is_internal): "
                         "use a value entry (odd) or a pointer-like entry (e.g. pfn << 2)")
    return x


def _as_mark(mark):
    if isinstance(mark, str):
        m = MARK_NAMES.get(mark.lower())
        if m is None:
            raise ValueError(f"unknown mark {mark!r}: use 0/1/2 or 'dirty'/'writeback'/'towrite'")
        return m
    if not 0 <= as_int(mark, "mark") < XA_MAX_MARKS:
        raise ValueError(f"unknown mark {mark!r}: use 0/1/2 or 'dirty'/'writeback'/'towrite'")
    return int(mark)


# no_gc: only NumPy arrays hang off a pool, so it is in no cycle; never cleared by
# the cycle collector, its arrays outlive every XArray / PageCache whose __dealloc__
# gives nodes back to it (a tp_clear of the pool first would leave them dangling)
@cython.no_gc
cdef class XAPool:
    """A pool of xa_nodes (the radix_tree_node slab cache): arrays (slots in a GrowBuf,
    the rest NumPy's, or framemem's when not huge) that any
    number of XArrays (xarray_t) allocate nodes from. Grows by doubling, in place.
    ``huge``: the slots (from 4 MiB) on host memory advised MADV_HUGEPAGE, for pools
    read at random; False for pools filled and read a few neighbouring nodes at a time
    (the page cache's, file by file), where the host's first touch of each 2 MiB
    costs more than THP saves."""

    def __cinit__(self, i64 capacity=16, bint huge=True):
        self.huge = huge
        self.p.cap = 0
        self.p.used = 0
        self.p.free_head = -1
        self.p.nr_nodes = 0
        self.p.owner = <void *>self
        self.p.charge = NULL
        self.p.charge_ctx = NULL
        self.p.ahead = NULL
        if capacity > 0:
            self._resize(capacity)

    def _resize(self, i64 newcap):
        # Grow the small per-node arrays by allocating zeroed ones and copying the used
        # part (np.zeros: lazily zeroed memory), the slots in place (below); never-used
        # nodes read zero either way, which xa_node_alloc relies on. Nothing else holds
        # a view.
        cdef i64 old = self.p.cap
        cdef GrowBuf buf
        cdef cnp.npy_intp dims[1]
        if not old <= newcap <= XA_MAX_NODES:       # node ids are i32 (parent links)
            raise MemoryError(f"XAPool capacity {newcap} outside {old}..{XA_MAX_NODES}")
        # not huge: from framemem (4 KiB host pages, reused from a dropped Kernel's
        # pool), not NumPy (which advises MADV_HUGEPAGE from 4 MiB up)
        zeros = np.zeros if self.huge else lambda n, dtype: frame_array(n, dtype, "nodes")
        marks = zeros(newcap * XA_MAX_MARKS, dtype=np.uint64)
        parent = zeros(newcap, dtype=np.int32)
        parent.fill(-1)
        shift = zeros(newcap, dtype=np.uint8)
        shift.fill(NODE_FREE)
        offset = zeros(newcap, dtype=np.uint8)
        count = zeros(newcap, dtype=np.uint8)
        nrv = zeros(newcap, dtype=np.uint8)
        if old:
            marks[:self.p.used * XA_MAX_MARKS] = self._marks_a[:self.p.used * XA_MAX_MARKS]
            for new, cur in ((parent, self._parent_a), (shift, self._shift_a),
                             (offset, self._offset_a), (count, self._count_a), (nrv, self._nrv_a)):
                new[:old] = cur
        # The slots (512 of a node's 536 bytes) live in a GrowBuf (framemem): it grows
        # by mremap (the host moves the pages: no copy of the used part, no zeroing of
        # the new part, which comes zero-filled), so doubling the pool does not rewrite
        # it. _slots_a is a view over it, made anew at each growth (nothing else holds
        # one; the old view is stale once the buffer moves); the view's base keeps the
        # buffer alive. Last: nothing after the move can fail and leave p.slots stale.
        buf = self._slots_a.base if old else GrowBuf(0, self.huge)
        buf.grow(<size_t>newcap * XA_CHUNK_SIZE * sizeof(u64))
        dims[0] = newcap * XA_CHUNK_SIZE
        slots = cnp.PyArray_SimpleNewFromData(1, dims, cnp.NPY_UINT64, buf.p)
        cnp.set_array_base(slots, buf)
        self._slots_a, self._marks_a, self._parent_a, self._shift_a = slots, marks, parent, shift
        self._offset_a, self._count_a, self._nrv_a = offset, count, nrv
        self.p.slots = <u64 *>cnp.PyArray_DATA(self._slots_a)
        self.p.marks = <u64 *>cnp.PyArray_DATA(self._marks_a)
        self.p.parent = <i32 *>cnp.PyArray_DATA(self._parent_a)
        self.p.shift = <u8 *>cnp.PyArray_DATA(self._shift_a)
        self.p.offset = <u8 *>cnp.PyArray_DATA(self._offset_a)
        self.p.count = <u8 *>cnp.PyArray_DATA(self._count_a)
        self.p.nr_values = <u8 *>cnp.PyArray_DATA(self._nrv_a)
        self.p.cap = newcap
        if not self.huge:
            self.p.ahead = buf.populator()      # filled in order: populated ahead (if on)

    @property
    def nr_nodes(self):
        """Live nodes of every XArray using the pool."""
        return self.p.nr_nodes

    @property
    def capacity(self):
        return self.p.cap

    @property
    def slots_buffer(self):
        """The GrowBuf holding the nodes' slots (None before the first node array)."""
        return self._slots_a.base if self.p.cap else None

    @property
    def nbytes(self):
        """Bytes of the NumPy arrays behind the pool (the model's own memory)."""
        return self.p.cap * (XA_CHUNK_SIZE * 8 + XA_MAX_MARKS * 8 + 4 + 4)

    def check(self):
        """Pool accounting: free list sane, live + free = node ids used, nodes never
        used still zero."""
        cdef i64 nfree = 0, live = 0, k
        cdef i32 node = self.p.free_head
        while node >= 0:
            if self.p.shift[node] != NODE_FREE:
                raise AssertionError(f"node {node} on the free list is live")
            nfree += 1
            if nfree > self.p.used:
                raise AssertionError("free list loops")
            node = self.p.parent[node]
        for k in range(self.p.used):
            live += self.p.shift[k] != NODE_FREE
        if live != self.p.nr_nodes:
            raise AssertionError(f"pool: {live} live nodes, nr_nodes = {self.p.nr_nodes}")
        if nfree + live != self.p.used:
            raise AssertionError(f"{nfree} free + {live} live != {self.p.used} node ids")
        if self.p.cap and (self._slots_a[self.p.used * XA_CHUNK_SIZE:].any()
                           or self._marks_a[self.p.used * XA_MAX_MARKS:].any()):
            raise AssertionError("a never-used node is not zero (xa_node_alloc relies on it)")


cdef void xa_init(xarray_t *xa, xa_pool_t *pool) noexcept nogil:
    """xa_init: an empty XArray allocating its nodes from pool."""
    xa.pool = pool
    xa.head = 0
    xa.head_marks = 0
    xa.nr_nodes = 0
    xa.nr_nodes_allocated = 0
    xa.nr_nodes_freed = 0
    xa.hint = -1
    xa.hint_base = 0
    xa.root_unshrunk = False


cdef void xa_destroy(xarray_t *xa) noexcept nogil:
    """xa_destroy: free every node, leaving an empty array (entries are the caller's)."""
    if xa_is_node(xa.head):
        xas_free_nodes(xa, xa_to_node(xa.head))
    xa.head = 0
    xa.head_marks = 0
    xa.hint = -1
    xa.root_unshrunk = False


# ============================================================ C functions on xarray_t
cdef int xa_grow(xarray_t *xa) noexcept nogil:
    # NumPy allocation needs the GIL; growth doubles, so this is amortised
    # Whatever stops the growth (no memory, a pool at XA_MAX_NODES, a subclass that
    # refuses) is -ENOMEM to the caller: a noexcept function must not print
    # "Exception ignored" and carry on with a pool that did not grow.
    with gil:
        try:
            (<XAPool>xa.pool.owner)._resize(xa.pool.cap * 2 if xa.pool.cap else 16)
        except BaseException:
            return -cerrno.ENOMEM
    return 0 if xa.pool.used < xa.pool.cap else -cerrno.ENOMEM

cdef i32 xa_node_alloc(xarray_t *xa) noexcept nogil:
    # kmem_cache_alloc(radix_tree_node_cachep): a zeroed node (slots and marks clear);
    # the pool's charge (the kernel's slab pages) first: no slab page, no node (-ENOMEM)
    cdef i32 node
    if xa.pool.charge != NULL and xa.pool.charge(xa.pool.charge_ctx, 1) != 0:
        return -1
    if xa.pool.free_head >= 0:
        node = xa.pool.free_head
        xa.pool.free_head = xa.pool.parent[node]
        memset(&xa.pool.slots[<i64>node * XA_CHUNK_SIZE], 0, XA_CHUNK_SIZE * sizeof(u64))
        memset(&xa.pool.marks[<i64>node * XA_MAX_MARKS], 0, XA_MAX_MARKS * sizeof(u64))
    else:
        # a node never used: its slots and marks are still the zeros XAPool._resize
        # allocated them with
        if xa.pool.used == xa.pool.cap and xa_grow(xa) != 0:
            if xa.pool.charge != NULL:
                xa.pool.charge(xa.pool.charge_ctx, -1)
            return -1
        node = <i32>xa.pool.used
        xa.pool.used = xa.pool.used + 1
        if not (node & (XA_AHEAD_NODES - 1)) and xa.pool.ahead != NULL:
            populate_front(xa.pool.ahead, <u8 *>xa.pool.slots, <size_t>node * XA_CHUNK_SIZE * sizeof(u64),
                           <size_t>xa.pool.cap * XA_CHUNK_SIZE * sizeof(u64))
    xa.pool.parent[node] = -1
    xa.pool.shift[node] = 0
    xa.pool.offset[node] = 0
    xa.pool.count[node] = 0
    xa.pool.nr_values[node] = 0
    xa.nr_nodes = xa.nr_nodes + 1
    xa.pool.nr_nodes = xa.pool.nr_nodes + 1
    xa.nr_nodes_allocated = xa.nr_nodes_allocated + 1
    return node

cdef void xa_node_free(xarray_t *xa, i32 node) noexcept nogil:
    # xa_node_free (call_rcu -> radix_tree_node_rcu_free)
    assert xa.pool.shift[node] != NODE_FREE, "xa_node_free: node already free"
    if node == xa.hint:
        xa.hint = -1
    xa.pool.shift[node] = NODE_FREE
    xa.pool.parent[node] = xa.pool.free_head
    xa.pool.free_head = node
    xa.nr_nodes = xa.nr_nodes - 1
    xa.pool.nr_nodes = xa.pool.nr_nodes - 1
    xa.nr_nodes_freed = xa.nr_nodes_freed + 1
    if xa.pool.charge != NULL:
        xa.pool.charge(xa.pool.charge_ctx, -1)

# ---------------------------------------------------------------- walking
cdef u64 xas_start(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_start (always from a fresh state here)
    cdef u64 entry
    if xas.xa_node == XAS_ERROR:
        return 0
    entry = xa.head
    if not xa_is_node(entry):
        if xas.xa_index:
            xas.xa_node = XAS_BOUNDS
            return 0
    elif (xas.xa_index >> xa.pool.shift[xa_to_node(entry)]) > XA_CHUNK_MASK:
        xas.xa_node = XAS_BOUNDS
        return 0
    xas.xa_node = XAS_NULL
    return entry

cdef u64 xas_descend(xarray_t *xa, xa_state *xas, i32 node) noexcept nogil:
    # lib/xarray.c xas_descend
    cdef int off = (xas.xa_index >> xa.pool.shift[node]) & XA_CHUNK_MASK
    cdef u64 entry = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
    xas.xa_node = node
    while xa_is_sibling(entry):
        off = xa_to_sibling(entry)
        entry = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
    xas.xa_offset = off
    return entry

cdef u64 xas_load(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_load
    cdef u64 entry = xas_start(xa, xas)
    cdef i32 node
    while xa_is_node(entry):
        node = xa_to_node(entry)
        if xas.xa_shift > xa.pool.shift[node]:
            break
        entry = xas_descend(xa, xas, node)
        if xa.pool.shift[node] == 0:
            break
    return entry

cdef i32 xas_alloc(xarray_t *xa, xa_state *xas, int shift) noexcept nogil:
    # lib/xarray.c xas_alloc: parent = xas->xa_node, offset = xas->xa_offset
    cdef i32 parent = xas.xa_node
    cdef i32 node
    if xas_invalid(xas):
        return -1
    node = xa_node_alloc(xa)
    if node < 0:
        xas_set_err(xas, -cerrno.ENOMEM)
        # xas_create stops here: a root xas_expand already added stays (Linux shrinks
        # only on deletion), so check() may find a root holding only slot 0
        xa.root_unshrunk = True
        return -1
    if parent >= 0:
        xa.pool.offset[node] = xas.xa_offset
        xa.pool.count[parent] = xa.pool.count[parent] + (1)
        # XA_NODE_BUG_ON(node, parent->count > XA_CHUNK_SIZE) (PPSIZE_DEBUG builds)
        assert xa.pool.count[parent] <= XA_CHUNK_SIZE, "xas_alloc: parent count > 64"
    xa.pool.shift[node] = shift
    xa.pool.count[node] = 0
    xa.pool.nr_values[node] = 0
    xa.pool.parent[node] = parent if parent >= 0 else -1
    return node

cdef void xas_shrink(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_shrink: drop the root while it holds only slot 0
    cdef i32 node = xas.xa_node
    cdef u64 entry
    xa.root_unshrunk = False
    while True:
        if xa.pool.count[node] != 1:
            break
        entry = xa.pool.slots[<i64>node * XA_CHUNK_SIZE]
        if not entry:
            break
        if not xa_is_node(entry) and xa.pool.shift[node]:
            break
        xas.xa_node = XAS_BOUNDS
        xa.head = entry          # xa_flags marks already equal slot 0's marks
        xa.pool.count[node] = 0
        xa.pool.nr_values[node] = 0
        xa_node_free(xa, node)
        if not xa_is_node(entry):
            break
        node = xa_to_node(entry)
        xa.pool.parent[node] = -1

cdef void xas_delete_node(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_delete_node: free empty nodes up the tree, then shrink
    cdef i32 node = xas.xa_node
    cdef i32 parent
    while True:
        assert xa.pool.count[node] <= XA_CHUNK_SIZE, "xas_delete_node: count > 64"
        if xa.pool.count[node]:
            break
        parent = xa.pool.parent[node]
        xas.xa_node = parent if parent >= 0 else XAS_NULL
        xas.xa_offset = xa.pool.offset[node]
        xa_node_free(xa, node)
        if parent < 0:
            xa.head = 0
            xas.xa_node = XAS_BOUNDS
            return
        xa.pool.slots[<i64>parent * XA_CHUNK_SIZE + xas.xa_offset] = 0
        xa.pool.count[parent] = xa.pool.count[parent] - (1)
        node = parent
    if xa.pool.parent[node] < 0:
        xas.xa_node = node
        xas_shrink(xa, xas)

cdef void xas_free_nodes(xarray_t *xa, i32 top) noexcept nogil:
    # lib/xarray.c xas_free_nodes: free this subtree (already unlinked)
    cdef int off = 0
    cdef i32 node = top
    cdef i32 parent
    cdef u64 entry
    while True:
        entry = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
        if xa.pool.shift[node] and xa_is_node(entry):
            node = xa_to_node(entry)
            off = 0
            continue
        off += 1
        while off == XA_CHUNK_SIZE:
            parent = xa.pool.parent[node]
            off = xa.pool.offset[node] + 1
            xa.pool.count[node] = 0
            xa.pool.nr_values[node] = 0
            xa_node_free(xa, node)
            if node == top:
                return
            node = parent

cdef int xas_expand(xarray_t *xa, xa_state *xas, u64 head) noexcept nogil:
    # lib/xarray.c xas_expand: add nodes above the head until max is covered
    cdef i32 node = -1
    cdef int shift = 0
    cdef u64 max = xas.xa_index, mask
    cdef int mark
    # xas_max: a multi-index entry at index 0 must not live in xa_head
    if xas.xa_shift or xas.xa_sibs:
        mask = ((<u64>xas.xa_sibs + 1) << xas.xa_shift) - 1
        max |= mask
        if mask == max:
            max += 1
    if not head:
        if max == 0:
            return 0
        while (max >> shift) >= XA_CHUNK_SIZE:
            shift += XA_CHUNK_SHIFT
        return shift + XA_CHUNK_SHIFT
    elif xa_is_node(head):
        node = xa_to_node(head)
        shift = xa.pool.shift[node] + XA_CHUNK_SHIFT
    xas.xa_node = XAS_NULL
    while max > (max_index_of(xa.pool.shift[xa_to_node(head)]) if xa_is_node(head) else 0):
        node = xas_alloc(xa, xas, shift)
        if node < 0:
            return -cerrno.ENOMEM
        xa.pool.count[node] = 1
        if xa_is_value(head):
            xa.pool.nr_values[node] = 1
        xa.pool.slots[<i64>node * XA_CHUNK_SIZE] = head
        # Propagate the aggregated mark info to the new child
        for mark in range(XA_MAX_MARKS):
            if (xa.head_marks >> mark) & 1:
                xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] = xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] | (1)
        if xa_is_node(head):
            xa.pool.offset[xa_to_node(head)] = 0
            xa.pool.parent[xa_to_node(head)] = node
        head = xa_mk_node(node)
        xa.head = head
        shift += XA_CHUNK_SHIFT
    xas.xa_node = node if node >= 0 else XAS_NULL
    return shift

cdef u64 xas_create(xarray_t *xa, xa_state *xas, bint allow_root) noexcept nogil:
    # lib/xarray.c xas_create: walk down, allocating nodes, to the slot for xas
    cdef u64 entry
    cdef i32 node = xas.xa_node
    cdef i32 slot_node          # -1: the slot is xa_head
    cdef int slot_off = 0
    cdef int shift
    cdef int order = xas.xa_shift
    if xas_top(node):
        entry = xa.head
        xas.xa_node = XAS_NULL
        shift = xas_expand(xa, xas, entry)
        if shift < 0:
            xas_set_err(xas, shift)
            return 0
        if not shift and not allow_root:
            shift = XA_CHUNK_SHIFT
        entry = xa.head
        slot_node = -1
    elif node == XAS_ERROR:
        return 0
    else:
        shift = xa.pool.shift[node]
        slot_node = node
        slot_off = xas.xa_offset
        entry = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + slot_off]
    while shift > order:
        shift -= XA_CHUNK_SHIFT
        if not entry:
            node = xas_alloc(xa, xas, shift)
            if node < 0:
                break
            if slot_node < 0:
                xa.head = xa_mk_node(node)
            else:
                xa.pool.slots[<i64>slot_node * XA_CHUNK_SIZE + slot_off] = xa_mk_node(node)
        elif xa_is_node(entry):
            node = xa_to_node(entry)
        else:
            break
        entry = xas_descend(xa, xas, node)
        slot_node = node
        slot_off = xas.xa_offset
    return entry

cdef void update_node(xarray_t *xa, xa_state *xas, i32 node, int count, int values) noexcept nogil:
    # lib/xarray.c update_node
    if node < 0 or (not count and not values):
        return
    xa.pool.count[node] = xa.pool.count[node] + (count)
    xa.pool.nr_values[node] = xa.pool.nr_values[node] + (values)
    assert xa.pool.count[node] <= XA_CHUNK_SIZE, "update_node: count > 64"
    assert xa.pool.nr_values[node] <= xa.pool.count[node], "update_node: nr_values > count"
    if count < 0:
        xas_delete_node(xa, xas)

cdef u64 xas_store(xarray_t *xa, xa_state *xas, u64 entry) noexcept nogil:
    # lib/xarray.c xas_store
    cdef i32 node
    cdef int off, max, count = 0, values = 0, o2
    cdef u64 first, next, cur
    cdef bint value = xa_is_value(entry)
    if entry:
        first = xas_create(xa, xas, True)
    else:
        first = xas_load(xa, xas)
    if xas_invalid(xas):
        return first
    node = xas.xa_node
    if node >= 0 and xas.xa_shift < xa.pool.shift[node]:
        xas.xa_sibs = 0
    if first == entry and not xas.xa_sibs:
        return first
    next = first
    off = xas.xa_offset
    max = xas.xa_offset + xas.xa_sibs
    if node >= 0 and xas.xa_sibs:
        xas_squash_marks(xa, xas)
    if not entry:
        xas_init_marks(xa, xas)
    while True:
        # Must clear the marks before setting the entry to NULL (done above)
        if node < 0:
            xa.head = entry
        else:
            xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off] = entry
        if xa_is_node(next) and (node < 0 or xa.pool.shift[node]):
            xas_free_nodes(xa, xa_to_node(next))
        if node < 0:
            break
        count += (next == 0) - (entry == 0)
        values += (not xa_is_value(first)) - (not value)
        if entry:
            if off == max:
                break
            if not xa_is_sibling(entry):
                entry = xa_mk_sibling(xas.xa_offset)
        else:
            if off == XA_CHUNK_MASK:
                break
        off += 1
        next = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
        if not xa_is_sibling(next):
            if not entry and off > max:
                break
            first = next
    if entry and node >= 0:
        # ppsize: a smaller store into a larger multi-index entry leaves its siblings in
        # place; keep nr_values exact for them (Linux accounts the canonical slot only)
        o2 = off + 1
        while o2 < XA_CHUNK_SIZE:
            cur = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + o2]
            if not xa_is_sibling(cur) or xa_to_sibling(cur) != xas.xa_offset:
                break
            values += (not xa_is_value(first)) - (not value)
            o2 += 1
    update_node(xa, xas, node, count, values)
    return first

# ---------------------------------------------------------------- marks
cdef void xas_squash_marks(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_squash_marks: merge the marks of the range onto the first slot
    cdef int mark
    cdef u64 rng
    cdef u64 *m
    if not xas.xa_sibs:
        return
    rng = (((<u64>1) << xas.xa_sibs) - 1) << (xas.xa_offset + 1)
    for mark in range(XA_MAX_MARKS):
        m = &xa.pool.marks[<i64>xas.xa_node * XA_MAX_MARKS + mark]
        if m[0] & rng:
            m[0] = (m[0] & ~rng) | ((<u64>1) << xas.xa_offset)

cdef bint xas_get_mark(xarray_t *xa, xa_state *xas, int mark) noexcept nogil:
    # lib/xarray.c xas_get_mark
    if xas_invalid(xas):
        return False
    if xas.xa_node < 0:
        return (xa.head_marks >> mark) & 1
    return (xa.pool.marks[<i64>xas.xa_node * XA_MAX_MARKS + mark] >> xas.xa_offset) & 1

cdef void xas_set_mark(xarray_t *xa, xa_state *xas, int mark) noexcept nogil:
    # lib/xarray.c xas_set_mark: set on the entry and every ancestor
    cdef i32 node = xas.xa_node
    cdef int off = xas.xa_offset
    cdef u64 bit
    cdef u64 *m
    if xas_invalid(xas):
        return
    while node >= 0:
        m = &xa.pool.marks[<i64>node * XA_MAX_MARKS + mark]
        bit = (<u64>1) << off
        if m[0] & bit:
            return
        m[0] |= bit
        off = xa.pool.offset[node]
        node = xa.pool.parent[node]
    xa.head_marks = xa.head_marks | ((1 << mark))

cdef void xas_clear_mark(xarray_t *xa, xa_state *xas, int mark) noexcept nogil:
    # lib/xarray.c xas_clear_mark: clear up the tree while no sibling slot has it
    cdef i32 node = xas.xa_node
    cdef int off = xas.xa_offset
    cdef u64 bit
    cdef u64 *m
    if xas_invalid(xas):
        return
    while node >= 0:
        m = &xa.pool.marks[<i64>node * XA_MAX_MARKS + mark]
        bit = (<u64>1) << off
        if not (m[0] & bit):
            return
        m[0] &= ~bit
        if m[0]:
            return
        off = xa.pool.offset[node]
        node = xa.pool.parent[node]
    xa.head_marks = xa.head_marks & (~(1 << mark))

cdef void xas_init_marks(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_init_marks (no XA_FREE_MARK tracking)
    cdef int mark
    for mark in range(XA_MAX_MARKS):
        xas_clear_mark(xa, xas, mark)

# ---------------------------------------------------------------- conflicts, order
cdef u64 xas_find_conflict(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_find_conflict: next present entry in the range of xas
    cdef u64 curr
    if xas.xa_node == XAS_ERROR or xas.xa_node == XAS_NULL:
        return 0
    if xas_top(xas.xa_node):
        curr = xas_start(xa, xas)
        if not curr:
            return 0
        while xa_is_node(curr):
            curr = xas_descend(xa, xas, xa_to_node(curr))
        if curr:
            return curr
    if xa.pool.shift[xas.xa_node] > xas.xa_shift:
        return 0
    while True:
        if xa.pool.shift[xas.xa_node] == xas.xa_shift:
            if (xas.xa_offset & xas.xa_sibs) == xas.xa_sibs:
                break
        elif xas.xa_offset == XA_CHUNK_MASK:
            xas.xa_offset = xa.pool.offset[xas.xa_node]
            xas.xa_node = xa.pool.parent[xas.xa_node]
            if xas.xa_node < 0:
                xas.xa_node = XAS_NULL
                break
            continue
        xas.xa_offset += 1
        curr = xa.pool.slots[<i64>xas.xa_node * XA_CHUNK_SIZE + xas.xa_offset]
        if xa_is_sibling(curr):
            continue
        while xa_is_node(curr):
            xas.xa_node = xa_to_node(curr)
            xas.xa_offset = 0
            curr = xa.pool.slots[<i64>xas.xa_node * XA_CHUNK_SIZE]
        if curr:
            return curr
    xas.xa_offset -= xas.xa_sibs
    return 0

cdef int xas_get_order(xarray_t *xa, xa_state *xas) noexcept nogil:
    # lib/xarray.c xas_get_order
    cdef int order = 0
    cdef int slot
    if xas.xa_node < 0:
        return 0
    while True:
        slot = xas.xa_offset + (1 << order)
        if slot >= XA_CHUNK_SIZE:
            break
        if not xa_is_sibling(xa.pool.slots[<i64>xas.xa_node * XA_CHUNK_SIZE + slot]):
            break
        order += 1
    return order + xa.pool.shift[xas.xa_node]

# ---------------------------------------------------------------- splitting
cdef void node_set_marks(xarray_t *xa, i32 node, int off, i32 child, int sibs, int marks) noexcept nogil:
    # lib/xarray.c node_set_marks (+ node_mark_slots)
    cdef int mark, i
    for mark in range(XA_MAX_MARKS):
        if marks & (1 << mark):
            xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] = xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] | ((<u64>1) << off)
            if child >= 0:
                if sibs == 0:
                    xa.pool.marks[<i64>child * XA_MAX_MARKS + mark] = ~(<u64>0)
                else:
                    i = 0
                    while i < XA_CHUNK_SIZE:
                        xa.pool.marks[<i64>child * XA_MAX_MARKS + mark] = xa.pool.marks[<i64>child * XA_MAX_MARKS + mark] | ((<u64>1) << i)
                        i += sibs + 1

cdef int node_get_marks(xarray_t *xa, i32 node, int off) noexcept nogil:
    cdef int mark, marks = 0
    for mark in range(XA_MAX_MARKS):
        if (xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] >> off) & 1:
            marks |= 1 << mark
    return marks

cdef i32 xa_split_child(xarray_t *xa, xa_state *xas, i32 node, int off, u64 entry, int marks) noexcept nogil:
    # __xas_init_node_for_split + the child set-up in xas_split / xas_try_split
    cdef i32 child = xa_node_alloc(xa)
    cdef int i
    cdef u64 sibling = 0
    cdef int mask = xas.xa_sibs
    if child < 0:
        return -1
    for i in range(XA_CHUNK_SIZE):
        if (i & mask) == 0:
            xa.pool.slots[<i64>child * XA_CHUNK_SIZE + i] = entry
            sibling = xa_mk_sibling(i)
        else:
            xa.pool.slots[<i64>child * XA_CHUNK_SIZE + i] = sibling
    xa.pool.shift[child] = xa.pool.shift[node] - XA_CHUNK_SHIFT
    xa.pool.offset[child] = off
    xa.pool.count[child] = XA_CHUNK_SIZE
    xa.pool.nr_values[child] = XA_CHUNK_SIZE if xa_is_value(entry) else 0
    xa.pool.parent[child] = node
    node_set_marks(xa, node, off, child, xas.xa_sibs, marks)
    xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off] = xa_mk_node(child)
    if xa.pool.parent[node] < 0 and xa.pool.count[node] == 1:
        xa.root_unshrunk = True     # xas_split/xas_try_split never call xas_shrink
    return child

cdef void xas_split(xarray_t *xa, xa_state *xas, u64 entry, int order) noexcept nogil:
    # lib/xarray.c xas_split_alloc + xas_split: split into entries of xas's order
    cdef int sibs = (1 << (order % XA_CHUNK_SHIFT)) - 1
    cdef int off, canon, marks
    cdef int values = 0
    cdef i32 node
    cdef u64 curr
    # xas_split_alloc: "XXX: no support for splitting really large entries yet"
    if xas.xa_shift + 2 * XA_CHUNK_SHIFT <= order:
        xas_set_err(xas, -cerrno.ENOMEM)
        return
    curr = xas_load(xa, xas)
    node = xas.xa_node
    if xas_top(node):
        return
    marks = node_get_marks(xa, node, xas.xa_offset)
    off = xas.xa_offset + sibs
    while True:
        if xas.xa_shift < xa.pool.shift[node]:
            if xa_split_child(xa, xas, node, off, entry, marks) < 0:
                xas_set_err(xas, -cerrno.ENOMEM)
                return
            if xa_is_value(curr):
                values -= 1
        else:
            canon = off - xas.xa_sibs
            node_set_marks(xa, node, canon, -1, 0, marks)
            xa.pool.slots[<i64>node * XA_CHUNK_SIZE + canon] = entry
            while off > canon:
                xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off] = xa_mk_sibling(canon)
                off -= 1
            values += (xa_is_value(entry) - xa_is_value(curr)) * (xas.xa_sibs + 1)
        if off <= xas.xa_offset:
            break
        off -= 1
    xa.pool.nr_values[node] = xa.pool.nr_values[node] + (values)

cdef void xas_try_split(xarray_t *xa, xa_state *xas, u64 entry, int order) noexcept nogil:
    # lib/xarray.c xas_try_split: at most one new node (GFP_NOWAIT), else -EINVAL
    cdef int sibs = (1 << (order % XA_CHUNK_SHIFT)) - 1
    cdef int off, canon, marks, expected_sibs
    cdef int values = 0
    cdef i32 node
    cdef u64 curr = xas_load(xa, xas)
    node = xas.xa_node
    if xas_top(node):
        return
    marks = node_get_marks(xa, node, xas.xa_offset)
    off = xas.xa_offset + sibs
    if xas.xa_shift < xa.pool.shift[node]:
        expected_sibs = (1 << ((order - 1) % XA_CHUNK_SHIFT)) - 1
        # No support for splitting sibling entries (horizontally) or cascade
        # split (vertically), which requires two or more new xa_nodes.
        if sibs or xas.xa_sibs != expected_sibs:
            xas_set_err(xas, -cerrno.EINVAL)
            return
        if xa_split_child(xa, xas, node, off, entry, marks) < 0:
            xas_set_err(xas, -cerrno.ENOMEM)
            return
        if xa_is_value(curr):
            values -= 1
    else:
        while True:
            canon = off - xas.xa_sibs
            node_set_marks(xa, node, canon, -1, 0, marks)
            xa.pool.slots[<i64>node * XA_CHUNK_SIZE + canon] = entry
            while off > canon:
                xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off] = xa_mk_sibling(canon)
                off -= 1
            values += (xa_is_value(entry) - xa_is_value(curr)) * (xas.xa_sibs + 1)
            if off <= xas.xa_offset:
                break
            off -= 1
    xa.pool.nr_values[node] = xa.pool.nr_values[node] + (values)

# ---------------------------------------------------------------- C interface
cdef u64 xa_load(xarray_t *xa, u64 index) noexcept nogil:
    """xa_load: the entry covering index (canonical entry of a multi-index), 0 if none."""
    cdef u64 e
    cdef i32 node
    cdef int sh, off
    cdef i32 hint = xa.hint
    if hint >= 0 and (index ^ xa.hint_base) < XA_CHUNK_SIZE:
        # ppsize lookup cache: a live shift-0 node is authoritative for its 64 indices
        assert xa.pool.shift[hint] == 0, "load: stale lookup hint"
        e = xa.pool.slots[<i64>hint * XA_CHUNK_SIZE + (index & XA_CHUNK_MASK)]
        if xa_is_sibling(e):
            e = xa.pool.slots[<i64>hint * XA_CHUNK_SIZE + xa_to_sibling(e)]
        return e
    e = xa.head
    if not xa_is_node(e):
        return e if index == 0 else 0
    node = xa_to_node(e)
    if (index >> xa.pool.shift[node]) > XA_CHUNK_MASK:
        return 0
    while True:
        sh = xa.pool.shift[node]
        off = (index >> sh) & XA_CHUNK_MASK
        e = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
        if xa_is_sibling(e):
            e = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + xa_to_sibling(e)]
        if sh == 0:
            xa.hint = node
            xa.hint_base = index & ~(<u64>XA_CHUNK_MASK)
            return e
        if not xa_is_node(e):
            return e
        node = xa_to_node(e)

cdef inline bint xa_store_leaf_slot(xarray_t *xa, i32 leaf, u64 index, u64 entry) noexcept nogil:
    # Exactly what xas_store does for one non-sibling slot of a leaf: write, count +=
    # !old, nr_values += is_value(entry) - is_value(old); marks unchanged (no squash
    # for a single slot). False (nothing done) if the slot belongs to a multi-index
    # entry: xas_store's general path handles that.
    cdef u64 *p = &xa.pool.slots[<i64>leaf * XA_CHUNK_SIZE + (index & XA_CHUNK_MASK)]
    cdef u64 old = p[0]
    if xa_is_sibling(old) or ((index & XA_CHUNK_MASK) < XA_CHUNK_MASK and xa_is_sibling(p[1])):
        return False
    p[0] = entry
    if not old:
        xa.pool.count[leaf] = xa.pool.count[leaf] + 1
    xa.pool.nr_values[leaf] = xa.pool.nr_values[leaf] + (<int>xa_is_value(entry) - <int>xa_is_value(old))
    return True

cdef int xa_store(xarray_t *xa, u64 index, int order, u64 entry) noexcept nogil:
    """xa_store_order: store entry (0 = erase) of 2**order indices at index rounded down.

    Returns 0, or -EINVAL for an internal entry or a bad order (as xa_store)."""
    cdef xa_state xas
    cdef i32 hint = xa.hint
    if xa_is_internal(entry) or order < 0 or order > 63:
        return -cerrno.EINVAL
    if (order == 0 and entry and hint >= 0 and (index ^ xa.hint_base) < XA_CHUNK_SIZE
            and xa_store_leaf_slot(xa, hint, index, entry)):
        return 0
    xas_set_order(&xas, index, order)
    xas_store(xa, &xas, entry)
    if entry and xas.xa_node >= 0 and xa.pool.shift[xas.xa_node] == 0:
        xa.hint = xas.xa_node              # the leaf just stored into
        xa.hint_base = index & ~(<u64>XA_CHUNK_MASK)
    return xas.err

cdef int xa_add(xarray_t *xa, u64 index, int order, u64 entry) noexcept nogil:
    """__filemap_add_folio: store a real entry of order at index (rounded down) unless a
    real entry exists in the range (-EEXIST, nothing changed); value (shadow) entries
    in the range are replaced, a larger one is split first with xas_try_split."""
    cdef xa_state xas
    cdef u64 e, old = 0
    cdef int cur_order = -1, split_order
    if xa_is_internal(entry) or entry == 0 or order < 0 or order > 63:
        return -cerrno.EINVAL
    xas_set_order(&xas, index, order)
    index = xas.xa_index
    # xas_for_each_conflict
    while True:
        e = xas_find_conflict(xa, &xas)
        if not e:
            break
        old = e
        if not xa_is_value(e):
            return -cerrno.EEXIST
        # If a larger entry exists, it will be the first and only entry iterated.
        if cur_order == -1:
            cur_order = xas_get_order(xa, &xas)
    if old:
        if cur_order > 0 and cur_order > order:
            split_order = max(order, xas_try_split_min_order(cur_order))
            while cur_order > order:
                xas_set_order(&xas, index, split_order)
                xas_try_split(xa, &xas, old, cur_order)
                if xas.err:
                    return xas.err
                cur_order = split_order
                split_order = max(xas_try_split_min_order(split_order), order)
            xas.xa_node = XAS_RESTART        # xas_reset
    xas_store(xa, &xas, entry)
    return xas.err

cdef u64 xa_erase(xarray_t *xa, u64 index) noexcept nogil:
    """xa_erase: erase the entry covering index (all of a multi-index entry)."""
    cdef xa_state xas
    xas_set_order(&xas, index, 0)
    return xas_store(xa, &xas, 0)

cdef int xa_entry_order(xarray_t *xa, u64 index) noexcept nogil:
    """xa_get_order, but -1 when no entry covers index."""
    cdef xa_state xas
    xas_set_order(&xas, index, 0)
    if not xas_load(xa, &xas):
        return -1
    return xas_get_order(xa, &xas)

cdef u64 xa_find_range(xarray_t *xa, u64 start, u64 max, int mark, u64 *out_index, int *out_order) noexcept nogil:
    # After xas_find / xas_find_marked: the entry covering start, else the first entry
    # (with mark if mark >= 0) whose first index is in (start, max]. Reports the
    # entry's first index and order.
    cdef u64 head = xa.head, e, nstart = 0, sstart, bits
    cdef i32 node
    cdef int sh, off, k
    cdef bint first = True
    if start > max or head == 0:
        return 0
    if mark >= 0 and not ((xa.head_marks >> mark) & 1):
        return 0
    if not xa_is_node(head):
        if start != 0:
            return 0
        out_index[0] = 0
        out_order[0] = 0
        return head
    node = xa_to_node(head)
    sh = xa.pool.shift[node]
    if (start >> sh) > XA_CHUNK_MASK:
        return 0
    off = (start >> sh) & XA_CHUNK_MASK
    while True:
        if off >= XA_CHUNK_SIZE or (sh >= 60 and off >= 16):
            if xa.pool.parent[node] < 0:
                return 0
            off = xa.pool.offset[node]
            node = xa.pool.parent[node]
            sh = xa.pool.shift[node]
            nstart -= (<u64>off) << sh
            off += 1
            first = False
            continue
        if mark >= 0 and not first:
            bits = xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] >> off
            if not bits:
                off = XA_CHUNK_SIZE
                continue
            off += ppsize_ctz64(bits)
        e = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
        if first and xa_is_sibling(e):
            off = xa_to_sibling(e)
            e = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
        sstart = nstart + ((<u64>off) << sh)
        if not first and sstart > max:
            return 0
        if (not e or xa_is_sibling(e) or
                (mark >= 0 and not ((xa.pool.marks[<i64>node * XA_MAX_MARKS + mark] >> off) & 1))):
            off += 1
            first = False
            continue
        if xa_is_node(e):
            node = xa_to_node(e)
            nstart = sstart
            sh = xa.pool.shift[node]
            off = ((start >> sh) & XA_CHUNK_MASK) if first else 0
            continue
        k = 0
        while off + (1 << k) < XA_CHUNK_SIZE and xa_is_sibling(
                xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off + (1 << k)]):
            k += 1
        out_index[0] = sstart
        out_order[0] = sh + k
        return e

cdef u64 xa_find(xarray_t *xa, u64 *index, u64 max) noexcept nogil:
    """xa_find(XA_PRESENT): the entry covering *index, else the first entry starting in
    (*index, max]; *index is set to the entry's first index. 0 if none."""
    cdef int order
    return xa_find_range(xa, index[0], max, -1, index, &order)

cdef u64 xa_find_marked(xarray_t *xa, u64 *index, u64 max, int mark) noexcept nogil:
    """xa_find(mark): as find(), among entries with the mark."""
    cdef int order
    if mark < 0 or mark >= XA_MAX_MARKS:
        return 0
    return xa_find_range(xa, index[0], max, mark, index, &order)

cdef inline bint xas_load_for_mark(xarray_t *xa, xa_state *xas, u64 index, int mark) noexcept nogil:
    # the start of __xa_set_mark / __xa_clear_mark: a valid mark and an entry covering index
    if mark < 0 or mark >= XA_MAX_MARKS:
        return False
    xas_set_order(xas, index, 0)
    return xas_load(xa, xas) != 0

cdef void xa_set_mark(xarray_t *xa, u64 index, int mark) noexcept nogil:
    """__xa_set_mark: only if an entry covers index."""
    cdef xa_state xas
    if xas_load_for_mark(xa, &xas, index, mark):
        xas_set_mark(xa, &xas, mark)

cdef void xa_clear_mark(xarray_t *xa, u64 index, int mark) noexcept nogil:
    """__xa_clear_mark."""
    cdef xa_state xas
    if xas_load_for_mark(xa, &xas, index, mark):
        xas_clear_mark(xa, &xas, mark)

cdef bint xa_get_mark(xarray_t *xa, u64 index, int mark) noexcept nogil:
    """xa_get_mark."""
    cdef xa_state xas
    cdef u64 entry
    if mark < 0 or mark >= XA_MAX_MARKS:
        return False
    xas_set_order(&xas, index, 0)
    entry = xas_start(xa, &xas)
    while xas_get_mark(xa, &xas, mark):
        if not xa_is_node(entry):
            return True
        entry = xas_descend(xa, &xas, xa_to_node(entry))
    return False

cdef int xa_split(xarray_t *xa, u64 index, int new_order) noexcept nogil:
    """xas_split_alloc + xas_split of the entry covering index into entries of
    new_order (value and marks copied). 0; -EINVAL if no entry or new_order is not
    below its order; -ENOMEM where xas_split_alloc refuses (order >= shift of
    new_order + 12: 'no support for splitting really large entries')."""
    cdef xa_state xas
    cdef int order
    cdef u64 entry
    if new_order < 0 or new_order > 63:
        return -cerrno.EINVAL
    xas_set_order(&xas, index, 0)
    entry = xas_load(xa, &xas)
    if not entry:
        return -cerrno.EINVAL
    order = xas_get_order(xa, &xas)
    if new_order >= order:
        return -cerrno.EINVAL
    xas_set_order(&xas, index, new_order)
    xas_split(xa, &xas, entry, order)
    return xas.err

cdef int xa_try_split(xarray_t *xa, u64 index, int new_order) noexcept nogil:
    """xas_try_split: as split() but with at most one new node: new_order must be at
    least xas_try_split_min_order(order), else -EINVAL and nothing changes."""
    cdef xa_state xas
    cdef int order
    cdef u64 entry
    if new_order < 0 or new_order > 63:
        return -cerrno.EINVAL
    xas_set_order(&xas, index, 0)
    entry = xas_load(xa, &xas)
    if not entry:
        return -cerrno.EINVAL
    order = xas_get_order(xa, &xas)
    if new_order >= order or new_order < xas_try_split_min_order(order):
        return -cerrno.EINVAL
    xas_set_order(&xas, index, new_order)
    xas_try_split(xa, &xas, entry, order)
    return xas.err

cdef inline i32 xa_walk_existing(xarray_t *xa, u64 index) noexcept nogil:
    # store_batch, first pass: follow the existing tree (read only) towards index, to
    # its leaf or the deepest node on the way, and prefetch the slot (and the node's
    # counters) the store will write: the misses of a group of stores overlap.
    # -1: index lies outside the tree (xas_expand's business).
    cdef xa_pool_t *pool = xa.pool
    cdef u64 e
    cdef i32 node
    cdef int sh
    if xa.hint >= 0 and (index ^ xa.hint_base) < XA_CHUNK_SIZE:
        node = xa.hint
    else:
        e = xa.head
        if not xa_is_node(e):
            return -1
        node = xa_to_node(e)
        if (index >> pool.shift[node]) > XA_CHUNK_MASK:
            return -1
        while True:
            sh = pool.shift[node]
            if sh == 0:
                break
            e = pool.slots[<i64>node * XA_CHUNK_SIZE + ((index >> sh) & XA_CHUNK_MASK)]
            if not xa_is_node(e):
                break
            node = xa_to_node(e)
    ppsize_prefetchw(&pool.slots[<i64>node * XA_CHUNK_SIZE +
                                 ((index >> pool.shift[node]) & XA_CHUNK_MASK)])
    ppsize_prefetchw(&pool.count[node])
    ppsize_prefetchw(&pool.nr_values[node])
    return node

cdef i32 xa_create_path(xarray_t *xa, i32 node, u64 index) noexcept nogil:
    # xas_create from node down to the leaf of index, allocating the missing nodes
    # (xas_alloc: offset, parent, count[parent]++; no marks). -1 if a non-node entry
    # is on the way (a multi-index entry above the leaves: xas_store's general path)
    # or a node cannot be allocated.
    cdef xa_pool_t *pool
    cdef i32 child
    cdef int sh = xa.pool.shift[node], off
    cdef u64 e
    while sh > 0:
        pool = xa.pool                          # (xa_node_alloc may grow the pool)
        off = (index >> sh) & XA_CHUNK_MASK
        e = pool.slots[<i64>node * XA_CHUNK_SIZE + off]
        if not e:
            child = xa_node_alloc(xa)
            if child < 0:
                return -1
            pool = xa.pool
            pool.shift[child] = sh - XA_CHUNK_SHIFT
            pool.offset[child] = off
            pool.parent[child] = node
            pool.count[node] = pool.count[node] + 1
            pool.slots[<i64>node * XA_CHUNK_SIZE + off] = xa_mk_node(child)
            node = child
        elif xa_is_node(e):
            node = xa_to_node(e)
        else:
            return -1
        sh = pool.shift[node]
    return node

cdef i64 xa_store_leaf_run(xarray_t *xa, i32 leaf, u64 base, const u64 *idx, const u64 *ent,
                           i64 n) noexcept nogil:
    # The stores that follow one into leaf (first index base), while they stay in it:
    # xa_store_leaf_slot with the leaf's slots and counters held locally. Returns how
    # many were done.
    cdef u64 *slots = &xa.pool.slots[<i64>leaf * XA_CHUNK_SIZE]
    cdef u64 old, entry
    cdef int off, added = 0, values = 0
    cdef i64 i = 0
    while i < n:
        entry = ent[i]
        if (idx[i] ^ base) >= XA_CHUNK_SIZE or not entry or xa_is_internal(entry):
            break
        off = idx[i] & XA_CHUNK_MASK
        old = slots[off]
        if xa_is_sibling(old) or (off < XA_CHUNK_MASK and xa_is_sibling(slots[off + 1])):
            break
        slots[off] = entry
        added += old == 0
        values += <int>xa_is_value(entry) - <int>xa_is_value(old)
        i += 1
    xa.pool.count[leaf] = xa.pool.count[leaf] + added
    xa.pool.nr_values[leaf] = xa.pool.nr_values[leaf] + values
    return i

cdef void xa_store_batch(xarray_t *xa, const u64 *idx, const u64 *ent, i64 n, int order, i64 *nerr) noexcept nogil:
    # xa_store for every (idx[k], ent[k]) in order. Order-0 stores go in groups of
    # STORE_GROUP: a read-only pass walks and prefetches every store's path, then the
    # stores are done in order from where each walk stopped. An order-0 store of an
    # entry never frees a node, so the nodes the pass found stay valid; an erase
    # (entry 0) may, and sends the rest of its group back to the full xa_store.
    cdef i64 k = 0, j, m, m2
    cdef i32 cur[STORE_GROUP]
    cdef i32 node
    cdef u64 index, entry
    if order != 0:
        for k in range(n):
            if xa_store(xa, idx[k], order, ent[k]) != 0:
                nerr[0] += 1
        return
    while k < n:
        m = n - k if n - k < STORE_GROUP else STORE_GROUP
        for j in range(m):
            if j and (idx[k + j] ^ idx[k + j - 1]) < XA_CHUNK_SIZE:
                cur[j] = cur[j - 1]             # same leaf as the previous store
            else:
                cur[j] = xa_walk_existing(xa, idx[k + j])
        j = 0
        while j < m:
            index = idx[k + j]
            entry = ent[k + j]
            if entry and not xa_is_internal(entry):
                node = xa.hint                  # the leaf the previous store wrote
                if node < 0 or (index ^ xa.hint_base) >= XA_CHUNK_SIZE:
                    node = cur[j]
                    if node >= 0 and xa.pool.shift[node] != 0:
                        # xas_create below the node the walk stopped at (a leaf
                        # found already needs none: no call)
                        node = xa_create_path(xa, node, index)
                if node >= 0 and xa_store_leaf_slot(xa, node, index, entry):
                    xa.hint = node
                    xa.hint_base = index & ~(<u64>XA_CHUNK_MASK)
                    j += 1
                    if j < m and (idx[k + j] ^ index) < XA_CHUNK_SIZE:
                        j += xa_store_leaf_run(xa, node, xa.hint_base, idx + k + j, ent + k + j, m - j)
                    continue
            if xa_store(xa, index, 0, entry) != 0:
                nerr[0] += 1
            if not entry:
                for m2 in range(j + 1, m):
                    cur[m2] = -1
            j += 1
        k += m


@cython.no_gc_clear                 # __dealloc__ gives the nodes back to self.pool
cdef class XArray:
    """An XArray of u64 entries (0 = empty; odd = value entry; (e & 3) == 2 refused).

    Its state is the C struct `xa` (xarray_t); nodes come from `pool` (an XAPool, private
    unless one is passed in to share). Python methods validate their arguments; the C
    functions of xarray.pxd (xa_load(&x.xa, ...)) are the nogil interface.
    """

    def __cinit__(self, i64 capacity=64, XAPool pool=None):
        if pool is None:
            pool = XAPool(max(capacity, 16))
        self.pool = pool
        xa_init(&self.xa, &pool.p)

    def __dealloc__(self):
        # give the nodes back to a shared pool
        if self.pool is not None and self.xa.pool != NULL:
            xa_destroy(&self.xa)

    @property
    def nr_nodes(self):
        """Live xa_nodes of this array."""
        return self.xa.nr_nodes

    @property
    def nr_nodes_allocated(self):
        """kmem_cache_alloc calls (cumulative)."""
        return self.xa.nr_nodes_allocated

    @property
    def nr_nodes_freed(self):
        """xa_node_free calls (cumulative)."""
        return self.xa.nr_nodes_freed

    # ---------------------------------------------------------------- Python API
    def store(self, index, entry, order=0):
        """xa_store_order(xa, index, order, entry): entry 0 erases the range; index is
        rounded down to the order. Storing into a larger existing entry replaces its value
        and keeps its order (as Linux). Marks: a non-NULL store keeps the OR of the marks
        of the entries it covers (xas_squash_marks)."""
        cdef u64 i = as_u64(index, "index")
        cdef u64 e = _as_entry(entry)
        cdef int o = as_order(order)
        cdef int r
        with nogil:
            r = xa_store(&self.xa, i, o, e)
        if r == -cerrno.ENOMEM:
            raise MemoryError(f"store at {i}: the node pool cannot grow (ENOMEM)")

    def store_batch(self, indices, entries, order=0):
        """store(indices[k], entries[k], order) for every k, in one nogil loop."""
        cdef int o = as_order(order)
        idx = as_index_array(indices)
        ent = as_index_array(entries, "entries")
        if idx.shape[0] != ent.shape[0]:
            raise ValueError(f"indices ({idx.shape[0]}) and entries ({ent.shape[0]}) differ in length")
        cdef i64 nerr = 0, k, bad = -1
        cdef const u64[::1] iv = idx
        cdef const u64[::1] ev = ent
        cdef i64 n = idx.shape[0]
        if n:
            with nogil:
                for k in range(n):              # validate first: nothing stored on error
                    if xa_is_internal(ev[k]):
                        bad = k
                        break
            if bad >= 0:
                raise ValueError(f"entry {int(ent[bad]):#x} at position {bad} is an "
                                 "internal entry (entry & 3 == 2)")
            with nogil:
                xa_store_batch(&self.xa, &iv[0], &ev[0], n, o, &nerr)
            if nerr:
                raise MemoryError(f"{nerr} of {n} stores failed: the node pool cannot grow (ENOMEM)")

    def add(self, index, entry, order=0):
        """__filemap_add_folio semantics. Returns 0, or -EEXIST (-17) if a real (non-value)
        entry exists in [index, index + 2**order): nothing is stored then. index must be
        aligned to the order (VM_BUG_ON_FOLIO in the kernel) and entry a real entry."""
        cdef u64 i = as_u64(index, "index")
        cdef u64 e = _as_entry(entry)
        cdef int o = as_order(order)
        if not xa_is_pfn(e):
            raise ValueError(f"add() stores a real entry (a folio), not {e:#x}")
        if o < 64 and i & ((1 << o) - 1):
            raise ValueError(f"index {i} is not aligned to order {o}")
        cdef int r
        with nogil:
            r = xa_add(&self.xa, i, o, e)
        if r == -cerrno.ENOMEM:
            raise MemoryError(f"add at {i}: the node pool cannot grow (ENOMEM)")
        return r

    def load(self, index):
        """The entry covering index (0 if none)."""
        return xa_load(&self.xa, <u64>as_u64(index, "index"))

    def load_batch(self, indices):
        """load() for every index, one nogil loop: uint64 array in, uint64 array out.

        Lookups advance in groups of LOAD_GROUP, one tree level per round, each
        next slot prefetched a round before it is read, so the cache misses of
        independent lookups overlap; the lookup cache (a leaf hit) short-cuts."""
        idx = as_index_array(indices)
        out = np.empty(idx.shape[0], dtype=np.uint64)
        cdef const u64[::1] iv = idx
        cdef u64[::1] ov = out
        cdef i64 k = 0, n = idx.shape[0], m, j
        cdef i32 cur[LOAD_GROUP]
        cdef u64 index, e, base
        cdef i32 node
        cdef int sh
        cdef xarray_t *xa = &self.xa
        cdef xa_pool_t *pool = xa.pool
        cdef bint active
        with nogil:
            while k < n:
                m = n - k if n - k < LOAD_GROUP else LOAD_GROUP
                if iv[k + m - 1] >= iv[k] and iv[k + m - 1] - iv[k] < 2 * XA_CHUNK_SIZE:
                    for j in range(m):          # a near-sequential run: the lookup cache hits
                        ov[k + j] = xa_load(xa, iv[k + j])
                    k += m
                    continue
                active = False
                for j in range(m):
                    index = iv[k + j]
                    cur[j] = -1
                    if xa.hint >= 0 and (index ^ xa.hint_base) < XA_CHUNK_SIZE:
                        e = pool.slots[<i64>xa.hint * XA_CHUNK_SIZE + (index & XA_CHUNK_MASK)]
                        if xa_is_sibling(e):
                            e = pool.slots[<i64>xa.hint * XA_CHUNK_SIZE + xa_to_sibling(e)]
                        ov[k + j] = e
                        continue
                    e = xa.head
                    if not xa_is_node(e):
                        ov[k + j] = e if index == 0 else 0
                        continue
                    node = xa_to_node(e)
                    if (index >> pool.shift[node]) > XA_CHUNK_MASK:
                        ov[k + j] = 0
                        continue
                    cur[j] = node
                    active = True
                    ppsize_prefetch(&pool.slots[<i64>node * XA_CHUNK_SIZE +
                                                   ((index >> pool.shift[node]) & XA_CHUNK_MASK)])
                while active:                   # xa_load, a level per round
                    active = False
                    for j in range(m):
                        node = cur[j]
                        if node < 0:
                            continue
                        index = iv[k + j]
                        sh = pool.shift[node]
                        base = <u64>node * XA_CHUNK_SIZE
                        e = pool.slots[base + ((index >> sh) & XA_CHUNK_MASK)]
                        if xa_is_sibling(e):
                            e = pool.slots[base + xa_to_sibling(e)]
                        if sh == 0 or not xa_is_node(e):
                            ov[k + j] = e
                            cur[j] = -1
                            if sh == 0:
                                xa.hint = node
                                xa.hint_base = index & ~(<u64>XA_CHUNK_MASK)
                            continue
                        node = xa_to_node(e)
                        cur[j] = node
                        active = True
                        ppsize_prefetch(&pool.slots[<i64>node * XA_CHUNK_SIZE +
                                                       ((index >> pool.shift[node]) & XA_CHUNK_MASK)])
                k += m
        return out

    def erase(self, index):
        """xa_erase: erase the entry covering index; returns it (0 if none)."""
        cdef u64 i = as_u64(index, "index")
        cdef u64 r
        with nogil:
            r = xa_erase(&self.xa, i)
        return r

    def entry_order(self, index):
        """Order of the entry covering index, -1 if none (xa_get_order)."""
        return xa_entry_order(&self.xa, <u64>as_u64(index, "index"))

    def split(self, index, order):
        """Split the entry covering index into entries of `order` (xas_split). Returns 0,
        -22 (-EINVAL: no entry / order not smaller) or -12 (-ENOMEM: xas_split_alloc's
        refusal for order >= (order - order % 6) + 12)."""
        cdef u64 i = as_u64(index, "index")
        cdef int o = as_order(order)
        return xa_split(&self.xa, i, o)

    def try_split(self, index, order):
        """xas_try_split: 0, or -22 (-EINVAL) if it would need more than one new node
        (order < xas_try_split_min_order(current order)), or no entry / order not smaller."""
        cdef u64 i = as_u64(index, "index")
        cdef int o = as_order(order)
        return xa_try_split(&self.xa, i, o)

    def set_mark(self, index, mark):
        xa_set_mark(&self.xa, <u64>as_u64(index, "index"), <int>_as_mark(mark))

    def clear_mark(self, index, mark):
        xa_clear_mark(&self.xa, <u64>as_u64(index, "index"), <int>_as_mark(mark))

    def get_mark(self, index, mark):
        return bool(xa_get_mark(&self.xa, <u64>as_u64(index, "index"), <int>_as_mark(mark)))

    def find(self, index=0, max=None, mark=None):
        """(first_index, entry) of the entry covering index or else the next one starting
        at or before max (with mark if given); None if there is none."""
        cdef u64 i = as_u64(index, "index")
        cdef u64 m = (1 << 64) - 1 if max is None else as_u64(max, "max")
        cdef int mk = -1 if mark is None else _as_mark(mark)
        cdef int order
        cdef u64 e = xa_find_range(&self.xa, i, m, mk, &i, &order)
        if not e:
            return None
        return (i, e)

    def items(self, start=0, end=None, mark=None):
        """Entries overlapping [start, end] (inclusive; all if end is None), optionally only
        those with mark: (first indices uint64, orders int8, entries uint64), ascending.
        An entry straddling start is reported at its first index (< start)."""
        cdef u64 s = as_u64(start, "start")
        cdef u64 e_max = (1 << 64) - 1 if end is None else as_u64(end, "end")
        cdef int mk = -1 if mark is None else _as_mark(mark)
        cdef i64 n = 0, k
        cdef u64 cur, idx, ent
        cdef int order
        cdef bint done
        # pass 1: count; pass 2: fill
        with nogil:
            cur = s
            while True:
                ent = xa_find_range(&self.xa, cur, e_max, mk, &idx, &order)
                if not ent:
                    break
                n += 1
                if order >= 64 or idx + ((<u64>1) << order) - 1 >= e_max:
                    break
                cur = idx + ((<u64>1) << order)
        ia = np.empty(n, dtype=np.uint64)
        oa = np.empty(n, dtype=np.int8)
        ea = np.empty(n, dtype=np.uint64)
        cdef u64[::1] iv = ia
        cdef signed char[::1] ov = oa
        cdef u64[::1] ev = ea
        with nogil:
            cur = s
            k = 0
            while k < n:
                ent = xa_find_range(&self.xa, cur, e_max, mk, &idx, &order)
                if not ent:
                    break
                iv[k] = idx
                ov[k] = order
                ev[k] = ent
                k += 1
                if order >= 64 or idx + ((<u64>1) << order) - 1 >= e_max:
                    break
                cur = idx + ((<u64>1) << order)
        return ia, oa, ea

    def entry_location(self, index):
        """Where the entry covering index lives: None if no entry, ('head', 0, 1) for xa_head,
        else (node shift, canonical slot offset, number of slots)."""
        cdef xa_state xas
        cdef int order
        xas_set_order(&xas, as_u64(index, "index"), 0)
        if not xas_load(&self.xa, &xas):
            return None
        if xas.xa_node < 0:
            return ("head", 0, 1)
        order = xas_get_order(&self.xa, &xas)
        return (int(self.xa.pool.shift[xas.xa_node]), int(xas.xa_offset),
                1 << (order - self.xa.pool.shift[xas.xa_node]))

    @property
    def node_bytes(self):
        """sizeof(struct xa_node) * nodes = 576 * nr_nodes."""
        return self.xa.nr_nodes * XA_NODE_BYTES

    @property
    def slab_bytes(self):
        """Slab pages holding the nodes if packed (radix_tree_node cache, 7 objects per
        4K page): ceil(nr_nodes / 7) * 4096. A lower bound of what /proc/slabinfo shows."""
        return (self.xa.nr_nodes + XA_NODES_PER_SLAB - 1) // XA_NODES_PER_SLAB * 4096

    @property
    def height(self):
        """Levels of nodes: 0 when xa_head holds NULL or a lone entry, else root shift/6+1."""
        if not xa_is_node(self.xa.head):
            return 0
        return self.xa.pool.shift[xa_to_node(self.xa.head)] // XA_CHUNK_SHIFT + 1

    @property
    def head_entry(self):
        """The raw xa_head if it is an entry (lone entry at index 0), else None."""
        if xa_is_node(self.xa.head):
            return None
        return int(self.xa.head)

    def nodes(self):
        """Live nodes as a structured NumPy array (id, first index covered, parent, shift,
        offset, count, nr_values, marks[3]) for inspection."""
        dt = np.dtype([("id", np.int32), ("first", np.uint64), ("parent", np.int32), ("shift", np.uint8),
                       ("offset", np.uint8), ("count", np.uint8), ("nr_values", np.uint8),
                       ("marks", np.uint64, (3,))])
        id_list = []
        if xa_is_node(self.xa.head):
            stack = [xa_to_node(self.xa.head)]
            while stack:
                n = stack.pop()
                id_list.append(n)
                if self.xa.pool.shift[n]:
                    for off in range(XA_CHUNK_SIZE):
                        e = self.xa.pool.slots[<i64>n * XA_CHUNK_SIZE + off]
                        if xa_is_node(e):
                            stack.append(xa_to_node(e))
        ids = np.array(sorted(id_list), dtype=np.int32)
        P = self.pool
        out = np.zeros(ids.size, dtype=dt)
        out["id"] = ids
        out["parent"] = P._parent_a[ids]
        out["shift"] = P._shift_a[ids]
        out["offset"] = P._offset_a[ids]
        out["count"] = P._count_a[ids]
        out["nr_values"] = P._nrv_a[ids]
        out["marks"] = P._marks_a.reshape(-1, 3)[:self.xa.pool.cap][ids]
        for k in range(ids.size):           # first index covered: offsets up the parents
            n = int(ids[k])
            first = 0
            while self.xa.pool.parent[n] >= 0:
                first += int(self.xa.pool.offset[n]) << int(self.xa.pool.shift[self.xa.pool.parent[n]])
                n = self.xa.pool.parent[n]
            out["first"][k] = first
        return out

    def __len__(self):
        """Number of entries (a multi-index entry counts once)."""
        return len(self.items()[0])

    def check(self):
        """Walk everything and raise AssertionError naming the first broken invariant:
        parent/offset/shift links, counts and nr_values, sibling entries pointing to a
        canonical slot of a power-of-two aligned run, marks only on present canonical or
        node slots, node marks = OR of the child's, xa_flags marks = OR of the root's, no
        empty node, no root xas_shrink would remove (unless a split left it so, as in
        Linux, where xas_split never shrinks), nothing but sibling/node internal
        entries, node accounting (live + free = allocated ids)."""
        xa_check_tree(&self.xa)
        self.pool.check()


cdef object xa_check_tree(xarray_t *xa):
    """XArray.check for any xarray_t (raises AssertionError); pool accounting is
    XAPool.check."""
    cdef i32 root, node, child, c
    cdef int off, j, run, sh, mark, cnt, nv
    cdef u64 e, canon, mbits
    seen = 0
    if not xa_is_node(xa.head):
        if xa.nr_nodes != 0:
            raise AssertionError(f"xa_head holds an entry but {xa.nr_nodes} nodes are live")
        if xa.head == 0 and xa.head_marks:
            raise AssertionError(f"empty array with xa_flags marks {xa.head_marks:#x}")
        if xa_is_internal(xa.head):
            raise AssertionError(f"xa_head holds internal entry {xa.head:#x}")
    else:
        root = xa_to_node(xa.head)
        if xa.pool.parent[root] != -1:
            raise AssertionError(f"root node {root} has parent {xa.pool.parent[root]}")
        for mark in range(XA_MAX_MARKS):
            if bool((xa.head_marks >> mark) & 1) != bool(xa.pool.marks[<i64>root * 3 + mark]):
                raise AssertionError(f"xa_flags mark {mark} = {(xa.head_marks >> mark) & 1} but "
                                     f"root marks {xa.pool.marks[<i64>root * 3 + mark]:#x}")
        e = xa.pool.slots[<i64>root * XA_CHUNK_SIZE]
        if (xa.pool.count[root] == 1 and e and (xa_is_node(e) or xa.pool.shift[root] == 0)
                and not xa.root_unshrunk):
            raise AssertionError(f"root node {root} (shift {xa.pool.shift[root]}) holds only slot 0 "
                                 f"{e:#x}: xas_shrink would have removed it")
        stack = [root]
        while stack:
            node = stack.pop()
            seen += 1
            sh = xa.pool.shift[node]
            if sh == NODE_FREE or sh % 6 or sh > 60:
                raise AssertionError(f"node {node} has bad shift {sh}")
            cnt = 0
            nv = 0
            for off in range(XA_CHUNK_SIZE):
                e = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off]
                if e:
                    cnt += 1
                if xa_is_sibling(e):
                    canon = xa_to_sibling(e)
                    if canon >= off:
                        raise AssertionError(f"node {node} slot {off}: sibling points forward to {canon}")
                    for j in range(canon + 1, off):
                        if xa.pool.slots[<i64>node * XA_CHUNK_SIZE + j] != e:
                            raise AssertionError(f"node {node} slot {j}: breaks the sibling run of slot {canon}")
                    c = <i32>canon
                    e = xa.pool.slots[<i64>node * XA_CHUNK_SIZE + c]
                    if not e or xa_is_internal(e):
                        raise AssertionError(f"node {node} slot {off}: sibling of slot {canon} "
                                             f"which holds {e:#x}")
                    if xa_is_value(e):
                        nv += 1
                    for mark in range(XA_MAX_MARKS):
                        if (xa.pool.marks[<i64>node * 3 + mark] >> off) & 1:
                            raise AssertionError(f"node {node} sibling slot {off} carries mark {mark}")
                    continue
                if not e:
                    for mark in range(XA_MAX_MARKS):
                        if (xa.pool.marks[<i64>node * 3 + mark] >> off) & 1:
                            raise AssertionError(f"node {node} empty slot {off} carries mark {mark}")
                    continue
                if xa_is_node(e):
                    if sh == 0:
                        raise AssertionError(f"node {node} (shift 0) slot {off} holds a node entry")
                    child = xa_to_node(e)
                    if child < 0 or child >= xa.pool.used or xa.pool.shift[child] == NODE_FREE:
                        raise AssertionError(f"node {node} slot {off} points to dead node {child}")
                    if xa.pool.parent[child] != node or xa.pool.offset[child] != off:
                        raise AssertionError(f"node {child}: parent/offset {xa.pool.parent[child]}/"
                                             f"{xa.pool.offset[child]}, expected {node}/{off}")
                    if xa.pool.shift[child] + 6 != sh:
                        raise AssertionError(f"node {child}: shift {xa.pool.shift[child]} under a shift-{sh} node")
                    if xa.pool.count[child] == 0:
                        raise AssertionError(f"node {child} is empty but still in the tree")
                    for mark in range(XA_MAX_MARKS):
                        if bool((xa.pool.marks[<i64>node * 3 + mark] >> off) & 1) != bool(
                                xa.pool.marks[<i64>child * 3 + mark]):
                            raise AssertionError(f"node {node} slot {off} mark {mark} is not the OR "
                                                 f"of child {child}'s marks")
                    stack.append(child)
                    continue
                if xa_is_internal(e):
                    raise AssertionError(f"node {node} slot {off} holds internal entry {e:#x}")
                if xa_is_value(e):
                    nv += 1
                run = 1
                while off + run < XA_CHUNK_SIZE and xa.pool.slots[<i64>node * XA_CHUNK_SIZE + off + run] == xa_mk_sibling(off):
                    run += 1
                if run & (run - 1) or off % run or run > 32:
                    raise AssertionError(f"node {node} slot {off}: multi-index run of {run} slots "
                                         "is not a power of two <= 32 aligned to its size")
            if cnt != xa.pool.count[node]:
                raise AssertionError(f"node {node}: count {xa.pool.count[node]}, recount {cnt}")
            if nv != xa.pool.nr_values[node]:
                raise AssertionError(f"node {node}: nr_values {xa.pool.nr_values[node]}, recount {nv}")
            if cnt == 0:
                raise AssertionError(f"node {node} is empty")
    if seen != xa.nr_nodes:
        raise AssertionError(f"{seen} nodes reachable, nr_nodes = {xa.nr_nodes}")
    if xa.nr_nodes_allocated - xa.nr_nodes_freed != xa.nr_nodes:
        raise AssertionError("allocated - freed != live nodes")
    if xa.hint >= 0 and (xa.pool.shift[xa.hint] != 0):
        raise AssertionError(f"lookup hint {xa.hint} is not a live shift-0 node")
