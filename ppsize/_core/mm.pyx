# The fault engine (mm/memory.c, mm/huge_memory.c, mm/filemap.c): anonymous faults (mTHP,
# PMD THP, the zero page, COW), file faults (filemap_fault, read-around, fault-around,
# PMD-mapped file folios) and the page-table side of munmap/mprotect/mremap/fork, over
# the page table, buddy allocator, folio table, VMA table and page cache kernels. One
# nogil loop per batch of accesses; no Python object is touched per access.
cimport numpy as cnp
from libc.string cimport memset, memcpy, memcmp
from libc cimport errno as cerrno

import numpy as np

from .._validate import buffer_length, user_range

from ._types cimport u64, i64, u32, i32, u8, u16, i8
from .pagetable cimport (PageTableCore, DESC_VALID, DESC_TABLE, DESC_CONT, DESC_R, DESC_W, DESC_SW_DEPOSIT,
                         DESC_ADDR_SHIFT,
                         DESC_X, DESC_PROT_MASK, DESC_PROT_SHIFT, TR_OK, FLUSH_COW, FLUSH_WP,
                         FLUSH_FORK)
from .tlb cimport (TlbCore, C_DC_HIT, tlb_walk, tlb_last, tlb_repeat_hit, tlb_note_hit, SIDE_DATA, SIDE_INSN,
                   NR_COUNTERS, C_STALE)
from ._types cimport MAX_LEVELS
from .vma cimport VmaTable, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_HUGEPAGE, VM_NOHUGEPAGE
from .buddy cimport BuddyAllocator, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
from .folio cimport FolioTable, PG_anon, PG_uptodate, PG_swapbacked, PG_zero, PG_dirty, PG_locked
from .vma cimport VM_RAND_READ, VM_SEQ_READ
from .kcore cimport (anon_fault_info, order_hook_fn, HOOK_ANON, HOOK_BAD_RANGE, HOOK_BAD_LOW,
                     HOOK_BAD_NOT_ALLOWED, HOOK_BAD_ERROR)
from .pagecache cimport PageCache, FGP_CREAT, PAGECACHE_TAG_DIRTY, AS_NO_MAP_PAGES, file_ra_state
from .folio cimport PG_readahead
from .xarray cimport xa_load, xa_find_range, xa_set_mark, xa_is_pfn, xa_is_value, xa_to_pfn

cnp.import_array()

cdef extern from *:
    """
    static inline int ppsize_mm_ctz(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int ppsize_mm_clz(unsigned long long x) { return __builtin_clzll(x); }
    """
    int mm_ctz "ppsize_mm_ctz" (unsigned long long x) nogil     # x != 0
    int mm_clz "ppsize_mm_clz" (unsigned long long x) nogil     # x != 0

cdef extern from *:
    void mm_prefetch "__builtin_prefetch" (const void* p) noexcept nogil

cdef enum:
    WALK_AHEAD = 32            # the access loop starts the walk of the address this far ahead
    LEAF_TABLES = 16           # last-level tables remembered by walk_entry_p (a power of two)


ctypedef struct walk_params:
    # PageTableCore's walk parameters copied into the access loop's frame: the loop
    # stores outcomes through pointers, so the compiler reloads every field it reads
    # through self.pt after each store; a local copy stays in registers and cache.
    # Refreshed after a fault (a table pool may grow and move, a table may be added).
    int last                      # levels - 1
    int shift[MAX_LEVELS]
    int tbits[MAX_LEVELS]
    u64 imask[MAX_LEVELS]
    u64* tab[MAX_LEVELS]
    # the last-level tables found so far, direct-mapped by the VA range a table maps
    # (va >> lspan): a walk into one of them reads no upper level
    int lspan                     # shift[last] + tbits[last]
    u64 lkey[LEAF_TABLES]         # va >> lspan of the table in the slot, ~0: none
    const u64* ltab[LEAF_TABLES]


cdef inline void walk_params_of(PageTableCore pt, walk_params* wp) noexcept nogil:
    """Copy pt's walk parameters into wp (no last-level table remembered)."""
    cdef int l
    wp.last = pt.levels - 1
    for l in range(pt.levels):
        wp.shift[l] = pt.shift[l]
        wp.tbits[l] = pt.tbits[l]
        wp.imask[l] = pt.imask[l]
        wp.tab[l] = pt.tab[l]
    wp.lspan = pt.shift[wp.last] + pt.tbits[wp.last]
    for l in range(LEAF_TABLES):
        wp.lkey[l] = ~(<u64>0)


cdef inline const u64* walk_entry_p(walk_params* wp, u64 va) noexcept nogil:
    """The entry va's walk will end on (va below va_limit; the upper levels are small
    and cached), with the table parameters of wp (walk_params_of), remembering the
    last-level table it reaches. The access loop prefetches it for an address
    WALK_AHEAD ahead, so its cache miss overlaps the walks before it, as a core's
    walker overlaps independent walks. (The prefetch is at the call site: gcc drops
    a call to a function whose only effect is a prefetch.)"""
    cdef int l, last = wp.last
    cdef i64 t = 0
    cdef u64 e, key = va >> wp.lspan
    cdef u32 slot = <u32>(key & (LEAF_TABLES - 1))
    cdef const u64* ent = NULL
    if wp.lkey[slot] == key:
        return &wp.ltab[slot][(va >> wp.shift[last]) & wp.imask[last]]
    for l in range(last + 1):
        if l == last:
            wp.lkey[slot] = key
            wp.ltab[slot] = &wp.tab[l][t << wp.tbits[l]]
            return &wp.ltab[slot][(va >> wp.shift[l]) & wp.imask[l]]
        ent = &wp.tab[l][(t << wp.tbits[l]) + ((va >> wp.shift[l]) & wp.imask[l])]
        e = ent[0]
        if (e & (DESC_VALID | DESC_TABLE)) != (DESC_VALID | DESC_TABLE):
            break                         # a block, or nothing mapped: no deeper entry
        t = <i64>(e >> DESC_ADDR_SHIFT)
    return ent


cdef u64 ADDR_MASK = ~(<u64>0xfff)
cdef enum:
    MMAP_LOTSAMISS = 100       # mm/filemap.c
cdef enum:
    PROT_R = 1
    PROT_W = 2
    PROT_X = 4


cdef class RepeatPass:
    """What MMCore.access_repeat keeps of one pass for the next: per piece the TLB key
    after it, whether an access in it faulted and the ASID's counter row after it
    (``rows[0]``: at the start), the outcomes, the TLB state at the end, and the walk
    references sent to the data cache (``dc_log``, ``dc_pos[i]``: where piece i's begin)."""
    cdef readonly Py_ssize_t n, pieces
    cdef readonly u64 klen, state_size
    cdef readonly Py_ssize_t repeated_from     # first access taken from the pass before (n: none)
    cdef readonly Py_ssize_t replayed_from     # first access whose walks were taken from the pass
                                               # before, their references sent to the data cache
                                               # again (n: none; <= repeated_from)
    cdef readonly object keys, rows, faulted, out, state, dc_pos, dc_log
    cdef readonly bint dc_logged               # dc_log holds every reference of the pass
    cdef object dc_buf                         # dc_log's memory (dc_log: its first part)
    cdef u64* keys_p
    cdef i64* rows_p
    cdef u8* faulted_p
    cdef u8* out_p
    cdef u8* state_p
    cdef i64* dc_pos_p
    cdef const u64* dc_log_p

    def __cinit__(self, Py_ssize_t n, Py_ssize_t pieces, u64 klen, u64 state_size):
        self.n, self.pieces, self.klen, self.state_size = n, pieces, klen, state_size
        # every element is written by the pass (np.empty: no page of a large key
        # array is zeroed first)
        self.keys = np.empty((pieces, max(klen, 1)), np.uint64)
        self.rows = np.empty((pieces + 1, NR_COUNTERS), np.int64)
        self.faulted = np.empty(pieces, np.uint8)
        self.state = np.empty(max(state_size, 1), np.uint8)
        self.keys_p = <u64*>cnp.PyArray_DATA(self.keys)
        self.rows_p = <i64*>cnp.PyArray_DATA(self.rows)
        self.faulted_p = <u8*>cnp.PyArray_DATA(self.faulted)
        self.state_p = <u8*>cnp.PyArray_DATA(self.state)
        self.dc_pos = np.zeros(pieces + 1, np.int64)
        self.dc_pos_p = <i64*>cnp.PyArray_DATA(self.dc_pos)
        self.dc_buf = np.zeros(0, np.uint64)
        self.recycle()

    cdef bint fits(self, Py_ssize_t n, Py_ssize_t pieces, u64 klen, u64 state_size):
        return self.n == n and self.pieces == pieces and self.klen == klen and self.state_size == state_size

    cdef void recycle(self):
        """Ready for a pass: a new one, or another of the same shape. Every buffer is
        rewritten by the pass (dc_pos[0], never written, stays 0); a reused one's host
        pages are warm, where new arrays of a few MiB would be fresh mappings, first
        touched page by page."""
        self.repeated_from = self.replayed_from = self.n
        self.out = None
        self.out_p = NULL              # set by access_repeat (with out, which holds it)
        self.dc_log = self.dc_buf[:0]
        self.dc_log_p = NULL
        self.dc_logged = False

    cdef void take_dc_log(self, TlbCore tlb):
        """Keep the core's log of this pass's references (dc_log_n of them)."""
        self.dc_logged = not tlb.dc_log_fail
        cdef Py_ssize_t nr = tlb.dc_log_n if self.dc_logged else 0
        if nr > self.dc_buf.shape[0]:
            self.dc_buf = np.empty(nr, np.uint64)
        self.dc_log = self.dc_buf[:nr]
        if nr:
            memcpy(cnp.PyArray_DATA(self.dc_log), tlb.dc_log, nr * sizeof(u64))
            self.dc_log_p = <const u64*>cnp.PyArray_DATA(self.dc_log)

    @property
    def counted(self):
        """The counters this pass added (its last row minus its first)."""
        return self.rows[self.pieces] - self.rows[0]


