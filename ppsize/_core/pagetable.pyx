# Multi-level page table kernel. Inputs are validated by ppsize.pagetable; the
# cdef methods here assume aligned, in-range arguments (asserted in debug builds).
cimport numpy as cnp
from libc.string cimport memset

import numpy as np

from .._validate import buffer_length, user_range

from libc cimport errno as cerrno

from ._types cimport u64, i64, i32, u32, u8, i8, MAX_LEVELS
from .tlb cimport TlbCore
from .kcore cimport KernelCore
from .framemem cimport GrowBuf

cnp.import_array()

cdef u64 ADDR_MASK = ~(<u64>0xfff)

cdef extern from *:
    void __builtin_prefetch(const void* p) noexcept nogil
    int __builtin_ctz(unsigned x) noexcept nogil

cdef enum:
    OP_ZAP = 0           # clear leaves, keep tables
    OP_UNMAP = 1         # clear leaves, free tables left empty
    OP_PROTECT = 2       # new prot on leaves

cdef enum:
    WALK_GROUP = 64      # walks interleaved by _translate (measured: 64 > 32 > 16)
    WALK_BLOCK = -1      # _walk_alloc met a block leaf


# TLB flush sites by name (PageTableCore.tlb_skip: a test leaves one out)
FLUSH_SITES = {"gather": FLUSH_GATHER, "split": FLUSH_SPLIT, "contpte": FLUSH_CONTPTE,
               "cow": FLUSH_COW, "wp": FLUSH_WP, "fork": FLUSH_FORK}


cdef inline u64 _min(u64 a, u64 b) noexcept nogil:
    return a if a < b else b


cdef inline int _walk(PageTableCore self, u64 va, u64* pa, int* level, u64* unit, int* prot,
                      u64* table_pa) noexcept nogil:
    """The hardware walk of va; with table_pa, the (synthetic) PA of the table read at
    each level: the MM's table base + level << 36 + table index x table bytes."""
    cdef int l
    cdef i64 t = 0
    cdef u64 e, span
    if va >= self.va_limit:
        level[0] = -1
        return TR_BAD_ADDRESS
    for l in range(self.levels):
        if table_pa != NULL:
            table_pa[l] = self.tlb_table_base + ((<u64>l) << 36) + ((<u64>t) << (self.tbits[l] + 3))
        e = self.tab[l][(t << self.tbits[l]) + ((va >> self.shift[l]) & self.imask[l])]
        if not (e & DESC_VALID):
            level[0] = l
            return TR_NOT_MAPPED
        if e & DESC_TABLE:
            t = <i64>(e >> DESC_ADDR_SHIFT)
            continue
        span = (<u64>1) << self.shift[l]
        pa[0] = (e & ADDR_MASK) | (va & (span - 1))
        level[0] = l
        unit[0] = span * <u64>(self.cont_n[l] if e & DESC_CONT else 1)
        prot[0] = <int>((e & DESC_PROT_MASK) >> DESC_PROT_SHIFT)
        return TR_OK
    return TR_NOT_MAPPED    # not reached: the last level has no table entries


ctypedef struct _TrOut:        # PageTable.translate's output arrays (raw pointers: no
    u64* pa                   # reloads of memoryview fields after each byte store)
    u8* status
    i8* level
    u8* unit_shift
    u8* prot


cdef inline void _tr_end(_TrOut* o, Py_ssize_t i, u64 va, u64 e, int l, int shift,
                         u8 cont_shift) noexcept nogil:
    """The walk of vas[i] ended at level l on entry e (a leaf, or not valid): the
    outputs _walk gives (a leaf's span is 1 << shift; CONT: 1 << cont_shift)."""
    o.level[i] = <i8>l
    if e & DESC_VALID:
        o.pa[i] = (e & ~(<u64>0xfff)) | (va & (((<u64>1) << shift) - 1))
        o.status[i] = TR_OK
        o.unit_shift[i] = cont_shift if e & DESC_CONT else <u8>shift
        o.prot[i] = <u8>((e & DESC_PROT_MASK) >> DESC_PROT_SHIFT)
    else:
        o.pa[i] = 0
        o.status[i] = TR_NOT_MAPPED
        o.unit_shift[i] = 0
        o.prot[i] = 0


cdef inline void _tr_bad(_TrOut* o, Py_ssize_t i) noexcept nogil:
    o.pa[i] = 0
    o.status[i] = TR_BAD_ADDRESS
    o.level[i] = -1
    o.unit_shift[i] = 0
    o.prot[i] = 0


cdef inline u8 _cont_shift(PageTableCore self, int l) noexcept nogil:
    """log2 of the span of a contiguous run at level l (CONT_PTES / CONT_PMDS entries)."""
    return <u8>(self.shift[l] + __builtin_ctz(<unsigned>self.cont_n[l]))


cdef enum:                   # arm64-64k-48 (_translate64k): shifts, table bits, contiguous spans
    K64_S0 = 42
    K64_S1 = 29
    K64_S2 = 16
    K64_TB1 = 13
    K64_TB2 = 13
    K64_CS1 = 34                 # PMD_SHIFT + log2(CONT_PMDS)
    K64_CS2 = 21                 # PAGE_SHIFT + log2(CONT_PTES)


cdef void _translate64k(PageTableCore self, const u64* vas, Py_ssize_t n,
                        _TrOut* o) noexcept nogil:
    """_translate_batch for arm64-64k-48 (3 levels: PGD, PMD, PTE), with the shifts
    and table bits as compile-time constants (immediate shifts, no per-level loads).
    The root's 64 entries are resolved to PMD table pointers once per call; then one
    walk per address, in order, with nothing staged between walks: the PMD tables are
    few and hot, and the out-of-order core overlaps the PTE reads of successive
    walks by itself (on this development host's Xeon 7.8 ns an address against 9.1
    for the grouped, prefetched walks _translate_batch does, min of 25 batches of 10M;
    an earlier host favoured the grouped walks). The root index needs no mask: va <
    va_limit = 1 << (K64_S0 + root bits) (checked first, and by the caller)."""
    cdef u64 limit = self.va_limit, va, e
    cdef const u64* root = self.tab[0]
    cdef const u64* t1 = self.tab[1]
    cdef const u64* t2 = self.tab[2]
    cdef u64 m1 = ((<u64>1) << K64_TB1) - 1, m2 = ((<u64>1) << K64_TB2) - 1
    cdef u8 cs0 = _cont_shift(self, 0)
    cdef Py_ssize_t i, j
    # the outputs in locals: byte stores through o's fields would make the compiler
    # reload them from *o after every store
    cdef u64* opa = o.pa
    cdef u8* ost = o.status
    cdef i8* olv = o.level
    cdef u8* ous = o.unit_shift
    cdef u8* opr = o.prot
    cdef u8 unit2[DESC_CONT + 1]     # a PTE's unit_shift by its DESC_CONT bit
    cdef const u64* pmd[1 << (48 - K64_S0)]     # per root entry: its PMD table, or NULL
    cdef const u64* pm
    for j in range(1 << (48 - K64_S0)):   # (the tables cannot change: PageTable is serialized)
        e = root[j]
        pmd[j] = &t1[(e >> DESC_ADDR_SHIFT) << K64_TB1] if (
            (e & (DESC_VALID | DESC_TABLE)) == (DESC_VALID | DESC_TABLE)) else NULL
    unit2[0] = <u8>K64_S2
    unit2[DESC_CONT] = K64_CS2
    for i in range(n):
        va = vas[i]
        if va >= limit:
            _tr_bad(o, i)
            continue
        pm = pmd[va >> K64_S0]
        if pm == NULL:
            _tr_end(o, i, va, root[va >> K64_S0], 0, K64_S0, cs0)
            continue
        e = pm[(va >> K64_S1) & m1]
        if (e & (DESC_VALID | DESC_TABLE)) != (DESC_VALID | DESC_TABLE):
            _tr_end(o, i, va, e, 1, K64_S1, K64_CS1)
            continue
        e = t2[((e >> DESC_ADDR_SHIFT) << K64_TB2) + ((va >> K64_S2) & m2)]
        olv[i] = 2
        if e & DESC_VALID:
            opa[i] = (e & ~(<u64>0xfff)) | (va & (((<u64>1) << K64_S2) - 1))
            ost[i] = TR_OK
            ous[i] = unit2[e & DESC_CONT]
            opr[i] = <u8>((e & DESC_PROT_MASK) >> DESC_PROT_SHIFT)
        else:
            opa[i] = 0
            ost[i] = TR_NOT_MAPPED
            ous[i] = 0
            opr[i] = 0


