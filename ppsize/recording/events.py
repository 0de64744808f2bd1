"""Replay of a recording's events (``ppsize record``): the part of ``replay`` that runs
a program's history in the model after its exec snapshot was rebuilt.

Events are taken in their recorded order (``Workload.timeline``, one sequence over all
sections): each memory syscall that succeeded is done again with its recorded result
(mmap at the address the real kernel returned, MAP_FIXED; brk as the heap VMA growing
or shrinking, do_brk_flags / do_vmi_align_munmap in mm/mmap.c), fork / exec / exit
as Process.fork / exec (the new image rebuilt from its exec snapshot) / exit, and the
page-fault exceptions of each task, in runs, as one access batch each (x86
error_code: bit 1 write, bit 4 instruction fetch; arm64's software event: a read).
With ``--accesses`` the access trace is replayed instead (stores as writes,
instruction fetches as such, a modify as a load then a store).
"""
from __future__ import annotations

import numpy as np

from ..process import Outcome
from . import schema
from .replay import (FIGURES, MADV_NAMES, MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_POPULATE,
                     MAP_SHARED, PROT_NAMES, ProcessReplay, _FAULTS, _PM_PRESENT, _Replayer, _truth)

__all__ = ["replay_events", "replay_accesses"]

_SEC = {name: i for i, name in enumerate((*schema.EVENT_SECTIONS, "snapshot"))}
_FAULT, _SYSCALL, _TASK, _SNAP = _SEC["ev_fault"], _SEC["ev_syscall"], _SEC["ev_task"], _SEC["snapshot"]
_MASK64 = (1 << 64) - 1


class _Proc:
    """A recorded pid's model process and what replay knows of it."""

    def __init__(self, proc, exec_snap):
        self.proc = proc
        self.exec_snap = exec_snap
        self.brk = None                  # the program break (mm->brk) in recorded addresses
        self.brk_start = None
        self.minflt0 = exec_snap.minflt if exec_snap is not None else 0
        self.majflt0 = exec_snap.majflt if exec_snap is not None else 0
        self.faults_base = (0, 0)        # the model's counts when the exec snapshot was built


def replay_events(r):
    """Run the events of ``r.w`` (a record workload) in the replayer ``r``; returns
    (ProcessReplay per exited process, recorded page-cache insertions in pages,
    translation counters or None)."""
    w = r.w
    ev = w.events
    tl = w.timeline()
    procs: dict = {}
    done: list = []
    exits = {p.pid: p for p in w.processes if p.when == "exit"}
    faults = ev["ev_fault"]
    sc = ev["ev_syscall"]
    names = [s["name"] for s in w.syscalls]
    tasks = ev["ev_task"]
    ignored: dict = {}
    access_mode = False                  # access traces: replay_accesses
    sec, row = tl["section"], tl["row"]
    n = len(tl)
    i = 0
    while i < n:
        s = int(sec[i])
        if s == _FAULT and not access_mode:
            j = i
            pid = int(faults["pid"][row[i]])
            while j < n and sec[j] == _FAULT and faults["pid"][row[j]] == pid:
                j += 1
            rp = procs.get(pid)
            if rp is not None:
                f = faults[row[i:j]]
                _faults(r, rp, f)
            i = j
            continue
        if s == _SNAP:
            sp = w.processes[int(row[i])]
            if sp.when == "exec":
                rp = procs.get(sp.pid)
                grow = _stack_growth(sp, exits.get(sp.pid))
                if rp is None:
                    proc = r.build(sp, sp.index, grow_to=grow)
                else:
                    rp.proc.exec(page_size=r.page_size_for(sp.index))
                    proc = r.build(sp, sp.index, proc=rp.proc, grow_to=grow)
                rp = _Proc(proc, sp)
                st = proc.status()
                rp.faults_base = (st["minflt"], st["majflt"])
                procs[sp.pid] = rp
            elif sp.when == "exit" and sp.pid in procs:
                done.append(_result(r, procs[sp.pid], sp))
        elif s == _SYSCALL:
            e = sc[row[i]]
            rp = procs.get(int(e["pid"]))
            if rp is not None and e["done"] and int(e["ret"]) >= 0:
                name = names[e["nr"]]
                fn = _SYSCALLS.get(name)
                if fn is None:
                    ignored[name] = ignored.get(name, 0) + 1
                else:
                    fn(r, rp, [int(a) for a in e["args"]], int(e["ret"]), int(e["file"]))
        elif s == _TASK:
            t = tasks[row[i]]
            if t["op"] == schema.TASK_FORK:
                parent = procs.get(int(t["pid"]))
                if parent is not None:
                    child = parent.proc.fork()
                    cp = _Proc(child, None)
                    cp.brk, cp.brk_start = parent.brk, parent.brk_start
                    procs[int(t["other"])] = cp
            elif t["op"] == schema.TASK_EXIT and t["group_dead"]:
                rp = procs.pop(int(t["pid"]), None)
                if rp is not None and rp.proc.alive and not r.keep:
                    rp.proc.exit()
        i += 1
    for name, count in sorted(ignored.items()):
        r.notes.append(f"{count} {name} call(s) not replayed (not modelled)")
    cache = ev["ev_cache"]
    # insertions into the files the workload mapped (captured: file >= 0); read(2) of
    # other files is outside the model
    adds = cache[(cache["op"] == schema.CACHE_ADD) & (cache["file"] >= 0)]
    truth_adds = int((np.left_shift(1, adds["order"].astype(np.int64))).sum()) if len(adds) else 0
    translation = None
    if r.k.cpus:
        translation = r.k.tlb_stats()
    return done, truth_adds, translation


