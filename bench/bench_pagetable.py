"""Page-table benchmarks: batch translate vs plain-C radix walks and a Python dict
walk (same workload, same run), and map throughput.

Workload (issue: foundation): 1M mapped 4K pages' worth of memory (4 GiB) in pages of
the geometry's granule, scattered over 64 GiB of VA; 10M random addresses inside them.

Baselines (bench/c/radix_walk.c, compiled at bench time):

- ``plain-C`` (rw_translate) is equal work: one table walk per address writing the
  same five outputs as ``PageTable.translate`` (pa, status, level, unit_shift, prot),
  with the same bad-address check, block descriptors at any level and the contiguous
  bit; descriptors in ppsize's encoding. The test asserts all five outputs equal
  ppsize's for the benchmark addresses, and ``test_c_walk_equal_work`` checks the same
  on blocks, contiguous runs, holes, mixed prot and bad addresses. It does not
  prefetch or interleave walks; child tables are pointers (ppsize: pool indices).
- ``plain-C-pa-only`` (rw_translate_pa) is a lower bound, not equal work: the PA
  only, no status/level/unit/prot and no bad-address check (the walk this benchmark
  used before issue 13).

Measurement: test_translate runs ppsize and both C walks in turns in one test (ROUNDS
rounds each, min per side), so a load change on the shared machine moves all three.
"""
import ctypes

import numpy as np
import pytest

import ppsize
from conftest import build_c, interleaved, record, record_value

GEOS = ["arm64-4k-48", "arm64-16k-48", "arm64-64k-48"]
VA_SPAN = 64 << 30
MAPPED = 4 << 30
N_ADDR = 10_000_000
N_PY = 200_000          # the Python dict walk gets a slice; the cost is per address
ROUNDS = 11             # timed rounds of each side of test_translate
BASE = 1 << 40


def workload(name, seed=1):
    g = ppsize.geometry(name)
    page = g.page_size
    rng = np.random.default_rng(seed)
    slots = VA_SPAN // page
    npages = MAPPED // page
    vas = BASE + np.sort(rng.choice(slots, npages, replace=False)).astype(np.uint64) * np.uint64(page)
    pas = rng.permutation(npages).astype(np.uint64) * np.uint64(page) + np.uint64(1 << 32)
    probe = vas[rng.integers(0, npages, N_ADDR)] + rng.integers(0, page, N_ADDR).astype(np.uint64)
    return g, vas, pas, probe


@pytest.fixture(scope="module", params=GEOS)
def loaded(request):
    g, vas, pas, probe = workload(request.param)
    pt = ppsize.PageTable(g)
    pt.map_many(vas, pas, g.page_size, contiguous=False)
    return g, vas, pas, probe, pt


def test_translate_ppsize_fresh_output(benchmark, loaded):
    """The same with fresh output arrays each call (first-touch cost included)."""
    g, vas, pas, probe, pt = loaded
    tr = benchmark.pedantic(pt.translate, args=(probe,), rounds=3, iterations=1)
    assert (tr.status == 0).all()
    record(benchmark, "translate-fresh-out", g.name, "ppsize", probe.size)


class CWalk:
    """The plain-C tables of bench/c/radix_walk.c for one geometry."""

    def __init__(self, g, cc):
        self.g = g
        lib = self.lib = build_c(cc, "radix_walk.c", "radix_walk")
        lib.rw_new.restype = ctypes.c_void_p
        lv = g.levels
        cont = [1] * lv
        if lv >= 2:
            cont[-1], cont[-2] = g.cont_ptes, g.cont_pmds
        self.r = ctypes.c_void_p(lib.rw_new(lv, (ctypes.c_int * lv)(*g.shifts),
                                            (ctypes.c_uint64 * lv)(*g.entries),
                                            (ctypes.c_int * lv)(*cont), g.va_bits))

    def map_pages(self, vas, pas, prot=3):
        self.lib.rw_map_pages(self.r, _p(vas), _p(pas), ctypes.c_size_t(vas.size),
                              ctypes.c_uint64(prot << 3))

    def map_leaf(self, va, pa, level, prot=3, cont=False):
        self.lib.rw_map_leaf(self.r, ctypes.c_uint64(va), ctypes.c_uint64(pa), level,
                             ctypes.c_uint64((prot << 3) | (4 if cont else 0)))

    def translate(self, probe, out):
        """out: a ppsize.Translation of probe's shape, filled in place."""
        self.lib.rw_translate(self.r, _p(probe), _p(out.pa), _p(out.status), _p(out.level),
                              _p(out.unit_shift), _p(out.prot), ctypes.c_size_t(probe.size))
        return out

    def translate_pa(self, probe, pa):
        self.lib.rw_translate_pa(self.r, _p(probe), _p(pa), ctypes.c_size_t(probe.size))
        return pa


def _p(a):
    assert a.flags.c_contiguous
    return ctypes.c_void_p(a.ctypes.data)


def same_translation(a, b):
    for name in ("pa", "status", "level", "unit_shift", "prot"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x == y).all(), (name, np.flatnonzero(x != y)[:5])


@pytest.fixture(scope="module")
def c_walk(loaded, c_compiler):
    g, vas, pas, probe, pt = loaded
    w = CWalk(g, c_compiler)
    w.map_pages(vas, pas)
    return w


