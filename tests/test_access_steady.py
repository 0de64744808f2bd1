"""Process.access_steady: a stream run several times in a row, the last pass counted.
It must give what that many access() calls give (outcomes, counters, the TLB's state
and the kernel's), whether or not a pass is found to repeat the pass before and is
taken from it (MMCore.access_repeat), for every replacement policy."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppsize
from ppsize.process import STEADY_PIECES
from ppsize.tlb import _C_DC_ACC, _C_DC_HIT

K4 = 4096
M = 1 << 20
CPUS = ("neoverse-n1", {"cpu": "cortex-a76", "replacement": "plru"},
        {"cpu": "cortex-a55", "replacement": "random", "seed": 7})


def _build(cpu, kp, pp, pgtable, maps, thp):
    """A Kernel with a process that ran a warm-up stream (its TLB entries stay behind)
    and the process under test, its mappings (anon rw, file r / rx) partly touched."""
    k = ppsize.Kernel(kp, "128M", thp=thp, cpu=cpu)
    f = k.create_file("/lib", 4 * M)
    other = k.spawn()
    a = other.mmap(2 * M, prot="rw")
    other.access(np.arange(a, a + 2 * M, K4, dtype=np.uint64), write=True)
    p = k.spawn(page_size=pp, pgtable=pgtable)
    addrs = []
    for length, kind in maps:
        if kind == "anon":
            addrs.append((p.mmap(length * M, prot="rw"), length * M, kind))
        else:
            addrs.append((p.mmap(length * M, prot=kind, file=f), length * M, kind))
    return k, p, addrs


def _stream(rng, addrs, n, pool_pages):
    """n accesses over a pool of pages of the mappings (repeats: hits, and faults on a
    first touch in the first pass), writes in anon, instruction fetches in rx."""
    pages, kinds = [], []
    for a, length, kind in addrs:
        pg = a + rng.integers(0, length // K4, pool_pages, dtype=np.uint64) * K4
        pages.append(pg)
        kinds += [kind] * pool_pages
    pages = np.concatenate(pages)
    kinds = np.array(kinds)
    pick = rng.integers(0, pages.size, n)
    vas = (pages[pick] + rng.integers(0, K4, n, dtype=np.uint64)).astype(np.uint64)
    writes = (kinds[pick] == "anon") & (rng.random(n) < 0.3)
    insn = kinds[pick] == "rx"
    return vas, writes, insn


def _core(k):
    return k._cpus.tlbs[0].core


def _same(ka, pa, kb, pb):
    assert _core(ka).state_key() == _core(kb).state_key()
    assert (_core(ka).counters == _core(kb).counters).all()
    assert pa.outcome_counts() == pb.outcome_counts()
    assert pa.status() == pb.status()
    assert ka.meminfo() == kb.meminfo()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cpu=st.sampled_from(range(len(CPUS))), kp=st.sampled_from(["4K", "16K"]),
       pp=st.sampled_from([None, "16K", "64K"]), pgtable=st.sampled_from(["emulated", "native"]),
       maps=st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["anon", "r", "rx"])),
                     min_size=1, max_size=4),
       n=st.one_of(st.integers(0, 64), st.integers(500, 6000)),
       pool=st.one_of(st.integers(1, 16), st.integers(17, 400)), passes=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1), thp=st.sampled_from(["never", "always"]))
def test_steady_equals_repeated_access(cpu, kp, pp, pgtable, maps, n, pool, passes, seed, thp):
    if pp is not None and ppsize.parse_size(pp) < ppsize.parse_size(kp):
        pp = None
    if pp is None:
        pgtable = "emulated"
    ka, pa, addrs = _build(CPUS[cpu], kp, pp, pgtable, maps, thp)
    kb, pb, _ = _build(CPUS[cpu], kp, pp, pgtable, maps, thp)
    rng = np.random.default_rng(seed)
    vas, writes, insn = _stream(rng, addrs, n, pool)
    for _ in range(passes - 1):
        pa.access(vas, write=writes, insn=insn)
    before = ka.process_tlb_counters(pa)
    want = pa.access(vas, write=writes, insn=insn)
    counted = ka.process_tlb_counters(pa) - before
    got, got_counted = pb.access_steady(vas, write=writes, insn=insn, passes=passes)
    assert got.tolist() == want.tolist()
    assert got_counted.tolist() == counted.tolist()
    _same(ka, pa, kb, pb)
    # the TLB a repeated pass left (put back from the pass before) behaves the same
    more, mw, mi = _stream(rng, addrs, 500, pool)
    assert pa.access(more, write=mw, insn=mi).tolist() == pb.access(more, write=mw, insn=mi).tolist()
    _same(ka, pa, kb, pb)
    for k in (ka, kb):
        k.check()
        _core(k).check()


def _hits_kernel(cpu="neoverse-n1"):
    k = ppsize.Kernel("4K", "64M", cpu=cpu, thp="never")
    p = k.spawn()
    a = p.mmap(64 * K4 * 4, prot="rw")
    return k, p, a


def _repeat(p, vas, prev=None, pieces=STEADY_PIECES, spare=None):
    out = np.empty(vas.size, np.uint8)
    p.kernel.switch_mm(p)
    _need, rec = p.mm.access_repeat(vas, np.zeros(0, np.uint8), False, out, np.zeros(0, np.uint8),
                                    False, pieces, prev, spare)
    return out, rec


def test_a_pass_that_repeats_is_taken_from_the_pass_before():
    """A stream over 32 pages (they fit the L1 TLB) repeats its state after the first
    piece of the second pass: the rest is taken from the first pass, with the same
    outcomes and counters as running it."""
    k, p, a = _hits_kernel()
    rng = np.random.default_rng(1)
    vas = a + rng.integers(0, 32, 4096, dtype=np.uint64) * K4
    p.access(vas, write=True)                  # mapped: both passes are all hits
    out1, r1 = _repeat(p, vas)
    out2, r2 = _repeat(p, vas, r1)
    assert r1.repeated_from == vas.size        # nothing to repeat in a first pass
    assert r2.repeated_from == vas.size // STEADY_PIECES
    assert (out2 == ppsize.Outcome.HIT).all() and out2.tolist() == out1.tolist()
    # what running the pass gives, from the same state (a second Kernel)
    kb, pb, b = _hits_kernel()
    pb.access(vas, write=True)
    pb.access(vas)
    before = kb.process_tlb_counters(pb)
    pb.access(vas)
    assert r2.counted.tolist() == (kb.process_tlb_counters(pb) - before).tolist()
    assert _core(k).state_key() == _core(kb).state_key()
    assert p.outcome_counts() == pb.outcome_counts()


def _dcache_kernel(cpu="neoverse-n1"):
    """A process cycling over 207 pages: 200 that stay in the L2 TLB and 7 that share
    one L2 set (5 ways), so they miss and walk every time; once per stream (piece 20)
    a page of that set that is touched nowhere else. Then another process walks 16M,
    which pushes that page's descriptor line out of the data cache."""
    k = ppsize.Kernel("4K", "64M", cpu=cpu, thp="never")
    p = k.spawn()
    a = p.mmap(2048 * K4, prot="rw")
    cyc = a + np.array(list(range(200)) + [44 + 256 * j for j in range(8) if j != 1], np.uint64) * K4
    vas = np.tile(cyc, STEADY_PIECES)
    vas[20 * cyc.size + 7] = a + 300 * K4
    p.access(vas, write=True)
    other = k.spawn()
    b = other.mmap(16 * M, prot="rw")
    other.access(np.arange(b, b + 16 * M, K4, dtype=np.uint64), write=True)
    return k, p, vas


