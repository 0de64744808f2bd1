"""Page-cache benchmarks: ppsize._core.pagecache against a Python dict page cache running
the same algorithm (tests/ref_pagecache.py with a page -> folio dict index) in the same run.

- seq read:  a 256M file read front to back in 128K read(2) calls (readahead window and
             folio orders grow as Linux's): folios added per second.
- rand read: 20000 4K reads at random page offsets of a 4G file (each a small random read:
             one order-0 folio): folios added per second.
- get_folio: __filemap_get_folio lookups (hits) over the cached 256M file, in a random
             order: lookups per second (dict: d[page] -> folio).
The ratio table at the end (bench/conftest.py) is dict time / ppsize time.
"""
import numpy as np
import pytest

from conftest import record
from ppsize import Kernel
from ppsize.pagecache import PageCache
from ref_pagecache import RefFolio, RefPageCache

SEQ_SIZE = 256 << 20
RAND_SIZE = 4 << 30
NRAND = 20000


class DictPageCache(RefPageCache):
    """The reference with an O(1) page -> first index dict instead of scans."""

    def new_file(self, size, min_order=0, large=True):
        f = super().new_file(size, min_order, large)
        F = self.files[f]
        F.pages = {}
        F.folio_at = lambda i, F=F: ((F.pages[i], F.cache[F.pages[i]]) if i in F.pages else None)
        F.present = lambda i, F=F: i in F.pages
        return f

    def add(self, f, index, order, readahead=False):
        F = self.files[f]
        n = 1 << order
        if any(i in F.pages for i in range(index, index + n)):
            return "EEXIST"
        F.cache[index] = RefFolio(order, readahead)
        for i in range(index, index + n):
            F.pages[i] = index
        F.pages_read += n
        self.pages_read += n
        return 0


def seq_reads(size, chunk=128 << 10):
    return [(o, chunk) for o in range(0, size, chunk)]


def rand_reads():
    rng = np.random.default_rng(1)
    pages = rng.choice(RAND_SIZE // 4096, NRAND, replace=False)
    return [(int(p) * 4096, 4096) for p in pages]


def new_ppsize(size):
    k = Kernel("4K", "8G")
    pc = PageCache(k)
    return pc, pc.create_file("/b", size)


def read_ppsize(pc, f, reads):
    c = pc.core
    fid = f.id
    for off, n in reads:
        c.read(fid, off, n)
    return pc, f


def run_ppsize(size, reads):
    pc, f = new_ppsize(size)
    return read_ppsize(pc, f, reads)


def run_dict(size, reads):
    ref = DictPageCache(12)
    f = ref.new_file(size)
    for off, n in reads:
        ref.read(f, off, n)
    return ref


@pytest.mark.parametrize("impl", ["ppsize", "dict"])
@pytest.mark.parametrize("pattern", ["seq", "rand"])
def test_read(benchmark, impl, pattern):
    size = SEQ_SIZE if pattern == "seq" else RAND_SIZE
    reads = seq_reads(size) if pattern == "seq" else rand_reads()
    if impl == "ppsize":
        # the kernel (8G of frames) is built in setup: only the reads are timed
        pc, f = benchmark.pedantic(read_ppsize, setup=lambda: (new_ppsize(size) + (reads,), {}),
                                   rounds=3, iterations=1)
        nfolios = len(pc.layout(f))
        layout = pc.layout(f)
    else:
        ref = benchmark.pedantic(run_dict, args=(size, reads), rounds=1, iterations=1)
        nfolios = len(ref.files[0].cache)
        layout = ref.files[0].layout()
    benchmark.extra_info["folios"] = nfolios
    # both implementations build the same cache
    pc2, f2 = run_ppsize(size, reads[:200])
    ref2 = run_dict(size, reads[:200])
    assert pc2.layout(f2) == ref2.files[0].layout()
    assert nfolios == len(layout) > 0
    record(benchmark, "pagecache", f"{pattern} read (folios)", impl, nfolios)


@pytest.fixture(scope="module")
def cached():
    pc, f = run_ppsize(SEQ_SIZE, seq_reads(SEQ_SIZE))
    idx = np.random.default_rng(2).integers(0, SEQ_SIZE // 4096, 1 << 20)
    return pc, f, idx


def test_get_folio_ppsize(benchmark, cached):
    pc, f, idx = cached
    out = benchmark.pedantic(pc.core.get_folio_batch, args=(f.id, idx, False, 0), rounds=5, iterations=1)
    assert (out >= 0).all()
    record(benchmark, "pagecache", "get_folio hit (lookups)", "ppsize", idx.size)


def test_get_folio_dict(benchmark, cached):
    pc, f, idx = cached
    lay = pc.folios(f)
    d = {}
    for i, o, p in zip(lay["index"].tolist(), lay["order"].tolist(), lay["pfn"].tolist()):
        for j in range(i, i + (1 << o)):
            d[j] = p

    def run():
        return np.array([d[i] for i in idx.tolist()], dtype=np.int64)

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    assert (out == pc.core.get_folio_batch(f.id, idx, False, 0)).all()
    record(benchmark, "pagecache", "get_folio hit (lookups)", "dict", idx.size)
