"""Per-frame arrays of the model (buddy links and state, folio metadata, kcore's
PageAnonExclusive): one allocator, so every kernel's per-frame memory behaves the
same on the host.

- Anonymous private mmaps: the host zero-fills a page on its first touch, so an
  array of zeros costs nothing until used (the model of a 256 GiB machine does not
  pay for frames it never hands out).
- MADV_NOHUGEPAGE: NumPy advises MADV_HUGEPAGE on large arrays, and with THP
  defrag=madvise the first touch of each 2 MiB then stalls in direct compaction, or on
  a VM with free page reporting (the development one) in the host's fault-in of the
  whole 2 MiB (3.5-20 ms); 4 KiB host pages keep a cold model fault cheap. GrowBufs
  take THP only when asked (the page tables' pools, read at random).
- A lazily prepared range (the buddy's deferred blocks, CONFIG_DEFERRED_STRUCT_PAGE_INIT
  in mm/mm_init.c): arrays whose "empty" value is not zero (a folio's order marker
  and owner, -1) are filled there only when the buddy first hands the range out
  (deferred_grow_zone), and every array's slice is populated in bulk then
  (MADV_POPULATE_WRITE; touching each host page on kernels without it), instead of
  one host page fault per 4 KiB of each array in the middle of the model's faults.
- A pool of host memory (``pool_stats``, ``set_pool_limit``): the arrays and page-table
  pools (GrowBuf) of a dropped Kernel keep their host pages, up to a limit, for the
  next Kernel of the same interpreter. A host's first touch of a page costs more than
  the model's whole fault on it (~1.5 us per 4 KiB on the development VM, ~12 ns per
  modelled frame of per-frame arrays), while zeroing a page already resident costs
  ~70 ns: a reused array is zeroed (memset) where the earlier kernel may have written
  it when the new kernel registers it, so its pages are resident before the faults. What the arrays
  hold is the same either way (zeros, or the fill value once prepared); only where the
  host memory comes from differs. The first Kernel of an interpreter pays the host's
  first touch as before.
- Populate ahead (``set_populate_ahead(True)``; off by default: on this 2-core shared
  VM it saved 5 of 66 ns per cold 4K fault and 13 of 337 per 64K one with a core
  free, and cost 100 ns per 64K fault with the other core busy, when the worker and
  the faulting thread contend for one core; ``compare`` turns it on when it runs one
  configuration at a time with a CPU to spare): a worker pthread (a Populator; Linux:
  the pgdatinit kthreads of deferred_init_memmap) faults in fresh host pages ahead of
  the model, a FrameMem's AHEAD_CHUNKS of the buddy's grow steps past the frames it
  prepared, a GrowBuf's GROW_AHEAD bytes past the front its user reports
  (``populate_front``: the page cache's node pool, filled in node order). It writes no
  byte (MADV_POPULATE_WRITE keeps a page's contents), so nothing it does is visible
  to the model and the model never waits for it; it is quiesced before a GrowBuf
  moves, joined before any of its memory can be unmapped, and a fork's child never
  touches it. On the host's cold memory (free page reporting) this takes a first
  touch, ~6-25 us per 4 KiB, off the model's path: the 4K configuration's full read
  of 2M files went from 3.2-5.9 s to 0.8-1.2 s.
"""
import mmap

import numpy as np

from ppsize._validate import as_choice

cimport cython
cimport numpy as cnp
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ppsize._core._types cimport i64, u8

cnp.import_array()

cdef extern from "<sys/mman.h>" nogil:
    int madvise(void *addr, size_t length, int advice)
    void *sys_mmap "mmap"(void *addr, size_t length, int prot, int flags, int fd, long offset)
    void *mremap(void *old_address, size_t old_size, size_t new_size, int flags, ...)
    int munmap(void *addr, size_t length)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MREMAP_MAYMOVE, MADV_HUGEPAGE
    int MADV_NOHUGEPAGE, MADV_DONTNEED
    void *MAP_FAILED

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    int pthread_create(pthread_t *thread, void *attr, void *(*start)(void *) noexcept nogil, void *arg)
    int pthread_join(pthread_t thread, void **retval)
    int pthread_mutex_init(pthread_mutex_t *m, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)
    int pthread_cond_init(pthread_cond_t *c, void *attr)
    int pthread_cond_destroy(pthread_cond_t *c)
    int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
    int pthread_cond_broadcast(pthread_cond_t *c)

