"""VMAs of one address space as a sorted struct-of-arrays table.

Row i is one VMA [start, end) with Linux's vm_flags, vm_pgoff (in kernel pages),
a file id (-1 for anonymous memory) and an anon_vma id (0 until the first write
fault, as vma->anon_vma). Rows are sorted and non-overlapping; boundaries are
multiples of the process page size ``align``.

``find`` is the nogil O(log n) lookup the fault loop uses (find_vma + the
vm_start check of vma_lookup). The Python methods mirror mm/vma.c (Linux 6.12-6.18):

- ``insert``   = vma_merge_new_range / vma_expand, else a new VMA (vma_link)
- ``remove_range`` = do_vmi_align_munmap's gather (__split_vma at both ends)
- ``modify``   = vma_modify_flags: vma_merge_existing_range, else split_vma
- ``split``    = __split_vma

Merging follows can_vma_merge_before/after: equal flags (ignoring VM_SOFTDIRTY),
no VM_SPECIAL, same file, contiguous pgoff, and is_mergeable_anon_vma as rewritten
in Linux 6.16 (879bca0a2c4f "mm/vma: fix incorrectly disallowed anonymous VMA
merges"): with no fork modelled, either side without an anon_vma or the same one.
(Before 6.16 a faulted range could not join a neighbour without an anon_vma; the
live test shows the running 6.18 kernel merging it.) The surviving VMA inherits the
anon_vma (dup_anon_vma).
Limits (max_map_count) are checked by the callers (ppsize.abi) where Linux checks
them, except split_vma's check, which ``modify`` takes as ``max_count``.
"""
import errno
import os

import numpy as np

cimport cython
from libc.string cimport memmove

from ppsize._core._types cimport u64, i64, i32

__all__ = ["VmaTable", "VM_FLAGS", "VMA_DTYPE"]

# name -> value, for Python code (ppsize.abi, tests, reports)
VM_FLAGS = {
    "VM_NONE": VM_NONE, "VM_READ": VM_READ, "VM_WRITE": VM_WRITE, "VM_EXEC": VM_EXEC,
    "VM_SHARED": VM_SHARED, "VM_MAYREAD": VM_MAYREAD, "VM_MAYWRITE": VM_MAYWRITE,
    "VM_MAYEXEC": VM_MAYEXEC, "VM_MAYSHARE": VM_MAYSHARE, "VM_GROWSDOWN": VM_GROWSDOWN,
    "VM_PFNMAP": VM_PFNMAP, "VM_LOCKED": VM_LOCKED, "VM_IO": VM_IO,
    "VM_SEQ_READ": VM_SEQ_READ, "VM_RAND_READ": VM_RAND_READ, "VM_DONTCOPY": VM_DONTCOPY,
    "VM_DONTEXPAND": VM_DONTEXPAND, "VM_LOCKONFAULT": VM_LOCKONFAULT,
    "VM_ACCOUNT": VM_ACCOUNT, "VM_NORESERVE": VM_NORESERVE, "VM_HUGETLB": VM_HUGETLB,
    "VM_SOFTDIRTY": VM_SOFTDIRTY, "VM_MIXEDMAP": VM_MIXEDMAP, "VM_HUGEPAGE": VM_HUGEPAGE,
    "VM_NOHUGEPAGE": VM_NOHUGEPAGE, "VM_ACCESS_FLAGS": VM_ACCESS_FLAGS,
    "VM_SPECIAL": VM_SPECIAL, "VM_LOCKED_MASK": VM_LOCKED_MASK,
}

VMA_DTYPE = np.dtype([("start", np.uint64), ("end", np.uint64), ("flags", np.uint64),
                      ("pgoff", np.uint64), ("file", np.int32), ("anon", np.int32)])