def replay_accesses(r):
    """An access trace (``record --accesses``: valgrind's lackey, the guest inside the
    tool's address space): the last snapshot's VMAs rebuilt empty (files seeded), then
    every access in order, through the translation model if the kernel has a cpu.
    The model's figures are the trace's first touches; there are no recorded ones to
    hold them against (the recorded process is valgrind, its own memory included)."""
    w = r.w
    sp = w.processes[-1]
    proc = r.build(sp, sp.index, populate=False)
    rp = _Proc(proc, None)
    _accesses(r, rp, w.accesses)
    out = proc.outcome_counts()
    refused = out["segv_maperr"] + out["segv_accerr"] + out["sigbus"]
    r.notes.append(f"{len(w.accesses):,} accesses replayed on pid {sp.pid}'s {sp.when} layout "
                   f"(valgrind's: the guest lives inside it); {refused:,} fell outside a VMA that "
                   "allows them (valgrind reads guest code as data); no recorded figures: "
                   "the recorded process is valgrind, not the traced program")
    model = r.figures(proc)
    truth = {k: None for k in _truth(sp)}
    res = ProcessReplay(sp.pid, sp.comm or "", proc.page_size, model, truth, r.vma_rows(proc, sp),
                        out, bool(sp.partial))
    return [res], None, (r.k.tlb_stats() if r.k.cpus else None)


def _stack_growth(sp, exit_snap):
    """{exec-time [stack] start: its lowest start at exit}: the stack grows down by
    faults (expand_stack), which the model does not do; the VMA starts as low as it
    ends up."""
    if exit_snap is None:
        return None
    strings = sp._w.strings
    st = [int(v["start"]) for v in sp.vmas if strings[v["name"]] == "[stack]"]
    en = [int(v["start"]) for v in exit_snap.vmas if strings[v["name"]] == "[stack]"]
    if st and en and en[0] < st[0]:
        return {st[0]: en[0]}
    return None


def _mapped_floor(r, rp, exit_snap):
    """With a moved layout (a larger page), read every file page the exit snapshot
    shows mapped: a fault trace has the 4K run's faults, not the hits that fault-around
    made of its other accesses, and where the layout moves the 64K windows those would
    be lost. Returns the (minflt, majflt) these reads added (not counted as the
    program's faults)."""
    before = rp.proc.status()
    pg = exit_snap.pages
    if not len(pg):
        return 0, 0
    vm = exit_snap.vmas
    rel = pg["vma"].astype(np.int64) - exit_snap.info["vmas"][0]
    present = (pg["pagemap"] & _PM_PRESENT) != 0
    filep = present & (vm["file"][rel] >= 0) & ~_Replayer.is_anon(pg)
    if filep.any():
        rp.proc.access(r.layout.addr(pg["addr"][filep]), write=False)
    after = rp.proc.status()
    return after["minflt"] - before["minflt"], after["majflt"] - before["majflt"]


def _result(r, rp, exit_snap) -> ProcessReplay:
    proc = rp.proc
    floor = (0, 0)
    if not r.layout.identity:
        floor = _mapped_floor(r, rp, exit_snap)
        rp.faults_base = (rp.faults_base[0] + floor[0], rp.faults_base[1] + floor[1])
    bad = {k: v for k, v in proc.outcome_counts().items() if k in ("segv_maperr", "segv_accerr", "sigbus", "oom") and v}
    if bad:
        r.notes.append(f"pid {exit_snap.pid}: replayed faults the model refused: "
                       + ", ".join(f"{v} {k}" for k, v in bad.items()))
    model = r.figures(proc)
    model["minflt"] = model["minflt"] - rp.faults_base[0] + rp.minflt0
    model["majflt"] = model["majflt"] - rp.faults_base[1] + rp.majflt0
    return ProcessReplay(exit_snap.pid, exit_snap.comm or "", proc.page_size, model, _truth(exit_snap),
                         r.vma_rows(proc, exit_snap), proc.outcome_counts(), bool(exit_snap.partial))


def _faults(r, rp, f):
    """One run of page-fault exceptions of one task as one access batch."""
    L = r.layout
    vas = L.addr(f["address"])
    ec = f["error_code"]
    known = ec >= 0
    write = known & ((ec & schema.PF_WRITE) != 0)
    insn = known & ((ec & schema.PF_INSTR) != 0) & ~write
    return rp.proc.access(vas, write=write, insn=insn)


