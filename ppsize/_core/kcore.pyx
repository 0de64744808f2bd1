# The kernel's shared state (see kcore.pxd).
cimport numpy as cnp
from libc cimport errno as cerrno

import operator
import weakref

import numpy as np

from ._types cimport u64, i64, i32, u8, NR_ORDERS
from .buddy cimport BuddyAllocator, MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_TYPES
from .folio cimport FolioTable, PG_uptodate, PG_zero
from .framemem cimport FrameMem
from .vma cimport VM_HUGEPAGE, VM_NOHUGEPAGE

cnp.import_array()

OWNER_TAGS = {"pgtable": PGTABLE_OWNER, "slab": SLAB_OWNER}
KMEM_CACHES = {"radix_tree_node": CACHE_XA_NODE, "nr_caches": NR_CACHES}   # cache_stats indices
XA_NODE_SLAB_SIZE = 584     # radix_tree_node's object size with SLUB's free pointer
                            # (576-byte xa_node + 8; /proc/slabinfo objsize on x86-64 6.x)
SLUB_MIN_OBJECTS = 12       # calculate_order: 4 * (fls(nr_cpu_ids) + 1), 2 CPUs (this
                            # machine: radix_tree_node 14 objects per 2-page slab)
SLUB_MAX_ORDER = 3          # slub_max_order = PAGE_ALLOC_COSTLY_ORDER


