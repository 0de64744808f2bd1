"""Shared pieces of the benchmarks: the registry of per-item costs measured in this
run, and the table of ratios to the baselines printed at the end of the session."""
import ctypes
import gc
import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))   # live_kernel

def pytest_configure(config):
    """glibc keeps what the benchmarks free (no trim of the heap's top, no mmap for large
    blocks), so a C baseline that frees its memory and allocates it again next round
    reuses resident pages, as ppsize's framemem pool does for its own arrays; without
    it glibc gives the pages back and each C round pays the host's first touch (the
    1M-entry radix store: 5.5 -> 8.5 ns per sequential store, 62 -> 124 sparse)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3       # <malloc.h>
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)          # glibc's largest (HEAP_MAX/2 on 64-bit)


# (suite, case) -> {implementation: seconds per item}
RESULTS: dict = {}


def record(benchmark, suite, case, impl, items):
    """Store the best time per item of a finished benchmark (min is the least noisy)."""
    per_item = benchmark.stats.stats.min / items
    RESULTS.setdefault((suite, case), {})[impl] = per_item
    benchmark.extra_info["ns_per_item"] = per_item * 1e9
    benchmark.extra_info["items_per_s"] = 1 / per_item
    return per_item


def interleaved(benchmark, cycles, rounds):
    """Run the cycles (name -> function) in turns, ``rounds`` timed calls of each:
    round r starts with cycle r mod len(cycles), so each side runs early and late in
    a round equally often, and a change of the machine's load hits all sides alike.
    One untimed warm-up call of each first; the garbage collector is off while timed.
    What a cycle returns is dropped after its timer stops. Returns name -> list of
    seconds. The benchmark fixture times each whole round."""
    names = list(cycles)
    times = {name: [] for name in names}
    for name in names:
        cycles[name]()
    state = {"r": 0}

    def one_round():
        r = state["r"]
        state["r"] = r + 1
        for j in range(len(names)):
            name = names[(r + j) % len(names)]
            t0 = time.perf_counter()
            res = cycles[name]()
            t1 = time.perf_counter()
            del res                 # a side's result is dropped untimed, before its next round
            times[name].append(t1 - t0)

    pedantic_gc_off(benchmark, one_round, rounds)
    return times


def pedantic_gc_off(benchmark, fn, rounds):
    """benchmark.pedantic(fn, rounds, one iteration) with the garbage collector off."""
    was = gc.isenabled()
    gc.disable()
    try:
        benchmark.pedantic(fn, rounds=rounds, iterations=1)
    finally:
        if was:
            gc.enable()


def record_value(suite, case, impl, per_item, benchmark=None):
    """Store a cost per item measured some other way (e.g. by a C program's own timer)."""
    RESULTS.setdefault((suite, case), {})[impl] = per_item
    if benchmark is not None:
        benchmark.extra_info[f"{impl}_ns_per_item"] = per_item * 1e9


NOTES: list = []


def note(line):
    """A line for the end-of-session summary (memory figures, flatness ratios)."""
    NOTES.append(line)


def pytest_terminal_summary(terminalreporter):
    for line in NOTES:
        terminalreporter.write_line(line)
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("ppsize ratios (same run; >1 means ppsize is faster)")
    for (suite, case), impls in sorted(RESULTS.items()):
        own = impls.get("ppsize")
        parts = [f"{impl} {t * 1e9:8.1f} ns/item" for impl, t in sorted(impls.items())]
        tr.write_line(f"{suite:>12} {case:<22} " + " | ".join(parts))
        if own:
            for impl, t in sorted(impls.items()):
                if impl != "ppsize":
                    tr.write_line(f"{'':>12} {'':<22} ppsize vs {impl}: {t / own:6.2f}x")


@pytest.fixture(scope="session")
def c_compiler():
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler: the plain-C baseline is skipped")
    return cc


def build_c(cc, source, name):
    """Compile bench/c/<source> into a shared library at bench time; load it."""
    here = os.path.dirname(__file__)
    out_dir = os.path.join(here, "_cbuild")
    os.makedirs(out_dir, exist_ok=True)
    lib = os.path.join(out_dir, name + ".so")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, os.path.join(here, "c", source)],
                   check=True)
    return ctypes.CDLL(lib)
