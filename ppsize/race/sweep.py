"""``ppsize race --sweep``: explore many scenarios, in parallel on the machine's cores.

A sweep enumerates initial caches (every subset of the file's pages), actor placements
(``nactors`` actors of the given kinds at every index, as a multiset) and switches (every value
of each switch named in ``over``), explores each configuration exhaustively and reports, per
configuration, the verdict and its distinct failures; over the whole sweep, the shortest trace
of each distinct failure. Two failures are the same when their kind and their message with the
indices and orders blanked out agree ("folio 2/o0 below min order 1" and "folio 3/o0 below
min order 1" are one failure).
"""
from __future__ import annotations

import itertools
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from .checker import explore
from .model import (BAILOUTS, BUMPS, DROPS, NOINDEX, READAHEAD, RMWS, WRITE_LOCKS,
                    PageCacheSystem, Scenario)

#: the switches a sweep can vary, with their values
SWITCHES = {"bump": BUMPS, "bailout": BAILOUTS, "rmw": RMWS, "write_lock": WRITE_LOCKS,
            "drop": DROPS, "readahead": READAHEAD, "keep_index": (False, True),
            "writeback": (True, False), "async_ra": (False, True), "ra_fallback": (False, True),
            "fault_retry": (True, False), "initial_order": (0, 1)}
SWEEP_KINDS = ("fault", "read", "rcf", "write")


def failure_key(kind, message):
    """The identity of a failure across configurations: the message without numbers."""
    return kind + ": " + re.sub(r"\d+", "#", message)


@dataclass
class Config:
    """One configuration of a sweep: the Scenario's keyword arguments."""
    kwargs: dict

    @property
    def label(self):
        kw = self.kwargs
        parts = [f"cached={','.join(map(str, kw['cached'])) or '-'}",
                 "actors=" + (",".join(k if k in NOINDEX else f"{k}@{i}" for k, i in kw["actors"])
                              or "-")]
        parts += [f"{k}={kw[k]}" for k in sorted(kw) if k in SWITCHES and k in kw.get("_over", ())]
        return " ".join(parts)


@dataclass
class Outcome:
    """What one configuration gave."""
    label: str
    kwargs: dict
    verdict: str
    states: int
    seconds: float
    bounded: bool
    failures: list = field(default_factory=list)   # (key, kind, message, trace dicts)


@dataclass
class SweepResult:
    outcomes: list
    seconds: float
    jobs: int

    @property
    def states(self):
        return sum(o.states for o in self.outcomes)

    def counts(self):
        out = {}
        for o in self.outcomes:
            out[o.verdict] = out.get(o.verdict, 0) + 1
        return out

    def distinct(self):
        """Each distinct failure -> (its shortest trace's outcome, message, trace, count)."""
        best = {}
        for o in self.outcomes:
            for key, kind, msg, trace in o.failures:
                cur = best.get(key)
                if cur is None or len(trace) < len(cur[2]):
                    best[key] = (o, msg, trace, (cur[3] if cur else 0) + 1)
                else:
                    best[key] = cur[:3] + (cur[3] + 1,)
        return dict(sorted(best.items(), key=lambda kv: (len(kv[1][2]), kv[0])))

    def as_dict(self):
        return {"configurations": len(self.outcomes), "states": self.states,
                "seconds": round(self.seconds, 3), "jobs": self.jobs, "verdicts": self.counts(),
                "outcomes": [{"configuration": o.label, "verdict": o.verdict, "states": o.states,
                              "seconds": round(o.seconds, 4), "bounded": o.bounded,
                              "failures": [{"failure": k, "kind": kd, "message": m, "trace": t}
                                           for k, kd, m, t in o.failures]}
                             for o in self.outcomes],
                "distinct_failures": [{"failure": k, "configurations": n,
                                       "shortest_in": o.label, "message": m, "trace": t}
                                      for k, (o, m, t, n) in self.distinct().items()]}


