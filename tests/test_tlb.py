"""The MMU model (ppsize.tlb / ppsize._core.tlb): differential tests against the pure-Python
reference (tests/ref_tlb.py), analytic properties, flushes and stale-hit detection, presets
and bad input."""
import numpy as np
import pytest
from hypothesis import example, given, settings, HealthCheck, strategies as st

import ppsize
from ppsize.tlb import TLB, StaleTLBHit, estimate_cycles, linux_flush_range, REPLACEMENTS
from ppsize.geometry import geometry
from ref_tlb import RefTLB, synthetic_table_pa

BASE = 0x4000_0000
K4, K64, M2 = 4096, 65536, 2 << 20


def custom(l1=48, l1w=None, l2=None, l2w=None, repl="lru", **kw):
    levels = {"l1d": {"entries": l1, "ways": l1w or l1}, "l1i": {"entries": 8}}
    if l2:
        levels["l2"] = {"entries": l2, "ways": l2w or l2}
    kw.setdefault("dcache", None)
    return TLB("custom", replacement=repl, **levels, **kw)


def run_ref(t, ref, vas, asid, side=0):
    g = t._maps[asid][0]
    geom = (g.levels, list(g.shifts), [int(e).bit_length() - 1 for e in g.entries])
    ref.geom[asid] = geom
    return ref.run([int(v) for v in vas], asid, side, t._maps[asid][1], synthetic_table_pa(geom))


# ------------------------------------------------------------------ differential
GEOMS = {"arm64-4k-48": ["4K", "64K", "2M", "32M"], "arm64-16k-48": ["16K", "2M", "32M"],
         "arm64-64k-48": ["64K", "2M", "512M"], "x86_64-4l": ["4K", "2M"]}


@st.composite
def level(draw, name, max_sets=8, max_ways=12):
    ways = draw(st.integers(1, max_ways))
    sets = draw(st.integers(1, max_sets))
    sizes = draw(st.lists(st.sampled_from(["4K", "16K", "64K", "2M", "32M", "512M"]),
                          min_size=1, max_size=4, unique=True))
    return {"entries": ways * sets, "ways": ways, "sizes": sizes,
            "replacement": draw(st.sampled_from(sorted(REPLACEMENTS))),
            "seed": draw(st.integers(1, 1000))}


