"""Class 6 of issue 15: directed tests for rules that only the random differential
tests reached (mutation testing found them): each pins one rule with numbers derived
from the geometry or from Linux's code."""
import numpy as np

import ppsize
from ppsize._core.xarray import XArray


def test_block_contiguous_run_needs_an_aligned_pa():
    """contpte_set_ptes at the PMD level (CONT_PMD, 16 x 2M on arm64 4K): the run gets
    the contiguous bit only if its VA *and* PA are aligned to 32M."""
    pt = ppsize.PageTable("arm64-4k-48")
    g = pt.geometry
    run = g.cont_pmds * g.pmd_size
    assert run == 32 << 20
    pt.map(1 << 30, 0x8000_0000, run, block=True)                   # PA aligned to the run
    pt.map(2 << 30, 0x8000_0000 + run + g.pmd_size, run, block=True)  # PA 2M-aligned only
    tr = pt.translate([1 << 30, (1 << 30) + (5 << 20), 2 << 30, (2 << 30) + (5 << 20)])
    assert list(tr.level) == [2, 2, 2, 2]                            # PMD blocks all
    assert list(tr.size) == [run, run, g.pmd_size, g.pmd_size]
    assert int(tr.pa[3]) == 0x8000_0000 + run + g.pmd_size + (5 << 20)
    assert pt.leaf_counts() == ([0, 0, 32, 0], [0, 0, 16, 0])
    assert pt.tlb_entries() == 1 + 16
    pt.check()


def test_marks_deep_in_a_three_level_xarray():
    """A mark on an entry two levels below the root is set in every ancestor node
    (node_set_mark up the path) so that a marked search from the root finds it, and
    cleared all the way up when the last marked entry below goes."""
    x = XArray()
    x.store(7, 9)
    x.store(5000, 11)                                  # 64 * 64 <= 5000 < 64 ** 3
    x.store(5001, 13)
    assert x.height == 3
    x.set_mark(5000, "dirty")
    x.set_mark(5001, "dirty")
    assert x.get_mark(5000, "dirty") and not x.get_mark(7, "dirty")
    assert x.items(mark="dirty")[0].tolist() == [5000, 5001]
    assert x.find(0, None, "dirty") == (5000, 11)
    x.check()
    x.clear_mark(5000, "dirty")
    assert x.find(0, None, "dirty") == (5001, 13)
    x.store(5001, 0)                                   # erasing the last marked entry
    assert x.find(0, None, "dirty") is None
    assert x.items(mark="dirty")[0].size == 0
    x.check()
    x.set_mark(7, "towrite")                           # a shallow mark beside the deep tree
    assert x.find(0, None, "towrite") == (7, 9) and x.find(8, None, "towrite") is None
    x.check()


def test_readahead_order_grows_after_each_async_readahead():
    """page_cache_async_ra: ra->order += 2 at every async readahead, and
    page_cache_ra_order clamps it to ilog2 of the window (32 pages: order 5), so
    sequential 64K reads of a file get folios of order 0 (sync), 2, 4, then 5."""
    k = ppsize.Kernel("4K", "256M")
    f = k.create_file("/a", "16M")
    p = k.spawn()
    seen = []
    for i in range(8):
        r = p.read(f, i * 65536, 65536)
        info = k.pagecache.info(f)
        seen.append((r["sync_ra"], r["async_ra"], r["folios_added"], info["ra_order"]))
    assert seen[:5] == [(1, 0, {0: 32}, 0), (0, 1, {2: 8}, 2), (0, 1, {4: 2}, 4),
                        (0, 0, {}, 4), (0, 1, {5: 1}, 5)]
    assert all(order == 5 for *_, order in seen[4:])
    assert k.pagecache.info(f)["ra_size"] == 32
    k.check()
