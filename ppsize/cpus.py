"""The translation hardware of a :class:`~ppsize.Kernel`: one :class:`~ppsize.TLB` per
CPU and the ASID allocator that tags each MM's entries (arch/arm64/mm/context.c).

Every process runs on one CPU (``Kernel.spawn(cpu=)``; a fork's child on its parent's);
its accesses translate through that CPU's TLB, and the TLB flushes of its page-table
changes go to that CPU. Linux broadcasts them (TLBI ...IS); since a process never
migrates here, only its own CPU holds entries of its ASID (:meth:`CPUs.check` verifies
it), so the local flush is the broadcast's effect.

ASIDs follow arm64's allocator: one per MM, allocated in increasing order from the
last one handed out (ASID 0 is reserved, as for init_mm's reserved TTBR0); an exited
MM's ASID is not reused within a generation. When none is left, a rollover
(flush_context) starts a new generation: every CPU's TLB is flushed and every MM's
ASID is released; an MM gets one again when it next runs (check_and_switch_context:
its old number if free, as new_context tries first). Counters are per ASID in each
TLB; when an ASID leaves its MM (exit, exec, rollover) its counters move to the
process (``Process.tlb_stats``) and to the CPU's retired total (``Kernel.tlb_stats``).
"""
from __future__ import annotations

import numpy as np

from .tlb import NR_COUNTERS, TLB, stats_dict

__all__ = ["CPUs", "TABLE_BASE_SHIFT", "build_tlb"]

TABLE_BASE_SHIFT = 40     # synthetic PA of an MM's page tables: mm_id << 40 (+ level << 36)


def build_tlb(cpu) -> TLB:
    """A TLB from a preset name, a dict of TLB settings or a TLB (returned as is)."""
    if isinstance(cpu, TLB):
        return cpu
    if isinstance(cpu, str):
        return TLB(cpu)
    if isinstance(cpu, dict):
        return TLB(**cpu)
    raise TypeError(f"cpu must be a preset name (ppsize.CPU_PRESETS), a dict of TLB settings "
                    f"or a TLB, not {cpu!r}")


