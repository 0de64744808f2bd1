"""Translation in the fault engine (Kernel(cpu=...)): every access through its CPU's TLB,
the TLB flushes of every page-table change (a stale hit is a bug, and leaving out any
one flush is caught), ASIDs shared by processes of different page sizes and table
modes, per-process and per-CPU counters, and an engine that behaves exactly as without
a TLB."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import ppsize
from ppsize import Outcome
from ppsize._core.pagetable import FLUSH_SITES
from ppsize.tlb import StaleTLBHit

K4, K64, M2 = 4096, 65536, 2 << 20
PROCS = [("4K", "emulated"), ("16K", "emulated"), ("64K", "emulated"), ("16K", "native"),
         ("64K", "native")]


def kernel(cpu="cortex-a76", check="raise", **kw):
    kw.setdefault("thp", "madvise")
    kw.setdefault("mthp", {"64K": "always"})
    return ppsize.Kernel("4K", "1G", cpu=cpu, tlb_check=check, **kw)


def touch(p, a, n, step=K4, write=True):
    return p.access(np.arange(a, a + n, step, dtype=np.uint64), write=write)


def hits(p):
    s = p.tlb_stats()
    return sum(s[k]["hits"] for k in s if k in ("l1d", "l1i", "l2", "l2d", "l2i"))


# ------------------------------------------------------------------ item 5: no hit after munmap / mprotect
@pytest.mark.parametrize("page,pgtable", PROCS)
@pytest.mark.parametrize("op", ["munmap", "mprotect"])
def test_no_access_in_a_range_hits_after_munmap_or_mprotect(page, pgtable, op):
    k = kernel()
    p = k.spawn(page_size=page, pgtable=pgtable)
    a = p.mmap("8M")
    touch(p, a, 8 << 20)
    touch(p, a, 8 << 20)                     # every page now cached (L1 or L2)
    lo, n = a + (1 << 20), 1 << 20
    if op == "munmap":
        p.munmap(lo, n)
    else:
        p.mprotect(lo, n, "r")
    before = hits(p)
    out = touch(p, lo, n, K64, write=False)  # one access per TLB unit (64K runs at most)
    assert hits(p) == before                 # nothing in the range hit the TLB
    assert (out == (Outcome.SEGV_MAPERR if op == "munmap" else Outcome.HIT)).all()
    outside = touch(p, a + (4 << 20), 1 << 20, write=False)
    assert (outside == Outcome.HIT).all() and hits(p) > before
    k.check()


def test_second_pass_hits_and_walks_are_counted():
    k = kernel()
    p = k.spawn(page_size="64K")
    a = p.mmap("1M")
    out = touch(p, a, 1 << 20)
    assert np.bincount(out, minlength=2)[Outcome.FAULT] == 16
    s = p.tlb_stats()
    # each 64K page: a faulting walk, the fault, the retried walk that fills
    assert s["walk"]["faulting"] == 16 and s["walk"]["walks"] == 32
    touch(p, a, 1 << 20)
    s2 = p.tlb_stats()
    assert s2["l1d"]["accesses"] == 2 * 256 and s2["walk"]["walks"] == 32
    assert s2["l1d"]["hits"] == s["l1d"]["hits"] + 256     # 16 coalesced 64K entries fit the L1
    assert s2["walk"]["refs"] == sum(s2["walk"]["refs_by_level"])


def test_same_outcomes_and_state_with_and_without_a_tlb():
    results = []
    for cpu in (None, "cortex-a76"):
        rng = np.random.default_rng(3)
        k = ppsize.Kernel("4K", "512M", thp="always", mthp={"64K": "always"}, cpu=cpu)
        p = k.spawn(page_size="16K")
        a = p.mmap("32M")
        f = k.create_file("/lib/x.so", "3M")
        b = p.mmap("3M", file=f, prot="rx")
        vas = np.concatenate([a + rng.integers(0, 32 << 20, 20000), b + rng.integers(0, 3 << 20, 3000)])
        w = np.zeros(vas.size, bool)
        w[:20000] = rng.random(20000) < 0.5
        outs = [p.access(vas.astype(np.uint64), write=w)]
        c = p.fork()
        outs.append(c.access(vas[:5000].astype(np.uint64), write=True))
        p.mprotect(a, 4 << 20, "r")
        outs.append(p.access(vas.astype(np.uint64), write=w))
        k.check()
        results.append((outs, p.status(), c.status(), k.meminfo()))
    for x, y in zip(results[0][0], results[1][0]):
        assert (x == y).all()
    assert results[0][1:] == results[1][1:]


# ------------------------------------------------------------------ every flush, and leaving one out
def _split_thp(k, p):
    """MADV_NOHUGEPAGE on part of a THP: __split_vma splits the PMD (and changes no PTE,
    so only the split's own flush_pmd_tlb_range drops the 2M entries)."""
    a = p.mmap("4M")
    p.madvise(a, 4 << 20, "hugepage")
    touch(p, a, 4 << 20, M2)                         # PMD THPs
    touch(p, a, 4 << 20, K64)
    p.madvise(a + K64, K64, "nohugepage")
    return a + K64 + K4, False


def _cow(k, p):
    """A private writable file mapping executed, then written (wp_page_copy): the
    instruction TLB still holds the file page unless the COW flushes it."""
    f = k.create_file("/jit", "64K")
    a = p.mmap("64K", file=f, prot="rwx")
    p.access([a], insn=True)
    assert (p.access([a], write=True) == Outcome.COW).all()
    return a, "insn"


def _fork_parent(k, p):
    a = p.mmap("1M")
    touch(p, a, 1 << 20)
    p.fork()                                         # the parent's PTEs write-protected
    return a, True                                   # a write must fault now (COW)


def _contpte_unfold(k, p):
    a = p.mmap("1M")
    touch(p, a, 1 << 20)                             # 64K folios, contiguous runs
    touch(p, a, 1 << 20, write=False)
    p.mprotect(a + K4, K4, "r")                      # inside a run: split VMA, run unfolded
    return a + 2 * K4, False


def _munmap(k, p):
    a = p.mmap("1M")
    touch(p, a, 1 << 20)
    p.munmap(a, 1 << 20)
    p.mmap("1M", addr=a, fixed=True)
    touch(p, a, 1 << 20)
    return a, False


def _wp_shared(k, p):
    f = k.create_file("/data", "1M")
    a = p.mmap("1M", file=f, prot="rw", shared=True)
    touch(p, a, 1 << 20, write=False)                # read-only entries
    touch(p, a, 1 << 20)                             # wp_page_shared: writable
    k.writeback()                                    # folio_mkclean: write-protected again
    return a, True


SITES = {"split": _split_thp, "cow": _cow, "fork": _fork_parent, "gather": _munmap}


@pytest.mark.parametrize("site", sorted(SITES))
def test_each_flush_is_needed(site):
    """The scenario is clean with every flush; leave out the one flush Linux issues at
    this site and the stale translation it leaves is caught (by a checked access, or
    by Kernel.check's scan of every cached entry)."""
    for skip in (False, True):
        k = kernel()
        p = k.spawn(page_size="64K" if site == "cow" else "4K")
        if skip:
            p.mm.pt.tlb_skip = FLUSH_SITES[site]
        caught = False
        try:
            target, write = SITES[site](k, p)
            p.access([target], write=write is True, insn=write == "insn")
            k.check()
        except (StaleTLBHit, AssertionError) as e:
            assert "stale" in str(e).lower()
            caught = True
        assert caught == skip, (site, skip)


def test_cow_flush_left_out_is_a_stale_hit():
    k = kernel()
    p = k.spawn(page_size="64K")
    p.mm.pt.tlb_skip = FLUSH_SITES["cow"]
    va, _ = _cow(k, p)
    with pytest.raises(StaleTLBHit, match="first at index 0"):
        p.access([va], insn=True)


def test_mprotect_gather_left_out_is_caught(monkeypatch):
    import ppsize.process as process
    monkeypatch.setattr(process, "TLB_GATHER_KINDS", frozenset({"zap", "move"}))
    k = kernel()
    p = k.spawn()
    a = p.mmap("1M")
    touch(p, a, 1 << 20)
    p.mprotect(a, 1 << 20, "r")
    k.tlb_check = True
    touch(p, a, 1 << 20)                  # the stale writable entries let the writes "hit"
    assert p.tlb_stats()["check"]["stale_hits"] == 256
    with pytest.raises(AssertionError, match="stale"):
        k.check()


# ------------------------------------------------------------------ hypothesis: random syscalls
OPS = st.lists(st.tuples(
    st.sampled_from(["touch", "write", "munmap", "mprotect", "dontneed", "mremap", "fork", "exit",
                     "exec", "hugepage", "file", "truncate", "writeback", "fetch"]),
    st.integers(0, 63), st.integers(1, 16), st.integers(0, 4)), min_size=4, max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.sampled_from(["cortex-a76", "cortex-a55"]), st.booleans())
def test_random_syscalls_never_leave_a_stale_translation(ops, cpu, coalesce):
    """Random mmap/munmap/mprotect/madvise/mremap/fork/exit/exec/file-policy sequences,
    processes of every page size and table mode on one TLB: no checked access hits a
    stale entry and Kernel.check finds none cached anywhere."""
    run_ops(ops, cpu, coalesce)


@pytest.mark.parametrize("kinds,op", [({"protect", "move"}, "munmap"), ({"zap", "move"}, "mprotect"),
                                      ({"zap", "protect"}, "mremap")])
def test_the_random_sequences_catch_a_missing_flush(monkeypatch, kinds, op):
    """The same driver with one syscall's mmu_gather flush left out fails."""
    import ppsize.process as process
    ops = [("write", 0, 1, 3), (op, 1, 4, 3), ("write", 0, 1, 3)]   # the 64K native process
    run_ops(ops, "cortex-a76", True)
    monkeypatch.setattr(process, "TLB_GATHER_KINDS", frozenset(kinds))
    with pytest.raises((StaleTLBHit, AssertionError), match="(?i)stale"):
        run_ops(ops, "cortex-a76", True)


def run_ops(ops, cpu, coalesce):
    k = ppsize.Kernel("4K", "256M", thp="madvise", mthp={"64K": "always", "16K": "always"},
                      cpu={"cpu": cpu, "coalesce": coalesce, "max_asids": 8}, tlb_check="raise")
    f = k.create_file("/lib/libz.so", "2M")
    procs = []
    for page, pgtable in PROCS[:3] + PROCS[4:]:
        p = k.spawn(page_size=page, pgtable=pgtable)
        procs.append([p, p.mmap("4M"), 4 << 20])
    for op, a, b, c in ops:
        live = [x for x in procs if x[0].alive]
        if not live:
            break
        x = live[c % len(live)]
        p, base, length = x
        ps = p.page_size
        off = (a * ps * 3) % length
        n = min(b * ps, length - off)
        lo = base + off
        try:
            if op in ("touch", "write"):
                touch(p, base, length, ps, write=op == "write")
            elif op == "fetch":
                g = p.mmap("2M", file=f, prot="rx")
                p.access(np.arange(g, g + M2, K4 * 4, dtype=np.uint64), insn=True)
            elif op == "munmap":
                p.munmap(lo, n)
            elif op == "mprotect":
                p.mprotect(lo, n, ["r", "rw", "none"][c % 3])
            elif op == "dontneed":
                p.madvise(lo, n, "dontneed")
            elif op == "hugepage":
                p.madvise(base, length, "hugepage")
            elif op == "mremap":
                new = p.mmap(length)
                p.munmap(new, length)
                x[1] = p.mremap(base, length, length, flags=3, new_addr=new)   # MAYMOVE | FIXED
                p.mmap(length, addr=base, fixed=True)              # other memory at the old VAs
                touch(p, base, length, ps)
            elif op == "mmap_back":
                p.mmap(length, addr=base, fixed=True)              # fresh memory at the same VAs
                touch(p, base, length, ps)
            elif op == "fork":
                ch = p.fork()
                touch(ch, base, length, ps)
                procs.append([ch, base, length])
            elif op == "exit" and len(live) > 1:
                p.exit()
            elif op == "exec":
                p.exec()
                x[1] = p.mmap("4M")
            elif op == "file":
                g = p.mmap("2M", file=f, prot="r")
                touch(p, g, M2, K4, write=False)
            elif op == "truncate":
                k.truncate(f, (b * K64) % (2 << 20))
                k.truncate(f, "2M")
            elif op == "writeback":
                k.writeback()
        except OSError:
            pass
        for p, base, length in procs:
            if p.alive:
                p.access(np.arange(base, base + length, p.page_size, dtype=np.uint64) + np.uint64(8))
        k.check()
    st_ = k.tlb_stats()[0]
    assert st_["check"]["stale_hits"] == 0
    # the CPU's counters are the sum of every process's (exited, exec'd, rolled over)
    total = sum(x[0].tlb_stats()["l1d"]["accesses"] for x in procs)
    assert st_["l1d"]["accesses"] == total


# ------------------------------------------------------------------ ASIDs, CPUs, counters
def test_processes_of_every_page_size_share_one_tlb_by_asid():
    k = kernel()
    ps = [k.spawn(page_size=pg, pgtable=mode) for pg, mode in PROCS]
    assert sorted(p.asid for p in ps) == [1, 2, 3, 4, 5]
    for p in ps:
        a = p.mmap("2M")
        touch(p, a, 2 << 20, p.page_size)
    walks = {p.page_size, } and [p.tlb_stats()["walk"]["refs_by_level"] for p in ps]
    assert walks[4][3] == 0                          # 64K native: 3 levels
    assert all(w[3] > 0 for w in walks[:3])          # 4K tables: 4 levels
    s = k.tlb_stats()
    assert len(s) == 1 and s[0]["l1d"]["accesses"] == sum(p.tlb_stats()["l1d"]["accesses"] for p in ps)
    k.check()


def test_asid_rollover_flushes_and_keeps_counters():
    k = kernel(cpu={"cpu": "cortex-a76", "max_asids": 4})
    p = k.spawn()
    a = p.mmap("1M")
    touch(p, a, 1 << 20)
    gen = []
    for i in range(5):                              # ASIDs 1..3: the 4th MM rolls over
        q = k.spawn()
        touch(q, q.mmap("64K"), K64)
        gen.append(q.asid)
        q.exit()
    touch(p, a, 1 << 20, write=False)               # p gets an ASID again, all misses
    assert k._cpus.rollovers >= 1
    s = p.tlb_stats()
    assert s["l1d"]["accesses"] == 2 * 256
    assert k.tlb_stats()[0]["l1d"]["accesses"] == 2 * 256 + 5 * 16
    k.check()


def test_two_cpus_keep_their_own_entries():
    k = kernel(ncpus=2)
    p, q = k.spawn(cpu=0), k.spawn(cpu=1)
    for x in (p, q):
        touch(x, x.mmap("1M"), 1 << 20)
    s = k.tlb_stats()
    assert [c["l1d"]["accesses"] for c in s] == [256, 256]
    assert k.tlb_stats(cpu=1) == s[1]
    c = q.fork()
    assert c.cpu == 1
    k.check()
    with pytest.raises(ValueError, match="cpu 2 out of range 0..1"):
        k.spawn(cpu=2)


def test_instruction_fetches_use_the_instruction_side():
    k = kernel()
    f = k.create_file("/bin/tool", "1M")
    p = k.spawn()
    x = p.mmap("1M", file=f, prot="rx")
    d = p.mmap("1M")
    assert (p.access(np.arange(x, x + (1 << 20), K4, dtype=np.uint64), insn=True) != Outcome.SEGV_ACCERR).all()
    assert (p.access([d], insn=True) == Outcome.SEGV_ACCERR).all()   # no VM_EXEC
    s = p.tlb_stats()
    assert s["l1i"]["accesses"] == 257 and s["l1d"]["accesses"] == 0
    k.check()


def test_bad_cpu_arguments():
    with pytest.raises(ValueError, match="unknown CPU preset 'z80'"):
        ppsize.Kernel("4K", "64M", cpu="z80")
    with pytest.raises(TypeError, match="cpu must be a preset name"):
        ppsize.Kernel("4K", "64M", cpu=3)
    with pytest.raises(ValueError, match="ncpus must be a positive integer, got 0"):
        ppsize.Kernel("4K", "64M", cpu="cortex-a76", ncpus=0)
    with pytest.raises(ValueError, match="tlb_check must be"):
        ppsize.Kernel("4K", "64M", cpu="cortex-a76", tlb_check="yes")
    k = ppsize.Kernel("4K", "64M")
    with pytest.raises(ValueError, match="no translation model"):
        k.spawn().tlb_stats()
    with pytest.raises(ValueError, match="no translation model"):
        k.tlb_stats()
