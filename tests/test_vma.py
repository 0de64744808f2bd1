"""VmaTable: differential tests against the pure-Python reference, lookups, merge
rules of mm/vma.c, check(), bad input."""
import errno

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize._core.vma import VM_FLAGS, VMA_DTYPE, VmaTable
from ref_vma import RefVmaTable

P = 16384                      # a 16K process on a 4K kernel: pgoff in 4K units
SHIFT = 12
RW = VM_FLAGS["VM_READ"] | VM_FLAGS["VM_WRITE"] | 0x70
RO = VM_FLAGS["VM_READ"] | 0x70
FLAGS = [RW, RO, RW | VM_FLAGS["VM_ACCOUNT"], RO | VM_FLAGS["VM_HUGEPAGE"],
         RW | VM_FLAGS["VM_IO"]]          # the last is VM_SPECIAL: never merges
NPAGES = 48


def pg(page):
    return page * P


def same(t, r, probes=()):
    assert t.rows() == r.rows()
    assert len(t) == len(r)
    if probes:
        assert list(t.find_many(np.array(probes, dtype=np.uint64))) == r.find_many(probes)
        for a in probes:
            assert t.lookup(a) == r.lookup(a)
            assert t.find_vma(a) == r.find_vma(a)


# ------------------------------------------------------------ differential
op = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, NPAGES - 1), st.integers(1, 8),
              st.sampled_from(FLAGS), st.sampled_from([-1, -1, 3]), st.sampled_from([0, 0, 1, 2]),
              st.booleans()),
    st.tuples(st.just("remove"), st.integers(0, NPAGES - 1), st.integers(1, 12)),
    st.tuples(st.just("modify"), st.integers(0, NPAGES - 1), st.integers(1, 6),
              st.sampled_from(FLAGS), st.sampled_from([-1, 6, 9])),
    st.tuples(st.just("split"), st.integers(0, NPAGES - 1)),
    st.tuples(st.just("anon"), st.integers(0, NPAGES - 1), st.integers(0, 3)),
    st.tuples(st.just("change"), st.integers(0, NPAGES - 1), st.integers(1, 20),
              st.sampled_from([0, 0x2, 0x20000000]), st.sampled_from([0, 0x2, 0x20000000]),
              st.sampled_from([-1, 8])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=40), st.lists(st.integers(0, pg(NPAGES + 2)), min_size=8, max_size=8))
def test_differential(ops, probes):
    t, r = VmaTable(align=P, pgoff_shift=SHIFT, capacity=1), RefVmaTable(P, SHIFT)
    for o in ops:
        kind = o[0]
        if kind == "insert":
            _, page, n, flags, file, anon, contiguous = o
            s, e = pg(page), pg(page + n)
            pgoff = (s >> SHIFT) if contiguous else 7 + page
            if r.rows(s, e):
                with pytest.raises(ValueError):
                    t.insert(s, e, flags, pgoff, file, anon)
                continue
            assert t.insert(s, e, flags, pgoff, file, anon) == r.insert(s, e, flags, pgoff, file, anon)
        elif kind == "remove":
            _, page, n = o
            assert t.remove_range(pg(page), pg(page + n)) == r.remove_range(pg(page), pg(page + n))
        elif kind == "modify":
            _, page, n, flags, limit = o
            i = r.lookup(pg(page))
            if i < 0:
                continue
            s, e = pg(page), min(pg(page + n), r.row(i)[1])
            try:
                want = r.modify(i, s, e, flags, limit)
            except OSError as exc:
                with pytest.raises(OSError) as got:
                    t.modify(i, s, e, flags, limit)
                assert got.value.errno == exc.errno == errno.ENOMEM
            else:
                assert t.modify(i, s, e, flags, limit) == want
        elif kind == "split":
            i = r.lookup(pg(o[1]))
            if i < 0 or r.row(i)[0] == pg(o[1]):
                continue
            assert t.split(i, pg(o[1])) == r.split(i, pg(o[1]))
        elif kind == "change":
            _, page, n, set_bits, clear_bits, limit = o
            try:
                want = r.change_flags(pg(page), pg(page + n), set_bits, clear_bits, limit)
            except OSError:
                with pytest.raises(OSError):
                    t.change_flags(pg(page), pg(page + n), set_bits, clear_bits, limit)
            else:
                assert t.change_flags(pg(page), pg(page + n), set_bits, clear_bits, limit) == want
        elif kind == "anon":
            i = r.lookup(pg(o[1]))
            if i >= 0:
                t.set_anon(i, o[2])
                r.set_anon(i, o[2])
        same(t, r, probes)
        t.check(merged=False)
        for lo, hi, ln in ((0, pg(NPAGES), P), (pg(3), pg(40), pg(5)), (pg(10), pg(11), P)):
            assert t.highest_gap(lo, hi, ln) == r.highest_gap(lo, hi, ln)
            assert t.lowest_gap(lo, hi, ln) == r.lowest_gap(lo, hi, ln)


