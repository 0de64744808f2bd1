"""Buddy allocator: Cython kernel vs the pure-Python reference, kernel behaviours
(mm/page_alloc.c), /proc formats, validation, check()."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsize.buddy import BuddyAllocator, buddy_for, migratetype_index
from ref_buddy import MOVABLE, RECLAIMABLE, UNMOVABLE, RefBuddy


# ------------------------------------------------------------------ helpers
def assert_same(b: BuddyAllocator, r: RefBuddy):
    """Every free list (content and order), pageblock types and counter agree."""
    for o in range(b.max_order + 1):
        for mt in range(3):
            assert list(b.free_list(o, mt)) == r.lists[(o, mt)], (o, mt)
    assert list(b.pageblock_migratetypes()) == r.pb_mt
    s = b.stats()
    assert s["nr_free"] == r.nr_free_pages
    assert list(s["allocs"]) == r.allocs
    assert list(s["failures"]) == r.failures
    assert list(s["frees"]) == r.frees
    assert s["claimed"] == r.claimed
    assert s["stolen"] == r.stolen
    assert b.free_blocks(by_migratetype=True).tolist()[:3] == r.free_block_counts()[:3]
    assert list(b.unusable_index(permille=True)) == r.unusable_index()
    assert b.free_mask().tolist() == [r.frame_is_free(p) for p in range(r.nr_pages)]
    for pfn, (o, mt) in r.allocated.items():
        assert b.describe(pfn) == ("allocated", pfn, o, ["unmovable", "movable", "reclaimable"][mt])


def boot_blocks(nr_pages, max_order):
    """Expected (pfn, order) of the free blocks after boot (memblock
    __free_pages_memory, then merging in __free_one_page)."""
    out, start = [], 0
    while start < nr_pages:
        order = max_order if start == 0 else min(max_order, (start & -start).bit_length() - 1)
        while start + (1 << order) > nr_pages:
            order -= 1
        out.append((start, order))
        start += 1 << order
    return out


# ------------------------------------------------------------------ boot
@pytest.mark.parametrize("nr_pages,max_order,pb", [
    (1, 0, 0), (1024, 10, 9), (3000, 10, 9), (1 << 13, 11, 11), (12345, 13, 13), (77, 4, 2)])
def test_boot_layout(nr_pages, max_order, pb):
    b = BuddyAllocator(nr_pages, max_order, pb)
    b.check()
    expect = boot_blocks(nr_pages, max_order)
    got = sorted((int(p), o) for o in range(max_order + 1) for p in b.free_list(o, "movable"))
    assert got == sorted(expect)
    # FPI_TO_TAIL at boot: each list is in ascending pfn order
    for o in range(max_order + 1):
        lst = list(b.free_list(o, "movable"))
        assert lst == sorted(lst)
    assert b.nr_free_pages == nr_pages
    assert (b.pageblock_migratetypes() == MOVABLE).all()
    assert b.pageblock_counts().tolist() == [0, -(-nr_pages // (1 << pb)), 0, 0]


@pytest.mark.parametrize("geom,pb,maxo", [("arm64-4k-48", 9, 10), ("arm64-16k-48", 11, 11),
                                          ("arm64-64k-48", 13, 13), ("x86_64-4l", 9, 10)])
def test_buddy_for_geometries(geom, pb, maxo):
    b = buddy_for("1G", geom)
    assert (b.max_order, b.pageblock_order) == (maxo, pb)
    page = {"arm64-16k-48": 16384, "arm64-64k-48": 65536}.get(geom, 4096)
    assert b.nr_pages == (1 << 30) // page
    assert b.free_blocks()[maxo] == b.nr_pages >> maxo
    with pytest.raises(ValueError, match="multiple of the 16K page size"):
        buddy_for(4096 * 3, "arm64-16k-48")


def test_proc_formats():
    b = BuddyAllocator(3000, 10, 9)
    assert b.buddyinfo() == ("Node 0, zone   Normal " + "".join(
        f"{n:6d} " for n in [0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 2]) + "\n")
    text = b.pagetypeinfo()
    lines = text.splitlines()
    assert lines[0] == "Page block order: 9"
    assert lines[1] == "Pages per block:  512"
    assert lines[3].startswith("Free pages count per migrate type at order       0      1 ")
    assert lines[4] == "Node    0, zone   Normal, type    Unmovable " + "     0 " * 11
    assert lines[5] == "Node    0, zone   Normal, type      Movable " + "".join(
        f"{n:6d} " for n in [0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 2])
    assert lines[-2] == "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic "
    assert lines[-1] == "Node 0, zone   Normal            0            6            0            0 "
    assert b.unusable_index_text().startswith("Node 0, zone   Normal 0.000 0.000 0.000 0.000 0.002 ")


def test_unusable_index_by_hand():
    # free: one order-0 and one order-2 block -> 5 free pages
    b = BuddyAllocator(8, 3, 2)
    pfns = [b.alloc_pages(0) for _ in range(8)]
    assert sorted(pfns) == list(range(8))
    assert b.unusable_index().tolist() == [1.0] * 4      # no free memory -> 1000
    for p in (0, 4, 5, 6, 7):
        b.free_pages(p, 0)
    # order 0: all usable; order 1: 1 of 5 unusable; order 2: 1/5; order 3: all
    assert b.unusable_index(permille=True).tolist() == [0, 200, 200, 1000]
    assert b.unusable_index().tolist() == [0.0, 0.2, 0.2, 1.0]
    # __fragmentation_index: order 3 would fail; 2 free blocks, 5 free pages:
    # 1000 - (1000 + 5000 / 8) / 2 = 1000 - 1625 // 2 = 188
    assert b.fragmentation_index(permille=True).tolist() == [-1000, -1000, -1000, 188]
    b.free_pages(1, 0)                      # order-1 at 0 + order-2 at 4: 6 pages, 2 blocks
    assert b.fragmentation_index(permille=True).tolist() == [-1000, -1000, -1000, 125]
    b.free_pages(2, 0)
    b.free_pages(3, 0)                      # everything merges: order 3 is free
    assert b.fragmentation_index().tolist() == [-1.0] * 4


# ------------------------------------------------------ kernel behaviours
def test_expand_returns_upper_halves_to_the_lists():
    b = BuddyAllocator(8, 3, 3)
    assert b.alloc_pages(0) == 0                      # lowest half is kept
    # expand(): order-2 at 4, order-1 at 2, order-0 at 1 go back to the free lists
    assert [list(b.free_list(o, "movable")) for o in range(4)] == [[1], [2], [4], []]
    assert b.alloc_pages(0) == 1                      # __rmqueue_smallest: smallest first
    assert b.alloc_pages(1) == 2
    b.free_pages(1, 0)
    b.free_pages(0, 0)                                # merges 0+1 -> order 1 at 0
    assert [list(b.free_list(o, "movable")) for o in range(4)] == [[], [0], [4], []]
    b.free_pages(2, 1)                                # 0..3 -> order 2, + 4..7 -> order 3
    assert [list(b.free_list(o, "movable")) for o in range(4)] == [[], [], [], [0]]
    b.check()


def test_buddy_merge_likely_puts_block_at_tail():
    b = BuddyAllocator(16, 4, 4)
    got = [b.alloc_pages(0) for _ in range(16)]
    assert got == list(range(16))
    b.free_pages(4, 0)
    b.free_pages(5, 0)        # -> order 1 at 4; higher buddy (order 2 at 0) not free: head
    b.free_pages(8, 0)        # order 0 at 8; buddy 9 busy; order-1 buddy of 8 is 10: busy: head
    b.free_pages(0, 0)
    b.free_pages(1, 0)        # -> order 1 at 0, buddy 2 busy; order-2 pair 0^4=4 is a free
    #                           order-2 block? no (4 is order 1): head
    assert list(b.free_list(1, "movable")) == [0, 4]
    b.free_pages(2, 0)        # order 0 at 2: buddy 3 busy; higher (order 1 at 0) free -> tail
    assert list(b.free_list(0, "movable")) == [8, 2]
    b.check()


def test_unmovable_claims_the_largest_movable_block():
    b = BuddyAllocator(4096, 10, 9)
    pfn = b.alloc_pages(0, "unmovable")
    # __rmqueue_claim searches from MAX_PAGE_ORDER down: the order-10 block at 0 is taken
    # whole (>= pageblock_order): both its pageblocks become unmovable
    assert pfn == 0
    assert b.pageblock_migratetypes().tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert b.stats()["claimed"] == 1 and b.stats()["stolen"] == 0
    assert [list(b.free_list(o, "unmovable")) for o in range(10)] == [[1 << o] for o in range(10)]
    b.free_pages(0, 0)
    # the block merges back into one order-10 unmovable block (types are not reset)
    assert list(b.free_list(10, "unmovable")) == [0]
    b.check()


def test_movable_small_allocation_steals_without_claiming():
    # pageblock order 4: a movable fallback claims only from orders >= 4 // 2
    # (should_try_claim_block); below that it breaks out and __rmqueue_steal runs
    b = BuddyAllocator(32, 4, 4)
    assert b.alloc_pages(0, "unmovable") == 0          # claims pageblock 0 (order 4 >= pb)
    assert [b.alloc_pages(o, "unmovable") for o in (3, 2, 1)] == [8, 4, 2]
    movable = [b.alloc_pages(0, "movable") for _ in range(16)]
    assert movable == list(range(16, 32))              # pageblock 1
    assert b.stats()["claimed"] == 1
    p = b.alloc_pages(0, "movable")                    # movable lists empty now
    assert p == 1                                      # stolen from the unmovable block
    assert b.stats()["stolen"] == 1 and b.stats()["claimed"] == 1
    assert b.pageblock_migratetypes().tolist() == [UNMOVABLE, MOVABLE]
    b.check()


def test_movable_claims_a_free_half_pageblock():
    b = BuddyAllocator(32, 4, 4)
    assert b.alloc_pages(0, "unmovable") == 0
    [b.alloc_pages(0, "movable") for _ in range(16)]
    # the order-3 unmovable block at 8 is >= pageblock_order / 2: try_to_claim_block
    # finds 15 free pages >= 8 and retypes the whole pageblock movable
    assert b.alloc_pages(0, "movable") == 1
    assert b.stats()["claimed"] == 2 and b.stats()["stolen"] == 0
    assert b.pageblock_migratetypes().tolist() == [MOVABLE, MOVABLE]
    assert list(b.free_list(3, "movable")) == [8]
    b.check()


def test_reclaimable_claims_a_partial_pageblock_when_half_is_alike():
    b = BuddyAllocator(32, 4, 4)
    # fill pageblock 0 with unmovable allocations, leave it 3/4 free... it is claimed by
    # the first unmovable allocation; then free 12 of 16 pages
    pf = [b.alloc_pages(0, "unmovable") for _ in range(16)]
    assert pf == list(range(16))
    for p in range(4, 16):
        b.free_pages(p, 0)
    [b.alloc_pages(0, "movable") for _ in range(16)]   # use pageblock 1 up
    # a reclaimable order-0 allocation falls back to UNMOVABLE (first in its list), the
    # order-2 free block at 4 is < pageblock order: try_to_claim_block counts free
    # pages (12) >= 8 -> moves the free pages and retypes the block
    p = b.alloc_pages(0, "reclaimable")
    assert b.pageblock_migratetypes().tolist() == [RECLAIMABLE, MOVABLE]
    assert b.stats()["claimed"] == 2
    assert p == 4
    b.check()


def test_merge_across_pageblocks_of_different_types():
    # __free_one_page at order >= pageblock_order: the buddy pageblock has another
    # (mergeable) type; they merge and change_pageblock_range retypes the buddy
    b = BuddyAllocator(1024, 10, 9)
    assert b.alloc_pages(9, "movable") == 0
    assert b.alloc_pages(9, "unmovable") == 512        # claims pageblock 1 (order 9 >= pb)
    assert b.pageblock_migratetypes().tolist() == [MOVABLE, UNMOVABLE]
    b.free_pages(512, 9)
    assert list(b.free_list(9, "unmovable")) == [512]
    b.free_pages(0, 9)
    assert b.pageblock_migratetypes().tolist() == [MOVABLE, MOVABLE]
    assert list(b.free_list(10, "movable")) == [0]
    b.check()


def test_free_of_multi_pageblock_block_uses_split_large_buddy():
    # an order-10 free is done per pageblock (split_large_buddy), each with its own
    # type; the halves merge back (types mergeable) into the second half's type
    b = BuddyAllocator(2048, 10, 9)
    assert b.alloc_pages(10, "movable") == 0
    assert b.alloc_pages(0, "unmovable") == 1024       # claims the order-10 block at 1024
    assert b.pageblock_migratetypes().tolist() == [MOVABLE, MOVABLE, UNMOVABLE, UNMOVABLE]
    b.free_pages(0, 10)
    assert list(b.free_list(10, "movable")) == [0]
    b.free_pages(1024, 0)
    assert list(b.free_list(10, "unmovable")) == [1024]
    b.check()


def test_exhaustion_is_a_counted_result():
    b = BuddyAllocator(64, 3, 2)
    got = b.alloc_batch([3] * 9)
    assert (got[:8] >= 0).all() and got[8] == -1
    assert b.alloc_pages(0) == -1
    s = b.stats()
    assert s["failures"].tolist() == [1, 0, 0, 1]
    assert s["allocs"].tolist() == [0, 0, 0, 8]
    assert s["nr_free"] == 0
    assert b.unusable_index().tolist() == [1.0] * 4
    b.free_batch(got[:8], [3] * 8)
    assert b.nr_free_pages == 64
    b.check()


def test_split_then_free_pieces():
    b = BuddyAllocator(64, 4, 3)
    p = b.alloc_pages(4)
    b.split(p, 4, 1)
    with pytest.raises(ValueError, match=f"cannot free pfn {p} at order 4: it is allocated at order 1"):
        b.free_pages(p, 4)
    for q in range(p, p + 16, 2):
        b.free_pages(q, 1)
    assert b.nr_free_pages == 64
    assert b.free_blocks().tolist() == [0, 0, 0, 0, 4]
    b.check()


# ------------------------------------------------------------- validation
def test_constructor_validation():
    with pytest.raises(ValueError, match="nr_pages must be in 1"):
        BuddyAllocator(0, 10, 9)
    with pytest.raises(ValueError, match="max_order must be in 0..15, got 16"):
        BuddyAllocator(10, 16, 9)
    with pytest.raises(ValueError, match="pageblock_order must be in 0..max_order=10, got 11"):
        BuddyAllocator(10, 10, 11)
    with pytest.raises(TypeError, match="nr_pages must be an int, not float"):
        BuddyAllocator(10.0, 10, 9)


def test_call_validation():
    b = BuddyAllocator(64, 3, 2)
    with pytest.raises(ValueError, match=r"order 4 out of range 0..3"):
        b.alloc_pages(4)
    with pytest.raises(ValueError, match=r"order -1 out of range"):
        b.alloc_pages(-1)
    with pytest.raises(ValueError, match="unknown migratetype 'sticky'"):
        b.alloc_pages(0, "sticky")
    with pytest.raises(ValueError, match="'highatomic' is not modelled"):
        b.alloc_pages(0, "highatomic")
    with pytest.raises(TypeError, match="migratetype must be a str or int, not float"):
        b.alloc_pages(0, 1.5)
    with pytest.raises(ValueError, match="migratetype 7 out of range"):
        b.alloc_pages(0, 7)
    assert migratetype_index("Movable") == 1 and migratetype_index(" RECLAIMABLE ") == 2
    with pytest.raises(ValueError, match=r"pfn -8 outside memory \(0..63\)"):
        b.free_pages(-8, 3)
    with pytest.raises(ValueError, match="pfn 64 outside memory"):
        b.free_pages(64, 0)
    with pytest.raises(ValueError, match="pfn 4 is not aligned to order 3"):
        b.free_pages(4, 3)
    with pytest.raises(ValueError, match=r"cannot free pfn 8 at order 3: it is free \(in the free "
                                         r"order-3 block at pfn 8\)"):
        b.free_pages(8, 3)
    p = b.alloc_pages(1)
    with pytest.raises(ValueError, match=f"cannot free pfn {p + 1} at order 0: it is inside the "
                                         f"order-1 allocation at pfn {p}"):
        b.free_pages(p + 1, 0)
    b.free_pages(p, 1)
    with pytest.raises(ValueError, match=f"cannot free pfn {p} at order 1: it is free"):
        b.free_pages(p, 1)                             # double free
    with pytest.raises(ValueError, match="order 9 at index 1 out of range"):
        b.alloc_batch([0, 9])
    with pytest.raises(TypeError, match="orders must be integers"):
        b.alloc_batch([0.5])
    q = b.alloc_batch([0, 0])
    with pytest.raises(ValueError, match=f"cannot free pfn {q[0]} at order 0 \\(index 1\\)"):
        b.free_batch([q[0], q[0]], [0, 0])
    assert b.stats()["bad_frees"] == 0                 # Python validation ran first
    b.check()
    with pytest.raises(ValueError, match="fill must be in"):
        b.churn(1, 10, fill=2)
    with pytest.raises(ValueError, match="weights"):
        b.churn(1, 10, orders=(0, 1), weights=(1,))


def test_check_detects_corruption():
    b = BuddyAllocator(64, 3, 2)
    b.check()
    st_ = b.frame_state()
    assert not st_.flags.writeable
    st_.flags.writeable = True                         # deliberately corrupt the kernel
    st_[4] = 0x40 | (1 << 4) | 2                       # a free head on no list
    with pytest.raises(AssertionError, match=r"pfn 4 inside the block at pfn 0 \(order 3\) has "
                                             r"state 0x52: blocks overlap"):
        b.check()
    st_[4] = 0
    st_[8] = 0x40 | (1 << 4) | 2                       # list member with the wrong order
    with pytest.raises(AssertionError, match=r"pfn 8 on list \(order 3, Movable\) has state 0x52, "
                                             r"expected 0x53"):
        b.check()
    st_[8] = 0x53
    b.check()
    p = b.alloc_pages(0)
    st_[p] = 0
    with pytest.raises(AssertionError, match=f"pfn {p} is inside no block"):
        b.check()


# ------------------------------------------------------- differential
@st.composite
def configs(draw):
    max_order = draw(st.integers(0, 6))
    pb = draw(st.integers(0, max_order))
    nr = draw(st.integers(1, 200))
    return nr, max_order, pb


ops = st.lists(st.one_of(
    st.tuples(st.just("alloc"), st.integers(0, 6), st.integers(0, 2)),
    st.tuples(st.just("free"), st.integers(0, 10**6)),
    st.tuples(st.just("split"), st.integers(0, 10**6), st.integers(0, 6)),
    st.tuples(st.just("batch"), st.lists(st.integers(0, 6), max_size=6), st.integers(0, 2)),
), max_size=60)


def apply_op(op, live, max_order, buddies, r):
    """One op of ``ops`` on every allocator of ``buddies`` and the reference: the
    same pfns from each; ``live`` holds the allocated (pfn, order) blocks."""
    if op[0] == "alloc":
        order = min(op[1], max_order)
        got = [b.alloc_pages(order, op[2]) for b in buddies]
        assert got == [r.alloc(order, op[2])] * len(buddies)
        if got[0] >= 0:
            live.append((got[0], order))
    elif op[0] == "batch":
        orders = [min(o, max_order) for o in op[1]]
        got = [b.alloc_batch(np.array(orders, dtype=np.int64), op[2]).tolist() for b in buddies]
        want = [r.alloc(o, op[2]) for o in orders]
        assert got == [want] * len(buddies)
        live += [(int(p), o) for p, o in zip(want, orders) if p >= 0]
    elif not live:
        return
    elif op[0] == "free":
        p, o = live.pop(op[1] % len(live))
        for b in buddies:
            b.free_pages(p, o)
        r.free(p, o)
    else:
        k = op[1] % len(live)
        p, o = live[k]
        new = min(op[2], o)
        for b in buddies:
            b.split(p, o, new)
        r.split(p, o, new)
        live[k:k + 1] = [(q, new) for q in range(p, p + (1 << o), 1 << new)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), ops)
def test_against_reference(cfg, seq):
    nr, max_order, pb = cfg
    b = BuddyAllocator(nr, max_order, pb)
    r = RefBuddy(nr, max_order, pb)
    assert_same(b, r)
    live = []
    for op in seq:
        apply_op(op, live, max_order, [b], r)
        b.check()
    assert_same(b, r)
    for p, o in live:
        b.free_pages(p, o)
        r.free(p, o)
    assert_same(b, r)
    b.check()
    assert b.nr_free_pages == nr


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**64 - 1), configs(), st.integers(0, 400),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_churn_against_reference(seed, cfg, steps, fill, free_prob):
    nr, max_order, pb = cfg
    orders = sorted({0, min(1, max_order), max_order})
    weights = [3, 2, 1][:len(orders)]
    b = BuddyAllocator(nr, max_order, pb)
    r = RefBuddy(nr, max_order, pb)
    res = b.churn(seed, steps, orders=orders, weights=weights, fill=fill, free_prob=free_prob)
    live, fails = r.churn(seed, steps, orders, weights, [MOVABLE, UNMOVABLE, RECLAIMABLE],
                          [16, 3, 1], fill, free_prob)
    assert list(zip(res["live_pfns"].tolist(), res["live_orders"].tolist())) == live
    assert res["failures_per_order"].tolist() == fails
    assert res["allocs"] + res["failures"] + res["frees"] == steps
    assert_same(b, r)
    b.check()
    b.free_batch(res["live_pfns"], res["live_orders"])
    assert b.nr_free_pages == nr
    b.check()


def test_churn_fragments_and_is_reproducible():
    a = BuddyAllocator(1 << 14, 10, 9)
    c = BuddyAllocator(1 << 14, 10, 9)
    ra = a.churn(42, 20000, orders=(0, 1, 2, 3, 4, 9), weights=(40, 10, 10, 10, 10, 1))
    rc = c.churn(42, 20000, orders=(0, 1, 2, 3, 4, 9), weights=(40, 10, 10, 10, 10, 1))
    assert np.array_equal(ra["live_pfns"], rc["live_pfns"])
    assert a.buddyinfo() == c.buddyinfo()
    a.check()
    idx = a.unusable_index()
    assert idx[0] == 0.0 and idx[10] > idx[4] > 0.0        # high orders are fragmented
    assert (np.diff(idx) >= 0).all()
    assert a.stats()["claimed"] > 0                         # mixed types claimed pageblocks


def test_alloc_batch_out_receives_the_pfns():
    """alloc_batch(out=) fills the caller's array with what a fresh call returns, and a
    wrong out is refused before anything is allocated."""
    a, b = BuddyAllocator(1024, 4, 2), BuddyAllocator(1024, 4, 2)
    orders = np.array([0, 3, 1, 4, 0, 2], dtype=np.int64)
    buf = np.full(orders.size, 7, dtype=np.int64)
    assert b.alloc_batch(orders, "unmovable", out=buf) is buf
    assert buf.tolist() == a.alloc_batch(orders, "unmovable").tolist()
    free0 = b.nr_free_pages
    for bad in (np.empty(5, dtype=np.int64), np.empty(6, dtype=np.int32),
                np.empty(12, dtype=np.int64)[::2], [0] * 6):
        with pytest.raises(ValueError, match="out must be a writable C-contiguous int64 array of length 6"):
            b.alloc_batch(orders, out=bad)
    ro = np.empty(6, dtype=np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be a writable"):
        b.alloc_batch(orders, out=ro)
    assert b.nr_free_pages == free0
    b.free_batch(buf, orders)
    assert b.nr_free_pages == 1024
    b.check()


def test_batch_calls_check_every_entry_before_allocating():
    """alloc_batch's checks run over the whole batch before the first allocation (the
    fast path takes an int64 array as is, other inputs are converted and checked)."""
    b = BuddyAllocator(1024, 4, 2)
    free0 = b.nr_free_pages
    for bad, val in (([0, 1, -1], -1), ([0, 5], 5), (np.array([2, 3, 17], dtype=np.uint8), 17)):
        with pytest.raises(ValueError, match=f"order {val} at index {len(bad) - 1} out of range 0..4"):
            b.alloc_batch(bad)
        assert b.nr_free_pages == free0 and b.stats()["allocs"].sum() == 0
    with pytest.raises(ValueError, match="orders must be one-dimensional"):
        b.alloc_batch(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="migratetype 3 at index 1 out of range"):
        b.alloc_batch([0, 0], np.array([1, 3]))
    with pytest.raises(ValueError, match="migratetype array shape"):
        b.alloc_batch([0, 0], np.array([1]))
    assert b.nr_free_pages == free0
    got = b.alloc_batch(np.array([0, 1, 2]), np.array([0, 1, 2], dtype=np.int64))
    assert [b.describe(p)[3] for p in got] == ["unmovable", "movable", "reclaimable"]
    with pytest.raises(ValueError, match="pfns and orders must be 1-D of equal length"):
        b.free_batch(got, [0, 1])
    with pytest.raises(TypeError, match="pfns must be integers"):
        b.free_batch(got.astype(float), [0, 1, 2])
    b.free_batch(got[::-1], np.array([2, 1, 0]))      # non-contiguous pfns, converted
    assert b.nr_free_pages == free0
    b.check()
