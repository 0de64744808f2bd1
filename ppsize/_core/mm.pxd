# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# The fault engine: a kernel (frames, folios, THP policy, counters) and the MMs of
# its processes, each with its own page size and page-table mode.
from ._types cimport u64, i64, u32, i32, u8, u16
from .pagetable cimport PageTableCore
from .tlb cimport TlbCore
from .vma cimport VmaTable
from .buddy cimport BuddyAllocator
from .folio cimport FolioTable
from .kcore cimport KernelCore, THP_NEVER, THP_MADVISE, THP_ALWAYS, anon_fault_info
from .pagecache cimport PageCache

cdef enum AccessOutcome:
    ACC_HIT = 0            # translated without a fault
    ACC_FAULT = 1          # anonymous folio allocated and mapped (do_anonymous_page)
    ACC_ZERO = 2           # read fault mapped the zero page (or the huge zero folio)
    ACC_COW = 3            # write-protect fault copied the page (wp_page_copy)
    ACC_REUSE = 4          # write-protect fault reused an exclusive folio (wp_page_reuse)
    ACC_SEGV_MAPERR = 5    # no VMA: SIGSEGV (SEGV_MAPERR)
    ACC_SEGV_ACCERR = 6    # VMA forbids the access: SIGSEGV (SEGV_ACCERR)
    ACC_OOM = 7            # no memory even at the process order: VM_FAULT_OOM
    ACC_SIGBUS = 8         # beyond EOF, or a shared anonymous (shmem) mapping: not modelled
    ACC_MAJOR = 9          # file fault that read the page from disk (VM_FAULT_MAJOR)
    NR_ACC = 10

cdef class MMCore:
    cdef readonly KernelCore k
    cdef readonly PageTableCore pt
    cdef readonly VmaTable vmas
    cdef BuddyAllocator buddy            # the kernel's (direct references for nogil code)
    cdef FolioTable folios
    cdef PageCache pc                    # the kernel's page cache (file mappings)
    cdef bint has_pc
    cdef readonly i64 rss_file           # MM_FILEPAGES (kernel pages)
    cdef readonly u64 fault_around_bytes
    cdef readonly int exec_order         # arm64 exec_folio_order(); -1 where none
    cdef readonly int kshift             # kernel page shift
    cdef readonly int pshift             # process page shift
    cdef readonly int porder             # process order (pshift - kshift)
    cdef readonly bint native            # tables in the process granule
    cdef readonly int mm_id
    cdef readonly i64 rss_anon           # MM_ANONPAGES (kernel pages)
    cdef readonly i64 minflt
    cdef readonly i64 majflt
    cdef readonly u64 read_mask          # vm_flags that allow a read access
    cdef i64 outcomes[NR_ACC]
    cdef object _need_anon_a             # VMA indices that got their first write fault
    cdef i64* need_anon
    cdef i64 n_need_anon
    cdef bint anon_overflow              # more first-write VMAs than need_anon holds
    cdef readonly i64 tlb_stale          # stale TLB hits found by the last checked batch
    cdef readonly i64 tlb_stale_first    # index of the first (-1: none)

    cdef int fault(self, u64 va, bint write, int st, int level) except -1 nogil
    cdef int do_anonymous(self, i64 vi, u64 va, bint write, int level) except -1 nogil
    cdef int anon_hook_order(self, i64 vi, u64 va, bint write, u64 orders, bint pmd_ok) noexcept nogil
    cdef int do_wp(self, i64 vi, u64 pva, u64 desc, int level) except -1 nogil
    cdef int map_folio(self, u64 va, i64 pfn, int order, u64 prot, bint block) except -1 nogil
    cdef int map_zero(self, u64 pva, u64 prot) except -1 nogil
    cdef i64 zap(self, u64 va, u64 end) except -1 nogil
    cdef void put_frames(self, i64 pfn, i64 nr) noexcept nogil
    cdef bint can_reuse(self, u64 pva, u64 pa, i64 nr) noexcept nogil
    cdef i64 folio_mappings_here(self, i64 head, int order, u64 fva) noexcept nogil
    cdef void set_exclusive(self, i64 pfn, i64 nr, u8 value) noexcept nogil
    cdef u64 leaf_prot(self, u64 vm_flags) noexcept nogil
    cdef u64 _block_start(self, u64 x) noexcept nogil
    cdef int split_or_zap(self, u64 x) except -1 nogil
    cdef void _note_anon(self, i64 vi) noexcept nogil
    # the MMU model (pt.tlb): a walk that fills the TLB, a hit compared with the table
    cdef int tlb_walk_fill(self, u64 va, int side, u64* pa, int* level, u64* unit, int* prot,
                           bint missed=*) noexcept nogil
    cdef int _fault(self, u64 va, bint w, bint x, int st, int level) except -1 nogil
    cdef int _allow(self, const u8* wr, bint write_all, const u8* ins, bint insn_all, Py_ssize_t i,
                    bint* w, bint* x) noexcept nogil
    cdef i64 _access_walk(self, const u64* vas, Py_ssize_t n, const u8* wr, bint write_all,
                          const u8* ins, bint insn_all, u8* out) except -1 nogil
    cdef i64 _access_tlb(self, TlbCore tlb, const u64* vas, Py_ssize_t n, const u8* wr, bint write_all,
                         const u8* ins, bint insn_all, u8* out, bint check) except -1 nogil
    cdef bint tlb_hit_stale(self, u64 va, u64 out, u64 base, u64 size) noexcept nogil
    # file faults (mm/filemap.c, mm/memory.c)
    cdef int do_file_fault(self, i64 vi, u64 va, bint write) except -1 nogil
    cdef void folio_mark_dirty(self, i64 f, i64 head) noexcept nogil
    cdef i64 file_folio(self, i64 vi, i64 f, i64 pgoff, bint* major) noexcept nogil
    cdef void sync_mmap_readahead(self, i64 vi, i64 f, i64 pgoff) noexcept nogil
    cdef i64 map_file_pages(self, i64 vi, i64 f, i64 head, u64 lo, u64 hi, bint writable) except -1 nogil
    cdef i64 fault_around(self, i64 vi, i64 f, u64 va) except -1 nogil
