"""Phase 3 of ``ppsize compare``: one configuration (a kernel and process page size)
run on a scan and a workload (:func:`run_config`, a pure function of its arguments:
the same input gives the same figures, so runs can be spread over workers)."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .._validate import as_choice
from ..filepolicy import FILE_POLICIES
from ..units import fmt_size, parse_size
from .progress import NO_PROGRESS
from .result import ConfigResult, TranslationResult
from .scan import ScanResult
from .workload import STEADY_ACCESSES, Workload, steady_stream

__all__ = ["Config", "CONFIGS", "config", "memory_for", "run_config", "kernel_for", "WorkloadFaultError",
           "DEFAULT_CPU", "steady_state"]

DEFAULT_CPU = "neoverse-n1"     # the translation model of every configuration (--cpu): the
                                # server sibling of the A76 (Ampere Altra, Graviton 2)


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    kernel_page: int
    proc_page: int = 0            # 0: the chosen processes run with the kernel's page
    pgtable: str = "emulated"

    @property
    def per_process(self) -> bool:
        return bool(self.proc_page)


CONFIGS = (
    Config("4K", "4K kernel", 4096),
    Config("16K", "16K kernel", 16384),
    Config("64K", "64K kernel", 65536),
    Config("4K+16K-emulated", "4K kernel, 16K procs, emulated", 4096, 16384, "emulated"),
    Config("4K+16K-native", "4K kernel, 16K procs, native", 4096, 16384, "native"),
    Config("4K+64K-emulated", "4K kernel, 64K procs, emulated", 4096, 65536, "emulated"),
    Config("4K+64K-native", "4K kernel, 64K procs, native", 4096, 65536, "native"),
)
_BY_KEY = {c.key: c for c in CONFIGS}


def config(key) -> Config:
    """The Config of a key of :data:`CONFIGS`."""
    return _BY_KEY[as_choice(key, _BY_KEY, "configuration")]


_READ_CHUNK = 4096         # files per read_all call (progress updates between)


def memory_for(scan: ScanResult, workload: Workload) -> int:
    """Kernel memory big enough for the whole tree on a 64K kernel: 1.25 x the
    64K-rounded page cache (the largest of every configuration), plus the
    workload's anon (64K-rounded, every region fully touched as a bound) and 256M,
    rounded up to 256M. The same memory for every configuration."""
    anon = sum(-(-m.length // 65536) * 65536 for p in workload.procs for m in p.mappings if m.file < 0)
    need = scan.cache_bytes(65536) * 5 // 4 + anon + (256 << 20)
    return -(-need // (256 << 20)) * (256 << 20)


class WorkloadFaultError(RuntimeError):
    """A workload access the model answered with SIGSEGV or SIGBUS: every touch lies
    inside a mapping that allows it, so the model could not run this workload in
    this configuration (the figures would be wrong, so none are given)."""


def run_config(cfg, scan: ScanResult, workload: Workload, memory=None, thp="madvise",
               policy="drop-all", check=False, progress=None, base=0.0, span=1.0,
               cpu=DEFAULT_CPU, steady=STEADY_ACCESSES, recordings=()) -> ConfigResult:
    """Build a Kernel for ``cfg`` (a Config or its key), create every scanned file,
    read each once in full (read(2) through the page cache, in chunks), run the
    workload, then read once more in full every file a min-order transition
    dropped. ``policy``: the kernel's file policy (``Kernel.file_policy``: how a
    file gets folios of at least a larger process page); with "large-unless-eof"
    the per-process configurations use their process page as
    ``large_folio_size`` from the start (the files are read before the processes
    exist). ``check``: Kernel.check() at the end. ``progress`` spans [base, base +
    span] of the bar. ``cpu``: the translation model every access goes through
    (``Kernel(cpu=)``; None: none); after the memory figures are taken, each process
    runs ``steady`` accesses of its steady-state stream (:func:`steady_state`) for
    the translation figures. Raises :class:`WorkloadFaultError` if an access of the
    workload faulted. ``recordings``: loaded recorded workloads (``compare --workload``)
    replayed into the same kernel after the synthetic mix (``compare.recorded``); their
    processes are in the rows and their ReplayResults in ``replays``."""
    cfg = cfg if isinstance(cfg, Config) else config(cfg)
    as_choice(policy, FILE_POLICIES, "file policy")
    memory = memory_for(scan, workload) if memory is None else parse_size(memory, "memory")
    bar = _Bar(progress or NO_PROGRESS, cfg.label, base, span)
    secs = {}
    t = time.perf_counter()
    k = kernel_for(cfg, memory, thp, policy, cpu)
    secs["kernel"] = time.perf_counter() - t        # the boot: the same at any file count
    t = time.perf_counter()
    files = _create(k, scan, bar)
    secs["create"] = time.perf_counter() - t
    t = time.perf_counter()
    _read_all(k, files, bar)
    secs["read"] = time.perf_counter() - t
    cached_after_read = k.meminfo()["Cached"]
    read0 = k.pagecache.stats()["pages_read"]
    t = time.perf_counter()
    procs, outcomes, addrs = _run_workload(k, cfg, files, workload, bar)
    dropped = _reread_dropped(k, files)
    replays, rec_rows, seeded = None, [], 0
    if recordings:
        from .recorded import replay_into
        bar.update("recorded workloads", 0.95)
        rec_rows, _out, replays, seeded = replay_into(k, cfg, recordings)
    secs["workload"] = time.perf_counter() - t
    stats = k.pagecache.stats()
    check_note = None
    if check:
        t = time.perf_counter()
        k.check()
        check_note = "passed"
        secs["check"] = time.perf_counter() - t
    _refuse_faults(cfg, policy, outcomes)
    # the recordings' page cache has no closed form
    expected = None if recordings else _expected_cached(scan, cfg, policy, dropped)
    done = sum(1 for tr in k.transitions if tr.status == "done")
    blocked = sum(1 for tr in k.transitions if tr.status == "blocked")
    res = ConfigResult(cfg, k.meminfo(), cached_after_read, done, int(stats["pages_read"] - read0 - seeded),
                       [_proc_row(spec, p) for spec, p in procs] + rec_rows,
                       _outcome_names(sorted(outcomes.items())),
                       secs, None if expected is None else expected >> 10, oom=k.oom_count,
                       check=check_note, alloc_fail=stats["alloc_fail"], blocked=blocked,
                       policy=policy, replays=replays)
    if cpu is not None and steady:
        t = time.perf_counter()
        bar.update("steady state", 0.97)
        res.translation = steady_state(k, procs, addrs, workload.seed, steady, cpu, workload=workload)
        secs["steady"] = time.perf_counter() - t
    bar.update("done", 1.0, force=True)
    return res


def steady_state(k, procs, addrs, seed, n, cpu_name=None, workload=None) -> TranslationResult:
    """The translation figures of the process mix in steady state: each process, in
    turn, runs its :func:`~.workload.steady_stream` (n accesses over what it touched)
    twice through its CPU's TLB, and the second pass is counted (the first warms the
    TLBs and re-faults what a transition unmapped: the counted pass is the steady
    state of a process running after another; :meth:`Process.access_steady`, which
    takes the rest of the second pass from the first once the TLB state repeats).
    Returns the counters summed over the
    processes with the preset's cycle estimate. ``workload``: the Workload of ``procs``
    (seed ``seed``), whose streams are kept across configurations (:meth:`Workload.steady`)."""
    from ..tlb import NR_COUNTERS
    total = np.zeros(NR_COUNTERS, np.int64)
    faults = 0
    for j, ((spec, p), base) in enumerate(zip(procs, addrs)):
        mapping, offset, insn = (workload.steady(j, n) if workload is not None
                                 else steady_stream(spec, seed, j, n))
        if not mapping.size:
            continue
        out, counted = p.access_steady(base[mapping] + offset, insn=insn)
        total += counted
        faults += int((out != 0).sum())
    tlb = k.cpus[0]
    return TranslationResult(cpu_name or tlb.cpu, k._cpus.stats(total), dict(tlb.latencies),
                             faults, list(tlb.assumptions))


class _Bar:
    """A configuration's share [base, base + span] of the progress bar."""

    def __init__(self, progress, label, base, span):
        self.progress, self.label, self.base, self.span = progress, label, base, span

    def update(self, what, fraction, force=False):
        self.progress.update(f"{self.label}: {what}", self.base + self.span * fraction, force=force)


