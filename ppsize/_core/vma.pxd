# INTERNAL to ppsize (may change without notice; public: _types, xarray, folio).
# VMAs of one address space: a sorted struct-of-arrays table (see vma.pyx).
#
# Flag values are Linux's (include/linux/mm.h, 64-bit, CONFIG_MEM_SOFT_DIRTY off:
# VM_SOFTDIRTY is kept only because vma merging ignores it).
from ppsize._core._types cimport u64, i64, i32

cdef enum:
    VM_NONE = 0x00000000
    VM_READ = 0x00000001
    VM_WRITE = 0x00000002
    VM_EXEC = 0x00000004
    VM_SHARED = 0x00000008
    VM_MAYREAD = 0x00000010
    VM_MAYWRITE = 0x00000020
    VM_MAYEXEC = 0x00000040
    VM_MAYSHARE = 0x00000080
    VM_GROWSDOWN = 0x00000100
    VM_PFNMAP = 0x00000400
    VM_LOCKED = 0x00002000
    VM_IO = 0x00004000
    VM_SEQ_READ = 0x00008000
    VM_RAND_READ = 0x00010000
    VM_DONTCOPY = 0x00020000
    VM_DONTEXPAND = 0x00040000
    VM_LOCKONFAULT = 0x00080000
    VM_ACCOUNT = 0x00100000
    VM_NORESERVE = 0x00200000
    VM_HUGETLB = 0x00400000
    VM_SOFTDIRTY = 0x08000000
    VM_MIXEDMAP = 0x10000000
    VM_HUGEPAGE = 0x20000000
    VM_NOHUGEPAGE = 0x40000000
    # derived masks (include/linux/mm.h)
    VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
    VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP
    VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT

cdef class VmaTable:
    # Row i is one VMA [start[i], end[i]); rows sorted by start, non-overlapping.
    # Arrays are NumPy-owned (self._arrays) and grow by doubling; rows occupy
    # [_head, _head + n) of them and the raw pointers below point at row 0 (they
    # change on every insert/delete that shifts the front, and on reallocation).
    cdef readonly object _arrays      # dict name -> ndarray (capacity rows)
    cdef u64* start
    cdef u64* end
    cdef u64* flags
    cdef u64* pgoff                   # in kernel pages (vm_pgoff)
    cdef i32* file                    # file id, -1 = anonymous
    cdef i32* anon                    # anon_vma id, 0 = none (not yet faulted)
    cdef i64* faults                  # anonymous faults in the VMA (the order hooks' vma_faults)
    cdef readonly i64 n               # number of VMAs (mm->map_count)
    cdef readonly i64 capacity
    cdef readonly i64 _head
    cdef readonly u64 align           # process page size P (boundaries multiple of it)
    cdef readonly int pgoff_shift     # kernel PAGE_SHIFT: pgoff unit

    cdef i64 find(self, u64 addr) noexcept nogil
    cdef i64 lower_bound(self, u64 addr) noexcept nogil
    cdef int _reserve(self, i64 extra) except -1
    cdef int _insert_row(self, i64 i, u64 s, u64 e, u64 f, u64 pg, i32 fi, i32 an) except -1
    cdef void _delete_rows(self, i64 i, i64 count) noexcept nogil
    cdef u64 _pages(self, u64 length) noexcept nogil
    cdef bint _can_merge_after(self, i64 p, u64 s, u64 f, i32 fi, i32 an, u64 pg) noexcept nogil
    cdef bint _can_merge_before(self, i64 q, u64 e, u64 f, i32 fi, i32 an, u64 pg, u64 pglen) noexcept nogil
    cdef void _check_args(self, u64 s, u64 e) except *
    cdef object _find_gap(self, u64 lo, u64 hi, u64 ln, bint top)
