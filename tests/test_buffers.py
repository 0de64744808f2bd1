"""Class 1 of issue 15: every entry point whose nogil loop trusts a caller's buffer,
size, index or address range checks it first (a clear ValueError naming it), also
when the compiled kernels are called directly. Each case crashed, hung or wrote
out of bounds before."""
import numpy as np
import pytest

import ppsize
from ppsize._core.folio import FolioTable
from ppsize._core.mm import MMCore
from ppsize._core.pagetable import PageTableCore
from ppsize._core.vma import VmaTable

N = 100_000


def _tr(n_pa, n_rest):
    return ppsize.Translation(np.empty(n_pa, np.uint64), np.empty(n_rest, np.uint8),
                              np.empty(n_rest, np.int8), np.empty(n_rest, np.uint8),
                              np.empty(n_rest, np.uint8))


@pytest.mark.parametrize("field", ["status", "level", "unit_shift", "prot"])
def test_translate_out_every_array_checked(field):
    pt = ppsize.PageTable("arm64-4k-48")
    pt.map(0x400000, 0x80000000, "64K")
    out = ppsize.Translation.empty(N)
    setattr(out, field, getattr(out, field)[:1])
    with pytest.raises(ValueError, match=f"out.{field} must be"):
        pt.translate(np.full(N, 0x400000, np.uint64), out=out)
    good = ppsize.Translation.empty(N)
    assert pt.translate(np.full(N, 0x400000, np.uint64), out=good) is good
    assert (good.pa == 0x80000000).all()


def test_translate_out_wrong_dtype_and_kind():
    pt = ppsize.PageTable("arm64-4k-48")
    out = ppsize.Translation.empty(4)
    out.level = np.empty(4, np.int64)
    with pytest.raises(ValueError, match="out.level must be a int8"):
        pt.translate([0, 1, 2, 3], out=out)
    with pytest.raises(TypeError, match="out must be a Translation"):
        pt.translate([0], out=(np.empty(1),) * 5)


def test_core_translate_short_outputs():
    pt = PageTableCore("arm64-4k-48")
    v = np.zeros(N, np.uint64)
    with pytest.raises(ValueError, match="pa has 1 elements; the batch has 100000"):
        pt._translate(v, np.empty(1, np.uint64), *[np.empty(N, d) for d in (np.uint8, np.int8, np.uint8, np.uint8)])
    with pytest.raises(ValueError, match="prot has 3 elements"):
        pt._translate(v, np.empty(N, np.uint64), np.empty(N, np.uint8), np.empty(N, np.int8),
                      np.empty(N, np.uint8), np.empty(3, np.uint8))


def test_core_map_many_and_ranges():
    pt = PageTableCore("arm64-4k-48")
    with pytest.raises(ValueError, match="pas has 1 elements"):
        pt._map_many(np.arange(N, dtype=np.uint64) * 4096, np.zeros(1, np.uint64), 4096, 3, True, False)
    with pytest.raises(ValueError, match="not inside the user VA"):
        pt._map(1 << 60, 0, 4096, 3, True, False)          # would alias the low VA (masked index)
    with pytest.raises(ValueError, match="not inside the user VA"):
        pt._unmap((1 << 64) - 4096, 8192)                   # va + size wraps
    with pytest.raises(ValueError, match="not aligned"):
        pt._map(123, 0, 4096, 3, True, False)
    with pytest.raises(ValueError, match="pa 0x2 is not page-aligned"):
        pt._map(0, 2, 4096, 3, True, False)                 # low PA bits would be DESC_TABLE
    with pytest.raises(ValueError, match="prot 0x40"):
        pt._map(0, 0, 4096, 0x40, True, False)
    with pytest.raises(ValueError, match="size 0x0"):
        pt._first_mapped(np.zeros(1, np.uint64), 0)
    with pytest.raises(ValueError, match="level 99"):
        pt._grow(99, 10)
    pt.check()
    assert pt.tables_per_level() == [1, 0, 0, 0]


@pytest.fixture
def proc():
    k = ppsize.Kernel("4K", "64M")
    p = k.spawn()
    return k, p, p.mmap("1M")


def test_mm_access_buffers(proc):
    k, p, a = proc
    vas = np.full(N, a, np.uint64)
    none = np.zeros(0, np.uint8)
    with pytest.raises(ValueError, match="out has 1 elements"):
        p.mm.access(vas, none, True, np.empty(1, np.uint8), none)
    with pytest.raises(ValueError, match=r"writes has 1 elements.*\(or give 0 for none\)"):
        p.mm.access(vas, np.zeros(1, np.uint8), True, np.empty(N, np.uint8), none)
    with pytest.raises(ValueError, match="insns has 2 elements"):
        p.mm.access(vas, none, True, np.empty(N, np.uint8), np.zeros(2, np.uint8))
    k.check()


