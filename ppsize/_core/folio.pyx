"""Folio metadata per frame, struct-of-arrays.

Mirrors what Linux keeps in struct page / struct folio for a folio of 2**order
frames (include/linux/mm_types.h, include/linux/page-flags.h):

- ``order``: on the head frame the folio order (folio_order); on a tail frame
  FOLIO_TAIL_BASE - order (PageTail, with compound_head() derived from the order
  and the pfn's alignment instead of a stored pointer); FOLIO_NONE (-1) elsewhere.
- ``refcount`` (folio_ref_count, on the head; 0 on tails as Linux requires),
- ``mapcount`` per page (page_mapcount; stored as Linux's _mapcount + 1),
- ``flags`` (folio flags, on the head), ``owner`` (the folio's mapping or anon
  owner, an int32 id; -1 none), ``index`` (folio->index: file page index, or the
  anon VA >> PAGE_SHIFT).

23 bytes per frame, from the shared per-frame allocator (framemem): a kernel's
frames that its buddy has not handed out yet are filled (-1 markers) when it
first does (their host pages cost nothing before).
"""
import numpy as np

from libc.errno cimport EEXIST, EINVAL
from libc.string cimport memcpy, memset

from ppsize._validate import as_int, as_order

from ppsize._core._types cimport i64, i32, i8, u16, u64
from ppsize._core.framemem cimport FrameMem

FOLIO_FLAGS = {
    "locked": PG_locked, "uptodate": PG_uptodate, "dirty": PG_dirty, "lru": PG_lru,
    "active": PG_active, "referenced": PG_referenced, "writeback": PG_writeback,
    "swapbacked": PG_swapbacked, "anon": PG_anon, "zero": PG_zero,
    "mlocked": PG_mlocked, "reclaim": PG_reclaim, "workingset": PG_workingset,
}
_ALL_FLAGS = 0
for _v in FOLIO_FLAGS.values():
    _ALL_FLAGS |= _v
PY_FOLIO_TAIL_BASE = FOLIO_TAIL_BASE
PY_FOLIO_NONE = FOLIO_NONE

FOLIO_DTYPE = np.dtype([("order", np.int8), ("refcount", np.int32), ("mapcount", np.int32),
                        ("flags", np.uint16), ("owner", np.int32), ("index", np.int64)])


def flag_mask(flags):
    """A flag bitmask from an int or an iterable of names ("anon", "dirty", ...)."""
    if isinstance(flags, (bool, np.bool_)):
        raise TypeError(f"flags must be an int or flag names, not bool ({flags!r})")
    if isinstance(flags, (int, np.integer)):
        m = int(flags)
        if m < 0 or m & ~_ALL_FLAGS:
            raise ValueError(f"flags {m:#x} has bits outside the known flags {_ALL_FLAGS:#x}")
        return m
    if isinstance(flags, str):
        flags = (flags,)
    m = 0
    for name in flags:
        if not isinstance(name, str):
            raise TypeError(f"flag names must be str, not {type(name).__name__} ({name!r})")
        key = name.strip().lower().removeprefix("pg_")
        if key not in FOLIO_FLAGS:
            raise ValueError(f"unknown folio flag {name!r}; known: {', '.join(FOLIO_FLAGS)}")
        m |= FOLIO_FLAGS[key]
    return m


def flag_names(mask):
    """Names of the flags set in mask."""
    return [n for n, v in FOLIO_FLAGS.items() if mask & v]


