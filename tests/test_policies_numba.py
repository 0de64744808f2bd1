"""User order hooks (ppsize.hooks): the C structs and the dtypes agree, numba policies
and plain Python ones choose the same folio orders as the pure-Python reference
(tests/ref_anon_order.py) under random settings, VMAs and returned orders, bad returns
are clamped/refused, counted and warned about with the address, wrong signatures are
refused when set, and the readahead hook's order is bounded by the mapping's min/max."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ppsize
from ppsize import hooks
from ppsize._core.kcore import hook_struct_layout
from ref_anon_order import fault_order

numba = pytest.importorskip("numba")
K4 = 4096
M = 1 << 20


def test_struct_layout_matches_dtypes():
    layout = hook_struct_layout()
    for kind, (_, dtype, cname) in hooks.HOOK_KINDS.items():
        size, offsets = layout[cname]
        assert dtype.itemsize == size
        assert set(offsets) == set(dtype.names)
        for name, off in offsets.items():
            assert dtype.fields[name][1] == off, (cname, name)


def _pages(a, n, step=K4):
    return np.arange(a, a + n * step, step, dtype=np.uint64)


@ppsize.anon_order_policy
def order4(info):
    if info.allowed >> 4 & 1:
        return 4
    return info.process_order


def test_numba_policy_picks_the_order():
    k = ppsize.Kernel("4K", "64M", thp="never", mthp={"16K": "always", "64K": "always"},
                      anon_order_policy=order4)
    assert k.anon_order_policy is order4 and order4.address
    p = k.spawn()
    a = p.mmap(4 * M)
    p.access(_pages(a, 1024), write=True)
    # Linux would also pick 64K here; make the policy pick 16K to see it matter
    assert k.mthp_stats() == {"64K": {"anon_fault_alloc": 64, "anon_fault_fallback": 0}}

    @ppsize.anon_order_policy
    def order2(info):
        return 2

    k.anon_order_policy = order2
    b = p.mmap(M)
    p.access(_pages(b, 256), write=True)
    assert k.mthp_stats()["16K"]["anon_fault_alloc"] == 64
    assert p.status()["minflt"] == 64 + 64
    k.check()


def test_process_order_policy_gives_process_pages():
    @ppsize.anon_order_policy
    def smallest(info):
        return info.process_order

    k = ppsize.Kernel("4K", "64M", mthp={"64K": "always"}, anon_order_policy=smallest)
    p = k.spawn(page_size="16K")
    a = p.mmap(2 * M)
    p.access(_pages(a, 128, 16384), write=True)
    assert p.status()["minflt"] == 128          # one 16K folio per fault, no THP, no mTHP
    assert k.mthp_stats() == {"16K": {"anon_fault_alloc": 128, "anon_fault_fallback": 0}}
    assert k.meminfo()["AnonHugePages"] == 0
    k.check()


def test_pmd_order_can_be_declined_and_chosen():
    @ppsize.anon_order_policy
    def no_thp(info):
        o = info.default_order
        if o == info.pmd_order:
            o -= 1
            while o > info.process_order and not (info.allowed >> o & 1):
                o -= 1
        return o

    k = ppsize.Kernel("4K", "64M", thp="always", anon_order_policy=no_thp)
    p = k.spawn()
    a = p.mmap(8 * M)
    p.access(_pages(a, 2048), write=True)
    assert k.meminfo()["AnonHugePages"] == 0
    assert p.status()["minflt"] == 2048
    k.anon_order_policy = None                   # the built-in policy: THPs again
    b = p.mmap(8 * M)
    p.access(_pages(b, 2048), write=True)
    assert k.meminfo()["AnonHugePages"] >= 3 * 2048
    k.check()


@ppsize.anon_order_policy
def scrambled(info):
    # a deterministic "random" order from the address: -2 .. 17, so every bad kind occurs
    x = np.int64(info.address >> 12)
    return (x * 7919 + x // 7) % 20 - 2


def _scrambled_py(va):
    x = va >> 12
    return (x * 7919 + x // 7) % 20 - 2


def folio_order_at(k, p, va):
    """The order of the folio mapping va."""
    pa = int(p.mm.pt.translate(np.array([va], np.uint64)).pa[0])
    return int(k.core.folios.as_numpy()["order"][k.core.folios.head_of(np.array([pa >> 12]))[0]])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=st.sampled_from([K4, 4 * K4, 16 * K4]),
       enabled=st.lists(st.sampled_from(["16K", "32K", "64K", "128K", "256K", "512K", "1M", "2M"]),
                        max_size=6, unique=True),
       vma_pages=st.integers(1, 1500), off_pages=st.integers(0, 600),
       touches=st.lists(st.integers(0, 1499), min_size=1, max_size=40),
       python=st.booleans())
def test_fault_orders_match_reference(page, enabled, vma_pages, off_pages, touches, python):
    """Random settings, VMA placement and faults; the policy's order (bad ones too)
    clamped and tried with alloc_anon_folio's fallback as the reference does."""
    k = ppsize.Kernel("4K", "64M", thp="never", mthp={s: "always" for s in enabled})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k.anon_order_policy = scrambled.fn if python else scrambled
    p = k.spawn(page_size=page)
    step = page // K4
    porder = step.bit_length() - 1
    hole = p.mmap(4 * M)                         # a 2M-aligned area inside it
    base = ((hole + 2 * M - 1) & ~(2 * M - 1)) + (off_pages // step) * page
    length = max(1, vma_pages // step) * page
    p.munmap(hole, 4 * M)
    a = p.mmap(length, addr=base, fixed=True)
    mapped = set()
    settings_mask = k.core.thp_always
    bad_seen = 0
    for t in touches:
        va = a + (t % (length // K4)) * K4
        if (va >> 12) in mapped:
            continue
        want, what = fault_order(va, a, a + length, settings_mask, porder, 9, 12,
                                 lambda s, e: any(x in mapped for x in range(s >> 12, e >> 12)),
                                 _scrambled_py(va), 10)
        bad_seen += what is not None
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert p.access(np.array([va], np.uint64), write=True)[0] == ppsize.Outcome.FAULT
        assert folio_order_at(k, p, va) == want, (hex(va), want)
        assert (len(w) == 1) == (what is not None)
        if what is not None:
            assert issubclass(w[0].category, hooks.PolicyOrderWarning)
            assert f"{va:#x}" in str(w[0].message)
        size = 1 << (want + 12)
        s = va & ~(size - 1)
        mapped.update(range(s >> 12, (s + size) >> 12))
    stats = k.policy_stats()["anon"]
    assert stats["refused"] + stats["raised"] + stats["lowered"] == bad_seen
    k.check()


def test_bad_orders_counted_and_reported_once_per_batch():
    @ppsize.anon_order_policy
    def negative(info):
        return -3

    k = ppsize.Kernel("4K", "64M", mthp={"64K": "always"}, thp="never", anon_order_policy=negative)
    p = k.spawn(page_size="16K")
    a = p.mmap(M)
    with pytest.warns(hooks.PolicyOrderWarning, match=rf"16 order\(s\).*address {a:#x}: order -3 .*refused"):
        p.access(_pages(a, 64, 16384), write=True)
    # refused: the built-in order (64K) used
    assert k.mthp_stats()["64K"]["anon_fault_alloc"] == 16
    assert k.policy_stats()["anon"]["refused"] == 16

    @ppsize.anon_order_policy
    def too_small(info):
        return 0

    k.anon_order_policy = too_small
    b = p.mmap(M)
    with pytest.warns(hooks.PolicyOrderWarning, match=r"order 0 \(below the process"):
        p.access(_pages(b, 64, 16384), write=True)
    assert k.mthp_stats()["16K"]["anon_fault_alloc"] == 64       # raised to the 16K page
    assert k.policy_stats()["anon"]["raised"] == 64
    k.check()


def test_wrong_signatures_refused_when_set():
    k = ppsize.Kernel("4K", "16M")
    with pytest.raises(TypeError, match=r"expected int32_t hook\(const anon_fault_info \*info\)"):
        k.anon_order_policy = lambda a, b: 0
    c = numba.cfunc("int64(int64)")(lambda x: x)
    with pytest.raises(TypeError, match=r"cfunc of signature .*expected int32_t hook"):
        k.anon_order_policy = c
    with pytest.raises(TypeError, match="not callable"):
        k.anon_order_policy = 4
    rpol = ppsize.readahead_order_policy(lambda info: info.min_order)
    with pytest.raises(TypeError, match="readahead order policy, not a anon one"):
        k.anon_order_policy = rpol
    with pytest.raises(TypeError, match="numba could not compile"):
        ppsize.anon_order_policy(lambda info: info.no_such_field)
    assert k.anon_order_policy is None


def test_raw_cfunc_of_the_right_signature_works():
    sig = hooks._c_signature("anon")

    @numba.cfunc(sig)
    def raw(p):
        return numba.carray(p, 1)[0].process_order

    k = ppsize.Kernel("4K", "16M", mthp={"64K": "always"}, thp="never", anon_order_policy=raw)
    p = k.spawn()
    a = p.mmap(M)
    p.access(_pages(a, 256), write=True)
    assert p.status()["minflt"] == 256 and "64K" not in k.mthp_stats()


def test_python_policy_slow_path_warns_once_and_matches_numba(monkeypatch):
    monkeypatch.setattr(hooks, "_slow_warned", False)

    def plain(info):
        return 3 if info.allowed >> 3 & 1 else info.default_order

    results = []
    for i, pol in enumerate([plain, ppsize.anon_order_policy(plain), plain]):
        k = ppsize.Kernel("4K", "64M", mthp={"32K": "always", "64K": "always"}, thp="never")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            k.anon_order_policy = pol
        assert len([x for x in w if issubclass(x.category, hooks.SlowPolicyWarning)]) == (i == 0)
        p = k.spawn()
        a = p.mmap(2 * M + 3 * K4 * 8)
        p.access(_pages(a + K4 * 8, 300), write=True)
        results.append((k.mthp_stats(), p.status()["minflt"]))
        k.check()
    assert results[0] == results[1] == results[2]
    assert "32K" in results[0][0]


def test_python_policy_exception_after_the_batch():
    def broken(info):
        raise KeyError("no such region")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = ppsize.Kernel("4K", "16M", mthp={"64K": "always"}, thp="never", anon_order_policy=broken)
    p = k.spawn()
    a = p.mmap(M)
    with pytest.raises(hooks.PolicyError, match="KeyError") as e:
        p.access(_pages(a, 256), write=True)
    assert isinstance(e.value.__cause__, KeyError)
    assert k.mthp_stats()["64K"]["anon_fault_alloc"] == 16        # built-in order used
    assert k.policy_stats()["anon"]["error"] == 16
    k.check()
    k.anon_order_policy = None
    b = p.mmap(M)
    p.access(_pages(b, 256), write=True)                          # no stale error


def test_info_fields_seen_by_the_policy():
    seen = []

    def record(info):
        seen.append({n: getattr(info, n) for n in hooks.ANON_FAULT_DTYPE.names})
        assert all(type(v) is int for k, v in seen[-1].items() if k != "nr_free")
        return info.default_order

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = ppsize.Kernel("4K", "64M", mthp={"64K": "always"}, thp="never", anon_order_policy=record)
    p = k.spawn(page_size="16K")
    a = p.mmap(M)
    p.madvise(a, M, "hugepage")
    p.access(np.array([a + 5 * 16384, a + 5 * 16384 + 65536], np.uint64), write=True)
    f0, f1 = seen
    assert (f0["address"], f0["vma_start"], f0["vma_end"]) == (a + 5 * 16384, a, a + M)
    assert f0["allowed"] == (1 << 2) | (1 << 4) and f0["default_order"] == 4
    assert f0["process_order"] == 2 and f0["pmd_order"] == 9 and f0["max_order"] == 10
    assert f0["write"] == 1 and f0["mm_faults"] == 0 and f1["mm_faults"] == 1
    assert f0["mm_rss_anon"] == 0 and f1["mm_rss_anon"] == 16
    assert f0["pte_present"] == 0 and f1["pte_present"] == 16 and f0["pte_span"] == 2 * M
    assert f0["vma_flags"] & 0x20000000                          # VM_HUGEPAGE
    assert sum(n << o for o, n in enumerate(f0["nr_free"])) - \
        sum(n << o for o, n in enumerate(f1["nr_free"])) == 17   # a 64K folio and its PTE table


# ------------------------------------------------------------------ readahead
def _ra_orders(k, f):
    return sorted({o for _, o in k.pagecache.layout(f)})


def test_readahead_policy_orders_bounded_by_the_mapping():
    def run(policy, min_order=None):
        k = ppsize.Kernel("4K", "256M", readahead_order_policy=policy)
        f = k.create_file("/data", 8 * M)
        if min_order:
            k.file_min_order(f, min_order)
        p = k.spawn()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            p.read(f)
        k.check()
        return k, f, [x for x in w if issubclass(x.category, hooks.PolicyOrderWarning)]

    k, f, w = run(None)
    builtin = _ra_orders(k, f)
    assert max(builtin) >= 2 and not w
    k, f, w = run(ppsize.readahead_order_policy(lambda info: 0))
    assert _ra_orders(k, f) == [0] and not w
    k, f, w = run(ppsize.readahead_order_policy(lambda info: 0), min_order=2)
    assert min(_ra_orders(k, f)) == 2 and w and "below the process (min) order" in str(w[0].message)
    assert k.policy_stats()["readahead"]["raised"] > 0
    k, f, w = run(ppsize.readahead_order_policy(lambda info: info.max_order + 1))
    assert w and "above the mapping's max order" in str(w[0].message)
    assert k.policy_stats()["readahead"]["lowered_to_max"] > 0
    k, f, w = run(ppsize.readahead_order_policy(lambda info: 99))
    assert _ra_orders(k, f) == builtin and "refused" in str(w[0].message)


def test_readahead_policy_sees_the_window():
    seen = []

    def record(info):
        seen.append((int(info.index), int(info.size), int(info.default_order), int(info.min_order),
                     int(info.max_order), int(info.i_size), int(info.file)))
        return info.default_order

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = ppsize.Kernel("4K", "64M", readahead_order_policy=record)
    f = k.create_file("/x", 4 * M)
    p = k.spawn()
    p.read(f, 0, 4 * M)
    assert seen and seen[0][0] == 0 and seen[0][5] == 4 * M and seen[0][3] == 0
    assert all(s[4] == k.pagecache.info(f)["max_order"] for s in seen)
    assert all(0 <= s[2] <= s[4] for s in seen)


# ------------------------------------------------------------------ ppsize.policies
from ppsize import policies  # noqa: E402

ALL_MTHP = {s: "always" for s in ("16K", "32K", "64K", "128K", "256K", "512K", "1M")}


def _layout(k, p, a, length):
    """Folio order of every kernel page of [a, a + length) (-1: not mapped)."""
    vas = np.arange(a, a + length, K4, dtype=np.uint64)
    t = p.mm.pt.translate(vas)
    orders = k.core.folios.as_numpy()["order"]
    ok = t.status == 0
    out = np.full(vas.size, -1, np.int64)
    out[ok] = orders[k.core.folios.head_of((t.pa[ok] >> 12).astype(np.int64))]
    return out


def _run_policy(policy, page="4K", fragment=False, seed=1):
    k = ppsize.Kernel("4K", "64M", thp="always", mthp=ALL_MTHP)
    if fragment:
        k.fragment(seed=3, steps=20000, fill=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hooks.SlowPolicyWarning)
        k.anon_order_policy = policy
    p = k.spawn(page_size=page)
    rng = np.random.default_rng(seed)
    areas = []
    for length in (4 * M, 3 * M + 64 * 1024, 256 * 1024):
        a = p.mmap(length)
        areas.append((a, length))
        n = length // p.page_size
        order = np.concatenate([np.arange(n // 2), rng.permutation(np.arange(n // 2, n))])
        p.access(a + order.astype(np.uint64) * p.page_size, write=True)
    k.check()
    return k, p, [_layout(k, p, a, n) for a, n in areas]


POLICIES = {"fixed(4)": lambda: policies.fixed(4), "fixed(9)": lambda: policies.fixed(9),
            "fixed(0)": lambda: policies.fixed(0),
            "grow(8)": lambda: policies.grow_after_faults(8),
            "avoid(32)": lambda: policies.avoid_high_orders(32)}


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("page,fragment", [("4K", False), ("16K", True)])
def test_policies_numba_equals_python(name, page, fragment):
    """The compiled policy and the same function run in Python (the slow path) lay
    out the same folios; no returned order needed clamping."""
    pol = POLICIES[name]()
    assert pol.address, "compiled with numba"
    k1, _, lay1 = _run_policy(pol, page, fragment)
    k2, _, lay2 = _run_policy(pol.fn, page, fragment)
    for x, y in zip(lay1, lay2):
        np.testing.assert_array_equal(x, y)
    assert k1.mthp_stats() == k2.mthp_stats()
    assert not any(k1.policy_stats()["anon"].values())
    porder = {"4K": 0, "16K": 2}[page]
    assert all((x[x >= 0] >= porder).all() for x in lay1)


def test_fixed_orders():
    _, _, lay = _run_policy(policies.fixed(4))
    assert set(np.unique(lay[0]).tolist()) == {4}
    _, _, lay = _run_policy(policies.fixed(0))
    assert set(np.unique(np.concatenate(lay)).tolist()) == {0}
    k, _, lay = _run_policy(policies.fixed(9))
    assert 9 in lay[0] and k.meminfo()["AnonHugePages"] > 0
    _, _, lay = _run_policy(policies.fixed(2), page="16K")
    assert set(np.unique(np.concatenate(lay)).tolist()) == {2}
    with pytest.raises(ValueError, match="order.*16"):
        policies.fixed(16)


def test_grow_after_faults_grows_in_dense_regions():
    _, _, lay = _run_policy(policies.grow_after_faults(8))
    region = lay[0][:512]                     # the first 2M: faulted in address order
    assert region[0] == 0 and region[511] >= 4
    heads = region[np.r_[0, np.flatnonzero(np.diff(np.arange(512) >> np.maximum(region, 0)))]]
    assert (np.diff(region) >= 0).all(), "orders only grow along a sequential fill"
    assert len(np.unique(heads)) >= 3
    with pytest.raises(ValueError, match="threshold"):
        policies.grow_after_faults(0)


def test_avoid_high_orders_keeps_high_blocks():
    builtin, _, lb = _run_policy(None, fragment=True)
    k, _, la = _run_policy(policies.avoid_high_orders(1 << 20), fragment=True)
    assert set(np.unique(np.concatenate(la)).tolist()) == {0}      # nothing that rich
    k2, _, lc = _run_policy(policies.avoid_high_orders(8), fragment=True)
    high = lambda lay: int((np.concatenate(lay) >= 4).sum())
    assert high(lc) <= high(lb)
    assert k2.core.buddy.nr_free_pages >= 0
    with pytest.raises(ValueError, match="reserve"):
        policies.avoid_high_orders(-1)


def test_costly_fields_filled_only_when_named():
    assert policies.fixed(3).fields == frozenset()
    assert policies.grow_after_faults().fields == {"pte_present"}
    assert policies.avoid_high_orders().fields == {"nr_free"}

    @numba.njit
    def helper_jit(info):
        return info.nr_free[10]

    def via_helper(info):          # reads nr_free through a helper the decorator cannot see
        return 4 if helper_jit(info) > 0 else info.process_order

    seen = {}
    for fields in (None, ("nr_free",)):
        pol = ppsize.anon_order_policy(via_helper, fields=fields)
        k = ppsize.Kernel("4K", "64M", mthp={"64K": "always"}, thp="never", anon_order_policy=pol)
        p = k.spawn()
        a = p.mmap(M)
        p.access(_pages(a, 256), write=True)
        seen[fields] = k.mthp_stats().get("64K", {}).get("anon_fault_alloc", 0)
    assert seen == {None: 0, ("nr_free",): 16}     # not filled (zeros) unless forced
    with pytest.raises(ValueError, match="fields"):
        ppsize.anon_order_policy(via_helper, fields=("address",))


def test_hook_not_called_without_a_choice():
    calls = []

    def counting(info):
        calls.append(info.allowed)
        return -5                              # would be refused and reported if asked

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hooks.SlowPolicyWarning)
        k = ppsize.Kernel("4K", "64M", thp="never", anon_order_policy=counting)
    p = k.spawn()
    a = p.mmap(M)
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # no PolicyOrderWarning either
        p.access(_pages(a, 256), write=True)
    assert calls == [] and p.status()["minflt"] == 256
    k.set_thp(mthp={"16K": "always"})
    b = p.mmap(M)
    with pytest.warns(hooks.PolicyOrderWarning):
        p.access(_pages(b, 256), write=True)
    assert len(calls) == 64 and set(calls) == {1 | 1 << 2}
    k.check()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=st.sampled_from([K4, 4 * K4, 16 * K4]), native=st.booleans(),
       thp=st.sampled_from(["always", "never"]),
       ops=st.lists(st.tuples(st.sampled_from(["touch", "read", "dontneed"]),
                              st.integers(0, 1023), st.integers(1, 64)), min_size=1, max_size=25))
def test_region_and_vma_counters_match_a_recount(page, native, thp, ops):
    """pte_present and vma_present as the policy sees them equal the mapped pages
    recounted from the page table (mapped_stats) just before the fault."""
    seen = []

    def record(info):
        seen.append((info.address, info.pte_present, info.vma_present, info.pte_span,
                     info.vma_start, info.vma_end))
        return info.default_order

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hooks.SlowPolicyWarning)
        k = ppsize.Kernel("4K", "64M", thp=thp, mthp={"64K": "always", "16K": "always"},
                          anon_order_policy=record)
    p = k.spawn(page_size=page, pgtable="native" if native and page > K4 else "emulated")
    length = 4 * M
    a = p.mmap(length)
    other = p.mmap(M)                          # a neighbour whose pages must not count
    p.access(np.array([other], np.uint64), write=True)
    for op, i, n in ops:
        va = a + (i * K4 // page) * page
        n = min(n, (a + length - va) // page)
        if op == "dontneed":
            p.madvise(va, n * page, "dontneed")
            continue
        for j in range(n):
            x = va + j * page
            before = len(seen)
            s, e = next((s, e) for s, e, *_ in p.aspace.vmas if s <= x < e)
            anon, _pmd, zero, file, _pss = p.mm.mapped_stats(s, e)
            span = p.pt_geometry.pmd_size
            r0 = x & ~(span - 1)
            ra, _pmd, rz, rf, _pss = p.mm.mapped_stats(r0, r0 + span)
            p.access(np.array([x], np.uint64), write=op == "touch")
            if len(seen) > before:
                addr, pte, vmap, pspan, vs, ve = seen[-1]
                assert (addr, vs, ve, pspan) == (x, s, e, span) and vmap == anon + zero + file
                assert pte == ra + rz + rf
    k.check()


def test_vma_faults_counts_split_and_merge():
    seen = []

    def record(info):
        seen.append((info.vma_start, info.vma_faults))
        return info.default_order

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hooks.SlowPolicyWarning)
        k = ppsize.Kernel("4K", "64M", thp="never", mthp={"16K": "always"}, anon_order_policy=record)
    p = k.spawn()
    a = p.mmap(M)
    p.access(_pages(a, 8, 16384), write=True)                 # 8 faults of 16K folios
    assert [f for _, f in seen] == list(range(8))
    p.mprotect(a + M // 2, M // 2, "r")                       # split: both parts keep 8
    vi = p.aspace.vmas.lookup(a + M // 2)
    assert p.aspace.vmas.faults_of(vi) == 8 and p.aspace.vmas.faults_of(vi - 1) == 8
    p.access(np.array([a + 8 * 16384], np.uint64), write=True)
    assert seen[-1] == (a, 8)
    p.mprotect(a + M // 2, M // 2, "rw")                      # merged back: 9 + 8
    assert len(p.aspace.vmas) == 1 and p.aspace.vmas.faults_of(0) == 17
    b = p.mmap(M)                                             # a new VMA starts at 0
    p.access(np.array([b], np.uint64), write=True)
    assert seen[-1][1] == (17 if b + M == a else 0)           # (merged with a's VMA if adjacent)
    k.check()


def test_readme_example_policy_saves_memory():
    """examples/numba_policy.py (the README's numba section) prints what it claims."""
    import os
    import re
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "examples", "numba_policy.py")],
                         capture_output=True, text=True, cwd=root, timeout=600,
                         env=dict(os.environ, PYTHONPATH=root))
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"RssAnon\s+(\d+) MiB,\s+([\d,]+) faults", out.stdout)
    (rss_linux, f_linux), (rss_policy, f_policy) = [(int(r), int(f.replace(",", ""))) for r, f in rows]
    assert rss_policy < rss_linux // 2 and f_policy > f_linux