def test_mm_add_mapcounts_and_ranges(proc):
    k, p, a = proc
    p.access(np.arange(a, a + (1 << 20), 4096, dtype=np.uint64), write=True)
    with pytest.raises(ValueError, match="counts .one per frame. has 1 elements"):
        p.mm.add_mapcounts(np.zeros(1, np.int32))
    limit = p.mm.pt.va_limit
    # each of these looped forever (u64 wrap) or walked past the VA before
    for call in (lambda: p.mm.zap_range((1 << 64) - 4096, (1 << 64) - 1),
                 lambda: p.mm.protect(0, (1 << 64) - 1, 3),
                 lambda: p.mm.move(a, a + 4096, (1 << 64) - 4096),
                 lambda: p.mm.free_pgtables(limit, 0),
                 lambda: p.mm.mapped_stats(5, limit + 1),
                 lambda: p.mm.split_at(limit + 1)):
        with pytest.raises(ValueError, match="not inside the user VA"):
            call()
    with pytest.raises(ValueError, match="same kernel and geometry"):
        p.mm.fork_copy(p.mm, a, a + 4096, True)
    k.check()
    assert p.status()["RssAnon"] == 1024


def test_mmcore_needs_empty_table_of_a_fitting_granule(proc):
    k, p, a = proc
    pt = ppsize.PageTable("arm64-4k-48")
    pt.map(0, 1 << 40, "4K")                       # a leaf beyond every frame of k
    with pytest.raises(ValueError, match="empty page table"):
        MMCore(k.core, pt, VmaTable(), 12, False, 99, 3, k.pagecache.core)
    with pytest.raises(ValueError, match="page shifts"):
        MMCore(k.core, ppsize.PageTable("arm64-4k-48"), VmaTable(), 40, False, 99, 3, k.pagecache.core)
    other = ppsize.Kernel("4K", "64M")
    with pytest.raises(ValueError, match="another kernel"):
        MMCore(k.core, ppsize.PageTable("arm64-4k-48"), VmaTable(), 12, False, 99, 3, other.pagecache.core)


def _run_args(t, n, **over):
    z = np.zeros
    args = dict(vas=z(n, np.uint64), asids=z(0, np.uint16), asid_all=1, sides=z(0, np.uint8), side_all=0,
                m_off=z(t.max_asids + 1, np.int64), m_start=z(0, np.uint64), m_end=z(0, np.uint64),
                m_unit=z(0, np.uint64), m_pa=z(0, np.uint64), m_leaf=z(0, np.int32),
                result=z(n, np.int8), check=False)
    args.update(over)
    return list(args.values())


def test_tlb_core_run_checks_every_index():
    t = ppsize.TLB("cortex-a76")
    c = t.core
    z = np.zeros
    cases = {
        "result has 1 elements": dict(result=z(1, np.int8)),
        "asids has 1 elements": dict(asids=z(1, np.uint16)),
        "sides has 7 elements": dict(sides=z(7, np.uint8)),
        r"m_off \(max_asids \+ 1 offsets\) has 1": dict(m_off=z(1, np.int64)),
        "asids must be <": dict(asid_all=65535),
        "m_start has 0 elements; the batch has 2": dict(m_off=np.full(t.max_asids + 1, 2, np.int64)),
    }
    for msg, over in cases.items():
        with pytest.raises(ValueError, match=msg):
            c.run(*_run_args(t, 1000, **over))
    for call, msg in ((lambda: c.entries(10 ** 6), "array 1000000 out of range"),
                      (lambda: c.array_info(-5), "array -5 out of range"),
                      (lambda: c.lru_order(0, 10 ** 9), "set 1000000000 out of range"),
                      (lambda: c.walk_fill_one(1, 0, 0, 1000, 0, 4096, 0, [0] * 5), "leaf_level 1000")):
        with pytest.raises(ValueError, match=msg):
            call()
    c.check()


def test_vma_and_folio_indices():
    v = VmaTable()
    with pytest.raises(IndexError, match="out of range for 0 VMAs"):
        v.mergeable(10 ** 6, 5)
    f = FolioTable(16)
    with pytest.raises(ValueError, match="frames -100000..16"):
        f.view(-100000, 16)
    assert f.view(2, 5).shape == (3,)
