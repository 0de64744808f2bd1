"""Partial-order reduction of the race explorer (issue 14 item 8): the reduced search gives
the unreduced search's verdict, findings and shortest-trace lengths, with fewer states."""
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ppsize.race import KINDS, POLICIES, PageCacheSystem, Scenario, explore
from ppsize.race.checker import explore as explore_system
from ppsize.race.sweep import SWITCHES, configurations


def summary(res):
    return (res.verdict,
            sorted((f.kind, f.message if f.kind == "violation" else "", len(f.trace))
                   for f in res.findings))


def both(**kw):
    full = explore(Scenario(**kw), por=False)
    red = explore(Scenario(**kw))
    assert not full.bounded and not red.bounded
    return full, red


def assert_same(kw):
    full, red = both(**kw)
    assert red.por and not full.por
    assert summary(red) == summary(full), kw
    assert red.states <= full.states, kw
    return full, red


def _reachable(system, limit=20000):
    init = system.initial()
    seen, q = {init}, deque([init])
    while q and len(seen) < limit:
        s = q.popleft()
        yield s
        for i in range(len(system.actor_names)):
            r = system.step(s, i)
            if r is not None and r[0] not in seen:
                seen.add(r[0])
                q.append(r[0])


FOOTPRINT_SCENARIOS = [
    dict(policy="drop-all"),
    dict(policy="range"),
    dict(policy="max-order-on-mmap"),
    dict(policy="drop-all", drop="invalidate", actors=(("fault", 2), ("reclaim", 1), ("rcf", 3))),
    dict(policy="drop-all", bailout="xa_lock", bump="xa_lock", unlocked={"read_cache_folio"}),
    dict(policy="drop-all", actors=(("write", 2), ("truncate", 0), ("eio", 0)), dirty=(1,)),
    dict(policy="drop-all", async_ra=True, ra_fallback=True, initial_order=1,
         actors=(("fault", 0), ("read", 3))),
    dict(policy="range", ranges=3, bump="cycle-if-nonempty", actors=(("fault", 4), ("enospc", 0))),
    dict(policy="drop-all", ranges=4, cached=(0, 1, 3, 5),
         actors=(("fault", 2), ("read", 4), ("rcf", 6))),
    dict(policy="range", ranges=4, transition_range=1, cached=(0, 2, 5), async_ra=True,
         actors=(("fault", 2), ("reclaim", 5), ("write", 7))),
    dict(policy="max-order-on-mmap", ranges=3, cached=(0, 3), actors=(("fault", 1), ("read", 4))),
    dict(policy="drop-all", ranges=3, initial_order=1, readahead="all", keep_index=True,
         write_lock="invalidate_lock", cached=(0, 2, 4), mapped=(0,), pinned=(2,),
         actors=(("read", 5), ("write", 3), ("reclaim", 4))),
]


@pytest.mark.parametrize("kw", FOOTPRINT_SCENARIOS)
def test_footprints_stay_inside_may_touch(kw):
    """Every step of every reachable state: the tracked step equals the step, and what it
    reads and writes lies inside its actor's declared remaining footprint."""
    system = PageCacheSystem(Scenario(**kw))
    n = 0
    for s in _reachable(system):
        for i in range(len(system.actor_names)):
            assert system.footprint_check(s, i) == [], (kw, system.describe(s))
            n += 1
    assert n > 100


def test_footprint_check_catches_a_too_small_table():
    system = PageCacheSystem(Scenario(policy="drop-all"))
    system._may[(1, False)] = (set(), set())     # pretend fault@2 touches nothing
    bad = [p for s in _reachable(system, 200) for p in system.footprint_check(s, 1)]
    assert any("outside may_touch" in p for p in bad)


def _sample(policy, nactors, over, every):
    cfgs = configurations(dict(policy=policy), nactors=nactors, over=over)
    return [c.kwargs for c in cfgs[::every]]


ENUMERATED = (
    [kw for p in POLICIES for kw in _sample(p, 1, (), 7)]
    + _sample("drop-all", 1, ("bailout", "bump"), 61)
    + _sample("drop-all", 2, ("drop",), 211)
    + _sample("range", 2, ("readahead",), 157)
    + _sample("max-order-on-mmap", 1, ("fault_retry", "initial_order"), 23)
)


def test_enumerated_configurations_are_many():
    assert len(ENUMERATED) > 150
    assert len({kw["policy"] for kw in ENUMERATED}) == len(POLICIES)


@pytest.mark.parametrize("kw", ENUMERATED, ids=lambda kw: str(sorted(
    (k, v) for k, v in kw.items() if k != "_over"))[:90])
def test_por_matches_unreduced(kw):
    kw = {k: v for k, v in kw.items() if k != "_over"}
    assert_same(kw)