cdef extern from "<unistd.h>" nogil:
    int getpid()

cdef enum:
    MADV_POPULATE_WRITE_ = 23       # include/uapi/asm-generic/mman-common.h (Linux 5.14+)

cdef size_t HOST_PAGE = mmap.PAGESIZE


cdef inline size_t _page_down(size_t x) noexcept nogil:
    return x & ~(HOST_PAGE - 1)


cdef inline size_t _page_up(size_t x) noexcept nogil:
    return (x + HOST_PAGE - 1) & ~(HOST_PAGE - 1)
cdef bint populate_ahead_on = False   # set_populate_ahead(): off unless asked for


def set_populate_ahead(bint on):
    """Whether a worker thread faults in the host pages a FrameMem's next lazy
    chunks and a filling GrowBuf's next bytes will need, while the model works on
    the current ones (as Linux initialises its memmap on pgdatinit kthreads); off by
    default. Takes effect at the next request; returns the old setting. Outcomes
    never depend on it: the worker only faults in host pages (MADV_POPULATE_WRITE,
    which leaves their contents as they are)."""
    global populate_ahead_on
    old = populate_ahead_on
    populate_ahead_on = on
    return old


cdef i64 AHEAD_CHUNKS_ = 4          # a FrameMem's worker populates this many of the
                                    # buddy's grow steps ahead
cdef size_t GROW_AHEAD_ = 4 << 20   # bytes a filling GrowBuf keeps populated past its front
cdef size_t FRONT_STEP = 1 << 20    # populate_front asks again once the front moved this
cdef size_t AHEAD_PIECE = 1 << 20   # bytes per madvise call of a worker (what a
                                    # quiesce may wait for)
AHEAD_CHUNKS = AHEAD_CHUNKS_
GROW_AHEAD = GROW_AHEAD_


cdef void *_populator_main(void *arg) noexcept nogil:
    # the worker: a piece at a time of the first pending range; it writes no byte (a
    # populated page keeps what it holds), so the model, which writes or populates
    # the same pages itself when it needs them, never waits for it
    cdef Populator *w = <Populator*>arg
    cdef u8 *a
    cdef size_t n
    cdef int i
    pthread_mutex_lock(<pthread_mutex_t*>w.mu)
    while True:
        while not w.stop and w.nr == 0:
            pthread_cond_wait(<pthread_cond_t*>w.cv, <pthread_mutex_t*>w.mu)
        if w.stop:
            break
        a = w.addr[0]
        n = min(w.len[0], AHEAD_PIECE)
        w.addr[0] += n
        w.len[0] -= n
        if w.len[0] == 0:
            w.nr -= 1
            for i in range(w.nr):
                w.addr[i] = w.addr[i + 1]
                w.len[i] = w.len[i + 1]
        w.busy = 1
        pthread_mutex_unlock(<pthread_mutex_t*>w.mu)
        if populate_ahead_on:
            # not populate(): its fallback rewrites bytes the model may be writing
            madvise(a, n, MADV_POPULATE_WRITE_)
        pthread_mutex_lock(<pthread_mutex_t*>w.mu)
        w.busy = 0
        pthread_cond_broadcast(<pthread_cond_t*>w.cv)      # a quiesce may wait for it
    pthread_mutex_unlock(<pthread_mutex_t*>w.mu)
    return NULL


cdef Populator *populator_new() noexcept nogil:
    """A populator without a thread yet (NULL if out of memory)."""
    cdef Populator *w = <Populator*>malloc(sizeof(Populator))
    if w == NULL:
        return NULL
    memset(w, 0, sizeof(Populator))
    w.mu = malloc(sizeof(pthread_mutex_t))
    w.cv = malloc(sizeof(pthread_cond_t))
    if w.mu == NULL or w.cv == NULL:
        free(w.mu)
        free(w.cv)
        free(w)
        return NULL
    pthread_mutex_init(<pthread_mutex_t*>w.mu, NULL)
    pthread_cond_init(<pthread_cond_t*>w.cv, NULL)
    return w