def configurations(base=None, *, caches=None, kinds=SWEEP_KINDS, nactors=1, over=()):
    """The configurations of a sweep, as :class:`Config` objects.

    ``base``: Scenario keyword arguments every configuration shares (policy, ranges, ...);
    ``caches``: the initial caches (default: every subset of the file's pages); ``kinds`` and
    ``nactors``: the actors placed (every multiset of ``nactors`` (kind, index) pairs);
    ``over``: names of switches (keys of :data:`SWITCHES`) whose every value is tried."""
    base = dict(base or {})
    for name in over:
        if name not in SWITCHES:
            raise ValueError(f"unknown sweep switch {name!r}; choose from {', '.join(SWITCHES)}")
    for k in kinds:
        if k not in SWEEP_KINDS:
            raise ValueError(f"unknown sweep actor {k!r}; choose from {', '.join(SWEEP_KINDS)}")
    if not 0 <= nactors <= 3:
        raise ValueError(f"sweep actors must be 0..3, got {nactors}")
    probe = Scenario(**dict(base, cached=(), actors=(), mapped=(), pinned=(), dirty=()))
    n = probe.npages
    if caches is None:
        caches = [tuple(i for i in range(n) if m >> i & 1) for m in range(1 << n)]
    slots = [(k, i) for k in kinds for i in range(n)]
    placements = list(itertools.combinations_with_replacement(slots, nactors))
    grid = list(itertools.product(*(SWITCHES[name] for name in over)))
    out = []
    for values in grid:
        for cached in caches:
            for acts in placements:
                kw = dict(base, cached=tuple(cached), actors=tuple(acts))
                # mapped/pinned/dirty of the base must stay within the cache
                for name in ("mapped", "pinned", "dirty"):
                    if name in kw:
                        kw[name] = tuple(v for v in kw[name] if v in kw["cached"])
                kw.update(zip(over, values))
                kw["_over"] = tuple(over)
                out.append(Config(kw))
    return out


def run_one(kwargs, max_states=None, por=True):
    """Explore one configuration (in a worker process); return an :class:`Outcome`."""
    kw = {k: v for k, v in kwargs.items() if not k.startswith("_")}
    sc = Scenario(**kw)
    res = explore(PageCacheSystem(sc), max_states=max_states, por=por)
    failures = []
    seen = set()
    for f in res.findings:
        key = failure_key(f.kind, f.message)
        if key in seen:
            continue
        seen.add(key)
        failures.append((key, f.kind, f.message, [s.as_dict() for s in f.trace]))
    verdict = "bounded-ok" if res.verdict == "ok" and res.bounded else res.verdict
    return Outcome(Config(kwargs).label, kwargs, verdict, res.states, res.seconds, res.bounded,
                   failures)


def sweep(configs, *, jobs=None, max_states=None, por=True):
    """Explore every configuration, ``jobs`` worker processes at once (default: the
    machine's cores; 1 explores in this process); ``por=False``: without partial-order
    reduction. Returns a :class:`SweepResult` with the
    outcomes in the order of ``configs``."""
    configs = list(configs)
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    if jobs == 1 or len(configs) < 2:
        outcomes = [run_one(c.kwargs, max_states, por) for c in configs]
    else:
        chunk = max(1, len(configs) // (jobs * 8))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(run_one, [c.kwargs for c in configs],
                                     itertools.repeat(max_states), itertools.repeat(por),
                                     chunksize=chunk))
    return SweepResult(outcomes, time.perf_counter() - t0, jobs)


def format_sweep(result, *, all_configs=False):
    """The sweep as text: totals, one line per configuration (failing ones only unless
    ``all_configs``), then the shortest trace of each distinct failure."""
    from .cli import _trace_lines
    from .checker import Step
    lines = []
    counts = result.counts()
    lines.append(f"sweep: {len(result.outcomes)} configurations, "
                 + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                 + f"; {result.states} states in {result.seconds:.2f} s on {result.jobs} "
                 f"process(es)")
    for o in result.outcomes:
        if o.verdict == "ok" and not all_configs:
            continue
        fails = "; ".join(f"{m} ({len(t)} steps)" for _, _, m, t in o.failures)
        lines.append(f"  {o.label}: {o.verdict} ({o.states} states)" + (f": {fails}" if fails else ""))
    distinct = result.distinct()
    if distinct:
        lines.append(f"distinct failures: {len(distinct)}")
    for key, (o, msg, trace, n) in distinct.items():
        lines.append(f"{key}")
        lines.append(f"  in {n} configuration(s); shortest ({len(trace)} steps) with {o.label}:")
        lines.append(f"  {msg}")
        lines.extend(_trace_lines([Step(d["n"], d["actor"], d["function"], d["saw"], d["cache"],
                                        d["cycle"]) for d in trace]))
    return "\n".join(lines)
