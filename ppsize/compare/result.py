"""Phase 4 of ``ppsize compare``: the figures of each configuration
(:class:`ConfigResult`) and of the whole comparison (:class:`CompareResult`: the
table, the summary and the ``--json`` document)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..report import table as _table
from ..tlb import estimate_cycles
from ..units import fmt_size
from .scan import ScanResult
from .workload import TOUCH, Workload

def _meminfo(field, what):
    return property(lambda self: self.meminfo[field], doc=f"{field} (kB): {what}")


@dataclass
class TranslationResult:
    """The steady-state phase's translation figures of one configuration: the TLB
    counters summed over the processes (``ppsize.tlb.stats_dict`` format) and the
    cycle estimate from the preset's documented latencies."""
    cpu: str
    stats: dict
    latencies: dict
    faults: int = 0               # counted accesses that did not hit (0 in a steady state)
    assumptions: list = field(default_factory=list)   # preset values assumed, not sourced

    def _levels(self, prefix):
        return [v for k, v in self.stats.items() if k.startswith(prefix) and "accesses" in v]

    @property
    def accesses(self) -> int:
        return sum(v["accesses"] for v in self._levels("l1"))

    def per_1000(self, n) -> float:
        return 1000.0 * n / self.accesses if self.accesses else 0.0

    @property
    def l1_misses(self) -> int:
        return sum(v["misses"] for v in self._levels("l1"))

    @property
    def l2_misses(self) -> int:
        return sum(v["misses"] for v in self._levels("l2"))

    @property
    def cycles(self):
        """Estimated translation cycles per access (None: a latency is not sourced)."""
        return estimate_cycles(self.stats, self.latencies)[0]

    def as_dict(self) -> dict:
        w = self.stats["walk"]
        cyc, missing = estimate_cycles(self.stats, self.latencies)
        return {"cpu": self.cpu, "accesses": self.accesses, "faults": self.faults,
                "per_1000": {"l1_misses": round(self.per_1000(self.l1_misses), 3),
                             "l2_misses": round(self.per_1000(self.l2_misses), 3),
                             "walks": round(self.per_1000(w["walks"]), 3),
                             "walk_refs": round(self.per_1000(w["refs"]), 3)},
                "cycles_per_access": None if cyc is None else round(cyc, 4),
                "latencies_missing": missing or [], "latencies": self.latencies,
                "assumptions": self.assumptions, "counters": self.stats}


