# The kernel's shared state (see kcore.pxd).
cimport numpy as cnp

import numpy as np

from ._types cimport u64, i64, u8, NR_ORDERS
from .buddy cimport BuddyAllocator, MIGRATE_UNMOVABLE
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