cdef inline bint _populator_here(Populator *w) noexcept nogil:
    # its thread runs in this process (a fork's child never touches the parent's,
    # whose mutex may have been held at the fork)
    return w.pid > 0 and w.pid == getpid()


cdef inline bint _populator_mine(Populator *w) noexcept nogil:
    # a thread this process may use, started on first use
    cdef pthread_t t
    if w.pid == 0 and populate_ahead_on:
        w.pid = -1
        if pthread_create(&t, NULL, _populator_main, w) == 0:
            w.thread = t
            w.pid = getpid()
    return _populator_here(w)


cdef void populator_ask(Populator *w, int nr, u8 **addr, size_t *nbytes) noexcept nogil:
    """Populate these ranges (whole host pages inside each) instead of what was
    pending; the thread is started on the first ask while populate ahead is on."""
    cdef int i, n = 0
    cdef size_t lo, hi
    if w == NULL or not populate_ahead_on or not _populator_mine(w):
        return
    pthread_mutex_lock(<pthread_mutex_t*>w.mu)
    for i in range(min(nr, FRAMEMEM_MAX_ARRAYS)):
        lo = _page_up(<size_t>addr[i])
        hi = _page_down(<size_t>addr[i] + nbytes[i])
        if hi > lo:
            w.addr[n] = <u8*>lo
            w.len[n] = hi - lo
            n += 1
    w.nr = n
    pthread_cond_broadcast(<pthread_cond_t*>w.cv)
    pthread_mutex_unlock(<pthread_mutex_t*>w.mu)


cdef void populate_front(Populator *w, u8 *base, size_t front, size_t end) noexcept nogil:
    """A buffer base .. base+end filled from its start, now up to ``front``: keep
    the next GROW_AHEAD bytes populated (asked for again each FRONT_STEP)."""
    cdef u8 *a
    cdef size_t n, hi
    if w == NULL or not populate_ahead_on or w.front_hi > front + GROW_AHEAD_ - FRONT_STEP:
        return
    hi = min(front + GROW_AHEAD_, end)
    a = base + max(front, w.front_hi)
    if base + hi > a:
        n = base + hi - a
        populator_ask(w, 1, &a, &n)
    w.front_hi = hi


cdef void populator_quiesce(Populator *w) noexcept nogil:
    """Drop what is pending and wait for the piece in progress: afterwards the
    thread touches nothing until asked again (before the memory moves or goes)."""
    if w == NULL:
        return
    w.front_hi = 0
    if not _populator_here(w):
        return
    pthread_mutex_lock(<pthread_mutex_t*>w.mu)
    w.nr = 0
    while w.busy:
        pthread_cond_wait(<pthread_cond_t*>w.cv, <pthread_mutex_t*>w.mu)
    pthread_mutex_unlock(<pthread_mutex_t*>w.mu)


cdef void populator_free(Populator *w) noexcept nogil:
    """Stop and join the thread (if this process started it), free the state."""
    cdef bint here
    if w == NULL:
        return
    here = _populator_here(w)
    if here:
        pthread_mutex_lock(<pthread_mutex_t*>w.mu)
        w.stop = 1
        pthread_cond_broadcast(<pthread_cond_t*>w.cv)
        pthread_mutex_unlock(<pthread_mutex_t*>w.mu)
        pthread_join(<pthread_t>w.thread, NULL)
    if here or w.pid <= 0:                     # (not a parent's, maybe held)
        pthread_mutex_destroy(<pthread_mutex_t*>w.mu)
        pthread_cond_destroy(<pthread_cond_t*>w.cv)
    free(w.mu)
    free(w.cv)
    free(w)


cdef bint have_populate = True      # cleared on the first EINVAL (an older host kernel)


SMALL_ARRAY = 4 << 20     # bytes; NumPy's MADV_HUGEPAGE threshold


