"""Timing of the race explorer (pytest-benchmark): the README's scenarios and a sweep.

Run: pytest bench/bench_race.py --benchmark-only
States and states/s are in extra_info; the sweep runs in one process and on two, so the
ratio of the two is the parallel speed-up on this machine (noisy when shared).
"""
import pytest

from ppsize.race import PATHS, explore
from ppsize.race.sweep import configurations, sweep

ISSUE = dict(policy="drop-all", cached=(), actors=(("rcf", 2),), unlocked={"read_cache_folio"})
SCENARIOS = {
    "range": dict(policy="range"),
    "drop-all": dict(policy="drop-all"),
    "drop-all-unlocked-rcf": dict(policy="drop-all", unlocked={"read_cache_folio"}),
    "drop-all-unlocked-rcf-xa_lock": dict(policy="drop-all", unlocked={"read_cache_folio"},
                                          bailout="xa_lock"),
    "drop-all-invalidate": dict(policy="drop-all", drop="invalidate"),
    "drop-all-all-unlocked": dict(policy="drop-all", unlocked=set(PATHS), bailout="xa_lock",
                                  keep_index=True),
    "max-order-on-mmap": dict(policy="max-order-on-mmap"),
    "issue-xa_lock-plain-bump": dict(ISSUE, bailout="xa_lock"),
    "write-under-invalidate_lock": dict(policy="drop-all", actors=(("fault", 2), ("write", 3)),
                                        write_lock="invalidate_lock"),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_bench_race(benchmark, name):
    res = benchmark.pedantic(explore, kwargs=SCENARIOS[name], rounds=3, iterations=1)
    benchmark.extra_info["states"] = res.states
    benchmark.extra_info["verdict"] = res.verdict
    benchmark.extra_info["states_per_second"] = round(res.states_per_second)
    assert res.states > 0 and not res.bounded


@pytest.mark.parametrize("jobs", [1, 2])
def test_bench_sweep(benchmark, jobs):
    cfgs = configurations(dict(policy="drop-all", write_lock="invalidate_lock"))
    res = benchmark.pedantic(sweep, args=(cfgs,), kwargs=dict(jobs=jobs), rounds=2, iterations=1)
    benchmark.extra_info["configurations"] = len(cfgs)
    benchmark.extra_info["states"] = res.states
    benchmark.extra_info["states_per_second"] = round(res.states / res.seconds)
    assert res.counts() == {"ok": len(cfgs)}