@dataclass
class ConfigResult:
    config: Config
    meminfo: dict                 # kB, at the end
    cached_after_read_kB: int     # Cached once every file was read, before the processes
    transitions: int              # min-order transitions (files whose cache was dropped)
    pages_reread: int             # kernel pages read again from disk after the first full read
    procs: list                   # per process: name, page size, pgtable, status()
    outcomes: dict                # access outcomes summed over processes
    seconds: dict
    expected_cached_kB: int       # the rounding identity's prediction (None: no closed form)
    oom: int = 0
    check: str = None             # Kernel.check(): None (not run), "passed", "skipped: why"
    alloc_fail: int = 0           # page-cache folio allocations that failed (fell back)
    blocked: int = 0              # transitions blocked (pinned, mlocked, dirty... folios)
    policy: str = "drop-all"      # the kernel's file policy
    translation: TranslationResult = None   # the steady-state phase (None: no cpu)
    replays: list = None          # compare --workload: a recording.replay.ReplayResult each

    cached_kB = _meminfo("Cached", "the page cache")
    anon_kB = _meminfo("AnonPages", "anonymous memory")
    pagetables_kB = _meminfo("PageTables", "every process's page tables")
    xarray_kB = _meminfo("XArrayNodes", "the page cache's radix_tree_node slab")

    @property
    def total_kB(self) -> int:
        return self.cached_kB + self.anon_kB + self.pagetables_kB + self.xarray_kB

    @property
    def reread_kB(self) -> int:
        return self.pages_reread * (self.config.kernel_page >> 10)

    def as_dict(self) -> dict:
        c = self.config
        return {"key": c.key, "label": c.label, "kernel_page": fmt_size(c.kernel_page),
                "process_page": fmt_size(c.proc_page or c.kernel_page),
                "pgtable": c.pgtable if c.per_process else "kernel",
                "page_cache_kB": self.cached_kB, "anon_kB": self.anon_kB,
                "page_tables_kB": self.pagetables_kB, "xarray_kB": self.xarray_kB,
                "total_kB": self.total_kB, "cached_after_read_kB": self.cached_after_read_kB,
                "expected_page_cache_kB": self.expected_cached_kB,
                "transitions": self.transitions, "pages_reread": self.pages_reread,
                "reread_kB": self.reread_kB, "oom": self.oom, "alloc_fail": self.alloc_fail,
                "transitions_blocked": self.blocked, "file_policy": self.policy, "meminfo": dict(self.meminfo),
                "outcomes": dict(self.outcomes), "processes": self.procs, "check": self.check,
                "translation": self.translation.as_dict() if self.translation else None,
                **({"recorded": [r.as_dict() for r in self.replays]} if self.replays else {}),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def _mib(kb) -> str:
    return f"{kb / 1024:,.1f}"


@dataclass
class CompareResult:
    scan: ScanResult
    workload: Workload
    memory: int
    thp: str
    results: list
    seconds: float
    policy: str = "drop-all"

    def __getitem__(self, key) -> ConfigResult:
        for r in self.results:
            if r.config.key == key:
                return r
        raise KeyError(key)

    @property
    def baseline(self):
        for r in self.results:
            if r.config.key == "4K":
                return r
        return self.results[0] if self.results else None

    def ratio(self, r) -> float:
        return r.total_kB / self.baseline.total_kB if self.baseline.total_kB else float("nan")

    def table(self) -> str:
        """The memory columns, then (with a translation model) per 1000 accesses of the
        steady state: L1 and L2 TLB misses, walks, walk memory references, and the
        estimated translation cycles per access ("-": a latency is not sourced)."""
        tlb = any(r.translation for r in self.results)
        rows = []
        for r in self.results:
            row = [r.config.label, _mib(r.cached_kB), _mib(r.anon_kB), _mib(r.pagetables_kB),
                   _mib(r.xarray_kB), _mib(r.total_kB), f"{self.ratio(r):.3f}",
                   r.transitions, _mib(r.reread_kB)]
            if tlb:
                t = r.translation
                if t is None:
                    row += ["-"] * 5
                else:
                    cyc = t.cycles
                    row += [f"{t.per_1000(t.l1_misses):.1f}", f"{t.per_1000(t.l2_misses):.2f}",
                            f"{t.per_1000(t.stats['walk']['walks']):.2f}",
                            f"{t.per_1000(t.stats['walk']['refs']):.2f}",
                            "-" if cyc is None else f"{cyc:.2f}"]
            rows.append(row)
        head = ["configuration", "page cache", "anon", "page tables", "XArray", "total",
                "ratio", "transitions", "re-read"]
        if tlb:
            head += ["L1 miss/1K", "L2 miss/1K", "walks/1K", "refs/1K", "cyc/acc"]
        return _table(head, rows)

    def summary(self) -> str:
        s, w = self.scan, self.workload
        rec = self.recorded_lines()
        if s is None:
            return "\n".join(rec + [f"THP {self.thp}; file policy {self.policy}; model memory "
                                    f"{fmt_size(self.memory)}"])
        skipped = ", ".join(f"{k} {v:,}" for k, v in sorted(s.skipped.items())) or "none"
        touched = sum(m.offsets.size for p in w.procs for m in p.mappings if m.file >= 0) * TOUCH
        return "\n".join([
            f"trees: {', '.join(s.trees)}: {s.nr_files:,} files, {s.total_bytes / (1 << 20):,.1f} MiB "
            f"(st_size), {s.dirs:,} directories, scanned in {s.seconds:.1f} s; skipped: {skipped}",
            f"workload (seed {w.seed}): {len(w.procs)} processes, chosen {w.chosen or 'none'}; "
            f"{len(w.mapped_files()):,} files mapped ({touched >> 20:,} MiB touched), "
            f"anon {sum(p.touched_anon_bytes for p in w.procs) >> 20:,} MiB written "
            f"of {w.anon_bytes >> 20:,} MiB mapped; THP {self.thp}; file policy {self.policy}; "
            f"model memory {fmt_size(self.memory)}",
        ] + rec)

    def recorded_lines(self) -> list:
        """One line per recorded workload (compare --workload), PARTIAL ones flagged,
        and the layout of each configuration that moved it."""
        first = next((r for r in self.results if r.replays), None)
        if first is None:
            return []
        out = []
        for rep in first.replays:
            out.append(f"recorded workload {rep.path} ({rep.kind}): {len(rep.procs)} processes"
                       + ("; PARTIAL: the recording is incomplete" if rep.partial else ""))
        seen = set()
        for r in self.results:
            for rep in r.replays or ():
                page = r.config.proc_page or r.config.kernel_page
                if "kept" not in rep.layout and (rep.path, page) not in seen:
                    seen.add((rep.path, page))
                    out.append(f"  {rep.path}, {page >> 10}K pages: {rep.layout}")
        return out

    def as_dict(self) -> dict:
        base = self.baseline
        return {"trees": list(self.scan.trees) if self.scan else [],
                "scan": self.scan.as_dict() if self.scan else None,
                "workload": self.workload.as_dict() if self.workload else None, "memory": self.memory, "thp": self.thp,
                "file_policy": self.policy,
                "units": "kB (1024 bytes)", "baseline": base.config.key if base else None,
                "configs": [dict(r.as_dict(), ratio=round(self.ratio(r), 6)) for r in self.results],
                "seconds": round(self.seconds, 3)}
