# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# Multi-level page table for any Geometry (ppsize.geometry), all state in
# NumPy-owned pools: one uint64 pool of tables per level, tables addressed by index.
from ._types cimport u64, i64, i32, u32, u8, MAX_LEVELS
from .tlb cimport TlbCore
from .kcore cimport KernelCore

# Descriptor bits (the model's encoding, not the hardware's): low 12 bits are
# flags, bits 12.. hold the output address (leaf) or the child table index (table).
cdef enum:
    DESC_VALID = 1
    DESC_TABLE = 2            # points to a next-level table (never at the last level)
    DESC_CONT = 4             # PTE_CONT: part of a contiguous run (one TLB entry)
    DESC_R = 8
    DESC_W = 16
    DESC_X = 32
    DESC_PROT_MASK = 56
    DESC_PROT_SHIFT = 3
    DESC_SW_FOLIO = 64        # software bit: installed by set_ptes() of one folio
                              # covering the whole aligned run (may be refolded)
    DESC_SW_DEPOSIT = 128     # software bit on a PMD leaf: a PTE table is deposited for it
                              # (pgtable_trans_huge_deposit; anon THPs, the huge zero PMD)
    DESC_ADDR_SHIFT = 12

cdef enum:                   # TLB flush sites (PageTableCore.tlb_skip: tests leave one out)
    FLUSH_GATHER = 1          # mmu_gather tlb_finish_mmu: munmap, MADV_DONTNEED, mprotect,
                              # mremap, unmap_mapping_pages, exit_mmap
    FLUSH_SPLIT = 2           # __split_huge_pmd -> pmdp_invalidate -> flush_pmd_tlb_range
    FLUSH_CONTPTE = 4         # contpte_convert (fold / unfold of a contiguous run)
    FLUSH_COW = 8             # wp_page_copy -> ptep_clear_flush; pmdp_huge_clear_flush
    FLUSH_WP = 16             # ptep_set_access_flags(dirty) -> flush_tlb_page
    FLUSH_FORK = 32           # dup_mmap -> flush_tlb_mm(oldmm)

cdef enum TranslateStatus:
    TR_OK = 0
    TR_NOT_MAPPED = 1
    TR_BAD_ADDRESS = 2