# ------------------------------------------------------------------ the pool
# Host mappings of dropped arrays and page-table pools, oldest first: [key, addr,
# mapped, resident, dirty] (resident: bytes from addr whose host pages may be
# resident; dirty <= resident: bytes from addr that may be non-zero; the
# rest of the mapping is untouched or was given back with MADV_DONTNEED). Only
# touched with the GIL held (array registration, GrowBuf growth, deallocation).
_pool = []
cdef size_t pool_bytes = 0               # sum of the entries' resident bytes
cdef size_t pool_limit = 128 << 20       # bytes of host memory the pool may keep
cdef size_t pool_entry_limit = 16 << 20  # ... of which one mapping keeps at most
cdef size_t pool_reused = 0              # bytes handed out again (statistics)
cdef size_t grow_bytes = 0               # of pool_bytes, in GrowBuf mappings
cdef size_t grow_limit = 32 << 20        # at most this much of them
# set while the pool is being changed: a deallocation the cycle collector runs in
# the middle (an allocation there may collect a Kernel) unmaps instead of pooling
cdef bint pool_busy = False


def set_pool_limit(size_t nbytes, entry_nbytes=None, grow_nbytes=None):
    """Keep at most ``nbytes`` of dropped arrays' host memory for later kernels (0:
    none, every mapping is unmapped when dropped), at most ``entry_nbytes`` of one
    mapping (default nbytes / 8) and ``grow_nbytes`` of GrowBufs' (default nbytes / 4).
    Trims the pool at once; returns the old limit."""
    global pool_limit, pool_entry_limit, grow_limit
    old = pool_limit
    pool_limit = nbytes
    pool_entry_limit = nbytes // 8 if entry_nbytes is None else entry_nbytes
    grow_limit = nbytes // 4 if grow_nbytes is None else grow_nbytes
    _locked_trim(0)
    return old


def pool_stats():
    """The pool: entries, bytes kept (upper bound of the host memory it holds),
    bytes handed out again since import, the limits."""
    return {"entries": len(_pool), "bytes": pool_bytes, "reused": pool_reused,
            "limit": pool_limit, "entry_limit": pool_entry_limit, "grow_limit": grow_limit}


def pool_clear():
    """Unmap everything the pool keeps."""
    _locked_trim(pool_limit + 1)


cdef void _locked_trim(size_t room):
    global pool_busy
    if pool_busy:
        return
    pool_busy = True
    try:
        _trim_grow(0)                    # a lowered grow limit
        _trim(room)
    finally:
        pool_busy = False


cdef void _trim(size_t room):
    # drop the oldest entries until room more bytes fit under the limit
    global pool_bytes
    global grow_bytes
    cdef size_t addr, mapped, resident
    while _pool and (pool_bytes + room > pool_limit or room > pool_limit):
        e = _pool.pop(0)
        addr, mapped, resident = e[1], e[2], e[3]
        pool_bytes -= resident
        if e[0] in GROW_KEYS:
            grow_bytes -= resident
        munmap(<void*>addr, mapped)
        if room > pool_limit and not _pool:
            break


cdef void _trim_grow(size_t room):
    # drop the oldest GrowBuf entries until room more bytes of them fit
    global pool_bytes, grow_bytes
    cdef Py_ssize_t i = 0
    while i < len(_pool) and grow_bytes + room > grow_limit:
        e = _pool[i]
        if e[0] not in GROW_KEYS:
            i += 1
            continue
        del _pool[i]
        pool_bytes -= <size_t>e[3]
        grow_bytes -= <size_t>e[3]
        munmap(<void*><size_t>e[1], <size_t>e[2])


cdef void _release(object key, void *p, size_t mapped, size_t resident, size_t dirty):
    """A dropped mapping: into the pool (its first pool_entry_limit resident bytes,
    the rest given back), or unmapped."""
    global pool_bytes, pool_busy, grow_bytes
    cdef size_t keep = _page_down(min(resident, pool_entry_limit, pool_limit))
    cdef bint grow = key in GROW_KEYS
    if p == NULL:
        return
    if keep == 0 or key is None or pool_busy or (grow and keep > grow_limit):
        munmap(p, mapped)
        return
    pool_busy = True
    try:
        if keep < resident:
            madvise(<u8*>p + keep, resident - keep, MADV_DONTNEED)
        if grow:
            _trim_grow(keep)
        _trim(keep)
        _pool.append([key, <size_t>p, mapped, keep, min(dirty, keep)])
        pool_bytes += keep
        if grow:
            grow_bytes += keep
    finally:
        pool_busy = False


