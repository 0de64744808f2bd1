"""Workload generators (ppsize.workloads): every compiled kernel against its own
Python source run by the interpreter (differential), against pure-Python references
of the streams (sequential, strided, pointer chase, GUPS, hash join), seeded and
chunk-invariant, streamed into Process.access with the same outcomes as the whole
array, user generators with the same decorator, and bad parameters refused."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ppsize
from ppsize import workloads as W

numba = pytest.importorskip("numba")
BASE = 1 << 32
M = 1 << 20


def streams(seed=0):
    return {
        "uniform": W.uniform(BASE, M, align=64, seed=seed),
        "sequential": W.sequential(BASE, M, step=8),
        "strided": W.strided(BASE, 3 * 4096 + 512, 4096, start=100),
        "zipf": W.zipf(BASE, 4 * M, exponent=1.2, seed=seed),
        "pointer_chase": W.pointer_chase(BASE, 64 * 1024, align=64, seed=seed),
        "hash_join": W.hash_join(BASE, M, BASE + 4 * M, 64 * 1024, seed=seed),
        "gups": W.gups(BASE, M, seed=seed + 1),
    }


def _interpreted(stream, n):
    """The stream's kernel run as plain Python (numba's py_func)."""
    s = W.Stream(stream.kernel.py_func, stream.ints, stream.floats, stream.seed)
    s._init_state = stream._init_state.copy()
    s.reset()
    with np.errstate(over="ignore"):
        return s.take(n)


@pytest.mark.parametrize("name", list(streams()))
def test_compiled_equals_interpreted(name):
    s = streams(3)[name]
    np.testing.assert_array_equal(s.take(3000), _interpreted(s, 3000))


@pytest.mark.parametrize("name", ["uniform", "sequential", "strided", "zipf"])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), first=st.integers(0, 900), n=st.integers(0, 3000))
def test_numpy_take_equals_compiled_fill(name, seed, first, n):
    """take() of these streams is NumPy (no numba): the compiled kernel's addresses,
    continuing from the same state."""
    a, b = streams(seed)[name], streams(seed)[name]
    assert a.vector is not None
    a.take(first)
    b.fill(np.empty(first, np.uint64))
    np.testing.assert_array_equal(a.take(n), b.fill(np.empty(n, np.uint64)))
    np.testing.assert_array_equal(a.state, b.state)


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4096, 1 << 16])
@pytest.mark.parametrize("exponent", [0.0, 0.7, 1.2, 3.0])
def test_alias_table_python_equals_compiled(n, exponent):
    """zipf's alias table without numba (up to 2**16 items) is the compiled one's, bit
    for bit (numba sums in order: the Python version does too)."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    p1, a1, p2, a2 = np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64)
    W._alias_table_py(w, p1, a1)
    W._kernel("_alias_table")(w, p2, a2)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(a1, a2)


@pytest.mark.parametrize("name", list(streams()))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), chunk=st.integers(1, 700))
def test_seeded_and_chunk_invariant(name, seed, chunk):
    whole = streams(seed)[name].take(2000)
    s = streams(seed)[name]
    parts = np.concatenate([c.copy() for c in s.chunks(2000, chunk)])
    np.testing.assert_array_equal(whole, parts)
    s.reset()
    np.testing.assert_array_equal(s.take(2000), whole)


def test_seeds_differ_and_regions_hold():
    for name in ("uniform", "zipf", "pointer_chase", "hash_join", "gups"):
        a, b = streams(1)[name].take(500), streams(2)[name].take(500)
        assert (a != b).any(), name
    for name, s in streams(5).items():
        x = s.take(20000)
        hi = BASE + (5 * M if name == "hash_join" else 4 * M)
        assert ((x >= BASE) & (x < hi)).all(), name


def test_sequential_and_strided_reference():
    np.testing.assert_array_equal(W.sequential(BASE, 4096, 8).take(1100),
                                  BASE + (np.arange(1100, dtype=np.uint64) * 8) % 4096)
    size, stride, start = 3 * 4096 + 512, 4096, 100
    ref, pos = [], start
    for _ in range(50):
        ref.append(BASE + pos)
        pos = (pos + stride) % size
    np.testing.assert_array_equal(W.strided(BASE, size, stride, start).take(50), ref)