cdef void _translate_batch(PageTableCore self, const u64* vas, Py_ssize_t n,
                           _TrOut* o) noexcept nogil:
    """_walk (the MMU's table walk) of every address, WALK_GROUP walks at a time
    advancing together one level per pass, each entry prefetched a pass before it
    is read: the cache misses of independent walks overlap instead of queueing.
    Per-level constants are hoisted into locals before each pass; the root (one
    small table, always hot) is read in the first pass without a prefetch, and the
    last level (leaves only) has a pass of its own."""
    cdef int levels = self.levels, last = self.levels - 1, l
    cdef u64 limit = self.va_limit, va, e
    cdef const u64* root = self.tab[0]
    cdef int s0 = self.shift[0]
    cdef u64 m0 = self.imask[0]
    cdef u8 cs0 = _cont_shift(self, 0)
    cdef const u64* tn          # the next level's pool, shift, index mask, table bits
    cdef int sn, tbn, sh
    cdef u64 mn
    cdef u8 cs
    cdef const u64* ptr[WALK_GROUP]
    cdef const u64* p
    cdef Py_ssize_t base = 0, j, m, i
    if (levels == 3 and self.va_limit == (<u64>1) << 48 and s0 == 42 and self.tbits[0] == 6
            and self.shift[1] == 29 and self.shift[2] == 16 and self.tbits[1] == 13
            and self.tbits[2] == 13 and _cont_shift(self, 1) == 34 and _cont_shift(self, 2) == 21):
        _translate64k(self, vas, n, o)
        return
    if levels == 1:                 # the root holds only leaves
        for i in range(n):
            va = vas[i]
            if va >= limit:
                _tr_bad(o, i)
            else:
                _tr_end(o, i, va, root[(va >> s0) & m0], 0, s0, cs0)
        return
    while base < n:
        m = n - base if n - base < WALK_GROUP else WALK_GROUP
        # pass 0: the root entry, and a prefetch of the level-1 entry
        tn = self.tab[1]
        sn = self.shift[1]
        mn = self.imask[1]
        tbn = self.tbits[1]
        for j in range(m):
            i = base + j
            va = vas[i]
            if va >= limit:
                ptr[j] = NULL
                _tr_bad(o, i)
                continue
            e = root[(va >> s0) & m0]
            if (e & (DESC_VALID | DESC_TABLE)) == (DESC_VALID | DESC_TABLE):
                ptr[j] = &tn[((e >> DESC_ADDR_SHIFT) << tbn) + ((va >> sn) & mn)]
                __builtin_prefetch(ptr[j])
            else:
                ptr[j] = NULL
                _tr_end(o, i, va, e, 0, s0, cs0)
        # the middle levels: read the prefetched entry, prefetch the next
        for l in range(1, last):
            sh = self.shift[l]
            cs = _cont_shift(self, l)
            tn = self.tab[l + 1]
            sn = self.shift[l + 1]
            mn = self.imask[l + 1]
            tbn = self.tbits[l + 1]
            for j in range(m):
                p = ptr[j]
                if p == NULL:               # finished (or a bad address)
                    continue
                e = p[0]
                va = vas[base + j]
                if (e & (DESC_VALID | DESC_TABLE)) == (DESC_VALID | DESC_TABLE):
                    ptr[j] = &tn[((e >> DESC_ADDR_SHIFT) << tbn) + ((va >> sn) & mn)]
                    __builtin_prefetch(ptr[j])
                else:
                    ptr[j] = NULL
                    _tr_end(o, base + j, va, e, l, sh, cs)
        # the last level: leaves (or holes) only
        sh = self.shift[last]
        cs = _cont_shift(self, last)
        for j in range(m):
            p = ptr[j]
            if p != NULL:
                _tr_end(o, base + j, vas[base + j], p[0], last, sh, cs)
        base += m


# _translate calls the batch walk through a pointer set at import: kept out of line, the
# walk's loops get the registers to themselves (inlined into _translate they spill).
cdef void (*_batch_fn)(PageTableCore, const u64*, Py_ssize_t, _TrOut*) noexcept nogil
_batch_fn = _translate_batch


cdef inline i64 _walk_alloc(PageTableCore self, u64 va, int last) noexcept nogil:
    """The walk down to va's level-``last`` table, allocating the missing tables
    top-down (p4d_alloc / pud_alloc / pmd_alloc / pte_alloc): that table's index;
    -ENOMEM with the tables allocated so far kept (empty tables, as Linux leaves
    them); WALK_BLOCK at a block leaf above ``last``."""
    cdef int l
    cdef i64 t = 0, child
    cdef u64* p
    for l in range(last):
        p = &self.tab[l][(t << self.tbits[l]) + ((va >> self.shift[l]) & self.imask[l])]
        if p[0] == 0:
            child = self.alloc_table(l + 1)      # grows pool l+1 only: p stays valid
            if child < 0:
                return -cerrno.ENOMEM
            p[0] = (<u64>child << DESC_ADDR_SHIFT) | DESC_VALID | DESC_TABLE
            self.nvalid[l][t] += 1
        elif not (p[0] & DESC_TABLE):
            return WALK_BLOCK
        t = <i64>(p[0] >> DESC_ADDR_SHIFT)
    return t


cdef i64 _present(PageTableCore self, int l, i64 t, u64 tva, u64 start, u64 end) noexcept nogil:
    # granule pages mapped in [start, end) below table t of level l (which maps from tva):
    # a last-level table wholly inside counts by its nvalid, a block leaf by its span
    cdef int s = self.shift[l]
    cdef u64 span = (<u64>1) << s, eva, eend, lo, hi
    cdef u64 first = (start - tva) >> s, last = (end - 1 - tva) >> s, idx
    cdef i64 n = 0, child, base = t << self.tbits[l]
    cdef u64 e
    for idx in range(first, last + 1):
        e = self.tab[l][base + <i64>idx]
        if not (e & DESC_VALID):
            continue
        eva = tva + (idx << s)
        eend = eva + span
        lo = start if start > eva else eva
        hi = end if end < eend else eend
        if e & DESC_TABLE:
            child = <i64>(e >> DESC_ADDR_SHIFT)
            if l + 1 == self.levels - 1 and lo == eva and hi == eend:
                n += self.nvalid[l + 1][child]
            else:
                n += _present(self, l + 1, child, eva, lo, hi)
        else:
            n += <i64>((hi - lo) >> self.page_shift)
    return n


