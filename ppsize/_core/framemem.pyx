"""Per-frame arrays of the model (buddy links and state, folio metadata, kcore's
PageAnonExclusive): one allocator, so every kernel's per-frame memory behaves the
same on the host.

- Anonymous private mmaps: the host zero-fills a page on its first touch, so an
  array of zeros costs nothing until used (the model of a 256 GiB machine does not
  pay for frames it never hands out).
- MADV_NOHUGEPAGE: NumPy advises MADV_HUGEPAGE on large arrays, and with THP
  defrag=madvise the first touch of each 2 MiB then stalls in direct compaction;
  4 KiB host pages keep a cold model fault cheap.
- A lazily prepared range (the buddy's deferred blocks, CONFIG_DEFERRED_STRUCT_PAGE_INIT
  in mm/mm_init.c): arrays whose "empty" value is not zero (a folio's order marker
  and owner, -1) are filled there only when the buddy first hands the range out
  (deferred_grow_zone), and every array's slice is populated in bulk then
  (MADV_POPULATE_WRITE; touching each host page on kernels without it), instead of
  one host page fault per 4 KiB of each array in the middle of the model's faults.
"""
import mmap

import numpy as np

cimport numpy as cnp
from libc.string cimport memset

from ppsize._core._types cimport i64, u8

cnp.import_array()

cdef extern from "<sys/mman.h>" nogil:
    int madvise(void *addr, size_t length, int advice)
    void *sys_mmap "mmap"(void *addr, size_t length, int prot, int flags, int fd, long offset)
    void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ...)
    int munmap(void *addr, size_t length)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MREMAP_MAYMOVE, MADV_HUGEPAGE
    void *MAP_FAILED

cdef enum:
    MADV_POPULATE_WRITE_ = 23       # include/uapi/asm-generic/mman-common.h (Linux 5.14+)

cdef size_t HOST_PAGE = mmap.PAGESIZE
cdef bint have_populate = True      # cleared on the first EINVAL (an older host kernel)


SMALL_ARRAY = 4 << 20     # bytes; NumPy's MADV_HUGEPAGE threshold


