"""What bench_sweep runs in other processes: the machine's parallel capacity right now
(a pure-Python loop in one process, then in two at once) and a no-op Dask task. Its
own module, importing nothing of the benchmarks: spawned pool and Dask workers
unpickle these functions by importing their module, and one that imports
``conftest`` finds tests/conftest.py first on their sys.path, fails, and the task is
lost (``Pool.map`` and ``Future.result`` wait forever)."""
import multiprocessing
import time


def burn(n=4_000_000):
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t


def capacity() -> float:
    """How many times one process's work two processes do at once, right now."""
    one = min(burn() for _ in range(2))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        two = max(pool.map_async(burn, [4_000_000] * 2).get(timeout=120))
    return 2 * one / two


def noop(x):
    return x