@st.composite
def scenario(draw):
    kw = {"l1d": draw(level("l1d")), "l1i": draw(level("l1i"))}
    if draw(st.booleans()):
        kw["l2"] = draw(level("l2", 16, 6))
    wcs = []
    for d in draw(st.lists(st.integers(1, 3), max_size=3, unique=True)):
        if "l2" in kw and draw(st.booleans()):
            wcs.append({"name": f"wc{d}", "distance": d, "in_tlb": "l2"})
        else:
            w = draw(st.integers(1, 10))
            wcs.append({"name": f"wc{d}", "distance": d, "entries": w * draw(st.integers(1, 4)),
                        "ways": w, "replacement": draw(st.sampled_from(sorted(REPLACEMENTS)))})
    kw["walk_caches"] = wcs
    kw["dcache"] = draw(st.sampled_from([None, {"size": 4096, "ways": 4}, {"size": 64 * 24, "ways": 3}]))
    kw["coalesce"] = draw(st.booleans())
    procs = []
    for asid in range(draw(st.integers(1, 3))):
        gname = draw(st.sampled_from(sorted(GEOMS)))
        unit = draw(st.sampled_from(GEOMS[gname]))
        procs.append((asid, gname, unit))
    ops = draw(st.lists(st.tuples(st.sampled_from(["run", "run", "run", "range", "range_leaf", "page", "mm"]),
                                  st.integers(0, 2), st.integers(0, 2**31)), min_size=1, max_size=8))
    return kw, procs, ops


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
@example(
    sc=({'l1d': {'entries': 1,
       'ways': 1,
       'sizes': ['4K'],
       'replacement': 'lru',
       'seed': 1},
      'l1i': {'entries': 4,
       'ways': 2,
       'sizes': ['64K', '32M'],
       'replacement': 'lru',
       'seed': 1},
      'l2': {'entries': 8,
       'ways': 2,
       'sizes': ['2M'],
       'replacement': 'lru',
       'seed': 1},
      'walk_caches': [{'name': 'wc1',
        'distance': 1,
        'entries': 1,
        'ways': 1,
        'replacement': 'lru'},
       {'name': 'wc2',
        'distance': 2,
        'entries': 1,
        'ways': 1,
        'replacement': 'lru'}],
      'dcache': None,
      'coalesce': False},
     [(0, 'arm64-16k-48', '16K'),
      (1, 'arm64-16k-48', '32M'),
      (2, 'arm64-16k-48', '16K')],
     [('run', 0, 0),
      ('run', 0, 0),
      ('run', 1, 1),
      ('run', 0, 0),
      ('run', 0, 0),
      ('run', 0, 0),
      ('run', 0, 0),
      ('run', 0, 0)]),
).via('discovered failure')
def test_differential_against_reference(sc):
    kw, procs, ops = sc
    t = TLB("custom", **kw)
    ref = RefTLB(t.config)
    span = 1 << 30                 # 512M blocks fit
    for asid, gname, unit in procs:
        t.map(asid, [(BASE, BASE + span, unit)], gname)
    rng = np.random.default_rng(len(ops))
    for op, who, x in ops:
        asid = procs[who % len(procs)][0]
        if op == "run":
            # a mix of locality: a few hot pages plus a random spread
            n = 150
            hot = BASE + (rng.integers(0, 40, n) * K4).astype(np.uint64)
            cold = BASE + rng.integers(0, span // 64, n).astype(np.uint64) * 64
            vas = np.where(rng.random(n) < 0.5, hot, cold).astype(np.uint64)
            side = int(x & 1)
            got = t.run(vas, asid=asid, side="di"[side]).tolist()
            want = run_ref(t, ref, vas, asid, side)
            assert got == want
        else:
            start = BASE + (x % span) // K4 * K4
            end = start + (x % 9 + 1) * K64
            if op == "range":
                t.flush_tlb_range(asid, start, end)
                ref.flush_range(asid, start, end, False)
            elif op == "range_leaf":
                t.flush_tlb_range(asid, start, end, last_level=True)
                ref.flush_range(asid, start, end, True)
            elif op == "page":
                t.flush_tlb_page(asid, start + 123)
                ref.flush_page(asid, start + 123)
            else:
                t.flush_tlb_mm(asid)
                ref.flush_mm(asid)
        t.check()
        for a in ref.ctr:
            assert t.core.counters[a].tolist() == ref.ctr[a], f"counters of asid {a}"


def test_reference_preset_a76_random_stream():
    """The real preset (1280 x 5 L2, walk cache inside the L2, data cache) against the
    reference on a stream with L2 conflict and capacity misses."""
    t = TLB("cortex-a76")
    ref = RefTLB(t.config)
    t.map(3, [(BASE, BASE + (256 << 20), "4K"), (BASE + (256 << 20), BASE + (512 << 20), "64K")])
    vas = BASE + np.random.default_rng(7).integers(0, (512 << 20) // K4, 3000).astype(np.uint64) * K4
    assert t.run(vas, asid=3).tolist() == run_ref(t, ref, vas, 3)
    assert t.core.counters[3].tolist() == ref.ctr[3]
    t.check()


# ------------------------------------------------------------------ analytic
@pytest.mark.parametrize("repl", ["lru", "plru"])
@pytest.mark.parametrize("n", [16, 47, 48, 49, 96])
def test_cyclic_sweep(n, repl):
    """Fully associative, E = 48: a cyclic sweep over N pages misses on every access when
    N > E and never after the first pass when N <= E (LRU); tree-PLRU never misses after
    warm-up when N <= E and misses at least N - E times a pass when N > E."""
    E = 48
    t = custom(E, repl=repl)
    t.map(0, [(BASE, BASE + 1024 * K4, "4K")])
    sweep = BASE + np.tile(np.arange(n, dtype=np.uint64) * K4, 20)
    r = t.run(sweep, asid=0)
    if n <= E:
        assert (r[:n] == 2).all() and (r[n:] == 0).all()
    elif repl == "lru":
        assert (r == 2).all()
    else:                                          # any policy: >= N - E misses a pass
        assert ((r[n:] == 2).reshape(19, n).sum(axis=1) >= n - E).all()
    t.check()


def test_widest_set_hash_index():
    """A fully associative array wider than 32768 ways: its hash index is capped at
    1 << 16 slots (a slot index is a u16), which still leaves free slots to end every
    probe. LRU over E entries: a sweep of E pages misses only on its first pass, one
    of E + 1 pages misses on every access; check() verifies the index."""
    E = 40000
    for n, want_hits in ((E, 2 * E), (E + 1, 0)):
        t = custom(E)
        assert t.core.array_info(0)["hash_bits"] == 16
        t.map(0, [(BASE, BASE + (E + 1) * K4, "4K")])
        r = t.run(BASE + np.tile(np.arange(n, dtype=np.uint64) * K4, 3), asid=0)
        assert (r == 0).sum() == want_hits
        t.check()


@pytest.mark.parametrize("n,e", [(256, 64), (1000, 48), (96, 64)])
def test_uniform_random_miss_rate(n, e):
    """Uniform random over N pages, fully associative LRU of E entries: the steady-state
    miss rate is 1 - E/N; tolerance 0.01 absolute over 200k accesses (binomial sd ~0.001)."""
    t = custom(e)
    t.map(0, [(BASE, BASE + n * K4, "4K")])
    vas = BASE + np.random.default_rng(n).integers(0, n, 200_000).astype(np.uint64) * K4
    r = t.run(vas, asid=0)
    rate = (r[10_000:] != 0).mean()
    assert abs(rate - (1 - e / n)) < 0.01, rate


@pytest.mark.parametrize("coalesce,per_folio", [(True, 1), (False, 16)])
def test_64k_emulated_uses_one_entry_per_64k_with_coalescing(coalesce, per_folio):
    """A 64K process on 4K tables ("emulated"): 64K folios mapped with PTE_CONT. Touching
    every 4K page of 3 folios in order needs 3 L1 entries with coalescing, 48 without."""
    t = custom(48, coalesce=coalesce)
    t.map(0, [(BASE, BASE + 16 * K64, "64K")], "arm64-4k-48")
    vas = BASE + np.arange(3 * 16, dtype=np.uint64) * K4
    r = t.run(vas, asid=0)
    e = t.core.entries(0)
    assert len(e["base"]) == 3 * per_folio
    assert set(e["size"].tolist()) == {K64 if coalesce else K4}
    assert (r == 2).sum() == 3 * per_folio
    # and a 64K native process (64K pages) needs one entry per page either way
    t.map(1, [(BASE, BASE + 16 * K64, "64K")], "arm64-64k-48")
    t.run(BASE + np.arange(3, dtype=np.uint64) * K64, asid=1)
    assert (t.core.entries(0)["asid"] == 1).sum() == 3


def test_splinter_to_sizes_a_level_holds():
    """A 2M block in an L1 that holds only 4K is cached as the 4K page accessed; the L2
    (holding 2M) keeps the block."""
    t = TLB("custom", l1d={"entries": 4, "sizes": ["4K"]}, l1i={"entries": 4},
            l2={"entries": 8, "ways": 2, "sizes": ["4K", "2M"]}, dcache=None)
    t.map(0, [(BASE, BASE + 2 * M2, "2M")])
    assert t.run(np.array([BASE + 5 * K4, BASE + 6 * K4], np.uint64), asid=0).tolist() == [2, 1]
    l1, l2 = t.core.entries(0), t.core.entries(2)
    assert sorted(l1["size"].tolist()) == [K4, K4] and l2["size"].tolist() == [M2]


def test_asids_do_not_hit_each_other():
    t = custom(16)
    t.map(0, [(BASE, BASE + M2, "4K")])
    t.map(1, [(BASE, BASE + M2, "4K", 1 << 40)])
    va = np.array([BASE], np.uint64)
    assert t.run(va, asid=0).tolist() == [2]
    assert t.run(va, asid=1).tolist() == [2]
    assert t.run(va, asid=0).tolist() == [0]
    assert t.core.lookup_one(1, BASE)[1] & ~0xfff == 1 << 40


def test_plru_non_power_of_two_ways_never_picks_missing_way():
    """5 ways: the tree of 8 leaves has 3 that do not exist; victims are always 0..4 and
    a cyclic sweep over 5 pages fits after warm-up."""
    t = custom(5, 5, repl="plru")
    t.map(0, [(BASE, BASE + 64 * K4, "4K")])
    r = t.run(BASE + np.tile(np.arange(5, dtype=np.uint64) * K4, 10), asid=0)
    assert (r[5:] == 0).all()
    t.run(BASE + np.arange(64, dtype=np.uint64) * K4, asid=0)
    ways = t.core.entries(0)["way"]
    assert ways.max() <= 4 and len(ways) == 5
    t.check()


def test_non_power_of_two_sets_1280x5():
    t = TLB("custom", l1d={"entries": 4}, l1i={"entries": 4},
            l2={"entries": 1280 * 3, "ways": 5}, dcache=None)     # 768 sets
    t.map(0, [(BASE, BASE + (64 << 20), "4K")])
    t.run(BASE + np.arange(5000, dtype=np.uint64) * K4, asid=0)
    e = t.core.entries(2)
    assert len(e["base"]) == 3840 and e["set"].max() == 767
    assert ((e["base"] >> np.uint64(12)) % np.uint64(768) == e["set"]).all()
    t.check()


# ------------------------------------------------------------------ walks
def test_walk_refs_per_level_and_walk_cache():
    """4-level 4K walk: 4 references; a PSC on the PMD entry (distance 1) turns the next
    walk in the same 2M into one reference; a leaf-only flush keeps the PSC entry, a
    full flush (tables freed) drops it."""
    t = TLB("custom", l1d={"entries": 1}, l1i={"entries": 1}, dcache=None,
            walk_caches=[{"name": "psc_pmd", "entries": 4, "distance": 1}])
    t.map(0, [(BASE, BASE + M2, "4K")])
    t.run(np.array([BASE], np.uint64), asid=0)
    t.run(np.array([BASE + K4], np.uint64), asid=0)
    s = t.stats(0)
    assert s["walk"]["refs_by_level"][:4] == [1, 1, 1, 2] and s["walk"]["refs"] == 5
    assert s["psc_pmd"] == {"lookups": 2, "hits": 1, "misses": 1}
    t.flush_tlb_range(0, BASE, BASE + M2, last_level=True)
    t.run(np.array([BASE + 2 * K4], np.uint64), asid=0)
    assert t.stats(0)["psc_pmd"]["hits"] == 2
    t.flush_tlb_range(0, BASE, BASE + M2, last_level=False)
    t.run(np.array([BASE + 3 * K4], np.uint64), asid=0)
    assert t.stats(0)["psc_pmd"]["hits"] == 2 and t.stats(0)["walk"]["refs"] == 10


def test_dcache_sees_walk_references():
    """Neighbouring pages share PTE cache lines (8 descriptors per 64-byte line)."""
    t = TLB("custom", l1d={"entries": 1}, l1i={"entries": 1}, dcache={"size": "4K", "ways": 4})
    t.map(0, [(BASE, BASE + M2, "4K")])
    t.run(BASE + np.arange(16, dtype=np.uint64) * K4, asid=0)
    dc = t.stats(0)["dcache"]
    assert dc["accesses"] == 64
    # PGD/PUD/PMD lines hit after the first walk; PTE lines miss once per 8 pages
    assert dc["misses"] == 3 + 2


def test_native_64k_walk_is_3_levels():
    t = custom(4)
    t.map(0, [(BASE, BASE + (64 << 20), "64K")], "arm64-64k-48")
    t.run(np.array([BASE], np.uint64), asid=0)
    assert t.stats(0)["walk"]["refs_by_level"] == [1, 1, 1, 0, 0]


# ------------------------------------------------------------------ flushes, stale hits
@pytest.mark.parametrize("cpu_kw", [dict(cpu="cortex-a76"), dict(cpu="cortex-a55")])
def test_no_hit_in_range_after_flush(cpu_kw):
    t = TLB(**cpu_kw)
    t.map(0, [(BASE, BASE + (16 << 20), "4K")])
    vas = BASE + np.arange(0, 4096, dtype=np.uint64) * K4
    t.run(vas, asid=0)
    lo, hi = BASE + (2 << 20), BASE + (3 << 20)
    t.flush_tlb_range(0, lo, hi)
    inside = BASE + np.arange(512, 768, dtype=np.uint64) * K4
    assert (t.run(inside, asid=0) == 2).all()
    t.flush_tlb_page(0, int(inside[7]) + 100)
    assert t.run(inside[7:8], asid=0).tolist() == [2]
    t.flush_tlb_mm(0)
    assert (t.run(vas[:64], asid=0) == 2).all()
    t.check()


def test_stale_hit_caught_when_a_flush_is_missing():
    """munmap + mmap of other memory without flush_tlb_range: check mode reports the
    stale hit; with the flush Linux would issue, none."""
    for flush in (False, True):
        t = custom(16)
        t.map(0, [(BASE, BASE + M2, "4K")])
        vas = BASE + np.arange(8, dtype=np.uint64) * K4
        t.run(vas, asid=0, check="raise")
        t.map(0, [(BASE, BASE + M2, "4K", 1 << 42)])        # same VAs, new frames
        if flush:
            t.flush_tlb_range(0, BASE, BASE + M2)
            t.run(vas, asid=0, check="raise")
            assert t.stats(0)["check"]["stale_hits"] == 0
        else:
            with pytest.raises(StaleTLBHit, match="index 0"):
                t.run(vas, asid=0, check="raise")
            t.run(vas, asid=0, check=True)
            assert t.stats(0)["check"]["stale_hits"] == 8 + 8


def test_stale_block_after_split_without_flush():
    """A THP split to 4K pages (same frames): a 2M entry left behind is stale (its size
    exceeds the mapping's unit); __split_huge_pmd flushes it."""
    t = TLB("custom", l1d={"entries": 8}, l1i={"entries": 8}, dcache=None)
    t.map(0, [(BASE, BASE + M2, "2M")])
    t.run(np.array([BASE], np.uint64), asid=0)
    t.map(0, [(BASE, BASE + M2, "4K")])
    t.run(np.array([BASE + K4], np.uint64), asid=0, check=True)
    assert t.stats(0)["check"]["stale_hits"] == 1
    t.flush_tlb_range(0, BASE, BASE + M2)
    t.run(np.array([BASE + K4], np.uint64), asid=0, check="raise")


def test_linux_flush_range_escalates_to_mm():
    t = custom(64)
    t.map(0, [(BASE, BASE + (8 << 20), "4K")])
    t.run(BASE + np.arange(64, dtype=np.uint64) * K4, asid=0)
    assert linux_flush_range(t, 0, BASE, BASE + 511 * K4) == "range"
    assert linux_flush_range(t, 0, BASE, BASE + 512 * K4) == "mm"
    assert t.stats(0)["flush"]["mm"] == 1 and t.stats(0)["flush"]["range"] == 1


# ------------------------------------------------------------------ presets, stats
def test_presets_listed_and_cited():
    assert set(ppsize.CPU_PRESETS) >= {"cortex-a76", "cortex-a55", "amd-zen5", "custom"}
    from ppsize.cpu_presets import PRESETS
    for name, p in PRESETS.items():
        for key in ("l1i", "l1d", "l2", "l2i", "l2d"):
            if key in p:
                assert p[key]["cite"], (name, key)
    t = TLB("cortex-a76")
    info = t.core.array_info(2)
    assert (info["sets"], info["ways"]) == (256, 5)
    assert TLB("amd-zen5", l2d={"ways": 8}, l2i={"ways": 8}).level_names == ["l1d", "l1i", "l2d", "l2i"]


def test_unknown_preset_lists_choices():
    with pytest.raises(ValueError, match="cortex-a76.*custom"):
        TLB("cortex-a99")


def test_stats_format_and_cycles():
    t = TLB("cortex-a76")
    t.map(0, [(BASE, BASE + M2, "4K")])
    t.run(BASE + np.arange(100, dtype=np.uint64) * K4, asid=0)
    s = t.stats(0)
    assert set(s) >= {"l1d", "l1i", "l2", "walk", "dcache", "flush", "check"}
    assert s["l1d"]["accesses"] == 100 and s["l1d"]["misses"] == 100
    assert s["l2"]["accesses"] == 100 and s["walk"]["walks"] == 100
    assert t.stats() == s                      # one ASID: the CPU's sum is the same
    cyc, missing = estimate_cycles(s, t.latencies)    # l1_hit 1, l2_hit 3, walk_ref 9
    assert missing is None and cyc == pytest.approx((100 * 1 + 100 * 3 + s["walk"]["refs"] * 9) / 100)
    lat = {k: v for k, v in t.latencies.items() if k != "walk_ref"}
    cyc, missing = estimate_cycles(s, lat)
    assert cyc is None and missing == ["dcache_hit", "dcache_miss"]
    cyc, missing = estimate_cycles(s, dict(lat, dcache_hit=4, dcache_miss=100))
    dc = s["dcache"]
    assert cyc == pytest.approx((100 * 1 + 100 * 3 + dc["hits"] * 4 + dc["misses"] * 100) / 100)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw,match", [
    (dict(l1d={"entries": 48, "ways": 5}), "48 is not a multiple of ways 5"),
    (dict(l1d={"entries": 0}), "entries must be a positive integer, got 0"),
    (dict(l1d={"entries": 8, "ways": 0}), "ways must be a positive integer, got 0"),
    (dict(l1d={"entries": 8, "replacement": "fifo"}), "unknown replacement 'fifo'"),
    (dict(l1d={"entries": 8, "sizes": ["3K"]}), "'3K' is not a power of two"),
    (dict(l1d={"entries": 8, "sizes": [0]}), "0 is not a power of two"),
    (dict(dcache={"size": 0, "ways": 4}), "dcache size 0"),
    (dict(walk_caches=[{"entries": 4, "distance": 7}]), "distance must be 1..4"),
    (dict(l3={"entries": 4}), "unknown TLB keyword"),
])
def test_bad_config(kw, match):
    base = {"l1d": {"entries": 8}, "l1i": {"entries": 8}}
    base.update(kw)
    with pytest.raises(ValueError, match=match):
        TLB("custom", **base)


