"""compare's configurations in threads (issue 13 item 6): the same figures for any
number of workers, in configs order; the worker count follows the CPUs and the host
memory; ``--jobs``; and every figure compare prints and writes, pinned on a synthetic
scan (no file system: the same on every machine) so a faster TLB model or engine
cannot change one unnoticed."""
import hashlib
import json

import numpy as np
import pytest

from ppsize import compare as cmp
from ppsize.cli import main
from ppsize.compare.scan import ScanResult

from test_compare import make_tree


def _strip(o):
    """as_dict without the timings (and the trees' names)."""
    if isinstance(o, dict):
        return {k: _strip(v) for k, v in o.items() if k not in ("seconds", "trees")}
    if isinstance(o, list):
        return [_strip(x) for x in o]
    return o


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ptree")
    make_tree(str(root), seed=5, n=60)
    return str(root)


def test_threads_give_the_serial_figures(tree):
    scan = cmp.scan_trees([tree])
    one = cmp.compare([tree], scan=scan, seed=2, processes=5, workers=1)
    two = cmp.compare([tree], scan=scan, seed=2, processes=5, workers=2)
    assert [r.config.key for r in two.results] == [c.key for c in cmp.CONFIGS]
    assert _strip(one.as_dict()) == _strip(two.as_dict())
    assert one.table() == two.table()
    checked = cmp.compare([tree], scan=scan, seed=2, processes=5, workers=2, check=True,
                          configs=["4K", "4K+64K-native"])
    assert all(r.check == "passed" for r in checked.results)
    with pytest.raises(ValueError, match="workers"):
        cmp.compare([tree], scan=scan, workers=0)


