"""Buddy allocator benchmarks: alloc+free throughput per order vs C and Python baselines.

Workload per order k: boot 1 GiB of 4K frames (262144), MAX_PAGE_ORDER 10, pageblock
order 9; fill memory with order-k MIGRATE_MOVABLE allocations (one batch call), then free
them all in a seeded random order (one batch call), so every free merges. Cost is
reported per alloc+free pair; the boot is inside the timed cycle on every side. Every
side writes its pfns into the same two preallocated arrays each round (alloc into one,
np.take the permutation into the other) and runs one untimed warm-up round, so no side
pays the host's first touch of a fresh result buffer.

Measurement (test_alloc_free): ppsize, plain_c and plain_c_min run in one test, in turns
(A B C, B C A, C A B, ...), ROUNDS timed rounds each, and each side's figure is the min of
its rounds (bench/conftest.py record_value). Rounds of different sides are never minutes
apart, so a change of load on this shared 2-core machine moves every side together
instead of flipping the ratio. Instruction counts (callgrind, deterministic) are the
better guide while changing the code; the README quotes both.

- ppsize: BuddyAllocator(NR, 10, 9), alloc_batch(orders, "movable", out=pfns), free_batch.
- plain_c: bench/c/buddy.c, compiled here at bench time (-O2, bench/conftest.py build_c),
  the equal-work baseline: the same algorithm, state and counters as ppsize's
  (mm/page_alloc.c): free lists per (order, migratetype) with head and tail, a state
  byte per frame, a migratetype byte per pageblock, split_large_buddy, the pageblock
  type check and retyping on merges at orders >= pageblock_order, FPI_TO_TAIL at boot
  and buddy_merge_likely on free, __rmqueue_smallest -> __rmqueue_claim ->
  __rmqueue_steal, nr_free per list, NR_FREE_PAGES, per-order alloc/failure/free counts,
  and the per-entry checks of the batch calls. It returns the same pfns as ppsize (the
  test asserts it). It does not do what ppsize does not: pcp lists, watermarks, CMA,
  isolation, compaction; nor has it ppsize's Python layer (argument and array checks,
  the result array, the NumPy arrays of the allocator made at boot).
- plain_c_min: bench/c/buddy_min.c, a lower bound, not equal work: per-order lists
  only (no migratetypes, pageblocks, tail adds, counters or checks).
- pyset: a plain-Python buddy (one set of free pfns per order, split on alloc, merge
  on free; no migratetypes, no list order), same memory, one call per operation.
- reference: tests/ref_buddy.py (lists with O(n) removal, the test oracle), on
  16 MiB (4096 frames) since its cost grows with memory; per pair it flatters it.
Churn: seeded mixed-order aging (BuddyAllocator.churn), steps per second.
"""
import ctypes
import os
import sys

import numpy as np
import pytest

from conftest import build_c, interleaved, record, record_value
from ppsize.buddy import BuddyAllocator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from ref_buddy import MOVABLE, RefBuddy  # noqa: E402

NR = 1 << 18            # 1 GiB of 4K frames
NR_REF = 1 << 12
MAX_ORDER, PB = 10, 9
ORDERS = [0, 2, 4, 9]
ROUNDS = 21             # timed rounds of each side in test_alloc_free


class PySetBuddy:
    """The obvious fast Python buddy: free pfns per order in sets."""

    def __init__(self, nr, max_order):
        self.max_order = max_order
        self.free = [set() for _ in range(max_order + 1)]
        for p in range(0, nr, 1 << max_order):
            self.free[max_order].add(p)

    def alloc(self, order):
        for cur in range(order, self.max_order + 1):
            if self.free[cur]:
                p = self.free[cur].pop()
                while cur > order:
                    cur -= 1
                    self.free[cur].add(p + (1 << cur))
                return p
        return -1

    def free_block(self, p, order):
        while order < self.max_order:
            b = p ^ (1 << order)
            if b not in self.free[order]:
                break
            self.free[order].remove(b)
            p &= b
            order += 1
        self.free[order].add(p)


P64 = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")


@pytest.fixture(scope="module")
def plain_c(c_compiler):
    """bench/c/buddy.c: the equal-work C buddy (see the module docstring)."""
    dll = build_c(c_compiler, "buddy.c", "buddy")
    dll.cb_new.restype = ctypes.c_void_p
    dll.cb_new.argtypes = [ctypes.c_int64, ctypes.c_int, ctypes.c_int]
    dll.cb_del.argtypes = [ctypes.c_void_p]
    dll.cb_nr_free_pages.restype = ctypes.c_int64
    dll.cb_nr_free_pages.argtypes = [ctypes.c_void_p]
    dll.cb_alloc_batch.restype = ctypes.c_int64
    dll.cb_alloc_batch.argtypes = [ctypes.c_void_p, P64, ctypes.c_int, ctypes.c_int64, P64]
    dll.cb_free_batch.restype = ctypes.c_int64
    dll.cb_free_batch.argtypes = [ctypes.c_void_p, P64, P64, ctypes.c_int64]
    return dll