cdef class PageTableCore:
    """Page-table state for one geometry. Use ``ppsize.PageTable``, which validates."""

    def __cinit__(self, geometry="arm64-4k-48", *args, **kwargs):
        from ..geometry import geometry as lookup
        geometry = lookup(geometry)
        self.geometry = geometry
        cdef int l, n = geometry.levels
        if n < 1 or n > MAX_LEVELS:
            raise ValueError(f"geometry {geometry.name} has {n} levels; 1..{MAX_LEVELS} supported")
        self.levels = n
        self.page_shift = geometry.page_shift
        self.va_limit = (<u64>1) << geometry.va_bits
        block_levels = set(geometry.block_levels)
        vmpte_levels = set(geometry.vmpte_levels())
        self._tab_arrays = []
        self._nvalid_arrays = []
        self._pfn_arrays = []
        self.kc = None
        self.charged = False
        self.mm_id = 0
        self._dep_a = None
        self.dep = NULL
        self.ndep = 0
        self.dep_cap = 0
        for l in range(n):
            entries = geometry.entries[l]
            self.shift[l] = geometry.shifts[l]
            self.tbits[l] = int(entries).bit_length() - 1
            self.imask[l] = entries - 1
            self.block_ok[l] = l in block_levels
            self.vmpte[l] = l in vmpte_levels
            self.cont_n[l] = 1
            self.cap[l] = 0
            self.top[l] = 0
            self.free_head[l] = -1
            self.ntables[l] = 0
            self._tab_arrays.append(None)
            self._nvalid_arrays.append(None)
            self._pfn_arrays.append(None)
            self.torder[l] = 0
            self.tcache[l] = -1
            self._grow(l, 1 if l == 0 else 16)
        if n >= 2:
            self.cont_n[n - 1] = geometry.cont_ptes     # CONT_PTES
            self.cont_n[n - 2] = geometry.cont_pmds     # CONT_PMDS (blocks)
        self.zero_pa = ~(<u64>0)                        # no huge zero folio known
        self.tlb = None
        self.tlb_on = False
        self.tlb_skip = 0
        self.tlb_gather_mmu(False)
        if self.alloc_table(0) < 0:                     # the root (pgd_alloc)
            raise MemoryError("no memory for the page-table root")

    # ----------------------------------------------------- kernel memory
    def charge_to(self, KernelCore k, i32 mm_id):
        """Make this (empty) table an MM's on kernel ``k``: from now on every table is
        kernel memory, its root first (pgd_alloc: __pgd_alloc's page-table folio, or an
        object of the pgd_cache when the PGD is smaller than a kernel page, as arm64's
        pgd_alloc). Every other table is pagetable_alloc(order): table bytes / kernel
        page (a 4K table on a 4K kernel: order 0; a native 16K table: order 2; 64K:
        order 4), at least one kernel page. MemoryError (ENOMEM) if the root cannot be
        had: then nothing is charged."""
        cdef int l
        cdef i64 pfn
        if self.charged:
            raise ValueError("the page table is already charged to a kernel")
        if sum(self.tables_per_level()[1:]) or self.nvalid[0][0]:
            raise ValueError("only an empty page table can be charged to a kernel")
        kpage = 1 << k.kshift
        for l in range(self.levels):
            nbytes = self.geometry.table_sizes[l]
            if nbytes < kpage:
                if l != 0:
                    raise ValueError(f"level {l} tables of {nbytes} bytes are below the "
                                     f"{kpage}-byte kernel page")
                self.tcache[l] = k.pgd_cache(nbytes)
                self.torder[l] = -1
            else:
                self.tcache[l] = -1
                self.torder[l] = (nbytes // kpage).bit_length() - 1
        if self.tcache[0] >= 0:
            if k.cache_alloc(self.tcache[0]) != 0:
                raise MemoryError(f"ENOMEM: no memory for the page-table root (pgd_cache)")
            pfn = -1
        else:
            pfn = k.pgtable_alloc(self.torder[0], mm_id)
            if pfn < 0:
                raise MemoryError(f"ENOMEM: no memory for the page-table root "
                                  f"(order-{self.torder[0]} pgd_alloc)")
        self.kc = k
        self.mm_id = mm_id
        self.charged = True
        self.tpfn[0][0] = pfn

    def uncharge(self):
        """mm_free_pgd (__mmdrop): give the root back; the MM is gone (only the root
        may be left: exit_mmap freed the rest). The table is standalone afterwards."""
        if not self.charged:
            return
        if sum(self.tables_per_level()[1:]) or self.ndep:
            raise ValueError("uncharge: tables below the root (or deposits) are still allocated")
        self._free_frame(0, 0)
        self.charged = False
        self.kc = None

    def table_pfns(self):
        """{level: [frame of each live table]} of a charged table (cache objects: -1)."""
        out = {}
        seen = [set() for _ in range(self.levels)]
        seen[0].add(0)
        self._check_table(0, 0, 0, seen)
        for l in range(self.levels):
            out[l] = sorted(int(self.tpfn[l][t]) for t in seen[l])
        return out

    # ------------------------------------------------------------- the TLB
    def set_tlb(self, TlbCore tlb, u32 asid, u64 table_base):
        """Translate through ``tlb`` as ``asid`` (switch_mm); None: no TLB. The tables'
        synthetic physical addresses start at ``table_base`` (walk references)."""
        if tlb is not None and asid >= <u32>tlb.max_asids:
            raise ValueError(f"asid {asid} out of range 0..{tlb.max_asids - 1}")
        self.tlb = tlb
        self.tlb_on = tlb is not None
        self.tlb_asid = asid
        self.tlb_table_base = table_base

    cdef void tlb_flush(self, u64 start, u64 end, u64 stride, bint last_level, u32 site) noexcept nogil:
        """__flush_tlb_range of this MM (Linux's escalation in TlbCore.flush_tlb_range)."""
        if self.tlb_on and not (self.tlb_skip & site):
            self.tlb.flush_tlb_range(self.tlb_asid, start, end, stride, last_level)

    cdef void tlb_gather_mmu(self, bint fullmm) noexcept nogil:
        """tlb_gather_mmu / tlb_gather_mmu_fullmm: start gathering what is unmapped."""
        self.g_start = ~(<u64>0)
        self.g_end = 0
        self.g_levels = 0
        self.g_freed = False
        self.g_fullmm = fullmm

    cdef inline void _gather(self, u64 va, u64 end, int l) noexcept nogil:
        """__tlb_adjust_range + tlb->cleared_<level> for a leaf (or, for a freed table,
        the entry pointing at it) cleared or changed at level l."""
        if va < self.g_start:
            self.g_start = va
        if end > self.g_end:
            self.g_end = end
        self.g_levels |= (<u32>1) << l

    cdef void tlb_finish_mmu(self) noexcept nogil:
        """tlb_finish_mmu -> arm64 tlb_flush: fullmm: flush_tlb_mm if tables were freed
        (the ASID is not reused before a rollover flushes everything); else
        __flush_tlb_range over the gathered range, stride tlb_get_unmap_size (the
        smallest level cleared), last_level = !freed_tables."""
        cdef int l, sh = self.page_shift
        if self.tlb_on and not (self.tlb_skip & FLUSH_GATHER):
            if self.g_fullmm:
                if self.g_freed:
                    self.tlb.flush_mm(self.tlb_asid)
            elif self.g_end > self.g_start:
                for l in range(self.levels - 1, -1, -1):
                    if self.g_levels & ((<u32>1) << l):
                        sh = self.shift[l]
                        break
                self.tlb.flush_tlb_range(self.tlb_asid, self.g_start, self.g_end, (<u64>1) << sh,
                                         not self.g_freed)
        self.tlb_gather_mmu(False)

    def _tlb_gather(self, bint fullmm=False):
        self.tlb_gather_mmu(fullmm)

    def _tlb_finish(self, bint freed_tables=False):
        """tlb_finish_mmu; ``freed_tables`` forces a non-last-level flush (page tables
        moved or freed: mremap's flush_tlb_range)."""
        if freed_tables:
            self.g_freed = True
        self.tlb_finish_mmu()

    def _tlb_flush(self, u64 start, u64 end, u64 stride=0, bint last_level=False, u32 site=FLUSH_GATHER):
        self.tlb_flush(start, end, stride, last_level, site)

    def _tlb_flush_mm(self, u32 site=FLUSH_FORK):
        """flush_tlb_mm of this MM (dup_mmap's of the parent)."""
        if self.tlb_on and not (self.tlb_skip & site):
            self.tlb.flush_mm(self.tlb_asid)

    # ------------------------------------------------------------ table pool
    def _grow(self, int l, i64 new_cap):
        # the pools grow in place (GrowBuf: mremap, no zero-and-copy of the old
        # tables, the new part zero-filled by the host); the walk reads them
        # through self.tab / nvalid / tpfn, re-read after every growth
        if not 0 <= l < self.levels or new_cap < self.cap[l]:
            raise ValueError(f"level {l} (of {self.levels}) or capacity {new_cap} out of range")
        cdef GrowBuf tab, nv, pf
        cdef i64 old = self.cap[l]
        if self._tab_arrays[l] is None:
            # THP backed: the walk reads the tables at random
            self._tab_arrays[l] = GrowBuf(0, True)
            self._nvalid_arrays[l] = GrowBuf(0, True)
            self._pfn_arrays[l] = GrowBuf(0, True)
        tab, nv, pf = self._tab_arrays[l], self._nvalid_arrays[l], self._pfn_arrays[l]
        tab.grow((<size_t>new_cap << self.tbits[l]) * sizeof(u64))
        nv.grow(<size_t>new_cap * sizeof(u32))
        pf.grow(<size_t>new_cap * sizeof(i64))
        self.tab[l] = <u64*>tab.p
        self.nvalid[l] = <u32*>nv.p
        self.tpfn[l] = <i64*>pf.p
        memset(&self.tpfn[l][old], 0xFF, <size_t>(new_cap - old) * sizeof(i64))   # -1: no frame
        self.cap[l] = new_cap

    cdef i64 alloc_table(self, int l) noexcept nogil:
        """A zeroed table at level l (pte_alloc_one / pmd_alloc_one / ...): its index,
        or -1 (nothing changed) when there is no memory for it: the kernel's page
        allocator has no block of the table's order (charged tables), or the pool
        cannot grow."""
        cdef i64 t, pfn = -1
        if self.free_head[l] < 0 and self.top[l] == self.cap[l] and not self._room(l):
            return -1
        if self.charged:
            if self.tcache[l] >= 0:
                if self.kc.cache_alloc(self.tcache[l]) != 0:
                    return -1
            else:
                pfn = self.kc.pgtable_alloc(self.torder[l], self.mm_id)
                if pfn < 0:
                    return -1
        return self._table_slot(l, pfn)

    cdef bint _room(self, int l) noexcept with gil:
        # the pool of level l grows (doubling); False when it cannot
        try:
            self._grow(l, 2 * self.cap[l])
            return True
        except MemoryError:
            return False

    cdef i64 _table_slot(self, int l, i64 pfn) noexcept nogil:
        """A zeroed table at level l backed by frame pfn (already charged, or a
        withdrawn deposit); -1 when the pool cannot grow."""
        cdef i64 t = self.free_head[l]
        if t < 0 and self.top[l] == self.cap[l] and not self._room(l):
            return -1
        if t >= 0:
            # a freed table: its first word holds the free list's link
            self.free_head[l] = <i64>self.tab[l][t << self.tbits[l]]
            memset(&self.tab[l][t << self.tbits[l]], 0, sizeof(u64) << self.tbits[l])
        else:
            # never used: zero already (a GrowBuf's bytes past its old size are)
            t = self.top[l]
            self.top[l] += 1
        self.nvalid[l][t] = 0
        self.tpfn[l][t] = pfn
        self.ntables[l] += 1
        return t

    # ------------------------------------------------------- THP deposits
    cdef int deposit(self) noexcept nogil:
        """pte_alloc_one + pgtable_trans_huge_deposit: a PTE table's frame kept for a
        PMD leaf (the caller marks the leaf, mark_deposited). 0, or -ENOMEM."""
        cdef i64 pfn = -1
        cdef int last = self.levels - 1
        if self.ndep == self.dep_cap and not self._dep_room():
            return -cerrno.ENOMEM
        if self.charged:
            pfn = self.kc.pgtable_alloc(self.torder[last], self.mm_id)
            if pfn < 0:
                return -cerrno.ENOMEM
        self.dep[self.ndep] = pfn
        self.ndep += 1
        return 0

    cdef bint _dep_room(self) noexcept with gil:
        try:
            new = np.full(max(16, 2 * self.dep_cap), -1, dtype=np.int64)
            if self._dep_a is not None:
                new[:self.dep_cap] = self._dep_a
            self._dep_a = new
            self.dep = <i64*>cnp.PyArray_DATA(new)
            self.dep_cap = new.shape[0]
            return True
        except MemoryError:
            return False

    cdef void zap_deposited(self) noexcept nogil:
        """zap_deposited_table: withdraw a deposit and free it (pte_free)."""
        self.ndep -= 1
        if self.charged:
            self.kc.pgtable_free(self.dep[self.ndep], self.torder[self.levels - 1])

    cdef void mark_deposited(self, u64 va, bint on) noexcept nogil:
        """Set (clear) DESC_SW_DEPOSIT on the PMD leaf mapping va."""
        cdef int l
        cdef i64 t = 0
        cdef u64* p
        for l in range(self.levels - 1):
            p = &self.tab[l][(t << self.tbits[l]) + ((va >> self.shift[l]) & self.imask[l])]
            if (p[0] & (DESC_VALID | DESC_TABLE)) == DESC_VALID:
                if on:
                    p[0] |= DESC_SW_DEPOSIT
                else:
                    p[0] &= ~(<u64>DESC_SW_DEPOSIT)
                return
            if not (p[0] & DESC_VALID):
                return
            t = <i64>(p[0] >> DESC_ADDR_SHIFT)

    def deposit_pfns(self):
        """Frames of the deposited PTE tables (check())."""
        return [int(self.dep[i]) for i in range(self.ndep)]

    cdef i64 _alloc_table(self, int l) except -1 nogil:
        """alloc_table for the paths outside a fault (a syscall's splits, fork's copy,
        mremap's destination): no memory is MemoryError (ENOMEM) to the caller."""
        cdef i64 t = self.alloc_table(l)
        if t < 0:
            with gil:
                raise MemoryError(f"ENOMEM: no memory for a level-{l} page table")
        return t

    cdef void _free_frame(self, int l, i64 t) noexcept nogil:
        # pagetable_free / kmem_cache_free(pgd_cache) of a charged table
        if self.charged:
            if self.tcache[l] >= 0:
                self.kc.cache_free(self.tcache[l])
            else:
                self.kc.pgtable_free(self.tpfn[l][t], self.torder[l])
            self.tpfn[l][t] = -1

    cdef void free_table(self, int l, i64 t) noexcept nogil:
        """Return an empty table to its pool (pte_free / pmd_free / ...), its page
        to the kernel."""
        self._free_frame(l, t)
        self.tab[l][t << self.tbits[l]] = <u64>self.free_head[l]
        self.free_head[l] = t
        self.ntables[l] -= 1

    cdef int prealloc(self, u64 va, int last) noexcept nogil:
        """__handle_mm_fault's p4d_alloc / pud_alloc / pmd_alloc (last = the PMD table's
        level) and pte_alloc (last = the PTE table's): the missing tables of va's walk
        down to level ``last``; stops at a block leaf. 0, or -ENOMEM."""
        return -cerrno.ENOMEM if _walk_alloc(self, va, last) == -cerrno.ENOMEM else 0

    cdef int split_block_at(self, u64 va) noexcept nogil:
        """__split_huge_pmd of the block mapping va (none: nothing to do), its run
        unfolded first: 0, or -ENOMEM (no table; the block stays)."""
        cdef int l
        cdef i64 t = 0, child
        cdef u64 e, idx
        if va >= self.va_limit:
            return 0
        for l in range(self.levels - 1):
            idx = (va >> self.shift[l]) & self.imask[l]
            e = self.tab[l][(t << self.tbits[l]) + idx]
            if not (e & DESC_VALID):
                return 0
            if not (e & DESC_TABLE):
                if e & DESC_SW_DEPOSIT and self.ndep > 0:      # pgtable_trans_huge_withdraw
                    self.ndep -= 1
                    child = self._table_slot(l + 1, self.dep[self.ndep])
                    if child < 0:
                        self.ndep += 1
                        return -cerrno.ENOMEM
                else:
                    child = self.alloc_table(l + 1)
                if child < 0:
                    return -cerrno.ENOMEM
                if e & DESC_CONT:
                    self._set_run(l, t, va, False)
                self._split_into(l, t, idx, va, child)
                return 0
            t = <i64>(e >> DESC_ADDR_SHIFT)
        return 0

    # ------------------------------------------------------------- queries
    cdef bint any_mapped(self, int l, i64 t, u64 va, u64 end) noexcept nogil:
        """Is any leaf present in [va, end) below table t of level l?"""
        cdef u64 span = (<u64>1) << self.shift[l]
        cdef u64 nxt, e
        cdef i64 base = t << self.tbits[l]
        while va < end:
            nxt = _min((va & ~(span - 1)) + span, end)
            e = self.tab[l][base + ((va >> self.shift[l]) & self.imask[l])]
            if e & DESC_VALID:
                if not (e & DESC_TABLE):
                    return True
                if self.any_mapped(l + 1, <i64>(e >> DESC_ADDR_SHIFT), va, nxt):
                    return True
            va = nxt
        return False

    cdef int walk(self, u64 va, u64* pa, int* level, u64* unit, int* prot) noexcept nogil:
        """Hardware-style walk of one address; returns a TranslateStatus."""
        return _walk(self, va, pa, level, unit, prot, NULL)

    cdef i64 present_pages(self, u64 start, u64 end) noexcept nogil:
        """Granule pages mapped in [start, end) (granule-aligned, below va_limit): the
        nvalid of each last-level table wholly inside, a walk of the partial ones."""
        if start >= end:
            return 0
        return _present(self, 0, 0, 0, start, end)

    cdef i64 pte_table_present(self, u64 va) noexcept nogil:
        """Valid entries of the last-level table covering va (0 without one): the
        present PTEs of its PMD-sized region, as khugepaged counts (max_ptes_none)."""
        cdef int l
        cdef i64 t = 0
        cdef u64 e
        for l in range(self.levels - 1):
            e = self.tab[l][(t << self.tbits[l]) + <i64>((va >> self.shift[l]) & self.imask[l])]
            if not (e & DESC_VALID) or not (e & DESC_TABLE):
                return 0
            t = <i64>(e >> DESC_ADDR_SHIFT)
        return self.nvalid[self.levels - 1][t]

    cdef int walk_tables(self, u64 va, u64* pa, int* level, u64* unit, int* prot, u64* table_pa) noexcept nogil:
        """walk, also giving the PA of the table read at each level (0 .. *level)."""
        return _walk(self, va, pa, level, unit, prot, table_pa)

    # ----------------------------------------------------------------- map
    cdef int map_range(self, u64 va, u64 pa, u64 size, u64 prot, bint cont, bint block) except -1 nogil:
        """Install [va, va+size) -> pa. The range must be empty (checked by the caller)."""
        assert (va | pa | size) & ((<u64>1 << self.page_shift) - 1) == 0
        self._map_level(0, 0, va, va + size, pa,
                        DESC_VALID | (prot << DESC_PROT_SHIFT), cont, block)
        return 0

    cdef int _map_level(self, int l, i64 t, u64 va, u64 end, u64 pa, u64 attrs,
                        bint cont, bint block) except -1 nogil:
        cdef int s = self.shift[l]
        cdef u64 span = (<u64>1) << s
        cdef u64 va0 = va, pa0 = pa, nxt, e, run, c, i, idx
        cdef i64 child, base = t << self.tbits[l]
        cdef bint last = l == self.levels - 1
        cdef bint leaf_level = last or (block and self.block_ok[l])
        if last:
            self._write_leaves(l, t, va, pa, (end - va) >> s, attrs, cont)
            return 0
        while va < end:
            nxt = _min((va & ~(span - 1)) + span, end)
            idx = (va >> s) & self.imask[l]
            if last or (leaf_level and nxt - va == span and (va | pa) & (span - 1) == 0
                        and self.tab[l][base + idx] == 0):
                self.tab[l][base + idx] = pa | attrs
                self.nvalid[l][t] += 1
            else:
                e = self.tab[l][base + idx]
                if e == 0:
                    child = self._alloc_table(l + 1)
                    self.tab[l][base + idx] = (<u64>child << DESC_ADDR_SHIFT) | DESC_VALID | DESC_TABLE
                    self.nvalid[l][t] += 1
                else:
                    assert e & DESC_TABLE
                    child = <i64>(e >> DESC_ADDR_SHIFT)
                self._map_level(l + 1, child, va, nxt, pa, attrs, cont, block)
            pa += nxt - va
            va = nxt
        # contpte_set_ptes: PTE_CONT on every run whose VA, end and PA are aligned.
        if cont and leaf_level and self.cont_n[l] > 1:
            run = <u64>self.cont_n[l] << s
            c = (va0 + run - 1) & ~(run - 1)
            while c + run <= end:
                if (pa0 + (c - va0)) & (run - 1) == 0:
                    idx = (c >> s) & self.imask[l]
                    for i in range(<u64>self.cont_n[l]):
                        self.tab[l][base + idx + i] |= DESC_CONT | DESC_SW_FOLIO
                c += run
        return 0

    cdef void _write_leaves(self, int l, i64 t, u64 va, u64 pa, u64 n, u64 attrs, bint cont) noexcept nogil:
        """Write n consecutive leaves of table t (level l) from va -> pa; CONT on
        every run whose VA, end and PA are aligned to it (contpte_set_ptes)."""
        cdef int s = self.shift[l]
        cdef u64* p = &self.tab[l][(t << self.tbits[l]) + ((va >> s) & self.imask[l])]
        cdef u64 run_mask = ((<u64>self.cont_n[l]) << s) - 1, end = va + (n << s)
        cdef u64 i = 0, j, run, c, cbits, desc, step = (<u64>1) << s
        cdef bint try_cont = cont and self.cont_n[l] > 1
        if try_cont and ((va | pa | (n << s)) & run_mask) == 0:
            # one folio made of whole aligned runs: every entry CONT (the usual case)
            desc = pa | attrs | DESC_CONT | DESC_SW_FOLIO
            for j in range(n):
                p[j] = desc
                desc += step
            self.nvalid[l][t] += <u32>n
            return
        while i < n:
            c = va + (i << s)
            if try_cont and (c & run_mask) == 0 and c + run_mask < end and ((pa + (i << s)) & run_mask) == 0:
                cbits = DESC_CONT | DESC_SW_FOLIO
                run = <u64>self.cont_n[l]
            else:
                cbits = 0
                run = 1
            desc = (pa + (i << s)) | attrs | cbits
            for j in range(i, i + run):
                p[j] = desc
                desc += step
            i += run
        self.nvalid[l][t] += <u32>n

    cdef int set_ptes(self, u64 va, u64 pa, u64 size, u64 prot, bint cont) except -1 nogil:
        """set_ptes: map one folio [va, va+size) -> pa with last-level entries, all
        in one last-level table (a naturally aligned folio up to PMD size is); the
        range must be empty. Walks down once, allocating missing tables; no memory
        is MemoryError (ENOMEM)."""
        cdef int last = self.levels - 1
        cdef i64 t = _walk_alloc(self, va, last)
        if t < 0:
            with gil:
                if t == WALK_BLOCK:
                    raise ValueError(f"set_ptes: {va:#x} is inside a block mapping")
                raise MemoryError(f"ENOMEM: no memory for the page tables of {va:#x}")
        self._write_leaves(last, t, va, pa, size >> self.shift[last],
                           DESC_VALID | (prot << DESC_PROT_SHIFT), cont)
        return 0

    # ------------------------------------------------------- split / unfold
    cdef int _split_block(self, int l, i64 t, u64 idx, u64 va) except -1 nogil:
        cdef i64 child
        if self.tab[l][(t << self.tbits[l]) + idx] & DESC_SW_DEPOSIT and self.ndep > 0:
            # __split_huge_pmd_locked: the PTE table is the withdrawn deposit
            self.ndep -= 1
            child = self._table_slot(l + 1, self.dep[self.ndep])
            if child < 0:
                self.ndep += 1
                with gil:
                    raise MemoryError("ENOMEM: the page-table pool cannot grow")
        else:
            child = self._alloc_table(l + 1)
        self._split_into(l, t, idx, va, child)
        return 0

    cdef void _split_into(self, int l, i64 t, u64 idx, u64 va, i64 child) noexcept nogil:
        """Replace the block at (l, t, idx) (holding va) by a full next-level table of
        the same memory (split_huge_pmd -> PTEs via set_ptes; a PUD block -> PMD blocks,
        as arm64 split_pud does). A block mapped as one folio keeps CONT below. The
        TLB: pmdp_invalidate -> flush_pmd_tlb_range (stride the block, not last level)."""
        cdef u64 bspan = (<u64>1) << self.shift[l]
        cdef i64 base = t << self.tbits[l]
        cdef u64 e = self.tab[l][base + idx]
        cdef u64 attrs = e & (DESC_VALID | DESC_PROT_MASK | DESC_SW_FOLIO)
        cdef u64 pa = e & ADDR_MASK
        cdef int cl = l + 1
        cdef u64 cspan = (<u64>1) << self.shift[cl]
        cdef u64 n = (<u64>1) << self.tbits[cl], i
        cdef u64* ct = &self.tab[cl][child << self.tbits[cl]]
        self.tlb_flush(va & ~(bspan - 1), (va & ~(bspan - 1)) + bspan, bspan, False, FLUSH_SPLIT)
        if pa == self.zero_pa:
            for i in range(n):                     # __split_huge_zero_page_pmd
                ct[i] = pa | (attrs & ~(<u64>DESC_SW_FOLIO))
            self.nvalid[cl][child] = <u32>n
            self.tab[l][base + idx] = (<u64>child << DESC_ADDR_SHIFT) | DESC_VALID | DESC_TABLE
            return
        if (e & DESC_SW_FOLIO) and self.cont_n[cl] > 1:
            attrs |= DESC_CONT
        for i in range(n):
            ct[i] = (pa + i * cspan) | attrs
        self.nvalid[cl][child] = <u32>n
        self.tab[l][base + idx] = (<u64>child << DESC_ADDR_SHIFT) | DESC_VALID | DESC_TABLE

    cdef void _set_run(self, int l, i64 t, u64 va, bint on) noexcept nogil:
        """Set or clear CONT on the whole run containing va (fold / unfold). A change
        is contpte_convert's, which flushes the run (__flush_tlb_range(.., PAGE_SIZE,
        true, 3))."""
        cdef u64 n = <u64>self.cont_n[l], i
        cdef u64 idx = ((va >> self.shift[l]) & self.imask[l]) & ~(n - 1)
        cdef u64* p = &self.tab[l][(t << self.tbits[l]) + idx]
        cdef u64 run = n << self.shift[l]
        cdef bint change = False
        for i in range(n):
            if ((p[i] & DESC_CONT) != 0) != on:
                change = True
        if change:
            self.tlb_flush(va & ~(run - 1), (va & ~(run - 1)) + run, (<u64>1) << self.shift[l], True,
                           FLUSH_CONTPTE)
        for i in range(n):
            if on:
                p[i] |= DESC_CONT
            else:
                p[i] &= ~(<u64>DESC_CONT)

    cdef void _unfold_partial(self, int l, i64 t, u64 va, u64 end) noexcept nogil:
        """contpte_try_unfold_partial: unfold runs only partly inside [va, end)."""
        cdef u64 run = <u64>self.cont_n[l] << self.shift[l]
        cdef u64 e
        cdef i64 base = t << self.tbits[l]
        if va & (run - 1) or end - va < run:
            e = self.tab[l][base + ((va >> self.shift[l]) & self.imask[l])]
            if e & DESC_CONT:
                self._set_run(l, t, va, False)
        if end & (run - 1):
            e = self.tab[l][base + (((end - 1) >> self.shift[l]) & self.imask[l])]
            if e & DESC_CONT:
                self._set_run(l, t, end - 1, False)

    cdef bint _run_foldable(self, int l, i64 t, u64 va) noexcept nogil:
        """__contpte_try_fold's test: every entry of the run valid, a leaf of the
        same folio (SW_FOLIO), same prot, PFNs contiguous from an aligned start."""
        cdef u64 n = <u64>self.cont_n[l], i
        cdef u64 span = (<u64>1) << self.shift[l]
        cdef u64 idx = ((va >> self.shift[l]) & self.imask[l]) & ~(n - 1)
        cdef u64* p = &self.tab[l][(t << self.tbits[l]) + idx]
        cdef u64 want = p[0] & ~(<u64>DESC_CONT)
        if (want & (DESC_VALID | DESC_TABLE | DESC_SW_FOLIO)) != (DESC_VALID | DESC_SW_FOLIO):
            return False
        if (want & ADDR_MASK) & (n * span - 1):
            return False
        for i in range(n):
            if (p[i] & ~(<u64>DESC_CONT)) != want + i * span:
                return False
        return True

    # --------------------------------------------------------------- unmap
    cdef int unmap_range(self, u64 va, u64 size) except -1 nogil:
        """Clear [va, va+size), splitting partial blocks and unfolding partial
        runs; free every table left empty (free_pgd_range), never the root."""
        self._change_level(0, 0, va, va + size, OP_UNMAP, 0)
        return 0

    cdef int zap_range(self, u64 va, u64 size) except -1 nogil:
        """zap_page_range: clear the leaves of [va, va+size) (splitting partial
        blocks, unfolding partial runs) but keep every table."""
        self._change_level(0, 0, va, va + size, OP_ZAP, 0)
        return 0

    cdef int split_at(self, u64 x) except -1 nogil:
        """Split every block that straddles x (split_huge_pmd where a new VMA
        boundary or a partial move cuts a PMD mapping), unfolding its run; no memory
        for a table is MemoryError (nothing changed at that level)."""
        if self.try_split_at(x) != 0:
            with gil:
                raise MemoryError(f"ENOMEM: no memory for the page table of a split at {x:#x}")
        return 0

    cdef int try_split_at(self, u64 x) noexcept nogil:
        """split_at: 0, or -ENOMEM when a block straddling x (one without a deposit: a
        file PMD) cannot get its table; blocks above it already split stay split."""
        cdef u64 pa = 0, unit = 0
        cdef int level = 0, prot = 0
        while x < self.va_limit:
            if _walk(self, x, &pa, &level, &unit, &prot, NULL) != TR_OK or level == self.levels - 1:
                return 0
            if x & (((<u64>1) << self.shift[level]) - 1) == 0:
                return 0
            if self.split_block_at(x) != 0:
                return -cerrno.ENOMEM
        return 0

    cdef int free_tables(self, u64 floor, u64 ceiling) except -1 nogil:
        """free_pgd_range(floor, ceiling): free the empty tables whose whole span
        lies inside [floor, ceiling) (a hole between VMAs), bottom-up."""
        self._free_level(0, 0, 0, floor, ceiling)
        return 0

    cdef int _free_level(self, int l, i64 t, u64 tbase, u64 floor, u64 ceiling) except -1 nogil:
        cdef int s = self.shift[l]
        cdef u64 span = (<u64>1) << s, i, e, cva
        cdef u64 first, last
        cdef i64 child, base = t << self.tbits[l]
        if ceiling <= tbase:
            return 0
        first = (floor - tbase) >> s if floor > tbase else 0
        last = ((ceiling - 1 - tbase) >> s)
        if last > self.imask[l]:
            last = self.imask[l]
        i = first
        while i <= last:
            e = self.tab[l][base + i]
            if (e & (DESC_VALID | DESC_TABLE)) == (DESC_VALID | DESC_TABLE):
                child = <i64>(e >> DESC_ADDR_SHIFT)
                cva = tbase + i * span
                self._free_level(l + 1, child, cva, floor, ceiling)
                if self.nvalid[l + 1][child] == 0 and cva >= floor and cva + span - 1 <= ceiling - 1:
                    if self.tlb_on:          # pte_free_tlb: tlb_flush_pmd_range(addr, PAGE_SIZE)
                        self._gather(cva, cva + ((<u64>1) << self.page_shift), l)
                        self.g_freed = True
                    self.free_table(l + 1, child)
                    self.tab[l][base + i] = 0
                    self.nvalid[l][t] -= 1
            i += 1
        return 0

    cdef bint next_leaf(self, u64* va, u64 end, u64* desc, int* level) noexcept nogil:
        """Find the first leaf at or after *va and below end: set *va to the start
        of its span, *desc and *level; False when there is none."""
        cdef u64 a = va[0], e, span
        cdef int l
        cdef i64 t
        while a < end and a < self.va_limit:
            t = 0
            for l in range(self.levels):
                e = self.tab[l][(t << self.tbits[l]) + ((a >> self.shift[l]) & self.imask[l])]
                span = (<u64>1) << self.shift[l]
                if not (e & DESC_VALID):
                    break
                if e & DESC_TABLE:
                    t = <i64>(e >> DESC_ADDR_SHIFT)
                    continue
                va[0] = a & ~(span - 1)
                desc[0] = e
                level[0] = l
                return True
            a = (a & ~(span - 1)) + span      # skip the empty entry's span
            if a == 0:
                break
        return False

    cdef int set_desc(self, u64 va, int level, u64 desc) except -1 nogil:
        """Rewrite the leaf descriptor at (va, level), which must exist (used to
        change one leaf's bits in place, e.g. the deposit of a zero block)."""
        cdef int l
        cdef i64 t = 0
        cdef u64 e
        cdef u64* p
        for l in range(level + 1):
            p = &self.tab[l][(t << self.tbits[l]) + ((va >> self.shift[l]) & self.imask[l])]
            e = p[0]
            if l < level:
                assert (e & (DESC_VALID | DESC_TABLE)) == (DESC_VALID | DESC_TABLE)
                t = <i64>(e >> DESC_ADDR_SHIFT)
        assert (p[0] & DESC_VALID) and not (p[0] & DESC_TABLE)
        p[0] = desc
        return 0

    cdef int copy_range(self, PageTableCore src, u64 va, u64 end, u64 clear_bits) except -1 nogil:
        """copy_page_range: copy src's descriptors of [va, end) into this (empty
        there) table, leaves with clear_bits removed (fork write-protects). Both
        tables must have the same geometry; leaves must not straddle the range."""
        self._copy_level(src, 0, 0, 0, va, end, clear_bits)
        return 0

    cdef int _copy_level(self, PageTableCore src, int l, i64 dt, i64 st, u64 va, u64 end,
                         u64 clear_bits) except -1 nogil:
        cdef int s = self.shift[l]
        cdef u64 span = (<u64>1) << s, nxt, e, idx, va0 = va
        cdef u64 run = (<u64>self.cont_n[l]) << s
        cdef bint cont_level = self.cont_n[l] > 1
        cdef i64 child, dbase = dt << self.tbits[l], sbase = st << self.tbits[l]
        while va < end:
            nxt = _min((va & ~(span - 1)) + span, end)
            idx = (va >> s) & self.imask[l]
            e = src.tab[l][sbase + idx]
            if e & DESC_VALID:
                if not (e & DESC_TABLE) and cont_level and (
                        (va & ~(run - 1)) < va0 or (va & ~(run - 1)) + run > end):
                    # copy_present_ptes -> set_ptes: pte_mknoncont; CONT only on whole
                    # runs of the batch (contpte_set_ptes)
                    e &= ~(<u64>DESC_CONT)
                if e & DESC_TABLE:
                    if self.tab[l][dbase + idx] == 0:
                        child = self._alloc_table(l + 1)
                        self.tab[l][dbase + idx] = (<u64>child << DESC_ADDR_SHIFT) | DESC_VALID | DESC_TABLE
                        self.nvalid[l][dt] += 1
                    self._copy_level(src, l + 1, <i64>(self.tab[l][dbase + idx] >> DESC_ADDR_SHIFT),
                                     <i64>(e >> DESC_ADDR_SHIFT), va, nxt, clear_bits)
                else:
                    assert nxt - va == span and self.tab[l][dbase + idx] == 0
                    if e & DESC_SW_DEPOSIT and self.deposit() != 0:    # copy_huge_pmd
                        with gil:
                            raise MemoryError("ENOMEM: no memory for a THP's deposited table")
                    self.tab[l][dbase + idx] = e & ~clear_bits
                    self.nvalid[l][dt] += 1
            va = nxt
        # a batch of one PTE: set_ptes(nr == 1) -> contpte_try_fold, which folds the
        # run when it wrote the run's last entry (as protect does)
        if cont_level and end - va0 == span and (end & (run - 1)) == 0 and \
                self.tab[l][dbase + ((va0 >> s) & self.imask[l])] & DESC_VALID and \
                not (self.tab[l][dbase + ((va0 >> s) & self.imask[l])] & DESC_TABLE) and \
                self._run_foldable(l, dt, va0):
            self._set_run(l, dt, va0, True)
        return 0

    # ------------------------------------------------------------- protect
    cdef int protect_range(self, u64 va, u64 size, u64 prot) except -1 nogil:
        """change_protection over [va, va+size): new prot on every leaf, partial
        blocks split, partial runs unfolded, whole one-folio runs (re)folded."""
        self._change_level(0, 0, va, va + size, OP_PROTECT, prot << DESC_PROT_SHIFT)
        return 0

    cdef int _change_level(self, int l, i64 t, u64 va, u64 end, int op, u64 prot_bits) except -1 nogil:
        """One table's part of an unmap, zap or protect of [va, end): partial runs
        unfolded, partial blocks split, leaves cleared or re-protected; unmap
        frees child tables left empty; protect (re)folds runs afterwards."""
        cdef int s = self.shift[l]
        cdef u64 span = (<u64>1) << s
        cdef u64 va0 = va, nxt, e, idx, run, c
        cdef i64 child, base = t << self.tbits[l]
        if self.cont_n[l] > 1:
            self._unfold_partial(l, t, va, end)   # contpte_try_unfold_partial
        while va < end:
            nxt = _min((va & ~(span - 1)) + span, end)
            idx = (va >> s) & self.imask[l]
            e = self.tab[l][base + idx]
            if e & DESC_VALID:
                if not (e & DESC_TABLE):
                    if nxt - va == span:
                        if self.tlb_on:
                            self._gather(va, nxt, l)
                        if op == OP_PROTECT:
                            self.tab[l][base + idx] = (e & ~(<u64>DESC_PROT_MASK)) | prot_bits
                        else:
                            if e & DESC_SW_DEPOSIT:      # zap_huge_pmd: zap_deposited_table
                                self.zap_deposited()
                            self.tab[l][base + idx] = 0
                            self.nvalid[l][t] -= 1
                        va = nxt
                        continue
                    self._split_block(l, t, idx, va)
                    e = self.tab[l][base + idx]
                child = <i64>(e >> DESC_ADDR_SHIFT)
                self._change_level(l + 1, child, va, nxt, op, prot_bits)
                if op == OP_UNMAP and self.nvalid[l + 1][child] == 0:
                    if self.tlb_on:
                        self._gather(va, va + ((<u64>1) << self.page_shift), l)
                        self.g_freed = True
                    self.free_table(l + 1, child)
                    self.tab[l][base + idx] = 0
                    self.nvalid[l][t] -= 1
            va = nxt
        if op == OP_PROTECT and self.cont_n[l] > 1:
            run = <u64>self.cont_n[l] << s
            # modify_prot_commit_ptes -> set_ptes(nr): contpte_set_ptes sets CONT on
            # whole aligned runs of one folio ...
            c = (va0 + run - 1) & ~(run - 1)
            while c + run <= end:
                self._set_run(l, t, c, self._run_foldable(l, t, c))
                c += run
            # ... and a batch of one PTE goes through set_ptes(nr == 1) ->
            # contpte_try_fold, which folds when it wrote the run's last entry.
            if end - va0 == span and (end & (run - 1)) == 0 and self._run_foldable(l, t, va0):
                self._set_run(l, t, va0, True)
        return 0

    # ------------------------------------------------------------ batches
    def _translate(self, const u64[::1] vas, u64[::1] pa, u8[::1] status,
                   i8[::1] level, u8[::1] unit_shift, u8[::1] prot):
        """One nogil walk per address (outputs preallocated by the caller).
        unit_shift is log2 of the TLB unit (page, contiguous run or block)."""
        cdef Py_ssize_t n = vas.shape[0]
        for name, have in (("pa", pa.shape[0]), ("status", status.shape[0]), ("level", level.shape[0]),
                           ("unit_shift", unit_shift.shape[0]), ("prot", prot.shape[0])):
            buffer_length(have, n, name)
        if n == 0:
            return
        cdef _TrOut o
        o.pa = &pa[0]
        o.status = &status[0]
        o.level = &level[0]
        o.unit_shift = &unit_shift[0]
        o.prot = &prot[0]
        with nogil:
            _batch_fn(self, &vas[0], n, &o)

    def _range_mapped(self, u64 va, u64 size):
        self._user(va, size)
        return self.any_mapped(0, 0, va, va + size)

    def _first_mapped(self, const u64[::1] vas, u64 size):
        """Index of the first chunk [vas[i], vas[i]+size) already mapped, or -1."""
        cdef Py_ssize_t i, found = -1
        if size == 0 or size > self.va_limit:
            raise ValueError(f"size {size:#x} must be in 1..{self.va_limit:#x}")
        with nogil:
            for i in range(vas.shape[0]):
                if self.any_mapped(0, 0, vas[i], vas[i] + size):
                    found = i
                    break
        return found

    def _user(self, u64 va, u64 size):
        """The raw entry points trust [va, va+size) to be page-aligned user VA."""
        user_range(va, va + size if va + size >= va else 1 << 64, self.va_limit)
        if (va | size) & ((<u64>1 << self.page_shift) - 1):
            raise ValueError(f"range {va:#x}+{size:#x} is not aligned to the page")

    def _pa(self, u64 pa, u64 size):
        """A PA with low bits set would become descriptor flags (DESC_TABLE: a bogus walk)."""
        if pa & (((<u64>1) << self.page_shift) - 1) or pa + size < pa:
            raise ValueError(f"pa {pa:#x} is not page-aligned or pa+size wraps")

    def _map(self, u64 va, u64 pa, u64 size, u64 prot, bint cont, bint block):
        self._user(va, size)
        self._pa(pa, size)
        if prot & ~(<u64>7):
            raise ValueError(f"prot {prot:#x} has bits beyond r=1, w=2, x=4")
        self.map_range(va, pa, size, prot, cont, block)

    def _map_many(self, const u64[::1] vas, const u64[::1] pas, u64 size, u64 prot, bint cont, bint block):
        cdef Py_ssize_t i
        cdef Py_ssize_t bad = -1
        cdef u64 pmask = ((<u64>1) << self.page_shift) - 1
        buffer_length(pas.shape[0], vas.shape[0], "pas")
        with nogil:
            for i in range(vas.shape[0]):
                if (vas[i] | pas[i] | size) & pmask or vas[i] + size < vas[i] or \
                        vas[i] + size > self.va_limit or pas[i] + size < pas[i]:
                    bad = i
                    break
        if bad >= 0:
            self._user(vas[bad], size)
            self._pa(pas[bad], size)
        if prot & ~(<u64>7):
            raise ValueError(f"prot {prot:#x} has bits beyond r=1, w=2, x=4")
        with nogil:
            for i in range(vas.shape[0]):
                self.map_range(vas[i], pas[i], size, prot, cont, block)

    def _unmap(self, u64 va, u64 size):
        self._user(va, size)
        self.unmap_range(va, size)

    def _protect(self, u64 va, u64 size, u64 prot):
        self._user(va, size)
        if prot & ~(<u64>7):
            raise ValueError(f"prot {prot:#x} has bits beyond r=1, w=2, x=4")
        self.protect_range(va, size, prot)

    # ---------------------------------------------------------- accounting
    def tables_per_level(self):
        """Live tables at each level, root first."""
        return [int(self.ntables[l]) for l in range(self.levels)]

    def leaf_counts(self):
        """(leaves, cont_leaves) per level, root first: descriptors that map memory,
        and those of them with the contiguous bit."""
        cdef int l
        cdef i64 t, i, n
        cdef u64 e
        cdef u64* p
        leaves = [0] * self.levels
        conts = [0] * self.levels
        cdef i64 nl, nc
        for l in range(self.levels):
            nl = 0
            nc = 0
            n = (<i64>1) << self.tbits[l]
            with nogil:
                for t in range(self.top[l]):
                    if self.nvalid[l][t] == 0:
                        continue       # free (or the empty root)
                    p = &self.tab[l][t << self.tbits[l]]
                    for i in range(n):
                        e = p[i]
                        if (e & (DESC_VALID | DESC_TABLE)) == DESC_VALID:
                            nl += 1
                            if e & DESC_CONT:
                                nc += 1
            leaves[l] = nl
            conts[l] = nc
        return leaves, conts

    # --------------------------------------------------------------- check
    def check(self):
        """Walk the whole tree and verify every invariant; raise AssertionError
        naming the table and entry that breaks one."""
        cdef int l
        seen = [set() for _ in range(self.levels)]
        seen[0].add(0)
        self._check_table(0, 0, 0, seen)
        cdef i64 ndep = 0, i
        cdef u64 e
        for l in range(self.levels):
            for t in seen[l]:
                for i in range((<i64>1) << self.tbits[l]):
                    e = self.tab[l][(<i64>t << self.tbits[l]) + i]
                    if e & DESC_SW_DEPOSIT:
                        if (e & (DESC_VALID | DESC_TABLE)) != DESC_VALID or l != self.levels - 2:
                            raise AssertionError(f"level {l} table {t} entry {i}: a deposit mark "
                                                 f"off a PMD leaf ({e:#x})")
                        ndep += 1
        if ndep != self.ndep:
            raise AssertionError(f"{ndep} PMD leaves have a deposited table, {self.ndep} deposited")
        for l in range(self.levels):
            free = set()
            t = self.free_head[l]
            while t >= 0:
                if t in free or t in seen[l] or t >= self.top[l]:
                    raise AssertionError(f"level {l}: free list corrupt at table {t}")
                free.add(t)
                t = <i64>self.tab[l][t << self.tbits[l]]
            if len(seen[l]) != self.ntables[l]:
                raise AssertionError(f"level {l}: {self.ntables[l]} tables counted, "
                                     f"{len(seen[l])} reachable")
            if len(seen[l]) + len(free) != self.top[l]:
                raise AssertionError(f"level {l}: {self.top[l] - len(seen[l]) - len(free)} "
                                     f"orphan tables")
        return True

    def _check_table(self, int l, i64 t, u64 vabase, list seen):
        cdef u64 span = (<u64>1) << self.shift[l]
        cdef u64 n = (<u64>1) << self.tbits[l], i, e, j, run_n
        cdef u64* p = &self.tab[l][t << self.tbits[l]]
        cdef u32 valid = 0
        cdef bint last = l == self.levels - 1
        where = lambda i: f"level {l} table {t} entry {i} (VA {vabase + i * span:#x})"
        for i in range(n):
            e = p[i]
            if e == 0:
                continue
            if not (e & DESC_VALID):
                raise AssertionError(f"{where(i)}: junk in an invalid entry {e:#x}")
            valid += 1
            if e & DESC_TABLE:
                if last:
                    raise AssertionError(f"{where(i)}: table descriptor at the last level")
                if e & (DESC_CONT | DESC_PROT_MASK | DESC_SW_FOLIO):
                    raise AssertionError(f"{where(i)}: table descriptor with leaf bits {e:#x}")
                child = <i64>(e >> DESC_ADDR_SHIFT)
                if child >= self.top[l + 1] or child in seen[l + 1]:
                    raise AssertionError(f"{where(i)}: bad or shared child table {child}")
                seen[l + 1].add(child)
                self._check_table(l + 1, child, vabase + i * span, seen)
                continue
            if not last and not self.block_ok[l]:
                raise AssertionError(f"{where(i)}: block descriptor where blocks are not allowed")
            if (e & ADDR_MASK) & (span - 1):
                raise AssertionError(f"{where(i)}: output address {e & ADDR_MASK:#x} not aligned to {span:#x}")
            if e & DESC_CONT:
                run_n = <u64>self.cont_n[l]
                if run_n <= 1:
                    raise AssertionError(f"{where(i)}: CONT set where there is no contiguous bit")
                j = i & ~(run_n - 1)
                base_e = p[j]
                if (base_e & ADDR_MASK) & (run_n * span - 1):
                    raise AssertionError(f"{where(i)}: contiguous run starts at unaligned PA {base_e & ADDR_MASK:#x}")
                if p[i] != base_e + (i - j) * span:
                    raise AssertionError(f"{where(i)}: contiguous run inconsistent ({p[i]:#x} vs {base_e:#x} at run start)")
        if valid != self.nvalid[l][t]:
            raise AssertionError(f"level {l} table {t}: {self.nvalid[l][t]} valid entries counted, {valid} found")
