"""Pure-Python reference of ppsize._core.vma.VmaTable: a sorted list of tuples
(start, end, flags, pgoff, file, anon) and linear scans, written from mm/vma.c's
rules (vma_merge_new_range, vma_merge_existing_range, __split_vma) as directly as
possible. Same Python API as VmaTable, so ppsize.abi.AddressSpace can run on it."""
import errno
import os

VM_SOFTDIRTY = 0x08000000
VM_SPECIAL = 0x00004000 | 0x00040000 | 0x00000400 | 0x10000000


def same_flags(a, b):
    return (a ^ b) & ~VM_SOFTDIRTY == 0


def anon_ok(a_new, a_vma):
    # is_mergeable_anon_vma since 6.16, no fork: either has none, or they match
    return a_new in (0, a_vma) or a_vma == 0


def anon_pair_ok(a, b):
    return a == 0 or b == 0 or a == b


class RefVmaTable:
    def __init__(self, align=4096, pgoff_shift=12, capacity=0):
        self.align = align
        self.pgoff_shift = pgoff_shift
        self.v = []          # sorted list of tuples

    # -- lookup ---------------------------------------------------------------
    def __len__(self):
        return len(self.v)

    def lookup(self, addr):
        for i, (s, e, *_) in enumerate(self.v):
            if s <= addr < e:
                return i
        return -1

    def find_vma(self, addr):
        for i, (s, e, *_) in enumerate(self.v):
            if e > addr:
                return i
        return -1

    def find_many(self, addrs):
        return [self.lookup(int(a)) for a in addrs]

    def row(self, i):
        return tuple(self.v[i])

    def rows(self, lo=0, hi=None):
        return [r for r in self.v if r[1] > lo and (hi is None or r[0] < hi)]

    def pages(self, n):
        return n >> self.pgoff_shift

    def gaps(self, low, high):
        """All free ranges clipped to [low, high) with the index of the VMA after."""
        out = []
        prev_end = 0
        for i, r in enumerate(self.v + [None]):
            gs = prev_end
            ge = r[0] if r is not None else high
            gs, ge = max(gs, low), min(ge, high)
            if ge > gs:
                out.append((gs, ge, i if r is not None else -1))
            if r is not None:
                prev_end = r[1]
        return out

    def highest_gap(self, low, high, length):
        fits = [g for g in self.gaps(low, high) if g[1] - g[0] >= length]
        return fits[-1] if fits else None

    def lowest_gap(self, low, high, length):
        fits = [g for g in self.gaps(low, high) if g[1] - g[0] >= length]
        return fits[0] if fits else None

    # -- merge rules ------------------------------------------------------------
    def can_after(self, p, s, f, fi, an, pg):
        ps, pe, pf, ppg, pfi, pan = self.v[p]
        return (pe == s and same_flags(pf, f) and pfi == fi and anon_ok(an, pan)
                and ppg + self.pages(pe - ps) == pg)

    def can_before(self, q, e, f, fi, an, pg, pglen):
        qs, qe, qf, qpg, qfi, qan = self.v[q]
        return (qs == e and same_flags(qf, f) and qfi == fi and anon_ok(an, qan)
                and qpg == pg + pglen)

    # -- operations -------------------------------------------------------------
    def insert(self, start, end, flags, pgoff=0, file=-1, anon=0, merge=True):
        assert start < end and start % self.align == 0 and end % self.align == 0
        for r in self.v:
            if r[0] < end and start < r[1]:
                raise ValueError("overlap")
        i = sum(1 for r in self.v if r[1] <= start)
        left = right = False
        if merge and not flags & VM_SPECIAL:
            left = i > 0 and self.can_after(i - 1, start, flags, file, anon, pgoff)
            right = i < len(self.v) and self.can_before(i, end, flags, file, anon, pgoff,
                                                        self.pages(end - start))
            if left and right:
                right = anon_pair_ok(self.v[i - 1][5], self.v[i][5])
        if left and right:
            p, q = self.v[i - 1], self.v[i]
            self.v[i - 1] = (p[0], q[1], p[2], p[3], p[4], p[5] or q[5] or anon)
            del self.v[i]
            return i - 1
        if left:
            p = self.v[i - 1]
            self.v[i - 1] = (p[0], end) + p[2:5] + (p[5] or anon,)
            return i - 1
        if right:
            q = self.v[i]
            self.v[i] = (start, q[1], q[2], pgoff, q[4], q[5] or anon)
            return i
        self.v.insert(i, (start, end, flags, pgoff, file, anon))
        return i

    def split(self, i, addr):
        s, e, f, pg, fi, an = self.v[i]
        assert s < addr < e and addr % self.align == 0
        self.v[i:i + 1] = [(s, addr, f, pg, fi, an),
                           (addr, e, f, pg + self.pages(addr - s), fi, an)]
        return i + 1

    def remove_range(self, start, end):
        removed, keep = [], []
        for s, e, f, pg, fi, an in self.v:
            if e <= start or s >= end:
                keep.append((s, e, f, pg, fi, an))
                continue
            if s < start:
                keep.append((s, start, f, pg, fi, an))
            if e > end:
                keep.append((end, e, f, pg + self.pages(end - s), fi, an))
            cs, ce = max(s, start), min(e, end)
            removed.append((cs, ce, f, pg + self.pages(cs - s), fi, an))
        self.v = sorted(keep)
        return removed

    def modify(self, i, start, end, flags, max_count=-1):
        vs, ve, vf, vpg, fi, an = self.v[i]
        assert vs <= start < end <= ve
        pg = vpg + self.pages(start - vs)
        pglen = self.pages(end - start)
        left_side, right_side = start == vs, end == ve
        ml = mr = False
        if not flags & VM_SPECIAL and (left_side or right_side):
            ml = left_side and i > 0 and self.can_after(i - 1, start, flags, fi, an, pg)
            mr = right_side and i + 1 < len(self.v) and self.can_before(i + 1, end, flags, fi, an, pg, pglen)
            if ml and mr:
                mr = anon_pair_ok(self.v[i - 1][5], self.v[i + 1][5])
        if ml and mr:
            p, q = self.v[i - 1], self.v[i + 1]
            self.v[i - 1:i + 2] = [(p[0], q[1], p[2], p[3], p[4], p[5] or q[5] or an)]
            return i - 1
        if ml:
            p = self.v[i - 1]
            new = [(p[0], end, p[2], p[3], p[4], p[5] or an)]
            if not right_side:
                new.append((end, ve, vf, vpg + self.pages(end - vs), fi, an))
            self.v[i - 1:i + 1] = new
            return i - 1
        if mr:
            q = self.v[i + 1]
            grown = (start, q[1], q[2], q[3] - pglen, q[4], q[5] or an)
            if left_side:
                self.v[i:i + 2] = [grown]
                return i
            self.v[i:i + 2] = [(vs, start, vf, vpg, fi, an), grown]
            return i + 1
        if vs < start:
            if 0 <= max_count <= len(self.v):
                raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
            i = self.split(i, start)
        if end < ve:
            if 0 <= max_count <= len(self.v):
                raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
            self.split(i, end)
        self.v[i] = self.v[i][:2] + (flags,) + self.v[i][3:]
        return i

    def change_flags(self, start, end, set_bits=0, clear_bits=0, max_count=-1):
        changed = []
        cur = start
        while cur < end:
            i = self.find_vma(cur)
            if i < 0 or self.v[i][0] >= end:
                break
            lo, hi = max(cur, self.v[i][0]), min(end, self.v[i][1])
            old = self.v[i][2]
            new = (old | set_bits) & ~clear_bits
            if new != old:
                i = self.modify(i, lo, hi, new, max_count)
                self.set_flags(i, new)
                changed.append((lo, hi, new))
            cur = max(hi, self.v[i][1])
        return changed

    def set_flags(self, i, flags):
        self.v[i] = self.v[i][:2] + (flags,) + self.v[i][3:]

    def set_anon(self, i, anon):
        self.v[i] = self.v[i][:5] + (anon,)

    def mergeable(self, i, j):
        a, b = self.v[i], self.v[j]
        return (a[1] == b[0] and not a[2] & VM_SPECIAL and same_flags(a[2], b[2])
                and a[4] == b[4] and a[5] == b[5] and a[3] + self.pages(a[1] - a[0]) == b[3])

    def check(self, merged=True):
        for i, (s, e, *_) in enumerate(self.v):
            assert s < e and s % self.align == 0 and e % self.align == 0, self.v[i]
            if i:
                assert self.v[i - 1][1] <= s, (self.v[i - 1], self.v[i])
                assert not (merged and self.mergeable(i - 1, i)), (self.v[i - 1], self.v[i])
        return True
