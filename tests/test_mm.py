"""The anonymous fault engine (ppsize.Kernel / Process, _core.mm): random syscall and
access sequences against the pure-Python reference (tests/ref_mm.py), directed tests
of each rule with numbers from the geometry, bad input, and strict xfails for engine
bugs and deviations from Linux found on the way."""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ppsize
from ppsize import Outcome
from ppsize.geometry import default_geometry
from ppsize.units import fmt_size, parse_size
from ref_mm import RefKernel

K4, K16, K64 = 4 << 10, 16 << 10, 64 << 10
M = 1 << 20
O = Outcome


# ------------------------------------------------------------------ harness
class Twin:
    """An engine kernel and a reference kernel driven with the same calls."""

    def __init__(self, page_size="4K", memory="8M", **kw):
        self.k = ppsize.Kernel(page_size, memory, **kw)
        self.r = RefKernel(page_size, memory, **kw)
        self.procs = []            # [(Process, RefProcess)]
        self.log = []              # the calls so far, for failure messages

    def set_thp(self, *a, **kw):
        self.log.append(f"set_thp{a}{kw}")
        self.k.set_thp(*a, **kw)
        self.r.set_thp(*a, **kw)

    @staticmethod
    def _both(f, g):
        """f() and g(): both succeed (their results) or both fail with the same errno
        (no memory for page tables: ENOMEM), then OSError."""
        res = []
        for fn in (f, g):
            try:
                res.append(("ok", fn()))
            except OSError as e:
                res.append(("err", e.errno))
        assert [r[0] if r[0] == "ok" else r for r in res] == [res[0][0] if res[0][0] == "ok" else res[0]] * 2, res
        if res[0][0] == "err":
            raise OSError(res[0][1], "both failed")
        return res[0][1], res[1][1]

    def spawn(self, page_size=None, pgtable="emulated"):
        self.log.append(f"spawn({page_size!r}, {pgtable!r})")
        pair = self._both(lambda: self.k.spawn(page_size, pgtable), lambda: self.r.spawn(page_size, pgtable))
        self.procs.append(pair)
        return pair

    def call(self, i, name, *args, **kw):
        """Run a syscall on both; results or errors must agree. Returns the result."""
        p, q = self.procs[i]
        self.log.append(f"[{i}] {name}{tuple(hex(a) if isinstance(a, int) else a for a in args)}{kw or ''}")
        res = []
        for obj in (p, q):
            try:
                res.append(("ok", getattr(obj, name)(*args, **kw)))
            except OSError as e:
                res.append(("err", type(e), e.errno))
            except (ValueError, TypeError) as e:
                res.append(("err", type(e), None))
        assert res[0] == res[1], f"{name}{args}: engine {res[0]} reference {res[1]}"
        return res[0][1] if res[0][0] == "ok" else None

    def access(self, i, vas, write=False):
        p, q = self.procs[i]
        self.log.append(f"[{i}] access({[hex(int(v)) for v in vas]}, {write!r})")
        got = p.access(np.asarray(vas, dtype=np.uint64), write)
        n = len(vas)
        writes = [write] * n if isinstance(write, bool) else list(np.asarray(write))
        want = q.access([int(v) for v in vas], writes)
        assert got.tolist() == want, f"access {[hex(int(v)) for v in vas]} w={writes}: engine " \
                                     f"{got.tolist()} reference {want}"
        return got

    def fork(self, i):
        self.log.append(f"[{i}] fork")
        p, q = self.procs[i]
        pair = self._both(p.fork, q.fork)
        self.procs.append(pair)
        return pair

    def exec(self, i, page_size):
        self.log.append(f"[{i}] exec({page_size!r})")
        p, q = self.procs[i]
        self._both(lambda: p.exec(page_size), lambda: q.exec(page_size))

    def exit(self, i):
        self.log.append(f"[{i}] exit")
        p, q = self.procs.pop(i)
        p.exit()
        q.exit()

    def compare(self, check=True):
        k, r = self.k, self.r
        assert k.meminfo() == r.meminfo()
        assert k.mthp_stats() == r.mthp_stats()
        assert k.oom_count == r.nr_oom
        f = k.core.folios.as_numpy()
        want = np.zeros(r.nr_pages, dtype=np.int64)
        for pfn, c in r.mapcount.items():
            want[pfn] = c
        bad = np.flatnonzero(f["mapcount"] != want)
        assert not bad.size, f"pfn {bad[0]}: mapcount {f['mapcount'][bad[0]]}, reference {want[bad[0]]}"
        kernel_mem = (ppsize.kernel.PGTABLE_OWNER, ppsize.kernel.SLAB_OWNER)
        heads = {int(h): int(f["order"][h]) for h in np.flatnonzero(f["order"] >= 0)
                 if not r.is_zero(int(h)) and int(f["owner"][h]) not in kernel_mem}
        assert heads == r.folio_order
        # the page-table pages, frame for frame (the reference charges them the same way)
        tables = set(np.flatnonzero((f["order"] >= 0) & (f["owner"] == ppsize.kernel.PGTABLE_OWNER)).tolist())
        assert tables == set().union(*[q.table_pfns() for q in r.procs.values()])
        assert k.kmem_stats()["pagetable_pages"] == r.nr_pagetable
        for p, q in self.procs:
            compare_process(p, q)
        if check:
            k.check()


def compare_process(p, q):
    assert p.page_size == q.P
    assert p.status() == q.status(), f"pid {p.pid}"
    assert p.outcome_counts() == q.outcome_counts()
    assert list(p.aspace.vmas) == list(q.aspace.vmas)
    for s, e, *_ in q.aspace.vmas:
        assert tuple(p.mm.range_stats(s, e)) == q.range_stats(s, e), f"VMA {s:#x}-{e:#x}"
    k = q.k
    leaves = [(va, pfn, prot, False) for va, (pfn, prot) in q.ptes.items()]
    leaves += [(b + off, pfn + (off >> k.kshift), prot, True) for b, (pfn, prot) in q.blocks.items()
               for off in (0, q.pmd_size - k.K)]
    if not leaves:
        return
    vas = np.array([x[0] for x in leaves], dtype=np.uint64)
    t = p.mm.pt.translate(vas)
    assert (t.status == 0).all(), f"not mapped: {hex(int(vas[np.flatnonzero(t.status)[0]]))}"
    for i, (va, pfn, prot, block) in enumerate(leaves):
        pa = int(t.pa[i])
        where = f"pid {p.pid} va {va:#x}"
        assert int(t.prot[i]) == prot, f"{where}: prot {int(t.prot[i])} reference {prot}"
        assert (int(t.level[i]) == q.pte_level - 1) == block, f"{where}: level {int(t.level[i])}"
        assert pa == pfn * k.K, f"{where}: pa {pa:#x} reference {pfn * k.K:#x}"


