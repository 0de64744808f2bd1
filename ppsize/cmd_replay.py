"""``ppsize replay FILE [--config KEY ...]``: rebuild a snapshot's processes, or run a
recorded program's history (its syscalls and page faults, or its accesses), in the
model, and print the model's figures beside the recorded ones with the error: minflt,
majflt (recordings), VmRSS, RssAnon, RssFile, RssShmem, VmPTE, AnonHugePages, and the
pages inserted into the page cache. For a process page size above the recording's the
address space is laid out for that page size, and the output says so. A partial
recording is flagged PARTIAL in every report."""
from __future__ import annotations

import json
import sys

from .cmd_inspect import fail, guarded
from .report import table

_ROWS = ("minflt", "majflt", "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmPTE", "AnonHugePages")


def add_parser(sub):
    from .compare import CONFIGS
    from .cpu_presets import CPU_PRESETS
    p = sub.add_parser("replay", help="replay a snapshot or recording in the model; model vs recorded",
                       description=__doc__)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--config", action="append", metavar="KEY",
                   help=f"configurations (repeatable; default 4K): {', '.join(c.key for c in CONFIGS)}")
    p.add_argument("--thp", choices=("always", "madvise", "never"),
                   help="transparent_hugepage/enabled (default: the recording machine's)")
    p.add_argument("--cpu", choices=[c for c in CPU_PRESETS if c != "custom"],
                   help="a translation model for the replayed accesses (TLB counters in --json)")
    p.add_argument("--pid", type=int, action="append", help="only this process of a snapshot (repeatable)")
    p.add_argument("--vmas", action="store_true", help="per VMA: the model's Rss/Anonymous/AnonHugePages "
                                                     "beside smaps, where they differ")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE ('-': stdout)")
    p.add_argument("--check", action="store_true", help="verify every Kernel invariant at the end")
    return p


def _cell(v):
    return "-" if v is None else f"{v:,}"


def _err(m, t):
    if m is None or t is None:
        return "-", "-"
    d = m - t
    if t == 0:
        return f"{d:+,}", ("0.00%" if d == 0 else "-")
    return f"{d:+,}", f"{100.0 * d / t:+.2f}%"


def figure_table(model: dict, truth: dict, adds=None, adds_truth=None) -> str:
    rows = []
    for name in _ROWS:
        m, t = model.get(name), truth.get(name)
        if m is None and t is None:
            continue
        rows.append([name + ("" if name.endswith("flt") else " kB"), _cell(m), _cell(t), *_err(m, t)])
    rows.append(["page-cache insertions (pages)", _cell(adds), _cell(adds_truth), *_err(adds, adds_truth)])
    return table(["figure", "model", "recorded", "error", "error %"], rows)


def report(res, vmas=False) -> str:
    c = res.config
    out = [f"replay {res.path} ({res.kind}) on {c.label}: {res.layout}"]
    if res.partial:
        out.append("PARTIAL: the recording is incomplete; these figures cover only what it holds")
        out += [f"  {p}" for p in res.problems[:10]]
    for p in res.procs:
        out += ["", f"pid {p.pid} {p.comm} ({p.page_size >> 10}K pages){'  PARTIAL' if p.partial else ''}"]
        out.append(figure_table(p.model, p.truth, res.cache_adds if len(res.procs) == 1 else None,
                                res.cache_adds_truth if len(res.procs) == 1 else None))
        if vmas:
            rows = [[f"{v['start']:x}-{v['end']:x}", v["perms"], *(f"{v[k][0]}/{v[k][1]}" for k in
                     ("Rss", "Anonymous", "AnonHugePages")), v["name"]]
                    for v in p.vmas if any(v[k][0] != v[k][1] for k in ("Rss", "Anonymous", "AnonHugePages"))]
            out.append(f"VMAs where the model differs from smaps: {len(rows)} of {len(p.vmas)}")
            if rows:
                out.append(table(["range", "perms", "Rss model/smaps", "Anon", "AnonHuge", "name"], rows))
    if len(res.procs) > 1:
        out += ["", f"all {len(res.procs)} processes"]
        out.append(figure_table(res.totals("model"), res.totals("truth"), res.cache_adds, res.cache_adds_truth))
    for n in res.notes[:20]:
        out.append(f"note: {n}")
    return "\n".join(out)


def run(args) -> int:
    from .compare import config
    from .recording import RecordingError, load
    from .recording.replay import replay
    keys = args.config or ["4K"]
    try:
        cfgs = [config(k) for k in keys]
    except ValueError as e:
        return fail("replay", e)
    w, err = guarded("replay", args.file, (RecordingError,), lambda: load(args.file))
    if err:
        return err
    results = []
    for cfg in cfgs:
        res, err = guarded("replay", args.file, (RecordingError, ValueError, KeyError, MemoryError),
                           lambda: replay(w, cfg, thp=args.thp, cpu=args.cpu, check=args.check,
                                          pids=set(args.pid) if args.pid else None))
        if err:
            return err
        results.append(res)
        if args.json != "-":
            print(report(res, args.vmas) + ("\n" if cfg is not cfgs[-1] else ""))
    if args.json:
        doc = json.dumps([r.as_dict() for r in results], indent=1)
        if args.json == "-":
            print(doc)
        else:
            with open(args.json, "w") as f:
                f.write(doc + "\n")
    return 0
