"""Buddy allocator benchmarks: alloc+free throughput per order vs Python baselines.

Workload per order k: fill memory with order-k allocations (one alloc_batch call),
then free them all in a random order (one free_batch call), so every free merges.
Cost is reported per alloc+free pair.

- ppsize: BuddyAllocator, 1 GiB of 4K frames (262144), MAX_PAGE_ORDER 10, pageblock 9.
- pyset: a plain-Python buddy (one set of free pfns per order, split on alloc, merge
  on free; no migratetypes, no list order), same memory, one call per operation.
- reference: tests/ref_buddy.py (lists with O(n) removal, the test oracle), on
  16 MiB (4096 frames) since its cost grows with memory; per pair it flatters it.
Churn: seeded mixed-order aging (BuddyAllocator.churn), steps per second.
"""
import os
import sys

import numpy as np
import pytest

from conftest import record
from ppsize.buddy import BuddyAllocator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from ref_buddy import MOVABLE, RefBuddy  # noqa: E402

NR = 1 << 18            # 1 GiB of 4K frames
NR_REF = 1 << 12
MAX_ORDER, PB = 10, 9
ORDERS = [0, 2, 4, 9]


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


def _perm(n, seed=1):
    return np.random.default_rng(seed).permutation(n)


@pytest.mark.parametrize("order", ORDERS)
def test_alloc_free_ppsize(benchmark, order):
    n = NR >> order
    orders = np.full(n, order, dtype=np.int64)
    perm = _perm(n)

    def cycle():
        b = BuddyAllocator(NR, MAX_ORDER, PB)
        pfns = b.alloc_batch(orders, "movable")
        b.free_batch(pfns[perm], orders)
        return b

    b = benchmark.pedantic(cycle, rounds=5, iterations=1)
    assert b.nr_free_pages == NR and b.stats()["failures"].sum() == 0
    record(benchmark, "alloc+free", f"order {order}", "ppsize", n)


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
