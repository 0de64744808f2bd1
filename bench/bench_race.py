"""Timing of the race explorer (pytest-benchmark): the README's scenarios and a sweep.

Run: pytest bench/bench_race.py --benchmark-only
States and states/s are in extra_info; the sweep runs in one process and on two, so the
ratio of the two is the parallel speed-up on this machine (noisy when shared). Each scenario
runs partial-order reduced (por) and unreduced (full) in the same session, so their ratio is
what the reduction buys; BIGGER has more ranges and actors than the defaults.
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


#: more ranges (4, or 3) and actors (3 or 4) than the defaults (2 ranges, 1-3 actors)
BIGGER = {
    "drop-all-4r-3a": dict(policy="drop-all", ranges=4, cached=(0, 1, 3, 5),
                           actors=(("fault", 2), ("read", 4), ("rcf", 6))),
    "drop-all-4r-4a": dict(policy="drop-all", ranges=4, cached=(0, 1, 3, 5),
                           actors=(("fault", 2), ("read", 4), ("rcf", 6), ("fault", 7))),
    "max-order-4r-3a": dict(policy="max-order-on-mmap", ranges=4, cached=(0, 1, 3, 5),
                            actors=(("fault", 2), ("read", 4), ("rcf", 6))),
    "range-4r-3a": dict(policy="range", ranges=4, cached=(0, 1, 3, 5),
                        actors=(("fault", 2), ("read", 4), ("rcf", 6))),
}


@pytest.mark.parametrize("por", [True, False], ids=["por", "full"])
@pytest.mark.parametrize("name", list(SCENARIOS) + list(BIGGER))
def test_bench_race(benchmark, name, por):
    kw = dict(SCENARIOS.get(name) or BIGGER[name], por=por)
    rounds = 1 if name in BIGGER else 3
    res = benchmark.pedantic(explore, kwargs=kw, rounds=rounds, iterations=1)
    benchmark.extra_info["states"] = res.states
    benchmark.extra_info["trace_states"] = res.trace_states
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


def por_table():
    """Markdown rows: each scenario reduced and unreduced, in this process, one run each."""
    rows = []
    for name, kw in list(SCENARIOS.items()) + list(BIGGER.items()):
        red, full = explore(**kw), explore(**kw, por=False)
        assert red.verdict == full.verdict
        assert [len(f.trace) for f in red.findings] == [len(f.trace) for f in full.findings]
        extra = f" (+ {red.trace_states})" if red.trace_states else ""
        rows.append(f"| {name} | {red.verdict} | {red.states}{extra} | {red.seconds:.2f} | "
                    f"{red.states_per_second:,.0f} | {full.states} | {full.seconds:.2f} | "
                    f"{full.states_per_second:,.0f} |")
    return rows


if __name__ == "__main__":          # python bench/bench_race.py: the README's POR table
    print("\n".join(por_table()))
