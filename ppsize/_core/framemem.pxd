# INTERNAL to ppsize (may change without notice).
# One allocator for the per-frame arrays of buddy, folio and kcore (framemem.pyx):
# anonymous mmaps the host zero-fills lazily (or reused, zeroed, from the pool of
# dropped kernels' mappings), never transparent huge pages, and a
# lazily initialised range of frames (CONFIG_DEFERRED_STRUCT_PAGE_INIT: the buddy's
# never-used max-order blocks) whose array slices are filled / populated in bulk
# when the buddy first hands them out.
#
#   from ppsize._core.framemem cimport FrameMem
#   frames.prepare(hi)      # frames below hi: fill values written, host pages populated
from ppsize._core._types cimport i64, u8

cdef enum:
    FRAMEMEM_MAX_ARRAYS = 16

cdef struct Ahead:
    # the populate-ahead worker's request (framemem.pyx: deferred_init_memmap's
    # pgdatinit thread): frames lo .. hi-1 of the arrays listed, under mu
    void *mu                           # pthread_mutex_t *
    void *cv                           # pthread_cond_t *
    int stop
    i64 lo
    i64 hi
    int nr
    u8 *base[FRAMEMEM_MAX_ARRAYS]
    size_t itemsize[FRAMEMEM_MAX_ARRAYS]

cdef class FrameMem:
    cdef readonly i64 nr_pages
    cdef readonly i64 lazy_lo          # frames lazy_lo .. lazy_hi-1 not yet prepared
    cdef readonly i64 lazy_hi
    cdef int nr_arrays
    cdef u8 *base[FRAMEMEM_MAX_ARRAYS]
    cdef size_t itemsize[FRAMEMEM_MAX_ARRAYS]
    cdef int fill[FRAMEMEM_MAX_ARRAYS]          # byte value (0: populate only)
    cdef bint mapped[FRAMEMEM_MAX_ARRAYS]       # an mmap of its own (populated in bulk)
    cdef size_t resident[FRAMEMEM_MAX_ARRAYS]   # bytes from the start whose host pages
                                                # came from the pool (zeroed at
                                                # registration where written before)
    cdef object _arrays
    cdef void *maps[FRAMEMEM_MAX_ARRAYS]        # the arrays' HostMaps, owned references
                                                # (NULL: a heap array)

    cdef Ahead *ahead                  # NULL until the worker is started
    cdef unsigned long worker          # its pthread_t
    cdef int worker_pid                # the process that started it (a fork's child
                                       # has no worker: it never touches it)

    cdef void prepare(self, i64 hi) noexcept nogil
    cdef void populate_ahead(self, i64 lo, i64 hi) noexcept nogil

cdef void populate(void *p, size_t nbytes) noexcept nogil


cdef class GrowBuf:
    # an anonymous private mapping that grows in place or moves with mremap
    # (MREMAP_MAYMOVE: the host moves the pages, nothing is copied or re-zeroed),
    # or into a larger mapping a dropped GrowBuf left in framemem's pool (what it
    # holds copied: resident memory, no host first touch); the bytes past the old
    # size come zero-filled
    cdef void *p
    cdef readonly size_t nbytes
    cdef size_t mapped                 # length of the mapping (>= nbytes)
    cdef size_t dirty                  # bytes from p that may be non-zero
    cdef readonly bint huge            # large mappings advised MADV_HUGEPAGE
    cdef int grow(self, size_t nbytes) except -1
    cdef void _advise(self) noexcept
