"""Replay speed (issue 10 item 5): rebuilding a snapshot of a process with 1 GiB of
resident anonymous memory in 4K pages (target <= 2 s), against the bare engine cost
of the same state (one Kernel, one mmap, one access batch writing the same 262144
pages: what any replay has to pay); and the same snapshot replayed as a 64K process."""
import time

import numpy as np
import pytest

from bench_recording import GIB, gib_process  # noqa: F401  (the 1 GiB process fixture)
from conftest import note, record, record_value
import ppsize
from ppsize.recording import load, snapshot
from ppsize.recording.replay import replay, replay_memory


@pytest.fixture(scope="module")
def gib_snapshot(gib_process, tmp_path_factory):    # noqa: F811
    pid, _addr = gib_process
    path = tmp_path_factory.mktemp("replay") / "gib.ppw"
    snapshot([pid], path=path)
    return load(path)


def test_replay_1gib(benchmark, gib_snapshot):
    w = gib_snapshot
    res = benchmark.pedantic(lambda: replay(w, "4K"), rounds=3, iterations=1, warmup_rounds=1)
    per = record(benchmark, "replay", "snapshot 1GiB", "ppsize", 1)
    p = res.procs[0]
    assert p.model["RssAnon"] == p.truth["RssAnon"] >= GIB >> 10
    assert p.model["VmPTE"] == p.truth["VmPTE"]
    note(f"replay of a 1 GiB-RSS snapshot (262144 4K pages) on a 4K kernel: {per:.3f} s")

    mem = replay_memory(w, 4096)
    region = next(v for v in w.processes[0].vma_list() if v.smaps.get("Rss", 0) >= GIB >> 10)

    def bare():
        k = ppsize.Kernel("4K", mem, geometry="x86_64-4l", thp="never")
        q = k.spawn()
        a = q.mmap(region.end - region.start, addr=region.start, fixed=True)
        q.access(np.arange(a, a + GIB, 4096, dtype=np.uint64), write=True)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        bare()
        times.append(time.perf_counter() - t)
    record_value("replay", "snapshot 1GiB", "bare engine: mmap + one access batch", min(times), benchmark)


def test_replay_1gib_as_64k(benchmark, gib_snapshot):
    res = benchmark.pedantic(lambda: replay(gib_snapshot, "4K+64K-emulated"), rounds=2, iterations=1)
    per = record(benchmark, "replay", "snapshot 1GiB, 64K process", "ppsize", 1)
    assert res.procs[0].page_size == 65536 and "laid out for 64K" in res.layout
    note(f"replay of the 1 GiB snapshot as a 64K process (emulated): {per:.3f} s")