def kernel_for(cfg, memory, thp, policy, cpu=None):
    """The empty Kernel of a configuration (page, memory, THP, file policy, CPU)."""
    from ..kernel import Kernel
    kw = {} if cpu is None else {"cpu": cpu}
    if policy != "drop-all":
        kw["file_policy"] = policy
        if policy == "large-unless-eof" and cfg.per_process:
            kw["large_folio_size"] = cfg.proc_page
    return Kernel(cfg.kernel_page, memory=memory, thp=thp, **kw)


def _boot(cfg, scan, memory, thp, policy, bar, cpu=None):
    """The configuration's Kernel and the ids of its files (:func:`_create`)."""
    k = kernel_for(cfg, memory, thp, policy, cpu)
    return k, _create(k, scan, bar)


def _create(k, scan, bar):
    """The ids of the Kernel's files, one per scanned inode (file id = the scan's
    index: the named ones with their paths, the others ``#<index>``), created in one
    batch."""
    bar.update(f"creating {scan.nr_files:,} files", 0.0)
    return k.create_files(scan.sizes, scan.names)


def _read_all(k, files, bar):
    """Every file read once in full (read(2) with readahead), in chunks of ids."""
    n = len(files)
    for a in range(0, n, _READ_CHUNK):
        k.pagecache.read_all(files[a:a + _READ_CHUNK])
        bar.update(f"reading files {a:,}/{n:,}", 0.2 + 0.5 * a / max(n, 1))


