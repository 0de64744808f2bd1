"""``ppsize race``: explore every interleaving of the page-cache paths around a min-order
transition and print the verdict (ok / livelock / deadlock / violation) with a shortest trace."""
from __future__ import annotations

import argparse
import json
import sys

from .sweep import SWEEP_KINDS, SWITCHES
from .model import (BAILOUTS, BUMPS, DEFAULT_BAILOUT, DROPS, KINDS, NOINDEX, PATHS, POLICIES,
                    READAHEAD, RMWS, WRITE_LOCKS, Scenario)


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is impossible: the bound must be at least 1")
    return v


def _indices(text):
    if text.strip() in ("", "-", "none"):
        return ()
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated page indices like 0,1,2") from None


def _actor(text):
    kind, _, idx = text.partition("@")
    if kind not in KINDS:
        raise argparse.ArgumentTypeError(
            f"unknown actor {kind!r} (choose from {', '.join(KINDS)}; write KIND@INDEX, "
            f"or plain {', '.join(NOINDEX)})")
    if kind in NOINDEX:
        return (kind, 0)
    try:
        return (kind, int(idx))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write {kind}@INDEX, e.g. {kind}@3") from None


def _names(text):
    return tuple(t.strip().replace("-", "_") for t in text.split(",") if t.strip())


def add_parser(sub):
    p = sub.add_parser(
        "race", help="explore page-cache interleavings around a min-order transition",
        description=__doc__)
    p.add_argument("--policy", required=True, choices=POLICIES,
                   help="min-order transition: range (drop and re-read the mmapped range), "
                        "drop-all (bump min order, drop the whole cache), max-order-on-mmap")
    p.add_argument("--unlocked-path", action="append", default=[], choices=PATHS, metavar="NAME",
                   help="a path that does NOT take invalidate_lock (repeatable); choices: "
                        + ", ".join(PATHS))
    p.add_argument("--bailout", choices=BAILOUTS, default=None,
                   help="__filemap_add_folio refusing order < min order: none, early (at "
                        "function entry, the thread's proposal), xa_lock (under the i_pages lock, "
                        "atomic with the store); default: "
                        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_BAILOUT.items()))
    p.add_argument("--drop", choices=DROPS, default="truncate",
                   help="how the transition drops folios: truncate (truncate_inode_pages_range, "
                        "waits for locked folios, unmaps) or invalidate (mapping_try_invalidate, "
                        "skips locked, mapped, pinned, referenced folios)")
    p.add_argument("--actor", action="append", type=_actor, metavar="KIND@INDEX",
                   help="concurrent actor besides the transition (repeatable; replaces the "
                        "defaults): fault@I (filemap_fault), read@I (filemap_read), rcf@I "
                        "(read_cache_folio caller), write@I (write_begin under i_rwsem), truncate "
                        "(hole punch of the whole file), eio / enospc (mapping_set_error)")
    p.add_argument("--ranges", type=int, default=2, help="process-sized ranges in the file (1..4)")
    p.add_argument("--order", type=int, default=1,
                   help="large process page order in model pages (1..2)")
    p.add_argument("--cached", type=_indices, default=None,
                   help="indices holding an order-0 uptodate folio at the start (default 0,1,3; "
                        "with --sweep: every subset unless given)")
    p.add_argument("--mapped", type=_indices, default=(), help="of those, mapped by a process")
    p.add_argument("--pinned", type=_indices, default=(),
                   help="of those, long-term pinned (FOLL_LONGTERM)")
    p.add_argument("--transition-range", type=int, default=0,
                   help="range the large process mmaps (policy range)")
    p.add_argument("--keep-index", action="store_true",
                   help="a fix: after -EEXIST, __filemap_get_folio and do_read_cache_folio look "
                        "up the caller's index again, not the one mapping_align_index() returned")
    p.add_argument("--readahead", choices=READAHEAD, default="fault",
                   help="which paths do synchronous readahead (page_cache_ra_order) on a miss: "
                        "fault (do_sync_mmap_readahead, default), all (also filemap_read's "
                        "page_cache_sync_ra), none")
    p.add_argument("--bump", choices=BUMPS, default="plain",
                   help="the min-order bump against xa_lock sections: plain (Linux: a plain store "
                        "to mapping->flags, no lock), xa_lock (the bump under xa_lock_irq), cycle "
                        "(an xa_lock_irq/unlock cycle after it), cycle-if-nonempty (the cycle only "
                        "when the mapping is not empty, as truncate_inode_pages_final does)")
    p.add_argument("--rmw", choices=RMWS, default="plain",
                   help="the bump's update of mapping->flags: plain read-modify-write (Linux; "
                        "can lose a concurrent set_bit(AS_EIO)) or atomic (try_cmpxchg loop)")
    p.add_argument("--write-lock", choices=WRITE_LOCKS, default="i_rwsem",
                   help="what write@I holds around write_begin: i_rwsem (Linux) or "
                        "invalidate_lock shared as well")
    p.add_argument("--no-writeback", action="store_true",
                   help="the transition drops folios without writing dirty ones back first")
    p.add_argument("--dirty", type=_indices, default=(), help="of the cached, dirty at the start")
    p.add_argument("--initial-order", type=int, default=0, metavar="O",
                   help="order of the initially cached folios (large initial folios; default 0)")
    p.add_argument("--async-ra", action="store_true",
                   help="a fault hitting an uptodate folio starts async readahead of the next "
                        "range (page_cache_async_ra; off: the initial folios carry no "
                        "PG_readahead mark)")
    p.add_argument("--ra-fallback", action="store_true",
                   help="readahead through do_page_cache_ra -> page_cache_ra_unbounded (reads "
                        "the min order under invalidate_lock) instead of page_cache_ra_order")
    p.add_argument("--no-fault-retry", action="store_true",
                   help="faults never return VM_FAULT_RETRY (no FAULT_FLAG_ALLOW_RETRY)")
    p.add_argument("--max-states", type=_positive, default=None, metavar="N",
                   help="stop after N distinct states (the result is then bounded)")
    p.add_argument("--max-steps", type=_positive, default=None, metavar="N",
                   help="explore interleavings up to N steps deep (the result is then bounded)")
    p.add_argument("--no-por", action="store_true",
                   help="explore without partial-order reduction (same verdict, findings and "
                        "shortest traces, more states; for comparison)")
    p.add_argument("--all", action="store_true",
                   help="print the trace of every finding (with --sweep: list every configuration)")
    g = p.add_argument_group("sweep")
    g.add_argument("--sweep", action="store_true",
                   help="explore every initial cache x actor placement x switch value, in parallel")
    g.add_argument("--sweep-actors", type=int, default=1, metavar="N",
                   help="actors placed besides the transition in each configuration (0..3, default 1)")
    g.add_argument("--sweep-kinds", type=_names, default=SWEEP_KINDS, metavar="K,K",
                   help="actor kinds placed (default " + ",".join(SWEEP_KINDS) + ")")
    g.add_argument("--sweep-over", type=_names, default=(), metavar="SWITCH,SWITCH",
                   help="switches whose every value is tried: " + ", ".join(SWITCHES))
    g.add_argument("--jobs", type=_positive, default=None, metavar="N",
                   help="worker processes (default: the machine's cores)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON ('-': only JSON, on stdout)")
    return p