def test_bad_maps_and_addresses():
    t = custom(8)
    with pytest.raises(ValueError, match="overlap"):
        t.map(0, [(BASE, BASE + M2, "4K"), (BASE + K4 * 4, BASE + 2 * M2, "4K")])
    with pytest.raises(ValueError, match="not aligned to its unit 2M"):
        t.map(0, [(BASE + K4, BASE + M2 + K4, "2M")])
    with pytest.raises(ValueError, match="unit 16K is not a way arm64-4k-48 maps memory"):
        t.map(0, [(BASE, BASE + M2, "16K")])
    with pytest.raises(ValueError, match="unit 0"):
        t.map(0, [(BASE, BASE + M2, 0)])
    t.map(0, [(BASE, BASE + M2, "4K")])
    with pytest.raises(ValueError, match=r"address 0x40200000 \(index 1\) is not in asid 0"):
        t.run(np.array([BASE, BASE + M2], np.uint64), asid=0)
    with pytest.raises(ValueError, match="asid array has shape"):
        t.run(np.array([BASE], np.uint64), asid=np.zeros(2, int))
    with pytest.raises(ValueError, match="no page-size map"):
        t.run(np.array([BASE], np.uint64), asid=5)
    with pytest.raises(ValueError, match="asid 99 out of range"):
        t.flush_tlb_mm(99)
    with pytest.raises(ValueError, match="l2 ways must be a positive integer, got None"):
        TLB("cortex-a55", l2={"entries": 1024, "ways": None})


def test_zen5_l2_associativity_is_a_listed_assumption():
    t = TLB("amd-zen5")
    assert [a.split(":")[0] for a in t.assumptions] == ["l2d", "l2i"]
    assert "fully associative" in t.assumptions[0]
    assert t.core.array_info(2)["ways"] == 4096          # l2d: one set of 4096 ways
    assert TLB("amd-zen5", l2d={"ways": 8}, l2i={"ways": 8}).assumptions == []
