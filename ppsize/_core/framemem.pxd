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

cdef struct Populator:
    # a worker pthread that populates the host pages of the ranges asked for last
    # (framemem.pyx: deferred_init_memmap's pgdatinit thread), started on first use;
    # its fields under mu
    void *mu                           # pthread_mutex_t *
    void *cv                           # pthread_cond_t *: new work, a piece done
    unsigned long thread               # its pthread_t
    int pid                            # the process that started it (0: none yet,
                                       # -1: could not; a fork's child has none)
    int stop
    int busy                           # a piece is being populated now
    int nr                             # ranges pending
    u8 *addr[FRAMEMEM_MAX_ARRAYS]      # page-aligned
    size_t len[FRAMEMEM_MAX_ARRAYS]
    size_t front_hi                    # populate_front: bytes asked for so far

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

    cdef Populator *ahead              # NULL until populate ahead is first asked for
    cdef i64 ahead_hi                  # frames asked for so far

    cdef void prepare(self, i64 hi) noexcept nogil
    cdef void populate_ahead(self, i64 lo, i64 hi) noexcept nogil

cdef void populate(void *p, size_t nbytes) noexcept nogil
cdef Populator *populator_new() noexcept nogil
cdef void populator_ask(Populator *w, int nr, u8 **addr, size_t *nbytes) noexcept nogil
cdef void populate_front(Populator *w, u8 *base, size_t front, size_t end) noexcept nogil
cdef void populator_quiesce(Populator *w) noexcept nogil
cdef void populator_free(Populator *w) noexcept nogil


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
    cdef Populator *ahead              # NULL until populator() is first called
    cdef int grow(self, size_t nbytes) except -1
    cdef void _advise(self) noexcept
    cdef Populator *populator(self) noexcept