@pytest.mark.parametrize("cpu", ["neoverse-n1", "cortex-a76", {"cpu": "neoverse-n1", "replacement": "plru"}],
                         ids=["n1", "a76", "n1-plru"])
def test_a_pass_whose_tlbs_repeat_replays_the_data_cache(cpu):
    """The TLBs repeat the first pass after piece 1 of the second, the data cache only
    after piece 20 (where the rare page's line comes back): from piece 2 the walks are
    taken from the first pass and their references sent to the data cache again, and
    from piece 21 everything. The outcomes, counters (the data cache's hits too) and
    end state are those of running the passes; a third pass taken from the second too."""
    k, p, vas = _dcache_kernel(cpu)
    piece = vas.size // STEADY_PIECES
    _o1, r1 = _repeat(p, vas)
    out2, r2 = _repeat(p, vas, r1)
    assert r2.replayed_from == 2 * piece and r2.repeated_from == 21 * piece
    assert r1.dc_logged and r2.dc_logged
    assert r2.dc_pos[-1] == r2.dc_log.size == r2.counted[_C_DC_ACC]     # every reference logged
    out3, r3 = _repeat(p, vas, r2)
    assert r3.repeated_from <= piece
    kb, pb, _ = _dcache_kernel(cpu)
    rows = []
    for _ in range(3):
        before = kb.process_tlb_counters(pb)
        out = pb.access(vas)
        rows.append(kb.process_tlb_counters(pb) - before)
    assert out2.tolist() == out3.tolist() == out.tolist()
    assert r2.counted.tolist() == rows[1].tolist() and r3.counted.tolist() == rows[2].tolist()
    assert 0 < rows[1][_C_DC_HIT] != rows[0][_C_DC_HIT]       # the data cache's state mattered
    assert _core(k).state_key() == _core(kb).state_key()
    assert p.outcome_counts() == pb.outcome_counts()
    _core(k).check()


def _fields(out, rec):
    return (out.tolist(), rec.repeated_from, rec.replayed_from, rec.dc_logged, rec.keys.tolist(),
            rec.rows.tolist(), rec.faulted.tolist(), rec.dc_pos.tolist(), rec.dc_log.tolist(),
            bytes(rec.out) == out.tobytes())          # (state: the core's, checked by its key)