cdef object _take(object key, size_t nbytes, bint fit):
    """A pooled mapping for key: the one with the most reusable bytes (fit: the
    smallest that holds nbytes), removed from the pool; None if there is none."""
    global pool_bytes, pool_reused, pool_busy
    if pool_busy:
        return None
    pool_busy = True
    try:
        return _take_locked(key, nbytes, fit)
    finally:
        pool_busy = False


cdef object _take_locked(object key, size_t nbytes, bint fit):
    global pool_bytes, pool_reused, grow_bytes
    cdef Py_ssize_t i, best = -1
    cdef size_t score, best_score = 0, best_size = 0
    for i in range(len(_pool)):
        e = _pool[i]
        if e[0] != key:
            continue
        if fit:
            if e[2] < nbytes:
                continue
            score = ~(<size_t>e[2])             # smaller mapping, higher score
        else:
            score = min(<size_t>e[3], nbytes)
        # of equal scores the one with the fewest resident bytes: a small array
        # does not take the mapping a larger one of the next kernel needs
        if best < 0 or score > best_score or (score == best_score and <size_t>e[3] < best_size):
            best, best_score, best_size = i, score, <size_t>e[3]
    if best < 0:
        return None
    e = _pool.pop(best)
    pool_bytes -= <size_t>e[3]
    if e[0] in GROW_KEYS:
        grow_bytes -= <size_t>e[3]
    pool_reused += min(<size_t>e[3], nbytes)
    return e


cdef class HostMap:
    """An anonymous private mapping owning a frame array's memory (the array's
    base object): back to the pool when the array goes. No Python attributes, so
    the cycle collector never clears it before its deallocation."""
    cdef void *p
    cdef size_t mapped
    cdef size_t resident                 # (as the pool's entries)
    cdef size_t dirty
    cdef size_t itemsize                 # the pool key (POOL_KINDS[kind], itemsize)
    cdef int kind

    def __dealloc__(self):
        if self.p != NULL:
            _release((POOL_KINDS[self.kind], self.itemsize), self.p, self.mapped,
                     self.resident, self.dirty)
            self.p = NULL


# what a mapping held, so each kind of array reuses its own: per-frame arrays (sized by
# the kernel's frames), per-file ones (by the files; the page cache's) and per-node
# ones (the page cache's XArray nodes)
POOL_KINDS = ("frames", "files", "nodes")


cdef object _frame_alloc(i64 n, object dtype, size_t *resident, size_t *dirty, int kind=0):
    """A 1-D array of n elements of dtype and, in resident / dirty, how many bytes
    from its start are host pages reused from the pool / may hold a previous
    kernel's values (0: fresh, all zero). Small arrays from the
    heap (zeroed); from 4 MiB up a mapping of its own, reused from the pool when
    one of the same item size is there, MADV_NOHUGEPAGE."""
    dt = np.dtype(dtype)
    cdef size_t itemsize = dt.itemsize
    cdef size_t nbytes = max(1, n * itemsize)
    cdef size_t length = _page_up(nbytes)
    cdef size_t mapped
    cdef void *q
    cdef HostMap hm
    cdef cnp.npy_intp dims[1]
    dirty[0] = resident[0] = 0
    if n * itemsize < SMALL_ARRAY:
        # small: from the C heap, whose pages stay warm across kernels (as a C
        # buddy's malloc); calloc would map fresh pages above glibc's mmap threshold
        a = np.empty(n, dtype=dt)
        memset(cnp.PyArray_DATA(a), 0, <size_t>a.nbytes)
        return a
    key = (POOL_KINDS[kind], itemsize)
    hm = HostMap()
    e = _take(key, length, False)
    q = NULL
    if e is not None:
        q = <void*><size_t>e[1]
        mapped = <size_t>e[2]
        if mapped < length:
            # grow (the new part fresh zeros)
            q = mremap(q, mapped, length, MREMAP_MAYMOVE)
            if q == MAP_FAILED:
                munmap(<void*><size_t>e[1], mapped)
                q = NULL
            mapped = length
        # a larger one is kept whole, its tail's host pages with it: a 16K or 64K
        # kernel's smaller arrays would otherwise give back what the next 4K kernel
        # of a compare touches again
        if q != NULL:
            resident[0] = min(<size_t>e[3], length)
            dirty[0] = min(<size_t>e[4], length)
            hm.resident = max(<size_t>e[3], length)
            hm.dirty = max(<size_t>e[4], length)
    if q == NULL:
        q = sys_mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if q == MAP_FAILED:
            raise MemoryError(f"cannot map {length} bytes for a per-frame array")
        madvise(q, length, MADV_NOHUGEPAGE)        # (the module's docstring)
        mapped = length
        hm.resident = hm.dirty = length    # whatever the owner writes may be kept
    hm.p = q
    hm.mapped = mapped
    hm.itemsize = itemsize
    hm.kind = kind
    dims[0] = n
    a = cnp.PyArray_SimpleNewFromData(1, dims, dt.num, q)
    cnp.set_array_base(a, hm)
    return a


