"""``ppsize compare``: the memory one workload needs on a 4K, a 16K and a 64K kernel,
and on a 4K kernel whose chosen processes run with 16K or 64K pages (emulated or
native page tables), side by side.

The workload, needing nothing downloaded:

* **files**: every regular file of one or more trees on this machine (default /usr
  and /etc), counted once per inode, ``st_size`` as its size, each read once in full
  through the page cache (read(2) with readahead). Only sizes are read from the
  disk; the contents are never opened.
* **processes**: a fixed, seeded mix (:func:`make_workload`). Each maps an executable,
  a few shared libraries (the same core libraries in every process, as libc) and
  some data files from the scanned trees, touches a seeded part of their pages (reads)
  and writes a seeded part of a few anonymous regions. The same byte offsets are
  touched under every configuration: only the page size changes.
* **chosen processes** (default: every other one, indices 1, 3, 5, ...) run with the
  large page size in the per-process configurations; the others, and everything in
  the plain-kernel configurations, run with the kernel's page size.

A chosen process mapping a file whose cache holds smaller folios raises the file's
min folio order (the thread's drop-all transition, ``Kernel.file_min_order``): its
cache is dropped and re-read, at the new order, by the faults and, at the end, by
reading those files once more in full, so every file is fully cached in every
configuration. Hence, exactly::

    page cache of an N-byte-page kernel = sum(round_up(st_size, N))
    page cache of a 4K kernel with P-byte processes =
        sum over files a P process mapped of round_up(st_size, P)
        + sum over the others of round_up(st_size, 4K)

    c = compare(["/etc"], seed=0)
    print(c.table())
    c.as_dict()["configs"][0]["total_kB"]

The phases, one module each, every one taking the previous one's result:
:mod:`.scan` (:func:`scan_trees` -> :class:`ScanResult`), :mod:`.workload`
(:func:`make_workload` -> :class:`Workload`), :mod:`.run` (:func:`run_config`: one
configuration -> :class:`ConfigResult`) and :mod:`.result` (:class:`CompareResult`).
A scan is done once and can serve any number of runs (``compare(scan=...)``, or
:func:`run_config` directly, e.g. one task per configuration)."""
from __future__ import annotations

import gc
import os
import time
from concurrent.futures import ThreadPoolExecutor

from .._core import framemem
from .._validate import as_choice
from ..filepolicy import FILE_POLICIES
from ..units import fmt_size, parse_size
from .progress import NO_PROGRESS, Progress, SharedProgress
from .result import CompareResult, ConfigResult, TranslationResult
from .run import CONFIGS, DEFAULT_CPU, Config, WorkloadFaultError, config, memory_for, run_config, steady_state
from .scan import ERROR_REASONS, SKIP_REASONS, ScanResult, scan_trees, usable_cpus
from .workload import (MAX_PROCESSES, STEADY_ACCESSES, TOUCH, Mapping, ProcSpec, Workload, check_processes,
                       make_workload, steady_stream)

__all__ = ["scan_trees", "ScanResult", "make_workload", "Workload", "ProcSpec", "CONFIGS",
           "Config", "run_config", "ConfigResult", "compare", "CompareResult", "Progress",
           "DEFAULT_TREES", "FILE_POLICIES", "THP_MODES", "WorkloadFaultError", "config", "memory_for",
           "Mapping", "SKIP_REASONS", "ERROR_REASONS", "TOUCH", "DEFAULT_CPU", "STEADY_ACCESSES",
           "TranslationResult", "steady_state", "steady_stream", "check_processes", "MAX_PROCESSES",
           "workers_for"]

DEFAULT_TREES = ("/usr", "/etc")
THP_MODES = ("always", "madvise", "never")          # transparent_hugepage/enabled


HOST_BYTES_PER_FRAME = 100        # measured: ~430 MiB of RSS for 4M model frames of 4K
PARALLEL_HOST_BYTES = 1 << 30     # two configurations run at once while both fit in this


