"""The model against the running kernel (opt-in: pytest --live, as root).

Each scenario runs the same touch pattern through tests/live/touch.c on this machine
(x86-64, 4K pages) and through ppsize with the x86_64-4l geometry and the same THP
settings, and compares every report: minflt, RssAnon and VmPTE changes, the region's
AnonHugePages, zero-page pages and folio orders.
"""
import numpy as np
import pytest

import live_kernel as lk
import ppsize
from ppsize.units import parse_size

pytestmark = pytest.mark.live

REGION = 0x7F0004000000          # 64M into a 1G-aligned area
WARM = 0x7F0000000000            # same PMD table, so deltas count the region's own tables
K = 4096


def _n(v):
    return parse_size(v) if isinstance(v, str) else int(v)


class ModelRun:
    """touch.c's spec executed on a ppsize Kernel; reports shaped like the oracle's."""

    def __init__(self, spec, top, sizes):
        self.k = ppsize.Kernel("4K", "2G", geometry="x86_64-4l", thp=top, mthp=sizes)
        self.spec = spec
        length = _n(spec["len"])
        self.base = REGION + _n(spec.get("misalign", 0))
        self.length = length
        p = self.k.spawn(name="touch")
        p.mmap(K, addr=WARM, fixed=True)
        p.access([WARM], write=True)     # anon, so fork copies it (and the upper tables)
        p.mmap(length, addr=self.base, fixed=True)
        if spec.get("advice", "none") != "none":
            p.madvise(self.base, length, spec["advice"])
        self.reports = []
        self._last_flt = {}
        self._report(p, "parent", "start")
        self._ops(p, "parent", spec["ops"])

    def _ops(self, p, who, ops):
        b = self.base
        for op in ops:
            if op == "report" or op[0] == "report":
                self._report(p, who, op[1] if op != "report" and len(op) > 1 else "")
            elif op[0] == "touch":
                p.access([b + _n(op[1])], write=op[2] == "w")
            elif op[0] == "range":
                p.access(np.arange(b + _n(op[1]), b + _n(op[2]), _n(op[3]), dtype=np.uint64),
                         write=op[4] == "w")
            elif op[0] == "dontneed":
                p.madvise(b + _n(op[1]), _n(op[2]), "dontneed")
            elif op[0] == "madvise":
                p.madvise(b + _n(op[1]), _n(op[2]), op[3])
            elif op[0] == "munmap":
                p.munmap(b + _n(op[1]), _n(op[2]))
            elif op[0] == "mprotect":
                p.mprotect(b + _n(op[1]), _n(op[2]), op[3])
            elif op[0] == "fork":
                child = p.fork()
                self._report(child, "child", "child-start")
                self._ops(child, "child", op[1])
                child.exit()
            else:
                raise ValueError(f"unknown op {op!r}")
            self.k.check()

    def _report(self, p, who, label):
        st = p.status()
        flt = st["minflt"] - self._last_flt.get(p.pid, 0)
        self._last_flt[p.pid] = st["minflt"]
        vas = np.arange(self.base, self.base + self.length, K, dtype=np.uint64)
        tr = p.mm.pt.translate(vas)
        ok = tr.status == 0
        pfns = (tr.pa[ok] >> np.uint64(12)).astype(np.int64)
        core = self.k.core
        zero = (pfns >= core.zero_pfn) & (pfns < core.zero_pfn + (1 << core.zero_order))
        folios = {}
        for pfn in np.unique(core.folios.head_of(pfns[~zero])):
            o = str(core.folios.order(int(pfn)))
            folios[o] = folios.get(o, 0) + 1
        huge_zero = int(((tr.level[ok] == 2) & zero).sum())
        region = [s for s in p.smaps() if s["start"] < self.base + self.length and s["end"] > self.base]
        self.reports.append({
            "who": who, "label": label, "minflt": flt, "RssAnon": st["RssAnon"], "VmPTE": st["VmPTE"],
            "AnonHugePages": sum(s["AnonHugePages"] for s in region),
            "zero_pages": int(zero.sum()) - huge_zero, "huge_zero_pages": huge_zero, "folios": folios,
        })


def compare(spec, top, sizes):
    all_sizes = {s: "never" for s in lk.supported_sizes()}
    all_sizes.update(sizes)
    with lk.thp_settings(top=top, sizes=all_sizes):
        live = lk.run(spec)
    model = ModelRun(spec, top, {s: v for s, v in all_sizes.items()}).reports
    assert [(r["who"], r["label"]) for r in live] == [(r["who"], r["label"]) for r in model]
    prev = {}
    for lv, md in zip(live, model):
        where = f"{lv['who']} report {lv['label']!r}"
        if lv["label"] not in ("start", "child-start"):
            assert md["minflt"] == lv["minflt"], f"{where}: minflt"
            for key in ("RssAnon", "VmPTE"):
                assert md[key] - prev[md["who"]][0][key] == lv[key] - prev[lv["who"]][1][key], \
                    f"{where}: {key} change"
            assert md["AnonHugePages"] == lv["region"]["AnonHugePages"], f"{where}: AnonHugePages"
            if lv.get("kpageflags"):
                assert md["folios"] == {str(k): v for k, v in lv["folios"].items()}, f"{where}: folios"
                assert md["zero_pages"] == lv["zero_pages"], f"{where}: zero pages"
                assert md["huge_zero_pages"] == lv["huge_zero_pages"], f"{where}: huge zero pages"
        prev[lv["who"]] = (md, lv)


