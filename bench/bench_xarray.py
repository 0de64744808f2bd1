"""XArray benchmarks: load and store throughput of ppsize._core.xarray.XArray against a
Python dict doing the same work in the same run.

Workloads, N = 2**20 order-0 entries (pfn << 2), NumPy arrays in and out on both sides:
- seq:  indices 0..N-1 (a densely cached file read front to back: the page cache case)
- rand: N distinct random indices in [0, 16 N) (a sparse file: ~4 entries per leaf node,
        the tree is memory-latency bound, like Linux's)
ppsize: XArray.store_batch / XArray.load_batch (one nogil loop each; stores into a fresh
        XArray so node allocation and tree growth are included).
dict:   the obvious Python: `for i, e in zip(idx.tolist(), ent.tolist()): d[i] = e` and
        `np.array([d.get(i, 0) for i in idx.tolist()], np.uint64)`.
The ratio table printed at the end (bench/conftest.py) is dict time / ppsize time.
"""
import numpy as np
import pytest

from conftest import record
from ppsize._core.xarray import XArray

N = 1 << 20
PATTERNS = ["seq", "rand"]


def workload(pattern):
    if pattern == "seq":
        idx = np.arange(N, dtype=np.uint64)
    else:
        idx = np.random.default_rng(42).choice(16 * N, N, replace=False).astype(np.uint64)
    ent = (np.arange(1, N + 1, dtype=np.uint64)) << np.uint64(2)
    return idx, ent


@pytest.mark.parametrize("pattern", PATTERNS)
def test_store_ppsize(benchmark, pattern):
    idx, ent = workload(pattern)

    def setup():
        return (XArray(),), {}

    def run(xa):
        xa.store_batch(idx, ent)
        return xa

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    xa = XArray()
    xa.store_batch(idx, ent)
    assert (xa.load_batch(idx) == ent).all()
    benchmark.extra_info["nr_nodes"] = xa.nr_nodes
    benchmark.extra_info["slab_bytes"] = xa.slab_bytes
    record(benchmark, "xarray", f"store {pattern} 1M", "ppsize", N)


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
    q = np.random.default_rng(7).permutation(idx) if pattern == "rand" else idx
    out = benchmark.pedantic(xa.load_batch, args=(q,), rounds=5, iterations=1)
    assert (out[np.argsort(q)] == ent[np.argsort(idx)]).all()
    record(benchmark, "xarray", f"load {pattern} 1M", "ppsize", N)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_load_dict(benchmark, pattern):
    idx, ent = workload(pattern)
    d = dict(zip(idx.tolist(), ent.tolist()))
    q = np.random.default_rng(7).permutation(idx) if pattern == "rand" else idx

    def run():
        return np.array([d.get(i, 0) for i in q.tolist()], dtype=np.uint64)

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    assert out.shape == (N,)
    record(benchmark, "xarray", f"load {pattern} 1M", "dict", N)
