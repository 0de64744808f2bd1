"""Page-table benchmarks: batch translate vs a plain-C radix walk and a Python dict
walk (same workload, same run), and map throughput.

Workload (issue: foundation): 1M mapped 4K pages' worth of memory (4 GiB) in pages of
the geometry's granule, scattered over 64 GiB of VA; 10M random addresses inside them.
"""
import ctypes

import numpy as np
import pytest

import ppsize
from conftest import build_c, record

GEOS = ["arm64-4k-48", "arm64-16k-48", "arm64-64k-48"]
VA_SPAN = 64 << 30
MAPPED = 4 << 30
N_ADDR = 10_000_000
N_PY = 200_000          # the Python dict walk gets a slice; the cost is per address
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


def test_translate_ppsize(benchmark, loaded):
    """Batch loop steady state: output buffers reused (translate(out=)), as the
    C baseline reuses its output array."""
    g, vas, pas, probe, pt = loaded
    out = pt.translate(probe)
    tr = benchmark.pedantic(pt.translate, args=(probe,), kwargs={"out": out}, rounds=5, iterations=1)
    assert (tr.status == 0).all() and (tr.size == g.page_size).all()
    record(benchmark, "translate", g.name, "ppsize", probe.size)


def test_translate_ppsize_fresh_output(benchmark, loaded):
    """The same with fresh output arrays each call (first-touch cost included)."""
    g, vas, pas, probe, pt = loaded
    tr = benchmark.pedantic(pt.translate, args=(probe,), rounds=3, iterations=1)
    assert (tr.status == 0).all()
    record(benchmark, "translate-fresh-out", g.name, "ppsize", probe.size)


def test_translate_plain_c(benchmark, loaded, c_compiler):
    g, vas, pas, probe, pt = loaded
    lib = build_c(c_compiler, "radix_walk.c", "radix_walk")
    lib.rw_new.restype = ctypes.c_void_p
    u64p = ctypes.POINTER(ctypes.c_uint64)
    shifts = (ctypes.c_int * g.levels)(*g.shifts)
    entries = (ctypes.c_uint64 * g.levels)(*g.entries)
    r = lib.rw_new(g.levels, shifts, entries)
    lib.rw_map_pages(ctypes.c_void_p(r), vas.ctypes.data_as(u64p), pas.ctypes.data_as(u64p),
                     ctypes.c_size_t(vas.size), entries)
    out = np.empty_like(probe)

    def walk():
        lib.rw_translate(ctypes.c_void_p(r), probe.ctypes.data_as(u64p), out.ctypes.data_as(u64p),
                         ctypes.c_size_t(probe.size))
        return out

    benchmark.pedantic(walk, rounds=5, iterations=1)
    assert (out == pt.translate(probe).pa).all()      # same answers as ppsize
    record(benchmark, "translate", g.name, "plain-C", probe.size)


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
