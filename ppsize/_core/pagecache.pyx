# cython: freethreading_compatible = False
"""The page cache: every file's address_space, buffered reads with readahead, truncate and
invalidation (mm/filemap.c, mm/readahead.c, mm/truncate.c, include/linux/pagemap.h).

Kernel sources followed (github linux-mm/linux-mm): mm/readahead.c at 2aaa83f5 (v6.16+:
ra->order stored in file_ra_state, page_cache_ra_order honouring new_order, the async
window end aligned to the folio order), mm/filemap.c (filemap_get_pages with last_index
rounded up to the min folio size, filemap_create_folio, __filemap_get_folio's order loop,
v6.12+ LBS min order), mm/truncate.c (truncate_inode_partial_folio with try_folio_split,
v6.16+), lib/xarray.c through ppsize._core.xarray.

State (struct-of-arrays, indexed by file id): i_size, min/max folio order
(mapping_set_folio_order_range), nrpages, file_ra_state, the mapping's xarray_t (all
mappings share one XAPool, like the one radix_tree_node slab cache) and pages read.
Entries in i_pages are real entries xa_mk_pfn(pfn) of the folio's head frame. Cache folios are
folios of the kernel's FolioTable (owner -2 - file, index = file page index), their frames
a buddy block allocated MIGRATE_MOVABLE, freed back when the folio leaves the cache.

I/O is instant: a folio added by readahead is read (PG_uptodate, pages_read += nr) when
read_pages() submits it. No writeback, no reclaim and so no shadow entries (truncate,
invalidate and drop_caches do not leave shadows in Linux either).
"""
import numpy as np
cimport numpy as cnp
cimport cython
from cpython.ref cimport Py_REFCNT
from libc.string cimport memset

from ppsize._core._types cimport u64, i64, i32, u32, u8, NR_ORDERS
from libc cimport errno as cerrno
from ppsize._core.framemem import frame_array
from ppsize._core.xarray cimport (xarray_t, xa_pool_t, XAPool, xa_init, xa_destroy, xa_load,
                                  xa_store, xa_add, xa_erase, xa_find_range, xa_try_split,
                                  xa_check_tree, xa_clear_mark, xa_is_value, xa_is_pfn,
                                  xa_mk_pfn, xa_to_pfn)
from ppsize._core.buddy cimport BuddyAllocator, MIGRATE_MOVABLE
from ppsize._core.folio cimport (FolioTable, PG_uptodate, PG_dirty, PG_locked, PG_lru,
                                 PG_writeback, PG_mlocked, PG_readahead)
from ppsize._core.kcore cimport (KernelCore, ra_order_info, HOOK_RA, HOOK_BAD_RANGE, HOOK_BAD_LOW,
                                HOOK_BAD_HIGH, HOOK_BAD_ERROR)

from .kcore cimport xa_node_charge
cnp.import_array()

from ppsize._validate import as_int

cdef extern from *:
    """
    static inline int ppsize_pc_ffs(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int ppsize_pc_ilog2(unsigned long long x) { return 63 - __builtin_clzll(x); }
    """
    int ppsize_pc_ffs(unsigned long long x) nogil      # __ffs (x != 0)
    int ppsize_pc_ilog2(unsigned long long x) nogil    # ilog2 (x != 0)

# the errnos the C interface returns negated (libc.errno: Python's errno values)
ENOENT = cerrno.ENOENT
ENOMEM = cerrno.ENOMEM
EEXIST = cerrno.EEXIST
EINVAL = cerrno.EINVAL
ELOOP = cerrno.ELOOP
FOLIO_FLAG_READAHEAD = PG_readahead
RA_DTYPE = np.dtype([("start", np.int64), ("size", np.int64), ("async_size", np.int64),
                     ("order", np.uint32), ("mmap_miss", np.int32), ("prev_pos", np.int64),
                     ("ra_pages", np.int64)])


cdef inline i64 round_down(i64 x, i64 a) noexcept nogil:
    return x & ~(a - 1)


cdef inline i64 round_up(i64 x, i64 a) noexcept nogil:
    return (x + a - 1) & ~(a - 1)


cdef inline i64 roundup_pow_of_two(i64 x) noexcept nogil:
    if x <= 1:
        return 1
    return (<i64>1) << (ppsize_pc_ilog2(<u64>(x - 1)) + 1)


cdef inline i64 get_init_ra_size(i64 size, i64 max) noexcept nogil:
    # mm/readahead.c get_init_ra_size
    cdef i64 newsize = roundup_pow_of_two(size)
    if newsize <= max // 32:
        newsize = newsize * 4
    elif newsize <= max // 4:
        newsize = newsize * 2
    else:
        newsize = max
    return newsize


cdef inline i64 get_next_ra_size(file_ra_state *ra, i64 max) noexcept nogil:
    # mm/readahead.c get_next_ra_size
    cdef i64 cur = ra.size
    if cur < max // 16:
        return 4 * cur
    if cur <= max // 2:
        return 2 * cur
    return max


cdef inline i64 ra_skip(PageCache pc, i64 *r_idx, i64 *r_nr, i64 min_nr, i64 index) noexcept nogil:
    # page_cache_ra_unbounded's skip: read what is batched, step past the entry at
    # ractl->_index; returns the loop's next i
    pc.read_pages(r_idx, r_nr)
    r_idx[0] += min_nr
    return r_idx[0] + r_nr[0] - index


def init_ra_size(size, max):
    """get_init_ra_size (exposed for tests)."""
    return get_init_ra_size(size, max)