cdef class FolioTable:
    """FolioTable(nr_pages, frames=None): folio metadata for frames 0..nr_pages-1,
    all free. ``frames``: the kernel's FrameMem, whose lazy frames (never handed out
    by its buddy) get their -1 markers only when first used; None: a table of
    its own."""

    def __cinit__(self, nr_pages, FrameMem frames=None):
        nr_pages = as_int(nr_pages, "nr_pages")
        if nr_pages < 1:
            raise ValueError(f"nr_pages must be >= 1, got {nr_pages}")
        if frames is None:
            frames = FrameMem(nr_pages)
        elif frames.nr_pages != nr_pages:
            raise ValueError(f"frames cover {frames.nr_pages} frames, not nr_pages={nr_pages}")
        self.nr_pages = nr_pages
        self.frames = frames
        # FOLIO_NONE (-1) and owner -1 are all-ones bytes: 0xFF fills
        self._order_a = frames.array(np.int8, 0xFF)
        self._ref_a = frames.array(np.int32)
        self._map_a = frames.array(np.int32)
        self._flags_a = frames.array(np.uint16)
        self._owner_a = frames.array(np.int32, 0xFF)
        self._index_a = frames.array(np.int64)
        cdef i8[::1] o = self._order_a
        cdef i32[::1] r = self._ref_a
        cdef i32[::1] m = self._map_a
        cdef u16[::1] f = self._flags_a
        cdef i32[::1] w = self._owner_a
        cdef i64[::1] x = self._index_a
        self.order_ = &o[0]
        self.refcount = &r[0]
        self.mapcount = &m[0]
        self.flags = &f[0]
        self.owner = &w[0]
        self.index = &x[0]

    # ---------------------------------------------------------------- C level
    cdef int folio_init(self, i64 pfn, int order, u16 flags, i32 owner, i64 index) noexcept nogil:
        """Make frames pfn .. pfn + 2**order - 1 one folio (prep_compound_page +
        folio_ref 1). -EINVAL if misaligned / out of range, -EEXIST if a
        frame already belongs to a folio (nothing is changed then)."""
        cdef i64 i, nr
        cdef u64 word
        if order < 0 or order > 30 or pfn < 0:
            return -EINVAL
        nr = <i64>1 << order
        if pfn & (nr - 1) or pfn + nr > self.nr_pages:
            return -EINVAL
        # every frame free of folios: FOLIO_NONE (-1) is all-ones, 8 frames a word
        # (an aligned folio of 8 or more frames starts on a word)
        i = pfn
        if nr >= 8:
            while i < pfn + nr:
                memcpy(&word, &self.order_[i], 8)       # one load, no aliasing games
                if word != ~(<u64>0):
                    return -EEXIST
                i += 8
        else:
            for i in range(pfn, pfn + nr):
                if self.order_[i] != FOLIO_NONE:
                    return -EEXIST
        self.order_[pfn] = <i8>order
        self.refcount[pfn] = 1
        self.flags[pfn] = flags
        self.owner[pfn] = owner
        self.index[pfn] = index
        if nr > 1:                                           # prep_compound_tail
            memset(&self.order_[pfn + 1], <i8>(FOLIO_TAIL_BASE - order), <size_t>(nr - 1))
        self.nr_folios += 1
        self.nr_folio_pages += nr
        return 0

    cdef int folio_free(self, i64 pfn) noexcept nogil:
        """Clear the folio whose head is pfn (free_pages_prepare); returns its order,
        or -EINVAL if pfn is not a folio head."""
        cdef int order
        cdef i64 i, nr
        if pfn < 0 or pfn >= self.nr_pages or self.order_[pfn] < 0:
            return -EINVAL
        order = self.order_[pfn]
        nr = <i64>1 << order
        for i in range(pfn, pfn + nr):
            self.order_[i] = FOLIO_NONE
            self.refcount[i] = 0
            self.mapcount[i] = 0
            self.flags[i] = 0
            self.owner[i] = -1
            self.index[i] = 0
        self.nr_folios -= 1
        self.nr_folio_pages -= nr
        return order

    cdef int folio_split(self, i64 pfn, int new_order) noexcept nogil:
        """Split the folio at head pfn into folios of new_order (as
        __split_unmapped_folio): each new head gets the flags, owner and refcount of
        the old head and index + offset; per-page mapcounts stay."""
        cdef int order
        cdef i64 i, j, nr, step
        if pfn < 0 or pfn >= self.nr_pages or self.order_[pfn] < 0:
            return -EINVAL
        order = self.order_[pfn]
        if new_order < 0 or new_order > order:
            return -EINVAL
        nr = <i64>1 << order
        step = <i64>1 << new_order
        i = pfn + step
        while i < pfn + nr:
            self.order_[i] = <i8>new_order
            self.refcount[i] = self.refcount[pfn]
            self.flags[i] = self.flags[pfn]
            self.owner[i] = self.owner[pfn]
            self.index[i] = self.index[pfn] + (i - pfn)
            for j in range(i + 1, i + step):
                self.order_[j] = <i8>(FOLIO_TAIL_BASE - new_order)
            i += step
        self.order_[pfn] = <i8>new_order
        for j in range(pfn + 1, pfn + step):
            self.order_[j] = <i8>(FOLIO_TAIL_BASE - new_order)
        self.nr_folios += (nr >> new_order) - 1
        return 0

    cdef i64 folio_head(self, i64 pfn) noexcept nogil:
        """compound_head(): head pfn of the folio holding pfn, or -1 (folios are
        aligned to their order, so the head is pfn rounded down to it)."""
        cdef int o = self.folio_order(pfn)
        if o < 0:
            return -1
        return pfn & ~((<i64>1 << o) - 1)

    cdef int folio_order(self, i64 pfn) noexcept nogil:
        """folio_order(page_folio(pfn)), or -1 if pfn is in no folio."""
        cdef i8 o
        if pfn < 0 or pfn >= self.nr_pages:
            return -1
        o = self.order_[pfn]
        if o >= 0:
            return o
        if o == FOLIO_NONE:
            return -1
        return FOLIO_TAIL_BASE - o

    cdef i32 ref_add(self, i64 pfn, i32 delta) noexcept nogil:
        """folio_ref_add on the folio holding pfn; returns the new count (-1 if none)."""
        cdef i64 h = self.folio_head(pfn)
        if h < 0:
            return -1
        self.refcount[h] += delta
        return self.refcount[h]

    cdef i32 mapcount_add(self, i64 pfn, i32 delta) noexcept nogil:
        """Per-page mapcount += delta (a PTE mapping this page added/removed)."""
        if pfn < 0 or pfn >= self.nr_pages:
            return -1
        self.mapcount[pfn] += delta
        return self.mapcount[pfn]

    cdef i64 folio_mapcount(self, i64 pfn) noexcept nogil:
        """Sum of the page mapcounts of the folio holding pfn (folio_mapcount)."""
        cdef i64 h = self.folio_head(pfn), i, total = 0
        if h < 0:
            return -1
        for i in range(h, h + (<i64>1 << self.order_[h])):
            total += self.mapcount[i]
        return total

    cdef void set_flags(self, i64 pfn, u16 mask) noexcept nogil:
        cdef i64 h = self.folio_head(pfn)
        if h >= 0:
            self.flags[h] |= mask

    cdef void clear_flags(self, i64 pfn, u16 mask) noexcept nogil:
        cdef i64 h = self.folio_head(pfn)
        if h >= 0:
            self.flags[h] &= ~mask

    cdef bint test_flags(self, i64 pfn, u16 mask) noexcept nogil:
        """True if every flag of mask is set on the folio holding pfn."""
        cdef i64 h = self.folio_head(pfn)
        return h >= 0 and (self.flags[h] & mask) == mask

    # ---------------------------------------------------------- Python level
    def _ready(self):
        # frames the buddy has not handed out yet hold no markers: write them
        # before Python looks at arbitrary frames (C callers only see used frames)
        if self.frames.lazy_lo < self.frames.lazy_hi:
            self.frames.prepare_all()

    def _pfn(self, pfn):
        pfn = as_int(pfn, "pfn")
        if pfn < 0 or pfn >= self.nr_pages:
            raise ValueError(f"pfn {pfn} outside memory (0..{self.nr_pages - 1})")
        if self.frames.lazy_lo <= pfn < self.frames.lazy_hi:
            self.frames.prepare_all()
        return pfn

    def _head(self, pfn):
        pfn = self._pfn(pfn)
        h = self.folio_head(pfn)
        if h < 0:
            raise ValueError(f"pfn {pfn} is not part of a folio")
        return h

    def init(self, pfn, order, flags=0, owner=-1, index=0):
        """Create a folio of 2**order frames at pfn (ValueError naming the pfn if it
        is misaligned, runs past memory or overlaps another folio)."""
        pfn = self._pfn(pfn)
        order = as_order(order, "order", 30)
        if pfn & ((1 << order) - 1):
            raise ValueError(f"pfn {pfn} is not aligned to order {order}")
        if pfn + (1 << order) > self.nr_pages:
            raise ValueError(f"folio at pfn {pfn} of order {order} runs past memory ({self.nr_pages} pages)")
        m = flag_mask(flags)
        owner = as_int(owner, "owner")
        if not -1 <= owner < 2**31:
            raise ValueError(f"owner {owner} out of range -1..2**31-1")
        index = as_int(index, "index")
        if not -2**63 <= index < 2**63:
            raise ValueError(f"index {index} does not fit int64")
        r = self.folio_init(pfn, order, m, owner, index)
        if r == -EEXIST:
            busy = next(i for i in range(pfn, pfn + (1 << order)) if self._order_a[i] != FOLIO_NONE)
            raise ValueError(f"cannot create an order-{order} folio at pfn {pfn}: pfn {busy} "
                             f"already belongs to the folio at pfn {self.folio_head(busy)}")
        return pfn

    def free(self, pfn):
        """Clear the folio whose head is pfn; returns its order."""
        pfn = self._pfn(pfn)
        if self.order_[pfn] < 0:
            h = self.folio_head(pfn)
            why = "it is in no folio" if h < 0 else f"it is a tail of the folio at pfn {h}"
            raise ValueError(f"cannot free pfn {pfn}: not a folio head ({why})")
        return self.folio_free(pfn)

    def split(self, pfn, new_order):
        """Split the folio at head pfn into folios of new_order."""
        pfn = self._pfn(pfn)
        new_order = as_int(new_order, "new_order")
        if self.order_[pfn] < 0:
            raise ValueError(f"cannot split pfn {pfn}: not a folio head")
        if new_order < 0 or new_order > self.order_[pfn]:
            raise ValueError(f"new_order {new_order} out of range 0..{self.order_[pfn]} "
                             f"for the folio at pfn {pfn}")
        self.folio_split(pfn, new_order)

    def head(self, pfn):
        """Head pfn of the folio holding pfn, or -1."""
        return self.folio_head(self._pfn(pfn))

    def order(self, pfn):
        """Order of the folio holding pfn, or -1."""
        return self.folio_order(self._pfn(pfn))

    def get(self, pfn, n=1):
        """folio_ref_add(n); returns the new refcount."""
        h = self._head(pfn)
        return self.ref_add(h, as_int(n, "n"))

    def put(self, pfn, n=1):
        """folio_ref_sub(n); returns the new refcount (ValueError below zero)."""
        h = self._head(pfn)
        n = as_int(n, "n")
        if self.refcount[h] - n < 0:
            raise ValueError(f"refcount of the folio at pfn {h} would drop below 0 "
                             f"({self.refcount[h]} - {n})")
        return self.ref_add(h, -n)

    def map(self, pfn, n=1):
        """Page mapcount of pfn += n (ValueError outside a folio or below 0)."""
        self._head(pfn)
        n = as_int(n, "n")
        if self.mapcount[pfn] + n < 0:
            raise ValueError(f"mapcount of pfn {pfn} would drop below 0 ({self.mapcount[pfn]} + {n})")
        return self.mapcount_add(pfn, n)

    def mapcount_of(self, pfn):
        """folio_mapcount of the folio holding pfn."""
        return self.folio_mapcount(self._head(pfn))

    def set(self, pfn, flags):
        self.set_flags(self._head(pfn), flag_mask(flags))

    def clear(self, pfn, flags):
        self.clear_flags(self._head(pfn), flag_mask(flags))

    def test(self, pfn, flags):
        return bool(self.test_flags(self._head(pfn), flag_mask(flags)))

    def info(self, pfn):
        """The folio holding pfn as a dict (None if pfn is in no folio)."""
        pfn = self._pfn(pfn)
        h = self.folio_head(pfn)
        if h < 0:
            return None
        return {"head": h, "order": self.order_[h], "refcount": self.refcount[h],
                "mapcount": self.folio_mapcount(h), "flags": flag_names(self.flags[h]),
                "owner": self.owner[h], "index": self.index[h]}

    def as_numpy(self, used_only=False):
        """Read-only views of the per-frame arrays: order (head order / tail marker
        FOLIO_TAIL_BASE - order / -1), refcount, mapcount, flags, owner, index.
        ``used_only``: the caller reads only frames of live folios, so frames the
        kernel's buddy never handed out need not get their -1 markers first."""
        if not used_only:
            self._ready()
        out = {}
        for name, a in (("order", self._order_a), ("refcount", self._ref_a),
                        ("mapcount", self._map_a), ("flags", self._flags_a),
                        ("owner", self._owner_a), ("index", self._index_a)):
            v = a.view()
            v.flags.writeable = False
            out[name] = v
        return out

    def view(self, start=0, stop=None):
        """A structured-array copy (FOLIO_DTYPE) of frames start..stop."""
        stop = self.nr_pages if stop is None else stop
        if not 0 <= start <= stop <= self.nr_pages:
            raise ValueError(f"frames {start}..{stop} are not a range inside 0..{self.nr_pages}")
        self._ready()
        out = np.empty(len(range(start, stop)), dtype=FOLIO_DTYPE)
        for name, a in (("order", self._order_a), ("refcount", self._ref_a),
                        ("mapcount", self._map_a), ("flags", self._flags_a),
                        ("owner", self._owner_a), ("index", self._index_a)):
            out[name] = a[start:stop]
        return out

    def heads(self):
        """pfns of all folio heads, ascending."""
        self._ready()
        return np.flatnonzero(self._order_a >= 0)

    def head_of(self, pfns):
        """compound_head() of every pfn of an integer array (one nogil loop): the
        head pfn of its folio, -1 where the frame is in no folio or out of range."""
        cdef const i64[::1] src = np.ascontiguousarray(pfns, dtype=np.int64)
        self._ready()
        out = np.empty(src.shape[0], dtype=np.int64)
        cdef i64[::1] dst = out
        cdef Py_ssize_t i
        with nogil:
            for i in range(src.shape[0]):
                dst[i] = self.folio_head(src[i])
        return out

    @property
    def bytes_per_frame(self):
        return 1 + 4 + 4 + 2 + 4 + 8

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self._order_a, self._ref_a, self._map_a,
                                      self._flags_a, self._owner_a, self._index_a))

    def check(self):
        """Verify: every head is aligned and inside memory, its tail frames carry the
        tail marker of its order (so compound_head() finds it), no stray tails,
        tails and free frames hold no refcount/flags/owner/index, refcounts and
        mapcounts are >= 0, nr_folios and nr_folio_pages equal a recount. Raises
        AssertionError naming the first bad pfn."""
        cdef i64 pfn = 0, nr, i, nf = 0, npg = 0
        cdef i8 o
        self._ready()
        while pfn < self.nr_pages:
            o = self.order_[pfn]
            if o == FOLIO_NONE:
                if (self.refcount[pfn] or self.mapcount[pfn] or self.flags[pfn]
                        or self.owner[pfn] != -1 or self.index[pfn]):
                    raise AssertionError(f"pfn {pfn} is in no folio but has refcount "
                                         f"{self.refcount[pfn]}, mapcount {self.mapcount[pfn]}, "
                                         f"flags {self.flags[pfn]:#x}, owner {self.owner[pfn]}, "
                                         f"index {self.index[pfn]}")
                pfn += 1
                continue
            if o < 0:
                raise AssertionError(f"pfn {pfn} is a tail (of an order-{FOLIO_TAIL_BASE - o} folio) "
                                     f"but its head {self.folio_head(pfn)} is not the folio "
                                     "before it")
            nr = <i64>1 << o
            if pfn & (nr - 1):
                raise AssertionError(f"folio at pfn {pfn} of order {o} is not aligned")
            if pfn + nr > self.nr_pages:
                raise AssertionError(f"folio at pfn {pfn} of order {o} runs past memory")
            if self.refcount[pfn] < 0:
                raise AssertionError(f"folio at pfn {pfn} has refcount {self.refcount[pfn]} < 0")
            if self.flags[pfn] & ~_ALL_FLAGS:
                raise AssertionError(f"folio at pfn {pfn} has unknown flags {self.flags[pfn]:#x}")
            for i in range(pfn, pfn + nr):
                if self.mapcount[i] < 0:
                    raise AssertionError(f"pfn {i} has mapcount {self.mapcount[i]} < 0")
                if i == pfn:
                    continue
                if self.order_[i] != FOLIO_TAIL_BASE - o:
                    raise AssertionError(f"pfn {i} inside the order-{o} folio at pfn {pfn} has "
                                         f"order marker {self.order_[i]}, expected the tail "
                                         f"marker {FOLIO_TAIL_BASE - o}")
                if self.folio_head(i) != pfn:
                    raise AssertionError(f"tail pfn {i} resolves to head {self.folio_head(i)}, not {pfn}")
                if self.refcount[i] or self.flags[i] or self.owner[i] != -1 or self.index[i]:
                    raise AssertionError(f"tail pfn {i} of the folio at pfn {pfn} has refcount "
                                         f"{self.refcount[i]}, flags {self.flags[i]:#x}, owner "
                                         f"{self.owner[i]}, index {self.index[i]} (must be "
                                         "0/0/-1/0: they live on the head)")
            nf += 1
            npg += nr
            pfn += nr
        if nf != self.nr_folios or npg != self.nr_folio_pages:
            raise AssertionError(f"counters say {self.nr_folios} folios / {self.nr_folio_pages} "
                                 f"pages, recount {nf} / {npg}")
        return True