actor = st.tuples(st.sampled_from(KINDS), st.integers(0, 3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=st.sampled_from(POLICIES), cached=st.sets(st.integers(0, 3)),
       actors=st.lists(actor, min_size=1, max_size=3), bailout=st.sampled_from((None, "xa_lock")),
       drop=st.sampled_from(("truncate", "invalidate")), bump=st.sampled_from(SWITCHES["bump"]),
       write_lock=st.sampled_from(SWITCHES["write_lock"]), fault_retry=st.booleans(),
       unlocked=st.sets(st.sampled_from(("filemap_read", "read_cache_folio"))))
def test_por_matches_unreduced_hypothesis(policy, cached, actors, bailout, drop, bump,
                                          write_lock, fault_retry, unlocked):
    assert_same(dict(policy=policy, cached=tuple(cached), actors=tuple(actors), bailout=bailout,
                     drop=drop, bump=bump, write_lock=write_lock, fault_retry=fault_retry,
                     unlocked=unlocked))


#: more ranges and actors than today's defaults (2 ranges, 3 actors)
BIGGER = dict(policy="drop-all", ranges=4, cached=(0, 1, 3, 5),
              actors=(("fault", 2), ("read", 4), ("rcf", 6)))


def test_bigger_scenario_needs_far_fewer_states():
    full, red = assert_same(BIGGER)
    assert full.verdict == "ok"
    # measured: 11605 unreduced, 4638 reduced (2.5x)
    assert red.states * 2 < full.states


def test_failing_scenario_keeps_the_shortest_traces():
    full, red = assert_same(dict(policy="drop-all", unlocked={"read_cache_folio"}))
    assert red.verdict == "violation"
    assert [len(f.trace) for f in red.findings] == [len(f.trace) for f in full.findings]
    assert red.trace_states > 0 and red.states < full.states


def test_livelock_verdict_and_lasso_equal():
    full, red = assert_same(dict(policy="range"))
    assert red.verdict == "livelock"
    assert [s.as_dict() for s in red.trace] == [s.as_dict() for s in full.trace]


def test_explore_system_without_ample_is_unreduced():
    class Plain:
        def __init__(self):
            self.inner = PageCacheSystem(Scenario(policy="drop-all"))
            self.actor_names = self.inner.actor_names

        def __getattr__(self, name):
            if name == "ample":
                raise AttributeError(name)
            return getattr(self.inner, name)
    r = explore_system(Plain())
    assert not r.por and r.states == explore(Scenario(policy="drop-all"), por=False).states


class Spinner:
    """A toy system for the cycle proviso: actor 0 spins through two local states forever
    (a step that is always independent and invisible), actor 1 takes one step that breaks
    the invariant. Without the proviso the reduced search would follow the spin only and
    never see actor 1's step (the ignoring problem)."""
    actor_names = ("spin", "breaker")

    def initial(self):
        return (0, False)

    def step(self, state, i):
        pc, broken = state
        if i == 0:
            return (1 - pc, broken), "spin", "", []
        if broken:
            return None
        return (pc, True), "break", "", []

    def done(self, state, i):
        return i == 1 and state[1]

    def check(self, state):
        return ["broken"] if state[1] else []

    def describe(self, state):
        return repr(state)

    def ample(self, state):
        return 0, self.step(state, 0)


def test_cycle_proviso_expands_the_closing_state():
    red = explore_system(Spinner())
    full = explore_system(Spinner(), por=False)
    # after the break the spin is a livelock (breaker finished, spin never does)
    assert summary(red) == summary(full)
    assert {f.kind for f in red.findings} == {"violation", "livelock"}
    assert [len(f.trace) for f in red.findings if f.kind == "violation"] == [1]
    assert red.por and red.trace_states == full.states == 4
    assert red.transitions < full.transitions


def test_cli_no_por(capsys):
    from ppsize.cli import main
    assert main(["race", "--policy", "drop-all"]) == 0
    red = capsys.readouterr().out
    assert main(["race", "--policy", "drop-all", "--no-por"]) == 0
    full = capsys.readouterr().out
    n_red = int(red.split("states: ")[1].split()[0])
    n_full = int(full.split("states: ")[1].split()[0])
    assert "partial-order reduced" in red and "unreduced (--no-por)" in full
    assert n_red < n_full == explore(Scenario(policy="drop-all"), por=False).states
    assert "states/s" in red


def test_sweep_por_and_unreduced_agree():
    from ppsize.race.sweep import sweep
    cfgs = configurations(dict(policy="drop-all"), caches=[(), (0, 1, 3)], kinds=("rcf", "write"),
                          nactors=1, over=("bailout",))
    a, b = sweep(cfgs, jobs=1), sweep(cfgs, jobs=1, por=False)
    assert [o.verdict for o in a.outcomes] == [o.verdict for o in b.outcomes]
    assert [[(k, len(t)) for k, _, _, t in o.failures] for o in a.outcomes] == \
        [[(k, len(t)) for k, _, _, t in o.failures] for o in b.outcomes]
    assert a.states < b.states
    assert set(a.counts()) > {"ok"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), policy=st.sampled_from(POLICIES), ranges=st.integers(1, 3),
       initial_order=st.integers(0, 1), async_ra=st.booleans(), ra_fallback=st.booleans(),
       readahead=st.sampled_from(SWITCHES["readahead"]), keep_index=st.booleans(),
       writeback=st.booleans())
def test_por_matches_unreduced_more_ranges(data, policy, ranges, initial_order, async_ra,
                                           ra_fallback, readahead, keep_index, writeback):
    n = ranges << 1
    cached = data.draw(st.sets(st.integers(0, n - 1)))
    acts = data.draw(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, n - 1)),
                              min_size=1, max_size=2))
    dirty = data.draw(st.sets(st.sampled_from(sorted(cached)))) if cached else set()
    assert_same(dict(policy=policy, ranges=ranges, cached=tuple(cached), actors=tuple(acts),
                     initial_order=min(initial_order, ranges.bit_length()), async_ra=async_ra,
                     ra_fallback=ra_fallback, readahead=readahead, keep_index=keep_index,
                     writeback=writeback, dirty=tuple(dirty),
                     transition_range=data.draw(st.integers(0, ranges - 1))))