def _accesses(r, rp, acc):
    """The access trace (lackey) of the root process, in chunks: loads, stores,
    instruction fetches; a modify as a store (a load then a store of one address: the
    store's fault is the one that counts)."""
    L = r.layout
    step = 1 << 22
    for lo in range(0, len(acc), step):
        a = acc[lo:lo + step]
        vas = L.addr(a["addr"])
        kind = a["kind"]
        write = (kind == schema.ACCESS_STORE) | (kind == schema.ACCESS_MODIFY)
        insn = kind == schema.ACCESS_INSTR
        rp.proc.access(vas, write=write, insn=insn)


# ---------------------------------------------------------------- syscalls
def _prot(p):
    return PROT_NAMES[p & 7]


def _mmap(r, rp, args, ret, frow):
    addr, length, prot, flags, _fd, off = args
    L = r.layout
    ns, ne = L.span(ret, ret + length)
    kw = dict(addr=ns, prot=_prot(prot), fixed=True, shared=bool(flags & MAP_SHARED),
              populate=bool(flags & MAP_POPULATE), noreserve=bool(flags & MAP_NORESERVE))
    if flags & MAP_ANONYMOUS:
        if flags & MAP_SHARED:
            f = r.k.create_file(f"<shmem {rp.proc.pid}:{ret:#x}>", length, large_folios=False)
            rp.proc.mmap(ne - ns, file=f, offset=0, **kw)
            r.shmem_vmas.setdefault(rp.proc.pid, []).append((ns, ne))
        else:
            rp.proc.mmap(ne - ns, **kw)
        return
    if frow < 0:
        r.notes.append(f"mmap at {ret:#x}: file not captured; mapped as anonymous memory")
        kw["shared"] = False
        rp.proc.mmap(ne - ns, **kw)
        return
    wf = r.w.files[frow]
    if "shmem" in wf.flags:
        r.shmem_vmas.setdefault(rp.proc.pid, []).append((ns, ne))
    f = r.model_file(frow)
    if not L.identity:                   # the offset of ns: rounded down with the address
        off = max(0, off - (int(L.addr([ret])[0]) - ns)) // rp.proc.page_size * rp.proc.page_size
    rp.proc.mmap(ne - ns, file=f, offset=off, **kw)


def _munmap(r, rp, args, ret, frow):
    s, e = r.layout.inner(args[0], args[0] + args[1])
    if e > s:
        rp.proc.munmap(s, e - s)


def _mprotect(r, rp, args, ret, frow):
    s, e = r.layout.inner(args[0], args[0] + args[1])
    if e > s:
        rp.proc.mprotect(s, e - s, _prot(args[2]))


def _madvise(r, rp, args, ret, frow):
    adv = MADV_NAMES.get(args[2])
    if adv is None:
        r.notes.append(f"madvise advice {args[2]} not replayed")
        return
    s, e = r.layout.inner(args[0], args[0] + args[1])
    if e > s:
        rp.proc.madvise(s, e - s, adv)


def _mremap(r, rp, args, ret, frow):
    old, old_len, new_len, flags = args[0], args[1], args[2], args[3]
    L = r.layout
    s, e = L.span(old, old + old_len)
    ns, ne = L.span(ret, ret + new_len)
    if ns == s:
        rp.proc.mremap(s, e - s, ne - ns)
    else:
        rp.proc.mremap(s, e - s, ne - ns, flags="maymove|fixed", new_addr=ns)


def _brk(r, rp, args, ret, frow):
    """brk(2): the heap VMA from mm->start_brk grows (do_brk_flags: an anonymous
    VMA, merged with the heap) or shrinks (do_vmi_align_munmap) to the new break."""
    if rp.brk is None:                   # the first brk(0) reports the start
        rp.brk = rp.brk_start = ret
        return
    old, new = rp.brk, ret
    s0, e_old = _heap(r, rp, old)
    _, e_new = _heap(r, rp, new)
    if e_new > e_old:
        rp.proc.mmap(e_new - e_old, addr=e_old, prot="rw", fixed=True)
    elif e_new < e_old:
        rp.proc.munmap(e_new, e_old - e_new)
    rp.brk = new


def _heap(r, rp, brk):
    """The model range of the heap [start_brk, brk): laid out and rounded to P."""
    if brk <= rp.brk_start:
        s = r.layout.span(rp.brk_start, rp.brk_start + 1)[0]
        return s, s
    return r.layout.span(rp.brk_start, brk)


_SYSCALLS = {"mmap": _mmap, "munmap": _munmap, "mprotect": _mprotect, "pkey_mprotect": _mprotect,
             "madvise": _madvise, "mremap": _mremap, "brk": _brk}
del FIGURES, MAP_FIXED, Outcome, _FAULTS