# storage columns: VMA_DTYPE's and faults (anonymous faults in the VMA, for the order
# hooks: a split's parts both keep the count, a VMA merged away adds its count to the
# one that absorbs it; kept out of rows and as_array)
_FIELDS = (("start", np.uint64), ("end", np.uint64), ("flags", np.uint64),
           ("pgoff", np.uint64), ("file", np.int32), ("anon", np.int32), ("faults", np.int64))


cdef inline bint _flags_eq(u64 a, u64 b) noexcept nogil:
    # is_mergeable_vma: VM_SOFTDIRTY does not prevent merging
    return ((a ^ b) & ~(<u64>VM_SOFTDIRTY)) == 0


cdef inline bint _anon_ok(i32 a_new, i32 a_vma) noexcept nogil:
    # is_mergeable_anon_vma (6.16+): one side without an anon_vma is fine unless the
    # other is a fork child (vma_is_fork_child; no fork here), else they must match
    return a_new == 0 or a_vma == 0 or a_new == a_vma


cdef inline bint _anon_pair_ok(i32 a1, i32 a2) noexcept nogil:
    # are_anon_vmas_compatible -> is_mergeable_anon_vma(a1, a2, NULL)
    return a1 == 0 or a2 == 0 or a1 == a2


cdef class VmaTable:
    """Sorted VMAs of one address space (see the module docstring).

    ``align`` is the process page size P (every boundary a multiple of it);
    ``pgoff_shift`` the kernel PAGE_SHIFT, the unit of vm_pgoff."""

    def __cinit__(self, align=4096, pgoff_shift=12, capacity=16):
        align = int(align)
        if align <= 0 or align & (align - 1):
            raise ValueError(f"align must be a power of two, got {align!r}")
        pgoff_shift = int(pgoff_shift)
        if not 0 <= pgoff_shift < 64 or (1 << pgoff_shift) > align:
            raise ValueError(f"pgoff_shift {pgoff_shift!r} must name a page no larger than align {align}")
        self.align = align
        self.pgoff_shift = pgoff_shift
        self.n = 0
        self.capacity = 0
        self._head = 0
        self._arrays = {}
        self._reserve(max(1, int(capacity)))

    # ------------------------------------------------------------ storage
    # Rows live at [head, head + n) of the NumPy arrays and the raw pointers point
    # at row 0, so an insert or delete shifts the shorter side: top-down mmap adds
    # VMAs below the others, and those front inserts cost O(1) amortised.
    cdef int _reserve(self, i64 extra) except -1:
        """Reallocate with room for ``extra`` more rows, the rows centred."""
        cdef i64 need = self.n + extra
        cdef i64 cap = max(self.capacity, 8)
        while cap < 2 * need + 2:                # at most half full: room at both ends
            cap *= 2
        cdef i64 head = (cap - self.n) // 2
        arrays = {}
        for name, dt in _FIELDS:
            a = np.zeros(cap, dtype=dt)
            if self.n:
                a[head:head + self.n] = self._arrays[name][self._head:self._head + self.n]
            arrays[name] = a
        self._arrays = arrays
        cdef u64[::1] s = arrays["start"]
        cdef u64[::1] e = arrays["end"]
        cdef u64[::1] f = arrays["flags"]
        cdef u64[::1] p = arrays["pgoff"]
        cdef i32[::1] fi = arrays["file"]
        cdef i32[::1] an = arrays["anon"]
        cdef i64[::1] fa = arrays["faults"]
        self.start = &s[0] + head
        self.end = &e[0] + head
        self.flags = &f[0] + head
        self.pgoff = &p[0] + head
        self.file = &fi[0] + head
        self.anon = &an[0] + head
        self.faults = &fa[0] + head
        self._head = head
        self.capacity = cap
        return 0

    cdef int _insert_row(self, i64 i, u64 s, u64 e, u64 f, u64 pg, i32 fi, i32 an) except -1:
        # internal assertions (compiled in with PPSIZE_DEBUG=1): the row keeps order
        assert 0 <= i <= self.n and s < e
        assert i == 0 or self.end[i - 1] <= s
        assert i == self.n or e <= self.start[i]
        cdef bint front = i < self.n - i
        if front and self._head == 0 or not front and self._head + self.n >= self.capacity:
            self._reserve(1)
        cdef i64 m
        if front:
            # shift rows [0, i) one slot down into the head room
            if i > 0:
                memmove(self.start - 1, self.start, i * sizeof(u64))
                memmove(self.end - 1, self.end, i * sizeof(u64))
                memmove(self.flags - 1, self.flags, i * sizeof(u64))
                memmove(self.pgoff - 1, self.pgoff, i * sizeof(u64))
                memmove(self.file - 1, self.file, i * sizeof(i32))
                memmove(self.anon - 1, self.anon, i * sizeof(i32))
                memmove(self.faults - 1, self.faults, i * sizeof(i64))
            self.start -= 1
            self.end -= 1
            self.flags -= 1
            self.pgoff -= 1
            self.file -= 1
            self.anon -= 1
            self.faults -= 1
            self._head -= 1
        else:
            m = self.n - i
            if m > 0:
                memmove(&self.start[i + 1], &self.start[i], m * sizeof(u64))
                memmove(&self.end[i + 1], &self.end[i], m * sizeof(u64))
                memmove(&self.flags[i + 1], &self.flags[i], m * sizeof(u64))
                memmove(&self.pgoff[i + 1], &self.pgoff[i], m * sizeof(u64))
                memmove(&self.file[i + 1], &self.file[i], m * sizeof(i32))
                memmove(&self.anon[i + 1], &self.anon[i], m * sizeof(i32))
                memmove(&self.faults[i + 1], &self.faults[i], m * sizeof(i64))
        self.start[i] = s
        self.end[i] = e
        self.flags[i] = f
        self.pgoff[i] = pg
        self.file[i] = fi
        self.anon[i] = an
        self.faults[i] = 0
        self.n += 1
        return 0

    cdef void _delete_rows(self, i64 i, i64 count) noexcept nogil:
        cdef i64 m = self.n - i - count
        if m < 0 or i < 0 or count < 0:     # cannot raise here: clamp (a bug if reached)
            return
        if i < m:
            # shift rows [0, i) up over the deleted ones
            if i > 0:
                memmove(self.start + count, self.start, i * sizeof(u64))
                memmove(self.end + count, self.end, i * sizeof(u64))
                memmove(self.flags + count, self.flags, i * sizeof(u64))
                memmove(self.pgoff + count, self.pgoff, i * sizeof(u64))
                memmove(self.file + count, self.file, i * sizeof(i32))
                memmove(self.anon + count, self.anon, i * sizeof(i32))
                memmove(self.faults + count, self.faults, i * sizeof(i64))
            self.start += count
            self.end += count
            self.flags += count
            self.pgoff += count
            self.file += count
            self.anon += count
            self.faults += count
            self._head += count
        elif m > 0:
            memmove(&self.start[i], &self.start[i + count], m * sizeof(u64))
            memmove(&self.end[i], &self.end[i + count], m * sizeof(u64))
            memmove(&self.flags[i], &self.flags[i + count], m * sizeof(u64))
            memmove(&self.pgoff[i], &self.pgoff[i + count], m * sizeof(u64))
            memmove(&self.file[i], &self.file[i + count], m * sizeof(i32))
            memmove(&self.anon[i], &self.anon[i + count], m * sizeof(i32))
            memmove(&self.faults[i], &self.faults[i + count], m * sizeof(i64))
        self.n -= count

    # ------------------------------------------------------------ lookup
    cdef i64 lower_bound(self, u64 addr) noexcept nogil:
        """Index of the first VMA with end > addr (find_vma), n if none."""
        cdef i64 lo = 0
        cdef i64 hi = self.n
        cdef i64 mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.end[mid] > addr:
                hi = mid
            else:
                lo = mid + 1
        return lo

    cdef i64 find(self, u64 addr) noexcept nogil:
        """Index of the VMA containing addr, or -1 (vma_lookup)."""
        cdef i64 i = self.lower_bound(addr)
        if i < self.n and self.start[i] <= addr:
            return i
        return -1

    def lookup(self, addr):
        """Index of the VMA containing ``addr`` or -1 (vma_lookup)."""
        return self.find(<u64>addr)

    def find_vma(self, addr):
        """Index of the first VMA ending above ``addr`` (find_vma), or -1."""
        cdef i64 i = self.lower_bound(<u64>addr)
        return i if i < self.n else -1

    @cython.boundscheck(False)
    def find_many(self, addrs):
        """``lookup`` for a uint64 array of addresses, in one nogil loop."""
        cdef u64[::1] a = np.ascontiguousarray(addrs, dtype=np.uint64)
        out = np.empty(a.shape[0], dtype=np.int64)
        cdef i64[::1] o = out
        cdef Py_ssize_t k
        with nogil:
            for k in range(a.shape[0]):
                o[k] = self.find(a[k])
        return out

    def highest_gap(self, low, high, length):
        """mas_empty_area_rev: the highest free range inside [low, high) at least
        ``length`` long, as (gap_start, gap_end, index of the VMA after the gap or
        -1), clipped to [low, high); None if there is none."""
        return self._find_gap(low, high, length, True)

    def lowest_gap(self, low, high, length):
        """mas_empty_area: the lowest free range inside [low, high) at least
        ``length`` long, as highest_gap returns it."""
        return self._find_gap(low, high, length, False)

    cdef object _find_gap(self, u64 lo, u64 hi, u64 ln, bint top):
        # the gaps between VMAs j - 1 and j (0 and hi at the ends) clipped to [lo, hi),
        # from the top down or the bottom up, until one holds ln bytes
        cdef u64 gs, ge
        cdef i64 j
        if hi <= lo or hi - lo < ln:
            return None
        j = self.lower_bound(hi if top else lo)
        while 0 <= j <= self.n:
            gs = self.end[j - 1] if j > 0 else 0
            if not top and gs >= hi:
                break
            ge = self.start[j] if j < self.n else hi
            if ge > hi:
                ge = hi
            if gs < lo:
                gs = lo
            if ge > gs and ge - gs >= ln:
                return (int(gs), int(ge), int(j) if j < self.n else -1)
            if top and j > 0 and self.end[j - 1] <= lo:
                break
            j += -1 if top else 1
        return None

    def __len__(self):
        return self.n

    def row(self, i):
        """(start, end, flags, pgoff, file, anon) of VMA ``i``."""
        i = int(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"VMA index {i} out of range for {self.n} VMAs")
        return (int(self.start[i]), int(self.end[i]), int(self.flags[i]),
                int(self.pgoff[i]), int(self.file[i]), int(self.anon[i]))

    def rows(self, lo=0, hi=None):
        """List of row tuples of the VMAs intersecting [lo, hi)."""
        cdef i64 i = self.lower_bound(<u64>lo)
        out = []
        while i < self.n and (hi is None or self.start[i] < <u64>hi):
            out.append(self.row(i))
            i += 1
        return out

    def __iter__(self):
        return iter(self.rows())

    def as_array(self):
        """Copy of the table as a structured array (VMA_DTYPE)."""
        out = np.empty(self.n, dtype=VMA_DTYPE)
        for name in VMA_DTYPE.names:
            out[name] = self._arrays[name][self._head:self._head + self.n]
        return out

    def arrays(self):
        """Read-only views of the live columns (valid until the next change)."""
        out = {}
        for name in VMA_DTYPE.names:
            v = self._arrays[name][self._head:self._head + self.n]
            v.flags.writeable = False
            out[name] = v
        return out

    # ------------------------------------------------------------ helpers
    cdef u64 _pages(self, u64 length) noexcept nogil:
        return length >> self.pgoff_shift

    cdef bint _can_merge_after(self, i64 p, u64 s, u64 f, i32 fi, i32 an, u64 pg) noexcept nogil:
        # can_vma_merge_left: prev ends at s and can_vma_merge_after
        return (self.end[p] == s and _flags_eq(self.flags[p], f) and self.file[p] == fi
                and _anon_ok(an, self.anon[p])
                and self.pgoff[p] + self._pages(self.end[p] - self.start[p]) == pg)

    cdef bint _can_merge_before(self, i64 q, u64 e, u64 f, i32 fi, i32 an, u64 pg, u64 pglen) noexcept nogil:
        # can_vma_merge_right's first half: next starts at e and can_vma_merge_before
        return (self.start[q] == e and _flags_eq(self.flags[q], f) and self.file[q] == fi
                and _anon_ok(an, self.anon[q]) and self.pgoff[q] == pg + pglen)

    cdef void _check_args(self, u64 s, u64 e) except *:
        if s >= e:
            raise ValueError(f"empty or inverted range [{s:#x}, {e:#x})")
        if s % self.align or e % self.align:
            raise ValueError(f"range [{s:#x}, {e:#x}) not aligned to {self.align:#x}")

    # ------------------------------------------------------------ operations
    def insert(self, start, end, flags, pgoff=0, file=-1, anon=0, merge=True):
        """Map [start, end) (which must be free): merge with the neighbours as
        vma_merge_new_range, else add a VMA (vma_link). Returns the index of the
        VMA now covering the range."""
        cdef u64 s = start, e = end, f = flags, pg = pgoff
        cdef i32 fi = file, an = anon
        self._check_args(s, e)
        cdef i64 i = self.lower_bound(s)
        if i < self.n and self.start[i] < e:
            raise ValueError(f"[{s:#x}, {e:#x}) overlaps VMA {self.row(i)}")
        cdef u64 pglen = self._pages(e - s)
        cdef bint left = False, right = False
        if merge and not (f & VM_SPECIAL):
            left = i > 0 and self._can_merge_after(i - 1, s, f, fi, an, pg)
            right = i < self.n and self._can_merge_before(i, e, f, fi, an, pg, pglen)
            if right and left:
                right = _anon_pair_ok(self.anon[i - 1], self.anon[i])
        if left and right:
            # vma_expand over next: prev grows to next's end, next removed;
            # dup_anon_vma(prev, next), else the copied range's (copy_vma)
            self.end[i - 1] = self.end[i]
            if self.anon[i - 1] == 0:
                self.anon[i - 1] = self.anon[i] if self.anon[i] else an
            self.faults[i - 1] += self.faults[i]
            self._delete_rows(i, 1)
            return i - 1
        if left:
            self.end[i - 1] = e
            if self.anon[i - 1] == 0:
                self.anon[i - 1] = an
            return i - 1
        if right:
            self.start[i] = s
            self.pgoff[i] = pg
            if self.anon[i] == 0:
                self.anon[i] = an
            return i
        self._insert_row(i, s, e, f, pg, fi, an)
        return i

    def split(self, i, addr):
        """__split_vma: split VMA ``i`` at ``addr`` (strictly inside it). Returns
        the index of the upper part."""
        cdef i64 k = i
        cdef u64 a = addr
        if not 0 <= k < self.n:
            raise IndexError(f"VMA index {k} out of range for {self.n} VMAs")
        if not self.start[k] < a < self.end[k] or a % self.align:
            raise ValueError(f"split address {a:#x} not an aligned point inside {self.row(k)}")
        cdef u64 old_end = self.end[k]
        self.end[k] = a
        self._insert_row(k + 1, a, old_end, self.flags[k],
                         self.pgoff[k] + self._pages(a - self.start[k]),
                         self.file[k], self.anon[k])
        self.faults[k + 1] = self.faults[k]
        return k + 1

    def remove_range(self, start, end):
        """Unmap [start, end): split VMAs partially covered and drop the rest, as
        do_vmi_align_munmap. Returns the removed pieces as row tuples (pgoff
        adjusted to each piece), lowest first. Holes are fine."""
        cdef u64 s = start, e = end
        self._check_args(s, e)
        cdef i64 i = self.lower_bound(s)
        cdef i64 j
        removed = []
        if i < self.n and self.start[i] < s and self.end[i] > e:
            # one VMA around the whole range: split twice
            self.split(i, s)
            self.split(i + 1, e)
            removed.append(self.row(i + 1))
            self._delete_rows(i + 1, 1)
            return removed
        if i < self.n and self.start[i] < s:
            self.split(i, s)
            i += 1
        j = i
        while j < self.n and self.end[j] <= e:
            j += 1
        if j < self.n and self.start[j] < e:
            self.split(j, e)
            j += 1
        for k in range(i, j):
            removed.append(self.row(k))
        self._delete_rows(i, j - i)
        return removed

    def modify(self, i, start, end, flags, max_count=-1):
        """vma_modify_flags: give [start, end) (inside VMA ``i``) the vm_flags
        ``flags``, merging with a neighbour as vma_merge_existing_range, else
        splitting (split_vma, which fails with ENOMEM once the table holds
        ``max_count`` VMAs; a first split is kept if the second fails, as in
        Linux). Returns the index of the VMA now covering the range."""
        cdef i64 k = i
        cdef u64 s = start, e = end, f = flags
        cdef i64 limit = max_count
        self._check_args(s, e)
        if not 0 <= k < self.n or not (self.start[k] <= s and e <= self.end[k]):
            raise ValueError(f"[{s:#x}, {e:#x}) is not inside VMA {k}")
        cdef u64 vs = self.start[k], ve = self.end[k]
        cdef bint left_side = s == vs, right_side = e == ve
        cdef u64 pg = self.pgoff[k] + self._pages(s - vs)
        cdef u64 pglen = self._pages(e - s)
        cdef i32 fi = self.file[k], an = self.anon[k]
        cdef bint ml = False, mr = False
        if not (f & VM_SPECIAL) and (left_side or right_side):
            ml = left_side and k > 0 and self._can_merge_after(k - 1, s, f, fi, an, pg)
            mr = right_side and k + 1 < self.n and self._can_merge_before(k + 1, e, f, fi, an, pg, pglen)
            if mr and ml:
                mr = _anon_pair_ok(self.anon[k - 1], self.anon[k + 1])
        if ml and mr:
            # prev extends over vma and next, both deleted; dup_anon_vma(prev,
            # next->anon_vma ? next : vma)
            self.end[k - 1] = self.end[k + 1]
            if self.anon[k - 1] == 0:
                self.anon[k - 1] = self.anon[k + 1] if self.anon[k + 1] else an
            self.faults[k - 1] += self.faults[k] + self.faults[k + 1]
            self._delete_rows(k, 2)
            return k - 1
        if ml:
            self.end[k - 1] = e
            if self.anon[k - 1] == 0:
                self.anon[k - 1] = an
            if right_side:
                self.faults[k - 1] += self.faults[k]
                self._delete_rows(k, 1)
            else:
                self.start[k] = e
                self.pgoff[k] += self._pages(e - vs)
            return k - 1
        if mr:
            self.start[k + 1] = s
            self.pgoff[k + 1] -= pglen
            if self.anon[k + 1] == 0:
                self.anon[k + 1] = an
            if left_side:
                self.faults[k + 1] += self.faults[k]
                self._delete_rows(k, 1)
                return k
            self.end[k] = s
            return k + 1
        # no merge: split_vma the preceding and the trailing parts
        if vs < s:
            if limit >= 0 and self.n >= limit:
                raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
            k = self.split(k, s)
        if e < ve:
            if limit >= 0 and self.n >= limit:
                raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
            self.split(k, e)
        self.flags[k] = f
        return k

    def change_flags(self, start, end, set_bits=0, clear_bits=0, max_count=-1):
        """Set and clear vm_flags bits on the mapped parts of [start, end), VMA by
        VMA with ``modify`` (split + merge, as mprotect_fixup and
        madvise_update_vma; VMAs whose flags would not change are left alone).
        Holes are skipped. Returns the [(start, end, new_flags)] changed."""
        cdef u64 s = start, e = end
        self._check_args(s, e)
        changed = []
        cur = s
        while cur < e:
            i = self.find_vma(cur)
            if i < 0 or self.start[i] >= e:
                break
            lo = max(cur, self.start[i])
            hi = min(e, self.end[i])
            old = self.flags[i]
            new = (old | <u64>set_bits) & ~(<u64>clear_bits)
            if new != old:
                i = self.modify(i, lo, hi, new, max_count)
                self.flags[i] = new
                changed.append((int(lo), int(hi), int(new)))
            cur = max(hi, self.end[i])
        return changed

    def set_flags(self, i, flags):
        """Overwrite VMA ``i``'s flags without merging (vm_flags_reset / clear)."""
        cdef i64 k = i
        if not 0 <= k < self.n:
            raise IndexError(f"VMA index {k} out of range for {self.n} VMAs")
        self.flags[k] = <u64>flags

    def faults_of(self, i):
        """Anonymous faults taken in VMA ``i`` (and the VMAs merged into it; a split
        VMA's parts both keep the count)."""
        cdef i64 k = i
        if not 0 <= k < self.n:
            raise IndexError(f"VMA index {k} out of range for {self.n} VMAs")
        return int(self.faults[k])

    def set_anon(self, i, anon):
        """Give VMA ``i`` an anon_vma id (anon_vma_prepare)."""
        cdef i64 k = i
        if not 0 <= k < self.n:
            raise IndexError(f"VMA index {k} out of range for {self.n} VMAs")
        self.anon[k] = <i32>anon

    def mergeable(self, i, j):
        """Would Linux have merged the touching VMAs i < j? Used by check(), so
        it only flags pairs with the same anon_vma (or neither has one): a pair
        where one side has none can be left unmerged when MREMAP_DONTUNMAP drops
        a VMA's anon_vma without a merge attempt."""
        cdef i64 a = i, b = j
        if not (0 <= a < self.n and 0 <= b < self.n):
            raise IndexError(f"VMA indices {i}, {j} out of range for {self.n} VMAs")
        return bool(self.end[a] == self.start[b] and not (self.flags[a] & VM_SPECIAL)
                    and _flags_eq(self.flags[a], self.flags[b]) and self.file[a] == self.file[b]
                    and self.anon[a] == self.anon[b]
                    and self.pgoff[a] + self._pages(self.end[a] - self.start[a]) == self.pgoff[b])

    def check(self, merged=True):
        """Verify the table: sorted, non-overlapping, non-empty, aligned to the
        process page size, and (``merged``) no two touching VMAs that Linux would
        have merged. Raises AssertionError naming the first bad VMA."""
        cdef i64 i
        if not (0 <= self._head and 0 <= self.n and self._head + self.n <= self.capacity):
            raise AssertionError(f"rows [{self._head}, +{self.n}) outside capacity {self.capacity}")
        for i in range(self.n):
            if not self.start[i] < self.end[i]:
                raise AssertionError(f"VMA {i} empty or inverted: {self.row(i)}")
            if self.start[i] % self.align or self.end[i] % self.align:
                raise AssertionError(f"VMA {i} not aligned to {self.align:#x}: {self.row(i)}")
            if i and self.end[i - 1] > self.start[i]:
                raise AssertionError(f"VMAs {i - 1} and {i} overlap or are unsorted: "
                                     f"{self.row(i - 1)} {self.row(i)}")
            if merged and i and self.mergeable(i - 1, i):
                raise AssertionError(f"VMAs {i - 1} and {i} should have been merged: "
                                     f"{self.row(i - 1)} {self.row(i)}")
        return True

    def __repr__(self):
        return f"VmaTable({self.n} VMAs, align={self.align:#x})"