def frame_array(n, dtype, kind="frames"):
    """A zeroed 1-D array of ``n`` elements of ``dtype``: from 4 MiB up in its own
    anonymous private mapping (reused from the pool of dropped arrays of the same
    ``kind``, one of POOL_KINDS, zeroed, or new: host pages zero-filled on first
    touch), advised MADV_NOHUGEPAGE; smaller ones from NumPy (the heap)."""
    cdef size_t resident, dirty
    as_choice(kind, POOL_KINDS, "pool kind")
    a = _frame_alloc(n, dtype, &resident, &dirty, POOL_KINDS.index(kind))
    if dirty:
        memset(cnp.PyArray_DATA(a), 0, dirty)
    return a


cdef void populate(void *p, size_t nbytes) noexcept nogil:
    """Fault in the host pages under p .. p+nbytes for writing (whole host pages
    around the range: they belong to the same mapping)."""
    global have_populate
    cdef size_t start = _page_down(<size_t>p)
    cdef size_t end = _page_up(<size_t>p + nbytes)
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


# no_gc_clear: __dealloc__ reads the arrays' HostMaps (a Kernel is freed by the
# cycle collector); they are held by C references (maps), which no tp_clear of a
# container in the same garbage drops: an array may go first, its mapping not
@cython.no_gc_clear
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
        cdef int i
        for i in range(FRAMEMEM_MAX_ARRAYS):
            self.maps[i] = NULL
        self.ahead = NULL
        self.ahead_hi = 0

    def __dealloc__(self):
        # what the pool keeps of each array: the prepared frames (and the bytes an
        # earlier kernel had written); the frames past the lazy range are given
        # back (they would make the whole array "written")
        cdef HostMap hm
        cdef int i
        cdef size_t sz, d, r, end, length
        # stop and join the worker before any of its arrays can be unmapped
        with nogil:
            populator_free(self.ahead)
        self.ahead = NULL
        for i in range(self.nr_arrays):
            if self.maps[i] == NULL:
                continue
            hm = <HostMap>self.maps[i]
            if hm.p == NULL:
                continue
            sz = self.itemsize[i]
            length = _page_up(<size_t>self.nr_pages * sz)
            if self.lazy_lo >= self.lazy_hi:
                d = r = length                 # every frame prepared: all may be written
            else:
                # the unprepared frames lazy_lo .. lazy_hi-1 are zero (fresh, or
                # zeroed when registered): the part before them is kept, the part
                # after (the frames past the range) given back
                d = _page_up(<size_t>self.lazy_lo * sz)
                r = max(self.resident[i], d)
                end = _page_down(<size_t>self.lazy_hi * sz)
                if self.lazy_hi < self.nr_pages and end < length:
                    madvise(<u8*>hm.p + end, length - end, MADV_DONTNEED)
                    r = min(r, end)
                    d = min(d, end)
            # a pooled mapping larger than the array: its tail is as this kernel
            # found it (hm.resident / dirty as _frame_alloc set them)
            if hm.resident > length:
                r = hm.resident
            if hm.dirty > length:
                d = hm.dirty
            hm.resident = min(r, hm.mapped)
            hm.dirty = min(d, hm.resident)
            hm = None
            Py_XDECREF(<PyObject*>self.maps[i])     # the pool gets it once its array goes
            self.maps[i] = NULL

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
        cdef size_t resident, dirty
        a = _frame_alloc(self.nr_pages, dtype, &resident, &dirty)
        cdef int i = self.nr_arrays
        cdef size_t sz = a.itemsize
        cdef int f = fill
        cdef size_t lo_b = self.lazy_lo * sz, hi_b = self.lazy_hi * sz
        self.base[i] = <u8*>cnp.PyArray_DATA(a)
        self.itemsize[i] = sz
        self.fill[i] = f
        self.mapped[i] = a.nbytes >= SMALL_ARRAY       # heap arrays are touched already
        self.resident[i] = resident
        if f:
            memset(self.base[i], f, lo_b)
            memset(self.base[i] + hi_b, f, self.nr_pages * sz - hi_b)
        elif self.mapped[i]:
            # the frames already in use populated; bytes a previous kernel wrote
            # (pooled host pages) zeroed now, the lazy range's too: frames not yet
            # prepared read as zero, as on fresh host pages
            memset(self.base[i], 0, dirty)
            if resident < lo_b:
                populate(self.base[i] + resident, lo_b - resident)
        if f and dirty > lo_b:
            # the lazy range of a fill array: zero until prepared, as fresh pages
            memset(self.base[i] + lo_b, 0, min(dirty, hi_b) - lo_b)
        self._arrays.append(a)
        if isinstance(a.base, HostMap):
            hm_obj = a.base
            Py_INCREF(hm_obj)
            self.maps[i] = <PyObject*>hm_obj
        self.nr_arrays += 1
        return a

    cdef void prepare(self, i64 hi) noexcept nogil:
        """Frames up to hi (exclusive) ready: fill values written and host pages
        populated for every registered array (deferred_init_pages /
        __init_single_page of a deferred range, done in bulk)."""
        cdef i64 lo = self.lazy_lo
        cdef int i
        cdef size_t sz, a, b
        if hi > self.lazy_hi:
            hi = self.lazy_hi
        if hi <= lo:
            return
        for i in range(self.nr_arrays):
            sz = self.itemsize[i]
            if self.fill[i]:
                memset(self.base[i] + lo * sz, self.fill[i], (hi - lo) * sz)
            elif self.mapped[i]:
                # fresh host pages populated (their first touch); reused ones are
                # zero since registration already
                a = max(self.resident[i], lo * sz)
                b = hi * sz
                if b > a:
                    populate(self.base[i] + a, b - a)
        self.lazy_lo = hi
        if hi < self.lazy_hi and lo > 0:
            # the next chunk of the same size, populated by the worker meanwhile
            # (not at boot, lo == 0: an idle Kernel stays as small as it was)
            self.populate_ahead(max(hi, self.ahead_hi), min(self.lazy_hi, hi + AHEAD_CHUNKS_ * (hi - lo)))

    cdef void populate_ahead(self, i64 lo, i64 hi) noexcept nogil:
        """Ask the worker (started on first use) to populate the host pages of
        frames lo .. hi-1 of every mapped array not reused from the pool."""
        cdef int i, n = 0
        cdef u8 *addr[FRAMEMEM_MAX_ARRAYS]
        cdef size_t nbytes[FRAMEMEM_MAX_ARRAYS]
        cdef size_t a
        if not populate_ahead_on or hi <= lo:
            return
        if self.ahead == NULL:
            self.ahead = populator_new()
        for i in range(self.nr_arrays):
            # fresh host pages only: reused ones are resident already
            a = max(<size_t>lo * self.itemsize[i], self.resident[i])
            if self.mapped[i] and <size_t>hi * self.itemsize[i] > a:
                addr[n] = self.base[i] + a
                nbytes[n] = <size_t>hi * self.itemsize[i] - a
                n += 1
        populator_ask(self.ahead, n, addr, nbytes)
        self.ahead_hi = hi

    def prepare_all(self):
        """Prepare every lazy frame (before a walk over all frames' arrays)."""
        with nogil:
            self.prepare(self.lazy_hi)

    @property
    def lazy(self):
        """Frames not yet prepared."""
        return self.lazy_hi - self.lazy_lo


