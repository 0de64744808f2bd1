"""PageTable: differential tests against the reference, targeted behaviour, bad input."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppsize
from ppsize import PageTable, TranslateStatus
from ref_pagetable import RefPageTable

K, M, G = 1 << 10, 1 << 20, 1 << 30


# ------------------------------------------------------------ differential
def compare(pt, ref, probes):
    got = pt.translate(probes)
    for i, va in enumerate(probes):
        want = ref.translate(int(va))
        have = tuple(int(a[i]) for a in got)
        assert have == want, f"translate({int(va):#x}): model {have} reference {want}"
    assert pt.tables_per_level() == ref.tables()
    assert pt.vmpte_bytes == ref.vmpte_bytes()
    assert pt.table_bytes == ref.table_bytes()
    assert pt.leaf_counts() == ref.leaf_counts()
    pt.check()


def units(g):
    """Interesting granularities: page, contiguous run, blocks, contiguous blocks."""
    u = [g.page_size, g.cont_pte_size, g.pmd_size, g.cont_pmd_size] + list(g.block_sizes.values())
    return sorted(set(u))


@st.composite
def op(draw, g, base):
    kind = draw(st.sampled_from(["map", "map", "map", "unmap", "protect", "map_block"]))
    unit = draw(st.sampled_from(units(g)))
    page = g.page_size
    va = base + draw(st.integers(0, 3)) * unit + draw(st.sampled_from([0, 0, page, 5 * page]))
    if kind in ("map", "map_block"):
        block = kind == "map_block"
        max_pages = 4 * g.cont_ptes if not block else max(1, 2 * unit // page)
        npages = draw(st.integers(1, max(1, min(max_pages, 2 * unit // page))))
        if not block:
            npages = min(npages, 256)
        pa = draw(st.sampled_from([va, va + unit, 1 << 40, (1 << 40) + page]))
        prot = draw(st.sampled_from(["r", "rw", "rx"]))
        return ("map", va, pa, npages * page, prot, draw(st.booleans()) or block, block)
    size = draw(st.sampled_from([page, unit, 2 * unit, unit + 3 * page, g.cont_pte_size]))
    if kind == "unmap":
        return ("unmap", va, size)
    return ("protect", va, size, draw(st.sampled_from(["r", "rw", "rwx"])))


def run_ops(name, data):
    g = ppsize.geometry(name)
    base = g.cont_pmd_size * 4           # away from 0, aligned to everything
    pt, ref = PageTable(name), RefPageTable(name)
    for _ in range(data.draw(st.integers(1, 10))):
        o = data.draw(op(g, base))
        if o[0] == "map":
            _, va, pa, size, prot, cont, block = o
            if va + size > g.va_size:
                continue
            if ref.overlaps(va, size):
                with pytest.raises(ValueError, match="overlaps"):
                    pt.map(va, pa, size, prot, contiguous=cont, block=block)
                continue
            pt.map(va, pa, size, prot, contiguous=cont, block=block)
            ref.map(va, pa, size, ppsize.pagetable.parse_prot(prot), cont, block)
        elif o[0] == "unmap":
            pt.unmap(o[1], o[2])
            ref.unmap(o[1], o[2])
        else:
            pt.protect(o[1], o[2], o[3])
            ref.protect(o[1], o[2], ppsize.pagetable.parse_prot(o[3]))
        edges = {a for (l, a0) in ref.leaves for a in (a0, a0 + ref.span[l] - g.page_size)}
        probes = sorted(edges | {o[1], o[1] - g.page_size, o[1] + g.page_size, g.va_size, 2**64 - 1})
        probes = [p for p in probes if 0 <= p < 2**64][:2000]
        compare(pt, ref, np.array(probes, dtype=np.uint64))


@pytest.mark.parametrize("name", ppsize.GEOMETRIES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_differential(name, data):
    run_ops(name, data)


# ---------------------------------------------------------------- behaviour
def test_contiguous_bit_only_on_aligned_runs():
    pt = PageTable("arm64-4k-48")
    # VA aligned, PA misaligned by one page: contpte_set_ptes sets no CONT
    pt.map(0x100000, 0x201000, 64 * K)
    assert set(pt.translate(np.arange(0x100000, 0x110000, 4096)).size) == {4096}
    # 96K starting at a 64K boundary: one run of 16 with CONT, 8 without
    pt.map(0x200000, 0x400000, 96 * K)
    sizes = pt.translate(np.arange(0x200000, 0x218000, 4096)).size
    assert list(sizes) == [64 * K] * 16 + [4 * K] * 8
    assert pt.tlb_entries() == 16 + 1 + 8
    pt.check()


def test_partial_unmap_unfolds_run_and_frees_tables():
    pt = PageTable("arm64-16k-48")
    pt.map(0x4000000, 0x8000000, 2 * M)       # one 128-PTE run of 16K pages
    assert pt.translate([0x4000000]).size[0] == 2 * M
    pt.unmap(0x4000000, 16 * K)
    tr = pt.translate([0x4000000, 0x4004000])
    assert list(tr.status) == [TranslateStatus.NOT_MAPPED, TranslateStatus.OK]
    assert tr.size[1] == 16 * K
    assert pt.tables == {"PGD": 1, "PUD": 1, "PMD": 1, "PTE": 1}
    pt.unmap(0x4000000, 2 * M)
    assert pt.tables == {"PGD": 1, "PUD": 0, "PMD": 0, "PTE": 0}
    assert pt.vmpte_bytes == 0 and pt.table_bytes == 2 * 8
    pt.check()


def test_block_split_on_partial_unmap_and_protect():
    pt = PageTable("x86_64-4l")
    pt.map(1 * G, 2 * G, 1 * G, block=True)
    tr = pt.translate([1 * G + 5])
    assert (tr.level[0], tr.size[0], tr.pa[0]) == (1, 1 * G, 2 * G + 5)
    assert pt.tables == {"PGD": 1, "PUD": 1, "PMD": 0, "PTE": 0}
    pt.protect(1 * G + 4 * M, 4 * K, "r")   # PUD block -> PMD blocks -> PTEs
    assert pt.tables == {"PGD": 1, "PUD": 1, "PMD": 1, "PTE": 1}
    tr = pt.translate([1 * G + 4 * M, 1 * G + 4 * M + 4 * K, 1 * G])
    assert list(tr.prot) == [1, 3, 3] and list(tr.level) == [3, 3, 2]
    assert pt.vmpte_bytes == 3 * 4096     # PUD + PMD + PTE tables, not the PGD
    pt.check()


def test_protect_keeps_whole_runs_and_refolds_on_last_pte():
    pt = PageTable("arm64-4k-48")
    pt.map(0x100000, 0x300000, 64 * K, "rw")
    pt.protect(0x100000, 64 * K, "r")            # whole run: stays one TLB entry
    assert pt.translate([0x100000]).size[0] == 64 * K
    pt.protect(0x100000, 4 * K, "rw")            # partial: unfolds
    assert pt.translate([0x10f000]).size[0] == 4 * K
    pt.protect(0x100000, 4 * K, "r")             # not the run's last PTE: no fold
    assert pt.translate([0x10f000]).size[0] == 4 * K
    pt.protect(0x10f000, 4 * K, "r")             # last PTE, run uniform: contpte_try_fold
    assert pt.translate([0x100000]).size[0] == 64 * K
    pt.check()


def test_cont_pmd_blocks():
    pt = PageTable("arm64-4k-48")
    pt.map(32 * M, 64 * M, 32 * M, block=True)   # CONT_PMDS = 16 x 2M
    assert pt.translate([32 * M]).size[0] == 32 * M
    pt.unmap(40 * M, 2 * M)
    tr = pt.translate([32 * M, 40 * M])
    assert tr.size[0] == 2 * M and tr.status[1] == TranslateStatus.NOT_MAPPED
    pt.check()


def test_translate_shapes_and_dtypes():
    pt = PageTable("arm64-64k-48")
    pt.map(0, 0x10000, 64 * K)
    vas = np.array([[0, 8], [64 * K, 1 << 48]], dtype=np.int64)
    tr = pt.translate(vas)
    assert tr.pa.shape == (2, 2) and tr.pa.dtype == np.uint64
    assert tr.status.tolist() == [[0, 0], [1, 2]]
    assert tr.pa.tolist() == [[0x10000, 0x10008], [0, 0]]
    assert pt.translate([-1]).status[0] == TranslateStatus.BAD_ADDRESS
    assert pt.translate(np.array([], dtype=np.uint32)).pa.shape == (0,)


def test_map_many_matches_individual_maps():
    a, b = PageTable("arm64-4k-48"), PageTable("arm64-4k-48")
    vas = np.arange(16) * 128 * K + 0x10000000
    pas = (np.arange(16)[::-1] * 64 * K + 0x40000000).astype(np.uint64)
    a.map_many(vas, pas, 64 * K)
    for v, p in zip(vas, pas):
        b.map(int(v), int(p), 64 * K)
    probe = np.arange(0x10000000, 0x10000000 + 16 * 128 * K, 4 * K)
    assert all((x == y).all() for x, y in zip(a.translate(probe), b.translate(probe)))
    assert a.tlb_entries() == 16
    a.check()


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, exc, match", [
    (lambda pt: pt.map(0x1001, 0, 4096), ValueError, "0x1001"),
    (lambda pt: pt.map(0x1000, 0x10, 4096), ValueError, "pa 0x10"),
    (lambda pt: pt.map(0x1000, 0, 100), ValueError, "size 0x64"),
    (lambda pt: pt.map(0x1000, 0, 0), ValueError, "positive"),
    (lambda pt: pt.map(-4096, 0, 4096), ValueError, "negative"),
    (lambda pt: pt.map(1 << 48, 0, 4096), ValueError, "48-bit"),
    (lambda pt: pt.map(0x1000, 1 << 52, 4096), ValueError, "52-bit"),
    (lambda pt: pt.map(0x1000, 0, 4096, prot="rwz"), ValueError, "rwz"),
    (lambda pt: pt.map(0x1000, 0, 4096, prot=3), TypeError, "prot"),
    (lambda pt: pt.map(4096.0, 0, 4096), TypeError, "va"),
    (lambda pt: pt.unmap(0x1000, "4Q"), ValueError, "4Q"),
    (lambda pt: pt.protect(0x1000, -4096, "r"), ValueError, "-4096"),
    (lambda pt: pt.translate([0.5, 1.5]), TypeError, "float64"),
    (lambda pt: pt.translate(["a"]), TypeError, "integers"),
    (lambda pt: pt.translate([2**70]), ValueError, "64 bits"),
    (lambda pt: PageTable("arm64-8k-48"), ValueError, "arm64-8k-48"),
    (lambda pt: pt.map_many([0, 4096], [0], 4096), ValueError, "differ"),
    (lambda pt: pt.map_many([0, 4096], [0, 0], 8192), ValueError, "overlap"),
])
def test_bad_input(call, exc, match):
    pt = PageTable("arm64-4k-48")
    with pytest.raises(exc, match=match):
        call(pt)
    pt.check()
    assert pt.tables_per_level() == [1, 0, 0, 0]


def test_map_over_existing_is_an_error():
    pt = PageTable("arm64-4k-48")
    pt.map(0x10000, 0, 64 * K)
    with pytest.raises(ValueError, match="overlaps"):
        pt.map(0x1f000, 0x1000000, 8 * K)
    assert pt.translate([0x20000]).status[0] == TranslateStatus.NOT_MAPPED
    pt.check()
