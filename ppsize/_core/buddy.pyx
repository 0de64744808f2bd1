"""Buddy allocator of physical frames, mirroring mm/page_alloc.c (Linux 6.15+ /
linux-mm tree as of 2026: __rmqueue_smallest, expand, __rmqueue_claim,
try_to_claim_block, __rmqueue_steal, __free_one_page, split_large_buddy,
buddy_merge_likely) and memblock's __free_pages_memory at boot.

One zone, one node. Frames are pfns 0 .. nr_pages-1 of the kernel page size.
Free lists per (order, migratetype) are doubly linked through per-frame int32
next/prev arrays, so any block is removed in O(1) and a merge costs O(1) per level.

Per-frame state: next (4 B) + prev (4 B) + state (1 B) = 9 bytes/frame, plus one
byte per pageblock. The state byte holds [ALLOC:1][FREE:1][migratetype:2][order:4]
on block heads and 0 elsewhere. The arrays come from framemem (host pages
zero-filled on first touch, never THP). Boot links only the first section's
max-order blocks; the rest of the zone's max-order blocks stay "deferred"
(CONFIG_DEFERRED_STRUCT_PAGE_INIT, mm/mm_init.c deferred_init_memmap): free,
counted, logically the tail of the MIGRATE_MOVABLE max-order list in pfn order,
linked a section at a time when that list runs dry (deferred_grow_zone), or all
at once before anything appends to that list's tail or walks every frame. Every
pfn, count and list order is the eager boot's; only unused frames cost nothing.

Not modelled (deliberately): per-cpu page lists (every alloc/free goes straight to
the buddy lists, as FPI_NONE/RMQUEUE_NORMAL without pcp), watermarks and
watermark boosting (an allocation succeeds while a block exists), ALLOC_NOFRAGMENT,
MIGRATE_HIGHATOMIC reserves, CMA, isolation, compaction, page shuffling, guard
pages, the compaction capture.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport uint64_t
from libc.string cimport memset

from ppsize._validate import as_int

cnp.import_array()

from ppsize._core._types cimport i64, i32, u8, u64


# --------------------------------------------------------------- migratetypes
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic")
_MT_BY_NAME = {"unmovable": MIGRATE_UNMOVABLE, "movable": MIGRATE_MOVABLE,
               "reclaimable": MIGRATE_RECLAIMABLE}
PY_MIGRATE_UNMOVABLE = MIGRATE_UNMOVABLE
PY_MIGRATE_MOVABLE = MIGRATE_MOVABLE
PY_MIGRATE_RECLAIMABLE = MIGRATE_RECLAIMABLE
PY_MIGRATE_HIGHATOMIC = MIGRATE_HIGHATOMIC

# mm/page_alloc.c fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1]
cdef int FALLBACKS[3][2]
FALLBACKS[MIGRATE_UNMOVABLE][0] = MIGRATE_RECLAIMABLE
FALLBACKS[MIGRATE_UNMOVABLE][1] = MIGRATE_MOVABLE
FALLBACKS[MIGRATE_MOVABLE][0] = MIGRATE_RECLAIMABLE
FALLBACKS[MIGRATE_MOVABLE][1] = MIGRATE_UNMOVABLE
FALLBACKS[MIGRATE_RECLAIMABLE][0] = MIGRATE_UNMOVABLE
FALLBACKS[MIGRATE_RECLAIMABLE][1] = MIGRATE_MOVABLE


def migratetype_index(mt):
    """Migratetype number from a name ("movable", "unmovable", "reclaimable",
    case-insensitive) or an int 0..2. HighAtomic is not modelled (ValueError)."""
    if isinstance(mt, str):
        key = mt.strip().lower()
        if key in _MT_BY_NAME:
            return _MT_BY_NAME[key]
        if key == "highatomic":
            raise ValueError("migratetype 'highatomic' is not modelled (no atomic reserves)")
        raise ValueError(f"unknown migratetype {mt!r}; choose 'movable', 'unmovable' or 'reclaimable'")
    if isinstance(mt, (bool, np.bool_)):
        raise TypeError(f"migratetype must be a str or int, not bool ({mt!r})")
    if isinstance(mt, (int, np.integer)):
        if 0 <= int(mt) < MIGRATE_PCPTYPES:
            return int(mt)
        raise ValueError(f"migratetype {int(mt)} out of range; 0 unmovable, 1 movable, 2 reclaimable")
    raise TypeError(f"migratetype must be a str or int, not {type(mt).__name__} ({mt!r})")


cdef object _int64_vector(x, str what):
    # a 1-D C-contiguous int64 array of x: the array itself when it already is one
    # (the batch calls' common case, no copy), else a checked conversion
    if type(x) is np.ndarray and x.dtype == np.int64 and x.ndim == 1 and x.flags.c_contiguous:
        return x
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


cdef object _counts(const i64 *src, int n):
    # a fresh int64 array holding a copy of n counters
    out = np.empty(n, dtype=np.int64)
    cdef i64 *o = <i64*>cnp.PyArray_DATA(out)
    cdef int i
    for i in range(n):
        o[i] = src[i]
    return out


# ------------------------------------------------------------ PRNG for churn
cdef inline u64 _splitmix64(u64 *s) noexcept nogil:
    s[0] += <u64>0x9E3779B97F4A7C15ULL
    cdef u64 z = s[0]
    z = (z ^ (z >> 30)) * <u64>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <u64>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline int _pick(const i64 *cum, int n, u64 r) noexcept nogil:
    # index i with r % total < cum[i] (cum = cumulative weights, total = cum[n-1])
    cdef u64 x = r % <u64>cum[n - 1]
    cdef int i = 0
    while <u64>cum[i] <= x:
        i += 1
    return i


cdef class BuddyAllocator:
    """BuddyAllocator(nr_pages, max_order, pageblock_order)

    A zone of ``nr_pages`` frames (pfn 0..nr_pages-1), orders 0..max_order
    (MAX_PAGE_ORDER, inclusive), pageblocks of ``pageblock_order``. At creation all
    pageblocks are MIGRATE_MOVABLE and all memory is freed as at boot
    (memblock __free_pages_memory: aligned blocks of at most MAX_PAGE_ORDER, the tail
    as smaller blocks, each via __free_pages_core -> FPI_TO_TAIL).

    ``deferred``: CONFIG_DEFERRED_STRUCT_PAGE_INIT. True: boot links one section
    (DEFERRED_GROW_FRAMES) of max-order blocks and the rest a section at a time as
    the free list needs them; an int: frames per step instead; False: link every
    block at boot. Results are the same either way. ``frames``: the kernel's shared
    FrameMem (per-frame arrays); None: one of its own.
    """

    def __cinit__(self, nr_pages, max_order, pageblock_order, FrameMem frames=None,
                  deferred=True):
        nr_pages = as_int(nr_pages, "nr_pages")
        max_order = as_int(max_order, "max_order")
        pageblock_order = as_int(pageblock_order, "pageblock_order")
        if nr_pages < 1 or nr_pages > 0x7FFFFFFF:
            raise ValueError(f"nr_pages must be in 1..{0x7FFFFFFF} (int32 free-list links), got {nr_pages}")
        if max_order < 0 or max_order > BUDDY_ORDER_LIMIT:
            raise ValueError(f"max_order must be in 0..{BUDDY_ORDER_LIMIT}, got {max_order}")
        if pageblock_order < 0 or pageblock_order > max_order:
            raise ValueError(f"pageblock_order must be in 0..max_order={max_order}, got {pageblock_order}")
        if frames is None:
            frames = FrameMem(nr_pages)
        elif frames.nr_pages != nr_pages:
            raise ValueError(f"frames cover {frames.nr_pages} frames, not nr_pages={nr_pages}")
        self.nr_pages = nr_pages
        self.max_order = max_order
        self.pageblock_order = pageblock_order
        self.nr_pageblocks = (nr_pages + (1 << pageblock_order) - 1) >> pageblock_order
        cdef int i
        for i in range(NR_ORDERS * MIGRATE_TYPES):
            self.head[i] = -1
            self.tail[i] = -1
            self.nr_free[i] = 0
        for i in range(NR_ORDERS):
            self.nr_alloc[i] = 0
            self.nr_fail[i] = 0
            self.nr_frees[i] = 0
        # deferred_init_memmap(): the whole max-order blocks past the first section
        # are initialised when the zone first needs them (deferred_grow_zone)
        if deferred is True:
            deferred = DEFERRED_GROW_FRAMES
        elif deferred is False:
            deferred = nr_pages
        deferred = as_int(deferred, "deferred")
        if deferred < 1:
            raise ValueError(f"deferred must be True, False or frames per step >= 1, got {deferred}")
        self.def_chunk = max(deferred, 1 << max_order)
        cdef i64 full = (<i64>nr_pages >> max_order) << max_order
        cdef i64 first = min(full, self.def_chunk)
        frames.set_lazy(0, full)
        self.frames = frames
        self.def_pfn = self.def_end = 0          # set below, after the boot's own frees
        self.def_li = -1
        # links are read only on free-list members (written by __add_to_free_list),
        # state 0 is "no block head": zero pages of the host, never touched at boot
        self._next_a = frames.array(np.int32)
        self._prev_a = frames.array(np.int32)
        self._state_a = frames.array(np.uint8)
        self._pbmt_a = np.empty(self.nr_pageblocks, dtype=np.uint8)
        self.next_ = <i32*>cnp.PyArray_DATA(self._next_a)
        self.prev_ = <i32*>cnp.PyArray_DATA(self._prev_a)
        self.state = <u8*>cnp.PyArray_DATA(self._state_a)
        self.pb_mt = <u8*>cnp.PyArray_DATA(self._pbmt_a)
        # memmap_init_range: every pageblock starts MIGRATE_MOVABLE
        memset(self.pb_mt, MIGRATE_MOVABLE, self.nr_pageblocks)
        frames.prepare(first)
        self._boot_free(0, first)
        self._boot_free(full, nr_pages)
        self.def_pfn = first
        self.def_end = full
        if first < full:
            self.def_li = max_order * MIGRATE_TYPES + MIGRATE_MOVABLE
        # the deferred blocks: free, counted, not linked (deferred_free_pages later)
        self.nr_free[max_order * MIGRATE_TYPES + MIGRATE_MOVABLE] += (full - first) >> max_order
        self.nr_free_pages += full - first

    def _boot_free(self, i64 start, i64 end):
        # mm/memblock.c __free_pages_memory(start, end) -> memblock_free_pages ->
        # __free_pages_core -> __free_pages_ok(FPI_TO_TAIL) -> free_one_page ->
        # split_large_buddy
        cdef int order
        with nogil:
            while start < end:
                if start:
                    order = 0
                    while not ((start >> order) & 1):
                        order += 1                      # __ffs(start)
                    if order > self.max_order:
                        order = self.max_order
                else:
                    order = self.max_order
                while start + (<i64>1 << order) > end:
                    order -= 1
                self._split_large_buddy(start, order, True)
                start += <i64>1 << order

    cdef void _deferred_grow(self, i64 nr) noexcept nogil:
        # deferred_grow_zone() / deferred_init_memmap_chunk(): the next nr frames
        # (whole max-order blocks, rounded up to a section) of the deferred range:
        # per-frame arrays prepared, each block linked at the tail of the
        # MIGRATE_MOVABLE max-order list as the eager boot's FPI_TO_TAIL free put it.
        # Already counted in nr_free and nr_free_pages.
        cdef int li = self.max_order * MIGRATE_TYPES + MIGRATE_MOVABLE
        cdef i64 lo = self.def_pfn, hi, pfn, step = <i64>1 << self.max_order
        cdef i32 old
        if nr < self.def_chunk:
            nr = self.def_chunk
        hi = lo + ((nr + step - 1) & ~(step - 1))
        if hi > self.def_end:
            hi = self.def_end
        self.frames.prepare(hi)
        pfn = lo
        while pfn < hi:
            old = self.tail[li]
            self.prev_[pfn] = old
            self.next_[pfn] = -1
            if old >= 0:
                self.next_[old] = <i32>pfn
            else:
                self.head[li] = <i32>pfn
            self.tail[li] = <i32>pfn
            self.state[pfn] = <u8>(BUDDY_ST_FREE | (MIGRATE_MOVABLE << BUDDY_MT_SHIFT) | self.max_order)
            pfn += step
        self.def_pfn = hi
        if hi == self.def_end:
            self.def_li = -1

    def deferred_init_all(self):
        """page_alloc_init_late(): link every deferred block now (before a walk
        over all frames' state). Returns the frames initialised."""
        cdef i64 n = self.def_end - self.def_pfn
        if n:
            with nogil:
                self._deferred_grow(n)
        return n

    @property
    def deferred_pages(self):
        """Frames still in never-used deferred max-order blocks (free, unlinked)."""
        return self.def_end - self.def_pfn

    # ------------------------------------------------------------ free lists
    cdef inline void _list_add(self, i64 pfn, int order, int mt, bint to_tail) noexcept nogil:
        # __add_to_free_list + set_buddy_order
        cdef int li = order * MIGRATE_TYPES + mt
        cdef i32 p = <i32>pfn
        cdef i32 old
        # PPSIZE_DEBUG builds keep these (VM_BUG_ON_PAGE in __free_one_page/expand)
        assert 0 <= pfn and pfn + (<i64>1 << order) <= self.nr_pages, "free block outside memory"
        assert self.state[pfn] == 0, "adding a block head that is already free or allocated"
        if to_tail:
            if li == self.def_li:
                self._deferred_grow(self.def_end - self.def_pfn)   # list_add_tail after them
            old = self.tail[li]
            self.prev_[p] = old
            self.next_[p] = -1
            if old >= 0:
                self.next_[old] = p
            else:
                self.head[li] = p
            self.tail[li] = p
        else:
            old = self.head[li]
            self.next_[p] = old
            self.prev_[p] = -1
            if old >= 0:
                self.prev_[old] = p
            else:
                self.tail[li] = p
            self.head[li] = p
        self.nr_free[li] += 1
        self.state[p] = <u8>(BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | order)

    cdef inline void _list_del(self, i64 pfn, int order, int mt) noexcept nogil:
        # __del_page_from_free_list: list_del, __ClearPageBuddy, set_page_private(0)
        cdef int li = order * MIGRATE_TYPES + mt
        cdef i32 p = <i32>pfn
        assert self.state[pfn] == (BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | order), \
            "deleting a block that is not on this free list (VM_WARN in __del_page_from_free_list)"
        cdef i32 n = self.next_[p]
        cdef i32 pr = self.prev_[p]
        if pr >= 0:
            self.next_[pr] = n
        else:
            self.head[li] = n
        if n >= 0:
            self.prev_[n] = pr
        else:
            self.tail[li] = pr
            # the list's linked part ran dry: the deferred blocks come next
            if li == self.def_li and pr < 0:
                self._deferred_grow(self.def_chunk)
        # p's own links are left stale: they are read only while p is on a list
        self.nr_free[li] -= 1
        self.state[p] = 0

    cdef bint _page_is_buddy(self, i64 pfn, int order) noexcept nogil:
        # page_is_buddy(): PageBuddy, buddy_order == order, same zone (inside memory)
        if pfn >= self.nr_pages:
            return False
        cdef u8 s = self.state[pfn]
        return (s & BUDDY_ST_FREE) != 0 and (s & BUDDY_ORDER_MASK) == order

    cdef void _change_pageblock_range(self, i64 pfn, int order, int mt) noexcept nogil:
        # change_pageblock_range(pageblock_page, start_order, migratetype)
        cdef i64 nr = <i64>1 << (order - self.pageblock_order)
        cdef i64 pb = pfn >> self.pageblock_order
        cdef i64 i
        for i in range(nr):
            self.pb_mt[pb + i] = <u8>mt

    cdef i64 _nr_free_order(self, int order) noexcept nogil:
        # zone->free_area[order].nr_free
        cdef int li = order * MIGRATE_TYPES
        return self.nr_free[li] + self.nr_free[li + 1] + self.nr_free[li + 2] + self.nr_free[li + 3]

    # -------------------------------------------------------------- freeing
    cdef inline void _free_one_page(self, i64 pfn, int order, int mt, bint fpi_to_tail) noexcept nogil:
        # __free_one_page(page, pfn, zone, order, migratetype, fpi_flags)
        # The arrays and limits are read once into locals: every store to the u8 state
        # array may alias any field of self for the C compiler, so through self each
        # access would reload them. page_is_buddy, __del_page_from_free_list and
        # __add_to_free_list are written out here on those locals (the same steps as
        # _page_is_buddy / _list_del / _list_add).
        cdef u8 *state = self.state
        cdef i32 *next_ = self.next_
        cdef i32 *prev_ = self.prev_
        cdef i64 nr_pages = self.nr_pages
        cdef int max_order = self.max_order
        cdef int pb_order = self.pageblock_order
        cdef i64 buddy_pfn = 0, higher
        cdef int buddy_mt, li
        cdef i32 n, pr, p, old
        cdef bint to_tail
        self.nr_free_pages += <i64>1 << order          # account_freepages
        while order < max_order:
            buddy_pfn = pfn ^ (<i64>1 << order)          # __find_buddy_pfn
            # page_is_buddy(): inside the zone, PageBuddy, buddy_order == order
            if buddy_pfn >= nr_pages or ((state[buddy_pfn] & (BUDDY_ST_FREE | BUDDY_ORDER_MASK))
                                         != (BUDDY_ST_FREE | order)):
                break                                    # goto done_merging
            buddy_mt = mt
            if order >= pb_order:
                buddy_mt = self.pb_mt[buddy_pfn >> pb_order]
                # migratetype_is_mergeable(): all modelled types (< PCPTYPES) are
                if mt != buddy_mt and (mt >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES):
                    break
            # __del_page_from_free_list(buddy, zone, order, buddy_mt), as _list_del
            li = order * MIGRATE_TYPES + buddy_mt
            p = <i32>buddy_pfn
            assert state[p] == (BUDDY_ST_FREE | (buddy_mt << BUDDY_MT_SHIFT) | order), \
                "merging a buddy that is not on its free list (VM_WARN in __del_page_from_free_list)"
            n = next_[p]
            pr = prev_[p]
            if pr >= 0:
                next_[pr] = n
            else:
                self.head[li] = n
            if n >= 0:
                prev_[n] = pr
            else:
                self.tail[li] = pr
                if li == self.def_li and pr < 0:
                    self._deferred_grow(self.def_chunk)
            self.nr_free[li] -= 1
            state[p] = 0
            if buddy_mt != mt:
                # "Match buddy type. This ensures that an expand() down the line
                # puts the sub-blocks on the right freelists."
                self._change_pageblock_range(buddy_pfn, order, mt)
            pfn = buddy_pfn & pfn
            order += 1
        # done_merging:
        if fpi_to_tail:
            to_tail = True
        elif order < max_order - 1:
            # buddy_merge_likely(pfn, buddy_pfn, page, order): is the buddy of the
            # next order up free (page_is_buddy at order + 1)?
            higher = (buddy_pfn & pfn) ^ (<i64>1 << (order + 1))
            to_tail = higher < nr_pages and ((state[higher] & (BUDDY_ST_FREE | BUDDY_ORDER_MASK))
                                             == (BUDDY_ST_FREE | (order + 1)))
        else:
            to_tail = False
        if to_tail:
            self._list_add(pfn, order, mt, True)
            return
        # __add_to_free_list(page, zone, order, mt, tail=false) + set_buddy_order,
        # as _list_add
        li = order * MIGRATE_TYPES + mt
        p = <i32>pfn
        assert 0 <= pfn and pfn + (<i64>1 << order) <= nr_pages, "free block outside memory"
        assert state[pfn] == 0, "adding a block head that is already free or allocated"
        old = self.head[li]
        next_[p] = old
        prev_[p] = -1
        if old >= 0:
            prev_[old] = p
        else:
            self.tail[li] = p
        self.head[li] = p
        self.nr_free[li] += 1
        state[p] = <u8>(BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | order)

    cdef void _split_large_buddy(self, i64 pfn, int order, bint fpi_to_tail) noexcept nogil:
        # split_large_buddy(): free a multi-pageblock block one pageblock at a time,
        # each with its own pageblock migratetype
        cdef i64 end = pfn + (<i64>1 << order)
        cdef int mt
        if order > self.pageblock_order:
            order = self.pageblock_order
        while True:
            mt = self.pb_mt[pfn >> self.pageblock_order]    # get_pfnblock_migratetype
            self._free_one_page(pfn, order, mt, fpi_to_tail)
            pfn += <i64>1 << order
            if pfn == end:
                break

    cdef void free(self, i64 pfn, int order) noexcept nogil:
        """__free_pages(page, order) without pcp: free_one_page(FPI_NONE)."""
        if (pfn < 0 or pfn >= self.nr_pages or order < 0 or order > self.max_order
                or (self.state[pfn] & (BUDDY_ST_ALLOC | BUDDY_ST_FREE | BUDDY_ORDER_MASK))
                != (BUDDY_ST_ALLOC | order)):
            self.nr_bad_free += 1          # bad_page(): leave the frame alone
            return
        self._free_block(pfn, order)

    cdef inline void _free_block(self, i64 pfn, int order) noexcept nogil:
        # __free_pages_ok after the checks: the head is no longer allocated
        self.state[pfn] = 0
        self.nr_frees[order] += 1
        if order <= self.pageblock_order:
            # split_large_buddy() of a block within one pageblock: one
            # __free_one_page with that pageblock's get_pfnblock_migratetype
            self._free_one_page(pfn, order, self.pb_mt[pfn >> self.pageblock_order], False)
        else:
            self._split_large_buddy(pfn, order, False)

    # ------------------------------------------------------------ allocation
    cdef void _expand(self, i64 pfn, int low, int high, int mt) noexcept nogil:
        # expand(zone, page, low, high, migratetype): the upper half goes back to
        # the free list (head), the lower half is split further
        cdef i64 size = <i64>1 << high
        while high > low:
            high -= 1
            size >>= 1
            self._list_add(pfn + size, high, mt, False)

    cdef inline i64 _rmqueue_smallest(self, int order, int mt) noexcept nogil:
        # __rmqueue_smallest + page_del_and_expand. The block taken is the first of
        # its list (get_page_from_free_area), so its prev link is -1; and every list
        # of this migratetype between order and the order it came from was just found
        # empty, so expand()'s __add_to_free_list onto them links a lone block. The
        # caller (__rmqueue's users: alloc, try_to_claim_block's caller) writes the
        # allocated state of the head, so __del_page_from_free_list's clearing of it
        # is left to that write.
        cdef u8 *state = self.state
        cdef i32 *next_ = self.next_
        cdef i32 *prev_ = self.prev_
        cdef int cur = order, li = order * MIGRATE_TYPES + mt
        cdef int max_order = self.max_order
        cdef i32 page = self.head[li], n, p
        cdef i64 size
        while page < 0:
            cur += 1
            if cur > max_order:
                return -1
            li += MIGRATE_TYPES
            page = self.head[li]
        # __del_page_from_free_list(page, zone, cur, mt) of the list's first block
        assert state[page] == (BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | cur), \
            "the head of a free list is not a free block of that list"
        assert prev_[page] == -1, "the head of a free list has a prev link"
        n = next_[page]
        self.head[li] = n
        if n >= 0:
            prev_[n] = -1
        else:
            self.tail[li] = -1
            if li == self.def_li:
                # the list's linked part ran dry: the deferred blocks come next
                self._deferred_grow(self.def_chunk)
        self.nr_free[li] -= 1
        # expand(zone, page, order, cur, migratetype): upper halves onto lists of
        # orders cur-1 .. order, each empty (the search above passed it)
        size = <i64>1 << cur
        while cur > order:
            cur -= 1
            size >>= 1
            li -= MIGRATE_TYPES
            p = <i32>(page + size)
            assert self.head[li] < 0 and self.nr_free[li] == 0, "expand onto a list that is not empty"
            assert state[p] == 0, "adding a block head that is already free or allocated"
            next_[p] = -1
            prev_[p] = -1
            self.head[li] = p
            self.tail[li] = p
            self.nr_free[li] = 1
            state[p] = <u8>(BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | cur)
        self.nr_free_pages -= <i64>1 << order
        return page

    cdef i64 _try_to_claim_block(self, i64 page, int current_order, int order,
                                 int start_type, int block_type) noexcept nogil:
        # try_to_claim_block()
        cdef i64 start, end, pfn, nr, free_pages = 0, movable_pages = 0, alike_pages
        cdef u8 s
        cdef int o
        if current_order >= self.pageblock_order:
            # Take ownership for orders >= pageblock_order
            self._list_del(page, current_order, block_type)
            self._change_pageblock_range(page, current_order, start_type)
            self._expand(page, order, current_order, start_type)
            self.nr_free_pages -= <i64>1 << order
            return page
        # boost_watermark(): watermarks are not modelled
        # prep_move_freepages_block(): the whole pageblock must be in the zone
        start = page & ~((<i64>1 << self.pageblock_order) - 1)
        end = start + (<i64>1 << self.pageblock_order)
        if end > self.nr_pages:
            return -1
        pfn = start
        while pfn < end:
            s = self.state[pfn]
            if s & BUDDY_ST_FREE:
                nr = <i64>1 << (s & BUDDY_ORDER_MASK)
                free_pages += nr
                pfn += nr
                continue
            if s & BUDDY_ST_ALLOC:
                # PageLRU(page) || page_has_movable_ops(page): modelled as "allocated
                # as MIGRATE_MOVABLE", counted for every frame of the block
                nr = <i64>1 << (s & BUDDY_ORDER_MASK)
                if ((s & BUDDY_MT_MASK) >> BUDDY_MT_SHIFT) == MIGRATE_MOVABLE:
                    movable_pages += nr
                pfn += nr
                continue
            pfn += 1
        if start_type == MIGRATE_MOVABLE:
            alike_pages = movable_pages
        elif block_type == MIGRATE_MOVABLE:
            alike_pages = (end - start) - (free_pages + movable_pages)
        else:
            alike_pages = 0
        if free_pages + alike_pages >= ((end - start) >> 1):
            # __move_freepages_block(zone, start_pfn, block_type, start_type)
            pfn = start
            while pfn < end:
                s = self.state[pfn]
                if not (s & BUDDY_ST_FREE):
                    pfn += 1
                    continue
                o = s & BUDDY_ORDER_MASK
                # move_to_free_list(): list_move_tail onto the new type's list
                self._list_del(pfn, o, (s & BUDDY_MT_MASK) >> BUDDY_MT_SHIFT)
                self._list_add(pfn, o, start_type, True)
                pfn += <i64>1 << o
            self.pb_mt[start >> self.pageblock_order] = <u8>start_type
            return self._rmqueue_smallest(order, start_type)
        return -1

    cdef i64 _rmqueue_claim(self, int order, int start_mt) noexcept nogil:
        # __rmqueue_claim(): largest fallback block first, claim its pageblock
        cdef int cur, i, fb
        cdef i64 page
        for cur in range(self.max_order, order - 1, -1):
            # find_suitable_fallback(area, cur, start_mt, claimable=true)
            # should_try_claim_block(cur, start_mt), checked before emptiness
            if not (cur >= self.pageblock_order or cur >= self.pageblock_order // 2
                    or start_mt == MIGRATE_RECLAIMABLE or start_mt == MIGRATE_UNMOVABLE):
                break                                        # FALLBACK_NOCLAIM
            if self._nr_free_order(cur) == 0:
                continue                                     # FALLBACK_EMPTY
            fb = -1
            for i in range(MIGRATE_PCPTYPES - 1):
                if self.head[cur * MIGRATE_TYPES + FALLBACKS[start_mt][i]] >= 0:
                    fb = FALLBACKS[start_mt][i]
                    break
            if fb < 0:
                continue
            page = self.head[cur * MIGRATE_TYPES + fb]
            page = self._try_to_claim_block(page, cur, order, start_mt, fb)
            if page >= 0:
                self.nr_claimed += 1
                return page
        return -1

    cdef i64 _rmqueue_steal(self, int order, int start_mt) noexcept nogil:
        # __rmqueue_steal(): smallest fallback block, leave its pageblock type alone
        cdef int cur, i, fb
        cdef i32 page
        for cur in range(order, self.max_order + 1):
            if self._nr_free_order(cur) == 0:
                continue
            fb = -1
            for i in range(MIGRATE_PCPTYPES - 1):
                if self.head[cur * MIGRATE_TYPES + FALLBACKS[start_mt][i]] >= 0:
                    fb = FALLBACKS[start_mt][i]
                    break
            if fb < 0:
                continue
            page = self.head[cur * MIGRATE_TYPES + fb]
            self._list_del(page, cur, fb)                   # page_del_and_expand
            self._expand(page, order, cur, fb)
            self.nr_free_pages -= <i64>1 << order
            self.nr_stolen += 1
            return page
        return -1

    cdef i64 alloc(self, int order, int migratetype) noexcept nogil:
        """__rmqueue(): own free lists, then claim a pageblock, then steal.
        Returns the pfn or -1 (counted in nr_fail[order])."""
        if order < 0 or order > self.max_order:
            return -1
        if migratetype < 0 or migratetype >= MIGRATE_PCPTYPES:
            self.nr_fail[order] += 1
            return -1
        return self._alloc(order, migratetype)

    cdef inline i64 _alloc(self, int order, int migratetype) noexcept nogil:
        # alloc() after its argument checks (alloc_batch checked every entry first)
        cdef i64 page = self._rmqueue_smallest(order, migratetype)
        if page < 0:
            page = self._rmqueue_claim(order, migratetype)
            if page < 0:
                page = self._rmqueue_steal(order, migratetype)
        if page < 0:
            self.nr_fail[order] += 1
            return -1
        self.state[page] = <u8>(BUDDY_ST_ALLOC | (migratetype << BUDDY_MT_SHIFT) | order)
        self.nr_alloc[order] += 1
        return page

    cdef int split_alloc(self, i64 pfn, int order, int new_order) noexcept nogil:
        """split_page()-like: an allocated order-`order` block at pfn becomes
        2**(order-new_order) allocated blocks of new_order (same migratetype), to be
        freed separately. Returns 0, or -1 if pfn is not such a block."""
        cdef u8 s
        cdef i64 i, step
        if pfn < 0 or pfn >= self.nr_pages or new_order < 0 or new_order > order:
            return -1
        s = self.state[pfn]
        if (s & (BUDDY_ST_ALLOC | BUDDY_ST_FREE | BUDDY_ORDER_MASK)) != (BUDDY_ST_ALLOC | order):
            return -1
        step = <i64>1 << new_order
        i = 0
        while i < (<i64>1 << order):
            self.state[pfn + i] = <u8>((s & ~BUDDY_ORDER_MASK) | new_order)
            i += step
        return 0

    cdef int alloc_order(self, i64 pfn) noexcept nogil:
        """Order of the allocated block whose head is pfn, or -1."""
        if pfn < 0 or pfn >= self.nr_pages:
            return -1
        cdef u8 s = self.state[pfn]
        if s & BUDDY_ST_ALLOC:
            return s & BUDDY_ORDER_MASK
        return -1

    cdef bint pfn_is_free(self, i64 pfn) noexcept nogil:
        """Whether pfn lies in a free buddy block (like PageBuddy on its head)."""
        cdef int k
        cdef i64 h
        cdef u8 s
        if pfn < 0 or pfn >= self.nr_pages:
            return False
        if self.def_pfn <= pfn < self.def_end:
            return True                                  # a deferred (free) block
        for k in range(self.max_order + 1):
            h = pfn & ~((<i64>1 << k) - 1)
            s = self.state[h]
            if s & BUDDY_ST_FREE and (s & BUDDY_ORDER_MASK) >= k:
                return True
            if s & BUDDY_ST_ALLOC and (s & BUDDY_ORDER_MASK) >= k:
                return False
        return False

    # ============================================================ Python API
    def _check_order(self, order):
        order = as_int(order, "order")
        if order < 0 or order > self.max_order:
            raise ValueError(f"order {order} out of range 0..{self.max_order} (MAX_PAGE_ORDER)")
        return order

    def _check_pfn(self, pfn):
        pfn = as_int(pfn, "pfn")
        if pfn < 0 or pfn >= self.nr_pages:
            raise ValueError(f"pfn {pfn} outside memory (0..{self.nr_pages - 1})")
        return pfn

    def describe(self, pfn):
        """What the frame at pfn is: ('free', head, order, mt), ('allocated', head,
        order, mt)."""
        pfn = self._check_pfn(pfn)
        cdef int k
        cdef i64 h
        cdef u8 s
        if self.def_pfn <= pfn < self.def_end:           # a deferred block
            return ("free", pfn & ~((1 << self.max_order) - 1), self.max_order, "movable")
        for k in range(self.max_order + 1):
            h = pfn & ~((<i64>1 << k) - 1)
            s = self.state[h]
            if (s & (BUDDY_ST_FREE | BUDDY_ST_ALLOC)) and (s & BUDDY_ORDER_MASK) >= k:
                kind = "free" if s & BUDDY_ST_FREE else "allocated"
                return (kind, h, s & BUDDY_ORDER_MASK,
                        MIGRATETYPE_NAMES[(s & BUDDY_MT_MASK) >> BUDDY_MT_SHIFT].lower())
        return ("unknown", pfn, -1, None)

    def _why_not_allocated(self, pfn, order):
        kind, head, o, mt = self.describe(pfn)
        if kind == "free":
            return f"it is free (in the free order-{o} block at pfn {head})"
        if head == pfn:
            return f"it is allocated at order {o}, not {order}"
        return f"it is inside the order-{o} allocation at pfn {head}"

    def alloc_pages(self, order, migratetype="movable"):
        """Allocate 2**order frames; returns the pfn, or -1 when no block is free
        (counted as a failure, never an exception)."""
        order = self._check_order(order)
        cdef int mt = migratetype_index(migratetype)
        cdef int o = order
        cdef i64 r
        with nogil:
            r = self.alloc(o, mt)
        return r

    def free_pages(self, pfn, order):
        """Free the block allocated at pfn with this order (ValueError naming the pfn
        when it is not exactly such an allocated block)."""
        order = self._check_order(order)
        pfn = self._check_pfn(pfn)
        if pfn & ((1 << order) - 1):
            raise ValueError(f"pfn {pfn} is not aligned to order {order}")
        if self.alloc_order(pfn) != order:
            raise ValueError(f"cannot free pfn {pfn} at order {order}: "
                             + self._why_not_allocated(pfn, order))
        self.free(pfn, order)

    def split(self, pfn, order, new_order):
        """Split the allocated order-`order` block at pfn into blocks of new_order
        (as split_page() does for order 0); each is then freed on its own."""
        order = self._check_order(order)
        new_order = self._check_order(new_order)
        pfn = self._check_pfn(pfn)
        if new_order > order:
            raise ValueError(f"new_order {new_order} > order {order}")
        if self.split_alloc(pfn, order, new_order) < 0:
            raise ValueError(f"cannot split pfn {pfn} at order {order}: "
                             + self._why_not_allocated(pfn, order))

    def alloc_batch(self, orders, migratetype="movable", out=None):
        """Allocate one block per entry of ``orders`` in one nogil loop; returns an
        int64 array of pfns (-1 where the allocation failed). ``migratetype`` is one
        name/int for all, or an array of ints (0..2) of the same length. ``out``, if
        given, is a writable C-contiguous int64 array of the same length that receives
        the pfns (and is returned), so a caller allocating in rounds reuses one buffer.
        A bad order, migratetype or ``out`` raises ValueError naming it before anything
        is allocated."""
        o = _int64_vector(orders, "orders")
        cdef const i64 *ov = <const i64*>cnp.PyArray_DATA(o)
        cdef Py_ssize_t i, n = cnp.PyArray_DIMS(o)[0], bad = -1
        cdef u64 maxo = <u64>self.max_order
        if out is None:
            out = np.empty(n, dtype=np.int64)
        elif not (isinstance(out, np.ndarray) and out.dtype == np.int64 and out.ndim == 1
                  and out.shape[0] == n and out.flags.c_contiguous and out.flags.writeable):
            raise ValueError(f"out must be a writable C-contiguous int64 array of length {n}, "
                             f"got {type(out).__name__} "
                             f"{getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}")
        with nogil:
            for i in range(n):
                if <u64>ov[i] > maxo:           # negative orders wrap above maxo
                    bad = i
                    break
        if bad >= 0:
            raise ValueError(f"order {ov[bad]} at index {bad} out of range 0..{self.max_order}")
        cdef i64 *res = <i64*>cnp.PyArray_DATA(out)
        cdef const signed char *mv
        cdef int mt
        if isinstance(migratetype, (str, int, np.integer)):
            mt = migratetype_index(migratetype)
            with nogil:
                for i in range(n):
                    res[i] = self._alloc(<int>ov[i], mt)     # orders checked above
            return out
        m = np.asarray(migratetype)
        if m.shape != o.shape:
            raise ValueError(f"migratetype array shape {m.shape} != orders shape {o.shape}")
        if m.size and not np.issubdtype(m.dtype, np.integer):
            raise TypeError(f"migratetype array must be integers, got dtype {m.dtype}")
        if m.size and ((m < 0) | (m >= MIGRATE_PCPTYPES)).any():
            bad = np.flatnonzero((m < 0) | (m >= MIGRATE_PCPTYPES))[0]
            raise ValueError(f"migratetype {int(m[bad])} at index {bad} out of range 0..2")
        m = np.ascontiguousarray(m, dtype=np.int8)
        mv = <const signed char*>cnp.PyArray_DATA(m)
        with nogil:
            for i in range(n):
                res[i] = self._alloc(<int>ov[i], mv[i])     # orders and types checked above
        return out

    def free_batch(self, pfns, orders):
        """Free blocks (pfns[i], orders[i]) in order in one nogil loop. Stops at the
        first entry that is not an allocated block of that order and raises
        ValueError naming it; the entries before it stay freed."""
        p = _int64_vector(pfns, "pfns")
        o = _int64_vector(orders, "orders")
        if p.shape != o.shape:
            raise ValueError(f"pfns and orders must be 1-D of equal length, got {p.shape} and {o.shape}")
        cdef const i64 *pv = <const i64*>cnp.PyArray_DATA(p)
        cdef const i64 *ov = <const i64*>cnp.PyArray_DATA(o)
        cdef Py_ssize_t i, n = cnp.PyArray_DIMS(p)[0], bad = -1
        cdef i64 pfn
        cdef i64 order
        cdef u64 maxo = <u64>self.max_order, nr = <u64>self.nr_pages
        cdef const u8 *state = self.state
        with nogil:
            for i in range(n):
                pfn = pv[i]
                order = ov[i]
                # free()'s check: an allocated head of exactly this order
                if (<u64>order > maxo or <u64>pfn >= nr
                        or (state[pfn] & (BUDDY_ST_ALLOC | BUDDY_ORDER_MASK)) != (BUDDY_ST_ALLOC | order)):
                    bad = i
                    break
                self._free_block(pfn, <int>order)      # free() without its repeated check
        if bad >= 0:
            pfn = pv[bad]
            order = ov[bad]
            if order < 0 or order > self.max_order:
                raise ValueError(f"order {order} at index {bad} out of range 0..{self.max_order}")
            if pfn < 0 or pfn >= self.nr_pages:
                raise ValueError(f"pfn {pfn} at index {bad} outside memory (0..{self.nr_pages - 1})")
            raise ValueError(f"cannot free pfn {pfn} at order {order} (index {bad}): "
                             + self._why_not_allocated(pfn, order))

    # ------------------------------------------------------------- inspection
    def free_blocks(self, by_migratetype=False):
        """Free block counts per order (zone->free_area[order].nr_free), or with
        by_migratetype=True an array [migratetype, order] as /proc/pagetypeinfo."""
        a = _counts(self.nr_free, (self.max_order + 1) * MIGRATE_TYPES)
        a = a.reshape(self.max_order + 1, MIGRATE_TYPES).T.copy()
        return a if by_migratetype else a.sum(axis=0)

    def free_pages_per_order(self):
        """Free pages held in blocks of each order (nr_free[order] << order)."""
        return self.free_blocks() << np.arange(self.max_order + 1, dtype=np.int64)

    def free_list(self, order, migratetype):
        """The pfns on one free list, head first (the order Linux allocates them)."""
        order = self._check_order(order)
        cdef int mt
        if isinstance(migratetype, str) and migratetype.strip().lower() == "highatomic":
            mt = MIGRATE_HIGHATOMIC
        else:
            mt = migratetype_index(migratetype)
        self.deferred_init_all()                         # the list's tail is deferred
        out = []
        cdef i32 p = self.head[order * MIGRATE_TYPES + mt]
        cdef i64 guard = 0
        while p >= 0 and guard <= self.nr_pages:
            out.append(p)
            p = self.next_[p]
            guard += 1
        return np.array(out, dtype=np.int64)

    def free_mask(self):
        """Boolean array: True for every frame inside a free buddy block."""
        out = np.zeros(self.nr_pages, dtype=np.uint8)
        cdef u8[::1] m = out
        cdef i64 pfn = 0, nr, i
        cdef u8 s
        with nogil:
            while pfn < self.nr_pages:
                if pfn == self.def_pfn and pfn < self.def_end:     # the deferred blocks
                    for i in range(pfn, self.def_end):
                        m[i] = 1
                    pfn = self.def_end
                    continue
                s = self.state[pfn]
                if s & (BUDDY_ST_FREE | BUDDY_ST_ALLOC):
                    nr = <i64>1 << (s & BUDDY_ORDER_MASK)
                    if s & BUDDY_ST_FREE:
                        for i in range(pfn, pfn + nr):
                            m[i] = 1
                    pfn += nr
                else:
                    pfn += 1
        return out.view(np.bool_)

    def pageblock_migratetypes(self):
        """Copy of the per-pageblock migratetype array (uint8, 0..2)."""
        return np.array(self._pbmt_a, copy=True)

    def pageblock_counts(self):
        """Pageblocks of each migratetype ("Number of blocks type" in pagetypeinfo)."""
        return np.bincount(np.asarray(self._pbmt_a), minlength=MIGRATE_TYPES).astype(np.int64)

    def frame_state(self):
        """Read-only view of the per-frame state byte (head: FREE 0x40 / ALLOC 0x80
        | migratetype << 4 | order; 0 elsewhere). Links the deferred blocks first."""
        self.deferred_init_all()
        v = np.asarray(self._state_a).view()
        v.flags.writeable = False
        return v

    def unusable_index(self, permille=False):
        """mm/vmstat.c unusable_free_index() per order: the fraction of free memory
        in blocks smaller than the order. As the kernel's integer 0..1000 with
        permille=True (what /sys/kernel/debug/extfrag/unusable_index prints as
        %d.%03d), else that integer / 1000 as floats."""
        blocks = self.free_blocks()
        orders = np.arange(self.max_order + 1, dtype=np.int64)
        free_pages = int((blocks << orders).sum())
        out = np.empty(self.max_order + 1, dtype=np.int64)
        for k in range(self.max_order + 1):
            if free_pages == 0:
                out[k] = 1000
                continue
            # fill_contig_page_info(): free_blocks_suitable in units of order k
            suitable = int((blocks[k:] << (orders[k:] - k)).sum())
            out[k] = ((free_pages - (suitable << k)) * 1000) // free_pages
        return out if permille else out / 1000.0

    def fragmentation_index(self, permille=False):
        """mm/vmstat.c __fragmentation_index() per order (extfrag_index): -1000
        (-1.0) when a block of that order is free; otherwise towards 0 a failure
        is for lack of memory, towards 1000 (1.0) for fragmentation (compaction
        runs above vm.extfrag_threshold = 500). 0 when nothing is free."""
        blocks = self.free_blocks()
        orders = np.arange(self.max_order + 1, dtype=np.int64)
        free_pages = int((blocks << orders).sum())
        total = int(blocks.sum())
        out = np.empty(self.max_order + 1, dtype=np.int64)
        for k in range(self.max_order + 1):
            suitable = int((blocks[k:] << (orders[k:] - k)).sum())
            if total == 0:
                out[k] = 0
            elif suitable:
                out[k] = -1000
            else:
                out[k] = 1000 - (1000 + (free_pages * 1000) // (1 << k)) // total
        return out if permille else out / 1000.0

    def unusable_index_text(self, node=0, zone="Normal"):
        """As /sys/kernel/debug/extfrag/unusable_index (unusable_show_print)."""
        idx = self.unusable_index(permille=True)
        return (f"Node {node}, zone {zone:>8s} "
                + "".join(f"{int(i) // 1000}.{int(i) % 1000:03d} " for i in idx) + "\n")

    def buddyinfo(self, node=0, zone="Normal"):
        """One line as /proc/buddyinfo (frag_show_print): free blocks per order."""
        return (f"Node {node}, zone {zone:>8s} "
                + "".join(f"{int(n):6d} " for n in self.free_blocks()) + "\n")

    def pagetypeinfo(self, node=0, zone="Normal"):
        """As /proc/pagetypeinfo (pagetypeinfo_showfree + showblockcount), with the
        kernel's cap: counts of 100000 or more print as '>100000'."""
        per = self.free_blocks(by_migratetype=True)
        lines = [f"Page block order: {self.pageblock_order}",
                 f"Pages per block:  {1 << self.pageblock_order}", "",
                 f"{'Free pages count per migrate type at order':<43s} "
                 + "".join(f"{o:6d} " for o in range(self.max_order + 1))]
        for mt in range(MIGRATE_TYPES):
            row = f"Node {node:4d}, zone {zone:>8s}, type {MIGRATETYPE_NAMES[mt]:>12s} "
            for n in per[mt]:
                n = int(n)
                row += (">" + f"{100000:6d} ") if n >= 100000 else f"{n:6d} "
            lines.append(row)
        lines.append("")
        lines.append(f"{'Number of blocks type ':<23s}"
                     + "".join(f"{MIGRATETYPE_NAMES[mt]:>12s} " for mt in range(MIGRATE_TYPES)))
        counts = self.pageblock_counts()
        lines.append(f"Node {node}, zone {zone:>8s} " + "".join(f"{int(c):12d} " for c in counts))
        return "\n".join(lines) + "\n"

    def stats(self):
        """Counters: allocs/failures/frees per order (int64 arrays), nr_free pages,
        free blocks per order, pageblock claims and steals (extfrag events),
        bad frees from C callers."""
        return {
            "nr_pages": self.nr_pages,
            "nr_free": self.nr_free_pages,
            "nr_allocated": self.nr_pages - self.nr_free_pages,
            "allocs": _counts(self.nr_alloc, self.max_order + 1),
            "failures": _counts(self.nr_fail, self.max_order + 1),
            "frees": _counts(self.nr_frees, self.max_order + 1),
            "free_blocks": self.free_blocks(),
            "claimed": self.nr_claimed,
            "stolen": self.nr_stolen,
            "bad_frees": self.nr_bad_free,
        }

    @property
    def bytes_per_frame(self):
        """Per-frame bytes of allocator state (next + prev + state)."""
        return 4 + 4 + 1

    @property
    def nbytes(self):
        """Bytes of all allocator arrays."""
        cdef int nlists = (self.max_order + 1) * MIGRATE_TYPES
        return (sum(a.nbytes for a in (self._next_a, self._prev_a, self._state_a, self._pbmt_a))
                + nlists * (4 + 4 + 8) + 3 * (self.max_order + 1) * 8)

    # ------------------------------------------------------------------ churn
    def churn(self, seed, steps, orders=None, weights=None,
              migratetypes=("movable", "unmovable", "reclaimable"), mt_weights=(16, 3, 1),
              fill=0.75, free_prob=0.25):
        """Age memory with a seeded mix of allocations and frees (one nogil loop).

        Each step draws r1 from splitmix64(seed). If blocks from this churn are live
        and either allocated memory (all of it, nr_pages - nr_free) has reached
        ``fill`` * nr_pages or r1 % 10**6 < free_prob * 10**6, it frees a random
        live block (index r2 % live, swap-removed). Otherwise it allocates an
        order drawn from ``orders`` (default 0..min(4, max_order)) by integer
        ``weights`` (default equal) (r2) with a migratetype
        drawn from ``migratetypes`` by ``mt_weights`` (r3); a failure is counted
        and nothing is kept. Random frees among mixed orders and types leave holes
        that split high-order blocks: watch buddyinfo()/unusable_index().

        The blocks still live at the end stay allocated and are returned
        (``live_pfns``, ``live_orders``) so they can be freed with free_batch().
        Returns a dict with allocs, failures, frees and failures_per_order.
        """
        seed = as_int(seed, "seed")
        steps = as_int(steps, "steps")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if orders is None:
            orders = range(min(4, self.max_order) + 1)
        elif isinstance(orders, (int, np.integer)):
            orders = (orders,)
        ol = [self._check_order(x) for x in orders]
        if not ol:
            raise ValueError("orders must not be empty")
        wl = [1] * len(ol) if weights is None else [as_int(w, "weight") for w in weights]
        if len(wl) != len(ol) or any(w < 0 for w in wl) or sum(wl) == 0:
            raise ValueError(f"weights {weights!r} must be non-negative ints, one per order, not all 0")
        if isinstance(migratetypes, (str, int, np.integer)):
            migratetypes = (migratetypes,)
        ml = [migratetype_index(x) for x in migratetypes]
        if not ml:
            raise ValueError("migratetypes must not be empty")
        mwl = [1] * len(ml) if mt_weights is None else [as_int(w, "mt_weight") for w in mt_weights]
        if len(mwl) != len(ml) or any(w < 0 for w in mwl) or sum(mwl) == 0:
            raise ValueError(f"mt_weights {mt_weights!r} must be non-negative ints, one per migratetype, not all 0")
        if not (0.0 <= fill <= 1.0):
            raise ValueError(f"fill must be in [0, 1], got {fill!r}")
        if not (0.0 <= free_prob <= 1.0):
            raise ValueError(f"free_prob must be in [0, 1], got {free_prob!r}")
        cdef i64 target = <i64>(fill * self.nr_pages)
        cdef u64 free_ppm = <u64>round(free_prob * 1000000)
        o_a = np.array(ol, dtype=np.int64)
        ocum_a = np.cumsum(np.array(wl, dtype=np.int64))
        m_a = np.array(ml, dtype=np.int64)
        mcum_a = np.cumsum(np.array(mwl, dtype=np.int64))
        cap = min(steps, self.nr_pages) + 1
        live_p = np.empty(cap, dtype=np.int64)
        live_o = np.empty(cap, dtype=np.int8)
        fails = np.zeros(self.max_order + 1, dtype=np.int64)
        cdef i64[::1] ov = o_a, ocum = ocum_a, mv = m_a, mcum = mcum_a, lp = live_p, fv = fails
        cdef signed char[::1] lo = live_o
        cdef int no = len(ol), nm = len(ml), order, mt
        cdef u64 rng = <u64>(seed & 0xFFFFFFFFFFFFFFFF), r1, r2
        cdef i64 step, nsteps = steps, n_live = 0, j, pfn, nalloc = 0, nfail = 0, nfree = 0
        with nogil:
            for step in range(nsteps):
                r1 = _splitmix64(&rng)
                if n_live > 0 and ((self.nr_pages - self.nr_free_pages) >= target
                                   or r1 % 1000000 < free_ppm):
                    j = <i64>(_splitmix64(&rng) % <u64>n_live)
                    self.free(lp[j], lo[j])
                    n_live -= 1
                    lp[j] = lp[n_live]
                    lo[j] = lo[n_live]
                    nfree += 1
                else:
                    order = <int>ov[_pick(&ocum[0], no, _splitmix64(&rng))]
                    mt = <int>mv[_pick(&mcum[0], nm, _splitmix64(&rng))]
                    pfn = self.alloc(order, mt)
                    if pfn < 0:
                        nfail += 1
                        fv[order] += 1
                    else:
                        lp[n_live] = pfn
                        lo[n_live] = <signed char>order
                        n_live += 1
                        nalloc += 1
        return {"allocs": nalloc, "failures": nfail, "frees": nfree,
                "failures_per_order": fails,
                "live_pfns": live_p[:n_live].copy(),
                "live_orders": live_o[:n_live].astype(np.int64)}

    # ------------------------------------------------------------------ check
    def check(self):
        """Walk every free list and every frame; raise AssertionError naming the
        first broken invariant: links consistent (prev/next, head/tail), each free
        block aligned, inside memory, on the list of its pageblock's migratetype,
        no overlap between blocks, no free buddy pair that should have merged,
        nr_free per list and NR_FREE_PAGES equal a recount, no bad C-level frees."""
        cdef i64 nr = self.nr_pages
        cdef int order, mt, li, nlists = (self.max_order + 1) * MIGRATE_TYPES
        cdef i32 p, prev
        cdef i64 count, total_free = 0, listed = 0, size, b
        cdef u8 s
        self.deferred_init_all()                         # walk every frame's real state
        if self.nr_bad_free:
            raise AssertionError(f"{self.nr_bad_free} bad frees from C callers "
                                 "(pfn not an allocated head of that order)")
        onlist = np.zeros(nr, dtype=np.uint8)
        cdef u8[::1] ol = onlist
        for order in range(self.max_order + 1):
            size = <i64>1 << order
            for mt in range(MIGRATE_TYPES):
                li = order * MIGRATE_TYPES + mt
                p = self.head[li]
                prev = -1
                count = 0
                while p >= 0:
                    if p >= nr:
                        raise AssertionError(f"free list (order {order}, {MIGRATETYPE_NAMES[mt]}) "
                                             f"links to pfn {p} outside memory")
                    if ol[p]:
                        raise AssertionError(f"pfn {p} is on a free list twice (or the list "
                                             f"order {order} {MIGRATETYPE_NAMES[mt]} loops)")
                    ol[p] = 1
                    if self.prev_[p] != prev:
                        raise AssertionError(f"pfn {p} on list (order {order}, {MIGRATETYPE_NAMES[mt]}): "
                                             f"prev is {self.prev_[p]}, expected {prev}")
                    s = self.state[p]
                    if s != (BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | order):
                        raise AssertionError(f"pfn {p} on list (order {order}, {MIGRATETYPE_NAMES[mt]}) "
                                             f"has state {s:#04x}, expected "
                                             f"{BUDDY_ST_FREE | (mt << BUDDY_MT_SHIFT) | order:#04x}")
                    if p & (size - 1):
                        raise AssertionError(f"free block pfn {p} order {order} is not aligned")
                    if p + size > nr:
                        raise AssertionError(f"free block pfn {p} order {order} runs past the "
                                             f"end of memory ({nr} pages)")
                    if mt >= MIGRATE_PCPTYPES:
                        raise AssertionError(f"free block pfn {p} on the {MIGRATETYPE_NAMES[mt]} list")
                    if order >= self.pageblock_order:
                        for b in range(p >> self.pageblock_order, (p + size) >> self.pageblock_order):
                            if self.pb_mt[b] != mt:
                                raise AssertionError(
                                    f"free block pfn {p} order {order} on the {MIGRATETYPE_NAMES[mt]} "
                                    f"list covers pageblock {b} of type "
                                    f"{MIGRATETYPE_NAMES[self.pb_mt[b]]}")
                    elif self.pb_mt[p >> self.pageblock_order] != mt:
                        raise AssertionError(
                            f"free block pfn {p} order {order} on the {MIGRATETYPE_NAMES[mt]} list "
                            f"lies in pageblock {p >> self.pageblock_order} of type "
                            f"{MIGRATETYPE_NAMES[self.pb_mt[p >> self.pageblock_order]]}")
                    # __free_one_page would have merged it with a free buddy
                    if order < self.max_order:
                        b = p ^ size
                        if self._page_is_buddy(b, order) and (
                                order < self.pageblock_order
                                or self.pb_mt[b >> self.pageblock_order] < MIGRATE_PCPTYPES):
                            raise AssertionError(f"free blocks pfn {min(p, b)} and {max(p, b)} "
                                                 f"(order {order}) are buddies and were not merged")
                    count += 1
                    total_free += size
                    prev = p
                    p = self.next_[p]
                if self.tail[li] != prev:
                    raise AssertionError(f"free list (order {order}, {MIGRATETYPE_NAMES[mt]}) tail is "
                                         f"{self.tail[li]}, last element is {prev}")
                if self.nr_free[li] != count:
                    raise AssertionError(f"nr_free (order {order}, {MIGRATETYPE_NAMES[mt]}) is "
                                         f"{self.nr_free[li]}, recount {count}")
        if total_free != self.nr_free_pages:
            raise AssertionError(f"NR_FREE_PAGES is {self.nr_free_pages}, free lists hold {total_free}")
        # every frame belongs to exactly one block: walk heads from pfn 0
        cdef i64 pfn = 0
        while pfn < nr:
            s = self.state[pfn]
            if s & BUDDY_ST_FREE:
                if not ol[pfn]:
                    raise AssertionError(f"pfn {pfn} is marked free (order {s & BUDDY_ORDER_MASK}) "
                                         "but is on no free list")
            elif s & BUDDY_ST_ALLOC:
                size = <i64>1 << (s & BUDDY_ORDER_MASK)
                if pfn & (size - 1) or pfn + size > nr:
                    raise AssertionError(f"allocated block pfn {pfn} order {s & BUDDY_ORDER_MASK} "
                                         "is misaligned or runs past memory")
            else:
                raise AssertionError(f"pfn {pfn} is inside no block (expected a block head "
                                     "after the previous block)")
            size = <i64>1 << (s & BUDDY_ORDER_MASK)
            for b in range(pfn + 1, pfn + size):
                if self.state[b] != 0:
                    raise AssertionError(f"pfn {b} inside the block at pfn {pfn} (order "
                                         f"{s & BUDDY_ORDER_MASK}) has state {self.state[b]:#04x}: "
                                         "blocks overlap")
            pfn += size
        return True