cdef size_t HUGE_HINT = 4 << 20     # NumPy's threshold for advising MADV_HUGEPAGE
cdef size_t GROW_TAKE_MIN = 64 << 10  # a GrowBuf growing from this size takes a pooled one
cdef size_t GROW_POOL_MIN = 2 << 20   # GrowBufs from this size are pooled (a page-table
                                     # pool of 512 tables, 1 GiB mapped: smaller ones
                                     # are cheap to map, and a reused one is zeroed to
                                     # its whole size, which may be more than was used)


# the pool keys of GrowBufs' mappings, without and with THP: a THP pool reuses only
# THP-backed memory (4 KiB pages already resident stay so, whatever the advice)
GROW_KEYS = ("grow", "grow-huge")


cdef inline void _grow_release(void *p, size_t mapped, size_t dirty, bint huge):
    # a GrowBuf's mapping it no longer uses: pooled from GROW_POOL_MIN, else unmapped
    _release(GROW_KEYS[huge] if mapped >= GROW_POOL_MIN else None, p, mapped, dirty, dirty)


cdef class GrowBuf:
    """GrowBuf(nbytes, huge=False): zeroed host memory that grows without a copy of
    fresh memory (mremap), or into a larger pooled mapping of a dropped GrowBuf (a
    copy of what it holds, cheaper than the host's first touch of the new part). Its
    address changes on growth: hold pointers, never views, across grow(). huge: from
    4 MiB up the mapping is advised MADV_HUGEPAGE (for memory read at random)."""

    def __cinit__(self, size_t nbytes, bint huge=False):
        self.p = NULL
        self.nbytes = self.mapped = self.dirty = 0
        self.huge = huge
        self.ahead = NULL
        self.grow(nbytes)

    cdef int grow(self, size_t nbytes) except -1:
        cdef void *q
        cdef size_t z
        nbytes = _page_up(max(nbytes, 1))
        if nbytes <= self.nbytes:
            return 0
        if nbytes > self.mapped:
            populator_quiesce(self.ahead)      # the mapping may move: no populate in it
            # a pooled mapping goes to a pool that grows (the page tables' pools
            # start at 16 tables per level, and only the levels that fill up grow),
            # small ones stay fresh mappings (a few host pages)
            e = _take(GROW_KEYS[self.huge], nbytes, True) if self.nbytes >= GROW_TAKE_MIN else None
            if e is not None:
                # a pooled mapping that holds nbytes: take it, copy what this one holds
                q = <void*><size_t>e[1]
                if self.nbytes:
                    memcpy(q, self.p, self.nbytes)
                _grow_release(self.p, self.mapped, self.dirty, self.huge)
                self.p = q
                self.mapped = e[2]
                self.dirty = max(<size_t>e[4], self.nbytes)
                self._advise()
            else:
                if self.p == NULL:
                    q = sys_mmap(NULL, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                else:
                    q = mremap(self.p, self.mapped, nbytes, MREMAP_MAYMOVE)
                if q == MAP_FAILED:
                    raise MemoryError(f"cannot map {nbytes} bytes for a growing pool")
                self.p = q
                self.mapped = nbytes
                self._advise()
        # the bytes past the old size: zero (fresh, or zeroed where reused)
        z = min(self.dirty, nbytes)
        if z > self.nbytes:
            memset(<u8*>self.p + self.nbytes, 0, z - self.nbytes)
        self.nbytes = nbytes
        self.dirty = max(self.dirty, nbytes)
        return 0

    @property
    def address(self):
        """Where the mapping starts now (it moves on growth)."""
        return <size_t>self.p

    cdef void _advise(self) noexcept:
        # the whole mapping (the host faults in only what is touched): THP only where
        # asked, since on a VM with free page reporting (this one) a first touch of a
        # 2 MiB THP costs 3.5-20 ms, of 512 4 KiB pages 1-7 ms
        madvise(self.p, self.mapped, MADV_HUGEPAGE if self.huge and self.mapped >= HUGE_HINT
                else MADV_NOHUGEPAGE)

    cdef Populator *populator(self) noexcept:
        """The populator of this buffer (made on first use; NULL if out of memory),
        for populate_front by the code that fills it; quiesced whenever it moves."""
        if self.ahead == NULL:
            self.ahead = populator_new()
        return self.ahead

    def __dealloc__(self):
        with nogil:
            populator_free(self.ahead)         # joined before the mapping can go
        self.ahead = NULL
        if self.p != NULL:
            _grow_release(self.p, self.mapped, self.dirty, self.huge)
            self.p = NULL
