"""Buddy allocator benchmarks: alloc+free throughput per order vs Python baselines.

Workload per order k: fill memory with order-k allocations (one alloc_batch call),
then free them all in a random order (one free_batch call), so every free merges.
Cost is reported per alloc+free pair.

- ppsize: BuddyAllocator, 1 GiB of 4K frames (262144), MAX_PAGE_ORDER 10, pageblock 9.
- pyset: a plain-Python buddy (one set of free pfns per order, split on alloc, merge
  on free; no migratetypes, no list order), same memory, one call per operation.
- plain_c: a minimal C buddy (per-order int32 doubly linked lists, a state byte, no
  migratetypes/pageblocks), compiled here at bench time, the same batch loops.
- reference: tests/ref_buddy.py (lists with O(n) removal, the test oracle), on
  16 MiB (4096 frames) since its cost grows with memory; per pair it flatters it.
Churn: seeded mixed-order aging (BuddyAllocator.churn), steps per second.
"""
import ctypes
import os
import subprocess
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


C_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
typedef struct { int64_t nr; int max_order; int32_t *next, *prev; uint8_t *st;
                 int32_t head[32]; } buddy_t;
static void add(buddy_t *b, int64_t p, int o) {
    int32_t h = b->head[o]; b->next[p] = h; b->prev[p] = -1;
    if (h >= 0) b->prev[h] = (int32_t)p;
    b->head[o] = (int32_t)p; b->st[p] = 0x40 | o;
}
static void del(buddy_t *b, int64_t p, int o) {
    int32_t n = b->next[p], q = b->prev[p];
    if (q >= 0) b->next[q] = n; else b->head[o] = n;
    if (n >= 0) b->prev[n] = q;
    b->st[p] = 0;
}
static void free_one(buddy_t *b, int64_t p, int o) {
    while (o < b->max_order) {
        int64_t q = p ^ ((int64_t)1 << o);
        if (q >= b->nr || b->st[q] != (0x40 | o)) break;
        del(b, q, o); p &= q; o++;
    }
    add(b, p, o);
}
buddy_t *plain_new(int64_t nr, int max_order) {
    buddy_t *b = calloc(1, sizeof *b);
    b->nr = nr; b->max_order = max_order;
    b->next = malloc(nr * 4); b->prev = malloc(nr * 4); b->st = calloc(nr, 1);
    for (int o = 0; o < 32; o++) b->head[o] = -1;
    for (int64_t s = 0; s < nr;) {
        int o = max_order;
        if (s) { o = __builtin_ctzll(s); if (o > max_order) o = max_order; }
        while (s + ((int64_t)1 << o) > nr) o--;
        free_one(b, s, o); s += (int64_t)1 << o;
    }
    return b;
}
void plain_del(buddy_t *b) { free(b->next); free(b->prev); free(b->st); free(b); }
void plain_alloc_batch(buddy_t *b, const int64_t *orders, int64_t n, int64_t *out) {
    for (int64_t i = 0; i < n; i++) {
        int o = (int)orders[i], c; out[i] = -1;
        for (c = o; c <= b->max_order; c++) if (b->head[c] >= 0) break;
        if (c > b->max_order) continue;
        int64_t p = b->head[c]; del(b, p, c);
        while (c > o) { c--; add(b, p + ((int64_t)1 << c), c); }
        b->st[p] = 0x80 | o; out[i] = p;
    }
}
void plain_free_batch(buddy_t *b, const int64_t *pfns, const int64_t *orders, int64_t n) {
    for (int64_t i = 0; i < n; i++) { b->st[pfns[i]] = 0; free_one(b, pfns[i], (int)orders[i]); }
}
"""


@pytest.fixture(scope="module")
def plain_c(c_compiler):
    here = os.path.dirname(__file__)
    out_dir = os.path.join(here, "_cbuild")
    os.makedirs(out_dir, exist_ok=True)
    src = os.path.join(out_dir, "buddy_plain.c")
    lib = os.path.join(out_dir, "buddy_plain.so")
    with open(src, "w") as f:
        f.write(C_SOURCE)
    subprocess.run([c_compiler, "-O2", "-shared", "-fPIC", "-o", lib, src], check=True)
    dll = ctypes.CDLL(lib)
    dll.plain_new.restype = ctypes.c_void_p
    dll.plain_new.argtypes = [ctypes.c_int64, ctypes.c_int]
    dll.plain_del.argtypes = [ctypes.c_void_p]
    p64 = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
    dll.plain_alloc_batch.argtypes = [ctypes.c_void_p, p64, ctypes.c_int64, p64]
    dll.plain_free_batch.argtypes = [ctypes.c_void_p, p64, p64, ctypes.c_int64]
    return dll


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
def test_alloc_free_plain_c(benchmark, plain_c, order):
    n = NR >> order
    orders = np.full(n, order, dtype=np.int64)
    perm = _perm(n)

    def cycle():
        b = plain_c.plain_new(NR, MAX_ORDER)
        pfns = np.empty(n, dtype=np.int64)
        plain_c.plain_alloc_batch(b, orders, n, pfns)
        plain_c.plain_free_batch(b, np.ascontiguousarray(pfns[perm]), orders, n)
        plain_c.plain_del(b)
        return pfns

    pfns = benchmark.pedantic(cycle, rounds=5, iterations=1)
    assert (pfns >= 0).all()
    record(benchmark, "alloc+free", f"order {order}", "plain_c", n)


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
