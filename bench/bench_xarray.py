"""XArray benchmarks: load and store throughput of ppsize._core.xarray.XArray against a
Python dict doing the same work in the same run.

Workloads, N = 2**20 order-0 entries (pfn << 2), NumPy arrays in and out on both sides:
- seq:    indices 0..N-1 (a densely cached file read front to back: the page cache case)
- perm:   the same indices in random order (random reads of a cached 4 GiB file)
- sparse: N distinct random indices in [0, 16 N): ~4 entries per leaf node, so a store
          allocates a 576-byte node every 4 entries (147 MB of nodes for 8 MB of entries)
          and the tree is memory-bound, like Linux's
ppsize:   XArray.store_batch / XArray.load_batch (one nogil loop each; stores into a fresh
          XArray so node allocation and tree growth are included).
dict:     the obvious Python: `for i, e in zip(idx.tolist(), ent.tolist()): d[i] = e` and
          `np.array([d.get(i, 0) for i in idx.tolist()], np.uint64)`.
plain-C:  bench/c/radix_store.c, compiled at bench time: an order-0 radix-tree store with
          XArray-sized nodes (one calloc each) doing ppsize's work: the entry check pass,
          xas_expand with the tree's marks carried into new roots, count and nr_values
          (value entries) per node, the sibling (multi-index) checks of the old and next
          slot. It does not split multi-index entries, erase or shrink (not benchmarked),
          nor keep ppsize's lookup cache; see the file's comment. Its cost (callgrind,
          gcc -O2 like every baseline): 93 instructions per sequential store, 99 per
          sparse one (plus calloc); the order-0 store alone was 57: the entry check
          pass ~9, the sibling checks of the old and next slot ~18, nr_values and count
          ~6. The checks are written branch-light (one test of both slots, a
          branch-free check pass); that is what the equal work costs, not slack.
Measurement: test_store runs ppsize and plain-C in turns in one test (ROUNDS rounds
each, min per side, bench/conftest.py record_value), so a change of load on this shared
machine moves both sides instead of flipping the ratio.
The ratio table printed at the end (bench/conftest.py) is dict (or C) time / ppsize time.
"""
import ctypes
import time

import numpy as np
import pytest

from conftest import build_c, pedantic_gc_off, record, record_value
from ppsize._core.xarray import XArray

N = 1 << 20
PATTERNS = ["seq", "perm", "sparse"]
ROUNDS = 11             # timed rounds of each side in test_store


def workload(pattern):
    if pattern == "seq":
        idx = np.arange(N, dtype=np.uint64)
    elif pattern == "perm":
        idx = np.random.default_rng(42).permutation(N).astype(np.uint64)
    else:
        idx = np.random.default_rng(42).choice(16 * N, N, replace=False).astype(np.uint64)
    ent = (np.arange(1, N + 1, dtype=np.uint64)) << np.uint64(2)
    return idx, ent


@pytest.fixture(scope="module")
def radix_store(c_compiler):
    lib = build_c(c_compiler, "radix_store.c", "radix_store")
    lib.rs_new.restype = ctypes.c_void_p
    lib.rs_nodes.restype = ctypes.c_size_t
    lib.rs_nodes.argtypes = [ctypes.c_void_p]
    lib.rs_load.restype = ctypes.c_uint64
    lib.rs_load.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    lib.rs_store_batch.restype = ctypes.c_long
    lib.rs_free.argtypes = [ctypes.c_void_p]
    return lib


@pytest.mark.parametrize("pattern", PATTERNS)
def test_store(benchmark, pattern, radix_store):
    """ppsize's store_batch and the plain-C store in turns (C first in odd rounds),
    ROUNDS timed rounds each; each side's figure is the min of its rounds. Each round
    stores into a fresh tree made untimed (XArray(), rs_new) and drops it untimed
    after its timer stops, so both sides allocate every node in the timed part."""
    idx, ent = workload(pattern)
    lib = radix_store
    u64p = ctypes.POINTER(ctypes.c_uint64)
    ip, ep = idx.ctypes.data_as(u64p), ent.ctypes.data_as(u64p)
    times = {"ppsize": [], "plain-C": []}

    def ppsize_round():
        xa = XArray()
        t0 = time.perf_counter()
        xa.store_batch(idx, ent)
        t1 = time.perf_counter()
        times["ppsize"].append(t1 - t0)
        return xa

    def c_round():
        t = lib.rs_new()
        t0 = time.perf_counter()
        failed = lib.rs_store_batch(ctypes.c_void_p(t), ip, ep, ctypes.c_size_t(N))
        t1 = time.perf_counter()
        times["plain-C"].append(t1 - t0)
        assert failed == 0
        return t

    state = {"r": 0}

    def one_round():
        r = state["r"]
        state["r"] = r + 1
        for side in ((ppsize_round, c_round) if r % 2 == 0 else (c_round, ppsize_round)):
            res = side()
            if side is c_round:
                lib.rs_free(res)
            del res

    lib.rs_free(c_round())                      # warm-up of each side, untimed
    ppsize_round()
    times["ppsize"].clear()
    times["plain-C"].clear()
    pedantic_gc_off(benchmark, one_round, ROUNDS)
    xa = XArray()
    xa.store_batch(idx, ent)
    assert (xa.load_batch(idx) == ent).all()
    t = lib.rs_new()
    assert lib.rs_store_batch(ctypes.c_void_p(t), ip, ep, ctypes.c_size_t(N)) == 0
    assert lib.rs_nodes(t) == xa.nr_nodes                    # the same tree shape
    assert [lib.rs_load(t, int(i)) for i in idx[:1000]] == ent[:1000].tolist()
    lib.rs_free(t)
    benchmark.extra_info["nr_nodes"] = xa.nr_nodes
    benchmark.extra_info["slab_bytes"] = xa.slab_bytes
    for impl, ts in times.items():
        record_value("xarray", f"store {pattern} 1M", impl, min(ts) / N, benchmark)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_store_dict(benchmark, pattern):
    idx, ent = workload(pattern)

    def run():
        d = {}
        for i, e in zip(idx.tolist(), ent.tolist()):
            d[i] = e
        return d

    d = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(d) == N
    record(benchmark, "xarray", f"store {pattern} 1M", "dict", N)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_load_ppsize(benchmark, pattern):
    idx, ent = workload(pattern)
    xa = XArray()
    xa.store_batch(idx, ent)
    q = np.random.default_rng(7).permutation(idx) if pattern != "seq" else idx
    out = benchmark.pedantic(xa.load_batch, args=(q,), rounds=5, iterations=1)
    assert (out[np.argsort(q)] == ent[np.argsort(idx)]).all()
    record(benchmark, "xarray", f"load {pattern} 1M", "ppsize", N)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_load_dict(benchmark, pattern):
    idx, ent = workload(pattern)
    d = dict(zip(idx.tolist(), ent.tolist()))
    q = np.random.default_rng(7).permutation(idx) if pattern != "seq" else idx

    def run():
        return np.array([d.get(i, 0) for i in q.tolist()], dtype=np.uint64)

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    assert out.shape == (N,)
    record(benchmark, "xarray", f"load {pattern} 1M", "dict", N)