def test_translate(benchmark, loaded, c_walk):
    """ppsize's batch translate in its steady state (output buffers reused,
    translate(out=), as the C walks reuse theirs), the equal-work C walk and the
    PA-only one, in turns (conftest.interleaved), ROUNDS rounds each, min per side: a
    change of the machine's load moves every side. The outputs are checked equal."""
    g, vas, pas, probe, pt = loaded
    out = pt.translate(probe)
    c_out = ppsize.Translation.empty(probe.shape)
    c_pa = np.empty_like(probe)
    times = interleaved(benchmark, {"ppsize": lambda: pt.translate(probe, out=out),
                                    "plain-C": lambda: c_walk.translate(probe, c_out),
                                    "plain-C-pa-only": lambda: c_walk.translate_pa(probe, c_pa)},
                        ROUNDS)
    assert (out.status == 0).all() and (out.size == g.page_size).all()
    same_translation(c_out, out)
    assert (c_pa == out.pa).all()
    for side, t in times.items():
        record_value("translate", g.name, side, min(t) / probe.size, benchmark)


@pytest.mark.parametrize("name", GEOS)
def test_c_walk_equal_work(name, c_compiler):
    """The equal-work C walk gives ppsize's five outputs on blocks, contiguous runs,
    pages of mixed prot, holes and bad addresses (not a timing)."""
    g = ppsize.geometry(name)
    page, last = g.page_size, g.levels - 1
    pt, w = ppsize.PageTable(g), CWalk(g, c_compiler)
    va, regions = BASE, []

    def place(size, align):
        nonlocal va
        va = (va + align - 1) // align * align
        regions.append((va, va + size + page))    # and a page past the end
        start, va = va, va + 2 * size             # leave a hole after it
        return start

    pa0 = 1 << 44
    for l in g.block_levels:                      # one block per block level
        span = 1 << g.shifts[l]
        v = place(span, span)
        pt.map(v, v - BASE + pa0, span, "r", contiguous=False, block=True)
        w.map_leaf(v, v - BASE + pa0, l, prot=1)
    pmd = 1 << g.shifts[last - 1]                 # one contiguous run of PMD blocks
    v = place(g.cont_pmds * pmd, g.cont_pmds * pmd)
    pt.map(v, v - BASE + pa0, g.cont_pmds * pmd, "rw", contiguous=True, block=True)
    for i in range(g.cont_pmds):
        w.map_leaf(v + i * pmd, v - BASE + pa0 + i * pmd, last - 1, prot=3, cont=True)
    run = g.cont_ptes * page                      # one contiguous run of pages
    v = place(run, run)
    pt.map(v, v - BASE + pa0, run, "rwx", contiguous=True)
    for i in range(g.cont_ptes):
        w.map_leaf(v + i * page, v - BASE + pa0 + i * page, last, prot=7, cont=True)
    v = place(4 * page, page)                     # pages of mixed prot
    for i, prot in enumerate(("r", "rw", "rx", "rwx")):
        pt.map(v + i * page, (1 << 36) + i * page, page, prot, contiguous=False)
        w.map_leaf(v + i * page, (1 << 36) + i * page, last,
                   prot=ppsize.pagetable.parse_prot(prot))
    rng = np.random.default_rng(3)
    probe = np.concatenate([rng.integers(a, b, 5_000, dtype=np.uint64) for a, b in regions] +
                           [np.array([0, (1 << g.va_bits) - 1, 1 << g.va_bits, 2 ** 64 - 1],
                                     np.uint64)])
    want = pt.translate(probe)
    got = w.translate(probe, ppsize.Translation.empty(probe.shape))
    same_translation(got, want)
    for s in (0, 1, 2):                           # every status and block/cont unit seen
        assert (want.status == s).any()
    units = set(want.unit_shift[want.status == 0].tolist())
    assert len(units) == len(g.block_levels) + 3, units


def test_translate_python_dict(benchmark, loaded):
    g, vas, pas, probe, pt = loaded
    shifts = g.shifts
    masks = [n - 1 for n in g.entries]
    root: dict = {}
    for va, pa in zip(vas.tolist(), pas.tolist()):
        t = root
        for s, m in zip(shifts[:-1], masks[:-1]):
            t = t.setdefault((va >> s) & m, {})
        t[(va >> shifts[-1]) & masks[-1]] = pa
    sample = probe[:N_PY].tolist()
    off = g.page_size - 1

    def walk():
        out = []
        for va in sample:
            t = root
            for s, m in zip(shifts, masks):
                t = t.get((va >> s) & m)
                if t is None:
                    break
            out.append(0 if t is None else t | (va & off))
        return out

    out = benchmark.pedantic(walk, rounds=1, iterations=1)
    assert out == pt.translate(probe[:N_PY]).pa.tolist()
    record(benchmark, "translate", g.name, "python-dict", N_PY)


@pytest.mark.parametrize("name", GEOS)
def test_map_many(benchmark, name):
    g, vas, pas, _ = workload(name)

    def build():
        pt = ppsize.PageTable(g)
        pt.map_many(vas, pas, g.page_size, contiguous=False)
        return pt

    pt = benchmark.pedantic(build, rounds=3, iterations=1)
    assert pt.leaf_counts()[0][-1] == vas.size
    record(benchmark, "map_many", name, "ppsize", vas.size)
