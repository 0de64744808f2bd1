"""ppsize.race: mechanisms that can change a verdict, each a switch (item 6): reclaim, async and
fallback readahead, large initial folios, VM_FAULT_RETRY; and what a livelock is in a kernel."""
import pytest

from ppsize.race import PATHS, PageCacheSystem, Scenario, explore


def _kinds(r):
    return {f.kind for f in r.findings}


def test_range_livelock_is_a_soft_lockup_and_truncate_starvation_a_livelock():
    r = explore(policy="range")
    assert r.verdict == "livelock"
    assert r.findings[0].message.endswith(
        "soft lockup on a kernel without preemption (the goto repeat loop has no cond_resched); "
        "a livelock with preemption")
    r = explore(policy="drop-all", unlocked=set(PATHS), bailout="xa_lock")
    assert r.verdict == "livelock"
    assert "livelock (the loop calls cond_resched" in r.findings[0].message
    assert any("find_get_entries" in s.function for s in r.trace if s.cycle)


def test_reclaim_of_the_blocking_folio_ends_the_range_loop():
    # the fault at 2 retries -EEXIST against the small folio 3; memory pressure reaching folio 3
    # (once, at any moment) ends the loop under fair scheduling: progress, no livelock
    r = explore(policy="range", actors=(("fault", 2), ("reclaim", 3)))
    assert "livelock" not in _kinds(r) and not r.bounded
    assert r.verdict == "violation"        # the range policy still leaves small folios behind
    # reclaim elsewhere does not help
    assert explore(policy="range", actors=(("fault", 2), ("reclaim", 0))).verdict == "livelock"


def test_reclaim_keeps_busy_folios():
    sysm = PageCacheSystem(Scenario(policy="drop-all", cached=(0, 1), mapped=(0,),
                                    actors=(("reclaim", 0), ("reclaim", 1))))
    s = sysm.initial()
    _, func, saw, _ = sysm.step(s, 1)
    assert saw == "0/o0 busy (locked, mapped, dirty or referenced): kept"
    s2, func, saw, _ = sysm.step(s, 2)
    assert func == "shrink_folio_list -> __remove_mapping" and saw == "evicted 1/o0"
    assert [f[0] for f in s2[1]] == [0] and sysm.done(s2, 2)


def test_fallback_readahead_reads_the_min_order_under_the_lock():
    # page_cache_ra_order reads the min order before invalidate_lock: stale, VM_BUG_ON
    r = explore(policy="drop-all", bailout="none", actors=(("fault", 2),))
    assert r.verdict == "violation"
    assert r.findings[0].message.startswith("VM_BUG_ON_FOLIO: fault@2 adds folio 2/o0")
    # do_page_cache_ra -> page_cache_ra_unbounded reads it under the lock
    r = explore(policy="drop-all", bailout="none", actors=(("fault", 2),), ra_fallback=True)
    assert r.verdict == "ok"
    assert explore(policy="drop-all", bailout="none", actors=(("read", 2),), readahead="all",
                   ra_fallback=True).verdict == "ok"


def test_async_readahead_is_another_adder():
    kw = dict(policy="drop-all", actors=(("fault", 0),), unlocked={"page_cache_ra_order"})
    assert explore(**kw).verdict == "ok"                   # a hit on 0: no readahead
    r = explore(**kw, async_ra=True)
    assert r.verdict == "violation"
    assert any("async readahead at 2" in s.saw for s in r.trace)
    assert explore(policy="drop-all", actors=(("fault", 0),), async_ra=True).verdict == "ok"


def test_large_initial_folios():
    sysm = PageCacheSystem(Scenario(policy="drop-all", cached=(0, 3), dirty=(3,), initial_order=1))
    cache = sysm.initial()[1]
    assert [(f[0], f[1], f[6]) for f in cache] == [(0, 1, False), (2, 1, True)]
    # the range policy's loop needs a small folio in the other range: none with order-1 folios
    assert explore(policy="range").verdict == "livelock"
    r = explore(policy="range", initial_order=1)
    assert r.verdict == "ok" and not r.findings
    with pytest.raises(ValueError, match="initial order must be 0..2"):
        Scenario(initial_order=3)


def test_vm_fault_retry_redoes_the_fault_instead_of_mapping_the_wrong_folio():
    kw = dict(policy="drop-all", unlocked={"filemap_fault"}, bailout="xa_lock", cached=(0,),
              actors=(("fault", 1),))
    wrong = "fault@1 finished with folio 0/o0 that does not cover index 1"
    with_retry = [f.message for f in explore(**kw).findings]
    without = [f.message for f in explore(**kw, fault_retry=False).findings]
    assert wrong in without and wrong not in with_retry
    # the VM_BUG_ON before the fpin check fires either way
    assert any(m.startswith("VM_BUG_ON_FOLIO(!folio_contains(folio, 1))") for m in with_retry)
    sysm = PageCacheSystem(Scenario(policy="drop-all", cached=(), actors=(("fault", 0),)))
    s, saws = sysm.initial(), []
    while not sysm.done(s, 1):
        s, _, saw, _ = sysm.step(s, 1)
        saws.append(saw)
    # the major fault: readahead dropped mmap_lock, so the fault is retried once, then maps
    assert sum("VM_FAULT_RETRY" in x for x in saws) == 1 and saws[-1] == "mapped 0/o0"