def _run_workload(k, cfg, files, workload, bar):
    """Spawn each process (the chosen ones with the large page in per-process
    configurations), map its files and anonymous regions, touch the offsets.
    Returns [(ProcSpec, Process)], the access outcomes counted and, per process, the
    address of each mapping (uint64 array)."""
    counts = np.zeros(256, np.int64)          # per outcome code (uint8)
    procs, addrs = [], []
    for j, spec in enumerate(workload.procs):
        bar.update(f"process {spec.name}", 0.7 + 0.25 * j / len(workload.procs))
        if spec.chosen and cfg.per_process:
            p = k.spawn(page_size=cfg.proc_page, pgtable=cfg.pgtable, name=spec.name)
        else:
            p = k.spawn(name=spec.name)
        procs.append((spec, p))
        at = []
        for m in spec.mappings:
            if m.file >= 0:
                addr = p.mmap(m.length, file=k.pagecache.file_of(files[m.file]), prot=m.prot)
                out = p.access(m.offsets + np.uint64(addr), write=False)
            else:
                addr = p.mmap(m.length, prot="rw", stack=m.kind == "stack")
                out = p.access(m.offsets + np.uint64(addr), write=True)
            at.append(addr)
            counts += np.bincount(out, minlength=256)
        addrs.append(np.array(at, dtype=np.uint64))
    outcomes = Counter({int(c): int(counts[c]) for c in np.flatnonzero(counts)})
    return procs, outcomes, addrs


def _reread_dropped(k, files) -> list:
    """The premise "every file read once in full" again: read what the min-order
    transitions dropped. Returns the dropped files' indices."""
    dropped = sorted({k.pagecache.file(tr.file).id for tr in k.transitions if tr.status == "done"})
    k.pagecache.read_all([files[i] for i in dropped])
    return dropped


def _outcome_names(counts) -> dict:
    from ..process import Outcome           # the compiled kernels load with the first run
    return {Outcome(c).name.lower(): v for c, v in counts}


def _refuse_faults(cfg, policy, outcomes):
    named = _outcome_names(outcomes.items())
    bad = {name: v for name, v in named.items() if name in ("segv_maperr", "segv_accerr", "sigbus")}
    if bad:
        raise WorkloadFaultError(f"{cfg.key}: the workload faulted: {bad} (policy {policy}); the "
                                 f"model cannot run it in this configuration")


def _expected_cached(scan, cfg, policy, dropped):
    """The rounding identity's prediction of Cached (bytes), or None where the
    policy chooses folio sizes of its own (no closed form)."""
    if policy not in ("drop-all", "range"):
        return None
    page = cfg.kernel_page
    expected = scan.cache_bytes(page)
    if cfg.per_process and dropped:
        big = cfg.proc_page
        d = scan.sizes[np.array(dropped, dtype=np.int64)]
        expected += int(((d + big - 1) // big * big).sum() - ((d + page - 1) // page * page).sum())
    return expected


def _proc_row(spec, p) -> dict:
    st = p.status()
    return {"name": spec.name, "chosen": spec.chosen, "page": fmt_size(p.page_size),
            "pgtable": p.pgtable, "RssAnon": st["RssAnon"], "RssFile": st["RssFile"],
            "VmPTE": st["VmPTE"], "minflt": st["minflt"], "majflt": st["majflt"]}
