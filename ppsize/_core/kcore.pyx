# The kernel's shared state (see kcore.pxd).
cimport numpy as cnp

import operator

import numpy as np

from ._types cimport u64, i64, i32, u8, NR_ORDERS
from .buddy cimport BuddyAllocator, MIGRATE_UNMOVABLE, MIGRATE_TYPES
from .folio cimport FolioTable, PG_uptodate, PG_zero
from .vma cimport VM_HUGEPAGE, VM_NOHUGEPAGE

cnp.import_array()


cdef class KernelCore:
    """Frames, folios, the zero page and the THP policy shared by all MMs."""

    def __cinit__(self, i64 nr_pages, int kshift, int max_order, int pageblock_order, int pmd_order):
        cdef int order
        self.buddy = BuddyAllocator(nr_pages, max_order, pageblock_order)
        self.folios = FolioTable(nr_pages)
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
        self._anon_excl_a = np.zeros(nr_pages, dtype=np.uint8)
        self.anon_excl = <u8*>cnp.PyArray_DATA(self._anon_excl_a)
        self.use_zero_page = True
        self.thp_top = THP_ALWAYS
        self.thp_always = 0
        self.thp_madvise = 0
        self.thp_inherit = (<u64>1) << pmd_order     # default: only PMD size, inherit
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