@pytest.fixture(scope="module")
def plain_c_min(c_compiler):
    """bench/c/buddy_min.c: the minimal C buddy, a lower bound (not equal work)."""
    dll = build_c(c_compiler, "buddy_min.c", "buddy_min")
    dll.plain_new.restype = ctypes.c_void_p
    dll.plain_new.argtypes = [ctypes.c_int64, ctypes.c_int]
    dll.plain_del.argtypes = [ctypes.c_void_p]
    dll.plain_alloc_batch.argtypes = [ctypes.c_void_p, P64, ctypes.c_int64, P64]
    dll.plain_free_batch.argtypes = [ctypes.c_void_p, P64, P64, ctypes.c_int64]
    return dll


def _perm(n, seed=1):
    return np.random.default_rng(seed).permutation(n)


@pytest.mark.parametrize("order", ORDERS)
def test_alloc_free(benchmark, plain_c, plain_c_min, order):
    """ppsize, the equal-work C buddy and the minimal C buddy, interleaved (see
    conftest.interleaved): the same-run ratio is the min of each side's ROUNDS rounds."""
    n = NR >> order
    orders = np.full(n, order, dtype=np.int64)
    perm = _perm(n)
    # every side writes into the same preallocated arrays (no first touch of a result)
    pfns, back = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    last = {}

    def ppsize_cycle():
        b = BuddyAllocator(NR, MAX_ORDER, PB)
        b.alloc_batch(orders, "movable", out=pfns)
        b.free_batch(np.take(pfns, perm, out=back), orders)
        return b

    def c_cycle():
        # the same steps as the ppsize cycle: boot, one batch call each way
        b = plain_c.cb_new(NR, MAX_ORDER, PB)
        assert plain_c.cb_alloc_batch(b, orders, 1, n, pfns) == 0
        assert plain_c.cb_free_batch(b, np.take(pfns, perm, out=back), orders, n) == -1
        last["plain_c"] = plain_c.cb_nr_free_pages(b)
        plain_c.cb_del(b)

    def c_min_cycle():
        b = plain_c_min.plain_new(NR, MAX_ORDER)
        plain_c_min.plain_alloc_batch(b, orders, n, pfns)
        plain_c_min.plain_free_batch(b, np.take(pfns, perm, out=back), orders, n)
        plain_c_min.plain_del(b)

    times = interleaved(benchmark, {"ppsize": ppsize_cycle, "plain_c": c_cycle,
                                     "plain_c_min": c_min_cycle}, ROUNDS)
    b = ppsize_cycle()
    assert b.nr_free_pages == NR and b.stats()["failures"].sum() == 0
    assert last["plain_c"] == NR
    # the same algorithm: the same blocks, in the same order, as ppsize's
    ref = BuddyAllocator(NR, MAX_ORDER, PB).alloc_batch(orders, "movable")
    cb = plain_c.cb_new(NR, MAX_ORDER, PB)
    assert plain_c.cb_alloc_batch(cb, orders, 1, n, pfns) == 0
    plain_c.cb_del(cb)
    assert (pfns == ref).all()
    for impl, ts in times.items():
        record_value("alloc+free", f"order {order}", impl, min(ts) / n, benchmark)


@pytest.mark.parametrize("order", ORDERS)
def test_alloc_free_pyset(benchmark, order):
    n = NR >> order
    perm = _perm(n)

    def cycle():
        b = PySetBuddy(NR, MAX_ORDER)
        pfns = [b.alloc(order) for _ in range(n)]
        for i in perm:
            b.free_block(pfns[i], order)
        return b

    b = benchmark.pedantic(cycle, rounds=2, iterations=1)
    assert len(b.free[MAX_ORDER]) == NR >> MAX_ORDER
    record(benchmark, "alloc+free", f"order {order}", "pyset", n)


@pytest.mark.parametrize("order", ORDERS)
def test_alloc_free_reference(benchmark, order):
    n = NR_REF >> order
    perm = _perm(n)

    def cycle():
        r = RefBuddy(NR_REF, MAX_ORDER, PB)
        pfns = [r.alloc(order, MOVABLE) for _ in range(n)]
        for i in perm:
            r.free(pfns[i], order)
        return r

    r = benchmark.pedantic(cycle, rounds=1, iterations=1)
    assert r.nr_free_pages == NR_REF
    record(benchmark, "alloc+free", f"order {order}", "reference", n)


def test_construct_ppsize(benchmark):
    """Boot: 1 GiB freed as order-10 blocks through split_large_buddy."""
    benchmark.pedantic(BuddyAllocator, args=(NR, MAX_ORDER, PB), rounds=5, iterations=1)
    record(benchmark, "boot", "1G 4K", "ppsize", NR)


@pytest.mark.parametrize("steps", [1_000_000])
def test_churn_ppsize(benchmark, steps):
    def run():
        b = BuddyAllocator(NR, MAX_ORDER, PB)
        return b, b.churn(7, steps, orders=(0, 1, 2, 3, 4, 9), weights=(40, 10, 10, 10, 10, 1))

    b, res = benchmark.pedantic(run, rounds=3, iterations=1)
    assert res["allocs"] + res["failures"] + res["frees"] == steps
    record(benchmark, "churn", "1G mixed", "ppsize", steps)