# ------------------------------------------------------------ lookups
def test_find_boundaries_and_growth():
    t = VmaTable(align=4096, pgoff_shift=12, capacity=1)
    assert t.lookup(0) == -1 and t.find_vma(0) == -1 and len(t) == 0
    for k in range(100):                       # 100 separate VMAs: capacity doubles
        t.insert(0x10000 + k * 0x3000, 0x10000 + k * 0x3000 + 0x1000, RW, k * 100)
    assert len(t) == 100 and t.capacity >= 100
    assert t.lookup(0x10000) == 0
    assert t.lookup(0x10fff) == 0
    assert t.lookup(0x11000) == -1             # end is exclusive
    assert t.find_vma(0x11000) == 1
    assert t.lookup(0x10000 + 99 * 0x3000 + 0xfff) == 99
    assert t.find_vma(0x10000 + 100 * 0x3000) == -1
    addrs = np.arange(0, 0x10000 + 100 * 0x3000 + 0x2000, 0x800, dtype=np.uint64)
    want = [next((i for i, r in enumerate(t.rows()) if r[0] <= a < r[1]), -1) for a in addrs]
    assert list(t.find_many(addrs)) == want
    arr = t.as_array()
    assert arr.dtype == VMA_DTYPE and arr["start"][5] == 0x10000 + 5 * 0x3000
    views = t.arrays()
    assert not views["start"].flags.writeable and len(views["end"]) == 100
    t.check()


def test_front_and_back_shifts():
    """Rows shift towards whichever end is nearer (top-down mmap inserts at the
    front); compare with a plain list through many inserts and deletes."""
    t = VmaTable(align=4096, pgoff_shift=12, capacity=1)
    ref = []
    rng = np.random.default_rng(5)
    for k in range(3000):
        if ref and rng.random() < 0.3:
            j = int(rng.integers(len(ref)))
            s = ref.pop(j)
            t.remove_range(s, s + 0x1000)
        else:
            s = 0x10000 + 0x2000 * int(rng.integers(4000))
            if s in ref:
                continue
            ref.append(s)
            ref.sort()
            t.insert(s, s + 0x1000, RW if k % 2 else RO, k)
        assert len(t) == len(ref)
    assert [r[0] for r in t.rows()] == ref
    front = VmaTable(align=4096, pgoff_shift=12)
    for k in range(20000):                        # top-down: every insert at index 0
        front.insert(0x7f0000000000 - 0x2000 * (k + 1), 0x7f0000000000 - 0x2000 * k - 0x1000, RW)
    assert len(front) == 20000 and front.lookup(0x7f0000000000 - 0x2000) == 19999
    t.check()
    front.check()


# ------------------------------------------------------------ merge rules
def table(*rows):
    t = VmaTable(align=4096, pgoff_shift=12)
    for r in rows:
        t.insert(*r)
    return t


def test_insert_merges_like_vma_merge_new_range():
    t = table((0x10000, 0x12000, RW, 0x10))
    t.insert(0x12000, 0x13000, RW, 0x12)                  # expand prev
    t.insert(0x14000, 0x15000, RW, 0x14)
    assert len(t) == 2
    t.insert(0x13000, 0x14000, RW, 0x13)                  # bridge: prev absorbs next
    assert t.rows() == [(0x10000, 0x15000, RW, 0x10, -1, 0)]
    t.insert(0xf000, 0x10000, RW, 0xf)                    # expand next downwards
    assert t.rows() == [(0xf000, 0x15000, RW, 0xf, -1, 0)]
    t.insert(0x15000, 0x16000, RW, 0x99)                  # pgoff not contiguous
    t.insert(0x16000, 0x17000, RO, 0x16)                  # other flags
    t.insert(0x17000, 0x18000, RO, 0x17, 5)               # other file
    assert len(t) == 4
    t.check()


def test_anon_vma_rules():
    # a faulted VMA absorbs a new range (new range has no anon_vma) ...
    t = table((0x10000, 0x11000, RW, 0x10, -1, 7))
    t.insert(0x11000, 0x12000, RW, 0x11)
    assert t.rows() == [(0x10000, 0x12000, RW, 0x10, -1, 7)]
    # ... and (Linux 6.16+) a range carrying one joins a VMA without, passing it on
    t = table((0x10000, 0x11000, RW, 0x10))
    t.insert(0x11000, 0x12000, RW, 0x11, -1, 7)
    assert t.rows() == [(0x10000, 0x12000, RW, 0x10, -1, 7)]
    # two different anon_vmas never merge, even through a bridge
    t = table((0x10000, 0x11000, RW, 0x10, -1, 1), (0x12000, 0x13000, RW, 0x12, -1, 2))
    t.insert(0x11000, 0x12000, RW, 0x11)
    assert len(t) == 2 and t.rows()[0][1] == 0x12000