class CPUs:
    """The CPUs of a Kernel with a translation model (built by ``Kernel(cpu=...)``)."""

    def __init__(self, cpu, ncpus=1):
        if isinstance(ncpus, bool) or not isinstance(ncpus, (int, np.integer)) or ncpus < 1:
            raise ValueError(f"ncpus must be a positive integer, got {ncpus!r}")
        if isinstance(cpu, TLB) and ncpus > 1:
            raise ValueError("a TLB object is one CPU: give a preset name or a dict of TLB "
                             "settings for ncpus > 1")
        first = build_tlb(cpu)
        self.tlbs = [first] + [TLB(**_clone_args(first)) for _ in range(int(ncpus) - 1)]
        self.max_asids = first.max_asids
        if self.max_asids < 2:
            raise ValueError(f"max_asids {self.max_asids}: the engine needs ASID 0 reserved and one more")
        self.generation = 1
        self.rollovers = 0
        self._used: set = set()         # asid_map of this generation
        self._cur = 1                   # cur_idx: the search starts after the last allocated
        self._owner: dict = {}          # asid -> the Process whose MM holds it
        self._retired = [np.zeros(NR_COUNTERS, np.int64) for _ in self.tlbs]

    def __len__(self):
        return len(self.tlbs)

    # ------------------------------------------------------------ ASIDs
    def switch_mm(self, proc):
        """check_and_switch_context: make sure proc's MM has an ASID of this generation
        on its CPU, and its page table translates through that CPU's TLB."""
        if proc._asid and proc._asid_gen == self.generation:
            return
        asid = proc._asid
        if not asid or asid in self._used:          # new_context: the old number if free
            asid = self._next_free()
            if asid is None:
                self._rollover()
                asid = self._next_free()
        self._used.add(asid)
        self._owner[asid] = proc
        self._cur = asid
        proc._asid, proc._asid_gen = asid, self.generation
        tlb = self.tlbs[proc.cpu]
        tlb.bind(asid, proc.pt_geometry)
        proc.mm.pt.set_tlb(tlb.core, asid, proc.mm.mm_id << TABLE_BASE_SHIFT)

    def _next_free(self):
        for a in range(self._cur, self.max_asids):
            if a not in self._used:
                return a
        return None

    def _rollover(self):
        """flush_context: a new generation, every TLB flushed, every ASID released."""
        for asid in list(self._owner):
            self._fold(asid)
        for proc in set(self._owner.values()):
            proc.mm.pt.set_tlb(None, 0, 0)
        self._owner.clear()
        self._used.clear()
        self._cur = 1
        self.generation += 1
        self.rollovers += 1
        for t in self.tlbs:
            t.flush_tlb_all()

    def release(self, proc):
        """proc's MM is gone (exit, exec): its counters move to the process and the CPU's
        retired total; the ASID number stays used until the next rollover."""
        if proc._asid and proc._asid_gen == self.generation and self._owner.get(proc._asid) is proc:
            self._fold(proc._asid)
            del self._owner[proc._asid]
        proc.mm.pt.set_tlb(None, 0, 0)
        proc._asid = 0

    def _fold(self, asid):
        owner = self._owner.get(asid)
        for c, t in enumerate(self.tlbs):
            row = t.core.counters[asid]
            self._retired[c] += row
            if owner is not None:
                owner._tlb_acc += row
            row[:] = 0

    # ------------------------------------------------------------ stats
    def process_counters(self, proc) -> np.ndarray:
        row = proc._tlb_acc.copy()
        if proc._asid and proc._asid_gen == self.generation and self._owner.get(proc._asid) is proc:
            row += self.tlbs[proc.cpu].core.counters[proc._asid]
        return row

    def stats(self, counters, cpu=0) -> dict:
        t = self.tlbs[cpu]
        return stats_dict(counters, t.level_names, t.walk_cache_names, t.config["dcache"] is not None)

    def cpu_counters(self, cpu) -> np.ndarray:
        return self._retired[cpu] + self.tlbs[cpu].core.counters.sum(axis=0)

    # ------------------------------------------------------------ check
    def check(self, processes):
        """Every TLB's invariants; every cached translation of a live MM's ASID is backed
        by its page table (same PA, no permission the PTE lacks, no larger than the unit
        mapped: a stale entry means a missing flush); no other ASID has entries; the
        entries of an ASID are on its process's CPU only."""
        live = {p._asid: p for p in processes if p._asid and p._asid_gen == self.generation}
        for c, t in enumerate(self.tlbs):
            t.check()
            for k in range(len(t.level_names)):
                e = t.core.entries(k)
                leaf = ~e["walk"]
                for asid in np.unique(e["asid"][leaf]).tolist():
                    p = live.get(asid)
                    if p is None or p.cpu != c:
                        raise AssertionError(f"CPU {c} {t.level_names[k]}: entries of ASID {asid}, "
                                             f"which no process on this CPU holds (a missing flush)")
                    sel = leaf & (e["asid"] == asid)
                    _check_entries(p, t.level_names[k], e["base"][sel], e["size"][sel], e["out"][sel])


def _check_entries(proc, level, base, size, out):
    tr = proc.mm.pt.translate(base)
    status = np.asarray(tr.status)
    pa = np.asarray(tr.pa)
    unit = np.asarray(tr.size)
    prot = np.asarray(tr.prot).astype(np.uint64)
    bad = (status != 0) | (pa != (out & ~np.uint64(0xfff))) | ((out & np.uint64(7) & ~prot) != 0) | \
        (size > unit)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"pid {proc.pid}: stale {level} entry {int(base[i]):#x}+{int(size[i]):#x} -> "
                             f"{int(out[i]):#x} (page table: status {int(status[i])}, pa {int(pa[i]):#x}, "
                             f"unit {int(unit[i]):#x}, prot {int(prot[i])}): a missing flush")


def _clone_args(t: TLB) -> dict:
    """Settings that rebuild an equal, empty TLB (the other CPUs of a Kernel)."""
    return dict(t.init_args)
