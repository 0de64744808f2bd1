"""ppsize.race against the kernel as written: the plain min-order bump and the lockless
truncation (item 1), the VM_BUG_ON at the entry of __filemap_add_folio (5), the flag word (4),
the write path (2), dirty folios and writeback (3)."""
import pytest

from ppsize.cli import main
from ppsize.race import BUMPS, PageCacheSystem, Scenario, explore

# the issue's command: an empty cache, one unlocked read_cache_folio caller
ISSUE = dict(policy="drop-all", cached=(), actors=(("rcf", 2),), unlocked={"read_cache_folio"})


def _msgs(r):
    return [f.message for f in r.findings]


# ------------------------------------------------------------------ 1: the bump is a plain store
def test_issue_command_check_under_xa_lock_is_not_enough_with_the_kernels_bump():
    assert explore(**ISSUE, bailout="early").verdict == "violation"
    r = explore(**ISSUE, bailout="xa_lock")
    assert r.verdict == "violation" and not r.bounded
    assert "folio 2/o0 below min order 1 is still cached" in r.findings[0].message
    steps = [(s.actor, s.function, s.saw) for s in r.trace]
    # rcf is inside xas_lock_irq having checked the old min order ...
    enter = next(n for n, s in enumerate(steps) if "xas_lock_irq: no conflict" in s[2])
    # ... the plain store of mapping->flags and the whole lockless truncation pass it ...
    store = next(n for n, s in enumerate(steps)
                 if s[1] == "mapping_set_folio_min_order: store mapping->flags")
    empty = next(n for n, s in enumerate(steps) if s[2] == "range empty: done")
    unlock = next(n for n, s in enumerate(steps) if s[1] == "filemap_invalidate_unlock")
    # ... and then it stores the order-0 folio
    assert enter < store < empty < unlock < len(steps) - 1
    assert steps[-1][0] == "rcf@2" and "xas_store 2/o0" in steps[-1][2]
    assert "xa_lock:rcf@2" in r.trace[store].state


@pytest.mark.parametrize("bump, verdict", [("plain", "violation"), ("xa_lock", "ok"),
                                           ("cycle", "ok"), ("cycle-if-nonempty", "violation")])
def test_bump_switch_on_the_issue_command(bump, verdict):
    r = explore(**ISSUE, bailout="xa_lock", bump=bump)
    assert r.verdict == verdict and not r.bounded
    if bump == "cycle-if-nonempty":
        # truncate_inode_pages_final's cycle is skipped on an empty mapping: the race stays
        assert any(s.saw == "empty: no xa_lock cycle" for s in r.trace)


def test_bump_switch_does_not_help_the_early_bailout():
    # the early check reads the min order before xa_lock: no ordering of the bump fixes it
    for bump in BUMPS:
        assert explore(**ISSUE, bailout="early", bump=bump).verdict == "violation"