def test_workers_follow_cpus_and_host_memory(tree, monkeypatch):
    scan = cmp.scan_trees([tree])
    w = cmp.make_workload(scan, seed=0, processes=4)
    monkeypatch.setattr(cmp.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert cmp.workers_for(scan, w, ram=64 << 30) == 2
    assert cmp.workers_for(scan, w, ram=1 << 20) == 1            # two Kernels > a quarter of RAM
    big = ScanResult(["/x"], np.full(4, 1 << 40, np.int64), [], [], [], 1, {}, 0.0)
    assert cmp.workers_for(big, w, ram=1 << 50) == 1             # > PARALLEL_HOST_BYTES
    monkeypatch.setattr(cmp.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert cmp.workers_for(scan, w, ram=64 << 30) == 1           # one CPU


@pytest.mark.parametrize("jobs", ["0", "65"])
def test_cli_jobs_out_of_range(tree, jobs, capsys):
    assert main(["compare", "--tree", tree, "-q", "--jobs", jobs]) == 2
    assert "--jobs must be in 1..64" in capsys.readouterr().err


def test_cli_jobs_not_a_number(tree, capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--tree", tree, "-q", "--jobs", "x"])
    assert e.value.code == 2


def test_cli_jobs_one_and_two_print_the_same(tree, capsys):
    out = []
    for jobs in ("1", "2"):
        assert main(["compare", "--tree", tree, "-q", "--jobs", jobs, "--json", "-"]) == 0
        out.append(_strip(json.loads(capsys.readouterr().out)))
    assert out[0] == out[1]


# ------------------------------------------------------------- every figure pinned
def golden_scan(n=3000, seed=11):
    """A scan without a file system: seeded sizes (a long tail, as /usr), every 7th file a
    library, every 11th an executable, every 32nd a data file the workload may map."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.lognormal(9.0, 2.2, n).astype(np.int64), 64 << 20)
    sizes[:4] = (0, 1, 4096, 65537)
    libs, exes, data = [], [], []
    for i, s in enumerate(sizes.tolist()):
        if s <= 0:
            continue
        if i % 7 == 3:
            libs.append((f"/golden/lib/lib{i}.so.{i % 3}", i, s))
        elif i % 11 == 5:
            exes.append((f"/golden/bin/prog{i}", i, s))
        elif i % 32 == 9:
            data.append((f"/golden/share/data{i}", i, s))
    return ScanResult(["/golden"], sizes, sorted(libs), sorted(exes), sorted(data), 40, {}, 0.0)


# sha256 of the figures (as_dict without timings, sorted keys) and of the table compare prints,
# made with the engine of main 9472fdf (before issue 13 items 6-7's faster TLB fills and threads)
GOLDEN_FIGURES = "526dd2e97c55b13fcfccba02adb35a5ae5d6c85c93966964cc463c8b63208f04"
GOLDEN_TABLE = "b3f67d254e9147ceab28277021b5ed2810046730104a0f7afce7cf6b1fb6c0d7"


def _digests(res):
    figures = json.dumps(_strip(res.as_dict()), sort_keys=True)
    return (hashlib.sha256(figures.encode()).hexdigest(), hashlib.sha256(res.table().encode()).hexdigest())


@pytest.mark.parametrize("workers", [1, 2])
def test_every_figure_is_pinned(workers):
    res = cmp.compare([], scan=golden_scan(), seed=4, processes=8, workers=workers, steady=1 << 15)
    figures, table = _digests(res)
    assert (figures, table) == (GOLDEN_FIGURES, GOLDEN_TABLE), res.table()


def test_a_large_run_hands_each_kernels_host_memory_to_the_next(monkeypatch):
    # 200k files: one 4K Kernel's host memory is above framemem's pool limit, so
    # compare raises the limits for the run (the next configuration reuses it instead
    # of the host's first touch) and puts them back afterwards
    from ppsize._core import framemem
    scan = ScanResult(["/big"], np.full(200_000, 40 << 10, np.int64), [], [], [], 1, {}, 0.0)
    w = cmp.make_workload(scan, seed=0, processes=2)
    keep = cmp._pool_bytes(scan, w)
    assert cmp._pool_bytes(scan, w, ram=512 << 20) == 128 << 20 < keep   # at most a quarter of the RAM
    before = framemem.pool_stats()
    assert keep > before["limit"]
    seen = []
    run = cmp.run_config

    def spy(*a, **kw):
        seen.append(framemem.pool_stats())
        return run(*a, **kw)

    monkeypatch.setattr(cmp, "run_config", spy)
    res = cmp.compare([], scan=scan, seed=0, processes=2, workers=1, configs=["4K", "4K+64K-native"],
                      steady=0)
    limits = ("limit", "entry_limit", "grow_limit")
    assert [[s[k] for k in limits] for s in seen] == [[keep] * 3] * 2
    assert {k: framemem.pool_stats()[k] for k in limits} == {k: before[k] for k in limits}
    assert seen[1]["bytes"] > before["limit"]             # the first Kernel's, for the second
    assert res.results[0].meminfo["Cached"] == res.results[1].meminfo["Cached"] == 200_000 * 40


def test_one_worker_populates_ahead_with_a_cpu_to_spare(tree, monkeypatch):
    """compare running one configuration at a time on two CPUs turns framemem's
    populate ahead on for its runs (the spare CPU faults in the host pages the
    model fills next) and restores the setting afterwards; on one CPU, or with two
    workers, the setting stays as it was."""
    from ppsize._core import framemem

    def setting():
        was = framemem.set_populate_ahead(False)
        framemem.set_populate_ahead(was)
        return was

    class Record:
        def __init__(self):
            self.seen = []

        def update(self, what, fraction, force=False):
            self.seen.append(setting())

        def close(self):
            pass

    scan = cmp.scan_trees([tree])
    old = framemem.set_populate_ahead(False)
    try:
        for cpus, workers, want in ((2, 1, True), (1, 1, False), (2, 2, False)):
            monkeypatch.setattr(cmp, "usable_cpus", lambda: cpus)
            rec = Record()
            cmp.compare([tree], scan=scan, seed=2, processes=3, workers=workers, configs=["4K", "64K"],
                        progress=rec)
            assert rec.seen and set(rec.seen) == {want}, (cpus, workers)
            assert setting() is False
    finally:
        framemem.set_populate_ahead(old)
