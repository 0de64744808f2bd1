"""Deferred boot (CONFIG_DEFERRED_STRUCT_PAGE_INIT, mm/mm_init.c deferred_init_memmap /
deferred_grow_zone): a buddy that links its max-order blocks a step at a time gives
the eager boot's every pfn, count and list order, and a large Kernel costs little
host memory until its memory is used."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppsize
from ppsize.buddy import BuddyAllocator
from ref_buddy import RefBuddy
from test_buddy import apply_op, assert_same, configs, ops


def same_visible(d: BuddyAllocator, e: BuddyAllocator):
    """What can be seen without linking the deferred blocks agrees."""
    sd, se = d.stats(), e.stats()
    for key in ("nr_free", "allocs", "failures", "frees", "claimed", "stolen", "bad_frees"):
        assert np.array_equal(sd[key], se[key]), key
    assert d.free_blocks(by_migratetype=True).tolist() == e.free_blocks(by_migratetype=True).tolist()
    assert d.free_mask().tolist() == e.free_mask().tolist()
    assert list(d.pageblock_migratetypes()) == list(e.pageblock_migratetypes())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), ops, st.integers(1, 3))
def test_deferred_against_eager_and_reference(cfg, seq, step_blocks):
    nr, max_order, pb = cfg
    d = BuddyAllocator(nr, max_order, pb, deferred=step_blocks << max_order)
    e = BuddyAllocator(nr, max_order, pb, deferred=False)
    r = RefBuddy(nr, max_order, pb)
    assert e.deferred_pages == 0
    full = (nr >> max_order) << max_order
    assert d.deferred_pages == max(0, full - (step_blocks << max_order))
    same_visible(d, e)
    live = []
    for op in seq:
        apply_op(op, live, max_order, [d, e], r)
        same_visible(d, e)
        probe = op[-1] % nr
        assert d.describe(probe) == e.describe(probe)
    # linking what is left (free_list / check do) gives the eager lists exactly
    assert_same(d, r)
    assert d.deferred_pages == 0
    d.check()
    assert d.frame_state().tolist() == e.frame_state().tolist()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**64 - 1), configs(), st.integers(0, 400), st.floats(0.0, 1.0))
def test_deferred_churn_matches_eager(seed, cfg, steps, fill):
    nr, max_order, pb = cfg
    d = BuddyAllocator(nr, max_order, pb, deferred=1)
    e = BuddyAllocator(nr, max_order, pb, deferred=False)
    rd = d.churn(seed, steps, fill=fill)
    re_ = e.churn(seed, steps, fill=fill)
    assert rd["live_pfns"].tolist() == re_["live_pfns"].tolist()
    assert rd["failures_per_order"].tolist() == re_["failures_per_order"].tolist()
    same_visible(d, e)
    d.check()
    assert d.frame_state().tolist() == e.frame_state().tolist()


def test_deferred_blocks_are_linked_in_eager_order():
    # 64 max-order blocks linked 4 at a time: the list a step at a time, then all
    d = BuddyAllocator(64 << 4, 4, 2, deferred=4 << 4)
    e = BuddyAllocator(64 << 4, 4, 2, deferred=False)
    assert d.deferred_pages == 60 << 4
    got = [d.alloc_pages(4) for _ in range(10)]
    assert got == [e.alloc_pages(4) for _ in range(10)] == [i << 4 for i in range(10)]
    assert d.deferred_pages == 52 << 4            # two more steps of 4 blocks
    d.free_pages(16, 4)                           # a max-order free goes to the head
    e.free_pages(16, 4)
    assert d.deferred_pages == 52 << 4
    assert d.deferred_init_all() == 52 << 4
    assert d.free_list(4, "movable").tolist() == e.free_list(4, "movable").tolist()
    assert d.free_list(4, "movable").tolist()[:3] == [16, 10 << 4, 11 << 4]
    d.check()


def test_tail_insert_onto_the_deferred_list_links_them_first():
    # an unmovable claim of a whole pageblock, freed back: the freed block merges
    # and returns to the head; a movable claim moving blocks with list_move_tail
    # (move_to_free_list) onto the max-order movable list must see the run first
    d = BuddyAllocator(32 << 3, 3, 3, deferred=1 << 3)
    e = BuddyAllocator(32 << 3, 3, 3, deferred=False)
    for b in (d, e):
        u = b.alloc_pages(0, "unmovable")         # claims block 0 for unmovable
        m = b.alloc_pages(3, "movable")
        assert (u, m) == (0, 8)
    assert d.describe(31 << 3) == e.describe(31 << 3) == ("free", 31 << 3, 3, "movable")
    same_visible(d, e)
    assert d.free_list(3, "movable").tolist() == e.free_list(3, "movable").tolist()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_large_kernel_costs_little_host_memory_until_used():
    # 64 GiB of 4K frames: 16M frames, ~33 B of per-frame arrays each (528 MiB
    # virtual); the eager boot wrote 14 B of each (~220 MiB)
    before = rss_bytes()
    k = ppsize.Kernel("4K", "64G", thp="never")
    boot = rss_bytes() - before
    b = k.core.buddy
    assert b.nr_pages == 16 << 20
    assert b.deferred_pages > b.nr_pages - (1 << 16)
    assert boot < 48 << 20, f"boot took {boot >> 20} MiB of host memory"
    p = k.spawn()
    va = p.mmap(1 << 30)
    p.access(np.arange(va, va + (1 << 30), 4096, dtype=np.uint64), write=True)
    used = rss_bytes() - before
    assert b.deferred_pages <= b.nr_pages - (1 << 18)   # a GiB's frames were linked
    assert used < 160 << 20, f"1 GiB faulted took {used >> 20} MiB of host memory"
    k.check()
    assert b.deferred_pages == 0                         # check() walks every frame