def _base(args):
    """Scenario keyword arguments from the command line (no cache, no actors)."""
    return dict(policy=args.policy, unlocked=frozenset(args.unlocked_path), drop=args.drop,
                bailout=args.bailout, ranges=args.ranges, order=args.order,
                mapped=args.mapped, pinned=args.pinned,
                transition_range=args.transition_range, readahead=args.readahead,
                keep_index=args.keep_index, bump=args.bump, rmw=args.rmw,
                write_lock=args.write_lock, writeback=not args.no_writeback, dirty=args.dirty,
                initial_order=args.initial_order, async_ra=args.async_ra,
                ra_fallback=args.ra_fallback, fault_retry=not args.no_fault_retry)


def _scenario(args):
    return Scenario(policy=args.policy, unlocked=frozenset(args.unlocked_path), drop=args.drop,
                    bailout=args.bailout, ranges=args.ranges, order=args.order,
                    cached=(0, 1, 3) if args.cached is None else args.cached,
                    mapped=args.mapped, pinned=args.pinned,
                    actors=tuple(args.actor) if args.actor else None,
                    transition_range=args.transition_range, readahead=args.readahead,
                    keep_index=args.keep_index, bump=args.bump, rmw=args.rmw,
                    write_lock=args.write_lock, writeback=not args.no_writeback,
                    dirty=args.dirty, initial_order=args.initial_order,
                    async_ra=args.async_ra, ra_fallback=args.ra_fallback,
                    fault_retry=not args.no_fault_retry)


def verdict_label(res):
    if res.verdict == "ok" and res.bounded:
        return "bounded-ok"
    return res.verdict