def slab_order(size, page_size, min_objects=SLUB_MIN_OBJECTS, max_order=SLUB_MAX_ORDER):
    """mm/slub.c calculate_order + calc_slab_order for objects of ``size`` bytes:
    (order, objects per slab). The smallest order >= get_order(min_objects * size)
    whose leftover is at most 1/fraction of the slab, fraction 16, 8, 4, 2."""
    min_order = max(0, (-(-min_objects * size // page_size) - 1).bit_length())
    for fraction in (16, 8, 4, 2):
        for order in range(min(min_order, max_order), max_order + 1):
            slab = page_size << order
            if slab % size <= slab // fraction:
                return order, slab // size
    return max_order, (page_size << max_order) // size


cdef int xa_node_charge(void* k, int nr) noexcept nogil:
    """The page cache's XArray nodes: +1 kmem_cache_alloc(radix_tree_node_cachep)
    (0, or -ENOMEM when no slab page can be had), -1 kmem_cache_free."""
    if nr > 0:
        return (<KernelCore>k).cache_alloc(CACHE_XA_NODE)
    (<KernelCore>k).cache_free(CACHE_XA_NODE)
    return 0


cdef class KernelCore:
    """Frames, folios, the zero page and the THP policy shared by all MMs."""

    def __cinit__(self, i64 nr_pages, int kshift, int max_order, int pageblock_order, int pmd_order):
        cdef int order
        # one per-frame allocator for all of them: frames the buddy has never handed
        # out (its deferred blocks) cost no host memory in any array
        frames = FrameMem(nr_pages)
        self.buddy = BuddyAllocator(nr_pages, max_order, pageblock_order, frames)
        self.folios = FolioTable(nr_pages, frames)
        self.kshift = kshift
        self.pmd_order = pmd_order
        # The zero page and the huge zero folio share one reserved, naturally
        # aligned region (Linux: empty_zero_page in the image; the huge zero
        # folio allocated on first use), so a native 16K/64K PTE can map it too.
        order = pmd_order
        while order > 0 and (<i64>1 << order) > nr_pages // 4:
            order -= 1
        self.zero_order = order
        self.zero_pfn = self.buddy.alloc(order, MIGRATE_UNMOVABLE)
        if self.zero_pfn < 0:
            raise MemoryError("no memory for the zero page")
        self.folios.folio_init(self.zero_pfn, order, PG_zero | PG_uptodate, -1, 0)
        self._anon_excl_a = frames.array(np.uint8)
        self.anon_excl = <u8*>cnp.PyArray_DATA(self._anon_excl_a)
        self.use_zero_page = True
        self.thp_top = THP_ALWAYS
        self.thp_always = 0
        self.thp_madvise = 0
        self.thp_inherit = (<u64>1) << pmd_order     # default: only PMD size, inherit
        for order in range(NR_CACHES):
            self.caches[order].size = 0
            self.caches[order].head = -1
        # radix_tree_node_cachep: SLAB_RECLAIM_ACCOUNT, so __GFP_RECLAIMABLE pages
        self.setup_cache(CACHE_XA_NODE, XA_NODE_SLAB_SIZE, MIGRATE_RECLAIMABLE)
        self._xa_users = weakref.WeakSet()
        self._hook_objs = [None, None, None, None]
        self.hook_error = None

    cdef bint is_zero_pfn(self, i64 pfn) noexcept nogil:
        return self.zero_pfn <= pfn < self.zero_pfn + ((<i64>1) << self.zero_order)

    cdef u64 allowable_orders(self, u64 vm_flags) noexcept nogil:
        """thp_vma_allowable_orders for an anonymous VMA: the per-size settings
        (always | madvise with VM_HUGEPAGE | inherit when the top level allows),
        none with VM_NOHUGEPAGE; anon orders are 2..PMD order."""
        cdef u64 mask
        if vm_flags & VM_NOHUGEPAGE:
            return 0
        mask = self.thp_always
        if vm_flags & VM_HUGEPAGE:
            mask |= self.thp_madvise
        if self.thp_top == THP_ALWAYS or (self.thp_top == THP_MADVISE and vm_flags & VM_HUGEPAGE):
            mask |= self.thp_inherit
        return mask & ((((<u64>1) << (self.pmd_order + 1)) - 1) & ~(<u64>3))

    cdef void count_fault(self, int order, bint ok) noexcept nogil:
        """mthp stats: anon_fault_alloc (ok) or anon_fault_fallback at an order."""
        if ok:
            self.fault_alloc[order] += 1
        else:
            self.fault_fallback[order] += 1

    cdef void count_oom(self) noexcept nogil:
        """A fault that ended in VM_FAULT_OOM."""
        self.nr_oom += 1

    cdef void anon_add(self, i64 nr) noexcept nogil:
        self.anon_pages += nr

    # ------------------------------------------------------------ kernel memory
    cdef i64 pgtable_alloc(self, int order, i32 mm_id) noexcept nogil:
        """pagetable_alloc(GFP_PGTABLE_USER, order) + pagetable_ctor (include/linux/mm.h):
        an unmovable block made a page-table folio of the MM, NR_PAGETABLE += its pages;
        -1 when the buddy has none (counted; the caller's VM_FAULT_OOM or -ENOMEM)."""
        cdef i64 pfn = self.buddy.alloc(order, MIGRATE_UNMOVABLE)
        if pfn < 0:
            self.nr_pgtable_fail += 1
            return -1
        self.folios.folio_init(pfn, order, 0, PGTABLE_OWNER, mm_id)
        self.nr_pagetable += (<i64>1) << order
        return pfn

    cdef void pgtable_free(self, i64 pfn, int order) noexcept nogil:
        """pagetable_dtor + pagetable_free: the page-table folio back to the buddy."""
        self.folios.folio_free(pfn)
        self.buddy.free(pfn, order)
        self.nr_pagetable -= (<i64>1) << order

    def setup_cache(self, int c, i64 size, int mt):
        """kmem_cache_create of cache ``c`` for objects of ``size`` bytes (slab order and
        objects per slab from :func:`slab_order`); a cache already set up keeps its state."""
        if not 0 <= c < NR_CACHES or size <= 0:
            raise ValueError(f"cache {c} (0..{NR_CACHES - 1}) or object size {size} out of range")
        if self.caches[c].size:
            if self.caches[c].size != size:
                raise ValueError(f"cache {c} holds {self.caches[c].size}-byte objects, not {size}")
            return
        order, per = slab_order(size, 1 << self.kshift)
        self.caches[c].size = size
        self.caches[c].per_slab = per
        self.caches[c].order = order
        self.caches[c].mt = mt
        self.caches[c].objects = 0
        self.caches[c].nr_slabs = 0
        self.caches[c].head = -1
        self.caches[c].nr_fail = 0

    def pgd_cache(self, i64 size):
        """The pgd_cache for PGDs of ``size`` bytes (below a kernel page: arm64
        pgd_alloc's kmem_cache_alloc(pgd_cache, GFP_PGTABLE_USER)), set up on first use."""
        cdef int c
        for c in range(CACHE_PGD0, NR_CACHES):
            if self.caches[c].size == size:
                return c
        for c in range(CACHE_PGD0, NR_CACHES):
            if self.caches[c].size == 0:
                self.setup_cache(c, size, MIGRATE_UNMOVABLE)
                return c
        raise ValueError(f"more than {NR_CACHES - CACHE_PGD0} PGD sizes in one kernel")

    cdef int cache_alloc(self, int c) noexcept nogil:
        """kmem_cache_alloc: one object; a new slab (allocate_slab -> alloc_pages of the
        cache's order) when every slab is full. 0, or -ENOMEM (counted in nr_fail)."""
        cdef kmem_cache_t* s = &self.caches[c]
        cdef i64 pfn
        if s.objects == s.nr_slabs * s.per_slab:
            pfn = self.buddy.alloc(s.order, s.mt)
            if pfn < 0:
                s.nr_fail += 1
                return -cerrno.ENOMEM
            self.folios.folio_init(pfn, s.order, 0, SLAB_OWNER, s.head)
            s.head = pfn
            s.nr_slabs += 1
        s.objects += 1
        return 0

    cdef void cache_free(self, int c) noexcept nogil:
        """kmem_cache_free: one object; a slab left empty goes back to the buddy
        (discard_slab). Perfect packing: the slab freed is the newest one."""
        cdef kmem_cache_t* s = &self.caches[c]
        cdef i64 pfn
        s.objects -= 1
        if (s.nr_slabs - 1) * s.per_slab >= s.objects and s.nr_slabs > 0:
            pfn = s.head
            s.head = self.folios.index[pfn]
            self.folios.folio_free(pfn)
            self.buddy.free(pfn, s.order)
            s.nr_slabs -= 1

    def cache_stats(self, int c):
        """{size, per_slab, order, objects, slabs, pages, fail} of kmem cache ``c``."""
        if not 0 <= c < NR_CACHES:
            raise ValueError(f"cache {c} out of range 0..{NR_CACHES - 1}")
        cdef kmem_cache_t* s = &self.caches[c]
        return {"size": int(s.size), "per_slab": int(s.per_slab), "order": int(s.order),
                "objects": int(s.objects), "slabs": int(s.nr_slabs),
                "pages": int(s.nr_slabs << s.order), "fail": int(s.nr_fail)}

    def add_xa_user(self, pc):
        """A page cache whose XArray nodes this kernel's radix_tree_node cache charges."""
        self._xa_users.add(pc)

    def xa_users(self):
        """The live page caches charging XArray nodes here (check(): their nodes are
        the cache's objects)."""
        return list(self._xa_users)

    def cache_slab_pfns(self, int c):
        """Head pfns of cache ``c``'s slabs, newest first (check())."""
        cdef i64 pfn = self.caches[c].head
        out = []
        while pfn >= 0 and len(out) <= self.caches[c].nr_slabs:
            out.append(int(pfn))
            pfn = self.folios.index[pfn]
        return out

    def mthp_stats(self):
        """{order: (anon_fault_alloc, anon_fault_fallback)} for orders with events."""
        return {o: (int(self.fault_alloc[o]), int(self.fault_fallback[o]))
                for o in range(1, NR_ORDERS) if self.fault_alloc[o] or self.fault_fallback[o]}



    # ------------------------------------------------------------ order hooks
    def set_order_hook(self, int which, info, u64 address=0, py=None, view=None,
                       bint fill_free=True, bint fill_pte=True, bint fill_vma=True):
        """Install the anonymous-fault (``which`` 0) or readahead (1) order hook:
        ``address`` of a C function ``int32_t f(void *info)`` (a numba cfunc), or
        ``py``, a Python callable given ``view`` (default: a record view of ``info``;
        the slow path); ``fill_free`` / ``fill_pte`` / ``fill_vma``: the anon policy reads
        nr_free / pte_present / vma_present (they cost a copy / a walk / a sum over the
        VMA's page tables per fault, so are skipped when not read);
        ``info``: the one-element structured array (ppsize.hooks' dtype) the engine
        fills before each call. ``info=None`` removes the hook."""
        if which not in (HOOK_ANON, HOOK_RA):
            raise ValueError(f"hook {which!r}: 0 (anon) or 1 (readahead)")
        cdef size_t need = sizeof(anon_fault_info) if which == HOOK_ANON else sizeof(ra_order_info)
        cdef cnp.ndarray arr
        if info is None:
            if which == HOOK_ANON:
                self.has_anon_hook, self.anon_fn, self.anon_info = False, NULL, NULL
            else:
                self.has_ra_hook, self.ra_fn, self.ra_info = False, NULL, NULL
            self._hook_objs[which] = self._hook_objs[2 + which] = None
            return
        arr = info
        if arr.nbytes != need or not arr.flags.c_contiguous or not arr.flags.writeable:
            raise ValueError(f"hook info buffer: {arr.nbytes} bytes, the C struct has {need}")
        if address == 0 and not callable(py):
            raise TypeError("an order hook needs a C function address or a Python callable")
        self._hook_objs[which] = arr
        self._hook_objs[2 + which] = None if address else \
            (py, arr.view(np.recarray)[0] if view is None else view)
        if which == HOOK_ANON:
            self.anon_info = <anon_fault_info*>cnp.PyArray_DATA(arr)
            self.anon_fn = <order_hook_fn><void*>address
            self.hook_fill_free, self.hook_fill_pte, self.hook_fill_vma = fill_free, fill_pte, fill_vma
            self.hook_anon_mm = -1
            self.has_anon_hook = True
        else:
            self.ra_info = <ra_order_info*>cnp.PyArray_DATA(arr)
            self.ra_fn = <order_hook_fn><void*>address
            self.has_ra_hook = True

    cdef i32 call_hook(self, int which, bint* failed) noexcept nogil:
        """The hook's order for the info just filled; failed: a Python policy raised."""
        cdef order_hook_fn fn = self.anon_fn if which == HOOK_ANON else self.ra_fn
        failed[0] = False
        if fn != NULL:
            return fn(<void*>self.anon_info if which == HOOK_ANON else <void*>self.ra_info)
        return self._call_py_hook(which, failed)

    cdef i32 _call_py_hook(self, int which, bint* failed) noexcept with gil:
        # the slow path: a plain Python callable, its first exception kept for the
        # end of the batch (the fault goes on with the built-in order)
        fn, rec = self._hook_objs[2 + which]
        try:
            r = operator.index(fn(rec))
            if not -0x80000000 <= r <= 0x7fffffff:
                return -1
            return <i32>r
        except BaseException as e:
            if self.hook_error is None:
                self.hook_error = e
            failed[0] = True
            return -1

    cdef void hook_bad_order(self, int which, int kind, i64 where, i64 order) noexcept nogil:
        """Count a returned order the engine refused or clamped (kind HOOK_BAD_*)."""
        self.hook_bad[which][kind] += 1
        self.hook_batch_bad += 1
        if self.hook_batch_bad == 1:
            self.hook_first[0] = which
            self.hook_first[1] = kind
            self.hook_first[2] = where
            self.hook_first[3] = order

    cdef void fill_nr_free(self, i64* out) noexcept nogil:
        """zone->free_area[order].nr_free for every order (0 above MAX_PAGE_ORDER)."""
        cdef int o
        cdef i64* nf = self.buddy.nr_free
        for o in range(NR_ORDERS):
            if o <= self.buddy.max_order:
                out[o] = nf[o * MIGRATE_TYPES] + nf[o * MIGRATE_TYPES + 1] + \
                    nf[o * MIGRATE_TYPES + 2] + nf[o * MIGRATE_TYPES + 3]
            else:
                out[o] = 0

    def reset_hook_report(self):
        """Forget the batch's bad returns and Python error (Process: before a batch)."""
        self.hook_batch_bad = 0
        self.hook_error = None

    def hook_report(self):
        """(bad returns since the reset, (hook, kind, address or index, order) of the
        first, the first Python exception or None)."""
        first = tuple(int(self.hook_first[i]) for i in range(4)) if self.hook_batch_bad else None
        return int(self.hook_batch_bad), first, self.hook_error

    def hook_stats(self, int which):
        """Bad returns of hook ``which`` since the kernel started, per HOOK_BAD_* kind."""
        return [int(self.hook_bad[which][k]) for k in range(NR_HOOK_BAD)]


def hook_struct_layout():
    """{struct name: (sizeof, {field: offset})} of the hook argument structs, for the
    test that ppsize.hooks' NumPy dtypes match them byte for byte."""
    cdef anon_fault_info a
    cdef ra_order_info r
    cdef char* pa = <char*>&a
    cdef char* pr = <char*>&r
    anon = {"address": <char*>&a.address - pa, "vma_start": <char*>&a.vma_start - pa,
            "vma_end": <char*>&a.vma_end - pa, "vma_flags": <char*>&a.vma_flags - pa,
            "allowed": <char*>&a.allowed - pa, "mm_faults": <char*>&a.mm_faults - pa,
            "mm_rss_anon": <char*>&a.mm_rss_anon - pa, "pte_present": <char*>&a.pte_present - pa,
            "pte_span": <char*>&a.pte_span - pa,
            "vma_present": <char*>&a.vma_present - pa, "vma_faults": <char*>&a.vma_faults - pa,
            "nr_free": <char*>&a.nr_free[0] - pa,
            "process_order": <char*>&a.process_order - pa, "pmd_order": <char*>&a.pmd_order - pa,
            "max_order": <char*>&a.max_order - pa, "default_order": <char*>&a.default_order - pa,
            "write": <char*>&a.write - pa, "mm_id": <char*>&a.mm_id - pa}
    ra = {"index": <char*>&r.index - pr, "size": <char*>&r.size - pr,
          "async_size": <char*>&r.async_size - pr, "i_size": <char*>&r.i_size - pr,
          "nrpages": <char*>&r.nrpages - pr, "nr_free": <char*>&r.nr_free[0] - pr,
          "file": <char*>&r.file - pr, "ra_order": <char*>&r.ra_order - pr,
          "default_order": <char*>&r.default_order - pr, "min_order": <char*>&r.min_order - pr,
          "max_order": <char*>&r.max_order - pr, "max_page_order": <char*>&r.max_page_order - pr}
    return {"anon_fault_info": (sizeof(anon_fault_info), anon),
            "ra_order_info": (sizeof(ra_order_info), ra)}