cdef class PageTableCore:
    cdef readonly object geometry         # the ppsize.Geometry
    cdef readonly int levels
    cdef readonly int page_shift
    cdef readonly u64 va_limit            # user VA is [0, va_limit)
    cdef int shift[MAX_LEVELS]            # VA shift of an entry at each level
    cdef int tbits[MAX_LEVELS]            # log2(entries per table) at each level
    cdef u64 imask[MAX_LEVELS]            # index mask at each level
    cdef int cont_n[MAX_LEVELS]           # entries per contiguous run (1 = none)
    cdef bint block_ok[MAX_LEVELS]        # level may hold block descriptors
    cdef bint vmpte[MAX_LEVELS]           # tables at this level count in VmPTE
    cdef u64* tab[MAX_LEVELS]             # pool of tables (entries) per level
    cdef u32* nvalid[MAX_LEVELS]          # valid entries per table
    cdef i64 cap[MAX_LEVELS]              # tables the pool can hold
    cdef i64 top[MAX_LEVELS]              # high-water mark of the pool
    cdef i64 free_head[MAX_LEVELS]        # free-table list (linked through slot 0)
    cdef readonly object _tab_arrays      # the GrowBufs (framemem) owning the pools
    cdef readonly object _nvalid_arrays
    cdef i64 ntables[MAX_LEVELS]          # live tables per level
    cdef public u64 zero_pa               # the huge zero folio (~0: none): its split maps ZERO_PAGE
    # the kernel memory of the tables (charge_to: a process's MM): each table is a
    # page-table folio of order torder[l] (pagetable_alloc), or an object of kmem cache
    # tcache[l] >= 0 (a PGD below a kernel page: pgd_cache); standalone: none
    cdef KernelCore kc
    cdef readonly bint charged
    cdef readonly i32 mm_id
    cdef int torder[MAX_LEVELS]
    cdef int tcache[MAX_LEVELS]
    cdef i64* tpfn[MAX_LEVELS]            # per table: its frame (-1: a cache object)
    cdef readonly object _pfn_arrays
    # deposited PTE tables (pgtable_trans_huge_deposit / _withdraw): a LIFO of frames,
    # one per leaf with DESC_SW_DEPOSIT
    cdef object _dep_a
    cdef i64* dep
    cdef readonly i64 ndep
    cdef i64 dep_cap
    # the MMU model translating through this table (Process.access), None: none
    cdef readonly TlbCore tlb
    cdef readonly bint tlb_on
    cdef readonly u32 tlb_asid
    cdef readonly u64 tlb_table_base      # synthetic PA of the tables (walk references)
    cdef public u32 tlb_skip              # FLUSH_* sites left out (tests of stale-hit detection)
    # the mmu_gather of the current syscall (mm/mmu_gather.c, include/asm-generic/tlb.h)
    cdef u64 g_start
    cdef u64 g_end
    cdef u32 g_levels                     # bit l: leaves cleared at level l (cleared_ptes, ...)
    cdef bint g_freed                     # freed_tables
    cdef bint g_fullmm

    cdef int walk_tables(self, u64 va, u64* pa, int* level, u64* unit, int* prot, u64* table_pa) noexcept nogil
    cdef void tlb_flush(self, u64 start, u64 end, u64 stride, bint last_level, u32 site) noexcept nogil
    cdef void tlb_gather_mmu(self, bint fullmm) noexcept nogil
    cdef void tlb_finish_mmu(self) noexcept nogil
    cdef void _gather(self, u64 va, u64 end, int l) noexcept nogil

    cdef i64 alloc_table(self, int l) noexcept nogil
    cdef i64 _alloc_table(self, int l) except -1 nogil
    cdef int prealloc(self, u64 va, int last) noexcept nogil
    cdef int split_block_at(self, u64 va) noexcept nogil
    cdef void _split_into(self, int l, i64 t, u64 idx, u64 va, i64 child) noexcept nogil
    cdef void _free_frame(self, int l, i64 t) noexcept nogil
    cdef i64 _table_slot(self, int l, i64 pfn) noexcept nogil
    cdef bint _room(self, int l) noexcept with gil
    cdef bint _dep_room(self) noexcept with gil
    cdef int deposit(self) noexcept nogil
    cdef void zap_deposited(self) noexcept nogil
    cdef void mark_deposited(self, u64 va, bint on) noexcept nogil
    cdef void free_table(self, int l, i64 t) noexcept nogil
    cdef bint any_mapped(self, int l, i64 t, u64 va, u64 end) noexcept nogil
    cdef int map_range(self, u64 va, u64 pa, u64 size, u64 prot, bint cont, bint block) except -1 nogil
    cdef int unmap_range(self, u64 va, u64 size) except -1 nogil
    cdef int protect_range(self, u64 va, u64 size, u64 prot) except -1 nogil
    cdef int walk(self, u64 va, u64* pa, int* level, u64* unit, int* prot) noexcept nogil
    cdef i64 pte_table_present(self, u64 va) noexcept nogil
    cdef i64 present_pages(self, u64 start, u64 end) noexcept nogil
    # for the fault engine (mm): Linux keeps tables across zaps and frees them
    # only inside holes between VMAs (free_pgtables)
    cdef int set_ptes(self, u64 va, u64 pa, u64 size, u64 prot, bint cont) except -1 nogil
    cdef void _write_leaves(self, int l, i64 t, u64 va, u64 pa, u64 n, u64 attrs, bint cont) noexcept nogil
    cdef int zap_range(self, u64 va, u64 size) except -1 nogil
    cdef int split_at(self, u64 x) except -1 nogil
    cdef int try_split_at(self, u64 x) noexcept nogil
    cdef int free_tables(self, u64 floor, u64 ceiling) except -1 nogil
    cdef bint next_leaf(self, u64* va, u64 end, u64* desc, int* level) noexcept nogil
    cdef int copy_range(self, PageTableCore src, u64 va, u64 end, u64 clear_bits) except -1 nogil
    cdef int set_desc(self, u64 va, int level, u64 desc) except -1 nogil
    # internals
    cdef int _map_level(self, int l, i64 t, u64 va, u64 end, u64 pa, u64 attrs, bint cont, bint block) except -1 nogil
    cdef int _split_block(self, int l, i64 t, u64 idx, u64 va) except -1 nogil
    cdef void _set_run(self, int l, i64 t, u64 va, bint on) noexcept nogil
    cdef void _unfold_partial(self, int l, i64 t, u64 va, u64 end) noexcept nogil
    cdef bint _run_foldable(self, int l, i64 t, u64 va) noexcept nogil
    cdef int _change_level(self, int l, i64 t, u64 va, u64 end, int op, u64 prot_bits) except -1 nogil
    cdef int _free_level(self, int l, i64 t, u64 tbase, u64 floor, u64 ceiling) except -1 nogil
    cdef int _copy_level(self, PageTableCore src, int l, i64 dt, i64 st, u64 va, u64 end, u64 clear_bits) except -1 nogil
