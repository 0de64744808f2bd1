"""``compare --workload FILE``: recorded workloads (``ppsize snapshot`` / ``ppsize
record``) replayed under every configuration (``ppsize.recording.replay``), with the
synthetic mix (into the same kernel, after it: :func:`replay_into`) or instead of it
(:func:`run_recorded`, a kernel of their own per configuration). Every process of a
recording runs with the configuration's large page in the per-process configurations,
and each recorded program is counted as at its exit snapshot (its processes are kept
alive, all at once)."""
from __future__ import annotations

import time
from collections import Counter

from ..units import parse_size
from .result import ConfigResult
from .run import Config, config as _config

__all__ = ["load_workloads", "recorded_memory", "replay_into", "run_recorded"]


def load_workloads(items) -> list:
    """Each item a loaded Workload or a path, loaded (a RecordingError naming the bad
    file otherwise)."""
    from ..recording import Workload, load
    return [w if isinstance(w, Workload) else load(w) for w in items]


def recorded_memory(workloads, page=65536) -> int:
    """Model memory the recordings need with ``page``-byte process pages
    (``replay_memory`` summed; the largest page of every configuration by default)."""
    from ..recording.replay import replay_memory
    return sum(replay_memory(w, page) for w in workloads)


def replay_into(k, cfg: Config, workloads) -> tuple:
    """Replay each recording into Kernel ``k``: (per-process rows as compare's
    ``procs``, outcome Counter, the ReplayResults, pages read to seed their caches:
    the snapshots' cache, not reads of the workload)."""
    from ..recording.replay import replay
    rows, outcomes, results = [], Counter(), []
    seeded = 0
    for w in workloads:
        before = k.pagecache.stats()["pages_read"]
        res = replay(w, cfg, kernel=k, keep=True)     # each program as at its exit snapshot
        seeded += k.pagecache.stats()["pages_read"] - before - res.cache_adds
        results.append(res)
        for p in res.procs:
            rows.append({"name": f"{p.comm} ({p.pid}, {w.path})", "chosen": cfg.per_process,
                         "page": f"{p.page_size >> 10}K", "pgtable": cfg.pgtable,
                         "RssAnon": p.model["RssAnon"], "RssFile": p.model["RssFile"] + p.model["RssShmem"],
                         "VmPTE": p.model["VmPTE"], "minflt": p.model["minflt"], "majflt": p.model["majflt"],
                         "recorded": p.truth})
            outcomes.update({k_: v for k_, v in p.outcomes.items() if v})
    return rows, outcomes, results, seeded


def run_recorded(cfg, workloads, memory=None, thp="madvise", policy="drop-all", cpu=None,
                 check=False) -> ConfigResult:
    """One configuration with only the recordings: a fresh Kernel (THP ``thp``, file
    policy ``policy``, translation model ``cpu``; the 4K row with the x86-64 page
    tables when every recording was made on x86-64, so it can be held against the
    recorded figures), every recording replayed into it; the figures as compare's
    (meminfo at the end). ``check``: Kernel.check() after the replays."""
    from ..kernel import Kernel
    cfg = cfg if isinstance(cfg, Config) else _config(cfg)
    memory = recorded_memory(workloads) if memory is None else parse_size(memory, "memory")
    t = time.perf_counter()
    kw = {} if cpu is None else {"cpu": cpu}
    if policy != "drop-all":
        kw["file_policy"] = policy
    if cfg.key == "4K" and workloads and all(w.host.get("machine") == "x86_64" for w in workloads):
        kw["geometry"] = "x86_64-4l"       # the truth row: the recording machine's tables
    k = Kernel(cfg.kernel_page, memory=memory, thp=thp, **kw)
    rows, outcomes, results, _seeded = replay_into(k, cfg, workloads)
    if check:
        k.check()
    stats = k.pagecache.stats()
    seeded = sum(r.cache_adds for r in results)
    done = sum(1 for tr in k.transitions if tr.status == "done")
    blocked = sum(1 for tr in k.transitions if tr.status == "blocked")
    res = ConfigResult(cfg, k.meminfo(), 0, done, seeded, rows, dict(sorted(outcomes.items())),
                       {"replay": time.perf_counter() - t}, None, oom=k.oom_count,
                       alloc_fail=stats["alloc_fail"], blocked=blocked, policy=policy,
                       check="passed" if check else None)
    res.replays = results
    return res