# ------------------------------------------------------------ random sequences
def pick_addr(draw, q, K):
    """Mostly an address inside a VMA (any byte of a page), sometimes just outside
    one, sometimes far away or beyond the VA range."""
    rows = list(q.aspace.vmas)
    kind = draw(st.integers(0, 19))      # (hypothesis favours the ends: keep them common)
    if not rows or kind == 13:
        return draw(st.sampled_from([0, 0x10000, 1 << 46, (1 << 48) - K, 1 << 48, (1 << 64) - K]))
    mapped = sorted(q.ptes) + sorted(q.blocks)
    if mapped and kind in (6, 7, 8, 9):        # a mapped page: HIT, COW or REUSE
        return draw(st.sampled_from(mapped))
    s, e, *_ = rows[draw(st.integers(0, len(rows) - 1))]
    npages = (e - s) // q.P
    if kind == 14:
        off = draw(st.sampled_from([-1, npages])) * q.P
    else:
        off = draw(st.integers(0, npages - 1)) * q.P
    if kind > 12:
        off += draw(st.integers(0, q.P // K - 1)) * K + draw(st.sampled_from([0, 0, 8, 100]))
    return max(0, s + off)


def pick_range(draw, q, pmd, within=True):
    """A P-aligned range: usually inside one VMA (from a page or the PMD boundary
    in it), sometimes straddling its end, sometimes somewhere unmapped."""
    rows = list(q.aspace.vmas)
    P = q.P
    kind = draw(st.integers(0, 7))
    if rows and kind:
        s, e, *_ = rows[draw(st.integers(0, len(rows) - 1))]
        start = s + draw(st.integers(0, max(0, (e - s) // P - 1))) * P
        if kind == 1 and start >= pmd:
            start = max(s, start // pmd * pmd)
        length = draw(st.sampled_from([P, 2 * P, 3 * P, 16 * P, pmd // 2, pmd, e - start]))
        if within and kind != 7:
            length = min(length, e - start)
    else:
        start = draw(st.sampled_from([0x7f0000000000, 0x10000000, 0xfff000000000]))
        length = draw(st.sampled_from([P, 16 * P, pmd]))
    return start - start % P, max(P, length - length % P)


def _enomem_ok(fn, *args):
    """fn(*args) (a Twin fork, exec or spawn): True, or False when both sides failed
    with ENOMEM (no memory for page tables), as Linux's fork/exec/spawn may."""
    try:
        fn(*args)
        return True
    except OSError as e:
        assert e.errno == 12, e
        return False


def random_sequence(data, K, memory, sizes, modes, steps, geometry=None):
    kpage = parse_size(K)
    g = default_geometry(kpage) if geometry is None else ppsize.geometry(geometry)
    pmd = g.pmd_size
    anon_sizes = [fmt_size(kpage << o) for o in range(2, g.pmd_order + 1)]
    mthp = {s: data.draw(st.sampled_from(["always", "inherit", "madvise", "never"]))
            for s in data.draw(st.lists(st.sampled_from(anon_sizes), max_size=3, unique=True))}
    t = Twin(K, memory, thp=data.draw(st.sampled_from(["always", "madvise", "never"])), mthp=mthp,
             use_zero_page=data.draw(st.booleans()), geometry=geometry)
    t.spawn(data.draw(st.sampled_from(sizes)), data.draw(st.sampled_from(modes)))
    t.call(0, "mmap", data.draw(st.sampled_from([2 * pmd, pmd, 64 * t.procs[0][1].P])))
    t.compare()
    for _ in range(steps):
        if not t.procs:
            t.spawn(data.draw(st.sampled_from(sizes)), data.draw(st.sampled_from(modes)))
            t.call(0, "mmap", pmd)
        i = data.draw(st.integers(0, len(t.procs) - 1))
        q = t.procs[i][1]
        op = data.draw(st.sampled_from(
            ["access"] * 8 + ["mmap"] * 2 + ["munmap", "mprotect", "mremap", "madvise", "madvise",
                                             "fork", "fork", "exec", "exit", "spawn", "thp"]))
        try:
            if op == "access":
                n = data.draw(st.integers(1, 10))
                pool = [pick_addr(data.draw, q, kpage) for _ in range(data.draw(st.integers(1, 4)))]
                vas = [data.draw(st.sampled_from(pool)) for _ in range(n)]
                w = data.draw(st.sampled_from(["r", "w", "mix"]))
                write = (w == "w") if w != "mix" else np.array(data.draw(
                    st.lists(st.booleans(), min_size=n, max_size=n)))
                t.access(i, vas, write)
            elif op == "mmap":
                length = data.draw(st.sampled_from([q.P, 2 * q.P, 5 * q.P, 16 * q.P, pmd, 2 * pmd]))
                prot = data.draw(st.sampled_from(["rw", "rw", "rw", "r", "w", "none", "x", "rwx"]))
                kw = {}
                flag = data.draw(st.integers(0, 9))
                if flag == 0:
                    kw["shared"] = True
                elif flag == 1:
                    kw["populate"] = True
                elif flag == 4:
                    kw[data.draw(st.sampled_from(["locked", "stack", "noreserve"]))] = True
                elif flag in (2, 3) and len(q.aspace.vmas):
                    start, length = pick_range(data.draw, q, pmd, within=False)
                    kw.update(addr=start, fixed=True)
                t.call(i, "mmap", length, kw.pop("addr", None), prot, **kw)
            elif op == "munmap":
                t.call(i, "munmap", *pick_range(data.draw, q, pmd))
            elif op == "mprotect":
                t.call(i, "mprotect", *pick_range(data.draw, q, pmd),
                       data.draw(st.sampled_from(["r", "rw", "none", "w", "rx"])))
            elif op == "madvise":
                t.call(i, "madvise", *pick_range(data.draw, q, pmd),
                       data.draw(st.sampled_from(["dontneed", "dontneed", "hugepage", "nohugepage",
                                                  "normal"])))
            elif op == "mremap":
                start, length = pick_range(data.draw, q, pmd)
                new_len = data.draw(st.sampled_from([length, length // 2, 2 * length, length + q.P]))
                new_len = max(q.P, new_len - new_len % q.P)
                flags = data.draw(st.sampled_from(["", "maymove", "maymove|fixed",
                                                   "maymove|dontunmap"]))
                new_addr = None
                if flags == "maymove|dontunmap":
                    new_len = length
                if flags == "maymove|fixed":
                    new_addr, _ = pick_range(data.draw, q, pmd, within=False)
                    if data.draw(st.booleans()):
                        new_addr = 0x200000000000 + data.draw(st.integers(0, 8)) * (pmd // 2)
                    new_len = length
                t.call(i, "mremap", start, length, new_len, flags, new_addr)
            elif op == "fork":
                if len(t.procs) < 4 and _enomem_ok(t.fork, i):
                    mapped = sorted(q.ptes) + sorted(q.blocks)
                    if mapped and data.draw(st.booleans()):     # child copies, parent reuses
                        vas = [data.draw(st.sampled_from(mapped)) for _ in range(3)]
                        t.access(len(t.procs) - 1, vas, True)
                        t.access(i, vas, True)
            elif op == "exec":
                if _enomem_ok(t.exec, i, data.draw(st.sampled_from(sizes))):
                    t.call(i, "mmap", data.draw(st.sampled_from([pmd, 16 * t.procs[i][1].P])))
            elif op == "exit":
                t.exit(i)
            elif op == "spawn":
                if len(t.procs) < 4 and _enomem_ok(t.spawn, data.draw(st.sampled_from(sizes)),
                                                   data.draw(st.sampled_from(modes))):
                    t.call(len(t.procs) - 1, "mmap", data.draw(st.sampled_from([pmd, 16 * K64])))
            elif op == "thp":
                size = data.draw(st.sampled_from(anon_sizes))
                t.set_thp(data.draw(st.sampled_from(["always", "madvise", "never"])),
                          {size: data.draw(st.sampled_from(["always", "inherit", "madvise", "never"]))},
                          data.draw(st.booleans()))
        except AssertionError as e:
            raise AssertionError(f"{e}\nafter:\n  " + "\n  ".join(t.log)) from None
        try:
            t.compare()                   # reference equality and Kernel.check()
        except AssertionError as e:
            raise AssertionError(f"{e}\nafter:\n  " + "\n  ".join(t.log)) from None
    return t


SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],   # the log shows the steps
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.data())
def test_random_4k_kernel(data):
    memory = data.draw(st.sampled_from(["8M", "4M", "1M", "256K"]))
    random_sequence(data, "4K", memory, ["4K", "16K", "64K"], ["emulated", "native"], 25)


@SETTINGS
@given(st.data())
def test_random_16k_kernel(data):
    memory = data.draw(st.sampled_from(["2M", "8M"]))
    random_sequence(data, "16K", memory, ["16K", "64K"], ["emulated", "native"], 20)


@settings(max_examples=20, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_x86_64(data):
    """x86-64 4-level tables: reads are also allowed by VM_EXEC; emulated 16K/64K."""
    random_sequence(data, "4K", data.draw(st.sampled_from(["8M", "1M"])), ["4K", "16K", "64K"],
                    ["emulated"], 20, geometry="x86_64-4l")


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_4k_kernel_per_step_check(data):
    """Fewer, shorter sequences with Kernel.check() after every step."""
    t = random_sequence(data, "4K", "4M", ["4K", "16K", "64K"], ["emulated", "native"], 0)
    for step in range(10):
        if not t.procs:
            break
        p, q = t.procs[0]
        rows = list(q.aspace.vmas)
        if not rows or data.draw(st.integers(0, 3)) == 0:
            t.call(0, "mmap", data.draw(st.sampled_from([q.P, 16 * q.P, 2 * M])))
            rows = list(q.aspace.vmas)
        s, e, *_ = rows[-1]
        vas = [s + data.draw(st.integers(0, (e - s) // q.P - 1)) * q.P for _ in range(4)]
        t.access(0, vas, data.draw(st.booleans()))
        if data.draw(st.integers(0, 4)) == 0:
            t.call(0, "madvise", s, e - s, "dontneed")
        if data.draw(st.integers(0, 4)) == 0 and len(t.procs) < 3:
            t.fork(0)
        t.compare()


def thp_range(draw, q, pmd):
    """A range in one VMA starting at a VMA start or at a quarter of a PMD block
    (so THP blocks get cut at either end), P-aligned, clipped to the VMA."""
    rows = list(q.aspace.vmas)
    s, e, *_ = rows[draw(st.integers(0, len(rows) - 1))]
    pts = sorted({s} | {b + f * pmd // 4 for b in q.blocks for f in range(4)
                        if s <= b + f * pmd // 4 < e})
    start = draw(st.sampled_from(pts))
    length = draw(st.sampled_from([pmd // 4, pmd // 2, pmd, pmd + pmd // 4, e - start]))
    length = min(length, e - start)
    return start, max(q.P, length - length % q.P)


@settings(max_examples=60, deadline=None, derandomize=True,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_thp_blocks(data):
    """PMD blocks (THP and huge zero) cut by mremap, mprotect, munmap, madvise and
    MAP_FIXED at quarter-PMD points: the splits at VMA boundaries, partial moves,
    blocks moved onto aligned destinations, AnonExclusive across fork."""
    t = Twin("4K", "16M", thp=data.draw(st.sampled_from(["always", "always", "madvise"])),
             use_zero_page=data.draw(st.booleans()))
    p, q = t.spawn(data.draw(st.sampled_from(["4K", "16K", "64K"])))
    pmd = t.k.geometry.pmd_size
    a = t.call(0, "mmap", 4 * pmd)
    if data.draw(st.booleans()):
        t.call(0, "madvise", a, 4 * pmd, "hugepage")
    al = -(-a // pmd) * pmd
    for i in range(3):
        t.access(0, [al + i * pmd + data.draw(st.integers(0, pmd // K4 - 1)) * K4],
                 data.draw(st.booleans()))
    try:
        t.compare()
        for _ in range(12):
            i = data.draw(st.integers(0, len(t.procs) - 1))
            q = t.procs[i][1]
            if not len(q.aspace.vmas):
                break
            op = data.draw(st.sampled_from(["access", "access", "mremap", "mremap", "mprotect",
                                            "munmap", "madvise", "fixed", "fork"]))
            if op == "access":
                mapped = sorted(q.blocks) + sorted(q.ptes)
                pool = [pick_addr(data.draw, q, K4) for _ in range(2)]
                if mapped:
                    pool += [data.draw(st.sampled_from(mapped)) + data.draw(st.integers(0, 3)) * K4
                             for _ in range(2)]
                t.access(i, [data.draw(st.sampled_from(pool)) for _ in range(4)],
                         np.array(data.draw(st.lists(st.booleans(), min_size=4, max_size=4))))
            elif op == "mremap":
                start, length = thp_range(data.draw, q, pmd)
                flags = data.draw(st.sampled_from(["maymove|fixed", "maymove|fixed", "maymove",
                                                   "maymove|dontunmap", ""]))
                new_addr, new_len = None, length
                if "fixed" in flags:
                    new_addr = 0x200000000000 + data.draw(st.integers(0, 8)) * (pmd // 4)
                elif not flags:
                    new_len = max(q.P, length // 2 - length // 2 % q.P)
                t.call(i, "mremap", start, length, new_len, flags, new_addr)
            elif op == "mprotect":
                t.call(i, "mprotect", *thp_range(data.draw, q, pmd),
                       data.draw(st.sampled_from(["r", "rw", "none"])))
            elif op == "munmap":
                t.call(i, "munmap", *thp_range(data.draw, q, pmd))
            elif op == "madvise":
                t.call(i, "madvise", *thp_range(data.draw, q, pmd),
                       data.draw(st.sampled_from(["dontneed", "nohugepage", "hugepage"])))
            elif op == "fixed":
                start, length = thp_range(data.draw, q, pmd)
                t.call(i, "mmap", length, start, "rw", fixed=True)
            elif op == "fork" and len(t.procs) < 3:
                t.fork(i)
            t.compare()
    except AssertionError as e:
        raise AssertionError(f"{e}\nafter:\n  " + "\n  ".join(t.log)) from None


# ------------------------------------------------------------ directed tests
def frames_of(p, va, n):
    t = p.mm.pt.translate(np.arange(va, va + n * p.kernel.page_size, p.kernel.page_size,
                                    dtype=np.uint64))
    return (t.pa >> np.uint64(p.kernel.geometry.page_shift)).astype(np.int64)


@pytest.mark.parametrize("K,memory,order", [("4K", "8M", 9), ("4K", "1M", 6), ("4K", "64K", 2),
                                            ("16K", "2G", 11), ("16K", "4M", 6), ("64K", "16M", 6)])
def test_zero_region_order(K, memory, order):
    k = ppsize.Kernel(K, memory)
    kp = parse_size(K)
    nr = parse_size(memory) // kp
    assert k.core.zero_order == order
    assert (1 << order) <= max(1, nr // 4) and (order == k.geometry.pmd_order or (2 << order) > nr // 4)
    assert k.meminfo()["MemTotal"] == (nr - (1 << order)) * (kp >> 10)
    assert RefKernel(K, memory).zero_order == order


def test_porder_is_the_floor_64k_on_4k():
    """A 64K process on a 4K kernel gets order-4 folios even with every mTHP size off."""
    t = Twin("4K", "8M", thp="never", mthp={"64K": "never"})
    p, q = t.spawn("64K")
    a = t.call(0, "mmap", "256K")
    assert t.access(0, [a + 5 * K4], True).tolist() == [O.FAULT]
    assert (frames_of(p, a, 16) == frames_of(p, a, 1)[0] + np.arange(16)).all()
    assert k_stats(t.k) == {"64K": (1, 0)}
    assert p.status()["RssAnon"] == 64 and p.status()["minflt"] == 1
    t.compare()


def k_stats(k):
    return {s: (v["anon_fault_alloc"], v["anon_fault_fallback"]) for s, v in k.mthp_stats().items()}


def test_mthp_orders_above_porder_native_16k():
    """A native 16K process: 64K mTHP mapped by four 16K PTEs; 16K-granule tables."""
    t = Twin("4K", "8M", thp="never", mthp={"64K": "always", "32K": "always"})
    p, q = t.spawn("16K", "native")
    a = t.call(0, "mmap", "128K")
    assert t.access(0, [a + K16], True).tolist() == [O.FAULT]
    first = frames_of(p, a, 16)
    assert (first == first[0] + np.arange(16)).all() and first[0] % 16 == 0
    assert k_stats(t.k) == {"64K": (1, 0)}                  # 32K < 64K: highest first
    g = default_geometry(K16)
    assert p.status()["VmPTE"] == 3 * g.table_sizes[-1] >> 10      # PUD + PMD + PTE, 16K each
    # the next 64K has its aligned range free: another 64K folio
    assert t.access(0, [a + K64 + 3 * K16], True).tolist() == [O.FAULT]
    assert k_stats(t.k) == {"64K": (2, 0)}
    t.compare()


def test_pmd_thp_with_madvise():
    t = Twin("4K", "16M", thp="madvise")
    p, q = t.spawn()
    g = t.k.geometry
    a = t.call(0, "mmap", g.pmd_size)
    assert a % g.pmd_size == 0
    t.access(0, [a], True)
    assert p.smaps()[0]["AnonHugePages"] == 0 and p.status()["RssAnon"] == 4
    b = t.call(0, "mmap", g.pmd_size)
    t.call(0, "madvise", b, g.pmd_size, "hugepage")
    assert t.access(0, [b + 12345], True).tolist() == [O.FAULT]
    assert p.smaps()[0]["AnonHugePages"] == g.pmd_size >> 10
    assert t.k.meminfo()["AnonHugePages"] == g.pmd_size >> 10
    assert k_stats(t.k)[fmt_size(g.pmd_size)] == (1, 0)
    # PUD + PMD + the PTE table of a + the deposit of b's block: 4 tables of 4K
    assert p.status()["VmPTE"] == 16
    t.compare()
    t.call(0, "munmap", b, g.pmd_size)
    assert p.status()["VmPTE"] == 12
    t.compare()


def test_pmd_thp_16k_kernel():
    """16K kernel: PMD = 32M = order 11 = MAX_PAGE_ORDER; 64K process, emulated."""
    t = Twin("16K", "256M")
    p, q = t.spawn("64K")
    g = t.k.geometry
    assert g.pmd_order == 11 and t.k.core.zero_order == 11
    a = t.call(0, "mmap", g.pmd_size)
    assert t.access(0, [a + 5 * K64], False).tolist() == [O.ZERO]
    assert t.access(0, [a + 7 * K64 + 8], True).tolist() == [O.COW]       # huge zero -> THP
    assert p.smaps()[0]["AnonHugePages"] == 32 * 1024
    assert k_stats(t.k) == {"32M": (1, 0)}
    assert p.status()["VmPTE"] == 3 * 16                    # PUD, PMD, deposit: 16K each
    t.call(0, "mprotect", a + K64, K64, "r")                # splits the block
    assert p.status()["VmPTE"] == 3 * 16 and p.smaps()[0]["AnonHugePages"] == 0
    t.compare()


def test_huge_zero_then_write_cow():
    """A write to the huge zero PMD gets a PMD THP (do_huge_zero_wp_pmd), or, when
    that fails, a copy of the process page after splitting the zero PMD."""
    t = Twin("4K", "16M")
    p, q = t.spawn("16K")
    a = t.call(0, "mmap", "2M")
    assert t.access(0, [a], False).tolist() == [O.ZERO]
    assert p.status()["RssAnon"] == 0 and p.status()["VmPTE"] == 12
    assert t.access(0, [a + K16 + 8], True).tolist() == [O.COW]
    assert p.status()["RssAnon"] == 2048 and p.status()["minflt"] == 2
    assert p.smaps()[0]["AnonHugePages"] == 2048 and k_stats(t.k) == {"2M": (1, 0)}
    t.compare()
    # zero region + three 2M THPs leave 64K, and one more 2M block for the page tables
    # (their first unmovable page claims a whole free pageblock: __rmqueue_claim)
    t2 = Twin("4K", "10304K")
    p, q = t2.spawn("16K")
    a = t2.call(0, "mmap", "6M")
    b = t2.call(0, "mmap", "2M")
    t2.access(0, [a, a + 2 * M, a + 4 * M], True)
    t2.access(0, [b], False)
    assert t2.access(0, [b + K16], True).tolist() == [O.COW]
    assert k_stats(t2.k) == {"2M": (3, 1)}          # the 16K copy: wp_page_copy, not counted
    assert p.status()["RssAnon"] == 3 * 2048 + 16 and p.status()["VmPTE"] == 6 * 4     # PUD, PMD, 3 deposits, split PTE table
    assert t2.access(0, [b, b + 2 * K16], False).tolist() == [O.HIT, O.HIT]
    t2.compare()


def test_zero_page_then_write_is_cow():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn("64K")
    a = t.call(0, "mmap", "128K")
    assert t.access(0, [a + K4], False).tolist() == [O.ZERO]
    assert (frames_of(p, a, 16) == t.k.core.zero_pfn).all()   # every kernel PTE: ZERO_PAGE
    assert p.status()["RssAnon"] == 0
    assert t.access(0, [a, a + 8 * K4], [True, False]).tolist() == [O.COW, O.HIT]
    assert p.status()["RssAnon"] == 64 and p.status()["minflt"] == 2
    assert k_stats(t.k) == {}                # wp_page_copy: no mTHP anon_fault_alloc
    t.compare()


def test_cow_after_fork_then_reuse():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn("16K")
    a = t.call(0, "mmap", "64K")
    t.access(0, [a, a + K16], True)
    before = frames_of(p, a, 4)
    c, _ = t.fork(0)
    assert c.status()["RssAnon"] == 32 and c.status()["minflt"] == 0
    assert (frames_of(c, a, 4) == before).all()
    assert t.access(0, [a], True).tolist() == [O.COW]        # parent: shared -> copy
    assert not (frames_of(p, a, 4) == before).any()
    assert t.access(1, [a], True).tolist() == [O.REUSE]      # child: now the only mapper
    assert (frames_of(c, a, 4) == before).all()
    assert t.access(1, [a + K16], False).tolist() == [O.HIT]
    assert t.access(1, [a + K16], True).tolist() == [O.COW]
    t.compare()
    t.exit(1)
    assert t.access(0, [a + K16], True).tolist() == [O.REUSE]
    t.compare()


def test_fork_skips_vmas_without_anon_vma():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], False)                      # zero page only: no anon_vma
    b = t.call(0, "mmap", "64K", 0x300000000000)
    t.access(0, [b], True)
    c, _ = t.fork(0)
    assert c.mm.range_stats(a, a + K64) == (0, 0, 0)
    assert c.mm.range_stats(b, b + K64) == (1, 0, 0)
    assert t.access(1, [a], False).tolist() == [O.ZERO]
    assert c.status()["minflt"] == 1
    t.compare()


def test_oom_outcome_not_exception():
    # 16 frames: 4 the zero region, 4 the page tables (PGD, PUD, PMD, PTE: kernel memory)
    t = Twin("4K", "64K", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "128K")
    out = t.access(0, np.arange(a, a + 32 * K4, K4), True)
    assert out.tolist() == [O.FAULT] * 8 + [O.OOM] * 24
    assert p.status()["minflt"] == 8 and t.k.oom_count == 24
    assert t.k.meminfo()["MemFree"] == 0
    t.call(0, "munmap", a, K4)
    assert t.access(0, [a + 20 * K4], True).tolist() == [O.FAULT]
    t.compare()


def test_mthp_fallback_to_lower_order_then_porder():
    # 256K of 4K frames: zero region order 4 (64K); 128K and 64K folios fit once
    t = Twin("4K", "256K", thp="never", mthp={"128K": "always", "64K": "always"})
    p, q = t.spawn()
    a = t.call(0, "mmap", "512K")
    t.access(0, [a + i * 128 * 1024 for i in range(4)], True)
    stats = k_stats(t.k)
    assert stats["128K"][0] >= 1 and stats["128K"][1] >= 1      # some fell back
    t.compare()


def test_permissions_and_sigbus():
    t = Twin("4K", "8M")
    p, q = t.spawn()
    r = t.call(0, "mmap", "16K", None, "r")
    n = t.call(0, "mmap", "16K", None, "none")
    x = t.call(0, "mmap", "16K", None, "x")
    s = t.call(0, "mmap", "16K", None, "rw", shared=True)
    out = t.access(0, [r, r, n, x, s, 0x1000, 1 << 60], [False, True, False, False, True, False, False])
    assert out.tolist() == [O.ZERO, O.SEGV_ACCERR, O.SEGV_ACCERR, O.SEGV_ACCERR, O.SIGBUS,
                            O.SEGV_MAPERR, O.SEGV_MAPERR]
    assert p.status()["minflt"] == 1
    t.compare()


def test_x86_exec_only_is_readable():
    k = ppsize.Kernel("4K", "8M", geometry="x86_64-4l")
    p = k.spawn()
    x = p.mmap("16K", prot="x")
    assert p.access([x], False).tolist() == [O.ZERO]


def test_tables_kept_on_dontneed_freed_on_munmap():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], True)
    assert p.status()["VmPTE"] == 12
    t.call(0, "madvise", a, K64, "dontneed")
    assert p.status()["VmPTE"] == 12 and p.status()["RssAnon"] == 0
    t.compare()
    t.call(0, "munmap", a, K64)
    assert p.status()["VmPTE"] == 0
    t.compare()


def test_mprotect_write_only_on_exclusive_pages():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "16K")
    t.access(0, [a, a + K4], True)
    t.access(0, [a + 2 * K4], False)
    t.fork(0)
    t.access(1, [a], True)                          # child copies page 0
    t.call(0, "mprotect", a, 4 * K4, "r")
    t.call(0, "mprotect", a, 4 * K4, "rw")
    # fork cleared PageAnonExclusive: page 0 (mapped only by the parent again) stays
    # read-only and is reused on the write; page 1 is shared, page 2 the zero page
    assert t.access(0, [a, a + K4, a + 2 * K4], True).tolist() == [O.REUSE, O.COW, O.COW]
    t.compare()


def test_populate_and_mremap_move_keep_frames():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn("16K")
    a = t.call(0, "mmap", "64K", populate=True)
    assert p.status()["RssAnon"] == 64 and p.status()["minflt"] == 4
    before = frames_of(p, a, 16)
    b = t.call(0, "mremap", a, K64, 2 * K64, "maymove")
    assert (frames_of(p, b, 16) == before).all()
    t.compare()


def test_exit_frees_everything():
    t = Twin("4K", "8M")
    free0 = t.k.meminfo()["MemFree"]
    p, q = t.spawn("16K", "native")
    a = t.call(0, "mmap", "4M")
    t.access(0, np.arange(a, a + 4 * M, 256 * K4), True)
    t.fork(0)
    t.exit(0)
    t.exit(0)
    assert t.k.meminfo()["MemFree"] == free0 and t.k.meminfo()["AnonPages"] == 0
    t.compare()


# ---------------------------------- engine bugs and deviations from Linux, fixed in fca259d
def test_check_after_dontneed():
    """PageTable.check() accepts the empty PTE table that MADV_DONTNEED keeps."""
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], True)
    t.call(0, "madvise", a, K64, "dontneed")
    assert p.status()["VmPTE"] == 12 and p.status()["RssAnon"] == 0
    t.compare()                               # Kernel.check() included


def test_mremap_part_of_pmd_block():
    """move_page_tables splits a PMD that the moved range cuts, then moves PTEs."""
    t = Twin("4K", "16M")
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    t.access(0, [a], True)
    before = frames_of(p, a, 512)
    d = t.call(0, "mmap", "8M")
    t.call(0, "mremap", a + M, M, M, "maymove|fixed", d + 2 * M)
    assert p.status()["RssAnon"] == 2048
    assert p.mm.range_stats(a, a + M) == (256, 0, 0)
    assert p.mm.range_stats(d + 2 * M, d + 3 * M) == (256, 0, 0)
    assert (frames_of(p, a, 256) == before[:256]).all()
    assert (frames_of(p, d + 2 * M, 256) == before[256:]).all()
    t.compare()


def test_mremap_fixed_block_onto_kept_table():
    """MREMAP_FIXED frees the destination's empty tables (free_pgtables after its
    unmap), so the block moves as a block (move_huge_pmd needs pmd_none)."""
    t = Twin("4K", "16M")
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    t.access(0, [a], True)
    d = t.call(0, "mmap", "6M")
    d2 = (d + 2 * M - 1) & ~(2 * M - 1)
    t.set_thp("never")
    t.access(0, [d2], True)
    t.call(0, "mremap", a, 2 * M, 2 * M, "maymove|fixed", d2)
    assert p.mm.range_stats(d2, d2 + 2 * M) == (512, 512, 0)
    assert p.status()["RssAnon"] == 2048
    t.compare()


def test_native_zero_page_larger_than_zero_region():
    """A native PTE maps a whole process page: its zero page must fit in the zero
    region, so a native process with a larger page is refused at spawn."""
    k = ppsize.Kernel("4K", "128K")                 # 32 frames: zero region order 3 (32K)
    with pytest.raises(ValueError, match="64K"):
        k.spawn("64K", pgtable="native")
    assert not k.processes
    with pytest.raises(ValueError):
        RefKernel("4K", "128K").spawn("64K", "native")
    t = Twin("4K", "128K")
    p, q = t.spawn("16K", "native")                 # 16K <= 32K: fine
    a = t.call(0, "mmap", "64K")
    assert t.access(0, [a + K16 + 8], False).tolist() == [O.ZERO]
    tr = p.mm.pt.translate([a + K16 + 3 * K4])
    assert tr.status[0] == 0 and int(tr.pa[0]) == (t.k.core.zero_pfn + 3) * K4
    t.compare()


def test_first_writes_in_more_than_64_vmas():
    t = Twin("4K", "64M", thp="never")
    p, q = t.spawn()
    vas = []
    for _ in range(70):                       # 70 separate VMAs (a hole after each)
        a = t.call(0, "mmap", "8K")
        t.call(0, "munmap", a + K4, K4)
        vas.append(a)
    t.access(0, sorted(vas), True)            # (ascending: the anon_vma ids match)
    assert all(anon for *_, anon in p.aspace.vmas)
    c, _ = t.fork(0)
    assert c.status()["RssAnon"] == 70 * 4
    t.compare()


def test_huge_zero_read_prepares_anon_vma():
    """vmf_anon_prepare comes before the huge zero path: fork copies the zero PMD."""
    t = Twin("4K", "16M")
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    assert t.access(0, [a], False).tolist() == [O.ZERO]
    assert p.aspace.vmas.row(0)[5] != 0
    c, _ = t.fork(0)
    assert c.status()["VmPTE"] == p.status()["VmPTE"] == 12
    assert c.mm.range_stats(a, a + 2 * M) == (0, 0, 512)
    assert t.access(1, [a + K4], False).tolist() == [O.HIT]
    t.compare()


def test_no_huge_zero_read_allocates_thp():
    t = Twin("4K", "16M", use_zero_page=False)
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    assert t.access(0, [a], False).tolist() == [O.FAULT]
    assert p.smaps()[0]["AnonHugePages"] == 2048 and k_stats(t.k) == {"2M": (1, 0)}
    assert t.access(0, [a + K4], True).tolist() == [O.HIT]          # writable: VM_WRITE
    t.compare()


def test_write_only_vma_reads_hit():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K", None, "w")
    assert t.access(0, [a, a], False).tolist() == [O.ZERO, O.HIT]
    assert t.access(0, [a, a], [True, False]).tolist() == [O.COW, O.HIT]
    assert p.status()["minflt"] == 2
    assert int(p.mm.pt.translate([a]).prot[0]) == 3                 # rw
    t.compare()


def test_x86_exec_only_present_page_reads_hit():
    t = Twin("4K", "8M", geometry="x86_64-4l")
    p, q = t.spawn()
    a = t.call(0, "mmap", "16K")
    t.access(0, [a], True)
    t.call(0, "mprotect", a, K16, "x")
    assert t.access(0, [a, a], False).tolist() == [O.HIT, O.HIT]
    assert p.status()["minflt"] == 1
    t.compare()


def test_cow_not_counted_as_anon_fault_alloc():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn("16K")
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], False)
    assert t.access(0, [a], True).tolist() == [O.COW]      # COW of the zero page
    assert t.k.mthp_stats() == {}
    assert t.access(0, [a + K16], True).tolist() == [O.FAULT]
    assert k_stats(t.k) == {"16K": (1, 0)}                 # order 2, reported as 16K
    t.compare()


def test_minflt_survives_exec():
    t = Twin("4K", "8M")
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], True)
    t.exec(0, "16K")
    assert p.status()["minflt"] == 1
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], True)
    assert p.status()["minflt"] == 2
    c, _ = t.fork(0)
    assert c.status()["minflt"] == 0                       # a new task
    t.compare()


def test_map_fixed_frees_page_tables():
    t = Twin("4K", "16M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    t.access(0, [a], True)
    t.set_thp("always")
    # vms_clear_ptes -> free_pgtables(floor = FIRST_USER_ADDRESS, ceiling =
    # USER_PGTABLES_CEILING) with no neighbours: free_pmd_range / free_pud_range
    # free the PMD and PUD tables as well as the PTE table
    t.call(0, "mmap", "2M", a, fixed=True)
    assert p.status()["VmPTE"] == 0 and p.status()["RssAnon"] == 0
    t.compare()
    t.access(0, [a], True)
    assert p.smaps()[0]["AnonHugePages"] == 2048
    assert p.status()["VmPTE"] == 12                 # PUD, PMD, the deposit
    t.compare()
    # MAP_FIXED over the upper half: the lower half ([a, a + 1M)) is the floor,
    # so the PTE table left by splitting the block (it spans [a, a + 2M)) stays
    t.call(0, "mmap", "1M", a + M, fixed=True)
    assert p.status()["VmPTE"] == 12 and p.status()["RssAnon"] == 1024
    assert p.mm.range_stats(a, a + M) == (256, 0, 0)
    t.compare()


def test_split_huge_zero_pmd_maps_zero_page():
    t = Twin("4K", "16M")
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    t.access(0, [a], False)
    t.call(0, "madvise", a, K4, "dontneed")
    assert (frames_of(p, a + K4, 511) == t.k.core.zero_pfn).all()
    assert p.mm.range_stats(a, a + 2 * M) == (0, 0, 511)
    t.compare()


def test_vma_split_splits_pmd_block():
    t = Twin("4K", "16M")
    p, q = t.spawn()
    a = t.call(0, "mmap", "2M")
    t.access(0, [a], True)
    before = frames_of(p, a, 512)
    t.call(0, "madvise", a + M, M, "nohugepage")
    assert [v["AnonHugePages"] for v in p.smaps()] == [0, 0]
    assert (frames_of(p, a, 512) == before).all() and p.status()["RssAnon"] == 2048
    t.compare()


def test_partly_shared_large_folio_not_reused():
    t = Twin("4K", "8M", thp="never", mthp={"64K": "always"})
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], True)                  # one 64K folio
    t.fork(0)
    assert t.access(1, [a], True).tolist() == [O.COW]
    assert t.access(0, [a], True).tolist() == [O.COW]  # the child still maps 15 pages of it
    t.exit(1)                               # now only the parent maps it (15 pages)
    assert t.access(0, [a + K4], True).tolist() == [O.REUSE]
    t.compare()


def test_mprotect_after_fork_keeps_cow_armed():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "16K")
    t.access(0, [a], True)
    t.fork(0)
    t.exit(1)
    t.call(0, "mprotect", a, K16, "r")
    t.call(0, "mprotect", a, K16, "rw")
    assert t.access(0, [a], True).tolist() == [O.REUSE]     # REUSE sets AnonExclusive
    t.call(0, "mprotect", a, K16, "r")
    t.call(0, "mprotect", a, K16, "rw")
    assert t.access(0, [a], True).tolist() == [O.HIT]
    t.compare()


def test_mthp_stats_have_no_order0():
    t = Twin("4K", "8M", thp="never")
    p, q = t.spawn()
    a = t.call(0, "mmap", "64K")
    t.access(0, [a], True)
    assert t.k.mthp_stats() == {}
    t.compare()


# ------------------------------------------------------------ engine bugs found (fixed)
def test_read_only_vma_thp_read_fault_not_writable():
    k = ppsize.Kernel("4K", "16M", use_zero_page=False)
    p = k.spawn()
    a = p.mmap("2M", prot="r")
    assert p.access([a], False).tolist() == [O.FAULT]
    assert int(p.mm.pt.translate([a]).prot[0]) == 1            # r only
    assert p.access([a + K4], True).tolist() == [O.SEGV_ACCERR]


def test_exec_native_zero_page_larger_than_zero_region():
    k = ppsize.Kernel("4K", "128K")                 # zero region order 3 (32K)
    p = k.spawn("16K", pgtable="native")
    a = p.mmap("16K")
    p.access([a], True)
    with pytest.raises(ValueError, match="64K"):
        p.exec("64K")
    assert p.page_size == 16 * 1024 and p.status()["RssAnon"] == 16   # refused before teardown
    k.check()


# ------------------------------------------------------------ rules that differ from Linux (xfail)
@pytest.mark.xfail(strict=True, reason="MREMAP_DONTUNMAP does not unmap the source (move_vma "
                   "returns before do_vmi_munmap), so free_pgtables never runs on it: Linux keeps "
                   "the source PUD/PMD/PTE tables (12K) besides the destination's (12K); the "
                   "engine frees the source tables as after an unmap (rule 12: VmPTE 12)")
def test_mremap_dontunmap_keeps_source_tables():
    k = ppsize.Kernel("4K", "16M", thp="never")
    p = k.spawn()
    a = p.mmap("64K")
    p.access([a], True)
    assert p.status()["VmPTE"] == 12
    p.mremap(a, "64K", "64K", "maymove|fixed|dontunmap", 0x200000000000)
    assert p.status()["VmPTE"] == 24


@pytest.mark.xfail(strict=True, reason="__wp_can_reuse_large_anon_folio (6.15+) reuses a large "
                   "folio mapped only by this MM (folio_large_mapcount == refcount, not "
                   "maybe_mapped_shared), wherever in the MM; the engine only counts this MM's "
                   "mappings in the folio-sized VA window around the fault, so half a folio "
                   "moved elsewhere by mremap makes it COW")
def test_reuse_large_folio_partly_moved_in_same_mm():
    k = ppsize.Kernel("4K", "8M", thp="never", mthp={"64K": "always"})
    p = k.spawn()
    a = p.mmap("64K")
    p.access([a], True)                     # one 64K folio
    p.fork().exit()                         # AnonExclusive cleared, mapped only here
    d = p.mmap("64K")
    p.mremap(a + 32 * 1024, "32K", "32K", "maymove|fixed", d)
    assert p.access([a], True).tolist() == [O.REUSE]


@pytest.mark.xfail(strict=True, reason="__wp_can_reuse_large_anon_folio starts with "
                   "'if (folio_large_mapcount(folio) <= 1) return false' (free up a large folio "
                   "with a single page mapped): Linux copies; the engine's rule (every mapping "
                   "of the folio is this MM's) reuses the last mapped 4K page of a 64K folio")
def test_last_mapped_page_of_large_folio_is_copied():
    k = ppsize.Kernel("4K", "8M", thp="never", mthp={"64K": "always"})
    p = k.spawn()
    a = p.mmap("64K")
    p.access([a], True)                     # one 64K folio
    p.fork().exit()                         # AnonExclusive cleared
    p.madvise(a + K4, 15 * K4, "dontneed")  # one page of the folio left mapped
    assert p.status()["RssAnon"] == 4
    assert p.access([a], True).tolist() == [O.COW]


@pytest.mark.xfail(strict=True, reason="x86-64 with CONFIG_PT_RECLAIM (6.14+, default y, "
                   "ARCH_SUPPORTS_PT_RECLAIM if X86_64): MADV_DONTNEED of a range >= PMD_SIZE "
                   "(reclaim_pt_is_enabled) frees a PTE table it leaves empty (try_to_free_pte); "
                   "the engine never frees tables on MADV_DONTNEED (true of arm64)")
def test_x86_dontneed_reclaims_empty_pte_table():
    k = ppsize.Kernel("4K", "16M", thp="never", geometry="x86_64-4l")
    p = k.spawn()
    a = p.mmap("2M")
    assert a % (2 * M) == 0
    p.access([a], True)
    assert p.status()["VmPTE"] == 12
    p.madvise(a, "2M", "dontneed")
    assert p.status()["VmPTE"] == 8


# ------------------------------------------------------------ bad input
@pytest.fixture
def proc():
    k = ppsize.Kernel("4K", "8M")
    p = k.spawn()
    return p, p.mmap("64K")


def test_bad_addresses(proc):
    p, a = proc
    with pytest.raises(TypeError, match="float"):
        p.access(np.array([a + 0.5]))
    with pytest.raises(TypeError, match="float"):
        p.access([1.5, 2.5])
    with pytest.raises(TypeError):
        p.access(["0x1000"])
    with pytest.raises(ValueError, match="64 bits"):
        p.access([1 << 70])
    with pytest.raises(TypeError, match="bool"):
        p.access(np.array([True]))
    assert p.access([-K4]).tolist() == [O.SEGV_MAPERR]      # wraps to the top of the VA
    assert p.access(np.array([], dtype=np.uint64)).shape == (0,)
    out = p.access(np.array([[a, a + K4]], dtype=np.int64), True)
    assert out.shape == (1, 2) and out.dtype == np.uint8


def test_bad_write_arrays(proc):
    p, a = proc
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        p.access([a, a], np.array([True, False, True]))
    with pytest.raises(TypeError, match="int64"):
        p.access([a, a], np.array([1, 0]))
    with pytest.raises(ValueError, match="shape"):
        p.access(np.array([[a, a]]), np.array([True, False]))


def test_bad_page_sizes_and_settings():
    k = ppsize.Kernel("16K", "8M")
    with pytest.raises(ValueError, match="4K"):
        k.spawn("4K")
    with pytest.raises(ValueError, match="48K"):
        k.spawn("48K")
    with pytest.raises(ValueError, match="'huge'"):
        k.spawn("16K", "huge")
    p = k.spawn("16K")
    with pytest.raises(ValueError, match="4K"):
        p.exec("4K")
    with pytest.raises(ValueError, match="'flat'"):
        p.exec(pgtable="flat")
    with pytest.raises(ValueError, match="8192"):
        ppsize.Kernel("8K", "8M")
    with pytest.raises(ValueError, match="'sometimes'"):
        ppsize.Kernel("4K", "8M", thp="sometimes")
    with pytest.raises(ValueError, match="'sometimes'"):
        k.set_thp("sometimes")
    with pytest.raises(ValueError, match="'32K'"):
        k.set_thp(mthp={"32K": "always"})           # 16K kernel: anon sizes start at 64K
    with pytest.raises(ValueError, match="'often'"):
        k.set_thp(mthp={"64K": "often"})
    with pytest.raises(ValueError, match="'rwz'"):
        p.mmap("16K", prot="rwz")
    a = p.mmap("16K")
    with pytest.raises(ValueError, match="'freeze'"):
        p.madvise(a, "16K", "freeze")
    with pytest.raises(TypeError):
        p.madvise(a, "16K", 4.0)
    with pytest.raises(ValueError):
        ppsize.Kernel("4K", "8M", geometry="arm64-16k-48")


def test_exited_process_raises():
    k = ppsize.Kernel("4K", "8M")
    p = k.spawn()
    a = p.mmap("16K")
    p.exit()
    for call in (lambda: p.access([a]), lambda: p.mmap("16K"), lambda: p.munmap(a, "16K"),
                 lambda: p.mprotect(a, "16K", "r"), lambda: p.madvise(a, "16K", "dontneed"),
                 lambda: p.mremap(a, "16K", "32K", "maymove"), p.fork, p.exec, p.exit):
        with pytest.raises(ProcessLookupError, match=str(p.pid)):
            call()