SCENARIOS = {
    "4k-writes": ("never", {}, {"len": "1M", "align": "2M", "ops": [("range", 0, "1M", "4K", "w"), "report"]}),
    "zero-then-write": ("never", {}, {"len": "1M", "align": "2M", "ops": [
        ("range", 0, "1M", "4K", "r"), "report", ("range", 0, "1M", "4K", "w"), "report"]}),
    "mthp-64k": ("never", {"64K": "always"}, {"len": "1M", "align": "2M", "ops": [
        ("range", 0, "1M", "64K", "w"), "report"]}),
    "mthp-64k-unaligned": ("never", {"64K": "always"}, {"len": "128K", "align": "2M", "misalign": "68K",
                                                          "ops": [("range", 0, "128K", "4K", "w"), "report"]}),
    "mthp-fallback-orders": ("never", {"16K": "always", "64K": "always"}, {"len": "64K", "align": "2M", "ops": [
        ("touch", 0, "w"), "report", ("dontneed", "16K", "16K"), "report", ("touch", "20K", "w"), "report",
        ("dontneed", "32K", "4K"), ("touch", "32K", "w"), "report"]}),
    "mthp-policy-inherit-madvise": ("madvise", {"64K": "inherit"}, {
        "len": "1M", "align": "2M", "advice": "hugepage", "ops": [("range", 0, "1M", "64K", "w"), "report"]}),
    "mthp-nohugepage": ("always", {"64K": "always"}, {
        "len": "1M", "align": "2M", "advice": "nohugepage", "ops": [("range", 0, "1M", "64K", "w"), "report"]}),
    "pmd-thp": ("madvise", {"2M": "inherit"}, {"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
        ("touch", 0, "w"), "report", ("range", 0, "2M", "4K", "w"), "report"]}),
    "pmd-thp-unaligned": ("madvise", {"2M": "inherit"}, {"len": "2M", "align": "2M", "misalign": "4K",
                                                          "advice": "hugepage",
                                                          "ops": [("range", 0, "2M", "4K", "w"), "report"]}),
    "huge-zero-then-write": ("madvise", {"2M": "inherit"}, {"len": "2M", "align": "2M", "advice": "hugepage",
                                                             "ops": [("touch", 0, "r"), "report", ("touch", 0, "w"),
                                                                     "report", ("dontneed", 0, "2M"), "report"]}),
    "thp-partial-unmap": ("madvise", {"2M": "inherit"}, {"len": "2M", "align": "2M", "advice": "hugepage",
                                                          "ops": [("touch", 0, "w"), "report", ("munmap", 0, "4K"),
                                                                  "report", ("dontneed", "1M", "1M"), "report"]}),
    "thp-mprotect-split": ("madvise", {"2M": "inherit"}, {"len": "2M", "align": "2M", "advice": "hugepage",
                                                           "ops": [("touch", 0, "w"), "report",
                                                                   ("mprotect", 0, "1M", "r"), "report"]}),
    "fork-cow-4k": ("never", {}, {"len": "64K", "align": "2M", "ops": [
        ("range", 0, "64K", "4K", "w"), "report",
        ("fork", [("touch", 0, "w"), ("report", "child-write")]), ("touch", 0, "w"), "report"]}),
    "fork-cow-64k-folio": ("never", {"64K": "always"}, {"len": "64K", "align": "2M", "ops": [
        ("touch", 0, "w"), "report", ("fork", [("touch", "8K", "w"), ("report", "child-write")]), "report"]}),
    "fork-thp": ("madvise", {"2M": "inherit"}, {"len": "2M", "align": "2M", "advice": "hugepage", "ops": [
        ("touch", 0, "w"), "report", ("fork", [("touch", "8K", "w"), ("report", "child-write")]),
        ("touch", "8K", "w"), "report"]}),
    "fork-zero-only": ("never", {}, {"len": "64K", "align": "2M", "ops": [
        ("range", 0, "64K", "4K", "r"), "report", ("fork", [("touch", 0, "r"), ("report", "child-read")])]}),
}


@pytest.fixture(scope="module", autouse=True)
def oracle():
    reason = lk.unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_model_matches_running_kernel(name):
    top, sizes, spec = SCENARIOS[name]
    compare(spec, top, sizes)
