"""The text report of a workload (``ppsize inspect`` and the summaries that ``snapshot``
and ``record`` print). Partial recordings say so first, with every reason."""
from __future__ import annotations

import datetime as _dt

import numpy as np

from ..report import table
from ..units import fmt_size
from . import schema
from .workload import Workload, kpageflags_bits, pagemap_bits

__all__ = ["summary", "header", "process_table", "file_line", "event_lines"]


def header(w: Workload) -> list[str]:
    h, c = w.host, w.capture
    when = ""
    procs = [p.time_ns for p in w.processes if p.time_ns]
    if procs:
        when = _dt.datetime.fromtimestamp(min(procs) / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    thp = h.get("thp", {})
    lines = [f"{w.kind} {w.path or '(in memory)'}: ppsize {w.meta.get('ppsize', '?')}, schema "
             f"{w.meta.get('schema', '?')}, {when}",
             f"host {h.get('node', '?')}: {h.get('system', '')} {h.get('release', '')} {h.get('machine', '')}, "
             f"page {fmt_size(h.get('page_size', 0))}, THP enabled={thp.get('enabled', '?')} "
             f"defrag={thp.get('defrag', '?')}"]
    what = c.get("command")
    lines.append(("command: " + " ".join(what) + "; " if what else "")
                 + f"{len(w.processes)} process snapshots, {len(w.files)} files"
                 + (f", in {c['duration_s']:.2f} s" if "duration_s" in c else "")
                 + f"; frame flags (kpageflags): {'yes' if c.get('kpageflags') else 'no'}")
    if w.partial:
        bad = [p for p in w.processes if p.partial]
        lines.append(f"PARTIAL: {len(bad)} of {len(w.processes)} process snapshots are incomplete"
                     + ("; the recording has gaps" if w.meta.get("partial_reasons") else ""))
        for p in bad:
            lines.append(f"  pid {p.pid} ({p.comm}, {p.when}): " + "; ".join(p.problems))
        for why in w.meta.get("partial_reasons", []):
            lines.append(f"  {why}")
    return lines


def process_table(w: Workload) -> str:
    rows = []
    for p in w.processes:
        st = p.status or {}
        bits = pagemap_bits(p.pages["pagemap"])
        thp = 0
        if len(p.folios):
            thp = int((kpageflags_bits(p.folios["kflags"], "thp")["thp"] & (p.folios["order"] > 0)).sum())
        rows.append([p.pid, p.ppid, p.when, (p.comm or "")[:16], len(p.vmas), st.get("VmRSS", "-"),
                     st.get("RssAnon", "-"), st.get("RssFile", "-"), st.get("RssShmem", "-"),
                     st.get("VmPTE", "-"), int(p.smaps("AnonHugePages").sum()), int(bits["present"].sum()),
                     int(bits["swapped"].sum()), thp, p.minflt, p.majflt, "PARTIAL" if p.partial else ""])
    return table(["pid", "ppid", "when", "comm", "VMAs", "VmRSS", "RssAnon", "RssFile", "RssShmem",
                  "VmPTE", "AnonHuge", "present", "swapped", "large folios", "minflt", "majflt", "flags"], rows)


def file_line(w: Workload) -> str:
    files = w.files
    if not files:
        return "files: none"
    runs, fol = w.arrays["cache_runs"], w.arrays["cache_folios"]
    resident = int(runs["npages"].sum())
    probed = sum(f.probed for f in files)
    orders = np.bincount(fol["order"]) if len(fol) else np.zeros(0, int)
    order_text = ", ".join(f"{o}: {n}" for o, n in enumerate(orders.tolist()) if n)
    page = w.host.get("page_size", 4096)
    return (f"files: {len(files)} ({probed} probed), {sum(f.size for f in files) / 2**20:,.1f} MiB, "
            f"{resident * page / 2**20:,.1f} MiB resident in the page cache"
            + (f"; probed folios by order: {order_text}" if order_text else ""))


def event_lines(w: Workload) -> list[str]:
    ev = w.events
    if not any(len(a) for a in ev.values()):
        lines = []
    else:
        acct = ev["ev_acct"]
        cache = ev["ev_cache"]
        sc = ev["ev_syscall"]
        names = [s["name"] for s in w.syscalls]
        per = np.bincount(sc["nr"], minlength=len(names)) if len(sc) else np.zeros(len(names), int)
        task = ev["ev_task"]
        tcount = np.bincount(task["op"], minlength=3) if len(task) else np.zeros(3, int)
        lines = [f"events: {len(ev['ev_fault'])} page-fault exceptions, {len(acct)} counted faults "
                 f"({int(acct['major'].sum()) if len(acct) else 0} major), page cache "
                 f"{int((cache['op'] == schema.CACHE_ADD).sum())} added / "
                 f"{int((cache['op'] == schema.CACHE_DELETE).sum())} deleted, tasks "
                 f"{tcount[schema.TASK_FORK]} forks / {tcount[schema.TASK_EXEC]} execs / "
                 f"{tcount[schema.TASK_EXIT]} exits",
                 "syscalls: " + (", ".join(f"{n} {c}" for n, c in zip(names, per.tolist()) if c) or "none")]
    acc = w.accesses
    if acc is not None:
        k = np.bincount(acc["kind"], minlength=4) if len(acc) else np.zeros(4, int)
        lines.append(f"accesses: {len(acc):,} (" + ", ".join(
            f"{schema.ACCESS_KINDS[i]} {k[i]:,}" for i in range(4)) + ")")
    return lines


def summary(w: Workload) -> str:
    out = header(w)
    if w.processes:
        out += ["", process_table(w), ""]
    out.append(file_line(w))
    out += event_lines(w)
    others = [p for p in w.problems if not p.startswith("pid ")]
    if others:
        out.append(f"notes ({len(others)}):")
        out += [f"  {p}" for p in others[:20]]
        if len(others) > 20:
            out.append(f"  ... and {len(others) - 20} more")
    return "\n".join(out)