def _pool_bytes(scan, workload, ram=None) -> int:
    """The host memory compare lets framemem's pool keep for the next configuration:
    about one 4K configuration's Kernel (HOST_BYTES_PER_FRAME per frame of its page
    cache and anon), at most a quarter of the RAM."""
    keep = (scan.cache_bytes(4096) + workload.anon_bytes) // 4096 * HOST_BYTES_PER_FRAME
    ram = host_ram() if ram is None else ram
    return min(keep, ram // 4) if ram > 0 else keep


def workers_for(scan, workload, ram=None) -> int:
    """How many configurations :func:`compare` runs at once (threads; the compiled kernels
    run without the GIL): 2 on a machine with two CPUs or more, while two Kernels' host
    memory fits in :data:`PARALLEL_HOST_BYTES` and a quarter of the RAM (each bounded by
    HOST_BYTES_PER_FRAME per 4K frame of the largest configuration's page cache and anon:
    the deferred boot costs no host memory for frames never handed out); else 1. The
    figures are the same either way (each run is a pure function of its inputs)."""
    if usable_cpus() < 2:
        return 1
    frames = (scan.cache_bytes(65536) + workload.anon_bytes) // 4096
    need = 2 * frames * HOST_BYTES_PER_FRAME
    ram = host_ram() if ram is None else ram
    return 2 if need <= PARALLEL_HOST_BYTES and (ram <= 0 or need <= ram // 4) else 1


def _cgroup_limits(root="/", proc_cgroup="/proc/self/cgroup"):
    """The memory limits of this process's cgroups and their ancestors, in bytes:
    cgroup v2 ``memory.max`` and v1 ``memory.limit_in_bytes`` ("max" and v1's
    near-2**63 "no limit" are left out). A container sees its host's RAM in
    sysconf and /proc/meminfo; only its cgroup says what it may use."""
    limits = []
    try:
        lines = open(proc_cgroup).read().splitlines()
    except OSError:
        return limits
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, name = "sys/fs/cgroup", "memory.max"                   # v2
        elif "memory" in controllers.split(","):
            base, name = "sys/fs/cgroup/memory", "memory.limit_in_bytes"  # v1
        else:
            continue
        parts = [q for q in path.split("/") if q]
        for depth in range(len(parts), -1, -1):
            f = os.path.join(root, base, *parts[:depth], name)
            try:
                text = open(f).read().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < 1 << 62:
                limits.append(int(text))
    return limits


def host_ram() -> int:
    """Bytes of RAM this process may use: the physical memory, or less if a cgroup
    (a container, a CI job) limits it. 0 if it cannot be told."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 0
    limits = [x for x in [ram] + _cgroup_limits() if x > 0]
    return min(limits) if limits else 0


def _check_host_memory(mem):
    """Refuse (ValueError) a model memory whose 4K kernel would need more than
    about half of the RAM this process may use (a huge sparse file, a whole file
    system)."""
    ram = host_ram()
    need = mem // 4096 * HOST_BYTES_PER_FRAME
    if ram > 0 and need > ram // 2:
        raise ValueError(f"the trees need {fmt_size(mem)} of model memory (the 64K kernel's page "
                         f"cache): about {need >> 20:,} MiB of RAM to model, more than half of "
                         f"the {ram >> 20:,} MiB this machine lets it use; choose smaller trees (--tree)")


def compare(trees=DEFAULT_TREES, seed=0, processes=12, chosen=None, configs=None, thp="madvise",
            policy="drop-all", memory=None, cross_mounts=False, check=False, progress=None,
            scan=None, cpu=DEFAULT_CPU, steady=STEADY_ACCESSES, workloads=(), workers=None) -> CompareResult:
    """Scan ``trees``, build the seeded workload, and run it on every configuration
    (default all of :data:`CONFIGS`; keys or Config objects). ``thp``: every
    kernel's transparent_hugepage/enabled; ``policy``: the file policy
    (:data:`FILE_POLICIES`, see :func:`run_config`). ``scan``: reuse a
    :class:`ScanResult`. ``check``: verify every Kernel invariant after each run
    (slow on big trees). ``cpu``: the translation model (a ``ppsize.CPU_PRESETS``
    name or TLB settings; None: none) whose steady-state figures (``steady``
    accesses per process) every row gets. Returns a :class:`CompareResult`; raises
    :class:`WorkloadFaultError` if the model cannot run the workload.

    ``workloads``: recordings (paths or loaded ``ppsize.recording.Workload``) replayed
    under every configuration (``compare.recorded``): after the synthetic mix in the
    same kernel, or, with ``trees`` empty, instead of it (each configuration's kernel
    then holds only the recordings).

    ``workers``: configurations run at once, in threads (default :func:`workers_for`: 2
    when two CPUs and the host memory allow, else 1); the results, in ``configs`` order,
    are the same for any number. One worker on two CPUs or more: framemem's populate
    ahead is on for the runs (a thread faults in the host memory the model fills next)."""
    t0 = time.perf_counter()
    progress = progress or NO_PROGRESS
    as_choice(thp, THP_MODES, "THP setting")
    as_choice(policy, FILE_POLICIES, "file policy")
    check_processes(processes)
    cfgs = [c if isinstance(c, Config) else config(c) for c in (configs or CONFIGS)]
    if cpu is not None:
        from ..cpus import build_tlb
        build_tlb(cpu)                       # a bad preset fails before the scan
    recs = []
    if workloads:
        from .recorded import load_workloads, recorded_memory, run_recorded
        recs = load_workloads(workloads)
        if not trees and scan is None:
            mem = recorded_memory(recs) if memory is None else parse_size(memory, "memory")
            _check_host_memory(mem)
            results = [run_recorded(cfg, recs, memory=mem, thp=thp, policy=policy, cpu=None, check=check)
                       for cfg in cfgs]
            progress.close()
            return CompareResult(None, None, mem, thp, results, time.perf_counter() - t0, policy)
    if scan is None:
        scan = scan_trees(trees, cross_mounts=cross_mounts, progress=progress)
    workload = make_workload(scan, seed=seed, processes=processes, chosen=chosen)
    mem = memory_for(scan, workload) if memory is None else parse_size(memory, "memory")
    if workloads and memory is None:
        mem += recorded_memory(recs)
    _check_host_memory(mem)
    results = []
    # what lives now (modules, the scan, the workload) is frozen out of the collector, so each
    # run's collection below traverses that run's objects only (unless the caller froze first)
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    workers = workers_for(scan, workload) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = min(workers, len(cfgs))
    bar = SharedProgress(progress, len(cfgs)) if workers > 1 else None

    def one(i):
        res = run_config(cfgs[i], scan, workload, memory=mem, thp=thp, policy=policy, check=check,
                         progress=bar.slot(i) if bar else progress, base=i / len(cfgs),
                         span=1 / len(cfgs), cpu=cpu, steady=steady, recordings=recs)
        gc.collect()          # the run's Kernel (cycles: Kernel <-> PageCache, Process) goes now,
        return res            # not with the next cyclic collection: one model (per worker) live at a time

    # a dropped Kernel's host memory (per-frame and per-file arrays, node pools) is kept
    # for the next one: a host's first touch of a fresh page costs more than the model's
    # use of it, and would make the cost per file grow with the tree
    pool = framemem.pool_stats()
    keep = _pool_bytes(scan, workload)
    raised = keep > pool["limit"]
    if raised:
        framemem.set_pool_limit(keep, keep, keep)
    # one configuration at a time with a CPU to spare: a worker thread faults in the
    # host pages the run's per-frame arrays and node pool fill next, off its path
    ahead = workers == 1 and usable_cpus() >= 2
    was_ahead = framemem.set_populate_ahead(True) if ahead else False
    try:
        if workers == 1:
            results = [one(i) for i in range(len(cfgs))]
        else:
            ex = ThreadPoolExecutor(workers, thread_name_prefix="ppsize-compare")
            try:
                results = list(ex.map(one, range(len(cfgs))))
            finally:          # an error or ^C: no configuration starts after it
                ex.shutdown(wait=True, cancel_futures=True)
    finally:
        if freeze:
            gc.unfreeze()
        if ahead:
            framemem.set_populate_ahead(was_ahead)
        if raised:
            framemem.set_pool_limit(pool["limit"], pool["entry_limit"], pool["grow_limit"])
    progress.close()
    return CompareResult(scan, workload, mem, thp, results, time.perf_counter() - t0, policy)