def frame_array(n, dtype):
    """A zeroed 1-D array of ``n`` elements of ``dtype``: from 4 MiB up in its own
    anonymous private mapping, advised MADV_NOHUGEPAGE (host pages are zero-filled
    on first touch); smaller ones from NumPy (the heap)."""
    itemsize = np.dtype(dtype).itemsize
    if n * itemsize < SMALL_ARRAY:
        # small: from the C heap, whose pages stay warm across kernels (as a C
        # buddy's malloc); calloc would map fresh pages above glibc's mmap threshold
        a = np.empty(n, dtype=dtype)
        memset(cnp.PyArray_DATA(a), 0, <size_t>a.nbytes)
        return a
    m = mmap.mmap(-1, max(1, n * itemsize), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        m.madvise(mmap.MADV_NOHUGEPAGE)
    except (AttributeError, OSError):   # a host without THP: nothing to turn off
        pass
    return np.frombuffer(m, dtype=dtype, count=n)


cdef void populate(void *p, size_t nbytes) noexcept nogil:
    """Fault in the host pages under p .. p+nbytes for writing (whole host pages
    around the range: they belong to the same mapping)."""
    global have_populate
    cdef size_t start = <size_t>p & ~(HOST_PAGE - 1)
    cdef size_t end = (<size_t>p + nbytes + HOST_PAGE - 1) & ~(HOST_PAGE - 1)
    cdef size_t a
    if nbytes == 0:
        return
    if have_populate:
        if madvise(<void*>start, end - start, MADV_POPULATE_WRITE_) == 0:
            return
        have_populate = False
    # fallback: one write per host page (the value it holds, so nothing changes)
    a = start
    while a < end:
        (<volatile u8*>a)[0] = (<volatile u8*>a)[0]
        a += HOST_PAGE


cdef class FrameMem:
    """FrameMem(nr_pages): the per-frame arrays of one kernel's frames 0..nr_pages-1.

    ``array(dtype, fill)`` allocates one (frame_array) and registers it; frames in
    the lazy range (``set_lazy``) get ``fill`` only when ``prepare`` reaches them.
    """

    def __cinit__(self, nr_pages):
        self.nr_pages = nr_pages
        self.lazy_lo = self.lazy_hi = 0
        self.nr_arrays = 0
        self._arrays = []

    def set_lazy(self, i64 lo, i64 hi):
        """Frames lo .. hi-1 are prepared lazily (before any array is registered)."""
        if self.nr_arrays:
            raise ValueError("set_lazy: arrays are already registered")
        if not 0 <= lo <= hi <= self.nr_pages:
            raise ValueError(f"lazy range {lo}..{hi} not inside 0..{self.nr_pages}")
        self.lazy_lo, self.lazy_hi = lo, hi

    def array(self, dtype, fill=0):
        """A registered per-frame array of dtype whose every byte is ``fill`` (0 or
        0xFF: -1 of a signed type) outside the lazy range now, inside it once
        prepared."""
        if fill not in (0, 0xFF):
            raise ValueError(f"fill must be 0 or 0xFF (all bytes), got {fill!r}")
        if self.nr_arrays == FRAMEMEM_MAX_ARRAYS:
            raise ValueError(f"at most {FRAMEMEM_MAX_ARRAYS} per-frame arrays")
        a = frame_array(self.nr_pages, dtype)
        cdef int i = self.nr_arrays
        cdef size_t sz = a.itemsize
        cdef int f = fill
        self.base[i] = <u8*>cnp.PyArray_DATA(a)
        self.itemsize[i] = sz
        self.fill[i] = f
        self.mapped[i] = a.nbytes >= SMALL_ARRAY       # heap arrays are touched already
        if f:
            memset(self.base[i], f, self.lazy_lo * sz)
            memset(self.base[i] + self.lazy_hi * sz, f, (self.nr_pages - self.lazy_hi) * sz)
        elif self.mapped[i]:
            populate(self.base[i], self.lazy_lo * sz)   # the frames already in use
        self._arrays.append(a)
        self.nr_arrays += 1
        return a

    cdef void prepare(self, i64 hi) noexcept nogil:
        """Frames up to hi (exclusive) ready: fill values written and host pages
        populated for every registered array (deferred_init_pages /
        __init_single_page of a deferred range, done in bulk)."""
        cdef i64 lo = self.lazy_lo
        cdef int i
        cdef size_t sz
        if hi > self.lazy_hi:
            hi = self.lazy_hi
        if hi <= lo:
            return
        for i in range(self.nr_arrays):
            sz = self.itemsize[i]
            if self.fill[i]:
                memset(self.base[i] + lo * sz, self.fill[i], (hi - lo) * sz)
            elif self.mapped[i]:
                populate(self.base[i] + lo * sz, (hi - lo) * sz)
        self.lazy_lo = hi

    def prepare_all(self):
        """Prepare every lazy frame (before a walk over all frames' arrays)."""
        with nogil:
            self.prepare(self.lazy_hi)

    @property
    def lazy(self):
        """Frames not yet prepared."""
        return self.lazy_hi - self.lazy_lo


cdef size_t HUGE_HINT = 4 << 20     # NumPy's threshold for advising MADV_HUGEPAGE


cdef class GrowBuf:
    """GrowBuf(nbytes): zeroed host memory that grows without a copy (mremap). Its
    address changes on growth: hold pointers, never views, across grow()."""

    def __cinit__(self, size_t nbytes):
        self.p = NULL
        self.nbytes = 0
        self.grow(nbytes)

    cdef int grow(self, size_t nbytes) except -1:
        cdef void *q
        nbytes = (max(nbytes, 1) + HOST_PAGE - 1) & ~(HOST_PAGE - 1)
        if nbytes <= self.nbytes:
            return 0
        if self.p == NULL:
            q = sys_mmap(NULL, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        else:
            q = mremap(self.p, self.nbytes, nbytes, MREMAP_MAYMOVE)
        if q == MAP_FAILED:
            raise MemoryError(f"cannot map {nbytes} bytes for a growing pool")
        if nbytes >= HUGE_HINT:
            # large pools keep the THP backing NumPy gave them (the walk reads
            # them at random); growth faults in only the new part
            madvise(q, nbytes, MADV_HUGEPAGE)
        self.p = q
        self.nbytes = nbytes
        return 0

    def __dealloc__(self):
        if self.p != NULL:
            munmap(self.p, self.nbytes)
