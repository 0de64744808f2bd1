"""Timing of the default race-explorer scenarios (pytest-benchmark).

Run: pytest bench/bench_race.py --benchmark-only
"""
import pytest

from ppsize.race import explore

SCENARIOS = {
    "range": dict(policy="range"),
    "drop-all": dict(policy="drop-all"),
    "drop-all-unlocked-rcf": dict(policy="drop-all", unlocked={"read_cache_folio"}),
    "drop-all-unlocked-rcf-xa_lock": dict(policy="drop-all", unlocked={"read_cache_folio"},
                                          bailout="xa_lock"),
    "drop-all-invalidate": dict(policy="drop-all", drop="invalidate"),
    "max-order-on-mmap": dict(policy="max-order-on-mmap"),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_bench_race(benchmark, name):
    res = benchmark.pedantic(explore, kwargs=SCENARIOS[name], rounds=3, iterations=1)
    benchmark.extra_info["states"] = res.states
    benchmark.extra_info["verdict"] = res.verdict
    benchmark.extra_info["states_per_second"] = round(res.states_per_second)
    assert res.states > 0