def test_old_readme_row_with_a_populated_cache_still_holds():
    # with folios to delete, the truncation takes xa_lock and waits for the adder's section
    r = explore(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock")
    assert r.verdict == "ok" and not r.bounded
    assert explore(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock",
                   keep_index=True).verdict == "ok"


def test_cli_issue_command_and_bump_flag(capsys):
    argv = ["race", "--policy", "drop-all", "--cached", "", "--actor", "rcf@2",
            "--unlocked-path", "read_cache_folio", "--bailout", "xa_lock"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "verdict: violation" in out and "bump plain (plain RMW)" in out
    assert main(argv + ["--bump", "xa_lock"]) == 0
    assert "verdict: ok" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(argv + ["--bump", "sometimes"])
    assert e.value.code == 2


# ------------------------------------------------- 5: VM_BUG_ON_FOLIO at the entry, as in Linux
def test_bailout_none_checks_at_the_entry_of_filemap_add_folio():
    r = explore(**ISSUE, bailout="none")
    bug = next(f for f in r.findings if f.message.startswith("VM_BUG_ON_FOLIO"))
    assert "(entry of __filemap_add_folio)" in bug.message
    last = bug.trace[-1]
    # the assertion fires before anything is stored (the old model checked at xas_store)
    assert last.saw == "entry: order 0 < min order 1" and "[]" in last.state
    # a bump between the entry and the store is not caught by it: the folio stays cached
    sysm = PageCacheSystem(Scenario(**ISSUE, bailout="none"))
    st, saws, viol = sysm.initial(), [], []
    for actor in [1, 1, 1, 1] + [0] * 6 + [1]:      # rcf to past the entry, the transition, rcf
        st, _, saw, v = sysm.step(st, actor)
        saws.append(saw)
        viol += v
    assert saws[3] == "entry: order 0 >= min order 0" and "min order 0 -> 1" in saws[4:10]
    assert sysm.done(st, 0) and saws[-1] == "stored 2/o0 (locked)"
    assert viol == [] and "still cached" in sysm.check(st)[0]
    assert not any(m.startswith("VM_BUG_ON") for m in _msgs(explore(
        policy="drop-all", cached=(), actors=(("rcf", 2),), bailout="none")))


# ------------------------------------------------------------------ 4: the flag word
@pytest.mark.parametrize("kind, bit", [("eio", "AS_EIO"), ("enospc", "AS_ENOSPC")])
def test_plain_bump_loses_a_concurrent_set_bit(kind, bit):
    r = explore(policy="drop-all", actors=((kind, 0),))
    assert r.verdict == "violation"
    assert r.findings[0].message.startswith(f"lost update of mapping->flags: {bit}")
    assert f"overwrote {bit} set since the load" in r.trace[-1].saw
    # under xa_lock does not help: set_bit takes no lock; an atomic RMW does
    assert explore(policy="drop-all", actors=((kind, 0), ("fault", 2)),
                   bump="xa_lock").verdict == "violation"
    assert explore(policy="drop-all", actors=((kind, 0), ("fault", 2)), rmw="atomic").verdict == "ok"
    sysm = PageCacheSystem(Scenario(policy="drop-all", actors=((kind, 0),)))
    after = sysm.step(sysm.initial(), 1)[0]          # the set_bit
    assert "flags{" + bit[3:] + "}" in sysm.describe(after)
    assert "flags{" not in sysm.describe(sysm.initial())


# ------------------------------------------------------------------ 2: the write path
def test_write_begin_adds_under_i_rwsem_only():
    r = explore(policy="drop-all", actors=(("write", 2),))
    assert r.verdict == "violation"
    assert "folio 2/o0 below min order 1 is still cached" in " ".join(_msgs(r))
    assert explore(policy="drop-all", actors=(("write", 2),),
                   write_lock="invalidate_lock").verdict == "ok"


def test_write_begin_goto_repeat_returns_a_wrong_folio_silently():
    # no other adder needed: the writer, not excluded by invalidate_lock, runs between the
    # bump and the truncation, gets -EEXIST from the small folio 0 and looks up index 0
    kw = dict(policy="drop-all", cached=(0,), actors=(("write", 1),), bailout="xa_lock",
              bump="cycle")
    r = explore(**kw)
    silent = next(f for f in r.findings if f.message.startswith("silent wrong folio"))
    assert ("write@1's write_begin got folio 0/o0, which does not contain index 1" in silent.message
            and "checks the aligned index 0" in silent.message)
    assert not any(m.startswith("VM_BUG_ON_FOLIO(!folio_contains") for m in _msgs(r))
    assert "index 0: found 0/o0" in silent.trace[-2].saw
    r = explore(**kw, keep_index=True)
    assert not any("wrong folio" in m or "does not cover" in m for m in _msgs(r))


# ------------------------------------------------------------------ 3: dirty folios, writeback
def test_truncating_a_dirty_folio_loses_data_unless_written_back():
    r = explore(policy="drop-all", cached=(0, 1), dirty=(0,), actors=(), writeback=False)
    assert r.verdict == "violation" and r.findings[0].message.startswith(
        "data lost: mmap2p[drop-all] truncated dirty folio 0/o0")
    assert explore(policy="drop-all", cached=(0, 1), dirty=(0,), actors=()).verdict == "ok"
    sysm = PageCacheSystem(Scenario(policy="drop-all", cached=(0, 1), dirty=(0,), actors=()))
    s = sysm.step(sysm.initial(), 0)[0]               # filemap_invalidate_lock
    _, func, saw, _ = sysm.step(s, 0)
    assert func.endswith("do_writepages") and saw == "0/o0 written back, clean"


def test_writer_dirties_after_the_writeback():
    r = explore(policy="drop-all", cached=(0, 1), dirty=(0,), actors=(("write", 1),),
                bailout="xa_lock", bump="cycle", keep_index=True)
    lost = [f for f in r.findings if f.message.startswith("data lost")]
    assert lost
    fn = [s.function for s in lost[0].trace]
    assert fn.index("filemap_write_and_wait_range") < len(fn) - 1
    assert any(s.startswith("copy_folio_from_iter") for s in fn)
    assert explore(policy="drop-all", cached=(0, 1), dirty=(0,), actors=(("write", 1),),
                   write_lock="invalidate_lock").verdict == "ok"
    # invalidation never drops a dirty folio (mapping_evict_folio): no loss, but it stays
    r = explore(policy="drop-all", cached=(0, 1), dirty=(0,), actors=(), writeback=False,
                drop="invalidate")
    assert r.verdict == "violation" and "still cached" in r.findings[0].message
    assert any(s.saw == "folio 0/o0 dirty: skip" for s in r.trace)


def test_new_switches_are_validated():
    with pytest.raises(ValueError, match="plain, xa_lock, cycle"):
        Scenario(bump="never")
    with pytest.raises(ValueError, match="plain, atomic"):
        Scenario(rmw="x")
    with pytest.raises(ValueError, match="i_rwsem, invalidate_lock"):
        Scenario(write_lock="none")
    with pytest.raises(ValueError, match="dirty but not cached"):
        Scenario(cached=(0,), dirty=(1,))


# ------------------------------------------------- the README's rows: old ones that still hold
ALL = frozenset({"filemap_fault", "filemap_read", "read_cache_folio", "page_cache_ra_order"})
OLD_ROWS = [
    (dict(policy="range"), "livelock"),
    (dict(policy="range", cached=(0, 1, 2), actors=(("fault", 3),)), "violation"),
    (dict(policy="drop-all"), "ok"),
    (dict(policy="drop-all", bailout="none"), "violation"),
    (dict(policy="drop-all", unlocked={"read_cache_folio"}), "violation"),
    (dict(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock"), "ok"),
    (dict(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock", cached=(0,),
          actors=(("fault", 0), ("rcf", 1))), "violation"),
    (dict(policy="drop-all", unlocked={"read_cache_folio"}, bailout="xa_lock", keep_index=True),
     "ok"),
    (dict(policy="drop-all", drop="invalidate"), "violation"),
    (dict(policy="drop-all", mapped=(0,), pinned=(1,), drop="invalidate"), "violation"),
    (dict(policy="drop-all", bailout="xa_lock", keep_index=True, unlocked=ALL), "livelock"),
    (dict(policy="max-order-on-mmap"), "ok"),
    (dict(policy="max-order-on-mmap", unlocked={"read_cache_folio"}), "livelock"),
]


@pytest.mark.parametrize("kw, verdict", OLD_ROWS, ids=[str(i) for i in range(len(OLD_ROWS))])
def test_old_readme_rows_still_hold(kw, verdict):
    r = explore(**kw)
    assert r.verdict == verdict and not r.bounded


def test_readme_answer_small_sweeps():
    from ppsize.race.sweep import configurations, sweep
    # drop-all: with the write path under invalidate_lock every one-actor configuration holds
    ok = sweep(configurations(dict(policy="drop-all", write_lock="invalidate_lock")), jobs=2)
    assert ok.counts() == {"ok": 256}
    # the kernel's write path (i_rwsem only) breaks it
    bad = sweep(configurations(dict(policy="drop-all"), kinds=("write",)), jobs=2)
    assert bad.counts().get("violation", 0) > 0
    keys = set(bad.distinct())
    assert any(k.startswith("violation: data lost") for k in keys)
    assert any(k.startswith("violation: silent wrong folio") for k in keys)
    # unlocked read_cache_folio callers: the kernel's plain bump fails on the empty caches
    kw = dict(policy="drop-all", write_lock="invalidate_lock", unlocked={"read_cache_folio"},
              bailout="xa_lock", keep_index=True)
    plain = sweep(configurations(kw, kinds=("rcf",)), jobs=2)
    failing = {o.kwargs["cached"] for o in plain.outcomes if o.verdict != "ok"}
    assert failing == {()}
    assert sweep(configurations(dict(kw, bump="cycle"), kinds=("rcf",)), jobs=2).counts() == \
        {"ok": 64}
