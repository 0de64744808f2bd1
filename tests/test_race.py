"""Tests of ppsize.race: the checker on hand-made systems, the page-cache verdicts, the CLI."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from ppsize.cli import main
from ppsize.race import PATHS, POLICIES, PageCacheSystem, Scenario, explore, explore_system


# --------------------------------------------------------------------------- toy systems
class Toy:
    """Actors are lists of instructions over a dict of shared variables.

    Instructions: ("lock", name) blocks until free; ("unlock", name); ("set", var, value);
    ("load", var) into the actor's register; ("store+1", var) stores register + 1;
    ("retry_if", var) jumps back to the same instruction while var is truthy;
    ("wait_until", var) blocks until var is truthy.
    """

    def __init__(self, programs, shared=(), invariant=None):
        self.programs = programs
        self.actor_names = [f"A{i}" for i in range(len(programs))]
        self.shared0 = tuple(sorted(dict(shared).items()))
        self.invariant = invariant

    def initial(self):
        return (self.shared0, tuple((0, 0) for _ in self.programs))

    def done(self, state, i):
        return state[1][i][0] >= len(self.programs[i])

    def step(self, state, i):
        shared, acts = state
        pc, reg = acts[i]
        prog = self.programs[i]
        if pc >= len(prog):
            return None
        env = dict(shared)
        op = prog[pc]
        kind = op[0]
        saw = ""
        if kind == "lock":
            if env.get(op[1]):
                return None
            env[op[1]] = 1
        elif kind == "unlock":
            env[op[1]] = 0
        elif kind == "set":
            env[op[1]] = op[2]
        elif kind == "load":
            reg = env.get(op[1], 0)
            saw = str(reg)
        elif kind == "store+1":
            env[op[1]] = reg + 1
        elif kind == "retry_if":
            if env.get(op[1]):
                acts2 = acts[:i] + ((pc, reg),) + acts[i + 1:]
                return (shared, acts2), "retry", "busy", []
        elif kind == "wait_until":
            if not env.get(op[1]):
                return None
        acts2 = acts[:i] + ((pc + 1, reg),) + acts[i + 1:]
        return (tuple(sorted(env.items())), acts2), kind, saw, []

    def check(self, state):
        if self.invariant and all(self.done(state, i) for i in range(len(self.programs))):
            return self.invariant(dict(state[0]))
        return []

    def describe(self, state):
        return repr(dict(state[0]))


def test_checker_finds_abba_deadlock():
    sysm = Toy([[("lock", "a"), ("lock", "b"), ("unlock", "b"), ("unlock", "a")],
                [("lock", "b"), ("lock", "a"), ("unlock", "a"), ("unlock", "b")]])
    r = explore_system(sysm)
    assert r.verdict == "deadlock"
    assert len(r.trace) == 2                      # shortest: each takes its first lock
    assert {s.actor for s in r.trace} == {"A0", "A1"}
    assert not r.bounded


def test_checker_finds_fair_livelock():
    # A1 raises the flag and finishes; A0 then retries forever
    sysm = Toy([[("retry_if", "flag")], [("set", "flag", 1)]])
    r = explore_system(sysm)
    assert r.verdict == "livelock"
    assert r.trace[-1].cycle and r.trace[-1].actor == "A0"
    assert r.trace[0].actor == "A1" and not r.trace[0].cycle
    assert "A0" in r.findings[0].message


def test_checker_unfair_spin_is_not_a_livelock():
    # A0 spins while the flag is up, A1 (always enabled) lowers it: only an unfair
    # scheduler starves A1, so this is no livelock
    sysm = Toy([[("retry_if", "flag")], [("set", "flag", 0)]], shared={"flag": 1})
    r = explore_system(sysm)
    assert r.verdict == "ok"
    assert r.states == 3


def test_checker_safe_system_state_count_is_exact():
    sysm = Toy([[("set", "x", 1), ("set", "x2", 1)], [("set", "y", 1), ("set", "y2", 1)]])
    r = explore_system(sysm)
    assert r.verdict == "ok" and not r.findings
    assert r.states == 9                          # 3 x 3 program counters, no sharing
    assert r.transitions == 12


def test_checker_lost_update_violation_and_lock_fixes_it():
    inv = (lambda env: [] if env.get("c") == 2 else [f"lost update: c={env.get('c')}"])
    racy = Toy([[("load", "c"), ("store+1", "c")], [("load", "c"), ("store+1", "c")]],
               shared={"c": 0}, invariant=inv)
    r = explore_system(racy)
    assert r.verdict == "violation"
    assert "lost update" in r.findings[0].message
    assert len(r.trace) == 4                      # both load 0, both store 1
    locked = Toy([[("lock", "m"), ("load", "c"), ("store+1", "c"), ("unlock", "m")]] * 2,
                 shared={"c": 0}, invariant=inv)
    assert explore_system(locked).verdict == "ok"


def test_checker_bounds():
    sysm = Toy([[("set", "x", i) for i in range(5)], [("set", "y", i) for i in range(5)]])
    full = explore_system(sysm)
    assert full.states == 36 and not full.bounded
    r = explore_system(sysm, max_states=10)
    assert r.bounded and r.bound_hit == "max-states" and r.states == 10
    assert r.verdict == "ok"                      # no false deadlock at the cut
    r = explore_system(sysm, max_steps=3)
    assert r.bounded and r.bound_hit == "max-steps" and r.depth == 3
    with pytest.raises(ValueError):
        explore_system(sysm, max_states=0)
    with pytest.raises(ValueError):
        explore_system(sysm, max_steps=-1)


# --------------------------------------------------------------------- page-cache model
def _functions(trace, actor=None):
    return [s.function for s in trace if actor is None or s.actor == actor]


def test_range_policy_livelocks_as_in_the_thread():
    r = explore(policy="range")
    assert r.verdict == "livelock"
    assert 0 < r.states < 2000 and not r.bounded
    f = r.findings[0]
    assert "fault@2" in f.message
    cyc = [s for s in r.trace if s.cycle]
    assert cyc and all(s.actor == "fault@2" for s in cyc)
    assert any("-EEXIST" in s.saw and s.function == "filemap_add_folio" for s in cyc)
    assert any("filemap_get_entry" in s.function and "miss" in s.saw for s in cyc)
    # the new min order is in force and the partially populated range keeps its small folio
    assert all(s.state.startswith("min=1") and "3/o0" in s.state for s in cyc)
    # the root cause is reported too: a small folio survives the transition
    kinds = {g.kind for g in r.findings}
    assert kinds == {"livelock", "violation"}
    # the mmap transition's steps come first, named after the kernel functions
    assert _functions(r.trace)[:4] == ["filemap_invalidate_lock", "filemap_write_and_wait_range",
                                       "mapping_set_folio_min_order: load mapping->flags",
                                       "mapping_set_folio_min_order: store mapping->flags"]


def test_range_policy_when_the_ranges_first_page_is_cached():
    # Linux: __filemap_get_folio overwrites index with mapping_align_index(); the goto repeat
    # after -EEXIST then finds the small folio at the aligned index, which does not contain
    # the faulting index: VM_BUG_ON_FOLIO in filemap_fault (the thread says "infinite loop")
    r = explore(policy="range", cached=(0, 1, 2), actors=(("fault", 3),))
    assert r.verdict == "violation"
    msgs = [f.message for f in r.findings]
    assert any("VM_BUG_ON_FOLIO(!folio_contains(folio, 3))" in m for m in msgs)
    assert any("does not cover index 3" in m for m in msgs)
    bug = next(f for f in r.findings if "folio_contains" in f.message)
    assert "index 2: found 2/o0" in bug.trace[-2].saw


def test_range_policy_not_saved_by_bailout():
    assert explore(policy="range", bailout="xa_lock").verdict == "livelock"
    assert explore(policy="range", bailout="early").verdict == "livelock"


def test_drop_all_with_bailout_is_safe_when_every_adder_holds_invalidate_lock():
    r = explore(policy="drop-all")
    assert r.verdict == "ok" and not r.findings and not r.bounded
    assert 1000 < r.states < 50000
    sc = Scenario(policy="drop-all")
    assert sc.bailout == "early" and not sc.unlocked


def test_drop_all_without_bailout_adds_small_folios():
    r = explore(policy="drop-all", bailout="none")
    assert r.verdict == "violation"
    msgs = [f.message for f in r.findings]
    assert any("VM_BUG_ON_FOLIO" in m for m in msgs)
    assert any("still cached" in m for m in msgs)


def test_drop_all_unlocked_read_cache_folio_breaks_early_bailout():
    r = explore(policy="drop-all", unlocked={"read_cache_folio"})
    assert r.verdict == "violation"
    f = r.findings[0]
    assert "still cached" in f.message and "2/o0" in f.message
    acts = [(s.actor, s.function) for s in r.trace]
    # rcf passes the early check before the bump, the transition completes, then it stores
    check = acts.index(("rcf@2", "filemap_add_folio"))
    unlock = acts.index(("mmap2p[drop-all]", "filemap_invalidate_unlock"))
    bump = acts.index(("mmap2p[drop-all]", "mapping_set_folio_min_order: store mapping->flags"))
    assert check < bump < unlock < len(acts) - 1
    assert r.trace[-1].actor == "rcf@2" and "stored 2/o0" in r.trace[-1].saw


def test_drop_all_unlocked_read_cache_folio_safe_with_check_under_xa_lock():
    r = explore(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock")
    assert r.verdict == "ok" and not r.bounded and r.states > 1000


def test_unlocked_read_cache_folio_needs_the_original_index_on_repeat():
    # do_read_cache_folio re-aligns index with a min order read after the allocation: with a
    # concurrent bump, its goto repeat can return a folio that does not contain the index
    r = explore(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock",
                cached=(0,), actors=(("fault", 0), ("rcf", 1)))
    assert r.verdict == "violation"
    assert "rcf@1 finished with folio 0/o0 that does not cover index 1" in r.findings[0].message
    # looking the caller's index up again (and the check under xa_lock) closes it
    r = explore(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock",
                cached=(0,), actors=(("fault", 0), ("rcf", 1)), keep_index=True)
    assert r.verdict == "ok"
    assert explore(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock",
                   keep_index=True).verdict == "ok"
    # and with the fix, the range policy's other case becomes the thread's livelock
    r = explore(policy="range", cached=(0, 1, 2), actors=(("fault", 3),), keep_index=True)
    assert r.verdict == "livelock"


def test_drop_all_all_paths_unlocked_truncate_starves():
    r = explore(policy="drop-all", unlocked=set(PATHS), bailout="xa_lock")
    assert r.verdict == "livelock"
    assert "mmap2p[drop-all]" in r.findings[0].message
    assert "find_get_entries" in _functions([s for s in r.trace if s.cycle])


def test_drop_all_invalidation_skips_locked_folio():
    r = explore(policy="drop-all", drop="invalidate")
    assert r.verdict == "violation"
    assert "still cached" in r.findings[0].message
    skips = [s.saw for s in r.trace if s.saw.endswith("skip")]
    assert skips and ("refcount elevated" in skips[0] or "folio_trylock fails" in skips[0])
    # ... whereas truncation waits for the folio lock and the reference holders
    assert explore(policy="drop-all", drop="truncate").verdict == "ok"


def test_pinned_and_mapped_folios():
    # truncation unmaps mapped folios and drops pinned ones from the cache
    r = explore(policy="drop-all", mapped=(0,), pinned=(1,))
    assert r.verdict == "ok"
    # invalidation leaves both behind
    r = explore(policy="drop-all", mapped=(0,), pinned=(1,), drop="invalidate",
                actors=(("fault", 2),))
    assert r.verdict == "violation"
    saws = " ".join(s.saw for f in r.findings for s in f.trace)
    assert "refcount elevated (mapped)" in saws
    r = explore(policy="drop-all", pinned=(1,), cached=(1,), drop="invalidate", actors=())
    assert r.verdict == "violation"
    assert "refcount elevated (pinned)" in " ".join(s.saw for s in r.trace)


def test_max_order_on_mmap():
    r = explore(policy="max-order-on-mmap")
    assert r.verdict == "ok" and r.states > 100
    r = explore(policy="max-order-on-mmap", unlocked={"read_cache_folio"})
    assert r.verdict in ("livelock", "violation")
    assert any("still cached" in f.message for f in r.findings)
    # even with the check under xa_lock, an unlocked do_read_cache_folio whose goto repeat
    # looks up the re-aligned index returns a folio that does not contain its index
    r = explore(policy="max-order-on-mmap", unlocked={"read_cache_folio"}, bailout="xa_lock")
    assert r.verdict == "violation"
    assert "rcf@2 finished with folio 0/o0 that does not cover index 2" in r.findings[0].message
    assert explore(policy="max-order-on-mmap", unlocked={"read_cache_folio"}, bailout="xa_lock",
                   actors=(("fault", 2), ("rcf", 0))).verdict == "ok"


def test_hole_punch_actor_with_locked_paths_is_safe():
    r = explore(policy="drop-all", actors=(("fault", 2), ("truncate", 0)))
    assert r.verdict == "ok"


def test_trace_shape_and_json_dict():
    r = explore(policy="range")
    for n, s in enumerate(r.trace, 1):
        assert s.n == n and s.actor and s.function and s.state.startswith("min=")
    d = r.as_dict()
    assert {"verdict", "states", "trace", "findings", "bounded"} <= set(d)
    assert d["trace"][0]["function"] == "filemap_invalidate_lock"
    assert json.loads(json.dumps(d))["verdict"] == "livelock"


def test_model_invariants_hold_in_every_state_of_a_safe_run():
    sysm = PageCacheSystem(Scenario(policy="drop-all"))
    seen, todo = {sysm.initial()}, [sysm.initial()]
    while todo:
        s = todo.pop()
        assert sysm.check(s) == []
        cache = s[1]
        for f in cache:
            assert f[0] % (1 << f[1]) == 0          # naturally aligned
        assert list(cache) == sorted(cache)
        assert bin(s[3]).count("1") <= 4 and (s[2] == -1 or s[3] == 0)   # rwsem exclusion
        for i in range(len(sysm.actor_names)):
            r = sysm.step(s, i)
            if r is not None:
                assert r[3] == []
                if r[0] not in seen:
                    seen.add(r[0])
                    todo.append(r[0])
    assert len(seen) == explore(policy="drop-all", por=False).states


def test_scenario_validation():
    with pytest.raises(ValueError, match="range, drop-all"):
        Scenario(policy="nope")
    with pytest.raises(ValueError, match="read_cache_folio"):
        Scenario(policy="range", unlocked={"nope"})
    with pytest.raises(ValueError):
        Scenario(policy="range", actors=(("fault", 99),))
    with pytest.raises(ValueError):
        Scenario(policy="range", mapped=(2,))       # not cached


@settings(max_examples=12, deadline=None)
@given(policy=st.sampled_from(POLICIES),
       unlocked=st.sets(st.sampled_from(PATHS), max_size=2),
       bailout=st.sampled_from(["none", "early", "xa_lock"]),
       drop=st.sampled_from(["truncate", "invalidate"]),
       actors=st.lists(st.tuples(st.sampled_from(["fault", "read", "rcf"]),
                                 st.integers(0, 3)), min_size=1, max_size=2))
def test_random_scenarios_are_deterministic(policy, unlocked, bailout, drop, actors):
    kw = dict(policy=policy, unlocked=unlocked, bailout=bailout, drop=drop, actors=tuple(actors))
    a = explore(**kw, max_states=20000)
    b = explore(**kw, max_states=20000)
    assert a.verdict == b.verdict and a.states == b.states
    assert a.verdict in ("ok", "livelock", "deadlock", "violation")
    assert 0 < a.states <= 20000
    assert a.verdict != "deadlock"                  # the modelled kernel paths never deadlock
    if a.verdict != "ok":
        assert a.trace and a.trace[-1].n == len(a.trace)


# ------------------------------------------------------------------------------- CLI
def test_cli_verdicts_and_exit_codes(capsys, tmp_path):
    assert main(["race", "--policy", "range"]) == 1
    out = capsys.readouterr().out
    assert "verdict: livelock" in out and "states:" in out and "states/s" in out
    assert "  1. mmap2p[range 0]: filemap_invalidate_lock" in out
    assert "cycle repeats forever" in out
    js = tmp_path / "r.json"
    assert main(["race", "--policy", "drop-all", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "verdict: ok" in out
    d = json.loads(js.read_text())
    assert d["verdict"] == "ok" and d["states"] > 0 and d["trace"] == []
    assert main(["race", "--policy", "drop-all", "--unlocked-path", "read_cache_folio",
                 "--json", str(js)]) == 1
    d = json.loads(js.read_text())
    assert d["verdict"] == "violation" and d["trace"][-1]["actor"] == "rcf@2"
    assert {"n", "actor", "function", "saw", "cache"} <= set(d["trace"][0])
    assert d["scenario"]["unlocked_paths"] == ["read_cache_folio"]


def test_cli_bounded_ok_is_not_plain_ok(capsys, tmp_path):
    js = tmp_path / "b.json"
    assert main(["race", "--policy", "drop-all", "--max-states", "30", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "BOUNDED" in out and "verdict: ok\n" not in out
    d = json.loads(js.read_text())
    assert d["verdict"] == "bounded-ok" and d["bounded"] and d["bound_hit"] == "max-states"
    main(["race", "--policy", "drop-all", "--max-steps", "5"])
    assert "max-steps" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["--policy", "bogus"], "max-order-on-mmap"),
    (["--policy", "range", "--unlocked-path", "nope"], "read_cache_folio"),
    (["--policy", "range", "--max-states", "0"], "at least 1"),
    (["--policy", "range", "--max-steps", "-3"], "at least 1"),
    (["--policy", "range", "--max-states", "many"], "not an integer"),
    (["--policy", "range", "--actor", "bogus@1"], "fault, read, rcf, write, truncate"),
    (["--policy", "range", "--drop", "evict"], "truncate"),
    (["--policy", "range", "--actor", "fault@42"], "outside the file"),
])
def test_cli_bad_input_exits_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:
        rc = main(["race", *argv])
        raise SystemExit(rc)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_removing_a_mapped_folio_is_flagged():
    from ppsize.race.model import _World
    sysm = PageCacheSystem(Scenario(policy="drop-all", cached=(0, 1), mapped=(0,)))
    w = _World(sysm.initial())
    w.remove(0, sysm)
    assert w.viol and "still maps it" in w.viol[0]
    w = _World(sysm.initial())
    w.remove(1, sysm)                               # folio 1 is not mapped
    assert w.viol == []


def test_buffered_read_readahead_is_another_adder():
    # page_cache_sync_ra -> page_cache_ra_order reads min_order before invalidate_lock
    assert explore(policy="drop-all", readahead="all").verdict == "ok"
    assert explore(policy="drop-all", readahead="none").verdict == "ok"
    r = explore(policy="drop-all", readahead="all", bailout="none", actors=(("read", 2),))
    assert r.verdict == "violation"
    assert any("VM_BUG_ON_FOLIO: read@2 adds folio 2/o0" in f.message for f in r.findings)
    r = explore(policy="drop-all", readahead="all", unlocked={"page_cache_ra_order"},
                actors=(("read", 2),))
    assert r.verdict == "violation"
    assert r.trace[-1].function == "ra_alloc_folio -> filemap_add_folio"
    assert explore(policy="drop-all", readahead="all", unlocked={"page_cache_ra_order"},
                   bailout="xa_lock", actors=(("read", 2),)).verdict == "ok"
    with pytest.raises(ValueError, match="fault, all, none"):
        Scenario(readahead="sometimes")


def test_cli_json_to_stdout_and_all_traces(capsys):
    assert main(["race", "--policy", "range", "--json", "-"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] == "livelock" and d["states"] > 0
    assert any(step["cycle"] for step in d["trace"])
    assert [f["kind"] for f in d["findings"]][0] == "livelock"
    assert main(["race", "--policy", "range", "--all"]) == 1
    out = capsys.readouterr().out
    assert out.count("trace:") == len(d["findings"])