def test_uniform_covers_evenly():
    x = W.uniform(BASE, 64 * 64, align=64, seed=9).take(64 * 2000)
    assert (x % 64 == 0).all()
    counts = np.bincount(((x - BASE) // 64).astype(np.int64), minlength=64)
    assert counts.min() > 1700 and counts.max() < 2300


def test_pointer_chase_is_one_cycle():
    n = 64 * 1024 // 64
    s = W.pointer_chase(BASE, 64 * 1024, align=64, seed=4)
    x = s.take(2 * n)
    nodes = ((x - BASE) // 64).astype(np.int64)
    assert sorted(nodes[:n].tolist()) == list(range(n))        # every node once
    np.testing.assert_array_equal(nodes[:n], nodes[n:])        # then the same cycle again
    assert len(set(np.diff(nodes[:n]).tolist())) > n // 4      # not a stride


def test_zipf_follows_the_weights():
    n, a = 1024, 1.0
    s = W.zipf(BASE, n * 4096, exponent=a, seed=7)
    x = s.take(400_000)
    freq = np.sort(np.bincount(((x - BASE) // 4096).astype(np.int64), minlength=n))[::-1] / x.size
    w = 1.0 / np.arange(1, n + 1) ** a
    w /= w.sum()
    assert abs(freq[0] - w[0]) < 0.01 and abs(freq[9] - w[9]) < 0.004
    assert abs(freq[:100].sum() - w[:100].sum()) < 0.01
    hot = int(np.bincount(((x - BASE) // 4096).astype(np.int64)).argmax())
    assert hot != 0                                             # scattered by the permutation
    assert abs(np.mean(W.zipf(BASE, n * 4096, exponent=0.0, seed=1).take(100_000) - BASE) / 4096
               - (n - 1) / 2) < 10                               # exponent 0: uniform


def test_hash_join_alternates_tuples_and_buckets():
    s = W.hash_join(BASE, M, BASE + 4 * M, 16 * 100, bucket=64, tuple_size=16, seed=3)
    x = s.take(400)
    np.testing.assert_array_equal(x[0::2], BASE + 4 * M + (np.arange(200) % 100) * 16)
    buckets = x[1::2]
    assert ((buckets - BASE) % 64 == 0).all() and (buckets < BASE + M).all()
    np.testing.assert_array_equal(buckets[:100], buckets[100:])   # same keys, same buckets
    assert len(set(buckets[:100].tolist())) > 90


def test_gups_reference():
    POLY, mask = 7, (1 << 64) - 1
    s = W.gups(BASE, 1 << 16, seed=5)
    ran = int(s.state[1])
    ref = []
    for _ in range(1000):
        ran = ((ran << 1) & mask) ^ (POLY if ran >> 63 else 0)
        ref.append(BASE + (ran & ((1 << 13) - 1)) * 8)
    np.testing.assert_array_equal(s.take(1000), ref)


def test_run_streams_into_access_without_materialising():
    k = ppsize.Kernel("4K", "64M", thp="never")
    p = k.spawn()
    a = p.mmap(2 * M)
    s = W.uniform(a, 2 * M, align=8, seed=1)
    got = W.run(p, s, 50_000, chunk=4096, write=True)
    q = ppsize.Kernel("4K", "64M", thp="never").spawn()
    b = q.mmap(2 * M)
    assert b == a
    whole = q.access(W.uniform(a, 2 * M, align=8, seed=1).take(50_000), write=True)
    want = {o.name.lower(): int((whole == o).sum()) for o in ppsize.Outcome}
    assert got == want and got["fault"] == 512 and got["hit"] == 50_000 - 512
    bufs = {c.__array_interface__["data"][0] for c in s.chunks(10_000, 1000)}
    assert len(bufs) == 1                                       # one buffer, refilled
    assert p.status() == q.status()
    k.check()


def test_user_generator_with_the_decorator():
    @W.generator
    def every_other_page(out, state, ints, floats):
        for i in range(out.size):
            out[i] = ints[0] + (state[1] % ints[1]) * 8192
            state[1] += 1

    assert hasattr(every_other_page, "py_func")                # compiled by numba
    s = W.Stream(every_other_page, ints=[BASE, 10])
    np.testing.assert_array_equal(s.take(25), BASE + (np.arange(25) % 10) * 8192)
    np.testing.assert_array_equal(s.take(5), BASE + (np.arange(25, 30) % 10) * 8192)


@pytest.mark.parametrize("make,match", [
    (lambda: W.uniform(BASE, 0), "size"),
    (lambda: W.uniform(BASE, M, align=24), "align must be a power of two"),
    (lambda: W.strided(BASE, M, 0), "stride"),
    (lambda: W.zipf(BASE, M, exponent=-1), "exponent"),
    (lambda: W.pointer_chase(BASE, 32, align=64), "pointer chase over 0 nodes"),
    (lambda: W.gups(BASE, 3 * 4096), "size must be a power of two"),
    (lambda: W.hash_join(BASE, 32, BASE, M), "table one bucket"),
    (lambda: W.uniform(-1, M), "base"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_fill_refuses_wrong_buffers():
    s = W.sequential(BASE, M)
    with pytest.raises(TypeError, match="uint64"):
        s.fill(np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="n"):
        s.take(-1)