def test_modify_cases():
    base = [(0x10000, 0x11000, RO, 0x10), (0x11000, 0x14000, RW, 0x11), (0x14000, 0x15000, RO, 0x14)]
    t = table(*base)
    assert t.modify(1, 0x12000, 0x13000, RO) == 2          # middle: split twice
    assert [r[:3] for r in t.rows()] == [(0x10000, 0x11000, RO), (0x11000, 0x12000, RW),
                                        (0x12000, 0x13000, RO), (0x13000, 0x14000, RW),
                                        (0x14000, 0x15000, RO)]
    t = table(*base)
    assert t.modify(1, 0x11000, 0x12000, RO) == 0          # left part joins prev
    assert [r[:2] for r in t.rows()] == [(0x10000, 0x12000), (0x12000, 0x14000), (0x14000, 0x15000)]
    assert t.row(1)[3] == 0x12                             # pgoff follows the start
    t = table(*base)
    assert t.modify(1, 0x13000, 0x14000, RO) == 2          # right part joins next
    assert t.rows()[2] == (0x13000, 0x15000, RO, 0x13, -1, 0)
    t = table(*base)
    assert t.modify(1, 0x11000, 0x14000, RO) == 0          # all three become one
    assert t.rows() == [(0x10000, 0x15000, RO, 0x10, -1, 0)]
    t = table(*base)
    with pytest.raises(OSError) as e:                       # split_vma at max_map_count
        t.modify(1, 0x12000, 0x13000, RO, max_count=3)
    assert e.value.errno == errno.ENOMEM and len(t) == 3
    with pytest.raises(OSError):                            # first split kept, second fails
        t.modify(1, 0x12000, 0x13000, RO, max_count=4)
    assert len(t) == 4 and t.row(2)[2] == RW


def test_remove_range_splits():
    t = table((0x10000, 0x20000, RW, 0x10))
    got = t.remove_range(0x14000, 0x16000)
    assert got == [(0x14000, 0x16000, RW, 0x14, -1, 0)]
    assert t.rows() == [(0x10000, 0x14000, RW, 0x10, -1, 0), (0x16000, 0x20000, RW, 0x16, -1, 0)]
    got = t.remove_range(0x12000, 0x18000)
    assert [g[:2] for g in got] == [(0x12000, 0x14000), (0x16000, 0x18000)]
    assert t.remove_range(0x30000, 0x40000) == []           # a hole
    assert t.rows()[1] == (0x18000, 0x20000, RW, 0x18, -1, 0)


def test_check_catches_broken_tables():
    t = table((0x10000, 0x11000, RW, 0x10), (0x11000, 0x12000, RO, 0x11))
    t.check()
    t.set_flags(1, RW)                                      # now they should be one VMA
    with pytest.raises(AssertionError, match="merged"):
        t.check()
    t.check(merged=False)
    t.set_anon(1, 4)                                        # different anon_vma: fine again
    t.check()


def test_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        VmaTable(align=3000)
    with pytest.raises(ValueError, match="pgoff_shift"):
        VmaTable(align=4096, pgoff_shift=14)
    t = VmaTable(align=16384, pgoff_shift=12)
    with pytest.raises(ValueError, match="not aligned"):
        t.insert(0x10000, 0x11000, RW)
    with pytest.raises(ValueError, match="empty"):
        t.insert(0x10000, 0x10000, RW)
    t.insert(0x10000, 0x20000, RW)
    with pytest.raises(ValueError, match="overlaps"):
        t.insert(0x1c000, 0x24000, RW)
    with pytest.raises(ValueError, match="split address"):
        t.split(0, 0x10000)
    with pytest.raises(ValueError, match="not inside"):
        t.modify(0, 0x1c000, 0x24000, RO)
    with pytest.raises(IndexError):
        t.row(3)


def test_change_flags_skips_holes_and_unchanged():
    HP = VM_FLAGS["VM_HUGEPAGE"]
    t = table((0x10000, 0x14000, RW, 0x10), (0x16000, 0x18000, RW | HP, 0x16),
              (0x18000, 0x1a000, RO, 0x18))
    got = t.change_flags(0x12000, 0x19000, set_bits=HP)
    assert got == [(0x12000, 0x14000, RW | HP), (0x18000, 0x19000, RO | HP)]
    assert [r[:3] for r in t.rows()] == [(0x10000, 0x12000, RW), (0x12000, 0x14000, RW | HP),
                                        (0x16000, 0x18000, RW | HP), (0x18000, 0x19000, RO | HP),
                                        (0x19000, 0x1a000, RO)]
    assert t.change_flags(0x10000, 0x1a000, clear_bits=HP) == [
        (0x12000, 0x14000, RW), (0x16000, 0x18000, RW), (0x18000, 0x19000, RO)]
    assert [r[:2] for r in t.rows()] == [(0x10000, 0x14000), (0x16000, 0x18000), (0x18000, 0x1a000)]
    t.check()