def test_a_recycled_pass_is_a_new_one():
    """Passes that reuse the buffers of spare RepeatPasses (of other streams, so every
    buffer holds other values; Process.access_steady recycles its passes this way) give
    every field a fresh pass gives, through the replay of the data cache (spares whose
    logs are longer and shorter than the pass's); a spare of another shape, or the prev
    itself, is not taken."""
    k, p, vas = _dcache_kernel()
    fresh = [_repeat(p, vas)]
    for _ in range(2):
        fresh.append(_repeat(p, vas, fresh[-1][1]))
    kb, pb, _ = _dcache_kernel()
    _o, s1 = _repeat(pb, vas[0] + np.arange(vas.size, dtype=np.uint64) % 2048 * K4)  # walks each time
    _o, s2 = _repeat(pb, vas[0] + np.arange(vas.size, dtype=np.uint64) % 32 * K4)    # L1 hits
    assert s1.dc_log.size > fresh[0][1].dc_log.size and s2.dc_log.size < fresh[1][1].dc_log.size
    kc, pc, _ = _dcache_kernel()
    prev = None
    for (fo, fr), spare in zip(fresh, (s1, s2, s1)):        # the third takes the first's
        go, gr = _repeat(pc, vas, prev, spare=spare)
        assert gr is spare and _fields(go, gr) == _fields(fo, fr)
        prev = gr
    assert _core(kc).state_key() == _core(k).state_key()
    _o, r = _repeat(pc, vas[:-64], spare=s2)                # another shape: a new pass
    assert r is not s2
    _o, r = _repeat(pc, vas, s2, spare=s2)                  # prev is never the spare
    assert r is not s2


def test_a_fault_late_in_the_pass_before_stops_the_shortcut():
    """The pass before faulted in its last piece (a first touch): the page tables at
    any earlier point of it differ from now, so nothing of it is taken."""
    k, p, a = _hits_kernel()
    vas = np.concatenate([a + np.arange(32, dtype=np.uint64).repeat(64) * K4, [a + 200 * K4]])
    vas = vas.astype(np.uint64)
    p.access(vas[:-1], write=True)
    out1, r1 = _repeat(p, vas)
    assert r1.faulted[-1] and not r1.faulted[:-1].any()
    out2, r2 = _repeat(p, vas, r1)
    assert r2.repeated_from == vas.size
    assert (out2 == ppsize.Outcome.HIT).all()


def test_tlb_state_save_restore():
    """save_state / restore_state round trip: the key is back, and the restored core
    gives what the saved one gave; a state of another size is refused."""
    k, p, a = _hits_kernel()
    vas = a + np.arange(200, dtype=np.uint64) * K4
    p.access(vas[:100], write=True)
    core = _core(k)
    key, saved = core.state_key(), core.save_state()
    p.access(vas[100:], write=True)
    assert core.state_key() != key
    core.restore_state(saved)
    assert core.state_key() == key
    core.check()
    with pytest.raises(ValueError, match="saved state"):
        core.restore_state(saved[:-1])


def test_access_steady_checks_its_arguments():
    k, p, a = _hits_kernel()
    with pytest.raises(ValueError, match="passes"):
        p.access_steady([a], passes=0)
    with pytest.raises(ValueError, match="pieces"):
        _repeat(p, np.array([a], np.uint64), pieces=0)
    _o, rec = _repeat(p, np.array([a, a], np.uint64))
    with pytest.raises(ValueError, match="prev is a pass of 2"):
        _repeat(p, np.array([a], np.uint64), rec)
    nocpu = ppsize.Kernel("4K", "64M").spawn()
    b = nocpu.mmap(K4, prot="rw")
    out, counted = nocpu.access_steady([b, b], write=True, passes=2)
    assert out.tolist() == [0, 0] and not counted.any()
    with pytest.raises(ValueError, match="TLB model"):
        _repeat(nocpu, np.array([b], np.uint64))


def test_checked_kernel_runs_every_pass_in_full():
    """Kernel(tlb_check=True) compares every hit with the page table, so access_steady
    runs each pass as access() does: the same outcomes, counters and stale-hit count."""
    runs = []
    for steady in (False, True):
        k = ppsize.Kernel("4K", "64M", cpu="neoverse-n1", thp="never", tlb_check=True)
        p = k.spawn()
        a = p.mmap(64 * K4, prot="rw")
        vas = a + np.random.default_rng(3).integers(0, 64, 3000, dtype=np.uint64) * K4
        if steady:
            out, counted = p.access_steady(vas, write=True, passes=3)
        else:
            p.access(vas, write=True)
            p.access(vas, write=True)
            before = k.process_tlb_counters(p)
            out = p.access(vas, write=True)
            counted = k.process_tlb_counters(p) - before
        runs.append((out.tolist(), counted.tolist(), p.outcome_counts(), _core(k).state_key()))
    assert runs[0] == runs[1]