# no_gc_clear: a Kernel is freed by the cycle collector, and __dealloc__ walks every
# file's XArray (self._xa_a) to give its nodes back to self.pool
@cython.no_gc_clear
@cython.final
cdef class PageCache:
    """All files' page cache on a KernelCore `k` (frames from k.buddy, folios in k.folios).

    ra_pages: bdi->ra_pages (default VM_READAHEAD_PAGES = 128K / PAGE_SIZE); io_pages:
    bdi->io_pages (default = ra_pages, i.e. reads larger than the window are not
    allowed a larger one)."""

    def __cinit__(self, KernelCore k, ra_pages=None, io_pages=None, i64 capacity=64):
        self.k = k
        self.buddy = k.buddy
        self.folios = k.folios
        self.kshift = k.kshift
        self.max_pagecache_order = min(11, k.pmd_order)
        self.ra_pages = (128 * 1024) >> self.kshift if ra_pages is None else int(ra_pages)
        self.io_pages = self.ra_pages if io_pages is None else int(io_pages)
        if self.ra_pages < 0 or self.io_pages < 0:
            raise ValueError("ra_pages and io_pages must be >= 0")
        # 4 KiB host pages: files' nodes are filled and read file by file
        self.pool = XAPool(64, False)
        # every mapping's nodes are radix_tree_node slab objects of the kernel
        self.pool.p.charge = xa_node_charge
        self.pool.p.charge_ctx = <void*>k
        k.add_xa_user(self)
        self.eof_order = -1
        self.nr_files = 0
        self.cap = 0
        self._grow(max(capacity, 4))

    def _grow(self, i64 newcap):
        # per-file arrays double; a large one comes from framemem (frame_array: the
        # host pages of a dropped Kernel's arrays, zeroed, instead of the host's first
        # touch of fresh ones, which costs more than creating the files); xarray_t and
        # file_ra_state are plain structs (no self-pointers), so copying them is safe
        cdef i64 old = self.cap
        cur = (self._isize_a, self._minord_a, self._maxord_a, self._large_a, self._nrpages_a,
               self._ra_a, self._xa_a, self._read_a)
        new = []
        for i, (dt, per) in enumerate(((np.int64, 1), (np.uint8, 1), (np.uint8, 1), (np.uint8, 1),
                                       (np.int64, 1), (RA_DTYPE, 1), (np.uint8, sizeof(xarray_t)),
                                       (np.int64, 1))):
            dt = np.dtype(dt)
            a = frame_array(newcap * per * dt.itemsize, np.uint8, "files").view(dt)
            if old:
                a[:old * per] = cur[i]
            new.append(a)
        (self._isize_a, self._minord_a, self._maxord_a, self._large_a, self._nrpages_a,
         self._ra_a, self._xa_a, self._read_a) = new
        if RA_DTYPE.itemsize != sizeof(file_ra_state):
            raise RuntimeError("file_ra_state layout differs from RA_DTYPE")
        self.i_size = <i64 *>cnp.PyArray_DATA(self._isize_a)
        self.min_order = <u8 *>cnp.PyArray_DATA(self._minord_a)
        self.max_order = <u8 *>cnp.PyArray_DATA(self._maxord_a)
        self.large = <u8 *>cnp.PyArray_DATA(self._large_a)
        self.nrpages = <i64 *>cnp.PyArray_DATA(self._nrpages_a)
        self.ra = <file_ra_state *>cnp.PyArray_DATA(self._ra_a)
        self.xa = <xarray_t *>cnp.PyArray_DATA(self._xa_a)
        self.pages_read = <i64 *>cnp.PyArray_DATA(self._read_a)
        self.cap = newcap

    # ------------------------------------------------------------ files
    def new_file(self, i64 size, int min_order=0, int max_order=-1):
        """Create an inode of `size` bytes: mapping_set_folio_order_range(min, max) (max -1:
        MAX_PAGECACHE_ORDER, i.e. mapping_set_large_folios; 0: no large folios);
        file_ra_state_init. Returns the file id."""
        cdef i64 f = self.nr_files
        if size < 0:
            raise ValueError(f"file size {size} is negative")
        if f == self.cap:
            self._grow(self.cap * 2)
        self._init_file(f, size, min_order, max_order)
        self.nr_files = f + 1
        return f

    def new_files(self, const i64[::1] sizes, int min_order=0, int max_order=-1):
        """new_file of each of `sizes` in one nogil loop (ids consecutive, in order;
        the same state as one new_file call per size). Returns the first id."""
        cdef Py_ssize_t i, n = sizes.shape[0]
        cdef i64 first = self.nr_files, cap = self.cap
        for i in range(n):
            if sizes[i] < 0:
                raise ValueError(f"file size {sizes[i]} (file {i} of the batch) is negative")
        while cap < first + n:
            cap *= 2
        if cap != self.cap:
            self._grow(cap)
        with nogil:
            for i in range(n):
                self._init_file(first + i, sizes[i], min_order, max_order)
        self.nr_files = first + n
        return first

    cdef void _init_file(self, i64 f, i64 size, int min_order, int max_order) noexcept nogil:
        # alloc_inode + mapping_set_folio_order_range + file_ra_state_init
        self.i_size[f] = size
        self.large[f] = AS_LARGE if max_order != 0 else 0
        self.nrpages[f] = 0
        self.pages_read[f] = 0
        xa_init(&self.xa[f], &self.pool.p)
        memset(&self.ra[f], 0, sizeof(file_ra_state))
        self.ra[f].ra_pages = self.ra_pages          # file_ra_state_init
        self.ra[f].prev_pos = -1
        self.min_order[f] = 0
        self.max_order[f] = 0
        self.mapping_set_folio_order_range(f, min_order,
                                           self.max_pagecache_order if max_order < 0 else max_order)

    def __dealloc__(self):
        cdef i64 f
        # the nodes go back to the pool only if someone else still holds it (a pool
        # only this cache sees is freed with it: walking every file's tree would be
        # wasted, 0.2 s of a 2M-file compare)
        if self.pool is not None and self.cap and Py_REFCNT(self.pool) > 1:
            self.pool.p.charge = NULL          # the kernel goes too: nothing to give back
            for f in range(self.nr_files):
                xa_destroy(&self.xa[f])

    # ------------------------------------------------------------ helpers
    cdef i32 mapping_owner(self, i64 f) noexcept nogil:
        # FolioTable owner of a cache folio: distinct from process ids (>= 0) and -1
        return <i32>(-2 - f)

    cdef void mapping_set_folio_order_range(self, i64 f, int min, int max) noexcept nogil:
        # include/linux/pagemap.h mapping_set_folio_order_range
        if min > self.max_pagecache_order:
            min = self.max_pagecache_order
        if max > self.max_pagecache_order:
            max = self.max_pagecache_order
        if max < min:
            max = min
        if min < 0:
            min = 0
        self.min_order[f] = <u8>min
        self.max_order[f] = <u8>max

    cdef i64 alloc_folio(self, int order) noexcept nogil:
        # filemap_alloc_folio: a buddy block made a folio (refcount 1, locked, !uptodate)
        cdef i64 pfn = self.buddy.alloc(order, MIGRATE_MOVABLE)
        if pfn < 0:
            self.nr_alloc_fail += 1
            return -1
        self.folios.folio_init(pfn, order, PG_locked, -1, 0)
        return pfn

    cdef void put_new_folio(self, i64 pfn) noexcept nogil:
        # folio_put of a folio that never made it into the cache
        cdef int order = self.folios.folio_free(pfn)
        if order >= 0:
            self.buddy.free(pfn, order)

    cdef void remove_folio(self, i64 f, i64 pfn) noexcept nogil:
        # filemap_remove_folio -> __filemap_remove_folio (no shadow) + folio_put. A
        # folio with more references (long-term pins) leaves the cache but lives on,
        # owned by no mapping, until the last unpin_user_page frees it.
        cdef int order = self.folios.order_[pfn]
        cdef i64 nr = (<i64>1) << order
        xa_erase(&self.xa[f], self.folios.index[pfn])
        self.nrpages[f] -= nr
        self.nr_cached -= nr
        if order < NR_ORDERS:
            self.removed[order] += 1
        if self.folios.refcount[pfn] > 1:
            self.folios.ref_add(pfn, -1)
            self.folios.owner[pfn] = -1
            self.folios.flags[pfn] = self.folios.flags[pfn] & ~(PG_lru | PG_dirty)
            return
        self.folios.folio_free(pfn)
        self.buddy.free(pfn, order)

    cdef bint folio_busy(self, i64 pfn) noexcept nogil:
        # what makes mapping_evict_folio / find_lock_entries skip a folio: locked, dirty,
        # writeback, mlocked, mapped or extra references (pins: refcount > 1)
        cdef int order = self.folios.order_[pfn]
        if self.folios.flags[pfn] & (PG_locked | PG_dirty | PG_writeback | PG_mlocked):
            return True
        if self.folios.refcount[pfn] > 1:
            return True
        return self.folios.folio_mapcount(pfn) > 0

    cdef int eof_pick_order(self, i64 f, i64 index, int order) noexcept nogil:
        # The large-unless-eof policy (the thread's alternative; no Linux function):
        # a new folio holding index gets max(order, eof_order), clamped to the
        # mapping's max order, lowered while the aligned folio would pass the page
        # holding EOF (as page_cache_ra_order's "Don't allocate pages past EOF"),
        # never below the mapping's min order.
        cdef int o = order
        cdef i64 nr_file = (self.i_size[f] + ((<i64>1) << self.kshift) - 1) >> self.kshift
        if self.eof_order > o:
            o = self.eof_order
        if o > self.max_order[f]:
            o = self.max_order[f]
        if o < self.min_order[f]:
            o = self.min_order[f]
        while o > self.min_order[f] and round_down(index, (<i64>1) << o) + ((<i64>1) << o) > nr_file:
            o -= 1
        return o

    cdef i64 eof_add_folio(self, i64 f, i64 index, int order, u32 flags, i64 *start, int *o_out) noexcept nogil:
        # large-unless-eof: add the folio eof_pick_order chose at the aligned start,
        # else (-EEXIST from smaller folios cached before, or no memory) the next
        # smaller order down to the min order, always holding index (as
        # __filemap_get_folio's order loop); read at once. pfn, or -errno.
        cdef int o = self.eof_pick_order(f, index, order), err = -cerrno.ENOMEM
        cdef i64 pfn, s
        while True:
            s = round_down(index, (<i64>1) << o)
            pfn = self.alloc_folio(o)
            if pfn >= 0:
                err = self.filemap_add_folio(f, pfn, s, o, flags)
                if not err:
                    self.folios.flags[pfn] = (self.folios.flags[pfn] & ~PG_locked) | PG_uptodate
                    self.pages_read[f] += (<i64>1) << o
                    self.nr_pages_read += (<i64>1) << o
                    start[0] = s
                    o_out[0] = o
                    return pfn
                self.put_new_folio(pfn)
            if o <= self.min_order[f]:
                return err
            o -= 1

    # ------------------------------------------------------------ mm/filemap.c
    cdef int filemap_add_folio(self, i64 f, i64 pfn, i64 index, int order, u32 flags) noexcept nogil:
        """__filemap_add_folio (+ the LRU add of filemap_add_folio): 0, -EINVAL if the
        order is below the mapping's min order (the proposal's bail-out; a VM_BUG_ON in
        Linux) or the index is not aligned to it, -EEXIST if a folio overlaps (nothing
        stored), value entries in the range replaced. nrpages += nr on success."""
        cdef int err
        cdef i64 nr = (<i64>1) << order
        if order < self.min_order[f]:
            self.nr_refused_min_order += 1
            return -cerrno.EINVAL
        if index & (nr - 1):
            return -cerrno.EINVAL
        err = xa_add(&self.xa[f], <u64>index, order, xa_mk_pfn(pfn))
        if err:
            return err
        self.folios.owner[pfn] = self.mapping_owner(f)
        self.folios.index[pfn] = index
        self.folios.flags[pfn] = self.folios.flags[pfn] | flags | PG_lru
        self.nrpages[f] += nr
        self.nr_cached += nr
        if order < NR_ORDERS:
            self.added[order] += 1
        return 0

    cdef i64 filemap_get_folio(self, i64 f, i64 index, int fgp_flags, int order) noexcept nogil:
        """__filemap_get_folio(mapping, index, fgp_flags | fgf_set_order(order)): the head
        pfn of the folio covering index; with FGP_CREAT a new folio is created on a miss
        (order = max(min, order) clamped to max, index aligned to the min order, order
        lowered to __ffs(index) if unaligned, tried down to the min order; -EEXIST at the
        end -> goto repeat). The new folio is read at once (uptodate, pages_read).
        -ENOENT without FGP_CREAT; -ENOMEM; -ELOOP when repeat does not end."""
        cdef u64 e
        cdef i64 pfn = -1, cidx
        cdef int min_o, o, err, repeats = 0
        while True:                                  # repeat:
            e = xa_load(&self.xa[f], <u64>index)
            if xa_is_pfn(e):
                return xa_to_pfn(e)
            if not (fgp_flags & FGP_CREAT):
                return -cerrno.ENOENT
            min_o = self.min_order[f]
            o = order if order > min_o else min_o
            index = round_down(index, (<i64>1) << min_o)      # mapping_align_index
            if self.eof_order >= 0:
                # large-unless-eof: the folio aligned around index, order chosen by
                # eof_pick_order, read at once
                pfn = self.eof_add_folio(f, index, o, 0, &cidx, &o)
                err = 0 if pfn >= 0 else <int>pfn
            else:
                if o > self.max_order[f]:
                    o = self.max_order[f]
                if index & (((<i64>1) << o) - 1):
                    o = ppsize_pc_ffs(<u64>index)
                while True:
                    err = -cerrno.ENOMEM
                    pfn = self.alloc_folio(o)           # __GFP_NORETRY above min: same here
                    if pfn >= 0:
                        err = self.filemap_add_folio(f, pfn, index, o, 0)
                        if not err:
                            break
                        self.put_new_folio(pfn)
                    if o <= min_o:
                        break
                    o -= 1
                if not err:
                    self.folios.flags[pfn] = (self.folios.flags[pfn] & ~PG_locked) | PG_uptodate
                    self.pages_read[f] += (<i64>1) << o
                    self.nr_pages_read += (<i64>1) << o
            if err == -cerrno.EEXIST:                  # at every order: goto repeat
                repeats += 1
                if repeats > GET_FOLIO_MAX_REPEAT:
                    self.nr_livelock += 1
                    return -cerrno.ELOOP
                continue
            if err:
                return err
            return pfn

    cdef int filemap_get_read_batch(self, i64 f, i64 index, i64 max, i64 *batch) noexcept nogil:
        # mm/filemap.c filemap_get_read_batch: contiguous folios from index, stopping at
        # a gap, a value entry, past max, after a !uptodate or PG_readahead folio
        cdef int n = 0
        cdef u64 e
        cdef i64 pfn
        while True:
            e = xa_load(&self.xa[f], <u64>index)
            if not xa_is_pfn(e) or index > max:
                break
            pfn = xa_to_pfn(e)
            batch[n] = pfn
            n += 1
            if n == FOLIO_BATCH_SIZE:
                break
            if not (self.folios.flags[pfn] & PG_uptodate) or (self.folios.flags[pfn] & PG_readahead):
                break
            index = self.folios.index[pfn] + ((<i64>1) << self.folios.order_[pfn])
        return n

    cdef i64 page_cache_next_miss(self, i64 f, i64 index, i64 max_scan) noexcept nogil:
        # mm/filemap.c page_cache_next_miss (v6.5+): first gap in [index, index+max_scan),
        # else index + max_scan
        cdef i64 i
        cdef u64 e
        for i in range(index, index + max_scan):
            e = xa_load(&self.xa[f], <u64>i)
            if not xa_is_pfn(e):
                return i
        return index + max_scan

    cdef i64 page_cache_prev_miss(self, i64 f, i64 index, i64 max_scan) noexcept nogil:
        # mm/filemap.c page_cache_prev_miss (v6.5+): first gap scanning down from index;
        # -1 (ULONG_MAX) when the scan wraps below 0; index - max_scan if none
        cdef i64 k
        cdef u64 e
        for k in range(max_scan):
            if index - k < 0:
                return -1
            e = xa_load(&self.xa[f], <u64>(index - k))
            if not xa_is_pfn(e):
                return index - k
        return index - max_scan

    cdef i64 filemap_read(self, i64 f, i64 pos, i64 count) noexcept nogil:
        """filemap_read(iocb at pos, count bytes) with filemap_get_pages: bytes read (short
        at EOF, 0 at or past EOF) or -errno if nothing could be read."""
        cdef file_ra_state *ra = &self.ra[f]
        cdef i64 last_pos = ra.prev_pos
        cdef i64 already = 0, isize, end_offset, index, last_index, fpos, fsize, off, nbytes
        cdef i64 min_nrbytes, pfn, cidx
        cdef i64 batch[FOLIO_BATCH_SIZE]
        cdef int n, i, err = 0, retries
        cdef u64 e
        if pos < 0:
            return -cerrno.EINVAL
        if count <= 0:
            return 0
        while True:
            isize = self.i_size[f]
            if pos >= isize:
                break
            # ---- filemap_get_pages(iocb, count, fbatch, false)
            index = pos >> self.kshift
            min_nrbytes = (<i64>1) << (self.kshift + self.min_order[f])
            last_index = round_up(pos + count, min_nrbytes) >> self.kshift
            retries = 0
            while True:                                      # retry:
                n = self.filemap_get_read_batch(f, index, last_index - 1, batch)
                if n == 0:
                    self.page_cache_sync_ra(f, index, last_index - index)
                    n = self.filemap_get_read_batch(f, index, last_index - 1, batch)
                if n == 0 and self.eof_order >= 0:
                    # filemap_create_folio under large-unless-eof
                    pfn = self.eof_add_folio(f, pos >> self.kshift, self.min_order[f], 0, &cidx, &i)
                    if pfn < 0:
                        err = <int>pfn
                        retries += 1
                        if err == -cerrno.EEXIST and retries <= GET_FOLIO_MAX_REPEAT:
                            err = 0
                            continue
                        if err == -cerrno.EEXIST:
                            self.nr_livelock += 1
                            err = -cerrno.ELOOP
                        break
                    batch[0] = pfn
                    n = 1
                if n == 0:
                    # filemap_create_folio: one min-order folio at the aligned index
                    pfn = self.alloc_folio(self.min_order[f])
                    if pfn < 0:
                        err = -cerrno.ENOMEM
                        break
                    cidx = (pos >> (self.kshift + self.min_order[f])) << self.min_order[f]
                    err = self.filemap_add_folio(f, pfn, cidx, self.min_order[f], 0)
                    if err:
                        self.put_new_folio(pfn)
                        retries += 1
                        if err == -cerrno.EEXIST and retries <= GET_FOLIO_MAX_REPEAT:
                            err = 0
                            continue                         # AOP_TRUNCATED_PAGE: retry
                        if err == -cerrno.EEXIST:
                            self.nr_livelock += 1
                            err = -cerrno.ELOOP
                        break
                    self.folios.flags[pfn] = (self.folios.flags[pfn] & ~PG_locked) | PG_uptodate
                    self.pages_read[f] += (<i64>1) << self.min_order[f]
                    self.nr_pages_read += (<i64>1) << self.min_order[f]
                    batch[0] = pfn
                    n = 1
                break
            if err:
                break
            pfn = batch[n - 1]
            if self.folios.flags[pfn] & PG_readahead:
                # filemap_readahead -> page_cache_async_ra(ractl at folio->index)
                self.page_cache_async_ra(f, self.folios.index[pfn], pfn,
                                         last_index - self.folios.index[pfn])
            # ---- copy
            isize = self.i_size[f]
            if pos >= isize:
                break
            end_offset = isize if isize < pos + count else pos + count
            for i in range(n):
                pfn = batch[i]
                fpos = self.folios.index[pfn] << self.kshift
                fsize = (<i64>1) << (self.kshift + self.folios.order_[pfn])
                if end_offset < fpos:
                    break
                off = pos & (fsize - 1)
                nbytes = end_offset - pos
                if fsize - off < nbytes:
                    nbytes = fsize - off
                already += nbytes
                pos += nbytes
                count -= nbytes
                last_pos = pos
            if not (count > 0 and pos < isize):
                break
        ra.prev_pos = last_pos
        if already:
            return already
        return err

    # ------------------------------------------------------------ mm/readahead.c
    cdef void read_pages(self, i64 *r_index, i64 *r_nr) noexcept nogil:
        # read_pages: I/O is instant; the folios were marked uptodate when added
        r_index[0] += r_nr[0]
        r_nr[0] = 0

    cdef int _ra_add(self, i64 f, i64 index, int order, bint readahead) noexcept nogil:
        # ractl_alloc_folio + filemap_add_folio, the folio read at once (read_pages)
        cdef i64 pfn = self.alloc_folio(order)
        cdef int err
        if pfn < 0:
            return -cerrno.ENOMEM
        err = self.filemap_add_folio(f, pfn, index, order, PG_readahead if readahead else 0)
        if err:
            self.put_new_folio(pfn)
            return err
        self.folios.flags[pfn] = (self.folios.flags[pfn] & ~PG_locked) | PG_uptodate
        self.pages_read[f] += (<i64>1) << order
        self.nr_pages_read += (<i64>1) << order
        return 0

    cdef void page_cache_ra_unbounded(self, i64 f, i64 *r_index, i64 nr_to_read, i64 lookahead) noexcept nogil:
        """page_cache_ra_unbounded: min-order folios over [index, index + nr_to_read),
        skipping present indices, PG_readahead on the folio at the lookahead mark.
        r_index: ractl->_index (advanced past what was read, as read_pages does)."""
        cdef int min_o = self.min_order[f]
        cdef i64 min_nr = (<i64>1) << min_o
        cdef i64 ra_index = r_index[0]
        cdef i64 index = round_down(ra_index, min_nr)     # mapping_align_index
        cdef i64 mark = -1, i = 0, r_nr = 0, r_idx, pfn, s
        cdef u64 e
        cdef int ret, o
        if lookahead <= nr_to_read:
            mark = round_up(ra_index + nr_to_read - lookahead, min_nr) - index
        nr_to_read += ra_index - index
        r_idx = index
        while i < nr_to_read:
            e = xa_load(&self.xa[f], <u64>(index + i))
            if xa_is_pfn(e):
                i = ra_skip(self, &r_idx, &r_nr, min_nr, index)
                continue
            if self.eof_order >= 0:
                # large-unless-eof: the chosen folio around index + i (its start may
                # lie before it: a gap the window did not cover)
                pfn = self.eof_add_folio(f, index + i, min_o, 0, &s, &o)
                if pfn < 0:
                    if pfn == -cerrno.ENOMEM:
                        break
                    i = ra_skip(self, &r_idx, &r_nr, min_nr, index)
                    continue
                if mark >= 0 and s <= index + mark < s + ((<i64>1) << o):
                    self.folios.flags[pfn] = self.folios.flags[pfn] | PG_readahead
                r_nr += s + ((<i64>1) << o) - (index + i)
                i = s + ((<i64>1) << o) - index
                continue
            ret = self._ra_add(f, index + i, min_o, i == mark)
            if ret < 0:
                if ret == -cerrno.ENOMEM:
                    break
                i = ra_skip(self, &r_idx, &r_nr, min_nr, index)
                continue
            r_nr += min_nr
            i += min_nr
        self.read_pages(&r_idx, &r_nr)
        r_index[0] = r_idx

    cdef void do_page_cache_ra(self, i64 f, i64 *r_index, i64 nr_to_read, i64 lookahead) noexcept nogil:
        # mm/readahead.c do_page_cache_ra: not past the page holding the last byte
        cdef i64 isize = self.i_size[f]
        cdef i64 end_index, index = r_index[0]
        if isize == 0:
            return
        end_index = (isize - 1) >> self.kshift
        if index > end_index:
            return
        if nr_to_read > end_index - index:
            nr_to_read = end_index - index + 1
        self.page_cache_ra_unbounded(f, r_index, nr_to_read, lookahead)

    cdef void force_page_cache_ra(self, i64 f, i64 index, i64 nr_to_read) noexcept nogil:
        # mm/readahead.c force_page_cache_ra: 2MB chunks, up to max(io_pages, ra_pages)
        cdef i64 max_pages = self.io_pages if self.io_pages > self.ra[f].ra_pages else self.ra[f].ra_pages
        cdef i64 chunk, r_index = index
        if nr_to_read > max_pages:
            nr_to_read = max_pages
        while nr_to_read > 0:
            chunk = (2 * 1024 * 1024) >> self.kshift
            if chunk > nr_to_read:
                chunk = nr_to_read
            self.do_page_cache_ra(f, &r_index, chunk, 0)
            nr_to_read -= chunk

    cdef void page_cache_ra_order(self, i64 f, i64 start) noexcept nogil:
        """page_cache_ra_order(ractl at start, ra): new_order = max(min_order,
        min(max_order, ra->order, ilog2(ra->size))), lowered to __ffs(index) where
        unaligned and shrunk not to pass EOF or the window; fallback to min-order
        readahead (do_page_cache_ra) for the rest on failure or without large folios."""
        cdef file_ra_state *ra = &self.ra[f]
        cdef i64 index = start, limit, mark, r_index, r_nr = 0
        cdef int min_o = self.min_order[f], new_order, order, err = 0
        cdef i64 isize = self.i_size[f]
        limit = (isize - 1) >> self.kshift if isize > 0 else (<i64>1 << 62)
        mark = index + ra.size - ra.async_size
        new_order = ra.order                   # max(ra->order, ractl->sync_mmap_order = 0)
        if self.max_order[f] == 0:             # !mapping_large_folio_support
            ra.order = 0
        else:
            if index + ra.size - 1 < limit:
                limit = index + ra.size - 1
            if new_order > self.max_order[f]:
                new_order = self.max_order[f]
            if ra.size > 0 and new_order > ppsize_pc_ilog2(<u64>ra.size):
                new_order = ppsize_pc_ilog2(<u64>ra.size)
            if new_order < min_o:
                new_order = min_o
            if self.k.has_ra_hook:
                new_order = self.ra_hook_order(f, index, new_order)
            ra.order = new_order
            index = round_down(index, (<i64>1) << min_o)
            if self.eof_order > new_order and self.max_order[f] > new_order:
                # large-unless-eof: eof_order folios over the window rounded out to
                # them; only EOF (the loop below) makes a folio smaller
                new_order = self.eof_order if self.eof_order < self.max_order[f] else self.max_order[f]
                index = round_down(index, (<i64>1) << new_order)
                r_index = round_up(start + ra.size, (<i64>1) << new_order) - 1
                limit = (isize - 1) >> self.kshift if isize > 0 else (<i64>1 << 62)
                if r_index < limit:
                    limit = r_index
            r_index = index
            while index <= limit:
                order = new_order
                if index & (((<i64>1) << order) - 1):
                    order = ppsize_pc_ffs(<u64>index)
                while order > min_o and index + ((<i64>1) << order) - 1 > limit:
                    order -= 1
                # ra_alloc_folio: PG_readahead on the folio holding the mark
                err = self._ra_add(f, index, order, index == round_down(mark, (<i64>1) << order))
                if err:
                    break
                r_nr += (<i64>1) << order
                index += (<i64>1) << order
            self.read_pages(&r_index, &r_nr)
            if not err:
                return
        # fallback:
        r_index = index
        if ra.size > index - start:
            self.do_page_cache_ra(f, &r_index, ra.size - (index - start), ra.async_size)

    cdef int ra_hook_order(self, i64 f, i64 index, int default) noexcept nogil:
        """The readahead order hook's folio order for the window at index (ppsize.hooks):
        it sees the window, the file, ra->order and the order page_cache_ra_order
        chose (``default``); the mapping's min/max order is enforced after the call:
        an order below the min is raised to it, above the max lowered to it, a
        negative one or one above MAX_PAGE_ORDER refused (``default``), each counted."""
        cdef ra_order_info* info = self.k.ra_info
        cdef int r
        cdef bint failed
        info.index = index
        info.size = self.ra[f].size
        info.async_size = self.ra[f].async_size
        info.i_size = self.i_size[f]
        info.nrpages = self.nrpages[f]
        self.k.fill_nr_free(info.nr_free)
        info.file = <i32>f
        info.ra_order = <i32>self.ra[f].order
        info.default_order = default
        info.min_order = self.min_order[f]
        info.max_order = self.max_order[f]
        info.max_page_order = self.buddy.max_order
        r = self.k.call_hook(HOOK_RA, &failed)
        if failed:
            self.k.hook_bad_order(HOOK_RA, HOOK_BAD_ERROR, index, r)
            return default
        if r < 0 or r > self.buddy.max_order:
            self.k.hook_bad_order(HOOK_RA, HOOK_BAD_RANGE, index, r)
            return default
        if r < self.min_order[f]:
            self.k.hook_bad_order(HOOK_RA, HOOK_BAD_LOW, index, r)
            return self.min_order[f]
        if r > self.max_order[f]:
            self.k.hook_bad_order(HOOK_RA, HOOK_BAD_HIGH, index, r)
            return self.max_order[f]
        return r

    cdef void page_cache_sync_ra(self, i64 f, i64 index, i64 req_count) noexcept nogil:
        """page_cache_sync_ra: a miss at index reading req_count pages: start of file,
        oversized or sequential -> new window (get_init_ra_size); else look back in the
        cache for a stream (page_cache_prev_miss); small random reads read as is."""
        cdef file_ra_state *ra = &self.ra[f]
        cdef i64 max_pages, contig_count, miss, r_index
        cdef u64 prev_index
        if ra.ra_pages == 0:
            req_count = 1
            self.force_page_cache_ra(f, index, req_count)
            return
        # ractl_max_pages
        max_pages = ra.ra_pages
        if req_count > max_pages and self.io_pages > max_pages:
            max_pages = req_count if req_count < self.io_pages else self.io_pages
        prev_index = (<u64>ra.prev_pos) >> self.kshift
        if index == 0 or req_count > max_pages or (<u64>index - prev_index) <= 1:
            ra.start = index
            ra.size = get_init_ra_size(req_count, max_pages)
            ra.async_size = ra.size - req_count if ra.size > req_count else ra.size >> 1
        else:
            miss = self.page_cache_prev_miss(f, index - 1, max_pages)
            contig_count = index - miss - 1
            if contig_count <= req_count:
                r_index = index
                self.do_page_cache_ra(f, &r_index, req_count, 0)
                return
            if miss == -1:
                contig_count *= 2
            ra.start = index
            ra.size = contig_count + req_count
            if ra.size > max_pages:
                ra.size = max_pages
            ra.async_size = 1
        # readit:
        ra.order = 0
        self.nr_sync_ra += 1
        self.page_cache_ra_order(f, ra.start)

    cdef void page_cache_async_ra(self, i64 f, i64 index, i64 pfn, i64 req_count) noexcept nogil:
        """page_cache_async_ra: the PG_readahead folio at index was reached: clear the mark;
        if it is where the window expected it, push the window forward (get_next_ra_size),
        else rebuild one from the cache (page_cache_next_miss); ra->order += 2; the end
        aligned to the order; read with page_cache_ra_order."""
        cdef file_ra_state *ra = &self.ra[f]
        cdef i64 max_pages, expected, start, end, aligned_end, align
        cdef int sh
        if ra.ra_pages == 0:
            return
        if self.folios.flags[pfn] & PG_writeback:
            return
        self.folios.flags[pfn] = self.folios.flags[pfn] & ~PG_readahead
        max_pages = ra.ra_pages
        if req_count > max_pages and self.io_pages > max_pages:
            max_pages = req_count if req_count < self.io_pages else self.io_pages
        expected = round_down(ra.start + ra.size - ra.async_size,
                              (<i64>1) << self.folios.order_[pfn])
        if index == expected:
            ra.start += ra.size
            start = get_next_ra_size(ra, max_pages)
            if start > ra.size:
                ra.size = start
        else:
            start = self.page_cache_next_miss(f, index + 1, max_pages)
            if start == 0 or start - index > max_pages:
                return
            ra.start = start
            ra.size = start - index
            ra.size += req_count
            ra.size = get_next_ra_size(ra, max_pages)
        # readit:
        ra.order += 2
        sh = ppsize_pc_ffs(<u64>max_pages)         # ffs(max_pages) - 1
        align = (<i64>1) << (ra.order if ra.order < <u32>sh else sh)
        end = ra.start + ra.size
        aligned_end = round_down(end, align)
        if aligned_end > ra.start:
            ra.size -= end - aligned_end
        ra.async_size = ra.size
        self.nr_async_ra += 1
        self.page_cache_ra_order(f, ra.start)

    # ------------------------------------------------------------ mm/truncate.c
    cdef int split_folio_at(self, i64 f, i64 pfn, i64 at_index, int new_order) noexcept nogil:
        """try_folio_split_to_order(folio, page at at_index, new_order): the non-uniform
        split of __split_unmapped_folio: halve the folio repeatedly, keeping the half that
        holds at_index, down to new_order; each step one xas_try_split. 0, or -EINVAL
        (new_order not below the order, or extra references: pinned)."""
        cdef int order = self.folios.order_[pfn]
        cdef i64 idx = self.folios.index[pfn], half_nr
        cdef int half
        if new_order >= order or new_order < self.min_order[f]:
            return -cerrno.EINVAL
        if self.folios.refcount[pfn] > 1:
            return -cerrno.EINVAL
        while order > new_order:
            half = order - 1
            half_nr = (<i64>1) << half
            if xa_try_split(&self.xa[f], <u64>idx, half) != 0:
                return -cerrno.ENOMEM
            self.buddy.split_alloc(pfn, order, half)
            self.folios.folio_split(pfn, half)
            xa_store(&self.xa[f], <u64>(idx + half_nr), half, xa_mk_pfn(pfn + half_nr))
            if at_index >= idx + half_nr:
                pfn += half_nr
                idx += half_nr
            order = half
        return 0

    cdef void truncate_inode_pages_range(self, i64 f, i64 lstart) noexcept nogil:
        """truncate_inode_pages(mapping, lstart) = truncate_inode_pages_range(lstart, -1):
        every folio from page ceil(lstart) on removed; the folio holding lstart handled by
        truncate_inode_partial_folio (removed if lstart is its start; else split with
        try_folio_split at lstart's page to the min order; if that fails: kept when dirty,
        else removed)."""
        cdef i64 start = (lstart + ((<i64>1) << self.kshift) - 1) >> self.kshift
        cdef i64 pfn, fidx, pos, size, offset, cur, idx
        cdef int order
        cdef u64 e
        e = xa_load(&self.xa[f], <u64>(lstart >> self.kshift))
        if xa_is_pfn(e):
            pfn = xa_to_pfn(e)
            fidx = self.folios.index[pfn]
            order = self.folios.order_[pfn]
            pos = fidx << self.kshift
            size = (<i64>1) << (self.kshift + order)
            offset = lstart - pos if pos < lstart else 0
            if offset == 0:
                self.remove_folio(f, pfn)             # length == size: truncate_inode_folio
            elif order > 0:
                if self.split_folio_at(f, pfn, lstart >> self.kshift, self.min_order[f]) != 0:
                    if self.folios.flags[pfn] & PG_dirty:
                        start = fidx + ((<i64>1) << order)
                    else:
                        self.remove_folio(f, pfn)
        # the find_lock_entries loop: every folio inside [start, -1]
        cur = start
        while True:
            e = xa_find_range(&self.xa[f], <u64>cur, <u64>0x7fffffffffffffff, -1, <u64 *>&idx, &order)
            if not e:
                break
            if not xa_is_value(e):
                # find_lock_entries: a folio partially outside the range (the split
                # EOF folio holding lstart's page) is not returned
                if self.folios.index[xa_to_pfn(e)] >= start:
                    self.remove_folio(f, xa_to_pfn(e))
            else:
                xa_erase(&self.xa[f], <u64>idx)
            cur = idx + ((<i64>1) << order)

    cdef i64 invalidate_mapping_pages(self, i64 f, i64 start, i64 end) noexcept nogil:
        """invalidate_mapping_pages(mapping, start, end) (mapping_try_invalidate): folios
        entirely inside [start, end] that are not locked, dirty, under writeback, mlocked,
        mapped or pinned are removed. Returns pages removed."""
        cdef i64 busy = 0
        return self.remove_idle_folios(f, start, end, True, &busy)

    cdef i64 filemap_drop_range(self, i64 f, i64 start, i64 end, i64 *blocked) noexcept nogil:
        """Drop every folio overlapping [start, end] (pages) unless busy (locked, dirty,
        writeback, mlocked, mapped or pinned: those pages are added to *blocked), and the
        value entries there. For the min-order transition policies. Returns pages dropped."""
        return self.remove_idle_folios(f, start, end, False, blocked)

    cdef i64 remove_idle_folios(self, i64 f, i64 start, i64 end, bint contained, i64 *busy) noexcept nogil:
        # the walk both share: folios not folio_busy leave the cache (only those entirely
        # inside [start, end] if contained, else every overlapping one and the value
        # entries); the pages of busy ones are added to *busy
        cdef i64 cur = start, idx, pfn, nr, count = 0
        cdef int order
        cdef u64 e
        while cur <= end:
            e = xa_find_range(&self.xa[f], <u64>cur, <u64>end, -1, <u64 *>&idx, &order)
            if not e:
                break
            nr = (<i64>1) << order
            if xa_is_value(e):
                if not contained:
                    xa_erase(&self.xa[f], <u64>idx)
            elif not contained or (idx >= start and idx + nr - 1 <= end):
                pfn = xa_to_pfn(e)
                if self.folio_busy(pfn):
                    busy[0] += nr
                else:
                    self.remove_folio(f, pfn)
                    count += nr
            cur = idx + nr
        return count

    # ------------------------------------------------------------ Python-level access
    cdef i64 _check_file(self, object f) except -1:
        if type(f) is not int:
            f = as_int(f, "file id")
        if not 0 <= f < self.nr_files:
            raise ValueError(f"unknown file id {f!r} ({self.nr_files} files)")
        return f

    def read(self, f, i64 pos, i64 count):
        """filemap_read: bytes read (short at EOF) or -errno."""
        cdef i64 fi = self._check_file(f), r
        with nogil:
            r = self.filemap_read(fi, pos, count)
        return r

    def read_range(self, i64 first, i64 n):
        """read(2) of files first .. first + n - 1 once in full, in id order (one nogil
        loop, as read_files of those ids); bytes read, or the first negative errno."""
        cdef i64 f, r, total = 0
        if first < 0 or n < 0 or first + n > self.nr_files:
            raise ValueError(f"files {first} .. {first + n - 1}: not in 0 .. {self.nr_files - 1}")
        with nogil:
            for f in range(first, first + n):
                if self.i_size[f] > 0:
                    r = self.filemap_read(f, 0, self.i_size[f])
                    if r < 0:
                        total = r
                        break
                    total += r
        return total

    def read_files(self, const i64[::1] fids):
        """read(2) of each file once in full (one nogil loop); bytes read, or the
        first negative errno."""
        cdef Py_ssize_t i
        cdef i64 r, total = 0
        for i in range(fids.shape[0]):
            self._check_file(fids[i])
        with nogil:
            for i in range(fids.shape[0]):
                if self.i_size[fids[i]] > 0:
                    r = self.filemap_read(fids[i], 0, self.i_size[fids[i]])
                    if r < 0:
                        total = r
                        break
                    total += r
        return total

    def get_folio(self, f, i64 index, bint create=True, int order=0):
        """__filemap_get_folio(FGP_CREAT if create, order): head pfn or -errno."""
        cdef i64 fi = self._check_file(f), r
        with nogil:
            r = self.filemap_get_folio(fi, index, FGP_CREAT if create else 0, order)
        return r

    def get_folio_batch(self, f, indices, bint create=True, int order=0):
        """filemap_get_folio for every index, one nogil loop: head pfns (or -errno)."""
        cdef i64 fi = self._check_file(f)
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        out = np.empty(idx.shape[0], dtype=np.int64)
        cdef const i64[::1] iv = idx
        cdef i64[::1] ov = out
        cdef i64 k, n = idx.shape[0]
        cdef int fl = FGP_CREAT if create else 0
        with nogil:
            for k in range(n):
                ov[k] = self.filemap_get_folio(fi, iv[k], fl, order)
        return out

    def truncate_victim(self, f, i64 size):
        """The folio truncate_inode_partial_folio would remove whole although it holds
        pages below ``size`` (it cannot be split to the min order, or is pinned, and is
        clean): (first, last) page index, or None. truncate_inode_folio unmaps it
        first (truncate_cleanup_folio -> unmap_mapping_folio); the page cache has no
        rmap, so Kernel.truncate does that with this range."""
        cdef i64 fi = self._check_file(f), pfn, fidx
        cdef int order
        cdef u64 e
        if size < 0:
            raise ValueError(f"size {size} is negative")
        e = xa_load(&self.xa[fi], <u64>(size >> self.kshift))
        if not xa_is_pfn(e):
            return None
        pfn = xa_to_pfn(e)
        fidx = self.folios.index[pfn]
        order = self.folios.order_[pfn]
        if (fidx << self.kshift) >= size or order == 0 or self.folios.flags[pfn] & PG_dirty:
            return None            # removed from its start (already unmapped), kept, or split
        if self.min_order[fi] >= order or self.folios.refcount[pfn] > 1:
            return fidx, fidx + ((<i64>1) << order) - 1
        return None

    def truncate(self, f, i64 size):
        """truncate_setsize: i_size = size, then truncate_pagecache(inode, size)."""
        cdef i64 fi = self._check_file(f)
        if size < 0:
            raise ValueError(f"size {size} is negative")
        self.i_size[fi] = size
        with nogil:
            self.truncate_inode_pages_range(fi, size)

    def invalidate(self, f, i64 start=0, i64 end=-1):
        """invalidate_mapping_pages(start, end) (end -1: to the end). Pages removed."""
        cdef i64 fi = self._check_file(f), r
        if end < 0:
            end = 0x7fffffffffffffff
        with nogil:
            r = self.invalidate_mapping_pages(fi, start, end)
        return r

    def drop_range(self, f, i64 start, i64 end):
        """filemap_drop_range: (pages dropped, pages blocked)."""
        cdef i64 fi = self._check_file(f), r, blocked = 0
        with nogil:
            r = self.filemap_drop_range(fi, start, end, &blocked)
        return r, blocked

    def drop_caches(self):
        """echo 1 > drop_caches: invalidate_mapping_pages(0, -1) of every file."""
        cdef i64 f, r = 0
        with nogil:
            for f in range(self.nr_files):
                r += self.invalidate_mapping_pages(f, 0, 0x7fffffffffffffff)
        return r

    def set_folio_order_range(self, f, int min, int max):
        """mapping_set_folio_order_range (clamped; max raised to min)."""
        cdef i64 fi = self._check_file(f)
        self.mapping_set_folio_order_range(fi, min, max)

    def set_no_map_pages(self, f):
        """The file is mapped through vm_ops without ->map_pages (a special mapping's
        image: special_mapping_vmops): faults on it map only the faulting page, no
        fault-around (do_read_fault's should_fault_around is false)."""
        cdef i64 fi = self._check_file(f)
        self.large[fi] |= AS_NO_MAP_PAGES

    def set_flags(self, f, i64 index, int mask, bint on=True):
        """Set/clear folio flags on the cached folio covering index (tests, pins later).
        Returns False if no folio is cached there."""
        cdef i64 fi = self._check_file(f)
        cdef u64 e = xa_load(&self.xa[fi], <u64>index)
        if not xa_is_pfn(e):
            return False
        if on:
            self.folios.set_flags(xa_to_pfn(e), mask)
        else:
            self.folios.clear_flags(xa_to_pfn(e), mask)
        return True

    def writeback(self, f):
        """Write back file f's dirty folios (the write_cache_pages loop of
        filemap_fdatawrite + folio_end_writeback, I/O instant): PG_dirty and the
        PAGECACHE_TAG_DIRTY mark cleared. Returns pages cleaned. (folio_mkclean of
        the mappings is the caller's: Kernel.writeback.)"""
        cdef i64 fi = self._check_file(f), idx, pfn, n = 0
        cdef u64 cur = 0, e
        cdef int order
        while True:
            e = xa_find_range(&self.xa[fi], cur, <u64>0x7fffffffffffffff, 0, <u64 *>&idx, &order)
            if not e:
                break
            cur = <u64>idx + ((<u64>1) << order)
            if xa_is_value(e):
                continue
            pfn = xa_to_pfn(e)
            if self.folios.flags[pfn] & PG_dirty:
                self.folios.flags[pfn] = self.folios.flags[pfn] & ~PG_dirty
                n += (<i64>1) << order
            xa_clear_mark(&self.xa[fi], <u64>idx, PAGECACHE_TAG_DIRTY)
        return n

    def file_info(self, f):
        """dict: i_size, min_order, max_order, large_folios, nrpages, pages_read,
        xa_nodes, and the file_ra_state fields (ra_*)."""
        cdef i64 fi = self._check_file(f)
        r = self._ra_a[fi]
        return {"i_size": int(self.i_size[fi]), "min_order": int(self.min_order[fi]),
                "max_order": int(self.max_order[fi]), "large_folios": bool(self.large[fi] & AS_LARGE),
                "map_pages": not self.large[fi] & AS_NO_MAP_PAGES,
                "nrpages": int(self.nrpages[fi]), "pages_read": int(self.pages_read[fi]),
                "xa_nodes": int(self.xa[fi].nr_nodes),
                "ra_start": int(r["start"]), "ra_size": int(r["size"]),
                "ra_async_size": int(r["async_size"]), "ra_order": int(r["order"]),
                "ra_prev_pos": int(r["prev_pos"]), "ra_mmap_miss": int(r["mmap_miss"]),
                "ra_pages": int(r["ra_pages"])}

    def folios_of(self, f):
        """(index int64, order int8, pfn int64, flags uint16) of every cached folio."""
        cdef i64 fi = self._check_file(f)
        cdef i64 cur = 0, idx, n = 0
        cdef int order
        cdef u64 e
        out_i, out_o, out_p = [], [], []
        while True:
            e = xa_find_range(&self.xa[fi], <u64>cur, <u64>0x7fffffffffffffff, -1, <u64 *>&idx, &order)
            if not e:
                break
            out_i.append(idx)
            out_o.append(order)
            out_p.append(xa_to_pfn(e) if not xa_is_value(e) else -1)
            cur = idx + ((<i64>1) << order)
        pf = np.array(out_p, dtype=np.int64)
        fl = np.zeros(pf.shape[0], dtype=np.uint16)
        for k in range(pf.shape[0]):
            if pf[k] >= 0:
                fl[k] = self.folios.flags[pf[k]]
        return (np.array(out_i, dtype=np.int64), np.array(out_o, dtype=np.int8), pf, fl)

    def counters(self):
        """Global counters: cached pages, pages read, ra events, folios added/removed per
        order, XArray nodes (pool), failures."""
        return {"nr_cached": self.nr_cached, "pages_read": self.nr_pages_read,
                "sync_ra": self.nr_sync_ra, "async_ra": self.nr_async_ra,
                "alloc_fail": self.nr_alloc_fail, "livelock": self.nr_livelock,
                "refused_min_order": self.nr_refused_min_order,
                "added": [self.added[o] for o in range(NR_ORDERS)],
                "removed": [self.removed[o] for o in range(NR_ORDERS)],
                "xa_nodes": self.pool.p.nr_nodes}

    def check_file(self, f, bint strict_min=True):
        """Raise AssertionError on the first broken invariant of file f's cache: its
        XArray consistent, entries real, each folio aligned to its order, >= the min order
        (unless not strict_min: a file the `range` policy left mixed), no overlaps, in
        the FolioTable as a head of that order with this mapping as owner and the right
        index, nrpages = recount, node count = tree's."""
        cdef i64 fi = self._check_file(f)
        cdef i64 cur = 0, idx, pfn, total = 0, prev_end = 0, nr
        cdef int order
        cdef u64 e
        cdef int min_o = self.min_order[fi]
        cdef i32 owner = self.mapping_owner(fi)
        xa_check_tree(&self.xa[fi])
        while True:
            e = xa_find_range(&self.xa[fi], <u64>cur, <u64>0x7fffffffffffffff, -1, <u64 *>&idx, &order)
            if not e:
                break
            nr = (<i64>1) << order
            if xa_is_value(e):
                raise AssertionError(f"file {fi}: value entry at {idx} (no shadows are made)")
            pfn = xa_to_pfn(e)
            if idx & (nr - 1):
                raise AssertionError(f"file {fi}: folio at index {idx} of order {order} unaligned")
            if order < min_o and strict_min:
                raise AssertionError(f"file {fi}: folio at {idx} of order {order} < min order {min_o}")
            if idx < prev_end:
                raise AssertionError(f"file {fi}: folio at {idx} overlaps the previous one")
            if pfn < 0 or pfn >= self.folios.nr_pages or self.folios.order_[pfn] != order:
                raise AssertionError(f"file {fi}: entry at {idx} -> pfn {pfn} is not a folio head "
                                     f"of order {order}")
            if self.folios.owner[pfn] != owner or self.folios.index[pfn] != idx:
                raise AssertionError(f"file {fi}: folio pfn {pfn} owner/index "
                                     f"{self.folios.owner[pfn]}/{self.folios.index[pfn]}, "
                                     f"expected {owner}/{idx}")
            if self.buddy.alloc_order(pfn) != order:
                raise AssertionError(f"file {fi}: folio pfn {pfn} is not an allocated buddy "
                                     f"block of order {order}")
            total += nr
            prev_end = idx + nr
            cur = prev_end
        if total != self.nrpages[fi]:
            raise AssertionError(f"file {fi}: nrpages {self.nrpages[fi]}, recount {total}")
        return total

    def check(self, mixed=()):
        """check_file for every file (files in `mixed` without the min-order test),
        node pool accounting, Cached = sum of nrpages, every FolioTable folio owned by a
        mapping is in that mapping."""
        cdef i64 f, total = 0, nodes = 0
        for f in range(self.nr_files):
            total += self.check_file(f, f not in mixed)
            nodes += self.xa[f].nr_nodes
        if total != self.nr_cached:
            raise AssertionError(f"Cached {self.nr_cached} pages, files hold {total}")
        self.pool.check()
        if nodes != self.pool.p.nr_nodes:
            raise AssertionError(f"pool has {self.pool.p.nr_nodes} live nodes, files {nodes}")
        arr = self.folios.as_numpy()
        heads = np.flatnonzero(arr["order"] >= 0)
        own = arr["owner"][heads]
        mine = heads[(own <= -2) & (own > -2 - self.nr_files)]
        held = int(np.left_shift(1, arr["order"][mine].astype(np.int64)).sum()) if mine.size else 0
        if held != total:
            raise AssertionError(f"FolioTable holds {held} pages owned by mappings, cache {total}")
        return True
