"""MMU model benchmarks: ppsize.TLB.run (one nogil loop over raw addresses) against
bench/c/tlb_sim.c (a minimal plain-C set-associative TLB simulator, see its header for
what it does and does not do) on the same streams and the same simulated hardware:
the Cortex-A76 TLB geometry (L1D 48 fully associative, L2 1280 x 5, LRU, 4K pages,
4-level walks), ppsize configured without walk caches and data cache so that both
sides do equal work. A second ppsize row runs the full a76 preset (walk cache in the
L2, data-cache model) for reference.

Streams (N = 2**20 accesses, asid 1):
- l1hit_seq:  64-byte stride over 32 pages, over and over (every access an L1 hit)
- l1hit_rand: uniform random over 32 pages (L1 hits, no locality inside the TLB)
- random:     uniform random over 65536 pages (256 MB): L1 and L2 miss, a walk each
Targets (issue 9): >= 100 M accesses/s on an L1-hitting stream, >= 30 M/s on a random
stream through the full hierarchy, >= 1.0x the plain-C simulator. The ratio table at
the end of the session (bench/conftest.py) prints C time / ppsize time.
"""
import ctypes

import numpy as np
import pytest

from conftest import build_c, record, record_value
from ppsize.tlb import TLB

N = 1 << 20
BASE = 0x10000000
STREAMS = ["l1hit_seq", "l1hit_rand", "random"]


def stream(name):
    rng = np.random.default_rng(42)
    if name == "l1hit_seq":
        return (BASE + (np.arange(N, dtype=np.uint64) * 64) % (32 * 4096)).astype(np.uint64)
    pages = 32 if name == "l1hit_rand" else 65536
    return (BASE + rng.integers(0, pages, N).astype(np.uint64) * 4096).astype(np.uint64)


def make(full):
    kw = {} if full else {"walk_caches": [], "dcache": None}
    t = TLB("cortex-a76", **kw)
    t.map(1, [(BASE, BASE + (1 << 30), "4K")])
    return t


@pytest.mark.parametrize("impl", ["ppsize", "ppsize-a76full"])
@pytest.mark.parametrize("name", STREAMS)
def test_tlb_run_ppsize(benchmark, name, impl):
    vas = stream(name)
    t = make(full=impl != "ppsize")

    def setup():
        t.flush_tlb_all()
        return (), {}
    res = benchmark.pedantic(lambda: t.run(vas, asid=1), setup=setup, rounds=5, iterations=1)
    assert res.shape == (N,)
    per = record(benchmark, "tlb", f"run {name}", impl, N)
    benchmark.extra_info["M_accesses_per_s"] = 1e-6 / per


@pytest.mark.parametrize("name", STREAMS)
def test_tlb_run_plain_c(benchmark, name, c_compiler):
    vas = stream(name)
    lib = build_c(c_compiler, "tlb_sim.c", "tlb_sim")
    lib.tlb_sim_run.restype = ctypes.c_longlong
    result = np.empty(N, np.int8)
    ctr = np.zeros(6, np.int64)
    P = ctypes.c_void_p

    def run():
        return lib.tlb_sim_run(P(vas.ctypes.data), ctypes.c_int64(N), ctypes.c_uint16(1),
                               1, 48, 256, 5, 4, P(result.ctypes.data), P(ctr.ctypes.data), 1)
    ns = benchmark.pedantic(run, rounds=5, iterations=1)
    # same work: the C simulator's outcome per access equals ppsize's on this hardware
    t = make(full=False)
    assert (t.run(vas, asid=1) == result).all()
    record_value("tlb", f"run {name}", "plain-C", ns * 1e-9 / N, benchmark)
    record(benchmark, "tlb", f"run {name}", "plain-C+ctypes", N)


# ------------------------------------------------------------------ the engine (item 7)
@pytest.mark.parametrize("impl", ["ppsize", "no-TLB"])
def test_process_access_l1hit(benchmark, impl):
    """Process.access with a TLB (Kernel(cpu="cortex-a76")) on an L1-hitting stream (the
    l1hit_seq stream: 64-byte stride over 32 mapped 4K pages), against the same call
    without a translation model, in the same run (target: <= 10 ns per access)."""
    import ppsize
    k = ppsize.Kernel("4K", "256M", thp="never", cpu=None if impl == "no-TLB" else "cortex-a76")
    p = k.spawn()
    a = p.mmap(32 * 4096)
    vas = (np.uint64(a) + (np.arange(N, dtype=np.uint64) * 64) % (32 * 4096)).astype(np.uint64)
    p.access(vas[:32 * 64], write=True)
    out = benchmark.pedantic(p.access, args=(vas,), rounds=5, iterations=1)
    assert (out == ppsize.Outcome.HIT).all()
    if impl == "ppsize":
        s = p.tlb_stats()["l1d"]
        assert s["hits"] >= 5 * N             # every timed access an L1 hit
    record(benchmark, "engine-tlb", "Process.access l1hit", impl, N)