def format_result(res, system, scenario, all_traces=False):
    sc = scenario
    lines = []
    locked = [p for p in PATHS if p not in sc.unlocked]
    lines.append(f"policy {sc.policy}, bail-out {sc.bailout}, bump {sc.bump} ({sc.rmw} RMW), "
                 f"drop by {sc.drop}" + ("" if sc.writeback else " without writeback")
                 + (", keep-index fix" if sc.keep_index else "") + "; "
                 f"invalidate_lock taken by: {', '.join(locked) or 'no path'}"
                 + (f"; NOT by: {', '.join(sorted(sc.unlocked))}" if sc.unlocked else ""))
    lines.append(f"actors: {', '.join(system.actor_names)}")
    lines.append(f"initial: {res.initial}")
    label = verdict_label(res)
    if label == "bounded-ok":
        lines.append(f"verdict: ok, BOUNDED ({res.bound_hit} reached: not exhaustive)")
    else:
        lines.append(f"verdict: {label}" + (f" (bounded: {res.bound_hit} reached)" if res.bounded
                                             else ""))
    lines.append(f"states: {res.states} explored, {res.transitions} transitions, depth "
                 f"{res.depth}, {res.seconds:.2f} s, {res.states_per_second:,.0f} states/s"
                 + (", partial-order reduced" if res.por else ", unreduced (--no-por)"))
    if res.trace_states:
        lines.append(f"shortest traces: from an unreduced search of {res.trace_states} states "
                     f"({res.trace_seconds:.2f} s)")
    for k, f in enumerate(res.findings):
        if k == 0 or all_traces:
            lines.append(f"{f.kind}: {f.message}")
            lines.append("shortest trace:" if k == 0 else "trace:")
            lines.extend(_trace_lines(f.trace))
        else:
            if k == 1:
                lines.append("other findings (--all prints their traces):")
            lines.append(f"  {f.kind}: {f.message} ({len(f.trace)} steps)")
    return "\n".join(lines)


def _trace_lines(trace):
    out = []
    looped = False
    for s in trace:
        if s.cycle and not looped:
            out.append("  -- from here the cycle repeats forever --")
            looped = True
        out.append(f"  {s.n:3d}. {s.actor}: {s.function}")
        if s.saw:
            out.append(f"       saw: {s.saw}")
        out.append(f"       cache: {s.state}")
    return out


def _run_sweep(args):
    from .sweep import configurations, format_sweep, sweep
    if args.actor:
        raise ValueError("--sweep places the actors itself: use --sweep-kinds and --sweep-actors, "
                         "not --actor")
    base = _base(args)
    if args.bailout is None:
        del base["bailout"]
    cfgs = configurations(base, caches=None if args.cached is None else [args.cached],
                          kinds=args.sweep_kinds, nactors=args.sweep_actors,
                          over=args.sweep_over)
    res = sweep(cfgs, jobs=args.jobs, max_states=args.max_states, por=not args.no_por)
    if args.json != "-":
        print(format_sweep(res, all_configs=args.all))
    if args.json:
        text = json.dumps(res.as_dict(), indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    return 0 if all(o.verdict == "ok" for o in res.outcomes) else 1


def run(args) -> int:
    from . import PageCacheSystem
    from .checker import explore
    if args.json and args.json != "-":          # before any exploring (also --sweep)
        from ..cli import output_error
        err = output_error(args.json)
        if err:
            print(f"ppsize race: error: --json: {err}", file=sys.stderr)
            return 2
    if args.sweep:
        try:
            return _run_sweep(args)
        except ValueError as e:
            print(f"ppsize race: error: {e}", file=sys.stderr)
            return 2
    try:
        sc = _scenario(args)
    except ValueError as e:
        print(f"ppsize race: error: {e}", file=sys.stderr)
        return 2
    system = PageCacheSystem(sc)
    res = explore(system, max_states=args.max_states, max_steps=args.max_steps,
                  por=not args.no_por)
    if args.json != "-":
        print(format_result(res, system, sc, all_traces=args.all))
    if args.json:
        d = res.as_dict()
        d["verdict"] = verdict_label(res)
        d["actors"] = list(system.actor_names)
        d["scenario"] = {"policy": sc.policy, "unlocked_paths": sorted(sc.unlocked),
                         "bailout": sc.bailout, "drop": sc.drop, "ranges": sc.ranges,
                         "order": sc.order, "cached": list(sc.cached), "mapped": list(sc.mapped),
                         "pinned": list(sc.pinned), "readahead": sc.readahead,
                         "keep_index": sc.keep_index, "bump": sc.bump, "rmw": sc.rmw,
                         "write_lock": sc.write_lock, "writeback": sc.writeback,
                         "dirty": list(sc.dirty), "initial_order": sc.initial_order,
                         "async_ra": sc.async_ra, "ra_fallback": sc.ra_fallback,
                         "fault_retry": sc.fault_retry,
                         "actors": [f"{k}@{i}" for k, i in sc.actors]}
        text = json.dumps(d, indent=1)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    return 0 if res.verdict == "ok" else 1