cdef class MMCore:
    """One process's page table and VMAs, faulted through the kernel's frames."""

    def __cinit__(self, KernelCore k, PageTableCore pt, VmaTable vmas, int pshift,
                  bint native, int mm_id, u64 read_mask, PageCache pc=None,
                  u64 fault_around_bytes=65536, int exec_order=-1):
        # the fault engine trusts every leaf of pt to be a frame of k (mapcounts,
        # folio heads by pfn): it starts from an empty table of a granule it can fill
        if sum(pt.tables_per_level()[1:]) or any(pt.leaf_counts()[0]):
            raise ValueError("MMCore needs an empty page table")
        if not k.kshift <= pt.page_shift <= pshift <= k.kshift + k.buddy.max_order:
            raise ValueError(f"page shifts: kernel {k.kshift} <= table {pt.page_shift} <= "
                             f"process {pshift} <= kernel + MAX_PAGE_ORDER does not hold")
        if pc is not None and pc.k is not k:
            raise ValueError("the page cache belongs to another kernel")
        self.k = k
        self.buddy = k.buddy
        self.folios = k.folios
        self.pt = pt
        self.vmas = vmas
        self.kshift = k.kshift
        self.pshift = pshift
        self.porder = pshift - self.k.kshift
        self.native = native
        self.mm_id = mm_id
        self.read_mask = read_mask
        self.pc = pc
        self.has_pc = pc is not None
        self.fault_around_bytes = fault_around_bytes
        self.exec_order = exec_order
        pt.zero_pa = (<u64>k.zero_pfn) << k.kshift
        pt.charge_to(k, mm_id)          # mm_alloc_pgd: the tables are kernel memory now
        self._need_anon_a = np.zeros(64, dtype=np.int64)
        self.need_anon = <i64*>cnp.PyArray_DATA(self._need_anon_a)

    # ------------------------------------------------------------- helpers
    cdef u64 _block_start(self, u64 x) noexcept nogil:
        # the first address of the PMD block mapping x
        return x & ~(((<u64>1) << self.pt.shift[self.pt.levels - 2]) - 1)

    cdef int split_or_zap(self, u64 x) except -1 nogil:
        """split_huge_pmd at x (a new VMA boundary, a partial mprotect or mremap): a
        block without memory for its table (a file PMD: anon blocks have a deposit)
        is zapped whole, as __split_huge_pmd_locked does for a file PMD (its pages
        refault)."""
        cdef u64 bs
        if self.pt.try_split_at(x) != 0:
            bs = self._block_start(x)
            self.zap(bs, bs + ((<u64>1) << self.pt.shift[self.pt.levels - 2]))
        return 0

    cdef u64 leaf_prot(self, u64 vm_flags) noexcept nogil:
        """PTE prot bits for the VMA's access flags (without write: private
        mappings get write only from a write fault, as PAGE_COPY)."""
        cdef u64 p = 0
        if vm_flags & self.read_mask:     # protection_map: write (x86: exec) implies read
            p |= PROT_R
        if vm_flags & VM_EXEC:
            p |= PROT_X
        return p

    cdef void set_exclusive(self, i64 pfn, i64 nr, u8 value) noexcept nogil:
        """PageAnonExclusive of frames pfn .. pfn + nr - 1."""
        memset(&self.k.anon_excl[pfn], value, <size_t>nr)

    cdef i64 folio_mappings_here(self, i64 head, int order, u64 fva) noexcept nogil:
        """How many frames of the folio this MM maps in [fva, fva + folio size)."""
        cdef u64 a = fva, end = fva + ((<u64>1) << (order + self.kshift)), desc, span, s, e
        cdef int level
        cdef i64 pfn, n = 0, nr = (<i64>1) << order, i, lo, hi
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            span = (<u64>1) << self.pt.shift[level]
            s = a if a > fva else fva
            e = a + span if a + span < end else end
            pfn = <i64>(((desc & ADDR_MASK) + (s - a)) >> self.kshift)
            for i in range(<i64>((e - s) >> self.kshift)):
                if head <= pfn + i < head + nr:
                    n += 1
            a += span
        return n

    cdef bint can_reuse(self, u64 pva, u64 pa, i64 nr) noexcept nogil:
        """do_wp_page's test for the nr frames at pa mapped at pva: PageAnonExclusive,
        or wp_can_reuse_anon_folio: every mapping of the folio is this MM's
        (folio_large_mapcount == refcount, not maybe_mapped_shared) and no pin."""
        cdef i64 pfn = <i64>(pa >> self.kshift)
        cdef i64 head = self.folios.folio_head(pfn)
        cdef int order = self.folios.folio_order(head)
        if self.k.anon_excl[pfn]:
            return True
        if self.folios.refcount[head] > 1:
            return False
        return self.folios.folio_mapcount(head) == self.folio_mappings_here(
            head, order, pva - (<u64>(pfn - head) << self.kshift))

    cdef void put_frames(self, i64 pfn, i64 nr) noexcept nogil:
        """Drop one mapping of each frame (folio_remove_rmap_ptes); free folios
        left unmapped (folio_put -> free_pages)."""
        cdef i64 i, head, last = -1
        cdef int order
        cdef i32* mapcount = self.folios.mapcount
        for i in range(nr):
            mapcount[pfn + i] -= 1
        i = 0
        while i < nr:
            head = self.folios.folio_head(pfn + i)
            order = self.folios.folio_order(head)
            # a long-term pin (refcount > 1) keeps the unmapped folio until unpinned
            if head != last and self.folios.flags[head] & PG_anon and self.folios.folio_mapcount(head) == 0 \
                    and self.folios.refcount[head] <= 1:
                self.folios.folio_free(head)
                self.buddy.free(head, order)
                self.k.anon_add(-((<i64>1) << order))
            last = head
            i = head + ((<i64>1) << order) - pfn
        return

    cdef int map_folio(self, u64 va, i64 pfn, int order, u64 prot, bint block) except -1 nogil:
        """folio_add_new_anon_rmap + set_ptes (or set_pmd_at for a PMD block)."""
        cdef i64 nr = (<i64>1) << order, i
        cdef i32* mapcount = self.folios.mapcount
        self.folios.folio_init(pfn, order, PG_anon | PG_swapbacked | PG_uptodate,
                                 self.mm_id, <i64>(va >> self.kshift))
        for i in range(nr):
            mapcount[pfn + i] += 1
        self.set_exclusive(pfn, nr, 1)        # folio_add_new_anon_rmap(RMAP_EXCLUSIVE)
        if block:
            self.pt.map_range(va, (<u64>pfn) << self.kshift, (<u64>nr) << self.kshift, prot, True, True)
        else:
            self.pt.set_ptes(va, (<u64>pfn) << self.kshift, (<u64>nr) << self.kshift, prot, True)
        self.rss_anon += nr
        self.k.anon_add(nr)
        return 0

    cdef int map_zero(self, u64 pva, u64 prot) except -1 nogil:
        """Map the zero page read-only over one process page: one native PTE,
        or every kernel PTE of the page pointing at ZERO_PAGE (emulated)."""
        cdef u64 zpa = (<u64>self.k.zero_pfn) << self.kshift
        cdef u64 i, kpage = (<u64>1) << self.kshift
        if self.native:
            self.pt.set_ptes(pva, zpa, (<u64>1) << self.pshift, prot, False)
        else:
            for i in range((<u64>1) << self.porder):
                self.pt.set_ptes(pva + i * kpage, zpa, kpage, prot, False)
        return 0

    cdef i64 zap(self, u64 va, u64 end) except -1 nogil:
        """zap_pte_range over [va, end): drop the mappings of every leaf (partial
        blocks split, partial runs unfolded), tables kept. Returns pages unmapped."""
        cdef u64 a = va, desc, s, e, span
        cdef int level
        cdef i64 pfn, nr, total = 0
        # the partial blocks at the ends are split before anything changes (an anon
        # block's table is its deposit); a block whose table cannot be had (a file
        # PMD) is zapped whole, as __split_huge_pmd_locked zaps a file PMD
        if self.pt.try_split_at(va) != 0:
            va = self._block_start(va)
            a = va
        if self.pt.try_split_at(end) != 0:
            end = self._block_start(end) + ((<u64>1) << self.pt.shift[self.pt.levels - 2])
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            span = (<u64>1) << self.pt.shift[level]
            s = a if a > va else va
            e = a + span if a + span < end else end
            pfn = <i64>(((desc & ADDR_MASK) + (s - a)) >> self.kshift)
            nr = <i64>((e - s) >> self.kshift)
            if not self.k.is_zero_pfn(pfn):
                if self.folios.test_flags(pfn, PG_anon):
                    self.rss_anon -= nr
                else:
                    self.rss_file -= nr
                self.put_frames(pfn, nr)
                total += nr
            a += span
        self.pt.zap_range(va, end - va)
        return total

    # --------------------------------------------------------------- faults
    cdef int fault(self, u64 va, bint write, int st, int level) except -1 nogil:
        """handle_mm_fault for one access that missed or hit a read-only entry;
        st and level are what the walk of va found (reused when the process page
        is the kernel page)."""
        cdef i64 vi = self.vmas.find(va)
        cdef u64 flags, pa, unit, pva
        cdef int prot
        if vi < 0:
            return ACC_SEGV_MAPERR
        flags = self.vmas.flags[vi]
        if write:
            if not (flags & VM_WRITE):
                return ACC_SEGV_ACCERR
        elif not (flags & self.read_mask):
            return ACC_SEGV_ACCERR
        if self.vmas.file[vi] >= 0:
            if not self.has_pc or self.vmas.file[vi] >= self.pc.nr_files:
                return ACC_SIGBUS                   # shmem: not modelled
        elif flags & VM_SHARED:
            return ACC_SIGBUS
        pva = va & ~(((<u64>1) << self.pshift) - 1)
        if st == TR_OK or pva != (va & ~(((<u64>1) << self.kshift) - 1)):
            st = self.pt.walk(pva, &pa, &level, &unit, &prot)
        if st == TR_OK:
            if write:
                return self.do_wp(vi, pva, pa, level)
            self.minflt += 1          # a spurious read fault (e.g. prot changed)
            return ACC_HIT
        # __handle_mm_fault: p4d_alloc, pud_alloc, pmd_alloc down to the PMD table;
        # no memory for one is VM_FAULT_OOM (level: where pva's walk stopped, so
        # tables down to there exist)
        if level < self.pt.levels - 2 and self.pt.prealloc(pva, self.pt.levels - 2) != 0:
            self.k.count_oom()
            return ACC_OOM
        if self.vmas.file[vi] >= 0:
            return self.do_file_fault(vi, va, write)
        return self.do_anonymous(vi, va, write, level)

    cdef int do_anonymous(self, i64 vi, u64 va, bint write, int level) except -1 nogil:
        """do_anonymous_page (and create_huge_pmd -> do_huge_pmd_anonymous_page). With
        an anon order hook (KernelCore.has_anon_hook) the hook's order caps the orders
        tried (anon_hook_order); the tries and fallbacks below stay Linux's."""
        cdef u64 flags = self.vmas.flags[vi], vs = self.vmas.start[vi], ve = self.vmas.end[vi]
        cdef u64 orders = self.k.allowable_orders(flags)
        cdef u64 prot = self.leaf_prot(flags), size, a, pa, unit
        cdef u64 psize = (<u64>1) << self.pshift
        cdef u64 pva = va & ~(psize - 1)
        cdef int order, pprot, st, top
        cdef bint checked, pmd_ok = False
        cdef i64 pfn
        cdef i64* vma_faults = self.vmas.faults
        self.minflt += 1
        vma_faults[vi] += 1
        if write and self.vmas.anon[vi] == 0:
            self._note_anon(vi)
        # PMD-size THP: only with kernel-granule tables (a native 16K/64K PMD is
        # far larger than MAX_PAGE_ORDER), only where the PMD entry is empty
        # (pmd_none: the walk of the faulting address stopped at or above the PMD
        # level, so an empty PMD entry covers the whole aligned range)
        if not self.native and (orders >> self.k.pmd_order) & 1:
            size = (<u64>1) << (self.k.pmd_order + self.kshift)
            a = va & ~(size - 1)
            pmd_ok = a >= vs and a + size <= ve and level <= self.pt.levels - 2
        if self.k.has_anon_hook and (pmd_ok or orders >> (self.porder + 1)):
            # a choice to make (an order above the process order enabled): ask the hook
            top = self.anon_hook_order(vi, va, write, orders, pmd_ok)
            if top < self.k.pmd_order:
                pmd_ok = False
            orders &= ((<u64>2) << top) - 1
        if pmd_ok:
            size = (<u64>1) << (self.k.pmd_order + self.kshift)
            a = va & ~(size - 1)
            if self.vmas.anon[vi] == 0:
                self._note_anon(vi)           # vmf_anon_prepare, reads too
            if not write and self.k.use_zero_page and self.k.zero_order >= self.k.pmd_order:
                # do_huge_pmd_anonymous_page: pte_alloc_one for the deposit first
                if self.pt.deposit() != 0:
                    self.k.count_oom()
                    self.minflt -= 1
                    vma_faults[vi] -= 1
                    return ACC_OOM
                self.pt.map_range(a, (<u64>self.k.zero_pfn) << self.kshift, size, prot, False, True)
                self.pt.mark_deposited(a, True)
                return ACC_ZERO
            else:
                pfn = self.buddy.alloc(self.k.pmd_order, MIGRATE_MOVABLE)
                if pfn >= 0:
                    self.k.count_fault(self.k.pmd_order, True)
                    # __do_huge_pmd_anonymous_page: the deposit after the folio; none is
                    # VM_FAULT_OOM (the folio released)
                    if self.pt.deposit() != 0:
                        self.buddy.free(pfn, self.k.pmd_order)
                        self.k.count_oom()
                        self.minflt -= 1
                        vma_faults[vi] -= 1
                        return ACC_OOM
                    # maybe_pmd_mkwrite: writable when the VMA is, read fault or not
                    self.map_folio(a, pfn, self.k.pmd_order,
                                   prot | (PROT_W if flags & VM_WRITE else 0), True)
                    self.pt.mark_deposited(a, True)
                    return ACC_FAULT
                self.k.count_fault(self.k.pmd_order, False)      # THP_FAULT_FALLBACK
        # do_anonymous_page: pte_alloc before the zero page or a folio (VM_FAULT_OOM);
        # a walk that reached the PTE level found the table
        if level < self.pt.levels - 1 and self.pt.prealloc(pva, self.pt.levels - 1) != 0:
            self.k.count_oom()
            self.minflt -= 1
            vma_faults[vi] -= 1
            return ACC_OOM
        if not write:
            self.map_zero(pva, prot)
            return ACC_ZERO
        # alloc_anon_folio: the highest allowed order whose aligned range is in the
        # VMA and unmapped; on allocation failure the next lower; never below the
        # process order, which is the last resort.
        if not self.native:
            orders &= ((<u64>1) << self.k.pmd_order) - 1
        orders &= ~(((<u64>1) << (self.porder + 1)) - 1)
        order = 63
        checked = False       # lower orders lie inside the first suitable range
        while orders:
            while not (orders >> order) & 1:
                order -= 1
            orders &= ~((<u64>1) << order)
            size = (<u64>1) << (order + self.kshift)
            a = va & ~(size - 1)
            if a < vs or a + size > ve:
                continue
            if not checked:
                if self.pt.any_mapped(0, 0, a, a + size):
                    continue
                checked = True
            pfn = self.buddy.alloc(order, MIGRATE_MOVABLE)
            if pfn >= 0:
                self.k.count_fault(order, True)
                self.map_folio(a, pfn, order, prot | PROT_W, False)
                return ACC_FAULT
            self.k.count_fault(order, False)
        pfn = self.buddy.alloc(self.porder, MIGRATE_MOVABLE)
        if pfn < 0:
            self.k.count_oom()
            self.minflt -= 1              # VM_FAULT_OOM is not a completed fault
            vma_faults[vi] -= 1
            return ACC_OOM
        self.k.count_fault(self.porder, True)
        self.map_folio(pva, pfn, self.porder, prot | PROT_W, False)
        return ACC_FAULT

    cdef int anon_hook_order(self, i64 vi, u64 va, bint write, u64 orders, bint pmd_ok) noexcept nogil:
        """Ask the anon order hook (ppsize.hooks) for the highest order to try at va.
        It sees ``allowed``: the process order, and the orders above it that the
        THP settings allow for the VMA (thp_vma_allowable_orders) and whose aligned
        range lies in the VMA (thp_vma_suitable_orders); the PMD order only where
        the PMD entry is empty. A returned order outside the mask is refused
        (negative, above MAX_PAGE_ORDER: the built-in order), raised to the process
        order, or lowered to the next allowed order, and counted (hook_bad_order)."""
        cdef anon_fault_info* info = self.k.anon_info
        cdef u64 vs = self.vmas.start[vi], ve = self.vmas.end[vi], size, a, allowed, rest
        cdef int o, r, default
        cdef bint failed = False
        cdef order_hook_fn fn
        if not self.native:
            orders &= ((<u64>1) << self.k.pmd_order) - 1
        orders &= ~(((<u64>1) << (self.porder + 1)) - 1)
        allowed = (<u64>1) << self.porder
        rest = orders
        while rest:                               # thp_vma_suitable_orders
            o = mm_ctz(rest)
            rest &= rest - 1
            size = (<u64>1) << (o + self.kshift)
            a = va & ~(size - 1)
            if a >= vs and a + size <= ve:
                allowed |= (<u64>1) << o
        if pmd_ok:
            allowed |= (<u64>1) << self.k.pmd_order
        default = 63 - mm_clz(allowed)
        info.address = va
        info.vma_start = vs
        info.vma_end = ve
        info.vma_flags = self.vmas.flags[vi]
        info.allowed = allowed
        info.mm_faults = self.minflt - 1           # faults before this one
        info.mm_rss_anon = self.rss_anon
        info.vma_faults = self.vmas.faults[vi] - 1
        if self.k.hook_fill_pte:           # in kernel pages (a native PTE maps a process page)
            info.pte_present = self.pt.pte_table_present(va) << (self.pt.page_shift - self.kshift)
        if self.k.hook_fill_vma:
            info.vma_present = self.pt.present_pages(vs, ve) << (self.pt.page_shift - self.kshift)
        if self.k.hook_fill_free:
            self.k.fill_nr_free(info.nr_free)
        if self.k.hook_anon_mm != self.mm_id:      # this MM's constants (the policy only reads)
            self.k.hook_anon_mm = self.mm_id
            info.pte_span = (<i64>1) << self.pt.shift[self.pt.levels - 2] if self.pt.levels > 1 else 0
            info.process_order = self.porder
            info.pmd_order = self.k.pmd_order
            info.max_order = self.buddy.max_order
            info.mm_id = self.mm_id
        info.default_order = default
        info.write = write
        fn = self.k.anon_fn
        if fn != NULL:
            r = fn(<void*>info)
        else:
            r = self.k.call_hook(HOOK_ANON, &failed)
        if failed:
            self.k.hook_bad_order(HOOK_ANON, HOOK_BAD_ERROR, <i64>va, r)
            return default
        if r < 0 or r > self.buddy.max_order:
            self.k.hook_bad_order(HOOK_ANON, HOOK_BAD_RANGE, <i64>va, r)
            return default
        if r < self.porder:
            self.k.hook_bad_order(HOOK_ANON, HOOK_BAD_LOW, <i64>va, r)
            return self.porder
        if not (allowed >> r) & 1:
            self.k.hook_bad_order(HOOK_ANON, HOOK_BAD_NOT_ALLOWED, <i64>va, r)
            while not (allowed >> r) & 1:
                r -= 1
        return r

    cdef int do_wp(self, i64 vi, u64 pva, u64 pa, int level) except -1 nogil:
        """do_wp_page / do_huge_pmd_wp_page on one process page."""
        cdef u64 flags = self.vmas.flags[vi]
        cdef u64 prot = self.leaf_prot(flags) | PROT_W
        cdef u64 psize = (<u64>1) << self.pshift
        cdef u64 span = (<u64>1) << self.pt.shift[level]
        cdef i64 pfn = <i64>(pa >> self.kshift), new
        cdef bint block = level < self.pt.levels - 1
        self.minflt += 1
        if flags & VM_SHARED and not self.k.is_zero_pfn(pfn):
            # wp_page_shared: page_mkwrite, the folio dirty, the page writable
            self.folio_mark_dirty(self.vmas.file[vi], self.folios.folio_head(pfn))
            self.pt.protect_range(pva, psize, prot)
            self.pt.tlb_flush(pva, pva + psize, 0, True, FLUSH_WP)      # ptep_set_access_flags
            return ACC_FAULT
        if self.vmas.anon[vi] == 0:
            self._note_anon(vi)               # wp_page_copy: vmf_anon_prepare
        if self.k.is_zero_pfn(pfn) and block and level == self.pt.levels - 2 and not self.native:
            # do_huge_zero_wp_pmd: replace the huge zero PMD by a new THP; on
            # failure split it and fall back to a PTE-level copy below
            new = self.buddy.alloc(self.k.pmd_order, MIGRATE_MOVABLE)
            if new >= 0:
                self.k.count_fault(self.k.pmd_order, True)
                self.pt.mark_deposited(pva, False)       # the deposit stays the THP's
                self.pt.zap_range(pva & ~(span - 1), span)
                # pmdp_huge_clear_flush -> flush_pmd_tlb_range
                self.pt.tlb_flush(pva & ~(span - 1), (pva & ~(span - 1)) + span, span, False, FLUSH_COW)
                self.map_folio(pva & ~(span - 1), new, self.k.pmd_order, prot, True)
                self.pt.mark_deposited(pva, True)
                return ACC_COW
            self.k.count_fault(self.k.pmd_order, False)
        elif not self.k.is_zero_pfn(pfn) and self.folios.test_flags(pfn, PG_anon):
            if block and self.can_reuse(pva & ~(span - 1), pa & ~(span - 1), <i64>(span >> self.kshift)):
                self.set_exclusive(<i64>((pa & ~(span - 1)) >> self.kshift), <i64>(span >> self.kshift), 1)
                self.pt.protect_range(pva & ~(span - 1), span, prot)      # reuse the THP
                self.pt.tlb_flush(pva, pva + 1, span, True, FLUSH_WP)       # pmdp_set_access_flags
                return ACC_REUSE
            if not block and self.can_reuse(pva, pa, <i64>(psize >> self.kshift)):
                self.set_exclusive(pfn, <i64>(psize >> self.kshift), 1)
                self.pt.protect_range(pva, psize, prot)                    # wp_page_reuse
                self.pt.tlb_flush(pva, pva + psize, 0, True, FLUSH_WP)     # ptep_set_access_flags
                return ACC_REUSE
        # wp_page_copy at the process page (the zero page, or a shared folio; a
        # PMD block is split first, as do_huge_pmd_wp_page falls back to PTEs:
        # __split_huge_pmd, its PTE table the withdrawn deposit (a block without one,
        # a file PMD, allocates it; none: VM_FAULT_OOM))
        if block and self.pt.split_block_at(pva) != 0:
            self.k.count_oom()
            self.minflt -= 1
            return ACC_OOM
        new = self.buddy.alloc(self.porder, MIGRATE_MOVABLE)
        if new < 0:
            self.k.count_oom()
            self.minflt -= 1
            return ACC_OOM
        self.zap(pva, pva + psize)            # wp_page_copy: no mTHP stat
        self.pt.tlb_flush(pva, pva + psize, 0, True, FLUSH_COW)         # ptep_clear_flush
        self.map_folio(pva, new, self.porder, prot, False)
        return ACC_COW

    cdef void _note_anon(self, i64 vi) noexcept nogil:
        """Mark a VMA whose first write fault needs anon_vma_prepare (anon id -1,
        so it is noted once); Python prepares it after the batch, as it may reuse
        a neighbour's anon_vma."""
        self.vmas.anon[vi] = -1
        if self.n_need_anon < 64:
            self.need_anon[self.n_need_anon] = vi
            self.n_need_anon += 1
        else:
            self.anon_overflow = True

    # ------------------------------------------------------------ the TLB
    cdef int tlb_walk_fill(self, u64 va, int side, u64* pa, int* level, u64* unit, int* prot,
                           bint missed=False) noexcept nogil:
        """The hardware walk of a TLB miss (pt.tlb), returning what pt.walk would: its
        references counted per level (walk caches, data cache); a valid leaf is
        filled into the L2 and L1 as the unit the walk found (the contiguous run when
        the core coalesces); an invalid entry (the access faults) fills nothing.
        ``missed``: the TLB lookup of va just missed (TlbCore.walk_fill_missed: the
        fills need not probe again)."""
        cdef tlb_walk w
        cdef u64 span
        cdef int st = self.pt.walk_tables(va, pa, level, unit, prot, w.table_pa)
        if level[0] < 0:
            return st
        w.leaf_level = level[0]
        w.leaf_ok = st == TR_OK
        if w.leaf_ok:
            span = (<u64>1) << self.pt.shift[level[0]]
            w.unit_size = unit[0] if self.pt.tlb.coalesce else span
            w.unit_base = va & ~(w.unit_size - 1)
            w.pa_base = (pa[0] - (va - w.unit_base)) | <u64>prot[0]
        if missed:
            self.pt.tlb.walk_fill_missed(self.pt.tlb_asid, va, side, &w)
        else:
            self.pt.tlb.walk_fill(self.pt.tlb_asid, va, side, &w)
        return st

    cdef bint tlb_hit_stale(self, u64 va, u64 out, u64 base, u64 size) noexcept nogil:
        """A TLB hit that the page table no longer backs (a missing flush): va not
        mapped, another PA, a permission the PTE lacks, or an entry larger than the
        unit mapped."""
        cdef u64 pa = 0, unit = 0
        cdef int level = 0, prot = 0
        if self.pt.walk(va, &pa, &level, &unit, &prot) != TR_OK:
            return True
        return (out & ADDR_MASK) + (va - base) != pa or (<int>(out & 7) & ~prot) != 0 or size > unit

    # ----------------------------------------------------------- file faults
    cdef int do_file_fault(self, i64 vi, u64 va, bint write) except -1 nogil:
        """do_fault on a file VMA: do_read_fault (fault-around, then filemap_fault
        and finish_fault), do_cow_fault (private write: a copy in a new anon folio)
        or do_shared_fault (the page mapped writable, the folio dirty). The whole
        process page is mapped."""
        cdef i64 f = self.vmas.file[vi]
        cdef u64 flags = self.vmas.flags[vi], vs = self.vmas.start[vi]
        cdef u64 kpage = (<u64>1) << self.kshift, psize = (<u64>1) << self.pshift
        cdef u64 pva = va & ~(psize - 1), cur, pa, unit
        cdef i64 pgoff, head, new, nr_file, nr
        cdef int level, prot
        cdef bint major = False, shared = (flags & VM_SHARED) != 0
        nr_file = (self.pc.i_size[f] + <i64>kpage - 1) >> self.kshift
        pgoff = <i64>self.vmas.pgoff[vi] + <i64>((va - vs) >> self.kshift)
        if pgoff >= nr_file:
            return ACC_SIGBUS                          # beyond EOF
        if write and not shared:                       # do_cow_fault
            head = self.file_folio(vi, f, pgoff, &major)
            if head < 0:
                self.k.count_oom()
                return ACC_OOM
            if self.vmas.anon[vi] == 0:
                self._note_anon(vi)
            # finish_fault's pte_alloc (taken before the copy: a failure leaves nothing)
            if self.pt.prealloc(pva, self.pt.levels - 1) != 0:
                self.k.count_oom()
                return ACC_OOM
            new = self.buddy.alloc(self.porder, MIGRATE_MOVABLE)
            if new < 0:
                self.k.count_oom()
                return ACC_OOM
            self.map_folio(pva, new, self.porder, self.leaf_prot(flags) | PROT_W, False)
            if major:
                self.majflt += 1
                return ACC_MAJOR
            self.minflt += 1
            return ACC_COW
        if not write:
            nr = self.fault_around(vi, f, va)
            if nr < 0:                                 # do_fault_around's pte_alloc_one
                self.k.count_oom()
                return ACC_OOM
            if nr > 0 and self.pt.walk(va, &pa, &level, &unit, &prot) == TR_OK and \
                    self.pt.walk(pva + psize - kpage, &pa, &level, &unit, &prot) == TR_OK:
                self.minflt += 1                       # VM_FAULT_NOPAGE: fault-around did it
                return ACC_FAULT
        # __do_fault -> filemap_fault, then finish_fault for each folio of the
        # process page: the folio's pages in it mapped by one set_ptes (as
        # finish_fault maps a large folio's range), so aligned runs get PTE_CONT
        cur = pva
        while cur < pva + psize:
            pgoff = <i64>self.vmas.pgoff[vi] + <i64>((cur - vs) >> self.kshift)
            if pgoff >= nr_file:
                break
            if self.pt.walk(cur, &pa, &level, &unit, &prot) != TR_OK:
                head = self.file_folio(vi, f, pgoff, &major)
                if head < 0:
                    self.k.count_oom()
                    return ACC_OOM
                nr = self.map_file_pages(vi, f, head, cur, pva + psize, write)
                if nr < 0:                             # finish_fault's pte_alloc
                    self.k.count_oom()
                    return ACC_OOM
                if nr == 0:
                    return ACC_SIGBUS                  # a native PTE needs a folio >= the page
                if write:                              # do_shared_fault: folio dirty
                    self.folio_mark_dirty(f, head)
            cur += kpage
        if major and not write:
            # filemap_fault dropped mmap_lock for the read (fpin) and returned
            # VM_FAULT_RETRY; the retried do_read_fault fault-arounds first, now that
            # readahead has filled the cache (do_user_addr_fault's goto retry)
            self.fault_around(vi, f, va)
        if major:
            self.majflt += 1
            return ACC_MAJOR
        self.minflt += 1
        return ACC_FAULT

    cdef void folio_mark_dirty(self, i64 f, i64 head) noexcept nogil:
        """folio_mark_dirty: PG_dirty and the PAGECACHE_TAG_DIRTY mark."""
        cdef u16* flags = self.folios.flags
        flags[head] |= PG_dirty
        xa_set_mark(&self.pc.xa[f], <u64>self.folios.index[head], PAGECACHE_TAG_DIRTY)

    cdef i64 file_folio(self, i64 vi, i64 f, i64 pgoff, bint* major) noexcept nogil:
        """filemap_fault's folio for pgoff: a cache hit (do_async_mmap_readahead) or
        a miss (major: do_sync_mmap_readahead, then __filemap_get_folio(FGP_CREAT))."""
        cdef u64 e = xa_load(&self.pc.xa[f], <u64>pgoff)
        cdef i64 head
        cdef file_ra_state* ra
        if xa_is_pfn(e):
            head = xa_to_pfn(e)
            if not (self.vmas.flags[vi] & VM_RAND_READ) and self.pc.ra[f].ra_pages:
                ra = &self.pc.ra[f]
                if ra.mmap_miss > 0:
                    ra.mmap_miss -= 1
                if self.folios.flags[head] & PG_readahead:
                    self.pc.page_cache_async_ra(f, pgoff, head, self.pc.ra[f].ra_pages)
            return head
        major[0] = True
        self.sync_mmap_readahead(vi, f, pgoff)
        return self.pc.filemap_get_folio(f, pgoff, FGP_CREAT, 0)

    cdef void sync_mmap_readahead(self, i64 vi, i64 f, i64 pgoff) noexcept nogil:
        """do_sync_mmap_readahead: VM_HUGEPAGE reads two PMD folios; VM_SEQ_READ the
        sequential window; after MMAP_LOTSAMISS misses nothing; VM_EXEC (arm64)
        exec_folio_order() folios within the VMA; else read-around."""
        cdef u64 flags = self.vmas.flags[vi]
        cdef i64 ra_pages = self.pc.ra[f].ra_pages, start, end, vstart, vend, nr
        cdef file_ra_state* ra
        if flags & VM_RAND_READ or ra_pages == 0:
            return
        if flags & VM_HUGEPAGE:
            nr = (<i64>1) << self.k.pmd_order
            self.pc.ra[f].size = nr if flags & VM_RAND_READ else 2 * nr
            self.pc.ra[f].async_size = nr
            self.pc.ra[f].order = <u32>self.k.pmd_order
            self.pc.ra[f].start = pgoff & ~(nr - 1)
            self.pc.page_cache_ra_order(f, pgoff & ~(nr - 1))
            return
        if flags & VM_SEQ_READ:
            self.pc.page_cache_sync_ra(f, pgoff, ra_pages)
            return
        ra = &self.pc.ra[f]
        if ra.mmap_miss < MMAP_LOTSAMISS * 10:
            ra.mmap_miss += 1
        if ra.mmap_miss > MMAP_LOTSAMISS:
            return
        if flags & VM_EXEC and self.exec_order >= 0:
            nr = (<i64>1) << self.exec_order
            vstart = <i64>self.vmas.pgoff[vi]
            vend = vstart + <i64>((self.vmas.end[vi] - self.vmas.start[vi]) >> self.kshift)
            start = pgoff & ~(nr - 1)
            if start < vstart:
                start = vstart
            end = (start + ra_pages + nr - 1) & ~(nr - 1)
            if end > vend:
                end = vend
            self.pc.ra[f].order = <u32>self.exec_order
            self.pc.ra[f].start = start
            self.pc.ra[f].size = end - start
            self.pc.ra[f].async_size = 0
        else:
            self.pc.ra[f].start = pgoff - ra_pages // 2 if pgoff > ra_pages // 2 else 0
            self.pc.ra[f].size = ra_pages
            self.pc.ra[f].async_size = ra_pages // 4
            self.pc.ra[f].order = 0
        self.pc.page_cache_ra_order(f, self.pc.ra[f].start)

    cdef i64 map_file_pages(self, i64 vi, i64 f, i64 head, u64 lo, u64 hi, bint writable) except -1 nogil:
        """set_pte_range for the pages of the folio at head that lie in [lo, hi) and
        in the VMA and below i_size (rounded up to the mapping unit: the kernel page,
        or the process page with native tables); present PTEs are left alone.
        Returns kernel pages mapped (0 when the folio is smaller than one PTE), or
        -ENOMEM when the PTE table cannot be allocated."""
        cdef int order = self.folios.folio_order(head)
        cdef u64 kpage = (<u64>1) << self.kshift
        cdef u64 step = (<u64>1) << self.pt.shift[self.pt.levels - 1]
        cdef u64 vs = self.vmas.start[vi], ve = self.vmas.end[vi]
        cdef i64 fidx = self.folios.index[head], rel = fidx - <i64>self.vmas.pgoff[vi]
        cdef i64 nr_file = (self.pc.i_size[f] + <i64>kpage - 1) >> self.kshift
        cdef u64 fva, fend, eof, a, run, pa, unit
        cdef u64 prot = self.leaf_prot(self.vmas.flags[vi]) | (PROT_W if writable else 0)
        cdef i64 n = 0, i, pfn
        cdef int level, pprot
        cdef i32* mapcount
        if (rel < 0 and <u64>(-rel) << self.kshift > vs) or step > ((<u64>1) << (order + self.kshift)):
            return 0
        fva = <u64>(<i64>vs + (rel << self.kshift))
        fend = fva + ((<u64>1) << (order + self.kshift))
        eof = (fva + (<u64>(nr_file - fidx) << self.kshift) + step - 1) & ~(step - 1)
        if eof < fend:
            fend = eof
        if order == self.k.pmd_order and not self.native and (fva & (fend - fva - 1)) == 0 \
                and fva >= vs and fva + ((<u64>1) << (order + self.kshift)) <= ve \
                and fend - fva == ((<u64>1) << (order + self.kshift)) \
                and not (self.vmas.flags[vi] & VM_NOHUGEPAGE) \
                and self.pt.walk(fva, &pa, &level, &unit, &pprot) != TR_OK and level <= self.pt.levels - 2:
            # filemap_map_pmd / do_set_pmd: a PMD-size folio in an aligned VMA, PMD empty
            self.pt.map_range(fva, (<u64>head) << self.kshift, fend - fva, prot, False, True)
            n = (<i64>1) << order
            mapcount = self.folios.mapcount
            for i in range(n):
                mapcount[head + i] += 1
            self.rss_file += n
            return n
        lo &= ~(step - 1)
        hi = (hi + step - 1) & ~(step - 1)
        if lo < fva:
            lo = fva
        if lo < vs:
            lo = vs
        if hi > fend:
            hi = fend
        if hi > ve:
            hi = ve
        a = lo
        if a < hi and self.pt.prealloc(a, self.pt.levels - 1) != 0:
            return -cerrno.ENOMEM                  # pte_alloc: [lo, hi) is in one PTE table
        if a < hi and not self.pt.any_mapped(0, 0, a, hi):
            run = hi                               # all absent: one set_ptes
            pfn = head + <i64>((a - fva) >> self.kshift)
            self.pt.set_ptes(a, (<u64>pfn) << self.kshift, run - a, prot, True)
            mapcount = self.folios.mapcount
            for i in range(<i64>((run - a) >> self.kshift)):
                mapcount[pfn + i] += 1
            n = <i64>((run - a) >> self.kshift)
            a = hi
        while a < hi:
            # a run of absent PTEs, mapped by one set_ptes (CONT where it allows)
            run = a
            while run < hi and self.pt.walk(run, &pa, &level, &unit, &pprot) != TR_OK:
                run += step
            if run > a:
                pfn = head + <i64>((a - fva) >> self.kshift)
                self.pt.set_ptes(a, (<u64>pfn) << self.kshift, run - a, prot, True)
                mapcount = self.folios.mapcount
                for i in range(<i64>((run - a) >> self.kshift)):
                    mapcount[pfn + i] += 1
                n += <i64>((run - a) >> self.kshift)
                a = run
            a += step
        self.rss_file += n
        return n

    cdef i64 fault_around(self, i64 vi, i64 f, u64 va) except -1 nogil:
        """do_fault_around -> filemap_map_pages: map the uptodate, unlocked cache
        folios in the fault-around window (fault_around_bytes, within the VMA and
        the PTE table); a large folio wholly inside the VMA and the table is mapped
        in full (6.18). Returns pages mapped, or -ENOMEM (no PTE table)."""
        cdef u64 window = self.fault_around_bytes, kpage = (<u64>1) << self.kshift
        cdef u64 tspan = (<u64>1) << self.pt.shift[self.pt.levels - 2]
        cdef u64 vs = self.vmas.start[vi], ve = self.vmas.end[vi]
        cdef u64 start, end, t0, fva, fsize, e, idx
        cdef i64 first, last, nr_file, head, rel, n = 0, mapped
        cdef int order
        cdef file_ra_state* ra
        if window <= ((<u64>1) << self.pshift) or window <= kpage:
            return 0                               # fault_around_pages == 1: off
        if self.pc.large[f] & AS_NO_MAP_PAGES:
            return 0                               # no vm_ops->map_pages (special mapping)
        t0 = va & ~(tspan - 1)
        start = va & ~(window - 1)
        if start < vs:
            start = vs
        if start < t0:
            start = t0
        end = start + window
        if end > t0 + tspan:
            end = t0 + tspan
        if end > ve:
            end = ve
        nr_file = (self.pc.i_size[f] + <i64>kpage - 1) >> self.kshift
        first = <i64>self.vmas.pgoff[vi] + <i64>((start - vs) >> self.kshift)
        last = <i64>self.vmas.pgoff[vi] + <i64>((end - vs) >> self.kshift) - 1
        if last >= nr_file:
            last = nr_file - 1
        while first <= last:
            e = xa_find_range(&self.pc.xa[f], <u64>first, <u64>last, -1, &idx, &order)
            if not e:
                break
            first = <i64>idx + ((<i64>1) << order)
            if xa_is_value(e):
                continue                           # a shadow entry
            head = xa_to_pfn(e)
            if not (self.folios.flags[head] & PG_uptodate) or self.folios.flags[head] & PG_locked:
                continue
            rel = <i64>idx - <i64>self.vmas.pgoff[vi]
            fva = <u64>(<i64>vs + (rel << self.kshift))
            fsize = (<u64>1) << (order + self.kshift)
            if rel >= 0 and fva + fsize <= ve and (fva & ~(tspan - 1)) == ((fva + fsize - 1) & ~(tspan - 1)):
                mapped = self.map_file_pages(vi, f, head, fva, fva + fsize, False)
            else:
                mapped = self.map_file_pages(vi, f, head, start, end, False)
            if mapped < 0:
                return mapped
            n += mapped
        ra = &self.pc.ra[f]
        ra.mmap_miss = ra.mmap_miss - <i32>n if ra.mmap_miss > n else 0
        return n

    # --------------------------------------------------------------- batches
    def access(self, const u64[::1] vas, const u8[::1] writes, bint write_all, u8[::1] out,
               const u8[::1] insns, bint insn_all=False, bint check=False):
        """Fault-or-hit each address (one nogil loop); outcome codes into out.
        ``insns``/``insn_all``: instruction fetches (need VM_EXEC; the TLB's
        instruction side). With a TLB (pt.tlb) each access is translated through it
        first: a hit that allows the access needs no walk; a miss walks (counted) and
        fills; after a fault the retried access walks and fills. ``check``: compare
        every TLB hit with the page table (stale hits: tlb_stale, tlb_stale_first and
        the ASID's counter). Returns the VMA indices that need anon_vma_prepare, or
        None when there were too many to list (then every VMA with anon id -1 does)."""
        cdef Py_ssize_t n = vas.shape[0]
        buffer_length(out.shape[0], n, "out")
        buffer_length(writes.shape[0], n, "writes", optional=True)
        buffer_length(insns.shape[0], n, "insns", optional=True)
        cdef const u8* wr = &writes[0] if writes.shape[0] else NULL
        cdef const u8* ins = &insns[0] if insns.shape[0] else NULL
        cdef i64 hits
        cdef TlbCore tlb = self.pt.tlb
        self.n_need_anon = 0
        self.anon_overflow = False
        self.tlb_stale = 0
        self.tlb_stale_first = -1
        if n:
            with nogil:
                if self.pt.tlb_on:
                    hits = self._access_tlb(tlb, &vas[0], n, wr, write_all, ins, insn_all, &out[0], check)
                else:
                    hits = self._access_walk(&vas[0], n, wr, write_all, ins, insn_all, &out[0])
                self.outcomes[<int>ACC_HIT] += hits    # counted in a register, not self.outcomes
        if self.anon_overflow:
            return None
        return [int(self.need_anon[j]) for j in range(self.n_need_anon)]

    def access_repeat(self, const u64[::1] vas, const u8[::1] writes, bint write_all, u8[::1] out,
                      const u8[::1] insns, bint insn_all, int pieces, RepeatPass prev=None,
                      RepeatPass spare=None):
        """access() through the TLB model (no stale-hit check) of a pass that repeats
        ``prev`` (the RepeatPass of the same addresses just before, or None), in
        ``pieces`` pieces: once the TLB state after a piece (TlbCore.key_into) equals
        prev's after the same piece, and no access faulted after that piece in prev nor
        up to it here (so the page tables, and all else an access reads, are as they
        were then), the rest can only repeat prev: its outcomes and counters are prev's
        and the TLB is put in prev's end state. The data-cache model only counts, so
        once the rest of the key equals prev's the walks are prev's: from there its
        walk references (logged) go through the data cache again, for its hits, until
        its state is prev's too. ``spare``: a RepeatPass no longer needed (not prev),
        whose buffers this pass takes if it has the same shape. Returns (the VMAs that
        need anon_vma_prepare, as access() does, and this pass's RepeatPass)."""
        cdef Py_ssize_t n = vas.shape[0], i, j, a, b
        buffer_length(out.shape[0], n, "out")
        buffer_length(writes.shape[0], n, "writes", optional=True)
        buffer_length(insns.shape[0], n, "insns", optional=True)
        if not self.pt.tlb_on:
            raise ValueError("access_repeat needs the TLB model (Kernel(cpu=...))")
        if pieces < 1:
            raise ValueError(f"pieces must be >= 1, got {pieces}")
        cdef TlbCore tlb = self.pt.tlb
        cdef u64 klen = tlb.key_len()
        if prev is not None and (prev.n != n or prev.pieces != pieces or prev.klen != klen):
            raise ValueError(f"prev is a pass of {prev.n} accesses in {prev.pieces} pieces, not {n} in {pieces}")
        if spare is prev:
            spare = None
        if spare is not None and spare.fits(n, pieces, klen, tlb.state_size()):
            rec = spare
            rec.recycle()
        else:
            rec = RepeatPass(n, pieces, klen, tlb.state_size())
        rec.out = out
        rec.out_p = &out[0] if n else NULL
        cdef u64* keys = rec.keys_p
        cdef i64* rows = rec.rows_p
        cdef u8* faulted = rec.faulted_p
        cdef i64* row = &tlb.counters[<u64>self.pt.tlb_asid * NR_COUNTERS]
        cdef const u8* wr = &writes[0] if writes.shape[0] else NULL
        cdef const u8* ins = &insns[0] if insns.shape[0] else NULL
        cdef i64 hits = 0, h
        cdef bint clean = True, have_prev = prev is not None
        cdef Py_ssize_t prev_fault = -1            # the last piece of prev that faulted
        # the key's data-cache part [doff, dend): the rest may repeat prev before it does
        cdef u64 doff = tlb.dc_key_off, dend = tlb.dc_key_off + tlb.dc_key_len
        cdef bint replay = have_prev and prev.dc_logged, same_dc
        cdef Py_ssize_t q, r0, r1, c
        cdef i64* dc_pos = rec.dc_pos_p
        cdef u64* ck
        cdef u64* pk
        if have_prev:
            for j in range(pieces):
                if prev.faulted_p[j]:
                    prev_fault = j
        self.n_need_anon = 0
        self.anon_overflow = False
        tlb.dc_log_n = 0
        tlb.dc_log_fail = False
        tlb.dc_log_on = tlb.dc_key_len > 0
        try:
            with nogil:
                memcpy(rows, row, NR_COUNTERS * sizeof(i64))
                for i in range(pieces):
                    a = n * i // pieces
                    b = n * (i + 1) // pieces
                    h = self._access_tlb(tlb, &vas[a], b - a, wr + a if wr != NULL else NULL, write_all,
                                         ins + a if ins != NULL else NULL, insn_all, &out[a], False) if b > a else 0
                    hits += h
                    faulted[i] = h < b - a
                    clean = clean and not faulted[i]
                    dc_pos[i + 1] = tlb.dc_log_n
                    ck = &keys[i * klen]
                    tlb.key_into(ck)
                    memcpy(&rows[(i + 1) * NR_COUNTERS], row, NR_COUNTERS * sizeof(i64))
                    if not have_prev or not clean or prev_fault > i:
                        continue
                    pk = &prev.keys_p[i * klen]
                    if memcmp(ck, pk, doff * sizeof(u64)) != 0 or \
                            memcmp(ck + dend, pk + dend, (klen - dend) * sizeof(u64)) != 0:
                        continue                    # the TLBs differ
                    same_dc = memcmp(ck + doff, pk + doff, (dend - doff) * sizeof(u64)) == 0
                    if not same_dc and not replay:
                        continue
                    # The TLBs are as they were after piece i of prev, and no access faulted
                    # since: the rest makes prev's walks, so its outcomes and counters are
                    # prev's, but for the data cache's hits until its state is prev's too,
                    # which prev's walk references, sent to it again, tell.
                    if b < n:
                        memcpy(&out[b], &prev.out_p[b], n - b)
                    hits += n - b
                    memset(&faulted[i + 1], 0, pieces - 1 - i)       # (prev clean after i)
                    rec.replayed_from = b
                    if same_dc:
                        rec.repeated_from = b
                    for q in range(i + 1, pieces):
                        memcpy(&keys[q * klen], &prev.keys_p[q * klen], klen * sizeof(u64))
                        for c in range(NR_COUNTERS):
                            rows[(q + 1) * NR_COUNTERS + c] = rows[q * NR_COUNTERS + c] + \
                                prev.rows_p[(q + 1) * NR_COUNTERS + c] - prev.rows_p[q * NR_COUNTERS + c]
                        r0 = prev.dc_pos_p[q]
                        r1 = prev.dc_pos_p[q + 1]
                        dc_pos[q + 1] = dc_pos[q] + (r1 - r0)
                        if same_dc:
                            continue
                        rows[(q + 1) * NR_COUNTERS + C_DC_HIT] = rows[q * NR_COUNTERS + C_DC_HIT] + \
                            tlb.dcache_replay(&prev.dc_log_p[r0], r1 - r0)
                        tlb.dcache_key_into(&keys[q * klen + doff])
                        same_dc = memcmp(&keys[q * klen + doff], &prev.keys_p[q * klen + doff],
                                         (dend - doff) * sizeof(u64)) == 0
                        if same_dc:
                            rec.repeated_from = n * (q + 1) // pieces
                    # this pass's log goes on with prev's references (a pass after may
                    # replay it), unless prev's log is incomplete
                    r0 = prev.dc_pos_p[i + 1]
                    r1 = prev.dc_pos_p[pieces]
                    if not replay or not tlb.dc_log_reserve(r1 - r0):
                        tlb.dc_log_fail = True
                    elif r1 > r0:
                        memcpy(&tlb.dc_log[tlb.dc_log_n], &prev.dc_log_p[r0], (r1 - r0) * sizeof(u64))
                        tlb.dc_log_n += r1 - r0
                    memcpy(row, &rows[pieces * NR_COUNTERS], NR_COUNTERS * sizeof(i64))
                    if same_dc:                 # prev's end state, the data cache's too
                        memcpy(rec.state_p, prev.state_p, rec.state_size)
                        tlb.state_restore(rec.state_p)
                    else:                       # prev's TLBs, the data cache as replayed
                        tlb.state_restore_tlb(prev.state_p)
                        tlb.state_save(rec.state_p)
                    break
                else:
                    tlb.state_save(rec.state_p)
                self.outcomes[<int>ACC_HIT] += hits
        finally:
            tlb.dc_log_on = False
        rec.take_dc_log(tlb)
        if self.anon_overflow:
            return None, rec
        return [int(self.need_anon[j]) for j in range(self.n_need_anon)], rec

    cdef inline int _allow(self, const u8* wr, bint write_all, const u8* ins, bint insn_all, Py_ssize_t i,
                           bint* w, bint* x) noexcept nogil:
        """The permission access i needs (PROT_X, PROT_W, or R or W for a read); a write
        is never an instruction fetch."""
        w[0] = wr[i] if wr != NULL else write_all
        x[0] = (ins[i] != 0 if ins != NULL else insn_all) and not w[0]
        return PROT_X if x[0] else (PROT_W if w[0] else PROT_R | PROT_W)

    cdef i64 _access_walk(self, const u64* vas, Py_ssize_t n, const u8* wr, bint write_all,
                          const u8* ins, bint insn_all, u8* out) except -1 nogil:
        """access() without a TLB model: the hardware walk, started WALK_AHEAD accesses
        early (the entry it ends on is found and prefetched then, and read now); a
        valid leaf allowing the access is a hit (nothing else to do). A fault may
        change the tables: entries found before it are stale, and those accesses walk
        again. Returns the hits (the other outcomes are counted in self.outcomes)."""
        cdef Py_ssize_t i, last_fault = -1      # the last access that faulted
        cdef u64 va, pa, unit, e, limit = self.pt.va_limit
        cdef int level, prot, st, r, allow
        cdef bint w, x
        cdef i64 hits = 0
        cdef walk_params wp
        cdef const u64* ahead[WALK_AHEAD]      # the walk's end entry of each address ahead
        cdef const u64* ent
        cdef const u64* nxt
        walk_params_of(self.pt, &wp)
        for i in range(n):
            va = vas[i]
            allow = self._allow(wr, write_all, ins, insn_all, i, &w, &x)
            # every access (also one past the address space) takes its entry found
            # WALK_AHEAD ago and starts the walk of the one that far on
            ent = ahead[i & (WALK_AHEAD - 1)]
            if i + WALK_AHEAD < n:              # (the slot just read is reused)
                nxt = walk_entry_p(&wp, vas[i + WALK_AHEAD]) if vas[i + WALK_AHEAD] < limit else NULL
                mm_prefetch(nxt)
                ahead[(i + WALK_AHEAD) & (WALK_AHEAD - 1)] = nxt
            if va >= limit:
                r = ACC_SEGV_MAPERR
            else:
                r = -1
                if i - WALK_AHEAD > last_fault:    # found after the last fault
                    e = ent[0]                      # (va < limit: not NULL)
                    if (e & (DESC_VALID | DESC_TABLE)) == DESC_VALID and \
                            <int>((e & DESC_PROT_MASK) >> DESC_PROT_SHIFT) & allow:
                        r = ACC_HIT
                if r < 0:
                    st = self.pt.walk(va, &pa, &level, &unit, &prot)
                    if st == TR_OK and prot & allow:
                        r = ACC_HIT
                    else:
                        r = self._fault(va, w, x, st, level)
                        last_fault = i
                        walk_params_of(self.pt, &wp)    # the fault may have moved a pool
            out[i] = <u8>r
            if r == ACC_HIT:
                hits += 1
            else:
                self.outcomes[<int>r] += 1
        return hits

    cdef i64 _access_tlb(self, TlbCore tlb, const u64* vas, Py_ssize_t n, const u8* wr, bint write_all,
                         const u8* ins, bint insn_all, u8* out, bint check) except -1 nogil:
        """access() through the TLB model (pt.tlb): a hit that allows the access needs no
        walk; a miss walks and fills; after a fault the retried access walks and fills.
        Returns the hits; ``tlb``: pt.tlb (a reference held by the caller)."""
        cdef Py_ssize_t i
        cdef u64 va, pa, unit, tout = 0, tbase = 0, tsize = 0, limit = self.pt.va_limit
        cdef int level, prot, st, r, side, allow, hit
        cdef bint w, x
        cdef u32 asid = self.pt.tlb_asid
        cdef i64 hits = 0
        cdef tlb_last last
        last.side = -1
        for i in range(n):
            va = vas[i]
            allow = self._allow(wr, write_all, ins, insn_all, i, &w, &x)
            if va >= limit:
                r = ACC_SEGV_MAPERR
            else:
                side = SIDE_INSN if x else SIDE_DATA
                if not check and tlb_repeat_hit(tlb, asid, va, side, &last, &tout):
                    hit = 0                         # the entry of the last L1 hit again
                else:
                    hit = tlb.lookup(asid, va, side, &tout, &tbase, &tsize)
                    tlb_note_hit(tlb, side, hit, tout, tbase, tsize, &last)
                if hit >= 0 and <int>(tout & 7) & allow:
                    r = ACC_HIT
                    if check and self.tlb_hit_stale(va, tout, tbase, tsize):
                        tlb.counters[<u64>asid * NR_COUNTERS + C_STALE] += 1
                        if self.tlb_stale_first < 0:
                            self.tlb_stale_first = i
                        self.tlb_stale += 1
                else:
                    st = self.tlb_walk_fill(va, side, &pa, &level, &unit, &prot, hit < 0)
                    if st == TR_OK and prot & allow:
                        r = ACC_HIT
                    else:
                        r = self._fault(va, w, x, st, level)
                        if r <= ACC_REUSE or r == ACC_MAJOR:      # the retried access
                            self.tlb_walk_fill(va, side, &pa, &level, &unit, &prot)
            out[i] = <u8>r
            if r == ACC_HIT:
                hits += 1
            else:
                self.outcomes[<int>r] += 1
        return hits

    cdef int _fault(self, u64 va, bint w, bint x, int st, int level) except -1 nogil:
        """fault(), after an instruction fetch's VM_EXEC check (SEGV_ACCERR without)."""
        cdef i64 vi
        if x:
            vi = self.vmas.find(va)
            if vi >= 0 and not (self.vmas.flags[vi] & VM_EXEC):
                return ACC_SEGV_ACCERR
        return self.fault(va, w, st, level)

    def zap_range(self, u64 start, u64 end):
        """Unmap [start, end) (munmap, MADV_DONTNEED, mremap source); returns pages."""
        user_range(start, end, self.pt.va_limit)
        return self.zap(start, end)

    def split_at(self, u64 x):
        """Split a block mapping that a new VMA boundary at x cuts (vma_adjust_trans_huge)."""
        user_range(x, x, self.pt.va_limit, "split address")
        self.split_or_zap(x)

    def unmap_file(self, i64 f, i64 first=0, i64 last=-1, bint even_cows=False):
        """unmap_mapping_pages(mapping, first, last - first + 1, even_cows) (all of
        the file by default, as unmap_mapping_range(mapping, 0, 0, 0)): zap every page
        of file f in pages [first, last] this MM maps; private COW copies (anon) stay
        unless even_cows (truncation). Returns pages unmapped."""
        cdef i64 i, total = 0, pfn, pgoff, npages
        cdef u64 a, lo, end, desc, span, tpage = (<u64>1) << self.pt.page_shift
        cdef int level
        for i in range(self.vmas.n):
            if self.vmas.file[i] != f:
                continue
            self.pt.tlb_gather_mmu(False)       # zap_page_range_single: one gather per VMA
            a = self.vmas.start[i]
            end = self.vmas.end[i]
            pgoff = <i64>self.vmas.pgoff[i]
            npages = <i64>((end - a) >> self.kshift)
            if last >= 0:                       # vma_interval_tree_foreach clip
                if last < pgoff or first >= pgoff + npages:
                    continue
                if last < pgoff + npages - 1:
                    end = a + (<u64>(last + 1 - pgoff) << self.kshift)
                if first > pgoff:
                    a = a + (<u64>(first - pgoff) << self.kshift)
            # a PTE maps a whole table page (the process page with native tables):
            # zap every one that maps a page of [first, last], as zap_pte_range does
            a &= ~(tpage - 1)
            end = (end + tpage - 1) & ~(tpage - 1)
            if end > self.vmas.end[i]:
                end = self.vmas.end[i]
            lo = a
            while a < end and self.pt.next_leaf(&a, end, &desc, &level):
                span = (<u64>1) << self.pt.shift[level]
                pfn = <i64>((desc & ADDR_MASK) >> self.kshift)
                if not self.k.is_zero_pfn(pfn) and (even_cows or not self.folios.test_flags(pfn, PG_anon)):
                    # a block may start before the range: zap only its part inside
                    total += self.zap(a if a > lo else lo, a + span if a + span < end else end)
                a += span
            self.pt.tlb_finish_mmu()
        return total

    def unpin_folio(self, i64 head, int refs):
        """unpin_user_page(s) of refs pages of the folio at head (gup_put_folio):
        refcount -= refs; the last reference of an unmapped anonymous folio, or of a
        cache folio truncated while pinned (owner -1), frees it. Returns the
        refcount left (0 when freed)."""
        cdef int order = self.folios.folio_order(head)
        cdef i32 left
        if order < 0 or self.folios.folio_head(head) != head:
            raise ValueError(f"pfn {head} is not a folio head")
        if self.folios.refcount[head] - refs < 0:
            raise ValueError(f"folio {head}: refcount {self.folios.refcount[head]} < {refs} pins")
        left = self.folios.ref_add(head, -refs)
        if self.folios.flags[head] & PG_anon:
            if left <= 1 and self.folios.folio_mapcount(head) == 0:
                self.folios.folio_free(head)
                self.buddy.free(head, order)
                self.k.anon_add(-((<i64>1) << order))
                return 0
        elif self.folios.owner[head] == -1 and left == 0:
            self.folios.folio_free(head)
            self.buddy.free(head, order)
        return left

    def free_pgtables(self, u64 floor, u64 ceiling):
        user_range(floor, ceiling, self.pt.va_limit)
        self.pt.free_tables(floor, ceiling)

    def protect(self, u64 start, u64 end, u64 vm_flags):
        """change_protection for mprotect: new access bits; write only where the
        folio is exclusive (can_change_pte_writable), so COW stays armed."""
        cdef u64 prot = self.leaf_prot(vm_flags), a, s, desc, span, pa
        cdef u64 psize = (<u64>1) << self.pshift
        cdef int level
        cdef u64 run_start = 0
        cdef bint in_run = False
        user_range(start, end, self.pt.va_limit)
        self.split_or_zap(start)          # the only tables a protect needs
        self.split_or_zap(end)
        self.pt.protect_range(start, end - start, prot)
        if not (vm_flags & VM_WRITE):
            return
        a = start
        while a < end:
            s = a
            if self.pt.next_leaf(&s, a + psize, &desc, &level):
                span = (<u64>1) << self.pt.shift[level]
                pa = (desc & ADDR_MASK) + (a - s if a > s else 0)
                if not self.k.is_zero_pfn(<i64>(pa >> self.kshift)) and \
                        self.k.anon_excl[<i64>(pa >> self.kshift)]:
                    if not in_run:
                        run_start = a
                        in_run = True
                    a += psize
                    continue
            if in_run:
                self.pt.protect_range(run_start, a - run_start, prot | PROT_W)
                in_run = False
            a += psize
        if in_run:
            self.pt.protect_range(run_start, end - run_start, prot | PROT_W)

    def move(self, u64 start, u64 end, u64 new_start):
        """move_page_tables: the leaves of [start, end) move to new_start; runs
        refold where the new address keeps them aligned (one folio at a time)."""
        cdef u64 a = start, desc, span, pa, s, e
        cdef int level
        cdef i64 head, last_head = -1
        cdef u64 chunk_va = 0, chunk_pa = 0, chunk_len = 0, chunk_prot = 0
        cdef bint chunk_block = False, chunk_dep = False
        moved = []
        user_range(start, end, self.pt.va_limit)
        user_range(new_start, new_start + (end - start), self.pt.va_limit, "destination")
        self.split_or_zap(start)
        self.split_or_zap(end)
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            span = (<u64>1) << self.pt.shift[level]
            moved.append((a, desc, level, span))
            a += span
        # the destination's tables first, leaf by leaf (move_page_tables allocates as
        # it goes; here a MemoryError comes before anything moved)
        for a, desc, level, span in moved:
            self._move_tables(a - start + new_start, level, span)
        self.pt.zap_range(start, end - start)
        for a, desc, level, span in moved:
            pa = desc & ADDR_MASK
            prot = (desc & DESC_PROT_MASK) >> DESC_PROT_SHIFT
            head = -1 if self.k.is_zero_pfn(<i64>(pa >> self.kshift)) else \
                self.folios.folio_head(<i64>(pa >> self.kshift))
            if chunk_len and head == last_head and head >= 0 and a == chunk_va + chunk_len \
                    and pa == chunk_pa + chunk_len and prot == chunk_prot and not chunk_block:
                chunk_len += span
                continue
            if chunk_len:
                self._move_map(chunk_va - start + new_start, chunk_pa, chunk_len, chunk_prot,
                               last_head >= 0, chunk_block, chunk_dep)
            chunk_va, chunk_pa, chunk_len, chunk_prot = a, pa, span, prot
            chunk_block = level < self.pt.levels - 1
            chunk_dep = (desc & DESC_SW_DEPOSIT) != 0
            last_head = head
        if chunk_len:
            self._move_map(chunk_va - start + new_start, chunk_pa, chunk_len, chunk_prot,
                           last_head >= 0, chunk_block, chunk_dep)

    def _move_map(self, u64 nva, u64 pa, u64 size, u64 prot, bint cont, bint block, bint dep):
        # one chunk of move_page_tables at its destination; a deposited block that stays
        # a block gets its deposit back (move_huge_pmd moves it; the source's zap freed
        # it here), one that became PTEs has none
        cdef u64 a, unit
        cdef int level, pr
        self.pt.map_range(nva, pa, size, prot, cont, block)
        if dep and self.pt.walk(nva, &a, &level, &unit, &pr) == TR_OK and level == self.pt.levels - 2:
            if self.pt.deposit() != 0:
                raise MemoryError("ENOMEM: no memory for a moved THP's deposit")
            self.pt.mark_deposited(nva, True)

    def _move_tables(self, u64 nva, int level, u64 span):
        # the tables map_range will need for a leaf of `span` at level `level` moved to
        # nva: a block stays a block where nva is aligned and its entry empty, else PTEs
        cdef u64 pa, unit, a
        cdef int lv, pr
        cdef int last = self.pt.levels - 1
        if level < last and (nva & (span - 1)) == 0:
            if self.pt.prealloc(nva, level) != 0:
                raise MemoryError("ENOMEM: no memory for mremap's page tables")
            if self.pt.walk(nva, &pa, &lv, &unit, &pr) != TR_OK and lv == level:
                return
        a = nva
        while a < nva + span:
            if self.pt.prealloc(a, last) != 0:
                raise MemoryError("ENOMEM: no memory for mremap's page tables")
            a = (a & ~((<u64>1 << self.pt.shift[last - 1]) - 1)) + (<u64>1 << self.pt.shift[last - 1])

    def fork_copy(self, MMCore parent, u64 start, u64 end, bint cow):
        """copy_page_range for one VMA: share every leaf; for a COW mapping write-
        protect it in both (wrprotect_ptes keeps whole contiguous runs)."""
        cdef u64 a = start, desc, span, pa
        cdef int level
        cdef i64 pfn, nr, i
        user_range(start, end, self.pt.va_limit)
        if parent.pt.geometry != self.pt.geometry or parent.k is not self.k or parent is self:
            raise ValueError("fork_copy copies from another MM of the same kernel and geometry")
        if cow:
            parent.pt.protect_range(start, end - start, parent.leaf_prot(parent.vmas.flags[parent.vmas.find(start)]))
        try:
            self.pt.copy_range(parent.pt, start, end, DESC_W if cow else 0)
        except MemoryError:
            # copy_page_range's -ENOMEM: the part copied is dropped (no rmap taken yet);
            # the parent stays write-protected, as Linux leaves it
            self.pt.zap_range(start, end - start)
            raise
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            span = (<u64>1) << self.pt.shift[level]
            pa = desc & ADDR_MASK
            pfn = <i64>(pa >> self.kshift)
            nr = <i64>(span >> self.kshift)
            if not self.k.is_zero_pfn(pfn):
                for i in range(nr):
                    self.folios.mapcount[pfn + i] += 1
                if self.folios.test_flags(pfn, PG_anon):
                    if cow:
                        self.set_exclusive(pfn, nr, 0)   # folio_try_dup_anon_rmap
                    self.rss_anon += nr
                else:
                    self.rss_file += nr
            a += span

    def exit_mm(self):
        """exit_mmap: unmap everything and free every table but the root, in one
        tlb_gather_mmu_fullmm (flush_tlb_mm at the end)."""
        self.pt.tlb_gather_mmu(True)
        self.zap(0, self.pt.va_limit)
        self.pt.free_tables(0, self.pt.va_limit)
        self.pt.tlb_finish_mmu()
        self.pt.uncharge()                 # mmput -> __mmdrop -> mm_free_pgd

    # ----------------------------------------------------------- accounting
    def outcome_counts(self):
        return [int(self.outcomes[i]) for i in range(<int>NR_ACC)]

    def range_stats(self, u64 start, u64 end):
        """(anon pages, PMD-mapped anon pages, zero-page pages) mapped in [start, end)."""
        anon, pmd, zero, _file, _pss = self.mapped_stats(start, end)
        return anon, pmd, zero

    def mapped_stats(self, u64 start, u64 end):
        """(anon pages, PMD-mapped anon pages, zero-page pages, file pages, PSS in
        bytes) mapped in [start, end); PSS divides each page by its mapcount
        (smaps_account with per-page mapcounts)."""
        cdef u64 a = start, desc, span, s, e
        cdef int level
        cdef i64 anon = 0, pmd = 0, zero = 0, file = 0, nr, pfn, i
        cdef double pss = 0.0
        cdef double kpage = <double>((<u64>1) << self.kshift)
        user_range(start, end, self.pt.va_limit)
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            span = (<u64>1) << self.pt.shift[level]
            s = a if a > start else start
            e = a + span if a + span < end else end
            nr = <i64>((e - s) >> self.kshift)
            pfn = <i64>(((desc & ADDR_MASK) + (s - a)) >> self.kshift)
            if self.k.is_zero_pfn(pfn):
                zero += nr
            else:
                for i in range(nr):
                    if self.folios.mapcount[pfn + i] > 0:     # <= 0 only in a corrupt state
                        pss += kpage / self.folios.mapcount[pfn + i]
                if self.folios.test_flags(pfn, PG_anon):
                    anon += nr
                    if level < self.pt.levels - 1:
                        pmd += nr
                else:
                    file += nr
            a += span
        return anon, pmd, zero, file, int(pss)

    def deposited_tables(self):
        """PTE tables deposited for PMD leaves (pgtable_trans_huge_deposit): one per
        anonymous THP or huge zero PMD; file PMD mappings deposit none (x86, arm64)."""
        cdef u64 a = 0, desc, end = self.pt.va_limit
        cdef int level
        cdef i64 pfn, n = 0
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            pfn = <i64>((desc & ADDR_MASK) >> self.kshift)
            if level == self.pt.levels - 2 and (self.k.is_zero_pfn(pfn) or
                                               self.folios.test_flags(pfn, PG_anon)):
                n += 1
            a += (<u64>1) << self.pt.shift[level]
        return n

    def block_heads(self):
        """pfns mapped by block (PMD) leaves, the zero folio excepted (AnonHugePages)."""
        cdef u64 a = 0, desc, end = self.pt.va_limit
        cdef int level
        cdef i64 pfn
        out = []
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            pfn = <i64>((desc & ADDR_MASK) >> self.kshift)
            if level < self.pt.levels - 1 and not self.k.is_zero_pfn(pfn) and \
                    self.folios.test_flags(pfn, PG_anon):
                out.append(pfn)
            a += (<u64>1) << self.pt.shift[level]
        return out

    def add_mapcounts(self, i32[::1] counts):
        """Add one per frame per mapping of this MM (check(): recount of mapcounts)."""
        cdef u64 a = 0, desc, span, end = self.pt.va_limit
        cdef int level
        cdef i64 pfn, i, nr
        buffer_length(counts.shape[0], self.k.buddy.nr_pages, "counts (one per frame)")
        while a < end and self.pt.next_leaf(&a, end, &desc, &level):
            span = (<u64>1) << self.pt.shift[level]
            pfn = <i64>((desc & ADDR_MASK) >> self.kshift)
            nr = <i64>(span >> self.kshift)
            if not self.k.is_zero_pfn(pfn):
                for i in range(nr):
                    counts[pfn + i] += 1
            a += span
